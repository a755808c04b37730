#!/usr/bin/env python3
"""Fingerprint every file softgso's commands write, to prove a refactoring changed no byte.

Runs a fixed set of commands (segment on every engine and with --jobs, an MPLS push on a NIC
without MPLS GSO, coalesce, inspect, every action command, verify, and the bench's generated
captures) over every capture under the given folders, with the softgso found on PYTHONPATH, and
prints one line per output: its SHA-256 and the command. JSON summaries are hashed without their
timings. Compare two trees with

    PYTHONPATH=OLD/src python tools/output_fingerprint.py CAPTURES... > old.txt
    PYTHONPATH=NEW/src python tools/output_fingerprint.py CAPTURES... > new.txt
    diff old.txt new.txt
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TIMING_KEYS = {"seconds", "elapsed", "elapsed_s", "wall_seconds", "cpu_seconds"}
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz", ".zst")
SAMPLE_NAME = "mpls_tcp_super.pcap"  # the actions and diff run on it, found among the given captures

ACTIONS = [
    ["push-mpls", "--label", "100", "--label", "200"],
    ["pop-mpls"],
    ["set-mpls", "--label", "7"],
    ["dec-ttl"],
    ["push-vlan", "--vid", "10"],
    ["pop-vlan"],
    ["push-vxlan", "--src", "10.0.0.1", "--dst", "10.0.0.2", "--vni", "5"],
    ["push-geneve", "--src", "10.0.0.1", "--dst", "10.0.0.2", "--vni", "5"],
    ["push-gre", "--src", "10.0.0.1", "--dst", "10.0.0.2"],
]


def without_timings(value: object) -> object:
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


def run(work: Path, label: str, argv: list[str], out: str | None) -> None:
    done = subprocess.run([sys.executable, "-m", "softgso", *argv], cwd=work, capture_output=True)
    stdout = done.stdout
    try:
        stdout = json.dumps(without_timings(json.loads(stdout)), sort_keys=True).encode()
    except ValueError:
        pass
    line = f"rc={done.returncode} stdout={digest(stdout)}"
    if out is not None:
        path = work / out
        line += f" out={digest(path.read_bytes()) if path.exists() else 'none'}"
        path.unlink(missing_ok=True)
    print(f"{line}  {label} {' '.join(argv)}", flush=True)


def captures(folders: list[str]) -> list[Path]:
    found: list[Path] = []
    for folder in folders:
        root = Path(folder)
        found += sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(CAPTURE_SUFFIXES))
    return found


def main(folders: list[str]) -> None:
    work = Path(tempfile.mkdtemp(prefix="softgso-fingerprint-"))
    found = captures(folders)
    for capture in found:
        name = str(capture)
        tail = ["-F", "pcap"] if capture.suffix in (".gz", ".zst") else []
        for engine in ("compiled", "numpy", "scalar"):
            run(work, name, ["segment", name, "out.pcap", "--json", "--engine", engine, *tail], "out.pcap")
        run(work, name, ["segment", name, "out.pcap", "--json", "--jobs", "2", *tail], "out.pcap")
        run(work, name, ["segment", name, "out.pcap", "--json", "--device", "nic-tso-no-mpls-gso",
                         "--action", "push-mpls:100:0:64:uc", *tail], "out.pcap")
        run(work, name, ["coalesce", name, "out.pcap", "--json", *tail], "out.pcap")
        run(work, name, ["inspect", name, "--json"], None)
    sample = next(p for p in found if p.name == SAMPLE_NAME)
    for action in ACTIONS:
        run(work, "sample", [action[0], str(sample), "out.pcap", "--json", *action[1:]], "out.pcap")
    run(work, "sample", ["diff", str(sample), str(sample), "--json"], None)
    run(work, "builtin", ["verify", "--builtin", "--json"], None)
    # the bench's own generated captures, segmented by every engine (the bench moved in the house move);
    # their random payloads drawn from a fixed seed, so that two trees generate the same bytes
    import random
    os.urandom = random.Random(15).randbytes
    from importlib import import_module
    try:
        bench = import_module("softgso.cli.bench")
    except ImportError:
        bench = import_module("softgso.bench")
    for mix in ("issue", "all", "vxlan", "geneve", "gre", "ipip", "uso"):
        path = work / f"bench-{mix}.pcap"
        bench.write_capture(path, 4 << 20, mix)
        print(f"input={digest(path.read_bytes())}  bench {mix}", flush=True)
        extra = bench.udp_gso_args(mix)
        for engine in ("compiled", "numpy", "scalar"):
            run(work, f"bench-{mix}", ["segment", path.name, "out.pcap", "-q", "--engine", engine, *extra], "out.pcap")
        path.unlink()
    os.rmdir(work)


if __name__ == "__main__":
    main(sys.argv[1:] or ["/work/shared/captures"])
