"""The coalesce run, sans-I/O: frames in, in polls of ``batch`` frames, each poll ending in a full flush
(napi_complete_done with no gro_flush_timeout), and the packets GRO hands to the stack out, in order."""

from __future__ import annotations

import importlib
import os
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..constants import ETH_P_IP, ETH_P_IPV6, GRO_LEGACY_MAX_SIZE
from .dev import (
    NAPI_POLL_WEIGHT,
    SKB_GSO_TCPV4,
    SKB_GSO_TCPV6,
    GroDevice,
    GroNode,
    GroPacket,
    gro_offload,
    gso_names,
    inet6_offloads,
    inet_offloads,
    packet_offloads,
)


def _load_compiled() -> Any:
    """softgso.gro._coalesce, the compiled GRO of the common shape (built where a C compiler is), or None
    where it is not built or SOFTGSO_NO_C is set (as softgso.checksum loads its extension)."""
    if os.environ.get("SOFTGSO_NO_C"):
        return None
    try:
        return importlib.import_module("softgso.gro._coalesce")
    except ImportError:
        return None


compiled_gro = _load_compiled()

# why a packet left the compiled GRO, by its code: the scalar engine's words (_coalesce.c's enum reason)
COMPILED_REASONS = (
    "poll end", "flow table full (8 held in the bucket)", "TCP window differs", "TCP header length differs",
    "TCP flags differ", "TCP ACK number differs", "TCP options differ", "IPv4 TTL differs", "IPv4 TOS/ECN differs",
    "IPv4 DF differs", "IPv4 ID neither fixed nor incrementing", "IPv6 traffic class differs",
    "IPv6 hop limit differs", "segment larger than the first", "no payload", "TCP sequence gap",
    "size limit (gro_max_size)", "last segment (short)", "short", "TCP CWR",
    # passed up at once
    "shorter than an Ethernet header", "truncated IPv4 header", "IPv4 options", "not IPv4 (version)", "IPv4 fragment",
    "bad IPv4 header checksum", "IPv4 total length is not the frame's", "IPv4 reserved flag", "truncated IPv6 header",
    "IPv6 payload length is not the frame's", "IPv6 fragment header", "truncated UDP header", "bad UDP checksum",
    "UDP (no GRO: UDP GRO forwarding is off)", "truncated VLAN tag", "bad TCP checksum",
    # naming a number: the TCP flags that ended a held packet (URG/PSH/RST/SYN/FIN), or a passed frame's
    "last segment ({})", "{}", "no GRO for ethertype {:#06x}", "no GRO for IP protocol {}",
    "no GRO for IPv6 next header {}", "no GRO for ethertype {:#06x} inside the VLAN tag",
)
FIRST_NUMBERED_REASON = COMPILED_REASONS.index("last segment ({})")
HELD_NUMBERED_REASONS = frozenset({FIRST_NUMBERED_REASON})  # the others are passes
_FLAG_REASONS = (FIRST_NUMBERED_REASON, FIRST_NUMBERED_REASON + 1)
_FLAG_NAMES = ((0x20, "URG"), (0x08, "PSH"), (0x04, "RST"), (0x02, "SYN"), (0x01, "FIN"))


def compiled_reason(code: int, number: int) -> str:
    """The scalar engine's words for a compiled GRO's reason code (and the number it names: TCP flags, an
    ethertype, an IP protocol)."""
    if code in _FLAG_REASONS:
        return COMPILED_REASONS[code].format("/".join(name for bit, name in _FLAG_NAMES if number & bit))
    return COMPILED_REASONS[code].format(number) if code >= FIRST_NUMBERED_REASON else COMPILED_REASONS[code]


_DEFAULT_FLOW_HASH = GroDevice.__dataclass_fields__["flow_hash"].default


