"""What every capture format reads into and writes from: records, interfaces, limits, errors.

Timestamps are integer nanoseconds since the epoch (``timestamp_ns``). A file's own units
(microseconds, nanoseconds, pcapng's ``if_tsresol`` powers of 10 or of 2) convert to nanoseconds
and back with :func:`ticks_to_ns` / :func:`ns_to_ticks`, which round so that a record read from a
file is written back in that file's resolution with the very same tick count (exact for every
resolution up to 1 ns and for 2^-k with k <= 29; finer resolutions are floored to 1 ns).
"""

from __future__ import annotations

from ..errors import CaptureError
from ..valueclass import ValueClass

# Link types, named as in the tcpdump.org LINKTYPE_ list.
LINKTYPE_NULL = 0  # BSD loopback: a 4-byte address family in the capturing host's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_PPP = 9
# DLT_RAW is 12 on most platforms and 14 on OpenBSD; old files carry either value (libpcap reads
# both as LINKTYPE_RAW).
LINKTYPE_RAW_12 = 12
LINKTYPE_RAW_14 = 14
LINKTYPE_PPP_HDLC = 50
LINKTYPE_RAW = 101  # raw IPv4 or IPv6, told apart by the version nibble
LINKTYPE_C_HDLC = 104  # Cisco HDLC
LINKTYPE_LOOP = 108  # OpenBSD loopback: LINKTYPE_NULL's header in network byte order
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_NFLOG = 239
LINKTYPE_LINUX_SLL2 = 276

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "NULL", LINKTYPE_ETHERNET: "Ethernet", LINKTYPE_PPP: "PPP", LINKTYPE_RAW_12: "raw IP (12)",
    LINKTYPE_RAW_14: "raw IP (14)", LINKTYPE_PPP_HDLC: "PPP_HDLC", LINKTYPE_RAW: "RAW", LINKTYPE_C_HDLC: "C_HDLC",
    LINKTYPE_LOOP: "LOOP", LINKTYPE_LINUX_SLL: "Linux cooked SLL", LINKTYPE_IPV4: "IPV4", LINKTYPE_IPV6: "IPV6",
    LINKTYPE_NFLOG: "NFLOG", LINKTYPE_LINUX_SLL2: "Linux cooked SLL2",
}

# The longest packet Linux builds: GSO_MAX_SIZE (8 * GSO_MAX_SEGS = 524280 bytes, the BIG TCP limit of
# include/linux/netdevice.h; dev->gso_max_size and tso_max_size are capped there). A capture may add
# link-layer framing the skb did not count (a cooked SLL2 header, radiotap, an FCS): MAX_LINK_FRAMING
# bytes. A record longer than the sum is a corrupt or hostile file, never a packet, and is refused
# before any of its bytes are read (no allocation in proportion to a claimed length).
GSO_MAX_SIZE = 524280
MAX_LINK_FRAMING = 256
MAX_RECORD_LEN = GSO_MAX_SIZE + MAX_LINK_FRAMING
# libpcap and Wireshark accept records up to this length whatever the file's snaplen says
# (libpcap's max_snaplen_for_dlt, Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD).
MAX_SNAPLEN_STANDARD = 262144

NS_PER_SECOND = 1_000_000_000

# a record's or interface's fcs_len when the file says frames end in an FCS but not in whole bytes
# (a pcapng if_fcslen, in bits, that is no multiple of 8)
FCS_LEN_UNKNOWN = -1


class CaptureRecord(ValueClass):
    """One packet record as read from (or to be written to) a capture file.

    ``data`` may be a memoryview into the reader's buffer; it stays valid after the reader moves
    on (buffers are never reused), so it can be kept or handed to a writer without copying.
    """

    __slots__ = ("index", "timestamp_ns", "linktype", "data", "orig_len", "interface_id", "comment", "block", "fcs_len")

    index: int  # 0-based position among the file's packet records
    timestamp_ns: int  # nanoseconds since the epoch
    linktype: int
    data: bytes | memoryview  # the captured bytes (caplen of them)
    orig_len: int  # the packet's length on the wire; more than len(data) when snapped
    interface_id: int  # index into the reader's ``interfaces``
    comment: str | None  # pcapng opt_comment
    # pcapng: the record's whole Enhanced or Simple Packet Block, options and padding byte for byte,
    # when a writer shaped like its reader may write it back as it is (the file's first section)
    block: bytes | memoryview | None
    # bytes of Frame Check Sequence that end ``data`` (and orig_len) on the wire, as the file declares
    # them (0: none; FCS_LEN_UNKNOWN: an FCS of a length the file does not give in whole bytes)
    fcs_len: int

    def __init__(self, index: int, timestamp_ns: int, linktype: int, data: bytes | memoryview,
                 orig_len: int, interface_id: int = 0, comment: str | None = None,
                 block: bytes | memoryview | None = None, fcs_len: int = 0) -> None:
        self.index = index
        self.timestamp_ns = timestamp_ns
        self.linktype = linktype
        self.data = data
        self.orig_len = orig_len
        self.interface_id = interface_id
        self.comment = comment
        self.block = block
        self.fcs_len = fcs_len

    @property
    def truncated(self) -> bool:
        """The capture kept fewer bytes than the packet had (caplen < orig_len)."""
        return len(self.data) < self.orig_len


