"""net/core/gro.c: the GRO skb and its control block, the flow table, dev_gro_receive, skb_gro_receive,
gro_complete and the poll-end flush.

Sans-I/O: :class:`GroNode` takes Ethernet frames one at a time (``receive``) and gives back, in order,
what GRO hands to the stack; ``flush`` is the end of a NAPI poll. It never reads a file.

Offsets: the kernel's ``skb->data`` stands after the 14-byte Ethernet header once ``eth_type_trans``
ran; ``skb->len`` counts from there. Here the frame keeps its Ethernet header and every offset is
counted from the frame's first byte; :attr:`GroSkb.len` is the kernel's ``skb->len``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..constants import ETH_HLEN, ETH_P_IPV6, GRO_LEGACY_MAX_SIZE, eth_p_mpls

# include/net/gro.h, net/core/gro.c
GRO_HASH_BUCKETS = 8
MAX_GRO_SKBS = 8
GRO_MAX_SIZE = 8 * 65535  # 524280: the most `ip link set DEV gro_max_size` accepts
GRO_RECURSION_LIMIT = 15
NAPI_POLL_WEIGHT = 64

KERNELS = ("6.1", "6.12", "mainline")


@dataclass(frozen=True, slots=True)
class GroGeneration:
    """Where the kernel generations' GRO differs (see docs/kernel-notes.md, "GRO")."""

    name: str
    # tcp_gro_receive: a new frame with CWR never merges (up to 6.19); from the AccECN GRO change CWR
    # only has to equal the held header's, like the other flags
    cwr_always_flushes: bool
    # inet_gro_flush: fixed-ID mode needs DF on both (before "net: gro: remove unnecessary df checks")
    fixedid_needs_df: bool
    # skb_gro_receive / netif_get_gro_max_size: gro_ipv4_max_size exists (6.3, IPv4 BIG TCP)
    ipv4_big_tcp: bool
    # ipv6_gro_complete inserts a hop-by-hop jumbo header in an aggregate over 65535 payload bytes
    ipv6_hbh_jumbo: bool
    # the SKB_GSO_* bits completion sets for an aggregate whose first header has CWR, and for fixed IDs
    gso_ecn_bit: int
    gso_ecn_name: str
    gso_fixedid_bit: int


SKB_GSO_TCPV4 = 1 << 0
SKB_GSO_TCP_ECN = 1 << 2
SKB_GSO_TCP_FIXEDID_OLD = 1 << 3
SKB_GSO_TCPV6 = 1 << 4
SKB_GSO_GRE = 1 << 6
SKB_GSO_IPXIP4 = 1 << 8
SKB_GSO_IPXIP6 = 1 << 9
SKB_GSO_UDP_L4 = 1 << 17
SKB_GSO_TCP_ACCECN = 1 << 19  # mainline (AccECN series)
SKB_GSO_TCP_FIXEDID_NEW = 1 << 30  # mainline ("net: gso: restore ids of outer ip headers correctly")
SKB_GSO_TCP_FIXEDID_INNER = 1 << 31  # mainline: the inner header of a tunnel

GENERATIONS = {
    "6.1": GroGeneration("6.1", True, True, False, True, SKB_GSO_TCP_ECN, "ecn", SKB_GSO_TCP_FIXEDID_OLD),
    "6.12": GroGeneration("6.12", True, True, True, True, SKB_GSO_TCP_ECN, "ecn", SKB_GSO_TCP_FIXEDID_OLD),
    "mainline": GroGeneration("mainline", False, False, True, False, SKB_GSO_TCP_ACCECN, "accecn",
                              SKB_GSO_TCP_FIXEDID_NEW),
}


@dataclass(slots=True)
class GroDevice:
    """The receiving device's GRO settings (what `ethtool -K` / `ip link set` would say)."""

    kernel: str = "6.1"  # as segment's default
    gro_max_size: int = GRO_LEGACY_MAX_SIZE  # dev->gro_max_size (IPv6; every protocol on 6.1)
    gro_ipv4_max_size: int = GRO_LEGACY_MAX_SIZE  # dev->gro_ipv4_max_size (6.3+)
    udp_gro_forwarding: bool = False  # NETIF_F_GRO_UDP_FWD (rx-udp-gro-forwarding), off by default
    mpls: bool = False  # beyond the kernel: coalesce under identical MPLS label stacks
    # skb->hash of a received frame: a capture carries none; frames injected on veth have 0 (one bucket)
    flow_hash: Callable[[bytes], int] = field(default=lambda frame: 0)

    @property
    def generation(self) -> GroGeneration:
        """The rules of this device's kernel generation."""
        return GENERATIONS[self.kernel]


