"""Kernel vectors from a real receive path (tools/kernel_oracle/gro_cases.py): frames injected into a
veth whose receiving end runs GRO (Linux 6.1 and 6.12 in the oracle VM), and what GRO handed to the
stack, with its virtio_net_hdr. softgso's GRO must give the same packets, byte for byte, in the same
order, with the same gso_size, gso_type and checksum state.

Poll ends: each burst of the injection is one poll group (a leading frame GRO passes up takes the
immediate poll; gro_flush_timeout with napi_defer_hard_irqs then polls the burst together), and within
a burst every 64 frames end a poll (NAPI weight; at HZ=250 a poll that used its whole budget flushes
everything): the same as ``coalesce --batch 64`` per burst. The flow hash is 0 (frames from a packet
socket on veth): one bucket of 8.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from softgso.gro import GroDevice, GroNode, GroPacket, coalesce_poll
from softgso.gro.coalesce import compiled_params

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "kernel" / "gro"
CASES = sorted(path.parent for path in VECTORS.glob("*/*/kernel_out.pcap"))
VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
VIRTIO_NET_HDR_F_DATA_VALID = 2
VIRTIO_GSO = {"tcpv4": 1, "udp_l4": 5, "tcpv6": 4}
VIRTIO_NET_HDR_GSO_ECN = 0x80


def records(path: Path) -> list[tuple[int, bytes]]:
    data = path.read_bytes()
    out, offset = [], 24
    while offset < len(data):
        seconds, _, caplen, _ = struct.unpack_from("<IIII", data, offset)
        out.append((seconds - 1_700_000_000, data[offset + 16 : offset + 16 + caplen]))
        offset += 16 + caplen
    return out


def device_of(meta: dict) -> GroDevice:
    generation = "6.12" if meta["kernel_release"].startswith("6.12") else "6.1"
    device = GroDevice(kernel=generation)
    failed = {entry.split(":")[0] for entry in meta.get("guest_log", [])}  # setup commands that printed an error
    for line in meta["receiver"]["setup"]:
        if line in failed:
            continue
        words = line.split()
        if "rx-udp-gro-forwarding" in words and words[-1] == "on":
            device.udp_gro_forwarding = True
        if "gro_max_size" in words:
            device.gro_max_size = int(words[words.index("gro_max_size") + 1])
        if "gro_ipv4_max_size" in words:
            device.gro_ipv4_max_size = int(words[words.index("gro_ipv4_max_size") + 1])
    return device


def polls(frames: list[tuple[int, bytes]]) -> list[list[bytes]]:
    """The frames of each poll: every burst apart, and within a burst every 64 frames."""
    out: list[list[bytes]] = []
    for burst in sorted({b for b, _ in frames}):
        in_burst = [frame for b, frame in frames if b == burst]
        out += [in_burst[start : start + 64] for start in range(0, len(in_burst), 64)]
    return out


def node_poll(frames: list[bytes], device: GroDevice) -> list[GroPacket]:
    """A poll through GroNode frame by frame, then its flush."""
    node = GroNode(device)
    packets: list[GroPacket] = []
    for frame in frames:
        packets += node.receive(frame)
    return packets + node.flush()


def compiled_poll(frames: list[bytes], device: GroDevice) -> list[GroPacket]:
    """A poll through the compiled GRO where it takes it (counted), else GroNode."""
    try:
        packets = coalesce_poll(frames, device, engine="compiled")
    except ValueError:
        return node_poll(frames, device)
    COMPILED_TOOK.append(sum(p.segs > 1 for p in packets))
    return packets


COMPILED_TOOK: list[int] = []  # per poll the compiled GRO took: its aggregates

# every way a poll is coalesced, each held to the kernel's output
POLL_RUNNERS = {"node": node_poll, "coalesce_poll": coalesce_poll, "compiled": compiled_poll}


def replay(case: Path, run_poll=node_poll) -> tuple[list[GroPacket], dict]:
    meta = json.loads((case / "meta.json").read_text())
    device = device_of(meta)
    packets: list[GroPacket] = []
    for frames in polls(records(case / "input.pcap")):
        packets += run_poll(frames, device)
    return packets, meta


def as_tapped(frame: bytes) -> bytes:
    """The frame as the receiver's packet socket reads it: __netif_receive_skb_core untags (skb_vlan_untag,
    after GRO, before the taps) the outer 802.1Q/802.1ad tag into the skb's metadata, which PACKET_AUXDATA
    gives beside the bytes (libpcap, hence tcpdump, puts it back in). softgso's output keeps it in the bytes."""
    if int.from_bytes(frame[12:14], "big") in (0x8100, 0x88A8):
        return frame[:12] + frame[16:]
    return frame


def test_vectors_found() -> None:
    if not VECTORS.exists():
        pytest.skip("no GRO kernel vectors recorded")
    assert len(CASES) >= 50


