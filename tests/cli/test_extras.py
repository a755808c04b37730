"""Optional extras: a command whose extra is missing says which to install and exits 2 (no traceback).

Each test runs softgso in a child interpreter where the extra's module cannot be imported
(``sys.modules[name] = None``, as when it is not installed), except the bench's Scapy peer, which
is left out of the report with a message rather than refused.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "mpls_tcp_super.pcap"


def run_without(module: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """``softgso ARGS`` in a child interpreter that cannot import ``module``."""
    code = (f"import sys; sys.modules[{module!r}] = None; sys.argv[0] = 'softgso'; "
            "from softgso.cli.commands import main; main()")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=120)


def assert_names_the_extra(result: subprocess.CompletedProcess[str], extra: str) -> None:
    assert result.returncode == 2, result.stderr
    assert f"pip install 'softgso[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr and "ModuleNotFoundError" not in result.stderr


def test_datapath_without_pyroute2_names_the_extra_and_exits_2() -> None:
    assert_names_the_extra(run_without("pyroute2", "datapath", "--selftest"), "datapath")


def test_inspect_plot_without_matplotlib_names_the_extra_and_exits_2(tmp_path: Path) -> None:
    result = run_without("matplotlib", "inspect", SAMPLE, "--plot", tmp_path / "sizes.png")
    assert_names_the_extra(result, "plot")
    assert not (tmp_path / "sizes.png").exists()


def test_bench_plot_without_matplotlib_is_refused_before_measuring(tmp_path: Path) -> None:
    result = run_without("matplotlib", "bench", "--size", "1M", "--repeat", "1", "--plot", tmp_path / "bench.png")
    assert_names_the_extra(result, "plot")
    assert "bench: segment vs cp" not in result.stderr  # refused before the first measurement


def test_dask_scheduler_without_dask_names_the_extra_and_exits_2(tmp_path: Path) -> None:
    captures = tmp_path / "in"
    captures.mkdir()
    for name in ("a.pcap", "b.pcap"):
        shutil.copy(SAMPLE, captures / name)
    result = run_without("dask", "segment", captures, tmp_path / "out", "--dask-scheduler", "tcp://127.0.0.1:1")
    assert_names_the_extra(result, "dask")


def test_bench_without_scapy_leaves_the_peer_out_with_a_message(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from softgso.cli import bench

    monkeypatch.setitem(sys.modules, "scapy", None)
    assert bench.measure_scapy(tmp_path, 1 << 20, 1) == {"scapy": bench.SCAPY_MISSING}
    assert "pip install 'softgso[bench]'" in bench.SCAPY_MISSING
    assert list(tmp_path.iterdir()) == []  # nothing generated for a peer that cannot run


def test_bench_table_says_why_a_peer_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from softgso.cli import bench

    def report(size: int, **_: Any) -> dict[str, Any]:
        return {"size_bytes": size, "softgso_over_cp": 0.9, "scapy": bench.SCAPY_MISSING,
                "tcprewrite": bench.TCPREWRITE_MISSING}

    monkeypatch.setattr(bench, "run", report)
    monkeypatch.setenv("COLUMNS", "200")
    result = run_cli("bench", "--size", "1M")
    assert result.exit_code == 0
    assert bench.SCAPY_MISSING in result.stdout
    assert bench.TCPREWRITE_MISSING in result.stdout


def test_only_the_bench_peer_imports_scapy() -> None:
    # Scapy is the bench's extra: no module of the product imports it, only the peer the bench runs as a script
    import ast

    import softgso

    package = Path(softgso.__file__).parent
    importers = set()
    for module in package.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] == "scapy" for name in names):
                importers.add(module.relative_to(package).as_posix())
    assert importers == {"check/scapy_segmenter.py"}
