"""What the file commands do, without click: ``segment``'s whole run, the record loop and the
progress bar the file commands share, summaries and exit statuses.

softgso.cli.commands declares the commands (click) on top of this; softgso.cli.entry runs a plain ``segment``
from here directly, so that it starts without importing click.

Exit status (every command): 0 success; 1 differences found (``diff``) or packets refused under
``--strict``; 2 usage error; 3 input or output file error; 130 interrupted (Ctrl-C); 141 the
reader of standard output went away (a broken pipe, quietly, as cat ends); 143 terminated (SIGTERM).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from ..errors import CaptureError, UsageError
from ..valueclass import FrozenValueClass, init_fields

TYPE_CHECKING = False  # typing costs start-up milliseconds; mypy reads this name as typing's
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3
# 128 + the signal, as a shell reports a process the signal ended; SIGPIPE's: the reader of our
# standard output went away (``softgso segment IN - | head -c 100``), an ordinary end, said by nothing else
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE, EXIT_TERMINATED = 130, 141, 143


def echo(text: str, err: bool = False) -> None:
    """One line on stdout (stderr with ``err``), flushed: click.echo's contract for plain text."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


# the errors a command ends with by a message and a status (any other exception is a bug: a traceback)
COMMAND_ERRORS = (UsageError, CaptureError, OSError, KeyboardInterrupt)


def error_status(error: BaseException) -> tuple[str, int]:
    """The message and exit status a command ends with on one of COMMAND_ERRORS."""
    if isinstance(error, UsageError):
        return f"softgso: error: {error}", EXIT_USAGE
    if isinstance(error, CaptureError):
        return f"softgso: error: {error}", EXIT_IO
    if isinstance(error, BrokenPipeError) and error.filename is None:
        # as cat and tcpdump end when their reader does: quietly (no message), status 128 + SIGPIPE
        return "", EXIT_BROKEN_PIPE
    if isinstance(error, OSError):
        where = f": {error.filename}" if error.filename else ""
        return f"softgso: error: {error.strerror or error}{where}", EXIT_IO
    return "softgso: interrupted; no output written", EXIT_INTERRUPTED


class sigterm_unwinds:  # noqa: N801 - used as a context manager, named like one
    """SIGTERM unwinds like Ctrl-C while a command runs, so an atomic writer removes its temporary
    file; the caller's handler is back afterwards (the CLI also runs in-process). A class rather than
    a contextlib.contextmanager: contextlib is not on the start-up path of a plain run."""

    def __enter__(self) -> None:
        # _signal, signal's C half: signal itself builds its enums at import (~0.6 ms of start-up)
        import _signal

        try:
            self.previous: Any = _signal.signal(_signal.SIGTERM, _terminate)
        except ValueError:  # not the main thread: leave signals to whoever runs us
            self.previous = None

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            import _signal

            _signal.signal(_signal.SIGTERM, self.previous)


def run_guarded(function: Callable[[], None]) -> None:
    """Run a command as the CLI does: its errors become a message and the documented exit status."""
    with sigterm_unwinds():
        try:
            function()
        except COMMAND_ERRORS as error:
            message, status = error_status(error)
            if status == EXIT_BROKEN_PIPE:
                reader_gone()
            else:
                echo(message, err=True)
            sys.exit(status)


def reader_gone() -> None:
    """Standard output's reader went away: point stdout at /dev/null, so that what is still buffered
    for it goes nowhere at exit instead of failing again ("Exception ignored ... BrokenPipeError"),
    as the Python documentation's note on SIGPIPE does. Nothing is said: a pipe's reader stopping
    early (``| head``) is normal use."""
    try:
        stdout = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real stream (run in-process, e.g. by a test)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stdout)
    finally:
        os.close(devnull)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_TERMINATED)


# --- shared option plumbing ----------------------------------------------------------------------


def _device(name: str, mtu: int | None, output_csum: str | None) -> Any:
    from ..features import NETIF_F_CSUM_MASK, NetdevFeature
    from ..io.profile import load_profile

    device = load_profile(name)
    changes: dict[str, Any] = {}
    if mtu is not None:
        if not 68 <= mtu <= 65535:
            raise UsageError(f"--mtu {mtu} out of range 68..65535")
        changes["mtu"] = mtu
    if output_csum == "partial":
        changes["features"] = device.features | NetdevFeature.HW_CSUM
        changes["mpls_features"] = device.mpls_features | NetdevFeature.HW_CSUM
        changes["vlan_features"] = device.vlan_features | NetdevFeature.HW_CSUM
    elif output_csum == "complete":
        changes["features"] = device.features & ~NETIF_F_CSUM_MASK
        changes["mpls_features"] = device.mpls_features & ~NETIF_F_CSUM_MASK
    return device.with_overrides(**changes) if changes else device


def progress_display(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), transient=True, console=rich_console(stderr=True),
    ), total


def rich_console(stderr: bool = False) -> Any:
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False)
    # rich ends the process (status 1) when the reader of its output goes away; let the command end
    # as every softgso command does then (quietly, status 141)
    console.on_broken_pipe = _broken_pipe  # type: ignore[method-assign]
    return console


def _broken_pipe() -> None:
    import errno

    raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def json_dumps(value: Any, **options: Any) -> str:
    """json.dumps, imported on first use (json is not on the start-up path of a plain run)."""
    import json

    return json.dumps(value, **options)


def show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


# what a command is told of a record no engine reads as a packet: (index, bytes, kind, reason, over the MTU)
Passthrough = Callable[[int, int, str, str, bool], None]


