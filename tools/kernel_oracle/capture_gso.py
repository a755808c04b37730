"""Real captures' super-packets through the kernel's software GSO, beside ``softgso segment``.

The random generator (generate.py) draws the super-packets the kernel-diff runs give Linux; this
module takes them from captures other projects made instead: every TCP packet over the MTU that a
capture holds (the super-packets tcpdump sees on a sending host with TSO, or on a receiver with GRO),
and every short frame whose checksum is a sender's seed. Each is injected as its sender's stack
handed it to the device: through AF_PACKET with a virtio_net_hdr (NEEDS_CSUM at the TCP checksum,
GSO TCPV4 or TCPV6, gso_size the MSS the MTU leaves, the checksum field the pseudo-header seed) on a
veth of MTU 1500 without checksum offload or TSO (software GSO, checksums completed in software).
An MPLS frame goes in as the IP frame under its labels, and tc's act_mpls pushes the labels back on
veth0's egress, as an MPLS datapath (OVS push_mpls, tc) labels a host's packets before GSO. What the
kernel sends is compared, byte for byte, with what ``softgso segment --device no-offload``
(the command as a user types it, on the frame as captured: a full checksum or the seed) writes for
that record; ``--device csum`` and ``--device tso`` do the same with veth0's checksum offload on
(segments leave with their seeds) and with TSO on (the super-packet leaves whole).

The decisions made here from the frame alone (where the headers end, whether the checksum is full
or a seed, the MSS) are this module's own reading (wire.py, standard library), not softgso's. Not
injected, and counted by reason: MPLS (a label stack is pushed by an action, not injected: the
kernel needs the inner protocol), tunnels and UDP (their GSO metadata is not in a capture), IP
fragments, trailers, checksums that are neither full nor a seed, short frames whose IPv4 header
checksum was left to the NIC (by another system: Linux sums it), source routes and Home Address
options (the seed's addresses are not the header's), signed TCP, records cut by the snap length or
ending in an FCS.

    python -m tools.kernel_oracle.capture_gso --kernel 6.12 --captures A.pcap B.pcapng ... [--per-capture N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import wire
from .cases import DEFAULT_ETHTOOL_VETH0, DEFAULT_ETHTOOL_VETH1
from .gro_cases import _injectable

REPO = Path(__file__).resolve().parents[2]
MTU = 1500
# softgso's device profiles and the ethtool settings of veth0 that give the kernel the same TCP features:
# software GSO with checksums completed in software (DEFAULT_ETHTOOL_VETH0), software GSO with the L4
# checksums left partial (what a receiver then sees: each segment's seed), and TSO (veth's defaults: the
# super-packet leaves whole)
DEVICES = {"no-offload": DEFAULT_ETHTOOL_VETH0, "csum": "tx on tso off gso on txvlan on",
           "tso": "tx on tso on gso on txvlan on"}
BATCH_SIZE = 40
MAX_FRAME = 65535 + 14 + 8  # an IP packet of 64 KB behind Ethernet and two VLAN tags
TCPOPT_MD5SIG, TCPOPT_AO = 19, 29
VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VIRTIO_NET_HDR_GSO_UDP_L4 = 1, 4, 5
# the UDP ports softgso takes for tunnels by default (VXLAN, Linux's VXLAN, VXLAN-GPE, Geneve, MPLS-in-UDP,
# GTP-U): a datagram to or from one is a tunnel's, whose GSO a capture does not show
TUNNEL_PORTS = {4789, 8472, 4790, 6081, 6635, 2152}


@dataclass
class CaptureCase:
    """One record of a capture: the frame as captured (what softgso reads) and its injection."""

    name: str
    source: str  # "capture.pcap #N" (records numbered from 1, as tshark numbers them)
    frame: bytes  # the record as an Ethernet frame
    injected: bytes  # the frame with the checksum field holding the seed
    vnet: dict[str, int]
    super_packet: bool
    device: str = "no-offload"
    tc_action: str = ""  # labels pushed on veth0's egress (an MPLS frame's own, or --push-mpls's)
    options: tuple[str, ...] = ()  # softgso segment's options beside --device and --mtu

    def guest_case(self) -> dict[str, Any]:
        """The case as guest.run_case takes it."""
        return {
            "name": self.name, "frame_hex": self.injected.hex(), "virtio_net_hdr": self.vnet, "tc_action": self.tc_action,
            "ethtool_veth0": DEVICES[self.device], "ethtool_veth1": DEFAULT_ETHTOOL_VETH1, "veth_mtu": MTU,
            "sll_protocol": hex(int.from_bytes(self.injected[12:14], "big")),
            "description": f"{self.source}: {'a super-packet' if self.super_packet else 'a seeded frame'} of a real capture",
            "extra_meta": {"category": "capture", "capture_record": self.source, "softgso_device": self.device},
        }


def _tcp_signed(frame: bytes, l4: int, hdr_end: int) -> bool:
    at = l4 + 20
    while at < hdr_end:
        kind = frame[at]
        if kind == 0:
            return False
        if kind == 1:
            at += 1
            continue
        if at + 1 >= hdr_end or frame[at + 1] < 2:
            return False
        if kind in (TCPOPT_MD5SIG, TCPOPT_AO):
            return True
        at += frame[at + 1]
    return False


def _ipv4_source_routed(frame: bytes, l3: int, l4: int) -> bool:
    at = l3 + 20
    while at < l4 and frame[at] != 0:
        if frame[at] == 1:
            at += 1
            continue
        if at + 2 > l4 or frame[at + 1] < 2:
            return False
        if frame[at] in (0x83, 0x89) and frame[at + 2] + 3 <= frame[at + 1]:
            return True
        at += frame[at + 1]
    return False


def _home_address_option(options: bytes) -> bool:
    """Whether a Destination Options header's options (type-length-value, Pad1 alone) hold a Home Address."""
    at = 0
    while at < len(options):
        if options[at] == 0:
            at += 1
            continue
        if at + 1 >= len(options):
            return False
        if options[at] == 0xC9:
            return True
        at += 2 + options[at + 1]
    return False


