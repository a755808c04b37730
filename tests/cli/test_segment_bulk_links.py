"""``softgso segment`` of every link type issue 14 segments, through the bulk path: what the scalar path writes.

Linux cooked SLL and SLL2, NULL (either byte order) and LOOP, raw IP (12, 14, 101), IPV4 (228) and
IPV6 (229), in classic pcap and in pcapng (interfaces of several link types in one file): output
file, JSON summary, reports and exit status the same as ``--engine scalar``'s, for both bulk
engines. The link-layer headers are built here from the tcpdump.org LINKTYPE_ definitions.
"""

from __future__ import annotations

import itertools
import os
import random
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from capture_helpers import png_epb, png_idb, png_shb, scapy_decode
from conftest import run_cli
from test_segment_bulk import USO, _bulk_engines, _summary, mixed_frames

from softgso.check.synth import SuperPacketSpec, build_frame

IPV4, IPV6 = 0x0800, 0x86DD


@pytest.fixture(params=_bulk_engines())
def engine(request: pytest.FixtureRequest) -> str:
    """The bulk engine under test."""
    return str(request.param)


def sll(frame: bytes) -> bytes:
    """Packet type 0 (to us), ARPHRD_ETHER, the source MAC as its 6-byte address, the ethertype."""
    return struct.pack("!HHH8sH", 0, 1, 6, frame[6:12] + bytes(2), int.from_bytes(frame[12:14], "big")) + frame[14:]


def sll2(frame: bytes) -> bytes:
    """The ethertype, interface 3, ARPHRD_LOOPBACK (no address), packet type 4 (outgoing)."""
    return struct.pack("!HHIHBB8s", int.from_bytes(frame[12:14], "big"), 0, 3, 772, 4, 0, bytes(8)) + frame[14:]


def null(order: str, inet6: int) -> Callable[[bytes], bytes | None]:
    def build(frame: bytes) -> bytes | None:
        ethertype = int.from_bytes(frame[12:14], "big")
        if ethertype not in (IPV4, IPV6):
            return None
        return (2 if ethertype == IPV4 else inet6).to_bytes(4, order) + frame[14:]  # type: ignore[arg-type]
    return build


def raw(versions: tuple[int, ...]) -> Callable[[bytes], bytes | None]:
    def build(frame: bytes) -> bytes | None:
        return frame[14:] if int.from_bytes(frame[12:14], "big") in versions else None
    return build


# link type, its header built from an Ethernet frame (None: the frame has no form in it), and
# records of it that name no protocol softgso reads (passed through, reported)
LINKS: dict[str, tuple[int, Callable[[bytes], bytes | None], list[bytes]]] = {
    "sll": (113, sll, [struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0004) + bytes(40)]),
    "sll2": (276, sll2, [struct.pack("!HHIHBB8s", 0x0001, 0, 3, 772, 4, 0, bytes(8)) + bytes(30)]),
    "null-le": (0, null("little", 30), [(99).to_bytes(4, "little") + bytes(40)]),
    "null-be": (0, null("big", 24), [bytes(2)]),
    "loop": (108, null("big", 24), [(2).to_bytes(4, "little") + bytes(40)]),
    "raw": (101, raw((IPV4, IPV6)), [b"\x50" + bytes(39)]),
    "raw12": (12, raw((IPV4, IPV6)), [b""]),
    "ipv4": (228, raw((IPV4,)), [b"\x60" + bytes(39)]),
    "ipv6": (229, raw((IPV6,)), []),
}


def link_frames(name: str, seed: int, count: int) -> list[bytes]:
    """``count`` records of mixed_frames in link type ``name``, a few unreadable ones among them."""
    _, build, odd = LINKS[name]
    rng = random.Random(seed)
    found: list[bytes] = []
    for frame in mixed_frames(seed):
        if len(found) >= count:
            return found
        converted = build(frame)
        if converted is not None:
            found.append(converted)
        if odd and rng.random() < 0.02:
            found.append(rng.choice(odd))
    return found


