"""IP-in-IP GRO: net/ipv4/af_inet.c ipip_gro_receive/ipip_gro_complete (IPv4 in IPv4), net/ipv6/
ip6_offload.c sit (IPv6 in IPv4), ip4ip6 and ip6ip6 (in IPv6): one level of encapsulation
(``encap_mark``), the inner IP header handled by inet/ipv6_gro_receive again, completion setting
SKB_GSO_IPXIP4 / SKB_GSO_IPXIP6 by the outer family. GRE (net/ipv4/gre_offload.c) with the K and C flags, over IPv4/IPv6 and TEB (inner Ethernet).
"""

from __future__ import annotations

from ..checksum import ones_sum
from ..constants import ETH_HLEN, ETH_P_TEB, eth_p_mpls
from .dev import (
    SKB_GSO_GRE,
    SKB_GSO_IPXIP4,
    SKB_GSO_IPXIP6,
    GroDevice,
    GroSkb,
    call_gro_receive,
    dev_add_offload,
    gro_offload,
    inet6_offloads,
    inet_offloads,
    packet_offloads,
)
from .inet import inet_gro_complete, inet_gro_receive
from .ipv6 import ipv6_gro_complete, ipv6_gro_receive

IPPROTO_IPIP = 4
IPPROTO_IPV6 = 41
IPPROTO_GRE = 47


def ip_tunnel_gro_receive(head: list[GroSkb], skb: GroSkb, device: GroDevice) -> GroSkb | None:
    """ipip/sit/ip4ip6/ip6ip6_gro_receive: a second level of encapsulation flushes the frame."""
    if skb.encap_mark:
        skb.flush = 1
        skb.why = "IP-in-IP inside IP-in-IP"
        return None
    skb.encap_mark = True
    skb.outer_network_offset = skb.network_offset
    inner = inet_gro_receive if skb.proto == IPPROTO_IPIP else ipv6_gro_receive
    return call_gro_receive(inner, head, skb, device)


def ip_tunnel_gro_complete(skb: GroSkb, nhoff: int, device: GroDevice) -> None:
    """ipip/sit/ip4ip6/ip6ip6_gro_complete: encapsulation, IPXIP4/6 by the outer family, the inner completes."""
    outer_v4 = skb.data[skb.outer_network_offset] >> 4 == 4
    skb.gso_type |= SKB_GSO_IPXIP4 if outer_v4 else SKB_GSO_IPXIP6
    if skb.data[nhoff] >> 4 == 4:
        inet_gro_complete(skb, nhoff, device)
    else:
        ipv6_gro_complete(skb, nhoff, device)


GRE_CSUM = 0x8000
GRE_KEY = 0x2000
GRE_HEADER_SECTION = 4


def gre_gro_receive(head: list[GroSkb], skb: GroSkb, device: GroDevice) -> GroSkb | None:
    """gre_gro_receive (net/ipv4/gre_offload.c): version 0 with only the K and C flags, a protocol
    with GRO (IPv4, IPv6, TEB...), the GRE checksum verified when present; the same tunnel = the same
    flags, protocol and key."""
    if skb.encap_mark:
        return _gre_flush(skb, "GRE inside a tunnel")
    skb.encap_mark = True
    skb.outer_network_offset = skb.network_offset
    offset = skb.data_offset
    greh = skb.header(offset, 4)
    if greh is None:
        return _gre_flush(skb, "truncated GRE header")
    flags = int.from_bytes(greh[0:2], "big")
    if flags & ~(GRE_KEY | GRE_CSUM):
        return _gre_flush(skb, "GRE with sequence numbers, routing or a version other than 0")
    protocol = int.from_bytes(greh[2:4], "big")
    offload = gro_offload(protocol, device)
    if offload is None:
        return _gre_flush(skb, f"no GRO for ethertype {protocol:#06x} inside GRE")
    grehlen = GRE_HEADER_SECTION * (1 + bool(flags & GRE_KEY) + bool(flags & GRE_CSUM))
    if skb.header(offset, grehlen) is None:
        return _gre_flush(skb, "truncated GRE header")
    # skb_gro_checksum_simple_validate over the GRE header and everything after it (unless flushed anyway)
    if flags & GRE_CSUM and not skb.flush and ones_sum(memoryview(skb.data)[offset:]) != 0xFFFF:
        return _gre_flush(skb, "bad GRE checksum")
    header = bytes(skb.data[offset : offset + 4])
    # as the kernel: the 4 bytes after the base header are compared as the key, which is the checksum
    # word when C is set too (so segments with K and C and different checksums are different flows)
    key = bytes(skb.data[offset + 4 : offset + 8]) if flags & GRE_KEY else b""
    for p in head:
        if not p.same_flow:
            continue
        if p.data[offset : offset + 4] != header or (key and p.data[offset + 4 : offset + 8] != key):
            p.same_flow = False
    skb.data_offset += grehlen
    return call_gro_receive(offload[0], head, skb, device)


