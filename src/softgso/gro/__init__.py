"""Linux generic receive offload (GRO) in userspace, mirroring the kernel function by function.

    dev.py      net/core/gro.c: the flow table, dev_gro_receive, skb_gro_receive, gro_complete, flush
    vlan.py     net/8021q/vlan_core.c: vlan_gro_receive/complete
    inet.py     net/ipv4/af_inet.c: inet_gro_receive/complete; include/net/gro.h inet_gro_flush
    ipv6.py     net/ipv6/ip6_offload.c: ipv6_gro_receive/complete; ipv6_gro_flush
    tcp.py      net/ipv4/tcp_offload.c, net/ipv6/tcpv6_offload.c
    udp.py      net/ipv4/udp_offload.c: forwarded UDP, only with UDP GRO forwarding on
    mpls.py     beyond the kernel: MPLS under identical label stacks (``GroDevice.mpls``)
    tunnels.py  IP-in-IP (ipip, sit, ip4ip6, ip6ip6), GRE and TEB (eth_gro_receive)
    coalesce.py the coalesce run: polls of N frames, the summary

Sans-I/O: bytes in, bytes plus metadata out. See docs/kernel-notes.md ("GRO") for the kernel evidence.
"""

from . import inet, ipv6, mpls, tcp, tunnels, udp, vlan  # noqa: F401 - each registers its handlers
from .coalesce import (
    CoalescePreview,
    CoalesceSummary,
    coalesce_frames,
    coalesce_poll,
    coalesce_poll_at,
    gso_comment,
    parse_gso_comment,
)
from .dev import GENERATIONS, GRO_MAX_SIZE, KERNELS, GroDevice, GroNode, GroPacket

__all__ = [
    "GENERATIONS", "GRO_MAX_SIZE", "KERNELS", "CoalescePreview", "CoalesceSummary", "GroDevice", "GroNode", "GroPacket",
    "coalesce_frames", "coalesce_poll", "coalesce_poll_at", "gso_comment", "parse_gso_comment",
]
