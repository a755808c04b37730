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

from softgso.cli.commands import segment as segment_command
from softgso.cli.entry import SEGMENT_DEFAULTS, SEGMENT_OPTIONS, parse_segment
from softgso.io import open_writer, outfile

# options left to click on purpose (another output path, or no run at all)
DECLINED = {"--jobs", "--dask-scheduler", "--help", "-h"}


def declared_kind(param: click.Option) -> tuple[str, object]:
    """(kind, accepted values) of a click option, in softgso.cli.entry.SEGMENT_OPTIONS' terms."""
    if param.is_flag:
        return "flag", None
    if param.multiple:
        return "multiple", None
    if isinstance(param.type, click.Choice):
        return "choice", tuple(param.type.choices)
    if isinstance(param.type, click.IntRange):
        return "int", (param.type.min, param.type.max)
    if param.type is click.INT:
        return "int", None
    assert param.type is click.STRING, f"{param.name}: a type the plain-run parser does not know"
    return "str", None


def test_the_option_table_is_segment_s_own() -> None:
    seen = set()
    for param in segment_command.params:
        if not isinstance(param, click.Option):
            continue
        for name in param.opts + param.secondary_opts:
            if name in DECLINED:
                continue
            seen.add(name)
            assert SEGMENT_OPTIONS[name] == (param.name, *declared_kind(param)), name
    assert seen == set(SEGMENT_OPTIONS)
    # the defaults: what click passes for a command line with no options at all
    defaults = segment_command.make_context("segment", ["in.pcap", "out.pcap"]).params
    assert {k: v for k, v in defaults.items() if k not in ("in_path", "out_path")} == SEGMENT_DEFAULTS


def click_params(args: list[str]) -> dict[str, object] | None:
    """segment's parameters as click parses ``softgso ARGS``, None when it refuses the command line."""
    try:
        context = segment_command.make_context("segment", list(args[1:]), resilient_parsing=False)
    except (click.exceptions.Exit, click.UsageError):
        return None
    return dict(context.params)


VALUES = {"--gso-size": ["1400", "0", "70000", "x"], "--gso-type": ["tcpv4", "TCPV4", "bogus"],
          "--input-csum": ["partial", "none"], "--vnet-hdr": ["01013600a805220010"],
          "--action": ["push-mpls:100:0:64:uc", "dec-ttl"], "--device": ["nic-tso-no-mpls-gso", "x"],
          "--mtu": ["9000", "-1", " 1500 ", "1_500", "1.5"], "--output-csum": ["complete", "full"],
          "--ip-id": ["fixed"], "--ipv6-frag-id": ["7", "0x10"], "--kernel": ["mainline", "5.10"],
          "--engine": ["scalar", "compiled", "fast"], "--jobs": ["2", "1"], "--dask-scheduler": ["tcp://x:1"]}
FLAGS = ["--tcp-ecn", "--strict", "--json", "-q", "--quiet"]
OPTION_WORDS = st.one_of(
    st.sampled_from(FLAGS + sorted(DECLINED) + ["--unknown", "-qh", "--", "-", "--json=1"]).map(lambda w: [w]),
    st.sampled_from(sorted(VALUES)).flatmap(lambda o: st.sampled_from(VALUES[o]).map(lambda v: [o, v])),
    st.sampled_from(sorted(VALUES)).flatmap(lambda o: st.sampled_from(VALUES[o]).map(lambda v: [f"{o}={v}"])),
)
PATHS = st.sampled_from(["in.pcap", "out.pcap", "x y.pcap", "dir/out.pcap", "-"])


@settings(max_examples=800, deadline=None)
@given(st.data())
def test_a_plain_run_is_parsed_as_click_parses_it(data: st.DataObject) -> None:
    groups = data.draw(st.lists(OPTION_WORDS, max_size=6))
    # usually IN and OUT, now and then one or three paths, placed anywhere between the options
    for _ in range(data.draw(st.sampled_from([2, 2, 2, 2, 1, 3]))):
        groups.insert(data.draw(st.integers(0, len(groups))), [data.draw(PATHS)])
    if data.draw(st.booleans()):
        groups.append([data.draw(st.sampled_from(sorted(VALUES)))])  # an option without its value, at the end
    args = ["segment", *[word for group in groups for word in group]]
    params = parse_segment(args)
    if params is not None:
        params["in_path"], params["out_path"] = Path(params["in_path"]), Path(params["out_path"])
        assert params == click_params(args)


@pytest.mark.parametrize("args, paths", [
    (["segment", "a.pcap", "b.pcap"], ("a.pcap", "b.pcap")),
    (["segment", "--device", "nic-tso", "a.pcap", "-q", "b.pcap", "--mtu=9000"], ("a.pcap", "b.pcap")),
    (["segment", "a.pcap", "b.pcap", "--jobs", "2"], None),
    (["segment", "a.pcap", "-"], None),
    (["segment", "a.pcap", "b.pcap", "--help"], None),
    (["segment", "a.pcap"], None),
    (["segment", "a.pcap", "b.pcap", "--device"], None),
    (["segment", "a.pcap", "b.pcap", "--gso-size", "0"], None),  # click reports that one
    (["inspect", "a.pcap", "b.pcap"], None),
])
def test_plain_segment_runs_are_recognised(args: list[str], paths: tuple[str, str] | None) -> None:
    params = parse_segment(args)
    assert (None if params is None else (params["in_path"], params["out_path"])) == paths


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
            pytest.skip("softgso.bulk._segment is not built here")
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
        pytest.skip("softgso.bulk._segment is not built here")
    with pytest.raises(RuntimeError), open_writer(out) as writer:
        writer.write_record(0, [b"x" * 60])
        raise RuntimeError("caller gives up")
    assert out.read_bytes() == b"previous result" and leftovers(tmp_path) == []


