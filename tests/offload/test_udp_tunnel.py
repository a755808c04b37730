"""UDP tunnel GSO rules (spec tunnels-gso.md 4.3, 5.3-5.6, 5.10, 7.2), one test per rule.

Inputs are built with Scapy; every expectation is the spec's rule checked by Scapy on the output.
The byte-exact proof against a real kernel is tests/vectors/test_tunnel_vectors.py.
"""

from __future__ import annotations

import pytest
from tunnel_frames import (
    IP,
    MPLS,
    TCP,
    UDP,
    Ether,
    IPv6,
    checksums_verify,
    inner_tcp,
    packet_for,
    raw,
    segment,
    vxlan,
)

from softgso.constants import ETH_P_IP, ETH_P_TEB
from softgso.errors import InvalidPacketError, SoftGSOError
from softgso.features import GsoType
from softgso.packet import ENCAP_TYPE_IPPROTO

MSS = 1000
TCPV4_TUNNEL = GsoType.TCPV4 | GsoType.UDP_TUNNEL
TCPV4_TUNNEL_CSUM = GsoType.TCPV4 | GsoType.UDP_TUNNEL_CSUM


def _vxlan_skb(gso_type: GsoType = TCPV4_TUNNEL, *, frame: bytes | None = None, seed: bool = False):
    frame = frame if frame is not None else vxlan()
    return packet_for(frame, l4=34, inner_mac=50, inner_network=64, inner_transport=84, inner_protocol=ETH_P_TEB,
                      gso_size=MSS, gso_type=gso_type, outer_csum_seed=seed)


def test_every_segment_carries_the_full_outer_and_tunnel_headers() -> None:
    frames = segment(_vxlan_skb())
    assert len(frames) == 4
    original = Ether(vxlan())
    for frame in frames:
        decoded = Ether(frame)
        assert decoded[UDP].dport == 4789 and decoded["VXLAN"].vni == 42
        assert decoded[IP].src == original[IP].src and decoded["Ether"].dst == original["Ether"].dst
        assert decoded.getlayer(TCP) is not None


def test_outer_lengths_follow_each_segment() -> None:
    for frame in segment(_vxlan_skb()):
        decoded = Ether(frame)
        assert decoded[IP].len == len(frame) - 14
        assert decoded[UDP].len == len(frame) - 34
        assert decoded.getlayer(IP, 2).len == len(frame) - 64


def test_udp_tunnel_without_csum_copies_the_zero_checksum() -> None:
    for frame in segment(_vxlan_skb()):
        assert Ether(frame)[UDP].chksum == 0


def test_udp_tunnel_without_csum_copies_a_nonzero_field_verbatim() -> None:
    """5.6: UDP_TUNNEL copies the field; a BPF program's non-zero value lands unchanged (and wrong)."""
    frames = segment(_vxlan_skb(frame=vxlan(udp_check=0xBEEF)))
    assert {Ether(f)[UDP].chksum for f in frames} == {0xBEEF}


def test_udp_tunnel_csum_gives_valid_outer_checksums_in_software() -> None:
    frames = segment(_vxlan_skb(TCPV4_TUNNEL_CSUM, seed=True))
    assert all(checksums_verify(f) for f in frames)
    assert all(Ether(f)[UDP].chksum != 0 for f in frames)


def test_udp_tunnel_csum_over_ipv6_outer() -> None:
    frame = vxlan(v6=True)
    skb = packet_for(frame, l4=54, inner_mac=70, inner_network=84, inner_transport=104, inner_protocol=ETH_P_TEB,
                     gso_size=MSS, gso_type=TCPV4_TUNNEL_CSUM, outer_csum_seed=True, outer_v6=True)
    frames = segment(skb)
    assert len(frames) == 4 and all(checksums_verify(f) for f in frames)
    assert all(Ether(f)[IPv6].plen == len(f) - 54 for f in frames)


def test_local_checksum_offload_leaves_the_inner_seed_and_a_final_outer_checksum() -> None:
    """5.6 S2: with a device that checksums, the inner TCP field keeps the segment's seed; the outer
    UDP checksum is the one the packet has once the device completes the inner checksum."""
    frames = segment(_vxlan_skb(TCPV4_TUNNEL_CSUM, seed=True), profile="csum")
    for frame in frames:
        decoded = Ether(frame)
        inner_ip = decoded.getlayer(IP, 2)
        completed = decoded.copy()
        completed.getlayer(TCP).chksum = None
        completed = Ether(raw(completed))
        assert checksums_verify(raw(completed))  # outer UDP valid over the completed inner checksum
        seed = _pseudo_sum(inner_ip)
        assert decoded[TCP].chksum == seed


def _pseudo_sum(ip: IP) -> int:
    data = bytes(map(int, ip.src.split("."))) + bytes(map(int, ip.dst.split(".")))
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in (0, 2, 4, 6)) + 6 + (ip.len - ip.ihl * 4)
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_outer_and_inner_ipv4_ids_advance_independently() -> None:
    frame = vxlan(inner_tcp(ip_id=0xFFFF), outer_id=0x4A10)
    ids = [(Ether(f)[IP].id, Ether(f).getlayer(IP, 2).id) for f in segment(_vxlan_skb(frame=frame))]
    assert ids == [(0x4A10, 0xFFFF), (0x4A11, 0), (0x4A12, 1), (0x4A13, 2)]


