"""IP-in-IP GSO rules (spec tunnels-gso.md 4.5, 4.6, 5.3, 5.10); Scapy builds and judges."""

from __future__ import annotations

import pytest
from tunnel_frames import IP, TCP, Ether, IPv6, checksums_verify, inner_tcp, packet_for, raw, segment

from softgso.constants import ETH_P_IP, ETH_P_IPV6
from softgso.errors import InvalidPacketError
from softgso.features import GsoType

MSS = 1000
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def _ipip(gso_type: GsoType, inner=None):
    frame = raw(ETH / IP(src="192.0.2.1", dst="192.0.2.2", id=0x7000, proto=4) /
                (inner if inner is not None else inner_tcp()))
    return packet_for(frame, l4=34, inner_mac=34, inner_network=34, inner_transport=54, inner_protocol=ETH_P_IP,
                      gso_size=MSS, gso_type=gso_type)


def test_ipip_segments_carry_both_ip_headers_with_their_own_ids() -> None:
    frames = segment(_ipip(GsoType.TCPV4 | GsoType.IPXIP4))
    assert len(frames) == 4 and all(checksums_verify(f) for f in frames)
    ids = [(Ether(f)[IP].id, Ether(f).getlayer(IP, 2).id) for f in frames]
    assert ids == [(0x7000, 0x4321), (0x7001, 0x4322), (0x7002, 0x4323), (0x7003, 0x4324)]
    assert all(Ether(f)[IP].len == len(f) - 14 and Ether(f).getlayer(IP, 2).len == len(f) - 34 for f in frames)


def test_ipip_without_ipxip4_is_refused() -> None:
    with pytest.raises(InvalidPacketError, match="IPXIP4"):
        segment(_ipip(GsoType.TCPV4))


def test_fixedid_applies_to_the_inner_header_of_ipip() -> None:
    ids = [(Ether(f)[IP].id, Ether(f).getlayer(IP, 2).id) for f in segment(_ipip(GsoType.TCPV4 | GsoType.IPXIP4 |
                                                                                   GsoType.TCP_FIXEDID))]
    assert [o for o, _ in ids] == [0x7000, 0x7001, 0x7002, 0x7003] and {i for _, i in ids} == {0x4321}


def test_sit_carries_ipv6_in_ipv4() -> None:
    frame = raw(ETH / IP(src="192.0.2.1", dst="192.0.2.2", proto=41) / inner_tcp(v6=True))
    skb = packet_for(frame, l4=34, inner_mac=34, inner_network=34, inner_transport=74, inner_protocol=ETH_P_IPV6,
                     gso_size=MSS, gso_type=GsoType.TCPV6 | GsoType.IPXIP4, inner_v6=True)
    frames = segment(skb)
    assert len(frames) == 4 and all(checksums_verify(f) for f in frames)
    assert all(Ether(f)[IPv6].plen == len(f) - 74 for f in frames)


def test_ip6ip6_needs_ipxip6() -> None:
    frame = raw(ETH / IPv6(src="2001:db8::1", dst="2001:db8::2", nh=41) / inner_tcp(v6=True))
    skb = packet_for(frame, l4=54, inner_mac=54, inner_network=54, inner_transport=94, inner_protocol=ETH_P_IPV6,
                     gso_size=MSS, gso_type=GsoType.TCPV6 | GsoType.IPXIP4, inner_v6=True)
    with pytest.raises(InvalidPacketError, match="IPXIP6"):
        segment(skb)


def test_4in6_segments_with_outer_payload_length_per_segment() -> None:
    frame = raw(ETH / IPv6(src="2001:db8::1", dst="2001:db8::2", nh=4) / inner_tcp())
    skb = packet_for(frame, l4=54, inner_mac=54, inner_network=54, inner_transport=74, inner_protocol=ETH_P_IP,
                     gso_size=MSS, gso_type=GsoType.TCPV4 | GsoType.IPXIP6)
    frames = segment(skb)
    assert len(frames) == 4 and all(checksums_verify(f) for f in frames)
    assert all(Ether(f)[IPv6].plen == len(f) - 54 for f in frames)
    assert b"".join(bytes(Ether(f)[TCP].payload) for f in frames) == bytes(inner_tcp()[TCP].payload)
