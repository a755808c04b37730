"""An independent check of a segmented capture: the bench's gate before a tool's time counts.

It shares no code with the engine: its own record walk, header parse and ones'-complement sums
(numpy, many segments at a time). Given the input capture and a tool's output it checks:

* every output frame is Ethernet (VLAN tags, an MPLS label stack), or Linux cooked SLL/SLL2, NULL/LOOP
  or raw IP, over IPv4 or IPv6 over TCP or UDP, or such a packet inside a tunnel (VXLAN on UDP
  4789/8472, VXLAN-GPE on 4790 and Geneve on 6081 carrying Ethernet or IP, FOU and GUE on the ports
  the caller names carrying IP-in-IP or GRE, GRE and gretap with their checksum, key and sequence
  options, IP-in-IP), and
  fits the MTU (everything after the Ethernet header and tags, labels and outer headers included);
* a tunnel's outer headers: outer IPv4 header checksum and total length, IPv6 payload length,
  outer UDP length and checksum (0: none), GRE checksum; then the inner packet is checked as any
  other (its lengths, checksums, flow and payload continuity);
* IPv4 header checksums, IPv4 total and IPv6 payload lengths, UDP lengths;
* every TCP and UDP checksum (pseudo-header included; a UDP checksum of 0 over IPv4 means none);
* per flow, that the segments carry the input's payload in order: each TCP segment starts where
  the one before it ended, or at the next input packet's sequence number once that packet's bytes
  are used up; no segment runs past its input packet's bytes; none are missing at the end;
* the packet count: each input packet whose IP datagram and labels exceed the MTU becomes
  ceil(payload / size) packets, size being the MTU less labels, L3 and L4 headers; others one.

Made for the bench's inputs (no IPv4 fragments; IPv6 extension headers walked, as an ip6tnl
device's encapsulation limit needs); anything it cannot parse is a problem, never skipped.
"""

from __future__ import annotations

import mmap
import struct
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_TAGS = (0x8100, 0x88A8)
_MPLS = (0x8847, 0x8848)
_IPV4, _IPV6 = 0x0800, 0x86DD
_TCP, _UDP = 6, 17
# tunnels, by the check's own reading: UDP ports (IANA's and Linux's VXLAN default), GRE, IP-in-IP
_UDP_TUNNELS = {4789: "VXLAN", 8472: "VXLAN", 4790: "VXLAN-GPE", 6081: "Geneve"}
_GPE_NEXT = {1: 0x0800, 2: 0x86DD, 3: 0x6558}  # VXLAN-GPE next protocol -> ethertype
_GRE, _IPIP, _IPV6_IN_IP, _TEB = 47, 4, 41, 0x6558
_BATCH = 4096  # segments summed per numpy call
PROBLEMS_KEPT = 10


@dataclass
class _Frame:
    """One parsed frame: where its layers start and what the checks need."""

    offset: int  # of the frame in the file
    length: int
    labels: int
    l3: int  # offsets within the frame
    version: int
    l4: int
    proto: int
    l4_len: int
    flow: bytes
    seq: int
    payload: int
    net: int = -1  # the outermost IP header (a tunnel's outer one; else l3)
    # a tunnel: (kind "udp"/"gre"/"ip", outer IP version, outer IP offset, tunnel header offset, GRE checksum present)
    outer: tuple[str, int, int, int, bool] | None = None

    @property
    def mtu_bytes(self) -> int:
        """What counts toward the MTU: the (outermost) IP datagram and the labels above it."""
        return self.length - (self.l3 if self.net < 0 else self.net) + 4 * self.labels


@dataclass
class CaptureCheck:
    """What the check found: counts, and the first problems (all of them counted)."""

    packets_in: int = 0
    packets_out: int = 0
    expected_out: int = 0
    flows: int = 0
    problem_count: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append(text)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "packets_in": self.packets_in, "packets_out": self.packets_out,
                "expected_out": self.expected_out, "flows": self.flows, "problems": self.problem_count,
                "first_problems": self.problems}


