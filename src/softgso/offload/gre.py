"""GRE GSO (gre_gso_segment, net/ipv4/gre_offload.c; registered for IPv4 and IPv6 protocol 47).

GRE carrying IPv4, IPv6, Ethernet (gretap, protocol 0x6558) or, as a BPF program builds it, an MPLS
label stack taken as the inner MAC header. The handler pulls the GRE header (``tnl_hlen`` = inner
MAC - GRE header), segments the inner packet on ``inner_protocol`` with ``hw_enc_features`` (the GRE
protocol field is never read), then, with GRE_CSUM, zeroes GRE bytes 4-7 and writes the checksum of
GRE header + inner packet: no pseudo-header, a computed 0 kept as 0. Key and sequence number are
copied: a sequence number would be the same on every segment, which is why Linux never builds a
GRE super-packet on a device with ``oseq`` (the spec, 3.9).
"""

from __future__ import annotations

import struct

from ..errors import InvalidPacketError
from ..features import GsoType, IpSummed, NetdevFeature
from ..gso import (
    GSO_CB,
    GsoContext,
    gso_make_checksum,
    register_inet,
    restore_outer_headers,
    segment_or_unwind,
    skb_mac_gso_segment,
)
from ..packet import Packet

GRE_BASE_HLEN = 4
IPPROTO_GRE = 47


@register_inet(IPPROTO_GRE)
def gre_gso_segment(skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext) -> list[Packet] | None:
    """Segment the packet a GRE header at ``data`` carries; fix the GRE checksum of every segment."""
    frame = skb.data
    tnl_hlen = skb.inner_mac_header - data
    if not skb.encapsulation:
        raise InvalidPacketError("GRE packet without encapsulation set", where="gre_gso_segment")
    if tnl_hlen < GRE_BASE_HLEN:
        raise InvalidPacketError(f"GRE header length {tnl_hlen} is below 4", where="gre_gso_segment")
    if data + tnl_hlen > len(frame):
        raise InvalidPacketError(f"packet ends inside the {tnl_hlen}-byte GRE header", where="gre_gso_segment")
    mac_offset, protocol, mac_len = skb.mac_header, skb.protocol, skb.mac_len

    skb.encapsulation = False
    ctx.encap_level = 0
    skb.mac_header = data + tnl_hlen
    skb.network_header = skb.inner_network_header
    skb.mac_len = skb.inner_network_header - skb.mac_header
    skb.protocol = skb.inner_protocol

    need_csum = bool(skb.gso_type & GsoType.GRE_CSUM)
    skb.encap_hdr_csum = need_csum
    features &= ctx.device.hw_enc_features
    if need_csum:
        features &= ~NetdevFeature.SCTP_CRC
    # no xfrm in this model; only HW_CSUM can checksum a GRE header (IP_CSUM cannot)
    offload_csum = need_csum and bool(ctx.device.features & NetdevFeature.HW_CSUM)

    segments = segment_or_unwind(skb, lambda: skb_mac_gso_segment(skb, features, ctx), protocol, data, mac_offset,
                                 mac_len)
    if segments is None:
        return None

    for seg in segments:
        if seg.ip_summed == IpSummed.PARTIAL:
            seg.reset_inner_headers()
            seg.encapsulation = True
        restore_outer_headers(seg, protocol, data, mac_offset, mac_len)
        if not need_csum:
            continue
        # checksum and reserved1 at GRE offset 4, whatever the C bit says
        struct.pack_into("!HH", seg.data, data + 4, 0, 0)
        if seg.encapsulation or not offload_csum:
            struct.pack_into("!H", seg.data, data + 4, gso_make_checksum(seg, data, 0))
        else:
            seg.ip_summed = IpSummed.PARTIAL
            seg.csum_start = data
            seg.csum_offset = GRE_BASE_HLEN
            seg.extras.pop(GSO_CB, None)
    return segments