def stream_records(
    in_path: str | os.PathLike[str], out_path: str | os.PathLike[str], quiet: bool, per_frame: Callable[[int, bytes], tuple[list[bytes], str | None]],
    description: str, bulk: Any = None, passthrough: Passthrough | None = None, mtu: int = 1500,
    output_format: str | None = None,
) -> tuple[dict[str, int], list[tuple[int, str]], float]:
    """Read IN record by record, write what ``per_frame`` returns to OUT atomically.

    Records that are not Ethernet (after cooked-header conversion) or cannot be read as such are
    copied through unchanged and reported. With ``bulk`` (a stream from :func:`softgso.bulk.stream.make_bulk_stream`)
    a classic pcap of Ethernet goes through it instead, and the scalar loop takes over at the first
    record it leaves (if any). OUT is in IN's format unless ``output_format`` ("pcap", "pcapng": -F)
    says otherwise. Returns counters, reports and elapsed seconds.
    """
    from ..io import open_capture, open_writer

    started = time.perf_counter()
    header_info = None
    # the bulk streams write IN's own format (a pcap's file header, a pcapng's SHB and IDBs): -F to
    # the other one takes the scalar loop
    linktype = 1
    if bulk is not None and output_format != "pcapng":
        from ..bulk.stream import open_pcap_writer, pcap_header

        found = pcap_header(in_path)
        if found is not None:
            header_info, linktype = found
    if bulk is not None and header_info is None and output_format != "pcap":
        from ..bulk.stream import pcapng_header

        blocks = pcapng_header(in_path)
        if blocks is not None:
            total = os.path.getsize(in_path)
            with open_writer(out_path, like=blocks.reader) as writer, progress_bar(quiet, total, description) as bar:
                result = bulk.run_pcapng(in_path, writer, blocks, bar)
                if result.resume_index is not None:
                    with open_capture(in_path) as reader:
                        writer.encoder.interfaces = reader.interfaces  # type: ignore[attr-defined]
                        keep_blocks(reader, writer, result.resume_offset)
                        _scalar_records(reader, writer, per_frame, result.counts, result.reports, bar,
                                        skip=result.resume_index, passthrough=passthrough, mtu=mtu)
            return result.counts, result.reports, time.perf_counter() - started
    if bulk is not None and header_info is not None:
        total = os.path.getsize(in_path)
        with open_pcap_writer(out_path, header_info, linktype) as writer, \
                progress_bar(quiet, total, description) as bar:
            result = bulk.run(in_path, writer, header_info, bar, linktype=linktype)
            if result.resume_index is not None:
                with open_capture(in_path) as reader:
                    _scalar_records(reader, writer, per_frame, result.counts, result.reports, bar,
                                    skip=result.resume_index, passthrough=passthrough, mtu=mtu)
        return result.counts, result.reports, time.perf_counter() - started

    if bulk is not None:  # (IN streamed, or -F to the other format: no bulk code runs, the summary says so)
        bulk.summary.engine = "scalar"
    counts = {"in": 0, "out": 0, "bytes_in": 0, "bytes_out": 0}
    reports: list[tuple[int, str]] = []
    with open_capture(in_path) as reader:
        _check_output_format(reader, output_format)
        with open_writer(out_path, like=reader, format=output_format) as writer:
            keep_blocks(reader, writer)
            total = int(getattr(reader, "file_size", 0) or 0)
            with progress_bar(quiet, total, description) as bar:
                try:
                    _scalar_records(reader, writer, per_frame, counts, reports, bar, passthrough=passthrough,
                                    mtu=mtu)
                except CaptureError:
                    _check_output_format(reader, output_format)  # an interface described late, in pcapng
                    raise
    return counts, reports, time.perf_counter() - started


def keep_blocks(reader: Any, writer: Any, from_offset: int = 0) -> None:
    """Have ``writer`` write the blocks about the capture that ``reader`` (a pcapng one) passes, from
    file offset ``from_offset`` on (those before are written already), where they lie among the records."""
    if hasattr(reader, "keep_blocks"):
        reader.keep_blocks(lambda offset, block: offset >= from_offset and writer.write_block(block))


def _check_output_format(reader: Any, output_format: str | None) -> None:
    """-F pcap: refused (a usage error) when IN's interfaces have link types a pcap file cannot hold together."""
    if output_format != "pcap" or reader.format == "pcap":
        return
    from ..io import LINKTYPE_NAMES

    linktypes = sorted(set(reader.linktypes))
    if len(linktypes) > 1:
        names = ", ".join(f"{t} ({LINKTYPE_NAMES.get(t, 'unknown')})" for t in linktypes)
        raise UsageError(f"-F pcap: {reader.path}'s interfaces have different link types ({names}), and a pcap "
                         "file holds one; write pcapng (-F pcapng, or no -F)")


# a progress bar appears once the work has run this long: short runs never draw one (nor pay
# rich's import, ~40 ms), long ones get it while there is still something to watch
PROGRESS_DELAY = 0.5


class progress_bar:  # noqa: N801 - used as a context manager, named like one
    """A rich progress bar on stderr (when it is a terminal), called with the bytes read so far;
    drawn from the first call PROGRESS_DELAY seconds or more after the bar was made."""

    def __init__(self, quiet: bool, total: int, description: str) -> None:
        self.wanted = show_progress(quiet)
        self.total, self.description = total, description
        self.since = time.perf_counter()
        self.progress: Any = None
        self.task: Any = None

    def __enter__(self) -> progress_bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress:
            self.progress.stop()

    def __call__(self, done: int) -> None:
        if self.progress is None:
            if not self.wanted or time.perf_counter() - self.since < PROGRESS_DELAY:
                return
            progress, total = progress_display(True, self.total)
            self.task = progress.add_task(self.description, total=total, completed=done)  # drawn from where it is
            progress.start()
            self.progress = progress
        self.progress.update(self.task, completed=done)


