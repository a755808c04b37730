"""What the file commands do, without click: ``segment``'s whole run, the record loop and the
progress bar the file commands share, summaries and exit statuses.

softgso.cli declares the commands (click) on top of this; softgso.entry runs a plain ``segment``
from here directly, so that it starts without importing click.

Exit status (every command): 0 success; 1 differences found (``diff``) or packets refused under
``--strict``; 2 usage error; 3 input or output file error; 130 interrupted (Ctrl-C); 143
terminated (SIGTERM).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import CaptureError, UsageError

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


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
        return "softgso: error: the reader of our output went away (broken pipe)", EXIT_IO
    if isinstance(error, OSError):
        where = f": {error.filename}" if error.filename else ""
        return f"softgso: error: {error.strerror or error}{where}", EXIT_IO
    return "softgso: interrupted; no output written", EXIT_INTERRUPTED


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C while a command runs, so an atomic writer removes its temporary
    file; the caller's handler is back afterwards (the CLI also runs in-process)."""
    import signal

    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals to whoever runs us
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def run_guarded(function: Callable[[], None]) -> None:
    """Run a command as the CLI does: its errors become a message and the documented exit status."""
    with sigterm_unwinds():
        try:
            function()
        except COMMAND_ERRORS as error:
            message, status = error_status(error)
            echo(message, err=True)
            sys.exit(status)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_TERMINATED)


# --- shared option plumbing ----------------------------------------------------------------------


def _device(name: str, mtu: int | None, output_csum: str | None) -> Any:
    from .features import NETIF_F_CSUM_MASK, NetdevFeature, load_profile

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

    return Console(stderr=stderr, highlight=False)


def json_dumps(value: Any, **options: Any) -> str:
    """json.dumps, imported on first use (json is not on the start-up path of a plain run)."""
    import json

    return json.dumps(value, **options)


def show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def stream_records(
    in_path: Path, out_path: Path, quiet: bool, per_frame: Callable[[int, bytes], tuple[list[bytes], str | None]],
    description: str, bulk: Any = None,
) -> tuple[dict[str, int], list[tuple[int, str]], float]:
    """Read IN record by record, write what ``per_frame`` returns to OUT atomically.

    Records that are not Ethernet (after cooked-header conversion) or cannot be read as such are
    copied through unchanged and reported. With ``bulk`` (a stream from :func:`softgso.bulkstream.make_bulk_stream`)
    a classic pcap of Ethernet goes through it instead, and the scalar loop takes over at the first
    record it leaves (if any). Returns counters, reports and elapsed seconds.
    """
    from .io import open_capture, open_writer

    started = time.perf_counter()
    header_info = None
    if bulk is not None:
        from .bulkstream import open_pcap_writer, pcap_ethernet_header

        header_info = pcap_ethernet_header(in_path)
    if bulk is not None and header_info is not None:
        total = os.path.getsize(in_path)
        with open_pcap_writer(out_path, header_info) as writer, _progress_bar(quiet, total, description) as bar:
            result = bulk.run(in_path, writer, header_info, bar)
            if result.resume_index is not None:
                with open_capture(in_path) as reader:
                    _scalar_records(reader, writer, per_frame, result.counts, result.reports, bar,
                                    skip=result.resume_index)
        return result.counts, result.reports, time.perf_counter() - started

    counts = {"in": 0, "out": 0, "bytes_in": 0, "bytes_out": 0}
    reports: list[tuple[int, str]] = []
    with open_capture(in_path) as reader, open_writer(out_path, like=reader) as writer:
        total = int(getattr(reader, "file_size", 0) or 0)
        with _progress_bar(quiet, total, description) as bar:
            _scalar_records(reader, writer, per_frame, counts, reports, bar)
    return counts, reports, time.perf_counter() - started


# a progress bar appears once the work has run this long: short runs never draw one (nor pay
# rich's import, ~40 ms), long ones get it while there is still something to watch
PROGRESS_DELAY = 0.5


