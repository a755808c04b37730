"""The tunnel push/pop actions on the skb model, as the kernel's tunnel drivers leave an skb
(spec tunnels-gso.md 2.5: iptunnel_handle_offloads, udp_tunnel_xmit_skb / udp_set_csum,
gre_build_header). Expected bytes come from Scapy and from the spec's rules, never from softgso."""

from __future__ import annotations

import struct

import pytest

from softgso import PROFILES, transmit
from softgso.actions import TunnelPop, TunnelPush, apply_action, pop_tunnel, push_tunnel
from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.checksum import pseudo_header_sum
from softgso.cli.action_grammar import parse_action
from softgso.constants import ETH_P_IP, ETH_P_TEB
from softgso.features import GsoType, IpSummed
from softgso.packet import Packet
from softgso.virtio import VirtioNetHdr, virtio_net_hdr_to_skb

scapy_all = pytest.importorskip("scapy.all")
from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.l2 import GRE, Ether  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402

SRC, DST = bytes([192, 0, 2, 10]), bytes([192, 0, 2, 20])
GSO_SIZE = 1000


def _gso_skb(payload_len: int = 4000) -> Packet:
    """A TCP/IPv4 super-packet as a TAP hands it over: NEEDS_CSUM, GSO TCPV4 (virtio_net_hdr_to_skb)."""
    frame = build_frame(SuperPacketSpec(payload=bytes(i & 0xFF for i in range(payload_len)), partial_checksum=True))
    hdr = VirtioNetHdr(flags=1, gso_type=1, hdr_len=54, gso_size=GSO_SIZE, csum_start=34, csum_offset=16)
    return virtio_net_hdr_to_skb(frame, hdr)


@pytest.mark.parametrize("csum", [True, False])
def test_push_vxlan_on_a_gso_packet_sets_what_the_vxlan_driver_sets(csum: bool) -> None:
    skb = _gso_skb()
    inner_len = len(skb.data)
    push_tunnel(skb, TunnelPush("vxlan", SRC, DST, vni=42, csum=csum))
    # iptunnel_handle_offloads: encapsulation, the inner headers where the packet was, the tunnel bit
    assert skb.encapsulation
    assert (skb.inner_mac_header, skb.inner_network_header, skb.inner_transport_header) == (50, 64, 84)
    assert skb.inner_protocol == ETH_P_TEB
    tunnel_bit = GsoType.UDP_TUNNEL_CSUM if csum else GsoType.UDP_TUNNEL
    assert skb.gso_type & ~GsoType.DODGY == GsoType.TCPV4 | tunnel_bit  # DODGY: virtio_net_hdr_to_skb
    assert (skb.mac_header, skb.network_header, skb.transport_header, skb.mac_len) == (0, 14, 34, 14)
    assert skb.protocol == ETH_P_IP and skb.gso_size == GSO_SIZE
    assert skb.ip_summed == IpSummed.PARTIAL and skb.csum_start == 84  # the inner checksum, moved with the bytes
    udp_len = 8 + 8 + inner_len
    assert struct.unpack_from("!H", skb.data, 38)[0] == udp_len
    # udp_set_csum on a GSO packet: the pseudo-header sum (the seed), or 0 with the checksum off
    expected = pseudo_header_sum(SRC, DST, 17, udp_len) if csum else 0
    assert struct.unpack_from("!H", skb.data, 40)[0] == expected


def test_push_on_a_packet_neither_gso_nor_partial_leaves_no_encapsulation() -> None:
    frame = build_frame(SuperPacketSpec(payload=b"x" * 100, partial_checksum=False))
    skb = Packet.from_ethernet(frame)
    push_tunnel(skb, TunnelPush("vxlan", SRC, DST, vni=1))
    assert not skb.encapsulation and skb.ip_summed == IpSummed.NONE  # iptunnel_handle_offloads, step 3


