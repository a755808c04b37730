"""The compiled GRO (softgso/gro/_coalesce.c) against the scalar engine, which the kernel vectors prove
(test_gro_vectors.py also runs the compiled GRO on them): on every poll it takes, the same packets in the
same order, the same bytes, gso_size, gso_type, segment count, reason, held or passed, checksum state.
Streams are TCP segments of a few interleaved flows with the changes every flush rule looks at (TTL,
TOS, DF, IDs, window, ACK, options, PSH, sequence gaps, short and empty segments, bad checksums)."""

from __future__ import annotations

import struct
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softgso.checksum import csum_fold, ipv4_header_checksum, ones_sum, pseudo_header_sum
from softgso.gro import CoalescePreview, CoalesceSummary, GroDevice, GroPacket, coalesce_poll
from softgso.gro.coalesce import add_counted, coalesce_poll_at, compiled_params, new_counters
from strategies import MACS, tcp_frame

pytestmark = pytest.mark.skipif(compiled_params(GroDevice(), 64) is None,
                                reason="the compiled GRO (softgso.gro._coalesce) is not built: no C compiler")

def udp_frame(v6: bool, payload: bytes, checksum: str = "valid", trailer: bytes = b"") -> bytes:
    """An Ethernet/IP/UDP frame: its checksum valid, bad or 0; bytes behind the IP packet if given."""
    udp_len = 8 + len(payload)
    udp = bytearray(struct.pack("!HHHH", 5353, 53, udp_len, 0) + payload)
    if v6:
        src, dst = bytes(15) + b"\x01", bytes(15) + b"\x09"
        header = struct.pack("!IHBB", 6 << 28, udp_len, 17, 64) + src + dst
        ethertype = b"\x86\xdd"
    else:
        src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 9])
        head = bytearray(struct.pack("!BBHHHBBH", 0x45, 0, 20 + udp_len, 1, 0x4000, 64, 17, 0) + src + dst)
        head[10:12] = ipv4_header_checksum(head).to_bytes(2, "big")
        header, ethertype = bytes(head), b"\x08\x00"
    if checksum != "zero":
        check = csum_fold(ones_sum(udp, pseudo_header_sum(src, dst, 17, udp_len))) or 0xFFFF
        udp[6:8] = ((check + (1 if checksum == "bad" else 0)) & 0xFFFF or 1).to_bytes(2, "big")
    return MACS[0] + ethertype + header + bytes(udp) + trailer


@st.composite
def passed_frames(draw: st.DrawFn) -> bytes:
    """A frame GRO passes up at once without touching its flow table, or one the compiled GRO hands back."""
    kind = draw(st.sampled_from(("arp", "mpls", "icmp", "udp", "udp6", "udp_bad", "udp_zero", "udp_trailer",
                                 "ipv4_options", "fragment", "bad_ip_checksum", "short", "truncated_ipv4",
                                 "truncated_ipv6", "ipv6_fragment", "ipv6_other", "vlan", "ipv6_hop_by_hop",
                                 "vlan_arp", "qinq", "vlan_cut")))
    good = tcp_frame(False, 0, 1, 1, b"z" * 10)
    good6 = tcp_frame(True, 0, 1, 1, b"z" * 10)
    payload = draw(st.binary(min_size=0, max_size=40))
    if kind == "arp":
        return MACS[0] + b"\x08\x06" + bytes(28)
    if kind == "mpls":
        return MACS[0] + b"\x88\x47\x00\x01\x01\x40" + good[14:]
    if kind == "icmp":
        frame = bytearray(good)
        frame[23] = 1
        frame[24:26] = b"\0\0"
        frame[24:26] = ipv4_header_checksum(frame[14:34]).to_bytes(2, "big")
        return bytes(frame)
    if kind.startswith("udp"):
        checksum = {"udp_bad": "bad", "udp_zero": "zero"}.get(kind, "valid")
        return udp_frame(kind == "udp6", payload, checksum, b"\0" * 6 if kind == "udp_trailer" else b"")
    if kind == "ipv4_options":
        return good[:14] + b"\x46" + good[15:]
    if kind == "fragment":
        frame = bytearray(good)
        frame[20] |= 0x20  # MF
        return bytes(frame)
    if kind == "bad_ip_checksum":
        frame = bytearray(good)
        frame[24] ^= 0x5A
        return bytes(frame)
    if kind == "short":
        return good[: draw(st.integers(0, 13))]
    if kind == "truncated_ipv4":
        return good[: draw(st.integers(14, 33))]
    if kind == "truncated_ipv6":
        return good6[: draw(st.integers(14, 53))]
    if kind in ("ipv6_fragment", "ipv6_other", "ipv6_hop_by_hop"):
        frame = bytearray(good6)
        frame[20] = {"ipv6_fragment": 44, "ipv6_other": 58, "ipv6_hop_by_hop": 0}[kind]
        return bytes(frame)
    if kind == "vlan_arp":
        return MACS[0] + b"\x81\x00\x00\x07\x08\x06" + bytes(28)
    if kind == "qinq":
        return good[:12] + b"\x88\xa8\x00\x05\x81\x00\x00\x07" + good[12:]
    if kind == "vlan_cut":
        return (MACS[0] + b"\x81\x00\x00\x07")[: draw(st.integers(14, 17))]
    return good[:12] + b"\x81\x00\x00\x07" + good[12:]  # vlan


