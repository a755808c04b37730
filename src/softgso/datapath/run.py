"""`softgso datapath`: the event loop around the two LERs, and the command's entry point."""

from __future__ import annotations

import errno
import gc
import json
import logging
import os
import select
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..errors import SoftGSOError, UsageError
from ..features import PROFILES, DeviceProfile
from ..io.profile import load_profile
from . import batchio
from .bulk import accelerate, check_engine
from .ler import CaptureHook, DirectionStats, LabelEdgeRouter, MplsLink
from .link import ETH_P_ALL, LINK_BATCH, FarEdge, LinkGone, VethLink, open_link_socket, socket_drops
from .privileges import Credentials, StopSignal, resolve_user, run_as
from .ratelimit import RateLimitedLog
from .tap import READ_SIZE, TUN_F_TSO
from .topology import Topology

if TYPE_CHECKING:
    from rich.console import Console

    from .display import StatsView
    from .pcap import LinkCapture

MODES = ("sw-gso", "hw-gso", "no-gso")
# the link device of each mode: a NIC without MPLS GSO (so LER1 segments after the push), or one
# whose mpls_features carry TSO/USO and checksum offload (veth defaults), so the GSO packet crosses whole
LINK_PROFILE_BY_MODE = {"sw-gso": "nic-tso-no-mpls-gso", "hw-gso": "tso", "no-gso": "nic-tso-no-mpls-gso"}
# the modes whose link is a kernel device (a veth pair); hw-gso's super-packets cross whole, which no
# kernel device here can carry under MPLS (no MPLS GSO), so that mode joins the LERs in-process
VETH_MODES = ("sw-gso", "no-gso")
IN_PROCESS_LINK = "in-process: a NIC with MPLS TSO stands for it (no kernel device here carries MPLS super-packets)"
MPLS_HLEN = 4
# MACs of the LERs' link-facing ports
LINK_MAC_LER1 = bytes.fromhex("025e00000a01")
LINK_MAC_LER2 = bytes.fromhex("025e00000a02")
# reads per TAP before looking at the other one
READ_BUDGET = 64
# warnings about dropped packets: at most this many lines per second, plus one "suppressed N" line
WARN_BURST = 10
WARN_INTERVAL = 1.0

log = logging.getLogger("softgso.datapath")


class DatapathError(SoftGSOError):
    """The datapath could not run (not root, no /dev/net/tun, a self-test endpoint failed...)."""


class Interrupted(BaseException):
    """SIGTERM arrived: unwind, tearing everything down on the way."""