def test_fixedid_fixes_the_inner_id_only() -> None:
    """5.3 / 5.10 (6.1): FIXEDID applies at the inner level of a UDP tunnel, never to the outer header."""
    ids = [(Ether(f)[IP].id, Ether(f).getlayer(IP, 2).id)
           for f in segment(_vxlan_skb(TCPV4_TUNNEL | GsoType.TCP_FIXEDID))]
    assert [outer for outer, _ in ids] == [0x1000, 0x1001, 0x1002, 0x1003]
    assert {inner for _, inner in ids} == {0x4321}


def test_fixedid_with_inner_df_clear_is_refused() -> None:
    frame = vxlan(inner_tcp(df=False))
    with pytest.raises(SoftGSOError, match="DF"):
        segment(_vxlan_skb(TCPV4_TUNNEL | GsoType.TCP_FIXEDID, frame=frame))


def test_inner_tcp_payload_reassembles() -> None:
    payload = b"".join(bytes(Ether(f)[TCP].payload) for f in segment(_vxlan_skb()))
    assert payload == bytes(Ether(vxlan())[TCP].payload)


def test_tcp_flags_split_as_in_plain_tcp() -> None:
    frame = vxlan(inner_tcp(flags="FPAC"))
    flags = [str(Ether(f)[TCP].flags) for f in segment(_vxlan_skb(frame=frame))]
    assert flags == ["AC", "A", "A", "FPA"]


def test_mpls_in_udp_copies_the_labels_as_the_inner_mac_header() -> None:
    """7.2: the BPF route's label stack is an opaque inner MAC header, copied verbatim to every segment."""
    inner = inner_tcp()
    frame = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="192.0.2.1", dst="192.0.2.2") /
                UDP(sport=20000, dport=6635, chksum=0) / MPLS(label=1000, s=0, ttl=255) /
                MPLS(label=2000, s=1, ttl=255) / inner)
    skb = packet_for(frame, l4=34, inner_mac=42, inner_network=50, inner_transport=70, inner_protocol=ETH_P_IP,
                     gso_size=MSS, gso_type=TCPV4_TUNNEL | GsoType.DODGY)
    frames = segment(skb)
    assert len(frames) == 4
    for f in frames:
        assert f[42:50] == frame[42:50]
        assert checksums_verify(f)


def test_unknown_inner_protocol_type_is_refused() -> None:
    skb = _vxlan_skb()
    skb.inner_protocol_type = 7
    with pytest.raises(InvalidPacketError):
        segment(skb)


def test_ipproto_inner_without_an_inet_offload_is_refused() -> None:
    """skb_udp_tunnel_segment: ENCAP_TYPE_IPPROTO with no inet handler (137, MPLS) -> -EINVAL."""
    skb = _vxlan_skb()
    skb.inner_protocol_type, skb.inner_ipproto = ENCAP_TYPE_IPPROTO, 137
    with pytest.raises(InvalidPacketError):
        segment(skb)


def test_remote_checksum_offload_with_an_outer_checksum_is_not_supported() -> None:
    """Not a kernel refusal: softgso does not model SKB_GSO_CB under remcsum with an outer checksum."""
    skb = _vxlan_skb(TCPV4_TUNNEL_CSUM | GsoType.TUNNEL_REMCSUM, seed=True)
    with pytest.raises(SoftGSOError, match="not supported") as caught:
        segment(skb)
    from softgso.errors import KernelRefusal

    assert not isinstance(caught.value, KernelRefusal)


def test_remote_checksum_offload_without_outer_checksum_leaves_inner_seeds() -> None:
    """5.16: without an outer checksum the inner TCP field on the wire is the segment's seed."""
    frames = segment(_vxlan_skb(TCPV4_TUNNEL | GsoType.TUNNEL_REMCSUM))
    for f in frames:
        assert Ether(f)[TCP].chksum == _pseudo_sum(Ether(f).getlayer(IP, 2))


def test_a_vxlan_tso_nic_takes_vxlan_whole_but_segments_geneve() -> None:
    whole = segment(_vxlan_skb(), profile="nic-vxlan-tso")
    assert len(whole) == 1
    geneve_port = segment(_vxlan_skb(frame=vxlan(dport=6081)), profile="nic-vxlan-tso")
    assert len(geneve_port) == 4 and all(checksums_verify(f) for f in geneve_port)


def test_a_nic_without_tunnel_offloads_leaves_only_the_outer_checksum_to_the_device() -> None:
    """5.6 S3: empty hw_enc_features -> inner checksums completed in software; the device can checksum
    the outer IPv4 UDP (IP_CSUM), so the outer field holds the segment's pseudo-header seed."""
    frames = segment(_vxlan_skb(TCPV4_TUNNEL_CSUM, seed=True), profile="nic-tso-no-mpls-gso")
    assert len(frames) == 4
    for frame in frames:
        decoded = Ether(frame)
        assert decoded[UDP].chksum == _udp_pseudo_sum(decoded[IP], len(frame) - 34)
        inner = Ether(raw(decoded))
        inner[UDP].chksum = 0  # "no checksum": Scapy then checks only the inner IP and TCP checksums
        assert checksums_verify(raw(inner))


def _udp_pseudo_sum(ip: IP, udp_len: int) -> int:
    data = bytes(map(int, ip.src.split("."))) + bytes(map(int, ip.dst.split(".")))
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in (0, 2, 4, 6)) + 17 + udp_len
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total
