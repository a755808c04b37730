"""``softgso inspect`` with segment's bulk plans and coalesce's preview counted by the compiled GRO
without building packets (the default) against the per-frame reference (``--engine scalar``,
process_frame on every frame, every preview packet built: proven by the other inspect tests and
the GRO vectors): the same report, text and JSON, and the same exit status on every real capture,
every kernel vector and generated super-packet captures, under the options that change what
segment writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_captures import (
    CAPTURES,
    ack4,
    arp,
    mixed_capture,
    payload,
    real_captures,
    tcp4_super,
    tcp6_jumbogram,
    write_pcap,
    write_pcapng,
)
from conftest import run_cli

import softgso.cli.inspect as inspect_module
from softgso.bulk import compiled_primitive
from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.gro.coalesce import compiled_gro

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "kernel" / "cases"
needs_compiled = pytest.mark.skipif(not compiled_primitive.available(),
                                    reason="softgso.bulk._segment not built (or SOFTGSO_NO_C)")
OPTION_SETS = ([], ["--device", "tso"], ["--mtu", "1400", "--ip-id", "fixed"], ["--gso-size", "1000"],
               ["--input-csum", "partial"], ["--action", "push-mpls:100:0:64:uc"], ["--output-csum", "partial"])


def _inspect(capture: Path, engine: str, *args: str) -> tuple[int, str, str]:
    result = run_cli("inspect", capture, "--engine", engine, *args)
    return result.exit_code, result.stdout, result.stderr


def spy_on_counting(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each poll inspect's preview offers the compiled GRO's counting (True: taken)."""
    taken: list[bool] = []
    original = compiled_gro.count_frames

    def count_frames(*args: object) -> bool:
        found = bool(original(*args))
        taken.append(found)
        return found

    monkeypatch.setattr(compiled_gro, "count_frames", count_frames)
    return taken


def assert_same_inspect(capture: Path, option_sets: tuple[list[str], ...] = OPTION_SETS) -> None:
    for options in option_sets:
        for form in (["--json"], []):
            assert _inspect(capture, "auto", *options, *form) == _inspect(capture, "scalar", *options, *form), \
                (capture.name, options, form)



@needs_compiled
@pytest.mark.skipif(not real_captures(), reason="../shared/captures is not beside the clone")
@pytest.mark.parametrize("capture", real_captures(), ids=lambda p: str(p.relative_to(CAPTURES)))
def test_real_capture_same_report(capture: Path) -> None:
    assert_same_inspect(capture, (OPTION_SETS[0], OPTION_SETS[1]))


