"""Random case generator: deterministic from (SEED, index, generation), over what the kernel accepts and refuses.

Case ``i`` is drawn from ``random.Random(f"{seed}/{i}")`` in category ``cycle[i % len(cycle)]``, so
``plan(seed, n)`` is a prefix of ``plan(seed, n + k)`` and every category appears within the first
``len(cycle)`` cases. The cycle depends on the generation: 6.1 uses :data:`CYCLE` (27 slots); 6.12,
whose virtio header carries UDP_L4 (USO), uses :data:`CYCLE_6_12`, the same 27 slots plus three USO
slots (``udp_l4``, ``udp_l4``, ``invalid_udp_l4``). A 6.1 plan is therefore unchanged by 6.12. Categories the golden set covers thinly (IPv6 extension headers, 5-8 labels,
VLAN + UFO, jumbo MTU, checksum-offload devices) appear twice in the cycle.

Rules taken from the kernel (see README.md): label 3 and MPLS TTL 0 are never drawn (tc refuses
them, and the frame would leave without the labels); the input's L4
checksum holds the pseudo-header seed; the veth MTU is raised so that every segment is accepted by
veth1 (a frame over MTU + 18 is dropped there, which says nothing about GSO); in-band VLAN tags in the
injected frame are never drawn (the packet socket path drops them with ENOMEM), VLANs come from tc or
a VLAN device instead.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

from .cases import (
    VIRTIO_NET_HDR_F_NEEDS_CSUM,
    VIRTIO_NET_HDR_GSO_ECN,
    VIRTIO_NET_HDR_GSO_TCPV4,
    VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_GSO_UDP,
    VIRTIO_NET_HDR_GSO_UDP_L4,
    CaseSpec,
    build_frame,
)

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
ETHTOOL_NO_OFFLOAD = "tx off tso off gso on txvlan on"
ETHTOOL_CSUM = "tx on tso off gso on txvlan on"
ETHTOOL_TSO = "tx on tso on gso on txvlan on"
RESERVED_LABELS = (0, 1, 2, 4, 5, 7, 13, 14, 15)  # 3 (implicit null) is refused by act_mpls
MAX_LABEL = 1048575
VETH_MAX_MTU = 65535
GSO_BY_FRAGS = 0xFFFF
MAX_IP_PACKET = 65535


# -- small draws -----------------------------------------------------------------------------------
def draw_tcp_options(rng: random.Random) -> str:
    """A valid mix of NOP/MSS/WS/SACK-permitted/SACK/timestamps, padded to 4 bytes, at most 40."""
    if rng.random() < 0.25:
        return ""
    pool = [b"\x02\x04" + struct.pack("!H", rng.randint(536, 9000)),
            b"\x03\x03" + bytes([rng.randint(0, 14)]),
            b"\x04\x02",
            b"\x08\x0a" + struct.pack("!II", rng.getrandbits(32), rng.getrandbits(32)),
            b"\x05" + bytes([2 + 8 * rng.randint(1, 3)])]
    pool[4] += bytes(rng.getrandbits(8) for _ in range(pool[4][1] - 2))
    chosen = [option for option in pool if rng.random() < 0.45] or [pool[3]]
    rng.shuffle(chosen)
    out = b""
    for option in chosen:
        nops = b"\x01" * rng.choice((0, 0, 1, 2))
        if len(out) + len(nops) + len(option) <= 40:
            out += nops + option
    pad = -len(out) % 4
    out += (b"\x00" if rng.random() < 0.3 else b"\x01") * pad
    return out.hex()


def draw_ip_options(rng: random.Random) -> str:
    """IPv4 options (NOP, record route, router alert, timestamp), EOL-padded, at most 40 bytes."""
    out = b""
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(("nop", "rr", "ra", "ts"))
        if kind == "nop":
            option = b"\x01"
        elif kind == "ra":
            option = b"\x94\x04\x00\x00"
        elif kind == "rr":
            slots = rng.randint(1, 6)
            option = bytes([7, 3 + 4 * slots, 4]) + b"\0" * (4 * slots)
        else:
            slots = rng.randint(1, 4)
            option = bytes([68, 4 + 4 * slots, 5, 0]) + b"\0" * (4 * slots)
        if len(out) + len(option) <= 40:
            out += option
    return (out + b"\0" * (-len(out) % 4)).hex()


def draw_label(rng: random.Random) -> int:
    """A label: reserved ones (never 3), the maximum, or anything from 16 up."""
    roll = rng.random()
    if roll < 0.15:
        return rng.choice(RESERVED_LABELS)
    if roll < 0.22:
        return MAX_LABEL
    return rng.randint(16, MAX_LABEL)


def draw_labels(rng: random.Random, count: int) -> list[list]:
    """``count`` label pushes, all unicast, all multicast or (rarely) mixed; TTL 1-255 (tc refuses 0)."""
    mode = rng.choice(("uc", "uc", "mc", "mixed"))
    return [[draw_label(rng), rng.randint(0, 7), rng.randint(1, 255),
             rng.choice(("uc", "mc")) if mode == "mixed" else mode] for _ in range(count)]


def draw_tcp_flags(rng: random.Random) -> int:
    """ACK plus a random subset of the others (SYN/RST rarely)."""
    flags = ACK
    for flag, chance in ((FIN, 0.3), (PSH, 0.4), (URG, 0.2), (ECE, 0.25), (CWR, 0.25), (SYN, 0.05), (RST, 0.05)):
        if rng.random() < chance:
            flags |= flag
    return flags


def draw_ext_headers(rng: random.Random) -> list[str]:
    """1-3 IPv6 extension headers in RFC 8200 order: hop-by-hop, destination, routing, destination."""
    chain: list[str] = []
    while not chain:
        if rng.random() < 0.5:
            chain.append(f"hop:{rng.randint(0, 2)}")
        if rng.random() < 0.3:
            chain.append(f"dst:{rng.randint(0, 1)}")
        if rng.random() < 0.5:
            chain.append(f"rt:{rng.randint(1, 3)}")
        if rng.random() < 0.4:
            chain.append(f"dst:{rng.randint(0, 2)}")
    return chain[:3]


def ip_ids(rng: random.Random) -> int:
    """An IPv4 ID, often close to the 16-bit wrap."""
    return rng.choice((rng.randint(0, 0xFFFF), 0xFFFF - rng.randint(0, 6)))


# -- a base spec and the categories ------------------------------------------------------------------
def base_spec(rng: random.Random, name: str, category: str, ip_version: int, l4: str) -> CaseSpec:
    """Random headers for the given family and transport; GSO fields are the category's to set."""
    spec = CaseSpec(name=name, category=category, ip_version=ip_version, l4=l4, payload_salt=rng.randint(0, 255))
    if l4 == "tcp":
        spec.tcp_options = draw_tcp_options(rng)
        spec.tcp_flags = draw_tcp_flags(rng)
        spec.urg_ptr = rng.randint(1, 65535) if spec.tcp_flags & URG else 0
        spec.seq, spec.ack, spec.window = rng.getrandbits(32), rng.getrandbits(32), rng.randint(0, 65535)
        spec.gso_type = VIRTIO_NET_HDR_GSO_TCPV6 if ip_version == 6 else VIRTIO_NET_HDR_GSO_TCPV4
        if rng.random() < 0.25:
            spec.gso_type |= VIRTIO_NET_HDR_GSO_ECN
    else:
        spec.gso_type = VIRTIO_NET_HDR_GSO_UDP
    if ip_version == 4:
        spec.df = rng.random() < 0.6
        spec.ip_id, spec.tos, spec.ttl = ip_ids(rng), rng.randint(0, 255), rng.randint(1, 255)
        if rng.random() < 0.25:
            spec.ip_options = draw_ip_options(rng)
    else:
        spec.tclass, spec.flow_label, spec.hop_limit = rng.randint(0, 255), rng.randint(0, 0xFFFFF), rng.randint(1, 255)
    spec.gso_size = rng.randint(64, 1400)
    spec.paylen = payload_for(rng, spec.gso_size, max_segments=12)
    spec.labels = draw_labels(rng, rng.choice((1, 1, 2, 2, 3, 4)))
    return spec


