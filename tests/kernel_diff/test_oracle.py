"""The kernel oracle's own rules, without a VM: generator, frames, comparison, minimisation, vectors.

Frames are checked with Scapy (an independent decoder); the comparison is checked against the
golden vectors with one byte changed; the recorded vectors under tests/vectors/kernel/generated
are checked against the parameters they were drawn from.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools.kernel_oracle import cases, compare, generate, tunnel_cases, wire  # noqa: E402
from tools.kernel_oracle.initramfs import CpioWriter  # noqa: E402

GOLDEN_CASES = REPO / "tests" / "vectors" / "kernel" / "cases"
GENERATED = REPO / "tests" / "vectors" / "kernel" / "generated"
GENERATED_CASES = sorted(p.parent for p in GENERATED.glob("*/meta.json"))
GOLDEN_META_KEYS = {"case", "kernel", "gso_size", "gso_type", "paylen", "tc_action", "description", "sendto_result",
                    "sendto_error", "n_segments", "segments", "input_l4check_seed"}
GOLDEN_INPUT_META_KEYS = {"virtio_net_hdr", "virtio_net_hdr_bytes_le", "tc_action", "sll_protocol", "ethtool_veth0",
                          "input_analysis"}
ENGINE_MISSING = compare.engine_missing_reason()


# -- generator ------------------------------------------------------------------------------------
def test_plan_is_deterministic_and_a_longer_plan_extends_a_shorter_one() -> None:
    short, long = generate.plan(5, 30), generate.plan(5, 60)
    assert [s.to_json() for s in short] == [s.to_json() for s in generate.plan(5, 30)]
    assert [s.to_json() for s in short] == [s.to_json() for s in long[:30]]
    assert [s.to_json() for s in generate.plan(6, 30)] != [s.to_json() for s in short]


def test_every_category_appears_within_one_cycle() -> None:
    prefixes = {"invalid": "invalid", "odd": "odd_metadata"}
    drawn = {prefixes.get(s.category.split("_")[0], s.category) for s in generate.plan(1, len(generate.CYCLE))}
    assert drawn == set(generate.CATEGORIES) | {"invalid", "odd_metadata"}


def test_every_invalid_and_odd_kind_is_drawn() -> None:
    kinds = {s.category for s in generate.plan(3, 7 * len(generate.CYCLE))}
    assert {"invalid_" + kind for kind in generate.INVALID_KINDS} <= kinds
    assert {"odd_" + kind for kind in generate.ODD_KINDS} <= kinds


def test_label_3_and_ttl_0_are_never_drawn() -> None:
    """act_mpls refuses label 3 (implicit null) and tc refuses TTL 0; the frame would leave unlabelled."""
    pushes = [label for spec in generate.plan(11, 600) for label in spec.labels]
    assert 3 not in {label for label, _, _, _ in pushes} and 0 not in {ttl for _, _, ttl, _ in pushes}
    assert {0, 1, 2, generate.MAX_LABEL} <= {label for label, _, _, _ in pushes}


def test_deep_stacks_have_five_to_eight_labels() -> None:
    depths = {len(s.labels) for s in generate.plan(2, 400) if s.category == "deep_stack"}
    assert depths <= set(range(5, 9)) and len(depths) >= 3


def test_segments_fit_the_veth_mtu() -> None:
    """veth1 drops a frame over MTU + 18: the drawn MTU must take every segment."""
    for spec in generate.plan(4, 210):
        frame, vnet = cases.build_frame(spec)
        if spec.gso_size == 0 or spec.gso_size >= 0xFFFF:
            continue
        tcp_header = 20 + len(bytes.fromhex(spec.tcp_options)) if spec.l4 == "tcp" else 0
        segment = vnet["csum_start"] + tcp_header + min(spec.gso_size, spec.paylen)
        tags = 4 * (len(spec.labels) + len(spec.vlan_pushes) + bool(spec.tx_vlan))
        assert segment + tags <= spec.veth_mtu + 18, spec.name


# -- frames, checked by Scapy -----------------------------------------------------------------------
def scapy_layers():
    return pytest.importorskip("scapy.all")


@pytest.mark.parametrize("spec", generate.plan(7, 42), ids=lambda s: s.name)
def test_built_frames_decode_with_scapy_as_drawn(spec: cases.CaseSpec) -> None:
    scapy = scapy_layers()
    frame, vnet = cases.build_frame(spec)
    packet = scapy.Ether(frame)
    ip_layer = scapy.IPv6 if spec.ip_version == 6 else scapy.IP
    transport = scapy.TCP if spec.l4 == "tcp" else scapy.UDP
    assert packet.haslayer(ip_layer) and packet.haslayer(transport)
    assert len(bytes(packet[transport].payload)) == spec.paylen
    if spec.ip_version == 4:
        assert packet[scapy.IP].len == len(frame) - 14
        rebuilt = scapy.IP(bytes(packet[scapy.IP]))
        del rebuilt.chksum
        assert packet[scapy.IP].chksum == scapy.IP(bytes(rebuilt)).chksum
    else:
        extension = {"hop": scapy.IPv6ExtHdrHopByHop, "rt": scapy.IPv6ExtHdrRouting, "dst": scapy.IPv6ExtHdrDestOpt}
        for kind in spec.ext_headers:
            assert packet.haslayer(extension[kind.split(":")[0]])
        assert packet[scapy.IPv6].plen == len(frame) - 54
    if spec.hdr_len is None:
        assert vnet["hdr_len"] == len(frame) - spec.paylen


def test_input_checksum_holds_the_folded_pseudo_header_sum() -> None:
    scapy = scapy_layers()
    for spec in generate.plan(9, 54):
        if spec.l4_seed != "pseudo":
            continue
        frame, _ = cases.build_frame(spec)
        packet = scapy.Ether(frame)
        transport = packet[scapy.TCP] if spec.l4 == "tcp" else packet[scapy.UDP]
        length = len(bytes(transport))
        if spec.ip_version == 4:
            pseudo = scapy.raw(packet[scapy.IP])[12:20] + struct.pack("!xBH", 6 if spec.l4 == "tcp" else 17, length)
        else:
            pseudo = (scapy.raw(packet[scapy.IPv6])[8:40] + struct.pack("!I3xB", length, 6 if spec.l4 == "tcp" else 17))
        folded = scapy.checksum(pseudo) ^ 0xFFFF  # scapy complements; the seed is not complemented
        assert transport.chksum == folded, spec.name


def test_tc_actions_push_in_drawn_order() -> None:
    spec = cases.CaseSpec(name="x", category="x", labels=[[16, 1, 2, "uc"], [17, 3, 4, "mc"]],
                          vlan_pushes=[[5, 6, "802.1ad"]], vlan_after_mpls=False)
    assert cases.tc_action_text(spec) == ("action vlan push protocol 802.1ad id 5 priority 6"
                                          " action mpls push protocol mpls_uc label 16 tc 1 ttl 2"
                                          " action mpls push protocol mpls_mc label 17 tc 3 ttl 4")


def test_label_operations_follow_the_pushes_in_tc_spelling() -> None:
    spec = cases.CaseSpec(name="x", category="label_ops", labels=[[16, 1, 2, "uc"]],
                          label_ops=["mpls dec_ttl", "mpls pop protocol ip"])
    assert cases.tc_action_text(spec) == ("action mpls push protocol mpls_uc label 16 tc 1 ttl 2"
                                          " action mpls dec_ttl action mpls pop protocol ip")


def test_opt_in_categories_leave_the_cycles_plans_alone_and_draw_every_label_operation() -> None:
    """label_ops is drawn only when named: a cycle's plan never shows it, and a plan of it shows pops to the
    right and to a wrong next protocol, modify, dec_ttl at TTL 1, a push after pops and a VLAN pop."""
    assert not any(s.category in generate.OPT_IN for s in generate.plan(5, 3 * len(generate.CYCLE_6_12),
                                                                         generation="6.12"))
    specs = generate.plan(5, 200, categories={"label_ops"})
    assert {s.category for s in specs} == {"label_ops"}
    assert [s.to_json() for s in specs[:20]] == [s.to_json() for s in generate.plan(5, 20, categories={"label_ops"})]
    ops = [op for s in specs for op in s.label_ops]
    for wanted in ("mpls pop protocol mpls_uc", "mpls pop protocol ip", "mpls pop protocol ipv6", "mpls dec_ttl",
                   "vlan pop"):
        assert wanted in ops, wanted
    assert any(op.startswith("mpls modify label") for op in ops)
    assert any(s.label_ops[-1] == "mpls pop protocol " + ("ipv6" if s.ip_version == 4 else "ip") for s in specs)
    assert any(s.labels[-1][2] == 1 and s.label_ops[0] == "mpls dec_ttl" for s in specs)
    assert any("mpls pop" in " ".join(s.label_ops).split("mpls push")[0] and "mpls push" in " ".join(s.label_ops)
               for s in specs)
    for spec in specs:
        assert all(op != "vlan pop" for op in spec.label_ops) or spec.vlan_pushes or spec.tx_vlan, spec.name


def test_csum_start_shift_moves_the_checksum_start_off_the_transport_header_both_ways() -> None:
    shifts = set()
    for spec in generate.plan(6, 120, categories={"csum_start_shift"}):
        transport = cases.build_frame(dataclasses.replace(spec, csum_start=None))[1]["csum_start"]
        frame, vnet = cases.build_frame(spec)
        assert vnet["csum_start"] == spec.csum_start != transport, spec.name
        assert vnet["csum_offset"] == (16 if spec.l4 == "tcp" else 6), spec.name
        shifts.add(spec.csum_start - transport)
    assert min(shifts) < 0 < max(shifts)


def test_no_gso_draws_single_packets_that_fit_the_mtu_with_checksums_placed_anywhere() -> None:
    """gso_type NONE, every virtio flag, csum_start/csum_offset off the transport's own, and UDP payloads whose
    checksum Scapy computes as 0 (the frame leaves with CSUM_MANGLED_0 when the kernel completes it)."""
    scapy = scapy_layers()
    specs = generate.plan(3500, 200, categories={"no_gso"})
    assert {s.gso_type for s in specs} == {0} and {s.vnet_flags for s in specs} == {0, 1, 2, 3}
    own = 0
    for spec in specs:
        frame, vnet = cases.build_frame(spec)
        tags = len(spec.labels) + len(spec.vlan_pushes) + bool(spec.tx_vlan)
        assert len(frame) - 14 + 4 * tags <= spec.veth_mtu, spec.name
        assert vnet["csum_start"] + vnet["csum_offset"] + 2 <= len(frame), spec.name
        own += spec.csum_start is None and spec.csum_offset is None
        if spec.payload_fix == "udp_zero":
            packet = scapy.Ether(frame)
            del packet[scapy.UDP].chksum
            assert scapy.Ether(bytes(packet))[scapy.UDP].chksum == 0xFFFF, spec.name  # Scapy sends a computed 0 as 0xFFFF too
    assert 0 < own < len(specs) and any(s.payload_fix for s in specs) and any(s.veth_mtu == 9000 for s in specs)


def test_vlan_offload_puts_vlan_devices_and_tc_tags_on_devices_that_offload() -> None:
    specs = generate.plan(3520, 160, categories={"vlan_offload"})
    assert all(s.ethtool_veth0.startswith("tx on") for s in specs)
    assert any(s.tx_vlan and s.vlan_pushes and s.l4 == "udp" for s in specs)
    assert any(s.tx_vlan and not s.vlan_pushes for s in specs) and any(s.vlan_pushes and not s.tx_vlan for s in specs)
    assert any("txvlan off" in s.ethtool_veth0 for s in specs)


def test_tunnel_headers_variant_puts_extension_headers_and_options_in_the_inner_packet() -> None:
    """The inner packet Scapy decodes carries the drawn IPv6 extension headers or IPv4 options and TCP options,
    and the virtio header's csum_start is its TCP header; the plain plan of the seed is unchanged."""
    scapy = scapy_layers()
    plain = [c.name for c in tunnel_cases.random_cases(3510, 30)]
    assert plain == [c.name for c in tunnel_cases.random_cases(3510, 30)]
    drawn = tunnel_cases.random_cases(3510, 30, "headers")
    assert all(c.name.startswith("hdrs_") and c.bpf is None for c in drawn)
    for case in drawn:
        packet = (scapy.IPv6 if case.inner_v6 else scapy.IP)(case.inner_packet())
        tcp_at = case.vnet()["csum_start"] - (14 if case.l2 else 0)
        assert bytes(packet[scapy.TCP]) == case.inner_packet()[tcp_at:], case.name
        if case.tcp_options is not None:
            assert bytes(packet[scapy.TCP])[20 : 20 + len(bytes.fromhex(case.tcp_options))].hex() == case.tcp_options
    assert any(c.inner_ext_headers for c in drawn) and any(c.inner_ip_options for c in drawn)


