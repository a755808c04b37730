"""What ``softgso segment`` does to each captured packet, without any file I/O.

:func:`process_frame` takes one Ethernet frame and the user's options and returns what leaves the
device for it: the segments, the packet whole, the frame untouched, or the original frame with
the reason the kernel would have refused it. :class:`Summary` adds results up for the closing table.
Nothing is ever dropped silently: a refused packet comes back as its input bytes plus the error.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from .actions import Action
from .errors import SoftGSOError
from .features import DeviceProfile, IpSummed
from .packet import Packet
from .prepare import (
    L4Checksum,
    classify_l4_checksum,
    gso_size_for_mtu,
    gso_type_for,
    packet_from_capture,
    parse_layout,
    set_checksum_state,
)
from .virtio import VirtioNetHdr, virtio_net_hdr_to_skb
from .xmit import transmit


class Outcome(Enum):
    """What happened to one input packet."""

    SEGMENTED = "segmented"  # software GSO cut it into segments
    WHOLE = "whole"  # a GSO packet the device takes whole (TSO profile)
    PASSED = "passed"  # not a super-packet: sent as one frame (checksum completed if it was partial)
    UNTOUCHED = "untouched"  # nothing to do: the input bytes, unchanged
    REFUSED = "refused"  # the kernel would drop it: the input bytes, unchanged, plus the reason


@dataclass(frozen=True)
class SegmentOptions:
    """The user's choices for ``segment`` (see the CLI for their meaning)."""

    device: DeviceProfile
    gso_size: int | None = None
    gso_type: str = "auto"
    tcp_ecn: bool = False
    input_csum: str = "auto"
    vnet_hdr: VirtioNetHdr | None = None
    actions: tuple[Action, ...] = ()
    ipv6_frag_id: int = 0
    fixed_id: bool = False
    kernel: str = "6.1"


@dataclass
class PacketResult:
    """The frames that leave the device for one input packet, and why."""

    outcome: Outcome
    frames: list[bytes]
    error: SoftGSOError | None = None
    input_csum: L4Checksum | None = None
    gso_size: int = 0
    labels: int = 0
    packets: list[Packet] = field(default_factory=list)


def process_frame(frame: bytes, options: SegmentOptions) -> PacketResult:
    """Run one Ethernet frame through the actions and the device, as the kernel would."""
    original = bytes(frame)
    try:
        if options.vnet_hdr is not None:
            return _with_virtio_header(original, options)
        return _from_capture(original, options)
    except SoftGSOError as error:
        return PacketResult(Outcome.REFUSED, [original], error)


def _with_virtio_header(frame: bytes, options: SegmentOptions) -> PacketResult:
    assert options.vnet_hdr is not None
    skb = virtio_net_hdr_to_skb(frame, options.vnet_hdr, kernel=options.kernel)
    skb.ip6_frag_id = options.ipv6_frag_id
    for action in options.actions:  # as tc on the egress device: after the socket built the skb
        action(skb)
    return _transmit(skb, options, input_csum=None)


def _from_capture(frame: bytes, options: SegmentOptions) -> PacketResult:
    layout = parse_layout(frame)
    if layout is None or layout.fragment:
        if not options.actions:
            return PacketResult(Outcome.UNTOUCHED, [frame])
        skb = packet_from_capture(frame, layout)
        for action in options.actions:
            action(skb)
        return _transmit(skb, options, input_csum=None)

    state = classify_l4_checksum(frame, layout) if options.input_csum == "auto" else L4Checksum(options.input_csum)
    skb = packet_from_capture(frame, layout)
    skb.ip6_frag_id = options.ipv6_frag_id
    for action in options.actions:
        action(skb)
    # actions may add or remove labels and tags: measure headers as they now are
    after = (parse_layout(_wire_bytes(skb)) or layout) if options.actions else layout
    gso_type = gso_type_for(after, options.gso_type, tcp_ecn=options.tcp_ecn, fixed_id=options.fixed_id)
    gso_size = options.gso_size or gso_size_for_mtu(after, options.device.mtu, gso_type)
    payload = after.frame_len - after.transport if gso_type & gso_type.UDP else after.payload_len
    if gso_size <= 0:
        raise SoftGSOError(f"MTU {options.device.mtu} leaves no room for payload behind the headers")
    if payload > gso_size:
        set_checksum_state(skb, layout, state)
        skb.gso_size = gso_size
        skb.gso_type = gso_type
    elif state == L4Checksum.PARTIAL:
        set_checksum_state(skb, layout, state)
    elif not options.actions:
        return PacketResult(Outcome.UNTOUCHED, [frame], input_csum=state, labels=layout.labels)
    result = _transmit(skb, options, input_csum=state)
    result.labels = after.labels
    return result


