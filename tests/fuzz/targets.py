"""Fuzz targets shared by the hypothesis fuzz tests, the atheris entry point and the crash corpus.

Strategy: every target takes one *case* (a small dataclass of plain values, JSON-serialisable so
that a crasher can be stored in ``corpus/`` and replayed) and drives one public entry point of the
engine with it. The rule it checks is the project's error contract: a refusal is a
:class:`softgso.errors.SoftGSOError`; anything else escaping (IndexError, struct.error,
ValueError, ...) is a bug. On success a few cheap output bounds are checked too (no unbounded
amplification, every segment is bytes).

Each case can also be built from raw fuzzer bytes (``from_bytes``) so that atheris mutates the
same structure hypothesis draws.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from softgso.actions import Action, apply_action
from softgso.cli.action_grammar import parse_action
from softgso.errors import SoftGSOError, UsageError
from softgso.features import PROFILES, GsoType, IpSummed
from softgso.io.profile import load_profile
from softgso.job import Outcome, SegmentOptions, process_frame
from softgso.packet import Packet
from softgso.prepare import mtu_bytes, packet_from_capture, parse_layout
from softgso.virtio import VirtioNetHdr, virtio_net_hdr_from_skb, virtio_net_hdr_to_skb
from softgso.xmit import transmit

PROFILE_NAMES = tuple(PROFILES)
ETHERTYPES = (0x0800, 0x86DD, 0x8847, 0x8848, 0x8100, 0x88A8, 0x6558, 0x0806, 0x0000)
GSO_TYPE_NAMES = ("auto", "tcpv4", "tcpv6", "udp", "udp_l4")
INPUT_CSUM = ("auto", "partial", "complete")
KERNELS = ("6.1", "mainline")
UDP_GSO = ("off", "udp_l4", "udp")  # --udp-gso

# Output bound: software GSO never makes more bytes than one header copy per payload byte.
# A segment carries at least one payload byte, so the count is bounded by the input length and the
# total by (headers + 1) * input length; in practice far below.
MAX_HEADER_COPY = 65535 + 64


class Unexpected(AssertionError):
    """A target let through something other than a SoftGSOError (a bug in the engine)."""


def _guard(call: Callable[[], Any]) -> Any:
    """Run ``call``; a SoftGSOError is an answer (None), anything else is a bug."""
    try:
        return call()
    except SoftGSOError:
        return None


def _check_outputs(frames: list[bytes] | list[bytearray], input_len: int) -> None:
    """Segments are bytes and their number and total size stay bounded by the input."""
    assert len(frames) <= max(1, input_len), f"{len(frames)} segments from a {input_len}-byte input"
    total = sum(len(f) for f in frames)
    assert total <= input_len * (1 + MAX_HEADER_COPY) + MAX_HEADER_COPY, "output amplification"


# --- a byte consumer for atheris (a tiny FuzzedDataProvider that works without atheris) ---------


class ByteReader:
    """Consume integers, choices and byte strings from fuzzer input; zeros when it runs out."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u(self, size: int) -> int:
        """An unsigned big-endian integer of ``size`` bytes."""
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return int.from_bytes(chunk.ljust(size, b"\0"), "big")

    def choice(self, options: tuple[Any, ...]) -> Any:
        """One of ``options``."""
        return options[self.u(1) % len(options)]

    def flag(self) -> bool:
        """A boolean."""
        return bool(self.u(1) & 1)

    def maybe(self, size: int) -> int | None:
        """None or an integer (a header offset that may be unset)."""
        return None if self.u(1) & 0x80 else self.u(size)

    def text(self, limit: int = 40) -> str:
        """A short latin-1 string."""
        length = self.u(1) % (limit + 1)
        chunk = self.data[self.pos : self.pos + length]
        self.pos += length
        return chunk.decode("latin-1")

    def rest(self) -> bytes:
        """Everything not consumed yet."""
        chunk = self.data[self.pos :]
        self.pos = len(self.data)
        return chunk

    def frame(self) -> bytes:
        """The rest as a frame: raw, or a valid super-packet patched by (offset, byte) pairs and cut."""
        mode = self.u(1)
        if mode < 64:
            return self.rest()
        frame = bytearray(templates()[mode % len(templates())])
        cut = self.u(2)
        patches = self.rest()
        reach = min(len(frame), 160)
        for i in range(0, len(patches) - 1, 2):
            frame[patches[i] % reach] = patches[i + 1]
        if cut < len(frame):
            del frame[cut:]
        return bytes(frame)


_TEMPLATES: list[bytes] = []


