/* softgso.io._reserve: space for an output file, taken step by step without the GIL.
 *
 * reserve_space(fd, start, length, step, stop) -> bytes reserved
 *   fallocate(FALLOC_FL_KEEP_SIZE) of length bytes of the file from start, step bytes at a time, until
 *   done, refused (any error: the writes that follow report real ones) or stop[0] is set by
 *   another thread (softgso.io.outfile: space for OUT taken while the interpreter starts). The file's
 *   size does not change; 0 where fallocate does not exist.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#ifdef __linux__
#include <fcntl.h>
#include <linux/falloc.h>
#endif

static PyObject *reserve_space(PyObject *self, PyObject *args)
{
    int fd;
    long long start, length, step;
    Py_buffer stop;
    (void)self;
    if (!PyArg_ParseTuple(args, "iLLLw*", &fd, &start, &length, &step, &stop))
        return NULL;
    if (stop.len < 1 || step < 1 || start < 0 || length < 0 || length > LLONG_MAX - start) {
        PyBuffer_Release(&stop);
        PyErr_SetString(PyExc_ValueError, "reserve_space: stop needs a byte, step must be positive and the range "
                        "must be within the file's offsets");
        return NULL;
    }
    long long done = 0;
#if defined(__linux__) && defined(FALLOC_FL_KEEP_SIZE)
    volatile const unsigned char *flag = (volatile const unsigned char *)stop.buf;
    Py_BEGIN_ALLOW_THREADS
    while (done < length && !flag[0]) {
        long long n = length - done < step ? length - done : step;
        if (fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)(start + done), (off_t)n) != 0)
            break;
        done += n;
    }
    Py_END_ALLOW_THREADS
#else
    (void)fd; (void)start; (void)length;
#endif
    PyBuffer_Release(&stop);
    return PyLong_FromLongLong(done);
}

static PyMethodDef methods[] = {
    {"reserve_space", reserve_space, METH_VARARGS, "Reserve a file's space step by step until told to stop."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_reserve", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__reserve(void)
{
    return PyModule_Create(&module);
}
