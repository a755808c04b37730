"""A first day with softgso (issue 21): a reader that goes away ends a command quietly (141, as cat);
-F chooses OUT's format; gzip and zstd captures read as the plain ones; every command that writes a
capture has --json, -q and the same summary rules and exit statuses; every --help example runs as
written, from a folder that is not the checkout.

Expected bytes come from the plain run of the same capture (the format or the compression is all
that differs) and from Scapy reading what softgso wrote, never from a stored earlier output.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard
from cli_captures import mixed_capture, write_pcap, write_pcapng
from click.testing import Result
from conftest import run_cli

from softgso.bulk.stream import pcap_ethernet_header
from softgso.check.golden import BUILTIN_VECTORS
from softgso.cli.commands import main
from softgso.io import open_capture

scapy_all = pytest.importorskip("scapy.all")
from scapy.contrib.mpls import MPLS  # noqa: E402
from scapy.layers.inet import IP, TCP  # noqa: E402
from scapy.layers.l2 import ARP, Dot1Q, Ether  # noqa: E402

TIMEOUT = 120
SOFTGSO = [sys.executable, "-m", "softgso"]
CHECKOUT_VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "kernel" / "cases"
ACTION_COMMANDS = ["push-mpls", "pop-mpls", "set-mpls", "dec-ttl", "push-vlan", "pop-vlan"]
# each action command with options it needs (push-mpls: its label), for the rules they all share
ACTION_ARGS = {"push-mpls": ["--label", "100"], "pop-mpls": [], "set-mpls": ["--ttl", "9"], "dec-ttl": [],
               "push-vlan": ["--vid", "42"], "pop-vlan": []}


# --- captures ------------------------------------------------------------------------------------


def labelled(ttl: int = 64, size: int = 1200) -> bytes:
    """An MPLS-labelled TCP/IPv4 frame (Scapy-built)."""
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / MPLS(label=100, s=1, ttl=ttl)
                 / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=2000) / (b"p" * size))


def tagged(size: int = 1200) -> bytes:
    """An 802.1Q-tagged TCP/IPv4 frame (Scapy-built)."""
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan=7)
                 / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=2000) / (b"t" * size))


def plain(size: int = 1200) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2")
                 / TCP(sport=1000, dport=2000) / (b"u" * size))


def arp() -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.0.0.1", pdst="10.0.0.2"))


def compress(path: Path, kind: str, target: Path | None = None) -> Path:
    """``path`` compressed as gzip or zstd (into ``target``, else ``path`` + its suffix)."""
    data = path.read_bytes()
    target = target or path.with_name(path.name + (".gz" if kind == "gzip" else ".zst"))
    target.write_bytes(gzip.compress(data) if kind == "gzip" else zstandard.ZstdCompressor().compress(data))
    return target


def records(path: Path) -> list[tuple[int, bytes]]:
    """(timestamp ns, bytes) of every record, as softgso.io reads them."""
    with open_capture(path) as reader:
        return [(record.timestamp_ns, bytes(record.data)) for record in reader]


def scapy_frames(path: Path) -> list[bytes]:
    """Every record's bytes as Scapy (an independent decoder) reads them."""
    return [bytes(packet) for packet in scapy_all.rdpcap(str(path))]


def softgso(*args: str | Path, cwd: Path | None = None, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*SOFTGSO, *map(str, args)], capture_output=True, timeout=TIMEOUT, cwd=cwd, input=stdin)


@pytest.fixture
def big_capture(tmp_path: Path) -> Path:
    """A capture whose segmented output is far larger than a pipe's buffer."""
    return write_pcap(tmp_path / "big.pcap", mixed_capture() * 20)


# --- a reader that goes away ---------------------------------------------------------------------