# -- comparison and minimisation --------------------------------------------------------------------
@pytest.mark.skipif(ENGINE_MISSING is not None, reason=ENGINE_MISSING or "")
def test_comparison_agrees_on_a_golden_case_and_catches_one_changed_byte(tmp_path: Path) -> None:
    source = GOLDEN_CASES / "ipv4_tcp_2labels"
    case = tmp_path / "ipv4_tcp_2labels"
    shutil.copytree(source, case)
    assert compare.compare_case(case).agree
    frames = wire.read_pcap(case / "kernel_out.pcap")
    frames[2] = frames[2][:60] + bytes([frames[2][60] ^ 1]) + frames[2][61:]
    wire.write_pcap(case / "kernel_out.pcap", frames)
    verdict = compare.compare_case(case)
    assert not verdict.agree and verdict.detail.startswith("frame 2 differs at byte 60")


@pytest.mark.skipif(ENGINE_MISSING is not None, reason=ENGINE_MISSING or "")
def test_comparison_counts_two_refusals_as_agreement() -> None:
    verdict = compare.compare_case(GOLDEN_CASES / "neg_ipv4_gso_tcpv6")
    assert verdict.agree and verdict.detail.startswith("both refused")


def test_minimise_keeps_only_what_the_disagreement_needs() -> None:
    """A fake oracle that disagrees whenever a label with tc 5 is pushed: the rest is shrunk away."""
    spec = cases.CaseSpec(name="s1_000_x", category="x", paylen=9000, gso_size=1000, tcp_options="0101080a" + "00" * 8,
                          ip_options="01010100", tcp_flags=0xB9, labels=[[16, 0, 1, "uc"], [17, 5, 1, "uc"],
                                                                          [18, 0, 1, "mc"]],
                          vlan_pushes=[[7, 0, "802.1Q"]], gso_type=cases.VIRTIO_NET_HDR_GSO_TCPV4 | 0x80)
    calls = []

    def fake(candidates: list[cases.CaseSpec]) -> list[bool]:
        calls.append(len(candidates))
        return [any(label[1] == 5 for label in c.labels) for c in candidates]

    smallest, rounds = compare.minimise(spec, fake, max_rounds=20)
    assert smallest.labels == [[17, 5, 1, "uc"]]
    assert (smallest.paylen, smallest.tcp_options, smallest.ip_options, smallest.vlan_pushes) == (1001, "", "", [])
    assert smallest.tcp_flags == 0x10 and smallest.gso_type == cases.VIRTIO_NET_HDR_GSO_TCPV4
    assert smallest.name.startswith("s1_000_x__min") and rounds == len(calls)


