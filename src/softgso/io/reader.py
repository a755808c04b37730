"""Opening a capture file: the format is told by its magic number, never by its name.

``-`` is standard input (as for tcpdump -r and Wireshark's tools). Any input is read front to back
without seeking, so a pipe or a FIFO works like a regular file. A gzip or zstd file (told by its
magic too) is decompressed as it is read (softgso.io.compressed), as tshark and tcpreplay read it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial

from ..errors import CaptureError
from .compressed import compression_of, decompressing_read
from .pcap import KUZNETZOV_TCPDUMP_MAGIC, PcapReader, pcap_magic
from .pcapng import BT_SHB, PcapngReader
from .source import CaptureReader

STDIN = "-"
STDIN_NAME = "<stdin>"


def open_capture(path: str | os.PathLike[str]) -> CaptureReader:
    """Open a pcap or pcapng file, gzip- or zstd-compressed or not (``-``: standard input), for
    streaming reading (a context manager and an iterator)."""
    name = os.fspath(path)
    if name == STDIN:
        # a descriptor of our own: closing the reader leaves the process's stdin open
        fd = os.dup(0)
        name = STDIN_NAME
    else:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        magic = _read_magic(partial(os.read, fd))
        compression = compression_of(magic)
        read = None
        if compression is not None:
            # the capture's own magic comes from the decompressed stream
            read = decompressing_read(fd, magic, compression, name)
            magic = _read_magic(read)
        if pcap_magic(magic) is not None:
            return PcapReader(name, fd, magic, read, compression)
        if len(magic) == 4 and int.from_bytes(magic, "little") == BT_SHB:
            return PcapngReader(name, fd, magic, read, compression)
        inside = f" (inside its {compression} compression)" if compression else ""
        raise CaptureError(_bad_magic(magic) + inside, where=name)
    except BaseException:
        os.close(fd)
        raise


def _read_magic(read: Callable[[int], bytes]) -> bytes:
    """The first 4 bytes (fewer at end of file), read, not pread: a pipe cannot seek back."""
    magic = b""
    while len(magic) < 4:
        more = read(4 - len(magic))
        if not more:
            break
        magic += more
    return magic


# other capture formats, by their first 4 bytes (as Wireshark's wiretap tells them): named, so that the
# user learns what the file is and how to convert it, rather than a bad magic number
OTHER_FORMATS = {
    b"RTSS": "a Microsoft Network Monitor 1.x capture",
    b"GMBU": "a Microsoft Network Monitor 2.x capture",
    b"snoo": "a Solaris snoop capture",
    b"XCP\0": "a NetXRay / Windows Sniffer capture",
    b"TRSN": "a Sniffer (DOS) capture",
    b"iptr": "an AIX iptrace capture",
}


def _bad_magic(magic: bytes) -> str:
    if not magic:
        return "empty file: not a capture"
    if len(magic) < 4:
        return f"file of {len(magic)} bytes: too short for a capture file header"
    if KUZNETZOV_TCPDUMP_MAGIC in (int.from_bytes(magic, "little"), int.from_bytes(magic, "big")):
        return "modified (Kuznetzov) pcap format is not supported: convert it with editcap -F pcap"
    other = OTHER_FORMATS.get(magic)
    if other is not None:
        return f"{other}, neither pcap nor pcapng: convert it with editcap -F pcapng (Wireshark reads it)"
    return f"bad magic 0x{magic.hex()}: neither pcap nor pcapng"
