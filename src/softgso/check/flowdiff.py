"""What became of each frame of one capture in another: frames paired by flow and by TCP sequence
or UDP datagram, not by position (``softgso diff --pair-by flow``).

Sans-I/O, like softgso.check.capdiff: :class:`FlowDiff` is given the frames of A one at a time and an
iterator of B's frames, which it reads only as far as it needs. A segmenter writes in the order of
its input, so B is held in memory only as far as it runs ahead of A (all of it only when a frame of
A is nowhere in B). For every frame of A it says what became of it (:class:`Fate`): unchanged,
checksum-completed, changed (the fields, in words), segmented into frames N..M of B (payload intact
or not), merged into a larger frame of B, or missing; and, at the end, which frames of B came from
no frame of A.

It walks headers with its own code (offsets and pairing keys, nothing more) and does its own
checksum arithmetic: like capdiff's decoder it shares nothing with the engine, so that a diff of
softgso's output does not inherit softgso's reading of a header. Field names and values in its
reports are capdiff's. The exception, as in capdiff, is where a tunnel's headers are (one reader of
what a record holds: softgso.offload.tunnels.parse_tunnel): a tunnelled frame pairs by its inner
flow and sequence (a tunnel field that changed is named as a change), and its outer lengths, IDs
and checksums are what segmentation gives every segment, checked here (outer IPv4 header checksum,
outer UDP and GRE checksums verify; an outer UDP checksum of 0 stays 0).
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .capdiff import (
    ETH_HLEN,
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_MPLS_MC,
    ETH_P_MPLS_UC,
    ETH_P_QINQ_LEGACY,
    IPPROTO_DSTOPTS,
    IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS,
    IPPROTO_ROUTING,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV6_TLV_JUMBO,
    FieldDifference,
    compare_frames,
    decode_fields,
    ethertype_name,
    header_differences,
)

SEQ_MASK = 0xFFFFFFFF
# tcp_gso_segment: FIN and PSH stay on the last segment only, CWR on the first only
TCP_FIN, TCP_PSH, TCP_CWR = 0x01, 0x08, 0x80
TCP_FLAGS_SEGMENTATION_MOVES = TCP_FIN | TCP_PSH | TCP_CWR
# the fields a segmentation gives each segment a value of its own (inet_gso_segment, ipv6_gso_segment,
# tcp_gso_segment, __udp_gso_segment): lengths, IDs, sequence numbers, checksums
SEGMENT_FIELDS = frozenset({"frame length", "payload length", "IPv4 tot_len", "IPv4 id", "IPv4 checksum",
                            "IPv6 payload_len", "TCP seq", "TCP checksum", "UDP length", "UDP checksum"})
# BIG TCP: ipv6_gso_segment leaves the hop-by-hop jumbo option out of every segment
JUMBO_FIELDS = frozenset({"IPv6 next_header", "IPv6 ext[0] header"})
CHECKSUM_FIELDS = frozenset({"IPv4 checksum", "TCP checksum", "UDP checksum"})
# a tunnel's segments: the inner fields as above, and the outer lengths, IDs and checksums
# (__skb_udp_tunnel_segment, gre_gso_segment, the outer inet/ipv6 handler)
OUTER_SEGMENT_FIELDS = frozenset({"outer IPv4 tot_len", "outer IPv4 id", "outer IPv4 checksum",
                                  "outer IPv6 payload_len", "outer UDP length", "outer UDP checksum", "GRE checksum"})
OUTER_CHECKSUM_FIELDS = frozenset({"outer IPv4 checksum", "outer UDP checksum", "GRE checksum"})
TUNNEL_SEGMENT_FIELDS = (frozenset({"frame length", "payload length"}) | OUTER_SEGMENT_FIELDS
                         | frozenset(f"inner {name}" for name in SEGMENT_FIELDS))
TUNNEL_CHECKSUM_FIELDS = OUTER_CHECKSUM_FIELDS | frozenset(f"inner {name}" for name in CHECKSUM_FIELDS)
GRE_FLAG_CSUM = 0x8000
# UFO: what fragmenting sets (inet_gso_segment writes frag_off whole: offset and MF, DF cleared;
# ipv6_gso_segment adds a fragment header); a fragment past the first has no UDP header
FRAGMENT_FIELDS = frozenset({"IPv4 DF", "IPv4 MF", "IPv4 fragment offset", "IPv6 next_header", "IPv6 ext[0] header",
                             "UDP header"})

# what became of a frame of A
UNCHANGED = "unchanged"
CHECKSUM_COMPLETED = "checksum-completed"
CHANGED = "changed"
SEGMENTED = "segmented"
MERGED = "merged"
MISSING = "missing"
FATES = (SEGMENTED, UNCHANGED, CHECKSUM_COMPLETED, CHANGED, MERGED, MISSING)

# one frame to pair: (record index counted from 0, bytes, True when they are an Ethernet frame)
FrameItem = tuple[int, bytes, bool]


@dataclass(slots=True, eq=False)
class Unit:
    """One frame as the pairing sees it: its kind, its pairing key, and where its headers are."""

    index: int  # the record's index, from 0 (reports add 1)
    frame: bytes
    kind: str  # "TCP", "UDP", "IP" (another protocol, or a fragment), "L2" (not IP), "record" (not Ethernet)
    key: tuple[object, ...]
    network: int = -1  # offset of the IP header
    transport: int = -1  # offset of the TCP/UDP header
    payload_at: int = 0
    payload_end: int = 0  # the end of the IP packet: link padding and trailers are not payload
    ip_version: int = 0
    src: bytes = b""
    dst: bytes = b""
    proto: int = -1
    sport: int = 0
    dport: int = 0
    seq: int = 0
    ack: int = 0
    jumbo: bool = False  # IPv6 hop-by-hop jumbo option
    ethertype: int = 0
    claimed: int = 0  # payload bytes of this frame of B that frames of A were merged into
    frag_offset: int = -1  # an IP fragment's offset in bytes (-1: not a fragment)
    more_fragments: bool = False
    taken: bool = False  # a fragment of B paired already
    parts: list[Unit] | None = None  # a datagram of B put together from these fragments (UFO)
    tunnel: str = ""  # the tunnel kind around the packet the other fields describe ("": none)
    outer_network: int = -1  # the outer IP header
    outer_l4: int = -1  # the outer UDP or GRE header (IP-in-IP: the inner IP header)
    outer_version: int = 0
    tunnel_id: str = ""  # "VNI 42", "key 7"
    final_dst: bytes = b""  # the destination a Routing header names, the pseudo-header's (b"": dst)
    home_src: bytes = b""  # the home address a Home Address option names, the pseudo-header's (b"": src)

    @property
    def payload_len(self) -> int:
        """L4 payload bytes (to the end of the IP packet)."""
        return self.payload_end - self.payload_at

    def payload(self) -> bytes:
        """The L4 payload."""
        return self.frame[self.payload_at : self.payload_end]

    @property
    def field_prefix(self) -> str:
        """How capdiff names this unit's fields: ``inner `` inside a tunnel."""
        return "inner " if self.tunnel else ""

    def describe(self) -> str:
        """The frame in words, for a frame that is missing: ``TCP 10.0.0.1:40000 > 10.0.0.2:5201 seq 1, 1448 bytes``
        (in a tunnel: ``VXLAN VNI 42: TCP ...``)."""
        text = self._describe_packet()
        return f"{self.tunnel}{' ' + self.tunnel_id if self.tunnel_id else ''}: {text}" if self.tunnel else text

    def _describe_packet(self) -> str:
        if self.kind in ("TCP", "UDP"):
            ends = f"{_endpoint(self.src, self.sport)} > {_endpoint(self.dst, self.dport)}"
            seq = f" seq {self.seq}" if self.kind == "TCP" else ""
            return f"{self.kind} {ends}{seq}, {self.payload_len} bytes of payload"
        if self.kind == "IP":
            return f"IPv{self.ip_version} protocol {self.proto} {_address(self.src)} > {_address(self.dst)}"
        if self.kind == "L2":
            return f"{ethertype_name(self.ethertype)} frame, {len(self.frame)} bytes"
        return f"record of another link type, {len(self.frame)} bytes"