def test_cpio_entries_are_newc_and_four_byte_aligned() -> None:
    archive = CpioWriter()
    archive.add("init", 0o100755, b"#!/bin/sh\n")
    data = archive.finish()
    assert data[:6] == b"070701" and len(data) % 4 == 0
    assert int(data[6 + 8 : 6 + 16], 16) == 0o100755 and int(data[6 + 48 : 6 + 56], 16) == len(b"#!/bin/sh\n")
    assert data.endswith(b"TRAILER!!!\0" + b"\0" * (-(110 + 11) % 4))


# -- the recorded vectors ---------------------------------------------------------------------------
@pytest.mark.skipif(not GENERATED_CASES, reason="no recorded vectors under tests/vectors/kernel/generated")
def test_recorded_vectors_have_the_golden_files_and_keys() -> None:
    for folder in GENERATED_CASES:
        assert {p.name for p in folder.iterdir()} >= {"input.pcap", "input_meta.json", "kernel_out.pcap", "meta.json"}
        meta = json.loads((folder / "meta.json").read_text())
        assert GOLDEN_META_KEYS <= set(meta), folder.name
        assert GOLDEN_INPUT_META_KEYS <= set(json.loads((folder / "input_meta.json").read_text())), folder.name
        assert meta["kernel_release"].startswith("6.1.")
        assert len(wire.read_pcap(folder / "kernel_out.pcap")) == meta["n_segments"]


