"""virtio_net_hdr: GSO metadata across the user/kernel boundary (include/linux/virtio_net.h).

:func:`virtio_net_hdr_to_skb` turns a header plus a frame into a packet with the kernel's rules,
refusals included (each refusal says which check failed); :func:`virtio_net_hdr_from_skb` is the
other direction, for handing a packet to a TAP or packet socket. ``kernel`` picks the generation:
"6.1" (the golden vectors' kernel: no UDP_L4 type, 64 USO segments), "6.12" (proven by its own
vectors: UDP_L4 accepted with its checks, 128 segments, transport offset checked against the
minimum L3 header) or "mainline" (the current upstream rules read from source; today the same as
6.12 on this path). docs/kernel-notes.md names the commits behind each difference.
"""

from __future__ import annotations

import struct
from enum import IntEnum, IntFlag

from .constants import (
    ETH_HLEN,
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_IP,
    ETH_P_IPV6,
    GSO_BY_FRAGS,
    IP_MF,
    IP_OFFSET,
    IPPROTO_DSTOPTS,
    IPPROTO_HOPOPTS,
    IPPROTO_ROUTING,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV4_MIN_HLEN,
    IPV6_HLEN,
    TCP_CHECK_OFFSET,
    TCP_MIN_HLEN,
    UDP_CHECK_OFFSET,
    UDP_HLEN,
    eth_type_vlan,
)
from .errors import UsageError, VirtioHeaderError
from .features import GsoType, IpSummed
from .gso import skb_network_protocol
from .packet import KERNEL_KEY, Packet, kernel_of
from .valueclass import FrozenValueClass, init_fields

KERNELS = ("6.1", "6.12", "mainline")


def kernel_generation_of_release(release: str) -> str:
    """The generation whose rules a kernel release follows: ``6.1.0-56-amd64`` -> "6.1"; unknown -> "mainline"."""
    parts = release.split(".")
    if len(parts) >= 2 and parts[0] == "6" and parts[1].split("-")[0] in ("1", "12"):
        return "6." + parts[1].split("-")[0]
    return "mainline"


class VirtioFlags(IntFlag):
    """virtio_net_hdr.flags."""

    NONE = 0
    NEEDS_CSUM = 1
    DATA_VALID = 2
    RSC_INFO = 4


class VirtioGsoType(IntEnum):
    """virtio_net_hdr.gso_type without the ECN bit."""

    NONE = 0
    TCPV4 = 1
    UDP = 3
    TCPV6 = 4
    UDP_L4 = 5


VIRTIO_NET_HDR_GSO_ECN = 0x80
ETH_P_ALL = 0x0003
# TCP_MIN_SND_MSS - MAX_TCP_OPTION_SPACE: Linux 6.1 treats a smaller TCP gso_size from a
# virtio header as 8 (observed on the kernel: gso_size 1..7 gives 8-byte segments, and a payload of
# 8 bytes or less is not GSO at all; vectors x_tcp_gso_7, x_tcp_gso_1_pay9, s5_*_odd_tiny_gso_size*)
TCP_MIN_GSO_SIZE = 8


def udp_max_segments(kernel: str) -> int:
    """UDP_MAX_SEGMENTS of the kernel generation."""
    return 64 if kernel == "6.1" else 128


class VirtioNetHdr(FrozenValueClass):
    """The 10-byte header (12 with num_buffers)."""

    flags: int
    gso_type: int
    hdr_len: int
    gso_size: int
    csum_start: int
    csum_offset: int
    num_buffers: int | None

    def __init__(self, flags: int = 0, gso_type: int = 0, hdr_len: int = 0, gso_size: int = 0, csum_start: int = 0,
                 csum_offset: int = 0, num_buffers: int | None = None) -> None:
        init_fields(self, locals())

    @classmethod
    def unpack(cls, raw: bytes | bytearray | memoryview, *, little_endian: bool = True) -> VirtioNetHdr:
        """Decode 10 or 12 bytes."""
        if len(raw) not in (10, 12):
            raise UsageError(f"a virtio_net_hdr is 10 or 12 bytes, got {len(raw)}")
        order = "<" if little_endian else ">"
        flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = struct.unpack_from(order + "BBHHHH", raw)
        num_buffers = struct.unpack_from(order + "H", raw, 10)[0] if len(raw) == 12 else None
        return cls(flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers)

    @classmethod
    def from_hex(cls, text: str) -> VirtioNetHdr:
        """Decode the hex form the CLI takes (little-endian, as a TAP set LE or x86 AF_PACKET uses)."""
        try:
            raw = bytes.fromhex(text.replace(":", "").replace(" ", ""))
        except ValueError as exc:
            raise UsageError(f"--vnet-hdr {text!r} is not hex: {exc}") from exc
        return cls.unpack(raw)

    def pack(self, *, little_endian: bool = True) -> bytes:
        """Encode as 10 bytes (12 when num_buffers is set)."""
        order = "<" if little_endian else ">"
        raw = struct.pack(
            order + "BBHHHH", self.flags, self.gso_type, self.hdr_len, self.gso_size, self.csum_start, self.csum_offset
        )
        if self.num_buffers is not None:
            raw += struct.pack(order + "H", self.num_buffers)
        return raw


