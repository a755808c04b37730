"""GRO vectors, guest side (standard library only, no softgso code): runs in the oracle VM.

Per case: a fresh veth0 -> veth1 pair; veth0 with TSO off (else veth skips NAPI), veth1 with GRO on
(creates its NAPI), gro_flush_timeout and napi_defer_hard_irqs so that a burst is polled as one
batch; one AF_PACKET socket sends each burst on veth0, led by a frame of an ethertype GRO passes
straight up (its poll is the immediate one, read back before the burst goes; the burst, one sendmmsg,
then waits for the timer poll), then sleeps; an end frame closes the case's reading.
An AF_PACKET socket with PACKET_VNET_HDR on veth1 records what GRO handed to the stack, in order,
with its virtio_net_hdr (gso_type, gso_size, flags, csum_start/offset).

Request protocol as guest.py: ``requests/<n>.json`` -> ``responses/<n>.json`` and ``out/<dir>/results/``.
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

from .guest_batches import announce_ready, answer_batches

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
SO_RCVBUFFORCE = 33
LEAD_ETHERTYPE = 0x88B5  # IEEE local experimental: no GRO handler
# The timer's poll must come after the whole burst is queued (else it cuts the burst in two polls), and
# the next burst after that poll and the one that flushes what it held (two timeouts): a guest under
# TCG on a loaded host needs the margin. Which poll takes a burst is all that matters, not how long.
GRO_FLUSH_TIMEOUT_NS = 50_000_000
BURST_GAP_SECONDS = 0.25
END_MARKER = b"end"
READ_DEADLINE_SECONDS = 60.0


def shell(command: str) -> str:
    done = subprocess.run(command, shell=True, capture_output=True, text=True)
    return done.stdout + done.stderr


def setup(case: dict) -> list[str]:
    mtu = case.get("mtu", 9000)
    commands = [
        "ip link del veth0 2>/dev/null; true",
        "ip link add veth0 type veth peer name veth1",
        f"ip link set veth1 address {case['dst_mac']}",
        f"ip link set veth0 mtu {mtu}", f"ip link set veth1 mtu {mtu}",
        "sysctl -qw net.ipv6.conf.veth0.disable_ipv6=1 net.ipv6.conf.veth1.disable_ipv6=1",
        "ethtool -K veth0 tso off", "ethtool -K veth1 gro on",
        f"echo {GRO_FLUSH_TIMEOUT_NS} > /sys/class/net/veth1/gro_flush_timeout",
        "echo 1 > /sys/class/net/veth1/napi_defer_hard_irqs",
        *case.get("extra_setup", []),
        "ip link set veth0 up", "ip link set veth1 up",
    ]
    log = []
    for command in commands:
        out = shell(command).strip()
        if out:
            log.append(f"{command}: {out}")
    return log


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(_Iovec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", _Msghdr), ("len", ctypes.c_uint)]


_LIBC = ctypes.CDLL(None, use_errno=True)


def send_burst(sender: socket.socket, frames: list[bytes]) -> list[str]:
    """Every frame of a burst in one sendmmsg (libc, through ctypes): frame by frame, a slow guest could still
    be sending when the timer's poll comes. The errors, one per frame the kernel refused."""
    buffers = [ctypes.create_string_buffer(frame, len(frame)) for frame in frames]
    iovecs = (_Iovec * len(frames))(*[_Iovec(ctypes.addressof(b), len(f)) for b, f in zip(buffers, frames, strict=True)])
    messages = (_Mmsghdr * len(frames))()
    for number in range(len(frames)):
        messages[number].hdr.iov = ctypes.pointer(iovecs[number])
        messages[number].hdr.iovlen = 1
    errors, at = [], 0
    while at < len(frames):
        sent = _LIBC.sendmmsg(sender.fileno(), ctypes.byref(messages[at]), len(frames) - at, 0)
        if sent < 0:  # the frame at `at` was refused: said, and the rest sent
            number = ctypes.get_errno()
            errors.append(f"{type(OSError(number, '')).__name__}: [Errno {number}] {os.strerror(number)}")
            at += 1
        else:
            at += sent
    return errors


def read_one(receiver: socket.socket, frames: list[bytes]) -> bytes | None:
    """Read one frame: a received one goes to ``frames``; a lead-type frame is returned (its payload), not kept."""
    data, address = receiver.recvfrom(600000)
    if address[2] == socket.PACKET_OUTGOING:
        return None
    if int.from_bytes(data[12:14], "big") == LEAD_ETHERTYPE:
        return data[14:]
    frames.append(data)
    return None


def read_until(receiver: socket.socket, marker: bytes, frames: list[bytes]) -> None:
    """Read until the lead-type frame that starts with ``marker`` (READ_DEADLINE_SECONDS at most)."""
    deadline = time.monotonic() + READ_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if select.select([receiver], [], [], 1.0)[0]:
            payload = read_one(receiver, frames)
            if payload is not None and payload.startswith(marker):
                return


