"""`softgso datapath --selftest`: bulk transfers through the label-switched hop, verified byte for byte.

For each mode (sw-gso, hw-gso, no-gso) a fresh pair of namespaces is built; in it a TCP transfer
west->east and back over IPv4, then IPv6, then (when the kernel offers USO on the TAP) a UDP
transfer with UDP_SEGMENT. TCP streams are hashed on both ends; every UDP datagram that arrives is
checked and the missing ones are reported as loss, separately from corruption.
"""

from __future__ import annotations

import json
import os
import resource
import select
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from .ler import CaptureHook
from .run import Datapath, DatapathError, DatapathOptions, require_root
from .topology import KernelTopology, Topology

PORT = 5201


@dataclass
class Endpoint:
    """A traffic process running inside a namespace."""

    role: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def result(self) -> dict[str, Any]:
        """The last JSON line it printed (after it exited)."""
        out, err = self.process.communicate(timeout=10)
        self.lines += out.splitlines()
        for line in reversed(self.lines):
            if line.startswith("{"):
                record: dict[str, Any] = json.loads(line)
                if "ready" not in record:
                    return record
        raise DatapathError(f"endpoint {self.role} printed no result (exit {self.process.returncode}): {err.strip()}")

    def kill(self) -> None:
        """Stop it if it is still running."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def spawn(role: str, netns: str, host: str, *args: str, timeout: float) -> Endpoint:
    """Start ``python -m softgso.datapath.endpoint ROLE`` in a namespace."""
    command = [sys.executable, "-m", "softgso.datapath.endpoint", role, "--netns", netns, "--host", host,
               "--port", str(PORT), "--timeout", str(timeout), *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return Endpoint(role, process)


def wait_ready(endpoint: Endpoint, timeout: float) -> None:
    """Block until a server prints its ready line (it needs no forwarding to get there)."""
    stream: IO[str] | None = endpoint.process.stdout
    assert stream is not None
    ready, _, _ = select.select([stream], [], [], timeout)
    line = stream.readline() if ready else ""
    if '"ready"' not in line:
        endpoint.kill()
        err = endpoint.process.stderr.read() if endpoint.process.stderr else ""
        raise DatapathError(f"endpoint {endpoint.role} did not start: {line.strip()} {err.strip()}")
    endpoint.lines.append(line)


def run_pair(datapath: Datapath | None, server: Endpoint, client: Endpoint, timeout: float) -> bool:
    """Forward until both endpoints have exited (without a datapath, the kernel forwards: only wait);
    False when the deadline passed first."""
    deadline = time.monotonic() + timeout
    timed_out = False

    def done() -> bool:
        nonlocal timed_out
        if server.process.poll() is not None and client.process.poll() is not None:
            return True
        timed_out = time.monotonic() > deadline
        return timed_out

    try:
        if datapath is None:
            while not done():
                time.sleep(0.005)
        else:
            datapath.run(done)
    finally:
        if timed_out:
            server.kill()
            client.kill()
    return not timed_out


def gbps(byte_count: int, seconds: float) -> float:
    """Goodput in Gbit/s."""
    return round(byte_count * 8 / seconds / 1e9, 4) if seconds > 0 else 0.0


class CpuMeter:
    """CPU time spent between its creation and :meth:`read`: this process (the datapath), its reaped
    children (the endpoints), and the whole machine (/proc/stat: softirq work lands wherever it runs)."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float, float]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal: busy is all but idle and iowait
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
        return (time.monotonic(), own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime, busy)

    def read(self) -> dict[str, float]:
        """Seconds since creation: wall, datapath (user+sys), endpoints (user+sys), machine busy."""
        end = self._sample()
        wall, datapath, endpoints, machine = (after - before for after, before in zip(end, self.start, strict=True))
        return {"wall_s": round(wall, 3), "datapath_cpu_s": round(datapath, 3),
                "endpoints_cpu_s": round(endpoints, 3), "machine_busy_cpu_s": round(machine, 3)}


def _stats(datapath: Datapath | None) -> dict[str, Any]:
    return datapath.stats() if datapath is not None else {"link": "kernel: a plain veth, its default offloads"}


