"""The transmit decision (spec §4): which device segments, which checksums stay partial."""

from __future__ import annotations

from softgso.actions import push_mpls
from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.features import PROFILES, GsoType, IpSummed, NetdevFeature
from softgso.packet import Packet
from softgso.xmit import netif_skb_features, transmit


def gso_packet(labels: int = 1, dodgy: bool = False) -> Packet:
    skb = Packet.from_ethernet(build_frame(SuperPacketSpec(payload=bytes(5000))))
    skb.ip_summed, skb.csum_start, skb.csum_offset, skb.transport_header = IpSummed.PARTIAL, 34, 16, 34
    skb.gso_size, skb.gso_type = 1448, GsoType.TCPV4 | (GsoType.DODGY if dodgy else 0)
    for n in range(labels):
        push_mpls(skb, 100 + n)
    return skb


def test_usual_nic_segments_mpls_in_software_with_full_checksums() -> None:
    out = transmit(gso_packet(), PROFILES["nic-tso-no-mpls-gso"])
    assert len(out) == 4 and all(p.ip_summed == IpSummed.NONE for p in out)
    assert netif_skb_features(gso_packet(), PROFILES["nic-tso-no-mpls-gso"]) == NetdevFeature.NONE


def test_usual_nic_takes_plain_tcp_whole() -> None:
    out = transmit(gso_packet(labels=0), PROFILES["nic-tso-no-mpls-gso"])
    assert len(out) == 1 and out[0].is_gso


def test_mpls_tso_nic_takes_the_labelled_packet_whole() -> None:
    out = transmit(gso_packet(), PROFILES["nic-mpls-tso"])
    assert len(out) == 1 and out[0].is_gso and out[0].ip_summed == IpSummed.PARTIAL


def test_untrusted_packet_on_tso_device_is_validated_then_sent_whole() -> None:
    out = transmit(gso_packet(dodgy=True), PROFILES["tso"])
    assert len(out) == 1 and out[0].gso_segs == 4


def test_checksum_offload_device_gets_partial_segments() -> None:
    out = transmit(gso_packet(), PROFILES["csum"])
    assert len(out) == 4 and all(p.ip_summed == IpSummed.PARTIAL for p in out)
    assert [p.csum_start for p in out] == [38] * 4


def test_gso_size_0_is_not_gso_the_packet_leaves_whole() -> None:
    # spec 13.1: without gso_size the packet is not GSO, whatever its gso_type and length
    skb = Packet.from_ethernet(build_frame(SuperPacketSpec(payload=bytes(65000))))
    skb.ip_summed, skb.csum_start, skb.csum_offset, skb.transport_header = IpSummed.PARTIAL, 34, 16, 34
    skb.gso_type = GsoType.TCPV4
    (packet,) = transmit(skb, PROFILES["no-offload"])
    assert len(packet.data) == 14 + 20 + 20 + 65000 and packet.ip_summed == IpSummed.NONE


def test_feature_bits_match_the_enum_arithmetic_beyond_the_named_bits() -> None:
    from softgso.features import DeviceProfile

    # the enum's ~ keeps only the bits NetdevFeature spans: unnamed high bits fall off, as before
    device = DeviceProfile("odd", NetdevFeature((1 << 63) | int(PROFILES["csum"].features)), NetdevFeature.NONE,
                           NetdevFeature.NONE)
    features = netif_skb_features(gso_packet(), device)
    assert isinstance(features, NetdevFeature) and int(features) >> 48 == 0


def _qinq_gso_packet() -> Packet:
    """A TCP super-packet with two VLAN tags in the bytes (protocol the outer TPID)."""
    skb = gso_packet(labels=0)
    skb.vlan_tci, skb.vlan_proto = 7, 0x8100
    skb.vlan_push_inside()
    skb.vlan_tci, skb.vlan_proto = 8, 0x88A8
    skb.vlan_push_inside()
    skb.network_header = 22
    return skb


def test_two_tags_leave_no_gso_feature_where_vlan_features_check_runs() -> None:
    # dflt_features_check (a VLAN device; vector generated/s57_099_inband_vlan): segmented in software
    out = transmit(_qinq_gso_packet(), PROFILES["tso"].with_overrides(features_check=""))
    assert len(out) == 4 and not any(p.is_gso for p in out)


def test_veth_passes_a_two_tag_super_packet_whole() -> None:
    # passthru_features_check: veth runs no multi-tag check (vector generated/g_mpls_2vlan_tso)
    out = transmit(_qinq_gso_packet(), PROFILES["tso"])
    assert len(out) == 1 and out[0].is_gso
