"""Captures of many interleaved flows, built from a few fuzzer choices, for the ``engines_mix`` target.

A capture is several flows of super-packets of different shapes (TCP/IPv4, TCP/IPv6, UDP, VLAN
tags, label stacks, a tunnel now and then; TCP options: none, timestamps, timestamps padded to 20
bytes, an MD5 signature (kind 19) or TCP-AO (kind 29) in those 20 bytes on some packets; payload
lengths of their own, some packets of a flow shorter, as a write's tail is), short frames, odd frames, and packets damaged on the way (bytes overwritten,
cut short, a trailer, a checksum that does not add up, a record header that lies); the flows take
turns in bursts (of one, often), in a classic pcap (either byte order, µs or ns) or a pcapng
(either byte order; interfaces of several link types, snaplens and resolutions; EPBs with and
without options, SPBs, blocks the reader skips, an interface described late, a second section,
maybe of the other byte order, now and then a broken block), in any link type the bulk stream takes
(Ethernet, SLL, SLL2, NULL, LOOP, raw IP). Some flows are a sending host's (Flow.host): super-packets
of 1 to 44 segments and part tails with ACKs between them, padding, an FCS, checksums in every
state; ``build_capture(pick, host=True)`` makes a capture of such flows alone.

``pick(low, high)`` is the fuzzer's choice of an integer in [low, high]: hypothesis' draw (it
shrinks towards ``low``, so ``low`` is always the plainest choice) or bytes of atheris' input. The
top-level choices (format, link types, how many flows and packets, how they interleave, how much
damage, the options) are picks; the flows' and packets' details come from a random.Random seeded
by one more pick, so that a case stays a few dozen choices however many packets it holds.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from softgso.check.synth import (
    IPV4_DST,
    IPV4_SRC,
    IPV6_DST,
    IPV6_SRC,
    SuperPacketSpec,
    TunnelSpec,
    build_frame,
    encapsulate,
)
from softgso.checksum import pseudo_header_sum

Pick = Callable[[int, int], int]

# link types the bulk stream takes (softgso.bulk.stream.LINK_KINDS), Ethernet first (the plainest)
LINKTYPES = (1, 113, 276, 0, 108, 101, 12, 14, 228, 229)
IP_ONLY = frozenset((0, 108, 101, 12, 14, 228, 229))  # no room for VLAN tags or labels: IP packets alone
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD

TIMESTAMPS = b"\x01\x01\x08\x0a"  # + 8 bytes: TSval, TSecr
MD5 = b"\x13\x12"  # + 16 bytes of digest, then two NOPs: 20 bytes, as a timestamp option padded
AO_KIND = 29

_PAYLOAD = random.Random(1).randbytes(70_000)


def choose(pick: Pick, options: tuple[Any, ...]) -> Any:
    """One of ``options`` (the first is the plainest)."""
    return options[pick(0, len(options) - 1)]


@dataclass
class Flow:
    """One flow: the fields its packets share, and what changes from one packet to the next."""

    interface: int
    linktype: int
    ipv6: bool
    udp: bool
    payload_len: int
    options: str  # "", "ts", "ts20", "odd", "ao"
    signed_share: float  # packets whose 20 option bytes carry an MD5 signature in place of timestamps
    fixed: dict[str, Any] = field(default_factory=dict)  # SuperPacketSpec fields of every packet
    labels: int = 0
    tunnel: TunnelSpec | None = None
    tunnel_dport: int = 0  # a UDP tunnel's port other than its own (0: its own), as --tunnel-port names one
    macs: bytes = b""
    link: bytes = b""  # the link header's bytes this flow's records carry (see link_record)
    family_order: str = "little"
    partial_share: float = 0.5
    tail_share: float = 0.0  # packets of another length than the flow's (a write's tail, a short burst)
    seq: int = 1_000_000
    ip_id: int = 1
    number: int = 0
    # a sending host's flow (see _host): super-packets of 1 to 44 segments and part tails, pure ACKs
    # between them (SACK blocks now and then: another option length), padded to 60 bytes as a
    # receiver captures them, an FCS on every frame, the L4 checksum in any state a capture shows
    host: bool = False
    mss: int = 1448
    ack_share: float = 0.0
    sack_share: float = 0.0
    pad: int = 0  # frames under 60 bytes: 0 as they are, 1 padded with zeros, 2 with other bytes
    trailer: int = 0  # bytes behind every frame (an FCS: 4)
    states: tuple[float, ...] = (1.0,)  # weights of seed, complete, zero, seed without the length, invalid
    header_csum_zero: float = 0.0  # IPv4 header checksums left 0 (a sender's offload)


def _options(flow: Flow, rng: random.Random) -> bytes:
    """The TCP options of the flow's next packet."""
    stamp = TIMESTAMPS + rng.randbytes(8)
    if flow.options == "ts":
        return b"\x01\x01" + stamp
    if flow.options == "ts20":
        if rng.random() < flow.signed_share:
            return MD5 + rng.randbytes(16) + b"\x01\x01"
        return b"\x01" * 8 + stamp
    if flow.options == "ao":  # TCP-AO (length 16) or, in its place, NOPs and a timestamp of the same length
        return bytes([AO_KIND, 16]) + rng.randbytes(14) if rng.random() < flow.signed_share else b"\x01\x01\x01\x01" + stamp
    if flow.options == "odd":  # kind 19 of the wrong length (no signature), or a window scale, SACK-permitted
        return rng.choice((b"\x13\x0a" + rng.randbytes(8) + b"\x01\x01", b"\x03\x03\x07\x04\x02\x01\x01\x01\x01\x01\x00\x00"))
    return b""


