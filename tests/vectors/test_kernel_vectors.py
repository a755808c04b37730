"""Every kernel vector reproduces byte for byte: the kernel's frames, or the kernel's refusal.

Cases are discovered from tests/vectors/kernel/ (any folder with input_meta.json), never listed.
Refusals are told by ``sendto_error`` / an empty kernel_out.pcap, never by a case's name. Each
vector is replayed with the rules of the kernel generation it was recorded on, read from its
meta.json (``kernel_release``, else the first word of ``kernel``): 6.1 for the golden set and
generated/, 6.12 for 6.12/ (the same injections replayed on Linux 6.12, plus its own probes).
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from softgso.check.golden import load_case, read_pcap_frames, recorded_generation, run_case
from softgso.errors import KernelRefusal
from softgso.features import PROFILES

VECTORS = Path(__file__).parent / "kernel"
SHARED_GOLDEN = Path(__file__).parents[3] / "shared" / "golden" / "cases"
CASES = sorted(p.parent for p in VECTORS.rglob("input_meta.json"))
IDS = [str(c.relative_to(VECTORS)) for c in CASES]
REPLAYED_ON_6_12 = VECTORS / "6.12"


def test_vector_set_is_not_empty() -> None:
    assert len(CASES) >= 59


@pytest.mark.parametrize("case_dir", CASES, ids=IDS)
def test_kernel_vector_reproduced(case_dir: Path) -> None:
    case = load_case(case_dir)
    result = run_case(case)
    if case.refused:
        assert not case.kernel_frames
        assert isinstance(result.error, KernelRefusal), f"kernel refused ({case.meta['sendto_error']}), softgso sent"
        assert result.error.reason  # the report says which check refused, in words
        return
    assert result.error is None, f"softgso refused what the kernel sent: {result.error}"
    assert len(result.frames) == len(case.kernel_frames), "segment count differs from the kernel's"
    for index, (ours, kernels) in enumerate(zip(result.frames, case.kernel_frames, strict=True)):
        assert ours == kernels, f"segment {index} differs from the kernel's at byte " + str(
            next(i for i in range(min(len(ours), len(kernels)) + 1) if i >= min(len(ours), len(kernels)) or ours[i] != kernels[i])
        )


def test_vectors_are_replayed_with_the_generation_they_were_recorded_on() -> None:
    """A vector under a 6.12/ folder was recorded on 6.12 and is replayed with its rules; the rest on 6.1."""
    for case_dir in CASES:
        expected = "6.12" if "6.12" in case_dir.relative_to(VECTORS).parts else "6.1"
        assert load_case(case_dir).kernel == expected, case_dir
    assert recorded_generation({"kernel_release": "6.12.118+deb12-amd64"}) == "6.12"
    assert recorded_generation({"kernel": "6.1.0-56-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2"}) == "6.1"


@pytest.mark.skipif(not REPLAYED_ON_6_12.exists(), reason="no 6.12 replays")
def test_every_recorded_vector_was_replayed_on_6_12() -> None:
    """`python -m tools.kernel_oracle replay --kernel 6.12` ran every vector of cases/ and generated/."""
    recorded = {str(c.relative_to(VECTORS)) for c in CASES if c.relative_to(VECTORS).parts[0] in ("cases", "generated")}
    replayed = {str(c.relative_to(REPLAYED_ON_6_12)) for c in CASES if c.is_relative_to(REPLAYED_ON_6_12)}
    missing = {name for name in recorded - replayed if not name.startswith("generated/g_")}
    assert not missing, f"not replayed on 6.12: {sorted(missing)[:10]}"


COMPLETED = sorted(p.parent for p in VECTORS.rglob("kernel_out_csum_completed.pcap"))


@pytest.mark.parametrize("case_dir", COMPLETED, ids=[c.name for c in COMPLETED])
def test_checksums_completed_on_a_device_without_checksum_offload(case_dir: Path) -> None:
    """The derived no-offload output of the USO cases: same segments, checksums completed."""
    case = load_case(case_dir)
    result = run_case(case, PROFILES["no-offload"])
    assert result.error is None
    assert result.frames == read_pcap_frames(case_dir / "kernel_out_csum_completed.pcap")


@pytest.mark.skipif(not SHARED_GOLDEN.exists(), reason="../shared/golden is not beside this checkout")
def test_vector_copy_matches_shared_golden() -> None:
    for source in SHARED_GOLDEN.iterdir():
        copy = VECTORS / "cases" / source.name
        assert copy.is_dir(), f"{source.name} not copied into tests/vectors/kernel/cases"
        match, mismatch, errors = filecmp.cmpfiles(source, copy, [f.name for f in source.iterdir()], shallow=False)
        assert not mismatch and not errors, f"{source.name}: {mismatch or errors} differ from ../shared/golden"
