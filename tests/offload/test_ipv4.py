"""IPv4 GSO rules (spec kernel-gso.md §7.1, §13.2-13.3), one test per rule.

Scapy builds the super-packets and decodes the segments; the expected values are the spec's.
"""

from __future__ import annotations

import struct

import pytest
from scapy.all import IP, TCP, Ether, Raw, raw  # type: ignore[attr-defined]
from scapy.layers.inet import IPOption_NOP, IPOption_RR
from tunnel_frames import checksums_verify, segment

from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.errors import InvalidPacketError, ProtocolNotSupportedError
from softgso.features import PROFILES, GsoType, IpSummed
from softgso.packet import Packet
from softgso.xmit import transmit

PAYLOAD = bytes((i * 11 + 1) & 0xFF for i in range(4000))


def ipv4_super(*, ip_id: int = 0x1234, df: bool = True, options: list | None = None, tos: int = 0, ttl: int = 64,
               proto: int | None = None, gso_type: GsoType = GsoType.TCPV4) -> Packet:
    """An IPv4/TCP super-packet (4000 bytes of payload, gso_size 1000) built by Scapy."""
    ip = IP(src="10.0.0.1", dst="10.0.0.2", id=ip_id, flags="DF" if df else 0, tos=tos, ttl=ttl,
            options=options or [])
    if proto is not None:
        ip.proto = proto
    frame = raw(Ether() / ip / TCP(sport=1, dport=2, seq=5, flags="A") / Raw(PAYLOAD))
    skb = Packet.from_ethernet(frame)
    skb.transport_header = 14 + len(raw(ip)) - len(raw(ip.payload))
    skb.gso_size, skb.gso_type = 1000, gso_type
    return skb


def test_ids_increment_by_one_per_segment_from_the_original() -> None:
    assert [Ether(f)[IP].id for f in segment(ipv4_super())] == [0x1234, 0x1235, 0x1236, 0x1237]


def test_ids_wrap_at_16_bits() -> None:
    assert [Ether(f)[IP].id for f in segment(ipv4_super(ip_id=0xFFFE))] == [0xFFFE, 0xFFFF, 0x0000, 0x0001]


def test_fixedid_keeps_the_id_on_every_segment() -> None:
    frames = segment(ipv4_super(gso_type=GsoType.TCPV4 | GsoType.TCP_FIXEDID))
    assert [Ether(f)[IP].id for f in frames] == [0x1234] * 4


def test_fixedid_with_df_clear_is_refused() -> None:
    # §7.1 step 6: -EPROTONOSUPPORT
    with pytest.raises(ProtocolNotSupportedError):
        segment(ipv4_super(df=False, gso_type=GsoType.TCPV4 | GsoType.TCP_FIXEDID))


def test_total_length_and_header_checksum_are_recomputed_per_segment() -> None:
    frames = segment(ipv4_super())
    assert [Ether(f)[IP].len for f in frames] == [20 + 20 + 1000] * 4
    assert all(checksums_verify(f) for f in frames)


def test_tos_ttl_df_and_options_are_copied_unchanged() -> None:
    options = [IPOption_RR(routers=["192.0.2.1"]), IPOption_NOP()]
    original = Ether(bytes(ipv4_super(options=options, tos=0xB8, ttl=17).data))[IP]
    assert original.ihl == 7
    for frame in segment(ipv4_super(options=options, tos=0xB8, ttl=17)):
        ip = Ether(frame)[IP]
        assert (ip.tos, ip.ttl, int(ip.flags), ip.frag, ip.ihl) == (0xB8, 17, 2, 0, original.ihl)
        assert raw(ip)[20 : ip.ihl * 4] == raw(original)[20 : original.ihl * 4]


def test_ihl_below_5_is_refused() -> None:
    skb = ipv4_super()
    skb.data[14] = 0x44
    with pytest.raises(InvalidPacketError, match="EINVAL"):
        segment(skb)


def test_a_protocol_without_an_offload_is_refused() -> None:
    # §7.1 step 7: no handler for the IP protocol -> -EPROTONOSUPPORT (253: reserved for experiments)
    with pytest.raises(ProtocolNotSupportedError):
        segment(ipv4_super(proto=253))


# --- 16-bit header fields are stored as htons stores them -----------------------------------------


@pytest.mark.parametrize(("udp", "gso_type"), [(False, GsoType.TCPV4), (True, GsoType.UDP_L4), (True, GsoType.UDP)])
def test_a_record_longer_than_any_ip_packet_wraps_16_bit_lengths_instead_of_crashing(
    udp: bool, gso_type: GsoType
) -> None:
    # a capture can hold a 140 KB "packet"; with gso_size 65535 a segment's IP length exceeds 16
    # bits, and the kernel's htons() keeps the low 16 (was: struct.error)
    frame = bytearray(build_frame(SuperPacketSpec(udp=udp, payload=bytes(60000)))) + bytes(80000)
    layout_transport = 14 + 20
    skb = Packet.from_ethernet(frame)
    skb.ip_summed, skb.csum_start, skb.csum_offset = IpSummed.PARTIAL, layout_transport, 6 if udp else 16
    skb.gso_size, skb.gso_type = 65535, gso_type
    first = transmit(skb, PROFILES["no-offload"])[0].data
    assert struct.unpack_from("!H", first, 14 + 2)[0] == (len(first) - 14) & 0xFFFF
    if gso_type == GsoType.UDP_L4:
        assert struct.unpack_from("!H", first, layout_transport + 4)[0] == (len(first) - layout_transport) & 0xFFFF
