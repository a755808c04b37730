"""A captured super-packet with VLAN tags in front of its label stack: every segment carries the whole
link-layer header, every tag and every label (mpls_gso_segment puts mac_len bytes back before the
top label). Checked with Scapy, an independent decoder."""

from __future__ import annotations

import struct

import pytest

from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.features import PROFILES
from softgso.job import Outcome, SegmentOptions, process_frame

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
