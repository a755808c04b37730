"""net/ipv6/ip6_offload.c ipv6_gro_receive / ipv6_gro_complete, and include/net/gro.h ipv6_gro_flush."""

from __future__ import annotations

from ..constants import ETH_P_IPV6, IPV6_HLEN, IPV6_TLV_JUMBO
from .dev import GroDevice, GroSkb, call_gro_receive, dev_add_offload, inet6_offloads

NEXTHDR_HOP = 0
NEXTHDR_ROUTING = 43
NEXTHDR_DEST = 60
# ipv6_gso_pull_exthdrs walks hop-by-hop and the headers registered with INET6_PROTO_GSO_EXTHDR
GSO_EXTHDRS = (NEXTHDR_HOP, NEXTHDR_ROUTING, NEXTHDR_DEST)
IPV6_MAXPLEN = 65535


def ipv6_gro_receive(head: list[GroSkb], skb: GroSkb, device: GroDevice) -> GroSkb | None:
    """ipv6_gro_receive: skip hop-by-hop, routing and destination options; key on the flow label,
    addresses, next header and the skipped headers' bytes."""
    offset = skb.data_offset
    iph = skb.header(offset, IPV6_HLEN)
    if iph is None:
        return _bail(skb, "truncated IPv6 header")
    flush = int.from_bytes(iph[4:6], "big") != skb.gro_len() - IPV6_HLEN
    proto = iph[6]
    nlen = IPV6_HLEN
    if proto not in inet6_offloads:
        while proto in GSO_EXTHDRS:
            ext = skb.header(offset + nlen, 8)
            if ext is None:
                return _bail(skb, "truncated IPv6 extension header")
            length = (ext[1] + 1) * 8
            if skb.header(offset + nlen, length) is None:
                return _bail(skb, "truncated IPv6 extension header")
            proto = ext[0]
            nlen += length
        if proto not in inet6_offloads:
            return _bail(skb, "IPv6 fragment header" if proto == 44 else f"no GRO for IPv6 next header {proto}")
    skb.proto = proto
    first_word = int.from_bytes(iph[0:4], "big")
    fixed = bytes(iph[6:7]) + bytes(iph[8:40])
    extensions = bytes(skb.data[offset + IPV6_HLEN : offset + nlen])
    for p in head:
        if not p.same_flow:
            continue
        iph2 = p.data[offset : offset + IPV6_HLEN]
        if ((first_word ^ int.from_bytes(iph2[0:4], "big")) & 0xF00FFFFF) \
                or bytes(iph2[6:7]) + bytes(iph2[8:40]) != fixed \
                or (nlen > IPV6_HLEN and p.data[offset + IPV6_HLEN : offset + nlen] != extensions):
            p.same_flow = False
    if flush:
        skb.flush |= 1
        skb.why = "IPv6 payload length is not the frame's"
    skb.network_offset = offset
    skb.chain.append((ipv6_gro_complete, offset))
    skb.data_offset += nlen
    skb.transport_offset = skb.data_offset
    return call_gro_receive(inet6_offloads[proto][0], head, skb, device)


def _bail(skb: GroSkb, why: str) -> GroSkb | None:
    """Give up on the frame: flush it (passed up now), name no held packet."""
    skb.flush |= 1
    skb.why = why
    return None


def ipv6_gro_flush(iph: memoryview | bytes, iph2: bytes | bytearray) -> str:
    """ipv6_gro_flush: traffic class and hop limit must equal the held packet's."""
    if (int.from_bytes(iph[0:4], "big") ^ int.from_bytes(iph2[0:4], "big")) & 0x0FF00000:
        return "IPv6 traffic class differs"
    if iph[7] != iph2[7]:
        return "IPv6 hop limit differs"
    return ""


def ipv6_exthdrs_len(data: bytearray, offset: int) -> tuple[int, int]:
    """ipv6_exthdrs_len: the bytes of the extension headers GRO skipped, and the protocol after them."""
    proto = data[offset + 6]
    length = 0
    while proto not in inet6_offloads and proto in GSO_EXTHDRS:
        at = offset + IPV6_HLEN + length
        proto = data[at]
        length += (data[at + 1] + 1) * 8
    return length, proto


def ipv6_gro_complete(skb: GroSkb, offset: int, device: GroDevice) -> None:
    """ipv6_gro_complete: payload_len; above 65535 (BIG TCP) a hop-by-hop jumbo header on 6.1/6.12,
    payload_len 0 alone in mainline; then the transport protocol completes."""
    data = skb.data
    payload_len = len(data) - offset - IPV6_HLEN
    if payload_len > IPV6_MAXPLEN:
        if device.generation.ipv6_hbh_jumbo:
            # the kernel moves the headers 8 bytes left into the headroom: the same bytes as an insertion
            hop_jumbo = bytes([data[offset + 6], 0, IPV6_TLV_JUMBO, 4]) + (payload_len + 8).to_bytes(4, "big")
            data[offset + IPV6_HLEN : offset + IPV6_HLEN] = hop_jumbo
            data[offset + 6] = NEXTHDR_HOP
        data[offset + 4 : offset + 6] = b"\0\0"
    else:
        data[offset + 4 : offset + 6] = payload_len.to_bytes(2, "big")
    extensions, proto = ipv6_exthdrs_len(data, offset)
    inet6_offloads[proto][1](skb, offset + IPV6_HLEN + extensions, device)


dev_add_offload(ETH_P_IPV6, ipv6_gro_receive, ipv6_gro_complete)
