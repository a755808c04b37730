"""The corpus tests' own decoder, on hand-built bytes: expected values from the RFCs and format documents.

Checksums are checked against the RFCs' worked examples and against RFC 1071's loop written out
literally here (the decoder uses the modulo-0xFFFF shortcut); every packet is built field by field
with struct, never by softgso.
"""

from __future__ import annotations

import re
import struct
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from .decoder import (
    ETH_P_IP,
    ETH_P_IPV6,
    LINKTYPE_C_HDLC,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NFLOG,
    LINKTYPE_NULL,
    LINKTYPE_PPP,
    LINKTYPE_RAW,
    LINKTYPE_RAW_12,
    LINKTYPE_RAW_14,
    decode,
    decode_frame,
    internet_checksum,
    ones_complement_sum,
    read_capture,
)

SRC4, DST4 = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2])  # RFC 5737 documentation addresses
SRC6 = bytes.fromhex("20010db8000000000000000000000001")  # RFC 3849 documentation prefix
DST6 = bytes.fromhex("20010db8000000000000000000000002")
MAC_DST, MAC_SRC = bytes.fromhex("020000000002"), bytes.fromhex("020000000001")
TCP, UDP = 6, 17
SYN, ACK, PSH = 0x02, 0x10, 0x08


# -- RFC 1071, written out literally -----------------------------------------------------------------


def rfc1071_sum(data: bytes) -> int:
    """RFC 1071 4.1: add 16-bit words (odd length padded with zero), then fold the carries."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def rfc1071_checksum(data: bytes) -> int:
    return ~rfc1071_sum(data) & 0xFFFF


# -- packets built field by field ---------------------------------------------------------------------


def ipv4(payload: bytes, protocol: int, *, options: bytes = b"", total_length: int | None = None,
         flags_fragment: int = 0x4000, src: bytes = SRC4, dst: bytes = DST4, checksum: int | None = None) -> bytes:
    """An IPv4 header (RFC 791) in front of payload; the header checksum computed unless given."""
    header_len = 20 + len(options)
    length = header_len + len(payload) if total_length is None else total_length
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | header_len // 4, 0, length, 0x1234, flags_fragment, 64,
                         protocol, 0, src, dst) + options
    if checksum is None:
        checksum = rfc1071_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + payload


def ipv6(payload: bytes, next_header: int, *, payload_length: int | None = None, src: bytes = SRC6,
         dst: bytes = DST6) -> bytes:
    """An IPv6 header (RFC 8200); ``payload`` includes any extension headers."""
    length = len(payload) if payload_length is None else payload_length
    return struct.pack("!IHBB16s16s", 0x60000000, length, next_header, 64, src, dst) + payload


def pseudo_header(src: bytes, dst: bytes, protocol: int, length: int) -> bytes:
    """RFC 9293 3.1 (IPv4, 16-bit length) or RFC 8200 8.1 (IPv6, 32-bit length)."""
    if len(src) == 4 and length <= 0xFFFF:
        return src + dst + struct.pack("!BBH", 0, protocol, length)
    return src + dst + struct.pack("!I3xB", length, protocol)


def tcp(payload: bytes, *, sport: int = 40000, dport: int = 80, seq: int = 1000, ack: int = 0,
        flags: int = ACK | PSH, options: bytes = b"", src: bytes = SRC4, dst: bytes = DST4,
        checksum: int | None = None) -> bytes:
    """A TCP header (RFC 9293) and payload, its checksum over the pseudo-header unless given."""
    header_len = 20 + len(options)
    segment = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, (header_len // 4) << 4, flags, 65535, 0, 0)
    segment += options + payload
    if checksum is None:
        checksum = rfc1071_checksum(pseudo_header(src, dst, TCP, len(segment)) + segment)
    return segment[:16] + struct.pack("!H", checksum) + segment[18:]


def udp(payload: bytes, *, sport: int = 40000, dport: int = 53, src: bytes = SRC4, dst: bytes = DST4,
        length: int | None = None, checksum: int | None = None) -> bytes:
    """A UDP header (RFC 768) and payload; a computed zero checksum is sent as 0xFFFF."""
    datagram = struct.pack("!HHHH", sport, dport, 8 + len(payload) if length is None else length, 0) + payload
    if checksum is None:
        checksum = rfc1071_checksum(pseudo_header(src, dst, UDP, len(datagram)) + datagram) or 0xFFFF
    return datagram[:6] + struct.pack("!H", checksum) + datagram[8:]


def ethernet(payload: bytes, ethertype: int, tags: tuple[tuple[int, int], ...] = ()) -> bytes:
    """An Ethernet header with (TPID, VID) tags, outermost first."""
    header = MAC_DST + MAC_SRC
    for tpid, vid in tags:
        header += struct.pack("!HH", tpid, vid)
    return header + struct.pack("!H", ethertype) + payload


def mpls(labels: list[int]) -> bytes:
    """A label stack (RFC 3032), the S bit on the last entry."""
    return b"".join(struct.pack("!I", label << 12 | (1 << 8 if i == len(labels) - 1 else 0) | 64)
                    for i, label in enumerate(labels))


def tcp4(payload: bytes = b"hello", **fields: Any) -> bytes:
    return ipv4(tcp(payload, **fields), TCP)


# -- ones'-complement arithmetic ---------------------------------------------------------------------


def test_sum_of_rfc1071_numerical_example() -> None:
    """RFC 1071 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2, so the checksum is 0x220d."""
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_complement_sum(data) == 0xDDF2
    assert internet_checksum(data) == 0x220D


def test_checksums_of_rfc1624_example() -> None:
    """RFC 1624 4: other octets summing to 0xCD7A with m = 0x5555 give HC 0xDD2F; with m' = 0x3285, 0x0000."""
    assert internet_checksum(bytes.fromhex("cd7a5555")) == 0xDD2F
    assert internet_checksum(bytes.fromhex("cd7a3285")) == 0x0000


