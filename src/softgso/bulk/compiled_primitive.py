"""The compiled primitive of the bulk pipeline, and the compiled engine API: softgso.bulk._segment.

:class:`CompiledSegmenter` is the engine's shape: a plan (learnt by
:class:`softgso.bulk.fastpath.FastSegmenter` from the scalar path) and frames as they are, segmented
by ``_segment.segment`` (the datapath hands it a TAP read's frame, the pipeline frames inside its
read buffer). :class:`CompiledPrimitive` is :mod:`softgso.bulk.pipeline`'s per-chunk primitive over
the same module: the pcap record walk (``scan``), runs of one shape (``same_shape``,
``same_bytes``), and segments written contiguous in an arena, each behind the record header the
file stream frames it with (``segment_records``, the same work in the same pass). It needs no numpy at all, so where the module
is built it is the default: ``segment`` also starts faster (importing numpy costs more than
segmenting a 100 MB capture). ``SOFTGSO_NO_C=1`` or a missing compiler leaves the numpy primitive.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from itertools import chain

from ..constants import IPPROTO_TCP
from ..io.pcap import RECORD_HEADER_LEN
from ..io.pcapng import BLOCK_OVERHEAD, EPB_FIXED_LEN
from .fastpath import TUNNEL_PORTS, FastSegmenter, LinkShape, TunnelShape, scalar_ports
from .native import load_extension

TYPE_CHECKING = False  # typing costs start-up milliseconds; mypy reads this name as typing's
if TYPE_CHECKING:
    import mmap
    from typing import Any

    from ..job import PacketResult, SegmentOptions
    from ..prepare import FrameLayout
    from .fastpath import SegmentPlan
    from .pipeline import Iovecs

# the plan's integers in the order softgso/bulk/_segment.c reads them (its P_* enum)
PLAN_FIELDS = ("frame_len", "payload_at", "header_len", "mss", "segments", "last_len", "udp", "ipv4_at",
               "ipv4_in", "ipv4_base_full", "ipv4_base_last", "fixed_id", "l4_in", "l4_out", "l4_hdr_len",
               "partial", "seed", "l4_const_full", "l4_const_last", "udp_len_out", "udp_sport_dport", "classify",
               "ipv4", "outer_ipv4_at", "outer_ipv4_in", "outer_base_full", "outer_base_last", "outer_fixed_id",
               "csum_at", "csum_field", "csum_const_full", "csum_const_last", "csum_mangle")
EPB_LEN = BLOCK_OVERHEAD + EPB_FIXED_LEN  # an Enhanced Packet Block without its packet and options
PORT_MAP_LEN = 8192  # _segment.scan's port map: a bit per UDP port
_ONE_JOB = array("q", (0, 0, 0))  # one frame at offset 0, its output at 0, packet number 0

_SEGMENT: Any = load_extension("_segment")


def available() -> bool:
    """Whether the compiled primitive can run here (softgso.bulk._segment built, SOFTGSO_NO_C unset)."""
    return _SEGMENT is not None


def plan_vector(plan: SegmentPlan) -> bytes:
    """The plan's integers as _segment.c reads them (-1 for an absent IPv4 header or seed)."""
    values = []
    for name in PLAN_FIELDS:
        value = getattr(plan, name)
        values.append(-1 if value is None else int(value))
    return array("q", values).tobytes()


_RANGES: dict[TunnelShape | LinkShape, array] = {}


def _ranges(shape: TunnelShape | LinkShape) -> array:
    """A tunnelled shape's compared header bytes as _segment.same_bytes reads them (int64 pairs)."""
    found = _RANGES.get(shape)
    if found is None:
        if len(_RANGES) > 4096:
            _RANGES.clear()
        found = _RANGES[shape] = array("q", chain.from_iterable(shape.ranges))
    return found


