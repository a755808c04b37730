"""The spec's invariants, checked on random valid super-packets (hypothesis).

Expected values come from the spec's rules (RFC header layouts, ones'-complement sums over the
bytes as sent), never from softgso's own earlier output.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings

from softgso.actions import pop_mpls, push_mpls, push_vlan
from softgso.checksum import ones_sum, pseudo_header_sum
from softgso.constants import ETH_P_IP, ETH_P_IPV6, ETH_P_MPLS_MC, ETH_P_MPLS_UC
from softgso.features import PROFILES, GsoType, IpSummed
from softgso.packet import Packet
from softgso.prepare import parse_layout
from softgso.synth import build_frame
from softgso.xmit import transmit
from strategies import GsoCase, gso_cases

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.data_too_large])


def _packet(case: GsoCase) -> tuple[Packet, bytes]:
    frame = build_frame(case.spec)
    layout = parse_layout(frame)
    assert layout is not None
    skb = Packet.from_ethernet(frame)
    skb.ip_summed = IpSummed.PARTIAL
    skb.csum_start = layout.transport
    skb.csum_offset = 6 if case.spec.udp else 16
    skb.transport_header = layout.transport
    skb.gso_size = case.gso_size
    if case.spec.udp:
        skb.gso_type = GsoType.UDP_L4
    else:
        skb.gso_type = GsoType.TCPV6 if case.spec.ipv6 else GsoType.TCPV4
        if case.ecn:
            skb.gso_type |= GsoType.TCP_ECN
        if case.fixed_id:
            skb.gso_type |= GsoType.TCP_FIXEDID
    for label, tc, ttl in case.labels:
        push_mpls(skb, label, tc, ttl, ETH_P_MPLS_MC if case.multicast else ETH_P_MPLS_UC)
    if case.vlan:
        push_vlan(skb, *case.vlan)
    return skb, frame


def _segments(case: GsoCase) -> tuple[list[bytes], bytes]:
    skb, frame = _packet(case)
    return [bytes(p.data) for p in transmit(skb, PROFILES["no-offload"])], frame


def _layouts(frames: list[bytes]) -> list:
    layouts = [parse_layout(f) for f in frames]
    assert all(layout is not None for layout in layouts)
    return layouts


@SETTINGS
@given(gso_cases())
def test_payload_reassembles_byte_exactly(case: GsoCase) -> None:
    segments, _ = _segments(case)
    layouts = _layouts(segments)
    payload = b"".join(seg[lay.payload:] for seg, lay in zip(segments, layouts, strict=True))
    assert payload == case.spec.payload


@SETTINGS
@given(gso_cases())
def test_segment_count_and_sizes_follow_gso_size(case: GsoCase) -> None:
    segments, _ = _segments(case)
    layouts = _layouts(segments)
    sizes = [lay.payload_len for lay in layouts]
    assert len(sizes) == -(-len(case.spec.payload) // case.gso_size)
    assert all(size == case.gso_size for size in sizes[:-1])
    assert 1 <= sizes[-1] <= case.gso_size


@SETTINGS
@given(gso_cases(udp=False))
def test_tcp_sequence_numbers_are_contiguous(case: GsoCase) -> None:
    segments, _ = _segments(case)
    layouts = _layouts(segments)
    expected = case.spec.seq
    for seg, lay in zip(segments, layouts, strict=True):
        assert struct.unpack_from("!I", seg, lay.transport + 4)[0] == expected & 0xFFFFFFFF
        expected += lay.payload_len


@SETTINGS
@given(gso_cases(udp=False))
def test_cwr_only_on_first_fin_psh_only_on_last(case: GsoCase) -> None:
    segments, _ = _segments(case)
    layouts = _layouts(segments)
    flags = [seg[lay.transport + 13] for seg, lay in zip(segments, layouts, strict=True)]
    original = case.spec.tcp_flags
    for index, value in enumerate(flags):
        first, last = index == 0, index == len(flags) - 1
        assert bool(value & 0x80) == (first and bool(original & 0x80)), "CWR"
        assert bool(value & 0x01) == (last and bool(original & 0x01)), "FIN"
        assert bool(value & 0x08) == (last and bool(original & 0x08)), "PSH"
        assert value & 0x76 == original & 0x76, "ACK, URG, ECE, RST, SYN copied"


@SETTINGS
@given(gso_cases())
def test_checksums_verify(case: GsoCase) -> None:
    segments, _ = _segments(case)
    for seg, lay in zip(segments, _layouts(segments), strict=True):
        if lay.ip_version == 4:
            assert ones_sum(seg[lay.network : lay.network + lay.l3_len]) == 0xFFFF, "IPv4 header checksum"
            src, dst = seg[lay.network + 12 : lay.network + 16], seg[lay.network + 16 : lay.network + 20]
        else:
            src, dst = seg[lay.network + 8 : lay.network + 24], seg[lay.network + 24 : lay.network + 40]
        l4 = seg[lay.transport :]
        assert ones_sum(l4, pseudo_header_sum(src, dst, lay.l4_proto, len(l4))) == 0xFFFF, "L4 checksum"


@SETTINGS
@given(gso_cases())
def test_ip_lengths_match_each_segment(case: GsoCase) -> None:
    segments, _ = _segments(case)
    for seg, lay in zip(segments, _layouts(segments), strict=True):
        if lay.ip_version == 4:
            assert struct.unpack_from("!H", seg, lay.network + 2)[0] == len(seg) - lay.network
        else:
            assert struct.unpack_from("!H", seg, lay.network + 4)[0] == len(seg) - lay.network - 40
        if lay.l4_proto == 17:
            assert struct.unpack_from("!H", seg, lay.transport + 4)[0] == len(seg) - lay.transport


@SETTINGS
@given(gso_cases())
def test_ip_ids_follow_the_chosen_mode(case: GsoCase) -> None:
    segments, _ = _segments(case)
    layouts = _layouts(segments)
    if case.spec.ipv6:
        return
    ids = [struct.unpack_from("!H", seg, lay.network + 4)[0] for seg, lay in zip(segments, layouts, strict=True)]
    if case.fixed_id:
        assert set(ids) == {case.spec.ip_id}
    else:
        assert ids == [(case.spec.ip_id + i) & 0xFFFF for i in range(len(ids))]


@SETTINGS
@given(gso_cases())
def test_label_stack_and_link_header_identical_on_every_segment(case: GsoCase) -> None:
    segments, _ = _segments(case)
    layouts = _layouts(segments)
    prefixes = {seg[: lay.network] for seg, lay in zip(segments, layouts, strict=True)}
    assert len(prefixes) == 1
    (prefix,) = prefixes
    assert layouts[0].labels == len(case.labels)
    if case.labels:
        stack = prefix[-4 * len(case.labels) :]
        entries = [struct.unpack_from("!I", stack, 4 * i)[0] for i in range(len(case.labels))]
        pushed = list(reversed(case.labels))  # the last push is the top of the stack
        for i, (word, (label, tc, ttl)) in enumerate(zip(entries, pushed, strict=True)):
            assert (word >> 12, (word >> 9) & 7, word & 0xFF) == (label, tc, ttl)
            assert bool(word & 0x100) == (i == len(entries) - 1), "S bit on the bottom label only"


@SETTINGS
@given(gso_cases(udp=False, max_payload=20000))
def test_every_segment_fits_the_mtu_when_gso_size_is_derived_from_it(case: GsoCase) -> None:
    from softgso.job import SegmentOptions, process_frame

    frame = build_frame(case.spec)
    result = process_frame(frame, SegmentOptions(device=PROFILES["no-offload"].with_overrides(mtu=1500)))
    for seg in result.frames:
        assert len(seg) - 14 <= 1500


@SETTINGS
@given(gso_cases(max_payload=3000))
def test_push_then_pop_gives_the_original_bytes(case: GsoCase) -> None:
    frame = build_frame(case.spec)
    skb = Packet.from_ethernet(frame)
    for label, tc, ttl in case.labels:
        push_mpls(skb, label, tc, ttl)
    for depth in range(len(case.labels), 0, -1):
        pop_mpls(skb, (ETH_P_IPV6 if case.spec.ipv6 else ETH_P_IP) if depth == 1 else ETH_P_MPLS_UC)
    assert bytes(skb.data) == frame
