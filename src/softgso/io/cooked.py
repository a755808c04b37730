"""Link types to and from Ethernet: the engine sees Ethernet frames, whatever the capture holds.

A record of a link type other than Ethernet becomes a synthetic Ethernet frame: destination
00:00:00:00:00:00, source 00:00:00:00:00:00 (or a cooked header's own 6-byte Ethernet address),
ethertype = the L3 protocol the link-layer header names, then the record's L3 bytes. The link-layer
headers, as the tcpdump.org LINKTYPE_ list defines them:

    SLL  (113, 16 bytes): packet type, ARPHRD type, address length, 8 address bytes, protocol
    SLL2 (276, 20 bytes): protocol, reserved, ifindex, ARPHRD type, packet type, address length,
                          8 address bytes
        Both big-endian; converted for every ARPHRD type (Ethernet, loopback, tun's ARPHRD_NONE,
        GRE...) when the protocol is an ethertype (>= 0x0600). The source MAC is the address for
        ARPHRD_ETHER with a 6-byte address, zeros otherwise.
    NULL (0, 4 bytes): the address family in the capturing host's byte order (either is read):
        AF_INET 2 = IPv4; AF_INET6 = 10 (Linux), 24 (NetBSD, OpenBSD, Npcap), 28 (FreeBSD),
        30 (macOS) = IPv6. LOOP (108): the same, always big-endian.
    Raw IP (12 and 14, DLT_RAW in old files; 101): no header, the version nibble says IPv4 or
        IPv6. IPV4 (228) and IPV6 (229): no header, the version is the link type's.

On the way back the original header is kept, except what names the L3 protocol, which follows the
output frame's ethertype (the same, unless an action such as push-mpls changed it): a cooked
header's protocol field, a NULL/LOOP family word (rewritten in the input's byte order). An
ethertype the link type cannot carry (MPLS on NULL or raw IP, IPv6 on LINKTYPE_IPV4...) raises
:class:`UnrepresentableFrameError`.

Link types not converted (PPP, C-HDLC, NFLOG...) raise UnknownLinkTypeError from
:func:`to_ethernet`; :func:`link_payload_length` still measures their L3 size for the MTU check.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..constants import ETH_ALEN, ETH_HLEN, ETH_P_IP, ETH_P_IPV6
from ..errors import CaptureError
from ..valueclass import ValueClass
from .record import (
    LINKTYPE_C_HDLC,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NAMES,
    LINKTYPE_NFLOG,
    LINKTYPE_NULL,
    LINKTYPE_PPP,
    LINKTYPE_PPP_HDLC,
    LINKTYPE_RAW,
    LINKTYPE_RAW_12,
    LINKTYPE_RAW_14,
    CaptureRecord,
    UnknownLinkTypeError,
    UnrepresentableFrameError,
)

SLL_HDR_LEN = 16
SLL2_HDR_LEN = 20
SLL_ADDRLEN = 8
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
ARPHRD_IPGRE = 778
ARPHRD_NONE = 0xFFFE  # tun devices
# Protocol values below this are not ethertypes but the cooked header's own codes
# (LINUX_SLL_P_802_3, LINUX_SLL_P_802_2, LINUX_SLL_P_CAN...).
ETH_P_802_3_MIN = 0x0600

NULL_HDR_LEN = 4
AF_INET = 2
# AF_INET6 is not the same number on every system that writes NULL/LOOP captures.
AF_INET6_LINUX = 10
AF_INET6_BSD = 24  # NetBSD, OpenBSD, BSD/OS, Npcap (Wireshark's BSD_AF_INET6_BSD)
AF_INET6_FREEBSD = 28
AF_INET6_DARWIN = 30
_FAMILY_ETHERTYPES = {AF_INET: ETH_P_IP, AF_INET6_LINUX: ETH_P_IPV6, AF_INET6_BSD: ETH_P_IPV6,
                      AF_INET6_FREEBSD: ETH_P_IPV6, AF_INET6_DARWIN: ETH_P_IPV6}
_VERSION_ETHERTYPES = {4: ETH_P_IP, 6: ETH_P_IPV6}

PPP_ADDRESS_CONTROL = b"\xff\x03"  # RFC 1662 HDLC-like framing: all-stations address, UI control
C_HDLC_HDR_LEN = 4  # address, control, 2-byte ethertype
CISCO_HDLC_ADDRESSES = (0x0F, 0x8F)  # unicast, broadcast: Cisco framing inside LINKTYPE_PPP_HDLC
NFLOG_HDR_LEN = 4  # family, version, 2-byte resource id
NFLOG_TLV_HDR_LEN = 4  # 16-bit length (header included), 16-bit type
NFULA_PAYLOAD = 9
NLA_TYPE_MASK = 0x3FFF  # ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER), include/uapi/linux/netlink.h

_SLL = struct.Struct("!HHH8sH")
_SLL2 = struct.Struct("!HHIHBB8s")
_ZERO_MAC = bytes(ETH_ALEN)

# What each headerless link type can carry, by ethertype, and those ethertypes in words.
_RAW_CARRIES: dict[int, tuple[tuple[int, ...], str]] = {
    LINKTYPE_RAW_12: ((ETH_P_IP, ETH_P_IPV6), "IPv4 and IPv6"),
    LINKTYPE_RAW_14: ((ETH_P_IP, ETH_P_IPV6), "IPv4 and IPv6"),
    LINKTYPE_RAW: ((ETH_P_IP, ETH_P_IPV6), "IPv4 and IPv6"),
    LINKTYPE_IPV4: ((ETH_P_IP,), "IPv4"),
    LINKTYPE_IPV6: ((ETH_P_IPV6,), "IPv6"),
}

# (ethertype, source MAC, link-layer header length) of a record, or None when it is not convertible
_LinkHeader = tuple[int, bytes, int] | None
TYPE_CHECKING = False  # typing costs start-up milliseconds; mypy reads this name as typing's
if TYPE_CHECKING:
    from typing import Literal, TypeAlias

    _ByteOrder: TypeAlias = Literal["little", "big"]
_EITHER_ORDER: tuple[_ByteOrder, ...] = ("little", "big")
_NETWORK_ORDER: tuple[_ByteOrder, ...] = ("big",)


class EthernetView(ValueClass):
    """A record as an Ethernet frame; ``frame`` is the record's own data for Ethernet captures."""

    __slots__ = ("frame", "linktype")

    frame: bytes | memoryview
    linktype: int  # the record's link type, needed (with the record) to convert back

    def __init__(self, frame: bytes | memoryview, linktype: int) -> None:
        self.frame = frame
        self.linktype = linktype


