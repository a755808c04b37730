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

/* sendmmsg(2) of msgs[0..count), up to MAX_BATCH a call, EINTR retried, without the GIL: frames sent;
   *calls counts the calls, *saved_errno the error that stopped it (0: none) */
static Py_ssize_t
sendmmsg_all(int fd, struct mmsghdr *msgs, Py_ssize_t count, Py_ssize_t *calls, int *saved_errno)
{
    Py_ssize_t sent = 0;
    *saved_errno = 0;
    Py_BEGIN_ALLOW_THREADS
    while (sent < count) {
        unsigned int vlen = (unsigned int)(count - sent > MAX_BATCH ? MAX_BATCH : count - sent);
        int done_now = sendmmsg(fd, msgs + sent, vlen, 0);
        (*calls)++;
        if (done_now < 0) {
            if (errno == EINTR)
                continue;
            *saved_errno = errno;
            break;
        }
        sent += done_now;
    }
    Py_END_ALLOW_THREADS
    return sent;
}

/* send_batch's result: (frames sent, system calls, errno that stopped it or 0); OSError when the error
   came before any frame and is not EAGAIN */
static PyObject *
sent_result(Py_ssize_t sent, Py_ssize_t calls, int saved_errno)
{
    if (saved_errno && saved_errno != EAGAIN && saved_errno != EWOULDBLOCK && sent == 0) {
        errno = saved_errno;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return Py_BuildValue("nni", sent, calls, saved_errno);
}

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
    sent = sendmmsg_all(fd, msgs, count, &calls, &saved_errno);
    result = sent_result(sent, calls, saved_errno);
done:
    for (Py_ssize_t i = 0; i < held; i++)
        PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    PyMem_Free(msgs);
    PyMem_Free(iovs);
    Py_DECREF(seq);
    return result;
}

/* one recvmmsg(MSG_DONTWAIT) of up to max_frames frames, frame i into area + i * frame_size, EINTR
   retried, without the GIL: frames received, or -1 (errno set) */
