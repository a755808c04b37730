"""``softgso inspect`` read by the bulk reader, short frames counted a chunk at a time from the
compiled rows (softgso.cli.inspect_batch, softgso.bulk._records.inspect_rows), against the per-frame
reference (``--engine scalar``: the general reader, every record through CaptureInspector.add and
process_frame, proven by the other inspect tests, the kernel vectors and tshark): the same report,
text and JSON, and the same exit status and error, on ordinary small-frame traffic of every kind
(TCP, UDP, ICMP, ARP, tags, padding, every checksum state, odd lengths, tunnels' ports, fragments,
extension headers, bytes changed anywhere) in pcap and pcapng of both byte orders, with Simple
Packet Blocks, several interfaces and link types, other blocks between packets, several sections,
snapped records and damaged files; real captures; random frames (hypothesis)."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from cli_captures import payload, real_captures, sll, tcp6_jumbogram
from conftest import run_cli, run_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import softgso.cli.inspect_batch as inspect_batch
from softgso.bulk import compiled_primitive
from softgso.bulk.native import load_extension
from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.checksum import csum_fold, ones_sum, pseudo_header_sum

needs_compiled = pytest.mark.skipif(not compiled_primitive.available() or load_extension("_records") is None,
                                    reason="softgso.bulk._segment/_records not built (or SOFTGSO_NO_C)")
OPTION_SETS = ([], ["--device", "tso"], ["--mtu", "1400"], ["--tunnel-port", "vxlan:9999"], ["--gso-size", "1000"],
               ["--action", "push-mpls:100:0:64:uc"], ["--input-csum", "partial"], ["--top", "3"])

MAC = bytes.fromhex("020000000001020000000002")
TUNNEL_TYPES = (4, 41, 47)
L4_MODES = ("complete", "partial", "seed-nolen", "zero", "invalid")
L4_WEIGHTS = (85, 5, 2, 4, 4)


def _inspect(capture: Path, engine: str, *args: str) -> tuple[int, str, str]:
    result = run_cli("inspect", capture, "--engine", engine, *args)
    return result.exit_code, result.stdout, result.stderr


def assert_same_inspect(capture: Path, option_sets: tuple[list[str], ...] = OPTION_SETS, text: bool = True) -> None:
    for options in option_sets:
        for form in (["--json"], []) if text else (["--json"],):
            assert _inspect(capture, "auto", *options, *form) == _inspect(capture, "scalar", *options, *form), \
                (capture.name, options, form)


def spy_on_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many frames each chunk's rows counted at once (the batch path, not the per-frame one)."""
    counted: list[int] = []
    original = inspect_batch.BatchReader._count

    def count(self: inspect_batch.BatchReader, rows: object, *args: object) -> None:
        counted.append(len(rows))  # type: ignore[arg-type]
        original(self, rows, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(inspect_batch.BatchReader, "_count", count)
    return counted


# -- frames ---------------------------------------------------------------------------------------


def l4_checksum(l4: bytearray, src: bytes, dst: bytes, proto: int, at: int, mode: str) -> None:
    """Store a checksum of ``mode`` at ``l4[at:at+2]`` (complete, partial seed, seed without the length...)."""
    l4[at : at + 2] = b"\0\0"
    if mode == "complete":
        value = csum_fold(ones_sum(l4, pseudo_header_sum(src, dst, proto, len(l4))))
    elif mode == "partial":
        value = pseudo_header_sum(src, dst, proto, len(l4))
    elif mode == "seed-nolen":
        value = pseudo_header_sum(src, dst, proto, 0)
    elif mode == "zero":
        value = 0
    else:
        value = (csum_fold(ones_sum(l4, pseudo_header_sum(src, dst, proto, len(l4)))) + 1) & 0xFFFF or 1
    l4[at : at + 2] = value.to_bytes(2, "big")


def ordinary_frame(rng: random.Random, flows: int = 40) -> bytes:
    """A frame of ordinary traffic, now and then an odd one (see the module)."""
    tags = b"".join(struct.pack("!HH", rng.choice((0x8100, 0x8100, 0x88A8, 0x9100)), rng.randrange(4096))
                    for _ in range(rng.choice((0, 0, 0, 0, 1, 2, 3))))
    kind = rng.choices(("ipv4", "ipv6", "arp", "ethertype", "short"), (60, 20, 8, 4, 1))[0]
    if kind == "short":
        return bytes(rng.randrange(256) for _ in range(rng.randrange(14)))
    if kind == "arp":
        return MAC + tags + b"\x08\x06" + bytes.fromhex("0001080006040001") + bytes(rng.randrange(256) for _ in range(20))
    if kind == "ethertype":
        ethertype = rng.choice((0x88CC, 0x8847, 0x8848, 0x0842, 0x9100, 0x8100, rng.randrange(0x600, 0x10000)))
        return MAC + tags + struct.pack("!H", ethertype) + bytes(rng.randrange(256) for _ in range(rng.randrange(60)))
    flow = rng.randrange(flows)
    proto = rng.choices((6, 17, 1, 58, 2, 132, 50, *TUNNEL_TYPES, 0, 43, 44, 60), (50, 30, 5, 3, 1, 1, 1, 1, 1, 1,
                                                                                   1, 1, 1, 1))[0]
    size = rng.choice((0, 0, 1, 6, 20, 100, 200, 512, 1000, 1400, 1460))
    body = bytearray(rng.randrange(256) for _ in range(size))
    if kind == "ipv4":
        src, dst = bytes([10, 0, flow >> 8, flow & 0xFF]), bytes([192, 168, 1, flow % 7])
    else:
        src, dst = bytes(15) + bytes([flow % 251 + 1]), b"\x20\x01\x0d\xb8" + bytes(11) + bytes([flow % 5])
    if proto == 6:
        options = bytes(rng.randrange(256) for _ in range(4 * rng.choice((0, 0, 3, 10))))
        l4 = bytearray(struct.pack("!HHIIBBHHH", 40000 + flow, rng.choice((80, 443, 5201)), rng.randrange(1 << 32),
                                   rng.randrange(1 << 32), (5 + len(options) // 4) << 4, rng.randrange(256),
                                   rng.randrange(65536), 0, 0)) + options + body
        l4_checksum(l4, src, dst, 6, 16, rng.choices(L4_MODES, L4_WEIGHTS)[0])
    elif proto == 17:
        dport = rng.choice((53, 53, 123, 4789, 6081, 2152, 9999, 6635, rng.randrange(65536)))
        length = rng.choice((8 + size, 8 + size, 0, rng.randrange(65536)))
        l4 = bytearray(struct.pack("!HHHH", 50000 + flow, dport, length, 0)) + body
        l4_checksum(l4, src, dst, 17, 6, rng.choices(L4_MODES, L4_WEIGHTS)[0])
    else:
        l4 = bytearray(struct.pack("!BBH", 8, 0, 0)) + body
    if kind == "ipv4":
        options = bytes(4 * rng.choice((0, 0, 0, 1, 10)))
        ihl = 5 + len(options) // 4
        total = rng.choices((ihl * 4 + len(l4), 0, ihl * 4 + len(l4) + 5, ihl * 4 + len(l4) - 3, 3), (90, 2, 2, 2, 1))[0]
        flags = rng.choices((0x4000, 0, 0x2000, 0x0010), (80, 15, 3, 2))[0]
        header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, max(total, 0), rng.randrange(65536), flags,
                                       64, proto, 0, src, dst)) + options
        header[10:12] = csum_fold(ones_sum(header)).to_bytes(2, "big")
        if rng.random() < 0.05:
            header[10] ^= 0x10
        l3 = bytes(header) + l4
        ethertype = 0x0800
    else:
        length = rng.choices((len(l4), 0, len(l4) + 4, len(l4) - 2), (90, 3, 3, 3))[0]
        l3 = struct.pack("!IHBB16s16s", 6 << 28, max(length, 0), proto, 64, src, dst) + l4
        ethertype = 0x86DD
    frame = MAC + tags + struct.pack("!H", ethertype) + l3
    if len(frame) < 60 and rng.random() < 0.5:
        frame += bytes(60 - len(frame))  # padded, as a NIC sends a short frame
    elif rng.random() < 0.03:
        frame += bytes(rng.randrange(1, 9))  # a trailer
    if rng.random() < 0.03:
        flipped = bytearray(frame)
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        frame = bytes(flipped)
    return frame


