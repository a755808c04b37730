"""The bulk pipeline's two primitives (numpy, and C where softgso.bulk._segment is built), held to one
output by the same tests, against the scalar path and the spec's rules.

Expected values come from the scalar engine (prepare.parse_layout, classify_l4_checksum,
process_frame), never from a primitive itself. The byte-for-byte comparisons of whole files are in
tests/cli/test_segment_bulk.py; the compiled module's own refusals of out-of-range arguments close
this file.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import struct
import tempfile
from array import array
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softgso.bulk import compiled_primitive
from softgso.bulk.compiled_primitive import PLAN_FIELDS, CompiledPrimitive, CompiledSegmenter
from softgso.bulk.fastpath import CODE_CANDIDATE, CODE_NO_LAYOUT, CODE_SCALAR, CODE_STATES
from softgso.bulk.numpy_primitive import NumpyPrimitive
from softgso.bulk.pipeline import NO_CODE, Iovecs, code_spans
from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.features import PROFILES
from softgso.job import SegmentOptions, process_frame
from softgso.prepare import L4Checksum, classify_l4_checksum, parse_layout
from strategies import small_frames

TICKS = 1_000_000
NO_OFFLOAD = SegmentOptions(device=PROFILES["no-offload"])
# the primitives that can run here: the compiled one only where softgso.bulk._segment is built


class ContiguousCompiledPrimitive(CompiledPrimitive):
    """The compiled primitive with its output built whole in the arena (payload copied), not as iovecs."""

    SCATTER = False


PRIMITIVES = {"numpy": NumpyPrimitive, **({"compiled": CompiledPrimitive, "compiled-contiguous": ContiguousCompiledPrimitive}
                                          if compiled_primitive.available() else {})}
SEGMENT = compiled_primitive._SEGMENT
compiled_only = pytest.mark.skipif(SEGMENT is None, reason="softgso.bulk._segment not built (or SOFTGSO_NO_C set)")


@pytest.fixture(params=list(PRIMITIVES))
def primitive(request: pytest.FixtureRequest) -> Any:
    """A primitive for the no-offload device."""
    return PRIMITIVES[request.param](NO_OFFLOAD)


def records(frames: list[bytes], orig_lens: list[int] | None = None, big_endian: bool = False) -> bytes:
    """Little- or big-endian pcap records (no file header) holding ``frames``."""
    order = ">" if big_endian else "<"
    out = bytearray()
    for number, frame in enumerate(frames):
        orig = orig_lens[number] if orig_lens else len(frame)
        out += struct.pack(order + "IIII", 1000 + number, number, len(frame), orig) + frame
    return bytes(out)


def scan(primitive: Any, data: bytes, *, small_limit: int = 1514, bulk_small: bool = True, big_endian: bool = False,
         snap_limit: int = 262144, chunk_end: int | None = None) -> tuple[list[int], list[int], int, bool, bytearray]:
    """(offsets, codes, bytes walked, stop, the offsets buffer) of primitive.scan over ``data``."""
    capacity = len(data) // 16 + 1
    offsets, codes = bytearray(8 * capacity), bytearray(capacity)
    count, after, stop = primitive.scan(memoryview(data), len(data) if chunk_end is None else chunk_end, big_endian,
                                        TICKS, snap_limit, small_limit, bulk_small, offsets, codes)
    return list(array("q", bytes(offsets))[:count]), list(codes[:count]), after, stop, offsets


def materialize(part: Any) -> bytes:
    """The bytes a part of the pipeline's output stands for (a buffer, or iovecs pointing into buffers,
    or iovecs its own writev fills as it writes: written to a file, as the writing thread does)."""
    if isinstance(part, Iovecs):
        if part.writev is not None:
            with tempfile.TemporaryFile() as handle:
                written = part.writev(handle.fileno(), part.vectors, part.pairs)
                handle.seek(0)
                data = handle.read()
            assert written == len(data)
            return data
        return b"".join(ctypes.string_at(int(base), int(length)) for base, length in part.vectors)
    return bytes(part)


def test_scan_classifies_short_frames_as_the_scalar_path_does(primitive: Any) -> None:
    """Each untouched short frame's code is classify_l4_checksum's state (or no layout); partial seeds,
    label stacks, two tags and IPv6 extension headers go to the scalar path."""
    frames = small_frames(5, 1500)
    offsets, codes, after, stop, _ = scan(primitive, records(frames))
    assert (after, stop) == (sum(16 + len(f) for f in frames), False)
    assert len(codes) == len(frames)
    at = 0
    for frame, offset, code in zip(frames, offsets, codes, strict=True):
        assert offset == at
        at += 16 + len(frame)
        layout = parse_layout(frame)
        if code == CODE_SCALAR:
            continue
        if layout is None or layout.fragment:
            assert code == CODE_NO_LAYOUT
        else:
            assert layout.labels == 0 and layout.vlan_tags <= 1
            assert CODE_STATES[code] == classify_l4_checksum(frame, layout)
            assert CODE_STATES[code].value != "partial", "a partial seed is completed by the scalar path"


def test_both_primitives_code_short_frames_alike() -> None:
    frames = small_frames(7, 2000)
    data = records(frames)
    found = {name: scan(make(NO_OFFLOAD), data)[:4] for name, make in PRIMITIVES.items()}
    assert len(set(map(repr, found.values()))) == 1, found


def test_scan_codes_every_short_frame_for_the_scalar_path_unless_bulk_small(primitive: Any) -> None:
    frames = small_frames(6, 50)
    _, codes, _, _, _ = scan(primitive, records(frames), bulk_small=False)
    assert codes == [CODE_SCALAR] * len(frames)


def test_scan_marks_long_and_snapped_records(primitive: Any) -> None:
    long_frame = build_frame(SuperPacketSpec(payload=os.urandom(4000)))
    short = build_frame(SuperPacketSpec(payload=os.urandom(100)))
    data = records([long_frame, short, long_frame], orig_lens=[len(long_frame), len(short) + 5, len(long_frame) + 1])
    _, codes, _, _, _ = scan(primitive, data)
    # a snapped long record is no candidate: it is reported and passed through by the scalar side
    assert codes == [CODE_CANDIDATE, CODE_SCALAR, CODE_SCALAR]


@pytest.mark.parametrize("big_endian", [False, True])
def test_scan_stops_where_the_general_reader_must_take_over(primitive: Any, big_endian: bool) -> None:
    frame = build_frame(SuperPacketSpec(payload=os.urandom(60)))
    data = records([frame] * 3, big_endian=big_endian)
    record = 16 + len(frame)
    # cut short by the end of the file
    offsets, _, after, stop, _ = scan(primitive, data[: 2 * record + 20], big_endian=big_endian)
    assert (len(offsets), after, stop) == (2, 2 * record, True)
    # a caplen beyond the snap limit
    bad = bytearray(data)
    struct.pack_into((">" if big_endian else "<") + "I", bad, record + 8, 0xFFFFFFF0)
    offsets, _, after, stop, _ = scan(primitive, bytes(bad), big_endian=big_endian)
    assert (len(offsets), after, stop) == (1, record, True)
    # a timestamp fraction of a second or more
    bad = bytearray(data)
    struct.pack_into((">" if big_endian else "<") + "I", bad, 2 * record + 4, TICKS)
    offsets, _, after, stop, _ = scan(primitive, bytes(bad), big_endian=big_endian)
    assert (len(offsets), after, stop) == (2, 2 * record, True)
    # the chunk ends after the record that crosses chunk_end
    offsets, _, after, stop, _ = scan(primitive, data, big_endian=big_endian, chunk_end=record + 1)
    assert (len(offsets), after, stop) == (2, 2 * record, False)


def test_alike_counts_packets_that_differ_only_in_per_packet_fields(primitive: Any) -> None:
    base = SuperPacketSpec(payload=os.urandom(3000), tcp_options=b"\x01\x01\x08\x0a" + bytes(8))
    frames = [build_frame(base)]
    for seq, ip_id in ((1, 2), (99, 7), (5000, 65535)):
        frames.append(build_frame(SuperPacketSpec(payload=os.urandom(3000), seq=seq, ip_id=ip_id, tcp_flags=0x18,
                                                  tcp_options=b"\x01\x01\x08\x0a" + os.urandom(8))))
    different_ttl = bytearray(frames[0])
    different_ttl[14 + 8] ^= 1  # TTL: part of the shape
    frames.append(bytes(different_ttl))
    frames.append(frames[0])
    data = records(frames)
    offsets, _, after, _, buffer = scan(primitive, data)
    layout = parse_layout(frames[0])
    assert layout is not None
    assert primitive.alike(memoryview(data), buffer, len(offsets), 0, len(offsets), after, layout) == 3
    # never past stop
    assert primitive.alike(memoryview(data), buffer, len(offsets), 0, 2, after, layout) == 1


def _tunnelled(inner_spec: SuperPacketSpec, **tunnel: object) -> bytes:
    from softgso.check.synth import TunnelSpec, encapsulate

    return encapsulate(build_frame(inner_spec), TunnelSpec(**tunnel))  # type: ignore[arg-type]


def test_alike_counts_tunnelled_packets_that_differ_only_in_per_packet_fields(primitive: Any) -> None:
    """Outer and inner IPv4 IDs, the inner TCP fields, payload and the outer UDP checksum's value are
    per packet; the VNI, a TTL and the outer UDP checksum's being 0 or not are the shape."""
    from softgso.bulk.fastpath import tunnel_key
    from softgso.offload.tunnels import parse_tunnel

    options = b"\x01\x01\x08\x0a" + bytes(8)
    first = _tunnelled(SuperPacketSpec(payload=os.urandom(3000), tcp_options=options), udp_csum=True)
    frames = [first]
    for seq, ip_id in ((1, 2), (99, 7), (5000, 65535)):
        frames.append(_tunnelled(SuperPacketSpec(payload=os.urandom(3000), seq=seq, ip_id=ip_id,
                                                 tcp_options=b"\x01\x01\x08\x0a" + os.urandom(8)),
                                 udp_csum=True, ip_id=ip_id ^ 0x5555))
    other_vni = _tunnelled(SuperPacketSpec(payload=os.urandom(3000), tcp_options=options), udp_csum=True, vni=43)
    no_csum = bytearray(first)
    no_csum[14 + 20 + 6 : 14 + 20 + 8] = b"\0\0"
    frames += [other_vni, bytes(no_csum), first]
    data = records(frames)
    offsets, _, after, _, buffer = scan(primitive, data)
    tunnel = parse_tunnel(first)
    assert tunnel is not None
    found = tunnel_key(first, tunnel)
    assert found is not None
    key, shape = found
    for frame in frames[1:4]:
        other = parse_tunnel(frame)
        assert other is not None and tunnel_key(frame, other)[0] == key  # type: ignore[index]
    view = memoryview(data)
    assert primitive.alike(view, buffer, len(offsets), 0, len(offsets), after, shape) == 3
    assert primitive.alike(view, buffer, len(offsets), 0, 2, after, shape) == 1
    # the outer UDP checksum's being 0 is another shape, found by both
    assert primitive.alike(view, buffer, len(offsets), 4, len(offsets), after, shape) == 0
    other = parse_tunnel(bytes(no_csum))
    assert other is not None and tunnel_key(bytes(no_csum), other)[0] != key  # type: ignore[index]


