"""``softgso bench``: softgso against its anchors and peers, measured side by side in one run.

Absolute numbers on a shared VM are noise; the ratios measured in the same run are the result:

* ``segment`` (the whole command, in a child process, as a user runs it) against ``cp`` of the same
  file, both tmpfs to tmpfs;
* the engine alone, in memory (:class:`softgso.bulk.fastpath.FastSegmenter` writing every segment's
  bytes into a contiguous buffer) against a numpy memcpy of the same bytes;
* ``tcprewrite --fragroute`` with a ``tcp_seg`` config (Debian's tcpreplay) on the IPv4 part,
  and a naive Scapy segmenter (:mod:`softgso.check.scapy_segmenter`, Scapy being the optional
  extra ``softgso[bench]``), on smaller inputs; a peer that is not installed is left out with a
  message (its key in the JSON, its row in the table);
* small packets that need no segmentation, in packets per second;
* the peak resident memory of ``segment`` (bounded by its buffers, whatever the file size).

Inputs are generated here (:func:`write_capture`, from :mod:`softgso.check.synth`): 64 KB TCP/IPv4,
TCP/IPv6 and MPLS (1 and 3 labels) super-packets with full checksums by default (or inside VXLAN,
Geneve, GRE, IP-in-IP or FOU/GUE tunnels: the vxlan, geneve, gre, ipip and fou mixes), sent in bursts
per flow as a TSO stack sends them. No time counts unless the tool's output is right: copies are
compared with their input, segmentations checked by :mod:`softgso.check.segcheck`.
"""

from __future__ import annotations

import filecmp
import functools
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..check.synth import SuperPacketSpec, TunnelSpec, build_frame, encapsulate
from ..constants import ETH_P_8021Q, ETH_P_MPLS_UC
from ..io.pcap import pcap_file_header
from ..io.record import LINKTYPE_ETHERNET

MIXES: dict[str, list[dict[str, Any]]] = {
    "tcp4": [dict(ipv6=False)],
    "tcp6": [dict(ipv6=True)],
    "mpls": [dict(ipv6=False, labels=1), dict(ipv6=False, labels=3)],
    "issue": [dict(ipv6=False), dict(ipv6=True), dict(ipv6=False, labels=1), dict(ipv6=True, labels=3)],
    "vlan": [dict(ipv6=False, vlan=True), dict(ipv6=True, vlan=True, labels=2)],
    "uso": [dict(ipv6=False, udp=True), dict(ipv6=True, udp=True)],
    "all": [dict(ipv6=False), dict(ipv6=True), dict(ipv6=False, labels=1), dict(ipv6=False, labels=3),
            dict(ipv6=True, labels=2), dict(ipv6=False, vlan=True), dict(ipv6=False, udp=True),
            dict(ipv6=True, udp=True)],
    # tunnels (synth.encapsulate: outer headers as the Linux device writes them): inner TCP/IPv4 and
    # TCP/IPv6, over outer IPv4 (UDP checksum 0, the default) and outer IPv6 (checksum required)
    "vxlan": [dict(ipv6=False, tunnel="vxlan"), dict(ipv6=True, tunnel="vxlan"),
              dict(ipv6=False, tunnel="vxlan", outer6=True), dict(ipv6=True, tunnel="vxlan", outer6=True)],
    "geneve": [dict(ipv6=False, tunnel="geneve"), dict(ipv6=True, tunnel="geneve"),
               dict(ipv6=False, tunnel="geneve", outer6=True), dict(ipv6=True, tunnel="geneve", outer6=True)],
    "gre": [dict(ipv6=False, tunnel="gretap"), dict(ipv6=True, tunnel="gre", gre_key=7, gre_csum=True),
            dict(ipv6=False, tunnel="gretap", outer6=True, gre_csum=True), dict(ipv6=True, tunnel="gre", outer6=True)],
    "ipip": [dict(ipv6=False, tunnel="ipip"), dict(ipv6=True, tunnel="ipip"), dict(ipv6=False, tunnel="ipip", outer6=True)],
    # FOU and GUE over ipip/sit (no port of their own: segment and segcheck are told synth.FOU_UDP_PORTS')
    "fou": [dict(ipv6=False, tunnel="fou"), dict(ipv6=True, tunnel="fou"), dict(ipv6=False, tunnel="gue"),
            dict(ipv6=True, tunnel="gue", outer6=True)],
}
PAYLOAD = 64000
# a peer that is missing: the message in the JSON (its key "tcprewrite" or "scapy") and in the table
TCPREWRITE_MISSING = "left out: tcprewrite is not installed (Debian's tcpreplay)"
SCAPY_MISSING = "left out: Scapy is not installed (pip install 'softgso[bench]')"
BURST = 16
TIMESTAMPS = b"\x01\x01\x08\x0a" + bytes(8)


def udp_gso_args(mix: str) -> list[str]:
    """segment's options for the mix: its UDP super-packets are USO (a capture cannot say it), and the
    ports of its FOU and GUE tunnels (``--tunnel-port``: they have none of their own)."""
    args = ["--udp-gso", "udp_l4"] if any(shape.get("udp") for shape in MIXES[mix]) else []
    for port, kind in sorted(mix_tunnel_ports(mix).items()):
        args += ["--tunnel-port", f"{kind.lower()}:{port}"]
    return args


def mix_tunnel_ports(mix: str) -> dict[int, str]:
    """The UDP tunnel ports of the mix's FOU and GUE shapes, as segcheck's ``udp_tunnels`` takes them."""
    from ..check.synth import FOU_UDP_PORTS

    kinds = {shape["tunnel"] for shape in MIXES[mix] if shape.get("tunnel") in FOU_UDP_PORTS}
    return {FOU_UDP_PORTS[kind]: kind.upper() for kind in sorted(kinds)}