def test_odd_length_is_padded_with_a_zero_octet() -> None:
    """RFC 1071 1: a last odd octet is summed as if followed by a zero octet."""
    assert ones_complement_sum(b"\x12\x34\x56") == 0x1234 + 0x5600


@pytest.mark.parametrize("length", [1, 2, 3, 20, 1499, 1500, 65536 + 3])
def test_sum_agrees_with_rfc1071_loop(length: int) -> None:
    """The modulo-0xFFFF shortcut and RFC 1071's word loop give the same folded sum."""
    data = bytes((i * 7919 + 13) & 0xFF for i in range(length))
    assert ones_complement_sum(data) == rfc1071_sum(data)


def test_ipv4_header_checksum_of_the_textbook_header() -> None:
    """The widely reproduced header 4500 0073 0000 4000 4011 .... c0a8 0001 c0a8 00c7 has checksum 0xb861."""
    header = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert internet_checksum(header) == 0xB861
    frame = decode_frame(LINKTYPE_IPV4, header[:10] + b"\xb8\x61" + header[12:] + bytes(0x73 - 20))
    assert frame.ip is not None and frame.ip.header_checksum_ok is True


# -- classic pcap --------------------------------------------------------------------------------------


def pcap(records: list[tuple[int, int, bytes, int]], *, order: str = "<", nano: bool = False,
         linktype_field: int = LINKTYPE_ETHERNET) -> bytes:
    """A classic pcap file (draft-ietf-opsawg-pcap): records of (seconds, fraction, data, orig_len)."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype_field)
    for seconds, fraction, data, orig_len in records:
        out += struct.pack(order + "IIII", seconds, fraction, len(data), orig_len) + data
    return out


@pytest.mark.parametrize(("order", "nano", "fraction", "expected"), [
    ("<", False, 500000, Fraction(3, 2)),
    (">", False, 250000, Fraction(5, 4)),
    ("<", True, 1, 1 + Fraction(1, 10**9)),
    (">", True, 999999999, 1 + Fraction(999999999, 10**9)),
])
def test_pcap_in_both_byte_orders_and_resolutions(order: str, nano: bool, fraction: int, expected: Fraction) -> None:
    """Magic a1b2c3d4 counts microseconds, a1b23c4d nanoseconds; the magic's byte order is the file's."""
    data = tcp4()
    capture = read_capture(pcap([(1, fraction, data, len(data)), (2, 0, data[:30], 900)], order=order, nano=nano))
    assert capture.format == "pcap" and not capture.broken
    first, second = capture.records
    assert (first.number, first.timestamp, first.data, first.orig_len) == (1, expected, data, len(data))
    assert (second.number, second.caplen, second.orig_len, second.snapped) == (2, 30, 900, True)


def test_pcap_link_type_field_without_its_fcs_bits() -> None:
    """The upper bits of the link-type field say whether frames carry an FCS; the link type is below them."""
    capture = read_capture(pcap([(0, 0, tcp4(), 45)], linktype_field=0x34000000 | LINKTYPE_RAW))
    assert capture.records[0].linktype == LINKTYPE_RAW


def test_pcap_breaks_where_a_record_is_cut_short() -> None:
    """A file ending inside a record's data or header is broken; the records before stay readable."""
    whole = pcap([(0, 0, b"a" * 60, 60), (1, 0, b"b" * 60, 60)])
    inside_data = read_capture(whole[:-1])
    assert inside_data.broken and [r.number for r in inside_data.records] == [1]
    inside_header = read_capture(whole[:24 + 16 + 60 + 5])
    assert inside_header.broken and len(inside_header.records) == 1
    assert not read_capture(whole).broken
    assert not read_capture(whole[:24]).broken and read_capture(whole[:24]).records == []
    assert read_capture(whole[:10]).broken


