"""``softgso diff`` read by the bulk reader (softgso.bulk.frames, the default) against the per-frame
reference (``--engine scalar``, proven by the other diff tests): the same report, JSON, map and exit
status on every real capture, every kernel vector, generated super-packet captures in every
container, and segment outputs damaged in every way the fast run must refuse to take."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_captures import CAPTURES, payload, real_captures, write_pcap, write_pcapng
from conftest import run_cli

import softgso.bulk.frames as bulk_frames
from softgso.bulk.native import load_extension
from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.io import open_capture

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "kernel" / "cases"
COMPILED = load_extension("_segment") is not None and load_extension("_records") is not None
needs_compiled = pytest.mark.skipif(not COMPILED, reason="softgso.bulk._segment/_records not built (or SOFTGSO_NO_C)")


def _diff(a: Path, b: Path, engine: str, *args: str, map_path: Path | None = None) -> tuple[int, str, str, bytes]:
    """(exit status, stdout with the map's name made neutral, stderr, the map's bytes)."""
    extra = ["--map", str(map_path)] if map_path is not None else []
    result = run_cli("diff", a, b, "--engine", engine, *args, *extra)
    mapped = map_path.read_bytes() if map_path is not None and map_path.exists() else b""
    if map_path is not None:
        map_path.unlink(missing_ok=True)
    stdout = result.stdout.replace(str(map_path), "MAP") if map_path is not None else result.stdout
    return result.exit_code, stdout, result.stderr, mapped


def assert_same_diff(a: Path, b: Path, tmp_path: Path, *args: str) -> None:
    """Every form of the report the same with the bulk reader as with the per-frame reference."""
    for form in ([], ["--json"], ["--pair-by", "flow", "--json"], ["--max", "2"]):
        scalar = _diff(a, b, "scalar", *args, *form, map_path=tmp_path / "scalar-map.json")
        bulk = _diff(a, b, "auto", *args, *form, map_path=tmp_path / "auto-map.json")
        assert bulk == scalar, (a.name, b.name, form)


def _segmented(source: Path, tmp_path: Path, *args: str) -> Path | None:
    out = tmp_path / ("out" + source.suffix if source.suffix in (".pcap", ".pcapng") else "out.pcap")
    result = run_cli("segment", source, out, "-q", "--engine", "scalar", *args)
    return out if result.exit_code == 0 and out.exists() else None



@needs_compiled
@pytest.mark.skipif(not real_captures(), reason="../shared/captures is not beside the clone")
@pytest.mark.parametrize("capture", real_captures(), ids=lambda p: str(p.relative_to(CAPTURES)))
def test_real_capture_same_report(capture: Path, tmp_path: Path) -> None:
    out = _segmented(capture, tmp_path)
    assert_same_diff(capture, capture, tmp_path)
    if out is not None:
        assert_same_diff(capture, out, tmp_path)
        assert_same_diff(out, capture, tmp_path)


@needs_compiled
@pytest.mark.parametrize("case", sorted(p.name for p in VECTORS.iterdir() if (p / "input.pcap").exists()))
def test_kernel_vector_same_report(case: str, tmp_path: Path) -> None:
    folder = VECTORS / case
    assert_same_diff(folder / "input.pcap", folder / "kernel_out.pcap", tmp_path)
    out = _segmented(folder / "input.pcap", tmp_path)
    if out is not None:
        assert_same_diff(folder / "input.pcap", out, tmp_path)


# --- generated super-packets --------------------------------------------------------------------


def _supers(count: int = 12, size: int = 30000) -> list[bytes]:
    """Super-packets of three flows (IPv4 complete, IPv4 seed, IPv6), flags that segmentation moves."""
    frames = []
    seqs = [1_000_000, 2_000_000, 0xFFFFF000]  # the last one wraps
    for index in range(count):
        flow = index % 3
        flags = (0x18, 0x19 | 0x80, 0x10 | 0x80)[index % 3] if index % 4 else 0x18
        spec = SuperPacketSpec(ipv6=flow == 2, payload=payload(size - 1000 * flow, seed=index), seq=seqs[flow],
                               sport=40000 + flow, partial_checksum=flow == 1, tcp_flags=flags,
                               tcp_options=bytes.fromhex("0101080a000003e8000007d0"))
        seqs[flow] = (seqs[flow] + len(spec.payload)) & 0xFFFFFFFF
        frames.append(build_frame(spec))
    return frames


def _frames_of(path: Path) -> list[bytes]:
    with open_capture(path) as reader:
        return [bytes(record.data) for record in reader]


def _pcapng_with_other_blocks(path: Path, frames: list[bytes]) -> Path:
    """A pcapng whose EPBs have custom and statistics blocks between them, and one SPB."""
    write_pcapng(path, [(1, "eth0")], [(0, frame, None) for frame in frames])
    raw = path.read_bytes()

    def block(block_type: int, body: bytes) -> bytes:
        return struct.pack("<II", block_type, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

    custom = block(0x00000BAD, struct.pack("<I", 32473) + b"softgso!")
    stats = block(5, struct.pack("<III", 0, 0, 0))
    # after every 3rd block from the first EPB on: walk the blocks
    out, at, seen = bytearray(), 0, 0
    while at < len(raw):
        length = struct.unpack_from("<I", raw, at + 4)[0]
        kind = struct.unpack_from("<I", raw, at)[0]
        out += raw[at : at + length]
        if kind == 6:
            seen += 1
            if seen % 3 == 0:
                out += custom if seen % 2 else stats
        at += length
    spb_frame = frames[0]
    out += block(3, struct.pack("<I", len(spb_frame)) + spb_frame + bytes(-len(spb_frame) % 4))
    path.write_bytes(bytes(out))
    return path


CONTAINERS: dict[str, Callable[[Path, list[bytes]], Path]] = {
    "pcap-le-usec": lambda p, f: write_pcap(p.with_suffix(".pcap"), f),
    "pcap-be-nsec": lambda p, f: write_pcap(p.with_suffix(".pcap"), f, big_endian=True, nano=True),
    "pcapng": lambda p, f: write_pcapng(p.with_suffix(".pcapng"), [(1, "eth0")], [(0, x, None) for x in f]),
    "pcapng-blocks": lambda p, f: _pcapng_with_other_blocks(p.with_suffix(".pcapng"), f),
}


def _flip(frames: list[bytes], index: int, at: int) -> list[bytes]:
    changed = bytearray(frames[index])
    changed[at % len(changed)] ^= 0x40
    return [*frames[:index], bytes(changed), *frames[index + 1 :]]


# each damage of segment's output (past its first frames: before it, the fast run has runs to take):
# the frames of B as they come out of it -> what B holds
DAMAGES: dict[str, Callable[[list[bytes]], list[bytes]]] = {
    "none": lambda f: f,
    "payload-byte": lambda f: _flip(f, 130, -5),
    "ipv4-ttl": lambda f: _flip(f, 105, 22),
    "mac": lambda f: _flip(f, 107, 3),
    "tcp-flags": lambda f: _flip(f, 108, 14 + 20 + 13),
    "tcp-checksum": lambda f: _flip(f, 109, 14 + 20 + 16),
    "ipv6-flow-label": lambda f: _flip(f, len(f) - 3, 16),
    "dropped": lambda f: f[:111] + f[112:],
    "swapped": lambda f: f[:120] + [f[121], f[120]] + f[122:],
    "duplicated": lambda f: f[:115] + [f[115]] + f[115:],
    "reversed-tail": lambda f: f[: len(f) // 2] + f[len(f) // 2 :][::-1],
    "foreign-frame": lambda f: f[:103] + [f[40][:60]] + f[103:],
    "truncated-frame": lambda f: f[:125] + [f[125][:-10]] + f[126:],
}


@needs_compiled
@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("container", sorted(CONTAINERS))
def test_segment_output_same_report(container: str, damage: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_frames, "CHUNK_SIZE", 1 << 16)  # runs of segments across chunk ends
    source = CONTAINERS[container](tmp_path / "in", _supers())
    out = _segmented(source, tmp_path)
    assert out is not None
    damaged = CONTAINERS[container](tmp_path / "damaged", DAMAGES[damage](_frames_of(out)))
    taken: list[int] = []
    original = bulk_frames.BulkFrames.tcp_segments

    def counting(self: bulk_frames.BulkFrames, a: object) -> list[int] | None:
        found = original(self, a)  # type: ignore[arg-type]
        taken.append(len(found or ()))
        return found

    monkeypatch.setattr(bulk_frames.BulkFrames, "tcp_segments", counting)
    assert_same_diff(source, damaged, tmp_path)
    # the fast run took the undamaged frames' segments (the test compares it, not the reference twice)
    assert sum(taken) > 0


@needs_compiled
@pytest.mark.parametrize("container", sorted(CONTAINERS))
def test_truncated_b_same_error(container: str, tmp_path: Path) -> None:
    source = CONTAINERS[container](tmp_path / "in", _supers(6))
    out = _segmented(source, tmp_path)
    assert out is not None
    for cut in (len(out.read_bytes()) - 7, len(out.read_bytes()) // 2 + 3):
        cut_out = tmp_path / ("cut" + out.suffix)
        cut_out.write_bytes(out.read_bytes()[:cut])
        scalar = _diff(source, cut_out, "scalar", "--json")
        bulk = _diff(source, cut_out, "auto", "--json")
        assert bulk == scalar and scalar[0] != 0


@needs_compiled
def test_b_in_another_link_type_or_through_a_fifo_same_report(tmp_path: Path) -> None:
    source = write_pcap(tmp_path / "in.pcap", _supers(4))
    out = _segmented(source, tmp_path, "-F", "pcapng")
    assert out is not None
    assert_same_diff(source, out, tmp_path)
    fifo = tmp_path / "b.fifo"
    os.mkfifo(fifo)
    pid = os.fork()
    if pid == 0:  # the FIFO's writer
        try:
            with open(fifo, "wb") as handle:
                handle.write(out.read_bytes())
        finally:
            os._exit(0)
    try:
        result = run_cli("diff", source, fifo, "--json")
    finally:
        os.waitpid(pid, 0)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["accounted"] is True
