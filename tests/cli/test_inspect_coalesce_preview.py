"""``softgso inspect``'s coalesce section (the preview of what ``softgso coalesce`` would make of IN,
counted by the compiled GRO without building packets: softgso.gro._coalesce.count_frames) against
``softgso coalesce --engine scalar`` on the same capture (the scalar engine, held to the kernel's
vectors in tests/gro) and against ``inspect --engine scalar`` (every preview packet built by the
scalar engine): the same counts, every one, on a sending host's capture (super-packets and short
frames whose checksums are CHECKSUM_PARTIAL seeds), on what a receiver sees of it (its segments on the
wire, which GRO coalesces), and on receivers' streams with the changes GRO's rules look at (VLAN tags,
IPv6, interleaved flows, segments out of order and retransmitted, PSH/FIN/URG/SYN/RST/CWR/ECE, ECN
marks, IPv4 options and IPv6 extension headers, TCP options that change, bad checksums, short
segments, padded ACKs, ARP and UDP among them)."""

from __future__ import annotations

import random
from itertools import islice
from pathlib import Path

import pytest
from cli_captures import arp, udp4, write_pcap, write_pcapng
from conftest import run_cli, run_json

from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.cli.bench import host_frames
from softgso.gro import GroDevice
from softgso.gro.coalesce import compiled_gro, compiled_params

pytestmark = pytest.mark.skipif(compiled_params(GroDevice(), 64) is None,
                                reason="the compiled GRO (softgso.gro._coalesce) is not built: no C compiler")

# the counts both commands print of the GRO run (coalesce's summary, inspect's "coalesce" section)
COUNTS = ("frames_in", "packets_out", "coalesced", "frames_merged", "polls", "flushes", "passed")
TIMESTAMPS = b"\x01\x01\x08\x0a"  # NOP, NOP, then the timestamp option's kind and length
CHANGES = ("psh", "fin", "urg", "syn", "rst", "cwr", "ece", "ecn", "ip_options", "tcp_options", "bad_checksum",
           "out_of_order", "retransmit", "short", "ack", "padded_ack", "ttl", "id_jump", "window", "arp", "udp")
FLAGS = {"psh": 0x18, "fin": 0x11, "urg": 0x30, "syn": 0x12, "rst": 0x14, "cwr": 0x90, "ece": 0x50}


def receiver_frames(seed: int, count: int = 600, change_every: int = 8) -> list[bytes]:
    """What a receiver's NIC hands GRO: wire-size segments (valid checksums) of 1-6 flows, IPv4 or IPv6,
    behind a VLAN tag or not, with or without timestamps, in runs of 1-24 frames of one flow; about one
    frame in ``change_every`` carries one of CHANGES."""
    rng = random.Random(seed)
    flows = []
    for number in range(rng.randint(1, 6)):
        flows.append({"ipv6": rng.random() < 0.4, "sport": 40000 + number, "seq": rng.randrange(2**32),
                      "ip_id": rng.randrange(65536), "mss": rng.choice((1448, 1448, 1448, 536)),
                      "tsval": rng.randrange(2**32) if rng.random() < 0.7 else None,
                      "vlan": rng.choice(((), (), ((0x8100, 7),), ((0x88A8, 0x2007),)))})
    frames: list[bytes] = []
    later: list[bytes] = []  # a segment held back to come after the next one (out of order)
    flow = flows[0]
    run = 0
    while len(frames) < count:
        if run == 0:
            flow, run = rng.choice(flows), rng.randint(1, 24)
        run -= 1
        change = rng.choice(CHANGES) if rng.randrange(change_every) == 0 else "none"
        if change == "arp":
            frames.append(arp())
            continue
        if change == "udp":
            frames.append(udp4(rng.randint(0, 300)))
            continue
        if change == "tcp_options" and flow["tsval"] is not None:
            flow["tsval"] = (flow["tsval"] + 1) & 0xFFFFFFFF  # its timestamp ticks: the options differ from here
        options = b"" if flow["tsval"] is None else TIMESTAMPS + flow["tsval"].to_bytes(4, "big") + bytes(4)
        size = {"short": rng.randint(1, flow["mss"] - 1), "ack": 0, "padded_ack": 0}.get(change, flow["mss"])
        seq = flow["seq"] - (flow["mss"] * 3 if change == "retransmit" else 0)
        spec = SuperPacketSpec(
            ipv6=flow["ipv6"], payload=bytes((seq + at) & 0xFF for at in range(size)), tcp_options=options,
            tcp_flags=FLAGS.get(change, 0x10), seq=seq & 0xFFFFFFFF, ip_id=flow["ip_id"] + (9 if change == "id_jump" else 0),
            window=1000 if change == "window" else 64240, tos=3 if change == "ecn" else 0,
            ttl=63 if change == "ttl" else 64, partial_checksum=False, vlan_tags=flow["vlan"], sport=flow["sport"],
            ip_options=b"\x01\x01\x01\x00" if change == "ip_options" and not flow["ipv6"] else b"",
            ipv6_exthdrs=((0, bytes(6)),) if change == "ip_options" and flow["ipv6"] else ())
        if change in ("ack", "padded_ack"):  # the other direction's ACK
            spec = SuperPacketSpec(ipv6=flow["ipv6"], tcp_options=options, tcp_flags=0x10, seq=5000, sport=5201,
                                   dport=flow["sport"], partial_checksum=False, vlan_tags=flow["vlan"])
        else:
            if change != "retransmit":
                flow["seq"] = (flow["seq"] + size + (change in ("syn", "fin"))) & 0xFFFFFFFF
            flow["ip_id"] = (flow["ip_id"] + 1) & 0xFFFF
        frame = bytearray(build_frame(spec))
        if change == "bad_checksum":
            frame[-1] ^= 0x20
        if change == "padded_ack":
            frame += bytes(max(60 - len(frame), 2))  # padded on the wire: bytes behind the IP packet
        if change == "out_of_order" and not later:
            later.append(bytes(frame))
            continue
        frames.append(bytes(frame))
        frames += later
        later.clear()
    return frames + later


