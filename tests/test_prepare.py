"""prepare: the pseudo-header a sender summed (the final destination behind an IPv6 Routing header), and
not_segmentable: a frame over the MTU that software GSO has nothing to cut in is reported
with the reason its headers give, never a reason they do not (issue 14: "a clear error naming the
packet and the reason").

Frames are built with Scapy; the reasons quoted are the frames' own fields (the version nibble, the
IHL, the data offset, the label stack's S bit), as tshark decodes them.
"""

from __future__ import annotations

from scapy.all import (  # type: ignore[attr-defined]
    IP,
    TCP,
    Ether,
    IPOption_LSRR,
    IPv6,
    IPv6ExtHdrFragment,
    IPv6ExtHdrRouting,
    IPv6ExtHdrSegmentRouting,
    raw,
)
from scapy.contrib.mpls import MPLS
from scapy.layers.inet6 import HAO, IPv6ExtHdrDestOpt

from softgso.features import PROFILES
from softgso.job import Outcome, SegmentOptions, process_frame
from softgso.prepare import mtu_bytes, not_segmentable

OPTIONS = SegmentOptions(device=PROFILES["no-offload"])
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
PAYLOAD = bytes(range(256)) * 16
INNER = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=5201, flags="PA") / PAYLOAD


def _reported(frame: bytes) -> tuple[str, str]:
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.NOT_SEGMENTED and result.frames == [frame] and result.over_mtu
    return result.kind, str(result.error)


def test_a_pseudowire_control_word_under_the_labels_is_named_not_an_ethertype() -> None:
    frame = raw(ETH / MPLS(label=100, s=1)) + b"\0\0\0\0" + raw(Ether() / INNER)
    kind, reason = _reported(frame)
    assert kind == "not IP"
    assert "no IPv4 or IPv6 header under the MPLS label stack (first nibble 0" in reason
    assert "ethertype 0x0000" not in reason


def test_a_label_stack_without_bottom_of_stack_in_the_frame_is_named() -> None:
    # every label's S bit clear: the stack never ends, as tshark shows it (no BoS in any label)
    frame = raw(ETH / MPLS(label=99, s=0, ttl=64)) + b"".join(raw(MPLS(label=100 + n, s=0, ttl=64)) for n in range(1101))
    assert all(not MPLS(frame[14 + 4 * n : 18 + 4 * n]).s for n in range(1101))
    assert mtu_bytes(frame) > 1500
    assert not_segmentable(frame) == (
        "not IP", "the MPLS label stack has no bottom-of-stack label within the frame: no software GSO")


def test_an_ip_version_that_contradicts_the_ethertype_is_named_not_measured_as_a_trailer() -> None:
    ipv4 = raw(ETH / INNER)
    frame = ipv4[:12] + b"\x86\xdd" + ipv4[14:]  # ethertype IPv6 over an IPv4 header (version nibble 4)
    kind, reason = _reported(frame)
    assert kind.startswith("IP version contradicts the ethertype")
    assert reason == "ethertype 0x86dd (IPv6) but IP version 4 in the header"


def test_an_ipv4_header_length_under_20_bytes_is_named() -> None:
    frame = bytearray(raw(ETH / INNER))
    frame[14] = 0x44  # IHL 4: 16 bytes (inet_gso_segment: ihl < sizeof(struct iphdr) is -EINVAL)
    kind, reason = _reported(bytes(frame))
    assert kind == "lengths contradict"
    assert reason == "IPv4 header length 16 is shorter than the 20-byte header"


def test_a_tcp_data_offset_under_20_bytes_is_named_not_a_header_cut_short() -> None:
    frame = bytearray(raw(ETH / INNER))
    frame[14 + 20 + 12] = 0x20  # data offset 2: 8 bytes (tcp_gso_segment: thlen < sizeof(*th))
    kind, reason = _reported(bytes(frame))
    assert (kind, reason) == ("lengths contradict", "TCP data offset 8 is shorter than the 20-byte header")


def test_an_ipv6_frame_with_its_own_version_keeps_the_fragment_reason() -> None:
    frame = raw(ETH / IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(m=1) /
                TCP(sport=1, dport=2) / PAYLOAD)
    assert _reported(frame) == ("IP fragment", "an IPv6 fragment is sent as it is")


# --- the pseudo-header's destination behind a Routing header ---------------------------------------


def _checksums_verify_by_scapy(frame: bytes) -> bool:
    """Scapy's own checksum of the segment (in6_chksum: the final destination a Routing header names, the
    home address a Home Address option names)."""
    packet = Ether(frame)
    stored = packet[TCP].chksum
    del packet[TCP].chksum
    return Ether(raw(packet))[TCP].chksum == stored


