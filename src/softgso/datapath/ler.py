"""The forwarding plane: two label edge routers joined by an in-process MPLS link.

Every packet, whatever the mode, takes the same path:

    TAP read -> virtio_net_hdr_to_skb -> rewrite L2 for the link -> push_mpls (the LER's stack)
      -> transmit(link profile)   [software GSO here when the link cannot carry MPLS GSO]
      -> capture hook -> peer LER: check and pop_mpls each label -> rewrite L2 for the TAP
      -> transmit(TAP profile)    [only when something is left to do: GSO or a pending checksum]
      -> virtio_net_hdr_from_skb -> TAP write

Given bulk paths by its caller (softgso.datapath.bulk.accelerate; this module imports nothing of
them), a GSO super-packet whose shape the LER has met before is segmented in bulk instead, by a plan
the scalar path above taught and was checked against; its link frames then
take the same way from the capture hook on. A frame that is not GSO takes a whole-frame plan the
same way when its shape has one: towards the link (one link frame), and from the link to the TAP
(one TAP write, instead of the pop and transmit).

The LERs are symmetric; each pushes its own stack towards the link and pops the peer's stack from
it, so the ACKs of a transfer cross the hop labelled too. All protocol work is the engine's; this
module only moves packets and counts them. A packet is never lost silently: it is forwarded, or
counted as a drop under a reason and, unless ordinary traffic causes it (multicast without a FEC),
reported through a rate-limited warning (softgso.datapath.ratelimit).
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from ..actions import LabelStackEntry, check_label_values, pop_mpls, skb_mpls_push
from ..constants import ETH_HLEN, ETH_P_IP, ETH_P_IPV6, ETH_P_MPLS_UC, MPLS_LS_LABEL_SHIFT, UDP_HLEN
from ..errors import KernelRefusal, SoftGSOError
from ..features import DeviceProfile, GsoType, IpSummed
from ..packet import Packet
from ..virtio import VirtioNetHdr, virtio_net_hdr_from_skb, virtio_net_hdr_to_skb
from ..xmit import transmit
from .tap import Tap

MPLS_LS_S_MASK = 0x00000100
IP_VERSION_TO_ETHERTYPE = {4: ETH_P_IP, 6: ETH_P_IPV6}


class DirectionStats:
    """Counters for one direction of the hop (e.g. west->east)."""

    __slots__ = ("name", "rx_packets", "rx_bytes", "rx_gso", "rx_gso_link_frames", "link_frames", "link_bytes",
                 "tx_frames", "tx_bytes", "drops", "drop_examples", "warn", "syscalls", "link_sent", "link_received",
                 "gro_frames_in", "gro_packets_out")

    def __init__(self, name: str) -> None:
        self.name = name
        self.rx_packets = 0
        self.rx_bytes = 0
        self.rx_gso = 0
        self.rx_gso_link_frames = 0
        self.link_frames = 0
        self.link_bytes = 0
        self.tx_frames = 0
        self.tx_bytes = 0
        self.drops: Counter[str] = Counter()
        self.drop_examples: dict[str, str] = {}
        # system calls the LERs made for this direction, by name (a kernel link only)
        self.syscalls: Counter[str] = Counter()
        # frames a kernel link took from the sender, and gave the receiver
        self.link_sent = 0
        self.link_received = 0
        # the far edge's GRO: frames into it, packets out of it
        self.gro_frames_in = 0
        self.gro_packets_out = 0
        # where warnings about drops go (a RateLimitedLog: called with the message and its reason)
        self.warn: Callable[[str, str], object] | None = None

    def drop(self, reason: str, example: str = "", *, warn: bool = True, count: int = 1) -> None:
        """Count ``count`` dropped packets under a short reason; keep one full message per reason; warn.

        ``warn=False`` for the drops that ordinary traffic causes (multicast the LER has no FEC for).
        """
        self.drops[reason] += count
        if example and reason not in self.drop_examples:
            self.drop_examples[reason] = example
        if warn and self.warn is not None:
            self.warn(f"{self.name}: dropped a packet: {(example or reason)[:300]}", reason)

    def as_dict(self) -> dict[str, object]:
        """Counters as plain JSON values."""
        return {
            "rx_packets": self.rx_packets,
            "rx_bytes": self.rx_bytes,
            "rx_gso_packets": self.rx_gso,
            "segments_per_gso_packet": round(self.rx_gso_link_frames / self.rx_gso, 2) if self.rx_gso else 0.0,
            "link_frames": self.link_frames,
            "link_bytes": self.link_bytes,
            "tx_frames": self.tx_frames,
            "tx_bytes": self.tx_bytes,
            "drops": dict(self.drops),
            "drop_examples": dict(self.drop_examples),
            **({"link_sent": self.link_sent, "link_received": self.link_received,
                "syscalls": dict(sorted(self.syscalls.items()))} if self.syscalls else {}),
            **({"gro": {"frames_in": self.gro_frames_in, "packets_out": self.gro_packets_out,
                        "frames_per_packet": round(self.gro_frames_in / self.gro_packets_out, 2)}}
               if self.gro_packets_out else {}),
        }


def refusal_reason(exc: SoftGSOError) -> str:
    """A low-cardinality drop reason for an engine refusal: where it was refused and the errno."""
    where = exc.where or type(exc).__name__
    return f"{where} (-{exc.errno_name})" if exc.errno_name else where


CaptureHook = Callable[[bytearray], None]


class IngressPath(Protocol):
    """A LER's bulk path towards the link (softgso.datapath.bulk.BulkIngress): True when it took the read."""

    def forward(self, buf: bytes, stats: DirectionStats) -> bool: ...

    def forward_one(self, buf: bytes, stats: DirectionStats) -> bool: ...


