"""The mainline fixed-ID split (``--kernel mainline``), held to the 6.1 kernel vectors of a GRO aggregate
forwarded into a tunnel (tests/vectors/kernel/tunnels/6.1/fixedid_*) and to the upstream rules:

- inet_gso_segment (net/ipv4/af_inet.c, torvalds/linux after 3271f19bf7b9 "net: gso: restore ids of
  outer ip headers correctly" and f095a358faf2 "net: gro: remove unnecessary df checks"):
  ``fixedid = gso_type & (SKB_GSO_TCP_FIXEDID << encap)`` with SKB_GSO_TCP_FIXEDID = 1 << 30,
  SKB_GSO_TCP_FIXEDID_INNER = 1 << 31, ``encap = SKB_GSO_CB(skb)->encap_level > 0``, and no DF test;
- __skb_udp_tunnel_segment (net/ipv4/udp_offload.c) and gre_gso_segment (net/ipv4/gre_offload.c) set
  ``encap_level = 0`` before the inner level, so a UDP or GRE tunnel's inner header reads the outer bit;
  ipip_gso_segment leaves it above 0, so the inner header of IP-in-IP reads FIXEDID_INNER;
- net_gso_ok (include/linux/netdevice.h): either bit asks for NETIF_F_TSO_MANGLEID.

The expected frames are the kernel's 6.1 output, changed only where the rule says mainline differs
(an outer IPv4 ID held at the super-packet's, with its header checksum computed here).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from softgso.check.golden import read_pcap_frames
from softgso.errors import UsageError
from softgso.features import PROFILES, GsoType, NetdevFeature, net_gso_ok
from softgso.job import Outcome, SegmentOptions, options_from_gso_comment, process_frame

VECTORS = Path(__file__).parents[1] / "vectors" / "kernel" / "tunnels" / "6.1"


def _vector(name: str) -> tuple[bytes, list[bytes], dict]:
    folder = VECTORS / name
    return (read_pcap_frames(folder / "input.pcap")[0], read_pcap_frames(folder / "kernel_out.pcap"),
            json.loads((folder / "meta.json").read_text()))


def _mainline(meta: dict, **choice: bool) -> SegmentOptions:
    return SegmentOptions(device=PROFILES[meta["softgso_profile"]], gso_size=meta["gso_size"], kernel="mainline",
                          **choice)


def _ipv4_checksum(header: bytes) -> int:
    words = struct.unpack(f"!{len(header) // 2}H", header[:10] + b"\0\0" + header[12:])
    total = sum(words)
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _outer_id_held(frames: list[bytes], ip_id: int) -> list[bytes]:
    """The frames with the outer IPv4 header (at 14) carrying ``ip_id`` and its checksum recomputed."""
    held = []
    for frame in frames:
        header = bytearray(frame[14:34])
        header[4:6] = ip_id.to_bytes(2, "big")
        header[10:12] = _ipv4_checksum(bytes(header)).to_bytes(2, "big")
        held.append(frame[:14] + bytes(header) + frame[34:])
    return held


@pytest.mark.parametrize("name", ["fixedid_ipip_in4__tx_off", "fixedid_ip6tnl_4in6__tx_off"])
def test_fixedid_inner_fixes_the_inner_header_of_ip_in_ip(name: str) -> None:
    """IP-in-IP's inner level is encapsulated: FIXEDID_INNER there, the outer ID counts up as on 6.1."""
    superpacket, kernel, meta = _vector(name)
    result = process_frame(superpacket, _mainline(meta, fixed_id=True))
    assert result.outcome == Outcome.SEGMENTED and result.frames == kernel


def test_the_outer_bit_fixes_both_ipip_headers() -> None:
    superpacket, kernel, meta = _vector("fixedid_ipip_in4__tx_off")
    result = process_frame(superpacket, _mainline(meta, fixed_id=True, fixed_outer_id=True))
    assert result.frames == _outer_id_held(kernel, int.from_bytes(superpacket[18:20], "big"))
    assert result.frames != kernel
    # the outer bit alone: the inner level reads FIXEDID_INNER, absent, so the inner IDs count up
    alone = process_frame(superpacket, _mainline(meta, fixed_outer_id=True)).frames
    inner = [int.from_bytes(frame[38:40], "big") for frame in alone]
    assert inner == [(inner[0] + i) & 0xFFFF for i in range(len(alone))]
    assert [f[18:20] for f in alone] == [superpacket[18:20]] * len(alone)


