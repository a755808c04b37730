"""The link between the label edge routers as a kernel device: a veth pair, one end in each LER's namespace.

Each LER holds a packet socket bound to its end for the labelled frames (ETH_P_MPLS_UC). Towards the
link, the frames a LER makes out of one burst of TAP reads are queued and leave in one sendmmsg
(:class:`VethLink`); the kernel enforces the link's MTU (a longer frame is refused with EMSGSIZE and
counted as a drop). From the link, the far edge (:class:`FarEdge`) takes a batch per recvmmsg, pops
the label stack, hands the batch to GRO as one NAPI poll (softgso.gro.coalesce_poll) and writes each
packet GRO gives back to its TAP, with the virtio_net_hdr that describes it: a coalesced packet
crosses as one write of up to 64 KB, as a NIC with GRO hands a host its traffic. With GRO off, each
frame is one write.

Nothing but frames crosses the link: a frame whose checksum is still pending when it leaves the
LER is completed first (skb_checksum_help), as a device without checksum offload would need.
"""

from __future__ import annotations

import errno
import os
import socket
from array import array
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..constants import ETH_HLEN, ETH_P_IP, ETH_P_IPV6, ETH_P_MPLS_UC, MPLS_LS_LABEL_SHIFT
from ..errors import SoftGSOError
from ..features import DeviceProfile, GsoType, IpSummed
from ..gro import GroDevice, GroPacket, coalesce_poll
from ..gro.coalesce import coalesce_poll_area, compiled_params
from ..gro.dev import SKB_GSO_TCPV4, SKB_GSO_TCPV6
from ..packet import Packet
from ..virtio import virtio_net_hdr_from_skb
from ..xmit import skb_checksum_help
from . import batchio
from .ler import MPLS_LS_S_MASK, DirectionStats, MplsLink
from .netns import in_netns
from .tap import READ_SIZE

if TYPE_CHECKING:
    from .ler import LabelEdgeRouter

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
# room for a few hundred thousand link frames in flight: a burst of TAP reads is many frames at once
LINK_RCVBUF = 32 << 20
LINK_SNDBUF = 8 << 20
# frames per recvmmsg, and recvmmsg calls per readiness before the loop looks at the TAPs again
LINK_BATCH = 256
LINK_BUDGET = 8
# a direction's queue towards the link (batchio.FrameQueue): room for a burst of TAP reads (READ_BUDGET
# of them, up to 64 KB each, or their segments) before it must be sent
QUEUE_BYTES = 8 << 20
QUEUE_FRAMES = 4096
# GRO's generation (softgso.gro.GENERATIONS): the newest one modelled
GRO_KERNEL = "6.12"
_MPLS_ETHERTYPE = ETH_P_MPLS_UC.to_bytes(2, "big")
_ETHERTYPE_OF_VERSION = {4: ETH_P_IP.to_bytes(2, "big"), 6: ETH_P_IPV6.to_bytes(2, "big")}
_GSO_TYPE_OF_FAMILY = {"tcpv4": GsoType.TCPV4, "tcpv6": GsoType.TCPV6, "udp_l4": GsoType.UDP_L4}
_IPV6_EXTENSIONS = {0, 43, 60}  # hop-by-hop, routing, destination options: (len + 1) * 8 bytes each
TCP_CSUM_OFFSET, UDP_CSUM_OFFSET = 16, 6


def open_link_socket(netns: str, ifname: str, protocol: int = ETH_P_MPLS_UC) -> socket.socket:
    """A non-blocking packet socket on ``ifname`` inside ``netns`` for ``protocol`` frames, big buffers."""
    with in_netns(netns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(protocol))
    try:
        sock.bind((ifname, protocol))
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, LINK_RCVBUF)
        sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, LINK_SNDBUF)
    except OSError:
        sock.close()
        raise
    return sock


def socket_drops(sock: socket.socket) -> int:
    """Frames the kernel dropped for a packet socket since the last call (PACKET_STATISTICS tp_drops)."""
    raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
    return int.from_bytes(raw[4:8], "little")


