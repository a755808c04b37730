"""The LER's bulk path for super-packets from the TAP: segmentation plans learnt from its own scalar path.

Strategy (softgso.bulk.fastpath's, applied to the hop): the scalar treatment of a TAP read (the LER's
virtio_net_hdr_to_skb, link MACs and label push, then MplsLink.frames_for: transmit over the link
profile) stays the reference and decides everything. For each virtio header (its exact bytes) and
frame shape (fastpath.shape_key: length and header bytes but the per-packet fields), the first
super-packet is handed to that treatment as the *oracle* of a
:class:`softgso.bulk.compiled_primitive.CompiledSegmenter` (a numpy :class:`softgso.bulk.fastpath.FastSegmenter` where
the C module is not built): the shape's plan is kept only if the bulk computation reproduces the
oracle's link frames byte for byte, and the checksum state each frame crosses the link with is
taken from the oracle's frames too. Every later super-packet of the shape is segmented in one
call; its frames go through the same :meth:`MplsLink.send` as the scalar path's (counted,
captured, delivered to the peer LER one by one). Frames with no plan (not GSO, refused, whole on a
link that takes GSO) keep the scalar path.

Frames that are not GSO (the ACKs of every transfer, small data) and leave the LER as exactly one
link frame get a *whole-frame plan* the same way (:class:`OneFramePlan`): per virtio header and
shape (:func:`one_frame_key`), the link frame is the oracle's L2 + label prefix followed by the
TAP frame from its network header on, its L4 checksum completed where the oracle's was. A plan is
kept only if it gives the oracle's frame and checksum state byte for byte for the learning frame
AND for a perturbed copy of it (every byte the key leaves out changed) that the oracle also sees.
The peer's side has the same (:class:`BulkEgress`): a link frame that is not GSO becomes one TAP
write (the oracle's vnet header, the TAP's MACs, the frame from its IP header on) instead of the
pop and the TAP transmit, checked the same way against the LER's scalar receive.

Plans are per LER and link (the MACs, labels and link profile are baked into the templates); the
number of shapes remembered is bounded, then forgotten and learnt again. The reference router
(softgso.datapath.ler) knows nothing of this module: its caller (softgso.datapath.run) gives each
connected LER its bulk paths with :func:`accelerate`.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any

from ..bulk.compiled_primitive import CompiledSegmenter, available
from ..bulk.fastpath import FastSegmenter, SegmentPlan
from ..constants import ETH_HLEN, ETH_P_IP, ETH_P_IPV6, IPV6_HLEN
from ..errors import SoftGSOError, UsageError
from ..features import IpSummed
from ..job import Outcome, PacketResult, SegmentOptions
from ..packet import Packet
from ..virtio import VirtioFlags, VirtioNetHdr
from ..xmit import skb_checksum_help
from .ler import DirectionStats, LabelEdgeRouter, LinkDrop, MplsLink
from .link import VethLink

ENGINES = ("auto", "compiled", "numpy", "scalar")
# shapes (and virtio headers) remembered per LER before all are forgotten: a long run with many
# flows, or a TAP peer writing random headers, must not grow the tables without end
MAX_SHAPES = 4096
_NEEDS_CSUM = int(VirtioFlags.NEEDS_CSUM)
_ETHERTYPE_IPV4 = ETH_P_IP.to_bytes(2, "big")
_ETHERTYPE_IPV6 = ETH_P_IPV6.to_bytes(2, "big")
# what a perturbed copy XORs into every byte a whole-frame key leaves out
_PERTURB = 0x5A


def one_frame_key(buf: bytes, hdr_len: int) -> tuple[bytes, int] | None:
    """The whole-frame shape of a TAP read and where its per-packet bytes start; None: no plan for it.

    The key is the virtio header, the Ethernet header, the IP header but the IPv4 ID and header
    checksum, the first 4 bytes past it (the ports) and the length. The rest (seq, ack, flags,
    window, L4 checksum, options, payload) a plan copies or sums and never decides on; the
    perturbed copy a plan must also reproduce proves it.
    """
    net = hdr_len + ETH_HLEN
    ethertype = buf[net - 2 : net]
    if ethertype == _ETHERTYPE_IPV4:
        if len(buf) < net + 20:
            return None
        end = net + (buf[net] & 0x0F) * 4 + 4
        if len(buf) < end:
            return None
        key = buf[: net + 4] + buf[net + 6 : net + 10] + buf[net + 12 : end]
    elif ethertype == _ETHERTYPE_IPV6:
        end = net + IPV6_HLEN + 4
        if len(buf) < end:
            return None
        key = buf[:end]
    else:
        return None
    return key + len(buf).to_bytes(4, "big"), end


def perturbed(buf: bytes, hdr_len: int, end: int) -> bytes:
    """A copy of a TAP read with every byte its whole-frame key leaves out changed."""
    copy = bytearray(buf)
    net = hdr_len + ETH_HLEN
    skipped = [*range(end, len(copy))]
    if buf[net - 2 : net] == _ETHERTYPE_IPV4:
        skipped += [*range(net + 4, net + 6), *range(net + 10, net + 12)]
    for at in skipped:
        copy[at] ^= _PERTURB
    return bytes(copy)


class OneFramePlan:
    """How one TAP read becomes its one link frame: a prefix, the read from ``copy_from`` on, a checksum."""

    __slots__ = ("prefix", "copy_from", "checksum_start", "check_at", "ip_summed", "csum_start", "csum_offset")

    def __init__(self, prefix: bytes, copy_from: int, checksum: tuple[int, int] | None,
                 state: tuple[IpSummed, int, int]) -> None:
        self.prefix = prefix
        self.copy_from = copy_from
        # where the L4 checksum is summed from and stored (link frame offsets); -1: left as it is
        self.checksum_start, self.check_at = checksum if checksum is not None else (-1, -1)
        self.ip_summed, self.csum_start, self.csum_offset = state

    def frame(self, buf: bytes) -> Packet:
        """The link frame of one TAP read of the shape, with the checksum state the oracle's had."""
        data = bytearray(self.prefix)
        data += memoryview(buf)[self.copy_from :]
        frame = Packet(data, ip_summed=IpSummed.PARTIAL, csum_start=self.checksum_start,
                       csum_offset=self.check_at - self.checksum_start)
        if self.checksum_start >= 0:
            skb_checksum_help(frame)  # the checksum the scalar path completed, by the same helper
        # then the checksum state the scalar path's frame had
        frame.ip_summed, frame.csum_start, frame.csum_offset = self.ip_summed, self.csum_start, self.csum_offset
        return frame


