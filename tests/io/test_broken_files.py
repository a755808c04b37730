"""Broken captures: a CaptureError names the frame (numbered from 1, as tshark does), the byte offset and the reason, and
every record before the break has already been yielded."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from capture_helpers import png_epb, png_idb, png_shb, tcp_frames
from scapy.utils import wrpcap

from softgso.errors import CaptureError
from softgso.io import RecordError, open_capture
from softgso.io.record import FCS_LEN_UNKNOWN

FRAMES = tcp_frames(4)


def pcap_bytes(tmp_path: Path) -> bytes:
    from scapy.layers.l2 import Ether

    path = tmp_path / "good.pcap"
    wrpcap(str(path), [Ether(f) for f in FRAMES])
    return path.read_bytes()


def read_until_error(path: Path) -> tuple[list[int], RecordError]:
    seen: list[int] = []
    with pytest.raises(RecordError) as caught, open_capture(path) as reader:
        for record in reader:
            seen.append(record.index)
    return seen, caught.value


def offset_of_record(index: int) -> int:
    return 24 + sum(16 + len(f) for f in FRAMES[:index])


@pytest.mark.parametrize("cut", [5, 16 + 20])
def test_truncated_last_record_names_index_offset_and_reason(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes(pcap_bytes(tmp_path)[: offset_of_record(3) + cut])
    seen, error = read_until_error(path)
    assert seen == [0, 1, 2]
    assert (error.index, error.offset) == (3, offset_of_record(3))
    message = str(error)
    assert "frame 4" in message and f"byte offset {offset_of_record(3)}" in message
    assert "cut short" in message and str(path) in message


def test_bad_magic_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(b"\xde\xad\xbe\xef" + bytes(40))
    with pytest.raises(CaptureError, match="bad magic 0xdeadbeef"):
        open_capture(path)


@pytest.mark.parametrize(("content", "name"), [
    (b"GMBU\x02\x02" + bytes(40), "Microsoft Network Monitor 2.x"),  # Windows' netmon / Message Analyzer .cap
    (b"RTSS\x01\x01" + bytes(40), "Microsoft Network Monitor 1.x"),
    (b"snoop\0\0\0\0\0\0\x02\0\0\0\x04" + bytes(40), "Solaris snoop"),
])
def test_another_capture_format_is_named_with_its_conversion(tmp_path: Path, content: bytes, name: str) -> None:
    path = tmp_path / "x.cap"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match=f"{name} capture, neither pcap nor pcapng: convert it with editcap"):
        open_capture(path)


@pytest.mark.parametrize(("content", "reason"), [(b"", "empty"), (b"\x1f\x8b\x08\x00", "gzip")])
def test_not_a_capture_says_what_it_is(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match=reason):
        open_capture(path)


def test_absurd_record_length_is_refused(tmp_path: Path) -> None:
    content = bytearray(pcap_bytes(tmp_path))
    struct.pack_into("<I", content, offset_of_record(2) + 8, 300 << 20)
    path = tmp_path / "absurd.pcap"
    path.write_bytes(content)
    seen, error = read_until_error(path)
    assert seen == [0, 1]
    assert error.index == 2 and "longer than any frame the kernel builds" in str(error)


def test_record_longer_than_snaplen_is_refused(tmp_path: Path) -> None:
    content = bytearray(pcap_bytes(tmp_path))
    struct.pack_into("<I", content, 16, 100)  # snaplen
    struct.pack_into("<I", content, offset_of_record(1) + 8, 300_000)  # caplen beyond 262144 and snaplen
    path = tmp_path / "long.pcap"
    path.write_bytes(content)
    seen, error = read_until_error(path)
    assert seen == [0]
    assert error.index == 1 and "exceeds the snaplen 100" in str(error)


def pcapng_records() -> list[bytes]:
    return [png_epb("<", 0, i, f) for i, f in enumerate(FRAMES)]


@pytest.mark.parametrize(
    ("length", "reason"), [(13, "broken pcapng block length 13"), (8, "broken pcapng block length 8")]
)
def test_broken_pcapng_block_length(tmp_path: Path, length: int, reason: str) -> None:
    head = png_shb("<") + png_idb("<", 1)
    blocks = pcapng_records()
    broken = bytearray(blocks[2])
    struct.pack_into("<I", broken, 4, length)
    path = tmp_path / "broken.pcapng"
    path.write_bytes(head + blocks[0] + blocks[1] + broken + blocks[3])
    seen, error = read_until_error(path)
    assert seen == [0, 1]
    assert error.index == 2 and error.offset == len(head) + len(blocks[0]) + len(blocks[1])
    assert reason in str(error) and "frame " in str(error)


def test_trailing_block_length_must_match(tmp_path: Path) -> None:
    blocks = pcapng_records()
    broken = bytearray(blocks[1])
    struct.pack_into("<I", broken, len(broken) - 4, len(broken) + 4)
    path = tmp_path / "trailer.pcapng"
    path.write_bytes(png_shb("<") + png_idb("<", 1) + blocks[0] + broken)
    seen, error = read_until_error(path)
    assert seen == [0] and "trailing length" in str(error)


def test_truncated_pcapng_block(tmp_path: Path) -> None:
    content = png_shb("<") + png_idb("<", 1) + b"".join(pcapng_records())
    path = tmp_path / "cut.pcapng"
    path.write_bytes(content[:-10])
    seen, error = read_until_error(path)
    assert seen == [0, 1, 2] and error.index == 3 and "cut short" in str(error)


def test_broken_first_packet_block_is_raised_by_iteration_not_open(tmp_path: Path) -> None:
    broken = bytearray(pcapng_records()[0])
    struct.pack_into("<I", broken, 4, 14)
    path = tmp_path / "first.pcapng"
    path.write_bytes(png_shb("<") + png_idb("<", 1) + broken)
    seen, error = read_until_error(path)
    assert seen == [] and error.index == 0


def test_packet_on_undescribed_interface(tmp_path: Path) -> None:
    path = tmp_path / "iface.pcapng"
    path.write_bytes(png_shb("<") + png_idb("<", 1) + png_epb("<", 1, 0, FRAMES[0]))
    seen, error = read_until_error(path)
    assert seen == [] and "interface id 1" in str(error)


def test_epb_captured_length_beyond_its_block(tmp_path: Path) -> None:
    block = bytearray(pcapng_records()[0])
    struct.pack_into("<I", block, 20, len(FRAMES[0]) + 64)
    path = tmp_path / "caplen.pcapng"
    path.write_bytes(png_shb("<") + png_idb("<", 1) + block)
    seen, error = read_until_error(path)
    assert "exceeds its block" in str(error)


def test_packet_block_too_short_for_its_fields(tmp_path: Path) -> None:
    path = tmp_path / "short.pcapng"
    path.write_bytes(png_shb("<") + png_idb("<", 1) + struct.pack("<III", 6, 12, 12))
    seen, error = read_until_error(path)
    assert seen == [] and "enhanced packet block too short" in str(error)


# File versions: the pcap format is version 2.x (draft-ietf-opsawg-pcap: a new major version is a
# layout an old reader cannot read; libpcap's sf-pcap.c refuses any other major), and pcapng 1.0 or
# 1.2 (libpcap's sf-pcapng.c and Wireshark read those two and refuse 1.1). A file of another version is
# refused by name, never read as if it were one of these (its header would be written back on OUT).
TSHARK = shutil.which("tshark")


def _tshark_reads(path: Path) -> bool:
    return subprocess.run([TSHARK or "tshark", "-r", str(path), "-c", "1"], capture_output=True).returncode == 0


@pytest.mark.parametrize(("major", "minor"), [(1, 4), (3, 0), (0, 0)])
def test_a_pcap_of_another_major_version_is_refused_by_name(tmp_path: Path, major: int, minor: int) -> None:
    content = bytearray(pcap_bytes(tmp_path))
    struct.pack_into("<HH", content, 4, major, minor)
    path = tmp_path / "version.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match=rf"unsupported pcap version {major}\.{minor}"):
        open_capture(path)


@pytest.mark.parametrize("minor", [4, 3, 2])
def test_a_pcap_of_version_2_is_read(tmp_path: Path, minor: int) -> None:
    content = bytearray(pcap_bytes(tmp_path))
    struct.pack_into("<HH", content, 4, 2, minor)
    path = tmp_path / "version.pcap"
    path.write_bytes(content)
    with open_capture(path) as reader:
        assert [bytes(record.data) for record in reader] == FRAMES


@pytest.mark.parametrize(("minor", "read"), [(0, True), (2, True), (1, False), (3, False)])
def test_pcapng_sections_of_versions_1_0_and_1_2_are_read_and_others_refused(tmp_path: Path, minor: int,
                                                                              read: bool) -> None:
    shb = bytearray(png_shb("<"))
    struct.pack_into("<H", shb, 14, minor)  # the SHB body: magic, major, minor
    path = tmp_path / "version.pcapng"
    path.write_bytes(bytes(shb) + png_idb("<", 1) + png_epb("<", 0, 0, FRAMES[0]))
    if TSHARK:
        assert _tshark_reads(path) is read  # the independent reader agrees
    if read:
        with open_capture(path) as reader:
            assert [bytes(record.data) for record in reader] == FRAMES[:1]
    else:
        with pytest.raises(CaptureError, match=rf"unsupported pcapng version 1\.{minor}"), open_capture(path) as reader:
            list(reader)


# Frames that end in an FCS: a pcap link-type field with the P bit (1 << 26) and an FCS length in
# 16-bit words from bit 28 (pcap spec, "LinkType and additional information"), a pcapng interface
# with if_fcslen (option 13, in bits; 2 and 4 are the bytes older writers meant), a packet's
# epb_flags (bits 5-8, in bytes). Each record is read whole, its data as the file holds it, and says
# how many of its last bytes are the FCS (record.fcs_len): what takes it off and makes it anew is
# softgso.io.fcs.
def _with_fcs(frame: bytes) -> bytes:
    return frame + struct.pack("<I", zlib.crc32(frame))


@pytest.mark.parametrize(("field", "fcs_len"), [(1 | 1 << 26 | 2 << 28, 4), (1 | 1 << 26 | 1 << 28, 2)])
def test_a_pcap_whose_frames_end_in_an_fcs_reads_them_whole_with_their_fcs_length(tmp_path: Path, field: int,
                                                                                   fcs_len: int) -> None:
    path = tmp_path / "fcs.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, field) + b"".join(
        struct.pack("<IIII", 1, 0, len(frame) + fcs_len, len(frame) + fcs_len) + _with_fcs(frame)[: len(frame) + fcs_len]
        for frame in FRAMES))
    if TSHARK and fcs_len == 4:  # the independent reader finds an FCS on every frame
        fields = subprocess.run([TSHARK, "-r", str(path), "-T", "fields", "-e", "eth.fcs"], capture_output=True,
                                text=True, check=True).stdout.split()
        assert fields == ["0x" + _with_fcs(frame)[-4:].hex() for frame in FRAMES]
    with open_capture(path) as reader:
        records = list(reader)
        assert reader.interfaces[0].fcs_len == fcs_len
    assert [bytes(record.data) for record in records] == [_with_fcs(frame)[: len(frame) + fcs_len] for frame in FRAMES]
    assert [record.fcs_len for record in records] == [fcs_len] * len(FRAMES)


def test_a_pcap_whose_fcs_bit_gives_no_length_is_read(tmp_path: Path) -> None:
    content = bytearray(pcap_bytes(tmp_path))
    struct.pack_into("<I", content, 20, 1 | 1 << 26)  # FCS length 0: no FCS
    path = tmp_path / "no-fcs.pcap"
    path.write_bytes(content)
    with open_capture(path) as reader:
        records = list(reader)
    assert [bytes(record.data) for record in records] == FRAMES
    assert {record.fcs_len for record in records} == {0}


@pytest.mark.parametrize(("if_fcslen", "fcs_len"), [(32, 4), (16, 2), (4, 4), (2, 2), (12, FCS_LEN_UNKNOWN)])
def test_a_pcapng_packet_on_an_interface_with_an_fcs_has_the_length_if_fcslen_gives(tmp_path: Path, if_fcslen: int,
                                                                                    fcs_len: int) -> None:
    """if_fcslen counts bits; 2 and 4 (no FCS is 2 or 4 bits long) are bytes, as Wireshark 4.0 reads
    them (below); another length not in whole bytes is said to be unknown."""
    path = tmp_path / "fcs.pcapng"
    path.write_bytes(png_shb("<") + png_idb("<", 1) + png_idb("<", 1, fcslen=if_fcslen) + png_epb("<", 0, 0, FRAMES[0])
                     + png_epb("<", 1, 0, _with_fcs(FRAMES[1])) + png_epb("<", 0, 0, FRAMES[2]))
    if if_fcslen == 4:
        _fcs_on_the_second_frame_alone(path)
    with open_capture(path) as reader:
        records = list(reader)
    assert [bytes(record.data) for record in records] == [FRAMES[0], _with_fcs(FRAMES[1]), FRAMES[2]]
    assert [record.fcs_len for record in records] == [0, fcs_len, 0]


@pytest.mark.parametrize("prefix", ["<", ">"])
def test_a_pcapng_packet_whose_epb_flags_give_an_fcs_has_that_length(tmp_path: Path, prefix: str) -> None:
    """epb_flags bits 5-8: the packet's FCS length (pcapng spec); other flags (inbound, unicast) read as ever."""
    path = tmp_path / "flags.pcapng"
    inbound_unicast = 1 | 1 << 2
    path.write_bytes(png_shb(prefix) + png_idb(prefix, 1) + png_epb(prefix, 0, 0, FRAMES[0], flags=inbound_unicast)
                     + png_epb(prefix, 0, 0, _with_fcs(FRAMES[1]), flags=inbound_unicast | 4 << 5)
                     + png_epb(prefix, 0, 0, FRAMES[2]))
    _fcs_on_the_second_frame_alone(path)
    with open_capture(path) as reader:
        records = list(reader)
    assert [bytes(record.data) for record in records] == [FRAMES[0], _with_fcs(FRAMES[1]), FRAMES[2]]
    assert [record.fcs_len for record in records] == [0, 4, 0]


def _fcs_on_the_second_frame_alone(path: Path) -> None:
    """The independent reader finds an FCS on the second frame alone, the one it ends."""
    if TSHARK:
        fields = subprocess.run([TSHARK, "-r", str(path), "-T", "fields", "-e", "eth.fcs"], capture_output=True,
                                text=True, check=True).stdout.split("\n")
        assert fields[:3] == ["", "0x" + _with_fcs(FRAMES[1])[-4:].hex(), ""]


