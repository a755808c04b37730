"""The software GSO core (net/core/gso.c and skb_segment in net/core/skbuff.c).

Segmentation dispatches through one offload table, like the kernel's: :data:`ETHERTYPE_OFFLOADS`
keyed by ethertype (IPv4, IPv6, MPLS, ...) and :data:`INET_OFFLOADS` / :data:`INET6_OFFLOADS`
keyed by IP protocol (TCP, UDP, IPv6 extension headers). Each protocol lives in its own module
under :mod:`softgso.offload` and registers itself with the decorators below; this module never
names a protocol beyond what the dispatcher itself needs (VLAN tags, which the kernel's
skb_network_protocol skips before looking up the table).

Handlers mirror the kernel's ``gso_segment`` callbacks. Where the kernel pulls headers off
``skb->data``, a handler here receives ``data``, the frame offset its header starts at. A handler
returns the list of segments, or ``None`` when it only validated the packet (the GSO_ROBUST
shortcut: the original goes to the device whole), or raises a :class:`KernelRefusal`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .checksum import ones_sum, ones_sums_of_chunks
from .constants import ETH_HLEN, ETH_P_IP, ETH_P_IPV6, ETH_P_TEB, VLAN_HLEN, VLAN_MAX_DEPTH, eth_type_vlan
from .errors import InvalidPacketError, ProtocolNotSupportedError, SoftGSOError
from .features import (
    DeviceProfile,
    GsoType,
    IpSummed,
    NetdevFeature,
    net_gso_ok,
)
from .packet import Packet
from .valueclass import FrozenValueClass, ValueClass, init_fields

TYPE_CHECKING = False  # typing costs start-up milliseconds; mypy reads this name as typing's
if TYPE_CHECKING:
    from typing import TypeAlias


class GsoContext(ValueClass):
    """What the kernel keeps in SKB_GSO_CB plus the egress device (skb->dev)."""

    device: DeviceProfile
    mac_offset: int
    encap_level: int
    tx_path: bool

    def __init__(self, device: DeviceProfile, mac_offset: int = 0, encap_level: int = 0,
                 tx_path: bool = True) -> None:
        self.device = device
        self.mac_offset = mac_offset
        self.encap_level = encap_level
        self.tx_path = tx_path


GsoHandler: TypeAlias = Callable[[Packet, int, NetdevFeature, GsoContext], "list[Packet] | None"]


class InetOffload(FrozenValueClass):
    """An entry of inet_offloads / inet6_offloads: a handler, or an IPv6 extension-header marker."""

    gso_segment: GsoHandler | None
    ipv6_exthdr: bool

    def __init__(self, gso_segment: GsoHandler | None, ipv6_exthdr: bool = False) -> None:
        init_fields(self, locals())


ETHERTYPE_OFFLOADS: dict[int, GsoHandler] = {}
INET_OFFLOADS: dict[int, InetOffload] = {}
INET6_OFFLOADS: dict[int, InetOffload] = {}


def register_ethertype(*ethertypes: int) -> Callable[[GsoHandler], GsoHandler]:
    """Register a packet-offload handler (dev_add_offload) for these ethertypes."""

    def decorate(handler: GsoHandler) -> GsoHandler:
        for ethertype in ethertypes:
            ETHERTYPE_OFFLOADS[ethertype] = handler
        return handler

    return decorate


def register_inet(protocol: int, *, ipv4: bool = True, ipv6: bool = True) -> Callable[[GsoHandler], GsoHandler]:
    """Register an IP-protocol handler (inet_add_offload / inet6_add_offload)."""

    def decorate(handler: GsoHandler) -> GsoHandler:
        if ipv4:
            INET_OFFLOADS[protocol] = InetOffload(handler)
        if ipv6:
            INET6_OFFLOADS[protocol] = InetOffload(handler)
        return handler

    return decorate


def register_ipv6_exthdr(protocol: int) -> None:
    """Mark an IPv6 extension header that GSO walks over (INET6_PROTO_GSO_EXTHDR, no handler)."""
    INET6_OFFLOADS[protocol] = InetOffload(None, ipv6_exthdr=True)


_loaded = False


def load_offloads() -> None:
    """Import every module of :mod:`softgso.offload` once, so that each registers itself."""
    global _loaded
    if _loaded:
        return
    import importlib

    from . import offload

    for name in module_names(offload.__path__):
        importlib.import_module(f"{offload.__name__}.{name}")
    _loaded = True


def module_names(folders: Iterable[str]) -> list[str]:
    """The modules and packages in ``folders`` (a package's ``__path__``), as pkgutil.iter_modules
    names them, without importing pkgutil (it imports inspect: milliseconds of every run's start-up)."""
    import os
    from importlib.machinery import all_suffixes

    suffixes = sorted(all_suffixes(), key=len, reverse=True)
    found: list[str] = []
    for folder in folders:
        try:
            entries = sorted(os.listdir(folder))
        except OSError:
            continue
        for entry in entries:
            name = next((entry[: -len(suffix)] for suffix in suffixes if entry.endswith(suffix)), None)
            if name is None and "." not in entry and os.path.isfile(os.path.join(folder, entry, "__init__.py")):
                name = entry  # a package
            if name and name != "__init__" and "." not in name and name not in found:
                found.append(name)
    return found


# --- the MAC-level dispatcher --------------------------------------------------------------------


def skb_network_protocol(skb: Packet) -> tuple[int, int]:
    """(ethertype, L2 depth) with VLAN tags skipped, or (0, 0) when that fails (skb_network_protocol).

    Tags are looked for ``mac_len`` bytes into the MAC header (at 14 when mac_len is 0), whatever
    the bytes there are: the protocol field is trusted, as in the kernel.
    """
    ethertype = skb.protocol
    if ethertype == ETH_P_TEB:
        if len(skb.data) - skb.mac_header < ETH_HLEN:
            return 0, 0
        ethertype = int.from_bytes(skb.data[skb.mac_header + 12 : skb.mac_header + 14], "big")
    return vlan_get_protocol(skb, ethertype)


def vlan_get_protocol(skb: Packet, ethertype: int) -> tuple[int, int]:
    """(ethertype, L2 depth) behind the VLAN tags in the bytes when ``ethertype`` is a VLAN one, or (0, 0)
    (__vlan_get_protocol: the first tag is read at ``mac_len - VLAN_HLEN``, or at 14 when mac_len is 0)."""
    data = skb.data
    start = skb.mac_header
    depth = skb.mac_len
    if eth_type_vlan(ethertype):
        if depth:
            if depth < VLAN_HLEN:
                return 0, 0
            depth -= VLAN_HLEN
        else:
            depth = ETH_HLEN
        budget = VLAN_MAX_DEPTH
        while True:
            tag = start + depth
            budget -= 1
            if tag + VLAN_HLEN > len(data) or budget == 0:
                return 0, 0
            ethertype = int.from_bytes(data[tag + 2 : tag + 4], "big")
            depth += VLAN_HLEN
            if not eth_type_vlan(ethertype):
                break
    return ethertype, depth


def skb_mac_gso_segment(skb: Packet, features: NetdevFeature, ctx: GsoContext) -> list[Packet] | None:
    """Dispatch on the (VLAN-skipped) ethertype to its offload handler (skb_mac_gso_segment)."""
    load_offloads()
    ethertype, depth = skb_network_protocol(skb)
    if not ethertype:
        raise InvalidPacketError(
            "cannot find the network protocol (VLAN tag truncated, too deep, or mac_len inconsistent)",
            where="skb_mac_gso_segment",
        )
    handler = ETHERTYPE_OFFLOADS.get(ethertype)
    if handler is None:
        raise ProtocolNotSupportedError(f"no GSO handler for ethertype {ethertype:#06x}", where="skb_mac_gso_segment")
    return handler(skb, skb.mac_header + depth, features, ctx)


def skb_needs_check(skb: Packet, tx_path: bool) -> bool:
    """The L4 checksum field will be initialised by GSO (skb_needs_check)."""
    if tx_path:
        return skb.ip_summed not in (IpSummed.PARTIAL, IpSummed.UNNECESSARY)
    return skb.ip_summed == IpSummed.NONE


def skb_gso_segment(
    skb: Packet, features: NetdevFeature, device: DeviceProfile, *, tx_path: bool = True
) -> list[Packet] | None:
    """Segment a GSO packet in software (__skb_gso_segment): segments, or None if only validated."""
    ctx = GsoContext(device=device, mac_offset=skb.mac_header, tx_path=tx_path)
    if features & NetdevFeature.GSO_PARTIAL:
        # a software engine never asks for GSO_PARTIAL's half-done super-segments
        features &= ~NetdevFeature.GSO_PARTIAL
    skb.reset_mac_len()
    return skb_mac_gso_segment(skb, features, ctx)


def skb_gso_ok(skb: Packet, features: int) -> bool:
    """The device can take this GSO packet whole (skb_gso_ok; no frag_list in this model)."""
    return net_gso_ok(features, skb.gso_type)


# --- the generic segmenter -----------------------------------------------------------------------


_HW_CSUM, _IP_CSUM, _IPV6_CSUM = int(NetdevFeature.HW_CSUM), int(NetdevFeature.IP_CSUM), int(NetdevFeature.IPV6_CSUM)


def can_checksum_protocol(features: int, ethertype: int) -> bool:
    """HW_CSUM checksums anything; IP_CSUM only IPv4; IPV6_CSUM only IPv6 (can_checksum_protocol)."""
    bits = int(features)  # plain-int arithmetic: this runs for every packet transmitted
    if bits & _HW_CSUM:
        return True
    if ethertype == ETH_P_IP:
        return bool(bits & _IP_CSUM)
    if ethertype == ETH_P_IPV6:
        return bool(bits & _IPV6_CSUM)
    return False


def skb_segment(skb: Packet, data: int, mss: int, features: NetdevFeature, ctx: GsoContext) -> list[Packet]:
    """Cut the payload at ``data`` into ``mss``-sized pieces behind copies of every header (skb_segment).

    Every byte from the outermost MAC header (``ctx.mac_offset``, so MPLS labels and outer L2
    included) up to ``data`` is copied in front of each piece; the L3/L4 handlers fix the copies up
    afterwards. A segment keeps ``ip_summed`` PARTIAL when the device can checksum the protocol seen
    at this level; otherwise it becomes NONE and ``extras['payload_sum']`` holds the sum of its
    payload, which the L4 handler folds into the final checksum (the kernel keeps it in
    SKB_GSO_CB(skb)->csum).
    """
    ethertype, _ = skb_network_protocol(skb)
    if not ethertype:
        raise InvalidPacketError("cannot find the network protocol", where="skb_segment")
    csum = can_checksum_protocol(features, ethertype)
    headers = bytes(skb.data[ctx.mac_offset : data])
    payload = memoryview(skb.data)[data:]
    # every piece's sum in one pass over the payload (the kernel sums each while copying it)
    payload_sums = None if csum else ones_sums_of_chunks(payload, mss)
    segments: list[Packet] = []
    for index, start in enumerate(range(0, len(payload), mss)):
        seg = _copy_metadata(skb, bytearray(headers) + payload[start : start + mss])
        if payload_sums is not None:
            seg.ip_summed = IpSummed.NONE
            seg.extras["payload_sum"] = payload_sums[index]
            seg.extras["payload_offset"] = len(headers)
            seg.extras[GSO_CB] = (payload_sums[index], len(headers))
        segments.append(seg)
    payload.release()
    return segments


def _copy_metadata(skb: Packet, data: bytearray) -> Packet:
    """A segment's metadata: the original's (__copy_skb_header), no longer GSO."""
    seg = skb.clone(data)
    seg.gso_size = 0
    seg.gso_type = GsoType.NONE
    seg.gso_segs = 0
    return seg


# --- SKB_GSO_CB checksum chaining (include/net/gso.h) --------------------------------------------

GSO_CB = "gso_cb"  # extras key: (SKB_GSO_CB(skb)->csum, SKB_GSO_CB(skb)->csum_start)


def gso_make_checksum(seg: Packet, start: int, res: int) -> int:
    """The folded checksum from ``start`` to where the level below left its sum (gso_make_checksum).

    Sums the bytes from ``start`` up to SKB_GSO_CB's csum_start, adds SKB_GSO_CB's csum (the sum
    the inner L4 handler left: the complement of its segment's seed), stores ``res`` and ``start``
    in their place for the next outer level, and returns the complemented fold.
    """
    cb = seg.extras.get(GSO_CB)
    cb_csum, cb_start = cb if isinstance(cb, tuple) else (0, start)
    partial = ones_sum(memoryview(seg.data)[start:cb_start], cb_csum)
    seg.extras[GSO_CB] = (res, start)
    return ~partial & 0xFFFF


def segment_or_unwind(skb: Packet, segment: Callable[[], list[Packet] | None], protocol: int, transport: int,
                      mac_offset: int, mac_len: int) -> list[Packet] | None:
    """An outer handler's call to the inner one: its segments; when it gives up (a refusal, or None for
    the GSO_ROBUST shortcut) the super-packet is put back first, as each handler's error path calls
    skb_gso_error_unwind."""
    try:
        segments = segment()
    except SoftGSOError:
        skb_gso_error_unwind(skb, protocol, transport, mac_offset, mac_len)
        raise
    if segments is None:
        skb_gso_error_unwind(skb, protocol, transport, mac_offset, mac_len)
    return segments


def skb_gso_error_unwind(skb: Packet, protocol: int, transport: int, mac_offset: int, mac_len: int) -> None:
    """Put a super-packet back as skb_gso_error_unwind (include/net/gso.h) leaves it when a handler
    gives up: its protocol and headers restored, the transport header at the header that handler
    pulled, and ``encapsulation`` set as the kernel's side effect."""
    restore_outer_headers(skb, protocol, transport, mac_offset, mac_len)
    skb.encapsulation = True


def restore_outer_headers(skb: Packet, protocol: int, transport: int, mac_offset: int, mac_len: int) -> None:
    """The outer headers a tunnel handler pulled, pushed back (as gre_gso_segment and
    __skb_udp_tunnel_segment do on every segment): protocol, mac_len and the mac, network and
    transport header offsets."""
    skb.protocol = protocol
    skb.transport_header = transport
    skb.mac_header = mac_offset
    skb.network_header = mac_offset + mac_len
    skb.mac_len = mac_len


__all__ = [
    "ETHERTYPE_OFFLOADS", "GSO_CB", "INET6_OFFLOADS", "INET_OFFLOADS", "GsoContext", "GsoHandler", "InetOffload",
    "can_checksum_protocol", "gso_make_checksum", "load_offloads", "module_names", "register_ethertype", "register_inet",
    "register_ipv6_exthdr", "restore_outer_headers", "segment_or_unwind", "skb_gso_error_unwind", "skb_gso_ok", "skb_gso_segment",
    "skb_mac_gso_segment", "skb_needs_check", "skb_network_protocol", "skb_segment",
]
