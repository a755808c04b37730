/* The CPU floor of a segmenting stream on this machine: what a loop costs that does only the work
 * no design avoids (every payload byte summed for its segment's checksum, headers and payload
 * written), without Python, plans or threads. Beside `cp` on the same file it says how far below
 * the command's CPU seconds any change of the copies can go.
 *
 *   gcc -O3 -o copy_floor benchmarks/copy_floor.c
 *   copy_floor INPUT OUTPUT MODE CHUNK_MIB    (then rm OUTPUT; time it beside cp INPUT OUTPUT)
 *
 * MODE: read-arena  pread a chunk, copy each 1448-byte piece behind an 82-byte header into an arena
 *                   in the pass that sums it, write the arena (the compiled stream before
 *                   2026-12-06 evening);
 *       read-iovec  pread a chunk, sum each piece where it is, writev header/piece iovec pairs
 *                   (the compiled stream now);
 *       map-iovec   mmap the chunk (MAP_POPULATE), sum in place, writev pairs (one copy: the
 *                   kernel's, mapping -> output);
 *       map-arena   mmap the chunk, copy-and-sum into the arena, write it.
 * It prints wall, user and system seconds (getrusage). No guard against a file cut underneath:
 * a measuring tool for a file that stays as it is. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PIECE 1448
#define HEADER 82
#define PAIRS 1024 /* IOV_MAX */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* native 32-bit word sums, four accumulators (as softgso/_wordsum.h) */
static uint64_t sum_words(const unsigned char *p, size_t length, unsigned char *copy_to)
{
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i = 0;
    for (; i + 16 <= length; i += 16) {
        uint32_t w[4];
        memcpy(w, p + i, 16);
        if (copy_to)
            memcpy(copy_to + i, w, 16);
        a += w[0];
        b += w[1];
        c += w[2];
        d += w[3];
    }
    if (copy_to)
        memcpy(copy_to + i, p + i, length - i);
    return a + b + c + d;
}

static int write_all(int fd, const unsigned char *p, size_t length)
{
    while (length) {
        ssize_t done = write(fd, p, length);
        if (done <= 0)
            return -1;
        p += done;
        length -= (size_t)done;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: copy_floor INPUT OUTPUT read-arena|read-iovec|map-iovec|map-arena CHUNK_MIB\n");
        return 2;
    }
    int mapped = !strncmp(argv[3], "map", 3), scatter = strstr(argv[3], "iovec") != NULL;
    size_t chunk = (size_t)atol(argv[4]) << 20;
    int in = open(argv[1], O_RDONLY), out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    struct stat st;
    if (in < 0 || out < 0 || fstat(in, &st) || chunk == 0) {
        perror("copy_floor");
        return 1;
    }
    size_t size = (size_t)st.st_size;
    unsigned char *buffer = malloc(chunk), *arena = malloc(chunk + chunk / 8 + HEADER);
    struct iovec *iov = malloc(sizeof *iov * PAIRS);
    uint64_t total = 0;
    double started = now();
    for (size_t pos = 0; pos < size; pos += chunk) {
        size_t n = size - pos < chunk ? size - pos : chunk;
        const unsigned char *data = buffer;
        void *map = NULL;
        if (mapped) {
            map = mmap(NULL, n, PROT_READ, MAP_SHARED | MAP_POPULATE, in, (off_t)pos);
            if (map == MAP_FAILED) {
                perror("mmap");
                return 1;
            }
            data = map;
        } else {
            for (size_t got = 0; got < n;) {
                ssize_t done = pread(in, buffer + got, n - got, (off_t)(pos + got));
                if (done <= 0) {
                    perror("pread");
                    return 1;
                }
                got += (size_t)done;
            }
        }
        size_t at = 0, used = 0;
        int pairs = 0;
        while (at < n) {
            size_t piece = n - at < PIECE ? n - at : PIECE;
            memset(arena + used, 7, HEADER);
            if (scatter) {
                iov[pairs].iov_base = arena + used;
                iov[pairs++].iov_len = HEADER;
                used += HEADER;
                total += sum_words(data + at, piece, NULL);
                iov[pairs].iov_base = (void *)(data + at);
                iov[pairs++].iov_len = piece;
                if (pairs >= PAIRS) {
                    if (writev(out, iov, pairs) < 0) {
                        perror("writev");
                        return 1;
                    }
                    pairs = 0;
                    used = 0;
                }
            } else {
                used += HEADER;
                total += sum_words(data + at, piece, arena + used);
                used += piece;
            }
            at += piece;
        }
        if ((scatter && pairs && writev(out, iov, pairs) < 0) || (!scatter && write_all(out, arena, used))) {
            perror("write");
            return 1;
        }
        if (map)
            munmap(map, n);
    }
    double wall = now() - started;
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double user = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec * 1e-6;
    double system = (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec * 1e-6;
    printf("%s %s MiB: wall %.3f s, user %.3f s, system %.3f s, CPU %.3f s (sum %llu)\n", argv[3], argv[4], wall,
           user, system, user + system, (unsigned long long)(total & 0xFF));
    return 0;
}
