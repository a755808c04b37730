"""IPv6 GSO rules (spec kernel-gso.md §7.2, §8.2's UFO over IPv6), one test per rule.

Scapy builds the super-packets and decodes (and reassembles) the segments; the expected values are the spec's.
"""

from __future__ import annotations

import struct

import pytest
from scapy.all import TCP, UDP, Ether, IPv6, Raw, defragment6, raw  # type: ignore[attr-defined]
from scapy.layers.inet6 import IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from tunnel_frames import checksums_verify, segment

from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.errors import InvalidPacketError, ProtocolNotSupportedError
from softgso.features import PROFILES, GsoType, IpSummed
from softgso.packet import Packet
from softgso.xmit import transmit

PAYLOAD = bytes((i * 5 + 2) & 0xFF for i in range(4000))


def ipv6_super(*extension_headers, nh: int | None = None, udp: bool = False, gso_type: GsoType = GsoType.TCPV6,
               gso_size: int = 1000, frag_id: int = 0) -> Packet:
    """An IPv6 super-packet (4000 bytes of payload) with the given extension headers, built by Scapy."""
    ip = IPv6(src="fd00::1", dst="fd00::2", tc=0x28, fl=0x12345, hlim=9)
    l4 = UDP(sport=1, dport=2) if udp else TCP(sport=1, dport=2, seq=5, flags="A")
    packet = ip
    for header in extension_headers:
        packet = packet / header
    packet = packet / l4 / Raw(PAYLOAD)
    frame = bytearray(raw(Ether() / packet))
    if nh is not None:
        frame[14 + 6] = nh
    skb = Packet.from_ethernet(frame)
    skb.transport_header = len(frame) - len(PAYLOAD) - (8 if udp else 20)
    skb.gso_size, skb.gso_type, skb.ip6_frag_id = gso_size, gso_type, frag_id
    return skb


def test_payload_length_per_segment_counts_the_extension_headers() -> None:
    skb = ipv6_super(IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt())
    for frame in segment(skb):
        ip = Ether(frame)[IPv6]
        assert ip.plen == len(frame) - 14 - 40
        assert ip.plen == 8 + 8 + 20 + len(ip[TCP].payload)


def test_extension_headers_and_the_fixed_header_fields_are_copied_unchanged() -> None:
    # no routing header: Scapy would take the pseudo-header's address from it, the kernel does not
    skb = ipv6_super(IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt(), IPv6ExtHdrDestOpt())
    original = bytes(skb.data)
    chain_end = len(original) - len(PAYLOAD) - 20
    frames = segment(skb)
    assert len(frames) == 4
    for frame in frames:
        ip = Ether(frame)[IPv6]
        assert (ip.tc, ip.fl, ip.hlim, ip.src, ip.dst) == (0x28, 0x12345, 9, "fd00::1", "fd00::2")
        assert frame[14 + 40 : chain_end] == original[14 + 40 : chain_end]
        assert checksums_verify(frame)


def test_a_truncated_extension_header_is_refused() -> None:
    skb = ipv6_super(IPv6ExtHdrDestOpt())
    skb.data[14 + 40 + 1] = 200  # the header claims (200 + 1) * 8 bytes
    with pytest.raises(InvalidPacketError, match="EINVAL"):
        segment(skb)


def test_a_final_next_header_without_an_offload_is_refused() -> None:
    # §7.2 step 2: -EPROTONOSUPPORT (253: reserved for experiments)
    with pytest.raises(ProtocolNotSupportedError):
        segment(ipv6_super(nh=253))


def test_ufo_inserts_one_fragment_header_with_the_packet_s_identification() -> None:
    skb = ipv6_super(udp=True, gso_type=GsoType.UDP, gso_size=1000, frag_id=0xABCD1234)
    fragments = [Ether(frame) for frame in segment(skb)]
    headers = [frag[IPv6ExtHdrFragment] for frag in fragments]
    assert {header.id for header in headers} == {0xABCD1234}
    assert [header.m for header in headers] == [1] * (len(headers) - 1) + [0]
    assert {header.nh for header in headers} == {17}


def test_ufo_fragments_reassemble_into_the_original_datagram() -> None:
    skb = ipv6_super(udp=True, gso_type=GsoType.UDP, gso_size=1000, frag_id=7)
    whole = IPv6(raw(defragment6([Ether(frame)[IPv6] for frame in segment(skb)])))
    assert raw(whole[UDP].payload) == PAYLOAD
    assert whole[UDP].len == 8 + len(PAYLOAD)
    stored = whole[UDP].chksum
    del whole[UDP].chksum
    assert IPv6(raw(whole))[UDP].chksum == stored, "the UDP checksum covers the whole datagram"


# --- 16-bit header fields are stored as htons stores them -----------------------------------------


def test_ufo_ipv6_offsets_past_65535_wrap_as_htons_does() -> None:
    # fuzz crasher: gso_size 1 behind an 8-byte hop-by-hop header moves the offset 9 bytes per
    # fragment (ipv6_gso_segment counts extension headers in the step), past 65535 (was: struct.error)
    frame = build_frame(SuperPacketSpec(ipv6=True, udp=True, payload=bytes(8000),
                                        ipv6_exthdrs=((0, bytes([1, 4]) + bytes(4)),)))
    skb = Packet.from_ethernet(frame)
    skb.gso_size, skb.gso_type = 1, GsoType.UDP
    fragments = transmit(skb, PROFILES["no-offload"])
    assert len(fragments) == 8 + 8000
    offsets = [struct.unpack_from("!H", seg.data, 14 + 40 + 8 + 2)[0] for seg in fragments]
    assert offsets == [((9 * k) & 0xFFFF) | (k != len(fragments) - 1) for k in range(len(fragments))]


@pytest.mark.parametrize(("udp", "gso_type"), [(False, GsoType.TCPV6), (True, GsoType.UDP_L4), (True, GsoType.UDP)])
def test_a_record_longer_than_any_ip_packet_wraps_16_bit_lengths_instead_of_crashing(
    udp: bool, gso_type: GsoType
) -> None:
    # a capture can hold a 140 KB "packet"; with gso_size 65535 a segment's payload length exceeds
    # 16 bits, and the kernel's htons() keeps the low 16 (was: struct.error)
    frame = bytearray(build_frame(SuperPacketSpec(ipv6=True, udp=udp, payload=bytes(60000)))) + bytes(80000)
    layout_transport = 14 + 40
    skb = Packet.from_ethernet(frame)
    skb.ip_summed, skb.csum_start, skb.csum_offset = IpSummed.PARTIAL, layout_transport, 6 if udp else 16
    skb.gso_size, skb.gso_type = 65535, gso_type
    first = transmit(skb, PROFILES["no-offload"])[0].data
    assert struct.unpack_from("!H", first, 14 + 4)[0] == (len(first) - 14 - 40) & 0xFFFF
    if gso_type == GsoType.UDP_L4:
        assert struct.unpack_from("!H", first, layout_transport + 4)[0] == (len(first) - layout_transport) & 0xFFFF