class Interface(ValueClass):
    """A capture interface: the pcap file header, or one pcapng Interface Description Block."""

    __slots__ = ("linktype", "snaplen", "ticks_per_second", "tsoffset_s", "name", "block", "byte_order", "fcs_len")

    linktype: int
    snaplen: int
    ticks_per_second: int  # 10**6 for microseconds, 10**9 for nanoseconds, 2**k for if_tsresol 2^-k
    tsoffset_s: int  # pcapng if_tsoffset: seconds added to every timestamp
    name: str | None  # pcapng if_name
    block: bytes | None  # the original pcapng IDB, written back unchanged when byte orders match
    byte_order: str  # of ``block``
    fcs_len: int  # bytes of FCS at the end of every frame (0: none; FCS_LEN_UNKNOWN: not whole bytes)

    def __init__(self, linktype: int, snaplen: int, ticks_per_second: int, tsoffset_s: int = 0,
                 name: str | None = None, block: bytes | None = None, byte_order: str = "little",
                 fcs_len: int = 0) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.ticks_per_second = ticks_per_second
        self.tsoffset_s = tsoffset_s
        self.name = name
        self.block = block
        self.byte_order = byte_order
        self.fcs_len = fcs_len


def ticks_to_ns(ticks: int, ticks_per_second: int) -> int:
    """A timestamp in 1/ticks_per_second units as integer nanoseconds (floored)."""
    if ticks_per_second == NS_PER_SECOND:
        return ticks
    if NS_PER_SECOND % ticks_per_second == 0:
        return ticks * (NS_PER_SECOND // ticks_per_second)
    return ticks * NS_PER_SECOND // ticks_per_second


def ns_to_ticks(timestamp_ns: int, ticks_per_second: int) -> int:
    """Integer nanoseconds in 1/ticks_per_second units, the exact inverse of :func:`ticks_to_ns`.

    Decimal resolutions floor (as tcpdump truncates); other resolutions round up, because
    ``ticks_to_ns`` floored and ceil undoes that floor whenever one tick is longer than 1 ns.
    """
    if ticks_per_second == NS_PER_SECOND:
        return timestamp_ns
    if NS_PER_SECOND % ticks_per_second == 0:
        return timestamp_ns // (NS_PER_SECOND // ticks_per_second)
    return -(-timestamp_ns * ticks_per_second // NS_PER_SECOND)


class RecordError(CaptureError):
    """A capture file broken at one record: says which (0-based index) and where (byte offset)."""

    def __init__(self, reason: str, *, path: str, index: int, offset: int) -> None:
        self.index = index
        self.offset = offset
        super().__init__(f"frame {index + 1} (at byte offset {offset}): {reason}", where=path)


class UnknownLinkTypeError(CaptureError):
    """A record whose link type softgso cannot turn into Ethernet; ``record`` holds its bytes."""

    def __init__(self, record: CaptureRecord) -> None:
        self.linktype = record.linktype
        self.record = record
        name = LINKTYPE_NAMES.get(record.linktype)
        what = f"link type {record.linktype} ({name}) is not converted" if name else f"unknown link type {record.linktype}"
        super().__init__(
            f"frame {record.index + 1}: {what} (softgso reads Ethernet 1, NULL 0, LOOP 108, "
            "raw IP 12/14/101/228/229, Linux cooked SLL 113 and SLL2 276)"
        )


class UnrepresentableFrameError(CaptureError):
    """An output frame whose ethertype the record's link type has no way to carry (MPLS on NULL...).

    ``record`` is the input record whose link type the frame was to be written in, ``ethertype``
    the output frame's.
    """

    def __init__(self, record: CaptureRecord, ethertype: int, *, carries: str) -> None:
        self.linktype = record.linktype
        self.record = record
        self.ethertype = ethertype
        name = LINKTYPE_NAMES.get(record.linktype, str(record.linktype))
        # what is wrong, without the frame: a report that names the frame already says it with this
        self.problem = (f"the {name} link type ({record.linktype}) cannot carry ethertype 0x{ethertype:04x} "
                        f"(it carries {carries} only)")
        super().__init__(f"frame {record.index + 1}: {self.problem}")
