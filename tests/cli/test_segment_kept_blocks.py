"""segment on a pcapng with blocks about the capture (pcapng spec: name resolution, interface
statistics, systemd journal export, decryption secrets, custom blocks): OUT holds each of the
first section's as it came, where it lay among the packets, whichever engine; a custom block that
says it may not be copied (0x40000BAD) and the blocks of later sections are not written."""

from __future__ import annotations

import itertools
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from capture_helpers import png_block, png_epb, png_idb, png_shb
from conftest import run_cli

from softgso.cli.bench import MIXES, _frames

ENGINES = ["scalar", "compiled", "numpy"]
NRB = png_block("<", 4, struct.pack("<HH", 1, 8) + bytes([192, 0, 2, 1]) + b"a.b\0" + struct.pack("<HH", 0, 0))
DSB = png_block("<", 0x0A, struct.pack("<II", 0x544C534B, 12) + b"CLIENT_RANDO")
JOURNAL = png_block("<", 9, b"MESSAGE=capture started\n")
CB_COPY = png_block("<", 0xBAD, struct.pack("<I", 32473) + b"may be copied")
CB_NO_COPY = png_block("<", 0x40000BAD, struct.pack("<I", 32473) + b"may not be copied")


def _isb(interface_id: int, dropped: int) -> bytes:
    # isb_ifdrop (option 5): the capture's own count, kept as the capture said it
    return png_block("<", 5, struct.pack("<III", interface_id, 0, 1), [struct.pack("<HHQ", 5, 8, dropped)])


def _blocks(data: bytes) -> list[tuple[int, bytes]]:
    """(type, whole block) of every block, walked with nothing of softgso's (little-endian files)."""
    found, offset = [], 0
    while offset < len(data):
        block_type, length = struct.unpack_from("<II", data, offset)
        found.append((block_type, data[offset : offset + length]))
        offset += length
    return found


def _packets(count: int, seed: int = 5) -> list[bytes]:
    return list(itertools.islice(_frames(MIXES["tcp4"], random.Random(seed).randrange(3000, 20000)), count))


def _run(capture: Path, tmp: Path, engine: str, *options: str) -> bytes:
    out = tmp / f"out-{engine}.pcapng"
    result = run_cli("segment", capture, out, "-q", "--engine", engine, *options)
    assert result.exit_code == 0, result.stderr
    return out.read_bytes()


@pytest.mark.parametrize("engine", ENGINES)
def test_blocks_about_the_capture_are_written_as_they_came_where_they_lay(tmp_path: Path, engine: str) -> None:
    frames = _packets(30)
    capture = tmp_path / "in.pcapng"
    capture.write_bytes(png_shb("<") + NRB + png_idb("<", 1) + png_idb("<", 1) + DSB + JOURNAL
                        + b"".join(png_epb("<", 0, n, frame) for n, frame in enumerate(frames[:10]))
                        + CB_COPY + CB_NO_COPY
                        + b"".join(png_epb("<", 0, n, frame) for n, frame in enumerate(frames[10:]))
                        + _isb(0, 7) + _isb(1, 9))
    out = _blocks(_run(capture, tmp_path, engine))
    kinds = [block_type for block_type, _ in out]
    # the SHB and both IDBs first (the writer's start), then the blocks read before the first packet
    assert kinds[:6] == [0x0A0D0D0A, 1, 1, 4, 0x0A, 9]
    assert [block for _, block in out[3:6]] == [NRB, DSB, JOURNAL]
    packets_before = kinds.index(0xBAD) - 6
    assert packets_before > 10 and set(kinds[6 : 6 + packets_before]) == {6}
    assert 0x40000BAD not in kinds
    assert out[kinds.index(0xBAD)][1] == CB_COPY
    assert [block for block_type, block in out if block_type == 5] == [_isb(0, 7), _isb(1, 9)]
    assert kinds[-2:] == [5, 5]
    tshark = shutil.which("tshark")
    if tshark:  # an independent reader takes OUT whole: every segment and both interfaces' statistics
        shown = subprocess.run([tshark, "-r", str(tmp_path / f"out-{engine}.pcapng"), "-T", "fields",
                                "-e", "frame.interface_id"], capture_output=True, text=True, check=True).stdout.split()
        assert shown == ["0"] * kinds.count(6)


