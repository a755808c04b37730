"""The transmit decision (netif_skb_features + validate_xmit_skb in net/core/dev.c).

Given a packet and the egress device, work out which offloads apply to this packet, then either
hand the GSO packet to the "hardware" whole, or segment it in software; resolve a pending
checksum in software where the device cannot. The result is what the device puts on the wire: an
out-of-band VLAN tag is in the bytes (the device inserts it), and a segment whose ``ip_summed`` is
still PARTIAL carries the pseudo-header seed that a checksum-offloading device completes.
"""

from __future__ import annotations

import struct

from .checksum import csum_fold, ones_sum
from .constants import (
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_TEB,
    IP_DF,
    IPPROTO_UDP,
    TCP_CHECK_OFFSET,
    UDP_CHECK_OFFSET,
    eth_p_mpls,
    eth_type_vlan,
)
from .errors import InvalidPacketError
from .features import (
    NETIF_F_CSUM_MASK,
    NETIF_F_GSO_MASK,
    DeviceProfile,
    GsoType,
    IpSummed,
    NetdevFeature,
    intersect_feature_bits,
)
from .gso import can_checksum_protocol, skb_gso_ok, skb_gso_segment, skb_network_protocol
from .packet import ENCAP_TYPE_ETHER, Packet

F = NetdevFeature

# The per-packet feature arithmetic runs on plain ints: an IntFlag operation costs ~1.5 us in
# CPython 3.11 (it builds a new flag object), and every packet, ACKs included, takes a dozen of them.
# The public functions still take and return NetdevFeature. Complements are taken by the enum
# (its ~ keeps only the bits the flag type spans) so that the ints match its results bit for bit.
_WITHOUT_TSO_MANGLEID = int(~F.TSO_MANGLEID)
_WITHOUT_GSO = int(~NETIF_F_GSO_MASK)
_WITHOUT_CSUM_OR_GSO = int(~(NETIF_F_CSUM_MASK | NETIF_F_GSO_MASK))
_HW_CSUM = int(F.HW_CSUM)
_IP_CSUM_OR_IPV6_CSUM = int(F.IP_CSUM | F.IPV6_CSUM)
_VLAN_CTAG_TX = int(F.HW_VLAN_CTAG_TX)
_VLAN_STAG_TX = int(F.HW_VLAN_STAG_TX)
# vlan_features_check: under two tags only HW_CSUM checksums, and no GSO feature is left (the packet is
# segmented in software: a VLAN device under a QinQ frame, kernel vectors generated/s57_099_inband_vlan, _120)
_VLAN_MULTI_FEATURES = int(
    F.SG | F.HIGHDMA | F.HW_CSUM | F.FRAGLIST | F.HW_VLAN_CTAG_TX | F.HW_VLAN_STAG_TX
)
_GSO_TYPE_PARTIAL = int(GsoType.PARTIAL)
_GSO_TYPE_TCPV4 = int(GsoType.TCPV4)


def gso_features_check(skb: Packet, device: DeviceProfile, features: int) -> int:
    """Drop GSO features this particular GSO packet cannot use (gso_features_check)."""
    gso_type = int(skb.gso_type)
    if skb.gso_segs > device.gso_max_segs or not gso_type:
        return features & _WITHOUT_GSO
    # skb->len >= dev->gso_max_size: the whole frame from the MAC header, an out-of-band tag not
    # counted (24ab059d2ebd "net: check dev->gso_max_size in gso_features_check()", in 6.1.y and
    # 6.12; from 6.9 netif_get_gso_max_size reads gso_ipv4_max_size for a packet whose protocol is
    # not IPv6, which a profile's one gso_max_size stands for: both are 65536 unless set)
    if len(skb.data) >= device.gso_max_size:
        return features & _WITHOUT_GSO
    if not gso_type & _GSO_TYPE_PARTIAL:
        features &= int(~device.gso_partial_features)
    if gso_type & _GSO_TYPE_TCPV4:
        # reads frag_off at the network header, whatever sits there (for MPLS: the label stack)
        network = skb.inner_network_header if skb.encapsulation else (skb.network_header or 0)
        frag_off = int.from_bytes(skb.data[network + 6 : network + 8], "big") if network + 8 <= len(skb.data) else 0
        if not frag_off & IP_DF:
            features &= _WITHOUT_TSO_MANGLEID
    return features


