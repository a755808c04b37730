"""GRO vectors, host side: frames injected into a veth whose receiving end runs GRO, and what GRO handed
to the stack (with its virtio_net_hdr), on a real kernel (the oracle VM, gro_guest.py in the guest).

Cases: the kernel GRO selftest's (tools/testing/selftests/net/lib/gro.c, built by
tests/gro/selftest_sender.py: -4, -6, --ipip; each sleep of its sender is a burst boundary) and
designed ones (more than 8 interleaved flows for the flow-hash model, more than 64 frames in a burst
for the NAPI budget, VLAN/QinQ, MPLS, UDP, Ethernet padding, CWR, window changes), and the tunnel
vectors' wire segments (IP-in-IP, GRE, GRETAP).

    python -m tools.kernel_oracle.gro_cases --kernel 6.1 [--only NAME] [--out tests/vectors/kernel/gro]

Each vector: ``input.pcap`` (the injected frames; a record's timestamp second counts its burst),
``kernel_out.pcap`` (what the stack received, in order), ``meta.json`` (bursts, every output's
virtio_net_hdr, the receiver's settings, the kernel).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import shutil
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import gro_guest
from .vm import KernelVM

ROOT = Path(__file__).resolve().parents[2]
DST_MAC = "aa:00:00:00:00:01"


@dataclass
class GroCase:
    name: str
    bursts: list[list[bytes]]
    note: str = ""
    extra_setup: list[str] = field(default_factory=list)

    def guest_form(self) -> dict[str, Any]:
        return {"name": self.name, "dst_mac": DST_MAC, "mtu": 9000, "extra_setup": self.extra_setup,
                "bursts": [[frame.hex() for frame in burst] for burst in self.bursts]}


def _selftest_module() -> Any:
    path = ROOT / "tests" / "gro" / "selftest_sender.py"
    spec = importlib.util.spec_from_file_location("gro_selftest_sender", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gro_selftest_sender"] = module
    spec.loader.exec_module(module)
    return module


def selftest_cases() -> list[GroCase]:
    sender = _selftest_module()
    cases = []
    for mode, names in (("v4", sender.CASES_BOTH + sender.CASES_V4), ("v6", sender.CASES_BOTH + sender.CASES_V6),
                        ("ipip", [n for n in sender.CASES_BOTH + sender.CASES_V4 if n != "capacity"])):
        for name in names:
            case = sender.build_case(name, mode == "v6", mode == "ipip")
            cases.append(GroCase(f"selftest_{mode}_{name}", case.polls, f"gro.c {mode} {name}"))
    return cases


def _stream(count: int, mss: int = 1000, **spec: Any) -> list[bytes]:
    from softgso.check.synth import SuperPacketSpec, build_frame
    from softgso.cli.runner import _device
    from softgso.job import SegmentOptions, process_frame

    spec.setdefault("tcp_flags", 0x10)
    frame = build_frame(SuperPacketSpec(payload=bytes(i * 7 & 0xFF for i in range(count * mss)), **spec))
    frames = process_frame(frame, SegmentOptions(device=_device("no-offload", 9000, None), gso_size=mss)).frames
    return [bytes.fromhex(DST_MAC.replace(":", "")) + f[6:] for f in frames]


def _long_stream(count: int, mss: int = 1000, **spec: Any) -> list[bytes]:
    """Past 64 KiB: super-packets back to back, sequence numbers and IP IDs running on."""
    frames: list[bytes] = []
    while len(frames) < count:
        chunk = min(60000 // mss, count - len(frames))
        frames += _stream(chunk, mss, seq=1_000_000 + len(frames) * mss, ip_id=(0x1234 + len(frames)) & 0xFFFF,
                          **spec)
    return frames


def _fix_ipv4(frame: bytearray, ip: int = 14) -> None:
    frame[ip + 10 : ip + 12] = b"\0\0"
    total = sum(struct.unpack("!10H", bytes(frame[ip : ip + 20])))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    frame[ip + 10 : ip + 12] = struct.pack("!H", ~total & 0xFFFF)


def _fix_tcp(frame: bytearray, ip: int = 14) -> None:
    v6 = frame[ip] >> 4 == 6
    tcp = ip + (40 if v6 else 20)
    frame[tcp + 16 : tcp + 18] = b"\0\0"
    seg = bytes(frame[tcp:])
    pseudo = (bytes(frame[ip + 8 : ip + 40]) + struct.pack("!IxxxB", len(seg), 6)) if v6 else \
        (bytes(frame[ip + 12 : ip + 20]) + struct.pack("!xBH", 6, len(seg)))
    data = pseudo + seg + (b"\0" if len(seg) & 1 else b"")
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    frame[tcp + 16 : tcp + 18] = struct.pack("!H", ~total & 0xFFFF)


def designed_cases() -> list[GroCase]:
    sender = _selftest_module()
    cases = []
    for flows in (8, 9, 12, 16):
        s = sender.Sender(False)
        cases.append(GroCase(f"flows_{flows}_interleaved", [s.send_capacity(flows) + [s.fin()]],
                             f"{flows} flows, first segments then second ones: the flow table's capacity"))
    cases.append(GroCase("budget_100_segments", [_long_stream(100)], "100 frames in one burst: NAPI weight 64"))
    cases.append(GroCase("budget_64_then_36", [_stream(64), _stream(36, seq=1_000_000 + 64_000, ip_id=0x1234 + 64)],
                         "two bursts"))
    cases.append(GroCase("vlan_8021q", [_stream(4, vlan_tags=((0x8100, 7),))]))
    cases.append(GroCase("qinq", [_stream(4, vlan_tags=((0x88A8, 10), (0x8100, 20)))]))
    cases.append(GroCase("ipv6_stream", [_stream(6, ipv6=True)]))
    mpls = [f[:12] + bytes.fromhex("8847000641ff") + f[14:] for f in _stream(3)]
    cases.append(GroCase("mpls_passes", [mpls], "the kernel has no MPLS GRO"))
    cwr = [bytearray(f) for f in _stream(4)]
    cwr[0][47] |= 0x80
    _fix_tcp(cwr[0])
    cases.append(GroCase("cwr_first", [[bytes(f) for f in cwr]]))
    cwr_all = [bytearray(f) for f in _stream(4)]
    for frame in cwr_all:
        frame[47] |= 0x80
        _fix_tcp(frame)
    cases.append(GroCase("cwr_all", [[bytes(f) for f in cwr_all]]))
    window = [bytearray(f) for f in _stream(4)]
    window[2][48:50] = b"\x10\x00"
    _fix_tcp(window[2])
    cases.append(GroCase("window_change", [[bytes(f) for f in window]]))
    two = _stream(2)
    tiny = _stream(1, mss=2, seq=1_000_000 + 2000, ip_id=0x1236)[0]
    padded_tiny = tiny + bytes(60 - len(tiny))
    cases.append(GroCase("ethernet_padding", [two + [padded_tiny]], "a 56-byte frame padded to 60"))
    fixed_nodf = [bytearray(f) for f in _stream(4, df=False)]
    for frame in fixed_nodf:
        frame[18:20] = fixed_nodf[0][18:20]
        _fix_ipv4(frame)
    cases.append(GroCase("fixed_id_no_df", [[bytes(f) for f in fixed_nodf]]))
    udp = _udp_stream(3)
    cases.append(GroCase("udp_passes", [udp], "forwarded UDP without rx-udp-gro-forwarding"))
    cases.append(GroCase("udp_gro_forwarding", [udp], "rx-udp-gro-forwarding on",
                         ["ethtool -K veth1 rx-udp-gro-forwarding on"]))
    big = _long_stream(30, mss=4000)  # 120000 bytes: past 64 KiB within one poll
    cases.append(GroCase("big_tcp_ipv4_185000", [big], "gro_ipv4_max_size (6.3+) and gro_max_size 185000",
                         ["ip link set veth1 gro_max_size 185000", "ip link set veth1 gro_ipv4_max_size 185000"]))
    big6 = _long_stream(30, mss=4000, ipv6=True)
    cases.append(GroCase("big_tcp_ipv6_185000", [big6], "gro_max_size 185000",
                         ["ip link set veth1 gro_max_size 185000"]))
    return cases


def tunnel_cases() -> list[GroCase]:
    """The tunnel vectors' wire segments (IP-in-IP, GRE, GRETAP over IPv4/IPv6; full checksums) as one
    burst each, addressed to the receiver: what GRO makes of a tunnel's segments."""
    from softgso.io import open_capture

    cases = []
    for folder in sorted((ROOT / "tests" / "vectors" / "kernel" / "tunnels" / "6.1").iterdir()):
        name = folder.name
        if not name.endswith("__tx_off") and "gretap4_key_csum" not in name:
            continue
        if not any(kind in name for kind in ("ipip", "sit", "ip6tnl", "gre")) or name.startswith("uso_"):
            continue
        with open_capture(folder / "kernel_out.pcap") as reader:
            frames = [bytes.fromhex(DST_MAC.replace(":", "")) + bytes(record.data)[6:] for record in reader]
        if len(frames) > 1:
            cases.append(GroCase(f"tunnel_{name}", [frames], f"the segments of tests/vectors/kernel/tunnels/6.1/{name}"))
    return cases