def _cooked_header(hatype: int, halen: int, address: bytes, protocol: int, header_len: int) -> _LinkHeader:
    if protocol < ETH_P_802_3_MIN:
        return None
    source = address[:ETH_ALEN] if hatype == ARPHRD_ETHER and halen == ETH_ALEN else _ZERO_MAC
    return protocol, source, header_len


def _sll_header(data: memoryview) -> _LinkHeader:
    if len(data) < SLL_HDR_LEN:
        return None
    _pkttype, hatype, halen, address, protocol = _SLL.unpack_from(data)
    return _cooked_header(hatype, halen, address, protocol, SLL_HDR_LEN)


def _sll2_header(data: memoryview) -> _LinkHeader:
    if len(data) < SLL2_HDR_LEN:
        return None
    protocol, _reserved, _ifindex, hatype, _pkttype, halen, address = _SLL2.unpack_from(data)
    return _cooked_header(hatype, halen, address, protocol, SLL2_HDR_LEN)


def _loopback_family(data: bytes | memoryview, linktype: int) -> tuple[int, _ByteOrder] | None:
    """(address family, byte order) of a NULL/LOOP header; None for a family that is not IP."""
    if len(data) < NULL_HDR_LEN:
        return None
    # NULL is in the writer's byte order, which the file does not record; the families are small
    # numbers, so at most one reading of the four bytes is a known family.
    for order in _NETWORK_ORDER if linktype == LINKTYPE_LOOP else _EITHER_ORDER:
        family = int.from_bytes(data[:NULL_HDR_LEN], order)
        if family in _FAMILY_ETHERTYPES:
            return family, order
    return None


def _null_header(data: memoryview) -> _LinkHeader:
    found = _loopback_family(data, LINKTYPE_NULL)
    return None if found is None else (_FAMILY_ETHERTYPES[found[0]], _ZERO_MAC, NULL_HDR_LEN)


def _loop_header(data: memoryview) -> _LinkHeader:
    found = _loopback_family(data, LINKTYPE_LOOP)
    return None if found is None else (_FAMILY_ETHERTYPES[found[0]], _ZERO_MAC, NULL_HDR_LEN)


