"""GRO's rules, one test per rule (spec/gro.md's numbering where it has one; the kernel decides).

Streams come from softgso's GSO (proven byte for byte against kernel vectors) or are built here field
by field; expected values are the kernel's rules, computed here independently of softgso.gro.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.checksum import ones_sum
from softgso.cli.runner import _device
from softgso.gro import GroDevice, GroNode, GroPacket, coalesce_frames, gso_comment, parse_gso_comment
from softgso.job import SegmentOptions, process_frame

MSS = 1000


def segments(count: int = 4, mss: int = MSS, last: int | None = None, **spec: object) -> list[bytes]:
    """``count`` TCP segments of one flow as Linux GSO cuts a super-packet (all ``mss`` but the last)."""
    size = mss * (count - 1) + (mss if last is None else last)
    spec.setdefault("tcp_flags", 0x10)
    frame = build_frame(SuperPacketSpec(payload=bytes(i & 0xFF for i in range(size)), **spec))  # type: ignore[arg-type]
    result = process_frame(frame, SegmentOptions(device=_device("no-offload", 9000, None), gso_size=mss))
    assert len(result.frames) == count
    return result.frames


def long_stream(count: int, mss: int = MSS, **spec: object) -> list[bytes]:
    """``count`` MSS-sized segments of one flow past 64 KiB: several super-packets back to back, the
    sequence numbers and IP IDs running on."""
    frames: list[bytes] = []
    while len(frames) < count:
        chunk = min(50, count - len(frames))
        frames += segments(chunk, mss, seq=1_000_000 + len(frames) * mss, ip_id=(0x1234 + len(frames)) & 0xFFFF,
                           **spec)
    return frames


def run(frames: list[bytes], batch: int = 64, **device: object) -> list[GroPacket]:
    return list(coalesce_frames(((f, i) for i, f in enumerate(frames)), GroDevice(**device), batch))  # type: ignore[arg-type]


def payload_lengths(packets: list[GroPacket]) -> list[int]:
    out = []
    for packet in packets:
        data = packet.data
        offset = 14
        while int.from_bytes(data[offset - 2 : offset], "big") in (0x8100, 0x88A8):
            offset += 4
        if data[offset] >> 4 == 4:
            tcp = offset + (data[offset] & 0x0F) * 4
        else:
            tcp = offset + 40
        out.append(len(data) - tcp - (data[tcp + 12] >> 4) * 4)
    return out


def fix_ipv4(frame: bytearray, ip: int = 14) -> None:
    """Recompute the IPv4 header checksum after a test changed a field (RFC 791)."""
    frame[ip + 10 : ip + 12] = b"\0\0"
    total = sum(struct.unpack(f"!{(frame[ip] & 15) * 2}H", bytes(frame[ip : ip + (frame[ip] & 15) * 4])))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    frame[ip + 10 : ip + 12] = struct.pack("!H", ~total & 0xFFFF)


def fix_tcp(frame: bytearray, ip: int = 14) -> None:
    """Recompute a TCP checksum in full (RFC 793 pseudo-header) after a test changed the segment."""
    v6 = frame[ip] >> 4 == 6
    tcp = ip + (40 if v6 else (frame[ip] & 15) * 4)
    frame[tcp + 16 : tcp + 18] = b"\0\0"
    seg = bytes(frame[tcp:])
    if v6:
        pseudo = bytes(frame[ip + 8 : ip + 40]) + struct.pack("!IxxxB", len(seg), 6)
    else:
        pseudo = bytes(frame[ip + 12 : ip + 20]) + struct.pack("!xBH", 6, len(seg))
    data = pseudo + seg + (b"\0" if len(seg) & 1 else b"")
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    frame[tcp + 16 : tcp + 18] = struct.pack("!H", ~total & 0xFFFF)


# --- what completion leaves (§7) ---------------------------------------------------------------------


def test_complete_ipv4_lengths_checksum_seed_and_metadata() -> None:
    x = segments(4)
    (packet,) = run(x)
    data = packet.data
    assert packet.segs == 4 and packet.gso_size == MSS and packet.family == "tcpv4"
    assert data[:54] != x[0][:54] and data[54:] == b"".join(f[54:] for f in x)
    assert int.from_bytes(data[16:18], "big") == len(data) - 14  # tot_len
    assert ones_sum(data[14:34]) == 0xFFFF  # the header checksum verifies
    # TCP checksum: the pseudo-header seed (addresses, 6, TCP length), folded, not complemented
    seed = ones_sum(data[26:34], 6 + len(data) - 34)
    assert int.from_bytes(data[50:52], "big") == seed
    # IP ID, TTL, seq, flags: the first segment's
    assert data[18:20] == x[0][18:20] and data[38:42] == x[0][38:42]


def test_complete_ipv4_checksum_is_patched_incrementally() -> None:
    """csum_replace2 on tot_len, not a recomputation: a header checksum stored as 0xFFFF-style (a valid
    non-canonical form) stays non-canonical after the patch, exactly as the kernel leaves it."""
    x = [bytearray(f) for f in segments(2)]
    for frame in x:
        frame[22] = 0xFF  # TTL 255: make the header sum such that its checksum is 0x0000 or close
        fix_ipv4(frame)
    (packet,) = run([bytes(f) for f in x])
    old_check, old_len = int.from_bytes(x[0][24:26], "big"), int.from_bytes(x[0][16:18], "big")
    new_len = len(packet.data) - 14

    def add(a: int, b: int) -> int:
        s = a + b
        return (s & 0xFFFF) + (s >> 16)

    expected = ~add(add(~old_check & 0xFFFF, ~old_len & 0xFFFF), new_len) & 0xFFFF
    assert int.from_bytes(packet.data[24:26], "big") == expected


def test_complete_ipv6_payload_length_and_seed() -> None:
    x = segments(3, ipv6=True)
    (packet,) = run(x)
    data = packet.data
    assert packet.family == "tcpv6" and packet.segs == 3
    assert int.from_bytes(data[18:20], "big") == len(data) - 54
    seed = ones_sum(data[22:54], 6 + len(data) - 54)
    assert int.from_bytes(data[70:72], "big") == seed


def test_single_held_frame_leaves_untouched() -> None:
    """T7: a held packet that merged nothing is emitted byte for byte, gso_size 0."""
    x = segments(1, last=500)
    (packet,) = run(x)
    assert packet.data == x[0] and packet.segs == 1 and packet.gso_size == 0 and gso_comment(packet) is None


# --- flush rules (§5.5) ------------------------------------------------------------------------------


def test_short_last_segment_completes_at_once() -> None:
    x = segments(3, last=10)
    packets = run(x + segments(2, seq=5_000_000))
    assert packets[0].segs == 3 and packets[0].reason == "last segment (short)"


def test_larger_segment_never_joins() -> None:
    """G6: a segment larger than the first starts a new packet."""
    small = segments(1, last=500)
    big = segments(1, mss=MSS, seq=1_000_000 + 500)
    packets = run(small + big)
    assert [p.segs for p in packets] == [1, 1] and payload_lengths(packets) == [500, MSS]


def test_sequence_gap_flushes_the_held_packet() -> None:
    x = segments(2) + segments(2, seq=1_000_000 + 2 * MSS + 1, ip_id=0x1234 + 2)
    packets = run(x)
    assert [p.segs for p in packets] == [2, 2] and packets[0].reason == "TCP sequence gap"


def test_window_change_splits() -> None:
    x = segments(2) + segments(2, seq=1_000_000 + 2 * MSS, window=1000)
    assert [p.reason for p in run(x)][0] == "TCP window differs"


def test_ack_change_splits() -> None:
    x = segments(2) + segments(2, seq=1_000_000 + 2 * MSS, ack=2)
    assert [p.reason for p in run(x)][0] == "TCP ACK number differs"


def test_options_must_be_identical() -> None:
    a = segments(2, tcp_options=bytes.fromhex("0101080a0000000100000002"))
    b = segments(2, seq=1_000_000 + 2 * MSS, tcp_options=bytes.fromhex("0101080a0000000200000002"))
    assert [p.reason for p in run(a + b)][0] == "TCP options differ"


@pytest.mark.parametrize("flag", [0x08, 0x01])  # PSH, FIN
def test_psh_and_fin_merge_then_complete(flag: int) -> None:
    x = [bytearray(f) for f in segments(3)]
    x[1][47] |= flag
    fix_tcp(x[1])
    packets = run([bytes(f) for f in x])
    assert [p.segs for p in packets] == [2, 1]
    assert packets[0].data[47] & flag  # OR-ed into the held header


@pytest.mark.parametrize("flag", [0x02, 0x04, 0x20])  # SYN, RST, URG
def test_syn_rst_urg_frames_are_never_held(flag: int) -> None:
    x = [bytearray(f) for f in segments(3)]
    x[1][47] |= flag
    fix_tcp(x[1])
    packets = run([bytes(f) for f in x])
    assert [p.segs for p in packets] == [1, 1, 1]
    assert not packets[1].held  # passed up at once


def test_pure_ack_is_never_held() -> None:
    ack = build_frame(SuperPacketSpec(tcp_flags=0x10, partial_checksum=False))
    (packet,) = run([ack])
    assert not packet.held and packet.reason == "no payload"


def test_cwr_on_the_first_segment_6_1() -> None:
    """6.1: CWR is left out of the flag comparison and only a new frame with CWR is refused, so a
    CWR-led stream (GSO with TCP_ECN) merges whole and completion sets SKB_GSO_TCP_ECN."""
    x = [bytearray(f) for f in segments(4)]
    x[0][47] |= 0x80
    fix_tcp(x[0])
    packets = run([bytes(f) for f in x], kernel="6.1")
    assert [p.segs for p in packets] == [4] and packets[0].gso_flags == ("ecn",)


def test_cwr_on_the_first_segment_mainline() -> None:
    """mainline (AccECN GRO): CWR must equal the held header's, so the CWR frame stays alone."""
    x = [bytearray(f) for f in segments(4)]
    x[0][47] |= 0x80
    fix_tcp(x[0])
    packets = run([bytes(f) for f in x], kernel="mainline")
    assert [p.segs for p in packets] == [1, 3] and packets[0].reason == "TCP flags differ"


