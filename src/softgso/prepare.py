"""From a captured frame to the packet its sender had: layout, checksum state, GSO metadata.

A capture carries no GSO metadata of its own. This module reads what the frame says: where the
link-layer header, VLAN tags, label stack, IP header (options, extension headers) and L4 header
are; whether the L4 checksum field holds a full checksum or a CHECKSUM_PARTIAL seed; and, with
the user's options, the gso_type and gso_size the sending stack would have set. It never segments:
that is the engine's job (:func:`softgso.xmit.transmit`).
"""

from __future__ import annotations

import struct
from enum import Enum

from .checksum import ones_sum, pseudo_header_sum
from .constants import (
    ETH_HLEN,
    ETH_P_IP,
    ETH_P_IPV6,
    IP_MF,
    IP_OFFSET,
    IPPROTO_DSTOPTS,
    IPPROTO_HOPOPTS,
    IPPROTO_ROUTING,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV4_MIN_HLEN,
    IPV6_HLEN,
    MPLS_HLEN,
    TCP_CHECK_OFFSET,
    TCP_MIN_HLEN,
    UDP_CHECK_OFFSET,
    UDP_HLEN,
    VLAN_HLEN,
    eth_p_mpls,
    eth_type_vlan,
)
from .features import GsoType, IpSummed
from .packet import KERNEL_KEY, Packet
from .valueclass import FrozenValueClass, init_fields


class L4Checksum(Enum):
    """What the L4 checksum field of a captured packet holds."""

    COMPLETE = "complete"  # a valid full checksum
    PARTIAL = "partial"  # the pseudo-header seed of CHECKSUM_PARTIAL (captured on a sending Linux host)
    ZERO = "zero"  # 0: UDP over IPv4 without checksum, or a field a sender left empty
    SEED_NOLEN = "seed-nolen"  # the pseudo-header sum without the length (Windows large-send offload)
    INVALID = "invalid"  # none of these: a bad checksum


class FrameLayout(FrozenValueClass):
    """Where each header of an Ethernet frame starts (offsets from the frame start)."""

    vlan_tags: int
    labels: int
    network: int  # the IP header (below any label stack)
    ip_version: int
    l3_len: int  # IP header with options / extension headers
    l4_proto: int
    transport: int
    l4_hdr_len: int
    frame_len: int
    jumbo: bool  # IPv6 BIG TCP hop-by-hop jumbo option
    fragment: bool  # an IP fragment: no L4 header to speak of
    ip_end: int  # where the IP packet ends by its length fields (-1: at the frame's end)
    length_problem: str | None  # length fields the frame contradicts (a capture-sanity check)
    jumbo_dropped: bool  # ipv6_gso_segment takes the jumbo header off: the segments' headers are 8 bytes shorter

    def __init__(self, vlan_tags: int, labels: int, network: int, ip_version: int, l3_len: int,
                 l4_proto: int, transport: int, l4_hdr_len: int, frame_len: int, jumbo: bool = False,
                 fragment: bool = False, ip_end: int = -1, length_problem: str | None = None,
                 jumbo_dropped: bool = False) -> None:
        init_fields(self, locals())

    @property
    def trailer_len(self) -> int:
        """Bytes behind the IP packet: link padding or a trailer, never payload."""
        return 0 if self.ip_end < 0 else self.frame_len - self.ip_end

    @property
    def payload(self) -> int:
        """Offset of the L4 payload."""
        return self.transport + self.l4_hdr_len

    @property
    def payload_len(self) -> int:
        """Bytes of L4 payload."""
        return self.frame_len - self.payload

    @property
    def l2_len(self) -> int:
        """Ethernet header and VLAN tags."""
        return ETH_HLEN + VLAN_HLEN * self.vlan_tags

    @property
    def ethertype(self) -> int:
        """The IP version's ethertype."""
        return ETH_P_IP if self.ip_version == 4 else ETH_P_IPV6