def ordinary_frames(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [ordinary_frame(rng) for _ in range(count)]


# -- containers -----------------------------------------------------------------------------------


def pcap_bytes(frames: list[bytes], *, big_endian: bool = False, nano: bool = False,
               orig_lens: dict[int, int] | None = None, linktype: int = 1) -> bytes:
    order = ">" if big_endian else "<"
    out = bytearray(struct.pack(order + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
    for index, frame in enumerate(frames):
        fraction = (index * 7919) % (10**9 if nano else 10**6)
        orig = (orig_lens or {}).get(index, len(frame))
        out += struct.pack(order + "IIII", 1_700_000_000 + index // 3 - (index % 5 == 3) * 50, fraction, len(frame),
                           orig) + frame
    return bytes(out)


class Pcapng:
    """A pcapng file of either byte order: sections, interfaces (link type, if_tsresol, if_tsoffset),
    Enhanced and Simple Packet Blocks, statistics blocks."""

    def __init__(self, big_endian: bool = False) -> None:
        self.order = ">" if big_endian else "<"
        self.out = bytearray()

    def block(self, block_type: int, body: bytes) -> None:
        body += b"\0" * (-len(body) % 4)
        self.out += struct.pack(self.order + "II", block_type, 12 + len(body)) + body + \
            struct.pack(self.order + "I", 12 + len(body))

    def option(self, code: int, value: bytes) -> bytes:
        return struct.pack(self.order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)

    def section(self) -> None:
        self.block(0x0A0D0D0A, struct.pack(self.order + "IHHq", 0x1A2B3C4D, 1, 0, -1))

    def interface(self, linktype: int, tsresol: int | None = None, tsoffset: int = 0, snaplen: int = 262144) -> None:
        options = b""
        if tsresol is not None:
            options += self.option(9, bytes([tsresol]))
        if tsoffset:
            options += self.option(14, struct.pack(self.order + "q", tsoffset))
        self.block(1, struct.pack(self.order + "HHI", linktype, 0, snaplen) + (options + self.option(0, b"")
                                                                            if options else b""))

    def epb(self, interface: int, ticks: int, frame: bytes, orig_len: int | None = None, comment: bytes = b"") -> None:
        options = self.option(1, comment) + self.option(0, b"") if comment else b""
        body = struct.pack(self.order + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                           len(frame) if orig_len is None else orig_len)
        self.block(6, body + frame + b"\0" * (-len(frame) % 4) + options)

    def spb(self, frame: bytes) -> None:
        self.block(3, struct.pack(self.order + "I", len(frame)) + frame)

    def statistics(self, interface: int) -> None:
        self.block(5, struct.pack(self.order + "III", interface, 0, 0))


def pcapng_bytes(frames: list[bytes], *, big_endian: bool = False, seed: int = 0, spb: bool = False,
                 other_links: bool = False, sections: int = 1, snapped: bool = False) -> bytes:
    """Ethernet frames in EPBs of two Ethernet interfaces of different resolutions (and SPBs,
    records of other link types, statistics blocks between them, more sections...)."""
    rng = random.Random(seed)
    file = Pcapng(big_endian)
    per_section = -(-len(frames) // sections)
    for number in range(sections):
        file.section()
        file.interface(1, 9, tsoffset=number * 3)
        file.interface(1, 0x80 | 20)
        interfaces = 2
        if other_links:
            file.interface(113)  # Linux cooked
            file.interface(101)  # raw IP
            interfaces = 4
        for index, frame in enumerate(frames[number * per_section : (number + 1) * per_section]):
            ticks = 1_700_000_000 * 10**9 + rng.randrange(10**12)
            roll = rng.random()
            if spb and roll < 0.1:
                file.spb(frame)
            elif other_links and roll < 0.2:
                file.epb(2, ticks, sll(frame)) if rng.random() < 0.5 else file.epb(3, ticks, frame[14:])
            elif snapped and roll < 0.25 and len(frame) > 20:
                file.epb(0, ticks, frame[: len(frame) - 7], len(frame))
            else:
                file.epb(rng.randrange(2), ticks >> (0 if index % 2 else 10), frame,
                         comment=b"a comment" if roll > 0.97 else b"")
            if roll > 0.95:
                file.statistics(rng.randrange(interfaces))
    return bytes(file.out)


def containers(frames: list[bytes], seed: int = 0) -> dict[str, bytes]:
    """The same frames in many containers."""
    return {
        "le.pcap": pcap_bytes(frames),
        "be-nano.pcap": pcap_bytes(frames, big_endian=True, nano=True),
        "snapped.pcap": pcap_bytes(frames, orig_lens={i: len(f) + 9 for i, f in enumerate(frames) if i % 13 == 5}),
        "le.pcapng": pcapng_bytes(frames, seed=seed),
        "be-spb.pcapng": pcapng_bytes(frames, big_endian=True, seed=seed, spb=True),
        "links.pcapng": pcapng_bytes(frames, seed=seed, other_links=True, snapped=True),
        "sections.pcapng": pcapng_bytes(frames, big_endian=True, seed=seed, sections=3, spb=True),
    }


# -- tests ----------------------------------------------------------------------------------------


@needs_compiled
@pytest.mark.parametrize("name", list(containers([b""])))
def test_ordinary_traffic_same_report(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = ordinary_frames(3000, seed=7)
    capture = tmp_path / name
    capture.write_bytes(containers(frames, seed=7)[name])
    counted = spy_on_rows(monkeypatch)
    assert_same_inspect(capture)
    # not vacuous: most frames (the ordinary ones) were counted from the rows, under the option sets
    # with which segment leaves short frames untouched (the others change them: no rows)
    assert sum(counted) > 2 * len(frames), sum(counted)


@needs_compiled
def test_ordinary_traffic_in_several_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A capture of several of the bulk reader's chunks (4 MiB): counts across chunks, polls across them."""
    rng = random.Random(3)
    pool = [ordinary_frame(rng, flows=3000) for _ in range(4000)]
    frames = [pool[rng.randrange(len(pool))] for _ in range(24000)]
    for name in ("le.pcap", "be-spb.pcapng"):
        capture = tmp_path / name
        capture.write_bytes(containers(frames)[name])
        assert capture.stat().st_size > 9 << 20
        counted = spy_on_rows(monkeypatch)
        assert_same_inspect(capture, (OPTION_SETS[0], OPTION_SETS[3]), text=False)
        assert sum(counted) > len(frames) // 2, sum(counted)


@needs_compiled
@pytest.mark.parametrize("name", ["le.pcap", "be-nano.pcap", "be-spb.pcapng", "links.pcapng", "sections.pcapng"])
def test_damaged_captures_same_report_and_error(name: str, tmp_path: Path) -> None:
    """Cut anywhere, a block or record length broken, bytes of garbage: the same report, exit status and error."""
    raw = containers(ordinary_frames(400, seed=11), seed=11)[name]
    rng = random.Random(name)
    damaged = [raw[:cut] for cut in (len(raw) // 3, len(raw) // 2 + 1, len(raw) - 3, 40)]
    for _ in range(4):
        broken = bytearray(raw)
        at = rng.randrange(60, len(raw) - 8)
        broken[at : at + 4] = rng.choice((b"\xff\xff\xff\x7f", b"\x00\x00\x00\x00", bytes(rng.randrange(256)
                                                                                         for _ in range(4))))
        damaged.append(bytes(broken))
    for number, data in enumerate(damaged):
        capture = tmp_path / f"{number}-{name}"
        capture.write_bytes(data)
        assert_same_inspect(capture, (OPTION_SETS[0],), text=False)


@needs_compiled
@pytest.mark.skipif(not real_captures(), reason="../shared/captures is not beside the clone")
def test_real_captures_same_report_counted_in_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every real capture under the option sets (the other inspect tests add more), and the rows
    counted the frames of many of them."""
    counted = spy_on_rows(monkeypatch)
    counted_in: list[str] = []
    for capture in real_captures():
        before = sum(counted)
        assert_same_inspect(capture, (OPTION_SETS[0], OPTION_SETS[2], OPTION_SETS[3]), text=False)
        if sum(counted) > before:
            counted_in.append(capture.name)
    assert len(counted_in) >= 8, counted_in


@st.composite
def random_captures(draw: st.DrawFn) -> tuple[str, bytes]:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = random.Random(seed)
    frames = [ordinary_frame(rng, flows=draw(st.integers(1, 60))) for _ in range(draw(st.integers(1, 150)))]
    # bytes changed anywhere in some frames
    for _ in range(draw(st.integers(0, 10))):
        index = draw(st.integers(0, len(frames) - 1))
        if frames[index]:
            frame = bytearray(frames[index])
            frame[draw(st.integers(0, len(frame) - 1))] = draw(st.integers(0, 255))
            frames[index] = bytes(frame)
    name = draw(st.sampled_from(sorted(containers([b""]))))
    return name, containers(frames, seed)[name]


@needs_compiled
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(found=random_captures(), options=st.sampled_from(OPTION_SETS))
def test_random_frames_same_report(tmp_path: Path, found: tuple[str, bytes], options: list[str]) -> None:
    name, data = found
    capture = tmp_path / name
    capture.write_bytes(data)
    assert _inspect(capture, "auto", "--json", *options) == _inspect(capture, "scalar", "--json", *options)


@needs_compiled
def test_inspect_rows_refuses_hostile_arguments() -> None:
    records = load_extension("_records")
    buffer = bytearray(64)
    q = bytearray(8)
    ports = bytearray(8192)
    rows = bytearray(80)
    struct.pack_into("q", q, 0, 0)
    spans = bytearray(struct.pack("q", 100))  # beyond the buffer
    with pytest.raises(ValueError):
        records.inspect_rows(buffer, q, q, spans, b"\0", 1, False, False, ports, rows)
    with pytest.raises(ValueError):  # a row too few
        records.inspect_rows(buffer, q, q, q, b"\0\0", 2, False, False, ports, rows)
    with pytest.raises(ValueError):  # a port map too short
        records.inspect_rows(buffer, q, q, q, b"\0", 1, False, False, bytearray(10), rows)
    heads = bytearray(struct.pack("q", 60))  # a record header past the buffer's end
    with pytest.raises(ValueError):
        records.inspect_rows(buffer, heads, q, q, b"\0", 1, False, False, ports, rows)
    assert records.inspect_rows(buffer, q, q, q, b"\0", 1, False, False, ports, rows) is None


@needs_compiled
def test_later_sections_read_in_bulk_or_judged_by_the_general_reader(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Sections after the first are read by the bulk reader too; one whose head is broken (its byte-order
    magic, its interface description, a section without interfaces) the general reader judges."""
    frames = ordinary_frames(600, seed=5)
    counted = spy_on_rows(monkeypatch)
    whole = pcapng_bytes(frames, seed=5, sections=3)
    capture = tmp_path / "whole.pcapng"
    capture.write_bytes(whole)
    assert_same_inspect(capture, (OPTION_SETS[0],), text=False)
    sections = [at for at in range(0, len(whole) - 12, 4) if whole[at : at + 4] == b"\x0a\x0d\x0d\x0a"
                and whole[at + 8 : at + 12] == b"\x4d\x3c\x2b\x1a"]
    assert len(sections) == 3
    # a chunk of rows per section: each section's frames counted in rows, the last one's too
    assert len(counted) == 3 and min(counted) > 0, counted
    second = sections[1]
    damaged = {
        "magic": whole[: second + 8] + b"\x01\x02\x03\x04" + whole[second + 12 :],
        "idb": whole[: second + 28] + b"\xff\xff\xff\xff" + whole[second + 32 :],
        # the second section's interfaces dropped: its packets name an interface it does not have
        "no-interfaces": whole[: second + 28] + whole[whole.index(struct.pack("<I", 6), second + 28) :],
    }
    for name, data in damaged.items():
        broken = tmp_path / f"{name}.pcapng"
        broken.write_bytes(data)
        assert_same_inspect(broken, (OPTION_SETS[0],), text=False)


@needs_compiled
@pytest.mark.parametrize("name", ["le.pcap", "le.pcapng"])
def test_polls_across_chunks_of_few_frames(name: str, tmp_path: Path) -> None:
    """Chunks of fewer frames than a GRO poll (200 KB jumbograms among small TCP segments of one flow
    GRO merges): a poll's frames come from several chunks of the bulk reader's two buffers, and are
    counted as they were read."""
    frames: list[bytes] = []
    seq = 1000
    for index in range(200):
        frames.append(tcp6_jumbogram(200_000 + 8 * index, sport=41000 + index % 5, partial=index % 3 == 0))
        for _ in range(index % 2):
            frames.append(build_frame(SuperPacketSpec(payload=payload(1448, index), seq=seq, tcp_flags=0x10,
                                                      partial_checksum=False)))
            seq += 1448
    capture = tmp_path / name
    capture.write_bytes(containers(frames)[name])
    assert capture.stat().st_size > 5 * (4 << 20)
    assert_same_inspect(capture, (OPTION_SETS[0],), text=False)


@needs_compiled
def test_a_flows_super_packets_of_every_length_are_counted_from_its_shape(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A sending host's flows put out super-packets of many lengths: after a flow's first, each one is
    counted from the flow's shape (its length's plan, derived or learnt), not decoded field by field,
    and the report is the scalar engine's under devices with and without TSO, another MTU and GSO size."""
    from softgso.cli.bench import host_frames, write_capture
    from softgso.cli.inspect import CaptureInspector

    capture = tmp_path / "host.pcapng"
    write_capture(capture, 4 << 20, frames=host_frames(flows=2, seed=9), capture_format="pcapng")
    shaped: list[int] = []
    original = CaptureInspector._add_shaped

    def add_shaped(self: CaptureInspector, frame: bytes, *args: object) -> None:
        shaped.append(len(frame))
        original(self, frame, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(CaptureInspector, "_add_shaped", add_shaped)
    assert run_cli("inspect", capture, "--json").exit_code == 0
    lengths = len(set(shaped))
    assert len(shaped) > 120 and lengths > 40, (len(shaped), lengths)  # many lengths, each through the shape
    assert_same_inspect(capture, ([], ["--device", "csum"], ["--device", "tso"], ["--mtu", "1400"],
                                  ["--gso-size", "1000"]), text=False)


@needs_compiled
@pytest.mark.parametrize("capture_format", ["pcap", "pcapng"])
def test_a_sending_hosts_capture_same_report(capture_format: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sending host's capture (bench.host_frames: super-packets of many lengths, the host's ACKs with
    partial seeds between them): the scalar engine's report under devices that complete the seeds
    and that leave them; the seeded short frames counted from the rows (each class's action learnt
    from its first frame, as segment learns it)."""
    from softgso.cli.bench import host_frames, write_capture

    capture = tmp_path / f"host.{capture_format}"
    records = write_capture(capture, 6 << 20, frames=host_frames(flows=3, seed=4), capture_format=capture_format)
    counted = spy_on_rows(monkeypatch)
    option_sets = ([], ["--device", "csum"], ["--device", "tso"])
    assert_same_inspect(capture, option_sets, text=False)
    assert sum(counted) > 0.3 * records * len(option_sets), (sum(counted), records)


@pytest.mark.parametrize("engine", ["auto", "scalar"])
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_gso_metadata_comments_are_read_as_segment_reads_them(tmp_path: Path, engine: str, jobs: str) -> None:
    """A packet whose EPB comment carries GSO metadata (as ``coalesce`` writes it) is cut by that
    gso_size and gso_type in inspect's preview as in segment (options_from_gso_comment), never counted
    from the shape a plain packet of its flow taught, on the bulk reader's path and the general one's."""
    from capture_helpers import png_epb, png_idb, png_shb

    tcp = build_frame(SuperPacketSpec(payload=payload(5000, 1), partial_checksum=False))
    short = build_frame(SuperPacketSpec(payload=payload(1400, 2), partial_checksum=False))
    udp = build_frame(SuperPacketSpec(udp=True, payload=payload(3000, 3), partial_checksum=False))
    records = [
        (0, tcp, None),  # 5000 bytes by the MTU: 4 segments, and the flow's shape learnt
        (0, tcp, "gso_size=1000 gso_type=tcpv4 segs=5"),  # 5
        (0, short, "gso_size=500 gso_type=tcpv4 segs=3"),  # under the MTU, cut by its metadata: 3
        (0, tcp, "gso_size=1000 gso_type=tcpv6 segs=5"),  # TCPV6 on IPv4: refused, passed through
        (0, udp, "gso_size=1200 gso_type=udp_l4 segs=3"),  # USO: 3
        (1, sll(tcp), "gso_size=1000 gso_type=tcpv4 segs=5"),  # a cooked record: 5
    ]
    capture = tmp_path / "in.pcapng"
    capture.write_bytes(png_shb("<") + png_idb("<", 1) + png_idb("<", 113)
                        + b"".join(png_epb("<", interface, 1000 + k, frame, comment=comment)
                                   for k, (interface, frame, comment) in enumerate(records)))
    result, segmented = run_json("segment", capture, tmp_path / "out.pcapng")
    assert result.exit_code == 0
    assert segmented["records_out"] == 4 + 5 + 3 + 1 + 3 + 5
    assert segmented["outcomes"]["segmented"] == 5 and segmented["outcomes"]["refused"] == 1
    result, report = run_json("inspect", capture, "--engine", engine, "--jobs", jobs)
    assert result.exit_code == 0
    assert report["segment"]["records_out"] == segmented["records_out"]
    assert report["segment"]["outcomes"] == segmented["outcomes"]
    assert report["segment"]["report_kinds"][0]["count"] == 1  # the refusal


def _null(frame: bytes) -> bytes:
    return struct.pack("<I", 2 if frame[12:14] == b"\x08\x00" else 24) + frame[14:]


@pytest.mark.parametrize(("linktype", "link"), [(113, sll), (276, None), (0, _null), (101, lambda f: f[14:])])
@pytest.mark.parametrize("engine", ["auto", "scalar"])
def test_bytes_are_the_records_bytes_on_every_link_type(tmp_path: Path, linktype: int, link, engine: str) -> None:
    """inspect's bytes in and 'segment would write' bytes are the records' (a cooked, NULL or raw-IP
    record's own link header, not the Ethernet header of the frame it reads): what the capture holds and
    what segment writes, measured here by Scapy on the files."""
    from cli_captures import sll2, write_pcap
    from scapy.utils import rdpcap

    link = link or sll2
    rng = random.Random(linktype)
    frames = [link(build_frame(SuperPacketSpec(payload=payload(rng.choice((40, 600, 5000, 20000)), k),
                                               partial_checksum=bool(k % 2), seq=1000 + 30000 * k)))
              for k in range(12)]
    capture = write_pcap(tmp_path / "in.pcap", frames, linktype=linktype)
    out = tmp_path / "out.pcap"
    assert run_cli("segment", capture, out, "-q").exit_code == 0
    result, report = run_json("inspect", capture, "--engine", engine)
    assert result.exit_code == 0
    assert report["bytes"] == sum(len(p) for p in rdpcap(str(capture)))
    assert report["segment"]["bytes_out"] == sum(len(p) for p in rdpcap(str(out)))
    assert report["segment"]["records_out"] == len(rdpcap(str(out)))
