"""Hostile and extreme inputs: documented errors instead of crashes, bounded work and memory.

Regression tests for what the fuzz pass (tests/fuzz) found, and the resource bounds SECURITY.md
states: a 64 KB super-packet with gso_size 1 is cut into one segment per payload byte (the
kernel's answer), in memory linear in the number of segments; gso_size 0 is not GSO at all.
"""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import pytest

from softgso.actions import parse_action, push_mpls
from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.errors import ActionError, UsageError, VirtioHeaderError
from softgso.features import PROFILES, GsoType, IpSummed, load_profile
from softgso.packet import Packet
from softgso.prepare import packet_from_capture, parse_layout
from softgso.virtio import VirtioNetHdr, virtio_net_hdr_to_skb
from softgso.xmit import transmit

# --- regressions: crashes the fuzzers found ------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 4, 13])
def test_push_mpls_on_a_frame_shorter_than_its_link_header_is_an_action_error(length: int) -> None:
    skb = packet_from_capture(bytes(length), None)  # a runt Ethernet record (was: struct.error)
    with pytest.raises(ActionError, match="ends inside its 14-byte link-layer header"):
        push_mpls(skb, 100)


def test_push_mpls_action_on_a_runt_record_is_refused_not_crashed() -> None:
    from softgso.job import apply_actions

    frame, error = apply_actions(b"\x00\x06A@", (parse_action("push-mpls:100"),))
    assert frame == b"\x00\x06A@" and isinstance(error, ActionError)
    assert "skb_mpls_push" in str(error)


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ("null", ".json", "expected a table"),  # was: AttributeError
        ("[]", ".json", "expected a table"),  # was: TypeError
        ('{"base": "nope"}', ".json", "base 'nope'"),  # was: KeyError
        ('{"base": ["tso"]}', ".json", "base"),  # was: TypeError (unhashable)
        ('{"mtu": "big"}', ".json", "mtu must be an integer"),  # was: ValueError from int()
        ('{"mtu": null}', ".json", "mtu must be an integer"),  # was: TypeError from int()
        ('{"mtu": 1e9}', ".json", "mtu must be an integer"),  # was: accepted as 1000000000
        ('{"mtu": -1}', ".json", "mtu must be an integer in 68..65535"),  # was: accepted
        ('{"features": 1.5}', ".json", "netdev features must be"),  # was: AttributeError
        ('{"features": {"TSO": 1}}', ".json", "netdev features must be"),  # was: AttributeError
        ('{"features": [1, 2]}', ".json", "netdev features must be"),  # was: AttributeError
        ('{"features": -1}', ".json", "out of range"),  # was: accepted as all bits
        ("features = 1.5", ".toml", "netdev features must be"),
        ("= broken", ".toml", "cannot read device profile"),
    ],
)
def test_a_broken_device_profile_file_is_a_usage_error(tmp_path: Path, text: str, suffix: str, message: str) -> None:
    path = tmp_path / f"profile{suffix}"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_profile(str(path))


def test_a_valid_device_profile_file_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "jumbo.json"
    path.write_text('{"base": "tso", "mtu": 9000, "features": "SG|HW_CSUM|TSO", "gso_max_segs": "64"}')
    profile = load_profile(str(path))
    assert (profile.name, profile.mtu, profile.gso_max_segs) == ("jumbo", 9000, 64)


# --- resource bounds -----------------------------------------------------------------------------


def _tcp_super_packet(payload_len: int, gso_size: int) -> Packet:
    frame = build_frame(SuperPacketSpec(payload=bytes((i * 7) & 0xFF for i in range(payload_len))))
    skb = Packet.from_ethernet(frame)
    skb.ip_summed, skb.csum_start, skb.csum_offset, skb.transport_header = IpSummed.PARTIAL, 34, 16, 34
    skb.gso_size, skb.gso_type = gso_size, GsoType.TCPV4
    return skb


def test_64k_super_packet_with_gso_size_1_gives_one_segment_per_payload_byte() -> None:
    payload_len = 65535 - 20 - 20  # the largest IPv4 TCP super-packet
    segments = transmit(_tcp_super_packet(payload_len, 1), PROFILES["no-offload"])
    assert len(segments) == payload_len
    assert {len(seg.data) for seg in segments} == {14 + 20 + 20 + 1}
    assert bytes(seg.data[-1] for seg in segments) == bytes((i * 7) & 0xFF for i in range(payload_len))