def payload_for(rng: random.Random, gso_size: int, max_segments: int) -> int:
    """A payload of 2..max_segments segments, sometimes an exact multiple of gso_size."""
    segments = rng.randint(2, max_segments)
    if rng.random() < 0.25:
        return gso_size * segments
    return gso_size * (segments - 1) + rng.randint(1, gso_size)


def family(rng: random.Random) -> int:
    return 6 if rng.random() < 0.45 else 4


def cat_ipv4_tcp(rng: random.Random, name: str) -> CaseSpec:
    spec = base_spec(rng, name, "ipv4_tcp", 4, "tcp")
    if rng.random() < 0.5:
        spec.ip_options = draw_ip_options(rng)
    return spec


def cat_ipv6_tcp(rng: random.Random, name: str) -> CaseSpec:
    return base_spec(rng, name, "ipv6_tcp", 6, "tcp")


def cat_ipv6_tcp_exthdr(rng: random.Random, name: str) -> CaseSpec:
    spec = base_spec(rng, name, "ipv6_tcp_exthdr", 6, "tcp")
    spec.ext_headers = draw_ext_headers(rng)
    return spec


def cat_ipv6_udp_ufo_exthdr(rng: random.Random, name: str) -> CaseSpec:
    spec = base_spec(rng, name, "ipv6_udp_ufo_exthdr", 6, "udp")
    spec.ext_headers = draw_ext_headers(rng)
    ufo_sizes(rng, spec)
    return spec


def cat_ipv4_udp_ufo(rng: random.Random, name: str) -> CaseSpec:
    spec = base_spec(rng, name, "ipv4_udp_ufo", 4, "udp")
    ufo_sizes(rng, spec)
    return spec


def cat_ipv6_udp_ufo(rng: random.Random, name: str) -> CaseSpec:
    spec = base_spec(rng, name, "ipv6_udp_ufo", 6, "udp")
    ufo_sizes(rng, spec)
    return spec


def ufo_sizes(rng: random.Random, spec: CaseSpec) -> None:
    """UFO gso_size: usually a multiple of 8 (fragment offsets), sometimes not (the kernel does not check)."""
    spec.gso_size = rng.randint(8, 175) * 8 if rng.random() < 0.75 else rng.randint(64, 1400)
    spec.paylen = payload_for(rng, spec.gso_size, max_segments=8)


def udp_gso_sizes(rng: random.Random, spec: CaseSpec, uso_share: float) -> None:
    """A UDP spec's GSO: USO (gso_type 5: 6.1 refuses it, 6.12 takes it) ``uso_share`` of the time,
    datagrams of 64-1400 bytes, else UFO (:func:`ufo_sizes`)."""
    if rng.random() < uso_share:
        spec.gso_type = VIRTIO_NET_HDR_GSO_UDP_L4
        spec.gso_size = rng.randint(64, 1400)
        spec.paylen = payload_for(rng, spec.gso_size, max_segments=8)
    else:
        ufo_sizes(rng, spec)


def cat_deep_stack(rng: random.Random, name: str) -> CaseSpec:
    l4 = "udp" if rng.random() < 0.25 else "tcp"
    spec = base_spec(rng, name, "deep_stack", family(rng), l4)
    if l4 == "udp":
        ufo_sizes(rng, spec)
    spec.labels = draw_labels(rng, rng.randint(5, 8))
    return spec


def draw_vlan(rng: random.Random) -> list:
    return [rng.randint(1, 4094), rng.randint(0, 7), rng.choice(("802.1Q", "802.1Q", "802.1ad"))]


def cat_vlan_tc(rng: random.Random, name: str) -> CaseSpec:
    spec = base_spec(rng, name, "vlan_tc", family(rng), "tcp")
    spec.vlan_pushes = [draw_vlan(rng) for _ in range(rng.choice((1, 1, 2)))]
    spec.vlan_after_mpls = rng.random() < 0.6
    spec.labels = draw_labels(rng, rng.choice((0, 1, 2, 3)))
    if rng.random() < 0.5:
        spec.ethtool_veth0 = ETHTOOL_NO_OFFLOAD.replace("txvlan on", "txvlan off")
    return spec


def cat_vlan_dev(rng: random.Random, name: str) -> CaseSpec:
    spec = base_spec(rng, name, "vlan_dev", family(rng), "tcp")
    spec.tx_vlan = [rng.randint(1, 4094), rng.choice(("802.1Q", "802.1ad"))]
    spec.labels = draw_labels(rng, rng.choice((0, 1, 2)))
    if rng.random() < 0.3:
        spec.vlan_pushes = [draw_vlan(rng)]
    if rng.random() < 0.4:
        spec.ethtool_veth0 = ETHTOOL_NO_OFFLOAD.replace("txvlan on", "txvlan off")
    return spec


def cat_vlan_ufo(rng: random.Random, name: str) -> CaseSpec:
    spec = base_spec(rng, name, "vlan_ufo", family(rng), "udp")
    ufo_sizes(rng, spec)
    if rng.random() < 0.6:
        spec.vlan_pushes = [draw_vlan(rng) for _ in range(rng.choice((1, 1, 2)))]
        spec.vlan_after_mpls = rng.random() < 0.6
    else:
        spec.tx_vlan = [rng.randint(1, 4094), rng.choice(("802.1Q", "802.1ad"))]
    spec.labels = draw_labels(rng, rng.choice((0, 1, 2)))
    if rng.random() < 0.3:
        spec.ethtool_veth0 = ETHTOOL_NO_OFFLOAD.replace("txvlan on", "txvlan off")
    return spec


def cat_jumbo(rng: random.Random, name: str) -> CaseSpec:
    l4 = "udp" if rng.random() < 0.3 else "tcp"
    spec = base_spec(rng, name, "jumbo", family(rng), l4)
    spec.veth_mtu = 9000
    spec.gso_size = rng.randint(1500, 8800) // 8 * 8 if l4 == "udp" else rng.randint(1500, 8900)
    spec.paylen = payload_for(rng, spec.gso_size, max_segments=4)
    return spec


def cat_csum_offload(rng: random.Random, name: str) -> CaseSpec:
    l4 = "udp" if rng.random() < 0.3 else "tcp"
    spec = base_spec(rng, name, "csum_offload", family(rng), l4)
    if l4 == "udp":
        ufo_sizes(rng, spec)
    spec.ethtool_veth0 = rng.choice((ETHTOOL_CSUM, ETHTOOL_CSUM, ETHTOOL_TSO))
    spec.labels = draw_labels(rng, rng.choice((0, 1, 1, 2)))
    if rng.random() < 0.25:
        spec.vlan_pushes = [draw_vlan(rng)]
    return spec


def cat_payload_edge(rng: random.Random, name: str) -> CaseSpec:
    l4 = "udp" if rng.random() < 0.3 else "tcp"
    spec = base_spec(rng, name, "payload_edge", family(rng), l4)
    gso = spec.gso_size = rng.choice((rng.randint(1, 63), rng.randint(64, 1400), 1448, 1440))
    # UFO judges "is this GSO" by payload + UDP header, TCP by payload alone
    header = 8 if l4 == "udp" else 0
    k = rng.randint(2, 6)
    spec.paylen = max(1, rng.choice((k * gso, k * gso - 1, k * gso + 1, gso + 1, gso - header, gso - header + 1,
                                     gso - header - 1, 1)))
    if spec.l4 == "tcp" and spec.paylen <= gso < spec.paylen + len(bytes.fromhex(spec.tcp_options)):
        spec.tcp_options = ""  # the optlen band has its own category
    spec.labels = draw_labels(rng, rng.choice((0, 1, 2)))
    return spec


