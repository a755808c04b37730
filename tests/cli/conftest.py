"""Shared fixtures for the end-to-end CLI tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from softgso.cli.commands import main


def run_cli(*args: str | Path) -> Result:
    """Run ``softgso ARGS`` in-process; stdout and stderr kept apart."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def run_json(*args: str | Path) -> tuple[Result, dict]:
    """Run a command with --json and parse its stdout."""
    result = run_cli(*args, "--json")
    return result, json.loads(result.stdout)


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    """A scratch folder."""
    return tmp_path


@pytest.fixture
def always_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """--jobs cuts IN into parts whatever share of it the bulk stream takes (by default one job does a
    capture the bulk stream takes well: softgso.bulk.stream.ONE_JOB_BULK_SHARE), so that a test of the
    parts runs them on a small capture of super-packets too."""
    from softgso.bulk import stream

    monkeypatch.setattr(stream, "ONE_JOB_BULK_SHARE", float("inf"))


def spy_on_parts(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[bool]:
    """Whether each call of ``module.name`` (runner._segment_jobs, inspect_jobs.inspect_in_parts) did the
    capture in parts (it answered) or left it to one job (None)."""
    in_parts: list[bool] = []
    original = getattr(module, name)

    def call_and_tell(*args: Any) -> Any:
        done = original(*args)
        in_parts.append(done is not None)
        return done

    monkeypatch.setattr(module, name, call_and_tell)
    return in_parts


def recorded_progress(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """What the progress bar (softgso.cli.runner.progress_bar) is told, in order."""
    from softgso.cli import runner

    told: list[int] = []

    class Bar:
        def __init__(self, quiet: bool, total: int, description: str) -> None:
            self.total = total

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def __call__(self, done: int) -> None:
            told.append(done)

    monkeypatch.setattr(runner, "progress_bar", Bar)
    return told
