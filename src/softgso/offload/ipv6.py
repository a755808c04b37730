"""IPv6 GSO (ipv6_gso_segment, net/ipv6/ip6_offload.c) and the extension headers it walks.

Walks hop-by-hop, routing and destination-options headers to the L4 protocol, hands the packet to
its handler, then sets every segment's payload_len (extension headers count as payload). For
legacy UFO the UDP handler has inserted a Fragment header; here each fragment gets its offset and
M flag. A BIG TCP jumbogram (a hop-by-hop jumbo option before TCP, over 64 KB) loses that header
first, the kernel's way: bytes moved forward from the MAC header, which is not always where the
Ethernet header is (see _hopbyhop_jumbo_remove).
"""

from __future__ import annotations

import struct

from ..constants import (
    ETH_HLEN,
    ETH_P_IPV6,
    GRO_LEGACY_MAX_SIZE,
    IP6_MF,
    IPPROTO_DSTOPTS,
    IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS,
    IPPROTO_ROUTING,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV6_HLEN,
    IPV6_TLV_JUMBO,
)
from ..errors import InvalidPacketError, ProtocolNotSupportedError
from ..features import GsoType, NetdevFeature
from ..gso import INET6_OFFLOADS, GsoContext, register_ethertype, register_ipv6_exthdr
from ..packet import Packet, kernel_of

register_ipv6_exthdr(IPPROTO_ROUTING)
register_ipv6_exthdr(IPPROTO_DSTOPTS)

IPV6_TLV_HAO = 0xC9
IPV6_MAXPLEN = 65535


@register_ethertype(ETH_P_IPV6)
def ipv6_gso_segment(skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext) -> list[Packet] | None:
    """Segment an IPv6 packet whose header starts at ``data``."""
    skb.network_header = data
    _hopbyhop_jumbo_remove(skb, data, ctx)
    frame = skb.data
    nhoff = data - skb.mac_header
    if len(frame) - data < IPV6_HLEN:
        raise InvalidPacketError("fewer than 40 bytes of IPv6 header", where="ipv6_gso_segment")
    encap = ctx.encap_level > 0
    if encap:
        features &= ctx.device.hw_enc_features
    ctx.encap_level += IPV6_HLEN

    protocol, l4_offset = ipv6_gso_pull_exthdrs(frame, data + IPV6_HLEN, frame[data + 6])
    if skb.encapsulation and skb.gso_type & (GsoType.IPXIP4 | GsoType.IPXIP6):
        udpfrag = protocol == IPPROTO_UDP and encap and bool(skb.gso_type & GsoType.UDP)
    else:
        udpfrag = protocol == IPPROTO_UDP and not skb.encapsulation and bool(skb.gso_type & GsoType.UDP)
    ops = INET6_OFFLOADS.get(protocol)
    if ops is None or ops.gso_segment is None:
        raise ProtocolNotSupportedError(f"no GSO handler for IPv6 next header {protocol}", where="ipv6_gso_segment")
    skb.transport_header = l4_offset
    segments = ops.gso_segment(skb, l4_offset, features, ctx)
    if segments is None:
        skb.network_header = skb.mac_header + nhoff
        return None

    fragment_offset = 0
    last = len(segments) - 1
    for index, seg in enumerate(segments):
        header = seg.data
        payload_len = len(header) - data - IPV6_HLEN
        # htons keeps the low 16 bits (a > 64 KB record, or UFO offsets run past 65535 with
        # gso_size 1 behind extension headers): the kernel's fields wrap, they do not fail
        struct.pack_into("!H", header, data + 4, payload_len & 0xFFFF)
        seg.network_header = data
        seg.reset_mac_len()
        if udpfrag:
            frag_hdr = ip6_find_1stfragopt(header, data)
            if frag_hdr < 0:
                raise InvalidPacketError("cannot locate the Fragment header in a UFO segment",
                                         where="ipv6_gso_segment")
            frag_off = (fragment_offset & 0xFFFF) | (IP6_MF if index != last else 0)
            struct.pack_into("!H", header, data + frag_hdr + 2, frag_off)
            fragment_offset += (payload_len & 0xFFFF) - 8  # ntohs(ipv6h->payload_len): the stored value
        if encap:
            seg.reset_inner_headers()
    return segments


def ipv6_gso_pull_exthdrs(frame: bytearray, offset: int, protocol: int) -> tuple[int, int]:
    """Walk the extension headers GSO knows; return (final next header, its offset).

    Like the kernel's ipv6_gso_pull_exthdrs, a truncated header stops the walk and its own type
    is returned, which has no GSO handler: the caller then refuses with -EPROTONOSUPPORT.
    """
    while True:
        if protocol != IPPROTO_HOPOPTS:
            ops = INET6_OFFLOADS.get(protocol)
            if ops is None or not ops.ipv6_exthdr:
                break
        if len(frame) - offset < 8:
            break
        length = (frame[offset + 1] + 1) * 8
        if len(frame) - offset < length:
            break
        protocol = frame[offset]
        offset += length
    return protocol, offset


