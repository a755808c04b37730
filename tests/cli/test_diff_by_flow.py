"""``softgso diff`` before and after (issue 21, part B): frames paired by flow and TCP sequence / UDP
datagram, each frame of A's fate, ``--map``, frames numbered from 1, the progress bar.

The expected fates come from the inputs alone, read with Scapy: a TCP packet whose IP packet
(labels included) is over the MTU is cut into ceil(payload / MSS) frames, MSS being the MTU less the
label stack and the IP and TCP headers; a UDP datagram over the MTU with --udp-gso udp_l4 into
ceil(payload / (MTU - IP header - 8)); any other frame stays one frame, unchanged, or
checksum-completed when its TCP/UDP checksum does not verify (a CHECKSUM_PARTIAL seed).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_captures import mixed_capture, write_pcap
from conftest import run_cli, run_json
from hypothesis import given, settings
from hypothesis import strategies as st

from softgso.check.synth import SuperPacketSpec, build_frame

scapy_all = pytest.importorskip("scapy.all")
from scapy.contrib.mpls import MPLS  # noqa: E402
from scapy.layers.inet import IP, TCP, UDP, IPOption_LSRR  # noqa: E402
from scapy.layers.inet6 import HAO, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrSegmentRouting  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "mpls_tcp_super.pcap"


# --- captures as records, and what the inputs say should become of them -------------------------


def records(path: Path) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """(file header, [(record header, data)]) of a classic little-endian pcap."""
    data = path.read_bytes()
    out, at = [], 24
    while at < len(data):
        caplen = struct.unpack_from("<I", data, at + 8)[0]
        out.append((data[at : at + 16], data[at + 16 : at + 16 + caplen]))
        at += 16 + caplen
    return data[:24], out


def write_records(path: Path, header: bytes, items: list[tuple[bytes, bytes]]) -> Path:
    path.write_bytes(header + b"".join(head + data for head, data in items))
    return path


def l4_checksum_verifies(packet: scapy_all.Packet) -> bool:
    layer = TCP if TCP in packet else UDP
    if layer is UDP and IP in packet and packet[UDP].chksum == 0:
        return True  # UDP over IPv4 without a checksum
    clone = Ether(bytes(packet))
    del clone[layer].chksum
    return bool(Ether(bytes(clone))[layer].chksum == packet[layer].chksum)


def expected_fates(frames: list[bytes], mtu: int = 1500, udp_gso: bool = False) -> list[tuple[str, int]]:
    """(fate, frames of B) for each input frame, from the input's headers (see the module docstring)."""
    out = []
    for frame in frames:
        packet = Ether(frame)
        ip = packet[IP] if IP in packet else packet[IPv6] if IPv6 in packet else None
        if ip is None or (TCP not in packet and UDP not in packet):
            out.append(("unchanged", 1))
            continue
        labels = len([layer for layer in packet.iterpayloads() if isinstance(layer, MPLS)])
        ip_packet_len = 4 * labels + len(bytes(ip))
        ip_header = ip.ihl * 4 if IP in packet else len(bytes(ip)) - len(bytes(ip[TCP if TCP in packet else UDP]))
        if TCP in packet:
            l4_header, payload = packet[TCP].dataofs * 4, len(bytes(packet[TCP].payload))
        else:
            l4_header, payload = 8, len(bytes(packet[UDP].payload))
        if ip_packet_len > mtu and (TCP in packet or udp_gso):
            out.append(("segmented", math.ceil(payload / (mtu - 4 * labels - ip_header - l4_header))))
        else:
            out.append(("unchanged" if l4_checksum_verifies(packet) else "checksum-completed", 1))
    return out