def parse_layout(frame: bytes | bytearray | memoryview) -> FrameLayout | None:
    """The layout of an Ethernet frame carrying TCP or UDP over IPv4/IPv6, or None for anything else.

    Labels are walked to the bottom of the stack; what follows is IPv4 or IPv6 by its first nibble
    (the capture has no inner_protocol to tell).
    """
    length = len(frame)
    if length < ETH_HLEN:
        return None
    offset = 12
    tags = 0
    ethertype = int.from_bytes(frame[12:14], "big")
    while eth_type_vlan(ethertype) and offset + 6 <= length:
        tags += 1
        offset += VLAN_HLEN
        ethertype = int.from_bytes(frame[offset : offset + 2], "big")
    offset += 2
    labels = 0
    if eth_p_mpls(ethertype):
        while True:
            if offset + MPLS_HLEN > length:
                return None
            labels += 1
            bottom = frame[offset + 2] & 0x01
            offset += MPLS_HLEN
            if bottom:
                break
        if offset >= length:
            return None
        version = frame[offset] >> 4
        ethertype = ETH_P_IP if version == 4 else ETH_P_IPV6 if version == 6 else 0
    network = offset
    jumbo = fragment = False
    if ethertype == ETH_P_IP:
        if network + IPV4_MIN_HLEN > length or frame[network] >> 4 != 4:
            return None
        l3_len = (frame[network] & 0x0F) * 4
        if l3_len < IPV4_MIN_HLEN or network + l3_len > length:
            return None
        proto = frame[network + 9]
        fragment = bool(int.from_bytes(frame[network + 6 : network + 8], "big") & (IP_MF | IP_OFFSET))
        version = 4
    elif ethertype == ETH_P_IPV6:
        if network + IPV6_HLEN > length or frame[network] >> 4 != 6:
            return None
        proto = frame[network + 6]
        at = network + IPV6_HLEN
        jumbo = proto == IPPROTO_HOPOPTS and frame[network + 4 : network + 6] == b"\0\0" and at + 8 <= length \
            and frame[at + 2] == 0xC2
        while proto in (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS):
            if at + 8 > length:
                return None
            proto, at = frame[at], at + (frame[at + 1] + 1) * 8
        if at > length:
            return None
        l3_len = at - network
        version = 6
        fragment = proto == 44
    else:
        return None
    transport = network + l3_len
    ip_end, problem = _ip_end(frame, network, version, l3_len, jumbo)
    if proto == IPPROTO_TCP and not fragment:
        if transport + TCP_MIN_HLEN > length:
            return None
        l4_hdr_len = (frame[transport + 12] >> 4) * 4
        if l4_hdr_len < TCP_MIN_HLEN or transport + l4_hdr_len > length:
            return None
    elif proto == IPPROTO_UDP and not fragment:
        if transport + UDP_HLEN > length:
            return None
        l4_hdr_len = UDP_HLEN
        udp_len = int.from_bytes(frame[transport + 4 : transport + 6], "big")
        end = length if ip_end < 0 else ip_end
        # 0 stands for "too long for the field" (BIG UDP inside tunnels); any other value must agree
        if problem is None and udp_len and udp_len != end - transport:
            problem = f"UDP length {udp_len} disagrees with the {end - transport} bytes of the IP payload"
    else:
        return None
    if problem is None and ip_end >= 0 and ip_end < transport + l4_hdr_len:
        problem = f"the IP length ends the packet inside its {'TCP' if proto == IPPROTO_TCP else 'UDP'} header"
    return FrameLayout(tags, labels, network, version, l3_len, proto, transport, l4_hdr_len, length, jumbo, fragment,
                       -1 if ip_end == length else ip_end, problem,
                       jumbo and _jumbo_header_dropped(frame, tags, network, ip_end))


