"""Issue 14, "never a silent wrong output": ``softgso segment`` over every real capture of the corpus.

The corpus (../shared/captures, written by tcpdump, Zeek, Suricata, nDPI and others, never by us)
holds super-packets, tunnels, label stacks, trailers, snapped records, broken files and plain
traffic. Each test states one rule of ``softgso segment --json --mtu 1500`` and checks it on every
capture (and, for the segment rules, with every engine). What the captures and outputs hold is
read by our own decoder (tests/corpus/decoder.py), which shares no code with softgso; softgso's
JSON is only ever the claim under test, never the expected value.
"""

from __future__ import annotations

import json
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from softgso.cli.commands import main as softgso_main

from .decoder import (
    LINKTYPE_ETHERNET,
    TUNNEL_IP_PROTOCOLS,
    TUNNEL_UDP_PORTS,
    Capture,
    Frame,
    IPPacket,
    Record,
    decode,
    read_capture,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CAPTURES = REPO_ROOT.parent / "shared" / "captures"
if not CAPTURES.is_dir():
    pytest.skip(f"the capture corpus is not here: {CAPTURES} (shared/ sits beside the clone in CI)",
                allow_module_level=True)

CAPTURE_NAMES = sorted(path.relative_to(CAPTURES).as_posix() for path in CAPTURES.rglob("*")
                       if path.suffix in (".pcap", ".pcapng"))
MTU = 1500
ENGINES = ("auto", "numpy", "scalar")
OUTCOMES = {"segmented", "whole", "changed", "unchanged", "refused", "not_segmented"}
EXIT_OK = 0
EXIT_BROKEN_INPUT = 3
ETH_MIN_FRAME = 60  # a frame this short may carry padding behind its IP packet
MISMATCHES_SHOWN = 5


# -- running softgso and reading what it wrote ------------------------------------------------------


@dataclass
class Run:
    """One ``softgso`` command: its exit status, its JSON (None if there was none) and what went wrong."""

    args: list[str]
    exit_code: int
    summary: dict[str, Any] | None
    stderr: str
    crash: str | None

    def describe(self) -> str:
        """The command and its diagnostics, for an assertion message."""
        text = f"`softgso {' '.join(self.args)}` exited {self.exit_code}"
        if self.crash:
            text += f"; it raised:\n{self.crash}"
        if self.stderr.strip():
            text += f"; stderr: {self.stderr.strip()[-800:]}"
        return text


def _invoke(args: list[str]) -> Run:
    """Run softgso in-process, as tests/cli does, keeping any crash as text."""
    result = CliRunner().invoke(softgso_main, args, catch_exceptions=True)
    crash = None
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        crash = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else repr(result.exception)
    try:
        summary = json.loads(result.stdout) if result.stdout.strip() else None
    except ValueError:
        summary = None
    return Run(args, result.exit_code, summary, result.stderr, crash)


class Corpus:
    """Input captures, softgso's runs over them and their outputs, each read or run once."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._captures: dict[Path, Capture] = {}
        self._frames: dict[Path, list[Frame]] = {}
        self._segment_runs: dict[tuple[str, str], tuple[Run, Path]] = {}
        self._inspect_runs: dict[str, Run] = {}

    def path(self, name: str) -> Path:
        return CAPTURES / name

    def capture(self, path: Path) -> Capture:
        if path not in self._captures:
            self._captures[path] = read_capture(path)
        return self._captures[path]

    def frames(self, path: Path) -> list[Frame]:
        if path not in self._frames:
            self._frames[path] = [decode(record) for record in self.capture(path).records]
        return self._frames[path]

    def segment(self, name: str, engine: str) -> tuple[Run, Path]:
        key = (name, engine)
        if key not in self._segment_runs:
            out = self.workdir / engine / name
            out.parent.mkdir(parents=True, exist_ok=True)
            run = _invoke(["segment", str(self.path(name)), str(out), "--mtu", str(MTU), "--json", "-q",
                           "--engine", engine])
            self._segment_runs[key] = (run, out)
        return self._segment_runs[key]

    def inspect(self, name: str) -> Run:
        if name not in self._inspect_runs:
            self._inspect_runs[name] = _invoke(["inspect", str(self.path(name)), "--mtu", str(MTU), "--json", "-q"])
        return self._inspect_runs[name]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return Corpus(tmp_path_factory.mktemp("corpus"))


@dataclass
class Segmented:
    """A capture, softgso's run over it, and both files as our decoder reads them."""

    name: str
    engine: str
    run: Run
    source: Capture
    source_frames: list[Frame]
    out: Capture
    out_frames: list[Frame]

    def where(self, rule: str) -> str:
        """The prefix of every assertion message: capture, engine and rule."""
        return f"{self.name} (--engine {self.engine}), rule '{rule}'"

    def summary(self, rule: str) -> dict[str, Any]:
        """softgso's JSON, failing the test if there is none."""
        assert self.run.summary is not None, f"{self.where(rule)}: no JSON summary; {self.run.describe()}"
        return self.run.summary


def _segmented(corpus: Corpus, name: str, engine: str) -> Segmented:
    run, out = corpus.segment(name, engine)
    assert run.crash is None, f"{name} (--engine {engine}): softgso crashed; {run.describe()}"
    assert out.exists(), f"{name} (--engine {engine}): no output file written; {run.describe()}"
    source_path = corpus.path(name)
    return Segmented(name, engine, run, corpus.capture(source_path), corpus.frames(source_path),
                     corpus.capture(out), corpus.frames(out))


@pytest.fixture(params=CAPTURE_NAMES)
def capture_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=ENGINES)
def segmented(request: pytest.FixtureRequest, corpus: Corpus, capture_name: str) -> Segmented:
    return _segmented(corpus, capture_name, str(request.param))


