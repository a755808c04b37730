"""``softgso segment`` through the bulk path writes what the scalar path writes, byte for byte.

The reference is the same command with ``--engine scalar`` (one packet at a time through
process_frame): output file, JSON summary (but for the elapsed seconds and the output name),
reports and exit status must all be the same, for both bulk engines (compiled and numpy).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import recorded_progress, run_cli, spy_on_parts

from softgso.bulk.pipeline import ShapeTable
from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.cli.bench import MIXES, _frames, small_frames, write_capture


def mixed_frames(seed: int) -> Iterator[bytes]:
    """Super-packets of every common shape, small packets, partial seeds, odd and refused packets."""
    rng = random.Random(seed)
    big = _frames(MIXES["all"], 6000)
    small = small_frames()
    odd = [
        build_frame(SuperPacketSpec(payload=os.urandom(100), partial_checksum=True)),  # small, partial seed
        bytes(60),  # not IP
        build_frame(SuperPacketSpec(ipv6=True, udp=True, payload=os.urandom(3000), partial_checksum=False)),
        build_frame(SuperPacketSpec(payload=os.urandom(5000), ip_options=b"\x01\x01\x01\x00", df=False)),
        build_frame(SuperPacketSpec(ipv6=True, payload=os.urandom(4000), ipv6_exthdrs=((60, bytes([1, 4]) + bytes(4)),))),
        build_frame(SuperPacketSpec(payload=os.urandom(4001), tcp_flags=0x19)),  # odd payload, FIN
    ]
    while True:
        roll = rng.random()
        if roll < 0.45:
            for _ in range(rng.randint(1, 5)):
                yield next(big)
        elif roll < 0.55:
            yield rng.choice(odd)
        else:
            yield next(small)


TUNNEL_MIXES = ("vxlan", "geneve", "gre", "ipip")


def tunnel_frames(seed: int) -> Iterator[bytes]:
    """Tunnelled super-packets of every bench tunnel mix, small tunnelled packets (full checksums and
    seeds), and odd ones: outer UDP checksum computed (UDP_TUNNEL_CSUM), a GRE key and checksum,
    inner FIN/odd payload, fixed outer ID, a trailer, a tunnel under a label stack, GTP-U."""
    from softgso.check.synth import TunnelSpec, encapsulate

    rng = random.Random(seed)
    big = [_frames(MIXES[name], 5000, partial=bool(index % 2)) for index, name in enumerate(TUNNEL_MIXES)]
    inner4 = build_frame(SuperPacketSpec(payload=os.urandom(7001), tcp_flags=0x19))
    inner6 = build_frame(SuperPacketSpec(ipv6=True, payload=os.urandom(6000), partial_checksum=False))
    small4 = build_frame(SuperPacketSpec(payload=os.urandom(300), partial_checksum=False))
    small6 = build_frame(SuperPacketSpec(ipv6=True, payload=os.urandom(200), partial_checksum=True))
    odd = [
        encapsulate(inner4, TunnelSpec("vxlan", udp_csum=True)),
        encapsulate(inner6, TunnelSpec("geneve", udp_csum=True, ip_id=0xFFFE)),
        encapsulate(inner4, TunnelSpec("gretap", gre_key=99, gre_csum=True, outer_ipv6=True)),
        encapsulate(inner6, TunnelSpec("gre", gre_csum=True)),
        encapsulate(inner4, TunnelSpec("ipip", outer_ipv6=True)),
        encapsulate(small4, TunnelSpec("vxlan")), encapsulate(small6, TunnelSpec("vxlan", outer_ipv6=True)),
        encapsulate(small4, TunnelSpec("gretap", gre_csum=True, gso=False)), encapsulate(small6, TunnelSpec("ipip")),
        encapsulate(inner4, TunnelSpec("vxlan")) + bytes(4),  # a trailer
        encapsulate(inner4, TunnelSpec("vxlan"))[:12] + b"\x88\x47\x00\x06\x41\x40"
        + encapsulate(inner4, TunnelSpec("vxlan"))[14:],  # under a label stack: Linux drops it
        build_frame(SuperPacketSpec(udp=True, dport=2152, payload=os.urandom(3000), partial_checksum=False)),
    ]
    while True:
        roll = rng.random()
        if roll < 0.6:
            source = rng.choice(big)
            for _ in range(rng.randint(1, 6)):
                yield next(source)
        elif roll < 0.8:
            yield rng.choice(odd)
        else:
            yield rng.choice(odd[5:9])


@pytest.mark.parametrize("seed", [1, 2])
def test_bulk_segment_equals_scalar_segment_on_tunnelled_captures(tmp: Path, seed: int, engine: str) -> None:
    """VXLAN, Geneve, GRE/gretap and IP-in-IP super-packets go through the bulk engines as the scalar path cuts them."""
    capture = tmp / "in.pcap"
    write_capture(capture, 3 << 20, frames=tunnel_frames(seed))
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert bulk_json["outcomes"]["segmented"] > 100 and bulk_json["outcomes"]["unchanged"] > 0


@pytest.mark.parametrize("kind", ["vxlan", "geneve", "gretap", "gre", "ipip"])
def test_a_tunnelled_super_packets_checksum_state_is_its_inner_packets(tmp: Path, engine: str, kind: str) -> None:
    """A tunnelled super-packet whose inner TCP checksum does not add up (a payload byte changed after
    it was computed), in a run the bulk path segments: counted as the scalar path counts it, by its
    inner packet's checksum (not the outer UDP checksum's 0 of VXLAN or Geneve; GRE and IP-in-IP
    carry no outer one to read)."""
    from softgso.check.synth import TunnelSpec, encapsulate

    frames = []
    for k in range(6):
        payload = random.Random(k).randbytes(5000)  # (fixed: a random one's broken checksum may be a seed)
        inner = bytearray(build_frame(SuperPacketSpec(payload=payload, seq=5000 * k, partial_checksum=False)))
        if k % 2:
            inner[-1] ^= 0x5A  # the inner checksum no longer matches
        frames.append(encapsulate(bytes(inner), TunnelSpec(kind)))
    capture = tmp / "in.pcap"
    capture.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1) + b"".join(
        struct.pack("<IIII", 1_700_000_000, k, len(frame), len(frame)) + frame for k, frame in enumerate(frames)))
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert bulk_json["outcomes"]["segmented"] == len(frames)
    assert bulk_json["input_checksums"] == {"complete": 3, "invalid": 3}


# TCP-AO (kind 29) in the 12 bytes of options where the others carry timestamps: the same shape
# but for the signature, which the scalar path passes through
TCP_AO = bytes([29, 12]) + os.urandom(10)


def interleaved_flows(flows: int, signed_every: int = 0, payload_len: int = 6000) -> Iterator[bytes]:
    """One super-packet of each of ``flows`` TCP flows in turn (IPv4, every third IPv6; its own port,
    partial seeds on every other), the ``signed_every``-th packet with a TCP-AO option."""
    from softgso.cli.bench import TIMESTAMPS

    payload = os.urandom(payload_len)
    seqs = [1000 * flow for flow in range(flows)]
    number = 0
    while True:
        for flow in range(flows):
            number += 1
            signed = signed_every and number % signed_every == 0
            yield build_frame(SuperPacketSpec(ipv6=flow % 3 == 2, payload=payload, sport=20000 + flow, seq=seqs[flow],
                                              tcp_options=TCP_AO if signed else TIMESTAMPS,
                                              partial_checksum=flow % 2 == 1))
            seqs[flow] += payload_len


@pytest.mark.parametrize(("capture_format", "link"), [("pcap", "ethernet"), ("pcapng", "ethernet"), ("pcap", "sll2"),
                                                     ("pcap", "raw")])
@pytest.mark.parametrize("flows", [3, 40, 300])
def test_bulk_segment_equals_scalar_segment_on_interleaved_flows(tmp: Path, engine: str, capture_format: str,
                                                                 link: str, flows: int,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Flows taking turns packet by packet (runs of one), over several chunks, more flows than the
    compiled walk keeps shapes of (pipeline.ShapeTable), a signed packet now and then: what the scalar
    path writes, every signed packet passed through as it does. The compiled engine finds most
    packets' shapes among the templates (all but a few, with fewer flows than it keeps)."""
    from softgso.bulk import compiled_primitive

    matched: list[int] = []
    if engine == "compiled":
        match_shapes = compiled_primitive.CompiledPrimitive.match_shapes

        def match_and_count(self: Any, *args: Any) -> int:
            matched.append(match_shapes(self, *args))
            return matched[-1]

        monkeypatch.setattr(compiled_primitive.CompiledPrimitive, "match_shapes", match_and_count)
    capture = tmp / f"in.{capture_format}"
    write_capture(capture, 9 << 20, frames=interleaved_flows(flows, signed_every=41), capture_format=capture_format,
                  link=link)
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine)
    assert bulk == scalar
    assert bulk_json == scalar_json
    records = bulk_json["records_in"]
    assert bulk_json["outcomes"]["segmented"] == records - records // 41 > 1000
    if engine == "compiled" and flows < ShapeTable.LIMIT:
        assert sum(matched) > records * 0.9


