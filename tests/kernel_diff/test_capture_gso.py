"""Real captures' super-packets through Linux's software GSO agree with `softgso segment` (kernel in the loop).

tools/kernel_oracle/capture_gso.py takes every TCP packet over the MTU, and up to as many short frames
holding a checksum seed, from each real capture of ../shared (other projects' files), injects each as
its sender's stack hands it to a device without checksum offload or TSO (a virtio_net_hdr: NEEDS_CSUM,
TCPV4/TCPV6, the MSS the MTU leaves) and compares what the kernel sends with what `softgso segment
--device no-offload` writes for the record as captured. The tests without a VM check the tool's own
reading of frames built by Scapy. The deep run is `make kernel-diff-captures CAPTURES=... KERNEL=`.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools.kernel_oracle import capture_gso, cli  # noqa: E402
from tools.kernel_oracle.install import InstallError  # noqa: E402

CAPTURES = REPO.parent / "shared" / "captures"
PER_CAPTURE = 16
WORK = REPO / "out" / "kernel-diff" / "ci-capture-gso"
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
TIMESTAMPS = [("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]


def _seed(src: bytes, dst: bytes, proto: int, length: int, ipv6: bool) -> int:
    """RFC 793 / RFC 8200 8.1 pseudo-header, folded and not complemented: what Linux leaves in the field."""
    header = src + dst + (struct.pack("!I3xB", length, proto) if ipv6 else struct.pack("!xBH", proto, length))
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_a_super_packet_with_a_full_checksum_is_injected_with_its_seed_and_the_mss_of_the_mtu() -> None:
    frame = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(options=TIMESTAMPS, flags="PA") / bytes(4000))
    injected, vnet, super_packet = capture_gso.injection(frame)  # type: ignore[misc]
    assert super_packet
    # 1500 - 20 (IPv4) - 32 (TCP with timestamps)
    assert vnet == {"flags": 1, "gso_type": 1, "hdr_len": 14 + 20 + 32, "gso_size": 1448, "csum_start": 34,
                    "csum_offset": 16}
    seed = _seed(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 6, 32 + 4000, ipv6=False)
    assert injected[50:52] == seed.to_bytes(2, "big")
    assert injected[:50] == frame[:50] and injected[52:] == frame[52:]


def test_an_ipv6_super_packet_behind_a_vlan_tag_is_tcpv6_at_the_tagged_offsets() -> None:
    frame = bytes(ETH / Dot1Q(vlan=7) / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(flags="A") / bytes(3000))
    _, vnet, super_packet = capture_gso.injection(frame)  # type: ignore[misc]
    assert super_packet
    assert vnet["gso_type"] == 4 and vnet["csum_start"] == 18 + 40 and vnet["gso_size"] == 1500 - 40 - 20


def test_a_short_frame_holding_a_seed_is_injected_for_its_checksum_alone() -> None:
    packet = ETH / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="A") / bytes(10)
    packet[TCP].chksum = _seed(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 6, 30, ipv6=False)
    injected, vnet, super_packet = capture_gso.injection(bytes(packet))  # type: ignore[misc]
    assert not super_packet and injected == bytes(packet)  # (Ethernet padding to 60 bytes kept)
    assert vnet["gso_type"] == 0 and vnet["flags"] == 1 and vnet["csum_start"] == 34


@pytest.mark.parametrize(("frame", "reason"), [
    (bytes(ETH / IP() / UDP() / bytes(3000)), "not TCP"),
    (bytes(ETH / MPLS(label=100) / IP() / TCP() / bytes(3000)), "MPLS"),
    (bytes(ETH / IP(flags="MF") / TCP() / bytes(3000)), "an IP fragment"),
    (bytes(ETH / IP() / TCP() / bytes(3000)) + bytes(range(1, 9)), "a trailer"),
    (bytes(ETH / IP() / TCP() / bytes(100)), "within the MTU with a full checksum"),
    (bytes(ETH / IP(chksum=0) / TCP(chksum=_seed(bytes(4), bytes(4), 6, 120, ipv6=False) or 1) / bytes(100)),
     "a checksum neither full nor a seed"),
])
def test_what_is_not_injected_is_named(frame: bytes, reason: str) -> None:
    found = capture_gso.injection(frame)
    assert isinstance(found, str) and reason in found


def test_a_short_seeded_frame_whose_ipv4_header_checksum_was_left_to_the_nic_is_not_injected() -> None:
    packet = ETH / IP(src="10.0.0.1", dst="10.0.0.2", chksum=0) / TCP(flags="A") / bytes(100)
    packet[TCP].chksum = _seed(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 6, 120, ipv6=False)
    found = capture_gso.injection(bytes(packet))
    assert isinstance(found, str) and "left to the NIC" in found


@pytest.mark.root
@pytest.mark.timeout(900)
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: apt-get installs QEMU and the kernels")
@pytest.mark.skipif(not CAPTURES.is_dir(), reason="the real captures of ../shared are not here")
@pytest.mark.parametrize(("generation", "push_mpls"), [("6.1", 0), ("6.12", 0), ("6.1", 2)])
def test_softgso_segment_agrees_with_the_kernel_on_real_captures(generation: str, push_mpls: int,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The records as captured; with push_mpls, the same with two labels pushed on each (tc act_mpls on
    the kernel's egress, ``--action push-mpls`` for softgso): real hosts' super-packets through MPLS GSO."""
    monkeypatch.chdir(REPO)
    try:
        cli.setup()
    except InstallError as error:
        pytest.skip(f"cannot install QEMU and the kernels (no network to the Debian archive?): {error}")
    cases, _ = capture_gso.capture_cases(sorted(CAPTURES.rglob("*.pcap*")), PER_CAPTURE, push_mpls=push_mpls)
    super_packets = [case for case in cases if case.super_packet]
    assert len(super_packets) >= 20  # host-side TSO/GRO captures are among them
    recorded = capture_gso.record(cases, generation, WORK / f"{generation}-mpls{push_mpls}")
    # not vacuous: the kernel cut every super-packet (a refusal of all would prove little), under the
    # labels when they were pushed
    for case in super_packets:
        sent = capture_gso.wire.read_pcap(recorded / case.name / "kernel_out.pcap")
        assert len(sent) > 1, case.name
        assert all((frame[12:14] == b"\x88\x47") == bool(push_mpls) for frame in sent), case.name
    differing = capture_gso.disagreements(cases, recorded)
    assert not differing, f"softgso segment disagrees with {generation} (cases kept in {recorded}):\n" + \
        "\n".join(f"{case.name} ({case.source}): {detail}" for case, detail in differing)


