"""process_frame's tunnel branch: from a captured frame to a tunnel super-packet (offload/tunnels.py detects it).

Frames are built with Scapy as a sending host's tcpdump would show them; outcomes and bytes are
judged by Scapy. The rules: every tunnelled TCP super-packet over the MTU is segmented with full
outer headers and valid inner segments; what Linux never builds or what a capture cannot tell
with certainty is passed through and reported, never called a kernel refusal.
"""

from __future__ import annotations

from scapy.all import GRE, IP, TCP, UDP, Dot1Q, Ether, IPv6, Raw, raw  # type: ignore[attr-defined]
from scapy.layers.vxlan import VXLAN
from tunnel_frames import checksums_verify, inner_tcp

from softgso.features import PROFILES
from softgso.job import SEGMENTS_OVER_MTU, Outcome, SegmentOptions, process_frame

OPTIONS = SegmentOptions(device=PROFILES["no-offload"])
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
INNER_ETH = Ether(src="02:00:00:00:00:bb", dst="02:00:00:00:00:aa")


def _complete(packet) -> bytes:
    """Every checksum filled in by Scapy: what a capture of a checksummed packet shows."""
    return raw(packet)


def _vxlan(inner, *, udp_chksum=None, outer=None, dport=4789, vxlan_flags="Instance") -> bytes:
    outer = outer if outer is not None else IP(src="192.0.2.1", dst="192.0.2.2")
    udp = UDP(sport=51234, dport=dport) if udp_chksum is None else UDP(sport=51234, dport=dport, chksum=udp_chksum)
    return _complete(ETH / outer / udp / VXLAN(vni=42, flags=vxlan_flags) / INNER_ETH / inner)


def test_a_checksummed_vxlan_super_packet_is_segmented_with_valid_checksums() -> None:
    result = process_frame(_vxlan(inner_tcp()), OPTIONS)
    assert result.outcome == Outcome.SEGMENTED
    assert all(len(f) - 14 <= 1500 and checksums_verify(f) for f in result.frames)
    assert all(Ether(f)[UDP].chksum != 0 for f in result.frames)


def test_a_zero_outer_udp_checksum_stays_zero() -> None:
    result = process_frame(_vxlan(inner_tcp(), udp_chksum=0), OPTIONS)
    assert result.outcome == Outcome.SEGMENTED
    assert {Ether(f)[UDP].chksum for f in result.frames} == {0}
    assert all(checksums_verify(f) for f in result.frames)


def test_segments_fill_the_mtu_behind_all_headers() -> None:
    result = process_frame(_vxlan(inner_tcp(v6=True), outer=IPv6(src="2001:db8::1", dst="2001:db8::2")), OPTIONS)
    assert result.outcome == Outcome.SEGMENTED
    assert [len(f) - 14 for f in result.frames[:-1]] == [1500] * (len(result.frames) - 1)
    assert all(checksums_verify(f) for f in result.frames)


def test_an_outer_vlan_tag_is_kept_on_every_segment() -> None:
    frame = _complete(ETH / Dot1Q(vlan=10) / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1, dport=4789) /
                      VXLAN(vni=5) / INNER_ETH / inner_tcp())
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.SEGMENTED
    assert all(Ether(f)[Dot1Q].vlan == 10 and checksums_verify(f) for f in result.frames)


def test_gre_and_ipip_super_packets_are_segmented() -> None:
    gre = _complete(ETH / IP(src="192.0.2.1", dst="192.0.2.2") / GRE(proto=0x0800, key_present=1, key=9) /
                    inner_tcp())
    ipip = _complete(ETH / IP(src="192.0.2.1", dst="192.0.2.2", proto=4) / inner_tcp())
    for frame in (gre, ipip):
        result = process_frame(frame, OPTIONS)
        assert result.outcome == Outcome.SEGMENTED
        assert all(checksums_verify(f) for f in result.frames)


def test_a_tunnel_frame_within_the_mtu_is_unchanged() -> None:
    frame = _vxlan(inner_tcp(payload=b"x" * 200))
    assert process_frame(frame, OPTIONS).frames == [frame]


def test_gtp_u_is_reported_not_segmented() -> None:
    frame = _complete(ETH / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=2152, dport=2152) /
                      Raw(b"\x30\xff" + (3320).to_bytes(2, "big") + b"\0\0\0\1") / inner_tcp())
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.NOT_SEGMENTED and "GTP-U" in result.kind
    assert result.frames == [frame]