def run_case(case: dict) -> dict:
    log = setup(case)
    time.sleep(0.3)
    # A tap that is never read, opened first so that it is veth1's last (dev_add_pack puts a new one at
    # the head): __netif_receive_skb_list_core keeps a frame's last handler back until its sublist ends,
    # and for a frame no protocol takes (MPLS without mpls_router, 0x9000, LLDP, 802.3) that is the last
    # tap. Were that a recorder, an IP frame behind a run of such frames would be recorded before them,
    # not in the order GRO handed them to the stack.
    held_back = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    held_back.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    held_back.bind(("veth1", ETH_P_ALL))
    # two taps: frames (plain) and their virtio_net_hdr (PACKET_VNET_HDR, which refuses with EINVAL a
    # packet whose gso_type the header cannot say, e.g. UDP_L4 on 6.1: that one gets no header)
    receiver = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    receiver.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    receiver.bind(("veth1", ETH_P_ALL))
    vnet_receiver = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    vnet_receiver.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    vnet_receiver.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    vnet_receiver.bind(("veth1", ETH_P_ALL))
    for sock in (receiver, vnet_receiver):
        while select.select([sock], [], [], 0.05)[0]:
            try:
                sock.recv(600000)
            except OSError:
                pass
    sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sender.bind(("veth0", 0))
    dst = bytes.fromhex(case["dst_mac"].replace(":", ""))
    lead = dst + bytes.fromhex("020000000099") + LEAD_ETHERTYPE.to_bytes(2, "big") + bytes(46)
    errors: list[str] = []
    frames: list[bytes] = []
    for number, burst in enumerate(case["bursts"]):
        frames_out = [bytes.fromhex(frame) for frame in burst]  # decoded before the lead: no delay after it
        # the lead's poll done (its frame read) before the burst goes: else, on a guest whose softirqs wait
        # for ksoftirqd, the lead's poll takes the burst's first frames
        marker = b"lead %d;" % number
        sender.send(lead[:14] + marker + bytes(46 - len(marker)))
        read_until(receiver, marker, frames)
        errors += send_burst(sender, frames_out)
        time.sleep(BURST_GAP_SECONDS)
    # then an end frame, and everything read until it came (a packet GRO still held is handed up at the end of
    # the end frame's poll: a short quiet after it collects those)
    sender.send(lead[:14] + END_MARKER + bytes(46 - len(END_MARKER)))
    read_until(receiver, END_MARKER, frames)
    while select.select([receiver], [], [], 0.3)[0]:
        read_one(receiver, frames)
    headers = []
    while select.select([vnet_receiver], [], [], 0.1)[0]:
        try:
            data, address = vnet_receiver.recvfrom(600000)
        except OSError as exc:
            headers.append((None, f"{type(exc).__name__}: {exc}"))
            continue
        if address[2] != socket.PACKET_OUTGOING and int.from_bytes(data[22:24], "big") != LEAD_ETHERTYPE:
            headers.append((data[:10], data[10:]))
    received = []
    pending = list(headers)
    for frame in frames:
        vnet = None
        if pending and pending[0][0] is not None and pending[0][1] == frame:
            vnet = pending.pop(0)[0].hex()
        elif pending and pending[0][0] is None:
            vnet = "error: " + pending.pop(0)[1]
        received.append({"vnet": vnet, "frame": frame.hex()})
    sysfs = {name: shell(f"cat /sys/class/net/veth1/{name}").strip()
             for name in ("gro_flush_timeout", "napi_defer_hard_irqs", "gro_max_size")}
    ethtool = shell("ethtool -k veth1 | grep -E 'generic-receive|rx-gro|rx-udp-gro'")
    sysfs["ip_link"] = shell("ip -d link show veth1 | grep -oE '(gro|gso|tso)[a-z_0-9]* [0-9]+' | tr '\\n' ' '").strip()
    for sock in (held_back, receiver, vnet_receiver, sender):
        sock.close()
    shell("ip link del veth0")
    return {"name": case["name"], "received": received, "send_errors": errors, "log": log, "sysfs": sysfs,
            "ethtool_veth1": ethtool}


def serve(share: Path) -> None:
    shell("modprobe veth")
    shell("sysctl -w net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.default.autoconf=0 "
          "net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.default.dad_transmits=0")
    uname = os.uname()
    hz = shell("grep -E '^CONFIG_HZ=' /boot/config-$(uname -r) 2>/dev/null").strip()
    announce_ready(share, {"kernel": f"{uname.release} {uname.version}", "kernel_release": uname.release, "hz": hz})
    answer_batches(share, run_case)

if __name__ == "__main__":
    serve(Path(sys.argv[1]))
