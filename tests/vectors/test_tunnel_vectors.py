"""Every tunnel vector reproduces byte for byte: the frames a real kernel's tunnel GSO sent.

Vectors live in tests/vectors/kernel/tunnels/<generation>/ and were recorded by
tools/kernel_oracle/tunnel_cases.py: a real tunnel device (vxlan and VXLAN-GPE, geneve, gretap, gre,
ip6gre, ip6gretap, ipip, sit, ip6tnl, and ipip/sit/gre/gretap/ip6tnl/ip6gre with FOU or GUE
encapsulation) built the super-packet, a tc mirror of the underlay's egress caught it whole
(``input.pcap``), and veth0's software GSO sent ``kernel_out.pcap``. softgso gets the super-packet
as a capture (the plain ``segment`` path: tunnel recognised from the bytes, checksum state
classified) with the case's gso_size, the device profile that models veth0's ethtool settings, for
the inner-USO cases (a UDP socket with UDP_SEGMENT over the tunnel device) ``--udp-gso udp_l4``,
for FOU/GUE (no assigned port) the ``--tunnel-port`` naming the device's port, and for a GRO aggregate
forwarded into the tunnel (``fixedid_*``) ``--fixed-id`` when the gso_type the kernel traced has
SKB_GSO_TCP_FIXEDID; nothing else.
Control cases (``control`` in meta.json) record what the kernel does instead: the tunnel device
segments before it encapsulates (no super-packet is ever built), or veth0 takes the super-packet
whole. Cases are discovered, never listed.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from softgso.check.golden import read_pcap_frames
from softgso.features import PROFILES, GsoType
from softgso.job import Outcome, SegmentOptions, process_frame
from softgso.offload.tunnels import parse_tunnel, parse_tunnel_port
from softgso.virtio import kernel_generation_of_release

TUNNELS = Path(__file__).parent / "kernel" / "tunnels"
CASES = sorted(p.parent for p in TUNNELS.rglob("meta.json"))
SEGMENTED = [c for c in CASES if "control" not in c.name]
CONTROLS = [c for c in CASES if "control" in c.name]
IDS = [str(c.relative_to(TUNNELS)) for c in SEGMENTED]


def _meta(case: Path) -> dict:
    return json.loads((case / "meta.json").read_text())


def _options(meta: dict, **changes: object) -> SegmentOptions:
    """What softgso is told of a case: nothing the capture itself does not say, but the device profile
    modelling veth0, gso_size, USO when a UDP_SEGMENT socket sent it, and a FOU/GUE device's port."""
    udp_gso = "udp_l4" if meta["inner_gso_type"] == "udp_l4" else "off"
    ports = tuple(parse_tunnel_port(text) for text in meta.get("softgso_tunnel_ports", []))
    options = SegmentOptions(device=PROFILES[meta["softgso_profile"]], gso_size=meta["gso_size"], udp_gso=udp_gso,
                             kernel=kernel_generation_of_release(meta["kernel_release"]), tunnel_ports=ports,
                             fixed_id=bool((meta.get("skb_gso_type") or 0) & GsoType.TCP_FIXEDID))
    return replace(options, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("generation", ["6.1", "6.12"])
def test_the_designed_matrix_is_there(generation: str) -> None:
    designed = [c for c in SEGMENTED if c.parent.name == generation and not c.name.startswith("random_")]
    assert len(designed) >= 40
    kinds = {c.name.split("_")[0] for c in designed}
    assert kinds >= {"vxlan4", "vxlan6", "geneve4", "geneve6", "gretap4", "gre4", "ip6gre", "ip6gretap", "ipip",
                     "sit", "ip6tnl", "uso", "bpf", "fou", "gue", "fou6", "gue6", "gpe4", "gpe6"}
    # FOU and GUE over each tunnel they carry
    assert {tuple(c.name.split("_")[:2]) for c in designed if c.name.startswith(("fou", "gue"))} >= {
        ("fou", "ipip"), ("fou", "sit"), ("fou", "gre"), ("fou", "gretap"), ("gue", "ipip"), ("gue", "sit"),
        ("gue", "gre"), ("gue", "gretap"), ("fou6", "ip6tnl"), ("gue6", "ip6gre")}
    assert any(c.name.startswith("bpf_mpls_in_udp") for c in designed)
    assert any(c.name.startswith("bpf_mpls_in_gre") for c in designed)
    assert any(c.name.startswith("geneve6_options") for c in designed)  # options over an outer IPv6 header
    assert len([c for c in designed if c.name.startswith("uso6_")]) >= 10  # inner IPv6 USO, both outer families


@pytest.mark.parametrize("case", SEGMENTED, ids=IDS)
def test_tunnel_vector_reproduced(case: Path) -> None:
    meta = _meta(case)
    inputs = read_pcap_frames(case / "input.pcap")
    expected = read_pcap_frames(case / "kernel_out.pcap")
    assert len(inputs) == 1 and len(expected) >= 2, "the vector holds one super-packet and its segments"
    # a USO super-packet (a UDP_SEGMENT socket) is cut only when asked: the capture carries no GSO metadata
    result = process_frame(inputs[0], _options(meta))
    assert result.outcome == Outcome.SEGMENTED, result.reason
    assert len(result.frames) == len(expected), "segment count differs from the kernel's"
    for index, (ours, kernels) in enumerate(zip(result.frames, expected, strict=True)):
        first = next((i for i in range(min(len(ours), len(kernels))) if ours[i] != kernels[i]), None)
        assert ours == kernels, f"segment {index} differs from the kernel's (lengths {len(ours)}/{len(kernels)}, " \
                                f"first byte {first})"


def _control(case: Path) -> str:
    return _meta(case).get("control") or "segmented before encapsulation"  # the first control (oseq) says none


FIRST = [c for c in CONTROLS if _control(c) == "segmented before encapsulation"]
WHOLE = [c for c in CONTROLS if _control(c) == "passed whole"]


def test_the_controls_are_there() -> None:
    """Each generation shows both: devices that never build a super-packet, and a veth0 that takes it whole."""
    for generation in ("6.1", "6.12"):
        names = {c.name for c in CONTROLS if c.parent.name == generation}
        assert names >= {"gre4_oseq_control__tx_off", "fou_gre_ocsum_control__tx_off", "erspan_control__tx_off",
                         "vxlan4_tnl0_tso_off_control__tx_off", "ufo_vxlan4_control__tx_off",
                         "ufo_ipip_control__tx_off", "vxlan4_udpcsum_passed_whole_control__tunnel_on",
                         "gre4_key_passed_whole_control__tunnel_on", "fou_ipip_passed_whole_control__tunnel_on",
                         "gre_over_vxlan_nested_control__tx_off", "vxlan4_rco_control__tx_off",
                         "vxlan4_rco_udpcsum_in6_control__tx_off"}


def _sequence(frame: bytes, gre: int) -> int:
    """The GRE sequence number of a GRE header at ``gre`` (C and K words before it when present)."""
    flags = int.from_bytes(frame[gre : gre + 2], "big")
    at = gre + 4 + 4 * bool(flags & 0x8000) + 4 * bool(flags & 0x2000)
    assert flags & 0x1000, "no S bit"
    return int.from_bytes(frame[at : at + 4], "big")


@pytest.mark.parametrize("case", FIRST, ids=[str(c.relative_to(TUNNELS)) for c in FIRST])
def test_a_device_without_gso_sends_every_packet_encapsulated_on_its_own(case: Path) -> None:
    """Spec 3.9: GRE with sequence numbers, GRE checksums under FOU, ERSPAN, tso off on the tunnel device,
    inner UFO (no tunnel device has it), a tunnel routed through another one, and (as recorded here)
    VXLAN with remote checksum offload never make a tunnel super-packet: the tunnel device segments
    (or fragments) first, the mirror sees N packets, each fits; softgso leaves each alone."""
    meta = _meta(case)
    supers = read_pcap_frames(case / "input.pcap")
    sent = read_pcap_frames(case / "kernel_out.pcap")
    assert len(supers) == len(sent) >= 2  # the mirror saw N packets, not one super-packet
    assert all(len(frame) - 14 <= 1500 for frame in sent)
    if case.name.startswith(("gre4_oseq", "erspan")):  # one sequence number each, consecutive
        numbers = [_sequence(f, 14 + 20) for f in supers]
        assert numbers == list(range(numbers[0], numbers[0] + len(supers)))
    if case.name.startswith("fou_gre_ocsum"):  # GRE with its C bit inside FOU: per-packet checksums
        assert all(f[23] == 17 and f[42] & 0x80 for f in sent)
    if case.name.startswith("vxlan4_rco"):  # each packet with its RCO bit (BIT(21) of the VXLAN flags word)
        assert all(f[43] & 0x20 for f in sent)
    if case.name.startswith("gre_over_vxlan"):  # VXLAN (UDP 4789) carrying Ethernet, IPv4, GRE: one each
        assert all(f[36:38] == b"\x12\xb5" and f[50 + 14 + 9] == 47 for f in sent)
    if case.name.startswith("ufo_"):  # the inner datagram left as IP fragments, each one encapsulated
        inner = [parse_tunnel(f, any_inner=True) for f in sent]
        assert all(layout is not None for layout in inner)
        offsets = [int.from_bytes(f[lay.inner_network + 6 : lay.inner_network + 8], "big")  # type: ignore[union-attr]
                   for f, lay in zip(sent, inner, strict=True)]
        assert offsets[0] == 0x2000 and offsets[-1] & 0x2000 == 0 and offsets[-1] & 0x1FFF
    options = _options(meta)
    for frame in sent:  # each already fits: softgso leaves it alone
        assert process_frame(frame, options).outcome == Outcome.UNCHANGED


@pytest.mark.parametrize("case", WHOLE, ids=[str(c.relative_to(TUNNELS)) for c in WHOLE])
def test_a_device_with_the_tunnel_feature_takes_the_super_packet_whole(case: Path) -> None:
    """Spec 6.2: veth0 with its tunnel segmentation features (veth's defaults) passes the super-packet to
    its peer whole; softgso with the profile modelling it (``tso``) sends the same bytes, uncut."""
    meta = _meta(case)
    supers = read_pcap_frames(case / "input.pcap")
    sent = read_pcap_frames(case / "kernel_out.pcap")
    assert len(supers) == len(sent) == 1 and len(sent[0]) - 14 > 1500
    result = process_frame(supers[0], _options(meta))
    assert result.outcome == Outcome.WHOLE, result.reason
    assert result.frames == sent
    # the same super-packet on a veth0 without them is cut (the tunnel was recognised, not missed)
    cut = process_frame(supers[0], _options(meta, device=PROFILES["no-offload"]))
    assert cut.outcome == Outcome.SEGMENTED and len(cut.frames) >= 2


GRO_FORWARD = [c for c in SEGMENTED if "gro_forward" in _meta(c)]


def test_the_gro_forward_cases_are_there() -> None:
    """A GRO aggregate forwarded into a tunnel, each generation: fixed IDs (FIXEDID) over UDP tunnels, GRE and
    IP-in-IP, outer IPv4 and IPv6; the same routes with IDs counting up; inner IPv6."""
    for generation in ("6.1", "6.12"):
        names = {c.name for c in GRO_FORWARD if c.parent.name == generation}
        assert len(names) >= 10
        for part in ("vxlan4_udpcsum_in4_", "vxlan6", "geneve4", "gre4", "gretap4", "ip6gre", "ipip_in4_",
                     "ip6tnl_4in6", "_incrementing", "_in6_", "sit_in6"):
            assert any(part in name for name in names), part


def _ipv4_ids(frames: list[bytes], at: int) -> list[int]:
    return [int.from_bytes(frame[at + 4 : at + 6], "big") for frame in frames]


@pytest.mark.parametrize("case", GRO_FORWARD, ids=[str(c.relative_to(TUNNELS)) for c in GRO_FORWARD])
def test_a_forwarded_gro_aggregate_keeps_its_ip_id_rule(case: Path) -> None:
    """What the kernel did (read from its trace and its output, not from softgso): GRO gave the aggregate
    SKB_GSO_TCP_FIXEDID exactly when the wire segments had DF and one IPv4 ID; the tunnel driver added its
    bits; veth0's GSO kept that one ID on every inner header and counted the outer IPv4 ID up (6.1 and 6.12
    apply FIXEDID at the inner level only); without FIXEDID the inner IDs count up from the first."""
    meta = _meta(case)
    forward = meta["gro_forward"]
    aggregate, encapsulated = forward["aggregate_gso"], forward["super_gso"]
    supers = read_pcap_frames(case / "input.pcap")
    sent = read_pcap_frames(case / "kernel_out.pcap")
    layout = parse_tunnel(supers[0], any_inner=True)
    assert layout is not None
    inner_v4 = layout.inner_version == 4
    fixed = bool(aggregate["gso_type"] & GsoType.TCP_FIXEDID)
    assert fixed == (inner_v4 and forward["fixed_ids"])
    assert aggregate["gso_type"] & (GsoType.TCPV4 if inner_v4 else GsoType.TCPV6)
    assert encapsulated["gso_type"] & 0x1F == aggregate["gso_type"]  # the tunnel adds its bits, keeps these
    assert encapsulated["gso_type"] & ~0x1F, "no tunnel bit"
    assert meta["skb_gso_type"] == encapsulated["gso_type"] and aggregate["gso_size"] == meta["gso_size"]
    assert len(sent) == forward["wire_segments"]
    if inner_v4:
        first = _ipv4_ids(supers, layout.inner_network)[0]
        inner = _ipv4_ids(sent, layout.inner_network)
        assert inner == ([first] * len(sent) if fixed else [(first + i) & 0xFFFF for i in range(len(sent))])
    if layout.outer_version == 4:
        first = _ipv4_ids(supers, layout.outer_network)[0]
        assert _ipv4_ids(sent, layout.outer_network) == [(first + i) & 0xFFFF for i in range(len(sent))]
