"""MPLS with a tunnel on the routes Linux keeps apart (spec tunnels-gso.md 7.3, 7.4): what a real kernel did.

Recorded by tools/kernel_oracle/tunnel_cases.py (``mpls_tunnel_cases``, ``mpls_underlay_route_cases``) in
tests/vectors/kernel/tunnels/<generation>/, ``control`` in meta.json saying which outcome the case records:

* ``MPLS GSO before encapsulation`` (7.3): labels pushed above the tunnel device tnl0, by tc ``mpls push``
  on tnl0's egress or by an ``encap mpls`` route out of tnl0 that a local TCP socket sends on.
  ``before_tunnel.pcap`` is the MPLS super-packet tnl0's egress saw (Ethernet for an Ethernet tunnel,
  Linux cooked for an L3 one, with AF_PACKET's own header fields); ``kernel_out.pcap`` what left the underlay.
* ``refused`` (7.4): tc ``mpls push`` on the underlay's egress of a tunnel packet the driver left
  encapsulated; ``input.pcap`` is that packet, nothing left.
* ``labels pushed``: the same push on a packet the driver no longer marks as encapsulated.
* ``labels above a tunnel super-packet`` (7.4, last row): an ``encap mpls`` route to the tunnel's
  remote; ``input.pcap`` is the labelled super-packet at the underlay's egress.

Every assertion on the kernel's behaviour reads the kernel's frames (decoded here by hand, with no
softgso code) or the counters it recorded; softgso is then held to the same frames and refusals.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet, Raw

from softgso.check.golden import read_pcap_frames
from softgso.cli.action_grammar import parse_action
from softgso.features import PROFILES
from softgso.job import Outcome, SegmentOptions, process_frame
from softgso.virtio import kernel_generation_of_release

TUNNELS = Path(__file__).parent / "kernel" / "tunnels"
CASES = sorted(p.parent for p in TUNNELS.rglob("meta.json") if p.parent.name.startswith(("mplspush_", "mplsroute_")))
ETH_P_MPLS_UC = 0x8847


def _meta(case: Path) -> dict:
    return json.loads((case / "meta.json").read_text())


def _of(control: str) -> list[Path]:
    return [c for c in CASES if _meta(c).get("control") == control]


def _ids(cases: list[Path]) -> list[str]:
    return [str(c.relative_to(TUNNELS)) for c in cases]


FIRST = _of("MPLS GSO before encapsulation")
REFUSED = _of("refused")
PUSHED = _of("labels pushed")
ABOVE = _of("labels above a tunnel super-packet")


def _options(meta: dict, **kw: object) -> SegmentOptions:
    return SegmentOptions(device=PROFILES["no-offload"], kernel=kernel_generation_of_release(meta["kernel_release"]),
                          **kw)  # type: ignore[arg-type]


def _ipv6_payload(frame: bytes, at: int) -> tuple[int, int]:
    """(next header, offset) past an IPv6 header and its hop-by-hop / destination-options headers."""
    proto, at = frame[at + 6], at + 40
    while proto in (0, 60):
        proto, at = frame[at], at + (frame[at + 1] + 1) * 8
    return proto, at


def _mpls_in(frame: bytes) -> tuple[str, int]:
    """(tunnel, offset of the label stack) in one underlay frame: outer Ethernet, IPv4/IPv6, then GRE
    (protocol 0x8847, or 0x6558 and an Ethernet header of type 0x8847), VXLAN (UDP 4789, Ethernet,
    0x8847) or IP protocol 137 (MPLS in IP). Decoded by hand: no softgso reader involved."""
    ethertype = int.from_bytes(frame[12:14], "big")
    if ethertype == 0x0800:
        proto, at = frame[23], 14 + (frame[14] & 0x0F) * 4
    else:
        assert ethertype == 0x86DD
        proto, at = _ipv6_payload(frame, 14)
    if proto == 137:
        return "mpls-in-ip", at
    if proto == 47:
        flags, inner = int.from_bytes(frame[at : at + 2], "big"), int.from_bytes(frame[at + 2 : at + 4], "big")
        at += 4 + 4 * bool(flags & 0x8000) + 4 * bool(flags & 0x2000) + 4 * bool(flags & 0x1000)
        if inner == 0x6558:
            assert int.from_bytes(frame[at + 12 : at + 14], "big") == ETH_P_MPLS_UC
            return "gretap", at + 14
        assert inner == ETH_P_MPLS_UC
        return "gre", at
    assert proto == 17 and int.from_bytes(frame[at + 2 : at + 4], "big") == 4789
    at += 8 + 8
    assert int.from_bytes(frame[at + 12 : at + 14], "big") == ETH_P_MPLS_UC
    return "vxlan", at + 14


def _labels(data: bytes, at: int) -> tuple[bytes, int]:
    """The label stack at ``at`` (to the S bit) and where it ends."""
    start = at
    while not data[at + 2] & 0x01:
        at += 4
    return data[start : at + 4], at + 4


def _tnl0_mtu(meta: dict) -> int:
    found = re.search(r"\bmtu (\d+)", meta["after"]["ip -s link show tnl0"])
    assert found
    return int(found.group(1))


def _sent_payload(meta: dict) -> bytes:
    """The TCP payload a case's local TCP socket wrote (tunnel_guest's pattern); empty for an injected packet."""
    if not meta.get("tcp_send"):
        return b""
    return bytes((i * 7 + 3) & 0xFF for i in range(meta["tcp_send"]["payload_len"]))


def _ip(data: bytes) -> Packet:
    return IP(data) if data[0] >> 4 == 4 else IPv6(data)


def _recomputed(packet: Packet) -> bytes:
    """The packet with its IPv4 header and TCP checksums computed by Scapy."""
    copy = packet.copy()
    if isinstance(copy, IP):
        del copy.chksum
    del copy[TCP].chksum
    return bytes(type(packet)(bytes(copy)))


def _before(case: Path) -> tuple[list[bytes], int]:
    """The frames tnl0's egress saw after the push, and where their label stack starts: 14 behind an
    Ethernet header (Ethernet tunnels), 16 behind a Linux cooked header (L3 tunnels). Read by hand."""
    path = case / "before_tunnel.pcap"
    linktype = int.from_bytes(path.read_bytes()[20:24], "little")
    assert linktype in (1, 113)
    return read_pcap_frames(path), 14 if linktype == 1 else 16


def _as_softgso_reads_it(case: Path) -> bytes:
    """The MPLS super-packet as softgso's capture reader hands it to the engine (a cooked record with
    a synthetic Ethernet header), the way ``softgso segment`` would read the file."""
    from softgso.io import open_capture, to_ethernet

    with open_capture(case / "before_tunnel.pcap") as capture:
        records = [to_ethernet(record) for record in capture]
    assert len(records) == 1 and records[0] is not None
    return bytes(records[0].frame)


def test_the_mpls_tunnel_cases_are_there() -> None:
    for generation in ("6.1", "6.12"):
        names = {c.name for c in CASES if c.parent.name == generation}
        assert names >= {
            "mplspush_gre4_control__tx_off", "mplspush_gretap4_2labels_control__tx_off",
            "mplspush_vxlan4_udpcsum_in6_control__tx_off", "mplspush_ipip_mplsip_control__tx_off",
            "mplspush_ip6gre_in4_control__tx_off", "mplsroute_gre4_control__tx_off",
            "mplsroute_gretap4_2labels_control__tx_off", "mplsroute_vxlan4_udpcsum_control__tx_off",
            "mplsroute_gretap4_in6_control__tx_off",
            "mplsroute_ipip_mplsip_control__tx_off", "mplspush_underlay_vxlan4_refused_control__tx_off",
            "mplspush_underlay_gre4_refused_control__tx_off", "mplsroute_underlay_vxlan4_control__tx_off",
            "mplsroute_underlay_gre4_control__tx_off", "mplspush_underlay_vxlan4_single_partial_refused_control__tx_off",
            "mplspush_underlay_vxlan4_single_complete_control__tx_off",
            "mplspush_underlay_gre4_single_partial_refused_control__tx_off",
            "mplspush_underlay_gre4_single_complete_control__tx_off"}, generation


@pytest.mark.parametrize("case", FIRST, ids=_ids(FIRST))
def test_labels_above_a_tunnel_device_are_cut_there_and_each_segment_encapsulated(case: Path) -> None:
    """Spec 7.3: one MPLS super-packet at tnl0's egress; tnl0 cuts it (software MPLS GSO: tunnel devices
    have no GSO in mpls_features) and encapsulates each segment, so the underlay never carries a tunnel
    super-packet. Each frame fits, carries the whole label stack inside the tunnel and a valid inner
    TCP segment; the segments hold every payload byte in order."""
    meta = _meta(case)
    before, label_at = _before(case)
    sent = read_pcap_frames(case / "kernel_out.pcap")
    mirrored = read_pcap_frames(case / "input.pcap")
    mtu = _tnl0_mtu(meta)
    assert len(before) == 1, "one MPLS super-packet at tnl0's egress"
    assert len(before[0]) - label_at > mtu, "bigger than tnl0's MTU: a GSO packet"
    assert len(sent) >= 2 and len(mirrored) == len(sent), "veth0's egress saw the segments, no tunnel super-packet"
    stack, ip_at = _labels(before[0], label_at)
    payload = b""
    for frame in sent:
        assert len(frame) - 14 <= 1500
        _, at = _mpls_in(frame)
        labels, ip = _labels(frame, at)
        assert labels == stack, "the whole label stack, as pushed, on every segment"
        assert len(frame) - at <= mtu, "each MPLS segment fits tnl0's MTU"
        packet = _ip(frame[ip:])
        assert _recomputed(packet) == bytes(packet), "inner checksums complete (tnl0's MPLS GSO has no offload)"
        payload += bytes(packet[TCP][Raw].load)
    expected = _sent_payload(meta)
    if not expected:  # an injected super-packet: its own TCP payload
        expected = bytes(_ip(before[0][ip_at:])[TCP][Raw].load)
    assert payload == expected, "every payload byte, in order"
    # softgso leaves each of these frames alone (each fits; none is a super-packet)
    for frame in sent:
        assert process_frame(frame, _options(meta)).outcome == Outcome.UNCHANGED


@pytest.mark.parametrize("case", FIRST, ids=_ids(FIRST))
def test_softgso_cuts_the_mpls_super_packet_as_the_tunnel_device_did(case: Path) -> None:
    """The MPLS super-packet captured at tnl0's egress, segmented by softgso with the kernel's gso_size
    (the TCP socket's MSS, or the virtio header's) and no offload (the checksums tnl0's MPLS GSO
    completes), is byte for byte what each encapsulated packet on the wire carries: the Ethernet frame
    inside VXLAN/gretap, the MPLS packet inside GRE, ip6gre or MPLS-in-IP (the cooked capture's
    synthetic Ethernet header then not compared)."""
    meta = _meta(case)
    _, label_at = _before(case)
    sent = read_pcap_frames(case / "kernel_out.pcap")
    carried = []
    for frame in sent:
        _, at = _mpls_in(frame)
        carried.append(frame[at - 14 :] if label_at == 14 else frame[at:])
    gso_size = meta["tcp_mss"] if meta.get("tcp_send") else meta["gso_size"]
    result = process_frame(_as_softgso_reads_it(case), _options(meta, gso_size=gso_size))
    assert result.outcome == Outcome.SEGMENTED, result.reason
    ours = result.frames if label_at == 14 else [frame[14:] for frame in result.frames]
    assert ours == carried


@pytest.mark.parametrize("case", REFUSED, ids=_ids(REFUSED))
def test_an_mpls_push_on_an_encapsulated_packet_is_refused(case: Path) -> None:
    """Spec 7.4: tc mpls push on the underlay's egress of a tunnel packet still marked encapsulated (a
    super-packet, or one packet whose inner checksum is left to the device): skb_mpls_push returns
    -EINVAL, act_mpls drops it, nothing leaves. softgso, given the captured packet and the same push,
    refuses it for the same reason; without the push it is an ordinary tunnel packet."""
    meta = _meta(case)
    captured = read_pcap_frames(case / "input.pcap")
    assert len(captured) == 1 and read_pcap_frames(case / "kernel_out.pcap") == []
    stats = meta["after"]["tc -s filter show dev veth0 egress"]
    mpls_action = stats[stats.index("mpls  push") :]
    assert re.search(r"Sent \d+ bytes \d+ pkt \(dropped 1,", mpls_action), "act_mpls counted the drop"
    push = parse_action("push-mpls:300:0:64")
    result = process_frame(captured[0], _options(meta, gso_size=meta["gso_size"], actions=push))
    assert result.outcome == Outcome.REFUSED and "skb_mpls_push" in str(result.reason)
    assert "encapsulated" in str(result.reason)
    plain = process_frame(captured[0], _options(meta, gso_size=meta["gso_size"]))
    assert plain.outcome in (Outcome.SEGMENTED, Outcome.UNCHANGED), plain.reason


@pytest.mark.parametrize("case", PUSHED, ids=_ids(PUSHED))
def test_an_mpls_push_on_a_packet_no_longer_encapsulated_leaves_labelled(case: Path) -> None:
    """One tunnel packet whose inner checksum was complete: iptunnel_handle_offloads cleared
    skb->encapsulation, the push succeeds; softgso with the same push sends the kernel's bytes."""
    meta = _meta(case)
    captured = read_pcap_frames(case / "input.pcap")
    sent = read_pcap_frames(case / "kernel_out.pcap")
    assert len(captured) == len(sent) == 1
    assert sent[0][12:14] == b"\x88\x47" and sent[0][14:18] == bytes.fromhex("0012c140")  # label 300, S, TTL 64
    result = process_frame(captured[0], _options(meta, actions=parse_action("push-mpls:300:0:64")))
    assert result.frames == sent, result.reason


