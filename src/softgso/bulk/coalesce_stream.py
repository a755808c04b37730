"""``softgso coalesce`` for classic pcap files of Ethernet frames, in bulk.

The input is read a chunk at a time; the compiled GRO (softgso/gro/_coalesce.c) takes it poll by poll
and writes each poll's packets as pcap records into one output buffer, handed to the writer whole. A
poll it does not take (a shape other than the common one, a bad checksum, a snapped record) is decoded
here into records and given to ``scalar_poll``, the command's own per-poll step over the scalar engine;
from a record the bulk reader does not take (longer than it reads, cut short by the file's end), the
general reader takes over to the end (``scalar_rest``), so its output and its errors are its own.
Polls are independent (each ends in a full flush), so the output is the scalar path's, byte for byte.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..gro.coalesce import CoalesceSummary, add_counted, compiled_gro, compiled_params, new_counters
from ..gro.dev import GroDevice
from ..io.pcap import FILE_HEADER_LEN, RECORD_HEADER_LEN
from ..io.record import LINKTYPE_ETHERNET, NS_PER_SECOND, CaptureRecord
from ..io.writer import CaptureWriter
from .chunks import Handoff, fill, open_input, write_stage
from .stream import record_limits

CHUNK_SIZE = 4 << 20  # read at a time (grown when one poll does not fit)
QUEUE_DEPTH = 2  # chunks of packets waiting for the writing thread
SWITCH_INTERVAL = 0.0002  # seconds, as segment's pipeline (see softgso.bulk.pipeline)



class DeferredWrites:
    """A stand-in for the CaptureWriter in the reading thread: the writes a scalar poll makes are kept, in
    order, and replayed on the writer by the writing thread (which alone touches it)."""

    def __init__(self, format: str) -> None:
        self.format = format
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def write(self, *args: Any, **kwargs: Any) -> None:
        """CaptureWriter.write, later."""
        self.calls.append(("write", args, kwargs))

    def write_record(self, *args: Any, **kwargs: Any) -> None:
        """CaptureWriter.write_record, later."""
        self.calls.append(("write_record", args, kwargs))

    def replay(self, writer: CaptureWriter) -> None:
        """Make the kept writes on ``writer``, in order."""
        for name, args, kwargs in self.calls:
            getattr(writer, name)(*args, **kwargs)


def stream_applies(device: GroDevice, batch: int, header_info: tuple[bytes, str, bool, int] | None,
                   output_format: str) -> bool:
    """True when the bulk stream can run: the compiled GRO is built and takes the device's settings, IN
    is a regular classic pcap file of Ethernet (no FCS bits in its link type field), OUT is pcap."""
    if header_info is None or output_format != "pcap" or compiled_params(device, batch) is None:
        return False
    header, order, _, _ = header_info
    (linktype_field,) = struct.unpack_from("<I" if order == "little" else ">I", header, 20)
    return linktype_field == LINKTYPE_ETHERNET


class CoalesceStream:
    """Coalesce one classic pcap file into a writer of the same format."""

    def __init__(self, device: GroDevice, batch: int, summary: CoalesceSummary) -> None:
        params = compiled_params(device, batch)
        if params is None or compiled_gro is None:
            raise ValueError("the compiled GRO does not take this device (see stream_applies)")
        self.params = params
        self.batch = batch
        self.summary = summary
        self.bytes_in = 0
        self.bytes_out = 0
        self.compiled_polls = 0  # polls the compiled GRO took (the others went to scalar_poll / scalar_rest)

    def run(self, in_path: Path, writer: CaptureWriter, header_info: tuple[bytes, str, bool, int],
            scalar_poll: Callable[[list[CaptureRecord], Any], None], scalar_rest: Callable[[int], None],
            progress: Callable[[int], None] | None = None) -> None:
        """Stream IN into ``writer`` (whose file header is written). ``scalar_poll(records, sink)`` coalesces
        one poll's records with the scalar engine and writes them to ``sink`` (a stand-in for ``writer``
        with its ``write``, ``write_record`` and ``format``); ``scalar_rest(index)`` does so for every
        record from ``index`` to the end, reading the file itself and writing to ``writer``.

        This thread reads and coalesces; a writing thread hands each chunk's packets to the writer and,
        while it waits, reserves the output's next pages (CaptureWriter.reserve_ahead): the costly half of
        writing to tmpfs, as segment's pipeline does."""
        _, order, nanosecond, snaplen = header_info
        big_endian = order != "little"
        ticks, max_caplen = record_limits(nanosecond, snaplen)
        assert compiled_gro is not None
        run_chunk = compiled_gro.coalesce_pcap
        unpack_header = struct.Struct((">" if big_endian else "<") + "IIII").unpack_from
        ns_per_tick = NS_PER_SECOND // ticks
        counters = new_counters()
        # (the table of passes naming a number fills with the file's first 64 kinds; a poll holding a
        # 65th goes to the scalar engine)
        fd = open_input(in_path)
        size = os.fstat(fd).st_size
        # a small file gets buffers its size (zeroing several chunks would be most of its run)
        chunk = max(min(CHUNK_SIZE, size - FILE_HEADER_LEN), 1 << 16)
        buffer = bytearray(chunk)
        # being filled, queued, being written, spare: a buffer is filled again only once written
        outs = [bytearray(chunk) for _ in range(QUEUE_DEPTH + 3)]
        writes = Handoff(QUEUE_DEPTH)
        failure: list[BaseException] = []

        def write(parts: Any, records: int) -> None:
            if isinstance(parts, DeferredWrites):
                parts.replay(writer)
            else:
                writer.write_framed(parts, records)

        thread = threading.Thread(target=write_stage(writes.get, write, size, failure, reserve=writer.reserve_ahead),
                                  daemon=True)
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)  # the writer gets the GIL back at once after each writev
        thread.start()

        def hand_over(parts: Any, records: int, done_up_to: int) -> None:
            while not writes.put((parts, records, done_up_to), timeout=0.1):
                if failure or not thread.is_alive():
                    break

        rest_from = -1
        try:
            pos = FILE_HEADER_LEN  # the file offset of buffer[0]
            index = 0  # the number of the record at the next start
            carried = b""
            turn = 0
            while not failure:
                got = fill(fd, buffer, carried, pos, len(buffer))
                final = got < len(buffer) or pos + got >= size  # the file ends in this buffer
                start = 0
                while True:
                    if len(outs[turn % len(outs)]) < len(buffer):
                        outs[turn % len(outs)] = bytearray(len(buffer))
                    out = outs[turn % len(outs)]
                    packets_before = counters[1]
                    status, start, out_len, records = run_chunk(
                        buffer, start, got, big_endian, ticks, max_caplen, final, self.params, out, counters, index)
                    index += records
                    if out_len:
                        hand_over([memoryview(out)[:out_len]], counters[1] - packets_before, pos + start)
                        turn += 1
                    if status != compiled_gro.POLL:
                        break
                    polled, start = self._records_at(buffer, start, got, unpack_header, ns_per_tick, index)
                    sink = DeferredWrites(writer.format)
                    scalar_poll(polled, sink)
                    hand_over(sink, 0, pos + start)
                    index += len(polled)
                if progress is not None:
                    progress(pos + start)
                if status == compiled_gro.REST:
                    rest_from = index
                    break
                if final:
                    break
                # the next poll is not whole in the buffer (MORE) or the buffer ended on a record (DONE):
                # read on from there, into a larger buffer when not even one poll fitted
                carried = bytes(buffer[start:got])
                pos += start
                if start == 0:
                    buffer = bytearray(2 * len(buffer))
        finally:
            writes.put(None)
            thread.join()
            sys.setswitchinterval(switch_interval)
            os.close(fd)
        if failure:
            raise failure[0]
        self._merge(counters)
        if rest_from >= 0:
            scalar_rest(rest_from)

    def _records_at(self, buffer: bytearray, at: int, end: int, unpack_header: Callable[..., tuple[int, ...]],
                    ns_per_tick: int, index: int) -> tuple[list[CaptureRecord], int]:
        """The poll's records from ``at`` (whole: the compiled GRO checked them), as the pcap reader makes
        them; and the offset after them."""
        records: list[CaptureRecord] = []
        while len(records) < self.batch and at < end:
            seconds, fraction, caplen, orig_len = unpack_header(buffer, at)
            data = bytes(buffer[at + RECORD_HEADER_LEN : at + RECORD_HEADER_LEN + caplen])
            records.append(CaptureRecord(index + len(records), seconds * NS_PER_SECOND + fraction * ns_per_tick,
                                         LINKTYPE_ETHERNET, data, orig_len))
            at += RECORD_HEADER_LEN + caplen
        return records, at

    def _merge(self, counters: array) -> None:
        """Add the compiled GRO's counts to the summary (its first passed frames where they come first)."""
        summary = self.summary
        frames_in, _, _, _, polls, bytes_in, bytes_out = counters[:7]
        summary.frames_in += frames_in
        summary.polls += polls
        self.compiled_polls += polls
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out
        add_counted(summary, counters)
