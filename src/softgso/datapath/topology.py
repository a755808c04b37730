"""Two network namespaces, each with one TAP whose descriptor the datapath holds (pyroute2, no `ip`),
and the link between the label edge routers: a veth pair, each end in a namespace of its own.

    netns west: tap 10.200.1.1/24, fd00:5e:1::1/64, routes to east via the LER1 gateway (.254 / ::fe)
    netns east: tap 10.200.2.1/24, fd00:5e:2::1/64, routes to west via the LER2 gateway
    netns l1 / l2: the link's two ends (sga... / sgb...), MTU 1500 + 4 per label, no address, IPv6 off;
        the LERs read and write them through packet sockets opened inside (softgso.datapath.link)

:class:`KernelTopology` is the ceiling's set-up: west and east joined by a plain veth, the kernel's
own GSO/GRO on it, no userspace hop.

The gateways exist only as permanent neighbour entries pointing at the LERs' MAC addresses, so no
ARP or neighbour discovery has to cross the label-switched hop. Addresses live only inside the
namespaces this run created; nothing is routed out of them.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field

from ..errors import SoftGSOError
from .netns import in_netns
from .tap import Tap, TapError

NUD_PERMANENT = 0x80
IFA_F_NODAD = 0x02


class TopologyError(SoftGSOError):
    """Namespaces, links, addresses or routes could not be set up."""


@dataclass(frozen=True)
class Side:
    """One end: its namespace, TAP name, addresses and the LER gateway it routes through."""

    netns: str
    tap_name: str
    mac: str
    gateway_mac: str
    ipv4: str
    ipv4_gateway: str
    ipv6: str
    ipv6_gateway: str

    def mac_bytes(self) -> bytes:
        """The TAP's MAC address as 6 bytes."""
        return bytes.fromhex(self.mac.replace(":", ""))

    def gateway_mac_bytes(self) -> bytes:
        """The LER's MAC address on this side as 6 bytes."""
        return bytes.fromhex(self.gateway_mac.replace(":", ""))


def make_side(tag: str, index: int, run_id: str) -> Side:
    """The addressing plan of side ``index`` (1 = west, 2 = east) for one run."""
    return Side(
        netns=f"sgso-{tag}-{run_id}",
        tap_name=f"sg{tag[0]}{run_id}"[:15],
        mac=f"02:5e:00:00:0{index}:01",
        gateway_mac=f"02:5e:00:00:0{index}:fe",
        ipv4=f"10.200.{index}.1",
        ipv4_gateway=f"10.200.{index}.254",
        ipv6=f"fd00:5e:{index}::1",
        ipv6_gateway=f"fd00:5e:{index}::fe",
    )


