"""Entering a named network namespace for a moment, from this thread (setns(2) on /var/run/netns/NAME).

Sockets keep the namespace they were made in: a packet socket opened inside a namespace goes on
reading and writing its devices once the thread is back home.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000


def setns(fd: int) -> None:
    """setns(fd, CLONE_NEWNET) for the calling thread (os.setns from Python 3.12, libc before)."""
    native = getattr(os, "setns", None)
    if native is not None:
        native(fd, CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the block inside network namespace ``name``, then return to the one this thread was in."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(f"/var/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            setns(home)
    finally:
        os.close(home)
