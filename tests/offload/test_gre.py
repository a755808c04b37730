"""GRE GSO rules (spec tunnels-gso.md 4.4, 5.7), one test per rule; Scapy builds and judges."""

from __future__ import annotations

import pytest
from tunnel_frames import GRE, IP, TCP, Ether, checksums_verify, inner_tcp, packet_for, raw, segment

from softgso.constants import ETH_P_IP, ETH_P_TEB
from softgso.errors import InvalidPacketError
from softgso.features import GsoType

MSS = 1000


def _gretap(csum: bool, key: int | None = 7, stale: int = 0xABCD):
    gre = GRE(proto=ETH_P_TEB, chksum_present=int(csum), key_present=int(key is not None),
              key=key if key is not None else None)
    frame = bytearray(raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                          IP(src="192.0.2.1", dst="192.0.2.2", id=0x2000) / gre /
                          Ether(src="02:00:00:00:00:bb", dst="02:00:00:00:00:aa") / inner_tcp()))
    if csum:
        frame[38:40] = stale.to_bytes(2, "big")  # gre_build_header leaves the word for GSO: stale bytes
    hlen = 4 + 4 * csum + 4 * (key is not None)
    inner_mac = 34 + hlen
    gso_type = GsoType.TCPV4 | (GsoType.GRE_CSUM if csum else GsoType.GRE)
    return bytes(frame), packet_for(bytes(frame), l4=34, inner_mac=inner_mac, inner_network=inner_mac + 14,
                                    inner_transport=inner_mac + 34, inner_protocol=ETH_P_TEB, gso_size=MSS,
                                    gso_type=gso_type)


def test_gre_csum_is_computed_over_gre_and_the_inner_packet_without_pseudo_header() -> None:
    _, skb = _gretap(csum=True)
    frames = segment(skb)
    assert len(frames) == 4
    for frame in frames:
        assert checksums_verify(frame)  # GRE: header + payload sums to 0xFFFF
        assert Ether(frame)[GRE].key == 7


def test_gre_csum_ignores_the_stale_bytes_the_builder_left() -> None:
    _, clean = _gretap(csum=True, stale=0)
    _, stale = _gretap(csum=True, stale=0xABCD)
    assert segment(clean) == segment(stale)


def test_gre_without_csum_copies_the_header_verbatim() -> None:
    frame, skb = _gretap(csum=False)
    for f in segment(skb):
        assert f[34:42] == frame[34:42]


def test_gre_with_a_device_that_checksums_leaves_the_inner_seed() -> None:
    """GRE_CSUM with local checksum offload: the GRE checksum covers the completed inner checksum."""
    _, skb = _gretap(csum=True)
    for frame in segment(skb, profile="csum"):
        completed = Ether(frame)
        completed[TCP].chksum = None
        assert checksums_verify(raw(completed))


def test_gre_l3_carries_the_inner_ip_directly() -> None:
    frame = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                IP(src="192.0.2.1", dst="192.0.2.2") / GRE(proto=ETH_P_IP) / inner_tcp())
    skb = packet_for(frame, l4=34, inner_mac=38, inner_network=38, inner_transport=58, inner_protocol=ETH_P_IP,
                     gso_size=MSS, gso_type=GsoType.TCPV4 | GsoType.GRE)
    frames = segment(skb)
    assert len(frames) == 4 and all(checksums_verify(f) for f in frames)
    assert [Ether(f)[IP].id for f in frames] == [1, 2, 3, 4]  # outer ID (Scapy's default 1) increments


def test_gre_without_encapsulation_is_refused() -> None:
    _, skb = _gretap(csum=False)
    skb.encapsulation = False
    with pytest.raises(InvalidPacketError, match="encapsulation"):
        segment(skb)


def test_gre_header_shorter_than_four_bytes_is_refused() -> None:
    _, skb = _gretap(csum=False)
    skb.inner_mac_header = 36
    with pytest.raises(InvalidPacketError):
        segment(skb)