def test_pcap_unknown_magic_is_no_capture() -> None:
    with pytest.raises(ValueError):
        read_capture(b"\x00" * 40)


# -- pcapng --------------------------------------------------------------------------------------------


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def block(order: str, block_type: int, body: bytes) -> bytes:
    """A pcapng block: type, total length, body padded to 32 bits, total length again."""
    body = _pad(body)
    return struct.pack(order + "II", block_type, len(body) + 12) + body + struct.pack(order + "I", len(body) + 12)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + _pad(value)


def shb(order: str) -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(order: str, linktype: int, snaplen: int = 0, options: bytes = b"") -> bytes:
    if options:
        options += option(order, 0, b"")
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + options)


def epb(order: str, interface: int, ticks: int, data: bytes, orig_len: int | None = None) -> bytes:
    return block(order, 6, struct.pack(order + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                                       len(data) if orig_len is None else orig_len) + _pad(data)
                 + option(order, 1, b"a comment") + option(order, 0, b""))


def spb(order: str, data: bytes, orig_len: int) -> bytes:
    return block(order, 3, struct.pack(order + "I", orig_len) + data)


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_interfaces_timestamps_and_blocks(order: str) -> None:
    """Each Enhanced Packet Block takes its link type and time resolution from its interface
    (if_tsresol 9: nanoseconds; 0x8A: 2**-10 s; none: microseconds; if_tsoffset in seconds); a Simple
    Packet Block is interface 0's, cut at its snaplen, without a timestamp; other blocks are skipped."""
    frame, cooked = tcp4(), b"\x00" * 14 + b"\x08\x00" + tcp4()
    raw = (shb(order)
           + idb(order, LINKTYPE_RAW, 64, option(order, 9, b"\x09") + option(order, 14, struct.pack(order + "q", 100)))
           + idb(order, LINKTYPE_LINUX_SLL)
           + idb(order, LINKTYPE_ETHERNET, options=option(order, 9, b"\x8a"))
           + block(order, 4, b"\x00\x00\x00\x00")  # name resolution block
           + block(order, 0x00000BAD, b"custom data")
           + epb(order, 0, 1_500_000_000, frame)
           + epb(order, 1, 2_000_001, cooked, 1400)
           + epb(order, 2, 3 * 1024 + 512, frame)
           + spb(order, frame + bytes(100), len(frame) + 100))
    capture = read_capture(raw)
    assert capture.format == "pcapng" and not capture.broken
    got = [(r.number, r.linktype, r.interface, r.timestamp, r.caplen, r.orig_len) for r in capture.records]
    assert got == [
        (1, LINKTYPE_RAW, 0, 100 + Fraction(3, 2), len(frame), len(frame)),
        (2, LINKTYPE_LINUX_SLL, 1, 2 + Fraction(1, 10**6), len(cooked), 1400),
        (3, LINKTYPE_ETHERNET, 2, Fraction(7, 2), len(frame), len(frame)),
        (4, LINKTYPE_RAW, 0, None, 64, len(frame) + 100),
    ]
    assert capture.records[0].data == frame and capture.records[3].data == (frame + bytes(100))[:64]


def test_pcapng_each_section_has_its_own_byte_order_and_interfaces() -> None:
    """A second Section Header Block starts over: its own byte order, interfaces numbered from 0 again."""
    frame = tcp4()
    raw = (shb("<") + idb("<", LINKTYPE_ETHERNET) + idb("<", LINKTYPE_RAW) + epb("<", 1, 0, frame)
           + shb(">") + idb(">", LINKTYPE_IPV4) + epb(">", 0, 0, frame) + epb(">", 1, 0, frame))
    capture = read_capture(raw)
    assert [r.linktype for r in capture.records] == [LINKTYPE_RAW, LINKTYPE_IPV4]
    assert capture.broken and "interface 1" in (capture.break_reason or "")


