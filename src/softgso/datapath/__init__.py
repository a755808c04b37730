"""The live datapath: kernel TCP in namespace "west" -> TAP -> LER1 (push MPLS) -> link -> LER2 (pop) -> TAP ->
namespace "east", and back. A thin frontend: all packet work is the engine's (virtio, actions, xmit).

Imports are lazy so that ``python -m softgso.datapath.endpoint`` (run inside a namespace) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .run import DatapathOptions


def run_datapath(options: DatapathOptions) -> int:
    """`softgso datapath` (and `--selftest`): exit status."""
    from .run import run_datapath as run

    return run(options)


def run_selftest(options: DatapathOptions) -> dict[str, Any]:
    """`softgso datapath --selftest` as a dict (sw_gso_gbps, hw_gso_gbps, nogso_gbps, bytes, verified, ...)."""
    from .selftest import run_selftest as run

    return run(options)


def __getattr__(name: str) -> Any:
    if name in ("DatapathOptions", "Datapath", "DatapathError", "MODES"):
        from . import run

        return getattr(run, name)
    raise AttributeError(name)


__all__ = ["MODES", "DatapathOptions", "run_datapath", "run_selftest"]