def _address(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw)) if len(raw) in (4, 16) else raw.hex()


def _endpoint(raw: bytes, port: int) -> str:
    """An address and port as inspect writes them: an IPv6 address in brackets, so the port is not
    read as its last group (``[fd00::1]:40000``, not ``fd00::1:40000``)."""
    return f"[{_address(raw)}]:{port}" if len(raw) == 16 else f"{_address(raw)}:{port}"


def _tunnel_unit(index: int, frame: bytes, tunnel_ports: dict[int, str] | None = None) -> Unit | None:
    """A tunnelled TCP/UDP packet, as its inner flow within its tunnel; None for any other frame."""
    from ..offload.tunnels import TunnelNotSegmented, parse_tunnel, tunnel_id

    try:
        layout = parse_tunnel(frame, tunnel_ports, through_labels=True)
    except TunnelNotSegmented:
        return None
    if layout is None:
        return None
    inner = _ipv4_unit(index, frame, layout.inner_network) if layout.inner_version == 4 else \
        _ipv6_unit(index, frame, layout.inner_network)
    if inner.kind not in ("TCP", "UDP"):
        return None
    identifier = tunnel_id(frame, layout)
    inner.tunnel = layout.kind
    inner.tunnel_id = f"{identifier[0]} {identifier[1]}" if identifier else ""
    inner.outer_network, inner.outer_l4, inner.outer_version = layout.outer_network, layout.outer_l4, layout.outer_version
    # paired by the inner flow alone: a segment whose tunnel fields changed (a VNI, an outer address)
    # is the same packet, with those fields named as changes
    return inner


def parse_unit(index: int, frame: bytes, ethernet: bool = True, tunnel_ports: dict[int, str] | None = None) -> Unit:
    """Where the headers of a frame are and what pairs it: never raises, whatever the bytes (``tunnel_ports``:
    UDP tunnels on other ports, as segment's --tunnel-port names them)."""
    if not ethernet:
        return Unit(index, frame, "record", ("record",))
    tunnelled = _tunnel_unit(index, frame, tunnel_ports)
    if tunnelled is not None:
        return tunnelled
    size = len(frame)
    if size < ETH_HLEN:
        return Unit(index, frame, "L2", ("L2",))
    ethertype = int.from_bytes(frame[12:14], "big")
    at = ETH_HLEN
    while ethertype in (ETH_P_8021Q, ETH_P_8021AD, ETH_P_QINQ_LEGACY) and at + 4 <= size:
        ethertype = int.from_bytes(frame[at + 2 : at + 4], "big")
        at += 4
    if ethertype in (ETH_P_MPLS_UC, ETH_P_MPLS_MC):
        while at + 4 <= size:
            bottom = frame[at + 2] & 1
            at += 4
            if bottom:
                break
        else:
            return Unit(index, frame, "L2", ("L2",), ethertype=ethertype)
        # below the stack nothing names the protocol: the first nibble, as an LSR reads it
        nibble = frame[at] >> 4 if at < size else 0
        ethertype = ETH_P_IP if nibble == 4 else ETH_P_IPV6 if nibble == 6 else ethertype
    if ethertype == ETH_P_IP and at + 20 <= size:
        return _ipv4_unit(index, frame, at)
    if ethertype == ETH_P_IPV6 and at + 40 <= size:
        return _ipv6_unit(index, frame, at)
    return Unit(index, frame, "L2", ("L2",), ethertype=ethertype)


def _ipv4_unit(index: int, frame: bytes, at: int) -> Unit:
    size = len(frame)
    ihl = (frame[at] & 0x0F) * 4
    tot_len = int.from_bytes(frame[at + 2 : at + 4], "big")
    frag = int.from_bytes(frame[at + 6 : at + 8], "big")
    proto = frame[at + 9]
    src, dst = frame[at + 12 : at + 16], frame[at + 16 : at + 20]
    # tot_len 0 (BIG TCP, large send): the packet runs to the end of the frame
    end = min(size, at + tot_len) if tot_len >= ihl else size
    if ihl < 20 or at + ihl > end:
        return Unit(index, frame, "IP", ("IP", 4, src, dst, proto), network=at, ip_version=4, src=src, dst=dst,
                    proto=proto)
    if frag & 0x3FFF:  # a fragment: paired with the same fragment, or put together with its datagram's others
        return Unit(index, frame, "IP", ("fragment", 4, src, dst, proto, frame[at + 4 : at + 6]), network=at,
                    payload_at=at + ihl, payload_end=end, ip_version=4, src=src, dst=dst, proto=proto,
                    frag_offset=(frag & 0x1FFF) * 8, more_fragments=bool(frag & 0x2000))
    unit = _l4_unit(index, frame, 4, at, at + ihl, end, proto, src, dst, False)
    unit.final_dst = _source_routed_destination(frame, at + 20, at + ihl)
    return unit


