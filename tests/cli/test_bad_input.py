"""Bad input through the CLI: a clear message naming the packet index and the reason; nothing
silently dropped; exit status as cli.py documents (1 reported under --strict, 3 unreadable input)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from cli_captures import mixed_capture, tcp4_super, write_pcap, write_pcapng
from conftest import run_cli, run_json
from scapy_check import read_packets

# virtio_net_hdr: NEEDS_CSUM, gso_type TCPV6, hdr_len 54, gso_size 1448, csum_start 34, csum_offset 16
TCPV6_HEADER_FOR_IPV4 = "01043600a80522001000"


def _record_offsets(path: Path) -> list[int]:
    raw, offsets, at = path.read_bytes(), [], 24
    while at < len(raw):
        offsets.append(at)
        at += 16 + struct.unpack_from("<I", raw, at + 8)[0]
    return offsets


def test_truncated_file_names_the_record_and_keeps_every_packet_before_it(tmp_path: Path) -> None:
    frames = mixed_capture()
    source = write_pcap(tmp_path / "in.pcap", frames)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(source.read_bytes()[: _record_offsets(source)[3] + 1000])
    whole_three = tmp_path / "three.pcap"
    write_pcap(whole_three, frames[:3])
    out, expected = tmp_path / "out.pcap", tmp_path / "expected.pcap"
    result = run_cli("segment", cut, out, "-q")
    assert result.exit_code == 3
    assert "frame 4" in result.stderr and "cut short" in result.stderr
    assert run_cli("segment", whole_three, expected, "-q").exit_code == 0
    assert out.read_bytes() == expected.read_bytes()
    assert not list(tmp_path.glob("*.tmp"))


def test_broken_record_length_names_the_record(tmp_path: Path) -> None:
    source = write_pcap(tmp_path / "in.pcap", mixed_capture())
    broken = bytearray(source.read_bytes())
    struct.pack_into("<I", broken, _record_offsets(source)[2] + 8, 0x7FFFFFFF)
    (tmp_path / "broken.pcap").write_bytes(bytes(broken))
    for command in (["segment", tmp_path / "broken.pcap", tmp_path / "out.pcap"], ["inspect", tmp_path / "broken.pcap"]):
        result = run_cli(*command)
        assert result.exit_code == 3, command
        assert "frame 3" in result.stderr


def test_inspect_reports_what_it_read_before_a_truncation(tmp_path: Path) -> None:
    source = write_pcap(tmp_path / "in.pcap", mixed_capture())
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(source.read_bytes()[: _record_offsets(source)[3] + 1000])
    result, report = run_json("inspect", cut)
    assert result.exit_code == 3
    assert report["records"] == 3 and "frame 4" in report["read_error"]


@pytest.mark.parametrize("engine", ["auto", "scalar"])
def test_inspect_s_json_names_the_break_as_segment_s_does(tmp_path: Path, engine: str) -> None:
    """input_errors, as in segment's and the actions' JSON: the frame the reading stopped at, from 1."""
    source = write_pcap(tmp_path / "in.pcap", mixed_capture())
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(source.read_bytes()[: _record_offsets(source)[3] + 1000])
    _, whole = run_json("inspect", source, "--engine", engine)
    assert whole["input_errors"] == []
    result, report = run_json("inspect", cut, "--engine", engine)
    _, segmented = run_json("segment", cut, tmp_path / "out.pcap", "--engine", engine)
    assert result.exit_code == 3 and [e["frame"] for e in report["input_errors"]] == [4]
    assert report["input_errors"] == segmented["input_errors"]


def test_not_a_capture_is_an_input_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture file at all")
    for command in (["segment", junk, tmp_path / "o.pcap"], ["inspect", junk], ["diff", junk, junk]):
        result = run_cli(*command)
        assert result.exit_code == 3, command
        assert "neither pcap nor pcapng" in result.stderr


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    for command in (["segment", tmp_path / "nope.pcap", tmp_path / "o.pcap"], ["inspect", tmp_path / "nope.pcap"]):
        result = run_cli(*command)
        assert result.exit_code == 3 and "nope.pcap" in result.stderr


REFUSED = "refused by the kernel's checks"


def test_headers_contradicting_the_gso_metadata_are_reported_and_passed_through(tmp_path: Path) -> None:
    source = write_pcap(tmp_path / "in.pcap", mixed_capture())
    out = tmp_path / "out.pcap"
    result = run_cli("segment", source, out, "--vnet-hdr", TCPV6_HEADER_FOR_IPV4, "-q")
    assert result.exit_code == 0
    # one line per kind of report, naming the first frame (numbered from 1) and its reason: frame 1 is
    # the 42-byte ARP request, shorter than the header's hdr_len 54 (virtio_net_hdr_to_skb refuses it)
    assert (f"softgso: {REFUSED}: " in result.stderr and " records passed through unchanged (first: frame 1: "
            "packet_snd/tun_get_user: hdr_len 54 is longer than the 42-byte packet (kernel: -EINVAL))"
            in result.stderr)
    # nothing lost: one record out per record in, the refused ones byte-identical
    inputs, outputs = read_packets(source), read_packets(out)
    assert len(outputs) == len(inputs)
    assert bytes(outputs[1]) == bytes(inputs[1]) and bytes(outputs[3]) == bytes(inputs[3])
    assert run_cli("segment", source, out, "--vnet-hdr", TCPV6_HEADER_FOR_IPV4, "--strict", "-q").exit_code == 1


def test_each_refused_record_is_reported_with_its_frame_and_the_check(tmp_path: Path) -> None:
    source = write_pcap(tmp_path / "in.pcap", mixed_capture())
    _, summary = run_json("segment", source, tmp_path / "out.pcap", "--vnet-hdr", TCPV6_HEADER_FOR_IPV4)
    reasons = {r["frame"]: r["reason"] for r in summary["reports"] if r["kind"] == REFUSED}
    for frame in (2, 4):  # the IPv4 TCP super-packets (records 1 and 3) under a TCPV6 header
        assert reasons[frame].startswith("tcp4_gso_segment: gso_type"), reasons
        assert reasons[frame].endswith("lacks TCPV4 on an IPv4 packet (kernel: -EINVAL)"), reasons


def test_summary_counts_refused_packets(tmp_path: Path) -> None:
    source = write_pcap(tmp_path / "in.pcap", mixed_capture())
    result, summary = run_json("segment", source, tmp_path / "out.pcap", "--vnet-hdr", TCPV6_HEADER_FOR_IPV4)
    refused = [r for r in summary["reports"] if r["kind"] == REFUSED]
    assert summary["outcomes"]["refused"] == len(refused) > 0
    assert {r["frame"] for r in refused} >= {2, 4}
    assert summary["report_kinds"] == [{"kind": REFUSED, "count": len(refused), "first_frame": refused[0]["frame"],
                                        "first_reason": refused[0]["reason"]}]
    assert summary["input_errors"] == []


def test_inspect_counts_records_of_an_unknown_link_type(tmp_path: Path) -> None:
    source = write_pcap(tmp_path / "in.pcap", mixed_capture()[:3], linktype=147)
    result, report = run_json("inspect", source)
    assert result.exit_code == 0
    assert report["not_ethernet"] == {"link type 147": 3}
    assert report["segment"]["records_out"] == 3


def test_unknown_link_type_is_passed_through_and_reported(tmp_path: Path) -> None:
    frames = mixed_capture()[:4]
    # records 0 and 2 on an Ethernet interface, 1 and 3 (frames 2 and 4) on one of link type 147
    source = write_pcapng(tmp_path / "in.pcapng", [(1, "eth0"), (147, "user0")],
                          [(i % 2, f, None) for i, f in enumerate(frames)])
    out = tmp_path / "out.pcapng"
    result = run_cli("segment", source, out, "-q")
    assert result.exit_code == 0
    assert ("softgso: link type 147 not segmented: 2 records passed through unchanged (first: frame 2: "
            in result.stderr)
    # the ARP and the ACK need nothing; the two super-packets of link type 147 pass through as they came
    assert [bytes(p) for p in read_packets(out)] == frames
    assert run_cli("segment", source, out, "--strict", "-q").exit_code == 1


def test_snapped_records_are_passed_through_and_reported(tmp_path: Path) -> None:
    frames = mixed_capture()[:3]
    snapped = [frames[0], frames[1][:200], frames[2]]
    source = write_pcap(tmp_path / "in.pcap", snapped, orig_lens=[len(f) for f in frames])
    out = tmp_path / "out.pcap"
    result = run_cli("segment", source, out, "-q")
    assert result.exit_code == 0
    assert (f"softgso: snapped record: 1 record passed through unchanged (first: frame 2: snapped record (200 of "
            f"{len(frames[1])} bytes)") in result.stderr
    assert [bytes(p) for p in read_packets(out)] == snapped
    assert run_cli("segment", source, out, "--strict", "-q").exit_code == 1


def test_a_pcap_of_another_major_version_is_refused_by_every_engine(tmp_path: Path) -> None:
    """A version-1.4 header (libpcap refuses any major but 2, as the pcap draft says a new major is
    a layout an old reader cannot read): exit 3 naming the version, never the header written back."""
    source = write_pcap(tmp_path / "in.pcap", mixed_capture() + [tcp4_super()])
    content = bytearray(source.read_bytes())
    struct.pack_into("<HH", content, 4, 1, 4)
    odd = tmp_path / "odd.pcap"
    odd.write_bytes(bytes(content))
    for engine in ("auto", "numpy", "scalar"):
        out = tmp_path / f"out-{engine}.pcap"
        result = run_cli("segment", odd, out, "-q", "--engine", engine)
        assert result.exit_code == 3
        assert "unsupported pcap version 1.4" in result.stderr and str(odd) in result.stderr
        assert not out.exists()
    for command in (("inspect", odd), ("coalesce", odd, tmp_path / "c.pcap"), ("diff", odd, source)):
        result = run_cli(*command)
        assert result.exit_code == 3 and "unsupported pcap version 1.4" in result.stderr


def test_strict_exits_1_on_a_record_not_segmented_as_its_help_says(tmp_path: Path) -> None:
    """--strict is about every reported record, not only those the kernel's checks refuse: a UDP datagram
    over the MTU without GSO metadata, passed through and reported, is exit status 1 too."""
    from cli_captures import udp4

    source = write_pcap(tmp_path / "in.pcap", [udp4(3000)])
    result, report = run_json("segment", source, tmp_path / "out.pcap")
    assert result.exit_code == 0 and report["outcomes"]["not_segmented"] == 1 and report["outcomes"]["refused"] == 0
    assert run_cli("segment", source, tmp_path / "out.pcap", "-q", "--strict").exit_code == 1
    options = run_cli("segment", "--help").stdout.split("\nOptions:", 1)[1]
    strict_help = " ".join(options.split("--strict", 1)[1].split("--json")[0].split())
    assert "any record is reported" in strict_help and "not segmented" in strict_help
