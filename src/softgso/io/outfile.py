"""An output file's early life: its temporary file beside OUT, and space taken for it ahead of the writes.

Every capture softgso writes goes to ``.OUT.XXXXXXXX.tmp`` beside OUT first (softgso.io.writer
renames it onto OUT when done). The command line can make that file before it has even imported
the engine (:func:`reserve`, from softgso.cli.entry): a thread then reserves the output's space
(``fallocate`` with FALLOC_FL_KEEP_SIZE, in softgso.bulk._segment, without the GIL) while the main
thread is busy importing. On tmpfs that is the costly half of a write (allocating and charging each
page, measured at two thirds of ``write``'s time), and there it runs on the otherwise idle core;
elsewhere it is cheap and keeps the file in few extents.

The writer that opens OUT later :func:`claim`\\ s the file and stops the thread at its first write
(from then on both would contend for the same inode lock); while it waits for something to write,
it reserves a step more itself (:meth:`Reservation.ahead`; :func:`attach` gives a writer that made
its own file the same), and at close it trims what was reserved beyond the last byte written. A
reservation nobody claims (a usage error, another command) is removed at exit. Nothing here
changes a byte of any output: the file's size is never touched.

Which outputs are written that way at all is decided here too, once for every file softgso writes
(:func:`output_target`): atomically only a regular file or a name that does not exist yet; through
a symbolic link, the file it points to (replaced where it is, the link stays a link); a character
device, a FIFO or a socket straight through, as it comes, like ``-``; a directory or a block device
is refused, and so is a regular file the command reads (:func:`refuse_an_input`).

Kept light (os and _thread): it runs before the interpreter has loaded anything else.
"""

from __future__ import annotations

import _thread
import atexit
import errno
import os
import stat

TYPE_CHECKING = False  # typing and collections.abc cost start-up milliseconds; mypy reads this as typing's
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO

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


