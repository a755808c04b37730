"""What ``softgso segment`` does to each captured packet, without any file I/O.

:func:`process_frame` takes one Ethernet frame and the user's options and returns what leaves the
device for it: the segments, the packet whole, the frame untouched, or the original frame with
the reason the kernel would have refused it. :class:`Summary` adds results up for the closing table.
Nothing is ever dropped silently: a refused packet comes back as its input bytes plus the error.
"""

from __future__ import annotations

import struct
from collections import Counter
from enum import Enum
from functools import cached_property

from .checksum import ipv4_header_checksum, ones_sum, pseudo_header_sum
from .constants import ETH_P_IP, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP, TCP_MIN_HLEN, eth_p_mpls
from .errors import SoftGSOError, UsageError
from .features import DeviceProfile, GsoType, IpSummed
from .offload.tunnels import TunnelLayout, TunnelNotSegmented, parse_tunnel, tunnel_of
from .packet import ENCAP_TYPE_ETHER, ENCAP_TYPE_IPPROTO, Packet
from .prepare import (
    MAX_TRAILER,
    FrameLayout,
    L4Checksum,
    classify_l4_checksum,
    gso_size_for_mtu,
    gso_type_for,
    link_header_len,
    mtu_bytes,
    network_end,
    not_segmentable,
    packet_from_capture,
    parse_layout,
    pseudo_seed,
    set_checksum_state,
    tcp_signature,
)
from .valueclass import FrozenValueClass, ValueClass, init_fields
from .xmit import transmit

TYPE_CHECKING = False  # typing costs start-up milliseconds; mypy reads this name as typing's
if TYPE_CHECKING:
    from typing import Any

    from .actions import Action
    from .virtio import VirtioNetHdr


class Outcome(Enum):
    """What happened to one input record: every record has exactly one outcome."""

    SEGMENTED = "segmented"  # software GSO cut it into segments
    WHOLE = "whole"  # a GSO packet the device takes whole (a TSO device profile): asked for
    CHANGED = "changed"  # sent as one frame that differs from the input (checksums completed, actions)
    UNCHANGED = "unchanged"  # nothing to do: the input bytes
    REFUSED = "refused"  # the kernel would drop it: the input bytes, reported with the kernel's check
    NOT_SEGMENTED = "not_segmented"  # softgso cannot or will not cut it: the input bytes, reported


# outcomes whose output is the input record's bytes
PASSED_THROUGH = (Outcome.UNCHANGED, Outcome.REFUSED, Outcome.NOT_SEGMENTED)


class SegmentOptions(FrozenValueClass):
    """The user's choices for ``segment`` (see the CLI for their meaning)."""

    device: DeviceProfile
    gso_size: int | None
    gso_type: str
    tcp_ecn: bool
    input_csum: str
    vnet_hdr: VirtioNetHdr | None
    actions: tuple[Action, ...]
    ipv6_frag_id: int
    fixed_id: bool  # SKB_GSO_TCP_FIXEDID: the IPv4 ID of the inner (or only) header stays fixed
    fixed_outer_id: bool  # mainline only: the outer IPv4 header's too (SKB_GSO_TCP_FIXEDID from 6.18)
    kernel: str
    tunnel_ports: tuple[tuple[int, str], ...]  # --tunnel-port KIND:PORT, as (port, kind)
    udp_gso: str  # --udp-gso: UDP datagrams over the MTU are GSO super-packets of this type (udp_l4, udp)
    # beyond the kernel: a tunnel super-packet under a label stack is segmented (Linux drops it),
    # the labels copied with the outer headers onto every segment
    tunnel_in_labels: bool

    def __init__(self, device: DeviceProfile, gso_size: int | None = None, gso_type: str = "auto",
                 tcp_ecn: bool = False, input_csum: str = "auto", vnet_hdr: VirtioNetHdr | None = None,
                 actions: tuple[Action, ...] = (), ipv6_frag_id: int = 0, fixed_id: bool = False,
                 fixed_outer_id: bool = False, kernel: str = "6.1",
                 tunnel_ports: tuple[tuple[int, str], ...] = (), udp_gso: str = "off",
                 tunnel_in_labels: bool = False) -> None:
        init_fields(self, locals())
        if self.fixed_outer_id and self.kernel != "mainline":
            raise UsageError(f"a fixed outer IPv4 ID needs --kernel mainline: {self.kernel} never fixes an outer "
                             "ID (its one FIXEDID bit is read at the inner level only)")

    @cached_property
    def tunnel_port_kinds(self) -> dict[int, str]:
        """--tunnel-port as port -> kind, made once (read for every packet)."""
        return dict(self.tunnel_ports)

    @cached_property
    def tunnel_actions(self) -> bool:
        """An action pushes or pops a tunnel (the frame it makes is then read as a capture of it), made once."""
        if not self.actions:
            return False
        from .actions import TunnelPop, TunnelPush

        return any(isinstance(action, (TunnelPush, TunnelPop)) for action in self.actions)

    @property
    def udp_gso_type(self) -> str | None:
        """The gso_type a UDP datagram over the MTU is given (None: passed through and reported)."""
        if self.gso_type in ("udp", "udp_l4"):
            return self.gso_type
        return None if self.udp_gso == "off" else self.udp_gso