def _flow(rng: random.Random, number: int, interface: int, linktype: int, payload_len: int,
          signed_share: float, tunnels: bool) -> Flow:
    ip_only = linktype in IP_ONLY
    ipv6 = linktype == 229 or (linktype != 228 and rng.random() < 0.4)
    udp = rng.random() < 0.15
    options = "" if udp else rng.choice(("", "ts", "ts20", "ts20", "ts20", "ao", "odd"))
    fixed: dict[str, Any] = {
        "sport": 1024 + number * 7 % 60000, "dport": rng.choice((5201, 443, 80, 4789, 6081, 2152, 9000)),
        "tos": rng.choice((0, 0, 0, 0x10, 0xB8)), "ttl": rng.choice((64, 64, 255, 1)),
        "df": rng.random() < 0.9, "flow_label": rng.choice((0, 0, 0x12345)),
    }
    if udp and fixed["dport"] in (4789, 6081, 2152):
        fixed["dport"] = 9000 + number  # (a tunnel's port: the scalar path's alone)
    if not ipv6 and rng.random() < 0.1:
        # NOPs; record route; router alert
        fixed["ip_options"] = rng.choice((b"\x01\x01\x01\x00", b"\x07\x07\x04" + rng.randbytes(4) + b"\x00",
                                          b"\x94\x04\x00\x00"))
    if ipv6 and rng.random() < 0.08:
        # hop-by-hop or destination options (PadN), a routing header with no segment left, or two of them
        chain = ((0, bytes([1, 4]) + bytes(4)), (43, bytes([4, 0]) + bytes(4)), (60, bytes([1, 4]) + bytes(4)))
        fixed["ipv6_exthdrs"] = rng.choice((chain[:1], chain[2:], chain[1:2], chain, chain[1:]))
    if not ip_only and rng.random() < 0.25:
        fixed["vlan_tags"] = tuple((rng.choice((0x8100, 0x88A8)), rng.randrange(4096))
                                   for _ in range(rng.choice((1, 1, 2))))
    flow = Flow(interface, linktype, ipv6, udp, payload_len, options, signed_share, fixed)
    flow.labels = 0 if ip_only or rng.random() < 0.8 else rng.randint(1, 3)
    if tunnels and not flow.labels and "vlan_tags" not in fixed and not udp and rng.random() < 0.1:
        kind = rng.choice(("vxlan", "geneve", "gretap", "gre", "ipip"))
        outer6 = linktype == 229 or (linktype != 228 and rng.random() < 0.3)
        flow.tunnel = TunnelSpec(kind, outer_ipv6=outer6, udp_csum=rng.random() < 0.3,
                                 gre_key=rng.choice((None, 7)), gre_csum=kind in ("gre", "gretap") and rng.random() < 0.3)
        if kind in ("vxlan", "geneve") and rng.random() < 0.4:
            flow.tunnel_dport = rng.choice((9000, 5201, 80, 9003))
    if rng.random() < 0.5:
        flow.macs = bytes([2, 0, 0, 0, number >> 8, number & 0xFF, 2, 0, 0, 0, 0, rng.randrange(256)])
    flow.link = _link_header(rng, linktype)
    flow.family_order = rng.choice(("little", "big"))
    flow.partial_share = rng.choice((0.0, 1.0, 0.5, 0.9))
    flow.seq = rng.randrange(1 << 32)
    flow.ip_id = rng.randrange(1 << 16)
    return flow