def test_push_gre_with_checksum_on_a_gso_packet_leaves_the_checksum_to_gso() -> None:
    skb = _gso_skb()
    push_tunnel(skb, TunnelPush("gre", SRC, DST, vni=7, csum=True, ethernet=True))
    assert skb.gso_type & GsoType.GRE_CSUM and skb.inner_protocol == ETH_P_TEB
    flags, protocol, check, _, key = struct.unpack_from("!HHHHI", skb.data, 34)
    assert (flags, protocol, check, key) == (0xA000, ETH_P_TEB, 0, 7)


@pytest.mark.parametrize("spec", ["push-vxlan:src=192.0.2.10,dst=192.0.2.20,vni=42,csum=on",
                                  "push-vxlan:src=192.0.2.10,dst=192.0.2.20,vni=42",
                                  "push-gre:src=192.0.2.10,dst=192.0.2.20,key=7,csum=on",
                                  "push-gretap:src=192.0.2.10,dst=192.0.2.20,key=7"])
def test_a_pushed_gso_packet_is_segmented_as_tunnel_gso(spec: str) -> None:
    skb = _gso_skb(4000)
    (action,) = parse_action(spec)
    apply_action(skb, action)
    segments = [Ether(bytes(p.data)) for p in transmit(skb, PROFILES["no-offload"])]
    assert len(segments) == 4
    for packet in segments:
        rebuilt = Ether(bytes(packet))
        for layer in (IP, UDP, GRE):
            if layer in rebuilt and getattr(rebuilt[layer], "chksum", None):
                del rebuilt[layer].chksum
        rebuilt = Ether(bytes(rebuilt))
        assert packet[IP].chksum == rebuilt[IP].chksum and packet[IP].len == len(bytes(packet[IP]))
        if UDP in packet and VXLAN in packet:
            assert packet[UDP].len == len(bytes(packet[UDP])) and packet[VXLAN].vni == 42
            assert packet[UDP].chksum == (rebuilt[UDP].chksum if "csum=on" in spec else 0)
        else:
            assert packet[GRE].key == 7
            if packet[GRE].chksum_present:
                assert packet[GRE].chksum == rebuilt[GRE].chksum
        inner_tcp = packet[TCP]
        assert len(bytes(inner_tcp.payload)) <= GSO_SIZE


def test_pop_takes_off_what_push_put_on_and_clears_the_encapsulation() -> None:
    frame = build_frame(SuperPacketSpec(payload=b"y" * 200, partial_checksum=False))
    skb = Packet.from_ethernet(frame)
    push_tunnel(skb, TunnelPush("geneve", SRC, DST, vni=3, options=bytes.fromhex("0101020100000001")))
    pop_tunnel(skb, TunnelPop("geneve"))
    assert bytes(skb.data) == frame and not skb.encapsulation
    assert (skb.protocol, skb.network_header, skb.mac_len) == (ETH_P_IP, 14, 14)


@pytest.mark.parametrize("spec", ["push-vxlan:src=192.0.2.10,dst=192.0.2.20,vni=42,csum=on",
                                  "push-gre:src=192.0.2.10,dst=192.0.2.20,key=3,csum=on"])
def test_an_outer_checksum_over_an_inner_one_left_to_the_device_is_local_checksum_offload(spec: str) -> None:
    """udp_set_csum / gre_checksum on a CHECKSUM_PARTIAL packet (lco_csum): the outer checksum is the
    one the packet has once the device fills the inner checksum."""
    frame = build_frame(SuperPacketSpec(payload=bytes(range(200)), partial_checksum=True))
    skb = virtio_net_hdr_to_skb(frame, VirtioNetHdr(flags=1, csum_start=34, csum_offset=16))
    (action,) = parse_action(spec)
    apply_action(skb, action)
    assert skb.ip_summed == IpSummed.PARTIAL and skb.encapsulation  # iptunnel_handle_offloads keeps both
    written = Ether(bytes(skb.data))
    filled = written.copy()
    del filled[TCP].chksum  # the device fills the inner checksum
    filled = Ether(bytes(filled))
    outer = UDP if UDP in filled else GRE
    recomputed = filled.copy()
    del recomputed[outer].chksum
    recomputed = Ether(bytes(recomputed))
    assert filled[TCP].chksum != written[TCP].chksum  # the seed was there
    assert written[outer].chksum == recomputed[outer].chksum