def _udp_stream(count: int) -> list[bytes]:
    from softgso.check.synth import SuperPacketSpec, build_frame
    from softgso.cli.runner import _device
    from softgso.job import SegmentOptions, process_frame

    frame = build_frame(SuperPacketSpec(udp=True, payload=bytes(count * 1000)))
    options = SegmentOptions(device=_device("no-offload", 9000, None), gso_size=1000, gso_type="udp_l4")
    return [bytes.fromhex(DST_MAC.replace(":", "")) + f[6:] for f in process_frame(frame, options).frames]


def write_pcap(path: Path, frames: list[tuple[int, bytes]]) -> None:
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for index, (second, frame) in enumerate(frames):
            out.write(struct.pack("<IIII", 1_700_000_000 + second, index, len(frame), len(frame)))
            out.write(frame)


def decode_vnet(text: str | None) -> dict[str, Any] | None:
    if text is None or text.startswith("error"):
        return {"error": text} if text else None
    header = bytes.fromhex(text)
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = struct.unpack("<BBHHHH", header)
    return {"flags": flags, "gso_type": gso_type, "hdr_len": hdr_len, "gso_size": gso_size,
            "csum_start": csum_start, "csum_offset": csum_offset}


def _interleaved(rng: random.Random, flows: list[list[bytes]]) -> list[bytes]:
    """One burst: the flows' frames interleaved at random, each flow's in its order (the flows are emptied)."""
    burst: list[bytes] = []
    while any(flows):
        burst.append(rng.choice([f for f in flows if f]).pop(0))
    return burst


