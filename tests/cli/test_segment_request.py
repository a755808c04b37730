"""segment's request: the click command and the plain-run parser build the same SegmentRequest."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from softgso.bulk.native import load_extension
from softgso.cli.commands import segment as segment_command
from softgso.cli.entry import SEGMENT_DEFAULTS, parse_segment, path_text
from softgso.cli.runner import SegmentRequest

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "mpls_tcp_super.pcap"


def test_the_request_s_fields_are_the_command_s_parameters_with_its_defaults() -> None:
    fields = {field.name: field.default for field in dataclasses.fields(SegmentRequest)}
    assert set(fields) == {param.name for param in segment_command.params}
    assert {name: default for name, default in fields.items() if name not in ("in_path", "out_path")} == SEGMENT_DEFAULTS


def test_a_plain_run_and_click_make_one_request() -> None:
    args = ["segment", "in.pcap", "out.pcap", "--device", "nic-tso", "--action", "push-mpls:100", "--mtu=9000", "-q"]
    params = parse_segment(args)
    assert params is not None
    params["in_path"], params["out_path"] = Path(params["in_path"]), Path(params["out_path"])
    clicked = segment_command.make_context("segment", args[1:]).params
    assert SegmentRequest(**params) == SegmentRequest(**clicked)
    assert SegmentRequest(**params).option_args()["actions"] == ("push-mpls:100",)


def test_a_plain_run_loads_neither_the_action_grammar_nor_the_actions(tmp_path: Path) -> None:
    # told by an exit handler: a plain run ends without the interpreter's teardown, but runs them
    probe = (
        "import atexit, sys; sys.argv = ['softgso', 'segment', *sys.argv[1:]]\n"
        "atexit.register(lambda: print(sorted(m for m in ('softgso.actions', 'softgso.cli.action_grammar') "
        "if m in sys.modules)))\n"
        "from softgso.cli.entry import main\n"
        "main()\n"
    )
    for extra, loaded in (([], "[]"), (["--action", "dec-ttl"], "['softgso.actions', 'softgso.cli.action_grammar']")):
        out = subprocess.run([sys.executable, "-c", probe, str(SAMPLE), str(tmp_path / "o.pcap"), "-q", *extra],
                             check=True, capture_output=True, text=True).stdout
        assert out.splitlines()[-1] == loaded


@given(st.lists(st.sampled_from(["", "/", "//", ".", "..", "a", "o.pcap", "-", " "]), max_size=8).map("".join))
def test_a_plain_run_names_in_and_out_as_click_s_paths_do(text: str) -> None:
    assert path_text(text) == str(PurePosixPath(text))


def test_a_plain_run_and_click_report_out_by_the_same_name(tmp_path: Path) -> None:
    out = f"{tmp_path}//./o.pcap"
    reports = []
    for extra in ([], ["--jobs", "1"]):  # --jobs: a command line only click parses
        done = subprocess.run([sys.executable, "-m", "softgso", "segment", str(SAMPLE), out, "--json", *extra],
                              check=True, capture_output=True, text=True)
        reports.append(json.loads(done.stdout)["output"])
    assert reports == [str(tmp_path / "o.pcap")] * 2


# what a plain run must not import: each is milliseconds of start-up, for what only other paths need
# (the dataclasses module brings inspect, ast, dis and tokenize; pathlib brings urllib.parse and ipaddress)
START_UP_FREE = ("click", "rich", "json", "dataclasses", "inspect", "typing", "pathlib", "urllib.parse",
                 "ipaddress", "pkgutil", "glob", "contextlib", "re", "signal", "softgso.io.cooked", "softgso.virtio")


@pytest.mark.skipif(load_extension("_segment") is None,
                    reason="without softgso.bulk._segment the engine is numpy's, which imports some of these itself")
def test_a_plain_run_imports_nothing_only_other_paths_need(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(SAMPLE.read_bytes()[:24])  # the file header alone
    probe = (
        "import atexit, sys; sys.argv = ['softgso', 'segment', *sys.argv[1:]]\n"
        f"atexit.register(lambda: print(sorted(m for m in {START_UP_FREE!r} if m in sys.modules)))\n"
        "from softgso.cli.entry import main\n"
        "main()\n"
    )
    for capture in (empty, SAMPLE):
        out = subprocess.run([sys.executable, "-c", probe, str(capture), str(tmp_path / "o.pcap"), "-q"],
                             check=True, capture_output=True, text=True).stdout
        assert out.splitlines()[-1] == "[]"