def _records(data: Any) -> tuple[list[int], list[int], list[int]]:
    """Frame offsets, lengths and link types of a classic pcap (or a pcapng file: _blocks)."""
    magic = bytes(data[:4])
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        order = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = ">"
    elif magic == b"\x0a\x0d\x0d\x0a":
        return _blocks(data)
    else:
        raise ValueError("neither a classic pcap nor a pcapng file")
    caplen_at = struct.Struct(order + "8xI").unpack_from
    (linktype,) = struct.unpack_from(order + "20xI", data)
    offsets, lengths = [], []
    pos, end = 24, len(data)
    while pos + 16 <= end:
        (caplen,) = caplen_at(data, pos)
        if pos + 16 + caplen > end:
            raise ValueError(f"record at byte {pos} cut short")
        offsets.append(pos + 16)
        lengths.append(caplen)
        pos += 16 + caplen
    return offsets, lengths, [linktype & 0xFFFF] * len(offsets)


def _blocks(data: Any) -> tuple[list[int], list[int], list[int]]:
    """Frame offsets, lengths and link types of a pcapng file's Enhanced and Simple Packet Blocks
    (pcapng spec, draft-ietf-opsawg-pcapng): sections in either byte order; other blocks are stepped over."""
    offsets, lengths, links = [], [], []
    pos, end = 0, len(data)
    order = "<"
    snaplens: list[int] = []
    linktypes: list[int] = []
    while pos + 12 <= end:
        if bytes(data[pos : pos + 4]) == b"\x0a\x0d\x0d\x0a":
            order = "<" if bytes(data[pos + 8 : pos + 12]) == b"\x4d\x3c\x2b\x1a" else ">"
            snaplens, linktypes = [], []
        block_type, length = struct.unpack_from(order + "II", data, pos)
        if length < 12 or length % 4 or pos + length > end:
            raise ValueError(f"block at byte {pos} broken or cut short")
        if block_type == 1:
            linktype, _, snaplen = struct.unpack_from(order + "HHI", data, pos + 8)
            linktypes.append(linktype)
            snaplens.append(snaplen)
        elif block_type == 6:
            interface, _, _, caplen = struct.unpack_from(order + "IIII", data, pos + 8)
            if interface >= len(snaplens) or 32 + caplen > length:
                raise ValueError(f"packet block at byte {pos} names no interface or overruns its block")
            offsets.append(pos + 28)
            lengths.append(caplen)
            links.append(linktypes[interface])
        elif block_type == 3:
            (orig_len,) = struct.unpack_from(order + "I", data, pos + 8)
            caplen = min(orig_len, length - 16, snaplens[0] if snaplens and snaplens[0] else orig_len)
            offsets.append(pos + 12)
            lengths.append(caplen)
            links.append(linktypes[0] if linktypes else -1)
        elif block_type == 2:
            raise ValueError(f"obsolete packet block at byte {pos}")
        pos += length
    return offsets, lengths, links


# link types other than Ethernet (the tcpdump.org LINKTYPE_ list): where the L3 header starts, and
# the ethertype their header names (SLL, SLL2: a protocol field; NULL/LOOP: an address family in
# either byte order; raw IP: the version nibble)
_FAMILIES = {2: _IPV4, 10: _IPV6, 24: _IPV6, 28: _IPV6, 30: _IPV6}


def _link_l3(frame: Any, length: int, linktype: int) -> tuple[int, int] | str:
    """(L3 offset, ethertype) of a frame of a link type other than Ethernet, or why there is none."""
    if linktype == 113 and length >= 16:
        return 16, int.from_bytes(frame[14:16], "big")
    if linktype == 276 and length >= 20:
        return 20, int.from_bytes(frame[0:2], "big")
    if linktype in (0, 108) and length >= 4:
        family = _FAMILIES.get(int.from_bytes(frame[0:4], "little")) or _FAMILIES.get(int.from_bytes(frame[0:4], "big"))
        return (4, family) if family else "no IP address family"
    if linktype in (12, 14, 101, 228, 229) and length >= 1:
        return 0, {4: _IPV4, 6: _IPV6}.get(frame[0] >> 4, 0)
    return f"link type {linktype} not read"