def cat_optlen_band(rng: random.Random, name: str) -> CaseSpec:
    spec = base_spec(rng, name, "optlen_band", family(rng), "tcp")
    while len(spec.tcp_options) < 8:
        spec.tcp_options = draw_tcp_options(rng)
    option_len = len(bytes.fromhex(spec.tcp_options))
    spec.paylen = rng.randint(max(1, spec.gso_size - option_len + 1), spec.gso_size)
    return spec


def cat_no_needs_csum(rng: random.Random, name: str) -> CaseSpec:
    l4 = "udp" if rng.random() < 0.3 else "tcp"
    spec = base_spec(rng, name, "no_needs_csum", family(rng), l4)
    if l4 == "udp":
        ufo_sizes(rng, spec)
    spec.vnet_flags = 0
    return spec


def cat_no_mpls(rng: random.Random, name: str) -> CaseSpec:
    l4 = "udp" if rng.random() < 0.3 else "tcp"
    spec = base_spec(rng, name, "no_mpls", family(rng), l4)
    if l4 == "udp":
        ufo_sizes(rng, spec)
    spec.labels = []
    spec.ethtool_veth0 = rng.choice((ETHTOOL_NO_OFFLOAD, ETHTOOL_NO_OFFLOAD, ETHTOOL_CSUM, ETHTOOL_TSO))
    return spec


INVALID_KINDS = ("wrong_family", "gso_size_0", "gso_by_frags", "csum_offset_udp_on_tcp", "csum_offset_beyond",
                 "hdr_len_beyond_len", "csum_start_beyond", "gso_udp_l4", "gso_type_unknown", "ufo_on_tcp",
                 "tcp_on_udp", "csum_start_in_ip_header")


