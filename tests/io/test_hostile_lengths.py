"""Hostile lengths: a record or block claiming up to 4 GB, or a frame longer than any the kernel builds.

Rule: such a length is refused before any of its bytes are read (a RecordError naming the record
index, the byte offset and the reason), every record before it has been yielded, and memory stays
small whatever the claim. A pcapng block softgso does not use may be long: it is read past in
pieces, never held. The limit is GSO_MAX_SIZE (524280 bytes, include/linux/netdevice.h: BIG TCP's
largest packet) plus 256 bytes of link-layer framing.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from capture_helpers import png_block, png_epb, png_idb, png_shb, tcp_frames

from softgso.io import RecordError, open_capture

FRAMES = tcp_frames(3)
GSO_MAX_SIZE = 524280  # the kernel's, not softgso's: 8 * GSO_MAX_SEGS
LIMIT = GSO_MAX_SIZE + 256
ORDERS = ["<", ">"]
MIB = 1 << 20


def pcap_header(order: str, snaplen: int = 0xFFFFFFFF) -> bytes:
    return struct.pack(order + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1)


def pcap_record(order: str, data: bytes, caplen: int | None = None) -> bytes:
    length = len(data) if caplen is None else caplen
    return struct.pack(order + "IIII", 1_700_000_000, 0, length, length) + data


def read_all(path: Path) -> tuple[list[bytes], RecordError | None]:
    seen: list[bytes] = []
    try:
        with open_capture(path) as reader:
            for record in reader:
                seen.append(bytes(record.data))
    except RecordError as error:
        return seen, error
    return seen, None


def pcap_claiming(path: Path, order: str, claim: int, present: int = 100) -> Path:
    """Two good records, then one whose header claims ``claim`` bytes of which ``present`` follow."""
    body = pcap_header(order) + b"".join(pcap_record(order, f) for f in FRAMES[:2])
    path.write_bytes(body + pcap_record(order, bytes(present), caplen=claim))
    return path


def pcapng_claiming(path: Path, order: str, block_length: int, present: int = 100) -> Path:
    """Two good EPBs, then a block header claiming ``block_length`` bytes, ``present`` of which follow."""
    body = png_shb(order) + png_idb(order, 1, snaplen=0) + b"".join(png_epb(order, 0, i, f) for i, f in
                                                                    enumerate(FRAMES[:2]))
    path.write_bytes(body + struct.pack(order + "II", 6, block_length) + bytes(present))
    return path


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("claim", [0xFFFFFFFF, 0x80000000, 200 * MIB, LIMIT + 1])
def test_pcap_record_claiming_more_than_the_kernel_builds_is_refused_by_index(tmp_path: Path, order: str,
                                                                             claim: int) -> None:
    path = pcap_claiming(tmp_path / "claim.pcap", order, claim)
    seen, error = read_all(path)
    assert seen == FRAMES[:2]
    assert error is not None and error.index == 2
    assert error.offset == 24 + sum(16 + len(f) for f in FRAMES[:2])
    assert f"captured length {claim} is longer than any frame the kernel builds" in str(error)
    assert "GSO_MAX_SIZE 524280" in str(error) and "frame 3" in str(error)


@pytest.mark.parametrize("order", ORDERS)
def test_pcap_frame_longer_than_gso_max_size_is_refused_even_when_present(tmp_path: Path, order: str) -> None:
    path = tmp_path / "long.pcap"
    path.write_bytes(pcap_header(order) + pcap_record(order, FRAMES[0]) + pcap_record(order, bytes(LIMIT + 1))
                     + pcap_record(order, FRAMES[1]))
    seen, error = read_all(path)
    assert seen == FRAMES[:1]
    assert error is not None and error.index == 1 and f"captured length {LIMIT + 1}" in str(error)


@pytest.mark.parametrize("order", ORDERS)
def test_the_longest_frame_the_kernel_builds_is_read(tmp_path: Path, order: str) -> None:
    big = bytes(range(256)) * (LIMIT // 256) + bytes(LIMIT % 256)
    assert len(big) == LIMIT
    path = tmp_path / "longest.pcap"
    path.write_bytes(pcap_header(order) + pcap_record(order, big) + pcap_record(order, FRAMES[0]))
    assert read_all(path) == ([big, FRAMES[0]], None)
    png = tmp_path / "longest.pcapng"
    png.write_bytes(png_shb(order) + png_idb(order, 1, snaplen=0) + png_epb(order, 0, 0, big)
                    + png_epb(order, 0, 1, FRAMES[0]))
    assert read_all(png) == ([big, FRAMES[0]], None)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("length", [0xFFFFFFFC, 0x80000000, 200 * MIB])
def test_pcapng_packet_block_claiming_gigabytes_is_refused_by_index(tmp_path: Path, order: str, length: int) -> None:
    path = pcapng_claiming(tmp_path / "claim.pcapng", order, length)
    seen, error = read_all(path)
    assert seen == FRAMES[:2]
    assert error is not None and error.index == 2
    assert f"pcapng block length {length} (block type 0x6) is longer than any such block can be" in str(error)


@pytest.mark.parametrize("order", ORDERS)
def test_pcapng_frame_longer_than_gso_max_size_is_refused(tmp_path: Path, order: str) -> None:
    path = tmp_path / "long.pcapng"
    path.write_bytes(png_shb(order) + png_idb(order, 1, snaplen=0) + png_epb(order, 0, 0, FRAMES[0])
                     + png_epb(order, 0, 1, bytes(LIMIT + 4)) + png_epb(order, 0, 2, FRAMES[1]))
    seen, error = read_all(path)
    assert seen == FRAMES[:1]
    assert error is not None and error.index == 1 and f"captured length {LIMIT + 4}" in str(error)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("block_type", [0x0A0D0D0A, 0x00000001])
def test_pcapng_section_or_interface_block_claiming_gigabytes_is_refused(tmp_path: Path, order: str,
                                                                         block_type: int) -> None:
    head = png_shb(order) + png_idb(order, 1) + png_epb(order, 0, 0, FRAMES[0])
    if block_type == 0x0A0D0D0A:
        bad = struct.pack(order + "II", block_type, 0xFFFFFFFC) + struct.pack(order + "I", 0x1A2B3C4D)
    else:
        bad = struct.pack(order + "II", block_type, 0xFFFFFFFC)
    path = tmp_path / "section.pcapng"
    path.write_bytes(head + bad + bytes(64))
    seen, error = read_all(path)
    assert seen == FRAMES[:1]
    assert error is not None and error.index == 1 and "longer than any such block can be" in str(error)


@pytest.mark.parametrize("order", ORDERS)
def test_long_pcapng_block_softgso_does_not_use_is_read_past(tmp_path: Path, order: str) -> None:
    custom = png_block(order, 0x40000BAD, bytes(4) + bytes(range(256)) * 4000)  # 1 MB: above the packet limit
    assert len(custom) > LIMIT + (1 << 16)
    path = tmp_path / "custom.pcapng"
    path.write_bytes(png_shb(order) + png_idb(order, 1) + png_epb(order, 0, 0, FRAMES[0]) + custom
                     + png_epb(order, 0, 1, FRAMES[1]))
    assert read_all(path) == (FRAMES[:2], None)


@pytest.mark.parametrize("order", ORDERS)
def test_unused_pcapng_block_claiming_gigabytes_ends_as_cut_short(tmp_path: Path, order: str) -> None:
    path = tmp_path / "custom.pcapng"
    path.write_bytes(png_shb(order) + png_idb(order, 1) + png_epb(order, 0, 0, FRAMES[0])
                     + struct.pack(order + "II", 0x40000BAD, 0xFFFFFFFC) + bytes(3000))
    seen, error = read_all(path)
    assert seen == FRAMES[:1]
    assert error is not None and error.index == 1
    assert "block cut short: 3008 of 4294967292 bytes (block type 0x40000bad)" in str(error)


@pytest.mark.parametrize("order", ORDERS)
def test_long_unused_block_with_a_wrong_trailing_length_is_refused(tmp_path: Path, order: str) -> None:
    custom = bytearray(png_block(order, 0x40000BAD, bytes(1 << 20)))
    struct.pack_into(order + "I", custom, len(custom) - 4, 12)
    path = tmp_path / "trailer.pcapng"
    path.write_bytes(png_shb(order) + png_idb(order, 1) + bytes(custom) + png_epb(order, 0, 0, FRAMES[0]))
    seen, error = read_all(path)
    assert seen == [] and error is not None and "trailing length 12 differs" in str(error)


# --- peak memory, measured in a child process ------------------------------------------------------
# The child's peak resident set is VmHWM of /proc/self/status, not getrusage's ru_maxrss: Linux carries
# ru_maxrss over from the parent's memory across fork + exec, so under pytest it would be pytest's.

PEAK_RSS = """
def peak_rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
"""

CHILD = PEAK_RSS + """
import json, sys
from softgso.io import RecordError, open_capture
records, error = 0, None
try:
    with open_capture(sys.argv[1]) as reader:
        for record in reader:
            records += 1
