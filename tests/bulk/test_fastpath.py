"""The bulk path (softgso.bulk.fastpath) is byte-identical to the scalar path, shape by shape.

The scalar path is the reference: every expected value here is what ``process_frame`` (or the
kernel vectors' own replay) produces for the same packet, one packet at a time.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from softgso.bulk import compiled_primitive
from softgso.bulk.fastpath import FastSegmenter, word_sums
from softgso.check.golden import load_case, run_case
from softgso.check.synth import build_frame
from softgso.constants import ETH_P_MPLS_MC, ETH_P_MPLS_UC
from softgso.features import PROFILES, GsoType
from softgso.job import SEGMENTS_OVER_MTU, Outcome, PacketResult, SegmentOptions, process_frame
from softgso.virtio import VirtioNetHdr
from strategies import GsoCase, gso_cases, small_frames

np = pytest.importorskip("numpy")

# the two bulk computations, each held to the scalar path: numpy (softgso.bulk.fastpath) and C
# (softgso.bulk.compiled_primitive, only where softgso.bulk._segment is built)
ENGINES = ["numpy", *(["compiled"] if compiled_primitive.available() else [])]


def make_segmenter(engine: str, options: SegmentOptions, oracle=None) -> FastSegmenter:  # type: ignore[no-untyped-def]
    """A FastSegmenter whose plans ``reproduce`` with the given engine's bulk computation."""
    if engine == "numpy":
        return FastSegmenter(options, oracle)
    return compiled_primitive.CompiledSegmenter(options, oracle).fast

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
VECTORS = Path(__file__).parent.parent / "vectors" / "kernel"
CASES = sorted(p.parent for p in VECTORS.rglob("input_meta.json"))


def capture_frame(case: GsoCase, spec: object = None) -> bytes:
    """The case's super-packet as a capture holds it: labels and VLAN tag in the bytes."""
    frame = build_frame(spec or case.spec)  # type: ignore[arg-type]
    if case.labels:
        stack = b"".join(
            struct.pack("!I", (label << 12) | (tc << 9) | (1 << 8 if i == len(case.labels) - 1 else 0) | ttl)
            for i, (label, tc, ttl) in enumerate(case.labels)
        )
        ethertype = ETH_P_MPLS_MC if case.multicast else ETH_P_MPLS_UC
        frame = frame[:12] + struct.pack("!H", ethertype) + stack + frame[14:]
    if case.vlan:
        vid, pcp = case.vlan
        frame = frame[:12] + struct.pack("!HH", 0x8100, vid | pcp << 13) + frame[12:]
    return frame


def variants(case: GsoCase, data: st.DataObject) -> list[bytes]:
    """Packets of the same shape as the case's: other seq, IP ID, flags, payload bytes, checksum state."""
    frames = [capture_frame(case)]
    for _ in range(3):
        spec = dataclasses.replace(
            case.spec,
            seq=data.draw(st.integers(0, 2**32 - 1)),
            ip_id=data.draw(st.integers(0, 0xFFFF)),
            tcp_flags=case.spec.tcp_flags if case.spec.udp else data.draw(st.integers(0, 255)) | 0x10,
            payload=data.draw(st.binary(min_size=len(case.spec.payload), max_size=len(case.spec.payload))),
            partial_checksum=data.draw(st.booleans()),
        )
        frames.append(capture_frame(case, spec))
    return frames


def test_word_sums_equal_the_scalar_ones_sum() -> None:
    from softgso.checksum import ones_sum

    rng = np.random.default_rng(1)
    for length in (1, 2, 3, 4, 5, 7, 8, 1447, 1448):
        rows = rng.integers(0, 256, size=(5, length), dtype=np.uint8)
        ours = word_sums(rows)
        for row, value in zip(rows, ours, strict=True):
            assert int(value) == ones_sum(row.tobytes()) % 0xFFFF