def templates() -> list[bytes]:
    """Valid super-packets for the atheris byte decoder to start from (built once)."""
    if not _TEMPLATES:
        from softgso.check.synth import SuperPacketSpec, build_frame

        payload = bytes(range(256)) * 12
        specs = [
            SuperPacketSpec(payload=payload),
            SuperPacketSpec(payload=payload, ipv6=True),
            SuperPacketSpec(payload=payload, udp=True),
            SuperPacketSpec(payload=payload, udp=True, ipv6=True, ipv6_exthdrs=((0, bytes([1, 4]) + bytes(4)),)),
            SuperPacketSpec(payload=payload, ip_options=b"\x01" * 7 + b"\x00", tcp_options=b"\x01" * 12),
            SuperPacketSpec(payload=payload, vlan_tags=((0x88A8, 10), (0x8100, 20)), partial_checksum=False),
        ]
        _TEMPLATES.extend(build_frame(spec) for spec in specs)
        labelled = bytearray(build_frame(SuperPacketSpec(payload=payload)))
        labelled[12:14] = b"\x88\x47"
        labelled[14:14] = ((100 << 12) | 64).to_bytes(4, "big") + ((126 << 12) | 0x100 | 64).to_bytes(4, "big")
        _TEMPLATES.append(bytes(labelled))
    return _TEMPLATES


def _deflate(data: bytes) -> str:
    import base64
    import zlib

    return base64.b64encode(zlib.compress(data, 9)).decode("ascii")


def _inflate(text: str) -> bytes:
    import base64
    import zlib

    return zlib.decompress(base64.b64decode(text))


class Case:
    """JSON round trip shared by every case type (bytes fields as hex)."""

    target: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (bytes as hex)."""
        out: dict[str, Any] = {"target": self.target}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, bytes):
                # long frames are stored deflated (base64), to keep corpus files small
                value = value.hex() if len(value) <= 512 else {"zlib_b64": _deflate(value)}
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Any:
        """The case a :meth:`to_json` dict describes."""
        values = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name not in raw:
                continue
            value = raw[f.name]
            if f.type in ("bytes",) and isinstance(value, str):
                value = bytes.fromhex(value)
            elif f.type in ("bytes",) and isinstance(value, dict):
                value = _inflate(value["zlib_b64"])
            if isinstance(value, list):
                value = tuple(value)
            values[f.name] = value
        return cls(**values)


# --- target: transmit with arbitrary skb metadata -----------------------------------------------


@dataclass
class SkbCase(Case):
    """Arbitrary bytes plus arbitrary skb metadata, handed to :func:`softgso.xmit.transmit`."""

    target = "transmit"
    frame: bytes = b""
    device: str = "no-offload"
    protocol: int = 0x0800
    inner_protocol: int = 0
    mac_len: int = 14
    network_header: int | None = 14
    transport_header: int | None = None
    inner_network_header: int = 0
    vlan_tci: int | None = None
    vlan_proto: int = 0
    gso_size: int = 0
    gso_type: int = 0
    gso_segs: int = 0
    ip_summed: int = 0
    csum_start: int = 0
    csum_offset: int = 0
    encapsulation: bool = False
    ip6_frag_id: int = 0
    mtu: int = 1500

    def packet(self) -> Packet:
        """The skb this case describes."""
        return Packet(
            data=bytearray(self.frame), protocol=self.protocol, inner_protocol=self.inner_protocol,
            network_header=self.network_header, transport_header=self.transport_header,
            inner_network_header=self.inner_network_header, mac_len=self.mac_len, vlan_tci=self.vlan_tci,
            vlan_proto=self.vlan_proto, gso_size=self.gso_size, gso_type=GsoType(self.gso_type),
            gso_segs=self.gso_segs, ip_summed=IpSummed(self.ip_summed), csum_start=self.csum_start,
            csum_offset=self.csum_offset, encapsulation=self.encapsulation, ip6_frag_id=self.ip6_frag_id,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SkbCase:
        """Decode fuzzer bytes into a case."""
        r = ByteReader(data)
        return cls(
            device=r.choice(PROFILE_NAMES), protocol=r.choice(ETHERTYPES) if r.flag() else r.u(2),
            inner_protocol=r.choice(ETHERTYPES) if r.flag() else r.u(2), mac_len=r.u(1) if r.flag() else 14,
            network_header=r.maybe(2), transport_header=r.maybe(2), inner_network_header=r.u(1),
            vlan_tci=r.maybe(2), vlan_proto=r.choice((0x8100, 0x88A8, 0, 0x0800)), gso_size=r.u(2),
            gso_type=r.u(3) & ((1 << 19) - 1), gso_segs=r.u(2), ip_summed=r.u(1) % 4, csum_start=r.u(2),
            csum_offset=r.u(2), encapsulation=r.flag(), ip6_frag_id=r.u(4), mtu=68 + r.u(2) % 65468,
            frame=r.frame(),
        )


def run_transmit(case: SkbCase) -> None:
    """transmit() refuses with a SoftGSOError or returns bounded segments."""
    device = PROFILES[case.device].with_overrides(mtu=case.mtu)
    packets = _guard(lambda: transmit(case.packet(), device))
    if packets is not None:
        assert packets, "transmit returned no packet at all"
        _check_outputs([p.data for p in packets], len(case.frame))
        for packet in packets:
            assert isinstance(packet.data, bytearray)
            assert packet.vlan_tci is None, "an out-of-band tag left on a transmitted packet"


# --- target: process_frame with arbitrary options -----------------------------------------------


@dataclass
class FrameCase(Case):
    """A captured frame and ``softgso segment``'s options, handed to :func:`softgso.job.process_frame`."""

    target = "process_frame"
    frame: bytes = b""
    device: str = "no-offload"
    mtu: int = 1500
    gso_size: int | None = None
    gso_type: str = "auto"
    tcp_ecn: bool = False
    input_csum: str = "auto"
    vnet_hdr: bytes = b""  # empty: none
    actions: tuple[str, ...] = ()
    ipv6_frag_id: int = 0
    fixed_id: bool = False
    kernel: str = "6.1"
    udp_gso: str = "off"

    @classmethod
    def from_bytes(cls, data: bytes) -> FrameCase:
        """Decode fuzzer bytes into a case."""
        r = ByteReader(data)
        return cls(
            device=r.choice(PROFILE_NAMES), mtu=68 + r.u(2) % 65468,
            gso_size=r.choice((None, 0, 1, 8, 536, 1448, 65535, r.u(2))), gso_type=r.choice(GSO_TYPE_NAMES),
            tcp_ecn=r.flag(), input_csum=r.choice(INPUT_CSUM),
            vnet_hdr=bytes(r.u(1) for _ in range(10)) if r.u(1) < 64 else b"",
            actions=tuple(r.choice(ACTION_SAMPLES) for _ in range(r.u(1) % 4)), ipv6_frag_id=r.u(4),
            fixed_id=r.flag(), kernel=r.choice(KERNELS), udp_gso=r.choice(UDP_GSO), frame=r.frame(),
        )