def test_scan_leaves_short_tunnelled_frames_to_the_scalar_path(primitive: Any) -> None:
    """Their inner packet's checksum state is what the scalar path counts: GRE, IP-in-IP and the UDP
    encapsulations' ports are never classified in bulk."""
    from softgso.bulk.fastpath import TUNNEL_PORTS

    inner = SuperPacketSpec(payload=os.urandom(200), partial_checksum=False)
    frames = [_tunnelled(inner, kind=kind) for kind in ("vxlan", "geneve", "gretap", "gre", "ipip")]
    frames += [build_frame(SuperPacketSpec(udp=True, dport=port, payload=os.urandom(100), partial_checksum=False))
               for port in TUNNEL_PORTS]
    _, codes, _, _, _ = scan(primitive, records(frames))
    assert codes == [CODE_SCALAR] * len(frames)
    assert scan(primitive, records([build_frame(SuperPacketSpec(udp=True, dport=4788, payload=bytes(100),
                                                                partial_checksum=False))]))[1] == [1]


@pytest.mark.parametrize("piece", [None, 1])
@pytest.mark.parametrize("later", [False, True])
@pytest.mark.parametrize("big_endian", [False, True])
def test_segment_runs_write_the_scalar_segments_behind_their_record_headers(primitive: Any, big_endian: bool,
                                                                            later: bool, piece: int | None,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of two shapes, interleaved: every segment of every packet, in input order, each behind a
    record header with its packet's timestamp and its own length; the input checksum state of
    every packet (a broken checksum: INVALID, for the pipeline to have named). ``later`` (where the
    primitive has LATE_SUMS): the function it returns does the segmenting, after the chunk's offsets
    are gone, and the compiled one as it writes (``piece``: a write after every packet, across runs)."""
    if piece is not None and hasattr(primitive, "PIECE"):  # (the others segment whole parts: piece is moot)
        monkeypatch.setattr(type(primitive), "PIECE", piece)
    first = [build_frame(SuperPacketSpec(payload=os.urandom(4000), seq=n, partial_checksum=n % 2 == 1))
             for n in range(4)]
    second = [build_frame(SuperPacketSpec(udp=True, payload=os.urandom(3100), partial_checksum=False))
              for _ in range(3)]
    broken = bytearray(first[0])
    broken[-1] ^= 0x55
    while classify_l4_checksum(broken, parse_layout(bytes(broken))) != L4Checksum.INVALID:
        # the field is 0 or the seed without the length (a random payload's complete checksum is, once
        # in 65,536), which the scalar path names otherwise: another payload
        first[0] = build_frame(SuperPacketSpec(payload=os.urandom(4000), seq=0, partial_checksum=False))
        broken = bytearray(first[0])
        broken[-1] ^= 0x55
    frames = [*first[:2], *second[:2], *first[2:], bytes(broken), second[2]]
    options = SegmentOptions(device=PROFILES["no-offload"], udp_gso="udp_l4")
    tool = type(primitive)(options)
    data = records(frames, big_endian=big_endian)
    offsets, _, _, _, buffer = scan(tool, data, big_endian=big_endian)
    plans = [tool.fast.plan_for(frame) for frame in frames]
    assert all(plan is not None for plan in plans)
    runs = [(plans[0], 0, 2), (plans[2], 2, 2), (plans[4], 4, 3), (plans[7], 7, 1)]
    codes = bytearray([NO_CODE]) * len(frames)
    arena = mmap.mmap(-1, 1 << 20)
    later = later and tool.LATE_SUMS
    part = tool.segment_runs(runs, memoryview(data), memoryview(buffer).cast("q"), big_endian, arena, [0], codes,
                             later=later)
    if later:
        if tool.SCATTER:
            assert codes == bytearray([NO_CODE]) * len(frames)  # nothing segmented yet
        buffer[:] = bytes(len(buffer))  # (the planner's offsets, reused for the next chunk)
        part = part()
    order = ">" if big_endian else "<"
    expected = b""
    for number, frame in enumerate(frames):
        for segment in process_frame(frame, options).frames:
            expected += struct.pack(order + "IIII", 1000 + number, number, len(segment), len(segment)) + segment
    assert materialize(part) == expected
    states = [process_frame(frame, options).input_csum for frame in frames]
    assert [CODE_STATES[code] for code in codes] == states
    assert states[6] is not None and states[6].value == "invalid"


@compiled_only
def test_a_module_built_before_segment_runs_still_writes_later_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiled module from before segment_runs (an in-place build a pull did not rebuild): the runs
    are segmented whole on the writing thread and written by writev_all, the same bytes."""

    class Before:
        def __init__(self, module: Any) -> None:
            self.module = module

        def __getattr__(self, name: str) -> Any:
            if name == "segment_runs":
                raise AttributeError(name)
            return getattr(self.module, name)

    monkeypatch.setattr(compiled_primitive, "_SEGMENT", Before(SEGMENT))
    tool = CompiledPrimitive(NO_OFFLOAD)
    frames = [build_frame(SuperPacketSpec(payload=os.urandom(4000), seq=n)) for n in range(3)]
    frames.insert(1, build_frame(SuperPacketSpec(ipv6=True, payload=os.urandom(3000))))
    data = records(frames)
    offsets, _, _, _, buffer = scan(tool, data)
    plans = [tool.fast.plan_for(frame) for frame in frames]
    runs = [(plans[0], 0, 1), (plans[1], 1, 1), (plans[2], 2, 2)]
    codes = bytearray([NO_CODE]) * len(frames)
    part = tool.segment_runs(runs, memoryview(data), memoryview(buffer).cast("q"), False, mmap.mmap(-1, 1 << 20), [0],
                             codes, later=True)()
    assert isinstance(part, Iovecs) and part.writev is SEGMENT.writev_all and part.pairs > 0
    expected = b"".join(struct.pack("<IIII", 1000 + number, number, len(segment), len(segment)) + segment
                        for number, frame in enumerate(frames) for segment in process_frame(frame, NO_OFFLOAD).frames)
    assert materialize(part) == expected


# -- the compiled module's own checks: out-of-range arguments are refused before a byte is touched --


@compiled_only
def test_segment_takes_frames_as_they_are() -> None:
    """The engine's shapes: a plan and a frame (no record header around it) give process_frame's segments."""
    compiled = CompiledSegmenter(NO_OFFLOAD)
    frame = build_frame(SuperPacketSpec(payload=os.urandom(5000)))
    plan = compiled.fast.plan_for(frame)
    assert plan is not None
    assert [bytes(piece) for piece in compiled.segment_packet(frame, plan)] == process_frame(frame, NO_OFFLOAD).frames


@compiled_only
def test_segment_refuses_jobs_outside_its_buffers() -> None:
    compiled = CompiledSegmenter(NO_OFFLOAD)
    frame = build_frame(SuperPacketSpec(payload=os.urandom(4000)))
    plan = compiled.fast.plan_for(frame)
    assert plan is not None
    per_packet = plan.out_len()
    with pytest.raises(ValueError, match="a frame lies outside the buffer"):
        compiled.segment_into(plan, frame, array("q", [1, 0, 0]), bytearray(per_packet), bytearray(1))
    with pytest.raises(ValueError, match="outside the output buffer"):
        compiled.segment_into(plan, frame, array("q", [0, 1, 0]), bytearray(per_packet), bytearray(1))
    with pytest.raises(ValueError, match="outside the codes buffer"):
        compiled.segment_into(plan, frame, array("q", [0, 0, 1]), bytearray(per_packet), bytearray(1))
    with pytest.raises(ValueError, match="int64 triples"):
        compiled.segment_into(plan, frame, array("q", [0, 0]), bytearray(per_packet), bytearray(1))
    vector, full, last = compiled.vector(plan)
    with pytest.raises(ValueError, match="inconsistent plan"):
        SEGMENT.segment(vector, full[:-1], last, frame, array("q", [0, 0, 0]), bytearray(per_packet), bytearray(1))


@compiled_only
def test_segment_records_refuse_jobs_outside_their_buffers() -> None:
    """The file stream's entry (frames in pcap records, each segment behind its record header)."""
    compiled = CompiledSegmenter(NO_OFFLOAD)
    frame = build_frame(SuperPacketSpec(payload=os.urandom(4000)))
    plan = compiled.fast.plan_for(frame)
    assert plan is not None
    data = records([frame])
    per_packet = plan.out_len(16)
    compiled.segment_records(plan, data, array("q", [0, 0, 0]), False, bytearray(per_packet), bytearray(1))
    with pytest.raises(ValueError, match="a record lies outside the buffer"):
        compiled.segment_records(plan, data, array("q", [1, 0, 0]), False, bytearray(per_packet), bytearray(1))
    with pytest.raises(ValueError, match="outside the output buffer"):
        compiled.segment_records(plan, data, array("q", [0, 0, 0]), False, bytearray(per_packet - 1), bytearray(1))
    # with vectors: headers alone in out, room for two pairs a segment and one more
    headers = per_packet - (plan.frame_len - plan.payload_at)
    pairs = 2 * plan.segments + 1
    assert compiled.segment_records(plan, data, array("q", [0, 0, 0]), False, bytearray(headers), bytearray(1),
                                    vectors=bytearray(16 * pairs)) == 2 * plan.segments
    with pytest.raises(ValueError, match="outside the output buffer"):
        compiled.segment_records(plan, data, array("q", [0, 0, 0]), False, bytearray(headers - 1), bytearray(1),
                                 vectors=bytearray(16 * pairs))
    with pytest.raises(ValueError, match="vectors must be room"):
        compiled.segment_records(plan, data, array("q", [0, 0, 0]), False, bytearray(headers), bytearray(1),
                                 vectors=bytearray(16 * pairs - 16))


@compiled_only
@pytest.mark.parametrize("pcapng", [False, True])
@pytest.mark.parametrize("piece", [1, 20000, 1 << 30])
def test_segment_records_given_a_descriptor_write_each_piece_of_packets_as_they_segment_it(
        tmp_path: Path, piece: int, pcapng: bool) -> None:
    """With a descriptor, the segments go out by writev every ``piece`` payload bytes (a write per
    packet, every few packets, one at the end): the scalar path's segments behind their record
    headers, in order, every byte counted; the checksum states as without one."""
    compiled = CompiledSegmenter(NO_OFFLOAD)
    frames = [build_frame(SuperPacketSpec(payload=os.urandom(9000), seq=n, partial_checksum=n % 2 == 1))
              for n in range(7)]
    frames[3] = frames[3][:-1] + bytes([frames[3][-1] ^ 0x55])  # an invalid checksum among them
    plan = compiled.fast.plan_for(frames[0])
    assert plan is not None and all(compiled.fast.plan_for(frame) is plan for frame in frames)
    data = records(frames)
    per_packet = plan.out_len(28 if pcapng else 16) - (plan.frame_len - plan.payload_at)
    if pcapng:
        per_packet += sum(-(plan.header_len + length) % 4 + 4 for length in
                          [plan.mss] * (plan.segments - 1) + [plan.last_len])
    at = [sum(16 + len(frame) for frame in frames[:n]) for n in range(len(frames))]
    jobs = array("q", [value for n in range(len(frames)) for value in (at[n] + (12 if pcapng else 0), n * per_packet, n)])
    if pcapng:  # EPB-like records: 12 bytes of block head (interface, timestamp high) in front of each
        data = b"".join(bytes(12) + data[at[n] : at[n] + 16 + len(frames[n])] for n in range(len(frames)))
        jobs = array("q", [value for n in range(len(frames)) for value in (at[n] + 12 * (n + 1), n * per_packet, n)])
    codes = bytearray([NO_CODE]) * len(frames)
    out = tmp_path / "out"
    with open(out, "wb") as handle:
        written = compiled.segment_records(plan, data, jobs, False, bytearray(per_packet * len(frames)), codes, pcapng,
                                           bytearray(16 * (2 * plan.segments * len(frames) + 1)), handle.fileno(),
                                           piece)
    got = out.read_bytes()
    assert written == len(got)
    segments = [segment for frame in frames for segment in process_frame(frame, NO_OFFLOAD).frames]
    assert len(segments) == plan.segments * len(frames)
    if pcapng:
        pieces, at_byte = [], 0
        for segment in segments:
            kind, length = struct.unpack_from("<II", got, at_byte)
            assert kind == 6 and struct.unpack_from("<I", got, at_byte + 20)[0] == len(segment)
            pieces.append(got[at_byte + 28 : at_byte + 28 + len(segment)])
            at_byte += length
        assert at_byte == len(got) and pieces == segments
    else:
        expected = b"".join(struct.pack("<IIII", 1000 + n, n, len(segment), len(segment)) + segment
                            for n, frame in enumerate(frames) for segment in process_frame(frame, NO_OFFLOAD).frames)
        assert got == expected
    assert [CODE_STATES[code] for code in codes] == [process_frame(frame, NO_OFFLOAD).input_csum for frame in frames]


def two_packet_run() -> tuple[bytes, Any, bytes, tuple[bytes, bytes, bytes], int, list[array]]:
    """A TCP/IPv4 super-packet twice in pcap records: the frame, its plan, the records, the plan's
    vector and templates, the output bytes of one packet's headers, and a job for each packet."""
    compiled = CompiledSegmenter(NO_OFFLOAD)
    frame = build_frame(SuperPacketSpec(payload=os.urandom(4000)))
    plan = compiled.fast.plan_for(frame)
    assert plan is not None
    headers = plan.out_len(16) - (plan.frame_len - plan.payload_at)
    jobs = [array("q", [0, 0, 0]), array("q", [16 + len(frame), headers, 1])]
    return frame, plan, records([frame, frame]), compiled.vector(plan), headers, jobs


@compiled_only
def test_segment_runs_refuse_what_segment_records_refuses_and_runs_that_are_not_runs(tmp_path: Path) -> None:
    """_segment.segment_runs: a descriptor and room for every run's iovecs, each run (plan, templates,
    jobs) checked as segment_records checks one."""
    frame, plan, data, (vector, full, last), headers, jobs = two_packet_run()
    room = bytearray(16 * (4 * plan.segments + 1))
    with open(tmp_path / "out", "wb") as handle:
        fd = handle.fileno()
        runs = tuple((vector, full, last, job) for job in jobs)
        written = SEGMENT.segment_runs(runs, data, False, bytearray(2 * headers), bytearray(2), False, room, fd, 1)
        with pytest.raises(ValueError, match="vectors must be room"):
            SEGMENT.segment_runs(runs, data, False, bytearray(2 * headers), bytearray(2), False, room[:-16], fd, 1)
        with pytest.raises(ValueError, match="a descriptor"):
            SEGMENT.segment_runs(runs, data, False, bytearray(2 * headers), bytearray(2), False, room, -1, 1)
        with pytest.raises(ValueError, match="is not"):
            SEGMENT.segment_runs(((vector, full, last),), data, False, bytearray(2 * headers), bytearray(2), False,
                                 room, fd, 1)
        with pytest.raises(ValueError, match="inconsistent plan"):
            SEGMENT.segment_runs(((vector, full[:-1], last, jobs[0]),), data, False, bytearray(2 * headers),
                                 bytearray(2), False, room, fd, 1)
        with pytest.raises(ValueError, match="outside the output buffer"):
            SEGMENT.segment_runs(runs, data, False, bytearray(2 * headers - 1), bytearray(2), False, room, fd, 1)
    segments = process_frame(frame, NO_OFFLOAD).frames * 2
    assert written == (tmp_path / "out").stat().st_size == sum(16 + len(segment) for segment in segments)


@compiled_only
@pytest.mark.parametrize("piece", [1, 1 << 30])
def test_segment_runs_write_runs_of_bytes_in_their_place(tmp_path: Path, piece: int) -> None:
    """A run (buffer,) between runs (the records a planner passed through or completed meanwhile) is
    written as it is, where it stands: OUT is the first packet's segments, the bytes, the second's,
    the bytes again (written at once or a piece at a time); a run of bytes that is no buffer is refused."""
    frame, plan, data, (vector, full, last), headers, jobs = two_packet_run()
    between, after = os.urandom(70), memoryview(os.urandom(33))
    runs = ((vector, full, last, jobs[0]), (between,), (vector, full, last, jobs[1]), (after,), (b"",))
    room = bytearray(16 * (4 * plan.segments + 1 + 2 * 3))
    with open(tmp_path / "out", "wb") as handle:
        written = SEGMENT.segment_runs(runs, data, False, bytearray(2 * headers), bytearray(2), False, room,
                                       handle.fileno(), piece)
        with pytest.raises(ValueError, match="run of bytes"):
            SEGMENT.segment_runs(((42,),), data, False, bytearray(2 * headers), bytearray(2), False, room,
                                 handle.fileno(), piece)
        with pytest.raises(ValueError, match="vectors must be room"):
            SEGMENT.segment_runs(runs, data, False, bytearray(2 * headers), bytearray(2), False, room[:-16 * 4],
                                 handle.fileno(), piece)
    one, two = (b"".join(struct.pack("<IIII", 1000 + n, n, len(segment), len(segment)) + segment
                         for segment in process_frame(frame, NO_OFFLOAD).frames) for n in (0, 1))
    assert (tmp_path / "out").read_bytes() == one + between + two + bytes(after)
    assert written == len(one) + len(between) + len(two) + len(after)


@compiled_only
def test_segment_records_report_a_write_that_fails(tmp_path: Path) -> None:
    """A descriptor that takes no writes: the write's own error, as OSError."""
    compiled = CompiledSegmenter(NO_OFFLOAD)
    frame = build_frame(SuperPacketSpec(payload=os.urandom(4000)))
    plan = compiled.fast.plan_for(frame)
    assert plan is not None
    data = records([frame])
    headers = plan.out_len(16) - (plan.frame_len - plan.payload_at)
    (tmp_path / "in").write_bytes(b"x")
    with open(tmp_path / "in", "rb") as handle, pytest.raises(OSError) as failed:
        compiled.segment_records(plan, data, array("q", [0, 0, 0]), False, bytearray(headers), bytearray(1),
                                 vectors=bytearray(16 * (2 * plan.segments + 1)), fd=handle.fileno(), piece=1)
    assert failed.value.errno == errno.EBADF


@compiled_only
@pytest.mark.parametrize("pcapng", [False, True])
def test_match_shapes_finds_each_candidate_among_earlier_shapes_as_keyed_by_the_scalar_parse(pcapng: bool) -> None:
    """Templates of two shapes (pipeline.ShapeTable); records of three shapes interleaved: a record gets
    the template whose fastpath key (prepare.parse_layout's header bytes but the per-packet fields) it
    shares but for the length (a TCP flow's template takes its packets of any length, the IP length
    field saying the frame's), none for the third shape, for a signed copy of a known shape, for one
    whose IP packet ends before its frame (a trailer), or (pcapng) for a known shape on another
    interface; other codes are left as they were."""
    from softgso.bulk.pipeline import ShapeTable
    from softgso.cli.bench import TIMESTAMPS

    tool = CompiledPrimitive(NO_OFFLOAD)
    fast = tool.fast

    def frame(flow: int, seq: int, options: bytes = TIMESTAMPS, payload: int = 6000) -> bytes:
        return build_frame(SuperPacketSpec(ipv6=flow == 1, sport=30000 + flow, seq=seq, payload=os.urandom(payload),
                                           tcp_options=options, partial_checksum=seq % 2 == 1))

    signed = bytes([29, 12]) + bytes(10)  # TCP-AO where the others carry timestamps
    frames = [frame(0, 0), frame(1, 0), frame(2, 0), frame(0, 1), frame(1, 1), frame(0, 2, signed), frame(1, 2),
              frame(0, 3, payload=6001), frame(2, 1), frame(0, 4), frame(1, 3, payload=2999), frame(0, 5) + bytes(4)]
    interfaces = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0] if pcapng else [0] * len(frames)
    data = b""
    offsets = []
    for number, (one, interface) in enumerate(zip(frames, interfaces, strict=True)):
        head = struct.pack("<I", interface) if pcapng else b""
        offsets.append(len(data) + len(head))
        data += head + struct.pack("<IIII", number, 0, len(one), len(one)) + one + (bytes(-len(one) % 4) if pcapng else b"")
    offsets_buffer = array("q", offsets).tobytes()
    codes = bytearray([CODE_CANDIDATE]) * len(frames)
    codes[4] = CODE_SCALAR
    table = ShapeTable(tool.match_shapes, pcapng)
    for number in (0, 1):
        key, layout = fast.key_of(frames[number])
        plan = fast.plan_for(frames[number], key, layout)
        assert plan is not None
        # (a record's length in a walk: to the next one's offset)
        table.add(memoryview(data), offsets[number], offsets[number + 1] - offsets[number], plan, layout,
                  len(frames[number]))
    ids = bytearray([ShapeTable.NONE]) * len(frames)
    ids[4] = 77
    view = memoryview(data)
    matched = table.match(view, bytearray(offsets_buffer), len(frames), 0, len(frames), len(data), codes, ids)

    def any_length(found: tuple[bytes, Any]) -> bytes:
        """A key without the frame's length and the IP length field that says it."""
        key, layout = found
        at = layout.network + (2 if layout.ip_version == 4 else 4)
        return key[:at] + b"\0\0" + key[at + 2 : -4]

    keys = [any_length(fast.key_of(one)) for one in frames[:2]]
    expected = []
    for number, one in enumerate(frames):
        found = fast.key_of(one)
        same = [index for index, key in enumerate(keys) if found is not None and any_length(found) == key]
        expected.append(same[0] if same and interfaces[number] == 0 else ShapeTable.NONE)
    expected[4] = 77  # not a candidate: left as it was
    assert fast.key_of(frames[5]) is None  # (the scalar path's: signed)
    assert fast.key_of(frames[11]) is None  # (the scalar path's: a trailer)
    assert list(ids) == expected
    assert matched == sum(1 for number, code in enumerate(expected) if code != ShapeTable.NONE and number != 4)
    assert expected[:4] == [0, 1, ShapeTable.NONE, 0] and expected[7:] == [0, ShapeTable.NONE,
                                                                        ShapeTable.NONE if pcapng else 0, 1,
                                                                        ShapeTable.NONE]
    # one record alone: [first, stop)
    ids = bytearray([ShapeTable.NONE]) * len(frames)
    assert table.match(view, bytearray(offsets_buffer), len(frames), 6, 7, len(data), codes, ids) == 1
    assert list(ids) == [ShapeTable.NONE] * 6 + [1] + [ShapeTable.NONE] * 5
    # the plans are the table's by length: the lengths planned (the templates' own) and no other
    assert table.entries[0][0] is None and set(table.by_length[0]) == {len(frames[0])}
    assert table.by_length[1][len(frames[1])] is fast.plan_for(frames[1])


