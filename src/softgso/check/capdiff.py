"""Field-level comparison of two captures, packet by packet, without any file I/O.

:func:`decode_fields` is a small, independent decoder: it reads an Ethernet frame (VLAN tags, MPLS
label stack, IPv4 / IPv6 with options and extension headers, TCP / UDP) into named fields, in wire
order, straight from the bytes. It shares no code with the engine on purpose: a diff between
softgso's output and a kernel capture must not inherit softgso's own reading of a header. The one
exception is where a tunnel's headers are: softgso.offload.tunnels.parse_tunnel (one reader of what
a record holds) says where the outer, tunnel and inner headers start; every field is still read
here, outer ones named ``outer ...``, inner ones ``inner ...``, the tunnel's own by its kind
(``VXLAN VNI``, ``Geneve options``, ``GRE key``, ``GRE checksum``).
:func:`compare_frames` says in words which fields of two frames differ; :class:`CaptureDiff` adds
up a whole pair of captures.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

ETH_HLEN = 14
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ETH_P_QINQ_LEGACY = 0x9100
ETH_P_MPLS_UC = 0x8847
ETH_P_MPLS_MC = 0x8848
ETH_P_TEB = 0x6558
IPPROTO_HOPOPTS = 0
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_DSTOPTS = 60
IPV6_TLV_JUMBO = 0xC2

ETHERTYPE_NAMES = {
    0x0800: "IPv4", 0x0806: "ARP", 0x86DD: "IPv6", 0x8100: "802.1Q", 0x88A8: "802.1ad", 0x8847: "MPLS",
    0x8848: "MPLS multicast", 0x88CC: "LLDP", 0x8035: "RARP", 0x888E: "EAPOL", 0x88F7: "PTP", 0x8863: "PPPoE discovery",
    0x8864: "PPPoE session", 0x9000: "loopback", 0x88E5: "MACsec",
}
IP_PROTO_NAMES = {1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 41: "IPv6-in-IP", 47: "GRE", 50: "ESP", 51: "AH",
                  58: "ICMPv6", 89: "OSPF", 132: "SCTP"}
TCP_FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")

# Fields shown in hexadecimal (checksums, identifiers, ethertypes, flag words).
_HEX_SUFFIXES = ("checksum", "type", " id", "tpid", "ident", "next_header", "flow_label", "tos", "traffic_class",
                 " flags")
# IP protocols that may carry a tunnel: UDP (VXLAN, Geneve...), GRE, IP-in-IP
TUNNEL_IP_PROTOCOLS = (IPPROTO_UDP, 47, 4, 41)


@dataclass(frozen=True)
class Field:
    """One decoded header field: its name in words, its value, how to show it."""

    name: str
    value: int | str | bytes

    def text(self) -> str:
        """The value as a person reads it (checksums and identifiers in hex)."""
        value = self.value
        if isinstance(value, bytes):
            return value.hex() if value else "(none)"
        if isinstance(value, int) and self.name.endswith(_HEX_SUFFIXES):
            return f"{value:#06x}"
        return str(value)


def ethertype_name(ethertype: int) -> str:
    """A protocol name for an ethertype (hex when unknown)."""
    return ETHERTYPE_NAMES.get(ethertype, f"ethertype {ethertype:#06x}")


def tcp_flag_text(flags: int) -> str:
    """TCP flags as names, e.g. PSH|ACK."""
    names = [name for bit, name in enumerate(TCP_FLAG_NAMES) if flags >> bit & 1]
    return "|".join(names) or "none"


@dataclass
class Decoded:
    """The fields of one frame in wire order, plus where its payload starts."""

    fields: list[Field] = field(default_factory=list)
    payload_offset: int = 0
    ethertype: int | None = None  # the innermost ethertype reached (None: too short for Ethernet)
    ip_version: int = 0
    l4_proto: int | None = None
    vlan_tags: list[tuple[int, int]] = field(default_factory=list)  # (TPID, TCI), outermost first
    labels: list[tuple[int, int, int, int]] = field(default_factory=list)  # (label, tc, S, ttl), top first
    network: int | None = None  # offset of the IP header
    transport: int | None = None  # offset of the TCP/UDP header
    ip_src: str = ""
    ip_dst: str = ""
    sport: int = 0
    dport: int = 0
    jumbo: bool = False  # IPv6 hop-by-hop jumbo option present
    fragment: bool = False
    notes: list[str] = field(default_factory=list)  # what could not be decoded, in words
    tunnel: str = ""  # the tunnel kind the frame carries (the attributes above stay the outer packet's)

    def add(self, name: str, value: int | str | bytes) -> None:
        """Append a field."""
        self.fields.append(Field(name, value))

    def as_dict(self) -> dict[str, int | str | bytes]:
        """Field name -> value."""
        return {f.name: f.value for f in self.fields}


def decode_fields(frame: bytes | bytearray | memoryview, tunnel_ports: dict[int, str] | None = None) -> Decoded:
    """Decode an Ethernet frame into named fields, as far as its headers go (never raises); ``tunnel_ports``
    names UDP tunnels on other ports, as segment's --tunnel-port does (FOU and GUE have none)."""
    data = bytes(frame)
    out = Decoded()
    out.add("frame length", len(data))
    if len(data) < ETH_HLEN:
        out.notes.append(f"{len(data)} bytes: too short for Ethernet")
        out.payload_offset = 0
        return out
    out.add("Ethernet dst", _mac(data[0:6]))
    out.add("Ethernet src", _mac(data[6:12]))
    ethertype = int.from_bytes(data[12:14], "big")
    offset = 14
    tag = 0
    while ethertype in (ETH_P_8021Q, ETH_P_8021AD, ETH_P_QINQ_LEGACY) and offset + 4 <= len(data):
        tci = int.from_bytes(data[offset : offset + 2], "big")
        out.vlan_tags.append((ethertype, tci))
        out.add(f"vlan[{tag}].tpid", ethertype)
        out.add(f"vlan[{tag}].pcp", tci >> 13)
        out.add(f"vlan[{tag}].dei", tci >> 12 & 1)
        out.add(f"vlan[{tag}].vid", tci & 0xFFF)
        ethertype = int.from_bytes(data[offset + 2 : offset + 4], "big")
        offset += 4
        tag += 1
    out.add("Ethernet type", ethertype)
    out.ethertype = ethertype
    if ethertype in (ETH_P_MPLS_UC, ETH_P_MPLS_MC):
        index = 0
        while True:
            if offset + 4 > len(data):
                out.notes.append("label stack runs past the end of the frame")
                out.payload_offset = offset
                return out
            word = int.from_bytes(data[offset : offset + 4], "big")
            label, tc, bos, ttl = word >> 12, word >> 9 & 7, word >> 8 & 1, word & 0xFF
            out.labels.append((label, tc, bos, ttl))
            out.add(f"label[{index}].label", label)
            out.add(f"label[{index}].tc", tc)
            out.add(f"label[{index}].s", bos)
            out.add(f"label[{index}].ttl", ttl)
            offset += 4
            index += 1
            if bos:
                break
        # Below the stack nothing names the protocol: guess from the first nibble, as an LSR does.
        nibble = data[offset] >> 4 if offset < len(data) else 0
        ethertype = ETH_P_IP if nibble == 4 else ETH_P_IPV6 if nibble == 6 else 0
        out.ethertype = ethertype or None
    first_l3 = len(out.fields)
    if ethertype == ETH_P_IP:
        offset = _ipv4(data, offset, out)
    elif ethertype == ETH_P_IPV6:
        offset = _ipv6(data, offset, out)
    if out.l4_proto == IPPROTO_TCP and not out.fragment:
        offset = _tcp(data, offset, out)
    elif out.l4_proto == IPPROTO_UDP and not out.fragment:
        offset = _udp(data, offset, out)
    if out.l4_proto in TUNNEL_IP_PROTOCOLS and not out.fragment and not out.notes:
        offset = _tunnel(data, out, first_l3, offset, tunnel_ports)
    out.payload_offset = min(offset, len(data))
    out.add("payload length", len(data) - out.payload_offset)
    return out


