/* The word-sum loops the C extensions share (softgso._checksum, softgso.bulk._csum, softgso.bulk._segment): plain C.
 *
 * sum_words(p, words): the sum of `words` native-endian unsigned 32-bit words at p, in 64 bits.
 * copy_sum_words(q, p, length): the same sum of p's length / 4 whole words, and all length bytes
 * (the tail too) copied to q in the same pass: the bytes read once for both.
 * Four accumulators keep the adds independent; memcpy keeps the loads legal at any alignment.
 */
#ifndef SOFTGSO_WORDSUM_H
#define SOFTGSO_WORDSUM_H

#include <stdint.h>
#include <string.h>

static inline uint64_t sum_words(const unsigned char *p, Py_ssize_t words)
{
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

#endif
