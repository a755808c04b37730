"""tools/linkio_bench.py --floor (benchmarks/link_floor.c): the frames it times really cross the veth,
in order and all of them, and the TCP stream it times really reaches the TAP as each mode shapes it
(MTU frames cut by the sender's kernel for no-gso, super-packets for sw-gso), and the far edge's GRO
packets reach a TCP socket whole. Root and a C compiler.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import leftovers, root_test

TOOL = Path(__file__).resolve().parents[2] / "tools" / "linkio_bench.py"
FRAMES, BYTES, MSS = 20_000, 8_000_000, 1460


@root_test
@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc) to build benchmarks/link_floor.c")
def test_floor_moves_every_frame_and_byte_and_cleans_up() -> None:
    done = subprocess.run([sys.executable, str(TOOL), "--floor", "--frames", str(FRAMES), "--bytes", str(BYTES),
                           "--json"], capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    methods = {row["method"] for row in result["link"]}
    assert methods == {"mmsg", "mmsg-bypass", "ring", "ring-nobypass", "ring-full", "xdp", "mmsg-1p", "mmsg-bypass-1p",
                       "ring-1p", "ring-full-1p", "xdp-1p"}
    for row in result["link"]:
        # the receiver checks each frame's sequence number; the kernel's counters say nothing was dropped
        assert (row["received"], row["out_of_order"], row["tx_dropped"], row["rx_dropped"]) == (FRAMES, 0, 0, 0), row
        assert row["cpu_us_per_frame"] > 0
    modes = {row["mode"]: row for row in result["tap"]}
    assert set(modes) == {"no-gso", "sw-gso", "sw-gso-sum", "far-edge"}
    for row in modes.values():
        assert row["received"] == BYTES, row
    # no offloads: the sender's kernel cut the stream into MSS-sized frames, none bigger
    assert modes["no-gso"]["super_packets"] == 0
    assert modes["no-gso"]["packets"] >= BYTES // MSS
    # TSO offered: the TAP handed over super-packets, far fewer reads than MTU frames
    for mode in ("sw-gso", "sw-gso-sum"):
        assert modes[mode]["super_packets"] > 0
        assert modes[mode]["reads"] * 4 < BYTES // MSS
    # the far edge: the receiving host's TCP took every byte, written as GRO packets of 44 segments
    assert modes["far-edge"]["packets"] >= BYTES // (44 * MSS)
    bound = result["bound"]
    assert bound["frames_per_gb"] == round(1e9 / MSS)
    assert bound["sw_over_no_bound"] == round(bound["no_gso_cpu_s_per_gb"] / bound["sw_gso_cpu_s_per_gb"], 2)
    namespaces = [line for line in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                                  check=True).stdout.splitlines() if line.startswith("sgso-lb")]
    assert namespaces == [], namespaces
    assert leftovers()[0] == []
