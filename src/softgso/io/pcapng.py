"""pcapng files: sections in either byte order, many interfaces, EPB/SPB/PB packets, comments.

Hand-written rather than dpkt's ``pcapng.Reader``/``Writer``: dpkt reads only the first
interface (one link type, one ``if_tsresol``), skips Simple Packet Blocks, reports no interface id,
orig_len or comment, makes float timestamps, and builds a dpkt.Packet object per block; its
writer writes native byte order, microseconds and interface 0 only. It is also slower:
``benchmarks/io_readers.py`` (read, 200 MB of 64 KiB records on tmpfs, best of 9 interleaved
runs, two invocations): dpkt 3236 / 2844 MB/s, softgso 6632 / 6353 MB/s (2x).

Blocks other than SHB, IDB and the three packet blocks are skipped by the reader; name resolution,
interface statistics, journal export, decryption secrets and copyable custom blocks of the first
section are handed to a callback (:meth:`PcapngReader.keep_blocks`: a writer that keeps blocks writes
them back where they lie, :meth:`PcapngRecordEncoder.other_block`). A record written back
unchanged by a writer shaped like its reader keeps its Enhanced or Simple Packet Block byte for byte
(options: comments, flags, hashes...; padding), when it lies in the file's first section; a new or
changed record is written as an EPB with its comment alone.
Several sections become one: interface ids in records are global (``reader.interfaces`` index),
equal to the file's own ids when it has a single section.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from itertools import chain

from ..errors import CaptureError
from .record import (
    FCS_LEN_UNKNOWN,
    MAX_RECORD_LEN,
    MAX_SNAPLEN_STANDARD,
    NS_PER_SECOND,
    CaptureRecord,
    Interface,
    RecordError,
    ns_to_ticks,
    ticks_to_ns,
)
from .source import CHUNK_SIZE, CaptureReader

BT_SHB = 0x0A0D0D0A
BT_IDB = 0x00000001
BT_PB = 0x00000002  # the obsolete Packet Block
BT_SPB = 0x00000003
BT_EPB = 0x00000006
BT_NRB = 0x00000004  # name resolution
BT_ISB = 0x00000005  # interface statistics (its body starts with the interface id)
BT_SJE = 0x00000009  # systemd journal export
BT_DSB = 0x0000000A  # decryption secrets
BT_CB_COPY = 0x00000BAD  # a custom block that may be copied into a changed file (0x40000BAD: may not)
# Blocks about the capture rather than a packet, written to OUT as they are where they lie among the
# packets, when OUT keeps IN's blocks (the same byte order, the file's first section)
OTHER_BLOCKS_KEPT = (BT_NRB, BT_ISB, BT_SJE, BT_DSB, BT_CB_COPY)
# such blocks before the first packet are held until a writer asks for them: past this many bytes of
# them (a file of nothing else), the rest are not kept (memory stays bounded)
HEAD_BLOCKS_LIMIT = 8 << 20
BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_VERSION_MAJOR = 1
# the versions libpcap (sf-pcapng.c) and Wireshark read: 1.0, and 1.2 that some writers put
PCAPNG_VERSIONS = ((1, 0), (1, 2))

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
IF_NAME = 2
IF_TSRESOL = 9
IF_TSOFFSET = 14
IF_FCSLEN = 13  # bits of FCS at the end of every frame of the interface (one byte)
EPB_FLAGS = 2  # epb_flags (and an obsolete PB's pack_flags): bits 5-8 the packet's FCS length (0: not known)

BLOCK_OVERHEAD = 12  # type, leading length, trailing length
EPB_FIXED_LEN = 20  # interface id, timestamp high/low, caplen, orig_len
PB_FIXED_LEN = 20
MAX_BLOCK_LEN = MAX_RECORD_LEN + (1 << 16)  # a maximal packet plus room for its options
# The blocks softgso reads and keeps; no longer than MAX_BLOCK_LEN. Any other block (name
# resolution, statistics, decryption secrets, custom) may be longer: it is read past in pieces.
KEPT_BLOCKS = (BT_SHB, BT_IDB, BT_PB, BT_SPB, BT_EPB)
# Section length "not specified": a copied SHB gets it, since the section we write differs.
SECTION_LENGTH_UNKNOWN = -1

_ORDER_PREFIX = {"little": "<", "big": ">"}
_SHB_MAGIC_BYTES = {b"\x4d\x3c\x2b\x1a": "little", b"\x1a\x2b\x3c\x4d": "big"}


def _pad4(length: int) -> int:
    return -length % 4


def tsresol_ticks_per_second(tsresol: int) -> int:
    """Ticks per second for an if_tsresol byte: 10^-n, or 2^-n when the top bit is set."""
    return 1 << (tsresol & 0x7F) if tsresol & 0x80 else 10 ** tsresol


def iter_options(body: memoryview, start: int, prefix: str) -> Iterator[tuple[int, memoryview]]:
    """(code, value) for each option of a block body from ``start`` to opt_endofopt or the end."""
    header = struct.Struct(prefix + "HH")
    pos = start
    while pos + 4 <= len(body):
        code, length = header.unpack_from(body, pos)
        if code == OPT_ENDOFOPT:
            return
        yield code, body[pos + 4 : pos + 4 + length]
        pos += 4 + length + _pad4(length)


def encode_option(code: int, value: bytes, prefix: str) -> bytes:
    """One option, padded to 32 bits."""
    return struct.pack(prefix + "HH", code, len(value)) + value + b"\0" * _pad4(len(value))


def _encode_block(block_type: int, body: bytes, prefix: str) -> bytes:
    length = BLOCK_OVERHEAD + len(body)
    return struct.pack(prefix + "II", block_type, length) + body + struct.pack(prefix + "I", length)


def _encode_options(options: list[bytes], prefix: str) -> bytes:
    return b"".join(options) + encode_option(OPT_ENDOFOPT, b"", prefix) if options else b""


def encode_shb(byte_order: str, comment: str | None = None) -> bytes:
    """A Section Header Block, version 1.0, section length unspecified."""
    prefix = _ORDER_PREFIX[byte_order]
    options = [encode_option(OPT_COMMENT, comment.encode(), prefix)] if comment else []
    body = struct.pack(prefix + "IHHq", BYTE_ORDER_MAGIC, PCAPNG_VERSION_MAJOR, 0, SECTION_LENGTH_UNKNOWN)
    return _encode_block(BT_SHB, body + _encode_options(options, prefix), prefix)


def encode_idb(interface: Interface, byte_order: str) -> bytes:
    """The interface's IDB: its original block when in ``byte_order``, else rebuilt from its fields."""
    if interface.block is not None and interface.byte_order == byte_order:
        return interface.block
    prefix = _ORDER_PREFIX[byte_order]
    options = []
    if interface.name:
        options.append(encode_option(IF_NAME, interface.name.encode(), prefix))
    if interface.ticks_per_second != 1_000_000:
        options.append(encode_option(IF_TSRESOL, bytes([_tsresol_byte(interface.ticks_per_second)]), prefix))
    if interface.tsoffset_s:
        options.append(encode_option(IF_TSOFFSET, struct.pack(prefix + "q", interface.tsoffset_s), prefix))
    if 0 < interface.fcs_len < 32:
        options.append(encode_option(IF_FCSLEN, bytes([interface.fcs_len * 8]), prefix))
    body = struct.pack(prefix + "HHI", interface.linktype, 0, interface.snaplen)
    return _encode_block(BT_IDB, body + _encode_options(options, prefix), prefix)


