"""Capture files for the CLI tests, written field by field here (not by softgso.io), and frames
as a sending host's tcpdump shows them: super-packets with tot_len 0, BIG TCP jumbograms, partial
checksums, mixed with ARP / ICMP / small UDP."""

from __future__ import annotations

import struct
from pathlib import Path

from softgso.check.synth import IPV6_DST, IPV6_SRC, MAC_DST, MAC_SRC, SuperPacketSpec, build_frame, l4_bytes
from softgso.checksum import ipv4_header_checksum

LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2 = 1, 113, 276
# the real captures of ../shared/captures (beside the clone), when they are there
CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "captures"
SNAPLEN = 262144


def write_pcap(path: Path, frames: list[bytes], *, linktype: int = LINKTYPE_ETHERNET, big_endian: bool = False,
               nano: bool = False, orig_lens: list[int] | None = None, snaplen: int = SNAPLEN) -> Path:
    """A classic pcap: either byte order, micro- or nanosecond timestamps (1 s + index ms apart)."""
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = bytearray(struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
    for index, frame in enumerate(frames):
        seconds, fraction = 1_700_000_000 + index, index * (1_000_000 if nano else 1_000) + 7
        orig = orig_lens[index] if orig_lens else len(frame)
        out += struct.pack(order + "IIII", seconds, fraction, len(frame), orig) + frame
    path.write_bytes(bytes(out))
    return path


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(block_type: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def write_pcapng(path: Path, interfaces: list[tuple[int, str]],
                 packets: list[tuple[int, bytes, str | None]]) -> Path:
    """A little-endian pcapng: one IDB per (linktype, name), EPBs (interface, frame, comment)."""
    shb_options = _option(1, b"softgso CLI test section") + _option(0, b"")
    out = bytearray(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_options))
    for linktype, name in interfaces:
        options = _option(2, name.encode()) + _option(9, bytes([9])) + _option(0, b"")
        out += _block(1, struct.pack("<HHI", linktype, 0, SNAPLEN) + options)
    for index, (interface, frame, comment) in enumerate(packets):
        ticks = (1_700_000_000 + index) * 10**9 + index
        options = (_option(1, comment.encode()) + _option(0, b"")) if comment else b""
        body = struct.pack("<IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
        out += _block(6, body + frame + b"\0" * (-len(frame) % 4) + options)
    path.write_bytes(bytes(out))
    return path


def sll(frame: bytes) -> bytes:
    """Linux cooked v1 (LINKTYPE_LINUX_SLL) header for an outgoing Ethernet frame."""
    return struct.pack("!HHH8sH", 4, 1, 6, frame[6:12] + b"\0\0", int.from_bytes(frame[12:14], "big")) + frame[14:]


def sll2(frame: bytes) -> bytes:
    """Linux cooked v2 (LINKTYPE_LINUX_SLL2) header for an outgoing Ethernet frame."""
    return struct.pack("!HHIHBB8s", int.from_bytes(frame[12:14], "big"), 0, 2, 1, 4, 6, frame[6:12] + b"\0\0") \
        + frame[14:]


# --- frames ------------------------------------------------------------------------------------------


def payload(size: int, seed: int = 0) -> bytes:
    """Recognisable payload bytes."""
    return bytes((seed + i * 7) & 0xFF for i in range(size))


def tcp4_super(size: int = 20000, *, partial: bool = True, seq: int = 1_000_000, sport: int = 40000) -> bytes:
    """An IPv4 TCP super-packet as the sending host captures it (checksum field: the seed)."""
    return build_frame(SuperPacketSpec(payload=payload(size), partial_checksum=partial, seq=seq, sport=sport,
                                       tcp_options=bytes.fromhex("0101080a000003e8000007d0")))


def with_ipv4_tot_len(frame: bytes, tot_len: int) -> bytes:
    """The frame with IPv4 tot_len rewritten (header checksum recomputed, as the stack would)."""
    out = bytearray(frame)
    struct.pack_into("!H", out, 16, tot_len)
    struct.pack_into("!H", out, 24, ipv4_header_checksum(out[14:34]))
    return bytes(out)


def tcp6_jumbogram(size: int = 70000, *, hop_by_hop: bool = True, partial: bool = True, sport: int = 40000) -> bytes:
    """An IPv6 BIG TCP packet: payload_len 0 and, before Linux 6.11, the hop-by-hop jumbo option."""
    spec = SuperPacketSpec(ipv6=True, payload=payload(size, 3), partial_checksum=partial, seq=5000, sport=sport)
    tcp = l4_bytes(spec, IPV6_SRC, IPV6_DST)
    if hop_by_hop:
        ext = bytes([6, 0, 0xC2, 4]) + struct.pack("!I", 8 + len(tcp))
        header = struct.pack("!IHBB16s16s", 6 << 28, 0, 0, 64, IPV6_SRC, IPV6_DST) + ext
    else:
        header = struct.pack("!IHBB16s16s", 6 << 28, 0, 6, 64, IPV6_SRC, IPV6_DST)
    return MAC_DST + MAC_SRC + b"\x86\xdd" + header + tcp


def udp4(size: int = 100, *, partial: bool = False) -> bytes:
    """An ordinary small UDP datagram."""
    return build_frame(SuperPacketSpec(udp=True, payload=payload(size, 9), partial_checksum=partial, sport=53000,
                                       dport=7777))


def arp() -> bytes:
    """An ARP request (not IP: passes through unchanged)."""
    return b"\xff" * 6 + MAC_SRC + b"\x08\x06" + bytes.fromhex("0001080006040001") + MAC_SRC + bytes([192, 0, 2, 1]) \
        + b"\0" * 6 + bytes([198, 51, 100, 2])


def icmp4() -> bytes:
    """An ICMP echo request (IP but neither TCP nor UDP)."""
    icmp = bytearray(b"\x08\x00\x00\x00\x12\x34\x00\x01" + payload(32))
    from softgso.checksum import csum_fold, ones_sum

    struct.pack_into("!H", icmp, 2, csum_fold(ones_sum(icmp)))
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, 0x4000, 64, 1, 0,
                                   bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2])))
    struct.pack_into("!H", header, 10, ipv4_header_checksum(header))
    return MAC_DST + MAC_SRC + b"\x08\x00" + bytes(header) + bytes(icmp)