class GroSkb:
    """A received frame (new, or held in the flow table) with its napi_gro_cb fields."""

    __slots__ = (
        "data", "meta", "hash", "data_offset", "flush", "same_flow", "count", "gso_size", "gso_type",
        "ip_fixedid", "age", "network_offset", "transport_offset", "proto", "chain", "csum_verified",
        "recursion", "why", "protocol", "encap_mark", "outer_network_offset",
    )

    def __init__(self, frame: bytes, meta: Any, hash_value: int) -> None:
        self.data = bytearray(frame)
        self.meta = meta  # the caller's tag of the frame (e.g. its record): kept with the first segment
        self.hash = hash_value
        self.protocol = int.from_bytes(frame[12:14], "big")  # skb->protocol from eth_type_trans
        self.data_offset = ETH_HLEN  # skb_gro_offset, from the frame's first byte
        self.flush = 0
        self.same_flow = False
        self.count = 1
        self.gso_size = 0
        self.gso_type = 0
        self.ip_fixedid = 0  # bit 0: the outer (or only) IPv4 header's IDs are fixed; bit 1: the inner's
        self.encap_mark = False  # an IP-in-IP tunnel header was passed (one level only)
        self.outer_network_offset = 0  # the tunnel's outer IP header, when encap_mark
        self.age = 0
        self.network_offset = 0
        self.transport_offset = 0
        self.proto = 0
        # the gro_complete chain: (handler, offset of its header) from the outermost in
        self.chain: list[tuple[Callable[[GroSkb, int, GroDevice], None], int]] = []
        self.csum_verified = False
        self.recursion = 0
        self.why = ""  # why this frame was passed up (or why its held packet was completed)

    @property
    def len(self) -> int:
        """skb->len: bytes after the Ethernet header."""
        return len(self.data) - ETH_HLEN

    def gro_len(self) -> int:
        """skb_gro_len: bytes from the GRO offset to the end."""
        return len(self.data) - self.data_offset

    def header(self, offset: int, length: int) -> memoryview | None:
        """skb_gro_header: ``length`` bytes at ``offset``, or None when the frame is shorter."""
        if offset + length > len(self.data):
            return None
        return memoryview(self.data)[offset : offset + length]


# the offload tables: ethertype -> (gro_receive, gro_complete); IP protocol -> the same
Receive = Callable[[list[GroSkb], GroSkb, GroDevice], "GroSkb | None"]
Complete = Callable[[GroSkb, int, GroDevice], None]
packet_offloads: dict[int, tuple[Receive, Complete]] = {}
inet_offloads: dict[int, tuple[Receive, Complete]] = {}
inet6_offloads: dict[int, tuple[Receive, Complete]] = {}


def dev_add_offload(ethertype: int, receive: Receive, complete: Complete) -> None:
    """Register an Ethernet-level GRO handler (dev_add_offload)."""
    packet_offloads[ethertype] = (receive, complete)


def gro_offload(ethertype: int, device: GroDevice) -> tuple[Receive, Complete] | None:
    """The GRO handlers registered for ``ethertype``; None where there are none, or for MPLS on a device
    without MPLS GRO (``GroDevice.mpls``: beyond the kernel, off by default)."""
    if eth_p_mpls(ethertype) and not device.mpls:
        return None
    return packet_offloads.get(ethertype)


def inner_gro_complete(skb: GroSkb, offset: int, device: GroDevice) -> None:
    """Complete the handler that followed the one that stood at ``offset`` (a header GRO leaves as it
    is, the VLAN tag or the label stack): the encapsulated protocol completes."""
    index = next(i for i, (_, at) in enumerate(skb.chain) if at == offset)
    handler, inner = skb.chain[index + 1]
    handler(skb, inner, device)


