/* The word-sum loops the C extensions share (softgso._checksum, softgso.bulk._csum, softgso.bulk._segment): plain C,
 * and an AVX2 loop for long ranges where the CPU has it (x86-64, GCC or clang).
 *
 * sum_words(p, words): the sum of `words` native-endian unsigned 32-bit words at p, in 64 bits.
 * copy_sum_words(q, p, length): the same sum of p's length / 4 whole words, and all length bytes
 * (the tail too) copied to q in the same pass: the bytes read once for both.
 * fold_with_tail(native, p, length): a range's big-endian 16-bit word sum modulo 0xFFFF from
 * sum_words of its whole words (its 1-3 tail bytes added).
 * Four accumulators keep the adds independent; memcpy keeps the loads legal at any alignment.
 * sum_words of WORDSUM_WIDE words or more takes the AVX2 loop when __builtin_cpu_supports("avx2")
 * says so (checked once per module): 512 MiB summed in 64000-byte pieces from a buffer in L2 took
 * 0.019 s of CPU with the plain loop and 0.007 s with AVX2; from memory (a mapped 512 MiB file,
 * 1448-byte pieces) 0.037-0.044 s and 0.033-0.038 s (README, performance). The plain loop stays
 * for every other CPU and for short ranges (headers).
 * The AVX2 loop asks for the bytes WORDSUM_AHEAD ahead of it (a prefetch never faults, past a range's
 * or a mapping's end included): a payload is summed at its first touch since it left memory, and
 * the hardware's own prefetch stops at each 4 KiB page. A mapped 512 MiB file in 1448-byte pieces
 * summed in 0.049-0.051 s of CPU with it, 0.060-0.065 s without; `segment` of 512 MiB of
 * super-packets (pcapng) 0.342 s against 0.369 s (README, performance).
 */
#ifndef SOFTGSO_WORDSUM_H
#define SOFTGSO_WORDSUM_H

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define WORDSUM_AVX2 1
#define WORDSUM_WIDE 64
#define WORDSUM_AHEAD 2048 /* bytes: 1-8 KiB measured alike, 1 KiB or less gained less */

/* sum_words 16 words at a time: each 32-bit word widened to 64 bits (unpacked against zeros),
 * four accumulators of four lanes */
__attribute__((target("avx2"))) static uint64_t sum_words_avx2(const unsigned char *p, Py_ssize_t words)
{
    const __m256i zero = _mm256_setzero_si256();
    __m256i a = zero, b = zero, c = zero, d = zero;
    Py_ssize_t i = 0;
    for (; i + 16 <= words; i += 16) {
        _mm_prefetch((const char *)(p + 4 * i + WORDSUM_AHEAD), _MM_HINT_T0);
        __m256i x = _mm256_loadu_si256((const __m256i *)(p + 4 * i));
        __m256i y = _mm256_loadu_si256((const __m256i *)(p + 4 * i + 32));
        a = _mm256_add_epi64(a, _mm256_unpacklo_epi32(x, zero));
        b = _mm256_add_epi64(b, _mm256_unpackhi_epi32(x, zero));
        c = _mm256_add_epi64(c, _mm256_unpacklo_epi32(y, zero));
        d = _mm256_add_epi64(d, _mm256_unpackhi_epi32(y, zero));
    }
    uint64_t lanes[4], total = 0;
    _mm256_storeu_si256((__m256i *)lanes, _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d)));
    for (; i < words; i++) {
        uint32_t w;
        memcpy(&w, p + 4 * i, 4);
        total += w;
    }
    return total + lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

static int wordsum_avx2 = -1; /* unknown yet; then whether the CPU has AVX2 */
#endif

static inline uint64_t sum_words(const unsigned char *p, Py_ssize_t words)
{
#ifdef WORDSUM_AVX2
    if (words >= WORDSUM_WIDE) {
        if (wordsum_avx2 < 0)
            wordsum_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
        if (wordsum_avx2)
            return sum_words_avx2(p, words);
    }
#endif
    uint64_t a = 0, b = 0, c = 0, d = 0;
    Py_ssize_t i = 0;
    for (; i + 4 <= words; i += 4) {
        uint32_t w[4];
        memcpy(w, p + 4 * i, 16);
        a += w[0];
        b += w[1];
        c += w[2];
        d += w[3];
    }
    for (; i < words; i++) {
        uint32_t w;
        memcpy(&w, p + 4 * i, 4);
        a += w;
    }
    return a + b + c + d;
}

static inline uint64_t copy_sum_words(unsigned char *q, const unsigned char *p, Py_ssize_t length)
{
    uint64_t a = 0, b = 0, c = 0, d = 0;
    Py_ssize_t words = length / 4, i = 0;
    for (; i + 4 <= words; i += 4) {
        uint32_t w[4];
        memcpy(w, p + 4 * i, 16);
        memcpy(q + 4 * i, w, 16);
        a += w[0];
        b += w[1];
        c += w[2];
        d += w[3];
    }
    for (; i < words; i++) {
        uint32_t w;
        memcpy(&w, p + 4 * i, 4);
        memcpy(q + 4 * i, &w, 4);
        a += w;
    }
    memmove(q + 4 * words, p + 4 * words, (size_t)(length - 4 * words));
    return a + b + c + d;
}

/* The big-endian 16-bit word sums of a range (odd length zero-padded), modulo 0xFFFF, from the
 * native 32-bit word sum of its whole words: a 32-bit word is congruent to the sum of its halves,
 * and a byte-swapped half to 256 times the half, so one reduction and (little-endian) one swap
 * give the big-endian sum; the 1-3 tail bytes are added as big-endian words. */
static inline int64_t fold_with_tail(uint64_t native, const unsigned char *p, Py_ssize_t length)
{
    int64_t total = (int64_t)(native % 0xFFFF);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    total = total * 256 % 0xFFFF;
#endif
    Py_ssize_t main = length & ~(Py_ssize_t)3, tail = length - main;
    if (tail >= 1)
        total += (int64_t)p[main] << 8;
    if (tail >= 2)
        total += p[main + 1];
    if (tail >= 3)
        total += (int64_t)p[main + 2] << 8;
    return total % 0xFFFF;
}

#endif