ACTION_SAMPLES = (
    "push-mpls:100", "push-mpls:16:7:1:mc", "push-mpls:0:0:0", "pop-mpls", "pop-mpls:ipv6", "pop-mpls:mpls_uc",
    "pop-mpls:0x8100", "pop-mpls:0", "set-mpls:200::", "set-mpls::::", "set-mpls:::1", "dec-ttl", "push-vlan:42",
    "push-vlan:0:7:8021ad", "pop-vlan",
)


def options_for(case: FrameCase) -> SegmentOptions | None:
    """The SegmentOptions of a case, or None where the CLI would refuse them (UsageError)."""
    def build() -> SegmentOptions:
        device = PROFILES[case.device].with_overrides(mtu=case.mtu)
        return SegmentOptions(
            device=device, gso_size=case.gso_size, gso_type=case.gso_type, tcp_ecn=case.tcp_ecn,
            input_csum=case.input_csum, vnet_hdr=VirtioNetHdr.unpack(case.vnet_hdr) if case.vnet_hdr else None,
            actions=tuple(action for text in case.actions for action in parse_action(text)), ipv6_frag_id=case.ipv6_frag_id,
            fixed_id=case.fixed_id, kernel=case.kernel, udp_gso=case.udp_gso,
        )

    try:
        return build()
    except UsageError:
        return None


def run_process_frame(case: FrameCase) -> None:
    """process_frame never raises: every frame lands in one outcome (segmented, whole, changed,
    unchanged, refused, not segmented); what passes through unchanged is the input record, and what is
    refused or not segmented, or leaves over the MTU without the device taking it whole, is reported."""
    options = options_for(case)
    if options is None:
        return
    result = process_frame(case.frame, options)  # must not raise at all
    assert result.frames, "a packet vanished: no frame came out"
    if result.outcome in (Outcome.REFUSED, Outcome.UNCHANGED, Outcome.NOT_SEGMENTED):
        assert result.frames == [case.frame], "a refused, unchanged or not segmented packet must come out as it came"
    if result.outcome in (Outcome.REFUSED, Outcome.NOT_SEGMENTED):
        assert isinstance(result.error, SoftGSOError) and str(result.error), "a report without its reason"
        assert result.kind, "refused or not segmented, but not reported"
    if result.outcome not in (Outcome.SEGMENTED, Outcome.WHOLE) and any(
            mtu_bytes(f) > options.device.mtu for f in result.frames):
        assert result.kind, "a frame over the MTU left silently (never a silent wrong output)"
    _check_outputs(result.frames, len(case.frame) + 4 * len(case.actions) + 8)


