"""The vectorised twin of the scalar engine for the common shapes: many super-packets at once.

Strategy (as aioquic's C buffer stands behind the pure-Python one): the scalar path
(:func:`softgso.job.process_frame`, hence :func:`softgso.xmit.transmit` and the offload table)
stays the reference and decides everything; this module only repeats, in bulk, what it decided.

* A *shape* is everything in a frame that can change a decision: its length and every header
  byte except the per-packet fields (IPv4 ID and header checksum, TCP seq/ack/flags/window/
  checksum/urgent pointer/options, UDP checksum). Packets of one shape get the same segment count,
  sizes, outcome, checksum mode and header template.
* A tunnelled frame (as the scalar path recognises it, offload.tunnels.parse_tunnel) has a
  :class:`TunnelShape`: its key keeps every header byte to the inner payload but the outer and
  inner per-packet fields (outer IPv4 ID and checksum, the outer UDP checksum's value but not its
  being 0, a GRE checksum, the inner ones above); its plan adds the outer IPv4 ID and checksum and
  the outer UDP or GRE checksum to the inner packet's fields (__skb_udp_tunnel_segment,
  gre_gso_segment, and inet_gso_segment for both IP headers).
* The first packet of a shape is run through the scalar path; its segments become the shape's
  :class:`SegmentPlan` (templates for a full and for the last segment). The plan is accepted only
  if the bulk computation reproduces that packet's scalar output byte for byte; otherwise the
  shape stays on the scalar path for good (``None`` plan). Refusals, UFO, devices that keep the
  packet whole, actions, virtio headers: all scalar.
* A run of packets of one shape, given as an ``(n, frame_len)`` uint8 array, is segmented with a
  handful of numpy operations per run, none per segment: payload pieces are copied once into the
  output, their ones'-complement sums are taken over native-endian 32-bit words (one fold and
  byte swap per piece, see :func:`word_sums`), and every header field is derived from the input's
  fields and the plan's constants by the kernel's own formulas (tcp_gso_segment, inet_gso_segment,
  ipv6_gso_segment, __udp_gso_segment), incl. csum_fold's 0/0xFFFF edges.

numpy is imported lazily: ``import softgso`` does not import it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from ..checksum import ones_sum
from ..constants import (
    ETH_HLEN,
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_MPLS_MC,
    ETH_P_MPLS_UC,
    IPPROTO_DSTOPTS,
    IPPROTO_HOPOPTS,
    IPPROTO_ROUTING,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV6_HLEN,
    TCP_FLAG_CWR,
    TCP_FLAG_FIN,
    TCP_FLAG_PSH,
    TCP_MIN_HLEN,
)
from ..features import NETIF_F_ALL_TSO, GsoType, IpSummed
from ..offload.tunnels import GTP_U_PORT, UDP_TUNNEL_PORTS, TunnelLayout, TunnelNotSegmented, parse_tunnel
from ..prepare import (
    FrameLayout,
    L4Checksum,
    check_offset,
    parse_layout,
    pseudo_seed,
    seed_without_length,
    tcp_signature,
)
from ..valueclass import FrozenFieldsClass, FrozenValueClass, ValueClass, init_fields, same_fields
from .native import load_extension

TYPE_CHECKING = False  # typing costs start-up milliseconds; mypy reads this name as typing's
if TYPE_CHECKING:
    from typing import Any

    import numpy as np

    from ..job import PacketResult, SegmentOptions

# 0xFFFF: ones'-complement sums are kept modulo this (65536 == 1); the kernel's 0 and 0xFFFF are
# told apart only where it can tell them apart (see _complement).
ONES = 0xFFFF


def word_sums(pieces: np.ndarray, native: np.ndarray | None = None) -> np.ndarray:
    """Sum of each row's big-endian 16-bit words modulo 0xFFFF (odd length zero-padded), as int64.

    The bulk of a row is summed as native little-endian 32-bit words into 64 bits: a 32-bit word
    is congruent to the sum of its two 16-bit halves, and a little-endian half is 256 times its
    big-endian reading modulo 0xFFFF, so one multiplication by 256 per row is the byte swap.
    ``native``: those 64-bit sums of each row's ``length & ~3`` bytes, already taken (by the C
    accelerator while copying the rows).
    """
    import numpy as np

    length = pieces.shape[-1]
    # numpy sums an array of words in place only if every word is aligned (else it copies each
    # block to an aligned buffer first, at half the speed): 16-bit words into 32 bits where the
    # pieces lie at even addresses but not all at multiples of 4 (up to 128 KiB: no overflow)
    word = 4 if native is not None or _CSUM is not None or _aligned(pieces, 4) or not _aligned(pieces, 2) or length > 1 << 17 else 2
    main = length & -word
    total = np.zeros(pieces.shape[:-1], dtype=np.int64)
    if main:
        if native is not None:
            pass  # the sums of the main words, taken by the caller (copy_u32_sums)
        elif word == 4 and _CSUM is not None and pieces.strides[-1] == 1 and pieces.size >= 1 << 16:
            native = _accelerated_sums(pieces, main)
        elif word == 4:
            native = pieces[..., :main].view("<u4").sum(axis=-1, dtype=np.uint64)
        else:
            native = pieces[..., :main].view("<u2").sum(axis=-1, dtype=np.uint32)
        total += ((native % ONES) * 256 % ONES).astype(np.int64)
    tail = length - main
    if tail >= 1:
        total += pieces[..., main].astype(np.int64) << 8
    if tail >= 2:
        total += pieces[..., main + 1]
    if tail >= 3:
        total += pieces[..., main + 2].astype(np.int64) << 8
    return total % ONES


# softgso.bulk._csum: the optional C word summer (numpy alone without it)
_CSUM: Any = load_extension("_csum")
_UNSIGNED_RUN: Any = getattr(load_extension("_segment"), "unsigned_run", None)


def _accelerated_sums(pieces: np.ndarray, main: int) -> np.ndarray:
    """``pieces[..., :main].view("<u4").sum(axis=-1, dtype=np.uint64)``, by the C accelerator: same integers."""
    import numpy as np

    found = _memory_of(pieces)
    if found is None:
        return pieces[..., :main].view("<u4").sum(axis=-1, dtype=np.uint64)
    block, start = found
    offsets = _row_offsets(pieces) + start
    out = np.empty(offsets.shape, dtype=np.uint64)
    _CSUM.u32_sums(block, offsets, main, out)
    return out


def _memory_of(array: np.ndarray) -> tuple[np.ndarray, int] | None:
    """The whole buffer ``array`` is a view of (flat uint8) and the offset of ``array``'s first byte in it.

    The C accelerator is handed that buffer, never a raw address, so that it checks every range it
    reads or writes against the buffer's length. None when the memory is not one contiguous buffer
    (the caller then stays on numpy).
    """
    import numpy as np

    owner: Any = array
    # up the chain of views (as_strided's views hang on a DummyArray in between) to what owns the memory
    while (base := getattr(owner, "base", None)) is not None:
        owner = base
        if not (isinstance(base, np.ndarray) or hasattr(base, "__array_interface__")):
            break  # bytes, mmap, memoryview: the exporter itself
    try:
        block = np.frombuffer(owner, dtype=np.uint8)
    except (TypeError, ValueError, BufferError):
        return None
    return block, array.ctypes.data - block.ctypes.data


def _row_offsets(pieces: np.ndarray) -> np.ndarray:
    """The byte offset of every row (last axis) of ``pieces`` from its first byte, C-contiguous int64."""
    import numpy as np

    offsets = np.zeros(pieces.shape[:-1], dtype=np.int64)
    for axis, (extent, stride) in enumerate(zip(pieces.shape[:-1], pieces.strides[:-1], strict=True)):
        shape = [1] * offsets.ndim
        shape[axis] = extent
        offsets += (np.arange(extent, dtype=np.int64) * stride).reshape(shape)
    return offsets


def _copy_sums(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``target[...] = source`` (same shape, rows contiguous) and their native 32-bit word sums, in one pass (C)."""
    import numpy as np

    if source.shape != target.shape or source.strides[-1] != 1 or target.strides[-1] != 1:
        raise ValueError("copy_sums: rows must be contiguous and of one shape")
    if not target.flags.writeable:
        raise ValueError("copy_sums: read-only target")
    source_found, target_found = _memory_of(source), _memory_of(target)
    if source_found is None or target_found is None or not target_found[0].flags.writeable:
        target[...] = source
        return source[..., : source.shape[-1] & ~3].view("<u4").sum(axis=-1, dtype=np.uint64)
    (source_block, source_start), (target_block, target_start) = source_found, target_found
    out = np.empty(source.shape[:-1], dtype=np.uint64)
    _CSUM.copy_u32_sums(source_block, _row_offsets(source) + source_start, target_block,
                        _row_offsets(target) + target_start, source.shape[-1], out)
    return out


