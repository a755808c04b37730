"""softgso.bulk._records (the compiled walks of the checkers' bulk reader) on its own: the segments it
takes are those softgso.check.flowdiff judges intact without a word (flowdiff is the reference: its
per-frame code decides every case the run declines), and hostile arguments never touch memory
outside the buffers."""

from __future__ import annotations

import struct
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softgso.bulk.native import load_extension
from softgso.check.flowdiff import SEGMENTED, FlowDiff, parse_unit
from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.features import PROFILES
from softgso.job import SegmentOptions, process_frame

RECORDS = load_extension("_records")
compiled_only = pytest.mark.skipif(RECORDS is None, reason="softgso.bulk._records not built (or SOFTGSO_NO_C set)")
NO_OFFLOAD = SegmentOptions(device=PROFILES["no-offload"])


def _pcap_records(frames: list[bytes]) -> tuple[bytes, array, array]:
    """Little-endian pcap records holding ``frames``; their frames' offsets and lengths."""
    out, starts, spans = bytearray(), array("q"), array("q")
    for number, frame in enumerate(frames):
        out += struct.pack("<IIII", 1000 + number, number, len(frame), len(frame))
        starts.append(len(out))
        spans.append(len(frame))
        out += frame
    return bytes(out), starts, spans


def _super(ipv6: bool = False, flags: int = 0x18, partial: bool = False) -> bytes:
    return build_frame(SuperPacketSpec(ipv6=ipv6, payload=bytes(range(256)) * 20, tcp_flags=flags,
                                       partial_checksum=partial, tcp_options=bytes.fromhex("0101080a000003e8000007d0")))


def _taken(a: bytes, frames: list[bytes], more: bool = False) -> int:
    unit = parse_unit(0, a)
    buffer, starts, spans = _pcap_records(frames)
    assert RECORDS is not None
    return int(RECORDS.tcp_segments(a, unit.network, unit.transport, unit.payload_at, unit.payload_end,
                                    unit.ip_version, unit.seq, buffer, starts, spans, 0, len(frames), more))


def _reference(a: bytes, frames: list[bytes]) -> tuple[bool, int]:
    """(flowdiff judges A segmented into all of frames with nothing to say, frames it paired)."""
    fate = FlowDiff([(i, frame, True) for i, frame in enumerate(frames)]).add(0, a)
    clean = (fate.fate == SEGMENTED and fate.ok and fate.payload_intact and not fate.changes and not fate.problems
             and fate.b_frames == list(range(1, len(frames) + 1)))
    return clean, len(fate.b_frames)


@compiled_only
@pytest.mark.parametrize("ipv6", [False, True])
@pytest.mark.parametrize("flags", [0x10, 0x18, 0x19, 0x98, 0x99])
@pytest.mark.parametrize("partial", [False, True])
def test_takes_the_segments_flowdiff_judges_intact(ipv6: bool, flags: int, partial: bool) -> None:
    a = _super(ipv6, flags, partial)
    segments = process_frame(a, NO_OFFLOAD).frames
    assert len(segments) > 2
    assert _reference(a, segments) == (True, len(segments))
    assert _taken(a, segments) == len(segments)
    # the segments of A and then another frame: the run stops at A's last segment
    assert _taken(a, [*segments, segments[0]]) == len(segments)
    # cut short at the buffer's end: -1 when more may follow, 0 at the capture's end
    assert _taken(a, segments[:-1], more=True) == -1
    assert _taken(a, segments[:-1]) == 0