def _jumbo_header_dropped(frame: bytes | bytearray | memoryview, tags: int, network: int, ip_end: int) -> bool:
    """Whether the segments come out without the packet's jumbo hop-by-hop header: the engine's own rule
    (offload.ipv6.jumbo_header_leaves_segments) on the frame as the engine gets it, its outer tag out of
    band and no trailer. Otherwise every segment carries as many header bytes (gso_size_for_mtu counts
    them)."""
    # (loaded with the engine; a jumbo frame alone asks here)
    from .offload.ipv6 import jumbo_header_leaves_segments

    return jumbo_header_leaves_segments(memoryview(frame)[:ip_end], VLAN_HLEN if tags else 0, network)


def _ip_end(frame: bytes | bytearray | memoryview, network: int, version: int, l3_len: int,
            jumbo: bool) -> tuple[int, str | None]:
    """Where the IP packet ends by its own length field, and what the frame contradicts (or None).

    A length of 0 is the BIG TCP marker (IPv4 tot_len 0 as ip_rcv accepts it for GSO packets;
    IPv6 payload length 0, with or without a jumbo option) and also how Windows large-send frames
    are captured: the packet then ends with the frame. Bytes behind the end are a trailer.
    """
    length = len(frame)
    if version == 4:
        total = int.from_bytes(frame[network + 2 : network + 4], "big")
        if total == 0:
            return length, None
        if total < l3_len:
            return length, f"IPv4 total length {total} is shorter than its {l3_len}-byte header"
        end = network + total
        if end > length:
            return length, f"IPv4 total length {total} claims more than the {length - network} bytes of IP in the frame"
        return end, None
    payload = int.from_bytes(frame[network + 4 : network + 6], "big")
    if payload == 0:
        if not jumbo:
            return length, None
        # the Jumbo Payload option's value (RFC 2675): the length after the fixed header
        payload = int.from_bytes(frame[network + IPV6_HLEN + 4 : network + IPV6_HLEN + 8], "big")
    end = network + IPV6_HLEN + payload
    if end > length:
        return length, f"IPv6 payload length {payload} claims more than the {length - network - IPV6_HLEN} bytes in the frame"
    if end < network + l3_len:
        return length, f"IPv6 payload length {payload} ends inside its extension headers"
    return end, None


def _addresses(frame: bytes | bytearray | memoryview, layout: FrameLayout) -> tuple[bytes, bytes]:
    """The pseudo-header's addresses as the sending stack summed them (its CHECKSUM_PARTIAL seed, a full
    checksum): the final destination a source route (IPv4) or a Routing header (IPv6, RFC 8200 8.1) names,
    and a mobile node's home address (IPv6's Home Address option, RFC 6275 6.3) as the source."""
    n = layout.network
    if layout.ip_version == 6:
        source = ipv6_home_address(frame, n, n + layout.l3_len) or bytes(frame[n + 8 : n + 24])
        return source, ipv6_final_destination(frame, n, n + layout.l3_len)
    return bytes(frame[n + 12 : n + 16]), ipv4_final_destination(frame, n, n + layout.l3_len)


IPOPT_END, IPOPT_NOOP, IPOPT_LSRR, IPOPT_SSRR = 0, 1, 0x83, 0x89


def ipv4_final_destination(frame: bytes | bytearray | memoryview, network: int, transport: int) -> bytes:
    """The destination an upper-layer checksum covers: the IPv4 header's, or, under a loose or strict
    source route with hops left, the route's last address: Linux's sender sums its peer (inet_daddr, as
    __tcp_v4_send_check) while the header holds the route's first hop (opt.faddr, as tcp_v4_connect
    routes), and Wireshark verifies it so."""
    destination = bytes(frame[network + 16 : network + 20])
    at = network + IPV4_MIN_HLEN
    while at < transport and frame[at] != IPOPT_END:
        if frame[at] == IPOPT_NOOP:
            at += 1
            continue
        if at + 2 > transport or frame[at + 1] < 2 or at + frame[at + 1] > transport:
            break
        size = frame[at + 1]
        # the pointer (1-based, at least 4) names the next address; past the route, none is left
        if frame[at] in (IPOPT_LSRR, IPOPT_SSRR) and size >= 7 and frame[at + 2] + 3 <= size:
            destination = bytes(frame[at + size - 4 : at + size])
        at += size
    return destination


