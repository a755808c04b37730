"""Which batched I/O moves labelled frames across a veth fastest, for a Python LER: sendmmsg/recvmmsg
(softgso.datapath._batchio), the same with PACKET_QDISC_BYPASS, packet rings (PACKET_TX_RING with
TPACKET_V2, a TPACKET_V3 RX ring, both mmap'ed and walked from Python), and one send/recv per frame.

Run as root: ``python tools/linkio_bench.py [--frames N] [--batch B] [--json]``. It makes two network
namespaces joined by a veth (MTU 1504), puts ``frames`` 1518-byte MPLS frames across in batches of
``batch`` (one thread: send a batch, take what arrived, as the datapath's loop does), and prints
frames/s, CPU seconds (user+sys) per million frames and system calls per batch. Every frame that
arrives is checked (its sequence number); drops are counted. Everything it made is removed on exit.

``--floor`` measures the floor instead, with no Python on the path: ``benchmarks/link_floor.c``
(built here with ``cc``) sends from one process on one end of the veth and receives in another on
the other end, by each link I/O (sendmmsg/recvmmsg, with and without PACKET_QDISC_BYPASS; a
PACKET_TX_RING flushed per batch or per whole ring into a TPACKET_V3 RX ring, both walked in C;
AF_XDP sockets in copy mode; each also from one process, as the datapath's loop),
then reads a TCP stream through a TAP in a third namespace as no-gso and sw-gso receive it, and
writes one into a TAP as GRO packets, as the far edge does (see the C file). Each run's CPU is the two processes' user+sys over the transfer plus what the ksoftirqd
threads ran meanwhile (softirq work run inline in a process's context is in its system time); the
machine's softirq and busy time (/proc/stat) and the load are reported beside it. ``--rounds``
alternates the methods. It ends with the bound those costs put on sw-gso / no-gso CPU per GB.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import resource
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from softgso.datapath import batchio
from softgso.datapath.link import open_link_socket
from softgso.datapath.netns import in_netns

SOL_PACKET = 263
PACKET_VERSION = 10
PACKET_RX_RING = 5
PACKET_TX_RING = 13
PACKET_QDISC_BYPASS = 20
TPACKET_V2, TPACKET_V3 = 1, 2
TP_STATUS_KERNEL, TP_STATUS_USER = 0, 1
TP_STATUS_AVAILABLE, TP_STATUS_SEND_REQUEST = 0, 1
TPACKET2_DATA = 32  # TPACKET_ALIGN(sizeof(struct tpacket2_hdr)): where a TX frame's data starts
ETH_P_MPLS_UC = 0x8847
FRAME_LEN = 1518
HEADER = bytes.fromhex("025e00000a02" "025e00000a01" "8847") + (100 << 12 | 1 << 8 | 64).to_bytes(4, "big")
RING_FRAME = 2048
TX_FRAMES = 4096
RX_BLOCK, RX_BLOCKS = 1 << 20, 64


def frames_for(count: int) -> list[bytes]:
    """``count`` labelled frames, each carrying its sequence number."""
    body = bytes(FRAME_LEN - len(HEADER) - 4)
    return [HEADER + index.to_bytes(4, "big") + body for index in range(count)]


def check(frame: bytes | memoryview, expected: int) -> bool:
    return int.from_bytes(frame[len(HEADER) : len(HEADER) + 4], "big") == expected


class Result:
    def __init__(self) -> None:
        self.received = 0
        self.out_of_order = 0
        self.syscalls = 0

    def take(self, frame: bytes | memoryview) -> None:
        if not check(frame, self.received + self.out_of_order):
            self.out_of_order += 1
        self.received += 1


def run_mmsg(tx: socket.socket, rx: socket.socket, frames: list[bytes], batch: int) -> Result:
    result = Result()
    for start in range(0, len(frames), batch):
        _, calls, _ = batchio.send_batch(tx.fileno(), frames[start : start + batch])
        result.syscalls += calls
        while True:
            got, _, calls = batchio.recv_batch(rx.fileno(), 1024, 2048)
            result.syscalls += calls
            for frame in got:
                result.take(frame)
            if len(got) < 1024:
                break
    return result


def run_each(tx: socket.socket, rx: socket.socket, frames: list[bytes], batch: int) -> Result:
    result = Result()
    for start in range(0, len(frames), batch):
        for frame in frames[start : start + batch]:
            tx.send(frame)
            result.syscalls += 1
        while True:
            result.syscalls += 1
            try:
                result.take(rx.recv(2048))
            except BlockingIOError:
                break
    return result


class TxRing:
    """PACKET_TX_RING, TPACKET_V2: frames copied into slots, one send() to transmit them all."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        sock.setsockopt(SOL_PACKET, PACKET_TX_RING, struct.pack("IIII", RING_FRAME * TX_FRAMES // 16, 16,
                                                                RING_FRAME, TX_FRAMES))
        self.sock = sock
        self.ring = mmap.mmap(sock.fileno(), RING_FRAME * TX_FRAMES)
        self.slot = 0

    def send(self, frames: list[bytes]) -> int:
        ring = self.ring
        for frame in frames:
            offset = self.slot * RING_FRAME
            while struct.unpack_from("I", ring, offset)[0] != TP_STATUS_AVAILABLE:
                self.sock.send(b"")  # the ring is full: let the kernel send what waits
            ring[offset + TPACKET2_DATA : offset + TPACKET2_DATA + len(frame)] = frame
            struct.pack_into("II", ring, offset, TP_STATUS_SEND_REQUEST, len(frame))
            self.slot = (self.slot + 1) % TX_FRAMES
        self.sock.send(b"")
        return 1


