"""softgso agrees with real Linux 6.1 and 6.12 tunnel devices on a bounded random set (kernel in the loop).

The tunnel counterpart of test_kernel_diff.py: each generation's kernel boots once in QEMU, COUNT
random cases of the fixed SEED (vxlan, geneve, gretap, gre, ip6gre, ipip, sit, ip6tnl and the tc BPF
MPLS-in-UDP/GRE encapsulations, with random inner TCP packets) are sent through real tunnel devices
and softgso segments each recorded super-packet as tests/vectors/test_tunnel_vectors.py replays the designed
ones. Needs root (apt-get installs QEMU, the kernels and clang for the BPF programs); skipped with
the reason otherwise. The deep run is `make kernel-diff-tunnels N= SEED= KERNEL=`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools.kernel_oracle import cli, tunnel_cases  # noqa: E402
from tools.kernel_oracle.install import InstallError  # noqa: E402

SEED = 21
COUNT = 12  # per generation: about 12 x 1-2 s of VM time after a 10-30 s boot
WORK = REPO / "out" / "kernel-diff" / "ci-tunnels"


@pytest.mark.root
@pytest.mark.timeout(900)
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: apt-get installs QEMU, the kernels and clang")
@pytest.mark.parametrize("generation", ["6.1", "6.12"])
def test_softgso_agrees_with_tunnel_devices_on_random_cases(generation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the oracle keeps its scratch and BPF objects under out/
    try:
        cli.setup()
    except InstallError as error:
        pytest.skip(f"cannot install QEMU and the kernels (no network to the Debian archive?): {error}")
    out = WORK / generation
    shutil.rmtree(out, ignore_errors=True)
    written = tunnel_cases.record(out, generation, None, random_seed=SEED, random_count=COUNT)
    assert written == COUNT
    folders = sorted(p.parent for p in out.rglob("meta.json"))
    assert len(folders) == COUNT
    # every random case is a real super-packet: one caught whole on the underlay, cut into two or more
    # (compare() alone would call a case the kernel never segmented agreed)
    shapes = {f.name: json.loads((f / "meta.json").read_text()) for f in folders}
    unsent = {name: (m["super_packets"], m["segments"], m["sendto_error"]) for name, m in shapes.items()
              if m["super_packets"] != 1 or m["segments"] < 2}
    assert not unsent, f"cases the kernel did not take as one super-packet (super-packets, segments, error): {unsent}"
    problems = {folder.name: tunnel_cases.compare(folder) for folder in folders}
    disagreements = {name: problem for name, problem in problems.items() if problem is not None}
    assert not disagreements, f"softgso disagrees with {generation}'s tunnel devices (cases kept in {out}):\n" + \
        "\n".join(f"{name}: {problem}" for name, problem in disagreements.items())