# Routing types whose last hop's address the header carries: type 0 (RFC 2460, deprecated) and type 2
# (Mobile IPv6, RFC 6275) at the end of the list, the Segment Routing Header (type 4, RFC 8754) as
# Segment List[0]
IPV6_RT_TYPE0, IPV6_RT_TYPE2, IPV6_SRCRT_TYPE_4 = 0, 2, 4


def ipv6_final_destination(frame: bytes | bytearray | memoryview, network: int, transport: int) -> bytes:
    """The destination an upper-layer checksum covers: the IPv6 header's, or, behind a Routing header
    with segments left, the final one it names (RFC 8200 8.1). Linux's sender sums the socket's peer,
    which is that address (an SRH pushed inline keeps the original destination as Segment List[0])."""
    destination = bytes(frame[network + 24 : network + 40])
    proto, at = frame[network + 6], network + IPV6_HLEN
    while proto in (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS) and at + 8 <= transport:
        size = (frame[at + 1] + 1) * 8
        if proto == IPPROTO_ROUTING and frame[at + 3] and at + size <= transport:
            routing_type, addresses = frame[at + 2], (size - 8) // 16
            if routing_type in (IPV6_RT_TYPE0, IPV6_RT_TYPE2) and addresses:
                destination = bytes(frame[at + 8 + 16 * (addresses - 1) : at + 8 + 16 * addresses])
            elif routing_type == IPV6_SRCRT_TYPE_4 and addresses:
                destination = bytes(frame[at + 8 : at + 24])
        proto, at = frame[at], at + size
    return destination


IPV6_TLV_PAD1, IPV6_TLV_HAO = 0, 0xC9


def ipv6_home_address(frame: bytes | bytearray | memoryview, network: int, transport: int) -> bytes | None:
    """The home address a Destination Options header's Home Address option carries (RFC 6275 6.3: a mobile
    node sums its upper-layer checksum over it, the header's source being its care-of address; Linux's
    mip6_destopt_output swaps the two after the transport layer summed), or None."""
    proto, at = frame[network + 6], network + IPV6_HLEN
    while proto in (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS) and at + 8 <= transport:
        size = (frame[at + 1] + 1) * 8
        if proto == IPPROTO_DSTOPTS and at + size <= transport:
            option, end = at + 2, at + size
            while option < end:
                if frame[option] == IPV6_TLV_PAD1:
                    option += 1
                    continue
                if option + 2 > end or option + 2 + frame[option + 1] > end:
                    break
                if frame[option] == IPV6_TLV_HAO and frame[option + 1] == 16:
                    return bytes(frame[option + 2 : option + 18])
                option += 2 + frame[option + 1]
        proto, at = frame[at], at + size
    return None


def check_offset(layout: FrameLayout) -> int:
    """Offset of the L4 checksum field."""
    return layout.transport + (TCP_CHECK_OFFSET if layout.l4_proto == IPPROTO_TCP else UDP_CHECK_OFFSET)


def pseudo_seed(frame: bytes | bytearray | memoryview, layout: FrameLayout) -> int:
    """The CHECKSUM_PARTIAL seed: the folded pseudo-header sum for the whole L4 length."""
    src, dst = _addresses(frame, layout)
    return pseudo_header_sum(src, dst, layout.l4_proto, layout.frame_len - layout.transport)


def seed_without_length(frame: bytes | bytearray | memoryview, layout: FrameLayout) -> int:
    """The seed of a stack that leaves the L4 length out of the pseudo-header sum (SEED_NOLEN)."""
    src, dst = _addresses(frame, layout)
    return pseudo_header_sum(src, dst, layout.l4_proto, 0)