def _scalar_records(
    reader: Any, writer: Any, per_frame: Callable[[int, bytes], tuple[list[bytes], str | None]],
    counts: dict[str, int], reports: list[tuple[int, str]], bar: progress_bar, skip: int = 0,
    passthrough: Passthrough | None = None, mtu: int = 1500,
) -> None:
    """The record-by-record loop (from record ``skip`` on): :func:`segment_record` for each."""
    records = iter(reader)
    while True:
        try:
            record = next(records)
        except StopIteration:
            break
        except CaptureError as error:
            # a broken record ends the reading, not the run: what came before it is kept and
            # written, the break is reported, and the command exits with the I/O status
            index = getattr(error, "index", counts["in"])
            if index < skip:
                # IN was cut underneath a bulk run: records up to skip were read and written before the
                # cut, so the first one missing is skip, not the record the cut file now ends in
                reports.append((skip, "input changed underneath (cut short after the records before this one "
                                      f"were read and written), reading stopped: {error}"))
            else:
                reports.append((index, f"input broken, reading stopped: {error}"))
            counts["read_error"] = 1
            break
        if record.index < skip:
            continue
        segment_record(record, writer, per_frame, counts, reports, passthrough, mtu)
        bar(int(getattr(reader, "bytes_read", 0) or 0))


def segment_record(record: Any, writer: Any, per_frame: Callable[[int, bytes], tuple[list[bytes], str | None]],
                   counts: dict[str, int], reports: list[tuple[int, str]], passthrough: Passthrough | None = None,
                   mtu: int = 1500) -> None:
    """One record through ``per_frame``, its output to ``writer`` (``write(record, data=None)``), counted.

    A record that is not read as a packet (a link type not segmented, a snapped record) is copied
    through and told to ``passthrough`` (else added to ``reports``); one that comes out as it came
    is written as the record itself (a pcapng record keeps its block, options included). A frame
    that ends in an FCS goes to ``per_frame`` without it, and each frame written in its place gets
    one of its own (softgso.io.fcs); where none can be made right, the record passes through.
    """
    from ..io import UnknownLinkTypeError, UnrepresentableFrameError, from_ethernet, to_ethernet
    from ..job import link_type_report, snapped_report

    original = record

    def pass_through(kind: str, reason: str, over: bool) -> None:
        if passthrough is not None:
            passthrough(record.index, len(original.data), kind, reason, over)
        else:
            reports.append((record.index, f"{reason}: passed through"))
        writer.write(original)
        counts["out"] += 1
        counts["bytes_out"] += len(original.data)

    def unwritable(kind: str, reason: str, over_mtu: bool = False) -> None:
        report = getattr(per_frame, "unwritable", None)
        if report is not None:
            report(record.index, len(original.data), reason, kind, over_mtu)
        else:
            reports.append((record.index, f"{reason}: passed through"))

    counts["in"] += 1
    counts["bytes_in"] += len(original.data)
    if original.fcs_len:
        from ..io.fcs import without_fcs

        record = without_fcs(original)
    try:
        view = to_ethernet(record)
    except UnknownLinkTypeError:
        pass_through(*link_type_report(record, False, mtu))
        return
    if view is None:
        pass_through(*link_type_report(record, True, mtu))
        return
    frame = bytes(view.frame)
    if record.orig_len > len(record.data):
        pass_through(*snapped_report(frame, len(record.data), record.orig_len, mtu))
        return
    if hasattr(per_frame, "comment"):
        per_frame.comment = record.comment  # pcapng: GSO metadata `coalesce` wrote (SegmentPerFrame)
    frames, reason = per_frame(record.index, frame)
    try:
        converted = [from_ethernet(out, record) for out in frames]
    except UnrepresentableFrameError as error:
        # e.g. a label pushed on a raw-IP record: the link type has no ethertype to say so
        unwritable("result not expressible in the link type", error.problem)
        converted, reason = [bytes(record.data)], None
    if reason:
        reports.append((record.index, reason))
    written = _fcs_frames(original, record, converted, writer, unwritable) if original.fcs_len else converted
    if written is None or record.block is not None and len(written) == 1 and written[0] == record.data:
        writer.write(original)  # as it came: its own block, its own FCS
        counts["out"] += 1
        counts["bytes_out"] += len(original.data)
        return
    for data in written:
        writer.write(record, data)
        counts["out"] += 1
        counts["bytes_out"] += len(data)


def _fcs_frames(original: Any, record: Any, converted: list[bytes], writer: Any,
                unwritable: Callable[[str, str, bool], None]) -> list[bytes] | None:
    """What to write for ``original``, a record whose frame ends in an FCS, given ``converted``, the
    frames made of ``record`` (the same without its FCS): each with the FCS its interface in OUT says
    every frame ends in, or None for the record as it came (unchanged, or no FCS can be made right)."""
    from ..io.fcs import FCS_NOT_MADE, fcs_problem, with_fcs

    out_fcs = writer.fcs_len(record.interface_id)
    if len(converted) == 1 and converted[0] == record.data:
        # a kept block says its FCS in its own epb_flags where its interface says none
        if out_fcs == original.fcs_len or original.block is not None and getattr(writer.encoder, "keeps_blocks", False):
            return None
    if not out_fcs:
        return converted  # OUT says its frames end in none: as the stack has them
    problem = fcs_problem(original, out_fcs)
    if problem is not None:
        unwritable(FCS_NOT_MADE, problem, len(converted) > 1)  # (more than one: it was cut at the MTU)
        return None
    return [with_fcs(frame) for frame in converted]


def print_reports(reports: list[tuple[int, str]], limit: int = 20) -> None:
    """Reports of the file commands, one line each (at most ``limit``); frames numbered from 1, as tshark does."""
    for index, reason in reports[:limit]:
        echo(f"softgso: frame {index + 1}: {reason}", err=True)
    if len(reports) > limit:
        echo(f"softgso: ... and {len(reports) - limit} more reports", err=True)


