"""net/ipv4/tcp_offload.c and net/ipv6/tcpv6_offload.c: tcp4/tcp6_gro_receive (checksum, header pull),
tcp_gro_lookup, tcp_gro_receive (the flush rules), tcp_gro_complete, tcp4/tcp6_gro_complete."""

from __future__ import annotations

from ..checksum import ones_sum, pseudo_header_sum
from .dev import (
    SKB_GSO_TCPV4,
    SKB_GSO_TCPV6,
    GroDevice,
    GroSkb,
    inet6_offloads,
    inet_offloads,
    skb_gro_receive,
)
from .inet import gro_receive_network_flush, inet_gso_type_fixedid

IPPROTO_TCP = 6
TCP_FLAG_CWR = 0x00800000
TCP_FLAG_ECE = 0x00400000
TCP_FLAG_URG = 0x00200000
TCP_FLAG_ACK = 0x00100000
TCP_FLAG_PSH = 0x00080000
TCP_FLAG_RST = 0x00040000
TCP_FLAG_SYN = 0x00020000
TCP_FLAG_FIN = 0x00010000
FINAL_FLAGS = TCP_FLAG_URG | TCP_FLAG_PSH | TCP_FLAG_RST | TCP_FLAG_SYN | TCP_FLAG_FIN


def _addresses(skb: GroSkb) -> tuple[bytes, bytes]:
    nh = skb.network_offset
    if skb.data[nh] >> 4 == 4:
        return bytes(skb.data[nh + 12 : nh + 16]), bytes(skb.data[nh + 16 : nh + 20])
    return bytes(skb.data[nh + 8 : nh + 24]), bytes(skb.data[nh + 24 : nh + 40])


def skb_gro_checksum_validate(skb: GroSkb) -> bool:
    """skb_gro_checksum_validate for CHECKSUM_NONE (a capture says nothing of the NIC's checksum
    offload): the whole segment summed with its pseudo-header must fold to 0."""
    src, dst = _addresses(skb)
    segment = memoryview(skb.data)[skb.data_offset :]
    valid = ones_sum(segment, pseudo_header_sum(src, dst, IPPROTO_TCP, len(segment))) == 0xFFFF
    skb.csum_verified = valid
    return valid


def tcp_gro_pull_header(skb: GroSkb) -> memoryview | None:
    """tcp_gro_pull_header: 20 bytes, a data offset of at least 5 words, all of them present."""
    th = skb.header(skb.data_offset, 20)
    if th is None:
        return None
    thlen = (th[12] >> 4) * 4
    if thlen < 20:
        return None
    th = skb.header(skb.data_offset, thlen)
    if th is None:
        return None
    skb.data_offset += thlen
    return th


def tcp4_gro_receive(head: list[GroSkb], skb: GroSkb, device: GroDevice) -> GroSkb | None:
    """tcp4_gro_receive: validate the checksum (unless the frame is flushed anyway), pull the header."""
    return _tcp_gro_receive_entry(head, skb, device)


def tcp6_gro_receive(head: list[GroSkb], skb: GroSkb, device: GroDevice) -> GroSkb | None:
    """tcp6_gro_receive: as tcp4_gro_receive, with the IPv6 pseudo-header."""
    return _tcp_gro_receive_entry(head, skb, device)


def _tcp_gro_receive_entry(head: list[GroSkb], skb: GroSkb, device: GroDevice) -> GroSkb | None:
    if not skb.flush and not skb_gro_checksum_validate(skb):
        skb.flush = 1
        skb.why = "bad TCP checksum"
        return None
    th = tcp_gro_pull_header(skb)
    if th is None:
        skb.flush = 1
        skb.why = skb.why or "truncated TCP header"
        return None
    return tcp_gro_receive(head, skb, bytes(th), device)


def tcp_gro_lookup(head: list[GroSkb], th: bytes) -> GroSkb | None:
    """tcp_gro_lookup: the newest held packet still of the same flow with the same ports."""
    for p in head:
        if not p.same_flow:
            continue
        if p.data[p.transport_offset : p.transport_offset + 4] != th[0:4]:
            p.same_flow = False
            continue
        return p
    return None