def jumbo_header_removed_under_labels(spec: cases.CaseSpec) -> bool:
    """A BIG TCP jumbo header the kernel takes off under labels (pushed on veth0, over 64 KB of IPv6):
    its segments start 8 bytes into the frame (docs/kernel-notes.md), the stack and the TCP header
    are not where a decoder looks for them. Through a VLAN device the packet is segmented before the
    labels are pushed."""
    frame, _ = cases.build_frame(spec)
    return spec.ext_headers[:1] == ["jumbo"] and bool(spec.labels) and not spec.tx_vlan and len(frame) - 14 > 65536


def mpls_type_over_inband_tag(spec: cases.CaseSpec) -> bool:
    """Labels pushed while a tag sits in the bytes (a VLAN device's tag or a first tc tag moved in by a tc push
    before the labels): skb_mpls_push writes the MPLS ethertype at the Ethernet header's type, the tag's TPID,
    so a decoder reads the tag's TCI and type as a label (vectors s3520_076, x_2vlan_mpls_mpls)."""
    if spec.inband_vlans and spec.labels:
        return True  # the frame's own tags (s57_099_inband_vlan)
    tags = len(spec.vlan_pushes) + bool(spec.tx_vlan)
    return bool(tags >= 2 and spec.vlan_pushes and not spec.vlan_after_mpls and spec.labels)