def pcap(linktype: int, frames: list[bytes]) -> bytes:
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)
    return header + b"".join(struct.pack("<IIII", 1_700_000_000 + n, n % 1000, len(f), len(f)) + f
                             for n, f in enumerate(frames))


def both(capture: Path, tmp: Path, engine: str, *options: str) -> tuple[bytes, bytes, dict, dict]:
    suffix = capture.suffix
    bulk = run_cli("segment", capture, tmp / f"bulk{suffix}", "--json", "--engine", engine, *options)
    scalar = run_cli("segment", capture, tmp / f"scalar{suffix}", "--json", "--engine", "scalar", *options)
    assert bulk.exit_code == scalar.exit_code
    assert bulk.stderr == scalar.stderr
    return ((tmp / f"bulk{suffix}").read_bytes(), (tmp / f"scalar{suffix}").read_bytes(), _summary(bulk.stdout),
            _summary(scalar.stdout))


@pytest.fixture
def bulk_plans(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The link plans the bulk streams of the test made (proof that the link types took the bulk path)."""
    from softgso.bulk import pipeline

    made: list[Any] = []
    link_plan = pipeline.link_plan

    def record(*args: Any) -> Any:
        plan = link_plan(*args)
        made.append(plan)
        return plan

    monkeypatch.setattr(pipeline, "link_plan", record)
    return made


@pytest.mark.parametrize("name", list(LINKS))
def test_bulk_segment_equals_scalar_segment_on_every_link_type(tmp: Path, engine: str, name: str,
                                                               bulk_plans: list[Any]) -> None:
    capture = tmp / "in.pcap"
    capture.write_bytes(pcap(LINKS[name][0], link_frames(name, 3, 300)))
    bulk, scalar, bulk_json, scalar_json = both(capture, tmp, engine, *USO)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert bulk_json["outcomes"]["segmented"] > 0
    assert name == "ipv6" or bulk_json["outcomes"]["unchanged"] > 0  # the small packets are IPv4
    assert any(plan is not None for plan in bulk_plans), "segmented by link plans"
    assert len(scapy_decode(tmp / "bulk.pcap")) == bulk_json["records_out"]


@pytest.mark.parametrize("options", [("--mtu", "9000"), ("--output-csum", "partial"), ("--gso-size", "1000"),
                                     ("--action", "push-mpls:100:0:64:uc")])
def test_link_types_under_options(tmp: Path, engine: str, options: tuple[str, ...]) -> None:
    for name in ("sll2", "raw", "null-le"):
        capture = tmp / "in.pcap"
        capture.write_bytes(pcap(LINKS[name][0], link_frames(name, 5, 150)))
        bulk, scalar, bulk_json, scalar_json = both(capture, tmp, engine, *USO, *options)
        assert bulk == scalar, name
        assert bulk_json == scalar_json, name


def test_pcapng_interfaces_of_several_link_types(tmp: Path, engine: str, bulk_plans: list[Any]) -> None:
    """One pcapng, five interfaces (Ethernet, SLL2, raw IP, NULL, PPP): records interleaved."""
    names = ["sll2", "raw", "null-le"]
    blocks = [png_shb("<"), png_idb("<", 1), *(png_idb("<", LINKS[n][0]) for n in names), png_idb("<", 9)]
    sources = [iter(list(itertools.islice(mixed_frames(7), 200)))] + [iter(link_frames(n, 7, 200)) for n in names]
    rng = random.Random(7)
    for number in range(600):
        interface = rng.randrange(len(sources) + 1)
        frame = next(sources[interface], None) if interface < len(sources) else b"\xff\x03\x00\x21" + bytes(40)
        if frame is not None:
            blocks.append(png_epb("<", interface, 1_700_000_000_000_000 + number, frame))
    capture = tmp / "in.pcapng"
    capture.write_bytes(b"".join(blocks))
    bulk, scalar, bulk_json, scalar_json = both(capture, tmp, engine, *USO)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert bulk_json["outcomes"]["segmented"] > 0
    assert any(plan is not None for plan in bulk_plans)


def test_super_packets_across_chunk_ends_on_sll2(tmp: Path, engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_segment_bulk import stream_of

    primitive, _ = stream_of(engine)
    monkeypatch.setattr(primitive, "CHUNK_SIZE", 70_001)
    monkeypatch.setattr(primitive, "MAPPED_CHUNK_SIZE", 70_001)
    frames = [sll2(build_frame(SuperPacketSpec(payload=os.urandom(n), seq=n))) for n in range(30000, 30040)]
    capture = tmp / "in.pcap"
    capture.write_bytes(pcap(276, frames))
    bulk, scalar, bulk_json, scalar_json = both(capture, tmp, engine)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert bulk_json["outcomes"]["segmented"] == len(frames)


@pytest.mark.usefixtures("always_parts")
@pytest.mark.parametrize("name", ["sll2", "raw"])
def test_jobs_on_other_link_types_equal_one_job(tmp: Path, engine: str, name: str) -> None:
    capture = tmp / "in.pcap"
    capture.write_bytes(pcap(LINKS[name][0], link_frames(name, 4, 600)))
    bulk, scalar, bulk_json, scalar_json = both(capture, tmp, engine, *USO, "--jobs", "3")
    assert bulk == scalar
    assert bulk_json == scalar_json


@pytest.mark.parametrize("name", ["sll2", "raw", "null-le"])
def test_invalid_checksums_are_named_as_the_scalar_path_names_them(tmp: Path, engine: str, name: str) -> None:
    """Super-packets whose TCP checksum is wrong (a payload byte changed after it was computed), in
    runs the bulk path segments: each one named in the summary as the scalar path names it."""
    frames = []
    for k in range(12):
        # (payloads fixed: a random one's broken checksum may equal a seed the scalar path names otherwise)
        payload = random.Random(k).randbytes(5000)
        frame = bytearray(build_frame(SuperPacketSpec(payload=payload, seq=5000 * k, partial_checksum=False)))
        if k % 3:
            frame[-1] ^= 0x5A  # the checksum no longer matches
        converted = LINKS[name][1](bytes(frame))
        assert converted is not None
        frames.append(converted)
    capture = tmp / "in.pcap"
    capture.write_bytes(pcap(LINKS[name][0], frames))
    bulk, scalar, bulk_json, scalar_json = both(capture, tmp, engine)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert bulk_json["outcomes"]["segmented"] == len(frames)
    assert sum(bulk_json["input_checksums"].values()) == len(frames)
    assert len(bulk_json["input_checksums"]) == 2  # complete, and the scalar path's name for the others


def test_the_same_bytes_on_interfaces_of_two_link_types_are_two_packets(tmp: Path, engine: str) -> None:
    """A pcapng's interfaces of two link types, the same record bytes on each in turn: each record is
    what its own interface's link type makes of it, as the scalar path reads it. A raw IPv6
    super-packet's bytes are segmented on the raw-IP interface and passed through on the Ethernet one
    (read as Ethernet: ethertype 0); an Ethernet super-packet's (a destination MAC that reads as an
    IPv6 version nibble) segmented on the Ethernet interface and passed through on the raw-IP one
    (read as IPv6: lengths that contradict it). A run of one shape ends where the link type changes."""
    raw_ip = build_frame(SuperPacketSpec(ipv6=True, payload=random.Random(1).randbytes(4000)))[14:]
    ethernet = bytes.fromhex("600000000001") + build_frame(SuperPacketSpec(payload=random.Random(2).randbytes(4000)))[6:]
    blocks = [png_shb("<"), png_idb("<", 101), png_idb("<", 1)]  # interface 0 raw IP, interface 1 Ethernet
    for number, (interface, frame) in enumerate([(0, raw_ip), (1, raw_ip), (0, raw_ip), (1, raw_ip),
                                                 (1, ethernet), (0, ethernet), (1, ethernet), (0, ethernet)]):
        blocks.append(png_epb("<", interface, 1_700_000_000_000_000 + number, frame))
    capture = tmp / "in.pcapng"
    capture.write_bytes(b"".join(blocks))
    bulk, scalar, bulk_json, scalar_json = both(capture, tmp, engine)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert scalar_json["outcomes"]["segmented"] == 4  # the records on their own link type's interface