def host_capture(folder: Path) -> Path:
    """A sending host's capture (softgso bench's host row, its first 300 frames) as pcapng."""
    return write_pcapng(folder / "host.pcapng", [(1, "eth0")], [(0, frame, None) for frame in islice(host_frames(), 300)])


def spy_on_counting(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each poll inspect's preview offers the compiled GRO's counting (True: it counted the poll)."""
    taken: list[bool] = []
    original = compiled_gro.count_frames

    def count_frames(*args: object) -> bool:
        taken.append(bool(original(*args)))
        return taken[-1]

    monkeypatch.setattr(compiled_gro, "count_frames", count_frames)
    return taken


def assert_preview_is_coalesce(capture: Path, folder: Path, kernel: str = "6.1") -> dict:
    """inspect's coalesce counts are ``coalesce --engine scalar``'s and inspect --engine scalar's (its whole
    report, JSON and tables, too); the preview's counts."""
    result, report = run_json("inspect", capture, "--kernel", kernel)
    assert result.exit_code == 0, result.stderr
    result, scalar_report = run_json("inspect", capture, "--kernel", kernel, "--engine", "scalar")
    assert report == scalar_report
    assert run_cli("inspect", capture, "--kernel", kernel).stdout == \
        run_cli("inspect", capture, "--kernel", kernel, "--engine", "scalar").stdout
    result, summary = run_json("coalesce", capture, folder / f"out{capture.suffix}", "--engine", "scalar",
                               "--kernel", kernel)
    assert result.exit_code == 0, result.stderr
    preview = report["coalesce"]
    assert {key: preview[key] for key in COUNTS} == {key: summary[key] for key in COUNTS}
    return preview


def test_a_senders_capture_is_counted_as_coalesce_passes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every frame of a sending host's capture carries its checksum as a CHECKSUM_PARTIAL seed: GRO
    (skb_gro_checksum_validate in tcp4_gro_receive) passes each one up, and the compiled GRO counts
    every poll of it."""
    capture = host_capture(tmp_path)
    taken = spy_on_counting(monkeypatch)
    preview = assert_preview_is_coalesce(capture, tmp_path)
    assert preview["passed"] == {"bad TCP checksum": 300} and preview["coalesced"] == 0
    # 300 frames: 5 polls of 64 (the last one short) in each of inspect's two runs (JSON, tables)
    assert len(taken) == 10 and all(taken), taken


def test_a_receivers_capture_is_counted_as_coalesce_coalesces_it(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The same host's packets as the receiver sees them (segment's output: wire-size segments, their
    checksums complete): GRO coalesces them, and the compiled GRO counts every poll."""
    segmented = tmp_path / "wire.pcapng"
    assert run_cli("segment", host_capture(tmp_path), segmented, "-q").exit_code == 0
    taken = spy_on_counting(monkeypatch)
    for kernel in ("6.1", "mainline"):
        preview = assert_preview_is_coalesce(segmented, tmp_path, kernel)
        assert preview["coalesced"] > 100 and preview["frames_merged"] > preview["frames_in"] // 2
    assert taken and all(taken)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("container", ["pcap", "pcapng"])
def test_a_receivers_stream_with_changes_is_counted_as_coalesce(seed: int, container: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    frames = receiver_frames(seed)
    if container == "pcap":
        capture = write_pcap(tmp_path / "in.pcap", frames)
    else:
        capture = write_pcapng(tmp_path / "in.pcapng", [(1, "eth0")], [(0, frame, None) for frame in frames])
    taken = spy_on_counting(monkeypatch)
    for kernel in ("6.1", "mainline"):
        preview = assert_preview_is_coalesce(capture, tmp_path, kernel)
        assert preview["frames_in"] == len(frames) and preview["coalesced"] > 0
    assert any(taken), taken


def test_the_receivers_streams_hold_every_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: with a change on every other frame, the streams above make GRO name the reasons the
    changes stand for, and the compiled GRO counts polls with bad checksums, CWR and ECN among them."""
    frames = [frame for seed in range(4) for frame in receiver_frames(seed, 800, change_every=2)]
    capture = write_pcap(tmp_path / "in.pcap", frames)
    taken = spy_on_counting(monkeypatch)
    reasons: set[str] = set()
    for kernel in ("6.1", "mainline"):
        preview = assert_preview_is_coalesce(capture, tmp_path, kernel)
        reasons |= {*preview["flushes"], *preview["passed"]}
    for reason in ("bad TCP checksum", "TCP CWR", "TCP flags differ", "IPv4 TOS/ECN differs", "IPv4 options",
                   "TCP options differ", "TCP sequence gap", "IPv4 TTL differs", "TCP window differs",
                   "IPv4 ID neither fixed nor incrementing", "last segment (short)", "last segment (PSH)",
                   "IPv4 total length is not the frame's", "no GRO for ethertype 0x0806",
                   "UDP (no GRO: UDP GRO forwarding is off)", "IPv6 traffic class differs"):
        assert any(found.startswith(reason) for found in reasons), (reason, sorted(reasons))
    assert sum(taken) >= 10, taken
