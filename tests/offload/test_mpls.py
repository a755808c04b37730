"""MPLS GSO rules (spec kernel-gso.md §3.2, the worked example §12), one test per rule.

mpls_gso_segment strips the label stack, has the inner packet segmented and puts the link-layer
header and every label back on every segment. The labelled super-packets are built by hand as
§3.3's metadata contract says a label push leaves them; Scapy decodes the segments.
"""

from __future__ import annotations

import struct

import pytest

from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.errors import InvalidPacketError, ProtocolNotSupportedError
from softgso.features import PROFILES, GsoType, IpSummed
from softgso.job import Outcome, SegmentOptions, process_frame
from softgso.packet import Packet
from softgso.xmit import transmit

scapy_all = pytest.importorskip("scapy.all")
scapy_mpls = pytest.importorskip("scapy.contrib.mpls")

PAYLOAD = bytes(range(256)) * 20


def _labelled(tags: tuple[tuple[int, int], ...], labels: int) -> bytes:
    frame = build_frame(SuperPacketSpec(payload=PAYLOAD, partial_checksum=False, vlan_tags=tags))
    at = 12 + 4 * len(tags)  # the ethertype under the tags
    stack = b"".join(struct.pack("!I", ((100 + n) << 12) | (0x100 if n == labels - 1 else 0) | 64)
                     for n in range(labels))
    return frame[:at] + b"\x88\x47" + stack + frame[at + 2 :]


@pytest.mark.parametrize("kernel", ["6.1", "6.12"])
@pytest.mark.parametrize("tags", [((0x8100, 10),), ((0x88A8, 100), (0x8100, 200)),
                                  ((0x88A8, 1), (0x8100, 2), (0x8100, 3))])
@pytest.mark.parametrize("labels", [1, 2])
def test_every_segment_keeps_the_tags_and_labels_in_front_of_the_label_stack(
        tags: tuple[tuple[int, int], ...], labels: int, kernel: str) -> None:
    frame = _labelled(tags, labels)
    result = process_frame(frame, SegmentOptions(device=PROFILES["no-offload"], kernel=kernel))
    assert result.outcome == Outcome.SEGMENTED
    l2 = 14 + 4 * len(tags) + 4 * labels
    payload = b""
    for segment in result.frames:
        decoded = scapy_all.Ether(segment)
        assert decoded.dst == scapy_all.Ether(frame).dst and decoded.src == scapy_all.Ether(frame).src
        vlans = []
        layer = decoded.payload
        while isinstance(layer, scapy_all.Dot1Q | scapy_all.Dot1AD):
            vlans.append(layer.vlan)
            layer = layer.payload
        assert vlans == [tci for _, tci in tags]
        mpls = scapy_mpls.MPLS(bytes(layer))
        stack = []
        while True:
            stack.append((mpls.label, mpls.s))
            if mpls.s:
                break
            mpls = scapy_mpls.MPLS(bytes(mpls.payload))
        assert stack == [(100 + n, int(n == labels - 1)) for n in range(labels)]
        ip = scapy_all.IP(bytes(mpls.payload))
        assert len(segment) - l2 <= 1500 + 4 * labels and ip.len == len(segment) - l2
        tcp = ip[scapy_all.TCP]
        check = tcp.chksum
        del tcp.chksum
        assert scapy_all.IP(bytes(ip))[scapy_all.TCP].chksum == check
        payload += bytes(tcp.payload)
    assert payload == PAYLOAD


# --- the worked example (§12): Eth + 1 label + IPv4 + TCP(32), 5000 bytes, gso_size 1448 --------------


def worked_example(labels: tuple[bytes, ...] = (bytes.fromhex("00064140"),), *, inner_protocol: int = 0x0800,
                   stack_len: int | None = None) -> Packet:
    """§12's super-packet with §3.3's metadata: mac_len 14, network header at the top label."""
    tcp = scapy_all.TCP(sport=40000, dport=5201, seq=1_000_000, flags=0x98,
                        options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))])
    ip = scapy_all.IP(src="10.0.0.1", dst="10.0.0.2", id=0x1234, flags="DF", ttl=64, proto=6)
    plain = scapy_all.raw(scapy_all.Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / ip / tcp
                          / scapy_all.Raw(bytes(5000)))
    stack = b"".join(labels)
    skb = Packet.from_ethernet(plain[:12] + b"\x88\x47" + stack + plain[14:])
    skb.inner_protocol = inner_protocol
    skb.inner_network_header = 14 + (len(stack) if stack_len is None else stack_len)
    skb.transport_header = 14 + len(stack) + 20
    skb.gso_size, skb.gso_type = 1448, GsoType.TCPV4
    return skb


