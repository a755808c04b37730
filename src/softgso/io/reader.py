"""Opening a capture file: the format is told by its magic number, never by its name."""

from __future__ import annotations

import os

from ..errors import CaptureError
from .pcap import KUZNETZOV_TCPDUMP_MAGIC, PcapReader, pcap_magic
from .pcapng import BT_SHB, PcapngReader
from .source import CaptureReader

GZIP_MAGIC = b"\x1f\x8b"


def open_capture(path: str | os.PathLike[str]) -> CaptureReader:
    """Open a pcap or pcapng file for streaming reading (a context manager and an iterator)."""
    name = os.fspath(path)
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        magic = os.pread(fd, 4, 0)
        if pcap_magic(magic) is not None:
            return PcapReader(name, fd)
        if len(magic) == 4 and int.from_bytes(magic, "little") == BT_SHB:
            return PcapngReader(name, fd)
        raise CaptureError(_bad_magic(magic), where=name)
    except BaseException:
        os.close(fd)
        raise


def _bad_magic(magic: bytes) -> str:
    if not magic:
        return "empty file: not a capture"
    if len(magic) < 4:
        return f"file of {len(magic)} bytes: too short for a capture file header"
    if magic.startswith(GZIP_MAGIC):
        return "gzip-compressed file: decompress it first"
    if KUZNETZOV_TCPDUMP_MAGIC in (int.from_bytes(magic, "little"), int.from_bytes(magic, "big")):
        return "modified (Kuznetzov) pcap format is not supported: convert it with editcap -F pcap"
    return f"bad magic 0x{magic.hex()}: neither pcap nor pcapng"