def random_cases(seed: int, count: int) -> list[GroCase]:
    """``count`` random cases of ``seed``: 1-2 bursts, each 1-4 TCP flows (IPv4 or IPv6, a VLAN tag or none,
    timestamps or no options, MSS 200-1448, 1-12 segments) interleaved at random, one flow in three changed
    where a flush rule looks (window, PSH, TTL/hop limit, a segment left out, a short last one), and of the
    others three in five changed by :func:`_more_change` (drawn from a stream of their own). The note names
    each flow's change."""
    rng = random.Random(seed)
    cases = []
    for number in range(count):
        bursts = []
        changes: list[str] = []
        for _ in range(rng.randint(1, 2)):
            flows = []
            for flow in range(rng.randint(1, 4)):
                tagged = rng.random() < 0.2
                spec: dict[str, Any] = {"ipv6": rng.random() < 0.3, "sport": 40000 + flow,
                                        "seq": rng.randrange(1 << 31), "ip_id": rng.randrange(1 << 16),
                                        "df": rng.random() < 0.9}
                if tagged:
                    spec["vlan_tags"] = ((0x8100, rng.randint(1, 20)),)
                if rng.random() < 0.3:
                    spec["tcp_options"] = bytes.fromhex("0101080a") + rng.randbytes(8)
                frames = [bytearray(f) for f in _stream(rng.randint(1, 12), rng.choice((200, 536, 1000, 1448)), **spec)]
                ip = 18 if tagged else 14
                change = rng.choice(("none", "none", "none", "window", "psh", "ttl", "gap", "short"))
                at = rng.randrange(len(frames))
                done = change
                if change == "gap" and len(frames) > 2:
                    del frames[at]
                elif change == "short" and len(frames) > 1:
                    frames[-1] = frames[-1][: len(frames[-1]) - rng.randint(1, 100)]
                    if spec["ipv6"]:
                        frames[-1][ip + 4 : ip + 6] = struct.pack("!H", len(frames[-1]) - ip - 40)
                    else:
                        frames[-1][ip + 2 : ip + 4] = struct.pack("!H", len(frames[-1]) - ip)
                        _fix_ipv4(frames[-1], ip)
                    _fix_tcp(frames[-1], ip)
                elif change in ("window", "psh"):
                    tcp = ip + (40 if spec["ipv6"] else 20)
                    if change == "window":
                        frames[at][tcp + 14 : tcp + 16] = b"\x10\x00"
                    else:
                        frames[at][tcp + 13] |= 0x08
                    _fix_tcp(frames[at], ip)
                elif change == "ttl":
                    frames[at][ip + (7 if spec["ipv6"] else 8)] -= 1
                    if not spec["ipv6"]:
                        _fix_ipv4(frames[at], ip)
                else:
                    # a stream of its own, so that every draw above stays what it was for the seed
                    more = random.Random(f"{seed}/{number}/{len(bursts)}/{flow}/more")
                    done = "none"
                    if more.random() < 0.6:
                        frames, done = _more_change(more, frames, ip, spec["ipv6"], "tcp_options" in spec)
                changes.append(done)
                flows.append([bytes(f) for f in frames])
            bursts.append(_interleaved(rng, flows))
        cases.append(GroCase(f"random_s{seed}_{number:03d}", bursts,
                             f"random case {number} of seed {seed}; changes per flow: {', '.join(changes)}"))
    return cases