@dataclass(slots=True)
class CoalesceSummary:
    """What a coalesce run did. ``frames_in`` = the sum of ``segs`` over every packet out."""

    frames_in: int = 0
    packets_out: int = 0
    coalesced: int = 0  # packets out made of 2 or more frames
    frames_merged: int = 0  # frames inside those packets
    polls: int = 0
    flushes: Counter[str] = field(default_factory=Counter)  # why a held packet left GRO
    passed: Counter[str] = field(default_factory=Counter)  # why a frame was passed up without being held
    first_passed: dict[str, int] = field(default_factory=dict)  # reason -> first frame index (from 0)

    def count(self, packet: GroPacket, index: int | None = None) -> None:
        """Account for one packet out."""
        self.packets_out += 1
        if packet.segs > 1:
            self.coalesced += 1
            self.frames_merged += packet.segs
        if packet.held:
            self.flushes[packet.reason] += 1
        else:
            self.passed[packet.reason] += 1
            if index is not None:
                self.first_passed.setdefault(packet.reason, index)

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values."""
        return {
            "frames_in": self.frames_in, "packets_out": self.packets_out, "coalesced": self.coalesced,
            "frames_merged": self.frames_merged, "polls": self.polls,
            "flushes": dict(sorted(self.flushes.items())), "passed": dict(sorted(self.passed.items())),
        }


def coalesce_frames(frames: Iterable[tuple[bytes | None, Any]], device: GroDevice | None = None,
                    batch: int = NAPI_POLL_WEIGHT, summary: CoalesceSummary | None = None,
                    unreadable: dict[int, str] | None = None) -> Iterator[GroPacket]:
    """GRO over ``frames`` (each ``(ethernet_frame, tag)``), ``batch`` frames a poll; yields what the stack
    receives, in order. ``tag`` travels with the first segment of each packet (e.g. its record). A frame
    of None (a record with no Ethernet form) is passed up at its place, its reason in ``unreadable``
    under the tag's index."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    node = GroNode(device)
    summary = summary if summary is not None else CoalesceSummary()
    in_poll = 0
    for frame, tag in frames:
        summary.frames_in += 1
        if frame is None:
            index = _index(tag)
            reason = (unreadable or {}).get(index, "unreadable") if index is not None else "unreadable"
            packet = GroPacket(b"", tag, 1, 0, 0, (), "", reason, False)
            summary.count(packet, index)
            yield packet
        for packet in node.receive(frame, tag) if frame is not None else ():
            summary.count(packet, _index(packet.meta))
            yield packet
        in_poll += 1
        if in_poll == batch:
            in_poll = 0
            summary.polls += 1
            for packet in node.flush("poll end"):
                summary.count(packet, _index(packet.meta))
                yield packet
    if in_poll:
        summary.polls += 1
    for packet in node.flush("poll end"):
        summary.count(packet, _index(packet.meta))
        yield packet


def compiled_params(device: GroDevice, batch: int) -> tuple[Any, ...] | None:
    """The compiled GRO's settings for ``device`` and polls of ``batch`` frames, or None where only the
    scalar engine applies: no C module, limits above 64 KiB (BIG TCP), a flow hash other than 0."""
    if compiled_gro is None or device.flow_hash is not _DEFAULT_FLOW_HASH or not 1 <= batch <= 1 << 20:
        return None
    generation = device.generation
    limit_v4 = device.gro_ipv4_max_size if generation.ipv4_big_tcp else device.gro_max_size
    if max(limit_v4, device.gro_max_size) > GRO_LEGACY_MAX_SIZE:
        return None
    inet = bytes(1 if proto in inet_offloads else 0 for proto in range(256))
    inet6 = bytes(1 if proto in inet6_offloads else 0 for proto in range(256))
    others = tuple(ethertype for ethertype in packet_offloads if ethertype not in (ETH_P_IP, ETH_P_IPV6)
                   and gro_offload(ethertype, device) is not None)
    return (batch, limit_v4, device.gro_max_size, generation.fixedid_needs_df, generation.gso_fixedid_bit,
            SKB_GSO_TCPV4, SKB_GSO_TCPV6, device.udp_gro_forwarding, inet, inet6, others,
            generation.cwr_always_flushes, generation.gso_ecn_bit)


def new_counters() -> array:
    """The compiled GRO's counters (coalesce_pcap's and count_frames'), zero, no first passed frame yet."""
    assert compiled_gro is not None
    counters = array("q", bytes(8 * compiled_gro.COUNTERS))
    reasons = compiled_gro.REASONS
    for code in range(reasons):
        counters[7 + 2 * reasons + code] = -1
    return counters


def add_counted(summary: CoalesceSummary, counters: array, first_passed: bool = True) -> None:
    """Add the packets the compiled GRO counted in ``counters`` (out, coalesced, merged, flush and pass
    reasons in the scalar engine's words; with ``first_passed``, the first passed frame of each reason
    where it comes first) to ``summary``. Frames in and polls are the caller's."""
    _, packets_out, coalesced, merged = counters[:4]
    summary.packets_out += packets_out
    summary.coalesced += coalesced
    summary.frames_merged += merged
    count = len(COMPILED_REASONS)
    flushes, passed, firsts = counters[7 : 7 + count], counters[7 + count : 7 + 2 * count], counters[7 + 2 * count :]
    numbered = [(code, 0, passed[code], firsts[code]) for code in range(count) if passed[code]]
    table = 7 + 3 * count  # the reasons naming a number: (reason, number, packets, first frame) each
    numbered += [tuple(counters[at : at + 4]) for at in range(table + 1, table + 1 + 4 * counters[table], 4)]
    for code in range(count):
        if flushes[code]:
            summary.flushes[COMPILED_REASONS[code]] += flushes[code]
    for code, number, frames, first_frame in numbered:
        reason = compiled_reason(code, number)
        if code in HELD_NUMBERED_REASONS:
            summary.flushes[reason] += frames
            continue
        summary.passed[reason] += frames
        if first_passed:
            first = summary.first_passed.get(reason)
            summary.first_passed[reason] = first_frame if first is None else min(first, first_frame)


