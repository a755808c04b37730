"""Scapy as the independent decoder of what ``softgso segment`` wrote."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

scapy_all = pytest.importorskip("scapy.all")
from scapy.contrib.mpls import MPLS  # noqa: E402
from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1Q, Ether  # noqa: E402

scapy_all.bind_layers(Ether, MPLS, type=0x8848)
scapy_all.bind_layers(Dot1Q, MPLS, type=0x8847)
scapy_all.bind_layers(CookedLinux, MPLS, proto=0x8847)
scapy_all.bind_layers(CookedLinuxV2, MPLS, proto=0x8847)


def read_packets(path: Path) -> list[scapy_all.Packet]:
    """Every record of a pcap or pcapng, as Scapy decodes it."""
    return list(scapy_all.rdpcap(str(path)))


def _checksum_ok(upper: scapy_all.Packet, proto: type) -> bool:
    rebuilt = upper.__class__(bytes(upper))
    del rebuilt[proto].chksum
    return bool(upper[proto].chksum == upper.__class__(bytes(rebuilt))[proto].chksum)


def assert_on_the_wire(packet: scapy_all.Packet, mtu: int) -> None:
    """An IP packet as a wire carries it: fits the MTU, lengths match, every checksum verifies."""
    if IP in packet:
        ip = packet[IP]
        assert ip.len == len(bytes(ip)), "IPv4 total length"
        clone = IP(bytes(ip))
        del clone.chksum
        assert ip.chksum == IP(bytes(clone)).chksum, "IPv4 header checksum"
        upper = ip
    elif IPv6 in packet:
        upper = packet[IPv6]
        assert upper.plen == len(bytes(upper)) - 40, "IPv6 payload length"
    else:
        return
    above_link = packet[MPLS] if MPLS in packet else upper
    assert len(bytes(above_link)) <= mtu, f"{len(bytes(above_link))} bytes after the link header > MTU {mtu}"
    for proto in (TCP, UDP):
        if proto in upper:
            assert _checksum_ok(upper, proto), f"{proto.__name__} checksum"


def tcp_payload_by_flow(packets: list[scapy_all.Packet]) -> dict[tuple[str, int], bytes]:
    """(source address, source port) -> TCP payload bytes in sequence order."""
    pieces: dict[tuple[str, int], list[tuple[int, bytes]]] = defaultdict(list)
    for packet in packets:
        if TCP in packet:
            ip = packet[IP] if IP in packet else packet[IPv6]
            pieces[(ip.src, packet[TCP].sport)].append((packet[TCP].seq, bytes(packet[TCP].payload)))
    return {flow: b"".join(data for _, data in sorted(chunks)) for flow, chunks in pieces.items()}