def _link_header(rng: random.Random, linktype: int) -> bytes:
    """The fields of a cooked header but its protocol (SLL: packet type, ARPHRD, address length and
    address; SLL2: reserved, ifindex, ARPHRD, packet type, address length, address), or for NULL a
    choice of AF_INET6 value."""
    if linktype == 113:
        arphrd = rng.choice((1, 1, 772, 0xFFFE, 778))
        return struct.pack("!HHH8s", rng.choice((0, 4, 1, 3)), arphrd, rng.choice((6, 0, 8)), rng.randbytes(6) + bytes(2))
    if linktype == 276:
        return struct.pack("!HIHBB8s", rng.choice((0, 0, 7)), rng.randrange(1, 40), rng.choice((1, 772, 0xFFFE)),
                           rng.choice((0, 4)), rng.choice((6, 0)), rng.randbytes(6) + bytes(2))
    if linktype in (0, 108):
        return bytes([rng.choice((10, 24, 28, 30))])
    return b""


def link_record(flow: Flow, frame: bytes) -> bytes:
    """An Ethernet frame of ``flow`` as a record of its link type."""
    linktype = flow.linktype
    if linktype == 1:
        return frame
    ethertype = int.from_bytes(frame[12:14], "big")
    if linktype == 113:
        return flow.link + struct.pack("!H", ethertype) + frame[14:]
    if linktype == 276:
        return struct.pack("!H", ethertype) + flow.link + frame[14:]
    if linktype in (0, 108):
        family = 2 if ethertype == ETH_P_IP else flow.link[0]
        return family.to_bytes(4, "big" if linktype == 108 else flow.family_order) + frame[14:]  # type: ignore[arg-type]
    return frame[14:]


