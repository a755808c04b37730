"""inspect's tunnels section and diff's tunnel fields, on the kernel's own tunnel vectors.

The inputs are super-packets real tunnel devices built and the frames the kernel's software GSO
sent (tests/vectors/kernel/tunnels/6.1); what inspect must report is read from them by Scapy (an
independent decoder) or from the case's name, and diff must pair every kernel segment with its
super-packet by inner flow and sequence. Damaged copies of the kernel's frames must be caught,
each damage named by its field.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest
from cli_captures import write_pcap
from conftest import run_cli, run_json

from softgso.check.golden import read_pcap_frames

scapy_all = pytest.importorskip("scapy.all")
from scapy.contrib.geneve import GENEVE  # noqa: E402
from scapy.contrib.mpls import MPLS  # noqa: E402
from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import GRE, Ether  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402

scapy_all.bind_layers(UDP, GENEVE, dport=6081)
scapy_all.bind_layers(UDP, MPLS, dport=6635)  # RFC 7510
scapy_all.bind_layers(GRE, MPLS, proto=0x8847)

TUNNELS = Path(__file__).parents[1] / "vectors" / "kernel" / "tunnels" / "6.1"
DESIGNED = sorted(p for p in TUNNELS.iterdir() if (p / "meta.json").exists() and not p.name.startswith("random_")
                  and "control" not in p.name) if TUNNELS.is_dir() else []
# every segmented vector of both generations, random ones included (a control builds no super-packet)
EVERY = sorted(p.parent for p in TUNNELS.parent.rglob("meta.json") if "control" not in p.parent.name)
# the kind each case's tunnel device builds, from the case's name (the order matters: longest first)
KIND_OF_NAME = [("fou", "FOU"), ("gue", "GUE"), ("gpe", "VXLAN-GPE"), ("bpf_mpls_in_udp", "MPLS-in-UDP"), ("bpf_mpls_in_gre", "MPLS-in-GRE"), ("ip6gretap", "ip6gretap"),
                ("ip6gre", "ip6gre"), ("gretap", "gretap"), ("gre", "GRE"), ("vxlan", "VXLAN"), ("geneve", "Geneve"),
                ("ipip", "IPIP"), ("sit", "SIT"), ("ip6tnl_4in6", "4in6"), ("ip6tnl_6in6", "ip6ip6")]


def _kind(case: Path) -> str:
    name = re.sub(r"^(uso6?|fixedid)_", "", case.name)
    return next(kind for prefix, kind in KIND_OF_NAME if name.startswith(prefix))


def _ids(case: Path) -> str:
    return case.name


def _innermost_ip(packet: scapy_all.Packet) -> scapy_all.Packet:
    """The last IP header Scapy finds (the inner packet's)."""
    layer, found = packet, None
    while layer is not None and not isinstance(layer, scapy_all.NoPayload):
        if isinstance(layer, (IP, IPv6)):
            found = layer
        layer = layer.payload
    return found


def _scapy_identifier(packet: scapy_all.Packet) -> tuple[int | None, int | None]:
    if VXLAN in packet:
        return packet[VXLAN].vni, None
    if GENEVE in packet:
        return packet[GENEVE].vni, None
    if GRE in packet and packet[GRE].key_present:
        return None, packet[GRE].key
    return None, None


def _decoded(case: Path, frame: bytes) -> scapy_all.Packet:
    """Scapy's reading of the frame; FOU and GUE (no port Scapy knows) with their UDP payload decoded as
    what the case's tunnel device carries (ipip: IPv4, sit: IPv6, gre/gretap/ip6gre: GRE), a GUE
    header (4 bytes and its hlen words) skipped."""
    packet = Ether(frame)
    kind = _kind(case)
    if kind not in ("FOU", "GUE"):
        return packet
    words = json.loads((case / "meta.json").read_text())["tunnel_device"].split()
    device = words[words.index("type") + 1]
    carried = {"ipip": IP, "sit": IPv6, "gre": GRE, "gretap": GRE, "ip6gre": GRE}.get(device)
    if device == "ip6tnl":
        carried = IP if "ipip6" in words else IPv6
    payload = bytes(packet[UDP].payload)
    if kind == "GUE":
        payload = payload[4 + (payload[0] & 0x1F) * 4 :]
    packet[UDP].remove_payload()
    return packet / carried(payload)  # type: ignore[misc]


@pytest.mark.skipif(not DESIGNED, reason="no tunnel vectors here")
@pytest.mark.parametrize("case", DESIGNED, ids=_ids)
def test_inspect_names_the_tunnel_its_vni_or_key_and_both_flows(case: Path) -> None:
    ports = [arg for text in json.loads((case / "meta.json").read_text()).get("softgso_tunnel_ports", [])
             for arg in ("--tunnel-port", text)]
    result, report = run_json("inspect", case / "input.pcap", "--device", "no-offload", "-q", *ports)
    assert result.exit_code == 0, result.stderr
    frame = read_pcap_frames(case / "input.pcap")[0]
    packet = _decoded(case, frame)
    outer = packet.payload  # the outer IP header, right behind the Ethernet header
    inner = _innermost_ip(packet)
    vni, key = _scapy_identifier(packet)
    assert report["tunnels_total"] == 1 and report["tunnel_packets"] == 1
    (tunnel,) = report["tunnels"]
    assert tunnel["kind"] == _kind(case)
    assert (tunnel["outer"]["src"], tunnel["outer"]["dst"]) == (outer.src, outer.dst)
    if tunnel["outer"]["protocol"] == "UDP":
        assert (tunnel["outer"]["sport"], tunnel["outer"]["dport"]) == (outer[UDP].sport, outer[UDP].dport)
    assert (tunnel["vni"], tunnel["key"]) == (vni, key)
    assert (tunnel["inner"]["src"], tunnel["inner"]["dst"]) == (inner.src, inner.dst)
    l4 = inner[TCP] if TCP in inner else inner[UDP]
    assert tunnel["inner"]["protocol"] == ("TCP" if TCP in inner else "UDP")
    assert (tunnel["inner"]["sport"], tunnel["inner"]["dport"]) == (l4.sport, l4.dport)
    assert (tunnel["packets"], tunnel["super_packets"]) == (1, 1)
    assert tunnel["bytes"] == len(frame)


def test_inspect_text_has_a_tunnels_section() -> None:
    case = TUNNELS / "gretap4_key_csum_in6__tx_off"
    if not case.is_dir():
        pytest.skip("no tunnel vectors here")
    result = run_cli("inspect", case / "input.pcap", "-q")
    assert result.exit_code == 0
    text = result.stdout
    assert re.search(r"^tunnels \(1 of 1, 1 packets\)$", text, re.MULTILINE), text
    assert " gretap key 7: outer GRE 192.0.2.1 > 192.0.2.2" in text
    assert re.search(r"inner TCP \[.*\]:\d+ > \[.*\]:\d+: 1 packets, [\d,]+ bytes, 1 super-packets", text)


def test_inspect_of_a_capture_without_tunnels_has_no_tunnels_section(tmp_path: Path) -> None:
    from cli_captures import mixed_capture

    source = write_pcap(tmp_path / "in.pcap", mixed_capture())
    result, report = run_json("inspect", source, "-q")
    assert report["tunnels"] == [] and report["tunnel_packets"] == 0
    assert "tunnels" not in run_cli("inspect", source, "-q").stdout


@pytest.mark.skipif(not EVERY, reason="no tunnel vectors here")
@pytest.mark.parametrize("case", EVERY, ids=lambda case: f"{case.parent.name}/{case.name}")
def test_diff_pairs_every_kernel_segment_with_its_super_packet(case: Path) -> None:
    meta = json.loads((case / "meta.json").read_text())
    segments = meta["segments"]
    ports = [arg for text in meta.get("softgso_tunnel_ports", []) for arg in ("--tunnel-port", text)]  # FOU/GUE
    result, report = run_json("diff", case / "input.pcap", case / "kernel_out.pcap", "--pair-by", "flow", *ports)
    assert result.exit_code == 0, result.stdout
    assert report["fates"]["segmented"] == 1 and report["only_in_b_count"] == 0
    (frame,) = report["frames"]
    assert frame["b_frames"] == list(range(1, segments + 1)) and frame["payload_intact"] and frame["ok"]
    text = run_cli("diff", case / "input.pcap", case / "kernel_out.pcap", *ports).stdout
    assert f"frame 1: segmented -> frames 1..{segments} ({segments} frames), payload intact" in text


def _damaged(tmp_path: Path, case: str, at: int, value: bytes, frame: int = 1) -> tuple[Path, Path]:
    folder = TUNNELS / case
    if not folder.is_dir():
        pytest.skip("no tunnel vectors here")
    frames = [bytearray(f) for f in read_pcap_frames(folder / "kernel_out.pcap")]
    frames[frame][at : at + len(value)] = value
    return folder / "input.pcap", write_pcap(tmp_path / "bad.pcap", [bytes(f) for f in frames])


# byte offsets in an Ethernet + outer IPv4 + UDP + VXLAN (+ inner Ethernet) frame
VXLAN_CASE = "vxlan4_udpcsum_in4_idwrap__tx_off"
OUTER_UDP_CHECK, VNI = 14 + 20 + 6, 14 + 20 + 8 + 4


def test_diff_by_flow_names_a_changed_vni(tmp_path: Path) -> None:
    a, b = _damaged(tmp_path, VXLAN_CASE, VNI, b"\x00\x00\x2b")
    result, report = run_json("diff", a, b, "--pair-by", "flow")
    assert result.exit_code == 1
    changes = report["frames"][0]["changes"]
    assert {"field": "VXLAN VNI", "a": "42", "b": "43"} in changes


def test_diff_by_flow_catches_an_outer_udp_checksum_that_does_not_verify(tmp_path: Path) -> None:
    a, b = _damaged(tmp_path, VXLAN_CASE, OUTER_UDP_CHECK, b"\x12\x34")
    result = run_cli("diff", a, b, "--pair-by", "flow")
    assert result.exit_code == 1
    assert "frame 2: outer UDP checksum 0x1234 does not verify" in result.stdout


def test_diff_by_flow_catches_an_outer_udp_checksum_zeroed(tmp_path: Path) -> None:
    a, b = _damaged(tmp_path, VXLAN_CASE, OUTER_UDP_CHECK, b"\x00\x00")
    result = run_cli("diff", a, b, "--pair-by", "flow")
    assert result.exit_code == 1 and "outer UDP checksum 0 where A's has one" in result.stdout


def test_diff_by_flow_catches_a_gre_checksum_that_does_not_verify(tmp_path: Path) -> None:
    # gretap over IPv4 with csum and key: GRE flags, protocol, then the checksum at GRE offset 4
    a, b = _damaged(tmp_path, "gretap4_key_csum_in6__tx_off", 14 + 20 + 4, b"\xbe\xef", frame=0)
    result = run_cli("diff", a, b, "--pair-by", "flow")
    assert result.exit_code == 1 and "frame 1: GRE checksum 0xbeef does not verify" in result.stdout


def test_diff_by_flow_catches_an_inner_payload_byte(tmp_path: Path) -> None:
    folder = TUNNELS / VXLAN_CASE
    if not folder.is_dir():
        pytest.skip("no tunnel vectors here")
    last = len(read_pcap_frames(folder / "kernel_out.pcap")[1]) - 1
    a, b = _damaged(tmp_path, VXLAN_CASE, last, b"\xee")
    result, report = run_json("diff", a, b, "--pair-by", "flow")
    assert result.exit_code == 1 and not report["frames"][0]["payload_intact"]


def test_positional_diff_names_outer_tunnel_and_inner_fields(tmp_path: Path) -> None:
    folder = TUNNELS / VXLAN_CASE
    if not folder.is_dir():
        pytest.skip("no tunnel vectors here")
    good = read_pcap_frames(folder / "kernel_out.pcap")
    bad = [bytearray(f) for f in good]
    bad[0][OUTER_UDP_CHECK : OUTER_UDP_CHECK + 2] = b"\x00\x00"
    bad[1][VNI : VNI + 3] = b"\x00\x00\x07"
    inner_ip = 14 + 20 + 8 + 8 + 14
    bad[2][inner_ip + 4 : inner_ip + 6] = b"\xab\xcd"  # the inner IPv4 ID
    inner_tcp = inner_ip + 20
    struct.pack_into("!I", bad[3], inner_tcp + 4, 7)  # the inner TCP sequence number
    a = write_pcap(tmp_path / "a.pcap", good)
    b = write_pcap(tmp_path / "b.pcap", [bytes(f) for f in bad])
    result, report = run_json("diff", a, b, "--pair-by", "position")
    assert result.exit_code == 1
    fields = {d["frame"]: {f["field"] for f in d["fields"]} for d in report["differences"]}
    assert fields[1] == {"outer UDP checksum"}
    assert fields[2] == {"VXLAN VNI"}
    assert fields[3] == {"inner IPv4 id"}
    assert fields[4] == {"inner TCP seq"}
    assert "frame 2: VXLAN VNI 42 != 7" in run_cli("diff", a, b, "--pair-by", "position").stdout


def test_diff_reads_fou_on_the_port_it_is_told() -> None:
    """FOU has no port of its own: without --tunnel-port its segments are UDP datagrams to port 5555, not
    what the super-packet became; with it, each pairs by the inner flow, and a changed inner field is named."""
    case = TUNNELS / "fou_ipip_in4__tx_off"
    if not case.is_dir():
        pytest.skip("no tunnel vectors here")
    a, b = case / "input.pcap", case / "kernel_out.pcap"
    blind, _ = run_json("diff", a, b, "--pair-by", "flow")
    assert blind.exit_code == 1
    told, report = run_json("diff", a, b, "--pair-by", "flow", "--tunnel-port", "fou:5555")
    assert told.exit_code == 0 and report["fates"]["segmented"] == 1


def test_positional_diff_names_the_inner_fields_of_a_fou_frame(tmp_path: Path) -> None:
    folder = TUNNELS / "fou_ipip_in4__tx_off"
    if not folder.is_dir():
        pytest.skip("no tunnel vectors here")
    good = read_pcap_frames(folder / "kernel_out.pcap")
    bad = [bytearray(f) for f in good]
    inner_tcp = 14 + 20 + 8 + 20  # Ethernet, outer IPv4, UDP (FOU: no header of its own), inner IPv4
    struct.pack_into("!I", bad[1], inner_tcp + 4, 7)
    a = write_pcap(tmp_path / "a.pcap", good)
    b = write_pcap(tmp_path / "b.pcap", [bytes(f) for f in bad])
    result, report = run_json("diff", a, b, "--pair-by", "position", "--tunnel-port", "fou:5555")
    assert result.exit_code == 1
    (difference,) = report["differences"]
    assert "inner TCP seq" in {change["field"] for change in difference["fields"]}
