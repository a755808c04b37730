"""``softgso segment`` of pcapng files through the bulk path writes what the scalar path writes, byte for byte.

The reference is the same command with ``--engine scalar``: output file, JSON summary (but for the
elapsed seconds and the output name), reports and exit status must all be the same, for both bulk
engines. The inputs are built here block by block from the pcapng spec (capture_helpers' png_*
builders), with what real files carry: several interfaces and link types, Simple Packet Blocks,
options (comments, flags, hashes) that an unchanged record keeps byte for byte, statistics and
custom blocks, either byte order, odd resolutions, a second section, an interface described late.
"""

from __future__ import annotations

import itertools
import os
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from capture_helpers import png_block, png_epb, png_idb, png_isb, png_option, png_shb, png_spb, scapy_decode
from conftest import run_cli, spy_on_parts
from test_segment_bulk import USO, _bulk_engines, _summary, engine_modes, mixed_frames

from softgso.check.synth import SuperPacketSpec, build_frame

TICKS = 1_700_000_000_000_000  # microseconds: 2023-11-14


@pytest.fixture(params=_bulk_engines())
def engine(request: pytest.FixtureRequest) -> str:
    """The bulk engine under test."""
    return str(request.param)


def epb_with_options(prefix: str, interface: int, ticks: int, frame: bytes, options: list[bytes]) -> bytes:
    """An EPB whose options are ``options`` (each from png_option), then opt_endofopt."""
    header = struct.pack(prefix + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
    return png_block(prefix, 6, header + frame, options)


def cooked(frame: bytes) -> bytes:
    """An Ethernet frame as a Linux cooked SLL record (packet type 4, ARPHRD_ETHER, its source MAC)."""
    return struct.pack("!HHH8sH", 4, 1, 6, frame[6:12] + bytes(2), int.from_bytes(frame[12:14], "big")) + frame[14:]


def pcapng_capture(prefix: str, seed: int, records: int = 400, tsresol: int | None = None) -> bytes:
    """A section of three interfaces (Ethernet, Ethernet at ``tsresol``, SLL) holding ``records``
    packets of mixed_frames: most in plain EPBs, some with flags and a hash, some with a comment
    (GSO metadata among them), some in SPBs; statistics, name-resolution and custom blocks between."""
    rng = random.Random(seed)
    frames = mixed_frames(seed)
    blocks = [png_shb(prefix, "softgso test section"), png_idb(prefix, 1, name="eth0"),
              png_idb(prefix, 1, tsresol=tsresol, tsoffset=None if tsresol is None else 1_600_000_000),
              png_idb(prefix, 113, name="any")]
    for number in range(records):
        frame = next(frames)
        ticks = TICKS + 1000 * number
        roll = rng.random()
        if roll < 0.6:
            blocks.append(png_epb(prefix, 0, ticks, frame))
        elif roll < 0.7:
            flags = png_option(prefix, 2, struct.pack(prefix + "I", 0x1 | (rng.randint(0, 3) << 2)))
            digest = png_option(prefix, 3, b"\x02" + os.urandom(16))
            blocks.append(epb_with_options(prefix, 0, ticks, frame, [flags, digest]))
        elif roll < 0.75:
            blocks.append(png_epb(prefix, 0, ticks, frame, comment=f"note {number}"))
        elif roll < 0.78:
            blocks.append(png_epb(prefix, 0, ticks, frame, comment="gso_size=1000 gso_type=tcpv4"))
        elif roll < 0.86:
            blocks.append(png_epb(prefix, 1, ticks, frame))
        elif roll < 0.9:
            blocks.append(png_epb(prefix, 2, ticks, cooked(frame)))
        elif roll < 0.95:
            blocks.append(png_spb(prefix, frame))
        elif roll < 0.97:
            blocks.append(png_isb(prefix, 0))
        elif roll < 0.98:
            blocks.append(png_block(prefix, 4, struct.pack(prefix + "HH", 1, 8) + bytes([192, 0, 2, 1]) + b"ab\0\0"
                                    + struct.pack(prefix + "HH", 0, 0)))  # name resolution
        else:
            blocks.append(png_block(prefix, 0x40000BAD, struct.pack(prefix + "I", 32473) + os.urandom(21)))
    return b"".join(blocks)


def both(capture: Path, tmp: Path, engine: str, *options: str) -> tuple[bytes, bytes, dict, dict]:
    """(bulk output, scalar output, bulk summary, scalar summary); exit status and stderr equal."""
    bulk = run_cli("segment", capture, tmp / "bulk.pcapng", "--json", "--engine", engine, *options)
    scalar = run_cli("segment", capture, tmp / "scalar.pcapng", "--json", "--engine", "scalar", *options)
    assert bulk.exit_code == scalar.exit_code
    assert bulk.stderr == scalar.stderr
    return ((tmp / "bulk.pcapng").read_bytes(), (tmp / "scalar.pcapng").read_bytes(),
            _summary(bulk.stdout) if bulk.stdout else {}, _summary(scalar.stdout) if scalar.stdout else {})


@pytest.fixture
def resumed(engine: str, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Where each bulk pcapng stream of the test handed over to the general reader (None: nowhere)."""
    from softgso.bulk.pipeline import SegmentStream

    found: list[Any] = []
    run = SegmentStream.run_pcapng

    def run_and_tell(self: Any, *args: object, **kwargs: object) -> object:
        result = run(self, *args, **kwargs)
        found.append(result.resume_index)
        return result

    monkeypatch.setattr(SegmentStream, "run_pcapng", run_and_tell)
    return found


@pytest.mark.parametrize(("prefix", "tsresol"), [("<", None), (">", None), ("<", 9), (">", 0x80 | 20),
                                                 ("<", 12)])
@pytest.mark.parametrize("seed", [1, 2])
def test_bulk_segment_equals_scalar_segment_on_pcapng(tmp: Path, engine: str, prefix: str, tsresol: int | None,
                                                      seed: int, resumed: list[Any]) -> None:
    capture = tmp / "in.pcapng"
    capture.write_bytes(pcapng_capture(prefix, seed, tsresol=tsresol))
    bulk, scalar, bulk_json, scalar_json = both(capture, tmp, engine, *USO)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert bulk_json["outcomes"]["segmented"] > 0 and bulk_json["outcomes"]["unchanged"] > 0
    assert resumed == [None], "the whole section read by the bulk stream"
    # independent decoders read the output (Scapy record by record; tshark agrees in tests/cli/test_tshark.py)
    assert len(scapy_decode(tmp / "bulk.pcapng")) == bulk_json["records_out"]


def test_unchanged_records_keep_their_blocks_and_options_byte_for_byte(tmp: Path, engine: str) -> None:
    """Small packets with options (flags, hash), in EPBs and SPBs, and a block about the capture
    (interface statistics) among them: OUT is IN byte for byte, in both byte orders."""
    for prefix in "<>":
        frames = [build_frame(SuperPacketSpec(payload=os.urandom(n), partial_checksum=False)) for n in (10, 300, 999)]
        flags = png_option(prefix, 2, struct.pack(prefix + "I", 0x5))
        digest = png_option(prefix, 3, b"\x02" + bytes(range(16)))
        kept = [epb_with_options(prefix, 0, TICKS + k, frame, [flags, digest]) for k, frame in enumerate(frames)]
        kept += [png_spb(prefix, frame) for frame in frames] + [png_epb(prefix, 0, TICKS, frames[0], comment="c")]
        statistics = png_isb(prefix, 0)
        head = png_shb(prefix) + png_idb(prefix, 1)
        capture = tmp / "in.pcapng"
        capture.write_bytes(head + kept[0] + statistics + b"".join(kept[1:]))
        bulk, scalar, bulk_json, _ = both(capture, tmp, engine)
        assert bulk == scalar == capture.read_bytes()
        assert bulk_json["outcomes"]["unchanged"] == len(kept)


def test_gso_comment_is_read_on_the_bulk_path_too(tmp: Path, engine: str) -> None:
    """A packet whose comment carries GSO metadata (as ``coalesce`` writes it) is segmented by it."""
    frame = build_frame(SuperPacketSpec(payload=os.urandom(3000), partial_checksum=False))
    capture = tmp / "in.pcapng"
    capture.write_bytes(png_shb("<") + png_idb("<", 1)
                        + png_epb("<", 0, TICKS, frame, comment="gso_size=1000 gso_type=tcpv4"))
    bulk, scalar, bulk_json, _ = both(capture, tmp, engine)
    assert bulk == scalar
    assert bulk_json["records_out"] == 3


def test_a_second_section_is_left_to_the_general_reader(tmp: Path, engine: str, resumed: list[Any]) -> None:
    """The bulk stream reads the first section (an interface described late included) up to a block it
    does not take (a new section): the scalar stream writes the rest, as it would have."""
    first = pcapng_capture("<", 3, records=120)
    late = png_idb("<", 276, name="late") + png_epb("<", 3, TICKS, next(mixed_frames(4)))
    second = pcapng_capture(">", 5, records=120)
    capture = tmp / "in.pcapng"
    capture.write_bytes(first + late + second)
    bulk, scalar, bulk_json, scalar_json = both(capture, tmp, engine, *USO)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert resumed and resumed[0] is not None and resumed[0] > 100


def test_an_interface_described_late_is_taken_on_the_way(tmp: Path, engine: str, resumed: list[Any]) -> None:
    """IDBs after the first packet (Ethernet and SLL2): the bulk stream goes on; the new interfaces'
    records take the scalar path, their IDBs written where the scalar stream writes them."""
    first = pcapng_capture("<", 12, records=150)
    frames = list(itertools.islice(mixed_frames(13), 80))
    late = [png_idb("<", 1, name="late-eth"), png_idb("<", 276, name="late-sll2")]
    on_eth = b"".join(png_epb("<", 3 if k % 3 else 0, TICKS + k, f) for k, f in enumerate(frames[:40]))
    on_sll2 = b"".join(png_epb("<", 4 if k % 2 else 0, TICKS + k, struct.pack("!HHIHBB8s", int.from_bytes(
        f[12:14], "big"), 0, 2, 1, 4, 6, f[6:12] + bytes(2)) + f[14:] if k % 2 else f) for k, f in enumerate(frames[40:]))
    capture = tmp / "in.pcapng"
    capture.write_bytes(first + late[0] + on_eth + late[1] + on_sll2)
    bulk, scalar, bulk_json, scalar_json = both(capture, tmp, engine, *USO)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert resumed == [None]


def test_an_interface_described_late_whose_frames_end_in_an_fcs_is_taken_alike(tmp: Path, engine: str,
                                                                               resumed: list[Any]) -> None:
    """An IDB after the first packet with if_fcslen 32 (bits): the general reader takes over at that
    IDB, as the scalar path does; a super-packet on it is segmented without its FCS and each segment
    gets its own, and one whose FCS does not check passes through unchanged, reported; never
    segmented with its FCS taken for payload."""
    import zlib

    first = pcapng_capture("<", 14, records=60)
    frame = build_frame(SuperPacketSpec(payload=random.Random(3).randbytes(4000)))
    good, damaged = frame + struct.pack("<I", zlib.crc32(frame)), frame + bytes.fromhex("deadbeef")
    capture = tmp / "in.pcapng"
    capture.write_bytes(first + png_idb("<", 1, fcslen=32) + png_epb("<", 3, TICKS, good) + png_epb("<", 3, TICKS, damaged))
    bulk, scalar, bulk_json, scalar_json = both(capture, tmp, engine, *USO)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert [(k["kind"], k["first_frame"]) for k in scalar_json["report_kinds"]] == [("FCS not made", 62)]
    assert damaged in bulk
    assert scalar_json["outcomes"]["segmented"] >= 1 and good not in bulk
    assert resumed and resumed[0] is not None


@pytest.mark.parametrize(("engine", "mode"), engine_modes("read", "mapped", "mapped, written by the segmenting thread"))
@pytest.mark.parametrize("chunk", [4096, 70_001])
def test_blocks_across_chunk_ends_are_segmented_alike(tmp: Path, chunk: int, engine: str, mode: str,
                                                      resumed: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from test_segment_bulk import input_mode, stream_of

    primitive, _ = stream_of(engine)
    in_place = input_mode(engine, mode, monkeypatch, small_windows=True)
    monkeypatch.setattr(primitive, "CHUNK_SIZE", chunk)
    monkeypatch.setattr(primitive, "MAPPED_CHUNK_SIZE", chunk)
    frames = list(itertools.islice(mixed_frames(9), 200))
    for at in (5, 77, 150):
        frames.insert(at, build_frame(SuperPacketSpec(payload=os.urandom(60000))))
    capture = tmp / "in.pcapng"
    capture.write_bytes(png_shb("<") + png_idb("<", 1)
                        + b"".join(png_epb("<", 0, TICKS + k, frame) for k, frame in enumerate(frames)))
    bulk, scalar, bulk_json, scalar_json = both(capture, tmp, engine, *USO)
    assert bulk == scalar
    assert bulk_json == scalar_json
    assert bulk_json["records_in"] == len(frames)
    assert resumed == [None]
    assert (len(in_place) > 3) == (mode != "read")


@pytest.mark.parametrize(("engine", "mode"), engine_modes("read", "mapped"))
def test_pcapng_cut_short_while_a_bulk_stream_reads_it_is_a_truncated_capture(
        tmp: Path, engine: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """IN shorter than when the run started: every record before the cut is written, the cut is
    reported as the scalar path reports it, exit 3 (no SIGBUS, read or mapped)."""
    from test_segment_bulk import cut_while_read_like_reference

    capture = tmp / "in.pcapng"
    capture.write_bytes(pcapng_capture("<", 6, records=2500))
    assert capture.stat().st_size > 2 << 20
    cut_while_read_like_reference(tmp, capture, engine, monkeypatch, mode)
    assert len(scapy_decode(tmp / "out.pcapng")) > 0


@pytest.mark.parametrize(("engine", "mode"), engine_modes("read", "mapped, cut before the walk",
                                                          "mapped, cut before the writev",
                                                          "mapped, cut before the writev of the segmenting thread"))
def test_pcapng_cut_short_during_a_bulk_run_keeps_every_record_before_the_cut(
        tmp: Path, engine: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """IN cut by another writer while the stream is under way (after it read its second chunk; mapped:
    before that chunk's walk and sums touch the mapping, or between its sums and its writev): exit 3,
    what came before the cut written as the scalar path writes it (no SIGBUS)."""
    from test_segment_bulk import MAPPED_SCAN, cut_during_the_run_like_reference

    capture = tmp / "in.pcapng"
    capture.write_bytes(pcapng_capture("<", 7, records=2500))
    assert capture.stat().st_size > 2 << 20
    faults = cut_during_the_run_like_reference(tmp, capture, engine, monkeypatch, mode)
    assert len(scapy_decode(tmp / "out.pcapng")) > 0
    if mode == MAPPED_SCAN:
        assert faults > 0, "pages past the cut were touched in the mapping and answered by the guard"


@pytest.mark.parametrize("damage", ["cut", "trailing length", "caplen", "interface"])
def test_broken_pcapng_fails_alike(tmp: Path, engine: str, damage: str) -> None:
    content = bytearray(pcapng_capture("<", 8, records=300))
    at = len(content) // 2
    at = content.index(struct.pack("<I", 6), at)  # an EPB's type, most likely; any damage is the scalar path's
    if damage == "cut":
        content = content[: at + 40]
    elif damage == "trailing length":
        length = struct.unpack_from("<I", content, at + 4)[0]
        struct.pack_into("<I", content, at + length - 4, length + 4)
    elif damage == "caplen":
        struct.pack_into("<I", content, at + 20, 1 << 20)
    else:
        struct.pack_into("<I", content, at + 8, 9)
    capture = tmp / "broken.pcapng"
    capture.write_bytes(bytes(content))
    bulk, scalar, _, _ = both(capture, tmp, engine, *USO)
    assert bulk == scalar


@pytest.mark.parametrize("broken", ["skipped block", "interface"])
def test_a_broken_block_before_the_first_packet_fails_alike(tmp: Path, engine: str, broken: str) -> None:
    """A block the general reader reads before the first packet (an IDB, or one it skips) whose trailing
    length is not its length: the scalar path reports it before any record (exit status 3); the bulk walk,
    which starts after those blocks, used to write every record and exit 0 (found by engines_mix)."""
    content = bytearray(pcapng_capture("<", 8, records=60))
    first_packet = content.index(png_idb("<", 113, name="any")) + len(png_idb("<", 113, name="any"))
    if broken == "skipped block":
        block = bytearray(png_isb("<", 0))
        block[-4:] = struct.pack("<I", len(block) + 12)
        content[first_packet:first_packet] = block
    else:  # the last IDB's trailing length
        struct.pack_into("<I", content, first_packet - 4, 40)
    capture = tmp / "broken.pcapng"
    capture.write_bytes(bytes(content))
    from softgso.bulk.stream import pcapng_header

    assert pcapng_header(capture) is None  # the general reader's, from its first block
    answers = []
    for name in (engine, "scalar"):
        result = run_cli("segment", capture, tmp / f"{name}.pcapng", "--json", "--engine", name, *USO)
        written = tmp / f"{name}.pcapng"
        answers.append((result.exit_code, result.stderr.replace(str(written), "OUT"),
                        written.read_bytes() if written.exists() else None))
    assert answers[0] == answers[1]
    assert answers[1][0] == 3


@pytest.mark.usefixtures("always_parts")
@pytest.mark.parametrize("jobs", ["2", "3"])
def test_jobs_on_pcapng_equal_one_job(tmp: Path, engine: str, jobs: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """--jobs cuts a pcapng's first section at block boundaries: the same bytes and summary as the
    scalar path; with a late interface (a part cannot finish) the file is done in one job, the same."""
    from softgso.cli import runner

    in_parts = spy_on_parts(monkeypatch, runner, "_segment_jobs")
    for content, whole in ((pcapng_capture("<", 9, records=1500), True),
                           (pcapng_capture(">", 9, records=600) + png_idb(">", 1) + pcapng_capture(">", 10, 20)[-2000:],
                            False)):
        capture = tmp / "in.pcapng"
        capture.write_bytes(content)
        in_parts.clear()
        bulk, scalar, bulk_json, scalar_json = both(capture, tmp, engine, *USO, "--jobs", jobs)
        assert bulk == scalar
        assert bulk_json == scalar_json
        assert in_parts == [whole], "done in parts, or (a part cannot finish) in one job"
