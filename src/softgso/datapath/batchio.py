"""Many frames per call on the datapath's descriptors: a packet socket's batch in one system call, a TAP's
reads and writes in one Python call.

``send_batch`` and ``recv_batch`` are one sendmmsg(2) / recvmmsg(2) each in softgso.datapath._batchio,
the optional C extension (Python's socket module has neither); ``read_batch`` and ``write_each`` loop
read(2) / write(2) on a TAP, which takes one frame per call. Where the extension is not built (or
``SOFTGSO_NO_C=1``), the functions below give the same results with one system call per frame:
``COMPILED`` says which is in use, and the counts of system calls they return say what was paid.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Sequence
from types import ModuleType
from typing import Any

Buffer = bytes | bytearray | memoryview
_AGAIN = (errno.EAGAIN, errno.EWOULDBLOCK)


def _load() -> ModuleType | None:
    if os.environ.get("SOFTGSO_NO_C"):
        return None
    try:
        from . import _batchio
    except ImportError:
        return None
    return _batchio


def py_send_batch(fd: int, frames: Sequence[Buffer]) -> tuple[int, int, int]:
    """Send each frame on socket ``fd``: (frames sent, system calls, errno that stopped it or 0)."""
    sent = calls = 0
    for frame in frames:
        calls += 1
        try:
            os.write(fd, frame)
        except InterruptedError:
            continue
        except OSError as exc:
            if sent == 0 and exc.errno not in _AGAIN:
                raise
            return sent, calls, exc.errno or 0
        sent += 1
    return sent, calls, 0


def py_recv_batch(fd: int, max_frames: int, frame_size: int) -> tuple[list[bytes], int, int]:
    """Up to ``max_frames`` frames waiting on socket ``fd`` (none: an empty list); frames longer than
    ``frame_size`` are dropped and counted: (frames, truncated, system calls)."""
    if not 1 <= max_frames <= 1024 or not 1 <= frame_size <= 1 << 20:
        raise ValueError("recv_batch: max_frames 1..1024, frame_size 1..1048576")
    sock = socket.socket(fileno=os.dup(fd))
    frames: list[bytes] = []
    truncated = calls = 0
    try:
        while len(frames) + truncated < max_frames:
            calls += 1
            try:
                data, _, flags, _ = sock.recvmsg(frame_size, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if flags & socket.MSG_TRUNC:
                truncated += 1
            else:
                frames.append(data)
    finally:
        sock.close()
    return frames, truncated, calls


def py_read_batch(fd: int, max_reads: int, size: int) -> tuple[list[bytes], int]:
    """read() on ``fd`` until EAGAIN or ``max_reads`` frames: (frames, system calls). An error after some
    frames is left for the next call; one before any is raised."""
    if max_reads < 1 or not 1 <= size <= 1 << 20:
        raise ValueError("read_batch: max_reads >= 1, size 1..1048576")
    frames: list[bytes] = []
    calls = 0
    while len(frames) < max_reads:
        calls += 1
        try:
            frames.append(os.read(fd, size))
        except InterruptedError:
            continue
        except BlockingIOError:
            break
        except OSError:
            if frames:
                break
            raise
    return frames, calls


def py_write_each(fd: int, frames: Sequence[Buffer]) -> tuple[int, int]:
    """One write() per frame: (frames written, errno that stopped it or 0); the rest are not tried."""
    written = 0
    for frame in frames:
        while True:
            try:
                os.write(fd, frame)
                break
            except InterruptedError:
                continue
            except OSError as exc:
                return written, exc.errno or 0
        written += 1
    return written, 0


_native = _load()
COMPILED = _native is not None
# int64 per frame in recv_pop's and write_packets' meta (offset, length, segs, gso_size, gso_type, verified)
META = 6
send_batch = _native.send_batch if _native is not None else py_send_batch
recv_batch = _native.recv_batch if _native is not None else py_recv_batch
read_batch = _native.read_batch if _native is not None else py_read_batch
write_each = _native.write_each if _native is not None else py_write_each
# the far edge's batch in C (link.FarEdge.receive_compiled), compiled only: recvmmsg with the label pop in
# place, and one writev per packet with its virtio_net_hdr built in C; None without the extension
recv_pop: Any = getattr(_native, "recv_pop", None)
write_packets: Any = getattr(_native, "write_packets", None)
# the link frames of a burst in one buffer (link.VethLink's queues), compiled only; None without the extension
FrameQueue: Any = getattr(_native, "FrameQueue", None)

__all__ = ["COMPILED", "FrameQueue", "META", "py_read_batch", "py_recv_batch", "py_send_batch", "py_write_each", "read_batch", "recv_pop",
           "recv_batch", "send_batch", "write_each", "write_packets"]
