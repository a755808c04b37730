"""softgso agrees with real Linux 6.1 and 6.12 kernels on a bounded random set (kernel in the loop).

Needs root (apt-get, /boot/vmlinuz) and the Debian archive for the first run; skipped with the reason
otherwise. The harness installs QEMU and both pinned kernels itself, boots each kernel once (TCG
unless KVM works), runs its COUNT cases of the fixed SEED (one batch run per generation) and
compares softgso's frames, under that generation's rules, with the kernel's. A disagreement fails
the test and names the minimised reproducer saved under out/kernel-diff/.
Budget: under 10 minutes per generation including the installation (measured here: apt ~80 s for
6.1 and ~60 s for 6.12 on a fresh host, boot 7-25 s, ~1.1 s per case; 6.1's 108 cases ~2 min, 6.12's
60 cases ~1.2 min once the packages are installed).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools.kernel_oracle import cli, compare  # noqa: E402
from tools.kernel_oracle.install import InstallError  # noqa: E402

SEED = 8
COUNTS = {"6.1": 108, "6.12": 60}  # four passes over 6.1's 27-slot cycle; two over 6.12's 30 slots
WORK = REPO / "out" / "kernel-diff" / "ci"
REPRODUCERS = REPO / "out" / "kernel-diff" / "reproducers"
MINIMISED_AT_MOST = 3  # each minimisation costs VM round trips; the rest are saved as recorded


@pytest.mark.root
@pytest.mark.timeout(600)
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: apt-get installs QEMU and the kernel, /boot/vmlinuz-*")
@pytest.mark.parametrize("generation", sorted(COUNTS))
def test_softgso_agrees_with_the_kernel_on_random_cases(generation: str) -> None:
    missing = compare.engine_missing_reason()
    if missing:
        pytest.skip(missing)
    try:
        cli.setup()
    except InstallError as error:
        pytest.skip(f"cannot install QEMU and the kernels (no network to the Debian archive?): {error}")
    report = cli.run_diff(SEED, COUNTS[generation], WORK, REPRODUCERS / generation, kernel=generation,
                          progress=False, minimise_limit=MINIMISED_AT_MOST)
    assert len(report.verdicts) == COUNTS[generation]
    lines = [f"{v.name}: {v.detail}" for v in report.disagreements]
    lines += [f"reproducer: {path}" for path in report.reproducers]
    assert not report.disagreements, f"softgso disagrees with {report.kernel}:\n" + "\n".join(lines)
