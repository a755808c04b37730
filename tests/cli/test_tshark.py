"""tshark (Wireshark's decoder, from Debian; ``make sysdeps`` installs it) reads segment's output:
no malformed packet, no bad IPv4 / TCP / UDP checksum, MPLS decoded down to TCP."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cli_captures import mixed_capture, sll2, write_pcap, write_pcapng
from conftest import run_cli

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "mpls_tcp_super.pcap"
TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (run `make sysdeps` as root)")

CHECKS = ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"]
# Expert severity "Error" (0x00800000): malformed packets and bad checksums are both errors.
PROBLEMS = "_ws.malformed || _ws.expert.severity >= 0x00800000 || ip.checksum.status == 0 " \
           "|| tcp.checksum.status == 0 || udp.checksum.status == 0"


def tshark(path: Path, *args: str) -> list[str]:
    """tshark's one-line-per-packet output for ``path`` with checksum validation on."""
    assert TSHARK is not None
    done = subprocess.run([TSHARK, "-n", "-r", str(path), *CHECKS, *args], capture_output=True, text=True,
                          timeout=120, check=True)
    return [line for line in done.stdout.splitlines() if line.strip()]


def assert_tshark_finds_no_problem(path: Path) -> None:
    """No malformed packet, no bad checksum, in any layer tshark dissects."""
    problems = tshark(path, "-Y", PROBLEMS)
    assert problems == [], "\n".join(problems[:10])


def test_sample_segmented_through_mpls_decodes_clean(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    assert run_cli("segment", SAMPLE, out, "--device", "nic-tso-no-mpls-gso", "-q").exit_code == 0
    assert_tshark_finds_no_problem(out)
    layers = tshark(out, "-T", "fields", "-e", "frame.protocols", "-e", "tcp.checksum.status", "-Y", "mpls")
    assert len(layers) > 40
    for line in layers:
        protocols, status = line.split("\t")
        assert ":mpls:" in protocols and ":tcp" in protocols, protocols
        assert status == "1", line  # Good


def test_sample_with_pushed_labels_and_vlan_decodes_clean(tmp_path: Path) -> None:
    # the sample's IP packets only: a label pushed on its ARP request is right (tc and OVS label
    # any frame) but leaves tshark guessing what follows the label, and it guesses wrong
    from softgso.check.golden import read_pcap_frames

    ip_only = write_pcap(tmp_path / "ip.pcap", [f for f in read_pcap_frames(SAMPLE) if f[12:14] != b"\x08\x06"])
    out = tmp_path / "out.pcap"
    result = run_cli("segment", ip_only, out, "--action", "push-mpls:1000:5:64:uc", "--action",
                     "push-vlan:42:3:8021q", "-q")
    assert result.exit_code == 0, result.stderr
    assert_tshark_finds_no_problem(out)
    vids = tshark(out, "-T", "fields", "-e", "vlan.id", "-e", "mpls.label", "-Y", "tcp")
    assert vids and all(line.startswith("42\t1000") for line in vids), vids[:3]


@pytest.mark.parametrize("container", ["pcap", "pcapng-sll2"])
def test_sending_host_capture_decodes_clean(tmp_path: Path, container: str) -> None:
    frames = mixed_capture()
    if container == "pcap":
        source, out = write_pcap(tmp_path / "in.pcap", frames), tmp_path / "out.pcap"
    else:
        source = write_pcapng(tmp_path / "in.pcapng", [(276, "any")], [(0, sll2(f), "c") for f in frames])
        out = tmp_path / "out.pcapng"
    assert run_cli("segment", source, out, "-q").exit_code == 0
    assert_tshark_finds_no_problem(out)
    # and tshark does see the input's partial checksums as bad: the check is live
    assert tshark(source, "-Y", "tcp.checksum.status == 0")
