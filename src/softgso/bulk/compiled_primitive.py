"""``softgso segment`` for classic pcap files of Ethernet frames, compiled: the bulk stream without numpy.

The same stream as :mod:`softgso.bulk.numpy_stream` (chunks of complete records, short frames left
untouched found in bulk, runs of same-shape super-packets segmented by the plan the scalar engine
taught :class:`softgso.bulk.fastpath.FastSegmenter`, the rest record by record through
:func:`softgso.job.process_frame`), with its per-record and per-segment work in the optional C
module ``softgso.bulk._segment`` instead of numpy. Where that module is built it is the default: it
needs no numpy at all, so the command also starts faster (importing numpy costs more than
segmenting a 100 MB capture). ``SOFTGSO_NO_C=1`` or a missing compiler leaves the numpy stream.

Two threads: this one reads the input a chunk at a time into a few reused buffers, walks,
classifies and builds each chunk's output (segments contiguous in an arena; records passed
through as views of the read buffer; the C calls release the GIL), a writer hands them to
``writev``. Resident memory is bounded by the buffers and arenas.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
import sys
import threading
from array import array
from collections.abc import Callable
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..constants import IPPROTO_TCP
from ..io.pcap import FILE_HEADER_LEN, RECORD_HEADER_LEN
from ..io.writer import CaptureWriter
from .fastpath import TunnelShape
from .native import load_extension
from .stream import (
    MAX_FAST_RECORD,
    BulkStream,
    StreamResult,
    fill,
    open_input,
    record_limits,
    write_stage,
)

if TYPE_CHECKING:
    from ..job import PacketResult, SegmentOptions, Summary
    from .fastpath import FastSegmenter, SegmentPlan

# the plan's integers in the order softgso/_segment.c reads them (its P_* enum)
PLAN_FIELDS = ("frame_len", "payload_at", "header_len", "mss", "segments", "last_len", "udp", "ipv4_at",
               "ipv4_in", "ipv4_base_full", "ipv4_base_last", "fixed_id", "l4_in", "l4_out", "l4_hdr_len",
               "partial", "seed", "l4_const_full", "l4_const_last", "udp_len_out", "udp_sport_dport", "classify",
               "ipv4", "outer_ipv4_at", "outer_ipv4_in", "outer_base_full", "outer_base_last", "outer_fixed_id",
               "csum_at", "csum_field", "csum_const_full", "csum_const_last", "csum_mangle")
# scan()'s codes: 0-3 an untouched short frame's checksum state (fastpath.CODE_STATES order), 4 one
# with no TCP/UDP layout, 5 a super-packet candidate, 6 a record for the scalar path
CODE_NO_LAYOUT, CODE_CANDIDATE, CODE_SCALAR = 4, 5, 6
_RUNS = re.compile(rb"[\x00-\x04]+|\x05+|\x06+")
_NO_CODE = 0xFF
_ONE_JOB = array("q", (0, 0, 0))  # one packet at offset 0, its output at 0, packet number 0
# output is built contiguous (headers and payload copied, the copy and the checksum one pass) in
# a few reused arenas, then written with one writev: the kernel copies large cache-warm blocks,
# measured faster than writev of a header/payload iovec pair per segment pointing into the input
CHUNK_SIZE = 1 << 20  # measured against 0.5, 2, 4 and 8 MiB (and queue depths 1-3) on 512 MiB: no better
QUEUE_DEPTH = 1
ARENAS = QUEUE_DEPTH + 3  # segmenting, queued for writing, being written, spare
ARENA_SIZE = 2 * CHUNK_SIZE
SWITCH_INTERVAL = 0.0002  # as faststream: the writer needs the GIL back right after each writev
# read (bulkstream.open_input), not mapped: a mapped input costs page faults to map it and
# MADV_DONTNEED to give it back, the latter on the writing thread and with TLB shootdowns to the
# segmenting one (measured 35 ms of a 0.36 s run with the file's inode lock idle); read() copies
# it, cache-warm for the checksums
READ_SIZE = CHUNK_SIZE + MAX_FAST_RECORD


_SEGMENT: Any = load_extension("_segment")


def available() -> bool:
    """Whether the compiled stream can run here (softgso.bulk._segment built, SOFTGSO_NO_C unset)."""
    return _SEGMENT is not None


def plan_vector(plan: SegmentPlan) -> bytes:
    """The plan's integers as _segment.c reads them (-1 for an absent IPv4 header or seed)."""
    values = []
    for name in PLAN_FIELDS:
        value = getattr(plan, name)
        values.append(-1 if value is None else int(value))
    return array("q", values).tobytes()