class PacketResult(ValueClass):
    """The frames that leave the device for one input packet, and why."""

    outcome: Outcome
    frames: list[bytes]
    error: SoftGSOError | None
    input_csum: L4Checksum | None
    gso_size: int
    labels: int
    packets: list[Packet]
    kind: str  # the report's short reason (refused and not_segmented)
    over_mtu: bool  # an output frame over the MTU that the device did not take whole
    note: str  # a remark on a packet that was handled (segmented): rules no kernel vector proves, segments over the MTU

    def __init__(self, outcome: Outcome, frames: list[bytes], error: SoftGSOError | None = None,
                 input_csum: L4Checksum | None = None, gso_size: int = 0, labels: int = 0,
                 packets: list[Packet] | None = None, kind: str = "", over_mtu: bool = False,
                 note: str = "") -> None:
        self.outcome = outcome
        self.frames = frames
        self.error = error
        self.input_csum = input_csum
        self.gso_size = gso_size
        self.labels = labels
        self.packets = [] if packets is None else packets
        self.kind = kind
        self.over_mtu = over_mtu
        self.note = note

    @property
    def reason(self) -> str:
        """The report's full text."""
        return str(self.error) if self.error is not None else self.kind


MTU_NO_ROOM = "MTU too small for the headers (not the kernel's check)"


class NotSegmented(SoftGSOError):
    """A packet softgso passes through and reports: not a kernel refusal, a limit of the capture or of softgso."""

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        super().__init__(detail)


# the note on a record whose segments are over the MTU, cut at a gso_size given to softgso
SEGMENTS_OVER_MTU = ("segments over the MTU, cut at the gso_size given (--gso-size, a packet's comment or --vnet-hdr)"
                     " as the kernel cuts them")


def process_frame(frame: bytes, options: SegmentOptions) -> PacketResult:
    """Run one Ethernet frame through the actions and the device, as the kernel would."""
    original = bytes(frame)
    try:
        if options.vnet_hdr is not None:
            result = _with_virtio_header(original, options)
        else:
            result = _from_capture(original, options)
    # the error is kept for its text, without its traceback: that would hold this frame and its
    # callers' (a bulk stream's chunk, IN's mapped window among them) in a cycle until a collection
    except NotSegmented as error:
        result = PacketResult(Outcome.NOT_SEGMENTED, [original], error.with_traceback(None), kind=error.kind)
    except SoftGSOError as error:
        result = PacketResult(Outcome.REFUSED, [original], error.with_traceback(None),
                              kind="refused by the kernel's checks")
    if result.outcome not in (Outcome.SEGMENTED, Outcome.WHOLE):
        mtu = options.device.mtu
        result.over_mtu = any(mtu_bytes(f) > mtu for f in result.frames)
        if result.over_mtu and not result.kind:
            result.kind = "over the MTU after the actions"
    elif (result.outcome == Outcome.SEGMENTED and not result.note
          and (options.gso_size or options.vnet_hdr is not None)):
        # a gso_size softgso did not derive from the MTU is the kernel's to cut at, fit or not
        # (skb_gso_segment never looks at the MTU): the segments are written as cut, and said to be
        # over it, so that no frame over the MTU is in OUT without a word
        mtu = options.device.mtu
        if any(mtu_bytes(f) > mtu for f in result.frames):
            result.note = SEGMENTS_OVER_MTU
    return result


def _run_actions(skb: Packet, actions: tuple[Action, ...]) -> None:
    """The actions in order, as tc runs them; softgso.actions is loaded by a run that has actions only
    (a plain ``segment`` starts without it)."""
    if not actions:
        return
    from .actions import apply_action

    for action in actions:
        apply_action(skb, action)


def _with_virtio_header(frame: bytes, options: SegmentOptions) -> PacketResult:
    assert options.vnet_hdr is not None
    from .virtio import virtio_net_hdr_to_skb  # here: virtio is not on the path of a run without --vnet-hdr

    skb = virtio_net_hdr_to_skb(frame, options.vnet_hdr, kernel=options.kernel)
    skb.ip6_frag_id = options.ipv6_frag_id
    _run_actions(skb, options.actions)  # as tc on the egress device: after the socket built the skb
    return _transmit(skb, options, input_csum=None)