def test_worked_example_frame_lengths_ids_sequence_numbers_and_flags() -> None:
    frames = [bytes(p.data) for p in transmit(worked_example(), PROFILES["nic-tso-no-mpls-gso"])]
    assert [len(frame) for frame in frames] == [1518, 1518, 1518, 726]
    decoded = [scapy_mpls.MPLS(frame[14:]) for frame in frames]
    ips = [scapy_all.IP(scapy_all.raw(mpls.payload)) for mpls in decoded]
    assert [ip.len for ip in ips] == [1500, 1500, 1500, 708]
    assert [ip.id for ip in ips] == [0x1234, 0x1235, 0x1236, 0x1237]
    assert all(int(ip.flags) == 2 for ip in ips), "DF copied"
    assert [ip[scapy_all.TCP].seq for ip in ips] == [1_000_000, 1_001_448, 1_002_896, 1_004_344]
    assert [int(ip[scapy_all.TCP].flags) for ip in ips] == [0x90, 0x10, 0x10, 0x18]


def test_the_link_header_and_label_stack_entry_are_copied_verbatim_ttl_included() -> None:
    skb = worked_example()
    head = bytes(skb.data[:18])
    for packet in transmit(skb, PROFILES["nic-tso-no-mpls-gso"]):
        assert bytes(packet.data[:18]) == head
        assert bytes(packet.data[14:18]) == bytes.fromhex("00064140"), "label 100, TC 0, S 1, TTL 64"


def test_a_device_without_mpls_features_gets_full_checksums() -> None:
    from tunnel_frames import checksums_verify

    out = transmit(worked_example(), PROFILES["nic-tso-no-mpls-gso"])
    assert all(packet.ip_summed == IpSummed.NONE for packet in out)
    assert all(checksums_verify(bytes(packet.data)) for packet in out)


def test_two_labels_shift_everything_by_four_bytes() -> None:
    labels = (bytes.fromhex("00064040"), bytes.fromhex("00065140"))  # label 100 (S 0), label 101 (S 1)
    frames = [bytes(p.data) for p in transmit(worked_example(labels), PROFILES["nic-tso-no-mpls-gso"])]
    assert [len(frame) for frame in frames] == [1522, 1522, 1522, 730]
    assert {frame[14:22] for frame in frames} == {b"".join(labels)}


@pytest.mark.parametrize("label", [0, 1, 2, 3, 7, 13, 14, 15])
def test_reserved_labels_are_copied_like_any_other(label: int) -> None:
    entry = (label << 12 | 0x100 | 64).to_bytes(4, "big")
    frames = [bytes(p.data) for p in transmit(worked_example((entry,)), PROFILES["no-offload"])]
    assert len(frames) == 4 and {frame[14:18] for frame in frames} == {entry}


def test_the_inner_protocol_comes_from_metadata_and_an_unknown_one_is_refused() -> None:
    # §3.2: nothing is sniffed; ARP's ethertype has no GSO handler -> -EPROTONOSUPPORT
    with pytest.raises(ProtocolNotSupportedError):
        transmit(worked_example(inner_protocol=0x0806), PROFILES["no-offload"])


@pytest.mark.parametrize("stack_len", [0, 2, 6])
def test_a_label_stack_length_not_a_positive_multiple_of_4_is_refused(stack_len: int) -> None:
    # §3.2 step 4: mpls_hlen <= 0 or mpls_hlen % 4 != 0 -> -EINVAL
    with pytest.raises(InvalidPacketError, match="EINVAL"):
        transmit(worked_example(stack_len=stack_len), PROFILES["no-offload"])