class _progress_bar:  # noqa: N801 - used as a context manager, named like one
    """A rich progress bar on stderr (when it is a terminal), called with the bytes read so far;
    drawn from the first call PROGRESS_DELAY seconds or more after the bar was made."""

    def __init__(self, quiet: bool, total: int, description: str) -> None:
        self.wanted = show_progress(quiet)
        self.total, self.description = total, description
        self.since = time.perf_counter()
        self.progress: Any = None
        self.task: Any = None

    def __enter__(self) -> _progress_bar:
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
    counts: dict[str, int], reports: list[tuple[int, str]], bar: _progress_bar, skip: int = 0,
) -> None:
    """The record-by-record loop (from record ``skip`` on)."""
    from .io import UnknownLinkTypeError, from_ethernet, to_ethernet

    records = iter(reader)
    while True:
        try:
            record = next(records)
        except StopIteration:
            break
        except CaptureError as error:
            # a broken record ends the reading, not the run: what came before it is kept and
            # written, the break is reported, and the command exits with the I/O status
            reports.append((getattr(error, "index", counts["in"]), f"input broken, reading stopped: {error}"))
            counts["read_error"] = 1
            break
        if record.index < skip:
            continue
        counts["in"] += 1
        counts["bytes_in"] += len(record.data)
        try:
            view = to_ethernet(record)
        except UnknownLinkTypeError as error:
            reports.append((record.index, f"{error.reason}: passed through"))
            view = None
        else:
            if view is None:
                reports.append((record.index, f"link type {record.linktype} record is not Ethernet: "
                                              "passed through"))
        if view is None:
            writer.write(record)
            counts["out"] += 1
            counts["bytes_out"] += len(record.data)
            continue
        frame = bytes(view.frame)
        if record.orig_len > len(record.data):
            reports.append((record.index, f"snapped record ({len(record.data)} of {record.orig_len} bytes): "
                                          "passed through"))
            writer.write(record)
            counts["out"] += 1
            counts["bytes_out"] += len(record.data)
            continue
        frames, reason = per_frame(record.index, frame)
        if reason:
            reports.append((record.index, reason))
        for out in frames:
            data = from_ethernet(out, record)
            writer.write(record, data)
            counts["out"] += 1
            counts["bytes_out"] += len(data)
        bar(int(getattr(reader, "bytes_read", 0) or 0))


def print_reports(reports: list[tuple[int, str]], limit: int = 20) -> None:
    for index, reason in reports[:limit]:
        echo(f"softgso: packet {index}: {reason}", err=True)
    if len(reports) > limit:
        echo(f"softgso: ... and {len(reports) - limit} more reports", err=True)



# --- segment ---

def run_segment(in_path: Path, out_path: Path, gso_size: int | None, gso_type: str, tcp_ecn: bool, input_csum: str,
            vnet_hdr: str | None, actions: tuple[str, ...], device: str, mtu: int | None, output_csum: str | None,
            ip_id: str, ipv6_frag_id: str, kernel: str, strict: bool, as_json: bool, quiet: bool,
            engine: str, jobs: int, dask_scheduler: str | None) -> None:
    """``softgso segment``'s whole run, from its parsed options (softgso.cli's, or softgso.entry's for a plain one)."""
    option_args: dict[str, Any] = {"device": device, "mtu": mtu, "output_csum": output_csum, "gso_size": gso_size,
                   "gso_type": gso_type, "tcp_ecn": tcp_ecn, "input_csum": input_csum, "vnet_hdr": vnet_hdr,
                   "actions": actions, "ip_id": ip_id, "ipv6_frag_id": ipv6_frag_id, "kernel": kernel}
    options = segment_options_from(**option_args)
    inputs = _many_captures(in_path)
    if inputs is not None:
        _segment_many(inputs, out_path, option_args, engine, jobs, dask_scheduler, strict, as_json, quiet)
        return
    if dask_scheduler:
        raise UsageError("--dask-scheduler segments many captures: give a directory or a glob as IN")
    summary, counts, reports, elapsed = _segment_one(in_path, out_path, options, engine, jobs, quiet)
    read_error = bool(counts.pop("read_error", 0))
    refused = summary.outcomes.get("refused", 0)
    other_reports = [r for r in reports if "refused" not in r[1]]
    summary_to_stderr = is_dash(out_path)  # stdout carries the capture itself
    if as_json:
        payload = summary.as_dict()
        payload.update({"records_in": counts["in"], "records_out": counts["out"], "seconds": round(elapsed, 6),
                        "passed_through_unreadable": [{"index": i, "reason": r} for i, r in other_reports],
                        "device": options.device.name, "output": str(out_path)})
        echo(json_dumps(payload, indent=2), err=summary_to_stderr)
    else:
        print_reports(reports)
        if not quiet:
            _segment_table(summary, counts, elapsed, str(out_path), stderr=summary_to_stderr)
    if read_error:
        sys.exit(EXIT_IO)
    if strict and (refused or other_reports):
        sys.exit(EXIT_REFUSED)


def is_dash(path: Path) -> bool:
    """IN or OUT given as ``-``: standard input or output (softgso.io opens it as such)."""
    return str(path) == "-"