def test_inner_udp_without_gso_metadata_is_reported_not_segmented() -> None:
    inner = IP(src="10.1.0.1", dst="10.1.0.2") / UDP(sport=5000, dport=5001) / Raw(b"u" * 3000)
    result = process_frame(_vxlan(inner), OPTIONS)
    assert result.outcome == Outcome.NOT_SEGMENTED and "without GSO metadata" in result.kind


def test_inner_udp_is_cut_into_datagrams_with_udp_gso() -> None:
    inner = IP(src="10.1.0.1", dst="10.1.0.2") / UDP(sport=5000, dport=5001) / Raw(b"u" * 3000)
    options = SegmentOptions(device=PROFILES["no-offload"], udp_gso="udp_l4")
    result = process_frame(_vxlan(inner), options)
    assert result.outcome == Outcome.SEGMENTED
    assert all(checksums_verify(f) for f in result.frames)
    assert b"".join(bytes(Ether(f).getlayer(UDP, 2).payload) for f in result.frames) == b"u" * 3000


def test_vxlan_remote_checksum_offload_is_not_supported_never_a_kernel_refusal() -> None:
    frame = bytearray(_vxlan(inner_tcp()))
    frame[43] |= 0x20  # VXLAN_HF_RCO: BIT(21) of the flags word, the second byte (as in the vxlan4_rco_control vectors)
    result = process_frame(bytes(frame), OPTIONS)
    assert result.outcome == Outcome.NOT_SEGMENTED
    assert "not supported" in result.kind and "kernel" not in result.kind


def test_gre_with_sequence_numbers_is_reported_not_segmented() -> None:
    frame = _complete(ETH / IP(src="192.0.2.1", dst="192.0.2.2") / GRE(proto=0x0800, seqnum_present=1, sequence_number=5)
                      / inner_tcp())
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.NOT_SEGMENTED and "sequence" in result.kind


def test_big_tcp_inside_a_tunnel_is_segmented_with_a_note() -> None:
    """Outer tot_len 0 and UDP length 0 (BIG TCP for UDP tunnels): no length field is read (spec 11)."""
    payload = bytes(i & 0xFF for i in range(70000))
    inner = IP(src="10.1.0.1", dst="10.1.0.2", len=0) / TCP(sport=1, dport=2, flags="PA", chksum=0x1234) / \
        Raw(payload)
    frame = raw(ETH / IP(src="192.0.2.1", dst="192.0.2.2", len=0) / UDP(sport=3, dport=4789, len=0, chksum=0) /
                VXLAN(vni=1) / INNER_ETH / inner)
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.SEGMENTED
    assert "BIG TCP" in result.note and "no kernel vector" in result.note
    assert all(checksums_verify(f) for f in result.frames)
    assert b"".join(bytes(Ether(f)[TCP].payload) for f in result.frames) == payload


def _vxlan_under_labels() -> bytes:
    from scapy.contrib.mpls import MPLS

    return _complete(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x8847) /
                     MPLS(label=100, s=0, ttl=64) / MPLS(label=200, s=1, ttl=64) /
                     IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1, dport=4789) / VXLAN(vni=3) / INNER_ETH /
                     inner_tcp())


def test_a_tunnel_inside_a_label_stack_is_reported_as_linux_drops_it() -> None:
    """Spec 7.4: Linux keeps MPLS GSO and tunnel GSO apart and drops such a super-packet at the device
    (kernel vectors mplsroute_underlay_*); by default softgso reports it and passes it through."""
    frame = _vxlan_under_labels()
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.NOT_SEGMENTED and "label stack" in result.kind and "drops" in result.kind
    assert result.frames == [frame]


def test_beyond_the_kernel_a_tunnel_inside_labels_keeps_labels_and_outer_headers_on_every_segment() -> None:
    frame = _vxlan_under_labels()
    options = SegmentOptions(device=PROFILES["no-offload"], tunnel_in_labels=True)
    result = process_frame(frame, options)
    assert result.outcome == Outcome.SEGMENTED and len(result.frames) == 3
    for segment in result.frames:
        assert segment[:22] == frame[:22]  # Ethernet and both labels, byte for byte
        assert len(segment) - 14 <= 1500 and checksums_verify(segment)
    assert b"".join(bytes(Ether(f)[TCP].payload) for f in result.frames) == bytes(Ether(frame)[TCP].payload)


# Signed TCP (RFC 2385 MD5, RFC 5925 AO): Linux turns GSO off on a socket with a signing key
# (tcp_md5_do_add, tcp_ao's key setup: sk_gso_disable), so no signed super-packet leaves a Linux
# host, and one signature covers a whole segment. The rule: passed through unchanged and reported.
NOPS = [("NOP", None)] * 2
MD5 = (19, b"\x5a" * 16)  # kind 19, length 18 (tcp_parse_md5sig_option wants exactly 18)