def _transfer(
    datapath: Datapath | None, topology: Topology | KernelTopology, server_args: tuple[str, ...],
    client_args: tuple[str, ...], timeout: float,
) -> tuple[dict[str, Any], dict[str, Any]] | dict[str, Any]:
    """Run a server in east and a client in west through the datapath: (east, west) results, or a failure."""
    server = spawn(server_args[0], topology.east.netns, *server_args[1:], timeout=timeout)
    client = None
    try:
        wait_ready(server, 10)
        client = spawn(client_args[0], topology.west.netns, *client_args[1:], timeout=timeout)
        if not run_pair(datapath, server, client, timeout):
            return {"verified": False, "error": f"no completion within {timeout} s", "datapath": _stats(datapath)}
        east, west = server.result(), client.result()
    finally:
        server.kill()
        if client is not None:
            client.kill()
    if "error" in east or "error" in west:
        return {"verified": False, "error": east.get("error") or west.get("error"), "datapath": _stats(datapath)}
    return east, west


def tcp_case(datapath: Datapath | None, topology: Topology | KernelTopology, family: int, size: int,
             timeout: float) -> dict[str, Any]:
    """One TCP transfer west->east, then the same amount east->west on the same connection (without a
    datapath: across the kernel's own veth)."""
    host = topology.east.ipv4 if family == 4 else topology.east.ipv6
    meter = CpuMeter()
    outcome = _transfer(datapath, topology, ("tcp-server", host, "--back-bytes", str(size)),
                        ("tcp-client", host, "--bytes", str(size)), timeout)
    cpu = meter.read()
    if isinstance(outcome, dict):
        return outcome
    east, west = outcome
    forward_ok = east["recv_bytes"] == west["sent_bytes"] == size and east["recv_sha256"] == west["sent_sha256"]
    back_ok = west["recv_bytes"] == east["sent_bytes"] == size and west["recv_sha256"] == east["sent_sha256"]
    return {
        "verified": forward_ok and back_ok,
        "west_to_east": {"bytes": east["recv_bytes"], "verified": forward_ok,
                         "gbps": gbps(east["recv_bytes"], east["recv_seconds"])},
        "east_to_west": {"bytes": west["recv_bytes"], "verified": back_ok,
                         "gbps": gbps(west["recv_bytes"], west["recv_seconds"])},
        "cpu": cpu,
        "datapath": _stats(datapath),
    }


def udp_case(datapath: Datapath, topology: Topology, size: int, timeout: float) -> dict[str, Any]:
    """UDP west->east with UDP_SEGMENT: every datagram that arrives must be intact; loss is reported."""
    host = topology.east.ipv4
    datagram = 1400
    outcome = _transfer(datapath, topology, ("udp-server", host, "--datagram", str(datagram)),
                        ("udp-client", host, "--bytes", str(size), "--datagram", str(datagram)), timeout)
    if isinstance(outcome, dict):
        return outcome
    east, west = outcome
    sent = west["sent"]
    return {
        "verified": east["corrupt"] == 0 and east["duplicate"] == 0 and east["intact"] > 0,
        "sent": sent,
        "intact": east["intact"],
        "corrupt": east["corrupt"],
        "duplicate": east["duplicate"],
        "loss": sent - east["intact"],
        "loss_ratio": round((sent - east["intact"]) / sent, 4) if sent else 0.0,
        "bytes": east["intact_bytes"],
        "gbps": gbps(east["intact_bytes"], east["recv_seconds"]),
        "datapath": datapath.stats(),
    }


def capture_path(base: str, mode: str) -> str:
    """FILE.pcap -> FILE-<mode>.pcap."""
    root, ext = os.path.splitext(base)
    return f"{root}-{mode}{ext or '.pcap'}"


