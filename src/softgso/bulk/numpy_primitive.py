"""``softgso segment`` for classic pcap files of Ethernet frames, in bulk: a thin frontend.

Strategy: a reader thread reads the file in chunks of about :data:`CHUNK_SIZE` bytes of complete
records into a few reused buffers; runs of consecutive super-packets of one shape go to
:class:`softgso.bulk.fastpath.FastSegmenter`, which builds every segment's headers (each behind its
pcap record header) in a reused arena; the write is a list of iovecs, a header then its payload
pointing into the chunk's buffer, handed to ``writev``; everything else goes through the scalar
:func:`softgso.job.process_frame` one record at a time. Reading, segmenting and writing overlap in
three threads (the read, the numpy work and the write release the GIL). A buffer goes back to the
reader only once everything pointing into it is written. Resident memory is bounded by the
:data:`INPUT_BUFFERS` buffers and :data:`HEADER_ARENAS` arenas, whatever the file size.

Anything unusual (pcapng, a link type other than Ethernet, a record longer than a chunk, a
timestamp fraction beyond one second, a truncated file) is left to the general reader: from that
record on, the scalar stream takes over, so its output and its error messages are the scalar
path's own.
"""

from __future__ import annotations

import os
import queue
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..io.pcap import FILE_HEADER_LEN, RECORD_HEADER_LEN
from ..io.writer import CaptureWriter
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
    import numpy as np

    from ..job import SegmentOptions, Summary
    from .fastpath import FastSegmenter, SegmentPlan

CHUNK_SIZE = 8 << 20
# a chunk's records start in its first CHUNK_SIZE bytes; a buffer also holds the longest record a
# bulk stream takes beyond that, so only the input's end cuts one short
READ_SIZE = CHUNK_SIZE + MAX_FAST_RECORD
HEADER_ARENAS = 4  # segmenting, queued for writing, being written, spare
# a chunk's segment headers (with record headers): 8 MiB of 1448-byte segments need 0.6 MiB
ARENA_SIZE = 2 << 20
QUEUE_DEPTH = 1
INPUT_BUFFERS = 2 * QUEUE_DEPTH + 3  # being read, queued, being segmented, queued for writing, being written
SWITCH_INTERVAL = 0.0002  # seconds; see _pipeline


@dataclass
class _Chunk:
    """Complete records of one read: (offset, caplen, orig_len) each, and where they start in the file."""

    buffer: np.ndarray
    records: np.ndarray  # (records, 3): offset, caplen, orig_len
    first_index: int
    file_offset: int  # where the input stands after the chunk's records
    release: Callable[[], None]  # gives the buffer back, once written
    stop_index: int | None = None  # the general reader takes over at this record


