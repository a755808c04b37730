"""Every tunnelled TCP super-packet of the real captures comes out segmented by a plain
``softgso segment IN OUT --mtu 1500``: frames within the MTU, each with the full outer headers and
a valid inner segment, every inner payload byte kept. Scapy decodes and judges; the counts of
super-packets are those of ../shared/captures/INDEX.md, not softgso's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from scapy.all import TCP, UDP, Ether, raw, rdpcap  # type: ignore[attr-defined]
from tunnel_frames import checksums_verify

from softgso.cli.commands import main as softgso_main
from softgso.features import PROFILES
from softgso.job import Outcome, SegmentOptions, process_frame

CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "captures"
if not CAPTURES.is_dir():
    pytest.skip(f"the capture corpus is not here: {CAPTURES}", allow_module_level=True)

# INDEX.md: "tunnelled TCP super xN"
TUNNELLED_TCP_SUPERS = {
    "tcpdump/gso-ipv4-geneve-ipv4.pcap": 1,
    "tcpdump/gso-ipv4-vxlan-ipv6.pcap": 1,
    "tcpdump/gso-ipv6-vxlan-ipv6.pcap": 1,
    "tcpdump/bigtcp-ipv4-vxlan-ipv4.pcap": 1,
    "tcpdump/bigtcp-ipv6-geneve-ipv6.pcap": 1,
    "zeek/geneve-47101.pcap": 4,
    "zeek/vxlan-encapsulated-http.pcap": 1,
    "peafowl/6in4tunnel.pcap": 2,
}
MTU = 1500


@pytest.mark.parametrize("name", sorted(TUNNELLED_TCP_SUPERS))
def test_plain_segment_cuts_every_tunnelled_tcp_super_packet(name: str, tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    result = CliRunner().invoke(softgso_main, ["segment", str(CAPTURES / name), str(out), "--mtu", str(MTU), "-q"])
    assert result.exit_code == 0, result.output
    for frame in rdpcap(str(out)):
        assert len(raw(frame)) - 14 <= MTU
    supers = segmented = 0
    options = SegmentOptions(device=PROFILES["no-offload"])
    for packet in rdpcap(str(CAPTURES / name)):
        frame = raw(packet)
        if len(frame) - 14 <= MTU:
            continue
        supers += 1
        outcome = process_frame(frame, options)
        assert outcome.outcome == Outcome.SEGMENTED, outcome.reason
        segmented += 1
        _check_segments(frame, outcome.frames)
    assert supers == segmented == TUNNELLED_TCP_SUPERS[name]


def _check_segments(super_packet: bytes, frames: list[bytes]) -> None:
    first = Ether(frames[0])
    headers = _layer_names(first)
    assert headers[-1] == "TCP" and len(headers) >= 4, f"no tunnel down to the inner TCP: {headers}"
    # the super-packet's own lengths may be 0 (BIG TCP): its headers are as long as a segment's
    header_len = len(frames[0]) - len(bytes(first[TCP].payload))
    assert super_packet[:14] == frames[0][:14]
    payload = b""
    outer_udp_zero = first.getlayer(UDP) is not None and _outer_udp_check(super_packet, first) == 0
    for frame in frames:
        decoded = Ether(frame)
        assert _layer_names(decoded) == headers, "a segment lost or changed a header"
        assert checksums_verify(frame), "a checksum softgso wrote does not verify"
        if outer_udp_zero:
            assert decoded[UDP].chksum == 0
        payload += bytes(decoded[TCP].payload)
    assert payload == super_packet[header_len:], "inner payload bytes lost, added or reordered"


def _outer_udp_check(super_packet: bytes, segment) -> int:
    udp_at = len(raw(segment)) - len(raw(segment[UDP]))
    return int.from_bytes(super_packet[udp_at + 6 : udp_at + 8], "big")


def _layer_names(packet) -> list[str]:
    names = []
    layer = packet
    while layer is not None and layer.name not in ("NoPayload", "Raw", "Padding"):
        names.append(layer.name)
        if isinstance(layer, TCP):
            break
        layer = layer.payload
    return names