@pytest.mark.parametrize("engine", ENGINES)
@SETTINGS
@given(gso_cases(), st.sampled_from(["no-offload", "csum", "nic-tso-no-mpls-gso"]), st.data())
def test_bulk_output_equals_scalar_output_packet_by_packet(engine: str, case: GsoCase, profile: str,
                                                           data: st.DataObject) -> None:
    # gso_cases' UDP super-packets are USO: udp_l4 is their GSO metadata (a capture cannot say it)
    options = SegmentOptions(device=PROFILES[profile], gso_size=case.gso_size, tcp_ecn=case.ecn,
                             fixed_id=case.fixed_id, udp_gso="udp_l4")
    frames = variants(case, data)
    fast = make_segmenter(engine, options)
    plan = fast.plan_for(frames[0])
    scalar = [process_frame(f, options) for f in frames]
    if plan is None:
        # (segments over the MTU at the given gso_size are noted, a record at a time: the scalar path's)
        assert scalar[0].outcome != Outcome.SEGMENTED or scalar[0].note == SEGMENTS_OVER_MTU, \
            "a segmented TCP/USO shape fell back to the scalar path"
        return
    assert not scalar[0].note, "a noted record must be counted by the scalar path"
    assert all(fast.plan_for(f) is plan for f in frames), "variants must share the shape"
    ours = fast.reproduce(frames, plan)
    for index, (mine, reference) in enumerate(zip(ours, scalar, strict=True)):
        assert mine == reference.frames, f"packet {index} differs from the scalar path"


def counting(options: SegmentOptions) -> tuple[list[bytes], object]:
    """The scalar path as an oracle that notes each frame it is asked about."""
    asked: list[bytes] = []

    def oracle(frame: bytes) -> PacketResult:
        asked.append(frame)
        return process_frame(frame, options)

    return asked, oracle


@pytest.mark.parametrize("engine", ENGINES)
@SETTINGS
@given(gso_cases(udp=False), st.sampled_from(["no-offload", "csum", "nic-tso-no-mpls-gso"]), st.data())
def test_another_length_of_a_tcp_shape_segments_as_the_scalar_path(engine: str, case: GsoCase, profile: str,
                                                                  data: st.DataObject) -> None:
    """A TCP flow's packets of other lengths (a write's tail, a smaller burst) leave as the scalar path
    sends each of them; on a device without TSO their plans come from the first one's, never from a
    guess on a device that may take a packet whole by its length."""
    options = SegmentOptions(device=PROFILES[profile], gso_size=case.gso_size, tcp_ecn=case.ecn,
                             fixed_id=case.fixed_id)
    asked, oracle = counting(options)
    fast = make_segmenter(engine, options, oracle)
    if fast.plan_for(capture_frame(case)) is None:
        return
    for _ in range(3):
        headers = len(capture_frame(case)) - len(case.spec.payload)
        length = data.draw(st.integers(1, min(case.gso_size * 45, 0xFFFF - headers)), label="payload length")
        payload = bytes((i * 13 + length) & 0xFF for i in range(length))
        frames = []
        for _variant in range(2):
            spec = dataclasses.replace(case.spec, payload=payload, seq=data.draw(st.integers(0, 2**32 - 1)),
                                       ip_id=data.draw(st.integers(0, 0xFFFF)),
                                       tcp_flags=data.draw(st.integers(0, 255)) | 0x10,
                                       partial_checksum=data.draw(st.booleans()))
            frames.append(capture_frame(case, spec))
        before = len(asked)
        plan = fast.plan_for(frames[0])
        scalar = [process_frame(frame, options) for frame in frames]
        if plan is None:
            assert scalar[0].outcome != Outcome.SEGMENTED or len(scalar[0].frames) < 2
            continue
        if profile != "nic-tso-no-mpls-gso" and length > case.gso_size:
            assert len(asked) == before, "a plan of another length of a known shape asked the scalar path again"
            event("derived")
        assert fast.plan_for(frames[1]) is plan
        for index, (mine, reference) in enumerate(zip(fast.reproduce(frames, plan), scalar, strict=True)):
            assert mine == reference.frames, f"payload {length}, packet {index}: not what the scalar path sends"


