"""What a capture holds, and what ``softgso segment`` would make of it, without any file I/O.

:class:`CaptureInspector` takes the records of a capture one at a time (index, link type, the
Ethernet frame or None when the record is not Ethernet) and counts: super-packets over the MTU,
label stacks and VLAN tags seen, flows, L4 checksum states (complete, CHECKSUM_PARTIAL seed,
invalid, zero), IPv4 headers whose tot_len is 0 or disagrees with the frame, IPv6 jumbograms, and,
through :func:`softgso.job.process_frame` with the very options ``segment`` takes, the segments
that would come out. Memory is bounded by the number of distinct flows, stacks and frame sizes.

Every link type is judged on its L3 size (:func:`softgso.io.link_payload_length`, the bytes after
the link-layer header; for Ethernet frames less their VLAN tags): a super-packet is an L3 packet
over the MTU, whatever the capture's link type. Checksums over bytes a snapped record did not keep
are counted as "snapped, not checked", never as invalid.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..check.capdiff import IP_PROTO_NAMES, Decoded, decode_fields, ethertype_name
from ..checksum import csum_fold, ones_sum
from ..constants import ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_QINQ1, IPPROTO_HOPOPTS, IPV6_TLV_JUMBO
from ..features import IpSummed
from ..io import CaptureRecord, UnrepresentableFrameError, link_payload_length
from ..io.cooked import CONVERTED_LINKTYPES, LINKTYPE_ETHERNET, from_ethernet_parts
from ..job import (
    Outcome,
    PacketResult,
    SegmentOptions,
    Summary,
    link_type_report,
    options_from_gso_comment,
    process_frame,
    snapped_report,
)
from ..offload.tunnels import TunnelLayout, TunnelNotSegmented, parse_tunnel, tunnel_id
from ..prepare import FrameLayout, L4Checksum, classify_l4_checksum, mtu_bytes, parse_layout

if TYPE_CHECKING:
    from ..bulk.fastpath import SegmentPlan

ETH_ZLEN = 60  # the minimum Ethernet frame without FCS: shorter packets are padded on the wire
IPV6_HLEN = 40
IPV6_TLV_PAD1 = 0
SNAPPED_NOT_CHECKED = "snapped, not checked"  # a checksum over bytes the capture did not keep
MAX_REPORTS = 20

FlowKey = tuple[str, str, int, str, int]  # protocol, source address, source port, destination, port
# kind, outer flow, identifier ("VNI"/"key" and its value, or None), inner flow (None: not TCP/UDP over IP)
TunnelKey = tuple[str, FlowKey, tuple[str, int] | None, FlowKey | None]
# the outer header's protocol per tunnel kind (an outer IPv6 header may have extension headers first)
OUTER_PROTOCOL = {"GRE": 47, "ip6gre": 47, "gretap": 47, "ip6gretap": 47, "MPLS-in-GRE": 47, "IPIP": 4, "4in6": 4,
                  "SIT": 41, "ip6ip6": 41}


def _ip_text(frame: bytes, network: int, version: int, which: int) -> str:
    """The source (``which`` 0) or destination (1) address of the IP header at ``network``."""
    size = 4 if version == 4 else 16
    start = network + (12 if version == 4 else 8) + which * size
    return str(ipaddress.ip_address(frame[start : start + size]))


def tunnel_key(frame: bytes, layout: TunnelLayout) -> TunnelKey:
    """What the tunnels section lists a tunnel frame under: kind, outer flow, VNI or key, inner flow."""
    outer_proto = OUTER_PROTOCOL.get(layout.kind, 17)  # a --tunnel-port kind is a UDP one
    ports = (0, 0)
    if outer_proto == 17:
        at = layout.outer_l4
        ports = (int.from_bytes(frame[at : at + 2], "big"), int.from_bytes(frame[at + 2 : at + 4], "big"))
    outer: FlowKey = (IP_PROTO_NAMES.get(outer_proto, f"IP protocol {outer_proto}"),
                      _ip_text(frame, layout.outer_network, layout.outer_version, 0), ports[0],
                      _ip_text(frame, layout.outer_network, layout.outer_version, 1), ports[1])
    inner: FlowKey | None = None
    if layout.inner_l4_proto in (6, 17):
        at = layout.inner_transport
        inner = (IP_PROTO_NAMES[layout.inner_l4_proto],
                 _ip_text(frame, layout.inner_network, layout.inner_version, 0), int.from_bytes(frame[at : at + 2], "big"),
                 _ip_text(frame, layout.inner_network, layout.inner_version, 1),
                 int.from_bytes(frame[at + 2 : at + 4], "big"))
    return layout.kind, outer, tunnel_id(frame, layout), inner


def _stack_text(labels: list[tuple[int, int, int, int]]) -> str:
    return "/".join(str(label) for label, _, _, _ in labels)


def _vlan_text(tags: list[tuple[int, int]]) -> str:
    names = {ETH_P_8021Q: "802.1Q", ETH_P_8021AD: "802.1ad", ETH_P_QINQ1: "QinQ 0x9100"}
    return " / ".join(f"{names.get(tpid, hex(tpid))} {tci & 0xFFF}" for tpid, tci in tags)


def _has_jumbo_option(frame: bytes, network: int) -> bool:
    """A Jumbo Payload option (0xC2) in the Hop-by-Hop header right after the IPv6 header (RFC 2675)."""
    if frame[network + 6] != IPPROTO_HOPOPTS:
        return False
    start = network + IPV6_HLEN
    if start + 2 > len(frame):
        return False
    end = min(start + (frame[start + 1] + 1) * 8, len(frame))
    at = start + 2
    # the options are TLVs, except Pad1, a lone zero byte (RFC 8200 4.2)
    while at < end:
        if frame[at] == IPV6_TLV_JUMBO:
            return True
        at += 1 if frame[at] == IPV6_TLV_PAD1 else 2 + (frame[at + 1] if at + 1 < end else 0)
    return False


def ipv4_header_state(frame: bytes | memoryview, network: int) -> str:
    """"valid" when the IPv4 header at ``network`` (whole in the frame) checks, else "invalid"."""
    header = frame[network : network + (frame[network] & 0x0F) * 4]
    return "valid" if len(header) >= 20 and csum_fold(ones_sum(header)) == 0 else "invalid"


def tcp_shape(frame: bytes | memoryview) -> bytes | None:
    """The bytes that decide everything inspect counts of a plain TCP frame but its checksums and its
    length: its headers (Ethernet, 802.1Q/802.1ad tags, IPv4 or IPv6 with TCP right behind, TCP) with
    the per-packet fields left out as segment's plans leave them (softgso.bulk.fastpath.shape_key: the
    IPv4 ID and header checksum, the TCP sequence and ACK numbers, flags, window, checksum, urgent
    pointer and options) and the IP length field, which must say the frame's length (no padding, no
    trailer); None for any other frame. The parts are read in order, each one's place given by the
    bytes before it, so frames of different headers never share a shape."""
    length = len(frame)
    if length < ETH_HLEN:
        return None
    at = 12
    ethertype = frame[12] << 8 | frame[13]
    while ethertype in (ETH_P_8021Q, ETH_P_8021AD) and at + 6 <= length:
        at += 4
        ethertype = frame[at] << 8 | frame[at + 1]
    network = at + 2
    if ethertype == 0x0800:
        if network + 20 > length or frame[network + 9] != 6:
            return None
        transport = network + (frame[network] & 0x0F) * 4
        if frame[network + 2] << 8 | frame[network + 3] != length - network:
            return None
        parts = [frame[: network + 2], frame[network + 6 : network + 10], frame[network + 12 : transport]]
    elif ethertype == 0x86DD:
        if network + IPV6_HLEN > length or frame[network + 6] != 6:
            return None
        transport = network + IPV6_HLEN
        if frame[network + 4] << 8 | frame[network + 5] != length - transport:
            return None
        parts = [frame[: network + 4], frame[network + 6 : transport]]
    else:
        return None
    if transport < network + 20 or transport + 20 > length:
        return None
    parts += (frame[transport : transport + 4], frame[transport + 12 : transport + 13])
    return b"".join(parts)


def _unrepresentable(frames: list[bytes], record: CaptureRecord) -> str | None:
    """Why ``frames``, made of ``record``, cannot be written in its link type (as segment_record finds
    it: an ethertype a raw-IP or NULL record cannot carry), or None."""
    try:
        for out in frames:
            from_ethernet_parts(out, record)
    except UnrepresentableFrameError as error:
        return error.problem
    return None


@dataclass(frozen=True, slots=True)
class TcpShape:
    """What a frame of a seen :func:`tcp_shape` counts as the first frame of the shape did (see
    CaptureInspector.add): everything but its checksum states."""

    link_len: int  # the bytes in front of the IP header that do not count toward the MTU (14, VLAN tags)
    label_stack: str | None
    vlan_tags: str | None
    ipv4_network: int | None  # the IPv4 header, whose checksum each frame has its own; None: IPv6
    flow: FlowKey
    by_length: dict[int, tuple[SegmentPlan, FrameLayout]]  # the usable plans of the lengths seen, and layouts


MAX_SHAPES = 4096  # shapes kept; frames of other shapes are counted one by one


class SegmentPlanner:
    """What ``segment`` writes for a super-packet, from the plan of its shape (softgso.bulk.fastpath,
    the one segment's bulk stream uses) instead of process_frame: the segments' count and lengths,
    the checksum state of the input, whether the segments leave checksums to the device.

    A shape's plan is learnt from process_frame on the first frame of the shape (built and checked
    as segment's bulk stream builds and checks it) and used here only if that frame's own result is
    plainly the plan's: segmented, nothing reported or noted, its input checksum state the one the
    plan's classification gives. Tunnelled shapes go through process_frame.
    """

    def __init__(self, options: SegmentOptions) -> None:
        from ..bulk.compiled_primitive import CompiledSegmenter
        from ..bulk.fastpath import signed
        from ..bulk.stream import short_frames

        self.options = options
        self._learnt: list[PacketResult] = []
        self.fast = CompiledSegmenter(options, self._oracle).fast
        self.signed = signed
        self.small_limit = short_frames(options, self.fast.enabled)[0]
        self._usable: dict[int, bool] = {}  # id of a plan -> its first frame's result agreed with it
        self.last_plan: SegmentPlan | None = None

    def _oracle(self, frame: bytes) -> PacketResult:
        result = process_frame(frame, self.options)
        self._learnt.append(result)
        return result

    def predict(self, inspector: CaptureInspector, frame: bytes) -> bool:
        """Count ``frame`` as segment would write it, from its shape's plan; False when it has none
        (the caller asks process_frame). ``last_plan``: the plan it was counted from."""
        planned = self.usable_plan(frame, inspector.frame_state)
        if planned is None:
            return False
        self.count(inspector, frame, *planned)
        self.last_plan = planned[0]
        return True

    def usable_plan(self, frame: bytes | memoryview, known: str | None = None) -> tuple[SegmentPlan, FrameLayout] | None:
        """The plan of ``frame``'s shape and its layout, where the plan tells what segment writes of it;
        ``known``: the frame's input checksum state, where classified already."""
        found = self.fast.key_of(frame)
        if found is None or not isinstance(found[1], FrameLayout):
            return None
        self._learnt.clear()
        plan = self.fast.plan_for(frame, *found)
        if plan is None:
            return None
        usable = self._usable.get(id(plan))
        if usable is None:
            base = self.fast.bases.get(id(plan))
            if base is not None:  # another length of a shape: usable where the shape's first plan is
                usable = self._usable[id(plan)] = self._usable.get(id(base), False)
            elif not self._learnt:  # a plan learnt elsewhere: not used here
                self._usable[id(plan)] = False
                return None
            else:
                state = self._input_state(plan, frame, found[1], known)
                usable = self._usable[id(plan)] = self._agrees(plan, self._learnt[-1], state)
        return (plan, found[1]) if usable else None

    def count(self, inspector: CaptureInspector, frame: bytes | memoryview, plan: SegmentPlan,
              layout: FrameLayout) -> None:
        """Count what segment writes of ``frame`` by ``plan`` (a usable plan of its shape)."""
        state = self._input_state(plan, frame, layout, inspector.frame_state)
        segments = plan.segments
        full_len, last_len = plan.segment_lengths()
        bytes_out = full_len * (segments - 1) + last_len
        inspector.summary.add_run(1, len(frame), segments, bytes_out, {} if state is None else {state: 1},
                                  plan.partial or plan.outer_left)
        inspector.segments_out += segments
        inspector.bytes_out += bytes_out + segments * inspector.link_delta
        inspector.sizes_out[full_len] += segments - 1
        inspector.sizes_out[last_len] += 1

    @staticmethod
    def _input_state(plan: SegmentPlan, frame: bytes | memoryview, layout: FrameLayout, known: str | None) -> str | None:
        """The input checksum state segment counts for a frame of this plan (None: none counted;
        ``known``: the frame's state as the inspector classified it, None when it did not)."""
        if plan.classify:
            return known if known is not None else classify_l4_checksum(frame, layout).value
        return None if plan.forced_state is None else plan.forced_state.value

    @staticmethod
    def _agrees(plan: SegmentPlan, result: PacketResult, state: str | None) -> bool:
        """The first frame's own result is what the plan says of every frame of its shape."""
        full_len, last_len = plan.segment_lengths()
        lengths = [len(out) for out in result.frames]
        partial = sum(1 for packet in result.packets if packet.ip_summed == IpSummed.PARTIAL)
        return (result.outcome == Outcome.SEGMENTED and not result.kind and not result.note and not result.over_mtu
                and lengths == [full_len] * (plan.segments - 1) + [last_len]
                and partial == (plan.segments if plan.partial or plan.outer_left else 0)
                and (None if result.input_csum is None else result.input_csum.value) == state)


@dataclass
class CaptureInspector:
    """Counts over one capture; feed it with :meth:`add`, read it with :meth:`as_dict`."""

    options: SegmentOptions
    top: int = 10
    packets: int = 0
    bytes_in: int = 0
    not_ethernet: Counter[str] = field(default_factory=Counter)  # link type -> records
    non_ip: Counter[str] = field(default_factory=Counter)  # protocol name -> packets
    other_ip: Counter[str] = field(default_factory=Counter)  # IP protocol other than TCP/UDP -> packets
    over_mtu: int = 0
    largest: int = 0  # the largest record as captured, link header and all (as tshark's frame length)
    largest_l3: int = 0
    label_stacks: Counter[str] = field(default_factory=Counter)
    vlan_tags: Counter[str] = field(default_factory=Counter)
    flows: Counter[FlowKey] = field(default_factory=Counter)
    flow_bytes: Counter[FlowKey] = field(default_factory=Counter)
    # tunnelled frames, read by softgso.offload.tunnels.parse_tunnel (segment's own reader)
    tunnels: Counter[TunnelKey] = field(default_factory=Counter)
    tunnel_bytes: Counter[TunnelKey] = field(default_factory=Counter)
    tunnel_super: Counter[TunnelKey] = field(default_factory=Counter)
    ipv4_checksums: Counter[str] = field(default_factory=Counter)
    l4_checksums: Counter[str] = field(default_factory=Counter)
    ipv4_tot_len_zero: int = 0
    ipv4_tot_len_mismatch: int = 0
    ethernet_padding: int = 0
    ipv6_jumbograms: int = 0  # with a Hop-by-Hop Jumbo Payload option
    ipv6_payload_len_zero: int = 0  # "IPv6 payload length 0 without jumbo option" (BIG TCP since Linux 6.11)
    ip_fragments: int = 0
    undecodable: int = 0
    summary: Summary = field(default_factory=Summary)  # segment's accounting of the same records
    segments_out: int = 0
    bytes_out: int = 0
    # the record's link header less the Ethernet header of the frame counted (a cooked, NULL or raw-IP
    # record): bytes_in and bytes_out are the records' bytes, as segment counts them
    link_delta: int = 0
    sizes_in: Counter[int] = field(default_factory=Counter)
    sizes_out: Counter[int] = field(default_factory=Counter)
    reports: list[tuple[int, str]] = field(default_factory=list)  # the first MAX_REPORTS
    report_count: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    # segment's bulk plans (softgso.bulk.fastpath), for super-packets of a shape seen before: None,
    # every frame through process_frame
    planner: SegmentPlanner | None = None
    # with the plans: plain TCP shapes seen (tcp_shape -> what their first frame counted)
    shapes: dict[bytes, TcpShape] = field(default_factory=dict)
    frame_state: str | None = None  # the L4 checksum state of the frame being added, once classified whole

    @property
    def mtu(self) -> int:
        """The egress MTU the report measures against (the device profile's, or --mtu)."""
        return self.options.device.mtu

    def _report(self, index: int, reason: str) -> None:
        self.report_count += 1
        if len(self.reports) < MAX_REPORTS:
            self.reports.append((index, reason))

    def _count_size(self, l3_len: int, record_len: int) -> None:
        self.largest = max(self.largest, record_len)
        self.largest_l3 = max(self.largest_l3, l3_len)
        if l3_len > self.mtu:
            self.over_mtu += 1

    def add(self, index: int, frame: bytes | memoryview | None, *, linktype: int = 1, timestamp_ns: int | None = None,
            wire_len: int | None = None, record_len: int = 0, record: CaptureRecord | None = None,
            comment: str | None = None, fcs_problem: str | None = None) -> None:
        """Count one record; ``frame`` is its Ethernet frame, or None when it is not Ethernet.

        ``record_len`` is the captured length of a record that is not Ethernet; ``wire_len`` the
        packet's original length (more than the frame when the capture snapped it); ``record``
        the record itself, which gives the L3 size of link types that are not converted (PPP...);
        ``comment`` its pcapng comment, whose GSO metadata segment reads (options_from_gso_comment);
        ``fcs_problem`` why no FCS can be made for frames in place of ``frame`` (softgso.io.fcs), which
        is then written unchanged if it would not be as it came.
        """
        self.packets += 1
        if timestamp_ns is not None:
            self.first_ns = timestamp_ns if self.first_ns is None else min(self.first_ns, timestamp_ns)
            self.last_ns = timestamp_ns if self.last_ns is None else max(self.last_ns, timestamp_ns)
        if frame is None:
            l3_len = None if record is None else link_payload_length(record)
            if l3_len is not None:
                self._count_size(l3_len, record_len)
            else:
                self.largest = max(self.largest, record_len)
            self.not_ethernet[f"link type {linktype}"] += 1
            self.bytes_in += record_len
            if record is not None:  # segment's own account of it (softgso.job.link_type_report)
                kind, reason, over = link_type_report(record, linktype in CONVERTED_LINKTYPES, self.mtu)
            else:
                kind, reason, over = f"link type {linktype} not segmented", f"link type {linktype}", False
            self.summary.add_passthrough(index, record_len, kind, reason, over)
            self.segments_out += 1
            self.bytes_out += record_len
            self._report(index, f"{reason}: segment passes it through")
            return
        self.link_delta = record_len - len(frame) if record_len else 0
        self.bytes_in += len(frame) + self.link_delta
        self.sizes_in[len(frame)] += 1
        self.frame_state = None
        snapped = wire_len is not None and wire_len > len(frame)
        # a packet with GSO metadata is segmented by it, as segment does: never counted from a shape's plan
        options = self.options if comment is None else options_from_gso_comment(self.options, comment)
        # (an action on a record of another link type may make what it cannot carry: process_frame)
        planner = (self.planner if options is self.options and fcs_problem is None
                   and (linktype == LINKTYPE_ETHERNET or not options.actions) else None)
        shape_key = None
        if planner is not None and not snapped:
            shape_key = tcp_shape(frame)
            if shape_key is not None:
                shape = self.shapes.get(shape_key)
                if shape is not None:
                    planned = shape.by_length.get(len(frame))
                    if planned is None and len(frame) > planner.small_limit:
                        # another length of the shape: counted alike where its plan is usable
                        planned = planner.usable_plan(frame)
                        if planned is not None:
                            shape.by_length[len(frame)] = planned
                    # (a shape leaves TCP options out: one whose options carry a signature is a frame
                    # segment passes through, as it is one key_of refuses)
                    if planned is not None and not planner.signed(frame, planned[1]):
                        self._add_shaped(frame, shape, *planned)
                        return
                watched = self._watched()
        frame = bytes(frame)  # (a view of the reader's chunk is copied for the per-frame code)
        decoded = decode_fields(frame)
        # VLAN tags do not count toward the MTU
        l3_len = max(len(frame) - ETH_HLEN - 4 * len(decoded.vlan_tags), 0)
        self._count_size(l3_len, len(frame) + self.link_delta)
        tunnelled = self._count_tunnel(bytes(frame), l3_len > self.mtu)
        if decoded.labels:
            self.label_stacks[_stack_text(decoded.labels)] += 1
        if decoded.vlan_tags:
            self.vlan_tags[_vlan_text(decoded.vlan_tags)] += 1
        self._count_ip(index, frame, decoded, wire_len if snapped and wire_len is not None else len(frame))
        if snapped:
            assert wire_len is not None
            kind, reason, over = snapped_report(frame, len(frame), wire_len, self.mtu)
            self._passed_through(index, frame, kind, reason, over,
                                 f"snapped record ({len(frame)} of {wire_len} bytes)")
            return
        if planner is not None and len(frame) > planner.small_limit and planner.predict(self, frame):
            # the first frame of a plain TCP shape: its like are counted from what it counted
            if (shape_key is not None and not tunnelled and self.frame_state is not None and not decoded.labels
                    and decoded.l4_proto == 6 and decoded.network is not None and self._watched() == watched
                    and len(self.shapes) < MAX_SHAPES and planner.last_plan is not None):
                layout = parse_layout(frame)
                assert layout is not None  # (the frame's L4 checksum state was classified on it)
                known = self.shapes.get(shape_key)
                if known is not None:  # a length of the shape whose plan was not usable before
                    known.by_length[len(frame)] = (planner.last_plan, layout)
                else:
                    self.shapes[shape_key] = TcpShape(
                        len(frame) - l3_len, _stack_text(decoded.labels) if decoded.labels else None,
                        _vlan_text(decoded.vlan_tags) if decoded.vlan_tags else None,
                        decoded.network if decoded.ip_version == 4 else None,
                        (IP_PROTO_NAMES[6], decoded.ip_src, decoded.sport, decoded.ip_dst, decoded.dport),
                        {len(frame): (planner.last_plan, layout)})
            return
        result = process_frame(frame, options)
        if record is not None and record.linktype != LINKTYPE_ETHERNET and result.frames != [frame]:
            unwritable = _unrepresentable(result.frames, record)
            if unwritable is not None:
                # segment's segment_record: the result has no form in the record's link type (a label
                # pushed on raw IP), so the record passes through as it came, reported
                self._passed_through(index, frame, "result not expressible in the link type", unwritable,
                                     mtu_bytes(frame) > self.mtu, unwritable)
                return
        if fcs_problem is not None and result.frames != [frame]:
            # segment's _fcs_frames: passed through, reported
            from ..io.fcs import FCS_NOT_MADE

            self._passed_through(index, frame, FCS_NOT_MADE, fcs_problem,
                                 len(result.frames) > 1 or mtu_bytes(frame) > self.mtu, fcs_problem)
            return
        self.summary.add(index, len(frame), result)
        self.segments_out += len(result.frames)
        for out in result.frames:
            self.bytes_out += len(out) + self.link_delta
            self.sizes_out[len(out)] += 1
        if result.outcome == Outcome.REFUSED:
            self._report(index, f"segment would refuse it (passed through unchanged): {result.error}")
        elif result.kind:
            self._report(index, f"segment would pass it through unchanged: {result.reason}")

    def _passed_through(self, index: int, frame: bytes | memoryview, kind: str, reason: str, over_mtu: bool,
                        said: str) -> None:
        """A record segment writes as it came, reported under ``kind`` (``said``: the line of the report)."""
        self.summary.add_passthrough(index, len(frame), kind, reason, over_mtu)
        self.segments_out += 1
        self.bytes_out += len(frame) + self.link_delta
        self.sizes_out[len(frame)] += 1
        self._report(index, f"{said}: segment passes it through")

    def _watched(self) -> tuple[int, ...]:
        """The counts a frame of a :class:`TcpShape` leaves as they are (its first frame must, too)."""
        return (self.ipv4_tot_len_zero, self.ipv4_tot_len_mismatch, self.ethernet_padding, self.ipv6_jumbograms,
                self.ipv6_payload_len_zero, self.ip_fragments, self.undecodable, self.report_count)

    def _add_shaped(self, frame: bytes | memoryview, shape: TcpShape, plan: SegmentPlan, layout: FrameLayout) -> None:
        """:meth:`add`'s counts of a frame of a shape seen before (the same counts, in the same order, as
        its first frame's; its own length, checksum states and ``plan``, its length's, ``layout`` its)."""
        self._count_size(max(len(frame) - shape.link_len, 0), len(frame) + self.link_delta)
        if shape.label_stack is not None:
            self.label_stacks[shape.label_stack] += 1
        if shape.vlan_tags is not None:
            self.vlan_tags[shape.vlan_tags] += 1
        if shape.ipv4_network is not None:
            self.ipv4_checksums[ipv4_header_state(frame, shape.ipv4_network)] += 1
        self.flows[shape.flow] += 1
        self.flow_bytes[shape.flow] += len(frame) + self.link_delta  # the record's bytes, as "records" counts
        state = self.frame_state = classify_l4_checksum(frame, layout).value
        self.l4_checksums[state] += 1
        assert self.planner is not None
        self.planner.count(self, frame, plan, layout)

    def _count_tunnel(self, frame: bytes, over_mtu: bool) -> bool:
        """Count a tunnel frame under its kind, outer flow, VNI or key and inner flow; False: no tunnel."""
        try:
            layout = parse_tunnel(frame, self.options.tunnel_port_kinds, through_labels=True, any_inner=True)
        except TunnelNotSegmented:
            return True  # GTP-U, ERSPAN, GRE with sequence numbers...: segment's report names them
        if layout is None:
            return False
        key = tunnel_key(frame, layout)
        self.tunnels[key] += 1
        self.tunnel_bytes[key] += len(frame) + self.link_delta
        self.tunnel_super[key] += over_mtu
        return True

    def _count_ip(self, index: int, frame: bytes, decoded: Decoded, wire_len: int) -> None:
        """IP-level counts; ``wire_len`` is the frame's length on the wire (more than ``frame`` when snapped)."""
        if decoded.ip_version == 0:
            # a whole label stack over something else (a pseudowire's control word, an Ethernet frame) is
            # decoded as far as it goes, MPLS; decode_fields names no ethertype below the stack
            if decoded.labels and not decoded.notes:
                self.non_ip["MPLS (payload neither IPv4 nor IPv6)"] += 1
            elif decoded.ethertype is None:
                self.undecodable += 1
                self._report(index, "; ".join(decoded.notes) or "not decodable")
            else:
                self.non_ip[ethertype_name(decoded.ethertype)] += 1
            return
        if decoded.notes:
            self.undecodable += 1
            self._report(index, "; ".join(decoded.notes))
        assert decoded.network is not None
        network = decoded.network
        snapped = wire_len > len(frame)
        ip_end = len(frame)
        if decoded.ip_version == 4:
            ihl = (frame[network] & 0x0F) * 4
            if snapped and len(frame[network : network + ihl]) < max(ihl, 20):
                self.ipv4_checksums[SNAPPED_NOT_CHECKED] += 1
            else:
                self.ipv4_checksums[ipv4_header_state(frame, network)] += 1
            tot_len = int.from_bytes(frame[network + 2 : network + 4], "big")
            if tot_len == 0:
                self.ipv4_tot_len_zero += 1
            elif network + tot_len < wire_len and wire_len <= ETH_ZLEN:
                self.ethernet_padding += 1
                ip_end = min(network + tot_len, ip_end)
            elif network + tot_len != wire_len:
                self.ipv4_tot_len_mismatch += 1
        else:
            payload_len = int.from_bytes(frame[network + 4 : network + 6], "big")
            if _has_jumbo_option(frame, network):
                self.ipv6_jumbograms += 1
            elif payload_len == 0 and wire_len > network + IPV6_HLEN:
                self.ipv6_payload_len_zero += 1
            elif payload_len and network + IPV6_HLEN + payload_len < wire_len and wire_len <= ETH_ZLEN:
                self.ethernet_padding += 1
                ip_end = min(network + IPV6_HLEN + payload_len, ip_end)
        if decoded.fragment:
            self.ip_fragments += 1
        proto = decoded.l4_proto if decoded.l4_proto is not None else -1
        name = IP_PROTO_NAMES.get(proto, f"IP protocol {proto}")
        key: FlowKey = (name, decoded.ip_src, decoded.sport, decoded.ip_dst, decoded.dport)
        self.flows[key] += 1
        self.flow_bytes[key] += len(frame) + self.link_delta
        if proto not in (6, 17):
            self.other_ip[name] += 1
            return
        if snapped:
            self.l4_checksums[SNAPPED_NOT_CHECKED] += 1
            return
        layout = parse_layout(frame)
        if layout is None:
            return
        if ip_end < len(frame):
            layout = replace(layout, frame_len=ip_end)
        state = classify_l4_checksum(frame[:ip_end], layout).value
        self.l4_checksums[state] += 1
        if ip_end == len(frame):
            self.frame_state = state

    # what merge() adds up (Counters: a later part's keys after this one's, as one pass inserts them)
    SUMMED = ("packets", "bytes_in", "over_mtu", "ipv4_tot_len_zero", "ipv4_tot_len_mismatch", "ethernet_padding",
              "ipv6_jumbograms", "ipv6_payload_len_zero", "ip_fragments", "undecodable", "segments_out", "bytes_out",
              "report_count", "not_ethernet", "non_ip", "other_ip", "label_stacks", "vlan_tags", "flows",
              "flow_bytes", "tunnels", "tunnel_bytes", "tunnel_super", "ipv4_checksums", "l4_checksums", "sizes_in",
              "sizes_out")

    def merge(self, other: CaptureInspector) -> None:
        """Add the counts of the records after this inspector's (a later part of ``inspect --jobs``), as if
        they had been added here one by one, in order (the plans and shapes seen are not carried over:
        a part learns its own, to the same counts)."""
        for name in self.SUMMED:
            mine = getattr(self, name)
            if isinstance(mine, Counter):
                mine.update(getattr(other, name))
            else:
                setattr(self, name, mine + getattr(other, name))
        self.largest = max(self.largest, other.largest)
        self.largest_l3 = max(self.largest_l3, other.largest_l3)
        for name, pick in (("first_ns", min), ("last_ns", max)):
            found = [value for value in (getattr(self, name), getattr(other, name)) if value is not None]
            setattr(self, name, pick(found) if found else None)
        self.reports.extend(other.reports[: max(MAX_REPORTS - len(self.reports), 0)])
        self.summary.merge(other.summary)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready report."""
        top = self.flows.most_common(self.top)
        duration = (self.last_ns - self.first_ns) / 1e9 if self.first_ns is not None and self.last_ns is not None else 0.0
        return {
            "records": self.packets,
            "bytes": self.bytes_in,
            "duration_s": round(duration, 9),
            "largest_frame": self.largest,
            "largest_l3": self.largest_l3,
            "mtu": self.mtu,
            "device": self.options.device.name,
            "super_packets_over_mtu": self.over_mtu,
            "label_stacks": dict(self.label_stacks.most_common()),
            "vlan_tags": dict(self.vlan_tags.most_common()),
            "flows_total": len(self.flows),
            "flows_top": [
                {"protocol": k[0], "src": k[1], "sport": k[2], "dst": k[3], "dport": k[4], "packets": n,
                 "bytes": self.flow_bytes[k]}
                for k, n in top
            ],
            "tunnel_packets": sum(self.tunnels.values()),
            "tunnels_total": len(self.tunnels),
            "tunnels": [_tunnel_entry(key, count, self.tunnel_bytes[key], self.tunnel_super[key])
                        for key, count in self.tunnels.most_common(self.top)],
            "ipv4_header_checksums": dict(self.ipv4_checksums),
            "l4_checksums": {state.value: self.l4_checksums.get(state.value, 0) for state in L4Checksum}
            | ({SNAPPED_NOT_CHECKED: self.l4_checksums[SNAPPED_NOT_CHECKED]}
               if self.l4_checksums.get(SNAPPED_NOT_CHECKED) else {}),
            "ipv4_tot_len_zero": self.ipv4_tot_len_zero,
            "ipv4_tot_len_mismatch": self.ipv4_tot_len_mismatch,
            "ethernet_padding": self.ethernet_padding,
            "ipv6_jumbograms": self.ipv6_jumbograms,
            "ipv6_payload_len_zero": self.ipv6_payload_len_zero,
            "ip_fragments": self.ip_fragments,
            "other_ip_protocols": dict(self.other_ip.most_common()),
            "non_ip": dict(self.non_ip.most_common()),
            "not_ethernet": dict(self.not_ethernet),
            "undecodable": self.undecodable,
            # what segment (same options) would write: its own accounting, every record in one outcome
            "segment": {
                "records_out": self.segments_out,
                "bytes_out": self.bytes_out,
                "outcomes": {o.value: self.summary.outcomes.get(o.value, 0) for o in Outcome},
                "over_mtu_not_segmented": self.summary.over_mtu,
                "input_checksums": dict(sorted((state, count) for state, count in self.summary.input_checksums.items()
                                               if count)),
                "report_kinds": [{"kind": k, "count": c, "first_frame": i + 1, "first_reason": r}
                                 for k, c, i, r in self.summary.reports_by_kind()],
            },
            "reports": [{"frame": i + 1, "reason": r} for i, r in self.reports],
            "reports_total": self.report_count,
        }


def _flow_entry(flow: FlowKey | None) -> dict[str, object] | None:
    if flow is None:
        return None
    return {"protocol": flow[0], "src": flow[1], "sport": flow[2], "dst": flow[3], "dport": flow[4]}


def _tunnel_entry(key: TunnelKey, packets: int, nbytes: int, super_packets: int) -> dict[str, object]:
    """One line of the tunnels section, JSON-ready."""
    kind, outer, identifier, inner = key
    entry: dict[str, object] = {"kind": kind, "outer": _flow_entry(outer)}
    entry["vni"] = identifier[1] if identifier and identifier[0] == "VNI" else None
    entry["key"] = identifier[1] if identifier and identifier[0] == "key" else None
    entry |= {"inner": _flow_entry(inner), "packets": packets, "bytes": nbytes, "super_packets": super_packets}
    return entry
