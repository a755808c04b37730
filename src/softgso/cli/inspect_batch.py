"""``softgso inspect``'s reading: the records of a capture fed to a :class:`CaptureInspector` and to
coalesce's preview, through the bulk reader (softgso.bulk.frames) a walked chunk at a time where it
takes the file, else through the general reader one record at a time.

In a chunk, the short frames segment leaves untouched (the walk's codes 0-4, as segment's bulk
stream classifies them) that softgso.bulk._records.inspect_rows describes (plain TCP/UDP/other IP
over Ethernet and up to two VLAN tags, its lengths filling the frame or padding it; or a non-IP
ethertype) are counted a run at a time: the same counters as :meth:`CaptureInspector.add` counts
one by one, keys inserted in the order the frames first show them. Every other frame (a
super-packet, a tunnel, a label stack, a snapped record, a fragment, a length that disagrees, a
frame of another link type...) goes through :meth:`CaptureInspector.add` itself. ``inspect
--engine scalar`` reads every record with the general reader and counts it one by one: the
reference the tests hold this reading to.
"""

from __future__ import annotations

import ipaddress
import os
import struct
import sys
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from ..bulk.stream import CODE_SEED
from ..check.capdiff import IP_PROTO_NAMES, ethertype_name
from ..gro import CoalescePreview
from ..io import CaptureRecord, ethernet_view
from ..io.pcapng import BT_EPB, packet_options
from ..io.record import LINKTYPE_ETHERNET, NS_PER_SECOND, ticks_to_ns
from ..prepare import L4Checksum
from .inspect import CaptureInspector, FlowKey, _vlan_text

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from ..bulk.frames import BulkFrames, FrameBatch
    from ..job import SegmentOptions

# softgso.bulk._records.inspect_rows' row (InspectRow), in the machine's byte order
ROW_SIZE = 80
ROW_KIND = 22  # the row's kind byte
ROW_HEAD = struct.Struct("=QII")  # its ticks, orig_len, interface
ROW_WORDS = ROW_SIZE // 8  # the row in 64-bit words: its ticks the first
ROW_INTERFACE_WORD = 3  # the row in 32-bit words (2 * ROW_WORDS of them): its interface the fourth


def _numpy() -> Any:
    """numpy, imported when a chunk has rows to count (a capture of super-packets needs none)."""
    # numpy's BLAS would start a thread per core at import, which spin for a while and take CPU
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import numpy

    return numpy


@cache
def _row_dtype() -> Any:
    """The row as a numpy structured type."""
    return _numpy().dtype({
        "names": ["ticks", "wire_len", "interface", "length", "l3_len", "kind", "ipv4_state", "l4_state", "padded",
                  "tags", "ethertype", "version", "proto", "flow", "tag"],
        "formats": ["u8", "u4", "u4", "u4", "u2", "u1", "u1", "u1", "u1", "u1", "u2", "u1", "u1", "V40", ("u4", 2)],
        "offsets": [0, 8, 12, 16, 20, 22, 23, 24, 25, 26, 28, 32, 33, 32, 72],
        "itemsize": ROW_SIZE,
    })


KIND_IP, KIND_NON_IP = 1, 2
SPB_INTERFACE = 0xFFFFFFFF  # a row's interface for a Simple Packet Block (no timestamp: 0)
CODE_SCALAR = 5  # _segment.c's C_SCALAR: a record segment's scalar path takes (an EPB with a comment among them)
IPV4_STATES = (None, "valid", "invalid")
L4_STATES = (None, L4Checksum.ZERO.value, L4Checksum.COMPLETE.value, L4Checksum.PARTIAL.value,
             L4Checksum.SEED_NOLEN.value, L4Checksum.INVALID.value)
# the walk's codes of short frames left untouched: their input checksum state (softgso.bulk.fastpath.CODE_*)
CODE_STATES = {0: L4Checksum.ZERO.value, 1: L4Checksum.COMPLETE.value, 2: L4Checksum.PARTIAL.value,
               3: L4Checksum.INVALID.value}
PORT_MAP_LEN = 8192


def port_map(ports: tuple[int, ...] | list[int] | set[int]) -> bytearray:
    """A bit per UDP port (bit port & 7 of byte port >> 3), as _segment.scan and _records.inspect_rows read it."""
    bits = bytearray(PORT_MAP_LEN)
    for port in ports:
        bits[port >> 3] |= 1 << (port & 7)
    return bits