def print_report_kinds(summary: Any) -> None:
    """segment's reports, a line per kind: how many records, the first one's frame number and reason;
    then its notes (what was done beyond what a kernel vector proves, segments over the MTU), a line each."""
    for kind, count, first, reason in summary.reports_by_kind():
        records = "record" if count == 1 else "records"
        echo(f"softgso: {kind}: {count:,} {records} passed through unchanged (first: frame {first + 1}: {reason})",
             err=True)
    for text, count in summary.notes.items():
        if count:
            echo(f"softgso: note: {text}: {count:,} {'record' if count == 1 else 'records'}", err=True)


# --- the action commands (push-mpls, pop-mpls, set-mpls, dec-ttl, push-vlan, pop-vlan, push-/pop-vxlan, -geneve, -gre) ---


class ActionPerFrame:
    """One action on every frame, each input record counted in exactly one outcome: changed,
    unchanged (the action left it as it was, or it is no packet: reported) or refused (the kernel's
    check refused it, or its result has no form in the record's link type: passed through, reported)."""

    def __init__(self, spec: str) -> None:
        from .action_grammar import parse_action

        self.spec = spec
        self.actions = parse_action(spec)
        self.outcomes = {"changed": 0, "unchanged": 0, "refused": 0}
        self.reports: list[tuple[int, str]] = []
        self._last: tuple[int, str] | None = None

    def __call__(self, index: int, frame: bytes) -> tuple[list[bytes], str | None]:
        from ..job import apply_actions

        out, error = apply_actions(frame, self.actions)
        if error is not None:
            self._count(index, "refused")
            self.reports.append((index, f"{self.spec} refused, passed through unchanged: {error}"))
            return [frame], None
        self._count(index, "changed" if out != frame else "unchanged")
        return [out], None

    def _count(self, index: int, outcome: str) -> None:
        self.outcomes[outcome] += 1
        self._last = (index, outcome)

    def unwritable(self, index: int, nbytes: int, reason: str, kind: str = "", over_mtu: bool = False) -> None:
        """The frame's result cannot be written as it is (in its record's link type, with an FCS that is
        right): passed through instead, reported."""
        if self._last is not None and self._last[0] == index:
            self.outcomes[self._last[1]] -= 1
        self._count(index, "refused")
        self.reports.append((index, f"{reason}: passed through"))

    def passthrough(self, index: int, nbytes: int, kind: str, reason: str, over_mtu: bool) -> None:
        """A record that is no packet the action applies to (a link type not converted, a snapped record)."""
        self._count(index, "unchanged")
        self.reports.append((index, f"{reason}: passed through"))


def run_action(in_path: Path, out_path: Path, spec: str, quiet: bool, strict: bool, as_json: bool = False,
               output_format: str | None = None) -> None:
    """An action command's whole run: ``spec`` (an --action string) on every packet of IN, written to OUT.

    The summary (a line, or JSON with --json) goes to stdout, to stderr when OUT is where stdout
    goes; the exit statuses are segment's."""
    from ..io.outfile import output_target, refuse_an_input

    refuse_an_input(str(out_path), str(in_path))
    refuse_a_terminal(out_path)
    refuse_a_compressed_name(out_path)
    per_frame = ActionPerFrame(spec)
    # how OUT is written (softgso.io.outfile's rule, as the writer applies it): a directory or a block
    # device is refused here, before IN is read
    target = None if is_dash(out_path) else output_target(str(out_path))
    counts, stream_reports, elapsed = stream_records(in_path, out_path, quiet, per_frame, spec.split(":")[0],
                                                     passthrough=per_frame.passthrough,
                                                     output_format=output_format)
    read_error = bool(counts.pop("read_error", 0))
    # the stream's own reports: only a broken input (the reading stops there)
    input_errors = [{"frame": index + 1, "reason": reason} for index, reason in stream_reports]
    reports = sorted(per_frame.reports)
    summary_to_stderr = is_dash(out_path) or (target is not None and target.shares_stdout())
    note = "written to standard output as it came (not atomic)" if target is None else target.note()
    if as_json:
        payload = {"action": spec, "records_in": counts["in"], "records_out": counts["out"],
                   "bytes_in": counts["bytes_in"], "bytes_out": counts["bytes_out"], "outcomes": per_frame.outcomes,
                   "reports": [{"frame": index + 1, "reason": reason} for index, reason in reports],
                   "input_errors": input_errors, "atomic": note is None, "output_written": note,
                   "seconds": round(elapsed, 6), "output": str(out_path)}
        echo(json_dumps(payload, indent=2), err=summary_to_stderr)
    else:
        print_reports(reports + stream_reports)
        if not quiet:
            outcomes = per_frame.outcomes
            echo(f"{spec}: {counts['in']} packets in, {counts['out']} out: {outcomes['changed']} changed, "
                 f"{outcomes['unchanged']} unchanged, {outcomes['refused']} refused ({elapsed:.3f} s) -> {out_path}",
                 err=summary_to_stderr)
            if note and target is not None:
                echo(f"{spec}: {note}", err=summary_to_stderr)
    if read_error:
        sys.exit(EXIT_IO)
    if strict and reports:
        sys.exit(EXIT_REFUSED)


# --- segment ---

