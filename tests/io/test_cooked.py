"""Linux cooked captures (SLL, SLL2) to Ethernet and back; other link types are told apart."""

from __future__ import annotations

import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Ether

from softgso.io import CaptureRecord, UnknownLinkTypeError, from_ethernet, from_ethernet_parts, to_ethernet
from softgso.io.cooked import ARPHRD_LOOPBACK

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
def test_loopback_device_records_are_not_ethernet(linktype: int, build) -> None:
    assert to_ethernet(record(linktype, build(lladdrtype=ARPHRD_LOOPBACK, lladdrlen=6, src=bytes(8)))) is None


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
    raw_ip = record(101, bytes(INNER))
    with pytest.raises(UnknownLinkTypeError, match="record 7 .*unknown link type 101") as caught:
        to_ethernet(raw_ip)
    assert caught.value.record is raw_ip and caught.value.linktype == 101
