"""Shared fixtures for the end-to-end CLI tests."""

from __future__ import annotations

import json
from pathlib import Path

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
