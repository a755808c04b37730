"""An output file's early life: its temporary file beside OUT, and space taken for it ahead of the writes.

Every capture softgso writes goes to ``.OUT.XXXXXXXX.tmp`` beside OUT first (softgso.io.writer
renames it onto OUT when done). The command line can make that file before it has even imported
the engine (:func:`reserve`, from softgso.entry): a thread then reserves the output's space
(``fallocate`` with FALLOC_FL_KEEP_SIZE, in softgso._segment, without the GIL) while the main
thread is busy importing. On tmpfs that is the costly half of a write (allocating and charging each
page, measured at two thirds of ``write``'s time), and there it runs on the otherwise idle core;
elsewhere it is cheap and keeps the file in few extents.

The writer that opens OUT later :func:`claim`\\ s the file and stops the thread at its first write
(from then on both would contend for the same inode lock); while it waits for something to write,
it reserves a step more itself (:meth:`Reservation.ahead`; :func:`attach` gives a writer that made
its own file the same), and at close it trims what was reserved beyond the last byte written. A
reservation nobody claims (a usage error, another command) is removed at exit. Nothing here
changes a byte of any output: the file's size is never touched.

Kept light (os and _thread): it runs before the interpreter has loaded anything else.
"""

from __future__ import annotations

import _thread
import atexit
import os

TYPE_CHECKING = False  # typing and collections.abc cost start-up milliseconds; mypy reads this as typing's
if TYPE_CHECKING:
    from collections.abc import Callable

# Reserved per fallocate call by the head start: the longest a first write waits for the inode
# lock (~2-3 ms on tmpfs); and per call in the writer's idle moments (well under a millisecond).
STEP = 8 << 20
IDLE_STEP = 1 << 20


def make_temporary(directory: str, name: str) -> tuple[int, str]:
    """A new file ``.NAME.XXXXXXXX.tmp`` in ``directory``, created exclusively with mode 0600 (as mkstemp).

    Written out rather than taken from tempfile, whose imports (random, shutil) cost every run of
    the CLI a few milliseconds of start-up.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        path = os.path.join(directory, f".{name}.{os.urandom(4).hex()}.tmp")
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name for {name} in {directory}")


def output_mode() -> int:
    """The mode a plain ``open()`` would give a new OUT (0666 less the umask)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


class Reservation:
    """Space reserved in an output file ahead of its writes: by a thread while the command starts,
    then a step at a time while the writer waits for something to write (:meth:`ahead`)."""

    def __init__(self, out_path: str, fd: int, temp_path: str, reserve_space: Callable[..., int]) -> None:
        self.out_path = out_path
        self.fd = fd
        self.temp_path = temp_path
        self.reserved = 0  # bytes reserved from offset 0 on
        self._reserve_space = reserve_space
        self._stop = bytearray(1)  # set to 1: the reserving thread ends after its current step
        self._never = bytearray(1)  # ahead()'s single steps need no stop
        self._running: _thread.LockType | None = None  # held while the reserving thread runs
        self._refused = False

    def start(self, length: int) -> None:
        """Reserve the file's first ``length`` bytes in a thread of its own."""

        running = self._running = _thread.allocate_lock()
        running.acquire()

        def run() -> None:
            try:
                self.reserved = self._reserve_space(self.fd, 0, length, STEP, self._stop)
            except (OSError, ValueError):  # an optimisation only: the writes report real errors
                pass
            finally:
                running.release()

        # _thread, not threading: importing threading would delay the start by milliseconds
        _thread.start_new_thread(run, ())

    def _join(self) -> None:
        if self._running is not None:
            self.stop()
            self._running.acquire()
            self._running.release()
            self._running = None

    def stop(self) -> None:
        """Ask the reserving thread to end (at once: it finishes its current step on its own)."""
        self._stop[0] = 1

    def ahead(self, upto: int) -> bool:
        """Reserve one more step while less than ``upto`` bytes are reserved: False when there is nothing to do.

        For the writer's idle moments: the inode's lock is free then, and a step (IDLE_STEP) holds it
        for a fraction of a millisecond.
        """
        self._join()
        if self._refused or self.reserved >= upto:
            return False
        length = min(IDLE_STEP, upto - self.reserved)
        try:
            done = self._reserve_space(self.fd, self.reserved, length, length, self._never)
        except (OSError, ValueError):
            done = 0
        self.reserved += done
        self._refused = done < length  # full, or not a file system that reserves: stop trying
        return done > 0

    def finish(self, trim: bool = False) -> None:
        """Stop and wait for the reserving thread; with ``trim``, give back what was reserved past the end.

        After this the descriptor is the caller's alone (no thread still uses its number).
        """
        self._join()
        if trim and self.reserved:
            size = os.fstat(self.fd).st_size
            if self.reserved > size:
                # to its own size: the file keeps every byte, the blocks reserved past its end are freed
                os.ftruncate(self.fd, size)

    def discard(self) -> None:
        """Remove the file: nobody claimed it."""
        self.finish()
        try:
            os.close(self.fd)
        except OSError:
            pass
        try:
            os.unlink(self.temp_path)
        except FileNotFoundError:
            pass


def _reserve_space() -> Callable[..., int] | None:
    """softgso._segment.reserve_space, or None where the module is not built (or SOFTGSO_NO_C is set)."""
    from .native import load_extension

    module = load_extension("_segment")
    return getattr(module, "reserve_space", None)


def attach(out_path: str, fd: int, temp_path: str) -> Reservation | None:
    """A reservation (nothing reserved yet) for a temporary file a writer made itself; None where
    nothing can reserve."""
    reserve_space = _reserve_space()
    return None if reserve_space is None else Reservation(out_path, fd, temp_path, reserve_space)


_unclaimed: dict[str, Reservation] = {}


def reserve(out_path: str, length: int) -> Reservation | None:
    """Make OUT's temporary file now and reserve ``length`` bytes for it in the background.

    None (and nothing made) when the compiled module that reserves is not built, or the file cannot
    be made: the writer then makes its own, as always.
    """
    reserve_space = _reserve_space()
    if reserve_space is None:
        return None
    path = os.path.abspath(out_path)
    directory, name = os.path.split(path)
    try:
        fd, temp_path = make_temporary(directory, name)
    except OSError:
        return None
    reservation = Reservation(path, fd, temp_path, reserve_space)
    if not _unclaimed:
        atexit.register(_discard_unclaimed)
    _unclaimed[path] = reservation
    try:
        # mode now, while no reservation holds the inode lock
        os.fchmod(fd, output_mode())
    except OSError:
        _unclaimed.pop(path).discard()
        return None
    reservation.start(length)
    return reservation


def claim(out_path: str) -> Reservation | None:
    """The reservation made for ``out_path`` (now the caller's to finish), or None."""
    if not _unclaimed:
        return None
    return _unclaimed.pop(os.path.abspath(out_path), None)


def _discard_unclaimed() -> None:
    while _unclaimed:
        _unclaimed.popitem()[1].discard()


__all__ = ["IDLE_STEP", "STEP", "Reservation", "attach", "claim", "make_temporary", "output_mode", "reserve"]
