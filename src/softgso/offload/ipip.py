"""IP-in-IP GSO: ipip and sit (net/ipv4/af_inet.c, net/ipv6/ip6_offload.c), ip4ip6 and ip6ip6.

No tunnel header to pull: each handler checks that gso_type carries its IPXIP bit and hands the
packet to the inner IP handler, which finds ``encap_level`` above 0 and so restricts the features
to ``hw_enc_features`` and honours FIXEDID / UFO at its level. Every segment's header copy spans
all headers from the outer MAC; the outer IP handler then fixes its own header.
"""

from __future__ import annotations

from ..errors import InvalidPacketError
from ..features import GsoType, NetdevFeature
from ..gso import INET6_OFFLOADS, INET_OFFLOADS, GsoContext, InetOffload
from ..packet import Packet
from .ipv4 import inet_gso_segment
from .ipv6 import ipv6_gso_segment

IPPROTO_IPIP = 4
IPPROTO_IPV6 = 41


def ipip_gso_segment(skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext) -> list[Packet] | None:
    """IPv4 in IPv4 (ipip_gso_segment): IPXIP4, then inet_gso_segment."""
    _require(skb, GsoType.IPXIP4, "ipip_gso_segment")
    return inet_gso_segment(skb, data, features, ctx)


def sit_gso_segment(skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext) -> list[Packet] | None:
    """IPv6 in IPv4 (sit_gso_segment): IPXIP4, then ipv6_gso_segment."""
    _require(skb, GsoType.IPXIP4, "sit_gso_segment")
    return ipv6_gso_segment(skb, data, features, ctx)


def ip4ip6_gso_segment(skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext) -> list[Packet] | None:
    """IPv4 in IPv6 (ip4ip6_gso_segment): IPXIP6, then inet_gso_segment."""
    _require(skb, GsoType.IPXIP6, "ip4ip6_gso_segment")
    return inet_gso_segment(skb, data, features, ctx)


def ip6ip6_gso_segment(skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext) -> list[Packet] | None:
    """IPv6 in IPv6 (ip6ip6_gso_segment): IPXIP6, then ipv6_gso_segment."""
    _require(skb, GsoType.IPXIP6, "ip6ip6_gso_segment")
    return ipv6_gso_segment(skb, data, features, ctx)


def _require(skb: Packet, bit: GsoType, where: str) -> None:
    if not skb.gso_type & bit:
        raise InvalidPacketError(f"gso_type lacks {bit.name}", where=where)


# inet_add_offload(&ipip_offload, IPPROTO_IPIP), (&sit_offload, IPPROTO_IPV6);
# inet6_add_offload(&ip4ip6_offload, IPPROTO_IPIP), (&ip6ip6_offload, IPPROTO_IPV6)
INET_OFFLOADS[IPPROTO_IPIP] = InetOffload(ipip_gso_segment)
INET_OFFLOADS[IPPROTO_IPV6] = InetOffload(sit_gso_segment)
INET6_OFFLOADS[IPPROTO_IPIP] = InetOffload(ip4ip6_gso_segment)
INET6_OFFLOADS[IPPROTO_IPV6] = InetOffload(ip6ip6_gso_segment)