def _plain_tcp(options, payload: bytes = b"s" * 4000) -> bytes:
    return _complete(ETH / IP(src="192.0.2.1", dst="192.0.2.2") /
                     TCP(sport=179, dport=40000, flags="A", seq=1000, options=options) / Raw(payload))


def test_a_tcp_super_packet_signed_with_md5_is_passed_through_and_reported() -> None:
    frame = _plain_tcp(NOPS + [MD5])
    assert bytes(Ether(frame)[TCP].options[2][1]) == b"\x5a" * 16  # Scapy reads the option back
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.NOT_SEGMENTED and "MD5" in result.kind
    assert result.frames == [frame] and result.over_mtu


def test_the_same_super_packet_unsigned_is_segmented() -> None:
    """The control: options of the same length without a signature (timestamps), cut as the kernel cuts."""
    frame = _plain_tcp([("Timestamp", (1, 2))] + [("NOP", None)] * 10)
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.SEGMENTED
    assert b"".join(bytes(Ether(f)[TCP].payload) for f in result.frames) == b"s" * 4000


def test_a_tcp_ao_super_packet_is_passed_through_and_reported() -> None:
    frame = _plain_tcp([(29, b"\x01\x01" + b"\xa0" * 12)] + NOPS)  # kind 29: key ids and a 12-byte MAC
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.NOT_SEGMENTED and "TCP-AO" in result.kind
    assert result.frames == [frame]


def test_an_md5_kind_of_the_wrong_length_is_no_signature() -> None:
    """tcp_parse_md5sig_option takes kind 19 only with length 18: anything else is an unknown option."""
    frame = _plain_tcp(NOPS + [(19, b"\x5a" * 8)] + NOPS * 4)
    assert process_frame(frame, OPTIONS).outcome == Outcome.SEGMENTED


def test_a_signature_behind_an_end_of_options_is_not_read() -> None:
    frame = _plain_tcp([("EOL", None), ("NOP", None), MD5, ("NOP", None)])
    assert raw(Ether(frame)[TCP])[20] == 0  # the option list ends at its first byte
    assert process_frame(frame, OPTIONS).outcome == Outcome.SEGMENTED


def test_a_signed_tcp_super_packet_inside_a_tunnel_is_passed_through_and_reported() -> None:
    inner = IP(src="10.1.0.1", dst="10.1.0.2") / TCP(sport=179, dport=40000, flags="A", options=NOPS + [MD5]) / \
        Raw(b"t" * 4000)
    frame = _vxlan(inner)
    result = process_frame(frame, OPTIONS)
    assert result.outcome == Outcome.NOT_SEGMENTED and "MD5" in result.kind
    assert result.frames == [frame]


def test_an_mtu_too_small_for_the_headers_is_reported_never_a_kernel_refusal() -> None:
    # no kernel check refuses it: a device of that MTU cannot carry the headers (softgso's own limit)
    frame = _complete(ETH / IP(src="192.0.2.1", dst="192.0.2.2") / TCP(options=[("NOP", None)] * 40) / Raw(bytes(3000)))
    for options, packet in ((OPTIONS.replace(device=PROFILES["no-offload"].replace(mtu=68)), frame),
                            (OPTIONS.replace(device=PROFILES["no-offload"].replace(mtu=80)), _vxlan(inner_tcp()))):
        result = process_frame(packet, options)
        assert result.outcome == Outcome.NOT_SEGMENTED
        assert result.kind == "MTU too small for the headers (not the kernel's check)"
        assert result.frames == [packet]


def test_segments_cut_at_a_given_gso_size_over_the_mtu_are_written_as_cut_and_noted() -> None:
    # tcp_gso_segment cuts at gso_size and skb_gso_segment never reads the MTU: the kernel's segments
    # are written, and the record carries the note that they are over it (no silent frame over the MTU)
    frame = _complete(ETH / IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=1, dport=2, flags="A") / Raw(bytes(5000)))
    result = process_frame(frame, OPTIONS.replace(gso_size=2000))
    assert result.outcome == Outcome.SEGMENTED
    assert [len(Ether(f)[TCP].payload) for f in result.frames] == [2000, 2000, 1000]
    assert all(checksums_verify(f) for f in result.frames)
    assert result.note == SEGMENTS_OVER_MTU
    fitting = process_frame(frame, OPTIONS.replace(gso_size=1000))
    assert fitting.outcome == Outcome.SEGMENTED and len(fitting.frames) == 5 and not fitting.note
    derived = process_frame(frame, OPTIONS)  # the gso_size derived from the MTU fits it
    assert derived.outcome == Outcome.SEGMENTED and not derived.note
