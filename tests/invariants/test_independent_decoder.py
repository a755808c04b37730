"""Scapy, an independent decoder, parses every segment and agrees on lengths and checksums."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from test_invariants import _segments

from strategies import GsoCase, gso_cases

scapy_all = pytest.importorskip("scapy.all")
from scapy.contrib.mpls import MPLS  # noqa: E402
from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment  # noqa: E402
from scapy.layers.l2 import Dot1Q, Ether  # noqa: E402

from softgso.check.golden import load_case, run_case  # noqa: E402

VECTORS = Path(__file__).parents[1] / "vectors" / "kernel"


def _bind_mpls() -> None:
    # Scapy guesses the payload of a bottom-of-stack label from its first nibble, like an LSR would
    scapy_all.bind_layers(Ether, MPLS, type=0x8848)
    scapy_all.bind_layers(Dot1Q, MPLS, type=0x8847)
    scapy_all.bind_layers(Dot1Q, MPLS, type=0x8848)


_bind_mpls()


def _recomputed(layer: scapy_all.Packet) -> int:
    """The checksum Scapy computes for this layer from scratch."""
    clone = layer.__class__(bytes(layer))
    del clone.chksum
    return int(clone.__class__(bytes(clone)).chksum)


def _past_early_bottom(packet: scapy_all.Packet) -> scapy_all.Packet:
    """``packet``, or where a label with the bottom-of-stack bit set sits above more labels (a push
    after a pop to IP sets it: act_mpls takes the stack's end from the protocol), what follows its
    labels: Scapy reads past such a label as an IP header or an Ethernet frame; the labels end where
    an IP header of the version its first nibble names begins, 4 bytes at a time."""
    if IP in packet or IPv6 in packet or MPLS not in packet:
        return packet
    rest = bytes(packet[MPLS].payload)
    while len(rest) >= 4 and rest[0] >> 4 not in (4, 6):
        rest = rest[4:]
    if len(rest) < 20:
        return packet
    return IP(rest) if rest[0] >> 4 == 4 else IPv6(rest)


def assert_scapy_agrees(frame: bytes, l4_checksum_valid: bool = True, ip_checksum_valid: bool = True) -> None:
    """Scapy decodes the frame: IP lengths match its size, every checksum is what Scapy computes.

    ``l4_checksum_valid=False`` expects the L4 checksum to be wrong (a kernel case with a bad seed);
    ``ip_checksum_valid=False`` the IPv4 header's (a kernel case whose csum_start/csum_offset put the
    checksum it completes over the IPv4 header's own field).
    """
    packet = _past_early_bottom(Ether(frame))
    if IP in packet:
        ip = packet[IP]
        assert ip.len == len(bytes(ip)), "IPv4 total length"
        assert (ip.chksum == _recomputed(ip)) == ip_checksum_valid, "IPv4 header checksum"
        upper = ip
    elif IPv6 in packet:
        ip6 = packet[IPv6]
        assert ip6.plen == len(bytes(ip6)) - 40, "IPv6 payload length"
        upper = ip6
    else:
        pytest.fail(f"Scapy found no IP layer in {packet.summary()}")
    is_fragment = (IP in packet and (packet[IP].flags.MF or packet[IP].frag)) or IPv6ExtHdrFragment in packet
    if is_fragment:
        return
    for proto in (TCP, UDP):
        if proto in upper:
            layer = upper[proto]
            # Scapy's TCP/UDP checksum needs the IP layer beneath it: recompute on the IP packet
            rebuilt = upper.__class__(bytes(upper))
            del rebuilt[proto].chksum
            valid = layer.chksum == upper.__class__(bytes(rebuilt))[proto].chksum
            assert valid == l4_checksum_valid, f"{proto.__name__} checksum"
            if proto is UDP:
                assert layer.len == len(bytes(layer)), "UDP length"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(gso_cases(max_payload=6000))
def test_scapy_agrees_on_random_segments(case: GsoCase) -> None:
    segments, _ = _segments(case)
    for frame in segments:
        assert_scapy_agrees(frame)


def _sent_with_full_checksums(case_dir: Path) -> bool:
    """The kernel sent segments (no refusal) and finished their checksums (not a checksumming veth),
    and its segments start at the Ethernet header: not so where it took a BIG TCP jumbo header off
    under labels pushed on veth0 (every segment starts 8 bytes into the frame, docs/kernel-notes.md
    difference 4)."""
    case = load_case(case_dir)
    params = case.meta.get("random_params")
    jumbo_under_labels = isinstance(params, dict) and (params.get("ext_headers") or [])[:1] == ["jumbo"] \
        and bool(params.get("labels")) and not params.get("tx_vlan") and len(case.frame) - 14 > 65536
    return not case.refused and not case.device.name.startswith("veth[tx on") and not jumbo_under_labels


# refusals have no frames to decode (tests/vectors/test_kernel_vectors.py holds them to the kernel's)
CASES = sorted(p.parent for p in VECTORS.rglob("input_meta.json") if _sent_with_full_checksums(p.parent))


@pytest.mark.parametrize("case_dir", CASES, ids=[c.name for c in CASES])
def test_scapy_agrees_on_kernel_case_outputs(case_dir: Path) -> None:
    case = load_case(case_dir)
    result = run_case(case)
    assert result.error is None, result.error
    decoded = case.meta.get("segments") or []
    assert isinstance(decoded, list)
    for index, frame in enumerate(result.frames):
        # what the kernel's own frame holds, as the recording's decoder (tools/kernel_oracle/wire.py) read it
        kernel_says = decoded[index] if index < len(decoded) else {}
        assert_scapy_agrees(frame, l4_checksum_valid=bool(kernel_says.get("l4_csum_ok", True)),
                            ip_checksum_valid=bool(kernel_says.get("ip_csum_ok", True)))