# --- target: the virtio_net_hdr decoder, both kernels --------------------------------------------


@dataclass
class VirtioCase(Case):
    """A frame and a raw 10-byte virtio_net_hdr, decoded by both kernel generations, then transmitted."""

    target = "virtio"
    frame: bytes = b""
    header: bytes = bytes(10)
    protocol: int | None = None
    check_hdr_len: bool = True
    device: str = "no-offload"
    big_endian: bool = False  # a legacy (pre-1.0) virtio peer on a big-endian host

    @classmethod
    def from_bytes(cls, data: bytes) -> VirtioCase:
        """Decode fuzzer bytes into a case."""
        r = ByteReader(data)
        header = bytes(r.u(1) for _ in range(r.choice((10, 10, 10, 12, 0, 11))))
        return cls(header=header, protocol=r.choice((None, *ETHERTYPES)), check_hdr_len=r.flag(),
                   device=r.choice(PROFILE_NAMES), frame=r.frame())


def run_virtio(case: VirtioCase) -> None:
    """virtio_net_hdr_to_skb refuses with VirtioHeaderError/UsageError; what it accepts transmits cleanly."""
    hdr = _guard(lambda: VirtioNetHdr.unpack(case.header, little_endian=not case.big_endian))
    if hdr is None:
        assert len(case.header) not in (10, 12), "a 10- or 12-byte header always decodes"
        return
    assert VirtioNetHdr.unpack(hdr.pack(little_endian=not case.big_endian),
                               little_endian=not case.big_endian) == hdr, "header does not round-trip"
    for kernel in KERNELS:
        skb = _guard(lambda k=kernel: virtio_net_hdr_to_skb(case.frame, hdr, protocol=case.protocol, kernel=k,
                                                             check_hdr_len=case.check_hdr_len))
        if skb is None:
            continue
        assert skb.gso_size == 0 or skb.gso_type & GsoType.DODGY, "a virtio GSO packet must be DODGY"
        if skb.is_gso:
            _guard(lambda s=skb: virtio_net_hdr_from_skb(s))
        packets = _guard(lambda s=skb: transmit(s, PROFILES[case.device]))
        if packets is not None:
            _check_outputs([p.data for p in packets], len(case.frame))


# --- target: MPLS/VLAN actions and parse_action --------------------------------------------------


@dataclass
class ActionCase(Case):
    """Action strings (parsed with parse_action) applied to a captured frame, then transmitted."""

    target = "actions"
    frame: bytes = b""
    actions: tuple[str, ...] = ()
    gso_size: int = 0
    gso_type: int = 0
    device: str = "no-offload"

    @classmethod
    def from_bytes(cls, data: bytes) -> ActionCase:
        """Decode fuzzer bytes into a case."""
        r = ByteReader(data)
        count = r.u(1) % 5
        actions = tuple(r.choice(ACTION_SAMPLES) if r.flag() else r.text() for _ in range(count))
        return cls(actions=actions, gso_size=r.u(2), gso_type=r.u(3) & ((1 << 19) - 1), device=r.choice(PROFILE_NAMES),
                   frame=r.frame())


def run_actions(case: ActionCase) -> None:
    """parse_action refuses bad text with UsageError; actions refuse packets with ActionError only."""
    parsed: list[tuple[Action, ...]] = []
    for text in case.actions:
        actions = _guard(lambda t=text: parse_action(t))
        if actions is not None:
            assert actions and all(isinstance(action, Action) for action in actions), "not the engine's actions"
            parsed.append(actions)
    skb = packet_from_capture(case.frame, parse_layout(case.frame))

    def apply() -> list[Packet]:
        for actions in parsed:
            for action in actions:
                apply_action(skb, action)
        skb.gso_size = case.gso_size
        skb.gso_type = GsoType(case.gso_type)
        return transmit(skb, PROFILES[case.device])

    packets = _guard(apply)
    if packets is not None:
        _check_outputs([p.data for p in packets], len(case.frame) + 8 * len(parsed) + 8)


