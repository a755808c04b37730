"""``softgso bench --only jobs``: what ``segment --jobs N`` and ``inspect --jobs N`` gain, measured for 1 and 2 (and 3)
processes on the machine, and modelled from measured parts for more processes than it has cores.

Two 64 KB pcapng inputs: UDP datagrams segment passes through one by one without ``--udp-gso`` (the
reference path: CPU-bound) and TCP super-packets the bulk stream segments (near ``cp``'s speed).

* **Real runs**: ``cp``, then ``segment IN OUT -q --jobs N`` for N in JOBS_REAL, alternated in
  each turn, wall and CPU seconds (user + system, wait4) of each; a first untimed turn checks the
  one-job output with softgso.check.segcheck and every other N's output against it byte for byte.
* **The model** (not a run on N cores): for each N in JOBS_MODEL the capture is cut as ``--jobs N``
  cuts it, and each part's work (softgso.bulk.stream.segment_part, what a worker runs) is timed on
  its own, one part at a time in a fresh process, so that no part competes with another for the two
  cores: its wall and CPU seconds. Beside them the serial pieces: the split walk (timed in the
  part's process), the appending of parts 1..N-1 to OUT (timed alone, as the command appends them)
  and the command's fixed cost (one job's fastest real wall time less its one part's wall time: start-up,
  headers, summary). The N-core makespan is fixed cost + split walk + max(slowest part's wall, the
  parts' CPU seconds / N) + appending: every part on a core of its own, memory bandwidth and the
  pool's start assumed free (the real 2-job run against the model's 2 says what they cost here).
  The same from CPU seconds alone (``makespan_cpu_s``: every piece as long as its CPU time, the
  fixed cost one job's CPU seconds less its part's) holds better where other work on the machine
  stretches every wall time.
* **inspect --jobs N** on the same inputs, alike: real runs for JOBS_REAL (their JSON reports first
  checked identical) and the model for JOBS_MODEL, where merging the parts' results (pickled back,
  merged: timed in the part's process) takes the place of appending.
* **Appending** a part file to OUT: sendfile (what the command does), copy_file_range and
  read()+write(), on tmpfs (/dev/shm) and on /tmp (a disk file system), wall and CPU seconds.
"""

from __future__ import annotations

import filecmp
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .bench import _checked, run_child, softgso_command, write_capture

# the inputs: name, the bench mix (segment's options are its defaults: without --udp-gso the uso mix's
# datagrams over the MTU pass through unchanged, each reported, so OUT must equal IN byte for byte),
# and whether one job does it (softgso.bulk.stream.bulk_share): then its parts are timed too, forced
JOBS_INPUTS = (("datagrams", "uso", False), ("super_packets", "tcp4", True))
# ``segment`` with its parts forced whatever the bulk stream takes (a measurement, not an option)
FORCED_PARTS = ("import sys; from softgso.bulk import stream; stream.ONE_JOB_BULK_SHARE = float('inf'); "
                "from softgso.cli.entry import main; main()")
JOBS_REAL = (1, 2, 3)
JOBS_MODEL = (1, 2, 4, 8)


