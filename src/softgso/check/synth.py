"""Synthetic super-packets: what a sending host's stack hands to GSO (benchmark inputs, test inputs).

Frames are built field by field from the RFC layouts; the L4 checksum field holds either the
CHECKSUM_PARTIAL seed (pseudo-header sum over the full L4 length, as Linux stores it) or a full
checksum. Nothing here segments anything.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..checksum import csum_fold, ipv4_header_checksum, ones_sum, pseudo_header_sum
from ..constants import ETH_P_IP, ETH_P_IPV6, ETH_P_TEB, IP_DF, IPPROTO_TCP, IPPROTO_UDP

MAC_DST = bytes.fromhex("020000000002")
MAC_SRC = bytes.fromhex("020000000001")
IPV4_SRC, IPV4_DST = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2])
IPV6_SRC = bytes.fromhex("20010db8000000000000000000000001")
IPV6_DST = bytes.fromhex("20010db8000000000000000000000002")


@dataclass(frozen=True)
class SuperPacketSpec:
    """The fields of one synthetic super-packet (Ethernet + IPv4/IPv6 + TCP/UDP + payload)."""

    ipv6: bool = False
    udp: bool = False
    payload: bytes = b""
    ip_options: bytes = b""  # IPv4 options, a multiple of 4 bytes
    ipv6_exthdrs: tuple[tuple[int, bytes], ...] = ()  # (type 0/43/60, body padded to 8n-2 bytes)
    tcp_options: bytes = b""  # a multiple of 4 bytes
    tcp_flags: int = 0x18
    seq: int = 1_000_000
    ack: int = 1
    window: int = 64240
    urg_ptr: int = 0
    ip_id: int = 0x1234
    df: bool = True
    tos: int = 0
    ttl: int = 64
    flow_label: int = 0
    sport: int = 40000
    dport: int = 5201
    partial_checksum: bool = True
    vlan_tags: tuple[tuple[int, int], ...] = field(default=())  # (TPID, TCI) in the bytes, outermost first


def l4_bytes(spec: SuperPacketSpec, src: bytes, dst: bytes) -> bytes:
    """The TCP or UDP header plus payload, checksum field as the spec asks."""
    if spec.udp:
        segment = bytearray(struct.pack("!HHHH", spec.sport, spec.dport, 8 + len(spec.payload), 0) + spec.payload)
        check_at, proto = 6, IPPROTO_UDP
    else:
        doff = (20 + len(spec.tcp_options)) // 4
        header = struct.pack("!HHIIBBHHH", spec.sport, spec.dport, spec.seq & 0xFFFFFFFF, spec.ack & 0xFFFFFFFF,
                             doff << 4, spec.tcp_flags, spec.window, 0, spec.urg_ptr)
        segment = bytearray(header + spec.tcp_options + spec.payload)
        check_at, proto = 16, IPPROTO_TCP
    seed = pseudo_header_sum(src, dst, proto, len(segment))
    if spec.partial_checksum:
        struct.pack_into("!H", segment, check_at, seed)
    else:
        check = csum_fold(ones_sum(segment, seed))
        struct.pack_into("!H", segment, check_at, check or (0xFFFF if spec.udp else 0))
    return bytes(segment)


def build_frame(spec: SuperPacketSpec) -> bytes:
    """The Ethernet frame for a spec."""
    proto = IPPROTO_UDP if spec.udp else IPPROTO_TCP
    if spec.ipv6:
        chain = b""
        next_headers = [t for t, _ in spec.ipv6_exthdrs] + [proto]
        for (_, body), following in zip(spec.ipv6_exthdrs, next_headers[1:], strict=True):
            chain += bytes([following, (len(body) + 2) // 8 - 1]) + body
        body = chain + l4_bytes(spec, IPV6_SRC, IPV6_DST)
        first = next_headers[0]
        l3 = struct.pack("!IHBB16s16s", (6 << 28) | (spec.tos << 20) | spec.flow_label, len(body), first, spec.ttl,
                         IPV6_SRC, IPV6_DST) + body
        ethertype = ETH_P_IPV6
    else:
        body = l4_bytes(spec, IPV4_SRC, IPV4_DST)
        ihl = (20 + len(spec.ip_options)) // 4
        header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, spec.tos, ihl * 4 + len(body), spec.ip_id,
                                       IP_DF if spec.df else 0, spec.ttl, proto, 0, IPV4_SRC, IPV4_DST))
        header += spec.ip_options
        struct.pack_into("!H", header, 10, ipv4_header_checksum(header))
        l3 = bytes(header) + body
        ethertype = ETH_P_IP
    tags = b"".join(struct.pack("!HH", tpid, tci) for tpid, tci in spec.vlan_tags)
    return MAC_DST + MAC_SRC + tags + struct.pack("!H", ethertype) + l3


# --- tunnels: the outer headers a Linux tunnel device writes in front of the inner frame -------------

OUTER_MAC_DST = bytes.fromhex("020000000012")
OUTER_MAC_SRC = bytes.fromhex("020000000011")
OUTER_IPV4_SRC, OUTER_IPV4_DST = bytes([203, 0, 113, 1]), bytes([203, 0, 113, 2])
OUTER_IPV6_SRC = bytes.fromhex("fd000000000000000000000000000001")
OUTER_IPV6_DST = bytes.fromhex("fd000000000000000000000000000002")
TUNNEL_UDP_PORTS = {"vxlan": 4789, "geneve": 6081}
# FOU and GUE have no port of their own (``--tunnel-port fou:PORT``): the ports the kernel vectors' devices use
FOU_UDP_PORTS = {"fou": 5555, "gue": 5556}
IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6_IN_IP = 47, 4, 41
GRE_CSUM, GRE_KEY = 0x8000, 0x2000


@dataclass(frozen=True)
class TunnelSpec:
    """The outer headers of one tunnelled super-packet, as a Linux tunnel device builds them.

    ``kind``: vxlan, geneve (UDP, inner Ethernet), gretap (GRE carrying Ethernet), gre (GRE carrying
    the inner IP packet), ipip (IP-in-IP or SIT by the inner version), fou and gue (an ipip/sit device
    with ``encap fou`` or ``encap gue``: the inner IP packet behind the UDP header, GUE's 4-byte header
    naming its protocol between them; UDP port FOU_UDP_PORTS'). The outer UDP checksum is 0
    over IPv4 unless ``udp_csum`` (the vxlan/geneve default), and a CHECKSUM_PARTIAL seed over IPv6
    (udp6zerocsumtx off, the default) or with ``udp_csum``; the source port comes from the inner
    flow (udp_flow_src_port's range 32768-60999); DF is clear (the devices' default ``df unset``),
    TTL 64. A GRE checksum (``gre_csum``) is left 0 in a super-packet (``gso``), as gre_build_header
    leaves it for GRE GSO; filled otherwise.
    """

    kind: str = "vxlan"
    outer_ipv6: bool = False
    udp_csum: bool = False
    vni: int = 42
    gre_key: int | None = None
    gre_csum: bool = False
    ip_id: int = 0x4000
    ttl: int = 64
    gso: bool = True  # a super-packet: gre_build_header leaves a GRE checksum 0 for GRE GSO to fill


def flow_source_port(inner: bytes) -> int:
    """A VXLAN/Geneve source port from the inner flow, in udp_flow_src_port's default range."""
    import zlib

    ip = inner[14:]
    if ip[0] >> 4 == 6:
        addresses, ports = ip[8:40], ip[40:44]
    else:
        addresses, ports = ip[12:20], ip[(ip[0] & 0x0F) * 4 :][:4]
    return 32768 + zlib.crc32(bytes(addresses + ports)) % (61000 - 32768)


def encapsulate(inner: bytes, tunnel: TunnelSpec) -> bytes:
    """The Ethernet frame ``inner`` (Ethernet + IP + L4) inside the tunnel ``tunnel`` describes."""
    kind = tunnel.kind
    inner_ip = inner[14:]
    inner_v6 = inner_ip[0] >> 4 == 6
    if kind in TUNNEL_UDP_PORTS or kind in FOU_UDP_PORTS:
        carried = inner
        if kind == "vxlan":
            header = struct.pack("!II", 0x08000000, tunnel.vni << 8)
        elif kind == "geneve":  # no options, carrying Ethernet
            header = struct.pack("!HHI", 0, ETH_P_TEB, tunnel.vni << 8)
        else:  # fou_build_header / gue_build_header: the IP packet, behind a GUE header (version 0, no options)
            carried = inner_ip
            header = b"" if kind == "fou" else struct.pack("!BBH", 0, IPPROTO_IPV6_IN_IP if inner_v6 else IPPROTO_IPIP, 0)
        length = 8 + len(header) + len(carried)
        port = TUNNEL_UDP_PORTS.get(kind) or FOU_UDP_PORTS[kind]
        body = bytearray(struct.pack("!HHHH", flow_source_port(inner), port, length, 0) + header + carried)
        proto = IPPROTO_UDP
        if tunnel.outer_ipv6 or tunnel.udp_csum:
            src, dst = (OUTER_IPV6_SRC, OUTER_IPV6_DST) if tunnel.outer_ipv6 else (OUTER_IPV4_SRC, OUTER_IPV4_DST)
            struct.pack_into("!H", body, 6, pseudo_header_sum(src, dst, IPPROTO_UDP, length))
    elif kind in ("gretap", "gre"):
        flags = (GRE_CSUM if tunnel.gre_csum else 0) | (GRE_KEY if tunnel.gre_key is not None else 0)
        protocol = ETH_P_TEB if kind == "gretap" else (ETH_P_IPV6 if inner_v6 else ETH_P_IP)
        gre = bytearray(struct.pack("!HH", flags, protocol))
        if tunnel.gre_csum:
            gre += bytes(4)
        if tunnel.gre_key is not None:
            gre += struct.pack("!I", tunnel.gre_key)
        body = gre + (inner if kind == "gretap" else inner_ip)
        if tunnel.gre_csum and not tunnel.gso:
            struct.pack_into("!H", body, 4, csum_fold(ones_sum(bytes(body))))
        proto = IPPROTO_GRE
    elif kind == "ipip":
        body = bytearray(inner_ip)
        proto = IPPROTO_IPV6_IN_IP if inner_v6 else IPPROTO_IPIP
    else:
        raise ValueError(f"unknown tunnel kind {kind!r}")
    if tunnel.outer_ipv6:
        l3 = struct.pack("!IHBB16s16s", 6 << 28, len(body), proto, tunnel.ttl, OUTER_IPV6_SRC, OUTER_IPV6_DST)
        ethertype = ETH_P_IPV6
    else:
        outer = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), tunnel.ip_id, 0, tunnel.ttl, proto,
                                      0, OUTER_IPV4_SRC, OUTER_IPV4_DST))
        struct.pack_into("!H", outer, 10, ipv4_header_checksum(outer))
        l3 = bytes(outer)
        ethertype = ETH_P_IP
    return OUTER_MAC_DST + OUTER_MAC_SRC + struct.pack("!H", ethertype) + l3 + bytes(body)
