"""parse_tunnel's any_inner reading and tunnel_id, on frames a real kernel's tunnel devices built
(the 6.1 tunnel vectors) and on a VXLAN frame carrying ARP written here byte by byte."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest

from softgso.check.golden import read_pcap_frames
from softgso.offload.tunnels import parse_tunnel, tunnel_id

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
