"""parse_tunnel's any_inner reading and tunnel_id, on frames a real kernel's tunnel devices built
(the 6.1 tunnel vectors) and on a VXLAN frame carrying ARP written here byte by byte; FOU and GUE frames
written here byte by byte, laid out by the spec's rules (2.5.5, 3.9) and the kernel's struct guehdr."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest

from softgso.check.golden import read_pcap_frames
from softgso.features import GsoType
from softgso.offload.tunnels import TunnelNotSegmented, parse_tunnel, parse_tunnel_port, tunnel_id

TUNNELS = Path(__file__).parents[1] / "vectors" / "kernel" / "tunnels" / "6.1"
ARP = bytes.fromhex("ffffffffffff020000000001" "0806" "0001080006040001" "020000000001" "c0000201"
                    "000000000000" "c6336402")


def _vxlan(inner: bytes, vni: int) -> bytes:
    udp = struct.pack("!HHHH", 49152, 4789, 16 + len(inner), 0) + bytes((8, 0, 0, 0)) + struct.pack("!I", vni << 8)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp) + len(inner), 0, 0, 64, 17, 0, bytes([192, 0, 2, 1]),
                     bytes([192, 0, 2, 2]))
    return bytes.fromhex("020000000002020000000001" "0800") + ip + udp + inner


def test_a_tunnel_carrying_no_tcp_or_udp_is_laid_out_only_for_readers_that_take_it_off() -> None:
    frame = _vxlan(ARP, 77)
    assert parse_tunnel(frame) is None  # segment's reading: nothing to segment
    layout = parse_tunnel(frame, any_inner=True)
    assert layout is not None and layout.kind == "VXLAN" and layout.inner_l4_proto == -1
    assert frame[layout.inner_mac :] == ARP
    assert tunnel_id(frame, layout) == ("VNI", 77)


def test_a_nested_tunnel_is_laid_out_one_level_for_readers_that_take_it_off() -> None:
    case = TUNNELS / "vxlan4_nocsum_in4__tx_off"
    if not case.is_dir():
        pytest.skip("no tunnel vectors here")
    inner = read_pcap_frames(case / "input.pcap")[0]
    frame = _vxlan(inner, 5)
    with pytest.raises(Exception, match="carrying another tunnel"):
        parse_tunnel(frame)
    layout = parse_tunnel(frame, any_inner=True)
    assert layout is not None and frame[layout.inner_mac :] == inner and tunnel_id(frame, layout) == ("VNI", 5)


@pytest.mark.skipif(not TUNNELS.is_dir(), reason="no tunnel vectors here")
@pytest.mark.parametrize("name", ["vxlan4_udpcsum_in6__tx_off", "gre4_key_csum_in6__tx_off",
                                  "gretap4_key_csum_in6__tx_off", "gretap4_in4__tx_off", "ipip_in4_dfclear_idwrap__tx_off"])
def test_tunnel_id_is_what_the_device_was_configured_with(name: str) -> None:
    device = json.loads((TUNNELS / name / "meta.json").read_text())["tunnel_device"]
    frame = read_pcap_frames(TUNNELS / name / "input.pcap")[0]
    layout = parse_tunnel(frame)
    assert layout is not None and parse_tunnel(frame, any_inner=True) == layout
    configured = re.search(r"\b(id|key) (\d+)", device)
    expected = None if configured is None else ("VNI" if configured[1] == "id" else "key", int(configured[2]))
    assert tunnel_id(frame, layout) == expected


# --- FOU and GUE (no port of their own: named with --tunnel-port) ------------------------------------------

PORTS = {5555: "FOU", 5556: "GUE"}


def _udp4(payload: bytes, dport: int) -> bytes:
    """Ethernet / IPv4 / UDP (checksum 0) / payload, written out by hand."""
    udp = struct.pack("!HHHH", 40000, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0x4000, 64, 17, 0, bytes([192, 0, 2, 1]),
                     bytes([192, 0, 2, 2]))
    return bytes.fromhex("020000000002020000000001" "0800") + ip + udp


def _inner_ipv4_tcp() -> bytes:
    tcp = struct.pack("!HHIIBBHHH", 40000, 5001, 1, 1, 0x50, 0x18, 500, 0, 0) + bytes(3000)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 7, 0x4000, 64, 6, 0, bytes([10, 1, 0, 1]),
                       bytes([10, 1, 0, 2])) + tcp


def test_fou_and_gue_are_kinds_of_tunnel_port() -> None:
    assert parse_tunnel_port("fou:5555") == (5555, "FOU")
    assert parse_tunnel_port("GUE:6080") == (6080, "GUE")
    with pytest.raises(ValueError, match="KIND one of"):
        parse_tunnel_port("foo:5555")


def test_fou_is_a_tunnel_only_on_a_port_it_is_told() -> None:
    frame = _udp4(_inner_ipv4_tcp(), 5555)
    assert parse_tunnel(frame) is None
    layout = parse_tunnel(frame, PORTS)
    assert layout is not None and layout.kind == "FOU"
    # ipip under FOU (spec 2.5.5): the inner offsets on the inner IP header, no inner MAC header, the
    # carried tunnel's IPXIP4 beside UDP_TUNNEL, and inner_ipproto 4 (ENCAP_TYPE_IPPROTO)
    assert (layout.outer_l4, layout.inner_mac, layout.inner_network, layout.inner_transport) == (34, 42, 42, 62)
    assert layout.inner_ipproto == 4 and layout.tunnel_bits == GsoType.UDP_TUNNEL | GsoType.IPXIP4


def test_gue_skips_its_header_and_options_and_names_the_carried_protocol() -> None:
    gue = bytes([0x01, 4, 0, 0]) + bytes(4)  # version 0, hlen 1 (one word of options), proto_ctype 4
    layout = parse_tunnel(_udp4(gue + _inner_ipv4_tcp(), 5556), PORTS)
    assert layout is not None and layout.kind == "GUE"
    assert layout.inner_network == 14 + 20 + 8 + 8 and layout.inner_ipproto == 4


def test_gue_remote_checksum_offload_is_not_supported() -> None:
    gue = bytes([0x02, 4, 0x00, 0x01]) + struct.pack("!I", 0x80000000) + bytes(4)  # PRIV flag, REMCSUM
    with pytest.raises(TunnelNotSegmented, match="remote checksum offload"):
        parse_tunnel(_udp4(gue + _inner_ipv4_tcp(), 5556), PORTS)


def test_gue_control_messages_and_direct_ip_are_no_tunnel_super_packets() -> None:
    for first in (0x20, 0x40):  # control bit; version 1 (direct IP encapsulation)
        assert parse_tunnel(_udp4(bytes([first, 4, 0, 0]) + _inner_ipv4_tcp(), 5556), PORTS) is None


def test_a_gre_checksum_inside_fou_is_never_a_super_packet() -> None:
    """Spec 3.9: a gre device with output checksums and FOU/GUE encapsulation withholds GSO (the kernel's
    vector fou_gre_ocsum_control shows the packets leaving one by one)."""
    gre = struct.pack("!HHI", 0x8000, 0x0800, 0)
    with pytest.raises(TunnelNotSegmented, match="GRE-in-FOU super-packet with a GRE checksum"):
        parse_tunnel(_udp4(gre + _inner_ipv4_tcp(), 5555), PORTS)
    keyed = parse_tunnel(_udp4(struct.pack("!HHI", 0x2000, 0x0800, 99) + _inner_ipv4_tcp(), 5555), PORTS)
    assert keyed is not None and keyed.inner_ipproto == 0 and keyed.inner_protocol == 0x0800
    assert keyed.tunnel_bits == GsoType.UDP_TUNNEL | GsoType.GRE
    assert tunnel_id(_udp4(struct.pack("!HHI", 0x2000, 0x0800, 99) + _inner_ipv4_tcp(), 5555), keyed) == ("key", 99)


@pytest.mark.skipif(not TUNNELS.is_dir(), reason="no tunnel vectors here")
def test_remote_checksum_offload_is_read_where_the_kernel_writes_it() -> None:
    """VXLAN_HF_RCO is BIT(21) of the big-endian flags word (the header's second byte): the frames a
    vxlan device with remcsumtx sent carry it; softgso names such a frame, and none without it."""
    frames = read_pcap_frames(TUNNELS / "vxlan4_rco_control__tx_off" / "kernel_out.pcap")
    assert all(f[14 + 20 + 8 + 1] & 0x20 for f in frames)
    for frame in frames:
        with pytest.raises(TunnelNotSegmented, match="remote checksum offload"):
            parse_tunnel(frame)
    plain = read_pcap_frames(TUNNELS / "vxlan4_nocsum_in4__tx_off" / "kernel_out.pcap")
    assert all(parse_tunnel(f) is not None for f in plain)
