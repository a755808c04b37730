"""virtio_net_hdr_to_skb's rules (spec §11, Linux 6.1 §15): what it accepts, marks GSO, and refuses."""

from __future__ import annotations

import pytest

from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.errors import VirtioHeaderError
from softgso.features import GsoType, IpSummed
from softgso.virtio import VirtioNetHdr, packet_socket_skb, virtio_net_hdr_from_skb, virtio_net_hdr_to_skb

TCP4 = build_frame(SuperPacketSpec(payload=bytes(3000)))
UDP4 = build_frame(SuperPacketSpec(udp=True, payload=bytes(3000)))
TCP6 = build_frame(SuperPacketSpec(ipv6=True, payload=bytes(3000)))


def hdr(**fields: int) -> VirtioNetHdr:
    base = {"flags": 1, "gso_type": 1, "hdr_len": 54, "gso_size": 1448, "csum_start": 34, "csum_offset": 16}
    base.update(fields)
    return VirtioNetHdr(**base)


def test_header_round_trips_through_its_10_byte_little_endian_form() -> None:
    raw = bytes.fromhex("01013600a80522001000")
    decoded = VirtioNetHdr.unpack(raw)
    assert (decoded.flags, decoded.gso_type, decoded.hdr_len, decoded.gso_size) == (1, 1, 54, 1448)
    assert (decoded.csum_start, decoded.csum_offset) == (34, 16)
    assert decoded.pack() == raw


def test_needs_csum_sets_checksum_partial_and_transport_header_from_csum_start() -> None:
    skb = virtio_net_hdr_to_skb(TCP4, hdr())
    assert skb.ip_summed == IpSummed.PARTIAL
    assert (skb.csum_start, skb.csum_offset, skb.transport_header) == (34, 16, 34)
    assert skb.gso_type == GsoType.TCPV4 | GsoType.DODGY and skb.gso_size == 1448 and skb.gso_segs == 0


def test_ecn_bit_adds_tcp_ecn() -> None:
    assert virtio_net_hdr_to_skb(TCP4, hdr(gso_type=0x81)).gso_type & GsoType.TCP_ECN


@pytest.mark.parametrize("gso_type", [2, 6, 7, 0x40])
def test_unknown_gso_type_is_refused(gso_type: int) -> None:
    with pytest.raises(VirtioHeaderError, match="unknown gso_type"):
        virtio_net_hdr_to_skb(TCP4, hdr(gso_type=gso_type))


def test_udp_l4_is_unknown_to_linux_6_1_but_accepted_by_mainline() -> None:
    udp = hdr(gso_type=5, csum_offset=6, hdr_len=42, gso_size=1400)
    with pytest.raises(VirtioHeaderError, match="unknown gso_type 5"):
        virtio_net_hdr_to_skb(UDP4, udp, kernel="6.1")
    assert virtio_net_hdr_to_skb(UDP4, udp, kernel="mainline").gso_type & GsoType.UDP_L4


def test_udp_l4_with_tcp_checksum_offset_is_refused_by_mainline() -> None:
    with pytest.raises(VirtioHeaderError, match="csum_offset 16"):
        virtio_net_hdr_to_skb(UDP4, hdr(gso_type=5, csum_offset=16, gso_size=1400), kernel="mainline")


def test_udp_l4_segment_limit_is_the_kernels() -> None:
    big = build_frame(SuperPacketSpec(udp=True, payload=bytes(129 * 100)))
    with pytest.raises(VirtioHeaderError, match="128 segments"):
        virtio_net_hdr_to_skb(big, hdr(gso_type=5, csum_offset=6, gso_size=100), kernel="mainline")


def test_gso_size_zero_with_a_gso_type_is_refused() -> None:
    with pytest.raises(VirtioHeaderError, match="gso_size 0"):
        virtio_net_hdr_to_skb(TCP4, hdr(gso_size=0))


def test_gso_by_frags_is_refused() -> None:
    with pytest.raises(VirtioHeaderError, match="GSO_BY_FRAGS"):
        virtio_net_hdr_to_skb(TCP4, hdr(gso_size=0xFFFF))


def test_tcp_with_udp_checksum_offset_is_refused() -> None:
    with pytest.raises(VirtioHeaderError, match="csum_offset 6"):
        virtio_net_hdr_to_skb(TCP4, hdr(csum_offset=6))


def test_checksum_range_outside_the_packet_is_refused() -> None:
    with pytest.raises(VirtioHeaderError):
        virtio_net_hdr_to_skb(TCP4, hdr(csum_start=len(TCP4) - 4, hdr_len=0))


def test_hdr_len_longer_than_the_packet_is_refused_by_the_caller() -> None:
    with pytest.raises(VirtioHeaderError, match="hdr_len"):
        virtio_net_hdr_to_skb(TCP4, hdr(hdr_len=len(TCP4) + 1))