@compiled_only
def test_match_shapes_refuses_ranges_and_templates_that_do_not_fit() -> None:
    records_bytes = records([build_frame(SuperPacketSpec(payload=os.urandom(3000)))])
    offsets, codes, ids = array("q", [0]).tobytes(), bytearray([CODE_CANDIDATE]), bytearray(1)

    def template(record_len: int, ranges: list[int], prefix: bytes, nonzero_at: int = -1, length_at: int = -1,
                 length_less: int = -1) -> bytes:
        fields = array("q", [0, record_len, nonzero_at, 0, 0, 0, len(ranges) // 2, len(prefix), length_at, length_less,
                             0, *ranges]).tobytes()
        body = fields + prefix + bytes(-len(prefix) % 8)
        return len(body).to_bytes(8, "little") + body[8:]

    good = template(len(records_bytes), [0, 20], records_bytes[:36])
    assert SEGMENT.match_shapes(records_bytes, offsets, 1, 0, 1, len(records_bytes), codes, ids, good, False) == 1
    # of any length: the IPv4 total length (frame offset 16) is the frame's length less 14
    any_length = template(16, [0, 16], records_bytes[:36], length_at=16, length_less=14)
    assert SEGMENT.match_shapes(records_bytes, offsets, 1, 0, 1, len(records_bytes), codes, ids, any_length, False) == 1
    for wrong in (template(16, [0, 16], records_bytes[:36], length_at=16, length_less=13),  # the length field disagrees
                  template(17, [0, 16], records_bytes[:36], length_at=16, length_less=14)):  # other framing
        ids[0] = 0
        assert SEGMENT.match_shapes(records_bytes, offsets, 1, 0, 1, len(records_bytes), codes, ids, wrong, False) == 0
        assert ids[0] == 255
    for bad in (template(len(records_bytes), [0, 21], records_bytes[:36]),  # a range beyond the prefix
                template(len(records_bytes), [5, 4], records_bytes[:36]),  # a range backwards
                template(20, [0, 20], records_bytes[:36]),  # a prefix beyond the record
                template(len(records_bytes), [0, 20], records_bytes[:36], nonzero_at=19),  # the field beyond it
                template(16, [0, 16], records_bytes[:36], length_at=16),  # of any length, no length_less
                template(16, [0, 16], records_bytes[:36], length_at=-2),  # no such length_at
                good[:-8], good[:40], good * 256):
        with pytest.raises(ValueError, match="inconsistent template|not int64s|too many templates"):
            SEGMENT.match_shapes(records_bytes, offsets, 1, 0, 1, len(records_bytes), codes, ids, bad, False)
    with pytest.raises(ValueError, match="out of bounds"):
        SEGMENT.match_shapes(records_bytes, offsets, 2, 0, 1, len(records_bytes), codes, ids, good, False)
    with pytest.raises(ValueError, match="out of bounds"):
        SEGMENT.match_shapes(records_bytes, offsets, 1, 1, 0, len(records_bytes), codes, ids, good, False)


