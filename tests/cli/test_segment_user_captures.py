"""``softgso segment`` on captures as users really have them, decoded afterwards by Scapy.

A capture taken on the sending host: TCP super-packets whose checksum field holds the
CHECKSUM_PARTIAL seed, IPv4 tot_len 0 (BIG TCP), IPv6 BIG TCP jumbograms (with and without the
hop-by-hop jumbo option), among ARP, ICMP, UDP and pure ACKs that must pass untouched; in every
container a user's tcpdump writes: classic pcap in both byte orders and both resolutions, pcapng
with several interfaces and comments, Linux cooked v1 and v2.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from cli_captures import (
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    MIXED_FLOW_PAYLOADS,
    MIXED_UNTOUCHED,
    mixed_capture,
    sll,
    sll2,
    write_pcap,
    write_pcapng,
)
from conftest import run_cli, run_json
from scapy_check import assert_on_the_wire, read_packets, tcp_payload_by_flow

MTU = 1500


def _pcap_header(path: Path) -> tuple[bytes, int]:
    raw = path.read_bytes()[:24]
    order = "<" if raw[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    return raw[:4], struct.unpack(order + "I", raw[20:24])[0]


CONTAINERS = {
    "pcap-le-usec": lambda p, f: write_pcap(p, f),
    "pcap-be-usec": lambda p, f: write_pcap(p, f, big_endian=True),
    "pcap-le-nsec": lambda p, f: write_pcap(p, f, nano=True),
    "pcap-be-nsec": lambda p, f: write_pcap(p, f, big_endian=True, nano=True),
    "pcap-sll": lambda p, f: write_pcap(p, [sll(x) for x in f], linktype=LINKTYPE_LINUX_SLL),
    "pcap-sll2": lambda p, f: write_pcap(p, [sll2(x) for x in f], linktype=LINKTYPE_LINUX_SLL2),
    "pcapng-3-interfaces": lambda p, f: write_pcapng(
        p, [(1, "eth0"), (LINKTYPE_LINUX_SLL, "any"), (LINKTYPE_LINUX_SLL2, "any2")],
        [(i % 3, (x, sll(x), sll2(x))[i % 3], f"packet {i}" if i % 2 else None) for i, x in enumerate(f)]),
}


@pytest.fixture(params=sorted(CONTAINERS))
def segmented(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path, Path, dict]:
    name = request.param
    suffix = ".pcapng" if name.startswith("pcapng") else ".pcap"
    source = CONTAINERS[name](tmp_path / f"in{suffix}", mixed_capture())
    out = tmp_path / f"out{suffix}"
    result, summary = run_json("segment", source, out)
    assert result.exit_code == 0, result.stderr
    return name, source, out, summary


def test_every_output_packet_is_valid_on_the_wire(segmented: tuple[str, Path, Path, dict]) -> None:
    _, _, out, _ = segmented
    packets = read_packets(out)
    assert len(packets) > len(mixed_capture())
    for packet in packets:
        assert_on_the_wire(packet, MTU)


def test_payload_reassembles_exactly_per_flow(segmented: tuple[str, Path, Path, dict]) -> None:
    _, _, out, _ = segmented
    flows = tcp_payload_by_flow(read_packets(out))
    for flow, expected in MIXED_FLOW_PAYLOADS.items():
        assert flows[flow] == expected, flow


def test_ordinary_packets_pass_through_byte_identical(segmented: tuple[str, Path, Path, dict]) -> None:
    _, source, out, _ = segmented
    inputs, outputs = read_packets(source), read_packets(out)
    output_bytes = [bytes(p) for p in outputs]
    for index in MIXED_UNTOUCHED:
        assert bytes(inputs[index]) in output_bytes, f"input packet {index}"
    assert bytes(outputs[0]) == bytes(inputs[0])  # ARP first, as in the input


def test_summary_says_partial_checksums_were_found_and_output_is_complete(
        segmented: tuple[str, Path, Path, dict]) -> None:
    _, _, _, summary = segmented
    assert summary["input_checksums"]["partial"] == 5
    assert summary["partial_checksums_out"] == 0
    assert summary["outcomes"]["segmented"] == 4
    assert summary["packets_in"] == 10 and summary["errors"] == []


def test_output_keeps_the_input_container(segmented: tuple[str, Path, Path, dict]) -> None:
    name, source, out, _ = segmented
    if name.startswith("pcapng"):
        assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
        packets = read_packets(out)
        assert {p.sniffed_on for p in packets} == {"eth0", "any", "any2"}
        assert [p.comments for p in packets if p.comments][0] == [b"packet 1"]
    else:
        assert _pcap_header(out) == _pcap_header(source)


def test_tot_len_zero_and_jumbograms_are_reported_by_inspect(tmp_path: Path) -> None:
    source = write_pcap(tmp_path / "in.pcap", mixed_capture())
    result, report = run_json("inspect", source)
    assert result.exit_code == 0
    assert report["ipv4_tot_len_zero"] == 1
    assert report["ipv6_jumbograms"] == 1
    assert report["ipv6_payload_len_zero"] == 1
    assert report["l4_checksums"]["partial"] == 5
    assert report["non_ip"] == {"ARP": 1} and report["other_ip_protocols"] == {"ICMP": 1}
    assert report["segment"]["outcomes"]["segmented"] == 4


def test_derived_gso_size_ignores_the_jumbo_hop_by_hop_header(tmp_path: Path) -> None:
    # the hop-by-hop jumbo header is removed before segmenting: segments fill the MTU
    from cli_captures import tcp6_jumbogram

    source = write_pcap(tmp_path / "in.pcap", [tcp6_jumbogram(70000)])
    out = tmp_path / "out.pcap"
    assert run_cli("segment", source, out, "-q").exit_code == 0
    sizes = [len(p) for p in read_packets(out)]
    assert sizes[:-1] == [14 + MTU] * (len(sizes) - 1)
    assert len(sizes) == -(-70000 // (MTU - 40 - 20))


def test_ipv4_tot_len_not_matching_the_frame_is_segmented_from_the_frame(tmp_path: Path) -> None:
    from cli_captures import payload, tcp4_super, with_ipv4_tot_len

    frames = [with_ipv4_tot_len(tcp4_super(30000), 0xFFFF), with_ipv4_tot_len(tcp4_super(5000, seq=1_030_000), 1500)]
    source = write_pcap(tmp_path / "in.pcap", frames)
    out = tmp_path / "out.pcap"
    result, report = run_json("inspect", source)
    assert report["ipv4_tot_len_mismatch"] == 2
    assert run_cli("segment", source, out, "-q").exit_code == 0
    packets = read_packets(out)
    for packet in packets:
        assert_on_the_wire(packet, MTU)
    assert tcp_payload_by_flow(packets)[("192.0.2.1", 40000)] == payload(30000) + payload(5000)


def test_a_long_sending_host_capture_is_valid_on_the_wire(tmp_path: Path) -> None:
    # long enough for any bulk path the streaming code takes on runs of similar packets
    source = write_pcap(tmp_path / "in.pcap", mixed_capture() * 40)
    out = tmp_path / "out.pcap"
    result, summary = run_json("segment", source, out)
    assert result.exit_code == 0
    assert summary["packets_in"] == 400 and summary["outcomes"]["segmented"] == 160
    assert summary["input_checksums"]["partial"] == 200 and summary["partial_checksums_out"] == 0
    packets = read_packets(out)
    assert len(packets) == summary["packets_out"]
    for packet in packets[::7]:
        assert_on_the_wire(packet, MTU)
