"""IN as a FIFO or ``-`` (standard input), OUT as ``-`` (standard output), for every command that reads captures.

Rule: a non-seekable input streams through the general (scalar) reader, front to back; every command
writes for it exactly what it writes for the same bytes in a regular file. ``-`` as OUT writes that
same capture to standard output (the summary goes to standard error). Each run is a child process
with a timeout, so that a regression (the bulk path mapping or reopening a FIFO) fails instead of
hanging.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_captures import mixed_capture, write_pcap, write_pcapng

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "mpls_tcp_super.pcap"  # MPLS-labelled super-packets
TIMEOUT = 60


def _engines() -> list[str]:
    """Every ``segment --engine`` choice: each must leave a FIFO or stdin to the general reader."""
    from softgso.cli.commands import segment

    return list(next(p.type.choices for p in segment.params if p.name == "engine"))  # type: ignore[attr-defined]


ENGINES = _engines()


def softgso(*args: str | Path, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m softgso ARGS`` in a child process (stdout as bytes: it may carry a capture)."""
    return subprocess.run([sys.executable, "-m", "softgso", *map(str, args)], input=stdin, capture_output=True,
                          timeout=TIMEOUT, cwd=cwd)


@contextmanager
def fifo_fed(folder: Path, data: bytes, name: str = "in.fifo") -> Iterator[Path]:
    """A FIFO that a thread writes ``data`` into once a reader opens it."""
    fifo = folder / name
    os.mkfifo(fifo)

    def feed() -> None:
        try:
            with open(fifo, "wb") as pipe:
                pipe.write(data)
        except BrokenPipeError:
            pass  # the reader stopped early (a broken capture): the test checks what it made of it

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield fifo
    finally:
        thread.join(TIMEOUT)
        if thread.is_alive():  # nobody opened it (a failed run): let the writer's open() return
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
            thread.join(TIMEOUT)