def test_pcapng_breaks_where_a_block_is_cut_short() -> None:
    frame = tcp4()
    raw = shb("<") + idb("<", LINKTYPE_RAW) + epb("<", 0, 0, frame) + epb("<", 0, 1, frame)
    cut = read_capture(raw[:-8])
    assert cut.broken and len(cut.records) == 1
    bad_trailer = read_capture(raw[:-4] + b"\x00\x00\x00\x00")
    assert bad_trailer.broken and len(bad_trailer.records) == 1


# -- link layers ----------------------------------------------------------------------------------------


def test_ethernet_tags_and_label_stack() -> None:
    """802.1ad then 802.1Q tags are link layer; the two labels count toward L3, IPv4 sits behind them."""
    packet = tcp4(b"x" * 100)
    frame = decode_frame(LINKTYPE_ETHERNET, ethernet(mpls([100, 200]) + packet, 0x8847,
                                                     tags=((0x88A8, 10), (0x8100, 20))))
    assert (frame.l3_offset, frame.vlan_tags, frame.mpls_labels, frame.ethertype) == (22, 2, 2, ETH_P_IP)
    assert frame.l3_size == 8 + len(packet)
    assert frame.ip is not None and frame.ip.offset == 30 and frame.ip.tcp is not None
    assert frame.ip.tcp.checksum_ok is True


def test_mpls_multicast_label_then_ipv6_by_version_nibble() -> None:
    packet = ipv6(udp(b"data", src=SRC6, dst=DST6), UDP)
    frame = decode_frame(LINKTYPE_ETHERNET, ethernet(mpls([16]) + packet, 0x8848))
    assert frame.mpls_labels == 1 and frame.ethertype == ETH_P_IPV6 and frame.ip is not None
    assert frame.ip.udp is not None and frame.ip.udp.checksum_ok is True


def test_mpls_bottom_without_ip_is_not_ip() -> None:
    """A pseudowire control word (first nibble 0) behind the bottom label is no IP packet."""
    frame = decode_frame(LINKTYPE_ETHERNET, ethernet(mpls([16]) + bytes(4) + ethernet(tcp4(), ETH_P_IP), 0x8847))
    assert frame.ip is None and frame.ethertype == 0 and frame.l3_offset == 14


def test_ieee_802_3_length_field_is_not_an_ethertype() -> None:
    frame = decode_frame(LINKTYPE_ETHERNET, MAC_DST + MAC_SRC + struct.pack("!H", 46) + bytes(46))
    assert frame.ip is None and frame.l3_size == 46


@pytest.mark.parametrize(("linktype", "header", "offset"), [
    (LINKTYPE_LINUX_SLL, bytes(14) + b"\x08\x00", 16),
    (LINKTYPE_LINUX_SLL2, b"\x08\x00" + bytes(18), 20),
    (LINKTYPE_NULL, struct.pack("<I", 2), 4),
    (LINKTYPE_NULL, struct.pack(">I", 2), 4),
    (LINKTYPE_LOOP, struct.pack(">I", 2), 4),
    (LINKTYPE_RAW_12, b"", 0),
    (LINKTYPE_RAW_14, b"", 0),
    (LINKTYPE_RAW, b"", 0),
    (LINKTYPE_IPV4, b"", 0),
    (LINKTYPE_PPP, b"\xff\x03\x00\x21", 4),
    (LINKTYPE_PPP, b"\x00\x21", 2),
    (LINKTYPE_C_HDLC, b"\x0f\x00\x08\x00", 4),
])
def test_link_headers_in_front_of_ipv4(linktype: int, header: bytes, offset: int) -> None:
    packet = tcp4(b"y" * 33)
    frame = decode_frame(linktype, header + packet)
    assert (frame.l3_offset, frame.ethertype, frame.l3_size) == (offset, ETH_P_IP, len(packet))
    assert frame.ip is not None and frame.ip.tcp is not None and frame.ip.tcp.checksum_ok is True


@pytest.mark.parametrize(("linktype", "header"), [
    (LINKTYPE_NULL, struct.pack("<I", 10)),  # Linux AF_INET6
    (LINKTYPE_NULL, struct.pack("<I", 24)),  # NetBSD, OpenBSD
    (LINKTYPE_NULL, struct.pack("<I", 28)),  # FreeBSD
    (LINKTYPE_NULL, struct.pack(">I", 30)),  # Darwin, written big-endian
    (LINKTYPE_LOOP, struct.pack(">I", 24)),
    (LINKTYPE_RAW, b""),
    (LINKTYPE_IPV6, b""),
    (LINKTYPE_PPP, b"\xff\x03\x00\x57"),
    (LINKTYPE_C_HDLC, b"\x0f\x00\x86\xdd"),
    (LINKTYPE_LINUX_SLL2, b"\x86\xdd" + bytes(18)),
])
def test_link_headers_in_front_of_ipv6(linktype: int, header: bytes) -> None:
    frame = decode_frame(linktype, header + ipv6(udp(b"q", src=SRC6, dst=DST6), UDP))
    assert frame.ethertype == ETH_P_IPV6 and frame.ip is not None and frame.ip.udp is not None