HEADER_KINDS = ("plain", "ip_options", "ext_headers", "tcp_options", "tcp_options", "qinq", "stag")


def _pad_option_body(units: int, option_type: int, fill: int) -> bytes:
    """An extension header body of 8 * units + 6 bytes: one option of ``option_type`` (PadN is 1; 0x1e is an
    unknown one to skip) whose data bytes are ``fill``."""
    size = 8 * units + 6
    return bytes([option_type, size - 2]) + bytes([fill]) * (size - 2)


def _option_data_at(options: bytes) -> int | None:
    """Where the last data byte of the first TCP option with data lies (None: only NOP/EOL)."""
    at = 0
    while at < len(options) and options[at] != 0:
        if options[at] == 1:
            at += 1
            continue
        length = options[at + 1]
        if length > 2:
            return at + length - 1
        at += max(length, 2)
    return None


def header_cases(seed: int, count: int) -> list[GroCase]:
    """The ``headers`` variant (opt-in: the plain plan of a seed never moves): 1-2 bursts of 1-4 interleaved TCP
    flows, each with headers the random cases never carry: IPv4 options (inet_gro_receive takes only a
    20-byte header), IPv6 destination options / hop-by-hop headers (ipv6_gro_receive walks them and compares
    their bytes), a random TCP option list (MSS, window scale, SACK, timestamps, NOPs: tcp_gro_receive compares
    the option bytes), two tags (802.1ad + 802.1Q) or one 802.1ad tag. In one flow of three, one segment is
    swapped for the same segment built with one header byte different (an option's data, a SACK block), so a
    flush rule that compares headers sees it."""
    from .generate import draw_ip_options, draw_tcp_options

    rng = random.Random(f"{seed}/headers")
    cases = []
    for number in range(count):
        bursts, notes = [], []
        for _ in range(rng.randint(1, 2)):
            flows = []
            for flow in range(rng.randint(1, 4)):
                kind = rng.choice(HEADER_KINDS)
                v6 = kind == "ext_headers" or (kind != "ip_options" and rng.random() < 0.35)
                spec: dict[str, Any] = {"ipv6": v6, "sport": 41000 + flow, "seq": rng.randrange(1 << 31),
                                        "ip_id": rng.randrange(1 << 16), "df": rng.random() < 0.9}
                alternative: dict[str, Any] = {}
                if kind == "ip_options":
                    options = bytes.fromhex(draw_ip_options(rng))
                    spec["ip_options"] = options
                    alternative["ip_options"] = options[:-1] + bytes([options[-1] ^ 0x01])
                elif kind == "ext_headers":
                    chain = [(rng.choice((0, 60)), rng.randint(0, 1)) for _ in range(rng.randint(1, 2))]
                    spec["ipv6_exthdrs"] = tuple((t, _pad_option_body(u, 1, 0)) for t, u in chain)
                    alternative["ipv6_exthdrs"] = tuple((t, _pad_option_body(u, 0x1E, 0x5A)) for t, u in chain)
                elif kind == "tcp_options":
                    options = b""
                    while _option_data_at(options) is None:
                        options = bytes.fromhex(draw_tcp_options(rng))
                    spec["tcp_options"] = options
                    changed = bytearray(options)
                    changed[_option_data_at(options) or 0] ^= 0x10  # the last data byte of an option: still valid
                    alternative["tcp_options"] = bytes(changed)
                elif kind == "qinq":
                    spec["vlan_tags"] = ((0x88A8, rng.randint(1, 20)), (0x8100, rng.randint(1, 20)))
                    alternative["vlan_tags"] = (spec["vlan_tags"][0], (0x8100, spec["vlan_tags"][1][1] + 1))
                elif kind == "stag":
                    spec["vlan_tags"] = ((0x88A8, rng.randint(1, 20)),)
                    alternative["vlan_tags"] = ((0x88A8, spec["vlan_tags"][0][1] + 1),)
                mss = rng.choice((200, 536, 1000, 1448))
                segments = rng.randint(1, 12)
                frames = _stream(segments, mss, **spec)
                swapped = ""
                if alternative and segments > 1 and rng.random() < 0.33:
                    at = rng.randrange(segments)
                    frames[at] = _stream(segments, mss, **{**spec, **alternative})[at]
                    swapped = f" (segment {at} differs)"
                notes.append(kind + swapped)
                flows.append(frames)
            bursts.append(_interleaved(rng, flows))
        cases.append(GroCase(f"hdrs_s{seed}_{number:03d}", bursts,
                             f"headers case {number} of seed {seed}; per flow: {', '.join(notes)}"))
    return cases


