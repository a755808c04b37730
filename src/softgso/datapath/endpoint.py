"""Traffic endpoints for the self-test, run as ``python -m softgso.datapath.endpoint`` inside a namespace.

Each process enters its network namespace first (setns on /var/run/netns/NAME), then runs one
role with plain kernel sockets and prints its result as one JSON line on stdout (servers print
``{"ready": true}`` first, once they listen). TCP data is random and hashed (SHA-256) on both
ends; UDP datagrams carry a sequence number and a payload derived from it, so that the receiver
can verify each one that arrives and count the missing ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import struct
import sys
import time

from .netns import setns

SOL_UDP = 17
UDP_SEGMENT = 103
CHUNK = 1 << 20
UDP_MAGIC = 0x5347534F  # "SGSO"
UDP_HEADER = struct.Struct("!II")
PATTERN_SEED = b"softgso-udp-pattern"


def enter_netns(name: str) -> None:
    """Move this process into the named network namespace."""
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd)
    finally:
        os.close(fd)


def emit(record: dict[str, object]) -> None:
    """One JSON line on stdout."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def udp_pattern() -> bytes:
    """The 128 KB block UDP payloads are cut from (both ends derive it the same way)."""
    return hashlib.shake_256(PATTERN_SEED).digest(1 << 17)


def udp_payload(pattern: bytes, seq: int, length: int) -> bytes:
    """The payload of datagram ``seq``: a slice of the pattern that depends on seq."""
    start = (seq * 7919) % (len(pattern) - length)
    return pattern[start : start + length]


def send_random(sock: socket.socket, total: int) -> tuple[int, str]:
    """Send ``total`` random bytes; return (bytes, sha256 hex).

    The bytes come from numpy's PCG64 seeded from os.urandom: five times faster than os.urandom
    (360 MB/s on this kind of machine, which would make the sender the bottleneck of a fast path).
    """
    # numpy's BLAS would start a thread per core at import, which spin for a while and take CPU from the transfer
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import numpy as np

    generator = np.random.default_rng(int.from_bytes(os.urandom(16), "little"))
    digest = hashlib.sha256()
    sent = 0
    while sent < total:
        chunk = generator.bytes(min(CHUNK, total - sent))
        digest.update(chunk)
        sock.sendall(chunk)
        sent += len(chunk)
    return sent, digest.hexdigest()


def receive_all(sock: socket.socket) -> tuple[int, str, float]:
    """Receive until EOF; return (bytes, sha256 hex, seconds from the first byte to EOF)."""
    digest = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total = 0
    first = 0.0
    while True:
        count = sock.recv_into(buf)
        if not count:
            break
        if not total:
            first = time.monotonic()
        digest.update(view[:count])
        total += count
    return total, digest.hexdigest(), (time.monotonic() - first) if total else 0.0


def tcp_server(args: argparse.Namespace) -> None:
    """Accept one connection, receive the forward stream, then send the return stream."""
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((args.host, args.port))
        listener.listen(1)
        listener.settimeout(args.timeout)
        emit({"ready": True})
        conn, _ = listener.accept()
    with conn:
        conn.settimeout(args.timeout)
        recv_bytes, recv_sha, recv_seconds = receive_all(conn)
        sent_bytes, sent_sha = send_random(conn, args.back_bytes)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)
    emit({"recv_bytes": recv_bytes, "recv_sha256": recv_sha, "recv_seconds": recv_seconds,
          "sent_bytes": sent_bytes, "sent_sha256": sent_sha})


def tcp_client(args: argparse.Namespace) -> None:
    """Connect (retrying while the path comes up), send the forward stream, receive the return stream."""
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    deadline = time.monotonic() + args.timeout
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(2.0)
        try:
            sock.connect((args.host, args.port))
            break
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    with sock:
        sock.settimeout(args.timeout)
        start = time.monotonic()
        sent_bytes, sent_sha = send_random(sock, args.bytes)
        sock.shutdown(socket.SHUT_WR)
        recv_bytes, recv_sha, recv_seconds = receive_all(sock)
        elapsed = time.monotonic() - start
    emit({"recv_bytes": recv_bytes, "recv_sha256": recv_sha, "recv_seconds": recv_seconds,
          "sent_bytes": sent_bytes, "sent_sha256": sent_sha, "seconds": elapsed})


def udp_server(args: argparse.Namespace) -> None:
    """Receive datagrams until the line has been idle for a while; verify each one."""
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    pattern = udp_pattern()
    seen: set[int] = set()
    intact = corrupt = duplicate = intact_bytes = 0
    first = last = 0.0
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE (we are root)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        sock.bind((args.host, args.port))
        emit({"ready": True})
        sock.settimeout(args.timeout)
        buf = bytearray(65536)
        while True:
            try:
                count = sock.recv_into(buf)
            except TimeoutError:
                break
            now = time.monotonic()
            if not first:
                first = now
                sock.settimeout(args.idle)
            last = now
            if count < UDP_HEADER.size:
                corrupt += 1
                continue
            magic, seq = UDP_HEADER.unpack_from(buf)
            body = bytes(buf[UDP_HEADER.size : count])
            if magic != UDP_MAGIC or body != udp_payload(pattern, seq, len(body)) or count != args.datagram:
                corrupt += 1
            elif seq in seen:
                duplicate += 1
            else:
                seen.add(seq)
                intact += 1
                intact_bytes += count
    emit({"intact": intact, "intact_bytes": intact_bytes, "corrupt": corrupt, "duplicate": duplicate,
          "recv_seconds": last - first})


def udp_client(args: argparse.Namespace) -> None:
    """Send ``bytes`` worth of datagrams of ``datagram`` bytes, many per send with UDP_SEGMENT."""
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    pattern = udp_pattern()
    body_len = args.datagram - UDP_HEADER.size
    count = args.bytes // args.datagram
    per_send = max(1, min(args.per_send, 65000 // args.datagram))
    start = time.monotonic()
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if per_send > 1:
            sock.setsockopt(SOL_UDP, UDP_SEGMENT, args.datagram)
        sock.connect((args.host, args.port))
        seq = 0
        while seq < count:
            batch = min(per_send, count - seq)
            message = b"".join(UDP_HEADER.pack(UDP_MAGIC, s) + udp_payload(pattern, s, body_len)
                               for s in range(seq, seq + batch))
            try:
                sock.send(message)
            except OSError:
                time.sleep(0.001)
                continue
            seq += batch
            if args.pace_us:
                time.sleep(args.pace_us / 1e6)
    emit({"sent": count, "sent_bytes": count * args.datagram, "seconds": time.monotonic() - start})


ROLES = {"tcp-server": tcp_server, "tcp-client": tcp_client, "udp-server": udp_server, "udp-client": udp_client}


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, enter the namespace, run the role."""
    parser = argparse.ArgumentParser(prog="python -m softgso.datapath.endpoint")
    parser.add_argument("role", choices=sorted(ROLES))
    parser.add_argument("--netns", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=5201)
    parser.add_argument("--bytes", type=int, default=64 << 20)
    parser.add_argument("--back-bytes", type=int, default=0)
    parser.add_argument("--datagram", type=int, default=1400)
    parser.add_argument("--per-send", type=int, default=44)
    parser.add_argument("--pace-us", type=int, default=0)
    parser.add_argument("--idle", type=float, default=1.5)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    enter_netns(args.netns)
    try:
        ROLES[args.role](args)
    except OSError as exc:
        emit({"error": f"{args.role}: {exc}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
