"""Every action command undone by its inverse gives the original bytes back, record for record."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_captures import ack4, icmp4, tcp4_super, tcp6_jumbogram, udp4, write_pcap, write_pcapng
from conftest import run_cli
from scapy_check import read_packets

IPV4 = [tcp4_super(3000), ack4(), udp4(), icmp4(), tcp4_super(100, partial=False)]
IPV6 = [tcp6_jumbogram(3000, hop_by_hop=False)]


def _roundtrip(tmp_path: Path, frames: list[bytes], steps: list[list[str]], suffix: str = ".pcap") -> list[bytes]:
    if suffix == ".pcapng":
        current = write_pcapng(tmp_path / "in.pcapng", [(1, "eth0")], [(0, f, "kept") for f in frames])
    else:
        current = write_pcap(tmp_path / "in.pcap", frames)
    for number, step in enumerate(steps):
        following = tmp_path / f"step{number}{suffix}"
        result = run_cli(step[0], current, following, *step[1:], "--strict", "-q")
        assert result.exit_code == 0, result.stderr
        current = following
    assert run_cli("diff", tmp_path / f"in{suffix}", current).exit_code == 0
    return [bytes(p) for p in read_packets(current)]


@pytest.mark.parametrize("suffix", [".pcap", ".pcapng"])
def test_push_mpls_then_pop_mpls_gives_the_original(tmp_path: Path, suffix: str) -> None:
    steps = [["push-mpls", "--label", "100", "--tc", "3", "--ttl", "64"], ["pop-mpls", "--ethertype", "ipv4"]]
    assert _roundtrip(tmp_path, IPV4, steps, suffix) == IPV4


def test_two_labels_pushed_and_popped_in_reverse_give_the_original(tmp_path: Path) -> None:
    steps = [["push-mpls", "--label", "100"], ["push-mpls", "--label", "200", "--multicast"],
             ["pop-mpls", "--ethertype", "mpls_uc"], ["pop-mpls", "--ethertype", "ipv4"]]
    assert _roundtrip(tmp_path, IPV4, steps) == IPV4


def test_push_mpls_then_pop_mpls_ipv6(tmp_path: Path) -> None:
    steps = [["push-mpls", "--label", "16"], ["pop-mpls", "--ethertype", "ipv6"]]
    assert _roundtrip(tmp_path, IPV6, steps) == IPV6


def test_set_mpls_then_set_back_gives_the_labelled_original(tmp_path: Path) -> None:
    labelled = tmp_path / "labelled.pcap"
    source = write_pcap(tmp_path / "in.pcap", IPV4)
    assert run_cli("push-mpls", source, labelled, "--label", "100", "--tc", "1", "--ttl", "64", "-q").exit_code == 0
    relabelled, back = tmp_path / "relabelled.pcap", tmp_path / "back.pcap"
    assert run_cli("set-mpls", labelled, relabelled, "--label", "200", "--tc", "5", "--ttl", "9", "-q").exit_code == 0
    assert run_cli("diff", labelled, relabelled).exit_code == 1
    assert run_cli("set-mpls", relabelled, back, "--label", "100", "--tc", "1", "--ttl", "64", "-q").exit_code == 0
    assert run_cli("diff", labelled, back).exit_code == 0


def test_dec_ttl_then_set_ttl_back_gives_the_labelled_original(tmp_path: Path) -> None:
    source = write_pcap(tmp_path / "in.pcap", IPV4)
    labelled, hop, back = tmp_path / "l.pcap", tmp_path / "hop.pcap", tmp_path / "back.pcap"
    assert run_cli("push-mpls", source, labelled, "--label", "100", "--ttl", "64", "-q").exit_code == 0
    assert run_cli("dec-ttl", labelled, hop, "-q").exit_code == 0
    assert {p["MPLS"].ttl for p in read_packets(hop)} == {63}
    assert run_cli("set-mpls", hop, back, "--ttl", "64", "-q").exit_code == 0
    assert run_cli("diff", labelled, back).exit_code == 0


@pytest.mark.parametrize("proto", ["8021q", "8021ad"])
def test_push_vlan_then_pop_vlan_gives_the_original(tmp_path: Path, proto: str) -> None:
    steps = [["push-vlan", "--vid", "42", "--pcp", "5", "--proto", proto], ["pop-vlan"]]
    assert _roundtrip(tmp_path, IPV4 + IPV6, steps) == IPV4 + IPV6


def test_qinq_pushed_then_popped_twice_gives_the_original(tmp_path: Path) -> None:
    steps = [["push-vlan", "--vid", "42"], ["push-vlan", "--vid", "1000", "--proto", "8021ad"], ["pop-vlan"],
             ["pop-vlan"]]
    assert _roundtrip(tmp_path, IPV4, steps) == IPV4


def test_dec_ttl_at_ttl_1_is_refused_and_passed_through(tmp_path: Path) -> None:
    source = write_pcap(tmp_path / "in.pcap", IPV4[:2])
    labelled, out = tmp_path / "l.pcap", tmp_path / "out.pcap"
    assert run_cli("push-mpls", source, labelled, "--label", "100", "--ttl", "1", "-q").exit_code == 0
    result = run_cli("dec-ttl", labelled, out)
    assert result.exit_code == 0
    # frames numbered from 1, as tshark numbers them
    assert "softgso: frame 1: dec-ttl refused" in result.stderr and "softgso: frame 2: dec-ttl refused" in result.stderr
    assert run_cli("diff", labelled, out).exit_code == 0
    assert run_cli("dec-ttl", labelled, out, "--strict", "-q").exit_code == 1