def test_payload_not_above_gso_size_by_the_fixed_header_rule_is_not_gso() -> None:
    # 3000 bytes of payload after a 20-byte TCP header: gso_size 3000 is not exceeded
    assert not virtio_net_hdr_to_skb(TCP4, hdr(gso_size=3000)).is_gso
    assert virtio_net_hdr_to_skb(TCP4, hdr(gso_size=2999)).is_gso


def test_without_needs_csum_the_dissector_finds_the_transport_header() -> None:
    skb = virtio_net_hdr_to_skb(TCP4, hdr(flags=0))
    assert skb.ip_summed == IpSummed.NONE and skb.transport_header == 34 and skb.is_gso


def test_without_needs_csum_a_protocol_mismatch_is_refused() -> None:
    with pytest.raises(VirtioHeaderError, match="does not match"):
        virtio_net_hdr_to_skb(UDP4, hdr(flags=0))


def test_6_1_has_no_minimum_transport_offset_check_but_mainline_does() -> None:
    frame = bytes(14) + TCP4[14:]
    header = hdr(csum_start=10, gso_size=1000, hdr_len=0)
    virtio_net_hdr_to_skb(frame, header, kernel="6.1")
    with pytest.raises(VirtioHeaderError, match="minimum L3"):
        virtio_net_hdr_to_skb(frame, header, kernel="mainline")


@pytest.mark.parametrize("frame", [UDP4[:600], TCP6[:600]], ids=["ipv4", "ipv6"])
def test_6_12_checks_the_minimum_transport_offset_without_gso_too(frame: bytes) -> None:
    """gso_type NONE, NEEDS_CSUM at the IPv4 header (14, offset 10): 6.1 takes it, 6.12 refuses it (EINVAL) for
    either family, the minimum being IPv4's 20 (kernel vectors generated/s3500_064_no_gso and
    6.12/generated/s3501_045_no_gso, IPv4; the IPv6 row from virtio_net_hdr_to_skb, where nh_min_len starts at
    sizeof(struct iphdr) and only TCPV6 raises it)."""
    header = hdr(gso_type=0, gso_size=0, hdr_len=0, csum_start=14, csum_offset=10)
    assert virtio_net_hdr_to_skb(frame, header, kernel="6.1").ip_summed == IpSummed.PARTIAL
    with pytest.raises(VirtioHeaderError, match="minimum L3 header of 20"):
        virtio_net_hdr_to_skb(frame, header, kernel="6.12")
    assert virtio_net_hdr_to_skb(frame, hdr(gso_type=0, gso_size=0, hdr_len=0, csum_start=20, csum_offset=0),
                                 kernel="6.12").csum_start == 20


def test_from_skb_reports_tcpv6_gso_and_needs_csum() -> None:
    skb = virtio_net_hdr_to_skb(TCP6, hdr(gso_type=4, csum_start=54, hdr_len=74))
    out = virtio_net_hdr_from_skb(skb)
    assert (out.gso_type, out.gso_size, out.flags, out.csum_start, out.csum_offset) == (4, 1448, 1, 54, 16)


def test_from_skb_refuses_legacy_ufo() -> None:
    skb = virtio_net_hdr_to_skb(UDP4, hdr(gso_type=3, csum_offset=6, hdr_len=42, gso_size=1400))
    with pytest.raises(VirtioHeaderError):
        virtio_net_hdr_from_skb(skb)


# --- regressions: 64 KB super-packets the fuzz pass built ---------------------------------------


def test_gso_size_0_with_a_gso_type_from_virtio_is_refused() -> None:
    frame = build_frame(SuperPacketSpec(payload=bytes(65000)))
    with pytest.raises(VirtioHeaderError, match="gso_size 0 with a GSO type"):
        virtio_net_hdr_to_skb(frame, VirtioNetHdr(1, 1, 54, 0, 34, 16))


def test_virtio_uso_with_gso_size_1_is_refused_for_too_many_segments() -> None:
    # virtio_net_hdr_to_skb caps USO at UDP_MAX_SEGMENTS: the kernel never segments this
    frame = build_frame(SuperPacketSpec(udp=True, payload=bytes(60000)))
    with pytest.raises(VirtioHeaderError, match="more than 128 segments"):
        virtio_net_hdr_to_skb(frame, VirtioNetHdr(1, 5, 42, 1, 34, 6), kernel="mainline")


def test_a_vlan_device_parses_protocol_0_behind_the_in_band_tags() -> None:
    # vlan_parse_protocol: sll_protocol 0 on a VLAN device gives the type behind the tags, so the network
    # header stays on the tag (kernel vectors generated/s57_055_inband_vlan, _083, _144: GSO fails)
    frame = bytes(12) + bytes.fromhex("8100000a0800") + bytes(60)
    on_vlan_device = packet_socket_skb(frame, None, 0, vlan_device=True)
    on_veth = packet_socket_skb(frame, None, 0)
    assert (on_vlan_device.protocol, on_vlan_device.network_header) == (0x0800, 14)
    assert (on_veth.protocol, on_veth.network_header) == (0x8100, 18)
