"""What differs between the kernel generations, one test per rule (docs/kernel-notes.md).

The kernels' own frames are in tests/vectors/kernel/ (6.12/ for 6.12); these tests pin each rule
on a small packet so that a regression names the rule, not a vector.
"""

from __future__ import annotations

import pytest

from softgso.actions import push_mpls, push_vlan
from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.constants import ETH_P_8021AD, ETH_P_8021Q
from softgso.errors import VirtioHeaderError
from softgso.features import PROFILES
from softgso.virtio import KERNELS, VirtioNetHdr, kernel_of, packet_socket_skb, virtio_net_hdr_to_skb
from softgso.xmit import transmit

TCP4 = build_frame(SuperPacketSpec(payload=bytes(range(256)) * 12))
UDP4 = build_frame(SuperPacketSpec(udp=True, payload=bytes(3000)))
TCP_HDR = VirtioNetHdr(flags=1, gso_type=1, hdr_len=54, gso_size=1000, csum_start=34, csum_offset=16)
USO_HDR = VirtioNetHdr(flags=1, gso_type=5, hdr_len=42, gso_size=1000, csum_start=34, csum_offset=6)


def qinq_under_mpls(kernel: str) -> list[bytes]:
    """A label, then two tc VLAN pushes (the second moves the first into the bytes), then software GSO."""
    skb = packet_socket_skb(TCP4, TCP_HDR, 0x0800, kernel=kernel)
    push_mpls(skb, 100)
    push_vlan(skb, 42, 5, ETH_P_8021Q)
    push_vlan(skb, 1000, 3, ETH_P_8021AD)
    return [bytes(p.data) for p in transmit(skb, PROFILES["no-offload"])]


def test_the_generations_are_6_1_6_12_and_mainline() -> None:
    assert KERNELS == ("6.1", "6.12", "mainline")


def test_the_packet_carries_the_generation_it_was_built_under() -> None:
    assert kernel_of(virtio_net_hdr_to_skb(TCP4, TCP_HDR, kernel="6.12")) == "6.12"
    assert kernel_of(virtio_net_hdr_to_skb(TCP4, TCP_HDR)) == "6.1"


def test_6_1_keeps_every_byte_of_a_qinq_frame_under_mpls_gso() -> None:
    frames = qinq_under_mpls("6.1")
    assert frames[0][:12] == TCP4[:12]
    assert frames[0][12:22] == bytes.fromhex("88a863e8" "8100a02a" "8847")


@pytest.mark.parametrize("kernel", ["6.12", "mainline"])
def test_6_12_cuts_mpls_gso_segments_one_tag_late(kernel: str) -> None:
    """938863727076 (v6.12): skb_vlan_push moves the network header, mac_len stays 14."""
    whole, cut = qinq_under_mpls("6.1"), qinq_under_mpls(kernel)
    assert len(cut) == len(whole)
    assert all(late == right[4:] for late, right in zip(cut, whole, strict=True))


def test_6_12_vlan_pushes_without_mpls_lose_nothing() -> None:
    def frames(kernel: str) -> list[bytes]:
        skb = packet_socket_skb(TCP4, TCP_HDR, 0x0800, kernel=kernel)
        push_vlan(skb, 42, 5, ETH_P_8021Q)
        push_vlan(skb, 1000, 3, ETH_P_8021AD)
        return [bytes(p.data) for p in transmit(skb, PROFILES["no-offload"])]

    assert frames("6.12") == frames("6.1")


def test_uso_in_the_virtio_header_is_refused_by_6_1_and_accepted_by_6_12() -> None:
    """860b7f27b8f7 (v6.2) brought VIRTIO_NET_HDR_GSO_UDP_L4."""
    with pytest.raises(VirtioHeaderError):
        virtio_net_hdr_to_skb(UDP4, USO_HDR, kernel="6.1")
    assert virtio_net_hdr_to_skb(UDP4, USO_HDR, kernel="6.12").gso_size == 1000


def test_6_12_allows_128_uso_segments_and_refuses_129() -> None:
    """1382e3b6a350 (v6.10): UDP_MAX_SEGMENTS 128."""
    payload_128 = build_frame(SuperPacketSpec(udp=True, payload=bytes(128 * 100)))
    payload_129 = build_frame(SuperPacketSpec(udp=True, payload=bytes(128 * 100 + 1)))
    small = VirtioNetHdr(flags=1, gso_type=5, hdr_len=42, gso_size=100, csum_start=34, csum_offset=6)
    assert virtio_net_hdr_to_skb(payload_128, small, kernel="6.12").gso_size == 100
    with pytest.raises(VirtioHeaderError):
        virtio_net_hdr_to_skb(payload_129, small, kernel="6.12")


def test_6_12_refuses_a_transport_offset_below_the_minimum_network_header() -> None:
    """9181d6f8a2bb (v6.8): TCPV6 on an IPv4 packet (transport at 34 < 40) is refused in sendto."""
    wrong_family = VirtioNetHdr(flags=1, gso_type=4, hdr_len=54, gso_size=1000, csum_start=34, csum_offset=16)
    with pytest.raises(VirtioHeaderError):
        virtio_net_hdr_to_skb(TCP4, wrong_family, kernel="6.12")
    virtio_net_hdr_to_skb(TCP4, wrong_family, kernel="6.1")  # 6.1 lets it through; GSO drops it later
