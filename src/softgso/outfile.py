"""An output file's early life: its temporary file beside OUT, and space taken for it ahead of the writes.

Every capture softgso writes goes to ``.OUT.XXXXXXXX.tmp`` beside OUT first (softgso.io.writer
renames it onto OUT when done). The command line can make that file before it has even imported
the engine (:func:`reserve`, from softgso.entry): a thread then reserves the output's space
(``fallocate`` with FALLOC_FL_KEEP_SIZE, in softgso._segment, without the GIL) while the main
thread is busy importing. On tmpfs that is the costly half of a write (allocating and charging each
page, measured at two thirds of ``write``'s time), and there it runs on the otherwise idle core;
elsewhere it is cheap and keeps the file in few extents.

The writer that opens OUT later :func:`claim`\\ s the file, stops the reservation at its first
write (from then on both would contend for the same inode lock) and trims what was reserved beyond
the last byte written. A reservation nobody claims (a usage error, another command) is removed at
exit. Nothing here changes a byte of any output: the file's size is never touched.

Kept light (os and threading): it runs before the interpreter has loaded anything else.
"""

from __future__ import annotations

import atexit
import os
import threading

# Reserved per fallocate call: the longest a first write waits for the inode lock (~2-3 ms on tmpfs).
STEP = 8 << 20


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
    """A temporary file made for OUT ahead of its writer, and the thread reserving its space."""

    def __init__(self, out_path: str, fd: int, temp_path: str) -> None:
        self.out_path = out_path
        self.fd = fd
        self.temp_path = temp_path
        self.reserved = 0
        self._stop = bytearray(1)  # set to 1: the reserving thread ends after its current step
        self._thread: threading.Thread | None = None

    def start(self, length: int, reserve_space: object) -> None:
        """Reserve the file's first ``length`` bytes in the background (``reserve_space``: softgso._segment's)."""

        def run() -> None:
            try:
                self.reserved = reserve_space(self.fd, length, STEP, self._stop)  # type: ignore[operator]
            except (OSError, ValueError):  # an optimisation only: the writes report real errors
                pass

        self._thread = threading.Thread(target=run, name="softgso-reserve", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the reserving thread to end (at once: it finishes its current step on its own)."""
        self._stop[0] = 1

    def finish(self, trim: bool = False) -> None:
        """Stop and wait for the reserving thread; with ``trim``, give back what was reserved past the end.

        After this the descriptor is the caller's alone (no thread still uses its number).
        """
        self.stop()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
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


_unclaimed: dict[str, Reservation] = {}


def reserve(out_path: str, length: int) -> Reservation | None:
    """Make OUT's temporary file now and reserve ``length`` bytes for it in the background.

    None (and nothing made) when the compiled module that reserves is not built, or the file cannot
    be made: the writer then makes its own, as always.
    """
    from .native import load_extension

    module = load_extension("_segment")
    if module is None or not hasattr(module, "reserve_space"):
        return None
    path = os.path.abspath(out_path)
    directory, name = os.path.split(path)
    try:
        fd, temp_path = make_temporary(directory, name)
    except OSError:
        return None
    reservation = Reservation(path, fd, temp_path)
    if not _unclaimed:
        atexit.register(_discard_unclaimed)
    _unclaimed[path] = reservation
    try:
        # mode now, while no reservation holds the inode lock
        os.fchmod(fd, output_mode())
    except OSError:
        _unclaimed.pop(path).discard()
        return None
    reservation.start(length, module.reserve_space)
    return reservation


def claim(out_path: str) -> Reservation | None:
    """The reservation made for ``out_path`` (now the caller's to finish), or None."""
    if not _unclaimed:
        return None
    return _unclaimed.pop(os.path.abspath(out_path), None)


def _discard_unclaimed() -> None:
    while _unclaimed:
        _unclaimed.popitem()[1].discard()


__all__ = ["STEP", "Reservation", "claim", "make_temporary", "output_mode", "reserve"]