def check_engine(engine: str) -> None:
    """Refuse (UsageError) an engine that is unknown or cannot run here."""
    if engine not in ENGINES:
        raise UsageError(f"unknown datapath engine {engine!r}: use one of {', '.join(ENGINES)}")
    if engine == "compiled" and not available():
        raise UsageError("engine compiled: softgso.bulk._segment is not built here (no C compiler at install, "
                         "or SOFTGSO_NO_C is set); use auto, numpy or scalar")


def compiled_engine(engine: str) -> bool:
    """Whether a bulk ``engine`` segments with softgso.bulk._segment (else with numpy)."""
    check_engine(engine)
    return engine == "compiled" or (engine == "auto" and available())


class ShapePlan:
    """A learnt shape: its plan and the checksum state (ip_summed, csum_start, csum_offset) of each link frame."""

    __slots__ = ("plan", "checksums", "complete")

    def __init__(self, plan: SegmentPlan, checksums: tuple[tuple[IpSummed, int, int], ...]) -> None:
        self.plan = plan
        self.checksums = checksums
        # no link frame leaves with a checksum pending: a kernel link can take the bytes alone
        self.complete = all(state[0] != IpSummed.PARTIAL for state in checksums)


class HeaderPlans:
    """The plans of one virtio header (its bytes): a segmenter whose oracle is the LER's scalar path with it."""

    __slots__ = ("vnet_hdr", "segmenter", "fast", "shapes")

    def __init__(self, vnet_hdr: VirtioNetHdr, segmenter: CompiledSegmenter | FastSegmenter) -> None:
        self.vnet_hdr = vnet_hdr
        self.segmenter = segmenter
        self.fast: FastSegmenter = segmenter.fast if isinstance(segmenter, CompiledSegmenter) else segmenter
        self.shapes: dict[bytes, ShapePlan | None] = {}