@dataclass
class DatapathOptions:
    """Everything `softgso datapath` takes; the CLI fills it from its flags."""

    mode: str = "sw-gso"
    labels: tuple[int, ...] = (100,)
    return_labels: tuple[int, ...] | None = None
    link_profile: str | None = None
    link_mtu: int | None = None
    mtu: int = 1500
    vnet_hdr_len: int = 10
    ttl: int = 64
    # experimental: TAPs in NAPI mode, receive-side GRO held this long (0: plain TAPs, no GRO batching)
    gro_flush_timeout_ns: int = 0
    # GRO at the receiving LER (a veth link only): the link frames of a batch coalesce before the TAP
    gro: bool = True
    capture: str | None = None
    json: bool = False
    live: bool = True
    duration: float | None = None
    # self-test
    selftest: bool = False
    modes: tuple[str, ...] = MODES
    bytes: int = 64 << 20
    ipv6: bool = True
    udp: bool = True
    # the ceiling: the same transfers over a plain veth, the kernel's own GSO/GRO (kernel_gbps)
    kernel_ceiling: bool = True
    timeout: float = 120.0
    # run the forwarding loop as this user (name or uid); None: in this process, as root
    user: str | None = None
    # how the LERs segment super-packets towards the link (softgso.datapath.bulk.ENGINES): auto
    # (plans in C, else numpy), compiled, numpy, or scalar (the engine's reference path only)
    engine: str = "auto"
    extra: dict[str, object] = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse bad values with a UsageError."""
        for mode in (self.mode, *self.modes):
            if mode not in MODES:
                raise UsageError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        if not self.labels:
            raise UsageError("at least one label to push")
        for label in (*self.labels, *self.back_labels):
            if not 16 <= label <= 0xFFFFF:
                raise UsageError(f"label {label} is reserved or out of range (use 16..1048575)")
        if len(self.back_labels) != len(self.labels):
            raise UsageError("--return-labels must have as many labels as --labels")
        if self.vnet_hdr_len not in (10, 12):
            raise UsageError("--vnet-hdr-len is 10 or 12")
        if not 0 <= self.gro_flush_timeout_ns <= 10_000_000:
            raise UsageError("--gro-flush-timeout is 0..10000000 ns")
        if not 576 <= self.mtu <= 9000:
            raise UsageError(f"--mtu {self.mtu} out of range 576..9000")
        check_engine(self.engine)
        if self.user is not None:
            if self.selftest:
                raise UsageError("--user applies to the forwarding run, not to --selftest "
                                 "(whose traffic endpoints enter the namespaces as root)")
            self.credentials()

    def credentials(self) -> Credentials | None:
        """Who the forwarding loop runs as (--user), or None for this process as it is."""
        return resolve_user(self.user) if self.user is not None else None

    @property
    def back_labels(self) -> tuple[int, ...]:
        """The stack LER2 pushes towards LER1 (default: each forward label + 1)."""
        return self.return_labels if self.return_labels is not None else tuple(label + 1 for label in self.labels)

    def link_device(self, mode: str) -> DeviceProfile:
        """The MPLS link's device profile for a mode, its MTU leaving room for the label stack."""
        profile = load_profile(self.link_profile) if self.link_profile else PROFILES[LINK_PROFILE_BY_MODE[mode]]
        mtu = self.link_mtu or self.mtu + MPLS_HLEN * len(self.labels)
        return profile.with_overrides(mtu=mtu, name=f"{profile.name}@mtu{mtu}")

    def topology(self, run_id: str, mode: str) -> Topology:
        """The west/east namespaces and TAPs for a mode, and the veth link where it has one (enter it to build them)."""
        link_mtu = self.link_device(mode).mtu if mode in VETH_MODES else None
        return Topology(run_id, self.tap_offloads(mode), self.mtu, self.vnet_hdr_len, self.gro_flush_timeout_ns,
                        link_mtu=link_mtu, link_macs=(mac_text(LINK_MAC_LER1), mac_text(LINK_MAC_LER2)))

    @staticmethod
    def tap_offloads(mode: str) -> int:
        """TUN_F_* for the TAPs: checksum + TSO (+ USO where accepted), or nothing for no-gso."""
        return 0 if mode == "no-gso" else TUN_F_TSO


def mac_text(mac: bytes) -> str:
    """b'\\x02^...' -> '02:5e:...'."""
    return ":".join(f"{byte:02x}" for byte in mac)


