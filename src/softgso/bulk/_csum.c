/* Optional accelerator for softgso.bulk.fastpath.word_sums: plain C, no numpy headers.
 *
 * u32_sums(buffer, offsets, length, out): for every int64 offset, the sum of the length // 4
 * native-endian (little-endian on every platform softgso runs on) unsigned 32-bit words at
 * buffer[offset:], into out's uint64 of the same index: the same integer numpy's
 * view("<u4").sum(dtype=uint64) gives.
 * copy_u32_sums(source, source_offsets, target, target_offsets, length, out): the same sums of
 * the ranges at source[source_offsets[k]:], each range (all length bytes) copied to
 * target[target_offsets[k]:] in the same pass: the payload read once for both.
 * range_sums(buffer, starts, lengths, out): for every k, the sum of the big-endian 16-bit words of
 * buffer[starts[k] : starts[k] + lengths[k]] (odd length zero-padded) modulo 0xFFFF, into out's
 * int64: fastpath.range_sums' integers.
 * walk_records(buffer, pos, end, chunk_end, big_endian, starts): the pcap record walk of
 * softgso.bulk.numpy_primitive (NumpyPrimitive.scan): from pos, while pos < chunk_end, each record (16-byte header whose
 * caplen is at +8, then caplen bytes) that ends by end has its offset stored in starts (int64);
 * returns (records, pos after them, 1 if a record or header is cut short by end else 0).
 *
 * Safe by construction: every memory argument is a buffer object (never a raw address), and every
 * offset, length and output size is checked against the buffers' lengths before any byte is
 * touched; a bad one is a ValueError naming the check. Offset and output arrays need no
 * alignment (read and written with memcpy). The GIL is released while working.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../_wordsum.h"

static int64_t load_i64(const void *base, Py_ssize_t k)
{
    int64_t value;
    memcpy(&value, (const unsigned char *)base + 8 * k, 8);
    return value;
}

static void store_u64(void *base, Py_ssize_t k, uint64_t value)
{
    memcpy((unsigned char *)base + 8 * k, &value, 8);
}

/* 1 if every range [offsets[k], offsets[k] + length) lies inside a buffer of size bytes, else 0
 * with a ValueError naming the first that does not (no overflow: 0 <= length, 0 <= at <= size). */
static int check_ranges(const char *function, const char *offsets_name, const Py_buffer *offsets,
                        Py_ssize_t length, const char *buffer_name, Py_ssize_t size)
{
    Py_ssize_t count = offsets->len / 8;
    for (Py_ssize_t k = 0; k < count; k++) {
        int64_t at = load_i64(offsets->buf, k);
        if (at < 0 || at > (int64_t)size || length > size - (Py_ssize_t)at) {
            PyErr_Format(PyExc_ValueError,
                         "%s: %s[%zd] = %lld with length %zd reaches outside the %s (%zd bytes)",
                         function, offsets_name, k, (long long)at, length, buffer_name, size);
            return 0;
        }
    }
    return 1;
}

/* 0 with a ValueError naming the check unless the int64 array holds whole items, and out has room
 * for one 8-byte result per item. */
static int check_sizes(const char *function, const char *what, const Py_buffer *items, const Py_buffer *out)
{
    if (items->len % 8) {
        PyErr_Format(PyExc_ValueError, "%s: %s holds %zd bytes, not a whole number of int64", function, what,
                     items->len);
        return 0;
    }
    if (out->len < items->len) {
        PyErr_Format(PyExc_ValueError, "%s: out holds %zd bytes, fewer than the %zd for %zd results", function,
                     out->len, items->len, items->len / 8);
        return 0;
    }
    return 1;
}

