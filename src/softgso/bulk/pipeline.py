"""``softgso segment`` for classic pcap and pcapng files of Ethernet frames, in bulk: the one pipeline.

Strategy: one reader, one planner, one writer; what numpy and C do differently is the per-chunk
*primitive* behind them (as aioquic's ``_buffer.c`` stands behind ``_buffer.py``'s API), held equal
by the same tests (tests/bulk/test_primitives.py). A primitive
(:class:`softgso.bulk.numpy_primitive.NumpyPrimitive`, :class:`softgso.bulk.compiled_primitive.CompiledPrimitive`)
is built from the options and has:

* ``fast``: the :class:`softgso.bulk.fastpath.FastSegmenter` whose plans it reproduces;
* ``scan(data, chunk_end, big_endian, ticks, snap_limit, small_limit, bulk_small, offsets, codes)``
  -> (records, bytes walked, stop): the pcap record walk of one chunk, every record's offset
  (int64 into ``offsets``) and code (int8 into ``codes``, fastpath's CODE_*: a short frame left
  untouched with its checksum state or CODE_NO_LAYOUT, CODE_SCALAR, CODE_CANDIDATE); stop where
  the general reader must take over;
* ``scan_blocks(data, chunk_end, big_endian, kinds, spb_snaplen, snap_limit, small_limit, bulk_small,
  offsets, codes, lengths)``: the same for the packet blocks of a pcapng section (_segment.c's
  scan_blocks: an offset is a block's start + BLOCK_SHIFT, where an EPB's timestamp and lengths lie
  as a pcap record header does; each frame's caplen into ``lengths``; CODE_DROPPED for a block the
  general reader skips);
* ``alike(data, offsets, records, first, stop, chunk_stop, layout)`` -> how many records after
  ``first`` (before ``stop``) have its shape (fastpath.shape_key, or a TunnelShape's bytes);
* ``segment_runs(runs, data, offsets, big_endian, arena, arena_state, codes, pcapng)`` -> one part to
  write: runs of same-plan super-packets (plan, first record, records) segmented, each segment
  behind its pcap record header (or, ``pcapng``, as an EPB of its input's interface and timestamp), in
  input order; a classified packet's checksum state code in
  ``codes`` (one per packet of the runs);
  with ``later`` (where LATE_SUMS is set), only what needs ``offsets`` is done at once, and a function
  is returned that does the rest (the payload sums, the headers, ``codes``) and gives the part: the
  writing thread calls it when it writes the part (:class:`LateRuns`), and it may segment a piece
  at a time as it writes;
* where SHAPES is set, ``match_shapes(data, offsets, records, first, stop, chunk_stop, codes, ids,
  table, pcapng)``: each candidate's shape among those of earlier runs (:class:`ShapeTable`);
* its tuned constants: CHUNK_SIZE, QUEUE_DEPTH, ARENA_SIZE, SWITCH_INTERVAL, LATE_SUMS; WINDOW_SIZE (0:
  IN is read) with MAPPED_CHUNK_SIZE and GUARD (softgso.bulk._segment's SIGBUS guard) for a mapped input.

This thread takes the input a chunk at a time, scans it, plans it (short frames left untouched pass
through as views of the chunk; runs of same-shape super-packets go to the primitive; the rest record
by record through :func:`softgso.job.process_frame`); a writer thread hands each chunk's parts to
``writev``. The primitives' C calls and numpy's work release the GIL. A chunk is read in place from
IN's mapping (:class:`softgso.bulk.chunks.MappedInput`) when the primitive has a SIGBUS guard, IN is a
regular file and OUT can be cut back (atomic): the kernel's copy at writev is then the only copy of
a payload byte; otherwise (and for the input's last chunk) it is read into one of a few reused
buffers. Resident memory is bounded by the buffers, arenas and mapped windows, whatever the file size.

IN cut short underneath a mapped run: a chunk read from it after the cut (the guard answered a
touch with zeros, or IN is now shorter than the chunk) is not written, and one written from it
after the cut (the writer finds IN shorter after its writev, or writev failed with EFAULT) is cut
back out of OUT; the counts go back to before that chunk and the general reader takes over from
there, as it does from a record the bulk stream does not take: what is left of IN before the cut is
written, and the cut is reported as the read path reports it.

Anything unusual (a record longer than the longest a bulk stream takes, a timestamp fraction beyond
one second, a truncated file) is left to the general reader: from that record on, the scalar
stream takes over, so its output and its error messages are the scalar path's own.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
import struct
import sys
import threading
from array import array
from collections import Counter
from collections.abc import Callable
from functools import cache

from ..constants import IPPROTO_TCP, TCP_MIN_HLEN
from ..io.pcap import FILE_HEADER_LEN, RECORD_HEADER_LEN
from ..io.pcapng import BLOCK_OVERHEAD, BT_EPB
from ..io.record import LINKTYPE_ETHERNET, MAX_SNAPLEN_STANDARD, NS_PER_SECOND, CaptureRecord
from ..io.writer import CaptureWriter, record_parts
from ..prepare import name_neither
from .chunks import Handoff, MappedInput, fill, no_core_free, open_input, write_stage
from .fastpath import (
    CODE_CANDIDATE,
    CODE_INVALID,
    CODE_NO_LAYOUT,
    CODE_STATES,
    FastSegmenter,
    LinkShape,
    SegmentPlan,
    TunnelShape,
    invalid_field,
    link_plan,
    link_shape,
    signed_in_run,
)
from .native import load_extension
from .stream import (
    CODE_SEED,
    KIND_LINKTYPE,
    LINK_HEADER_LEN,
    LINK_KINDS,
    MAX_FAST_RECORD,
    SEED_SCALAR,
    SEED_UNKNOWN,
    SMALL_CLASSIFY,
    SMALL_SEEDS,
    PcapngInput,
    StreamResult,
    record_limits,
    seed_action,
    short_frames,
)

LINK_ETHERNET = LINK_KINDS[LINKTYPE_ETHERNET]

TYPE_CHECKING = False  # typing costs start-up milliseconds; mypy reads this name as typing's
if TYPE_CHECKING:
    from typing import Any, Literal, Protocol

    from ..job import SegmentOptions, Summary
    from ..prepare import FrameLayout
else:
    Protocol = object  # Primitive is a typing.Protocol for mypy, a plain class at run time


def code_spans(codes: bytes | bytearray) -> list[tuple[int, int]]:
    """The (start, stop) runs of codes the planner takes as one: frames left untouched (codes 0-4),
    records for the scalar path, candidates, pcapng blocks the general reader skips, short frames of
    partial seeds (5, 6, 7, 8 each on their own). _segment.code_runs where it is built (re is then not on the start-up path), else the
    pattern's spans."""
    runs = _code_runs()
    if runs is not None:
        return runs(codes)
    return [run.span() for run in _code_pattern().finditer(codes)]


@cache
def _code_runs() -> Any:
    return getattr(load_extension("_segment"), "code_runs", None)


@cache
def _code_pattern() -> Any:
    import re

    return re.compile(rb"[\x00-\x04]+|\x05+|\x06+|\x07+|\x08+")


CODE_DROPPED = 7  # _segment.c's C_DROPPED
# pcapng: a block's offset in the walk is its start + 12, where an EPB's timestamp, caplen and
# orig_len lie as a pcap record header does (_segment.scan_blocks)
BLOCK_SHIFT = 12
NO_CODE = 0xFF  # a packet of a run whose checksum state is not counted