def inspect_bulk_reader(in_path: Path, options: SegmentOptions, inspector: CaptureInspector,
                        span: tuple[int, int | None, int] | None = None) -> tuple[BulkFrames | None, tuple[int, ...]]:
    """(the bulk reader inspect reads ``in_path`` with, or None where it does not take the file; the UDP
    ports a tunnel may use): short frames classified as segment's bulk stream does, where it does.
    ``span``: a part of the file (``inspect --jobs``, softgso.cli.inspect_jobs)."""
    from ..bulk.fastpath import TUNNEL_PORTS, scalar_ports
    from ..bulk.frames import open_bulk_frames
    from ..bulk.native import load_extension
    from ..bulk.stream import SMALL_CLASSIFY, SMALL_SEEDS, short_frames

    planner = inspector.planner
    small_limit, classify = short_frames(options, planner is not None and planner.fast.enabled)
    ports = scalar_ports(options)
    extra = set(ports) - set(TUNNEL_PORTS)
    # short frames whose checksum is a partial seed too, where the walk tells them (as segment's does)
    seeds = classify and hasattr(load_extension("_segment"), "complete_seeds")
    frames = open_bulk_frames(in_path, any_link=True, small_limit=small_limit,
                              bulk_small=(SMALL_CLASSIFY if classify else 0) | (SMALL_SEEDS if seeds else 0),
                              port_map=port_map(extra) if extra else None, span=span)
    return frames, ports


def add_record(inspector: CaptureInspector, preview: CoalescePreview, record: CaptureRecord,
               timestamp: bool = True) -> None:
    """Count one record of the general reader (or one the bulk reader hands out as a record): its
    Ethernet frame or, when it has none, the record itself."""
    problem = None
    original = record
    if record.fcs_len:  # as segment has it: the frame without its FCS, each segment with its own
        from ..io.fcs import stack_record

        record, problem = stack_record(record)
    view = ethernet_view(record)
    frame = None if view is None else view.frame
    # orig_len counts the record's own link header (cooked: not the frame's Ethernet one)
    wire_len = None if frame is None else len(frame) + record.orig_len - len(record.data)
    inspector.add(record.index, frame, linktype=record.linktype,
                  timestamp_ns=record.timestamp_ns if timestamp else None, wire_len=wire_len,
                  record_len=len(original.data), record=original, comment=record.comment, fcs_problem=problem)
    preview.add(None if frame is None or record.truncated else frame, record.index)


def _epb_comment(buffer: Any, head: int, big_endian: bool) -> str | None:
    """The opt_comment of the Enhanced Packet Block at ``head`` of ``buffer`` (None for another block)."""
    prefix = ">" if big_endian else "<"
    block_type, length = struct.unpack_from(prefix + "II", buffer, head)
    if block_type != BT_EPB:
        return None
    body = memoryview(buffer)[head + 8 : head + length - 4]
    caplen = struct.unpack_from(prefix + "I", body, 12)[0]  # after interface id and timestamp
    return packet_options(body, 20 + caplen + (-caplen & 3), prefix)[0]


def _distinct(values: np.ndarray) -> tuple[list[Any], list[int], list[int], np.ndarray]:
    """(distinct values, their counts, where each first shows, each value's place among them)."""
    distinct, first, inverse, counts = _numpy().unique(values, return_index=True, return_inverse=True, return_counts=True)
    return distinct.tolist(), counts.tolist(), first.tolist(), inverse.reshape(-1)


# a count to add: (the frame's place in its chunk that first shows the key, counter, key, count)
Event = tuple[int, Any, Any, int]


