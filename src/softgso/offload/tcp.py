"""TCP segmentation (tcp4_gso_segment / tcp6_gso_segment / tcp_gso_segment).

Per segment: seq advances by gso_size; CWR stays on the first segment only, FIN and PSH on the
last only; options, window, ack and URG pointer are copied. The checksum is derived from the
input's checksum field exactly as the kernel derives it: the field is taken to hold the
pseudo-header sum for the whole L4 length (CHECKSUM_PARTIAL), and each segment's pseudo-header
sum is that value with the length swapped (old length out, new length in). A wrong seed therefore
gives wrong checksums, as it does in the kernel.
"""

from __future__ import annotations

import struct

from ..checksum import csum_add, csum_fold, ones_sum, pseudo_header_sum
from ..constants import IPPROTO_TCP, TCP_CHECK_OFFSET, TCP_FLAG_CWR, TCP_FLAG_FIN, TCP_FLAG_PSH, TCP_MIN_HLEN
from ..errors import InvalidPacketError
from ..features import GsoType, IpSummed, NetdevFeature
from ..gso import GSO_CB, GsoContext, register_inet, skb_gso_ok, skb_segment
from ..packet import Packet


@register_inet(IPPROTO_TCP, ipv6=False)
def tcp4_gso_segment(skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext) -> list[Packet] | None:
    """TCP over IPv4: the gso_type must say TCPV4."""
    return _tcp_gso_entry(skb, data, features, ctx, GsoType.TCPV4)


@register_inet(IPPROTO_TCP, ipv4=False)
def tcp6_gso_segment(skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext) -> list[Packet] | None:
    """TCP over IPv6: the gso_type must say TCPV6."""
    return _tcp_gso_entry(skb, data, features, ctx, GsoType.TCPV6)


def _tcp_gso_entry(
    skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext, family: GsoType
) -> list[Packet] | None:
    """Check the family bit, seed the checksum if the stack has not (tcp4/6_gso_segment)."""
    where = "tcp4_gso_segment" if family == GsoType.TCPV4 else "tcp6_gso_segment"
    if not skb.gso_type & family:
        ip = "IPv4" if family == GsoType.TCPV4 else "IPv6"
        raise InvalidPacketError(f"gso_type {_gso_type_names(skb.gso_type)} lacks {family.name} on an {ip} packet",
                                 where=where)
    if len(skb.data) - data < TCP_MIN_HLEN:
        raise InvalidPacketError("fewer than 20 bytes of TCP header", where=where)
    if skb.ip_summed != IpSummed.PARTIAL:
        # set up the pseudo-header seed as the stack would have (__tcp_v4_send_check)
        src, dst = ip_addresses(skb.data, skb.network_header or 0, ipv6=family == GsoType.TCPV6)
        seed = pseudo_header_sum(src, dst, IPPROTO_TCP, len(skb.data) - data)
        struct.pack_into("!H", skb.data, data + TCP_CHECK_OFFSET, seed)
        skb.ip_summed = IpSummed.PARTIAL
        skb.csum_start = data
        skb.csum_offset = TCP_CHECK_OFFSET
    return tcp_gso_segment(skb, data, features, ctx)


def _gso_type_names(gso_type: GsoType) -> str:
    return "|".join(m.name for m in GsoType if m.value and gso_type & m and m.name) or "0"


