/* Optional compiled sums for softgso.checksum (the engine's own, not the fast path's): plain C.
 *
 * chunk_sums(data, size) -> list: checksum.ones_sum of every size-byte chunk of data (the last
 *   may be shorter): 0 only for an all-zero chunk, 0xFFFF for any other multiple of 0xFFFF. The
 *   scalar GSO path sums every segment's payload with it (gso.py), without importing numpy.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "_wordsum.h"

#define ONES 0xFFFF

/* the big-endian 16-bit word sum of p[0:length] (odd length zero-padded), modulo 0xFFFF */
static int64_t word_sum(const unsigned char *p, Py_ssize_t length)
{
    return fold_with_tail(sum_words(p, length / 4), p, length);
}

static PyObject *chunk_sums(PyObject *self, PyObject *args)
{
    Py_buffer data;
    Py_ssize_t size;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*n", &data, &size))
        return NULL;
    if (size < 1) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "chunk_sums: the chunk size must be positive");
        return NULL;
    }
    Py_ssize_t chunks = (data.len + size - 1) / size;
    PyObject *result = PyList_New(chunks);
    if (!result) {
        PyBuffer_Release(&data);
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)data.buf;
    for (Py_ssize_t k = 0; k < chunks; k++) {
        Py_ssize_t start = k * size, length = data.len - start < size ? data.len - start : size;
        int64_t sum = word_sum(p + start, length);
        if (sum == 0) {
            /* a multiple of 0xFFFF: 0 only when every byte is 0 */
            Py_ssize_t i = 0;
            while (i < length && p[start + i] == 0)
                i++;
            sum = i == length ? 0 : ONES;
        }
        PyObject *value = PyLong_FromLongLong(sum);
        if (!value) {
            Py_DECREF(result);
            PyBuffer_Release(&data);
            return NULL;
        }
        PyList_SET_ITEM(result, k, value);
    }
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"chunk_sums", chunk_sums, METH_VARARGS, "ones_sum of every fixed-size chunk of a buffer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_checksum", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__checksum(void)
{
    return PyModule_Create(&module);
}