@SETTINGS
@given(gso_cases(), st.data())
def test_bulk_counts_the_same_input_checksum_states(case: GsoCase, data: st.DataObject) -> None:
    options = SegmentOptions(device=PROFILES["no-offload"], gso_size=case.gso_size, udp_gso="udp_l4")  # USO cases
    frames = variants(case, data)
    fast = FastSegmenter(options)
    plan = fast.plan_for(frames[0])
    if plan is None:
        return
    batch = np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(len(frames), -1)
    headers = np.empty((len(frames), plan.segments, plan.header_len), dtype=np.uint8)
    result = fast.segment_headers(plan, batch, headers)
    expected: dict[str, int] = {}
    for frame in frames:
        state = process_frame(frame, options).input_csum
        assert state is not None
        expected[state.value] = expected.get(state.value, 0) + 1
    assert result.states == expected
    assert list(result.states) == list(expected), "states in order of first appearance"


@pytest.mark.parametrize("engine", ENGINES)
def test_common_shapes_take_the_bulk_path(engine: str) -> None:
    """TCP/IPv4, TCP/IPv6, under labels and VLAN tags, and USO: none of them falls back."""
    from softgso.cli.bench import MIXES, _frames

    # the bench's UDP super-packets are USO by construction: udp_l4 is their truthful GSO metadata
    options = SegmentOptions(device=PROFILES["no-offload"], udp_gso="udp_l4")
    fast = make_segmenter(engine, options)
    for name in ("issue", "vlan", "uso", "all", "vxlan", "geneve", "gre", "ipip"):
        source = _frames(MIXES[name], 9000)
        for _ in range(len(MIXES[name]) * 16):
            frame = next(source)
            plan = fast.plan_for(frame)
            assert plan is not None, f"mix {name}: a common shape fell back to the scalar path"
            assert fast.reproduce([frame], plan)[0] == process_frame(frame, options).frames


def _oracle(case: object):  # type: ignore[no-untyped-def]
    def replay(frame: bytes) -> PacketResult:
        result = run_case(dataclasses.replace(case, frame=frame))  # type: ignore[type-var]
        if result.error is not None:
            return PacketResult(Outcome.REFUSED, [frame], result.error)
        outcome = Outcome.SEGMENTED if len(result.frames) > 1 else Outcome.WHOLE
        return PacketResult(outcome, result.frames, packets=result.packets)

    return replay


def _case_options(case: object) -> SegmentOptions:
    hdr = case.input_meta.get("virtio_net_hdr_bytes_le")  # type: ignore[attr-defined]
    return SegmentOptions(device=case.device,  # type: ignore[attr-defined]
                          vnet_hdr=VirtioNetHdr.unpack(bytes.fromhex(str(hdr or "00" * 10))),
                          actions=tuple(case.actions))  # type: ignore[attr-defined]


def _bulk_cases() -> list[Path]:
    """The vectors whose shape the bulk path takes (numpy's plans); the rest stay on the scalar path
    (refusal, UFO, whole, or odd shape), the same for both engines
    (test_the_same_kernel_vectors_take_the_bulk_path_with_either_engine)."""
    taken = []
    for case_dir in CASES:
        case = load_case(case_dir)
        if FastSegmenter(_case_options(case), _oracle(case)).plan_for(case.frame) is not None:
            taken.append(case_dir)
    return taken


BULK_CASES = _bulk_cases()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case_dir", BULK_CASES, ids=[c.name for c in BULK_CASES])
def test_kernel_vector_through_the_bulk_path(case_dir: Path, engine: str) -> None:
    """Each vector's input, and same-shape variants of it, give the scalar replay's frames in bulk."""
    case = load_case(case_dir)
    oracle = _oracle(case)
    fast = make_segmenter(engine, _case_options(case), oracle)
    plan = fast.plan_for(case.frame)
    assert plan is not None
    # the scalar replay is the reference (test_kernel_vectors holds it to the kernel's frames)
    assert fast.reproduce([case.frame], plan)[0] == oracle(case.frame).frames
    # other packets of the same shape: payload bytes, seq and IP ID changed
    layout_payload = plan.payload_at
    others = []
    for delta in (1, 77, 200):
        frame = bytearray(case.frame)
        frame[layout_payload:] = bytes((b + delta) & 0xFF for b in frame[layout_payload:])
        seq_at = plan.l4_in + 4
        if not plan.udp:
            seq = (int.from_bytes(frame[seq_at : seq_at + 4], "big") + delta * 1_000_003) & 0xFFFFFFFF
            frame[seq_at : seq_at + 4] = seq.to_bytes(4, "big")
        if plan.ipv4_at is not None:
            frame[plan.ipv4_in + 4 : plan.ipv4_in + 6] = (delta * 2999 & 0xFFFF).to_bytes(2, "big")
        others.append(bytes(frame))
    for frame in others:
        assert fast.plan_for(frame) is plan
    assert fast.reproduce(others, plan) == [oracle(f).frames for f in others]