def coalesce_poll(frames: Sequence[bytes], device: GroDevice | None = None, engine: str = "auto") -> list[GroPacket]:
    """One NAPI poll: GRO over ``frames`` (Ethernet, in arrival order), then the poll-end flush; what the
    stack receives, in order. Each packet's ``meta`` is its first frame's index in ``frames``. A live
    receiver (the datapath's far edge) calls this once per batch it read.

    ``engine``: "auto" runs the compiled GRO where it applies (a poll of the common shape, see
    _coalesce.c) and the scalar engine otherwise, with the same results; "scalar" the scalar engine
    only; "compiled" the compiled GRO or ValueError (for tests that must know which ran)."""
    return [packet for _, packet in coalesce_poll_at(frames, device, engine)]


def coalesce_poll_area(area: Any, meta: Any, count: int, params: tuple[Any, ...], out: Any, out_meta: Any) -> int | None:
    """:func:`coalesce_poll` by the compiled GRO for ``count`` frames lying in one buffer (``area``,
    described by ``meta``: int64 sextuples whose first two are a frame's offset and length), the packets
    written back to back to ``out`` and described in ``out_meta`` (offset, length, segs, gso_size,
    gso_type, verified): how many packets, no Python object per frame or packet. None: the poll is one
    for the scalar engine (nothing written): call :func:`coalesce_poll`. ``params``: :func:`compiled_params`."""
    assert compiled_gro is not None
    packets = compiled_gro.coalesce_area(area, meta, count, params, out, out_meta)
    return None if packets < 0 else int(packets)


def coalesce_poll_at(frames: Sequence[bytes], device: GroDevice | None = None,
                     engine: str = "auto") -> list[tuple[int, GroPacket]]:
    """:func:`coalesce_poll`, each packet with the index of the frame whose arrival sent it up
    (``len(frames)``: the poll-end flush), for a caller that places other records among them."""
    device = device or GroDevice()
    if engine != "scalar":
        params = compiled_params(device, max(len(frames), 1))
        found = compiled_gro.coalesce_frames(frames, params) if params is not None else None
        if found is not None:
            generation = device.generation
            packets = []
            for data, first, segs, gso_size, gso_type, why, held, number, verified, at in found:
                family, flags = gso_names(gso_type, generation) if segs > 1 else ("", ())
                summed = "partial" if segs > 1 else "unnecessary" if verified else "none"
                packets.append((at, GroPacket(data, first, segs, gso_size, gso_type, flags, family,
                                              compiled_reason(why, number), bool(held), summed)))
            return packets
        if engine == "compiled":
            raise ValueError("the compiled GRO does not take this poll (see softgso/gro/_coalesce.c)")
    node = GroNode(device)
    out: list[tuple[int, GroPacket]] = []
    for index, frame in enumerate(frames):
        out += [(index, packet) for packet in node.receive(frame, index)]
    out += [(len(frames), packet) for packet in node.flush("poll end")]
    return out


def _index(meta: Any) -> int | None:
    index = getattr(meta, "index", meta)
    return index if isinstance(index, int) else None


def gso_comment(packet: GroPacket) -> str | None:
    """The pcapng comment for a coalesced packet: ``gso_size=N gso_type=tcpv4[,ecn][,fixedid] segs=K``."""
    if packet.segs < 2:
        return None
    kind = ",".join((packet.family, *packet.gso_flags))
    return f"gso_size={packet.gso_size} gso_type={kind} segs={packet.segs}"


def parse_gso_comment(comment: str | None) -> dict[str, Any] | None:
    """The GSO metadata of a comment written by :func:`gso_comment`, or None when it holds none."""
    if not comment:
        return None
    fields: dict[str, str] = {}
    for word in comment.split():
        key, sep, value = word.partition("=")
        if sep:
            fields[key] = value
    if not {"gso_size", "gso_type", "segs"} <= fields.keys():
        return None
    try:
        kinds = fields["gso_type"].split(",")
        return {"gso_size": int(fields["gso_size"]), "gso_type": kinds[0], "flags": tuple(kinds[1:]),
                "segs": int(fields["segs"])}
    except ValueError:
        return None