@pytest.fixture(params=["pcap", "pcapng"])
def capture(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The mixed capture (super-packets among ordinary traffic) as a regular file."""
    frames = mixed_capture()
    if request.param == "pcap":
        return write_pcap(tmp_path / "in.pcap", frames)
    return write_pcapng(tmp_path / "in.pcapng", [(1, "eth0")], [(0, f, None) for f in frames])


def reference(tmp_path: Path, *args: str | Path) -> bytes:
    """What a command writes to OUT (a regular file) for a regular IN: ``args`` hold ``OUT`` as a placeholder."""
    out = tmp_path / "reference.out"
    done = softgso(*[out if a == "OUT" else a for a in args])
    if done.returncode == 2 and b"not built" in done.stderr:
        pytest.skip(done.stderr.decode().strip())  # an engine whose extension is not built here
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_segment_reads_a_fifo_as_it_reads_the_file(tmp_path: Path, capture: Path, engine: str, jobs: str) -> None:
    options = ["-q", "--engine", engine, "--jobs", jobs]
    expected = reference(tmp_path, "segment", capture, "OUT", *options)
    out = tmp_path / "out"
    with fifo_fed(tmp_path, capture.read_bytes()) as fifo:
        done = softgso("segment", fifo, out, *options)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == expected


ACTIONS = [
    ("push-mpls", "--label", "100", "--ttl", "64"),
    ("pop-mpls", "--ethertype", "ipv4"),
    ("set-mpls", "--label", "200", "--ttl", "7"),
    ("dec-ttl",),
    ("push-vlan", "--vid", "42", "--pcp", "5"),
    ("pop-vlan",),
]


@pytest.mark.parametrize("action", ACTIONS, ids=[a[0] for a in ACTIONS])
def test_every_action_command_reads_a_fifo_as_it_reads_the_file(tmp_path: Path, action: tuple[str, ...]) -> None:
    command, *options = action
    expected = reference(tmp_path, command, SAMPLE, "OUT", *options, "-q")
    out = tmp_path / "out.pcap"
    with fifo_fed(tmp_path, SAMPLE.read_bytes()) as fifo:
        done = softgso(command, fifo, out, *options, "-q")
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == expected


def test_inspect_reads_a_fifo_and_stdin_as_it_reads_the_file(tmp_path: Path, capture: Path) -> None:
    def report(done: subprocess.CompletedProcess) -> dict:
        assert done.returncode == 0, done.stderr
        parsed = json.loads(done.stdout)
        parsed.pop("file")
        return parsed

    expected = report(softgso("inspect", capture, "--json"))
    with fifo_fed(tmp_path, capture.read_bytes()) as fifo:
        assert report(softgso("inspect", fifo, "--json")) == expected
    assert report(softgso("inspect", "-", "--json", stdin=capture.read_bytes())) == expected


def test_diff_reads_fifos_and_stdin(tmp_path: Path, capture: Path) -> None:
    data = capture.read_bytes()
    with fifo_fed(tmp_path, data, "a.fifo") as a, fifo_fed(tmp_path, data, "b.fifo") as b:
        done = softgso("diff", a, b)
    assert done.returncode == 0 and b"identical" in done.stdout, done.stderr
    done = softgso("diff", "-", capture, stdin=data)
    assert done.returncode == 0 and b"identical" in done.stdout, done.stderr
    segmented = tmp_path / "segmented"
    assert softgso("segment", capture, segmented, "-q").returncode == 0
    assert softgso("diff", segmented, "-", stdin=data).returncode == 1


def test_diff_refuses_stdin_twice(capture: Path) -> None:
    done = softgso("diff", "-", "-", stdin=capture.read_bytes())
    assert done.returncode == 2 and b"cannot both be -" in done.stderr


@pytest.mark.parametrize("engine", ENGINES)
def test_segment_reads_stdin_and_writes_stdout(tmp_path: Path, capture: Path, engine: str) -> None:
    expected = reference(tmp_path, "segment", capture, "OUT", "-q", "--engine", engine)
    from_stdin = tmp_path / "from_stdin"
    done = softgso("segment", "-", from_stdin, "-q", "--engine", engine, stdin=capture.read_bytes())
    assert done.returncode == 0, done.stderr
    assert from_stdin.read_bytes() == expected
    done = softgso("segment", capture, "-", "-q", "--engine", engine, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == expected, done.stderr
    done = softgso("segment", "-", "-", "-q", "--engine", engine, stdin=capture.read_bytes(), cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == expected, done.stderr
    assert not (tmp_path / "-").exists() and not list(tmp_path.glob(".*.tmp")), "stdout is not a file named -"


def test_segment_summary_goes_to_stderr_when_out_is_stdout(tmp_path: Path, capture: Path) -> None:
    expected = reference(tmp_path, "segment", capture, "OUT", "-q")
    done = softgso("segment", capture, "-", "--json")
    assert done.returncode == 0 and done.stdout == expected
    assert json.loads(done.stderr)["output"] == "-"
    done = softgso("segment", capture, "-")
    assert done.returncode == 0 and done.stdout == expected
    assert b"softgso segment -> -" in done.stderr


def test_segment_jobs_write_stdout(tmp_path: Path) -> None:
    expected = reference(tmp_path, "segment", SAMPLE, "OUT", "-q")
    done = softgso("segment", SAMPLE, "-", "-q", "--jobs", "2", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == expected, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reference.out"], "no scratch folder left beside OUT"


@pytest.mark.parametrize("action", ACTIONS[:2], ids=[a[0] for a in ACTIONS[:2]])
def test_action_commands_read_stdin_and_write_stdout(tmp_path: Path, action: tuple[str, ...]) -> None:
    command, *options = action
    expected = reference(tmp_path, command, SAMPLE, "OUT", *options, "-q")
    done = softgso(command, "-", "-", *options, stdin=SAMPLE.read_bytes())
    assert done.returncode == 0 and done.stdout == expected, done.stderr
    assert command.encode() in done.stderr  # the one-line summary, on stderr


def test_a_broken_capture_on_stdin_keeps_every_record_before_the_break(tmp_path: Path) -> None:
    frames = mixed_capture()
    data = write_pcap(tmp_path / "in.pcap", frames).read_bytes()
    expected = reference(tmp_path, "segment", write_pcap(tmp_path / "first3.pcap", frames[:3]), "OUT", "-q")
    cut = data[: len(write_pcap(tmp_path / "first4.pcap", frames[:4]).read_bytes()) - 10]
    done = softgso("segment", "-", "-", "-q", stdin=cut)
    assert done.returncode == 3
    assert b"<stdin>: frame 4" in done.stderr and b"cut short" in done.stderr
    assert done.stdout == expected


@pytest.mark.parametrize("command", [["segment"], ["push-mpls", "--label", "100"], ["coalesce"]])
def test_out_dash_on_a_terminal_is_refused_and_nothing_is_written_there(command: list[str]) -> None:
    """A capture is binary: OUT - with standard output a terminal is a usage error (as gzip's), said on
    stderr; piped or redirected, the same command writes the capture."""
    main, terminal = os.openpty()
    shown = bytearray()

    def drain() -> None:  # what reaches the terminal (read on, so that a writer never blocks on it)
        try:
            while chunk := os.read(main, 1 << 16):
                shown.extend(chunk)
        except OSError:  # the terminal's other end closed
            pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        code = "import sys; from softgso.cli.entry import main; sys.argv[0] = 'softgso'; main()"
        done = subprocess.run([sys.executable, "-c", code, command[0], str(SAMPLE), "-", *command[1:], "-q"],
                              stdout=terminal, stderr=subprocess.PIPE, timeout=120,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    finally:
        os.close(terminal)
        reader.join(timeout=10)
        os.close(main)
    assert done.returncode == 2 and b"standard output is a terminal" in done.stderr
    assert bytes(shown) == b""
    piped = softgso(command[0], SAMPLE, "-", *command[1:], "-q")
    assert piped.returncode == 0 and piped.stdout[:4] == SAMPLE.read_bytes()[:4]
