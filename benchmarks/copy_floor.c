/* The CPU floor of a segmenting stream on this machine: what a loop costs that does only the work
 * no design avoids (every payload byte summed for its segment's checksum, headers and payload
 * written), without Python, plans or threads. Beside `cp` on the same file it says how far below
 * the command's CPU seconds any change of the copies can go.
 *
 *   gcc -O3 -pthread -o copy_floor benchmarks/copy_floor.c
 *   copy_floor INPUT OUTPUT MODE CHUNK [window=MIB] [advice=ADVICE] [sum=plain|avx2]
 *   (then rm OUTPUT; time it beside cp INPUT OUTPUT)
 *
 * MODE: read-arena  pread a chunk, copy each 1448-byte piece behind an 82-byte header into an arena
 *                   in the pass that sums it, write the arena (the compiled stream before
 *                   2026-12-06 evening);
 *       read-iovec  pread a chunk, sum each piece where it is, writev header/piece iovec pairs;
 *       map-iovec   IN mapped, each chunk summed in place, writev pairs (one copy: the kernel's,
 *                   mapping -> output; the compiled stream on a mapped IN);
 *       map-arena   IN mapped, copy-and-sum into the arena, write it;
 *       map-thread  map-iovec with the writev on a second thread, a chunk handed over at a time (queue
 *                   depth 1, as the compiled stream's writer; the chunk is summed on one core and
 *                   copied by the kernel on the other);
 *       map-out     IN mapped, OUT fallocated and mapped too: each piece copied and summed straight
 *                   into OUT's pages behind its header (one copy, ours, in the pass that sums; no
 *                   write system call), OUT cut to its length at the end.
 * CHUNK: MiB, or KiB with a K suffix (128K). window=MIB (map modes): IN mapped this many MiB at a time
 * (default: the chunk, rounded up to a MiB), the chunks walked inside it. advice (map modes): populate
 * (MAP_POPULATE, the default), populate-read (MADV_POPULATE_READ on each window, Linux >= 5.14;
 * map-out: MADV_POPULATE_WRITE on OUT's),
 * sequential (MADV_SEQUENTIAL), fault (none: a page fault maps each run of pages).
 * sum=avx2: the word sum with AVX2 (when the CPU has it).
 * It prints wall, user and system seconds (getrusage). No guard against a file cut underneath:
 * a measuring tool for a file that stays as it is. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <immintrin.h>
#include <pthread.h>
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

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

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

/* the same sum 32 bytes at a time: each 32-bit word widened to 64 bits, four lanes in each of two
 * accumulators */
__attribute__((target("avx2"))) static uint64_t sum_words_avx2(const unsigned char *p, size_t length,
                                                                unsigned char *copy_to)
{
    __m256i low = _mm256_setzero_si256(), high = _mm256_setzero_si256(), zero = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= length; i += 32) {
        __m256i w = _mm256_loadu_si256((const __m256i *)(p + i));
        if (copy_to)
            _mm256_storeu_si256((__m256i *)(copy_to + i), w);
        low = _mm256_add_epi64(low, _mm256_unpacklo_epi32(w, zero));
        high = _mm256_add_epi64(high, _mm256_unpackhi_epi32(w, zero));
    }
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, _mm256_add_epi64(low, high));
    return lanes[0] + lanes[1] + lanes[2] + lanes[3] + sum_words(p + i, length - i, copy_to ? copy_to + i : NULL);
}

static uint64_t (*sum)(const unsigned char *, size_t, unsigned char *) = sum_words;

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

/* map-thread: chunks' iovecs handed to the writing thread, a slot at a time (two slots: one being
 * filled, one being written); a chunk's window stays mapped until the writer is done with it */
struct handed {
    struct iovec *iov;
    int count;
    unsigned char *arena; /* the chunk's headers */
};
static struct handed slot[2];
static int slot_full[2], writer_fd, writer_done;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