def test_null_family_that_is_no_ip() -> None:
    frame = decode_frame(LINKTYPE_NULL, struct.pack("<I", 7) + tcp4())
    assert frame.ip is None and frame.l3_offset == 4


def test_ppp_mpls_label_then_ipv4() -> None:
    frame = decode_frame(LINKTYPE_PPP, b"\xff\x03\x02\x81" + mpls([1000]) + tcp4())
    assert frame.mpls_labels == 1 and frame.ip is not None and frame.ip.offset == 8


@pytest.mark.parametrize("order", ["<", ">"])
def test_nflog_payload_tlv(order: str) -> None:
    """NFLOG: a 4-byte header, then TLVs (length includes the 4-byte TLV header, padded to 32 bits, in
    the host's byte order); the packet is NFULA_PAYLOAD (type 9); padding behind it is no L3."""
    packet = tcp4(b"z" * 3)  # 43 bytes: the TLV gets a byte of padding
    prefix = b"abc\x00"
    data = (b"\x02\x00\x00\x00" + struct.pack(order + "HH", 4 + len(prefix), 10) + prefix
            + struct.pack(order + "HH", 8, 1) + b"\x08\x00\x03\x00"
            + struct.pack(order + "HH", 4 + len(packet), 9) + packet + b"\x00")
    frame = decode_frame(LINKTYPE_NFLOG, data)
    assert frame.l3_offset == 4 + 8 + 8 + 4 and frame.l3_size == len(packet)
    assert frame.ip is not None and frame.ip.tcp is not None and frame.ip.tcp.checksum_ok is True


# -- IPv4 -------------------------------------------------------------------------------------------------


def test_ipv4_options_move_the_transport_header() -> None:
    segment = tcp(b"data")
    frame = decode_frame(LINKTYPE_IPV4, ipv4(segment, TCP, options=b"\x01\x01\x01\x00"))
    assert frame.ip is not None and frame.ip.header_len == 24 and frame.ip.header_checksum_ok is True
    assert frame.ip.tcp is not None and frame.ip.tcp.offset == 24 and frame.ip.tcp.checksum_ok is True


def test_bytes_behind_the_ip_length_are_a_trailer() -> None:
    """The IP packet ends where its total length says: an Ethernet trailer or FCS is no payload, and
    the checksum covers the packet only."""
    packet = tcp4(b"payload")
    frame = decode_frame(LINKTYPE_ETHERNET, ethernet(packet, ETH_P_IP) + b"\xde\xad\xbe\xef")
    ip = frame.ip
    assert ip is not None and ip.tcp is not None
    assert ip.end == 14 + len(packet) and ip.tcp.payload_end == ip.end and ip.tcp.checksum_ok is True
    assert frame.l3_size == len(packet) + 4  # the MTU counts to the record's end


def test_ipv4_total_length_zero_ends_at_the_record_end() -> None:
    """tot_len 0 (BIG TCP, large send): the packet runs to the end of the record on the wire."""
    payload = bytes(range(256)) * 300  # 76800 bytes: over 64 KB, the pseudo-header length needs 32 bits
    segment = tcp(payload)
    frame = decode_frame(LINKTYPE_ETHERNET, ethernet(ipv4(segment, TCP, total_length=0), ETH_P_IP))
    ip = frame.ip
    assert ip is not None and ip.length_zero and ip.end == frame.caplen and ip.whole
    assert ip.tcp is not None and ip.tcp.checksum_ok is True and ip.tcp.payload_end - ip.tcp.payload_start == len(payload)


def test_snapped_record_is_not_whole_and_its_checksum_not_judged() -> None:
    packet = tcp4(b"w" * 1460)
    data = ethernet(packet, ETH_P_IP)
    frame = decode_frame(LINKTYPE_ETHERNET, data[:96], len(data))
    assert frame.l3_size == 1500 and frame.ip is not None and not frame.ip.whole
    assert frame.ip.tcp is not None and frame.ip.tcp.checksum_ok is None