def _source_routed_destination(frame: bytes, options: int, end: int) -> bytes:
    """The last address of a loose or strict source route with hops left (RFC 791): the upper-layer
    checksum's destination, the sender's peer; b"" when there is none."""
    at, final = options, b""
    while at < end and frame[at] != 0:  # EOL ends the list
        if frame[at] == 1:  # NOP
            at += 1
            continue
        if at + 2 > end or frame[at + 1] < 2 or at + frame[at + 1] > end:
            break
        size = frame[at + 1]
        if frame[at] in (0x83, 0x89) and size >= 7 and frame[at + 2] + 3 <= size:
            final = frame[at + size - 4 : at + size]
        at += size
    return final


def _ipv6_unit(index: int, frame: bytes, at: int) -> Unit:
    size = len(frame)
    payload_len = int.from_bytes(frame[at + 4 : at + 6], "big")
    next_header = frame[at + 6]
    src, dst = frame[at + 8 : at + 24], frame[at + 24 : at + 40]
    end = min(size, at + 40 + payload_len) if payload_len else size  # 0: a jumbogram, to the end of the frame
    l4 = at + 40
    jumbo = False
    final_dst = home_src = b""
    while next_header in (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT):
        if l4 + 8 > end:
            break
        if next_header == IPPROTO_FRAGMENT:
            word = int.from_bytes(frame[l4 + 2 : l4 + 4], "big")
            return Unit(index, frame, "IP", ("fragment", 6, src, dst, frame[l4], frame[l4 + 4 : l4 + 8]), network=at,
                        payload_at=l4 + 8, payload_end=end, ip_version=6, src=src, dst=dst, proto=frame[l4],
                        frag_offset=word & 0xFFF8, more_fragments=bool(word & 1))
        if next_header == IPPROTO_HOPOPTS and frame[l4 + 2] == IPV6_TLV_JUMBO and frame[l4 + 3] == 4:
            jumbo = True
        if next_header == IPPROTO_ROUTING and frame[l4 + 3]:
            final_dst = _routed_destination(frame, l4, end) or final_dst
        if next_header == IPPROTO_DSTOPTS:
            home_src = _home_address(frame, l4, end) or home_src
        next_header, l4 = frame[l4], l4 + (frame[l4 + 1] + 1) * 8
    unit = _l4_unit(index, frame, 6, at, l4, end, next_header, src, dst, jumbo)
    unit.final_dst = final_dst
    unit.home_src = home_src
    return unit


def _home_address(frame: bytes, header: int, end: int) -> bytes:
    """The home address of a Destination Options header's Home Address option (type 0xC9, 16 bytes; RFC
    6275 6.3: the upper-layer checksum's source), b"" where it has none."""
    stop = min(end, header + (frame[header + 1] + 1) * 8)
    at = header + 2
    while at < stop:
        if frame[at] == 0:  # Pad1
            at += 1
            continue
        if at + 2 > stop or at + 2 + frame[at + 1] > stop:
            return b""
        if frame[at] == 0xC9 and frame[at + 1] == 16:
            return frame[at + 2 : at + 18]
        at += 2 + frame[at + 1]
    return b""


def _routed_destination(frame: bytes, header: int, end: int) -> bytes:
    """The last hop a Routing header with segments left names (RFC 8200 8.1: the upper-layer checksum's
    destination): the last address of type 0 and type 2 (Mobile IPv6), Segment List[0] of an SRH
    (type 4, RFC 8754); b"" for a type whose addresses are not read here."""
    size = (frame[header + 1] + 1) * 8
    count = (size - 8) // 16
    if header + size > end or not count:
        return b""
    if frame[header + 2] in (0, 2):
        return frame[header + 8 + 16 * (count - 1) : header + 8 + 16 * count]
    if frame[header + 2] == 4:
        return frame[header + 8 : header + 24]
    return b""


def _l4_unit(index: int, frame: bytes, version: int, network: int, l4: int, end: int, proto: int, src: bytes,
             dst: bytes, jumbo: bool) -> Unit:
    if proto == IPPROTO_TCP and l4 + 20 <= end:
        doff = (frame[l4 + 12] >> 4) * 4
        if doff >= 20 and l4 + doff <= end:
            sport, dport = int.from_bytes(frame[l4 : l4 + 2], "big"), int.from_bytes(frame[l4 + 2 : l4 + 4], "big")
            return Unit(index, frame, "TCP", ("TCP", src, dst, sport, dport), network, l4, l4 + doff, end, version,
                        src, dst, proto, sport, dport, int.from_bytes(frame[l4 + 4 : l4 + 8], "big"),
                        int.from_bytes(frame[l4 + 8 : l4 + 12], "big"), jumbo)
    if proto == IPPROTO_UDP and l4 + 8 <= end:
        sport, dport = int.from_bytes(frame[l4 : l4 + 2], "big"), int.from_bytes(frame[l4 + 2 : l4 + 4], "big")
        return Unit(index, frame, "UDP", ("UDP", src, dst, sport, dport), network, l4, l4 + 8, end, version, src, dst,
                    proto, sport, dport, jumbo=jumbo)
    return Unit(index, frame, "IP", ("IP", version, src, dst, proto), network=network, ip_version=version, src=src,
                dst=dst, proto=proto)


# --- checksums (RFC 1071), computed here rather than borrowed from the engine --------------------


def _sum16(data: bytes) -> int:
    """The ones' complement sum of 16-bit words, modulo 0xFFFF (so 0 and 0xFFFF are one value)."""
    if len(data) % 2:
        data += b"\0"
    return int.from_bytes(data, "big") % 0xFFFF  # 2**16 = 1 (mod 0xFFFF): the words' sum, end-around carry


def ipv4_header_checksum_ok(unit: Unit) -> bool:
    """The IPv4 header checksum verifies (True for a frame that is not IPv4)."""
    if unit.ip_version != 4:
        return True
    ihl = (unit.frame[unit.network] & 0x0F) * 4
    return _sum16(unit.frame[unit.network : unit.network + ihl]) == 0