def tcp_gso_segment(skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext) -> list[Packet] | None:
    """The family-independent part of TCP segmentation."""
    frame = skb.data
    thlen = (frame[data + 12] >> 4) * 4
    if thlen < TCP_MIN_HLEN:
        raise InvalidPacketError(f"TCP data offset {thlen // 4} is below 5", where="tcp_gso_segment")
    if skb.csum_start != data:
        raise InvalidPacketError(
            f"checksum start {skb.csum_start} is not the TCP header at {data}", where="tcp_gso_segment"
        )
    if len(frame) - data < thlen:
        raise InvalidPacketError(f"packet ends inside the {thlen}-byte TCP header", where="tcp_gso_segment")
    old_len = len(frame) - data
    payload_len = old_len - thlen
    mss = skb.gso_size
    if payload_len <= mss:
        raise InvalidPacketError(
            f"TCP payload of {payload_len} bytes fits in one segment of gso_size {mss}", where="tcp_gso_segment"
        )
    if skb_gso_ok(skb, features | NetdevFeature.GSO_ROBUST):
        # untrusted metadata re-validated; the device can take the packet whole
        skb.gso_segs = -(-payload_len // mss)
        return None

    segments = skb_segment(skb, data + thlen, mss, features, ctx)
    seed = int.from_bytes(frame[data + 16 : data + 18], "big")
    old_len_complement = ~old_len & 0xFFFFFFFF  # as tcp_gso_segment: 32-bit ~skb->len (BIG TCP exceeds 64K)
    seq = int.from_bytes(frame[data + 4 : data + 8], "big")
    last = len(segments) - 1
    for index, seg in enumerate(segments):
        header = seg.data
        flags = header[data + 13]
        if index != 0:
            flags &= ~TCP_FLAG_CWR
            struct.pack_into("!I", header, data + 4, (seq + index * mss) & 0xFFFFFFFF)
        if index != last:
            flags &= ~(TCP_FLAG_FIN | TCP_FLAG_PSH)
        header[data + 13] = flags
        seg_l4_len = len(header) - data
        pseudo = csum_add(seed, old_len_complement + seg_l4_len)
        struct.pack_into("!H", header, data + TCP_CHECK_OFFSET, pseudo)
        finish_l4_checksum(seg, data, data + TCP_CHECK_OFFSET, mangle_zero=False)
    return segments


# SKB_GSO_CB(skb)->csum / csum_start as the L4 handler leaves them for an outer (tunnel) handler:
# the complement of the segment's L4 seed, and the L4 header it starts at (gso_make_checksum and
# gso_reset_checksum both store ``~check``); the key lives in softgso.gso


def gso_cb_seed(seed: int) -> int:
    """``(__wsum)~th->check``: C promotes the 16-bit field to int before the complement."""
    return 0xFFFF0000 | (~seed & 0xFFFF)


def finish_l4_checksum(seg: Packet, l4: int, check_at: int, *, mangle_zero: bool) -> None:
    """Leave the seed for the device (PARTIAL), or fold header + payload into the final checksum.

    The check field holds the segment's pseudo-header sum; gso_make_checksum sums the L4 header
    (with that field) and the payload sum skb_segment kept.
    """
    seed = int.from_bytes(seg.data[check_at : check_at + 2], "big")
    if seg.ip_summed == IpSummed.PARTIAL:
        seg.csum_start = l4
        if not seg.remcsum_offload:  # gso_reset_checksum leaves SKB_GSO_CB alone under remote checksum offload
            seg.extras[GSO_CB] = (gso_cb_seed(seed), l4)
        return
    seg.extras[GSO_CB] = (gso_cb_seed(seed), l4)
    payload_offset = int(seg.extras.pop("payload_offset", len(seg.data)))  # type: ignore[call-overload]
    payload_sum = int(seg.extras.pop("payload_sum", 0))  # type: ignore[call-overload]
    total = ones_sum(memoryview(seg.data)[l4:payload_offset], payload_sum)
    check = csum_fold(total)
    if mangle_zero and check == 0:
        check = 0xFFFF
    struct.pack_into("!H", seg.data, check_at, check)


def ip_addresses(frame: bytearray | bytes, network: int, *, ipv6: bool) -> tuple[bytes, bytes]:
    """Source and destination address of the IPv4 or IPv6 header at ``network``."""
    if ipv6:
        return bytes(frame[network + 8 : network + 24]), bytes(frame[network + 24 : network + 40])
    return bytes(frame[network + 12 : network + 16]), bytes(frame[network + 16 : network + 20])
