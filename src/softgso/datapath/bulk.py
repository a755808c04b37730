"""The LER's bulk path for super-packets from the TAP: segmentation plans learnt from its own scalar path.

Strategy (softgso.fastpath's, applied to the hop): the scalar treatment of a TAP read (the LER's
virtio_net_hdr_to_skb, link MACs and label push, then MplsLink.frames_for: transmit over the link
profile) stays the reference and decides everything. For each virtio header (its exact bytes) and
frame shape (fastpath.shape_key: length and header bytes but the per-packet fields), the first
super-packet is handed to that treatment as the *oracle* of a
:class:`softgso.cstream.CompiledSegmenter` (a numpy :class:`softgso.fastpath.FastSegmenter` where
the C module is not built): the shape's plan is kept only if the bulk computation reproduces the
oracle's link frames byte for byte, and the checksum state each frame crosses the link with is
taken from the oracle's frames too. Every later super-packet of the shape is segmented in one
call; its frames go through the same :meth:`MplsLink.send` as the scalar path's (counted,
captured, delivered to the peer LER one by one). Frames with no plan (not GSO, refused, whole on a
link that takes GSO) keep the scalar path.

Plans are per LER and link (the MACs, labels and link profile are baked into the templates); the
number of shapes remembered is bounded, then forgotten and learnt again.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..cstream import CompiledSegmenter, available
from ..errors import SoftGSOError, UsageError
from ..fastpath import FastSegmenter, SegmentPlan
from ..features import IpSummed
from ..io.pcap import RECORD_HEADER_LEN
from ..job import Outcome, PacketResult, SegmentOptions
from ..packet import Packet
from ..virtio import VirtioFlags, VirtioNetHdr
from .ler import LinkDrop

if TYPE_CHECKING:
    from .ler import DirectionStats, LabelEdgeRouter, MplsLink

ENGINES = ("auto", "compiled", "numpy", "scalar")
# shapes (and virtio headers) remembered per LER before all are forgotten: a long run with many
# flows, or a TAP peer writing random headers, must not grow the tables without end
MAX_SHAPES = 4096
# one job for softgso._segment.segment: the record at offset 0 of the buffer, output at 0, packet 0
_ONE_JOB = array("q", (0, 0, 0))
_NEEDS_CSUM = int(VirtioFlags.NEEDS_CSUM)


def check_engine(engine: str) -> None:
    """Refuse (UsageError) an engine that is unknown or cannot run here."""
    if engine not in ENGINES:
        raise UsageError(f"unknown datapath engine {engine!r}: use one of {', '.join(ENGINES)}")
    if engine == "compiled" and not available():
        raise UsageError("engine compiled: softgso._segment is not built here (no C compiler at install, "
                         "or SOFTGSO_NO_C is set); use auto, numpy or scalar")


def compiled_engine(engine: str) -> bool:
    """Whether a bulk ``engine`` segments with softgso._segment (else with numpy)."""
    check_engine(engine)
    return engine == "compiled" or (engine == "auto" and available())


class ShapePlan:
    """A learnt shape: its plan and the checksum state (ip_summed, csum_start, csum_offset) of each link frame."""

    __slots__ = ("plan", "checksums", "full_len", "last_len")

    def __init__(self, plan: SegmentPlan, checksums: tuple[tuple[IpSummed, int, int], ...]) -> None:
        self.plan = plan
        self.checksums = checksums
        self.full_len, self.last_len = plan.segment_lengths()


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
        # the vnet header ends a 16-byte pcap record header in front of the frame (softgso._segment reads records)
        self._record_pad = bytes(RECORD_HEADER_LEN - ler.hdr_len)
        self._codes = bytearray(1)
        self._headers: dict[bytes, HeaderPlans] = {}
        self._known = 0
        self._taught: PacketResult | None = None
        # how many super-packets each path took (for tests and curiosity; not part of the counters)
        self.planned = 0
        self.learnt = 0

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
            outcome = Outcome.WHOLE if gso_size else Outcome.PASSED
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
        frames = self._frames(table, shape, buf, frame)
        ler = self.ler
        assert ler.peer is not None
        # as receive_from_tap and carry count a super-packet the scalar path segments
        stats.rx_packets += 1
        stats.rx_bytes += len(frame)
        stats.rx_gso += 1
        self.planned += 1
        self.link.send(frames, ler.peer, stats, gso=True)
        return True

    def _frames(self, table: HeaderPlans, shape: ShapePlan, buf: bytes, frame: memoryview) -> list[Packet]:
        """The link frames of one super-packet of the shape, with the checksum state the oracle's had."""
        plan = shape.plan
        pieces: list[bytearray]
        if isinstance(table.segmenter, CompiledSegmenter):
            out = bytearray(plan.out_len(RECORD_HEADER_LEN))
            table.segmenter.segment_into(plan, self._record_pad + buf, _ONE_JOB, False, out, self._codes)
            pieces = []
            at = RECORD_HEADER_LEN
            full_len = shape.full_len
            for _ in range(plan.segments - 1):
                pieces.append(out[at : at + full_len])
                at += RECORD_HEADER_LEN + full_len
            pieces.append(out[at : at + shape.last_len])
        else:
            pieces = [bytearray(piece) for piece in table.segmenter.segment_frames([bytes(frame)], plan)[0]]
        frames = []
        for data, (ip_summed, csum_start, csum_offset) in zip(pieces, shape.checksums, strict=True):
            frames.append(Packet(data, ip_summed=ip_summed, csum_start=csum_start, csum_offset=csum_offset))
        return frames