def test_ipv4_fragments() -> None:
    """MF or a fragment offset make a fragment (RFC 791); a later fragment holds no transport header."""
    first = decode_frame(LINKTYPE_IPV4, ipv4(tcp(b"a" * 40), TCP, flags_fragment=0x2000)).ip
    assert first is not None and first.fragment and first.more_fragments and first.fragment_offset == 0
    assert first.tcp is not None and first.tcp.checksum_ok is None
    later = decode_frame(LINKTYPE_IPV4, ipv4(b"b" * 40, TCP, flags_fragment=185)).ip
    assert later is not None and later.fragment and later.fragment_offset == 1480 and later.tcp is None
    whole = decode_frame(LINKTYPE_IPV4, ipv4(tcp(b"c"), TCP, flags_fragment=0x4000)).ip
    assert whole is not None and not whole.fragment


def test_ipv4_header_checksum_mismatch() -> None:
    frame = decode_frame(LINKTYPE_IPV4, ipv4(tcp(b"d"), TCP, checksum=0x1234))
    assert frame.ip is not None and frame.ip.header_checksum_ok is False


def test_ipv4_total_length_beyond_the_frame_is_a_problem() -> None:
    frame = decode_frame(LINKTYPE_IPV4, ipv4(tcp(b"e"), TCP, total_length=400))
    assert frame.ip is not None and frame.ip.problem and frame.ip.tcp is None


# -- IPv6 ---------------------------------------------------------------------------------------------------


def test_ipv6_extension_headers_are_walked() -> None:
    """Hop-by-Hop, Routing, Destination Options and an atomic Fragment header (RFC 8200 4; RFC 6946)."""
    datagram = udp(b"over ext headers", src=SRC6, dst=DST6)
    extensions = (bytes([43, 0]) + bytes(6)  # hop-by-hop: padding only
                  + bytes([60, 0, 0, 0]) + bytes(4)  # routing, 8 bytes
                  + bytes([44, 1]) + bytes(14)  # destination options, 16 bytes
                  + bytes([UDP, 0, 0, 0]) + struct.pack("!I", 7))  # fragment: offset 0, M 0
    frame = decode_frame(LINKTYPE_IPV6, ipv6(extensions + datagram, 0))
    ip = frame.ip
    assert ip is not None and ip.header_len == 40 + 8 + 8 + 16 + 8 and ip.protocol == UDP
    assert not ip.fragment and ip.udp is not None and ip.udp.checksum_ok is True


def test_ipv6_fragment_header_with_an_offset() -> None:
    fragment = bytes([UDP, 0]) + struct.pack("!HI", 1448 | 1, 9)
    ip = decode_frame(LINKTYPE_IPV6, ipv6(fragment + bytes(64), 44)).ip
    assert ip is not None and ip.fragment and ip.fragment_offset == 1448 and ip.more_fragments and ip.udp is None


def test_ipv6_jumbogram_length_from_the_jumbo_option() -> None:
    """RFC 2675: payload length 0 and a Jumbo Payload option (type 0xC2) holding the length."""
    payload = bytes(70000)
    hop_by_hop = bytes([59, 0, 0xC2, 4]) + struct.pack("!I", 8 + len(payload))
    frame = decode_frame(LINKTYPE_IPV6, ipv6(hop_by_hop + payload, 0, payload_length=0) + b"trailer")
    ip = frame.ip
    assert ip is not None and ip.jumbo_length == 8 + len(payload) and ip.end == 40 + 8 + len(payload)


def test_ipv6_payload_length_zero_without_jumbo_option_runs_to_the_record_end() -> None:
    """Linux BIG TCP over IPv6 as a tap sees it: payload length 0, no option; TCP's pseudo-header
    carries the real 32-bit length (RFC 8200 8.1)."""
    payload = bytes(range(251)) * 300
    segment = tcp(payload, src=SRC6, dst=DST6)
    frame = decode_frame(LINKTYPE_IPV6, ipv6(segment, TCP, payload_length=0))
    ip = frame.ip
    assert ip is not None and ip.length_zero and ip.end == frame.caplen
    assert ip.tcp is not None and ip.tcp.checksum_ok is True


# -- TCP and UDP -------------------------------------------------------------------------------------------


def test_tcp_header_fields() -> None:
    options = b"\x02\x04\x05\xb4\x01\x03\x03\x07\x04\x02\x00\x00"  # MSS, NOP, window scale, SACK permitted
    frame = decode_frame(LINKTYPE_IPV4, ipv4(tcp(b"early data", sport=1234, dport=443, seq=0xFFFFFFFF,
                                                ack=77, flags=SYN, options=options), TCP))
    segment = frame.ip.tcp if frame.ip else None
    assert segment is not None
    assert (segment.sport, segment.dport, segment.seq, segment.ack, segment.flags) == (1234, 443, 0xFFFFFFFF, 77, SYN)
    assert segment.header_len == 32 and segment.payload_start == 20 + 32
    assert segment.data_seq == 0  # the SYN takes 0xFFFFFFFF; the first data byte wraps to 0
    assert segment.checksum_ok is True