def synthetic_frames() -> list[bytes]:
    """Super-packets and small frames of every shape synth.py builds, checksums complete or seeded."""
    timestamps = b"\x01\x01\x08\x0a" + bytes(range(8))
    dest_options = (60, b"\x01\x04\x00\x00\x00\x00")  # PadN to 8 bytes
    specs = [
        SuperPacketSpec(payload=bytes(range(256)) * 80, ip_options=b"\x01\x01\x01\x00", tcp_options=timestamps),
        SuperPacketSpec(payload=b"\x00" * 40, tcp_flags=0x10, seq=1, ack=20481, sport=5201, dport=40000,
                        partial_checksum=False),
        SuperPacketSpec(ipv6=True, payload=bytes(range(7, 256)) * 36, ipv6_exthdrs=(dest_options,),
                        partial_checksum=False, seq=7),
        SuperPacketSpec(payload=b"v" * 5000, vlan_tags=((0x8100, 42),), seq=90_000),
        SuperPacketSpec(payload=b"small", seq=95_000),  # a seed under the MTU: the device completes it
        SuperPacketSpec(udp=True, payload=b"d" * 100, partial_checksum=False, sport=53000, dport=53),
        SuperPacketSpec(udp=True, payload=bytes(range(256)) * 16, sport=53001, dport=4433),
        SuperPacketSpec(payload=b"", tcp_flags=0x11, seq=100_000),  # FIN, no payload
    ]
    return [build_frame(spec) for spec in specs]


def diff_map(tmp_path: Path, a: Path, b: Path, *options: str) -> tuple[object, dict, dict]:
    """(result, --json report, --map document) of ``softgso diff A B``."""
    mapped = tmp_path / "map.json"
    result, report = run_json("diff", a, b, "--map", mapped, *options)
    return result, report, json.loads(mapped.read_text())


def assert_fates(document: dict, expected: list[tuple[str, int]], frames_b: int) -> None:
    assert [(f["fate"], len(f["b_frames"])) for f in document["frames"]] == expected
    assert all(f["ok"] for f in document["frames"])
    # B's frames, numbered from 1, each the fate of exactly one frame of A, in A's order
    assert [n for f in document["frames"] for n in f["b_frames"]] == list(range(1, frames_b + 1))
    assert document["only_in_b"] == []


# --- what became of each frame ------------------------------------------------------------------