@pytest.mark.parametrize("capture_format", ["pcap", "pcapng"])
def test_bulk_segment_equals_scalar_segment_on_flows_of_many_lengths(tmp: Path, engine: str, capture_format: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A sending host's capture (bench.host_frames): each flow's super-packets of 1 to 44 segments and
    part tails, seeded ACKs between them. What the scalar path writes; the compiled engine keeps a
    template a flow (pipeline.ShapeTable: of any length), not one a flow and length, and hands a
    chunk's runs to the primitive in a few calls, the ACKs between them written in their place."""
    from softgso.bulk import compiled_primitive, pipeline
    from softgso.cli.bench import host_frames

    added: list[int] = []
    calls: list[int] = []
    if engine == "compiled":
        add = ShapeTable.add

        def add_and_count(self: ShapeTable, *args: Any) -> None:
            add(self, *args)
            added.append(len(self.entries))

        monkeypatch.setattr(ShapeTable, "add", add_and_count)
        bulk_of = pipeline.SegmentStream._bulk

        def bulk_and_count(self: Any, pending: list[Any], *args: Any) -> Any:
            calls.append(len(pending))
            return bulk_of(self, pending, *args)

        monkeypatch.setattr(pipeline.SegmentStream, "_bulk", bulk_and_count)
    capture = tmp / f"in.{capture_format}"
    write_capture(capture, 24 << 20, frames=host_frames(flows=6, seed=2), capture_format=capture_format)
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert bulk_json["outcomes"]["segmented"] > 500
    if engine == "compiled":
        assert compiled_primitive.CompiledPrimitive.SHAPES and max(added) == 6
        assert compiled_primitive.CompiledPrimitive.RAW_RUNS and 0 < len(calls) * 20 < bulk_json["outcomes"]["segmented"]


@pytest.mark.parametrize("options", [("--device", "csum"), ("--device", "nic-vxlan-tso"), ("--device", "tso"),
                                     ("--gso-size", "1000"), ("--ip-id", "fixed"), ("--input-csum", "partial"),
                                     ("--input-csum", "complete"), ("--output-csum", "partial"), ("--mtu", "9000"),
                                     ("--tunnel-port", "vxlan:5201"), ("--kernel", "6.12")])
def test_bulk_segment_equals_scalar_segment_on_tunnels_under_options(tmp: Path, options: tuple[str, ...],
                                                                     engine: str) -> None:
    capture = tmp / "in.pcap"
    write_capture(capture, 1 << 20, frames=tunnel_frames(5))
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine, *options)
    assert bulk == scalar
    assert bulk_json == scalar_json


def _bulk_engines() -> list[str]:
    """The bulk engines that can run here: compiled only where softgso.bulk._segment is built."""
    from softgso.bulk import compiled_primitive

    return [*(["compiled"] if compiled_primitive.available() else []), "numpy"]


@pytest.fixture(params=_bulk_engines())
def engine(request: pytest.FixtureRequest) -> str:
    """The bulk engine under test."""
    return str(request.param)


# how a bulk stream takes IN: read into buffers, or mapped a window at a time (the compiled engine's
# default for a regular file), the payloads written from the mapping, by the writing thread or
# (MAPPED_INLINE: what a machine with no core to spare gets, chunks.no_core_free) by the segmenting one
READ, MAPPED = "read", "mapped"
MAPPED_INLINE = "mapped, written by the segmenting thread"


def mapping_engines() -> list[str]:
    """The bulk engines that map their input (the compiled one, where built); the numpy engine reads."""
    return [engine for engine in _bulk_engines() if stream_of(engine)[0].WINDOW_SIZE]


def engine_modes(*modes: str) -> list[tuple[str, str]]:
    """(engine, mode) for every bulk engine and each of ``modes`` it has: every engine reads (READ),
    only mapping_engines() map (any other mode is one of the mapped input's)."""
    mapping = mapping_engines()
    return [(engine, mode) for engine in _bulk_engines() for mode in modes if mode == READ or engine in mapping]


def _summary(result_stdout: str) -> dict:
    payload = json.loads(result_stdout)
    payload.pop("seconds")
    payload.pop("output")
    payload.pop("engine")  # which engine ran, and what its bulk code took (the one thing that differs)
    return payload


# The bench's synthetic UDP super-packets are USO by construction: that is the truthful GSO metadata
# (a capture cannot say it; without it they pass through unchanged and are reported).
USO = ("--udp-gso", "udp_l4")


def _both(capture: Path, tmp: Path, engine: str, *options: str) -> tuple[bytes, bytes, dict, dict]:
    bulk = run_cli("segment", capture, tmp / "bulk.pcap", "--json", "--engine", engine, *options)
    scalar = run_cli("segment", capture, tmp / "scalar.pcap", "--json", "--engine", "scalar", *options)
    assert bulk.exit_code == scalar.exit_code
    assert bulk.stderr == scalar.stderr
    return ((tmp / "bulk.pcap").read_bytes(), (tmp / "scalar.pcap").read_bytes(), _summary(bulk.stdout),
            _summary(scalar.stdout))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bulk_segment_equals_scalar_segment_on_a_mixed_capture(tmp: Path, seed: int, engine: str) -> None:
    capture = tmp / "in.pcap"
    write_capture(capture, 3 << 20, frames=mixed_frames(seed))
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine, *USO)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert bulk_json["outcomes"]["segmented"] > 0 and bulk_json["outcomes"]["unchanged"] > 0


@pytest.mark.parametrize("options", [("--device", "csum"), ("--device", "nic-tso-no-mpls-gso"),
                                     ("--gso-size", "1000"), ("--ip-id", "fixed"), ("--input-csum", "complete"),
                                     ("--output-csum", "partial"), ("--action", "push-mpls:100:0:64:uc"),
                                     ("--vnet-hdr", "01013600a80522001000"), ("--mtu", "9000"),
                                     ("--udp-gso", "off"), ("--udp-gso", "udp")])
def test_bulk_segment_equals_scalar_segment_under_options(tmp: Path, options: tuple[str, ...], engine: str) -> None:
    capture = tmp / "in.pcap"
    write_capture(capture, 1 << 20, frames=mixed_frames(7))
    uso = () if options[0] == "--udp-gso" else USO
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine, *uso, *options)
    assert bulk == scalar
    assert bulk_json == scalar_json


def _recoded(source: Path, target: Path, big_endian: bool, nanosecond: bool) -> None:
    """The little-endian microsecond capture ``source`` as another classic pcap flavour, record for record."""
    data = source.read_bytes()
    order = ">" if big_endian else "<"
    _, major, minor, zone, sigfigs, snaplen, linktype = struct.unpack_from("<IHHiIII", data)
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    out = bytearray(struct.pack(order + "IHHiIII", magic, major, minor, zone, sigfigs, snaplen, linktype))
    pos = 24
    while pos + 16 <= len(data):
        seconds, fraction, caplen, orig_len = struct.unpack_from("<IIII", data, pos)
        out += struct.pack(order + "IIII", seconds, fraction * 1000 + 7 if nanosecond else fraction, caplen, orig_len)
        out += data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
    target.write_bytes(bytes(out))


@pytest.mark.parametrize(("big_endian", "nanosecond"), [(True, False), (False, True), (True, True)])
def test_bulk_segment_equals_scalar_segment_in_every_pcap_flavour(tmp: Path, engine: str, big_endian: bool,
                                                                  nanosecond: bool) -> None:
    """Record headers in either byte order, µs or ns timestamps: the segments' record headers follow IN's."""
    plain = tmp / "plain.pcap"
    write_capture(plain, 1 << 20, frames=mixed_frames(11))
    capture = tmp / "flavour.pcap"
    _recoded(plain, capture, big_endian, nanosecond)
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine, *USO)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert bulk_json["outcomes"]["segmented"] > 0
    assert bulk[:4] == capture.read_bytes()[:4], "OUT keeps IN's magic (byte order, timestamp unit)"


