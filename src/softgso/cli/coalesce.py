"""``softgso coalesce``'s whole run without click: read IN, run Linux GRO over its frames in polls of
``--batch`` frames (softgso.gro), write one record per packet GRO hands to the stack to OUT (atomically,
through open_writer), print the summary, exit with the documented status. A classic pcap of Ethernet
streams in bulk (softgso.bulk.coalesce_stream: the compiled GRO poll by poll, :class:`PollWriter` for
the polls it does not take); everything else goes record by record through :class:`PollWriter`.

Frames are numbered from 1 in every message, as tshark numbers them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CaptureError, UsageError
from .runner import (
    EXIT_IO,
    EXIT_REFUSED,
    echo,
    is_dash,
    json_dumps,
    progress_bar,
    refuse_a_compressed_name,
    refuse_a_terminal,
)

if TYPE_CHECKING:
    from ..gro import CoalesceSummary, GroDevice
    from ..io.record import CaptureRecord
    from ..io.writer import CaptureWriter

# why a frame passed up unchanged is worth a report (and exit 1 under --strict): GRO could not read it
REPORTED = ("truncated", "bad ", "snapped", "not an Ethernet", "shorter than")


def run_coalesce(in_path: Path, out_path: Path, batch: int = 64, gro_max_size: int = 65536,
                 kernel: str = "6.1", mpls: bool = False, as_json: bool = False, quiet: bool = False,
                 strict: bool = False, udp_gro_forwarding: bool = False,
                 output_format: str | None = None, engine: str = "auto") -> None:
    """Coalesce IN into OUT as the receiving kernel's GRO would; exit 1 under --strict on a report.

    ``engine``: "auto" streams a classic pcap of Ethernet through the compiled GRO where it is built
    (softgso.bulk.coalesce_stream; polls of other shapes through the scalar engine), "scalar" reads
    every record through the scalar engine; both write the same bytes."""
    from ..bulk.coalesce_stream import CoalesceStream, stream_applies
    from ..bulk.stream import pcap_ethernet_header
    from ..gro import GRO_MAX_SIZE, KERNELS, CoalesceSummary, GroDevice
    from ..io import open_capture, open_writer
    from ..io.outfile import output_target, refuse_an_input

    refuse_an_input(str(out_path), str(in_path))
    refuse_a_terminal(out_path)
    refuse_a_compressed_name(out_path)
    # how OUT is written (a directory or a block device refused here, before IN is read)
    target = None if is_dash(out_path) else output_target(str(out_path))
    if kernel not in KERNELS:
        raise UsageError(f"--kernel {kernel}: one of {', '.join(KERNELS)}")
    if not 1 <= batch <= 1 << 20:
        raise UsageError(f"--batch {batch}: 1..{1 << 20}")
    if not 1 <= gro_max_size <= GRO_MAX_SIZE:
        raise UsageError(f"--gro-max-size {gro_max_size}: 1..{GRO_MAX_SIZE} (GRO_MAX_SIZE)")
    if engine not in ("auto", "scalar"):
        raise UsageError(f"--engine {engine}: auto or scalar")
    device = GroDevice(kernel=kernel, gro_max_size=gro_max_size, gro_ipv4_max_size=gro_max_size, mpls=mpls,
                       udp_gro_forwarding=udp_gro_forwarding)
    summary = CoalesceSummary()
    started = time.perf_counter()
    with open_capture(in_path) as reader, open_writer(out_path, like=reader, format=output_format) as writer, \
            progress_bar(quiet, int(getattr(reader, "file_size", 0) or 0), "coalesce") as bar:
        polls = PollWriter(device, summary, writer, engine)
        if hasattr(reader, "keep_blocks"):  # blocks about the capture, written with the poll they came in
            reader.keep_blocks(lambda offset, block: polls.blocks.append((reader.records_read, block)))
        header_info = pcap_ethernet_header(in_path) if reader.format == "pcap" and engine == "auto" else None
        if stream_applies(device, batch, header_info, writer.format):
            assert header_info is not None
            stream = CoalesceStream(device, batch, summary)

            def rest(index: int) -> None:
                with open_capture(in_path) as again:
                    polls.run(islice(again, index, None), batch, lambda: bar(int(again.bytes_read)))

            stream.run(in_path, writer, header_info, polls.poll, rest, bar)
            bytes_in, bytes_out = stream.bytes_in + polls.bytes_in, stream.bytes_out + polls.bytes_out
            compiled_polls = stream.compiled_polls
        else:
            polls.run(reader, batch, lambda: bar(int(getattr(reader, "bytes_read", 0) or 0)))
            bytes_in, bytes_out = polls.bytes_in, polls.bytes_out
            compiled_polls = 0
    elapsed = time.perf_counter() - started
    reports = {reason: (count, summary.first_passed.get(reason, 0)) for reason, count in summary.passed.items()
               if reason.startswith(REPORTED)}
    payload = {**summary.as_dict(), "compiled_polls": compiled_polls, "bytes_in": bytes_in, "bytes_out": bytes_out, "kernel": kernel,
               "batch": batch, "gro_max_size": gro_max_size, "mpls": mpls,
               "reports": {reason: {"frames": count, "first_frame": first + 1}
                           for reason, (count, first) in reports.items()},
               "elapsed_s": round(elapsed, 6), "out": str(out_path)}
    note = "written to standard output as it came (not atomic)" if target is None else target.note()
    input_errors = [{"frame": index + 1, "reason": reason} for index, reason in polls.input_errors]
    # the facts every command that writes a capture has, under segment's names (frames_in, packets_out,
    # elapsed_s and out stay: GRO's own words)
    payload.update({"records_in": payload["frames_in"], "records_out": payload["packets_out"],
                    "seconds": payload["elapsed_s"], "output": str(out_path), "input_errors": input_errors,
                    "atomic": note is None, "output_written": note})
    to_stderr = is_dash(out_path) or (target is not None and target.shares_stdout())
    for reason, (count, first) in sorted(reports.items()):
        frames_word = "frame" if count == 1 else "frames"
        echo(f"softgso: {reason}: {count:,} {frames_word} passed up unchanged (first: frame {first + 1})", err=True)
    for error in input_errors:
        echo(f"softgso: frame {error['frame']}: {error['reason']}", err=True)
    if as_json:
        echo(json_dumps(payload, indent=2), err=to_stderr)
    elif not quiet:
        _print_summary(payload, to_stderr)
        if note and target is not None:
            echo(f"softgso: {note}", err=to_stderr)
    if input_errors:
        sys.exit(EXIT_IO)
    if strict and reports:
        sys.exit(EXIT_REFUSED)


class PollWriter:
    """A coalesce run poll by poll over records (any format, any link type): each poll's Ethernet frames
    through softgso.gro.coalesce_poll_at (``engine``: "auto", the compiled GRO where it takes the poll;
    "scalar"), its packets written in the order the stack gets them."""

    def __init__(self, device: GroDevice, summary: CoalesceSummary, writer: CaptureWriter, engine: str = "auto") -> None:
        self.device = device
        self.engine = engine
        self.summary = summary
        self.writer = writer
        self.pcapng = writer.format == "pcapng"
        self.bytes_in = 0
        self.bytes_out = 0
        # pcapng blocks about the capture (softgso.io.pcapng.OTHER_BLOCKS_KEPT) not written yet, each with
        # the records read before it: written before the packets of the poll that holds the record after
        # it (GRO reorders within a poll), or at the end
        self.blocks: list[tuple[int, bytes]] = []
        self.input_errors: list[tuple[int, str]] = []  # (index, reason): where the reading stopped

    def run(self, records: Iterable[CaptureRecord], batch: int, progress: Callable[[], None]) -> None:
        """Every record, ``batch`` to a poll (the last may hold fewer). A record the reader cannot read
        ends the reading, not the run (as segment's): the records before it are coalesced and written
        (the last poll ends there), and the break is kept in ``input_errors``."""
        poll: list[CaptureRecord] = []
        iterator = iter(records)
        read = -1  # the index of the last record read
        while True:
            try:
                record = next(iterator)
            except StopIteration:
                break
            except CaptureError as error:
                index = getattr(error, "index", None)
                self.input_errors.append((read + 1 if index is None else index,
                                          f"input broken, reading stopped: {error}"))
                break
            read = record.index
            poll.append(record)
            if len(poll) == batch:
                self.poll(poll)
                poll = []
                progress()
        if poll:
            self.poll(poll)
        self._write_blocks(self.writer)  # (those after the last record)
        progress()

    def _write_blocks(self, writer: Any, before: int | None = None) -> None:
        """The blocks read before record ``before`` (every one: None)."""
        kept = []
        for read, block in self.blocks:
            if before is None or read <= before:
                writer.write_block(block)
            else:
                kept.append((read, block))
        self.blocks[:] = kept

    def poll(self, records: list[CaptureRecord], sink: Any = None) -> None:
        """One poll: GRO over the records' Ethernet frames (softgso.gro.coalesce_poll_at: the compiled GRO
        where it takes them), then the flush; what leaves, written in order (to ``sink``, a stand-in with
        the writer's write/write_record, when given). A record with no Ethernet frame (snapped, another
        link type) is passed up at its place, as coalesce_frames has it."""
        from ..gro import GroPacket, coalesce_poll_at, gso_comment
        from ..io import ethernet_view, from_ethernet_parts
        from ..io.record import UnrepresentableFrameError

        writer = sink if sink is not None else self.writer
        summary = self.summary
        summary.frames_in += len(records)
        summary.polls += 1
        frames: list[bytes] = []
        owners: list[CaptureRecord] = []  # the record of each Ethernet frame
        passed_up: dict[int, str] = {}  # position in the poll -> why its record has no frame
        for position, record in enumerate(records):
            self.bytes_in += len(record.data)
            if record.truncated:
                passed_up[position] = "snapped record"
                continue
            view = ethernet_view(record)
            if view is None:
                passed_up[position] = "not an Ethernet frame (link type)"
                continue
            frames.append(bytes(view.frame))
            owners.append(record)
        left = coalesce_poll_at(frames, self.device, self.engine)
        if self.blocks and records:
            self._write_blocks(writer, records[-1].index)

        def write(packet: GroPacket) -> None:
            record = owners[packet.meta]
            summary.count(packet, record.index)
            try:
                parts = from_ethernet_parts(packet.data, record)
            except UnrepresentableFrameError as error:  # cannot happen for frames GRO left as they came
                raise CaptureError(f"frame {record.index + 1}: {error.reason}") from error
            comment = gso_comment(packet) if self.pcapng else None
            writer.write_record(record.timestamp_ns, parts, None, interface_id=record.interface_id,
                                comment=comment if comment is not None else record.comment,
                                linktype=record.linktype)
            self.bytes_out += sum(len(part) for part in parts)

        at = 0  # the next packet of ``left``
        received = 0  # Ethernet frames received so far
        for position, record in enumerate(records):
            if position in passed_up:
                summary.count(GroPacket(b"", record, 1, 0, 0, (), "", passed_up[position], False), record.index)
                writer.write(record)
                self.bytes_out += len(record.data)
                continue
            while at < len(left) and left[at][0] == received:
                write(left[at][1])
                at += 1
            received += 1
        for _, packet in left[at:]:  # the poll-end flush
            write(packet)


def _print_summary(payload: dict[str, Any], err: bool) -> None:
    echo(f"frames in {payload['frames_in']:,}, packets out {payload['packets_out']:,}: "
         f"{payload['coalesced']:,} coalesced from {payload['frames_merged']:,} frames "
         f"({payload['polls']:,} polls of up to {payload['batch']}, {payload['compiled_polls']:,} of them through the "
         f"compiled GRO; kernel {payload['kernel']})", err=err)
    for title, key in (("held packets completed", "flushes"), ("frames passed up at once", "passed")):
        if payload[key]:
            echo(f"{title}:", err=err)
            for reason, count in sorted(payload[key].items(), key=lambda item: (-item[1], item[0])):
                echo(f"  {count:>10,}  {reason}", err=err)
    echo(f"wrote {payload['out']}", err=err)