def classify_l4_checksum(frame: bytes | bytearray | memoryview, layout: FrameLayout) -> L4Checksum:
    """Tell a full checksum from a partial seed (or neither)."""
    at = check_offset(layout)
    stored = int.from_bytes(frame[at : at + 2], "big")
    if layout.l4_proto == IPPROTO_UDP and layout.ip_version == 4 and stored == 0:
        return L4Checksum.ZERO
    src, dst = _addresses(frame, layout)
    end = layout.frame_len if layout.ip_end < 0 else layout.ip_end  # a trailer is no checksummed byte
    l4_len = end - layout.transport
    seed = pseudo_header_sum(src, dst, layout.l4_proto, l4_len)
    if ones_sum(memoryview(frame)[layout.transport : end], seed) == 0xFFFF:
        return L4Checksum.COMPLETE
    if stored == seed:
        return L4Checksum.PARTIAL
    return name_neither(stored, pseudo_header_sum(src, dst, layout.l4_proto, 0))


def name_neither(stored: int, seed_nolen: int) -> L4Checksum:
    """classify_l4_checksum's word on a field that is neither a full checksum nor the seed."""
    if stored == seed_nolen:
        return L4Checksum.SEED_NOLEN
    if stored == 0:
        return L4Checksum.ZERO
    return L4Checksum.INVALID


def packet_from_capture(frame: bytes | bytearray, layout: FrameLayout | None, kernel: str = "6.1") -> Packet:
    """The packet as the sending host's stack had it: outer tag out of band, labels recorded.

    The outermost VLAN tag goes out of band as a receive path's skb_vlan_untag leaves it; a label
    stack gets inner_protocol / inner_network_header as skb_mpls_push would have set them. ``kernel``
    is the generation whose rules the actions and GSO then follow (virtio.kernel_of).
    """
    skb = Packet.from_ethernet(frame)
    skb.extras[KERNEL_KEY] = kernel
    if eth_type_vlan(skb.protocol) and len(skb.data) >= ETH_HLEN + VLAN_HLEN:
        tci = int.from_bytes(skb.data[14:16], "big")
        proto = skb.protocol
        skb.protocol = int.from_bytes(skb.data[16:18], "big")
        skb.remove(12, VLAN_HLEN)
        skb.network_header = ETH_HLEN
        skb.vlan_tci, skb.vlan_proto = tci, proto
    if layout is not None and layout.labels:
        skb.inner_protocol = layout.ethertype
        moved = VLAN_HLEN if skb.vlan_tag_present else 0
        skb.inner_network_header = layout.network - moved
        # as skb_mpls_push leaves it: the network header on the top label, mac_len every byte before it
        # (in-band VLAN tags included), so that mpls_gso_segment puts all of them back on each segment
        skb.network_header = layout.l2_len - moved
        skb.reset_mac_len()
    return skb


def set_checksum_state(skb: Packet, layout: FrameLayout, state: L4Checksum) -> None:
    """Mark the packet CHECKSUM_PARTIAL with a correct seed, as the sending stack had it.

    A full checksum (or an invalid one) is replaced by the seed: the stack computes the seed from
    the headers, and software GSO derives every segment's checksum from it. Offsets are taken
    from the end of the frame, so tags moved out of band and labels pushed since do not matter.
    """
    tail = layout.frame_len
    transport = len(skb.data) - (tail - layout.transport)
    network = len(skb.data) - (tail - layout.network)
    at = len(skb.data) - (tail - check_offset(layout))
    if state != L4Checksum.PARTIAL:
        moved = layout.replace(network=network, transport=transport, frame_len=len(skb.data))
        struct.pack_into("!H", skb.data, at, pseudo_seed(skb.data, moved))
    skb.ip_summed = IpSummed.PARTIAL
    skb.csum_start = transport
    skb.csum_offset = at - transport
    skb.transport_header = transport


