"""Command line: ``python -m tools.kernel_oracle {setup,plan,record,diff,probes,replay}`` (from the repository root).

Every subcommand takes ``--kernel 6.1|6.12`` (a generation, default 6.1) or an installed release.

  setup                      apt-get the packages (both pinned kernels), build the initramfs, report timings
  plan   --seed S --count N  print the drawn cases, no VM (the generation decides the category cycle)
  record --seed S --count N --out DIR
                             boot once, run the cases, keep every golden-format case folder in DIR
  diff   --seed S --count N  boot once, run the cases, compare softgso with the kernel case by case,
                             minimise each disagreement and save it under --save (exit status 1)
  probes --out DIR           record the hand-written probes (probes.py) and compare them with softgso
  replay --out DIR           run every recorded vector of tests/vectors/kernel again on this kernel,
                             compare with the recording and with softgso (replay.py)
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

from . import compare, generate, install, probes, replay
from .cases import CaseSpec, to_guest_case
from .initramfs import build_initramfs, initramfs_path
from .vm import KernelVM, pick_kernel

REPO = Path(__file__).resolve().parents[2]
DEFAULT_WORK = REPO / "out" / "kernel-diff"
VECTORS = REPO / "tests" / "vectors" / "kernel"
BATCH_SIZE = 40


def default_save(generation: str) -> Path:
    """Where a generation's reproducers go: generated/ for 6.1 (as before), <generation>/generated/ otherwise."""
    return VECTORS / "generated" if generation == "6.1" else VECTORS / generation / "generated"


def generation_of(kernel: str | None) -> str:
    """The generation of a --kernel value (a generation or an installed release)."""
    if kernel is None or kernel in install.GENERATIONS:
        return kernel or install.DEFAULT_GENERATION
    generation = install.generation_of_release(kernel)
    if generation is None:
        raise SystemExit(f"kernel {kernel}: not a release of a known generation ({', '.join(install.GENERATIONS)})")
    return generation


def say(message: str) -> None:
    print(message, flush=True)


