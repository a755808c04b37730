"""Hostile record lengths through the CLI: a record header or pcapng block claiming up to 4 GB, or a frame
longer than the kernel ever builds (GSO_MAX_SIZE, 524280 bytes, plus 256 of link-layer framing).

Rule: handled as a truncated file is: the command names the frame (numbered from 1, as tshark does) and the reason, keeps
and writes every record before it, exits with status 3, and neither allocates nor hangs in
proportion to the claimed length (peak memory is measured in a child process).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cli_captures import SNAPLEN, mixed_capture, write_pcap
from conftest import run_cli

MIB = 1 << 20
LIMIT = 524280 + 256


def _engines() -> list[str]:
    """Every ``segment --engine`` choice: the bulk engines hand a long record to the general reader."""
    from softgso.cli.commands import segment

    return list(next(p.type.choices for p in segment.params if p.name == "engine"))  # type: ignore[attr-defined]


ENGINES = _engines()


def segment_or_skip(*args: str | Path) -> None:
    """Segment a good capture (the expected output); skip for an engine whose extension is not built here."""
    result = run_cli("segment", *args)
    if result.exit_code == 2 and "not built" in result.stderr:
        pytest.skip(result.stderr.strip())
    assert result.exit_code == 0, result.stderr
FRAMES = mixed_capture()[:4]  # an ARP request, a TCP super-packet, an ACK, another super-packet
TIMEOUT = 120


def pcapng_bytes(order: str, frames: list[bytes]) -> bytes:
    def block(block_type: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        return struct.pack(order + "II", block_type, 12 + len(body)) + body + struct.pack(order + "I", 12 + len(body))

    out = block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack(order + "HHI", 1, 0, SNAPLEN))
    for index, frame in enumerate(frames):
        out += block(6, struct.pack(order + "IIIII", 0, 0, index, len(frame), len(frame)) + frame)
    return out


def hostile(tmp_path: Path, kind: str, claim: int, present: int = 64) -> tuple[Path, Path]:
    """(a capture whose record 3 claims ``claim`` bytes, the same capture holding only records 0-2)."""
    order = "<" if kind.endswith("le") else ">"
    if kind.startswith("pcapng"):
        good = pcapng_bytes(order, FRAMES[:3])
        bad = struct.pack(order + "II", 6, claim)
        suffix = ".pcapng"
    else:
        good = write_pcap(tmp_path / "good.pcap", FRAMES[:3], big_endian=order == ">", snaplen=0xFFFFFFFF).read_bytes()
        bad = struct.pack(order + "IIII", 1_700_000_003, 0, claim, claim)
        suffix = ".pcap"
    first_three = tmp_path / f"first_three{suffix}"
    first_three.write_bytes(good)
    path = tmp_path / f"hostile{suffix}"
    with open(path, "wb") as handle:
        handle.write(good + bad)
        handle.truncate(len(good) + len(bad) + present)  # sparse past the header: no disk space taken
    return path, first_three


KINDS = ["pcap-le", "pcap-be", "pcapng-le", "pcapng-be"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("claim", [0xFFFFFFFC, 0x80000000, 200 * MIB])
@pytest.mark.parametrize("engine", ENGINES)
def test_segment_names_the_record_keeps_what_came_before_and_exits_3(tmp_path: Path, kind: str, claim: int,
                                                                     engine: str) -> None:
    path, first_three = hostile(tmp_path, kind, claim)
    out, expected = tmp_path / "out", tmp_path / "expected"
    segment_or_skip(first_three, expected, "-q", "--engine", engine)
    result = run_cli("segment", path, out, "-q", "--engine", engine)
    assert result.exit_code == 3
    assert "frame 4" in result.stderr
    reason = "longer than any such block can be" if kind.startswith("pcapng") else (
        f"captured length {claim} is longer than any frame the kernel builds")
    assert reason in result.stderr
    assert out.read_bytes() == expected.read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("kind", KINDS)
def test_action_commands_and_inspect_stop_at_the_same_record(tmp_path: Path, kind: str) -> None:
    path, first_three = hostile(tmp_path, kind, 0xFFFFFFFC)
    out, expected = tmp_path / "out", tmp_path / "expected"
    assert run_cli("push-mpls", first_three, expected, "--label", "16", "-q").exit_code == 0
    result = run_cli("push-mpls", path, out, "--label", "16", "-q")
    assert result.exit_code == 3 and "frame 4" in result.stderr
    assert out.read_bytes() == expected.read_bytes()
    result = run_cli("inspect", path, "--json")
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    assert report["records"] == 3 and "frame 4" in report["read_error"]


@pytest.mark.parametrize("kind", ["pcap-le", "pcapng-be"])
def test_a_hostile_length_on_stdin_ends_the_stream_the_same_way(tmp_path: Path, kind: str) -> None:
    path, first_three = hostile(tmp_path, kind, 0xFFFFFFFC)
    expected = tmp_path / "expected"
    assert run_cli("segment", first_three, expected, "-q").exit_code == 0
    done = subprocess.run([sys.executable, "-m", "softgso", "segment", "-", "-", "-q"], input=path.read_bytes(),
                          capture_output=True, timeout=TIMEOUT)
    assert done.returncode == 3 and b"<stdin>: frame 4" in done.stderr
    assert done.stdout == expected.read_bytes()


# --- peak memory: VmHWM of the child (getrusage's ru_maxrss would carry the parent's over exec) --------

CHILD = """
import json, sys
from softgso.cli.commands import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    status = done.code
with open("/proc/self/status") as lines:
    peak = next(int(line.split()[1]) for line in lines if line.startswith("VmHWM:"))