def _aligned(array: np.ndarray, size: int) -> bool:
    """Whether every element of ``array`` viewed as ``size``-byte words along its last axis is aligned."""
    if array.ctypes.data % size:
        return False
    return all(stride % size == 0 for stride, extent in zip(array.strides[:-1], array.shape[:-1], strict=True)
               if extent > 1)


def _be16(array: np.ndarray, offset: int) -> np.ndarray:
    """The big-endian 16-bit field at ``offset`` of every row, as int64."""
    import numpy as np

    return (array[..., offset].astype(np.int64) << 8) | array[..., offset + 1]


def _complement(total: np.ndarray) -> np.ndarray:
    """csum_fold of a sum whose integer value is known to be non-zero, given modulo 0xFFFF.

    ones_sum gives 0xFFFF for a multiple of 0xFFFF, whose complement is 0; any other residue m
    folds to ~m, i.e. 0xFFFF - m: both are (-m) mod 0xFFFF.
    """
    return (-total) % ONES


def _field(headers: np.ndarray, offset: int, dtype: str) -> np.ndarray:
    """The big-endian field at ``offset`` of every header row, as an assignable view."""
    import numpy as np

    size = np.dtype(dtype).itemsize
    return headers[..., offset : offset + size].view(dtype)[..., 0]


def _csum_add(a: Any, b: Any) -> Any:
    """checksum.csum_add, elementwise: 0 only for 0 + 0."""
    import numpy as np

    total = np.asarray(a, dtype=np.int64) + b
    folded = total % ONES
    return np.where(folded == 0, np.where(total == 0, 0, ONES), folded)


def _csum16_add(a: Any, b: Any) -> Any:
    """checksum.csum16_add, elementwise: end-around carry on 16 bits."""
    import numpy as np

    b = np.asarray(b, dtype=np.int64)
    value = (np.asarray(a, dtype=np.int64) + b) & 0xFFFF
    return (value + (value < b)) & 0xFFFF


class SegmentPlan(FrozenFieldsClass):
    """What the scalar path made of one shape, in the form the bulk computation needs."""

    frame_len: int
    payload_at: int  # input: first payload byte
    header_len: int  # output: bytes of headers in front of every piece
    mss: int
    segments: int
    last_len: int  # payload bytes of the last segment
    template_full: bytes  # the output headers of a full segment (index 0's)
    template_last: bytes
    udp: bool
    ipv4_at: int | None  # output offset of the IPv4 header (None: IPv6)
    ipv4_in: int  # input offset of the IPv4 header
    # the template IPv4 header sum without ID and checksum, of a full and of the last segment
    ipv4_base_full: int
    ipv4_base_last: int
    fixed_id: bool
    l4_in: int  # input offset of the L4 header
    l4_out: int  # output offset of the L4 header
    l4_hdr_len: int
    partial: bool  # checksums left for the device (CHECKSUM_PARTIAL out)
    seed: int | None  # the seed the L4 checksum field holds (None: each packet's own field)
    # TCP ~old_len + new L4 length; UDP new length: of a full and of the last segment
    l4_const_full: int
    l4_const_last: int
    udp_len_out: int  # UDP: ~old length field
    udp_sport_dport: int  # UDP: sum of the ports
    classify: bool  # count the input checksum states (input_csum auto)
    forced_state: L4Checksum | None
    ipv4: bool  # the input is IPv4 (UDP checksum 0 means "none")
    # tunnels (the fields above then describe the inner packet): the outer IPv4 header (output and
    # input offsets, template sums without ID and checksum, fixed ID), and the outer checksum that
    # covers the segment from csum_at to its end (outer UDP with UDP_TUNNEL_CSUM, GRE with its C
    # bit): its field's offset, the constant added (the outer pseudo-header for UDP, 0 for GRE) of a
    # full and of the last segment, and whether a computed 0 goes out as 0xFFFF (UDP)
    outer_ipv4_at: int | None
    outer_ipv4_in: int
    outer_base_full: int
    outer_base_last: int
    outer_fixed_id: bool
    csum_at: int | None
    csum_field: int
    csum_const_full: int
    csum_const_last: int
    csum_mangle: bool
    outer_left: bool  # the outer UDP checksum left to the device (its seed in the templates)

    def __init__(self, frame_len: int, payload_at: int, header_len: int, mss: int, segments: int,
                 last_len: int, template_full: bytes, template_last: bytes, udp: bool, ipv4_at: int | None,
                 ipv4_in: int, ipv4_base_full: int, ipv4_base_last: int, fixed_id: bool, l4_in: int,
                 l4_out: int, l4_hdr_len: int, partial: bool, seed: int | None, l4_const_full: int,
                 l4_const_last: int, udp_len_out: int, udp_sport_dport: int, classify: bool,
                 forced_state: L4Checksum | None, ipv4: bool, outer_ipv4_at: int | None = None,
                 outer_ipv4_in: int = 0, outer_base_full: int = 0, outer_base_last: int = 0,
                 outer_fixed_id: bool = False, csum_at: int | None = None, csum_field: int = 0,
                 csum_const_full: int = 0, csum_const_last: int = 0, csum_mangle: bool = False,
                 outer_left: bool = False) -> None:
        init_fields(self, locals())

    @property
    def need_sums(self) -> bool:
        """Whether the payload pieces must be summed (a checksum computed, or the input classified)."""
        return not self.partial or self.classify

    # per-segment arrays of the numpy computation, made on first use (the compiled path needs none)
    @cached_property
    def ipv4_base(self) -> np.ndarray:
        return self._per_segment(self.ipv4_base_full, self.ipv4_base_last)

    @cached_property
    def l4_const(self) -> np.ndarray:
        return self._per_segment(self.l4_const_full, self.l4_const_last)

    @cached_property
    def outer_base(self) -> np.ndarray:
        return self._per_segment(self.outer_base_full, self.outer_base_last)

    @cached_property
    def csum_const(self) -> np.ndarray:
        return self._per_segment(self.csum_const_full, self.csum_const_last)

    @cached_property
    def id_steps(self) -> np.ndarray:
        import numpy as np

        return np.arange(self.segments, dtype=np.int64)

    @cached_property
    def seq_steps(self) -> np.ndarray:
        return self.id_steps * self.mss

    @cached_property
    def flag_masks(self) -> np.ndarray:
        import numpy as np

        # as tcp_gso_segment: CWR kept only on the first segment, FIN and PSH only on the last
        masks = np.full(self.segments, 0xFF & ~(TCP_FLAG_FIN | TCP_FLAG_PSH) & ~TCP_FLAG_CWR, dtype=np.uint8)
        masks[0] |= TCP_FLAG_CWR
        masks[-1] |= TCP_FLAG_FIN | TCP_FLAG_PSH
        return masks

    def _per_segment(self, full: int, last: int) -> np.ndarray:
        import numpy as np

        values = np.full(self.segments, full, dtype=np.int64)
        values[-1] = last
        return values

    def out_len(self, prefix: int = 0) -> int:
        """Output bytes per input packet, with ``prefix`` bytes reserved before every segment."""
        full = prefix + self.header_len + self.mss
        return full * (self.segments - 1) + prefix + self.header_len + self.last_len

    def segment_lengths(self) -> tuple[int, int]:
        """(length of a full segment, length of the last one)."""
        return self.header_len + self.mss, self.header_len + self.last_len


class RunResult(ValueClass):
    """What one run produced, for the summary: input checksum states counted (and per packet)."""

    packets: int
    states: dict[str, int]
    codes: Any  # per packet: index into CODE_STATES, when the states were counted

    def __init__(self, packets: int, states: dict[str, int], codes: Any = None) -> None:
        self.packets = packets
        self.states = states
        self.codes = codes