def _from_capture(original: bytes, options: SegmentOptions) -> PacketResult:
    """A captured frame: what its sender's stack had (layout, checksum state, GSO metadata), then transmit."""
    end = network_end(original)
    over = mtu_bytes(original, end) > options.device.mtu
    behind = len(original) - end
    if over and behind > MAX_TRAILER:
        raise NotSegmented("bytes behind the IP packet (capture check, not the kernel's)",
                           f"{behind} bytes behind the IP packet: more than a trailer or padding")
    if options.tunnel_actions:
        return _after_tunnel_actions(original, options)
    if not options.actions:
        try:
            tunnel_layout = parse_tunnel(original, options.tunnel_port_kinds, options.tunnel_in_labels)
        except TunnelNotSegmented as refusal:
            if over:
                raise NotSegmented(refusal.kind, str(refusal)) from None
            return PacketResult(Outcome.UNCHANGED, [original])
        if tunnel_layout is not None:
            return _tunnel_from_capture(original, tunnel_layout, options, over)
    layout = parse_layout(original)
    if layout is None or layout.fragment:
        if options.actions:
            skb = packet_from_capture(original, layout, options.kernel)
            skb.encapsulation = _left_encapsulated(original, options, over)
            _run_actions(skb, options.actions)
            return _transmit(skb, options, input_csum=None)
        if over:
            raise NotSegmented(*not_segmentable(original))
        return PacketResult(Outcome.UNCHANGED, [original])
    if layout.length_problem is not None:
        if over or options.actions:
            raise NotSegmented("lengths contradict (capture check, not the kernel's)", layout.length_problem)
        return PacketResult(Outcome.UNCHANGED, [original], labels=layout.labels)
    trailer = b""
    frame = original
    if layout.trailer_len:
        # link padding or a trailer (an FCS, a capture appliance's): never payload; the kernel's
        # ip_rcv trims it (pskb_trim_rcsum) before anything sees the packet
        frame, trailer = original[: layout.ip_end], original[layout.ip_end :]
        layout = parse_layout(frame)
        assert layout is not None
    state = classify_l4_checksum(frame, layout) if options.input_csum == "auto" else L4Checksum(options.input_csum)
    udp = layout.l4_proto == IPPROTO_UDP
    dport = int.from_bytes(frame[layout.transport + 2 : layout.transport + 4], "big") if udp else None
    tunnel = tunnel_of(layout.l4_proto, dport, options.tunnel_port_kinds)
    if tunnel is not None and not options.actions:
        if over:
            raise NotSegmented(f"{tunnel} payload not TCP/UDP over IP: not segmented",
                               f"a {tunnel} packet over the MTU whose payload is not TCP or UDP over IP")
        return PacketResult(Outcome.UNCHANGED, [original], input_csum=state, labels=layout.labels)
    skb = packet_from_capture(frame, layout, options.kernel)
    skb.ip6_frag_id = options.ipv6_frag_id
    if options.actions:
        skb.encapsulation = _left_encapsulated(frame, options, over)
    _run_actions(skb, options.actions)
    # actions may add or remove labels and tags: measure headers as they now are
    after = (parse_layout(_wire_bytes(skb)) or layout) if options.actions else layout
    forced = options.udp_gso_type if udp and options.gso_type == "auto" and options.udp_gso_type else options.gso_type
    gso_type = gso_type_for(after, forced, tcp_ecn=options.tcp_ecn) | fixed_id_bits(options, tunnel=False)
    gso_size = options.gso_size or gso_size_for_mtu(after, options.device.mtu, gso_type)
    payload = after.frame_len - after.transport if gso_type & gso_type.UDP else after.payload_len
    if gso_size <= 0:
        # no kernel check: a device of this MTU cannot carry the packet's headers at all (softgso's limit)
        raise NotSegmented(MTU_NO_ROOM, f"MTU {options.device.mtu} leaves no room for payload behind the headers")
    if payload > gso_size and udp and options.udp_gso_type is None and not over:
        payload = 0  # not over the MTU: a datagram like any other (--gso-size alone says nothing of UDP)
    if payload > gso_size and udp and options.udp_gso_type is None:
        # no guessing: a datagram is cut only when its sender asked for it (UDP_SEGMENT, UFO), and a
        # capture does not say so (a checksum seed says CHECKSUM_PARTIAL, not GSO)
        raise NotSegmented("UDP datagram over the MTU without GSO metadata",
                           "a UDP datagram over the MTU without GSO metadata (--udp-gso udp_l4 or --vnet-hdr "
                           "to segment it)")
    if payload > gso_size and layout.l4_proto == IPPROTO_TCP:
        _refuse_signed(frame[layout.transport + TCP_MIN_HLEN : layout.payload])
    if payload > gso_size:
        set_checksum_state(skb, layout, state)
        skb.gso_size = gso_size
        skb.gso_type = gso_type
    else:
        # sent as one frame: what its NIC fills is filled (an IPv4 header checksum left 0, an L4 field
        # holding what offloading senders leave: a seed, a seed without the length, 0; any other
        # value only beside an IPv4 header left to the NIC); anything else leaves as it came
        completed = _complete_ipv4_header(skb, layout)
        offloaded = state in (L4Checksum.PARTIAL, L4Checksum.SEED_NOLEN) or (completed and state == L4Checksum.INVALID)
        if state == L4Checksum.ZERO and not (udp and layout.ip_version == 4):  # UDP over IPv4: 0 is "none"
            offloaded = True
        if offloaded:
            set_checksum_state(skb, layout, state)
        elif not options.actions and not completed:
            return PacketResult(Outcome.UNCHANGED, [original], input_csum=state, labels=layout.labels)
    result = _transmit(skb, options, input_csum=state)
    result.labels = after.labels
    if trailer and result.outcome == Outcome.CHANGED:
        result.frames = [result.frames[0] + trailer]  # sent as one frame: its trailer stays
    return result


def _refuse_signed(tcp_options: bytes | bytearray | memoryview) -> None:
    """A signed TCP segment is never cut: Linux never builds one as a super-packet (sk_gso_disable on
    a socket with an MD5 or AO key), and its signature covers it whole."""
    signature = tcp_signature(tcp_options)
    if signature is not None:
        raise NotSegmented(f"{signature.split(' (')[0]} option: not segmented",
                           f"a TCP segment over the MTU signed with the {signature} option: Linux never "
                           "segments one (a socket with a signing key has GSO off) and no piece would "
                           "match its signature")


