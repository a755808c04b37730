"""softgso: Linux software GSO in userspace, byte for byte, with MPLS as a first-class citizen.

The engine is sans-I/O: bytes and metadata in, bytes and metadata out.

    >>> from softgso import Packet, PROFILES, transmit
    >>> from softgso.actions import push_mpls

The public surface re-exported here is the stable one; everything else may move. It is loaded on
first use (PEP 562), so that ``softgso segment`` can start its work before the engine is imported.
"""

from __future__ import annotations

from importlib import import_module

# typing itself costs start-up milliseconds; mypy reads this name as typing's
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .errors import (
        ActionError,
        CaptureError,
        InvalidPacketError,
        KernelRefusal,
        OutOfMemoryError,
        ProtocolNotSupportedError,
        SoftGSOError,
        UsageError,
        VirtioHeaderError,
    )
    from .features import PROFILES, DeviceProfile, GsoType, IpSummed, NetdevFeature
    from .io.profile import load_profile
    from .packet import Packet
    from .xmit import transmit

__version__ = "0.1.0"

# each public name and the module that defines it
_HOMES = {
    **dict.fromkeys(("ActionError", "CaptureError", "InvalidPacketError", "KernelRefusal", "OutOfMemoryError",
                     "ProtocolNotSupportedError", "SoftGSOError", "UsageError", "VirtioHeaderError"), "errors"),
    **dict.fromkeys(("PROFILES", "DeviceProfile", "GsoType", "IpSummed", "NetdevFeature"), "features"),
    "load_profile": "io.profile",  # the file side of a profile (the engine builds it from the decoded table)
    "Packet": "packet",
    "transmit": "xmit",
}


def names_on_first_use(package: str, homes: dict[str, str], namespace: dict[str, Any],
                       ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` (PEP 562) that import each name of ``homes`` (name ->
    module, relative to ``package``) from its module on first use and keep it in ``namespace``."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f".{home}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(homes))

    return __getattr__, __dir__


__getattr__, __dir__ = names_on_first_use(__name__, _HOMES, globals())


__all__ = [
    "PROFILES",
    "ActionError",
    "CaptureError",
    "DeviceProfile",
    "GsoType",
    "InvalidPacketError",
    "IpSummed",
    "KernelRefusal",
    "NetdevFeature",
    "OutOfMemoryError",
    "Packet",
    "ProtocolNotSupportedError",
    "SoftGSOError",
    "UsageError",
    "VirtioHeaderError",
    "load_profile",
    "transmit",
]
