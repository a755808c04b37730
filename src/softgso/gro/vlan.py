"""net/8021q/vlan_core.c: vlan_gro_receive / vlan_gro_complete (in-band 802.1Q and 802.1ad tags)."""

from __future__ import annotations

from ..constants import ETH_P_8021AD, ETH_P_8021Q, VLAN_HLEN
from .dev import GroDevice, GroSkb, call_gro_receive, dev_add_offload, gro_offload, inner_gro_complete


def vlan_gro_receive(head: list[GroSkb], skb: GroSkb, device: GroDevice) -> GroSkb | None:
    """vlan_gro_receive: the tag must be there and name a protocol with GRO; a different tag is another flow."""
    offset = skb.data_offset
    tag = skb.header(offset, VLAN_HLEN)
    if tag is None:
        skb.flush |= 1
        skb.why = "truncated VLAN tag"
        return None
    encapsulated = int.from_bytes(tag[2:4], "big")
    offload = gro_offload(encapsulated, device)
    if offload is None:
        skb.flush |= 1
        skb.why = f"no GRO for ethertype {encapsulated:#06x} inside the VLAN tag"
        return None
    for p in head:
        # compare_vlan_header: the whole TCI (PCP, DEI, VID) and the encapsulated protocol
        if p.same_flow and p.data[offset : offset + VLAN_HLEN] != tag:
            p.same_flow = False
    skb.chain.append((vlan_gro_complete, offset))
    skb.data_offset += VLAN_HLEN
    return call_gro_receive(offload[0], head, skb, device)


def vlan_gro_complete(skb: GroSkb, offset: int, device: GroDevice) -> None:
    """vlan_gro_complete: the tag is left as it is; the encapsulated protocol completes."""
    inner_gro_complete(skb, offset, device)


dev_add_offload(ETH_P_8021Q, vlan_gro_receive, vlan_gro_complete)
dev_add_offload(ETH_P_8021AD, vlan_gro_receive, vlan_gro_complete)