def test_segmenting_memory_is_linear_in_the_number_of_segments() -> None:
    payload_len = 8000
    skb = _tcp_super_packet(payload_len, 1)
    tracemalloc.start()
    try:
        segments = transmit(skb, PROFILES["no-offload"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(segments) == payload_len
    # measured ~620 bytes per 55-byte segment (bytes + the skb-like object); 2 KiB each is the bound
    assert peak < 2048 * len(segments), f"{peak} bytes for {len(segments)} segments"


def test_gso_size_0_is_not_gso_the_packet_leaves_whole() -> None:
    skb = _tcp_super_packet(65000, 0)
    (packet,) = transmit(skb, PROFILES["no-offload"])
    assert len(packet.data) == 14 + 20 + 20 + 65000 and packet.ip_summed == IpSummed.NONE


def test_gso_size_0_with_a_gso_type_from_virtio_is_refused() -> None:
    frame = build_frame(SuperPacketSpec(payload=bytes(65000)))
    with pytest.raises(VirtioHeaderError, match="gso_size 0 with a GSO type"):
        virtio_net_hdr_to_skb(frame, VirtioNetHdr(1, 1, 54, 0, 34, 16))


def test_uso_with_gso_size_1_over_64k_gets_the_kernels_answer() -> None:
    payload_len = 65535 - 20 - 8
    frame = build_frame(SuperPacketSpec(udp=True, payload=bytes(payload_len)))
    layout = parse_layout(frame)
    assert layout is not None
    skb = Packet.from_ethernet(frame)
    skb.ip_summed, skb.csum_start, skb.csum_offset = IpSummed.PARTIAL, layout.transport, 6
    skb.gso_size, skb.gso_type = 1, GsoType.UDP_L4
    segments = transmit(skb, PROFILES["no-offload"])
    assert len(segments) == payload_len
    assert all(struct.unpack_from("!H", seg.data, layout.transport + 4)[0] == 9 for seg in segments[:3])


def test_virtio_uso_with_gso_size_1_is_refused_for_too_many_segments() -> None:
    # virtio_net_hdr_to_skb caps USO at UDP_MAX_SEGMENTS: the kernel never segments this
    frame = build_frame(SuperPacketSpec(udp=True, payload=bytes(60000)))
    with pytest.raises(VirtioHeaderError, match="more than 128 segments"):
        virtio_net_hdr_to_skb(frame, VirtioNetHdr(1, 5, 42, 1, 34, 6), kernel="mainline")


# --- 16-bit header fields are stored as htons stores them -----------------------------------------


def test_ufo_ipv6_offsets_past_65535_wrap_as_htons_does() -> None:
    # fuzz crasher: gso_size 1 behind an 8-byte hop-by-hop header moves the offset 9 bytes per
    # fragment (ipv6_gso_segment counts extension headers in the step), past 65535 (was: struct.error)
    frame = build_frame(SuperPacketSpec(ipv6=True, udp=True, payload=bytes(8000),
                                        ipv6_exthdrs=((0, bytes([1, 4]) + bytes(4)),)))
    skb = Packet.from_ethernet(frame)
    skb.gso_size, skb.gso_type = 1, GsoType.UDP
    fragments = transmit(skb, PROFILES["no-offload"])
    assert len(fragments) == 8 + 8000
    offsets = [struct.unpack_from("!H", seg.data, 14 + 40 + 8 + 2)[0] for seg in fragments]
    assert offsets == [((9 * k) & 0xFFFF) | (k != len(fragments) - 1) for k in range(len(fragments))]


@pytest.mark.parametrize(("ipv6", "udp", "gso_type"), [
    (False, False, GsoType.TCPV4), (True, False, GsoType.TCPV6), (False, True, GsoType.UDP_L4),
    (True, True, GsoType.UDP_L4), (False, True, GsoType.UDP), (True, True, GsoType.UDP),
])
def test_a_record_longer_than_any_ip_packet_wraps_16_bit_lengths_instead_of_crashing(
    ipv6: bool, udp: bool, gso_type: GsoType
) -> None:
    # a capture can hold a 140 KB "packet"; with gso_size 65535 a segment's IP length exceeds 16
    # bits, and the kernel's htons() keeps the low 16 (was: struct.error)
    frame = bytearray(build_frame(SuperPacketSpec(ipv6=ipv6, udp=udp, payload=bytes(60000)))) + bytes(80000)
    layout_transport = 14 + (40 if ipv6 else 20)
    skb = Packet.from_ethernet(frame)
    skb.ip_summed, skb.csum_start, skb.csum_offset = IpSummed.PARTIAL, layout_transport, 6 if udp else 16
    skb.gso_size, skb.gso_type = 65535, gso_type
    first = transmit(skb, PROFILES["no-offload"])[0].data
    if ipv6:
        assert struct.unpack_from("!H", first, 14 + 4)[0] == (len(first) - 14 - 40) & 0xFFFF
    else:
        assert struct.unpack_from("!H", first, 14 + 2)[0] == (len(first) - 14) & 0xFFFF
    if gso_type == GsoType.UDP_L4:
        assert struct.unpack_from("!H", first, layout_transport + 4)[0] == (len(first) - layout_transport) & 0xFFFF
