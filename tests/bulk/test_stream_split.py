"""--jobs cuts: split_points and block_split_points land on the first record (block) boundary at or
past each even cut of the file, with the number of packet records before it, as the formats lay
records out (pcap: a 24-byte file header, records of a 16-byte header whose third field is the
captured length; pcapng: blocks of type, total length, body, where only EPB, SPB and PB are packets)."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from softgso.bulk.stream import block_split_points, pcap_header, pcapng_header, split_points


def expected(boundaries: list[tuple[int, int]], start: int, size: int, parts: int,
             align: int = 1) -> list[tuple[int, int]]:
    """The first (offset, records before) at or past each cut, from a list of every boundary (records
    before it a multiple of ``align``; a boundary past two cuts starts one part)."""
    points = [(start, 0)]
    for k in range(1, parts):
        cut = start + (size - start) * k // parts
        later = [b for b in boundaries if b[0] >= cut and not b[1] % align]
        if not later:
            break
        if later[0] != points[-1]:
            points.append(later[0])
    return points


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("parts", [2, 3, 5])
def test_pcap_cuts_at_record_boundaries(tmp_path: Path, order: str, parts: int) -> None:
    draw = random.Random(parts)
    header = struct.pack(order + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    body, boundaries, offset = bytearray(), [], 24
    for index in range(900):  # records of 60 B to 200 KB: the walk reads past many buffers
        length = draw.choice([60, 1514, 9000, 200_000])
        boundaries.append((offset, index))
        body += struct.pack(order + "IIII", index, 0, length, length) + bytes(length)
        offset += 16 + length
    path = tmp_path / "in.pcap"
    path.write_bytes(header + body)
    found = pcap_header(path)
    assert found is not None
    assert split_points(path, found[0], parts) == expected(boundaries, 24, offset, parts)
    # the cuts of the file's first third alone, at the file's boundaries (the --jobs sample's end)
    assert split_points(path, found[0], parts, offset // 3) == expected(boundaries, 24, offset // 3, parts)
    # inspect's cuts: after a multiple of 64 records (coalesce's polls)
    assert split_points(path, found[0], parts, align=64) == expected(boundaries, 24, offset, parts, 64)


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_cuts_at_block_boundaries_counting_packet_blocks(tmp_path: Path, order: str) -> None:
    draw = random.Random(7)
    shb = struct.pack(order + "IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
    idb = struct.pack(order + "IIHHII", 1, 20, 1, 0, 262144, 20)
    content = bytearray(shb + idb)
    boundaries, packets = [], 0
    for _ in range(1200):
        boundaries.append((len(content), packets))
        kind = draw.choice(["epb", "spb", "isb"])
        length = draw.choice([60, 1514, 70_000])
        data = bytes(length + (-length % 4))
        if kind == "epb":
            total = 32 + len(data)
            content += struct.pack(order + "IIIIIII", 6, total, 0, 0, 0, length, length) + data
            packets += 1
        elif kind == "spb":
            total = 16 + len(data)
            content += struct.pack(order + "III", 3, total, length) + data
            packets += 1
        else:  # an Interface Statistics Block: no packet
            total = 24
            content += struct.pack(order + "IIIII", 5, total, 0, 0, 0)
        content += struct.pack(order + "I", total)
    path = tmp_path / "in.pcapng"
    path.write_bytes(bytes(content))
    blocks = pcapng_header(path)
    assert blocks is not None
    start = len(shb + idb)
    assert blocks.start == start
    for parts in (2, 3, 4, 9):
        assert block_split_points(path, blocks, parts) == expected(boundaries, start, len(content), parts)
        assert block_split_points(path, blocks, parts, len(content) // 5) == expected(boundaries, start,
                                                                                      len(content) // 5, parts)
        assert block_split_points(path, blocks, parts, align=64) == expected(boundaries, start, len(content),
                                                                             parts, 64)


def test_pcapng_cuts_stay_in_the_first_section(tmp_path: Path) -> None:
    """A second section's header ends the walk: no part starts in it (its interfaces are its own)."""
    shb = struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
    idb = struct.pack("<IIHHII", 1, 20, 1, 0, 262144, 20)
    epb = struct.pack("<IIIIIII", 6, 32 + 1500, 0, 0, 0, 1500, 1500) + bytes(1500) + struct.pack("<I", 32 + 1500)
    first = shb + idb + epb * 10
    path = tmp_path / "two.pcapng"
    path.write_bytes(first + shb + idb + epb * 1000)
    blocks = pcapng_header(path)
    assert blocks is not None
    # the first section's records are a hundredth of the file: every cut falls in the second one
    assert block_split_points(path, blocks, 4) == [(len(shb + idb), 0)]