def skb_vlan_tagged(skb: Packet) -> bool:
    """An out-of-band tag, or a VLAN ethertype as protocol (skb_vlan_tagged)."""
    return skb.vlan_tci is not None or eth_type_vlan(skb.protocol)


def skb_vlan_tagged_multi(skb: Packet) -> bool:
    """Two or more VLAN tags (skb_vlan_tagged_multi)."""
    protocol = skb.protocol
    if skb.vlan_tci is None:
        if not eth_type_vlan(protocol) or len(skb.data) < 18:
            return False
        protocol = int.from_bytes(skb.data[16:18], "big")
    return eth_type_vlan(protocol)


def netif_skb_features(skb: Packet, device: DeviceProfile) -> NetdevFeature:
    """The device features that apply to this packet (netif_skb_features + harmonize_features)."""
    return NetdevFeature(_skb_feature_bits(skb, device))


def _skb_feature_bits(skb: Packet, device: DeviceProfile) -> int:
    """:func:`netif_skb_features` as a plain int."""
    features = int(device.features)
    if skb.gso_size:
        features = gso_features_check(skb, device, features)
    if skb.encapsulation:
        features &= int(device.hw_enc_features)
    if skb_vlan_tagged(skb):
        features = intersect_feature_bits(features, int(device.vlan_features) | _VLAN_CTAG_TX | _VLAN_STAG_TX)
    if device.features_check == "passthru":
        pass  # passthru_features_check (veth): no multi-tag check, a QinQ super-packet keeps TSO (g_mpls_2vlan_tso)
    elif device.features_check:
        features = ndo_features_check(skb, device, features)
    elif skb_vlan_tagged_multi(skb):  # dflt_features_check
        features &= _VLAN_MULTI_FEATURES
    ethertype, _ = skb_network_protocol(skb)
    if eth_p_mpls(ethertype):
        # net_mpls_features: under a label stack only mpls_features apply
        features &= int(device.mpls_features)
    if skb.ip_summed != IpSummed.NONE and not can_checksum_protocol(features, ethertype):
        features &= _WITHOUT_CSUM_OR_GSO
    return features


_WITHOUT_CSUM_MASK_OR_GSO = _WITHOUT_CSUM_OR_GSO
_VXLAN_TNL_HLEN = 16  # sizeof(struct udphdr) + sizeof(struct vxlanhdr)


def ndo_features_check(skb: Packet, device: DeviceProfile, features: int) -> int:
    """The driver's ndo_features_check; "vxlan-port" is be2net's be_features_check (tunnel part).

    Such a driver also runs vlan_features_check first (two tags: only HW_CSUM checksums), then,
    for an encapsulated packet whose outer L4 is UDP, keeps checksum and GSO features only for
    VXLAN to the configured port: an inner Ethernet frame behind exactly UDP + VXLAN headers.
    """
    if skb_vlan_tagged_multi(skb):
        features &= _VLAN_MULTI_FEATURES
    if device.features_check != "vxlan-port" or not skb.encapsulation:
        return features
    ethertype, _ = skb_network_protocol(skb)
    network = skb.network_header or 0
    # metadata pointing past the bytes (fuzzed skbs): the kernel would read beyond the header it
    # pulled; taken as "not UDP", the driver's features stand
    if ethertype == ETH_P_IP and network + 9 < len(skb.data):
        l4_proto = skb.data[network + 9]
    elif ethertype == ETH_P_IPV6 and network + 6 < len(skb.data):
        l4_proto = skb.data[network + 6]
    else:
        return features
    if l4_proto != IPPROTO_UDP:
        return features
    udp = skb.transport_header or 0
    if udp + 4 > len(skb.data):
        return features & _WITHOUT_CSUM_MASK_OR_GSO  # no UDP header to show the VXLAN port
    dport = int.from_bytes(skb.data[udp + 2 : udp + 4], "big")
    if (skb.inner_protocol_type != ENCAP_TYPE_ETHER or skb.inner_protocol != ETH_P_TEB
            or skb.inner_mac_header - udp != _VXLAN_TNL_HLEN or dport != device.vxlan_port):
        return features & _WITHOUT_CSUM_MASK_OR_GSO
    return features