def run_softgso(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``softgso ARGS`` as a user runs it: a process through the entry point."""
    code = "import sys; from softgso.cli.entry import main; sys.argv[0] = 'softgso'; main()"
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


@pytest.mark.parametrize("bad, message", [
    (["--device", "no-such-profile"], "no-such-profile"),  # refused by the run, after the head start
    (["--vnet-hdr", "0101", "--gso-size", "1000"], "--vnet-hdr replaces"),
    (["--engine", "nonsense"], "Invalid value for '--engine'"),  # refused by click
    (["--gso-size", "0"], "Invalid value for '--gso-size'"),
])
def test_a_command_refused_leaves_no_file_and_says_why(tmp_path: Path, bad: list[str], message: str) -> None:
    capture = write_pcap(tmp_path / "in.pcap", [tcp4_super(30000, partial=False)] * 10)
    out = tmp_path / "out.pcap"
    done = run_softgso("segment", capture, out, *bad)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not out.exists() and leftovers(tmp_path) == []


def test_a_plain_run_and_the_click_run_end_alike(tmp_path: Path) -> None:
    """Same output, same JSON summary but for the timing, same exit status under --strict."""
    import json

    capture = write_pcap(tmp_path / "in.pcap", mixed_capture() + [tcp4_super(60000, partial=False)] * 5)
    runs = []
    for name, extra in (("plain.pcap", []), ("click.pcap", ["--jobs", "1"])):  # --jobs: click parses it
        done = run_softgso("segment", capture, tmp_path / name, "--json", "--strict", "--mtu", "1400", *extra)
        summary = json.loads(done.stdout)
        for key in ("seconds", "output"):
            summary.pop(key)
        runs.append((done.returncode, summary, (tmp_path / name).read_bytes()))
    assert runs[0] == runs[1]


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
            pytest.skip("nothing reserves space here (softgso.bulk._segment not built, or no fallocate)")
        blocks = os.stat(writer._temp_path).st_blocks * 512  # noqa: SLF001 - the reserved space is the point
        assert 10 * written <= blocks < 10 * written + (2 << 20)
        assert os.stat(writer._temp_path).st_size == written  # noqa: SLF001 - reserving never changes the size
        writer.close()
        assert os.stat(out).st_size == written and os.stat(out).st_blocks * 512 < written + (1 << 20)
        assert out.read_bytes()[-(1 << 20):] == b"\x01" * (1 << 20)
        assert leftovers(directory) == []



def test_coalesce_s_option_sets_are_its_own() -> None:
    """coalesce's head start finds IN and OUT by knowing which of its options take a value: the sets are
    the command's declaration, every option in one of them."""
    from softgso.cli.commands import coalesce as coalesce_command
    from softgso.cli.entry import COALESCE_FLAGS, COALESCE_VALUE_OPTIONS

    values, flags = set(), set()
    for param in coalesce_command.params:
        if isinstance(param, click.Option):
            names = {name for name in param.opts + param.secondary_opts if name not in DECLINED}
            (flags if param.is_flag else values).update(names)
    assert (values, flags) == (set(COALESCE_VALUE_OPTIONS), set(COALESCE_FLAGS))


@pytest.mark.parametrize("args, paths", [
    (["coalesce", "a.pcap", "b.pcap"], ("a.pcap", "b.pcap")),
    (["coalesce", "--batch", "8", "a.pcap", "-q", "b.pcap", "--kernel", "mainline"], ("a.pcap", "b.pcap")),
    (["coalesce", "--batch=8", "a.pcap", "b.pcap"], ("a.pcap", "b.pcap")),
    (["coalesce", "a.pcap", "-"], None),
    (["coalesce", "a.pcap", "b.pcap", "--help"], None),
    (["coalesce", "a.pcap"], None),
    (["segment", "a.pcap", "b.pcap"], None),
])
def test_coalesce_paths_for_the_head_start(args: list[str], paths: tuple[str, str] | None) -> None:
    from softgso.cli.entry import coalesce_paths

    assert coalesce_paths(args) == paths


def test_coalesce_writes_the_same_bytes_with_a_head_start(tmp_path: Path) -> None:
    """Through the entry point (OUT's space reserved first) and through click alone: the same bytes, no
    temporary file left behind."""
    from click.testing import CliRunner

    from softgso.cli.commands import main as cli_main

    segmented = tmp_path / "segmented.pcap"
    capture = write_pcap(tmp_path / "in.pcap", mixed_capture() + [tcp4_super(60000, partial=False)] * 20)
    assert run_softgso("segment", capture, segmented, "-q").returncode == 0
    with_start, without = tmp_path / "a.pcap", tmp_path / "b.pcap"
    done = run_softgso("coalesce", segmented, with_start, "-q", "--batch", "32")
    assert done.returncode == 0, done.stderr
    assert CliRunner().invoke(cli_main, ["coalesce", str(segmented), str(without), "-q", "--batch", "32"]).exit_code == 0
    assert with_start.read_bytes() == without.read_bytes()
    assert leftovers(tmp_path) == []
