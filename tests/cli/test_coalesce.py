"""``softgso coalesce IN OUT``: records out, timestamps, pcapng comments, the summary, reports, --strict."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.cli.commands import main
from softgso.cli.runner import _device
from softgso.gro.coalesce import compiled_gro
from softgso.io import open_capture
from softgso.job import SegmentOptions, process_frame
from strategies import tcp_frame


def stream(count: int = 4, mss: int = 1000) -> list[bytes]:
    frame = build_frame(SuperPacketSpec(payload=bytes(count * mss), tcp_flags=0x10))
    return process_frame(frame, SegmentOptions(device=_device("no-offload", 9000, None), gso_size=mss)).frames


def write_pcap(path: Path, frames: list[bytes]) -> None:
    with path.open("wb") as handle:
        handle.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for number, frame in enumerate(frames):
            handle.write(struct.pack("<IIII", 1000 + number, 0, len(frame), len(frame)) + frame)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["coalesce", *args])
    return result.exit_code, result.stdout, result.stderr


def test_pcapng_comment_and_first_timestamp(tmp_path: Path) -> None:
    x = stream(4)
    ack = build_frame(SuperPacketSpec(tcp_flags=0x10, partial_checksum=False, seq=5))
    write_pcap(tmp_path / "in.pcap", [ack, *x])
    code, _, _ = invoke(str(tmp_path / "in.pcap"), str(tmp_path / "out.pcapng"), "-F", "pcapng", "-q")
    assert code == 0
    with open_capture(tmp_path / "out.pcapng") as reader:
        records = list(reader)
    assert [r.comment for r in records] == [None, "gso_size=1000 gso_type=tcpv4 segs=4"]
    assert [r.timestamp_ns // 10**9 for r in records] == [1000, 1001]  # the first segment's timestamp
    assert bytes(records[1].data)[54:] == b"".join(f[54:] for f in x)


def test_classic_pcap_out_carries_no_comment(tmp_path: Path) -> None:
    write_pcap(tmp_path / "in.pcap", stream(3))
    code, out, _ = invoke(str(tmp_path / "in.pcap"), str(tmp_path / "out.pcap"), "--json")
    summary = json.loads(out)
    assert code == 0 and summary["frames_in"] == 3 and summary["packets_out"] == 1
    assert summary["coalesced"] == 1 and summary["flushes"] == {"poll end": 1}
    with open_capture(tmp_path / "out.pcap") as reader:
        assert reader.format == "pcap" and len(list(reader)) == 1


def test_reports_number_frames_from_1_and_strict(tmp_path: Path) -> None:
    x = [bytearray(f) for f in stream(3)]
    x[2][60] ^= 1  # a bad TCP checksum on the 3rd frame
    write_pcap(tmp_path / "in.pcap", [bytes(f) for f in x])
    code, _, err = invoke(str(tmp_path / "in.pcap"), str(tmp_path / "out.pcap"), "-q")
    assert code == 0 and "bad TCP checksum: 1 frame passed up unchanged (first: frame 3)" in err
    code, _, _ = invoke(str(tmp_path / "in.pcap"), str(tmp_path / "out.pcap"), "-q", "--strict")
    assert code == 1


def test_summary_lists_flush_reasons(tmp_path: Path) -> None:
    write_pcap(tmp_path / "in.pcap", stream(6))
    code, out, _ = invoke(str(tmp_path / "in.pcap"), str(tmp_path / "out.pcap"), "--batch", "4")
    assert code == 0
    assert "frames in 6, packets out 2: 2 coalesced from 6 frames" in out and "poll end" in out


def test_usage_errors(tmp_path: Path) -> None:
    write_pcap(tmp_path / "in.pcap", stream(2))
    assert invoke(str(tmp_path / "in.pcap"), str(tmp_path / "o.pcap"), "--batch", "0")[0] == 2
    assert invoke(str(tmp_path / "in.pcap"), str(tmp_path / "o.pcap"), "--gro-max-size", "600000")[0] == 2
    assert invoke(str(tmp_path / "in.pcap"), str(tmp_path / "o.pcap"), "--kernel", "5.4")[0] == 2


def test_inspect_says_what_coalesce_would_do(tmp_path: Path) -> None:
    write_pcap(tmp_path / "in.pcap", stream(5))
    result = CliRunner().invoke(main, ["inspect", str(tmp_path / "in.pcap"), "--json"])
    assert result.exit_code == 0, result.output
    gro = json.loads(result.stdout)["coalesce"]
    assert gro["frames_in"] == 5 and gro["packets_out"] == 1 and gro["coalesced"] == 1 and gro["kernel"] == "6.1"


needs_compiled_gro = pytest.mark.skipif(compiled_gro is None, reason="the compiled GRO (softgso.gro._coalesce) is not "
                                        "built (no C compiler) or SOFTGSO_NO_C is set")


def _engines(tmp_path: Path, frames: list[bytes], *options: str) -> tuple[dict, dict]:
    """The same IN through --engine auto and --engine scalar: both JSON summaries, the outputs compared."""
    write_pcap(tmp_path / "in.pcap", frames)
    summaries = []
    for engine in ("auto", "scalar"):
        code, out, err = invoke(str(tmp_path / "in.pcap"), str(tmp_path / f"{engine}.pcap"), "--json", "--engine", engine,
                                *options)
        assert code == 0, err
        summaries.append({key: value for key, value in json.loads(out).items() if key not in ("elapsed_s", "out", "seconds", "output")})
    assert (tmp_path / "auto.pcap").read_bytes() == (tmp_path / "scalar.pcap").read_bytes()
    return summaries[0], summaries[1]


def _mixed_traffic() -> list[bytes]:
    """Polls of plain TCP segments (the compiled GRO's), polls with a doubly tagged segment, a bad checksum,
    a FIN (the scalar engine's), and ARP and LLDP frames among segments (passed up at once, by either)."""
    frames = [tcp_frame(flow % 2 == 1, flow, 1000 + 1448 * k, k, bytes([k]) * 1448) for k in range(40) for flow in (0, 1)]
    arp = bytes.fromhex("ffffffffffff020000000001" "0806") + bytes(28)
    tagged = frames[3][:12] + b"\x88\xa8\x00\x05\x81\x00\x00\x07" + frames[3][12:]  # two tags
    bad = bytearray(frames[5])
    bad[-1] ^= 0xFF
    fin = tcp_frame(False, 3, 5, 5, b"end", flags=0x11)
    lldp = bytes.fromhex("0180c200000e020000000001" "88cc") + bytes(46)
    # then polls of segments and frames GRO passes up at once (ARP, LLDP: the compiled GRO's too)
    return frames[:70] + [arp, tagged, bytes(bad), fin] + frames[70:] + frames[:16] + [arp, lldp] + frames[16:60] + [lldp]


@needs_compiled_gro
def test_compiled_gro_writes_what_the_scalar_engine_writes(tmp_path: Path) -> None:
    """--engine auto (the compiled GRO poll by poll, the scalar engine for the polls it does not take) and
    --engine scalar: the same bytes and the same summary, at several poll sizes and kernel generations."""
    frames = _mixed_traffic()
    for options in (("--batch", "64"), ("--batch", "7", "--kernel", "mainline"), ("--batch", "1"),
                    ("--batch", "16", "--gro-max-size", "9000", "--kernel", "6.12")):
        auto, scalar = _engines(tmp_path, frames, *options)
        assert auto["compiled_polls"] > 0 and scalar["compiled_polls"] == 0  # the compiled GRO did run
        assert {**auto, "compiled_polls": 0} == scalar
        assert auto["coalesced"] > 0 or options == ("--batch", "1")  # one frame a poll never merges


@needs_compiled_gro
def test_compiled_stream_hands_a_cut_file_to_the_reader(tmp_path: Path) -> None:
    """A file cut inside its last record: the same error and exit status from both engines."""
    frames = _mixed_traffic()
    write_pcap(tmp_path / "in.pcap", frames)
    data = (tmp_path / "in.pcap").read_bytes()
    (tmp_path / "cut.pcap").write_bytes(data[:-700])
    results = [invoke(str(tmp_path / "cut.pcap"), str(tmp_path / f"{engine}.pcap"), "-q", "--engine", engine)
               for engine in ("auto", "scalar")]
    assert results[0][0] == results[1][0] != 0
    assert results[0][2] == results[1][2] and "cut short" in results[0][2]


@pytest.mark.parametrize("engine", ["auto", "scalar"])
def test_a_file_cut_short_keeps_what_came_before_the_break(tmp_path: Path, engine: str) -> None:
    """A capture cut inside a record is read up to it, as segment reads it: the frames before it are
    coalesced (the poll ends there) and written, the break is named with its frame number, exit 3."""
    segments = stream(4)
    ack = build_frame(SuperPacketSpec(tcp_flags=0x10, partial_checksum=False, seq=5))
    write_pcap(tmp_path / "in.pcap", [*segments, ack])
    (tmp_path / "cut.pcap").write_bytes((tmp_path / "in.pcap").read_bytes()[:-10])  # inside frame 5
    code, out, err = invoke(str(tmp_path / "cut.pcap"), str(tmp_path / "out.pcap"), "--json", "--engine", engine)
    assert code == 3
    summary = json.loads(out)
    assert summary["frames_in"] == 4 and summary["packets_out"] == 1
    assert [e["frame"] for e in summary["input_errors"]] == [5] and "cut short" in summary["input_errors"][0]["reason"]
    assert "frame 5: input broken, reading stopped" in err
    with open_capture(tmp_path / "out.pcap") as reader:
        (record,) = list(reader)
    assert bytes(record.data)[54:] == b"".join(f[54:] for f in segments)


def test_json_has_the_facts_of_every_command_that_writes_a_capture(tmp_path: Path) -> None:
    """records_in, records_out, bytes_in, bytes_out, seconds, output, input_errors, atomic and
    output_written, under the names segment's and the actions' JSON give them."""
    write_pcap(tmp_path / "in.pcap", stream(3))
    out = tmp_path / "out.pcap"
    code, text, _ = invoke(str(tmp_path / "in.pcap"), str(out), "--json")
    summary = json.loads(text)
    segment_text = CliRunner().invoke(main, ["segment", str(tmp_path / "in.pcap"), str(tmp_path / "seg.pcap"),
                                             "--json"]).stdout
    shared = {"records_in", "records_out", "bytes_in", "bytes_out", "seconds", "output", "input_errors", "atomic",
              "output_written"}
    assert code == 0 and shared <= set(summary) and shared <= set(json.loads(segment_text))
    assert (summary["records_in"], summary["records_out"]) == (3, 1)  # three segments, one packet up
    assert summary["bytes_in"] == sum(len(f) for f in stream(3)) and summary["output"] == str(out)
    assert summary["bytes_out"] == out.stat().st_size - 24 - 16  # the file less its header and one record header


def test_out_written_straight_through_is_said(tmp_path: Path) -> None:
    """A character device as OUT is written as it comes, not atomically, and the summary says so, as segment's."""
    write_pcap(tmp_path / "in.pcap", stream(3))
    code, out, _ = invoke(str(tmp_path / "in.pcap"), "/dev/null", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["atomic"] is False and "character device" in summary["output_written"]
    code, out, _ = invoke(str(tmp_path / "in.pcap"), str(tmp_path / "out.pcap"), "--json")
    assert code == 0 and json.loads(out)["atomic"] is True and json.loads(out)["output_written"] is None


@needs_compiled_gro
def test_compiled_stream_reads_on_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks smaller than a poll (the buffer grows) and polls cut by a chunk's end (carried over): the
    same bytes as the scalar engine."""
    from softgso.bulk import coalesce_stream

    monkeypatch.setattr(coalesce_stream, "CHUNK_SIZE", 1 << 16)  # a poll of 64 segments is ~95 KiB
    frames = _mixed_traffic() * 3
    for batch in ("64", "5"):
        auto, scalar = _engines(tmp_path, frames, "--batch", batch)
        assert auto["compiled_polls"] > 0 and {**auto, "compiled_polls": 0} == scalar


def test_inspect_s_preview_is_coalesce_s_summary(tmp_path: Path) -> None:
    """inspect's "coalesce" block counts what `coalesce` (its defaults) reports, poll for poll."""
    write_pcap(tmp_path / "in.pcap", _mixed_traffic())
    preview = json.loads(CliRunner().invoke(main, ["inspect", str(tmp_path / "in.pcap"), "--json"]).stdout)["coalesce"]
    code, out, _ = invoke(str(tmp_path / "in.pcap"), str(tmp_path / "out.pcap"), "--json")
    summary = json.loads(out)
    assert code == 0 and summary["coalesced"] > 0
    keys = ("frames_in", "packets_out", "coalesced", "frames_merged", "polls", "flushes", "passed")
    assert {key: preview[key] for key in keys} == {key: summary[key] for key in keys}
