"""Reading a file a chunk at a time and writing on another thread: what the bulk streams share
(softgso.bulk.pipeline for ``segment``, softgso.bulk.coalesce_stream for ``coalesce``). Kept light:
the coalesce stream's start-up imports nothing else of the bulk path."""

from __future__ import annotations

import mmap
import os
import threading
from collections.abc import Callable

TYPE_CHECKING = False  # typing costs start-up milliseconds; mypy reads this name as typing's
if TYPE_CHECKING:
    from typing import Any


def write_stage(take: Callable[..., Any], write: Callable[[Any, int], None], input_size: int,
                failure: list[BaseException], reserve: Callable[[int, int], bool] | None = None) -> Callable[[], None]:
    """The writing thread: ``write(parts, records)`` for every item ``take()`` hands over.

    An item is (parts, records, input offset done up to[, what else ``write`` takes]), None to stop; the input is
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
            parts, records, done_up_to = item[:3]
            try:
                write(parts, records, *item[3:])
            except BaseException as error:  # noqa: BLE001 - handed to the main thread
                failure.append(error)

    return run


# a machine has no core to spare when its load average reaches the CPUs this process may use plus this
BUSY_MARGIN = 1.0


def no_core_free() -> bool:
    """Whether every core this process may use is taken by other work already (the 1-minute load
    average at least their number plus BUSY_MARGIN): a second thread of ours would then only wait
    for a core."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # (no load average here)
        return False
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return load >= cores + BUSY_MARGIN


def open_input(path: str | os.PathLike[str]) -> int:
    """A descriptor for reading IN front to back (or mapping it: :class:`MappedInput`)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    if hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except OSError:  # a hint: refused, nothing lost
            pass
    return fd


# windows still mapped (older ones held by chunks not yet written) past which a new one first collects
# garbage; the guard has 16 slots, the writer's queue holds a few chunks of a window or two
HELD_WINDOWS = 6


class MappedInput:
    """IN mapped read-only a window at a time, for a stream whose primitive reads records in place:
    the payload's one copy is then the kernel's, out of the mapping at writev.

    Windows of ``window`` bytes (page-aligned starts; a chunk that does not fit in the current one
    gets a new one from its own start) are unmapped once nothing points into them any more, so
    memory stays bounded whatever the file's size. A file cut short while mapped raises SIGBUS on
    the first touch of a page past its new end: ``guard`` (softgso.bulk._segment's guard_add,
    guard_remove, guard_faults) answers it with a page of zeros, counted, and :meth:`changed` tells the
    stream that what it read since ``mark`` can no longer be trusted (a zeroed page, or IN now
    shorter than what was read), so that it hands those records to the general reader instead.
    """

    def __init__(self, fd: int, size: int, window: int, guard: Any) -> None:
        self.fd = fd
        self.size = size
        self.window = window
        self._guard = guard
        # (MAP_POPULATE measured no better: faults map 16 pages at a time already)
        self._flags = mmap.MAP_SHARED
        self._faults = guard.guard_faults()
        self._windows: list[tuple[int, mmap.mmap, int]] = []  # (file offset, mapping, guard slot), newest last

    def view(self, pos: int, length: int) -> memoryview | None:
        """IN's bytes [pos, pos + length) where they lie mapped; None when IN no longer holds them all."""
        current = self._windows[-1] if self._windows else None
        if current is None or pos < current[0] or pos + length > current[0] + len(current[1]):
            size = os.fstat(self.fd).st_size  # shrunk already: not even mapped
            if size < pos + length:
                return None
            start = pos - pos % mmap.ALLOCATIONGRANULARITY
            span = min(max(self.window, pos + length - start), min(size, self.size) - start)
            try:
                mapping = mmap.mmap(self.fd, span, flags=self._flags, prot=mmap.PROT_READ, offset=start)
            except (OSError, ValueError):  # (Python's mmap refuses a length past the file's end)
                return None
            if hasattr(mapping, "madvise"):
                mapping.madvise(mmap.MADV_SEQUENTIAL)
            if len(self._windows) >= HELD_WINDOWS:
                # more windows held than the writer's queue explains: garbage (a cycle through a frame
                # that read a record) may still point into them; collected, they are unmapped
                import gc

                gc.collect()
                self.release()
            try:
                slot = self._guard.guard_add(mapping)
            except RuntimeError:  # every guarded slot still held: this chunk is read, not mapped
                mapping.close()
                return None
            current = (start, mapping, slot)
            self._windows.append(current)
        if len(self._windows) > 1:
            self.release()
        start, mapping, _ = current
        return memoryview(mapping)[pos - start : pos - start + length]

    def changed(self, upto: int) -> bool:
        """Whether bytes read from the mapping may not be IN's: a guarded page answered with zeros
        (ever, in this stream), or IN now shorter than ``upto``."""
        return self._guard.guard_faults() != self._faults or os.fstat(self.fd).st_size < upto

    def release(self, every: bool = False) -> None:
        """Unmap the windows before the newest that nothing points into any more; ``every``: the stream
        is over, all of them unguarded (one still pointed into, by an error's traceback, is unmapped
        when that goes)."""
        kept = []
        for entry in self._windows if every else self._windows[:-1]:
            try:
                entry[1].close()
            except BufferError:  # a part still to be written points into it
                if not every:
                    kept.append(entry)
                    continue
            self._guard.guard_remove(entry[2])
        self._windows[: len(self._windows) if every else -1] = kept


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