def test_every_engine_writes_them_alike(tmp_path: Path) -> None:
    frames = _packets(60, seed=9)
    capture = tmp_path / "in.pcapng"
    capture.write_bytes(png_shb("<") + png_idb("<", 1) + b"".join(
        png_epb("<", 0, n, frame) + (NRB if n % 7 == 3 else b"") + (DSB if n % 11 == 5 else b"")
        for n, frame in enumerate(frames)) + _isb(0, 1))
    outputs = {engine: _run(capture, tmp_path, engine) for engine in ENGINES}
    assert outputs["compiled"] == outputs["scalar"] == outputs["numpy"]
    assert [t for t, _ in _blocks(outputs["scalar"])].count(4) == sum(1 for n in range(60) if n % 7 == 3)


def test_statistics_of_an_interface_with_no_packet_come_after_its_description(tmp_path: Path) -> None:
    """An ISB names its interface: OUT describes the interface before it, as a reader needs."""
    frames = _packets(4)
    capture = tmp_path / "in.pcapng"
    capture.write_bytes(png_shb("<") + png_idb("<", 1) + b"".join(png_epb("<", 0, n, f) for n, f in enumerate(frames))
                        + png_idb("<", 1) + _isb(1, 3))
    for engine in ENGINES:
        kinds = [t for t, _ in _blocks(_run(capture, tmp_path, engine))]
        assert kinds.count(1) == 2 and kinds.index(5) > max(i for i, t in enumerate(kinds) if t == 1)


@pytest.mark.parametrize("engine", ENGINES)
def test_blocks_after_the_general_reader_takes_over_are_written_once(tmp_path: Path, engine: str) -> None:
    """A packet the bulk walk leaves to the general reader (an FCS its epb_flags give): the blocks
    before it written by the bulk stream, those after by the general reader, each once, in place."""
    import zlib

    frames = _packets(40, seed=3)
    flagged = frames[20] + struct.pack("<I", zlib.crc32(frames[20]))
    capture = tmp_path / "in.pcapng"
    capture.write_bytes(png_shb("<") + png_idb("<", 1) + NRB
                        + b"".join(png_epb("<", 0, n, f) for n, f in enumerate(frames[:20])) + DSB
                        + png_epb("<", 0, 20, flagged, flags=4 << 5) + JOURNAL
                        + b"".join(png_epb("<", 0, n, f) for n, f in enumerate(frames[21:])) + _isb(0, 2))
    kinds = [t for t, _ in _blocks(_run(capture, tmp_path, engine))]
    assert [t for t in kinds if t not in (6, 1, 0x0A0D0D0A)] == [4, 0x0A, 9, 5]
    assert kinds == [t for t, _ in _blocks(_run(capture, tmp_path, "scalar"))]


def test_blocks_of_a_later_section_and_of_a_pcap_output_are_not_written(tmp_path: Path) -> None:
    frames = _packets(4)
    capture = tmp_path / "in.pcapng"
    capture.write_bytes(png_shb("<") + png_idb("<", 1) + png_epb("<", 0, 0, frames[0]) + NRB
                        + png_shb("<") + png_idb("<", 1) + DSB + png_epb("<", 0, 1, frames[1]))
    kinds = [t for t, _ in _blocks(_run(capture, tmp_path, "scalar"))]
    assert 4 in kinds and 0x0A not in kinds
    result = run_cli("segment", capture, tmp_path / "out.pcap", "-q", "-F", "pcap")
    assert result.exit_code == 0, result.stderr
    assert NRB not in (tmp_path / "out.pcap").read_bytes()


@pytest.mark.parametrize("batch", ["4", "64"])
def test_coalesce_writes_them_too_with_the_poll_they_came_in(tmp_path: Path, batch: str) -> None:
    """coalesce reorders within a poll (GRO): a block goes before the packets of the poll that holds
    the record after it, and one after every record after every packet."""
    frames = _packets(30)
    segmented = tmp_path / "segments.pcapng"
    capture = tmp_path / "in.pcapng"
    capture.write_bytes(png_shb("<") + NRB + png_idb("<", 1) + DSB
                        + b"".join(png_epb("<", 0, n, frame) for n, frame in enumerate(frames)) + _isb(0, 4))
    assert run_cli("segment", capture, segmented, "-q").exit_code == 0
    out = tmp_path / "gro.pcapng"
    result = run_cli("coalesce", segmented, out, "-q", "--batch", batch)
    assert result.exit_code == 0, result.stderr
    kinds = [t for t, _ in _blocks(out.read_bytes())]
    assert kinds[:4] == [0x0A0D0D0A, 1, 4, 0x0A] and kinds[-1] == 5 and set(kinds[4:-1]) == {6}
