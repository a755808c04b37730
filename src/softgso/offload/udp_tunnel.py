"""UDP tunnel GSO (skb_udp_tunnel_segment / __skb_udp_tunnel_segment, net/ipv4/udp_offload.c).

Entered from the UDP handler when the packet is encapsulated and its gso_type carries
UDP_TUNNEL or UDP_TUNNEL_CSUM: VXLAN, VXLAN-GPE, Geneve (options included), MPLS-in-UDP as a BPF
program builds it (the labels are the inner MAC header), FOU/GUE. The handler pulls the tunnel
header (``tnl_hlen`` = inner MAC - outer UDP), segments the inner packet with the device's
``hw_enc_features`` on ``inner_protocol`` (or, for FOU/GUE, the inet handler of ``inner_ipproto``),
then gives every segment its outer UDP length and, with UDP_TUNNEL_CSUM, its checksum derived from
the super-packet's seed exactly as the kernel derives it. The outer IP handler fixes the rest.
"""

from __future__ import annotations

import struct

from ..constants import CSUM_MANGLED_0
from ..errors import InvalidPacketError, SoftGSOError
from ..features import NETIF_F_CSUM_MASK, GsoType, IpSummed, NetdevFeature
from ..gso import (
    GSO_CB,
    INET6_OFFLOADS,
    INET_OFFLOADS,
    GsoContext,
    GsoHandler,
    gso_make_checksum,
    restore_outer_headers,
    segment_or_unwind,
    skb_gso_error_unwind,
    skb_mac_gso_segment,
)
from ..packet import ENCAP_TYPE_ETHER, ENCAP_TYPE_IPPROTO, Packet

_F = NetdevFeature


class RemoteChecksumNotSupported(SoftGSOError):
    """Remote checksum offload with an outer checksum: SKB_GSO_CB's state there is not modelled."""


def skb_udp_tunnel_segment(
    skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext, *, ipv6: bool
) -> list[Packet] | None:
    """Pick the inner segmenter by inner_protocol_type, then segment (skb_udp_tunnel_segment)."""
    if skb.inner_protocol_type == ENCAP_TYPE_ETHER:
        return _udp_tunnel_segment(skb, data, features, ctx, None, skb.inner_protocol, ipv6)
    if skb.inner_protocol_type == ENCAP_TYPE_IPPROTO:
        ops = (INET6_OFFLOADS if ipv6 else INET_OFFLOADS).get(skb.inner_ipproto)
        if ops is None or ops.gso_segment is None:
            raise InvalidPacketError(f"no inet offload for inner IP protocol {skb.inner_ipproto}",
                                     where="skb_udp_tunnel_segment")
        return _udp_tunnel_segment(skb, data, features, ctx, ops.gso_segment, skb.protocol, ipv6)
    raise InvalidPacketError(f"inner_protocol_type {skb.inner_protocol_type} is neither ETHER nor IPPROTO",
                             where="skb_udp_tunnel_segment")


def _udp_tunnel_segment(
    skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext, inet_handler: GsoHandler | None,
    new_protocol: int, ipv6: bool,
) -> list[Packet] | None:
    """__skb_udp_tunnel_segment: ``data`` is the outer UDP header (the outer IP handler pulled its own)."""
    frame = skb.data
    tnl_hlen = skb.inner_mac_header - data
    if tnl_hlen < 0 or data + tnl_hlen > len(frame):
        raise InvalidPacketError(f"tunnel header length {tnl_hlen} runs outside the packet",
                                 where="__skb_udp_tunnel_segment")
    mac_offset, protocol, mac_len = skb.mac_header, skb.protocol, skb.mac_len
    # negate the old length: skb->len (the UDP length from the buffer, 32 bits), never the length
    # field, which BIG TCP inside a tunnel leaves 0 (GSO_PARTIAL input is not modelled)
    udp_len = len(frame) - data
    partial = _csum_sub(int.from_bytes(frame[data + 6 : data + 8], "big"), udp_len)

    skb.encapsulation = False
    ctx.encap_level = 0
    skb.mac_header = data + tnl_hlen
    skb.network_header = skb.inner_network_header
    skb.transport_header = skb.inner_transport_header
    skb.mac_len = skb.inner_network_header - skb.mac_header
    skb.protocol = new_protocol

    need_csum = bool(skb.gso_type & GsoType.UDP_TUNNEL_CSUM)
    skb.encap_hdr_csum = need_csum
    remcsum = bool(skb.gso_type & GsoType.TUNNEL_REMCSUM)
    skb.remcsum_offload = remcsum
    if remcsum and need_csum:
        skb_gso_error_unwind(skb, protocol, data, mac_offset, mac_len)
        raise RemoteChecksumNotSupported(
            "remote checksum offload with an outer UDP checksum: not supported", where="__skb_udp_tunnel_segment")
    # no xfrm (IPsec) in this model: only the device's own checksum features decide
    device_csum = _F.HW_CSUM | (_F.IPV6_CSUM if ipv6 else _F.IP_CSUM)
    offload_csum = need_csum and bool(ctx.device.features & device_csum)

    features &= ctx.device.hw_enc_features
    if need_csum:
        features &= ~_F.SCTP_CRC
    if remcsum:
        features &= ~NETIF_F_CSUM_MASK
        if not need_csum or offload_csum:
            features |= _F.HW_CSUM

    def inner() -> list[Packet] | None:
        if inet_handler is None:
            return skb_mac_gso_segment(skb, features, ctx)
        return inet_handler(skb, skb.mac_header, features, ctx)

    segments = segment_or_unwind(skb, inner, protocol, data, mac_offset, mac_len)
    if segments is None:
        return None

    for seg in segments:
        if remcsum:
            seg.ip_summed = IpSummed.NONE
        if seg.ip_summed == IpSummed.PARTIAL:
            # the inner checksum stays with the device: it needs to find the inner headers
            seg.reset_inner_headers()
            seg.encapsulation = True
        restore_outer_headers(seg, protocol, data, mac_offset, mac_len)
        length = len(seg.data) - data
        struct.pack_into("!H", seg.data, data + 4, length & 0xFFFF)
        if not need_csum:
            continue
        seed = _fold(partial + (length >> 16) + (length & 0xFFFF))
        struct.pack_into("!H", seg.data, data + 6, seed)
        if seg.encapsulation or not offload_csum:
            check = gso_make_checksum(seg, data, (~seed) & 0xFFFFFFFF)
            struct.pack_into("!H", seg.data, data + 6, check or CSUM_MANGLED_0)
        else:
            seg.ip_summed = IpSummed.PARTIAL
            seg.csum_start = data
            seg.csum_offset = 6
            seg.extras.pop(GSO_CB, None)
    return segments


def _csum_sub(check: int, length: int) -> int:
    """csum_sub(csum_unfold(uh->check), htonl(len)) as a ones'-complement integer."""
    return check + (~(length >> 16) & 0xFFFF) + (~length & 0xFFFF)


def _fold(total: int) -> int:
    """The non-complemented 16-bit fold of a ones'-complement sum (``~csum_fold``)."""
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


__all__ = ["RemoteChecksumNotSupported", "skb_udp_tunnel_segment"]
