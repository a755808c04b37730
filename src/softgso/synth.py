"""Synthetic super-packets: what a sending host's stack hands to GSO (benchmark inputs, test inputs).

Frames are built field by field from the RFC layouts; the L4 checksum field holds either the
CHECKSUM_PARTIAL seed (pseudo-header sum over the full L4 length, as Linux stores it) or a full
checksum. Nothing here segments anything.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .checksum import csum_fold, ipv4_header_checksum, ones_sum, pseudo_header_sum
from .constants import ETH_P_IP, ETH_P_IPV6, IP_DF, IPPROTO_TCP, IPPROTO_UDP

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