def _segment_one(in_path: Path, out_path: Path, options: Any, engine: str, jobs: int,
                 quiet: bool) -> tuple[Any, dict[str, int], list[tuple[int, str]], float]:
    """Segment one capture: (summary, counts, reports, seconds)."""
    from .bulkstream import make_bulk_stream, segment_per_frame
    from .job import Summary

    if in_path.is_dir():
        raise UsageError(f"{in_path} is a directory: give a capture file (or a directory for many captures and "
                         "a directory as OUT)")
    started = time.perf_counter()
    if engine == "compiled":
        from .cstream import available

        if not available():
            raise UsageError("--engine compiled: softgso._segment is not built here (no C compiler at install, "
                             "or SOFTGSO_NO_C is set); use --engine numpy or auto")
    if engine != "scalar" and jobs > 1:
        done = _segment_jobs(in_path, out_path, options, jobs, engine)
        if done is not None:
            return (*done, time.perf_counter() - started)
    summary = Summary()
    per_frame = segment_per_frame(options, summary)
    bulk = make_bulk_stream(options, summary, per_frame, engine) if engine != "scalar" else None
    counts, reports, elapsed = stream_records(in_path, out_path, quiet, per_frame, "segment", bulk)
    return summary, counts, reports, elapsed


def _segment_jobs(in_path: Path, out_path: Path, options: Any, jobs: int,
                  engine: str = "auto") -> tuple[Any, dict[str, int], list[tuple[int, str]]] | None:
    """--jobs: parts in parallel processes, concatenated in order; None when one job must do it."""
    import multiprocessing
    import tempfile
    from concurrent.futures import ProcessPoolExecutor

    from .bulkstream import open_pcap_writer, pcap_ethernet_header, segment_part, split_points
    from .job import Summary

    header_info = pcap_ethernet_header(in_path)
    if header_info is None:
        return None
    points = split_points(in_path, header_info, jobs)
    spans = [(offset, points[k + 1][0] if k + 1 < len(points) else None, index)
             for k, (offset, index) in enumerate(points)]
    directory = None if is_dash(out_path) else os.path.dirname(os.path.abspath(out_path))
    with tempfile.TemporaryDirectory(prefix=".softgso-jobs-", dir=directory) as scratch:
        paths = [os.path.join(scratch, f"part{k}") for k in range(len(spans))]
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=len(spans), mp_context=context) as pool:
            futures = [pool.submit(segment_part, str(in_path), path, options, header_info, span, engine)
                       for path, span in zip(paths, spans, strict=True)]
            results = [future.result() for future in futures]
        if not all(finished for *_, finished in results):
            return None
        summary = Summary()
        counts = {"in": 0, "out": 0, "bytes_in": 0, "bytes_out": 0}
        reports: list[tuple[int, str]] = []
        with open_pcap_writer(out_path, header_info) as writer:
            fd = writer.fileno()
            for path, (part_counts, part_reports, part_summary, _) in zip(paths, results, strict=True):
                with open(path, "rb") as part:
                    size = os.fstat(part.fileno()).st_size
                    sent = 0
                    while sent < size:
                        sent += os.sendfile(fd, part.fileno(), sent, size - sent)
                summary.merge(part_summary)
                reports.extend(part_reports)
                for key in counts:
                    counts[key] += part_counts[key]
    return summary, counts, reports


def _many_captures(in_path: Path) -> list[Path] | None:
    """The captures IN names when it is a directory or a glob, else None (one capture)."""
    import glob

    text = str(in_path)
    if in_path.is_dir():
        found = sorted(p for p in in_path.iterdir() if p.is_file() and p.suffix in (".pcap", ".pcapng", ".cap"))
    elif any(char in text for char in "*?["):
        found = sorted(Path(p) for p in glob.glob(text) if os.path.isfile(p))
    else:
        return None
    if not found:
        raise UsageError(f"no captures (.pcap, .pcapng, .cap) in {in_path}")
    return found


def segment_file(in_path: str, out_path: str, option_args: dict[str, Any], engine: str = "auto",
                 jobs: int = 1) -> dict[str, Any]:
    """Segment one capture as ``softgso segment`` would (a dask task); its JSON summary."""
    options = segment_options_from(**option_args)
    summary, counts, reports, elapsed = _segment_one(Path(in_path), Path(out_path), options, engine, jobs, True)
    payload = summary.as_dict()
    other_reports = [r for r in reports if "refused" not in r[1]]
    payload.update({"input": in_path, "records_in": counts["in"], "records_out": counts["out"],
                    "seconds": round(elapsed, 6),
                    "passed_through_unreadable": [{"index": i, "reason": r} for i, r in other_reports],
                    "device": options.device.name, "output": out_path})
    return payload


