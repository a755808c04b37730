"""Which batched I/O moves labelled frames across a veth fastest, for a Python LER: sendmmsg/recvmmsg
(softgso.datapath._batchio), the same with PACKET_QDISC_BYPASS, packet rings (PACKET_TX_RING with
TPACKET_V2, a TPACKET_V3 RX ring, both mmap'ed and walked from Python), and one send/recv per frame.

Run as root: ``python tools/linkio_bench.py [--frames N] [--batch B] [--json]``. It makes two network
namespaces joined by a veth (MTU 1504), puts ``frames`` 1518-byte MPLS frames across in batches of
``batch`` (one thread: send a batch, take what arrived, as the datapath's loop does), and prints
frames/s, CPU seconds (user+sys) per million frames and system calls per batch. Every frame that
arrives is checked (its sequence number); drops are counted. Everything it made is removed on exit.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import resource
import select
import socket
import struct
import sys
import time
from collections.abc import Callable
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from pyroute2 import IPRoute, netns

    tag = str(os.getpid())
    names = (f"sgso-lb1-{tag}", f"sgso-lb2-{tag}")
    ends = (f"sglba{tag}"[:15], f"sglbb{tag}"[:15])
    made: list[str] = []
    results = []
    try:
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
        frames = frames_for(args.frames)
        methods: list[tuple[str, Callable[..., Result], bool]] = [
            ("sendmmsg/recvmmsg" if batchio.COMPILED else "send/recv (no _batchio)", run_mmsg, False),
            ("sendmmsg/recvmmsg + PACKET_QDISC_BYPASS", run_mmsg, True),
            ("PACKET_TX_RING (V2) + TPACKET_V3 RX ring", run_rings, False),
            ("PACKET_TX_RING + V3 RX ring + PACKET_QDISC_BYPASS", run_rings, True),
            ("send/recv, one frame a call", run_each, False),
        ]
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
    finally:
        for name in reversed(made):
            netns.remove(name)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for row in results:
            print(f"{row['method']:52} {row['frames_per_s']:>9,} frames/s  {row['cpu_s_per_mframe']:>6} CPU s/Mframe  "
                  f"{row['syscalls_per_batch']:>6} calls/batch  received {row['received']}/{row['frames']}"
                  f" (out of order {row['out_of_order']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
