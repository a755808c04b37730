"""softgso.check.segcheck, the bench's gate: it passes correct segmentations and catches every kind of damage.

Correct outputs come from softgso and from the naive Scapy segmenter (an independent producer);
each damage is made by hand on a copy, and the check must name it.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from softgso.check.segcheck import check_segmented
from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.cli.bench import MIXES, _frames, write_capture

REPO = Path(__file__).resolve().parents[2]


def records(path: Path) -> tuple[bytes, list[bytes]]:
    """A little-endian classic pcap's file header and its records (header and frame, whole)."""
    data = path.read_bytes()
    found, pos = [], 24
    while pos < len(data):
        (caplen,) = struct.unpack_from("<I", data, pos + 8)
        found.append(data[pos : pos + 16 + caplen])
        pos += 16 + caplen
    return data[:24], found


def rewrite(path: Path, header: bytes, found: list[bytes]) -> None:
    path.write_bytes(header + b"".join(found))


def segment(capture: Path, out: Path) -> None:
    # the bench's UDP super-packets are USO by construction: udp_l4 is their truthful GSO metadata
    subprocess.run([sys.executable, "-m", "softgso", "segment", str(capture), str(out), "--udp-gso", "udp_l4", "-q"],
                   check=True)


@pytest.fixture(scope="module")
def segmented(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Every shape the bench makes (IPv4, IPv6, MPLS 1-3 labels, VLAN, USO), segmented by softgso."""
    work = tmp_path_factory.mktemp("segcheck")
    capture, out = work / "in.pcap", work / "out.pcap"
    write_capture(capture, 3 << 20, frames=_frames(MIXES["all"], 20000))
    segment(capture, out)
    return capture, out


def test_a_correct_segmentation_passes_with_the_counts_it_expects(segmented: tuple[Path, Path]) -> None:
    capture, out = segmented
    verdict = check_segmented(capture, out)
    assert verdict.ok, verdict.problems
    assert verdict.packets_out == verdict.expected_out == len(records(out)[1])
    assert verdict.flows == len(MIXES["all"])


def test_a_pcapng_segmentation_is_walked_block_by_block(tmp_path: Path) -> None:
    """The same packets in pcapng (EPBs) pass; a flipped payload byte in one of OUT's EPBs is caught."""
    capture, out = tmp_path / "in.pcapng", tmp_path / "out.pcapng"
    write_capture(capture, 1 << 20, frames=_frames(MIXES["issue"], 20000), capture_format="pcapng")
    segment(capture, out)
    verdict = check_segmented(capture, out)
    assert verdict.ok, verdict.problems
    assert verdict.packets_in > 10 and verdict.packets_out > 10 * verdict.packets_in
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x01
    out.write_bytes(bytes(data))
    assert not check_segmented(capture, out).ok


@pytest.mark.parametrize("linktype", [113, 276, 0, 101])
def test_other_link_types_are_read_by_their_own_headers(tmp_path: Path, linktype: int) -> None:
    """SLL, SLL2, NULL and raw IP captures of the same packets pass; a flipped payload byte is caught."""
    frames = [build_frame(SuperPacketSpec(payload=os.urandom(9000), seq=9000 * k)) for k in range(5)]
    headers = {113: lambda f: struct.pack("!HHH8sH", 0, 1, 6, f[6:12] + bytes(2), 0x0800),
               276: lambda f: struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, f[6:12] + bytes(2)),
               0: lambda f: (2).to_bytes(4, "little"), 101: lambda f: b""}
    records = b"".join(struct.pack("<IIII", 1, k, len(f) - 14 + len(headers[linktype](f)),
                                   len(f) - 14 + len(headers[linktype](f))) + headers[linktype](f) + f[14:]
                       for k, f in enumerate(frames))
    capture, out = tmp_path / "in.pcap", tmp_path / "out.pcap"
    capture.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype) + records)
    segment(capture, out)
    verdict = check_segmented(capture, out)
    assert verdict.ok, verdict.problems
    assert verdict.packets_out == verdict.expected_out == 5 * 7
    data = bytearray(out.read_bytes())
    data[-100] ^= 0x01
    out.write_bytes(bytes(data))
    assert not check_segmented(capture, out).ok


