"""The numpy primitive of the bulk pipeline (:mod:`softgso.bulk.pipeline`): its per-chunk work without C.

The same signature as :class:`softgso.bulk.compiled_primitive.CompiledPrimitive`, the same bytes:
the record walk's fields are gathered and checked in bulk (the walk itself in
``softgso.bulk._csum`` where built, else one Python step per record); short frames are classified by
:func:`softgso.bulk.fastpath.classify_frames`; runs of a shape are found by comparing their header
bytes; and the super-packets of one plan, wherever they lie in the chunk, are segmented by one
:meth:`softgso.bulk.fastpath.FastSegmenter.segment_scattered` call, which builds only their headers
(each behind its pcap record header) in an arena. The part to write is a list of iovecs, a header
then its payload pointing into the read buffer, handed to ``writev``: numpy copies no payload.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING, Any

from ..constants import ETH_HLEN
from ..io.pcap import RECORD_HEADER_LEN
from ..io.pcapng import (
    BT_EPB,
    BT_IDB,
    BT_PB,
    BT_SHB,
    BT_SPB,
    EPB_FIXED_LEN,
    packet_options,
    simple_packet_caplen,
)
from .fastpath import (
    CODE_CANDIDATE,
    CODE_NO_LAYOUT,
    CODE_PARTIAL,
    CODE_SCALAR,
    TUNNEL_PORTS,
    FastSegmenter,
    LinkShape,
    TunnelShape,
    classify_frames,
    scalar_ports,
)
from .native import load_extension
from .pipeline import CODE_DROPPED, LINK_ETHERNET, Iovecs, layout_ranges
from .stream import KIND_LINKTYPE

if TYPE_CHECKING:
    import mmap

    import numpy as np

    from ..job import SegmentOptions
    from ..prepare import FrameLayout
    from .fastpath import SegmentPlan

EPB_HEAD_LEN = 8 + EPB_FIXED_LEN  # an Enhanced Packet Block up to its packet
# softgso.bulk._csum's record walk (numpy and Python alone without it)
_CSUM: Any = load_extension("_csum")


class NumpyPrimitive:
    """The bulk pipeline's per-chunk work in numpy (see softgso.bulk.pipeline for the signature)."""

    CHUNK_SIZE = 8 << 20
    QUEUE_DEPTH = 1
    # a chunk's segment headers (with record headers): 8 MiB of 1448-byte segments need 0.6 MiB
    ARENA_SIZE = 2 << 20
    SWITCH_INTERVAL = 0.0002  # seconds; see pipeline._pipeline
    LATE_SUMS = False  # (its input read into buffers: segmented by the planning thread)
    # IN is read, never mapped (the SIGBUS guard of a mapping is softgso.bulk._segment's)
    WINDOW_SIZE = 0
    MAPPED_CHUNK_SIZE = CHUNK_SIZE
    GUARD: Any = None

    def __init__(self, options: SegmentOptions) -> None:
        self.fast = FastSegmenter(options)
        self._ports = scalar_ports(options)  # UDP ports whose short frames are the scalar path's
        self._ranges: dict[Any, tuple[tuple[tuple[int, int], ...], int]] = {}

    def scan(self, data: memoryview, chunk_end: int, big_endian: bool, ticks: int, snap_limit: int,
             small_limit: int, bulk_small: int, offsets: bytearray, codes: bytearray,
             link: int = 1) -> tuple[int, int, bool]:
        """The pcap record walk and short-frame codes of one chunk, as _segment.scan gives them.

        The walk from record to record is the one per-record step (it reads only caplen); the other
        header fields are gathered and checked in bulk afterwards.
        """
        import numpy as np

        got = len(data)
        capacity = len(offsets) // 8
        cut = False
        if _CSUM is not None:
            count, at, cut_flag = _CSUM.walk_records(data, 0, got, chunk_end, big_endian, offsets)
            cut = bool(cut_flag)
        else:
            caplen_at = struct.Struct((">" if big_endian else "<") + "8xI").unpack_from
            place = struct.Struct("<q").pack_into
            count = at = 0
            while at < chunk_end and count < capacity:
                if got - at < RECORD_HEADER_LEN:
                    cut = True  # a record header cut short: the general reader reports it
                    break
                following = at + RECORD_HEADER_LEN + caplen_at(data, at)[0]
                if following > got:
                    cut = True  # a record cut short: the general reader reports it
                    break
                place(offsets, 8 * count, at)
                count += 1
                at = following
        starts = np.frombuffer(offsets, dtype=np.int64, count=count)
        code = np.full(count, CODE_SCALAR, dtype=np.int8)
        if count:
            buffer = np.frombuffer(data, dtype=np.uint8)
            # fraction, caplen, orig_len of every record at once
            heads = np.ascontiguousarray(buffer[starts[:, None] + np.arange(4, 16)[None, :]]).view(
                ">u4" if big_endian else "<u4").astype(np.int64)
            caplen, orig_len = heads[:, 1], heads[:, 2]
            unusual = (caplen > snap_limit) | (heads[:, 0] >= ticks)
            if unusual.any():
                # unusual (absurd length, fraction beyond a second): the general reader takes it from here
                count = int(np.argmax(unusual))
                at = int(starts[count])
                cut = True
                starts, caplen, orig_len, code = starts[:count], caplen[:count], orig_len[:count], code[:count]
            code = record_codes(buffer, starts + RECORD_HEADER_LEN, caplen, orig_len, np.full(count, link),
                                small_limit, bool(bulk_small), self._ports)
            np.frombuffer(codes, dtype=np.int8, count=count)[:] = code
        return count, at, cut

    def scan_blocks(self, data: memoryview, chunk_end: int, big_endian: bool, kinds: bytes | bytearray, spb_snaplen: int,
                    snap_limit: int, small_limit: int, bulk_small: int, offsets: bytearray, codes: bytearray,
                    lengths: bytearray) -> tuple[int, int, bool]:
        """The pcapng block walk and short-frame codes of one chunk, as _segment.scan_blocks gives them
        (one Python step per block; short frames classified in bulk afterwards)."""
        import numpy as np

        prefix = ">" if big_endian else "<"
        block_header = struct.Struct(prefix + "II").unpack_from
        word = struct.Struct(prefix + "I").unpack_from
        epb_fields = struct.Struct(prefix + "IIIII").unpack_from
        got, capacity = len(data), len(offsets) // 8
        starts: list[int] = []
        dropped: list[bool] = []
        # per record: its frame's offset, caplen, orig_len and link kind (0: the scalar path's)
        frame_at: list[int] = []
        frame_lens: list[int] = []
        orig_lens: list[int] = []
        links: list[int] = []
        pos, stop = 0, False
        while pos < chunk_end and len(starts) < capacity:
            if got - pos < 12:
                stop = True
                break
            block_type, length = block_header(data, pos)
            if length < 12 or length % 4 or length > got - pos or word(data, pos + length - 4)[0] != length:
                stop = True
                break
            at, frame_len, orig_len, link = pos + 12, 0, 0, 0
            if block_type == BT_EPB:
                if length < 32:
                    stop = True
                    break
                interface, _, _, frame_len, orig_len = epb_fields(data, pos + 8)
                if interface >= len(kinds) or frame_len > length - 32 or frame_len > snap_limit:
                    stop = True
                    break
                at = pos + 28
                body = data[pos + 8 : pos + length - 4]
                options_at = EPB_FIXED_LEN + frame_len + -frame_len % 4
                comment, fcs_len = packet_options(body, options_at, prefix)
                if fcs_len:
                    stop = True  # a frame that ends in an FCS: the general reader takes it (its FCS off, then made anew)
                    break
                link = 0 if comment is not None else kinds[interface]
            elif block_type == BT_SPB:
                if length < 16 or not kinds:
                    stop = True
                    break
                (orig_len,) = word(data, pos + 8)
                frame_len = simple_packet_caplen(orig_len, length - 12, spb_snaplen)
                if frame_len > snap_limit:
                    stop = True
                    break
                link = kinds[0] | SIMPLE  # never a candidate
            elif block_type in (BT_SHB, BT_IDB, BT_PB):
                stop = True
                break
            starts.append(pos + 12)
            dropped.append(block_type not in (BT_EPB, BT_SPB))
            frame_at.append(at)
            frame_lens.append(frame_len)
            orig_lens.append(orig_len)
            links.append(link)
            pos += length
        count = len(starts)
        lens = np.array(frame_lens, dtype=np.int64)
        link_kinds = np.array(links, dtype=np.int64)
        block_codes = record_codes(np.frombuffer(data, dtype=np.uint8), np.array(frame_at, dtype=np.int64), lens,
                                   np.array(orig_lens, dtype=np.int64), link_kinds & ~SIMPLE, small_limit,
                                   bool(bulk_small), self._ports)
        block_codes[(block_codes == CODE_CANDIDATE) & (link_kinds & SIMPLE != 0)] = CODE_SCALAR
        block_codes[np.array(dropped, dtype=bool)] = CODE_DROPPED
        np.frombuffer(offsets, dtype=np.int64, count=count)[:] = starts
        np.frombuffer(codes, dtype=np.int8, count=count)[:] = block_codes
        np.frombuffer(lengths, dtype=np.uint32, count=count)[:] = frame_lens
        return count, pos, stop

    def alike(self, data: memoryview, offsets: bytearray, records: int, first: int, stop: int, chunk_stop: int,
              layout: FrameLayout | TunnelShape | LinkShape) -> int:
        """How many records after ``first`` have its shape: the same record lengths and the same bytes
        in the shape's ranges (pipeline.layout_ranges), as _segment.same_shape counts them."""
        found = self._ranges.get(layout)
        if found is None:
            if len(self._ranges) > 4096:
                self._ranges.clear()
            found = self._ranges[layout] = layout_ranges(layout)
        ranges, nonzero_at = found
        at = memoryview(offsets).cast("q")
        try:
            base = at[first]
            length = (at[first + 1] if first + 1 < records else chunk_stop) - base
            lengths = data[base + 8 : base + 16]
            frame = base + RECORD_HEADER_LEN
            wanted = [data[frame + start : frame + end] for start, end in ranges]
            flag = nonzero_at >= 0 and data[frame + nonzero_at : frame + nonzero_at + 2] != b"\0\0"
            same = 0
            for number in range(first + 1, stop):
                here = at[number]
                end = at[number + 1] if number + 1 < records else chunk_stop
                # the record headers differ (timestamps): only their lengths must agree
                if end - here != length or data[here + 8 : here + 16] != lengths:
                    break
                frame = here + RECORD_HEADER_LEN
                if nonzero_at >= 0 and (data[frame + nonzero_at : frame + nonzero_at + 2] != b"\0\0") != flag:
                    break
                if any(data[frame + start : frame + end] != piece
                       for (start, end), piece in zip(ranges, wanted, strict=True)):
                    break
                same += 1
            return same
        finally:
            at.release()

    def segment_runs(self, runs: list[tuple[SegmentPlan | None, Any, int]], data: memoryview, offsets: memoryview,
                     big_endian: bool, arena: mmap.mmap, arena_state: list[int], codes: bytearray,
                     pcapng: bool = False, later: bool = False) -> Iovecs:
        """The runs' segments as iovecs in input order: headers (behind their record headers, or
        pcapng EPB headers) built in ``arena`` (or a new array when it is full), payloads pointing
        into ``data`` (each EPB's padding and trailing length after it); one segment_scattered call
        per plan, wherever its packets lie in the chunk. (It takes no runs of bytes: no RAW_RUNS.)"""
        import numpy as np

        if any(plan is None for plan, _, _ in runs):
            raise ValueError("segment_runs: the numpy primitive takes no runs of bytes")

        buffer = np.frombuffer(data, dtype=np.uint8)
        space_all = np.frombuffer(arena, dtype=np.uint8)
        record_at = np.frombuffer(offsets, dtype=np.int64)
        prefix = ">" if big_endian else "<"
        by_plan: dict[SegmentPlan, list[int]] = {}  # the runs of each plan, by position in ``runs``
        for position, (plan, _, _) in enumerate(runs):
            by_plan.setdefault(plan, []).append(position)  # type: ignore[arg-type]
        numbers = np.cumsum([0] + [count for _, _, count in runs])
        blocks: list[Any] = [None] * len(runs)
        code_view = np.frombuffer(codes, dtype=np.uint8)
        keep: list[Any] = [buffer]
        for plan, positions in by_plan.items():
            records = np.concatenate([record_at[runs[p][1] : runs[p][1] + runs[p][2]] for p in positions])
            count = records.size
            segs = plan.segments
            prefix_len = EPB_HEAD_LEN if pcapng else RECORD_HEADER_LEN
            head_len = prefix_len + plan.header_len
            size = count * segs * head_len
            used = arena_state[0]
            if used + size <= space_all.size:
                space = space_all[used : used + size]
                arena_state[0] = used + size
            else:
                space = np.empty(size, dtype=np.uint8)
                keep.append(space)
            headers = space.reshape(count, segs, head_len)
            starts = records + RECORD_HEADER_LEN
            result = self.fast.segment_scattered(plan, buffer, starts, headers, prefix=prefix_len)
            full_len, last_len = plan.segment_lengths()
            pieces = 3 if pcapng else 2
            iov = np.empty((count, segs, pieces, 2), dtype=np.uint64)
            if pcapng:
                # every segment an EPB: its length, the input's interface and timestamp, its own
                # length as caplen and orig_len; after it, padding and the trailing length
                tails = []
                for at, seg_len in ((slice(None, -1), full_len), (-1, last_len)):
                    block_len = EPB_HEAD_LEN + seg_len + -seg_len % 4 + 4
                    headers[:, at, :8] = np.frombuffer(struct.pack(prefix + "II", BT_EPB, block_len), dtype=np.uint8)
                    headers[:, at, 20:28] = np.frombuffer(struct.pack(prefix + "II", seg_len, seg_len), dtype=np.uint8)
                    tail = np.frombuffer(bytes(-seg_len % 4) + struct.pack(prefix + "I", block_len), dtype=np.uint8)
                    tails.append(tail)
                    iov[:, at, 2, 0] = tail.ctypes.data
                    iov[:, at, 2, 1] = tail.size
                keep.extend(tails)
                headers[:, :, 8:20] = buffer[records[:, None] - 4 + np.arange(12)[None, :]][:, None, :]
            else:
                # every segment's record header: the input's timestamp, its own length as caplen and orig_len
                headers[:, :, :8] = buffer[records[:, None] + np.arange(8)[None, :]][:, None, :]
                headers[:, :-1, 8:16] = np.frombuffer(struct.pack(prefix + "II", full_len, full_len), dtype=np.uint8)
                headers[:, -1, 8:16] = np.frombuffer(struct.pack(prefix + "II", last_len, last_len), dtype=np.uint8)
            iov[:, :, 0, 0] = (space.ctypes.data
                               + np.arange(count * segs, dtype=np.uint64).reshape(count, segs) * head_len)
            iov[:, :, 0, 1] = head_len
            payload = (buffer.ctypes.data + starts + plan.payload_at).astype(np.uint64)
            iov[:, :, 1, 0] = payload[:, None] + plan.seq_steps.astype(np.uint64)[None, :]
            iov[:, :-1, 1, 1] = plan.mss
            iov[:, -1, 1, 1] = plan.last_len
            vectors = iov.reshape(count * pieces * segs, 2)
            row = 0
            for position in positions:
                run_count = runs[position][2]
                blocks[position] = vectors[row * pieces * segs : (row + run_count) * pieces * segs]
                if result.codes is not None and plan.classify:
                    code_view[numbers[position] : numbers[position] + run_count] = result.codes[row : row + run_count]
                row += run_count
        return Iovecs(np.concatenate(blocks), tuple(keep))