TUNNEL_VECTORS = sorted(p for p in (VECTORS / "tunnels").glob("*/*") if (p / "input.pcap").exists())


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("profile", ["no-offload", "csum", "nic-vxlan-tso"])
@pytest.mark.parametrize("case_dir", TUNNEL_VECTORS, ids=[f"{c.parent.name}/{c.name}" for c in TUNNEL_VECTORS])
def test_tunnel_vector_through_the_bulk_path(case_dir: Path, engine: str, profile: str) -> None:
    """A super-packet a real tunnel device built, as captured (no virtio header), and same-shape variants
    of it (payload bytes, inner seq and flags, inner and outer IPv4 IDs, the outer UDP checksum's
    value), give the scalar path's frames in bulk; its shape is not taken for another's."""
    from softgso.check.golden import read_pcap_frames
    from softgso.offload.tunnels import parse_tunnel, parse_tunnel_port

    kernel = "6.12" if case_dir.parent.name == "6.12" else "6.1"
    meta = json.loads((case_dir / "meta.json").read_text())
    ports = tuple(parse_tunnel_port(text) for text in meta.get("softgso_tunnel_ports", []))  # FOU/GUE: no port
    options = SegmentOptions(device=dataclasses.replace(PROFILES[profile], mtu=1500), gso_size=1000, kernel=kernel,
                             udp_gso="udp_l4", tunnel_ports=ports)
    frame = read_pcap_frames(case_dir / "input.pcap")[0]
    fast = make_segmenter(engine, options)
    plan = fast.plan_for(frame)
    expected = process_frame(frame, options)
    if plan is None:
        assert expected.outcome != Outcome.SEGMENTED or len(expected.frames) < 2 or expected.note, \
            "a segmented tunnel shape fell back to the scalar path"
        return
    assert fast.reproduce([frame], plan)[0] == expected.frames
    tunnel = parse_tunnel(frame, dict(ports))
    assert tunnel is not None
    others = []
    for delta in (1, 77, 200):
        other = bytearray(frame)
        other[plan.payload_at :] = bytes((b + delta) & 0xFF for b in other[plan.payload_at :])
        if not plan.udp:
            seq_at = plan.l4_in + 4
            seq = (int.from_bytes(other[seq_at : seq_at + 4], "big") + delta * 1_000_003) & 0xFFFFFFFF
            other[seq_at : seq_at + 4] = seq.to_bytes(4, "big")
            other[plan.l4_in + 13] = (other[plan.l4_in + 13] ^ (delta & 0x09)) | 0x10
        if plan.ipv4_at is not None:
            other[plan.ipv4_in + 4 : plan.ipv4_in + 6] = (delta * 2999 & 0xFFFF).to_bytes(2, "big")
        if tunnel.outer_version == 4:
            n = tunnel.outer_network
            other[n + 4 : n + 6] = (0xFFFF - delta).to_bytes(2, "big")  # across the wrap
        if plan.csum_at is not None and plan.csum_mangle:
            other[tunnel.outer_l4 + 6 : tunnel.outer_l4 + 8] = (delta * 7919 & 0xFFFF or 1).to_bytes(2, "big")
        others.append(bytes(other))
    for other in others:
        assert fast.plan_for(other) is plan
    assert fast.reproduce(others, plan) == [process_frame(f, options).frames for f in others]
    # the outer UDP checksum's being 0 or not is part of the shape (UDP_TUNNEL against UDP_TUNNEL_CSUM)
    if tunnel.tunnel_bits & (GsoType.UDP_TUNNEL | GsoType.UDP_TUNNEL_CSUM):
        flipped = bytearray(frame)
        at = tunnel.outer_l4 + 6
        flipped[at : at + 2] = b"\0\0" if flipped[at : at + 2] != b"\0\0" else b"\x12\x34"
        if tunnel.outer_version == 6 and flipped[at : at + 2] == b"\0\0":
            return
        assert fast.plan_for(bytes(flipped)) is not plan
        other_plan = fast.plan_for(bytes(flipped))
        if other_plan is not None:
            assert fast.reproduce([bytes(flipped)], other_plan)[0] == process_frame(bytes(flipped), options).frames