def l4_checksum_state(unit: Unit) -> str:
    """``complete`` (verifies), ``partial`` (the CHECKSUM_PARTIAL seed: the pseudo-header sum Linux
    stores), ``partial-nolen`` (the same without the length: what a GSO packet carries to a TSO
    device, the length being each segment's), ``none`` (UDP over IPv4 without one) or ``invalid``;
    ``complete`` for a frame not TCP/UDP."""
    if unit.kind not in ("TCP", "UDP"):
        return "complete"
    segment = unit.frame[unit.transport : unit.payload_end]
    check_at = unit.transport + (16 if unit.kind == "TCP" else 6)
    value = int.from_bytes(unit.frame[check_at : check_at + 2], "big")
    if unit.kind == "UDP" and unit.ip_version == 4 and value == 0:
        return "none"
    seed = _pseudo_sum(unit, len(segment))
    if (seed + _sum16(segment)) % 0xFFFF == 0:
        return "complete"
    if value == (seed or 0xFFFF):
        return "partial"
    without_length = _pseudo_sum(unit, 0)
    return "partial-nolen" if value == (without_length or 0xFFFF) else "invalid"


def _pseudo_sum(unit: Unit, length: int) -> int:
    """The pseudo-header's sum for ``length`` L4 bytes over the addresses the sender summed: the final
    destination a source route or Routing header names, the home address a Home Address option names."""
    src, dst = unit.home_src or unit.src, unit.final_dst or unit.dst
    if unit.ip_version == 4:
        return _sum16(src + dst + bytes((0, unit.proto)) + length.to_bytes(2, "big"))
    return _sum16(src + dst + length.to_bytes(4, "big") + bytes((0, 0, 0, unit.proto)))


def masked_header(unit: Unit) -> bytes:
    """The headers with the fields a segmentation changes zeroed: equal for A and each of its segments
    when nothing else changed (so that most segments need no field-by-field decode)."""
    header = bytearray(unit.frame[: unit.payload_at])
    if unit.ip_version == 4:
        header[unit.network + 2 : unit.network + 6] = bytes(4)  # tot_len, id
        header[unit.network + 10 : unit.network + 12] = bytes(2)  # checksum
    elif unit.ip_version == 6:
        header[unit.network + 4 : unit.network + 6] = bytes(2)  # payload_len
    if unit.kind == "TCP":
        header[unit.transport + 4 : unit.transport + 8] = bytes(4)  # seq
        header[unit.transport + 13] &= ~TCP_FLAGS_SEGMENTATION_MOVES & 0xFF
        header[unit.transport + 16 : unit.transport + 18] = bytes(2)  # checksum
    elif unit.kind == "UDP":
        header[unit.transport + 4 : unit.transport + 8] = bytes(4)  # length, checksum
    if unit.tunnel:
        if unit.outer_version == 4:
            header[unit.outer_network + 2 : unit.outer_network + 6] = bytes(4)  # tot_len, id
            header[unit.outer_network + 10 : unit.outer_network + 12] = bytes(2)  # checksum
        else:
            header[unit.outer_network + 4 : unit.outer_network + 6] = bytes(2)  # payload_len
        if _outer_udp(unit):
            header[unit.outer_l4 + 4 : unit.outer_l4 + 8] = bytes(4)  # length, checksum
        elif _gre_csum(unit):
            header[unit.outer_l4 + 4 : unit.outer_l4 + 8] = bytes(4)  # checksum, reserved1 (gre_gso_segment)
    return bytes(header)


def _outer_udp(unit: Unit) -> bool:
    """The tunnel runs over UDP (VXLAN, Geneve, MPLS-in-UDP...)."""
    return unit.tunnel in ("VXLAN", "VXLAN-GPE", "Geneve", "MPLS-in-UDP")


def _is_gre(unit: Unit) -> bool:
    return unit.tunnel in ("GRE", "ip6gre", "gretap", "ip6gretap", "MPLS-in-GRE")


def _gre_csum(unit: Unit) -> bool:
    return _is_gre(unit) and bool(int.from_bytes(unit.frame[unit.outer_l4 : unit.outer_l4 + 2], "big") & GRE_FLAG_CSUM)


def outer_problems(unit: Unit, a: Unit | None = None) -> list[str]:
    """What a tunnel frame's outer headers get wrong as a frame on the wire: an outer IPv4 header
    checksum or a GRE checksum that does not verify, an outer UDP checksum that neither verifies nor
    holds the seed (nor stays 0 where A's was 0), outer lengths that disagree with the frame."""
    if not unit.tunnel:
        return []
    number, problems = unit.index + 1, []
    # an inner checksum left to the device (the seed) counts as completed: the outer checksum was
    # computed for the packet as it will leave (lco_csum, gso_make_checksum)
    frame = _inner_checksum_completed(unit)
    end = unit.payload_end
    if unit.outer_version == 4:
        ihl = (frame[unit.outer_network] & 0x0F) * 4
        if _sum16(frame[unit.outer_network : unit.outer_network + ihl]) != 0:
            problems.append(f"frame {number}: outer IPv4 header checksum does not verify")
        tot_len = int.from_bytes(frame[unit.outer_network + 2 : unit.outer_network + 4], "big")
        if tot_len not in (0, end - unit.outer_network):
            problems.append(f"frame {number}: outer IPv4 tot_len {tot_len} != the {end - unit.outer_network} bytes "
                            "of its packet")
    else:
        payload_len = int.from_bytes(frame[unit.outer_network + 4 : unit.outer_network + 6], "big")
        if payload_len not in (0, end - unit.outer_network - 40):
            problems.append(f"frame {number}: outer IPv6 payload_len {payload_len} != the "
                            f"{end - unit.outer_network - 40} bytes behind its header")
    if _outer_udp(unit):
        udp = unit.outer_l4
        length = int.from_bytes(frame[udp + 4 : udp + 6], "big")
        if length not in (0, end - udp):
            problems.append(f"frame {number}: outer UDP length {length} != the {end - udp} bytes of its datagram")
        check = int.from_bytes(frame[udp + 6 : udp + 8], "big")
        a_zero = a is not None and a.frame[a.outer_l4 + 6 : a.outer_l4 + 8] == b"\0\0"
        if check == 0:
            if a is not None and not a_zero:
                problems.append(f"frame {number}: outer UDP checksum 0 where A's has one")
        else:
            if a_zero:
                problems.append(f"frame {number}: outer UDP checksum {check:#06x} where A's is 0 (none)")
            pseudo = _outer_pseudo(unit, end - udp)
            if (pseudo + _sum16(frame[udp:end])) % 0xFFFF != 0 and check != (pseudo or 0xFFFF):
                problems.append(f"frame {number}: outer UDP checksum {check:#06x} does not verify")
    elif _gre_csum(unit) and _sum16(frame[unit.outer_l4 : end]) != 0:
        check = int.from_bytes(frame[unit.outer_l4 + 4 : unit.outer_l4 + 6], "big")
        problems.append(f"frame {number}: GRE checksum {check:#06x} does not verify")
    return problems