CHANGES = ("none", "ttl", "tos", "df", "id_jump", "id_fixed", "window", "ack", "options", "psh", "gap", "short",
           "empty", "bad_checksum", "mac", "fin", "syn", "rst", "urg", "ece", "cwr", "fin_psh", "vlan_id",
           "trailer", "padded_ack")
FLAGS = {"psh": 0x18, "fin": 0x11, "syn": 0x12, "rst": 0x14, "urg": 0x30, "ece": 0x50, "cwr": 0x90, "fin_psh": 0x19}


def other_tag(tag: bytes) -> bytes:
    """The same TPID with another VLAN ID (a tag where there was none)."""
    return tag[:2] + b"\x00\x08" if tag else b"\x81\x00\x00\x08"


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[bytes], GroDevice]:
    """Frames of 1-10 interleaved flows (more than 8 make the table evict), each mostly in order."""
    kernel = draw(st.sampled_from(("6.1", "6.12", "mainline")))
    limit = draw(st.sampled_from((65536, 65536, 9000, 3000)))
    device = GroDevice(kernel=kernel, gro_max_size=limit, gro_ipv4_max_size=limit,
                       udp_gro_forwarding=draw(st.integers(0, 9)) == 0, mpls=draw(st.integers(0, 9)) == 0)
    flows = draw(st.integers(1, 10))
    state = []
    for _ in range(flows):
        v6 = draw(st.booleans())
        mss = draw(st.sampled_from((100, 536, 1448, 1460)))
        timestamps = draw(st.booleans())
        options = b"\x01\x01\x08\x0a" + bytes(8) if timestamps else b""
        state.append({"v6": v6, "mss": mss, "seq": draw(st.integers(0, 2**32 - 1)), "id": draw(st.integers(0, 65535)),
                      "options": options, "fixed": draw(st.booleans()),
                      "vlan": draw(st.sampled_from((b"", b"", b"\x81\x00\x00\x07", b"\x88\xa8\x20\x07")))})
    frames = []
    for _ in range(draw(st.integers(1, 64))):
        if draw(st.integers(0, 15)) == 0:
            frames.append(draw(passed_frames()))
            continue
        flow = draw(st.integers(0, flows - 1))
        s = state[flow]
        change = draw(st.sampled_from(CHANGES)) if draw(st.integers(0, 4)) == 0 else "none"
        size = {"short": s["mss"] // 2, "empty": 0, "padded_ack": 0}.get(change, s["mss"])
        payload = bytes((s["seq"] + i) & 0xFF for i in range(size))
        seq = s["seq"] + (1000 if change == "gap" else 0)
        frames.append(tcp_frame(
            s["v6"], flow, seq, s["id"] + (77 if change == "id_jump" else 0), payload,
            ttl=63 if change == "ttl" else 64, tos=4 if change == "tos" else 0, df=change != "df",
            window=1024 if change == "window" else 512, ack=2 if change == "ack" else 1,
            options=(s["options"][:-1] + b"\x05") if change == "options" and s["options"] else s["options"],
            flags=FLAGS.get(change, 0x10), bad_checksum=change == "bad_checksum",
            mac=1 if change == "mac" else 0, vlan=other_tag(s["vlan"]) if change == "vlan_id" else s["vlan"],
            trailer=bytes(6) if change in ("trailer", "padded_ack") else b""))
        s["seq"] = seq + size
        if not (s["fixed"] or change == "id_fixed"):
            s["id"] += 1
    return frames, device


def fields(packets: list[GroPacket]) -> list[tuple]:
    return [(p.data, p.meta, p.segs, p.gso_size, p.gso_type, p.gso_flags, p.family, p.reason, p.held, p.ip_summed)
            for p in packets]


def test_compiled_gro_equals_the_scalar_engine() -> None:
    took: list[bool] = []

    @settings(max_examples=400, deadline=None)
    @given(streams())
    def check(stream: tuple[list[bytes], GroDevice]) -> None:
        frames, device = stream
        scalar = coalesce_poll_at(frames, device, engine="scalar")
        try:
            compiled = coalesce_poll_at(frames, device, engine="compiled")
        except ValueError:  # a poll the compiled GRO hands back: a bad TCP checksum, a shape it does not take
            took.append(False)
            return
        took.append(True)
        # the same packets, and each sent up on the arrival of the same frame
        assert [(at, *fields([packet])) for at, packet in compiled] == [(at, *fields([packet])) for at, packet in scalar]

    check()
    assert sum(took) >= len(took) // 4, f"the compiled GRO took {sum(took)} of {len(took)} streams"


def test_compiled_gro_takes_a_clean_stream_and_merges() -> None:
    """Not vacuous: two flows of 20 segments each, in order, become one aggregate each in the compiled GRO."""
    frames = []
    for k in range(20):
        for flow in (0, 1):
            frames.append(tcp_frame(flow == 1, flow, 1000 + 1448 * k, 7 + k, bytes([k]) * 1448))
    packets = coalesce_poll(frames, GroDevice(), engine="compiled")
    assert [(p.segs, p.family, p.gso_size, p.reason) for p in packets] == [
        (20, "tcpv4", 1448, "poll end"), (20, "tcpv6", 1448, "poll end")]
    assert fields(packets) == fields(coalesce_poll(frames, GroDevice(), engine="scalar"))


def test_compiled_gro_passes_padded_acks_of_the_other_direction() -> None:
    """ACKs padded to 60 bytes on the wire (bytes behind the IP packet: the network layer flushes them) of a
    flow that holds nothing pass up at once with the network layer's reason; the data segments still merge.
    One that meets its flow's held packet sends the poll to the scalar engine."""
    data = [tcp_frame(False, 0, 1000 + 1000 * k, k, bytes(1000)) for k in range(10)]
    acks = [tcp_frame(False, 5, 77, k, b"", trailer=bytes(6)) for k in range(5)]  # another flow, nothing held
    frames = [frame for pair in zip(data, acks + acks, strict=True) for frame in pair]
    packets = coalesce_poll(frames, GroDevice(), engine="compiled")
    assert fields(packets) == fields(coalesce_poll(frames, GroDevice(), engine="scalar"))
    assert [p.segs for p in packets if p.held] == [10]
    assert [p.reason for p in packets if not p.held] == ["IPv4 total length is not the frame's"] * 10
    padded_data = data[:3] + [tcp_frame(False, 0, 4000, 3, bytes(1000), trailer=bytes(4))]
    with pytest.raises(ValueError):
        coalesce_poll(padded_data, GroDevice(), engine="compiled")


def test_compiled_gro_keeps_vlans_apart() -> None:
    """Two flows alike but for their VLAN ID (or their tag's TPID) are two flows, as vlan_gro_receive has it."""
    for first, second in ((b"\x81\x00\x00\x07", b"\x81\x00\x00\x08"), (b"\x81\x00\x00\x07", b"\x88\xa8\x00\x07")):
        frames = [tcp_frame(False, 0, 1000 + 500 * k, k, bytes(500), vlan=(first, second)[k % 2]) for k in range(12)]
        packets = coalesce_poll(frames, GroDevice(), engine="compiled")
        assert fields(packets) == fields(coalesce_poll(frames, GroDevice(), engine="scalar"))
        assert len(packets) == 12  # no two merge: each flow's sequence jumps over the other's payload


def test_compiled_gro_hands_other_shapes_back() -> None:
    """A bad TCP checksum, two VLAN tags: the poll is the scalar engine's (auto gives its result)."""
    good = tcp_frame(False, 0, 1, 1, b"x" * 100)
    bad = tcp_frame(False, 0, 101, 2, b"y" * 100, bad_checksum=True)
    tagged = good[:12] + b"\x88\xa8\x00\x05\x81\x00\x00\x05" + good[12:]
    for frames in ([good, bad], [good, tagged]):
        with pytest.raises(ValueError):
            coalesce_poll(frames, GroDevice(), engine="compiled")
        assert fields(coalesce_poll(frames, GroDevice())) == fields(coalesce_poll(frames, GroDevice(), engine="scalar"))


def test_compiled_gro_takes_cwr_by_the_kernel_generation() -> None:
    """tcp_gro_receive up to 6.19: a new frame with CWR never merges (it completes its flow's held packet,
    "TCP CWR", and is held itself; segments without CWR merge behind it); from the AccECN GRO change CWR
    has to equal the held header's like the other flags, so two CWR segments merge. tcp_gro_complete
    marks an aggregate whose first header has CWR (ECN up to 6.19, AccECN after)."""
    def stream(cwr_at: tuple[int, ...]) -> list[bytes]:
        return [tcp_frame(v6, 0, 1000 + 400 * k, k, bytes([k]) * 400, flags=0x90 if k in cwr_at else 0x10)
                for k in range(6) for v6 in (False, True)]

    def both(*packets: tuple[int, str, tuple[str, ...]]) -> list[tuple[int, str, tuple[str, ...]]]:
        """The two flows' packets (their frames take turns): IPv4's then IPv6's at each step."""
        return [packet for pair in zip(packets, packets, strict=True) for packet in pair]

    expected = {
        ("6.1", (2,)): both((2, "TCP CWR", ()), (4, "poll end", ("ecn",))),
        ("6.1", (2, 3)): both((2, "TCP CWR", ()), (1, "TCP CWR", ()), (3, "poll end", ("ecn",))),
        ("mainline", (2,)): both((2, "TCP flags differ", ()), (1, "TCP flags differ", ()), (3, "poll end", ())),
        ("mainline", (2, 3)): both((2, "TCP flags differ", ()), (2, "TCP flags differ", ("accecn",)),
                                   (2, "poll end", ())),
    }
    for (kernel, cwr_at), packets in expected.items():
        device = GroDevice(kernel=kernel)
        frames = stream(cwr_at)
        compiled = coalesce_poll(frames, device, engine="compiled")
        assert [(p.segs, p.reason, p.gso_flags) for p in compiled] == packets, (kernel, cwr_at)
        assert fields(compiled) == fields(coalesce_poll(frames, device, engine="scalar"))
        assert counted(frames, device) == built(frames, device, "scalar")


@st.composite
def damaged_streams(draw: st.DrawFn) -> list[bytes]:
    """Segments of two flows with bytes flipped anywhere in their headers, cut anywhere, or replaced by
    random bytes: whatever the compiled GRO takes it must take as the scalar engine does."""
    frames = []
    for k in range(draw(st.integers(1, 24))):
        frame = bytearray(tcp_frame(k % 2 == 1, k % 2, 1000 + 100 * (k // 2), k // 2, bytes(100)))
        action = draw(st.sampled_from(("keep", "keep", "flip", "flip", "cut", "random")))
        if action == "flip":
            for _ in range(draw(st.integers(1, 3))):
                at = draw(st.integers(0, 74))
                frame[at] ^= draw(st.integers(1, 255))
        elif action == "cut":
            frame = frame[: draw(st.integers(0, len(frame)))]
        elif action == "random":
            frame = bytearray(draw(st.binary(max_size=120)))
        frames.append(bytes(frame))
    return frames


@settings(max_examples=300, deadline=None)
@given(damaged_streams(), st.sampled_from(("6.1", "mainline")))
def test_compiled_gro_takes_damaged_frames_as_the_scalar_engine(frames: list[bytes], kernel: str) -> None:
    device = GroDevice(kernel=kernel)
    scalar = coalesce_poll(frames, device, engine="scalar")
    try:
        compiled = coalesce_poll(frames, device, engine="compiled")
    except ValueError:
        return
    assert fields(compiled) == fields(scalar)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.integers(0, 3000), st.integers(0, 3000), st.integers(0, 70000),
       st.booleans(), st.booleans(), st.integers(1, 70))
def test_compiled_pcap_walk_survives_any_bytes(data: bytes, start: int, end: int, max_caplen: int, big_endian: bool,
                                               final: bool, batch: int) -> None:
    """coalesce_pcap on arbitrary bytes: a ValueError for ranges outside the data, else a status and offsets
    inside the range, never a crash or a write past its output."""
    from softgso.gro.coalesce import compiled_gro

    params = compiled_params(GroDevice(), batch)
    assert params is not None
    out = bytearray(len(data) + 16)
    counters = bytearray(8 * compiled_gro.COUNTERS)
    if not 0 <= start <= end <= len(data):
        with pytest.raises(ValueError):
            compiled_gro.coalesce_pcap(data, start, end, big_endian, 10**6, max_caplen, final, params, out, counters, 0)
        return
    status, position, out_len, records = compiled_gro.coalesce_pcap(
        data, start, end, big_endian, 10**6, max_caplen, final, params, out, counters, 0)
    assert status in (compiled_gro.DONE, compiled_gro.MORE, compiled_gro.POLL, compiled_gro.REST)
    assert start <= position <= end and 0 <= out_len <= end - start and records >= 0


# -- count_frames: the compiled GRO counting a poll without building its packets (inspect's preview) --------


def counted(frames: list[bytes], device: GroDevice) -> CoalesceSummary | None:
    """The summary count_frames gives of one poll (None: it hands the poll to the scalar engine)."""
    from softgso.gro.coalesce import compiled_gro

    counters = new_counters()
    before = counters.tobytes()
    if not compiled_gro.count_frames(frames, compiled_params(device, 64), counters, 0):
        assert counters.tobytes() == before  # a poll handed back leaves the counts as they were
        return None
    summary = CoalesceSummary(frames_in=counters[0], polls=counters[4])
    add_counted(summary, counters)
    return summary


def built(frames: list[bytes], device: GroDevice, engine: str) -> CoalesceSummary:
    """The summary of the same poll's packets, built by ``engine`` and counted one by one."""
    summary = CoalesceSummary(frames_in=len(frames), polls=1)
    for packet in coalesce_poll(frames, device, engine=engine):
        summary.count(packet, packet.meta)
    return summary


def assert_counts_are_the_built_packets(frames: list[bytes], device: GroDevice) -> bool:
    """count_frames takes every poll coalesce_frames takes and counts what it builds; it also takes polls
    with bad TCP checksums, which coalesce_frames hands back; whatever it takes, it counts what the
    scalar engine builds. True when it took the poll."""
    summary = counted(frames, device)
    try:
        full = built(frames, device, "compiled")
    except ValueError:
        if summary is None:
            return False
    else:
        assert summary == full
    assert summary == built(frames, device, "scalar")
    return True


def test_counted_polls_are_the_built_ones() -> None:
    took: list[bool] = []

    @settings(max_examples=400, deadline=None)
    @given(streams())
    def check(stream: tuple[list[bytes], GroDevice]) -> None:
        took.append(assert_counts_are_the_built_packets(*stream))

    check()
    assert sum(took) >= len(took) // 4, f"count_frames took {sum(took)} of {len(took)} streams"


@settings(max_examples=300, deadline=None)
@given(damaged_streams(), st.sampled_from(("6.1", "mainline")))
def test_counted_damaged_polls_are_the_built_ones(frames: list[bytes], kernel: str) -> None:
    assert_counts_are_the_built_packets(frames, GroDevice(kernel=kernel))


def test_counting_passes_a_bad_tcp_checksum_up() -> None:
    """tcp4_gro_receive: a frame whose checksum fails skb_gro_checksum_validate is flushed, naming no held
    packet: passed up at once, its flow's held packet left as it was. Ten segments, the sixth's checksum
    off: the first five are one aggregate, which the seventh completes (its IP ID, like its sequence
    number, jumps over the sixth's: inet_gro_flush, the first rule tcp_gro_receive finds broken, names
    it); the last four another, completed at the poll's end."""
    frames = [tcp_frame(False, 0, 1000 + 500 * k, k, bytes([k]) * 500, bad_checksum=k == 5) for k in range(10)]
    summary = counted(frames, GroDevice())
    assert summary is not None
    assert (summary.packets_out, summary.coalesced, summary.frames_merged) == (3, 2, 9)
    assert summary.flushes == {"IPv4 ID neither fixed nor incrementing": 1, "poll end": 1}
    assert summary.passed == {"bad TCP checksum": 1}
    assert summary == built(frames, GroDevice(), "scalar")
    frames[5] = tcp_frame(False, 0, 1000 + 500 * 5, 5, bytes([5]) * 500)
    summary = counted(frames, GroDevice())
    assert summary is not None and (summary.packets_out, summary.coalesced, summary.frames_merged) == (1, 1, 10)


def test_counting_validates_the_checksum_before_the_tcp_header() -> None:
    """tcp4/tcp6_gro_receive validate the checksum before tcp_gro_pull_header and before tcp_gro_receive's
    rules (CWR among them): a bad checksum names the frame whatever its TCP header holds, and such a
    frame leaves the poll to the compiled GRO's counting."""
    good = [tcp_frame(v6, 0, 1000 + 300 * k, k, bytes(300)) for v6 in (False, True) for k in range(3)]
    cwr = tcp_frame(False, 0, 1900, 3, bytes(300), flags=0x90, bad_checksum=True)
    cut = bytearray(tcp_frame(True, 0, 1900, 3, b"", options=bytes(8)))
    cut = cut[:-4]  # 4 of its 8 option bytes gone; the IPv6 payload length says so
    cut[18:20] = (len(cut) - 54).to_bytes(2, "big")
    for device in (GroDevice(), GroDevice(kernel="mainline")):
        for odd in (cwr, bytes(cut)):
            frames = [*good[:3], odd, *good[3:]]
            summary = counted(frames, device)
            assert summary is not None and summary.passed == {"bad TCP checksum": 1}
            assert summary == built(frames, device, "scalar")


def test_counting_leaves_the_checksum_of_a_flushed_frame() -> None:
    """tcp4_gro_receive validates no checksum of a frame the network layer flushed (bytes behind its IP
    packet): its checksum is not what names it."""
    frames = [tcp_frame(False, 5, 77, k, b"", trailer=bytes(6), bad_checksum=k % 2 == 1) for k in range(4)]
    summary = counted(frames, GroDevice())
    assert summary is not None and summary.passed == {"IPv4 total length is not the frame's": 4}
    assert summary == built(frames, GroDevice(), "scalar")


def test_counting_takes_a_senders_seeded_super_packets() -> None:
    """A sender's capture (TSO and checksum offload): super-packets whose checksum is the pseudo-header
    seed, with short seeded ACKs among them. None validates: each is passed up at once, and the compiled
    GRO counts the poll."""
    from softgso.check.synth import SuperPacketSpec, build_frame

    frames = []
    for k in range(20):
        frames.append(build_frame(SuperPacketSpec(payload=bytes([k]) * (1448 * (1 + k % 5)), seq=1000 + 20000 * k,
                                                  ip_id=k, ipv6=k % 3 == 0, vlan_tags=((0x8100, 7),) * (k % 2))))
        frames.append(build_frame(SuperPacketSpec(payload=b"", seq=5000, ip_id=100 + k, sport=5201, dport=40000)))
    summary = counted(frames, GroDevice())
    assert summary is not None and summary.passed == {"bad TCP checksum": 40}
    assert summary == built(frames, GroDevice(), "scalar")


@settings(max_examples=150, deadline=None)
@given(st.lists(streams(), min_size=1, max_size=4), st.integers(1, 64), st.data())
def test_preview_counting_equals_the_preview_building(parts: list[tuple[list[bytes], GroDevice]], batch: int,
                                                      data: st.DataObject) -> None:
    """inspect's preview (CoalescePreview) over several polls, records with no Ethernet form among the frames:
    the same report counting (count_frames, the scalar engine for the polls it hands back) as building."""
    device = parts[0][1]
    records: list[bytes | None] = []
    for frames, _ in parts:
        for frame in frames:
            records.append(frame)
            if data.draw(st.integers(0, 20)) == 0:
                records.append(None)
    counting, building = CoalescePreview(device, batch), CoalescePreview(device, batch, counting=False)
    for index, frame in enumerate(records):
        counting.add(frame, index)
        building.add(frame, index)
    assert counting.as_dict() == building.as_dict()
    assert counting.as_dict()["frames_in"] == len(records)
    # the same records laid in buffers (each frame after a few other bytes), fed a run at a time
    area_fed = CoalescePreview(device, batch)
    at = 0
    while at < len(records):
        if records[at] is None:
            area_fed.add(None, at)
            at += 1
            continue
        stop = at + data.draw(st.integers(1, 200))
        run = [frame for frame in records[at:stop] if frame is not None]
        run = run[: next((k for k, frame in enumerate(records[at:stop]) if frame is None), len(run))]
        area, starts, spans = bytearray(), array("q"), array("q")
        for frame in run:
            area += b"\xa5" * data.draw(st.integers(0, 3))
            starts.append(len(area))
            spans.append(len(frame))
            area += frame
        area_fed.add_area(area, memoryview(starts), memoryview(spans))
        at += len(run)
    assert area_fed.as_dict() == building.as_dict()


@settings(max_examples=300, deadline=None)
@given(streams(), st.integers(0, 7))
def test_count_area_is_count_frames(stream: tuple[list[bytes], GroDevice], gap: int) -> None:
    """count_area (frames lying in one buffer, no object per frame) takes a poll exactly when count_frames
    does, and counts it alike."""
    from softgso.gro.coalesce import compiled_gro

    frames, device = stream
    area, starts, spans = bytearray(), array("q"), array("q")
    for frame in frames:
        area += b"\xa5" * gap
        starts.append(len(area))
        spans.append(len(frame))
        area += frame
    params = compiled_params(device, 64)
    by_list, by_area = new_counters(), new_counters()
    assert compiled_gro.count_frames(frames, params, by_list, 5) == \
        compiled_gro.count_area(area, starts, spans, len(frames), params, by_area, 5)
    assert by_list == by_area


def test_count_area_refuses_frames_outside_its_area() -> None:
    from softgso.gro.coalesce import compiled_gro

    params = compiled_params(GroDevice(), 64)
    for start, span in ((0, 101), (-1, 10), (90, 11), (0, -1)):
        with pytest.raises(ValueError):
            compiled_gro.count_area(bytes(100), array("q", [start]), array("q", [span]), 1, params, new_counters(), 0)
    with pytest.raises(ValueError):  # more frames than the poll holds, or than starts and spans describe
        compiled_gro.count_area(bytes(100), array("q", [0] * 65), array("q", [10] * 65), 65, params, new_counters(), 0)
    with pytest.raises(ValueError):
        compiled_gro.count_area(bytes(100), array("q", [0]), array("q", [10]), 2, params, new_counters(), 0)


def test_compiled_gro_over_one_buffer_equals_the_scalar_engine() -> None:
    """coalesce_poll_area (the datapath's far edge: frames in one buffer, packets into another, no object
    per frame) gives the scalar engine's packets, or hands the poll back exactly where coalesce_poll's
    compiled engine does."""
    from array import array

    from softgso.gro.coalesce import coalesce_poll_area

    took: list[bool] = []

    @settings(max_examples=300, deadline=None)
    @given(streams(), st.integers(min_value=0, max_value=7))
    def check(stream: tuple[list[bytes], GroDevice], gap: int) -> None:
        frames, device = stream
        area, meta = bytearray(), array("q")
        for frame in frames:  # each frame after `gap` bytes of something else
            area += b"\xa5" * gap
            meta.extend((len(area), len(frame), 1, 0, 0, 0))
            area += frame
        out, out_meta = bytearray(len(area)), array("q", bytes(8 * 6 * max(len(frames), 1)))
        params = compiled_params(device, max(len(frames), 1))
        assert params is not None
        count = coalesce_poll_area(bytes(area), meta, len(frames), params, out, out_meta)
        try:
            compiled = coalesce_poll(frames, device, engine="compiled")
        except ValueError:
            assert count is None
            took.append(False)
            return
        took.append(True)
        assert count is not None
        scalar = coalesce_poll(frames, device, engine="scalar")
        assert fields(compiled) == fields(scalar)
        ours = []
        for at in range(0, 6 * count, 6):
            offset, length, segs, gso_size, gso_type, verified = out_meta[at : at + 6]
            ours.append((bytes(out[offset : offset + length]), segs, gso_size, gso_type,
                         "partial" if segs > 1 else "unnecessary" if verified else "none"))
        assert ours == [(p.data, p.segs, p.gso_size, p.gso_type, p.ip_summed) for p in scalar]

    check()
    assert sum(took) >= len(took) // 4, f"the compiled GRO took {sum(took)} of {len(took)} streams"
