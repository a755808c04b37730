"""Frames that end in a Frame Check Sequence (a pcap link-type field's FCS bits, a pcapng interface's
if_fcslen, a packet's epb_flags).

The stack never holds an FCS: a NIC appends it on transmit and strips it on receive unless told to
keep it (NETIF_F_RXFCS). So such a frame is segmented as the stack would have it, its FCS off, and
each frame written in its place ends in an FCS of its own, as the file's header says every frame
does; a frame that goes out as it came keeps its record, FCS and all. An FCS is made only where it
can be made right: Ethernet's CRC-32, over a frame whose own FCS checks.
"""

from __future__ import annotations

import zlib

from .record import FCS_LEN_UNKNOWN, LINKTYPE_ETHERNET, CaptureRecord

# the report kind of a record passed through because no FCS could be made right for what it became
FCS_NOT_MADE = "FCS not made"

# IEEE 802.3 clause 3.2.9: the CRC-32 of the frame from the destination address on, sent least
# significant byte first (the bytes a capture that keeps the FCS holds)
ETHERNET_FCS_LEN = 4


def without_fcs(record: CaptureRecord) -> CaptureRecord:
    """The record as the stack has its frame: its FCS off, the wire length without it (the record
    itself when it has none, or an FCS of a length the file does not give in bytes)."""
    fcs_len = record.fcs_len
    if fcs_len <= 0:
        return record
    frame_len = max(record.orig_len - fcs_len, 0)
    data = record.data[:frame_len] if len(record.data) > frame_len else record.data
    return CaptureRecord(record.index, record.timestamp_ns, record.linktype, data, frame_len,
                         record.interface_id, record.comment)


def fcs_problem(record: CaptureRecord, out_fcs_len: int) -> str | None:
    """Why frames written in place of ``record`` (a record whose frame ends in an FCS) cannot be given
    the ``out_fcs_len`` bytes of FCS their file says they end in, right; None when they can."""
    fcs_len = record.fcs_len
    if FCS_LEN_UNKNOWN in (fcs_len, out_fcs_len):
        return "its frame ends in an FCS whose length the file does not give in bytes: no FCS made for its result"
    if record.linktype != LINKTYPE_ETHERNET or fcs_len != ETHERNET_FCS_LEN or out_fcs_len != ETHERNET_FCS_LEN:
        return (f"its frame ends in a {fcs_len}-byte FCS on link type {record.linktype}: softgso makes Ethernet's "
                "4-byte CRC-32 only")
    data = record.data
    if len(data) < fcs_len:
        return f"its frame ({len(data)} bytes) is shorter than its {fcs_len}-byte FCS"
    stored = int.from_bytes(data[-fcs_len:], "little")
    computed = zlib.crc32(data[:-fcs_len])
    if stored != computed:
        return (f"its FCS 0x{stored:08x} is not the frame's CRC-32 (0x{computed:08x}): a frame damaged on the wire")
    return None


def stack_record(record: CaptureRecord) -> tuple[CaptureRecord, str | None]:
    """(the record without its FCS, :func:`fcs_problem` of its own FCS): what a reader that only
    looks (inspect, diff) takes of a record whose frame ends in an FCS."""
    return without_fcs(record), fcs_problem(record, record.fcs_len)


def with_fcs(frame: bytes | bytearray | memoryview) -> bytes:
    """``frame`` followed by its Ethernet FCS."""
    return bytes(frame) + zlib.crc32(frame).to_bytes(ETHERNET_FCS_LEN, "little")
