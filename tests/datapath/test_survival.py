"""The datapath survives what its TAPs hand it and what happens to its devices.

Without root: the real forwarding loop (Datapath.run) over socketpairs standing in for the TAPs,
flooded with malformed frames. With root: `softgso datapath` in a process of its own, flooded from
inside its west namespace with a packet socket, and with its TAP or a namespace deleted underneath.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from softgso.datapath.ratelimit import RateLimitedLog
from softgso.datapath.run import WARN_BURST, WARN_INTERVAL, Datapath
from softgso.datapath.tap import Tap
from softgso.datapath.topology import Topology
from softgso.features import PROFILES

from .helpers import json_stats, leftovers, root_test, start_datapath
from .test_forwarding import ALL_OFFLOADS, PAYLOAD, WEST_GW, WEST_MAC, mac, tso_frame

SW_LINK = PROFILES["nic-tso-no-mpls-gso"].with_overrides(mtu=1504)
RUNT = "runt frame from the TAP"
BAD_VNET = "virtio_net_hdr_to_skb (-EINVAL)"
NOT_IP = "not IP under the bottom label"
NOT_ADDRESSED = "not addressed to the LER (no FEC)"
NO_FEC = "no FEC for ethertype 0x88b5"
WARNED = (RUNT, BAD_VNET, NOT_IP)


def max_lines(seconds: float) -> int:
    """What the rate limit allows in ``seconds``: a burst and a "suppressed" line per interval, a last summary."""
    return (WARN_BURST + 1) * (math.ceil(seconds / WARN_INTERVAL) + 1) + 1


# -- the rate limiter --------------------------------------------------------------------------------


def test_rate_limited_log_lets_a_burst_through_per_interval_and_reports_the_rest() -> None:
    now = [100.0]
    lines: list[str] = []
    limit = RateLimitedLog(lines.append, interval=1.0, burst=3, clock=lambda: now[0])
    for index in range(1000):
        limit(f"bad frame {index}", "bad" if index % 2 else "worse")
    assert lines == ["bad frame 0", "bad frame 1", "bad frame 2"]
    limit.tick()  # the interval is not over yet
    assert len(lines) == 3
    now[0] += 1.0
    limit.tick()
    assert lines[3] == "suppressed 997 similar messages in the last 1.0 s (bad: 499, worse: 498)"
    limit("again", "bad")
    assert lines[4:] == ["again"]  # a new interval: its burst starts over
    for _ in range(5):
        limit("more", "bad")
    limit.flush()
    assert lines[5:] == ["more", "more", "suppressed 3 similar messages in the last 0.0 s (bad: 3)"]
    assert (limit.lines, limit.suppressed) == (8, 1000)


def test_rate_limited_log_names_the_commonest_keys_and_sums_the_others() -> None:
    lines: list[str] = []
    limit = RateLimitedLog(lines.append, burst=0, clock=lambda: 0.0)
    for key in range(8):
        for _ in range(10 - key):
            limit("x", f"k{key}")
    limit.flush()
    assert lines == ["suppressed 52 similar messages in the last 0.0 s "
                     "(k0: 10, k1: 9, k2: 8, k3: 7, k4: 6, ... 12 more)"]


# -- the forwarding loop over socketpairs --------------------------------------------------------------


class SocketHop:
    """Datapath (both LERs, the link, the loop) whose TAP descriptors are socketpair ends."""

    def __init__(self, sockets: list[socket.socket]) -> None:
        topology = Topology("t", ALL_OFFLOADS)  # never entered: no namespace, no device
        kernel_ends = []
        for side in ("west_tap", "east_tap"):
            datapath_end, kernel_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            datapath_end.setblocking(False)
            sockets.extend((datapath_end, kernel_end))
            setattr(topology, side, Tap(side, datapath_end.fileno(), 10, ALL_OFFLOADS))
            kernel_ends.append(kernel_end)
        self.west_kernel, self.east_kernel = kernel_ends
        self.datapath = Datapath(topology, SW_LINK, (100,), (101,))
        self.west_fd = topology.taps[0].fd

    def flood(self, frames: list[bytes], timeout: float = 20) -> float:
        """Send ``frames`` from the west kernel's end while the loop runs; the loop's seconds once all are read."""

        def send() -> None:
            for frame in frames:
                self.west_kernel.send(frame)

        sender = threading.Thread(target=send)
        deadline = time.monotonic() + timeout

        def drained() -> bool:
            if time.monotonic() > deadline:
                raise AssertionError("the loop did not read every frame in time")
            return not sender.is_alive() and not select.select([self.west_fd], [], [], 0)[0]

        start = time.monotonic()
        sender.start()
        self.datapath.run(drained, check_every=0.01)
        sender.join()
        return time.monotonic() - start

    def east_frames(self) -> list[bytes]:
        frames = []
        while True:
            try:
                frames.append(self.east_kernel.recv(1 << 17, socket.MSG_DONTWAIT)[10:])
            except BlockingIOError:
                return frames


@pytest.fixture
def socket_hop() -> Iterator[Callable[[], SocketHop]]:
    sockets: list[socket.socket] = []
    yield lambda: SocketHop(sockets)
    for sock in sockets:
        sock.close()


def malformed_frames(count: int, rng: random.Random) -> list[bytes]:
    """``count`` frames of each kind a TAP peer could write, in turn; each kind has one drop reason."""
    ler, me = mac(WEST_GW), mac(WEST_MAC)
    bad_vnet = bytearray(tso_frame())
    struct.pack_into("<H", bad_vnet, 4, 0)  # a TCPV4 GSO type with gso_size 0
    frames = []
    for _ in range(count):
        frames += [
            rng.randbytes(rng.randrange(24)),  # RUNT: shorter than a vnet header and an Ethernet header
            bytes(bad_vnet),  # BAD_VNET
            bytes(10) + bytes([0x33]) + rng.randbytes(rng.randrange(20, 200)),  # NOT_ADDRESSED: garbage
            bytes(10) + ler + me + b"\x88\xb5" + rng.randbytes(46),  # NO_FEC
            bytes(10) + ler + me + b"\x08\x00" + bytes(46),  # NOT_IP: crosses LER1, refused at the pop
        ]
    return frames


def test_a_flood_of_malformed_frames_is_counted_and_logged_a_few_lines_a_second(
        socket_hop: Callable[[], SocketHop], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="softgso.datapath")
    hop = socket_hop()
    count = 1000
    seconds = hop.flood(malformed_frames(count, random.Random(1)) + [tso_frame()])
    stats = hop.datapath.stats()
    drops = stats["west_to_east"]["drops"]
    assert {reason: drops[reason] for reason in (*WARNED, NOT_ADDRESSED, NO_FEC)} == dict.fromkeys(
        (*WARNED, NOT_ADDRESSED, NO_FEC), count)
    assert sum(drops.values()) == 5 * count
    # the loop is still forwarding: the super-packet after the flood reaches east, segmented
    assert b"".join(frame[54:] for frame in hop.east_frames()) == PAYLOAD
    # 3000 warned drops, a bounded number of lines, and every suppressed one accounted for
    lines = [record.getMessage() for record in caplog.records if record.name == "softgso.datapath"]
    assert len(lines) == stats["warnings"]["lines"] <= max_lines(seconds)
    summaries = [int(re.search(r"suppressed (\d+) similar", line)[1]) for line in lines if "suppressed" in line]
    assert summaries and sum(summaries) == stats["warnings"]["suppressed"]
    assert len(lines) - len(summaries) + sum(summaries) == 3 * count
    assert all(line.startswith("softgso datapath: west->east: dropped a packet") for line in lines
               if "suppressed" not in line)


def test_random_garbage_with_random_virtio_headers_never_stops_the_loop(
        socket_hop: Callable[[], SocketHop]) -> None:
    rng = random.Random(2026)
    ler, me = mac(WEST_GW), mac(WEST_MAC)
    frames = [rng.randbytes(10) + ler + me + rng.choice((b"\x08\x00", b"\x86\xdd")) + rng.randbytes(rng.randrange(300))
              for _ in range(2000)]
    hop = socket_hop()
    hop.flood(frames + [tso_frame()])
    w2e = hop.datapath.stats()["west_to_east"]
    assert not any(reason.startswith("internal error") for reason in w2e["drops"]), w2e["drops"]
    assert sum(w2e["drops"].values()) > 1000  # most random headers are refused by the virtio checks
    assert any(frame[54:] == PAYLOAD[:1460] for frame in hop.east_frames())


def test_an_exception_that_is_not_a_refusal_is_counted_and_the_loop_goes_on(
        socket_hop: Callable[[], SocketHop], monkeypatch: pytest.MonkeyPatch) -> None:
    hop = socket_hop()
    ler1 = hop.datapath.ler1
    receive = ler1.receive_from_tap

    def buggy(buf: bytes) -> None:
        if buf.endswith(b"boom"):
            raise IndexError("a bug")
        receive(buf)

    monkeypatch.setattr(ler1, "receive_from_tap", buggy)
    hop.flood([bytes(40) + b"boom"] * 50 + [tso_frame()])
    stats = hop.datapath.stats()["west_to_east"]
    assert stats["drops"] == {"internal error (IndexError)": 50}
    assert "IndexError('a bug')" in stats["drop_examples"]["internal error (IndexError)"]
    assert len(hop.east_frames()) == 14


# -- the live datapath --------------------------------------------------------------------------------

FLOODER = """
import socket, sys, time
tap, count = sys.argv[1], int(sys.argv[2])
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((tap, 0))
ler, me = bytes.fromhex("025e000001fe"), bytes.fromhex("025e00000101")
no_fec = ler + me + b"\\x88\\xb5" + bytes(46)
not_ip = ler + me + b"\\x08\\x00" + bytes(46)
for index in range(count):
    sock.send(no_fec)
    sock.send(not_ip)
    if index % 50 == 49:
        time.sleep(0.005)  # the TAP queues 500 frames; leave the datapath time to read them