# --- target: device profiles read from files -----------------------------------------------------


@dataclass
class ProfileCase(Case):
    """The text of a device-profile file (JSON or TOML), read by :func:`softgso.io.profile.load_profile`."""

    target = "profile"
    text: str = ""
    suffix: str = ".json"

    @classmethod
    def from_bytes(cls, data: bytes) -> ProfileCase:
        """Decode fuzzer bytes into a case."""
        r = ByteReader(data)
        return cls(suffix=r.choice((".json", ".toml")), text=r.rest().decode("utf-8", "replace"))


def run_profile(case: ProfileCase) -> None:
    """A broken profile file is a UsageError, whatever it holds."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"profile{case.suffix}"
        path.write_text(case.text, encoding="utf-8")
        profile = _guard(lambda: load_profile(str(path)))
    if profile is not None:
        assert isinstance(profile.mtu, int) and isinstance(profile.features, int)


# --- target: capture files -----------------------------------------------------------------------


@dataclass
class CaptureCase(Case):
    """The bytes of a capture file (pcap or pcapng), read record by record and written back."""

    target = "capture"
    data: bytes = b""

    @classmethod
    def from_bytes(cls, data: bytes) -> CaptureCase:
        """Decode fuzzer bytes into a case."""
        return cls(data=data)


def io_available() -> bool:
    """The capture reader/writer exists yet (softgso.io is being written alongside)."""
    try:
        from softgso.io import open_capture, open_writer  # noqa: F401
    except ImportError:
        return False
    return True


def run_capture(case: CaptureCase) -> None:
    """A broken capture is a CaptureError naming the record; what reads back writes back the same."""
    from softgso import io

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.cap"
        path.write_bytes(case.data)
        out = Path(folder) / "out.cap"

        def read_and_copy() -> int:
            count = 0
            with io.open_capture(path) as reader, io.open_writer(out, like=reader) as writer:
                for record in reader:
                    assert len(record.data) <= len(case.data)
                    view = io.to_ethernet(record)
                    if view is not None:
                        # an unchanged frame converts back to the very record bytes (cooked headers kept)
                        assert io.from_ethernet(view.frame, record) == bytes(record.data), "link-type round trip"
                    writer.write(record)
                    count += 1
            return count

        count = _guard(read_and_copy)
        if count is not None:
            # the copy must read back to the same records
            with io.open_capture(out) as again:
                assert sum(1 for _ in again) == count
        # a FIFO (no seeking, the bytes handed over as the pipe delivers them) reads exactly like the file
        assert _read_outcome(path) == _read_through_fifo(Path(folder) / "in.fifo", case.data), "FIFO != file"
        leftovers = sorted(p.name for p in Path(folder).iterdir() if p.name not in ("in.cap", "out.cap", "in.fifo"))
        assert not leftovers, f"temporary files left behind: {leftovers}"


def _read_outcome(path: Path) -> tuple[list[bytes], tuple[str, int | None, int | None] | None]:
    """Every record's bytes and how the reading ended: None, or (error class, record index, byte offset)."""
    from softgso import io

    records: list[bytes] = []
    try:
        with io.open_capture(path) as reader:
            for record in reader:
                records.append(bytes(record.data))
    except SoftGSOError as error:
        return records, (type(error).__name__, getattr(error, "index", None), getattr(error, "offset", None))
    return records, None


def _read_through_fifo(fifo: Path, data: bytes) -> tuple[list[bytes], tuple[str, int | None, int | None] | None]:
    """:func:`_read_outcome` of ``data`` written into a FIFO by another thread (a few bytes first, then the rest)."""
    import os
    import threading

    os.mkfifo(fifo)

    def feed() -> None:
        try:
            with open(fifo, "wb", buffering=0) as pipe:
                pipe.write(data[:5])
                pipe.write(data[5:])
        except BrokenPipeError:
            pass  # the reader stopped at a broken record

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        return _read_outcome(fifo)
    finally:
        thread.join(10)
        assert not thread.is_alive(), "the FIFO's writer is stuck"


# --- target: `softgso inspect` and `softgso diff` on hostile captures -----------------------------