def netif_needs_gso(skb: Packet, features: int) -> bool:
    """Software GSO is needed (netif_needs_gso)."""
    return skb.gso_size != 0 and (
        not skb_gso_ok(skb, features) or skb.ip_summed not in (IpSummed.PARTIAL, IpSummed.UNNECESSARY)
    )


def vlan_hw_offload_capable(features: int, vlan_proto: int) -> bool:
    """The device can insert a tag of this TPID itself."""
    if vlan_proto == ETH_P_8021Q:
        return bool(features & _VLAN_CTAG_TX)
    if vlan_proto == ETH_P_8021AD:
        return bool(features & _VLAN_STAG_TX)
    return False


def skb_checksum_help(skb: Packet) -> None:
    """Complete a pending (PARTIAL) checksum in software (skb_checksum_help)."""
    if skb.ip_summed == IpSummed.COMPLETE:
        skb.ip_summed = IpSummed.NONE
        return
    if skb.is_gso:
        raise InvalidPacketError("a GSO packet reached software checksumming", where="skb_checksum_help")
    start = skb.csum_start
    check_at = start + skb.csum_offset
    if start >= len(skb.data) or check_at + 2 > len(skb.data):
        raise InvalidPacketError(
            f"checksum start {start} / offset {skb.csum_offset} outside the {len(skb.data)}-byte packet",
            where="skb_checksum_help",
        )
    check = csum_fold(ones_sum(memoryview(skb.data)[start:]))
    struct.pack_into("!H", skb.data, check_at, check or 0xFFFF)
    skb.ip_summed = IpSummed.NONE


def skb_csum_hwoffload_help(skb: Packet, features: int) -> None:
    """Leave the checksum to the device if it can do it, else complete it (skb_csum_hwoffload_help)."""
    if features & _HW_CSUM:
        return
    if features & _IP_CSUM_OR_IPV6_CSUM and skb.csum_offset in (TCP_CHECK_OFFSET, UDP_CHECK_OFFSET):
        return
    skb_checksum_help(skb)


def validate_xmit(skb: Packet, device: DeviceProfile) -> list[Packet]:
    """validate_xmit_skb: the packets the device is handed (segments, or the packet itself).

    Raises a KernelRefusal where the kernel drops the packet.
    """
    features = _skb_feature_bits(skb, device)
    if skb.vlan_tci is not None and not vlan_hw_offload_capable(features, skb.vlan_proto):
        skb.vlan_push_inside()
    if netif_needs_gso(skb, features):
        segments = skb_gso_segment(skb, NetdevFeature(features), device)
        return [skb] if segments is None else segments
    if skb.ip_summed == IpSummed.PARTIAL:
        if skb.encapsulation:
            skb.inner_transport_header = skb.csum_start
        else:
            skb.transport_header = skb.csum_start
        skb_csum_hwoffload_help(skb, features)
    return [skb]


def transmit(skb: Packet, device: DeviceProfile) -> list[Packet]:
    """What leaves the device for this packet: validate_xmit, then the device inserts any out-of-band tag."""
    packets = validate_xmit(skb, device)
    for packet in packets:
        if packet.vlan_tag_present:
            packet.vlan_push_inside()
    return packets


__all__ = [
    "gso_features_check", "ndo_features_check", "netif_needs_gso", "netif_skb_features", "skb_checksum_help",
    "skb_csum_hwoffload_help", "skb_vlan_tagged", "skb_vlan_tagged_multi", "transmit", "validate_xmit",
    "vlan_hw_offload_capable",
]
