"""``softgso diff``'s whole run without click: read both captures, pair their frames (by position with
softgso.check.capdiff, or by flow with softgso.check.flowdiff), print the report, write --map, exit with the
documented status (0: B is A, or what A becomes; 1: differences; 3: unreadable input).

Frames are numbered from 1 in every message, the map and the JSON, as tshark numbers them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import zip_longest
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import UsageError
from .runner import EXIT_REFUSED, echo, is_dash, json_dumps, progress_bar

PAIRINGS = ("auto", "position", "flow")
NUMBERING = "frames numbered from 1, as tshark numbers them"
FrameItem = tuple[int, bytes, bool]  # (record index from 0, frame, True when an Ethernet frame)


class Capture:
    """One side of the diff: read once from a FIFO or standard input (kept in memory when it must be
    counted first), as often as needed from a file (a pcap or pcapng of Ethernet frames by the bulk
    reader, softgso.bulk.frames, unless ``bulk`` is False)."""

    def __init__(self, path: Path, bulk: bool = True) -> None:
        self.path = path
        self.stream = is_dash(path) or not path.is_file()
        self.bulk = bulk and not self.stream
        self.kept: list[FrameItem] | None = None
        # records whose frame ends in an FCS that is not right, (index, record bytes): their frames are
        # compared without it, as every other FCS
        self.fcs_problems: list[tuple[int, bytes]] = []

    def count(self) -> int:
        """Its records (a FIFO or standard input is kept in memory for the pairing that follows)."""
        from ..bulk.frames import count_records, ethernet_frames
        from ..io import open_capture

        if self.stream:
            with open_capture(self.path) as reader:
                self.kept = list(ethernet_frames(reader, fcs_problems=self.fcs_problems))
            return len(self.kept)
        counted = count_records(self.path) if self.bulk else None
        if counted is not None:
            return counted
        with open_capture(self.path) as reader:
            return sum(1 for _ in reader)

    @contextmanager
    def frames(self) -> Iterator[tuple[Iterator[FrameItem], Callable[[], int], int]]:
        """(its frames, bytes read so far, file size: 0 when unknown)."""
        from ..bulk.frames import ethernet_frames, open_bulk_frames
        from ..io import open_capture

        if self.kept is not None:
            yield iter(self.kept), lambda: 0, 0
            return
        self.fcs_problems.clear()
        bulk = open_bulk_frames(self.path) if self.bulk else None
        if bulk is not None:
            bulk.fcs_problems = self.fcs_problems
            try:
                yield bulk, lambda: bulk.bytes_read, bulk.file_size
            finally:
                bulk.close()
            return
        with open_capture(self.path) as reader:
            yield (ethernet_frames(reader, fcs_problems=self.fcs_problems), lambda: int(getattr(reader, "bytes_read", 0) or 0),
                   int(getattr(reader, "file_size", 0) or 0))


def run_diff(a_path: Path, b_path: Path, max_shown: int = 10, as_json: bool = False, quiet: bool = False,
             pair_by: str = "auto", map_path: Path | None = None, tunnel_ports: tuple[str, ...] = (),
             engine: str = "auto") -> None:
    """Compare A and B; exit status 1 when B is not A (by position) or not what A becomes (by flow).
    ``engine`` "scalar": both read record by record by the general reader, every frame paired by
    flowdiff's per-frame code (the same report: the bulk reader is checked against it)."""
    from ..offload.tunnels import parse_tunnel_port

    try:
        ports = dict(parse_tunnel_port(text) for text in tunnel_ports) or None
    except ValueError as error:
        raise UsageError(str(error)) from None
    if is_dash(a_path) and is_dash(b_path):
        raise UsageError("A and B cannot both be - (standard input holds one capture)")
    if pair_by not in PAIRINGS:
        raise UsageError(f"--pair-by {pair_by}: one of {', '.join(PAIRINGS)}")
    if map_path is not None:
        if is_dash(map_path):
            raise UsageError("--map -: give a file name (standard output carries the report)")
        from ..io.outfile import names_stdout, output_target, refuse_an_input

        refuse_an_input(str(map_path), str(a_path), str(b_path))
        output_target(str(map_path))  # a directory or a block device is refused before the work
        if names_stdout(str(map_path)):  # /dev/stdout: the map would be mixed into the report, or replace it
            raise UsageError(f"--map {map_path}: standard output carries the report; give a file name")
    if engine not in ("auto", "scalar"):
        raise UsageError(f"--engine {engine}: one of auto, scalar")
    a, b = Capture(a_path, engine == "auto"), Capture(b_path, engine == "auto")
    if pair_by == "auto":
        pair_by = "position" if a.count() == b.count() else "flow"
    with a.frames() as (frames_a, read_a, size_a), b.frames() as (frames_b, read_b, size_b), \
            progress_bar(quiet, size_a + size_b, "diff") as bar:
        def progress() -> None:
            bar(read_a() + read_b())

        pair = _by_position if pair_by == "position" else _by_flow
        report, fates, only_in_b, same = pair(frames_a, frames_b, max_shown, map_path is not None, progress, ports)
    report.update({"a": str(a_path), "b": str(b_path)})
    same = _check_fcs(a, b, report, max_shown) and same
    if map_path is not None:
        _write_map(map_path, report, fates, only_in_b)
        report["map"] = str(map_path)
    if as_json:
        echo(json_dumps({key: value for key, value in report.items() if key != "lines"}, indent=2))
    elif not quiet:
        for line in report["lines"]:
            echo(line)
    if not same:
        sys.exit(EXIT_REFUSED)