def _segment_many(inputs: list[Path], out_dir: Path, option_args: dict[str, Any], engine: str, jobs: int,
                  scheduler: str | None, strict: bool, as_json: bool, quiet: bool) -> None:
    """Many captures into OUT (a directory), locally one after another or as dask tasks."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: OUT must be a directory when IN names many captures")
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [str(out_dir / p.name) for p in inputs]
    if len(set(names)) != len(names):
        raise UsageError("two captures of IN have the same file name: OUT would hold only one")
    if scheduler:
        try:
            from dask.distributed import Client
        except ImportError:
            raise UsageError("--dask-scheduler needs dask.distributed (pip install 'softgso[dask]')") from None
        with Client(scheduler) as client:
            futures = client.map(segment_file, [str(p) for p in inputs], names, [option_args] * len(inputs),
                                 [engine] * len(inputs), [jobs] * len(inputs), pure=False)
            results = client.gather(futures)
    else:
        results = [segment_file(str(p), name, option_args, engine, jobs) for p, name in zip(inputs, names, strict=True)]
    refused = sum(int(r["outcomes"].get("refused", 0)) for r in results)
    unreadable = sum(len(r["passed_through_unreadable"]) for r in results)
    if as_json:
        echo(json_dumps({"captures": results, "refused": refused, "passed_through_unreadable": unreadable},
                              indent=2))
    elif not quiet:
        for r in results:
            echo(f"{r['input']} -> {r['output']}: {r['packets_in']} packets in, {r['packets_out']} out, "
                       f"{r['outcomes'].get('refused', 0)} refused ({r['seconds']:.3f} s)")
    if strict and (refused or unreadable):
        sys.exit(EXIT_REFUSED)


# segment's summary: drawn by softgso.texttable (rich's look without rich's 35 ms import, after the work)
SEGMENT_TABLE_COLUMNS = (("", "left"), ("packets", "right"), ("bytes", "right"))


def _segment_table(summary: Any, counts: dict[str, int], elapsed: float, out: str, stderr: bool = False) -> None:
    from .texttable import print_table

    rows = [["in", str(counts["in"]), f"{counts['bytes_in']:,}"], ["out", str(counts["out"]), f"{counts['bytes_out']:,}"]]
    for name in ("segmented", "whole", "passed", "untouched", "refused"):
        rows.append([f"  {name}", str(summary.outcomes.get(name, 0)), ""])
    for name, count in sorted(summary.input_checksums.items()):
        rows.append([f"  input L4 checksum {name}", str(count), ""])
    if summary.partial_out:
        rows.append(["  output checksums left partial", str(summary.partial_out), ""])
    rate = counts["bytes_in"] * 8 / elapsed / 1e9 if elapsed > 0 else 0.0
    rows.append(["throughput", f"{elapsed:.3f} s", f"{rate:.2f} Gbit/s"])
    print_table(f"softgso segment -> {out}", SEGMENT_TABLE_COLUMNS, rows, sys.stderr if stderr else sys.stdout)


def segment_options_from(device: str, mtu: int | None, output_csum: str | None, gso_size: int | None,
                          gso_type: str, tcp_ecn: bool, input_csum: str, vnet_hdr: str | None,
                          actions: tuple[str, ...], ip_id: str, ipv6_frag_id: str, kernel: str) -> Any:
    """The SegmentOptions ``segment`` would build from the same options."""
    from .actions import parse_action
    from .job import SegmentOptions
    from .virtio import VirtioNetHdr

    if vnet_hdr and (gso_size or gso_type != "auto" or tcp_ecn or input_csum != "auto"):
        raise UsageError("--vnet-hdr replaces --gso-size, --gso-type, --tcp-ecn and --input-csum: give one or the other")
    try:
        frag_id = int(ipv6_frag_id, 0)
    except ValueError:
        raise UsageError(f"--ipv6-frag-id {ipv6_frag_id!r} is not a number") from None
    return SegmentOptions(
        device=_device(device, mtu, output_csum), gso_size=gso_size, gso_type=gso_type, tcp_ecn=tcp_ecn,
        input_csum=input_csum, vnet_hdr=VirtioNetHdr.from_hex(vnet_hdr) if vnet_hdr else None,
        actions=tuple(parse_action(a) for a in actions), ipv6_frag_id=frag_id, fixed_id=ip_id == "fixed",
        kernel=kernel,
    )

