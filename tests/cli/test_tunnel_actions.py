"""push-vxlan / push-geneve / push-gre and their pop-* twins, as commands and as --action strings.

What a push writes is checked by Scapy, an independent decoder (layers, lengths, checksums, VNI,
key), never against softgso's own output; a push then its pop must give the input back byte for
byte; a pushed super-packet handed to `segment` must leave as tunnel segments Scapy accepts, each
within the MTU, carrying the input's payload.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from cli_captures import ack4, icmp4, mixed_capture, payload, tcp4_super, tcp6_jumbogram, udp4, write_pcap
from conftest import run_cli
from scapy_check import assert_on_the_wire, read_packets, tcp_payload_by_flow

from softgso.check.synth import MAC_DST, MAC_SRC

scapy_all = pytest.importorskip("scapy.all")
from scapy.contrib.geneve import GENEVE  # noqa: E402
from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import GRE, Ether  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402

scapy_all.bind_layers(UDP, GENEVE, dport=6081)

OUTER4 = ["--src", "192.0.2.10", "--dst", "192.0.2.20"]
OUTER6 = ["--src", "2001:db8::10", "--dst", "2001:db8::20"]
FRAMES = [ack4(), udp4(), icmp4(), tcp4_super(3000, partial=False)]


def _frames(path: Path) -> list[bytes]:
    """Every record of a little-endian classic pcap, whole (Scapy's reader stops at 65535 bytes)."""
    data = path.read_bytes()
    frames, at = [], 24
    while at < len(data):
        length = struct.unpack_from("<I", data, at + 8)[0]
        frames.append(data[at + 16 : at + 16 + length])
        at += 16 + length
    return frames


def _push(tmp_path: Path, command: str, *args: str, frames: list[bytes] | None = None) -> list[scapy_all.Packet]:
    source = write_pcap(tmp_path / "in.pcap", FRAMES if frames is None else frames)
    out = tmp_path / "out.pcap"
    result = run_cli(command, source, out, *args, "--strict", "-q")
    assert result.exit_code == 0, result.stderr
    return read_packets(out)


def _checksum_verifies(packet: scapy_all.Packet, layer: type) -> bool:
    """Scapy recomputes the layer's checksum over the same bytes: it must be the one written."""
    rebuilt = packet.__class__(bytes(packet))
    del rebuilt[layer].chksum
    return bool(packet[layer].chksum == packet.__class__(bytes(rebuilt))[layer].chksum)


def test_push_vxlan_writes_what_scapy_reads_as_vxlan(tmp_path: Path) -> None:
    packets = _push(tmp_path, "push-vxlan", *OUTER4, "--vni", "42", "--csum")
    for frame, packet in zip(FRAMES, packets, strict=True):
        assert packet[Ether].dst == ":".join(f"{b:02x}" for b in MAC_DST)  # the frame's own addresses outside
        assert packet[Ether].src == ":".join(f"{b:02x}" for b in MAC_SRC)
        assert packet[IP].src == "192.0.2.10" and packet[IP].dst == "192.0.2.20" and packet[IP].proto == 17
        assert packet[IP].len == len(bytes(packet[IP]))
        assert packet[IP].flags == 0 and packet[IP].ttl == 64  # vxlan's defaults: df unset, ttl 64
        assert _checksum_verifies(packet, IP)
        assert packet[UDP].dport == 4789 and packet[UDP].len == len(bytes(packet[UDP]))
        assert packet[UDP].chksum != 0 and _checksum_verifies(packet, UDP)
        assert packet[VXLAN].vni == 42 and packet[VXLAN].flags == 0x08  # the I flag
        assert bytes(packet[VXLAN].payload) == frame  # the whole frame inside, untouched


def test_push_vxlan_checksum_off_is_zero_and_over_ipv6_on_by_default(tmp_path: Path) -> None:
    packets = _push(tmp_path, "push-vxlan", *OUTER4, "--vni", "1")
    assert all(p[UDP].chksum == 0 for p in packets)  # IPv4: udpcsum off by default
    packets = _push(tmp_path, "push-vxlan", *OUTER6, "--vni", "1")
    for frame, packet in zip(FRAMES, packets, strict=True):
        assert packet[IPv6].nh == 17 and packet[IPv6].plen == len(bytes(packet[IPv6].payload))
        assert packet[UDP].chksum != 0 and _checksum_verifies(packet, UDP)  # IPv6: udp6zerocsumtx unset
        assert bytes(packet[VXLAN].payload) == frame
    packets = _push(tmp_path, "push-vxlan", *OUTER6, "--vni", "1", "--no-csum")
    assert all(p[UDP].chksum == 0 for p in packets)


def test_push_vxlan_ports_macs_and_ip_fields_are_the_given_ones(tmp_path: Path) -> None:
    packets = _push(tmp_path, "push-vxlan", *OUTER4, "--vni", "16777215", "--sport", "50000", "--dport", "8472",
                    "--src-mac", "02:aa:00:00:00:01", "--dst-mac", "02:bb:00:00:00:02", "--ttl", "9", "--tos", "184",
                    "--df")
    scapy_all.bind_layers(UDP, VXLAN, dport=8472)
    for packet in packets:
        assert (packet[Ether].src, packet[Ether].dst) == ("02:aa:00:00:00:01", "02:bb:00:00:00:02")
        assert (packet[UDP].sport, packet[UDP].dport) == (50000, 8472)
        assert (packet[IP].ttl, packet[IP].tos, int(packet[IP].flags)) == (9, 184, 2)
        assert packet[VXLAN].vni == 0xFFFFFF


def test_push_geneve_with_options(tmp_path: Path) -> None:
    option = "0101020100000001"  # class 0x0101, type 2, one 4-byte word of data
    packets = _push(tmp_path, "push-geneve", *OUTER4, "--vni", "7", "--csum", "--options", option)
    for frame, packet in zip(FRAMES, packets, strict=True):
        geneve = packet[GENEVE]
        assert packet[UDP].dport == 6081 and _checksum_verifies(packet, UDP)
        assert (geneve.version, geneve.vni, geneve.proto, geneve.optionlen) == (0, 7, 0x6558, 2)
        assert bytes(geneve)[8:16] == bytes.fromhex(option)
        assert bytes(geneve)[16:] == frame


@pytest.mark.parametrize("csum", [True, False])
def test_push_gre_with_key_and_checksum(tmp_path: Path, csum: bool) -> None:
    frames = [ack4(), udp4(), tcp4_super(3000, partial=False)]  # what a route sends an ipgre device: IP
    packets = _push(tmp_path, "push-gre", *OUTER4, "--key", "7", "--csum" if csum else "--no-csum", frames=frames)
    for frame, packet in zip(frames, packets, strict=True):
        gre = packet[GRE]
        assert packet[IP].proto == 47 and _checksum_verifies(packet, IP)
        assert gre.key_present == 1 and gre.key == 7 and gre.proto == 0x0800
        assert gre.chksum_present == int(csum)
        if csum:
            assert _checksum_verifies(packet, GRE)
        assert bytes(packet[Ether])[:12] == frame[:12]  # ipgre: the frame's own L2 header stays outside
        assert bytes(gre.payload) == frame[14:]


def test_push_gre_ethernet_is_gretap(tmp_path: Path) -> None:
    packets = _push(tmp_path, "push-gre", *OUTER6, "--ethernet")
    for frame, packet in zip(FRAMES, packets, strict=True):
        assert packet[IPv6].nh == 47 and packet[GRE].proto == 0x6558 and packet[GRE].key_present == 0
        assert bytes(packet[GRE].payload) == frame


def test_push_gre_of_a_frame_no_route_sends_is_refused_and_passed_through(tmp_path: Path) -> None:
    from cli_captures import arp

    source = write_pcap(tmp_path / "in.pcap", [arp(), ack4()])
    result = run_cli("push-gre", source, tmp_path / "out.pcap", *OUTER4, "--json")
    summary = json.loads(result.stdout)
    assert summary["outcomes"] == {"changed": 1, "unchanged": 0, "refused": 1}
    assert "ipgre_xmit" in summary["reports"][0]["reason"] and summary["reports"][0]["frame"] == 1
    assert bytes(read_packets(tmp_path / "out.pcap")[0]) == arp()
    assert run_cli("push-gre", source, tmp_path / "out.pcap", *OUTER4, "--strict", "-q").exit_code == 1


ROUNDTRIPS = [
    ("push-vxlan", [*OUTER4, "--vni", "42", "--csum"], "pop-vxlan", []),
    ("push-vxlan", [*OUTER6, "--vni", "5", "--dport", "9999"], "pop-vxlan", ["--dport", "9999"]),
    ("push-geneve", [*OUTER4, "--vni", "7", "--options", "0101020100000001"], "pop-geneve", []),
    ("push-geneve", [*OUTER6, "--vni", "7"], "pop-geneve", []),
    ("push-gre", [*OUTER4, "--key", "9", "--csum", "--ethernet"], "pop-gre", []),
    ("push-gre", [*OUTER6, "--ethernet"], "pop-gre", []),
]


@pytest.mark.parametrize(("push", "push_args", "pop", "pop_args"), ROUNDTRIPS, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else v)
def test_push_then_pop_gives_the_input_back_byte_for_byte(tmp_path: Path, push: str, push_args: list[str], pop: str,
                                                          pop_args: list[str]) -> None:
    frames = mixed_capture()  # ARP, ICMP, UDP, TCP super-packets, IPv6 jumbograms
    source = write_pcap(tmp_path / "in.pcap", frames)
    assert run_cli(push, source, tmp_path / "t.pcap", *push_args, "--strict", "-q").exit_code == 0
    assert _frames(tmp_path / "t.pcap") != frames
    assert run_cli(pop, tmp_path / "t.pcap", tmp_path / "back.pcap", *pop_args, "--strict", "-q").exit_code == 0
    assert _frames(tmp_path / "back.pcap") == frames


def test_pop_gre_of_an_ipgre_push_gives_the_ip_frames_back(tmp_path: Path) -> None:
    frames = [ack4(), udp4(), icmp4(), tcp4_super(3000), tcp6_jumbogram(3000, hop_by_hop=False)]
    source = write_pcap(tmp_path / "in.pcap", frames)
    assert run_cli("push-gre", source, tmp_path / "t.pcap", *OUTER4, "--key", "1", "--csum", "-q").exit_code == 0
    assert run_cli("pop-gre", tmp_path / "t.pcap", tmp_path / "back.pcap", "--strict", "-q").exit_code == 0
    assert _frames(tmp_path / "back.pcap") == frames


def test_a_pop_leaves_frames_without_its_tunnel_alone(tmp_path: Path) -> None:
    source = write_pcap(tmp_path / "in.pcap", FRAMES)
    vxlan = tmp_path / "vxlan.pcap"
    assert run_cli("push-vxlan", source, vxlan, *OUTER4, "--vni", "1", "-q").exit_code == 0
    for pop in ("pop-geneve", "pop-gre"):
        result = run_cli(pop, vxlan, tmp_path / "same.pcap", "--json")
        assert json.loads(result.stdout)["outcomes"] == {"changed": 0, "unchanged": len(FRAMES), "refused": 0}
    result = run_cli("pop-vxlan", source, tmp_path / "same.pcap", "--json")
    assert json.loads(result.stdout)["outcomes"]["unchanged"] == len(FRAMES)


def test_tunnel_commands_take_the_action_commands_options(tmp_path: Path) -> None:
    source = write_pcap(tmp_path / "in.pcap", FRAMES)
    result = run_cli("push-vxlan", source, tmp_path / "out.pcapng", *OUTER4, "--vni", "3", "-F", "pcapng", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["action"] == "push-vxlan:vni=3,src=192.0.2.10,dst=192.0.2.20"
    assert summary["outcomes"] == {"changed": len(FRAMES), "unchanged": 0, "refused": 0}
    assert (tmp_path / "out.pcapng").read_bytes()[:4] == bytes.fromhex("0a0d0d0a")
    result = run_cli("push-vxlan", source, "-", *OUTER4, "--vni", "3")
    assert result.exit_code == 0 and "push-vxlan" in result.stderr  # OUT -: the summary on stderr


@pytest.mark.parametrize("args", [
    ["push-vxlan", "--src", "192.0.2.1", "--vni", "1"],  # no --dst
    ["push-vxlan", *OUTER4],  # no --vni
    ["push-vxlan", "--src", "192.0.2.1", "--dst", "2001:db8::1", "--vni", "1"],  # families differ
    ["push-vxlan", "--src", "300.0.0.1", "--dst", "192.0.2.1", "--vni", "1"],
    ["push-vxlan", *OUTER4, "--vni", "16777216"],
    ["push-vxlan", *OUTER4, "--vni", "1", "--src-mac", "02:00"],
    ["push-geneve", *OUTER4, "--vni", "1", "--options", "010102"],  # not 4-byte words
])
def test_bad_tunnel_arguments_are_usage_errors(tmp_path: Path, args: list[str]) -> None:
    source = write_pcap(tmp_path / "in.pcap", FRAMES)
    result = run_cli(args[0], source, tmp_path / "out.pcap", *args[1:])
    assert result.exit_code == 2
    assert not (tmp_path / "out.pcap").exists()


def test_tc_and_ovs_key_names_write_the_same_bytes(tmp_path: Path) -> None:
    source = write_pcap(tmp_path / "in.pcap", FRAMES)
    outputs = []
    for spec in ("push-vxlan:src=192.0.2.10,dst=192.0.2.20,vni=42,dport=4789,csum=off",
                 "push-vxlan:src_ip=192.0.2.10,dst_ip=192.0.2.20,id=42,dst_port=4789,nocsum",
                 "push-vxlan:local_ip=192.0.2.10,remote_ip=192.0.2.20,tun_id=42"):
        out = tmp_path / f"{len(outputs)}.pcap"
        result = run_cli("segment", source, out, "--action", spec, "--mtu", "9000", "-q", "--strict")
        assert result.exit_code == 0, result.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    assert run_cli("segment", source, tmp_path / "x.pcap", "--action", "push-vxlan:src=192.0.2.1,vni=1").exit_code == 2
    assert run_cli("segment", source, tmp_path / "x.pcap", "--action", "push-vxlan:bogus=1").exit_code == 2


@pytest.mark.parametrize("push", [
    "push-vxlan:src=192.0.2.10,dst=192.0.2.20,vni=42,csum=on",
    "push-vxlan:src=192.0.2.10,dst=192.0.2.20,vni=42",
    "push-geneve:src=2001:db8::10,dst=2001:db8::20,vni=7",
    "push-gre:src=192.0.2.10,dst=192.0.2.20,key=7,csum=on",
    "push-gretap:src=192.0.2.10,dst=192.0.2.20",
])
def test_segment_cuts_a_pushed_super_packet_as_tunnel_gso(tmp_path: Path, push: str) -> None:
    frames = [tcp4_super(20000), ack4(), tcp4_super(5000, seq=1_020_000)]
    source = write_pcap(tmp_path / "in.pcap", frames)
    out = tmp_path / "out.pcap"
    result = run_cli("segment", source, out, "--action", push, "--mtu", "1500", "--json", "--strict")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["outcomes"]["segmented"] == 2 and summary["outcomes"]["changed"] == 1
    packets = read_packets(out)
    assert len(packets) == summary["records_out"] >= 19
    inner_packets = []
    for packet in packets:
        outer = packet[IP] if IP in packet else packet[IPv6]
        # every segment carries the full outer headers and fits the MTU
        assert len(bytes(outer)) <= 1500
        if IP in packet and packet[IP].proto in (17, 47):
            assert packet[IP].len == len(bytes(packet[IP])) and _checksum_verifies(packet, IP)
        if UDP in packet and packet[UDP].dport in (4789, 6081):
            assert packet[UDP].len == len(bytes(packet[UDP]))
            assert packet[UDP].chksum == 0 or _checksum_verifies(packet, UDP)
            assert (packet[UDP].chksum != 0) == ("csum=on" in push or "2001:" in push)
            inner = packet[VXLAN].payload if VXLAN in packet else packet[GENEVE].payload
            assert (packet[VXLAN].vni if VXLAN in packet else packet[GENEVE].vni) in (42, 7)
        else:
            gre = packet[GRE]
            assert gre.key_present == ("key=" in push) and gre.chksum_present == ("csum=on" in push)
            if gre.chksum_present:
                assert _checksum_verifies(packet, GRE)
            inner = gre.payload
            if gre.proto == 0x0800:
                inner = Ether(bytes(packet)[:12] + b"\x08\x00" + bytes(inner))
        inner = inner if isinstance(inner, Ether) else Ether(bytes(inner))
        assert_on_the_wire(inner, 1500)  # inner lengths and checksums verify
        inner_packets.append(inner)
    flows = tcp_payload_by_flow(inner_packets)
    assert flows[("192.0.2.1", 40000)] == payload(20000) + payload(5000)


def test_every_engine_writes_the_same_bytes_for_a_pushed_capture(tmp_path: Path) -> None:
    source = write_pcap(tmp_path / "in.pcap", mixed_capture())
    outputs = set()
    from softgso.bulk.compiled_primitive import available

    for engine in ("scalar", "numpy", "auto", *(("compiled",) if available() else ())):
        out = tmp_path / f"{engine}.pcap"
        result = run_cli("segment", source, out, "--action", "push-geneve:src=192.0.2.10,dst=192.0.2.20,vni=7,csum=on",
                         "--engine", engine, "-q")
        assert result.exit_code == 0, result.stderr
        outputs.add(out.read_bytes())
    assert len(outputs) == 1


VECTOR = Path(__file__).parents[1] / "vectors" / "kernel" / "cases" / "ipv4_tcp_psh_ack"


@pytest.mark.skipif(not VECTOR.is_dir(), reason="no kernel vectors here")
def test_a_push_after_a_virtio_header_is_the_driver_on_a_gso_packet(tmp_path: Path) -> None:
    """--vnet-hdr: the action meets the GSO skb, as a tunnel device does (the tunnel bit ORed in)."""
    vnet_hdr = json.loads((VECTOR / "input_meta.json").read_text())["virtio_net_hdr_bytes_le"]
    out = tmp_path / "out.pcap"
    result = run_cli("segment", VECTOR / "input.pcap", out, "--vnet-hdr", vnet_hdr, "--action",
                     "push-vxlan:src=192.0.2.10,dst=192.0.2.20,vni=42,csum=on", "--mtu", "9000", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["outcomes"]["segmented"] == 1
    packets = read_packets(out)
    original = Ether(read_packets(VECTOR / "input.pcap")[0].original)
    assert sum(len(bytes(p[VXLAN].payload[TCP].payload)) for p in packets) == len(bytes(original[TCP].payload))
    for packet in packets:
        assert packet[VXLAN].vni == 42 and _checksum_verifies(packet, UDP) and _checksum_verifies(packet, IP)
        assert_on_the_wire(packet[VXLAN].payload, 9000)
    diff = run_cli("diff", VECTOR / "input.pcap", out)
    assert diff.exit_code == 1  # the outer headers are new: named, nothing else
    assert ("changed: outer Ethernet header only in B; outer IPv4 header only in B; outer UDP header only in B; "
            "VXLAN header only in B") in diff.stdout