def _count(value: Any) -> int:
    """A count the JSON may give as a number or as the list of what it counts."""
    return len(value) if isinstance(value, list) else int(value)


# bytes behind an IP packet that are a trailer or padding (an FCS, an appliance's trailer), not part
# of the packet; more than this is measured with the frame (README: "What counts toward the MTU")
MAX_TRAILER = 64


def over_mtu(frame: Frame) -> bool:
    """Whether a frame is over the MTU: everything after the link-layer header and VLAN tags (MPLS
    labels included) up to the end of its IP packet by the IP length field; a frame with more than
    MAX_TRAILER bytes behind its IP packet, or no IP packet whose length can be read, is measured to
    the record's end on the wire."""
    size = frame.l3_size
    packet = frame.ip
    if packet is not None and frame.l3_offset is not None and not packet.length_zero \
            and packet.offset < packet.end <= frame.l3_end and frame.l3_end - packet.end <= MAX_TRAILER:
        size = packet.end - frame.l3_offset
    return size > MTU


def _frame_list(numbers: Iterable[int]) -> str:
    numbers = list(numbers)
    shown = ", ".join(str(n) for n in numbers[:MISMATCHES_SHOWN])
    return shown + (f" (and {len(numbers) - MISMATCHES_SHOWN} more)" if len(numbers) > MISMATCHES_SHOWN else "")


def _written(s: Segmented) -> list[tuple[Record, Frame]]:
    """The output records softgso wrote itself: those not found byte-identical in the multiset of
    input records (each input record accounts for one identical output record at most)."""
    available = Counter(record.key for record in s.source.records)
    written = []
    for record, frame in zip(s.out.records, s.out_frames, strict=True):
        if available[record.key]:
            available[record.key] -= 1
        else:
            written.append((record, frame))
    return written


def _flow_text(key: tuple[Any, ...]) -> str:
    version, src, dst, sport, dport = key[-5:]
    if version == 4:
        return f"{'.'.join(map(str, src))}:{sport} > {'.'.join(map(str, dst))}:{dport}"
    return f"[{src.hex(':', 2)}]:{sport} > [{dst.hex(':', 2)}]:{dport}"


# -- the contract: exit status and counts -----------------------------------------------------------