def _ipv6_other_addresses(frame: bytes, l3: int, l4: int) -> bool:
    """A Routing header with segments left or a Home Address option: the checksum's addresses are not
    the header's (RFC 8200 8.1, RFC 6275 6.3)."""
    proto, at = frame[l3 + 6], l3 + 40
    while at < l4:
        size = (frame[at + 1] + 1) * 8
        if proto == wire.IPPROTO_ROUTING and frame[at + 3]:
            return True
        if proto == wire.IPPROTO_DSTOPTS and _home_address_option(frame[at + 2 : at + size]):
            return True
        proto, at = frame[at], at + size
    return False


def injection(frame: bytes, mtu: int = MTU, udp: bool = False) -> tuple[bytes, dict[str, int], bool] | str:
    """(the frame as its sender handed it to the device, its virtio_net_hdr, whether it is a
    super-packet) for a TCP packet over the MTU or a short TCP frame whose checksum is a seed (with
    ``udp``, the same of UDP datagrams: USO, as a UDP_SEGMENT socket hands them over); else the reason
    it is not a case."""
    if len(frame) < 14 + 20:
        return "not TCP over IP"
    outer = int.from_bytes(frame[12:14], "big")
    try:
        ethertype, l3 = wire.l2_layout(frame)
    except struct.error:
        return "not TCP over IP"
    if ethertype in wire.MPLS_ETHERTYPES:
        return "MPLS behind a VLAN tag (labels are pushed by an action, on an untagged frame here)"
    if l3 - 14 > 8 or (outer in wire.VLAN_TPIDS and l3 - 14 == 0):
        return "more than two VLAN tags"
    if ethertype == wire.ETH_P_IP:
        if len(frame) < l3 + 20 or frame[l3] >> 4 != 4:
            return "not TCP over IP"
        ihl, end = (frame[l3] & 0x0F) * 4, l3 + int.from_bytes(frame[l3 + 2 : l3 + 4], "big")
        if ihl < 20 or end < l3 + ihl:
            return "a broken IPv4 header"
        if int.from_bytes(frame[l3 + 6 : l3 + 8], "big") & 0x3FFF:
            return "an IP fragment"
        proto, l4 = frame[l3 + 9], l3 + ihl
        if end <= len(frame) and _ipv4_source_routed(frame, l3, l4):
            return "a source route (the checksum's addresses are not the header's)"
    elif ethertype == wire.ETH_P_IPV6:
        if len(frame) < l3 + 40 or frame[l3] >> 4 != 6:
            return "not TCP over IP"
        payload_len = int.from_bytes(frame[l3 + 4 : l3 + 6], "big")
        if payload_len == 0:
            return "an IPv6 jumbogram or BIG TCP packet"
        end = l3 + 40 + payload_len
        if end > len(frame):
            return "an IP length beyond the frame"
        try:
            proto, l4, fragment = wire.ipv6_upper_layer(frame, l3)
        except IndexError:
            return "a broken IPv6 extension header"
        if fragment is not None:
            return "an IP fragment"
        if l4 > end or _ipv6_other_addresses(frame, l3, l4):
            return "a Routing header or Home Address option (the checksum's addresses are not the header's)"
    else:
        return "not TCP over IP"
    if end > len(frame):
        return "an IP length beyond the frame"
    if end < len(frame) and (len(frame) > 60 or frame[end:].strip(b"\0")):
        return "a trailer behind the IP packet"  # (a short frame's zero padding is sent as it is)
    if proto == wire.IPPROTO_UDP and udp:
        if l4 + 8 > end or int.from_bytes(frame[l4 + 4 : l4 + 6], "big") != end - l4:
            return "a UDP length that is not the datagram's"
        if {int.from_bytes(frame[l4 : l4 + 2], "big"), int.from_bytes(frame[l4 + 2 : l4 + 4], "big")} & TUNNEL_PORTS:
            return "a UDP tunnel's port"
        if ethertype == wire.ETH_P_IP and frame[l4 + 6 : l4 + 8] == b"\0\0":
            return "UDP without a checksum (a USO sender always sums)"
        hdr_end, check_offset = l4 + 8, 6
    elif proto != wire.IPPROTO_TCP:
        return ("not TCP or UDP" if udp else
                "not TCP (UDP and tunnels need GSO metadata a capture does not hold: --udp-gso for USO)")
    else:
        if l4 + 20 > end or (frame[l4 + 12] >> 4) < 5 or l4 + (frame[l4 + 12] >> 4) * 4 > end:
            return "a broken TCP header"
        hdr_end, check_offset = l4 + (frame[l4 + 12] >> 4) * 4, 16
        if _tcp_signed(frame, l4, hdr_end):
            return "signed TCP (MD5 or AO)"
    kind = wire.l4_seed_kind(frame[:end])
    if kind not in ("pseudo", "full"):
        return "a checksum neither full nor a seed"
    mss = mtu - (hdr_end - l3)
    super_packet = end - l3 > mtu
    if super_packet and end - hdr_end <= mss:
        return "over the MTU with one MSS of payload or less"
    if not super_packet and kind != "pseudo":
        return "a frame within the MTU with a full checksum (nothing to do)"
    if not super_packet and ethertype == wire.ETH_P_IP and wire.ones_complement_sum(frame[l3:l4]) != 0xFFFF:
        # another system's IP checksum offload: the kernel sends such a frame as it is given (it sums IPv4
        # headers itself), softgso as the capture's NIC would (filled); the kernel recomputes a segment's
        return "a frame within the MTU with its IPv4 header checksum left to the NIC"
    src, dst = ((frame[l3 + 12 : l3 + 16], frame[l3 + 16 : l3 + 20]) if ethertype == wire.ETH_P_IP
                else (frame[l3 + 8 : l3 + 24], frame[l3 + 24 : l3 + 40]))
    seed = wire.ones_complement_sum(wire.pseudo_header(ethertype == wire.ETH_P_IPV6, src, dst, proto, end - l4))
    injected = frame[: l4 + check_offset] + seed.to_bytes(2, "big") + frame[l4 + check_offset + 2 :]  # (padding kept)
    gso_type = (VIRTIO_NET_HDR_GSO_UDP_L4 if proto == wire.IPPROTO_UDP else
                VIRTIO_NET_HDR_GSO_TCPV4 if ethertype == wire.ETH_P_IP else VIRTIO_NET_HDR_GSO_TCPV6)
    vnet = {"flags": VIRTIO_NET_HDR_F_NEEDS_CSUM, "gso_type": gso_type if super_packet else 0,
            "hdr_len": hdr_end if super_packet else 0, "gso_size": mss if super_packet else 0, "csum_start": l4,
            "csum_offset": check_offset}
    return injected, vnet, super_packet