def call_gro_receive(receive: Receive, head: list[GroSkb], skb: GroSkb, device: GroDevice) -> GroSkb | None:
    """call_gro_receive: at most GRO_RECURSION_LIMIT nested handlers, then the frame is flushed."""
    skb.recursion += 1
    if skb.recursion == GRO_RECURSION_LIMIT:
        skb.flush |= 1
        skb.why = skb.why or "GRO recursion limit"
        return None
    return receive(head, skb, device)


def skb_gro_receive(p: GroSkb, skb: GroSkb, device: GroDevice) -> str | None:
    """skb_gro_receive: append ``skb``'s payload to ``p``; the reason it refuses, or None."""
    length = skb.gro_len()
    generation = device.generation
    # netif_get_gro_max_size: gro_ipv4_max_size for anything not IPv6, from 6.3
    if generation.ipv4_big_tcp and p.protocol != ETH_P_IPV6:
        limit = device.gro_ipv4_max_size
    else:
        limit = device.gro_max_size
    if p.len + length >= limit:
        return "size limit (gro_max_size)"
    if skb.flush:
        return "new frame not mergeable"
    if p.len + length >= GRO_LEGACY_MAX_SIZE:
        # BIG TCP: TCP only, not encapsulated; 6.1 also wants plain IPv6 with TCP right after it
        if p.encap_mark:
            return "size limit (64 KiB, encapsulated)"
        if generation.ipv4_big_tcp:
            if skb.proto != 6:
                return "size limit (64 KiB, not TCP)"
        elif p.protocol != ETH_P_IPV6 or p.data[ETH_HLEN + 6] != 6:
            return "size limit (64 KiB, BIG TCP is IPv6 with TCP only on 6.1)"
    # headers of the new frame are dropped; its payload follows p's
    p.data += skb.data[skb.data_offset :]
    p.count += skb.count
    skb.same_flow = True
    return None


def gro_complete(p: GroSkb, device: GroDevice) -> None:
    """gro_complete: one segment leaves untouched; an aggregate runs its protocols' gro_complete chain."""
    if p.count == 1:
        p.gso_size = 0
        return
    handler, offset = p.chain[0]
    handler(p, offset, device)


@dataclass(slots=True)
class GroPacket:
    """One packet GRO hands to the stack."""

    data: bytes
    meta: Any  # the first segment's tag
    segs: int  # gso_segs (1: passed or held alone)
    gso_size: int
    gso_type: int
    gso_flags: tuple[str, ...]  # ("ecn" | "accecn", "fixedid") as the comment spells them
    family: str  # "tcpv4" | "tcpv6" | "udp_l4" | "" (a single frame)
    reason: str  # why it left GRO (a flush reason, or why the frame was never held)
    held: bool  # True when it went through the flow table (held or merged), False when passed up at once
    # ip_summed as it leaves GRO: "partial" (an aggregate: the TCP checksum is the seed), "unnecessary"
    # (GRO verified its L4 checksum), "none"; what a PACKET_VNET_HDR tap says as NEEDS_CSUM / DATA_VALID / 0
    ip_summed: str = "none"


def gso_names(gso_type: int, generation: GroGeneration) -> tuple[str, tuple[str, ...]]:
    """An aggregate's family ("tcpv4", "tcpv6", "udp_l4") and flags ("ecn" | "accecn", "ipxip4" | "ipxip6",
    "gre", "fixedid", "fixedid_inner") from its gso_type, as the pcapng comment spells them."""
    family = ""
    if gso_type & SKB_GSO_TCPV4:
        family = "tcpv4"
    elif gso_type & SKB_GSO_TCPV6:
        family = "tcpv6"
    elif gso_type & SKB_GSO_UDP_L4:
        family = "udp_l4"
    flags: list[str] = []
    if gso_type & generation.gso_ecn_bit:
        flags.append(generation.gso_ecn_name)
    if gso_type & (SKB_GSO_IPXIP4 | SKB_GSO_IPXIP6):
        flags.append("ipxip4" if gso_type & SKB_GSO_IPXIP4 else "ipxip6")
    if gso_type & SKB_GSO_GRE:
        flags.append("gre")
    if gso_type & generation.gso_fixedid_bit:
        flags.append("fixedid")
    if generation.name == "mainline" and gso_type & SKB_GSO_TCP_FIXEDID_INNER:
        flags.append("fixedid_inner")
    return family, tuple(flags)


