"""Differential comparison: softgso's output against the kernel's, and minimisation of disagreements.

Agreement means the same frame bytes in the same order, or both refusing. A kernel that sent
nothing without a sendto error (a frame dropped after segmentation) counts as refusing: the sender
observes the same thing, no frame.

softgso is reached only through ``softgso.check.golden`` (``load_case`` / ``run_case``), the same
contract the kernel-vector tests use.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cases import VIRTIO_NET_HDR_GSO_ECN, CaseSpec
from .generate import fit_mtu

ACK = 0x10


@dataclass
class Verdict:
    """The outcome of one case."""

    name: str
    agree: bool
    detail: str
    skipped: bool = False  # the case is no test: tc refused its actions, so the kernel never applied them


def engine_missing_reason() -> str | None:
    """Why softgso's comparison entry point cannot be used, or None when it can."""
    try:
        golden = importlib.import_module("softgso.check.golden")
    except ImportError as error:
        return f"softgso.check.golden is not importable ({error}); cannot compare"
    missing = [name for name in ("load_case", "run_case") if not hasattr(golden, name)]
    return f"softgso.check.golden lacks {', '.join(missing)}" if missing else None


def first_difference(ours: bytes, theirs: bytes) -> int:
    """Index of the first differing byte (the shorter length when one is a prefix of the other)."""
    return next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), min(len(ours), len(theirs)))


def compare_case(case_dir: Path) -> Verdict:
    """Run softgso on a recorded case and judge it against the kernel's frames."""
    golden = importlib.import_module("softgso.check.golden")
    name = case_dir.name
    tc_error = json.loads((case_dir / "meta.json").read_text()).get("tc_error")
    if tc_error:
        return Verdict(name, True, f"skipped, tc refused the actions: {tc_error}", skipped=True)
    try:
        case = golden.load_case(case_dir)
        result = golden.run_case(case)
    except (ImportError, SyntaxError):
        raise  # a half-edited tree, not softgso's answer: stop rather than "minimise" every case
    except Exception as error:  # a crash is a disagreement, reported, not a harness failure
        return Verdict(name, False, f"softgso raised {type(error).__name__}: {error}")
    kernel_frames: list[bytes] = list(case.kernel_frames)
    kernel_refused = bool(case.refused) or not kernel_frames
    if kernel_refused:
        why = case.meta.get("sendto_error") or "sent nothing"
        if result.error is not None or not result.frames:
            return Verdict(name, True, f"both refused (kernel: {why})")
        return Verdict(name, False, f"kernel refused ({why}), softgso sent {len(result.frames)} frame(s)")
    if result.error is not None:
        return Verdict(name, False, f"kernel sent {len(kernel_frames)} frame(s), softgso refused: {result.error}")
    if len(result.frames) != len(kernel_frames):
        return Verdict(name, False, f"kernel sent {len(kernel_frames)} frame(s), softgso {len(result.frames)}")
    for index, (ours, theirs) in enumerate(zip(result.frames, kernel_frames, strict=True)):
        if ours != theirs:
            at = first_difference(ours, theirs)
            return Verdict(name, False, f"frame {index} differs at byte {at} (softgso {len(ours)} B,"
                                        f" kernel {len(theirs)} B)")
    return Verdict(name, True, f"same {len(kernel_frames)} frame(s)")


# -- minimisation ----------------------------------------------------------------------------------
def shrink_candidates(spec: CaseSpec) -> list[CaseSpec]:
    """Every one-step simplification of a spec, the biggest reductions first."""
    out: list[CaseSpec] = []

    def variant(**changes: Any) -> None:
        candidate = dataclasses.replace(spec, **changes)
        candidate.labels = [list(x) for x in candidate.labels]
        if candidate != spec:
            out.append(candidate)

    gso = spec.gso_size
    if 0 < gso < 0xFFFF and spec.paylen > gso + 1:
        variant(paylen=gso + 1)
        variant(paylen=min(spec.paylen - 1, 2 * gso))
    if spec.paylen > 1 and (gso == 0 or gso >= 0xFFFF or spec.paylen <= gso):
        variant(paylen=max(1, spec.paylen // 2))
    if len(spec.labels) > 2:  # big jumps first: a deep stack rarely matters label by label
        for label in spec.labels:
            variant(labels=[label])
    for index in range(len(spec.labels)):
        variant(labels=spec.labels[:index] + spec.labels[index + 1:])
    for index in range(len(spec.label_ops)):
        variant(label_ops=spec.label_ops[:index] + spec.label_ops[index + 1:])
    for index in range(len(spec.vlan_pushes)):
        variant(vlan_pushes=spec.vlan_pushes[:index] + spec.vlan_pushes[index + 1:])
    if spec.tx_vlan:
        variant(tx_vlan=None)
    for index in range(len(spec.ext_headers)):
        variant(ext_headers=spec.ext_headers[:index] + spec.ext_headers[index + 1:])
    if spec.tcp_options:
        variant(tcp_options="")
    if spec.ip_options:
        variant(ip_options="")
    if spec.l4 == "tcp" and (spec.tcp_flags != ACK or spec.urg_ptr):
        variant(tcp_flags=ACK, urg_ptr=0)
    if spec.gso_type & VIRTIO_NET_HDR_GSO_ECN and spec.gso_type != 0xFF:
        variant(gso_type=spec.gso_type & ~VIRTIO_NET_HDR_GSO_ECN)
    if spec.veth_mtu != 1500:
        variant(veth_mtu=1500)
    for candidate in out:
        fit_mtu(candidate)
    return out


def minimise(spec: CaseSpec, still_disagrees: Callable[[list[CaseSpec]], list[bool]],
             max_rounds: int = 12) -> tuple[CaseSpec, int]:
    """Greedy one-step shrinking: keep the first candidate that still disagrees, until none does.

    ``still_disagrees`` runs a whole batch of candidates (one VM round trip) and says, per
    candidate, whether softgso and the kernel still disagree. Returns the smallest spec found and
    the number of rounds used.
    """
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        candidates = shrink_candidates(spec)
        if not candidates:
            break
        original = spec.name.split("__min")[0]
        for number, candidate in enumerate(candidates):
            candidate.name = f"{original}__min{rounds}_{number}"
            candidate.description = f"minimised from {original} (round {rounds}, candidate {number})"
        keep = next((c for c, bad in zip(candidates, still_disagrees(candidates), strict=True) if bad), None)
        if keep is None:
            break
        spec = keep
    return spec, rounds
