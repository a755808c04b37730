"""The entry point's head start for ``segment``: its guess at IN and OUT never disagrees with click,
the temporary file it makes becomes OUT or is removed, and OUT's bytes do not depend on it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from cli_captures import mixed_capture, tcp4_super, write_pcap
from hypothesis import given, settings
from hypothesis import strategies as st

from softgso import outfile
from softgso.cli import segment as segment_command
from softgso.entry import SEGMENT_FLAGS, SEGMENT_VALUE_OPTIONS, segment_paths
from softgso.io import open_writer

# options the head start declines on purpose (another output path, or no run at all)
DECLINED = {"--jobs", "--dask-scheduler", "--help", "-h"}


def option_names() -> tuple[set[str], set[str]]:
    """segment's own (value-taking, flag) option names, as click declares them."""
    values, flags = set(), set()
    for param in segment_command.params:
        if isinstance(param, click.Option):
            (flags if param.is_flag else values).update(param.opts)
    return values, flags


def test_the_option_table_is_segment_s_own() -> None:
    values, flags = option_names()
    assert SEGMENT_VALUE_OPTIONS == values - DECLINED
    assert SEGMENT_FLAGS == flags - DECLINED
    # and no declined option slipped into the table
    assert not (SEGMENT_VALUE_OPTIONS | SEGMENT_FLAGS) & DECLINED


def click_paths(args: list[str]) -> tuple[str, str] | None:
    """(IN, OUT) as click parses ``softgso ARGS``, None when it refuses the command line."""
    if not args or args[0] != "segment":
        return None
    try:
        context = segment_command.make_context("segment", list(args[1:]), resilient_parsing=False)
    except (click.exceptions.Exit, click.UsageError):
        return None
    return str(context.params["in_path"]), str(context.params["out_path"])


VALUES = {"--gso-size": "1400", "--gso-type": "tcpv4", "--input-csum": "partial", "--vnet-hdr": "01013600a805220010",
          "--action": "push-mpls:100:0:64:uc", "--device": "nic-tso-no-mpls-gso", "--mtu": "9000",
          "--output-csum": "complete", "--ip-id": "fixed", "--ipv6-frag-id": "7", "--kernel": "mainline",
          "--engine": "scalar", "--jobs": "2", "--dask-scheduler": "tcp://x:1"}