static int
recv_slots(int fd, unsigned char *area, Py_ssize_t max_frames, Py_ssize_t frame_size, struct mmsghdr *msgs,
           struct iovec *iovs)
{
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
    return got;
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
    int got = recv_slots(fd, (unsigned char *)area, max_frames, frame_size, msgs, iovs);
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

/* one read(2) without the GIL, EINTR retried: its length, or -1 to stop (*failed: its errno, left 0 for
   EAGAIN); *calls counts the calls */
static ssize_t
read_once(int fd, void *buf, size_t size, Py_ssize_t *calls, int *failed)
{
    for (;;) {
        ssize_t got;
        Py_BEGIN_ALLOW_THREADS
        got = read(fd, buf, size);
        Py_END_ALLOW_THREADS
        (*calls)++;
        if (got >= 0)
            return got;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            *failed = errno;
        return -1;
    }
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
        ssize_t got = read_once(fd, buf, (size_t)size, &calls, &failed);
        if (got < 0)
            break;
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


/* -- the far edge: recvmmsg, the label pop, the TAP writes ---------------------------------------- */

/* A frame's description in recv_pop's and write_packets' meta (softgso.gro._coalesce's coalesce_area
   reads and writes the same): offset, length, segs, gso_size, gso_type, verified (int64 each). */
#define META 6

static inline unsigned be16(const unsigned char *p) { return ((unsigned)p[0] << 8) | p[1]; }

static PyObject *
recv_pop(PyObject *self, PyObject *args)
{
    int fd;
    Py_buffer area, meta, mask, value, prefix4, prefix6;
    Py_ssize_t max_frames, frame_size, stack_end;
    if (!PyArg_ParseTuple(args, "iw*w*nnny*y*y*y*:recv_pop", &fd, &area, &meta, &max_frames, &frame_size,
                          &stack_end, &mask, &value, &prefix4, &prefix6))
        return NULL;
    PyObject *result = NULL;
    struct mmsghdr *msgs = NULL;
    struct iovec *iovs = NULL;
    Py_ssize_t stack_len = stack_end - 14;
    if (max_frames < 1 || max_frames > MAX_BATCH || frame_size < 1 || frame_size > (1 << 20)
        || area.len / frame_size < max_frames || meta.len < (Py_ssize_t)sizeof(int64_t) * META * max_frames
        || stack_len < 4 || stack_len % 4 || stack_end >= frame_size || mask.len != stack_len
        || value.len != stack_len || prefix4.len != 14 || prefix6.len != 14) {
        PyErr_SetString(PyExc_ValueError, "recv_pop: max_frames 1..1024, frame_size 1..1048576 (area and meta "
                        "holding them), a stack of 4-byte entries after 14 bytes, 14-byte prefixes");
        goto done;
    }
    msgs = PyMem_Calloc((size_t)max_frames, sizeof(struct mmsghdr));
    iovs = PyMem_Calloc((size_t)max_frames, sizeof(struct iovec));
    if (msgs == NULL || iovs == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    unsigned char *base = area.buf;
    int got = recv_slots(fd, base, max_frames, frame_size, msgs, iovs);
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            result = Py_BuildValue("(nnnn)", (Py_ssize_t)0, (Py_ssize_t)0, (Py_ssize_t)0, (Py_ssize_t)1);
            goto done;
        }
        PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }
    const unsigned char *m = mask.buf, *v = value.buf;
    int64_t *out = meta.buf;
    Py_ssize_t count = 0, refused = 0, truncated = 0;
    for (int i = 0; i < got; i++) {
        if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
            truncated++;
            continue;
        }
        unsigned char *frame = base + i * frame_size;
        Py_ssize_t len = (Py_ssize_t)msgs[i].msg_len;
        int64_t *entry = out + META * count++;
        /* link.FarEdge.pop: exactly the expected stack (labels and bottom-of-stack bits; TC and TTL
           may be anything) over IPv4 or IPv6; the MACs are not looked at */
        int usual = len > stack_end && be16(frame + 12) == 0x8847;
        for (Py_ssize_t k = 0; usual && k < stack_len; k++)
            usual = (frame[14 + k] & m[k]) == v[k];
        const Py_buffer *prefix = !usual ? NULL : frame[stack_end] >> 4 == 4 ? &prefix4
                                  : frame[stack_end] >> 4 == 6 ? &prefix6 : NULL;
        entry[2] = 1;
        entry[3] = entry[4] = entry[5] = 0;
        if (prefix == NULL) { /* for the LER's own pop, which counts why */
            entry[0] = i * frame_size;
            entry[1] = len;
            entry[2] = 0;
            refused++;
            continue;
        }
        /* the labels popped in place: the TAP's MACs and the ethertype just before the IP header */
        memcpy(frame + stack_end - 14, prefix->buf, 14);
        entry[0] = i * frame_size + stack_end - 14;
        entry[1] = len - stack_end + 14;
    }
    /* (frames in meta, of which refused by the pop (segs 0), frames longer than frame_size, calls) */
    result = Py_BuildValue("(nnnn)", count, refused, truncated, (Py_ssize_t)1);
done:
    PyMem_Free(msgs);
    PyMem_Free(iovs);
    PyBuffer_Release(&area);
    PyBuffer_Release(&meta);
    PyBuffer_Release(&mask);
    PyBuffer_Release(&value);
    PyBuffer_Release(&prefix4);
    PyBuffer_Release(&prefix6);
    return result;
}

static inline void put16(unsigned char *p, unsigned v, int little_endian)
{
    p[little_endian ? 0 : 1] = (unsigned char)v;
    p[little_endian ? 1 : 0] = (unsigned char)(v >> 8);
}

/* Where the L4 header of an Ethernet + IPv4/IPv6 frame starts (link.transport_offset) */
static Py_ssize_t transport_offset(const unsigned char *frame, Py_ssize_t len)
{
    if (len <= 14 + 6)
        return 14;
    if (frame[14] >> 4 == 4)
        return 14 + (frame[14] & 0x0F) * 4;
    Py_ssize_t offset = 14 + 40;
    unsigned next = frame[14 + 6];
    while ((next == 0 || next == 43 || next == 60) && offset + 2 <= len) {
        next = frame[offset];
        offset += (frame[offset + 1] + 1) * 8;
    }
    return offset;
}

/* The virtio_net_hdr of a packet GRO hands up (link.FarEdge.vnet_header: virtio_net_hdr_from_skb of
   the skb it stands for); 0 when it has none (a GSO type other than TCP). */