def _tsresol_byte(ticks_per_second: int) -> int:
    exponent = 0
    while 10**exponent < ticks_per_second:
        exponent += 1
    if 10**exponent == ticks_per_second:
        return exponent
    return 0x80 | (ticks_per_second.bit_length() - 1)


class _Section:
    """Per-section parsing state: byte order and the structs that depend on it."""

    def __init__(self, byte_order: str, first_interface: int) -> None:
        prefix = _ORDER_PREFIX[byte_order]
        self.byte_order = byte_order
        self.prefix = prefix
        self.first_interface = first_interface  # global id of this section's interface 0
        self.interface_count = 0
        self.block_header = struct.Struct(prefix + "II")
        self.length = struct.Struct(prefix + "I")
        self.epb = struct.Struct(prefix + "IIIII")
        self.pb = struct.Struct(prefix + "HHIIII")


class PcapngReader(CaptureReader):
    """A pcapng file, read packet record by packet record."""

    format = "pcapng"

    def __init__(
        self, path: str, fd: int, first_bytes: bytes = b"", read: Callable[[int], bytes] | None = None,
        compression: str | None = None,
    ) -> None:
        super().__init__(path, fd, first_bytes, read, compression)
        self._fill(12)
        start = bytes(self._view[self._pos : self._pos + 12])
        if len(start) < 12 or int.from_bytes(start[:4], "little") != BT_SHB:
            raise CaptureError(f"bad magic 0x{start[:4].hex()}: not a pcapng file", where=path)
        byte_order = _SHB_MAGIC_BYTES.get(start[8:12])
        if byte_order is None:
            raise CaptureError(f"bad section byte-order magic 0x{start[8:12].hex()}: not a pcapng file", where=path)
        self._section = _Section(byte_order, 0)
        self.section_header = b""  # the first SHB, section length made "unspecified"
        # blocks of OTHER_BLOCKS_KEPT read with the head, before the first packet, (file offset, block):
        # handed to keep_blocks' callback first (at most HEAD_BLOCKS_LIMIT bytes of them)
        self.head_blocks: list[tuple[int, bytes]] = []
        self._head_bytes = 0
        self._on_block: Callable[[int, bytes], None] | None = None
        self._deferred: RecordError | None = None
        self._records = self._parse()
        self._first: CaptureRecord | None = None
        # Read up to the first packet so that ``interfaces`` is known before iteration starts;
        # a broken block there is raised by the iteration, like any other.
        self._reading_head = True
        try:
            self._first = next(self._records, None)
        except RecordError as error:
            if not self.section_header:
                raise
            self._deferred = error
        finally:
            self._reading_head = False

    def keep_blocks(self, on_block: Callable[[int, bytes], None]) -> None:
        """Hand ``on_block`` (file offset, block) every block of OTHER_BLOCKS_KEPT of the first section
        (in this reader's byte order): those read with the head now, the others as the iteration passes
        them, before the record that follows each is handed out."""
        for offset, block in self.head_blocks:
            on_block(offset, block)
        self._on_block = on_block

    @property
    def head_error(self) -> RecordError | None:
        """The error met reading up to the first packet (a broken block among the interfaces and
        the blocks before it), which the iteration raises first; None when there was none."""
        return self._deferred

    def __iter__(self) -> Iterator[CaptureRecord]:
        if self._deferred is not None:
            raise self._deferred
        if self._first is None:
            return iter(())
        first, self._first = self._first, None
        return chain((first,), self._records)

    # -- blocks ----------------------------------------------------------------------------------

    def _slow_block(self) -> tuple[int, int, bytes | memoryview, int] | None:
        """(type, length, block after its 8-byte header, file offset) of the next block, across
        chunk boundaries; None at end of file. Long blocks softgso does not use are read past."""
        while True:
            offset = self.bytes_read
            head = self._take(8)
            if not head:
                return None
            if len(head) < 8:
                raise self._error(f"block header cut short: {len(head)} of 8 bytes before end of file", offset)
            block_type, length = self._section.block_header.unpack_from(head)
            if block_type == BT_SHB:
                # A new section may switch byte order; its length is read in the new order.
                magic = bytes(self._take(4))
                byte_order = _SHB_MAGIC_BYTES.get(magic)
                if byte_order is None:
                    raise self._error(f"bad section byte-order magic 0x{magic.hex()}", offset)
                self._section = _Section(byte_order, len(self.interfaces))
                length = self._section.length.unpack_from(head, 4)[0]
                self._check_block_length(length, offset, block_type)
                rest: bytes | memoryview = magic + self._take(length - 12)
            elif length > MAX_BLOCK_LEN and block_type not in KEPT_BLOCKS:
                self._skip_block(block_type, length, offset)
                continue
            else:
                self._check_block_length(length, offset, block_type)
                rest = self._take(length - 8)
            if len(rest) < length - 8:
                raise self._cut_short(block_type, len(rest) + 8, length, offset)
            return block_type, length, rest, offset

    def _cut_short(self, block_type: int, got: int, length: int, offset: int) -> RecordError:
        return self._error(
            f"block cut short: {got} of {length} bytes (block type 0x{block_type:x}) before end of file", offset
        )

    def _check_block_length(self, length: int, offset: int, block_type: int = BT_EPB) -> None:
        if length < BLOCK_OVERHEAD or length % 4:
            raise self._error(f"broken pcapng block length {length} (must be >= 12 and a multiple of 4)", offset)
        if length > MAX_BLOCK_LEN:
            raise self._error(
                f"pcapng block length {length} (block type 0x{block_type:x}) is longer than any such block can be "
                f"(at most {MAX_BLOCK_LEN} bytes: a {MAX_RECORD_LEN}-byte frame, the longest the kernel builds, "
                "and 64 KiB of options): corrupt or hostile file",
                offset,
            )

    def _skip_block(self, block_type: int, length: int, offset: int) -> None:
        """Read past a long block softgso does not use, a chunk at a time: its length costs time, not memory."""
        if length % 4:
            raise self._error(f"broken pcapng block length {length} (must be >= 12 and a multiple of 4)", offset)
        remaining = length - 8
        last = b""  # the block's last bytes seen so far: its trailing length at the end
        while remaining:
            piece = self._take(min(remaining, CHUNK_SIZE))
            if not piece:
                raise self._cut_short(block_type, length - remaining, length, offset)
            remaining -= len(piece)
            last = (last + bytes(piece[-4:]))[-4:]
        trailing = self._section.length.unpack(last)[0]
        if trailing != length:
            raise self._error(
                f"broken pcapng block: trailing length {trailing} differs from leading length {length}", offset
            )

    def _parse(self) -> Iterator[CaptureRecord]:
        """Every packet record of the file, handling the blocks that describe them on the way."""
        while True:
            section = self._section
            chunk = self._chunk
            pos = self._pos
            rest: bytes | memoryview | None = None  # the block after its type and length
            block: bytes | memoryview | None = None  # the whole block, when read in one piece
            if len(chunk) - pos >= 8:
                block_type, length = section.block_header.unpack_from(chunk, pos)
                end = pos + length
                if end <= len(chunk) and BLOCK_OVERHEAD <= length <= MAX_BLOCK_LEN and not length % 4 and (
                    block_type != BT_SHB
                ):
                    offset = self._chunk_offset + pos
                    rest = self._view[pos + 8 : end]
                    block = self._view[pos:end]
                    self._pos = end
            if rest is None:
                found = self._slow_block()
                if found is None:
                    return
                block_type, length, rest, offset = found
                section = self._section  # an SHB starts a new one
            trailing = section.length.unpack_from(rest, length - 12)[0]
            if trailing != length:
                raise self._error(
                    f"broken pcapng block: trailing length {trailing} differs from leading length {length}", offset
                )
            body = memoryview(rest)[: length - 12]
            if block_type in (BT_EPB, BT_SPB) and section.byte_order == self.byte_order and not section.first_interface:
                if block is None:
                    block = section.block_header.pack(block_type, length) + bytes(rest)
            else:
                block = None  # written back re-encoded (another byte order, interface ids renumbered)
            if block_type == BT_EPB:
                self._need(body, EPB_FIXED_LEN, "enhanced packet", offset)
                yield self._packet(body, offset, section.epb.unpack_from(body), EPB_FIXED_LEN, block)
            elif block_type == BT_SPB:
                self._need(body, 4, "simple packet", offset)
                yield self._simple_packet(body, offset, block)
            elif block_type == BT_PB:
                self._need(body, PB_FIXED_LEN, "packet", offset)
                interface_id, _drops, high, low, caplen, orig_len = section.pb.unpack_from(body)
                yield self._packet(body, offset, (interface_id, high, low, caplen, orig_len), PB_FIXED_LEN)
            elif block_type == BT_IDB:
                self._need(body, 8, "interface description", offset)
                self._interface(section.block_header.pack(block_type, length) + bytes(rest), body)
            elif block_type == BT_SHB:
                self._need(body, 16, "section header", offset)
                self._section_header(section.block_header.pack(block_type, length) + bytes(rest), body, offset)
            elif block_type in OTHER_BLOCKS_KEPT and section.byte_order == self.byte_order and not section.first_interface:
                self._other_block(offset, section.block_header.pack(block_type, length) + bytes(rest))

    def _other_block(self, offset: int, block: bytes) -> None:
        if self._on_block is not None:
            self._on_block(offset, block)
        elif self._reading_head and self._head_bytes + len(block) <= HEAD_BLOCKS_LIMIT:
            self.head_blocks.append((offset, block))
            self._head_bytes += len(block)

    def _need(self, body: memoryview, size: int, what: str, offset: int) -> None:
        if len(body) < size:
            raise self._error(f"{what} block too short ({len(body)} bytes of body, needs {size})", offset)

    def _packet(
        self, body: memoryview, offset: int, fields: tuple[int, int, int, int, int], fixed_len: int,
        block: bytes | memoryview | None = None,
    ) -> CaptureRecord:
        """The record of an EPB (or obsolete PB) body."""
        local_id, high, low, caplen, orig_len = fields
        interface = self._interface_of(local_id, offset)
        if caplen > len(body) - fixed_len:
            raise self._error(
                f"captured length {caplen} exceeds its block ({len(body) - fixed_len} bytes of packet data)", offset
            )
        if caplen > MAX_SNAPLEN_STANDARD:
            self._check_length(caplen, interface.snaplen, offset)
        options = packet_options(body, fixed_len + caplen + _pad4(caplen), self._section.prefix)
        record = packet_record(self._index, interface, self._section.first_interface + local_id, body, fields,
                               fixed_len, self._section.prefix, block, options)
        self._index += 1
        return record

    def _simple_packet(self, body: memoryview, offset: int, block: bytes | memoryview | None = None) -> CaptureRecord:
        """The record of an SPB: interface 0 of the section, no timestamp (0), no options."""
        interface = self._interface_of(0, offset)
        (orig_len,) = self._section.length.unpack_from(body)
        caplen = simple_packet_caplen(orig_len, len(body), interface.snaplen)
        self._check_length(caplen, interface.snaplen, offset)
        record = CaptureRecord(
            self._index, 0, interface.linktype, body[4 : 4 + caplen], orig_len, self._section.first_interface,
            block=block, fcs_len=interface.fcs_len,
        )
        self._index += 1
        return record

    def _interface_of(self, local_id: int, offset: int) -> Interface:
        section = self._section
        if local_id >= section.interface_count:
            raise self._error(
                f"packet on interface id {local_id}, but its section describes {section.interface_count} "
                "interface(s) before it",
                offset,
            )
        return self.interfaces[section.first_interface + local_id]

    def _interface(self, block: bytes, body: memoryview) -> None:
        """Record an Interface Description Block."""
        section = self._section
        self.interfaces.append(interface_of(block, body, section.byte_order))
        section.interface_count += 1

    def _section_header(self, block: bytes, body: memoryview, offset: int) -> None:
        """Start a new section (``_slow_block`` already switched the byte order)."""
        section = self._section
        _magic, major, minor, _section_length = struct.unpack_from(section.prefix + "IHHq", body)
        if (major, minor) not in PCAPNG_VERSIONS:
            raise self._error(f"unsupported pcapng version {major}.{minor}", offset)
        if self.section_header:
            return
        self.byte_order = section.byte_order
        raw = bytearray(block)
        struct.pack_into(section.prefix + "q", raw, 16, SECTION_LENGTH_UNKNOWN)
        self.section_header = bytes(raw)
        for code, value in iter_options(body, 16, section.prefix):
            if code == OPT_COMMENT:
                self.comment = bytes(value).decode("utf-8", "replace")
                break