# a plain int: `int & IntFlag` costs ~1.5 us, and every packet read from a TAP passes here
_NEEDS_CSUM = int(VirtioFlags.NEEDS_CSUM)


def _refuse(reason: str) -> VirtioHeaderError:
    return VirtioHeaderError(reason, where="virtio_net_hdr_to_skb")


def virtio_net_hdr_to_skb(
    frame: bytes | bytearray,
    hdr: VirtioNetHdr,
    *,
    protocol: int | None = None,
    kernel: str = "6.1",
    check_hdr_len: bool = True,
    network_header: int = ETH_HLEN,
) -> Packet:
    """A packet from a frame and its header, refused exactly where the kernel refuses it.

    ``protocol`` is skb->protocol as the sender set it (AF_PACKET's sll_protocol); by default the
    frame's ethertype, as a TAP's eth_type_trans gives. ``check_hdr_len`` applies the callers'
    (tun, AF_PACKET) hdr_len fix-up and bound.
    """
    if kernel not in KERNELS:
        raise UsageError(f"unknown kernel generation {kernel!r}: use one of {', '.join(KERNELS)}")
    skb = Packet.from_ethernet(frame, protocol)
    skb.extras[KERNEL_KEY] = kernel  # the tc actions and GSO after the socket follow the same generation
    skb.network_header = network_header
    length = len(skb.data)
    needs_csum = bool(hdr.flags & _NEEDS_CSUM)

    if check_hdr_len:
        hdr_len = hdr.hdr_len
        if needs_csum and hdr.csum_start + hdr.csum_offset + 2 > hdr_len:
            hdr_len = hdr.csum_start + hdr.csum_offset + 2
        if hdr_len > length:
            raise VirtioHeaderError(
                f"hdr_len {hdr_len} is longer than the {length}-byte packet", where="packet_snd/tun_get_user"
            )

    gso_type = GsoType.NONE
    thlen = 0
    ip_proto = 0
    nh_min_len = IPV4_MIN_HLEN
    if hdr.gso_type != VirtioGsoType.NONE:
        base = hdr.gso_type & ~VIRTIO_NET_HDR_GSO_ECN
        if base == VirtioGsoType.TCPV4:
            gso_type, ip_proto, thlen = GsoType.TCPV4, IPPROTO_TCP, TCP_MIN_HLEN
        elif base == VirtioGsoType.TCPV6:
            gso_type, ip_proto, thlen, nh_min_len = GsoType.TCPV6, IPPROTO_TCP, TCP_MIN_HLEN, IPV6_HLEN
        elif base == VirtioGsoType.UDP:
            gso_type, ip_proto, thlen = GsoType.UDP, IPPROTO_UDP, UDP_HLEN
        elif base == VirtioGsoType.UDP_L4 and kernel != "6.1":
            gso_type, ip_proto, thlen = GsoType.UDP_L4, IPPROTO_UDP, UDP_HLEN
        else:
            known = "1, 3, 4" if kernel == "6.1" else "1, 3, 4, 5"
            raise _refuse(f"unknown gso_type {base} (Linux {kernel} knows {known})")
        if hdr.gso_type & VIRTIO_NET_HDR_GSO_ECN:
            gso_type |= GsoType.TCP_ECN
        if hdr.gso_size == 0:
            raise _refuse("gso_size 0 with a GSO type")

    payload_offset = 0
    if needs_csum:
        start, off = hdr.csum_start, hdr.csum_offset
        needed = start + max(thlen, off + 2)
        if needed > length:
            raise _refuse(f"checksum start {start} + {max(thlen, off + 2)} is past the {length}-byte packet")
        if start + off + 2 > length:
            raise _refuse(f"checksum field at {start}+{off} lies outside the packet")
        skb.ip_summed = IpSummed.PARTIAL
        skb.csum_start = start
        skb.csum_offset = off
        skb.transport_header = start
        # since 6.12 (49d14b54a527 "net: test for not too small csum_start in virtio_net_hdr_to_skb()"):
        # skb_transport_offset, counted from the frame's start, against 20 (40 for TCPV6), with any
        # gso_type, NONE included (vectors 6.12/generated/s3501_045_no_gso, s3501_069)
        if kernel != "6.1" and start < nh_min_len:
            raise _refuse(f"transport offset {start} is below the minimum L3 header of {nh_min_len}")
        payload_offset = start + thlen
        if payload_offset > length:
            raise _refuse("transport header runs past the packet")
    elif gso_type:
        # no NEEDS_CSUM: find the transport header with the flow dissector
        dissected = _dissect(skb, gso_type)
        if dissected is None:
            raise _refuse("cannot dissect the packet to find its transport header")
        thoff, proto = dissected
        payload_offset = thoff + thlen
        if payload_offset > length or proto != ip_proto:
            raise _refuse(f"dissected L4 protocol {proto} does not match gso_type (expects {ip_proto})")
        skb.transport_header = thoff

    if hdr.gso_type != VirtioGsoType.NONE:
        base_type = gso_type & ~GsoType.TCP_ECN
        nh_off = payload_offset
        if base_type == GsoType.UDP:
            nh_off -= thlen
        elif base_type in (GsoType.TCPV4, GsoType.TCPV6):
            if skb.ip_summed == IpSummed.PARTIAL and skb.csum_offset != TCP_CHECK_OFFSET:
                raise _refuse(f"TCP gso_type with csum_offset {skb.csum_offset} (must be 16)")
        elif base_type == GsoType.UDP_L4:
            if skb.ip_summed != IpSummed.PARTIAL:
                raise _refuse("UDP_L4 without NEEDS_CSUM")
            if skb.csum_offset != UDP_CHECK_OFFSET:
                raise _refuse(f"UDP_L4 with csum_offset {skb.csum_offset} (must be 6)")
            if gso_type & GsoType.TCP_ECN:
                raise _refuse("UDP_L4 with the ECN bit")
            if length - payload_offset > hdr.gso_size * udp_max_segments(kernel):
                raise _refuse(f"UDP_L4 payload needs more than {udp_max_segments(kernel)} segments")
        if hdr.gso_size == GSO_BY_FRAGS:
            raise _refuse("gso_size 0xFFFF (GSO_BY_FRAGS) is not for virtio")
        gso_size = hdr.gso_size
        if base_type in (GsoType.TCPV4, GsoType.TCPV6):
            gso_size = max(gso_size, TCP_MIN_GSO_SIZE)
        # too small packets are not really GSO ones (judged with the fixed header length)
        if length - nh_off > gso_size:
            skb.gso_size = gso_size
            skb.gso_type = gso_type | GsoType.DODGY
            skb.gso_segs = 0
    return skb