def _tunnel(data: bytes, out: Decoded, first_l3: int, offset: int, tunnel_ports: dict[int, str] | None) -> int:
    """A tunnel's fields (where parse_tunnel says its headers are); returns where the inner payload starts."""
    from ..offload.tunnels import TunnelNotSegmented, parse_tunnel, tunnel_id

    try:
        layout = parse_tunnel(data, tunnel_ports, through_labels=True, any_inner=True)
    except TunnelNotSegmented:
        return offset
    if layout is None:
        return offset
    out.tunnel = layout.kind
    # everything outside the tunnel is "outer" (the frame's Ethernet header, tags and labels included)
    out.fields[1:] = [Field(f"outer {f.name}", f.value) for f in out.fields[1:]]
    l4 = layout.outer_l4
    identifier = tunnel_id(data, layout)
    if layout.kind in ("VXLAN", "VXLAN-GPE", "Geneve"):
        header = l4 + 8
        kind = layout.kind
        if kind == "Geneve":
            out.add("Geneve version", data[header] >> 6)
            out.add("Geneve options length", (data[header] & 0x3F) * 4)
            out.add("Geneve flags", data[header + 1])
            out.add("Geneve ethertype", int.from_bytes(data[header + 2 : header + 4], "big"))
        else:
            out.add(f"{kind} flags", data[header])
            if kind == "VXLAN-GPE":
                out.add("VXLAN-GPE next protocol", data[header + 3])
        if identifier is not None:
            out.add(f"{kind} VNI", identifier[1])
        if kind == "Geneve":
            out.add("Geneve options", data[header + 8 : layout.inner_mac])
    elif l4 < layout.inner_mac and layout.kind not in ("MPLS-in-UDP",):  # GRE, gretap, ip6gre, MPLS-in-GRE
        flags = int.from_bytes(data[l4 : l4 + 2], "big")
        out.add("GRE flags", flags)
        out.add("GRE ethertype", int.from_bytes(data[l4 + 2 : l4 + 4], "big"))
        if flags & 0x8000:
            out.add("GRE checksum", int.from_bytes(data[l4 + 4 : l4 + 6], "big"))
        if identifier is not None:
            out.add("GRE key", identifier[1])
    # the inner packet, decoded as a frame of its own (a zeroed Ethernet header stands in where it has none)
    skip: tuple[str, ...] = ()
    if layout.inner_protocol == ETH_P_TEB:  # an Ethernet frame inside (VXLAN, Geneve, gretap)
        base, inner_frame = layout.inner_mac, data[layout.inner_mac :]
    elif layout.kind in ("MPLS-in-UDP", "MPLS-in-GRE"):  # a label stack inside
        base = layout.inner_mac - ETH_HLEN
        inner_frame = bytes(12) + ETH_P_MPLS_UC.to_bytes(2, "big") + data[layout.inner_mac :]
        skip = ("Ethernet dst", "Ethernet src", "Ethernet type")
    else:
        nibble = data[layout.inner_network] >> 4 if layout.inner_network < len(data) else 0
        ethertype = ETH_P_IP if layout.inner_version == 4 or nibble == 4 else ETH_P_IPV6
        base = layout.inner_network - ETH_HLEN
        inner_frame = bytes(12) + ethertype.to_bytes(2, "big") + data[layout.inner_network :]
        skip = ("Ethernet dst", "Ethernet src", "Ethernet type")
    inner = decode_fields(inner_frame)
    for item in inner.fields:
        if item.name not in ("frame length", "payload length", *skip):
            out.fields.append(Field(f"inner {item.name}", item.value))
    out.notes += [f"inside the {layout.kind} tunnel: {note}" for note in inner.notes]
    return base + inner.payload_offset


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _ipv4(data: bytes, offset: int, out: Decoded) -> int:
    if offset + 20 > len(data):
        out.notes.append("IPv4 header truncated")
        return offset
    ihl = (data[offset] & 0x0F) * 4
    out.network = offset
    out.ip_version = 4
    version_ihl, tos, tot_len, ident, frag, ttl, proto, check = struct.unpack_from("!BBHHHBBH", data, offset)
    out.add("IPv4 version", version_ihl >> 4)
    out.add("IPv4 ihl", ihl)
    out.add("IPv4 tos", tos)
    out.add("IPv4 tot_len", tot_len)
    out.add("IPv4 id", ident)
    out.add("IPv4 DF", frag >> 14 & 1)
    out.add("IPv4 MF", frag >> 13 & 1)
    out.add("IPv4 fragment offset", (frag & 0x1FFF) * 8)
    out.add("IPv4 ttl", ttl)
    out.add("IPv4 protocol", proto)
    out.add("IPv4 checksum", check)
    out.ip_src = str(ipaddress.IPv4Address(data[offset + 12 : offset + 16]))
    out.ip_dst = str(ipaddress.IPv4Address(data[offset + 16 : offset + 20]))
    out.add("IPv4 src", out.ip_src)
    out.add("IPv4 dst", out.ip_dst)
    if ihl < 20 or offset + ihl > len(data):
        out.notes.append(f"IPv4 header length {ihl} is invalid")
        return offset + 20
    out.add("IPv4 options", data[offset + 20 : offset + ihl])
    out.l4_proto = proto
    out.fragment = bool(frag & 0x3FFF)  # MF or a non-zero offset
    return offset + ihl