def test_tcp_checksum_mismatch_and_partial_seed() -> None:
    """A CHECKSUM_PARTIAL seed (the pseudo-header sum alone) is no valid checksum."""
    segment = tcp(b"abc", checksum=0)
    seed = rfc1071_sum(pseudo_header(SRC4, DST4, TCP, len(segment)))
    frame = decode_frame(LINKTYPE_IPV4, ipv4(segment[:16] + struct.pack("!H", seed) + segment[18:], TCP))
    assert frame.ip is not None and frame.ip.tcp is not None and frame.ip.tcp.checksum_ok is False


def test_udp_zero_checksum_means_none_over_ipv4_only() -> None:
    """RFC 768: 0 means no checksum; RFC 8200 8.1: not allowed over IPv6."""
    over_v4 = decode_frame(LINKTYPE_IPV4, ipv4(udp(b"x", checksum=0), UDP)).ip
    assert over_v4 is not None and over_v4.udp is not None and over_v4.udp.checksum_ok is True
    over_v6 = decode_frame(LINKTYPE_IPV6, ipv6(udp(b"x", src=SRC6, dst=DST6, checksum=0), UDP)).ip
    assert over_v6 is not None and over_v6.udp is not None and over_v6.udp.checksum_ok is False


def test_udp_fields_and_checksum_over_the_ip_length() -> None:
    datagram = udp(b"0123456789", sport=5353, dport=5353)
    ip = decode_frame(LINKTYPE_IPV4, ipv4(datagram, UDP)).ip
    assert ip is not None and ip.udp is not None
    assert (ip.udp.sport, ip.udp.dport, ip.udp.length, ip.udp.payload_start, ip.udp.payload_end) == (
        5353, 5353, 18, 28, 38)
    assert ip.udp.checksum_ok is True
    assert ip.udp.checksum == rfc1071_checksum(pseudo_header(SRC4, DST4, UDP, 18) + datagram[:6] + b"\0\0"
                                               + datagram[8:])


# -- tunnels -------------------------------------------------------------------------------------------


def outer_udp(payload: bytes, dport: int) -> bytes:
    return ipv4(udp(payload, sport=54321, dport=dport, checksum=0), UDP, src=bytes([10, 0, 0, 1]),
                dst=bytes([10, 0, 0, 2]))


def test_vxlan_carries_an_ethernet_frame() -> None:
    """RFC 7348: an 8-byte header (I flag, VNI) and an inner Ethernet frame, to UDP port 4789."""
    inner = tcp4(b"inner", sport=1111, dport=2222)
    frame = decode_frame(LINKTYPE_ETHERNET, ethernet(
        outer_udp(bytes.fromhex("0800000000000100") + ethernet(inner, ETH_P_IP, tags=((0x8100, 5),)), 4789), ETH_P_IP))
    outer, tunnelled = frame.ip_layers()
    assert outer.tunnel == "VXLAN" and outer.tunnel_header_whole
    assert tunnelled.tcp is not None and (tunnelled.tcp.sport, tunnelled.tcp.dport) == (1111, 2222)
    assert tunnelled.offset == 14 + 20 + 8 + 8 + 18 and tunnelled.region_end == outer.end
    assert tunnelled.tcp.checksum_ok is True


def test_geneve_with_options() -> None:
    """RFC 8926: option length in 4-byte words (here 2), protocol type 0x6558 for Ethernet."""
    header = bytes([0x02, 0x00, 0x65, 0x58, 0, 0, 1, 0]) + bytes(8)
    frame = decode_frame(LINKTYPE_IPV4, outer_udp(header + ethernet(tcp4(), ETH_P_IP), 6081))
    assert frame.ip is not None and frame.ip.tunnel == "Geneve"
    assert frame.ip.inner is not None and frame.ip.inner.offset == 28 + 16 + 14


def test_vxlan_gpe_with_nsh_is_named_but_not_walked() -> None:
    frame = decode_frame(LINKTYPE_IPV4, outer_udp(bytes([0x0C, 0, 0, 4, 0, 0, 1, 0]) + bytes(24), 4790))
    assert frame.ip is not None and frame.ip.tunnel == "VXLAN-GPE" and frame.ip.tunnel_header_whole
    assert frame.ip.inner is None