except RecordError as caught:
    error = str(caught)
print(json.dumps({"records": records, "error": error, "max_rss_kib": peak_rss_kib()}))
"""
# softgso.io alone: about 15 MiB. The hostile files below hold 200 MiB after the header that claims them
# (a reader that believed it: over 400 MiB).
RSS_LIMIT_KIB = 64 * 1024


def read_in_child(path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=120,
                          check=True)
    return json.loads(done.stdout)


def sparse(path: Path, head: bytes, total: int) -> Path:
    """``head``, then zeros up to ``total`` bytes (a sparse file: no disk space taken)."""
    with open(path, "wb") as handle:
        handle.write(head)
        handle.truncate(total)
    return path


@pytest.mark.parametrize("order", ORDERS)
def test_a_present_200_mib_pcap_record_costs_no_memory(tmp_path: Path, order: str) -> None:
    head = pcap_header(order) + pcap_record(order, FRAMES[0]) + struct.pack(order + "IIII", 1, 0, 200 * MIB, 200 * MIB)
    report = read_in_child(sparse(tmp_path / "big.pcap", head, len(head) + 200 * MIB))
    assert report["records"] == 1 and "frame 2" in report["error"]
    assert report["max_rss_kib"] < RSS_LIMIT_KIB, report


@pytest.mark.parametrize("order", ORDERS)
def test_a_present_200_mib_pcapng_block_costs_no_memory(tmp_path: Path, order: str) -> None:
    head = (png_shb(order) + png_idb(order, 1, snaplen=0) + png_epb(order, 0, 0, FRAMES[0])
            + struct.pack(order + "II", 6, 200 * MIB))
    report = read_in_child(sparse(tmp_path / "big.pcapng", head, len(head) + 200 * MIB))
    assert report["records"] == 1 and "frame 2" in report["error"]
    assert report["max_rss_kib"] < RSS_LIMIT_KIB, report


@pytest.mark.parametrize("order", ORDERS)
def test_a_200_mib_block_softgso_does_not_use_is_read_past_in_little_memory(tmp_path: Path, order: str) -> None:
    head = png_shb(order) + png_idb(order, 1) + png_epb(order, 0, 0, FRAMES[0])
    path = sparse(tmp_path / "custom.pcapng", head + struct.pack(order + "II", 0x40000BAD, 200 * MIB),
                  len(head) + 200 * MIB - 4)
    with open(path, "ab") as handle:
        handle.write(struct.pack(order + "I", 200 * MIB) + png_epb(order, 0, 1, FRAMES[1]))
    report = read_in_child(path)
    assert report == {**report, "records": 2, "error": None}
    assert report["max_rss_kib"] < RSS_LIMIT_KIB, report