def fixed_id_bits(options: SegmentOptions, *, tunnel: bool) -> GsoType:
    """The fixed-ID gso_type bits the options ask for, as the chosen generation spells them: 6.1-6.17 have
    one bit (TCP_FIXEDID, read at the inner or only level, so an outer ID cannot be fixed); mainline has
    TCP_FIXEDID_OUTER for the outer or only header and TCP_FIXEDID_INNER for a tunnel's inner header, as
    tcp4_gro_complete sets them (ip_fixedid * SKB_GSO_TCP_FIXEDID)."""
    if options.kernel != "mainline":
        return GsoType.TCP_FIXEDID if options.fixed_id else GsoType.NONE
    bits = GsoType.NONE
    if options.fixed_outer_id or (options.fixed_id and not tunnel):
        bits |= GsoType.TCP_FIXEDID_OUTER
    if options.fixed_id and tunnel:
        bits |= GsoType.TCP_FIXEDID_INNER
    return bits


def _tunnel_from_capture(original: bytes, tunnel: TunnelLayout, options: SegmentOptions, over: bool) -> PacketResult:
    """A tunnel super-packet as the sending host's tunnel driver built it, then transmitted (spec 2.5).

    The inner checksum is classified as the plain path classifies it and replaced by the seed; the
    outer UDP checksum field says which tunnel bit the driver set: 0 -> UDP_TUNNEL (copied to every
    segment), anything else -> UDP_TUNNEL_CSUM with the seed udp_set_csum writes (the pseudo-header
    sum over the 32-bit UDP length). A GRE C bit means GRE_CSUM; IP-in-IP gets IPXIP4 / IPXIP6.
    """
    frame = original[: tunnel.ip_end]
    trailer = original[tunnel.ip_end :]
    inner = _inner_layout(frame, tunnel)
    state = classify_l4_checksum(inner.sub, inner.layout) if options.input_csum == "auto" else \
        L4Checksum(options.input_csum)
    l2_len = link_header_len(frame)
    udp_inner = tunnel.inner_l4_proto == IPPROTO_UDP
    big = _big_lengths(frame, tunnel)
    if udp_inner:
        gso_type = GsoType.UDP_L4 if options.udp_gso_type == "udp_l4" else None
    else:
        gso_type = GsoType.TCPV4 if tunnel.inner_version == 4 else GsoType.TCPV6
        if options.tcp_ecn:
            gso_type |= GsoType.TCP_ECN
        gso_type |= fixed_id_bits(options, tunnel=True)
    gso_size = options.gso_size or options.device.mtu - (tunnel.payload - l2_len)
    payload = len(frame) - tunnel.payload
    if not over and not options.gso_size or payload <= gso_size:
        return PacketResult(Outcome.UNCHANGED, [original], input_csum=state)
    if gso_type is None:
        kind = ("UDP datagram over the MTU without GSO metadata" if options.udp_gso_type is None
                else "UFO inside a tunnel: not supported")
        raise NotSegmented(kind, f"a UDP datagram inside a {tunnel.kind} tunnel over the MTU without GSO "
                                 "metadata (--udp-gso udp_l4 to segment it)")
    if gso_size <= 0:
        raise NotSegmented(MTU_NO_ROOM,
                           f"MTU {options.device.mtu} leaves no room for payload behind the tunnel headers")
    if not udp_inner:
        _refuse_signed(inner.sub[inner.layout.transport + TCP_MIN_HLEN : inner.layout.payload])
    if inner.layout.length_problem is not None or inner.layout.trailer_len:
        # GSO never reads these fields, but bytes behind the inner packet would be cut as its payload
        raise NotSegmented("lengths contradict (capture check, not the kernel's)",
                           f"inside the {tunnel.kind} tunnel: {inner.layout.length_problem or 'bytes behind the packet'}")
    skb = packet_from_capture(frame, None, options.kernel)
    shift = len(skb.data) - len(frame)  # an outer tag moved out of band
    if eth_p_mpls(skb.protocol):
        # beyond the kernel (tunnel_in_labels): the labels are outer L2 bytes, copied onto every segment
        skb.protocol = ETH_P_IP if tunnel.outer_version == 4 else ETH_P_IPV6
        skb.network_header = tunnel.outer_network + shift
    skb.encapsulation = True
    skb.inner_protocol = tunnel.inner_protocol
    skb.inner_protocol_type = ENCAP_TYPE_ETHER
    if tunnel.inner_ipproto:  # IP-in-IP under FOU/GUE: skb_set_inner_ipproto (ipip, sit, ip6tnl)
        skb.inner_protocol_type = ENCAP_TYPE_IPPROTO
        skb.inner_ipproto = tunnel.inner_ipproto
    skb.inner_mac_header = tunnel.inner_mac + shift
    skb.inner_network_header = tunnel.inner_network + shift
    skb.inner_transport_header = tunnel.inner_transport + shift
    skb.transport_header = tunnel.outer_l4 + shift
    if tunnel.tunnel_bits & (GsoType.UDP_TUNNEL_CSUM):
        udp = tunnel.outer_l4 + shift
        struct.pack_into("!H", skb.data, udp + 6, _outer_udp_seed(skb.data, tunnel.outer_network + shift,
                                                                   tunnel.outer_version, udp))
    # the inner checksum as the sending stack left it: CHECKSUM_PARTIAL with the seed
    check_at = tunnel.inner_transport + shift + (16 if not udp_inner else 6)
    if state != L4Checksum.PARTIAL:
        struct.pack_into("!H", skb.data, check_at, pseudo_seed(inner.sub, inner.layout))
    skb.ip_summed = IpSummed.PARTIAL
    skb.csum_start = tunnel.inner_transport + shift
    skb.csum_offset = check_at - skb.csum_start
    skb.gso_size = gso_size
    skb.gso_type = gso_type | tunnel.tunnel_bits
    result = _transmit(skb, options, input_csum=state)
    if big:
        result.note = "BIG TCP inside a tunnel: segmented by the upstream rules (no kernel vector proves it)"
    if trailer and result.outcome == Outcome.CHANGED:
        result.frames = [result.frames[0] + trailer]
    return result


