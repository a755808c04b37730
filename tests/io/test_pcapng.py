"""pcapng: interfaces, resolutions, comments and packet blocks read back as written, and write back."""

from __future__ import annotations

from pathlib import Path

from capture_helpers import (
    TIMESTAMPS,
    png_epb,
    png_idb,
    png_isb,
    png_shb,
    png_spb,
    scapy_decode,
    tcp_frames,
)
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Ether
from scapy.utils import PcapNgWriter

from softgso.io import open_capture, open_writer


def copy(source: Path, target: Path, **options: object) -> None:
    with open_capture(source) as reader, open_writer(target, like=reader, **options) as writer:  # type: ignore[arg-type]
        for record in reader:
            writer.write(record)


def scapy_multi_interface(path: Path) -> list:
    """Ethernet on interface 0, SLL on "any", SLL2 on "any2"; comments on some packets."""
    packets = []
    for i in range(6):
        inner = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(seq=i) / (b"p" * (50 * i + 1))
        if i % 3 == 0:
            packet = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / inner
        elif i % 3 == 1:
            packet = CookedLinux(pkttype=4, lladdrtype=1, lladdrlen=6, src=b"\x02\0\0\0\0\x01\0\0", proto=0x0800) / inner
            packet.sniffed_on = "any"
        else:
            packet = CookedLinuxV2(proto=0x0800, ifindex=3, lladdrtype=1, pkttype=0, lladdrlen=6,
                                   src=b"\x02\0\0\0\0\x09\0\0") / inner
            packet.sniffed_on = "any2"
        packet.time = TIMESTAMPS[i]
        if i in (1, 3):
            packet.comments = [f"comment on packet {i}".encode()]
        packets.append(packet)
    writer = PcapNgWriter(str(path))
    for packet in packets:
        writer.write(packet)
    writer.close()
    return packets


def test_multi_interface_capture_reads_as_scapy_decodes_it(tmp_path: Path) -> None:
    path = tmp_path / "multi.pcapng"
    packets = scapy_multi_interface(path)
    expected = scapy_decode(path)
    with open_capture(path) as reader:
        records = list(reader)
        assert reader.format == "pcapng"
        assert reader.linktypes == (1, 113, 276)
        assert [i.name for i in reader.interfaces] == [None, "any", "any2"]
    assert [bytes(r.data) for r in records] == [bytes(p) for p in packets]
    assert [r.timestamp_ns for r in records] == [e.timestamp_ns for e in expected]
    assert [r.linktype for r in records] == [e.linktype for e in expected]
    assert [r.interface_id for r in records] == [0, 1, 2, 0, 1, 2]
    assert [r.comment for r in records] == [e.comment for e in expected]
    assert records[1].comment == "comment on packet 1"


def test_multi_interface_copy_is_byte_identical(tmp_path: Path) -> None:
    source, target = tmp_path / "multi.pcapng", tmp_path / "out.pcapng"
    scapy_multi_interface(source)
    copy(source, target)
    assert target.read_bytes() == source.read_bytes()


