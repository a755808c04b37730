"""MPLS unicast/multicast GSO (net/mpls/mpls_gso.c): strip the stack, delegate, restore.

The label stack length is implicit: from the top label (the network header at this level) to
``inner_network_header``, which the first push recorded. The inner packet is segmented with the
device's ``mpls_features``; every segment then gets the original Ethernet header and the whole
label stack back, byte for byte (skb_segment copied them in front of every segment already).
"""

from __future__ import annotations

from ..constants import ETH_P_MPLS_MC, ETH_P_MPLS_UC, MPLS_HLEN
from ..errors import InvalidPacketError
from ..features import NetdevFeature
from ..gso import GsoContext, register_ethertype, segment_or_unwind, skb_mac_gso_segment
from ..packet import Packet


@register_ethertype(ETH_P_MPLS_UC, ETH_P_MPLS_MC)
def mpls_gso_segment(skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext) -> list[Packet] | None:
    """Segment the packet under the label stack; copy the stack onto every segment."""
    if not skb.inner_network_header:
        raise InvalidPacketError("inner_network_header was never set (no label pushed by skb_mpls_push)",
                                 where="mpls_gso_segment")
    mac_offset, mac_len, mpls_protocol = skb.mac_header, skb.mac_len, skb.protocol
    skb.network_header = data
    mpls_hlen = skb.inner_network_header - data
    if mpls_hlen <= 0 or mpls_hlen % MPLS_HLEN:
        raise InvalidPacketError(f"label stack length {mpls_hlen} is not a positive multiple of 4",
                                 where="mpls_gso_segment")
    if len(skb.data) - data < mpls_hlen:
        raise InvalidPacketError(f"packet ends inside the {mpls_hlen}-byte label stack", where="mpls_gso_segment")

    skb.protocol = skb.inner_protocol
    skb.mac_len = 0
    skb.mac_header = data + mpls_hlen
    segments = segment_or_unwind(skb, lambda: skb_mac_gso_segment(skb, features & ctx.device.mpls_features, ctx),
                                 mpls_protocol, data, mac_offset, mac_len)
    if segments is None:
        return None

    # mpls_gso_segment pushes mpls_hlen + mac_len back from the inner network header: a segment
    # starts mac_len bytes before the top label. mac_len is the network offset __skb_gso_segment
    # found, which counts VLAN tags put in the bytes before the label on 6.1 but not on 6.12 (its
    # skb_vlan_push moves the network header onto such a tag): there the first bytes are lost.
    lost = data - mac_offset - mac_len
    for seg in segments:
        if lost > 0:
            seg.remove(mac_offset, lost)
        seg.mac_len = mac_len
        seg.protocol = mpls_protocol
        seg.inner_network_header = data - max(lost, 0) + mpls_hlen
        seg.mac_header = mac_offset
        seg.network_header = mac_offset + mac_len
    return segments
