"""Device profile files: a named profile, or one read from a JSON or TOML file.

The engine builds a profile from the decoded table (softgso.features.profile_from_mapping); this
module is the file side of it, shared by the command line (``--device``) and the datapath
(``--link-profile``), and re-exported as ``softgso.load_profile``.
"""

from __future__ import annotations

from ..errors import UsageError
from ..features import PROFILES, DeviceProfile, profile_from_mapping


def load_profile(spec: str) -> DeviceProfile:
    """A named profile, or one read from a JSON/TOML file (keys: the DeviceProfile fields)."""
    if spec in PROFILES:
        return PROFILES[spec]
    from pathlib import Path  # here: a named profile (every plain run) needs no pathlib

    path = Path(spec)
    if not path.exists():
        if path.suffix in (".json", ".toml") or "/" in spec:  # meant as a file: say that one is missing
            raise UsageError(f"device profile {spec}: no such file")
        raise UsageError(f"unknown device profile {spec!r}: use one of {', '.join(PROFILES)} or a .json/.toml file")
    try:
        if path.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10: the same parser, as a package (a dependency there)
                import tomli as tomllib  # type: ignore[no-redef]

            raw = tomllib.loads(path.read_text())
        else:
            import json

            raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read device profile {spec}: {exc}") from exc
    return profile_from_mapping(raw, spec, path.stem)


__all__ = ["load_profile"]