static int vnet_header(unsigned char *hdr, const unsigned char *frame, const int64_t *entry, int little_endian,
                       int64_t tcpv4_bit, int64_t tcpv6_bit, int64_t ecn_bit)
{
    Py_ssize_t len = (Py_ssize_t)entry[1];
    memset(hdr, 0, 12);
    if (entry[2] > 1) {
        int64_t type = entry[4];
        unsigned gso = type & tcpv4_bit ? 1 : type & tcpv6_bit ? 4 : 0; /* VIRTIO_NET_HDR_GSO_TCPV4/TCPV6 */
        if (!gso)
            return 0;
        if (type & ecn_bit)
            gso |= 0x80;
        Py_ssize_t csum_start = transport_offset(frame, len);
        Py_ssize_t hdr_len = len;
        if (hdr_len > 0xFFFF) /* skb_headlen of a GRO packet built of frags: its headers */
            hdr_len = csum_start + (csum_start + 12 < len ? (frame[csum_start + 12] >> 4) * 4 : 0);
        hdr[0] = 1; /* VIRTIO_NET_HDR_F_NEEDS_CSUM */
        hdr[1] = (unsigned char)gso;
        put16(hdr + 2, (unsigned)hdr_len, little_endian);
        put16(hdr + 4, (unsigned)entry[3], little_endian);
        put16(hdr + 6, (unsigned)csum_start, little_endian);
        put16(hdr + 8, 16, little_endian); /* offsetof(struct tcphdr, check) */
    } else if (entry[5]) {
        hdr[0] = 2; /* VIRTIO_NET_HDR_F_DATA_VALID */
    }
    return 1;
}

static PyObject *
write_packets(PyObject *self, PyObject *args)
{
    int fd, hdr_len, little_endian;
    Py_buffer area, meta;
    Py_ssize_t start, count;
    long long tcpv4_bit, tcpv6_bit, ecn_bit;
    if (!PyArg_ParseTuple(args, "iy*y*nnipLLL:write_packets", &fd, &area, &meta, &start, &count, &hdr_len,
                          &little_endian, &tcpv4_bit, &tcpv6_bit, &ecn_bit))
        return NULL;
    PyObject *result = NULL;
    if (start < 0 || count < start || meta.len < (Py_ssize_t)sizeof(int64_t) * META * count
        || (hdr_len != 10 && hdr_len != 12)) {
        PyErr_SetString(PyExc_ValueError, "write_packets: start..count beyond meta, or hdr_len not 10 or 12");
        goto done;
    }
    const int64_t *m = meta.buf;
    for (Py_ssize_t k = start; k < count; k++)
        if (m[META * k] < 0 || m[META * k + 1] < 0 || m[META * k] > area.len || m[META * k + 1] > area.len - m[META * k]) {
            PyErr_Format(PyExc_ValueError, "write_packets: packet %zd is not inside the area", k);
            goto done;
        }
    Py_ssize_t written = start, bytes = 0;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (; written < count; written++) {
        const int64_t *entry = m + META * written;
        unsigned char hdr[12];
        const unsigned char *frame = (const unsigned char *)area.buf + entry[0];
        if (!vnet_header(hdr, frame, entry, little_endian, tcpv4_bit, tcpv6_bit, ecn_bit)) {
            failed = -1;
            break;
        }
        struct iovec iov[2] = {{hdr, (size_t)hdr_len}, {(void *)frame, (size_t)entry[1]}};
        ssize_t done_now;
        do {
            done_now = writev(fd, iov, 2);
        } while (done_now < 0 && errno == EINTR);
        if (done_now < 0) {
            failed = errno;
            break;
        }
        bytes += (Py_ssize_t)entry[1];
    }
    Py_END_ALLOW_THREADS
    /* (index reached: packet `written` failed when errno is set (-1: it has no virtio_net_hdr), the
       rest not tried; errno or 0; frame bytes written) */
    result = Py_BuildValue("(nin)", written, failed, bytes);
done:
    PyBuffer_Release(&area);
    PyBuffer_Release(&meta);
    return result;
}

/* -- FrameQueue: the link frames of a burst in one buffer, for one sendmmsg -------------------------- */

typedef struct {
    PyObject_HEAD
    unsigned char *area;
    Py_ssize_t capacity, tail; /* bytes; the next frame goes at tail or after */
    struct iovec *iovs; /* one per frame queued, pointing into area */
    struct mmsghdr *msgs;
    Py_ssize_t max_frames, count;
} FrameQueue;