class RxRing:
    """A TPACKET_V3 RX ring: blocks of frames the kernel fills, walked and handed back from Python."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, struct.pack("IIIIIII", RX_BLOCK, RX_BLOCKS, RING_FRAME,
                                                                RX_BLOCK // RING_FRAME * RX_BLOCKS, 1, 0, 0))
        self.sock = sock
        self.ring = mmap.mmap(sock.fileno(), RX_BLOCK * RX_BLOCKS)
        self.view = memoryview(self.ring)
        self.block = 0
        self.poller = select.poll()
        self.poller.register(sock.fileno(), select.POLLIN)

    def drain(self, result: Result) -> None:
        ring = self.ring
        while True:
            base = self.block * RX_BLOCK
            status, count, first = struct.unpack_from("III", ring, base + 8)
            if not status & TP_STATUS_USER:
                result.syscalls += 1
                if not self.poller.poll(0):
                    return
                continue
            offset = base + first
            for _ in range(count):
                next_offset, _, _, snaplen = struct.unpack_from("IIII", ring, offset)
                mac = struct.unpack_from("H", ring, offset + 24)[0]
                result.take(bytes(self.view[offset + mac : offset + mac + snaplen]))
                offset += next_offset
            struct.pack_into("I", ring, base + 8, TP_STATUS_KERNEL)
            self.block = (self.block + 1) % RX_BLOCKS


def run_rings(tx: socket.socket, rx: socket.socket, frames: list[bytes], batch: int) -> Result:
    result = Result()
    sender, receiver = TxRing(tx), RxRing(rx)
    for start in range(0, len(frames), batch):
        result.syscalls += sender.send(frames[start : start + batch])
        receiver.drain(result)
    time.sleep(0.01)  # a block the kernel has not retired yet (retire_blk_tov 1 ms)
    receiver.drain(result)
    return result


def measure(name: str, run: Callable[[socket.socket, socket.socket, list[bytes], int], Result],
            sockets: tuple[socket.socket, socket.socket], frames: list[bytes], batch: int) -> dict[str, Any]:
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    result = run(*sockets, frames, batch)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"method": name, "frames": len(frames), "received": result.received, "out_of_order": result.out_of_order,
            "frames_per_s": round(result.received / wall), "cpu_s_per_mframe": round(cpu / len(frames) * 1e6, 2),
            "wall_s": round(wall, 3), "syscalls_per_batch": round(result.syscalls / (len(frames) / batch), 1)}


FLOOR_SOURCE = Path(__file__).resolve().parent.parent / "benchmarks" / "link_floor.c"
FLOOR_LINK_METHODS = ("mmsg", "mmsg-bypass", "ring", "ring-nobypass", "ring-full", "xdp", "mmsg-1p", "mmsg-bypass-1p",
                      "ring-1p", "ring-full-1p", "xdp-1p")
FLOOR_TAP_MODES = ("no-gso", "sw-gso", "sw-gso-sum", "far-edge")
TAP_MSS = 1460  # link_floor's peer announces it: one MTU frame carries 1460 bytes of TCP payload
STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def machine_cpu() -> dict[str, float]:
    """Seconds the whole machine spent per /proc/stat class, and the ksoftirqd threads' CPU seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1 : 1 + len(STAT_FIELDS)]
    result = {name: int(value) / tick for name, value in zip(STAT_FIELDS, fields, strict=True)}
    ksoftirqd = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        if "(ksoftirqd/" in text:
            after_name = text.rsplit(")", 1)[1].split()
            ksoftirqd += int(after_name[11]) + int(after_name[12])  # utime, stime
    result["ksoftirqd"] = ksoftirqd / tick
    return result