def into_head(args: list[str | Path], cwd: Path) -> tuple[int, bytes, bytes]:
    """``softgso ARGS | head -c 100``: (softgso's status, its stderr, what head printed)."""
    writer = subprocess.Popen([*SOFTGSO, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
    head = subprocess.Popen(["head", "-c", "100"], stdin=writer.stdout, stdout=subprocess.PIPE)
    assert writer.stdout is not None and writer.stderr is not None
    writer.stdout.close()  # head holds the only read end: when it exits, the pipe has no reader
    shown, _ = head.communicate(timeout=TIMEOUT)
    errors = writer.stderr.read()
    return writer.wait(timeout=TIMEOUT), errors, shown


@pytest.mark.parametrize("options", [[], ["--engine", "scalar"], ["--jobs", "2"], ["-F", "pcapng"], ["--json"]],
                         ids=["auto", "scalar", "jobs", "pcapng", "json"])
def test_segment_into_a_reader_that_stops_ends_quietly_with_141(tmp_path: Path, big_capture: Path,
                                                                 options: list[str]) -> None:
    status, errors, shown = into_head(["segment", big_capture, "-", *options], tmp_path)
    assert (status, errors) == (141, b"")
    assert len(shown) == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.pcap"]  # nothing left behind


@pytest.mark.parametrize("command", ACTION_COMMANDS)
def test_every_action_command_into_a_reader_that_stops_ends_quietly_with_141(tmp_path: Path, command: str) -> None:
    capture = write_pcap(tmp_path / "in.pcap", [labelled(), tagged(), plain()] * 100)
    status, errors, _ = into_head([command, capture, "-", *ACTION_ARGS[command]], tmp_path)
    assert (status, errors) == (141, b"")


def test_a_compressed_input_into_a_reader_that_stops_ends_quietly_with_141(tmp_path: Path, big_capture: Path) -> None:
    status, errors, _ = into_head(["segment", compress(big_capture, "zstd"), "-"], tmp_path)
    assert (status, errors) == (141, b"")


@pytest.mark.parametrize("args", [["segment", "IN", "OUT"], ["segment", "IN", "OUT", "--json"], ["inspect", "IN"],
                                  ["inspect", "IN", "--json"], ["pop-vlan", "IN", "OUT"], ["profiles"],
                                  ["verify", "--builtin"]])
def test_a_summary_nobody_reads_ends_quietly_with_141_and_the_output_kept(tmp_path: Path, big_capture: Path,
                                                                          args: list[str]) -> None:
    """stdout's reader gone before anything is written (``softgso ... | true``): no message, no
    "Exception ignored" at exit, status 141; the capture is written and renamed into place all the same."""
    out = tmp_path / "out.pcap"
    argv = [big_capture if a == "IN" else out if a == "OUT" else a for a in args]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([*SOFTGSO, *map(str, argv)], stdout=write_end, stderr=subprocess.PIPE, timeout=TIMEOUT)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, b"")
    if "OUT" in args:
        reference = tmp_path / "reference.pcap"
        assert softgso(*[reference if a == out else a for a in argv], "-q").returncode == 0
        assert out.read_bytes() == reference.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# --- -F: OUT's format ----------------------------------------------------------------------------


def _engine_or_skip(result: Result) -> None:
    if result.exit_code == 2 and "not built" in result.stderr:
        pytest.skip(result.stderr.strip())  # --engine compiled where softgso.bulk._segment is not built


@pytest.mark.parametrize("options", [["--engine", "auto"], ["--engine", "compiled"], ["--engine", "numpy"],
                                     ["--engine", "scalar"], ["--jobs", "2"]],
                         ids=["auto", "compiled", "numpy", "scalar", "jobs"])
def test_F_pcapng_writes_the_records_of_the_default_output(tmp_path: Path, options: list[str]) -> None:
    capture = write_pcap(tmp_path / "in.pcap", mixed_capture() * 3)
    default = tmp_path / "default.pcap"
    assert run_cli("segment", capture, default, "-q").exit_code == 0
    out = tmp_path / "out.pcapng"
    result = run_cli("segment", capture, out, "-q", "-F", "pcapng", *options)
    _engine_or_skip(result)
    assert result.exit_code == 0, result.stderr
    with open_capture(out) as reader:
        assert reader.format == "pcapng"
    assert records(out) == records(default)
    assert scapy_frames(out) == [data for _, data in records(default)]


def test_F_pcap_from_pcapng_writes_the_same_records(tmp_path: Path) -> None:
    frames = mixed_capture()
    capture = write_pcapng(tmp_path / "in.pcapng", [(1, "eth0"), (1, "eth1")],
                           [(index % 2, frame, None) for index, frame in enumerate(frames)])
    default = tmp_path / "default.pcapng"
    assert run_cli("segment", capture, default, "-q").exit_code == 0
    out = tmp_path / "out.pcap"
    result = run_cli("segment", capture, out, "-q", "-F", "pcap")
    assert result.exit_code == 0, result.stderr
    with open_capture(out) as reader:
        assert (reader.format, reader.nanosecond) == ("pcap", True)  # the interfaces' resolution, kept
    assert records(out) == records(default)
    assert scapy_frames(out) == [data for _, data in records(default)]


def test_F_pcap_is_refused_when_the_interfaces_have_different_link_types(tmp_path: Path) -> None:
    frame = plain()
    cooked = bytes.fromhex("00040001000602000000000100000800") + frame[14:]  # Linux SLL, IPv4
    capture = write_pcapng(tmp_path / "in.pcapng", [(1, "eth0"), (113, "any")], [(0, frame, None), (1, cooked, None)])
    result = run_cli("segment", capture, tmp_path / "out.pcap", "-F", "pcap")
    assert result.exit_code == 2
    assert "-F pcap" in result.stderr and "different link types" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pcapng"]
    # pcapng (the default) holds both
    assert run_cli("segment", capture, tmp_path / "out.pcapng", "-q").exit_code == 0


@pytest.mark.parametrize("command", ACTION_COMMANDS)
@pytest.mark.parametrize("output_format", ["pcap", "pcapng"])
def test_F_on_every_action_command(tmp_path: Path, command: str, output_format: str) -> None:
    capture = write_pcap(tmp_path / "in.pcap", [labelled(), tagged(), plain()])
    default = tmp_path / "default.pcap"
    assert run_cli(command, capture, default, *ACTION_ARGS[command], "-q").exit_code == 0
    out = tmp_path / f"out.{output_format}"
    result = run_cli(command, capture, out, *ACTION_ARGS[command], "-q", "-F", output_format)
    assert result.exit_code == 0, result.stderr
    with open_capture(out) as reader:
        assert reader.format == output_format
    assert records(out) == records(default)
    assert scapy_frames(out) == [data for _, data in records(default)]


def test_F_in_a_plain_run_is_taken_without_click(tmp_path: Path) -> None:
    from softgso.cli.entry import parse_segment

    assert parse_segment(["segment", "a.pcap", "b.pcapng", "-F", "pcapng"])["output_format"] == "pcapng"
    capture = write_pcap(tmp_path / "in.pcap", mixed_capture())
    done = softgso("segment", capture, tmp_path / "out.pcapng", "-F", "pcapng", "-q")
    assert done.returncode == 0, done.stderr
    with open_capture(tmp_path / "out.pcapng") as reader:
        assert reader.format == "pcapng"


def test_F_names_the_outputs_of_many_captures_by_their_format(tmp_path: Path) -> None:
    folder = tmp_path / "captures"
    folder.mkdir()
    write_pcap(folder / "a.pcap", mixed_capture())
    compress(write_pcap(folder / "b.pcap", mixed_capture()), "gzip")
    (folder / "b.pcap").unlink()
    result = run_cli("segment", folder, tmp_path / "out", "-q", "-F", "pcapng")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.pcapng", "b.pcapng"]
    result = run_cli("segment", folder, tmp_path / "same", "-q")
    assert sorted(p.name for p in (tmp_path / "same").iterdir()) == ["a.pcap", "b.pcap"]  # written plain


# --- compressed captures -------------------------------------------------------------------------


COMPRESSIONS = ["gzip", "zstd"]


@pytest.mark.parametrize("kind", COMPRESSIONS)
@pytest.mark.parametrize("source", ["pcap", "pcapng"])
def test_a_compressed_capture_segments_as_the_plain_one(tmp_path: Path, kind: str, source: str) -> None:
    frames = mixed_capture() * 2
    if source == "pcap":
        capture = write_pcap(tmp_path / "in.pcap", frames)
    else:
        capture = write_pcapng(tmp_path / "in.pcapng", [(1, "eth0")], [(0, f, None) for f in frames])
    packed = compress(capture, kind)
    expected, out = tmp_path / "expected", tmp_path / "out"
    assert run_cli("segment", capture, expected, "-q").exit_code == 0
    result, payload = _json(run_cli("segment", packed, out, "--json"))
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == expected.read_bytes()
    assert payload["records_in"] == len(frames)


def _json(result: Result) -> tuple[Result, dict]:
    """A command's result and its --json summary (stdout)."""
    return result, json.loads(result.stdout)


def test_several_gzip_members_read_as_one_capture(tmp_path: Path) -> None:
    capture = write_pcap(tmp_path / "in.pcap", mixed_capture())
    data = capture.read_bytes()
    packed = tmp_path / "in.pcap.gz"
    packed.write_bytes(gzip.compress(data[:1000]) + gzip.compress(data[1000:]))  # as `cat a.gz b.gz`
    assert records(packed) == records(capture)


@pytest.mark.parametrize("kind", COMPRESSIONS)
def test_compression_is_told_by_the_magic_not_the_name(tmp_path: Path, kind: str) -> None:
    capture = write_pcap(tmp_path / "in.pcap", mixed_capture())
    packed = compress(capture, kind, tmp_path / "named-like-a.pcap")
    assert records(packed) == records(capture)
    plain_named_gz = tmp_path / "plain.pcap.gz"
    shutil.copy(capture, plain_named_gz)
    assert records(plain_named_gz) == records(capture)


@pytest.mark.parametrize("kind", COMPRESSIONS)
def test_a_compressed_capture_never_takes_the_bulk_streams(tmp_path: Path, kind: str) -> None:
    capture = write_pcap(tmp_path / "in.pcap", mixed_capture())
    assert pcap_ethernet_header(capture) is not None
    assert pcap_ethernet_header(compress(capture, kind)) is None


@pytest.mark.parametrize("how", ["gzip", "zstd", "-F pcapng"])
def test_the_summary_names_the_scalar_engine_when_no_bulk_code_ran(tmp_path: Path, how: str) -> None:
    """A compressed IN (read as a stream) or -F to the other format goes record by record through the
    reference path whatever --engine says: the summary names that engine, not the bulk one that never ran."""
    capture = write_pcap(tmp_path / "in.pcap", mixed_capture())
    source, options = (capture, ["-F", "pcapng"]) if how.startswith("-F") else (compress(capture, how), [])
    result, report = _json(run_cli("segment", source, tmp_path / "out", *options, "--json"))
    assert result.exit_code == 0
    assert report["engine"] == {"name": "scalar", "records_in_bulk": 0, "records_one_by_one": len(mixed_capture())}
    table = run_cli("segment", source, tmp_path / "out", *options).stdout
    assert "taken in bulk (scalar engine)" in table


@pytest.mark.parametrize("command", [["segment"], ["push-mpls", "--label", "100"], ["coalesce"]])
@pytest.mark.parametrize("name", ["out.pcap.gz", "out.pcapng.zst", "OUT.PCAP.GZ"])
def test_out_named_compressed_is_refused_for_a_plain_capture_would_be_written(tmp_path: Path, command: list[str],
                                                                               name: str) -> None:
    """softgso writes captures plain: under a .gz or .zst name gzip -d and zstd -d would refuse the file.
    A usage error naming the way that works (OUT - through the compressor), and nothing written."""
    capture = write_pcap(tmp_path / "in.pcap", mixed_capture())
    result = run_cli(command[0], capture, tmp_path / name, *command[1:], "-q")
    assert result.exit_code == 2 and "writes captures uncompressed" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pcap"]


@pytest.mark.parametrize("kind", COMPRESSIONS)
def test_a_compressed_capture_on_standard_input(tmp_path: Path, kind: str) -> None:
    capture = write_pcap(tmp_path / "in.pcap", mixed_capture())
    done = softgso("segment", "-", "-", "-q", stdin=compress(capture, kind).read_bytes())
    expected = tmp_path / "expected.pcap"
    assert run_cli("segment", capture, expected, "-q").exit_code == 0
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected.read_bytes()


def test_a_gzip_capture_cut_short_is_an_input_error_after_the_records_before(tmp_path: Path) -> None:
    capture = write_pcap(tmp_path / "in.pcap", mixed_capture() * 4)
    packed = compress(capture, "gzip")
    packed.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    out = tmp_path / "out.pcap"
    result = run_cli("segment", packed, out)
    assert result.exit_code == 3
    assert "gzip" in result.stderr
    assert records(out)  # what came before the break is written


@pytest.mark.parametrize("kind", COMPRESSIONS)
def test_inspect_and_diff_read_compressed_captures(tmp_path: Path, kind: str) -> None:
    capture = write_pcap(tmp_path / "in.pcap", mixed_capture())
    packed = compress(capture, kind)
    _, plain_report = _json(run_cli("inspect", capture, "--json"))
    result, packed_report = _json(run_cli("inspect", packed, "--json"))
    assert result.exit_code == 0
    plain_report.pop("file"), packed_report.pop("file")
    assert packed_report == plain_report
    assert run_cli("diff", capture, packed).exit_code == 0


# --- every file command the same -----------------------------------------------------------------


def test_an_action_command_s_json_summary(tmp_path: Path) -> None:
    capture = write_pcap(tmp_path / "in.pcap", [labelled(64), labelled(1), arp(), labelled(9)])
    out = tmp_path / "out.pcap"
    result, payload = _json(run_cli("dec-ttl", capture, out, "--json"))
    assert result.exit_code == 0, result.stderr
    assert payload["outcomes"] == {"changed": 2, "unchanged": 0, "refused": 2}
    assert sum(payload["outcomes"].values()) == payload["records_in"] == 4
    assert payload["records_out"] == 4
    assert payload["bytes_in"] == sum(len(data) for _, data in records(capture))
    assert payload["bytes_out"] == sum(len(data) for _, data in records(out))
    assert [report["frame"] for report in payload["reports"]] == [2, 3]  # numbered from 1, as tshark
    assert "TTL 1" in payload["reports"][0]["reason"]
    assert (payload["output"], payload["atomic"], payload["output_written"]) == (str(out), True, None)
    assert result.stderr == ""  # under --json, the reports are in the JSON
    assert MPLS in scapy_all.Ether(records(out)[0][1]) and scapy_all.Ether(records(out)[0][1])[MPLS].ttl == 63


def test_unchanged_records_are_counted_as_such(tmp_path: Path) -> None:
    capture = write_pcap(tmp_path / "in.pcap", [tagged(), plain(), tagged()])
    _, payload = _json(run_cli("pop-vlan", capture, tmp_path / "out.pcap", "--json"))
    assert payload["outcomes"] == {"changed": 2, "unchanged": 1, "refused": 0}
    assert payload["reports"] == []


@pytest.mark.parametrize("command", ["segment", *ACTION_COMMANDS])
def test_every_file_command_has_json_and_q_with_the_summary_on_stdout(tmp_path: Path, command: str) -> None:
    capture = write_pcap(tmp_path / "in.pcap", [labelled(), tagged(), plain()])
    extra = ACTION_ARGS.get(command, [])
    out = tmp_path / "out.pcap"
    result, payload = _json(run_cli(command, capture, out, *extra, "--json"))
    assert result.exit_code == 0, result.stderr
    for key in ("records_in", "records_out", "bytes_in", "bytes_out", "outcomes", "reports", "output", "atomic",
                "output_written"):
        assert key in payload, key
    assert sum(payload["outcomes"].values()) == payload["records_in"] == 3
    text = run_cli(command, capture, out, *extra)
    assert text.exit_code == 0 and str(out) in text.stdout
    quiet = run_cli(command, capture, out, *extra, "-q")
    assert (quiet.exit_code, quiet.stdout) == (0, "")


@pytest.mark.parametrize("command", ["segment", *ACTION_COMMANDS])
def test_with_out_dash_the_summary_goes_to_stderr(tmp_path: Path, command: str) -> None:
    capture = write_pcap(tmp_path / "in.pcap", [labelled(), tagged(), plain()])
    done = softgso(command, capture, "-", *ACTION_ARGS.get(command, []), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr)["records_in"] == 3
    assert done.stdout[:4] == b"\xd4\xc3\xb2\xa1"  # stdout holds the capture alone
    text = softgso(command, capture, "-", *ACTION_ARGS.get(command, []))
    assert text.returncode == 0 and b" -> -" in text.stderr


@pytest.mark.parametrize("command", ["segment", *ACTION_COMMANDS])
def test_every_file_command_has_the_same_exit_statuses(tmp_path: Path, command: str) -> None:
    extra = ACTION_ARGS.get(command, [])
    good = write_pcap(tmp_path / "in.pcap", [labelled(), tagged(), plain()])
    assert run_cli(command, good, tmp_path / "out.pcap", *extra, "-q").exit_code == 0
    # 1: something reported, under --strict (a record of a link type no command reads as a packet)
    odd = write_pcap(tmp_path / "ppp.pcap", [b"\xff\x03\x00\x21" + plain()[14:]], linktype=9)
    assert run_cli(command, odd, tmp_path / "out.pcap", *extra, "-q").exit_code == 0
    assert run_cli(command, odd, tmp_path / "out.pcap", *extra, "-q", "--strict").exit_code == 1
    # 2: usage (OUT a directory); 3: a broken input, what came before it written
    assert run_cli(command, good, tmp_path, *extra, "-q").exit_code == 2
    broken = tmp_path / "broken.pcap"
    broken.write_bytes(good.read_bytes()[:-10])
    assert run_cli(command, broken, tmp_path / "out.pcap", *extra, "-q").exit_code == 3
    assert len(records(tmp_path / "out.pcap")) >= 2


# --- --help: ranges shown, examples that run -----------------------------------------------------


@pytest.mark.parametrize("command", ["segment", "inspect"])
def test_the_mtu_range_is_shown_and_enforced(command: str) -> None:
    assert "68<=x<=65535" in run_cli(command, "--help").stdout
    args = ["segment", "a.pcap", "b.pcap"] if command == "segment" else ["inspect", "a.pcap"]
    assert run_cli(*args, "--mtu", "67").exit_code == 2
    assert run_cli(*args, "--mtu", "65536").exit_code == 2


def test_the_builtin_vectors_are_the_checkout_s_own() -> None:
    shipped = sorted(p for p in BUILTIN_VECTORS.rglob("*") if p.is_file())
    assert len({p.parent for p in shipped}) >= 10
    if not CHECKOUT_VECTORS.is_dir():
        pytest.skip("no tests/vectors/kernel here")
    for path in shipped:
        assert path.read_bytes() == (CHECKOUT_VECTORS / path.relative_to(BUILTIN_VECTORS)).read_bytes(), path


def help_examples() -> list[tuple[str, str]]:
    """(command, example line) for every line of every --help's Example(s) section."""
    found = []
    for name in ["", *sorted(main.commands)]:
        text = run_cli(*([name] if name else []), "--help").stdout
        lines = iter(text.splitlines())
        for line in lines:
            if re.fullmatch(r"\s*Examples?:\s*", line):
                for example in lines:
                    if not example.strip():
                        break
                    found.append((name or "softgso", example.strip()))
    return found


HELP_EXAMPLES = help_examples()
CAPTURE_NAME = re.compile(r".*\.(pcap|pcapng|cap)(\.gz|\.zst)?$", re.IGNORECASE)
LARGE_BENCH = 64 << 20


def _runs_for_minutes(command: str, line: str) -> bool:
    """The live datapath forwards until Ctrl-C (or measures for minutes) as root; a bench at the issue's size
    takes minutes. These examples are parsed, not run: tests/datapath runs the datapath itself."""
    if line.startswith("sudo ") or command == "datapath":
        return True
    size = re.search(r"--size\s+(\S+)", line)
    from softgso.cli.bench import parse_size

    return command == "bench" and size is not None and parse_size(size.group(1)) >= LARGE_BENCH


def _example_param(command: str, line: str) -> object:
    # a bench measurement takes tens of seconds on a shared machine
    marks = [pytest.mark.slow] if command == "bench" else []
    return pytest.param(line, marks=marks, id=f"{command}: {line}")


def make_capture(path: Path) -> None:
    """The capture an example names as IN: labelled or tagged if its name says so, in the format
    and the compression its suffixes say."""
    name = path.name.lower()
    kind = "gzip" if name.endswith(".gz") else "zstd" if name.endswith(".zst") else None
    inner = path.with_name(path.name.rsplit(".", 1)[0]) if kind else path
    frames = ([labelled(), labelled(ttl=9)] if "label" in name else [tagged(), tagged()] if "tag" in name
              else mixed_capture())
    path.parent.mkdir(parents=True, exist_ok=True)
    if inner.name.lower().endswith(".pcapng"):
        write_pcapng(inner, [(1, "eth0")], [(0, frame, None) for frame in frames])
    else:
        write_pcap(inner, frames)
    if kind:
        compress(inner, kind, path)
        inner.unlink()


def make_inputs(line: str, folder: Path) -> None:
    """Every input a softgso command of the example line reads, made in ``folder`` (as click parses the line)."""
    for part in line.split("|"):
        words = shlex.split(part, comments=True)
        if len(words) < 2 or words[0] != "softgso" or words[1] not in main.commands:
            continue
        context = main.commands[words[1]].make_context(words[1], words[2:], resilient_parsing=True)
        for key in ("in_path", "a_path", "b_path"):
            value = context.params.get(key)
            if value is None or str(value) == "-":
                continue
            text = str(value)
            if CAPTURE_NAME.fullmatch(Path(text).name) and not any(c in text for c in "*?["):
                if not (folder / text).exists():
                    make_capture(folder / text)
            else:  # a directory or a glob of captures
                directory = folder / (text.split("*")[0] if "*" in text else text)
                for name in ("a.pcap", "b.pcapng", "c.pcapng.gz"):
                    make_capture(directory / name)


@pytest.mark.parametrize("line", [pytest.param(line, id=f"{command}: {line}") for command, line in HELP_EXAMPLES
                                  if _runs_for_minutes(command, line)])
def test_every_long_running_help_example_parses_as_written(line: str) -> None:
    """Every softgso command of the line: click accepts its options and values as the command would."""
    for part in line.split("|"):
        words = shlex.split(part.removeprefix("sudo ").strip(), comments=True)
        assert words[0] == "softgso" and words[1] in main.commands, part
        main.commands[words[1]].make_context(words[1], words[2:])


@pytest.mark.parametrize("line", [_example_param(command, line) for command, line in HELP_EXAMPLES
                                  if not _runs_for_minutes(command, line)])
def test_every_help_example_runs_as_written(tmp_path: Path, line: str) -> None:
    """Run in an empty folder (not the checkout) with the installed ``softgso`` first on PATH;
    every program of the line must exit 0 (a softgso whose reader stops early: 141)."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "softgso").exists():
        pytest.skip("softgso is not installed beside this Python")
    programs = [shlex.split(part)[0] for part in line.split("|")]
    for program in programs:
        if shutil.which(program, path=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}") is None:
            pytest.skip(f"{program} is not installed")
    if "--plot" in line:
        pytest.importorskip("matplotlib")
    make_inputs(line, tmp_path)
    environment = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    script = f'{line}\necho "${{PIPESTATUS[*]}}" > .status\n'
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=environment, capture_output=True,
                          timeout=600)
    statuses = [int(s) for s in (tmp_path / ".status").read_text().split()]
    for position, (program, status) in enumerate(zip(programs, statuses, strict=True)):
        allowed = {0, 141} if program == "softgso" and position < len(programs) - 1 else {0}
        assert status in allowed, f"{program} exited {status}: {done.stderr.decode(errors='replace')[-2000:]}"