def _ipv6(data: bytes, offset: int, out: Decoded) -> int:
    if offset + 40 > len(data):
        out.notes.append("IPv6 header truncated")
        return offset
    out.network = offset
    out.ip_version = 6
    word, payload_len, next_header, hop_limit = struct.unpack_from("!IHBB", data, offset)
    out.add("IPv6 version", word >> 28)
    out.add("IPv6 traffic_class", word >> 20 & 0xFF)
    out.add("IPv6 flow_label", word & 0xFFFFF)
    out.add("IPv6 payload_len", payload_len)
    out.add("IPv6 next_header", next_header)
    out.add("IPv6 hop_limit", hop_limit)
    out.ip_src = str(ipaddress.IPv6Address(data[offset + 8 : offset + 24]))
    out.ip_dst = str(ipaddress.IPv6Address(data[offset + 24 : offset + 40]))
    out.add("IPv6 src", out.ip_src)
    out.add("IPv6 dst", out.ip_dst)
    at = offset + 40
    index = 0
    while next_header in (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT):
        if at + 8 > len(data):
            out.notes.append("IPv6 extension header truncated")
            return at
        name = f"IPv6 ext[{index}]"
        if next_header == IPPROTO_FRAGMENT:
            frag_word, ident = struct.unpack_from("!HI", data, at + 2)
            out.add(f"{name} fragment offset", frag_word & 0xFFF8)
            out.add(f"{name} fragment M", frag_word & 1)
            out.add(f"{name} fragment ident", ident)
            out.fragment = True
            length = 8
        else:
            length = (data[at + 1] + 1) * 8
            if next_header == IPPROTO_HOPOPTS and data[at + 2] == IPV6_TLV_JUMBO and data[at + 3] == 4:
                out.jumbo = True
                out.add(f"{name} jumbo payload length", int.from_bytes(data[at + 4 : at + 8], "big"))
            out.add(f"{name} bytes", data[at : at + length])
        next_header = data[at]
        out.add(f"{name} next_header", next_header)
        at += length
        index += 1
    out.l4_proto = next_header
    return at


