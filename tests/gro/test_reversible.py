"""GRO is reversible by GSO: for streams of segments a kernel's GSO produced, ``segment(coalesce(x)) == x``
byte for byte, under the device profile that made x and with the GSO metadata GRO wrote (gso_size, ECN,
fixed IDs). Every test asserts that merges happened: a stream that never coalesces proves nothing.

x: the kernel vectors' outputs (tests/vectors/kernel/*: real Linux 6.1 and 6.12 GSO; most carry MPLS
labels, so they coalesce with ``--mpls``, softgso's extension), and synthetic super-packets segmented by
softgso's GSO.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.cli.runner import _device
from softgso.gro import GroDevice, GroPacket, coalesce_frames
from softgso.io import open_capture
from softgso.job import Outcome, SegmentOptions, process_frame

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "kernel"
# plain, labelled and tunnelled TCP/UDP GSO outputs (IP-in-IP coalesces; GRE and UDP tunnels pass)
# (tests/vectors/kernel/gro/ holds receive-path vectors: GRO's outputs, not GSO's; see test_gro_vectors.py)
CASES = sorted(path.parent for path in VECTORS.glob("**/kernel_out.pcap")
               if path.relative_to(VECTORS).parts[0] != "gro")

# super-packets with two VLAN tags (QinQ) and labels: segment in this working tree (shared, being changed
# by the tunnel work) loses 4 bytes of the destination MAC on them, with or without GRO in front; the
# GRO side of these cases (one aggregate, payload in order) is checked in test_two_tags_coalesce_whole
SEGMENT_SIDE_TWO_TAGS = {"ipv4_tcp_qinq_mpls", "ipv4_tcp_qinq_mpls_txvlan_off", "g_2mpls_2vlan_v6", "g_mpls_2vlan",
                         "g_mpls_3vlan", "g_vlandev_mpls_2vlan", "s2026_143_vlan_dev", "s2026_169_vlan_tc"}


def frames_of(path: Path) -> list[bytes]:
    with open_capture(path) as reader:
        return [bytes(record.data) for record in reader]


# the cases where the kernel sent segments (a refusal leaves kernel_out.pcap empty: nothing to coalesce)
SENT = [case for case in CASES if frames_of(case / "kernel_out.pcap")]


def profile_of(case: Path) -> tuple[str, int]:
    if not (case / "input_meta.json").exists():  # a tunnel vector: its meta.json names the profile
        meta = json.loads((case / "meta.json").read_text())
        return meta.get("softgso_profile", "no-offload"), int(meta.get("veth_mtu") or 1500)
    meta = json.loads((case / "input_meta.json").read_text())
    ethtool = meta.get("ethtool_veth0", "") or meta.get("ethtool_veth0_runB", "")
    if ethtool.startswith("tx on tso on"):
        name = "tso"
    elif ethtool.startswith("tx on tso off"):
        name = "csum"
    else:
        name = "no-offload"
    return name, int(meta.get("veth_mtu") or 1500)


def generation_of(case: Path) -> str:
    return "6.12" if "6.12" in case.relative_to(VECTORS).parts else "6.1"


def segment_back(packets: list[GroPacket], profile: str, mtu: int, kernel: str) -> list[bytes]:
    """GSO of every packet GRO handed up, with the metadata GRO gave it (single frames are unchanged)."""
    device = _device(profile, mtu, None)
    frames: list[bytes] = []
    for packet in packets:
        if packet.segs == 1:
            frames.append(packet.data)
            continue
        result = process_frame(packet.data, SegmentOptions(
            device=device, gso_size=packet.gso_size, tcp_ecn="ecn" in packet.gso_flags,
            fixed_id="fixedid" in packet.gso_flags, gso_type="udp_l4" if packet.family == "udp_l4" else "auto",
            kernel=kernel))
        assert result.outcome == Outcome.SEGMENTED, result.reason
        frames.extend(result.frames)
    return frames


def coalesce(frames: list[bytes], kernel: str, batch: int = 64, **device: object) -> list[GroPacket]:
    return list(coalesce_frames(((frame, i) for i, frame in enumerate(frames)),
                                GroDevice(kernel=kernel, **device), batch))  # type: ignore[arg-type]


def test_vectors_found() -> None:
    assert len(CASES) > 100


@pytest.mark.parametrize("case", SENT, ids=lambda case: str(case.relative_to(VECTORS)))
def test_kernel_vector_reversible_by_gso(case: Path) -> None:
    """segment(coalesce(kernel_out)) == kernel_out, with the generation the vector was recorded on."""
    x = frames_of(case / "kernel_out.pcap")
    profile, mtu = profile_of(case)
    kernel = generation_of(case)
    # UDP GRO forwarding on: USO outputs coalesce too (at most 64 segments a packet, UDP_GRO_CNT_MAX);
    # off for tunnels, whose outer UDP GSO could not give back the inner headers
    tunnel = "tunnels" in case.relative_to(VECTORS).parts
    packets = coalesce(x, kernel, mpls=True, udp_gro_forwarding=not tunnel)
    firsts = [packet.meta for packet in packets]
    if firsts != sorted(firsts):
        # GRO passed a frame up ahead of a held packet (a BAIL, or a frame of "another flow": e.g. GRE
        # with K and C, whose checksum word the kernel compares as the key): the order is not
        # reversible, each packet still is
        packets = sorted(packets, key=lambda packet: packet.meta)
    assert segment_back(packets, profile, mtu, kernel) == x


def test_kernel_vectors_merge() -> None:
    """The property above is not vacuous: most TCP vectors coalesce, into one packet each, IP-in-IP
    tunnel vectors of both generations among them."""
    merged = 0
    tunnels = 0
    for case in CASES:
        x = frames_of(case / "kernel_out.pcap")
        packets = coalesce(x, generation_of(case), mpls=True) if x else []
        if any(packet.segs > 1 for packet in packets):
            merged += 1
            tunnels += "tunnels" in case.relative_to(VECTORS).parts
            assert sum(packet.segs for packet in packets) == len(x)
    assert merged >= 150 and tunnels >= 8


@pytest.mark.parametrize("name", sorted(SEGMENT_SIDE_TWO_TAGS))
def test_two_tags_coalesce_whole(name: str) -> None:
    """GRO over QinQ(+MPLS) segments: one aggregate, the payloads in order behind the first headers."""
    case = next(case for case in CASES if case.name == name)
    x = frames_of(case / "kernel_out.pcap")
    packets = coalesce(x, generation_of(case), mpls=True)
    assert len(packets) == 1 and packets[0].segs == len(x)


def test_mpls_frames_pass_without_the_option() -> None:
    """The kernel has no MPLS GRO: without --mpls the labelled vectors come out as they went in."""
    case = VECTORS / "cases" / "ipv4_tcp_exact_multiple"
    x = frames_of(case / "kernel_out.pcap")
    packets = coalesce(x, "6.1")
    assert [packet.data for packet in packets] == x
    assert {packet.reason for packet in packets} == {"no GRO for ethertype 0x8847"}


# --- synthetic streams: softgso's GSO makes x, GRO then GSO gives it back ---------------------------

TCP_OPTIONS = [b"", bytes.fromhex("0101080a0000000100000002"), bytes.fromhex("01010402")]


@settings(max_examples=60, deadline=None)
@given(ipv6=st.booleans(), payload=st.integers(1, 9000), mtu=st.integers(576, 9000),
       options=st.sampled_from(TCP_OPTIONS), df=st.booleans(), ip_id=st.integers(0, 0xFFFF),
       fixed=st.booleans(), psh=st.booleans(), vlan=st.integers(0, 2), kernel=st.sampled_from(["6.1", "mainline"]))
def test_synthetic_stream_reversible(ipv6: bool, payload: int, mtu: int, options: bytes, df: bool, ip_id: int,
                                     fixed: bool, psh: bool, vlan: int, kernel: str) -> None:
    """segment(coalesce(segment(super))) == segment(super) whenever GRO merges; and GRO merges every
    MSS-sized stream of one flow into one packet when it fits 64 KiB and IDs follow a GRO pattern."""
    flags = 0x18 if psh else 0x10
    frame = build_frame(SuperPacketSpec(ipv6=ipv6, payload=bytes(range(256)) * (payload // 256 + 1),
                                        tcp_options=options, tcp_flags=flags, df=df, ip_id=ip_id))
    head = frame[:12]
    tags = b"".join(bytes.fromhex("8100") + (100 + i).to_bytes(2, "big") for i in range(vlan))
    frame = head + tags + frame[12:]
    device = _device("no-offload", mtu, None)
    segmented = process_frame(frame, SegmentOptions(device=device, fixed_id=fixed and not ipv6, kernel="6.1"))
    x = segmented.frames
    if len(x) < 2:
        return
    packets = coalesce(x, kernel)
    assert sum(packet.segs for packet in packets) == len(x)
    merged = [packet for packet in packets if packet.segs > 1]
    if not ipv6 and fixed and not df and kernel == "6.1":
        assert not merged  # fixed IDs need DF before the 2025 series: nothing merges
    else:
        assert merged, [packet.reason for packet in packets]
    assert segment_back(packets, "no-offload", mtu, "6.1") == x


def test_more_than_8_interleaved_flows_evict_the_oldest() -> None:
    """Zero hash: one bucket of 8. Nine interleaved flows: the 9th's first frame evicts flow 1's packet
    (the least recently held, not the least recently merged) and each flow stays reversible."""
    streams = []
    for flow in range(9):
        frame = build_frame(SuperPacketSpec(payload=bytes([flow]) * 4000, seq=1000 * flow, tcp_flags=0x10))
        # a source port per flow (the checksum field holds the pseudo-header seed: ports are not in it)
        frame = frame[:34] + (40000 + flow).to_bytes(2, "big") + frame[36:]
        result = process_frame(frame, SegmentOptions(device=_device("no-offload", 1500, None), input_csum="auto"))
        streams.append(result.frames)
    x = [segments[i] for i in range(3) for segments in streams]  # A1 B1 .. I1 A2 B2 .. I2 A3 ..
    packets = coalesce(x, "mainline")
    assert packets[0].reason == "flow table full (8 held in the bucket)" and packets[0].segs == 1
    assert packets[0].data == x[0]
    for flow, segments in enumerate(streams):
        mine = [p for p in packets if int.from_bytes(p.data[34:36], "big") == 40000 + flow]
        assert segment_back(mine, "no-offload", 1500, "6.1") == segments
