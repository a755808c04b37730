"""softgso.check.capdiff: what two frames differ in, field by field.

compare_frames answers a pair that differs in checksum fields alone (a frame sent whole, its checksum
filled) without decoding either frame; every answer must be the one decoding both whole gives
(decoded_differences), whatever the frame and whichever of its bytes differ.
"""

from __future__ import annotations

import dataclasses
import struct

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from softgso.check.capdiff import compare_frames, decoded_differences
from softgso.check.synth import build_frame
from softgso.constants import ETH_P_MPLS_UC
from strategies import GsoCase, gso_cases

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def frame_of(case: GsoCase, short: bool) -> bytes:
    """The case's packet as a capture holds it (tags and labels in the bytes), or a short one of its
    headers (an ACK: no payload)."""
    spec = dataclasses.replace(case.spec, payload=b"") if short else case.spec
    frame = build_frame(spec)
    if case.labels:
        stack = b"".join(struct.pack("!I", (label << 12) | (tc << 9) | (1 << 8 if i == len(case.labels) - 1 else 0) | ttl)
                         for i, (label, tc, ttl) in enumerate(case.labels))
        frame = frame[:12] + ETH_P_MPLS_UC.to_bytes(2, "big") + stack + frame[14:]
    if case.vlan:
        frame = frame[:12] + struct.pack("!HH", 0x8100, case.vlan[0] | case.vlan[1] << 13) + frame[12:]
    return frame


def checksum_offsets(frame: bytes) -> list[int]:
    """Where an IPv4 header checksum and a TCP/UDP checksum lie, as far as the test's own walk finds them
    (Ethernet, one VLAN tag; none under labels)."""
    at = 14
    ethertype = int.from_bytes(frame[12:14], "big")
    if ethertype == 0x8100:
        ethertype, at = int.from_bytes(frame[16:18], "big"), 18
    if ethertype == 0x0800:
        transport = at + (frame[at] & 0x0F) * 4
        return [at + 10, transport + (16 if frame[at + 9] == 6 else 6)]
    if ethertype == 0x86DD:
        return [at + 40 + 16, at + 40 + 6]  # (TCP's, or UDP's, where no extension header is there)
    return []


@SETTINGS
@given(st.one_of(gso_cases(max_payload=3000, udp=False, labels=False), gso_cases(max_payload=3000)), st.booleans(),
       st.data())
def test_compare_frames_says_what_decoding_both_frames_whole_says(case: GsoCase, short: bool,
                                                                  data: st.DataObject) -> None:
    a = frame_of(case, short)
    b = bytearray(a)
    offsets = checksum_offsets(a)
    for at in offsets:
        if at + 2 <= len(b) and data.draw(st.booleans(), label=f"checksum at {at} changed"):
            b[at : at + 2] = data.draw(st.binary(min_size=2, max_size=2))
    if data.draw(st.integers(0, 3), label="another byte changed") == 0:
        at = data.draw(st.integers(0, len(b) - 1))
        b[at] ^= data.draw(st.integers(1, 255))
    if bytes(b) == a:
        assert compare_frames(a, bytes(b)) == []
        return
    differences = compare_frames(a, bytes(b))
    event("checksums only" if {d.name for d in differences} <= {"IPv4 checksum", "TCP checksum"} else "other fields")
    assert differences == decoded_differences(a, bytes(b))