def interface_of(block: bytes, body: memoryview, byte_order: str) -> Interface:
    """The interface an Interface Description Block (``block`` whole, ``body`` its body, at least 8
    bytes) of a section in ``byte_order`` describes."""
    prefix = _ORDER_PREFIX[byte_order]
    linktype, _reserved, snaplen = struct.unpack_from(prefix + "HHI", body)
    interface = Interface(linktype, snaplen, 1_000_000, block=block, byte_order=byte_order)
    for code, value in iter_options(body, 8, prefix):
        if code == IF_TSRESOL and len(value) >= 1:
            interface.ticks_per_second = tsresol_ticks_per_second(value[0])
        elif code == IF_TSOFFSET and len(value) >= 8:
            interface.tsoffset_s = struct.unpack_from(prefix + "q", value)[0]
        elif code == IF_NAME:
            interface.name = bytes(value).decode("utf-8", "replace")
        elif code == IF_FCSLEN and len(value) >= 1:
            interface.fcs_len = if_fcslen_bytes(value[0])
    return interface


def if_fcslen_bytes(value: int) -> int:
    """The bytes of FCS an if_fcslen of ``value`` gives. The pcapng spec counts it in bits (epb_flags
    count bytes); readers that took it in bytes (Wireshark 4.0's) made writers put 2 or 4, values
    that no FCS has in bits: those are bytes. Anything else not whole bytes is FCS_LEN_UNKNOWN."""
    if value in (2, 4):
        return value
    return value // 8 if value % 8 == 0 else FCS_LEN_UNKNOWN