static PyObject *
queue_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Py_ssize_t capacity, max_frames;
    if (!PyArg_ParseTuple(args, "nn:FrameQueue", &capacity, &max_frames))
        return NULL;
    if (capacity < 1 || capacity > (1 << 30) || max_frames < 1 || max_frames > (1 << 20)) {
        PyErr_SetString(PyExc_ValueError, "FrameQueue: capacity 1..2**30 bytes, max_frames 1..2**20");
        return NULL;
    }
    FrameQueue *q = (FrameQueue *)type->tp_alloc(type, 0);
    if (q == NULL)
        return NULL;
    q->area = PyMem_Malloc((size_t)capacity);
    q->iovs = PyMem_Calloc((size_t)max_frames, sizeof(struct iovec));
    q->msgs = PyMem_Calloc((size_t)max_frames, sizeof(struct mmsghdr));
    if (q->area == NULL || q->iovs == NULL || q->msgs == NULL) {
        Py_DECREF(q);
        return PyErr_NoMemory();
    }
    q->capacity = capacity;
    q->max_frames = max_frames;
    for (Py_ssize_t i = 0; i < max_frames; i++) {
        q->msgs[i].msg_hdr.msg_iov = &q->iovs[i];
        q->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    return (PyObject *)q;
}

static void
queue_dealloc(FrameQueue *q)
{
    PyMem_Free(q->area);
    PyMem_Free(q->iovs);
    PyMem_Free(q->msgs);
    Py_TYPE(q)->tp_free((PyObject *)q);
}

/* the area, writable, for a segmenter to write frames at tail (then add_segments); it never moves */
static int
queue_getbuffer(FrameQueue *q, Py_buffer *view, int flags)
{
    return PyBuffer_FillInfo(view, (PyObject *)q, q->area, q->capacity, 0, flags);
}

static Py_ssize_t
queue_length(FrameQueue *q)
{
    return q->count;
}

static void
queue_add(FrameQueue *q, unsigned char *frame, Py_ssize_t len)
{
    q->iovs[q->count].iov_base = frame;
    q->iovs[q->count].iov_len = (size_t)len;
    q->count++;
    q->tail = frame + len - q->area;
}

static PyObject *
queue_append(FrameQueue *q, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    int fits = q->count < q->max_frames && view.len <= q->capacity - q->tail;
    if (fits) {
        memcpy(q->area + q->tail, view.buf, (size_t)view.len);
        queue_add(q, q->area + q->tail, view.len);
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(fits);
}

static PyObject *
queue_add_segments(FrameQueue *q, PyObject *args)
{
    Py_ssize_t at, full_len, last_len, segments;
    if (!PyArg_ParseTuple(args, "nnnn:add_segments", &at, &full_len, &last_len, &segments))
        return NULL;
    if (at != q->tail || segments < 1 || full_len < 1 || last_len < 1 || segments > q->max_frames - q->count
        || full_len > q->capacity || last_len > q->capacity - at
        || (segments - 1) > (q->capacity - at - last_len) / full_len) {
        PyErr_SetString(PyExc_ValueError, "add_segments: the segments must lie at tail, inside the area, "
                        "within max_frames");
        return NULL;
    }
    for (Py_ssize_t k = 0; k < segments; k++)
        queue_add(q, q->area + at + k * full_len, k == segments - 1 ? last_len : full_len);
    Py_RETURN_NONE;
}

static PyObject *
queue_clear(FrameQueue *q, PyObject *unused)
{
    q->count = q->tail = 0;
    Py_RETURN_NONE;
}

static PyObject *
queue_frame_len(FrameQueue *q, PyObject *arg)
{
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    if (i < 0 || i >= q->count) {
        PyErr_SetString(PyExc_IndexError, "frame_len: no such frame queued");
        return NULL;
    }
    return PyLong_FromSize_t(q->iovs[i].iov_len);
}

static PyObject *
queue_frame(FrameQueue *q, PyObject *arg)
{
    PyObject *len = queue_frame_len(q, arg);
    if (len == NULL)
        return NULL;
    Py_DECREF(len);
    struct iovec *iov = &q->iovs[PyLong_AsSsize_t(arg)];
    return PyBytes_FromStringAndSize(iov->iov_base, (Py_ssize_t)iov->iov_len);
}

/* send_batch for the frames queued from `start` on */
static PyObject *
queue_send(FrameQueue *q, PyObject *args)
{
    int fd;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "in:send", &fd, &start))
        return NULL;
    if (start < 0 || start > q->count) {
        PyErr_SetString(PyExc_ValueError, "send: start beyond the frames queued");
        return NULL;
    }
    Py_ssize_t calls = 0;
    int saved_errno;
    Py_ssize_t sent = sendmmsg_all(fd, q->msgs + start, q->count - start, &calls, &saved_errno);
    return sent_result(sent, calls, saved_errno);
}

