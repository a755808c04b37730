"""The optional C accelerator (softgso._csum) against the pure numpy path: the same integers, the same bytes.

Skipped where the extension was not built; the numpy path is what every other test covers then.
"""

from __future__ import annotations

import numpy as np
import pytest

from softgso import fastpath
from softgso.bench import MIXES, _frames
from softgso.fastpath import FastSegmenter, word_sums
from softgso.features import PROFILES
from softgso.job import SegmentOptions

pytestmark = pytest.mark.skipif(fastpath._CSUM is None, reason="softgso._csum not built (or SOFTGSO_NO_C set)")


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
    fast = FastSegmenter(SegmentOptions(device=PROFILES["no-offload"]))
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