def packet_options(body: memoryview, options_start: int, prefix: str) -> tuple[str | None, int]:
    """What a packet block's options (from ``options_start``) say, in one walk: its first opt_comment
    (or None) and the FCS length its epb_flags give its frame (0: none said)."""
    comment, fcs_len = None, 0
    if options_start >= len(body):  # (most packets have no options)
        return comment, fcs_len
    for code, value in iter_options(body, options_start, prefix):
        if code == OPT_COMMENT and comment is None:
            comment = bytes(value).decode("utf-8", "replace")
        elif code == EPB_FLAGS and len(value) >= 4:
            fcs_len = int(struct.unpack_from(prefix + "I", value)[0]) >> 5 & 0xF
    return comment, fcs_len


def simple_packet_caplen(orig_len: int, body_len: int, snaplen: int) -> int:
    """The captured length of an SPB of ``body_len`` bytes of body on an interface of ``snaplen``."""
    caplen = min(orig_len, body_len - 4)
    return min(caplen, snaplen) if snaplen else caplen


def packet_record(index: int, interface: Interface, interface_id: int, body: memoryview,
                  fields: tuple[int, int, int, int, int], fixed_len: int, prefix: str,
                  block: bytes | memoryview | None = None,
                  options: tuple[str | None, int] | None = None) -> CaptureRecord:
    """The record of an EPB (or obsolete PB) body already checked: its (local id, timestamp high,
    low, caplen, orig_len) ``fields``, its comment read from its options (``options``: their
    packet_options, when the caller has read them)."""
    _, high, low, caplen, orig_len = fields
    data_end = fixed_len + caplen
    options = options or packet_options(body, data_end + _pad4(caplen), prefix)
    comment = options[0]
    timestamp_ns = ticks_to_ns(high << 32 | low, interface.ticks_per_second)
    if interface.tsoffset_s:
        timestamp_ns += interface.tsoffset_s * NS_PER_SECOND
    # the packet's own FCS length (epb_flags) where it gives one, else its interface's
    fcs_len = options[1] or interface.fcs_len
    return CaptureRecord(index, timestamp_ns, interface.linktype, body[fixed_len:data_end], orig_len, interface_id,
                         comment, block, fcs_len)