def setup(packages: dict[str, str] | None = None, apt: bool = True,
          generations: tuple[str, ...] = tuple(install.GENERATIONS)) -> dict[str, float | str]:
    """Install the packages (the generations' kernels, both by default) and build their initramfs images."""
    timings: dict[str, float | str] = {}
    started = time.monotonic()
    releases = (install.install(generations, packages=packages) if apt
                else {g: pick_kernel(g) for g in generations})
    timings["install_seconds"] = round(time.monotonic() - started, 1)
    for generation, release in releases.items():
        started = time.monotonic()
        fresh = not initramfs_path(release).exists()
        build_initramfs(release)
        key = "initramfs_seconds" if fresh else "initramfs_cached_seconds"
        timings[f"{key}_{generation}"] = round(time.monotonic() - started, 2)
        timings[f"kernel_release_{generation}"] = release
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
    release = pick_kernel(kernel)
    generation = generation_of(release)
    specs = generate.plan(seed, count, categories=categories, generation=generation)
    cases_dir = work_dir / f"seed{seed}" if generation == "6.1" else work_dir / generation / f"seed{seed}"
    shutil.rmtree(cases_dir, ignore_errors=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with KernelVM(release, accel, console_log=work_dir / f"console-{generation}.log") as vm:
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


def run_replay(kernel: str | None, out_dir: Path, sources: list[Path], accel: str = "auto",
               work_dir: Path = DEFAULT_WORK) -> tuple[list[replay.GenerationVerdict], list[compare.Verdict], list[str]]:
    """Replay recorded vectors on one kernel: (kernel vs recording, softgso vs this kernel, not expressible)."""
    release = pick_kernel(kernel)
    generation = generation_of(release)
    folders = [f.resolve() for root in sources for f in replay.vector_folders(root)]  # a relative --vectors too
    folders = [f for f in folders if out_dir.resolve() not in f.resolve().parents]  # never replay a replay
    guest_cases, origin, skipped = [], {}, []
    for folder in folders:
        case = replay.guest_case_of(folder, generation)
        if case is None:
            skipped.append(str(folder.relative_to(REPO) if folder.is_relative_to(REPO) else folder))
            continue
        relative = folder.relative_to(VECTORS) if folder.is_relative_to(VECTORS) else Path(folder.name)
        case["name"] = "__".join(relative.parts)
        case["extra_meta"]["replay_of"] = str(relative)
        guest_cases.append(case)
        origin[case["name"]] = (folder, relative)
    scratch = work_dir / generation / "replay"
    shutil.rmtree(scratch, ignore_errors=True)
    with KernelVM(release, accel, console_log=work_dir / f"console-{generation}.log") as vm:
        say(f"replay: {vm.kernel} ({vm.accel}), booted in {vm.boot_seconds:.1f} s; {len(guest_cases)} vectors")
        for start in range(0, len(guest_cases), BATCH_SIZE):
            vm.run_batch(guest_cases[start:start + BATCH_SIZE], scratch)
            say(f"  kernel: {min(start + BATCH_SIZE, len(guest_cases))}/{len(guest_cases)} vectors replayed")
    kernels, engines = [], []
    for case in guest_cases:
        source, relative = origin[case["name"]]
        target = out_dir / relative
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(scratch / case["name"]), str(target))
        kernels.append(replay.compare_generations(source, target))
        engines.append(compare.compare_case(target))
    return kernels, engines, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.kernel_oracle", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    kernel_help = "kernel generation (6.1, 6.12) or an installed release; default 6.1"
    setup_parser = commands.add_parser("setup", help="install packages (both kernels), build the initramfs images")
    setup_parser.add_argument("--kernel-package", action="append", default=[], metavar="GEN=PACKAGE",
                              help="override a generation's pinned package, e.g. 6.12=linux-image-6.12.117+deb12-amd64")
    setup_parser.add_argument("--no-apt", action="store_true", help="only build the initramfs images")
    setup_parser.add_argument("--kernel", choices=tuple(install.GENERATIONS),
                              help="only this generation (default: every generation)")
    probes_parser = commands.add_parser("probes", help="record the hand-written probes")
    probes_parser.add_argument("--out", type=Path, required=True)
    probes_parser.add_argument("--only", default="", metavar="PREFIX", help="only the probes named PREFIX...")
    replay_parser = commands.add_parser("replay", help="replay the recorded vectors on a kernel")
    replay_parser.add_argument("--out", type=Path, help="where the new vectors go (default tests/vectors/kernel/GEN)")
    replay_parser.add_argument("--vectors", type=Path, action="append",
                               help="folders of vectors to replay (default: tests/vectors/kernel/cases and generated)")
    for sub in (probes_parser, replay_parser):
        sub.add_argument("--kernel", help=kernel_help)
        sub.add_argument("--accel", choices=("auto", "tcg", "kvm"), default="auto")
    for name in ("plan", "record", "diff"):
        sub = commands.add_parser(name)
        sub.add_argument("--seed", type=int, default=1)
        sub.add_argument("--count", type=int, default=100)
        sub.add_argument("--kernel", help=kernel_help)
        sub.add_argument("--categories", help="comma-separated: keep only these categories (or prefixes: invalid, "
                                                  "odd); opt-in ones (label_ops) alone make a plan of their own")
        if name == "plan":
            continue
        sub.add_argument("--accel", choices=("auto", "tcg", "kvm"), default="auto")
        sub.add_argument("--no-install", action="store_true", help="do not apt-get missing packages")
        if name == "record":
            sub.add_argument("--out", type=Path, required=True)
        else:
            sub.add_argument("--work", type=Path, default=DEFAULT_WORK)
            sub.add_argument("--save", type=Path, help="where reproducers go (default: tests/vectors/kernel/generated"
                             " for 6.1, tests/vectors/kernel/GEN/generated otherwise)")
            sub.add_argument("--no-minimise", action="store_true")
    args = parser.parse_args(argv)
    categories = set(args.categories.split(",")) if getattr(args, "categories", None) else None

    if args.command == "setup":
        packages = dict(item.split("=", 1) for item in args.kernel_package)
        generations = (args.kernel,) if args.kernel else tuple(install.GENERATIONS)
        say(json.dumps(setup(packages, apt=not args.no_apt, generations=generations)))
        return 0
    if args.command == "plan":
        for spec in generate.plan(args.seed, args.count, categories=categories, generation=generation_of(args.kernel)):
            say(json.dumps(spec.to_json()))
        return 0
    if args.command == "probes":
        setup()
        specs = [spec for spec in probes.probes() if spec.name.startswith(args.only)]
        with KernelVM(args.kernel, args.accel, console_log=args.out / "console.log") as vm:
            say(f"probes: {vm.kernel} ({vm.accel}), booted in {vm.boot_seconds:.1f} s")
            run_specs(vm, specs, args.out)
        for spec in specs:
            verdict = compare.compare_case(args.out / spec.name) if not compare.engine_missing_reason() else None
            meta = json.loads((args.out / spec.name / "meta.json").read_text())
            say(f"  {spec.name}: kernel sendto_error={meta['sendto_error']} frames={meta['n_segments']}"
                f" tc_error={bool(meta['tc_error'])} veth0_tx_dropped={meta['veth0_tx_dropped']}"
                + (f" | softgso: {verdict.detail}" if verdict else ""))
        return 0
    if args.command == "replay":
        setup()
        generation = generation_of(pick_kernel(args.kernel))
        out = args.out or VECTORS / generation
        sources = args.vectors or [VECTORS / "cases", VECTORS / "generated"]
        kernels, engines, not_expressible = run_replay(args.kernel, out, sources, args.accel)
        for kernel_verdict, engine_verdict in zip(kernels, engines, strict=True):
            say(f"  {'same' if kernel_verdict.agree else 'CHANGED'} {kernel_verdict.name}: {kernel_verdict.detail}"
                f" | softgso --kernel {generation}: {'agree' if engine_verdict.agree else 'DISAGREE'}"
                f" ({engine_verdict.detail})")
        for name in not_expressible:
            say(f"  not expressible on {generation}: {name}")
        changed = sum(not v.agree for v in kernels)
        disagree = sum(not v.agree for v in engines)
        say(f"replay: {len(kernels)} vectors on {generation}: {len(kernels) - changed} same as recorded, {changed}"
            f" changed; softgso agrees on {len(engines) - disagree}, disagrees on {disagree};"
            f" {len(not_expressible)} not expressible -> {out}")
        return 1 if disagree else 0
    timings = setup(apt=not args.no_install)
    if args.command == "record":
        specs = generate.plan(args.seed, args.count, categories=categories,
                              generation=generation_of(pick_kernel(args.kernel)))
        with KernelVM(args.kernel, args.accel, console_log=args.out / "console.log") as vm:
            say(f"record: {vm.kernel} ({vm.accel}), booted in {vm.boot_seconds:.1f} s")
            started = time.monotonic()
            summaries = run_specs(vm, specs, args.out)
            elapsed = time.monotonic() - started
        (args.out / "console.log").unlink(missing_ok=True)
        summary = {"kernel": vm.kernel, "kernel_package": vm.kernel_package,
                   "kernel_package_version": vm.kernel_package_version, "seed": args.seed, "count": args.count,
                   "boot_seconds": round(vm.boot_seconds, 1), "cases_seconds": round(elapsed, 1), **timings,
                   "categories": dict(Counter(s.category for s in specs)), "cases": summaries}
        (args.out / "generation_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        say(f"record: {len(specs)} cases in {elapsed:.1f} s -> {args.out}")
        return 0
    missing = compare.engine_missing_reason()
    if missing:
        say(f"kernel-diff: {missing}")
        return 2
    save = args.save or default_save(generation_of(pick_kernel(args.kernel)))
    report = run_diff(args.seed, args.count, args.work, save, args.kernel, args.accel,
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