def _ip(frame: Any, l3: int, ethertype: int, length: int, where: str = "") -> tuple[int, int, int, Any] | str:
    """(version, L4 offset, protocol, addresses) of the IP header at ``l3``, whose packet must end
    with the frame, or why not."""
    if ethertype == _IPV4 and l3 + 20 <= length:
        ihl = (frame[l3] & 0x0F) * 4
        total = int.from_bytes(frame[l3 + 2 : l3 + 4], "big")
        if total != length - l3:
            return f"{where}IPv4 total length {total}, {length - l3} bytes there"
        if int.from_bytes(frame[l3 + 6 : l3 + 8], "big") & 0x3FFF:
            return f"{where}an IPv4 fragment"
        return 4, l3 + ihl, frame[l3 + 9], frame[l3 + 12 : l3 + 20]
    if ethertype == _IPV6 and l3 + 40 <= length:
        payload_len = int.from_bytes(frame[l3 + 4 : l3 + 6], "big")
        if payload_len != length - l3 - 40:
            return f"{where}IPv6 payload length {payload_len}, {length - l3 - 40} bytes there"
        proto, l4 = frame[l3 + 6], l3 + 40
        while proto in (0, 43, 60):  # hop-by-hop, routing, destination options (ip6tnl's encapsulation limit)
            if l4 + 8 > length:
                return f"{where}IPv6 extension header cut short"
            proto, l4 = frame[l4], l4 + (frame[l4 + 1] + 1) * 8
        return 6, l4, proto, frame[l3 + 8 : l3 + 40]
    return f"{where}not IPv4 or IPv6 (ethertype {ethertype:#06x})"


def _tunnel(frame: Any, l4: int, proto: int, length: int,
            udp_tunnels: dict[int, str]) -> tuple[tuple[str, int, bool], int, int] | str | None:
    """The tunnel behind an outer IP header whose L4 header is at ``l4``: (its kind, where its header
    starts, whether a GRE checksum is present), where the inner IP header starts and its ethertype;
    None for no tunnel, a string for one it cannot read."""
    inner_eth = -1
    if proto == _UDP and l4 + 8 <= length and int.from_bytes(frame[l4 + 2 : l4 + 4], "big") in udp_tunnels:
        kind = udp_tunnels[int.from_bytes(frame[l4 + 2 : l4 + 4], "big")]
        if int.from_bytes(frame[l4 + 4 : l4 + 6], "big") != length - l4:
            return f"outer UDP length {int.from_bytes(frame[l4 + 4 : l4 + 6], 'big')}, {length - l4} bytes there"
        header = l4 + 8
        if kind in ("FOU", "GUE"):
            return _fou(frame, kind, l4, header, length)
        if header + 8 > length:
            return f"{kind} header cut short"
        if kind == "VXLAN-GPE":
            ptype = _GPE_NEXT.get(frame[header + 3], 0)
            if ptype != _TEB:
                return ("udp", l4, False), header + 8, ptype
            inner_eth = header + 8
        elif kind == "VXLAN":
            if not frame[header] & 0x08:
                return "VXLAN header without its I flag"
            inner_eth = header + 8
        else:  # Geneve
            inner = header + 8 + (frame[header] & 0x3F) * 4
            ptype = int.from_bytes(frame[header + 2 : header + 4], "big")
            if ptype == _TEB:
                inner_eth = inner
            elif ptype in (_IPV4, _IPV6):
                return ("udp", l4, False), inner, ptype
            else:
                return f"Geneve carrying protocol {ptype:#06x}"
        outer = ("udp", l4, False)
    elif proto == _GRE and l4 + 4 <= length:
        gre = _gre(frame, l4, length)
        if isinstance(gre, str):
            return gre
        outer, inner, ptype = gre
        if ptype != _TEB:
            return outer, inner, ptype
        inner_eth = inner
    elif proto in (_IPIP, _IPV6_IN_IP):
        return ("ip", l4, False), l4, _IPV4 if proto == _IPIP else _IPV6
    else:
        return None
    return _inner_ethernet(frame, outer, inner_eth, length)


def _gre(frame: Any, gre: int, length: int) -> tuple[tuple[str, int, bool], int, int] | str:
    """A GRE header at ``gre``: ("gre", gre, C bit), where its payload starts, its protocol."""
    flags, ptype = int.from_bytes(frame[gre : gre + 2], "big"), int.from_bytes(frame[gre + 2 : gre + 4], "big")
    if flags & 0x4007:
        return "GRE with routing or a version other than 0"
    inner = gre + 4 + 4 * sum(1 for bit in (0x8000, 0x2000, 0x1000) if flags & bit)
    return ("gre", gre, bool(flags & 0x8000)), inner, ptype


