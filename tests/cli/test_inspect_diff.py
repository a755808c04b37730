"""``softgso inspect`` and ``softgso diff`` end to end, and the diff's decoder checked against Scapy."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from cli_captures import mixed_capture, tcp4_super, write_pcap
from conftest import run_cli, run_json
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, IPOption_LSRR
from scapy.layers.l2 import Ether
from scapy_check import read_packets

from softgso.check.capdiff import compare_frames, decode_fields

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "mpls_tcp_super.pcap"
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "kernel" / "cases"


# --- inspect -------------------------------------------------------------------------------------


def test_inspect_sample_counts_what_the_sample_holds() -> None:
    result, report = run_json("inspect", SAMPLE, "--device", "nic-tso-no-mpls-gso")
    assert result.exit_code == 0
    assert report["records"] == 9
    assert report["super_packets_over_mtu"] == 4
    assert report["label_stacks"] == {"100": 1, "200/100": 1, "16": 1, "300": 1}
    assert report["non_ip"] == {"ARP": 1}
    assert report["l4_checksums"] == {"complete": 3, "partial": 4, "seed-nolen": 0, "zero": 1, "invalid": 0}
    assert report["segment"]["outcomes"]["segmented"] == 4


def test_inspect_predicts_exactly_what_segment_writes(tmp_path: Path) -> None:
    for args in ([], ["--action", "push-mpls:100:0:64:uc", "--mtu", "1400"], ["--device", "tso"]):
        _, report = run_json("inspect", SAMPLE, *args)
        out = tmp_path / "out.pcap"
        _, summary = run_json("segment", SAMPLE, out, *args)
        assert report["segment"]["records_out"] == summary["records_out"] == len(read_packets(out)), args
        assert report["segment"]["bytes_out"] == summary["bytes_out"], args
        assert report["segment"]["outcomes"] == summary["outcomes"], args


def test_inspect_counts_an_ethernet_pseudowire_under_labels_as_mpls_not_undecodable(tmp_path: Path) -> None:
    # label 16 with S set, then a pseudowire control word (first nibble 0, RFC 4385) and an Ethernet frame
    inner = bytes(6) + bytes.fromhex("020000000001") + b"\x08\x06" + bytes(28)
    frame = bytes.fromhex("020000000002" "020000000001" "8847") + struct.pack("!I", 16 << 12 | 1 << 8 | 64) + \
        bytes(4) + inner
    path = write_pcap(tmp_path / "pw.pcap", [frame])
    for engine in ("auto", "scalar"):
        result, report = run_json("inspect", path, "--engine", engine)
        assert result.exit_code == 0
        assert report["label_stacks"] == {"16": 1}
        assert report["non_ip"] == {"MPLS (payload neither IPv4 nor IPv6)": 1}
        assert report["undecodable"] == 0 and report["reports"] == []


def test_inspect_sums_a_source_routed_frames_checksum_over_the_routes_last_address(tmp_path: Path) -> None:
    frames = [bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.5", options=[IPOption_LSRR(routers=["10.0.0.9"])]) /
                    TCP(sport=1, dport=2, seq=100 * n, flags="A") / (b"x" * 100)) for n in range(4)]
    path = write_pcap(tmp_path / "lsrr.pcap", frames)
    for engine in ("auto", "scalar"):  # Scapy summed each over 10.0.0.9, the route's end
        _, report = run_json("inspect", path, "--engine", engine)
        assert report["l4_checksums"]["complete"] == 4, engine


def test_inspect_counts_vlan_tags_and_flows(tmp_path: Path) -> None:
    tagged = tmp_path / "tagged.pcap"
    assert run_cli("push-vlan", SAMPLE, tagged, "--vid", "42", "-q").exit_code == 0
    _, report = run_json("inspect", tagged, "--top", "2")
    assert report["vlan_tags"] == {"802.1Q 42": 9}
    assert len(report["flows_top"]) == 2 and report["flows_total"] == 4
    assert report["flows_top"][0]["src"] == "10.0.0.1" and report["flows_top"][0]["packets"] == 3


def test_inspect_tells_ethernet_padding_from_a_bad_length(tmp_path: Path) -> None:
    ack = bytearray(mixed_capture()[2])  # a 66-byte ACK: make it a 54-byte one padded to 60
    del ack[54:]
    struct.pack_into("!H", ack, 16, 40)
    struct.pack_into("!B", ack, 46, 0x50)
    source = write_pcap(tmp_path / "in.pcap", [bytes(ack) + b"\0" * 6])
    _, report = run_json("inspect", source)
    assert report["ethernet_padding"] == 1 and report["ipv4_tot_len_mismatch"] == 0


def test_inspect_text_report_and_plot(tmp_path: Path) -> None:
    plot = tmp_path / "sizes.png"
    result = run_cli("inspect", SAMPLE, "--plot", plot)
    assert result.exit_code == 0
    for words in ("over MTU 1500", "4 super-packets", "label stacks", "partial: 4", "segment would write", "top flows"):
        assert words in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- diff ----------------------------------------------------------------------------------------


def test_diff_identical_captures_exit_0(tmp_path: Path) -> None:
    result = run_cli("diff", SAMPLE, SAMPLE)
    assert result.exit_code == 0 and "identical: 9 packets" in result.stdout


def test_diff_names_the_fields_that_differ_in_words(tmp_path: Path) -> None:
    case = VECTORS / "ipv4_tcp_2labels"
    ours = tmp_path / "ours.pcap"
    # one label with a TTL of 63 instead of the kernel's two labels
    run_cli("segment", case / "input.pcap", ours, "--vnet-hdr", "01013600a80522001000", "--action",
            "push-mpls:100:0:63:uc", "-q")
    result = run_cli("diff", ours, case / "kernel_out.pcap", "--max", "2")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("frame 1: frame length 1506 != 1510; label[0].label 100 != 200;")
    assert "label[0].ttl 63 != 33" in lines[0] and "label[1] only in B (label 100 tc 0 s 1 ttl 64)" in lines[0]
    assert lines[1].startswith("frame 2: ")
    assert "... and 4 more differing frames" in result.stdout


def test_diff_reports_seq_and_checksum_differences() -> None:
    a = tcp4_super(100, partial=False, seq=1001448)
    b = bytearray(tcp4_super(100, partial=False, seq=1001449))
    b[24:26] = b"\x1c\x2e"
    texts = [d.text() for d in compare_frames(a, bytes(b))]
    assert "TCP seq 1001448 != 1001449" in texts
    assert any(t.startswith("IPv4 checksum 0x") and t.endswith("!= 0x1c2e") for t in texts)


def test_diff_packet_count_difference_and_json(tmp_path: Path) -> None:
    frames = mixed_capture()
    a = write_pcap(tmp_path / "a.pcap", frames)
    b = write_pcap(tmp_path / "b.pcap", frames[:-2])
    result, payload = run_json("diff", a, b, "--pair-by", "position")  # by flow is the default here
    assert result.exit_code == 1
    assert payload["packets_a"] == 10 and payload["packets_b"] == 8 and payload["identical"] == 8
    assert "2 packet(s) only in A (from frame 9)" in payload["count_difference"]


def test_diff_compares_cooked_captures_as_ethernet(tmp_path: Path) -> None:
    from cli_captures import sll

    frames = mixed_capture()
    plain = write_pcap(tmp_path / "plain.pcap", frames)
    cooked = write_pcap(tmp_path / "cooked.pcap", [sll(f) for f in frames], linktype=113)
    result, payload = run_json("diff", plain, cooked)
    # a cooked header keeps no destination MAC: the one field that differs, on every packet
    assert result.exit_code == 1
    assert payload["fields_differing"] == {"Ethernet dst": 10}


# --- the decoder against Scapy -------------------------------------------------------------------


@pytest.mark.parametrize("case", ["ipv4_tcp_qinq_mpls", "ipv6_tcp_vlan_mpls_2labels", "ipv6_udp_ufo", "ipv4_udp_ufo",
                                  "ipv4_tcp_ipopts", "ipv4_udp_uso_socket"])
def test_decoder_agrees_with_scapy(case: str) -> None:
    from scapy.contrib.mpls import MPLS
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Dot1Q

    for packet in read_packets(VECTORS / case / "kernel_out.pcap"):
        fields = decode_fields(bytes(packet)).as_dict()
        vlans = [layer for layer in packet.iterpayloads() if isinstance(layer, Dot1Q)]
        assert [fields[f"vlan[{i}].vid"] for i in range(len(vlans))] == [v.vlan for v in vlans]
        labels = [layer for layer in packet.iterpayloads() if isinstance(layer, MPLS)]
        assert [(fields[f"label[{i}].label"], fields[f"label[{i}].ttl"]) for i in range(len(labels))] == \
            [(m.label, m.ttl) for m in labels]
        if IP in packet:
            assert (fields["IPv4 tot_len"], fields["IPv4 id"], fields["IPv4 checksum"]) == \
                (packet[IP].len, packet[IP].id, packet[IP].chksum)
        if IPv6 in packet:
            assert fields["IPv6 payload_len"] == packet[IPv6].plen
        if TCP in packet:
            assert (fields["TCP seq"], fields["TCP checksum"]) == (packet[TCP].seq, packet[TCP].chksum)
            assert fields["payload length"] == len(bytes(packet[TCP].payload))
        elif UDP in packet and "UDP length" in fields:
            assert (fields["UDP length"], fields["UDP checksum"]) == (packet[UDP].len, packet[UDP].chksum)


@pytest.mark.parametrize("linktype", [113, 276])
def test_inspect_reads_cooked_captures_like_ethernet(tmp_path: Path, linktype: int) -> None:
    from cli_captures import sll, sll2

    frames = mixed_capture()
    plain = write_pcap(tmp_path / "plain.pcap", frames)
    cooked = write_pcap(tmp_path / "cooked.pcap", [(sll if linktype == 113 else sll2)(f) for f in frames],
                        linktype=linktype)
    _, expected = run_json("inspect", plain)
    _, report = run_json("inspect", cooked)
    assert "snapped" not in report["segment"]["outcomes"]
    # the same segments; their bytes are the records' (each with its cooked header, as segment writes it)
    cooked_header = 16 if linktype == 113 else 20
    expected["segment"]["bytes_out"] += (cooked_header - 14) * expected["segment"]["records_out"]
    assert report["segment"] == expected["segment"]
    assert report["bytes"] == expected["bytes"] + (cooked_header - 14) * len(frames)
    assert report["l4_checksums"] == expected["l4_checksums"]
    assert report["ipv6_jumbograms"] == 1 and report["ipv4_tot_len_zero"] == 1


def test_inspect_counts_snapped_records(tmp_path: Path) -> None:
    frames = mixed_capture()[:3]
    source = write_pcap(tmp_path / "in.pcap", [frames[0], frames[1][:200], frames[2]],
                        orig_lens=[len(f) for f in frames])
    _, report = run_json("inspect", source)
    assert report["segment"]["outcomes"]["not_segmented"] == 1
    assert report["segment"]["report_kinds"][0]["kind"] == "snapped record"
    assert report["reports"][0]["frame"] == 2


_FRAMES = st.one_of(st.binary(max_size=200), st.sampled_from(mixed_capture()[:6]).flatmap(
    lambda f: st.integers(0, len(f)).map(lambda n: f[:n])))


@settings(max_examples=300, deadline=None)
@given(_FRAMES, _FRAMES)
def test_diff_never_fails_and_finds_every_byte_difference(a: bytes, b: bytes) -> None:
    decode_fields(a)
    differences = compare_frames(a, b)
    assert (differences == []) == (a == b)


# --- inspect on every link type, snapped records, IPv6 jumbo rules -------------------------------

CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "captures"


@pytest.mark.parametrize(("linktype", "header"), [(228, b""), (101, b""), (0, b"\x02\x00\x00\x00"),
                                                  (108, b"\x00\x00\x00\x02")])
def test_inspect_judges_non_ethernet_links_on_their_l3_size(tmp_path: Path, linktype: int, header: bytes) -> None:
    from cli_captures import ack4

    big, small = tcp4_super(9000, partial=False), ack4()
    source = write_pcap(tmp_path / "in.pcap", [header + big[14:], header + small[14:]], linktype=linktype)
    _, report = run_json("inspect", source)
    assert report["not_ethernet"] == {}
    assert report["super_packets_over_mtu"] == 1
    assert report["largest_l3"] == len(big) - 14
    assert report["segment"]["outcomes"]["segmented"] == 1


@pytest.mark.parametrize(("linktype", "header"), [(1, None), (228, b""), (0, b"\x02\x00\x00\x00"),
                                                  (113, b"\x00\x04\x00\x01\x00\x06" + bytes(8) + b"\x08\x00"),
                                                  (9, b"\xff\x03\x00\x21"), (147, b"")])
@pytest.mark.parametrize("engine", ["auto", "scalar"])
def test_inspect_s_largest_frame_is_the_largest_record_as_captured(tmp_path: Path, linktype: int,
                                                                    header: bytes | None, engine: str) -> None:
    """"largest frame" (and each flow's bytes) measures what "records (N bytes)" measures and tshark shows
    as the frame's length: the record with its own link header (4 bytes for NULL, 16 for SLL, none for raw
    IP), not the Ethernet frame it is read as; records of link types that are not segmented count too."""
    from cli_captures import ack4

    # a flow's super-packets (the later ones counted from their shape's first), the largest last
    frames = [*(tcp4_super(8000 + 100 * n, partial=False, seq=1_000_000 + 9000 * n) for n in range(4)), ack4()]
    records = frames if header is None else [header + frame[14:] for frame in frames]
    source = write_pcap(tmp_path / "in.pcap", records, linktype=linktype)
    _, report = run_json("inspect", source, "--engine", engine)
    assert report["largest_frame"] == max(len(record) for record in records)
    assert report["bytes"] == sum(len(record) for record in records)
    if linktype not in (9, 147):  # (records of a link type not segmented are no flow)
        assert sum(flow["bytes"] for flow in report["flows_top"]) == report["bytes"]  # the flows' bytes too


def test_inspect_judges_unconverted_link_types_on_their_l3_size() -> None:
    from softgso.cli.inspect import CaptureInspector
    from softgso.io import CaptureRecord
    from softgso.io.profile import load_profile
    from softgso.job import SegmentOptions

    ip_packet = tcp4_super(3000, partial=False)[14:]
    inspector = CaptureInspector(SegmentOptions(device=load_profile("no-offload")))
    for index, (linktype, header) in enumerate([(9, b"\xff\x03\x00\x21"), (104, b"\x0f\x00\x08\x00")]):
        data = header + ip_packet
        record = CaptureRecord(index, 0, linktype, data, len(data))
        inspector.add(index, None, linktype=linktype, record_len=len(data), record=record)
    report = inspector.as_dict()
    assert report["super_packets_over_mtu"] == 2 and report["largest_l3"] == len(ip_packet)
    # segment passes them through, reported and counted over the MTU, as it does itself
    assert report["segment"]["outcomes"]["not_segmented"] == 2
    assert report["segment"]["over_mtu_not_segmented"] == 2
    assert [k["kind"] for k in report["segment"]["report_kinds"]] == ["link type 9 not segmented",
                                                                       "link type 104 not segmented"]


def test_inspect_counts_snapped_checksums_as_not_checked(tmp_path: Path) -> None:
    whole = tcp4_super(3000, partial=False)
    source = write_pcap(tmp_path / "in.pcap", [whole[:200]], orig_lens=[len(whole)])
    _, report = run_json("inspect", source)
    assert report["l4_checksums"]["invalid"] == 0
    assert report["l4_checksums"]["snapped, not checked"] == 1
    assert report["ipv4_header_checksums"] == {"valid": 1}  # the IPv4 header itself was kept whole
    assert report["ipv4_tot_len_mismatch"] == 0


def _ipv6_hop_by_hop_frame(options: bytes) -> bytes:
    """Ethernet, IPv6 with payload_len 0, a Hop-by-Hop header holding ``options``, then a UDP header."""
    ipv6 = struct.pack("!IHBB16s16s", 6 << 28, 0, 0, 64, bytes(15) + b"\x01", bytes(15) + b"\x02")
    hop_by_hop = bytes([17, (2 + len(options)) // 8 - 1]) + options
    return bytes(12) + b"\x86\xdd" + ipv6 + hop_by_hop + struct.pack("!HHHH", 1, 2, 8, 0)


def test_inspect_counts_ipv6_jumbo_only_with_the_jumbo_option(tmp_path: Path) -> None:
    padding_only = _ipv6_hop_by_hop_frame(bytes(6))  # six Pad1 options (RFC 8200 4.2)
    # PadN of 2, Jumbo Payload (0xC2, length 4) at 4n+2 as RFC 2675 asks, PadN of 2
    jumbo = _ipv6_hop_by_hop_frame(b"\x01\x02\x00\x00" + b"\xc2\x04" + struct.pack("!I", 24) + b"\x01\x02\x00\x00")
    source = write_pcap(tmp_path / "in.pcap", [padding_only, jumbo])
    _, report = run_json("inspect", source)
    assert report["ipv6_jumbograms"] == 1
    assert report["ipv6_payload_len_zero"] == 1  # "IPv6 payload length 0 without jumbo option"


@pytest.mark.skipif(not CAPTURES.is_dir(), reason="../shared/captures is not here")
def test_inspect_counts_tcpdump_missing_jumbo_option_capture_as_payload_length_0() -> None:
    # ../shared/captures/INDEX.md: "IPv6 plen 0 (no jumbo opt) x1", snapped at 198 bytes
    _, report = run_json("inspect", CAPTURES / "tcpdump" / "ipv6_missing_jumbo_payload_option.pcap")
    assert report["ipv6_jumbograms"] == 0 and report["ipv6_payload_len_zero"] == 1