def ack4() -> bytes:
    """A pure ACK with a complete checksum (an ordinary packet)."""
    return build_frame(SuperPacketSpec(payload=b"", tcp_flags=0x10, partial_checksum=False, sport=5201, dport=40000))


def mixed_capture() -> list[bytes]:
    """What a sending host's tcpdump shows: super-packets among ordinary traffic of other kinds."""
    return [arp(), tcp4_super(20000), ack4(), with_ipv4_tot_len(tcp4_super(30000, seq=1_020_000), 0), icmp4(),
            udp4(), tcp6_jumbogram(70000), ack4(), tcp4_super(1000, partial=True, seq=1_050_000),
            tcp6_jumbogram(66000, hop_by_hop=False, sport=40001)]


# Payload bytes each TCP flow of mixed_capture() carries, in sequence order.
MIXED_FLOW_PAYLOADS = {
    ("192.0.2.1", 40000): payload(20000) + payload(30000) + payload(1000),
    ("2001:db8::1", 40000): payload(70000, 3),
    ("2001:db8::1", 40001): payload(66000, 3),
}
# Input packets of mixed_capture() that need nothing and must come out byte-identical.
MIXED_UNCHANGED = (0, 2, 4, 5, 7)




def real_captures() -> list[Path]:
    """Every pcap and pcapng file of ../shared/captures (none when it is not beside the clone)."""
    if not CAPTURES.is_dir():
        return []
    return sorted(p for p in CAPTURES.rglob("*") if p.suffix in (".pcap", ".pcapng"))