# what OUT may be, by its file type, when it is written straight through (not atomic)
STRAIGHT_THROUGH = {stat.S_IFCHR: "character device", stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket"}
STDOUT = "-"


class OutputTarget:
    """Where and how an output is written: ``atomic`` (a temporary file beside ``location``, renamed
    onto it at the end) or straight through (``path`` opened for writing as it is, written as it comes).

    ``kind`` says what OUT is: "new file", "regular file", "character device", "FIFO", "socket",
    "standard output", with "link to " in front when OUT is a symbolic link.
    """

    __slots__ = ("path", "location", "atomic", "kind", "linked")

    def __init__(self, path: str, location: str, atomic: bool, kind: str, linked: bool = False) -> None:
        self.path = path
        self.location = location
        self.atomic = atomic
        self.kind = kind
        self.linked = linked

    def note(self) -> str | None:
        """What a summary says of an output written straight through; None for an atomic one."""
        if self.atomic:
            return None
        what = self.kind if self.kind == "standard output" else f"a {self.kind}"
        return f"written straight through (not atomic): OUT is {what}"

    def shares_stdout(self) -> bool:
        """True when what is written to OUT goes where standard output goes (``-``, ``/dev/stdout``,
        the terminal or pipe stdout is): a summary must then go to standard error."""
        if self.path == STDOUT:
            return True
        if self.atomic:
            return False  # a new file at OUT's name: stdout, even if it was that file, is not read there
        try:
            return os.path.samestat(os.stat(self.path), os.fstat(1))
        except (OSError, ValueError):
            return False

    def error(self, error: OSError, creating: bool = True) -> Exception:
        """``error`` as the user sees it: naming OUT as given (never a temporary file), with what to check.

        ``creating``: the error came from making or renaming a file in OUT's folder.
        """
        from ..errors import CaptureError

        reason = error.strerror or str(error)
        folder = os.path.dirname(self.location if self.linked else self.path) or "."
        hint = ""
        if creating and error.errno == errno.ENOENT and not os.path.isdir(folder):
            hint = f" (folder {folder} does not exist)"
        elif creating and error.errno in (errno.EACCES, errno.EPERM):
            hint = f" (no permission to create files in folder {folder})"
        elif error.errno == errno.ENOTDIR:
            hint = " (a folder on the way is not a folder)"
        return CaptureError(f"cannot write {self.path}: {reason}{hint}")

    def make_temporary(self) -> tuple[int, str]:
        """The temporary file beside ``location`` (:func:`make_temporary`); errors name OUT."""
        directory, name = os.path.split(self.location)
        try:
            return make_temporary(directory, name)
        except OSError as error:
            raise self.error(error) from None

    def commit(self, temp_path: str) -> None:
        """Rename the finished temporary file onto ``location``; errors name OUT."""
        try:
            os.replace(temp_path, self.location)
        except OSError as error:
            raise self.error(error) from None

    def open_through(self) -> int:
        """A descriptor writing straight to OUT (not atomic): a FIFO waits here for its reader; a socket
        is connected to (a stream socket, as ``nc -lU`` listens on)."""
        if self.kind.endswith("socket"):
            import socket

            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                connection.connect(self.path)
            except OSError as error:
                connection.close()
                raise self.error(error, creating=False) from None
            return connection.detach()
        # a regular file only where its name cannot be renamed onto (a /proc/*/fd link to a deleted file)
        flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | (os.O_TRUNC if self.kind.endswith("regular file") else 0)
        try:
            return os.open(self.path, flags)
        except OSError as error:
            raise self.error(error, creating=False) from None


def output_target(path: str) -> OutputTarget:
    """How softgso writes OUT ``path``, by what it is now (every file softgso writes follows this).

    A regular file or a name that does not exist: atomically. A symbolic link: resolved, and its
    target treated by the same rule (a regular file is replaced where it is; the link stays). A
    character device, a FIFO, a socket, and ``-`` (standard output): straight through, not atomic.
    A directory or a block device: refused (softgso.errors.UsageError); a path that cannot be looked
    at: softgso.errors.CaptureError naming it.
    """
    if path == STDOUT:
        return OutputTarget(path, path, False, "standard output")
    linked = os.path.islink(path)
    prefix = "link to " if linked else ""
    try:
        found = os.stat(path)  # through links, /proc/*/fd magic links included
    except FileNotFoundError:
        found = None  # a new name, or a link to one
    except OSError as error:
        raise OutputTarget(path, os.path.abspath(path), True, "new file", linked).error(error) from None
    if found is None or stat.S_ISREG(found.st_mode):
        location = os.path.realpath(path)
        if found is not None and linked:
            try:
                same = os.path.samestat(found, os.stat(location))
            except OSError:
                same = False
            if not same:  # a /proc/*/fd link to a file that has no name any more
                return OutputTarget(path, path, False, prefix + "regular file", linked)
        return OutputTarget(path, location, True, prefix + ("new file" if found is None else "regular file"), linked)
    kind = STRAIGHT_THROUGH.get(stat.S_IFMT(found.st_mode))
    if kind is not None:
        return OutputTarget(path, path, False, prefix + kind, linked)
    from ..errors import UsageError

    if stat.S_ISDIR(found.st_mode):
        raise UsageError(f"cannot write {path}: it is a directory (OUT is a directory only when IN names many "
                         "captures: a directory or a glob); give a file name as OUT")
    if stat.S_ISBLK(found.st_mode):
        raise UsageError(f"cannot write {path}: it is a block device, and a capture written over a disk is never "
                         "what is wanted; give a file name as OUT")
    raise UsageError(f"cannot write {path}: not a file softgso can write to")


def names_stdout(path: str) -> bool:
    """True when ``path`` is where standard output goes, whatever that is (``-``, ``/dev/stdout``, the
    terminal, the pipe, or the regular file it was redirected to, which an atomic write would replace)."""
    if path == STDOUT:
        return True
    try:
        return os.path.samestat(os.stat(path), os.fstat(1))
    except (OSError, ValueError):
        return False


def refuse_an_input(path: str, *inputs: str) -> None:
    """Refuse (softgso.errors.UsageError) an OUT ``path`` that is one of the ``inputs`` the command reads,
    under any name (a link, a hard link, another spelling): the rename at the end would replace the
    capture being read with what was made of it, and a capture cannot be taken again. An input ``-`` is
    standard input, whatever file it was redirected from; names that do not exist yet are never an input."""
    if path == STDOUT:
        return
    try:
        found = os.stat(path)
    except OSError:
        return  # a new name; anything else is output_target's to say
    if not stat.S_ISREG(found.st_mode):
        return  # a device, a FIFO or a socket is written through, never renamed over anything
    for source in inputs:
        try:  # ``-``: standard input, which may be that very file (< OUT)
            same = os.path.samestat(found, os.fstat(0) if source == STDOUT else os.stat(source))
        except (OSError, ValueError):
            continue
        if same:
            from ..errors import UsageError

            name = "standard input" if source == STDOUT else source
            raise UsageError(f"cannot write {path}: it is the capture being read ({name}), and writing it would "
                             "replace that capture; give another name")


def write_file(path: str, fill: Callable[[BinaryIO], None]) -> OutputTarget:
    """Write a small output file (an image, a report) by :func:`output_target`'s rule: ``fill`` writes
    its bytes to the handle it is given. Atomic where the rule says so; errors name ``path``."""
    target = output_target(path)
    if not target.atomic:
        with os.fdopen(target.open_through(), "wb") as handle:
            fill(handle)
        return target
    fd, temp_path = target.make_temporary()
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), output_mode())
            fill(handle)
        target.commit(temp_path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except FileNotFoundError:
            pass
        raise
    return target


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
    """softgso.io._reserve.reserve_space, or None where the module is not built (or SOFTGSO_NO_C is set)."""
    if os.environ.get("SOFTGSO_NO_C"):
        return None
    try:
        from ._reserve import reserve_space
    except ImportError:
        return None
    return reserve_space


def attach(out_path: str, fd: int, temp_path: str) -> Reservation | None:
    """A reservation (nothing reserved yet) for a temporary file a writer made itself; None where
    nothing can reserve."""
    reserve_space = _reserve_space()
    return None if reserve_space is None else Reservation(out_path, fd, temp_path, reserve_space)


_unclaimed: dict[str, Reservation] = {}


def reserve(out_path: str, length: int) -> Reservation | None:
    """Make OUT's temporary file now and reserve ``length`` bytes for it in the background.

    None (and nothing made) when OUT is not written atomically (a device, a FIFO, a socket: see
    :func:`output_target`; refused or unreachable ones are reported by the writer), when the compiled
    module that reserves is not built, or when the file cannot be made: the writer then makes its
    own, as always. Through a symbolic link the file is made beside the link's target.
    """
    try:
        target = output_target(out_path)
    except Exception:  # a directory, a block device, a path that cannot be looked at: the writer says so
        return None
    if not target.atomic:
        return None
    reserve_space = _reserve_space()
    if reserve_space is None:
        return None
    path = target.location
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


def claim(location: str) -> Reservation | None:
    """The reservation made for the output at ``location`` (its :class:`OutputTarget`'s: where the
    file is renamed onto), now the caller's to finish; or None."""
    if not _unclaimed:
        return None
    return _unclaimed.pop(os.path.abspath(location), None)


def _discard_unclaimed() -> None:
    while _unclaimed:
        _unclaimed.popitem()[1].discard()


__all__ = ["IDLE_STEP", "STEP", "STRAIGHT_THROUGH", "OutputTarget", "Reservation", "attach", "claim", "make_temporary",
           "output_mode", "output_target", "reserve", "write_file"]