class EgressPath(Protocol):
    """A LER's bulk path from the link to its TAP (softgso.datapath.bulk.BulkEgress): True when it took the frame."""

    def forward(self, frame: Packet, stats: DirectionStats) -> bool: ...


class LinkDrop(NamedTuple):
    """Why the link device sends nothing for a packet: a drop reason and its full message."""

    reason: str
    example: str


class MplsLink:
    """The link between the LERs: a function call through ``transmit`` with the link's device profile."""

    def __init__(self, profile: DeviceProfile, capture: CaptureHook | None = None) -> None:
        self.profile = profile
        self.capture = capture

    def carry(self, pkt: Packet, receiver: LabelEdgeRouter, stats: DirectionStats) -> None:
        """Put a labelled packet on the link: what the link device sends is what the peer receives."""
        frames = self.frames_for(pkt)
        if isinstance(frames, LinkDrop):
            stats.drop(frames.reason, frames.example)
            return
        self.send(frames, receiver, stats, gso=bool(pkt.gso_size))

    def frames_for(self, pkt: Packet) -> Sequence[Packet] | LinkDrop:
        """What the link device sends for a labelled packet, or why the packet goes no further."""
        if len(pkt.data) - pkt.mac_len > self.profile.mtu and not self.segments_fit(pkt):
            return LinkDrop("too big for the link MTU (mpls_pkt_too_big)",
                            f"{len(pkt.data) - pkt.mac_len}-byte packet, gso_size {pkt.gso_size}, "
                            f"link MTU {self.profile.mtu}")
        if pkt.gso_size or pkt.ip_summed == IpSummed.PARTIAL or pkt.vlan_tci is not None:
            try:
                return transmit(pkt, self.profile)
            except KernelRefusal as exc:
                return LinkDrop(refusal_reason(exc), str(exc))
        # validate_xmit_skb has nothing to do for such a packet (no-gso data, most ACKs)
        return (pkt,)

    def send(self, frames: Sequence[Packet], receiver: LabelEdgeRouter, stats: DirectionStats, *,
             gso: bool) -> None:
        """Count, capture and deliver the frames the link device sends for one packet (``gso``: a GSO one)."""
        stats.link_frames += len(frames)
        if gso:
            stats.rx_gso_link_frames += len(frames)
        capture = self.capture
        egress = receiver.bulk_egress
        for frame in frames:
            stats.link_bytes += len(frame.data)
            if capture is not None:
                capture(frame.data)
            if egress is None or not egress.forward(frame, stats):
                receiver.receive_from_link(self.deliver(frame), stats)

    def segments_fit(self, pkt: Packet) -> bool:
        """Each segment of a GSO packet fits the link MTU (skb_gso_validate_network_len, as af_mpls checks)."""
        if not pkt.gso_size:
            return False
        l4 = pkt.csum_start if pkt.ip_summed == IpSummed.PARTIAL else (pkt.transport_header or 0)
        if pkt.gso_type & (GsoType.TCPV4 | GsoType.TCPV6):
            l4_header = (pkt.data[l4 + 12] >> 4) * 4 if l4 + 13 <= len(pkt.data) else 0
        else:
            l4_header = UDP_HLEN
        return l4 - pkt.mac_len + l4_header + pkt.gso_size <= self.profile.mtu

    @staticmethod
    def deliver(frame: Packet) -> Packet:
        """The packet the peer receives: the frame's bytes, the headers found again (eth_type_trans).

        Like a veth hop, the GSO and checksum state travel with the frame; nothing else does (the
        sender's inner_* offsets and any side effect of its transmit path stay behind).
        """
        data = frame.data
        received = Packet(data, protocol=int.from_bytes(data[12:14], "big"), network_header=ETH_HLEN, mac_len=ETH_HLEN)
        if frame.gso_size:
            received.gso_size = frame.gso_size
            received.gso_type = frame.gso_type
            received.gso_segs = frame.gso_segs
        if frame.ip_summed == IpSummed.PARTIAL or frame.ip_summed == IpSummed.UNNECESSARY:
            received.ip_summed = frame.ip_summed
            received.csum_start = frame.csum_start
            received.csum_offset = frame.csum_offset
        return received