def _routed_super_packet(routing) -> bytes:
    # a full checksum, as Scapy (and the sending stack) sums it: over the final destination
    return raw(ETH / IPv6(src="2001:db8::1", dst="2001:db8::a") / routing /
               TCP(sport=40000, dport=5201, flags="PA") / PAYLOAD)


def test_segments_behind_a_segment_routing_header_sum_the_final_destination() -> None:
    # Segment List[0] is the last segment (RFC 8754), the IPv6 destination the active one
    srh = IPv6ExtHdrSegmentRouting(addresses=["2001:db8::f", "2001:db8::b", "2001:db8::a"], segleft=2)
    frame = _routed_super_packet(srh)
    assert _checksums_verify_by_scapy(frame)
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.SEGMENTED and len(result.frames) == 3
    assert all(_checksums_verify_by_scapy(f) for f in result.frames)


def test_segments_behind_a_type_0_routing_header_sum_its_last_address() -> None:
    frame = _routed_super_packet(IPv6ExtHdrRouting(addresses=["2001:db8::b", "2001:db8::f"], segleft=2))
    assert _checksums_verify_by_scapy(frame)
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.SEGMENTED
    assert all(_checksums_verify_by_scapy(f) for f in result.frames)


def _checksum_verifies_from(frame: bytes, source: str) -> bool:
    """Scapy's checksum of the frame's TCP segment in a plain IPv6 packet from ``source`` (Scapy's
    in6_chksum reads a Home Address option it built, not one it parsed behind padding; tshark verifies
    such frames over the home address)."""
    packet = Ether(frame)
    segment = packet[TCP].copy()
    stored = segment.chksum
    del segment.chksum
    return Ether(raw(ETH / IPv6(src=source, dst=packet[IPv6].dst) / segment))[TCP].chksum == stored


def test_segments_of_a_mobile_nodes_packet_sum_its_home_address() -> None:
    # RFC 6275 6.3: the header's source is the care-of address, the checksum's the Home Address option's
    frame = raw(ETH / IPv6(src="2001:db8:c0a::1", dst="2001:db8::a") /
                IPv6ExtHdrDestOpt(options=[HAO(hoa="2001:db8::1")]) /
                TCP(sport=40000, dport=5201, flags="PA") / PAYLOAD)
    assert _checksum_verifies_from(frame, "2001:db8::1")
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.SEGMENTED and len(result.frames) == 3
    assert all(_checksum_verifies_from(f, "2001:db8::1") for f in result.frames)


def test_a_destination_option_other_than_a_home_address_leaves_the_header_source() -> None:
    frame = raw(ETH / IPv6(src="2001:db8:c0a::1", dst="2001:db8::a") / IPv6ExtHdrDestOpt() /
                TCP(sport=40000, dport=5201, flags="PA") / PAYLOAD)
    assert _checksums_verify_by_scapy(frame)
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.SEGMENTED
    assert all(_checksums_verify_by_scapy(f) for f in result.frames)


def test_a_routing_header_with_no_segments_left_leaves_the_header_destination() -> None:
    frame = _routed_super_packet(IPv6ExtHdrRouting(addresses=["2001:db8::f"], segleft=0))
    assert _checksums_verify_by_scapy(frame)
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.SEGMENTED
    assert all(_checksums_verify_by_scapy(f) for f in result.frames)


def test_segments_of_a_loose_source_routed_packet_sum_the_routes_last_address() -> None:
    # the header holds the next hop (10.0.0.5); Scapy, tshark and the sender sum the final one (10.0.0.9)
    route = IPOption_LSRR(routers=["10.0.0.6", "10.0.0.9"], pointer=4)
    frame = raw(ETH / IP(src="10.0.0.1", dst="10.0.0.5", options=[route]) /
                TCP(sport=40000, dport=5201, flags="PA") / PAYLOAD)
    assert _checksums_verify_by_scapy(frame)
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.SEGMENTED and len(result.frames) == 3
    assert all(_checksums_verify_by_scapy(f) for f in result.frames)


def test_a_source_route_with_no_hops_left_leaves_the_header_destination() -> None:
    route = IPOption_LSRR(routers=["10.0.0.6", "10.0.0.9"], pointer=12)  # past the route: arrived
    frame = raw(ETH / IP(src="10.0.0.1", dst="10.0.0.9", options=[route]) /
                TCP(sport=40000, dport=5201, flags="PA") / PAYLOAD)
    assert _checksums_verify_by_scapy(frame)
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.SEGMENTED
    assert all(_checksums_verify_by_scapy(f) for f in result.frames)