def labelled_injection(frame: bytes, udp: bool = False) -> tuple[bytes, dict[str, int], bool, str] | str:
    """:func:`injection` for any frame, with the tc actions it needs: an MPLS frame (untagged, its stack
    over IP) is injected as the IP frame under its labels, each label pushed back on egress by tc's
    act_mpls, bottom first (the first push sets the bottom of stack, as skb_mpls_push does for a packet
    not MPLS yet), and its super-packets cut at the MTU less the labels (softgso counts them)."""
    ethertype = int.from_bytes(frame[12:14], "big") if len(frame) >= 14 else 0
    if ethertype not in wire.MPLS_ETHERTYPES:
        found = injection(frame, udp=udp)
        return found if isinstance(found, str) else (*found, "")
    labels, at = [], 14
    while at + 4 <= len(frame) and len(labels) < 8:
        entry = int.from_bytes(frame[at : at + 4], "big")
        labels.append((entry >> 12, entry >> 9 & 7, entry & 0xFF))
        at += 4
        if entry >> 8 & 1:
            break
    else:
        return "an MPLS stack without its bottom within 8 labels"
    version = frame[at] >> 4 if at < len(frame) else 0
    if version not in (4, 6):
        return "MPLS over something other than IP (a pseudowire)"
    inner = frame[:12] + (wire.ETH_P_IP if version == 4 else wire.ETH_P_IPV6).to_bytes(2, "big") + frame[at:]
    found = injection(inner, MTU - 4 * len(labels), udp)
    if isinstance(found, str):
        return found
    cast = "mc" if ethertype == wire.ETH_P_MPLS_MC else "uc"
    actions = " ".join(f"action mpls push protocol mpls_{cast} label {label} tc {tc} ttl {ttl}"
                       for label, tc, ttl in reversed(labels))
    return (*found, actions)