def packet(flow: Flow, rng: random.Random) -> bytes:
    """The flow's next packet (an Ethernet frame): seq, IP ID, flags, window, checksum state, options
    and payload bytes its own."""
    flow.number += 1
    length = flow.payload_len
    if flow.tail_share and length > 1 and rng.random() < flow.tail_share:
        length = rng.randint(1, length)
    start = rng.randrange(256)
    flags = rng.choice((0x18, 0x18, 0x18, 0x10, 0x19, 0x98, 0x38, 0x11, 0x58))
    options = _options(flow, rng)
    state = 0 if rng.random() < flow.partial_share else 1
    if flow.host:
        if rng.random() < flow.ack_share:
            length, flags = 0, rng.choice((0x10, 0x10, 0x10, 0x11, 0x14, 0x90))
        else:
            most = min(44, 64000 // flow.mss)
            segments = min(most, rng.choice((1, 1, 2, 2, 3, 4, 10, most, rng.randint(1, most))))
            length = flow.mss * segments - (rng.randrange(flow.mss) if rng.random() < 0.3 else 0)
        if not flow.udp and rng.random() < flow.sack_share and len(options) <= 20:
            blocks = rng.choice((1, 2))
            options += b"\x01\x01\x05" + bytes([2 + 8 * blocks]) + rng.randbytes(8 * blocks)
        state = rng.choices(range(5), flow.states)[0]
    spec = SuperPacketSpec(
        ipv6=flow.ipv6, udp=flow.udp, payload=_PAYLOAD[start : start + length], tcp_options=options,
        tcp_flags=flags, seq=flow.seq, ack=rng.randrange(1 << 32), window=rng.choice((64240, 502, 0xFFFF)),
        urg_ptr=rng.randrange(1 << 16) if flags & 0x20 else 0, ip_id=flow.ip_id,
        partial_checksum=state != 1, **flow.fixed)
    flow.seq = (flow.seq + length) & 0xFFFFFFFF
    flow.ip_id = (flow.ip_id + 1) & 0xFFFF
    frame = build_frame(spec)
    if flow.host:
        frame = _host_touches(flow, spec, frame, state, rng)
    if flow.labels:
        split = 12 + 4 * len(spec.vlan_tags)
        stack = b"".join(struct.pack("!I", ((100 + i) << 12) | (0x100 if i == flow.labels - 1 else 0) | 64)
                         for i in range(flow.labels))
        frame = frame[:split] + b"\x88\x47" + stack + frame[split + 2 :]
    if flow.tunnel is not None:
        # the outer IP ID each packet's own; over IPv4 a UDP tunnel's checksum now and then computed
        # (UDP_TUNNEL_CSUM) where the flow's others leave it 0: another shape
        csum = flow.tunnel.udp_csum != (rng.random() < 0.1)
        frame = encapsulate(frame, replace(flow.tunnel, ip_id=flow.ip_id ^ 0x5555, udp_csum=csum))
        if flow.tunnel_dport:
            # (the outer UDP checksum is 0 or a partial seed: neither covers the port)
            at = 14 + (40 if flow.tunnel.outer_ipv6 else 20) + 2
            frame = frame[:at] + flow.tunnel_dport.to_bytes(2, "big") + frame[at + 2 :]
    if flow.macs:
        frame = flow.macs + frame[12:]
    if flow.pad and len(frame) < 60:
        frame += bytes(60 - len(frame)) if flow.pad == 1 else rng.randbytes(60 - len(frame))
    if flow.trailer:
        frame += rng.randbytes(flow.trailer)
    return frame


def _host_touches(flow: Flow, spec: SuperPacketSpec, frame: bytes, state: int, rng: random.Random) -> bytes:
    """A host flow's packet with its L4 checksum in ``state`` (0 seed, 1 complete: as built; 2 zero, 3 the
    seed without the length, 4 anything else) and, now and then, its IPv4 header checksum left 0."""
    data = bytearray(frame)
    network = 14 + 4 * len(spec.vlan_tags)
    if spec.ipv6:
        transport = network + 40 + sum(len(body) + 2 for _, body in spec.ipv6_exthdrs)
        src, dst = IPV6_SRC, IPV6_DST
    else:
        transport = network + 20 + len(spec.ip_options)
        src, dst = IPV4_SRC, IPV4_DST
    at = transport + (6 if spec.udp else 16)
    if state == 2:
        data[at : at + 2] = bytes(2)
    elif state == 3:
        data[at : at + 2] = pseudo_header_sum(src, dst, 17 if spec.udp else 6, 0).to_bytes(2, "big")
    elif state == 4:
        data[at : at + 2] = rng.randbytes(2)
    if not spec.ipv6 and rng.random() < flow.header_csum_zero:
        data[network + 10 : network + 12] = bytes(2)
    return bytes(data)


def _host(flow: Flow, rng: random.Random) -> None:
    """Make ``flow`` a sending (or receiving) host's: see Flow.host."""
    flow.host = True
    flow.mss = rng.choice((1448, 1460, 1440, 1428, 536, 8948))
    flow.ack_share = rng.choice((0.0, 0.3, 0.5, 0.8, 0.8))
    flow.sack_share = rng.choice((0.0, 0.0, 0.1, 0.5))
    flow.pad = rng.choice((0, 0, 1, 1, 2))
    flow.trailer = 4 if rng.random() < 0.1 else 0
    flow.states = rng.choice(((1, 0, 0, 0, 0), (1, 0, 0, 0, 0), (0, 1, 0, 0, 0), (1, 1, 0, 0, 0), (8, 4, 1, 1, 1),
                              (1, 1, 1, 1, 1), (0, 0, 1, 0, 0), (0, 0, 0, 1, 0)))
    flow.header_csum_zero = rng.choice((0.0, 0.0, 0.1, 1.0))


def odd_frame(rng: random.Random) -> bytes:
    """A frame that is no flow's: junk, a runt, ARP, a short UDP datagram to a tunnel port."""
    roll = rng.randrange(6)
    if roll == 0:
        return rng.randbytes(rng.randrange(0, 80))
    if roll == 1:
        return rng.randbytes(rng.randrange(0, 14))
    if roll == 2:
        return bytes(12) + b"\x08\x06" + rng.randbytes(28)
    if roll == 3:
        return build_frame(SuperPacketSpec(udp=True, dport=4789, payload=rng.randbytes(60), partial_checksum=False))
    if roll == 4:
        return build_frame(SuperPacketSpec(ipv6=True, payload=rng.randbytes(rng.randrange(1, 900)),
                                           partial_checksum=rng.random() < 0.5))
    return build_frame(SuperPacketSpec(payload=rng.randbytes(rng.randrange(0, 1400)), partial_checksum=rng.random() < 0.5,
                                       tcp_options=MD5 + bytes(16) + b"\x01\x01"))


def damage(record: bytes, rng: random.Random) -> bytes:
    """A record's frame hurt on the way: bytes overwritten in its headers, cut short, a trailer, or
    a checksum that no longer adds up (a payload byte changed)."""
    data = bytearray(record)
    roll = rng.randrange(5)
    if roll == 0 and data:
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(min(len(data), 120))] = rng.randrange(256)
    elif roll == 1:
        del data[rng.randrange(len(data) + 1) :]
    elif roll == 2:
        data += rng.randbytes(rng.randint(1, 8))
    elif len(data) > 200:
        data[-rng.randint(1, 100)] ^= 1 << rng.randrange(8)
    return bytes(data)


