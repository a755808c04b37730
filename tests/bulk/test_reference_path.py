"""The reference path imports nothing of the fast path: the scalar engine runs without softgso.bulk.

The bulk paths repeat what the scalar engine decides (softgso.bulk.fastpath), never the other way
round; the scalar engine's own compiled sums (softgso._checksum) belong to softgso.checksum.
"""

from __future__ import annotations

import os
import subprocess
import sys

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