def packet_out_len(plan: SegmentPlan, pcapng: bool, payload: bool = True) -> int:
    """Output bytes per input packet of ``plan`` in a file: each segment behind its pcap record
    header, or (``pcapng``) each one an Enhanced Packet Block (EPB_FIXED_LEN + 12 bytes, padding);
    without ``payload``, those bytes but the payload pieces (what segment_records writes with vectors)."""
    if not pcapng:
        return plan.out_len(RECORD_HEADER_LEN) - (0 if payload else plan.frame_len - plan.payload_at)
    full_len, last_len = plan.segment_lengths()
    out = (plan.segments - 1) * (EPB_LEN + full_len + -full_len % 4) + EPB_LEN + last_len + -last_len % 4
    return out - (0 if payload else plan.frame_len - plan.payload_at)


class CompiledSegmenter:
    """Bulk segmentation of same-shape frames by softgso.bulk._segment, byte-identical to the scalar path."""

    def __init__(self, options: SegmentOptions, oracle: Callable[[bytes], PacketResult] | None = None) -> None:
        # plans learnt from the scalar path (or ``oracle``), accepted only if this class reproduces it
        self.fast: FastSegmenter = FastSegmenter(options, oracle, reproduce=self.segment_frames)
        self._vectors: dict[SegmentPlan, tuple[bytes, bytes, bytes]] = {}

    def vector(self, plan: SegmentPlan) -> tuple[bytes, bytes, bytes]:
        """(plan integers, full-segment template, last-segment template) for _segment.segment."""
        found = self._vectors.get(plan)
        if found is None:
            found = self._vectors[plan] = (plan_vector(plan), plan.template_full, plan.template_last)
        return found

    def segment_into(self, plan: SegmentPlan, buffer: Any, jobs: array, out: Any, codes: bytearray) -> None:
        """_segment.segment for one plan: for every job (frame offset in ``buffer``, offset in ``out``,
        packet number) the frame's segments back to back in ``out``; with plan.classify each
        packet's input checksum state code in ``codes``."""
        vector, full, last = self.vector(plan)
        _SEGMENT.segment(vector, full, last, buffer, jobs, out, codes)

    def segment_records(self, plan: SegmentPlan, buffer: Any, jobs: array, big_endian: bool, out: Any,
                        codes: bytearray, pcapng: bool = False, vectors: Any = None, fd: int = -1,
                        piece: int = 0) -> int:
        """segment_into for frames in pcap records (a job's first offset is its record's): each
        segment written behind its own record header (the record's timestamp, its own length), as
        the file stream writes them. ``pcapng``: the records are EPBs (a job's offset is
        _segment.scan_blocks'), each segment written as an EPB of the record's interface and timestamp.
        With ``vectors``, ``out`` gets the framing and headers alone and ``vectors`` the iovecs that
        write the segments, payloads pointing into ``buffer``: returns how many (base, length) pairs;
        with ``fd`` too, the pairs are written there (writev) each time the packets segmented since
        the last write hold ``piece`` payload bytes, and at the end: returns the bytes written."""
        vector, full, last = self.vector(plan)
        if vectors is not None:
            return int(_SEGMENT.segment_records(vector, full, last, buffer, jobs, big_endian, out, codes, pcapng,
                                                vectors, *((fd, piece) if fd >= 0 else ())))
        # (the pcapng flag given only when set: a module built before it takes pcap's arguments alone)
        _SEGMENT.segment_records(vector, full, last, buffer, jobs, big_endian, out, codes, *((True,) if pcapng else ()))
        return 0

    def segment_packet(self, frame: Any, plan: SegmentPlan) -> list[bytearray]:
        """One frame's segments."""
        out = bytearray(plan.out_len())
        self.segment_into(plan, frame, _ONE_JOB, out, bytearray(1))
        full_len, last_len = plan.segment_lengths()
        return [out[at : at + full_len] for at in range(0, full_len * (plan.segments - 1), full_len)] + \
            [out[full_len * (plan.segments - 1) :]]

    def segment_frames(self, frames: list[bytes], plan: SegmentPlan) -> list[list[bytes]]:
        """Segment same-shape frames; each packet's segments as bytes (plan checks and tests)."""
        return [[bytes(piece) for piece in self.segment_packet(frame, plan)] for frame in frames]


