"""Every command's --help shows an example; ``python -m softgso`` works."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import run_cli

from softgso.cli.commands import main

COMMANDS = sorted(main.commands)


def test_every_issue_command_exists() -> None:
    assert {"segment", "inspect", "diff", "push-mpls", "pop-mpls", "set-mpls", "dec-ttl", "push-vlan",
            "pop-vlan"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_an_example(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert f"softgso {command}" in result.stdout


def test_top_level_help_lists_examples_and_exit_codes_are_documented() -> None:
    result = run_cli("--help")
    assert result.exit_code == 0 and "Examples:" in result.stdout
    import softgso.cli.commands

    assert "Exit status" in (softgso.cli.commands.__doc__ or "")


def test_python_dash_m_softgso_help() -> None:
    done = subprocess.run([sys.executable, "-m", "softgso", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "segment" in done.stdout and "inspect" in done.stdout and "diff" in done.stdout


def test_bad_option_value_is_a_usage_error() -> None:
    assert run_cli("segment", "a.pcap", "b.pcap", "--mtu", "20").exit_code == 2
    assert run_cli("inspect", "a.pcap", "--device", "no-such-profile").exit_code == 2