# --- containers -------------------------------------------------------------------------------


@dataclass
class Interface:
    """A pcapng interface (or a pcap file's one link type)."""

    linktype: int
    snaplen: int = 262144
    tsresol: int | None = None  # if_tsresol; None: microseconds
    tsoffset: int | None = None
    name: str | None = None
    fcslen: int | None = None


def _option(prefix: str, code: int, value: bytes) -> bytes:
    return struct.pack(prefix + "HH", code, len(value)) + value + bytes(-len(value) % 4)


def _block(prefix: str, block_type: int, body: bytes, options: list[bytes] | None = None, junk_padding: bool = False) -> bytes:
    pad = -len(body) % 4
    body += (b"\xee" * pad) if junk_padding else bytes(pad)
    if options:
        body += b"".join(options) + _option(prefix, 0, b"")
    length = 12 + len(body)
    return struct.pack(prefix + "II", block_type, length) + body + struct.pack(prefix + "I", length)


def shb(prefix: str, comment: bool) -> bytes:
    options = [_option(prefix, 1, b"mixed flows"), _option(prefix, 3, b"fuzz")] if comment else None
    return _block(prefix, 0x0A0D0D0A, struct.pack(prefix + "IHHq", 0x1A2B3C4D, 1, 0, -1), options)


def idb(prefix: str, interface: Interface) -> bytes:
    options = []
    if interface.name:
        options.append(_option(prefix, 2, interface.name.encode()))
    if interface.tsresol is not None:
        options.append(_option(prefix, 9, bytes([interface.tsresol])))
    if interface.tsoffset is not None:
        options.append(_option(prefix, 14, struct.pack(prefix + "q", interface.tsoffset)))
    if interface.fcslen is not None:
        options.append(_option(prefix, 13, bytes([interface.fcslen])))
    return _block(prefix, 1, struct.pack(prefix + "HHI", interface.linktype, 0, interface.snaplen), options or None)


def epb(prefix: str, interface: int, ticks: int, frame: bytes, orig_len: int, options: list[bytes],
        junk_padding: bool = False) -> bytes:
    header = struct.pack(prefix + "IIIII", interface, ticks >> 32 & 0xFFFFFFFF, ticks & 0xFFFFFFFF, len(frame), orig_len)
    return _block(prefix, 6, header + frame, options or None, junk_padding)


def spb(prefix: str, frame: bytes, orig_len: int) -> bytes:
    return _block(prefix, 3, struct.pack(prefix + "I", orig_len) + frame)


def epb_options(prefix: str, rng: random.Random) -> list[bytes]:
    """Options an EPB carries now and then: flags (direction, reception type; rarely an FCS length),
    a hash, a packet id, a custom option, a comment (a GSO note among them)."""
    roll = rng.randrange(40)
    if roll < 30:
        return []
    if roll < 33:
        return [_option(prefix, 2, struct.pack(prefix + "I", rng.choice((1, 2, 0x5, 0x9))))]
    if roll < 35:
        return [_option(prefix, 3, b"\x02" + rng.randbytes(16)), _option(prefix, 5, rng.randbytes(8))]
    if roll < 37:
        return [_option(prefix, 2988, struct.pack(prefix + "I", 32473) + b"pen")]
    if roll < 38:
        return [_option(prefix, 1, b"gso_size=1000 gso_type=tcpv4")]
    return [_option(prefix, 1, b"seen on the wire")]