class Primitive(Protocol):
    """What the pipeline asks of a per-chunk primitive (see the module docstring)."""

    CHUNK_SIZE: int
    QUEUE_DEPTH: int
    ARENA_SIZE: int
    SWITCH_INTERVAL: float
    LATE_SUMS: bool
    WINDOW_SIZE: int
    MAPPED_CHUNK_SIZE: int
    GUARD: Any
    fast: FastSegmenter

    def scan(self, data: memoryview, chunk_end: int, big_endian: bool, ticks: int, snap_limit: int,
             small_limit: int, bulk_small: int, offsets: bytearray, codes: bytearray,
             link: int = 1) -> tuple[int, int, bool]: ...

    def alike(self, data: memoryview, offsets: bytearray, records: int, first: int, stop: int, chunk_stop: int,
              layout: FrameLayout | TunnelShape | LinkShape) -> int: ...

    def segment_runs(self, runs: list[tuple[SegmentPlan | None, Any, int]], data: memoryview, offsets: memoryview,
                     big_endian: bool, arena: mmap.mmap, arena_state: list[int], codes: bytearray,
                     pcapng: bool = False, later: bool = False) -> Any: ...

    def scan_blocks(self, data: memoryview, chunk_end: int, big_endian: bool, kinds: bytes | bytearray, spb_snaplen: int,
                    snap_limit: int, small_limit: int, bulk_small: int, offsets: bytearray, codes: bytearray,
                    lengths: bytearray) -> tuple[int, int, bool]: ...


def state_counts(codes: bytes | bytearray) -> dict[str, int]:
    """Counts of checksum state codes (0-3; others ignored), keyed in order of first appearance."""
    present = [(codes.find(code), code) for code in (b"\x00", b"\x01", b"\x02", b"\x03")]
    return {CODE_STATES[code[0]].value: codes.count(code) for found, code in sorted(present) if found >= 0}


def layout_ranges(layout: FrameLayout | TunnelShape | LinkShape) -> tuple[tuple[tuple[int, int], ...], int]:
    """The header bytes records of ``layout``'s shape have equal ((from, to) frame offsets) and the
    16-bit field whose being 0 or not is shape (-1: none): all to the payload but shape_key's
    per-packet fields (IPv4 ID and checksum; TCP seq to window, checksum, urgent pointer, options;
    UDP checksum), as _segment.c's same_shape compares them."""
    if isinstance(layout, TunnelShape | LinkShape):
        return layout.ranges, layout.nonzero_at
    network, transport = layout.network, layout.transport
    at = 0
    ranges = []
    if layout.ip_version == 4:
        ranges += [(0, network + 4), (network + 6, network + 10)]
        at = network + 12
    if layout.l4_proto == IPPROTO_TCP:
        ranges += [(at, transport + 4), (transport + 12, transport + 13)]
    else:
        ranges += [(at, transport + 6), (transport + 8, layout.payload)]
    return tuple(ranges), -1


class ShapeTable:
    """The shapes of runs planned so far (the newest LIMIT), for a compiled walk that finds each
    super-packet's among them (the primitive's ``match_shapes``): the planner then parses the headers
    only of a packet whose shape it has not seen, not of every packet of interleaved flows (keying a
    plain TCP/IPv4 super-packet measured 9 us in Python; finding it among 64 templates 1-2 us, adding
    one 4 us).

    A template is a record of an earlier run, compared as a run's records are (:func:`layout_ranges`,
    the record's length and its caplen and orig_len, pcapng: its interface), with its plan and shape:
    a record that has its shape would have been planned in its run. A TCP packet of a plain layout
    (no tunnel, Ethernet) makes a template of any length: its IP length field is left out of the
    compared bytes and must say the record's frame length instead (a whole frame, no trailer), so
    that one template holds a flow whose super-packets come in many lengths (a sending host's: 1 to
    44 segments, and a write's part tail), with a plan for each length planned so far
    (``by_length``; a length not planned yet is planned by the caller as any new shape is). Once
    LIMIT are held, a new one takes the number of the oldest; ``generation`` counts the templates
    added (a length added to a template is none)."""

    # templates held: the walk compares a record with each in turn (a miss measured 1.7 us at 64, with
    # flows of one length: every template's first bytes compared)
    LIMIT = 64
    NONE = 255  # no template's shape (_segment.c: at most 255 templates)
    # a chunk in which at least CHURN shapes were new and found fewer than a quarter as many (more flows
    # at once than templates: each would cost a match and an add, and find nothing) rests the table
    # for REST chunks
    CHURN = 32
    REST = 8

    __slots__ = ("match_shapes", "pcapng", "big_endian", "entries", "by_length", "table", "generation", "found",
                 "added", "_templates", "_held", "_oldest", "_resting")

    def __init__(self, match_shapes: Callable[..., int], pcapng: bool = False) -> None:
        self.match_shapes = match_shapes
        self.pcapng = pcapng
        self.big_endian = False  # the byte order of the record headers (set by the stream)
        # by template number: a plan and its shape; a template of any length (a TCP flow's) has None
        # for plan and the plans of the frame lengths planned so far in ``by_length``
        self.entries: list[tuple[SegmentPlan | None, FrameLayout | TunnelShape | LinkShape]] = []
        self.by_length: list[dict[int, SegmentPlan]] = []
        self.table = b""  # every template, as _segment.match_shapes takes them
        self.generation = 0
        self.found = self.added = 0  # in the current chunk: records of a held shape, templates added
        self._templates: list[bytes] = []
        self._held: dict[bytes, int] = {}  # the templates' bytes (plans aside), and their numbers
        self._oldest = 0
        self._resting = 0

    def begin_chunk(self) -> bool:
        """Whether the next chunk's candidates are matched (and their new shapes added)."""
        churned = self.added >= self.CHURN and self.found * 4 < self.added
        self.found = self.added = 0
        if self._resting:
            self._resting -= 1
            return False
        if churned:
            self._resting = self.REST - 1
            return False
        return True

    def match(self, data: memoryview, offsets: bytearray, walked: int, first: int, stop: int, chunk_stop: int,
              codes: bytes | bytearray, ids: bytearray) -> int:
        """Each candidate's template number among records [first, stop) into ``ids`` (NONE: none)."""
        return self.match_shapes(data, offsets, walked, first, stop, chunk_stop, codes, ids, self.table, self.pcapng)

    def add(self, data: memoryview, pos: int, record_len: int, plan: SegmentPlan,
            shape: FrameLayout | TunnelShape | LinkShape, frame_len: int) -> None:
        """Remember the shape of the record at ``pos`` (``record_len`` bytes to the next one's offset,
        its frame ``frame_len`` bytes): a TCP packet's of a plain layout as a template of any length
        (its flow's packets of every length find it; a length not planned yet is planned by the caller
        and added here as another of the template's plans), any other's as a template of its length."""
        ranges, nonzero_at = layout_ranges(shape)
        lead = 4 if self.pcapng else 0
        length_at = length_less = -1
        if not isinstance(shape, TunnelShape | LinkShape) and not plan.udp:
            # the IP length field left out of the compared bytes: match_shapes checks it says the length
            length_at = shape.network + (2 if shape.ip_version == 4 else 4)
            length_less = shape.network + (0 if shape.ip_version == 4 else 40)
            ranges = tuple(piece for start, end in ranges
                           for piece in ((start, min(end, length_at)), (max(start, length_at + 2), end))
                           if piece[0] < piece[1])
            record_len -= (frame_len + 3) & ~3 if self.pcapng else frame_len
        record = data[pos - lead : pos + RECORD_HEADER_LEN + max([end for _, end in ranges] + [nonzero_at + 2])]
        # the bytes compared and nothing else (the same for every record of the shape): the interface
        # (pcapng), caplen and orig_len (a template of its record's length), the ranges
        prefix = bytearray(len(record))
        kept = [(0, lead), *(((lead + 8, lead + 16),) if length_at < 0 else ()),
                *((lead + RECORD_HEADER_LEN + start, lead + RECORD_HEADER_LEN + end) for start, end in ranges)]
        for start, end in kept:
            prefix[start:end] = record[start:end]
        # as fastpath.signed_in_run: TCP options with a signature end a run of one shape
        sig_start, sig_end = plan.l4_in + TCP_MIN_HLEN, plan.payload_at
        if plan.udp or sig_end <= sig_start:
            sig_start = sig_end = 0
        nonzero = nonzero_at >= 0 and record[lead + RECORD_HEADER_LEN + nonzero_at :][:2] != b"\0\0"
        padded = bytes(prefix + bytes(-len(prefix) % 8))
        # _segment.match_shapes' layout: the template's length in bytes and 10 fields, the ranges, the prefix
        fields = [8 * (11 + 2 * len(ranges)) + len(padded), record_len, nonzero_at, int(nonzero), sig_start, sig_end,
                  len(ranges), len(prefix), length_at, length_less, int(self.big_endian),
                  *(edge for pair in ranges for edge in pair)]
        template = array("q", fields).tobytes() + padded
        number = self._held.get(template)
        if number is not None:
            if length_at >= 0:
                self.by_length[number][frame_len] = plan
            return
        entry = (None if length_at >= 0 else plan, shape)
        lengths = {frame_len: plan} if length_at >= 0 else {}
        if len(self._templates) < self.LIMIT:
            number = len(self._templates)
            self._templates.append(template)
            self.entries.append(entry)
            self.by_length.append(lengths)
        else:
            number, self._oldest = self._oldest, (self._oldest + 1) % self.LIMIT
            del self._held[self._templates[number]]
            self._templates[number] = template
            self.entries[number] = entry
            self.by_length[number] = lengths
        self._held[template] = number
        self.table = b"".join(self._templates)
        self.generation += 1
        self.added += 1