def run_mode(options: DatapathOptions, mode: str, run_id: str) -> dict[str, Any]:
    """Every case of one mode in fresh namespaces."""
    results: dict[str, Any] = {"link_profile": options.link_device(mode).name}
    with options.topology(run_id, mode) as topology:
        west_tap, _ = topology.taps
        results["tap_offloads"] = hex(west_tap.offloads)
        capture: CaptureHook | None = None
        writer = None
        if options.capture:
            from .pcap import LinkCapture

            writer = LinkCapture(capture_path(options.capture, mode))
            capture = writer
            results["capture"] = writer.path
        try:

            def datapath() -> Datapath:
                return Datapath(topology, options.link_device(mode), options.labels, options.back_labels,
                                capture=capture, ttl=options.ttl, engine=options.engine, gro=options.gro)

            with closing(datapath()) as hop:
                results["tcp4"] = tcp_case(hop, topology, 4, options.bytes, options.timeout)
            if options.ipv6:
                with closing(datapath()) as hop:
                    results["tcp6"] = tcp_case(hop, topology, 6, options.bytes, options.timeout)
            if options.udp:
                with closing(datapath()) as hop:
                    results["udp4"] = udp_case(hop, topology, options.bytes // 4, options.timeout)
        finally:
            if writer is not None:
                writer.close()
    return results


def uso_available(options: DatapathOptions) -> bool:
    """The running kernel accepts TUN_F_USO4|USO6 on a TAP."""
    from .tap import TUN_F_TSO, Tap

    tap = Tap.open(f"sgu{os.getpid()}"[:15], vnet_hdr_len=options.vnet_hdr_len, offloads=TUN_F_TSO)
    try:
        return tap.uso
    finally:
        tap.close()


def run_selftest(options: DatapathOptions) -> dict[str, Any]:
    """Run the self-test in every requested mode; one JSON-ready dict (see the module docstring)."""
    options.validate()
    require_root()
    uso = uso_available(options)
    run_options = DatapathOptions(**{**options.__dict__, "udp": options.udp and uso})
    result: dict[str, Any] = {
        "kernel": os.uname().release,
        "labels": list(options.labels),
        "return_labels": list(options.back_labels),
        "mtu": options.mtu,
        "uso": uso,
        "modes": {},
        "bytes": {},
    }
    verified = True
    for index, mode in enumerate(options.modes):
        mode_result = run_mode(run_options, mode, f"{os.getpid()}{index}")
        result["modes"][mode] = mode_result
        cases = [mode_result[c] for c in ("tcp4", "tcp6", "udp4") if c in mode_result]
        verified = verified and all(case["verified"] for case in cases)
        tcp_bytes = sum(case[d]["bytes"] for case in cases if "west_to_east" in case
                        for d in ("west_to_east", "east_to_west"))
        result["bytes"][mode] = tcp_bytes
        tcp4 = mode_result["tcp4"]
        key = {"sw-gso": "sw_gso_gbps", "hw-gso": "hw_gso_gbps", "no-gso": "nogso_gbps"}[mode]
        result[key] = tcp4.get("west_to_east", {}).get("gbps", 0.0)
        if options.ipv6:
            result[key.replace("_gbps", "_gbps_ipv6")] = mode_result["tcp6"].get("west_to_east", {}).get("gbps", 0.0)
        mode_result["cost"] = mode_cost(mode_result)
    if options.kernel_ceiling:
        kernel = run_kernel_ceiling(run_options, f"{os.getpid()}k")
        result["kernel_link"] = kernel
        verified = verified and all(kernel[c]["verified"] for c in ("tcp4", "tcp6") if c in kernel)
        result["kernel_gbps"] = kernel["tcp4"].get("west_to_east", {}).get("gbps", 0.0)
        if options.ipv6:
            result["kernel_gbps_ipv6"] = kernel["tcp6"].get("west_to_east", {}).get("gbps", 0.0)
        kernel["cost"] = mode_cost(kernel)
    result["targets"] = targets(result)
    result["verified"] = verified
    return result


def mode_cost(mode_result: dict[str, Any]) -> dict[str, Any]:
    """CPU seconds per GB moved (TCP cases, both directions) and the LERs' system calls per MB."""
    cases = [mode_result[c] for c in ("tcp4", "tcp6") if "cpu" in mode_result.get(c, {})]
    moved = sum(case[d]["bytes"] for case in cases for d in ("west_to_east", "east_to_west"))
    if not moved:
        return {}
    gigabytes, megabytes = moved / 1e9, moved / 1e6
    cost: dict[str, Any] = {"bytes": moved}
    for key in ("datapath_cpu_s", "endpoints_cpu_s", "machine_busy_cpu_s"):
        cost[key.replace("_s", "_s_per_gb")] = round(sum(case["cpu"][key] for case in cases) / gigabytes, 3)
    calls = 0
    for case in cases:
        stats = case["datapath"]
        if "epoll_waits" in stats:
            calls += stats["epoll_waits"]
            calls += sum(sum(stats[d].get("syscalls", {}).values()) for d in ("west_to_east", "east_to_west"))
    if calls:
        cost["ler_syscalls_per_mb"] = round(calls / megabytes, 2)
    return cost


def targets(result: dict[str, Any]) -> dict[str, Any]:
    """The self-test's targets, measured in this run: sw-gso >= 3x no-gso, sw-gso >= 0.3x the kernel's own."""
    out: dict[str, Any] = {}
    for family, suffix in (("ipv4", ""), ("ipv6", "_ipv6")):
        sw = result.get(f"sw_gso_gbps{suffix}")
        nogso = result.get(f"nogso_gbps{suffix}")
        kernel = result.get(f"kernel_gbps{suffix}")
        entry: dict[str, Any] = {}
        if sw is not None and nogso:
            entry["sw_over_nogso"] = round(sw / nogso, 2)
            entry["sw_over_nogso_met"] = sw >= 3 * nogso
        if sw is not None and kernel:
            entry["sw_over_kernel"] = round(sw / kernel, 3)
            entry["sw_over_kernel_met"] = sw >= 0.3 * kernel
        if entry:
            out[family] = entry
    return out


def run_kernel_ceiling(options: DatapathOptions, run_id: str) -> dict[str, Any]:
    """The same TCP transfers over a plain veth between west and east: the kernel's own GSO/GRO, no hop."""
    results: dict[str, Any] = {"link": "plain veth, default offloads (TSO, GRO, checksum)"}
    with KernelTopology(run_id, mtu=options.mtu) as topology:
        results["tcp4"] = tcp_case(None, topology, 4, options.bytes, options.timeout)
        if options.ipv6:
            results["tcp6"] = tcp_case(None, topology, 6, options.bytes, options.timeout)
    return results


def print_selftest(result: dict[str, Any], console: Console) -> None:
    """Goodput of every mode side by side."""
    table = Table(title=f"softgso datapath self-test (Linux {result['kernel']}, labels {result['labels']})")
    table.add_column("case")
    modes = list(result["modes"])
    for mode in modes:
        table.add_column(mode, justify="right")

    def cell(mode: str, case: str, direction: str | None) -> str:
        entry = result["modes"][mode].get(case)
        if entry is None:
            return "-"
        if "error" in entry:
            return "[red]" + str(entry["error"])[:40] + "[/]"
        if direction is None:
            mark = "" if entry["verified"] else " [red]CORRUPT[/]"
            return f"{entry['gbps']:.3f} Gbit/s, loss {entry['loss_ratio']:.1%}{mark}"
        part = entry[direction]
        return f"{part['gbps']:.3f} Gbit/s" + ("" if part["verified"] else " [red]MISMATCH[/]")

    rows = [("TCP/IPv4 west->east", "tcp4", "west_to_east"), ("TCP/IPv4 east->west", "tcp4", "east_to_west"),
            ("TCP/IPv6 west->east", "tcp6", "west_to_east"), ("TCP/IPv6 east->west", "tcp6", "east_to_west"),
            ("UDP/IPv4 (USO) west->east", "udp4", None)]
    for title, case, direction in rows:
        if any(case in result["modes"][m] for m in modes):
            table.add_row(title, *(cell(m, case, direction) for m in modes))
    table.add_row("segments per super-packet (TCP/IPv4 w->e)", *(
        str(result["modes"][m]["tcp4"].get("datapath", {}).get("west_to_east", {}).get("segments_per_gso_packet", "-"))
        for m in modes))
    if "kernel_gbps" in result:
        table.add_row("kernel's own veth (ceiling), TCP/IPv4 w->e", *(f"{result['kernel_gbps']:.3f} Gbit/s"
                                                                       for _ in modes))
    table.add_row("CPU s per GB (datapath / whole machine)", *(
        f"{cost.get('datapath_cpu_s_per_gb', 0):.2f} / {cost.get('machine_busy_cpu_s_per_gb', 0):.2f}"
        if (cost := result["modes"][m].get("cost")) else "-" for m in modes))
    table.add_row("LER system calls per MB", *(
        str(result["modes"][m].get("cost", {}).get("ler_syscalls_per_mb", "-")) for m in modes))
    table.add_row("link", *(
        "veth" if str(result["modes"][m]["tcp4"].get("datapath", {}).get("link", "")).startswith("veth")
        else "in-process (no kernel device carries MPLS super-packets)" for m in modes))
    console.print(table)
    for family, entry in result.get("targets", {}).items():
        parts = []
        if "sw_over_nogso" in entry:
            parts.append(f"sw-gso / no-gso {entry['sw_over_nogso']} (target 3)")
        if "sw_over_kernel" in entry:
            parts.append(f"sw-gso / kernel {entry['sw_over_kernel']} (target 0.3)")
        console.print(f"{family}: " + ", ".join(parts))
    verdict = "[green]every byte verified[/]" if result["verified"] else "[red]VERIFICATION FAILED[/]"
    console.print(f"{verdict}; bytes per mode: {result['bytes']}" + ("" if result["uso"] else "; no USO on this kernel"))