def _tcp(data: bytes, offset: int, out: Decoded) -> int:
    if offset + 20 > len(data):
        out.notes.append("TCP header truncated")
        return offset
    out.transport = offset
    sport, dport, seq, ack, doff, flags, window, check, urg = struct.unpack_from("!HHIIBBHHH", data, offset)
    out.sport, out.dport = sport, dport
    hlen = (doff >> 4) * 4
    out.add("TCP sport", sport)
    out.add("TCP dport", dport)
    out.add("TCP seq", seq)
    out.add("TCP ack", ack)
    out.add("TCP header length", hlen)
    out.add("TCP flags", tcp_flag_text(flags))
    out.add("TCP window", window)
    out.add("TCP checksum", check)
    out.add("TCP urgent pointer", urg)
    if hlen < 20 or offset + hlen > len(data):
        out.notes.append(f"TCP header length {hlen} is invalid")
        return offset + 20
    out.add("TCP options", data[offset + 20 : offset + hlen])
    return offset + hlen


def _udp(data: bytes, offset: int, out: Decoded) -> int:
    if offset + 8 > len(data):
        out.notes.append("UDP header truncated")
        return offset
    out.transport = offset
    sport, dport, length, check = struct.unpack_from("!HHHH", data, offset)
    out.sport, out.dport = sport, dport
    out.add("UDP sport", sport)
    out.add("UDP dport", dport)
    out.add("UDP length", length)
    out.add("UDP checksum", check)
    return offset + 8