def gso_type_for(layout: FrameLayout, forced: str = "auto", *, tcp_ecn: bool = False, fixed_id: bool = False) -> GsoType:
    """The SKB_GSO_* type for this layout (``forced``: auto, tcpv4, tcpv6, udp, udp_l4)."""
    if forced == "auto":
        if layout.l4_proto == IPPROTO_TCP:
            gso_type = GsoType.TCPV4 if layout.ip_version == 4 else GsoType.TCPV6
        else:
            gso_type = GsoType.UDP_L4
    else:
        gso_type = {"tcpv4": GsoType.TCPV4, "tcpv6": GsoType.TCPV6, "udp": GsoType.UDP, "udp_l4": GsoType.UDP_L4}[forced]
    if tcp_ecn:
        gso_type |= GsoType.TCP_ECN
    if fixed_id:
        gso_type |= GsoType.TCP_FIXEDID
    return gso_type


def gso_size_for_mtu(layout: FrameLayout, mtu: int, gso_type: GsoType) -> int:
    """The largest gso_size whose segments fit ``mtu`` (everything after Ethernet and VLAN tags).

    TCP and USO: MTU minus labels, L3 and L4 headers. UFO: IP payload per fragment, a multiple of 8
    (and for IPv6 the Fragment header inserted counts as header).
    """
    labels = layout.labels * MPLS_HLEN
    # a BIG TCP jumbo hop-by-hop header is the sender's, never on a segment (ipv6_hopbyhop_jumbo_remove),
    # where the kernel removes it; where it does not, every segment carries it
    l3_len = layout.l3_len - (8 if layout.jumbo_dropped else 0)
    if gso_type & GsoType.UDP:
        room = mtu - labels - l3_len - (8 if layout.ip_version == 6 else 0)
        return max(room // 8 * 8, 8)
    return mtu - labels - l3_len - layout.l4_hdr_len


# TCP options that sign a segment: Linux turns GSO off on a socket that uses one (tcp_md5_do_add and
# tcp_ao's key setup: sk_gso_disable), so no Linux sender builds a signed super-packet, and a signature
# covers one whole segment: pieces cut from it would carry a signature none of them matches
TCPOPT_EOL, TCPOPT_NOP, TCPOPT_MD5SIG, TCPOPT_AO = 0, 1, 19, 29
TCPOLEN_MD5SIG, TCPOLEN_AO_MIN = 18, 4


def tcp_signature(options: bytes | bytearray | memoryview) -> str | None:
    """The signature option among a TCP header's ``options`` (the bytes behind its fixed 20), by name,
    or None: walked as the kernel walks them (tcp_parse_md5sig_option, tcp_parse_auth_options)."""
    options = bytes(options)
    if TCPOPT_MD5SIG not in options and TCPOPT_AO not in options:
        return None
    at, end = 0, len(options)
    while at < end:
        kind = options[at]
        if kind == TCPOPT_EOL:
            break
        if kind == TCPOPT_NOP:
            at += 1
            continue
        if at + 2 > end:
            break
        size = options[at + 1]
        if size < 2 or at + size > end:
            break
        if kind == TCPOPT_MD5SIG and size == TCPOLEN_MD5SIG:
            return "TCP MD5 signature (RFC 2385)"
        if kind == TCPOPT_AO and size >= TCPOLEN_AO_MIN:
            return "TCP-AO (RFC 5925)"
        at += size
    return None


def link_header_len(frame: bytes | bytearray | memoryview) -> int:
    """The Ethernet header and VLAN tags: what does not count toward the MTU (labels do)."""
    offset = 12
    while offset + 6 <= len(frame) and eth_type_vlan(int.from_bytes(frame[offset : offset + 2], "big")):
        offset += VLAN_HLEN
    return min(offset + 2, len(frame))


# IP protocols named in reports (the rest by number)
_IP_PROTOCOL_NAMES = {1: "ICMP", 2: "IGMP", 4: "IP-in-IP", 41: "IPv6-in-IP", 47: "GRE", 50: "ESP", 51: "AH",
                      58: "ICMPv6", 59: "no next header", 89: "OSPF", 103: "PIM", 112: "VRRP", 132: "SCTP",
                      137: "MPLS-in-IP"}


def not_segmentable(frame: bytes | bytearray | memoryview) -> tuple[str, str]:
    """Why software GSO has nothing to cut in a frame that is not TCP/UDP over IP: (kind, detail).

    Walks tags and labels as parse_layout does; for the kernel, only TCP and UDP (with GSO
    metadata) are segmented, and a frame without GSO metadata is sent as it is.
    """
    length = len(frame)
    offset, ethertype = _network_start(frame)
    l2_end = link_header_len(frame)
    if length >= ETH_HLEN and eth_p_mpls(int.from_bytes(frame[l2_end - 2 : l2_end], "big")) \
            and ethertype not in (ETH_P_IP, ETH_P_IPV6):
        return "not IP", _not_ip_under_labels(frame, l2_end)
    version = frame[offset] >> 4 if offset < length else 0
    if ethertype in (ETH_P_IP, ETH_P_IPV6) and offset < length and version != (4 if ethertype == ETH_P_IP else 6):
        # ip_rcv and ipv6_rcv drop such a packet; no stack sends one: the header is no IP header to cut
        return ("IP version contradicts the ethertype (capture check, not the kernel's)",
                f"ethertype 0x{ethertype:04x} ({'IPv4' if ethertype == ETH_P_IP else 'IPv6'}) but IP version "
                f"{version} in the header")
    if ethertype == ETH_P_IP and offset + IPV4_MIN_HLEN <= length:
        ihl = (frame[offset] & 0x0F) * 4
        if ihl < IPV4_MIN_HLEN:
            # inet_gso_segment refuses it (ihl < sizeof(struct iphdr): -EINVAL)
            return "lengths contradict", f"IPv4 header length {ihl} is shorter than the {IPV4_MIN_HLEN}-byte header"
        if offset + ihl > length:
            return "lengths contradict", f"IPv4 header length {ihl} runs past the end of the frame"
        if int.from_bytes(frame[offset + 6 : offset + 8], "big") & (IP_MF | IP_OFFSET):
            return "IP fragment", "an IPv4 fragment is sent as it is"
        proto = frame[offset + 9]
        at = offset + ihl
    elif ethertype == ETH_P_IPV6 and offset + IPV6_HLEN <= length:
        proto = frame[offset + 6]
        at = offset + IPV6_HLEN
        if proto == IPPROTO_HOPOPTS and frame[offset + 4 : offset + 6] == b"\0\0" and at + 8 <= length \
                and frame[at + 2] == 0xC2:
            return "IPv6 jumbogram", "an IPv6 jumbogram (RFC 2675) has no software GSO"
        while proto in (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS) and at + 8 <= length:
            proto, at = frame[at], at + (frame[at + 1] + 1) * 8
        if proto == 44:
            return "IP fragment", "an IPv6 fragment is sent as it is"
    elif ethertype in (ETH_P_IP, ETH_P_IPV6):
        return "lengths contradict", "the IP header is cut short"
    else:
        return "not IP", f"ethertype 0x{ethertype:04x} is not IP: no software GSO"
    name = _IP_PROTOCOL_NAMES.get(proto, f"IP protocol {proto}")
    if proto in (4, 41, 47):
        return (f"{name} payload not TCP/UDP over IP: not segmented",
                f"a {name} packet over the MTU whose payload is not TCP or UDP over IP (or a GRE version or "
                "flag Linux has no GSO for)")
    if proto == IPPROTO_TCP and at + TCP_MIN_HLEN <= length:
        doff = (frame[at + 12] >> 4) * 4
        if doff < TCP_MIN_HLEN:
            # tcp_gso_segment refuses it (thlen < sizeof(*th))
            return "lengths contradict", f"TCP data offset {doff} is shorter than the {TCP_MIN_HLEN}-byte header"
        return "lengths contradict", f"the {doff}-byte TCP header runs past the end of the frame"
    if proto in (IPPROTO_TCP, IPPROTO_UDP):
        return "lengths contradict", f"the {'TCP' if proto == IPPROTO_TCP else 'UDP'} header is cut short"
    return f"{name}: no software GSO", f"{name} over IP has no software GSO"


def _not_ip_under_labels(frame: bytes | bytearray | memoryview, first_label: int) -> str:
    """Why a labelled frame has nothing under its stack that software GSO cuts: no bottom of stack in the
    frame, or no IP header below it (mpls_gso_segment segments the IPv4 or IPv6 packet the stack carries)."""
    at = first_label
    while at + MPLS_HLEN <= len(frame):
        at += MPLS_HLEN
        if frame[at - 2] & 0x01:
            if at >= len(frame):
                return "nothing under the MPLS label stack: no software GSO"
            return (f"no IPv4 or IPv6 header under the MPLS label stack (first nibble {frame[at] >> 4}, as a "
                    "pseudowire's control word or Ethernet frame has): no software GSO")
    return "the MPLS label stack has no bottom-of-stack label within the frame: no software GSO"


def _network_start(frame: bytes | bytearray | memoryview) -> tuple[int, int]:
    """(offset, ethertype) of what lies under the tags and labels: IPv4/IPv6 under labels by version nibble."""
    length = len(frame)
    offset = link_header_len(frame)
    ethertype = int.from_bytes(frame[offset - 2 : offset], "big") if length >= ETH_HLEN else 0
    if eth_p_mpls(ethertype):
        while offset + MPLS_HLEN <= length:
            offset += MPLS_HLEN
            if frame[offset - 2] & 0x01:
                break
        version = frame[offset] >> 4 if offset < length else 0
        ethertype = ETH_P_IP if version == 4 else ETH_P_IPV6 if version == 6 else 0
    return offset, ethertype


def network_end(frame: bytes | bytearray | memoryview) -> int:
    """Where the frame's IP packet ends by its length field; the frame's end when it is not IP or the
    field cannot be trusted (0, the BIG TCP and large-send marker, or more than the frame holds)."""
    length = len(frame)
    offset, ethertype = _network_start(frame)
    if offset < length and frame[offset] >> 4 != (4 if ethertype == ETH_P_IP else 6):
        return length  # no IP header of the ethertype's version: its length fields say nothing
    if ethertype == ETH_P_IP and offset + IPV4_MIN_HLEN <= length:
        total = int.from_bytes(frame[offset + 2 : offset + 4], "big")
        end = offset + total if total >= IPV4_MIN_HLEN else length
    elif ethertype == ETH_P_IPV6 and offset + IPV6_HLEN <= length:
        payload = int.from_bytes(frame[offset + 4 : offset + 6], "big")
        end = offset + IPV6_HLEN + payload if payload else length
    else:
        return length
    return end if end <= length else length


# More bytes than this behind an IP packet are no trailer or padding (an FCS is 4, an appliance's
# trailer a few dozen): a sender with GSO_PARTIAL may have written one segment's lengths on a frame
# of many, so such a frame is measured whole and never cut by its lengths
MAX_TRAILER = 64


def mtu_bytes(frame: bytes | bytearray | memoryview, end: int | None = None) -> int:
    """What counts toward the MTU: everything after the Ethernet header and VLAN tags (labels
    included) up to the end of the IP packet; a trailer or padding of at most MAX_TRAILER bytes is
    not part of the packet, more than that is measured with it. ``end``: network_end(frame), if known."""
    if end is None:
        end = network_end(frame)
    if len(frame) - end > MAX_TRAILER:
        end = len(frame)
    return end - link_header_len(frame)