"""


def tap_tx_dropped(netns: str, tap: str) -> int:
    """Frames the kernel could not queue on the TAP for the datapath to read."""
    shown = subprocess.run(["ip", "-n", netns, "-s", "-j", "link", "show", "dev", tap], capture_output=True,
                           text=True, check=True).stdout
    return int(json.loads(shown)[0]["stats64"]["tx"]["dropped"])


@root_test
def test_a_flood_of_bad_frames_on_the_tap_is_counted_and_the_log_stays_bounded() -> None:
    count = 2000
    started = time.monotonic()
    running = start_datapath("--user", "nobody")
    try:
        flood = subprocess.run(["ip", "netns", "exec", running.west, sys.executable, "-c", FLOODER,
                                running.west_tap, str(count)], capture_output=True, text=True, timeout=60)
        assert flood.returncode == 0, flood.stderr
        lost_in_tap = tap_tx_dropped(running.west, running.west_tap)
        assert running.tcp_transfer_verified()
    finally:
        status, out, err = running.stop()
    seconds = time.monotonic() - started
    assert status == 0, err
    stats = json_stats(out)
    drops = stats["west_to_east"]["drops"]
    for reason in (NO_FEC, NOT_IP):
        assert count - lost_in_tap <= drops[reason] <= count
    warnings = [line for line in err.splitlines() if line.startswith("softgso datapath: ")]
    assert len(warnings) == stats["warnings"]["lines"] <= max_lines(seconds)
    assert any("suppressed" in line for line in warnings)
    assert stats["warnings"]["suppressed"] >= drops[NOT_IP] - len(warnings)
    assert leftovers(running.pid) == ([], [])


@pytest.mark.parametrize(("deleted", "user"), [("tap", None), ("netns", None), ("tap", "nobody"),
                                               ("netns", "nobody")])
@root_test
def test_a_tap_or_namespace_deleted_underneath_ends_the_run_and_nothing_is_left(
        deleted: str, user: str | None) -> None:
    running = start_datapath("--duration", "60", *(("--user", user) if user else ()))
    command = (["ip", "-n", running.west, "link", "del", running.west_tap] if deleted == "tap"
               else ["ip", "netns", "del", running.west])
    subprocess.run(command, check=True, capture_output=True)
    status, out, err = running.wait()
    assert status == 1, err
    assert f"TAP {running.west_tap} went away (its device or its network namespace was deleted)" in err
    assert "namespaces and TAPs removed" in err
    assert json_stats(out)["forwarder"]["uids"] == ([65534] * 3 if user else [0] * 3)
    assert leftovers(running.pid) == ([], [])


@pytest.mark.parametrize("user", [None, "nobody"])
@root_test
def test_the_link_deleted_underneath_ends_the_run_and_nothing_is_left(user: str | None) -> None:
    running = start_datapath("--duration", "60", *(("--user", user) if user else ()))
    first_ns = running.link_netns[0]
    subprocess.run(["ip", "-n", first_ns, "link", "del", f"sga{running.pid}"[:15]], check=True, capture_output=True)
    status, out, err = running.wait()
    assert status == 1, err
    assert f"the link sga{running.pid}/sgb{running.pid} went away" in err
    assert "namespaces and TAPs removed" in err
    assert json_stats(out)["forwarder"]["uids"] == ([65534] * 3 if user else [0] * 3)
    assert leftovers(running.pid) == ([], [])