@compiled_only
def test_writev_all_writes_every_pair_in_order_and_refuses_a_count_beyond_its_vectors(tmp_path: Path) -> None:
    pieces = [os.urandom(n) for n in (5000, 1, 0, 70000, 3)] * 300  # more pairs than IOV_MAX
    keep = [ctypes.create_string_buffer(piece, len(piece)) for piece in pieces]
    vectors = array("Q", [value for buffer, piece in zip(keep, pieces, strict=True)
                          for value in (ctypes.addressof(buffer), len(piece))])
    path = tmp_path / "out"
    with open(path, "wb") as handle:
        assert SEGMENT.writev_all(handle.fileno(), vectors, len(pieces)) == sum(map(len, pieces))
    assert path.read_bytes() == b"".join(pieces)
    with pytest.raises(ValueError, match="pairs out of range"):
        SEGMENT.writev_all(1, vectors, len(pieces) + 1)
    with pytest.raises(OSError):
        SEGMENT.writev_all(-1, vectors, 1)


@compiled_only
@pytest.mark.parametrize(("pos", "end", "chunk_end", "check"), [
    (-1, 100, 100, "out of range"), (0, 101, 100, "out of range"), (0, 50, 60, "out of range"),
])
def test_scan_refuses_bounds_outside_its_buffer(pos: int, end: int, chunk_end: int, check: str) -> None:
    with pytest.raises(ValueError, match=check):
        SEGMENT.scan(bytes(100), pos, end, chunk_end, False, TICKS, 1000, 100, True, bytearray(80), bytearray(10))


