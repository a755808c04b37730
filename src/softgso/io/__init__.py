"""Capture files in and out: streaming pcap/pcapng reading, atomic writing, link types to and from Ethernet.

The public surface (everything else in this package may move):

    open_capture(path) -> CaptureReader
        ``path`` a file, a FIFO or ``-`` (standard input): read front to back, never seeked;
        gzip or zstd (told by the magic) is decompressed as it is read (``compression``).
        Context manager and iterator of CaptureRecord, one at a time, read in 1 MiB chunks;
        record data are memoryviews that stay valid after the reader moves on. Attributes:
        ``format`` ("pcap" | "pcapng"), ``interfaces`` (list of Interface), ``linktypes``,
        ``nanosecond``, ``byte_order`` ("little" | "big"), ``comment`` (pcapng SHB), ``path``,
        ``compression`` ("gzip" | "zstd" | None), ``bytes_read`` and ``file_size`` (for a progress
        bar; 0 when not known: a pipe, a compressed file).
    open_writer(path, like=None, *, format=None, linktype=None, nanosecond=None, byte_order=None,
                snaplen=None, fsync=True) -> CaptureWriter
        Atomic: writes ``.OUT.XXXX.tmp`` beside OUT and replaces OUT on a clean ``close()`` / ``with``
        exit; an exception (or ``abort()``) removes it and leaves OUT untouched (``-``: standard
        output, streamed, not atomic). Shaped like
        ``like`` unless told otherwise: same format, byte order and resolution (pcap), same SHB and
        IDBs (pcapng). ``write(record, data=None)`` writes a record (or ``data`` with the record's
        timestamp, interface and comment); ``write_record(timestamp_ns, parts, orig_len=None, *,
        interface_id=0, comment=None, linktype=None)`` writes ``parts`` with os.writev, unjoined.
    to_ethernet(record) -> EthernetView | None
        The record as an Ethernet frame (``.frame``): Ethernet as is; Linux cooked SLL/SLL2 (any
        ARPHRD type), NULL/LOOP, raw IP (12, 14, 101), IPV4 (228) and IPV6 (229) with a synthetic
        header (MACs zero, or the cooked header's Ethernet address as source; ethertype = the L3
        protocol). None when the record names no L3 protocol an ethertype can say (a cooked
        protocol below 0x0600, a NULL family that is not IP, a raw version nibble not 4 or 6);
        UnknownLinkTypeError (a CaptureError carrying ``.record``) for other link types.
    from_ethernet(frame, like) -> bytes, from_ethernet_parts(frame, like) -> tuple of pieces
        An output frame back in ``like``'s link type: ``like``'s link-layer header kept byte for
        byte except what names the protocol, which follows the frame's ethertype.
        UnrepresentableFrameError (a CaptureError with ``.record`` and ``.ethertype``) when the
        link type cannot carry that ethertype (MPLS on NULL or raw IP, IPv6 on IPV4...).
    link_payload_length(record) -> int | None
        The bytes after the record's link-layer header (its L3 size as captured), for every link
        type above and for PPP, PPP_HDLC, C_HDLC and NFLOG, which are not converted; None when
        not known.
    LINKTYPE_* constants (LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, ...), LINKTYPE_NAMES.

Errors: CaptureError for files that cannot be opened as captures (bad magic); its subclass
RecordError (``.index`` 0-based, ``.offset`` in bytes) for a file broken at a record: every
record before it has been yielded; a length no kernel frame has (over GSO_MAX_SIZE + 256 bytes, see
``record.MAX_RECORD_LEN``) is one such break, raised before anything is read for it. Snapped
records (caplen < orig_len) are yielded, with ``record.truncated`` true.
"""

from __future__ import annotations

from .. import names_on_first_use

TYPE_CHECKING = False  # typing costs start-up milliseconds; mypy reads this name as typing's
if TYPE_CHECKING:
    from .cooked import (
        EthernetView,
        ethernet_view,
        from_ethernet,
        from_ethernet_parts,
        link_payload_length,
        to_ethernet,
    )
    from .reader import open_capture
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
        Interface,
        RecordError,
        UnknownLinkTypeError,
        UnrepresentableFrameError,
    )
    from .source import CaptureReader
    from .writer import CaptureWriter, open_writer

# each public name and the module that defines it: loaded on first use (PEP 562), so that a plain
# ``softgso segment`` imports only the modules it uses (softgso.io.outfile first, for its head start)
_HOMES = {
    **dict.fromkeys((
        "EthernetView", "ethernet_view", "from_ethernet", "from_ethernet_parts",
        "link_payload_length", "to_ethernet",
    ), "cooked"),
    "open_capture": "reader",
    **dict.fromkeys((
        "LINKTYPE_C_HDLC", "LINKTYPE_ETHERNET", "LINKTYPE_IPV4", "LINKTYPE_IPV6",
        "LINKTYPE_LINUX_SLL", "LINKTYPE_LINUX_SLL2", "LINKTYPE_LOOP", "LINKTYPE_NAMES",
        "LINKTYPE_NFLOG", "LINKTYPE_NULL", "LINKTYPE_PPP", "LINKTYPE_PPP_HDLC", "LINKTYPE_RAW",
        "LINKTYPE_RAW_12", "LINKTYPE_RAW_14", "CaptureRecord", "Interface", "RecordError",
        "UnknownLinkTypeError", "UnrepresentableFrameError",
    ), "record"),
    "CaptureReader": "source",
    **dict.fromkeys(("CaptureWriter", "open_writer"), "writer"),
}


__getattr__, __dir__ = names_on_first_use(__name__, _HOMES, globals())


__all__ = [
    "LINKTYPE_C_HDLC",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_LOOP",
    "LINKTYPE_NAMES",
    "LINKTYPE_NFLOG",
    "LINKTYPE_NULL",
    "LINKTYPE_PPP",
    "LINKTYPE_PPP_HDLC",
    "LINKTYPE_RAW",
    "LINKTYPE_RAW_12",
    "LINKTYPE_RAW_14",
    "CaptureReader",
    "CaptureRecord",
    "CaptureWriter",
    "EthernetView",
    "Interface",
    "RecordError",
    "UnknownLinkTypeError",
    "UnrepresentableFrameError",
    "from_ethernet",
    "from_ethernet_parts",
    "link_payload_length",
    "open_capture",
    "open_writer",
    "to_ethernet",
    "ethernet_view",
]
