"""Device profile files: the file side only; the engine builds the profile from the decoded table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import softgso
from softgso.errors import UsageError
from softgso.features import PROFILES, profile_from_mapping
from softgso.io.profile import load_profile


def test_a_name_is_a_built_in_profile() -> None:
    assert load_profile("nic-mpls-tso") is PROFILES["nic-mpls-tso"]
    assert softgso.load_profile is load_profile


def test_a_file_is_its_table_named_after_the_file(tmp_path: Path) -> None:
    table = {"base": "tso", "mtu": 9000, "features": "SG|HW_CSUM|TSO"}
    path = tmp_path / "jumbo.json"
    path.write_text(json.dumps(table))
    assert load_profile(str(path)) == profile_from_mapping(table, str(path), "jumbo")
    toml = tmp_path / "jumbo.toml"
    toml.write_text('base = "tso"\nmtu = 9000\nfeatures = "SG|HW_CSUM|TSO"\n')
    assert load_profile(str(toml)) == load_profile(str(path))


def test_a_missing_file_is_said_to_be_missing_and_an_unknown_name_unknown(tmp_path: Path) -> None:
    for spec in (str(tmp_path / "nowhere.json"), "nowhere.toml", str(tmp_path / "nowhere")):
        with pytest.raises(UsageError, match=f"device profile {spec}: no such file"):
            load_profile(spec)
    with pytest.raises(UsageError, match="unknown device profile 'nic-tso-mpls'"):
        load_profile("nic-tso-mpls")