class Iovecs:
    """A part to write as (base, length) pairs in order, and what they point into.

    ``vectors`` is a numpy uint64 array of pairs, or (``writev`` given: a function of the descriptor,
    ``vectors`` and ``pairs`` that writes them, returning the bytes written) any buffer of them,
    ``pairs`` long; or room for them, filled and written piece by piece by a ``writev`` that segments
    as it writes (a compiled primitive's ``later`` runs)."""

    __slots__ = ("vectors", "keep", "writev", "pairs")

    def __init__(self, vectors: Any, keep: tuple[Any, ...], writev: Callable[[int, Any, int], int] | None = None,
                 pairs: int = 0) -> None:
        self.vectors = vectors
        self.keep = keep  # the arrays the vectors point into, alive until written
        self.writev = writev
        self.pairs = pairs


class LateRuns:
    """Runs of super-packets planned by the segmenting thread and segmented by the writing one as it
    writes them: each payload byte is summed and then copied by the kernel (writev) on one core, while
    it is still in that core's cache. The kernel's copy out of a payload another core had just summed
    measured 0.04 s more CPU on 512 MiB (copy_folio_from_iter_atomic 27 % of the run against 21 %).
    ``segment()`` gives the part to write (a primitive's segment_runs with ``later``: an
    :class:`Iovecs` whose ``writev`` may do the segmenting too), ``account()`` counts the checksum
    states found once it is written."""

    __slots__ = ("segment", "account")

    def __init__(self, segment: Callable[[], Any], account: Callable[[], None] | None) -> None:
        self.segment = segment
        self.account = account


def write_parts(writer: CaptureWriter, parts: list[Any], records: int) -> None:
    """Write a chunk's parts in order: buffers through the writer, :class:`Iovecs` by writev of their
    array, :class:`LateRuns` segmented as they are written (their states counted then)."""
    start = 0
    for at, part in enumerate(parts):
        late = part if type(part) is LateRuns else None
        if late is not None:
            part = parts[at] = late.segment()
        if type(part) is Iovecs:
            if at > start:
                writer.write_framed(parts[start:at], 0)
            if part.writev is not None:
                writer.count_written(part.writev(writer.fileno(), part.vectors, part.pairs))
            else:
                from .numpy_primitive import writev_array

                writev_array(writer.fileno(), part.vectors)
            start = at + 1
        if late is not None and late.account is not None:
            late.account()
    writer.write_framed(parts[start:] if start else parts, records)


class _PartsSink:
    """A writer for :func:`softgso.cli.runner.segment_record` that appends what it writes to a chunk's parts."""

    __slots__ = ("encoder", "parts")

    def __init__(self, encoder: Any, parts: list[Any]) -> None:
        self.encoder = encoder
        self.parts = parts

    def write(self, record: CaptureRecord, data: bytes | memoryview | None = None) -> None:
        self.parts.extend(record_parts(self.encoder, record, data))


class _Checkpoint:
    """A stream's counts before one chunk (SegmentStream._checkpoint), and where the chunk lies."""

    __slots__ = ("pos", "index", "counts", "reports", "summary", "kinds", "interfaces", "interfaces_written",
                 "in_place", "upto")

    def __init__(self, pos: int, index: int, counts: dict[str, int], reports: int, summary: tuple[Any, ...],
                 kinds: int, interfaces: int, interfaces_written: int) -> None:
        self.pos, self.index = pos, index  # the chunk's offset in IN, its first record's index
        self.counts, self.reports, self.summary = counts, reports, summary
        self.kinds, self.interfaces, self.interfaces_written = kinds, interfaces, interfaces_written
        self.in_place = False  # read from IN's mapping (else into a buffer of its own)
        self.upto = 0  # the end of IN's bytes read for it


