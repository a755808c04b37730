"""The live statistics table of `softgso datapath` (rich, refreshed about once a second)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .ler import DirectionStats

if TYPE_CHECKING:
    from .run import Datapath
    from .topology import Topology


class StatsView:
    """Rates computed from the counters between two refreshes."""

    def __init__(self, datapath: Datapath, topology: Topology, mode: str) -> None:
        self.datapath = datapath
        self.topology = topology
        self.mode = mode
        self._last = time.monotonic()
        self._previous = {d.name: (0, 0, 0) for d in self._directions()}

    def _directions(self) -> tuple[DirectionStats, DirectionStats]:
        return self.datapath.west_to_east, self.datapath.east_to_west

    def banner(self) -> Text:
        """Where things are, and how to send traffic through the hop."""
        west, east = self.topology.west, self.topology.east
        link = self.datapath.link.profile
        return Text.from_markup(
            f"[bold]softgso datapath[/] mode [cyan]{self.mode}[/], link [cyan]{link.name}[/] (MTU {link.mtu})\n"
            f"  west: netns {west.netns}, {west.tap_name} {west.ipv4}/24 {west.ipv6}/64\n"
            f"  east: netns {east.netns}, {east.tap_name} {east.ipv4}/24 {east.ipv6}/64\n"
            f"{self.link_line()}"
            f"  try:  ip netns exec {east.netns} iperf3 -s  |  ip netns exec {west.netns} iperf3 -c {east.ipv4}\n"
            "  Ctrl-C stops and removes the namespaces."
        )

    def link_line(self) -> str:
        """Where the link is and how to watch it (a veth), or why there is no kernel link."""
        topology = self.topology
        if topology.link_sockets is None:
            return "  link: in-process (no kernel device here carries MPLS super-packets)\n"
        (first, second), (first_ns, _) = topology.link_ends, topology.link_netns
        gro = "on" if self.datapath.gro else "off"
        return (f"  link: veth {first} (netns {first_ns}) <-> {second}; GRO at the receiving LER {gro}\n"
                f"  watch: ip netns exec {first_ns} tcpdump -ni {first} mpls\n")

    def render(self) -> Group:
        """The table for the current counters."""
        now = time.monotonic()
        elapsed = max(now - self._last, 1e-6)
        self._last = now
        table = Table(title=f"softgso datapath ({self.mode}, link {self.datapath.link.profile.name})")
        for column in ("dir", "pkt/s in", "Gbit/s out", "GSO/s in", "segs/GSO", "link frames", "drops"):
            table.add_column(column, justify="right")
        drop_lines: list[str] = []
        for stats in self._directions():
            packets, tx_bytes, gso = stats.rx_packets, stats.tx_bytes, stats.rx_gso
            last_packets, last_tx, last_gso = self._previous[stats.name]
            self._previous[stats.name] = (packets, tx_bytes, gso)
            segs = stats.rx_gso_link_frames / gso if gso else 0.0
            table.add_row(
                stats.name,
                f"{(packets - last_packets) / elapsed:,.0f}",
                f"{(tx_bytes - last_tx) * 8 / elapsed / 1e9:.3f}",
                f"{(gso - last_gso) / elapsed:,.0f}",
                f"{segs:.1f}",
                f"{stats.link_frames:,}",
                f"{sum(stats.drops.values()):,}",
            )
            drop_lines += [f"  {stats.name} drop: {reason}: {count:,}" for reason, count in stats.drops.most_common(5)]
        return Group(table, Text("\n".join(drop_lines))) if drop_lines else Group(table)

    @contextmanager
    def live(self, console: Console) -> Iterator[Callable[[], None]]:
        """A rich Live display; the yielded callable refreshes it."""
        with Live(self.render(), console=console, refresh_per_second=1, auto_refresh=False) as live:

            def refresh() -> None:
                live.update(self.render(), refresh=True)

            yield refresh