def run_inspect(case: CaptureCase) -> None:
    """inspect and diff read any file to a report or a documented exit status (0/1 diff, 3 unreadable);
    inspect's report and status are those of its per-frame reference (``--engine scalar``)."""
    from click.testing import CliRunner

    from softgso.cli.commands import main

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.cap"
        path.write_bytes(case.data)
        reports = []
        for args, allowed in ((["inspect", str(path), "--json"], (0, 3)),
                              (["inspect", str(path), "--json", "--engine", "scalar"], (0, 3)),
                              (["diff", str(path), str(path)], (0, 1, 3))):
            result = CliRunner().invoke(main, args)
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise result.exception
            assert result.exit_code in allowed, f"{args[0]}: exit status {result.exit_code}"
            if args[0] == "inspect":
                reports.append((result.exit_code, result.output))
            if args[0] == "diff" and result.exit_code != 3:
                assert result.exit_code == 0, "a file differs from itself"
        assert reports[0] == reports[1], "inspect --engine auto and scalar differ"


# --- target: the bulk engines (numpy, compiled) against the scalar reference, through the CLI -----


@dataclass
class SegmentOptionsCase(Case):
    """The ``softgso segment`` options a case of the engine targets runs with (_compare_engines)."""

    device: str = "no-offload"
    gso_size: int | None = None
    mtu: int | None = None
    output_csum: str | None = None
    fixed_id: bool = False
    udp_gso: str = "off"


@dataclass
class EngineCase(SegmentOptionsCase):
    """A classic pcap of frames, segmented by ``softgso segment`` with --engine scalar, numpy and compiled."""

    target = "engines"
    frames: tuple[str, ...] = ()  # hex, one per record

    @classmethod
    def from_bytes(cls, data: bytes) -> EngineCase:
        """Decode fuzzer bytes: a template repeated with per-packet fields changed, and damaged copies."""
        r = ByteReader(data)
        device = r.choice(PROFILE_NAMES)
        gso_size = r.choice((None, None, 1, 8, 100, 1448, r.u(2) or 1))
        mtu = r.choice((None, 1500, 576, 9000, 68 + r.u(2) % 65468))
        output_csum = r.choice((None, "complete", "partial"))
        fixed_id = r.flag()
        udp_gso = r.choice(UDP_GSO)
        base = bytearray(templates()[r.u(1) % len(templates())])
        frames = []
        for _ in range(1 + r.u(1) % 12):
            frame = bytearray(base)
            for _ in range(r.u(1) % 3):
                frame[r.u(2) % len(frame)] = r.u(1)
            if r.u(1) < 32:
                del frame[r.u(2) % len(frame):]
            frames.append(bytes(frame).hex())
        return cls(frames=tuple(frames), device=device, gso_size=gso_size, mtu=mtu, output_csum=output_csum,
                   fixed_id=fixed_id, udp_gso=udp_gso)


def run_engines(case: EngineCase) -> None:
    """The bulk engine writes the very bytes the scalar engine writes, with the same exit status."""
    import struct

    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    for index, text in enumerate(case.frames):
        frame = bytes.fromhex(text)
        data += struct.pack("<IIII", 1_700_000_000 + index, index, len(frame), len(frame)) + frame
    _compare_engines(data, case)


def run_engines_on_file(case: CaptureCase) -> None:
    """Even on a damaged file (record headers, lengths, truncation) both engines agree, byte for byte."""
    _compare_engines(case.data, EngineCase())


def _summary(stdout: str) -> dict[str, Any]:
    """segment's JSON summary (exit 0, or 1 under --strict); whatever else it printed, as it is."""
    if not stdout.strip():
        return {}
    try:
        summary = json.loads(stdout)
    except ValueError:
        return {"stdout": stdout}
    return summary if isinstance(summary, dict) else {"stdout": stdout}


def _option_args(case: EngineCase | MixCase) -> list[str]:
    """The case's options that ``segment`` and ``inspect`` both take, as arguments."""
    options = ["--device", case.device]
    for flag, value in (("--gso-size", case.gso_size), ("--mtu", case.mtu), ("--output-csum", case.output_csum)):
        if value is not None:
            options += [flag, str(value)]
    if case.fixed_id:
        options += ["--ip-id", "fixed"]
    if case.udp_gso != "off":
        options += ["--udp-gso", case.udp_gso]
    if isinstance(case, MixCase):
        if case.input_csum != "auto":
            options += ["--input-csum", case.input_csum]
        if case.tcp_ecn:
            options += ["--tcp-ecn"]
        if case.kernel != "6.1":
            options += ["--kernel", case.kernel]
        for tunnel_port in case.tunnel_ports:
            options += ["--tunnel-port", tunnel_port]
    return options


