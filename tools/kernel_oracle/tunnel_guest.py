"""Tunnel vectors, guest side (standard library only, no softgso code): runs in the oracle VM.

Per case (tools/kernel_oracle/tunnel_cases.py builds them): a fresh veth0 <-> veth1 pair with the
case's ethtool settings on veth0, a dummy dum0 fed by a tc mirror of veth0's egress (the tc egress
hook runs before validate_xmit_skb, so dum0 gets the unsegmented super-packet and keeps it whole),
a real tunnel device T whose remote sits behind veth0, and a packet socket with PACKET_VNET_HDR on
T that sends one TCP super-packet. T's driver encapsulates it; veth0 segments it in software. The
guest records the super-packet seen on dum0 and the frames veth1 receives. A case with ``gro_burst``
sends plain TCP segments on vethA instead, which vethB's GRO merges and IP forwarding routes into T;
``trace_devices`` asks for the net_dev_start_xmit trace lines of those devices (gso_type, gso_size).

Request protocol as guest.py: ``requests/<n>.json`` -> ``responses/<n>.json`` and ``out/<dir>/<case>/``.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from .guest_batches import announce_ready, answer_batches

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
SO_RCVBUFFORCE = 33
UDP_SEGMENT = 103
LEAD_ETHERTYPE = 0x88B5  # IEEE local experimental: no GRO handler
MODULES = ("veth", "dummy", "sch_ingress", "cls_matchall", "act_mirred", "vxlan", "geneve", "ip_gre", "ip6_gre",
           "ipip", "sit", "ip6_tunnel", "act_tunnel_key", "cls_bpf", "fou", "fou6")
MPLS_MODULES = ("mpls_router", "mpls_iptunnel", "act_mpls")  # the MPLS-and-tunnel cases (spec 7.3, 7.4)
# TCP repair (include/uapi/linux/tcp.h): an established connection without a handshake, so that a
# local TCP socket sends a TSO super-packet down a route nobody answers on
TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ, TCP_REPAIR_OPTIONS, TCP_REPAIR_WINDOW = 19, 20, 21, 22, 29
TCP_RECV_QUEUE, TCP_SEND_QUEUE = 1, 2
TCPOPT_MSS, TCPOPT_TIMESTAMP = 2, 8


def shell(command: str) -> str:
    done = subprocess.run(command, shell=True, capture_output=True, text=True)
    return done.stdout + done.stderr


def sock_on(device: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((device, ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    while select.select([sock], [], [], 0.05)[0]:
        sock.recv(262144)
    return sock


def received(sock: socket.socket, quiet: float) -> list[tuple[bytes, tuple]]:
    """Every (frame, AF_PACKET address) until the socket stays quiet for ``quiet`` s (3 s at most)."""
    frames: list[tuple[bytes, tuple]] = []
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if not select.select([sock], [], [], quiet)[0]:
            break
        frames.append(sock.recvfrom(262144))
    return frames


def drain(sock: socket.socket, outgoing: bool, quiet: float = 0.4) -> list[str]:
    return [data.hex() for data, address in received(sock, quiet) if (address[2] == socket.PACKET_OUTGOING) == outgoing]


def send_gro_burst(burst: dict) -> tuple[socket.socket, str | None]:
    """The segments of one TCP flow into a veth whose peer runs GRO, in one NAPI poll: a leading frame
    GRO passes straight up, then the burst, which waits for gro_flush_timeout (as gro_guest.py)."""
    sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sender.bind((burst["device"], 0))
    frames = [bytes.fromhex(frame) for frame in burst["frames"]]
    error = None
    try:
        sender.send(frames[0][:12] + LEAD_ETHERTYPE.to_bytes(2, "big") + bytes(46))
        for frame in frames:
            sender.send(frame)
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
    time.sleep(0.1)
    return sender, error


def traced_xmits(devices: list[str]) -> list[str]:
    """The net_dev_start_xmit trace lines of ``devices`` (gso_type, gso_size, len of each skb sent)."""
    if not devices:
        return []
    lines = shell("cat /sys/kernel/tracing/trace").splitlines()
    return [line.strip() for line in lines if any(f"dev={device} " in line for device in devices)]


def repaired_tcp_socket(spec: dict) -> socket.socket:
    """A TCP socket put in the established state by TCP_REPAIR (no handshake; the peer is never asked),
    with the MSS and timestamp options a SYN-ACK would have given and a 64 KiB send window. Leaving
    repair mode sends one window probe: the caller waits before its capture starts."""
    sock = socket.socket(socket.AF_INET6 if ":" in spec["dst"] else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
    sock.setsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, 0x10000000)
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)
    sock.setsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, 0x20000000)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, spec["mss_clamp"])  # the clamp connect() syncs the MSS with
    sock.bind((spec["src"], 40000))
    sock.connect((spec["dst"], spec["port"]))
    options = struct.pack("=II", TCPOPT_MSS, spec["mss_clamp"]) + struct.pack("=II", TCPOPT_TIMESTAMP, 0)
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_OPTIONS, options)
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_WINDOW,
                    struct.pack("=IIIII", 0x20000000, 65535, 65535, 65535, 0x20000000))
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 0)
    return sock


def drain_cooked(sock: socket.socket, quiet: float = 0.05) -> list[dict]:
    """Incoming frames with what AF_PACKET said of each (protocol, packet type, ARPHRD type, address):
    the fields of a Linux cooked (SLL) capture header."""
    return [{"data": data.hex(), "protocol": address[1], "pkttype": address[2], "hatype": address[3],
             "addr": address[4].hex()} for data, address in received(sock, quiet)
            if address[2] != socket.PACKET_OUTGOING]


def run_case(case: dict) -> dict:
    log: list[str] = []
    for command in case["setup"]:
        out = shell(command)
        if out.strip():
            log.append(f"{command}: {out.strip()}")
    tcp_send = case.get("tcp_send")
    tcp_sender, tcp_mss, sender = None, None, None
    error = None
    if tcp_send:
        try:
            tcp_sender = repaired_tcp_socket(tcp_send)
            tcp_mss = tcp_sender.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
        except OSError as exc:
            error = f"TCP repair: {type(exc).__name__}: {exc}"
    time.sleep(0.3)  # link-up noise (MLD, router solicitations) goes before the capture starts
    veth1, dum0 = sock_on("veth1"), sock_on("dum0")
    also = {device: sock_on(device) for device in case.get("also_capture", [])}
    udp_send = case.get("udp_send")
    if tcp_send:
        if tcp_sender is not None:
            payload = bytes((i * 7 + 3) & 0xFF for i in range(tcp_send["payload_len"]))
            try:
                tcp_sender.send(payload)
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc}"
    elif udp_send:
        # a UDP socket with UDP_SEGMENT routed over tnl0: the tunnel driver builds UDP_L4 | tunnel bits
        family = socket.AF_INET6 if ":" in udp_send["dst"] else socket.AF_INET
        sender = socket.socket(family, socket.SOCK_DGRAM)
        sender.setsockopt(socket.IPPROTO_UDP, UDP_SEGMENT, udp_send["gso_size"])
        payload = bytes((i * 11 + 1) & 0xFF for i in range(udp_send["payload_len"]))
        try:
            sender.sendto(payload, (udp_send["dst"], udp_send["port"]))
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
    elif case.get("gro_burst"):
        sender, error = send_gro_burst(case["gro_burst"])
    else:
        sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        sender.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        vnet = case["vnet"]
        header = struct.pack("<BBHHHH", vnet["flags"], vnet["gso_type"], vnet["hdr_len"], vnet["gso_size"],
                             vnet["csum_start"], vnet["csum_offset"])
        try:
            sender.sendto(header + bytes.fromhex(case["frame"]), (case["tx_device"], case["sll_protocol"]))
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
    segments = drain(veth1, outgoing=False)
    supers = drain(dum0, outgoing=True, quiet=0.05)
    # dum1 is fed by a mirror to its ingress (a dummy's egress would cut an MPLS super-packet: mpls_features)
    also_frames = {device: drain_cooked(sock) for device, sock in also.items()}
    after = {command: shell(command) for command in case.get("after", [])}  # counters, tc stats, dmesg
    stats = {dev: shell(f"cat /sys/class/net/{dev}/statistics/tx_dropped").strip() for dev in ("veth0",)}
    ethtool = shell("ethtool -k veth0")
    trace = traced_xmits(case.get("trace_devices", []))
    for sock in (veth1, dum0, *also.values(), *([sender] if sender is not None else [])):
        sock.close()
    if tcp_sender is not None:
        tcp_sender.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # no FIN
        tcp_sender.close()
    for command in case["teardown"]:
        shell(command)
    return {"name": case["name"], "sendto_error": error, "segments": segments, "supers": supers,
            "veth0_tx_dropped": stats["veth0"], "ethtool_veth0": ethtool, "log": log, "also": also_frames,
            "after": after, "tcp_mss": tcp_mss, "trace": trace}


def serve(share: Path) -> None:
    for module in MODULES + MPLS_MODULES:
        shell(f"modprobe {module}")
    shell("sysctl -w net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.default.autoconf=0 "
          "net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.default.dad_transmits=0")
    uname = os.uname()
    announce_ready(share, {"kernel": f"{uname.release} {uname.version}", "kernel_release": uname.release})
    answer_batches(share, run_case)

if __name__ == "__main__":
    serve(Path(sys.argv[1]))
