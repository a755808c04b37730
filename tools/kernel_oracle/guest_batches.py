"""The request loop of the recording guests (tunnel_guest, gro_guest), standard library only: it runs
inside the VM, where nothing of softgso is imported.

The host writes ``requests/<n>.json`` into the shared folder; the guest answers each batch with
``out/<name>/results/results.json`` and then ``responses/<n>.json``, and stops on ``{"quit": true}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path


def announce_ready(share: Path, ready: dict[str, object]) -> None:
    """Write ``ready.json`` atomically: the host reads it as soon as it exists."""
    (share / "ready.tmp").write_text(json.dumps(ready))
    (share / "ready.tmp").replace(share / "ready.json")


def answer_batches(share: Path, run_case: Callable[[dict], dict]) -> None:
    """Run every case of every request in order until told to quit."""
    requests, responses = share / "requests", share / "responses"
    responses.mkdir(exist_ok=True)
    number = 0
    while True:
        path = requests / f"{number}.json"
        if not path.exists():
            time.sleep(0.05)
            continue
        request = json.loads(path.read_text())
        if request.get("quit"):
            return
        out = share / "out" / request["out"] / "results"
        out.mkdir(parents=True, exist_ok=True)
        results = [run_case(case) for case in request["cases"]]
        (out / "results.json").write_text(json.dumps(results))
        tmp = responses / f"{number}.tmp"
        tmp.write_text(json.dumps([{"name": "results"}]))
        tmp.replace(responses / f"{number}.json")
        number += 1