def _usage_seconds() -> float:
    """This process's CPU seconds so far, every thread's (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _options(in_path: str) -> Any:
    """segment's (and inspect's) options by default."""
    from .runner import SegmentRequest, segment_options_from

    return segment_options_from(**SegmentRequest(Path(in_path), Path(in_path)).option_args())


def _cut(in_path: str, parts: int, align: int = 1) -> tuple[Any, int, list[tuple[int, int | None, int]], float, float]:
    """(pcap header or None, link type, the parts' spans, the walk's wall and CPU seconds) of ``--jobs parts``."""
    from ..bulk.stream import part_spans, pcap_header, pcapng_header

    started, cpu = time.perf_counter(), _usage_seconds()
    found = pcap_header(Path(in_path))
    blocks = pcapng_header(Path(in_path)) if found is None else None
    header_info, linktype = found if found is not None else (None, 1)
    spans = part_spans(Path(in_path), parts, header_info, blocks, align)
    if spans is None:
        raise RuntimeError(f"{in_path}: not a capture --jobs cuts")
    return header_info, linktype, spans, time.perf_counter() - started, _usage_seconds() - cpu


def time_part(in_path: str, part_path: str, parts: int, number: int) -> dict[str, Any]:
    """One part of ``--jobs parts`` as a worker runs it (segment's default options), timed in this
    process: the split walk's and the part's wall and CPU seconds, the bytes it wrote."""
    from ..bulk.stream import segment_part

    header_info, linktype, spans, split_s, split_cpu = _cut(in_path, parts)
    options = _options(in_path)
    started, cpu = time.perf_counter(), _usage_seconds()
    _, _, _, finished = segment_part(in_path, part_path, options, header_info, spans[number], "auto", linktype, number)
    part_s, part_cpu = time.perf_counter() - started, _usage_seconds() - cpu
    if not finished:
        raise RuntimeError(f"{in_path}: part {number} of {parts} could not finish in bulk")
    return {"parts": len(spans), "split_walk_s": split_s, "split_walk_cpu_s": split_cpu, "wall_s": part_s,
            "cpu_s": part_cpu, "bytes_out": os.path.getsize(part_path)}


def time_inspect_part(in_path: str, parts: int, number: int) -> dict[str, Any]:
    """One part of ``inspect --jobs parts`` as a worker inspects it (inspect's default options), timed in
    this process: the split walk's, the part's and its result's way back (pickled, unpickled and merged
    into an empty inspector: the parent's share) wall and CPU seconds."""
    import pickle

    from ..gro.dev import NAPI_POLL_WEIGHT
    from .inspect import CaptureInspector
    from .inspect_jobs import inspect_part, merge_previews

    _, _, spans, split_s, split_cpu = _cut(in_path, parts, NAPI_POLL_WEIGHT)
    options = _options(in_path)
    started, cpu = time.perf_counter(), _usage_seconds()
    inspector, preview, finished = inspect_part(in_path, options, "6.1", 10, spans[number], number)
    part_s, part_cpu = time.perf_counter() - started, _usage_seconds() - cpu
    if not finished:
        raise RuntimeError(f"{in_path}: part {number} of {parts} could not be read to its end in bulk")
    started, cpu = time.perf_counter(), _usage_seconds()
    back, back_preview, _ = pickle.loads(pickle.dumps((inspector, preview, finished)))
    CaptureInspector(options).merge(back)
    merge_previews([back_preview, back_preview])
    return {"parts": len(spans), "split_walk_s": split_s, "split_walk_cpu_s": split_cpu, "wall_s": part_s,
            "cpu_s": part_cpu, "merge_s": time.perf_counter() - started, "merge_cpu_s": _usage_seconds() - cpu}


def time_appends(out_path: str, part_paths: list[str], method: str = "sendfile") -> dict[str, float]:
    """The part files appended in order to a new file ``out_path`` (``method``: sendfile as the command
    does, copy_file_range, or read()+write() through a 1 MiB buffer), timed in this process."""
    started, cpu = time.perf_counter(), _usage_seconds()
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for path in part_paths:
            append_part(fd, path, method)
    finally:
        os.close(fd)
    return {"wall_s": time.perf_counter() - started, "cpu_s": _usage_seconds() - cpu}


def append_part(fd: int, path: str, method: str) -> None:
    """The whole file at ``path`` written at ``fd``'s position by ``method``."""
    if method == "sendfile":
        from .runner import _append_file

        _append_file(fd, path)
        return
    with open(path, "rb", buffering=0) as part:
        size = os.fstat(part.fileno()).st_size
        done = 0
        while done < size:
            if method == "copy_file_range":
                moved = os.copy_file_range(part.fileno(), fd, size - done)
            else:
                chunk = part.read(1 << 20)
                moved = len(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            if moved <= 0:
                raise RuntimeError(f"{path}: {method} stopped at {done} of {size} bytes")
            done += moved


def _in_child(function: str, *args: Any) -> dict[str, Any]:
    """``function`` of this module run in a fresh interpreter (nothing else in it competes), its JSON."""
    code = ("import json, sys; from softgso.cli import bench_jobs; "
            f"print(json.dumps(bench_jobs.{function}(*json.loads(sys.argv[1]))))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(args)], check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout))


def model_parts(capture: Path, work: Path, parts: int) -> dict[str, Any]:
    """Each part of ``--jobs parts`` timed alone, one after another, and the appending of parts 1..N-1."""
    paths = [str(work / f"part{k}") for k in range(parts)]
    timed = [_in_child("time_part", str(capture), paths[k], parts, k) for k in range(parts)]
    appended = _in_child("time_appends", str(work / "appended"), paths[1:]) if parts > 1 else {"wall_s": 0.0, "cpu_s": 0.0}
    for path in [*paths, str(work / "appended")]:
        Path(path).unlink(missing_ok=True)
    return {"parts": [{k: v for k, v in t.items() if not k.startswith("split") and k != "parts"} for t in timed],
            "split_walk_s": timed[0]["split_walk_s"], "split_walk_cpu_s": timed[0]["split_walk_cpu_s"],
            "append_s": appended["wall_s"], "append_cpu_s": appended["cpu_s"],
            "appended_bytes": sum(t["bytes_out"] for t in timed[1:])}


def model_inspect_parts(capture: Path, parts: int) -> dict[str, Any]:
    """Each part of ``inspect --jobs parts`` timed alone, one after another (their results' merging: serial)."""
    timed = [_in_child("time_inspect_part", str(capture), parts, 0)]
    # (fewer parts than asked where the file holds too few polls of records for them)
    timed += [_in_child("time_inspect_part", str(capture), parts, k) for k in range(1, timed[0]["parts"])]
    return {"parts": [{k: t[k] for k in ("wall_s", "cpu_s")} for t in timed],
            "split_walk_s": timed[0]["split_walk_s"], "split_walk_cpu_s": timed[0]["split_walk_cpu_s"],
            "append_s": sum(t["merge_s"] for t in timed[1:]), "append_cpu_s": sum(t["merge_cpu_s"] for t in timed[1:])}


def makespan(model: dict[str, Any], cores: int, fixed_s: float, measure: str = "wall") -> float:
    """The N-core makespan the measured parts give (see the module's docstring); ``measure`` "cpu": from
    CPU seconds alone (each piece as long as its CPU time: what a quiet core would take where a loaded
    machine stretched the walls), with ``fixed_s`` the one job's CPU seconds less its part's."""
    parts = model["parts"]
    key = "wall_s" if measure == "wall" else "cpu_s"
    work = max(max(p[key] for p in parts), sum(p["cpu_s"] for p in parts) / cores)
    serial = model["split_walk_s"] + model["append_s"] if measure == "wall" else \
        model["split_walk_cpu_s"] + model["append_cpu_s"]
    return fixed_s + serial + work


def with_makespans(models: dict[int, dict[str, Any]], runs: list[list[float]]) -> dict[str, Any]:
    """The models of N parts with their makespans from walls and from CPU seconds; the fixed costs from
    the fastest one-job run (``runs``: (wall, CPU) each) less its one part's."""
    one_wall, one_cpu = min(runs)
    whole = models[1]["parts"][0]
    fixed = {"wall": max(one_wall - whole["wall_s"], 0.0), "cpu": max(one_cpu - whole["cpu_s"], 0.0)}
    return {"fixed_s": fixed["wall"], "fixed_cpu_s": fixed["cpu"],
            **{str(n): {**model, "makespan_s": makespan(model, n, fixed["wall"]),
                        "makespan_cpu_s": makespan(model, n, fixed["cpu"], "cpu")} for n, model in models.items()}}


def measure_jobs(work: Path, size: int, repeat: int, capture_format: str = "pcapng",
                 real: tuple[int, ...] = JOBS_REAL, modelled: tuple[int, ...] = JOBS_MODEL) -> dict[str, Any]:
    """The real runs and the model for each of JOBS_INPUTS (keys ``jobs_{input}_...``), and the appends."""
    report: dict[str, Any] = {"jobs_format": capture_format, "jobs_real": list(real), "jobs_model": list(modelled),
                              "jobs_load_before": os.getloadavg()}
    for name, mix, one_job in JOBS_INPUTS:
        capture = work / f"jobs-{name}.{capture_format}"
        write_capture(capture, size, mix, capture_format=capture_format)
        outs = {n: work / f"jobs-{name}-{n}.{capture_format}" for n in real}
        copy = work / f"jobs-{name}-cp.{capture_format}"
        commands = {f"jobs{n}": [*softgso_command(), "segment", str(capture), str(outs[n]), "-q", "--jobs", str(n)]
                    for n in real}
        if one_job:  # and its parts, forced
            commands |= {f"parts{n}": [sys.executable, "-c", FORCED_PARTS, "segment", str(capture), str(outs[n]), "-q",
                                       "--jobs", str(n)] for n in real if n > 1}
        runs: dict[str, list[list[float]]] = {"cp": [], **{key: [] for key in commands}}
        for turn in range(repeat + 1):
            cp_run = run_child(["cp", str(capture), str(copy)])
            copy.unlink()
            timed = {}
            for key, command in commands.items():
                timed[key] = run_child(command)
                n = int(key.removeprefix("jobs").removeprefix("parts"))
                if n != real[0] and not filecmp.cmp(outs[real[0]], outs[n], shallow=False):
                    raise RuntimeError(f"segment {key} wrote other bytes than --jobs {real[0]} ({name})")
            if turn == 0:  # no time counts before every output is right
                if mix == "uso":
                    if not filecmp.cmp(capture, outs[real[0]], shallow=False):
                        raise RuntimeError("segment of UDP datagrams without --udp-gso did not pass them through")
                    report[f"jobs_{name}_output_check"] = {"ok": True, "check": "OUT equals IN (passed through)"}
                else:
                    report[f"jobs_{name}_output_check"] = _checked(f"softgso segment ({name})", capture,
                                                                   outs[real[0]])
                report[f"jobs_{name}_outputs_identical"] = True
                report[f"jobs_{name}_output_bytes"] = outs[real[0]].stat().st_size
            else:
                runs["cp"].append([cp_run.seconds, cp_run.cpu_seconds])
                for key, run in timed.items():
                    runs[key].append([run.seconds, run.cpu_seconds])
            for out in outs.values():
                out.unlink()
        report[f"jobs_{name}_input_bytes"] = capture.stat().st_size
        report[f"jobs_{name}_runs"] = runs
        for key, timed_runs in runs.items():  # the fastest of each, wall and its CPU seconds
            fastest = min(timed_runs)
            report[f"jobs_{name}_{key}_seconds"], report[f"jobs_{name}_{key}_cpu_seconds"] = fastest
        models = {n: model_parts(capture, work, n) for n in modelled}
        report[f"jobs_{name}_model"] = with_makespans(models, runs["jobs1"])
        for n in modelled:
            report[f"jobs_{name}_model{n}_seconds"] = report[f"jobs_{name}_model"][str(n)]["makespan_s"]
            report[f"jobs_{name}_model{n}_cpu_seconds"] = report[f"jobs_{name}_model"][str(n)]["makespan_cpu_s"]
        report.update(measure_inspect_jobs(name, capture, real, modelled, repeat))
        capture.unlink()
    report["jobs_load_after"] = os.getloadavg()
    return report


def measure_inspect_jobs(name: str, capture: Path, real: tuple[int, ...], modelled: tuple[int, ...],
                         repeat: int) -> dict[str, Any]:
    """``inspect IN -q --jobs N`` for N in ``real``, alternated, after a first turn whose JSON reports
    must be identical, and the model of N parts (``append_s``: the merging of the parts' results)."""
    commands = {n: [*softgso_command(), "inspect", str(capture), "-q", "--jobs", str(n)] for n in real}
    reports = {n: subprocess.run([*commands[n], "--json"], check=True, capture_output=True).stdout for n in real}
    if any(reports[n] != reports[real[0]] for n in real):
        raise RuntimeError(f"inspect --jobs N gave other reports than --jobs {real[0]} ({name})")
    runs: dict[str, list[list[float]]] = {f"inspect{n}": [] for n in real}
    for _ in range(repeat):
        for n in real:
            timed = run_child(commands[n])
            runs[f"inspect{n}"].append([timed.seconds, timed.cpu_seconds])
    report: dict[str, Any] = {f"jobs_{name}_inspect_reports_identical": True, f"jobs_{name}_inspect_runs": runs}
    for key, timed_runs in runs.items():
        report[f"jobs_{name}_{key}_seconds"], report[f"jobs_{name}_{key}_cpu_seconds"] = min(timed_runs)
    models = {n: model_inspect_parts(capture, n) for n in modelled}
    report[f"jobs_{name}_inspect_model"] = with_makespans(models, runs["inspect1"])
    for n in modelled:
        report[f"jobs_{name}_inspect_model{n}_seconds"] = report[f"jobs_{name}_inspect_model"][str(n)]["makespan_s"]
        report[f"jobs_{name}_inspect_model{n}_cpu_seconds"] = \
            report[f"jobs_{name}_inspect_model"][str(n)]["makespan_cpu_s"]
    return report


def measure_appends(size: int, directories: tuple[str, ...] = ("/dev/shm", "/tmp"), repeat: int = 3,
                    methods: tuple[str, ...] = ("sendfile", "copy_file_range", "read_write")) -> dict[str, Any]:
    """A part file of ``size`` bytes appended to a new OUT beside it by each method, alternated, on each
    file system; the output checked equal to the part. Keys ``append_{fs}_{method}``: every run's (wall, CPU)."""
    report: dict[str, Any] = {"append_bytes": size}
    for directory in directories:
        if not os.access(directory, os.W_OK):
            continue
        label = directory.strip("/").replace("/", "_")
        with tempfile.TemporaryDirectory(prefix="softgso-append-", dir=directory) as scratch:
            part, out = os.path.join(scratch, "part"), os.path.join(scratch, "out")
            with open(part, "wb") as handle:
                block = os.urandom(1 << 20)
                for _ in range(size >> 20):
                    handle.write(block)
            for turn in range(repeat + 1):
                for method in methods:
                    timed = _in_child("time_appends", out, [part], method)
                    if turn == 0:
                        if not filecmp.cmp(part, out, shallow=False):
                            raise RuntimeError(f"{method} on {directory}: the appended file differs")
                    else:
                        report.setdefault(f"append_{label}_{method}", []).append([timed["wall_s"], timed["cpu_s"]])
                    os.unlink(out)
    return report