@dataclass(frozen=True)
class FieldDifference:
    """One field whose value differs (``None``: the field is absent on that side)."""

    name: str
    a: str | None
    b: str | None

    def text(self) -> str:
        """In words, e.g. ``TCP seq 1001448 != 1001449``."""
        if self.a is None:
            return f"{self.name} only in B ({self.b})" if self.b else f"{self.name} only in B"
        if self.b is None:
            return f"{self.name} only in A ({self.a})" if self.a else f"{self.name} only in A"
        return f"{self.name} {self.a} != {self.b}"


def _layer_of(name: str) -> tuple[str, str]:
    """(layer, field) of a field name: ``label[1].ttl`` -> (label[1], ttl), ``TCP seq`` -> (TCP, seq),
    ``inner TCP seq`` -> (inner TCP, seq)."""
    for side in ("outer ", "inner "):
        if name.startswith(side):
            layer, rest = _layer_of(name[len(side) :])
            return side + layer, rest
    if "." in name and name.split(".", 1)[0].endswith("]"):
        layer, rest = name.split(".", 1)
        return layer, rest
    layer, _, rest = name.partition(" ")
    if rest.startswith("ext["):
        ext, _, rest = rest.partition(" ")
        return f"{layer} {ext}", rest
    return layer, rest


def _one_sided(fields: list[Field], side: str) -> list[FieldDifference]:
    """Fields only one frame has, one difference per header: ``label[0] only in B (label 200 ...)``."""
    layers: dict[str, list[Field]] = {}
    for item in fields:
        layers.setdefault(_layer_of(item.name)[0], []).append(item)
    out = []
    for layer, items in layers.items():
        if layer.removeprefix("inner ").startswith(("label[", "vlan[")):
            shown = " ".join(f"{_layer_of(i.name)[1]} {i.text()}" for i in items)
        else:
            layer, shown = f"{layer} header", ""
        out.append(FieldDifference(layer, shown, None) if side == "A" else FieldDifference(layer, None, shown))
    return out


def _checksum_fields(data: bytes) -> tuple[tuple[str, int], ...] | None:
    """The checksum fields of a plain TCP frame (Ethernet, VLAN tags, IPv4 not a fragment or IPv6 without
    extension headers), as (name, offset) in wire order, found on decode_fields' own walk; None for any
    other frame. The walk reads none of them, so a frame that differs from this one in them alone
    decodes to the same fields but these."""
    length = len(data)
    if length < ETH_HLEN:
        return None
    ethertype = int.from_bytes(data[12:14], "big")
    offset = ETH_HLEN
    while ethertype in (ETH_P_8021Q, ETH_P_8021AD, ETH_P_QINQ_LEGACY) and offset + 4 <= length:
        ethertype = int.from_bytes(data[offset + 2 : offset + 4], "big")
        offset += 4
    if ethertype == ETH_P_IP:
        ihl = (data[offset] & 0x0F) * 4 if offset < length else 0
        if (ihl < 20 or offset + ihl > length or data[offset + 9] != IPPROTO_TCP
                or int.from_bytes(data[offset + 6 : offset + 8], "big") & 0x3FFF):
            return None
        fields: tuple[tuple[str, int], ...] = (("IPv4 checksum", offset + 10),)
        transport = offset + ihl
    elif ethertype == ETH_P_IPV6:
        if offset + 40 > length or data[offset + 6] != IPPROTO_TCP:
            return None
        fields, transport = (), offset + 40
    else:
        return None
    if transport + 20 > length or not 20 <= (data[transport + 12] >> 4) * 4 <= length - transport:
        return None
    return (*fields, ("TCP checksum", transport + 16))