def test_a_home_address_option_or_a_route_with_segments_left_is_not_injected() -> None:
    from scapy.layers.inet6 import HAO, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting

    base = ETH / IPv6(src="2001:db8::c0a", dst="2001:db8::2")
    for extension in (IPv6ExtHdrDestOpt(options=[HAO(hoa="2001:db8::1")]),
                      IPv6ExtHdrRouting(addresses=["2001:db8::9"], segleft=1)):
        found = capture_gso.injection(bytes(base / extension / TCP() / bytes(3000)))
        assert isinstance(found, str) and "the checksum's addresses are not the header's" in found
    # a Destination Options header without one is injected
    found = capture_gso.injection(bytes(base / IPv6ExtHdrDestOpt() / TCP() / bytes(3000)))
    assert not isinstance(found, str) and found[1]["csum_start"] == 14 + 40 + 8


def test_with_udp_gso_a_datagram_over_the_mtu_is_injected_as_uso() -> None:
    frame = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5000, dport=443) / bytes(3000))
    assert "--udp-gso" in capture_gso.injection(frame)  # type: ignore[operator]
    injected, vnet, super_packet = capture_gso.injection(frame, udp=True)  # type: ignore[misc]
    assert super_packet
    assert vnet == {"flags": 1, "gso_type": 5, "hdr_len": 42, "gso_size": 1500 - 20 - 8, "csum_start": 34,
                    "csum_offset": 6}
    assert injected[40:42] == _seed(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 17, 3008, ipv6=False).to_bytes(2, "big")
    # a tunnel's port, and a datagram without a checksum, are not USO a capture can show
    for other in (bytes(ETH / IP() / UDP(dport=4789) / bytes(3000)), bytes(ETH / IP() / UDP(chksum=0) / bytes(3000))):
        assert isinstance(capture_gso.injection(other, udp=True), str)