def spec_built_capture(prefix: str) -> tuple[bytes, list[tuple[int, int, bytes, str | None]]]:
    """A section with an SHB comment, ns and 2^-20 interfaces (one with if_tsoffset), and an ISB.

    Returns the file and, per packet, (interface id, timestamp in ns, data, comment) from the spec.
    """
    frames = tcp_frames(4)
    blocks = [
        png_shb(prefix, "section comment"),
        png_idb(prefix, 1, tsresol=9, name="eth0"),
        png_idb(prefix, 113, tsresol=0x80 | 20, tsoffset=1_600_000_000),
        png_epb(prefix, 0, 1_700_000_000_123_456_789, frames[0], comment="first"),
        png_epb(prefix, 1, 100_000_000 * 2**20 + 2**19, frames[1]),  # 10^8 + 0.5 s after the offset
        png_isb(prefix, 0),
        png_epb(prefix, 0, 1_700_000_001_000_000_001, frames[2], orig_len=len(frames[2]) + 100),
        png_epb(prefix, 1, 3, frames[3], comment="x" * 7),
    ]
    expected = [
        (0, 1_700_000_000_123_456_789, frames[0], "first"),
        (1, 1_700_000_000_500_000_000, frames[1], None),
        (0, 1_700_000_001_000_000_001, frames[2], None),
        (1, 1_600_000_000_000_000_000 + 3 * 10**9 // 2**20, frames[3], "x" * 7),
    ]
    return b"".join(blocks), expected


def test_resolutions_offsets_and_both_byte_orders(tmp_path: Path) -> None:
    for prefix, order in (("<", "little"), (">", "big")):
        path = tmp_path / f"spec_{order}.pcapng"
        content, expected = spec_built_capture(prefix)
        path.write_bytes(content)
        with open_capture(path) as reader:
            records = list(reader)
            assert reader.byte_order == order
            assert reader.comment == "section comment"
            assert [i.ticks_per_second for i in reader.interfaces] == [10**9, 2**20]
        assert [(r.interface_id, r.timestamp_ns, bytes(r.data), r.comment) for r in records] == expected
        assert records[2].truncated and records[2].orig_len == len(expected[2][2]) + 100
        assert [d.data for d in scapy_decode(path)] == [e[2] for e in expected]


def test_copy_keeps_shb_idbs_resolutions_and_comments(tmp_path: Path) -> None:
    for prefix in "<>":
        source, target = tmp_path / "spec.pcapng", tmp_path / "out.pcapng"
        content, _ = spec_built_capture(prefix)
        source.write_bytes(content)
        copy(source, target)
        # The ISB is the one block not reproduced; everything else is byte for byte.
        assert target.read_bytes() == content.replace(png_isb(prefix, 0), b"")


def test_simple_packet_blocks_are_records_of_interface_0(tmp_path: Path) -> None:
    path = tmp_path / "spb.pcapng"
    frames = tcp_frames(3)
    path.write_bytes(png_shb("<") + png_idb("<", 1, snaplen=100) + b"".join(png_spb("<", f) for f in frames))
    with open_capture(path) as reader:
        records = list(reader)
    assert [bytes(r.data) for r in records] == [f[:100] for f in frames]
    assert [r.orig_len for r in records] == [len(f) for f in frames]
    assert [r.timestamp_ns for r in records] == [0, 0, 0]
    assert [d.data for d in scapy_decode(path)] == [f[:100] for f in frames]


def test_second_section_in_other_byte_order_gets_new_interface_ids(tmp_path: Path) -> None:
    path, target = tmp_path / "two.pcapng", tmp_path / "out.pcapng"
    frames = tcp_frames(2)
    path.write_bytes(
        png_shb("<") + png_idb("<", 1) + png_epb("<", 0, 5, frames[0])
        + png_shb(">") + png_idb(">", 113, tsresol=9) + png_epb(">", 0, 7, frames[1])
    )
    with open_capture(path) as reader:
        records = list(reader)
    assert [(r.interface_id, r.linktype, r.timestamp_ns) for r in records] == [(0, 1, 5000), (1, 113, 7)]
    copy(path, target)
    decoded = scapy_decode(target)
    assert [(d.linktype, d.timestamp_ns, d.data) for d in decoded] == [(1, 5000, frames[0]), (113, 7, frames[1])]


def test_pcap_input_can_be_written_as_pcapng(tmp_path: Path) -> None:
    from scapy.utils import wrpcap

    source, target = tmp_path / "in.pcap", tmp_path / "out.pcapng"
    frames = tcp_frames(3)
    wrpcap(str(source), [Ether(f) for f in frames])
    copy(source, target, format="pcapng")
    assert [d.data for d in scapy_decode(target)] == frames
    assert [d.timestamp_ns for d in scapy_decode(target)] == [d.timestamp_ns for d in scapy_decode(source)]


def test_interface_described_mid_file_is_written_before_its_first_record(tmp_path: Path) -> None:
    source, target = tmp_path / "late.pcapng", tmp_path / "out.pcapng"
    frames = tcp_frames(3)
    content = (
        png_shb("<") + png_idb("<", 1) + png_epb("<", 0, 1, frames[0])
        + png_idb("<", 276, name="late") + png_epb("<", 1, 2, frames[1]) + png_epb("<", 0, 3, frames[2])
    )
    source.write_bytes(content)
    copy(source, target)
    assert target.read_bytes() == content


def test_byte_order_conversion_re_encodes_interfaces(tmp_path: Path) -> None:
    source, target = tmp_path / "be.pcapng", tmp_path / "le.pcapng"
    content, expected = spec_built_capture(">")
    source.write_bytes(content)
    copy(source, target, byte_order="little")
    assert target.read_bytes()[8:12] == b"\x4d\x3c\x2b\x1a"
    with open_capture(target) as reader:
        records = list(reader)
        assert reader.comment == "section comment"
    assert [(r.interface_id, r.timestamp_ns, bytes(r.data), r.comment) for r in records] == expected
    assert [d.data for d in scapy_decode(target)] == [e[2] for e in expected]