def test_the_expected_count_follows_the_mtu_rule_labels_included(tmp_path: Path) -> None:
    # 5792 bytes of TCP payload with timestamps: 4 segments of 1448 over IPv4 (1500 - 20 - 32);
    # under one label 1444 each, so 5; a packet that fits stays one
    frames = [build_frame(SuperPacketSpec(payload=os.urandom(5792), tcp_options=b"\x01\x01\x08\x0a" + bytes(8))),
              build_frame(SuperPacketSpec(payload=os.urandom(1000)))]
    labelled = frames[0][:12] + b"\x88\x47" + struct.pack("!I", (100 << 12) | 0x100 | 64) + frames[0][14:]
    for frame, expected in ((frames[0], 4), (labelled, 5), (frames[1], 1)):
        capture = tmp_path / "one.pcap"
        write_capture(capture, 24 + 16 + len(frame), frames=iter([frame]))
        out = tmp_path / "one-out.pcap"
        segment(capture, out)
        verdict = check_segmented(capture, out)
        assert verdict.ok, verdict.problems
        assert verdict.expected_out == verdict.packets_out == expected


def test_the_naive_scapy_segmenters_output_passes(tmp_path: Path) -> None:
    pytest.importorskip("scapy")
    capture, out = tmp_path / "in.pcap", tmp_path / "scapy.pcap"
    write_capture(capture, 1 << 20, "issue")
    subprocess.run([sys.executable, "-m", "softgso.check.scapy_segmenter", str(capture), str(out)], check=True)
    verdict = check_segmented(capture, out)
    assert verdict.ok, verdict.problems


def damaged(segmented: tuple[Path, Path], tmp_path: Path, change) -> list[str]:  # type: ignore[no-untyped-def]
    capture, out = segmented
    header, found = records(out)
    change(found)
    copy = tmp_path / "damaged.pcap"
    rewrite(copy, header, found)
    verdict = check_segmented(capture, copy)
    assert not verdict.ok
    return verdict.problems


def index_of(found: list[bytes], ipv4: bool = True, udp: bool = False, labels: bool = False) -> int:
    """A segment in the middle of a segmented packet of the kind asked."""
    for index, record in enumerate(found[1:-1], start=1):
        frame = record[16:]
        mpls = frame[12:14] == b"\x88\x47"
        if mpls != labels or frame[12:14] == b"\x81\x00":  # no VLAN: the IP header at a known place
            continue
        l3 = 14
        while mpls and not frame[l3 + 2] & 1:
            l3 += 4
        l3 += 4 if mpls else 0
        version = frame[l3] >> 4
        proto = frame[l3 + 9] if version == 4 else frame[l3 + 6]
        if version == (4 if ipv4 else 6) and proto == (17 if udp else 6) and len(frame) > 1000:
            return index
    raise AssertionError("no such segment")


def flip(record: bytes, at_from_end: int) -> bytes:
    spot = len(record) - at_from_end
    return record[:spot] + bytes([record[spot] ^ 0x5A]) + record[spot + 1 :]


def test_a_flipped_payload_byte_is_a_bad_tcp_checksum(segmented: tuple[Path, Path], tmp_path: Path) -> None:
    def change(found: list[bytes]) -> None:
        index = index_of(found)
        found[index] = flip(found[index], 100)

    problems = damaged(segmented, tmp_path, change)
    assert len(problems) == 1 and "bad TCP checksum" in problems[0]


