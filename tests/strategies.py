"""Hypothesis strategies for valid super-packets (shared by the property tests and the fuzz pass), seeded frame
mixes, and TCP segments as a receiver sees them (tcp_frame, for GRO)."""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from hypothesis import strategies as st

from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.checksum import csum_fold, ipv4_header_checksum, ones_sum, pseudo_header_sum

IPV4_OPTION_LENGTHS = st.sampled_from([0, 4, 8, 12, 20, 40])
TCP_OPTION_LENGTHS = st.sampled_from([0, 4, 8, 12, 20, 40])


@st.composite
def ipv4_options(draw: st.DrawFn) -> bytes:
    length = draw(IPV4_OPTION_LENGTHS)
    if not length:
        return b""
    # NOPs then an end-of-list: valid options of any length the header allows
    return b"\x01" * (length - 1) + b"\x00"


@st.composite
def tcp_options(draw: st.DrawFn) -> bytes:
    length = draw(TCP_OPTION_LENGTHS)
    if not length:
        return b""
    if length >= 12 and draw(st.booleans()):
        stamp = b"\x01\x01\x08\x0a" + draw(st.binary(min_size=8, max_size=8))
        return stamp + b"\x01" * (length - 12)
    return b"\x01" * length


@st.composite
def ipv6_exthdrs(draw: st.DrawFn) -> tuple[tuple[int, bytes], ...]:
    kinds = draw(st.lists(st.sampled_from([0, 43, 60]), max_size=3))
    if 0 in kinds:  # hop-by-hop can only come first
        kinds = [0] + [k for k in kinds if k != 0]
    headers = []
    for kind in kinds:
        # a type-0 routing header holds whole 16-byte addresses: an even number of 8-byte units
        units = draw(st.sampled_from([0, 2]) if kind == 43 else st.integers(0, 2))
        body_len = 8 * units + 6
        if kind == 43:
            body = bytes([0, 0]) + bytes(body_len - 2)  # routing type 0, segments left 0
        else:
            body = bytes([1, body_len - 2]) + bytes(body_len - 2)  # one PadN option
        headers.append((kind, body))
    return tuple(headers)


@dataclass(frozen=True)
class GsoCase:
    """A super-packet, the labels and VLAN tags to push, and the segmentation parameters."""

    spec: SuperPacketSpec
    labels: tuple[tuple[int, int, int], ...]
    multicast: bool
    vlan: tuple[int, int] | None
    gso_size: int
    ecn: bool
    fixed_id: bool


@st.composite
def gso_cases(draw: st.DrawFn, *, udp: bool | None = None, max_payload: int = 9000, ipv6: bool | None = None,
              vlan: bool | None = None, labels: bool | None = None, odd: bool = False) -> GsoCase:
    """A super-packet case; keyword arguments force one shape (``odd``: odd gso_size and payload length)."""
    is_udp = draw(st.booleans()) if udp is None else udp
    is_ipv6 = draw(st.booleans()) if ipv6 is None else ipv6
    gso_size = draw(st.integers(8, 1500))
    if odd:
        gso_size |= 1
    payload_len = draw(st.integers(gso_size + 1, max(gso_size + 1, min(max_payload, gso_size * 40))))
    if odd:
        payload_len |= 1
    if payload_len < 64:
        payload = draw(st.binary(min_size=payload_len, max_size=payload_len))
    else:
        seed = draw(st.integers(0, 255))
        payload = bytes((i * 7 + seed) & 0xFF for i in range(payload_len))
    ipv6 = is_ipv6
    spec = SuperPacketSpec(
        ipv6=ipv6,
        udp=is_udp,
        payload=payload,
        ip_options=b"" if ipv6 else draw(ipv4_options()),
        ipv6_exthdrs=draw(ipv6_exthdrs()) if ipv6 else (),
        tcp_options=b"" if is_udp else draw(tcp_options()),
        tcp_flags=draw(st.integers(0, 255)) | 0x10 if not is_udp else 0,
        seq=draw(st.integers(0, 2**32 - 1)),
        ip_id=draw(st.integers(0, 0xFFFF)),
        df=draw(st.booleans()),
        tos=draw(st.integers(0, 255)),
        ttl=draw(st.integers(1, 255)),
        partial_checksum=True,
    )
    label_count = draw(st.integers(0, 3) if labels is None else st.integers(1, 3) if labels else st.just(0))
    label_stack = tuple(
        (draw(st.integers(0, 0xFFFFF).filter(lambda v: v != 3)), draw(st.integers(0, 7)), draw(st.integers(1, 255)))
        for _ in range(label_count)
    )
    tagged = draw(st.booleans()) if vlan is None else vlan
    vlan_tag = (draw(st.integers(1, 4094)), draw(st.integers(0, 7))) if tagged else None
    fixed_id = (not ipv6 and not is_udp and spec.df and draw(st.booleans()))
    return GsoCase(spec, label_stack, draw(st.booleans()), vlan_tag, gso_size, (not is_udp) and draw(st.booleans()),
                   fixed_id)