class BulkIngress:
    """One LER's bulk path towards the link (see the module docstring)."""

    def __init__(self, ler: LabelEdgeRouter, link: MplsLink, *, compiled: bool) -> None:
        self.ler = ler
        self.link = link
        self.compiled = compiled
        self.hdr_len = ler.hdr_len
        self._headers: dict[bytes, HeaderPlans] = {}
        self._known = 0
        self._taught: PacketResult | None = None
        self._one_frame: dict[bytes, OneFramePlan | None] = {}
        # the segmenter's input checksum state codes (a plan the datapath learns classifies nothing)
        self._codes = bytearray(1)
        # how many super-packets each path took (for tests and curiosity; not part of the counters)
        self.planned = 0
        self.learnt = 0
        # the same for the frames that are not GSO (whole-frame plans)
        self.one_frame_planned = 0
        self.one_frame_learnt = 0

    # -- the oracle ------------------------------------------------------------------------------

    def link_result(self, buf: bytes) -> PacketResult:
        """The LER's scalar treatment of one TAP read up to the link frames: nothing counted, nothing sent."""
        ler = self.ler
        frame = bytes(buf[self.hdr_len :])
        try:
            pkt = ler.skb_from_tap(buf)
            gso_size = pkt.gso_size
            ler.label_for_link(pkt)
        except SoftGSOError as exc:
            return PacketResult(Outcome.REFUSED, [frame], exc)
        frames = self.link.frames_for(pkt)
        if isinstance(frames, LinkDrop):
            return PacketResult(Outcome.REFUSED, [frame])
        if gso_size and (len(frames) > 1 or frames[0] is not pkt):
            outcome = Outcome.SEGMENTED
        else:
            outcome = Outcome.WHOLE if gso_size else Outcome.CHANGED
        return PacketResult(outcome, [bytes(f.data) for f in frames], gso_size=gso_size, packets=list(frames))

    def _oracle(self, raw_hdr: bytes) -> Callable[[bytes], PacketResult]:
        def oracle(frame: bytes) -> PacketResult:
            result = self.link_result(raw_hdr + frame)
            if self._taught is None:
                # the first call of a plan_for is the template's (later ones probe the seed)
                self._taught = result
            return result

        return oracle

    # -- learning --------------------------------------------------------------------------------

    def _header(self, raw: bytes) -> HeaderPlans:
        """The plans of a virtio header: a fresh table on first sight."""
        self._remember()
        vnet_hdr = VirtioNetHdr.unpack(raw, little_endian=self.ler.little_endian)
        # vnet_hdr set: no input checksum classification, and the seed question is put to the oracle
        options = SegmentOptions(device=self.link.profile, vnet_hdr=vnet_hdr, kernel="mainline")
        oracle = self._oracle(raw)
        segmenter = CompiledSegmenter(options, oracle) if self.compiled else FastSegmenter(options, oracle)
        table = self._headers[raw] = HeaderPlans(vnet_hdr, segmenter)
        return table

    def _remember(self) -> None:
        """Count one more table entry; past MAX_SHAPES forget everything (it is learnt again as it comes)."""
        self._known += 1
        if self._known > MAX_SHAPES:
            self._headers.clear()
            self._one_frame.clear()
            self._known = 1

    def _learn(self, table: HeaderPlans, frame: memoryview, key: bytes, layout: Any) -> ShapePlan | None:
        """The plan of a new shape, taught by the scalar path and checked against it; None: scalar."""
        self._remember()
        vnet_hdr = table.vnet_hdr
        if vnet_hdr.flags & _NEEDS_CSUM and vnet_hdr.csum_start != layout.transport:
            # virtio_net_hdr_to_skb takes the L4 header where csum_start says, the plan where the
            # frame's headers put it: only where both agree is it sure to read no per-packet field
            # as a header (without NEEDS_CSUM the flow dissector reads the same header bytes as the plan)
            return None
        self._taught = None
        try:
            plan = table.fast.plan_for(frame, key, layout)
        except Exception:  # noqa: BLE001 - a surprise in the scalar path: it meets it again, and counts it
            return None
        taught, self._taught = self._taught, None
        if plan is None or taught is None or len(taught.packets) != plan.segments:
            return None
        checksums = []
        for packet in taught.packets:
            if packet.gso_size:
                return None  # a frame that is still GSO: not what a plan describes
            checksums.append((packet.ip_summed, packet.csum_start, packet.csum_offset))
        self.learnt += 1
        return ShapePlan(plan, tuple(checksums))

    # -- the bulk path ---------------------------------------------------------------------------

    def forward(self, buf: bytes, stats: DirectionStats) -> bool:
        """Segment a GSO super-packet by its shape's plan and send its frames; False: the scalar path's."""
        hdr_len = self.hdr_len
        raw = buf[:hdr_len]
        table = self._headers.get(raw) or self._header(raw)
        frame = memoryview(buf)[hdr_len:]
        found = table.fast.key_of(frame)
        if found is None:
            return False
        key, layout = found
        try:
            shape = table.shapes[key]
        except KeyError:
            shape = table.shapes[key] = self._learn(table, frame, key, layout)
        if shape is None:
            return False
        ler = self.ler
        assert ler.peer is not None
        # as receive_from_tap and carry count a super-packet the scalar path segments
        stats.rx_packets += 1
        stats.rx_bytes += len(frame)
        stats.rx_gso += 1
        self.planned += 1
        link = self.link
        if shape.complete and isinstance(link, VethLink):
            # a kernel link carries bytes only, and these need nothing more: no Packet per segment
            segmenter = table.segmenter
            if isinstance(segmenter, CompiledSegmenter) and link.takes_segments(ler.peer):
                # and no bytes per segment either: segmented straight into the link's queue
                plan = shape.plan

                def segment_into(queue: Any, at: int) -> None:
                    segmenter.segment_into(plan, frame, array("q", (0, at, 0)), queue, self._codes)

                link.send_segments(segment_into, plan.segments, plan.segment_lengths(), ler.peer, stats)
            else:
                link.send_data(self._pieces(table, shape.plan, frame), ler.peer, stats, gso=True)
        else:
            self.link.send(self._frames(table, shape, buf, frame), ler.peer, stats, gso=True)
        return True

    def forward_one(self, buf: bytes, stats: DirectionStats) -> bool:
        """Send the one link frame of a read that is not GSO by its shape's plan; False: the scalar path's."""
        found = one_frame_key(buf, self.hdr_len)
        if found is None:
            return False
        key, end = found
        try:
            plan = self._one_frame[key]
        except KeyError:
            plan = self._one_frame[key] = self._learn_one(buf, key, end)
        if plan is None:
            return False
        ler = self.ler
        assert ler.peer is not None
        # as receive_from_tap and carry count a frame that is not GSO
        stats.rx_packets += 1
        stats.rx_bytes += len(buf) - self.hdr_len
        self.one_frame_planned += 1
        self.link.send((plan.frame(buf),), ler.peer, stats, gso=False)
        return True

    def _learn_one(self, buf: bytes, key: bytes, end: int) -> OneFramePlan | None:
        """The whole-frame plan of a new shape, checked against the oracle on the read and a perturbed copy."""
        self._remember()
        try:
            plan = self._one_frame_plan(buf)
            if plan is None or not self._reproduces(plan, buf):
                return None
            other = perturbed(buf, self.hdr_len, end)
            found = one_frame_key(other, self.hdr_len)
            if found is None or found[0] != key or not self._reproduces(plan, other):
                return None
        except Exception:  # noqa: BLE001 - a surprise in the scalar path: it meets it again, and counts it
            return None
        self.one_frame_learnt += 1
        return plan

    def _one_frame_plan(self, buf: bytes) -> OneFramePlan | None:
        """The plan the oracle's treatment of one read suggests (not checked yet); None: not one plain frame."""
        result = self.link_result(buf)
        if result.outcome != Outcome.CHANGED or len(result.packets) != 1:
            return None
        packet = result.packets[0]
        out = result.frames[0]
        copy_from = self.hdr_len + ETH_HLEN
        prefix_len = len(out) - (len(buf) - copy_from)
        if packet.gso_size or prefix_len < ETH_HLEN:
            return None
        checksum = None
        if buf[0] & _NEEDS_CSUM and packet.ip_summed != IpSummed.PARTIAL:
            # the link completed the checksum virtio_net_hdr_to_skb left pending, where csum_start said
            vnet_hdr = VirtioNetHdr.unpack(buf[: self.hdr_len], little_endian=self.ler.little_endian)
            start = vnet_hdr.csum_start + prefix_len - ETH_HLEN
            checksum = (start, start + vnet_hdr.csum_offset)
        return OneFramePlan(out[:prefix_len], copy_from, checksum,
                            (packet.ip_summed, packet.csum_start, packet.csum_offset))

    def _reproduces(self, plan: OneFramePlan, buf: bytes) -> bool:
        """The plan gives the oracle's one link frame for ``buf``: its bytes and its checksum state."""
        result = self.link_result(buf)
        if result.outcome != Outcome.CHANGED or len(result.packets) != 1:
            return False
        ours = plan.frame(buf)
        theirs = result.packets[0]
        return (bytes(ours.data) == result.frames[0] and not theirs.gso_size
                and (ours.ip_summed, ours.csum_start, ours.csum_offset)
                == (theirs.ip_summed, theirs.csum_start, theirs.csum_offset))

    @staticmethod
    def _pieces(table: HeaderPlans, plan: SegmentPlan, frame: memoryview) -> list[bytearray]:
        """The bytes of the link frames of one super-packet by its shape's plan."""
        if isinstance(table.segmenter, CompiledSegmenter):
            return table.segmenter.segment_packet(frame, plan)
        return [bytearray(piece) for piece in table.segmenter.segment_frames([bytes(frame)], plan)[0]]

    def _frames(self, table: HeaderPlans, shape: ShapePlan, buf: bytes, frame: memoryview) -> list[Packet]:
        """The link frames of one super-packet of the shape, with the checksum state the oracle's had."""
        pieces = self._pieces(table, shape.plan, frame)
        frames = []
        for data, (ip_summed, csum_start, csum_offset) in zip(pieces, shape.checksums, strict=True):
            frames.append(Packet(data, ip_summed=ip_summed, csum_start=csum_start, csum_offset=csum_offset))
        return frames


