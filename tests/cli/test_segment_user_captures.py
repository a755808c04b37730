"""``softgso segment`` on captures as users really have them, decoded afterwards by Scapy.

A capture taken on the sending host: TCP super-packets whose checksum field holds the
CHECKSUM_PARTIAL seed, IPv4 tot_len 0 (BIG TCP), IPv6 BIG TCP jumbograms (with and without the
hop-by-hop jumbo option), among ARP, ICMP, UDP and pure ACKs that must pass unchanged; in every
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
    MIXED_UNCHANGED,
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
    for index in MIXED_UNCHANGED:
        assert bytes(inputs[index]) in output_bytes, f"input packet {index}"
    assert bytes(outputs[0]) == bytes(inputs[0])  # ARP first, as in the input


def test_summary_says_partial_checksums_were_found_and_output_is_complete(
        segmented: tuple[str, Path, Path, dict]) -> None:
    _, _, _, summary = segmented
    assert summary["input_checksums"]["partial"] == 5
    assert summary["partial_checksums_out"] == 0
    assert summary["outcomes"]["segmented"] == 4
    assert summary["records_in"] == 10 and summary["reports"] == [] and summary["input_errors"] == []


def test_every_record_lands_in_exactly_one_outcome(segmented: tuple[str, Path, Path, dict]) -> None:
    _, _, _, summary = segmented
    # 4 super-packets cut; the 1068-byte TCP packet with a seed sent as one, its checksum completed;
    # ARP, the two ACKs, ICMP and the small UDP datagram need nothing; on every link type
    assert summary["outcomes"] == {"segmented": 4, "whole": 0, "changed": 1, "unchanged": len(MIXED_UNCHANGED),
                                   "refused": 0, "not_segmented": 0}
    assert sum(summary["outcomes"].values()) == summary["records_in"]
    assert summary["over_mtu_not_segmented"] == 0


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


def _label(frame: bytes) -> bytes:
    return frame[:12] + b"\x88\x47" + struct.pack("!I", (100 << 12) | 0x100 | 64) + frame[14:]


def _qinq(frame: bytes) -> bytes:
    return frame[:12] + b"\x88\xa8\x00\x05\x81\x00\x00\x06" + frame[12:]


@pytest.mark.parametrize(("name", "size", "wrap", "ip6", "labels"), [
    ("no longer than GRO_LEGACY_MAX_SIZE", 30000, lambda f: f, 14, 0),
    ("behind a second in-band tag", 70000, _qinq, 22, 0),
])
def test_a_jumbo_header_the_segments_keep_counts_in_the_derived_gso_size(
        tmp_path: Path, name: str, size: int, wrap, ip6: int, labels: int) -> None:
    # ipv6_has_hopopt_jumbo: the header is removed only from an IPv6 packet over 65536 bytes whose
    # skb->protocol is IPv6 (not under an in-band tag); elsewhere every segment carries it (8 bytes of
    # header) and the segments must still fit the MTU
    from cli_captures import tcp6_jumbogram
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop

    source = write_pcap(tmp_path / "in.pcap", [wrap(tcp6_jumbogram(size))])
    out = tmp_path / "out.pcap"
    result, summary = run_json("segment", source, out)
    assert result.exit_code == 0 and summary["outcomes"]["segmented"] == 1, name
    packets = read_packets(out)
    sizes = [len(p) for p in packets]
    assert sizes[:-1] == [ip6 - labels + MTU] * (len(sizes) - 1)  # the MTU counts labels, not tags
    assert len(sizes) == -(-size // (MTU - labels - 40 - 8 - 20))
    for packet in packets:
        assert IPv6ExtHdrHopByHop in packet
        assert packet[IPv6].plen == len(packet) - ip6 - 40


def test_a_jumbogram_under_a_label_loses_its_jumbo_header_the_kernels_way(tmp_path: Path) -> None:
    # under labels the kernel removes the jumbo header too, moving bytes from the MAC header that
    # mpls_gso_segment has put on the IPv6 header (kernel vectors s3410_008/_052_big_packets). 6.1
    # moves ETH_HLEN + 40 bytes: the jumbo header and the first 6 bytes of TCP land over the TCP
    # header, whose data offset is now the old sequence number's top byte (0 here): refused, as the
    # 6.1 kernel refuses s3411_006_big_packets
    from cli_captures import tcp6_jumbogram
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6

    frame = _label(tcp6_jumbogram(70000))
    source = write_pcap(tmp_path / "in.pcap", [frame])
    result, summary = run_json("segment", source, tmp_path / "out61.pcap")
    assert summary["outcomes"]["refused"] == 1
    assert "data offset 0" in summary["reports"][0]["reason"]
    # 6.2 on move the MAC header to the IPv6 header's end: the IPv6 and TCP headers come out whole,
    # but each segment starts 8 bytes into the frame (the Ethernet header's last 6 bytes, the label,
    # then the first 8 bytes of the original IPv6 header)
    out = tmp_path / "out612.pcap"
    result, summary = run_json("segment", source, out, "--kernel", "6.12")
    assert result.exit_code == 0 and summary["outcomes"]["segmented"] == 1
    raw = [bytes(p) for p in read_packets(out)]
    mss = MTU - 4 - 40 - 8 - 20  # the derived gso_size still counts the jumbo header
    assert len(raw) == -(-70000 // mss)
    for index, segment in enumerate(raw):
        assert segment[:18] == frame[8:26]  # Ethernet tail, label, the old IPv6 header's first 8 bytes
        packet = IPv6(segment[18:])
        assert packet.nh == 6 and packet.plen == len(segment) - 18 - 40
        assert packet[TCP].seq == 5000 + index * mss


def test_inspect_counts_ipv4_tot_len_not_matching_the_frame(tmp_path: Path) -> None:
    from cli_captures import tcp4_super, with_ipv4_tot_len

    frames = [with_ipv4_tot_len(tcp4_super(30000), 0xFFFF), with_ipv4_tot_len(tcp4_super(5000, seq=1_030_000), 1500)]
    _, report = run_json("inspect", write_pcap(tmp_path / "in.pcap", frames))
    assert report["ipv4_tot_len_mismatch"] == 2


def test_ipv4_tot_len_claiming_more_than_the_frame_holds_is_reported_and_passed_through(tmp_path: Path) -> None:
    from cli_captures import tcp4_super, with_ipv4_tot_len

    frame = with_ipv4_tot_len(tcp4_super(30000), 0xFFFF)  # 30052 bytes of IP, tot_len claims 65535
    source, out = write_pcap(tmp_path / "in.pcap", [frame]), tmp_path / "out.pcap"
    result, summary = run_json("segment", source, out)
    assert result.exit_code == 0
    assert summary["outcomes"]["not_segmented"] == 1 and summary["over_mtu_not_segmented"] == 1
    assert [(r["frame"], r["kind"]) for r in summary["reports"]] == [
        (1, "lengths contradict (capture check, not the kernel's)")]
    assert [bytes(p) for p in read_packets(out)] == [frame]
    assert run_cli("segment", source, out, "--strict", "-q").exit_code == 1


def test_more_than_a_trailer_behind_an_ip_packet_over_the_mtu_is_reported_and_passed_through(tmp_path: Path) -> None:
    from cli_captures import tcp4_super, with_ipv4_tot_len

    frame = with_ipv4_tot_len(tcp4_super(5000, seq=1_030_000), 1500)  # a 1500-byte IP packet in a 5066-byte frame
    behind = len(frame) - 14 - 1500
    assert behind > 64
    source, out = write_pcap(tmp_path / "in.pcap", [frame]), tmp_path / "out.pcap"
    result, summary = run_json("segment", source, out)
    assert result.exit_code == 0
    assert summary["outcomes"]["not_segmented"] == 1 and summary["over_mtu_not_segmented"] == 1
    assert [(r["frame"], r["kind"]) for r in summary["reports"]] == [
        (1, "bytes behind the IP packet (capture check, not the kernel's)")]
    assert f"{behind} bytes behind the IP packet" in summary["reports"][0]["reason"]
    assert [bytes(p) for p in read_packets(out)] == [frame]


def test_lengths_contradicting_a_frame_under_the_mtu_pass_through_unreported(tmp_path: Path) -> None:
    from cli_captures import ack4, with_ipv4_tot_len

    frame = with_ipv4_tot_len(ack4(), 1000)  # claims 1000 bytes of IP in a frame of 66: nothing to segment
    source, out = write_pcap(tmp_path / "in.pcap", [frame]), tmp_path / "out.pcap"
    result, summary = run_json("segment", source, out)
    assert result.exit_code == 0
    assert summary["outcomes"]["unchanged"] == 1 and summary["reports"] == []
    assert [bytes(p) for p in read_packets(out)] == [frame]


def test_a_udp_length_disagreeing_with_the_ip_payload_is_reported_even_with_gso_metadata(tmp_path: Path) -> None:
    from cli_captures import udp4

    frame = bytearray(udp4(3000))
    struct.pack_into("!H", frame, 14 + 20 + 4, 8 + 2000)  # the UDP length says 2000 bytes of the 3000
    source, out = write_pcap(tmp_path / "in.pcap", [bytes(frame)]), tmp_path / "out.pcap"
    result, summary = run_json("segment", source, out, "--udp-gso", "udp_l4")
    assert result.exit_code == 0
    assert summary["outcomes"]["not_segmented"] == 1 and summary["over_mtu_not_segmented"] == 1
    assert [(r["frame"], r["kind"]) for r in summary["reports"]] == [
        (1, "lengths contradict (capture check, not the kernel's)")]
    assert [bytes(p) for p in read_packets(out)] == [bytes(frame)]


def test_a_udp_datagram_over_the_mtu_without_gso_metadata_is_reported_not_guessed(tmp_path: Path) -> None:
    from cli_captures import udp4

    frame = udp4(3000)
    source, out = write_pcap(tmp_path / "in.pcap", [frame]), tmp_path / "out.pcap"
    result, summary = run_json("segment", source, out)
    assert result.exit_code == 0
    assert summary["outcomes"]["not_segmented"] == 1 and summary["over_mtu_not_segmented"] == 1
    assert [(r["frame"], r["kind"]) for r in summary["reports"]] == [
        (1, "UDP datagram over the MTU without GSO metadata")]
    assert [bytes(p) for p in read_packets(out)] == [frame]
    assert run_cli("segment", source, out, "--strict", "-q").exit_code == 1


def test_a_udp_datagram_over_the_mtu_with_uso_metadata_is_segmented(tmp_path: Path) -> None:
    from cli_captures import udp4

    source, out = write_pcap(tmp_path / "in.pcap", [udp4(3000)]), tmp_path / "out.pcap"
    result, summary = run_json("segment", source, out, "--udp-gso", "udp_l4")
    assert result.exit_code == 0 and summary["reports"] == []
    assert summary["outcomes"]["segmented"] == 1
    packets = read_packets(out)
    assert len(packets) == -(-3000 // (MTU - 20 - 8))  # USO: datagrams of gso_size = MTU - IPv4 - UDP header
    for packet in packets:
        assert_on_the_wire(packet, MTU)


TRAILER = bytes.fromhex("deadbeef")  # 4 bytes behind the IP packet, as an FCS a capture kept


def test_a_short_trailer_behind_a_super_packet_is_not_payload(tmp_path: Path) -> None:
    from cli_captures import payload, tcp4_super

    source, out = write_pcap(tmp_path / "in.pcap", [tcp4_super(20000) + TRAILER]), tmp_path / "out.pcap"
    result, summary = run_json("segment", source, out)
    assert result.exit_code == 0 and summary["reports"] == []
    assert summary["outcomes"]["segmented"] == 1
    packets = read_packets(out)
    for packet in packets:
        assert_on_the_wire(packet, MTU)
    assert tcp_payload_by_flow(packets)[("192.0.2.1", 40000)] == payload(20000)
    # segmented from the IP packet: the segments hold its headers and payload, not one trailer byte
    gso_size = MTU - 20 - 32  # IPv4 header, TCP header with timestamps
    segments = -(-20000 // gso_size)
    assert len(packets) == segments
    assert sum(len(bytes(p)) for p in packets) == segments * (14 + 20 + 32) + 20000


def test_a_frame_sent_as_one_keeps_its_trailer(tmp_path: Path) -> None:
    from cli_captures import tcp4_super

    frame = tcp4_super(1000)  # under the MTU, its checksum field the seed: completed as the NIC would
    source, out = write_pcap(tmp_path / "in.pcap", [frame + TRAILER]), tmp_path / "out.pcap"
    result, summary = run_json("segment", source, out)
    assert result.exit_code == 0 and summary["outcomes"]["changed"] == 1
    (written,) = [bytes(p) for p in read_packets(out)]
    assert len(written) == len(frame) + len(TRAILER) and written.endswith(TRAILER)
    assert_on_the_wire(read_packets(out)[0].__class__(written[:-len(TRAILER)]), MTU)


def test_a_long_sending_host_capture_is_valid_on_the_wire(tmp_path: Path) -> None:
    # long enough for any bulk path the streaming code takes on runs of similar packets
    source = write_pcap(tmp_path / "in.pcap", mixed_capture() * 40)
    out = tmp_path / "out.pcap"
    result, summary = run_json("segment", source, out)
    assert result.exit_code == 0
    assert summary["records_in"] == 400 and summary["outcomes"]["segmented"] == 160
    assert summary["input_checksums"]["partial"] == 200 and summary["partial_checksums_out"] == 0
    packets = read_packets(out)
    assert len(packets) == summary["records_out"]
    for packet in packets[::7]:
        assert_on_the_wire(packet, MTU)


@pytest.mark.parametrize("engine", ["compiled", "scalar"])
def test_segments_over_the_mtu_at_a_given_gso_size_are_noted_in_the_summary(tmp: Path, engine: str) -> None:
    # --gso-size 2000 at MTU 1500: the kernel cuts 2000-byte segments; each record so cut is noted
    from scapy.all import IP, TCP, Ether, Raw  # type: ignore[attr-defined]

    from softgso.job import SEGMENTS_OVER_MTU

    frames = [bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=1, dport=2, seq=5000 * n, flags="A")
                    / Raw(bytes(5000))) for n in range(3)]
    source, out = tmp / "in.pcap", tmp / "out.pcap"
    write_pcap(source, frames)
    result, summary = run_json("segment", source, out, "--gso-size", "2000", "--engine", engine)
    assert result.exit_code == 0
    assert summary["notes"] == {SEGMENTS_OVER_MTU: 3}
    assert summary["outcomes"]["segmented"] == 3 and summary["records_out"] == 9
    assert sorted(len(p[TCP].payload) for p in read_packets(out)) == [1000] * 3 + [2000] * 6
    result = run_cli("segment", source, out, "--gso-size", "2000", "--engine", engine)
    assert f"note: {SEGMENTS_OVER_MTU}: 3 records" in result.stderr
