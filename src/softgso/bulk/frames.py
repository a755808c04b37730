"""The frames of a capture a chunk at a time, for the checkers (``softgso diff``): the bulk reader's
record walk (softgso.bulk._segment's scan and scan_blocks) without the segmenting.

:class:`BulkFrames` reads a classic pcap or a pcapng file of Ethernet frames in chunks and hands
out its frames as the general reader does (``(record index, frame bytes, True)``, one at a time),
or, asked through :meth:`BulkFrames.tcp_segments`, takes a whole run of them at once: the segments
of one frame of A that softgso.check.flowdiff would judge intact without a word, recognised by
the compiled walk softgso.bulk._records (see there). Whatever the walk does not take (a record cut
short, a broken block, a second section, an interface described late...) is read by the general
reader from that record on, so that every frame, and every error, is the general reader's.

:func:`count_records` counts a file's records with the same walk (the general reader's count
where the walk stops). :func:`open_bulk_frames` is None for a file the walk does not take (a FIFO,
standard input, a compressed file, a link type other than Ethernet) or where the compiled modules
are not built: the caller reads it with the general reader.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..errors import CaptureError
from ..io.record import LINKTYPE_ETHERNET
from .chunks import fill, open_input
from .native import load_extension
from .stream import MAX_FAST_RECORD, pcap_header, pcapng_header, record_limits

if TYPE_CHECKING:
    from ..check.flowdiff import Unit

CHUNK_SIZE = 4 << 20
BLOCK_SHIFT = 12  # a pcapng walk's offsets are its blocks' starts + 12 (_segment.scan_blocks)
MIN_RECORD = 16  # a pcap record header, or the least an SPB takes
CODE_DROPPED = 7  # a pcapng block that holds no packet (_segment.scan_blocks)

FrameItem = tuple[int, bytes, bool]


@dataclass(frozen=True, slots=True)
class FrameBatch:
    """The frames of one walked chunk handed out together (:meth:`BulkFrames.next_batch`): frames
    ``first`` to ``stop`` of the arrays, record ``index`` the first of them. ``heads``: where each
    one's record (pcap) or block (pcapng) starts in ``buffer``; ``starts``/``spans``: its frame;
    ``codes``: its _segment.scan code (with short frames classified when the reader was opened so).
    The arrays and the buffer are the reader's: valid until its next chunk but one."""

    index: int
    first: int
    stop: int
    buffer: mmap.mmap
    heads: memoryview
    starts: memoryview
    spans: memoryview
    codes: bytearray


def ethernet_frames(reader: Any, skip: int = 0, fcs_problems: list[tuple[int, bytes]] | None = None,
                    ) -> Iterator[FrameItem]:
    """Every record of a reader (from record ``skip`` on) as an Ethernet frame (a Linux cooked or
    raw-IP record converted), or its bytes as they are when it has no Ethernet form. With
    ``fcs_problems``, a frame that ends in an FCS comes without it, as the stack has it, and one whose
    FCS is not right (softgso.io.fcs.fcs_problem) is also added there, (record index, record bytes)."""
    from ..io import ethernet_view

    for record in reader:
        if record.index < skip:
            continue
        if record.fcs_len and fcs_problems is not None:
            from ..io.fcs import stack_record

            stack, problem = stack_record(record)
            if problem is not None:
                fcs_problems.append((record.index, bytes(record.data)))
            record = stack
        view = ethernet_view(record)
        if view is None:
            yield record.index, bytes(record.data), False
        else:
            yield record.index, bytes(view.frame), True


def _modules() -> tuple[ModuleType, ModuleType] | None:
    segment, records = load_extension("_segment"), load_extension("_records")
    return None if segment is None or records is None else (segment, records)


