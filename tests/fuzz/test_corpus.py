"""Every crasher the fuzzers found, replayed: each must now get a documented answer.

A corpus entry is ``corpus/NAME.json``: the case's fields (bytes as hex), its ``target`` and a
``bug`` line saying what crashed and where it was fixed. Add one with
``python tests/fuzz/atheris_main.py --to-corpus TARGET crash-FILE NAME`` or ``targets.save_crasher``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from targets import CORPUS, io_available, load_corpus_file, run_case

ENTRIES = sorted(CORPUS.glob("*.json"))


def _marks(path: Path) -> list[pytest.MarkDecorator]:
    """An entry with a ``known_bug`` line is a bug found but not fixed yet (in a file owned elsewhere)."""
    import json

    known = json.loads(path.read_text()).get("known_bug")
    return [pytest.mark.xfail(reason=known, strict=False)] if known else []


@pytest.mark.parametrize("path", [pytest.param(p, marks=_marks(p)) for p in ENTRIES], ids=[p.stem for p in ENTRIES])
def test_corpus_entry_gets_a_documented_answer(path: Path) -> None:
    case = load_corpus_file(path)
    if case.target == "capture" and not io_available():
        pytest.skip("softgso.io is not there yet")
    run_case(case)


def test_corpus_is_not_empty_and_every_entry_says_what_it_was() -> None:
    import json

    assert ENTRIES
    for path in ENTRIES:
        assert json.loads(path.read_text()).get("bug"), f"{path.name} lacks its 'bug' line"