def build_floor(directory: str) -> str:
    """Compile benchmarks/link_floor.c with the system's C compiler; the binary's path."""
    binary = os.path.join(directory, "link_floor")
    subprocess.run(["cc", "-O2", "-o", binary, str(FLOOR_SOURCE)], check=True)
    return binary


def run_floor(binary: str, arguments: list[str]) -> dict[str, Any]:
    """One run of link_floor, with the machine's CPU deltas and load around it."""
    load_before, before = os.getloadavg()[0], machine_cpu()
    done = subprocess.run([binary, *arguments], capture_output=True, text=True, timeout=60)
    after, load_after = machine_cpu(), os.getloadavg()[0]
    if done.returncode != 0:
        raise SystemExit(f"link_floor {' '.join(arguments)} failed ({done.returncode}): {done.stderr.strip()}")
    row: dict[str, Any] = json.loads(done.stdout)
    delta = {name: after[name] - before[name] for name in after}
    row["ksoftirqd_s"] = round(delta["ksoftirqd"], 3)
    row["machine_softirq_s"] = round(delta["softirq"], 3)
    row["machine_busy_s"] = round(sum(delta[name] for name in STAT_FIELDS if name not in ("idle", "iowait")), 3)
    row["load"] = [round(load_before, 2), round(load_after, 2)]
    return row


def link_row(row: dict[str, Any]) -> dict[str, Any]:
    processes = row["tx_user_s"] + row["tx_sys_s"] + row["rx_user_s"] + row["rx_sys_s"]
    row["frames_per_s"] = round(row["received"] / row["wall_s"])
    row["cpu_s"] = round(processes + row["ksoftirqd_s"], 4)
    row["cpu_us_per_frame"] = round(row["cpu_s"] / row["received"] * 1e6, 3)
    row["tx_us_per_frame"] = round((row["tx_user_s"] + row["tx_sys_s"]) / row["received"] * 1e6, 3)
    row["rx_us_per_frame"] = round((row["rx_user_s"] + row["rx_sys_s"]) / row["received"] * 1e6, 3)
    return row


def tap_row(row: dict[str, Any]) -> dict[str, Any]:
    """A TAP run's figures per GB: the sending host and the LER's reads, or (far-edge) the LER's writes
    and the receiving host."""
    first, second = ("writer", "receiver") if row["mode"] == "far-edge" else ("reader", "sender")
    row["gbit_per_s"] = round(row["received"] * 8 / row["wall_s"] / 1e9, 2)
    for process in (first, second):
        row[f"{process}_cpu_s_per_gb"] = round((row[f"{process}_user_s"] + row[f"{process}_sys_s"])
                                               / row["received"] * 1e9, 3)
    processes = sum(row[f"{process}_{kind}_s"] for process in (first, second) for kind in ("user", "sys"))
    row["cpu_s"] = round(processes + row["ksoftirqd_s"], 4)
    row["cpu_s_per_gb"] = round(row["cpu_s"] / row["received"] * 1e9, 3)
    return row