class PcapngRecordEncoder:
    """Enhanced Packet Blocks (and the SHB/IDBs before them) for a pcapng output file."""

    def __init__(self, section_header: bytes, interfaces: list[Interface], byte_order: str,
                 interfaces_written: int = 0) -> None:
        self.section_header = section_header
        self.interfaces = interfaces  # may be a reader's live list: IDBs found later are written later
        self.byte_order = byte_order
        self._prefix = _ORDER_PREFIX[byte_order]
        self._pack_header = struct.Struct(self._prefix + "IIIIIII").pack
        self._pack_length = struct.Struct(self._prefix + "I").pack
        # IDBs already in the file (a part of a file written elsewhere: none of its own)
        self._interfaces_written = interfaces_written
        # records' own blocks are written back as they are (open_writer: shaped like their reader)
        self.keeps_blocks = False

    def fcs_len(self, interface_id: int) -> int:
        """Bytes of FCS the file says end every frame of the interface (Interface.fcs_len)."""
        return self.interfaces[interface_id].fcs_len if interface_id < len(self.interfaces) else 0

    def other_block(self, block: bytes | memoryview) -> bytes | memoryview | None:
        """What writes ``block`` (one of OTHER_BLOCKS_KEPT, in this file's byte order) as it is, after
        the IDB its statistics are of when not written yet; None where this encoder does not keep
        blocks, or the block is of an interface never described."""
        if not self.keeps_blocks:
            return None
        block_type, length = struct.unpack_from(self._prefix + "II", block)
        if block_type == BT_ISB and length >= 16:
            (interface_id,) = struct.unpack_from(self._prefix + "I", block, 8)
            if interface_id >= len(self.interfaces):
                return None
            return self._after_interface(interface_id, block)
        return block

    def kept_block(self, record: CaptureRecord) -> bytes | memoryview | None:
        """The record's own packet block (after the IDBs it needs, if not yet written), when this
        encoder writes blocks back as they are and the record has one; else None."""
        if record.block is None or not self.keeps_blocks:
            return None
        return self._after_interface(record.interface_id, record.block)

    def _after_interface(self, interface_id: int, block: bytes | memoryview) -> bytes | memoryview:
        """``block``, after the IDBs up to interface ``interface_id`` when they are not written yet."""
        if interface_id >= self._interfaces_written:
            return self._new_interfaces(interface_id) + bytes(block)
        return block

    @property
    def interfaces_written(self) -> int:
        """How many of ``interfaces`` have their IDB in the file (a writer rolled back sets it back)."""
        return self._interfaces_written

    @interfaces_written.setter
    def interfaces_written(self, count: int) -> None:
        self._interfaces_written = count

    def _new_interfaces(self, up_to: int) -> bytes:
        if up_to >= len(self.interfaces):
            raise CaptureError(f"no interface {up_to} to write a record on ({len(self.interfaces)} described)")
        blocks = [encode_idb(self.interfaces[i], self.byte_order) for i in range(self._interfaces_written, up_to + 1)]
        self._interfaces_written = up_to + 1
        return b"".join(blocks)

    @property
    def default_linktype(self) -> int:
        """The link type of records written without one: interface 0's."""
        return self.interfaces[0].linktype

    def start(self) -> bytes:
        """The bytes that open the file: the SHB and the IDBs known so far."""
        idbs = self._new_interfaces(len(self.interfaces) - 1) if self.interfaces else b""
        return self.section_header + idbs

    def frame(
        self, timestamp_ns: int, caplen: int, orig_len: int, interface_id: int, comment: str | None, linktype: int
    ) -> tuple[bytes, bytes]:
        """(EPB header, EPB trailer) around ``caplen`` bytes of data."""
        prelude = self._new_interfaces(interface_id) if interface_id >= self._interfaces_written else b""
        interface = self.interfaces[interface_id]
        if linktype != interface.linktype:
            raise CaptureError(
                f"record of link type {linktype} written on interface {interface_id} of link type {interface.linktype}"
            )
        if interface.tsoffset_s:
            timestamp_ns -= interface.tsoffset_s * NS_PER_SECOND
        ticks = ns_to_ticks(timestamp_ns, interface.ticks_per_second)
        if not 0 <= ticks < 1 << 64:
            raise CaptureError(f"timestamp {timestamp_ns} ns does not fit a pcapng record")
        options = b""
        if comment is not None:
            options = _encode_options([encode_option(OPT_COMMENT, comment.encode(), self._prefix)], self._prefix)
        padding = _pad4(caplen)
        length = BLOCK_OVERHEAD + EPB_FIXED_LEN + caplen + padding + len(options)
        header = self._pack_header(BT_EPB, length, interface_id, ticks >> 32, ticks & 0xFFFFFFFF, caplen, orig_len)
        return prelude + header, b"\0" * padding + options + self._pack_length(length)