def test_snapped_and_unusual_records_are_reported_alike(tmp: Path, engine: str) -> None:
    frames = [build_frame(SuperPacketSpec(payload=os.urandom(8000))) for _ in range(3)]
    records = b""
    for index, frame in enumerate(frames):
        orig = len(frame) + (500 if index == 1 else 0)  # record 1 is snapped
        records += struct.pack("<IIII", 100, 5, len(frame), orig) + frame
    records += struct.pack("<IIII", 101, 2_000_000, len(frames[0]), len(frames[0])) + frames[0]  # usec >= 1 s
    capture = tmp / "odd.pcap"
    capture.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1) + records)
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine)
    assert bulk == scalar
    assert bulk_json == scalar_json


def stream_of(engine: str) -> tuple[Any, Any]:
    """The bulk engine's primitive class (its tuned constants) and the pipeline's stream class."""
    from softgso.bulk.compiled_primitive import CompiledPrimitive
    from softgso.bulk.numpy_primitive import NumpyPrimitive
    from softgso.bulk.pipeline import SegmentStream

    return (CompiledPrimitive if engine == "compiled" else NumpyPrimitive), SegmentStream


def test_the_numpy_engine_reads_its_input_and_never_maps_it(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The numpy engine has no mapped input (engine_modes gives it the read mode alone): a run over a
    regular file takes no chunk from a mapping and writes what the scalar path writes."""
    in_place = mapped_views(monkeypatch)
    capture = tmp / "in.pcap"
    write_capture(capture, 3 << 20, frames=mixed_frames(4))
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, "numpy", *USO)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert in_place == []
    assert ("numpy", MAPPED) not in engine_modes(READ, MAPPED)


@pytest.mark.parametrize(("engine", "mode"), engine_modes(READ, MAPPED, MAPPED_INLINE))
@pytest.mark.parametrize("chunk", [4096, 70_001, 300_000])
def test_records_across_chunk_ends_are_segmented_alike(tmp: Path, chunk: int, engine: str, mode: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A bulk stream takes a chunk and the longest record a bulk stream takes beyond it: with small
    chunks nearly every record crosses a chunk's end, some of them as long as the limit (mapped: and
    windows of two chunks, so chunks cross windows' ends too)."""
    primitive, stream = stream_of(engine)
    in_place = input_mode(engine, mode, monkeypatch, small_windows=True)
    monkeypatch.setattr(primitive, "CHUNK_SIZE", chunk)
    monkeypatch.setattr(primitive, "MAPPED_CHUNK_SIZE", chunk)
    resumed = []
    run = stream.run

    def run_and_tell(self: Any, *args: object, **kwargs: object) -> object:
        result = run(self, *args, **kwargs)
        resumed.append(result.resume_index)
        return result

    monkeypatch.setattr(stream, "run", run_and_tell)
    frames = list(itertools.islice(mixed_frames(9), 300))
    longest = 262144  # the capture's snaplen: the longest record the bulk stream takes
    for at in (5, 77, 150, 299):
        frames.insert(at, build_frame(SuperPacketSpec(payload=os.urandom(60000))) + os.urandom(200_000))
        frames.insert(at + 1, bytes(range(256)) * (longest // 256))
    capture = tmp / "in.pcap"
    write_capture(capture, 24 + sum(16 + len(f) for f in frames), frames=iter(frames))
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine, *USO)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert bulk_json["records_in"] == len(frames)
    assert resumed == [None], "every record read by the bulk stream, none left to the general reader"
    assert (len(in_place) > 3) == (mode != READ)




def input_mode(engine: str, mode: str, monkeypatch: pytest.MonkeyPatch, small_windows: bool = False) -> list[int]:
    """Make the bulk stream of ``engine`` take IN as ``mode`` says (only the modes engine_modes gives
    it: the numpy engine reads; a mode that names the segmenting thread has it write the chunks, any
    other the writing thread, whatever the machine's load); the offsets of the chunks then read in
    place from a mapping, as they come (``small_windows``: windows of two chunks, the least the stream
    maps, so that a run maps many)."""
    from softgso.bulk import pipeline

    primitive, _ = stream_of(engine)
    monkeypatch.setattr(pipeline, "no_core_free", lambda: "segmenting thread" in mode)
    if mode == READ:
        monkeypatch.setattr(primitive, "WINDOW_SIZE", 0)
    elif not primitive.WINDOW_SIZE:
        raise ValueError(f"the {engine} engine reads its input, never maps it: no {mode} mode")
    elif small_windows:
        monkeypatch.setattr(primitive, "WINDOW_SIZE", 1)
    return mapped_views(monkeypatch)


def mapped_views(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The offsets of the chunks a bulk stream then takes in place from IN's mapping, as they come."""
    from softgso.bulk import chunks

    in_place: list[int] = []
    view = chunks.MappedInput.view

    def view_and_tell(self: Any, pos: int, length: int) -> Any:
        in_place.append(pos)
        return view(self, pos, length)

    monkeypatch.setattr(chunks.MappedInput, "view", view_and_tell)
    return in_place


def cut_while_read_like_reference(tmp: Path, capture: Path, engine: str, monkeypatch: pytest.MonkeyPatch,
                                  mode: str = READ) -> None:
    """``capture`` cut short (in its last chunk, in its first) once a bulk stream has learnt its size:
    exit 3, the scalar path's message, and what came before the cut written as the scalar path writes it."""
    from softgso.bulk import pipeline

    whole = capture.read_bytes()
    stat = os.fstat
    suffix = capture.suffix
    for cut in (len(whole) - 100_001, 9001):
        def stat_before_the_cut(fd: int, cut: int = cut) -> os.stat_result:
            found = stat(fd)
            if os.path.realpath(f"/proc/self/fd/{fd}") == str(capture.resolve()):
                capture.write_bytes(whole[:cut])  # cut after the stream learnt the size
                fields = list(found)
                fields[6] = len(whole)  # st_size
                return os.stat_result(fields)
            return found

        capture.write_bytes(whole)
        input_mode(engine, mode, monkeypatch)
        monkeypatch.setattr(pipeline.os, "fstat", stat_before_the_cut)
        result = run_cli("segment", capture, tmp / f"out{suffix}", "--engine", engine, *USO)
        monkeypatch.undo()
        reference = run_cli("segment", capture, tmp / f"reference{suffix}", "--engine", "scalar", *USO)
        assert result.exit_code == reference.exit_code == 3
        assert result.stderr == reference.stderr and "cut short" in result.stderr
        assert (tmp / f"out{suffix}").read_bytes() == (tmp / f"reference{suffix}").read_bytes()


# where another writer cuts IN during a run: after the stream read its second chunk (READ); after the
# second chunk's window view is taken, before its walk and checksum sums touch it (MAPPED_SCAN: the
# touches of pages past the cut raise SIGBUS, answered by the guard); after that chunk is walked and
# summed, just before its writev copies the payloads out of the mapping (MAPPED_WRITE)
MAPPED_SCAN, MAPPED_WRITE = "mapped, cut before the walk", "mapped, cut before the writev"
MAPPED_WRITE_INLINE = "mapped, cut before the writev of the segmenting thread"


def cut_at(mode: str, action: Callable[[], None], monkeypatch: pytest.MonkeyPatch, *,
           after_write: bool = False) -> list[int]:
    """Call ``action`` (cut IN) at the second chunk as ``mode`` says; the calls seen so far (a list
    that grows with each chunk, so a test can tell the cut came mid-run). ``after_write``: with
    MAPPED_WRITE, once the second chunk is written instead of before. Written chunks are told by the
    thread that wrote them."""
    from softgso.bulk import chunks, pipeline

    calls: list[int] = []
    if mode == READ:
        fill = pipeline.fill

        def fill_then_cut(*args: Any) -> int:
            got = fill(*args)
            calls.append(got)
            if len(calls) == 2:
                action()
            return got

        monkeypatch.setattr(pipeline, "fill", fill_then_cut)
    elif mode == MAPPED_SCAN:
        view = chunks.MappedInput.view

        def view_then_cut(self: Any, pos: int, length: int) -> Any:
            found = view(self, pos, length)
            calls.append(pos)
            if len(calls) == 2:
                action()
            return found

        monkeypatch.setattr(chunks.MappedInput, "view", view_then_cut)
    else:
        write_parts = pipeline.write_parts

        def cut_and_write(*args: Any) -> None:
            calls.append(threading.get_ident())
            if len(calls) == 2 and not after_write:
                action()
            write_parts(*args)
            if len(calls) == 2 and after_write:
                action()

        monkeypatch.setattr(pipeline, "write_parts", cut_and_write)
    return calls


def cut_during_the_run_like_reference(tmp: Path, capture: Path, engine: str, monkeypatch: pytest.MonkeyPatch,
                                      mode: str = READ) -> int:
    """``capture`` cut short by another writer while a bulk stream is under way (at its second chunk, as
    ``mode`` says; the chunks small, the payloads of segmented packets written from the read buffers
    or the mapping as iovecs): exit 3 and the scalar path's message, no crash; OUT holds every record
    the scalar path writes from the file as it is left (the scalar output of the cut file is a prefix
    of it), and nothing but what the scalar path writes from the whole file (it is a prefix of that:
    records read before the cut may be there too, whole). Returns how many pages of a mapping the
    SIGBUS guard answered meanwhile."""
    from softgso.bulk import compiled_primitive

    whole = capture.read_bytes()
    suffix = capture.suffix
    assert run_cli("segment", capture, tmp / f"whole{suffix}", "--engine", "scalar", *USO).exit_code == 0
    from_whole = (tmp / f"whole{suffix}").read_bytes()
    primitive, _ = stream_of(engine)
    guard = compiled_primitive._SEGMENT
    faults = guard.guard_faults() if guard is not None and hasattr(guard, "guard_faults") else 0
    # (MAPPED_SCAN: in the second chunk's records, which its walk and sums then touch)
    for cut in (len(whole) - 100_001, 200_001 if mode == MAPPED_SCAN else 300_001):
        capture.write_bytes(whole)
        input_mode(engine, mode, monkeypatch)
        monkeypatch.setattr(primitive, "CHUNK_SIZE", 128 << 10)
        monkeypatch.setattr(primitive, "MAPPED_CHUNK_SIZE", 128 << 10)
        calls = cut_at(mode, lambda cut=cut: os.truncate(capture, cut), monkeypatch)  # type: ignore[misc]
        result = run_cli("segment", capture, tmp / f"out{suffix}", "--engine", engine, *USO)
        monkeypatch.undo()
        assert len(calls) >= 2, "the cut came while the stream was under way"
        written_here = {threading.get_ident()} == set(calls)
        assert written_here == (mode == MAPPED_WRITE_INLINE) or mode in (READ, MAPPED_SCAN)
        reference = run_cli("segment", capture, tmp / f"reference{suffix}", "--engine", "scalar", *USO)
        assert result.exit_code == reference.exit_code == 3
        # the scalar path's message, unless the cut fell behind records already written: then the first
        # record not written is named (test_input_cut_behind_a_bulk_run_names_the_first_record_not_written)
        assert "cut short" in result.stderr
        assert result.stderr == reference.stderr or "input changed underneath" in result.stderr
        out = (tmp / f"out{suffix}").read_bytes()
        from_cut = (tmp / f"reference{suffix}").read_bytes()
        assert len(from_cut) > min(cut, 200_001) // 2
        assert out.startswith(from_cut)
        assert from_whole.startswith(out)
    return guard.guard_faults() - faults if guard is not None and hasattr(guard, "guard_faults") else 0


CUT_MODES = [READ, MAPPED_SCAN, MAPPED_WRITE, MAPPED_WRITE_INLINE]


@pytest.mark.parametrize(("engine", "mode"), engine_modes(*CUT_MODES))
def test_input_cut_short_during_a_bulk_run_keeps_every_record_before_the_cut(
        tmp: Path, engine: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    capture = tmp / "in.pcap"
    write_capture(capture, 3 << 20, frames=mixed_frames(12))
    faults = cut_during_the_run_like_reference(tmp, capture, engine, monkeypatch, mode)
    if mode == MAPPED_SCAN:
        assert faults > 0, "pages past the cut were touched in the mapping and answered by the guard"


@pytest.mark.parametrize(("engine", "mode"), engine_modes(READ, MAPPED))
def test_input_cut_short_while_a_bulk_stream_reads_it_is_a_truncated_capture(
        tmp: Path, engine: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """IN shorter than it was when the run started (truncated by another process): what is there is
    segmented and the cut is reported, exit 3 (no SIGBUS, read or mapped)."""
    capture = tmp / "in.pcap"
    write_capture(capture, 3 << 20, frames=mixed_frames(11))
    cut_while_read_like_reference(tmp, capture, engine, monkeypatch, mode)


@pytest.mark.parametrize(("engine", "mode"), engine_modes(READ, MAPPED_WRITE, MAPPED_WRITE_INLINE))
def test_input_cut_behind_a_bulk_run_names_the_first_record_not_written(
        tmp: Path, engine: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """IN cut short by another writer *behind* the records a bulk stream already read and wrote (to
    100,001 bytes once two 128 KiB chunks are read, or, mapped, once two are written: a chunk whose
    bytes vanished before its writev is given back to the general reader): the report names the first
    record not written, says IN changed underneath, and OUT is exactly the reference path's output of
    the records before it (IN cut at that record's start, by hand)."""
    capture = tmp / "in.pcap"
    write_capture(capture, 3 << 20, frames=mixed_frames(12))
    whole = capture.read_bytes()
    primitive, _ = stream_of(engine)
    input_mode(engine, mode, monkeypatch)
    monkeypatch.setattr(primitive, "CHUNK_SIZE", 128 << 10)
    monkeypatch.setattr(primitive, "MAPPED_CHUNK_SIZE", 128 << 10)
    calls = cut_at(mode, lambda: os.truncate(capture, 100_001), monkeypatch, after_write=True)
    result = run_cli("segment", capture, tmp / "out.pcap", "--engine", engine, *USO)
    monkeypatch.undo()
    assert len(calls) >= 2
    assert ({threading.get_ident()} == set(calls)) == (mode == MAPPED_WRITE_INLINE)
    assert result.exit_code == 3
    first_missing = int(result.stderr.split("softgso: frame ")[1].split(":")[0]) - 1
    assert "input changed underneath" in result.stderr and "cut short" in result.stderr
    # the records' starts read from their pcap record headers
    at = 24
    for _ in range(first_missing):
        at += 16 + struct.unpack_from("<I", whole, at + 8)[0]
    assert at > 100_001, "the report names a record past the cut, which OUT already holds before it"
    (tmp / "before.pcap").write_bytes(whole[:at])
    assert run_cli("segment", tmp / "before.pcap", tmp / "reference.pcap", "--engine", "scalar", *USO).exit_code == 0
    assert (tmp / "out.pcap").read_bytes() == (tmp / "reference.pcap").read_bytes()


def test_truncated_capture_fails_alike(tmp: Path, engine: str) -> None:
    capture = tmp / "cut.pcap"
    write_capture(capture, 1 << 20, frames=mixed_frames(4))
    capture.write_bytes(capture.read_bytes()[:-300])
    bulk = run_cli("segment", capture, tmp / "bulk.pcap", "--engine", engine, *USO)
    scalar = run_cli("segment", capture, tmp / "scalar.pcap", "--engine", "scalar", *USO)
    assert bulk.exit_code == scalar.exit_code == 3
    assert bulk.stderr == scalar.stderr
    assert (tmp / "bulk.pcap").read_bytes() == (tmp / "scalar.pcap").read_bytes()


@pytest.mark.usefixtures("always_parts")
@pytest.mark.parametrize("jobs", ["2", "3"])
def test_jobs_output_equals_one_job(tmp: Path, jobs: str, engine: str) -> None:
    capture = tmp / "in.pcap"
    write_capture(capture, 2 << 20, frames=mixed_frames(5))
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine, *USO, "--jobs", jobs)
    assert bulk == scalar
    assert bulk_json == scalar_json


@pytest.mark.usefixtures("always_parts")
def test_jobs_keep_the_progress_bar(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--jobs: the bar is told the bytes all parts have read, up to every byte after the file header."""
    told = recorded_progress(monkeypatch)
    capture = tmp / "in.pcap"
    write_capture(capture, 2 << 20, frames=mixed_frames(5))
    result = run_cli("segment", capture, tmp / "out.pcap", "--jobs", "2", *USO)
    assert result.exit_code == 0, result.stderr
    assert told and told[-1] == capture.stat().st_size - 24
    assert told == sorted(told)


def _jobs_in_parts(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each --jobs run was done in parts (softgso.cli.runner._segment_jobs answered) or in one job."""
    from softgso.cli import runner

    return spy_on_parts(monkeypatch, runner, "_segment_jobs")


@pytest.mark.parametrize("capture_format", ["pcap", "pcapng"])
def test_jobs_do_super_packets_in_one_job(tmp: Path, engine: str, capture_format: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Super-packets the bulk stream segments: --jobs 2 runs as one job (parts would be slower), and
    writes what the scalar path writes."""
    in_parts = _jobs_in_parts(monkeypatch)
    capture = tmp / f"in.{capture_format}"
    write_capture(capture, 6 << 20, "issue", capture_format=capture_format)
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine, "--jobs", "2")
    assert in_parts == [False]
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert bulk_json["outcomes"]["segmented"] == bulk_json["records_in"]


@pytest.mark.parametrize("capture_format", ["pcap", "pcapng"])
def test_jobs_cut_datagrams_that_go_one_by_one(tmp: Path, engine: str, capture_format: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """UDP datagrams over the MTU without --udp-gso go one by one (each passed through unchanged and
    reported): --jobs 3 cuts the file into parts, and OUT is IN, as the scalar path writes it."""
    in_parts = _jobs_in_parts(monkeypatch)
    capture = tmp / f"in.{capture_format}"
    write_capture(capture, 6 << 20, "uso", capture_format=capture_format)
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine, "--jobs", "3")
    assert in_parts == [True]
    assert bulk == scalar == capture.read_bytes()
    assert bulk_json == scalar_json
    assert bulk_json["outcomes"]["not_segmented"] == bulk_json["records_in"] > 0


def test_many_captures_on_a_local_dask_cluster(tmp: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    folder = tmp / "captures"
    folder.mkdir()
    for seed in (1, 2):
        write_capture(folder / f"c{seed}.pcap", 1 << 20, frames=mixed_frames(seed))
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        result = run_cli("segment", folder, tmp / "out", "--dask-scheduler", cluster.scheduler_address, "--json", *USO)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [Path(c["input"]).name for c in report["captures"]] == ["c1.pcap", "c2.pcap"]
    for seed in (1, 2):
        run_cli("segment", folder / f"c{seed}.pcap", tmp / f"ref{seed}.pcap", "--engine", "scalar", "-q", *USO)
        assert (tmp / "out" / f"c{seed}.pcap").read_bytes() == (tmp / f"ref{seed}.pcap").read_bytes()


def test_compiled_engine_where_not_built_is_a_usage_error(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from softgso.bulk import compiled_primitive

    monkeypatch.setattr(compiled_primitive, "_SEGMENT", None)
    capture = tmp / "in.pcap"
    write_capture(capture, 1 << 16, frames=mixed_frames(1))
    result = run_cli("segment", capture, tmp / "out.pcap", "--engine", "compiled")
    assert result.exit_code == 2
    assert "not built" in result.stderr
    assert not (tmp / "out.pcap").exists()


def test_bench_quick_mode_emits_its_json_keys() -> None:
    result = run_cli("bench", "--size", "2M", "--repeat", "1", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("softgso_over_cp", "engine_over_memcpy", "passthrough_packets_per_s", "softgso_max_rss_mib",
                "cp_seconds", "softgso_seconds", "memcpy_gbyte_s", "engine_gbyte_s"):
        assert key in report, key
    assert "softgso_over_scapy" in report or "scapy" in report
    assert "softgso_over_tcprewrite" in report or "tcprewrite" in report
    # every time reported was of an output that passed its check
    assert report["cp_output_identical"] is True
    for key in ("softgso_output_check", "engine_output_check", "passthrough_output_check", "pcapng_output_check",
                "sll2_output_check", "raw_output_check", "interleaved_output_check", "host_output_check"):
        assert report[key]["ok"] and report[key]["packets_out"] == report[key]["expected_out"] > 0, key
    assert report["softgso_output_check"]["packets_out"] == report["segments_out"]
    # CPU beside wall, the other formats and link types, start-up on its own
    for key in ("softgso_cpu_over_cp", "pcapng_over_cp", "pcapng_cpu_over_cp", "sll2_over_cp", "raw_over_cp",
                "interleaved_over_cp", "interleaved_cpu_over_cp", "host_over_cp", "host_cpu_over_cp",
                "startup_empty_seconds", "startup_one_packet_seconds"):
        assert report[key] > 0, key


def test_bench_takes_a_pcapng_main_capture() -> None:
    result = run_cli("bench", "--size", "2M", "--repeat", "1", "--json", "--no-peers", "--format", "pcapng")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["format"] == "pcapng" and report["softgso_output_check"]["ok"]


def test_bench_only_command_measures_the_fou_mix_against_cp_alone() -> None:
    """--only command: the whole segment command vs cp, nothing else; the fou mix's outputs pass segcheck
    (told its FOU and GUE ports) and the command is told them too (--tunnel-port)."""
    result = run_cli("bench", "--size", "4M", "--repeat", "1", "--json", "--mix", "fou", "--only", "command")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["mix"] == "fou" and report["cp_output_identical"] is True
    for key in ("softgso_output_check", "numpy_stream_output_check"):
        if key in report:
            assert report[key]["ok"] and report[key]["flows"] == 4, key
    assert report["softgso_output_check"]["packets_out"] == report["segments_out"] > 4 * report["packets"]
    assert not {"engine_over_memcpy", "passthrough_packets_per_s", "pcapng_over_cp", "coalesce_over_cp"} & set(report)


def test_the_bench_reports_each_commands_own_peak_memory() -> None:
    """A command forked from a big process would report that process's peak (kept across exec):
    the bench's figure must be the command's own, small for a small command, large for a large one."""
    import resource
    import sys

    from softgso.cli.bench import run_child

    ours_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    small = run_child(["true"])
    large = run_child([sys.executable, "-c", "x = bytearray(80 << 20); x[::4096] = b'1' * len(x[::4096])"])
    assert small.max_rss_kib < 16 * 1024 < ours_kib, (small, ours_kib)
    assert large.max_rss_kib > 80 * 1024, large
    with pytest.raises(RuntimeError, match="failed \\(3\\)"):
        run_child(["sh", "-c", "exit 3"])


def test_bulk_segment_equals_scalar_segment_on_the_bench_fou_mix(tmp: Path, engine: str) -> None:
    """The bench's FOU/GUE mix with its --tunnel-port options: the bulk stream takes it (plans), as the scalar path cuts it."""
    from softgso.cli.bench import udp_gso_args

    capture = tmp / "in.pcap"
    write_capture(capture, 2 << 20, "fou")
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine, *udp_gso_args("fou"))
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert bulk_json["outcomes"]["segmented"] == bulk_json["records_in"] > 0
    report = json.loads(run_cli("segment", capture, tmp / "again.pcap", "--json", "--engine", engine,
                                *udp_gso_args("fou")).stdout)
    assert report["engine"] == {"name": engine, "records_in_bulk": report["records_in"], "records_one_by_one": 0}


@pytest.mark.parametrize("engine", mapping_engines())
def test_records_passed_through_one_by_one_never_hold_mapped_windows(tmp: Path, engine: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """UDP datagrams over the MTU without --udp-gso go one by one to the scalar path, which passes each
    through and reports it: a long run of them maps many windows (here of two 128 KiB chunks), and
    none may stay held by what the scalar path keeps of a record (its reason), or the stream runs
    out of guarded windows (the cyclic collector is kept off for the run: what a collection that does
    not come round in time leaves). The same bytes and summary as the scalar path."""
    import gc

    primitive, _ = stream_of(engine)
    in_place = input_mode(engine, MAPPED, monkeypatch, small_windows=True)
    monkeypatch.setattr(primitive, "MAPPED_CHUNK_SIZE", 128 << 10)
    frames = [build_frame(SuperPacketSpec(udp=True, payload=os.urandom(60000), sport=4000 + n)) for n in range(120)]
    for capture_format in ("pcap", "pcapng"):
        in_place.clear()
        capture = tmp / f"in.{capture_format}"
        write_capture(capture, sum(len(f) for f in frames), frames=itertools.cycle(frames),
                      capture_format=capture_format)
        gc.disable()
        try:
            bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine)
        finally:
            gc.enable()
        assert bulk == scalar
        assert bulk_json == scalar_json
        assert bulk_json["outcomes"]["not_segmented"] == bulk_json["records_in"] > 100
        assert len(in_place) > 20, "many windows mapped"


@pytest.mark.parametrize("engine", mapping_engines())
def test_a_stream_whose_guarded_windows_are_all_held_goes_on_reading(tmp: Path, engine: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """When every guarded slot is still held (the guard has a few), the next chunk is not mapped:
    the general reader takes the rest of IN from there, and OUT and the summary are the scalar path's."""
    primitive, _ = stream_of(engine)
    in_place = input_mode(engine, MAPPED, monkeypatch, small_windows=True)
    monkeypatch.setattr(primitive, "MAPPED_CHUNK_SIZE", 128 << 10)
    real = primitive.GUARD

    class FewSlots:
        """The real guard, refusing a fourth slot as one with every slot taken does."""

        def __init__(self) -> None:
            self.added = 0

        def guard_add(self, buffer: Any) -> int:
            self.added += 1
            if self.added > 3:
                raise RuntimeError("guard_add: every slot taken")
            return int(real.guard_add(buffer))

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr(primitive, "GUARD", FewSlots())
    capture = tmp / "in.pcap"
    write_capture(capture, 3 << 20, frames=mixed_frames(4))
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine, *USO)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert len(in_place) >= 4, "mapped until the slots ran out"


def odd_checksum_frames() -> Iterator[bytes]:
    """TCP super-packets of one shape (bursts of a flow) whose checksum field holds what the bulk code
    calls invalid and the scalar path names: the seed without the length, zero, a wrong sum; between
    them good ones (complete, partial)."""
    from softgso.checksum import pseudo_header_sum
    from softgso.prepare import check_offset, parse_layout

    rng = random.Random(5)
    payload = os.urandom(9000)
    seq = 1
    while True:
        frame = bytearray(build_frame(SuperPacketSpec(payload=payload, seq=seq, partial_checksum=rng.random() < 0.5)))
        seq += len(payload)
        layout = parse_layout(frame)
        assert layout is not None
        at = check_offset(layout)
        src, dst = bytes(frame[layout.network + 12 : layout.network + 16]), bytes(frame[layout.network + 16 : layout.network + 20])
        mode = rng.choice(("as built", "as built", "seed-nolen", "zero", "wrong"))
        if mode == "seed-nolen":
            frame[at : at + 2] = pseudo_header_sum(src, dst, 6, 0).to_bytes(2, "big")
        elif mode == "zero":
            frame[at : at + 2] = b"\0\0"
        elif mode == "wrong":
            frame[at] ^= 0x5A
        yield bytes(frame)


@pytest.mark.parametrize(("engine", "mode"), engine_modes(READ, MAPPED, MAPPED_INLINE))
def test_checksums_the_bulk_code_calls_invalid_are_named_as_the_scalar_path_names_them(
        tmp: Path, engine: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of one shape segmented in bulk (on the writing thread, from a mapped input): each packet's
    input checksum state in the summary is the scalar path's (seed-nolen, zero, invalid, complete,
    partial), counted once, whichever thread segmented it."""
    input_mode(engine, mode, monkeypatch)
    primitive, _ = stream_of(engine)
    monkeypatch.setattr(primitive, "MAPPED_CHUNK_SIZE", 128 << 10)
    assert_odd_checksums_named_as_the_scalar_path_names_them(tmp, engine, "ethernet")


def assert_odd_checksums_named_as_the_scalar_path_names_them(tmp: Path, engine: str, link: str) -> None:
    """odd_checksum_frames in ``link``'s records, taken in bulk: bytes and summary the scalar engine's,
    every state among them."""
    capture = tmp / "in.pcap"
    write_capture(capture, 2 << 20, frames=odd_checksum_frames(), link=link)
    taken = run_cli("segment", capture, tmp / "taken.pcap", "--json", "--engine", engine)
    assert json.loads(taken.stdout)["engine"]["records_in_bulk"] > 100
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert {"seed-nolen", "zero", "invalid", "complete", "partial"} <= set(scalar_json["input_checksums"])


@pytest.mark.parametrize("link", ["sll2", "raw"])
def test_checksums_the_bulk_code_calls_invalid_are_named_as_the_scalar_path_names_them_under_other_link_types(
        tmp: Path, link: str, engine: str) -> None:
    """The same names on link types other than Ethernet: the field read behind the record's own link
    header, the seed without the length from the packet's addresses."""
    assert_odd_checksums_named_as_the_scalar_path_names_them(tmp, engine, link)


@pytest.mark.parametrize(("engine", "mode"), engine_modes(MAPPED, MAPPED_INLINE))
def test_the_thread_that_writes_a_run_segments_it(tmp: Path, engine: str, mode: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The payload sums and the kernel's copy of a run on one core (pipeline.LateRuns): the compiled
    engine's runs are segmented by the thread that writes them, the writing thread unless the machine
    has no core to spare (then the segmenting thread does both); the planning thread segments none."""
    from softgso.bulk import compiled_primitive, pipeline

    input_mode(engine, mode, monkeypatch)
    planner = threading.get_ident()
    segmenting, writing = [], []
    write_parts = pipeline.write_parts

    class Telling:
        """The compiled module, telling which thread calls its entries that segment a file's runs
        (not ``segment``, by which a plan is checked on the planning thread)."""

        def __init__(self, module: Any) -> None:
            self.module = module

        def __getattr__(self, name: str) -> Any:
            found = getattr(self.module, name)
            if name not in ("segment_runs", "segment_records"):
                return found

            def segment_and_tell(*args: Any) -> Any:
                segmenting.append(threading.get_ident())
                return found(*args)

            return segment_and_tell

    def write_and_tell(*args: Any) -> None:
        writing.append(threading.get_ident())
        write_parts(*args)

    monkeypatch.setattr(compiled_primitive, "_SEGMENT", Telling(compiled_primitive._SEGMENT))
    monkeypatch.setattr(pipeline, "write_parts", write_and_tell)
    capture = tmp / "in.pcap"
    write_capture(capture, 3 << 20, frames=_frames(MIXES["tcp4"], 20000))
    assert run_cli("segment", capture, tmp / "out.pcap", "-q", "--engine", engine).exit_code == 0
    assert segmenting and writing
    expected = {planner} if mode == MAPPED_INLINE else set(writing) - {planner}
    assert len(expected) == 1 and set(segmenting) == expected


def _pcapng_block(kind: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def _fcs_capture(path: Path, frames: list[bytes], capture_format: str, flags: dict[int, int] | None = None,
                 if_fcslen: int | None = 32) -> None:
    """``frames`` (each already ending in its FCS, or not) as a pcap whose link-type field declares a
    4-byte FCS, or a pcapng whose interface has ``if_fcslen`` (bits) and whose packets n have
    epb_flags ``flags[n]``."""
    if capture_format == "pcap":
        path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1 | 1 << 26 | 2 << 28) + b"".join(
            struct.pack("<IIII", 1, n, len(frame), len(frame)) + frame for n, frame in enumerate(frames)))
        return
    idb_options = struct.pack("<HHI", 13, 1, if_fcslen) + bytes(4) if if_fcslen is not None else b""
    path.write_bytes(_pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
                     + _pcapng_block(1, struct.pack("<HHI", 1, 0, 262144) + idb_options) + b"".join(
                         _pcapng_block(6, struct.pack("<IIIII", 0, 0, n, len(frame), len(frame)) + frame
                                       + bytes(-len(frame) % 4)
                                       + (struct.pack("<HHI", 2, 4, flags[n]) + bytes(4) if flags and n in flags else b""))
                         for n, frame in enumerate(frames)))


def _fcs_of(frame: bytes) -> bytes:
    import zlib

    return struct.pack("<I", zlib.crc32(frame))  # IEEE 802.3's CRC-32, least significant byte first


def _tshark_fcs_status(path: Path) -> list[str]:
    """tshark's verdict on every frame's FCS (1 good, 0 bad: its eth.fcs.status), an independent decoder's."""
    import shutil
    import subprocess

    tshark = shutil.which("tshark")
    if tshark is None:
        return []
    return subprocess.run([tshark, "-r", str(path), "-o", "eth.check_fcs:TRUE", "-T", "fields", "-e", "eth.fcs.status"],
                          capture_output=True, text=True, check=True).stdout.split()


@pytest.mark.parametrize("engine", ["scalar", *_bulk_engines()])
@pytest.mark.parametrize("capture_format", ["pcap", "pcapng"])
def test_frames_that_end_in_an_fcs_are_segmented_without_it_and_each_segment_gets_its_own(
        tmp: Path, engine: str, capture_format: str) -> None:
    """A pcap whose link-type field declares an FCS, a pcapng interface with if_fcslen 32 (bits): the
    stack never holds an FCS, so each frame is segmented without its own, and every segment ends in
    the CRC-32 of its bytes, as OUT's header (IN's) says every frame does; a frame that needs nothing
    keeps its record. Whichever engine: the segments are those of the same frames without an FCS."""
    frames = list(itertools.islice(_frames(MIXES["tcp4"], 20000), 40)) + [build_frame(SuperPacketSpec(payload=bytes(300), partial_checksum=False))]
    plain, capture = tmp / "plain.pcapng", tmp / f"fcs.{capture_format}"
    _fcs_capture(plain, frames, "pcapng", if_fcslen=None)
    _fcs_capture(capture, [frame + _fcs_of(frame) for frame in frames], capture_format)
    out = tmp / f"out.{capture_format}"
    result = run_cli("segment", capture, out, "--engine", engine, "--json")
    assert result.exit_code == 0, result.stderr
    assert run_cli("segment", plain, tmp / "plain-out.pcapng", "--engine", "scalar").exit_code == 0
    from softgso.io import open_capture

    with open_capture(tmp / "plain-out.pcapng") as reader:
        expected = [bytes(record.data) + _fcs_of(bytes(record.data)) for record in reader]
    with open_capture(out) as reader:
        written = [bytes(record.data) for record in reader]
        assert {record.fcs_len for record in reader} <= {4}
    assert written == expected
    assert len(written) > len(frames)
    summary = json.loads(result.stdout)
    assert (summary["records_in"], summary["records_out"]) == (len(frames), len(written))
    assert summary["outcomes"]["segmented"] == 40 and summary["outcomes"]["unchanged"] == 1
    status = _tshark_fcs_status(out)
    assert status in ([], ["1"] * len(written))


@pytest.mark.parametrize(("capture_format", "other"), [("pcap", "pcapng"), ("pcapng", "pcap")])
def test_an_fcs_declaration_survives_a_change_of_format(tmp: Path, capture_format: str, other: str) -> None:
    """-F to the other format: OUT declares the FCS IN declares (an IDB's if_fcslen in bits, the
    link-type field's FCS bits), so the FCS every written frame ends in is read as one."""
    from softgso.io import open_capture

    frames = list(itertools.islice(_frames(MIXES["tcp4"], 5000), 4))
    capture, out = tmp / f"fcs.{capture_format}", tmp / f"out.{other}"
    _fcs_capture(capture, [frame + _fcs_of(frame) for frame in frames], capture_format)
    assert run_cli("segment", capture, out, "-F", other, "-q").exit_code == 0
    with open_capture(out) as reader:
        records = list(reader)
        assert reader.interfaces[0].fcs_len == 4
    assert len(records) == 4 * 4
    assert all(bytes(r.data)[-4:] == _fcs_of(bytes(r.data)[:-4]) and r.fcs_len == 4 for r in records)
    assert _tshark_fcs_status(out) in ([], ["1"] * len(records))


@pytest.mark.parametrize("engine", ["scalar", *_bulk_engines()])
def test_a_frame_whose_fcs_does_not_check_passes_through_reported(tmp: Path, engine: str) -> None:
    """A super-packet whose FCS is not its CRC-32 (a frame damaged on the wire): segmenting it would
    put right FCSs on damaged bytes, so it passes through unchanged, reported under its kind and
    counted over the MTU; the frames around it are segmented."""
    frames = list(itertools.islice(_frames(MIXES["tcp4"], 20000), 3))
    with_fcs = [frame + _fcs_of(frame) for frame in frames]
    with_fcs[1] = with_fcs[1][:-1] + bytes([with_fcs[1][-1] ^ 0x80])
    capture = tmp / "damaged.pcap"
    _fcs_capture(capture, with_fcs, "pcap")
    result = run_cli("segment", capture, tmp / "out.pcap", "--engine", engine, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [(k["kind"], k["count"], k["first_frame"]) for k in summary["report_kinds"]] == [("FCS not made", 1, 2)]
    assert "is not the frame's CRC-32" in summary["report_kinds"][0]["first_reason"]
    assert summary["over_mtu_not_segmented"] == 1
    from softgso.io import open_capture

    with open_capture(tmp / "out.pcap") as reader:
        written = [bytes(record.data) for record in reader]
    assert with_fcs[1] in written
    assert summary["records_out"] == len(written) == 2 * 14 + 1
    assert _tshark_fcs_status(tmp / "out.pcap") in ([], ["1"] * 14 + ["0"] + ["1"] * 14)


@pytest.mark.parametrize("engine", ["scalar", *_bulk_engines()])
def test_a_pcapng_packet_whose_epb_flags_give_an_fcs_is_segmented_without_one(tmp: Path, engine: str) -> None:
    """epb_flags with an FCS length (bits 5-8) on one packet amid super-packets of an interface without
    one: its segments are written as the stack has them, without an FCS (their blocks carry no
    epb_flags, their interface declares none), whichever engine, as for the same packet without it."""
    frames = list(itertools.islice(_frames(MIXES["tcp4"], 20000), 60))
    fcs_at = 45
    capture, plain = tmp / "flags.pcapng", tmp / "plain.pcapng"
    _fcs_capture(capture, [frame + _fcs_of(frame) if n == fcs_at else frame for n, frame in enumerate(frames)],
                 "pcapng", flags={fcs_at: 4 << 5}, if_fcslen=None)
    _fcs_capture(plain, frames, "pcapng", if_fcslen=None)
    assert run_cli("segment", plain, tmp / "expected.pcapng", "--engine", "scalar").exit_code == 0
    result = run_cli("segment", capture, tmp / "out.pcapng", "--engine", engine)
    assert result.exit_code == 0, result.stderr
    assert (tmp / "out.pcapng").read_bytes() == (tmp / "expected.pcapng").read_bytes()


# -- short frames whose checksum is a partial seed ----------------------------------------------------


def _ones(data: bytes) -> int:
    """RFC 1071: the folded 16-bit ones' complement sum of ``data`` (odd length zero-padded)."""
    data += b"\0" * (len(data) & 1)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _l4_of(frame: bytes) -> tuple[int, int, int, bytes]:
    """(L4 offset, L4 end, protocol, pseudo-header bytes) of a plain Ethernet (one tag at most) IP frame."""
    network = 18 if frame[12:14] == b"\x81\x00" else 14
    if frame[network] >> 4 == 4:
        ihl = (frame[network] & 15) * 4
        end = network + int.from_bytes(frame[network + 2 : network + 4], "big")
        proto = frame[network + 9]
        pseudo = frame[network + 12 : network + 20] + struct.pack("!HH", proto, end - network - ihl)
        return network + ihl, end, proto, pseudo
    end = network + 40 + int.from_bytes(frame[network + 4 : network + 6], "big")
    proto = frame[network + 6]
    return network + 40, end, proto, frame[network + 8 : network + 40] + struct.pack("!IxxxB", end - network - 40, proto)


def _sums_to_zero(spec: SuperPacketSpec) -> bytes:
    """The frame of ``spec`` (a partial seed) with its first two payload bytes chosen so that its L4
    bytes, the seed in the checksum field, sum to 0xFFFF: the checksum the device computes is 0."""
    frame = bytearray(build_frame(spec))
    start, end, _, _ = _l4_of(bytes(frame))
    at = start + (8 if spec.udp else 20 + len(spec.tcp_options))
    frame[at : at + 2] = b"\0\0"
    frame[at : at + 2] = struct.pack("!H", 0xFFFF - _ones(bytes(frame[start:end])))
    return bytes(frame)


def seeded_frames(seed: int) -> Iterator[bytes]:
    """Short frames a host sends with checksum offload (their L4 checksum the pseudo-header seed):
    TCP ACKs and small segments, UDP datagrams, over IPv4 and IPv6, with and without a VLAN tag, some
    padded to Ethernet's 60 bytes, some whose checksum comes out 0; among super-packets and short
    frames with full checksums."""
    from softgso.cli.bench import TIMESTAMPS

    rng = random.Random(seed)
    big = _frames(MIXES["tcp4"] + MIXES["tcp6"], 4000, burst=1)
    while True:
        roll = rng.random()
        if roll < 0.2:
            yield next(big)
            continue
        spec = SuperPacketSpec(ipv6=rng.random() < 0.4, udp=rng.random() < 0.3,
                               payload=os.urandom(rng.choice((0, 0, 1, 6, 99, 512, 1400))),
                               tcp_options=TIMESTAMPS if rng.random() < 0.5 else b"", seq=rng.randrange(1 << 32),
                               ip_id=rng.randrange(1 << 16), partial_checksum=roll > 0.3,
                               vlan_tags=((0x8100, 7),) if rng.random() < 0.3 else ())
        if roll > 0.95 and len(spec.payload) >= 2:
            yield _sums_to_zero(spec)
        else:
            frame = build_frame(spec)
            yield frame + bytes(max(0, 60 - len(frame)))  # Ethernet's padding: a trailer, never payload


def _pcapng_of(frames: Iterator[bytes], count: int, seed: int) -> bytes:
    """The frames in EPBs (now and then one with a comment option or an epb_flags direction, or an SPB;
    half of them padded with bytes that are not zeros, as a writer may leave them)."""
    rng = random.Random(seed)
    order = "<"

    def block(kind: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return struct.pack(order + "II", kind, 12 + len(body)) + body + struct.pack(order + "I", 12 + len(body))

    out = block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack(order + "HHI", 1, 0, 262144))
    for number in range(count):
        frame = next(frames)
        roll = rng.random()
        if roll < 0.05:
            out += block(3, struct.pack(order + "I", len(frame)) + frame)
            continue
        options = b""
        if roll > 0.9:
            options = struct.pack(order + "HHI", 2, 4, 1) + struct.pack(order + "HH", 0, 0)  # epb_flags: inbound
        ticks = 1_700_000_000_000_000 + number
        padding = (b"\xee" if roll < 0.5 else b"\0") * (-len(frame) % 4)
        out += block(6, struct.pack(order + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
                     + frame + padding + options)
    return out


# a device that checksums IPv4 (IP_CSUM) and not IPv6, and nothing under a VLAN tag: each class of
# short frame its own action
IPV4_CSUM_PROFILE = {"base": "no-offload", "name": "ipv4-csum", "features": "SG,IP_CSUM,HIGHDMA",
                     "vlan_features": "SG,HIGHDMA"}


@pytest.mark.parametrize("capture_format", ["pcap", "pcapng"])
@pytest.mark.parametrize("device", ["no-offload", "csum", "ipv4-csum.json"])
def test_short_frames_with_partial_seeds_are_sent_as_the_scalar_path_sends_them(
        tmp: Path, engine: str, capture_format: str, device: str) -> None:
    """A short frame whose checksum is a partial seed is sent as one frame: its seed completed where
    the device cannot checksum its class (skb_checksum_help, a computed 0 sent as 0xFFFF), left where
    it can. The bulk engines write what the scalar path writes; the compiled one without taking such
    frames one by one (a frame of each class teaches it the class's action)."""
    if device.endswith(".json"):
        (tmp / device).write_text(json.dumps(IPV4_CSUM_PROFILE))
        device = str(tmp / device)
    capture = tmp / f"in.{capture_format}"
    if capture_format == "pcap":
        write_capture(capture, 2 << 20, frames=seeded_frames(3))
    else:
        capture.write_bytes(_pcapng_of(seeded_frames(4), 3000, 5))
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine, "--device", device)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert bulk_json["outcomes"]["changed"] > 500 and bulk_json["input_checksums"]["partial"] > 500
    if engine == "compiled":
        engine_json = json.loads(run_cli("segment", capture, tmp / "again.pcap", "--json", "--engine", engine,
                                         "--device", device).stdout)["engine"]
        # one frame of each class (one VLAN tag, IPv6, UDP: 8), and in pcapng the blocks with options and the SPBs
        limit = 8 if capture_format == "pcap" else 8 + bulk_json["records_in"] // 5
        assert engine_json["records_one_by_one"] <= limit


def test_completed_seeds_make_checksums_that_verify_and_a_zero_is_sent_as_0xffff(tmp: Path, engine: str) -> None:
    """On a device without checksum offload every seed is completed: each short frame's L4 checksum
    verifies (RFC 1071 over the pseudo-header and the L4 bytes), and one that computes to 0 goes out
    as 0xFFFF (skb_checksum_help's CSUM_MANGLED_0), TCP and UDP alike."""
    frames = [_sums_to_zero(SuperPacketSpec(udp=udp, ipv6=ipv6, payload=os.urandom(40)))
              for udp in (False, True) for ipv6 in (False, True)] * 3
    frames += [build_frame(SuperPacketSpec(payload=os.urandom(n), ipv6=n % 2 == 1)) for n in range(0, 300, 7)]
    capture = tmp / "in.pcap"
    capture.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1) + b"".join(
        struct.pack("<IIII", 1_700_000_000, number, len(frame), len(frame)) + frame
        for number, frame in enumerate(frames * 4)))
    assert run_cli("segment", capture, tmp / "out.pcap", "--engine", engine, "-q").exit_code == 0
    data = (tmp / "out.pcap").read_bytes()
    pos, fields = 24, []
    while pos < len(data):
        caplen = struct.unpack_from("<I", data, pos + 8)[0]
        frame = data[pos + 16 : pos + 16 + caplen]
        start, end, proto, pseudo = _l4_of(frame)
        assert _ones(pseudo + frame[start:end]) == 0xFFFF, f"record at {pos}: the checksum does not verify"
        fields.append(frame[start + (6 if proto == 17 else 16) : start + (8 if proto == 17 else 18)])
        pos += 16 + caplen
    assert len(fields) == len(frames) * 4 > 100
    assert fields[:12] == [b"\xff\xff"] * 12


def _source_routed_flow(option_bytes: bytes, destination: str) -> Iterator[bytes]:
    """An endless flow of TCP/IPv4 super-packets with a full checksum (Scapy's: over the route's last address when
    hops are left) under the raw IPv4 options ``option_bytes``."""
    from scapy.all import IP, TCP, Ether, IPOption, raw  # type: ignore[attr-defined]

    for number in itertools.count():
        yield raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                  / IP(src="10.0.0.1", dst=destination, options=[IPOption(option_bytes)], id=number)
                  / TCP(sport=40000, dport=5201, seq=(1000 + number * 6000) & 0xFFFFFFFF, flags="PA") / bytes(6000))


# (options, the header's destination): a loose route with a hop left (pointer 4 of 11), the same behind a
# No Operation, a strict route with a hop left, a route with none left (pointer past it: the header's
# destination is the final one), a route after End of Options (not an option: the header's destination)
SOURCE_ROUTES = {
    "lsrr": (b"\x83\x0b\x04\x0a\x00\x00\x06\x0a\x00\x00\x09\x00", "10.0.0.5"),
    "nop lsrr": (b"\x01\x83\x0b\x04\x0a\x00\x00\x06\x0a\x00\x00\x09", "10.0.0.5"),
    "ssrr": (b"\x89\x0b\x08\x0a\x00\x00\x06\x0a\x00\x00\x09\x00", "10.0.0.6"),
    "lsrr done": (b"\x83\x0b\x0c\x0a\x00\x00\x06\x0a\x00\x00\x09\x00", "10.0.0.9"),
    "after end": (b"\x00\x83\x0b\x04\x0a\x00\x00\x06\x0a\x00\x00\x09", "10.0.0.9"),
}


@pytest.mark.parametrize("route", sorted(SOURCE_ROUTES))
def test_source_routed_super_packets_sum_as_the_sender_did_in_bulk(tmp: Path, engine: str, route: str) -> None:
    # RFC 791: with hops left, the upper-layer checksum covers the route's last address; Scapy (an
    # independent decoder) verifies every segment, and the bulk engines write what the scalar one does
    from scapy.all import TCP, Ether, raw  # type: ignore[attr-defined]
    from scapy.utils import rdpcap

    options, destination = SOURCE_ROUTES[route]
    capture = tmp / "in.pcap"
    write_capture(capture, 1 << 16, frames=_source_routed_flow(options, destination))
    bulk, scalar, bulk_json, scalar_json = _both(capture, tmp, engine)
    assert bulk == scalar
    assert bulk_json == scalar_json
    segments = rdpcap(str(tmp / "bulk.pcap"))
    assert len(segments) > 6
    for segment in segments:
        stored = segment[TCP].chksum
        del segment[TCP].chksum
        assert Ether(raw(segment))[TCP].chksum == stored