def parse_size(text: str) -> int:
    """'512M', '64k', '1G' or a number of bytes."""
    text = text.strip().upper().removesuffix("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def _frames(mix: list[dict[str, Any]], payload_len: int, partial: bool = False, burst: int = BURST) -> Iterator[bytes]:
    """Super-packets flow by flow, ``burst`` consecutive packets per flow (seq and IP ID advancing)."""
    payloads = [os.urandom(payload_len) for _ in mix]
    seqs = [1_000_000 * (i + 1) for i in range(len(mix))]
    ids = [0x1000 * (i + 1) for i in range(len(mix))]
    while True:
        for flow, shape in enumerate(mix):
            for _ in range(burst):
                spec = SuperPacketSpec(
                    ipv6=bool(shape.get("ipv6")), udp=bool(shape.get("udp")), payload=payloads[flow],
                    tcp_options=b"" if shape.get("udp") else TIMESTAMPS, seq=seqs[flow], ip_id=ids[flow],
                    sport=40000 + flow, partial_checksum=partial,
                    vlan_tags=((ETH_P_8021Q, 100 + flow),) if shape.get("vlan") else (),
                )
                frame = build_frame(spec)
                labels = int(shape.get("labels", 0))
                if labels:
                    split = 12 + 4 * len(spec.vlan_tags)
                    stack = b"".join(struct.pack("!I", ((100 + i) << 12) | (1 << 8 if i == labels - 1 else 0) | 64)
                                     for i in range(labels))
                    frame = frame[:split] + struct.pack("!H", ETH_P_MPLS_UC) + stack + frame[split + 2 :]
                if shape.get("tunnel"):
                    frame = encapsulate(frame, TunnelSpec(
                        kind=shape["tunnel"], outer_ipv6=bool(shape.get("outer6")), gre_key=shape.get("gre_key"),
                        gre_csum=bool(shape.get("gre_csum")), ip_id=(ids[flow] + 0x4000) & 0xFFFF))
                seqs[flow] = (seqs[flow] + payload_len) & 0xFFFFFFFF
                ids[flow] = (ids[flow] + 1) & 0xFFFF
                yield frame


def pcapng_start(linktype: int = LINKTYPE_ETHERNET) -> bytes:
    """A pcapng file's opening: a Section Header Block (little-endian, version 1.0, length not given)
    and one Interface Description Block (snaplen 262144, microseconds), as pcapng's spec lays them out."""
    return (struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
            + struct.pack("<IIHHII", 1, 20, linktype, 0, 262144, 20))


# link types the bench writes besides Ethernet (tcpdump.org's LINKTYPE_ list): the number, and the
# record an Ethernet frame of IPv4 or IPv6 becomes (SLL2: protocol, interface 2, ARPHRD_ETHER,
# outgoing, the source MAC as its address; raw IP: the IP packet alone)
LINK_TYPES: dict[str, tuple[int, Callable[[bytes], bytes]]] = {
    "ethernet": (LINKTYPE_ETHERNET, lambda frame: frame),
    "sll2": (276, lambda frame: struct.pack("!HHIHBB8s", int.from_bytes(frame[12:14], "big"), 0, 2, 1, 4, 6,
                                            frame[6:12] + bytes(2)) + frame[14:]),
    "raw": (101, lambda frame: frame[14:]),
}


def record_bytes(frame: bytes, count: int, capture_format: str) -> bytes:
    """Record ``count``'s framing before ``frame`` (pcap's record header, or an EPB's first 28 bytes on
    interface 0) and after it (an EPB's padding and trailing length), the timestamp ``count`` ms in."""
    seconds, micros = 1_700_000_000 + count // 1000, count % 1000 * 1000
    if capture_format == "pcap":
        return struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame
    ticks = seconds * 1_000_000 + micros
    padding = -len(frame) % 4
    length = 32 + len(frame) + padding
    return (struct.pack("<IIIIIII", 6, length, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame)) + frame
            + bytes(padding) + struct.pack("<I", length))


def write_capture(path: Path, size: int, mix: str = "issue", payload_len: int = PAYLOAD,
                  frames: Iterator[bytes] | None = None, capture_format: str = "pcap", link: str = "ethernet") -> int:
    """Write a classic pcap (or a pcapng: ``capture_format``) of about ``size`` bytes, its frames in
    link type ``link`` (LINK_TYPES; IP frames only for another than Ethernet); returns the number of packets."""
    linktype, convert = LINK_TYPES[link]
    source = map(convert, frames if frames is not None else _frames(MIXES[mix], payload_len))
    count = 0
    if capture_format == "pcap":
        header = pcap_file_header("little", nanosecond=False, snaplen=262144, linktype_field=linktype)
    else:
        header = pcapng_start(linktype)
    written = len(header)
    with open(path, "wb") as handle:
        handle.write(header)
        batch: list[bytes] = []
        while written < size:
            record = record_bytes(next(source), count, capture_format)
            batch.append(record)
            written += len(record)
            count += 1
            if len(batch) > 256:
                handle.write(b"".join(batch))
                batch.clear()
        handle.write(b"".join(batch))
    return count


def small_frames() -> Iterator[bytes]:
    """Small TCP/IPv4 packets with full checksums: nothing to segment."""
    base = [build_frame(SuperPacketSpec(payload=os.urandom(n), partial_checksum=False, seq=i * 7))
            for i, n in enumerate((64, 200, 512, 1000))]
    while True:
        yield from base


# --- timing helpers ------------------------------------------------------------------------------


@dataclass
class Timed:
    """One child process: wall seconds and peak resident memory (KiB)."""

    seconds: float
    max_rss_kib: int
    cpu_seconds: float = 0.0  # user + system (wait4)