@needs_compiled
@pytest.mark.skipif(not real_captures(), reason="../shared/captures is not beside the clone")
def test_real_captures_counted_by_the_compiled_gro(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: the comparisons above hold the compiled GRO's counting to the built preview on many
    of the real captures' polls."""
    taken = spy_on_counting(monkeypatch)
    counted = 0
    for capture in real_captures():
        before = sum(taken)
        run_cli("inspect", capture, "--json")
        counted += sum(taken) > before
    assert counted >= 10 and sum(taken) >= 20, (counted, sum(taken), len(taken))


@needs_compiled
@pytest.mark.parametrize("case", sorted(p.name for p in VECTORS.iterdir() if (p / "input.pcap").exists()))
def test_kernel_vector_same_report(case: str) -> None:
    assert_same_inspect(VECTORS / case / "input.pcap", (OPTION_SETS[0], OPTION_SETS[4]))


def _supers() -> list[bytes]:
    """Super-packets of several shapes, many of each: complete and seed checksums, an invalid one,
    flags that segmentation moves, IPv6, VLAN tags, UDP (USO), a jumbogram, padding, among small
    frames."""
    frames: list[bytes] = []
    for index in range(40):
        shape = index % 8
        if shape == 0:
            frames.append(tcp4_super(20000, partial=False, seq=1000 + 20000 * index))
        elif shape == 1:
            frames.append(tcp4_super(20000, partial=True, seq=1000 + 20000 * index, sport=40001))
        elif shape == 2:
            frame = bytearray(tcp4_super(20000, partial=False, sport=40002))
            frame[-1] ^= 0xFF  # its checksum no longer verifies
            frames.append(bytes(frame))
        elif shape == 3:
            frames.append(build_frame(SuperPacketSpec(ipv6=True, payload=payload(15000, index), tcp_flags=0x99,
                                                      partial_checksum=False)))
        elif shape == 4:
            frames.append(build_frame(SuperPacketSpec(payload=payload(9000, index), tcp_flags=0x98,
                                                      vlan_tags=((0x8100, 7),), partial_checksum=True)))
        elif shape == 5:
            frames.append(build_frame(SuperPacketSpec(udp=True, payload=payload(8000, index), partial_checksum=False)))
        elif shape == 6:
            frames.append(tcp6_jumbogram(70000, hop_by_hop=bool(index % 2)))
        else:
            frames.extend(mixed_capture()[:3])
    return frames


@needs_compiled
@pytest.mark.parametrize("container", ["pcap", "pcapng"])
def test_generated_super_packets_same_report(container: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = _supers()
    if container == "pcap":
        capture = write_pcap(tmp_path / "in.pcap", frames)
    else:
        capture = write_pcapng(tmp_path / "in.pcapng", [(1, "eth0")], [(0, frame, None) for frame in frames])
    planned: list[bool] = []
    original = inspect_module.SegmentPlanner.predict

    def counting(self: inspect_module.SegmentPlanner, inspector: inspect_module.CaptureInspector,
                 frame: bytes) -> bool:
        found = original(self, inspector, frame)
        planned.append(found)
        return found

    monkeypatch.setattr(inspect_module.SegmentPlanner, "predict", counting)
    assert_same_inspect(capture, (*OPTION_SETS, ["--udp-gso", "udp_l4"], ["--tcp-ecn"]))
    # the plans counted most super-packets (the test compares them, not the reference twice)
    assert sum(planned) > len(frames) // 2


@needs_compiled
@pytest.mark.parametrize("container", ["pcap", "pcapng"])
def test_counted_preview_same_report(container: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several polls of super-packets, small frames, a frame too short for Ethernet and a record of
    another link type among them: the compiled GRO counts the polls, the report is the reference's."""
    # (a seed checksum fails GRO's validation: its poll is the scalar engine's)
    frames = [tcp4_super(20000 + 7 * index, partial=index == 100, seq=1000 + 30000 * index, sport=40000 + index % 3)
              for index in range(150)]
    for at in range(5, len(frames), 17):
        frames[at : at] = [arp(), ack4()]
    frames.insert(70, b"\x00" * 10)
    if container == "pcap":
        capture = write_pcap(tmp_path / "in.pcap", frames)
    else:
        records = [(0, frame, None) for frame in frames]
        records.insert(33, (1, b"\x45" + bytes(19), None))  # raw IP behind a second interface
        capture = write_pcapng(tmp_path / "in.pcapng", [(1, "eth0"), (101, "raw")], records)
    polls = spy_on_counting(monkeypatch)
    assert_same_inspect(capture, (OPTION_SETS[0],))
    assert sum(polls) >= 3, polls


@needs_compiled
def test_truncated_capture_same_report_and_error(tmp_path: Path) -> None:
    capture = write_pcap(tmp_path / "in.pcap", _supers())
    raw = capture.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(raw[: len(raw) // 2 + 5])
    auto, scalar = _inspect(cut, "auto", "--json"), _inspect(cut, "scalar", "--json")
    assert auto == scalar and auto[0] == 3


def test_bench_measures_inspect_and_diff_against_segment() -> None:
    import json

    result = run_cli("bench", "--only", "checkers", "--size", "2M", "--repeat", "1", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("inspect_over_segment", "inspect_cpu_over_segment", "diff_over_segment", "diff_cpu_over_segment",
                "inspect_seconds", "diff_cpu_seconds", "checkers_segment_seconds"):
        assert report[key] > 0, key
    for name in ("segment", "inspect", "diff"):
        assert len(report[f"checkers_{name}_runs"]) == 1
