"""Faults during ``softgso segment``: OUT is all or nothing, errors are clear, exit codes as documented.

cli.py documents: 0 ok, 1 refused under --strict, 2 usage, 3 input or output file error. OUT is
written to a temporary file beside it and renamed over it only when the run ends cleanly, so an
interrupted run (SIGINT, an exception, a full disk, a truncated input) leaves neither a partial
OUT nor the temporary file, and an OUT that existed before keeps its old bytes.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.cli.commands import main

# auto is the compiled stream where softgso.bulk._segment is built; numpy the stream without it
ENGINES = ["scalar", "numpy", "auto"]
OLD_OUT = b"an older OUT that a failed run must leave alone"


def _write_pcap(path: Path, count: int, payload: int = 20000) -> Path:
    frame = build_frame(SuperPacketSpec(payload=bytes((i * 7) & 0xFF for i in range(payload))))
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for index in range(count):
            out.write(struct.pack("<IIII", 1_700_000_000 + index, 0, len(frame), len(frame)) + frame)
    return path


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _leftovers(folder: Path, *keep: Path) -> list[str]:
    """Files in ``folder`` other than ``keep``: a temporary OUT left behind would show here."""
    names = {p.name for p in keep}
    return sorted(p.name for p in folder.iterdir() if p.name not in names)


@pytest.mark.parametrize("engine", ENGINES)
def test_sigint_mid_run_leaves_no_partial_out_and_no_temp_file(tmp_path: Path, engine: str) -> None:
    records = _write_pcap(tmp_path / "records.pcap", 30).read_bytes()
    source = tmp_path / "in.pcap"
    os.mkfifo(source)  # the run cannot end while the FIFO stays open: the signal lands mid-run on every engine
    out = tmp_path / "out.pcap"
    out.write_bytes(OLD_OUT)
    command = [sys.executable, "-m", "softgso", "segment", str(source), str(out), "--gso-size", "8", "-q",
               "--engine", engine]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with source.open("wb") as feed:
        feed.write(records)  # returns once the run has read them: ~75,000 segments written or being written
        feed.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if any(p.name.endswith(".tmp") and p.stat().st_size > 4096 for p in tmp_path.iterdir()):
                break
            time.sleep(0.02)
        assert process.poll() is None, process.communicate()[1]
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0, stderr
    assert out.read_bytes() == OLD_OUT, "an interrupted run must not touch OUT"
    assert _leftovers(tmp_path, tmp_path / "records.pcap", source, out) == []


def test_sigterm_mid_run_leaves_no_temp_file(tmp_path: Path) -> None:
    source = _write_pcap(tmp_path / "in.pcap", 30)
    out = tmp_path / "out.pcap"
    command = [sys.executable, "-m", "softgso", "segment", str(source), str(out), "--gso-size", "8", "-q",
               "--engine", "scalar"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if any(p.name.endswith(".tmp") and p.stat().st_size > 4096 for p in tmp_path.iterdir()):
            break
        time.sleep(0.02)
    if process.poll() is not None:
        pytest.skip("the run finished before it could be interrupted")
    process.terminate()
    process.communicate(timeout=60)
    assert not out.exists()
    assert _leftovers(tmp_path, source, out) == []


def test_exception_mid_run_leaves_no_partial_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import softgso.job

    source = _write_pcap(tmp_path / "in.pcap", 6)
    out = tmp_path / "out.pcap"
    real = softgso.job.process_frame
    calls = []

    def failing(frame: bytes, options: object) -> object:
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("simulated crash in the middle of the run")
        return real(frame, options)  # type: ignore[arg-type]

    monkeypatch.setattr(softgso.job, "process_frame", failing)
    result = _run("segment", source, out, "-q", "--engine", "scalar")
    assert isinstance(result.exception, RuntimeError)
    assert len(calls) == 4
    assert not out.exists()
    assert _leftovers(tmp_path, source) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_truncated_input_is_an_io_error_that_keeps_every_whole_record(tmp_path: Path, engine: str) -> None:
    source = _write_pcap(tmp_path / "in.pcap", 5)
    data = source.read_bytes()
    source.write_bytes(data[: len(data) - 5000])  # the last record's data cut short
    whole = _write_pcap(tmp_path / "whole.pcap", 4)
    out, expected = tmp_path / "out.pcap", tmp_path / "expected.pcap"
    out.write_bytes(OLD_OUT)
    result = _run("segment", source, out, "-q", "--engine", engine)
    assert result.exit_code == 3, result.output
    assert "frame 5" in result.stderr and "cut short" in result.stderr
    assert _run("segment", whole, expected, "-q", "--engine", engine).exit_code == 0
    assert out.read_bytes() == expected.read_bytes()  # the four readable records, segmented
    assert _leftovers(tmp_path, source, out, whole, expected) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_disk_full_from_writev_is_an_io_error_with_no_partial_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    source = _write_pcap(tmp_path / "in.pcap", 40)
    out = tmp_path / "out.pcap"
    attempts = []

    def full(fd: int, buffers: object) -> int:
        attempts.append(fd)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "writev", full)
    result = _run("segment", source, out, "-q", "--engine", engine)
    assert result.exit_code == 3, result.output
    assert "No space left on device" in result.stderr
    assert attempts, "the writer writes with os.writev"
    assert not out.exists()
    assert _leftovers(tmp_path, source) == []


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Path:
    """A 256 KiB tmpfs (needs root and mount(2)); skipped where that is not possible."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