static PyObject *copy_u32_sums(PyObject *self, PyObject *args)
{
    Py_buffer source, from, target, to, out;
    Py_ssize_t length;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*w*y*nw*", &source, &from, &target, &to, &length, &out))
        return NULL;
    int ok = 1;
    if (length < 0) {
        PyErr_Format(PyExc_ValueError, "copy_u32_sums: length %zd < 0", length);
        ok = 0;
    }
    ok = ok && check_sizes("copy_u32_sums", "source_offsets", &from, &out);
    if (ok && to.len != from.len) {
        PyErr_Format(PyExc_ValueError, "copy_u32_sums: target_offsets holds %zd bytes, source_offsets %zd",
                     to.len, from.len);
        ok = 0;
    }
    ok = ok && check_ranges("copy_u32_sums", "source_offsets", &from, length, "source", source.len)
            && check_ranges("copy_u32_sums", "target_offsets", &to, length, "target", target.len);
    if (ok) {
        const unsigned char *src = (const unsigned char *)source.buf;
        unsigned char *dst = (unsigned char *)target.buf;
        Py_ssize_t count = from.len / 8;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t k = 0; k < count; k++)
            store_u64(out.buf, k, copy_sum_words(dst + load_i64(to.buf, k), src + load_i64(from.buf, k), length));
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&source);
    PyBuffer_Release(&from);
    PyBuffer_Release(&target);
    PyBuffer_Release(&to);
    PyBuffer_Release(&out);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *range_sums(PyObject *self, PyObject *args)
{
    Py_buffer buffer, starts_buf, lengths_buf, out;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*w*", &buffer, &starts_buf, &lengths_buf, &out))
        return NULL;
    int ok = check_sizes("range_sums", "starts", &starts_buf, &out);
    if (ok && lengths_buf.len != starts_buf.len) {
        PyErr_Format(PyExc_ValueError, "range_sums: lengths holds %zd bytes, starts %zd", lengths_buf.len,
                     starts_buf.len);
        ok = 0;
    }
    Py_ssize_t count = starts_buf.len / 8;
    for (Py_ssize_t k = 0; ok && k < count; k++) {
        int64_t start = load_i64(starts_buf.buf, k), length = load_i64(lengths_buf.buf, k);
        if (start < 0 || length < 0 || start > (int64_t)buffer.len || length > (int64_t)buffer.len - start) {
            PyErr_Format(PyExc_ValueError,
                         "range_sums: range %zd (start %lld, length %lld) is not inside the buffer of %zd bytes",
                         k, (long long)start, (long long)length, buffer.len);
            ok = 0;
        }
    }
    if (ok) {
        const unsigned char *data = (const unsigned char *)buffer.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t k = 0; k < count; k++) {
            const unsigned char *p = data + load_i64(starts_buf.buf, k);
            Py_ssize_t length = (Py_ssize_t)load_i64(lengths_buf.buf, k);
            store_u64(out.buf, k, (uint64_t)fold_with_tail(sum_words(p, length / 4), p, length));
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&starts_buf);
    PyBuffer_Release(&lengths_buf);
    PyBuffer_Release(&out);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *walk_records(PyObject *self, PyObject *args)
{
    Py_buffer buffer, out;
    Py_ssize_t pos, end, chunk_end;
    int big_endian;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnpw*", &buffer, &pos, &end, &chunk_end, &big_endian, &out))
        return NULL;
    const char *bad = NULL;
    if (pos < 0)
        bad = "pos < 0";
    else if (end > buffer.len)
        bad = "end beyond the buffer";
    else if (chunk_end > end)
        bad = "chunk_end beyond end";
    else if (out.len % 8)
        bad = "starts not a whole number of int64";
    if (bad != NULL) {
        PyErr_Format(PyExc_ValueError, "walk_records: %s (pos %zd, end %zd, chunk_end %zd, buffer %zd bytes, "
                     "starts %zd bytes)", bad, pos, end, chunk_end, buffer.len, out.len);
        PyBuffer_Release(&buffer);
        PyBuffer_Release(&out);
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)buffer.buf;
    Py_ssize_t capacity = out.len / 8, count = 0;
    int cut = 0;
    Py_BEGIN_ALLOW_THREADS
    /* pos < chunk_end <= end <= buffer.len inside the loop: the 16-byte header is read only once
     * end - pos >= 16, and pos + 16 + caplen cannot overflow (caplen < 2^32) */
    while (pos < chunk_end && count < capacity) {
        if (end - pos < 16) {
            cut = 1;
            break;
        }
        const unsigned char *f = data + pos + 8;
        uint32_t caplen = big_endian ? ((uint32_t)f[0] << 24 | (uint32_t)f[1] << 16 | (uint32_t)f[2] << 8 | f[3])
                                     : ((uint32_t)f[3] << 24 | (uint32_t)f[2] << 16 | (uint32_t)f[1] << 8 | f[0]);
        Py_ssize_t following = pos + 16 + (Py_ssize_t)caplen;
        if (following > end) {
            cut = 1;
            break;
        }
        store_u64(out.buf, count++, (uint64_t)pos);
        pos = following;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&out);
    return Py_BuildValue("nni", count, pos, cut);
}

static PyObject *u32_sums(PyObject *self, PyObject *args)
{
    Py_buffer buffer, offsets, out;
    Py_ssize_t length;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nw*", &buffer, &offsets, &length, &out))
        return NULL;
    int ok = 1;
    if (length < 0) {
        PyErr_Format(PyExc_ValueError, "u32_sums: length %zd < 0", length);
        ok = 0;
    }
    ok = ok && check_sizes("u32_sums", "offsets", &offsets, &out)
            && check_ranges("u32_sums", "offsets", &offsets, length, "buffer", buffer.len);
    if (ok) {
        const unsigned char *base = (const unsigned char *)buffer.buf;
        Py_ssize_t count = offsets.len / 8, words = length / 4;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t k = 0; k < count; k++)
            store_u64(out.buf, k, sum_words(base + load_i64(offsets.buf, k), words));
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&out);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"u32_sums", u32_sums, METH_VARARGS, "Sums of native 32-bit words of byte ranges (see the module source)."},
    {"copy_u32_sums", copy_u32_sums, METH_VARARGS, "u32_sums of byte ranges, copied elsewhere in the same pass."},
    {"range_sums", range_sums, METH_VARARGS, "Big-endian 16-bit word sums of byte ranges, modulo 0xFFFF."},
    {"walk_records", walk_records, METH_VARARGS, "The pcap record walk of one chunk (see the module source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_csum", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__csum(void)
{
    return PyModule_Create(&module);
}
