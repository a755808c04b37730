/* softgso.datapath._batchio: many frames per Python call on the datapath's descriptors.

   send_batch / recv_batch put a batch of frames on a packet socket, or take one from it, in one
   sendmmsg(2) / recvmmsg(2) each (Python's socket module has neither). read_batch and write_each
   loop read(2) / write(2) on a TAP, which takes one frame per call: the system calls stay one per
   frame there, only the interpreter's work per frame goes. softgso.datapath.batchio is the
   pure-Python module with the same functions and results, used where this one is not built. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* frames per sendmmsg / recvmmsg call (the kernel caps vlen at UIO_MAXIOV, 1024) */
#define MAX_BATCH 1024

static PyObject *
send_batch(PyObject *self, PyObject *args)
{
    int fd;
    PyObject *frames;
    if (!PyArg_ParseTuple(args, "iO:send_batch", &fd, &frames))
        return NULL;
    PyObject *seq = PySequence_Fast(frames, "send_batch: frames must be a sequence of buffers");
    if (seq == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    Py_buffer *views = PyMem_Calloc(count ? count : 1, sizeof(Py_buffer));
    struct mmsghdr *msgs = PyMem_Calloc(count ? count : 1, sizeof(struct mmsghdr));
    struct iovec *iovs = PyMem_Calloc(count ? count : 1, sizeof(struct iovec));
    Py_ssize_t held = 0, sent = 0, calls = 0;
    PyObject *result = NULL;
    int saved_errno = 0;
    if (views == NULL || msgs == NULL || iovs == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; held < count; held++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, held), &views[held], PyBUF_SIMPLE) < 0)
            goto done;
        iovs[held].iov_base = views[held].buf;
        iovs[held].iov_len = (size_t)views[held].len;
        msgs[held].msg_hdr.msg_iov = &iovs[held];
        msgs[held].msg_hdr.msg_iovlen = 1;
    }
    Py_BEGIN_ALLOW_THREADS
    while (sent < count) {
        unsigned int vlen = (unsigned int)(count - sent > MAX_BATCH ? MAX_BATCH : count - sent);
        int done_now = sendmmsg(fd, msgs + sent, vlen, 0);
        calls++;
        if (done_now < 0) {
            if (errno == EINTR)
                continue;
            saved_errno = errno;
            break;
        }
        sent += done_now;
    }
    Py_END_ALLOW_THREADS
    if (saved_errno && saved_errno != EAGAIN && saved_errno != EWOULDBLOCK && sent == 0) {
        errno = saved_errno;
        PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }
    /* (frames sent, system calls, errno that stopped it or 0) */
    result = Py_BuildValue("nni", sent, calls, saved_errno);
done:
    for (Py_ssize_t i = 0; i < held; i++)
        PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    PyMem_Free(msgs);
    PyMem_Free(iovs);
    Py_DECREF(seq);
    return result;
}

static PyObject *
recv_batch(PyObject *self, PyObject *args)
{
    int fd;
    Py_ssize_t max_frames, frame_size;
    if (!PyArg_ParseTuple(args, "inn:recv_batch", &fd, &max_frames, &frame_size))
        return NULL;
    if (max_frames < 1 || max_frames > MAX_BATCH || frame_size < 1 || frame_size > (1 << 20)) {
        PyErr_SetString(PyExc_ValueError, "recv_batch: max_frames 1..1024, frame_size 1..1048576");
        return NULL;
    }
    char *area = PyMem_Malloc((size_t)(max_frames * frame_size));
    struct mmsghdr *msgs = PyMem_Calloc((size_t)max_frames, sizeof(struct mmsghdr));
    struct iovec *iovs = PyMem_Calloc((size_t)max_frames, sizeof(struct iovec));
    PyObject *result = NULL;
    if (area == NULL || msgs == NULL || iovs == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < max_frames; i++) {
        iovs[i].iov_base = area + i * frame_size;
        iovs[i].iov_len = (size_t)frame_size;
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int got;
    Py_BEGIN_ALLOW_THREADS
    do {
        got = recvmmsg(fd, msgs, (unsigned int)max_frames, MSG_DONTWAIT, NULL);
    } while (got < 0 && errno == EINTR);
    Py_END_ALLOW_THREADS
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            result = Py_BuildValue("(Nnn)", PyList_New(0), (Py_ssize_t)0, (Py_ssize_t)1);
            goto done;
        }
        PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }
    PyObject *frames = PyList_New(0);
    Py_ssize_t truncated = 0;
    if (frames == NULL)
        goto done;
    for (int i = 0; i < got; i++) {
        if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
            truncated++;
            continue;
        }
        PyObject *frame = PyBytes_FromStringAndSize(area + i * frame_size, (Py_ssize_t)msgs[i].msg_len);
        if (frame == NULL || PyList_Append(frames, frame) < 0) {
            Py_XDECREF(frame);
            Py_DECREF(frames);
            goto done;
        }
        Py_DECREF(frame);
    }
    /* (frames, frames dropped because longer than frame_size, system calls) */
    result = Py_BuildValue("(Nnn)", frames, truncated, (Py_ssize_t)1);
