"""Hypothesis strategies for hostile inputs: mutated super-packets and arbitrary metadata.

Frames are either plain random bytes, or valid super-packets (any of the shapes the invariant
suite builds: options, extension headers, VLAN tags, label stacks) that are then damaged: a few
bytes overwritten, the tail cut off, junk appended. Metadata is either plausible (derived from the
frame's real layout, so that the deep code paths run) or arbitrary within the kernel's field
widths (u16 offsets, the 19 SKB_GSO bits, any ethertype).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from targets import (
    ACTION_SAMPLES,
    ETHERTYPES,
    GSO_TYPE_NAMES,
    INPUT_CSUM,
    KERNELS,
    PROFILE_NAMES,
    UDP_GSO,
    ActionCase,
    CaptureCase,
    EngineCase,
    FrameCase,
    MixCase,
    ProfileCase,
    SkbCase,
    VirtioCase,
)

from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.prepare import parse_layout
from strategies import ipv4_options, ipv6_exthdrs, tcp_options

U16 = st.integers(0, 0xFFFF)
GSO_SIZES = st.one_of(st.sampled_from([0, 1, 2, 7, 8, 9, 536, 1400, 1448, 8960, 0xFFFE, 0xFFFF]), U16)
GSO_TYPES = st.one_of(
    st.sampled_from([0x1, 0x10, 0x10000, 0x20000, 0x3, 0x11, 0x5, 0x9, 0x30000, 0x20002, 0x7FFFF]),
    st.integers(0, (1 << 19) - 1),
)
ETHERTYPE = st.one_of(st.sampled_from(ETHERTYPES), U16)


@dataclass(frozen=True)
class DamagedFrame:
    """A frame, and the layout offsets of the valid packet it was made from (if any)."""

    frame: bytes
    transport: int | None = None
    network: int | None = None
    l4_check: int = 16
    protocol: int = 0x0800
    inner_protocol: int = 0
    inner_network: int = 0


@st.composite
def super_frames(draw: st.DrawFn) -> DamagedFrame:
    """A valid super-packet (in bytes: VLAN tags and labels included), with its offsets."""
    udp = draw(st.booleans())
    ipv6 = draw(st.booleans())
    payload_len = draw(st.one_of(st.integers(0, 40), st.integers(0, 3000), st.just(65000 - 100)))
    spec = SuperPacketSpec(
        ipv6=ipv6, udp=udp, payload=bytes((i * 13) & 0xFF for i in range(payload_len)),
        ip_options=b"" if ipv6 else draw(ipv4_options()),
        ipv6_exthdrs=draw(ipv6_exthdrs()) if ipv6 else (),
        tcp_options=b"" if udp else draw(tcp_options()),
        tcp_flags=draw(st.integers(0, 255)), df=draw(st.booleans()), partial_checksum=draw(st.booleans()),
        vlan_tags=tuple(draw(st.lists(st.tuples(st.sampled_from([0x8100, 0x88A8]), U16), max_size=2))),
    )
    frame = bytearray(build_frame(spec))
    layout = parse_layout(frame)
    assert layout is not None
    network = layout.network
    protocol = int.from_bytes(frame[12:14], "big")
    inner_protocol, inner_network = 0, 0
    labels = draw(st.integers(0, 3))
    if labels:
        type_at = network - 2
        inner_protocol = int.from_bytes(frame[type_at : type_at + 2], "big")
        stack = b"".join(struct.pack("!I", (100 + i) << 12 | (0x100 if i == labels - 1 else 0) | 64)
                         for i in range(labels))
        frame[type_at : type_at + 2] = b"\x88\x47"
        frame[network:network] = stack
        if not layout.vlan_tags:
            protocol = 0x8847
        inner_network = network + len(stack)
    layout = parse_layout(frame)
    assert layout is not None
    return DamagedFrame(bytes(frame), layout.transport, network, 6 if udp else 16, protocol, inner_protocol,
                        inner_network)


@st.composite
def damaged_frames(draw: st.DrawFn) -> DamagedFrame:
    """Random bytes, or a valid super-packet with a few bytes changed, cut short or extended."""
    if draw(st.integers(0, 4)) == 0:
        raw = draw(st.binary(max_size=160))
        return DamagedFrame(raw, protocol=int.from_bytes(raw[12:14], "big") if len(raw) >= 14 else 0)
    base = draw(super_frames())
    frame = bytearray(base.frame)
    for _ in range(draw(st.integers(0, 3))):
        # damage lands in the headers, where the parsers look
        at = draw(st.integers(0, min(len(frame), 120) - 1))
        frame[at] = draw(st.integers(0, 255))
    cut = draw(st.one_of(st.none(), st.integers(0, len(frame))))
    if cut is not None:
        del frame[cut:]
    frame += draw(st.binary(max_size=8))
    if draw(st.integers(0, 15)) == 0:
        frame += bytes(70000)  # a capture record longer than any IP packet
    return DamagedFrame(bytes(frame), base.transport, base.network, base.l4_check, base.protocol,
                        base.inner_protocol, base.inner_network)


def _offset(draw: st.DrawFn, plausible: int | None) -> int | None:
    """An skb header offset: mostly the real one, sometimes unset, near it, or anywhere in u16."""
    return draw(st.one_of(
        st.just(plausible), st.just(plausible), st.none(), st.integers(0, 128), U16,
    ))


@st.composite
def skb_cases(draw: st.DrawFn) -> SkbCase:
    """Arbitrary skb metadata over a damaged frame."""
    damaged = draw(damaged_frames())
    plausible = damaged.transport is not None
    transport = _offset(draw, damaged.transport)
    csum_start = transport if transport is not None and draw(st.booleans()) else draw(U16)
    return SkbCase(
        frame=damaged.frame,
        device=draw(st.sampled_from(PROFILE_NAMES)),
        protocol=damaged.protocol if plausible and draw(st.booleans()) else draw(ETHERTYPE),
        inner_protocol=damaged.inner_protocol if draw(st.booleans()) else draw(ETHERTYPE),
        mac_len=draw(st.one_of(st.just(14), st.just(18), st.just(22), st.integers(0, 64), U16)),
        network_header=_offset(draw, damaged.network),
        transport_header=transport,
        inner_network_header=damaged.inner_network if draw(st.booleans()) else draw(st.integers(0, 0xFFFF)),
        vlan_tci=draw(st.one_of(st.none(), U16)),
        vlan_proto=draw(st.sampled_from([0x8100, 0x88A8, 0, 0x0800])),
        gso_size=draw(GSO_SIZES),
        gso_type=draw(GSO_TYPES),
        gso_segs=draw(st.sampled_from([0, 1, 65535, 70000])),
        ip_summed=draw(st.sampled_from([0, 1, 2, 3, 3, 3])),
        csum_start=csum_start,
        csum_offset=draw(st.one_of(st.sampled_from([16, 6, damaged.l4_check]), U16)),
        encapsulation=draw(st.booleans()),
        ip6_frag_id=draw(st.integers(0, 2**32 - 1)),
        mtu=draw(st.one_of(st.sampled_from([68, 576, 1500, 9000, 65535]), st.integers(68, 65535))),
    )


ACTION_TEXT = st.one_of(
    st.sampled_from(ACTION_SAMPLES),
    st.builds(lambda kind, rest: f"{kind}:{rest}", st.sampled_from(["push-mpls", "pop-mpls", "set-mpls", "push-vlan",
                                                                      "dec-ttl", "pop-vlan", "PUSH-MPLS"]),
              st.text(alphabet="0123456789:x-abcdefimpuqlvn ", max_size=20)),
    st.text(max_size=30),
)


@st.composite
def frame_cases(draw: st.DrawFn) -> FrameCase:
    """A damaged frame and arbitrary ``segment`` options."""
    vnet = b""
    if draw(st.integers(0, 3)) == 0:
        vnet = draw(st.binary(min_size=10, max_size=10))
    return FrameCase(
        frame=draw(damaged_frames()).frame,
        device=draw(st.sampled_from(PROFILE_NAMES)),
        mtu=draw(st.one_of(st.sampled_from([68, 576, 1500, 9000, 65535]), st.integers(68, 65535))),
        gso_size=draw(st.one_of(st.none(), GSO_SIZES)),
        gso_type=draw(st.sampled_from(GSO_TYPE_NAMES)),
        tcp_ecn=draw(st.booleans()),
        input_csum=draw(st.sampled_from(INPUT_CSUM)),
        vnet_hdr=vnet,
        actions=tuple(draw(st.lists(st.sampled_from(ACTION_SAMPLES), max_size=3))),
        ipv6_frag_id=draw(st.integers(0, 2**32 - 1)),
        fixed_id=draw(st.booleans()),
        kernel=draw(st.sampled_from(KERNELS)),
        udp_gso=draw(st.sampled_from(UDP_GSO)),
    )


@st.composite
def virtio_headers(draw: st.DrawFn, transport: int | None) -> bytes:
    """A 10-byte little-endian header: arbitrary, or close to what a guest would send."""
    if draw(st.integers(0, 2)) == 0:
        return draw(st.one_of(st.binary(min_size=10, max_size=10), st.binary(min_size=12, max_size=12),
                              st.binary(max_size=16)))
    flags = draw(st.sampled_from([0, 1, 2, 3, 4, 0xFF]))
    gso_type = draw(st.sampled_from([0, 1, 3, 4, 5, 0x81, 0x84, 0x85, 0x83, 2, 6, 0x80, 0xFF]))
    start = transport if transport is not None and draw(st.booleans()) else draw(st.integers(0, 200))
    offset = draw(st.sampled_from([16, 6, 0, 1, 0xFFFF]))
    hdr_len = draw(st.one_of(st.integers(0, 200), U16))
    return struct.pack("<BBHHHH", flags, gso_type, hdr_len, draw(GSO_SIZES), start, offset)


@st.composite
def virtio_cases(draw: st.DrawFn) -> VirtioCase:
    """A damaged frame and a virtio_net_hdr for it."""
    damaged = draw(damaged_frames())
    return VirtioCase(
        frame=damaged.frame, header=draw(virtio_headers(damaged.transport)),
        protocol=draw(st.one_of(st.none(), ETHERTYPE)), check_hdr_len=draw(st.booleans()),
        device=draw(st.sampled_from(PROFILE_NAMES)), big_endian=draw(st.integers(0, 5)) == 0,
    )


@st.composite
def action_cases(draw: st.DrawFn) -> ActionCase:
    """Action strings on a damaged frame, then GSO metadata."""
    return ActionCase(
        frame=draw(damaged_frames()).frame, actions=tuple(draw(st.lists(ACTION_TEXT, max_size=4))),
        gso_size=draw(GSO_SIZES), gso_type=draw(GSO_TYPES), device=draw(st.sampled_from(PROFILE_NAMES)),
    )


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=12)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children,
                                                                                max_size=3)),
    max_leaves=6,
)
PROFILE_KEYS = st.sampled_from(["base", "name", "features", "mpls_features", "vlan_features", "hw_enc_features",
                                "gso_partial_features", "mtu", "gso_max_size", "gso_max_segs", "description", "x"])
PROFILE_VALUES = st.one_of(JSON_VALUES, st.sampled_from(["TSO|SG", "HW_CSUM", "nope", "no-offload", "tso", "1500"]),
                           st.lists(st.sampled_from(["TSO", "SG", "NETIF_F_HW_CSUM", "bad", ""]), max_size=3))


@st.composite
def profile_cases(draw: st.DrawFn) -> ProfileCase:
    """A device-profile file: structured JSON with odd values, or arbitrary text."""
    import json

    suffix = draw(st.sampled_from([".json", ".toml"]))
    if draw(st.integers(0, 3)) == 0:
        return ProfileCase(text=draw(st.text(max_size=80)), suffix=suffix)
    body = draw(st.one_of(st.dictionaries(PROFILE_KEYS, PROFILE_VALUES, max_size=4), JSON_VALUES))
    if suffix == ".toml" and isinstance(body, dict):
        lines = [f"{key} = {json.dumps(value)}" for key, value in body.items()
                 if isinstance(value, (str, int, bool, float)) and not isinstance(value, bool)]
        return ProfileCase(text="\n".join(lines), suffix=suffix)
    return ProfileCase(text=json.dumps(body), suffix=".json")


@st.composite
def capture_files(draw: st.DrawFn) -> CaptureCase:
    """A pcap/pcapng file: valid ones built from frames, then damaged; or random bytes."""
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return CaptureCase(draw(st.binary(max_size=200)))
    frames = [draw(damaged_frames()).frame for _ in range(draw(st.integers(0, 3)))]
    if choice <= 2:
        data = bytearray(_pcap(frames, draw(st.booleans()), draw(st.booleans()),
                               draw(st.sampled_from([1, 1, 113, 276, 0, 228, 0xFFFF])), draw(U16)))
    else:
        data = bytearray(_pcapng(frames, draw(st.booleans()), draw(st.sampled_from([1, 1, 113, 276, 0, 147])),
                                 draw(st.sampled_from([None, 6, 9, 0x80 | 20, 0x7F, 0xFF, 0x80 | 0x3F]))))
    for _ in range(draw(st.integers(0, 3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if len(data) >= 4 and draw(st.integers(0, 3)) == 0:
        # a hostile 32-bit length (a record's caplen, a block's length) anywhere 4-aligned: up to 4 GB, or
        # just around the longest frame the kernel builds (GSO_MAX_SIZE 524280 + 256 of link framing)
        at = draw(st.integers(0, len(data) // 4 - 1)) * 4
        value = draw(st.sampled_from([0xFFFFFFFF, 0xFFFFFFFC, 0x80000000, 200 << 20, 524536, 524537, 524540,
                                      590072, 590076]))
        data[at : at + 4] = value.to_bytes(4, draw(st.sampled_from(["little", "big"])))
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    if cut is not None:
        del data[cut:]
    return CaptureCase(bytes(data))


def _pcap(frames: list[bytes], big: bool, nano: bool, linktype: int, snaplen: int) -> bytes:
    order = ">" if big else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)
    for i, frame in enumerate(frames):
        out += struct.pack(order + "IIII", 1_700_000_000 + i, i, len(frame), len(frame)) + frame
    return out


def _pcapng_block(block_type: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def _pcapng(frames: list[bytes], with_comment: bool, linktype: int, tsresol: int | None) -> bytes:
    shb = _pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    options = b""
    if tsresol is not None:
        options += struct.pack("<HH", 9, 1) + bytes([tsresol]) + b"\0\0\0"
    if options:
        options += struct.pack("<HH", 0, 0)
    idb = _pcapng_block(1, struct.pack("<HHI", linktype, 0, 0) + options)
    out = shb + idb
    for i, frame in enumerate(frames):
        opts = b""
        if with_comment:
            text = b"fuzz \xff comment"
            opts = struct.pack("<HH", 1, len(text)) + text + b"\0" * (-len(text) % 4) + struct.pack("<HH", 0, 0)
        body = struct.pack("<IIIII", 0, 0, i, len(frame), len(frame)) + frame + b"\0" * (-len(frame) % 4) + opts
        out += _pcapng_block(6, body)
    return out


def fuzz_examples(default: int = 120) -> int:
    """Examples per fuzz test: SOFTGSO_FUZZ_EXAMPLES, or a small default for the ordinary run."""
    import os

    raw = os.environ.get("SOFTGSO_FUZZ_EXAMPLES", "")
    return int(raw) if raw.strip().isdigit() else default


def fuzz_settings(weight: float = 1.0) -> Any:
    """Settings for one fuzz test (``weight`` scales the example count for the slower targets)."""
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=max(1, int(fuzz_examples() * weight)),
        deadline=None,
        # crashers are kept, minimised and explained, in corpus/ (replayed by test_corpus.py), not in
        # the local .hypothesis database, so that a run does not depend on what ran here before
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        print_blob=True,
    )


@st.composite
def engine_cases(draw: st.DrawFn) -> EngineCase:
    """Runs of same-shape super-packets (per-packet fields varied, some damaged) and segment options."""
    bases = [draw(super_frames()) for _ in range(draw(st.integers(1, 2)))]
    frames = []
    for _ in range(draw(st.integers(1, 6))):
        base = bases[draw(st.integers(0, len(bases) - 1))]
        frame = bytearray(base.frame)
        if base.transport is not None and base.transport + 8 <= len(frame) and draw(st.booleans()):
            # per-packet fields the bulk path takes from each packet: seq (TCP) / checksum field
            at = base.transport + (4 if base.l4_check == 16 else 6)
            frame[at : at + 2] = draw(st.binary(min_size=2, max_size=2))
        if draw(st.integers(0, 5)) == 0:
            frame[draw(st.integers(0, min(len(frame), 100) - 1))] = draw(st.integers(0, 255))
        if draw(st.integers(0, 7)) == 0:
            del frame[draw(st.integers(0, len(frame))) :]
        frames.append(bytes(frame).hex())
    return EngineCase(
        frames=tuple(frames), device=draw(st.sampled_from(PROFILE_NAMES)),
        # tiny gso_sizes are the transmit target's business: here they would cost seconds per case
        gso_size=draw(st.one_of(st.none(), st.none(), st.sampled_from([100, 536, 1448]), st.integers(64, 65535))),
        mtu=draw(st.one_of(st.none(), st.sampled_from([576, 1500, 9000]), st.integers(68, 65535))),
        output_csum=draw(st.sampled_from([None, "complete", "partial"])), fixed_id=draw(st.booleans()),
        udp_gso=draw(st.sampled_from(UDP_GSO)),
    )


@st.composite
def damaged_pcaps(draw: st.DrawFn) -> CaptureCase:
    """Classic pcaps of Ethernet super-packets (what the bulk engine takes), damaged anywhere."""
    frames = [draw(super_frames()).frame for _ in range(draw(st.integers(1, 5)))]
    data = bytearray(_pcap(frames, draw(st.booleans()), draw(st.booleans()), 1,
                           draw(st.sampled_from([0, 65535, 262144, 1 << 30]))))
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            # a record length field (caplen / orig_len) of one record
            at, offset = 24, draw(st.integers(0, len(frames) - 1))
            for frame in frames[:offset]:
                at += 16 + len(frame)
            at += draw(st.sampled_from([8, 9, 10, 11, 12, 15]))
        else:
            at = draw(st.integers(0, len(data) - 1))
        if at < len(data):
            data[at] = draw(st.integers(0, 255))
    cut = draw(st.one_of(st.none(), st.none(), st.integers(0, len(data))))
    if cut is not None:
        del data[cut:]
    return CaptureCase(bytes(data))


@st.composite
def mix_cases(draw: st.DrawFn, host: bool = False) -> MixCase:
    """Captures of interleaved flows in every container and link type (mixed_captures), segment
    options, and the bulk code's constants made small; ``host``: a sending host's flows alone."""
    return MixCase.build(lambda low, high: draw(st.integers(low, high)), host)