class SegmentRequest(FrozenValueClass):
    """``softgso segment``'s command line, parsed (by softgso.cli.commands's click command, or by
    softgso.cli.entry for a plain run); the defaults are the command's. ``output_format`` (-F):
    "pcap" or "pcapng" for OUT, None for IN's format. IN and OUT are click's Paths, or their text
    (softgso.cli.entry.path_text, for a plain run: it does not import pathlib)."""

    in_path: str | os.PathLike[str]
    out_path: str | os.PathLike[str]
    gso_size: int | None
    gso_type: str
    tcp_ecn: bool
    input_csum: str
    vnet_hdr: str | None
    actions: tuple[str, ...]
    device: str
    mtu: int | None
    output_csum: str | None
    ip_id: str
    ipv6_frag_id: str
    kernel: str
    strict: bool
    as_json: bool
    quiet: bool
    engine: str
    jobs: int
    dask_scheduler: str | None
    udp_gso: str
    tunnel_ports: tuple[str, ...]
    tunnel_under_labels: bool
    output_format: str | None

    def __init__(self, in_path: str | os.PathLike[str], out_path: str | os.PathLike[str],
                 gso_size: int | None = None, gso_type: str = "auto", tcp_ecn: bool = False, input_csum: str = "auto", vnet_hdr: str | None = None,
                 actions: tuple[str, ...] = (), device: str = "no-offload", mtu: int | None = None,
                 output_csum: str | None = None, ip_id: str = "increment", ipv6_frag_id: str = "0",
                 kernel: str = "6.1", strict: bool = False, as_json: bool = False, quiet: bool = False,
                 engine: str = "auto", jobs: int = 1, dask_scheduler: str | None = None,
                 udp_gso: str = "off", tunnel_ports: tuple[str, ...] = (),
                 tunnel_under_labels: bool = False, output_format: str | None = None) -> None:
        init_fields(self, locals())

    def option_args(self) -> dict[str, Any]:
        """segment_options_from's arguments: what decides each packet's fate (each capture of many is given them)."""
        return {"device": self.device, "mtu": self.mtu, "output_csum": self.output_csum, "gso_size": self.gso_size,
                "gso_type": self.gso_type, "tcp_ecn": self.tcp_ecn, "input_csum": self.input_csum,
                "vnet_hdr": self.vnet_hdr, "actions": self.actions, "ip_id": self.ip_id,
                "ipv6_frag_id": self.ipv6_frag_id, "kernel": self.kernel, "tunnel_ports": self.tunnel_ports,
                "udp_gso": self.udp_gso, "tunnel_under_labels": self.tunnel_under_labels}


def run_segment(request: SegmentRequest) -> None:
    """``softgso segment``'s whole run."""
    in_path, out_path = request.in_path, request.out_path
    option_args = request.option_args()
    options = segment_options_from(**option_args)
    inputs = _many_captures(in_path)
    if inputs is not None:
        from pathlib import Path

        _segment_many(inputs, Path(out_path), option_args, request.engine, request.jobs, request.dask_scheduler,
                      request.strict, request.as_json, request.quiet, request.output_format)
        return
    if request.dask_scheduler:
        raise UsageError("--dask-scheduler segments many captures: give a directory or a glob as IN")
    from ..io.outfile import output_target, refuse_an_input

    refuse_an_input(str(out_path), str(in_path))
    refuse_a_terminal(out_path)
    refuse_a_compressed_name(out_path)
    # what OUT is decides how it is written (a directory or a block device is refused before IN is read)
    target = None if is_dash(out_path) else output_target(str(out_path))
    summary, counts, reports, elapsed = _segment_one(in_path, out_path, options, request.engine, request.jobs,
                                                     request.quiet, request.output_format)
    read_error = bool(counts.pop("read_error", 0))
    # stdout carries the capture itself when OUT is -, /dev/stdout or where stdout goes
    summary_to_stderr = is_dash(out_path) or (target is not None and target.shares_stdout())
    note = "written to standard output as it came (not atomic)" if target is None else target.note()
    if request.as_json:
        payload = segment_payload(summary, counts, reports, elapsed, options, str(out_path))
        payload["atomic"] = note is None
        payload["output_written"] = note
        echo(json_dumps(payload, indent=2), err=summary_to_stderr)
    else:
        print_reports(reports)
        print_report_kinds(summary)
        if not request.quiet:
            _segment_table(summary, counts, elapsed, str(out_path), stderr=summary_to_stderr)
            if note and target is not None:
                echo(f"softgso: {note}", err=summary_to_stderr)
    if read_error:
        sys.exit(EXIT_IO)
    if request.strict and summary.reported:
        sys.exit(EXIT_REFUSED)


def segment_payload(summary: Any, counts: dict[str, int], reports: list[tuple[int, str]], elapsed: float,
                    options: Any, output: str) -> dict[str, Any]:
    """segment's JSON summary: the summary's facts, the input's breaks, and what ran."""
    payload = summary.as_dict()
    payload.update({"records_in": counts["in"], "records_out": counts["out"], "bytes_in": counts["bytes_in"],
                    "bytes_out": counts["bytes_out"], "input_errors": [{"frame": i + 1, "reason": r} for i, r in reports],
                    "seconds": round(elapsed, 6), "device": options.device.name, "mtu": options.device.mtu,
                    "output": output})
    return payload


def is_dash(path: str | os.PathLike[str]) -> bool:
    """IN or OUT given as ``-``: standard input or output (softgso.io opens it as such)."""
    return os.fspath(path) == "-"


def refuse_a_compressed_name(out_path: str | os.PathLike[str]) -> None:
    """OUT a file named .gz or .zst: a usage error. softgso writes captures plain, and a plain capture under
    a compressed name is a file gzip -d and zstd -d refuse (IN is read by its magic, whatever its name).
    A device, a FIFO or a socket is what it is, whatever its name."""
    text = os.fspath(out_path)
    suffix = next((s for s in COMPRESSED_SUFFIXES if text.lower().endswith(s)), None)
    if suffix is None or (os.path.exists(text) and not os.path.isfile(text)):
        return
    tool = "gzip" if suffix == ".gz" else "zstd"
    raise UsageError(f"cannot write {text}: softgso writes captures uncompressed, and the name says {suffix}; give "
                     f"a name without {suffix}, or compress standard output (OUT - | {tool} > {text})")