def _wire_bytes(skb: Packet) -> bytes:
    """The frame as it would look with its out-of-band tag in place (for measuring headers)."""
    if not skb.vlan_tag_present or skb.vlan_tci is None:
        return bytes(skb.data)
    tag = skb.vlan_proto.to_bytes(2, "big") + skb.vlan_tci.to_bytes(2, "big")
    return bytes(skb.data[:12]) + tag + bytes(skb.data[12:])


def _transmit(skb: Packet, options: SegmentOptions, *, input_csum: L4Checksum | None) -> PacketResult:
    was_gso = skb.is_gso
    gso_size = skb.gso_size
    packets = transmit(skb, options.device)
    if was_gso and (len(packets) > 1 or packets[0] is not skb):
        outcome = Outcome.SEGMENTED
    elif was_gso:
        outcome = Outcome.WHOLE
    else:
        outcome = Outcome.PASSED
    return PacketResult(outcome, [bytes(p.data) for p in packets], input_csum=input_csum, gso_size=gso_size,
                        packets=packets)


@dataclass
class Summary:
    """Counts for the closing table."""

    packets_in: int = 0
    packets_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    input_checksums: Counter[str] = field(default_factory=Counter)
    partial_out: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def add(self, index: int, in_len: int, result: PacketResult) -> None:
        """Count one input packet and what came out for it."""
        self.packets_in += 1
        self.bytes_in += in_len
        self.packets_out += len(result.frames)
        self.bytes_out += sum(len(f) for f in result.frames)
        self.outcomes[result.outcome.value] += 1
        if result.input_csum is not None:
            self.input_checksums[result.input_csum.value] += 1
        self.partial_out += sum(1 for p in result.packets if p.ip_summed == IpSummed.PARTIAL)
        if result.error is not None:
            self.errors.append((index, str(result.error)))

    def add_run(self, packets: int, frame_len: int, segments: int, bytes_out: int, states: dict[str, int],
                partial: bool) -> None:
        """Count ``packets`` same-shape super-packets segmented in bulk, as ``add`` would one by one."""
        self.packets_in += packets
        self.bytes_in += packets * frame_len
        self.packets_out += packets * segments
        self.bytes_out += packets * bytes_out
        self.outcomes[Outcome.SEGMENTED.value] += packets
        for state, count in states.items():
            self.input_checksums[state] += count
        if partial:
            self.partial_out += packets * segments

    def add_untouched(self, packets: int, nbytes: int, states: dict[str, int]) -> None:
        """Count ``packets`` frames passed through unchanged in bulk, as ``add`` would one by one."""
        self.packets_in += packets
        self.bytes_in += nbytes
        self.packets_out += packets
        self.bytes_out += nbytes
        self.outcomes[Outcome.UNTOUCHED.value] += packets
        for state, count in states.items():
            self.input_checksums[state] += count

    def merge(self, other: Summary) -> None:
        """Add a later part's counts (as if its packets had been added here one by one, in order)."""
        self.packets_in += other.packets_in
        self.packets_out += other.packets_out
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.outcomes.update(other.outcomes)
        self.input_checksums.update(other.input_checksums)
        self.partial_out += other.partial_out
        self.errors.extend(other.errors)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form."""
        return {
            "packets_in": self.packets_in,
            "packets_out": self.packets_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "outcomes": dict(self.outcomes),
            "input_checksums": dict(self.input_checksums),
            "partial_checksums_out": self.partial_out,
            "errors": [{"index": i, "reason": r} for i, r in self.errors],
        }


def apply_actions(frame: bytes, actions: tuple[Action, ...]) -> tuple[bytes, SoftGSOError | None]:
    """Apply actions to one frame without transmitting it (no segmentation, no checksum work).

    An out-of-band tag left by the actions is written into the bytes, as a device would insert it.
    Returns the new frame, or the original frame and the error that refused it.
    """
    layout = parse_layout(frame)
    skb = packet_from_capture(frame, layout)
    try:
        for action in actions:
            action(skb)
    except SoftGSOError as error:
        return frame, error
    return _wire_bytes(skb), None
