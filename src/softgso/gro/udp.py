"""net/ipv4/udp_offload.c, net/ipv6/udp_offload.c: udp4/udp6_gro_receive, udp_gro_receive,
udp_gro_receive_segment and the completion, for the one case a capture can show: forwarded UDP on a
device with UDP GRO forwarding on (NETIF_F_GRO_UDP_FWD, off by default). Without it, and with no
local socket asking for UDP_GRO, a UDP frame is passed up as it is (and completes nothing).
Tunnel sockets (VXLAN, Geneve, FOU) are not modelled: their frames pass too.
"""

from __future__ import annotations

from ..checksum import ones_sum, pseudo_header_sum
from .dev import SKB_GSO_UDP_L4, GroDevice, GroSkb, inet6_offloads, inet_offloads, skb_gro_receive
from .inet import gro_receive_network_flush
from .tcp import _addresses

IPPROTO_UDP = 17
UDP_GRO_CNT_MAX = 64


def udp_gro_receive(head: list[GroSkb], skb: GroSkb, device: GroDevice) -> GroSkb | None:
    """udp4/udp6_gro_receive then udp_gro_receive with no socket found."""
    uh = skb.header(skb.data_offset, 8)
    if uh is None:
        return _flush(skb, "truncated UDP header")
    check = int.from_bytes(uh[6:8], "big")
    if not skb.flush and check:
        # skb_gro_checksum_validate_zero_check: a zero checksum is not validated
        src, dst = _addresses(skb)
        segment = memoryview(skb.data)[skb.data_offset :]
        if ones_sum(segment, pseudo_header_sum(src, dst, IPPROTO_UDP, len(segment))) != 0xFFFF:
            return _flush(skb, "bad UDP checksum")
        skb.csum_verified = True
    if not device.udp_gro_forwarding:
        return _flush(skb, "UDP (no GRO: UDP GRO forwarding is off)")
    return udp_gro_receive_segment(head, skb, bytes(uh), device)


def _flush(skb: GroSkb, why: str) -> GroSkb | None:
    """Flush the frame (passed up now), name no held packet."""
    skb.flush |= 1
    skb.why = skb.why or why
    return None


def udp_gro_receive_segment(head: list[GroSkb], skb: GroSkb, uh: bytes, device: GroDevice) -> GroSkb | None:
    """udp_gro_receive_segment: same ports; equal lengths merge, a shorter one merges and ends the packet."""
    if not int.from_bytes(uh[6:8], "big"):
        return _flush(skb, "UDP without checksum")
    ulen = int.from_bytes(uh[4:6], "big")
    if ulen <= 8 or ulen != skb.gro_len():
        return _flush(skb, "UDP length is not the frame's")
    skb.data_offset += 8
    for p in head:
        if not p.same_flow:
            continue
        uh2 = p.data[p.transport_offset : p.transport_offset + 8]
        if uh2[0:4] != uh[0:4]:
            p.same_flow = False
            continue
        why = gro_receive_network_flush(skb, p, device)
        ulen2 = int.from_bytes(uh2[4:6], "big")
        refused = ""
        if ulen > ulen2 or why:
            refused = why or "UDP segment larger than the first"
        else:
            refused = skb_gro_receive(p, skb, device) or ""
        if refused or ulen != ulen2 or p.count >= UDP_GRO_CNT_MAX:
            p.why = refused or ("last segment (short)" if ulen != ulen2 else "64 segments")
            return p
        return None
    return None


def udp_gro_complete(skb: GroSkb, nhoff: int, device: GroDevice) -> None:
    """udp4/udp6_gro_complete + udp_gro_complete: the checksum seed, the UDP length, SKB_GSO_UDP_L4."""
    length = len(skb.data) - nhoff
    if int.from_bytes(skb.data[nhoff + 6 : nhoff + 8], "big"):
        src, dst = _addresses(skb)
        skb.data[nhoff + 6 : nhoff + 8] = pseudo_header_sum(src, dst, IPPROTO_UDP, length).to_bytes(2, "big")
    skb.data[nhoff + 4 : nhoff + 6] = (length & 0xFFFF).to_bytes(2, "big")
    skb.gso_type |= SKB_GSO_UDP_L4


inet_offloads[IPPROTO_UDP] = (udp_gro_receive, udp_gro_complete)
inet6_offloads[IPPROTO_UDP] = (udp_gro_receive, udp_gro_complete)