class BulkFrames:
    """A capture's frames read a chunk at a time (see the module); an iterator of FrameItem."""

    def __init__(self, path: Path, modules: tuple[ModuleType, ModuleType], walk: Callable[..., tuple[int, int, int]],
                 start: int, pcapng: bool, big_endian: bool, reader: Any = None, index: int = 0,
                 walk_options: tuple[int, int, tuple[bytes | bytearray, ...]] = (0, 0, ()),
                 end: int | None = None) -> None:
        self.path = path
        self.pcapng = pcapng
        self.big_endian = big_endian
        # pcap: the file's header (linktype, ticks_per_second); pcapng: the general reader that read
        # the first section's head (its interfaces)
        self.head = reader
        self._modules = modules
        self._records = modules[1]
        self._walk = walk  # (buffer, chunk_end, offsets, codes, lengths) -> (records, end of the last, stop)
        self._pcapng = pcapng
        self._big_endian = big_endian
        self._fd = open_input(path)
        # the end of what is read: the file's, or ``end`` (a record boundary: a part of --jobs)
        self.file_size = os.fstat(self._fd).st_size if end is None else min(end, os.fstat(self._fd).st_size)
        self._pos = start  # the file offset of the buffer's first byte
        # two buffers, taken in turn: the bytes carried over to the next come from the other one
        # (anonymous mappings: their pages come on first write, where a bytearray is zeroed up front)
        self._buffers = [mmap.mmap(-1, CHUNK_SIZE + MAX_FAST_RECORD + BLOCK_SHIFT) for _ in range(2)]
        self._buffer = self._buffers[0]
        # called with a buffer about to be filled again (a caller's views of its frames then change)
        self.on_reuse: Callable[[mmap.mmap], None] | None = None
        # given: the general reader, where it takes over, takes the FCS off frames that end in one and
        # adds those whose FCS is not right here (ethernet_frames)
        self.fcs_problems: list[tuple[int, bytes]] | None = None
        capacity = CHUNK_SIZE // MIN_RECORD + 1
        self._offsets, self._codes, self._lengths = bytearray(8 * capacity), bytearray(capacity), bytearray(4 * capacity)
        # per frame: where its record starts, where its frame starts, its length (int64)
        self._heads, self._starts, self._spans = (memoryview(bytearray(8 * capacity)).cast("q") for _ in range(3))
        self._frame_codes = bytearray(capacity)  # per frame: its record's walk code
        self._view = memoryview(b"")
        self._count = 0  # frames in the buffer
        self._next = 0  # the next of them to hand out
        self._index = index  # its record index
        self._walk_options = walk_options  # (small_limit, bulk_small, port map) the walk was opened with
        self._after = 0  # the end of the buffer's last walked record
        self._stopped = False  # the walk ended at a record the general reader takes
        self._general: Iterator[FrameItem] | None = None
        self._reader: Any = None
        self._load(b"")

    # -- reading ----------------------------------------------------------------------------------

    def _load(self, carried: bytes | memoryview) -> None:
        """Fill the next buffer from ``self._pos`` (its first bytes ``carried`` over) and walk it."""
        self._buffer = self._buffers[self._buffers[0] is self._buffer]
        if self.on_reuse is not None:
            self.on_reuse(self._buffer)
        got = fill(self._fd, self._buffer, carried, self._pos,
                   min(len(self._buffer) - BLOCK_SHIFT, self.file_size - self._pos))
        view = memoryview(self._buffer)[:got]
        if got:
            count, after, stop = self._walk(view, min(CHUNK_SIZE, got), self._offsets, self._codes, self._lengths)
        else:  # nothing more to read: the end, or a file cut short underneath (the general reader's)
            count, after, stop = 0, 0, self._pos < self.file_size
        self._view = view
        self._after = after
        self._stopped = bool(stop)
        self._count = self._records.frame_spans(self._buffer, self._offsets, self._codes, self._lengths, count,
                                                self._pcapng, self._big_endian, self._heads, self._starts,
                                                self._spans, self._frame_codes)
        self._next = 0

    @property
    def _at_end(self) -> bool:
        """The walk took every record to the file's end."""
        return not self._stopped and self._pos + self._after >= self.file_size

    def _advance(self) -> bool:
        """The next chunk, once the buffer's frames are handed out; False at the walk's end."""
        while not self._stopped and not self._at_end:
            self._pos += self._after
            self._load(self._view[self._after :])
            if self._count:
                return True
        return False

    def _reload_from_next(self) -> bool:
        """Read on from the next frame's record, so that the frames after it come into the buffer;
        False when that cannot bring more."""
        if self._stopped or self._at_end or self._next == 0:
            return False
        start = self._heads[self._next]
        self._pos += start
        self._load(self._view[start:])
        return self._count > 0

    def __iter__(self) -> BulkFrames:
        return self

    def __next__(self) -> FrameItem:
        if self._general is not None:
            return next(self._general)
        if self._next >= self._count and not self._advance():
            if self._at_end:
                raise StopIteration
            self._general = self._general_reader()
            return next(self._general)
        start, span = self._starts[self._next], self._spans[self._next]
        item = (self._index, bytes(self._view[start : start + span]), True)
        self._next += 1
        self._index += 1
        return item

    def _general_reader(self) -> Iterator[FrameItem]:
        """The general reader from the next record on (it says what is wrong with one the walk left)."""
        from ..io import open_capture

        self._reader = open_capture(self.path)
        return ethernet_frames(self._reader, skip=self._index, fcs_problems=self.fcs_problems)

    @property
    def bytes_read(self) -> int:
        """Bytes of the file read so far (for a progress bar against ``file_size``)."""
        if self._reader is not None:
            return int(getattr(self._reader, "bytes_read", 0) or 0)
        return self._pos + self._after

    def close(self) -> None:
        """Close the file (and the general reader, where it took over)."""
        if self._reader is not None:
            self._reader.close()
        os.close(self._fd)

    # -- a chunk's frames at once ------------------------------------------------------------------

    def next_batch(self) -> FrameBatch | None:
        """The walked frames not handed out yet (the rest of the buffer, else the next chunk's), all
        taken at once; None when the walk has no more: then :attr:`walked_to_end` says whether it
        took every record, and :attr:`next_index` is the record the general reader must go on from."""
        if self._general is not None or (self._next >= self._count and not self._advance()):
            return None
        batch = FrameBatch(self._index, self._next, self._count, self._buffer, self._heads, self._starts, self._spans,
                           self._frame_codes)
        self._index += self._count - self._next
        self._next = self._count
        return batch

    @property
    def walked_to_end(self) -> bool:
        """The walk took every record of the file (else the general reader reads on from next_index)."""
        return self._at_end

    @property
    def next_index(self) -> int:
        """The record index of the next frame not handed out."""
        return self._index

    def next_section(self) -> BulkFrames | None:
        """The bulk reader of the pcapng section whose header the walk stopped at (its records numbered
        on from :attr:`next_index`); None when the walk stopped at anything else or the section's head
        does not read (the general reader then says why)."""
        if not self._pcapng or not self._stopped or self._next < self._count or self._general is not None:
            return None
        offset = self._pos + self._after
        from ..io.pcapng import BT_SHB, PcapngReader

        fd = open_input(self.path)
        try:
            head = os.pread(fd, 4, offset)
            if len(head) < 4 or int.from_bytes(head, "little") != BT_SHB:
                return None
            os.lseek(fd, offset, os.SEEK_SET)
            reader = PcapngReader(str(self.path), fd)
            fd = -1  # the reader's now
            with reader:
                next(iter(reader), None)  # the interfaces described before its first packet
            big_endian = reader.byte_order == "big"
            start = _first_packet_block(self.path, offset, big_endian)
        except (OSError, CaptureError):
            return None
        finally:
            if fd >= 0:
                os.close(fd)
        if start is None or not reader.interfaces:
            return None
        walk = _PcapngWalk(self._modules[0], big_endian, reader.interfaces, *self._walk_options)
        return BulkFrames(self.path, self._modules, walk, start, True, big_endian, reader, self._index,
                          self._walk_options)

    # -- a run of frames at once ------------------------------------------------------------------

    def tcp_segments(self, a: Unit) -> list[int] | None:
        """The record indexes of the next frames, when they are the segments of ``a`` (a TCP frame of
        A with payload, no tunnel) that flowdiff judges "segmented, payload intact", without a
        problem or a change (softgso.bulk._records.tcp_segments); they are then taken. None
        otherwise (nothing taken)."""
        if self._general is not None:
            return None
        if self._next >= self._count and not self._advance():
            return None
        taken = 0
        for _ in range(2):
            taken = self._records.tcp_segments(a.frame, a.network, a.transport, a.payload_at, a.payload_end,
                                               a.ip_version, a.seq, self._buffer, self._starts, self._spans,
                                               self._next, self._count, not self._stopped)
            if taken >= 0:
                break
            if not self._reload_from_next():  # the segments run past the buffer: read on from the first
                return None
        if taken <= 0:
            return None
        first = self._index
        self._next += taken
        self._index += taken
        return list(range(first, first + taken))