def test_exit_status_is_0_or_3_for_a_broken_input(segmented: Segmented) -> None:
    """Exit 0 without --strict; 3 when the input file breaks off (everything before the break written)."""
    s = segmented
    expected = EXIT_BROKEN_INPUT if s.source.broken else EXIT_OK
    why = f"the input breaks off: {s.source.break_reason}" if s.source.broken else "the input reads to its end"
    assert s.run.exit_code == expected, (
        f"{s.where('exit status')}: {why}, so the exit status should be {expected}; {s.run.describe()}")


def test_counts_add_up(segmented: Segmented) -> None:
    """outcomes sum to records_in, which is every input record before any break; records_out is what OUT holds."""
    s = segmented
    rule = "counts add up"
    summary = s.summary(rule)
    assert not s.out.broken, f"{s.where(rule)}: the output file itself is broken: {s.out.break_reason}"
    outcomes = summary.get("outcomes")
    read_in = len(s.source.records)
    problems = []
    if not isinstance(outcomes, dict) or set(outcomes) != OUTCOMES:
        problems.append(f"'outcomes' should have exactly the keys {sorted(OUTCOMES)}, has {outcomes!r}")
    if summary.get("records_in") != read_in:
        problems.append(f"records_in is {summary.get('records_in')}, the input holds {read_in} records"
                        + (f" before its break ({s.source.break_reason})" if s.source.broken else ""))
    if isinstance(outcomes, dict) and sum(outcomes.values()) != read_in:
        problems.append(f"the outcomes sum to {sum(outcomes.values())}, not to the {read_in} input records")
    if summary.get("records_out") != len(s.out.records):
        problems.append(f"records_out is {summary.get('records_out')}, the output holds {len(s.out.records)} records")
    assert not problems, f"{s.where(rule)}: " + "; ".join(problems)


SUMMARY_KEYS = {"records_in", "records_out", "bytes_in", "bytes_out", "mtu", "outcomes", "over_mtu_not_segmented",
                "reports", "input_checksums"}


def test_summary_keeps_the_contract(segmented: Segmented) -> None:
    """The JSON summary has the contract's keys, the MTU asked for, reports naming input frames by
    number with a kind and a reason, and checksum states counted."""
    s = segmented
    rule = "summary keeps the contract"
    summary = s.summary(rule)
    missing = SUMMARY_KEYS - set(summary)
    assert not missing, f"{s.where(rule)}: the summary lacks {sorted(missing)}"
    assert summary["mtu"] == MTU, f"{s.where(rule)}: mtu is {summary['mtu']!r}, --mtu {MTU} was given"
    malformed = [report for report in summary["reports"] if not (
        isinstance(report, dict) and {"frame", "kind", "reason"} <= set(report)
        and isinstance(report["frame"], int) and 1 <= report["frame"] <= len(s.source.records))]
    assert not malformed, (f"{s.where(rule)}: reports need a frame number from 1 to {len(s.source.records)}, "
                           f"a kind and a reason: {malformed[:MISMATCHES_SHOWN]}")
    states = summary["input_checksums"]
    assert isinstance(states, dict) and all(isinstance(n, int) and n >= 0 for n in states.values()), (
        f"{s.where(rule)}: input_checksums should map each state to a count, is {states!r}")


def _alignment_failure(s: Segmented) -> str | None:
    """Why the output is no sequence of one group per input record, in input order, or None if it is.

    A group is one record byte-identical to the input record (passed through), one record of the same
    length and timestamp (checksums completed), or, for a record over the MTU, two or more records
    with the input record's timestamp (segmented). Every way of grouping is followed at once.
    """
    source, out = s.source.records, s.out.records
    states = {0}
    for i, record in enumerate(source):
        reachable: set[int] = set()
        over_mtu_record = over_mtu(s.source_frames[i])
        for j in states:
            if j < len(out) and (out[j].key == record.key or (
                    out[j].caplen == record.caplen and out[j].timestamp == record.timestamp)):
                reachable.add(j + 1)
            if over_mtu_record:
                k = j
                while k < len(out) and out[k].timestamp == record.timestamp and out[k].key != record.key:
                    k += 1
                    if k - j >= 2:
                        reachable.add(k)
        if not reachable:
            j = min(states)
            found = (f"output record {j + 1} ({out[j].caplen} bytes, timestamp {float(out[j].timestamp or 0):.9f})"
                     if j < len(out) else "the end of the output")
            return (f"input frame {record.number} ({record.caplen} bytes, timestamp "
                    f"{float(record.timestamp or 0):.9f}) has no output in its place: found {found}")
        states = reachable
    if len(out) not in states:
        return f"the output holds {len(out) - max(states)} records after the last input record's own"
    return None


