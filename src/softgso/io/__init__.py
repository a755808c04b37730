"""Capture files in and out: streaming pcap/pcapng reading, atomic writing, cooked-header conversion.

The public surface (everything else in this package may move):

    open_capture(path) -> CaptureReader
        ``path`` a file, a FIFO or ``-`` (standard input): read front to back, never seeked.
        Context manager and iterator of CaptureRecord, one at a time, read in 1 MiB chunks;
        record data are memoryviews that stay valid after the reader moves on. Attributes:
        ``format`` ("pcap" | "pcapng"), ``interfaces`` (list of Interface), ``linktypes``,
        ``nanosecond``, ``byte_order`` ("little" | "big"), ``comment`` (pcapng SHB), ``path``,
        ``bytes_read`` and ``file_size`` (for a progress bar).
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
        The record as an Ethernet frame (``.frame``): Ethernet as is, SLL/SLL2 with a synthetic
        header; None for what is not Ethernet (loopback, non-ethertype cooked records);
        UnknownLinkTypeError (a CaptureError carrying ``.record``) for other link types.
    from_ethernet(frame, like) -> bytes, from_ethernet_parts(frame, like) -> tuple of pieces
        An output frame back in ``like``'s link type (cooked header rebuilt from ``like``).

Errors: CaptureError for files that cannot be opened as captures (bad magic); its subclass
RecordError (``.index`` 0-based, ``.offset`` in bytes) for a file broken at a record: every
record before it has been yielded; a length no kernel frame has (over GSO_MAX_SIZE + 256 bytes, see
``record.MAX_RECORD_LEN``) is one such break, raised before anything is read for it. Snapped
records (caplen < orig_len) are yielded, with ``record.truncated`` true.
"""

from .cooked import EthernetView, from_ethernet, from_ethernet_parts, to_ethernet
from .reader import open_capture
from .record import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    CaptureRecord,
    Interface,
    RecordError,
    UnknownLinkTypeError,
)
from .source import CaptureReader
from .writer import CaptureWriter, open_writer

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "CaptureReader",
    "CaptureRecord",
    "CaptureWriter",
    "EthernetView",
    "Interface",
    "RecordError",
    "UnknownLinkTypeError",
    "from_ethernet",
    "from_ethernet_parts",
    "open_capture",
    "open_writer",
    "to_ethernet",
]
