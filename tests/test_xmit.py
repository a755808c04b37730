"""The transmit decision (spec §4): which device segments, which checksums stay partial."""

from __future__ import annotations

from softgso.actions import push_mpls
from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.features import PROFILES, GsoType, IpSummed, NetdevFeature, net_gso_ok
from softgso.packet import Packet
from softgso.xmit import netif_skb_features, transmit


def gso_packet(labels: int = 1, dodgy: bool = False) -> Packet:
    skb = Packet.from_ethernet(build_frame(SuperPacketSpec(payload=bytes(5000))))
    skb.ip_summed, skb.csum_start, skb.csum_offset, skb.transport_header = IpSummed.PARTIAL, 34, 16, 34
    skb.gso_size, skb.gso_type = 1448, GsoType.TCPV4 | (GsoType.DODGY if dodgy else 0)
    for n in range(labels):
        push_mpls(skb, 100 + n)
    return skb


def test_feature_bits_mirror_gso_bits() -> None:
    assert NetdevFeature.TSO == GsoType.TCPV4 << 16 and NetdevFeature.GSO_UDP_L4 == GsoType.UDP_L4 << 16
    assert net_gso_ok(NetdevFeature.TSO | NetdevFeature.GSO_ROBUST, GsoType.TCPV4 | GsoType.DODGY)
    assert not net_gso_ok(NetdevFeature.TSO, GsoType.TCPV4 | GsoType.DODGY)


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


# --- the fast forms of the engine's inner loops agree with the plain ones ----------------------------


def test_clone_copies_every_field_and_shares_nothing_mutable() -> None:
    from dataclasses import fields

    skb = gso_packet(labels=2)
    skb.vlan_tci, skb.vlan_proto, skb.encapsulation, skb.ip6_frag_id = 5, 0x8100, True, 77
    skb.extras["note"] = 1
    twin = skb.clone()
    for f in fields(Packet):
        assert getattr(twin, f.name) == getattr(skb, f.name), f.name
    assert twin.data is not skb.data and twin.extras is not skb.extras
    assert skb.clone(bytearray(b"x")).data == b"x"


def test_chunk_sums_match_one_sum_per_chunk() -> None:
    import random

    from softgso.checksum import ones_sum, ones_sums_of_chunks

    rng = random.Random(7)
    samples = [bytes(4000), b"\xff" * 4000, b"\xff\xff" * 1000 + b"\x00\x01", rng.randbytes(9001)]
    for data in samples:
        for size in (1, 2, 7, 8, 100, 1447, 1448, 3000, 9001, 20000):
            expected = [ones_sum(data[start : start + size]) for start in range(0, len(data), size)]
            assert ones_sums_of_chunks(data, size) == expected, (len(data), size)
            assert ones_sums_of_chunks(memoryview(bytearray(data)), size) == expected
    assert ones_sums_of_chunks(b"", 8) == []


def test_feature_bits_match_the_enum_arithmetic_beyond_the_named_bits() -> None:
    from softgso.features import DeviceProfile

    # the enum's ~ keeps only the bits NetdevFeature spans: unnamed high bits fall off, as before
    device = DeviceProfile("odd", NetdevFeature((1 << 63) | int(PROFILES["csum"].features)), NetdevFeature.NONE,
                           NetdevFeature.NONE)
    features = netif_skb_features(gso_packet(), device)
    assert isinstance(features, NetdevFeature) and int(features) >> 48 == 0