class LabelEdgeRouter:
    """One LER: from its TAP it pushes ``push_labels`` onto the link; from the link it pops ``pop_labels``."""

    def __init__(
        self,
        name: str,
        tap: Tap,
        *,
        push_labels: Sequence[int],
        pop_labels: Sequence[int],
        own_mac: bytes,
        tap_peer_mac: bytes,
        link_mac: bytes,
        link_peer_mac: bytes,
        tap_profile: DeviceProfile,
        ttl: int = 64,
    ) -> None:
        self.name = name
        self.tap = tap
        # pushed bottom label first, so the first one in the list ends on top
        self.push_order = tuple(reversed(push_labels))
        for label in self.push_order:
            check_label_values(label, 0, ttl)
        # the label stack entries, encoded once: what reaches the push is always IP (receive_from_tap
        # drops anything else), so only the first entry pushed has the bottom-of-stack bit
        self.push_entries = tuple(
            LabelStackEntry(label, 0, index == 0, ttl).encode() for index, label in enumerate(self.push_order)
        )
        self.pop_labels = tuple(pop_labels)
        self.own_mac = own_mac
        self.macs_to_tap = tap_peer_mac + own_mac
        self.macs_to_link = link_peer_mac + link_mac
        # what label_for_link puts in front of an IP packet: the link MACs, the MPLS ethertype, the stack
        # top first (the last entry pushed is on top)
        self.link_prefix = (self.macs_to_link + ETH_P_MPLS_UC.to_bytes(2, "big")
                            + b"".join(lse.to_bytes(4, "big") for lse in reversed(self.push_entries)))
        self.tap_profile = tap_profile
        self.ttl = ttl
        self.hdr_len = tap.vnet_hdr_len
        self.zero_hdr = bytes(self.hdr_len)
        self.hdr_pad = bytes(self.hdr_len - 10)
        self.little_endian = tap.little_endian
        self.link: MplsLink | None = None
        self.peer: LabelEdgeRouter | None = None
        # the bulk paths its caller gives it once connected (softgso.datapath.bulk.accelerate), the
        # same bytes as the scalar path; None: every packet takes the scalar path
        self.bulk: IngressPath | None = None
        self.bulk_egress: EgressPath | None = None
        self.ingress_stats = DirectionStats(f"{name} ingress")
        self.egress_stats = self.ingress_stats

    def connect(self, link: MplsLink, peer: LabelEdgeRouter, ingress: DirectionStats) -> None:
        """Attach to the link and the LER at its other end; ``ingress`` counts traffic entering here."""
        self.link = link
        self.peer = peer
        self.ingress_stats = ingress
        # plans learnt for another link do not hold here
        self.bulk = None
        self.bulk_egress = None

    def receive_from_tap(self, buf: bytes) -> None:
        """One read from the TAP: a vnet header and a frame from the local kernel."""
        stats = self.ingress_stats
        hdr_len = self.hdr_len
        if len(buf) < hdr_len + ETH_HLEN:
            stats.drop("runt frame from the TAP")
            return
        if buf[hdr_len : hdr_len + 6] != self.own_mac:
            # multicast and broadcast (IPv6 ND/MLD, ...): nothing in our FEC table addresses them
            stats.drop("not addressed to the LER (no FEC)", warn=False)
            return
        ethertype = int.from_bytes(buf[hdr_len + 12 : hdr_len + 14], "big")
        if ethertype != ETH_P_IP and ethertype != ETH_P_IPV6:
            stats.drop(f"no FEC for ethertype {ethertype:#06x}", warn=False)
            return
        bulk = self.bulk
        if bulk is not None and (bulk.forward(buf, stats) if buf[1] else bulk.forward_one(buf, stats)):
            # a GSO super-packet (gso_type, the header's second byte, set), or a frame that is
            # not, of a shape with a plan
            return
        try:
            pkt = self.skb_from_tap(buf)
            stats.rx_packets += 1
            stats.rx_bytes += len(pkt.data)
            if pkt.gso_size:
                stats.rx_gso += 1
            self.label_for_link(pkt)
        except SoftGSOError as exc:
            stats.drop(refusal_reason(exc), str(exc))
            return
        assert self.link is not None and self.peer is not None
        self.link.carry(pkt, self.peer, stats)

    def skb_from_tap(self, buf: bytes) -> Packet:
        """The packet of one TAP read (virtio_net_hdr_to_skb); raises the engine's refusal."""
        hdr_len = self.hdr_len
        if buf.startswith(self.zero_hdr):
            # no GSO, no checksum flags: virtio_net_hdr_to_skb would only do eth_type_trans
            return Packet.from_ethernet(memoryview(buf)[hdr_len:])
        hdr = VirtioNetHdr.unpack(buf[:hdr_len], little_endian=self.little_endian)
        return virtio_net_hdr_to_skb(memoryview(buf)[hdr_len:], hdr, kernel="mainline")  # type: ignore[arg-type]

    def label_for_link(self, pkt: Packet) -> None:
        """Rewrite the MAC addresses for the link and push the LER's label stack; raises the engine's refusal."""
        pkt.data[0:12] = self.macs_to_link
        for lse in self.push_entries:
            # push_mpls without re-validating and re-encoding the same labels per packet
            skb_mpls_push(pkt, lse, ETH_P_MPLS_UC, (pkt.network_header or 0) - pkt.mac_header, ethernet=True)

    def receive_from_link(self, pkt: Packet, stats: DirectionStats) -> None:
        """A frame from the link: pop the expected labels, hand the inner packet to the local kernel."""
        if self.pop_for_tap(pkt, stats):
            self.send_to_tap(pkt, stats)

    def pop_for_tap(self, pkt: Packet, stats: DirectionStats) -> bool:
        """Pop the expected labels and rewrite L2 for the TAP; False: dropped (counted)."""
        data = pkt.data
        try:
            for depth, expected in enumerate(self.pop_labels, start=1):
                top = pkt.network_header or ETH_HLEN
                if pkt.protocol != ETH_P_MPLS_UC or top + 5 > len(data):
                    stats.drop("label stack shorter than expected")
                    return False
                lse = int.from_bytes(data[top : top + 4], "big")
                if lse >> MPLS_LS_LABEL_SHIFT != expected:
                    stats.drop("unexpected label", f"label {lse >> MPLS_LS_LABEL_SHIFT}, expected {expected}")
                    return False
                if lse & MPLS_LS_S_MASK:
                    if depth != len(self.pop_labels):
                        stats.drop("label stack shorter than expected")
                        return False
                    # as af_mpls does for a route without a payload type: the IP version tells
                    next_proto = IP_VERSION_TO_ETHERTYPE.get(data[top + 4] >> 4, 0)
                    if not next_proto:
                        stats.drop("not IP under the bottom label")
                        return False
                elif depth == len(self.pop_labels):
                    stats.drop("label stack deeper than expected")
                    return False
                else:
                    next_proto = ETH_P_MPLS_UC
                pop_mpls(pkt, next_proto)
        except SoftGSOError as exc:
            stats.drop(refusal_reason(exc), str(exc))
            return False
        data[0:12] = self.macs_to_tap
        return True

    def send_to_tap(self, pkt: Packet, stats: DirectionStats) -> None:
        """Give a packet to the local kernel through the TAP, with the vnet header that describes it."""
        for hdr, data in self.tap_writes(pkt, stats):
            self.write_to_tap((hdr, data), len(data), stats)

    def tap_writes(self, pkt: Packet, stats: DirectionStats) -> list[tuple[bytes, bytearray]]:
        """The (vnet header, frame) writes to the TAP for a packet; what cannot be written is counted as dropped."""
        packets: Sequence[Packet]
        if pkt.gso_size or pkt.ip_summed == IpSummed.PARTIAL or pkt.vlan_tci is not None:
            try:
                packets = transmit(pkt, self.tap_profile)
            except KernelRefusal as exc:
                stats.drop(refusal_reason(exc), str(exc))
                return []
        else:
            # validate_xmit_skb has nothing to do for such a packet
            packets = (pkt,)
        writes = []
        for out in packets:
            if out.gso_size or out.ip_summed == IpSummed.PARTIAL or out.ip_summed == IpSummed.UNNECESSARY:
                try:
                    hdr = virtio_net_hdr_from_skb(out).pack(little_endian=self.little_endian) + self.hdr_pad
                except SoftGSOError as exc:
                    stats.drop(refusal_reason(exc), str(exc))
                    continue
            else:
                hdr = self.zero_hdr
            writes.append((hdr, out.data))
        return writes

    def write_to_tap(self, pieces: Sequence[bytes | bytearray | memoryview], frame_len: int,
                     stats: DirectionStats) -> None:
        """Write one frame (vnet header first, then the frame's ``frame_len`` bytes in pieces) to the TAP; counted."""
        try:
            os.writev(self.tap.fd, pieces)
        except OSError as exc:
            name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
            stats.drop(f"TAP write failed ({name})", str(exc))
            return
        stats.tx_frames += 1
        stats.tx_bytes += frame_len