def ip6_find_1stfragopt(frame: bytearray | bytes, ip6: int) -> int:
    """Offset (from the IPv6 header) where a Fragment header goes, or -1 (ip6_find_1stfragopt)."""
    offset = IPV6_HLEN
    packet_len = len(frame) - ip6
    next_at = ip6 + 6
    found_rhdr = False
    while offset <= packet_len:
        nexthdr = frame[next_at]
        if nexthdr == IPPROTO_HOPOPTS:
            pass
        elif nexthdr == IPPROTO_ROUTING:
            found_rhdr = True
        elif nexthdr == IPPROTO_DSTOPTS:
            if not _has_tlv(frame, ip6 + offset, IPV6_TLV_HAO) and found_rhdr:
                return offset
        else:
            return offset
        if offset + 2 > packet_len:
            return -1
        header = ip6 + offset
        offset += (frame[header + 1] + 1) * 8
        if offset > IPV6_MAXPLEN:
            return -1
        next_at = header
    return -1


def _has_tlv(frame: bytearray | bytes, header: int, tlv_type: int) -> bool:
    """Whether an options header holds a TLV of this type (ipv6_find_tlv)."""
    if header + 2 > len(frame):
        return False
    end = min(len(frame), header + (frame[header + 1] + 1) * 8)
    pos = header + 2
    while pos < end:
        kind = frame[pos]
        if kind == tlv_type:
            return True
        if kind == 0:  # Pad1
            pos += 1
            continue
        if pos + 1 >= end:
            return False
        pos += 2 + frame[pos + 1]
    return False


def ipv6_has_hopopt_jumbo(frame: bytes | bytearray | memoryview, ip6: int, protocol: int = ETH_P_IPV6) -> bool:
    """Whether ipv6_gso_segment takes a BIG TCP jumbo header off the IPv6 packet at ``ip6`` of ``frame``
    (ipv6_has_hopopt_jumbo, include/net/ipv6.h): skb->len, counted from the IPv6 header, over
    GRO_LEGACY_MAX_SIZE; skb->protocol IPv6 (not under an in-band VLAN tag; under labels it is, as
    mpls_gso_segment sets the inner protocol); an 8-byte hop-by-hop header right after the IPv6
    header, its first option the jumbo one, before TCP. The payload length field is not looked at
    (kernel vectors s3410_052_big_packets: a nonzero one is removed too)."""
    if protocol != ETH_P_IPV6 or len(frame) - ip6 <= GRO_LEGACY_MAX_SIZE or len(frame) < ip6 + IPV6_HLEN + 8:
        return False
    if frame[ip6 + 6] != IPPROTO_HOPOPTS:
        return False
    hbh = ip6 + IPV6_HLEN
    return frame[hbh + 2] == IPV6_TLV_JUMBO and frame[hbh + 1] == 0 and frame[hbh] == IPPROTO_TCP


def jumbo_header_leaves_segments(frame: bytes | bytearray | memoryview, mac: int, ip6: int) -> bool:
    """Whether the segments come out 8 bytes of header shorter: the jumbo header is removed and the
    Ethernet header alone precedes the IPv6 header (the MAC header the removal moves from). Under
    labels the kernel removes it too, but every segment keeps as many bytes (_hopbyhop_jumbo_remove)."""
    return ip6 - mac == ETH_HLEN and ipv6_has_hopopt_jumbo(frame, ip6)


def _hopbyhop_jumbo_remove(skb: Packet, ip6: int, ctx: GsoContext) -> None:
    """Drop a BIG TCP hop-by-hop jumbo header before segmenting, as the kernel does it.

    6.1 (09f3d1a3a52c "ipv6/gso: remove temporary HBH/jumbo header") moves ETH_HLEN + 40 bytes
    from the MAC header 8 bytes forward; 6.2 and later (ipv6_hopopt_jumbo_remove) the bytes from the
    MAC header to the end of the IPv6 header. Both then pull 8 bytes and move the MAC and network
    headers on by 8. skb_segment still copies every header byte from the outermost MAC header
    (SKB_GSO_CB's mac_offset), and each level pushes back only what it pulled, so every segment
    starts 8 bytes into the frame. With the Ethernet header right before the IPv6 header that is
    just the header gone. Under labels mpls_gso_segment has made the MAC header the IPv6 header:
    the segments lose the first 8 bytes of the Ethernet header and keep the first 8 of the IPv6
    header behind the labels; on 6.1 the 54 bytes moved also carry the jumbo header and the first
    6 bytes of TCP over the TCP header (kernel vectors s3410_008/_052_big_packets, on both).
    """
    frame = skb.data
    if not ipv6_has_hopopt_jumbo(frame, ip6, skb.protocol):
        return
    mac = skb.mac_header
    moved = (ETH_HLEN if kernel_of(skb) == "6.1" else ip6 - mac) + IPV6_HLEN
    frame[mac + 8 : mac + 8 + moved] = frame[mac : mac + moved]
    frame[ip6 + 8 + 6] = IPPROTO_TCP  # ipv6h->nexthdr of the header now 8 bytes on
    skb.network_header = ip6 + 8
    skb.remove(ctx.mac_offset, 8)  # headers past the first 8 bytes move back: the IPv6 header is at ip6 again


__all__ = ["ipv6_gso_segment", "ipv6_gso_pull_exthdrs", "ipv6_has_hopopt_jumbo", "ip6_find_1stfragopt",
           "jumbo_header_leaves_segments", "IPPROTO_FRAGMENT"]
