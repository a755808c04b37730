"""segment's summary table and progress bar: drawn without rich unless there is something to watch.

The table is held to rich's own rendering of the same table (rich as the independent renderer);
a plain segment run is held to importing neither rich nor click; the progress bar to appearing
only once the work has run PROGRESS_DELAY seconds.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from softgso.cli import runner
from softgso.cli.texttable import ASCII, HEAVY_HEAD, print_table, render_table

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "mpls_tcp_super.pcap"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# cell text as the summary has it: words, numbers, separators, leading indentation. No ":" or "[":
# rich reads those as emoji codes and markup in a plain string (":a:" is drawn as an emoji), where
# our table prints text as it is (an output path is never rewritten)
words = st.text(st.sampled_from("abcxyzABC019,./-_ "), max_size=24).map(str.rstrip)
justifies = st.sampled_from(["left", "right"])


def rich_rendering(title: str, columns: list[tuple[str, str]], rows: list[list[str]], stream: io.TextIOBase,
                   terminal: bool = False) -> None:
    table = Table(title=title, show_header=True, header_style="bold")
    for header, justify in columns:
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*row)
    Console(file=stream, width=10_000, highlight=False, force_terminal=terminal).print(table)


@st.composite
def tables(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]], list[list[str]]]:
    columns = draw(st.lists(st.tuples(words, justifies), min_size=1, max_size=4))
    rows = draw(st.lists(st.lists(words, min_size=len(columns), max_size=len(columns)), max_size=6))
    title = draw(words.filter(bool))
    return title, columns, rows


def table_width(title: str, columns: list[tuple[str, str]], rows: list[list[str]]) -> int:
    return sum(max([len(h)] + [len(r[i]) for r in rows]) + 3 for i, (h, _) in enumerate(columns)) + 1


@settings(max_examples=150, deadline=None)
@given(tables())
def test_the_table_is_riches_table_where_the_title_fits(table: tuple[str, list[tuple[str, str]], list[list[str]]]) -> None:
    title, columns, rows = table
    stream = io.StringIO()
    rich_rendering(title, columns, rows, stream)
    ours = render_table(title, columns, rows)
    if len(title) <= table_width(title, columns, rows):
        assert ours == stream.getvalue()
    else:
        # a wide title stays whole on one line; rich wraps it: the boxes below are the same
        assert ours.splitlines()[0] == title
        assert ours.splitlines()[1:] == stream.getvalue().splitlines()[-(len(rows) + 4):]


@settings(max_examples=40, deadline=None)
@given(tables())
def test_on_a_terminal_only_styles_are_added(table: tuple[str, list[tuple[str, str]], list[list[str]]]) -> None:
    title, columns, rows = table
    styled = render_table(title, columns, rows, styled=True)
    assert ANSI.sub("", styled) == render_table(title, columns, rows)
    assert styled.startswith("\x1b[3m")  # the title in italic, as rich draws it
    header = styled.splitlines()[2]
    assert header.count("\x1b[1m") == len(columns)  # every header cell bold
    stream = io.StringIO()
    rich_rendering(title, columns, rows, stream, terminal=True)
    if len(title) <= table_width(title, columns, rows):
        assert ANSI.sub("", stream.getvalue()) == ANSI.sub("", styled)


def test_a_stream_without_box_characters_gets_riches_ascii_box() -> None:
    columns, rows = [("", "left"), ("packets", "right")], [["in", "3"], ["  segmented", "12"]]
    drawn = []
    for draw in (lambda s: print_table("t", columns, rows, s), lambda s: rich_rendering("t", columns, rows, s)):
        raw = io.BytesIO()
        stream = io.TextIOWrapper(raw, encoding="ascii")
        draw(stream)
        stream.flush()
        drawn.append(raw.getvalue())
    ours, theirs = drawn
    assert ours == theirs
    assert b"+" in ours and b"\xe2" not in ours
    assert len(HEAVY_HEAD) == len(ASCII)


def table_rows(text: str) -> dict[str, list[str]]:
    """The summary's rows by their first cell: the other cells, stripped."""
    found = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            found[cells[0]] = cells[1:]
    return found