def _compare_engines(data: bytes, case: EngineCase | MixCase, suffix: str = "pcap") -> None:
    """``softgso segment`` of ``data`` (a file named ``in.SUFFIX``) by the scalar engine and each bulk
    one: the same exit status, output bytes, JSON summary and messages."""
    from click.testing import CliRunner

    from softgso.cli.commands import main

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / f"in.{suffix}"
        source.write_bytes(data)
        options = ["-q", "--json", *_option_args(case)]
        if isinstance(case, MixCase):
            if case.strict:
                options += ["--strict"]
            if case.tunnel_under_labels:
                options += ["--tunnel-under-labels"]
        from softgso.bulk import compiled_primitive

        # the reference first, then the bulk stream with each primitive (the compiled one where softgso.bulk._segment is built)
        engines = ["scalar", "numpy", *(["compiled"] if compiled_primitive.available() else [])]
        answers = []
        for engine in engines:
            target = Path(folder) / f"{engine}.{suffix}"
            result = CliRunner().invoke(main, ["segment", str(source), str(target), "--engine", engine, *options])
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise result.exception
            summary = _summary(result.stdout)
            for volatile in ("seconds", "output", "engine"):
                summary.pop(volatile, None)
            answers.append((result.exit_code, target.read_bytes() if target.exists() else None, summary,
                            result.stderr.replace(str(target), "OUT")))
        leftovers = sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))
        assert not leftovers, f"temporary files left behind: {leftovers}"
        for engine, answer in zip(engines[1:], answers[1:], strict=True):
            assert answers[0][0] == answer[0], f"exit status: scalar {answers[0][0]}, {engine} {answer[0]}"
            assert answers[0][1] == answer[1], f"the {engine} engine's output differs from the scalar engine's"
            assert answers[0][2] == answer[2], f"the {engine} engine's summary differs from the scalar engine's"
            assert answers[0][3] == answer[3], f"the {engine} engine's messages differ from the scalar engine's"


# --- target: interleaved flows of many shapes, every container and link type, small bulk constants ---


@dataclass
class MixCase(SegmentOptionsCase):
    """A capture of interleaved flows (mixed_captures.build_capture), segmented by ``softgso segment``
    with --engine scalar, numpy and compiled, the bulk code's tuned constants made small so that the
    capture spans many chunks and the shape table (pipeline.ShapeTable) fills, churns and rests."""

    target = "engines_mix"
    data: bytes = b""
    suffix: str = "pcap"  # the input's file name: in.pcap or in.pcapng
    # the primitives' CHUNK_SIZE and MAPPED_CHUNK_SIZE, ARENA_SIZE, CompiledPrimitive.PIECE (0: as tuned)
    chunk: int = 0
    arena: int = 0
    piece: int = 0
    # CompiledPrimitive.WINDOW_SIZE: -1 as tuned, 0 IN read into buffers, 1 mapped windows of two chunks
    window: int = -1
    inline: int = -1  # pipeline.no_core_free: -1 the machine's load, 0 a writing thread, 1 the segmenting one
    # CompiledPrimitive (SCATTER, LATE_SUMS): -1 as built, 0 (off, off), 1 (on, off), 2 (off, on)
    scatter: int = -1
    # ShapeTable's LIMIT, CHURN and REST (0: as tuned)
    limit: int = 0
    churn: int = 0
    rest: int = 0
    input_csum: str = "auto"
    tcp_ecn: bool = False
    kernel: str = "6.1"
    strict: bool = False
    tunnel_ports: tuple[str, ...] = ()  # --tunnel-port KIND:PORT, each
    tunnel_under_labels: bool = False

    @classmethod
    def build(cls, pick: Callable[[int, int], int], host: bool = False) -> MixCase:
        """The case a fuzzer's choices make (``pick(low, high)``: an integer, ``low`` the plainest);
        ``host``: a sending host's capture (mixed_captures.build_capture)."""
        from mixed_captures import build_capture, bulk_tuning, segment_options

        tuning = bulk_tuning(pick)
        options = segment_options(pick)
        data, suffix = build_capture(pick, host)
        return cls(data=data, suffix=suffix, **tuning, **options)

    @classmethod
    def from_bytes(cls, data: bytes) -> MixCase:
        """Decode fuzzer bytes: each choice from the next 4 bytes."""
        r = ByteReader(data)
        return cls.build(lambda low, high: low + r.u(4) % (high - low + 1))