def _inner_ethernet(frame: Any, outer: tuple[str, int, bool], inner_eth: int,
                    length: int) -> tuple[tuple[str, int, bool], int, int] | str:
    if inner_eth + 14 > length:
        return "inner Ethernet header cut short"
    at, ethertype = inner_eth + 12, int.from_bytes(frame[inner_eth + 12 : inner_eth + 14], "big")
    while ethertype in _TAGS and at + 6 <= length:
        at += 4
        ethertype = int.from_bytes(frame[at : at + 2], "big")
    return outer, at + 2, ethertype


def _fou(frame: Any, kind: str, udp: int, header: int,
         length: int) -> tuple[tuple[str, int, bool], int, int] | str:
    """FOU (the UDP payload is an IP packet or a GRE header) or GUE (a 4-byte header, its optional words,
    then the IP protocol it names): the outer UDP checksum covers everything; a GRE checksum inside
    is no shape Linux sends whole, but each packet's is checked as for GRE."""
    at, carried = header, -1
    if kind == "GUE":
        if header + 4 > length or frame[header] & 0xE0:
            return "GUE header cut short, or not a version 0 data message"
        at, carried = header + 4 + (frame[header] & 0x1F) * 4, frame[header + 1]
    elif at < length:
        carried = {4: _IPIP, 6: _IPV6_IN_IP}.get(frame[at] >> 4, _GRE)
    if at >= length:
        return f"{kind} payload cut short"
    if carried in (_IPIP, _IPV6_IN_IP):
        return ("udp", udp, False), at, _IPV4 if carried == _IPIP else _IPV6
    if carried != _GRE or at + 4 > length:
        return f"{kind} carrying IP protocol {carried}"
    gre = _gre(frame, at, length)
    if isinstance(gre, str):
        return gre
    (_, _, gre_csum), inner, ptype = gre
    if gre_csum:
        return f"a GRE checksum inside {kind}"
    outer = ("udp", udp, False)
    return (outer, inner, ptype) if ptype != _TEB else _inner_ethernet(frame, outer, inner, length)


def _parse(data: Any, offset: int, length: int, linktype: int = 1,
           udp_tunnels: dict[int, str] = _UDP_TUNNELS) -> _Frame | str:
    """The frame's layout, or why it has none the check knows."""
    frame = data[offset : offset + length]
    if linktype != 1:
        link = _link_l3(frame, length, linktype)
        if isinstance(link, str):
            return link
        at, ethertype = link[0] - 2, link[1]
    elif length < 14:
        return "shorter than an Ethernet header"
    else:
        at, ethertype = 12, int.from_bytes(frame[12:14], "big")
    while ethertype in _TAGS and at + 6 <= length:
        at += 4
        ethertype = int.from_bytes(frame[at : at + 2], "big")
    at += 2
    labels = 0
    if ethertype in _MPLS:
        while True:
            if at + 4 > length:
                return "label stack cut short"
            labels += 1
            bottom = frame[at + 2] & 1
            at += 4
            if bottom:
                break
        ethertype = {4: _IPV4, 6: _IPV6}.get(frame[at] >> 4 if at < length else 0, 0)
    l3 = net = at
    found = _ip(frame, l3, ethertype, length)
    if isinstance(found, str):
        return found
    version, l4, proto, addresses = found
    outer = None
    tunnel = _tunnel(frame, l4, proto, length, udp_tunnels)
    if isinstance(tunnel, str):
        return tunnel
    if tunnel is not None:
        # the checks below are the inner packet's; the outer headers are checked beside them
        (kind, header, gre_csum), l3, ethertype = tunnel
        outer = (kind, version, net, header, gre_csum)
        found = _ip(frame, l3, ethertype, length, "inside the tunnel: ")
        if isinstance(found, str):
            return found
        version, l4, proto, addresses = found
        if proto in (_GRE, _IPIP, _IPV6_IN_IP) or (proto == _UDP and l4 + 4 <= length and
                                                   int.from_bytes(frame[l4 + 2 : l4 + 4], "big") in udp_tunnels):
            return "a tunnel inside a tunnel"
    l4_len = length - l4
    if proto == _TCP and l4_len >= 20:
        header = (frame[l4 + 12] >> 4) * 4
        seq = int.from_bytes(frame[l4 + 4 : l4 + 8], "big")
    elif proto == _UDP and l4_len >= 8:
        header, seq = 8, 0
        if int.from_bytes(frame[l4 + 4 : l4 + 6], "big") != l4_len:
            return f"UDP length {int.from_bytes(frame[l4 + 4 : l4 + 6], 'big')}, {l4_len} bytes there"
    else:
        return f"not TCP or UDP (protocol {proto})"
    flow = bytes([proto]) + bytes(addresses) + bytes(frame[l4 : l4 + 4])
    return _Frame(offset, length, labels, l3, version, l4, proto, l4_len, flow, seq, l4_len - header, net, outer)