static void *writer(void *unused)
{
    (void)unused;
    for (int turn = 0;; turn ^= 1) {
        pthread_mutex_lock(&lock);
        while (!slot_full[turn] && !writer_done)
            pthread_cond_wait(&changed, &lock);
        if (!slot_full[turn]) {
            pthread_mutex_unlock(&lock);
            return NULL;
        }
        pthread_mutex_unlock(&lock);
        struct handed *h = &slot[turn];
        for (int at = 0; at < h->count; at += PAIRS)
            if (writev(writer_fd, h->iov + at, h->count - at < PAIRS ? h->count - at : PAIRS) < 0)
                perror("writev");
        pthread_mutex_lock(&lock);
        slot_full[turn] = 0;
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&lock);
    }
}

static const char *option(int argc, char **argv, const char *name, const char *otherwise)
{
    size_t n = strlen(name);
    for (int i = 5; i < argc; i++)
        if (!strncmp(argv[i], name, n) && argv[i][n] == '=')
            return argv[i] + n + 1;
    return otherwise;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: copy_floor INPUT OUTPUT read-arena|read-iovec|map-iovec|map-arena|map-thread|map-out CHUNK"
                        " [window=MIB] [advice=populate|populate-read|sequential|fault] [sum=plain|avx2]\n");
        return 2;
    }
    const char *mode = argv[3];
    int mapped = !strncmp(mode, "map", 3), scatter = strstr(mode, "iovec") != NULL;
    int map_out = !strcmp(mode, "map-out"), threaded = !strcmp(mode, "map-thread");
    scatter |= threaded;
    char *unit;
    size_t chunk = (size_t)strtol(argv[4], &unit, 10) << (*unit == 'K' || *unit == 'k' ? 10 : 20);
    size_t window = (size_t)atol(option(argc, argv, "window", "0")) << 20;
    if (window < chunk)
        window = (chunk + (1 << 20) - 1) & ~(size_t)((1 << 20) - 1);
    const char *advice = option(argc, argv, "advice", "populate");
    if (!strcmp(option(argc, argv, "sum", "plain"), "avx2") && __builtin_cpu_supports("avx2"))
        sum = sum_words_avx2;
    int in = open(argv[1], O_RDONLY), out = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644);
    struct stat st;
    if (in < 0 || out < 0 || fstat(in, &st) || chunk == 0) {
        perror("copy_floor");
        return 1;
    }
    size_t size = (size_t)st.st_size;
    unsigned char *buffer = malloc(chunk), *arena = malloc(chunk + chunk / 8 + HEADER);
    struct iovec *iov = malloc(sizeof *iov * PAIRS);
    uint64_t total = 0;
    /* map-out: OUT's length bound (a header per piece) fallocated up front, mapped a window at a time */
    size_t out_size = size + (size / PIECE + size / chunk + 2) * HEADER, written = 0;
    unsigned char *out_map = NULL;
    size_t out_start = 0, out_len = 0;
    double started = now();
    if (map_out && posix_fallocate(out, 0, (off_t)out_size)) {
        perror("fallocate");
        return 1;
    }
    unsigned char *map = NULL;
    size_t map_start = 0, map_len = 0;
    pthread_t writing;
    int turn = 0;
    if (threaded) {
        writer_fd = out;
        for (int i = 0; i < 2; i++) {
            slot[i].iov = malloc(sizeof(struct iovec) * 2 * (chunk / PIECE + 2));
            slot[i].arena = malloc(HEADER * (chunk / PIECE + 2));
        }
        pthread_create(&writing, NULL, writer, NULL);
    }
    for (size_t pos = 0; pos < size; pos += chunk) {
        size_t n = size - pos < chunk ? size - pos : chunk;
        const unsigned char *data = buffer;
        if (mapped) {
            if (!map || pos + n > map_start + map_len) {
                if (map && threaded) { /* unmapped once the writer is done with its chunks */
                    pthread_mutex_lock(&lock);
                    while (slot_full[0] || slot_full[1])
                        pthread_cond_wait(&changed, &lock);
                    pthread_mutex_unlock(&lock);
                    munmap(map, map_len);
                } else if (map)
                    munmap(map, map_len);
                map_start = pos & ~(size_t)4095;
                map_len = size - map_start < window ? size - map_start : window;
                int flags = MAP_SHARED | (!strcmp(advice, "populate") ? MAP_POPULATE : 0);
                map = mmap(NULL, map_len, PROT_READ, flags, in, (off_t)map_start);
                if (map == MAP_FAILED) {
                    perror("mmap");
                    return 1;
                }
                if (!strcmp(advice, "populate-read") && madvise(map, map_len, MADV_POPULATE_READ))
                    perror("madvise");
                if (!strcmp(advice, "sequential"))
                    madvise(map, map_len, MADV_SEQUENTIAL);
            }
            data = map + (pos - map_start);
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
        if (threaded) {
            pthread_mutex_lock(&lock);
            while (slot_full[turn])
                pthread_cond_wait(&changed, &lock);
            pthread_mutex_unlock(&lock);
            struct handed *h = &slot[turn];
            for (h->count = 0; at < n; at += PIECE) {
                size_t piece = n - at < PIECE ? n - at : PIECE;
                memset(h->arena + used, 7, HEADER);
                h->iov[h->count].iov_base = h->arena + used;
                h->iov[h->count++].iov_len = HEADER;
                used += HEADER;
                total += sum(data + at, piece, NULL);
                h->iov[h->count].iov_base = (void *)(data + at);
                h->iov[h->count++].iov_len = piece;
            }
            pthread_mutex_lock(&lock);
            slot_full[turn] = 1;
            pthread_cond_broadcast(&changed);
            pthread_mutex_unlock(&lock);
            turn ^= 1;
            continue;
        }
        while (at < n) {
            size_t piece = n - at < PIECE ? n - at : PIECE;
            if (map_out) {
                if (written + HEADER + piece > out_start + out_len) {
                    if (out_map)
                        munmap(out_map, out_len);
                    out_start = written & ~(size_t)4095;
                    out_len = out_size - out_start < window ? out_size - out_start : window;
                    out_map = mmap(NULL, out_len, PROT_READ | PROT_WRITE,
                                   MAP_SHARED | (!strcmp(advice, "populate") ? MAP_POPULATE : 0), out,
                                   (off_t)out_start);
                    if (out_map == MAP_FAILED) {
                        perror("mmap OUT");
                        return 1;
                    }
                    if (!strcmp(advice, "populate-read") && madvise(out_map, out_len, MADV_POPULATE_WRITE))
                        perror("madvise OUT");
                }
                unsigned char *to = out_map + (written - out_start);
                memset(to, 7, HEADER);
                total += sum(data + at, piece, to + HEADER);
                written += HEADER + piece;
                at += piece;
                continue;
            }
            memset(arena + used, 7, HEADER);
            if (scatter) {
                iov[pairs].iov_base = arena + used;
                iov[pairs++].iov_len = HEADER;
                used += HEADER;
                total += sum(data + at, piece, NULL);
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
                total += sum(data + at, piece, arena + used);
                used += piece;
            }
            at += piece;
        }
        if ((scatter && pairs && writev(out, iov, pairs) < 0) || (!scatter && !map_out && write_all(out, arena, used))) {
            perror("write");
            return 1;
        }
    }
    if (threaded) {
        pthread_mutex_lock(&lock);
        writer_done = 1;
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&lock);
        pthread_join(writing, NULL);
    }
    if (map)
        munmap(map, map_len);
    if (out_map)
        munmap(out_map, out_len);
    if (map_out && ftruncate(out, (off_t)written)) {
        perror("ftruncate");
        return 1;
    }
    double wall = now() - started;
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double user = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec * 1e-6;
    double system = (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec * 1e-6;
    printf("%s %s: wall %.3f s, user %.3f s, system %.3f s, CPU %.3f s (sum %llu)\n", mode, argv[4], wall, user,
           system, user + system, (unsigned long long)(total & 0xFF));
    return 0;
}