@pytest.mark.skipif(not GENERATED_CASES, reason="no recorded vectors under tests/vectors/kernel/generated")
def test_recorded_vectors_lost_nothing_in_capture_and_kept_the_label_stack() -> None:
    """Every frame veth0 sent reached the capture, and every segment carries the drawn stack, top first."""
    for folder in GENERATED_CASES:
        meta = json.loads((folder / "meta.json").read_text())
        spec = cases.CaseSpec.from_json(meta["random_params"])
        assert meta["tc_error"] is None and meta["capture_drops"] == 0, folder.name
        if meta["sendto_error"]:
            continue  # refused in validate_xmit_skb, which also counts the drop on veth0
        assert meta["veth0_tx_dropped"] == 0, folder.name
        if spec.label_ops or jumbo_header_removed_under_labels(spec) or mpls_type_over_inband_tag(spec):
            continue  # the stack as the operations left it: the vector itself holds what the kernel sent
        expected = [{"label": label, "tc": tc, "s": 0, "ttl": ttl} for label, tc, ttl, _ in reversed(spec.labels)]
        if expected:
            expected[-1]["s"] = 1
        for segment in meta["segments"]:
            assert segment.get("mpls", []) == expected, folder.name


@pytest.mark.skipif(not GENERATED_CASES, reason="no recorded vectors under tests/vectors/kernel/generated")
def test_recorded_software_segments_carry_the_whole_payload_with_valid_checksums() -> None:
    """On a device without offloads every TCP segment is complete: checksums verify, payload adds up."""
    checked = 0
    for folder in GENERATED_CASES:
        meta = json.loads((folder / "meta.json").read_text())
        spec = cases.CaseSpec.from_json(meta["random_params"])
        if meta["sendto_error"] or spec.l4 != "tcp" or not spec.ethtool_veth0.startswith("tx off"):
            continue
        if spec.l4_seed != "pseudo" and spec.vnet_flags & 1:
            continue  # the kernel updates a wrong seed incrementally: wrong checksums, on purpose
        if jumbo_header_removed_under_labels(spec):
            continue
        segments = meta["segments"]
        assert all(s["l4_csum_ok"] for s in segments), folder.name
        assert all(s.get("ip_csum_ok", True) for s in segments), folder.name
        assert sum(s["tcp_paylen"] for s in segments) == spec.paylen, folder.name
        checked += 1
    assert checked >= 10


