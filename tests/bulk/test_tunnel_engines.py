"""Every --engine writes the same bytes for runs of same-shape tunnel super-packets.

The bulk engines learn a plan from the scalar path and keep it only if it reproduces the scalar
output byte for byte; tunnelled shapes must not slip through as their outer protocol. The frames
are the super-packets real kernels built (tests/vectors/kernel/tunnels), each repeated with its
payload and sequence number changed, so the bulk engines see long runs of one shape.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from softgso.check.golden import read_pcap_frames
from softgso.cli.commands import main as softgso_main

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "kernel" / "tunnels" / "6.1"
SHAPES = ["vxlan4_udpcsum_in4_idwrap__tx_off", "geneve6_csum_in4__tso_off", "gretap4_key_csum_in6__tx_off",
          "ipip_in4_dfclear_idwrap__tx_off", "sit_in6__tso_off", "vxlan6_zerocsum_in6__tx_off",
          "vxlan4_nocsum_in6_ecn_cwr__tx_off", "geneve4_options_csum_in4__tx_off", "gre4_key_in4_fin__tso_off",
          "ip6gre_noencap_csum_in6__tx_off", "ip6gretap_csum_in4__tso_off", "ip6tnl_4in6_encaplimit__tx_off",
          "bpf_mpls_in_udp6_3labels__tx_off", "bpf_mpls_in_gre4_1label__tso_off"]
ENGINES = ("scalar", "numpy", "compiled", "auto")


def _variants(frame: bytes, count: int) -> list[bytes]:
    """``count`` frames of the same shape: payload bytes and the inner TCP sequence number changed."""
    out = []
    for index in range(count):
        data = bytearray(frame)
        tail = len(data) - 64
        data[tail:] = bytes((b + index) & 0xFF for b in data[tail:])
        out.append(bytes(data))
    return out


def _write_pcap(path: Path, frames: list[bytes]) -> None:
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for index, frame in enumerate(frames):
            out.write(struct.pack("<IIII", 1700000000 + index, 0, len(frame), len(frame)) + frame)


@pytest.mark.parametrize("shape", SHAPES)
def test_every_engine_gives_the_same_bytes(shape: str, tmp_path: Path) -> None:
    super_packet = read_pcap_frames(VECTORS / shape / "input.pcap")[0]
    source = tmp_path / "in.pcap"
    _write_pcap(source, _variants(super_packet, 40))
    from softgso.bulk import compiled_primitive

    engines = [engine for engine in ENGINES if engine != "compiled" or compiled_primitive.available()]
    outputs = {}
    for engine in engines:
        target = tmp_path / f"{engine}.pcap"
        result = CliRunner().invoke(softgso_main, ["segment", str(source), str(target), "--mtu", "1500",
                                                   "--gso-size", "1000", "--engine", engine, "-q"])
        assert result.exit_code == 0, result.output
        outputs[engine] = read_pcap_frames(target)
    assert len(outputs["scalar"]) > 40
    for engine in engines[1:]:
        assert outputs[engine] == outputs["scalar"], f"--engine {engine} differs from the scalar path"


@pytest.mark.parametrize("shape", SHAPES)
def test_the_bulk_engines_take_the_shape(shape: str) -> None:
    """Not by falling back to the scalar path: the shape has a plan, checked against the scalar output."""
    import dataclasses

    from softgso.bulk.fastpath import FastSegmenter
    from softgso.features import PROFILES
    from softgso.job import SegmentOptions

    options = SegmentOptions(device=dataclasses.replace(PROFILES["no-offload"], mtu=1500), gso_size=1000)
    frames = _variants(read_pcap_frames(VECTORS / shape / "input.pcap")[0], 3)
    fast = FastSegmenter(options)
    plans = {id(fast.plan_for(frame)) for frame in frames}
    assert len(plans) == 1 and fast.plan_for(frames[0]) is not None
