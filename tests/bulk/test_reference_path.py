"""The reference path imports nothing of the fast path: the scalar engine runs without softgso.bulk.

The bulk paths repeat what the scalar engine decides (softgso.bulk.fastpath), never the other way
round; the scalar engine's own compiled sums (softgso._checksum) belong to softgso.checksum.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from softgso import checksum
from softgso.check.synth import SuperPacketSpec, TunnelSpec, build_frame, encapsulate
from softgso.checksum import ones_sum, ones_sums_of_chunks

SCALAR_SEGMENT = """
import sys
from softgso.features import PROFILES
from softgso.job import SegmentOptions, process_frame

for hex_frame in sys.argv[1:]:
    options = SegmentOptions(device=PROFILES["no-offload"], udp_gso="udp_l4")
    result = process_frame(bytes.fromhex(hex_frame), options)
    assert len(result.frames) > 4, result
print(" ".join(sorted(name for name in sys.modules if name.startswith("softgso.bulk"))))
"""


@pytest.mark.parametrize("no_c", [False, True])
def test_a_scalar_segment_imports_no_bulk_module(no_c: bool) -> None:
    """process_frame segments a TCP, a UDP and a tunnelled super-packet (checksums computed in
    software) in a fresh interpreter: not one softgso.bulk module is loaded."""
    frames = [build_frame(SuperPacketSpec(payload=os.urandom(9000))),
              build_frame(SuperPacketSpec(udp=True, payload=os.urandom(9000))),
              encapsulate(build_frame(SuperPacketSpec(payload=os.urandom(9000))), TunnelSpec(udp_csum=True))]
    env = {name: value for name, value in os.environ.items() if name != "SOFTGSO_NO_C"}
    if no_c:
        env["SOFTGSO_NO_C"] = "1"
    done = subprocess.run([sys.executable, "-c", SCALAR_SEGMENT, *(frame.hex() for frame in frames)],
                          capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == []


def test_chunk_sums_are_ones_sum_of_each_chunk_compiled_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """softgso._checksum's chunk sums (where built) and the pure ones agree with ones_sum, including
    its edges: 0 only for an all-zero chunk, 0xFFFF for any other multiple of 0xFFFF."""
    data = os.urandom(1448 * 7 + 5)
    cases = [(data, size) for size in (1, 2, 3, 7, 8, 1447, 1448)] + [(bytes(4) + b"\xff\xff\x00\x00", 4)]
    for compiled in {checksum._COMPILED, None}:
        monkeypatch.setattr(checksum, "_COMPILED", compiled)
        for chunk, size in cases:
            expected = [ones_sum(chunk[at : at + size]) for at in range(0, len(chunk), size)]
            assert ones_sums_of_chunks(chunk, size) == expected
    assert ones_sums_of_chunks(bytes(4) + b"\xff\xff\x00\x00", 4) == [0, 0xFFFF]



def imported_softgso_modules(stderr: str) -> list[str]:
    """The softgso modules `python -X importtime` reports as imported (printed as they load, so also
    for a command that ends with os._exit)."""
    names = [line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")]
    return [name for name in names if name.startswith("softgso")]


@pytest.mark.parametrize("engine", ["scalar", "auto"])
def test_the_scalar_engine_of_the_command_imports_no_bulk_module(tmp_path: Path, engine: str) -> None:
    """`softgso segment IN OUT --engine scalar` on TSO super-packets writes its segments without
    loading one softgso.bulk module; the same run on the default engine does load them (the check
    sees them)."""
    from cli_captures import write_pcap

    capture, out = tmp_path / "in.pcap", tmp_path / f"{engine}.pcap"
    write_pcap(capture, [build_frame(SuperPacketSpec(payload=os.urandom(9000), seq=seq * 9000)) for seq in range(3)])
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "softgso", "segment", str(capture), str(out),
                           "-q", "--engine", engine], capture_output=True, text=True, check=True)
    modules = imported_softgso_modules(done.stderr)
    assert "softgso.job" in modules
    bulk = [name for name in modules if name.startswith("softgso.bulk")]
    if engine == "scalar":
        assert bulk == []
    else:
        assert "softgso.bulk.pipeline" in bulk
    assert out.stat().st_size > capture.stat().st_size  # 3 super-packets became 21 segments, each with headers