def skipped_block(prefix: str, rng: random.Random, interfaces: int) -> bytes:
    """A block the reader skips: interface statistics, name resolution, a custom block, secrets."""
    roll = rng.randrange(4)
    if roll == 0:
        return _block(prefix, 5, struct.pack(prefix + "III", rng.randrange(interfaces), 0, 0))
    if roll == 1:
        return _block(prefix, 4, struct.pack(prefix + "HH", 1, 8) + bytes([192, 0, 2, 1]) + b"ab\0\0"
                      + struct.pack(prefix + "HH", 0, 0))
    if roll == 2:
        return _block(prefix, rng.choice((0x40000BAD, 0x00000BAD)), struct.pack(prefix + "I", 32473) + rng.randbytes(13))
    return _block(prefix, 0x0A, struct.pack(prefix + "II", 0x544C534B, 5) + b"keys\n")


def ticks_per_second(tsresol: int | None) -> int:
    if tsresol is None:
        return 1_000_000
    return 1 << (tsresol & 0x7F) if tsresol & 0x80 else 10 ** tsresol


# --- the capture -------------------------------------------------------------------------------


def build_capture(pick: Pick, host: bool = False) -> tuple[bytes, str]:
    """A capture of interleaved flows (see the module docstring) and its suffix (pcap or pcapng);
    ``host``: a sending host's capture, mostly Ethernet, every flow a host's (Flow.host: super-packets of
    many lengths, ACKs between them, seeds, padding), many records."""
    pcapng = bool(pick(0, 1))
    # how many flows, how many packets (in bytes too), how they take turns, how much goes wrong
    flows_count = choose(pick, (1, 2, 3, 5, 12, 40, 100))
    flows_count = max(1, min(100, flows_count + pick(0, 8) - 4))
    size_class = pick(0, 9)
    budget = (60_000, 60_000, 100_000, 100_000, 150_000, 150_000, 250_000, 400_000, 600_000, 900_000)[size_class]
    records = pick(1, 600) if not host else pick(50, 3000)
    budget *= 3 if host else 1
    burst_mode = pick(0, 3)  # 0 bursts of one, 1 short bursts, 2 longer ones, 3 strict turns
    order_mode = pick(0, 2)  # 0 any flow, 1 a few flows most of the time, 2 round robin
    damage_share = choose(pick, (0.0, 0.0, 0.02, 0.1, 0.3))
    odd_share = choose(pick, (0.0, 0.05, 0.2))
    lengths = pick(0, 4)  # the flows' payload lengths: 0 one, 1 a few, 2 any, 3 mostly short, 4 big
    signed_share = choose(pick, (0.0, 0.05, 0.3))
    tunnels = bool(pick(0, 1))
    tail_share = choose(pick, (0.0, 0.1, 0.5))  # a flow's packets of other lengths than its own
    rng = random.Random(pick(0, (1 << 32) - 1))
    host_share = 1.0 if host else choose(pick, (0.0, 0.3, 1.0, 0.7))  # flows of a sending host (Flow.host)
    ethernet_share = 0.9 if host else 0.6

    # the link types: one for a pcap; for a pcapng, a few interfaces of one or several
    big_endian = rng.random() < 0.4
    prefix = ">" if big_endian else "<"
    if pcapng:
        interfaces = []
        for number in range(rng.choice((1, 1, 2, 3, 4))):
            linktype = 1 if rng.random() < (ethernet_share if number == 0 else ethernet_share / 2) else rng.choice(LINKTYPES)
            interfaces.append(Interface(
                linktype, snaplen=rng.choice((262144, 262144, 0, 65535, 1 << 20, 9000)),
                tsresol=rng.choice((None, None, 6, 9, 3, 0x80 | 20, 0x80 | 30, 0x7F)),
                tsoffset=rng.choice((None, None, None, 1_600_000_000, -5)), name=rng.choice((None, "eth0")),
                fcslen=0 if rng.random() < 0.05 else (4 if rng.random() < 0.01 else None)))
    else:
        linktype = choose(pick, LINKTYPES) if pick(0, 2) else 1
        interfaces = [Interface(1 if host and rng.random() < ethernet_share else linktype,
                                snaplen=rng.choice((262144, 262144, 65535, 0, 1 << 30, 9000)))]

    def payload_len() -> int:
        if lengths == 4:
            return rng.choice((64000, 32000, 60000 + rng.randrange(3000)))
        if lengths == 3 and rng.random() < 0.7:
            return rng.randrange(0, 1400)
        return rng.choice((1461, 1500, 2896, 3000, 4000, 6000, 9000, rng.randrange(1400, 9000), rng.randrange(0, 20000)))

    shared = payload_len()
    flows = []
    for number in range(flows_count):
        interface = rng.randrange(len(interfaces))
        length = shared if lengths == 0 else rng.choice((shared, payload_len())) if lengths == 1 else payload_len()
        flows.append(_flow(rng, number, interface, interfaces[interface].linktype, length, signed_share, tunnels))
        flows[-1].tail_share = tail_share
        if host_share and rng.random() < host_share:
            _host(flows[-1], rng)
    favourites = flows[: max(1, len(flows) // 5)]

    # the records, in order: (interface, frame, orig_len or None, the flow's or None)
    out: list[tuple[int, bytes, int | None]] = []
    size = 0
    turn = 0
    while len(out) < records and size < budget:
        if rng.random() < odd_share:
            out.append((rng.randrange(len(interfaces)), odd_frame(rng), None))
            continue
        if order_mode == 2:
            flow = flows[turn % len(flows)]
            turn += 1
        elif order_mode == 1 and rng.random() < 0.8:
            flow = rng.choice(favourites)
        else:
            flow = rng.choice(flows)
        burst = (1, rng.choice((1, 1, 2, 3)), rng.randint(1, 12), 1)[burst_mode]
        for _ in range(burst):
            record = link_record(flow, packet(flow, rng))
            interface = flow.interface
            orig_len = None
            if rng.random() < damage_share:
                roll = rng.randrange(6)
                if roll == 0:
                    orig_len = max(0, len(record) + rng.choice((-1, -40, 1, 500)))  # a record header that lies
                elif roll == 1:
                    interface = rng.randrange(len(interfaces))  # the bytes on another interface (link type)
                else:
                    record = damage(record, rng)
            out.append((interface, record, orig_len))
            size += len(record) + 32

    if pcapng:
        return _pcapng(out, interfaces, prefix, rng), "pcapng"
    return _pcap(out, interfaces[0], prefix, rng), "pcap"


def _pcap(records: list[tuple[int, bytes, int | None]], interface: Interface, prefix: str, rng: random.Random) -> bytes:
    nanosecond = rng.random() < 0.4
    ticks = 1_000_000_000 if nanosecond else 1_000_000
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    minor = 4 if rng.random() < 0.95 else 2
    parts = [struct.pack(prefix + "IHHiIII", magic, 2, minor, 0, 0, interface.snaplen, interface.linktype)]
    seconds = 1_700_000_000
    fraction = rng.randrange(ticks)
    past_second = rng.randrange(len(records)) if rng.random() < 0.03 else -1
    for number, (_, frame, orig_len) in enumerate(records):
        fraction += rng.randrange(ticks // 100)
        seconds, fraction = seconds + fraction // ticks, fraction % ticks
        stamp = fraction if number != past_second else ticks + 5  # a fraction past a second: the general reader's
        parts.append(struct.pack(prefix + "IIII", seconds, stamp, len(frame), len(frame) if orig_len is None else orig_len))
        parts.append(frame)
    return b"".join(parts)


def _pcapng(records: list[tuple[int, bytes, int | None]], interfaces: list[Interface], prefix: str,
            rng: random.Random) -> bytes:
    # interfaces described before the first packet, and now and then one described later
    late = len(interfaces) > 1 and rng.random() < 0.1
    described = len(interfaces) - 1 if late else len(interfaces)
    parts = [shb(prefix, rng.random() < 0.3)] + [idb(prefix, interface) for interface in interfaces[:described]]
    if rng.random() < 0.2:
        parts.append(skipped_block(prefix, rng, described))
    stamps = [rng.randrange(1 << 40) * ticks_per_second(i.tsresol) // 1_000_000 for i in interfaces]
    second_section = len(records) // 2 if rng.random() < 0.05 else -1
    fcs_at = rng.randrange(len(records)) if rng.random() < 0.02 else -1  # flags that give the frame an FCS
    late_at = rng.randrange(len(records) + 1) if late else -1
    for number, (interface, frame, orig_len) in enumerate(records):
        if number == late_at:
            parts.append(idb(prefix, interfaces[-1]))
            described += 1
        if number == second_section:
            if rng.random() < 0.5:
                prefix = "<" if prefix == ">" else ">"  # a section of the other byte order
            parts.append(shb(prefix, False))
            parts.extend(idb(prefix, i) for i in interfaces[:described])
        if interface >= described:
            interface = 0
        stamps[interface] += rng.randrange(1, 1 << 12)
        length = len(frame) if orig_len is None else orig_len
        roll = rng.random()
        if roll < 0.04 and interface == 0:
            parts.append(spb(prefix, frame, length))
        else:
            options = epb_options(prefix, rng)
            if number == fcs_at:  # (the general reader refuses it, and says so)
                options = [_option(prefix, 2, struct.pack(prefix + "I", 4 << 5))]
            parts.append(epb(prefix, interface, stamps[interface], frame, length, options, junk_padding=roll > 0.995))
        if rng.random() < 0.02:
            parts.append(skipped_block(prefix, rng, described))
    if rng.random() < BREAK_SHARE:
        _break_a_block(parts, prefix, rng, described)
    return b"".join(parts)


BREAK_SHARE = 0.03  # pcapng files with a broken block (_break_a_block)


def _break_a_block(parts: list[bytes], prefix: str, rng: random.Random, interfaces: int) -> None:
    """One packet block broken as files break (the general reader reports it; every block before it
    is written): the file cut inside it, its trailing length not its length, an interface no IDB
    described, a caplen beyond the block."""
    at = rng.randrange(len(parts))
    block = bytearray(parts[at])
    roll = rng.randrange(4)
    if roll == 0:
        del parts[at + 1 :]
        del block[rng.randrange(len(block)) :]
    elif roll == 1:
        block[-4:] = struct.pack(prefix + "I", len(block) + 4 * rng.randint(-3, 3) or 8)
    elif struct.unpack_from(prefix + "I", block)[0] == 6 and len(block) >= 32:
        if roll == 2:
            block[8:12] = struct.pack(prefix + "I", interfaces + rng.choice((0, 1, 1000)))
        else:
            block[20:24] = struct.pack(prefix + "I", len(block) - 28 + rng.choice((1, 4, 100)))
    parts[at] = bytes(block)


# --- the segment options ----------------------------------------------------------------------


def segment_options(pick: Pick) -> dict[str, Any]:
    """``softgso segment``'s options, each one mostly its default (the plainest first). UDP
    super-packets are USO by default (--udp-gso udp_l4: a capture cannot say so)."""
    options: dict[str, Any] = {"udp_gso": choose(pick, ("udp_l4", "udp_l4", "udp_l4", "off", "udp"))}
    if not pick(0, 1):
        return options
    options.update(
        device=choose(pick, ("no-offload", "no-offload", "no-offload", "csum", "tso", "nic-tso-no-mpls-gso",
                             "nic-mpls-tso", "nic-vxlan-tso")),
        gso_size=choose(pick, (None, None, None, 536, 1000, 1448, 9000, 200)),
        mtu=choose(pick, (None, None, None, 1500, 576, 9000, 1280, 4000, 121, 120, 200, 68)),
        output_csum=choose(pick, (None, None, "complete", "partial")),
        fixed_id=not pick(0, 3),
        input_csum=choose(pick, ("auto", "auto", "auto", "partial", "complete")),
        tcp_ecn=not pick(0, 3),
        kernel=choose(pick, ("6.1", "6.1", "6.12", "mainline")),
        strict=not pick(0, 3),
        # UDP ports of the flows (TCP's too: a tunnel port names UDP alone) said to be tunnels
        tunnel_ports=choose(pick, ((), (), ("vxlan:9000",), ("geneve:5201", "fou:9001"), ("gue:443", "mpls-in-udp:9002"),
                                   ("vxlan-gpe:9003", "vxlan:80"))),
        tunnel_under_labels=not pick(0, 3),
    )
    return options


def bulk_tuning(pick: Pick) -> dict[str, int]:
    """The bulk code's tuned constants made small (0 or -1: as tuned), so that a small capture spans
    many chunks, fills the shape table, churns it and rests it."""
    return {
        "chunk": choose(pick, (4096, 0, 16384, 70_001, 1500, 300_000)),
        "window": choose(pick, (-1, 0, 1)),
        "inline": choose(pick, (-1, 0, 1)),
        "scatter": choose(pick, (-1, 0, 1, 2)),
        "arena": choose(pick, (0, 4096, 65536)),
        "piece": choose(pick, (0, 1, 4096)),
        "limit": choose(pick, (0, 1, 2, 3, 4, 8, 255)),
        "churn": choose(pick, (0, 1, 2, 4, 8)),
        "rest": choose(pick, (0, 1, 2, 5)),
    }