@pytest.mark.skipif(not GENERATED_CASES, reason="no recorded vectors under tests/vectors/kernel/generated")
def test_recorded_inputs_are_rebuilt_exactly_from_their_parameters() -> None:
    """meta.json's random_params is the whole case: the same frame and virtio_net_hdr come back."""
    for folder in GENERATED_CASES:
        spec = cases.CaseSpec.from_json(json.loads((folder / "meta.json").read_text())["random_params"])
        frame, vnet = cases.build_frame(spec)
        assert wire.read_pcap(folder / "input.pcap") == [frame], folder.name
        assert json.loads((folder / "input_meta.json").read_text())["virtio_net_hdr"] == vnet, folder.name


# -- two generations (6.1, 6.12) ------------------------------------------------------------------
SIX_TWELVE = REPO / "tests" / "vectors" / "kernel" / "6.12"


def test_a_6_12_plan_keeps_6_1s_first_cycle_and_adds_uso_through_virtio() -> None:
    """6.12's cycle is 6.1's 27 slots plus udp_l4, udp_l4, invalid_udp_l4: a 6.1 plan never moves."""
    assert generate.CYCLE_6_12[: len(generate.CYCLE)] == generate.CYCLE
    first = [s.to_json() for s in generate.plan(9, len(generate.CYCLE))]
    assert first == [s.to_json() for s in generate.plan(9, len(generate.CYCLE), generation="6.12")]
    drawn = {s.category for s in generate.plan(9, 5 * len(generate.CYCLE_6_12), generation="6.12")}
    assert "udp_l4" in drawn and {"invalid_udp_l4_" + k for k in generate.USO_INVALID_KINDS} <= drawn
    assert not any(s.category.startswith(("udp_l4", "invalid_udp_l4")) for s in generate.plan(9, 300))


def test_uso_segments_fit_the_veth_mtu() -> None:
    for spec in generate.plan(4, 300, generation="6.12", categories={"udp_l4"}):
        frame, vnet = cases.build_frame(spec)
        segment = vnet["csum_start"] + 8 + min(spec.gso_size, spec.paylen)
        tags = 4 * (len(spec.labels) + len(spec.vlan_pushes) + bool(spec.tx_vlan))
        assert segment + tags <= spec.veth_mtu + 18 and len(frame) - 14 <= 65535, spec.name


def test_kernel_releases_map_to_their_generation() -> None:
    from tools.kernel_oracle import install

    assert install.generation_of_release("6.1.0-56-amd64") == "6.1"
    assert install.generation_of_release("6.12.118+deb12-amd64") == "6.12"
    assert install.generation_of_release("6.12.118+deb12-cloud-amd64") is None
    assert install.GENERATIONS["6.12"].release == "6.12.118+deb12-amd64"


def test_compressed_modules_are_decompressed_for_busybox_insmod(tmp_path: Path) -> None:
    """6.12's modules are .ko.xz; busybox insmod wants plain ELF, so the initramfs holds them decompressed."""
    import lzma

    from tools.kernel_oracle.initramfs import module_bytes

    module = tmp_path / "veth.ko.xz"
    module.write_bytes(lzma.compress(b"\x7fELF module", check=lzma.CHECK_CRC32))
    assert module_bytes(module) == b"\x7fELF module"


