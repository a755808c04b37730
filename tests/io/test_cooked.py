"""Every link type softgso converts, to Ethernet and back byte for byte; the others measured, not converted.

The records are written out here from the link-type definitions (tcpdump.org LINKTYPE_ list,
pcap-linktype(7)), not by softgso; the cooked ones also by Scapy.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from capture_helpers import png_epb, png_idb, png_shb, scapy_decode
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Ether

import softgso.io
from softgso.io import (
    CaptureRecord,
    UnknownLinkTypeError,
    UnrepresentableFrameError,
    from_ethernet,
    from_ethernet_parts,
    link_payload_length,
    open_capture,
    open_writer,
    to_ethernet,
)

INNER = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2) / (b"d" * 300)
MAC = b"\x02\x11\x22\x33\x44\x55"


def record(linktype: int, data: bytes) -> CaptureRecord:
    return CaptureRecord(index=7, timestamp_ns=1, linktype=linktype, data=memoryview(data), orig_len=len(data))


def sll(**fields: object) -> bytes:
    defaults = {"pkttype": 4, "lladdrtype": 1, "lladdrlen": 6, "src": MAC + b"\0\0", "proto": 0x0800}
    return bytes(CookedLinux(**{**defaults, **fields}) / INNER)


def sll2(**fields: object) -> bytes:
    defaults = {"proto": 0x0800, "ifindex": 9, "lladdrtype": 1, "pkttype": 0, "lladdrlen": 6, "src": MAC + b"\0\0"}
    return bytes(CookedLinuxV2(**{**defaults, **fields}) / INNER)


@pytest.mark.parametrize(("linktype", "build"), [(113, sll), (276, sll2)])
def test_cooked_record_becomes_ethernet_with_its_address_and_protocol(linktype: int, build) -> None:
    view = to_ethernet(record(linktype, build()))
    assert view is not None
    frame = Ether(bytes(view.frame))
    assert (frame.dst, frame.src, frame.type) == ("00:00:00:00:00:00", "02:11:22:33:44:55", 0x0800)
    assert bytes(frame.payload) == bytes(INNER)


@pytest.mark.parametrize(("linktype", "build"), [(113, sll), (276, sll2)])
def test_address_not_six_bytes_long_gives_zero_source(linktype: int, build) -> None:
    view = to_ethernet(record(linktype, build(lladdrlen=0)))
    assert view is not None and bytes(view.frame[:12]) == bytes(12)


@pytest.mark.parametrize(("linktype", "build"), [(113, sll), (276, sll2)])
def test_round_trip_rebuilds_the_original_cooked_record(linktype: int, build) -> None:
    original = record(linktype, build())
    view = to_ethernet(original)
    assert view is not None
    assert from_ethernet(view.frame, original) == build()
    assert b"".join(bytes(p) for p in from_ethernet_parts(view.frame, original)) == build()


@pytest.mark.parametrize(("linktype", "build", "layer"), [(113, sll, CookedLinux), (276, sll2, CookedLinuxV2)])
def test_protocol_follows_the_output_frame_ethertype(linktype: int, build, layer) -> None:
    original = record(linktype, build())
    pushed = bytes(Ether(dst="00:00:00:00:00:00", src=MAC, type=0x8847) / MPLS(label=100, ttl=64) / INNER)
    rebuilt = layer(from_ethernet(pushed, original))
    assert rebuilt.proto == 0x8847
    assert (rebuilt.pkttype, rebuilt.lladdrtype, rebuilt.src) == (layer(build()).pkttype, 1, MAC + b"\0\0")
    if linktype == 276:
        assert rebuilt.ifindex == 9
    assert bytes(rebuilt.payload) == bytes(MPLS(label=100, ttl=64) / INNER)


@pytest.mark.parametrize(("linktype", "build"), [(113, sll), (276, sll2)])
def test_cooked_protocol_that_is_not_an_ethertype_is_not_ethernet(linktype: int, build) -> None:
    assert to_ethernet(record(linktype, build(proto=0x0004))) is None  # LINUX_SLL_P_802_2


def test_ethernet_records_are_their_own_frame_without_copy() -> None:
    data = bytes(Ether() / INNER)
    original = record(1, data)
    view = to_ethernet(original)
    assert view is not None and view.frame is original.data
    assert from_ethernet(view.frame, original) == data


def test_unknown_link_type_names_it_and_carries_the_record() -> None:
    user0 = record(147, bytes(INNER))
    with pytest.raises(UnknownLinkTypeError, match="frame 8: .*unknown link type 147") as caught:
        to_ethernet(user0)
    assert caught.value.record is user0 and caught.value.linktype == 147


@pytest.mark.parametrize(("linktype", "name"), [(9, "PPP"), (50, "PPP_HDLC"), (104, "C_HDLC"), (239, "NFLOG")])
def test_link_types_not_converted_are_named_and_refused(linktype: int, name: str) -> None:
    with pytest.raises(UnknownLinkTypeError, match=f"frame 8: .*link type {linktype} \\({name}\\) is not converted"):
        to_ethernet(record(linktype, b"\xff\x03\x00\x21" + bytes(INNER)))


# --- hand-built L3 packets and link-layer headers ------------------------------------------------

ETH_P_IP, ETH_P_IPV6, ETH_P_MPLS_UC = 0x0800, 0x86DD, 0x8847
ZERO_MAC = bytes(6)
# IPv4: version/IHL 0x45, tot_len 28, id 1, DF, TTL 64, UDP; 10.0.0.1 -> 10.0.0.2; UDP 1 -> 2, length 8
IPV4_PACKET = bytes.fromhex("4500001c00014000401100000a0000010a000002" "0001000200080000")
# IPv6: version 6, payload_len 8, next header UDP, hop limit 64, ::1 -> ::2; the same UDP header
IPV6_PACKET = bytes.fromhex("6000000000081140" + "00" * 15 + "01" + "00" * 15 + "02" + "0001000200080000")
MPLS_FRAME = bytes(12) + b"\x88\x47" + bytes.fromhex("00064140") + IPV4_PACKET  # label 100, S, TTL 64
AF_INET6_VALUES = [10, 24, 28, 30]  # Linux, NetBSD/OpenBSD, FreeBSD, macOS


def ethernet(ethertype: int, l3: bytes, source: bytes = ZERO_MAC) -> bytes:
    return ZERO_MAC + source + ethertype.to_bytes(2, "big") + l3


def sll_header(hatype: int, protocol: int, address: bytes = bytes(8), halen: int = 0, pkttype: int = 4) -> bytes:
    """LINKTYPE_LINUX_SLL: packet type, ARPHRD type, address length, 8 address bytes, protocol."""
    return struct.pack("!HHH8sH", pkttype, hatype, halen, address, protocol)


def sll2_header(hatype: int, protocol: int, address: bytes = bytes(8), halen: int = 0, ifindex: int = 3) -> bytes:
    """LINKTYPE_LINUX_SLL2: protocol, reserved, ifindex, ARPHRD type, packet type, address length, address."""
    return struct.pack("!HHIHBB8s", protocol, 0, ifindex, hatype, 4, halen, address)


def assert_round_trip(original: CaptureRecord, ethertype: int, l3: bytes, source: bytes = ZERO_MAC) -> None:
    view = to_ethernet(original)
    assert view is not None
    assert bytes(view.frame) == ethernet(ethertype, l3, source)
    assert from_ethernet(view.frame, original) == bytes(original.data)
    assert b"".join(bytes(p) for p in from_ethernet_parts(view.frame, original)) == bytes(original.data)


# --- Linux cooked captures of every ARPHRD type -------------------------------------------------

ARPHRD_LOOPBACK, ARPHRD_IPGRE, ARPHRD_NONE = 772, 778, 0xFFFE


@pytest.mark.parametrize("hatype", [ARPHRD_LOOPBACK, ARPHRD_NONE, ARPHRD_IPGRE])
@pytest.mark.parametrize(("ethertype", "l3"), [(ETH_P_IP, IPV4_PACKET), (ETH_P_IPV6, IPV6_PACKET)])
def test_sll_record_of_any_device_type_becomes_ethernet_with_zero_macs(hatype: int, ethertype: int, l3: bytes) -> None:
    # lo carries a 6-byte all-zero address, GRE a 4-byte IPv4 one, tun none: never an Ethernet source
    address, halen = {ARPHRD_LOOPBACK: (bytes(8), 6), ARPHRD_IPGRE: (bytes([192, 0, 2, 1]) + bytes(4), 4),
                      ARPHRD_NONE: (bytes(8), 0)}[hatype]
    assert_round_trip(record(113, sll_header(hatype, ethertype, address, halen) + l3), ethertype, l3)


@pytest.mark.parametrize("hatype", [ARPHRD_LOOPBACK, ARPHRD_NONE, ARPHRD_IPGRE])
@pytest.mark.parametrize(("ethertype", "l3"), [(ETH_P_IP, IPV4_PACKET), (ETH_P_IPV6, IPV6_PACKET)])
def test_sll2_record_of_any_device_type_becomes_ethernet_with_zero_macs(hatype: int, ethertype: int, l3: bytes) -> None:
    assert_round_trip(record(276, sll2_header(hatype, ethertype, bytes(8), 6 if hatype == ARPHRD_LOOPBACK else 0)
                             + l3), ethertype, l3)


@pytest.mark.parametrize(("linktype", "header"), [(113, sll_header), (276, sll2_header)])
def test_non_ethernet_device_with_a_six_byte_address_still_gives_a_zero_source(linktype: int, header) -> None:
    address = b"\x02\x11\x22\x33\x44\x55\0\0"
    view = to_ethernet(record(linktype, header(ARPHRD_NONE, ETH_P_IP, address, 6) + IPV4_PACKET))
    assert view is not None and bytes(view.frame[:12]) == bytes(12)


@pytest.mark.parametrize(("linktype", "header", "protocol_at"), [(113, sll_header, 14), (276, sll2_header, 0)])
def test_non_ethernet_cooked_header_is_kept_except_the_protocol(linktype: int, header, protocol_at: int) -> None:
    original = record(linktype, header(ARPHRD_LOOPBACK, ETH_P_IP, bytes(8), 6) + IPV4_PACKET)
    rebuilt = from_ethernet(MPLS_FRAME, original)
    assert rebuilt == header(ARPHRD_LOOPBACK, ETH_P_MPLS_UC, bytes(8), 6) + MPLS_FRAME[14:]
    assert rebuilt[protocol_at : protocol_at + 2] == b"\x88\x47"


# --- NULL and LOOP ------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["little", "big"])
def test_null_af_inet_in_either_byte_order_is_ipv4(order: str) -> None:
    assert_round_trip(record(0, (2).to_bytes(4, order) + IPV4_PACKET), ETH_P_IP, IPV4_PACKET)


@pytest.mark.parametrize("order", ["little", "big"])
@pytest.mark.parametrize("family", AF_INET6_VALUES)
def test_null_every_af_inet6_value_in_either_byte_order_is_ipv6(family: int, order: str) -> None:
    assert_round_trip(record(0, family.to_bytes(4, order) + IPV6_PACKET), ETH_P_IPV6, IPV6_PACKET)


@pytest.mark.parametrize("family", [b"\x00\x00\x00\x00", b"\x07\x00\x00\x00", b"\x00\x00\x00\x11", b"\x02\x00"])
def test_null_family_that_is_not_ip_is_not_convertible(family: bytes) -> None:
    assert to_ethernet(record(0, family + IPV4_PACKET if len(family) == 4 else family)) is None


@pytest.mark.parametrize(("family", "ethertype", "l3"), [(2, ETH_P_IP, IPV4_PACKET), (24, ETH_P_IPV6, IPV6_PACKET),
                                                          (28, ETH_P_IPV6, IPV6_PACKET)])
def test_loop_is_null_in_network_byte_order(family: int, ethertype: int, l3: bytes) -> None:
    assert_round_trip(record(108, family.to_bytes(4, "big") + l3), ethertype, l3)


def test_loop_does_not_read_the_host_byte_order() -> None:
    assert to_ethernet(record(108, (2).to_bytes(4, "little") + IPV4_PACKET)) is None


@pytest.mark.parametrize(("linktype", "order"), [(0, "little"), (0, "big"), (108, "big")])
def test_null_family_follows_a_change_of_ip_version_in_the_input_byte_order(linktype: int, order: str) -> None:
    ipv4_record = record(linktype, (2).to_bytes(4, order) + IPV4_PACKET)
    # the input does not say which AF_INET6 its writer used: 24, libpcap's first and OpenBSD's
    assert from_ethernet(ethernet(ETH_P_IPV6, IPV6_PACKET), ipv4_record) == (24).to_bytes(4, order) + IPV6_PACKET
    for family in AF_INET6_VALUES:
        ipv6_record = record(linktype, family.to_bytes(4, order) + IPV6_PACKET)
        assert from_ethernet(ethernet(ETH_P_IP, IPV4_PACKET), ipv6_record) == (2).to_bytes(4, order) + IPV4_PACKET


@pytest.mark.parametrize("linktype", [0, 108])
def test_null_and_loop_cannot_carry_mpls_and_say_so(linktype: int) -> None:
    original = record(linktype, (2).to_bytes(4, "big") + IPV4_PACKET)
    name = {0: "NULL", 108: "LOOP"}[linktype]
    with pytest.raises(UnrepresentableFrameError, match=f"frame 8: .*{name} link type .*cannot carry ethertype "
                                                        "0x8847") as caught:
        from_ethernet_parts(MPLS_FRAME, original)
    assert caught.value.record is original and caught.value.ethertype == ETH_P_MPLS_UC


# --- raw IP --------------------------------------------------------------------------------------


@pytest.mark.parametrize("linktype", [12, 14, 101])
@pytest.mark.parametrize(("ethertype", "l3"), [(ETH_P_IP, IPV4_PACKET), (ETH_P_IPV6, IPV6_PACKET)])
def test_raw_ip_version_nibble_gives_the_ethertype(linktype: int, ethertype: int, l3: bytes) -> None:
    assert_round_trip(record(linktype, l3), ethertype, l3)


@pytest.mark.parametrize("linktype", [12, 14, 101])
@pytest.mark.parametrize("data", [b"\x55" + IPV4_PACKET[1:], b""])
def test_raw_ip_with_another_version_is_not_convertible(linktype: int, data: bytes) -> None:
    assert to_ethernet(record(linktype, data)) is None


@pytest.mark.parametrize(("linktype", "ethertype"), [(228, ETH_P_IP), (229, ETH_P_IPV6)])
def test_ipv4_and_ipv6_link_types_fix_the_ethertype(linktype: int, ethertype: int) -> None:
    l3 = IPV4_PACKET if linktype == 228 else IPV6_PACKET
    assert_round_trip(record(linktype, l3), ethertype, l3)


@pytest.mark.parametrize("linktype", [12, 14, 101, 228, 229])
def test_raw_ip_cannot_carry_mpls_and_says_so(linktype: int) -> None:
    original = record(linktype, IPV4_PACKET if linktype != 229 else IPV6_PACKET)
    with pytest.raises(UnrepresentableFrameError, match="frame 8: .*cannot carry ethertype 0x8847"):
        from_ethernet(MPLS_FRAME, original)


@pytest.mark.parametrize(("linktype", "frame"), [(228, ethernet(ETH_P_IPV6, IPV6_PACKET)),
                                                 (229, ethernet(ETH_P_IP, IPV4_PACKET))])
def test_ipv4_and_ipv6_link_types_cannot_carry_the_other_version(linktype: int, frame: bytes) -> None:
    with pytest.raises(UnrepresentableFrameError, match=f"IPV{4 if linktype == 228 else 6} link type"):
        from_ethernet(frame, record(linktype, IPV4_PACKET))


def test_rebuilt_record_pieces_are_views_of_the_frame_not_copies() -> None:
    frame = ethernet(ETH_P_IP, IPV4_PACKET)
    for original in (record(0, (2).to_bytes(4, "little") + IPV4_PACKET), record(101, IPV4_PACKET),
                     record(113, sll_header(ARPHRD_NONE, ETH_P_IP) + IPV4_PACKET)):
        last = from_ethernet_parts(frame, original)[-1]
        assert isinstance(last, memoryview) and last.obj is frame


# --- link types that are not converted: their L3 size -------------------------------------------


@pytest.mark.parametrize("linktype", [9, 50])
def test_ppp_payload_follows_address_control_and_protocol(linktype: int) -> None:
    framed = b"\xff\x03\x00\x21" + IPV4_PACKET  # all-stations, UI, protocol 0x0021 (IPv4), RFC 1662
    bare = b"\x00\x57" + IPV6_PACKET  # protocol 0x0057 (IPv6) without framing, RFC 1661
    assert link_payload_length(record(linktype, framed)) == len(IPV4_PACKET)
    assert link_payload_length(record(linktype, bare)) == len(IPV6_PACKET)


def test_ppp_compressed_protocol_field_is_one_octet() -> None:
    # Protocol-Field-Compression (RFC 1661 6.5): 0x21 alone is IPv4, odd first octets are one-octet fields
    assert link_payload_length(record(9, b"\xff\x03\x21" + IPV4_PACKET)) == len(IPV4_PACKET)


def test_ppp_hdlc_with_cisco_framing_has_a_four_byte_header() -> None:
    assert link_payload_length(record(50, b"\x0f\x00\x08\x00" + IPV4_PACKET)) == len(IPV4_PACKET)


def test_c_hdlc_payload_follows_four_bytes() -> None:
    # address 0x0f (unicast), control 0, ethertype 0x8847: MPLS over Cisco HDLC
    assert link_payload_length(record(104, b"\x0f\x00\x88\x47" + MPLS_FRAME[14:])) == len(MPLS_FRAME) - 14


def nflog_tlv(order: str, tlv_type: int, value: bytes) -> bytes:
    prefix = "<" if order == "little" else ">"
    return struct.pack(prefix + "HH", 4 + len(value), tlv_type) + value + bytes(-len(value) % 4)


@pytest.mark.parametrize("order", ["little", "big"])
def test_nflog_payload_is_the_value_of_its_payload_tlv(order: str) -> None:
    header = bytes([2, 0, 0, 42])  # AF_INET, version 0, resource id 42 (big-endian)
    data = (header + nflog_tlv(order, 1, b"\x08\x00\x01\x00")  # NFULA_PACKET_HDR
            + nflog_tlv(order, 10, b"eth0\0")  # NFULA_PREFIX: 5 bytes, padded to 8
            + nflog_tlv(order, 9, IPV4_PACKET + b"\xaa"))  # NFULA_PAYLOAD, padded
    assert link_payload_length(record(239, data)) == len(IPV4_PACKET) + 1


def test_nflog_tlv_type_flags_are_masked() -> None:
    data = bytes([2, 0, 0, 1]) + nflog_tlv("little", 0x8000 | 9, IPV4_PACKET)  # NLA_F_NESTED set
    assert link_payload_length(record(239, data)) == len(IPV4_PACKET)


def test_nflog_without_a_payload_tlv_has_no_known_payload() -> None:
    assert link_payload_length(record(239, bytes([2, 0, 0, 1]) + nflog_tlv("little", 10, b"lo\0"))) is None


@pytest.mark.parametrize(("linktype", "data", "l3_len"), [
    (1, ethernet(ETH_P_IP, IPV4_PACKET), len(IPV4_PACKET)),
    (0, (30).to_bytes(4, "little") + IPV6_PACKET, len(IPV6_PACKET)),
    (101, IPV4_PACKET, len(IPV4_PACKET)),
    (113, sll_header(ARPHRD_LOOPBACK, ETH_P_IPV6, bytes(8), 6) + IPV6_PACKET, len(IPV6_PACKET)),
    (276, sll2_header(ARPHRD_NONE, ETH_P_IP) + IPV4_PACKET, len(IPV4_PACKET)),
])
def test_converted_link_types_measure_their_ethernet_view_less_14(linktype: int, data: bytes, l3_len: int) -> None:
    original = record(linktype, data)
    view = to_ethernet(original)
    assert view is not None and link_payload_length(original) == len(view.frame) - 14 == l3_len


@pytest.mark.parametrize(("linktype", "data"), [(147, IPV4_PACKET), (0, b"\x07\0\0\0" + IPV4_PACKET), (101, b""),
                                                (1, b"\0" * 10)])
def test_payload_length_not_known_is_none(linktype: int, data: bytes) -> None:
    assert link_payload_length(record(linktype, data)) is None


def test_link_types_are_exported_with_their_tcpdump_org_numbers() -> None:
    expected = {"NULL": 0, "ETHERNET": 1, "PPP": 9, "RAW_12": 12, "RAW_14": 14, "PPP_HDLC": 50, "RAW": 101,
                "C_HDLC": 104, "LOOP": 108, "LINUX_SLL": 113, "IPV4": 228, "IPV6": 229, "NFLOG": 239,
                "LINUX_SLL2": 276}
    assert {name: getattr(softgso.io, f"LINKTYPE_{name}") for name in expected} == expected


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([0, 1, 12, 14, 101, 108, 113, 228, 229, 276]), st.binary(max_size=80))
def test_every_convertible_record_comes_back_byte_for_byte(linktype: int, data: bytes) -> None:
    original = record(linktype, data)
    view = to_ethernet(original)
    if view is not None:
        assert from_ethernet(view.frame, original) == data
        assert link_payload_length(original) == len(view.frame) - 14 or len(view.frame) < 14


def test_a_pcapng_of_mixed_link_types_goes_through_ethernet_and_back_unchanged(tmp_path: Path) -> None:
    # interfaces: NULL (little-endian host), raw IP, SLL2 of a tun device; written from the spec
    packets = [(0, (2).to_bytes(4, "little") + IPV4_PACKET), (0, (30).to_bytes(4, "little") + IPV6_PACKET),
               (1, IPV6_PACKET), (2, sll2_header(ARPHRD_NONE, ETH_P_IP) + IPV4_PACKET)]
    source = tmp_path / "in.pcapng"
    source.write_bytes(png_shb("<") + png_idb("<", 0) + png_idb("<", 101) + png_idb("<", 276)
                       + b"".join(png_epb("<", interface, 1000 + i, data) for i, (interface, data) in enumerate(packets)))
    out = tmp_path / "out.pcapng"
    with open_capture(source) as reader, open_writer(out, reader) as writer:
        for original in reader:
            view = to_ethernet(original)
            assert view is not None
            writer.write_record(original.timestamp_ns, from_ethernet_parts(view.frame, original),
                                interface_id=original.interface_id, linktype=original.linktype)
    linktypes = [0, 101, 276]
    assert [(d.linktype, d.data) for d in scapy_decode(out)] == [(linktypes[i], data) for i, data in packets]
