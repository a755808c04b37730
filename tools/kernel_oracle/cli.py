"""Command line: ``python -m tools.kernel_oracle {setup,plan,record,diff}`` (run from the repository root).

  setup                      apt-get the packages (pinned 6.1 kernel), build the initramfs, report timings
  plan   --seed S --count N  print the drawn cases, no VM
  record --seed S --count N --out DIR
                             boot once, run the cases, keep every golden-format case folder in DIR
  diff   --seed S --count N  boot once, run the cases, compare softgso with the kernel case by case,
                             minimise each disagreement and save it under --save (exit status 1)
  probes --out DIR           record the hand-written probes (probes.py) and compare them with softgso
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import compare, generate, install, probes
from .cases import CaseSpec, to_guest_case
from .initramfs import build_initramfs, initramfs_path
from .vm import KernelVM, pick_kernel

REPO = Path(__file__).resolve().parents[2]
DEFAULT_WORK = REPO / "out" / "kernel-diff"
DEFAULT_SAVE = REPO / "tests" / "vectors" / "kernel" / "generated"
BATCH_SIZE = 40


def say(message: str) -> None:
    print(message, flush=True)


def setup(kernel_package: str = install.PINNED_KERNEL_PACKAGE, apt: bool = True) -> dict[str, float | str]:
    """Install the packages and build the initramfs; returns the kernel release and the timings."""
    timings: dict[str, float | str] = {}
    started = time.monotonic()
    release = install.install(kernel_package) if apt else pick_kernel(None)
    timings["install_seconds"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    fresh = not initramfs_path(release).exists()
    build_initramfs(release)
    timings["initramfs_seconds" if fresh else "initramfs_cached_seconds"] = round(time.monotonic() - started, 2)
    timings["kernel_release"] = release
    return timings


def run_specs(vm: KernelVM, specs: list[CaseSpec], out_dir: Path, progress: bool = True) -> list[dict]:
    """Run specs in batches on a booted VM; their case folders land in ``out_dir``."""
    summaries: list[dict] = []
    for start in range(0, len(specs), BATCH_SIZE):
        chunk = specs[start:start + BATCH_SIZE]
        summaries += vm.run_batch([to_guest_case(spec) for spec in chunk], out_dir)
        if progress:
            say(f"  kernel: {len(summaries)}/{len(specs)} cases run")
    return summaries


@dataclass
class DiffReport:
    """The outcome of a differential run."""

    kernel: str = ""
    verdicts: list[compare.Verdict] = field(default_factory=list)
    reproducers: list[Path] = field(default_factory=list)
    timings: dict[str, float | str] = field(default_factory=dict)

    @property
    def disagreements(self) -> list[compare.Verdict]:
        return [v for v in self.verdicts if not v.agree]


def run_diff(seed: int, count: int, work_dir: Path, save_dir: Path, kernel: str | None = None,
             accel: str = "auto", minimise: bool = True, progress: bool = True,
             minimise_limit: int | None = None, categories: set[str] | None = None) -> DiffReport:
    """Boot once, run ``count`` random cases, compare each with softgso, minimise the disagreements.

    At most ``minimise_limit`` disagreements are minimised (the rest are saved as recorded).
    """
    report = DiffReport()
    specs = generate.plan(seed, count, categories=categories)
    cases_dir = work_dir / f"seed{seed}"
    shutil.rmtree(cases_dir, ignore_errors=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with KernelVM(kernel, accel, console_log=work_dir / "console.log") as vm:
        report.kernel = vm.kernel
        report.timings["boot_seconds"] = round(vm.boot_seconds, 1)
        say(f"kernel-diff: {vm.kernel} ({vm.accel}), booted in {vm.boot_seconds:.1f} s; {len(specs)} cases, seed {seed}")
        run_started = time.monotonic()
        run_specs(vm, specs, cases_dir, progress)
        report.timings["cases_seconds"] = round(time.monotonic() - run_started, 1)
        report.timings["per_case_seconds"] = round((time.monotonic() - run_started) / max(1, len(specs)), 2)
        for spec in specs:
            verdict = compare.compare_case(cases_dir / spec.name)
            report.verdicts.append(verdict)
            label = "skipped " if verdict.skipped else "agree   " if verdict.agree else "DISAGREE"
            say(f"  {label} {spec.name}: {verdict.detail}")
        for spec, verdict in zip(specs, report.verdicts, strict=True):
            if verdict.agree:
                continue
            smallest, source = spec, cases_dir / spec.name
            if minimise and (minimise_limit is None or len(report.reproducers) < minimise_limit):
                smallest, source = minimise_on_vm(vm, spec, source, work_dir / "minimise")
            target = save_dir / smallest.name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)
            report.reproducers.append(target)
            say(f"  reproducer for {spec.name}: {target} ({compare.compare_case(target).detail})")
    report.timings["total_seconds"] = round(time.monotonic() - started, 1)
    return report


def minimise_on_vm(vm: KernelVM, spec: CaseSpec, recorded: Path, scratch: Path) -> tuple[CaseSpec, Path]:
    """Shrink a disagreeing spec with kernel round trips on the running VM; (smallest spec, its folder)."""
    found: dict[str, Path] = {}

    def still_disagrees(candidates: list[CaseSpec]) -> list[bool]:
        run_specs(vm, candidates, scratch, progress=False)
        verdicts = []
        for candidate in candidates:
            found[candidate.name] = scratch / candidate.name
            verdicts.append(not compare.compare_case(scratch / candidate.name).agree)
        return verdicts

    smallest, rounds = compare.minimise(spec, still_disagrees)
    say(f"  minimised {spec.name} in {rounds} round(s): {smallest.name}")
    return smallest, found.get(smallest.name, recorded)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.kernel_oracle", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    setup_parser = commands.add_parser("setup", help="install packages, build the initramfs")
    setup_parser.add_argument("--kernel-package", default=install.PINNED_KERNEL_PACKAGE)
    setup_parser.add_argument("--no-apt", action="store_true", help="only build the initramfs")
    probes_parser = commands.add_parser("probes", help="record the hand-written probes")
    probes_parser.add_argument("--out", type=Path, required=True)
    probes_parser.add_argument("--kernel")
    probes_parser.add_argument("--accel", choices=("auto", "tcg", "kvm"), default="auto")
    for name in ("plan", "record", "diff"):
        sub = commands.add_parser(name)
        sub.add_argument("--seed", type=int, default=1)
        sub.add_argument("--count", type=int, default=100)
        if name == "plan":
            continue
        sub.add_argument("--kernel", help="kernel release (default: the newest installed 6.1)")
        sub.add_argument("--accel", choices=("auto", "tcg", "kvm"), default="auto")
        sub.add_argument("--no-install", action="store_true", help="do not apt-get missing packages")
        sub.add_argument("--categories", help="comma-separated: keep only these categories (or prefixes: invalid, odd)")
        if name == "record":
            sub.add_argument("--out", type=Path, required=True)
        else:
            sub.add_argument("--work", type=Path, default=DEFAULT_WORK)
            sub.add_argument("--save", type=Path, default=DEFAULT_SAVE, help="where reproducers go")
            sub.add_argument("--no-minimise", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "setup":
        say(json.dumps(setup(args.kernel_package, apt=not args.no_apt)))
        return 0
    if args.command == "plan":
        for spec in generate.plan(args.seed, args.count):
            say(json.dumps(spec.to_json()))
        return 0
    if args.command == "probes":
        setup()
        specs = probes.probes()
        with KernelVM(args.kernel, args.accel, console_log=args.out / "console.log") as vm:
            run_specs(vm, specs, args.out)
        for spec in specs:
            verdict = compare.compare_case(args.out / spec.name) if not compare.engine_missing_reason() else None
            meta = json.loads((args.out / spec.name / "meta.json").read_text())
            say(f"  {spec.name}: kernel sendto_error={meta['sendto_error']} frames={meta['n_segments']}"
                f" tc_error={bool(meta['tc_error'])} veth0_tx_dropped={meta['veth0_tx_dropped']}"
                + (f" | softgso: {verdict.detail}" if verdict else ""))
        return 0
    timings = setup(apt=not args.no_install)
    categories = set(args.categories.split(",")) if args.categories else None
    if args.command == "record":
        specs = generate.plan(args.seed, args.count, categories=categories)
        with KernelVM(args.kernel, args.accel, console_log=args.out / "console.log") as vm:
            say(f"record: {vm.kernel} ({vm.accel}), booted in {vm.boot_seconds:.1f} s")
            started = time.monotonic()
            summaries = run_specs(vm, specs, args.out)
            elapsed = time.monotonic() - started
        (args.out / "console.log").unlink(missing_ok=True)
        summary = {"kernel": vm.kernel, "seed": args.seed, "count": args.count, "boot_seconds": round(vm.boot_seconds, 1),
                   "cases_seconds": round(elapsed, 1), **timings,
                   "categories": dict(Counter(s.category for s in specs)), "cases": summaries}
        (args.out / "generation_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        say(f"record: {len(specs)} cases in {elapsed:.1f} s -> {args.out}")
        return 0
    missing = compare.engine_missing_reason()
    if missing:
        say(f"kernel-diff: {missing}")
        return 2
    report = run_diff(args.seed, args.count, args.work, args.save, args.kernel, args.accel,
                      minimise=not args.no_minimise, categories=categories)
    report.timings.update(timings)
    skipped = sum(v.skipped for v in report.verdicts)
    agreed = len(report.verdicts) - len(report.disagreements) - skipped
    say(f"kernel-diff: {agreed} agree, {len(report.disagreements)} disagree, {skipped} skipped"
        f" (kernel {report.kernel}); "
        f"timings {json.dumps(report.timings)}")
    for path in report.reproducers:
        say(f"  reproducer: {path}")
    return 1 if report.disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