def test_a_flipped_byte_under_labels_and_in_a_udp_datagram_are_caught(segmented: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    for kind, words in (({"labels": True}, "bad TCP checksum"), ({"udp": True}, "bad UDP checksum"),
                        ({"ipv4": False}, "bad TCP checksum")):
        def change(found: list[bytes], kind: dict = kind) -> None:  # type: ignore[type-arg]
            index = index_of(found, **kind)
            found[index] = flip(found[index], 7)

        problems = damaged(segmented, tmp_path, change)
        assert len(problems) == 1 and words in problems[0], (kind, problems)


def test_a_changed_ttl_is_a_bad_ipv4_header_checksum(segmented: tuple[Path, Path], tmp_path: Path) -> None:
    def change(found: list[bytes]) -> None:
        index = index_of(found)
        record = bytearray(found[index])
        record[16 + 14 + 8] ^= 0x01  # TTL: not in the pseudo-header, so the TCP checksum stays right
        found[index] = bytes(record)

    problems = damaged(segmented, tmp_path, change)
    assert len(problems) == 1 and "bad IPv4 header checksum" in problems[0]


def test_a_lost_segment_breaks_the_sequence_and_the_count(segmented: tuple[Path, Path], tmp_path: Path) -> None:
    problems = damaged(segmented, tmp_path, lambda found: found.pop(index_of(found)))
    assert any("TCP sequence" in p for p in problems)
    assert any("packets out" in p for p in problems) or len(problems) == 10


def test_swapped_segments_break_the_sequence(segmented: tuple[Path, Path], tmp_path: Path) -> None:
    def change(found: list[bytes]) -> None:
        index = index_of(found)
        found[index], found[index + 1] = found[index + 1], found[index]

    problems = damaged(segmented, tmp_path, change)
    assert any("TCP sequence" in p for p in problems)


def test_the_input_itself_is_not_a_segmentation(segmented: tuple[Path, Path]) -> None:
    capture, _ = segmented
    verdict = check_segmented(capture, capture)
    assert not verdict.ok
    assert any("exceed the MTU" in p for p in verdict.problems)
    assert verdict.packets_out < verdict.expected_out


def test_a_wrong_ip_length_is_named(segmented: tuple[Path, Path], tmp_path: Path) -> None:
    def change(found: list[bytes]) -> None:
        index = index_of(found)
        record = bytearray(found[index])
        record[16 + 14 + 3] ^= 0x04  # IPv4 total length
        found[index] = bytes(record)

    problems = damaged(segmented, tmp_path, change)
    assert any("IPv4 total length" in p for p in problems)


# --- tunnels ------------------------------------------------------------------------------------

TUNNEL_VECTORS = sorted(p for p in (REPO / "tests" / "vectors" / "kernel" / "tunnels").glob("*/*__tx_off")
                        if not p.name.startswith(("bpf_", "uso_", "uso6_")) and "control" not in p.name)


@pytest.mark.parametrize("case", TUNNEL_VECTORS, ids=[f"{c.parent.name}/{c.name}" for c in TUNNEL_VECTORS])
def test_what_real_tunnel_devices_put_on_the_wire_passes(case: Path) -> None:
    """The kernel's own segments of each tunnel super-packet (full checksums: veth tx off) pass the check:
    outer and inner headers, lengths, checksums, the inner flow's payload in order, the count."""
    import json

    from softgso.check.golden import read_pcap_frames
    from softgso.offload.tunnels import parse_tunnel, parse_tunnel_port

    meta = json.loads((case / "meta.json").read_text())
    frame = read_pcap_frames(case / "input.pcap")[0]
    ports = dict(parse_tunnel_port(text) for text in meta.get("softgso_tunnel_ports", []))  # FOU/GUE: no port
    tunnel = parse_tunnel(frame, ports)
    assert tunnel is not None
    # the MTU whose segments carry gso_size bytes: every header from the outer IP to the inner payload
    mtu = int(meta["gso_size"]) + tunnel.payload - tunnel.outer_network
    verdict = check_segmented(case / "input.pcap", case / "kernel_out.pcap", mtu=mtu, udp_tunnels=ports)
    assert verdict.ok, verdict.problems
    assert verdict.packets_out == int(meta["segments"])


@pytest.fixture(scope="module")
def tunnelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The bench's tunnel mixes (VXLAN, Geneve, GRE/gretap, IP-in-IP over IPv4 and IPv6), segmented by softgso."""
    work = tmp_path_factory.mktemp("segcheck-tunnels")
    capture, out = work / "in.pcap", work / "out.pcap"
    mixes = [shape for name in ("vxlan", "geneve", "gre", "ipip") for shape in MIXES[name]]
    write_capture(capture, 6 << 20, frames=_frames(mixes, 20000))
    segment(capture, out)
    return capture, out


def test_a_correct_tunnelled_segmentation_passes(tunnelled: tuple[Path, Path]) -> None:
    capture, out = tunnelled
    verdict = check_segmented(capture, out)
    assert verdict.ok, verdict.problems
    assert verdict.packets_out == verdict.expected_out == len(records(out)[1])
    assert verdict.flows == 15  # one inner flow per shape


def _damaged(tunnelled: tuple[Path, Path], tmp_path: Path, pick: Any, change: Any) -> list[str]:
    capture, out = tunnelled
    header, found = records(out)
    index = next(i for i, record in enumerate(found) if pick(record[16:]))
    record = bytearray(found[index])
    change(record, 16)
    found[index] = bytes(record)
    damaged = tmp_path / "damaged.pcap"
    rewrite(damaged, header, found)
    verdict = check_segmented(capture, damaged)
    assert not verdict.ok
    return verdict.problems


def _outer(kind: int, version: int) -> Any:
    """A frame with this outer IP version and outer protocol (17 UDP, 47 GRE, 4/41 IP-in-IP)."""
    def pick(frame: bytes) -> bool:
        if version == 4:
            return frame[12:14] == b"\x08\x00" and frame[23] == kind
        return frame[12:14] == b"\x86\xdd" and frame[20] == kind
    return pick


def test_tunnel_header_damage_is_named(tunnelled: tuple[Path, Path], tmp_path: Path) -> None:
    def flip(at: int) -> Any:
        def change(record: bytearray, base: int) -> None:
            record[base + at] ^= 0x01
        return change

    # the outer IPv4 TTL: the outer header checksum
    assert "bad outer IPv4 header checksum" in _damaged(tunnelled, tmp_path, _outer(17, 4), flip(14 + 8))[0]
    # a byte of the VXLAN header over IPv6 (outer UDP checksum required)
    assert "bad outer UDP checksum" in _damaged(tunnelled, tmp_path, _outer(17, 6), flip(14 + 40 + 8 + 5))[0]
    # a GRE checksum
    problems = _damaged(tunnelled, tmp_path, lambda f: _outer(47, 4)(f) and f[14 + 20] & 0x80, flip(14 + 20 + 5))
    assert "bad GRE checksum" in problems[0]
    # the outer UDP length
    assert "outer UDP length" in _damaged(tunnelled, tmp_path, _outer(17, 4), flip(14 + 20 + 5))[0]
    # the inner IPv4 total length inside IP-in-IP
    assert "inside the tunnel: IPv4 total length" in _damaged(tunnelled, tmp_path, _outer(4, 4), flip(14 + 20 + 3))[0]
    # a payload byte: the inner TCP checksum
    assert "bad TCP checksum" in _damaged(tunnelled, tmp_path, _outer(17, 4), flip(500))[0]


def test_a_lost_tunnelled_segment_breaks_the_inner_sequence(tunnelled: tuple[Path, Path], tmp_path: Path) -> None:
    capture, out = tunnelled
    header, found = records(out)
    del found[3]
    damaged = tmp_path / "lost.pcap"
    rewrite(damaged, header, found)
    problems = check_segmented(capture, damaged).problems
    assert any("TCP sequence" in p for p in problems) and any("expected" in p for p in problems)


def test_a_tunnelled_segment_over_the_mtu_counts_the_outer_headers(tunnelled: tuple[Path, Path]) -> None:
    """The same output checked for an MTU 50 bytes smaller: every full segment exceeds it (outer headers count)."""
    capture, out = tunnelled
    problems = check_segmented(capture, out, mtu=1450).problems
    assert any("exceed the MTU 1450" in p for p in problems)


def test_the_fou_mix_segmented_passes_and_a_lost_segment_is_caught(tmp_path: Path) -> None:
    """The bench's FOU/GUE mix, segmented with its --tunnel-port options, passes when segcheck is told the
    ports (mix_tunnel_ports), and a segment removed from it is caught."""
    from softgso.cli.bench import mix_tunnel_ports, udp_gso_args

    capture, out = tmp_path / "in.pcap", tmp_path / "out.pcap"
    write_capture(capture, 4 << 20, "fou")  # 16 packets a flow in turn: 4 MiB reaches all four flows
    subprocess.run([sys.executable, "-m", "softgso", "segment", str(capture), str(out), "-q", *udp_gso_args("fou")],
                   check=True)
    verdict = check_segmented(capture, out, udp_tunnels=mix_tunnel_ports("fou"))
    assert verdict.ok, verdict.problems
    assert verdict.flows == 4 and verdict.packets_out == verdict.expected_out > 4 * verdict.packets_in
    header, found = records(out)
    rewrite(tmp_path / "lost.pcap", header, found[:7] + found[8:])
    assert not check_segmented(capture, tmp_path / "lost.pcap", udp_tunnels=mix_tunnel_ports("fou")).ok


@pytest.mark.parametrize(("case", "kind"), [("fou_ipip_in4__tx_off", "fou"), ("fou_sit_csum_in6__tx_off", "fou"),
                                            ("gue_ipip_csum_in4_dfclear__tx_off", "gue"), ("gue_sit_in6__tx_off", "gue")])
def test_the_bench_builds_fou_and_gue_as_the_kernel_does(case: str, kind: str) -> None:
    """synth.encapsulate's FOU/GUE layout is the one the kernel's ipip/sit devices with ``encap fou|gue``
    wrote (tests/vectors/kernel/tunnels): the inner IP packet right behind the UDP header, or behind a
    4-byte GUE header (version 0, no options) naming IPPROTO_IPIP or IPPROTO_IPV6."""
    from softgso.check.golden import read_pcap_frames
    from softgso.check.synth import TunnelSpec, encapsulate

    kernel = read_pcap_frames(REPO / "tests" / "vectors" / "kernel" / "tunnels" / "6.12" / case / "input.pcap")[0]
    inner_ip = kernel[42 + (4 if kind == "gue" else 0) :]
    ours = encapsulate(kernel[:14] + inner_ip, TunnelSpec(kind))
    assert ours[23] == kernel[23] == 17  # outer IPv4 carrying UDP
    assert ours[38:40] == (len(ours) - 34).to_bytes(2, "big") and kernel[38:40] == (len(kernel) - 34).to_bytes(2, "big")
    assert ours[42:] == kernel[42:]  # the GUE header (if any) and the inner packet, byte for byte