def _checksums_alone(a: bytes, b: bytes, fields: tuple[tuple[str, int], ...]) -> list[FieldDifference] | None:
    """compare_frames' answer for two frames of one length that differ in these checksum fields alone
    (each 2 bytes, in wire order); None where another byte differs."""
    at = 0
    for _, field_at in fields:
        if a[at:field_at] != b[at:field_at]:
            return None
        at = field_at + 2
    if a[at:] != b[at:]:
        return None
    differences = []
    for name, field_at in fields:
        left, right = int.from_bytes(a[field_at : field_at + 2], "big"), int.from_bytes(b[field_at : field_at + 2], "big")
        if left != right:
            differences.append(FieldDifference(name, Field(name, left).text(), Field(name, right).text()))
    return differences


def compare_frames(a: bytes | bytearray | memoryview, b: bytes | bytearray | memoryview,
                   tunnel_ports: dict[int, str] | None = None) -> list[FieldDifference]:
    """The fields that differ between two frames, in wire order (empty when the bytes are equal).

    Fields both frames have are compared value by value; a header only one frame has (a label,
    a VLAN tag, a TCP header where the other has UDP) is one difference, not one per field.
    """
    a_bytes, b_bytes = bytes(a), bytes(b)
    if a_bytes == b_bytes:
        return []
    if len(a_bytes) == len(b_bytes):
        at = _checksum_fields(a_bytes)
        if at is not None:
            checksums = _checksums_alone(a_bytes, b_bytes, at)
            if checksums is not None:
                return checksums
    return decoded_differences(a_bytes, b_bytes, tunnel_ports)


def decoded_differences(a_bytes: bytes, b_bytes: bytes, tunnel_ports: dict[int, str] | None = None) -> list[FieldDifference]:
    """compare_frames of two frames whose bytes differ, each decoded whole."""
    left, right = decode_fields(a_bytes, tunnel_ports), decode_fields(b_bytes, tunnel_ports)
    differences = header_differences(left, right)
    payload_a, payload_b = a_bytes[left.payload_offset :], b_bytes[right.payload_offset :]
    if payload_a != payload_b:
        at = next((i for i, (x, y) in enumerate(zip(payload_a, payload_b, strict=False)) if x != y), None)
        if at is not None:
            differences.append(FieldDifference(f"payload byte {at}", f"{payload_a[at]:#04x}", f"{payload_b[at]:#04x}"))
    if not differences:  # equal fields, different bytes: should not happen, but never hide it
        at = next((i for i, (x, y) in enumerate(zip(a_bytes, b_bytes, strict=False)) if x != y),
                  min(len(a_bytes), len(b_bytes)))
        differences.append(FieldDifference(f"byte {at}", a_bytes[at : at + 1].hex() or "end",
                                           b_bytes[at : at + 1].hex() or "end"))
    return differences


def header_differences(left: Decoded, right: Decoded) -> list[FieldDifference]:
    """The header fields that differ between two decoded frames, in wire order (payload bytes not compared)."""
    if bool(left.tunnel) != bool(right.tunnel):
        left, right = _as_inner(left, right), _as_inner(right, left)
    left_fields, right_fields = left.as_dict(), right.as_dict()
    differences = []
    for item in left.fields:
        if item.name in right_fields and right_fields[item.name] != item.value:
            differences.append(FieldDifference(item.name, item.text(), Field(item.name, right_fields[item.name]).text()))
    differences += _one_sided([f for f in left.fields if f.name not in right_fields], "A")
    differences += _one_sided([f for f in right.fields if f.name not in left_fields], "B")
    return differences