@compiled_only
@settings(max_examples=200, deadline=None)
@given(st.data())
def test_declines_whatever_flowdiff_would_not_judge_intact(data: st.DataObject) -> None:
    """A byte of the segments changed anywhere: the run is taken only where flowdiff still judges every
    segment intact without a word (a changed byte it does not look at, in a padding or a field
    segmentation sets), else declined."""
    a = _super(data.draw(st.booleans()), data.draw(st.sampled_from([0x10, 0x18, 0x19, 0x98])),
               data.draw(st.booleans()))
    segments = [bytearray(frame) for frame in process_frame(a, NO_OFFLOAD).frames]
    for _ in range(data.draw(st.integers(1, 3))):
        which = data.draw(st.integers(0, len(segments) - 1))
        at = data.draw(st.integers(0, 120) | st.integers(0, len(segments[which]) - 1))
        segments[which][at] ^= data.draw(st.integers(1, 255))
    frames = [bytes(frame) for frame in segments]
    taken = _taken(a, frames)
    clean, _ = _reference(a, frames)
    assert taken in (0, len(frames))
    if taken:
        assert clean, "the run took segments flowdiff has something to say about"


@compiled_only
@pytest.mark.parametrize("at", range(4))
@pytest.mark.parametrize("value", [2**63 - 1, 2**63 - 20, -(2**63)])
def test_a_layout_offset_at_the_integer_limits_is_refused(at: int, value: int) -> None:
    """tcp_segments with one of A's layout offsets (network, transport, payload start, payload end) at
    the ends of Py_ssize_t: no run (0), never a read through an overflowed bound (a transport of
    2**63 - 1 passed ``transport + 20 > payload_at`` and crashed the process)."""
    assert RECORDS is not None
    a = _super()
    buffer, starts, spans = _pcap_records(process_frame(a, NO_OFFLOAD).frames[:3])
    layout = [14, 34, 66, len(a)]
    layout[at] = value
    assert RECORDS.tcp_segments(a, *layout, 4, 1_000_000, buffer, starts, spans, 0, len(starts), False) == 0


@compiled_only
@settings(max_examples=300, deadline=None)
@given(st.data())
def test_hostile_arguments_refused_or_kept_inside_the_buffers(data: st.DataObject) -> None:
    """Offsets, lengths, counts and A's layout bent at random (huge, negative, overflowing values): a
    ValueError naming the function, or a run inside the buffers, never a crash."""
    assert RECORDS is not None
    a = _super()
    segments = process_frame(a, NO_OFFLOAD).frames[:3]
    buffer, starts, spans = _pcap_records(segments)
    extremes = st.sampled_from([-(2**63), -1, 0, 1, 2, 2**31, 2**40, 2**62, 2**63 - 1])
    values = st.one_of(extremes, st.integers(-100, 7000))
    bent_starts = array("q", [data.draw(st.one_of(values, st.just(s))) for s in starts])
    bent_spans = array("q", [data.draw(st.one_of(values, st.just(s))) for s in spans])
    layout = [data.draw(st.one_of(extremes, st.integers(-10, 200), st.just(value)))
              for value in (14, 34, 66, len(a), 4)]
    try:
        RECORDS.tcp_segments(a, *layout, 1_000_000, buffer, bent_starts, bent_spans,
                             data.draw(st.one_of(st.integers(-2, 4), extremes)),
                             data.draw(st.one_of(st.integers(-2, 4), extremes)), data.draw(st.booleans()))
    except OverflowError:
        pass
    except ValueError as error:
        assert str(error).startswith("tcp_segments: ")
    offsets = array("q", [data.draw(st.one_of(values, st.just(s - 16))) for s in starts])
    codes = bytearray(data.draw(st.lists(st.integers(0, 7), min_size=0, max_size=4)))
    lengths = array("I", [data.draw(st.integers(0, 2**32 - 1) | st.just(s)) for s in spans])
    outputs = [array("q", bytes(8 * data.draw(st.integers(0, 4)))) for _ in range(3)]
    try:
        RECORDS.frame_spans(buffer, offsets, codes, lengths, data.draw(st.one_of(st.integers(-2, 4), extremes)),
                            data.draw(st.booleans()), data.draw(st.booleans()), *outputs)
    except OverflowError:
        pass
    except ValueError as error:
        assert str(error).startswith("frame_spans: ")