class SegmentStream:
    """Segment one classic pcap file into another; the caller finishes with the scalar stream if told."""

    def __init__(self, options: SegmentOptions, summary: Summary,
                 per_frame: Callable[[int, bytes], tuple[list[bytes], str | None]], primitive: Primitive) -> None:
        self.options = options
        self.summary = summary
        self.per_frame = per_frame
        self.primitive = primitive
        self.fast = primitive.fast
        self.counts = {"in": 0, "out": 0, "bytes_in": 0, "bytes_out": 0}
        self.reports: list[tuple[int, str]] = []
        self.small_limit, classify_small = short_frames(options, self.fast.enabled)
        # short frames whose checksum is a partial seed (every frame a host sends with checksum offload)
        # completed or left in bulk, by a primitive with complete_seeds; each class's action is learnt
        # from the scalar path on its first frame (_learn_seed)
        seeds = classify_small and bool(getattr(primitive, "SEEDS", False))
        self.bulk_small = (SMALL_CLASSIFY if classify_small else 0) | (SMALL_SEEDS if seeds else 0)
        self._seed_actions = bytearray(8)
        self._record_header = struct.Struct("<IIII")  # the input's byte order, set by run()
        self._blocks: PcapngInput | None = None  # a pcapng input (run_pcapng)
        self._kinds = bytearray()  # its interfaces' link kinds (LINK_KINDS, 0: the scalar path's)
        self._encoder: Any = None
        self._link, self._linktype = LINK_ETHERNET, LINKTYPE_ETHERNET  # a pcap input's link kind and type
        # link plans by (Ethernet shape key, link header), and the Ethernet plan each one moves
        self._link_plans: dict[tuple[bytes, bytes], tuple[SegmentPlan | None, LinkShape | None]] = {}
        self._ethernet_plans: dict[SegmentPlan, SegmentPlan] = {}
        # by plan: where its packets' L4 checksum lies and their seed without the length (_invalid_field)
        self._invalid_fields: dict[SegmentPlan, tuple[int, int]] = {}
        # the shapes of earlier runs, for the compiled walk (a primitive with match_shapes)
        self._shapes = (ShapeTable(primitive.match_shapes)  # type: ignore[attr-defined]
                        if getattr(primitive, "SHAPES", False) and self.fast.enabled else None)
        # checksum states counted by the writing thread (LateRuns), by the offset of their chunk in IN
        self._late_states: list[tuple[int, Counter[str]]] = []
        self._chunk_pos = 0

    def run(self, in_path: str | os.PathLike[str], writer: CaptureWriter, header_info: tuple[bytes, str, bool, int],
            progress: Callable[[int], None] | None = None, *, span: tuple[int, int | None, int] | None = None,
            linktype: int = LINKTYPE_ETHERNET) -> StreamResult:
        """Stream IN (a classic pcap of ``linktype``, one of LINK_KINDS) through the engine into
        ``writer``; returns counts, reports and where to resume."""
        _, order, nanosecond, snaplen = header_info
        self._link, self._linktype = LINK_KINDS[linktype], linktype
        self._encoder = writer.encoder
        self._big_endian = order != "little"
        if self._shapes is not None:
            self._shapes.big_endian = self._big_endian
        self._record_header = struct.Struct((">" if self._big_endian else "<") + "IIII")
        self._ticks, self._snap_limit = record_limits(nanosecond, snaplen)
        self._span = span or (FILE_HEADER_LEN, None, 0)
        fd = open_input(in_path)
        try:
            return self._pipeline(fd, os.fstat(fd).st_size, writer, progress)
        finally:
            os.close(fd)

    def run_pcapng(self, in_path: str | os.PathLike[str], writer: CaptureWriter, header: PcapngInput,
                   progress: Callable[[int], None] | None = None, *,
                   span: tuple[int, int | None, int] | None = None) -> StreamResult:
        """Stream a pcapng file's first section (or ``span``: from offset, to offset, first record
        index) through the engine into ``writer`` (open_writer shaped like ``header.reader``);
        returns counts, reports and where the scalar stream resumes."""
        self._blocks = header
        self._kinds = bytearray(header.kinds)  # interfaces described later are added (_interface_block)
        self._big_endian = header.big_endian
        if self._shapes is not None:
            self._shapes.pcapng = True  # (templates compare the interface too)
            self._shapes.big_endian = header.big_endian
        self._snap_limit = MAX_SNAPLEN_STANDARD
        self._span = span or (header.start, None, 0)
        self._encoder = writer.encoder
        if self._span[0] == header.start:  # (a part of a cut file after the first: they are the first's)
            for _, block in header.reader.head_blocks:
                writer.write_block(block)
        fd = open_input(in_path)
        try:
            return self._pipeline(fd, os.fstat(fd).st_size, writer, progress)
        finally:
            os.close(fd)

    def _pipeline(self, fd: int, size: int, writer: CaptureWriter,
                  progress: Callable[[int], None] | None) -> StreamResult:
        # IN mapped where it can be (a regular file, an output that can be cut back): the chunks are
        # read in place and only the input's last chunk is read into a buffer; else read into buffers
        mapped = self._mapped_input(fd, size, writer)
        try:
            return self._stream(fd, size, writer, progress, mapped)
        finally:
            if mapped is not None:
                mapped.release(every=True)

    def _stream(self, fd: int, size: int, writer: CaptureWriter, progress: Callable[[int], None] | None,
                mapped: MappedInput | None) -> StreamResult:
        primitive = self.primitive
        chunk_size = primitive.MAPPED_CHUNK_SIZE if mapped is not None else primitive.CHUNK_SIZE
        # A chunk's records start in its first chunk_size bytes; a chunk also holds the longest record
        # a bulk stream takes beyond that, so only the input's end cuts one short.
        read_size = chunk_size + MAX_FAST_RECORD
        blocks = self._blocks
        # (a pcapng walk's offsets run BLOCK_SHIFT bytes past a block's start: room for the last one's end)
        shift = BLOCK_SHIFT if blocks is not None else 0
        # segmenting, queued for writing, being written, spare: a buffer (and the arena its output
        # went to) is used again only once everything pointing into it is written. Anonymous
        # mappings: their pages come on first write (a bytearray is zeroed up front)
        turns = primitive.QUEUE_DEPTH + 3
        buffers = [mmap.mmap(-1, read_size + BLOCK_SHIFT) for _ in range(turns)]
        arenas = [mmap.mmap(-1, primitive.ARENA_SIZE) for _ in range(turns)]
        writes = Handoff(primitive.QUEUE_DEPTH)
        failure: list[BaseException] = []
        given_back: list[_Checkpoint] = []  # the first chunk the writer found read from a cut IN

        def cut_under(checkpoint: _Checkpoint | None) -> bool:
            """Whether the chunk of ``checkpoint`` was read in place from IN's mapping and IN has since
            been cut (or a guarded page answered): its bytes cannot be trusted."""
            return (checkpoint is not None and checkpoint.in_place and mapped is not None
                    and mapped.changed(checkpoint.upto))

        def write_chunk(parts: list[Any], records: int, checkpoint: _Checkpoint | None = None) -> None:
            if checkpoint is None:
                write_parts(writer, parts, records)
                return
            if given_back:
                return  # behind a chunk given back: the general reader writes it
            writer.fileno()  # (everything queued written: the chunk starts at bytes_written)
            before = writer.bytes_written, writer.records_written
            try:
                write_parts(writer, parts, records)
            except OSError as error:
                # the kernel's copy out of a page IN no longer has: EFAULT (after a short write)
                if error.errno != errno.EFAULT and (mapped is None or not mapped.changed(checkpoint.upto)):
                    raise
            except Exception:
                # runs segmented here (LateRuns) from garbage read where IN was cut (zeros)
                if not cut_under(checkpoint):
                    raise
            else:
                if not cut_under(checkpoint):
                    return
            writer.rewind(*before)  # IN was cut under the chunk: its records go to the general reader
            given_back.append(checkpoint)

        # while waiting for the next chunk, the writer reserves the output's next pages; not when it
        # segments (LateRuns): it is then the busier thread, and a page reserved (fallocate) and then
        # written costs more CPU than one written (measured: 0.02-0.03 s more on 512 MiB, at one core)
        reserve = None if primitive.LATE_SUMS else writer.reserve_ahead
        write_out = write_stage(writes.get, write_chunk, size, failure, reserve=reserve)

        thread = threading.Thread(target=write_out, daemon=True)
        # With no core to spare, a writing thread gains no wall time and costs CPU (the kernel's copy
        # at writev reads each payload on another core than the one that summed it, and the GIL
        # goes back and forth): chunks read in place are then written by this thread, right after
        # their sums (measured on 512 MiB at load 3.5-5.4: 7 % less CPU, wall no longer).
        inline = mapped is not None and no_core_free()
        # the writer gives the GIL back for every writev and needs it again right after: with the
        # default 5 ms switch interval it waits on the segmenting thread far longer than it writes
        # (measured: segment and write wall times 3x their CPU times)
        switch_interval = sys.getswitchinterval()
        if not inline:
            sys.setswitchinterval(primitive.SWITCH_INTERVAL)
            thread.start()
        result = StreamResult(self.counts, self.reports)
        pos, span_end, index = self._span
        end = size if span_end is None else min(span_end, size)
        capacity = chunk_size // (BLOCK_OVERHEAD if blocks is not None else RECORD_HEADER_LEN) + 1
        offsets = bytearray(8 * capacity)
        codes = bytearray(capacity)
        lengths = bytearray(4 * capacity) if blocks is not None else None
        turn = 0
        carried: bytes | memoryview = b""  # the input from pos already read, past the last chunk's records
        stopped: _Checkpoint | None = None  # the chunk this thread found read from a cut IN
        try:
            while pos < end and not failure and not given_back:
                checkpoint = self._checkpoint(pos, index, writer) if mapped is not None else None
                in_place = mapped is not None and pos + read_size + shift <= end
                if in_place:
                    assert mapped is not None and checkpoint is not None
                    buffer: Any = mapped.view(pos, read_size + shift)
                    if buffer is None:
                        stopped = checkpoint
                        break
                    got = read_size
                    checkpoint.in_place, checkpoint.upto = True, pos + read_size + shift
                else:
                    buffer = buffers[turn % turns]
                    got = fill(fd, buffer, carried, pos, min(read_size, end - pos))
                    if got == 0:  # IN cut short before pos: the general reader says so
                        result.resume_index = index
                        result.resume_offset = pos
                        break
                try:
                    data = memoryview(buffer)[:got]
                    if blocks is not None and lengths is not None:
                        count, after, stop = primitive.scan_blocks(
                            data, min(chunk_size, got), self._big_endian, self._kinds, blocks.spb_snaplen,
                            self._snap_limit, self.small_limit, self.bulk_small, offsets, codes, lengths)
                    else:
                        count, after, stop = primitive.scan(data, min(chunk_size, got), self._big_endian,
                                                            self._ticks, self._snap_limit, self.small_limit,
                                                            self.bulk_small, offsets, codes, self._link)
                    arena = arenas[turn % turns]
                    turn += 1
                    self._chunk_pos = pos
                    chunk_codes = bytes(codes[:count])
                    parts, records = self._plan_chunk(memoryview(buffer)[: got + shift], offsets, chunk_codes, index,
                                                      after + shift, arena, lengths)
                except Exception:
                    # garbage read where IN was cut (zeros): the general reader's from this chunk on
                    if not cut_under(checkpoint):
                        raise
                    stopped = checkpoint
                    break
                if cut_under(checkpoint):
                    stopped = checkpoint  # read (in part) after IN was cut: not written
                    break
                index += count - (chunk_codes.count(CODE_DROPPED) if blocks is not None else 0)
                pos += after
                carried = data[after:] if mapped is None else b""
                if inline:
                    write_chunk(parts, records, checkpoint)
                else:
                    item = (parts, records, pos) if checkpoint is None else (parts, records, pos, checkpoint)
                    while not writes.put(item, timeout=0.1):
                        if failure or not thread.is_alive():
                            break
                if progress is not None:
                    progress(pos)
                if stop and blocks is not None:
                    # an interface described after the first packet: taken, and the walk goes on
                    described = self._interface_block(fd, pos)
                    if described:
                        pos += described
                        carried = b""
                        continue
                if stop:
                    result.resume_index = index
                    result.resume_offset = pos
                    break
        finally:
            if not inline:
                writes.put(None)
                thread.join()
                sys.setswitchinterval(switch_interval)
        if failure:
            raise failure[0]
        # IN cut underneath: back to the counts before the first chunk not written, and the general
        # reader from there (its records before the cut written as the scalar path writes them, the
        # cut reported as it reports it)
        back = given_back[0] if given_back else stopped
        if back is not None:
            self._rewind(back, writer)
            result.resume_index = back.index
            result.resume_offset = back.pos
        # the states the writing thread counted (the summary's checkpoints never held them): those of
        # the chunks written
        late, self._late_states[:] = list(self._late_states), []
        for chunk_pos, states in late:
            if back is None or chunk_pos < back.pos:
                self.summary.input_checksums.update(states)
        return result

    def _mapped_input(self, fd: int, size: int, writer: CaptureWriter) -> MappedInput | None:
        """IN mapped (chunks.MappedInput), when the primitive reads a mapping under its SIGBUS guard, IN
        is a regular file and OUT can be cut back (an atomic output: its temporary file); else None."""
        window = self.primitive.WINDOW_SIZE
        if not window or not writer.atomic or not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunk_len = self.primitive.MAPPED_CHUNK_SIZE + MAX_FAST_RECORD + BLOCK_SHIFT
        return MappedInput(fd, size, max(window, 2 * chunk_len), self.primitive.GUARD)

    def _checkpoint(self, pos: int, index: int, writer: CaptureWriter) -> _Checkpoint:
        """What this stream has counted before the chunk at ``pos`` (record ``index``)."""
        blocks = self._blocks
        return _Checkpoint(pos, index, dict(self.counts), len(self.reports), self.summary.checkpoint(),
                           len(self._kinds), len(blocks.reader.interfaces) if blocks is not None else 0,
                           getattr(writer.encoder, "interfaces_written", 0))

    def _rewind(self, checkpoint: _Checkpoint, writer: CaptureWriter) -> None:
        """Back to ``checkpoint``: the chunks from there on are the general reader's."""
        self.counts.clear()
        self.counts.update(checkpoint.counts)
        del self.reports[checkpoint.reports :]
        self.summary.rewind(checkpoint.summary)
        del self._kinds[checkpoint.kinds :]
        blocks = self._blocks
        if blocks is not None:
            del blocks.reader.interfaces[checkpoint.interfaces :]
        if hasattr(writer.encoder, "interfaces_written"):
            writer.encoder.interfaces_written = checkpoint.interfaces_written

    def _plan_chunk(self, data: memoryview, offsets_buffer: bytearray, codes: bytes, index: int,
                    chunk_stop: int, arena: mmap.mmap, lengths_buffer: bytearray | None = None,
                    ) -> tuple[list[Any], int]:
        """The output of one chunk (its records at ``offsets_buffer`` in ``data``), in order, and how
        many records it holds.

        Super-packets wait in ``pending`` as runs (plan, first record, records) until a record of
        another kind comes (or the chunk ends); then the primitive segments all of them at once.
        pcapng: offsets are BLOCK_SHIFT past each block's start (chunk_stop too), ``lengths_buffer``
        holds every record's caplen (uint32), and dropped blocks (CODE_DROPPED) are no records.
        """
        count = len(codes)
        pcapng = lengths_buffer is not None
        shift = BLOCK_SHIFT if pcapng else 0
        lengths = memoryview(lengths_buffer).cast("I") if lengths_buffer is not None else None
        dropped = pcapng and CODE_DROPPED in codes
        offsets = memoryview(offsets_buffer).cast("q")
        parts: list[Any] = []
        written = 0
        fast = self.fast
        alike = self.primitive.alike
        pending: list[tuple[SegmentPlan | None, Any, int]] = []
        # records passed through or completed while runs are pending join them as runs of bytes, written in
        # their place by the same call (a primitive whose later segment_runs takes them): flows whose
        # super-packets alternate with short frames (ACKs) make one call a chunk, not one a packet
        raw_runs = (getattr(self.primitive, "RAW_RUNS", False) and self.primitive.LATE_SUMS
                    and getattr(self.primitive, "SCATTER", False))
        arena_state = [0]
        # each candidate's shape among those of earlier runs, found by the compiled walk: the whole
        # chunk at once, then (a template added since: ids_of, the generation ids are of, is old)
        # record by record
        shapes = self._shapes if self._shapes is not None and self._shapes.begin_chunk() else None
        ids = bytearray([ShapeTable.NONE]) * count if shapes is not None else bytearray()
        # interfaces of several link kinds: alike compares bytes alone, and the same bytes on an
        # interface of another link kind are another packet (a template compares the interface too)
        mixed_links = pcapng and len(set(self._kinds) - {0}) > 1
        ids_of = -1
        if shapes is not None:
            if shapes.entries:
                shapes.match(data, offsets_buffer, count, 0, count, chunk_stop, codes, ids)
            ids_of = shapes.generation

        def flush_pending() -> None:
            nonlocal written
            if pending:
                item, segments = self._bulk(pending, offsets, data, arena, arena_state, pcapng)
                parts.append(item)
                written += segments
                pending.clear()

        try:
            for first, stop in code_spans(codes):
                kind = codes[first]
                if kind == CODE_DROPPED:
                    # blocks that hold no packet: those about the capture written as they are, in place
                    self._other_blocks(data, offsets, first, stop, shift, parts, flush_pending)
                    continue
                if kind == CODE_SEED:
                    # (their parts are bytes: runs of bytes among the pending runs, where there are any)
                    done: list[Any] = [] if raw_runs and pending else parts
                    if done is parts:
                        flush_pending()
                    written += self._complete_seeds(index, data, offsets_buffer, count, first, stop, chunk_stop,
                                                    lengths_buffer, codes, done)
                    if done is not parts:
                        pending.extend((None, part, 0) for part in done)
                    continue
                if kind <= CODE_NO_LAYOUT:
                    # short frames left untouched: their records (blocks), byte for byte, in one piece
                    if not (raw_runs and pending):
                        flush_pending()
                    start = offsets[first] - shift
                    finish = (offsets[stop] if stop < count else chunk_stop) - shift
                    if lengths is not None:
                        nbytes = sum(lengths[first:stop])
                    else:
                        nbytes = finish - start - RECORD_HEADER_LEN * (stop - first)
                    if raw_runs and pending:
                        pending.append((None, data[start:finish], 0))
                    else:
                        parts.append(data[start:finish])
                    self._count_untouched(stop - first, nbytes, state_counts(codes[first:stop]),
                                          nbytes + self._link_framing(data, offsets, first, stop))
                    written += stop - first
                    continue
                number = first
                while number < stop:
                    pos = offsets[number]
                    following = offsets[number + 1] if number + 1 < count else chunk_stop
                    if lengths is not None:
                        if kind != CODE_CANDIDATE:
                            flush_pending()
                            skipped = codes.count(CODE_DROPPED, 0, number) if dropped else 0
                            written += self._one_block(index + number - skipped, data, pos - shift, parts)
                            number += 1
                            continue
                        frame = data[pos + RECORD_HEADER_LEN : pos + RECORD_HEADER_LEN + lengths[number]]
                    else:
                        frame = data[pos + RECORD_HEADER_LEN : following]
                    if kind == CODE_CANDIDATE:
                        plan: SegmentPlan | None
                        shape: FrameLayout | TunnelShape | LinkShape | None
                        known = unplanned = ShapeTable.NONE
                        if shapes is not None:
                            if ids_of != shapes.generation:
                                shapes.match(data, offsets_buffer, count, number, number + 1, chunk_stop, codes, ids)
                            known = ids[number]
                            shapes.found += known != ShapeTable.NONE
                        if shapes is not None and known != ShapeTable.NONE:
                            plan, shape = shapes.entries[known]
                            if plan is None:  # a template of any length: the plan of this frame's, if planned
                                plan = shapes.by_length[known].get(len(frame))
                                if plan is None:
                                    known, unplanned = ShapeTable.NONE, known
                        if known == ShapeTable.NONE:
                            link = self._link if self._blocks is None else self._kinds[
                                int.from_bytes(data[pos - 4 : pos], "big" if self._big_endian else "little")]
                            if link == LINK_ETHERNET:
                                key_found = fast.key_of(frame)
                                plan = fast.plan_for(frame, *key_found) if key_found is not None else None
                                shape = key_found[1] if key_found is not None else None
                            else:
                                plan, shape = self._link_plan(frame, link)
                            if plan is not None and unplanned != ShapeTable.NONE:
                                # the frame matched that template: its shape's template is that one
                                shapes.by_length[unplanned][len(frame)] = plan  # type: ignore[union-attr]
                            elif plan is not None and shape is not None and shapes is not None:
                                shapes.add(data, pos, following - pos, plan, shape, len(frame))  # (counted there)
                        if plan is not None and shape is not None:
                            # the packets that follow with this one's shape (a burst of one flow) share its plan:
                            # where the walk matched them all (no template added since), those of this one's
                            # template (each has its shape and no signature, as alike and signed_in_run find)
                            walked = known != ShapeTable.NONE and shapes is not None and ids_of == shapes.generation
                            if walked and shapes.entries[known][0] is not None:  # type: ignore[union-attr]
                                following_ids = ids[number + 1 : stop]
                                same = len(following_ids) - len(following_ids.lstrip(ids[number : number + 1]))
                            elif walked and (number + 1 == stop or ids[number + 1] != known):
                                # the next record has another template or none (flows taking turns): a record
                                # of this one's shape would have matched its template, whatever its length
                                same = 0
                            else:
                                same = alike(data, offsets_buffer, count, number, stop, chunk_stop, shape)
                                if same:
                                    same = signed_in_run(data, offsets, number, same, RECORD_HEADER_LEN, plan)
                                if same and mixed_links:
                                    same = self._same_link(data, offsets, number, same)
                            pending.append((plan, number, 1 + same))
                            number += 1 + same
                            continue
                    flush_pending()
                    if lengths is not None:
                        skipped = codes.count(CODE_DROPPED, 0, number) if dropped else 0
                        written += self._one_block(index + number - skipped, data, pos - shift, parts)
                    elif self._link != LINK_ETHERNET:
                        written += self._one_link_record(index + number, data, pos, frame, parts)
                    else:
                        written += self._one_record(index + number, data, pos, following, frame, parts)
                    number += 1
            flush_pending()
        finally:
            offsets.release()
            if lengths is not None:
                lengths.release()
        return parts, written

    def _same_link(self, data: memoryview, offsets: memoryview, first: int, count: int) -> int:
        """How many of the ``count`` pcapng records after ``first`` come before the first on an
        interface of another link kind than its own (an EPB's interface: the 4 bytes before its offset)."""
        order: Literal["big", "little"] = "big" if self._big_endian else "little"
        kinds = self._kinds

        def kind(number: int) -> int:
            at = offsets[number]
            return kinds[int.from_bytes(data[at - 4 : at], order)]

        own = kind(first)
        for number in range(first + 1, first + 1 + count):
            if kind(number) != own:
                return number - first - 1
        return count

    def _bulk(self, pending: list[tuple[SegmentPlan | None, Any, int]], offsets: memoryview, data: memoryview,
              arena: mmap.mmap, arena_state: list[int], pcapng: bool = False) -> tuple[Any, int]:
        """Segment runs of same-plan super-packets by the primitive, counted; (the part to write, segments).
        ``pending`` may hold runs of bytes to write in their place, (None, buffer, 0), counted already
        (the planner's raw runs)."""
        runs: list[tuple[SegmentPlan, int, int]] = [run for run in pending if run[0] is not None]  # type: ignore[misc]
        packets = sum(count for _, _, count in runs)
        codes = bytearray([NO_CODE]) * packets
        later = self.primitive.LATE_SUMS
        part = self.primitive.segment_runs(pending, data, offsets, self._big_endian, arena, arena_state, codes,
                                           pcapng, later=later)
        segments_total = 0
        counted = False
        number = 0
        counts = self.counts
        # counted by plan: interleaved flows make runs of one packet
        packets_of: dict[SegmentPlan, int] = {}
        for plan, _, count in runs:
            packets_of[plan] = packets_of.get(plan, 0) + count
            if plan.classify:
                counted = True
            elif plan.forced_state is not None:
                counted = True
                codes[number : number + count] = bytes([CODE_STATES.index(plan.forced_state)]) * count
            number += count
        for plan, count in packets_of.items():
            segs = plan.segments
            full_len, last_len = plan.segment_lengths()
            bytes_out = full_len * (segs - 1) + last_len
            # the summary counts the Ethernet frames the engine sees (as the scalar path's does)
            seen = self._ethernet_plans.get(plan, plan)
            seen_full, seen_last = seen.segment_lengths()
            self.summary.add_run(count, seen.frame_len, segs, seen_full * (segs - 1) + seen_last, {},
                                 plan.partial or plan.outer_left)
            counts["in"] += count
            counts["out"] += count * segs
            counts["bytes_in"] += count * plan.frame_len
            counts["bytes_out"] += count * bytes_out
            segments_total += count * segs
        if not later:
            if counted:
                self.summary.input_checksums.update(self._states(runs, codes, offsets, 0, data))
            return part, segments_total
        if not counted:
            return LateRuns(part, None), segments_total
        # counted once segmented, on the writing thread: the runs' record offsets kept (the chunk's
        # offsets are the next chunk's by then), the counts handed back by chunk (_late_states)
        low, high = runs[0][1], runs[-1][1] + runs[-1][2]
        starts = memoryview(offsets[low:high].tobytes()).cast("q")
        chunk_pos, late_states, taken = self._chunk_pos, self._late_states, list(runs)  # (runs: the planner's, reused)

        def account() -> None:
            late_states.append((chunk_pos, self._states(taken, codes, starts, low, data)))

        return LateRuns(part, account), segments_total

    def _states(self, runs: list[tuple[SegmentPlan, int, int]], codes: bytearray, starts: memoryview, low: int,
                data: memoryview) -> Counter[str]:
        """The input checksum states of the runs' packets, ``codes`` as the primitive left them (one a
        packet); ``starts[n - low]``: record n's offset in ``data``."""
        renamed: Counter[str] = Counter()  # packets the bulk code calls invalid, named by the scalar path
        number = 0
        for plan, first, count in runs:
            # a checksum the bulk code calls invalid is named by the scalar path: rare, so found by
            # bytearray.find (C) rather than a Python loop over every packet of the run
            offset = codes.find(CODE_INVALID, number, number + count)
            field = None
            while offset != -1:
                at_frame = starts[first + offset - number - low] + RECORD_HEADER_LEN
                if field is None:
                    field = self._invalid_field(plan, data[at_frame : at_frame + plan.frame_len])
                check_at, seed_nolen = field
                renamed[name_neither(int.from_bytes(data[at_frame + check_at : at_frame + check_at + 2], "big"),
                                     seed_nolen).value] += 1
                codes[offset] = NO_CODE
                offset = codes.find(CODE_INVALID, offset + 1, number + count)
            number += count
        # states in the order the packets came, whatever their shape
        states = Counter(state_counts(codes))
        states.update(renamed)
        return states

    def _invalid_field(self, plan: SegmentPlan, frame: memoryview) -> tuple[int, int]:
        """Where the packets of ``plan`` keep the L4 checksum the scalar path names (in the record's
        frame), and the seed without the length of their addresses (the plan's shape holds them),
        from ``frame``, one of them (fastpath.invalid_field), found once a plan."""
        field = self._invalid_fields.get(plan)
        if field is not None:
            return field
        seen = self._ethernet_plans.get(plan)
        ethernet: bytes | memoryview = frame
        if seen is not None:
            # another link type: read as the Ethernet frame the scalar path sees (its header the
            # Ethernet plan's, the link header's length the plans' difference)
            ethernet = seen.template_full[:14] + frame[plan.frame_len - seen.frame_len + 14 :]
        found = self.fast.key_of(ethernet)  # (a tunnelled packet's state is its inner packet's)
        check_at, seed_nolen = invalid_field(ethernet, found[1] if found is not None else None)
        if seen is not None:
            check_at += plan.frame_len - seen.frame_len
        if len(self._invalid_fields) > 4096:
            self._invalid_fields.clear()
        field = self._invalid_fields[plan] = (check_at, seed_nolen)
        return field

    def _complete_seeds(self, index: int, data: memoryview, offsets_buffer: bytearray, count: int, first: int,
                        stop: int, chunk_stop: int, lengths_buffer: bytearray | None, codes: bytes,
                        parts: list[Any]) -> int:
        """Records ``first`` to ``stop`` of the chunk: short Ethernet frames whose checksum is a partial
        seed, sent as one frame each. The primitive completes (or leaves) the seeds of the classes whose
        action is known; a frame of a class not known yet goes to the scalar path, which teaches its
        class (:meth:`_learn_seed`), as does one no action fits. Records out."""
        shift = BLOCK_SHIFT if lengths_buffer is not None else 0
        offsets = memoryview(offsets_buffer).cast("q")
        written = 0
        number = first
        try:
            while number < stop:
                out, done, left, nbytes, stopped = self.primitive.complete_seeds(  # type: ignore[attr-defined]
                    data, offsets_buffer, count, number, stop, chunk_stop, shift, lengths_buffer, self._seed_actions)
                if done:
                    parts.append(out)
                    self.summary.add_completed(done, nbytes, left)
                    self._count_through(done, nbytes)
                    written += done
                    number += done
                if number == stop:
                    break
                if 0 <= stopped < 8 and self._seed_actions[stopped] == SEED_UNKNOWN:
                    self._learn_seed(stopped, data, offsets_buffer, count, number, chunk_stop, lengths_buffer)
                pos = offsets[number]
                if lengths_buffer is not None:
                    skipped = codes.count(CODE_DROPPED, 0, number)
                    written += self._one_block(index + number - skipped, data, pos - shift, parts)
                else:
                    following = offsets[number + 1] if number + 1 < count else chunk_stop
                    written += self._one_record(index + number, data, pos, following,
                                                data[pos + RECORD_HEADER_LEN : following], parts)
                number += 1
        finally:
            offsets.release()
        return written

    def _learn_seed(self, kind: int, data: memoryview, offsets_buffer: bytearray, count: int, number: int,
                    chunk_stop: int, lengths_buffer: bytearray | None) -> None:
        """The action of frame class ``kind`` (see SEED_*), from what the scalar path makes of record
        ``number``, its first frame (stream.seed_action), if complete_seeds then writes those very bytes
        with it. Anything else: SEED_SCALAR."""
        shift = BLOCK_SHIFT if lengths_buffer is not None else 0
        at = memoryview(offsets_buffer).cast("q")[number] + RECORD_HEADER_LEN
        caplen = (memoryview(lengths_buffer).cast("I")[number] if lengths_buffer is not None else
                  (memoryview(offsets_buffer).cast("q")[number + 1] if number + 1 < count else chunk_stop) - at)
        frame = bytes(data[at : at + caplen])
        result = self.fast.oracle(frame)
        action = seed_action(result, caplen)
        if action != SEED_SCALAR:
            trial = bytearray(8)
            trial[kind] = action
            out, done, _, _, _ = self.primitive.complete_seeds(  # type: ignore[attr-defined]
                data, offsets_buffer, count, number, number + 1, chunk_stop, shift, lengths_buffer, trial)
            frame_at = RECORD_HEADER_LEN + shift
            if done != 1 or out[frame_at : frame_at + caplen] != result.frames[0]:
                action = SEED_SCALAR
        self._seed_actions[kind] = action

    def _one_record(self, index: int, view: memoryview, pos: int, following: int, frame: memoryview,
                    parts: list[Any]) -> int:
        """A record for the scalar path (or a snapped one, passed through): its output appended; records out."""
        counts = self.counts
        seconds, fraction, caplen, orig_len = self._record_header.unpack_from(view, pos)
        counts["in"] += 1
        counts["bytes_in"] += caplen
        if orig_len > caplen:
            from ..job import snapped_report

            self.summary.add_passthrough(index, caplen, *snapped_report(frame, caplen, orig_len, self.options.device.mtu))
            parts.append(view[pos:following])
            counts["out"] += 1
            counts["bytes_out"] += caplen
            return 1
        frames, reason = self.per_frame(index, bytes(frame))
        if reason:
            self.reports.append((index, reason))
        pack = self._record_header.pack
        for out_frame in frames:
            parts.append(pack(seconds, fraction, len(out_frame), len(out_frame)))
            parts.append(out_frame)
            counts["out"] += 1
            counts["bytes_out"] += len(out_frame)
        return len(frames)

    def _interface_block(self, fd: int, offset: int) -> int:
        """Take the Interface Description Block at ``offset`` of IN, if there is one there, as the
        general reader does (softgso.io.pcapng.interface_of, into the interfaces the output's encoder
        writes IDBs from, when a record first needs them); its length, or 0 (not one, or broken: the
        general reader takes over there). Its records go to the scalar path (kind 0): their IDB is
        written where the scalar stream writes it. An interface whose frames end in an FCS (if_fcslen)
        is not taken either: the general reader takes the FCS off its frames and makes it anew on what
        it writes (as pcapng_header leaves a file that describes one before its first packet to it)."""
        from ..io.pcapng import BT_IDB, MAX_BLOCK_LEN, interface_of

        blocks = self._blocks
        assert blocks is not None
        order: Literal["big", "little"] = "big" if self._big_endian else "little"
        head = os.pread(fd, 8, offset)
        if len(head) < 8 or int.from_bytes(head[:4], order) != BT_IDB:
            return 0
        length = int.from_bytes(head[4:], order)
        if not 20 <= length <= MAX_BLOCK_LEN or length % 4:
            return 0
        block = os.pread(fd, length, offset)
        if len(block) < length or int.from_bytes(block[-4:], order) != length:
            return 0
        interface = interface_of(block, memoryview(block)[8:-4], order)
        if interface.fcs_len:
            return 0
        blocks.reader.interfaces.append(interface)
        self._kinds.append(0)
        return length

    def _link_framing(self, data: memoryview, offsets: memoryview, first: int, stop: int) -> int:
        """How many bytes longer the Ethernet frames the engine sees of records ``first`` to ``stop``
        are than the records' frames (14 less each one's link header)."""
        blocks = self._blocks
        if blocks is None:
            return (14 - LINK_HEADER_LEN[self._link]) * (stop - first)
        kinds = self._kinds
        taken = set(kinds) - {0}  # (records of kind 0 are never copied through in bulk)
        if len(taken) == 1:
            return (14 - LINK_HEADER_LEN[taken.pop()]) * (stop - first)
        # interfaces of several link kinds: each record's own (an SPB's is interface 0's)
        order: Literal["big", "little"] = "big" if self._big_endian else "little"
        extra = 0
        for number in range(first, stop):
            at = offsets[number] - BLOCK_SHIFT
            epb = int.from_bytes(data[at : at + 4], order) == BT_EPB
            interface = int.from_bytes(data[at + 8 : at + 12], order) if epb else 0
            extra += 14 - LINK_HEADER_LEN[kinds[interface]]
        return extra

    def _link_plan(self, frame: memoryview, link: int) -> tuple[SegmentPlan | None, LinkShape | None]:
        """The plan and shape of a super-packet of another link kind than Ethernet: the plan of the
        Ethernet frame softgso.io.cooked.to_ethernet makes of it (as the scalar path segments it),
        moved behind the record's own link header (link_plan); (None, None): the scalar path's."""
        from ..io.cooked import to_ethernet
        from ..io.record import CaptureRecord

        view = to_ethernet(CaptureRecord(0, 0, KIND_LINKTYPE[link], frame, len(frame)))
        if view is None:
            return None, None
        ethernet = bytes(view.frame)
        fast = self.fast
        found = fast.key_of(ethernet)
        plan = fast.plan_for(ethernet, *found) if found is not None else None
        if plan is None or found is None:
            return None, None
        header = bytes(frame[: LINK_HEADER_LEN[link]])
        key = (found[0], header)
        known = self._link_plans.get(key)
        if known is None:
            if len(self._link_plans) > 4096:
                self._link_plans.clear()
            moved = link_plan(plan, header, ethernet)
            # accepted only if it writes what the Ethernet plan writes, in the record's link type
            if moved is not None and fast.reproduce([bytes(frame)], moved)[0] != [
                    header + piece[14:] for piece in fast.reproduce([ethernet], plan)[0]]:
                moved = None
            shape = link_shape(found[1], len(header)) if moved is not None else None
            known = self._link_plans[key] = (moved, shape)
            if moved is not None:
                self._ethernet_plans[moved] = plan
        return known

    def _one_link_record(self, index: int, view: memoryview, pos: int, frame: memoryview, parts: list[Any]) -> int:
        """A pcap record of another link type than Ethernet for the scalar path, as the general reader
        reads it and the scalar stream writes it: its output appended; records out."""
        from ..io.record import CaptureRecord

        seconds, fraction, _, orig_len = self._record_header.unpack_from(view, pos)
        scale = NS_PER_SECOND // self._ticks
        record = CaptureRecord(index, seconds * NS_PER_SECOND + fraction * scale, self._linktype, frame, orig_len)
        return self._scalar_record(record, parts)

    def _scalar_record(self, record: CaptureRecord, parts: list[Any]) -> int:
        """``record`` through softgso.cli.runner.segment_record, its output appended; records out."""
        from ..cli.runner import segment_record

        before = self.counts["out"]
        segment_record(record, _PartsSink(self._encoder, parts), self.per_frame, self.counts, self.reports,
                       self.summary.add_passthrough, self.options.device.mtu)
        return self.counts["out"] - before

    def _other_blocks(self, data: memoryview, offsets: memoryview, first: int, stop: int, shift: int,
                      parts: list[Any], flush_pending: Callable[[], None]) -> None:
        """Blocks ``first`` to ``stop`` of a chunk, none a packet, as the scalar stream writes them
        (softgso.io.pcapng.OTHER_BLOCKS_KEPT, where the output keeps its input's blocks; others not)."""
        from ..io.pcapng import OTHER_BLOCKS_KEPT

        header = struct.Struct((">" if self._big_endian else "<") + "II")
        for number in range(first, stop):
            start = offsets[number] - shift
            block_type, length = header.unpack_from(data, start)
            if block_type in OTHER_BLOCKS_KEPT:
                kept = self._encoder.other_block(data[start : start + length])
                if kept is not None:
                    flush_pending()
                    parts.append(kept)

    def _one_block(self, index: int, view: memoryview, start: int, parts: list[Any]) -> int:
        """A pcapng packet block (at ``start``) for the scalar path, as the general reader reads it and
        the scalar stream writes it (softgso.cli.runner.segment_record): its output appended; records out."""
        from ..io.pcapng import BT_EPB, EPB_FIXED_LEN, packet_record, simple_packet_caplen
        from ..io.record import CaptureRecord

        blocks = self._blocks
        assert blocks is not None
        prefix = ">" if self._big_endian else "<"
        block_type, length = struct.unpack_from(prefix + "II", view, start)
        block = view[start : start + length]
        body = block[8 : length - 4]
        interfaces = blocks.reader.interfaces
        if block_type == BT_EPB:
            fields = struct.unpack_from(prefix + "IIIII", body)
            record = packet_record(index, interfaces[fields[0]], fields[0], body, fields, EPB_FIXED_LEN, prefix,
                                   block)
        else:
            (orig_len,) = struct.unpack_from(prefix + "I", body)
            interface = interfaces[0]
            caplen = simple_packet_caplen(orig_len, len(body), interface.snaplen)
            record = CaptureRecord(index, 0, interface.linktype, body[4 : 4 + caplen], orig_len, 0, block=block)
        return self._scalar_record(record, parts)

    def _count_untouched(self, packets: int, nbytes: int, states: dict[str, int], seen_bytes: int | None = None,
                         ) -> None:
        """Summary and counters for ``packets`` records copied through (``nbytes`` of frames; the
        summary counts ``seen_bytes``, the Ethernet frames the engine sees, when they differ)."""
        self.summary.add_unchanged(packets, nbytes if seen_bytes is None else seen_bytes, states)
        self._count_through(packets, nbytes)

    def _count_through(self, packets: int, nbytes: int) -> None:
        """The stream's counters for ``packets`` records of ``nbytes`` of frames sent as one frame each."""
        counts = self.counts
        counts["in"] += packets
        counts["out"] += packets
        counts["bytes_in"] += nbytes
        counts["bytes_out"] += nbytes


__all__ = ["BLOCK_SHIFT", "CODE_DROPPED", "Iovecs", "NO_CODE", "Primitive", "SegmentStream", "layout_ranges", "state_counts", "write_parts"]
