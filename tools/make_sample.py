"""Write samples/mpls_tcp_super.pcap: the bundled sample for `make demo`.

MPLS-labelled TCP super-packets (IPv4 and IPv6, one and two labels, partial checksums as a sending
host with offloads captures them) mixed with ordinary traffic that must pass through untouched
(ARP, a small TCP ACK, a DNS query). Deterministic: the same bytes on every run.
"""

from __future__ import annotations

import random
import struct
import sys
from pathlib import Path

from softgso.checksum import ipv4_header_checksum, pseudo_header_sum

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def lse(label: int, tc: int, bottom: bool, ttl: int) -> bytes:
    return struct.pack("!I", (label << 12) | (tc << 9) | (int(bottom) << 8) | ttl)


def tcp_segment(src: bytes, dst: bytes, seq: int, flags: int, payload: bytes, partial: bool) -> bytes:
    options = b"\x01\x01\x08\x0a" + struct.pack("!II", 1000, 2000)
    header = struct.pack("!HHIIBBHHH", 40000, 5201, seq, 777, (5 + len(options) // 4) << 4, flags, 64240, 0, 0)
    segment = bytearray(header + options + payload)
    seed = pseudo_header_sum(src, dst, 6, len(segment))
    if partial:
        struct.pack_into("!H", segment, 16, seed)
    else:
        from softgso.checksum import csum_fold, ones_sum

        struct.pack_into("!H", segment, 16, csum_fold(ones_sum(segment, seed)))
    return bytes(segment)


def ipv4(src: bytes, dst: bytes, proto: int, body: bytes, ident: int) -> bytes:
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, 0x4000, 64, proto, 0, src, dst))
    struct.pack_into("!H", header, 10, ipv4_header_checksum(header))
    return bytes(header) + body


def ipv6(src: bytes, dst: bytes, proto: int, body: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(body), proto, 64, src, dst) + body


def main(path: str) -> None:
    rng = random.Random(2013)
    v4a, v4b = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    v6a, v6b = bytes.fromhex("fd000000000000000000000000000001"), bytes.fromhex("fd000000000000000000000000000002")
    frames: list[bytes] = []
    arp = MAC_B + MAC_A + b"\x08\x06" + bytes.fromhex("0001080006040001") + MAC_A + v4a + bytes(6) + v4b
    frames.append(arp)
    for n, labels in enumerate(([100], [100, 200], [16])):
        payload = bytes(rng.getrandbits(8) for _ in range(20000 + 7000 * n))
        stack = b"".join(lse(label, 0, i == 0, 64) for i, label in reversed(list(enumerate(labels))))
        body = tcp_segment(v4a, v4b, 1_000_000 + n, 0x18, payload, partial=True)
        frames.append(MAC_B + MAC_A + b"\x88\x47" + stack + ipv4(v4a, v4b, 6, body, 0x1234 + n))
        ack = tcp_segment(v4b, v4a, 777, 0x10, b"", partial=False)
        frames.append(MAC_A + MAC_B + b"\x08\x00" + ipv4(v4b, v4a, 6, ack, 0x4000 + n))
    payload = bytes(rng.getrandbits(8) for _ in range(30000))
    body = tcp_segment(v6a, v6b, 5_000_000, 0x18, payload, partial=True)
    frames.append(MAC_B + MAC_A + b"\x88\x47" + lse(300, 5, True, 33) + ipv6(v6a, v6b, 6, body))
    dns = struct.pack("!HHHH", 53000, 53, 8 + 17, 0) + b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01"
    frames.append(MAC_B + MAC_A + b"\x08\x00" + ipv4(v4a, v4b, 17, dns, 7))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as handle:
        handle.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for index, frame in enumerate(frames):
            handle.write(struct.pack("<IIII", 1_764_000_000 + index, index * 1000, len(frame), len(frame)))
            handle.write(frame)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "samples/mpls_tcp_super.pcap")
