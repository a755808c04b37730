"""Options the way tc, ovs-ofctl and tcprewrite users type them (issue 21, part A).

One rule for label order: a list (``push-mpls --label 100 --label 200``, ``--labels 100,200``,
``--action push-mpls:100/200``) is a stack written top first, as tcpdump prints it; repeated
``--action push-mpls:L`` are successive tc actions, each pushed on top. Every other spelling (tc's
words, Open vSwitch's names and ethertypes, 802.1Q/802.1ad) writes the same bytes as softgso's own.
Label stacks are checked by decoding the output's 4-byte entries here, not with softgso's decoder.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from cli_captures import mixed_capture, write_pcap
from conftest import run_cli

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "mpls_tcp_super.pcap"
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "kernel" / "cases"
ETH_P_MPLS_UC, ETH_P_MPLS_MC = 0x8847, 0x8848
VLAN_TPIDS = (0x8100, 0x88A8)


# --- an independent reading of the output --------------------------------------------------------


def pcap_frames(path: Path) -> list[bytes]:
    """The records of a classic little-endian pcap (as softgso writes what it read)."""
    data = path.read_bytes()
    assert struct.unpack_from("<I", data)[0] in (0xA1B2C3D4, 0xA1B23C4D)
    frames, at = [], 24
    while at < len(data):
        caplen = struct.unpack_from("<I", data, at + 8)[0]
        frames.append(data[at + 16 : at + 16 + caplen])
        at += 16 + caplen
    return frames


def label_stack(frame: bytes) -> tuple[int, list[tuple[int, int, int, int]]]:
    """(ethertype, [(label, tc, S, ttl), ...] top first) read straight from the bytes (RFC 3032)."""
    at, ethertype = 14, int.from_bytes(frame[12:14], "big")
    while ethertype in VLAN_TPIDS:
        ethertype, at = int.from_bytes(frame[at + 2 : at + 4], "big"), at + 4
    entries: list[tuple[int, int, int, int]] = []
    if ethertype in (ETH_P_MPLS_UC, ETH_P_MPLS_MC):
        while True:
            (word,) = struct.unpack_from("!I", frame, at)
            entries.append((word >> 12, word >> 9 & 7, word >> 8 & 1, word & 0xFF))
            at += 4
            if word >> 8 & 1:
                break
    return ethertype, entries


def ip_frames(tmp_path: Path) -> Path:
    """IPv4 and IPv6 frames without labels (ARP left out: a label stack on ARP is no IP packet)."""
    frames = [frame for frame in mixed_capture() if frame[12:14] != b"\x08\x06"]
    return write_pcap(tmp_path / "ip.pcap", frames)


# --- several labels: all pushed, in the documented order -----------------------------------------


def test_several_labels_are_one_stack_written_top_first(tmp_path: Path) -> None:
    source = ip_frames(tmp_path)
    out = tmp_path / "out.pcap"
    result = run_cli("push-mpls", source, out, "--label", "100", "--label", "200", "--tc", "1", "--tc", "5",
                     "--ttl", "64", "--ttl", "33")
    assert result.exit_code == 0, result.output
    for frame in pcap_frames(out):
        ethertype, entries = label_stack(frame)
        assert ethertype == ETH_P_MPLS_UC
        # 100 on top, 200 at the bottom, the S bit on the bottom entry only; each its own TC and TTL
        assert entries == [(100, 1, 0, 64), (200, 5, 1, 33)]


def test_labels_go_on_top_of_a_stack_already_there(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    assert run_cli("push-mpls", SAMPLE, out, "--labels", "7,8,9", "-q").exit_code == 0
    before = [label_stack(frame)[1] for frame in pcap_frames(SAMPLE)]
    after = [label_stack(frame)[1] for frame in pcap_frames(out)]
    for old, new in zip(before, after, strict=True):  # the ARP request too: skb_mpls_push labels anything
        assert [entry[0] for entry in new] == [7, 8, 9] + [entry[0] for entry in old]
        assert [entry[2] for entry in new] == [0] * (len(new) - 1) + [1], "S bit on the bottom entry only"
        assert all(entry[3] == 64 for entry in new[:3])


@pytest.mark.parametrize("spelling", [["--labels", "100,200"], ["--label", "100,200"], ["--label", "100/200"],
                                      ["--label", "100", "--labels", "200"]])
def test_every_list_spelling_is_the_same_stack(tmp_path: Path, spelling: list[str]) -> None:
    source = ip_frames(tmp_path)
    ours, theirs = tmp_path / "ours.pcap", tmp_path / "theirs.pcap"
    assert run_cli("push-mpls", source, ours, "--label", "100", "--label", "200", "-q").exit_code == 0
    assert run_cli("push-mpls", source, theirs, *spelling, "-q").exit_code == 0
    assert theirs.read_bytes() == ours.read_bytes()


def test_a_list_is_top_first_and_successive_pushes_put_the_last_on_top(tmp_path: Path) -> None:
    source = ip_frames(tmp_path)
    listed, bottom, stacked = tmp_path / "listed.pcap", tmp_path / "bottom.pcap", tmp_path / "stacked.pcap"
    assert run_cli("push-mpls", source, listed, "--labels", "100,200", "-q").exit_code == 0
    # the same stack by two commands: the bottom label first, then the top one on it
    assert run_cli("push-mpls", source, bottom, "--label", "200", "-q").exit_code == 0
    assert run_cli("push-mpls", bottom, stacked, "--label", "100", "-q").exit_code == 0
    assert listed.read_bytes() == stacked.read_bytes()
    # and in segment's pipeline: --action push-mpls:100/200 = push 200, then push 100
    as_list, as_steps = tmp_path / "as_list.pcap", tmp_path / "as_steps.pcap"
    assert run_cli("segment", source, as_list, "--action", "push-mpls:100/200", "-q").exit_code == 0
    assert run_cli("segment", source, as_steps, "--action", "push-mpls:200", "--action", "push-mpls:100",
                   "-q").exit_code == 0
    assert as_list.read_bytes() == as_steps.read_bytes()
    # (the BIG TCP jumbogram is refused under labels on 6.1, as the kernel refuses it: it leaves as it
    # came, docs/kernel-notes.md difference 4)
    stacks = {tuple(e[0] for e in label_stack(f)[1]) for f in pcap_frames(as_list)}
    assert stacks - {()} == {(100, 200)}


def test_one_tc_and_ttl_apply_to_every_label(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    assert run_cli("push-mpls", ip_frames(tmp_path), out, "--labels", "16,17,18", "--tc", "3", "--ttl", "9",
                   "-q").exit_code == 0
    for frame in pcap_frames(out):
        assert label_stack(frame)[1] == [(16, 3, 0, 9), (17, 3, 0, 9), (18, 3, 1, 9)]


@pytest.mark.parametrize("counts", [["--ttl", "1,2"], ["--tc", "1", "--tc", "2", "--tc", "3", "--tc", "4"]])
def test_per_label_values_must_match_the_labels_or_be_one(tmp_path: Path, counts: list[str]) -> None:
    result = run_cli("push-mpls", SAMPLE, tmp_path / "out.pcap", "--labels", "100,200,300", *counts)
    assert result.exit_code == 2
    assert "for 3 labels: give one" in result.stderr and "one per label" in result.stderr
    assert not (tmp_path / "out.pcap").exists()


def test_label_3_anywhere_in_the_stack_is_refused(tmp_path: Path) -> None:
    result = run_cli("push-mpls", SAMPLE, tmp_path / "out.pcap", "--labels", "100,3")
    assert result.exit_code == 2 and "implicit null" in result.stderr


def test_the_summary_names_the_stack_as_pushed(tmp_path: Path) -> None:
    result = run_cli("push-mpls", SAMPLE, tmp_path / "out.pcap", "--labels", "100,200", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["action"] == "push-mpls:100/200:0:64:uc"


# --- the spellings users know write our bytes ----------------------------------------------------


def same_output(tmp_path: Path, source: Path, ours: list[str], theirs: list[str]) -> None:
    a, b = tmp_path / "ours.pcap", tmp_path / "theirs.pcap"
    first, second = run_cli(*ours[:1], source, a, *ours[1:], "-q"), run_cli(*theirs[:1], source, b, *theirs[1:], "-q")
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert b.read_bytes() == a.read_bytes(), theirs


@pytest.mark.parametrize(("ours", "theirs"), [
    ("push-mpls:100:0:64:uc", "mpls push label 100 tc 0 ttl 64"),
    ("push-mpls:100:0:64:uc", "action mpls push protocol mpls_uc label 100 tc 0 ttl 64 pipe"),
    ("push-mpls:100:3:9:mc", "mpls push protocol mpls_mc label 100 tc 3 ttl 9"),
    ("push-mpls:100:3:9:mc", "mpls push ttl 9 tc 3 label 100 protocol MPLS_MC"),  # any order, any case
    ("push-mpls:100:0:255:uc", "mpls push label 100"),  # act_mpls's default TTL
    ("push-mpls:100:0:64:mc", "push-mpls:100:0:64:0x8848"),  # Open vSwitch's ethertype
    ("push-mpls:100:0:64:uc", "push-mpls:100:0:64:mpls_uc"),
    ("push-mpls:100:0:64:uc", "push_mpls:100:0:64:uc"),
    ("push-vlan:100:0:8021q", "vlan push id 100 priority 0 protocol 802.1Q"),
    ("push-vlan:100:0:8021q", "vlan push id 100"),
    ("push-vlan:1000:3:8021ad", "vlan push protocol 802.1ad id 1000 priority 3"),
    ("push-vlan:1000:3:8021ad", "push-vlan:1000:3:802.1ad"),
    ("push-vlan:1000:3:8021ad", "push-vlan:1000:3:0x88a8"),
    ("push-vlan:42:0:8021q", "push-vlan:42:0:802.1Q"),
])
def test_a_push_in_any_spelling_writes_our_bytes(tmp_path: Path, ours: str, theirs: str) -> None:
    source = ip_frames(tmp_path)
    same_output(tmp_path, source, ["segment", "--action", ours], ["segment", "--action", theirs])


@pytest.mark.parametrize(("ours", "theirs"), [
    ("pop-mpls:ipv4", "mpls pop protocol ipv4"),
    ("pop-mpls:ipv4", "mpls pop protocol ip"),
    ("pop-mpls:ipv4", "pop_mpls:0x0800"),
    ("set-mpls:5::", "mpls modify label 5"),
    ("set-mpls:7:2:9", "mpls modify ttl 9 label 7 tc 2"),
    ("set-mpls:5::", "set_mpls_label:5"),
    ("set-mpls::6:", "set_mpls_tc:6"),
    ("set-mpls:::9", "set_mpls_ttl:9"),
    ("dec-ttl", "mpls dec_ttl"),
    ("dec-ttl", "dec_mpls_ttl"),
    ("pop-vlan", "vlan pop"),
    ("pop-vlan", "strip_vlan"),
    ("pop-vlan", "pop_vlan"),
])
def test_the_other_actions_in_any_spelling_write_our_bytes(tmp_path: Path, ours: str, theirs: str) -> None:
    labelled = tmp_path / "labelled.pcap"  # MPLS (and a VLAN tag) for the actions to work on
    assert run_cli("segment", ip_frames(tmp_path), labelled, "--action", "push-mpls:100:1:64",
                   "--action", "push-vlan:42", "-q").exit_code == 0
    same_output(tmp_path, labelled, ["segment", "--action", ours], ["segment", "--action", theirs])


@pytest.mark.parametrize(("ours", "theirs"), [
    (["--multicast"], ["--ethertype", "mc"]),
    (["--multicast"], ["--ethertype", "0x8848"]),
    (["--multicast"], ["--ethertype", "mpls_mc"]),
    ([], ["--ethertype", "0x8847"]),
    ([], ["--ethertype", "MPLS_UC"]),
])
def test_push_mpls_ethertype_spellings(tmp_path: Path, ours: list[str], theirs: list[str]) -> None:
    same_output(tmp_path, ip_frames(tmp_path), ["push-mpls", "--label", "100", *ours],
                ["push-mpls", "--label", "100", *theirs])


@pytest.mark.parametrize("proto", ["802.1Q", "802.1ad", "0x8100", "0x88a8", "802.1AD"])
def test_push_vlan_protocol_spellings(tmp_path: Path, proto: str) -> None:
    ours = "8021ad" if proto.lower() in ("802.1ad", "0x88a8") else "8021q"
    same_output(tmp_path, SAMPLE, ["push-vlan", "--vid", "42", "--proto", ours],
                ["push-vlan", "--vid", "42", "--protocol", proto])


KERNEL_CASES = [case for case in sorted(VECTORS.glob("*/input_meta.json"))
                if "virtio_net_hdr_bytes_le" in json.loads(case.read_text())
                and "mpls push" in json.loads(case.read_text()).get("tc_action", "")
                and "." not in str(json.loads(case.read_text()).get("tx_device") or "")][:12]


@pytest.mark.parametrize("meta_path", KERNEL_CASES, ids=[p.parent.name for p in KERNEL_CASES])
def test_tc_filter_actions_typed_as_tc_writes_them_reproduce_the_kernel(tmp_path: Path, meta_path: Path) -> None:
    """The case's own tc command line, word for word, one --action per tc action: the kernel's bytes."""
    meta = json.loads(meta_path.read_text())
    if json.loads((meta_path.parent / "meta.json").read_text()).get("sendto_error"):
        pytest.skip("the kernel refused this case")
    args = []
    for chunk in meta["tc_action"].split("action")[1:]:
        args += ["--action", "action" + chunk.rstrip()]
    ethtool = str(meta.get("ethtool_veth0") or meta.get("ethtool_veth0_runB"))
    device = "tso" if ethtool.startswith("tx on tso on") else "csum" if ethtool.startswith("tx on") else "no-offload"
    out = tmp_path / "out.pcap"
    result = run_cli("segment", meta_path.parent / "input.pcap", out, "--vnet-hdr", meta["virtio_net_hdr_bytes_le"],
                     "--device", device, "--mtu", str(meta.get("veth_mtu") or 1500), *args, "-q")
    assert result.exit_code == 0, result.output
    assert pcap_frames(out) == pcap_frames(meta_path.parent / "kernel_out.pcap")


def test_the_kernels_two_label_stack_as_a_list_top_first(tmp_path: Path) -> None:
    """tc pushed 100 then 200 (200 on top): the list that writes it is 200/100."""
    case = VECTORS / "ipv4_tcp_2labels"
    meta = json.loads((case / "input_meta.json").read_text())
    assert meta["tc_action"].index("label 100") < meta["tc_action"].index("label 200")
    out = tmp_path / "out.pcap"
    assert run_cli("segment", case / "input.pcap", out, "--vnet-hdr", meta["virtio_net_hdr_bytes_le"],
                   "--action", "push-mpls:200/100:5/0:33/64", "-q").exit_code == 0
    assert pcap_frames(out) == pcap_frames(case / "kernel_out.pcap")
    assert {tuple(label_stack(frame)[1]) for frame in pcap_frames(out)} == {((200, 5, 0, 33), (100, 0, 1, 64))}


# --- a bad spelling is a usage error that names the accepted forms -------------------------------


@pytest.mark.parametrize(("action", "named"), [
    ("frobnicate", ["push-mpls:LABEL", "mpls push [protocol mpls_uc|mpls_mc] label L", "pop_mpls:ETHERTYPE"]),
    ("mpls push tc 1", ["label is required", "mpls push [protocol mpls_uc|mpls_mc] label L"]),
    ("mpls pop", ["protocol must be set", "mpls pop protocol ipv4|ipv6"]),
    ("mpls push label 100 ttl 0", ["ttl 0 out of range 1..255"]),
    ("mpls push label 100 bos 1", ["bos is not supported"]),
    ("mpls push label 100 drop", ["control 'drop'", "pipe"]),
    ("mpls push label 100 protocol ipv4", ["must be an MPLS type", "mpls_uc or mpls_mc (tc)"]),
    ("vlan push id 5 protocol 802.1x", ["802.1Q or 802.1ad (tc)", "8021q or 8021ad (softgso)", "0x8100 or 0x88a8"]),
    ("vlan modify id 5", ["vlan modify is not supported"]),
    ("push-vlan:5:0:8021x", ["802.1Q or 802.1ad (tc)", "8021q or 8021ad (softgso)"]),
    ("push-mpls:100:0:64:bc", ["uc or mc (softgso), mpls_uc or mpls_mc (tc), 0x8847 or 0x8848"]),
    # Open vSwitch's push_mpls:ETHERTYPE would read as label 0x8847 = 34887: never pushed silently
    ("push_mpls:0x8847", ["Open vSwitch's push_mpls:ETHERTYPE", "push-mpls:LABEL"]),
    ("push-mpls:0x8848", ["Open vSwitch's push_mpls:ETHERTYPE"]),
    ("push_vlan:0x8100", ["Open vSwitch's push_vlan:ETHERTYPE", "push-vlan:VID"]),
    ("dec_ttl", ["IP TTL", "dec_mpls_ttl", "'mpls dec_ttl'"]),
    ("push-mpls:100/200:0:64/63/62", ["3 TTL values for 2 labels"]),
])
def test_a_bad_spelling_is_a_usage_error_naming_the_accepted_forms(tmp_path: Path, action: str,
                                                                   named: list[str]) -> None:
    out = tmp_path / "out.pcap"
    result = run_cli("segment", SAMPLE, out, "--action", action)
    assert result.exit_code == 2, result.output
    for words in named:
        assert words in result.stderr, (words, result.stderr)
    assert not out.exists()


def test_the_label_34887_in_decimal_is_still_a_label(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    assert run_cli("push-mpls", ip_frames(tmp_path), out, "--label", "34887", "-q").exit_code == 0
    assert {label_stack(frame)[1][0][0] for frame in pcap_frames(out)} == {34887}


@pytest.mark.parametrize(("command", "named"), [
    (["push-vlan", "--vid", "5", "--proto", "802.1x"], ["8021q", "802.1q", "802.1ad", "0x88a8"]),
    (["push-mpls", "--label", "5", "--ethertype", "0x0800"], ["uc or mc (softgso)", "0x8847 or 0x8848"]),
    (["push-mpls", "--label", "5", "--ethertype", "uc", "--multicast"], ["disagree"]),
    (["push-mpls", "--label", "x"], ["label 'x' is not a number"]),
])
def test_bad_option_values_of_the_action_commands(tmp_path: Path, command: list[str], named: list[str]) -> None:
    result = run_cli(command[0], SAMPLE, tmp_path / "out.pcap", *command[1:])
    assert result.exit_code == 2
    for words in named:
        assert words in result.stderr, (words, result.stderr)


def test_help_says_which_spelling_is_whose_and_the_order() -> None:
    push_mpls = " ".join(run_cli("push-mpls", "--help").stdout.split())
    assert "top first" in push_mpls and "100 on top, 200 at the bottom" in push_mpls
    assert "mpls_uc or mpls_mc (tc's protocol)" in push_mpls and "push_mpls:ETHERTYPE" in push_mpls
    push_vlan = " ".join(run_cli("push-vlan", "--help").stdout.split())
    assert "8021q or 8021ad (softgso's), 802.1Q or 802.1ad (tc's" in push_vlan
    segment = " ".join(run_cli("segment", "--help").stdout.split())
    assert "mpls push label L" in segment and "successive tc actions" in segment and "top first" in segment
