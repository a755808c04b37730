"""Optional extras: a command whose extra is missing says which to install and exits 2 (no traceback)."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import run_cli


def test_datapath_without_pyroute2_names_the_extra_and_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def without_pyroute2(name: str, *args: object, **kwargs: object) -> object:
        return None if name == "pyroute2" else real_find_spec(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", without_pyroute2)
    result = run_cli("datapath", "--selftest")
    assert result.exit_code == 2
    assert "pip install 'softgso[datapath]'" in result.stderr
    assert "Traceback" not in result.stderr and "ModuleNotFoundError" not in result.stderr