def _gre_flush(skb: GroSkb, why: str) -> GroSkb | None:
    skb.flush |= 1
    skb.why = why
    return None


def gre_gro_complete(skb: GroSkb, nhoff: int, device: GroDevice) -> None:
    """gre_gro_complete: encapsulation, gso_type = SKB_GSO_GRE (GRE_CSUM is not set, checksum or not),
    then the encapsulated protocol completes after the GRE header."""
    skb.gso_type = SKB_GSO_GRE
    flags = int.from_bytes(skb.data[nhoff : nhoff + 2], "big")
    grehlen = GRE_HEADER_SECTION * (1 + bool(flags & GRE_KEY) + bool(flags & GRE_CSUM))
    protocol = int.from_bytes(skb.data[nhoff + 2 : nhoff + 4], "big")
    packet_offloads[protocol][1](skb, nhoff + grehlen, device)


def eth_gro_receive(head: list[GroSkb], skb: GroSkb, device: GroDevice) -> GroSkb | None:
    """eth_gro_receive (net/ethernet/eth.c, ETH_P_TEB): the inner Ethernet header is part of the flow."""
    offset = skb.data_offset
    eh = skb.header(offset, ETH_HLEN)
    if eh is None:
        return _gre_flush(skb, "truncated inner Ethernet header")
    for p in head:
        if p.same_flow and p.data[offset : offset + ETH_HLEN] != eh:
            p.same_flow = False
    protocol = int.from_bytes(eh[12:14], "big")
    if eth_p_mpls(protocol):
        # the beyond-the-kernel MPLS GRO stops here: no Linux route builds labels behind a tunnel's
        # inner Ethernet header as tunnel GSO, and softgso's GSO cuts that payload only as TCP/UDP
        # over IP, so an aggregate could not be cut back
        return _gre_flush(skb, "MPLS inside a tunnel's Ethernet frame")
    offload = gro_offload(protocol, device)
    if offload is None:
        return _gre_flush(skb, f"no GRO for inner ethertype {protocol:#06x}")
    skb.data_offset += ETH_HLEN
    return call_gro_receive(offload[0], head, skb, device)


def eth_gro_complete(skb: GroSkb, nhoff: int, device: GroDevice) -> None:
    """eth_gro_complete: the inner Ethernet header stays; its protocol completes."""
    protocol = int.from_bytes(skb.data[nhoff + 12 : nhoff + 14], "big")
    packet_offloads[protocol][1](skb, nhoff + ETH_HLEN, device)


dev_add_offload(ETH_P_TEB, eth_gro_receive, eth_gro_complete)


for _table in (inet_offloads, inet6_offloads):
    _table[IPPROTO_IPIP] = (ip_tunnel_gro_receive, ip_tunnel_gro_complete)
    _table[IPPROTO_IPV6] = (ip_tunnel_gro_receive, ip_tunnel_gro_complete)
    _table[IPPROTO_GRE] = (gre_gro_receive, gre_gro_complete)
