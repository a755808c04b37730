"""Classic pcap: every byte order and resolution reads back what Scapy wrote, and writes back as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from capture_helpers import TIMESTAMPS, scapy_decode, tcp_frames
from scapy.utils import RawPcapWriter

from softgso.io import open_capture, open_writer

VARIANTS = [("little", False), ("little", True), ("big", False), ("big", True)]


def write_with_scapy(path: Path, frames: list[bytes], byte_order: str, nanosecond: bool, snap: int = 0) -> None:
    """Records with TIMESTAMPS; the last ``snap`` bytes of each frame cut off (caplen < orig_len)."""
    writer = RawPcapWriter(str(path), linktype=1, nano=nanosecond, endianness="<" if byte_order == "little" else ">")
    writer.write_header(None)
    for frame, timestamp in zip(frames, TIMESTAMPS, strict=False):
        seconds = int(timestamp)
        fraction = int((timestamp - seconds) * (10**9 if nanosecond else 10**6))
        data = frame[: len(frame) - snap] if snap else frame
        writer.write_packet(data, sec=seconds, usec=fraction, wirelen=len(frame))
    writer.close()


@pytest.mark.parametrize(("byte_order", "nanosecond"), VARIANTS)
def test_reader_yields_what_scapy_wrote(tmp_path: Path, byte_order: str, nanosecond: bool) -> None:
    path = tmp_path / "in.pcap"
    frames = tcp_frames(8)
    write_with_scapy(path, frames, byte_order, nanosecond)
    expected = scapy_decode(path)
    with open_capture(path) as reader:
        assert (reader.format, reader.byte_order, reader.nanosecond) == ("pcap", byte_order, nanosecond)
        assert reader.linktypes == (1,)
        records = list(reader)
    assert [r.index for r in records] == list(range(8))
    assert [bytes(r.data) for r in records] == frames
    assert [r.timestamp_ns for r in records] == [e.timestamp_ns for e in expected]
    assert [r.orig_len for r in records] == [len(f) for f in frames]
    assert reader.bytes_read == reader.file_size == path.stat().st_size


@pytest.mark.parametrize(("byte_order", "nanosecond"), VARIANTS)
def test_timestamps_are_exact_nanoseconds(tmp_path: Path, byte_order: str, nanosecond: bool) -> None:
    path = tmp_path / "in.pcap"
    write_with_scapy(path, tcp_frames(8), byte_order, nanosecond)
    with open_capture(path) as reader:
        stamps = [r.timestamp_ns for r in reader]
    unit = 1 if nanosecond else 1000
    assert stamps == [int(t * 10**9) // unit * unit for t in TIMESTAMPS]


@pytest.mark.parametrize(("byte_order", "nanosecond"), VARIANTS)
def test_copy_is_byte_identical_and_scapy_reads_it(tmp_path: Path, byte_order: str, nanosecond: bool) -> None:
    source, copy = tmp_path / "in.pcap", tmp_path / "out.pcap"
    write_with_scapy(source, tcp_frames(8), byte_order, nanosecond, snap=3)
    with open_capture(source) as reader, open_writer(copy, like=reader) as writer:
        for record in reader:
            writer.write(record)
    assert copy.read_bytes() == source.read_bytes()
    assert scapy_decode(copy) == scapy_decode(source)


def test_snapped_record_is_visible(tmp_path: Path) -> None:
    path = tmp_path / "in.pcap"
    frames = tcp_frames(3)
    write_with_scapy(path, frames, "little", False, snap=10)
    with open_capture(path) as reader:
        records = list(reader)
    assert all(r.truncated for r in records)
    assert [(len(r.data), r.orig_len) for r in records] == [(len(f) - 10, len(f)) for f in frames]


def test_writer_converts_resolution_and_byte_order_on_request(tmp_path: Path) -> None:
    source, out = tmp_path / "in.pcap", tmp_path / "out.pcap"
    write_with_scapy(source, tcp_frames(4), "little", True)
    with open_capture(source) as reader, open_writer(out, like=reader, nanosecond=False, byte_order="big") as w:
        for record in reader:
            w.write(record)
    decoded = scapy_decode(out)
    assert out.read_bytes()[:4] == bytes.fromhex("a1b2c3d4")
    assert [d.timestamp_ns for d in decoded] == [int(t * 10**6) * 1000 for t in TIMESTAMPS[:4]]
