"""IPv6 GSO (ipv6_gso_segment, net/ipv6/ip6_offload.c) and the extension headers it walks.

Walks hop-by-hop, routing and destination-options headers to the L4 protocol, hands the packet to
its handler, then sets every segment's payload_len (extension headers count as payload). For
legacy UFO the UDP handler has inserted a Fragment header; here each fragment gets its offset and
M flag. A BIG TCP jumbogram (payload_len 0 + hop-by-hop jumbo option) loses that option first:
segments are never jumbograms.
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
from ..packet import Packet

register_ipv6_exthdr(IPPROTO_ROUTING)
register_ipv6_exthdr(IPPROTO_DSTOPTS)

IPV6_TLV_HAO = 0xC9
IPV6_MAXPLEN = 65535


@register_ethertype(ETH_P_IPV6)
def ipv6_gso_segment(skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext) -> list[Packet] | None:
    """Segment an IPv6 packet whose header starts at ``data``."""
    skb.network_header = data
    _hopbyhop_jumbo_remove(skb, data)
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


def ipv6_has_hopopt_jumbo(frame: bytes | bytearray | memoryview, mac: int, ip6: int) -> bool:
    """Whether ipv6_hopbyhop_jumbo_remove takes the BIG TCP jumbo header off the IPv6 packet at ``ip6``
    of ``frame`` (its MAC header at ``mac``): ipv6_has_hopopt_jumbo's conditions (over
    GRO_LEGACY_MAX_SIZE, payload length 0, an 8-byte hop-by-hop header with the jumbo option before
    TCP), and the Ethernet header alone before the IPv6 header (the kernel moves those ETH_HLEN + 40
    bytes over the 8; with anything else between, the header stays on every segment)."""
    if len(frame) - mac <= GRO_LEGACY_MAX_SIZE or len(frame) < ip6 + IPV6_HLEN + 8:
        return False
    if frame[ip6 + 4 : ip6 + 6] != b"\0\0" or frame[ip6 + 6] != IPPROTO_HOPOPTS:
        return False
    hbh = ip6 + IPV6_HLEN
    return (frame[hbh + 2] == IPV6_TLV_JUMBO and frame[hbh + 1] == 0 and frame[hbh] == IPPROTO_TCP
            and ip6 - mac == ETH_HLEN)


def _hopbyhop_jumbo_remove(skb: Packet, ip6: int) -> None:
    """Drop a BIG TCP hop-by-hop jumbo header before segmenting (ipv6_hopbyhop_jumbo_remove)."""
    frame = skb.data
    if skb.protocol != ETH_P_IPV6 or not ipv6_has_hopopt_jumbo(frame, skb.mac_header, ip6):
        return
    # the kernel moves Ethernet + IPv6 header forward over the 8 bytes; same bytes as removing them
    hbh = ip6 + IPV6_HLEN
    frame[ip6 + 6] = frame[hbh]
    skb.remove(hbh, 8)


__all__ = ["ipv6_gso_segment", "ipv6_gso_pull_exthdrs", "ipv6_has_hopopt_jumbo", "ip6_find_1stfragopt", "IPPROTO_FRAGMENT"]
