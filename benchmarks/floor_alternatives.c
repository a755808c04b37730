/* Two designs for a segmenting stream's copies that benchmarks/copy_floor.c does not have, measured
 * beside `cp` on the same file (2026-12-07; numbers in benchmarks/README.md). Same model: 1448-byte
 * pieces of IN, each behind an 82-byte header in OUT, every piece summed (AVX2) for its checksum.
 *
 *   gcc -O3 -pthread -o floor_alternatives benchmarks/floor_alternatives.c
 *   floor_alternatives IN OUT split-read|split-map CHUNK WORKERS
 *   floor_alternatives IN OUT write-then-sum CHUNK none|map|map-populate|pwrite
 *   (then rm OUT; time it beside cp IN OUT)
 *
 * split-read / split-map: WORKERS threads take alternate chunks (pread into a buffer of their own, or a
 *     mapping of the chunk), sum them and pwritev header/piece pairs at the chunk's place in OUT: the
 *     writes run in parallel, no thread hands data to another.
 * write-then-sum: IN mapped; a chunk's pairs written first (the kernel's copy brings the pieces into the
 *     cache), then summed, then each checksum patched into OUT: through a mapping of the chunk's part of
 *     OUT (map, or map-populate with MAP_POPULATE), or one pwrite per piece; none: not patched (the
 *     floor of the order, not a correct output).
 * CHUNK: MiB, or KiB with a K suffix. A measuring tool for a file that stays as it is: no guard against
 * a file cut underneath, a full chunk's output size assumed for split's offsets. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define PIECE 1448
#define HEADER 82
#define PAIRS 1024 /* IOV_MAX */
#define CHECK_AT 50 /* where a header's checksum goes (TCP's, behind Ethernet, IPv4 and 16 bytes of TCP) */

__attribute__((target("avx2"))) static uint64_t sum_avx2(const unsigned char *p, size_t length)
{
    __m256i low = _mm256_setzero_si256(), high = _mm256_setzero_si256(), zero = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= length; i += 32) {
        __m256i w = _mm256_loadu_si256((const __m256i *)(p + i));
        low = _mm256_add_epi64(low, _mm256_unpacklo_epi32(w, zero));
        high = _mm256_add_epi64(high, _mm256_unpackhi_epi32(w, zero));
    }
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, _mm256_add_epi64(low, high));
    uint64_t total = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for (; i < length; i++)
        total += p[i];
    return total;
}