def _left_encapsulated(frame: bytes, options: SegmentOptions, over: bool) -> bool:
    """Whether the tunnel driver that built this captured frame left skb->encapsulation set, so that
    an MPLS push on it is refused (skb_mpls_push; spec 7.4, kernel vectors mplspush_underlay_*).

    iptunnel_handle_offloads sets it on every tunnel packet and clears it again only for a packet
    that is not GSO and whose inner checksum is not left to the device: a tunnel super-packet, or
    one packet with its inner checksum still a CHECKSUM_PARTIAL seed, stays encapsulated.
    """
    try:
        tunnel = parse_tunnel(frame, options.tunnel_port_kinds, True)
    except TunnelNotSegmented:
        return over  # a tunnel Linux never builds super-packets of: only its size says GSO
    if tunnel is None:
        return False
    if over:
        return True
    inner = _inner_layout(frame[: tunnel.ip_end], tunnel)
    return classify_l4_checksum(inner.sub, inner.layout) in (L4Checksum.PARTIAL, L4Checksum.SEED_NOLEN)


def _after_tunnel_actions(original: bytes, options: SegmentOptions) -> PacketResult:
    """Actions that push or pop a tunnel, then the frame they make as a capture of it (spec 2.5).

    A capture's packet gets its GSO metadata only after the actions (what fits the MTU then), so a
    frame a push-vxlan/-geneve/-gre leaves is read the way a tunnel frame captured on the sending host
    is: the tunnel driver's state (encapsulation, inner offsets, inner_protocol, the tunnel's GSO
    bits from the outer checksum) taken from the bytes the push wrote, as _tunnel_from_capture does.
    """
    from .actions import tunnel_ports

    skb = packet_from_capture(original, parse_layout(original), options.kernel)
    _run_actions(skb, options.actions)
    wire = _wire_bytes(skb)
    ports = options.tunnel_ports + tunnel_ports(options.actions)
    result = _from_capture(wire, options.replace(actions=(), tunnel_ports=ports))
    if result.outcome == Outcome.UNCHANGED and result.frames != [original]:
        result.outcome = Outcome.CHANGED  # the actions' frame, sent as it is
    return result


class _InnerView(FrozenValueClass):
    """The inner packet as a frame of its own (a synthetic Ethernet header in front) and its layout."""

    sub: bytes
    layout: FrameLayout

    def __init__(self, sub: bytes, layout: FrameLayout) -> None:
        init_fields(self, locals())


def _inner_layout(frame: bytes, tunnel: TunnelLayout) -> _InnerView:
    ethertype = ETH_P_IP if tunnel.inner_version == 4 else ETH_P_IPV6
    sub = bytes(12) + ethertype.to_bytes(2, "big") + frame[tunnel.inner_network :]
    layout = parse_layout(sub)
    if layout is None:
        raise NotSegmented("lengths contradict (capture check, not the kernel's)",
                           f"the packet inside the {tunnel.kind} tunnel cannot be parsed")
    return _InnerView(sub, layout)


def _big_lengths(frame: bytes, tunnel: TunnelLayout) -> bool:
    """The outer IP length (or the outer UDP length) is 0: BIG TCP inside a tunnel, as 2026 kernels build it."""
    n = tunnel.outer_network
    if tunnel.outer_version == 4:
        zero_ip = frame[n + 2 : n + 4] == b"\0\0"
    else:
        zero_ip = frame[n + 4 : n + 6] == b"\0\0"
    return zero_ip and len(frame) - n > 65535


def _outer_udp_seed(data: bytearray, network: int, version: int, udp: int) -> int:
    """What udp_set_csum writes on a GSO packet: the pseudo-header sum over the 32-bit UDP length."""
    if version == 4:
        src, dst = bytes(data[network + 12 : network + 16]), bytes(data[network + 16 : network + 20])
    else:
        src, dst = bytes(data[network + 8 : network + 24]), bytes(data[network + 24 : network + 40])
    return pseudo_header_sum(src, dst, IPPROTO_UDP, len(data) - udp)


