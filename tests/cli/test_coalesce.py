"""``softgso coalesce IN OUT``: records out, timestamps, pcapng comments, the summary, reports, --strict."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from click.testing import CliRunner

from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.cli.commands import main
from softgso.cli.runner import _device
from softgso.io import open_capture
from softgso.job import SegmentOptions, process_frame


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
