"""``softgso inspect --jobs N``: the same report (JSON and tables) as one job and as the per-frame
reference (``--engine scalar``: every record read by the general reader and through the engine,
every coalesce preview packet built), on captures that need many parts: super-packets, the
segments ``segment`` makes of them (GRO coalesces them, within a poll of 64 records), short
frames, odd and refused packets, tunnels, both formats; and one job's report where a part cannot be
read to its end by the bulk reader."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from cli_captures import mixed_capture, write_pcapng
from conftest import recorded_progress, run_cli, spy_on_parts
from test_segment_bulk import mixed_frames, tunnel_frames

from softgso.bulk import compiled_primitive
from softgso.cli.bench import MIXES, _frames, write_capture

pytestmark = pytest.mark.skipif(not compiled_primitive.available(),
                                reason="softgso.bulk._segment not built (or SOFTGSO_NO_C): the bulk reader")


def in_parts(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each inspect --jobs run was done in parts (softgso.cli.inspect_jobs answered) or in one job."""
    from softgso.cli import inspect_jobs

    return spy_on_parts(monkeypatch, inspect_jobs, "inspect_in_parts")


def reports(capture: Path, *options: str) -> tuple[tuple[int, str, str], ...]:
    """inspect's JSON and tables of ``capture`` (exit status, stdout, stderr) with ``options``."""
    runs = (run_cli("inspect", capture, *options, "--json"), run_cli("inspect", capture, *options))
    return tuple((run.exit_code, run.stdout, run.stderr) for run in runs)


def assert_parts_agree(capture: Path, jobs: str, monkeypatch: pytest.MonkeyPatch, *options: str) -> None:
    seen = in_parts(monkeypatch)
    parts = reports(capture, "--jobs", jobs, *options)
    assert seen == [True, True], "inspected in parts"
    assert parts == reports(capture, *options)
    assert parts == reports(capture, "--engine", "scalar", *options)
    assert parts[0][0] == 0


@pytest.mark.parametrize("jobs", ["2", "3", "7"])
@pytest.mark.parametrize("capture_format", ["pcap", "pcapng"])
def test_mixed_capture_in_parts(tmp_path: Path, jobs: str, capture_format: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    capture = tmp_path / f"in.{capture_format}"
    write_capture(capture, 3 << 20, frames=mixed_frames(11), capture_format=capture_format)
    assert_parts_agree(capture, jobs, monkeypatch)


@pytest.mark.parametrize("options", [(), ("--device", "tso", "--mtu", "1400"), ("--udp-gso", "udp_l4")])
def test_super_packets_and_datagrams_in_parts(tmp_path: Path, options: tuple[str, ...],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    capture = tmp_path / "in.pcapng"
    supers, datagrams = _frames(MIXES["issue"], 9000), _frames(MIXES["uso"], 9000)
    frames = [frame for _ in range(8) for source in (supers, datagrams) for frame in itertools.islice(source, 40)]
    write_capture(capture, 4 << 20, frames=itertools.cycle(frames), capture_format="pcapng")
    assert_parts_agree(capture, "3", monkeypatch, *options)


def test_segments_that_coalesce_across_cuts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MTU-sized segments of long TCP flows: GRO merges up to 45 of them into a packet, so a poll cut
    in two would change coalesce's preview."""
    supers, segments = tmp_path / "supers.pcap", tmp_path / "segments.pcap"
    write_capture(supers, 2 << 20, "tcp4")
    assert run_cli("segment", supers, segments, "-q").exit_code == 0
    assert_parts_agree(segments, "3", monkeypatch)
    assert_parts_agree(segments, "5", monkeypatch)


def test_tunnels_in_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    capture = tmp_path / "in.pcap"
    write_capture(capture, 3 << 20, frames=tunnel_frames(5))
    assert_parts_agree(capture, "4", monkeypatch, "--top", "50")


def test_a_part_the_bulk_reader_stops_in_makes_one_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pcapng whose interface is described after its first packets: the bulk reader stops there, so
    the file is inspected in one job, with the same report."""
    frames = mixed_capture() * 300
    capture = write_pcapng(tmp_path / "late.pcapng", [(1, "eth0")], [(0, frame, None) for frame in frames])
    late = tmp_path / "late2.pcapng"
    head = write_pcapng(tmp_path / "head.pcapng", [(1, "eth0"), (1, "eth1")], [])
    content = capture.read_bytes()
    # the second interface's IDB, put after the packets: a block the bulk reader does not take
    idb = head.read_bytes()[len(write_pcapng(tmp_path / "one.pcapng", [(1, "eth0")], []).read_bytes()):]
    tail = write_pcapng(tmp_path / "tail.pcapng", [(1, "eth0")], [(0, frame, None) for frame in frames[:50]])
    late.write_bytes(content + idb + tail.read_bytes()[len((tmp_path / "one.pcapng").read_bytes()):])
    seen = in_parts(monkeypatch)
    one = reports(late, "--jobs", "2")
    assert seen == [False, False]
    assert one == reports(late) == reports(late, "--engine", "scalar")


def test_parts_keep_the_progress_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bar is told the bytes all parts have read, up to every byte after the file header."""
    told = recorded_progress(monkeypatch)
    capture = tmp_path / "in.pcap"
    write_capture(capture, 2 << 20, frames=mixed_frames(3))
    assert run_cli("inspect", capture, "--jobs", "3").exit_code == 0
    assert told and told[-1] == capture.stat().st_size - 24
    assert told == sorted(told)