def state_counts(codes: bytes | bytearray) -> dict[str, int]:
    """Counts of checksum state codes (0-3; others ignored), keyed in order of first appearance."""
    from .fastpath import CODE_STATES

    present = [(codes.find(code), code) for code in (b"\x00", b"\x01", b"\x02", b"\x03")]
    return {CODE_STATES[code[0]].value: codes.count(code) for found, code in sorted(present) if found >= 0}


_RANGES: dict[TunnelShape, array] = {}


def _ranges(shape: TunnelShape) -> array:
    """A tunnelled shape's compared header bytes as _segment.same_bytes reads them (int64 pairs)."""
    found = _RANGES.get(shape)
    if found is None:
        if len(_RANGES) > 4096:
            _RANGES.clear()
        found = _RANGES[shape] = array("q", chain.from_iterable(shape.ranges))
    return found


class CompiledSegmenter:
    """Bulk segmentation of same-shape super-packets by softgso.bulk._segment, byte-identical to the scalar path."""

    def __init__(self, options: SegmentOptions, oracle: Callable[[bytes], PacketResult] | None = None) -> None:
        from .fastpath import FastSegmenter

        # plans learnt from the scalar path (or ``oracle``), accepted only if this class reproduces it
        self.fast: FastSegmenter = FastSegmenter(options, oracle, reproduce=self.segment_frames)
        self._vectors: dict[SegmentPlan, tuple[bytes, bytes, bytes]] = {}

    def vector(self, plan: SegmentPlan) -> tuple[bytes, bytes, bytes]:
        """(plan integers, full-segment template, last-segment template) for _segment.segment."""
        found = self._vectors.get(plan)
        if found is None:
            found = self._vectors[plan] = (plan_vector(plan), plan.template_full, plan.template_last)
        return found

    def segment_into(self, plan: SegmentPlan, buffer: Any, jobs: array, big_endian: bool, out: Any,
                     codes: bytearray) -> None:
        """_segment.segment for one plan (see its comment): every job's segments into ``out``."""
        vector, full, last = self.vector(plan)
        _SEGMENT.segment(vector, full, last, buffer, jobs, big_endian, out, codes)

    def segment_packet(self, record: Any, plan: SegmentPlan) -> list[bytearray]:
        """One packet's segments; ``record`` holds the frame behind 16 bytes whose values do not matter
        (where a pcap record header would be: a caller may put its own header bytes there)."""
        out = bytearray(plan.out_len(RECORD_HEADER_LEN))
        self.segment_into(plan, record, _ONE_JOB, False, out, bytearray(1))
        full_len, last_len = plan.segment_lengths()
        pieces, at = [], RECORD_HEADER_LEN
        for number in range(plan.segments):
            length = last_len if number == plan.segments - 1 else full_len
            pieces.append(out[at : at + length])
            at += RECORD_HEADER_LEN + length
        return pieces

    def segment_frames(self, frames: list[bytes], plan: SegmentPlan) -> list[list[bytes]]:
        """Segment same-shape frames; each packet's segments as bytes (plan checks and tests)."""
        return [[bytes(piece) for piece in self.segment_packet(bytes(RECORD_HEADER_LEN) + bytes(frame), plan)]
                for frame in frames]