# --push-mpls's labels (label, tc, ttl), the first pushed first (it ends at the bottom of the stack)
PUSHED_LABELS = ((100, 0, 64), (200, 5, 33), (300, 7, 1))


def push_actions(count: int) -> tuple[str, ...]:
    """softgso's --action values for the first ``count`` PUSHED_LABELS, in pushing order."""
    return tuple(f"push-mpls:{label}:{tc}:{ttl}:uc" for label, tc, ttl in PUSHED_LABELS[:count])


def pushed_injection(frame: bytes, count: int, udp: bool = False) -> tuple[bytes, dict[str, int], bool, str] | str:
    """:func:`injection` of an IP frame that ``count`` labels of PUSHED_LABELS are pushed on, with the tc
    actions that push them (its super-packets cut at the MTU less the labels)."""
    if int.from_bytes(frame[12:14], "big") not in (wire.ETH_P_IP, wire.ETH_P_IPV6):
        return "not an untagged IP frame (--push-mpls takes those)"
    found = injection(frame, MTU - 4 * count, udp)
    if isinstance(found, str):
        return found
    actions = " ".join(f"action mpls push protocol mpls_uc label {label} tc {tc} ttl {ttl}"
                       for label, tc, ttl in PUSHED_LABELS[:count])
    return (*found, actions)


