"""Shared by the root tests of the live datapath: skipping without root, starting `softgso datapath` in a
process of its own, and checking that nothing it made is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

ROOT = os.geteuid() == 0 and os.path.exists("/dev/net/tun")


def root_test(test: Callable[..., None]) -> Callable[..., None]:
    """Marked root, skipped cleanly without root or /dev/net/tun, bounded in time."""
    test = pytest.mark.timeout(120)(test)
    test = pytest.mark.skipif(not ROOT, reason="needs root and /dev/net/tun (network namespaces, TAP devices)")(test)
    return pytest.mark.root(test)


def leftovers(pid: int | None = None) -> tuple[list[str], list[str]]:
    """Namespaces and links the runs of process ``pid`` (default: this one) could have left behind."""
    tag = str(pid if pid is not None else os.getpid())
    namespaces = [line.split()[0] for line in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                              text=True, check=True).stdout.splitlines()
                  if line.startswith("sgso-") and tag in line]
    links = [line for line in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                                             check=True).stdout.splitlines()
             if any(f"{prefix}{tag}" in line for prefix in ("sgw", "sge", "sga", "sgb"))]
    return namespaces, links


def netns_list() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


@dataclass
class RunningDatapath:
    """`softgso datapath --no-live --json ...` in a process of its own, its namespaces up."""

    process: subprocess.Popen[str]

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def west(self) -> str:
        return f"sgso-west-{self.pid}"

    @property
    def east(self) -> str:
        return f"sgso-east-{self.pid}"

    @property
    def link_netns(self) -> tuple[str, str]:
        return f"sgso-l1-{self.pid}", f"sgso-l2-{self.pid}"

    @property
    def west_tap(self) -> str:
        return f"sgw{self.pid}"[:15]

    @property
    def east_tap(self) -> str:
        return f"sge{self.pid}"[:15]

    def stop(self, signum: int = signal.SIGINT, timeout: float = 20) -> tuple[int, str, str]:
        """Send ``signum`` (unless it has ended already); (exit status, stdout, stderr)."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.wait(timeout)

    def wait(self, timeout: float = 20) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out, err

    def tcp_transfer_verified(self, size: int = 1 << 20) -> bool:
        """A TCP transfer west->east and back through the running datapath, hashed on both ends."""
        from softgso.datapath.selftest import spawn, wait_ready

        server = spawn("tcp-server", self.east, "10.200.2.1", "--back-bytes", str(size), timeout=20)
        client = None
        try:
            wait_ready(server, 10)
            client = spawn("tcp-client", self.west, "10.200.2.1", "--bytes", str(size), timeout=20)
            east, west = server.result(), client.result()
        finally:
            server.kill()
            if client is not None:
                client.kill()
        return (east.get("recv_sha256") == west.get("sent_sha256") and west.get("recv_sha256") == east.get("sent_sha256")
                and east.get("recv_bytes") == west.get("recv_bytes") == size)

    def forwarder_pid(self, timeout: float = 10) -> int:
        """The pid of the unprivileged forwarder (the child a run with --user forks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in child_pids(self.pid):
                if proc_status(child).get("Uid", "").split()[:1] != ["0"]:
                    return child
            time.sleep(0.05)
        raise AssertionError(f"no unprivileged child of {self.pid} appeared")


def start_datapath(*args: str, timeout: float = 20) -> RunningDatapath:
    """Start the CLI with ``args`` and wait until both its namespaces exist."""
    process = subprocess.Popen([sys.executable, "-m", "softgso", "datapath", "--no-live", "--json", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    running = RunningDatapath(process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # the east TAP is addressed last: then the topology is complete and forwarding starts
        if running.east in netns_list() and "10.200.2.1" in subprocess.run(
                ["ip", "-n", running.east, "-br", "addr"], capture_output=True, text=True).stdout:
            return running
        if process.poll() is not None:
            break
        time.sleep(0.05)
    if process.poll() is None:
        process.kill()
    pytest.fail(f"the datapath never came up: {process.communicate()}")


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry))
    return children


def proc_status(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict ('Uid': '65534\t65534\t65534\t65534', ...)."""
    with open(f"/proc/{pid}/status") as status:
        return dict(line.rstrip("\n").split(":\t", 1) for line in status if ":\t" in line)


def json_stats(out: str) -> dict[str, Any]:
    """The statistics `--json` printed on exit."""
    stats: dict[str, Any] = json.loads(out)
    return stats
