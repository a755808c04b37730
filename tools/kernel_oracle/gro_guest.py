"""GRO vectors, guest side (standard library only, no softgso code): runs in the oracle VM.

Per case: a fresh veth0 -> veth1 pair; veth0 with TSO off (else veth skips NAPI), veth1 with GRO on
(creates its NAPI), gro_flush_timeout and napi_defer_hard_irqs so that a burst is polled as one
batch; one AF_PACKET socket sends each burst on veth0, led by a frame of an ethertype GRO passes
straight up (its poll is the immediate one, the burst then waits for the timer poll), then sleeps.
An AF_PACKET socket with PACKET_VNET_HDR on veth1 records what GRO handed to the stack, in order,
with its virtio_net_hdr (gso_type, gso_size, flags, csum_start/offset).

Request protocol as guest.py: ``requests/<n>.json`` -> ``responses/<n>.json`` and ``out/<dir>/results/``.
"""

from __future__ import annotations

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
GRO_FLUSH_TIMEOUT_NS = 10_000_000
BURST_GAP_SECONDS = 0.08


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
    errors = []
    for burst in case["bursts"]:
        sender.send(lead)
        for frame in burst:
            try:
                sender.send(bytes.fromhex(frame))
            except OSError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
        time.sleep(BURST_GAP_SECONDS)
    frames = []
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and select.select([receiver], [], [], 0.3)[0]:
        data, address = receiver.recvfrom(600000)
        if address[2] != socket.PACKET_OUTGOING and int.from_bytes(data[12:14], "big") != LEAD_ETHERTYPE:
            frames.append(data)
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