def test_cwr_on_every_segment_mainline_is_accecn() -> None:
    """mainline: CWR on all segments (GSO with ACCECN keeps it) merges; completion sets TCP_ACCECN."""
    x = [bytearray(f) for f in segments(3)]
    for frame in x:
        frame[47] |= 0x80
        fix_tcp(frame)
    (packet,) = run([bytes(f) for f in x], kernel="mainline")
    assert packet.segs == 3 and packet.gso_flags == ("accecn",)
    assert [p.segs for p in run([bytes(f) for f in x], kernel="6.1")] == [1, 1, 1]


def test_bad_tcp_checksum_bails_and_overtakes() -> None:
    """C2: the frame is passed up at once, before the held packet of its own flow."""
    x = [bytearray(f) for f in segments(3)]
    x[1][60] ^= 0xFF
    packets = run([bytes(f) for f in x])
    assert packets[0].data == bytes(x[1]) and packets[0].reason == "bad TCP checksum"


def test_bad_ipv4_header_checksum_bails() -> None:
    x = [bytearray(f) for f in segments(2)]
    x[1][24] ^= 1
    assert run([bytes(f) for f in x])[0].reason == "bad IPv4 header checksum"


def test_ethernet_padding_flushes_both() -> None:
    """I6: bytes after the IP packet (tot_len < frame): the held packet completes, the frame passes."""
    x = segments(2, last=1)
    padded = x[1] + bytes(60 - len(x[1])) if len(x[1]) < 60 else x[1] + b"\0"
    packets = run([x[0], padded])
    assert [p.data for p in packets] == [x[0], padded]
    assert packets[1].reason == "IPv4 total length is not the frame's"