class BulkSegmentStream(BulkStream):
    """Segment one classic pcap file into another; the caller finishes with the scalar stream if told."""

    def __init__(self, options: SegmentOptions, summary: Summary,
                 per_frame: Callable[[int, bytes], tuple[list[bytes], str | None]]) -> None:
        from .fastpath import FastSegmenter

        self.fast: FastSegmenter = FastSegmenter(options)
        super().__init__(options, summary, per_frame, self.fast.enabled)

    def run(self, in_path: Path, writer: CaptureWriter, header_info: tuple[bytes, str, bool, int],
            progress: Callable[[int], None] | None = None, *, span: tuple[int, int | None, int] | None = None,
            ) -> StreamResult:
        """Stream IN through the engine into ``writer``; returns counts, reports and where to resume."""
        import numpy as np

        header, order, nanosecond, snaplen = header_info
        self._prefix = "<" if order == "little" else ">"
        self._record_header = struct.Struct(self._prefix + "IIII")
        self._ticks, self._snap_limit = record_limits(nanosecond, snaplen)
        arenas = [np.empty(ARENA_SIZE, dtype=np.uint8) for _ in range(HEADER_ARENAS)]
        self._span = span or (FILE_HEADER_LEN, None, 0)
        fd = open_input(in_path)
        try:
            return self._pipeline(fd, os.fstat(fd).st_size, arenas, writer, progress)
        finally:
            os.close(fd)

    # -- the three stages ------------------------------------------------------------------------

    def _pipeline(self, fd: int, size: int, arenas: list[np.ndarray], writer: CaptureWriter,
                  progress: Callable[[int], None] | None) -> StreamResult:
        import numpy as np

        chunks: queue.Queue[Any] = queue.Queue(QUEUE_DEPTH)
        writes: queue.Queue[Any] = queue.Queue(QUEUE_DEPTH)
        free: queue.Queue[Any] = queue.Queue()  # input buffers nothing points into any more
        for _ in range(INPUT_BUFFERS):
            free.put(np.empty(READ_SIZE, dtype=np.uint8))
        failure: list[BaseException] = []
        stop = threading.Event()

        def reader() -> None:
            try:
                for chunk in self._read_chunks(fd, size, free, stop):
                    while not stop.is_set():
                        try:
                            chunks.put(chunk, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            except BaseException as error:  # noqa: BLE001 - handed to the main thread
                failure.append(error)
            chunks.put(None)

        write_out = write_stage(writes.get, lambda parts, records: _write_parts(writer, parts, records), size,
                                failure, stop.set)

        threads = [threading.Thread(target=reader, daemon=True), threading.Thread(target=write_out, daemon=True)]
        # the writer gives the GIL back for every writev of IOV_MAX vectors and needs it again right
        # after: with the default 5 ms switch interval it waits on the segmenting thread far longer
        # than it writes (measured: segment and write wall times 3x their CPU times)
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        for thread in threads:
            thread.start()
        result = StreamResult(self.counts, self.reports)
        arena_turn = 0
        try:
            while True:
                chunk = chunks.get()
                if chunk is None or failure:
                    break
                arena = arenas[arena_turn % len(arenas)]
                arena_turn += 1
                parts, records = self._segment_chunk(chunk, arena)
                writes.put((parts, records, chunk.file_offset, chunk.release))
                if progress is not None:
                    progress(chunk.file_offset)
                if chunk.stop_index is not None:
                    result.resume_index = chunk.stop_index
                    result.resume_offset = chunk.file_offset
                    break
        finally:
            stop.set()
            writes.put(None)
            while threads[0].is_alive():
                try:
                    chunks.get(timeout=0.05)
                except queue.Empty:
                    pass
            for thread in threads:
                thread.join()
            sys.setswitchinterval(switch_interval)
        if failure:
            raise failure[0]
        return result

    def _read_chunks(self, fd: int, size: int, free: queue.Queue[Any], stop: threading.Event) -> Iterator[_Chunk]:
        """Chunks of about CHUNK_SIZE bytes of complete records, each read into a buffer from ``free``.

        The walk from record to record is the one per-record Python loop (it reads only caplen);
        the other header fields are gathered and checked in bulk afterwards. The bytes after a
        chunk's last record are carried to the next buffer, so each input byte is read once.
        """
        import numpy as np

        caplen_at = struct.Struct(self._prefix + "8xI").unpack_from
        # (first byte, end byte or None for end of file, index of the first record): a --jobs part
        pos, span_end, index = self._span
        end = size if span_end is None else min(span_end, size)
        order = "<u4" if self._prefix == "<" else ">u4"
        fields = np.arange(4, 16, dtype=np.int64)
        from .fastpath import _CSUM

        walker = _CSUM.walk_records if _CSUM is not None else None
        carried = b""
        while pos < end:
            buffer = None
            while buffer is None and not stop.is_set():
                try:
                    buffer = free.get(timeout=0.1)
                except queue.Empty:
                    continue
            if buffer is None:
                return
            got = fill(fd, buffer, carried, pos, min(READ_SIZE, end - pos))
            view = memoryview(buffer)
            chunk_end = min(CHUNK_SIZE, got)
            at = 0  # in the buffer; the file offset is pos + at
            starts: Any = []
            append = starts.append
            stopped: int | None = None
            first_index = index
            if walker is not None:
                # the same walk in C (softgso.bulk._csum); a chunk holds at most one record per 16 bytes, plus one
                found = np.empty(chunk_end // RECORD_HEADER_LEN + 1, dtype=np.int64)
                count, at, cut = walker(buffer[:got], 0, got, chunk_end, self._prefix == ">", found)
                starts = found[:count]
                index += count
                if cut:
                    stopped = index
            while walker is None and at < chunk_end:
                if got - at < RECORD_HEADER_LEN:
                    stopped = index  # a record header cut short: the general reader reports it
                    break
                following = at + RECORD_HEADER_LEN + caplen_at(view, at)[0]
                if following > got:
                    stopped = index  # a record cut short: the general reader reports it
                    break
                append(at)
                at = following
                index += 1
            table = np.empty((len(starts), 3), dtype=np.int64)
            if len(starts):
                table[:, 0] = starts
                # fraction, caplen, orig_len of every record at once
                heads = np.ascontiguousarray(buffer[table[:, 0:1] + fields[None, :]]).view(order)
                table[:, 1] = heads[:, 1]
                table[:, 2] = heads[:, 2]
                unusual = (heads[:, 1] > self._snap_limit) | (heads[:, 0] >= self._ticks)
                if unusual.any():
                    # unusual (absurd length, fraction beyond a second): the general reader takes it from here
                    first_bad = int(np.argmax(unusual))
                    table = table[:first_bad]
                    stopped = first_index + first_bad
                    at = int(starts[first_bad])
            view.release()
            carried = bytes(buffer[at:got])
            pos += at
            if got == 0:
                stopped = index  # IN shorter than it was: the general reader tells what is there
            yield _Chunk(buffer, table, first_index, pos, partial(free.put, buffer), stopped)
            if stopped is not None or pos >= end:
                return

    def _segment_chunk(self, chunk: _Chunk, arena: np.ndarray) -> tuple[list[Any], int]:
        """The output of one chunk: super-packets and untouched frames in bulk, the rest record by record.

        Super-packets wait in ``pending`` until a record of another kind comes (or the chunk ends);
        then all of them are segmented at once, one bulk computation per shape wherever its packets
        lie in the chunk. Returns the parts to write, in order, and how many records they hold.
        """
        import numpy as np

        from .fastpath import CODE_NO_LAYOUT, CODE_PARTIAL, CODE_SCALAR, classify_frames

        buffer = chunk.buffer
        view = memoryview(buffer)  # type: ignore[arg-type]
        parts: list[Any] = []
        written = 0
        fast = self.fast
        small_limit = self.small_limit
        index = chunk.first_index
        table = chunk.records
        total = table.shape[0]
        pending: list[tuple[SegmentPlan, int]] = []
        arena_state = [0]

        def flush_pending() -> None:
            nonlocal written
            if pending:
                item, segments = self._bulk(pending, buffer, arena, arena_state)
                parts.append(item)
                written += segments
                pending.clear()

        # frames that leave untouched, found in bulk: a code per record (see fastpath.classify_frames)
        passing = np.zeros(total, dtype=bool)
        codes = np.full(total, CODE_NO_LAYOUT, dtype=np.int8)
        if self.bulk_small and total:
            small = (table[:, 1] <= small_limit) & (table[:, 2] == table[:, 1])
            if small.any():
                codes[small] = classify_frames(buffer, table[small, 0] + RECORD_HEADER_LEN, table[small, 1])
                passing = small & (codes != CODE_PARTIAL) & (codes != CODE_SCALAR)
        edges = (np.flatnonzero(np.diff(passing.astype(np.int8))) + 1).tolist()
        for first, stop in zip([0, *edges], [*edges, total], strict=True):
            if first == stop:
                continue
            if passing[first]:
                # their records, byte for byte, in one piece
                flush_pending()
                start = int(table[first, 0])
                end = int(table[stop - 1, 0] + RECORD_HEADER_LEN + table[stop - 1, 1])
                parts.append(view[start:end])
                self._count_codes(codes[first:stop], int(table[first:stop, 1].sum()))
                written += stop - first
                index += stop - first
                continue
            for pos, caplen, orig_len in table[first:stop].tolist():
                frame = view[pos + RECORD_HEADER_LEN : pos + RECORD_HEADER_LEN + caplen]
                if caplen > small_limit and orig_len <= caplen:
                    found = fast.key_of(frame)
                    plan = fast.plan_for(frame, *found) if found is not None else None
                    if plan is not None:
                        pending.append((plan, pos))
                        index += 1
                        continue
                flush_pending()
                written += self._one_record(index, view, pos, pos + RECORD_HEADER_LEN + caplen, frame, parts)
                index += 1
        flush_pending()
        return parts, written

    def _count_codes(self, codes: np.ndarray, nbytes: int) -> None:
        """_count_untouched for frames copied through, their states from the codes, in order of first appearance."""
        from .fastpath import CODE_NO_LAYOUT, states_in_order

        with_state = codes[codes != CODE_NO_LAYOUT]
        self._count_untouched(codes.size, nbytes, states_in_order(with_state) if with_state.size else {})

    def _bulk(self, pending: list[tuple[SegmentPlan, int]], buffer: np.ndarray, arena: np.ndarray,
              arena_state: list[int]) -> tuple[_Iovecs, int]:
        """Segment the pending super-packets (plan, record offset), shape by shape; their writes in order.

        Only the headers are built (in ``arena``, each behind its pcap record header); the write is
        a list of iovecs, header then payload, the payload pointing into the mapped input.
        """
        from collections import Counter

        import numpy as np

        from .fastpath import CODE_INVALID, name_invalid, states_in_order

        renamed: Counter[str] = Counter()  # packets the bulk code calls invalid, named by the scalar path
        by_plan: dict[SegmentPlan, list[int]] = {}
        for number, (plan, _) in enumerate(pending):
            by_plan.setdefault(plan, []).append(number)
        blocks: list[Any] = [None] * len(pending)
        codes = np.full(len(pending), -1, dtype=np.int8)
        keep: list[Any] = [buffer]
        segments_total = 0
        for plan, numbers in by_plan.items():
            count = len(numbers)
            segs = plan.segments
            head_len = RECORD_HEADER_LEN + plan.header_len
            size = count * segs * head_len
            used = arena_state[0]
            if used + size <= arena.size:
                space = arena[used : used + size]
                arena_state[0] = used + size
            else:
                space = np.empty(size, dtype=np.uint8)
                keep.append(space)
            headers = space.reshape(count, segs, head_len)
            records = np.fromiter((pending[n][1] for n in numbers), dtype=np.int64, count=count)
            starts = records + RECORD_HEADER_LEN
            result = self.fast.segment_scattered(plan, buffer, starts, headers, prefix=RECORD_HEADER_LEN)
            full_len, last_len = plan.segment_lengths()
            # every segment's record header: the input's timestamp, its own length as caplen and orig_len
            headers[:, :, :8] = buffer[records[:, None] + np.arange(8)[None, :]][:, None, :]
            headers[:, :-1, 8:16] = np.frombuffer(struct.pack(self._prefix + "II", full_len, full_len),
                                                  dtype=np.uint8)
            headers[:, -1, 8:16] = np.frombuffer(struct.pack(self._prefix + "II", last_len, last_len), dtype=np.uint8)
            iov = np.empty((count, segs, 2, 2), dtype=np.uint64)
            iov[:, :, 0, 0] = (space.ctypes.data
                               + np.arange(count * segs, dtype=np.uint64).reshape(count, segs) * head_len)
            iov[:, :, 0, 1] = head_len
            payload = (buffer.ctypes.data + starts + plan.payload_at).astype(np.uint64)
            iov[:, :, 1, 0] = payload[:, None] + plan.seq_steps.astype(np.uint64)[None, :]
            iov[:, :-1, 1, 1] = plan.mss
            iov[:, -1, 1, 1] = plan.last_len
            vectors = iov.reshape(count, 2 * segs, 2)
            for row, number in enumerate(numbers):
                blocks[number] = vectors[row]
            if result.codes is not None:
                codes[numbers] = result.codes
                for row in np.flatnonzero(result.codes == CODE_INVALID).tolist():
                    start = int(starts[row])
                    renamed[name_invalid(buffer[start : start + plan.frame_len].tobytes())] += 1
                    codes[numbers[row]] = -1
            bytes_out = full_len * (segs - 1) + last_len
            self.summary.add_run(count, plan.frame_len, segs, bytes_out, {}, plan.partial or plan.outer_left)
            counts = self.counts
            counts["in"] += count
            counts["out"] += count * segs
            counts["bytes_in"] += count * plan.frame_len
            counts["bytes_out"] += count * bytes_out
            segments_total += count * segs
        counted = codes[codes >= 0]
        if counted.size:
            # states in the order the packets came, whatever their shape
            for state, number in states_in_order(counted).items():
                self.summary.input_checksums[state] += number
        self.summary.input_checksums.update(renamed)
        return _Iovecs(np.concatenate(blocks), tuple(keep)), segments_total


@dataclass
class _Iovecs:
    """(base, length) pairs to write in order, and the arrays they point into (kept alive until written)."""

    vectors: np.ndarray
    keep: tuple[Any, ...]


_libc_writev: Any = None


def _writev_array(fd: int, vectors: np.ndarray) -> None:
    """writev(2) over an array of struct iovec, IOV_MAX at a time, resuming after short writes."""
    import ctypes

    import numpy as np

    from ..io.writer import IOV_MAX

    global _libc_writev
    if _libc_writev is None:
        function = ctypes.CDLL(None, use_errno=True).writev
        function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
        function.restype = ctypes.c_ssize_t
        _libc_writev = function
    vectors = np.ascontiguousarray(vectors, dtype=np.uint64)
    start, total = 0, vectors.shape[0]
    while start < total:
        batch = min(IOV_MAX, total - start)
        lengths = vectors[start : start + batch, 1]
        done = _libc_writev(fd, vectors.ctypes.data + start * 16, batch)
        if done < 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))
        if done == int(lengths.sum()):
            start += batch
            continue
        # a short write: skip the vectors written whole, trim the one written in part
        ends = np.cumsum(lengths)
        whole = int(np.searchsorted(ends, done, side="right"))
        already = done - (int(ends[whole - 1]) if whole else 0)
        start += whole
        vectors[start, 0] += already
        vectors[start, 1] -= already


def _write_parts(writer: CaptureWriter, parts: list[Any], records: int) -> None:
    """Write a chunk's output in order: Python buffers through the writer, iovec arrays directly."""
    plain: list[Any] = []
    for part in parts:
        if isinstance(part, _Iovecs):
            if plain:
                writer.write_framed(plain, 0)
                plain = []
            _writev_array(writer.fileno(), part.vectors)
        else:
            plain.append(part)
    writer.write_framed(plain, records)


__all__ = ["BulkSegmentStream"]