def _check_fcs(a: Capture, b: Capture, report: dict[str, Any], max_shown: int) -> bool:
    """Whether every frame of B that ends in an FCS has it right, but for frames of A passed through
    as they came (a frame damaged on the wire keeps its FCS): the frames were compared without it."""
    damaged_in_a = {data for _, data in a.fcs_problems}
    wrong = [index + 1 for index, data in b.fcs_problems if data not in damaged_in_a]
    report["fcs_wrong_in_b"] = wrong[:max_shown]
    report["fcs_wrong_in_b_count"] = len(wrong)
    if wrong:
        lines = report["lines"]
        # (the verdict the pairing gave, that B is A or what A becomes, no longer holds)
        if lines and lines[-1].startswith(("B is what A becomes", "identical:")):
            lines.pop()
        more = f" ... ({len(wrong)} frames)" if len(wrong) > max_shown else ""
        lines.append(f"FCS not the frame's CRC-32 in B: frame{'' if len(wrong) == 1 else 's'} "
                     f"{_ranges(wrong[:max_shown])}{more}")
        lines.append(f"{len(wrong)} frame{' of B ends' if len(wrong) == 1 else 's of B end'} in an FCS that is not "
                     f"right: B is not what A becomes ({NUMBERING})")
    return not wrong


def _by_position(frames_a: Iterator[FrameItem], frames_b: Iterator[FrameItem], max_shown: int, keep_all: bool,
                 progress: Callable[[], None], ports: dict[int, str] | None = None,
                 ) -> tuple[dict[str, Any], list[dict[str, Any]], list[int], bool]:
    """Frame N of A against frame N of B."""
    from ..check.capdiff import CaptureDiff

    result = CaptureDiff(keep=max_shown, tunnel_ports=ports)
    fates: list[dict[str, Any]] = []
    only_in_b: list[int] = []
    for count, (a, b) in enumerate(zip_longest(frames_a, frames_b)):
        result.add(count, a[1] if a else None, b[1] if b else None)
        if keep_all:
            if a is None:
                only_in_b.append(count + 1)
            else:
                fate = "missing" if b is None else "unchanged" if a[1] == b[1] else "changed"
                fates.append({"a_frame": count + 1, "fate": fate, "b_frames": [] if b is None else [count + 1],
                              "ok": fate == "unchanged"})
        if count % 64 == 0:
            progress()
    # frames_a and frames_b as --pair-by flow names them, beside capdiff's packets_a and packets_b
    report: dict[str, Any] = {"pair_by": "position", **result.as_dict(), "frames_a": result.packets_a,
                              "frames_b": result.packets_b, "numbering": NUMBERING}
    lines = [difference.text() for difference in result.differences]
    if result.differing > len(result.differences):
        lines.append(f"... and {result.differing - len(result.differences)} more differing frames (--max)")
    if (count_text := result.count_text()) is not None:
        lines.append(count_text)
    compared = min(result.packets_a, result.packets_b)
    if result.same:
        lines.append(f"identical: {compared} packet{'' if compared == 1 else 's'}, byte for byte")
    else:
        lines.append(f"{result.differing} of {compared} compared packets differ "
                     f"({result.packets_a} in A, {result.packets_b} in B; {NUMBERING})")
        if result.field_counts:
            common = sorted(result.field_counts.items(), key=lambda kv: -kv[1])[:6]
            lines.append("fields differing most: " + ", ".join(f"{name} ({n})" for name, n in common))
    report["lines"] = lines
    return report, fates, only_in_b, result.same


