"""An action whose result the record's link type cannot carry (a label or a tag pushed on a raw-IP or
NULL record): ``segment`` passes the record through as it came and reports it, counted over the MTU
when it is; ``inspect`` predicts exactly that (README: "every input record lands in exactly one of"
the rows, "a frame over the MTU is in OUT only because the device takes it whole, or it is reported"
and then "also counted in the summary row 'over MTU, not segmented'").

The records are read back with Scapy's raw reader (not softgso.io); the expected counts are the
rules' own: every record out byte for byte as it came.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_captures import icmp4, tcp4_super, write_pcap
from conftest import run_json

LINKTYPE_NULL, LINKTYPE_IPV4, LINKTYPE_IPV6 = 0, 228, 229


def _capture(tmp: Path, linktype: int) -> tuple[Path, list[bytes]]:
    frames = [tcp4_super(5000, partial=False), icmp4(), tcp4_super(100, partial=False, seq=2_000_000)]
    if linktype == LINKTYPE_NULL:
        records = [(2).to_bytes(4, "little") + frame[14:] for frame in frames]  # AF_INET, little-endian host
    else:
        records = [frame[14:] for frame in frames]
    return write_pcap(tmp / "in.pcap", records, linktype=linktype), records


def _scapy_records(path: Path) -> list[bytes]:
    from scapy.utils import RawPcapReader

    with RawPcapReader(str(path)) as reader:
        return [bytes(data) for data, _ in reader]


@pytest.mark.parametrize("linktype", [LINKTYPE_IPV4, LINKTYPE_NULL])
@pytest.mark.parametrize("action", ["push-mpls:100:0:64:uc", "push-vlan:7:0:8021q"])
@pytest.mark.parametrize("engine", ["auto", "scalar"])
def test_a_result_the_link_type_cannot_carry_passes_through_counted_and_reported(
        tmp: Path, linktype: int, action: str, engine: str) -> None:
    path, records = _capture(tmp, linktype)
    result, summary = run_json("segment", "--engine", engine, "--action", action, path, tmp / "out.pcap")
    assert result.exit_code == 0
    assert _scapy_records(tmp / "out.pcap") == records
    assert summary["outcomes"]["not_segmented"] == 3 and sum(summary["outcomes"].values()) == 3
    assert summary["records_out"] == 3 and summary["bytes_out"] == sum(map(len, records))
    # the 5000-byte super-packet goes out whole: over the MTU, so counted there
    assert summary["over_mtu_not_segmented"] == 1
    assert [report["frame"] for report in summary["reports"]] == [1, 2, 3]
    for report in summary["reports"]:
        assert report["kind"] == "result not expressible in the link type"
        assert not report["reason"].startswith("frame")  # the report names the frame once, as every report


@pytest.mark.parametrize("linktype", [LINKTYPE_IPV4, LINKTYPE_NULL])
@pytest.mark.parametrize("engine", ["auto", "scalar"])
def test_inspect_predicts_what_segment_writes_when_the_link_type_cannot_carry_the_result(
        tmp: Path, linktype: int, engine: str) -> None:
    path, records = _capture(tmp, linktype)
    _, summary = run_json("inspect", "--engine", engine, "--action", "push-mpls:100:0:64:uc", path)
    preview = summary["segment"]
    assert preview["records_out"] == 3 and preview["bytes_out"] == sum(map(len, records))
    assert preview["outcomes"]["not_segmented"] == 3 and sum(preview["outcomes"].values()) == 3
    assert preview["over_mtu_not_segmented"] == 1


def _damaged_fcs_pcap(path: Path, frame: bytes) -> Path:
    """``frame`` ending in an FCS that is not its CRC-32, in a pcap whose link-type field declares a 4-byte FCS."""
    import struct
    import zlib

    record = frame + struct.pack("<I", zlib.crc32(frame) ^ 1)
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1 | 1 << 26 | 2 << 28)
                     + struct.pack("<IIII", 1, 0, len(record), len(record)) + record)
    return path


@pytest.mark.parametrize("engine", ["auto", "scalar"])
def test_a_frame_over_the_mtu_passed_through_for_its_fcs_is_counted_over_the_mtu(tmp: Path, engine: str) -> None:
    """A super-packet the tso device takes whole, changed by an action, whose FCS is damaged: no right FCS
    can be made for the changed frame, so it goes out as it came, 3054 bytes over an MTU of 1500:
    reported ("FCS not made") and counted over the MTU, by segment and in inspect's preview."""
    path = _damaged_fcs_pcap(tmp / "in.pcap", tcp4_super(3000, partial=False))
    args = ("--engine", engine, "--device", "tso", "--action", "push-vlan:7:0:8021q")
    _, summary = run_json("segment", *args, path, tmp / "out.pcap")
    assert _scapy_records(tmp / "out.pcap") == _scapy_records(path)
    assert [report["kind"] for report in summary["reports"]] == ["FCS not made"]
    assert summary["outcomes"]["not_segmented"] == 1 and summary["over_mtu_not_segmented"] == 1
    _, report = run_json("inspect", *args, path)
    assert report["segment"]["outcomes"] == summary["outcomes"]
    assert report["segment"]["over_mtu_not_segmented"] == 1