class EgressPlan:
    """How one frame from the link becomes its one TAP write: a vnet header, an L2 prefix, the frame from ``copy_from`` on."""

    __slots__ = ("hdr", "prefix", "copy_from")

    def __init__(self, hdr: bytes, prefix: bytes, copy_from: int) -> None:
        self.hdr = hdr
        self.prefix = prefix
        self.copy_from = copy_from

    def write(self, data: bytearray) -> tuple[bytes, bytes, memoryview]:
        """The pieces of the TAP write for a frame of the shape (vnet header, L2 header, the rest)."""
        return self.hdr, self.prefix, memoryview(data)[self.copy_from :]


class BulkEgress:
    """One LER's bulk path from the link to its TAP: whole-frame plans for the frames that are not GSO.

    The reference is the LER's own scalar receive (MplsLink.deliver, pop_for_tap, tap_writes); a
    frame's shape is its checksum state as it crosses the link, the bytes up to the first one under
    the label stack the LER pops (its IP version) and, where a checksum state travels, its length.
    A plan is kept only if it gives the reference's one TAP write (vnet header and frame) for the
    learning frame and for a copy with every other byte changed.
    """

    def __init__(self, ler: LabelEdgeRouter) -> None:
        self.ler = ler
        # the byte after the label stack the LER expects (the IP version nibble) ends the key
        self.key_end = ETH_HLEN + 4 * len(ler.pop_labels) + 1
        self._plans: dict[bytes, EgressPlan | None] = {}
        # how many frames took a plan, how many plans were learnt (for tests; not part of the counters)
        self.planned = 0
        self.learnt = 0

    def key_of(self, frame: Packet) -> bytes | None:
        """The shape of a frame from the link, as the peer LER delivers it; None: not for a plan."""
        if frame.gso_size:
            return None
        data = frame.data
        end = self.key_end
        if len(data) < end:
            return None
        ip_summed = frame.ip_summed
        if ip_summed == IpSummed.PARTIAL or ip_summed == IpSummed.UNNECESSARY:
            # as MplsLink.deliver: this checksum state travels with the frame, and the TAP is told it
            state = (int(ip_summed), frame.csum_start, frame.csum_offset, len(data))
            return b"".join(value.to_bytes(4, "big") for value in state) + data[12:end]
        return b"\0" + data[12:end]

    def forward(self, frame: Packet, stats: DirectionStats) -> bool:
        """Write a frame from the link to the TAP by its shape's plan; False: the scalar receive's."""
        key = self.key_of(frame)
        if key is None:
            return False
        try:
            plan = self._plans[key]
        except KeyError:
            if len(self._plans) >= MAX_SHAPES:
                self._plans.clear()
            plan = self._plans[key] = self._learn(frame, key)
        if plan is None:
            return False
        data = frame.data
        self.planned += 1
        self.ler.write_to_tap(plan.write(data), len(plan.prefix) + len(data) - plan.copy_from, stats)
        return True

    def tap_write(self, frame: Packet) -> tuple[bytes, bytes] | None:
        """The LER's scalar receive of a copy of one link frame: its one TAP write, else None; nothing counted or written."""
        scratch = DirectionStats("oracle")
        pkt = MplsLink.deliver(frame.clone())
        if not self.ler.pop_for_tap(pkt, scratch):
            return None
        writes = self.ler.tap_writes(pkt, scratch)
        if scratch.drops or len(writes) != 1:
            return None
        hdr, data = writes[0]
        return bytes(hdr), bytes(data)

    def _learn(self, frame: Packet, key: bytes) -> EgressPlan | None:
        """The plan of a new shape, checked against the scalar receive on the frame and a perturbed copy."""
        try:
            taught = self.tap_write(frame)
            if taught is None:
                return None
            hdr, out = taught
            copy_from = self.key_end - 1
            prefix_len = len(out) - (len(frame.data) - copy_from)
            if prefix_len < 0:
                return None
            plan = EgressPlan(hdr, out[:prefix_len], copy_from)
            other = frame.clone()
            for at in (*range(12), *range(self.key_end, len(other.data))):
                other.data[at] ^= _PERTURB
            if self.key_of(other) != key:
                return None
            for probe, expected in ((frame, taught), (other, self.tap_write(other))):
                ours = plan.write(probe.data)
                if expected is None or (ours[0], ours[1] + bytes(ours[2])) != expected:
                    return None
        except Exception:  # noqa: BLE001 - a surprise in the scalar path: it meets it again, and counts it
            return None
        self.learnt += 1
        return plan


def accelerate(ler: LabelEdgeRouter, engine: str) -> None:
    """Give a connected LER the bulk paths of ``engine`` both ways (none for "scalar"), built afresh:
    plans are per link, so a LER connected again is accelerated again."""
    if engine == "scalar" or ler.link is None:
        ler.bulk = ler.bulk_egress = None
        return
    ler.bulk = BulkIngress(ler, ler.link, compiled=compiled_engine(engine))
    ler.bulk_egress = BulkEgress(ler)
