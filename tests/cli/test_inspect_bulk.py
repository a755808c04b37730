"""``softgso inspect`` with segment's bulk plans and coalesce's preview counted by the compiled GRO
without building packets (the default) against the per-frame reference (``--engine scalar``,
process_frame on every frame, every preview packet built: proven by the other inspect tests and
the GRO vectors): the same report, text and JSON, and the same exit status on every real capture,
every kernel vector and generated super-packet captures, under the options that change what
segment writes."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def write_capture(folder: Path, container: str, frames: list[bytes]) -> Path:
    """``frames`` as in.pcap or in.pcapng (one Ethernet interface) in ``folder``."""
    if container == "pcap":
        return write_pcap(folder / "in.pcap", frames)
    return write_pcapng(folder / "in.pcapng", [(1, "eth0")], [(0, frame, None) for frame in frames])


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
    capture = write_capture(tmp_path, container, frames)
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


def test_pcapng_broken_before_its_first_packet_same_report_and_error(tmp_path: Path) -> None:
    """A block before the first packet whose trailing length is not its length: reported before any
    row by both (the bulk walk, starting after such a block, used to count every record)."""
    capture = write_pcapng(tmp_path / "in.pcapng", [(1, "eth0")], [(0, frame, None) for frame in _supers()])
    raw = bytearray(capture.read_bytes())
    order = "<" if raw[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    shb_len = struct.unpack_from(order + "I", raw, 4)[0]
    idb_end = shb_len + struct.unpack_from(order + "I", raw, shb_len + 4)[0]
    # interface statistics between the IDB and the first packet, its trailing length not its length
    statistics = struct.pack(order + "IIIII", 5, 24, 0, 0, 0) + struct.pack(order + "I", 28)
    raw[idb_end:idb_end] = statistics
    broken = tmp_path / "broken.pcapng"
    broken.write_bytes(bytes(raw))
    auto, scalar = _inspect(broken, "auto", "--json"), _inspect(broken, "scalar", "--json")
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


def _same_shapes() -> list[bytes]:
    """Super-packets that share their shapes (length, addresses, ports, header lengths) but not their
    per-packet fields: IP IDs, sequence and ACK numbers, flags (PSH, FIN, CWR, URG), windows, urgent
    pointers, TCP options of the same length; complete, seed and invalid TCP checksums, an IPv4 header
    checksum broken; over IPv4 and IPv6, with and without a VLAN tag, among small frames."""
    frames: list[bytes] = []
    for index in range(60):
        kind = index % 5
        spec = SuperPacketSpec(
            ipv6=index % 2 == 1, payload=payload(12000, index), seq=1000 + 12000 * index, ack=7 + index,
            ip_id=index * 3, tcp_flags=(0x10, 0x18, 0x19, 0x98, 0x30)[index % 5], window=1000 + index,
            urg_ptr=index % 3, tcp_options=bytes.fromhex("0101080a") + index.to_bytes(4, "big") + bytes(4),
            partial_checksum=kind == 1, vlan_tags=((0x8100, 7),) if index % 4 == 0 else ())
        frame = bytearray(build_frame(spec))
        if kind == 2:
            frame[-1] ^= 0x5A  # the TCP checksum no longer verifies
        elif kind == 3 and not spec.ipv6:
            at = 14 + 4 * len(spec.vlan_tags) + 10
            frame[at] ^= 0x11  # nor the IPv4 header's
        frames.append(bytes(frame))
        if index % 7 == 0:
            frames.extend(mixed_capture()[:3])
    return frames


@needs_compiled
@pytest.mark.parametrize("container", ["pcap", "pcapng"])
def test_shapes_seen_before_same_report(container: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames of a plain TCP shape seen before are counted from what its first frame counted (their own
    checksum states): the report is the reference's, and most frames were counted that way."""
    frames = _same_shapes()
    capture = write_capture(tmp_path, container, frames)
    shaped: list[int] = []
    original = inspect_module.CaptureInspector._add_shaped

    def counting(self: inspect_module.CaptureInspector, *args: object) -> None:
        shaped.append(1)
        original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(inspect_module.CaptureInspector, "_add_shaped", counting)
    assert_same_inspect(capture, (*OPTION_SETS, ["--tcp-ecn"], ["--kernel", "6.12"]))
    runs = 2 * (len(OPTION_SETS) + 2)
    assert len(shaped) > runs * 40, len(shaped) / runs  # of 60 super-packets a run


