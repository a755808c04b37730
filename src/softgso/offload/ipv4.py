"""IPv4 GSO (inet_gso_segment, net/ipv4/af_inet.c).

Validates the header, hands the packet to the IP protocol's handler, then fixes every segment's
IPv4 header: tot_len, the ID (incremented per segment from the original unless FIXEDID; one
shared ID for UFO fragments, with fragment offsets and MF instead), and the header checksum.
FIXEDID follows the generation the gso_type was built for: 6.1-6.17's one bit (TCP_FIXEDID, the inner
or only header, DF required), or mainline's two (TCP_FIXEDID_OUTER / TCP_FIXEDID_INNER by level).
Everything else (TOS, TTL, DF, options) is copied unchanged.
"""

from __future__ import annotations

import struct

from ..checksum import ipv4_header_checksum
from ..constants import ETH_P_IP, IP_DF, IP_MF, IPV4_MIN_HLEN
from ..errors import InvalidPacketError, ProtocolNotSupportedError
from ..features import GSO_FIXEDID_SPLIT, GsoType, NetdevFeature
from ..gso import INET_OFFLOADS, GsoContext, register_ethertype
from ..packet import Packet


@register_ethertype(ETH_P_IP)
def inet_gso_segment(skb: Packet, data: int, features: NetdevFeature, ctx: GsoContext) -> list[Packet] | None:
    """Segment an IPv4 packet whose header starts at ``data``."""
    skb.network_header = data
    frame = skb.data
    if len(frame) - data < IPV4_MIN_HLEN:
        raise InvalidPacketError("fewer than 20 bytes of IPv4 header", where="inet_gso_segment")
    ihl = (frame[data] & 0x0F) * 4
    if ihl < IPV4_MIN_HLEN:
        raise InvalidPacketError(f"IPv4 IHL {ihl // 4} is below 5", where="inet_gso_segment")
    ip_id = int.from_bytes(frame[data + 4 : data + 6], "big")
    protocol = frame[data + 9]
    if len(frame) - data < ihl:
        raise InvalidPacketError(f"packet ends inside the {ihl}-byte IPv4 header", where="inet_gso_segment")

    encap = ctx.encap_level > 0
    if encap:
        features &= ctx.device.hw_enc_features
    ctx.encap_level += ihl
    skb.transport_header = data + ihl

    udpfrag = fixedid = False
    if skb.gso_type & GSO_FIXEDID_SPLIT:
        # mainline: the outer (or only) level reads SKB_GSO_TCP_FIXEDID, an encapsulated level (IP-in-IP)
        # FIXEDID_INNER, whatever `encapsulation` says (UDP and GRE tunnels reset encap_level, so their
        # inner header reads the outer bit); no DF test since f095a358 ("net: gro: remove unnecessary df checks")
        fixedid = bool(skb.gso_type & (GsoType.TCP_FIXEDID_INNER if encap else GsoType.TCP_FIXEDID_OUTER))
    if not skb.encapsulation or encap:
        udpfrag = bool(skb.gso_type & GsoType.UDP)
        if skb.gso_type & GsoType.TCP_FIXEDID:  # 6.1-6.17: one bit, read at the inner (or only) level
            fixedid = True
            if not int.from_bytes(frame[data + 6 : data + 8], "big") & IP_DF:
                raise ProtocolNotSupportedError("fixed IP ID (TCP_FIXEDID) asked for but DF is clear",
                                                where="inet_gso_segment")

    ops = INET_OFFLOADS.get(protocol)
    if ops is None or ops.gso_segment is None:
        raise ProtocolNotSupportedError(f"no GSO handler for IP protocol {protocol}", where="inet_gso_segment")
    segments = ops.gso_segment(skb, data + ihl, features, ctx)
    if segments is None:
        skb.network_header = data
        return None

    fragment_offset = 0
    last = len(segments) - 1
    for index, seg in enumerate(segments):
        header = seg.data
        # 16-bit fields are stored with htons, which keeps the low 16 bits: only a record longer
        # than any IPv4 packet (a > 64 KB capture) can overflow them, and it wraps as in the kernel
        tot_len = (len(header) - data) & 0xFFFF
        if udpfrag:
            frag_off = (fragment_offset >> 3) & 0xFFFF
            if index != last:
                frag_off |= IP_MF
            struct.pack_into("!H", header, data + 6, frag_off)
            fragment_offset += len(header) - data - ihl
        elif not fixedid:
            struct.pack_into("!H", header, data + 4, ip_id)
            ip_id = (ip_id + 1) & 0xFFFF
        struct.pack_into("!H", header, data + 2, tot_len)
        struct.pack_into("!H", header, data + 10, ipv4_header_checksum(header[data : data + ihl]))
        if encap:
            seg.reset_inner_headers()  # before the network header moves: the inner headers stay the inner ones
        seg.network_header = data
        seg.reset_mac_len()
    return segments