def _complete_ipv4_header(skb: Packet, layout: FrameLayout) -> bool:
    """Fill an IPv4 header checksum a sender's IP checksum offload left 0, as its NIC would; True if filled."""
    if layout.ip_version != 4:
        return False
    network = len(skb.data) - (layout.frame_len - layout.network)
    header = skb.data[network : network + layout.l3_len]
    if header[10:12] != b"\0\0" or ones_sum(bytes(header)) == 0xFFFF:
        return False
    struct.pack_into("!H", skb.data, network + 10, ipv4_header_checksum(header))
    return True


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
        outcome = Outcome.CHANGED
    return PacketResult(outcome, [bytes(p.data) for p in packets], input_csum=input_csum, gso_size=gso_size,
                        packets=packets)


def link_type_report(record: Any, convertible: bool, mtu: int) -> tuple[str, str, bool]:
    """(kind, reason, over the MTU) of a record not read as a packet: of a link type softgso does not
    segment (``convertible`` False), or of one it does but not IP or Ethernet (a cooked record's own codes)."""
    from .io import LINKTYPE_NAMES, link_payload_length

    linktype = record.linktype
    if convertible:
        return (f"link type {linktype} record not IP or Ethernet",
                f"link type {linktype} record that is neither IP nor Ethernet", len(record.data) > mtu)
    size = link_payload_length(record)
    name = LINKTYPE_NAMES.get(linktype)
    what = f"link type {linktype} ({name})" if name else f"unknown link type {linktype}"
    return (f"link type {linktype} not segmented",
            f"{what}: not segmented (softgso segments Ethernet, Linux cooked SLL/SLL2, NULL, LOOP and raw IP)",
            size is not None and size > mtu)


def snapped_report(frame: bytes | memoryview, caplen: int, orig_len: int, mtu: int) -> tuple[str, str, bool]:
    """(kind, reason, over the MTU) of a record stored shorter than it was on the wire: passed through."""
    # the frame on the wire: the bytes kept plus those cut (a cooked header is not the frame's)
    over = len(frame) + orig_len - caplen - link_header_len(frame) > mtu
    return "snapped record", f"snapped record ({caplen} of {orig_len} bytes): nothing to segment", over


# reports listed one by one (a capture of millions of records of a link type not segmented would
# otherwise list millions); past this they are counted by kind only
REPORT_LIMIT = 10_000