@pytest.mark.parametrize("container", ["pcap", "pcapng"])
def test_a_signed_super_packet_of_a_shape_seen_before_is_reported_as_segment_reports_it(container: str,
                                                                                      tmp_path: Path) -> None:
    """A shape leaves the TCP options out: a super-packet of a flow seen before whose options carry an MD5
    signature (or TCP-AO) in the place of its timestamps is one segment passes through and reports, not
    one counted from the shape (of any length)."""
    md5 = bytes([19, 18]) + bytes(16) + b"\x01\x01"
    ao = bytes([29, 16]) + bytes(14) + b"\x01\x01\x01\x01"
    stamps = b"\x01\x01\x08\x0a" + bytes(8) + b"\x01" * 8
    frames = [build_frame(SuperPacketSpec(payload=payload(5000 + 700 * (index % 3)), seq=1000 + 6000 * index,
                                          tcp_options=(stamps, md5, stamps, ao)[index % 4])) for index in range(12)]
    capture = write_capture(tmp_path, container, frames)
    assert_same_inspect(capture, ([], ["--device", "tso"]))
    report = json.loads(run_cli("inspect", capture, "--json").stdout)
    assert report["segment"]["outcomes"]["not_segmented"] == 6, report["segment"]["outcomes"]


def test_tcp_shape_leaves_out_only_per_packet_fields() -> None:
    """Two frames share a shape exactly when they differ in nothing but the IPv4 ID and header checksum,
    the TCP sequence/ACK numbers, flags, window, checksum, urgent pointer and options, and their length
    (the IP length field saying it: a frame with bytes behind its IP packet has no shape)."""
    base = SuperPacketSpec(payload=payload(3000), tcp_options=bytes(12), vlan_tags=((0x8100, 5),))
    shape = inspect_module.tcp_shape(build_frame(base))
    assert shape is not None
    for same in (dict(ip_id=9), dict(seq=5), dict(ack=5), dict(tcp_flags=0x11), dict(window=3),
                 dict(urg_ptr=1), dict(tcp_options=bytes(11) + b"\x01"), dict(partial_checksum=False),
                 dict(payload=payload(3001)), dict(payload=payload(40))):
        assert inspect_module.tcp_shape(build_frame(replace(base, **same))) == shape, same
    for other in (dict(ttl=3), dict(tos=4), dict(df=False), dict(sport=1), dict(dport=1), dict(tcp_options=bytes(8)),
                  dict(vlan_tags=((0x8100, 6),)), dict(vlan_tags=()),
                  dict(ip_options=bytes(4))):
        assert inspect_module.tcp_shape(build_frame(replace(base, **other))) != shape, other
    assert inspect_module.tcp_shape(build_frame(replace(base, udp=True))) is None
    assert inspect_module.tcp_shape(build_frame(base) + bytes(4)) is None  # a trailer
    assert inspect_module.tcp_shape(build_frame(replace(base, ipv6=True)) + bytes(4)) is None
    assert inspect_module.tcp_shape(build_frame(replace(base, ipv6=True, payload=payload(99)))) == \
        inspect_module.tcp_shape(build_frame(replace(base, ipv6=True)))


@st.composite
def shaped_captures(draw: st.DrawFn) -> list[bytes]:
    """Super-packets of a few shapes, each frame with its own per-packet fields, some bytes anywhere in
    its headers (or its last byte) changed, or cut short: what a shape seen before counts must be what
    the per-frame reference counts, whatever the bytes."""
    shapes = [SuperPacketSpec(ipv6=draw(st.booleans()), payload=payload(draw(st.sampled_from((3000, 9000))), k),
                              tcp_options=draw(st.sampled_from((b"", bytes.fromhex("0101080a") + bytes(8)))),
                              vlan_tags=draw(st.sampled_from(((), ((0x8100, 7),), ((0x88A8, 3), (0x8100, 7))))),
                              partial_checksum=draw(st.booleans()))
              for k in range(draw(st.integers(1, 3)))]
    frames = []
    for index in range(draw(st.integers(2, 40))):
        spec = replace(draw(st.sampled_from(shapes)), seq=draw(st.integers(0, 2**32 - 1)), ip_id=index,
                       tcp_flags=draw(st.sampled_from((0x10, 0x18, 0x19, 0x98, 0x30, 0x12))),
                       window=draw(st.integers(0, 65535)))
        frame = bytearray(build_frame(spec))
        for _ in range(draw(st.sampled_from((0, 0, 0, 1, 2)))):
            at = draw(st.one_of(st.integers(0, 80), st.just(len(frame) - 1)))
            frame[at] ^= draw(st.integers(1, 255))
        if draw(st.integers(0, 15)) == 0:
            frame = frame[: draw(st.integers(0, len(frame)))]
        frames.append(bytes(frame))
    return frames


@needs_compiled
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shaped_captures())
def test_shapes_with_any_bytes_same_report(tmp_path: Path, frames: list[bytes]) -> None:
    capture = write_capture(tmp_path, "pcapng", frames)
    assert _inspect(capture, "auto", "--json") == _inspect(capture, "scalar", "--json")
