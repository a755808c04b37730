"""The skb-like packet model (spec §1): offsets from the frame's first byte, moved with the bytes."""

from __future__ import annotations

from dataclasses import fields

from scapy.all import IP, TCP, Dot1Q, Ether, IPv6, Raw, raw  # type: ignore[attr-defined]

from softgso.features import GsoType, IpSummed
from softgso.packet import Packet

FRAME4 = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP() / TCP() / Raw(bytes(100)))


def test_a_frame_from_a_packet_socket_has_its_mac_header_at_0_and_l3_at_14() -> None:
    skb = Packet.from_ethernet(raw(Ether() / IPv6() / TCP()))
    assert (skb.mac_header, skb.network_header, skb.mac_len, skb.protocol) == (0, 14, 14, 0x86DD)
    assert skb.transport_header is None, "unset until a dissector or a virtio header sets it"


def test_gso_means_a_gso_size_is_set() -> None:
    skb = Packet.from_ethernet(FRAME4)
    skb.gso_type = GsoType.TCPV4
    assert not skb.is_gso
    skb.gso_size = 1448
    assert skb.is_gso


def test_inserting_bytes_moves_every_offset_at_or_past_them() -> None:
    skb = Packet.from_ethernet(FRAME4)
    skb.transport_header, skb.inner_network_header = 34, 14
    skb.ip_summed, skb.csum_start, skb.csum_offset = IpSummed.PARTIAL, 34, 16
    skb.insert(14, bytes(4))
    assert (skb.mac_header, skb.network_header, skb.transport_header) == (0, 18, 38)
    assert (skb.inner_network_header, skb.csum_start, skb.csum_offset) == (18, 38, 16)
    skb.remove(14, 4)
    assert (skb.network_header, skb.transport_header, skb.csum_start) == (14, 34, 34)
    assert bytes(skb.data) == FRAME4


def test_the_out_of_band_tag_goes_in_after_the_mac_addresses() -> None:
    # __vlan_hwaccel_push_inside: TPID and TCI after the addresses, the protocol becomes the TPID
    skb = Packet.from_ethernet(FRAME4)
    skb.vlan_tci, skb.vlan_proto = 5 << 13 | 42, 0x8100
    skb.vlan_push_inside()
    tagged = Ether(bytes(skb.data))
    assert (tagged[Dot1Q].prio, tagged[Dot1Q].vlan, tagged[Dot1Q].type) == (5, 42, 0x0800)
    assert raw(tagged[IP]) == FRAME4[14:]
    assert (skb.protocol, skb.vlan_tci, skb.network_header) == (0x8100, None, 18)


def test_clone_copies_every_field_and_shares_nothing_mutable() -> None:
    skb = Packet.from_ethernet(FRAME4)
    skb.ip_summed, skb.csum_start, skb.csum_offset, skb.transport_header = IpSummed.PARTIAL, 34, 16, 34
    skb.gso_size, skb.gso_type, skb.inner_protocol, skb.inner_network_header = 1448, GsoType.TCPV4, 0x0800, 22
    skb.vlan_tci, skb.vlan_proto, skb.encapsulation, skb.ip6_frag_id = 5, 0x8100, True, 77
    skb.extras["note"] = 1
    twin = skb.clone()
    for f in fields(Packet):
        assert getattr(twin, f.name) == getattr(skb, f.name), f.name
    assert twin.data is not skb.data and twin.extras is not skb.extras
    assert skb.clone(bytearray(b"x")).data == b"x"