def _inner_checksum_completed(unit: Unit) -> bytes:
    """The frame with its inner L4 checksum as the device fills it, when it holds a seed."""
    if l4_checksum_state(unit) not in ("partial", "partial-nolen"):
        return unit.frame
    check_at = unit.transport + (16 if unit.kind == "TCP" else 6)
    frame = bytearray(unit.frame)
    frame[check_at : check_at + 2] = b"\0\0"
    total = (_pseudo_sum(unit, unit.payload_end - unit.transport)
             + _sum16(bytes(frame[unit.transport : unit.payload_end]))) % 0xFFFF
    frame[check_at : check_at + 2] = (0xFFFF - total).to_bytes(2, "big")
    return bytes(frame)


def _outer_pseudo(unit: Unit, length: int) -> int:
    frame, at = unit.frame, unit.outer_network
    if unit.outer_version == 4:
        return _sum16(frame[at + 12 : at + 20] + bytes((0, IPPROTO_UDP)) + length.to_bytes(2, "big"))
    return _sum16(frame[at + 8 : at + 40] + length.to_bytes(4, "big") + bytes((0, 0, 0, IPPROTO_UDP)))


# --- fates ---------------------------------------------------------------------------------------


def frame_ranges(frames: list[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``3..5, 9``."""
    parts: list[str] = []
    start = previous = None
    for number in [*frames, None]:
        if start is not None and number == (previous or 0) + 1:
            previous = number
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}..{previous}")
        start = previous = number
    return ", ".join(parts)


@dataclass
class Fate:
    """What became of one frame of A in B. Frames are numbered from 1, as tshark numbers them."""

    a_frame: int
    fate: str  # one of FATES
    b_frames: list[int] = field(default_factory=list)
    ok: bool = True  # what segmentation or the device makes of it: no real difference
    changes: list[FieldDifference] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    what: str = ""  # the frame in words (a missing one)
    payload_intact: bool = True  # segmented: the segments' payloads put together are A's

    def text(self) -> str:
        """One line: ``frame 2: segmented -> frames 2..24 (23 frames), payload intact``."""
        if self.fate == MISSING:
            return f"frame {self.a_frame}: missing ({self.what})"
        where = (f"frames {frame_ranges(self.b_frames)} ({len(self.b_frames)} frames)" if len(self.b_frames) > 1
                 else f"frame {self.b_frames[0]}")
        line = f"frame {self.a_frame}: {self.fate.replace('-', ' ')} -> {where}"
        details = []
        if self.fate == SEGMENTED and self.payload_intact:
            line += ", payload intact"
        if self.fate == CHECKSUM_COMPLETED:
            line += f" ({', '.join(change.name for change in self.changes)})"
        elif self.changes:
            details.append(("changed: " if self.fate == SEGMENTED else "")
                           + "; ".join(change.text() for change in self.changes))
        details += self.problems
        return line + (": " + "; ".join(details) if details else "")

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form."""
        out: dict[str, object] = {"a_frame": self.a_frame, "fate": self.fate, "b_frames": self.b_frames, "ok": self.ok}
        if self.changes:
            out["changes"] = [{"field": c.name, "a": c.a, "b": c.b} for c in self.changes]
        if self.problems:
            out["problems"] = self.problems
        if self.what:
            out["frame"] = self.what
        if self.fate == SEGMENTED:
            out["payload_intact"] = self.payload_intact
        return out


class FlowDiff:
    """Pairs the frames of A with those of B by flow, TCP sequence and UDP datagram (see the module)."""

    def __init__(self, frames_b: Iterable[FrameItem], tunnel_ports: dict[int, str] | None = None) -> None:
        self._source: Iterator[FrameItem] = iter(frames_b)
        # a bulk reader of B (softgso.bulk.frames.BulkFrames) hands over a run of frames that are
        # plainly a frame of A's segments at once: what the per-frame pairing would find and judge
        self._runs: Callable[[Unit], list[int] | None] | None = getattr(frames_b, "tcp_segments", None)
        self._ports = tunnel_ports
        self._exhausted = False
        self.frames_a = 0
        self.frames_b = 0  # read so far (all of B after :meth:`only_in_b`)
        self.counts: dict[str, int] = dict.fromkeys(FATES, 0)
        self.segments = 0  # frames of B that segmented frames of A became
        self.not_ok = 0
        # frames of B read and not yet paired: TCP by flow and sequence (with and without payload),
        # the rest by pairing key in B's order
        self._tcp_data: dict[tuple[object, ...], dict[int, deque[Unit]]] = {}
        self._tcp_bare: dict[tuple[object, ...], dict[int, deque[Unit]]] = {}
        self._queues: dict[tuple[object, ...], deque[Unit]] = {}
        # fragments of B by datagram and offset, paired one by one with fragments of A; and the
        # datagrams being put together from them for a datagram of A that UFO fragmented (one
        # identification may serve many datagrams: softgso's --ipv6-frag-id is one for all)
        self._fragments: dict[tuple[tuple[object, ...], int], deque[Unit]] = {}
        self._open_datagrams: dict[tuple[object, ...], list[list[Unit]]] = {}

    # -- reading B ---------------------------------------------------------------------------------

    def _pull(self) -> Unit | None:
        """Read the next frame of B into the tables; None at its end."""
        if self._exhausted:
            return None
        item = next(self._source, None)
        if item is None:
            self._exhausted = True
            return None
        unit = parse_unit(*item, tunnel_ports=self._ports)
        self.frames_b += 1
        if unit.kind == "TCP":
            table = self._tcp_data if unit.payload_len else self._tcp_bare
            table.setdefault(unit.key, {}).setdefault(unit.seq, deque()).append(unit)
        elif unit.frag_offset >= 0:
            self._fragments.setdefault((unit.key, unit.frag_offset), deque()).append(unit)
            if unit.proto != IPPROTO_UDP:
                return unit
            groups = self._open_datagrams.setdefault(unit.key, [])
            group = next((g for g in groups if all(part.frag_offset != unit.frag_offset for part in g)), None)
            if group is None:
                group = []
                groups.append(group)
            group.append(unit)
            datagram = _reassembled(group)
            if datagram is not None:
                groups.remove(group)
                self._queues.setdefault(datagram.key, deque()).append(datagram)
        else:
            self._queues.setdefault(unit.key, deque()).append(unit)
        return unit

    def _find_tcp(self, table: dict[tuple[object, ...], dict[int, deque[Unit]]], key: tuple[object, ...], seq: int,
                  accept: Callable[[Unit], bool]) -> Unit | None:
        """The first unpaired TCP frame of B in this flow at this sequence number that ``accept`` takes,
        reading B on as far as needed."""
        bucket = table.get(key, {}).get(seq)
        for unit in bucket or ():
            if accept(unit):
                return unit
        while (pulled := self._pull()) is not None:
            if (pulled.kind == "TCP" and pulled.key == key and pulled.seq == seq
                    and (self._tcp_data if pulled.payload_len else self._tcp_bare) is table and accept(pulled)):
                return pulled
        return None

    @staticmethod
    def _take_tcp(table: dict[tuple[object, ...], dict[int, deque[Unit]]], unit: Unit) -> None:
        flow = table[unit.key]
        bucket = flow[unit.seq]
        bucket.remove(unit)
        if not bucket:
            del flow[unit.seq]
            if not flow:
                del table[unit.key]

    def _queue(self, key: tuple[object, ...], length: int = 1) -> deque[Unit]:
        """The unpaired frames of B with this key, read on until it holds ``length`` of them or B ends."""
        queue = self._queues.setdefault(key, deque())
        while True:
            # a datagram put together from fragments that fragments of A have taken is gone
            while queue and queue[0].parts and any(part.taken for part in queue[0].parts):
                queue.popleft()
            if len(queue) >= length or self._pull() is None:
                return queue

    # -- pairing a frame of A --------------------------------------------------------------------

    def add(self, index: int, frame: bytes, ethernet: bool = True) -> Fate:
        """What became of this frame of A (record ``index``, from 0)."""
        unit = parse_unit(index, frame, ethernet, self._ports)
        self.frames_a += 1
        if unit.kind == "TCP":
            fate = (self._run(unit) or self._tcp(unit)) if unit.payload_len else self._tcp_bare_fate(unit)
        elif unit.kind == "UDP":
            fate = self._udp(unit)
        elif unit.frag_offset >= 0:
            fate = self._fragment(unit)
        else:
            fate = self._other(unit)
        self.counts[fate.fate] += 1
        if fate.fate == SEGMENTED:
            self.segments += len(fate.b_frames)
        self.not_ok += not fate.ok
        return fate

    def _run(self, a: Unit) -> Fate | None:
        """A's segments taken as one run from the bulk reader, where :meth:`_tcp` would read them
        next from B (nothing of A's flow waits unpaired) and judge them intact without a word."""
        if self._runs is None or a.tunnel or a.key in self._tcp_data or self._exhausted:
            return None
        taken = self._runs(a)
        if taken is None:
            return None
        self.frames_b += len(taken)
        return Fate(a.index + 1, SEGMENTED, [index + 1 for index in taken])

    def _tcp(self, a: Unit) -> Fate:
        pieces: list[Unit] = []
        seq, remaining = a.seq, a.payload_len
        while remaining:
            def fits(unit: Unit, left: int = remaining) -> bool:
                return unit.payload_len <= left and not unit.claimed

            piece = self._find_tcp(self._tcp_data, a.key, seq, fits)
            if piece is None:
                break
            self._take_tcp(self._tcp_data, piece)
            pieces.append(piece)
            seq, remaining = (seq + piece.payload_len) & SEQ_MASK, remaining - piece.payload_len
        if not pieces:
            return self._merged(a) or self._missing(a)
        if len(pieces) == 1 and not remaining:
            return self._one_to_one(a, pieces[0])
        return self._segmented(a, pieces, remaining)

    def _tcp_bare_fate(self, a: Unit) -> Fate:
        """A TCP frame without payload (ACK, SYN, FIN): the one of the flow at the same sequence number
        and, where there is one, with the same acknowledgment number."""
        b = self._find_tcp(self._tcp_bare, a.key, a.seq, lambda u: u.ack == a.ack)
        if b is None:
            bucket = self._tcp_bare.get(a.key, {}).get(a.seq)
            b = bucket[0] if bucket else None
        if b is None:
            return self._missing(a)
        self._take_tcp(self._tcp_bare, b)
        return self._one_to_one(a, b)

    def _merged(self, a: Unit) -> Fate | None:
        """A's payload inside a longer frame of B of its flow (B coalesced what A had apart)."""
        for bucket in self._tcp_data.get(a.key, {}).values():
            for b in bucket:
                offset = (a.seq - b.seq) & SEQ_MASK
                if offset < b.payload_len and offset + a.payload_len <= b.payload_len:
                    b.claimed += a.payload_len
                    problems = [f"its payload is bytes {offset}..{offset + a.payload_len - 1} of frame {b.index + 1}'s"]
                    start = b.payload_at + offset
                    if b.frame[start : start + a.payload_len] != a.payload():
                        problems.append("and those bytes differ")
                    if b.claimed >= b.payload_len:
                        self._take_tcp(self._tcp_data, b)
                    return Fate(a.index + 1, MERGED, [b.index + 1], ok=False, problems=problems)
        return None

    def _udp(self, a: Unit) -> Fate:
        queue = self._queue(a.key)
        if not queue:
            return self._missing(a)
        head = queue[0]
        if head.parts is not None and head.payload_len == a.payload_len:
            queue.popleft()
            return self._fragmented(a, head)
        if head.payload_len == a.payload_len:
            payload = a.payload()
            if head.payload() != payload:
                # a datagram missing from B must not pair with the next one of the same size
                head = next((u for u in queue if u.parts is None and u.payload_len == a.payload_len
                             and u.payload() == payload), head)
            queue.remove(head)
            return self._one_to_one(a, head)
        # USO (__udp_gso_segment): consecutive datagrams of the flow whose payloads add up to A's
        pieces: list[Unit] = []
        total = 0
        while total < a.payload_len:
            queue = self._queue(a.key, len(pieces) + 1)
            if (len(queue) <= len(pieces) or queue[len(pieces)].parts is not None
                    or total + queue[len(pieces)].payload_len > a.payload_len):
                break
            pieces.append(queue[len(pieces)])
            total += pieces[-1].payload_len
        if len(pieces) < 2 or total != a.payload_len:
            return self._missing(a)
        for _ in range(len(pieces)):
            queue.popleft()
        return self._segmented(a, pieces, 0)

    def _fragment(self, a: Unit) -> Fate:
        """A fragment of A: the fragment of B of the same datagram at the same offset."""
        while True:
            bucket = self._fragments.get((a.key, a.frag_offset))
            while bucket and bucket[0].taken:
                bucket.popleft()
            if bucket:
                b = bucket.popleft()
                b.taken = True
                return self._one_to_one(a, b)
            if self._pull() is None:
                return self._missing(a)

    def _other(self, a: Unit) -> Fate:
        queue = self._queue(a.key)
        if not queue:
            return self._missing(a)
        b = next((u for u in queue if u.frame == a.frame), queue[0])
        queue.remove(b)
        return self._one_to_one(a, b)

    @staticmethod
    def _missing(a: Unit) -> Fate:
        return Fate(a.index + 1, MISSING, ok=False, what=a.describe())

    # -- judging a pair ----------------------------------------------------------------------------

    def _one_to_one(self, a: Unit, b: Unit) -> Fate:
        if a.frame == b.frame:
            return Fate(a.index + 1, UNCHANGED, [b.index + 1])
        changes = compare_frames(a.frame, b.frame, self._ports)
        names = {change.name for change in changes}
        if b.tunnel and names <= TUNNEL_CHECKSUM_FIELDS:
            problems = outer_problems(b, a) + _checksum_problems(
                b, {name.removeprefix("inner ") for name in names - OUTER_CHECKSUM_FIELDS},
                {"complete", "partial", "partial-nolen"})
            if not problems:
                inner_done = "inner IPv4 checksum" in names or l4_checksum_state(b) == "complete"
                return Fate(a.index + 1, CHECKSUM_COMPLETED if inner_done else CHANGED, [b.index + 1], changes=changes)
            return Fate(a.index + 1, CHANGED, [b.index + 1], ok=False, changes=changes, problems=problems)
        if names <= CHECKSUM_FIELDS:
            # a frame sent whole gets the checksum its NIC fills, or, where the device offloads checksums,
            # the seed it fills from (the GSO one, without the length, where it takes a super-packet whole)
            problems = _checksum_problems(b, names, {"complete", "partial", "partial-nolen"})
            if not problems:
                completed = "IPv4 checksum" in names or l4_checksum_state(b) == "complete"
                return Fate(a.index + 1, CHECKSUM_COMPLETED if completed else CHANGED, [b.index + 1], changes=changes)
            return Fate(a.index + 1, CHANGED, [b.index + 1], ok=False, changes=changes, problems=problems)
        return Fate(a.index + 1, CHANGED, [b.index + 1], ok=False, changes=changes)

    def _segmented(self, a: Unit, pieces: list[Unit], remaining: int) -> Fate:
        problems: list[str] = []
        joined = b"".join(piece.payload() for piece in pieces)
        expected = a.payload()
        intact = joined == expected
        if joined != expected[: len(joined)]:
            at = next(i for i, (x, y) in enumerate(zip(expected, joined, strict=False)) if x != y)
            offset = 0
            for piece in pieces:
                if at < offset + piece.payload_len:
                    problems.append(f"payload byte {at} differs in frame {piece.index + 1} (its byte {at - offset}): "
                                    f"{expected[at]:#04x} != {joined[at]:#04x}")
                    break
                offset += piece.payload_len
        if remaining:
            problems.append(f"payload bytes {len(joined)}..{a.payload_len - 1} are in no frame of B")
        a_header = masked_header(a)
        a_fields = None
        changes: dict[tuple[str, str | None, str | None], FieldDifference] = {}
        for piece in pieces:
            if masked_header(piece) != a_header:
                a_fields = a_fields or decode_fields(a.frame, self._ports)
                for change in header_differences(a_fields, decode_fields(piece.frame, self._ports)):
                    if not _segmentation_changes(change, a, piece):
                        changes.setdefault((change.name, change.a, change.b), change)
            problems += _checksum_problems(piece, {"IPv4 checksum", f"{piece.kind} checksum"}, _segment_states(a))
            problems += _length_problems(piece)
            problems += outer_problems(piece, a)
        if a.kind == "TCP":
            problems += _flag_problems(a, pieces)
        ok = not problems and not changes
        return Fate(a.index + 1, SEGMENTED, [piece.index + 1 for piece in pieces], ok=ok, changes=list(changes.values()),
                    problems=problems, payload_intact=intact)

    def _fragmented(self, a: Unit, datagram: Unit) -> Fate:
        """A datagram of A that UFO cut into IP fragments (inet_gso_segment, ipv6_gso_segment): put together,
        its payload must be A's and its checksum complete (or the seed); each fragment's headers A's
        but for what fragmentation sets."""
        parts = datagram.parts or []
        problems: list[str] = []
        for part in parts:
            part.taken = True
        intact = datagram.payload() == a.payload()
        if not intact:
            at = next((i for i, (x, y) in enumerate(zip(a.payload(), datagram.payload(), strict=False)) if x != y),
                      min(a.payload_len, datagram.payload_len))
            # the UDP header is the first 8 bytes of what the fragments carry
            holder = next((part for part in parts if part.frag_offset <= at + 8 < part.frag_offset + part.payload_len),
                          parts[-1])
            problems.append(f"payload byte {at} differs in frame {holder.index + 1} (a fragment)")
        if l4_checksum_state(datagram) == "invalid":
            problems.append("the UDP checksum of the datagram put together from the fragments does not verify")
        a_fields = decode_fields(a.frame, self._ports)
        changes: dict[tuple[str, str | None, str | None], FieldDifference] = {}
        for part in parts:
            # the fragment header's reserved byte and bits, which ipv6_gso_segment's fragments carry as 0
            # (the header as a whole is one of FRAGMENT_FIELDS: A has none)
            if part.ip_version == 6 and (part.frame[part.payload_at - 7] or part.frame[part.payload_at - 5] & 0x06):
                problems.append(f"frame {part.index + 1}: IPv6 fragment header reserved bits set")
            for change in header_differences(a_fields, decode_fields(part.frame, self._ports)):
                if not (change.name in SEGMENT_FIELDS or change.name in FRAGMENT_FIELDS
                        or (a.jumbo and change.name in JUMBO_FIELDS)):
                    changes.setdefault((change.name, change.a, change.b), change)
            if not ipv4_header_checksum_ok(part):
                problems.append(f"frame {part.index + 1}: IPv4 header checksum does not verify")
            problems += _length_problems(part)
        return Fate(a.index + 1, SEGMENTED, [part.index + 1 for part in parts], ok=not problems and not changes,
                    changes=list(changes.values()), problems=problems, payload_intact=intact)

    # -- the end ---------------------------------------------------------------------------------

    def only_in_b(self) -> list[int]:
        """Frames of B (numbered from 1) that no frame of A became: reads the rest of B."""
        while self._pull() is not None:
            pass
        left = [unit.index for table in (self._tcp_data, self._tcp_bare) for flow in table.values()
                for bucket in flow.values() for unit in bucket if not unit.claimed]
        left += [unit.index for queue in self._queues.values() for unit in queue if unit.parts is None]
        left += [unit.index for bucket in self._fragments.values() for unit in bucket if not unit.taken]
        return sorted(index + 1 for index in left)


def _reassembled(group: list[Unit]) -> Unit | None:
    """The UDP datagram the fragments of one datagram of B make, once all are there (None before, and
    for fragments that overlap or carry another protocol)."""
    first = group[0]
    if not any(not unit.more_fragments for unit in group):
        return None
    parts = sorted(group, key=lambda unit: unit.frag_offset)
    data = b""
    for part in parts:
        if part.frag_offset != len(data) or part.taken:
            return None
        data += part.payload()
    if parts[-1].more_fragments or len(data) < 8:
        return None
    sport, dport = int.from_bytes(data[0:2], "big"), int.from_bytes(data[2:4], "big")
    return Unit(parts[0].index, data, "UDP", ("UDP", first.src, first.dst, sport, dport), transport=0, payload_at=8,
                payload_end=len(data), ip_version=first.ip_version, src=first.src, dst=first.dst, proto=IPPROTO_UDP,
                sport=sport, dport=dport, parts=parts)


def _segmentation_changes(change: FieldDifference, a: Unit, piece: Unit) -> bool:
    """A field a segmentation gives each segment (a length, an ID, a sequence number, a checksum, the
    flags tcp_gso_segment moves, BIG TCP's jumbo option left out)."""
    prefix = a.field_prefix or piece.field_prefix  # a push or a pop between A and B: compared as inner fields
    if change.name in (TUNNEL_SEGMENT_FIELDS if prefix else SEGMENT_FIELDS):
        return True
    if change.name == f"{prefix}TCP flags":
        moved = a.frame[a.transport + 13] ^ piece.frame[piece.transport + 13]
        return not moved & ~TCP_FLAGS_SEGMENTATION_MOVES
    return a.jumbo and change.name.removeprefix(prefix) in JUMBO_FIELDS


def _flag_problems(a: Unit, pieces: list[Unit]) -> list[str]:
    """Each segment's TCP flags as tcp_gso_segment leaves them: FIN and PSH on the last segment only,
    CWR on the first only, every other flag as A has it (a seed checksum would not catch a change)."""
    from .capdiff import tcp_flag_text

    flags = a.frame[a.transport + 13]
    problems = []
    for number, piece in enumerate(pieces):
        expected = flags
        if number < len(pieces) - 1:
            expected &= ~(TCP_FIN | TCP_PSH)
        if number:
            expected &= ~TCP_CWR
        found = piece.frame[piece.transport + 13]
        if found != expected:
            problems.append(f"frame {piece.index + 1}: TCP flags {tcp_flag_text(found)}, where segmentation leaves "
                            f"{tcp_flag_text(expected)}")
    return problems


def _segment_states(a: Unit) -> set[str]:
    """The checksum states a segment of ``a`` may have: complete, or the seed (a device with checksum
    offload leaves it); UDP's "no checksum" only where A had none."""
    states = {"complete", "partial"}
    if a.kind == "UDP" and a.ip_version == 4 and a.frame[a.transport + 6 : a.transport + 8] == b"\0\0":
        states.add("none")
    return states


def _length_problems(piece: Unit) -> list[str]:
    """A segment's IP length must not claim more than the frame holds (IPv6 has no header checksum
    to catch a payload_len that does; padding after the packet is no problem)."""
    if piece.ip_version == 4:
        claimed = int.from_bytes(piece.frame[piece.network + 2 : piece.network + 4], "big")
        held, field_name = len(piece.frame) - piece.network, "IPv4 tot_len"
    elif piece.ip_version == 6:
        claimed = int.from_bytes(piece.frame[piece.network + 4 : piece.network + 6], "big")
        held, field_name = len(piece.frame) - piece.network - 40, "IPv6 payload_len"
    else:
        return []
    if claimed > held:
        return [f"frame {piece.index + 1}: {field_name} {claimed} claims more than the {held} bytes there"]
    if piece.kind == "UDP":
        udp_length = int.from_bytes(piece.frame[piece.transport + 4 : piece.transport + 6], "big")
        if udp_length != piece.payload_end - piece.transport:
            return [f"frame {piece.index + 1}: UDP length {udp_length} != the {piece.payload_end - piece.transport} "
                    "bytes of its datagram"]
    return []


def _checksum_problems(b: Unit, names: set[str], states: set[str]) -> list[str]:
    """The checksums among ``names`` that B's frame does not get right (its L4 checksum must be in one of
    ``states``), in words."""
    problems = []
    if "IPv4 checksum" in names and not ipv4_header_checksum_ok(b):
        value = int.from_bytes(b.frame[b.network + 10 : b.network + 12], "big")
        problems.append(f"frame {b.index + 1}: IPv4 header checksum {value:#06x} does not verify")
    if names & {"TCP checksum", "UDP checksum"}:
        state = l4_checksum_state(b)
        if state not in states:
            check_at = b.transport + (16 if b.kind == "TCP" else 6)
            value = int.from_bytes(b.frame[check_at : check_at + 2], "big")
            what = {"invalid": "does not verify", "partial": "is a CHECKSUM_PARTIAL seed, not complete",
                    "partial-nolen": "is a seed without the length, not complete",
                    "none": "is 0 (no checksum), not complete"}[state]
            problems.append(f"frame {b.index + 1}: {b.kind} checksum {value:#06x} {what}")
    return problems