def states_in_order(codes: np.ndarray) -> dict[str, int]:
    """Counts of CODE_STATES codes, keyed in order of first appearance (as counting one by one inserts them)."""
    import numpy as np

    counts = np.bincount(codes, minlength=4)
    present = [code for code in range(4) if counts[code]]
    if len(present) > 1:
        present.sort(key=lambda code: int(np.argmax(codes == code)))
    return {CODE_STATES[code].value: int(counts[code]) for code in present}


def signed(frame: bytes | memoryview, layout: FrameLayout) -> bool:
    """Whether a frame's TCP header (``layout``'s, in frame offsets) carries a signature option
    (prepare.tcp_signature): the scalar path passes such a super-packet through."""
    return layout.l4_proto == IPPROTO_TCP and layout.payload > layout.transport + TCP_MIN_HLEN and \
        tcp_signature(frame[layout.transport + TCP_MIN_HLEN : layout.payload]) is not None


def signed_in_run(data: memoryview, offsets: memoryview, first: int, count: int, frame_at: int,
                  plan: SegmentPlan) -> int:
    """How many of the ``count`` records after ``first`` (at ``offsets``, their frames ``frame_at``
    bytes further) come before the first whose TCP options carry a signature: a run of one shape
    ends there, as shapes leave TCP options out (they change per packet)."""
    start, end = plan.l4_in + TCP_MIN_HLEN, plan.payload_at
    if plan.udp or end <= start:
        return count
    if _UNSIGNED_RUN is not None:  # the same walk in C, one call a run
        return int(_UNSIGNED_RUN(data, offsets, first, count, frame_at, start, end))
    for number in range(first + 1, first + 1 + count):
        at = offsets[number] + frame_at
        if tcp_signature(data[at + start : at + end]) is not None:
            return number - first - 1
    return count


def shape_key(frame: bytes | memoryview, layout: FrameLayout) -> bytes:
    """The shape of a frame: its length and header bytes with the per-packet fields zeroed."""
    head = bytearray(frame[: layout.payload])
    if layout.ip_version == 4:
        n = layout.network
        head[n + 4 : n + 6] = b"\0\0"
        head[n + 10 : n + 12] = b"\0\0"
    t = layout.transport
    if layout.l4_proto == IPPROTO_TCP:
        head[t + 4 : t + 12] = bytes(8)
        head[t + 13 : layout.payload] = bytes(layout.payload - t - 13)
    else:
        head[t + 6 : t + 8] = b"\0\0"
    head += layout.frame_len.to_bytes(4, "big")
    return bytes(head)


class TunnelShape(FrozenValueClass):
    """The layout of a tunnelled frame for the bulk path: the tunnel's, the inner packet's (in frame
    offsets), and the header bytes a frame of the same shape has equal (``ranges``, (from, to) pairs;
    the rest are per-packet fields) beside ``nonzero_at``, a 16-bit field (the outer UDP checksum)
    of which only being 0 or not is shape (-1: none)."""

    tunnel: TunnelLayout
    inner: FrameLayout
    ranges: tuple[tuple[int, int], ...]
    nonzero_at: int

    def __init__(self, tunnel: TunnelLayout, inner: FrameLayout, ranges: tuple[tuple[int, int], ...],
                 nonzero_at: int) -> None:
        init_fields(self, locals())


class LinkShape(FrozenValueClass):
    """The shape of a frame of another link type than Ethernet for the bulk path: the header bytes a
    frame of the same shape has equal (``ranges``, (from, to) pairs of the record's own frame, its
    link header included) and ``nonzero_at`` as TunnelShape has them."""

    ranges: tuple[tuple[int, int], ...]
    nonzero_at: int

    def __init__(self, ranges: tuple[tuple[int, int], ...], nonzero_at: int) -> None:
        init_fields(self, locals())


def link_shape(layout: FrameLayout | TunnelShape, header_len: int) -> LinkShape:
    """The shape of the Ethernet frame to_ethernet makes (``layout``) as ranges of the record's frame
    behind a ``header_len``-byte link header: that header whole, then the Ethernet ranges moved."""
    from .pipeline import layout_ranges

    ranges, nonzero_at = layout_ranges(layout)
    shift = header_len - ETH_HLEN
    moved = [(0, header_len)] + [(max(start + shift, 0), end + shift) for start, end in ranges if end + shift > 0]
    return LinkShape(tuple(moved), nonzero_at + shift if nonzero_at >= 0 else -1)


def link_plan(plan: SegmentPlan, header: bytes, ethernet: bytes) -> SegmentPlan | None:
    """``plan`` (of the Ethernet frame ``ethernet`` that to_ethernet made of a record) for the record
    itself, behind its own link header ``header``: every offset moved by the headers' difference,
    the templates led by ``header`` (from_ethernet writes a segment back so when its Ethernet header
    is the input's). None when the plan changes the Ethernet header (an action): the scalar path's."""
    head = ethernet[:ETH_HLEN]
    if plan.template_full[:ETH_HLEN] != head or plan.template_last[:ETH_HLEN] != head:
        return None
    shift = len(header) - ETH_HLEN

    def moved(offset: int | None) -> int | None:
        return None if offset is None else offset + shift

    outer = plan.outer_ipv4_at is not None
    checksum = plan.csum_at is not None
    return plan.replace(
        frame_len=plan.frame_len + shift, payload_at=plan.payload_at + shift,
        header_len=plan.header_len + shift, template_full=header + plan.template_full[ETH_HLEN:],
        template_last=header + plan.template_last[ETH_HLEN:], ipv4_at=moved(plan.ipv4_at),
        ipv4_in=plan.ipv4_in + shift if plan.ipv4_at is not None else plan.ipv4_in,
        l4_in=plan.l4_in + shift, l4_out=plan.l4_out + shift, outer_ipv4_at=moved(plan.outer_ipv4_at),
        outer_ipv4_in=plan.outer_ipv4_in + shift if outer else plan.outer_ipv4_in, csum_at=moved(plan.csum_at),
        csum_field=plan.csum_field + shift if checksum else plan.csum_field)


def tunnel_key(frame: bytes | memoryview, tunnel: TunnelLayout) -> tuple[bytes, TunnelShape] | None:
    """The shape key and :class:`TunnelShape` of a tunnelled frame, or None where the bulk path leaves it to
    the scalar one (a trailer, length fields of 0 or that the frame contradicts, inner options the
    plain bulk path does not take either)."""
    length = len(frame)
    if tunnel.ip_end != length:
        return None
    n = tunnel.outer_network
    outer_len = int.from_bytes(frame[n + 2 : n + 4] if tunnel.outer_version == 4 else frame[n + 4 : n + 6], "big")
    if outer_len == 0:
        return None  # BIG TCP inside a tunnel: the scalar path notes it
    per_packet = []
    if tunnel.outer_version == 4:
        per_packet += [(n + 4, n + 6), (n + 10, n + 12)]
    nonzero_at = -1
    u = tunnel.outer_l4
    if tunnel.tunnel_bits & (GsoType.UDP_TUNNEL | GsoType.UDP_TUNNEL_CSUM):
        if int.from_bytes(frame[u + 4 : u + 6], "big") != length - u:
            return None
        per_packet.append((u + 6, u + 8))
        nonzero_at = u + 6
    elif tunnel.gre_csum:
        per_packet.append((u + 4, u + 6))
    # the inner packet: its length fields must end it with the frame (no trailer, no BIG TCP marker,
    # nothing the frame contradicts), IPv6 without extension headers
    i, t = tunnel.inner_network, tunnel.inner_transport
    if tunnel.inner_version == 4:
        if int.from_bytes(frame[i + 2 : i + 4], "big") != length - i:
            return None
    elif t != i + 40 or int.from_bytes(frame[i + 4 : i + 6], "big") != length - t:
        return None
    if tunnel.inner_l4_proto == IPPROTO_UDP and int.from_bytes(frame[t + 4 : t + 6], "big") != length - t:
        return None
    inner = FrameLayout(0, 0, i, tunnel.inner_version, t - i, tunnel.inner_l4_proto, t, tunnel.inner_l4_hdr_len,
                        length)
    if inner.ip_version == 4:
        per_packet += [(i + 4, i + 6), (i + 10, i + 12)]
    if inner.l4_proto == IPPROTO_TCP:
        per_packet += [(t + 4, t + 12), (t + 13, inner.payload)]
    else:
        per_packet.append((t + 6, t + 8))
    per_packet.sort()
    head = bytearray(frame[: inner.payload])
    ranges, at = [], 0
    for start, stop in per_packet:
        head[start:stop] = bytes(stop - start)
        if start > at:
            ranges.append((at, start))
        at = max(at, stop)
    if at < inner.payload:
        ranges.append((at, inner.payload))
    flag = b"\1" if nonzero_at >= 0 and frame[nonzero_at : nonzero_at + 2] != b"\0\0" else b"\0"
    key = b"T" + bytes(head) + flag + length.to_bytes(4, "big")
    return key, TunnelShape(tunnel, inner, tuple(ranges), nonzero_at)