def test_mpls_in_udp() -> None:
    """RFC 7510: a label stack straight behind the UDP header, port 6635."""
    frame = decode_frame(LINKTYPE_IPV4, outer_udp(mpls([17, 18]) + tcp4(), 6635))
    assert frame.ip is not None and frame.ip.tunnel == "MPLS-in-UDP"
    assert frame.ip.inner is not None and frame.ip.inner.offset == 28 + 8


def test_gre_with_key_and_sequence_number_carrying_ipv6() -> None:
    """RFC 2890: the K and S flags each add 4 bytes to the 4-byte GRE header."""
    inner = ipv6(udp(b"v6", src=SRC6, dst=DST6), UDP)
    frame = decode_frame(LINKTYPE_IPV4, ipv4(struct.pack("!HHII", 0x3000, ETH_P_IPV6, 7, 9) + inner, 47))
    assert frame.ip is not None and frame.ip.tunnel == "GRE"
    assert frame.ip.inner is not None and frame.ip.inner.offset == 20 + 12 and frame.ip.inner.udp is not None


def test_erspan_type_ii_mirrors_an_ethernet_frame() -> None:
    gre = struct.pack("!HHI", 0x1000, 0x88BE, 1) + bytes(8)
    frame = decode_frame(LINKTYPE_IPV4, ipv4(gre + ethernet(tcp4(), ETH_P_IP), 47))
    assert frame.ip is not None and frame.ip.tunnel == "ERSPAN"
    assert frame.ip.inner is not None and frame.ip.inner.offset == 20 + 8 + 8 + 14


@pytest.mark.parametrize(("protocol", "inner"), [(4, tcp4()), (41, ipv6(udp(b"s", src=SRC6, dst=DST6), UDP))])
def test_ip_in_ip(protocol: int, inner: bytes) -> None:
    """IPIP (RFC 2003, protocol 4) and IPv6 in IPv4 (RFC 4213, protocol 41)."""
    frame = decode_frame(LINKTYPE_IPV4, ipv4(inner, protocol))
    assert frame.ip is not None and frame.ip.inner is not None and frame.ip.inner.offset == 20
    assert len(frame.ip_layers()) == 2 and frame.innermost() is frame.ip.inner


# -- the corpus, as its index describes it ------------------------------------------------------------------

CAPTURES = Path(__file__).resolve().parents[2].parent / "shared" / "captures"
INDEX_ROW = re.compile(r"\| (?P<path>[\w./-]+\.pcap(?:ng)?) \| (?P<links>[^|]+) \| (?P<records>\d+) \| "
                       r"(?P<largest>\d+)(?: \(cap \d+\))? \| (?P<over>\d+)[^|]* \| (?P<holds>[^|]*) \|")


def _index_rows() -> list[re.Match[str]]:
    if not (CAPTURES / "INDEX.md").is_file():
        return []
    return [m for line in (CAPTURES / "INDEX.md").read_text().splitlines() if (m := INDEX_ROW.match(line))]


@pytest.mark.skipif(not CAPTURES.is_dir(), reason=f"the capture corpus is not here: {CAPTURES}")
@pytest.mark.parametrize("row", _index_rows(), ids=lambda m: m["path"])
def test_decoder_agrees_with_the_corpus_index(row: re.Match[str]) -> None:
    """The corpus index was measured by another dissector: records, link types, largest frame, frames
    over the MTU by its definition (1514 bytes for Ethernet, 1500 of link payload otherwise), snapped
    records and truncated files agree with ours."""
    capture = read_capture(CAPTURES / row["path"])
    frames = [decode(record) for record in capture.records]
    holds = row["holds"]
    snapped = re.search(r"snapped x(\d+)", holds)
    over = sum(record.orig_len > 1514 if record.linktype == LINKTYPE_ETHERNET
               else frame.l3_end - frame.link_header_len > 1500
               for record, frame in zip(capture.records, frames, strict=True))
    assert len(capture.records) == int(row["records"])
    assert sorted({r.linktype for r in capture.records}) == sorted(
        int(link.split()[0]) for link in row["links"].split("+"))
    assert max(r.orig_len for r in capture.records) == int(row["largest"])
    assert over == int(row["over"])
    assert sum(r.snapped for r in capture.records) == (int(snapped[1]) if snapped else 0)
    assert capture.broken == ("file truncated" in holds), capture.break_reason


def test_index_rows_cover_every_capture() -> None:
    if not CAPTURES.is_dir():
        pytest.skip(f"the capture corpus is not here: {CAPTURES}")
    files = {p.relative_to(CAPTURES).as_posix() for p in CAPTURES.rglob("*") if p.suffix in (".pcap", ".pcapng")}
    assert {m["path"] for m in _index_rows()} == files