@contextmanager
def bulk_constants(case: MixCase) -> Iterator[None]:
    """The bulk code's tuned constants as ``case`` sets them, put back afterwards."""
    from softgso.bulk import pipeline
    from softgso.bulk.compiled_primitive import CompiledPrimitive
    from softgso.bulk.numpy_primitive import NumpyPrimitive

    saved: list[tuple[Any, str, Any]] = []

    def put(owner: Any, name: str, value: Any) -> None:
        saved.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, value)

    try:
        for primitive in (CompiledPrimitive, NumpyPrimitive):
            if case.chunk:
                put(primitive, "CHUNK_SIZE", case.chunk)
                put(primitive, "MAPPED_CHUNK_SIZE", case.chunk)
            if case.arena:
                put(primitive, "ARENA_SIZE", case.arena)
        if case.piece:
            put(CompiledPrimitive, "PIECE", case.piece)
        if case.window >= 0 and CompiledPrimitive.WINDOW_SIZE:
            put(CompiledPrimitive, "WINDOW_SIZE", case.window)
        if case.scatter >= 0 and CompiledPrimitive.SCATTER:
            put(CompiledPrimitive, "SCATTER", case.scatter == 1)
            put(CompiledPrimitive, "LATE_SUMS", case.scatter == 2)
        if case.inline >= 0:
            busy = bool(case.inline)
            put(pipeline, "no_core_free", lambda: busy)
        for name in ("limit", "churn", "rest"):
            if getattr(case, name):
                put(pipeline.ShapeTable, name.upper(), getattr(case, name))
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)


def run_engines_mix(case: MixCase) -> None:
    """On interleaved flows, over many small chunks, whatever the shape table holds: the bulk engines
    write the very bytes the scalar engine writes, with the same summary, messages and exit status."""
    with bulk_constants(case):
        _compare_engines(case.data, case, case.suffix)


def run_inspect_mix(case: MixCase) -> None:
    """On interleaved flows, over many small chunks: ``inspect --engine auto`` (the batch reader, the
    shapes, the plans, the compiled GRO preview) reports what ``--engine scalar`` reports, frame by
    frame, under the case's device, MTU, GSO size and other segment options (the JSON and the status)."""
    from click.testing import CliRunner

    from softgso.cli.commands import main

    options = ["--json", "-q", *_option_args(case)]
    with bulk_constants(case), tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / f"in.{case.suffix}"
        source.write_bytes(case.data)
        reports = []
        for engine in ("scalar", "auto"):
            result = CliRunner().invoke(main, ["inspect", str(source), "--engine", engine, *options])
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise result.exception
            reports.append((result.exit_code, result.stdout, result.stderr))
        assert reports[0][0] == reports[1][0], f"exit status: scalar {reports[0][0]}, auto {reports[1][0]}"
        assert reports[0][1] == reports[1][1], "inspect --engine auto's report differs from --engine scalar's"
        assert reports[0][2] == reports[1][2], "inspect --engine auto's messages differ from --engine scalar's"


# --- the registry, and the corpus ----------------------------------------------------------------


TARGETS: dict[str, tuple[type[Case], Callable[[Any], None]]] = {
    "transmit": (SkbCase, run_transmit),
    "process_frame": (FrameCase, run_process_frame),
    "virtio": (VirtioCase, run_virtio),
    "actions": (ActionCase, run_actions),
    "profile": (ProfileCase, run_profile),
    "capture": (CaptureCase, run_capture),
    "engines": (EngineCase, run_engines),
    "inspect": (CaptureCase, run_inspect),
    "engines_file": (CaptureCase, run_engines_on_file),
    "engines_mix": (MixCase, run_engines_mix),
    "inspect_mix": (MixCase, run_inspect_mix),
}

CORPUS = Path(__file__).parent / "corpus"


def run_case(case: Case) -> None:
    """Run a case through its target."""
    TARGETS[case.target][1](case)


def load_corpus_file(path: Path) -> Case:
    """A corpus entry: ``NAME.json`` (a case's JSON form, with ``target``)."""
    raw = json.loads(path.read_text())
    case_type = TARGETS[raw["target"]][0]
    return case_type.from_json({k: v for k, v in raw.items() if k not in ("target", "bug", "known_bug")})


def save_crasher(case: Case, name: str, bug: str) -> Path:
    """Store a crasher as a corpus entry (used when a fuzz run finds one)."""
    CORPUS.mkdir(exist_ok=True)
    path = CORPUS / f"{name}.json"
    payload = case.to_json()
    payload["bug"] = bug
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return path


def run_bytes(target: str, data: bytes) -> None:
    """Atheris entry: decode fuzzer bytes for ``target`` and run it."""
    case_type, runner = TARGETS[target]
    runner(case_type.from_bytes(data))  # type: ignore[attr-defined]


__all__ = ["TARGETS", "run_case", "run_bytes", "load_corpus_file", "save_crasher"]