class BatchReader:
    """Feeds an inspector and coalesce's preview from a bulk reader, a chunk at a time (see the module)."""

    def __init__(self, inspector: CaptureInspector, preview: CoalescePreview, frames: BulkFrames,
                 tunnel_ports: tuple[int, ...] | list[int]) -> None:
        from ..bulk.native import load_extension

        self.inspector = inspector
        self.preview = preview
        self.frames = frames
        records = load_extension("_records")
        assert records is not None  # (frames is a bulk reader: the module is built)
        self._records = records
        self._ports = port_map(tunnel_ports)
        self._rows = bytearray(0)
        self._flows: dict[bytes, FlowKey] = {}
        self._vlans: dict[bytes, str] = {}
        self._seed_actions = bytearray(8)  # by class of a seeded short frame (_seeds)
        head = frames.head
        if frames.pcapng:
            self._linktypes = [interface.linktype for interface in head.interfaces]
        else:
            self._linktypes = [head.linktype]

    def run(self, progress: Callable[[int], None]) -> None:
        """Every frame the walk takes, section after section (the caller reads on from
        ``frames.next_index`` unless ``frames.walked_to_end``, and closes ``frames``)."""
        while True:
            # the preview's poll under way may hold views of a buffer the next chunk is read into
            self.frames.on_reuse = self.preview.detach
            batch = self.frames.next_batch()
            if batch is None:
                section = self.frames.next_section()
                if section is None:
                    return
                self.frames.close()
                self.frames = section
                self._linktypes = [interface.linktype for interface in section.head.interfaces]
                continue
            self._batch(batch)
            progress(self.frames.bytes_read)

    # -- one chunk --------------------------------------------------------------------------------

    def _batch(self, batch: FrameBatch) -> None:
        first, stop = batch.first, batch.stop
        count = stop - first
        if len(self._rows) < count * ROW_SIZE:
            self._rows = bytearray(max(count, 1024) * ROW_SIZE)
        codes = batch.codes[first:stop]
        self._records.inspect_rows(batch.buffer, batch.heads[first:stop], batch.starts[first:stop],
                                   batch.spans[first:stop], codes, count, self.frames.pcapng,
                                   self.frames.big_endian, self._ports, self._rows)
        self._timestamps(count)
        data = memoryview(batch.buffer)
        starts, spans = batch.starts[first:stop], batch.spans[first:stop]

        def frame(place: int) -> memoryview:
            return data[starts[place] : starts[place] + spans[place]]
        kinds = self._rows[ROW_KIND : count * ROW_SIZE : ROW_SIZE]
        events: list[Event] = []
        if kinds.count(0) == count:  # nothing the rows count (super-packets...): no numpy needed
            odd: list[int] = list(range(count))
        else:
            np = _numpy()
            rows = np.frombuffer(self._rows, _row_dtype(), count)
            walk_codes = np.frombuffer(codes, np.uint8)
            left = np.zeros(count, bool)
            seeded = (walk_codes == CODE_SEED) & (rows["kind"] != 0)
            if seeded.any():
                left = self._seeds(rows, seeded, frame)
            plain = np.flatnonzero(rows["kind"] != 0)
            self._count(rows[plain], plain, walk_codes[plain], left[plain], events)
            odd = np.flatnonzero(rows["kind"] == 0).tolist()
        # a counter's keys are inserted in the order the frames first show them, the per-frame
        # path's frames among them: each count is added before the first odd frame behind its key
        events.sort(key=_first_place)
        preview = self.preview
        at = taken = 0
        for place in [*odd, count]:
            while taken < len(events) and events[taken][0] < place:
                _, counter, key, times = events[taken]
                counter[key] += times
                taken += 1
            if at < place:
                preview.add_area(batch.buffer, starts[at:place], spans[at:place])
            if place < count:
                _, wire_len, interface = ROW_HEAD.unpack_from(self._rows, place * ROW_SIZE)
                comment = (_epb_comment(batch.buffer, batch.heads[first + place], self.frames.big_endian)
                           if self.frames.pcapng and codes[place] == CODE_SCALAR else None)
                self._one(batch.index + place, frame(place), interface, wire_len, comment)
            at = place + 1

    def _timestamps(self, count: int) -> None:
        """The earliest and latest record timestamps of a chunk (its ``count`` rows' ticks and interfaces),
        as the general reader gives them."""
        inspector = self.inspector
        found: list[int] = []
        rows = memoryview(self._rows)[: count * ROW_SIZE]
        ticks = rows.cast("Q")[::ROW_WORDS]
        if not self.frames.pcapng:
            per_tick = NS_PER_SECOND // self.frames.head.ticks_per_second
            for value in (min(ticks), max(ticks)):
                found.append((value >> 32) * NS_PER_SECOND + (value & 0xFFFFFFFF) * per_tick)
        else:
            numbers = rows.cast("I")[ROW_INTERFACE_WORD :: 2 * ROW_WORDS]
            ranges: dict[int, list[int]] = {}
            if min(numbers) == max(numbers):  # one interface (the usual capture): its range at once
                ranges[numbers[0]] = [min(ticks), max(ticks)]
            else:
                for value, number in zip(ticks, numbers, strict=True):
                    seen = ranges.get(number)
                    if seen is None:
                        ranges[number] = [value, value]
                    elif value < seen[0]:
                        seen[0] = value
                    elif value > seen[1]:
                        seen[1] = value
            for number, (low, high) in ranges.items():
                if number == SPB_INTERFACE:
                    found.append(0)
                    continue
                interface = self.frames.head.interfaces[number]
                for value in (low, high):
                    found.append(ticks_to_ns(value, interface.ticks_per_second)
                                 + interface.tsoffset_s * NS_PER_SECOND)
        low, high = min(found), max(found)
        inspector.first_ns = low if inspector.first_ns is None else min(inspector.first_ns, low)
        inspector.last_ns = high if inspector.last_ns is None else max(inspector.last_ns, high)

    def _one(self, index: int, frame: bytes | memoryview, interface: int, wire_len: int,
             comment: str | None = None) -> None:
        """A frame the rows do not count: through CaptureInspector.add (its record's, for another link type);
        ``comment``: its EPB's, whose GSO metadata segment reads."""
        linktype = self._linktypes[0 if interface == SPB_INTERFACE else interface]
        if linktype != LINKTYPE_ETHERNET:
            record = CaptureRecord(index, 0, linktype, frame, wire_len, comment=comment)
            add_record(self.inspector, self.preview, record, False)
            return
        self.inspector.add(index, frame, linktype=linktype, wire_len=wire_len, record_len=len(frame), comment=comment)
        self.preview.add(None if wire_len > len(frame) else frame, index)

    def _seeds(self, rows: np.ndarray, seeded: np.ndarray, frame: Callable[[int], memoryview]) -> np.ndarray:
        """The rows of short frames whose checksum is a partial seed (``seeded``): each class's action
        learnt from what the scalar path makes of its first frame (stream.seed_action), as segment's
        stream learns it; a row of a class no action fits is given to the per-frame code (its kind
        set to 0). Which rows' seeds segment leaves for the device."""
        from ..bulk.stream import SEED_LEAVE, SEED_SCALAR, SEED_UNKNOWN, seed_action
        from ..job import process_frame

        np = _numpy()
        classes = (rows["tags"] > 0) * 4 + (rows["version"] == 6) * 2 + (rows["proto"] == 17)
        actions = self._seed_actions
        for kind in np.unique(classes[seeded]).tolist():
            if actions[kind] == SEED_UNKNOWN:
                first = frame(int(np.flatnonzero(seeded & (classes == kind))[0]))
                actions[kind] = seed_action(process_frame(bytes(first), self.inspector.options), len(first))
        action = np.frombuffer(bytes(actions), np.uint8)[classes]
        rows["kind"][seeded & (action == SEED_SCALAR)] = 0
        return seeded & (action == SEED_LEAVE)

    def _count(self, rows: np.ndarray, places: np.ndarray, codes: np.ndarray, left: np.ndarray,
               events: list[Event]) -> None:
        """Count the frames the rows describe (at ``places`` of their chunk), as CaptureInspector.add
        would one by one: totals at once, each counter's keys as events. ``left``: the frames of
        partial seeds that segment leaves for the device (every other one of code CODE_SEED it
        completes)."""
        np = _numpy()
        inspector = self.inspector
        count = len(rows)
        lengths = rows["length"]
        nbytes = int(lengths.sum())
        inspector.packets += count
        inspector.bytes_in += nbytes
        l3_lens = rows["l3_len"]
        inspector.largest = max(inspector.largest, int(lengths.max()))
        inspector.largest_l3 = max(inspector.largest_l3, int(l3_lens.max()))
        inspector.over_mtu += int((l3_lens > inspector.mtu).sum())
        # segment: each frame written untouched (its input checksum state, the walk's, below), or sent
        # as one frame with its partial seed completed or left
        summary = inspector.summary
        seeded = codes == CODE_SEED
        seeds = int(seeded.sum())
        seed_bytes = int(lengths[seeded].sum()) if seeds else 0
        summary.add_unchanged(count - seeds, nbytes - seed_bytes, {})
        if seeds:
            summary.add_completed(seeds, seed_bytes, int(left.sum()))
        inspector.segments_out += count
        inspector.bytes_out += nbytes

        def add(counter: Any, values: Any, where: Any, name: Callable[[Any], Any] | None = None) -> None:
            distinct, counts, firsts, _ = _distinct(values)
            for value, times, first in zip(distinct, counts, firsts, strict=True):
                events.append((int(where[first]), counter, value if name is None else name(value), times))

        sizes, counts, firsts, _ = _distinct(lengths)
        for size, times, first in zip(sizes, counts, firsts, strict=True):
            at = int(places[first])
            events.append((at, inspector.sizes_in, size, times))
            events.append((at, inspector.sizes_out, size, times))  # written untouched: the same sizes
        known = codes <= 3
        add(summary.input_checksums, codes[known], places[known], CODE_STATES.__getitem__)
        tagged = rows["tags"] > 0
        if tagged.any():
            keys = np.zeros(int(tagged.sum()), np.dtype([("tags", "u4"), ("tag", "u4", 2)]))
            keys["tags"], keys["tag"] = rows["tags"][tagged], rows["tag"][tagged]
            add(inspector.vlan_tags, keys.view("V12"), places[tagged], self._vlan_text)
        kinds = rows["kind"]
        non_ip = kinds == KIND_NON_IP
        if non_ip.any():
            add(inspector.non_ip, rows["ethertype"][non_ip], places[non_ip], ethertype_name)
        is_ip = kinds == KIND_IP
        if not is_ip.any():
            return
        ip, where = rows[is_ip], places[is_ip]
        ipv4 = ip["ipv4_state"] > 0
        add(inspector.ipv4_checksums, ip["ipv4_state"][ipv4], where[ipv4], IPV4_STATES.__getitem__)
        inspector.ethernet_padding += int(ip["padded"].sum())
        raws, counts, firsts, places_of = _distinct(ip["flow"])
        flow_bytes = np.bincount(places_of, weights=ip["length"], minlength=len(raws)).tolist()
        flows = self._flows
        raw: bytes
        for raw, times, first, nbytes_of in zip(raws, counts, firsts, flow_bytes, strict=True):
            key = flows.get(raw)
            if key is None:
                key = flows[raw] = self._flow_key(raw)
            at = int(where[first])
            events.append((at, inspector.flows, key, times))
            events.append((at, inspector.flow_bytes, key, int(nbytes_of)))
        protos = ip["proto"]
        other = (protos != 6) & (protos != 17)
        if other.any():
            add(inspector.other_ip, protos[other], where[other], _protocol_name)
        l4 = ip["l4_state"] > 0
        add(inspector.l4_checksums, ip["l4_state"][l4], where[l4], L4_STATES.__getitem__)

    def _vlan_text(self, key: bytes) -> str:
        """inspect's name of a row's tags (its tag count, then each tag's TPID << 16 | TCI)."""
        text = self._vlans.get(key)
        if text is None:
            words = list(struct.unpack(f"={len(key) // 4}I", key))
            text = self._vlans[key] = _vlan_text([(word >> 16, word & 0xFFFF) for word in words[1 : 1 + words[0]]])
        return text

    @staticmethod
    def _flow_key(raw: bytes) -> FlowKey:
        """A row's flow (version, protocol, ports in the machine's order, addresses) as inspect names it."""
        version, proto = raw[0], raw[1]
        sport = int.from_bytes(raw[2:4], sys.byteorder)
        dport = int.from_bytes(raw[4:6], sys.byteorder)
        if version == 4:
            src, dst = str(ipaddress.IPv4Address(raw[8:12])), str(ipaddress.IPv4Address(raw[24:28]))
        else:
            src, dst = str(ipaddress.IPv6Address(raw[8:24])), str(ipaddress.IPv6Address(raw[24:40]))
        return _protocol_name(proto), src, sport, dst, dport


def _protocol_name(proto: int) -> str:
    return IP_PROTO_NAMES.get(proto, f"IP protocol {proto}")


def _first_place(event: Event) -> int:
    return event[0]
