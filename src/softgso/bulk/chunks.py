"""Reading a file a chunk at a time and writing on another thread: what the bulk streams share
(softgso.bulk.pipeline for ``segment``, softgso.bulk.coalesce_stream for ``coalesce``). Kept light:
the coalesce stream's start-up imports nothing else of the bulk path."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_stage(take: Callable[..., Any], write: Callable[[Any, int], None], input_size: int,
                failure: list[BaseException], reserve: Callable[[int, int], bool] | None = None) -> Callable[[], None]:
    """The writing thread: ``write(parts, records)`` for every item ``take()`` hands over.

    An item is (parts, records, input offset done up to), None to stop; the input is
    ``input_size`` bytes long. The first error goes to
    ``failure`` for the main thread; later items are then taken and dropped, so the producer never
    blocks. With ``reserve`` (a writer's reserve_ahead) the thread is taken by ``take(idle)``,
    ``idle()`` reserving output space while nothing is there to write.
    """
    done_up_to = 0

    def idle() -> bool:
        return reserve is not None and not failure and reserve(done_up_to, input_size)

    def run() -> None:
        nonlocal done_up_to
        while True:
            item = take(idle) if reserve is not None else take()
            if item is None:
                return
            if failure:
                continue
            parts, records, done_up_to = item
            try:
                write(parts, records)
            except BaseException as error:  # noqa: BLE001 - handed to the main thread
                failure.append(error)

    return run


def open_input(path: Path) -> int:
    """A descriptor for reading IN front to back (the bulk stream reads, never maps: a file cut short
    while it is read comes up short, where a mapping ends the process with SIGBUS)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    if hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except OSError:  # a hint: refused, nothing lost
            pass
    return fd


def fill(fd: int, buffer: Any, carried: bytes | memoryview, pos: int, length: int) -> int:
    """Put ``length`` bytes of the file from ``pos`` at the start of ``buffer``: the first ones
    ``carried`` over from the chunk before, the rest read. Fewer only at the file's end."""
    view = memoryview(buffer).cast("B")
    kept = len(carried)
    view[:kept] = carried
    got = kept
    try:
        while got < length:
            step = os.preadv(fd, [view[got:length]], pos + got)
            if step == 0:
                break
            got += step
    finally:
        view.release()
    return got


class Handoff:
    """A bounded hand-over between two threads: queue.Queue's put and get, without importing queue."""

    def __init__(self, depth: int) -> None:
        self._depth = depth
        self._items: list[Any] = []
        self._changed = threading.Condition()

    def put(self, item: Any, timeout: float | None = None) -> bool:
        """Add ``item`` once there is room; False if ``timeout`` seconds pass first."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._items) < self._depth, timeout):
                return False
            self._items.append(item)
            self._changed.notify_all()
            return True

    def get(self, idle: Callable[[], bool] | None = None) -> Any:
        """The oldest item, waiting for one; while there is none, ``idle()`` until it returns False."""
        with self._changed:
            while not self._items and idle is not None:
                self._changed.release()
                try:
                    busy = idle()
                finally:
                    self._changed.acquire()
                if not busy:
                    break
            self._changed.wait_for(lambda: bool(self._items))
            item = self._items.pop(0)
            self._changed.notify_all()
            return item
