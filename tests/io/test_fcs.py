"""softgso.io.fcs: a frame's FCS taken off as the stack has it, and made anew where it can be made right."""

from __future__ import annotations

import pytest

from softgso.io.fcs import fcs_problem, with_fcs, without_fcs
from softgso.io.record import FCS_LEN_UNKNOWN, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, CaptureRecord


def test_the_fcs_is_the_ieee_crc32_least_significant_byte_first() -> None:
    # the CRC-32 check value of IEEE 802.3's polynomial over "123456789" is 0xCBF43926
    assert with_fcs(b"123456789")[-4:] == bytes.fromhex("2639f4cb")


def _record(data: bytes, fcs_len: int, orig_len: int | None = None, linktype: int = LINKTYPE_ETHERNET) -> CaptureRecord:
    return CaptureRecord(7, 1000, linktype, data, len(data) if orig_len is None else orig_len, 2, "note",
                         b"block", fcs_len)


def test_without_fcs_takes_the_last_bytes_off_the_data_and_the_wire_length() -> None:
    frame = bytes(range(64))
    stack = without_fcs(_record(with_fcs(frame), 4))
    assert (bytes(stack.data), stack.orig_len, stack.fcs_len, stack.block) == (frame, 64, 0, None)
    assert (stack.index, stack.timestamp_ns, stack.interface_id, stack.comment) == (7, 1000, 2, "note")


def test_a_snapped_record_keeps_what_was_kept_and_its_wire_length_loses_the_fcs() -> None:
    stack = without_fcs(_record(bytes(40), 4, orig_len=1518))
    assert (len(stack.data), stack.orig_len) == (40, 1514)


def test_a_record_without_a_known_fcs_length_is_left_as_it_is() -> None:
    record = _record(bytes(64), FCS_LEN_UNKNOWN)
    assert without_fcs(record) is record


def test_an_fcs_that_checks_can_be_made_for_the_frames_in_its_place() -> None:
    assert fcs_problem(_record(with_fcs(bytes(60)), 4), 4) is None


@pytest.mark.parametrize(("record", "out_fcs_len", "words"), [
    (_record(with_fcs(bytes(60))[:-1] + b"\0", 4), 4, "is not the frame's CRC-32"),
    (_record(bytes(62), 2), 2, "2-byte FCS"),
    (_record(with_fcs(bytes(60)), 4, linktype=LINKTYPE_LINUX_SLL), 4, "link type 113"),
    (_record(bytes(64), FCS_LEN_UNKNOWN), FCS_LEN_UNKNOWN, "not give in bytes"),
    (_record(bytes(3), 4), 4, "shorter than its 4-byte FCS"),
])
def test_no_fcs_is_made_where_it_cannot_be_right(record: CaptureRecord, out_fcs_len: int, words: str) -> None:
    problem = fcs_problem(record, out_fcs_len)
    assert problem is not None and words in problem
