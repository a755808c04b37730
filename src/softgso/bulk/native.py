"""The fast path's optional C extensions (built by setup.py where a compiler exists), found in one place.

``SOFTGSO_NO_C=1`` in the environment hides them all: softgso then runs on Python and numpy
alone, writing the same bytes (the tests run both ways). The engine's own extension,
softgso._checksum, is loaded by softgso.checksum under the same rule: the reference path imports
nothing of softgso.bulk.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def load_extension(name: str) -> ModuleType | None:
    """softgso.bulk.NAME (``_csum`` or ``_segment``), or None where it is not built or SOFTGSO_NO_C is set."""
    if os.environ.get("SOFTGSO_NO_C"):
        return None
    try:
        return importlib.import_module(f"softgso.bulk.{name}")
    except ImportError:
        return None


__all__ = ["load_extension"]