@pytest.mark.parametrize("case", ABOVE, ids=_ids(ABOVE))
def test_labels_above_a_tunnel_super_packet_are_dropped_by_the_kernel_and_reported_by_softgso(case: Path) -> None:
    """Spec 7.4, last row, as the kernel showed it: the encap mpls route pushes labels on the tunnel
    super-packet (captured at the underlay's egress); the underlay device's GSO cannot cut that state
    (mpls_xmit made the outer IP header the inner one while the skb stays encapsulated) and drops it:
    nothing leaves, veth0's tx_dropped counts it, nothing is logged. softgso reports the packet as
    not segmented, naming the drop; --tunnel-under-labels (beyond the kernel) segments it."""
    meta = _meta(case)
    assert "guest_failure" not in meta, "the guest survived"
    captured = read_pcap_frames(case / "input.pcap")
    assert len(captured) == 1 and len(captured[0]) - 14 > 1500
    frame = captured[0]
    assert frame[12:14] == b"\x88\x47" and frame[14:18] == bytes.fromhex("000c8140")  # label 200, S, TTL 64
    assert frame[18] >> 4 == 4 and frame[18 + 9] in (17, 47)  # the tunnel's outer IPv4 header under the label
    assert read_pcap_frames(case / "kernel_out.pcap") == []
    assert meta["veth0_tx_dropped"] == "1"
    for text in (meta["after"]["dmesg -c"], (case / "console.log").read_text(errors="replace")):
        assert not re.search(r"WARNING|BUG|Oops|Call Trace|general protection", text)
    result = process_frame(frame, _options(meta))
    assert result.outcome == Outcome.NOT_SEGMENTED
    assert "label stack" in result.kind and "drops" in result.kind
    beyond = process_frame(frame, _options(meta, tunnel_in_labels=True))
    assert beyond.outcome == Outcome.SEGMENTED and len(beyond.frames) >= 2
    assert all(f[:18] == frame[:18] and len(f) - 14 <= 1500 for f in beyond.frames)
