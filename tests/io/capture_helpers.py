"""Helpers for the capture-file tests: Scapy as the independent encoder and decoder of capture files."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import RawPcapNgReader, RawPcapReader


@dataclass
class Decoded:
    """A record as Scapy decodes it."""

    timestamp_ns: int
    data: bytes
    orig_len: int
    comment: str | None = None
    linktype: int | None = None
    ifname: str | None = None


def scapy_decode(path: Path) -> list[Decoded]:
    """Every record of ``path`` by Scapy's raw readers (timestamps exact, as integers)."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    out = []
    if magic == b"\x0a\x0d\x0d\x0a":
        reader = RawPcapNgReader(str(path))
        for data, meta in reader:
            ticks = ((meta.tshigh or 0) << 32) | (meta.tslow or 0)
            resolution = int(meta.tsresol)
            comment = meta.comments[0].decode() if meta.comments else None
            ifname = meta.ifname.decode() if meta.ifname else None
            out.append(Decoded(ticks * 10**9 // resolution, data, meta.wirelen, comment, meta.linktype, ifname))
        reader.close()
    else:
        reader = RawPcapReader(str(path))
        for data, meta in reader:
            fraction = meta.usec * (1 if reader.nano else 1000)
            out.append(Decoded(meta.sec * 10**9 + fraction, data, meta.wirelen, linktype=reader.linktype))
        reader.close()
    return out


def tcp_frames(count: int, payload_step: int = 97) -> list[bytes]:
    """Distinct Ethernet/IPv4/TCP frames of growing size."""
    return [
        bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2")
              / TCP(sport=1000 + i, dport=80, seq=i) / Raw(bytes([i % 251]) * (payload_step * i)))
        for i in range(count)
    ]


TIMESTAMPS = [Decimal("1700000000.123456789") + i * Decimal("0.001000001") for i in range(8)]


# --- pcapng blocks built from the spec (draft-ietf-opsawg-pcapng), independently of softgso ------


def png_option(prefix: str, code: int, value: bytes) -> bytes:
    return struct.pack(prefix + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def png_block(prefix: str, block_type: int, body: bytes, options: list[bytes] | None = None) -> bytes:
    body += b"\0" * (-len(body) % 4)
    if options:
        body += b"".join(options) + png_option(prefix, 0, b"")
    length = 12 + len(body)
    return struct.pack(prefix + "II", block_type, length) + body + struct.pack(prefix + "I", length)


def png_shb(prefix: str, comment: str | None = None) -> bytes:
    options = [png_option(prefix, 1, comment.encode())] if comment else None
    return png_block(prefix, 0x0A0D0D0A, struct.pack(prefix + "IHHq", 0x1A2B3C4D, 1, 0, -1), options)


def png_idb(prefix: str, linktype: int, snaplen: int = 262144, tsresol: int | None = None,
            tsoffset: int | None = None, name: str | None = None, fcslen: int | None = None) -> bytes:
    options = []
    if name:
        options.append(png_option(prefix, 2, name.encode()))
    if fcslen is not None:
        options.append(png_option(prefix, 13, bytes([fcslen])))
    if tsresol is not None:
        options.append(png_option(prefix, 9, bytes([tsresol])))
    if tsoffset is not None:
        options.append(png_option(prefix, 14, struct.pack(prefix + "q", tsoffset)))
    return png_block(prefix, 1, struct.pack(prefix + "HHI", linktype, 0, snaplen), options)


def png_epb(prefix: str, interface_id: int, ticks: int, data: bytes, orig_len: int | None = None,
            comment: str | None = None, flags: int | None = None) -> bytes:
    header = struct.pack(prefix + "IIIII", interface_id, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                         len(data) if orig_len is None else orig_len)
    options = [png_option(prefix, 1, comment.encode())] if comment else []
    if flags is not None:
        options.append(png_option(prefix, 2, struct.pack(prefix + "I", flags)))
    options = options or None
    return png_block(prefix, 6, header + data, options)


def png_spb(prefix: str, data: bytes) -> bytes:
    return png_block(prefix, 3, struct.pack(prefix + "I", len(data)) + data)


def png_isb(prefix: str, interface_id: int) -> bytes:
    return png_block(prefix, 5, struct.pack(prefix + "III", interface_id, 0, 0))
