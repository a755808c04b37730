/* Optional accelerator for softgso.fastpath.word_sums: plain C, no numpy headers.
 *
 * u32_sums(address, offsets, length, out): for every int64 offset, the sum of the length // 4
 * native-endian (little-endian on every platform softgso runs on) unsigned 32-bit words at
 * address + offset, into out's uint64 of the same index: the same integer numpy's
 * view("<u4").sum(dtype=uint64) gives. The caller keeps the memory alive and in bounds.
 * copy_u32_sums(source, source_offsets, target, target_offsets, length, out): the same sums of
 * the ranges at source + source_offsets[k], each range (all length bytes) copied to
 * target + target_offsets[k] in the same pass: the payload read once for both.
 * range_sums(buffer, starts, lengths, out): for every k, the sum of the big-endian 16-bit words of
 * buffer[starts[k] : starts[k] + lengths[k]] (odd length zero-padded) modulo 0xFFFF, into out's
 * int64: fastpath.range_sums' integers.
 * walk_records(buffer, pos, end, chunk_end, big_endian, starts): the pcap record walk of
 * faststream._read_chunks: from pos, while pos < chunk_end, each record (16-byte header whose
 * caplen is at +8, then caplen bytes) that ends by end has its offset stored in starts (int64);
 * returns (records, pos after them, 1 if a record or header is cut short by end else 0).
 * The GIL is released while working.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static uint64_t sum_words(const unsigned char *p, Py_ssize_t words)
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

static uint64_t copy_sum_words(unsigned char *q, const unsigned char *p, Py_ssize_t length)
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
    memcpy(q + 4 * words, p + 4 * words, (size_t)(length - 4 * words));
    return a + b + c + d;
}

static PyObject *copy_u32_sums(PyObject *self, PyObject *args)
{
    unsigned long long source, target;
    Py_buffer from, to, out;
    Py_ssize_t length;
    (void)self;
    if (!PyArg_ParseTuple(args, "Ky*Ky*nw*", &source, &from, &target, &to, &length, &out))
        return NULL;
    Py_ssize_t count = from.len / 8;
    if (length < 0 || from.len % 8 || to.len != from.len || out.len < count * 8) {
        PyBuffer_Release(&from);
        PyBuffer_Release(&to);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "copy_u32_sums: bad sizes");
        return NULL;
    }
    const unsigned char *src = (const unsigned char *)(uintptr_t)source;
    unsigned char *dst = (unsigned char *)(uintptr_t)target;
    const int64_t *src_at = (const int64_t *)from.buf;
    const int64_t *dst_at = (const int64_t *)to.buf;
    uint64_t *sums = (uint64_t *)out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < count; k++)
        sums[k] = copy_sum_words(dst + dst_at[k], src + src_at[k], length);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&from);
    PyBuffer_Release(&to);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

static PyObject *range_sums(PyObject *self, PyObject *args)
{
    Py_buffer buffer, starts_buf, lengths_buf, out;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*w*", &buffer, &starts_buf, &lengths_buf, &out))
        return NULL;
    Py_ssize_t count = starts_buf.len / 8;
    const int64_t *starts = (const int64_t *)starts_buf.buf;
    const int64_t *lengths = (const int64_t *)lengths_buf.buf;
    int bad = starts_buf.len % 8 || lengths_buf.len != starts_buf.len || out.len < starts_buf.len;
    for (Py_ssize_t k = 0; !bad && k < count; k++)
        bad = starts[k] < 0 || lengths[k] < 0 || starts[k] + lengths[k] > buffer.len;
    if (bad) {
        PyBuffer_Release(&buffer);
        PyBuffer_Release(&starts_buf);
        PyBuffer_Release(&lengths_buf);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "range_sums: bad ranges");
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)buffer.buf;
    int64_t *sums = (int64_t *)out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < count; k++) {
        const unsigned char *p = data + starts[k];
        Py_ssize_t length = lengths[k], words = length / 4;
        /* little-endian 32-bit words: 256 times the big-endian 16-bit reading, modulo 0xFFFF */
        uint64_t native = sum_words(p, words) % 0xFFFF * 256;
        const unsigned char *t = p + 4 * words;
        switch (length - 4 * words) {
        case 3: native += (uint64_t)t[2] << 8; /* fall through */
        case 2: native += t[1]; /* fall through */
        case 1: native += (uint64_t)t[0] << 8; /* fall through */
        default: break;
        }
        sums[k] = (int64_t)(native % 0xFFFF);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&starts_buf);
    PyBuffer_Release(&lengths_buf);
    PyBuffer_Release(&out);
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
    if (pos < 0 || end > buffer.len || chunk_end > end || out.len % 8) {
        PyBuffer_Release(&buffer);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "walk_records: bad bounds");
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)buffer.buf;
    int64_t *starts = (int64_t *)out.buf;
    Py_ssize_t capacity = out.len / 8, count = 0;
    int cut = 0;
    Py_BEGIN_ALLOW_THREADS
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
        starts[count++] = pos;
        pos = following;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&out);
    return Py_BuildValue("nni", count, pos, cut);
}

static PyObject *u32_sums(PyObject *self, PyObject *args)
{
    unsigned long long address;
    Py_buffer offsets, out;
    Py_ssize_t length;
    (void)self;
    if (!PyArg_ParseTuple(args, "Ky*nw*", &address, &offsets, &length, &out))
        return NULL;
    Py_ssize_t count = offsets.len / 8;
    if (length < 0 || offsets.len % 8 || out.len < count * 8) {
        PyBuffer_Release(&offsets);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "u32_sums: bad sizes");
        return NULL;
    }
    const unsigned char *base = (const unsigned char *)(uintptr_t)address;
    const int64_t *at = (const int64_t *)offsets.buf;
    uint64_t *sums = (uint64_t *)out.buf;
    Py_ssize_t words = length / 4;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < count; k++)
        sums[k] = sum_words(base + at[k], words);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&out);
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
