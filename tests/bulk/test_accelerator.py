"""The optional C accelerator (softgso.bulk._csum) against the pure numpy path: the same integers, the same bytes.

Skipped where the extension was not built; the numpy path is what every other test covers then.
Each C function is also called directly with ranges outside its buffers: it must refuse them with a
ValueError naming the check, before touching a byte.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from softgso.bulk import fastpath
from softgso.bulk.fastpath import FastSegmenter, word_sums
from softgso.cli.bench import MIXES, _frames
from softgso.features import PROFILES
from softgso.job import SegmentOptions

pytestmark = pytest.mark.skipif(fastpath._CSUM is None, reason="softgso.bulk._csum not built (or SOFTGSO_NO_C set)")


def numpy_only(function, *args):  # type: ignore[no-untyped-def]
    saved = fastpath._CSUM
    fastpath._CSUM = None
    try:
        return function(*args)
    finally:
        fastpath._CSUM = saved


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 7, 1447, 1448, 1449, 1500, 8191])
@pytest.mark.parametrize("shift", [0, 1, 2, 3])
def test_word_sums_equal_numpy(length: int, shift: int) -> None:
    rng = np.random.default_rng(length * 4 + shift)
    rows = max(2, (1 << 17) // length)
    raw = rng.integers(0, 256, size=shift + rows * (length + 3), dtype=np.uint8)
    # rows spaced length + 3 apart, starting at an odd or even address: every alignment
    pieces = np.lib.stride_tricks.as_strided(raw[shift:], shape=(rows, length), strides=(length + 3, 1))
    raw[shift:][: length].fill(0xFF)  # an all-ones row
    assert np.array_equal(word_sums(pieces), numpy_only(word_sums, pieces))
    three = np.lib.stride_tricks.as_strided(raw[shift:], shape=(rows // 2, 2, length),
                                            strides=(2 * (length + 3), length + 3, 1))
    assert np.array_equal(word_sums(three), numpy_only(word_sums, three))


def test_copy_sums_copy_every_byte() -> None:
    rng = np.random.default_rng(7)
    for length in (1, 3, 4, 6, 17, 1448, 1449):
        source = rng.integers(0, 256, size=(9, length + 5), dtype=np.uint8)[:, 1 : 1 + length]
        target = np.zeros((9, length + 7), dtype=np.uint8)
        sums = fastpath._copy_sums(source, target[:, 3 : 3 + length])
        assert np.array_equal(target[:, 3 : 3 + length], source)
        assert not target[:, :3].any() and not target[:, 3 + length :].any()
        main = length & ~3
        expected = source[:, :main].astype(np.uint64).reshape(9, -1, 4) if main else None
        if expected is not None:
            words = expected[..., 0] | expected[..., 1] << 8 | expected[..., 2] << 16 | expected[..., 3] << 24
            assert np.array_equal(sums, words.sum(axis=1))


@pytest.mark.parametrize("mix", ["issue", "vlan", "uso", "all"])
@pytest.mark.parametrize("payload", [64000, 9001, 3001])
def test_segment_run_equals_numpy(mix: str, payload: int) -> None:
    # the bench's UDP super-packets are USO by construction: udp_l4 is their truthful GSO metadata
    fast = FastSegmenter(SegmentOptions(device=PROFILES["no-offload"], udp_gso="udp_l4"))
    frames = _frames(MIXES[mix], payload)
    by_plan: dict[object, list[bytes]] = {}
    for _ in range(48):
        frame = next(frames)
        plan = fast.plan_for(frame)
        if plan is not None:
            by_plan.setdefault(plan, []).append(frame)
    assert by_plan
    for plan, group in by_plan.items():
        assert plan is not None
        batch = np.frombuffer(b"".join(group), dtype=np.uint8).reshape(len(group), plan.frame_len)  # type: ignore[attr-defined]
        for prefix in (0, 16):
            ours = np.zeros((len(group), plan.out_len(prefix)), dtype=np.uint8)  # type: ignore[attr-defined]
            theirs = np.zeros_like(ours)
            result = fast.segment_run(plan, batch, ours, prefix)  # type: ignore[arg-type]
            reference = numpy_only(fast.segment_run, plan, batch, theirs, prefix)
            assert np.array_equal(ours, theirs)
            assert result.states == reference.states


def test_range_sums_equal_numpy() -> None:
    rng = np.random.default_rng(3)
    buffer = rng.integers(0, 256, size=20000, dtype=np.uint8)
    buffer[100:300] = 0xFF
    starts = rng.integers(0, 19000, size=500)
    lengths = rng.integers(0, 1000, size=500)
    starts = np.concatenate([starts, [0, 1, 100, 19999, 20000 - 7, 5]])
    lengths = np.concatenate([lengths, [20000, 19999, 200, 1, 7, 0]])
    assert np.array_equal(fastpath.range_sums(buffer, starts, lengths),
                          numpy_only(fastpath.range_sums, buffer, starts, lengths))
    with pytest.raises(ValueError):
        fastpath._CSUM.range_sums(buffer, np.array([19999]), np.array([2]), np.zeros(1, dtype=np.int64))


@pytest.mark.parametrize("order", ["<", ">"])
def test_walk_records_equal_the_python_walk(order: str) -> None:
    import struct

    rng = np.random.default_rng(5)
    data = bytearray(b"\0" * 24)
    expected = []
    for _ in range(300):
        caplen = int(rng.integers(0, 200))
        expected.append(len(data))
        data += struct.pack(order + "IIII", 1, 2, caplen, caplen) + bytes(caplen)
    complete = len(data)
    data += struct.pack(order + "IIII", 1, 2, 50, 50) + bytes(10)  # a record cut short
    found = np.empty(len(data) // 16 + 1, dtype=np.int64)
    count, pos, cut = fastpath._CSUM.walk_records(bytes(data), 24, len(data), len(data), order == ">", found)
    assert (count, pos, cut) == (300, complete, 1)
    assert found[:count].tolist() == expected
    # a chunk boundary: stops at the first record starting at or beyond it
    count, pos, cut = fastpath._CSUM.walk_records(bytes(data), 24, len(data), expected[100] - 1, order == ">", found)
    assert (count, pos, cut) == (100, expected[100], 0)
    count, pos, cut = fastpath._CSUM.walk_records(bytes(data), 24, len(data), len(data) - 3, order == ">", found)
    assert (count, cut) == (300, 1)


# --- the C functions refuse every range outside their buffers (safe by construction) ------------


def _i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


@pytest.mark.parametrize(("offsets", "length", "check"), [
    (_i64(0, 97), 4, "offsets[1] = 97 with length 4 reaches outside the buffer (100 bytes)"),
    (_i64(-1), 4, "offsets[0] = -1"),
    (_i64(0), 101, "offsets[0] = 0 with length 101 reaches outside"),
    (_i64(2**62), 8, "offsets[0] = 4611686018427387904"),
    (_i64(0), -4, "length -4 < 0"),
])
def test_u32_sums_refuses_ranges_outside_its_buffer(offsets: np.ndarray, length: int, check: str) -> None:
    out = np.zeros(offsets.size, dtype=np.uint64)
    with pytest.raises(ValueError, match=f"^u32_sums: {re.escape(check)}"):
        fastpath._CSUM.u32_sums(bytes(100), offsets, length, out)
    assert not out.any()


def test_u32_sums_refuses_an_output_too_small_or_offsets_not_int64() -> None:
    with pytest.raises(ValueError, match="u32_sums: out holds 8 bytes, fewer than the 16 for 2 results"):
        fastpath._CSUM.u32_sums(bytes(100), _i64(0, 4), 4, np.zeros(1, dtype=np.uint64))
    with pytest.raises(ValueError, match="u32_sums: offsets holds 7 bytes, not a whole number of int64"):
        fastpath._CSUM.u32_sums(bytes(100), bytes(7), 4, np.zeros(1, dtype=np.uint64))


def test_u32_sums_reads_up_to_the_last_byte_of_its_buffer() -> None:
    out = np.zeros(2, dtype=np.uint64)
    fastpath._CSUM.u32_sums(b"\x01\x00\x00\x00" * 25, _i64(0, 92), 8, out)
    assert out.tolist() == [2, 2]


@pytest.mark.parametrize(("source_at", "target_at", "length", "check"), [
    (_i64(0, 60), _i64(0, 0), 8, "source_offsets[1] = 60 with length 8 reaches outside the source (64 bytes)"),
    (_i64(0), _i64(25), 8, "target_offsets[0] = 25 with length 8 reaches outside the target (32 bytes)"),
    (_i64(0), _i64(-8), 8, "target_offsets[0] = -8"),
    (_i64(0), _i64(0), -1, "length -1 < 0"),
    (_i64(0, 8), _i64(0), 8, "target_offsets holds 8 bytes, source_offsets 16"),
])
def test_copy_u32_sums_refuses_ranges_outside_either_buffer(source_at: np.ndarray, target_at: np.ndarray,
                                                             length: int, check: str) -> None:
    target = bytearray(32)
    out = np.zeros(source_at.size, dtype=np.uint64)
    with pytest.raises(ValueError, match=f"^copy_u32_sums: {re.escape(check)}"):
        fastpath._CSUM.copy_u32_sums(bytes(range(64)), source_at, target, target_at, length, out)
    assert target == bytearray(32), "nothing written before the checks"


def test_copy_u32_sums_refuses_a_small_output_and_a_read_only_target() -> None:
    with pytest.raises(ValueError, match="copy_u32_sums: out holds 0 bytes, fewer than the 8 for 1 results"):
        fastpath._CSUM.copy_u32_sums(bytes(64), _i64(0), bytearray(32), _i64(0), 8, np.zeros(0, dtype=np.uint64))
    with pytest.raises(TypeError):
        fastpath._CSUM.copy_u32_sums(bytes(64), _i64(0), bytes(32), _i64(0), 8, np.zeros(1, dtype=np.uint64))


@pytest.mark.parametrize(("starts", "lengths", "check"), [
    (_i64(19999), _i64(2), "range 0 (start 19999, length 2) is not inside the buffer of 20000 bytes"),
    (_i64(0, -1), _i64(1, 1), "range 1 (start -1, length 1)"),
    (_i64(5), _i64(-1), "range 0 (start 5, length -1)"),
    (_i64(8), _i64(2**63 - 4), "range 0 (start 8, length 9223372036854775804)"),  # start + length overflows
    (_i64(0, 1), _i64(1), "lengths holds 8 bytes, starts 16"),
])
def test_range_sums_refuses_ranges_outside_its_buffer(starts: np.ndarray, lengths: np.ndarray, check: str) -> None:
    out = np.zeros(2, dtype=np.int64)
    with pytest.raises(ValueError, match=f"^range_sums: {re.escape(check)}"):
        fastpath._CSUM.range_sums(np.zeros(20000, dtype=np.uint8), starts, lengths, out)
    with pytest.raises(ValueError, match="range_sums: out holds 8 bytes, fewer than the 16 for 2 results"):
        fastpath._CSUM.range_sums(bytes(10), _i64(0, 1), _i64(1, 1), np.zeros(1, dtype=np.int64))


@pytest.mark.parametrize(("pos", "end", "chunk_end", "out_len", "check"), [
    (-1, 100, 100, 8, "pos < 0"),
    (0, 101, 100, 8, "end beyond the buffer"),
    (0, 50, 60, 8, "chunk_end beyond end"),
    (0, 100, 100, 12, "starts not a whole number of int64"),
])
def test_walk_records_refuses_bounds_outside_its_buffer(pos: int, end: int, chunk_end: int, out_len: int,
                                                        check: str) -> None:
    with pytest.raises(ValueError, match=f"^walk_records: {re.escape(check)}"):
        fastpath._CSUM.walk_records(bytes(100), pos, end, chunk_end, False, bytearray(out_len))


def test_walk_records_stops_at_a_record_claiming_4_gb() -> None:
    import struct

    data = bytes(24) + struct.pack("<IIII", 1, 0, 4, 4) + bytes(4) + struct.pack("<IIII", 1, 0, 0xFFFFFFFF, 0)
    found = np.zeros(4, dtype=np.int64)
    assert fastpath._CSUM.walk_records(data, 24, len(data), len(data), False, found) == (1, 44, 1)
    assert found[0] == 24


def test_the_callers_hand_over_buffers_views_of_any_layout() -> None:
    """word_sums/_copy_sums find the buffer a strided view lies in; the C path and numpy agree."""
    from numpy.lib.stride_tricks import as_strided

    raw = np.random.default_rng(11).integers(0, 256, size=1 << 18, dtype=np.uint8)
    rows = as_strided(raw[5:], shape=(100, 2000), strides=(2600, 1), writeable=False)
    assert fastpath._memory_of(rows) is not None and fastpath._memory_of(rows)[1] == 5
    assert np.array_equal(word_sums(rows), numpy_only(word_sums, rows))
    # a view reaching past the memory it was made from: refused by C, never read
    beyond = as_strided(raw[-4000:], shape=(40, 2000), strides=(2000, 1), writeable=False)
    with pytest.raises(ValueError, match="reaches outside the buffer"):
        fastpath._accelerated_sums(beyond, 2000)
    # memory that is not one contiguous buffer: numpy does it
    fortran = np.asfortranarray(raw[: 400 * 500].reshape(400, 500))[:, :400]
    assert fastpath._memory_of(fortran) is None