# Linux keeps a process's peak resident set across exec, so a command forked from this process
# (tens of MiB of Python) would report at least ours. A small launcher (a bare interpreter, about
# 10 MiB) forks the command instead and reports its wall time and wait4 figures on a pipe.
_LAUNCHER = """
import os, sys, time
report = int(sys.argv[1])
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.close(report)
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    except OSError as error:
        os.write(2, f"{sys.argv[2]}: {error.strerror}\\n".encode())
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
elapsed = time.perf_counter() - started
os.write(report, f"{elapsed!r} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)} "
               f"{usage.ru_utime + usage.ru_stime!r}".encode())
"""


def run_child(argv: list[str]) -> Timed:
    """Run a command, measuring its wall time and its own peak RSS (wait4, in a small launcher)."""
    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCHER, str(write_end), *argv],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(write_end,))
    finally:
        os.close(write_end)
    # stderr first, to its end (the command and the launcher gone), then the few bytes of the report
    _, errors = process.communicate()
    with os.fdopen(read_end, "rb") as report:
        figures = report.read().decode().split()
    stderr = errors.decode(errors="replace")
    if len(figures) != 4 or process.returncode != 0 or figures[2] != "0":
        raise RuntimeError(f"{' '.join(argv)} failed ({figures[2] if len(figures) == 4 else process.returncode}): "
                           f"{stderr[-400:]}")
    return Timed(float(figures[0]), int(figures[1]), float(figures[3]))


def _peer_check(capture: Path, out: Path, udp_tunnels: dict[int, str] | None = None) -> dict[str, Any]:
    """segcheck's verdict on a peer's output: reported either way (a failing peer's ratio is left out)."""
    from ..check.segcheck import check_segmented

    return check_segmented(capture, out, udp_tunnels=udp_tunnels).as_dict()


def _checked(tool: str, capture: Path, out: Path, udp_tunnels: dict[int, str] | None = None) -> dict[str, Any]:
    """segcheck's verdict on softgso's output (``udp_tunnels``: FOU/GUE ports, mix_tunnel_ports); a
    RuntimeError if it fails (no time of a wrong output counts)."""
    verdict = _peer_check(capture, out, udp_tunnels)
    if not verdict["ok"]:
        raise RuntimeError(f"{tool}: output fails the check ({verdict['problems']} problems): "
                           + "; ".join(verdict["first_problems"][:3]))
    return verdict


def softgso_command() -> list[str]:
    """The installed ``softgso`` script beside this interpreter (the command as a user runs it), else ``-m``."""
    script = Path(sys.executable).parent / "softgso"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "softgso"]


def best(repeat: int, function: Callable[[], Timed]) -> Timed:
    """The fastest of ``repeat`` runs (peak RSS: the largest seen)."""
    runs = [function() for _ in range(repeat)]
    return Timed(min(r.seconds for r in runs), max(r.max_rss_kib for r in runs))