def open_bulk_frames(path: Path, *, any_link: bool = False, small_limit: int = 0, bulk_small: int = 0,
                     port_map: bytes | bytearray | None = None,
                     span: tuple[int, int | None, int] | None = None) -> BulkFrames | None:
    """The bulk reader of ``path`` (a regular file, a pcap or pcapng of Ethernet frames), else None.

    ``any_link``: of any link type the segment walk takes in a pcap, of any interfaces in a pcapng
    (the frames of another link type than Ethernet are read as records by the caller). With
    ``bulk_small`` the walk classifies short frames (up to ``small_limit``) of Ethernet as segment's
    does (_segment.scan's codes 0-4: left untouched, with their checksum state; with the bit
    stream.SMALL_SEEDS code 8 (stream.CODE_SEED) for one whose checksum is a partial seed); ``port_map``: the
    UDP ports of --tunnel-port, as for segment's walk. ``span`` (from offset, to offset or None,
    index of the first record): a part of the file (softgso.bulk.stream.split_points)."""
    modules = _modules()
    if modules is None:
        return None
    scan = modules[0]
    ports = () if port_map is None else (port_map,)
    found = pcap_header(path)
    if found is not None:
        (header, order, nanosecond, snaplen), linktype = found
        if linktype != LINKTYPE_ETHERNET and not any_link:
            return None
        big_endian = order != "little"
        ticks, snap_limit = record_limits(nanosecond, snaplen)
        ethernet = linktype == LINKTYPE_ETHERNET
        small, classify = (small_limit, bulk_small) if ethernet else (0, False)
        extra = (1, *ports) if ethernet else (0,)

        def walk_records(data: memoryview, chunk_end: int, offsets: bytearray, codes: bytearray,
                         lengths: bytearray) -> tuple[int, int, int]:
            result: tuple[int, int, int] = scan.scan(data, 0, len(data), chunk_end, big_endian, ticks, snap_limit,
                                                     small, classify, offsets, codes, *extra)
            return result

        start, end, index = span if span is not None else (len(header), None, 0)
        return BulkFrames(path, modules, walk_records, start, False, big_endian,
                          PcapHead(linktype, ticks, nanosecond), index, end=end)
    blocks = pcapng_header(path)
    if blocks is None or not blocks.reader.interfaces or (not any_link and any(
            interface.linktype != LINKTYPE_ETHERNET for interface in blocks.reader.interfaces)):
        return None
    options = (small_limit, bulk_small, ports)
    walk = _PcapngWalk(scan, blocks.big_endian, blocks.reader.interfaces, *options)
    start, end, index = span if span is not None else (blocks.start, None, 0)
    return BulkFrames(path, modules, walk, start, True, blocks.big_endian, blocks.reader, index,
                      walk_options=options, end=end)