print(json.dumps({"status": status, "max_rss_kib": peak}), file=sys.stderr)
"""
# The CLI: 20-30 MiB (the bulk engine's buffers included). One that believed the claim: over 400 MiB.
RSS_LIMIT_KIB = 128 * 1024


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("engine", ENGINES)
def test_a_present_200_mib_record_costs_no_memory(tmp_path: Path, kind: str, engine: str) -> None:
    path, _ = hostile(tmp_path, kind, 200 * MIB, present=200 * MIB)
    done = subprocess.run([sys.executable, "-c", CHILD, "segment", str(path), str(tmp_path / "out"), "-q",
                           "--engine", engine], capture_output=True, text=True, timeout=TIMEOUT)
    measured = json.loads(done.stderr.splitlines()[-1])
    if measured["status"] == 2 and "not built" in done.stderr:
        pytest.skip("engine not built here")
    assert measured["status"] == 3 and "frame 4" in done.stderr
    assert measured["max_rss_kib"] < RSS_LIMIT_KIB, measured


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("engine", ENGINES)
def test_a_frame_longer_than_the_kernel_builds_is_refused_like_a_broken_record(tmp_path: Path, kind: str,
                                                                                engine: str) -> None:
    order = "<" if kind.endswith("le") else ">"
    frames = [*FRAMES[:3], bytes(LIMIT + 4), FRAMES[3]]  # the long one really there, a good one after it
    if kind.startswith("pcapng"):
        path = tmp_path / "long.pcapng"
        path.write_bytes(pcapng_bytes(order, frames))
        first_three = tmp_path / "first_three.pcapng"
        first_three.write_bytes(pcapng_bytes(order, frames[:3]))
    else:
        path = write_pcap(tmp_path / "long.pcap", frames, big_endian=order == ">", snaplen=0xFFFFFFFF)
        first_three = write_pcap(tmp_path / "first_three.pcap", frames[:3], big_endian=order == ">",
                                 snaplen=0xFFFFFFFF)
    out, expected = tmp_path / "out", tmp_path / "expected"
    segment_or_skip(first_three, expected, "-q", "--engine", engine)
    result = run_cli("segment", path, out, "-q", "--engine", engine)
    assert result.exit_code == 3
    assert f"frame 4 (at byte offset {len(first_three.read_bytes())}" in result.stderr
    assert f"captured length {LIMIT + 4} is longer than any frame the kernel builds" in result.stderr
    assert out.read_bytes() == expected.read_bytes()
