"""TCP GSO rules (spec kernel-gso.md §8.1, the worked example §12), one test per rule.

Scapy builds the super-packets and decodes the segments; the expected values are the spec's.
"""

from __future__ import annotations

import pytest
from scapy.all import IP, TCP, Ether, IPv6, Raw, raw  # type: ignore[attr-defined]
from scapy.utils import checksum
from tunnel_frames import checksums_verify, segment

from softgso.errors import InvalidPacketError
from softgso.features import GsoType, IpSummed
from softgso.packet import Packet

# the worked example's TCP: seq 1 000 000, ACK+PSH+CWR, NOP,NOP,timestamps (doff 8), 5000 bytes of payload
PAYLOAD = bytes((i * 7 + 3) & 0xFF for i in range(5000))
TIMESTAMPS = [("NOP", None), ("NOP", None), ("Timestamp", (123456, 654321))]


def tcp_super(*, flags: int = 0x98, seq: int = 1_000_000, v6: bool = False, payload: bytes = PAYLOAD,
              gso_size: int = 1448, gso_type: GsoType | None = None) -> Packet:
    """The worked example's super-packet without its label: checksum complete, as a sender may hand it over."""
    tcp = TCP(sport=40000, dport=5201, seq=seq, ack=77, flags=flags, window=501, urgptr=9, options=TIMESTAMPS)
    ip = IPv6(src="fd00::1", dst="fd00::2") if v6 else IP(src="10.0.0.1", dst="10.0.0.2", id=0x1234, flags="DF")
    skb = Packet.from_ethernet(raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / ip / tcp / Raw(payload)))
    skb.transport_header = 14 + (40 if v6 else 20)
    skb.gso_size = gso_size
    skb.gso_type = gso_type if gso_type is not None else (GsoType.TCPV6 if v6 else GsoType.TCPV4)
    return skb


def decoded(skb: Packet) -> list[Ether]:
    return [Ether(frame) for frame in segment(skb)]


def test_payload_is_cut_into_gso_size_pieces_and_a_short_last_one() -> None:
    # §12: ceil(5000 / 1448) = 4 segments of 1448, 1448, 1448 and 656 bytes
    segments = decoded(tcp_super())
    assert [len(seg[TCP].payload) for seg in segments] == [1448, 1448, 1448, 656]
    assert b"".join(raw(seg[TCP].payload) for seg in segments) == PAYLOAD


def test_sequence_numbers_advance_by_gso_size() -> None:
    assert [seg[TCP].seq for seg in decoded(tcp_super())] == [1_000_000, 1_001_448, 1_002_896, 1_004_344]


def test_sequence_numbers_wrap_modulo_2_to_the_32() -> None:
    seqs = [seg[TCP].seq for seg in decoded(tcp_super(seq=0xFFFFFA00))]
    assert seqs == [0xFFFFFA00, (0xFFFFFA00 + 1448) % 2**32, (0xFFFFFA00 + 2896) % 2**32, (0xFFFFFA00 + 4344) % 2**32]


def test_cwr_only_on_the_first_segment() -> None:
    # §12: ACK+PSH+CWR in, ACK+CWR / ACK / ACK / ACK+PSH out
    assert [int(seg[TCP].flags) for seg in decoded(tcp_super())] == [0x90, 0x10, 0x10, 0x18]


def test_fin_and_psh_only_on_the_last_segment() -> None:
    assert [int(seg[TCP].flags) for seg in decoded(tcp_super(flags=0x19))] == [0x10, 0x10, 0x10, 0x19]


def test_ack_window_urgent_pointer_and_options_are_copied_unchanged() -> None:
    for seg in decoded(tcp_super()):
        assert (seg[TCP].ack, seg[TCP].window, seg[TCP].urgptr, seg[TCP].dataofs) == (77, 501, 9, 8)
        assert seg[TCP].options == [("NOP", None), ("NOP", None), ("Timestamp", (123456, 654321))]


@pytest.mark.parametrize("v6", [False, True])
def test_every_segment_carries_a_full_checksum_on_a_device_without_checksum_offload(v6: bool) -> None:
    skb = tcp_super(v6=v6)
    frames = segment(skb)
    assert len(frames) == 4 and all(checksums_verify(frame) for frame in frames)


def test_a_partial_checksum_is_completed_per_segment_with_that_segment_s_length() -> None:
    # §8.1 step 12: the pseudo-header carries thlen + this segment's payload (1480, ..., 688)
    skb = tcp_super()
    skb.ip_summed, skb.csum_start, skb.csum_offset = IpSummed.PARTIAL, 34, 16
    # the seed a sender stores: the pseudo-header's sum (addresses, protocol 6, L4 length), by Scapy
    pseudo = bytes([10, 0, 0, 1, 10, 0, 0, 2, 0, 6]) + (32 + len(PAYLOAD)).to_bytes(2, "big")
    skb.data[50:52] = (~checksum(pseudo) & 0xFFFF).to_bytes(2, "big")
    frames = segment(skb)
    assert all(checksums_verify(frame) for frame in frames)


def test_payload_not_above_gso_size_is_refused() -> None:
    # §8.1 step 8 / §12: gso_size 5000 or more on 5000 bytes -> -EINVAL
    with pytest.raises(InvalidPacketError, match="EINVAL"):
        segment(tcp_super(gso_size=5000))


def test_tcpv6_gso_type_on_an_ipv4_packet_is_refused() -> None:
    # §13.2: tcp4_gso_segment wants SKB_GSO_TCPV4
    with pytest.raises(InvalidPacketError, match="EINVAL"):
        segment(tcp_super(gso_type=GsoType.TCPV6))


def test_csum_start_elsewhere_than_the_tcp_header_is_refused() -> None:
    # §8.1 step 5: csum_start != transport_header -> -EINVAL
    skb = tcp_super()
    skb.ip_summed, skb.csum_start, skb.csum_offset = IpSummed.PARTIAL, 38, 16
    with pytest.raises(InvalidPacketError, match="EINVAL"):
        segment(skb)
