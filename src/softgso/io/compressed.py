"""Compressed captures: gzip and zstd, decompressed while they are read (as tshark and tcpreplay read them).

The compression is told by the file's magic number, as the capture format is (a ``.gz`` name
holding a plain pcap reads as a plain pcap). The decompressed bytes go to the ordinary readers
through :func:`decompressing_read`, front to back, never seeked: a compressed file reads like a FIFO
(the scalar engine; the bulk streams take plain classic pcap only). Each read returns at most the
size asked, so the readers' limits on what they buffer hold for the decompressed bytes as well.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable

from ..errors import CaptureError

TYPE_CHECKING = False  # typing costs start-up milliseconds; mypy reads this name as typing's
if TYPE_CHECKING:
    from typing import IO, Any

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # RFC 8878 frame magic 0xFD2FB528, little-endian


def compression_of(magic: bytes) -> str | None:
    """"gzip" or "zstd" for a file starting with ``magic`` (its first 4 bytes), else None."""
    if magic.startswith(GZIP_MAGIC):
        return "gzip"
    if magic.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


class _Compressed(io.RawIOBase):
    """The compressed file's bytes: its opening bytes, already read to tell the format, then the descriptor's."""

    def __init__(self, fd: int, first_bytes: bytes) -> None:
        super().__init__()
        self._fd = fd
        self._first = first_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._first:
            count = min(len(buffer), len(self._first))
            buffer[:count] = self._first[:count]
            self._first = self._first[count:]
            return count
        return os.readv(self._fd, [buffer])


def decompressing_read(fd: int, first_bytes: bytes, kind: str, path: str) -> Callable[[int], bytes]:
    """A ``read(size)`` of the decompressed bytes of ``fd`` (``first_bytes`` already read from it):
    at most ``size`` bytes, b"" at the end; a broken stream raises CaptureError naming ``path``."""
    source = _Compressed(fd, first_bytes)
    stream: Any  # a gzip.GzipFile or a zstandard reader: read(size) -> at most size bytes
    errors: tuple[type[BaseException], ...]
    if kind == "gzip":
        import gzip
        import zlib

        # several members (concatenated .gz files) read as one stream, as gzip -d reads them
        stream = gzip.GzipFile(fileobj=source, mode="rb")
        errors = (OSError, EOFError, zlib.error)
    elif kind == "zstd":
        try:
            import zstandard
        except ImportError:  # pragma: no cover - a dependency; missing only in a broken install
            raise CaptureError("zstd-compressed file: reading it needs the zstandard package "
                               "(pip install zstandard)", where=path) from None
        from typing import cast  # here: typing is not on the start-up path of an uncompressed capture

        stream = zstandard.ZstdDecompressor().stream_reader(
            cast("IO[bytes]", source), read_across_frames=True, closefd=False)
        errors = (OSError, EOFError, zstandard.ZstdError)
    else:
        raise ValueError(f"unknown compression {kind!r}")

    read_some = stream.read1  # what is there (at most size), never more than one step of decompression
    broken: list[CaptureError] = []

    def read(size: int) -> bytes:
        # as much as asked (the readers' chunks stay large), and on a break the bytes before it
        # first: the records they hold are read, the break raised at the next read
        if broken:
            raise broken[0]
        parts: list[bytes] = []
        got = 0
        while got < size:
            try:
                piece = read_some(size - got)
            except errors as error:
                failure = CaptureError(f"{kind} stream broken: {error}", where=path)
                failure.__cause__ = error
                if not parts:
                    raise failure from error
                broken.append(failure)
                break
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    return read


__all__ = ["GZIP_MAGIC", "ZSTD_MAGIC", "compression_of", "decompressing_read"]