/* TAP reads straight into the area; each plain one (link.VethLink.push_reads says which) becomes its
   link frame in place: the prefix (link MACs, MPLS ethertype, the label stack) written over its
   virtio_net_hdr and Ethernet header. The first read that is not plain is handed back. */
static PyObject *
queue_read_push(FrameQueue *q, PyObject *args)
{
    int fd, hdr_len;
    Py_ssize_t max_reads, read_size, mtu;
    Py_buffer own_mac, prefix;
    if (!PyArg_ParseTuple(args, "inniny*y*:read_push", &fd, &max_reads, &read_size, &hdr_len, &mtu, &own_mac, &prefix))
        return NULL;
    if (max_reads < 1 || read_size < 64 || read_size > (1 << 20) || hdr_len < 0 || hdr_len > 64
        || own_mac.len != 6 || prefix.len < 18 || prefix.len > 14 + 4 * 16 || (prefix.len - 14) % 4) {
        PyBuffer_Release(&own_mac);
        PyBuffer_Release(&prefix);
        PyErr_SetString(PyExc_ValueError, "read_push: max_reads >= 1, read_size 64..1048576, hdr_len 0..64, "
                        "a 6-byte MAC, a prefix of 14 bytes and 1..16 labels");
        return NULL;
    }
    const Py_ssize_t plen = prefix.len, stack = plen - 14;
    /* where a read lands past tail: its link frame starts at tail or after */
    const Py_ssize_t pad = plen > hdr_len + 14 ? plen - hdr_len - 14 : 0;
    Py_ssize_t pushed = 0, calls = 0, rx_bytes = 0, link_bytes = 0;
    int failed = 0, full = 0;
    PyObject *leftover = NULL;
    while (pushed < max_reads) {
        if (q->count >= q->max_frames || q->capacity - q->tail < pad + read_size) {
            full = 1;
            break;
        }
        unsigned char *r = q->area + q->tail + pad;
        ssize_t got = read_once(fd, r, (size_t)read_size, &calls, &failed);
        if (got < 0)
            break;
        /* plain: no virtio_net_hdr flags or GSO (all zero), for this LER's MAC, IPv4 or IPv6, and its one
           link frame within the link MTU: what LabelEdgeRouter.receive_from_tap forwards as one frame
           with the stack pushed and nothing else changed */
        int plain = got >= hdr_len + 14;
        for (int k = 0; plain && k < hdr_len; k++)
            plain = r[k] == 0;
        const unsigned char *eth = r + hdr_len;
        if (plain) {
            unsigned type = be16(eth + 12);
            plain = !memcmp(eth, own_mac.buf, 6) && (type == 0x0800 || type == 0x86DD)
                    && got - hdr_len - 14 + stack <= mtu;
        }
        if (!plain) {
            leftover = PyBytes_FromStringAndSize((const char *)r, got);
            if (leftover == NULL) {
                PyBuffer_Release(&own_mac);
                PyBuffer_Release(&prefix);
                return NULL;
            }
            break;
        }
        unsigned char *frame = r + hdr_len + 14 - plen;
        memcpy(frame, prefix.buf, (size_t)plen);
        Py_ssize_t len = got - hdr_len - 14 + plen;
        queue_add(q, frame, len);
        pushed++;
        rx_bytes += got - hdr_len;
        link_bytes += len;
    }
    PyBuffer_Release(&own_mac);
    PyBuffer_Release(&prefix);
    if (failed && pushed == 0) {
        errno = failed;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (leftover == NULL)
        leftover = Py_NewRef(Py_None);
    /* (frames pushed and queued, system calls, their bytes read (without the virtio_net_hdr), their
       link bytes, the read that is not plain or None, 1 when the queue has no room for another read);
       an error after some frames is met again by the next call */
    return Py_BuildValue("(nnnnNi)", pushed, calls, rx_bytes, link_bytes, leftover, full);
}

static PyObject *
queue_get_tail(FrameQueue *q, void *closure)
{
    return PyLong_FromSsize_t(q->tail);
}

static PyObject *
queue_get_room(FrameQueue *q, void *closure)
{
    return PyLong_FromSsize_t(q->count < q->max_frames ? q->capacity - q->tail : 0);
}

static PyObject *
queue_get_frames_free(FrameQueue *q, void *closure)
{
    return PyLong_FromSsize_t(q->max_frames - q->count);
}

static PyMethodDef queue_methods[] = {
    {"append", (PyCFunction)queue_append, METH_O, "append(frame) -> bool: a copy of the frame queued; False: no room"},
    {"add_segments", (PyCFunction)queue_add_segments, METH_VARARGS,
     "add_segments(at, full_len, last_len, segments): queue the segments a segmenter wrote at tail"},
    {"send", (PyCFunction)queue_send, METH_VARARGS,
     "send(fd, start) -> (sent, calls, errno): the frames from start on by sendmmsg, up to 1024 a call"},
    {"read_push", (PyCFunction)queue_read_push, METH_VARARGS,
     "read_push(fd, max_reads, read_size, hdr_len, mtu, own_mac, prefix) -> (pushed, calls, rx_bytes, "
     "link_bytes, leftover, full): TAP reads, each plain one queued with the prefix in place of its headers"},
    {"frame_len", (PyCFunction)queue_frame_len, METH_O, "frame_len(i): the length of queued frame i"},
    {"frame", (PyCFunction)queue_frame, METH_O, "frame(i): a copy of queued frame i"},
    {"clear", (PyCFunction)queue_clear, METH_NOARGS, "clear(): nothing queued"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef queue_getset[] = {
    {"tail", (getter)queue_get_tail, NULL, "where the next frame goes in the area", NULL},
    {"room", (getter)queue_get_room, NULL, "bytes free after tail (0 when max_frames are queued)", NULL},
    {"frames_free", (getter)queue_get_frames_free, NULL, "frames that can still be queued", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods queue_as_sequence = {.sq_length = (lenfunc)queue_length};
static PyBufferProcs queue_as_buffer = {.bf_getbuffer = (getbufferproc)queue_getbuffer};

static PyTypeObject FrameQueueType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "softgso.datapath._batchio.FrameQueue",
    .tp_basicsize = sizeof(FrameQueue),
    .tp_dealloc = (destructor)queue_dealloc,
    .tp_as_sequence = &queue_as_sequence,
    .tp_as_buffer = &queue_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "FrameQueue(capacity, max_frames): link frames in one buffer, sent by sendmmsg",
    .tp_methods = queue_methods,
    .tp_getset = queue_getset,
    .tp_new = queue_new,
};

static PyMethodDef methods[] = {
    {"send_batch", send_batch, METH_VARARGS,
     "send_batch(fd, frames) -> (sent, calls, errno): the frames on a socket by sendmmsg, up to 1024 a call"},
    {"recv_batch", recv_batch, METH_VARARGS,
     "recv_batch(fd, max_frames, frame_size) -> (frames, truncated, calls): one recvmmsg(MSG_DONTWAIT)"},
    {"read_batch", read_batch, METH_VARARGS,
     "read_batch(fd, max_reads, size) -> (frames, calls): read() until EAGAIN or max_reads frames"},
    {"write_each", write_each, METH_VARARGS,
     "write_each(fd, frames) -> (written, errno): one write() per frame, stopping at the first failure"},
    {"recv_pop", recv_pop, METH_VARARGS,
     "recv_pop(fd, area, meta, max_frames, frame_size, stack_end, mask, value, prefix4, prefix6) -> "
     "(frames, refused, truncated, calls): one recvmmsg into area, the expected label stack popped in place"},
    {"write_packets", write_packets, METH_VARARGS,
     "write_packets(fd, area, meta, start, count, hdr_len, little_endian, tcpv4_bit, tcpv6_bit, ecn_bit) -> "
     "(reached, errno, bytes): one writev (virtio_net_hdr, frame) per packet described in meta"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "softgso.datapath._batchio",
    "Batched system calls for the datapath (sendmmsg, recvmmsg, read and write loops).", -1, methods,
};

PyMODINIT_FUNC
PyInit__batchio(void)
{
    if (PyType_Ready(&FrameQueueType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "FrameQueue", (PyObject *)&FrameQueueType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