class LinkGone(SoftGSOError):
    """A packet socket on the link failed for good: its device (or the namespace it was in) went away."""


LINK_GONE_ERRNOS = (errno.ENETDOWN, errno.ENXIO, errno.ENODEV)


class VethLink(MplsLink):
    """The link device is a veth: what ``frames_for`` decides leaves through the sending LER's packet socket.

    ``send`` only queues; :meth:`flush` puts a direction's queue on the link in one sendmmsg (more
    where the queue is longer than a call takes). Where the extension is built, a direction's queue is
    a batchio.FrameQueue: its frames lie in one buffer, where the compiled segmenter writes a
    super-packet's segments (:meth:`send_segments`) and the plain TAP reads get their label stack in
    place (:meth:`push_reads`); else a list of the frames' bytes.
    """

    def __init__(self, profile: DeviceProfile, sockets: dict[str, socket.socket]) -> None:
        super().__init__(profile)
        # the socket each receiving LER's frames leave by (the sender's end), by receiver name
        self.sockets = sockets
        self.queues: dict[str, Any] = {
            name: [] if batchio.FrameQueue is None else batchio.FrameQueue(QUEUE_BYTES, QUEUE_FRAMES)
            for name in sockets}
        self.queue_stats: dict[str, DirectionStats] = {}

    def _queue(self, receiver: LabelEdgeRouter, stats: DirectionStats) -> Any:
        self.queue_stats[receiver.name] = stats
        return self.queues[receiver.name]

    def _put(self, name: str, queue: Any, data: bytes | bytearray) -> None:
        if isinstance(queue, list):
            queue.append(data)
        elif not queue.append(data):
            self.flush_queue(name)
            if not queue.append(data):
                raise ValueError(f"a {len(data)}-byte frame does not fit an empty link queue")

    def send(self, frames: Sequence[Packet], receiver: LabelEdgeRouter, stats: DirectionStats, *,
             gso: bool) -> None:
        """Count the frames the link device sends for one packet and queue them for the next flush."""
        stats.link_frames += len(frames)
        if gso:
            stats.rx_gso_link_frames += len(frames)
        queue = self._queue(receiver, stats)
        for frame in frames:
            if frame.ip_summed == IpSummed.PARTIAL:
                skb_checksum_help(frame)
            stats.link_bytes += len(frame.data)
            self._put(receiver.name, queue, frame.data)

    def send_data(self, frames: Sequence[bytearray], receiver: LabelEdgeRouter, stats: DirectionStats, *,
                  gso: bool) -> None:
        """``send`` for frames known to need nothing more (no checksum pending): their bytes, queued."""
        stats.link_frames += len(frames)
        if gso:
            stats.rx_gso_link_frames += len(frames)
        stats.link_bytes += sum(map(len, frames))
        queue = self._queue(receiver, stats)
        if isinstance(queue, list):
            queue += frames
            return
        for frame in frames:
            self._put(receiver.name, queue, frame)

    def takes_segments(self, receiver: LabelEdgeRouter) -> bool:
        """Whether :meth:`send_segments` can queue for ``receiver`` (its queue is a FrameQueue)."""
        return not isinstance(self.queues[receiver.name], list)

    def send_segments(self, segment_into: Callable[[Any, int], None], segments: int, lengths: tuple[int, int],
                      receiver: LabelEdgeRouter, stats: DirectionStats) -> None:
        """``send_data`` for the frames of a GSO super-packet a segmenter writes itself:
        ``segment_into(queue, at)`` writes ``segments`` frames back to back at ``at`` in the queue's buffer,
        each ``lengths[0]`` bytes long but the last (``lengths[1]``); no Python object per frame."""
        full_len, last_len = lengths
        need = full_len * (segments - 1) + last_len
        stats.link_frames += segments
        stats.rx_gso_link_frames += segments
        stats.link_bytes += need
        queue = self._queue(receiver, stats)
        if queue.room < need or queue.frames_free < segments:
            self.flush_queue(receiver.name)
        at = queue.tail
        segment_into(queue, at)
        queue.add_segments(at, full_len, last_len, segments)

    def push_reads(self, ler: LabelEdgeRouter, budget: int, receive: Callable[[bytes], None]) -> None:
        """Up to ``budget`` reads from ``ler``'s TAP. In C (batchio.FrameQueue.read_push) the plain ones (no
        virtio_net_hdr flags or GSO, for the LER's MAC, IPv4 or IPv6, within the link MTU once labelled:
        what ``receive_from_tap`` forwards as one frame with the label stack pushed and nothing else
        changed) are labelled in place and queued; any other read goes to ``receive``, in its turn. An
        error reading the TAP before any frame raises OSError."""
        assert ler.peer is not None
        stats = ler.ingress_stats
        name = ler.peer.name
        queue = self._queue(ler.peer, stats)
        fd = ler.tap.fd
        args = (READ_SIZE, ler.hdr_len, self.profile.mtu, ler.own_mac, ler.link_prefix)
        while budget > 0:
            pushed, calls, rx_bytes, link_bytes, leftover, full = queue.read_push(fd, budget, *args)
            stats.syscalls["read"] += calls
            if pushed:
                # as receive_from_tap and send count a frame that is not GSO
                stats.rx_packets += pushed
                stats.rx_bytes += rx_bytes
                stats.link_frames += pushed
                stats.link_bytes += link_bytes
                budget -= pushed
            if leftover is not None:
                budget -= 1
                receive(leftover)
                queue = self._queue(ler.peer, stats)
            elif full:
                self.flush_queue(name)
            else:
                return

    def queued(self, name: str) -> list[bytes]:
        """A copy of each frame queued towards the LER ``name`` (for tests and inspection)."""
        queue = self.queues[name]
        if isinstance(queue, list):
            return [bytes(frame) for frame in queue]
        return [queue.frame(index) for index in range(len(queue))]

    def flush(self) -> None:
        """Send every queued frame, one sendmmsg per batch; a frame the kernel refuses is counted as a drop."""
        for name in self.queues:
            self.flush_queue(name)

    def flush_queue(self, name: str) -> None:
        """:meth:`flush` for the frames queued towards one receiver."""
        queue = self.queues[name]
        if not len(queue):
            return
        stats = self.queue_stats[name]
        fd = self.sockets[name].fileno()
        start = delivered = 0
        compiled = not isinstance(queue, list)
        while start < len(queue):
            try:
                if compiled:
                    sent, calls, failure = queue.send(fd, start)
                else:
                    sent, calls, failure = batchio.send_batch(fd, queue[start:] if start else queue)
            except OSError as exc:
                sent, calls, failure = 0, 1, exc.errno or 0
            stats.syscalls["sendmmsg" if batchio.COMPILED else "send"] += calls
            start += sent
            delivered += sent
            if failure in LINK_GONE_ERRNOS:
                queue.clear()
                raise LinkGone(f"sending on the link: {os.strerror(failure)}")
            if failure:
                reason = errno.errorcode.get(failure, str(failure))
                if failure == errno.EMSGSIZE:
                    size = queue.frame_len(start) if compiled else len(queue[start])
                    stats.drop("too big for the link MTU (EMSGSIZE)", f"{size}-byte frame, link MTU {self.profile.mtu}")
                else:
                    stats.drop(f"link send failed ({reason})", f"sendmmsg: {reason}")
                start += 1
        stats.link_sent += delivered
        queue.clear()