def cat_invalid(rng: random.Random, name: str, index: int, cycle: tuple[str, ...] | None = None) -> CaseSpec:
    """Metadata the kernel must judge: most of it refused (virtio_net_hdr_to_skb, packet_snd, GSO)."""
    cycle = cycle or CYCLE
    slots = [position for position, name in enumerate(cycle) if name == "invalid"]
    ordinal = (index // len(cycle)) * len(slots) + slots.index(index % len(cycle))
    kind = INVALID_KINDS[ordinal % len(INVALID_KINDS)]
    l4 = "udp" if kind == "tcp_on_udp" else "tcp"
    spec = base_spec(rng, name, "invalid_" + kind, family(rng), l4)
    spec.paylen = max(spec.paylen, spec.gso_size + 1)
    frame, vnet = build_frame(spec)
    tcp_type = VIRTIO_NET_HDR_GSO_TCPV6 if spec.ip_version == 6 else VIRTIO_NET_HDR_GSO_TCPV4
    if kind == "wrong_family":
        spec.gso_type = VIRTIO_NET_HDR_GSO_TCPV4 if spec.ip_version == 6 else VIRTIO_NET_HDR_GSO_TCPV6
    elif kind == "gso_size_0":
        spec.gso_size = 0
    elif kind == "gso_by_frags":
        spec.gso_size = GSO_BY_FRAGS
    elif kind == "csum_offset_udp_on_tcp":
        spec.csum_offset = 6
    elif kind == "csum_offset_beyond":
        spec.csum_offset = len(frame)
    elif kind == "hdr_len_beyond_len":
        spec.hdr_len = len(frame) + rng.randint(1, 64)
    elif kind == "csum_start_beyond":
        spec.csum_start = len(frame) + rng.randint(0, 64)
    elif kind == "gso_udp_l4":
        spec.gso_type = VIRTIO_NET_HDR_GSO_UDP_L4
    elif kind == "gso_type_unknown":
        spec.gso_type = rng.choice((2, 6, 7))
    elif kind == "ufo_on_tcp":
        spec.gso_type = VIRTIO_NET_HDR_GSO_UDP
    elif kind == "tcp_on_udp":
        spec.gso_type, spec.csum_offset = tcp_type, 16
    elif kind == "csum_start_in_ip_header":
        spec.csum_start = vnet["csum_start"] - 20
    return spec


ODD_KINDS = ("hdr_len_short", "hdr_len_long", "flags_data_valid", "flags_needs_csum_data_valid", "ecn_on_ufo",
             "sll_protocol_zero", "sll_protocol_all", "sll_protocol_other_family", "tiny_gso_size",
             "no_needs_csum_exthdr", "csum_offload_exthdr", "seed_zero", "seed_full", "sll_protocol_vlan",
             "sll_protocol_mpls")
VIRTIO_NET_HDR_F_DATA_VALID = 2
ETH_P_ALL = 0x0003


def apply_metadata(rng: random.Random, spec: CaseSpec, kind: str) -> None:
    """Give ``spec`` the unusual metadata ``kind`` names (ODD_KINDS, MIX_METADATA), drawn from ``rng``
    against the frame and virtio header the spec builds so far."""
    frame, vnet = build_frame(spec)
    if kind == "hdr_len_short":
        spec.hdr_len = rng.randint(0, vnet["hdr_len"] - 1)
    elif kind == "hdr_len_long":
        spec.hdr_len = rng.randint(vnet["hdr_len"] + 1, len(frame))
    elif kind == "flags_data_valid":
        spec.vnet_flags = VIRTIO_NET_HDR_F_DATA_VALID
    elif kind == "flags_needs_csum_data_valid":
        spec.vnet_flags = VIRTIO_NET_HDR_F_DATA_VALID | 1
    elif kind == "ecn_on_ufo":
        spec.gso_type = VIRTIO_NET_HDR_GSO_UDP | VIRTIO_NET_HDR_GSO_ECN
    elif kind == "sll_protocol_zero":
        spec.sll_protocol = 0
    elif kind == "sll_protocol_all":
        spec.sll_protocol = ETH_P_ALL
    elif kind == "sll_protocol_vlan":
        spec.sll_protocol = rng.choice((0x8100, 0x88A8))
    elif kind == "sll_protocol_mpls":
        spec.sll_protocol = rng.choice((0x8847, 0x8848))
    elif kind == "sll_protocol_other_family":
        spec.sll_protocol = 0x0800 if spec.ip_version == 6 else 0x86DD
    elif kind == "tiny_gso_size":
        spec.gso_size = rng.randint(1, 16)
        spec.paylen = payload_for(rng, spec.gso_size, max_segments=40)
    elif kind == "no_needs_csum_exthdr":
        spec.ext_headers, spec.vnet_flags = draw_ext_headers(rng), 0
    elif kind == "csum_offload_exthdr":
        spec.ext_headers, spec.ethtool_veth0 = draw_ext_headers(rng), rng.choice((ETHTOOL_CSUM, ETHTOOL_TSO))
    elif kind in ("seed_zero", "seed_full"):
        spec.l4_seed = kind[len("seed_"):]
    elif kind == "csum_start_shift":
        spec.csum_start = vnet["csum_start"] + rng.choice((1, 2, 4, 8, -2, -4, -8))
    elif kind == "no_needs_csum":
        spec.vnet_flags = 0
    else:
        raise ValueError(f"unknown metadata kind {kind!r}")


def cat_odd_metadata(rng: random.Random, name: str, index: int, cycle: tuple[str, ...] | None = None) -> CaseSpec:
    """Unusual but possibly valid metadata: hdr_len off, other virtio flags, sll_protocol, checksum seeds."""
    cycle = cycle or CYCLE
    slots = [position for position, category in enumerate(cycle) if category == "odd_metadata"]
    kind = ODD_KINDS[((index // len(cycle)) * len(slots) + slots.index(index % len(cycle))) % len(ODD_KINDS)]
    l4 = "udp" if kind == "ecn_on_ufo" or (kind != "tiny_gso_size" and rng.random() < 0.3) else "tcp"
    ip_version = 6 if kind.endswith("exthdr") or kind == "sll_protocol_other_family" and rng.random() < 0.5 \
        else family(rng)
    spec = base_spec(rng, name, "odd_" + kind, ip_version, l4)
    if l4 == "udp":
        ufo_sizes(rng, spec)
    apply_metadata(rng, spec, kind)
    return spec


Category = Callable[[random.Random, str], CaseSpec]
CATEGORIES: dict[str, Category] = {
    "ipv4_tcp": cat_ipv4_tcp,
    "ipv6_tcp": cat_ipv6_tcp,
    "ipv6_tcp_exthdr": cat_ipv6_tcp_exthdr,
    "ipv4_udp_ufo": cat_ipv4_udp_ufo,
    "ipv6_udp_ufo": cat_ipv6_udp_ufo,
    "ipv6_udp_ufo_exthdr": cat_ipv6_udp_ufo_exthdr,
    "deep_stack": cat_deep_stack,
    "vlan_tc": cat_vlan_tc,
    "vlan_dev": cat_vlan_dev,
    "vlan_ufo": cat_vlan_ufo,
    "jumbo": cat_jumbo,
    "csum_offload": cat_csum_offload,
    "payload_edge": cat_payload_edge,
    "optlen_band": cat_optlen_band,
    "no_needs_csum": cat_no_needs_csum,
    "no_mpls": cat_no_mpls,
}
USO_INVALID_KINDS = ("ecn", "csum_offset_tcp", "no_needs_csum", "too_many_segments", "gso_size_0")
UDP_MAX_SEGMENTS_6_12 = 128  # include/linux/udp.h since v6.10 (was 64)


def cat_udp_l4(rng: random.Random, name: str) -> CaseSpec:
    """USO through the virtio header (gso_type 5, 6.2 and later): UDP datagrams of gso_size each."""
    spec = base_spec(rng, name, "udp_l4", family(rng), "udp")
    spec.gso_type = VIRTIO_NET_HDR_GSO_UDP_L4
    spec.gso_size = rng.choice((rng.randint(1, 63), rng.randint(64, 1472), rng.randint(64, 1472)))
    spec.paylen = min(payload_for(rng, spec.gso_size, max_segments=rng.choice((8, 8, 40, 64))), 60000)
    if spec.ip_version == 6 and rng.random() < 0.3:
        spec.ext_headers = draw_ext_headers(rng)
    spec.labels = draw_labels(rng, rng.choice((0, 0, 1, 2, 3)))
    roll = rng.random()
    if roll < 0.2:
        spec.vlan_pushes = [draw_vlan(rng)]
    elif roll < 0.3:
        spec.tx_vlan = [rng.randint(1, 4094), rng.choice(("802.1Q", "802.1ad"))]
    spec.ethtool_veth0 = rng.choice((ETHTOOL_NO_OFFLOAD, ETHTOOL_NO_OFFLOAD, ETHTOOL_CSUM + " tx-udp-segmentation off",
                                     ETHTOOL_CSUM + " tx-udp-segmentation on", ETHTOOL_TSO))
    if rng.random() < 0.1:
        spec.vnet_flags |= VIRTIO_NET_HDR_F_DATA_VALID
    return spec


def cat_invalid_udp_l4(rng: random.Random, name: str, index: int) -> CaseSpec:
    """USO metadata the 6.2+ virtio path must judge (its UDP_L4 checks)."""
    kind = USO_INVALID_KINDS[(index // len(CYCLE_6_12)) % len(USO_INVALID_KINDS)]
    spec = cat_udp_l4(rng, name)
    spec.category = "invalid_udp_l4_" + kind
    spec.ext_headers, spec.vlan_pushes, spec.tx_vlan = [], [], None
    spec.vnet_flags = VIRTIO_NET_HDR_F_NEEDS_CSUM
    if kind == "ecn":
        spec.gso_type |= VIRTIO_NET_HDR_GSO_ECN
    elif kind == "csum_offset_tcp":
        spec.csum_offset = 16
    elif kind == "no_needs_csum":
        spec.vnet_flags = 0
    elif kind == "too_many_segments":
        spec.gso_size = rng.randint(8, 400)
        spec.paylen = spec.gso_size * UDP_MAX_SEGMENTS_6_12 + rng.randint(1, spec.gso_size)
    elif kind == "gso_size_0":
        spec.gso_size = 0
    return spec


def cat_label_ops(rng: random.Random, name: str) -> CaseSpec:
    """1-4 labels pushed, then 1-4 act_mpls / act_vlan operations: pop (naming the right next protocol
    mostly, sometimes a wrong one: an IP protocol with labels left, MPLS or the other family after the last),
    modify, dec_ttl (sometimes at TTL 1: act_mpls drops the packet), another push after pops, and a VLAN
    pop of a tag pushed by tc or by a VLAN device; a third of them on a device with checksum offload or TSO."""
    l4 = "udp" if rng.random() < 0.25 else "tcp"
    spec = base_spec(rng, name, "label_ops", family(rng), l4)
    if l4 == "udp":
        ufo_sizes(rng, spec)
    spec.labels = draw_labels(rng, rng.choice((1, 2, 2, 3, 4)))
    if rng.random() < 0.3:
        spec.labels[-1][2] = rng.choice((1, 2))  # the top label's TTL, for dec_ttl
    tagged = rng.random() < 0.3
    if tagged and rng.random() < 0.5:
        spec.vlan_pushes = [draw_vlan(rng)]
        spec.vlan_after_mpls = rng.random() < 0.5
    elif tagged:
        spec.tx_vlan = [rng.randint(1, 4094), rng.choice(("802.1Q", "802.1ad"))]
    own = "ip" if spec.ip_version == 4 else "ipv6"
    other = "ipv6" if own == "ip" else "ip"
    left, mpls = len(spec.labels), True
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(("pop", "pop", "modify", "dec_ttl", "push", "vlan_pop" if tagged else "pop"))
        if op == "vlan_pop":
            spec.label_ops.append("vlan pop")
            tagged = False
        elif op == "push" or not mpls:
            label = draw_label(rng)
            spec.label_ops.append(f"mpls push protocol mpls_{rng.choice(('uc', 'uc', 'mc'))} label {label} "
                                  f"tc {rng.randint(0, 7)} ttl {rng.randint(1, 255)}")
            left, mpls = left + 1, True
        elif op == "pop":
            left -= 1
            if left:
                proto = rng.choice(("mpls_uc", "mpls_uc", "mpls_mc", own))
            else:
                proto = rng.choice((own, own, own, "mpls_uc", other))
            spec.label_ops.append(f"mpls pop protocol {proto}")
            mpls = proto.startswith("mpls")
            if not mpls:
                left = 0  # no longer MPLS to act_mpls, whatever the bytes hold
        elif op == "modify":
            fields = [f"label {draw_label(rng)}", f"tc {rng.randint(0, 7)}", f"ttl {rng.randint(1, 255)}"]
            chosen = [f for f in fields if rng.random() < 0.5] or [rng.choice(fields)]
            spec.label_ops.append("mpls modify " + " ".join(chosen))
        else:
            spec.label_ops.append("mpls dec_ttl")
    if rng.random() < 0.3:
        spec.ethtool_veth0 = rng.choice((ETHTOOL_CSUM, ETHTOOL_TSO))
    return spec


def cat_csum_start_shift(rng: random.Random, name: str) -> CaseSpec:
    """NEEDS_CSUM with csum_start off the transport header by a few bytes (behind it, inside the TCP header
    or the payload; or before it, inside the IP header), csum_offset the protocol's own: the virtio header
    takes it, GSO finds the transport header from the IP header (tcp_gso_segment compares the two)."""
    l4 = "udp" if rng.random() < 0.3 else "tcp"
    spec = base_spec(rng, name, "csum_start_shift", family(rng), l4)
    if l4 == "udp":
        ufo_sizes(rng, spec)
    spec.labels = draw_labels(rng, rng.choice((0, 0, 1, 2)))
    spec.ethtool_veth0 = rng.choice((ETHTOOL_NO_OFFLOAD, ETHTOOL_NO_OFFLOAD, ETHTOOL_CSUM, ETHTOOL_TSO))
    frame, vnet = build_frame(spec)
    spec.csum_start = vnet["csum_start"] + rng.choice((1, 2, 4, 8, 12, 20, -2, -4, -8))
    return spec


PACKET_SOCKET_MAX_PAYLOAD = 17 * 4096  # packet_alloc_skb: all but hdr_len in MAX_SKB_FRAGS order-0 pages
GRO_LEGACY_MAX_SIZE = 65536


def cat_big_packets(rng: random.Random, name: str) -> CaseSpec:
    """Super-packets near and past 64 KB of L3 (the packet socket takes up to 17 pages behind hdr_len):
    IPv6 TCP with the BIG TCP jumbo hop-by-hop header (payload length 0 mostly, sometimes the true length's
    low 16 bits), sometimes more extension headers behind it; IPv6 and IPv4 TCP or UFO with length fields
    that wrap (or are 0); L3 lengths on both sides of GRO_LEGACY_MAX_SIZE, the length ipv6_gso_segment
    judges the jumbo header by; 0-2 labels, a VLAN sometimes, every device profile."""
    ip_version = 6 if rng.random() < 0.7 else 4
    l4 = "udp" if rng.random() < 0.15 else "tcp"
    spec = base_spec(rng, name, "big_packets", ip_version, l4)
    spec.gso_size = rng.choice((1448, 8948, rng.randint(1000, 8900), rng.randint(500, 1400)))
    if l4 == "udp":
        spec.gso_size = spec.gso_size // 8 * 8
    if ip_version == 6 and l4 == "tcp" and rng.random() < 0.75:
        spec.ext_headers = ["jumbo"] + (["dst:0"] if rng.random() < 0.15 else [])
        spec.l3_len_field = "zero" if rng.random() < 0.8 else "exact"
    elif rng.random() < 0.3:
        spec.l3_len_field = "zero"
    band = rng.choice(("edge", "edge", "over", "below"))
    target = {"edge": GRO_LEGACY_MAX_SIZE + rng.randint(-24, 24), "over": rng.randint(65561, 69400),
              "below": rng.randint(20000, 65500)}[band]
    spec.paylen = 0
    _, vnet = build_frame(spec)
    spec.paylen = max(1, min(target - (vnet["hdr_len"] - 14), PACKET_SOCKET_MAX_PAYLOAD))
    spec.labels = draw_labels(rng, rng.choice((0, 0, 0, 1, 2)))
    roll = rng.random()
    if roll < 0.2:
        spec.vlan_pushes = [draw_vlan(rng)]
        spec.vlan_after_mpls = rng.random() < 0.5
    elif roll < 0.3:
        spec.tx_vlan = [rng.randint(1, 4094), rng.choice(("802.1Q", "802.1ad"))]
    spec.ethtool_veth0 = rng.choice((ETHTOOL_NO_OFFLOAD, ETHTOOL_NO_OFFLOAD, ETHTOOL_CSUM, ETHTOOL_TSO))
    if roll < 0.2 and rng.random() < 0.5:
        spec.ethtool_veth0 = spec.ethtool_veth0.replace("txvlan on", "txvlan off")
    return spec


def draw_unusual_ext_headers(rng: random.Random) -> list[str]:
    """1-4 extension headers in any order: hop-by-hop anywhere, destination options with a Home Address
    option (after a routing header, where ip6_find_1stfragopt keeps it in the unfragmentable part),
    sometimes a Fragment header or one GSO does not walk (253, AH's 51)."""
    pool = ["hop:0", "hop:1", "dst:0", "dst:1", "rt:1", "rt:2", "hao:2", "hao:3", "hao:2"]
    chain = [rng.choice(pool) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.5:
        chain[rng.randrange(len(chain)):0] = ["rt:1"]
        chain.append(rng.choice(("hao:2", "hao:3", "dst:0")))
    if rng.random() < 0.12:
        chain.insert(rng.randrange(len(chain) + 1), rng.choice(("frag", "other:253", "other:51")))
    return chain[:5]


def cat_exthdr_more(rng: random.Random, name: str) -> CaseSpec:
    """IPv6 TCP or UFO behind extension headers the cycle never draws (draw_unusual_ext_headers); NEEDS_CSUM
    or not (the flow dissector's walk), 0-2 labels, every device profile."""
    l4 = "udp" if rng.random() < 0.5 else "tcp"
    spec = base_spec(rng, name, "exthdr_more", 6, l4)
    if l4 == "udp":
        ufo_sizes(rng, spec)
    spec.ext_headers = draw_unusual_ext_headers(rng)
    spec.labels = draw_labels(rng, rng.choice((0, 0, 1, 2)))
    if rng.random() < 0.2:
        spec.vnet_flags = 0
    spec.ethtool_veth0 = rng.choice((ETHTOOL_NO_OFFLOAD, ETHTOOL_NO_OFFLOAD, ETHTOOL_CSUM, ETHTOOL_TSO))
    return spec


TSO_KNOBS = ("tx-tcp-segmentation", "tx-tcp6-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation")


def cat_ethtool_knobs(rng: random.Random, name: str) -> CaseSpec:
    """veth0's offloads set one by one rather than by the `tso` group: each TCP segmentation feature on
    or off (IPv4, IPv6, ECN, IPv4 ID mangling), scatter-gather off sometimes, `tx-udp-segmentation`
    named or left as `tx` and `tso` leave it; TCP (the ECN bit half the time), UFO, or USO (gso_type 5:
    6.1 refuses it); 0-2 labels, a tc VLAN push sometimes."""
    l4 = "udp" if rng.random() < 0.3 else "tcp"
    spec = base_spec(rng, name, "ethtool_knobs", family(rng), l4)
    if l4 == "udp":
        udp_gso_sizes(rng, spec, 0.5)
    elif rng.random() < 0.5:
        spec.gso_type |= VIRTIO_NET_HDR_GSO_ECN
    spec.labels = draw_labels(rng, rng.choice((0, 0, 1, 2)))
    if rng.random() < 0.15:
        spec.vlan_pushes = [draw_vlan(rng)]
    parts = ["tx on" if rng.random() < 0.85 else "tx off", "gso on", "txvlan on"]
    parts += [f"{knob} {rng.choice(('on', 'off'))}" for knob in TSO_KNOBS]
    if rng.random() < 0.5:
        parts.append(f"tx-udp-segmentation {rng.choice(('on', 'off'))}")
    if rng.random() < 0.2:
        parts.append("sg off")
    spec.ethtool_veth0 = " ".join(parts)
    return spec


NO_GSO_CSUM_KINDS = ("own", "own", "own", "other_l4_offset", "ip_header", "payload", "last_bytes", "l4_zero")


def cat_no_gso(rng: random.Random, name: str) -> CaseSpec:
    """gso_type NONE: one packet that fits the MTU, which no GSO handler sees. NEEDS_CSUM (the protocol's own
    checksum, or csum_start/csum_offset elsewhere: the other transport's offset, the IPv4 header checksum from
    the network header, inside the payload, the last two bytes), no flag, DATA_VALID or both; a gso_size the
    virtio header ignores; sometimes a UDP payload whose checksum folds to 0 (skb_checksum_help sends
    CSUM_MANGLED_0); TCP or UDP, IPv6 extension headers sometimes, 0-3 labels, label operations or a VLAN
    sometimes, every device profile, MTU 1500 or 9000 (a frame longer than a page is not linear behind
    hdr_len)."""
    l4 = "udp" if rng.random() < 0.4 else "tcp"
    spec = base_spec(rng, name, "no_gso", family(rng), l4)
    spec.gso_type = 0
    spec.gso_size = rng.choice((0, 0, rng.randint(1, 1400)))
    if spec.ip_version == 6 and rng.random() < 0.25:
        spec.ext_headers = draw_ext_headers(rng)
    spec.labels = draw_labels(rng, rng.choice((0, 0, 1, 1, 2, 3)))
    roll = rng.random()
    if roll < 0.15:
        spec.vlan_pushes = [draw_vlan(rng) for _ in range(rng.choice((1, 1, 2)))]
        spec.vlan_after_mpls = rng.random() < 0.5
    elif roll < 0.25:
        spec.tx_vlan = [rng.randint(1, 4094), rng.choice(("802.1Q", "802.1ad"))]
    elif roll < 0.35 and spec.labels:
        own = "ip" if spec.ip_version == 4 else "ipv6"
        spec.label_ops = rng.choice((["mpls dec_ttl"], [f"mpls modify label {draw_label(rng)}"],
                                     [f"mpls pop protocol {own if len(spec.labels) == 1 else 'mpls_uc'}"]))
    spec.ethtool_veth0 = rng.choice((ETHTOOL_NO_OFFLOAD, ETHTOOL_NO_OFFLOAD, ETHTOOL_CSUM, ETHTOOL_TSO))
    if (spec.vlan_pushes or spec.tx_vlan) and rng.random() < 0.4:
        spec.ethtool_veth0 = spec.ethtool_veth0.replace("txvlan on", "txvlan off")
    spec.veth_mtu = 9000 if rng.random() < 0.2 else 1500
    spec.paylen = 0
    frame, vnet = build_frame(spec)
    room = spec.veth_mtu - (len(frame) - 14) - 4 * (len(spec.labels) + len(spec.vlan_pushes) + bool(spec.tx_vlan))
    spec.paylen = rng.choice((rng.randint(1, max(1, room)), max(1, room), rng.randint(1, 64)))
    flags_roll = rng.random()
    spec.vnet_flags = (VIRTIO_NET_HDR_F_NEEDS_CSUM if flags_roll < 0.6 else 0 if flags_roll < 0.8
                       else VIRTIO_NET_HDR_F_DATA_VALID if flags_roll < 0.9
                       else VIRTIO_NET_HDR_F_DATA_VALID | VIRTIO_NET_HDR_F_NEEDS_CSUM)
    frame, vnet = build_frame(spec)
    kind = rng.choice(NO_GSO_CSUM_KINDS)
    network = 14
    if kind == "other_l4_offset":
        spec.csum_offset = 6 if l4 == "tcp" else 16
        if vnet["csum_start"] + 18 > len(frame):
            spec.csum_offset = None
    elif kind == "ip_header" and spec.ip_version == 4:
        spec.csum_start, spec.csum_offset, spec.l4_seed = network, 10, "full"
    elif kind == "payload" and spec.paylen > 8:
        payload_at = len(frame) - spec.paylen
        spec.csum_start = payload_at + rng.randint(0, spec.paylen - 4)
        spec.csum_offset = rng.randint(0, len(frame) - spec.csum_start - 2)
    elif kind == "last_bytes":
        spec.csum_start = rng.randint(network, len(frame) - 2)
        spec.csum_offset = len(frame) - 2 - spec.csum_start
    elif kind == "l4_zero" and l4 == "udp" and spec.paylen >= 2:
        spec.payload_fix = "udp_zero"
    return spec


def cat_vlan_offload(rng: random.Random, name: str) -> CaseSpec:
    """VLAN tags on a device that offloads: a VLAN device (802.1Q or 802.1ad) or 1-2 tc VLAN pushes (before or
    after the labels), or both, on veth0 with checksum offload or TSO (the cycle's VLAN categories use a
    device without offloads), txvlan on or off; 0-2 labels, TCP (the ECN bit sometimes) or UFO, either family,
    IPv6 extension headers sometimes."""
    l4 = "udp" if rng.random() < 0.25 else "tcp"
    spec = base_spec(rng, name, "vlan_offload", family(rng), l4)
    if l4 == "udp":
        ufo_sizes(rng, spec)
    if spec.ip_version == 6 and rng.random() < 0.2:
        spec.ext_headers = draw_ext_headers(rng)
    spec.labels = draw_labels(rng, rng.choice((0, 1, 1, 2)))
    roll = rng.random()
    if roll < 0.4 or roll >= 0.75:
        spec.tx_vlan = [rng.randint(1, 4094), rng.choice(("802.1Q", "802.1ad"))]
    if roll >= 0.4:
        spec.vlan_pushes = [draw_vlan(rng) for _ in range(rng.choice((1, 1, 2)))]
        spec.vlan_after_mpls = rng.random() < 0.6
    spec.ethtool_veth0 = rng.choice((ETHTOOL_CSUM, ETHTOOL_TSO, ETHTOOL_TSO))
    if rng.random() < 0.4:
        spec.ethtool_veth0 = spec.ethtool_veth0.replace("txvlan on", "txvlan off")
    return spec


def cat_vlan_dev_knobs(rng: random.Random, name: str) -> CaseSpec:
    """:func:`cat_ethtool_knobs`' packet and veth0 settings (each TCP segmentation feature, scatter-gather, USO,
    the checksum) sent through a VLAN device, whose own features derive from veth0's (vlan_dev_fix_features,
    then netdev_fix_features: no SG, no TSO), a tc VLAN push before or after the labels sometimes."""
    spec = cat_ethtool_knobs(rng, name)
    spec.category = "vlan_dev_knobs"
    spec.tx_vlan = [rng.randint(1, 4094), rng.choice(("802.1Q", "802.1ad"))]
    if rng.random() < 0.4:
        spec.vlan_pushes = [draw_vlan(rng)]
        spec.vlan_after_mpls = rng.random() < 0.5
    if rng.random() < 0.3:
        spec.ethtool_veth0 = spec.ethtool_veth0.replace("txvlan on", "txvlan off")
    return spec


MIX_METADATA = ("hdr_len_short", "hdr_len_long", "flags_data_valid", "flags_needs_csum_data_valid", "sll_protocol_zero",
                "sll_protocol_all", "seed_zero", "seed_full", "csum_start_shift", "no_needs_csum")
MIX_ETHTOOL = (ETHTOOL_NO_OFFLOAD, ETHTOOL_NO_OFFLOAD, ETHTOOL_CSUM, ETHTOOL_TSO, "knobs")


def _mix_path_and_metadata(rng: random.Random, spec: CaseSpec) -> None:
    """The path and metadata half of :func:`cat_mix`: labels, label operations, VLANs (tc, device, STAG
    insertion off), device knobs, jumbo MTU, and one unusual metadata kind a third of the time."""
    if spec.ip_version == 6 and rng.random() < 0.4:
        spec.ext_headers = draw_unusual_ext_headers(rng) if rng.random() < 0.4 else draw_ext_headers(rng)
    if spec.ip_version == 4 and rng.random() < 0.4:
        spec.ip_options = draw_ip_options(rng)
    if spec.ip_version == 4 and rng.random() < 0.15:
        spec.ip_frag_bits = rng.choice((0x8000, 0x2000, 0x2000 | rng.randint(1, 0x1FFF), rng.randint(1, 0x1FFF)))
    if spec.l4 == "udp" and rng.random() < 0.15:
        spec.udp_len_delta = rng.choice((-1, 1, -8, 100, rng.randint(-200, 200)))
    spec.labels = draw_labels(rng, rng.choice((0, 0, 1, 1, 2, 3, 5)))
    if spec.labels and rng.random() < 0.2:
        own = "ip" if spec.ip_version == 4 else "ipv6"
        spec.label_ops = rng.choice((["mpls dec_ttl"], [f"mpls modify label {draw_label(rng)}"],
                                     [f"mpls pop protocol {own if len(spec.labels) == 1 else 'mpls_uc'}"],
                                     ["mpls pop protocol mpls_uc" if len(spec.labels) > 1 else f"mpls pop protocol {own}",
                                      f"mpls push protocol mpls_uc label {draw_label(rng)} tc 1 ttl 9"],
                                     [f"mpls push protocol mpls_{rng.choice(('uc', 'mc'))} label {draw_label(rng)} tc 2 "
                                      f"ttl {rng.randint(1, 255)}"]))
    roll = rng.random()
    if roll < 0.25:
        spec.vlan_pushes = [draw_vlan(rng) for _ in range(rng.choice((1, 1, 2)))]
        spec.vlan_after_mpls = rng.random() < 0.5
    elif roll < 0.4:
        spec.tx_vlan = [rng.randint(1, 4094), rng.choice(("802.1Q", "802.1ad"))]
        if rng.random() < 0.3:
            spec.vlan_pushes = [draw_vlan(rng)]
    if (spec.vlan_pushes or spec.tx_vlan) and rng.random() < 0.35:
        # a run of tc actions behind the pushes: VLAN pops (an in-band tag pulled out of band again), pushes
        # and pops of labels, another VLAN push
        own = "ip" if spec.ip_version == 4 else "ipv6"
        spec.label_ops = [rng.choice(("vlan pop", "vlan pop", f"mpls push protocol mpls_uc label {draw_label(rng)} tc 3 "
                                      "ttl 17", "mpls pop protocol mpls_uc", f"mpls pop protocol {own}",
                                      f"vlan push id {rng.randint(1, 4094)} priority 2", "mpls dec_ttl"))
                          for _ in range(rng.randint(1, 3))]
    ethtool = rng.choice(MIX_ETHTOOL)
    if ethtool == "knobs":
        ethtool = cat_ethtool_knobs(random.Random(rng.random()), "knobs").ethtool_veth0
    if spec.vlan_pushes or spec.tx_vlan:
        if rng.random() < 0.3:
            ethtool = ethtool.replace("txvlan on", "txvlan off")
        if rng.random() < 0.3:
            ethtool += " tx-vlan-stag-hw-insert off"
    spec.ethtool_veth0 = ethtool
    if rng.random() < 0.15:
        spec.veth_mtu = 9000
    if rng.random() < 0.35:
        kind = rng.choice(MIX_METADATA)
        apply_metadata(rng, spec, kind)
        spec.description = f"mix: {kind}"


def _mix_sizes(rng: random.Random, spec: CaseSpec, *, ufo: bool) -> None:
    """gso_size tiny, small, usual or jumbo; a payload of 2-40 segments or at an edge of one."""
    gso = rng.choice((rng.randint(1, 16), rng.randint(17, 400), rng.randint(400, 1448), 1448, rng.randint(1500, 8900)))
    if ufo and rng.random() < 0.75:
        gso = max(8, gso // 8 * 8)
    spec.gso_size = gso
    if rng.random() < 0.2:
        header = 8 if spec.l4 == "udp" else 0
        spec.paylen = max(1, rng.choice((gso - header, gso - header + 1, gso + 1, 2 * gso, 2 * gso - 1)))
    else:
        spec.paylen = payload_for(rng, gso, max_segments=rng.choice((4, 12, 40)))
    spec.paylen = min(spec.paylen, 60000)


def cat_mix(rng: random.Random, name: str) -> CaseSpec:
    """Every dimension the other categories keep apart, drawn independently: TCP or UFO, either family,
    IPv4 options, usual or unusual IPv6 extension headers, tiny to jumbo gso_size, payload edges, 0-5 labels
    and a label operation, tc VLAN pushes and a VLAN device (CTAG or STAG insertion off), every device
    profile or a random knob line, MTU 9000, and one unusual metadata kind (hdr_len, DATA_VALID, sll_protocol
    0 or ETH_P_ALL, checksum seed, csum_start off, no NEEDS_CSUM) a third of the time."""
    l4 = "udp" if rng.random() < 0.3 else "tcp"
    spec = base_spec(rng, name, "mix", family(rng), l4)
    _mix_sizes(rng, spec, ufo=l4 == "udp")
    _mix_path_and_metadata(rng, spec)
    return spec


def cat_uso_mix(rng: random.Random, name: str) -> CaseSpec:
    """:func:`cat_mix` for USO (gso_type 5, which only 6.2 and later accept): up to 128 datagrams."""
    spec = base_spec(rng, name, "uso_mix", family(rng), "udp")
    spec.gso_type = VIRTIO_NET_HDR_GSO_UDP_L4
    _mix_sizes(rng, spec, ufo=False)
    if rng.random() < 0.15:
        spec.gso_size = rng.randint(8, 400)
        spec.paylen = spec.gso_size * rng.choice((UDP_MAX_SEGMENTS_6_12 - 1, UDP_MAX_SEGMENTS_6_12)) \
            + rng.choice((0, 1, -1))
    if rng.random() < 0.1:
        spec.payload_fix = "udp_zero"
    _mix_path_and_metadata(rng, spec)
    return spec


def cat_tc_sequence(rng: random.Random, name: str) -> CaseSpec:
    """2-6 tc actions in any order (``label_ops`` alone): MPLS pushes (uc or mc), 802.1Q and 802.1ad pushes,
    VLAN pops, MPLS pops naming MPLS, the packet's family or the other, modify and dec_ttl; through a VLAN device
    sometimes; TCP or UFO (USO a fifth of the time: 6.1 refuses it), every device profile, txvlan or STAG
    insertion off sometimes."""
    l4 = "udp" if rng.random() < 0.3 else "tcp"
    spec = base_spec(rng, name, "tc_sequence", family(rng), l4)
    if l4 == "udp":
        udp_gso_sizes(rng, spec, 0.3)
    spec.labels = []
    own = "ip" if spec.ip_version == 4 else "ipv6"
    other = "ipv6" if own == "ip" else "ip"
    ops: list[str] = []
    for _ in range(rng.randint(2, 6)):
        kind = rng.choice(("mpls_push", "mpls_push", "mpls_push", "vlan_push", "vlan_push", "vlan_pop", "mpls_pop",
                           "mpls_pop", "modify", "dec_ttl"))
        if kind == "mpls_push":
            label, tc, ttl, cast = draw_labels(rng, 1)[0]
            ops.append(f"mpls push protocol mpls_{cast} label {label} tc {tc} ttl {ttl}")
        elif kind == "vlan_push":
            vid, prio, proto = draw_vlan(rng)
            ops.append(f"vlan push{'' if proto == '802.1Q' else ' protocol ' + proto} id {vid} priority {prio}")
        elif kind == "vlan_pop":
            ops.append("vlan pop")
        elif kind == "mpls_pop":
            ops.append(f"mpls pop protocol {rng.choice(('mpls_uc', 'mpls_uc', own, own, other))}")
        elif kind == "modify":
            ops.append(f"mpls modify label {draw_label(rng)} ttl {rng.randint(1, 255)}")
        else:
            ops.append("mpls dec_ttl")
    spec.label_ops = ops
    if rng.random() < 0.3:
        spec.tx_vlan = [rng.randint(1, 4094), rng.choice(("802.1Q", "802.1ad"))]
    spec.ethtool_veth0 = rng.choice((ETHTOOL_NO_OFFLOAD, ETHTOOL_NO_OFFLOAD, ETHTOOL_CSUM, ETHTOOL_TSO))
    if rng.random() < 0.25:
        spec.ethtool_veth0 = spec.ethtool_veth0.replace("txvlan on", "txvlan off")
    if rng.random() < 0.25:
        spec.ethtool_veth0 += " tx-vlan-stag-hw-insert off"
    return spec


def cat_inband_vlan(rng: random.Random, name: str) -> CaseSpec:
    """1-2 VLAN tags (802.1Q or 802.1ad) in the injected frame itself, sent with sll_protocol the outer tag's
    TPID mostly (packet_parse_headers puts the network header behind the tags), 0 or ETH_P_ALL (the frame's
    type), or the IP ethertype (the packet is set up from it); NEEDS_CSUM or not (the flow dissector), TCP,
    UFO or USO (6.1 refuses it), 0-2 labels and a tc VLAN push or a VLAN device sometimes, every device
    profile."""
    l4 = "udp" if rng.random() < 0.3 else "tcp"
    spec = base_spec(rng, name, "inband_vlan", family(rng), l4)
    if l4 == "udp":
        udp_gso_sizes(rng, spec, 0.3)
    spec.inband_vlans = [draw_vlan(rng) for _ in range(rng.choice((1, 1, 2)))]
    roll = rng.random()
    if roll < 0.15:
        spec.sll_protocol = 0
    elif roll < 0.25:
        spec.sll_protocol = ETH_P_ALL
    elif roll < 0.4:
        spec.sll_protocol = 0x86DD if spec.ip_version == 6 else 0x0800
    spec.labels = draw_labels(rng, rng.choice((0, 0, 1, 2)))
    roll = rng.random()
    if roll < 0.2:
        spec.vlan_pushes = [draw_vlan(rng)]
        spec.vlan_after_mpls = rng.random() < 0.5
    elif roll < 0.3:
        spec.tx_vlan = [rng.randint(1, 4094), rng.choice(("802.1Q", "802.1ad"))]
    if rng.random() < 0.2:
        spec.vnet_flags = 0
    spec.ethtool_veth0 = rng.choice((ETHTOOL_NO_OFFLOAD, ETHTOOL_NO_OFFLOAD, ETHTOOL_CSUM, ETHTOOL_TSO))
    return spec


# drawn only when asked for by name (plan's categories): a plan of the cycle never changes
OPT_IN: dict[str, Category] = {"label_ops": cat_label_ops, "csum_start_shift": cat_csum_start_shift,
                               "big_packets": cat_big_packets, "exthdr_more": cat_exthdr_more,
                               "ethtool_knobs": cat_ethtool_knobs,
                               "no_gso": cat_no_gso, "vlan_offload": cat_vlan_offload,
                               "vlan_dev_knobs": cat_vlan_dev_knobs, "mix": cat_mix, "uso_mix": cat_uso_mix,
                               "tc_sequence": cat_tc_sequence, "inband_vlan": cat_inband_vlan}
UNCLAMPED = frozenset({"big_packets"})  # categories whose packets may pass the 16-bit IP length on purpose

THIN_IN_GOLDEN = ("ipv6_tcp_exthdr", "deep_stack", "vlan_ufo", "jumbo", "csum_offload", "ipv6_udp_ufo_exthdr")
CYCLE: tuple[str, ...] = (*CATEGORIES, "invalid", "odd_metadata", *THIN_IN_GOLDEN, "invalid", "odd_metadata",
                          "odd_metadata")
CYCLE_6_12: tuple[str, ...] = (*CYCLE, "udp_l4", "udp_l4", "invalid_udp_l4")
CYCLES: dict[str, tuple[str, ...]] = {"6.1": CYCLE, "6.12": CYCLE_6_12}


def fit_mtu(spec: CaseSpec) -> None:
    """Raise the veth MTU so that veth1 accepts every segment (it drops frames over MTU + 18)."""
    frame, vnet = build_frame(spec)
    headers = vnet["csum_start"] + (len(bytes.fromhex(spec.tcp_options)) + 20 if spec.l4 == "tcp" else 8)
    if spec.l4 == "udp" and spec.gso_type & ~VIRTIO_NET_HDR_GSO_ECN == VIRTIO_NET_HDR_GSO_UDP_L4:
        segment = headers + max(0, min(spec.gso_size, spec.paylen))  # USO: whole UDP datagrams of gso_size
    elif spec.l4 == "udp":  # UFO: IP fragments carry gso_size bytes of the UDP datagram (+ a fragment header on IPv6)
        segment = vnet["csum_start"] + (8 if spec.ip_version == 6 else 0) + max(spec.gso_size, 8)
    else:
        segment = headers + max(0, min(spec.gso_size, spec.paylen))
    if spec.gso_size == 0 or spec.gso_size >= GSO_BY_FRAGS or spec.paylen <= spec.gso_size:
        segment = max(segment, len(frame))
    tags = len(spec.vlan_pushes) + (1 if spec.tx_vlan else 0) + sum(op.startswith("vlan push") for op in spec.label_ops)
    labels = len(spec.labels) + sum(op.startswith("mpls push") for op in spec.label_ops)
    need = segment + 4 * labels + 4 * tags - 18
    for mtu in (spec.veth_mtu, 9000, 16000, 32000, VETH_MAX_MTU):
        if need <= mtu and mtu >= spec.veth_mtu:
            spec.veth_mtu = mtu
            return
    spec.veth_mtu = VETH_MAX_MTU


def clamp_to_ip_limit(spec: CaseSpec) -> None:
    """Keep the super-packet within one IP packet (total length is a 16-bit field)."""
    frame, vnet = build_frame(spec)
    l3_len = len(frame) - 14
    if l3_len > MAX_IP_PACKET - 64:
        spec.paylen -= l3_len - (MAX_IP_PACKET - 64)


def draw_case(seed: int, index: int, prefix: str = "", generation: str = "6.1",
              opt_in: tuple[str, ...] = ()) -> CaseSpec:
    """Case ``index`` of the plan for ``seed`` on a kernel generation (of the ``opt_in`` categories, in turn,
    when given)."""
    rng = random.Random(f"{seed}/{index}")
    cycle = opt_in or CYCLES[generation]
    category = cycle[index % len(cycle)]
    name = f"{prefix}s{seed}_{index:03d}_"
    if category in OPT_IN:
        spec = OPT_IN[category](rng, name)
    elif category == "udp_l4":
        spec = cat_udp_l4(rng, name)
    elif category == "invalid_udp_l4":
        spec = cat_invalid_udp_l4(rng, name, index)
    elif category == "invalid":
        spec = cat_invalid(rng, name, index, cycle)
    elif category == "odd_metadata":
        spec = cat_odd_metadata(rng, name, index, cycle)
    else:
        spec = CATEGORIES[category](rng, name)
    spec.name = name + spec.category
    if spec.category not in UNCLAMPED:
        clamp_to_ip_limit(spec)
    fit_mtu(spec)
    return spec


def plan(seed: int, count: int, prefix: str = "", categories: set[str] | None = None,
         generation: str = "6.1") -> list[CaseSpec]:
    """The first ``count`` cases for ``seed`` (only those of ``categories`` when given, by name or prefix;
    categories that are all :data:`OPT_IN` make a plan of their own, ``count`` cases of them in turn)."""
    if categories and categories <= set(OPT_IN):
        opt_in = tuple(sorted(categories))
        return [draw_case(seed, index, prefix, generation, opt_in) for index in range(count)]
    specs = [draw_case(seed, index, prefix, generation) for index in range(count)]
    if categories:
        specs = [s for s in specs if s.category in categories or s.category.split("_")[0] in categories]
    return specs