def length_family(key: bytes, layout: FrameLayout) -> bytes:
    """What a TCP frame's shape key says but its length: the key without the frame's length and
    with the IP length field zeroed (frames of one flow whose sizes differ share it)."""
    at = layout.network + (2 if layout.ip_version == 4 else 4)
    return key[:at] + b"\0\0" + key[at + 2 : -4]


def derive_plan(base: SegmentPlan, frame: bytes | memoryview, layout: FrameLayout) -> SegmentPlan | None:
    """The plan of ``frame``, a TCP frame of ``base``'s length family (same headers, another length),
    from ``base`` by tcp_gso_segment's length rules; None when the frame is not cut in two or more
    segments (tcp_gso_segment sends a packet of at most one MSS as it is).

    What a length changes: the segment count and the last segment's payload; the last segment's IP
    length field (inet_gso_segment: tot_len; ipv6_gso_segment: payload_len) and its header sum; the
    seed of the input's pseudo-header (its L4 length) and tcp_gso_segment's checksum delta (the old
    length out, each segment's L4 length in). Every other byte of a segment's headers is the
    template's or the packet's own, as for any packet of the base's length."""
    payload = layout.frame_len - layout.payload
    if layout.payload != base.payload_at or payload <= base.mss:
        return None
    segments = -(-payload // base.mss)
    last_len = payload - base.mss * (segments - 1)
    network_out = layout.network + base.l4_out - base.l4_in
    template_last = bytearray(base.template_last)
    base_last = base.ipv4_base_last
    if base.ipv4_at is not None:
        template_last[network_out + 2 : network_out + 4] = (base.header_len - network_out + last_len).to_bytes(2, "big")
        head = bytearray(template_last[base.ipv4_at : base.l4_out])
        head[4:6] = head[10:12] = b"\0\0"
        base_last = ones_sum(head) % ONES
    else:
        template_last[network_out + 4 : network_out + 6] = (
            base.header_len - network_out - IPV6_HLEN + last_len).to_bytes(2, "big")
    old_len = layout.frame_len - layout.transport
    l4_header = base.header_len - base.l4_out
    return base.replace(
        frame_len=layout.frame_len, segments=segments, last_len=last_len, template_last=bytes(template_last),
        ipv4_base_last=base_last, seed=pseudo_seed(frame, layout),
        l4_const_full=(~old_len & 0xFFFF) + l4_header + base.mss, l4_const_last=(~old_len & 0xFFFF) + l4_header + last_len)


class FastSegmenter:
    """Bulk segmentation of runs of same-shape frames, byte-identical to :func:`process_frame`."""

    def __init__(self, options: SegmentOptions,
                 oracle: Callable[[bytes], PacketResult] | None = None,
                 reproduce: Callable[[list[bytes], SegmentPlan], list[list[bytes]]] | None = None) -> None:
        self.options = options
        # the scalar reference a plan is learnt from and checked against
        self.oracle: Callable[[bytes], PacketResult] = oracle or self._process_frame
        # the bulk computation a plan must reproduce the reference with: this class's numpy one,
        # or the compiled one of softgso.bulk.compiled_primitive
        self.reproduce = reproduce or self.segment_frames
        self.enabled = options.gso_type != "udp" and options.udp_gso != "udp"  # UFO: IP fragments, scalar
        self._plans: dict[bytes, SegmentPlan | None] = {}
        # a TCP shape's other lengths are planned from its first plan (derive_plan) where a length
        # decides nothing else: a capture without actions, the seed recomputed from the addresses
        # (_seed), and a device without TSO, which segments every TCP GSO packet in software
        # (netif_needs_gso whatever gso_max_size and gso_max_segs say). By length family: the base
        # plan, or None where derive_plan does not give the base back from its own frame
        self.derives = (options.vnet_hdr is None and not options.actions and not options.tunnel_actions
                        and options.input_csum != "partial" and not options.device.features & NETIF_F_ALL_TSO)
        self._families: dict[bytes, SegmentPlan | None] = {}
        self.bases: dict[int, SegmentPlan] = {}  # by id of a derived plan: the plan it was derived from
        # tunnelled frames are recognised as the scalar path recognises them: from a capture, no actions
        self.tunnels = options.vnet_hdr is None and not options.actions
        self._tunnel_ports = options.tunnel_port_kinds

    def _process_frame(self, frame: bytes) -> PacketResult:
        from ..job import process_frame

        return process_frame(frame, self.options)

    # -- plans -----------------------------------------------------------------------------------

    def key_of(self, frame: bytes | memoryview) -> tuple[bytes, FrameLayout | TunnelShape] | None:
        """The shape key and layout of a frame the bulk path may handle, else None.

        A tunnelled frame (as the scalar path recognises it: a capture, no actions) has a
        :class:`TunnelShape` for its layout.
        """
        if not self.enabled:
            return None
        if self.tunnels:
            try:
                tunnel = parse_tunnel(frame, self._tunnel_ports, self.options.tunnel_in_labels)  # type: ignore[arg-type]
            except TunnelNotSegmented:
                return None
            if tunnel is not None:
                found = tunnel_key(frame, tunnel)
                if found is not None and signed(frame, found[1].inner):
                    return None
                return found
        layout = parse_layout(frame)
        if layout is None or layout.fragment or layout.jumbo or layout.length_problem or layout.trailer_len:
            return None
        if signed(frame, layout):
            return None  # the scalar path reports it: the shape leaves TCP options out, a signature is no shape
        return shape_key(frame, layout), layout

    def plan_for(self, frame: bytes | memoryview, key: bytes | None = None,
                 layout: FrameLayout | TunnelShape | None = None) -> SegmentPlan | None:
        """The plan of this frame's shape (built and verified on first sight), or None: scalar."""
        if key is None or layout is None:
            found = self.key_of(frame)
            if found is None:
                return None
            key, layout = found
        if key in self._plans:
            return self._plans[key]
        family = None
        if self.derives and isinstance(layout, FrameLayout) and layout.l4_proto == IPPROTO_TCP:
            family = length_family(key, layout)
            base = self._families.get(family)
            if base is not None:
                plan = derive_plan(base, frame, layout)
                if plan is not None:
                    self._plans[key] = plan
                    self.bases[id(plan)] = base
                    return plan
        plan = self._build(bytes(frame), layout)
        self._plans[key] = plan
        if family is not None and plan is not None and family not in self._families:
            assert isinstance(layout, FrameLayout)
            derived = derive_plan(plan, frame, layout)
            self._families[family] = plan if derived is not None and same_fields(derived, plan) else None
        return plan

    def _build(self, frame: bytes, layout: FrameLayout | TunnelShape) -> SegmentPlan | None:
        from ..job import Outcome

        result = self.oracle(frame)
        if result.outcome != Outcome.SEGMENTED or len(result.frames) < 2 or result.note:
            return None  # (a note is counted a record at a time, by the scalar path)
        if isinstance(layout, TunnelShape):
            candidates = self._tunnel_plans(frame, layout, result)
        else:
            plan = self._plan_from(frame, layout, result)
            candidates = [] if plan is None else [plan]
        for plan in candidates:
            # accepted only if the bulk computation reproduces the scalar output of the template
            try:
                ours = self.reproduce([frame], plan)[0]
            except Exception:  # noqa: BLE001 - any surprise sends the shape to the scalar path
                continue
            if ours == result.frames:
                return plan
        return None

    def _plan_from(self, frame: bytes, layout: FrameLayout, result: PacketResult) -> SegmentPlan | None:
        first, last = result.frames[0], result.frames[-1]
        out = parse_layout(first)
        out_last = parse_layout(last)
        if out is None or out_last is None or out.fragment or out_last.fragment or out.payload != out_last.payload:
            return None
        if out.l4_proto != layout.l4_proto or out.ip_version != layout.ip_version:
            return None
        header_len = out.payload
        mss = len(first) - header_len
        segments = len(result.frames)
        payload = layout.frame_len - layout.payload
        last_len = payload - mss * (segments - 1)
        if not 1 <= last_len <= mss or len(last) != header_len + last_len:
            return None
        if any(len(f) != len(first) for f in result.frames[:-1]):
            return None
        partial = [p.ip_summed == IpSummed.PARTIAL for p in result.packets]
        if len(set(partial)) != 1:
            return None
        udp = layout.l4_proto == IPPROTO_UDP
        t = layout.transport
        l4_len_full = header_len - out.transport + mss
        l4_len_last = header_len - out.transport + last_len
        old_len = layout.frame_len - t
        bases = [0, 0]
        ipv4_at = out.network if out.ip_version == 4 else None
        if ipv4_at is not None:
            for index, template in enumerate((first, last)):
                head = bytearray(template[ipv4_at : ipv4_at + out.l3_len])
                head[4:6] = head[10:12] = b"\0\0"
                bases[index] = ones_sum(head) % ONES
        forced = None
        if self.options.vnet_hdr is None and self.options.input_csum != "auto":
            forced = L4Checksum(self.options.input_csum)
        return SegmentPlan(
            frame_len=layout.frame_len, payload_at=layout.payload, header_len=header_len, mss=mss,
            segments=segments, last_len=last_len, template_full=first[:header_len],
            template_last=last[:header_len], udp=udp, ipv4_at=ipv4_at, ipv4_in=layout.network,
            ipv4_base_full=bases[0], ipv4_base_last=bases[1],
            fixed_id=ipv4_at is not None and first[ipv4_at + 4 : ipv4_at + 6] == result.frames[1][ipv4_at + 4 : ipv4_at + 6],
            l4_in=t, l4_out=out.transport, l4_hdr_len=layout.l4_hdr_len,
            partial=partial[0], seed=self._seed(frame, layout, result),
            l4_const_full=l4_len_full if udp else (~old_len & 0xFFFF) + l4_len_full,
            l4_const_last=l4_len_last if udp else (~old_len & 0xFFFF) + l4_len_last,
            udp_len_out=~int.from_bytes(frame[t + 4 : t + 6], "big") & 0xFFFF,
            udp_sport_dport=ones_sum(frame[t : t + 4]) % ONES,
            classify=self.options.vnet_hdr is None and forced is None,
            forced_state=forced, ipv4=layout.ip_version == 4,
        )

    def _tunnel_plans(self, frame: bytes, shape: TunnelShape, result: PacketResult) -> list[SegmentPlan]:
        """The plans a tunnelled shape may have, most likely first: its outer checksum (UDP_TUNNEL_CSUM,
        GRE_CSUM) computed per segment, or (a device that fills it) constant as the template has it."""
        tunnel, inner = shape.tunnel, shape.inner
        first, last = result.frames[0], result.frames[-1]
        try:
            out = parse_tunnel(first, self._tunnel_ports, self.options.tunnel_in_labels)
            out_last = parse_tunnel(last, self._tunnel_ports, self.options.tunnel_in_labels)
        except TunnelNotSegmented:
            return []
        if out is None or out_last is None or out.payload != out_last.payload or out.kind != tunnel.kind:
            return []
        if (out.inner_l4_proto, out.inner_version, out.outer_version) != \
                (tunnel.inner_l4_proto, tunnel.inner_version, tunnel.outer_version):
            return []
        header_len = out.payload
        mss = len(first) - header_len
        segments = len(result.frames)
        last_len = len(frame) - tunnel.payload - mss * (segments - 1)
        if mss < 1 or not 1 <= last_len <= mss or len(last) != header_len + last_len:
            return []
        if any(len(f) != len(first) for f in result.frames[:-1]):
            return []
        # which checksum the device is left: the inner one (its seed in the inner L4 header) or, with
        # UDP_TUNNEL_CSUM on a device that fills it, the outer one (a constant seed: the template's)
        left = set()
        for packet, out_frame in zip(result.packets, result.frames, strict=True):
            shift = len(out_frame) - len(packet.data)  # an outer tag moved out of band
            left.add(packet.csum_start + shift if packet.ip_summed == IpSummed.PARTIAL else None)
        if len(left) != 1 or left - {None, out.inner_transport, out.outer_l4}:
            return []
        partial = [next(iter(left)) == out.inner_transport]
        outer_left = next(iter(left)) == out.outer_l4
        udp = tunnel.inner_l4_proto == IPPROTO_UDP
        t_in, t_out = tunnel.inner_transport, out.inner_transport
        l4_len_full = header_len - t_out + mss
        l4_len_last = header_len - t_out + last_len
        old_len = len(frame) - t_in

        def ipv4_sums(at: int) -> tuple[int, int, bool]:
            sums = []
            for template in (first, last):
                head = bytearray(template[at : at + (template[at] & 0x0F) * 4])
                head[4:6] = head[10:12] = b"\0\0"
                sums.append(ones_sum(head) % ONES)
            return sums[0], sums[1], first[at + 4 : at + 6] == result.frames[1][at + 4 : at + 6]

        ipv4_at = out.inner_network if out.inner_version == 4 else None
        base_full = base_last = 0
        fixed = False
        if ipv4_at is not None:
            base_full, base_last, fixed = ipv4_sums(ipv4_at)
        outer_at = out.outer_network if out.outer_version == 4 else None
        outer_full = outer_last = 0
        outer_fixed = False
        if outer_at is not None:
            outer_full, outer_last, outer_fixed = ipv4_sums(outer_at)
        forced = None
        if self.options.input_csum != "auto":
            forced = L4Checksum(self.options.input_csum)
        plan = SegmentPlan(
            frame_len=len(frame), payload_at=tunnel.payload, header_len=header_len, mss=mss,
            segments=segments, last_len=last_len, template_full=first[:header_len],
            template_last=last[:header_len], udp=udp, ipv4_at=ipv4_at, ipv4_in=tunnel.inner_network,
            ipv4_base_full=base_full, ipv4_base_last=base_last, fixed_id=fixed,
            l4_in=t_in, l4_out=t_out, l4_hdr_len=tunnel.inner_l4_hdr_len,
            partial=partial[0], seed=self._seed(frame, inner, result),
            l4_const_full=l4_len_full if udp else (~old_len & 0xFFFF) + l4_len_full,
            l4_const_last=l4_len_last if udp else (~old_len & 0xFFFF) + l4_len_last,
            udp_len_out=~int.from_bytes(frame[t_in + 4 : t_in + 6], "big") & 0xFFFF,
            udp_sport_dport=ones_sum(frame[t_in : t_in + 4]) % ONES,
            classify=forced is None, forced_state=forced, ipv4=tunnel.inner_version == 4,
            outer_ipv4_at=outer_at, outer_ipv4_in=tunnel.outer_network, outer_base_full=outer_full,
            outer_base_last=outer_last, outer_fixed_id=outer_fixed,
        )
        at = out.outer_l4
        if outer_left:
            return [plan.replace(outer_left=True)]
        if out.tunnel_bits & (GsoType.UDP_TUNNEL | GsoType.UDP_TUNNEL_CSUM):
            if first[at + 6 : at + 8] == b"\0\0":
                return [plan]  # UDP_TUNNEL: 0 on every segment, as the template has it
            n = out.outer_network
            addresses = first[n + 12 : n + 20] if out.outer_version == 4 else first[n + 8 : n + 40]
            pseudo = ones_sum(addresses) + IPPROTO_UDP
            computed = plan.replace(csum_at=at, csum_field=at + 6, csum_mangle=True,
                               csum_const_full=(pseudo + header_len - at + mss) % ONES,
                               csum_const_last=(pseudo + header_len - at + last_len) % ONES)
            return [computed, plan]
        if out.gre_csum:
            return [plan.replace(csum_at=at, csum_field=at + 4), plan]
        return [plan]

    def _seed(self, frame: bytes, layout: FrameLayout, result: PacketResult) -> int | None:
        """The seed every packet of the shape starts from, or None when each packet's own field is it.

        From a capture the sending stack's seed is recomputed from the addresses (set_checksum_state),
        the same for the whole shape; a virtio header or ``--input-csum partial`` keeps the field as
        it came. Which one holds is asked of the scalar path: does another field value change the output?
        """
        seed = pseudo_seed(frame, layout)
        if self.options.vnet_hdr is None and self.options.input_csum != "partial":
            return seed
        at = layout.transport + (6 if layout.l4_proto == IPPROTO_UDP else 16)
        other = bytearray(frame)
        other[at : at + 2] = ((int.from_bytes(frame[at : at + 2], "big") + 0x1111) & 0xFFFF).to_bytes(2, "big")
        return seed if self.oracle(bytes(other)).frames == result.frames else None

    # -- the bulk computation --------------------------------------------------------------------

    def segment_headers(self, plan: SegmentPlan, frames: np.ndarray, headers: np.ndarray,
                        prefix: int = 0, sums: np.ndarray | None = None) -> RunResult:
        """Every segment's headers for ``frames`` (n, frame_len) into ``headers`` (n, segments, prefix + header_len).

        The payload of segment k of packet p is ``frames[p, payload_at + k*mss :][:mss]`` (the last
        one ``last_len`` bytes): a caller that writes files points at it instead of copying it.
        ``prefix`` bytes are left free before each segment's headers (a frontend's record header).
        """
        import numpy as np

        n = frames.shape[0]
        mss, segs = plan.mss, plan.segments
        if sums is None and plan.need_sums:
            payload = frames[:, plan.payload_at :]
            sums = np.empty((n, segs), dtype=np.int64)
            sums[:, :-1] = word_sums(payload[:, : (segs - 1) * mss].reshape(n, segs - 1, mss))
            sums[:, -1] = word_sums(payload[:, (segs - 1) * mss :])
        l4_in = frames[:, plan.l4_in : plan.l4_in + plan.l4_hdr_len]
        ip_ids = _be16(frames, plan.ipv4_in + 4) if plan.ipv4_at is not None else None
        outer_ids = _be16(frames, plan.outer_ipv4_in + 4) if plan.outer_ipv4_at is not None else None
        return self.headers_from_fields(plan, l4_in, ip_ids, sums, headers, prefix, outer_ids)

    def segment_scattered(self, plan: SegmentPlan, buffer: np.ndarray, starts: np.ndarray, headers: np.ndarray,
                          prefix: int = 0) -> RunResult:
        """segment_headers for frames of one shape lying anywhere in ``buffer`` (at ``starts``): no copy.

        Payload sums from strided views of evenly spaced packets (a burst), header fields gathered.
        """
        import numpy as np
        from numpy.lib.stride_tricks import as_strided

        segs, mss = plan.segments, plan.mss
        sums = None
        if plan.need_sums:
            # evenly spaced packets (a burst of one flow, records back to back) as one strided 2D view
            sums = np.empty((starts.size, segs), dtype=np.int64)
            breaks = np.flatnonzero(np.diff(np.diff(starts)) != 0) + 2 if starts.size > 2 else np.zeros(0, int)
            edges = [0, *breaks.tolist(), starts.size]
            for first, stop in zip(edges[:-1], edges[1:], strict=True):
                spacing = int(starts[first + 1] - starts[first]) if stop - first > 1 else plan.frame_len
                if stop - first > 1 and spacing < plan.frame_len:
                    raise ValueError("overlapping frames")
                rows = as_strided(buffer[int(starts[first]) :], shape=(stop - first, plan.frame_len),
                                  strides=(spacing, 1), writeable=False)
                payload = rows[:, plan.payload_at :]
                sums[first:stop, :-1] = word_sums(payload[:, : (segs - 1) * mss].reshape(stop - first, segs - 1, mss))
                sums[first:stop, -1] = word_sums(payload[:, (segs - 1) * mss :])
        l4_in = buffer[(starts + plan.l4_in)[:, None] + np.arange(plan.l4_hdr_len)[None, :]]
        ip_ids = outer_ids = None
        if plan.ipv4_at is not None:
            at = starts + plan.ipv4_in + 4
            ip_ids = (buffer[at].astype(np.int64) << 8) | buffer[at + 1]
        if plan.outer_ipv4_at is not None:
            at = starts + plan.outer_ipv4_in + 4
            outer_ids = (buffer[at].astype(np.int64) << 8) | buffer[at + 1]
        return self.headers_from_fields(plan, l4_in, ip_ids, sums, headers, prefix, outer_ids)

    def headers_from_fields(self, plan: SegmentPlan, l4_in: np.ndarray, ip_ids: np.ndarray | None,
                            sums: np.ndarray | None, headers: np.ndarray, prefix: int = 0,
                            outer_ids: np.ndarray | None = None) -> RunResult:
        """The headers from each packet's L4 header, IPv4 ID and per-segment payload sums (mod 0xFFFF);
        a tunnel's outer IPv4 ID (``outer_ids``) and outer checksum too."""
        import numpy as np

        n = l4_in.shape[0]
        hdr = headers[..., prefix:]
        hdr[:, :-1] = np.frombuffer(plan.template_full, dtype=np.uint8)
        hdr[:, -1] = np.frombuffer(plan.template_last, dtype=np.uint8)
        seed: Any = plan.seed if plan.seed is not None else _be16(l4_in, 6 if plan.udp else 16)[:, None]
        if plan.udp:
            self._udp(plan, hdr, sums, seed)
        else:
            self._tcp(plan, l4_in, hdr, sums, seed)
        if plan.ipv4_at is not None:
            assert ip_ids is not None
            self._ipv4(plan, ip_ids, hdr)
        if plan.outer_ipv4_at is not None:
            assert outer_ids is not None
            self._ipv4(plan, outer_ids, hdr, outer=True)
        if plan.csum_at is not None:
            self._outer_checksum(plan, hdr, sums)
        if plan.classify:
            assert sums is not None
            codes = self._classify(plan, l4_in, sums)
            return RunResult(n, states_in_order(codes), codes)
        if plan.forced_state is not None:
            codes = np.full(n, CODE_STATES.index(plan.forced_state), dtype=np.int8)
            return RunResult(n, {plan.forced_state.value: n}, codes)
        return RunResult(n, {})

    def segment_run(self, plan: SegmentPlan, frames: np.ndarray, out: np.ndarray, prefix: int = 0) -> RunResult:
        """Segment ``frames`` (n, frame_len) into ``out`` (n, plan.out_len(prefix)): contiguous bytes.

        Row p of ``out`` holds packet p's segments back to back, ``prefix`` bytes left free before
        each one.
        """
        import numpy as np

        n = frames.shape[0]
        mss, segs, hlen = plan.mss, plan.segments, plan.header_len
        headers = np.empty((n, segs, prefix + hlen), dtype=np.uint8)
        stride = prefix + hlen + mss
        full = out[:, : (segs - 1) * stride].reshape(n, segs - 1, stride)
        tail = out[:, (segs - 1) * stride :]
        payload = frames[:, plan.payload_at :]
        pieces = payload[:, : (segs - 1) * mss].reshape(n, segs - 1, mss)
        sums = None
        if _CSUM is not None and frames.strides[-1] == 1 and out.strides[-1] == 1:
            # the payload copied once, its sums taken in the same pass (the C accelerator)
            sums = np.empty((n, segs), dtype=np.int64)
            sums[:, :-1] = word_sums(pieces, _copy_sums(pieces, full[:, :, prefix + hlen :]))
            last = payload[:, (segs - 1) * mss :]
            sums[:, -1] = word_sums(last, _copy_sums(last, tail[:, prefix + hlen :]))
        else:
            # the payload, copied once
            full[:, :, prefix + hlen :] = pieces
            tail[:, prefix + hlen :] = payload[:, (segs - 1) * mss :]
        result = self.segment_headers(plan, frames, headers, prefix, sums)
        full[:, :, prefix:stride - mss] = headers[:, :-1, prefix:]
        tail[:, prefix : prefix + hlen] = headers[:, -1, prefix:]
        return result

    def _tcp(self, plan: SegmentPlan, l4_in: np.ndarray, hdr: np.ndarray, sums: np.ndarray | None,
             seed: Any) -> None:

        t = plan.l4_out
        # seq..options come from the packet itself
        hdr[:, :, t + 4 : t + plan.l4_hdr_len] = l4_in[:, None, 4:]
        seq = (_be16(l4_in, 4) << 16) | _be16(l4_in, 6)
        seqs = (seq[:, None] + plan.seq_steps[None, :]) & 0xFFFFFFFF  # (n, segs)
        _field(hdr, t + 4, ">u4")[...] = seqs
        # as tcp_gso_segment: CWR only on the first segment, FIN and PSH only on the last
        flags_in = l4_in[:, 13]
        flags = flags_in[:, None] & plan.flag_masks[None, :]
        hdr[:, :, t + 13] = flags
        pseudo = _csum_add(seed, plan.l4_const)
        if plan.partial:
            checks = pseudo
        else:
            assert sums is not None
            # the segment's header sum from the input's: seq, flags and check words swapped
            base = word_sums(l4_in) - _be16(l4_in, 4) - _be16(l4_in, 6) - _be16(l4_in, 16) - flags_in
            header = base[:, None] + (seqs >> 16) + (seqs & 0xFFFF) + flags + pseudo
            checks = _complement((header + sums) % ONES)
        _field(hdr, t + 16, ">u2")[...] = checks

    def _udp(self, plan: SegmentPlan, hdr: np.ndarray, sums: np.ndarray | None, seed: Any) -> None:
        import numpy as np

        t = plan.l4_out
        # as __udp_gso_segment: the old length out of the seed, the new one in (csum16 arithmetic)
        check16 = _csum16_add(_csum16_add(seed, plan.udp_len_out), plan.l4_const)
        if plan.partial:
            _field(hdr, t + 6, ">u2")[...] = check16
            return
        assert sums is not None
        check = _complement((sums + plan.udp_sport_dport + plan.l4_const + check16) % ONES)
        # a computed 0 goes on the wire as 0xFFFF (CSUM_MANGLED_0)
        _field(hdr, t + 6, ">u2")[...] = np.where(check == 0, ONES, check)

    def _ipv4(self, plan: SegmentPlan, ip_ids: np.ndarray, hdr: np.ndarray, outer: bool = False) -> None:
        import numpy as np

        at = plan.outer_ipv4_at if outer else plan.ipv4_at
        assert at is not None
        ip_id = ip_ids[:, None]
        # as inet_gso_segment: the ID counts up per segment unless TCP_FIXEDID
        if plan.outer_fixed_id if outer else plan.fixed_id:
            ids = np.broadcast_to(ip_id, (ip_id.shape[0], plan.segments))
        else:
            ids = (ip_id + plan.id_steps[None, :]) & 0xFFFF
        base = plan.outer_base if outer else plan.ipv4_base
        _field(hdr, at + 4, ">u2")[...] = ids
        _field(hdr, at + 10, ">u2")[...] = _complement((ids + base[None, :]) % ONES)

    def _outer_checksum(self, plan: SegmentPlan, hdr: np.ndarray, sums: np.ndarray | None) -> None:
        """A tunnel's outer checksum (UDP with UDP_TUNNEL_CSUM, GRE with its C bit) over the finished
        headers from csum_at, the payload and the constant (the outer pseudo-header for UDP)."""
        import numpy as np

        at = plan.csum_at
        assert at is not None
        field = _field(hdr, plan.csum_field, ">u2")
        field[...] = 0
        if plan.partial:
            # the inner checksum left to the device: the outer one is summed as if it were filled
            # (gso_make_checksum from the inner seed's complement: local checksum offload)
            end = plan.l4_out
            inner = _complement(_field(hdr, plan.l4_out + (6 if plan.udp else 16), ">u2").astype(np.int64))
        else:
            assert sums is not None
            end, inner = plan.header_len, sums
        inner = inner if not (end - at) & 1 else inner * 256 % ONES
        total = word_sums(np.ascontiguousarray(hdr[:, :, at:end])) + inner + plan.csum_const[None, :]
        check = _complement(total % ONES)
        field[...] = np.where(check == 0, ONES, check) if plan.csum_mangle else check

    def _classify(self, plan: SegmentPlan, l4_in: np.ndarray, sums: np.ndarray) -> np.ndarray:
        """classify_l4_checksum for every packet of the run, from the sums already taken: CODE_STATES codes."""
        import numpy as np

        payload = sums
        if plan.mss & 1:
            payload = _odd_offsets(payload, plan.mss)
        seed = plan.seed if plan.seed is not None else 0
        total = (word_sums(l4_in) + payload.sum(axis=1) + seed) % ONES
        stored = _be16(l4_in, 6 if plan.udp else 16)
        complete = total == 0
        partial = ~complete & (stored == seed)
        zero = (stored == 0) if plan.udp and plan.ipv4 else np.zeros_like(complete)
        # one code per packet, in classify_l4_checksum's order of tests
        return np.where(zero, 0, np.where(complete, 1, np.where(partial, 2, 3))).astype(np.int8)

    # -- conveniences ----------------------------------------------------------------------------

    def segment_frames(self, frames: list[bytes], plan: SegmentPlan) -> list[list[bytes]]:
        """Segment same-shape frames; each packet's segments as bytes (tests, small callers)."""
        import numpy as np

        batch = np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(len(frames), plan.frame_len)
        out = np.empty((len(frames), plan.out_len()), dtype=np.uint8)
        self.segment_run(plan, batch, out)
        full_len, last_len = plan.segment_lengths()
        result = []
        for row in out:
            raw = row.tobytes()
            segs = [raw[i * full_len : (i + 1) * full_len] for i in range(plan.segments - 1)]
            segs.append(raw[(plan.segments - 1) * full_len :])
            assert len(segs[-1]) == last_len
            result.append(segs)
        return result


def range_sums(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Big-endian 16-bit word sums (mod 0xFFFF, odd length zero-padded) of many byte ranges of ``buffer``.

    Each range is summed as native 16-bit words into 32 bits (ranges up to 128 KiB) from the view of
    the buffer whose words start at the range's parity, then byte-swapped by one multiplication.
    """
    import numpy as np

    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    total = np.zeros(starts.size, dtype=np.int64)
    if not starts.size:
        return total
    if _CSUM is not None and buffer.ndim == 1 and buffer.strides[0] == 1:
        _CSUM.range_sums(buffer, np.ascontiguousarray(starts), np.ascontiguousarray(lengths), total)
        return total
    # only the region the ranges cover (reduceat runs its last range to the end of the array)
    low = int(starts.min()) & ~1
    buffer = buffer[low : int((starts + lengths).max())]
    starts = starts - low
    for shift in (0, 1):
        chosen = (starts & 1) == shift
        if not chosen.any():
            continue
        native = buffer[shift : shift + (buffer.size - shift) // 2 * 2].view("<u2")
        begin = (starts[chosen] - shift) // 2
        stop = begin + lengths[chosen] // 2
        bounds = np.empty(2 * begin.size, dtype=np.int64)
        bounds[0::2] = np.minimum(begin, native.size - 1)
        bounds[1::2] = np.minimum(stop, native.size - 1)
        sums = np.add.reduceat(native, bounds, dtype=np.uint32)[0::2].astype(np.int64)
        for last in np.flatnonzero(stop >= native.size):  # a range that ends the buffer
            sums[last] = int(native[begin[last] : stop[last]].sum(dtype=np.uint64))
        empty = stop == begin  # reduceat gives the element itself for an empty range
        sums[empty] = 0
        total[chosen] = sums % ONES * 256 % ONES
    odd = (lengths & 1) == 1
    total[odd] += buffer[starts[odd] + lengths[odd] - 1].astype(np.int64) << 8
    return total % ONES


# UDP ports whose frames classify_frames leaves to the scalar path: the tunnels' (offload.tunnels) and GTP-U
TUNNEL_PORTS = (*UDP_TUNNEL_PORTS, GTP_U_PORT)


def scalar_ports(options: SegmentOptions) -> tuple[int, ...]:
    """The UDP ports whose short frames the scalar path reads: TUNNEL_PORTS and those of ``--tunnel-port``
    (parse_tunnel lays a frame to one of them out as a tunnel, and its inner checksum state is what counts)."""
    return (*TUNNEL_PORTS, *sorted(set(options.tunnel_port_kinds) - set(TUNNEL_PORTS)))

# codes of classify_frames and of the bulk pipeline's chunk scan (both primitives, and _segment.c's
# C_* enum): an input checksum state, or what else the frame is; CODE_CANDIDATE only from the scan
CODE_ZERO, CODE_COMPLETE, CODE_PARTIAL, CODE_INVALID, CODE_NO_LAYOUT, CODE_SCALAR, CODE_CANDIDATE = range(7)
CODE_STATES = (L4Checksum.ZERO, L4Checksum.COMPLETE, L4Checksum.PARTIAL, L4Checksum.INVALID)


def invalid_field(frame: bytes | memoryview, shape: FrameLayout | TunnelShape | None = None) -> tuple[int, int]:
    """Where a frame of this shape keeps its L4 checksum, and its addresses' seed without the length:
    what the scalar path tells a checksum the bulk code calls invalid by (the sum not 0, the field not
    the seed: prepare.name_neither). ``shape``: the frame's (FastSegmenter.key_of; None: parse_layout's).
    A tunnelled frame's checksum is its inner packet's, as the scalar path classifies it (not the
    outer UDP checksum, nor none at all for GRE or IP-in-IP)."""
    layout = shape.inner if isinstance(shape, TunnelShape) else shape if shape is not None else parse_layout(frame)
    assert layout is not None
    return check_offset(layout), seed_without_length(frame, layout)


def classify_frames(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                    ethertypes: np.ndarray | None = None, ports: tuple[int, ...] = TUNNEL_PORTS) -> np.ndarray:
    """parse_layout + classify_l4_checksum for many frames of one buffer at once: a code per frame.

    ``starts``/``lengths`` locate each frame in ``buffer``; ``ethertypes``, when given, replace the
    ones the frames' bytes 12-13 hold (another link type's frames, read 14 bytes before their L3
    header: the Ethernet frames softgso.io.cooked.to_ethernet makes of them). The code is an input checksum state (CODE_ZERO..CODE_INVALID), CODE_NO_LAYOUT
    where parse_layout finds no TCP/UDP (or an IP fragment: no state, untouched), or CODE_SCALAR for
    what is left to the scalar path (label stacks, two VLAN tags, IPv6 extension headers, tunnels:
    GRE, IP-in-IP and UDP to one of ``ports``, scalar_ports' for a run with ``--tunnel-port``).
    """
    import numpy as np

    starts = starts.astype(np.int64)
    lengths = lengths.astype(np.int64)
    count = starts.size
    code = np.full(count, CODE_NO_LAYOUT, dtype=np.int8)
    if not count:
        return code
    limit = buffer.size - 1  # clamp reads past the buffer; the last byte is a valid read

    def byte(offset: np.ndarray, frames: np.ndarray = starts) -> np.ndarray:
        return buffer[np.minimum(frames + offset, limit)].astype(np.int64)

    def be16(offset: np.ndarray, frames: np.ndarray = starts) -> np.ndarray:
        return (byte(offset, frames) << 8) | byte(offset + 1, frames)

    ok = lengths >= 14
    ethertype = be16(np.full(count, 12)) if ethertypes is None else ethertypes.astype(np.int64)
    vlan = ((ethertype == ETH_P_8021Q) | (ethertype == ETH_P_8021AD)) & (lengths >= 18)
    network = np.where(vlan, 18, 14)
    ethertype = np.where(vlan, be16(np.full(count, 16)), ethertype)
    second_tag = vlan & ((ethertype == ETH_P_8021Q) | (ethertype == ETH_P_8021AD))
    mpls = (ethertype == ETH_P_MPLS_UC) | (ethertype == ETH_P_MPLS_MC)
    scalar = ok & (second_tag | mpls)
    first = byte(network)
    v4 = ok & ~scalar & (ethertype == ETH_P_IP) & (network + 20 <= lengths) & (first >> 4 == 4)
    ihl = (first & 0x0F) * 4
    v4 &= (ihl >= 20) & (network + ihl <= lengths)
    v4 &= (be16(network + 6) & 0x3FFF) == 0  # IP fragments: no layout to speak of
    v6 = ok & ~scalar & (ethertype == ETH_P_IPV6) & (network + 40 <= lengths) & (first >> 4 == 6)
    next_header = np.where(v4, byte(network + 9), byte(network + 6))
    scalar |= v6 & ((next_header == IPPROTO_HOPOPTS) | (next_header == IPPROTO_ROUTING) | (next_header == IPPROTO_DSTOPTS))
    transport = network + np.where(v4, ihl, 40)
    # the packet ends where its length field says (a trailer or padding follows); a length of 0 (the
    # BIG TCP marker) or one the frame contradicts, and an IPv4 header checksum left 0 by a sender's
    # offload (completed), are the scalar path's to judge
    total_len = be16(network + 2)
    payload_len = be16(network + 4)
    end = np.where(v4, network + total_len, transport + payload_len)
    scalar |= v4 & ((total_len < ihl) | (end > lengths) | (be16(network + 10) == 0))
    scalar |= v6 & ((payload_len == 0) | (end > lengths))
    # a tunnel (GRE, IP-in-IP, a UDP encapsulation's port): the scalar path reads the inner packet's
    # checksum state, and judges what the tunnel carries
    scalar |= (v4 | v6) & ((next_header == 47) | (next_header == 4) | (next_header == 41))
    dport = be16(transport + 2)
    scalar |= (v4 | v6) & (next_header == IPPROTO_UDP) & (transport + 4 <= lengths) & np.isin(dport, ports)
    ip = (v4 | v6) & ~scalar
    tcp = ip & (next_header == IPPROTO_TCP) & (transport + 20 <= lengths)
    thlen = (byte(transport + 12) >> 4) * 4
    tcp &= (thlen >= 20) & (transport + thlen <= lengths)
    udp = ip & (next_header == IPPROTO_UDP) & (transport + 8 <= lengths)
    udp_len = be16(transport + 4)
    scalar |= tcp & (transport + thlen > end)
    scalar |= udp & ((transport + 8 > end) | ((udp_len != 0) & (udp_len != end - transport)))
    tcp &= ~scalar
    udp &= ~scalar
    parsed = tcp | udp
    code[scalar] = CODE_SCALAR
    if not parsed.any():
        return code

    idx = np.flatnonzero(parsed)
    base = starts[idx]
    net = network[idx]
    t = transport[idx]
    length = end[idx]  # the L4 bytes end with the IP packet
    is_v4 = v4[idx]
    is_udp = udp[idx]
    # the pseudo-header: addresses, protocol, L4 length
    # (the addresses summed as one range each: 8 bytes at +12 of IPv4, 32 at +8 of IPv6)
    addresses = range_sums(buffer, base + net + np.where(is_v4, 12, 8), np.where(is_v4, 8, 32))
    pseudo = (next_header[idx] + (length - t) + addresses) % ONES
    pseudo = np.where(pseudo == 0, ONES, pseudo)
    stored = be16(t + np.where(is_udp, 6, 16), base)
    first_byte = base + t
    words = range_sums(buffer, first_byte, length - t)
    total = (words + pseudo) % ONES
    # a value that is neither complete nor a seed is named by the scalar path (seed without the length, zero, invalid)
    state = np.where(is_udp & is_v4 & (stored == 0), CODE_ZERO,
                     np.where(total == 0, CODE_COMPLETE, np.where(stored == pseudo, CODE_PARTIAL, CODE_SCALAR)))
    code[idx] = state
    return code


def _odd_offsets(payload: np.ndarray, mss: int) -> np.ndarray:
    """Piece sums as seen from the payload start: odd-offset pieces have their words byte-swapped."""
    import numpy as np

    offsets = (mss * np.arange(payload.shape[1])) & 1
    return (payload * (1 + 255 * offsets)[None, :]) % ONES


__all__ = ["FastSegmenter", "LinkShape", "RunResult", "SegmentPlan", "TunnelShape", "link_plan", "link_shape", "scalar_ports", "shape_key", "tunnel_key", "word_sums"]