def _raw_header(data: memoryview) -> _LinkHeader:
    ethertype = _VERSION_ETHERTYPES.get(data[0] >> 4) if len(data) else None
    return None if ethertype is None else (ethertype, _ZERO_MAC, 0)


def _ipv4_header(data: memoryview) -> _LinkHeader:
    return ETH_P_IP, _ZERO_MAC, 0


def _ipv6_header(data: memoryview) -> _LinkHeader:
    return ETH_P_IPV6, _ZERO_MAC, 0


_LINK_HEADERS: dict[int, Callable[[memoryview], _LinkHeader]] = {
    LINKTYPE_LINUX_SLL: _sll_header,
    LINKTYPE_LINUX_SLL2: _sll2_header,
    LINKTYPE_NULL: _null_header,
    LINKTYPE_LOOP: _loop_header,
    LINKTYPE_RAW_12: _raw_header,
    LINKTYPE_RAW_14: _raw_header,
    LINKTYPE_RAW: _raw_header,
    LINKTYPE_IPV4: _ipv4_header,
    LINKTYPE_IPV6: _ipv6_header,
}


def link_header(data: bytes | memoryview, linktype: int) -> tuple[int, int] | None:
    """(ethertype, link-layer header length) to_ethernet reads in a record of ``linktype`` (not
    Ethernet) holding ``data``; None where it makes no Ethernet frame of it (or for a link type it
    does not convert)."""
    parse = _LINK_HEADERS.get(linktype)
    found = parse(memoryview(data)) if parse is not None else None
    return None if found is None else (found[0], found[2])


# the link types to_ethernet converts (the rest raise UnknownLinkTypeError)
CONVERTED_LINKTYPES = frozenset((LINKTYPE_ETHERNET, *_LINK_HEADERS))


def to_ethernet(record: CaptureRecord) -> EthernetView | None:
    """The record as an Ethernet frame; None when its header names no L3 protocol we can express.

    None: a cooked protocol that is not an ethertype, a NULL/LOOP family that is not IP, a raw-IP
    version nibble that is neither 4 nor 6, a record shorter than its link-layer header.
    UnknownLinkTypeError for a link type that is not converted at all (PPP, NFLOG, ...).
    """
    linktype = record.linktype
    if linktype == LINKTYPE_ETHERNET:
        return EthernetView(record.data, linktype)
    parse = _LINK_HEADERS.get(linktype)
    if parse is None:
        raise UnknownLinkTypeError(record)
    data = memoryview(record.data)
    header = parse(data)
    if header is None:
        return None
    ethertype, source, header_len = header
    return EthernetView(b"".join((_ZERO_MAC, source, ethertype.to_bytes(2, "big"), data[header_len:])), linktype)


def ethernet_view(record: CaptureRecord) -> EthernetView | None:
    """:func:`to_ethernet` for readers that want a frame or nothing: a link type not converted at all
    is None too."""
    try:
        return to_ethernet(record)
    except UnknownLinkTypeError:
        return None


def _loopback_family_word(ethertype: int, like: CaptureRecord) -> bytes | memoryview:
    found = _loopback_family(like.data, like.linktype)
    if found is None:
        name = LINKTYPE_NAMES[like.linktype]
        raise CaptureError(f"frame {like.index + 1}: its {name} header names no IPv4/IPv6 address family, "
                           "so no frame can be written back in its link type")
    family, order = found
    if ethertype == _FAMILY_ETHERTYPES[family]:
        return like.data[:NULL_HDR_LEN]
    if ethertype == ETH_P_IP:
        return AF_INET.to_bytes(NULL_HDR_LEN, order)
    if ethertype == ETH_P_IPV6:
        # the input was IPv4, so it does not say which AF_INET6 its writer uses: 24 is the value
        # libpcap lists first for LINKTYPE_NULL and the one OpenBSD (LINKTYPE_LOOP) uses
        return AF_INET6_BSD.to_bytes(NULL_HDR_LEN, order)
    raise UnrepresentableFrameError(like, ethertype, carries="IPv4 and IPv6")