@pytest.mark.parametrize("engine", ENGINES)
def test_enough_tunnel_vectors_take_the_bulk_path(engine: str) -> None:
    options = SegmentOptions(device=dataclasses.replace(PROFILES["no-offload"], mtu=1500), gso_size=1000)
    from softgso.check.golden import read_pcap_frames

    fast = make_segmenter(engine, options)
    taken = sum(fast.plan_for(read_pcap_frames(case / "input.pcap")[0]) is not None
                for case in TUNNEL_VECTORS if case.parent.name == "6.1")
    assert taken >= 100


def test_enough_kernel_vectors_take_the_bulk_path() -> None:
    assert len(BULK_CASES) >= 20


@pytest.mark.parametrize("engine", ENGINES)
def test_the_same_kernel_vectors_take_the_bulk_path_with_either_engine(engine: str) -> None:
    taken = []
    for case_dir in CASES:
        case = load_case(case_dir)
        if make_segmenter(engine, _case_options(case), _oracle(case)).plan_for(case.frame) is not None:
            taken.append(case_dir)
    assert taken == BULK_CASES


def test_range_sums_equal_the_scalar_ones_sum() -> None:
    from softgso.bulk.fastpath import range_sums
    from softgso.checksum import ones_sum

    rng = np.random.default_rng(2)
    buffer = rng.integers(0, 256, size=10001, dtype=np.uint8)
    starts = np.concatenate([rng.integers(0, 9000, size=300), [9990, 10000, 10000 - 7, 0, 1]])
    lengths = np.concatenate([rng.integers(0, 1000, size=300), [11, 1, 7, 10001, 10000]])
    for start, length, value in zip(starts, lengths, range_sums(buffer, starts, lengths), strict=True):
        assert int(value) == ones_sum(buffer[start : start + length].tobytes()) % 0xFFFF


def test_bulk_classification_equals_parse_layout_and_classify_l4_checksum() -> None:
    """Small frames of every kind, corrupted and cut short too: the same state (or none) as the scalar path."""
    import os
    import random

    from softgso.bulk.fastpath import CODE_NO_LAYOUT, CODE_SCALAR, CODE_STATES, classify_frames
    from softgso.prepare import classify_l4_checksum, parse_layout

    rng = random.Random(3)
    frames = small_frames(3, 1500)
    buffer, starts = bytearray(), []
    for frame in frames:
        buffer += os.urandom(rng.randint(0, 3))
        starts.append(len(buffer))
        buffer += frame
    codes = classify_frames(np.frombuffer(bytes(buffer), dtype=np.uint8), np.array(starts),
                            np.array([len(f) for f in frames]))
    for frame, code in zip(frames, codes, strict=True):
        if code == CODE_SCALAR:
            continue
        layout = parse_layout(frame)
        if layout is None or layout.fragment:
            assert code == CODE_NO_LAYOUT
        else:
            assert CODE_STATES[code] == classify_l4_checksum(frame, layout)


def _signed_run_frames() -> tuple[list[bytes], set[int]]:
    """30 TCP super-packets of one shape (20 bytes of options each, 4000 bytes of payload): most carry
    timestamps, three (positions 1, 11 and 12, i.e. inside runs) an MD5 signature behind two NOPs."""
    from scapy.all import IP, TCP, Ether, Raw, raw  # type: ignore[attr-defined]

    signed_at = {1, 11, 12}
    frames = []
    for index in range(30):
        if index in signed_at:
            options = [("NOP", None), ("NOP", None), (19, bytes([index]) * 16)]
        else:
            options = [("Timestamp", (index, 7))] + [("NOP", None)] * 10
        frames.append(raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                          IP(src="192.0.2.1", dst="192.0.2.2", id=index) /
                          TCP(sport=179, dport=40000, flags="A", seq=1000 + 4000 * index, options=options) /
                          Raw(bytes([index]) * 4000)))
    return frames, signed_at