class GroNode:
    """The GRO state of one NAPI instance (struct gro_node): buckets of held packets, newest first."""

    def __init__(self, device: GroDevice | None = None) -> None:
        self.device = device or GroDevice()
        self.buckets: list[list[GroSkb]] = [[] for _ in range(GRO_HASH_BUCKETS)]
        self.out: list[GroPacket] = []
        self.clock = 0  # stands for jiffies: one tick per poll

    # -- entry points -----------------------------------------------------------------------------

    def receive(self, frame: bytes, meta: Any = None) -> list[GroPacket]:
        """napi_gro_receive of one Ethernet frame; returns what left GRO because of it, in order."""
        self.dev_gro_receive(frame, meta)
        out, self.out = self.out, []
        return out

    def flush(self, reason: str = "poll end") -> list[GroPacket]:
        """napi_gro_flush(napi, false) at the end of a poll: buckets 0..7, each oldest first."""
        for bucket in self.buckets:
            while bucket:
                self._emit_complete(bucket.pop(), reason)
        self.clock += 1
        out, self.out = self.out, []
        return out

    @property
    def held(self) -> int:
        """Packets held in the flow table now."""
        return sum(len(bucket) for bucket in self.buckets)

    # -- net/core/gro.c ---------------------------------------------------------------------------

    def dev_gro_receive(self, frame: bytes, meta: Any) -> str:
        """dev_gro_receive: GRO_MERGED, GRO_HELD or GRO_NORMAL for ``frame``."""
        device = self.device
        if len(frame) < ETH_HLEN:
            self._emit_normal(GroSkb(frame, meta, 0), "shorter than an Ethernet header")
            return "GRO_NORMAL"
        skb = GroSkb(frame, meta, device.flow_hash(frame) & 0xFFFFFFFF)
        bucket_index = skb.hash & (GRO_HASH_BUCKETS - 1)
        head = self.buckets[bucket_index]
        self.gro_list_prepare(head, skb)
        offload = gro_offload(skb.protocol, device)
        if offload is None:
            self._emit_normal(skb, f"no GRO for ethertype {skb.protocol:#06x}")
            return "GRO_NORMAL"
        pp = call_gro_receive(offload[0], head, skb, device)
        if pp is not None:
            head.remove(pp)
            self._emit_complete(pp, pp.why or "not mergeable")
        if skb.same_flow:
            return "GRO_MERGED"
        if skb.flush:
            self._emit_normal(skb, skb.why or "not mergeable")
            return "GRO_NORMAL"
        if len(head) >= MAX_GRO_SKBS:
            # gro_flush_oldest: the bucket's last entry, the least recently held
            self._emit_complete(head.pop(), "flow table full (8 held in the bucket)")
        skb.age = self.clock
        skb.gso_size = skb.gro_len()
        head.insert(0, skb)
        return "GRO_HELD"

    def gro_list_prepare(self, head: list[GroSkb], skb: GroSkb) -> None:
        """gro_list_prepare: every held packet's flush cleared, same_flow from hash and MAC header."""
        mac = skb.data[:ETH_HLEN]
        for p in head:
            p.flush = 0
            p.same_flow = p.hash == skb.hash and p.data[:ETH_HLEN] == mac

    # -- output -----------------------------------------------------------------------------------

    def _emit_complete(self, p: GroSkb, reason: str) -> None:
        gro_complete(p, self.device)
        family, flags = gso_names(p.gso_type, self.device.generation) if p.count > 1 else ("", ())
        summed = "partial" if p.count > 1 else "unnecessary" if p.csum_verified else "none"
        self.out.append(GroPacket(bytes(p.data), p.meta, p.count, p.gso_size if p.count > 1 else 0,
                                  p.gso_type if p.count > 1 else 0, flags, family, reason, True, summed))

    def _emit_normal(self, skb: GroSkb, reason: str) -> None:
        self.out.append(GroPacket(bytes(skb.data), skb.meta, 1, 0, 0, (), "", reason, False,
                                  "unnecessary" if skb.csum_verified else "none"))