class CoalescePreview:
    """What ``coalesce`` would make of frames fed one at a time (for ``inspect``): the same polls, the
    summary only (no packet kept). ``counting`` (where the compiled GRO is built and takes the device):
    a poll the compiled GRO takes is counted by it without building its packets
    (``_coalesce.count_frames``, or ``count_area`` for a whole poll of frames lying in one buffer: the
    same decisions and checksum validations); else, and for the polls it does not take, each poll is
    run by :func:`coalesce_poll` and its packets counted here."""

    def __init__(self, device: GroDevice | None = None, batch: int = NAPI_POLL_WEIGHT, counting: bool = True) -> None:
        self.device = device or GroDevice()
        self.batch = batch
        self.summary = CoalesceSummary()
        self._frames: list[bytes | memoryview] = []
        self._in_poll = 0
        self._params = compiled_params(self.device, batch) if counting else None
        self._counters = new_counters() if self._params is not None else None

    def add(self, frame: bytes | memoryview | None, index: int) -> None:
        """One record's Ethernet frame (None: a record with no Ethernet form, passed up); a view must stay
        valid until the poll ends."""
        summary = self.summary
        summary.frames_in += 1
        if frame is None:
            summary.count(GroPacket(b"", index, 1, 0, 0, (), "", "not an Ethernet frame (link type)", False), index)
        else:
            self._frames.append(frame)
        self._in_poll += 1
        if self._in_poll == self.batch:
            self._end_poll()

    def add_frames(self, frames: list[bytes | memoryview]) -> None:
        """:meth:`add` of each of ``frames`` (Ethernet frames all), in order."""
        self.summary.frames_in += len(frames)
        taken = 0
        while taken < len(frames):
            room = min(self.batch - self._in_poll, len(frames) - taken)
            self._frames += frames[taken : taken + room]
            self._in_poll += room
            taken += room
            if self._in_poll == self.batch:
                self._end_poll()

    def add_area(self, area: Any, starts: memoryview, spans: memoryview) -> None:
        """:meth:`add_frames` of frames lying in ``area``: frame k is ``spans[k]`` bytes at ``starts[k]``
        (memoryviews of int64). Each whole poll among them that the compiled GRO takes is counted straight
        from ``area`` (``_coalesce.count_area``: no object per frame); the others, and the frames of a poll
        begun before them or left under way, as :meth:`add_frames` takes them."""
        count = len(starts)
        view = memoryview(area)

        def frames(first: int, stop: int) -> list[bytes | memoryview]:
            return [view[at : at + span] for at, span in zip(starts[first:stop], spans[first:stop], strict=True)]

        taken = min(self.batch - self._in_poll, count) if self._in_poll else 0
        if taken:
            self.add_frames(frames(0, taken))
        while self._counters is not None and count - taken >= self.batch:
            stop = taken + self.batch
            if compiled_gro.count_area(area, starts[taken:stop], spans[taken:stop], self.batch, self._params,
                                       self._counters, 0):
                self.summary.frames_in += self.batch
                self.summary.polls += 1
            else:  # a poll for the scalar engine: built as add_frames builds it
                self.add_frames(frames(taken, stop))
            taken = stop
        if taken < count:
            self.add_frames(frames(taken, count))

    def detach(self, buffer: object) -> None:
        """Copy the frames of the poll under way that are views of ``buffer``, about to be reused."""
        self._frames = [bytes(frame) if isinstance(frame, memoryview) and frame.obj is buffer else frame
                        for frame in self._frames]

    def _end_poll(self) -> None:
        self._in_poll = 0
        self.summary.polls += 1
        if self._counters is not None and compiled_gro.count_frames(self._frames, self._params, self._counters, 0):
            self._frames = []
            return
        for packet in coalesce_poll([bytes(frame) for frame in self._frames], self.device):
            self.summary.count(packet)
        self._frames = []

    def as_dict(self) -> dict[str, Any]:
        """The summary after the last poll's flush, with the settings it ran under."""
        if self._in_poll:
            self._end_poll()
        summary = self.summary
        if self._counters is not None:  # the counted polls' packets (the preview names no first frames)
            summary = replace(summary, flushes=Counter(summary.flushes), passed=Counter(summary.passed))
            add_counted(summary, self._counters, first_passed=False)
        return {**summary.as_dict(), "kernel": self.device.kernel, "batch": self.batch}