MORE_CHANGES = ("tos", "df", "ack", "flag", "tsval", "fixed_id", "id_jump", "flow_label", "retransmit", "bad_csum",
                "trailer", "pure_ack", "ip_reserved_bit", "bad_ip_csum", "fragment")
IPV4_ONLY = ("df", "fixed_id", "id_jump", "ip_reserved_bit", "bad_ip_csum", "fragment")


def _more_change(rng: random.Random, frames: list[bytearray], ip: int, v6: bool,
                 timestamps: bool) -> tuple[list[bytearray], str]:
    """One more change where a GRO rule looks (spec gro.md 5.3-5.5): the TOS/traffic class, DF, the ACK number,
    a flag (URG, ECE, CWR, FIN, RST, SYN), TSval, the IPv4 ID (one fixed ID, or a jump), the IPv6 flow label
    (another flow), a retransmitted segment, a bad TCP checksum, bytes behind the IP packet, a pure ACK; the
    IPv4 reserved flag bit, a bad IPv4 header checksum, MF (a first fragment)."""
    kinds = [k for k in MORE_CHANGES if not (v6 and k in IPV4_ONLY)
             and not (not v6 and k == "flow_label") and not (not timestamps and k == "tsval")]
    kind = rng.choice(kinds)
    at = rng.randrange(len(frames))
    tcp = ip + (40 if v6 else 20)
    frame = frames[at]
    if kind == "tos":
        if v6:
            frame[ip + 1] ^= rng.choice((0x10, 0x20, 0x30, 0x40))  # the traffic class's low nibble: ECN, DSCP
        else:
            frame[ip + 1] ^= rng.choice((0x01, 0x02, 0x03, 0x04))
    elif kind == "df":
        frame[ip + 6] ^= 0x40
    elif kind == "ack":
        frame[tcp + 8 : tcp + 12] = struct.pack("!I", (int.from_bytes(frame[tcp + 8 : tcp + 12], "big") + 1) & 0xFFFFFFFF)
    elif kind == "flag":
        flag = rng.choice((0x20, 0x40, 0x80, 0x01, 0x04, 0x02))
        frame[tcp + 13] |= flag
        if flag == 0x20:
            frame[tcp + 18 : tcp + 20] = struct.pack("!H", rng.randint(1, 2000))
    elif kind == "tsval":
        frame[tcp + 24 : tcp + 28] = struct.pack("!I", (int.from_bytes(frame[tcp + 24 : tcp + 28], "big") + 1)
                                                 & 0xFFFFFFFF)
    elif kind == "fixed_id":
        for other in frames:
            other[ip + 4 : ip + 6] = frames[0][ip + 4 : ip + 6]
            _fix_ipv4(other, ip)
    elif kind == "id_jump":
        frame[ip + 4 : ip + 6] = struct.pack("!H", (int.from_bytes(frame[ip + 4 : ip + 6], "big") + rng.randint(2, 9))
                                             & 0xFFFF)
    elif kind in ("ip_reserved_bit", "fragment"):
        frame[ip + 6] |= 0x80 if kind == "ip_reserved_bit" else 0x20
    elif kind == "bad_ip_csum":
        frame[ip + 10] ^= 0x33
        return frames, kind  # inet_gro_receive verifies it
    elif kind == "flow_label":
        frame[ip + 3] ^= 0x5A
    elif kind == "retransmit":
        frames.insert(at + 1, bytearray(frame))
    elif kind == "bad_csum":
        frame[tcp + 16] ^= 0x55
        return frames, kind  # not fixed: GRO validates the checksum (CHECKSUM_NONE from a packet socket)
    elif kind == "trailer":
        frame += bytes(rng.randint(1, 24))
        return frames, kind  # lengths and checksum left as they were: the bytes lie behind the IP packet
    elif kind == "pure_ack":
        header_end = tcp + (frame[tcp + 12] >> 4) * 4
        ack_only = bytearray(frame[:header_end])
        if v6:
            ack_only[ip + 4 : ip + 6] = struct.pack("!H", header_end - ip - 40)
        else:
            ack_only[ip + 2 : ip + 4] = struct.pack("!H", header_end - ip)
            _fix_ipv4(ack_only, ip)
        _fix_tcp(ack_only, ip)
        frames.insert(at, ack_only)
        return frames, kind
    if not v6:
        _fix_ipv4(frame, ip)
    _fix_tcp(frame, ip)
    return frames, kind