def packet_socket_skb(
    frame: bytes | bytearray, hdr: VirtioNetHdr | None, sll_protocol: int, *, kernel: str = "6.1",
    vlan_device: bool = False,
) -> Packet:
    """The packet AF_PACKET's packet_snd builds from a SOCK_RAW send with PACKET_VNET_HDR.

    packet_parse_headers first: a protocol of 0 or ETH_P_ALL is replaced by the frame's own
    ethertype, and a VLAN protocol moves the network header behind the tags it finds from offset 14
    (so an untagged frame sent as 0x8100 gets a network header the GSO dispatcher cannot use, and
    is dropped, as the kernel drops it: vector x_tcp_sll_8021q). Then the virtio header rules apply;
    a protocol still 0 is taken from the GSO type (virtio_net_hdr_set_proto). mac_len stays 0:
    nothing on this path computes it before GSO does. ``vlan_device``: sent on a VLAN device, whose
    parse_protocol (for a protocol of 0 or ETH_P_ALL) reads the type behind the frame's in-band tags.
    """
    protocol = sll_protocol
    if protocol in (0, ETH_P_ALL):
        protocol = int.from_bytes(frame[12:14], "big") if len(frame) >= ETH_HLEN else 0
        if vlan_device and eth_type_vlan(protocol):
            # a VLAN device's header_ops parse_protocol (vlan_parse_protocol): the type behind every in-band
            # tag, so the network header stays at 14, on the tag (kernel vectors s57_055/083/144_inband_vlan:
            # GSO then fails, ENOMEM)
            probe = Packet.from_ethernet(frame, protocol)
            probe.mac_len = 0
            protocol, _ = skb_network_protocol(probe)
    network_header = ETH_HLEN
    if eth_type_vlan(protocol):
        # packet_parse_headers moves the network header behind the VLAN tags it finds, reading
        # from offset 14 whatever the frame holds there (mac_len is still 0)
        probe = Packet.from_ethernet(frame, protocol)
        probe.mac_len = 0
        found, depth = skb_network_protocol(probe)
        if found and depth <= len(frame):
            network_header = depth
    if hdr is None:
        skb = Packet.from_ethernet(frame, protocol)
        skb.extras[KERNEL_KEY] = kernel
        skb.network_header = network_header
    else:
        skb = virtio_net_hdr_to_skb(frame, hdr, protocol=protocol, kernel=kernel, network_header=network_header)
        if not skb.protocol:
            base = hdr.gso_type & ~VIRTIO_NET_HDR_GSO_ECN
            if base in (VirtioGsoType.TCPV4, VirtioGsoType.UDP, VirtioGsoType.UDP_L4):
                skb.protocol = ETH_P_IP
            elif base == VirtioGsoType.TCPV6:
                skb.protocol = ETH_P_IPV6
            else:
                raise VirtioHeaderError("no protocol and no GSO type to guess it from",
                                        where="virtio_net_hdr_set_proto")
    skb.mac_len = 0
    return skb