@compiled_only
def test_same_shape_refuses_a_range_beyond_the_walked_records() -> None:
    with pytest.raises(ValueError, match="out of bounds"):
        SEGMENT.same_shape(bytes(200), array("q", [0, 100]), 3, 0, 3, 200, 14, 34, 54, True, True)


@compiled_only
@settings(max_examples=300, deadline=None)
@given(st.data())
def test_segment_and_same_shape_refuse_any_hostile_arguments_without_touching_memory_outside(
        data: st.DataObject) -> None:
    """Plans, jobs and layouts bent at random (huge, negative, overflowing values): a ValueError or a
    run inside the buffers, never a crash (a bad read or write would kill the test process)."""
    compiled = CompiledSegmenter(NO_OFFLOAD)
    frame = build_frame(SuperPacketSpec(payload=bytes(range(256)) * 12))
    plan = compiled.fast.plan_for(frame)
    assert plan is not None
    vector, full, last = compiled.vector(plan)
    fields = list(array("q", vector))
    extremes = st.sampled_from([-(2**63), -1, 0, 1, 2, 2**31, 2**40, 2**62, 2**63 - 1])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(fields) - 1))
        fields[at] = data.draw(st.one_of(extremes, st.integers(-5000, 5000)))
    jobs = array("q", [data.draw(st.one_of(extremes, st.integers(-100, 3000))) for _ in range(3)])
    records_buffer = records([frame])
    out = bytearray(data.draw(st.integers(0, 2 * plan.out_len(16))))
    codes = bytearray(data.draw(st.integers(0, 2)))
    for call in (lambda: SEGMENT.segment(array("q", fields).tobytes(), full, last, records_buffer, jobs, out, codes),
                 lambda: SEGMENT.segment_records(array("q", fields).tobytes(), full, last, records_buffer, jobs,
                                                 False, out, codes)):
        try:
            call()
        except ValueError as error:
            assert str(error).startswith("segment: "), "a refusal names the check that failed"
    offsets = array("q", [data.draw(st.one_of(extremes, st.integers(-50, 6000))) for _ in range(3)])
    layout = [data.draw(st.one_of(extremes, st.integers(-10, 200))) for _ in range(3)]
    try:
        SEGMENT.same_shape(records_buffer, offsets, data.draw(st.integers(-1, 4)), data.draw(st.integers(-1, 3)),
                           data.draw(st.integers(-1, 4)), data.draw(st.one_of(extremes, st.integers(0, 6000))),
                           *layout, data.draw(st.booleans()), data.draw(st.booleans()))
    except OverflowError:
        pass
    except ValueError as error:
        assert str(error).startswith("same_shape: "), "a refusal names the check that failed"


