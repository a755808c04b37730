/* The word-sum loops the C extensions share (softgso._checksum, softgso.bulk._csum, softgso.bulk._segment): plain C.
 *
 * sum_words(p, words): the sum of `words` native-endian unsigned 32-bit words at p, in 64 bits.
 * copy_sum_words(q, p, length): the same sum of p's length / 4 whole words, and all length bytes
 * (the tail too) copied to q in the same pass: the bytes read once for both.
 * fold_with_tail(native, p, length): a range's big-endian 16-bit word sum modulo 0xFFFF from
 * sum_words of its whole words (its 1-3 tail bytes added).
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