class Summary(ValueClass):
    """Counts for the closing table: every input record lands in exactly one outcome."""

    records_in: int
    records_out: int
    bytes_in: int
    bytes_out: int
    outcomes: Counter[str]
    input_checksums: Counter[str]
    partial_out: int
    over_mtu: int  # records passed through with a frame over the MTU (each one reported)
    # the first REPORT_LIMIT reports, (0-based index, kind, reason); every one counted by kind
    reports: list[tuple[int, str, str]]
    reports_omitted: int
    # kind -> [count, first 0-based index, first reason], in order of first appearance
    kinds: dict[str, list[Any]]
    # remarks on records that were handled, by text (e.g. BIG TCP inside a tunnel: no kernel vector)
    notes: Counter[str]
    # which engine ran (softgso.bulk.stream.make_bulk_stream names a bulk one) and how many records its
    # bulk code took itself (segmented by a plan, or copied through in a run); the rest went one by one
    engine: str
    bulk_records: int
    bulk_bytes: int  # the bytes of those records (--jobs weighs them: softgso.bulk.stream.bulk_share)

    def __init__(self, records_in: int = 0, records_out: int = 0, bytes_in: int = 0, bytes_out: int = 0,
                 outcomes: Counter[str] | None = None, input_checksums: Counter[str] | None = None,
                 partial_out: int = 0, over_mtu: int = 0, reports: list[tuple[int, str, str]] | None = None,
                 reports_omitted: int = 0, kinds: dict[str, list[Any]] | None = None,
                 notes: Counter[str] | None = None, engine: str = "scalar", bulk_records: int = 0,
                 bulk_bytes: int = 0) -> None:
        self.records_in = records_in
        self.records_out = records_out
        self.bytes_in = bytes_in
        self.bytes_out = bytes_out
        self.outcomes = Counter() if outcomes is None else outcomes
        self.input_checksums = Counter() if input_checksums is None else input_checksums
        self.partial_out = partial_out
        self.over_mtu = over_mtu
        self.reports = [] if reports is None else reports
        self.reports_omitted = reports_omitted
        self.kinds = {} if kinds is None else kinds
        self.notes = Counter() if notes is None else notes
        self.engine = engine
        self.bulk_records = bulk_records
        self.bulk_bytes = bulk_bytes

    def report(self, index: int, kind: str, reason: str) -> None:
        """Keep one record's report: counted by kind, listed while fewer than REPORT_LIMIT are."""
        entry = self.kinds.setdefault(kind, [0, index, reason])
        entry[0] += 1
        if len(self.reports) < REPORT_LIMIT:
            self.reports.append((index, kind, reason))
        else:
            self.reports_omitted += 1

    @property
    def reported(self) -> int:
        """Records reported (refused or not segmented)."""
        return len(self.reports) + self.reports_omitted

    def add(self, index: int, in_len: int, result: PacketResult) -> None:
        """Count one input record and what came out for it."""
        self.records_in += 1
        self.bytes_in += in_len
        self.records_out += len(result.frames)
        self.bytes_out += sum(len(f) for f in result.frames)
        self.outcomes[result.outcome.value] += 1
        if result.input_csum is not None:
            self.input_checksums[result.input_csum.value] += 1
        self.partial_out += sum(1 for p in result.packets if p.ip_summed == IpSummed.PARTIAL)
        self.over_mtu += result.over_mtu
        if result.note:
            self.notes[result.note] += 1
        if result.kind:
            self.report(index, result.kind, result.reason)

    def retract(self, index: int, in_len: int, result: PacketResult) -> None:
        """Take back ``add(index, in_len, result)``: the frontend could not write what came out."""
        self.records_in -= 1
        self.bytes_in -= in_len
        self.records_out -= len(result.frames)
        self.bytes_out -= sum(len(f) for f in result.frames)
        self.outcomes[result.outcome.value] -= 1
        if result.input_csum is not None:
            self.input_checksums[result.input_csum.value] -= 1
        self.partial_out -= sum(1 for p in result.packets if p.ip_summed == IpSummed.PARTIAL)
        self.over_mtu -= result.over_mtu
        if result.note:
            self.notes[result.note] -= 1
        if result.kind and self.reports and self.reports[-1][0] == index:
            self.reports.pop()
            entry = self.kinds[result.kind]
            entry[0] -= 1
            if not entry[0]:
                del self.kinds[result.kind]

    def checkpoint(self) -> tuple[Any, ...]:
        """Everything counted so far, for :meth:`rewind` (a bulk stream that gives records back to the
        general reader after counting them: IN cut short underneath it)."""
        return (self.records_in, self.records_out, self.bytes_in, self.bytes_out, self.outcomes.copy(),
                self.input_checksums.copy(), self.partial_out, self.over_mtu, len(self.reports),
                self.reports_omitted, {kind: list(entry) for kind, entry in self.kinds.items()}, self.notes.copy(),
                self.bulk_records, self.bulk_bytes)

    def rewind(self, checkpoint: tuple[Any, ...]) -> None:
        """Back to the counts of ``checkpoint()`` (reports only ever appended since are dropped)."""
        (self.records_in, self.records_out, self.bytes_in, self.bytes_out, self.outcomes, self.input_checksums,
         self.partial_out, self.over_mtu, reports, self.reports_omitted, self.kinds, self.notes,
         self.bulk_records, self.bulk_bytes) = checkpoint
        del self.reports[reports:]

    def add_passthrough(self, index: int, nbytes: int, kind: str, reason: str, over_mtu: bool) -> None:
        """Count a record no engine could read as a packet (snapped, of a link type not segmented):
        passed through unchanged and reported."""
        self.records_in += 1
        self.records_out += 1
        self.bytes_in += nbytes
        self.bytes_out += nbytes
        self.outcomes[Outcome.NOT_SEGMENTED.value] += 1
        self.over_mtu += over_mtu
        self.report(index, kind, reason)

    def add_run(self, packets: int, frame_len: int, segments: int, bytes_out: int, states: dict[str, int],
                partial: bool) -> None:
        """Count ``packets`` same-shape super-packets segmented in bulk, as ``add`` would one by one."""
        self.records_in += packets
        self.bytes_in += packets * frame_len
        self.records_out += packets * segments
        self.bytes_out += packets * bytes_out
        self.outcomes[Outcome.SEGMENTED.value] += packets
        self.bulk_records += packets
        self.bulk_bytes += packets * frame_len
        for state, count in states.items():
            self.input_checksums[state] += count
        if partial:
            self.partial_out += packets * segments

    def add_unchanged(self, packets: int, nbytes: int, states: dict[str, int]) -> None:
        """Count ``packets`` frames passed through unchanged in bulk, as ``add`` would one by one."""
        self._add_one_to_one(packets, nbytes, Outcome.UNCHANGED)
        for state, count in states.items():
            self.input_checksums[state] += count

    def add_completed(self, packets: int, nbytes: int, left: int) -> None:
        """Count ``packets`` short frames whose partial seed was completed in bulk (``left`` of them left
        for the device instead), as ``add`` would one by one: each sent as one changed frame."""
        self._add_one_to_one(packets, nbytes, Outcome.CHANGED)
        self.input_checksums[L4Checksum.PARTIAL.value] += packets
        self.partial_out += left

    def _add_one_to_one(self, packets: int, nbytes: int, outcome: Outcome) -> None:
        """``packets`` records taken in bulk, each sent as one frame of its length (``nbytes`` in all)."""
        self.records_in += packets
        self.bytes_in += nbytes
        self.records_out += packets
        self.bytes_out += nbytes
        self.outcomes[outcome.value] += packets
        self.bulk_records += packets
        self.bulk_bytes += nbytes

    def merge(self, other: Summary) -> None:
        """Add a later part's counts (as if its packets had been added here one by one, in order)."""
        self.records_in += other.records_in
        self.records_out += other.records_out
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.outcomes.update(other.outcomes)
        self.input_checksums.update(other.input_checksums)
        self.partial_out += other.partial_out
        self.over_mtu += other.over_mtu
        self.notes.update(other.notes)
        self.bulk_records += other.bulk_records
        self.bulk_bytes += other.bulk_bytes
        if other.engine != "scalar":
            self.engine = other.engine
        for kind, (count, first, reason) in other.kinds.items():
            self.kinds.setdefault(kind, [0, first, reason])[0] += count
        room = max(REPORT_LIMIT - len(self.reports), 0)
        self.reports.extend(other.reports[:room])
        self.reports_omitted += other.reports_omitted + len(other.reports[room:])

    def reports_by_kind(self) -> list[tuple[str, int, int, str]]:
        """(kind, count, first 0-based index, first reason) per kind of report, in order of first appearance."""
        return [(kind, count, first, reason) for kind, (count, first, reason) in self.kinds.items()]

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form (frames numbered from 1, as tshark numbers them)."""
        return {
            "records_in": self.records_in,
            "records_out": self.records_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "outcomes": {o.value: self.outcomes.get(o.value, 0) for o in Outcome},
            "over_mtu_not_segmented": self.over_mtu,
            # by name, as the table lists them: the same whichever engine counted them first
            "input_checksums": dict(sorted((state, count) for state, count in self.input_checksums.items() if count)),
            "partial_checksums_out": self.partial_out,
            "reports": [{"frame": i + 1, "kind": k, "reason": r} for i, k, r in self.reports],
            "reports_omitted": self.reports_omitted,
            "notes": {text: count for text, count in self.notes.items() if count},
            "report_kinds": [{"kind": k, "count": c, "first_frame": i + 1, "first_reason": r}
                             for k, c, i, r in self.reports_by_kind()],
            "engine": {"name": self.engine, "records_in_bulk": self.bulk_records,
                       "records_one_by_one": self.records_in - self.bulk_records},
        }


def apply_actions(frame: bytes, actions: tuple[Action, ...]) -> tuple[bytes, SoftGSOError | None]:
    """Apply actions to one frame without transmitting it (no segmentation, no checksum work).

    An out-of-band tag left by the actions is written into the bytes, as a device would insert it.
    Returns the new frame, or the original frame and the error that refused it.
    """
    layout = parse_layout(frame)
    skb = packet_from_capture(frame, layout)
    try:
        _run_actions(skb, actions)
    except SoftGSOError as error:
        return frame, error
    return _wire_bytes(skb), None


class SegmentPerFrame:
    """What ``segment`` does with one frame the bulk path leaves: process_frame, counted and reported."""

    def __init__(self, options: SegmentOptions, summary: Summary) -> None:
        self.options = options
        self.summary = summary
        self._last: tuple[int, bytes, Any] | None = None  # (index, the frame as it came, its result)
        self.comment: str | None = None  # the record's pcapng comment, set by the record loop

    def __call__(self, index: int, frame: bytes) -> tuple[list[bytes], str | None]:
        options = self.options
        if self.comment is not None:
            options = options_from_gso_comment(options, self.comment)
            self.comment = None
        result = process_frame(frame, options)
        self.summary.add(index, len(frame), result)  # with its report, if any
        self._last = (index, frame, result)
        return result.frames, None

    def unwritable(self, index: int, nbytes: int, reason: str, kind: str = "result not expressible in the link type",
                   over_mtu: bool = False) -> None:
        """The record's output cannot be written as it is (in its link type, with an FCS that is right):
        it passes through instead, reported under ``kind``, and counted over the MTU when the frame it
        holds is (it would have been cut, or was over it already): no frame over the MTU is written
        without that count."""
        if self._last is not None and self._last[0] == index:
            _, frame, result = self._last
            self.summary.retract(index, len(frame), result)
            over_mtu = over_mtu or mtu_bytes(frame) > self.options.device.mtu
        self.summary.add_passthrough(index, nbytes, kind, reason, over_mtu)


def options_from_gso_comment(options: SegmentOptions, comment: str) -> SegmentOptions:
    """A packet's GSO metadata from the pcapng comment `softgso coalesce` writes
    (``gso_size=N gso_type=tcpv4|tcpv6|udp_l4[,ecn][,fixedid] segs=K``), unless the user gave it
    (--gso-size, --gso-type, --vnet-hdr win); without such a comment, ``options`` as they are."""
    from .gro import parse_gso_comment

    meta = parse_gso_comment(comment)
    if meta is None or options.vnet_hdr is not None or meta["gso_type"] not in ("tcpv4", "tcpv6", "udp_l4"):
        return options
    flags = set(meta["flags"])
    fixed_id, fixed_outer_id = "fixedid" in flags, False
    if options.kernel == "mainline" and flags & {"ipxip4", "ipxip6", "gre"}:
        # mainline GRO marks each header of a tunnel aggregate: fixedid the outer, fixedid_inner the inner
        fixed_id, fixed_outer_id = "fixedid_inner" in flags, "fixedid" in flags
    return options.replace(gso_size=options.gso_size or meta["gso_size"],
                   gso_type=meta["gso_type"] if options.gso_type == "auto" else options.gso_type,
                   tcp_ecn=options.tcp_ecn or "ecn" in flags, fixed_id=options.fixed_id or fixed_id,
                   fixed_outer_id=options.fixed_outer_id or fixed_outer_id)


def segment_per_frame(options: SegmentOptions, summary: Summary) -> SegmentPerFrame:
    """What ``segment`` does with one frame the bulk path leaves."""
    return SegmentPerFrame(options, summary)


__all__ = [
    "PASSED_THROUGH",
    "NotSegmented",
    "Outcome",
    "PacketResult",
    "SegmentOptions",
    "SegmentPerFrame",
    "Summary",
    "apply_actions",
    "link_type_report",
    "options_from_gso_comment",
    "process_frame",
    "segment_per_frame",
    "snapped_report",
]