static uint16_t folded(uint64_t s)
{
    s = (s & 0xffffffff) + (s >> 32);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static int in, out, workers, use_map;
static size_t size, chunk;
static uint64_t checksums;

/* a chunk's header/piece pairs; returns how many iovecs */
static int pairs_of(const unsigned char *data, size_t n, unsigned char *arena, struct iovec *iov, int sum)
{
    int c = 0;
    size_t used = 0;
    for (size_t at = 0; at < n; at += PIECE) {
        size_t piece = n - at < PIECE ? n - at : PIECE;
        memset(arena + used, 7, HEADER);
        if (sum) {
            uint16_t check = folded(sum_avx2(data + at, piece));
            memcpy(arena + used + CHECK_AT, &check, 2);
        }
        iov[c].iov_base = arena + used;
        iov[c++].iov_len = HEADER;
        used += HEADER;
        iov[c].iov_base = (void *)(data + at);
        iov[c++].iov_len = piece;
    }
    return c;
}

static void *split_worker(void *arg)
{
    long me = (long)arg;
    unsigned char *buffer = aligned_alloc(4096, chunk), *arena = malloc(HEADER * (chunk / PIECE + 2));
    struct iovec *iov = malloc(sizeof *iov * 2 * (chunk / PIECE + 2));
    size_t chunk_out = chunk + ((chunk + PIECE - 1) / PIECE) * HEADER;
    for (size_t i = (size_t)me; i * chunk < size; i += (size_t)workers) {
        size_t pos = i * chunk, n = size - pos < chunk ? size - pos : chunk;
        const unsigned char *data = buffer;
        unsigned char *map = NULL;
        if (use_map) {
            map = mmap(NULL, n, PROT_READ, MAP_SHARED | MAP_POPULATE, in, (off_t)pos);
            if (map == MAP_FAILED) {
                perror("mmap");
                exit(1);
            }
            data = map;
        } else
            for (size_t got = 0; got < n;) {
                ssize_t done = pread(in, buffer + got, n - got, (off_t)(pos + got));
                if (done <= 0) {
                    perror("pread");
                    exit(1);
                }
                got += (size_t)done;
            }
        int c = pairs_of(data, n, arena, iov, 1);
        off_t at_out = (off_t)(i * chunk_out);
        for (int at = 0; at < c; at += PAIRS) {
            int k = c - at < PAIRS ? c - at : PAIRS;
            ssize_t done = pwritev(out, iov + at, k, at_out);
            if (done < 0) {
                perror("pwritev");
                exit(1);
            }
            at_out += done;
        }
        if (map)
            munmap(map, n);
    }
    return NULL;
}

static int write_then_sum(const char *patch)
{
    unsigned char *map = mmap(NULL, size, PROT_READ, MAP_SHARED | MAP_POPULATE, in, 0);
    unsigned char *arena = malloc(HEADER * (chunk / PIECE + 2));
    struct iovec *iov = malloc(sizeof *iov * 2 * (chunk / PIECE + 2));
    uint16_t *checks = malloc(sizeof *checks * (chunk / PIECE + 2));
    size_t written = 0;
    if (map == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    for (size_t pos = 0; pos < size; pos += chunk) {
        size_t n = size - pos < chunk ? size - pos : chunk, start = written;
        int c = pairs_of(map + pos, n, arena, iov, 0), pieces = 0;
        for (int at = 0; at < c; at += PAIRS) {
            ssize_t done = writev(out, iov + at, c - at < PAIRS ? c - at : PAIRS);
            if (done < 0) {
                perror("writev");
                return 1;
            }
            written += (size_t)done;
        }
        for (size_t at = 0; at < n; at += PIECE)
            checks[pieces++] = folded(sum_avx2(map + pos + at, n - at < PIECE ? n - at : PIECE));
        if (!strncmp(patch, "map", 3)) {
            size_t base = start & ~(size_t)4095;
            int flags = MAP_SHARED | (!strcmp(patch, "map-populate") ? MAP_POPULATE : 0);
            unsigned char *o = mmap(NULL, written - base, PROT_READ | PROT_WRITE, flags, out, (off_t)base);
            if (o == MAP_FAILED) {
                perror("mmap OUT");
                return 1;
            }
            for (int p = 0, off = (int)(start - base); p < pieces; off += HEADER + PIECE, p++)
                memcpy(o + off + CHECK_AT, &checks[p], 2);
            munmap(o, written - base);
        } else if (!strcmp(patch, "pwrite"))
            for (int p = 0; p < pieces; p++)
                if (pwrite(out, &checks[p], 2, (off_t)(start + (size_t)p * (HEADER + PIECE) + CHECK_AT)) != 2) {
                    perror("pwrite");
                    return 1;
                }
        checksums += checks[0];
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: floor_alternatives IN OUT split-read|split-map CHUNK WORKERS\n"
                        "       floor_alternatives IN OUT write-then-sum CHUNK none|map|map-populate|pwrite\n");
        return 2;
    }
    in = open(argv[1], O_RDONLY);
    out = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644);
    char *unit;
    chunk = (size_t)strtol(argv[4], &unit, 10) << (*unit == 'K' || *unit == 'k' ? 10 : 20);
    struct stat st;
    if (in < 0 || out < 0 || fstat(in, &st) || chunk == 0) {
        perror("floor_alternatives");
        return 1;
    }
    size = (size_t)st.st_size;
    if (!strcmp(argv[3], "write-then-sum"))
        return write_then_sum(argv[5]);
    use_map = !strcmp(argv[3], "split-map");
    workers = atoi(argv[5]);
    if (workers < 1 || workers > 64)
        return 2;
    pthread_t threads[64];
    for (long t = 0; t < workers; t++)
        pthread_create(&threads[t], NULL, split_worker, (void *)t);
    for (int t = 0; t < workers; t++)
        pthread_join(threads[t], NULL);
    return 0;
}