def ratio_bound(link: list[dict[str, Any]], tap: list[dict[str, Any]]) -> dict[str, Any]:
    """The best sw-gso / no-gso CPU-per-GB ratio these parts allow. Common to both modes: the link's
    cheapest per-frame cost (median of its runs) times the MTU frames a GB needs, and the far edge
    (GRO packets written into a TAP, the receiving host's TCP); the sending side each mode pays
    (median of the TAP runs; sw-gso with its payload sums). Everything else both modes pay (the LERs'
    own per-frame work, GRO itself, ACKs crossing back, Python) would only lower it: an upper bound."""
    frames_per_gb = 1e9 / TAP_MSS
    per_method = {method: statistics.median(r["cpu_us_per_frame"] for r in link if r["method"] == method)
                  for method in dict.fromkeys(r["method"] for r in link)}
    best = min(per_method, key=per_method.__getitem__)
    link_s_per_gb = per_method[best] * frames_per_gb / 1e6
    sides = {mode: statistics.median(r["cpu_s_per_gb"] for r in tap if r["mode"] == mode)
             for mode in dict.fromkeys(r["mode"] for r in tap)}
    no_gso, sw_gso = sides.get("no-gso"), sides.get("sw-gso-sum", sides.get("sw-gso"))
    far_edge = sides.get("far-edge", 0.0)
    bound: dict[str, Any] = {"link_us_per_frame_median": per_method, "best_link": best,
                             "frames_per_gb": round(frames_per_gb), "link_cpu_s_per_gb": round(link_s_per_gb, 3),
                             "tap_cpu_s_per_gb_median": sides, "far_edge_cpu_s_per_gb": far_edge}
    if no_gso is not None and sw_gso is not None:
        common = link_s_per_gb + far_edge
        bound["common_cpu_s_per_gb"] = round(common, 3)
        bound["no_gso_cpu_s_per_gb"] = round(common + no_gso, 3)
        bound["sw_gso_cpu_s_per_gb"] = round(common + sw_gso, 3)
        bound["sw_over_no_bound"] = round((common + no_gso) / (common + sw_gso), 2)
        bound["sw_over_no_without_link"] = round((far_edge + no_gso) / (far_edge + sw_gso), 2)
    return bound


def make_veth(names: tuple[str, str], ends: tuple[str, str], made: list[str]) -> None:
    """Two namespaces joined by a veth (MTU 1504, IPv6 off); ``made`` collects what to remove."""
    from pyroute2 import IPRoute, netns

    for name in names:
        netns.create(name)
        made.append(name)
        with in_netns(name), open("/proc/sys/net/ipv6/conf/default/disable_ipv6", "w") as knob:
            knob.write("1")
    with IPRoute() as ipr:
        ipr.link("add", ifname=ends[0], kind="veth", peer=ends[1])
        for end, name in zip(ends, names, strict=True):
            ipr.link("set", index=ipr.link_lookup(ifname=end)[0], net_ns_fd=name)
    for end, name in zip(ends, names, strict=True):
        with IPRoute(netns=name) as ipr:
            index = ipr.link_lookup(ifname=end)[0]
            ipr.link("set", index=index, mtu=1504, state="up")


def floor(args: argparse.Namespace, names: tuple[str, str], ends: tuple[str, str], tap_netns: str,
          made: list[str]) -> dict[str, Any]:
    from pyroute2 import netns

    link: list[dict[str, Any]] = []
    tap: list[dict[str, Any]] = []
    methods = [m for m in args.methods.split(",") if m]
    modes = [m for m in args.modes.split(",") if m]
    make_veth(names, ends, made)
    with tempfile.TemporaryDirectory() as directory:
        binary = build_floor(directory)
        if modes:
            netns.create(tap_netns)
            made.append(tap_netns)
        for _ in range(args.rounds):
            for method in methods:
                link.append(link_row(run_floor(binary, ["link", method, names[0], ends[0], names[1], ends[1],
                                                        str(args.frames), str(args.batch)])))
            for mode in modes:
                arguments = ["far-edge"] if mode == "far-edge" else ["tap", mode]
                tap.append(tap_row(run_floor(binary, [*arguments, tap_netns, str(args.bytes)])))
    return {"uptime": uptime(), "link": link, "tap": tap, "bound": ratio_bound(link, tap) if link else {}}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def print_floor(result: dict[str, Any]) -> None:
    print(result["uptime"])
    for row in result["link"]:
        print(f"link {row['method']:14} batch {row['batch']:>4} {row['frames_per_s']:>9,} frames/s  "
              f"{row['cpu_us_per_frame']:>6.3f} us CPU/frame (tx {row['tx_us_per_frame']:.3f} rx {row['rx_us_per_frame']:.3f}"
              f" ksoftirqd {row['ksoftirqd_s']:.3f} s)  wall {row['wall_s']:.3f} s  machine softirq "
              f"{row['machine_softirq_s']:.2f} s busy {row['machine_busy_s']:.2f} s  received {row['received']}/"
              f"{row['frames']} lost {row['tx_dropped'] + row['rx_dropped']}  load {row['load'][0]}-{row['load'][1]}")
    for row in result["tap"]:
        first, second = ("writer", "receiver") if row["mode"] == "far-edge" else ("reader", "sender")
        print(f"tap  {row['mode']:11} {row['gbit_per_s']:>6.2f} Gbit/s  {row['cpu_s_per_gb']:>6.3f} CPU s/GB ({first} "
              f"{row[first + '_cpu_s_per_gb']:.3f} {second} {row[second + '_cpu_s_per_gb']:.3f} ksoftirqd "
              f"{row['ksoftirqd_s']:.3f} s)  wall {row['wall_s']:.3f} s  machine softirq {row['machine_softirq_s']:.2f} s"
              f" busy {row['machine_busy_s']:.2f} s  load {row['load'][0]}-{row['load'][1]}")
    bound = result["bound"]
    if "sw_over_no_bound" in bound:
        print(f"bound: link {bound['best_link']} {bound['link_us_per_frame_median'][bound['best_link']]} us/frame x "
              f"{bound['frames_per_gb']:,} frames/GB = {bound['link_cpu_s_per_gb']} s/GB, far edge "
              f"{bound['far_edge_cpu_s_per_gb']} s/GB, common {bound['common_cpu_s_per_gb']}; no-gso "
              f"{bound['no_gso_cpu_s_per_gb']} s/GB, sw-gso {bound['sw_gso_cpu_s_per_gb']} s/GB: sw/no at most "
              f"{bound['sw_over_no_bound']}x ({bound['sw_over_no_without_link']}x with a free link)")