def scratch_dir() -> Path:
    """A tmpfs directory when there is one (cp and softgso both write to memory)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="softgso-bench-", dir=base))


# --- the measurements ----------------------------------------------------------------------------


def measure_cli(work: Path, size: int, mix: str, repeat: int, capture_format: str = "pcap") -> dict[str, Any]:
    """``softgso segment`` against ``cp`` on the same capture (classic pcap or pcapng)."""
    capture = work / f"{mix}.{capture_format}"
    packets = write_capture(capture, size, mix, capture_format=capture_format)
    actual = capture.stat().st_size
    out = work / f"out.{capture_format}"
    copy = work / f"copy.{capture_format}"
    from ..bulk import compiled_primitive

    # where the compiled stream runs by default, the numpy stream is timed beside it
    numpy_too = compiled_primitive.available()
    # alternated, so that all see the same machine; the fastest of each counts
    cp_runs, softgso_runs, numpy_runs = [], [], []
    # the command as a user types it: its summary table included (to a pipe, as from a script)
    segment = [*softgso_command(), "segment", str(capture), str(out), *udp_gso_args(mix)]
    # every tool's output is checked (softgso.check.segcheck, cmp for cp) on a first run, before any time counts
    checks = {}
    for turn in range(repeat + 1):
        checking = turn == 0
        cp_run = run_child(["cp", str(capture), str(copy)])
        if checking and not filecmp.cmp(capture, copy, shallow=False):
            raise RuntimeError("cp's copy differs from its input")
        copy.unlink()
        softgso_run = run_child(segment)
        if checking:
            checks["softgso_output_check"] = _checked("softgso segment", capture, out, mix_tunnel_ports(mix))
        out.unlink()
        if not checking:
            cp_runs.append(cp_run)
            softgso_runs.append(softgso_run)
        if numpy_too:
            numpy_run = run_child([*segment, "--engine", "numpy"])
            if checking:
                checks["numpy_stream_output_check"] = _checked("softgso segment --engine numpy", capture, out,
                                                               mix_tunnel_ports(mix))
            else:
                numpy_runs.append(numpy_run)
            out.unlink()
    cp, softgso = (Timed(min(r.seconds for r in runs), max(r.max_rss_kib for r in runs))
                   for runs in (cp_runs, softgso_runs))
    # one more run for the output's size and segment count (its own summary, held to the check's count)
    summary = subprocess.run([*segment, "--json"], check=True, capture_output=True, text=True).stdout
    segments_out = int(json.loads(summary)["records_out"])
    if segments_out != checks["softgso_output_check"]["packets_out"]:
        raise RuntimeError(f"softgso's summary says {segments_out} packets out, its output holds "
                           f"{checks['softgso_output_check']['packets_out']}")
    out_size = out.stat().st_size
    for path in (out, copy):
        path.unlink(missing_ok=True)
    return {
        **checks, "cp_output_identical": True, "format": capture_format,
        "mix": mix, "input_bytes": actual, "packets": packets, "output_bytes": out_size,
        "cp_seconds": cp.seconds, "softgso_seconds": softgso.seconds,
        "cp_gbit_s": actual * 8 / cp.seconds / 1e9, "softgso_gbit_s": actual * 8 / softgso.seconds / 1e9,
        "segments_out": segments_out, "softgso_mpps_out": segments_out / softgso.seconds / 1e6,
        "softgso_over_cp": cp.seconds / softgso.seconds, "softgso_max_rss_mib": softgso.max_rss_kib / 1024,
        "capture": str(capture),
        # every timed run, alternated (wall, user + system CPU seconds), and the CPU of the fastest
        "cp_runs": [[r.seconds, r.cpu_seconds] for r in cp_runs],
        "softgso_runs": [[r.seconds, r.cpu_seconds] for r in softgso_runs],
        "cp_cpu_seconds": min(cp_runs, key=lambda r: r.seconds).cpu_seconds,
        "softgso_cpu_seconds": min(softgso_runs, key=lambda r: r.seconds).cpu_seconds,
        # CPU seconds (user + system) of softgso over cp's, the median of the alternated pairs
        "softgso_cpu_over_cp": sorted(s.cpu_seconds / max(c.cpu_seconds, 1e-9)
                                      for s, c in zip(softgso_runs, cp_runs, strict=True))[len(cp_runs) // 2],
        **({"numpy_stream_seconds": min(r.seconds for r in numpy_runs),
            "numpy_stream_over_cp": cp.seconds / min(r.seconds for r in numpy_runs)} if numpy_runs else {}),
    }


def measure_engine(capture: Path, repeat: int, limit: int = 256 << 20, batch: int = 64,
                   engine: str = "auto", mix: str = "issue") -> dict[str, Any]:
    """The engine alone on the capture's super-packets (in memory) against numpy memcpy of the same bytes.

    Packets of one shape are handed to the engine ``batch`` at a time (the bulk API's unit of work);
    every segment's bytes are written, contiguous, into preallocated output buffers: the compiled
    engine (softgso.bulk._segment, the default where built) writes each segment behind its pcap record
    header as ``segment`` does, the numpy one (softgso.bulk.fastpath) the segments alone. ``mix``: the
    capture's (its FOU/GUE ports are the engine's tunnel ports, as ``segment --tunnel-port``'s).
    """
    import numpy as np

    from ..bulk import compiled_primitive
    from ..bulk.fastpath import FastSegmenter
    from ..features import PROFILES
    from ..job import SegmentOptions

    compiled = engine == "compiled" or (engine == "auto" and compiled_primitive.available())
    ports = mix_tunnel_ports(mix)
    # the bench's UDP super-packets are USO
    options = SegmentOptions(device=PROFILES["no-offload"], udp_gso="udp_l4",
                             tunnel_ports=tuple((port, kind) for port, kind in ports.items()))
    raw = np.fromfile(capture, dtype=np.uint8, count=limit)
    segmenter = compiled_primitive.CompiledSegmenter(options) if compiled else None
    fast = segmenter.fast if segmenter is not None else FastSegmenter(options)
    by_plan: dict[Any, list[int]] = {}
    pos = 24
    view = memoryview(raw)  # type: ignore[arg-type]
    while pos + 16 <= raw.size:
        caplen = int.from_bytes(view[pos + 8 : pos + 12], "little")
        if pos + 16 + caplen > raw.size:
            break
        plan = fast.plan_for(view[pos + 16 : pos + 16 + caplen])
        if plan is None:
            raise RuntimeError("a benchmark packet is not on the bulk path")
        by_plan.setdefault(plan, []).append(pos)
        pos += 16 + caplen
    prefix = 16 if compiled else 0
    runs: list[tuple[Any, Any, Any]] = []  # (plan, the engine's input, output buffer)
    for plan, places in by_plan.items():
        for start in range(0, len(places), batch):
            chunk = places[start : start + batch]
            out = np.zeros(len(chunk) * plan.out_len(prefix), dtype=np.uint8)  # pages touched outside the timing
            if compiled:
                jobs = array("q")
                for number, at in enumerate(chunk):
                    jobs.extend((at, number * plan.out_len(prefix), number))
                runs.append((plan, jobs, out))
            else:
                frames = np.stack([raw[at + 16 : at + 16 + plan.frame_len] for at in chunk])
                runs.append((plan, frames, out.reshape(len(chunk), plan.out_len())))
    in_bytes = sum(len(places) * plan.frame_len for plan, places in by_plan.items())
    out_bytes = sum(out.size for _, _, out in runs)
    codes = bytearray(batch)

    def run_engine() -> float:
        started = time.perf_counter()
        if segmenter is not None:
            for plan, jobs, out in runs:
                segmenter.segment_records(plan, raw, jobs, False, out, codes)
        else:
            for plan, frames, out in runs:
                fast.segment_run(plan, frames, out)
        return time.perf_counter() - started

    source = raw[:in_bytes]
    target = np.empty_like(source)
    target.fill(0)

    def memcpy() -> float:
        started = time.perf_counter()
        np.copyto(target, source)
        return time.perf_counter() - started

    # alternated, so that both see the same machine
    engine_runs, memcpy_runs = [], []
    for _ in range(repeat):
        engine_runs.append(run_engine())
        memcpy_runs.append(memcpy())
    engine_s, memcpy_s = min(engine_runs), min(memcpy_runs)
    if not np.array_equal(target, source):
        raise RuntimeError("memcpy's copy differs from its input")
    segments = sum(len(places) * plan.segments for plan, places in by_plan.items())
    # what the engine wrote, as a capture, checked against the packets it was given
    given, produced = capture.with_name("engine-in.pcap"), capture.with_name("engine-out.pcap")
    try:
        given.write_bytes(raw[:pos].tobytes())
        with open(produced, "wb") as handle:
            handle.write(bytes(raw[:24]))
            for plan, _, out in runs:
                if compiled:
                    handle.write(out.tobytes())  # records, their headers written by the engine
                    continue
                full, _ = plan.segment_lengths()
                for row in out:
                    for start in range(0, row.size, full):
                        length = min(full, row.size - start)
                        handle.write(struct.pack("<IIII", 0, 0, length, length))
                        handle.write(row[start : start + length].tobytes())
        check = _checked(f"the {'compiled' if compiled else 'numpy'} engine", given, produced, ports)
    finally:
        given.unlink(missing_ok=True)
        produced.unlink(missing_ok=True)
    return {
        "engine_output_check": check,
        "engine": "compiled" if compiled else "numpy",
        "engine_input_bytes": in_bytes, "engine_output_bytes": out_bytes, "engine_segments": segments,
        "engine_seconds": engine_s, "memcpy_seconds": memcpy_s,
        "engine_gbyte_s": in_bytes / engine_s / 1e9, "memcpy_gbyte_s": in_bytes / memcpy_s / 1e9,
        "engine_over_memcpy": memcpy_s / engine_s, "engine_segments_per_s": segments / engine_s,
        "engine_batch": batch,
    }


def alternate_with_cp(capture: Path, out: Path, command: list[str], repeat: int,
                      check: Callable[[], dict[str, Any]]) -> tuple[list[Timed], list[Timed], dict[str, Any]]:
    """``cp`` of ``capture`` and ``command`` (which writes ``out``) alternated ``repeat + 1`` times, so that
    both see the same machine; the first turn is not timed: its output goes to ``check()``, which raises on
    a wrong one (no time of a wrong output counts). The timed runs of cp and of the command, the verdict."""
    copy = out.with_name(out.name + ".cp")
    cp_runs: list[Timed] = []
    runs: list[Timed] = []
    verdict: dict[str, Any] = {}
    for turn in range(repeat + 1):
        cp_run = run_child(["cp", str(capture), str(copy)])
        copy.unlink()
        run = run_child(command)
        if turn == 0:
            verdict = check()
        else:
            cp_runs.append(cp_run)
            runs.append(run)
        out.unlink()
    return cp_runs, runs, verdict


def against_cp(name: str, cp_runs: list[Timed], runs: list[Timed]) -> dict[str, Any]:
    """``{name}_seconds``, ``_cpu_seconds`` (user + system) and cp's, of the fastest of each;
    ``{name}_over_cp`` (wall: cp's time over the command's), ``{name}_cpu_over_cp`` (CPU: the command's over
    cp's); every timed run, alternated (wall, CPU)."""
    cp = min(cp_runs, key=lambda r: r.seconds)
    fastest = min(runs, key=lambda r: r.seconds)
    return {f"{name}_seconds": fastest.seconds, f"{name}_cpu_seconds": fastest.cpu_seconds,
            f"{name}_cp_seconds": cp.seconds, f"{name}_cp_cpu_seconds": cp.cpu_seconds,
            f"{name}_over_cp": cp.seconds / fastest.seconds,
            f"{name}_cpu_over_cp": fastest.cpu_seconds / max(cp.cpu_seconds, 1e-9),
            f"{name}_runs": [[r.seconds, r.cpu_seconds] for r in runs],
            f"{name}_cp_runs": [[r.seconds, r.cpu_seconds] for r in cp_runs]}


def measure_coalesce(work: Path, size: int, repeat: int) -> dict[str, Any]:
    """``softgso coalesce`` against ``cp`` on MTU-sized TCP segments as ``segment`` writes them (plain TCP
    over IPv4, the tcp4 mix), its output checked by softgso.check.grocheck before any time counts."""
    from ..check.grocheck import check_coalesced

    supers, segments, out = (work / name for name in ("gro_in.pcap", "gro_segments.pcap", "gro_out.pcap"))
    write_capture(supers, size, "tcp4")
    subprocess.run([*softgso_command(), "segment", str(supers), str(segments), "-q"], check=True)
    supers.unlink()
    actual = segments.stat().st_size

    def check() -> dict[str, Any]:
        verdict = check_coalesced(segments, out).as_dict()
        if not verdict["ok"]:
            raise RuntimeError("softgso coalesce: output fails the check: " + "; ".join(verdict["first_problems"]))
        return verdict

    cp_runs, runs, verdict = alternate_with_cp(
        segments, out, [*softgso_command(), "coalesce", str(segments), str(out), "-q"], repeat, check)
    segments.unlink()
    report = {"coalesce_output_check": verdict, "coalesce_input_bytes": actual, **against_cp("coalesce", cp_runs, runs)}
    report["coalesce_gbit_s"] = actual * 8 / report["coalesce_seconds"] / 1e9
    return report


MSS = 1448  # a TCP segment's payload behind timestamps on a 1500-byte MTU


def host_frames(flows: int = 4, seed: int = 1) -> Iterator[bytes]:
    """What tcpdump sees on a host that sends bulk TCP with TSO and checksum offload: each flow's
    super-packets of 1 to 44 segments (a tenth ending in a part segment, as a write's tail does), each
    followed by up to two short frames whose checksum is the pseudo-header seed (the host's own ACKs
    and small segments), the flows taking turns at random."""
    import random

    rng = random.Random(seed)
    payload = os.urandom(44 * MSS)
    seqs = [1_000_000 * (flow + 1) for flow in range(flows)]
    ids = [0x1000 * (flow + 1) for flow in range(flows)]
    while True:
        flow = rng.randrange(flows)
        size = rng.randint(1, 44) * MSS if rng.random() > 0.1 else rng.randint(1, 44 * MSS)
        yield build_frame(SuperPacketSpec(payload=payload[:size], tcp_options=TIMESTAMPS, seq=seqs[flow],
                                          ip_id=ids[flow], sport=40000 + flow))
        seqs[flow] = (seqs[flow] + size) & 0xFFFFFFFF
        ids[flow] = (ids[flow] + 1) & 0xFFFF
        for _ in range(rng.randint(0, 2)):
            yield build_frame(SuperPacketSpec(payload=payload[: rng.choice((0, 0, 0, 100))], tcp_options=TIMESTAMPS,
                                              seq=5000, ip_id=ids[flow], sport=5201, dport=40000 + flow))
            ids[flow] = (ids[flow] + 1) & 0xFFFF


# the inputs of measure_formats (name, format, link type, the frames): 64 KB TCP/IPv4 super-packets in
# pcapng and other link types (LINK_TYPES), the issue mix's four flows taking turns packet by packet
# (as in most captures: runs of one packet each), and a sending host's capture (host_frames)
FORMAT_ROWS: tuple[tuple[str, str, str, Callable[[], Iterator[bytes]]], ...] = (
    ("pcapng", "pcapng", "ethernet", lambda: _frames(MIXES["tcp4"], PAYLOAD)),
    ("sll2", "pcap", "sll2", lambda: _frames(MIXES["tcp4"], PAYLOAD)),
    ("raw", "pcap", "raw", lambda: _frames(MIXES["tcp4"], PAYLOAD)),
    ("interleaved", "pcap", "ethernet", lambda: _frames(MIXES["issue"], PAYLOAD, burst=1)),
    ("host", "pcapng", "ethernet", host_frames),
)


def measure_formats(work: Path, size: int, repeat: int) -> dict[str, Any]:
    """``softgso segment`` against ``cp`` on the same super-packets in pcapng and in other link types
    (SLL2, raw IP), on flows that take turns packet by packet and on a sending host's capture, wall and CPU seconds (user +
    system) of each, alternated; each output checked by softgso.check.segcheck before any time
    counts. Keys ``{name}_over_cp`` (wall, cp's time over softgso's), ``{name}_cpu_over_cp`` (CPU,
    softgso's over cp's) and their seconds."""
    report: dict[str, Any] = {}
    for name, capture_format, link, frames in FORMAT_ROWS:
        capture, out = (work / f"{name}{suffix}.{capture_format}" for suffix in ("", "-out"))
        write_capture(capture, size, capture_format=capture_format, link=link, frames=frames())
        cp_runs, runs, verdict = alternate_with_cp(
            capture, out, [*softgso_command(), "segment", str(capture), str(out)], repeat,
            functools.partial(_checked, f"softgso segment ({name})", capture, out))
        capture.unlink()
        report[f"{name}_output_check"] = verdict
        report.update(against_cp(name, cp_runs, runs))
    return report


def measure_checkers(work: Path, size: int, repeat: int) -> dict[str, Any]:
    """``softgso inspect IN`` and ``softgso diff IN OUT`` (OUT: segment's output) against ``segment IN OUT`` on
    64 KB TCP/IPv4 super-packets in pcapng, alternated in each of ``repeat`` turns (after one untimed turn
    whose outputs are checked: segment's by softgso.check.segcheck, diff's exit status 0, B what A
    becomes, inspect's prediction segment's own count). Keys ``inspect_over_segment`` and
    ``diff_over_segment`` (the median turn's wall-time ratio: the command's time over segment's),
    ``*_cpu_over_segment`` (CPU seconds, user + system) and every run's wall and CPU seconds."""
    import statistics

    capture, out = work / "checkers.pcapng", work / "checkers-out.pcapng"
    write_capture(capture, size, "tcp4", capture_format="pcapng")
    segment = [*softgso_command(), "segment", str(capture), str(out)]
    inspect = [*softgso_command(), "inspect", str(capture)]
    diff = [*softgso_command(), "diff", str(capture), str(out)]
    try:
        run_child(segment)
        _checked("softgso segment (pcapng)", capture, out)
        predicted = json.loads(subprocess.run([*inspect, "--json"], check=True, capture_output=True).stdout)
        written = json.loads(subprocess.run([*segment, "--json"], check=True, capture_output=True).stdout)
        if predicted["segment"]["records_out"] != written["records_out"]:
            raise RuntimeError("softgso inspect: its prediction is not what segment writes")
        run_child(diff)  # exit status 0: B is what A becomes (run_child raises on any other)
        runs: dict[str, list[Timed]] = {"segment": [], "inspect": [], "diff": []}
        for _ in range(repeat):
            runs["segment"].append(run_child(segment))
            runs["inspect"].append(run_child(inspect))
            runs["diff"].append(run_child(diff))
    finally:
        capture.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
    report: dict[str, Any] = {"checkers_input_bytes": size}
    for name, timed in runs.items():
        report[f"checkers_{name}_runs"] = [[r.seconds, r.cpu_seconds] for r in timed]
    for name in ("inspect", "diff"):
        turns = list(zip(runs[name], runs["segment"], strict=True))
        report[f"{name}_seconds"] = statistics.median(r.seconds for r in runs[name])
        report[f"{name}_cpu_seconds"] = statistics.median(r.cpu_seconds for r in runs[name])
        report[f"{name}_over_segment"] = statistics.median(r.seconds / s.seconds for r, s in turns)
        report[f"{name}_cpu_over_segment"] = statistics.median(r.cpu_seconds / max(s.cpu_seconds, 1e-9)
                                                               for r, s in turns)
    report["checkers_segment_seconds"] = statistics.median(r.seconds for r in runs["segment"])
    report["checkers_segment_cpu_seconds"] = statistics.median(r.cpu_seconds for r in runs["segment"])
    return report


def measure_startup(work: Path, repeat: int) -> dict[str, Any]:
    """Start-up on its own: a plain ``softgso segment IN OUT`` (as typed, its summary to a pipe) of an
    empty capture (a file header alone) and of a one-packet capture, wall and CPU seconds, the
    fastest of ``repeat`` runs (at least 5)."""
    report: dict[str, Any] = {}
    one = build_frame(SuperPacketSpec(payload=os.urandom(200), partial_checksum=False))
    for name, frames in (("empty", []), ("one_packet", [one])):
        capture, out = work / f"startup-{name}.pcap", work / f"startup-{name}-out.pcap"
        write_capture(capture, 24 + sum(16 + len(f) for f in frames), frames=iter(frames))
        runs = [run_child([*softgso_command(), "segment", str(capture), str(out)]) for _ in range(max(repeat, 5))]
        fastest = min(runs, key=lambda r: r.seconds)
        report[f"startup_{name}_seconds"] = fastest.seconds
        report[f"startup_{name}_cpu_seconds"] = fastest.cpu_seconds
        report[f"startup_{name}_runs"] = [[r.seconds, r.cpu_seconds] for r in runs]
        capture.unlink()
        out.unlink(missing_ok=True)
    return report


def measure_passthrough(work: Path, size: int, repeat: int) -> dict[str, Any]:
    """Small packets that need no segmentation, through the whole command: packets per second."""
    capture = work / "small.pcap"
    packets = write_capture(capture, size, frames=small_frames())
    out = work / "small-out.pcap"
    softgso = best(repeat, lambda: run_child([*softgso_command(), "segment", str(capture), str(out),
                                              "-q"]))
    check = _checked("softgso segment (small packets)", capture, out)
    # what a plain run imports before its first packet (softgso.cli.entry's path, no click): numpy only
    # where the compiled stream is not built
    from ..bulk import compiled_primitive

    engine = "softgso.bulk.compiled_primitive" if compiled_primitive.available() else "softgso.bulk.numpy_primitive, numpy"
    imports = f"import softgso.cli.entry, softgso.cli.runner, softgso.job, softgso.bulk.stream, softgso.bulk.pipeline, {engine}"
    startup = best(repeat, lambda: run_child([sys.executable, "-c", imports]))
    out.unlink(missing_ok=True)
    return {"passthrough_output_check": check, "passthrough_packets": packets, "passthrough_seconds": softgso.seconds,
            "passthrough_packets_per_s": packets / softgso.seconds,
            "passthrough_packets_per_s_excluding_startup": packets / max(softgso.seconds - startup.seconds, 1e-9),
            "startup_seconds": startup.seconds}


def ensure_tcprewrite() -> str | None:
    """tcprewrite's path; installs Debian's tcpreplay with apt-get when root and it is missing."""
    found = shutil.which("tcprewrite")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "tcpreplay"], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    return shutil.which("tcprewrite")


def measure_tcprewrite(work: Path, size: int, repeat: int) -> dict[str, Any]:
    """tcprewrite --fragroute (tcp_seg) against softgso on the same IPv4 capture (tcprewrite's case)."""
    tool = ensure_tcprewrite()
    if tool is None:
        return {"tcprewrite": TCPREWRITE_MISSING}
    capture = work / "tcp4.pcap"
    write_capture(capture, size, "tcp4")
    config = work / "fragroute.conf"
    config.write_text("tcp_seg 1448\n")
    out = work / "tcprewrite-out.pcap"
    theirs = best(repeat, lambda: run_child([tool, f"--fragroute={config}", f"--infile={capture}",
                                             f"--outfile={out}"]))
    theirs_out = out.stat().st_size
    theirs_check = _peer_check(capture, out)
    ours = best(repeat, lambda: run_child([*softgso_command(), "segment", str(capture), str(out),
                                           "-q"]))
    ours_check = _checked("softgso segment (IPv4)", capture, out)
    capture.unlink()
    out.unlink(missing_ok=True)
    report = {"tcprewrite_input_bytes": size, "tcprewrite_seconds": theirs.seconds,
              "tcprewrite_output_bytes": theirs_out, "tcprewrite_output_check": theirs_check,
              "softgso_seconds_tcp4": ours.seconds, "softgso_tcp4_output_check": ours_check}
    if theirs_check["ok"]:  # a wrong output's time does not count
        report["softgso_over_tcprewrite"] = theirs.seconds / ours.seconds
    return report


def measure_scapy(work: Path, size: int, repeat: int, softgso_bytes_per_s: float | None = None) -> dict[str, Any]:
    """A naive Scapy segmenter (softgso.check.scapy_segmenter) against softgso.

    Scapy runs on a small capture (it is slow); the ratio of throughputs compares it with softgso's
    throughput on the main capture (``softgso_bytes_per_s``), where softgso's start-up is paid once
    for many bytes. The same-input ratio is reported too.
    """
    if importlib.util.find_spec("scapy") is None:
        return {"scapy": SCAPY_MISSING}
    # run as a script, by its path: the peer's time holds Scapy's start-up, not softgso's package
    script = Path(__file__).resolve().parents[1] / "check" / "scapy_segmenter.py"
    capture = work / "scapy-in.pcap"
    write_capture(capture, size, "issue")
    out = work / "scapy-out.pcap"
    theirs = best(1, lambda: run_child([sys.executable, str(script), str(capture), str(out)]))
    theirs_check = _peer_check(capture, out)
    ours = best(repeat, lambda: run_child([*softgso_command(), "segment", str(capture), str(out),
                                           "-q"]))
    ours_check = _checked("softgso segment (Scapy's input)", capture, out)
    scapy_rate = capture.stat().st_size / theirs.seconds
    report = {"scapy_input_bytes": capture.stat().st_size, "scapy_seconds": theirs.seconds,
              "scapy_bytes_per_s": scapy_rate, "scapy_output_check": theirs_check,
              "softgso_seconds_same_input": ours.seconds, "softgso_scapy_input_output_check": ours_check}
    if theirs_check["ok"]:  # a wrong output's time does not count
        report["softgso_over_scapy_same_input"] = theirs.seconds / ours.seconds
        if softgso_bytes_per_s:
            report["softgso_over_scapy"] = softgso_bytes_per_s / scapy_rate
    return report


def run(size: int, repeat: int = 3, mix: str = "issue", peers: bool = True, progress: Callable[[str], None] | None = None,
        keep: bool = False, only: str | None = None, capture_format: str = "pcap") -> dict[str, Any]:
    """Every measurement (``only``: "segment", "coalesce" or "checkers" and what goes with it,
    "command": the whole segment command against cp alone, or "jobs": segment --jobs, real and
    modelled, softgso.cli.bench_jobs, which no full run includes; ``capture_format``: the main capture's); a
    dict of numbers and ratios (the JSON of ``softgso bench``)."""
    say = progress or (lambda _text: None)
    work = scratch_dir()
    from ..bulk import compiled_primitive
    from ..bulk.native import load_extension

    report: dict[str, Any] = {"size_bytes": size, "repeat": repeat, "cpus": os.cpu_count(), "scratch": str(work),
                              "c_accelerator": load_extension("_csum") is not None, "compiled_stream": compiled_primitive.available()}
    try:
        if only in (None, "segment", "command"):
            say(f"segment vs cp ({size >> 20} MiB, mix {mix}, {capture_format})")
            cli = measure_cli(work, size, mix, repeat, capture_format)
            report.update(cli)
        if only in (None, "segment"):
            say("engine vs memcpy (in memory)")
            engine_input = Path(cli["capture"])
            if capture_format != "pcap":  # the engine's measurement reads classic pcap
                engine_input.unlink()
                engine_input = work / f"{mix}-engine.pcap"
                write_capture(engine_input, min(size, 256 << 20), mix)
            report.update(measure_engine(engine_input, repeat, mix=mix))
            engine_input.unlink()
        if only in (None, "coalesce"):
            say(f"coalesce vs cp ({size >> 20} MiB of TCP segments)")
            report.update(measure_coalesce(work, size, repeat))
        if only in (None, "segment"):
            say("small-packet passthrough")
            report.update(measure_passthrough(work, max(size // 4, 4 << 20), repeat))
            say(f"segment vs cp in pcapng, SLL2 and raw IP ({size >> 20} MiB of TCP/IPv4 each)")
            report.update(measure_formats(work, size, repeat))
            say("start-up: segment of an empty and of a one-packet capture")
            report.update(measure_startup(work, repeat))
        if only in (None, "checkers"):
            say(f"inspect and diff vs segment ({size >> 20} MiB of TCP/IPv4 super-packets, pcapng)")
            report.update(measure_checkers(work, size, repeat))
        if only == "jobs":
            from .bench_jobs import measure_appends, measure_jobs

            say(f"segment --jobs 1, 2, 3 and the model for 1, 2, 4, 8 ({size >> 20} MiB, {capture_format})")
            report.update(measure_jobs(work, size, repeat, capture_format))
            say(f"appending a part of {size >> 21} MiB: sendfile, copy_file_range, read+write")
            report.update(measure_appends(size // 2, repeat=repeat))
        if peers and only in (None, "segment"):
            say(f"tcprewrite --fragroute ({size >> 20} MiB IPv4)")
            report.update(measure_tcprewrite(work, size, repeat))
            scapy_size = max(min(size // 64, 8 << 20), 2 << 20)
            say(f"naive Scapy segmenter ({scapy_size >> 20} MiB)")
            report.update(measure_scapy(work, scapy_size, repeat, cli["input_bytes"] / cli["softgso_seconds"]))
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    report.pop("capture", None)
    return report


def plot(report: dict[str, Any], path: Path) -> str | None:
    """A bar chart of the ratios against their targets, written by softgso.cli.plot.save_figure (the rule
    of every output); its note (None when written atomically)."""
    from .plot import pyplot, save_figure

    plt = pyplot()
    rows = [("segment / cp", report.get("softgso_over_cp"), 0.75),
            ("engine / memcpy", report.get("engine_over_memcpy"), 0.25),
            ("vs tcprewrite (/10)", (report.get("softgso_over_tcprewrite") or 0) / 10, 1.0),
            ("vs Scapy (/300)", (report.get("softgso_over_scapy") or 0) / 300, 1.0),
            ("passthrough Mpps", (report.get("passthrough_packets_per_s") or 0) / 1e6, 1.0)]
    figure, axes = plt.subplots(figsize=(7, 3.5))
    names = [r[0] for r in rows]
    axes.barh(names, [r[1] or 0 for r in rows], color="tab:blue", label="measured")
    axes.scatter([r[2] for r in rows], names, color="tab:red", marker="|", s=400, label="target")
    axes.set_title(f"softgso bench, {report['size_bytes'] >> 20} MiB, {report['cpus']} CPUs")
    axes.legend(loc="lower right")
    figure.tight_layout()
    try:
        return save_figure(figure, path, dpi=100)
    finally:
        plt.close(figure)