# the rows of every outcome, in the order the summary lists them (README: every input record lands
# in exactly one of them)
OUTCOME_ROWS = {
    "segmented": "  segmented",
    "whole": "  sent whole (the device segments)",
    "changed": "  changed (checksums completed, actions)",
    "unchanged": "  unchanged",
    "refused": "  refused by the kernel's checks (unchanged)",
    "not_segmented": "  not segmented (unchanged, reported)",
}


def table_lines(text: str) -> list[list[str]]:
    """The summary's body lines as cells, the first cell's own leading indentation kept (past the one
    space of padding every cell has)."""
    return [[cell[1:].rstrip() if i == 0 else cell.strip() for i, cell in enumerate(line.strip("│").split("│"))]
            for line in text.splitlines() if line.startswith("│")]


@pytest.mark.parametrize("device", ["no-offload", "tso"])
def test_the_summary_says_what_the_json_summary_says(tmp_path: Path, device: str) -> None:
    command = [sys.executable, "-m", "softgso", "segment", str(SAMPLE), "--device", device]
    table = subprocess.run([*command[:5], str(tmp_path / "a.pcap"), *command[5:]], check=True, capture_output=True,
                           text=True).stdout
    summary = json.loads(subprocess.run([*command[:5], str(tmp_path / "b.pcap"), *command[5:], "--json"], check=True,
                                        capture_output=True, text=True).stdout)
    rows = table_rows(table)
    # the capture's own bytes: a classic pcap is a 24-byte header and a 16-byte header per record
    frame_bytes = SAMPLE.stat().st_size - 24 - 16 * summary["records_in"]
    out_bytes = (tmp_path / "a.pcap").stat().st_size - 24 - 16 * summary["records_out"]
    assert rows["in"] == [f"{summary['records_in']:,}", f"{frame_bytes:,}"]
    assert rows["out"] == [f"{summary['records_out']:,}", f"{out_bytes:,}"]
    assert summary["bytes_in"] == frame_bytes and summary["bytes_out"] == out_bytes
    for state, count in summary["input_checksums"].items():
        assert rows[f"input L4 checksum {state}"] == [f"{count:,}", ""]
    assert rows["over MTU, not segmented"] == [f"{summary['over_mtu_not_segmented']:,}", ""]
    if summary["partial_checksums_out"]:
        assert rows["output checksums left partial"] == [f"{summary['partial_checksums_out']:,}", ""]
    # every outcome a row of its own, indented under "out", in one order, adding up to "in"
    lines = table_lines(table)
    outcome_lines = [line for line in lines if line[0] in OUTCOME_ROWS.values()]
    assert outcome_lines == [[OUTCOME_ROWS[key], f"{count:,}", ""] for key, count in summary["outcomes"].items()]
    assert list(summary["outcomes"]) == list(OUTCOME_ROWS)
    assert sum(summary["outcomes"].values()) == summary["records_in"]
    assert table.splitlines()[0].strip() == f"softgso segment -> {tmp_path / 'a.pcap'}"
    header = next(line for line in table.splitlines() if line.startswith("┃"))
    assert [cell.strip() for cell in header.strip("┃").split("┃")] == ["", "records", "bytes"]


def test_the_summary_numbers_have_thousands_separators(tmp_path: Path) -> None:
    from softgso.cli.bench import small_frames, write_capture

    capture = tmp_path / "many.pcap"
    write_capture(capture, 1 << 20, frames=small_frames())
    done = subprocess.run([sys.executable, "-m", "softgso", "segment", str(capture), str(tmp_path / "out.pcap")],
                          check=True, capture_output=True, text=True)
    summary = json.loads(subprocess.run([sys.executable, "-m", "softgso", "segment", str(capture),
                                         str(tmp_path / "out2.pcap"), "--json"], check=True, capture_output=True,
                                        text=True).stdout)
    assert summary["records_in"] >= 1000
    assert table_rows(done.stdout)["in"][0] == f"{summary['records_in']:,}" and "," in f"{summary['records_in']:,}"