class CompiledPrimitive:
    """The bulk pipeline's per-chunk work in C (see softgso.bulk.pipeline for the signature)."""

    # the segments' framing and headers are built in a few reused arenas; their payload stays in the
    # read buffer, summed there, and goes to OUT by writev of a header/payload iovec pair per
    # segment (_segment.writev_all, on the writing thread): the kernel's copy is the only one
    # after the read (SCATTER False: headers and payload copied into the arena, one writev; so
    # with a module built before vectors existed, which lacks writev_all)
    SCATTER = hasattr(_SEGMENT, "writev_all")
    # measured (wall) against 0.5, 2, 4 and 8 MiB and queue depths 1-3 on 512 MiB: no better; in
    # CPU seconds, 2 and 4 MiB save Python work per chunk and lose as much in the kernel's copies
    # out of a buffer no longer in cache (alternated three times: no gain, 11 MiB more memory)
    CHUNK_SIZE = 1 << 20
    # IN mapped (chunks.MappedInput) a window of this many bytes at a time, so that the payloads go from
    # the page cache to OUT with the kernel's one copy at writev; 0: read into buffers (a module built
    # before the SIGBUS guard). Windows of 16, 64 and 256 MiB measured alike in CPU seconds; the
    # smallest keeps the resident set smallest (a mapped page counts in it while it is mapped)
    WINDOW_SIZE = 16 << 20 if hasattr(_SEGMENT, "guard_add") else 0
    GUARD = _SEGMENT  # guard_add, guard_remove, guard_faults
    # chunks read in place from the mapping: no read copy to keep cache-warm, so bigger chunks save the
    # Python work per chunk (measured on 512 MiB: 4 MiB 0.44-0.45 s CPU against 0.47 s with 1 MiB; 8
    # and 16 MiB no better)
    MAPPED_CHUNK_SIZE = 4 << 20
    QUEUE_DEPTH = 1
    # the segments' framing and headers (and their payload, with SCATTER False; a bigger output goes
    # to a buffer of its own)
    ARENA_SIZE = MAPPED_CHUNK_SIZE // 2 if SCATTER else 2 * CHUNK_SIZE
    SWITCH_INTERVAL = 0.0002  # seconds; see pipeline._pipeline
    # the payloads summed by the thread that writes them, right before (segment_runs' ``later``): see
    # pipeline.LateRuns
    LATE_SUMS = SCATTER
    # with LATE_SUMS, the payload bytes summed before each writev, so that the kernel's copy finds them
    # in the core's cache (L2: 1 MiB here). Measured on 512 MiB (alternated, medians of 15): one writev
    # a 4 MiB chunk 0.43 s CPU; pieces of 256 and 512 KiB 0.39 s; of 64 and 128 KiB 0.40 s (more writes)
    PIECE = 256 << 10
    # the planner finds a super-packet's shape among those it has seen by match_shapes (pipeline.ShapeTable)
    SHAPES = hasattr(_SEGMENT, "match_shapes")
    # short frames whose checksum is a partial seed are completed (or left) in bulk by complete_seeds
    SEEDS = hasattr(_SEGMENT, "complete_seeds")
    # a later segment_runs call writes bytes between its runs ((None, buffer, 0) in runs): the planner
    # then keeps a chunk's runs together across the records it passes through or completes
    RAW_RUNS = bool(getattr(_SEGMENT, "RAW_RUNS", 0))

    def __init__(self, options: SegmentOptions) -> None:
        self.compiled = CompiledSegmenter(options)
        self.fast = self.compiled.fast
        # --tunnel-port's UDP ports as _segment.scan's port map (a bit per port), given only when
        # there are any: their short frames are the scalar path's, as a tunnel's own port's are
        extra = set(scalar_ports(options)) - set(TUNNEL_PORTS)
        self._port_map: tuple[bytearray, ...] = ()
        if extra:
            port_map = bytearray(PORT_MAP_LEN)
            for port in extra:
                port_map[port >> 3] |= 1 << (port & 7)
            self._port_map = (port_map,)

    def scan(self, data: memoryview, chunk_end: int, big_endian: bool, ticks: int, snap_limit: int,
             small_limit: int, bulk_small: int, offsets: bytearray, codes: bytearray,
             link: int = 1) -> tuple[int, int, bool]:
        """The pcap record walk and short-frame codes of one chunk of link kind ``link`` (_segment.scan)."""
        extra = (link, *self._port_map) if link != 1 or self._port_map else ()
        count, after, stop = _SEGMENT.scan(data, 0, len(data), chunk_end, big_endian, ticks, snap_limit, small_limit,
                                           bulk_small, offsets, codes, *extra)
        return count, after, bool(stop)

    def scan_blocks(self, data: memoryview, chunk_end: int, big_endian: bool, kinds: bytes | bytearray, spb_snaplen: int,
                    snap_limit: int, small_limit: int, bulk_small: int, offsets: bytearray, codes: bytearray,
                    lengths: bytearray) -> tuple[int, int, bool]:
        """The pcapng block walk and short-frame codes of one chunk (_segment.scan_blocks)."""
        count, after, stop = _SEGMENT.scan_blocks(data, 0, len(data), chunk_end, big_endian, kinds, spb_snaplen,
                                                  snap_limit, small_limit, bulk_small, offsets, codes, lengths,
                                                  *self._port_map)
        return count, after, bool(stop)

    def alike(self, data: memoryview, offsets: bytearray, records: int, first: int, stop: int, chunk_stop: int,
              layout: FrameLayout | TunnelShape | LinkShape) -> int:
        """How many records after ``first`` have its shape (_segment.same_shape, same_bytes for a
        tunnel or another link type)."""
        if isinstance(layout, TunnelShape | LinkShape):
            return int(_SEGMENT.same_bytes(data, offsets, records, first, stop, chunk_stop, _ranges(layout),
                                           layout.nonzero_at))
        return int(_SEGMENT.same_shape(data, offsets, records, first, stop, chunk_stop, layout.network,
                                       layout.transport, layout.payload, layout.ip_version == 4,
                                       layout.l4_proto == IPPROTO_TCP))

    def complete_seeds(self, data: memoryview, offsets: bytearray, records: int, first: int, stop: int,
                       chunk_stop: int, shift: int, lengths: bytearray | None,
                       actions: bytes | bytearray) -> tuple[bytes, int, int, int, int]:
        """Records ``first`` on of short frames whose checksum is a partial seed, as their class's action
        says (_segment.complete_seeds): (their bytes, how many, how many left partial, frame bytes,
        the class of the record it stopped at: -1 none, 8 not a seed)."""
        return _SEGMENT.complete_seeds(data, offsets, records, first, stop, chunk_stop, shift, lengths,
                                       actions)

    def match_shapes(self, data: memoryview, offsets: bytearray, records: int, first: int, stop: int,
                     chunk_stop: int, codes: bytes | bytearray, ids: bytearray, table: bytes, pcapng: bool) -> int:
        """Each super-packet candidate's template (pipeline.ShapeTable) into ``ids`` (_segment.match_shapes)."""
        return int(_SEGMENT.match_shapes(data, offsets, records, first, stop, chunk_stop, codes, ids, table, pcapng))

    def segment_runs(self, runs: list[tuple[SegmentPlan | None, Any, int]], data: memoryview, offsets: memoryview,
                     big_endian: bool, arena: mmap.mmap, arena_state: list[int], codes: bytearray,
                     pcapng: bool = False, later: bool = False) -> memoryview | Iovecs | Callable[[], memoryview | Iovecs]:
        """The runs' segments, each behind its record header (each an EPB with ``pcapng``), in input
        order: with SCATTER iovecs (headers in ``arena``, payloads in ``data``), else contiguous in
        ``arena`` (or a new buffer when it is full). ``later``: everything that needs ``offsets``
        done now, and a function returned for the thread that writes them: it gives an Iovecs whose
        writev segments the runs as it writes them (sums the payloads, fills the headers and
        ``codes``, writes every PIECE payload bytes; with a module built before segment_runs, the
        iovecs segmented whole, then written), or without SCATTER the segments copied already. A run
        (None, buffer, 0) (RAW_RUNS, ``later`` and SCATTER only) is bytes written as they are in its place."""
        scatter = self.SCATTER
        per_packets = [packet_out_len(plan, pcapng, not scatter) if plan is not None else 0 for plan, _, _ in runs]
        size = sum(per_packet * count for per_packet, (_, _, count) in zip(per_packets, runs, strict=True))
        target: mmap.mmap | bytearray = arena
        at = arena_state[0]
        if at + size > len(arena):
            target, at = bytearray(size), 0  # more output than the arena holds
        else:
            arena_state[0] = at + size
        number = 0
        segment_records = self.compiled.segment_records
        vectors = bytearray(16 * sum(2 * plan.segments * count + 1 if plan is not None else 2
                                     for plan, _, count in runs)) if scatter else None
        work: list[tuple[SegmentPlan, array]] = []
        ordered: list[tuple[SegmentPlan, array] | tuple[Any]] = []  # work and the runs of bytes, in order
        for per_packet, (plan, first, count) in zip(per_packets, runs, strict=True):
            if plan is None:
                ordered.append((first,))
                continue
            # (record offset, output offset, packet number) triples, built by C iterators (a run of one,
            # as interleaved flows make them, directly)
            jobs = array("q", (offsets[first], at, number) if count == 1 else chain.from_iterable(zip(
                offsets[first : first + count], range(at, at + count * per_packet, per_packet),
                range(number, number + count), strict=True)))
            if vectors is None:
                segment_records(plan, data, jobs, big_endian, target, codes, pcapng)
            work.append((plan, jobs))
            ordered.append((plan, jobs))
            at += count * per_packet
            number += count
        if vectors is None:
            done = memoryview(target)[at - size : at]
            return (lambda: done) if later else done  # (segmented already: copies and sums in one pass)

        def segment() -> Iovecs:
            from .pipeline import Iovecs

            pairs = 0
            with memoryview(vectors) as rest:
                for plan, jobs in work:
                    pairs += segment_records(plan, data, jobs, big_endian, target, codes, pcapng, rest[16 * pairs :])
            return Iovecs(vectors, (target, data), _SEGMENT.writev_all, pairs)

        if len(ordered) > len(work) and not (later and scatter and self.RAW_RUNS):
            raise ValueError("segment_runs: runs of bytes are a later call's, with SCATTER and RAW_RUNS")
        if not later:
            return segment()
        if not hasattr(_SEGMENT, "segment_runs"):
            return segment  # (a module built before it: segmented whole, then written)
        runs_given = tuple(run if len(run) == 1 else (*self.compiled.vector(run[0]), run[1]) for run in ordered)

        def segment_and_write(fd: int, _vectors: Any, _pairs: int) -> int:
            return int(_SEGMENT.segment_runs(runs_given, data, big_endian, target, codes, pcapng, vectors, fd,
                                             self.PIECE))

        def segmented_as_written() -> Iovecs:
            from .pipeline import Iovecs

            # the Iovecs' writev sums each piece's payloads and writes them at once
            return Iovecs(vectors, (target, data), segment_and_write)

        return segmented_as_written


__all__ = ["CompiledPrimitive", "CompiledSegmenter", "PLAN_FIELDS", "available", "packet_out_len", "plan_vector"]