def test_output_records_follow_input_records_in_order(segmented: Segmented) -> None:
    """Each input record gives, in input order, one output record (byte-identical, or the same length
    with checksums completed) or, segmented, several records with its timestamp; none is lost."""
    s = segmented
    failure = _alignment_failure(s)
    assert failure is None, f"{s.where('output in input order')}: {failure}"


# -- rule 2: nothing oversize unreported ------------------------------------------------------------


def test_nothing_oversize_leaves_unreported(segmented: Segmented) -> None:
    """Every output frame over the MTU is an input record passed through byte-identical, counted in
    over_mtu_not_segmented (+ whole) and reported with its frame number."""
    s = segmented
    rule = "nothing oversize unreported"
    summary = s.summary(rule)
    source_keys = Counter(record.key for record in s.source.records)
    made_oversize = [record.number for record, frame in zip(s.out.records, s.out_frames, strict=True)
                     if over_mtu(frame) and not source_keys[record.key]]
    assert not made_oversize, (
        f"{s.where(rule)}: output records {_frame_list(made_oversize)} are over the MTU of {MTU} "
        "after the link header and VLAN tags, yet no input record is byte-identical to them")
    left = Counter(record.key for record in s.out.records)
    passed_over = []
    for record, frame in zip(s.source.records, s.source_frames, strict=True):
        if over_mtu(frame) and left[record.key]:
            left[record.key] -= 1
            passed_over.append(record.number)
    reports = summary.get("reports") or []
    reported = {report.get("frame") for report in reports if isinstance(report, dict)}
    unreported = [number for number in passed_over if number not in reported]
    assert not unreported, (
        f"{s.where(rule)}: input frames {_frame_list(unreported)} are over the MTU and passed through "
        "unsegmented, but have no report with their frame number")
    outcomes = summary.get("outcomes") or {}
    claimed = _count(summary.get("over_mtu_not_segmented", 0)) + _count(outcomes.get("whole", 0))
    assert claimed == len(passed_over), (
        f"{s.where(rule)}: {len(passed_over)} input records over the MTU come out unsegmented "
        f"(frames {_frame_list(passed_over)}), but over_mtu_not_segmented + whole = {claimed}")


# -- rule 3: every checksum softgso wrote is valid -------------------------------------------------


def _checksum_problems(frame: Frame) -> list[str]:
    problems = []
    for depth, packet in enumerate(frame.ip_layers()):
        layer = f"IPv{packet.version} at depth {depth}"
        if packet.header_checksum_ok is False:
            problems.append(f"{layer}: header checksum invalid")
        if packet.tcp is not None and packet.tcp.checksum_ok is False:
            problems.append(f"{layer}: TCP checksum {packet.tcp.checksum:#06x} invalid")
        udp = packet.udp
        if udp is not None and udp.checksum_ok is False:
            # RFC 6935: a tunnel over IPv6 may send a zero UDP checksum
            if not (udp.checksum == 0 and udp.dport in TUNNEL_UDP_PORTS):
                problems.append(f"{layer}: UDP checksum {udp.checksum:#06x} invalid")
    return problems


def test_every_checksum_softgso_wrote_is_valid(segmented: Segmented) -> None:
    """Output records not byte-identical to an input record carry valid IPv4 header and TCP/UDP checksums."""
    s = segmented
    bad = [(record.number, problem) for record, frame in _written(s) for problem in _checksum_problems(frame)]
    assert not bad, (f"{s.where('every checksum written is valid')}: "
                     + "; ".join(f"output frame {number}: {problem}" for number, problem in bad[:MISMATCHES_SHOWN])
                     + (f" (and {len(bad) - MISMATCHES_SHOWN} more)" if len(bad) > MISMATCHES_SHOWN else ""))


