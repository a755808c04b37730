"""``segment --tunnel-port`` through the bulk stream: FOU, GUE and VXLAN-GPE super-packets as real kernels built them.

FOU and GUE have no port of their own, so a run that segments them names one (``--tunnel-port
fou:P``); the bulk stream takes such runs like any other: super-packets by a plan learnt from the
scalar path, and short frames classified in bulk unless they go to a tunnel's port, one of
``--tunnel-port``'s included (those are the scalar path's: their inner checksum state counts). The
kernel decides the expected bytes (tests/vectors/kernel/tunnels: ``kernel_out.pcap``); for longer
runs the expectation is the scalar path, itself held to those vectors
(tests/vectors/test_tunnel_vectors.py). Both primitives, pcap and pcapng inputs.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from cli_captures import write_pcap, write_pcapng
from test_segment_bulk import _bulk_engines, run_cli

from softgso.check.golden import read_pcap_frames
from softgso.checksum import ipv4_header_checksum
from softgso.io import open_capture
from softgso.virtio import kernel_generation_of_release

TUNNELS = Path(__file__).resolve().parents[1] / "vectors" / "kernel" / "tunnels"


def _meta(case: Path) -> dict:
    return json.loads((case / "meta.json").read_text())


# every segmented FOU, GUE and VXLAN-GPE vector of both kernels (FOU/GUE name their port in the meta;
# VXLAN-GPE has its own, 4790, given here as --tunnel-port too: a user port may repeat a known one)
CASES = sorted(case.parent for case in TUNNELS.rglob("meta.json")
               if "control" not in case.parent.name
               and (_meta(case.parent).get("softgso_tunnel_ports") or case.parent.name.startswith("gpe")))
IDS = [str(case.relative_to(TUNNELS)) for case in CASES]
GPE_PORT = ("vxlan-gpe:4790",)


def _options(meta: dict, gso_size: bool = True) -> list[str]:
    """The case's options as the command line takes them (what tests/vectors/test_tunnel_vectors.py tells
    the engine): device profile, gso_size (else the MTU's), kernel generation, USO, and the tunnel ports."""
    options = ["--device", meta["softgso_profile"], "--kernel", kernel_generation_of_release(meta["kernel_release"])]
    if gso_size:
        options += ["--gso-size", str(meta["gso_size"])]
    if meta["inner_gso_type"] == "udp_l4":
        options += ["--udp-gso", "udp_l4"]
    for port in meta.get("softgso_tunnel_ports") or GPE_PORT:
        options += ["--tunnel-port", port]
    return options


def _frames(path: Path) -> list[bytes]:
    with open_capture(path) as reader:
        return [bytes(record.data) for record in reader]


def _run(source: Path, target: Path, engine: str, options: list[str]) -> dict:
    done = run_cli("segment", source, target, "--json", "--engine", engine, *options)
    assert done.exit_code == 0, done.stderr
    return json.loads(done.stdout)


def test_the_cases_are_there() -> None:
    names = {case.name.split("_")[0] for case in CASES}
    assert names >= {"fou", "gue", "fou6", "gue6", "gpe4", "gpe6"}
    assert len(CASES) >= 2 * (26 + 6)  # 26 FOU/GUE and 6 VXLAN-GPE super-packets per kernel


@pytest.fixture(params=_bulk_engines())
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("container", ["pcap", "pcapng"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_bulk_stream_writes_the_kernels_segments(case: Path, container: str, engine: str,
                                                     tmp_path: Path) -> None:
    """The vector's super-packet, alone in its capture, leaves the bulk stream as the kernel sent it,
    segmented by a plan (not handed to the scalar path)."""
    meta = _meta(case)
    supers = read_pcap_frames(case / "input.pcap")
    expected = read_pcap_frames(case / "kernel_out.pcap")
    if container == "pcap":
        source = write_pcap(tmp_path / "in.pcap", supers)
    else:
        source = write_pcapng(tmp_path / "in.pcapng", [(1, "eth0")], [(0, frame, None) for frame in supers])
    target = tmp_path / f"out.{container}"
    summary = _run(source, target, engine, _options(meta))
    assert _frames(target) == expected
    assert summary["engine"] == {"name": engine, "records_in_bulk": 1, "records_one_by_one": 0}


def _variants(frame: bytes, count: int) -> list[bytes]:
    """``count`` frames of the super-packet's shape: the last 64 payload bytes changed (so each packet's
    inner checksum differs), everything else as the kernel built it."""
    out = []
    for index in range(count):
        data = bytearray(frame)
        data[-64:] = bytes((b + index) & 0xFF for b in data[-64:])
        out.append(bytes(data))
    return out


@pytest.mark.parametrize("container", ["pcap", "pcapng"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_runs_and_short_tunnel_frames_as_the_scalar_path(case: Path, container: str, engine: str,
                                                         tmp_path: Path) -> None:
    """Runs of the super-packet's shape, between them the kernel's own segments (short frames to the
    tunnel's port, FOU/GUE's given by --tunnel-port) and a short plain UDP frame to another port: the
    same bytes and the same summary as the scalar path, the runs taken in bulk, the short tunnel
    frames one by one (their inner checksum state is what the summary counts). gso_size from the MTU:
    with --gso-size no frame is short enough to be classified in bulk (softgso.bulk.stream.short_frames)."""
    meta = _meta(case)
    super_packet = read_pcap_frames(case / "input.pcap")[0]
    segments = read_pcap_frames(case / "kernel_out.pcap")
    plain = _plain_udp()
    frames = [*_variants(super_packet, 12), *segments, plain, *_variants(super_packet, 12)[::-1], plain, *segments]
    if container == "pcap":
        source = write_pcap(tmp_path / "in.pcap", frames)
    else:
        source = write_pcapng(tmp_path / "in.pcapng", [(1, "eth0")], [(0, frame, None) for frame in frames])
    options = _options(meta, gso_size=False)
    bulk = _run(source, tmp_path / f"bulk.{container}", engine, options)
    scalar = _run(source, tmp_path / f"scalar.{container}", "scalar", options)
    assert (tmp_path / f"bulk.{container}").read_bytes() == (tmp_path / f"scalar.{container}").read_bytes()
    for volatile in ("seconds", "output"):
        bulk.pop(volatile)
        scalar.pop(volatile)
    bulk_path, scalar_path = bulk.pop("engine"), scalar.pop("engine")
    assert bulk == scalar
    assert bulk["outcomes"]["segmented"] == 24
    assert scalar_path == {"name": "scalar", "records_in_bulk": 0, "records_one_by_one": len(frames)}
    # the 24 super-packets by a plan, the plain frames classified in bulk; the tunnel segments one by one
    assert bulk_path == {"name": engine, "records_in_bulk": 26, "records_one_by_one": 2 * len(segments)}


def _plain_udp() -> bytes:
    """A short UDP/IPv4 frame to a port no tunnel has, its UDP checksum 0 (the bulk code classifies it)."""
    body = bytes(range(100))
    udp = struct.pack("!HHHH", 40000, 9999, 8 + len(body), 0) + body
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0x4000, 64, 17, 0,
                                   bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])))
    header[10:12] = ipv4_header_checksum(bytes(header)).to_bytes(2, "big")
    return bytes.fromhex("020000000002020000000001") + b"\x08\x00" + bytes(header) + udp
