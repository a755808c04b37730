"""UDP segmentation: USO (SKB_GSO_UDP_L4, __udp_gso_segment) and legacy UFO (SKB_GSO_UDP).

USO makes every segment a datagram of its own: UDP length and checksum per segment, derived from
the input's checksum field by swapping the old length for the new one (csum16 arithmetic, as the
kernel does it). UFO keeps one datagram and cuts it into IP fragments: its checksum is computed
over the whole datagram before the cut, and for IPv6 a Fragment header is inserted first, with the
identification the caller supplies in ``ip6_frag_id`` (the kernel picks one at random).
"""

from __future__ import annotations

import struct

from ..checksum import csum16_add, csum16_sub, csum_fold, ones_sum, pseudo_header_sum
from ..constants import CSUM_MANGLED_0, FRAG6_HLEN, IPPROTO_FRAGMENT, IPPROTO_UDP, UDP_CHECK_OFFSET, UDP_HLEN
from ..errors import InvalidPacketError
from ..features import GsoType, IpSummed, NetdevFeature
from ..gso import GsoContext, register_inet, skb_gso_ok, skb_segment
from ..packet import Packet
from .ipv6 import ip6_find_1stfragopt
from .tcp import finish_l4_checksum, ip_addresses
from .udp_tunnel import skb_udp_tunnel_segment


@register_inet(IPPROTO_UDP, ipv6=False)
def udp4_ufo_fragment(skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext) -> list[Packet] | None:
    """UDP over IPv4: USO or UFO by gso_type."""
    return _udp_gso_entry(skb, data, features, ctx, ipv6=False)


@register_inet(IPPROTO_UDP, ipv4=False)
def udp6_ufo_fragment(skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext) -> list[Packet] | None:
    """UDP over IPv6: USO or UFO by gso_type."""
    return _udp_gso_entry(skb, data, features, ctx, ipv6=True)


def _udp_gso_entry(
    skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext, *, ipv6: bool
) -> list[Packet] | None:
    where = "udp6_ufo_fragment" if ipv6 else "udp4_ufo_fragment"
    if skb.encapsulation and skb.gso_type & (GsoType.UDP_TUNNEL | GsoType.UDP_TUNNEL_CSUM):
        if ipv6 and len(skb.data) - data <= skb.gso_size:  # udp6_ufo_fragment checks skb->len first
            raise InvalidPacketError(f"UDP packet of {len(skb.data) - data} bytes fits in gso_size {skb.gso_size}",
                                     where=where)
        return skb_udp_tunnel_segment(skb, data, features, ctx, ipv6=ipv6)
    if not skb.gso_type & (GsoType.UDP | GsoType.UDP_L4):
        raise InvalidPacketError("gso_type has neither UDP nor UDP_L4 on a UDP packet", where=where)
    if len(skb.data) - data < UDP_HLEN:
        raise InvalidPacketError("fewer than 8 bytes of UDP header", where=where)
    if skb.gso_type & GsoType.UDP_L4:
        return udp_gso_segment(skb, data, features, ctx)
    return _ufo_fragment(skb, data, features, ctx, ipv6=ipv6, where=where)


def udp_gso_segment(skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext) -> list[Packet] | None:
    """USO: cut the payload into datagrams of gso_size bytes (__udp_gso_segment)."""
    frame = skb.data
    mss = skb.gso_size
    udp_len = len(frame) - data
    if udp_len <= UDP_HLEN + mss:
        raise InvalidPacketError(
            f"UDP payload of {udp_len - UDP_HLEN} bytes fits in one datagram of gso_size {mss}",
            where="__udp_gso_segment",
        )
    if skb.csum_start != data or skb.ip_summed != IpSummed.PARTIAL:
        raise InvalidPacketError(
            f"checksum start {skb.csum_start} is not the UDP header at {data}", where="__udp_gso_segment"
        )
    if skb_gso_ok(skb, features | NetdevFeature.GSO_ROBUST):
        skb.gso_segs = -(-(udp_len - UDP_HLEN) // mss)
        return None

    segments = skb_segment(skb, data + UDP_HLEN, mss, features, ctx)
    old_len_field = int.from_bytes(frame[data + 4 : data + 6], "big")
    old_check = int.from_bytes(frame[data + 6 : data + 8], "big")
    for seg in segments:
        new_len = (len(seg.data) - data) & 0xFFFF  # htons(): a > 64 KB record wraps, as in the kernel
        check = csum16_add(csum16_sub(old_check, old_len_field), new_len)
        struct.pack_into("!HH", seg.data, data + 4, new_len, check)
        finish_l4_checksum(seg, data, data + UDP_CHECK_OFFSET, mangle_zero=True)
    return segments


def _ufo_fragment(
    skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext, *, ipv6: bool, where: str
) -> list[Packet] | None:
    """Legacy UFO: checksum the whole datagram, then cut it into IP fragments."""
    frame = skb.data
    mss = skb.gso_size
    udp_len = len(frame) - data
    if udp_len <= mss:
        raise InvalidPacketError(f"UDP datagram of {udp_len} bytes fits in one fragment of {mss}", where=where)
    network = skb.network_header or 0
    src, dst = ip_addresses(frame, network, ipv6=ipv6)
    frame[data + 6 : data + 8] = b"\0\0"
    check = csum_fold(ones_sum(memoryview(frame)[data:], pseudo_header_sum(src, dst, IPPROTO_UDP, udp_len)))
    struct.pack_into("!H", frame, data + 6, check or CSUM_MANGLED_0)
    skb.ip_summed = IpSummed.UNNECESSARY
    # the checksum is done: the fragments need none from the device, unless an outer (tunnel)
    # checksum still has to sum them (udp4_ufo_fragment: only without encap_hdr_csum)
    if not skb.encap_hdr_csum:
        features |= NetdevFeature.HW_CSUM

    if ipv6:
        data = _insert_fragment_header(skb, network, data, where)
    return skb_segment(skb, data, mss, features, ctx)


def _insert_fragment_header(skb: Packet, network: int, data: int, where: str) -> int:
    """Insert the IPv6 Fragment header after the unfragmentable part; return the new payload start."""
    frame = skb.data
    unfrag = ip6_find_1stfragopt(frame, network)
    if unfrag < 0:
        raise InvalidPacketError("malformed IPv6 extension header chain", where=where)
    prev_next_at = _next_header_field(frame, network, unfrag)
    next_header = frame[prev_next_at]
    frame[prev_next_at] = IPPROTO_FRAGMENT
    fragment = bytes([next_header, 0, 0, 0]) + struct.pack("!I", skb.ip6_frag_id & 0xFFFFFFFF)
    # the Fragment header joins every fragment's header copy; the UDP header (fragment 0's
    # first payload bytes) moves back by its length
    skb.insert(network + unfrag, fragment)
    return data + FRAG6_HLEN


def _next_header_field(frame: bytearray, network: int, until: int) -> int:
    """Offset of the next-header byte that points at the header starting ``until`` bytes in."""
    at = network + 6
    offset = 40
    while offset < until:
        header = network + offset
        at = header
        offset += (frame[header + 1] + 1) * 8
    return at