# IPv6 BIG TCP on this veth: gro_max_size 185000 was set (`ip -d link` says so) and the kernel still
# completed the aggregate at 64 KiB, on 6.1 and 6.12; softgso follows skb_gro_receive as read (the
# >64 KiB branch: TCP, not encapsulated, 8 bytes of headroom), so it builds one 120 KiB packet.
# Why this veth refuses is not established (docs/kernel-notes.md, "GRO").
BIG_TCP_ON_VETH = {"big_tcp_ipv6_185000"}


@pytest.mark.parametrize("runner", POLL_RUNNERS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: str(case.relative_to(VECTORS)))
def test_gro_kernel_vector(case: Path, runner: str) -> None:
    if case.name in BIG_TCP_ON_VETH:
        pytest.xfail("IPv6 BIG TCP: the veth receiver stopped at 64 KiB (cause not established)")
    packets, meta = replay(case, POLL_RUNNERS[runner])
    kernel = [frame for _, frame in records(case / "kernel_out.pcap")]
    assert [as_tapped(p.data) for p in packets] == kernel
    for packet, vnet in zip(packets, meta["outputs"], strict=True):
        if vnet is None or "error" in vnet:
            assert packet.segs > 1  # only an aggregate's gso_type can be one the header cannot say
            continue
        if packet.segs > 1:
            expected_type = VIRTIO_GSO[packet.family] | (VIRTIO_NET_HDR_GSO_ECN if "ecn" in packet.gso_flags else 0)
            assert (vnet["flags"], vnet["gso_type"], vnet["gso_size"]) == (
                VIRTIO_NET_HDR_F_NEEDS_CSUM, expected_type, packet.gso_size)
        else:
            expected = VIRTIO_NET_HDR_F_DATA_VALID if packet.ip_summed == "unnecessary" else 0
            assert (vnet["flags"], vnet["gso_type"], vnet["gso_size"]) == (expected, 0, 0)


def test_compiled_gro_takes_vectors() -> None:
    """Not vacuous: the compiled GRO itself coalesces many of the kernel's polls (the rest are shapes it
    hands to the scalar engine), so the "compiled" runs above hold it to the kernel."""
    if not CASES:
        pytest.skip("no GRO kernel vectors recorded")
    if compiled_params(GroDevice(), 64) is None:
        pytest.skip("the compiled GRO (softgso.gro._coalesce) is not built: no C compiler")
    COMPILED_TOOK.clear()
    for case in CASES:
        replay(case, compiled_poll)
    assert len(COMPILED_TOOK) >= 40 and sum(COMPILED_TOOK) >= 40, COMPILED_TOOK


def test_vectors_coalesce() -> None:
    """Not vacuous: most vectors hold aggregates."""
    if not CASES:
        pytest.skip("no GRO kernel vectors recorded")
    merged = sum(any(p.segs > 1 for p in replay(case)[0]) for case in CASES)
    assert merged >= len(CASES) // 2


def test_compiled_counts_of_vectors() -> None:
    """inspect's preview counts a poll without building it (_coalesce.count_frames): on every kernel poll it
    takes, the counts are those of the packets the scalar engine builds (held to the kernel above); it
    takes the polls coalesce_frames takes, and those it hands back for a bad TCP checksum alone (the
    selftest's csum cases: counted, each such frame passed up)."""
    if not CASES:
        pytest.skip("no GRO kernel vectors recorded")
    if compiled_params(GroDevice(), 64) is None:
        pytest.skip("the compiled GRO (softgso.gro._coalesce) is not built: no C compiler")
    from softgso.gro import CoalesceSummary
    from softgso.gro.coalesce import add_counted, compiled_gro, new_counters

    took = aggregates = bad_checksums = 0
    for case in CASES:
        device = device_of(json.loads((case / "meta.json").read_text()))
        params = compiled_params(device, 64)
        for frames in polls(records(case / "input.pcap")):
            counters = new_counters()
            taken = params is not None and compiled_gro.count_frames(frames, params, counters, 0)
            try:
                coalesce_poll(frames, device, engine="compiled")
                assert taken, case
            except ValueError:
                pass
            if not taken:
                continue
            expected = CoalesceSummary(frames_in=len(frames), polls=1)
            for packet in coalesce_poll(frames, device, engine="scalar"):  # meta: the first frame's index
                expected.count(packet, packet.meta)
            summary = CoalesceSummary(frames_in=counters[0], polls=counters[4])
            add_counted(summary, counters)
            assert summary == expected, case
            took += 1
            aggregates += summary.coalesced
            bad_checksums += summary.passed["bad TCP checksum"]
    assert took >= 40 and aggregates >= 40 and bad_checksums >= 1, (took, aggregates, bad_checksums)