def _by_flow(frames_a: Iterator[FrameItem], frames_b: Iterator[FrameItem], max_shown: int, keep_all: bool,
             progress: Callable[[], None], ports: dict[int, str] | None = None,
             ) -> tuple[dict[str, Any], list[dict[str, Any]], list[int], bool]:
    """Each frame of A against what it became in B (softgso.check.flowdiff)."""
    from ..check.flowdiff import FATES, SEGMENTED, Fate, FlowDiff

    flow = FlowDiff(frames_b, ports)
    first: list[Fate] = []  # the first fates of A, shown when none differs
    differing: list[Fate] = []  # the first that differ, shown instead when there are some
    fates: list[dict[str, Any]] = []
    for count, (index, frame, ethernet) in enumerate(frames_a):
        fate = flow.add(index, frame, ethernet)
        if len(first) < max_shown:
            first.append(fate)
        if not fate.ok and len(differing) < max_shown:
            differing.append(fate)
        if keep_all:
            fates.append(fate.as_dict())
        if count % 64 == 0:
            progress()
    only_in_b = flow.only_in_b()
    progress()
    accounted = flow.not_ok == 0 and not only_in_b
    shown = differing if differing else first
    counts = {name: flow.counts[name] for name in FATES if flow.counts[name]}
    report: dict[str, Any] = {
        "pair_by": "flow", "accounted": accounted, "frames_a": flow.frames_a, "frames_b": flow.frames_b,
        "fates": counts, "segments": flow.segments, "differing": flow.not_ok,
        "only_in_b_count": len(only_in_b), "only_in_b": only_in_b[:max_shown], "numbering": NUMBERING,
        "frames": [fate.as_dict() for fate in shown],
    }
    lines = [fate.text() for fate in shown]
    hidden = (flow.not_ok if differing else flow.frames_a) - len(shown)
    if hidden > 0:
        lines.append(f"... and {hidden} more {'differing ' if differing else ''}frames of A (--max; --map FILE "
                     "lists them all)")
    if only_in_b:
        more = f" ... ({len(only_in_b)} frames)" if len(only_in_b) > max_shown else ""
        lines.append(f"only in B: frame{'' if len(only_in_b) == 1 else 's'} {_ranges(only_in_b[:max_shown])}{more}")
    parts = [f"{name} {count}" + (f" (into {flow.segments} frames)" if name == SEGMENTED else "")
             for name, count in counts.items()]
    lines.append(f"A: {flow.frames_a} frames -> B: {flow.frames_b} frames, paired by flow: {', '.join(parts) or '-'}")
    if accounted:
        lines.append(f"B is what A becomes: every frame of A accounted for, every frame of B from one of them "
                     f"({NUMBERING})")
    else:
        lines.append(f"{flow.not_ok} frame{' of A differs' if flow.not_ok == 1 else 's of A differ'}, {len(only_in_b)} "
                     f"frame{'' if len(only_in_b) == 1 else 's'} of B from no frame of A ({NUMBERING})")
    report["lines"] = lines
    return report, fates, only_in_b, accounted


def _ranges(frames: list[int]) -> str:
    from ..check.flowdiff import frame_ranges

    return frame_ranges(frames)


def _write_map(path: Path, report: dict[str, Any], fates: list[dict[str, Any]], only_in_b: list[int]) -> None:
    """The A-frame -> B-frames map, as JSON, written by the rule of every output (softgso.io.outfile)."""
    from ..io.outfile import write_file

    head = {"a": report["a"], "b": report["b"], "pair_by": report["pair_by"], "numbering": NUMBERING}
    # one frame of A a line: readable, greppable, and a fraction of an indented document's size
    text = (json_dumps(head)[:-1] + ', "frames": [\n' + ",\n".join(json_dumps(fate) for fate in fates)
            + f'\n], "only_in_b": {json_dumps(only_in_b)}}}\n')
    data = text.encode()

    def fill(handle: BinaryIO) -> None:
        handle.write(data)

    write_file(str(path), fill)
