"""Link types to and from Ethernet: the engine sees Ethernet frames, whatever the capture holds.

Linux cooked captures (``tcpdump -i any``) carry a pseudo-header instead of an Ethernet header:

    SLL  (113, 16 bytes): packet type, ARPHRD type, address length, 8 address bytes, protocol
    SLL2 (276, 20 bytes): protocol, reserved, ifindex, ARPHRD type, packet type, address length,
                          8 address bytes

Both big-endian. A cooked record of an Ethernet device (ARPHRD_ETHER) whose protocol is an
ethertype becomes dst 00:00:00:00:00:00, src = the link-layer address (zeros unless 6 bytes
long), ethertype = protocol. On the way back every field of the original pseudo-header is kept
except the protocol, which is the output frame's ethertype (the same, unless an action such as
push-mpls changed it).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..constants import ETH_ALEN, ETH_HLEN
from ..errors import CaptureError
from .record import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    CaptureRecord,
    UnknownLinkTypeError,
)

SLL_HDR_LEN = 16
SLL2_HDR_LEN = 20
SLL_ADDRLEN = 8
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
# Protocol values below this are not ethertypes but the cooked header's own codes
# (LINUX_SLL_P_802_3, LINUX_SLL_P_802_2, LINUX_SLL_P_CAN...).
ETH_P_802_3_MIN = 0x0600

_SLL = struct.Struct("!HHH8sH")
_SLL2 = struct.Struct("!HHIHBB8s")
_ZERO_MAC = bytes(ETH_ALEN)


@dataclass(slots=True)
class EthernetView:
    """A record as an Ethernet frame; ``frame`` is the record's own data for Ethernet captures."""

    frame: bytes | memoryview
    linktype: int  # the record's link type, needed (with the record) to convert back


def _synthetic_frame(hatype: int, halen: int, address: bytes, protocol: int, payload: memoryview) -> bytes | None:
    if hatype != ARPHRD_ETHER or protocol < ETH_P_802_3_MIN:
        return None
    source = address[:ETH_ALEN] if halen == ETH_ALEN else _ZERO_MAC
    return b"".join((_ZERO_MAC, source, protocol.to_bytes(2, "big"), payload))


def to_ethernet(record: CaptureRecord) -> EthernetView | None:
    """The record as an Ethernet frame; None when it is not Ethernet (loopback, non-IP cooked...)."""
    linktype = record.linktype
    if linktype == LINKTYPE_ETHERNET:
        return EthernetView(record.data, linktype)
    data = memoryview(record.data)
    if linktype == LINKTYPE_LINUX_SLL:
        if len(data) < SLL_HDR_LEN:
            return None
        _pkttype, hatype, halen, address, protocol = _SLL.unpack_from(data)
        frame = _synthetic_frame(hatype, halen, address, protocol, data[SLL_HDR_LEN:])
    elif linktype == LINKTYPE_LINUX_SLL2:
        if len(data) < SLL2_HDR_LEN:
            return None
        protocol, _reserved, _ifindex, hatype, _pkttype, halen, address = _SLL2.unpack_from(data)
        frame = _synthetic_frame(hatype, halen, address, protocol, data[SLL2_HDR_LEN:])
    else:
        raise UnknownLinkTypeError(record)
    return None if frame is None else EthernetView(frame, linktype)


def from_ethernet_parts(frame: bytes | memoryview, like: CaptureRecord) -> tuple[bytes | memoryview, ...]:
    """``frame`` as record data of ``like``'s link type, in pieces for ``write_record`` (no copy)."""
    linktype = like.linktype
    if linktype == LINKTYPE_ETHERNET:
        return (frame,)
    if len(frame) < ETH_HLEN:
        raise CaptureError(f"record {like.index} (0-based): a {len(frame)}-byte frame has no Ethernet header")
    view = memoryview(frame)
    if linktype == LINKTYPE_LINUX_SLL:
        # Bytes 0..13 of the cooked header, then the protocol, which sits where the ethertype does.
        return (like.data[: SLL_HDR_LEN - 2], view[ETH_HLEN - 2 :])
    if linktype == LINKTYPE_LINUX_SLL2:
        return (view[ETH_HLEN - 2 : ETH_HLEN], like.data[2:SLL2_HDR_LEN], view[ETH_HLEN:])
    raise UnknownLinkTypeError(like)


def from_ethernet(frame: bytes | memoryview, like: CaptureRecord) -> bytes:
    """``frame`` as record data of ``like``'s link type (the cooked header rebuilt from ``like``)."""
    parts = from_ethernet_parts(frame, like)
    return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
