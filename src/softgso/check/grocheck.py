"""An independent check of a coalesced capture (the bench's gate for ``softgso coalesce``): written from
the RFC layouts, sharing no code with softgso.gro.

For classic pcaps of Ethernet [VLAN] IPv4/IPv6 TCP (no IP options or extension headers), IN the
segments and OUT what coalesce wrote: per flow (addresses and ports), OUT's TCP payloads, concatenated
in order, are IN's, with contiguous sequence numbers; every OUT packet's IP length field says its size,
its IPv4 header checksum verifies, and its TCP checksum either verifies (a segment left as it came) or
is the pseudo-header seed of its length (a coalesced packet, CHECKSUM_PARTIAL). Frames that are not
such TCP are compared as they are, in order.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .capdiff import ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6


def _records(data: bytes) -> list[bytes]:
    magic = data[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    frames, offset = [], 24
    while offset + 16 <= len(data):
        caplen = struct.unpack_from(order + "I", data, offset + 8)[0]
        frames.append(data[offset + 16 : offset + 16 + caplen])
        offset += 16 + caplen
    return frames


def _sum16(data: bytes, start: int = 0) -> int:
    if len(data) & 1:
        data += b"\0"
    total = start + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


@dataclass
class _Tcp:
    flow: bytes
    seq: int
    payload: bytes
    problem: str = ""


def _parse(frame: bytes) -> _Tcp | None:
    offset = 12
    ethertype = struct.unpack_from("!H", frame, offset)[0] if len(frame) >= 14 else 0
    while ethertype in (ETH_P_8021Q, ETH_P_8021AD) and len(frame) >= offset + 6:
        offset += 4
        ethertype = struct.unpack_from("!H", frame, offset)[0]
    ip = offset + 2
    if ethertype == ETH_P_IP and len(frame) >= ip + 20 and frame[ip] == 0x45 and frame[ip + 9] == 6:
        tcp = ip + 20
        length = struct.unpack_from("!H", frame, ip + 2)[0] or len(frame) - ip  # 0: IPv4 BIG TCP
        pseudo = frame[ip + 12 : ip + 20]
        addresses = pseudo
        problem = "" if _sum16(frame[ip:tcp]) == 0xFFFF else "IPv4 header checksum"
        l4_len = len(frame) - tcp
        if length != len(frame) - ip:
            problem = problem or "IPv4 total length"
        pseudo_sum = _sum16(pseudo, 6 + (l4_len >> 16) + (l4_len & 0xFFFF))
    elif ethertype == ETH_P_IPV6 and len(frame) >= ip + 40 and frame[ip + 6] == 6:
        tcp = ip + 40
        length = struct.unpack_from("!H", frame, ip + 4)[0]
        addresses = frame[ip + 8 : ip + 40]
        l4_len = len(frame) - tcp
        problem = "" if length == l4_len else "IPv6 payload length"
        pseudo_sum = _sum16(addresses, 6 + (l4_len >> 16) + (l4_len & 0xFFFF))
    else:
        return None
    if len(frame) < tcp + 20:
        return None
    doff = (frame[tcp + 12] >> 4) * 4
    stored = struct.unpack_from("!H", frame, tcp + 16)[0]
    verifies = _sum16(frame[tcp:], pseudo_sum) == 0xFFFF
    if not verifies and stored != pseudo_sum:
        problem = problem or "TCP checksum neither complete nor the pseudo-header seed"
    flow = bytes(addresses) + frame[tcp : tcp + 4]
    return _Tcp(flow, struct.unpack_from("!I", frame, tcp + 4)[0], frame[tcp + doff :], problem)


@dataclass
class CoalesceCheck:
    """The verdict: ``ok`` when no problem was found."""

    packets_in: int = 0
    packets_out: int = 0
    coalesced: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "packets_in": self.packets_in, "packets_out": self.packets_out,
                "coalesced": self.coalesced, "problems": len(self.problems), "first_problems": self.problems[:5]}


def check_coalesced(in_path: Path, out_path: Path) -> CoalesceCheck:
    """Check ``out_path`` as the GRO of ``in_path`` (see the module)."""
    report = CoalesceCheck()
    given: dict[bytes, list[bytes]] = defaultdict(list)
    others_in: list[bytes] = []
    first_seq: dict[bytes, int] = {}
    frames_in = _records(Path(in_path).read_bytes())
    report.packets_in = len(frames_in)
    for frame in frames_in:
        parsed = _parse(frame)
        if parsed is None:
            others_in.append(frame)
            continue
        first_seq.setdefault(parsed.flow, parsed.seq)
        given[parsed.flow].append(parsed.payload)
    got: dict[bytes, list[bytes]] = defaultdict(list)
    others_out: list[bytes] = []
    next_seq: dict[bytes, int] = {}
    frames_out = _records(Path(out_path).read_bytes())
    report.packets_out = len(frames_out)
    for number, frame in enumerate(frames_out, 1):
        parsed = _parse(frame)
        if parsed is None:
            others_out.append(frame)
            continue
        if parsed.problem:
            report.problems.append(f"packet {number}: {parsed.problem}")
        expected = next_seq.get(parsed.flow, first_seq.get(parsed.flow))
        if expected is not None and parsed.payload and parsed.seq != expected:
            report.problems.append(f"packet {number}: sequence {parsed.seq}, expected {expected}")
        next_seq[parsed.flow] = (parsed.seq + len(parsed.payload)) & 0xFFFFFFFF
        got[parsed.flow].append(parsed.payload)
    for flow in given.keys() | got.keys():
        if b"".join(given[flow]) != b"".join(got[flow]):
            report.problems.append(f"a flow's payload differs ({len(given[flow])} segments in, {len(got[flow])} out)")
        report.coalesced += max(0, len(given[flow]) - len(got[flow]))
    if others_in != others_out:
        report.problems.append("frames other than TCP differ")
    return report
