"""Writing capture files: atomically, and by ``os.writev`` so that record pieces are never joined.

Strategy: every record is a small header from the format's encoder, the caller's parts (bytes or
memoryviews, e.g. a segment's headers and a slice of the input's payload), and a small trailer.
They are queued as iovecs and written with one ``writev`` per few MiB (at most IOV_MAX at a
time), so payload bytes are copied once, by the kernel, into the page cache. Output goes to a
temporary file beside OUT that replaces OUT only when the writer is closed without error.

That is for OUT a regular file or a new name (through a symbolic link: its target, replaced where
it is). ``-`` (standard output), a character device, a FIFO or a socket is written straight
through, as records come: not atomic (what was written before an error stays written; the reader
sees the capture end there). A directory or a block device is refused. The rule is
softgso.io.outfile.output_target's; the writer says which applied (``atomic``, ``kind``).
"""

from __future__ import annotations

import errno
import os
import weakref
from collections.abc import Sequence
from types import TracebackType

from ..errors import CaptureError
from .outfile import Reservation, attach, claim, output_mode, output_target
from .pcap import PcapReader, PcapRecordEncoder, fcs_bits, pcap_file_header
from .pcapng import PcapngReader, PcapngRecordEncoder, encode_shb
from .record import LINKTYPE_ETHERNET, MAX_SNAPLEN_STANDARD, CaptureRecord, Interface
from .source import CaptureReader

try:
    IOV_MAX = os.sysconf("SC_IOV_MAX")
except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
    IOV_MAX = 1024
# Write once this much is queued: large writes, and a bounded number of input chunks kept alive.
FLUSH_BYTES = 4 << 20
# The most reserve_ahead() takes past the bytes written (the output's projected size bounds it first)
RESERVE_LEAD = 256 << 20
STDOUT = "-"
STDOUT_NAME = "<stdout>"


TYPE_CHECKING = False  # typing costs start-up milliseconds; mypy reads this name as typing's
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # RecordEncoder is a typing.Protocol for mypy, a plain class at run time


class RecordEncoder(Protocol):
    """What a format gives the writer: the file's opening bytes and each record's framing."""

    @property
    def default_linktype(self) -> int: ...

    def start(self) -> bytes: ...

    def frame(
        self, timestamp_ns: int, caplen: int, orig_len: int, interface_id: int, comment: str | None, linktype: int
    ) -> tuple[bytes, bytes]: ...


def kept_block(encoder: RecordEncoder, record: CaptureRecord, data: bytes | memoryview | None) -> bytes | memoryview | None:
    """The bytes that write ``record`` as it is (``data`` None), its own pcapng block, where
    ``encoder`` keeps blocks; None when the record is to be framed anew."""
    if data is not None or record.block is None:
        return None
    keep = getattr(encoder, "kept_block", None)
    return keep(record) if keep is not None else None


def record_parts(encoder: RecordEncoder, record: CaptureRecord,
                 data: bytes | memoryview | None = None) -> list[bytes | memoryview]:
    """What :meth:`CaptureWriter.write` writes for ``record`` (or ``data`` in its place), in pieces."""
    block = kept_block(encoder, record, data)
    if block is not None:
        return [block]
    if data is None:
        data, orig_len = record.data, record.orig_len
    else:
        orig_len = len(data)
    caplen = len(data)
    head, tail = encoder.frame(record.timestamp_ns, caplen, max(orig_len, caplen), record.interface_id,
                               record.comment, record.linktype)
    return [head, data, tail] if tail else [head, data]


# errors only writing can meet: said with OUT's name (a bare "No space left on device" names no file,
# and IN and OUT may be on different file systems)
OUT_OF_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _out_of_room(error: BaseException | None) -> OSError | None:
    """``error`` when it is one of OUT_OF_ROOM, about no named file; else None."""
    if isinstance(error, OSError) and error.filename is None and error.errno in OUT_OF_ROOM:
        return error
    return None