def _flush_reason(skb: GroSkb, p: GroSkb, th: bytes, flags: int, device: GroDevice) -> str:
    """tcp_gro_receive's flush conditions, each named (the kernel ORs them; the first found is named)."""
    th2 = p.data[p.transport_offset : p.transport_offset + len(th)]
    flags2 = int.from_bytes(th2[12:16], "big")
    if device.generation.cwr_always_flushes:
        if flags & TCP_FLAG_CWR:
            return "TCP CWR"
        ignored = TCP_FLAG_CWR | TCP_FLAG_FIN | TCP_FLAG_PSH
    else:
        ignored = TCP_FLAG_FIN | TCP_FLAG_PSH
    if (flags ^ flags2) & ~ignored & 0xFFFFFFFF:
        differs = (flags ^ flags2) & ~ignored
        if differs & 0xFFFF:
            return "TCP window differs"
        if differs & 0xF0000000:
            return "TCP header length differs"
        return "TCP flags differ"
    if th[8:12] != th2[8:12]:
        return "TCP ACK number differs"
    if th[20:] != th2[20 : len(th)]:
        return "TCP options differ"
    why = gro_receive_network_flush(skb, p, device)
    if why:
        return why
    length = skb.gro_len()
    if (length - 1) & 0xFFFFFFFF >= p.gso_size:
        return "segment larger than the first" if length else "no payload"
    payload2 = len(p.data) - p.data_offset
    seq = int.from_bytes(th[4:8], "big")
    seq2 = int.from_bytes(th2[4:8], "big")
    if (seq2 + payload2) & 0xFFFFFFFF != seq:
        return "TCP sequence gap"
    return ""


def tcp_gro_receive(head: list[GroSkb], skb: GroSkb, th: bytes, device: GroDevice) -> GroSkb | None:
    """tcp_gro_receive: merge into the flow's held packet when nothing forbids it; name the held packet
    to complete when the merge failed or this frame ends the aggregate."""
    length = skb.gro_len()
    flags = int.from_bytes(th[12:16], "big")
    mss = 1
    p = tcp_gro_lookup(head, th)
    if p is not None:
        why = _flush_reason(skb, p, th, flags, device)
        mss = p.gso_size
        if not why:
            why = skb_gro_receive(p, skb, device) or ""
        if why:
            mss = 1
            p.why = why
        else:
            offset = p.transport_offset + 13
            p.data[offset] |= (flags >> 16) & 0x09  # FIN and PSH of every merged segment
    # out_check_final: a short segment, or URG/PSH/RST/SYN/FIN, ends the aggregate
    final = length < mss or bool(flags & FINAL_FLAGS)
    if p is not None and (not skb.same_flow or final):
        if skb.same_flow:
            p.why = "last segment (short)" if length < mss else "last segment (" + _flag_names(flags) + ")"
        pp = p
    else:
        pp = None
    if final:
        skb.flush |= 1
        if not skb.same_flow and not skb.why:
            skb.why = "no payload" if length == 0 and not flags & FINAL_FLAGS else _flag_names(flags) or "short"
    return pp


def _flag_names(flags: int) -> str:
    names = [(TCP_FLAG_URG, "URG"), (TCP_FLAG_PSH, "PSH"), (TCP_FLAG_RST, "RST"), (TCP_FLAG_SYN, "SYN"),
             (TCP_FLAG_FIN, "FIN")]
    return "/".join(name for bit, name in names if flags & bit)


def tcp_gro_complete(skb: GroSkb, thoff: int, device: GroDevice) -> None:
    """tcp_gro_complete: CHECKSUM_PARTIAL at the TCP header, gso_segs, the ECN bit when CWR leads."""
    if skb.data[thoff + 13] & 0x80:
        skb.gso_type |= device.generation.gso_ecn_bit


def tcp4_gro_complete(skb: GroSkb, thoff: int, device: GroDevice) -> None:
    """tcp4_gro_complete: the checksum becomes the pseudo-header seed; TCPV4, FIXEDID in fixed-ID mode."""
    _seed(skb, thoff)
    skb.gso_type |= SKB_GSO_TCPV4 | inet_gso_type_fixedid(skb, device)
    tcp_gro_complete(skb, thoff, device)


def tcp6_gro_complete(skb: GroSkb, thoff: int, device: GroDevice) -> None:
    """tcp6_gro_complete: the pseudo-header seed and TCPV6."""
    _seed(skb, thoff)
    skb.gso_type |= SKB_GSO_TCPV6
    tcp_gro_complete(skb, thoff, device)


def _seed(skb: GroSkb, thoff: int) -> None:
    # ~tcp_v4_check(len, s, d, 0) / ~tcp_v6_check: the folded pseudo-header sum, not inverted
    src, dst = _addresses(skb)
    seed = pseudo_header_sum(src, dst, IPPROTO_TCP, len(skb.data) - thoff)
    skb.data[thoff + 16 : thoff + 18] = seed.to_bytes(2, "big")


inet_offloads[IPPROTO_TCP] = (tcp4_gro_receive, tcp4_gro_complete)
inet6_offloads[IPPROTO_TCP] = (tcp6_gro_receive, tcp6_gro_complete)