def from_ethernet_parts(frame: bytes | memoryview, like: CaptureRecord) -> tuple[bytes | memoryview, ...]:
    """``frame`` as record data of ``like``'s link type, in pieces for ``write_record`` (no copy).

    Raises UnrepresentableFrameError when the link type cannot carry the frame's ethertype.
    """
    linktype = like.linktype
    if linktype == LINKTYPE_ETHERNET:
        return (frame,)
    if len(frame) < ETH_HLEN:
        raise CaptureError(f"frame {like.index + 1}: a {len(frame)}-byte frame has no Ethernet header")
    view = memoryview(frame)
    if linktype == LINKTYPE_LINUX_SLL:
        # Bytes 0..13 of the cooked header, then the protocol, which sits where the ethertype does.
        return (like.data[: SLL_HDR_LEN - 2], view[ETH_HLEN - 2 :])
    if linktype == LINKTYPE_LINUX_SLL2:
        return (view[ETH_HLEN - 2 : ETH_HLEN], like.data[2:SLL2_HDR_LEN], view[ETH_HLEN:])
    ethertype = int.from_bytes(view[ETH_HLEN - 2 : ETH_HLEN], "big")
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        return (_loopback_family_word(ethertype, like), view[ETH_HLEN:])
    carries = _RAW_CARRIES.get(linktype)
    if carries is None:
        raise UnknownLinkTypeError(like)
    ethertypes, words = carries
    if ethertype not in ethertypes:
        raise UnrepresentableFrameError(like, ethertype, carries=words)
    return (view[ETH_HLEN:],)


def from_ethernet(frame: bytes | memoryview, like: CaptureRecord) -> bytes:
    """``frame`` as record data of ``like``'s link type (the link-layer header rebuilt from ``like``)."""
    parts = from_ethernet_parts(frame, like)
    return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)


# --- link types that are not converted: only their L3 size -----------------------------------------


def _ppp_header_len(data: memoryview, linktype: int) -> int | None:
    start = 0
    if data[:2] == PPP_ADDRESS_CONTROL:
        start = 2
    elif linktype == LINKTYPE_PPP_HDLC and len(data) >= 2 and data[0] in CISCO_HDLC_ADDRESSES and data[1] == 0:
        return C_HDLC_HDR_LEN  # LINKTYPE_PPP_HDLC also holds Cisco HDLC framing (RFC 1547 4.3.1)
    if len(data) <= start:
        return None
    # Protocol-Field-Compression (RFC 1661 6.5): a one-octet protocol is odd; the first octet of
    # a two-octet one is even
    return start + (1 if data[start] & 1 else 2)


def _nflog_payload_len(data: memoryview) -> int | None:
    # The TLV length and type are in the capturing host's byte order (libpcap swaps them when it
    # reads a file from a host of the other order): read little-endian first, then big-endian.
    for order in _EITHER_ORDER:
        at = NFLOG_HDR_LEN
        while at + NFLOG_TLV_HDR_LEN <= len(data):
            tlv_len = int.from_bytes(data[at : at + 2], order)
            tlv_type = int.from_bytes(data[at + 2 : at + 4], order) & NLA_TYPE_MASK
            if tlv_len < NFLOG_TLV_HDR_LEN:
                break
            if tlv_type == NFULA_PAYLOAD:
                # a snapped record holds part of the payload: count what was captured
                return min(tlv_len, len(data) - at) - NFLOG_TLV_HDR_LEN
            at += (tlv_len + 3) & ~3
    return None


def link_payload_length(record: CaptureRecord) -> int | None:
    """Bytes after the record's link-layer header (its L3 size, as captured); None when not known.

    For the converted link types, ``len(to_ethernet(record).frame) - 14``; PPP and PPP_HDLC: after
    the (ff 03 and) protocol field; C_HDLC: after 4 bytes; NFLOG: the NFULA_PAYLOAD value's length.
    """
    linktype = record.linktype
    data = memoryview(record.data)
    header_len: int | None
    if linktype == LINKTYPE_ETHERNET:
        header_len = ETH_HLEN
    elif linktype in _LINK_HEADERS:
        header = _LINK_HEADERS[linktype](data)
        header_len = None if header is None else header[2]
    elif linktype in (LINKTYPE_PPP, LINKTYPE_PPP_HDLC):
        header_len = _ppp_header_len(data, linktype)
    elif linktype == LINKTYPE_C_HDLC:
        header_len = C_HDLC_HDR_LEN
    elif linktype == LINKTYPE_NFLOG:
        return _nflog_payload_len(data)
    else:
        return None
    if header_len is None or header_len > len(data):
        return None
    return len(data) - header_len