def capture_cases(paths: list[Path], per_capture: int, device: str = "no-offload", push_mpls: int = 0,
                  udp_gso: bool = False) -> tuple[list[CaptureCase], dict[str, int]]:
    """The cases of ``paths`` (at most ``per_capture`` super-packets and as many seeded frames each)
    on ``device`` (a key of DEVICES), with ``push_mpls`` labels of PUSHED_LABELS pushed on each (tc's
    act_mpls for the kernel, ``--action push-mpls`` for softgso, as OVS push_mpls labels a host's
    packets before GSO; the injection's gso_size the MSS the MTU leaves under them), with ``udp_gso``
    UDP datagrams too (USO: ``--udp-gso udp_l4`` for softgso, the virtio header's UDP_L4, which 6.12
    takes and 6.1 does not), and the count of records not taken, by reason."""
    options = (*(f"--action={action}" for action in push_actions(push_mpls)), *(("--udp-gso", "udp_l4") if udp_gso else ()))
    from softgso.errors import CaptureError
    from softgso.io.reader import open_capture

    cases: list[CaptureCase] = []
    skipped: dict[str, int] = {}
    names: set[str] = set()
    for path in paths:
        stem = "cap_" + "".join(c if c.isalnum() else "_" for c in path.stem)[:60]
        taken = {True: 0, False: 0}
        try:
            with open_capture(path) as reader:
                for number, record in enumerate(reader, start=1):
                    frame = _injectable(record, MAX_FRAME, "over 64 KB")
                    found = (frame if isinstance(frame, str) else
                             labelled_injection(frame, udp_gso) if not push_mpls else
                             pushed_injection(frame, push_mpls, udp_gso))
                    reason = found if isinstance(found, str) else None
                    if isinstance(frame, bytes) and not isinstance(found, str):
                        if taken[found[2]] >= per_capture:
                            reason = "over --per-capture"
                        else:
                            taken[found[2]] += 1
                            name = f"{stem}_{number}"
                            while name in names:
                                name += "_"
                            names.add(name)
                            cases.append(CaptureCase(name, f"{path.name} #{number}", frame, found[0], found[1],
                                                     found[2], device, found[3], options))
                    if reason is not None:
                        skipped[reason] = skipped.get(reason, 0) + 1
        except CaptureError as error:  # the records before a broken one are kept
            reason = f"the rest of a broken capture ({error.__class__.__name__})"
            skipped[reason] = skipped.get(reason, 0) + 1
    return cases, skipped


def softgso_frames(frame: bytes, device: str, scratch: Path, options: tuple[str, ...] = (),
                   ) -> tuple[list[bytes], dict[str, Any]]:
    """What ``softgso segment --device DEVICE`` writes for a capture of this one frame, and its JSON
    summary."""
    source, target = scratch / "in.pcap", scratch / "out.pcap"
    wire.write_pcap(source, [frame])
    target.unlink(missing_ok=True)
    run = subprocess.run([sys.executable, "-m", "softgso", "segment", str(source), str(target), "--device", device,
                          "--mtu", str(MTU), "--json", *options], capture_output=True, text=True, cwd=REPO)
    if run.returncode not in (0, 1):
        raise RuntimeError(f"softgso segment exited {run.returncode}: {run.stderr.strip()}")
    return wire.read_pcap(target), json.loads(run.stdout)


def verdict(case: CaptureCase, folder: Path, scratch: Path) -> tuple[bool, str]:
    """Whether softgso writes for the captured frame what the kernel sent for its injection."""
    meta = json.loads((folder / "meta.json").read_text())
    kernel = wire.read_pcap(folder / "kernel_out.pcap") if (folder / "kernel_out.pcap").exists() else []
    ours, summary = softgso_frames(case.frame, case.device, scratch, case.options)
    if meta.get("sendto_error") or not kernel:
        # the kernel refused the packet: softgso passes it through unchanged, and says why
        refused = ours == [case.frame] and bool(summary.get("reports"))
        return refused, f"the kernel refused ({meta.get('sendto_error') or 'nothing sent'}); softgso " + (
            "reported it" if refused else f"wrote {len(ours)} frame(s)")
    if ours == kernel:
        return True, f"same {len(kernel)} frame(s)"
    if len(ours) != len(kernel):
        return False, f"the kernel sent {len(kernel)} frame(s), softgso wrote {len(ours)}"
    index = next(i for i, (a, b) in enumerate(zip(ours, kernel, strict=True)) if a != b)
    a, b = ours[index], kernel[index]
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return False, f"frame {index} differs at byte {at} ({len(a)} B softgso, {len(b)} B kernel)"


