"""net/ipv4/af_inet.c inet_gro_receive / inet_gro_complete, and include/net/gro.h inet_gro_flush."""

from __future__ import annotations

from ..checksum import csum16_add, csum16_sub, ones_sum
from ..constants import ETH_P_IP, IP_DF, IP_MF, IP_OFFSET
from .dev import GroDevice, GroSkb, call_gro_receive, dev_add_offload, inet_offloads

IP_MAX_MTU = 0xFFFF


def inet_gro_receive(head: list[GroSkb], skb: GroSkb, device: GroDevice) -> GroSkb | None:
    """inet_gro_receive: bail on what GRO never merges, key the flow on protocol and addresses."""
    offset = skb.data_offset
    iph = skb.header(offset, 20)
    if iph is None:
        return _bail(skb, "truncated IPv4 header")
    proto = iph[9]
    offload = inet_offloads.get(proto)
    if offload is None:
        return _bail(skb, f"no GRO for IP protocol {proto}")
    if iph[0] != 0x45:
        return _bail(skb, "IPv4 options" if iph[0] >> 4 == 4 else "not IPv4 (version)")
    frag_off = int.from_bytes(iph[6:8], "big")
    if frag_off & (IP_MF | IP_OFFSET):
        return _bail(skb, "IPv4 fragment")
    if ones_sum(iph) != 0xFFFF:  # ip_fast_csum, whatever ip_summed says
        return _bail(skb, "bad IPv4 header checksum")
    skb.proto = proto
    # (u16)(tot_len ^ gro_len) | (frag_off & ~DF): trailing bytes or the reserved bit flush the frame
    tot_len = int.from_bytes(iph[2:4], "big")
    if ((tot_len ^ skb.gro_len()) & 0xFFFF) or (frag_off & ~IP_DF & 0xFFFF):
        skb.flush |= 1
        skb.why = "IPv4 total length is not the frame's" if (tot_len ^ skb.gro_len()) & 0xFFFF \
            else "IPv4 reserved flag"
    addresses = bytes(iph[12:20])
    for p in head:
        if not p.same_flow:
            continue
        iph2 = p.data[offset : offset + 20]
        if iph2[9] != proto or iph2[12:20] != addresses:
            p.same_flow = False
    skb.network_offset = offset
    skb.chain.append((inet_gro_complete, offset))
    skb.data_offset += 20
    skb.transport_offset = skb.data_offset
    return call_gro_receive(offload[0], head, skb, device)


def _bail(skb: GroSkb, why: str) -> GroSkb | None:
    """Give up on the frame: flush it (passed up now), name no held packet."""
    skb.flush |= 1
    skb.why = why
    return None


def inet_gro_flush(iph: memoryview | bytes, iph2: bytes | bytearray, p: GroSkb, device: GroDevice,
                   inner: bool = False, tunnel_outer: bool = False) -> str:
    """inet_gro_flush (6.10+; the same outcome as 6.1's flush/flush_id/is_atomic): why ``p`` cannot take
    the new frame, or "" when the IPv4 fields allow it. Records fixed-ID mode on ``p`` at its 2nd segment:
    mainline keeps one bit per header (``inner``: a tunnel's inner header); before it one bit, DF
    required, and a tunnel's outer header with DF has no ID rule at all (``tunnel_outer``)."""
    if iph[8] != iph2[8]:
        return "IPv4 TTL differs"
    if iph[1] != iph2[1]:
        return "IPv4 TOS/ECN differs"
    df = int.from_bytes(iph[6:8], "big") & IP_DF
    if df != int.from_bytes(iph2[6:8], "big") & IP_DF:
        return "IPv4 DF differs"
    ipid_offset = (int.from_bytes(iph[4:6], "big") - int.from_bytes(iph2[4:6], "big")) & 0xFFFF
    count = p.count
    if device.generation.fixedid_needs_df:
        if tunnel_outer and df:
            return ""
        bit = 1
        if count == 1 and ipid_offset == 0 and df:
            p.ip_fixedid |= bit
    else:
        bit = 2 if inner else 1
        if count == 1 and ipid_offset == 0:
            p.ip_fixedid |= bit
    if ipid_offset ^ (0 if p.ip_fixedid & bit else count) & 0xFFFF:
        return "IPv4 ID neither fixed nor incrementing" + (" (inner header)" if inner else "")
    return ""


def gro_receive_network_flush(skb: GroSkb, p: GroSkb, device: GroDevice) -> str:
    """gro_receive_network_flush: the IP header rules against ``p``, the outer header of an IP-in-IP
    tunnel then the inner one (both evaluated, as the kernel ORs them)."""
    from .ipv6 import ipv6_gro_flush

    def one(offset: int, inner: bool, tunnel_outer: bool) -> str:
        iph = memoryview(skb.data)[offset : offset + 40]
        iph2 = p.data[offset : offset + 40]
        if iph[0] >> 4 == 6:
            return ipv6_gro_flush(iph, iph2)
        return inet_gro_flush(iph, iph2, p, device, inner, tunnel_outer)

    if p.encap_mark:
        outer = one(p.outer_network_offset, False, True)
        inner = one(p.network_offset, True, False)
        return outer or inner
    return one(p.network_offset, False, False)


def inet_gro_complete(skb: GroSkb, offset: int, device: GroDevice) -> None:
    """inet_gro_complete: tot_len (0 above 65535, iph_set_totlen), the header checksum patched
    incrementally (csum_replace2), then the transport protocol completes."""
    data = skb.data
    old = int.from_bytes(data[offset + 2 : offset + 4], "big")
    total = len(data) - offset
    new = total if total <= IP_MAX_MTU else 0
    data[offset + 2 : offset + 4] = new.to_bytes(2, "big")
    check = int.from_bytes(data[offset + 10 : offset + 12], "big")
    check = ~csum16_add(csum16_sub(~check & 0xFFFF, old), new) & 0xFFFF
    data[offset + 10 : offset + 12] = check.to_bytes(2, "big")
    inet_offloads[data[offset + 9]][1](skb, offset + 20, device)


def inet_gso_type_fixedid(skb: GroSkb, device: GroDevice) -> int:
    """The fixed-ID gso_type bits completion sets (tcp4_gro_complete: ip_fixedid * SKB_GSO_TCP_FIXEDID)."""
    generation = device.generation
    if generation.fixedid_needs_df:
        return generation.gso_fixedid_bit if skb.ip_fixedid else 0
    return skb.ip_fixedid * generation.gso_fixedid_bit  # bit 1 lands on SKB_GSO_TCP_FIXEDID_INNER


dev_add_offload(ETH_P_IP, inet_gro_receive, inet_gro_complete)