# -- rule 4: each TCP flow's bytes in order ---------------------------------------------------------

SEQ_CHUNK = 1 << 16
SEQ_MASK = 0xFFFFFFFF
_COVERED = b"\x01" * SEQ_CHUNK


class SequenceSpace:
    """The payload byte at each TCP sequence number of one flow, and which numbers are covered.

    Kept in 64 KB chunks of the 32-bit sequence space, so wrap-around and far-apart numbers cost
    nothing; a later record overwrites an earlier one, the same way on both sides.
    """

    def __init__(self) -> None:
        self.chunks: dict[int, tuple[bytearray, bytearray]] = {}
        self.writers: list[tuple[int, int, int]] = []  # (first sequence number, length, frame number)

    def write(self, seq: int, payload: bytes, frame_number: int) -> None:
        self.writers.append((seq, len(payload), frame_number))
        done = 0
        while done < len(payload):
            index, within = divmod((seq + done) & SEQ_MASK, SEQ_CHUNK)
            size = min(SEQ_CHUNK - within, len(payload) - done)
            data, covered = self.chunks.setdefault(index, (bytearray(SEQ_CHUNK), bytearray(SEQ_CHUNK)))
            data[within:within + size] = payload[done:done + size]
            covered[within:within + size] = _COVERED[:size]
            done += size

    def first_difference(self, other: SequenceSpace) -> int | None:
        """The lowest sequence number at which coverage or byte differ, or None."""
        for index in sorted(set(self.chunks) | set(other.chunks)):
            empty = (bytearray(SEQ_CHUNK), bytearray(SEQ_CHUNK))
            mine, theirs = self.chunks.get(index, empty), other.chunks.get(index, empty)
            if mine != theirs:
                within = next(n for n in range(SEQ_CHUNK)
                              if mine[0][n] != theirs[0][n] or mine[1][n] != theirs[1][n])
                return index * SEQ_CHUNK + within
        return None

    def describe(self, seq: int) -> str:
        chunk = self.chunks.get(seq // SEQ_CHUNK)
        if chunk is None or not chunk[1][seq % SEQ_CHUNK]:
            return "not covered"
        frames = [number for start, length, number in self.writers if (seq - start) & SEQ_MASK < length]
        return f"byte {chunk[0][seq % SEQ_CHUNK]:#04x} (frames {_frame_list(frames)})"


def _tcp_bytes(records: list[Record], frames: list[Frame]) -> dict[tuple[Any, ...], SequenceSpace]:
    """Per TCP flow, the payload by sequence number: payload bounded by the IP length (trailers are
    no payload); records whose IP packets are not stored whole, and fragments, left out."""
    flows: dict[tuple[Any, ...], SequenceSpace] = defaultdict(SequenceSpace)
    for record, frame in zip(records, frames, strict=True):
        layers = frame.ip_layers()
        if not layers or any(not p.whole or p.fragment or p.problem for p in layers):
            continue
        packet = layers[-1]
        tcp = packet.tcp
        if tcp is None:
            continue
        key = (packet.version, packet.src, packet.dst, tcp.sport, tcp.dport)
        space = flows[key]
        if tcp.payload_end > tcp.payload_start:
            space.write(tcp.data_seq, record.data[tcp.payload_start:tcp.payload_end], record.number)
    return flows


def test_each_tcp_flow_keeps_its_bytes_in_order(segmented: Segmented) -> None:
    """For every TCP flow, the payload byte at each sequence number is the same in OUT as in IN,
    and OUT covers exactly the sequence numbers IN covers."""
    s = segmented
    rule = "each TCP flow's bytes kept in order"
    before = _tcp_bytes(s.source.records, s.source_frames)
    after = _tcp_bytes(s.out.records, s.out_frames)
    problems = []
    for key in sorted(set(before) | set(after), key=repr):
        mine, theirs = before.get(key, SequenceSpace()), after.get(key, SequenceSpace())
        seq = mine.first_difference(theirs)
        if seq is not None:
            problems.append(f"flow {_flow_text(key)} at sequence number {seq}: input has {mine.describe(seq)}, "
                            f"output has {theirs.describe(seq)}")
    assert not problems, f"{s.where(rule)}: " + "; ".join(problems[:MISMATCHES_SHOWN]) + (
        f" (and {len(problems) - MISMATCHES_SHOWN} more flows)" if len(problems) > MISMATCHES_SHOWN else "")


# -- rule 5: no datagram split that its sender did not ask to split --------------------------------


def _datagrams(frames: list[Frame]) -> Counter[tuple[Any, ...]]:
    """UDP datagrams (first fragments included) per flow and depth, tunnel carriers left out: a tunnel
    may be segmented by its inner protocol (rule 6 judges those)."""
    counts: Counter[tuple[Any, ...]] = Counter()
    for frame in frames:
        for depth, packet in enumerate(frame.ip_layers()):
            udp = packet.udp
            if udp is not None and udp.dport not in TUNNEL_UDP_PORTS:
                counts[(depth, packet.version, packet.src, packet.dst, udp.sport, udp.dport)] += 1
    return counts


def test_no_datagram_is_split_that_its_sender_did_not_ask_to_split(segmented: Segmented) -> None:
    """Without --gso-type or --vnet-hdr, each UDP flow has as many datagrams in OUT as in IN, and no
    output record is an IP fragment that the input did not hold."""
    s = segmented
    rule = "no datagram split unasked"
    before, after = _datagrams(s.source_frames), _datagrams(s.out_frames)
    changed = [f"flow {_flow_text(key)} (depth {key[0]}): {before[key]} datagrams in, {after[key]} out"
               for key in sorted(set(before) | set(after), key=repr) if before[key] != after[key]]
    assert not changed, f"{s.where(rule)}: " + "; ".join(changed[:MISMATCHES_SHOWN])
    fragments = [record.number for record, frame in _written(s) if any(p.fragment for p in frame.ip_layers())]
    assert not fragments, (f"{s.where(rule)}: output frames {_frame_list(fragments)} are IP fragments "
                           "that no input record is")


# -- rule 6: no tunnel cut as its outer protocol ---------------------------------------------------


def _carries_tunnel(packet: IPPacket) -> bool:
    if packet.udp is not None:
        return packet.udp.dport in TUNNEL_UDP_PORTS
    return packet.protocol in TUNNEL_IP_PROTOCOLS


def _tunnel_problems(record: Record, frame: Frame) -> list[str]:
    """What is incomplete or inconsistent in the headers down to the innermost tunnelled packet."""
    layers = frame.ip_layers()
    carriers = [depth for depth, packet in enumerate(layers) if _carries_tunnel(packet)]
    if not carriers:
        return []
    problems = []
    if record.snapped:
        problems.append(f"stored {record.caplen} of {record.orig_len} bytes")
    container_end = record.caplen
    for depth, packet in enumerate(layers[:carriers[-1] + 2]):
        layer = f"IPv{packet.version} at depth {depth}"
        if packet.problem:
            problems.append(f"{layer}: {packet.problem}")
        if packet.fragment:
            problems.append(f"{layer} is a fragment")
        if packet.length_zero:
            problems.append(f"{layer} has length field 0")
        padded = depth == 0 and frame.linktype == LINKTYPE_ETHERNET and record.caplen <= ETH_MIN_FRAME
        if packet.end != container_end and not (padded and packet.end < container_end):
            problems.append(f"{layer}: IP length says {packet.end - packet.offset} bytes, "
                            f"{container_end - packet.offset} are there")
        if packet.udp is not None and packet.udp.length != packet.end - packet.udp.offset:
            problems.append(f"{layer}: UDP length {packet.udp.length}, IP payload {packet.end - packet.udp.offset}")
        if _carries_tunnel(packet) and not packet.tunnel_header_whole:
            problems.append(f"{layer}: {packet.tunnel or 'tunnel'} header incomplete")
        container_end = packet.end
    return problems


def test_no_tunnel_is_cut_as_its_outer_protocol(segmented: Segmented) -> None:
    """Every output record carrying VXLAN, VXLAN-GPE, Geneve, MPLS-in-UDP, IPIP, SIT/IPv6-in-IP or GRE
    is an input record byte-identical, or carries complete outer headers with consistent lengths."""
    s = segmented
    bad = [f"output frame {record.number}: {', '.join(problems)}"
           for record, frame in _written(s) if (problems := _tunnel_problems(record, frame))]
    assert not bad, f"{s.where('no tunnel cut as its outer protocol')}: " + "; ".join(bad[:MISMATCHES_SHOWN])


# -- rule 7: the engines agree ---------------------------------------------------------------------


def test_the_engines_agree(corpus: Corpus, capture_name: str) -> None:
    """--engine auto, numpy and scalar write byte-identical files and count the same outcomes."""
    runs = {engine: _segmented(corpus, capture_name, engine) for engine in ENGINES}
    reference = runs["scalar"]
    reference_bytes = corpus.workdir.joinpath("scalar", capture_name).read_bytes()
    for engine in ("auto", "numpy"):
        other = runs[engine]
        if corpus.workdir.joinpath(engine, capture_name).read_bytes() != reference_bytes:
            differ = [a.number for a, b in zip(reference.out.records, other.out.records, strict=False)
                      if a.key != b.key or a.timestamp != b.timestamp]
            pytest.fail(f"{capture_name}, rule 'the engines agree': --engine {engine} wrote another file than "
                        f"--engine scalar ({len(other.out.records)} records against {len(reference.out.records)}; "
                        f"records {_frame_list(differ) or 'none'} differ)")
        mine = (reference.run.summary or {}).get("outcomes")
        theirs = (other.run.summary or {}).get("outcomes")
        assert mine == theirs, (f"{capture_name}, rule 'the engines agree': outcomes with --engine scalar "
                                f"{mine}, with --engine {engine} {theirs}")


# -- rule 8: inspect reads every capture ----------------------------------------------------------

INSPECT_RECORD_COUNT_KEYS = ("records", "records_in", "packets")


def test_inspect_reads_every_capture(corpus: Corpus, capture_name: str) -> None:
    """`softgso inspect IN --json` exits 0 (3 for a broken file) and counts the records our decoder reads."""
    rule = "inspect reads every capture"
    source = corpus.capture(corpus.path(capture_name))
    run = corpus.inspect(capture_name)
    expected = EXIT_BROKEN_INPUT if source.broken else EXIT_OK
    assert run.crash is None and run.exit_code == expected, (
        f"{capture_name}, rule '{rule}': expected exit status {expected}; {run.describe()}")
    assert run.summary is not None, f"{capture_name}, rule '{rule}': no JSON on stdout; {run.describe()}"
    for key in INSPECT_RECORD_COUNT_KEYS:
        if key in run.summary:
            assert run.summary[key] == len(source.records), (
                f"{capture_name}, rule '{rule}': inspect's '{key}' is {run.summary[key]}, "
                f"the file holds {len(source.records)} records" + (" before its break" if source.broken else ""))
            break


def test_inspect_predicts_what_segment_reports(corpus: Corpus, capture_name: str) -> None:
    """inspect's prediction is segment's own account of the same records: the same outcome counts, the
    same count over the MTU and the same kinds of report (one decoder for what a record holds)."""
    rule = "inspect predicts what segment reports"
    inspected = corpus.inspect(capture_name)
    run, _ = corpus.segment(capture_name, "scalar")
    assert inspected.summary is not None and run.summary is not None, f"{capture_name}, rule '{rule}': no JSON"
    predicted = inspected.summary["segment"]
    assert predicted["outcomes"] == run.summary["outcomes"], (
        f"{capture_name}, rule '{rule}': inspect predicts {predicted['outcomes']}, segment did "
        f"{run.summary['outcomes']}")
    assert predicted["over_mtu_not_segmented"] == run.summary["over_mtu_not_segmented"], (
        f"{capture_name}, rule '{rule}': over the MTU, not segmented: inspect {predicted['over_mtu_not_segmented']}, "
        f"segment {run.summary['over_mtu_not_segmented']}")
    assert [(k["kind"], k["count"]) for k in predicted["report_kinds"]] == \
        [(k["kind"], k["count"]) for k in run.summary["report_kinds"]], f"{capture_name}, rule '{rule}'"