def compare(folder: Path) -> str | None:
    """softgso's GRO on a recorded case against what the kernel handed up: None when they agree (the same
    packets, byte for byte, in order, with the same gso_size), else what differs. Polls as the vectors'
    test has them: every burst apart, every 64 frames within one."""
    from softgso.gro import GroDevice, coalesce_poll

    meta = json.loads((folder / "meta.json").read_text())
    device = GroDevice(kernel="6.12" if meta["kernel_release"].startswith("6.12") else "6.1")
    frames = _read_pcap(folder / "input.pcap")
    packets = []
    for burst in sorted({b for b, _ in frames}):
        in_burst = [f for b, f in frames if b == burst]
        for start in range(0, len(in_burst), 64):
            packets += coalesce_poll(in_burst[start : start + 64], device)
    # the receiver's packet socket sees an outer 802.1Q/802.1ad tag in the metadata, not the bytes
    ours = [p.data[:12] + p.data[16:] if p.data[12:14] in (b"\x81\x00", b"\x88\xa8") else p.data for p in packets]
    kernel = [f for _, f in _read_pcap(folder / "kernel_out.pcap")]
    if ours != kernel:
        first = next((i for i, (a, b) in enumerate(zip(ours, kernel, strict=False)) if a != b), min(len(ours), len(kernel)))
        return f"{len(ours)} packets against the kernel's {len(kernel)}; first difference at packet {first + 1}"
    for number, (packet, vnet) in enumerate(zip(packets, meta["outputs"], strict=True)):
        if vnet and "error" not in vnet and vnet["gso_size"] != packet.gso_size:
            return f"packet {number + 1}: gso_size {packet.gso_size} against the kernel's {vnet['gso_size']}"
    return None


