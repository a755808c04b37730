"""Case specifications: every parameter of one super-packet, and the frame built from them.

A :class:`CaseSpec` is plain data (JSON in ``meta.json``'s ``random_params``), so the generator can
draw it, the minimiser can shrink it field by field, and :func:`to_guest_case` turns it into the
frame, virtio_net_hdr and device settings the guest injects.

The frame is built here with the standard library only, never with softgso's code.
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass, field, fields

from . import wire

MAC_DST = bytes.fromhex("020000000002")
MAC_SRC = bytes.fromhex("020000000001")
IPV4_SRC, IPV4_DST = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
IPV6_SRC = bytes.fromhex("20010db8000000000000000000000001")
IPV6_DST = bytes.fromhex("20010db8000000000000000000000002")
TCP_SRC_PORT, TCP_DST_PORT = 40000, 5001

VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
VIRTIO_NET_HDR_GSO_TCPV4 = 1
VIRTIO_NET_HDR_GSO_UDP = 3
VIRTIO_NET_HDR_GSO_TCPV6 = 4
VIRTIO_NET_HDR_GSO_UDP_L4 = 5
VIRTIO_NET_HDR_GSO_ECN = 0x80
TCP_CHECK_OFFSET, UDP_CHECK_OFFSET = 16, 6

DEFAULT_ETHTOOL_VETH0 = "tx off tso off gso on txvlan on"  # software GSO, checksums completed in software
DEFAULT_ETHTOOL_VETH1 = "rxvlan on"


@dataclass
class CaseSpec:
    """One super-packet and the path it takes (device settings, tc actions).

    Fields left ``None`` take the value a well-formed packet has (correct hdr_len, csum_start,
    csum_offset); the invalid-metadata cases set them on purpose.
    """

    name: str
    category: str
    ip_version: int = 4
    l4: str = "tcp"                    # "tcp" or "udp"
    paylen: int = 3000
    gso_size: int = 1448
    gso_type: int = VIRTIO_NET_HDR_GSO_TCPV4
    vnet_flags: int = VIRTIO_NET_HDR_F_NEEDS_CSUM
    hdr_len: int | None = None
    csum_start: int | None = None
    csum_offset: int | None = None
    payload_salt: int = 3
    l4_seed: str = "pseudo"            # the input's L4 checksum: "pseudo" (CHECKSUM_PARTIAL seed), "zero", "full"
    sll_protocol: int | None = None    # the sendto's sll_protocol; None = the frame's ethertype
    # TCP
    tcp_flags: int = 0x18
    tcp_options: str = ""              # hex
    seq: int = 0x11223344
    ack: int = 0x55667788
    window: int = 502
    urg_ptr: int = 0
    # IPv4
    df: bool = True
    ip_id: int = 0x1234
    tos: int = 0
    ttl: int = 64
    ip_options: str = ""               # hex
    ip_frag_bits: int = 0              # OR'ed into frag_off besides DF: the reserved bit 0x8000, MF 0x2000, an offset
    # IPv6
    tclass: int = 0
    flow_label: int = 0x12345
    hop_limit: int = 64
    ext_headers: list[str] = field(default_factory=list)  # "hop:<units>", "rt:<addresses>", "dst:<units>", ...
    # the IPv4 total length / IPv6 payload length field: "exact" (the true length, its low 16 bits when
    # longer than the field holds) or "zero" (as BIG TCP leaves it behind its jumbo hop-by-hop header)
    l3_len_field: str = "exact"
    # "udp_zero": the last even-placed payload word chosen so that the UDP checksum folds to 0
    payload_fix: str = ""
    udp_len_delta: int = 0             # added to the UDP length field (USO adjusts the checksum by the field)
    # path
    labels: list[list] = field(default_factory=list)      # [label, tc, ttl, "uc"|"mc"], bottom first
    vlan_pushes: list[list] = field(default_factory=list)  # [id, priority, "802.1Q"|"802.1ad"]
    vlan_after_mpls: bool = True       # tc order: MPLS pushes first, then VLAN pushes (tag outside)
    tx_vlan: list | None = None        # [id, "802.1Q"|"802.1ad"]: sent through a VLAN device
    label_ops: list[str] = field(default_factory=list)  # tc actions after the pushes: "mpls pop protocol ip", ...
    inband_vlans: list[list] = field(default_factory=list)  # [id, priority, "802.1Q"|"802.1ad"] in the frame, outer first
    ethtool_veth0: str = DEFAULT_ETHTOOL_VETH0
    veth_mtu: int = 1500
    description: str = ""

    def to_json(self) -> dict:
        """The spec as JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> CaseSpec:
        """A spec from :meth:`to_json` output (unknown keys ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


JUMBO_LENGTH_AT = 4  # the jumbo header's Jumbo Payload Length field, filled in by build_frame


def ipv6_extension_header(kind: str, next_header: int) -> tuple[int, bytes]:
    """(protocol number, bytes) of one extension header described as ``kind:size`` (or ``kind`` alone).

    Besides PadN-filled hop-by-hop / destination options and type-0 routing headers: ``jumbo`` (the
    8-byte hop-by-hop header with the RFC 2675 Jumbo Payload option, as BIG TCP builds it; its length
    field is filled in by build_frame), ``hao:<units>`` (destination options holding a Home Address
    option, RFC 6275 6.3, after a PadN), ``frag`` (a Fragment header, offset 0, M clear) and
    ``other:<protocol>`` (8 bytes of an extension header GSO does not walk, e.g. 253 or 51).
    """
    name, _, size = kind.partition(":")
    if name == "jumbo":
        return wire.IPPROTO_HOPOPTS, bytes([next_header, 0, 0xC2, 4]) + b"\0" * 4
    if name == "frag":
        return wire.IPPROTO_FRAGMENT, bytes([next_header, 0, 0, 0]) + struct.pack("!I", 0x5EED0001)
    if name == "other":
        return int(size), bytes([next_header, 0]) + b"\0" * 6
    units = int(size)
    if name == "hao":
        # PadN(2) puts the option at 8n+6 (its address 8-aligned); units >= 2, a PadN fills the rest
        body = b"\x01\x02\0\0" + bytes([0xC9, 16]) + bytes.fromhex("20010db8eeee0000000000000000abcd")
        extra = 8 * (units + 1) - 2 - len(body)
        body += b"\x01" + bytes([extra - 2]) + b"\0" * (extra - 2) if extra else b""
        return wire.IPPROTO_DSTOPTS, bytes([next_header, units]) + body
    if name in ("hop", "dst"):
        # one PadN option filling the header (RFC 8200 section 4.2)
        body_len = 6 + 8 * units
        body = bytes([1, body_len - 2]) + b"\0" * (body_len - 2)
        return (wire.IPPROTO_HOPOPTS if name == "hop" else wire.IPPROTO_DSTOPTS), bytes([next_header, units]) + body
    if name == "rt":
        # type 0 with segments_left 0: the IPv6 destination is already the final one
        addresses = b"".join(bytes.fromhex(f"20010db8ffff0000000000000000{i:04x}") for i in range(units))
        return wire.IPPROTO_ROUTING, bytes([next_header, 2 * units, 0, 0]) + b"\0" * 4 + addresses
    raise ValueError(f"unknown IPv6 extension header {kind!r}")


def l4_header(spec: CaseSpec, l4_len: int) -> bytes:
    """The TCP or UDP header with a zero checksum."""
    if spec.l4 == "tcp":
        options = bytes.fromhex(spec.tcp_options)
        data_offset = (20 + len(options)) // 4
        return struct.pack("!HHIIBBHHH", TCP_SRC_PORT, TCP_DST_PORT, spec.seq, spec.ack, data_offset << 4,
                           spec.tcp_flags, spec.window, 0, spec.urg_ptr) + options
    return struct.pack("!HHHH", TCP_SRC_PORT, TCP_DST_PORT, (l4_len + spec.udp_len_delta) & 0xFFFF, 0)


def build_frame(spec: CaseSpec) -> tuple[bytes, dict[str, int]]:
    """The untagged, unlabelled Ethernet frame and its virtio_net_hdr fields."""
    period = bytes((i * 7 + spec.payload_salt) & 0xFF for i in range(256))  # the pattern repeats every 256 bytes
    payload = (period * (spec.paylen // 256 + 1))[: spec.paylen]
    proto = wire.IPPROTO_TCP if spec.l4 == "tcp" else wire.IPPROTO_UDP
    header_len = 20 + len(bytes.fromhex(spec.tcp_options)) if spec.l4 == "tcp" else 8
    l4_len = header_len + len(payload)
    l4 = bytearray(l4_header(spec, l4_len))
    if spec.ip_version == 6:
        ext, next_header = b"", proto
        for kind in reversed(spec.ext_headers):
            number, data = ipv6_extension_header(kind, next_header)
            ext, next_header = data + ext, number
        if "jumbo" in spec.ext_headers:
            at = sum(len(ipv6_extension_header(k, 0)[1]) for k in spec.ext_headers[: spec.ext_headers.index("jumbo")])
            ext = ext[: at + JUMBO_LENGTH_AT] + struct.pack("!I", len(ext) + l4_len) + ext[at + JUMBO_LENGTH_AT + 4 :]
        first_word = 0x60000000 | (spec.tclass << 20) | spec.flow_label
        payload_len = (len(ext) + l4_len) & 0xFFFF if spec.l3_len_field == "exact" else 0
        l3 = struct.pack("!IHBB", first_word, payload_len, next_header, spec.hop_limit) + IPV6_SRC + IPV6_DST + ext
        pseudo = wire.pseudo_header(True, IPV6_SRC, IPV6_DST, proto, l4_len)
        ethertype = wire.ETH_P_IPV6
    else:
        options = bytes.fromhex(spec.ip_options)
        ihl = (20 + len(options)) // 4
        frag_off = (0x4000 if spec.df else 0) | spec.ip_frag_bits
        tot_len = (ihl * 4 + l4_len) & 0xFFFF if spec.l3_len_field == "exact" else 0
        header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, spec.tos, tot_len, spec.ip_id, frag_off,
                                       spec.ttl, proto, 0, IPV4_SRC, IPV4_DST) + options)
        struct.pack_into("!H", header, 10, wire.internet_checksum(bytes(header)))
        l3 = bytes(header)
        # the 16-bit pseudo-header length; a longer segment (BIG TCP) counts as a 32-bit word, as
        # csum_tcpudp_magic adds skb->len
        pseudo = wire.pseudo_header(False, IPV4_SRC, IPV4_DST, proto, l4_len) if l4_len <= 0xFFFF else \
            IPV4_SRC + IPV4_DST + struct.pack("!xBI", proto, l4_len)
        ethertype = wire.ETH_P_IP
    if spec.payload_fix == "udp_zero" and spec.l4 == "udp" and len(payload) >= 2:
        # payload word at an even L4 offset (UDP header 8 bytes: an even payload index) makes the whole sum
        # 0xFFFF, so the computed checksum is 0 (sent as CSUM_MANGLED_0, RFC 768)
        at = (len(payload) - 2) & ~1
        payload = payload[:at] + b"\0\0" + payload[at + 2 :]
        rest = wire.ones_complement_sum(pseudo + bytes(l4) + payload)
        payload = payload[:at] + struct.pack("!H", 0xFFFF - rest if rest != 0xFFFF else 0) + payload[at + 2 :]
    check_offset = TCP_CHECK_OFFSET if spec.l4 == "tcp" else UDP_CHECK_OFFSET
    if spec.l4_seed == "pseudo":
        # what a Linux sender leaves for CHECKSUM_PARTIAL: the folded pseudo-header sum, not complemented
        struct.pack_into("!H", l4, check_offset, wire.ones_complement_sum(pseudo))
    elif spec.l4_seed == "full":
        struct.pack_into("!H", l4, check_offset, wire.internet_checksum(pseudo + bytes(l4) + payload))
    tags = b"".join(struct.pack("!HH", 0x8100 if proto == "802.1Q" else 0x88A8, (prio << 13) | vid)
                    for vid, prio, proto in spec.inband_vlans)
    eth = MAC_DST + MAC_SRC + tags + struct.pack("!H", ethertype)
    frame = eth + l3 + bytes(l4) + payload
    l4_offset = len(eth) + len(l3)
    vnet = {
        "flags": spec.vnet_flags,
        "gso_type": spec.gso_type,
        "hdr_len": l4_offset + len(l4) if spec.hdr_len is None else spec.hdr_len,
        "gso_size": spec.gso_size,
        "csum_start": l4_offset if spec.csum_start is None else spec.csum_start,
        "csum_offset": check_offset if spec.csum_offset is None else spec.csum_offset,
    }
    return frame, vnet


def tc_action_text(spec: CaseSpec) -> str:
    """The tc action list, in the golden set's spelling (the first MPLS push ends up at the bottom)."""
    mpls = [f"action mpls push protocol mpls_{cast} label {label} tc {tc} ttl {ttl}"
            for label, tc, ttl, cast in spec.labels]
    vlan = [f"action vlan push{'' if proto == '802.1Q' else ' protocol ' + proto} id {vid} priority {prio}"
            for vid, prio, proto in spec.vlan_pushes]
    ops = [f"action {op}" for op in spec.label_ops]
    return " ".join((mpls + vlan if spec.vlan_after_mpls else vlan + mpls) + ops)


def to_guest_case(spec: CaseSpec) -> dict:
    """The case as the guest runs it (see guest.run_case)."""
    frame, vnet = build_frame(spec)
    guest = {
        "name": spec.name,
        "frame_hex": frame.hex(),
        "virtio_net_hdr": vnet,
        "tc_action": tc_action_text(spec),
        "ethtool_veth0": spec.ethtool_veth0,
        "ethtool_veth1": DEFAULT_ETHTOOL_VETH1,
        "veth_mtu": spec.veth_mtu,
        "sll_protocol": hex(spec.sll_protocol if spec.sll_protocol is not None
                            else int.from_bytes(frame[12:14], "big")),
        "description": spec.description or spec.category,
        "extra_meta": {"category": spec.category, "random_params": spec.to_json(),
                       "negative": spec.category.startswith("invalid")},
    }
    if spec.tx_vlan:
        guest["tx_vlan"] = {"id": spec.tx_vlan[0], "protocol": spec.tx_vlan[1]}
    return guest
