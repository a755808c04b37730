"""IP protocols the kernel's GRO takes as tunnels (IPIP 4, IPv6-in-IP 41, GRE 47): their inner GRO is not
modelled yet, so such frames are passed up as they are and reported (the kernel would coalesce inside)."""

from __future__ import annotations

from .dev import GroDevice, GroSkb, inet6_offloads, inet_offloads


def tunnel_gro_receive(head: list[GroSkb], skb: GroSkb, device: GroDevice) -> GroSkb | None:
    """Pass the frame up: tunnel GRO is not modelled."""
    skb.flush |= 1
    skb.why = "tunnel GRO not modelled (IPIP/GRE): passed up"
    return None


def tunnel_gro_complete(skb: GroSkb, nhoff: int, device: GroDevice) -> None:
    """Never called: a tunnelled frame is never held."""


for _proto in (4, 41, 47):
    inet_offloads[_proto] = (tunnel_gro_receive, tunnel_gro_complete)
    inet6_offloads[_proto] = (tunnel_gro_receive, tunnel_gro_complete)