def _remove_quietly(path: str) -> None:
    if not path:  # streaming to stdout: no temporary file
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class CaptureWriter:
    """An output capture file, committed onto its path by ``close()`` (or a clean ``with`` exit).

    ``path`` ``-``: standard output, streamed (no temporary file, no rename, no fsync); so is a
    character device, a FIFO or a socket (opened as it is). ``atomic`` says which: False when
    written straight through; ``kind`` what OUT is ("new file", "regular file", "character device",
    "FIFO", "socket", "standard output", "link to ..."); ``note()`` the line a summary shows for a
    straight-through output. A directory or a block device OUT raises softgso.errors.UsageError; a
    file that cannot be made, CaptureError naming OUT (never the temporary file).
    """

    def __init__(
        self, path: str | os.PathLike[str], encoder: RecordEncoder, format: str, *, fsync: bool = True
    ) -> None:
        self.path = os.fspath(path)
        self._target = output_target(self.path)  # refuses a directory or a block device before anything is made
        self.atomic = self._target.atomic
        self.kind = self._target.kind
        self.streaming = not self.atomic  # written as records come (standard output or straight through)
        self.fsync = fsync and self.atomic
        self.format = format
        self.records_written = 0
        self.bytes_written = 0
        self._encoder = encoder
        self._iov: list[bytes | memoryview] = []
        self._pending = 0
        # OUT's temporary file when the command line made it early (softgso.io.outfile), space reserved
        self._reservation: Reservation | None = None
        self._no_reservation = False
        if self.path == STDOUT:
            # a descriptor of our own: closing the writer leaves the process's stdout open
            self.path = STDOUT_NAME
            self._fd, self._temp_path = os.dup(1), ""
        elif not self.atomic:
            # a device, a FIFO (this waits for its reader), a socket: opened as it is, never replaced
            self._fd, self._temp_path = self._target.open_through(), ""
        else:
            self._reservation = claim(self._target.location)
            if self._reservation is not None:
                self._fd, self._temp_path = self._reservation.fd, self._reservation.temp_path
            else:
                self._fd, self._temp_path = self._target.make_temporary()
        # Whatever happens to this object, the temporary file does not outlive it.
        self._cleanup = weakref.finalize(self, _remove_quietly, self._temp_path)
        try:
            if self.atomic and self._reservation is None:
                # the temporary file is made 0600; OUT gets the mode a plain open() would have given it
                # (a reservation's file has it already)
                os.fchmod(self._fd, output_mode())
            self._queue(encoder.start())
        except BaseException:
            self.abort()
            raise

    # -- writing ---------------------------------------------------------------------------------

    def write(self, record: CaptureRecord, data: bytes | memoryview | None = None) -> None:
        """Write ``record`` (or ``data`` in its place, with the record's timestamp, interface, comment).

        A pcapng record written as it is keeps its own block, options included, where its encoder
        allows (PcapngRecordEncoder.kept_block)."""
        block = kept_block(self._encoder, record, data)
        if block is not None:
            self._queue_whole(block)
            self.records_written += 1
        elif data is None:
            self.write_record(
                record.timestamp_ns, (record.data,), record.orig_len, interface_id=record.interface_id,
                comment=record.comment, linktype=record.linktype,
            )
        else:
            self.write_record(
                record.timestamp_ns, (data,), None, interface_id=record.interface_id, comment=record.comment,
                linktype=record.linktype,
            )

    def write_block(self, block: bytes | memoryview) -> bool:
        """Write a pcapng block about the capture (softgso.io.pcapng.OTHER_BLOCKS_KEPT) as it is, where
        this file keeps its input's blocks; whether it was written."""
        other_block = getattr(self._encoder, "other_block", None)
        written = other_block(block) if other_block is not None else None
        if written is None:
            return False
        self._queue_whole(written)
        return True

    def _queue_whole(self, block: bytes | memoryview) -> None:
        """Queue bytes that already are whole blocks of this file (flushed once enough are queued)."""
        if self._fd < 0:
            raise CaptureError("write to a closed capture writer", where=self.path)
        self._queue(block)
        if self._pending >= FLUSH_BYTES or len(self._iov) >= IOV_MAX:
            self._flush()

    def fcs_len(self, interface_id: int) -> int:
        """Bytes of FCS the file says end every frame of interface ``interface_id`` (0: none;
        FCS_LEN_UNKNOWN: not in whole bytes): what a frame written on it must end in."""
        fcs_len = getattr(self._encoder, "fcs_len", None)
        return fcs_len(interface_id) if fcs_len is not None else 0

    def write_record(
        self, timestamp_ns: int, parts: Sequence[bytes | memoryview], orig_len: int | None = None, *,
        interface_id: int = 0, comment: str | None = None, linktype: int | None = None,
    ) -> None:
        """Write one record whose data is ``parts`` in order, without joining them."""
        if self._fd < 0:
            raise CaptureError("write to a closed capture writer", where=self.path)
        caplen = len(parts[0]) if len(parts) == 1 else sum(len(part) for part in parts)
        head, tail = self._encoder.frame(
            timestamp_ns, caplen, caplen if orig_len is None or orig_len < caplen else orig_len, interface_id,
            comment, self._encoder.default_linktype if linktype is None else linktype,
        )
        iov = self._iov
        iov.append(head)
        iov.extend(parts)
        if tail:
            iov.append(tail)
        self._pending += len(head) + caplen + len(tail)
        self.records_written += 1
        if self._pending >= FLUSH_BYTES or len(iov) >= IOV_MAX:
            self._flush()

    def write_framed(self, parts: Sequence[bytes | memoryview], records: int) -> None:
        """Write bytes that already are ``records`` whole records of this file's format, now.

        For bulk frontends that frame many records at once (softgso.bulk.pipeline): everything queued
        and ``parts`` are on their way to the file when this returns, so the caller may reuse the
        buffers ``parts`` point into.
        """
        if self._fd < 0:
            raise CaptureError("write to a closed capture writer", where=self.path)
        for part in parts:
            self._iov.append(part)
            self._pending += len(part)
        self.records_written += records
        self._flush()

    def count_written(self, nbytes: int) -> None:
        """Count ``nbytes`` a bulk frontend wrote on :meth:`fileno` itself (the space reserved ahead follows them)."""
        self.bytes_written += nbytes

    def rewind(self, nbytes: int, records: int) -> None:
        """Take back everything written after the first ``nbytes`` bytes (``records`` records then):
        the file is cut back there and written on from there. A bulk frontend whose input was cut
        short underneath a write from it (softgso.bulk.pipeline's mapped input); atomic outputs only."""
        if self._fd < 0 or not self.atomic:
            raise CaptureError("rewind of a capture written straight through", where=self.path)
        self._iov.clear()
        self._pending = 0
        if self._reservation is not None:
            self._reservation.finish()  # no thread reserving any more: the file is this one's alone
            self._reservation.reserved = min(self._reservation.reserved, nbytes)
        os.ftruncate(self._fd, nbytes)
        os.lseek(self._fd, nbytes, os.SEEK_SET)
        self.bytes_written = nbytes
        self.records_written = records

    @property
    def encoder(self) -> RecordEncoder:
        """The format's framing of this file's records (for bulk frontends that frame records themselves)."""
        return self._encoder

    def note(self) -> str | None:
        """What a summary says of this output when it is written straight through (e.g. "written
        straight through (not atomic): OUT is a FIFO"); None when it is written atomically."""
        return self._target.note()

    def reserve_ahead(self, input_done: int, input_total: int) -> bool:
        """Reserve one step of space for OUT's next bytes: for a bulk frontend's idle moments.

        The costly half of a write to tmpfs is allocating the pages; done while the writer has
        nothing to write, it is off the critical path. Space is reserved up to the output's size as
        projected from the share of the input done (``input_done`` of ``input_total`` bytes), at
        most RESERVE_LEAD past the bytes written; what ends up unused is given back at close. False
        when there is nothing to do (all reserved, not atomic, no softgso.bulk._segment, a refusal).
        """
        if self._fd < 0 or not self.atomic or input_done <= 0:
            return False
        if self._reservation is None:
            if self._no_reservation:
                return False
            self._reservation = attach(self.path, self._fd, self._temp_path)
            self._no_reservation = self._reservation is None
            if self._reservation is None:
                return False
        projected = self.bytes_written * input_total // input_done
        return self._reservation.ahead(min(projected, self.bytes_written + RESERVE_LEAD))

    def fileno(self) -> int:
        """The output's descriptor (the temporary file's, when atomic), everything queued written first.

        What the caller writes on it lands in order after the records written so far, and is
        committed or discarded with them.
        """
        if self._fd < 0:
            raise CaptureError("write to a closed capture writer", where=self.path)
        self._flush()
        return self._fd

    def _queue(self, data: bytes | memoryview) -> None:
        self._iov.append(data)
        self._pending += len(data)

    def _flush(self) -> None:
        """Write every queued iovec, IOV_MAX at a time, resuming after short writes."""
        iov = self._iov
        fd = self._fd
        if self._reservation is not None:
            self._reservation.stop()  # writing now: the reserving thread would only contend for the inode
        start = 0
        while start < len(iov):
            batch = iov[start : start + IOV_MAX]
            written = os.writev(fd, batch)
            self.bytes_written += written
            for item in batch:
                size = len(item)
                if written >= size:
                    written -= size
                    start += 1
                else:
                    iov[start] = memoryview(item)[written:]
                    break
        iov.clear()
        self._pending = 0

    # -- lifetime --------------------------------------------------------------------------------

    def close(self) -> None:
        """Flush, fsync and move the temporary file onto OUT (a no-op once closed or aborted).

        Straight through (not atomic): flush and close; nothing to move."""
        if self._fd < 0:
            return
        try:
            self._flush()
            if self._reservation is not None:
                self._reservation.finish(trim=True)
                self._reservation = None
            if self.fsync:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            if self.atomic:
                self._target.commit(self._temp_path)
        except BaseException as error:
            self.abort()
            full = _out_of_room(error)
            if full is not None:
                raise self._target.error(full, creating=False) from error
            raise
        self._cleanup.detach()
        if self.fsync:
            self._sync_directory()

    def abort(self) -> None:
        """Discard everything: remove the temporary file and leave OUT as it was (straight through: stop writing)."""
        if self._reservation is not None:
            self._reservation.finish()  # no thread may still use the descriptor's number
            self._reservation = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._iov.clear()
        self._cleanup()

    def _sync_directory(self) -> None:
        # The rename is durable only once the directory entry is on disk.
        try:
            directory = os.open(os.path.dirname(self._target.location), os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(directory)
        except OSError:
            pass
        finally:
            os.close(directory)

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
            full = _out_of_room(exc)  # (wherever the writing was: a thread, the compiled stream)
            if full is not None:
                raise self._target.error(full, creating=False) from exc


def open_writer(
    path: str | os.PathLike[str], like: CaptureReader | None = None, *, format: str | None = None,
    linktype: int | None = None, nanosecond: bool | None = None, byte_order: str | None = None,
    snaplen: int | None = None, fsync: bool = True,
) -> CaptureWriter:
    """Open an atomic capture writer shaped like ``like`` (same format, byte order, resolution, IDBs).

    ``path`` ``-`` writes to standard output as records come (not atomic); so does a character
    device, a FIFO or a socket (see :class:`CaptureWriter`).
    ``fsync=False`` skips the fsync before the rename: still atomic for readers, but not durable
    across a power cut (for scratch outputs and benchmarks).
    """
    format = format or (like.format if like is not None else "pcap")
    if format not in ("pcap", "pcapng"):
        raise CaptureError(f"unknown capture format {format!r} (pcap or pcapng)")
    order = byte_order or (like.byte_order if like is not None else "little")
    if like is not None and like.interfaces:
        interfaces = like.interfaces
    else:
        interfaces = [Interface(LINKTYPE_ETHERNET, MAX_SNAPLEN_STANDARD, 1_000_000)]
    overridden = linktype is not None or nanosecond is not None or snaplen is not None
    if overridden:
        # Fields the caller fixed replace those of ``like``'s interfaces (a byte order alone does
        # not: encode_idb re-encodes an IDB in the output's order by itself).
        interfaces = [
            Interface(
                interface.linktype if linktype is None else linktype,
                interface.snaplen if snaplen is None else snaplen,
                interface.ticks_per_second if nanosecond is None else (10**9 if nanosecond else 10**6),
                interface.tsoffset_s, interface.name, fcs_len=interface.fcs_len,
            )
            for interface in interfaces
        ]
    encoder: RecordEncoder
    if format == "pcap":
        ns = interfaces[0].ticks_per_second > 10**6
        if isinstance(like, PcapReader) and not overridden and order == like.byte_order:
            header = like.header
        else:
            field = interfaces[0].linktype | fcs_bits(interfaces[0].fcs_len)
            if isinstance(like, PcapReader) and linktype is None:
                field = like.linktype_field
            header = pcap_file_header(order, ns, max(i.snaplen for i in interfaces) or MAX_SNAPLEN_STANDARD, field)
        encoder = PcapRecordEncoder(header, order, ns, interfaces[0].linktype)
    else:
        if isinstance(like, PcapngReader) and like.section_header and order == like.byte_order:
            shb = like.section_header
        else:
            shb = encode_shb(order, like.comment if like is not None else None)
        encoder = PcapngRecordEncoder(shb, interfaces, order)
        encoder.keeps_blocks = isinstance(like, PcapngReader) and order == like.byte_order and not overridden
    return CaptureWriter(path, encoder, format, fsync=fsync)