class FarEdge:
    """The LER's receive side on the veth link: recvmmsg, pop, GRO (one poll per batch), one TAP write per packet."""

    def __init__(self, ler: LabelEdgeRouter, sock: socket.socket, link_mtu: int, *, gro: bool) -> None:
        self.ler = ler
        self.sock = sock
        self.frame_size = link_mtu + ETH_HLEN + 64
        self.gro = gro
        self.device = GroDevice(kernel=GRO_KERNEL)
        labels = ler.pop_labels
        self.stack_end = ETH_HLEN + 4 * len(labels)
        # the header bytes up to the end of the stack of the last frame that passed the check in full:
        # a frame that starts with them passes too (what differs from frame to frame lies after them)
        self.usual_header: bytes | None = None
        # the TAP's MACs and the ethertype, by the IP version under the bottom label
        self.tap_prefix = {version: ler.macs_to_tap + ethertype for version, ethertype in _ETHERTYPE_OF_VERSION.items()}
        # the label and bottom-of-stack bits every frame from the peer carries (TC and TTL may be anything)
        self.stack_mask = 0
        self.stack_value = 0
        for depth, label in enumerate(labels, start=1):
            self.stack_mask = (self.stack_mask << 32) | 0xFFFFF100
            bottom = MPLS_LS_S_MASK if depth == len(labels) else 0
            self.stack_value = (self.stack_value << 32) | (label << MPLS_LS_LABEL_SHIFT) | bottom
        # the compiled batch (batchio.recv_pop): each recvmmsg lands in one buffer, popped there, coalesced
        # into another (softgso.gro.coalesce_poll_area) and written from it; no Python object per frame
        self.area: bytearray | None = None
        self.gro_params = compiled_params(self.device, LINK_BATCH) if gro else None
        if batchio.recv_pop is not None and (self.gro_params is not None or not gro):
            self.area = bytearray(LINK_BATCH * self.frame_size)
            self.meta = array("q", bytes(8 * batchio.META * LINK_BATCH))
            self.out = bytearray(LINK_BATCH * self.frame_size)
            self.out_meta = array("q", bytes(8 * batchio.META * LINK_BATCH))
            stack_len = self.stack_end - ETH_HLEN
            self.pop_args = (self.stack_end, self.stack_mask.to_bytes(stack_len, "big"),
                             self.stack_value.to_bytes(stack_len, "big"), self.tap_prefix[4], self.tap_prefix[6])
            self.write_args = (ler.hdr_len, ler.little_endian, SKB_GSO_TCPV4, SKB_GSO_TCPV6,
                               self.device.generation.gso_ecn_bit)

    def receive(self, stats: DirectionStats, budget: int = LINK_BUDGET) -> None:
        """Take what waits on the link (up to ``budget`` batches) to the TAP."""
        if self.area is not None:
            self.receive_compiled(stats, budget)
            return
        fd = self.sock.fileno()
        for _ in range(budget):
            try:
                frames, truncated, calls = batchio.recv_batch(fd, LINK_BATCH, self.frame_size)
            except OSError as exc:
                raise LinkGone(f"receiving from the link: {exc.strerror}") from exc
            stats.syscalls["recvmmsg" if batchio.COMPILED else "recv"] += calls
            for _ in range(truncated):
                stats.drop("longer than the link MTU allows")
            if not frames:
                return
            stats.link_received += len(frames)
            try:
                self.forward(frames, stats)
            except Exception as exc:  # noqa: BLE001 - a bad frame must never stop the datapath: the batch is lost
                stats.drop(f"internal error ({type(exc).__name__})",
                           f"internal error at the far edge, please report: {exc!r}", count=len(frames))
            if len(frames) + truncated < LINK_BATCH:
                return

    def receive_compiled(self, stats: DirectionStats, budget: int) -> None:
        """:meth:`receive` by batchio.recv_pop: the same frames popped, coalesced and written, with the same counts."""
        fd = self.sock.fileno()
        area, meta = self.area, self.meta
        for _ in range(budget):
            try:
                count, refused, truncated, calls = batchio.recv_pop(fd, area, meta, LINK_BATCH, self.frame_size,
                                                                    *self.pop_args)
            except OSError as exc:
                raise LinkGone(f"receiving from the link: {exc.strerror}") from exc
            stats.syscalls["recvmmsg"] += calls
            for _ in range(truncated):
                stats.drop("longer than the link MTU allows")
            if not count:
                return
            stats.link_received += count
            try:
                self.forward_area(count, refused, stats)
            except Exception as exc:  # noqa: BLE001 - a bad frame must never stop the datapath: the batch is lost
                stats.drop(f"internal error ({type(exc).__name__})",
                           f"internal error at the far edge, please report: {exc!r}", count=count)
            if count + truncated < LINK_BATCH:
                return

    def forward_area(self, count: int, refused: int, stats: DirectionStats) -> None:
        """One batch recv_pop left in the area: coalesced in C and written from the GRO's buffer; a batch
        with a frame the pop refused (or one the compiled GRO does not take) goes the way of :meth:`forward`."""
        assert self.area is not None
        if not refused:
            if not self.gro:
                self.write_area(self.area, self.meta, count, stats)
                return
            assert self.gro_params is not None
            packets = coalesce_poll_area(self.area, self.meta, count, self.gro_params, self.out, self.out_meta)
            if packets is not None:
                stats.gro_frames_in += count
                stats.gro_packets_out += packets
                self.write_area(self.out, self.out_meta, packets, stats)
                return
        view, meta, inner = memoryview(self.area), self.meta, []
        for at in range(0, batchio.META * count, batchio.META):
            frame = bytes(view[meta[at] : meta[at] + meta[at + 1]])
            if meta[at + 2]:
                inner.append(frame)  # popped by recv_pop
            else:
                popped = self.pop_slowly(frame, stats)
                if popped is not None:
                    inner.append(popped)
        self.deliver(inner, stats)

    def write_area(self, area: bytearray, meta: array, count: int, stats: DirectionStats) -> None:
        """One writev (virtio_net_hdr built in C, frame) per packet ``meta`` describes; a failed one is a drop."""
        fd = self.ler.tap.fd
        start = 0
        while start < count:
            reached, failure, written_bytes = batchio.write_packets(fd, area, meta, start, count, *self.write_args)
            stats.syscalls["write"] += reached - start + (1 if failure > 0 else 0)
            stats.tx_frames += reached - start
            stats.tx_bytes += written_bytes
            start = reached
            if failure < 0:
                stats.drop("no virtio_net_hdr for a GRO packet", f"GSO type {meta[batchio.META * start + 4]:#x}")
                start += 1
            elif failure:
                reason = errno.errorcode.get(failure, str(failure))
                stats.drop(f"TAP write failed ({reason})", f"write to {self.ler.tap.name}: {reason}")
                start += 1

    def forward(self, frames: Sequence[bytes], stats: DirectionStats) -> None:
        """One batch of link frames: popped, coalesced (with GRO on), written to the TAP."""
        inner = []
        for frame in frames:
            popped = self.pop(frame)
            if popped is None:
                popped = self.pop_slowly(frame, stats)
                if popped is None:
                    continue
            inner.append(popped)
        self.deliver(inner, stats)

    def deliver(self, inner: list[bytes], stats: DirectionStats) -> None:
        """Popped frames of one batch: coalesced (with GRO on), written to the TAP."""
        ler = self.ler
        writes: list[bytes]
        if self.gro:
            packets = coalesce_poll(inner, self.device)
            stats.gro_frames_in += len(inner)
            stats.gro_packets_out += len(packets)
            writes = []
            for packet in packets:
                try:
                    writes.append(self.vnet_header(packet) + packet.data)
                except (SoftGSOError, KeyError, IndexError) as exc:
                    stats.drop("no virtio_net_hdr for a GRO packet", f"{type(exc).__name__}: {exc}")
        else:
            zero = ler.zero_hdr
            writes = [zero + frame for frame in inner]
        self.write(writes, stats)

    def pop(self, frame: bytes) -> bytes | None:
        """The frame for the TAP (labels popped, MACs rewritten) when it has exactly the expected stack over IP."""
        end = self.stack_end
        if len(frame) <= end:
            return None
        usual = self.usual_header
        if usual is None or not frame.startswith(usual):
            if (frame[12:14] != _MPLS_ETHERTYPE
                    or int.from_bytes(frame[ETH_HLEN:end], "big") & self.stack_mask != self.stack_value):
                return None
            # the MACs, TC and TTL bits are not checked: whatever the peer sends, the next frames likely share
            self.usual_header = frame[:end]
        prefix = self.tap_prefix.get(frame[end] >> 4)
        if prefix is None:
            return None
        return prefix + memoryview(frame)[end:]

    def pop_slowly(self, frame: bytes, stats: DirectionStats) -> bytes | None:
        """The LER's own pop (softgso.datapath.ler), which counts why a frame goes no further."""
        pkt = MplsLink.deliver(Packet(bytearray(frame), protocol=int.from_bytes(frame[12:14], "big"),
                                      network_header=ETH_HLEN, mac_len=ETH_HLEN))
        if not self.ler.pop_for_tap(pkt, stats):
            return None
        return bytes(pkt.data)

    def vnet_header(self, packet: GroPacket) -> bytes:
        """The virtio_net_hdr of a packet GRO hands up (virtio_net_hdr_from_skb of the skb it stands for)."""
        ler = self.ler
        if packet.ip_summed == "none" and packet.segs == 1:
            return ler.zero_hdr
        skb = Packet.from_ethernet(packet.data)
        if packet.ip_summed == "unnecessary":
            skb.ip_summed = IpSummed.UNNECESSARY
        elif packet.ip_summed == "partial":
            skb.ip_summed = IpSummed.PARTIAL
            skb.csum_start = transport_offset(packet.data)
            skb.csum_offset = UDP_CSUM_OFFSET if packet.family == "udp_l4" else TCP_CSUM_OFFSET
        if packet.segs > 1:
            skb.gso_size = packet.gso_size
            skb.gso_segs = packet.segs
            skb.gso_type = _GSO_TYPE_OF_FAMILY[packet.family]
            if "ecn" in packet.gso_flags:
                skb.gso_type |= GsoType.TCP_ECN
        header = virtio_net_hdr_from_skb(skb)
        if header.hdr_len > 0xFFFF:
            # hdr_len is skb_headlen: for the kernel's GRO packet, built of page frags, the headers only; an
            # aggregate up to 64 KB of IP plus the Ethernet header can be longer than the 16-bit field
            header = header.replace(hdr_len=skb.csum_start + (packet.data[skb.csum_start + 12] >> 4) * 4)
        return header.pack(little_endian=ler.little_endian) + ler.hdr_pad

    def write(self, writes: Sequence[bytes], stats: DirectionStats) -> None:
        """One write per packet to the TAP; a failed one is counted as a drop and the rest still go."""
        fd = self.ler.tap.fd
        hdr_len = self.ler.hdr_len
        start = 0
        while start < len(writes):
            written, failure = batchio.write_each(fd, writes[start:] if start else writes)
            stats.syscalls["write"] += written + (1 if failure else 0)
            for frame in writes[start : start + written]:
                stats.tx_frames += 1
                stats.tx_bytes += len(frame) - hdr_len
            start += written
            if failure:
                reason = errno.errorcode.get(failure, str(failure))
                stats.drop(f"TAP write failed ({reason})", f"write to {self.ler.tap.name}: {reason}")
                start += 1


def transport_offset(frame: bytes) -> int:
    """Where the L4 header of an Ethernet + IPv4/IPv6 frame starts (IPv6 extension headers walked)."""
    if frame[ETH_HLEN] >> 4 == 4:
        return ETH_HLEN + (frame[ETH_HLEN] & 0x0F) * 4
    offset, next_header = ETH_HLEN + 40, frame[ETH_HLEN + 6]
    while next_header in _IPV6_EXTENSIONS and offset + 2 <= len(frame):
        next_header, offset = frame[offset], offset + (frame[offset + 1] + 1) * 8
    return offset