@pytest.mark.parametrize("field,value,reason", [(22, 7, "IPv4 TTL differs"), (15, 4, "IPv4 TOS/ECN differs")])
def test_ipv4_ttl_tos_flush_the_held_packet(field: int, value: int, reason: str) -> None:
    x = [bytearray(f) for f in segments(3)]
    x[2][field] = value
    fix_ipv4(x[2])
    packets = run([bytes(f) for f in x])
    assert [p.segs for p in packets] == [2, 1] and packets[0].reason == reason


def test_ipv6_hop_limit_and_traffic_class_flush() -> None:
    x = [bytearray(f) for f in segments(3, ipv6=True)]
    x[2][21] = 1  # hop limit
    assert run([bytes(f) for f in x])[0].reason == "IPv6 hop limit differs"
    y = [bytearray(f) for f in segments(3, ipv6=True)]
    y[2][15] |= 0x10  # traffic class low nibble
    assert run([bytes(f) for f in y])[0].reason == "IPv6 traffic class differs"


def test_ipv6_flow_label_is_another_flow() -> None:
    """V4: a different flow label is a different flow: a second held packet, both flushed at poll end."""
    x = [bytearray(f) for f in segments(3, ipv6=True)]
    x[2][17] ^= 1
    packets = run([bytes(f) for f in x])
    assert [p.segs for p in packets] == [2, 1] and {p.reason for p in packets} == {"poll end"}