class _PcapngWalk:
    """_segment.scan_blocks over the blocks of one section (its interfaces, byte order)."""

    def __init__(self, scan: ModuleType, big_endian: bool, interfaces: list[Any], small_limit: int, bulk_small: int,
                 ports: tuple[bytes | bytearray, ...]) -> None:
        self.scan = scan
        self.big_endian = big_endian
        self.kinds = bytes(interface.linktype == LINKTYPE_ETHERNET for interface in interfaces)
        self.spb_snaplen = interfaces[0].snaplen
        self.small_limit, self.bulk_small, self.ports = small_limit, bulk_small, ports

    def __call__(self, data: memoryview, chunk_end: int, offsets: bytearray, codes: bytearray,
                 lengths: bytearray) -> tuple[int, int, int]:
        result: tuple[int, int, int] = self.scan.scan_blocks(
            data, 0, len(data), chunk_end, self.big_endian, self.kinds, self.spb_snaplen, MAX_FAST_RECORD - 16,
            self.small_limit, self.bulk_small, offsets, codes, lengths, *self.ports)
        return result


def _first_packet_block(path: Path, offset: int, big_endian: bool) -> int | None:
    """The offset of the first block after the section header at ``offset`` and the blocks before its
    first packet block (or of the file's end); None when a block length there is broken."""
    from ..io.pcapng import BT_EPB, BT_PB, BT_SHB, BT_SPB

    header = struct.Struct((">" if big_endian else "<") + "II")
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        at = offset
        while at + 8 <= size:
            handle.seek(at)
            block_type, length = header.unpack(handle.read(8))
            if at > offset and block_type in (BT_EPB, BT_SPB, BT_PB, BT_SHB):
                return at
            if length < 12 or length % 4:
                return None
            at += length
    return at if at == size else None


@dataclass(frozen=True, slots=True)
class PcapHead:
    """What a classic pcap's file header says of its records."""

    linktype: int
    ticks_per_second: int
    nanosecond: bool


def count_records(path: Path) -> int | None:
    """The number of records in ``path`` by the bulk walk (the general reader's count from where the
    walk stops); None for a file the walk does not take."""
    frames = open_bulk_frames(path)
    if frames is None:
        return None
    try:
        total = frames._count
        while frames._advance():
            total += frames._count
        if not frames._at_end:
            from ..io import open_capture

            with open_capture(path) as reader:
                total = sum(1 for _ in reader)
        return total
    finally:
        frames.close()


__all__ = ["BulkFrames", "FrameBatch", "PcapHead", "count_records", "ethernet_frames", "open_bulk_frames"]
