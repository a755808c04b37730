"""UDP GSO rules (spec kernel-gso.md §8.2): USO cuts datagrams, legacy UFO cuts one datagram into IP fragments.

Scapy builds the super-packets and decodes (and reassembles) the segments; the expected values are the spec's.
"""

from __future__ import annotations

import struct

import pytest
from scapy.all import IP, UDP, Ether, Raw, defragment, raw  # type: ignore[attr-defined]
from scapy.utils import checksum
from tunnel_frames import checksums_verify, segment

from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.errors import InvalidPacketError
from softgso.features import PROFILES, GsoType, IpSummed
from softgso.packet import Packet
from softgso.prepare import parse_layout
from softgso.xmit import transmit

PAYLOAD = bytes((i * 3 + 1) & 0xFF for i in range(3500))


def udp_super(gso_type: GsoType, gso_size: int = 1000, *, partial: bool = True) -> Packet:
    """An IPv4/UDP super-packet built by Scapy: its UDP checksum complete, or the pseudo-header's
    sum with CHECKSUM_PARTIAL as a UDP_SEGMENT socket hands it down."""
    ip = IP(src="10.0.0.1", dst="10.0.0.2", id=0x4242, flags="DF")
    skb = Packet.from_ethernet(raw(Ether() / ip / UDP(sport=4000, dport=4789) / Raw(PAYLOAD)))
    skb.transport_header = 34
    skb.gso_size, skb.gso_type = gso_size, gso_type
    if partial:
        pseudo = bytes([10, 0, 0, 1, 10, 0, 0, 2, 0, 17]) + (8 + len(PAYLOAD)).to_bytes(2, "big")
        skb.data[40:42] = (~checksum(pseudo) & 0xFFFF).to_bytes(2, "big")
        skb.ip_summed, skb.csum_start, skb.csum_offset = IpSummed.PARTIAL, 34, 6
    return skb


# --- USO (SKB_GSO_UDP_L4): every segment a datagram of its own -------------------------------------


def test_uso_gso_size_is_the_udp_payload_of_each_datagram() -> None:
    datagrams = [Ether(frame)[UDP] for frame in segment(udp_super(GsoType.UDP_L4))]
    assert [len(d.payload) for d in datagrams] == [1000, 1000, 1000, 500]
    assert [d.len for d in datagrams] == [1008, 1008, 1008, 508]
    assert b"".join(raw(d.payload) for d in datagrams) == PAYLOAD


def test_uso_copies_the_ports_and_checksums_every_datagram() -> None:
    frames = segment(udp_super(GsoType.UDP_L4))
    assert {(Ether(f)[UDP].sport, Ether(f)[UDP].dport) for f in frames} == {(4000, 4789)}
    assert all(checksums_verify(f) for f in frames)


def test_uso_datagrams_get_their_own_ip_ids() -> None:
    assert [Ether(f)[IP].id for f in segment(udp_super(GsoType.UDP_L4))] == [0x4242, 0x4243, 0x4244, 0x4245]


def test_uso_without_a_partial_checksum_at_the_udp_header_is_refused() -> None:
    # csum_start != transport_header -> -EINVAL
    with pytest.raises(InvalidPacketError, match="EINVAL"):
        segment(udp_super(GsoType.UDP_L4, partial=False))


def test_uso_of_a_single_datagram_is_refused() -> None:
    # len <= 8 + gso_size -> -EINVAL
    with pytest.raises(InvalidPacketError, match="EINVAL"):
        segment(udp_super(GsoType.UDP_L4, gso_size=len(PAYLOAD)))


def test_a_udp_packet_with_a_tcp_gso_type_is_refused() -> None:
    # §13.2: udp4_ufo_fragment wants SKB_GSO_UDP or SKB_GSO_UDP_L4
    with pytest.raises(InvalidPacketError, match="EINVAL"):
        segment(udp_super(GsoType.TCPV4))


def test_uso_with_gso_size_1_over_64k_gets_the_kernels_answer() -> None:
    payload_len = 65535 - 20 - 8
    frame = build_frame(SuperPacketSpec(udp=True, payload=bytes(payload_len)))
    layout = parse_layout(frame)
    assert layout is not None
    skb = Packet.from_ethernet(frame)
    skb.ip_summed, skb.csum_start, skb.csum_offset = IpSummed.PARTIAL, layout.transport, 6
    skb.gso_size, skb.gso_type = 1, GsoType.UDP_L4
    segments = transmit(skb, PROFILES["no-offload"])
    assert len(segments) == payload_len
    assert all(struct.unpack_from("!H", seg.data, layout.transport + 4)[0] == 9 for seg in segments[:3])


# --- legacy UFO (SKB_GSO_UDP): one datagram in IP fragments ---------------------------------------


def test_ufo_gso_size_is_the_ip_payload_of_each_fragment_udp_header_included() -> None:
    fragments = [Ether(frame)[IP] for frame in segment(udp_super(GsoType.UDP, gso_size=1000, partial=False))]
    assert [len(raw(f.payload)) for f in fragments] == [1000, 1000, 1000, 508]
    assert [f.len for f in fragments] == [1020, 1020, 1020, 528]


def test_ufo_fragments_share_one_id_with_mf_on_all_but_the_last_and_df_cleared() -> None:
    fragments = [Ether(frame)[IP] for frame in segment(udp_super(GsoType.UDP, gso_size=1000, partial=False))]
    assert {f.id for f in fragments} == {0x4242}
    assert [int(f.flags) for f in fragments] == [1, 1, 1, 0], "MF only; DF overwritten"
    assert [f.frag * 8 for f in fragments] == [0, 1000, 2000, 3000]
    assert all(checksums_verify(raw(Ether() / f)) for f in fragments[1:]), "IP header checksums"


def test_ufo_fragments_reassemble_into_the_datagram_with_a_checksum_computed_over_all_of_it() -> None:
    skb = udp_super(GsoType.UDP, partial=False)
    skb.data[40:42] = b"\x12\x34"  # whatever the field held: software UFO computes the sum itself
    whole = IP(raw(defragment([Ether(frame)[IP] for frame in segment(skb)])[0]))
    assert raw(whole[UDP].payload) == PAYLOAD and whole[UDP].len == 8 + len(PAYLOAD)
    stored = whole[UDP].chksum
    del whole[UDP].chksum
    assert IP(raw(whole))[UDP].chksum == stored, "the UDP checksum covers the whole datagram"


def test_ufo_of_a_datagram_within_gso_size_is_refused() -> None:
    # the datagram (UDP header included) <= gso_size -> -EINVAL
    with pytest.raises(InvalidPacketError, match="EINVAL"):
        segment(udp_super(GsoType.UDP, gso_size=8 + len(PAYLOAD)))