@pytest.mark.parametrize("name", ["fixedid_vxlan4_udpcsum_in4__tx_off", "fixedid_gre4_key_csum_in4__tx_off",
                                  "fixedid_gretap4_in4__tx_off", "fixedid_geneve4_nocsum_in4__tx_off"])
def test_a_udp_or_gre_tunnel_reads_the_outer_bit_at_both_levels(name: str) -> None:
    """encap_level is reset before the inner level: SKB_GSO_TCP_FIXEDID (bit 30) fixes the outer ID and the
    inner one (the kernel's inner IDs, already fixed on 6.1; the UDP and GRE checksums do not cover the
    outer IPv4 header)."""
    superpacket, kernel, meta = _vector(name)
    expected = _outer_id_held(kernel, int.from_bytes(superpacket[18:20], "big"))
    for choice in ({"fixed_outer_id": True}, {"fixed_outer_id": True, "fixed_id": True}):
        assert process_frame(superpacket, _mainline(meta, **choice)).frames == expected


def test_fixedid_inner_is_not_read_below_a_udp_tunnel() -> None:
    """FIXEDID_INNER alone on a VXLAN super-packet: no level reads it, every ID counts up (the kernel's own
    output for IDs counting up, no FIXEDID, is the expected one)."""
    superpacket, kernel, meta = _vector("fixedid_vxlan4_udpcsum_in4_incrementing__tx_off")
    assert process_frame(superpacket, _mainline(meta, fixed_id=True)).frames == kernel
    assert process_frame(superpacket, _mainline(meta)).frames == kernel


def test_mainline_fixes_an_id_without_df() -> None:
    """6.1 refuses FIXEDID on an inner header with DF clear (-EPROTONOSUPPORT); mainline has no DF test."""
    superpacket, kernel, meta = _vector("ipip_in4_dfclear_idwrap__tx_off")
    old = process_frame(superpacket, SegmentOptions(device=PROFILES[meta["softgso_profile"]],
                                                    gso_size=meta["gso_size"], fixed_id=True))
    assert old.outcome == Outcome.REFUSED
    result = process_frame(superpacket, _mainline(meta, fixed_id=True))
    assert result.outcome == Outcome.SEGMENTED
    inner = [frame[34:54] for frame in result.frames]
    assert all(header[6] & 0x40 == 0 for header in inner)  # DF clear
    assert {header[4:6] for header in inner} == {superpacket[38:40]}
    assert all(_ipv4_checksum(header) == int.from_bytes(header[10:12], "big") for header in inner)
    # everything else as the kernel cut it
    assert [f[:34] + f[54:] for f in result.frames] == [f[:34] + f[54:] for f in kernel]


def test_an_outer_fixed_id_needs_mainline() -> None:
    with pytest.raises(UsageError, match="mainline"):
        SegmentOptions(device=PROFILES["no-offload"], fixed_outer_id=True, kernel="6.12")


def test_either_mainline_bit_asks_for_tso_mangleid() -> None:
    tso = NetdevFeature.TSO | NetdevFeature.GSO_UDP_TUNNEL
    for bit in (GsoType.TCP_FIXEDID_OUTER, GsoType.TCP_FIXEDID_INNER):
        gso_type = GsoType.TCPV4 | GsoType.UDP_TUNNEL | bit
        assert not net_gso_ok(tso, gso_type)
        assert net_gso_ok(tso | NetdevFeature.TSO_MANGLEID, gso_type)


def test_a_mainline_gro_comment_names_each_header() -> None:
    """coalesce --kernel mainline writes fixedid for the outer (or only) header, fixedid_inner for the inner."""
    base = SegmentOptions(device=PROFILES["no-offload"], kernel="mainline")
    tunnel = options_from_gso_comment(base, "gso_size=1000 gso_type=tcpv4,ipxip4,fixedid_inner segs=4")
    assert (tunnel.fixed_id, tunnel.fixed_outer_id) == (True, False)
    both = options_from_gso_comment(base, "gso_size=1000 gso_type=tcpv4,gre,fixedid,fixedid_inner segs=4")
    assert (both.fixed_id, both.fixed_outer_id) == (True, True)
    plain = options_from_gso_comment(base, "gso_size=1000 gso_type=tcpv4,fixedid segs=4")
    assert (plain.fixed_id, plain.fixed_outer_id) == (True, False)
