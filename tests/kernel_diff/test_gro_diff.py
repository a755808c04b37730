"""softgso's GRO agrees with real Linux 6.1 and 6.12 receive paths on a bounded random set (kernel in the loop).

The receive-side counterpart of test_tunnel_diff.py: each generation's kernel boots once in QEMU, COUNT
random cases of the fixed SEED (1-2 bursts of 1-4 interleaved TCP flows, IPv4 or IPv6, tagged or not,
with changes where GRO's flush rules look), and the first 64 frames of each real capture of ../shared,
are injected into a veth whose receiving end runs GRO, and
softgso coalesces each case's frames as tests/gro/test_gro_vectors.py replays the designed vectors.
Needs root (apt-get installs QEMU and the kernels); skipped with the reason otherwise. The deep run is
`make kernel-diff-gro N= SEED= KERNEL=`.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools.kernel_oracle import cli, gro_cases  # noqa: E402
from tools.kernel_oracle.install import InstallError  # noqa: E402

SEED = 3
COUNT = 12  # per generation: one batch after a 10-30 s boot
# and the first poll (64 injectable frames) of each real capture of ../shared (written by other projects'
# tools: traffic nobody designed for GRO, MPLS, LLDP and loopback frames between IP ones), when it is here
CAPTURES = REPO.parent / "shared" / "captures"
CAPTURE_FRAMES = 64
WORK = REPO / "out" / "kernel-diff" / "ci-gro"


@pytest.mark.root
@pytest.mark.timeout(900)
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: apt-get installs QEMU and the kernels")
@pytest.mark.parametrize("generation", ["6.1", "6.12"])
def test_softgso_gro_agrees_with_the_kernel_on_random_cases(generation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the oracle keeps its scratch under out/
    try:
        cli.setup()
    except InstallError as error:
        pytest.skip(f"cannot install QEMU and the kernels (no network to the Debian archive?): {error}")
    out = WORK / generation
    shutil.rmtree(out, ignore_errors=True)
    cases = gro_cases.random_cases(SEED, COUNT)
    captures = sorted(CAPTURES.rglob("*.pcap*")) if CAPTURES.is_dir() else []
    capture_cases, _ = gro_cases.capture_cases(captures, CAPTURE_FRAMES)
    assert len(capture_cases) >= len(captures) * 3 // 4  # most captures have Ethernet frames to inject
    if capture_cases:  # one case, a burst (a poll, flushed at its end) per capture: one veth set-up, not 55
        cases.append(gro_cases.GroCase("capture_first_polls", [case.bursts[0] for case in capture_cases],
                                       "bursts: " + ", ".join(case.name for case in capture_cases)))
    assert gro_cases.record(out, generation, None, cases) == len(cases)
    folders = sorted(p.parent for p in out.rglob("meta.json"))
    assert len(folders) == len(cases)
    # not vacuous: the kernel merged segments in most random cases (a case it only passed up proves little)
    merged = [f.name for f in folders if not f.name.startswith("capture_")
              and len(gro_cases._read_pcap(f / "kernel_out.pcap")) < len(gro_cases._read_pcap(f / "input.pcap"))]
    assert len(merged) >= COUNT // 2, f"the kernel coalesced in only {merged}"
    if capture_cases:  # and in the captures' first polls, traffic nobody designed for it
        captured = out / generation / "capture_first_polls"
        assert len(gro_cases._read_pcap(captured / "kernel_out.pcap")) < len(gro_cases._read_pcap(captured / "input.pcap"))
    problems = {folder.name: gro_cases.compare(folder) for folder in folders}
    disagreements = {name: problem for name, problem in problems.items() if problem is not None}
    assert not disagreements, f"softgso's GRO disagrees with {generation} (cases kept in {out}):\n" + \
        "\n".join(f"{name}: {problem}" for name, problem in disagreements.items())