def parse_labels(text: str) -> tuple[int, ...]:
    """'100,200' -> (100, 200): a label stack, top first."""
    try:
        labels = tuple(int(part, 0) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise UsageError(f"labels {text!r}: expected comma-separated numbers, top of stack first") from None
    if not labels:
        raise UsageError("at least one label to push")
    return labels


def parse_size(text: str) -> int:
    """'64M' -> 67108864 (K, M, G are powers of 1024; a plain number is bytes)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    body = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = units.get(body[-1:], 1)
    try:
        value = float(body[:-1] if scale != 1 else body)
    except ValueError:
        raise UsageError(f"size {text!r}: expected a number with an optional K, M or G") from None
    if value <= 0:
        raise UsageError(f"size {text!r} must be positive")
    return int(value * scale)


class Datapath:
    """LER1 (west TAP) and LER2 (east TAP) joined by the MPLS link; run() moves packets until told to stop."""

    def __init__(
        self,
        topology: Topology,
        link_profile: DeviceProfile,
        labels: Sequence[int],
        return_labels: Sequence[int],
        *,
        capture: CaptureHook | None = None,
        ttl: int = 64,
        warn: RateLimitedLog | None = None,
        engine: str = "auto",
        gro: bool = True,
    ) -> None:
        west_tap, east_tap = topology.taps
        west, east = topology.west, topology.east
        self.topology = topology
        self.gro = gro
        link_sockets = topology.link_sockets
        self.link: MplsLink = (MplsLink(link_profile, capture) if link_sockets is None
                               else VethLink(link_profile, {"LER2": link_sockets[0], "LER1": link_sockets[1]}))
        self.capture = capture
        self.capture_socket: socket.socket | None = None
        self.capture_frames = 0
        self.polls = 0
        self.socket_drops: Counter[str] = Counter()
        self.west_to_east = DirectionStats("west->east")
        self.east_to_west = DirectionStats("east->west")
        # one bound for both directions: a flood of bad frames costs a few lines a second, not one per frame
        self.warnings = warn if warn is not None else RateLimitedLog(
            lambda line: log.warning("softgso datapath: %s", line), interval=WARN_INTERVAL, burst=WARN_BURST)
        self.west_to_east.warn = self.east_to_west.warn = self.warnings
        self.ler1 = LabelEdgeRouter(
            "LER1", west_tap, push_labels=labels, pop_labels=return_labels,
            own_mac=west.gateway_mac_bytes(), tap_peer_mac=west.mac_bytes(),
            link_mac=LINK_MAC_LER1, link_peer_mac=LINK_MAC_LER2,
            tap_profile=west_tap.egress_profile(topology.mtu), ttl=ttl,
        )
        self.ler2 = LabelEdgeRouter(
            "LER2", east_tap, push_labels=return_labels, pop_labels=labels,
            own_mac=east.gateway_mac_bytes(), tap_peer_mac=east.mac_bytes(),
            link_mac=LINK_MAC_LER2, link_peer_mac=LINK_MAC_LER1,
            tap_profile=east_tap.egress_profile(topology.mtu), ttl=ttl,
        )
        self.ler1.connect(self.link, self.ler2, self.west_to_east)
        self.ler2.connect(self.link, self.ler1, self.east_to_west)
        # the reference routers build no accelerator of their own: the bulk paths are handed in
        self.engine = engine
        for ler in (self.ler1, self.ler2):
            accelerate(ler, engine)
        self.far_edges: dict[int, tuple[FarEdge, DirectionStats]] = {}
        if link_sockets is not None:
            mtu = link_profile.mtu
            self.far_edges = {
                link_sockets[0].fileno(): (FarEdge(self.ler1, link_sockets[0], mtu, gro=gro), self.east_to_west),
                link_sockets[1].fileno(): (FarEdge(self.ler2, link_sockets[1], mtu, gro=gro), self.west_to_east),
            }
            if capture is not None:
                # the capture reads the link: every frame on LER1's end, both ways, as tcpdump -i would
                self.capture_socket = open_link_socket(topology.link_netns[0], topology.link_ends[0], ETH_P_ALL)
        self.started = time.monotonic()

    def descriptors(self) -> list[int]:
        """Every descriptor the forwarding loop uses (a forwarder process keeps them)."""
        fds = [tap.fd for tap in self.topology.taps]
        fds += list(self.far_edges)
        if self.capture_socket is not None:
            fds.append(self.capture_socket.fileno())
        return fds

    def close(self) -> None:
        """Close what the datapath opened itself (the capture socket); the topology closes the rest."""
        if self.capture_socket is not None:
            self.capture_socket.close()
            self.capture_socket = None

    def read_capture(self) -> None:
        """Hand every frame waiting on the capture socket to the capture."""
        assert self.capture_socket is not None and self.capture is not None
        fd = self.capture_socket.fileno()
        while True:
            try:
                frames, _, _ = batchio.recv_batch(fd, LINK_BATCH, READ_SIZE)
            except OSError:
                return  # the link is gone: the forwarding side says so
            for frame in frames:
                self.capture(frame)  # type: ignore[arg-type]
            self.capture_frames += len(frames)
            if len(frames) < LINK_BATCH:
                return

    def run(
        self,
        should_stop: Callable[[], bool],
        *,
        on_tick: Callable[[], None] | None = None,
        tick: float = 1.0,
        check_every: float = 0.05,
    ) -> None:
        """Forward between the TAPs; call should_stop() every ``check_every`` s and on_tick() every ``tick`` s.

        Whatever a frame holds, it is forwarded or counted as a drop: even an exception that is not
        an engine refusal (a bug) is counted under "internal error" and warned about, and the loop
        goes on. A TAP that goes away (its device deleted, or its namespace: the descriptor then
        reports EBADFD) ends the loop with a DatapathError: one side of the hop is gone for good.
        """
        routers = {self.ler1.tap.fd: self.ler1, self.ler2.tap.fd: self.ler2}
        far_edges = self.far_edges
        veth = far_edges and isinstance(self.link, VethLink)
        capture_fd = self.capture_socket.fileno() if self.capture_socket is not None else -1
        receivers = {fd: self.guarded_receive(router) for fd, router in routers.items()}
        # the routers whose plain TAP reads are labelled in C (a veth link's FrameQueue; the scalar engine
        # keeps every read on its reference path)
        pushers = {fd for fd, router in routers.items()
                   if veth and router.bulk is not None and self.link.takes_segments(router.peer)}  # type: ignore
        poller = select.epoll()
        # everything built so far lives as long as the loop: keep the collector from walking it again
        # and again as the loop allocates (a full collection walks every imported module's objects)
        gc.freeze()
        # and collect the young generation every 50,000 allocations instead of 700: the loop makes
        # objects by the thousand a batch (frames, lists), almost none of them in cycles
        thresholds = gc.get_threshold()
        gc.set_threshold(50_000, *thresholds[1:])
        try:
            for fd in (*routers, *far_edges, *([capture_fd] if capture_fd >= 0 else [])):
                poller.register(fd, select.EPOLLIN)
            read_batch = batchio.read_batch
            now = time.monotonic()
            next_check, next_tick = now + check_every, now + tick
            while True:
                events = poller.poll(check_every)
                self.polls += 1
                for fd, _ in events:
                    if fd in far_edges:
                        edge, edge_stats = far_edges[fd]
                        try:
                            edge.receive(edge_stats)
                        except LinkGone as exc:
                            raise self.link_error(exc) from exc
                        continue
                    if fd == capture_fd:
                        self.read_capture()
                        continue
                    router = routers[fd]
                    receive = receivers[fd]
                    try:
                        if fd in pushers:
                            # the plain reads labelled and queued in C, any other one received in its turn
                            self.link.push_reads(router, READ_BUDGET, receive)  # type: ignore[attr-defined]
                        else:
                            reads, calls = read_batch(fd, READ_BUDGET, READ_SIZE)
                            router.ingress_stats.syscalls["read"] += calls
                            for buf in reads:
                                receive(buf)
                    except OSError as exc:
                        raise tap_error(router.tap.name, exc) from exc
                    except LinkGone as exc:  # a full queue sent on the way
                        raise self.link_error(exc) from exc
                    if veth:
                        try:
                            self.link.flush()  # type: ignore[attr-defined]
                        except LinkGone as exc:
                            raise self.link_error(exc) from exc
                now = time.monotonic()
                if now >= next_check:
                    self.warnings.tick()
                    if should_stop():
                        return
                    next_check = now + check_every
                if on_tick is not None and now >= next_tick:
                    on_tick()
                    next_tick = now + tick
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            poller.close()
            if capture_fd >= 0:
                self.read_capture()
            self.warnings.flush()

    @staticmethod
    def guarded_receive(router: LabelEdgeRouter) -> Callable[[bytes], None]:
        """``router.receive_from_tap`` counting an exception that is not an engine refusal (a bug) as a drop."""
        receive = router.receive_from_tap

        def guarded(buf: bytes) -> None:
            try:
                receive(buf)
            except LinkGone:
                raise  # the link's queue was full and sending it failed for good: not this frame's doing
            except Exception as exc:  # a bad frame must never stop the datapath
                router.ingress_stats.drop(f"internal error ({type(exc).__name__})",
                                          f"internal error, please report: {exc!r}")

        return guarded

    def link_error(self, exc: LinkGone) -> DatapathError:
        """The error that ends the loop when the veth link fails."""
        return DatapathError(f"the link {'/'.join(self.topology.link_ends)} went away ({exc}; its device or "
                             "its network namespace was deleted); stopping, since the hop is cut")

    def stats(self) -> dict[str, object]:
        """Counters of both directions and the run's setup."""
        link_sockets = self.topology.link_sockets if isinstance(self.link, VethLink) else None
        stats: dict[str, object] = {
            "link_profile": self.link.profile.name,
            "link_mtu": self.link.profile.mtu,
            "link": (f"veth {'/'.join(self.topology.link_ends)} (netns {', '.join(self.topology.link_netns)})"
                     if link_sockets is not None else IN_PROCESS_LINK),
            "gro": self.gro if link_sockets is not None else None,
            "batched_io": "sendmmsg/recvmmsg (softgso.datapath._batchio)" if batchio.COMPILED
            else "one system call per frame (softgso.datapath._batchio not built)",
            "seconds": round(time.monotonic() - self.started, 3),
            "epoll_waits": self.polls,
            "west_to_east": self.west_to_east.as_dict(),
            "east_to_west": self.east_to_west.as_dict(),
            "warnings": {"lines": self.warnings.lines, "suppressed": self.warnings.suppressed},
        }
        if link_sockets is not None:
            # PACKET_STATISTICS counts from the last read: add up
            self.socket_drops["LER1"] += socket_drops(link_sockets[0])
            self.socket_drops["LER2"] += socket_drops(link_sockets[1])
            stats["link_socket_drops"] = {"LER1": self.socket_drops["LER1"], "LER2": self.socket_drops["LER2"]}
        if self.capture_socket is not None:
            self.socket_drops["capture"] += socket_drops(self.capture_socket)
            stats["capture"] = {"frames": self.capture_frames, "dropped": self.socket_drops["capture"]}
        return stats


def tap_error(name: str, exc: OSError) -> DatapathError:
    """The error that ends the loop when reading a TAP fails."""
    if exc.errno in (errno.EBADFD, errno.ENODEV, errno.ENXIO):
        return DatapathError(f"TAP {name} went away (its device or its network namespace was deleted); "
                             "stopping, since one side of the hop is gone")
    return DatapathError(f"reading TAP {name}: {exc.strerror}")


def process_identity() -> dict[str, object]:
    """Who the forwarding loop ran as: pid, real/effective/saved uids and gids, supplementary groups."""
    return {"pid": os.getpid(), "uids": list(os.getresuid()), "gids": list(os.getresgid()),
            "groups": os.getgroups()}


def require_root() -> None:
    """Refuse clearly when namespaces and TAPs cannot be made."""
    if os.geteuid() != 0:
        raise DatapathError("softgso datapath needs root (it creates network namespaces and TAP devices): "
                            "run it with sudo")
    if not os.path.exists("/dev/net/tun"):
        raise DatapathError("/dev/net/tun is missing: load the tun module (modprobe tun)")


@contextmanager
def teardown_on_signals() -> Iterator[None]:
    """Turn SIGTERM (and SIGHUP) into an exception so that every `with` block unwinds and cleans up."""

    owner = os.getpid()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:
            # a child forked by a library (pyroute2 stops its netns helpers with SIGTERM) must not
            # run our teardown: it dies the default way
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_datapath(options: DatapathOptions) -> int:
    """`softgso datapath`: set up west/east, forward until Ctrl-C (or --duration), tear down. Exit status."""
    from rich.console import Console
    from rich.markup import escape

    from ..cli.runner import EXIT_INTERRUPTED, EXIT_REFUSED, EXIT_TERMINATED, EXIT_USAGE
    from .display import StatsView

    console = Console(stderr=True)
    try:
        options.validate()
        require_root()
    except SoftGSOError as exc:
        console.print(f"[red]softgso datapath:[/] {exc}")
        return EXIT_USAGE
    if options.selftest:
        from .selftest import print_selftest, run_selftest

        try:
            with teardown_on_signals():
                result = run_selftest(options)
        except (KeyboardInterrupt, Interrupted) as exc:
            console.print("softgso datapath: interrupted; namespaces and TAPs removed")
            return EXIT_TERMINATED if isinstance(exc, Interrupted) else EXIT_INTERRUPTED
        except SoftGSOError as exc:
            console.print(f"[red]softgso datapath --selftest:[/] {exc}")
            return EXIT_REFUSED
        if options.json:
            print(json.dumps(result, indent=2))
        else:
            print_selftest(result, Console())
        return 0 if result["verified"] else 1

    mode = options.mode
    link = options.link_device(mode)
    capture = None
    status = 0
    outcome: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    try:
        with teardown_on_signals(), options.topology(str(os.getpid()), mode) as topology:
            if options.capture:
                from .pcap import LinkCapture

                capture = LinkCapture(options.capture)
            datapath = Datapath(topology, link, options.labels, options.back_labels, capture=capture, ttl=options.ttl,
                                engine=options.engine, gro=options.gro)
            view = StatsView(datapath, topology, mode)
            console.print(view.banner(), soft_wrap=True)
            credentials = options.credentials()
            if credentials is None:
                outcome = forward(datapath, options, console, view)
            else:
                outcome = forward_unprivileged(credentials, datapath, options, console, view, capture)
            datapath.close()
            status = outcome["status"]
            stats = {"mode": mode, "netns": [topology.west.netns, topology.east.netns], **outcome["stats"]}
    except Interrupted:
        status = 143
    except KeyboardInterrupt:
        # Ctrl-C before forwarding started (during setup): everything made so far is gone already
        status = 130
    except SoftGSOError as exc:
        console.print(f"[red]softgso datapath:[/] {escape(str(exc))}", soft_wrap=True)
        status = 1
    finally:
        if capture is not None:
            capture.close()
    # the namespaces and TAPs are gone by now
    if outcome.get("error"):
        console.print(f"[red]softgso datapath:[/] {escape(outcome['error'])}; namespaces and TAPs removed",
                      soft_wrap=True)
    if stats and status in (0, 1):
        if options.json:
            json.dump(stats, sys.stdout, indent=2)
            print()
        elif not outcome.get("error"):
            console.print(f"softgso datapath: stopped; {stats['seconds']} s, namespaces and TAPs removed")
    return status


def forward(datapath: Datapath, options: DatapathOptions, console: Console, view: StatsView,
            stop_signal: StopSignal = lambda: None) -> dict[str, Any]:
    """The forwarding loop, until --duration, Ctrl-C, a stop signal or a TAP going away.

    Returns ``{"status", "error", "stats"}`` in JSON values (it may come from the unprivileged
    forwarder process): status 0 when stopped on purpose (143 when SIGTERM/SIGHUP asked through
    ``stop_signal``), 1 with ``error`` when a TAP went away. In this process, SIGTERM arrives as
    Interrupted and unwinds past it.
    """
    deadline = time.monotonic() + options.duration if options.duration else None

    def should_stop() -> bool:
        return stop_signal() is not None or (deadline is not None and time.monotonic() >= deadline)

    error = None
    try:
        if options.live and console.is_terminal:
            with view.live(console) as refresh:
                datapath.run(should_stop, on_tick=refresh)
        else:
            datapath.run(should_stop)
    except KeyboardInterrupt:
        pass
    except DatapathError as exc:
        error = str(exc)
    signum = stop_signal()
    status = 1 if error else 143 if signum in (signal.SIGTERM, signal.SIGHUP) else 0
    return {"status": status, "error": error, "stats": {**datapath.stats(), "forwarder": process_identity()}}


def forward_unprivileged(credentials: Credentials, datapath: Datapath, options: DatapathOptions, console: Console,
                         view: StatsView, capture: LinkCapture | None) -> dict[str, Any]:
    """forward() in a child process running as ``credentials`` (softgso.datapath.privileges).

    This process, still root, only waits and then tears down. The capture file was opened here and
    is committed here (renaming it may need rights the user lacks); the child writes the records.
    """
    console.print(f"  forwarding as user {credentials.name} (uid {credentials.uid}, gid {credentials.gid}); "
                  "this process stays root only to tear down", soft_wrap=True)
    keep = datapath.descriptors()
    if capture is not None:
        keep.append(capture.flush())  # nothing queued on either side of the fork: no record written twice

    def work(stop_signal: StopSignal) -> dict[str, Any]:
        try:
            return forward(datapath, options, console, view, stop_signal)
        finally:
            if capture is not None:
                capture.flush()

    return run_as(credentials, work, keep_fds=keep)