def compare_from_python(args: argparse.Namespace, names: tuple[str, str],
                        ends: tuple[str, str]) -> list[dict[str, Any]]:
    """The link I/O methods driven from Python, one after the other, on the veth already made."""
    frames = frames_for(args.frames)
    methods: list[tuple[str, Callable[..., Result], bool]] = [
        ("sendmmsg/recvmmsg" if batchio.COMPILED else "send/recv (no _batchio)", run_mmsg, False),
        ("sendmmsg/recvmmsg + PACKET_QDISC_BYPASS", run_mmsg, True),
        ("PACKET_TX_RING (V2) + TPACKET_V3 RX ring", run_rings, False),
        ("PACKET_TX_RING + V3 RX ring + PACKET_QDISC_BYPASS", run_rings, True),
        ("send/recv, one frame a call", run_each, False),
    ]
    results = []
    for name, run, bypass in methods:
        tx, rx = (open_link_socket(ns, end) for ns, end in zip(names, ends, strict=True))
        try:
            if bypass:
                tx.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
            if run is run_rings:
                tx.setblocking(True)
            results.append(measure(name, run, (tx, rx), frames, args.batch))
        finally:
            tx.close()
            rx.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--floor", action="store_true", help="the C floor (benchmarks/link_floor.c) instead")
    parser.add_argument("--rounds", type=int, default=1, help="--floor: rounds, methods alternated in each")
    parser.add_argument("--bytes", type=int, default=1 << 30, help="--floor: bytes per TAP run")
    parser.add_argument("--methods", default=",".join(FLOOR_LINK_METHODS), help="--floor: link methods")
    parser.add_argument("--modes", default=",".join(FLOOR_TAP_MODES), help="--floor: TAP modes ('' for none)")
    args = parser.parse_args()
    from pyroute2 import netns

    tag = str(os.getpid())
    names = (f"sgso-lb1-{tag}", f"sgso-lb2-{tag}")
    ends = (f"sglba{tag}"[:15], f"sglbb{tag}"[:15])
    made: list[str] = []
    # terminated: still remove what was made (only here: pyroute2's netns helpers are forked children)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    try:
        if args.floor:
            result = floor(args, names, ends, f"sgso-lbt-{tag}", made)
        else:
            make_veth(names, ends, made)
            results = compare_from_python(args, names, ends)
    finally:
        for name in reversed(made):
            netns.remove(name)
    if args.floor and args.json:
        print(json.dumps(result, indent=2))
    elif args.floor:
        print_floor(result)
    elif args.json:
        print(json.dumps(results, indent=2))
    else:
        for row in results:
            print(f"{row['method']:52} {row['frames_per_s']:>9,} frames/s  {row['cpu_s_per_mframe']:>6} CPU s/Mframe  "
                  f"{row['syscalls_per_batch']:>6} calls/batch  received {row['received']}/{row['frames']}"
                  f" (out of order {row['out_of_order']})")
    return 0

if __name__ == "__main__":
    sys.exit(main())