def record(cases: list[CaptureCase], kernel: str | None, work: Path) -> Path:
    """Inject every case into the kernel (one boot); the folder of their recorded case folders."""
    from .vm import KernelVM

    shutil.rmtree(work, ignore_errors=True)
    recorded = work / "cases"
    with KernelVM(kernel, console_log=work / "console.log") as vm:
        print(f"capture-gso: {vm.kernel} ({vm.accel}), booted in {vm.boot_seconds:.1f} s", flush=True)
        for start in range(0, len(cases), BATCH_SIZE):
            vm.run_batch([case.guest_case() for case in cases[start : start + BATCH_SIZE]], recorded)
            print(f"  kernel: {min(start + BATCH_SIZE, len(cases))}/{len(cases)} cases", flush=True)
    return recorded


def disagreements(cases: list[CaptureCase], recorded: Path) -> list[tuple[CaptureCase, str]]:
    """The cases where softgso does not write what the kernel sent, each with how they differ."""
    found = []
    with tempfile.TemporaryDirectory() as scratch:
        for case in cases:
            agree, detail = verdict(case, recorded / case.name, Path(scratch))
            if not agree:
                found.append((case, detail))
    return found


def run(paths: list[Path], kernel: str | None, per_capture: int, work: Path, save: Path | None,
        device: str = "no-offload", push_mpls: int = 0, udp_gso: bool = False) -> int:
    cases, skipped = capture_cases(paths, per_capture, device, push_mpls, udp_gso)
    print(f"capture-gso: {len(cases)} cases from {len(paths)} capture(s) "
          f"({sum(c.super_packet for c in cases)} super-packets); not taken: "
          + (", ".join(f"{reason} {count}" for reason, count in sorted(skipped.items(), key=lambda i: -i[1])) or "none"),
          flush=True)
    if not cases:
        return 0
    recorded = record(cases, kernel, work)
    differing = disagreements(cases, recorded)
    for case, detail in differing:
        print(f"DIFFER {case.name} ({case.source}): {detail}", flush=True)
        if save is not None:
            target = save / case.name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(recorded / case.name, target)
            wire.write_pcap(target / "captured.pcap", [case.frame])
    print(f"capture-gso: {len(cases) - len(differing)}/{len(cases)} agree", flush=True)
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.kernel_oracle.capture_gso", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captures", type=Path, nargs="+", required=True)
    parser.add_argument("--kernel", default=None, help="6.1 (default), 6.12 or an installed release")
    parser.add_argument("--per-capture", type=int, default=16,
                        help="at most this many super-packets, and as many seeded frames, of each capture")
    parser.add_argument("--work", type=Path, default=REPO / "out" / "kernel-oracle-capture-gso")
    parser.add_argument("--save", type=Path, default=None,
                        help="copy each disagreeing case here (with captured.pcap, the record as captured)")
    parser.add_argument("--device", choices=sorted(DEVICES), default="no-offload",
                        help="softgso's device profile, and veth0's ethtool settings that match it")
    parser.add_argument("--push-mpls", type=int, choices=range(len(PUSHED_LABELS) + 1), default=0,
                        help="push this many labels on every packet (tc act_mpls / softgso --action push-mpls)")
    parser.add_argument("--udp-gso", action="store_true",
                        help="UDP datagrams too, as USO (virtio UDP_L4: 6.12 and later; softgso --udp-gso udp_l4)")
    parser.add_argument("--list", action="store_true", help="print the cases and the counts, no VM")
    args = parser.parse_args(argv)
    if args.list:
        cases, skipped = capture_cases(args.captures, args.per_capture, args.device, args.push_mpls, args.udp_gso)
        for case in cases:
            print(case.name, case.source, "super-packet" if case.super_packet else "seeded", case.vnet, case.tc_action)
        print(json.dumps(skipped, indent=1))
        return 0
    if args.udp_gso and not str(args.kernel or "").startswith("6.12"):
        parser.error("--udp-gso needs --kernel 6.12 (6.1's virtio header has no UDP_L4)")
    return run(args.captures, args.kernel, args.per_capture, args.work, args.save, args.device, args.push_mpls,
               args.udp_gso)


if __name__ == "__main__":
    sys.exit(main())