@pytest.mark.parametrize("engine", ["scalar", "numpy", "compiled"])
def test_a_signed_super_packet_inside_a_run_of_its_shape_is_passed_through(engine: str, tmp_path: Path) -> None:
    """Shapes leave TCP options out (timestamps change per packet): a run of one shape must still end
    at a signed segment, which Linux never segments (sk_gso_disable on a socket with a signing key)."""
    from click.testing import CliRunner
    from scapy.all import TCP, Ether  # type: ignore[attr-defined]

    from softgso.check.golden import read_pcap_frames
    from softgso.cli.commands import main as softgso_main

    if engine == "compiled" and not compiled_primitive.available():
        pytest.skip("the compiled engine is not built (no C compiler at install)")
    frames, signed_at = _signed_run_frames()
    source, target = tmp_path / "in.pcap", tmp_path / "out.pcap"
    with open(source, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for index, frame in enumerate(frames):
            out.write(struct.pack("<IIII", 1700000000 + index, 0, len(frame), len(frame)) + frame)
    result = CliRunner().invoke(softgso_main, ["segment", str(source), str(target), "--engine", engine, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["outcomes"]["not_segmented"] == 3 and summary["outcomes"]["segmented"] == 27
    assert [report["frame"] for report in summary["reports"]] == sorted(n + 1 for n in signed_at)
    out = read_pcap_frames(target)
    # judged by Scapy: each signed frame once, as it came; every other frame a piece of an unsigned one
    signed_out = [f for f in out if any(kind == "MD5" for kind, _ in Ether(f)[TCP].options)]
    assert signed_out == [frames[n] for n in sorted(signed_at)]
    unsigned_out = [f for f in out if f not in signed_out]
    assert all(len(f) - 14 <= 1500 for f in unsigned_out)
    assert sum(len(Ether(f)[TCP].payload) for f in unsigned_out) == 27 * 4000


# options bytes that often hold a signature option, whole or cut, behind NOPs, EOLs or other options
_option_bytes = st.lists(st.one_of(
    st.sampled_from([b"\x01", b"\x00", b"\x13\x12" + bytes(16), b"\x1d\x04\x00\x00", b"\x1d\x03\x00",
                     b"\x13\x11" + bytes(15), b"\x08\x0a" + bytes(8), b"\x13", b"\x1d"]),
    st.binary(max_size=6)), max_size=8).map(b"".join)


@given(options=st.lists(_option_bytes.map(lambda raw: raw[:40]), min_size=1, max_size=12))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_unsigned_run_walks_the_options_as_tcp_signature(options: list[bytes]) -> None:
    """_segment.unsigned_run (signed_in_run's walk in C) stops a run where softgso.prepare.tcp_signature,
    the kernel's walk in Python, first finds a signature; with no signature it takes the whole run."""
    from array import array

    from softgso.prepare import tcp_signature

    unsigned_run = getattr(compiled_primitive._SEGMENT, "unsigned_run", None)
    if unsigned_run is None:
        pytest.skip("the compiled engine is not built (no C compiler at install)")
    width = 40  # options area of every record (its TCP header's end), padded with EOL
    frame_at, start = 16, 54 + 20
    buffer, offsets = bytearray(), array("q")
    for raw in options:
        offsets.append(len(buffer))
        buffer += bytes(frame_at + start) + raw.ljust(width, b"\x00") + bytes(3)
    expected = next((n - 1 for n in range(1, len(options)) if tcp_signature(options[n].ljust(width, b"\x00"))),
                    len(options) - 1)
    assert unsigned_run(bytes(buffer), offsets, 0, len(options) - 1, frame_at, start, start + width) == expected


def test_unsigned_run_refuses_records_outside_its_buffer() -> None:
    from array import array

    unsigned_run = getattr(compiled_primitive._SEGMENT, "unsigned_run", None)
    if unsigned_run is None:
        pytest.skip("the compiled engine is not built (no C compiler at install)")
    with pytest.raises(ValueError, match="outside the buffer"):
        unsigned_run(bytes(100), array("q", [0, 90]), 0, 1, 16, 74, 94)
    with pytest.raises(ValueError, match="out of bounds"):
        unsigned_run(bytes(100), array("q", [0]), 0, 1, 16, 74, 94)
