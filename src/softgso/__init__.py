"""softgso: Linux software GSO in userspace, byte for byte, with MPLS as a first-class citizen.

The engine is sans-I/O: bytes and metadata in, bytes and metadata out.

    >>> from softgso import Packet, PROFILES, transmit
    >>> from softgso.actions import push_mpls

The public surface re-exported here is the stable one; everything else may move.
"""

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
from .features import PROFILES, DeviceProfile, GsoType, IpSummed, NetdevFeature, load_profile
from .packet import Packet
from .xmit import transmit

__version__ = "0.1.0"

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