@dataclass(frozen=True)
class UfoCase:
    """A UDP datagram for legacy UFO (SKB_GSO_UDP): IP fragments of gso_size bytes, a multiple of 8."""

    spec: SuperPacketSpec
    labels: tuple[tuple[int, int, int], ...]
    vlan: tuple[int, int] | None
    gso_size: int
    frag_id: int


@st.composite
def ufo_cases(draw: st.DrawFn, *, ipv6: bool | None = None) -> UfoCase:
    """A UFO case: options or extension headers, labels and a tag sometimes."""
    is_ipv6 = draw(st.booleans()) if ipv6 is None else ipv6
    gso_size = 8 * draw(st.integers(1, 185))
    payload_len = draw(st.integers(gso_size, min(20000, gso_size * 30)))
    seed = draw(st.integers(0, 255))
    spec = SuperPacketSpec(
        ipv6=is_ipv6, udp=True, payload=bytes((i * 11 + seed) & 0xFF for i in range(payload_len)),
        ip_options=b"" if is_ipv6 else draw(ipv4_options()),
        ipv6_exthdrs=draw(ipv6_exthdrs()) if is_ipv6 else (),
        ip_id=draw(st.integers(0, 0xFFFF)), df=draw(st.booleans()), ttl=draw(st.integers(1, 255)),
        partial_checksum=draw(st.booleans()),
    )
    labels = tuple((draw(st.integers(16, 0xFFFFF)), 0, 64) for _ in range(draw(st.integers(0, 2))))
    vlan = (draw(st.integers(1, 4094)), 0) if draw(st.booleans()) else None
    return UfoCase(spec, labels, vlan, gso_size, draw(st.integers(0, 2**32 - 1)))


def small_frames(seed: int, count: int) -> list[bytes]:
    """Short frames of every kind the classifier meets, some corrupted or cut short."""
    rng = random.Random(seed)
    frames = []
    for _ in range(count):
        spec = SuperPacketSpec(
            ipv6=rng.random() < 0.4, udp=rng.random() < 0.3, payload=rng.randbytes(rng.randint(0, 300)),
            partial_checksum=rng.random() < 0.3, ip_options=b"\x01\x01\x01\x00" if rng.random() < 0.1 else b"",
            vlan_tags=((0x8100, 5),) * rng.choice([0, 0, 1, 2]),
            tcp_options=b"\x01" * 4 if rng.random() < 0.2 else b"")
        frame = bytearray(build_frame(spec))
        roll = rng.random()
        if roll < 0.05:
            frame[rng.randrange(len(frame))] ^= 0xFF
        elif roll > 0.97:
            frame = frame[: rng.randrange(len(frame))]
        frames.append(bytes(frame))
    return frames


MACS = (bytes.fromhex("020000000001020000000002"), bytes.fromhex("020000000003020000000002"))


def tcp_frame(v6: bool, flow: int, seq: int, ip_id: int, payload: bytes, *, ttl: int = 64, tos: int = 0,
              df: bool = True, window: int = 512, ack: int = 1, options: bytes = b"", flags: int = 0x10,
              bad_checksum: bool = False, mac: int = 0, vlan: bytes = b"", trailer: bytes = b"") -> bytes:
    """An Ethernet/IP/TCP frame with valid checksums (or a TCP checksum off by one), behind a VLAN tag
    (``vlan``: its 4 bytes, TPID and TCI) if given, ``trailer`` behind the IP packet (padding, an FCS)."""
    sport, dport = 40000 + flow, 5001
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack, (5 + len(options) // 4) << 4, flags,
                      window, 0, 0) + options
    segment = tcp + payload
    if v6:
        src, dst = bytes(15) + bytes([1 + flow % 3]), bytes(15) + bytes([9])
        header = struct.pack("!IHBB", (6 << 28) | (tos << 20) | 0x12345, len(segment), 6, ttl) + src + dst
        ethertype = b"\x86\xdd"
    else:
        src, dst = bytes([10, 0, 0, 1 + flow % 3]), bytes([10, 0, 0, 9])
        header = bytearray(struct.pack("!BBHHHBBH", 0x45, tos, 20 + len(segment), ip_id & 0xFFFF,
                                       0x4000 if df else 0, ttl, 6, 0) + src + dst)
        header[10:12] = ipv4_header_checksum(header).to_bytes(2, "big")
        ethertype = b"\x08\x00"
    check = csum_fold(ones_sum(segment, pseudo_header_sum(src, dst, 6, len(segment))))
    check = (check + (1 if bad_checksum else 0)) & 0xFFFF
    segment = segment[:16] + check.to_bytes(2, "big") + segment[18:]
    return MACS[mac] + vlan + ethertype + bytes(header) + segment + trailer