class _Handoff:
    """A bounded hand-over between two threads: queue.Queue's put and get, without importing queue."""

    def __init__(self, depth: int) -> None:
        self._depth = depth
        self._items: list[Any] = []
        self._changed = threading.Condition()

    def put(self, item: Any, timeout: float | None = None) -> bool:
        """Add ``item`` once there is room; False if ``timeout`` seconds pass first."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._items) < self._depth, timeout):
                return False
            self._items.append(item)
            self._changed.notify_all()
            return True

    def get(self, idle: Callable[[], bool] | None = None) -> Any:
        """The oldest item, waiting for one; while there is none, ``idle()`` until it returns False."""
        with self._changed:
            while not self._items and idle is not None:
                self._changed.release()
                try:
                    busy = idle()
                finally:
                    self._changed.acquire()
                if not busy:
                    break
            self._changed.wait_for(lambda: bool(self._items))
            item = self._items.pop(0)
            self._changed.notify_all()
            return item


class CompiledSegmentStream(BulkStream):
    """Segment one classic pcap file into another; the caller finishes with the scalar stream if told.

    The interface of :class:`softgso.bulk.numpy_stream.BulkSegmentStream` (the numpy stream).
    """

    def __init__(self, options: SegmentOptions, summary: Summary,
                 per_frame: Callable[[int, bytes], tuple[list[bytes], str | None]]) -> None:
        self.compiled = CompiledSegmenter(options)
        self.fast = self.compiled.fast
        super().__init__(options, summary, per_frame, self.fast.enabled)

    def run(self, in_path: Path, writer: CaptureWriter, header_info: tuple[bytes, str, bool, int],
            progress: Callable[[int], None] | None = None, *, span: tuple[int, int | None, int] | None = None,
            ) -> StreamResult:
        """Stream IN through the engine into ``writer``; returns counts, reports and where to resume."""
        _, order, nanosecond, snaplen = header_info
        self._big_endian = order != "little"
        self._record_header = struct.Struct((">" if self._big_endian else "<") + "IIII")
        self._ticks, self._snap_limit = record_limits(nanosecond, snaplen)
        self._span = span or (FILE_HEADER_LEN, None, 0)
        # anonymous mappings: their pages come on first write (a bytearray is zeroed up front, 8 MiB of
        # page faults even for a capture with nothing to segment)
        self._arenas = [mmap.mmap(-1, ARENA_SIZE) for _ in range(ARENAS)]
        self._buffers = [mmap.mmap(-1, READ_SIZE) for _ in range(ARENAS)]
        fd = open_input(in_path)
        try:
            return self._pipeline(fd, os.fstat(fd).st_size, writer, progress)
        finally:
            os.close(fd)

    def _pipeline(self, fd: int, size: int, writer: CaptureWriter,
                  progress: Callable[[int], None] | None) -> StreamResult:
        writes = _Handoff(QUEUE_DEPTH)
        failure: list[BaseException] = []
        # while waiting for the next chunk, the writer reserves the output's next pages
        write_out = write_stage(writes.get, writer.write_framed, size, failure, reserve=writer.reserve_ahead)

        thread = threading.Thread(target=write_out, daemon=True)
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        thread.start()
        result = StreamResult(self.counts, self.reports)
        pos, span_end, index = self._span
        end = size if span_end is None else min(span_end, size)
        capacity = CHUNK_SIZE // RECORD_HEADER_LEN + 1
        offsets = bytearray(8 * capacity)
        codes = bytearray(capacity)
        turn = 0
        carried: bytes | memoryview = b""  # the input from pos already read, past the last chunk's records
        try:
            while pos < end and not failure:
                # a chunk's records start in its first CHUNK_SIZE bytes; READ_SIZE holds the longest
                # record a bulk stream takes beyond that, so only the input's end cuts one short
                buffer = self._buffers[turn % ARENAS]
                got = fill(fd, buffer, carried, pos, min(READ_SIZE, end - pos))
                data = memoryview(buffer)[:got]
                count, after, stop = _SEGMENT.scan(data, 0, got, min(CHUNK_SIZE, got), self._big_endian,
                                                   self._ticks, self._snap_limit, self.small_limit, self.bulk_small,
                                                   offsets, codes)
                arena = self._arenas[turn % ARENAS]
                turn += 1
                parts, records = self._segment_chunk(data, offsets, bytes(codes[:count]), index, after, arena)
                index += count
                pos += after
                carried = data[after:]
                while not writes.put((parts, records, pos), timeout=0.1):
                    if failure or not thread.is_alive():
                        break
                if progress is not None:
                    progress(pos)
                if stop or got == 0:
                    result.resume_index = index
                    result.resume_offset = pos
                    break
        finally:
            writes.put(None)
            thread.join()
            sys.setswitchinterval(switch_interval)
        if failure:
            raise failure[0]
        return result

    def _segment_chunk(self, data: memoryview, offsets_buffer: bytearray, codes: bytes, index: int,
                       chunk_stop: int, arena: mmap.mmap) -> tuple[list[Any], int]:
        """The output of one chunk (its records at ``offsets_buffer`` in ``data``), in order, and how
        many records it holds."""
        count = len(codes)
        offsets = memoryview(offsets_buffer).cast("q")
        parts: list[Any] = []
        written = 0
        fast = self.fast
        pending: list[tuple[SegmentPlan, int, int]] = []  # runs: plan, first record, records
        arena_state = [0]

        def flush_pending() -> None:
            nonlocal written
            if pending:
                item, segments = self._bulk(pending, offsets, data, arena, arena_state)
                parts.append(item)
                written += segments
                pending.clear()

        try:
            for run in _RUNS.finditer(codes):
                first, stop = run.span()
                kind = codes[first]
                if kind <= CODE_NO_LAYOUT:
                    # short frames left untouched: their records, byte for byte, in one piece
                    flush_pending()
                    start = offsets[first]
                    finish = offsets[stop] if stop < count else chunk_stop
                    nbytes = finish - start - RECORD_HEADER_LEN * (stop - first)
                    parts.append(data[start:finish])
                    self._count_untouched(stop - first, nbytes, state_counts(codes[first:stop]))
                    written += stop - first
                    continue
                number = first
                while number < stop:
                    pos = offsets[number]
                    following = offsets[number + 1] if number + 1 < count else chunk_stop
                    frame = data[pos + RECORD_HEADER_LEN : following]
                    if kind == CODE_CANDIDATE:
                        found = fast.key_of(frame)
                        plan = fast.plan_for(frame, *found) if found is not None else None
                        if plan is not None and found is not None:
                            # the packets that follow with this one's shape (a burst of one flow) share its plan
                            layout = found[1]
                            if isinstance(layout, TunnelShape):
                                alike = _SEGMENT.same_bytes(data, offsets_buffer, count, number, stop, chunk_stop,
                                                            _ranges(layout), layout.nonzero_at)
                            else:
                                alike = _SEGMENT.same_shape(data, offsets_buffer, count, number, stop, chunk_stop,
                                                            layout.network, layout.transport, layout.payload,
                                                            layout.ip_version == 4, layout.l4_proto == IPPROTO_TCP)
                            pending.append((plan, number, 1 + alike))
                            number += 1 + alike
                            continue
                    flush_pending()
                    written += self._one_record(index + number, data, pos, following, frame, parts)
                    number += 1
            flush_pending()
        finally:
            offsets.release()
        return parts, written

    def _bulk(self, runs: list[tuple[SegmentPlan, int, int]], offsets: memoryview, data: memoryview,
              arena: mmap.mmap, arena_state: list[int]) -> tuple[memoryview, int]:
        """Segment runs of same-plan super-packets (plan, first record, records; records at ``offsets``)
        into one block, in input order."""
        from collections import Counter

        from .fastpath import CODE_INVALID, CODE_STATES, name_invalid

        renamed: Counter[str] = Counter()  # packets the bulk code calls invalid, named by the scalar path
        size = sum(count * plan.out_len(RECORD_HEADER_LEN) for plan, _, count in runs)
        target: mmap.mmap | bytearray = arena
        at = arena_state[0]
        if at + size > len(arena):
            target, at = bytearray(size), 0  # more output than the arena holds
        else:
            arena_state[0] = at + size
        packets = sum(count for _, _, count in runs)
        codes = bytearray([_NO_CODE]) * packets
        segments_total = 0
        counted = False
        number = 0
        counts = self.counts
        for plan, first, count in runs:
            per_packet = plan.out_len(RECORD_HEADER_LEN)
            # (record offset, output offset, packet number) triples, built by C iterators
            jobs = array("q", chain.from_iterable(zip(offsets[first : first + count],
                                                      range(at, at + count * per_packet, per_packet),
                                                      range(number, number + count), strict=True)))
            self.compiled.segment_into(plan, data, jobs, self._big_endian, target, codes)
            # a checksum the bulk code calls invalid is named by the scalar path: rare, so found by
            # bytearray.find (C) rather than a Python loop over every packet of the run
            offset = codes.find(CODE_INVALID, number, number + count)
            while offset != -1:
                at_record = offsets[first + offset - number] + RECORD_HEADER_LEN
                renamed[name_invalid(data[at_record : at_record + plan.frame_len])] += 1
                codes[offset] = _NO_CODE
                offset = codes.find(CODE_INVALID, offset + 1, number + count)
            if plan.classify:
                counted = True
            elif plan.forced_state is not None:
                counted = True
                codes[number : number + count] = bytes([CODE_STATES.index(plan.forced_state)]) * count
            segs = plan.segments
            full_len, last_len = plan.segment_lengths()
            bytes_out = full_len * (segs - 1) + last_len
            self.summary.add_run(count, plan.frame_len, segs, bytes_out, {}, plan.partial or plan.outer_left)
            counts["in"] += count
            counts["out"] += count * segs
            counts["bytes_in"] += count * plan.frame_len
            counts["bytes_out"] += count * bytes_out
            segments_total += count * segs
            at += count * per_packet
            number += count
        if counted:
            # states in the order the packets came, whatever their shape
            for name, packets_in_state in state_counts(codes).items():
                self.summary.input_checksums[name] += packets_in_state
            self.summary.input_checksums.update(renamed)
        return memoryview(target)[at - size : at], segments_total


__all__ = ["CompiledSegmentStream", "CompiledSegmenter", "available", "plan_vector", "state_counts"]