@compiled_only
@settings(max_examples=300, deadline=None)
@given(st.data())
def test_tunnel_plans_and_same_bytes_refuse_any_hostile_arguments_without_touching_memory_outside(
        data: st.DataObject) -> None:
    """A tunnel plan (outer IPv4, outer UDP checksum) and same_bytes ranges bent at random: a ValueError
    or a run inside the buffers, never a crash."""
    compiled = CompiledSegmenter(NO_OFFLOAD)
    frame = _tunnelled(SuperPacketSpec(payload=bytes(range(256)) * 12), udp_csum=True)
    plan = compiled.fast.plan_for(frame)
    assert plan is not None and plan.csum_at is not None and plan.outer_ipv4_at is not None
    vector, full, last = compiled.vector(plan)
    fields = list(array("q", vector))
    extremes = st.sampled_from([-(2**63), -1, 0, 1, 2, 2**31, 2**40, 2**62, 2**63 - 1])
    tunnel_fields = [PLAN_FIELDS.index(name) for name in PLAN_FIELDS[23:]]
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.sampled_from(tunnel_fields) | st.integers(0, len(fields) - 1))
        fields[at] = data.draw(st.one_of(extremes, st.integers(-5000, 5000)))
    jobs = array("q", [0, 0, 0])
    out = bytearray(data.draw(st.integers(0, 2 * plan.out_len())))
    try:
        SEGMENT.segment(array("q", fields).tobytes(), full, last, frame, jobs, out, bytearray(1))
    except ValueError as error:
        assert str(error).startswith("segment: "), "a refusal names the check that failed"
    records_buffer = records([frame])
    offsets = array("q", [data.draw(st.one_of(extremes, st.integers(-50, 6000))) for _ in range(3)])
    ranges = array("q", [data.draw(st.one_of(extremes, st.integers(-10, 5000))) for _ in range(data.draw(
        st.sampled_from([0, 1, 2, 4, 5])))])
    try:
        SEGMENT.same_bytes(records_buffer, offsets, data.draw(st.integers(-1, 4)), data.draw(st.integers(-1, 3)),
                           data.draw(st.integers(-1, 4)), data.draw(st.one_of(extremes, st.integers(0, 6000))),
                           ranges, data.draw(st.one_of(extremes, st.integers(-3, 6000))))
    except OverflowError:
        pass
    except ValueError as error:
        assert str(error).startswith("same_bytes: "), "a refusal names the check that failed"