# -- real captures' frames -----------------------------------------------------------------------------
BURST = 64  # one NAPI poll of veth (its weight): the burst the guest sends is polled as one batch
VETH_MTU = 9000


def _injectable(record: Any, limit: int = VETH_MTU + 14, too_long: str = "over the veths' MTU") -> bytes | str:
    """The record as an Ethernet frame a veth takes (at most ``limit`` bytes), or why it cannot go on one
    as it was captured (``too_long`` for a longer frame)."""
    from softgso.errors import CaptureError
    from softgso.io.cooked import to_ethernet

    if record.truncated:
        return "cut by the snap length"
    if record.fcs_len:
        return "ends in an FCS"
    try:
        view = to_ethernet(record)
    except CaptureError:
        view = None
    if view is None:
        return "link type with no Ethernet form"
    if len(view.frame) < 14:
        return "shorter than an Ethernet header"
    if len(view.frame) > limit:
        return too_long
    return bytes(view.frame)


def capture_cases(paths: list[Path], max_frames: int = 1024) -> tuple[list[GroCase], dict[str, int]]:
    """The frames of real captures as GRO cases, one case per capture (its first ``max_frames`` frames
    that can be injected, in bursts of 64): what the kernel's GRO makes of traffic nobody designed.

    A record becomes an Ethernet frame as softgso sees it (softgso.io.cooked.to_ethernet: a cooked,
    NULL or raw-IP record gets a synthetic Ethernet header) with the destination MAC the receiver's, so
    that veth1 takes it as its own. Not injected, and counted by reason: records cut by the snap length
    (the packet is not all there), frames ending in an FCS, frames over the veths' MTU (veth drops
    them), link types with no Ethernet form. Returns the cases and those counts."""
    from softgso.errors import CaptureError
    from softgso.io.reader import open_capture

    destination = bytes.fromhex(DST_MAC.replace(":", ""))
    skipped: dict[str, int] = {}
    cases = []
    for path in paths:
        frames: list[bytes] = []
        try:
            with open_capture(path) as reader:
                for record in reader:
                    frame = _injectable(record)
                    if isinstance(frame, str):
                        skipped[frame] = skipped.get(frame, 0) + 1
                        continue
                    frames.append(destination + frame[6:])
                    if len(frames) == max_frames:
                        break
        except CaptureError as error:  # the frames before a broken record are kept
            skipped[f"the rest of a broken capture ({error})"] = 1
        if frames:
            name = "capture_" + "".join(c if c.isalnum() else "_" for c in path.stem)
            taken = sum(case.name == name or case.name.startswith(name + "__") for case in cases)
            name += f"__{taken + 1}" if taken else ""  # two captures of one name: a folder each
            bursts = [frames[start : start + BURST] for start in range(0, len(frames), BURST)]
            cases.append(GroCase(name, bursts, f"the frames of {path.name}"))
    return cases, skipped


def _read_pcap(path: Path) -> list[tuple[int, bytes]]:
    data = path.read_bytes()
    out, offset = [], 24
    while offset < len(data):
        seconds, _, caplen, _ = struct.unpack_from("<IIII", data, offset)
        out.append((seconds - 1_700_000_000, data[offset + 16 : offset + 16 + caplen]))
        offset += 16 + caplen
    return out