def _fold(sums: np.ndarray) -> np.ndarray:
    for _ in range(4):
        sums = (sums & 0xFFFF) + (sums >> 16)
    return sums


def _word_sums(array: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """The big-endian 16-bit word sums of ``length`` bytes from each start (an odd tail padded)."""
    rows = array[starts[:, None] + np.arange(length)]
    if length % 2:
        rows = np.concatenate([rows, np.zeros((len(rows), 1), dtype=np.uint8)], axis=1)
    return np.ascontiguousarray(rows).view(">u2").sum(axis=1, dtype=np.int64)


def _check_sums(array: np.ndarray, frames: list[_Frame], report: CaptureCheck) -> None:
    """IPv4 header checksums and L4 checksums, many frames at a time (frames grouped by layout)."""
    groups: dict[tuple[Any, ...], list[_Frame]] = defaultdict(list)
    for frame in frames:
        groups[(frame.version, frame.l3, frame.l4, frame.l4_len, frame.proto, frame.outer, frame.length)].append(frame)
    for (version, l3, l4, l4_len, proto, outer, length), members in groups.items():
        for first in range(0, len(members), _BATCH):
            batch = members[first : first + _BATCH]
            base = np.array([f.offset for f in batch], dtype=np.int64)
            if outer is not None:
                _check_outer(array, base, batch, outer, length, report)
            if version == 4:
                header = _fold(_word_sums(array, base + l3, l4 - l3))
                for index in np.flatnonzero(header != 0xFFFF):
                    report.problem(f"frame at byte {batch[index].offset}: bad IPv4 header checksum")
                addresses = _word_sums(array, base + l3 + 12, 8)
            else:
                addresses = _word_sums(array, base + l3 + 8, 32)
            total = _fold(addresses + proto + l4_len + _word_sums(array, base + l4, l4_len))
            bad = total != 0xFFFF
            if proto == _UDP and version == 4:  # 0: no checksum
                bad &= array[base + l4 + 6].astype(np.int64) * 256 + array[base + l4 + 7] != 0
            for index in np.flatnonzero(bad):
                report.problem(f"frame at byte {batch[index].offset}: bad {'TCP' if proto == _TCP else 'UDP'} checksum")


def _check_outer(array: np.ndarray, base: np.ndarray, batch: list[_Frame], outer: tuple[str, int, int, int, bool],
                 length: int, report: CaptureCheck) -> None:
    """A tunnel's outer headers: the outer IPv4 header checksum, the outer UDP checksum (0: none), the
    GRE checksum (over the GRE header and all behind it, no pseudo-header) where its C bit says so."""
    kind, version, net, header, gre_csum = outer
    if version == 4:
        ihl = int(array[base[0] + net] & 0x0F) * 4
        for index in np.flatnonzero(_fold(_word_sums(array, base + net, ihl)) != 0xFFFF):
            report.problem(f"frame at byte {batch[index].offset}: bad outer IPv4 header checksum")
        addresses = _word_sums(array, base + net + 12, 8)
    else:
        addresses = _word_sums(array, base + net + 8, 32)
    if kind == "udp":
        udp_len = length - header
        total = _fold(addresses + _UDP + udp_len + _word_sums(array, base + header, udp_len))
        stored = array[base + header + 6].astype(np.int64) * 256 + array[base + header + 7]
        for index in np.flatnonzero((total != 0xFFFF) & (stored != 0)):
            report.problem(f"frame at byte {batch[index].offset}: bad outer UDP checksum")
    elif kind == "gre" and gre_csum:
        total = _fold(_word_sums(array, base + header, length - header))
        for index in np.flatnonzero(total != 0xFFFF):
            report.problem(f"frame at byte {batch[index].offset}: bad GRE checksum")


def _segment_size(frame: _Frame, mtu: int) -> int:
    """The payload a segment of this packet carries: MTU less labels, and every header from the
    outermost IP header to the payload (a tunnel's outer ones included)."""
    net = frame.l3 if frame.net < 0 else frame.net
    return mtu - 4 * frame.labels - (frame.l4 + frame.l4_len - frame.payload - net)


def check_segmented(in_path: Path, out_path: Path, mtu: int = 1500,
                    udp_tunnels: dict[int, str] | None = None) -> CaptureCheck:
    """Check ``out_path`` as the segmentation of ``in_path`` for a device of this MTU (see the module);
    ``udp_tunnels`` adds UDP ports of tunnels to the standard ones, as {port: "VXLAN"|"VXLAN-GPE"|"Geneve"|
    "FOU"|"GUE"} (FOU and GUE have no port of their own)."""
    ports = {**_UDP_TUNNELS, **(udp_tunnels or {})}
    report = CaptureCheck()
    # per flow, its input packets in order: (sequence number, payload bytes)
    given: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    with open(in_path, "rb") as handle:
        data = handle.read()
    offsets, lengths, links = _records(data)
    report.packets_in = len(offsets)
    for offset, length, linktype in zip(offsets, lengths, links, strict=True):
        parsed = _parse(data, offset, length, linktype, ports)
        if isinstance(parsed, str):
            report.expected_out += 1  # passes through: the check below reports it if it is still odd
            continue
        given[parsed.flow].append((parsed.seq, parsed.payload))
        size = _segment_size(parsed, mtu)
        fits = parsed.mtu_bytes <= mtu
        report.expected_out += 1 if fits or parsed.payload <= size else -(-parsed.payload // size)
    del data
    # per flow: the input packet being consumed (index of the next one), where its bytes stand, and
    # how many of them are still to come
    place: dict[bytes, list[int]] = defaultdict(lambda: [0, 0, 0])
    with open(out_path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        try:
            offsets, lengths, links = _records(view)
            report.packets_out = len(offsets)
            frames: list[_Frame] = []
            for offset, length, linktype in zip(offsets, lengths, links, strict=True):
                parsed = _parse(view, offset, length, linktype, ports)
                if isinstance(parsed, str):
                    report.problem(f"frame at byte {offset}: {parsed}")
                    continue
                frames.append(parsed)
                if parsed.mtu_bytes > mtu:
                    report.problem(f"frame at byte {offset}: {length - parsed.l3} bytes of IP and "
                                   f"{parsed.labels} labels exceed the MTU {mtu}")
                _consume(parsed, given.get(parsed.flow, []), place[parsed.flow], report)
            _check_sums(np.frombuffer(mapped, dtype=np.uint8), frames, report)
            del frames
        finally:
            view.release()
    report.flows = len(place)
    for flow, packets in given.items():
        following, _, remaining = place[flow]
        if following < len(packets) or remaining:
            report.problem(f"a flow's output ends {len(packets) - following} packets and {remaining} bytes "
                           "short of its input")
    if report.packets_out != report.expected_out:
        report.problem(f"{report.packets_out} packets out, {report.expected_out} expected")
    return report


def _consume(frame: _Frame, packets: list[tuple[int, int]], place: list[int], report: CaptureCheck) -> None:
    """One output segment against its flow's input: it must start where the flow's bytes stand (the
    next input packet's first byte once the one before is used up) and not run past its packet."""
    following, position, remaining = place
    if remaining == 0:
        if following >= len(packets):
            report.problem(f"frame at byte {frame.offset}: more of its flow than the input holds")
            return
        position, remaining = packets[following]
        following += 1
    if frame.proto == _TCP and frame.seq != position:
        report.problem(f"frame at byte {frame.offset}: TCP sequence {frame.seq}, {position} expected")
    remaining -= frame.payload
    if remaining < 0:
        report.problem(f"frame at byte {frame.offset}: runs {-remaining} bytes past its input packet")
        remaining = 0
    place[:] = [following, (position + frame.payload) & 0xFFFFFFFF, remaining]


__all__ = ["CaptureCheck", "check_segmented"]