WORDS = st.one_of(
    st.sampled_from(sorted(SEGMENT_FLAGS | DECLINED | {"--unknown", "-qh", "--", "-"})).map(lambda w: [w]),
    st.sampled_from(sorted(VALUES)).map(lambda o: [o, VALUES[o]]),
    st.sampled_from(sorted(VALUES)).map(lambda o: [f"{o}={VALUES[o]}"]),
    st.sampled_from(["in.pcap", "out.pcap", "x y.pcap", "dir/out.pcap"]).map(lambda w: [w]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(WORDS, max_size=7).map(lambda words: ["segment", *[w for ws in words for w in ws]]))
def test_a_guess_is_what_click_parses(args: list[str]) -> None:
    guess = segment_paths(args)
    if guess is not None:
        assert guess == click_paths(args)


@pytest.mark.parametrize("args, expected", [
    (["segment", "a.pcap", "b.pcap"], ("a.pcap", "b.pcap")),
    (["segment", "--device", "nic-tso", "a.pcap", "-q", "b.pcap", "--mtu=9000"], ("a.pcap", "b.pcap")),
    (["segment", "a.pcap", "b.pcap", "--jobs", "2"], None),
    (["segment", "a.pcap", "-"], None),
    (["segment", "a.pcap", "b.pcap", "--help"], None),
    (["segment", "a.pcap"], None),
    (["segment", "a.pcap", "b.pcap", "--device"], None),
    (["inspect", "a.pcap", "b.pcap"], None),
])
def test_plain_segment_runs_are_recognised(args: list[str], expected: tuple[str, str] | None) -> None:
    assert segment_paths(args) == expected


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def scratch_dirs(tmp_path: Path) -> Iterator[list[Path]]:
    """tmp_path, and a tmpfs directory where there is one (where the reservation matters most)."""
    dirs = [tmp_path]
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        dirs.append(Path(tempfile.mkdtemp(prefix="softgso-test-", dir="/dev/shm")))
    yield dirs
    for directory in dirs[1:]:
        shutil.rmtree(directory, ignore_errors=True)


def test_a_claimed_reservation_becomes_out_with_nothing_reserved_left(scratch_dirs: list[Path]) -> None:
    for directory in scratch_dirs:
        out = directory / "out.pcap"
        reservation = outfile.reserve(str(out), 64 << 20)
        if reservation is None:
            pytest.skip("softgso._segment is not built here")
        with open_writer(out) as writer:
            assert writer._reservation is reservation  # noqa: SLF001 - the claim is the point
            for number in range(100):
                writer.write_record(number, [bytes([number]) * 1000])
        data = out.read_bytes()
        assert len(data) == 24 + 100 * (16 + 1000)
        assert data[24 + 16 : 24 + 16 + 1000] == b"\x00" * 1000
        # the space reserved beyond the last byte is given back
        assert os.stat(out).st_blocks * 512 < 8 << 20
        assert os.stat(out).st_mode & 0o777 == outfile.output_mode()
        assert leftovers(directory) == [] and outfile.claim(str(out)) is None


def test_an_aborted_writer_removes_the_reserved_file(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    out.write_bytes(b"previous result")
    if outfile.reserve(str(out), 32 << 20) is None:
        pytest.skip("softgso._segment is not built here")
    with pytest.raises(RuntimeError), open_writer(out) as writer:
        writer.write_record(0, [b"x" * 60])
        raise RuntimeError("caller gives up")
    assert out.read_bytes() == b"previous result" and leftovers(tmp_path) == []


def run_softgso(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``softgso ARGS`` as a user runs it: a process through the entry point."""
    code = "import sys; from softgso.entry import main; sys.argv[0] = 'softgso'; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_the_command_writes_the_same_bytes_with_a_head_start(tmp_path: Path) -> None:
    capture = write_pcap(tmp_path / "in.pcap", mixed_capture() + [tcp4_super(60000, partial=False)] * 50)
    with_start, without = tmp_path / "a.pcap", tmp_path / "b.pcap"
    first = run_softgso("segment", capture, with_start, "-q")
    # a value option between the paths: still recognised; the dash form of IN is not
    second = run_softgso("segment", "--engine", "auto", capture, "-q", without, "--jobs", "1")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert with_start.read_bytes() == without.read_bytes()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("bad", [["--engine", "nonsense"], ["--gso-size", "0"], ["--device", "no-such-profile"]])
def test_a_command_that_fails_after_the_head_start_leaves_no_file(tmp_path: Path, bad: list[str]) -> None:
    capture = write_pcap(tmp_path / "in.pcap", [tcp4_super(30000, partial=False)] * 10)
    out = tmp_path / "out.pcap"
    done = run_softgso("segment", capture, out, *bad)
    assert done.returncode == 2, done.stderr
    assert not out.exists() and leftovers(tmp_path) == []


def test_idle_reservation_follows_the_projected_size_and_is_given_back(scratch_dirs: list[Path]) -> None:
    for directory in scratch_dirs:
        out = directory / "out.pcap"
        writer = open_writer(out)
        writer.write_framed([bytes(16) + b"\x01" * (1 << 20)], 1)  # written at once: 1 MiB and headers
        written = writer.bytes_written
        # a tenth of the input done: the output is projected at ten times what is written
        steps = 0
        while writer.reserve_ahead(100, 1000):
            steps += 1
        if steps == 0:
            writer.abort()
            pytest.skip("nothing reserves space here (softgso._segment not built, or no fallocate)")
        blocks = os.stat(writer._temp_path).st_blocks * 512  # noqa: SLF001 - the reserved space is the point
        assert 10 * written <= blocks < 10 * written + (2 << 20)
        assert os.stat(writer._temp_path).st_size == written  # noqa: SLF001 - reserving never changes the size
        writer.close()
        assert os.stat(out).st_size == written and os.stat(out).st_blocks * 512 < written + (1 << 20)
        assert out.read_bytes()[-(1 << 20):] == b"\x01" * (1 << 20)
        assert leftovers(directory) == []