done:
    PyMem_Free(area);
    PyMem_Free(msgs);
    PyMem_Free(iovs);
    return result;
}

static PyObject *
read_batch(PyObject *self, PyObject *args)
{
    int fd;
    Py_ssize_t max_reads, size;
    if (!PyArg_ParseTuple(args, "inn:read_batch", &fd, &max_reads, &size))
        return NULL;
    if (max_reads < 1 || size < 1 || size > (1 << 20)) {
        PyErr_SetString(PyExc_ValueError, "read_batch: max_reads >= 1, size 1..1048576");
        return NULL;
    }
    char *buf = PyMem_Malloc((size_t)size);
    if (buf == NULL)
        return PyErr_NoMemory();
    PyObject *frames = PyList_New(0);
    Py_ssize_t calls = 0;
    int failed = 0;
    if (frames == NULL)
        goto fail;
    while (PyList_GET_SIZE(frames) < max_reads) {
        ssize_t got;
        Py_BEGIN_ALLOW_THREADS
        got = read(fd, buf, (size_t)size);
        Py_END_ALLOW_THREADS
        calls++;
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                failed = errno;
            break;
        }
        PyObject *frame = PyBytes_FromStringAndSize(buf, got);
        if (frame == NULL || PyList_Append(frames, frame) < 0) {
            Py_XDECREF(frame);
            goto fail;
        }
        Py_DECREF(frame);
    }
    PyMem_Free(buf);
    if (failed && PyList_GET_SIZE(frames) == 0) {
        Py_DECREF(frames);
        errno = failed;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    /* (frames, system calls); an error after some frames is met again by the next call */
    return Py_BuildValue("(Nn)", frames, calls);
fail:
    PyMem_Free(buf);
    Py_XDECREF(frames);
    return NULL;
}

static PyObject *
write_each(PyObject *self, PyObject *args)
{
    int fd;
    PyObject *frames;
    if (!PyArg_ParseTuple(args, "iO:write_each", &fd, &frames))
        return NULL;
    PyObject *seq = PySequence_Fast(frames, "write_each: frames must be a sequence of buffers");
    if (seq == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq), written = 0;
    int failed = 0;
    for (; written < count; written++) {
        Py_buffer view;
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, written), &view, PyBUF_SIMPLE) < 0) {
            Py_DECREF(seq);
            return NULL;
        }
        ssize_t done_now;
        Py_BEGIN_ALLOW_THREADS
        do {
            done_now = write(fd, view.buf, (size_t)view.len);
        } while (done_now < 0 && errno == EINTR);
        Py_END_ALLOW_THREADS
        PyBuffer_Release(&view);
        if (done_now < 0) {
            failed = errno;
            break;
        }
    }
    Py_DECREF(seq);
    /* (frames written, errno that stopped it or 0): frame ``written`` failed, the rest were not tried */
    return Py_BuildValue("(ni)", written, failed);
}

static PyMethodDef methods[] = {
    {"send_batch", send_batch, METH_VARARGS,
     "send_batch(fd, frames) -> (sent, calls, errno): the frames on a socket by sendmmsg, up to 1024 a call"},
    {"recv_batch", recv_batch, METH_VARARGS,
     "recv_batch(fd, max_frames, frame_size) -> (frames, truncated, calls): one recvmmsg(MSG_DONTWAIT)"},
    {"read_batch", read_batch, METH_VARARGS,
     "read_batch(fd, max_reads, size) -> (frames, calls): read() until EAGAIN or max_reads frames"},
    {"write_each", write_each, METH_VARARGS,
     "write_each(fd, frames) -> (written, errno): one write() per frame, stopping at the first failure"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "softgso.datapath._batchio",
    "Batched system calls for the datapath (sendmmsg, recvmmsg, read and write loops).", -1, methods,
};

PyMODINIT_FUNC
PyInit__batchio(void)
{
    return PyModule_Create(&module);
}
