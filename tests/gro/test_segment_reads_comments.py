"""``segment`` reads the pcapng comment ``coalesce`` writes as the packet's GSO metadata: GRO's output,
segmented without any option, gives the kernel's segments back byte for byte (the MTU alone would give
another gso_size); classic pcap carries no comment and ``segment`` infers as before."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from softgso.cli.commands import main
from softgso.io import open_capture

CASE = Path(__file__).resolve().parents[1] / "vectors" / "kernel" / "cases" / "ipv4_tcp_exact_multiple"


def frames_of(path: Path) -> list[bytes]:
    with open_capture(path) as reader:
        return [bytes(record.data) for record in reader]


def run(*args: str) -> None:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output


def test_segment_uses_the_comment(tmp_path: Path) -> None:
    stack, back = tmp_path / "stack.pcapng", tmp_path / "back.pcapng"
    run("coalesce", str(CASE / "kernel_out.pcap"), str(stack), "--mpls", "-F", "pcapng", "-q")
    assert len(frames_of(stack)) == 1
    run("segment", str(stack), str(back), "-q")
    assert frames_of(back) == frames_of(CASE / "kernel_out.pcap")  # gso_size 1448 from the comment


def test_without_comment_segment_infers_from_the_mtu(tmp_path: Path) -> None:
    stack, back = tmp_path / "stack.pcap", tmp_path / "back.pcap"
    run("coalesce", str(CASE / "kernel_out.pcap"), str(stack), "--mpls", "-q")
    run("segment", str(stack), str(back), "-q")
    assert frames_of(back) != frames_of(CASE / "kernel_out.pcap")  # 1456-byte segments: the MTU's
    assert len(frames_of(back)) == 8