def test_incrementing_and_fixed_ids() -> None:
    inc = segments(4, ip_id=0xFFFE)  # wraps through 0
    (packet,) = run(inc)
    assert packet.segs == 4 and packet.gso_flags == ()
    fixed = [bytearray(f) for f in segments(4)]
    for frame in fixed:
        frame[18:20] = fixed[0][18:20]
        fix_ipv4(frame)
    (packet,) = run([bytes(f) for f in fixed])
    assert packet.segs == 4 and packet.gso_flags == ("fixedid",)
    assert parse_gso_comment(gso_comment(packet)) == {"gso_size": MSS, "gso_type": "tcpv4", "flags": ("fixedid",),
                                                      "segs": 4}


# --- size limits (§6) ----------------------------------------------------------------------------------


def test_gro_max_size_is_exclusive() -> None:
    """S1: p.len + len >= 65536 refuses: the largest IPv4 aggregate has tot_len 65535."""
    x = long_stream(66)
    packets = run(x, batch=100)
    assert int.from_bytes(packets[0].data[16:18], "big") <= 65535
    assert packets[0].reason == "size limit (gro_max_size)"
    assert sum(p.segs for p in packets) == 66


def test_big_tcp_ipv6_on_6_1_inserts_a_jumbo_header() -> None:
    x = long_stream(80, ipv6=True)
    (packet,) = run(x, batch=100, kernel="6.1", gro_max_size=185000)
    data = packet.data
    payload = len(data) - 54 - 8
    assert data[18:20] == b"\0\0" and data[20] == 0  # payload_len 0, next header hop-by-hop
    assert data[54:62] == bytes([6, 0, 0xC2, 4]) + (payload + 8).to_bytes(4, "big")
    assert packet.segs == 80


def test_big_tcp_ipv4_from_6_3_only() -> None:
    x = long_stream(80)
    assert max(p.segs for p in run(x, batch=100, kernel="6.1", gro_max_size=185000)) < 80
    (packet,) = run(x, batch=100, kernel="6.12", gro_max_size=185000, gro_ipv4_max_size=185000)
    assert packet.segs == 80 and packet.data[16:18] == b"\0\0"  # iph_set_totlen: 0 above 65535


# --- the flow table and polls (§3, §8) -------------------------------------------------------------------


def test_poll_end_flushes_oldest_first() -> None:
    a = segments(2, sport=1)
    b = segments(2, sport=2)
    packets = run([a[0], b[0], a[1], b[1]], batch=4)
    assert [p.data[34:36] for p in packets] == [b"\0\1", b"\0\2"] and all(p.segs == 2 for p in packets)


def test_batch_splits_aggregates() -> None:
    assert [p.segs for p in run(segments(6), batch=4)] == [4, 2]


def test_nine_flows_evict_the_least_recently_held() -> None:
    flows = [segments(2, sport=port) for port in range(1, 10)]
    x = [flow[0] for flow in flows] + [flow[1] for flow in flows]
    packets = run(x)
    assert packets[0].data == flows[0][0] and packets[0].reason == "flow table full (8 held in the bucket)"


def test_flow_hash_buckets() -> None:
    """With a hash, flows spread over 8 buckets: nine flows then fit (one per bucket, the 9th shares)."""
    flows = [segments(2, sport=port) for port in range(1, 10)]
    x = [flow[0] for flow in flows] + [flow[1] for flow in flows]
    packets = run(x, flow_hash=lambda frame: frame[35])
    assert all(p.segs == 2 for p in packets)


# --- layers ------------------------------------------------------------------------------------------------


def test_vlan_and_qinq_coalesce_under_the_same_tags() -> None:
    x = segments(3, vlan_tags=((0x88A8, 10), (0x8100, 20)))
    (packet,) = run(x)
    assert packet.segs == 3 and packet.data[12:22] == x[0][12:22]
    other = segments(1, vlan_tags=((0x88A8, 10), (0x8100, 21)), seq=1_000_000 + 3 * MSS)
    packets = run(x[:2] + other)
    assert [p.segs for p in packets] == [2, 1]  # a different TCI is another flow