def refuse_a_terminal(out_path: str | os.PathLike[str]) -> None:
    """OUT ``-`` when standard output is a terminal: a usage error, as gzip and zstd refuse it. A capture
    is binary: on a terminal it is garbage that can leave the terminal in a bad state, never what was meant."""
    if not is_dash(out_path):
        return
    try:
        terminal = os.isatty(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # a stand-in stdout (tests, an embedding program)
        return
    if terminal:
        raise UsageError("OUT -: standard output is a terminal, and a capture is binary; pipe it on (| tshark -r -) "
                         "or redirect it (> out.pcap)")


def _segment_one(in_path: str | os.PathLike[str], out_path: str | os.PathLike[str], options: Any, engine: str, jobs: int, quiet: bool,
                 output_format: str | None = None) -> tuple[Any, dict[str, int], list[tuple[int, str]], float]:
    """Segment one capture: (summary, counts, reports, seconds)."""
    from ..job import Summary, segment_per_frame

    if os.path.isdir(in_path):
        raise UsageError(f"{in_path} is a directory: give a capture file (or a directory for many captures and "
                         "a directory as OUT)")
    started = time.perf_counter()
    if engine == "compiled":
        from ..bulk.compiled_primitive import available

        if not available():
            raise UsageError("--engine compiled: softgso.bulk._segment is not built here (no C compiler at install, "
                             "or SOFTGSO_NO_C is set); use --engine numpy or auto")
    if engine != "scalar" and jobs > 1:
        done = _segment_jobs(in_path, out_path, options, jobs, engine, output_format, quiet)
        if done is not None:
            return (*done, time.perf_counter() - started)
    summary = Summary()
    per_frame = segment_per_frame(options, summary)
    bulk = None
    if engine != "scalar":  # the reference path alone imports nothing of softgso.bulk
        from ..bulk.stream import make_bulk_stream

        bulk = make_bulk_stream(options, summary, per_frame, engine)
    counts, reports, elapsed = stream_records(in_path, out_path, quiet, per_frame, "segment", bulk,
                                              passthrough=summary.add_passthrough, mtu=options.device.mtu,
                                              output_format=output_format)
    return summary, counts, reports, elapsed


def _segment_jobs(in_path: str | os.PathLike[str], out_path: str | os.PathLike[str], options: Any, jobs: int, engine: str = "auto",
                  output_format: str | None = None, quiet: bool = True,
                  ) -> tuple[Any, dict[str, int], list[tuple[int, str]]] | None:
    """--jobs: parts in parallel, in order; None when one job must do it (a file the bulk stream does
    not take, a part that cannot finish, or -F to the other format: the parts are IN's) or does it
    faster (the bulk stream takes most of IN's first records: softgso.bulk.stream.bulk_share).

    This process does the first part itself, straight into OUT when OUT is a file written atomically
    (nothing of it is copied; discarded if another part cannot finish), while forked processes do
    the others into files beside OUT, appended to it in order once all are done. The progress bar
    adds up the bytes each part has read (softgso.bulk.stream.part_progress)."""
    import copy
    import tempfile

    from ..bulk import stream
    from ..bulk.stream import (
        bulk_share,
        open_pcap_writer,
        part_spans,
        pcap_header,
        pcapng_header,
        run_part,
        segment_part,
    )
    from ..io import open_writer
    from ..job import Summary

    found = pcap_header(in_path) if output_format != "pcapng" else None
    blocks = pcapng_header(in_path) if found is None and output_format != "pcap" else None
    header_info, linktype = found if found is not None else (None, 1)
    if (header_info is not None or blocks is not None) and \
            bulk_share(in_path, options, header_info, blocks, engine, linktype) >= stream.ONE_JOB_BULK_SHARE:
        return None  # records the bulk stream takes: parts would cost more than they save
    spans = part_spans(in_path, jobs, header_info, blocks)
    if spans is None:
        return None
    from ..io.outfile import output_target

    # the parts beside where OUT lands (one file system for the final copy); a device, FIFO or
    # socket OUT has no such place: the system's temporary folder, and the first part goes there
    # too (what is written to such an OUT cannot be taken back if a part cannot finish)
    target = None if is_dash(out_path) else output_target(str(out_path))
    in_place = target is not None and target.atomic
    directory = os.path.dirname(target.location) if in_place and target is not None else None
    with tempfile.TemporaryDirectory(prefix=".softgso-jobs-", dir=directory) as scratch:
        paths = [os.path.join(scratch, f"part{k}") for k in range(len(spans))]
        whole: Any = None
        # the pool's feeding thread pickles ``options`` for the workers while this process runs its
        # part, which fills the options' cached properties: this process's part runs on a copy
        own = copy.deepcopy(options)

        def first_part(tell: Callable[[int], None]) -> Any:
            nonlocal whole
            # (the workers are forked by now, before OUT is opened)
            whole = (open_pcap_writer(out_path, header_info, linktype) if header_info is not None
                     else open_writer(out_path, like=blocks.reader if blocks is not None else None))
            if in_place:
                return run_part(str(in_path), whole, own, header_info, spans[0], engine, linktype, 0, blocks, tell)
            return segment_part(str(in_path), paths[0], own, header_info, spans[0], engine, linktype)

        try:
            results = run_in_parts(len(spans), lambda number: (
                segment_part, str(in_path), paths[number], options, header_info, spans[number], engine, linktype,
                number), first_part, quiet, os.path.getsize(in_path), "segment")
            if not all(finished for *_, finished in results):
                whole.abort()
                return None
            summary = Summary()
            counts = {"in": 0, "out": 0, "bytes_in": 0, "bytes_out": 0}
            reports: list[tuple[int, str]] = []
            with whole as writer:
                fd = writer.fileno()
                for number, (part_counts, part_reports, part_summary, _) in enumerate(results):
                    if number or not in_place:
                        _append_file(fd, paths[number])
                    summary.merge(part_summary)
                    reports.extend(part_reports)
                    for key in counts:
                        counts[key] += part_counts[key]
        except BaseException:
            if whole is not None:
                whole.abort()
            raise
    return summary, counts, reports


def run_in_parts(parts: int, other_part: Callable[[int], tuple[Any, ...]],
                 first_part: Callable[[Callable[[int], None]], Any], quiet: bool, total: int, label: str) -> list[Any]:
    """--jobs: parts 1 to ``parts - 1`` each in a forked process (``other_part(number)``: the function
    it runs and its arguments), part 0 in this one once they are forked (``first_part(tell)``, ``tell``
    updating the bar); the progress bar adds up the bytes each part has read
    (softgso.bulk.stream.part_progress, memory the workers share with this process). Their results, in order."""
    import multiprocessing
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    from ..bulk import stream

    context = multiprocessing.get_context("fork")
    stream.part_progress = context.RawArray("q", parts)
    try:
        with ProcessPoolExecutor(max_workers=max(1, parts - 1), mp_context=context) as pool, \
                progress_bar(quiet, total, label) as bar:
            futures = [pool.submit(*other_part(number)) for number in range(1, parts)]

            def tell(_position: int) -> None:
                bar(sum(stream.part_progress))

            first = first_part(tell)
            while wait(futures, timeout=0.2, return_when=FIRST_EXCEPTION).not_done:
                bar(sum(stream.part_progress))
            results = [first, *(future.result() for future in futures)]
            bar(sum(stream.part_progress))
    finally:
        stream.part_progress = None
    return results


def _append_file(fd: int, path: str) -> None:
    """The whole of the file at ``path`` written at ``fd``'s position (sendfile: no copy through Python)."""
    with open(path, "rb") as part:
        size = os.fstat(part.fileno()).st_size
        sent = 0
        while sent < size:
            sent += os.sendfile(fd, part.fileno(), sent, size - sent)


CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")
COMPRESSED_SUFFIXES = (".gz", ".zst")  # read decompressed (softgso.io.compressed)


def _is_capture_name(name: str) -> bool:
    """A file name a directory IN contributes: a capture's suffix, compressed or not (a.pcap, a.pcapng.gz)."""
    lowered = name.lower()
    for suffix in COMPRESSED_SUFFIXES:
        lowered = lowered.removesuffix(suffix)
    return lowered.endswith(CAPTURE_SUFFIXES)


def output_name(name: str, output_format: str | None) -> str:
    """The name a capture of many gets in OUT: its own, without a compression suffix (OUT is written
    plain), with -F's format as its suffix when -F is given (a.pcap -F pcapng: a.pcapng)."""
    for suffix in COMPRESSED_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    if output_format is None:
        return name
    stem, dot, suffix = name.rpartition(".")
    if dot and f".{suffix.lower()}" in CAPTURE_SUFFIXES:
        name = stem
    return f"{name}.{output_format}"


def _many_captures(in_path: str | os.PathLike[str]) -> list[Path] | None:
    """The captures IN names when it is a directory or a glob, else None (one capture)."""
    text = os.fspath(in_path)
    if not os.path.isdir(text) and not any(char in text for char in "*?["):
        return None
    import glob
    from pathlib import Path

    if os.path.isdir(text):
        found = sorted(p for p in Path(text).iterdir() if p.is_file() and _is_capture_name(p.name))
    else:
        found = sorted(Path(p) for p in glob.glob(text) if os.path.isfile(p))
    if not found:
        raise UsageError(f"no captures (.pcap, .pcapng, .cap, compressed or not) in {in_path}")
    return found


def segment_file(in_path: str, out_path: str, option_args: dict[str, Any], engine: str = "auto",
                 jobs: int = 1, output_format: str | None = None, quiet: bool = True) -> dict[str, Any]:
    """Segment one capture as ``softgso segment`` would (a dask task: ``quiet``, no progress bar); its JSON summary."""
    from pathlib import Path

    options = segment_options_from(**option_args)
    summary, counts, reports, elapsed = _segment_one(Path(in_path), Path(out_path), options, engine, jobs, quiet,
                                                     output_format)
    counts.pop("read_error", None)
    payload = segment_payload(summary, counts, reports, elapsed, options, out_path)
    payload["input"] = in_path
    return payload


def _segment_many(inputs: list[Path], out_dir: Path, option_args: dict[str, Any], engine: str, jobs: int,
                  scheduler: str | None, strict: bool, as_json: bool, quiet: bool,
                  output_format: str | None = None) -> None:
    """Many captures into OUT (a directory, made if missing), locally one after another or as dask tasks."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: OUT must be a directory when IN names many captures")
    # `segment DIR o.pcap` meant one capture: a directory named like a capture file would only surprise
    if not out_dir.is_dir() and out_dir.name.lower().endswith((".pcap", ".pcapng", ".cap", ".gz", ".zst")):
        raise UsageError(f"{out_dir}: IN names many captures, and OUT looks like a capture file; "
                         "give a directory as OUT (one output per capture is written there)")
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [str(out_dir / output_name(p.name, output_format)) for p in inputs]
    if len(set(names)) != len(names):
        raise UsageError("two captures of IN have the same file name: OUT would hold only one")
    from ..io.outfile import refuse_an_input

    for name in names:  # OUT the folder IN names: a plain capture's output is the capture itself
        refuse_an_input(name, *map(str, inputs))
    if scheduler:
        try:
            from dask.distributed import Client
        except ImportError:
            raise UsageError("--dask-scheduler needs dask.distributed (pip install 'softgso[dask]')") from None
        with Client(scheduler) as client:
            futures = client.map(segment_file, [str(p) for p in inputs], names, [option_args] * len(inputs),
                                 [engine] * len(inputs), [jobs] * len(inputs), [output_format] * len(inputs),
                                 pure=False)
            results = client.gather(futures)
        if not as_json:
            for result in results:
                _say_capture_done(result, quiet)
    else:
        results = []
        # one at a time, each with its progress bar and said once done: a long run shows how far it is,
        # and a capture that stops it (one that cannot be read) leaves those before it said
        for path, name in zip(inputs, names, strict=True):
            results.append(segment_file(str(path), name, option_args, engine, jobs, output_format,
                                        quiet=quiet or as_json))
            if not as_json:
                _say_capture_done(results[-1], quiet)
    refused = sum(int(r["outcomes"].get("refused", 0)) for r in results)
    reported = sum(len(r["reports"]) + r["reports_omitted"] + len(r["input_errors"]) for r in results)
    if as_json:
        echo(json_dumps({"captures": results, "refused": refused, "reported": reported},
                              indent=2))
    # a capture broken at a record is one capture's input error, as alone: said with it (its message
    # names the file), its records before the break written, and the I/O status once every capture is done
    if any(r["input_errors"] for r in results):
        sys.exit(EXIT_IO)
    if strict and reported:
        sys.exit(EXIT_REFUSED)


def _say_capture_done(result: dict[str, Any], quiet: bool) -> None:
    """A capture of many, once it is segmented: its line (unless ``quiet``) and where its reading broke."""
    if not quiet:
        echo(f"{result['input']} -> {result['output']}: {result['records_in']:,} records in, "
             f"{result['records_out']:,} out, {len(result['reports']) + result['reports_omitted']:,} reported "
             f"({result['seconds']:.3f} s)")
    for error in result["input_errors"]:
        echo(f"softgso: frame {error['frame']}: {error['reason']}", err=True)


# segment's summary: drawn by softgso.cli.texttable (rich's look without rich's 35 ms import, after the work)
SEGMENT_TABLE_COLUMNS = (("", "left"), ("records", "right"), ("bytes", "right"))
# the outcome rows: every input record is counted in exactly one, and they add up to "in"
OUTCOME_ROWS = (
    ("segmented", "segmented"),
    ("whole", "sent whole (the device segments)"),
    ("changed", "changed (checksums completed, actions)"),
    ("unchanged", "unchanged"),
    ("refused", "refused by the kernel's checks (unchanged)"),
    ("not_segmented", "not segmented (unchanged, reported)"),
)


def _segment_table(summary: Any, counts: dict[str, int], elapsed: float, out: str, stderr: bool = False) -> None:
    from .texttable import print_table

    rows = [["in", f"{counts['in']:,}", f"{counts['bytes_in']:,}"],
            ["out", f"{counts['out']:,}", f"{counts['bytes_out']:,}"]]
    for name, label in OUTCOME_ROWS:
        rows.append([f"  {label}", f"{summary.outcomes.get(name, 0):,}", ""])
    rows.append(["over MTU, not segmented", f"{summary.over_mtu:,}", ""])
    for name, count in sorted(summary.input_checksums.items()):
        rows.append([f"input L4 checksum {name}", f"{count:,}", ""])
    if summary.partial_out:
        rows.append(["output checksums left partial", f"{summary.partial_out:,}", ""])
    rows.append([f"taken in bulk ({summary.engine} engine)", f"{summary.bulk_records:,}", ""])
    rate = counts["bytes_in"] * 8 / elapsed / 1e9 if elapsed > 0 else 0.0
    rows.append(["throughput", f"{elapsed:.3f} s", f"{rate:.2f} Gbit/s"])
    print_table(f"softgso segment -> {out}", SEGMENT_TABLE_COLUMNS, rows, sys.stderr if stderr else sys.stdout)


def segment_options_from(device: str, mtu: int | None, output_csum: str | None, gso_size: int | None,
                          gso_type: str, tcp_ecn: bool, input_csum: str, vnet_hdr: str | None,
                          actions: tuple[str, ...], ip_id: str, ipv6_frag_id: str, kernel: str,
                          tunnel_ports: tuple[str, ...] = (), udp_gso: str = "off",
                          tunnel_under_labels: bool = False) -> Any:
    """The SegmentOptions ``segment`` would build from the same options."""
    from ..job import SegmentOptions
    if vnet_hdr and (gso_size or gso_type != "auto" or tcp_ecn or input_csum != "auto"):
        raise UsageError("--vnet-hdr replaces --gso-size, --gso-type, --tcp-ecn and --input-csum: give one or the other")
    try:
        frag_id = int(ipv6_frag_id, 0)
    except ValueError:
        raise UsageError(f"--ipv6-frag-id {ipv6_frag_id!r} is not a number") from None
    from ..offload.tunnels import parse_tunnel_port

    try:
        ports = tuple(parse_tunnel_port(text) for text in tunnel_ports)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return SegmentOptions(
        device=_device(device, mtu, output_csum), gso_size=gso_size, gso_type=gso_type, tcp_ecn=tcp_ecn,
        input_csum=input_csum, vnet_hdr=_virtio_header(vnet_hdr),
        actions=_parse_actions(actions), ipv6_frag_id=frag_id,
        fixed_id=ip_id in ("fixed", "fixed-both"), fixed_outer_id=ip_id in ("fixed-outer", "fixed-both"),
        kernel=kernel, tunnel_ports=ports, udp_gso=udp_gso, tunnel_in_labels=tunnel_under_labels,
    )


def _virtio_header(text: str | None) -> Any:
    """--vnet-hdr's header (softgso.virtio is loaded only when it is given), or None."""
    if not text:
        return None
    from ..virtio import VirtioNetHdr

    return VirtioNetHdr.from_hex(text)


def _parse_actions(specs: tuple[str, ...]) -> tuple[Any, ...]:
    """The engine's actions for the --action strings, in order; the grammar (and the actions with it)
    is loaded only when there are some, so that a plain run starts without them."""
    if not specs:
        return ()
    from .action_grammar import parse_action

    return tuple(action for spec in specs for action in parse_action(spec))