def _as_inner(plain: Decoded, tunnelled: Decoded) -> Decoded:
    """A frame without a tunnel, compared with one inside a tunnel: its fields named as the tunnel's
    inner ones where the other frame has them (so a pop or a push shows as the outer headers only)."""
    if plain.tunnel:
        return plain
    names = {item.name for item in tunnelled.fields}
    renamed = Decoded(**{**plain.__dict__, "fields": []})
    renamed.fields = [Field(f"inner {item.name}", item.value) if f"inner {item.name}" in names else item
                      for item in plain.fields]
    return renamed


@dataclass
class PacketDifference:
    """One position whose frames differ (``index`` counts from 0; messages number frames from 1)."""

    index: int
    fields: list[FieldDifference]

    def text(self) -> str:
        """``frame 4: TCP seq 1 != 2; IPv4 checksum 0x1c2d != 0x1c2e`` (numbered from 1, as tshark does)."""
        return f"frame {self.index + 1}: " + "; ".join(f.text() for f in self.fields)


@dataclass
class CaptureDiff:
    """The comparison of two captures, packet by packet (the first ``keep`` differences kept)."""

    keep: int = 10
    packets_a: int = 0
    packets_b: int = 0
    identical: int = 0
    differing: int = 0
    differences: list[PacketDifference] = field(default_factory=list)
    field_counts: dict[str, int] = field(default_factory=dict)  # field name -> packets where it differs
    tunnel_ports: dict[int, str] | None = None  # UDP tunnels on other ports (--tunnel-port)

    def add(self, index: int, a: bytes | bytearray | memoryview | None, b: bytes | bytearray | memoryview | None) -> None:
        """Compare the packets at one index (``None``: that capture has ended)."""
        if a is not None:
            self.packets_a += 1
        if b is not None:
            self.packets_b += 1
        if a is None or b is None:
            return
        fields = compare_frames(a, b, self.tunnel_ports)
        if not fields:
            self.identical += 1
            return
        self.differing += 1
        for item in fields:
            key = "payload" if item.name.startswith("payload byte") else item.name
            self.field_counts[key] = self.field_counts.get(key, 0) + 1
        if len(self.differences) < self.keep:
            self.differences.append(PacketDifference(index, fields))

    def run(self, pairs: Iterable[tuple[int, bytes | None, bytes | None]]) -> CaptureDiff:
        """Add every (index, a, b) of a lockstep walk over both captures."""
        for index, a, b in pairs:
            self.add(index, a, b)
        return self

    @property
    def same(self) -> bool:
        """Same packet count and every packet byte-identical."""
        return self.differing == 0 and self.packets_a == self.packets_b

    def count_text(self) -> str | None:
        """The packet-count difference in words, or None."""
        if self.packets_a == self.packets_b:
            return None
        longer, extra = ("A", self.packets_a - self.packets_b) if self.packets_a > self.packets_b else \
            ("B", self.packets_b - self.packets_a)
        first = min(self.packets_a, self.packets_b)
        return (f"packet count {self.packets_a} != {self.packets_b}: {extra} packet(s) only in {longer} "
                f"(from frame {first + 1})")

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form."""
        return {
            "same": self.same,
            "packets_a": self.packets_a,
            "packets_b": self.packets_b,
            "identical": self.identical,
            "differing": self.differing,
            "count_difference": self.count_text(),
            "fields_differing": dict(sorted(self.field_counts.items(), key=lambda kv: -kv[1])),
            "differences": [
                {"frame": d.index + 1, "fields": [{"field": f.name, "a": f.a, "b": f.b} for f in d.fields]}
                for d in self.differences
            ],
        }
