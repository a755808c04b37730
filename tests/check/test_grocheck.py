"""The bench's independent checker of coalesce outputs finds what is wrong (and nothing when right)."""

from __future__ import annotations

import struct
from pathlib import Path

from click.testing import CliRunner

from softgso.check.grocheck import check_coalesced
from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.cli.commands import main
from softgso.cli.runner import _device
from softgso.job import SegmentOptions, process_frame


def write_pcap(path: Path, frames: list[bytes]) -> None:
    with path.open("wb") as handle:
        handle.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for frame in frames:
            handle.write(struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame)


def test_checker_passes_coalesce_and_catches_damage(tmp_path: Path) -> None:
    frame = build_frame(SuperPacketSpec(payload=bytes(range(256)) * 20, tcp_flags=0x10))
    segments = process_frame(frame, SegmentOptions(device=_device("no-offload", 1500, None))).frames
    write_pcap(tmp_path / "in.pcap", segments)
    result = CliRunner().invoke(main, ["coalesce", str(tmp_path / "in.pcap"), str(tmp_path / "out.pcap"), "-q"])
    assert result.exit_code == 0
    verdict = check_coalesced(tmp_path / "in.pcap", tmp_path / "out.pcap")
    assert verdict.ok and verdict.packets_out == 1 and verdict.coalesced == len(segments) - 1
    data = bytearray((tmp_path / "out.pcap").read_bytes())
    damaged = bytearray(data)
    damaged[-1] ^= 1  # a payload byte
    (tmp_path / "bad.pcap").write_bytes(bytes(damaged))
    assert not check_coalesced(tmp_path / "in.pcap", tmp_path / "bad.pcap").ok
    wrong_seed = bytearray(data)
    wrong_seed[24 + 16 + 50] ^= 1  # the TCP checksum field of the aggregate
    (tmp_path / "bad.pcap").write_bytes(bytes(wrong_seed))
    assert not check_coalesced(tmp_path / "in.pcap", tmp_path / "bad.pcap").ok
