"""The reading side shared by every format: a file read in large chunks, handed out as views.

Strategy: each refill is a fresh ``bytes`` object from one ``os.read`` of CHUNK_SIZE bytes, and a
record's data is a memoryview slice of it. Chunks are never reused, so a view stays valid for as
long as somebody holds it (a writer's pending iovecs, a caller's list) and memory stays bounded
by what the caller keeps. A record that straddles two chunks is the one place where bytes are
copied (``_take``), at most one record per chunk.

Nothing here seeks: a pipe, a FIFO or standard input reads like a file (the bytes the opener read
to tell the format come in as ``first_bytes``). No read is sized by the file's own length fields before
they are checked (:meth:`CaptureReader._check_length`), so a hostile length costs an error, never
an allocation.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from functools import partial
from types import TracebackType

from .record import (
    GSO_MAX_SIZE,
    MAX_LINK_FRAMING,
    MAX_RECORD_LEN,
    MAX_SNAPLEN_STANDARD,
    CaptureRecord,
    Interface,
    RecordError,
)

# 1 MiB, measured (benchmarks/io_readers.py, 64 KiB records, warm cache, best of 9): 256 KiB
# 8.4 GB/s, 1 MiB 9.3, 2 MiB 8.8, 4 MiB 7.9, 8 MiB 4.9. Past a few MiB every chunk is a fresh mmap
# whose pages fault in cold; at 1 MiB malloc recycles warm memory and the straddle copy (at most
# one record per chunk) still costs little.
CHUNK_SIZE = 1 << 20


class CaptureReader:
    """An open capture file: iterate it for :class:`CaptureRecord`; use it as a context manager."""

    format: str = ""

    def __init__(
        self, path: str, fd: int, first_bytes: bytes = b"", read: Callable[[int], bytes] | None = None,
        compression: str | None = None,
    ) -> None:
        """Read from ``fd`` (owned from now on), whose opening ``first_bytes`` were already read from it;
        through ``read`` when given (a compressed file's decompressed bytes: ``compression`` says which)."""
        self.path = path
        self._fd = fd
        self._read: Callable[[int], bytes] = read if read is not None else partial(os.read, fd)
        self.compression = compression  # "gzip" or "zstd": read through a decompressor, like a FIFO
        status = os.fstat(fd)
        # a pipe, FIFO or terminal has no size (a progress bar shows bytes only) and takes no advice;
        # nor has a compressed file's content
        regular = stat.S_ISREG(status.st_mode)
        self.file_size = status.st_size if regular and compression is None else 0
        self.byte_order = "little"
        self.interfaces: list[Interface] = []
        self.comment: str | None = None  # pcapng SHB opt_comment
        self._chunk = first_bytes
        self._view = memoryview(self._chunk)
        self._pos = 0
        self._chunk_offset = 0  # file offset of self._chunk[0]
        self._index = 0  # index of the next packet record
        if regular and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)

    # -- attributes callers show -----------------------------------------------------------------

    @property
    def bytes_read(self) -> int:
        """Bytes of the file consumed so far (for a progress bar against ``file_size``)."""
        return self._chunk_offset + self._pos

    @property
    def records_read(self) -> int:
        """Packet records read so far (the index of the next one)."""
        return self._index

    @property
    def linktypes(self) -> tuple[int, ...]:
        """The link type of each interface, in interface-id order."""
        return tuple(interface.linktype for interface in self.interfaces)

    @property
    def nanosecond(self) -> bool:
        """Timestamps finer than microseconds (on the first interface)."""
        return bool(self.interfaces) and self.interfaces[0].ticks_per_second > 1_000_000

    # -- lifetime --------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[CaptureRecord]:
        raise NotImplementedError

    def close(self) -> None:
        """Close the file (views already handed out stay valid)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- chunked reading -------------------------------------------------------------------------

    def _refill(self) -> None:
        """Replace the (fully consumed) chunk with the next CHUNK_SIZE bytes of the file."""
        self._chunk_offset += len(self._chunk)
        self._chunk = self._read(CHUNK_SIZE)
        self._view = memoryview(self._chunk)
        self._pos = 0

    def _fill(self, size: int) -> None:
        """Have at least ``size`` unread bytes in the chunk (fewer only at end of file), consuming none.

        For a format's opening bytes: a pipe may hand them over a few at a time.
        """
        while len(self._chunk) - self._pos < size:
            more = self._read(CHUNK_SIZE)
            if not more:
                return
            self._chunk_offset += self._pos
            self._chunk = bytes(self._view[self._pos :]) + more
            self._view = memoryview(self._chunk)
            self._pos = 0

    def _take(self, size: int) -> bytes | memoryview:
        """The next ``size`` bytes, fewer only at end of file; the slow path behind the parsers."""
        pos = self._pos
        available = len(self._chunk) - pos
        if available >= size:
            self._pos = pos + size
            return self._view[pos : pos + size]
        parts: list[bytes | memoryview] = [self._view[pos:]] if available else []
        missing = size - available
        self._pos = len(self._chunk)
        while missing > 0:
            if missing >= CHUNK_SIZE // 2:
                # A record bigger than half a chunk is read straight into its own buffer.
                self._chunk_offset += len(self._chunk)
                self._chunk = b""
                self._view = memoryview(self._chunk)
                self._pos = 0
                piece = self._read(missing)
                if not piece:
                    break
                self._chunk_offset += len(piece)
                parts.append(piece)
                missing -= len(piece)
            else:
                self._refill()
                if not self._chunk:
                    break
                taken = min(missing, len(self._chunk))
                parts.append(self._view[:taken])
                self._pos = taken
                missing -= taken
        return b"".join(parts)

    def _error(self, reason: str, offset: int) -> RecordError:
        """A RecordError for the next record, at ``offset``."""
        return RecordError(reason, path=self.path, index=self._index, offset=offset)

    def _check_length(self, caplen: int, snaplen: int, offset: int, what: str = "captured length") -> None:
        """Refuse a record length no kernel frame has, or beyond the snaplen as libpcap/Wireshark do."""
        if caplen > MAX_RECORD_LEN:
            raise self._error(
                f"{what} {caplen} is longer than any frame the kernel builds (at most {MAX_RECORD_LEN} bytes: "
                f"GSO_MAX_SIZE {GSO_MAX_SIZE} plus {MAX_LINK_FRAMING} of link-layer framing): corrupt or hostile file",
                offset,
            )
        if snaplen and caplen > max(snaplen, MAX_SNAPLEN_STANDARD):
            raise self._error(f"{what} {caplen} exceeds the snaplen {snaplen}", offset)
