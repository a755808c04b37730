"""Ones'-complement arithmetic (RFC 1071, RFC 1624), checked against the RFCs' worked examples and Scapy."""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.all import IP, TCP, UDP, IPv6, Raw, raw  # type: ignore[attr-defined]

from softgso.checksum import (
    csum16_add,
    csum16_sub,
    csum_fold,
    ipv4_header_checksum,
    ones_sum,
    ones_sums_of_chunks,
    pseudo_header_sum,
)


def test_sum_of_rfc_1071_s_example() -> None:
    # RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to 2ddf0, which folds to ddf2
    assert ones_sum(bytes.fromhex("0001f203f4f5f6f7")) == 0xDDF2
    assert csum_fold(0xDDF2) == 0x220D


def test_an_odd_length_is_padded_with_a_zero_byte() -> None:
    assert ones_sum(bytes.fromhex("0001f203f4f5f6")) == ones_sum(bytes.fromhex("0001f203f4f5f600"))


def test_incremental_update_gives_rfc_1624_s_answer_not_minus_zero() -> None:
    # RFC 1624 §4: HC 0xDD2F, m 0x5555 -> m' 0x3285; eqn. 3 gives 0x0000 where RFC 1141 gave 0xFFFF
    assert csum_fold(csum16_add(csum16_sub(~0xDD2F & 0xFFFF, 0x5555), 0x3285)) == 0x0000


def test_ipv4_header_checksum_of_a_textbook_header() -> None:
    # 45 00 00 73 00 00 40 00 40 11 [b8 61] c0 a8 00 01 c0 a8 00 c7: the stored checksum is b861
    header = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert ipv4_header_checksum(header) == 0xB861


@pytest.mark.parametrize("seed", range(5))
def test_ipv4_header_checksum_agrees_with_scapy(seed: int) -> None:
    rng = random.Random(seed)
    ip = IP(raw(IP(src=f"10.{seed}.0.1", dst="192.0.2.9", id=rng.randrange(65536), ttl=rng.randrange(1, 256),
                   tos=rng.randrange(256), len=rng.randrange(20, 65536))))
    assert ipv4_header_checksum(raw(ip)[:20]) == ip.chksum


@pytest.mark.parametrize(("v6", "udp"), [(False, False), (False, True), (True, False), (True, True)])
def test_pseudo_header_sum_completes_scapy_s_l4_checksums(v6: bool, udp: bool) -> None:
    payload = Raw(random.Random(3).randbytes(1001))
    ip = IPv6(src="fd00::1", dst="fd00::2") if v6 else IP(src="10.0.0.1", dst="10.0.0.2")
    packet = (IPv6 if v6 else IP)(raw(ip / (UDP(sport=7, dport=9) if udp else TCP(sport=7, dport=9)) / payload))
    l4 = packet[UDP] if udp else packet[TCP]
    segment = bytearray(raw(l4))
    segment[6 if udp else 16 : 8 if udp else 18] = b"\0\0"
    addresses = ipaddress.ip_address(packet.src).packed, ipaddress.ip_address(packet.dst).packed
    check = csum_fold(ones_sum(segment, pseudo_header_sum(*addresses, 17 if udp else 6, len(segment))))
    assert check == l4.chksum


def test_chunk_sums_match_one_sum_per_chunk() -> None:
    rng = random.Random(7)
    samples = [bytes(4000), b"\xff" * 4000, b"\xff\xff" * 1000 + b"\x00\x01", rng.randbytes(9001)]
    for data in samples:
        for size in (1, 2, 7, 8, 100, 1447, 1448, 3000, 9001, 20000):
            expected = [ones_sum(data[start : start + size]) for start in range(0, len(data), size)]
            assert ones_sums_of_chunks(data, size) == expected, (len(data), size)
            assert ones_sums_of_chunks(memoryview(bytearray(data)), size) == expected
    assert ones_sums_of_chunks(b"", 8) == []


def test_chunk_sums_at_every_alignment_and_around_the_wide_loop() -> None:
    """The compiled word sum (its AVX2 loop from 64 words on, where the CPU has it; the plain loop
    below and for the tail) against the definition, at 32 alignments and lengths either side of
    the loops' boundaries: 255-261 bytes, a 64-byte step of the wide loop plus 0-7 bytes."""
    rng = random.Random(22)
    base = bytearray(rng.randbytes(4200))
    base[1000:1400] = b"\xff" * 400  # carries in every lane
    lengths = [*range(248, 264), *(length + tail for length in (320, 1024, 1448, 4096) for tail in range(8))]
    view = memoryview(base)
    for offset in range(32):
        for length in lengths:
            data = bytes(view[offset : offset + length])
            padded = data + b"\0" if length % 2 else data
            value = int.from_bytes(padded, "big")
            expected = 0 if value == 0 else (value % 0xFFFF) or 0xFFFF
            assert ones_sums_of_chunks(view[offset : offset + length], length) == [expected], (offset, length)


@given(st.binary(min_size=500, max_size=3000), st.integers(0, 0x3FFFF))
def test_ones_sum_of_a_long_buffer_is_the_big_numbers_remainder(data: bytes, initial: int) -> None:
    """ones_sum (softgso._checksum for long buffers where built) against the definition: the big-endian
    number the bytes make (odd length zero-padded), plus ``initial``, modulo 0xFFFF; 0 only for 0."""
    padded = data + b"\0" if len(data) % 2 else data
    value = int.from_bytes(padded, "big") + initial
    expected = 0 if value == 0 else (value % 0xFFFF) or 0xFFFF
    assert ones_sum(data, initial) == expected
    assert ones_sum(bytes(len(data)), initial) == ((initial % 0xFFFF) or 0xFFFF if initial else 0)