@dataclass
class Topology:
    """West and east namespaces with their TAPs; a context manager that removes everything it made."""

    run_id: str
    offloads: int
    mtu: int = 1500
    vnet_hdr_len: int = 10
    gro_flush_timeout_ns: int = 0
    # the veth link's MTU; None: no kernel link (the LERs are joined in-process)
    link_mtu: int | None = None
    link_macs: tuple[str, str] = ("02:5e:00:00:0a:01", "02:5e:00:00:0a:02")
    west: Side = field(init=False)
    east: Side = field(init=False)
    west_tap: Tap | None = field(default=None, init=False)
    east_tap: Tap | None = field(default=None, init=False)
    link_sockets: tuple[socket.socket, socket.socket] | None = field(default=None, init=False)
    _created: list[str] = field(default_factory=list, init=False)
    _owner: int = field(default_factory=os.getpid, init=False)

    def __post_init__(self) -> None:
        self.west = make_side("west", 1, self.run_id)
        self.east = make_side("east", 2, self.run_id)
        self.link_netns = (f"sgso-l1-{self.run_id}", f"sgso-l2-{self.run_id}")
        self.link_ends = (f"sga{self.run_id}"[:15], f"sgb{self.run_id}"[:15])

    def __enter__(self) -> Topology:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> None:
        """Create both namespaces and TAPs, move each TAP into its namespace, address and route it."""
        create_namespaces((self.west.netns, self.east.netns), self._created)
        try:
            self.west_tap, self.east_tap = (
                Tap.open(side.tap_name, vnet_hdr_len=self.vnet_hdr_len, offloads=self.offloads,
                         gro_flush_timeout_ns=self.gro_flush_timeout_ns)
                for side in (self.west, self.east)
            )
        except TapError as exc:
            raise TopologyError(str(exc)) from exc
        if self.link_mtu is not None:
            self._link_up(self.link_mtu)
        for side, peer in ((self.west, self.east), (self.east, self.west)):
            self._configure(side, peer)

    def _link_up(self, mtu: int) -> None:
        """The veth pair between the LERs' namespaces, up, and a packet socket on each end."""
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        from .link import open_link_socket

        create_namespaces(self.link_netns, self._created)
        for name in self.link_netns:
            # no IPv6 on the link: nothing but the LERs' labelled frames crosses it
            with in_netns(name):
                for scope in ("all", "default"):
                    with open(f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6", "w") as knob:
                        knob.write("1")
        first, second = self.link_ends
        try:
            add_veth(self.link_ends, self.link_netns)
            for end, name, mac in zip(self.link_ends, self.link_netns, self.link_macs, strict=True):
                with IPRoute(netns=name) as ipr:
                    index = ipr.link_lookup(ifname=end)[0]
                    ipr.link("set", index=index, address=mac, mtu=mtu)
                    ipr.link("set", index=index, state="up")
        except (NetlinkError, OSError, IndexError) as exc:
            raise TopologyError(f"cannot set up the link {first}/{second}: {exc}") from exc
        try:
            self.link_sockets = (open_link_socket(self.link_netns[0], first),
                                 open_link_socket(self.link_netns[1], second))
        except OSError as exc:
            raise TopologyError(f"cannot open packet sockets on the link {first}/{second}: {exc}") from exc

    def _configure(self, side: Side, peer: Side) -> None:
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            with IPRoute() as ipr:
                index = ipr.link_lookup(ifname=side.tap_name)[0]
                ipr.link("set", index=index, net_ns_fd=side.netns)
            with IPRoute(netns=side.netns) as ipr:
                loopback = ipr.link_lookup(ifname="lo")[0]
                ipr.link("set", index=loopback, state="up")
                index = ipr.link_lookup(ifname=side.tap_name)[0]
                ipr.link("set", index=index, address=side.mac, mtu=self.mtu)
                ipr.link("set", index=index, state="up")
                ipr.addr("add", index=index, address=side.ipv4, prefixlen=24)
                ipr.addr("add", index=index, address=side.ipv6, prefixlen=64, flags=IFA_F_NODAD)
                ipr.neigh("add", dst=side.ipv4_gateway, lladdr=side.gateway_mac, ifindex=index, state=NUD_PERMANENT)
                ipr.neigh("add", dst=side.ipv6_gateway, lladdr=side.gateway_mac, ifindex=index, state=NUD_PERMANENT)
                ipr.route("add", dst=str(ipaddress.ip_network(f"{peer.ipv4}/24", strict=False)),
                          gateway=side.ipv4_gateway)
                ipr.route("add", dst=str(ipaddress.ip_network(f"{peer.ipv6}/64", strict=False)),
                          gateway=side.ipv6_gateway)
        except (NetlinkError, OSError, IndexError) as exc:
            raise TopologyError(f"cannot configure {side.tap_name} in {side.netns}: {exc}") from exc

    def down(self) -> None:
        """Close the TAPs (which deletes them) and remove the namespaces; safe to call twice.

        Only the process that built the topology tears it down, never a child forked from it.
        """
        if os.getpid() != self._owner:
            return
        for tap in (self.west_tap, self.east_tap):
            if tap is not None:
                tap.close()
        self.west_tap = self.east_tap = None
        for sock in self.link_sockets or ():
            sock.close()
        self.link_sockets = None
        if self.link_mtu is not None and self._created:
            _delete_stray_link(self.link_ends[0])
        remove_namespaces(self._created)

    @property
    def taps(self) -> tuple[Tap, Tap]:
        """(west TAP, east TAP); only valid between up() and down()."""
        if self.west_tap is None or self.east_tap is None:
            raise TopologyError("the topology is not up")
        return self.west_tap, self.east_tap


def create_namespaces(names: tuple[str, ...], created: list[str]) -> None:
    """Create the named network namespaces, each added to ``created`` as soon as it exists."""
    from pyroute2 import netns

    for name in names:
        try:
            netns.create(name)
        except OSError as exc:
            raise TopologyError(f"cannot create network namespace {name}: {exc}") from exc
        created.append(name)


def remove_namespaces(created: list[str]) -> None:
    """Remove the namespaces in ``created``, newest first (one already gone is fine), and empty it."""
    if not created:
        return
    from pyroute2 import netns

    for name in reversed(created):
        try:
            netns.remove(name)
        except OSError:
            if os.path.exists(f"/var/run/netns/{name}"):
                raise
    created.clear()


def add_veth(ends: tuple[str, str], namespaces: tuple[str, str]) -> None:
    """A veth pair made here, each end moved into its namespace."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("add", ifname=ends[0], kind="veth", peer=ends[1])
        for end, name in zip(ends, namespaces, strict=True):
            ipr.link("set", index=ipr.link_lookup(ifname=end)[0], net_ns_fd=name)


def _delete_stray_link(name: str) -> None:
    """The veth end a failed set-up may have left in this namespace (made here, not yet moved)."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if found:
            try:
                ipr.link("del", index=found[0])
            except NetlinkError:
                pass


@dataclass
class KernelTopology(Topology):
    """The ceiling: west and east (the same addresses as :class:`Topology`) joined by a plain veth with
    its default offloads (TSO, GRO, checksum), every route on the link; removes everything it made."""

    offloads: int = 0

    def up(self) -> None:
        """Both namespaces, the veth between them (named as the TAPs would be), addresses and routes."""
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        create_namespaces((self.west.netns, self.east.netns), self._created)
        try:
            add_veth((self.west.tap_name, self.east.tap_name), (self.west.netns, self.east.netns))
            for side, peer in ((self.west, self.east), (self.east, self.west)):
                with IPRoute(netns=side.netns) as ipr:
                    ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
                    index = ipr.link_lookup(ifname=side.tap_name)[0]
                    ipr.link("set", index=index, address=side.mac, mtu=self.mtu)
                    ipr.link("set", index=index, state="up")
                    ipr.addr("add", index=index, address=side.ipv4, prefixlen=24)
                    ipr.addr("add", index=index, address=side.ipv6, prefixlen=64, flags=IFA_F_NODAD)
                    ipr.route("add", dst=str(ipaddress.ip_network(f"{peer.ipv4}/24", strict=False)), oif=index)
                    ipr.route("add", dst=str(ipaddress.ip_network(f"{peer.ipv6}/64", strict=False)), oif=index)
        except (NetlinkError, OSError, IndexError) as exc:
            raise TopologyError(f"cannot set up the plain veth {self.west.tap_name}: {exc}") from exc

    def down(self) -> None:
        """Remove the namespaces (which deletes the veth); safe to call twice."""
        if os.getpid() != self._owner:
            return
        if self._created:
            _delete_stray_link(self.west.tap_name)
        remove_namespaces(self._created)