def test_a_recorded_vector_replays_as_the_same_injection() -> None:
    from tools.kernel_oracle import replay

    folder = GOLDEN_CASES / "ipv4_tcp_in_vlan_dev_mpls"
    case = replay.guest_case_of(folder, "6.12")
    assert case is not None
    meta = json.loads((folder / "input_meta.json").read_text())
    assert bytes.fromhex(case["frame_hex"]) == wire.read_pcap(folder / "input.pcap")[0]
    assert case["virtio_net_hdr"] == meta["virtio_net_hdr"] and case["tc_action"] == meta["tc_action"]
    assert case["tx_vlan"] == {"id": 7, "protocol": "802.1Q"}
    socket_made = GOLDEN_CASES / "ipv4_udp_uso_socket"
    assert replay.guest_case_of(socket_made, "6.1") is None  # 6.1's virtio header has no UDP_L4
    assert replay.guest_case_of(socket_made, "6.12")["virtio_net_hdr"]["gso_type"] == 5  # type: ignore[index]


def test_ipv6_fragment_ids_are_masked_when_two_kernels_are_compared() -> None:
    from tools.kernel_oracle import replay

    frames = wire.read_pcap(GOLDEN_CASES / "ipv6_udp_ufo" / "kernel_out.pcap")
    changed = bytearray(frames[0])
    offset = 14 + 4 + 40  # Ethernet, one label, the IPv6 header: the fragment header
    assert changed[offset - 40 + 6] == 44
    changed[offset + 4] ^= 0xFF
    assert replay.mask_random_fields(bytes(changed)) == replay.mask_random_fields(frames[0])
    changed[offset + 8] ^= 0xFF  # the UDP header behind it is not masked
    assert replay.mask_random_fields(bytes(changed)) != replay.mask_random_fields(frames[0])


@pytest.mark.skipif(not SIX_TWELVE.exists(), reason="no 6.12 vectors")
def test_6_12_vectors_name_their_kernel_release_and_package() -> None:
    for meta_path in SIX_TWELVE.rglob("meta.json"):
        meta = json.loads(meta_path.read_text())
        assert meta["kernel_release"].startswith("6.12."), meta_path
        assert meta["kernel_package"] == "linux-image-" + meta["kernel_release"], meta_path
        assert meta["kernel_package_version"].startswith("6.12."), meta_path


def test_a_vanished_pin_falls_back_to_the_newest_image_of_its_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from tools.kernel_oracle import install

    listing = ("linux-image-6.12.100+deb12-amd64 - Linux 6.12 for 64-bit PCs (signed)\n"
               "linux-image-6.12.117+deb12-amd64 - Linux 6.12 for 64-bit PCs (signed)\n"
               "linux-image-6.12.117+deb12-cloud-amd64 - Linux 6.12 for x86-64 cloud (signed)\n")

    def fake_run(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 0, stdout=listing, stderr="")

    monkeypatch.setattr(install.subprocess, "run", fake_run)
    assert install.newest_offered(install.GENERATIONS["6.12"]) == "linux-image-6.12.117+deb12-amd64"


@pytest.mark.skipif(ENGINE_MISSING is not None, reason=ENGINE_MISSING or "")
def test_ipv6_fragment_id_is_read_from_the_bytes_where_the_decode_stopped_at_an_s_bit() -> None:
    """s3314_129: a push after a pop to IPv6 sets S on a label with one more below, so the capture's decoder
    records no frag6; the identification the kernel drew is then read from its first frame."""
    from softgso.check.golden import ipv6_frag_id_of, load_case

    case = load_case(GENERATED / "s3314_129_label_ops")
    assert not any("frag6" in segment for segment in case.meta["segments"])
    frame = case.kernel_frames[0]
    # 14 Ethernet + 4 tag + 8 two labels + 40 IPv6: the Fragment header, its identification 4 bytes in
    assert frame[26] >> 4 == 6 and frame[26 + 6] == 44
    assert ipv6_frag_id_of(case) == int.from_bytes(frame[70:74], "big") != 0
    without = load_case(GOLDEN_CASES / "ipv4_tcp_2labels")
    assert ipv6_frag_id_of(without) == 0