def test_a_plain_segment_run_imports_neither_rich_nor_click(tmp_path: Path) -> None:
    # told by an exit handler: a plain run ends without the interpreter's teardown, but runs them
    probe = (
        "import atexit, sys; sys.argv = ['softgso', 'segment', sys.argv[1], sys.argv[2]]\n"
        "atexit.register(lambda: print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'click', 'numpy'})))\n"
        "from softgso.cli.entry import main\n"
        "main()\n"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(SAMPLE), str(tmp_path / "o.pcap")], check=True,
                         capture_output=True, text=True).stdout
    assert "softgso segment ->" in out  # the summary was drawn
    # numpy too, where the compiled primitive runs the stream; without it the numpy one is the engine
    from softgso.bulk.compiled_primitive import available

    assert out.splitlines()[-1] == ("[]" if available() else "['numpy']")


class FakeProgress:
    def __init__(self) -> None:
        self.updates: list[int] = []
        self.started = self.stopped = False

    def add_task(self, description: str, total: int, completed: int) -> int:
        self.updates.append(completed)  # the bar starts where the work is
        return 7

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def update(self, task: int, completed: int) -> None:
        assert task == 7
        self.updates.append(completed)


@pytest.mark.parametrize("quiet", [False, True])
def test_the_progress_bar_appears_only_after_the_delay(monkeypatch: pytest.MonkeyPatch, quiet: bool) -> None:
    made: list[FakeProgress] = []

    def display(enabled: bool, total: int) -> tuple[FakeProgress, int]:
        made.append(FakeProgress())
        return made[-1], total

    clock = [100.0]
    monkeypatch.setattr(runner, "progress_display", display)
    monkeypatch.setattr(runner, "show_progress", lambda q: not q)  # stderr a terminal
    monkeypatch.setattr(runner.time, "perf_counter", lambda: clock[0])
    with runner.progress_bar(quiet, 1000, "segment") as bar:
        bar(10)
        clock[0] += runner.PROGRESS_DELAY - 0.01
        bar(20)
        assert made == []  # nothing drawn, nothing imported, before the delay
        clock[0] += 0.02
        bar(30)
        bar(40)
    if quiet:
        assert made == []
    else:
        assert len(made) == 1 and made[0].started and made[0].stopped
        assert made[0].updates == [30, 30, 40]


def test_a_summary_nobody_reads_ends_quietly_with_status_141_and_the_output_kept(tmp_path: Path) -> None:
    """stdout's reader gone before the summary (``softgso segment IN OUT | true``): normal use of a
    pipe, so it ends as cat does (no message, 128 + SIGPIPE); the capture is written and renamed into place."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    done = subprocess.run([sys.executable, "-m", "softgso", "segment", str(SAMPLE), str(tmp_path / "out.pcap")],
                          stdout=write_end, stderr=subprocess.PIPE, text=True)
    os.close(write_end)
    assert done.returncode == 141
    assert done.stderr == ""
    reference = subprocess.run([sys.executable, "-m", "softgso", "segment", str(SAMPLE), str(tmp_path / "ref.pcap"),
                                "-q"], check=True)
    assert reference.returncode == 0
    assert (tmp_path / "out.pcap").read_bytes() == (tmp_path / "ref.pcap").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.pcap", "ref.pcap"]  # no temporary left


def test_an_os_error_without_a_file_name_has_no_dangling_colon() -> None:
    message, status = runner.error_status(OSError(28, "No space left on device"))
    assert (message, status) == ("softgso: error: No space left on device", runner.EXIT_IO)
    message, _ = runner.error_status(FileNotFoundError(2, "No such file or directory", "in.pcap"))
    assert message == "softgso: error: No such file or directory: in.pcap"