@pytest.mark.parametrize("engine", ENGINES)
def test_real_disk_full_is_an_io_error_and_frees_the_space(tmp_path: Path, tiny_filesystem: Path, engine: str) -> None:
    source = _write_pcap(tmp_path / "in.pcap", 40)  # ~800 KB of output: more than the 256 KiB filesystem
    out = tiny_filesystem / "out.pcap"
    result = _run("segment", source, out, "-q", "--engine", engine)
    assert result.exit_code == 3, result.output
    assert "No space left on device" in result.stderr
    assert list(tiny_filesystem.iterdir()) == [], "neither OUT nor the temporary file may remain"
    # the space is free again: a small run now fits
    small = _write_pcap(tmp_path / "small.pcap", 1, payload=1000)
    assert _run("segment", small, out, "-q", "--engine", engine).exit_code == 0


def test_a_full_file_system_after_the_head_start_frees_the_space(tmp_path: Path, tiny_filesystem: Path) -> None:
    """The command as a user runs it (softgso.cli.entry: OUT's file made and space reserved first)."""
    source = _write_pcap(tmp_path / "in.pcap", 40)
    out = tiny_filesystem / "out.pcap"
    code = "import sys; from softgso.cli.entry import main; sys.argv[0] = 'softgso'; main()"
    done = subprocess.run([sys.executable, "-c", code, "segment", str(source), str(out), "-q"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and "No space left on device" in done.stderr, done.stderr
    assert list(tiny_filesystem.iterdir()) == [], "neither OUT nor the temporary file may remain"
    small = _write_pcap(tmp_path / "small.pcap", 1, payload=1000)
    done = subprocess.run([sys.executable, "-c", code, "segment", str(small), str(out), "-q"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_blocks * 512 < 16 << 10  # nothing reserved stays with it


def test_unreadable_and_unwritable_paths_are_io_errors(tmp_path: Path) -> None:
    source = _write_pcap(tmp_path / "in.pcap", 1)
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    # IN below a plain file (ENOTDIR): unreadable whatever our privileges
    result = _run("segment", blocker / "in.pcap", tmp_path / "out.pcap", "-q")
    assert result.exit_code == 3 and "in.pcap" in result.stderr
    # OUT in a folder that does not exist, or below a plain file
    for out in (tmp_path / "missing" / "out.pcap", blocker / "out.pcap"):
        result = _run("segment", source, out, "-q")
        assert result.exit_code == 3, result.output
        assert "error" in result.stderr
    assert _leftovers(tmp_path, source, blocker) == []


def test_input_without_read_permission_is_an_io_error(tmp_path: Path) -> None:
    source = _write_pcap(tmp_path / "in.pcap", 1)
    source.chmod(0)
    if os.geteuid() != 0:
        result = _run("segment", source, tmp_path / "out.pcap", "-q")
        assert result.exit_code == 3 and "Permission denied" in result.stderr
        return
    # root reads files whatever their mode: run the command as root without the two capabilities that allow it
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root reads files whatever their mode, and setpriv (util-linux) is not here to drop that")
    done = subprocess.run([setpriv, "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-m", "softgso",
                           "segment", str(source), str(tmp_path / "out.pcap"), "-q"], capture_output=True, timeout=120)
    assert done.returncode == 3 and b"Permission denied" in done.stderr, done.stderr


def test_usage_errors_exit_2_and_write_nothing(tmp_path: Path) -> None:
    source = _write_pcap(tmp_path / "in.pcap", 1)
    out = tmp_path / "out.pcap"
    bad_profile = tmp_path / "profile.json"
    bad_profile.write_text("[1, 2, 3]")
    for args in (["--action", "push-mpls:3"], ["--device", "no-such-profile"], ["--device", str(bad_profile)],
                 ["--vnet-hdr", "zz"], ["--mtu", "10"]):
        result = _run("segment", source, out, "-q", *args)
        assert result.exit_code == 2, (args, result.output)
        # a value out of a range the option declares (--mtu 68..65535) is click's to refuse, in its words
        assert "softgso: error:" in result.stderr or "Error: Invalid value for" in result.stderr
    assert not out.exists()
