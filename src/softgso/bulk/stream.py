"""The bulk stream of ``softgso segment``: what its frontends need, kept light for the command's start-up.

The stream itself is :mod:`softgso.bulk.pipeline`, with its per-chunk primitive in C
(:mod:`softgso.bulk.compiled_primitive`, the default where built) or numpy
(:mod:`softgso.bulk.numpy_primitive`); this module holds the gate that decides whether a file can take
it (:func:`pcap_header` for a classic pcap of a link type in LINK_KINDS, :func:`pcapng_header`;
:func:`pcap_ethernet_header` for ``--jobs``), the choice of primitive, the stream's result, the per-record
fallback to the scalar engine, and the ``--jobs`` split. It imports neither numpy nor the engine.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from ..errors import CaptureError
from ..io.pcap import (
    FILE_HEADER_LEN,
    LINKTYPE_MASK,
    RECORD_HEADER_LEN,
    PcapRecordEncoder,
    fcs_length,
    header_refusal,
    pcap_magic,
)
from ..io.record import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_12,
    LINKTYPE_RAW_14,
    MAX_RECORD_LEN,
    MAX_SNAPLEN_STANDARD,
    NS_PER_SECOND,
)
from ..io.writer import CaptureWriter

TYPE_CHECKING = False  # typing costs start-up milliseconds; mypy reads this name as typing's
if TYPE_CHECKING:
    from typing import Any

    from ..job import PacketResult, SegmentOptions, Summary

# the longest record taken in bulk; a longer one hands the file to the general reader
MAX_FAST_RECORD = MAX_SNAPLEN_STANDARD + RECORD_HEADER_LEN


# the walk's bulk_small bits (_segment.scan, scan_blocks): short frames classified; short Ethernet frames
# whose checksum is a partial seed given code 8 (_segment.c's C_SEED: SMALL_SEEDS) rather than the
# scalar path's, for segment's complete_seeds and inspect's rows
SMALL_CLASSIFY, SMALL_SEEDS = 1, 2
CODE_SEED = 8  # _segment.c's C_SEED: a short Ethernet frame whose checksum is a partial seed (SMALL_SEEDS)
# what the device does with such a frame's seed, one per class of frame (one VLAN tag 4, IPv6 2, UDP 1:
# _segment.complete_seeds' actions): not known yet, completed (skb_checksum_help), left for the device,
# the scalar path's (no action fits what it does)
SEED_UNKNOWN, SEED_COMPLETE, SEED_LEAVE, SEED_SCALAR = range(4)


def seed_action(result: PacketResult, frame_len: int) -> int:
    """The action of a seeded short frame's class, from what the scalar path made of its first frame
    (``result``, of a ``frame_len``-byte frame): sent as one frame of its length, counted as a changed
    packet whose input seed is partial and nothing else; the seed left (the device completes it) or
    completed. Anything else: SEED_SCALAR."""
    from ..features import IpSummed
    from ..job import Outcome
    from ..prepare import L4Checksum

    if (result.outcome != Outcome.CHANGED or len(result.frames) != 1 or len(result.packets) != 1
            or len(result.frames[0]) != frame_len or result.input_csum != L4Checksum.PARTIAL or result.kind
            or result.note or result.over_mtu):
        return SEED_SCALAR
    return SEED_LEAVE if result.packets[0].ip_summed == IpSummed.PARTIAL else SEED_COMPLETE


def short_frames(options: SegmentOptions, bulk: bool) -> tuple[int, bool]:
    """(length up to which a frame is never a super-packet, whether such frames are classified in bulk).

    A frame no longer than MTU + 14 has a payload no longer than gso_size (payload > gso_size needs
    frame - L2 > MTU). Without actions, a virtio header or a forced input checksum such a frame
    leaves untouched unless its checksum is a partial seed, so a bulk stream may classify it and
    copy it through (tunnelled frames, whose inner state counts, go to the scalar path: GRE, IP-in-IP,
    UDP to a tunnel's port or one of ``--tunnel-port``, fastpath.scalar_ports); ``bulk`` is whether the
    stream segments in bulk at all.
    """
    small_limit = options.device.mtu + 14 if options.gso_size is None else 0
    classify = (bulk and options.gso_size is None and not options.actions and options.vnet_hdr is None
                and options.input_csum == "auto" and options.device.mtu > 120)
    return small_limit, classify


def record_limits(nanosecond: bool, snaplen: int) -> tuple[int, int]:
    """(timestamp fraction ticks per second, longest caplen) a bulk stream takes; beyond, the general reader."""
    ticks = 1_000_000_000 if nanosecond else 1_000_000
    return ticks, min(max(snaplen, MAX_SNAPLEN_STANDARD) if snaplen else MAX_RECORD_LEN, MAX_FAST_RECORD - 16)


class StreamResult:
    """What the bulk stream did, in the shape of ``cli._stream``'s return value."""

    __slots__ = ("counts", "reports", "resume_index", "resume_offset")

    def __init__(self, counts: dict[str, int], reports: list[tuple[int, str]]) -> None:
        self.counts = counts
        self.reports = reports
        self.resume_index: int | None = None  # the scalar stream must continue from this record
        self.resume_offset = 0


# the link types a bulk stream takes, as _segment.c's link kinds (L_*): a plan keys on the link
# header's shape like it keys on Ethernet's (0, in a pcapng's kinds: every record to the scalar path)
LINK_KINDS = {LINKTYPE_ETHERNET: 1, LINKTYPE_LINUX_SLL: 2, LINKTYPE_LINUX_SLL2: 3, LINKTYPE_NULL: 4, LINKTYPE_LOOP: 5,
              LINKTYPE_RAW_12: 6, LINKTYPE_RAW_14: 6, LINKTYPE_RAW: 6, LINKTYPE_IPV4: 7, LINKTYPE_IPV6: 8}
# per kind: the link header's length, and a link type of the kind (for softgso.io.cooked)
LINK_HEADER_LEN = (0, 14, 16, 20, 4, 4, 0, 0, 0)
KIND_LINKTYPE = (0, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_NULL, LINKTYPE_LOOP,
                 LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6)


def pcap_ethernet_header(path: str | os.PathLike[str]) -> tuple[bytes, str, bool, int] | None:
    """(file header, byte order, nanosecond, snaplen) of a classic pcap of Ethernet, else None (the
    --jobs split takes Ethernet alone)."""
    found = pcap_header(path)
    return found[0] if found is not None and found[1] == LINKTYPE_ETHERNET else None


def pcap_header(path: str | os.PathLike[str]) -> tuple[tuple[bytes, str, bool, int], int] | None:
    """((file header, byte order, nanosecond, snaplen), link type) of a classic pcap of a link type
    in LINK_KINDS, else None.

    None for anything but a regular file: the bulk path maps its input, and a FIFO or ``-``
    (standard input) can be read only once, front to back, by the general reader (not even opened
    here: that would consume its first bytes, or wait for a writer). A gzip or zstd file is not one
    either (its magic is not pcap's): the general reader decompresses it as it reads.
    """
    if str(path) == "-" or not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as handle:
            header = handle.read(FILE_HEADER_LEN)
    except OSError:
        return None
    found = pcap_magic(header)
    if found is None or len(header) < FILE_HEADER_LEN:
        return None
    order, nanosecond = found
    prefix = "<" if order == "little" else ">"
    _, major, minor, _, _, snaplen, linktype_field = struct.unpack(prefix + "IHHiIII", header)
    linktype = linktype_field & LINKTYPE_MASK
    if linktype not in LINK_KINDS or header_refusal(major, minor, linktype_field) is not None:
        return None  # the general reader's: it says what it refuses
    if fcs_length(linktype_field):
        return None  # frames that end in an FCS: the general reader takes it off (and makes it anew)
    return (header, order, nanosecond, snaplen), linktype


class PcapngInput:
    """What the bulk stream needs of a pcapng file (see :func:`pcapng_header`)."""

    __slots__ = ("reader", "start", "big_endian", "kinds", "spb_snaplen")

    def __init__(self, reader: Any, start: int, kinds: bytes) -> None:
        self.reader = reader  # the general reader, read up to the first packet: the output's SHB and IDBs
        self.start = start  # the offset of the first block after the SHB and IDBs before the first packet
        self.big_endian = reader.byte_order == "big"
        self.kinds = kinds  # per interface: 1 its records may be segmented in bulk, 0 the scalar path's
        self.spb_snaplen = reader.interfaces[0].snaplen if reader.interfaces else 0


def exact_timestamps(ticks_per_second: int) -> bool:
    """Whether a timestamp of this resolution read and written back (through nanoseconds, softgso.io.record)
    comes out the same: decimal resolutions up to 1 ns, binary ones up to 2^-29 s."""
    if ticks_per_second <= 0:
        return False
    if ticks_per_second & (ticks_per_second - 1) == 0:
        return ticks_per_second <= 1 << 29
    return ticks_per_second <= NS_PER_SECOND and NS_PER_SECOND % ticks_per_second == 0


def pcapng_header(path: str | os.PathLike[str]) -> PcapngInput | None:
    """The bulk stream's view of a pcapng file (a regular file, not compressed), else None.

    Its first section's header and the interfaces described before the first packet are read by the
    general reader (so the output starts as the scalar path's does); the bulk walk starts at the
    first block after them. None when the file is not pcapng or its head cannot be read: the
    general reader takes it, and says what is wrong.
    """
    if str(path) == "-" or not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != b"\x0a\x0d\x0d\x0a":
                return None
            from ..io.reader import open_capture

            with open_capture(path) as reader:
                pass
            start = _first_packet_block(handle, reader.byte_order)
    except (OSError, CaptureError):
        return None
    if start is None or not getattr(reader, "section_header", b"") or any(i.fcs_len for i in reader.interfaces):
        return None  # (frames that end in an FCS: the general reader takes it off and makes it anew)
    if getattr(reader, "head_error", None) is not None:
        # a broken block before the first packet (an IDB, a block it skips): the general reader reports
        # it before any record, where the bulk walk, starting after those blocks, would never see it
        return None
    kinds = bytes(LINK_KINDS.get(i.linktype, 0) if exact_timestamps(i.ticks_per_second) else 0
                  for i in reader.interfaces)
    return PcapngInput(reader, start, kinds)


def _first_packet_block(handle: Any, byte_order: str) -> int | None:
    """The offset of the first block after the first section's header and the blocks before its first
    packet block (or of the file's end); None when a block length there is broken."""
    from ..io.pcapng import BT_EPB, BT_PB, BT_SHB, BT_SPB

    header = struct.Struct(("<" if byte_order == "little" else ">") + "II")
    size = os.fstat(handle.fileno()).st_size
    offset = 0
    while offset + 8 <= size:
        handle.seek(offset)
        block_type, length = header.unpack(handle.read(8))
        if offset and block_type in (BT_EPB, BT_SPB, BT_PB, BT_SHB):
            return offset
        if length < 12 or length % 4:
            return None
        offset += length
    return offset if offset == size else None


def make_bulk_stream(options: SegmentOptions, summary: Summary,
                     per_frame: Callable[[int, bytes], tuple[list[bytes], str | None]], engine: str = "auto") -> Any:
    """The bulk stream for ``segment --engine``: the pipeline with the compiled primitive
    (softgso.bulk._segment), the numpy one, or auto (compiled where built)."""
    from . import compiled_primitive
    from .pipeline import Primitive, SegmentStream

    primitive: Primitive
    if engine == "compiled" or (engine == "auto" and compiled_primitive.available()):
        primitive = compiled_primitive.CompiledPrimitive(options)
        summary.engine = "compiled"
    else:
        from .numpy_primitive import NumpyPrimitive

        primitive = NumpyPrimitive(options)
        summary.engine = "numpy"
    return SegmentStream(options, summary, per_frame, primitive)


def split_points(path: str | os.PathLike[str], header_info: tuple[bytes, str, bool, int], parts: int,
                 size: int | None = None, align: int = 1) -> list[tuple[int, int]]:
    """(byte offset, record index) where each of ``parts`` pieces of the file (or of its first ``size``
    bytes: the cuts are theirs, the boundaries the file's) starts, at record boundaries (whose
    index is a multiple of ``align``)."""
    prefix = "<" if header_info[1] == "little" else ">"
    # a record's length is its header's third field: its data follows the 16 header bytes
    return _walk_to_targets(path, FILE_HEADER_LEN, size, parts, struct.Struct(prefix + "8xI4x"), RECORD_HEADER_LEN,
                            lambda fields: RECORD_HEADER_LEN + fields[-1], lambda _: True, align)


def block_split_points(path: str | os.PathLike[str], header: PcapngInput, parts: int, size: int | None = None,
                       align: int = 1) -> list[tuple[int, int]]:
    """split_points for a pcapng file's first section: (byte offset, packet record index) at block
    boundaries from ``header.start`` (a broken block length or the next section's header ends the
    walk there: no part starts in another section)."""
    from ..io.pcapng import BT_EPB, BT_PB, BT_SHB, BT_SPB

    block_header = struct.Struct((">" if header.big_endian else "<") + "II")
    records = (BT_EPB, BT_SPB, BT_PB)

    def block_length(fields: tuple[int, ...]) -> int | None:
        block_type, length = fields
        return length if length >= 12 and not length % 4 and block_type != BT_SHB else None

    return _walk_to_targets(path, header.start, size, parts, block_header, 8, block_length,
                            lambda block_type: block_type in records, align)


def part_spans(path: str | os.PathLike[str], parts: int, header_info: tuple[bytes, str, bool, int] | None,
               blocks: PcapngInput | None, align: int = 1, size: int | None = None,
               ) -> list[tuple[int, int | None, int]] | None:
    """The --jobs parts of ``path`` (or of its first ``size`` bytes: the cuts are theirs): (from offset,
    to offset or None for the file's end, index of its first record) each, by split_points for a
    classic pcap (``header_info``) or block_split_points for a pcapng (``blocks``); None for neither."""
    if header_info is not None:
        points = split_points(path, header_info, parts, size, align)
    elif blocks is not None:
        points = block_split_points(path, blocks, parts, size, align)
    else:
        return None
    return [(offset, points[k + 1][0] if k + 1 < len(points) else None, index)
            for k, (offset, index) in enumerate(points)]


def _walk_to_targets(path: str | os.PathLike[str], start: int, size: int | None, parts: int, header: struct.Struct,
                     header_len: int,
                     step: Callable[[tuple[int, ...]], int | None], is_record: Callable[[int], bool],
                     align: int = 1) -> list[tuple[int, int]]:
    """The record walk of split_points and block_split_points, a buffer (1 MiB) read at a time (after a
    record of 16 KiB or more, only the next record's header):
    (offset, record index) at the first boundary at or past each of the ``parts - 1`` even cuts of
    the file after ``start`` (or of its first ``size`` bytes) whose record index is a multiple of
    ``align``. ``header`` unpacks a record's (type, length) or (length,) at its start, ``step``
    turns them into the bytes to the next record (None: the walk stops there)."""
    file_size = os.path.getsize(path)
    size = file_size if size is None else min(size, file_size)
    targets = [start + (size - start) * k // parts for k in range(1, parts)]
    points = [(start, 0)]
    offset, index, length = start, 0, 0
    unpack_from = header.unpack_from
    with open(path, "rb", buffering=0) as handle:
        buffer, base = b"", start  # the file's bytes from ``base`` on
        while targets and offset + header_len <= file_size:
            if offset >= targets[0] and not index % align:
                if offset > points[-1][0]:  # (a record over two cuts: one part, not an empty one)
                    points.append((offset, index))
                targets.pop(0)
                continue
            at = offset - base
            if at + header_len > len(buffer):
                # after a long record, its successor's header alone (no reading of the payloads between)
                handle.seek(offset)
                buffer, base, at = handle.read(header_len if length >= WALK_LONG else WALK_READ), offset, 0
                if len(buffer) < header_len:
                    break
            fields = unpack_from(buffer, at)
            found = step(fields)
            if found is None:
                break
            length = found
            offset += length
            index += is_record(fields[0])
    return points


# the split walk reads the file this much at a time, or a record's header alone after a record this long
WALK_READ = 1 << 20
WALK_LONG = 16 << 10


# --jobs: the bytes of IN's first records tried in bulk before it is cut (up to the first record
# boundary at or past this many bytes after the file's or the section's header)
JOBS_SAMPLE = 2 << 20
# --jobs: one job does IN when the bulk stream takes at least this share of the sample's bytes (measured
# on 2 cores, README: parts pay for records that go one by one, never for what the bulk stream takes)
ONE_JOB_BULK_SHARE = 2 / 3


def bulk_share(in_path: str | os.PathLike[str], options: SegmentOptions, header_info: tuple[bytes, str, bool, int] | None,
               blocks: PcapngInput | None, engine: str = "auto", linktype: int = LINKTYPE_ETHERNET) -> float:
    """The share of the bytes of IN's first JOBS_SAMPLE bytes of records that the bulk stream takes
    itself (segmented by a plan or copied through in a run), from a trial run of them into the null
    device (``options`` is not changed); 1.0 when there is no record. The rest go one by one."""
    import copy

    start = FILE_HEADER_LEN if header_info is not None else blocks.start if blocks is not None else 0
    # up to the first record boundary at or past JOBS_SAMPLE bytes of records (none: the whole file)
    spans = part_spans(in_path, 2, header_info, blocks, size=start + 2 * JOBS_SAMPLE)
    if not spans:
        return 1.0
    _, _, summary, _ = segment_part(str(in_path), os.devnull, copy.deepcopy(options), header_info, spans[0],
                                    engine, linktype)
    return summary.bulk_bytes / summary.bytes_in if summary.bytes_in else 1.0


# --jobs: the bytes each part has read (a shared array the parent sets before forking its workers)
part_progress: Any = None


def segment_part(in_path: str, part_path: str, options: SegmentOptions, header_info: tuple[bytes, str, bool, int] | None,
                 span: tuple[int, int | None, int], engine: str = "auto", linktype: int = LINKTYPE_ETHERNET,
                 number: int = 0) -> tuple[dict[str, int], list[tuple[int, str]], Summary, bool]:
    """One --jobs part (the ``number``-th): records of ``span`` segmented into ``part_path`` (records
    only, no file header; ``header_info`` None: IN is a pcapng file, its first section's packet
    blocks), its bytes read so far in ``part_progress[number]`` when there is one.

    Returns counts, reports, the part's summary and whether it finished (False: an unusual record
    needs the general reader; the caller redoes the file in one job).
    """
    from pathlib import Path  # here: a plain run (one job) needs no pathlib

    if header_info is None:
        from ..io.pcapng import PcapngRecordEncoder

        blocks = pcapng_header(Path(in_path))
        if blocks is None:
            from ..job import Summary

            return {}, [], Summary(), False
        interfaces = blocks.reader.interfaces
        encoder = PcapngRecordEncoder(b"", interfaces, blocks.reader.byte_order, interfaces_written=len(interfaces))
        encoder.keeps_blocks = True  # the records' own blocks, as open_writer(like=IN) keeps them
        with CaptureWriter(part_path, encoder, "pcapng", fsync=False) as writer:
            return run_part(in_path, writer, options, header_info, span, engine, linktype, number, blocks)
    _, order, nanosecond, _ = header_info
    with CaptureWriter(part_path, PcapRecordEncoder(b"", order, nanosecond, linktype), "pcap", fsync=False) as writer:
        return run_part(in_path, writer, options, header_info, span, engine, linktype, number)


def run_part(in_path: str, writer: CaptureWriter, options: SegmentOptions,
             header_info: tuple[bytes, str, bool, int] | None, span: tuple[int, int | None, int], engine: str = "auto",
             linktype: int = LINKTYPE_ETHERNET, number: int = 0, blocks: PcapngInput | None = None,
             progress: Callable[[int], None] | None = None,
             ) -> tuple[dict[str, int], list[tuple[int, str]], Summary, bool]:
    """The records of ``span`` through the bulk stream into ``writer`` (a part's file, or OUT itself
    for the first part): segment_part's work, its bytes read so far in ``part_progress[number]``
    (then ``progress()`` is called, for a bar in this process)."""
    from pathlib import Path  # here: a plain run (one job) needs no pathlib

    from ..job import Summary, segment_per_frame

    summary = Summary()
    stream = make_bulk_stream(options, summary, segment_per_frame(options, summary), engine)
    shared = part_progress

    def read_so_far(position: int) -> None:
        if shared is not None and number < len(shared):
            shared[number] = position - span[0]
        if progress is not None:
            progress(position)

    if header_info is None:
        if blocks is None:
            blocks = pcapng_header(Path(in_path))
        if blocks is None:
            return {}, [], summary, False
        result = stream.run_pcapng(Path(in_path), writer, blocks, read_so_far, span=span)
    else:
        result = stream.run(Path(in_path), writer, header_info, read_so_far, span=span, linktype=linktype)
    return result.counts, result.reports, summary, result.resume_index is None


def open_pcap_writer(out_path: str | os.PathLike[str], header_info: tuple[bytes, str, bool, int],
                     linktype: int = LINKTYPE_ETHERNET) -> CaptureWriter:
    """An atomic writer whose file header is IN's, byte for byte (as ``open_writer(like=IN)`` makes it)."""
    header, order, nanosecond, _ = header_info
    return CaptureWriter(out_path, PcapRecordEncoder(header, order, nanosecond, linktype), "pcap")


__all__ = ["CODE_SEED", "KIND_LINKTYPE", "LINK_HEADER_LEN", "LINK_KINDS", "MAX_FAST_RECORD", "PcapngInput", "pcap_header", "StreamResult", "exact_timestamps", "pcapng_header", "record_limits", "short_frames", "make_bulk_stream", "open_pcap_writer", "pcap_ethernet_header",
           "block_split_points", "bulk_share", "part_spans", "run_part", "segment_part", "split_points"]