def test_the_sample_segmented_reports_each_input_frames_fate(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    assert run_cli("segment", SAMPLE, out, "-q").exit_code == 0
    _, inputs = records(SAMPLE)
    expected = expected_fates([data for _, data in inputs])
    assert {fate for fate, _ in expected} == {"segmented", "unchanged"} and len(expected) == 9
    result, report, document = diff_map(tmp_path, SAMPLE, out)
    assert result.exit_code == 0
    assert report["pair_by"] == "flow" and report["accounted"] is True
    assert (report["frames_a"], report["frames_b"]) == (9, len(records(out)[1]))
    assert_fates(document, expected, report["frames_b"])
    assert document["numbering"] == "frames numbered from 1, as tshark numbers them"
    text = run_cli("diff", SAMPLE, out).stdout
    assert "frame 1: unchanged -> frame 1\n" in text
    first = document["frames"][1]["b_frames"]
    assert f"frame 2: segmented -> frames {first[0]}..{first[-1]} ({len(first)} frames), payload intact\n" in text
    assert "B is what A becomes" in text


@pytest.mark.parametrize("options", [[], ["--mtu", "1400"], ["--device", "csum"], ["--engine", "scalar"]])
def test_synthetic_captures_segmented_are_what_the_inputs_become(tmp_path: Path, options: list[str]) -> None:
    frames = synthetic_frames()
    source = write_pcap(tmp_path / "in.pcap", frames)
    out = tmp_path / "out.pcap"
    assert run_cli("segment", source, out, "--udp-gso", "udp_l4", *options, "-q").exit_code == 0
    mtu = int(options[1]) if options[:1] == ["--mtu"] else 1500
    expected = expected_fates(frames, mtu, udp_gso=True)
    if "csum" in options:  # a device with checksum offload leaves a seed as it is
        expected = [("unchanged", 1) if fate == "checksum-completed" else (fate, n) for fate, n in expected]
    assert ("checksum-completed", 1) in expected_fates(frames) and ("segmented", 3) in expected
    result, report, document = diff_map(tmp_path, source, out)
    assert result.exit_code == 0, result.stdout
    assert_fates(document, expected, report["frames_b"])


def test_a_capture_from_a_sending_host_with_big_tcp(tmp_path: Path) -> None:
    """tot_len 0, jumbograms with and without the hop-by-hop option, ARP, ICMP, UDP: all accounted for."""
    source = write_pcap(tmp_path / "in.pcap", mixed_capture())
    out = tmp_path / "out.pcap"
    assert run_cli("segment", source, out, "-q").exit_code == 0
    result, report, document = diff_map(tmp_path, source, out)
    assert result.exit_code == 0, result.stdout
    assert report["fates"]["segmented"] == 4 and sum(report["fates"].values()) == 10


def _cut_in_three(tmp_path: Path, packet: Callable[..., bytes]) -> tuple[Path, Path, Path]:
    """A: one super-packet of ``packet``; good: its three segments as ``packet`` sums them; bad: the same
    segments summed over the header's destination (``header_dst``)."""
    data = bytes(range(256)) * 12
    a = write_pcap(tmp_path / "a.pcap", [packet(1000, data, "PA")])
    cuts = [(0, 1400, "A"), (1400, 2800, "A"), (2800, len(data), "PA")]
    good = write_pcap(tmp_path / "good.pcap", [packet(1000 + lo, data[lo:hi], f) for lo, hi, f in cuts])
    bad = write_pcap(tmp_path / "bad.pcap", [packet(1000 + lo, data[lo:hi], f, header_dst=True) for lo, hi, f in cuts])
    return a, good, bad


def _checked_over_the_senders_addresses(tmp_path: Path, sent: Callable[[], Any], header_only: Callable[[], Any],
                                        engines: tuple[str, ...] = ("auto",)) -> None:
    """A cut in three of a packet whose IP layers are ``sent()``, its checksums as Scapy sums them (over
    the addresses the sender summed), is A's: diff passes it; the same segments summed over the
    header's own addresses (``header_only()``, the IP header without what names the others) do not
    verify."""
    def packet(seq: int, payload: bytes, flags: str, *, header_dst: bool = False) -> bytes:
        built = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / sent() / \
            TCP(sport=40000, dport=5201, seq=seq, flags=flags) / payload
        if header_dst:
            plain = Ether(bytes(Ether() / header_only() / TCP(sport=40000, dport=5201, seq=seq, flags=flags) / payload))
            built[TCP].chksum = plain[TCP].chksum
        return bytes(built)

    a, good, bad = _cut_in_three(tmp_path, packet)
    for engine in engines:
        result, report = run_json("diff", a, good, "--pair-by", "flow", "--engine", engine)
        assert result.exit_code == 0 and report["fates"] == {"segmented": 1}, engine
        result, report = run_json("diff", a, bad, "--pair-by", "flow", "--engine", engine)
        assert result.exit_code == 1, engine
        assert all("does not verify" in p for p in report["frames"][0]["problems"]), engine


def test_checksums_behind_a_segment_routing_header_verify_over_the_final_destination(tmp_path: Path) -> None:
    """RFC 8200 8.1: the pseudo-header holds the last segment (Segment List[0]), not the IPv6 destination."""
    _checked_over_the_senders_addresses(
        tmp_path,
        lambda: IPv6(src="2001:db8::1", dst="2001:db8::a") / IPv6ExtHdrSegmentRouting(
            addresses=["2001:db8::f", "2001:db8::b", "2001:db8::a"], segleft=2),
        lambda: IPv6(src="2001:db8::1", dst="2001:db8::a"))


def test_checksums_under_a_loose_source_route_verify_over_its_last_address(tmp_path: Path) -> None:
    """The header holds the next hop; the sender (and Scapy) sums the route's last address (compiled
    run or not)."""
    _checked_over_the_senders_addresses(
        tmp_path,
        lambda: IP(src="10.0.0.1", dst="10.0.0.5", options=[IPOption_LSRR(routers=["10.0.0.6", "10.0.0.9"], pointer=4)]),
        lambda: IP(src="10.0.0.1", dst="10.0.0.5"), engines=("auto", "scalar"))


def test_checksums_behind_a_home_address_option_verify_over_the_home_address(tmp_path: Path) -> None:
    """RFC 6275 6.3: a mobile node's header holds its care-of address and its checksum the home address
    the Home Address option names (Scapy sums it so, and tshark verifies it so)."""
    _checked_over_the_senders_addresses(
        tmp_path,
        lambda: IPv6(src="2001:db8:c0a::1", dst="2001:db8::a") / IPv6ExtHdrDestOpt(options=[HAO(hoa="2001:db8::1")]),
        lambda: IPv6(src="2001:db8:c0a::1", dst="2001:db8::a"))


def test_ufo_fragments_are_put_together_for_the_datagram(tmp_path: Path) -> None:
    frames = [build_frame(SuperPacketSpec(udp=True, payload=bytes(range(256)) * 16)),
              build_frame(SuperPacketSpec(udp=True, ipv6=True, payload=bytes(range(256)) * 20, partial_checksum=False))]
    source = write_pcap(tmp_path / "in.pcap", frames)
    out = tmp_path / "out.pcap"
    assert run_cli("segment", source, out, "--udp-gso", "udp", "-q").exit_code == 0
    result, report, document = diff_map(tmp_path, source, out)
    assert result.exit_code == 0, result.stdout
    assert [f["fate"] for f in document["frames"]] == ["segmented", "segmented"]
    assert report["frames_b"] == len(document["frames"][0]["b_frames"]) + len(document["frames"][1]["b_frames"])


def test_flow_pairing_of_a_capture_with_itself_finds_every_frame_unchanged(tmp_path: Path) -> None:
    source = write_pcap(tmp_path / "in.pcap", mixed_capture() + synthetic_frames() + mixed_capture())
    result, report, document = diff_map(tmp_path, source, source, "--pair-by", "flow")
    assert result.exit_code == 0
    assert report["fates"] == {"unchanged": len(document["frames"])}
    assert [f["b_frames"] for f in document["frames"]] == [[f["a_frame"]] for f in document["frames"]]


# --- real differences: exit 1, naming the frames -------------------------------------------------


def segmented_sample(tmp_path: Path) -> tuple[Path, bytes, list[tuple[bytes, bytes]], dict]:
    out = tmp_path / "out.pcap"
    assert run_cli("segment", SAMPLE, out, "-q").exit_code == 0
    header, items = records(out)
    _, _, document = diff_map(tmp_path, SAMPLE, out)
    return out, header, items, document


def test_a_corrupted_payload_byte_of_out_is_caught_naming_the_frames(tmp_path: Path) -> None:
    _, header, items, document = segmented_sample(tmp_path)
    fate = document["frames"][3]  # the second super-packet
    victim = fate["b_frames"][4]  # one of its segments, numbered from 1
    head, data = items[victim - 1]
    items[victim - 1] = (head, data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
    bad = write_records(tmp_path / "bad.pcap", header, items)
    result = run_cli("diff", SAMPLE, bad)
    assert result.exit_code == 1
    line = next(line for line in result.stdout.splitlines() if line.startswith(f"frame {fate['a_frame']}:"))
    assert f"differs in frame {victim}" in line and "payload intact" not in line
    assert f"frame {victim}: TCP checksum" in line  # and its checksum no longer verifies
    _, _, mapped = diff_map(tmp_path, SAMPLE, bad)
    assert [f["a_frame"] for f in mapped["frames"] if not f["ok"]] == [fate["a_frame"]]
    assert "1 frame of A differs" in result.stdout


def test_a_changed_header_field_of_a_segment_is_named(tmp_path: Path) -> None:
    _, header, items, document = segmented_sample(tmp_path)
    fate = document["frames"][1]
    victim = fate["b_frames"][2]
    head, data = items[victim - 1]
    ttl_at = 14 + 4 + 8  # Ethernet, one label, then the IPv4 TTL
    assert data[12:14] == b"\x88\x47" and data[ttl_at] == 64
    items[victim - 1] = (head, data[:ttl_at] + b"\x3f" + data[ttl_at + 1 :])
    result = run_cli("diff", SAMPLE, write_records(tmp_path / "bad.pcap", header, items))
    assert result.exit_code == 1
    assert f"frame {fate['a_frame']}: segmented -> " in result.stdout
    assert "changed: IPv4 ttl 64 != 63" in result.stdout
    assert f"frame {victim}: IPv4 header checksum" in result.stdout


def test_a_lost_segment_and_an_extra_frame(tmp_path: Path) -> None:
    _, header, items, document = segmented_sample(tmp_path)
    fate = document["frames"][5]
    lost = fate["b_frames"][-1]
    kept = [item for number, item in enumerate(items, 1) if number != lost] + [items[0]]  # and frame 1 twice
    result, report, mapped = diff_map(tmp_path, SAMPLE, write_records(tmp_path / "bad.pcap", header, kept))
    assert result.exit_code == 1 and report["accounted"] is False
    broken = mapped["frames"][5]
    assert not broken["ok"] and "are in no frame of B" in broken["problems"][0]
    assert mapped["only_in_b"] == [len(kept)]
    assert report["only_in_b_count"] == 1


def test_before_and_after_the_other_way_round_is_merged_not_the_same(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    assert run_cli("segment", SAMPLE, out, "-q").exit_code == 0
    result, report, _ = diff_map(tmp_path, out, SAMPLE)
    assert result.exit_code == 1
    assert report["fates"]["merged"] == report["frames_a"] - report["fates"]["unchanged"]
    assert "merged -> frame 2: its payload is bytes 0.." in run_cli("diff", out, SAMPLE).stdout


def test_pushed_labels_are_changes_by_flow(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    assert run_cli("segment", SAMPLE, out, "--action", "push-mpls:1000", "-q").exit_code == 0
    result, report, document = diff_map(tmp_path, SAMPLE, out)
    assert result.exit_code == 1 and report["differing"] == 9
    assert all(any(c["field"].startswith("label[") for c in f["changes"]) for f in document["frames"])


# --- numbering, pairing, options -----------------------------------------------------------------


def test_by_position_frames_are_numbered_from_1(tmp_path: Path) -> None:
    frames = mixed_capture()
    changed = bytearray(frames[0])
    changed[-1] ^= 1
    a = write_pcap(tmp_path / "a.pcap", frames)
    b = write_pcap(tmp_path / "b.pcap", [bytes(changed)] + frames[1:])
    result = run_cli("diff", a, b)
    assert result.exit_code == 1 and result.stdout.startswith("frame 1: ")
    _, report = run_json("diff", a, b)
    assert report["pair_by"] == "position" and report["differences"][0]["frame"] == 1
    _, report = run_json("diff", a, write_pcap(tmp_path / "c.pcap", frames[:-2]), "--pair-by", "position")
    assert "(from frame 9)" in report["count_difference"]


def test_auto_pairs_by_position_when_the_counts_agree_else_by_flow(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    assert run_cli("segment", SAMPLE, out, "-q").exit_code == 0
    assert run_json("diff", SAMPLE, SAMPLE)[1]["pair_by"] == "position"
    assert run_json("diff", SAMPLE, out)[1]["pair_by"] == "flow"
    assert run_json("diff", SAMPLE, out, "--pair-by", "position")[0].exit_code == 1
    assert run_json("diff", SAMPLE, out, "--mode", "flow")[1]["pair_by"] == "flow"


def test_flow_pairing_reads_standard_input(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "out.pcap"
    assert run_cli("segment", SAMPLE, out, "-q").exit_code == 0
    # standard input is read once: counted (auto) and kept, then paired
    done = subprocess.run([sys.executable, "-m", "softgso", "diff", "-", str(out), "--json"], input=SAMPLE.read_bytes(),
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accounted"] is True


def test_map_is_written_as_every_output_and_refused_where_no_file_can_be(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    assert run_cli("segment", SAMPLE, out, "-q").exit_code == 0
    assert run_cli("diff", SAMPLE, out, "--map", "-").exit_code == 2
    folder = tmp_path / "folder"
    folder.mkdir()
    assert run_cli("diff", SAMPLE, out, "--map", folder).exit_code == 2
    result = run_cli("diff", SAMPLE, out, "--map", tmp_path / "nowhere" / "map.json")
    assert result.exit_code == 3 and "nowhere" in result.stderr
    # atomic: written beside its name and renamed, nothing else left there
    target = tmp_path / "maps" / "m.json"
    target.parent.mkdir()
    assert run_cli("diff", SAMPLE, out, "--map", target, "-q").exit_code == 0
    assert [p.name for p in target.parent.iterdir()] == ["m.json"]
    assert json.loads(target.read_text())["pair_by"] == "flow"


def test_max_limits_the_lines_and_differences_come_first(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    assert run_cli("segment", SAMPLE, out, "--action", "dec-ttl", "-q").exit_code == 0  # labelled frames change
    lines = run_cli("diff", SAMPLE, out, "--max", "2").stdout.splitlines()
    assert lines[0].startswith("frame 2: ") and "label[0].ttl" in lines[0]
    assert lines[2].startswith("... and 2 more differing frames of A")


def test_help_says_frames_are_numbered_from_1() -> None:
    text = " ".join(run_cli("diff", "--help").stdout.split())
    assert "numbered from 1" in text and "--pair-by" in text and "--map" in text
    assert "segmented into frames N..M" in text


class FakeProgress:
    """Stands for rich's Progress: records what the bar was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def add_task(self, description: str, total: int, completed: int = 0) -> int:
        self.calls.append(("add_task", (description, total)))
        return 0

    def start(self) -> None:
        self.calls.append(("start", None))

    def update(self, task: int, completed: int) -> None:
        self.calls.append(("update", completed))

    def stop(self) -> None:
        self.calls.append(("stop", None))


@pytest.mark.parametrize("command", [["diff", SAMPLE, SAMPLE], ["inspect", SAMPLE]])
def test_diff_and_inspect_draw_segments_progress_bar(monkeypatch: pytest.MonkeyPatch, command: list) -> None:
    import softgso.cli.runner as runner

    bars: list[FakeProgress] = []

    def display(enabled: bool, total: int) -> tuple[FakeProgress, int]:
        bars.append(FakeProgress())
        return bars[-1], total

    monkeypatch.setattr(runner, "show_progress", lambda quiet: not quiet)
    monkeypatch.setattr(runner, "progress_display", display)
    monkeypatch.setattr(runner, "PROGRESS_DELAY", 0.0)
    assert run_cli(*command).exit_code == 0
    assert len(bars) == 1
    description, total = bars[0].calls[0][1]  # type: ignore[misc]
    assert description == command[0] and total >= SAMPLE.stat().st_size
    assert bars[0].calls[-1] == ("stop", None)
    bars.clear()
    assert run_cli(*command, "-q").exit_code == 0
    assert not bars, "-q: no bar"


# --- properties: what the engine writes is what its input becomes; one byte changed never is -------


@st.composite
def segmentations(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    """(input frames, what softgso's engine transmits for them): TCP and UDP, IPv4 and IPv6, under
    labels and tags or not, seeds or full checksums, through devices with and without offloads."""
    from softgso.cli.action_grammar import parse_action
    from softgso.features import PROFILES
    from softgso.job import SegmentOptions, apply_actions, process_frame

    frames = []
    for _ in range(draw(st.integers(1, 3))):
        udp = draw(st.booleans())
        size = draw(st.integers(0, 6000))
        spec = SuperPacketSpec(
            ipv6=draw(st.booleans()), udp=udp, payload=bytes((i * 13 + size) & 0xFF for i in range(size)),
            seq=draw(st.integers(0, 2**32 - 1)), sport=draw(st.integers(1, 65535)),
            tcp_flags=0 if udp else draw(st.sampled_from([0x10, 0x18, 0x19, 0x98, 0x11])),
            partial_checksum=draw(st.booleans()), ip_id=draw(st.integers(0, 0xFFFF)),
            vlan_tags=((0x8100, draw(st.integers(1, 4094))),) if draw(st.booleans()) else (),
        )
        frame = build_frame(spec)
        labels = draw(st.sampled_from(["", "push-mpls:100", "push-mpls:100/200:1/2:64/3"]))
        if labels:
            frame, error = apply_actions(frame, parse_action(labels))
            assert error is None
        frames.append(frame)
    device = PROFILES[draw(st.sampled_from(["no-offload", "csum", "nic-tso-no-mpls-gso"]))]
    options = SegmentOptions(device=device.with_overrides(mtu=draw(st.integers(600, 1500))),
                             udp_gso=draw(st.sampled_from(["udp_l4", "udp"])))
    out = [segment for frame in frames for segment in process_frame(frame, options).frames]
    return frames, out


def flow_fates(frames_a: list[bytes], frames_b: list[bytes]) -> tuple[list, list[int]]:
    from softgso.check.flowdiff import FlowDiff

    flow = FlowDiff((index, frame, True) for index, frame in enumerate(frames_b))
    fates = [flow.add(index, frame) for index, frame in enumerate(frames_a)]
    return fates, flow.only_in_b()


@settings(max_examples=60, deadline=None)
@given(segmentations())
def test_what_the_engine_transmits_is_what_its_input_becomes(case: tuple[list[bytes], list[bytes]]) -> None:
    frames, out = case
    fates, only_in_b = flow_fates(frames, out)
    assert [fate.text() for fate in fates if not fate.ok] == [] and only_in_b == []
    assert [n for fate in fates for n in fate.b_frames] == list(range(1, len(out) + 1))


@settings(max_examples=80, deadline=None)
@given(segmentations(), st.data())
def test_any_byte_of_b_changed_is_a_difference(case: tuple[list[bytes], list[bytes]], data: st.DataObject) -> None:
    frames, out = case
    victim = data.draw(st.integers(0, len(out) - 1))
    at = data.draw(st.integers(0, len(out[victim]) - 1))
    damaged = list(out)
    damaged[victim] = out[victim][:at] + bytes([out[victim][at] ^ data.draw(st.integers(1, 255))]) + out[victim][at + 1 :]
    fates, only_in_b = flow_fates(frames, damaged)
    assert not all(fate.ok for fate in fates) or only_in_b, (victim + 1, at)


@pytest.mark.parametrize(("at", "bits"), [(1, 0x01), (1, 0x80), (3, 0x02), (3, 0x04)])
def test_reserved_bits_of_an_ipv6_fragment_header_set_in_b_are_a_difference(at: int, bits: int) -> None:
    """UFO over IPv6: each fragment's header (RFC 8200 4.5: a reserved byte, then the offset, two
    reserved bits and M) carries 0 in the reserved ones; B with one set is not what A becomes."""
    from softgso.features import PROFILES
    from softgso.job import SegmentOptions, process_frame

    frame = build_frame(SuperPacketSpec(ipv6=True, udp=True, payload=bytes(range(256)) * 12))
    out = process_frame(frame, SegmentOptions(device=PROFILES["no-offload"], udp_gso="udp")).frames
    assert len(out) > 1 and all(segment[20] == 44 for segment in out)  # (a fragment header behind IPv6's)
    fates, only_in_b = flow_fates([frame], out)
    assert fates[0].ok and only_in_b == []
    damaged = list(out)
    header = 14 + 40  # the fragment header, behind Ethernet and IPv6
    damaged[1] = out[1][: header + at] + bytes([out[1][header + at] ^ bits]) + out[1][header + at + 1 :]
    fates, _ = flow_fates([frame], damaged)
    assert not fates[0].ok and "frame 2: IPv6 fragment header reserved bits set" in fates[0].problems


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([b"\x08\x00\x45", b"\x08\x00\x46", b"\x86\xdd\x60", b"\x88\x47\x00",
                                           b"\x81\x00\x00", b"\x08\x06\x00", b""]), st.binary(max_size=120)),
                max_size=14), st.randoms(use_true_random=False))
def test_any_frames_pair_with_themselves_and_never_break_the_pairing(items: list[tuple[bytes, bytes]],
                                                                     rnd: object) -> None:
    import random

    assert isinstance(rnd, random.Random)
    frames = [(bytes(12) + head + body) if head else body for head, body in items]
    fates, only_in_b = flow_fates(frames, frames)
    assert [fate.fate for fate in fates] == ["unchanged"] * len(frames) and only_in_b == []
    other = list(frames)
    rnd.shuffle(other)
    flow_fates(frames, other[: len(other) // 2])  # whatever it says, it says it without an exception


# -- frames that end in an FCS ---------------------------------------------------------------------


def _fcs_pcap(path: Path, frames: list[bytes]) -> Path:
    """A pcap whose link-type field declares a 4-byte FCS (its frames end in one)."""
    import zlib

    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1 | 1 << 26 | 2 << 28) + b"".join(
        struct.pack("<IIII", 1, n, len(frame) + 4, len(frame) + 4) + frame + struct.pack("<I", zlib.crc32(frame))
        for n, frame in enumerate(frames)))
    return path


def _damage_last_byte(path: Path, record: int) -> None:
    header, items = records(path)
    head, data = items[record]
    items[record] = (head, data[:-1] + bytes([data[-1] ^ 0x5A]))
    write_records(path, header, items)


def test_an_fcs_wrong_in_b_is_named_and_b_is_not_what_a_becomes(tmp_path: Path) -> None:
    """Frames are paired without their FCS; a segment whose FCS is not its CRC-32 still makes B
    wrong (its payload and headers are intact), where the pairing alone would call B right."""
    frames = [build_frame(SuperPacketSpec(payload=bytes(range(256)) * 20, partial_checksum=False)),
              build_frame(SuperPacketSpec(payload=b"ack", partial_checksum=False))]
    capture = _fcs_pcap(tmp_path / "in.pcap", frames)
    out = tmp_path / "out.pcap"
    assert run_cli("segment", capture, out, "-q").exit_code == 0
    assert run_cli("diff", capture, out).exit_code == 0
    _damage_last_byte(out, 2)
    result = run_cli("diff", capture, out, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["fcs_wrong_in_b"] == [3] and report["fcs_wrong_in_b_count"] == 1
    assert report["accounted"]  # (the pairing of the frames without their FCS holds)


def test_a_frame_damaged_on_the_wire_passed_through_is_no_fault_of_b(tmp_path: Path) -> None:
    frames = [build_frame(SuperPacketSpec(payload=bytes(4000), partial_checksum=False))] * 2
    capture = _fcs_pcap(tmp_path / "in.pcap", frames)
    _damage_last_byte(capture, 1)  # its FCS no longer checks: segment passes it through, reported
    out = tmp_path / "out.pcap"
    assert run_cli("segment", capture, out, "-q").exit_code == 0
    result = run_cli("diff", capture, out, "--json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["fcs_wrong_in_b_count"] == 0
def test_a_missing_ipv6_frame_is_named_with_its_addresses_in_brackets(tmp_path: Path) -> None:
    """An IPv6 address and its port as inspect writes them, [fd00::1]:40000: fd00::1:40000 would read
    as the address fd00::1:40000 with no port."""
    packet = (Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=40000, dport=5201, seq=77)
              / (b"x" * 100))
    a = write_pcap(tmp_path / "a.pcap", [bytes(packet)])
    b = write_pcap(tmp_path / "b.pcap", [])
    result = run_cli("diff", a, b, "--pair-by", "flow")
    assert result.exit_code == 1
    assert "missing (TCP [2001:db8::1]:40000 > [2001:db8::2]:5201 seq 77, 100 bytes of payload)" in result.stdout


@pytest.mark.parametrize("pair_by", ["position", "flow"])
def test_both_pairings_count_the_frames_of_a_and_b_under_one_name(tmp_path: Path, pair_by: str) -> None:
    """frames_a and frames_b in --json whichever the pairing, so a script reads the counts alike."""
    frames = mixed_capture()
    a = write_pcap(tmp_path / "a.pcap", frames)
    b = write_pcap(tmp_path / "b.pcap", frames[:-2])
    _, report = run_json("diff", a, b, "--pair-by", pair_by)
    assert report["pair_by"] == pair_by
    assert (report["frames_a"], report["frames_b"]) == (len(frames), len(frames) - 2)