def _dissect(skb: Packet, gso_type: GsoType) -> tuple[int, int] | None:
    """(transport offset, IP protocol) as skb_flow_dissect_flow_keys_basic finds them, or None."""
    protocol = skb.protocol
    result = _dissect_from(skb.data, protocol, skb.network_header or ETH_HLEN)
    if result is None and gso_type & GsoType.UDP and protocol == ETH_P_IP:
        # UFO does not say IPv4 or IPv6: the kernel retries as IPv6
        skb.protocol = ETH_P_IPV6
        result = _dissect_from(skb.data, ETH_P_IPV6, skb.network_header or ETH_HLEN)
    return result


def _dissect_from(frame: bytes | bytearray, protocol: int, offset: int) -> tuple[int, int] | None:
    while protocol in (ETH_P_8021Q, ETH_P_8021AD):
        if offset + 4 > len(frame):
            return None
        protocol = int.from_bytes(frame[offset + 2 : offset + 4], "big")
        offset += 4
    if protocol == ETH_P_IP:
        if offset + IPV4_MIN_HLEN > len(frame):
            return None
        ihl = (frame[offset] & 0x0F) * 4
        if ihl < IPV4_MIN_HLEN:
            return None
        proto = frame[offset + 9]
        frag = int.from_bytes(frame[offset + 6 : offset + 8], "big")
        thoff = offset + ihl
        if frag & (IP_MF | IP_OFFSET) and frag & IP_OFFSET:
            return min(thoff, len(frame)), proto
        return min(thoff, len(frame)), proto
    if protocol == ETH_P_IPV6:
        if offset + IPV6_HLEN > len(frame):
            return None
        proto = frame[offset + 6]
        offset += IPV6_HLEN
        while proto in (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS):
            if offset + 2 > len(frame):
                return None
            proto, offset = frame[offset], offset + (frame[offset + 1] + 1) * 8
        return min(offset, len(frame)), proto
    return None


def virtio_net_hdr_from_skb(skb: Packet, *, vlan_hlen: int = 0) -> VirtioNetHdr:
    """The header a TAP or packet-socket reader gets with this packet (virtio_net_hdr_from_skb)."""
    gso_type = 0
    gso_size = 0
    hdr_len = 0
    if skb.is_gso:
        gso_size = skb.gso_size
        hdr_len = len(skb.data)
        if skb.gso_type & GsoType.TCPV4:
            gso_type = VirtioGsoType.TCPV4
        elif skb.gso_type & GsoType.TCPV6:
            gso_type = VirtioGsoType.TCPV6
        elif skb.gso_type & GsoType.UDP_L4:
            gso_type = VirtioGsoType.UDP_L4
        else:
            raise VirtioHeaderError(
                f"GSO packet of type {int(skb.gso_type):#x} has no virtio_net_hdr form", where="virtio_net_hdr_from_skb"
            )
        if skb.gso_type & GsoType.TCP_ECN:
            gso_type |= VIRTIO_NET_HDR_GSO_ECN
    flags = 0
    csum_start = csum_offset = 0
    if skb.ip_summed == IpSummed.PARTIAL:
        flags = VirtioFlags.NEEDS_CSUM
        csum_start = skb.csum_start + vlan_hlen
        csum_offset = skb.csum_offset
    elif skb.ip_summed == IpSummed.UNNECESSARY:
        flags = VirtioFlags.DATA_VALID
    return VirtioNetHdr(int(flags), int(gso_type), hdr_len, gso_size, csum_start, csum_offset)


__all__ = [
    "ETH_P_ALL", "KERNELS", "KERNEL_KEY", "TCP_MIN_GSO_SIZE", "VIRTIO_NET_HDR_GSO_ECN", "VirtioFlags", "VirtioGsoType",
    "VirtioNetHdr", "kernel_generation_of_release", "kernel_of", "packet_socket_skb", "udp_max_segments",
    "virtio_net_hdr_from_skb", "virtio_net_hdr_to_skb",
]
