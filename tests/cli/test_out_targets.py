"""Outputs never clobber: what OUT is decides how every command that writes a file writes it.

The rule (softgso.io.outfile.output_target): a regular file or a name that does not exist yet is
written atomically (a temporary file beside it, renamed onto it); a symbolic link is resolved and
its target treated by the same rule (the link stays a link); a character device, a FIFO or a
socket is written straight through as it is; a directory or a block device is refused (exit 2); a
folder that does not exist is an output error (exit 3) naming the user's path, never the temporary;
a regular file that is a capture the command reads, under any name, is refused (exit 2).
Device nodes are made here, in tmp_path, and nowhere else.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import run_cli

from softgso.io import outfile

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "mpls_tcp_super.pcap"

ACTION_COMMANDS = {
    "pop-mpls": ["pop-mpls"],
    "set-mpls": ["set-mpls", "--ttl", "9"],
    "dec-ttl": ["dec-ttl"],
    "push-vlan": ["push-vlan", "--vid", "42"],
    "pop-vlan": ["pop-vlan"],
}


def segment_bulk(out: Path) -> list[str | Path]:
    return ["segment", SAMPLE, out, "-q"]


def segment_scalar(out: Path) -> list[str | Path]:
    return ["segment", SAMPLE, out, "-q", "--engine", "scalar"]


def push_mpls(out: Path) -> list[str | Path]:
    return ["push-mpls", SAMPLE, out, "--label", "100", "-q"]


def action(name: str) -> Callable[[Path], list[str | Path]]:
    head, *options = ACTION_COMMANDS[name]
    return lambda out: [head, SAMPLE, out, *options, "-q"]


CAPTURE_COMMANDS: dict[str, Callable[[Path], list[str | Path]]] = {
    "segment": segment_bulk, "segment-scalar": segment_scalar, "push-mpls": push_mpls,
    **{name: action(name) for name in ACTION_COMMANDS},
}


def inspect_plot(out: Path) -> list[str | Path]:
    return ["inspect", SAMPLE, "--plot", out, "-q"]


def has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


# every command that writes a file; the plot only where matplotlib is installed
WRITERS = [pytest.param(command, id=name) for name, command in CAPTURE_COMMANDS.items()] + [
    pytest.param(inspect_plot, id="inspect-plot",
                 marks=pytest.mark.skipif(not has_matplotlib(), reason="matplotlib is not installed")),
]
CAPTURE_WRITERS = [pytest.param(command, id=name) for name, command in CAPTURE_COMMANDS.items()]


def pcap_records(data: bytes) -> int:
    """Records in a whole classic pcap, read field by field; fails on a capture cut short."""
    magic = data[:4]
    orders = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}
    assert magic in orders, f"not a pcap: {magic.hex()}"
    order, offset, count = orders[magic], 24, 0
    while offset < len(data):
        assert offset + 16 <= len(data), "record header cut short"
        (caplen,) = struct.unpack_from(order + "I", data, offset + 8)
        offset += 16 + caplen
        count += 1
    assert offset == len(data), "record data cut short"
    return count


def is_whole_output(data: bytes, command: Callable[[Path], list[str | Path]]) -> bool:
    if command is inspect_plot:
        return data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")
    return pcap_records(data) > 0


def suffix(command: Callable[[Path], list[str | Path]]) -> str:
    """The suffix an output of ``command`` is named with (a plot's names its image format)."""
    return ".png" if command is inspect_plot else ".pcap"


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def expected_bytes(command: Callable[[Path], list[str | Path]], directory: Path) -> bytes:
    """What the command writes to a regular file: a device, a FIFO, a link's target gets the same."""
    reference = directory / f"reference{suffix(command)}"
    result = run_cli(*command(reference))
    assert result.exit_code == 0, result.stderr
    data = reference.read_bytes()
    reference.unlink()
    return data


def make_device(path: Path, kind: int, major: int, minor: int) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    try:
        os.mknod(path, kind | 0o666, os.makedev(major, minor))
    except PermissionError:
        pytest.skip("device nodes cannot be made here (a container without CAP_MKNOD)")


# --- what is written where -----------------------------------------------------------------------


@pytest.mark.parametrize("command", WRITERS)
def test_a_character_device_stays_a_device_and_is_written_through(
        tmp_path: Path, command: Callable[[Path], list[str | Path]]) -> None:
    null = tmp_path / "fakenull"
    make_device(null, stat.S_IFCHR, 1, 3)  # /dev/null's numbers: what is written there is gone
    try:
        with open(null, "wb"):
            pass
    except PermissionError:
        pytest.skip("device nodes cannot be opened here (a nodev mount)")
    result = run_cli(*command(null))
    assert result.exit_code == 0, result.stderr
    assert stat.S_ISCHR(os.lstat(null).st_mode) and os.lstat(null).st_rdev == os.makedev(1, 3)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("command", WRITERS)
def test_a_fifo_stays_a_fifo_and_its_reader_gets_the_whole_output(
        tmp_path: Path, command: Callable[[Path], list[str | Path]]) -> None:
    expected = expected_bytes(command, tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as pipe:  # waits for the writer, reads to its end
            received.append(pipe.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        result = run_cli(*command(fifo))
    finally:
        reader.join(timeout=30)
        if reader.is_alive():  # the command never opened the FIFO: release the reader
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            reader.join(timeout=5)
    assert result.exit_code == 0, result.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert received and is_whole_output(received[0], command)
    if command is not inspect_plot:
        assert received[0] == expected
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("command", WRITERS)
def test_a_link_to_a_file_stays_a_link_and_its_target_gets_the_output(
        tmp_path: Path, command: Callable[[Path], list[str | Path]]) -> None:
    expected = expected_bytes(command, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / f"result{suffix(command)}"
    target.write_bytes(b"previous result")
    link = tmp_path / f"link{suffix(command)}"
    link.symlink_to(target)
    result = run_cli(*command(link))
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    data = target.read_bytes()
    assert is_whole_output(data, command)
    if command is not inspect_plot:
        assert data == expected
    assert leftovers(tmp_path) == [] and leftovers(elsewhere) == []


@pytest.mark.parametrize("command", WRITERS)
def test_a_dangling_link_gets_its_target_made(tmp_path: Path, command: Callable[[Path], list[str | Path]]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / f"new{suffix(command)}"
    link = tmp_path / f"link{suffix(command)}"
    link.symlink_to(target)
    result = run_cli(*command(link))
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert is_whole_output(target.read_bytes(), command)
    assert leftovers(tmp_path) == [] and leftovers(elsewhere) == []


@pytest.mark.parametrize("command", CAPTURE_WRITERS)
def test_a_socket_is_connected_to_and_written_through(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: Callable[[Path], list[str | Path]]) -> None:
    expected = expected_bytes(command, tmp_path)
    monkeypatch.chdir(tmp_path)  # a short relative name: socket paths are limited to 108 bytes
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("sock")
    server.listen(1)
    server.settimeout(30)
    received = bytearray()

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            while chunk := connection.recv(1 << 16):
                received.extend(chunk)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        result = run_cli(*command(Path("sock")))
        thread.join(timeout=30)
    finally:
        server.close()
    assert result.exit_code == 0, result.stderr
    assert stat.S_ISSOCK(os.lstat("sock").st_mode) and bytes(received) == expected


# --- what is refused -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", WRITERS)
def test_a_directory_out_is_a_usage_error(tmp_path: Path, command: Callable[[Path], list[str | Path]]) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    result = run_cli(*command(folder))
    assert result.exit_code == 2, result.stderr
    assert "directory" in result.stderr
    assert list(folder.iterdir()) == [] and leftovers(tmp_path) == []


@pytest.mark.parametrize("command", WRITERS)
def test_a_block_device_out_is_refused(tmp_path: Path, command: Callable[[Path], list[str | Path]]) -> None:
    disk = tmp_path / "disk"
    # major 240: reserved for local experimental use, so no disk answers there even if a bug opened it
    make_device(disk, stat.S_IFBLK, 240, 0)
    result = run_cli(*command(disk))
    assert result.exit_code == 2, result.stderr
    assert "block device" in result.stderr
    assert stat.S_ISBLK(os.lstat(disk).st_mode) and leftovers(tmp_path) == []


@pytest.mark.parametrize("command", WRITERS)
def test_a_missing_folder_is_an_output_error_naming_the_user_s_path(
        tmp_path: Path, command: Callable[[Path], list[str | Path]]) -> None:
    out = tmp_path / "nodir" / f"o{suffix(command)}"
    result = run_cli(*command(out))
    assert result.exit_code == 3, result.stderr
    assert f"cannot write {out}: No such file or directory (folder {out.parent} does not exist)" in result.stderr
    assert ".tmp" not in result.stderr
    assert not out.parent.exists()


def test_a_folder_without_write_permission_is_named_in_the_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # root may write anywhere: the refusal is the file system's answer, played here
    def refuse(directory: str, name: str) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied", os.path.join(directory, f".{name}.0badc0de.tmp"))

    monkeypatch.setattr(outfile, "make_temporary", refuse)
    out = tmp_path / "o.pcap"
    result = run_cli(*segment_bulk(out))
    assert result.exit_code == 3
    assert (f"cannot write {out}: Permission denied (no permission to create files in folder {tmp_path})"
            in result.stderr)
    assert ".tmp" not in result.stderr


@pytest.mark.skipif(not has_matplotlib(), reason="matplotlib is not installed")
def test_a_plot_is_not_written_where_the_report_goes(tmp_path: Path) -> None:
    done = run_softgso("inspect", SAMPLE, "--plot", "/dev/stdout", "--json")  # stdout: a pipe here
    assert done.returncode == 2 and "standard output carries the report" in done.stderr
    assert done.stdout == ""  # refused before the work: no report, no image


# --- the plain run (softgso.cli.entry) makes nothing beside a device ---------------------------------


def run_softgso(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``softgso ARGS`` as a user runs it: a process through the entry point (its head start included)."""
    code = "import sys; from softgso.cli.entry import main; sys.argv[0] = 'softgso'; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_the_plain_run_writes_through_a_device_and_makes_no_temporary_beside_it(tmp_path: Path) -> None:
    null = tmp_path / "fakenull"
    make_device(null, stat.S_IFCHR, 1, 3)
    done = run_softgso("segment", SAMPLE, null, "-q")
    assert done.returncode == 0, done.stderr
    assert stat.S_ISCHR(os.lstat(null).st_mode) and sorted(os.listdir(tmp_path)) == ["fakenull"]


def test_the_plain_run_names_the_user_s_path_for_a_missing_folder(tmp_path: Path) -> None:
    done = run_softgso("segment", SAMPLE, tmp_path / "nodir" / "o.pcap", "-q")
    assert done.returncode == 3
    assert f"cannot write {tmp_path / 'nodir' / 'o.pcap'}" in done.stderr and ".tmp" not in done.stderr


def test_the_head_start_reserves_nothing_for_an_output_written_through(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert outfile.reserve(str(fifo), 1 << 20) is None
    assert sorted(os.listdir(tmp_path)) == ["pipe"]


# --- many captures -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["o.pcap", "o.pcapng", "o.cap", "o.pcap.gz", "o.zst"])
def test_many_captures_refuse_an_out_named_like_a_capture_file(tmp_path: Path, name: str) -> None:
    captures = tmp_path / "captures"
    captures.mkdir()
    (captures / "a.pcap").write_bytes(SAMPLE.read_bytes())
    for source in (captures, captures / "*.pcap"):
        result = run_cli("segment", source, tmp_path / name, "-q")
        assert result.exit_code == 2
        assert "give a directory as OUT" in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["captures"] and os.listdir(captures) == ["a.pcap"]


def test_many_captures_go_into_a_directory_out(tmp_path: Path) -> None:
    captures = tmp_path / "captures"
    captures.mkdir()
    (captures / "a.pcap").write_bytes(SAMPLE.read_bytes())
    result = run_cli("segment", captures, tmp_path / "segmented", "-q")
    assert result.exit_code == 0, result.stderr
    assert pcap_records((tmp_path / "segmented" / "a.pcap").read_bytes()) > 0


def whole_records(data: bytes) -> int:
    """How many records of a little-endian microsecond pcap lie whole in ``data`` (the rest cut short)."""
    offset, count = 24, 0
    while offset + 16 <= len(data):
        (caplen,) = struct.unpack_from("<I", data, offset + 8)
        if offset + 16 + caplen > len(data):
            break
        offset += 16 + caplen
        count += 1
    return count


@pytest.mark.parametrize("as_json", [False, True])
def test_many_captures_say_which_one_is_broken_and_exit_3(tmp_path: Path, as_json: bool) -> None:
    """One capture of many cut short in a record is that capture's input error, as it is alone: its
    records before the break are written, the break is named, and the run ends with exit status 3."""
    captures = tmp_path / "captures"
    captures.mkdir()
    (captures / "a.pcap").write_bytes(SAMPLE.read_bytes())
    cut = SAMPLE.read_bytes()[:30000]
    (captures / "b.pcap").write_bytes(cut)
    broken_frame = whole_records(cut) + 1
    result = run_cli("segment", captures, tmp_path / "segmented", *(["--json"] if as_json else []))
    assert result.exit_code == 3, result.stderr
    assert pcap_records((tmp_path / "segmented" / "a.pcap").read_bytes()) > 0
    assert pcap_records((tmp_path / "segmented" / "b.pcap").read_bytes()) > 0  # the records before the break
    if as_json:
        (broken,) = [c for c in json.loads(result.stdout)["captures"] if c["input_errors"]]
        assert broken["input"].endswith("b.pcap") and broken["input_errors"][0]["frame"] == broken_frame
    else:
        assert f"frame {broken_frame}: input broken" in result.stderr and "b.pcap" in result.stderr


def test_many_captures_say_each_one_as_it_is_done(tmp_path: Path) -> None:
    """Each capture's line comes once it is segmented, not all at the end: a capture that cannot be read
    at all stops the run (exit 3), and the captures done before it have been said."""
    captures = tmp_path / "captures"
    captures.mkdir()
    (captures / "a.pcap").write_bytes(SAMPLE.read_bytes())
    (captures / "b.pcap").write_bytes(b"not a capture at all")
    result = run_cli("segment", captures, tmp_path / "segmented")
    assert result.exit_code == 3 and "b.pcap" in result.stderr
    assert f"{captures / 'a.pcap'} -> {tmp_path / 'segmented' / 'a.pcap'}: 9 records in" in result.stdout
    assert pcap_records((tmp_path / "segmented" / "a.pcap").read_bytes()) > 0


# --- OUT is never a capture the command reads -----------------------------------------------------

IN_PLACE_COMMANDS: dict[str, Callable[[Path, Path], list[str | Path]]] = {
    "segment": lambda source, out: ["segment", source, out, "-q"],
    "segment-scalar": lambda source, out: ["segment", source, out, "-q", "--engine", "scalar"],
    "push-mpls": lambda source, out: ["push-mpls", source, out, "--label", "100", "-q"],
    "pop-vlan": lambda source, out: ["pop-vlan", source, out, "-q"],
    "coalesce": lambda source, out: ["coalesce", source, out, "-q"],
    "diff --map": lambda source, out: ["diff", source, SAMPLE, "--map", out],
}


def same_file_spellings(source: Path) -> list[Path]:
    """The capture's own name, a symbolic link to it and a hard link to it."""
    link, hard = source.with_name("link.pcap"), source.with_name("hard.pcap")
    link.symlink_to(source.name)
    os.link(source, hard)
    return [source, link, hard]


@pytest.mark.parametrize("command", IN_PLACE_COMMANDS)
def test_out_that_is_in_is_refused_and_in_is_left_as_it_was(tmp_path: Path, command: str) -> None:
    """OUT naming the capture being read (as is, through a link, by a hard link) is a usage error:
    the output's rename would replace the only copy of the capture with what was made of it."""
    source = tmp_path / "capture.pcap"
    source.write_bytes(SAMPLE.read_bytes())
    for out in same_file_spellings(source):
        result = run_cli(*IN_PLACE_COMMANDS[command](source, out))
        assert result.exit_code == 2, (out, result.stderr)
        assert "it is the capture being read" in result.stderr
        assert source.read_bytes() == SAMPLE.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["capture.pcap", "hard.pcap", "link.pcap"]  # no temporary left


def test_the_plain_run_refuses_out_that_is_in(tmp_path: Path) -> None:
    source = tmp_path / "capture.pcap"
    source.write_bytes(SAMPLE.read_bytes())
    done = run_softgso("segment", source, tmp_path / "." / "capture.pcap")
    assert done.returncode == 2 and "it is the capture being read" in done.stderr
    assert source.read_bytes() == SAMPLE.read_bytes() and os.listdir(tmp_path) == ["capture.pcap"]


def test_out_that_standard_input_was_redirected_from_is_refused(tmp_path: Path) -> None:
    """segment - OUT < OUT: IN is standard input, and standard input is that file."""
    source = tmp_path / "capture.pcap"
    source.write_bytes(SAMPLE.read_bytes())
    code = "import sys; from softgso.cli.entry import main; sys.argv[0] = 'softgso'; main()"
    with source.open("rb") as stdin:
        done = subprocess.run([sys.executable, "-c", code, "segment", "-", str(source), "-q"], stdin=stdin,
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "it is the capture being read (standard input)" in done.stderr
    assert source.read_bytes() == SAMPLE.read_bytes() and os.listdir(tmp_path) == ["capture.pcap"]
    with SAMPLE.open("rb") as stdin:  # another file on standard input: written as asked
        done = subprocess.run([sys.executable, "-c", code, "segment", "-", str(source), "-q"], stdin=stdin,
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_many_captures_refuse_out_that_is_their_own_folder(tmp_path: Path) -> None:
    captures = tmp_path / "captures"
    captures.mkdir()
    (captures / "a.pcap").write_bytes(SAMPLE.read_bytes())
    result = run_cli("segment", captures, captures, "-q")
    assert result.exit_code == 2 and "it is the capture being read" in result.stderr
    assert os.listdir(captures) == ["a.pcap"] and (captures / "a.pcap").read_bytes() == SAMPLE.read_bytes()


def test_a_new_name_a_device_and_another_file_are_no_input(tmp_path: Path) -> None:
    source = tmp_path / "capture.pcap"
    source.write_bytes(SAMPLE.read_bytes())
    other = tmp_path / "other.pcap"
    other.write_bytes(SAMPLE.read_bytes())
    for out in (tmp_path / "new.pcap", other, Path(os.devnull), Path("-")):
        assert outfile.refuse_an_input(str(out), str(source), "-") is None


@pytest.mark.parametrize("option", ["--map", "--plot"])
def test_a_map_or_plot_to_dev_stdout_redirected_to_a_file_is_refused(tmp_path: Path, option: str) -> None:
    """With standard output redirected to a file, /dev/stdout names that file: the map or figure would be
    renamed over it and the report written there lost. Refused (exit 2) before the work, the file untouched."""
    if option == "--plot":
        pytest.importorskip("matplotlib")
    args = (["diff", SAMPLE, SAMPLE, "--map", "/dev/stdout"] if option == "--map"
            else ["inspect", SAMPLE, "--plot", "/dev/stdout"])
    report = tmp_path / "report.txt"
    code = "import sys; from softgso.cli.entry import main; sys.argv[0] = 'softgso'; main()"
    with report.open("wb") as stdout:
        done = subprocess.run([sys.executable, "-c", code, *map(str, args)], stdout=stdout, stderr=subprocess.PIPE,
                              timeout=120)
    assert done.returncode == 2 and b"standard output carries the report" in done.stderr
    assert report.read_bytes() == b"" and sorted(os.listdir(tmp_path)) == ["report.txt"]