SIMPLE = 0x100  # a link kind's flag in scan_blocks: the record is a Simple Packet Block


def record_codes(buffer: np.ndarray, starts: np.ndarray, caplen: np.ndarray, orig_len: np.ndarray,
                 links: np.ndarray, small_limit: int, bulk_small: bool,
                 ports: tuple[int, ...] = TUNNEL_PORTS) -> np.ndarray:
    """Every record's code as _segment.c's record_code gives it: frames at ``starts`` of ``links``
    link kinds (softgso.bulk.stream.LINK_KINDS; 0: the scalar path's); a short frame to a UDP port of
    ``ports`` (fastpath.scalar_ports) is the scalar path's. A frame of another link type
    than Ethernet is read as the Ethernet frame to_ethernet makes of it (its ethertype and header
    length found by softgso.io.cooked.link_header, one record at a time)."""
    import numpy as np

    from ..io.cooked import link_header

    count = starts.size
    code = np.full(count, CODE_SCALAR, dtype=np.int8)
    ethernet = links == LINK_ETHERNET
    ethertypes = np.zeros(count, dtype=np.int64)
    heads = np.full(count, ETH_HLEN, dtype=np.int64)
    for number in np.flatnonzero((links > 0) & ~ethernet):
        start = int(starts[number])
        found = link_header(buffer[start : start + int(caplen[number])].data, KIND_LINKTYPE[int(links[number])])
        if found is not None:
            ethertypes[number], heads[number] = found
    convertible = ethernet | (ethertypes > 0)
    length = caplen - heads + ETH_HLEN  # as the Ethernet frame the engine sees
    candidate = convertible & (length > small_limit) & (orig_len <= caplen)
    code[candidate] = CODE_CANDIDATE
    if bulk_small:
        for kind in (ethernet, ~ethernet):
            small = kind & convertible & ~candidate & (orig_len == caplen)
            if not small.any():
                continue
            classified = classify_frames(buffer, (starts + heads - ETH_HLEN)[small], length[small],
                                         None if kind is ethernet else ethertypes[small], ports)
            # a partial seed is completed by the scalar path; so is a frame of no layout on another link type
            classified[(classified == CODE_PARTIAL) | ((classified == CODE_NO_LAYOUT) & (kind is not ethernet))] = (
                CODE_SCALAR)
            code[small] = classified
    return code


_libc_writev: Any = None


def writev_array(fd: int, vectors: np.ndarray) -> None:
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


__all__ = ["NumpyPrimitive", "writev_array"]
