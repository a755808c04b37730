"""MPLS GRO: beyond the kernel (net/mpls/mpls_gso.c registers segmentation only, so a labelled frame is
GRO_NORMAL there). With ``GroDevice.mpls`` a labelled frame coalesces with held packets under an
identical label stack (every label entry byte for byte, TTL and TC included), by the inner IPv4/IPv6
and TCP rules; completion leaves the labels as they are and completes the inner packet.
"""

from __future__ import annotations

from ..constants import ETH_P_IP, ETH_P_IPV6, ETH_P_MPLS_MC, ETH_P_MPLS_UC, MPLS_HLEN
from .dev import GroDevice, GroSkb, call_gro_receive, dev_add_offload, inner_gro_complete, packet_offloads

MPLS_BOS = 0x100  # bottom-of-stack bit in the label entry's low 16 bits


def mpls_gro_receive(head: list[GroSkb], skb: GroSkb, device: GroDevice) -> GroSkb | None:
    """The label stack up to bottom of stack; the inner protocol from the IP version nibble."""
    start = offset = skb.data_offset
    while True:
        entry = skb.header(offset, MPLS_HLEN)
        if entry is None:
            skb.flush |= 1
            skb.why = "truncated MPLS label stack"
            return None
        offset += MPLS_HLEN
        if int.from_bytes(entry, "big") & MPLS_BOS:
            break
    first = skb.header(offset, 1)
    version = first[0] >> 4 if first is not None else 0
    inner = {4: ETH_P_IP, 6: ETH_P_IPV6}.get(version)
    if inner is None:
        skb.flush |= 1
        skb.why = "MPLS payload is not IPv4/IPv6"
        return None
    stack = skb.data[start:offset]
    for p in head:
        if p.same_flow and p.data[start:offset] != stack:
            p.same_flow = False
    skb.chain.append((mpls_gro_complete, start))
    skb.data_offset = offset
    return call_gro_receive(packet_offloads[inner][0], head, skb, device)


def mpls_gro_complete(skb: GroSkb, offset: int, device: GroDevice) -> None:
    """The labels stay; the inner packet completes."""
    inner_gro_complete(skb, offset, device)


dev_add_offload(ETH_P_MPLS_UC, mpls_gro_receive, mpls_gro_complete)
dev_add_offload(ETH_P_MPLS_MC, mpls_gro_receive, mpls_gro_complete)