def record(out_dir: Path, kernel: str | None, only: str | None, cases: list[GroCase] | None = None) -> int:
    if cases is None:
        cases = [c for c in selftest_cases() + designed_cases() + tunnel_cases() if only is None or only in c.name]

    class GroVM(KernelVM):
        guest_module = "kernel_oracle.gro_guest"
        guest_files = ("__init__.py", "guest_batches.py", "gro_guest.py")

    written = 0
    with GroVM(kernel=kernel, console_log=Path("out/kernel-oracle-gro/console.log")) as vm:
        generation = "6.12" if vm.kernel_release_guest.startswith("6.12") else "6.1"
        target = out_dir / generation
        scratch = out_dir / f".scratch-{generation}"
        vm.run_batch([c.guest_form() for c in cases], scratch)
        results = json.loads((scratch / "results" / "results.json").read_text())
        for case, result in zip(cases, results, strict=True):
            folder = target / case.name
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            write_pcap(folder / "input.pcap", [(b, f) for b, burst in enumerate(case.bursts) for f in burst])
            outputs = [(0, bytes.fromhex(r["frame"])) for r in result["received"]]
            write_pcap(folder / "kernel_out.pcap", outputs)
            meta = {
                "kernel": vm.kernel, "kernel_release": vm.kernel_release_guest, "case": case.name, "note": case.note,
                "bursts": [len(burst) for burst in case.bursts],
                "outputs": [decode_vnet(r["vnet"]) for r in result["received"]],
                "receiver": {"sysfs": result["sysfs"], "ethtool": result["ethtool_veth1"],
                             "setup": ["ethtool -K veth0 tso off", "ethtool -K veth1 gro on",
                                       f"gro_flush_timeout {gro_guest.GRO_FLUSH_TIMEOUT_NS // 1_000_000} ms", "napi_defer_hard_irqs 1", *case.extra_setup]},
                "send_errors": result["send_errors"], "guest_log": result["log"],
                "capture": "AF_PACKET on veth1 (rx), frames; a second one with PACKET_VNET_HDR, their headers (an error "
                           "where virtio_net_hdr_from_skb refuses the gso_type); each burst led by a frame of ethertype "
                           f"0x88b5 (dropped from the capture) and followed by {gro_guest.BURST_GAP_SECONDS * 1000:.0f} ms of quiet",
            }
            (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
            print(f"{case.name}: {sum(len(b) for b in case.bursts)} frames in, {len(outputs)} out"
                  f"{' ERRORS ' + '; '.join(result['send_errors']) if result['send_errors'] else ''}"
                  f"{' LOG ' + '; '.join(result['log']) if result['log'] else ''}")
            written += 1
        shutil.rmtree(scratch, ignore_errors=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.kernel_oracle.gro_cases")
    parser.add_argument("--out", type=Path, default=Path("tests/vectors/kernel/gro"))
    parser.add_argument("--kernel", default=None, help="6.1 (default), 6.12, or a release")
    parser.add_argument("--only", default=None, help="only the cases whose name contains this")
    parser.add_argument("--random", type=int, default=0, metavar="N", help="N random cases of --seed instead")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--captures", type=Path, nargs="+", metavar="FILE",
                        help="real captures' frames instead (one case per capture, --max-frames of each)")
    parser.add_argument("--max-frames", type=int, default=1024)
    parser.add_argument("--diff", action="store_true",
                        help="compare softgso with the kernel on each case recorded (exit 1 on a disagreement)")
    parser.add_argument("--variant", choices=("", "headers"), default="",
                        help="with --random: 'headers' draws header_cases (IPv4 options, IPv6 extension headers, TCP "
                             "option lists, two tags or an 802.1ad one) instead (opt-in: a seed's plain plan never moves)")
    args = parser.parse_args(argv)
    draw = header_cases if args.variant == "headers" else random_cases
    cases = draw(args.seed, args.random) if args.random else None
    if args.captures:
        cases, skipped = capture_cases(args.captures, args.max_frames)
        for reason, count in sorted(skipped.items()):
            print(f"not injected: {count} records, {reason}")
    out = args.out
    if args.diff and args.out == Path("tests/vectors/kernel/gro"):
        # a folder of this run's own, emptied first: the comparison below reads every case under it, and
        # another run's (an earlier seed, the other generation) would be counted again
        kind = "-captures" if args.captures else f"-seed{args.seed}{'' if args.random else '-designed'}"
        out = Path("out/kernel-diff") / f"gro-{args.kernel or '6.1'}{kind}{args.variant and '-' + args.variant}"
        shutil.rmtree(out, ignore_errors=True)
    written = record(out, args.kernel, args.only, cases)
    print(f"{written} cases written under {out}")
    if not args.diff:
        return 0
    folders = sorted(p.parent for p in out.rglob("meta.json"))
    problems = {folder.name: compare(folder) for folder in folders}
    disagreements = {name: problem for name, problem in problems.items() if problem is not None}
    for name, problem in disagreements.items():
        print(f"DISAGREE {name}: {problem}")
    print(f"{len(folders) - len(disagreements)} of {len(folders)} cases agree")
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