def test_mpls_passes_by_default_and_coalesces_with_the_option() -> None:
    x = [f[:12] + bytes.fromhex("8847000641ff") + f[14:] for f in segments(3)]
    assert [p.segs for p in run(x)] == [1, 1, 1]
    (packet,) = run(x, mpls=True)
    assert packet.segs == 3 and packet.data[14:18] == bytes.fromhex("000641ff")
    different = x[:2] + [x[2][:14] + bytes.fromhex("000651ff") + x[2][18:]]
    assert [p.segs for p in run(different, mpls=True)] == [2, 1]


def test_udp_passes_unless_forwarding_is_on() -> None:
    frame = build_frame(SuperPacketSpec(udp=True, payload=bytes(3000)))
    result = process_frame(frame, SegmentOptions(device=_device("no-offload", 1500, None), gso_size=1000,
                                                 gso_type="udp_l4"))
    x = result.frames
    assert [p.segs for p in run(x)] == [1, 1, 1]
    (packet,) = run(x, udp_gro_forwarding=True)
    assert packet.segs == 3 and packet.family == "udp_l4" and packet.gso_size == 1000


def test_node_is_sans_io() -> None:
    node = GroNode()
    x = segments(2)
    assert node.receive(x[0]) == [] and node.receive(x[1]) == [] and node.held == 1
    (packet,) = node.flush()
    assert packet.segs == 2


# --- tunnels: IP-in-IP and GRE (net/ipv4/gre_offload.c) --------------------------------------------------

TUNNELS = Path(__file__).resolve().parents[1] / "vectors" / "kernel" / "tunnels" / "6.1"


def tunnel_frames(name: str) -> list[bytearray]:
    from softgso.io import open_capture

    with open_capture(TUNNELS / name / "kernel_out.pcap") as reader:
        return [bytearray(record.data) for record in reader]


def test_gre_key_is_part_of_the_flow() -> None:
    x = tunnel_frames("gre4_key_in4_fin__tx_off")  # Ethernet, IPv4, GRE with K (8 bytes), IPv4, TCP
    assert x[0][34:36] == b"\x20\x00"
    assert [p.segs for p in run([bytes(f) for f in x])] == [len(x)]
    x[2][38] ^= 1  # another key: another tunnel, another flow
    packets = run([bytes(f) for f in x])
    assert sorted(p.segs for p in packets) != [len(x)] and sum(p.segs for p in packets) == len(x)


def test_gre_with_a_sequence_number_is_passed_up() -> None:
    x = tunnel_frames("gre4_in4__tx_off")
    for frame in x:
        frame[34] |= 0x10  # S: GRE's GRO takes only K and C
    packets = run([bytes(f) for f in x])
    assert {p.reason for p in packets} == {"GRE with sequence numbers, routing or a version other than 0"}


def test_bad_gre_checksum_is_passed_up() -> None:
    x = tunnel_frames("gretap4_csum_in4_idwrap__tx_off")
    assert x[0][34] & 0x80  # C
    x[1][38] ^= 1  # the GRE checksum (flags, protocol, checksum, reserved)
    packets = run([bytes(f) for f in x])
    assert packets[0].reason == "bad GRE checksum" and packets[0].data == bytes(x[1])


def test_ipip_marks_the_aggregate() -> None:
    (packet,) = run([bytes(f) for f in tunnel_frames("ipip_in4_dfclear_idwrap__tx_off")])
    assert packet.gso_flags[0] == "ipxip4" and gso_comment(packet).startswith("gso_size=")  # type: ignore[union-attr]


def test_mpls_behind_a_tunnels_ethernet_header_passes_even_with_the_option() -> None:
    """Labels inside gretap (kernel 6.1's segments of an MPLS route out of a gretap device) pass frame by
    frame with ``--mpls``: no GSO route cuts such an aggregate back, so GRO does not build it."""
    x = [bytes(frame) for frame in tunnel_frames("mplsroute_gretap4_2labels_control__tx_off")]
    assert len(x) >= 2 and all(frame[36:38] == b"\x65\x58" for frame in x)  # GRE carrying Ethernet (TEB)
    for frame in x:  # ... carrying labels: the inner ethertype after the GRE header and its options
        flags = frame[34]
        inner = 34 + 4 + 4 * (bool(flags & 0x80) + bool(flags & 0x20) + bool(flags & 0x10))
        assert frame[inner + 12 : inner + 14] == b"\x88\x47"
    packets = run(x, mpls=True)
    assert [p.segs for p in packets] == [1] * len(x)
    assert {p.reason for p in packets} == {"MPLS inside a tunnel's Ethernet frame"}