@compiled_only
def test_same_bytes_refuses_a_first_record_whose_bounds_wrap_round() -> None:
    """The first record's start and end are each checked against the buffer: a start near 2**63 and an end
    near -2**63, whose difference wraps round to a plausible length (101), are refused instead of read (a
    crash the random test above met)."""
    with pytest.raises(ValueError, match="same_bytes: the first record is shorter than its ranges"):
        SEGMENT.same_bytes(bytes(200), array("q", [2**63 - 1]).tobytes(), 1, 0, 1, -(2**63) + 100, b"", 0)


@compiled_only
def test_tunnel_plan_fields_are_read_in_the_c_enum_order() -> None:
    """The plan vector's tunnel fields sit where _segment.c's P_* enum reads them (after the 23 plain ones)."""
    assert PLAN_FIELDS[23:] == ("outer_ipv4_at", "outer_ipv4_in", "outer_base_full", "outer_base_last",
                                "outer_fixed_id", "csum_at", "csum_field", "csum_const_full", "csum_const_last",
                                "csum_mangle")
    with pytest.raises(ValueError, match="wrong number of fields"):
        SEGMENT.segment(bytes(8 * 23), b"", b"", bytes(100), b"", bytearray(10), bytearray(1))


@compiled_only
@given(st.binary(max_size=64) | st.lists(st.sampled_from([0, 1, 4, 5, 6, 7, 8, 9, NO_CODE]), max_size=64).map(bytes))
def test_the_planner_s_runs_are_the_pattern_s(codes: bytes) -> None:
    # _segment.code_runs against re on the pattern it stands for: codes 0-4 together, 5, 6, 7, 8 alone, others in none
    import re

    pattern = re.compile(rb"[\x00-\x04]+|\x05+|\x06+|\x07+|\x08+")
    expected = [run.span() for run in pattern.finditer(codes)]
    assert SEGMENT.code_runs(codes) == SEGMENT.code_runs(bytearray(codes)) == expected
    assert code_spans(bytearray(codes)) == expected
