"""Capture-file throughput: softgso.io against dpkt and against `cp`, on large records.

Run: .venv/bin/python benchmarks/io_readers.py [--size-mb 200] [--record 65536] [--dir /dev/shm]

Writes a pcap and a pcapng of ``--size-mb`` MB of ``--record``-byte records with dpkt (so the
input does not come from the code under test), reads each once to warm the page cache, then
reports the best and the median of ``--repeat`` interleaved runs in MB/s of input (single runs on
a shared 2-core VM vary by 2x, so only numbers from the same invocation compare) for:

  cp                      `cp IN OUT`, and `cp IN OUT` then fsync(OUT) (as softgso's writer does)
  read pcap   dpkt        dpkt.pcap.Reader over a buffered file, touching every record
  read pcap   softgso     softgso.io.open_capture
  pcap->pcap  dpkt        dpkt.pcap.Reader -> dpkt.pcap.Writer (writepkt_time), with and without fsync
  pcap->pcap  softgso     open_capture -> open_writer(like=reader).write(record), with and without fsync
  read pcapng dpkt        dpkt.pcapng.Reader
  read pcapng softgso     open_capture
  pcapng->pcapng softgso  open_capture -> open_writer(like=reader)

The numbers quoted in src/softgso/io/pcap.py and pcapng.py come from this script.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dpkt

from softgso.io import open_capture, open_writer


def make_inputs(directory: Path, size_mb: int, record_len: int) -> tuple[Path, Path]:
    """A pcap and a pcapng of about ``size_mb`` MB of ``record_len``-byte records (written by dpkt)."""
    pcap_path = directory / f"bench_{record_len}.pcap"
    pcapng_path = directory / f"bench_{record_len}.pcapng"
    count = size_mb * 1_000_000 // record_len
    payload = bytes(range(256)) * (record_len // 256 + 1)
    records = [(1_700_000_000 + i * 0.001, payload[i % 256 : i % 256 + record_len]) for i in range(min(count, 256))]
    for path, module in ((pcap_path, dpkt.pcap), (pcapng_path, dpkt.pcapng)):
        if path.exists() and path.stat().st_size >= size_mb * 1_000_000 * 0.99:
            continue
        with open(path, "wb") as handle:
            writer = module.Writer(handle, snaplen=262144)
            for i in range(count):
                writer.writepkt_time(records[i % len(records)][1], 1_700_000_000 + i * 0.001)
    return pcap_path, pcapng_path


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def run_cp(src: Path, dst: Path) -> None:
    subprocess.run(["cp", str(src), str(dst)], check=True)
    fsync_path(dst)


def read_dpkt_pcap(src: Path, dst: Path) -> None:
    with open(src, "rb") as handle:
        total = 0
        for _ts, buf in dpkt.pcap.Reader(handle):
            total += len(buf)


def read_dpkt_pcapng(src: Path, dst: Path) -> None:
    with open(src, "rb") as handle:
        total = 0
        for _ts, buf in dpkt.pcapng.Reader(handle):
            total += len(buf)


def read_softgso(src: Path, dst: Path) -> None:
    with open_capture(src) as reader:
        total = 0
        for record in reader:
            total += len(record.data)


def copy_dpkt_pcap(src: Path, dst: Path) -> None:
    with open(src, "rb") as handle, open(dst, "wb") as out:
        reader = dpkt.pcap.Reader(handle)
        writer = dpkt.pcap.Writer(out, snaplen=reader.snaplen, linktype=reader.datalink())
        for ts, buf in reader:
            writer.writepkt_time(buf, ts)
        out.flush()
        os.fsync(out.fileno())


def copy_softgso(src: Path, dst: Path) -> None:
    with open_capture(src) as reader, open_writer(dst, like=reader) as writer:
        for record in reader:
            writer.write(record)


def copy_softgso_no_fsync(src: Path, dst: Path) -> None:
    with open_capture(src) as reader, open_writer(dst, like=reader, fsync=False) as writer:
        for record in reader:
            writer.write(record)


def copy_dpkt_pcap_no_fsync(src: Path, dst: Path) -> None:
    with open(src, "rb") as handle, open(dst, "wb") as out:
        reader = dpkt.pcap.Reader(handle)
        writer = dpkt.pcap.Writer(out, snaplen=reader.snaplen, linktype=reader.datalink())
        for ts, buf in reader:
            writer.writepkt_time(buf, ts)


def run_cp_no_fsync(src: Path, dst: Path) -> None:
    subprocess.run(["cp", str(src), str(dst)], check=True)


def measure(
    rows: list[tuple[str, Callable[[Path, Path], None], Path]], dst: Path, repeat: int
) -> dict[str, list[float]]:
    """Seconds per run of every row; rows are interleaved so that load drift hits them alike."""
    seconds: dict[str, list[float]] = {name: [] for name, _, _ in rows}
    for _ in range(repeat):
        for name, action, src in rows:
            started = time.perf_counter()
            action(src, dst)
            seconds[name].append(time.perf_counter() - started)
            if dst.exists():
                dst.unlink()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--record", type=int, default=65536, help="record length in bytes")
    parser.add_argument("--repeat", type=int, default=5)
    # tmpfs by default: on a disk, writeback throttling makes write timings vary 3x between runs
    # and measures the disk rather than the code.
    default_dir = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    parser.add_argument("--dir", type=Path, default=default_dir)
    args = parser.parse_args()
    pcap_path, pcapng_path = make_inputs(args.dir, args.size_mb, args.record)
    out = args.dir / "bench_out.cap"
    for path in (pcap_path, pcapng_path):
        read_softgso(path, out)  # warm the page cache
    rows = [
        ("cp", run_cp_no_fsync, pcap_path),
        ("pcap->pcap dpkt", copy_dpkt_pcap_no_fsync, pcap_path),
        ("pcap->pcap softgso (fsync=False)", copy_softgso_no_fsync, pcap_path),
        ("cp (+fsync)", run_cp, pcap_path),
        ("read pcap dpkt", read_dpkt_pcap, pcap_path),
        ("read pcap softgso", read_softgso, pcap_path),
        ("pcap->pcap dpkt (+fsync)", copy_dpkt_pcap, pcap_path),
        ("pcap->pcap softgso (atomic, fsync)", copy_softgso, pcap_path),
        ("read pcapng dpkt", read_dpkt_pcapng, pcapng_path),
        ("read pcapng softgso", read_softgso, pcapng_path),
        ("pcapng->pcapng softgso (atomic, fsync)", copy_softgso, pcapng_path),
    ]
    size_mb = pcap_path.stat().st_size / 1e6
    print(f"input: {size_mb:.0f} MB in {args.dir}, {args.record}-byte records, {args.repeat} interleaved runs "
          "(MB/s of input: best / median)")
    for (name, _, src), runs in zip(rows, measure(rows, out, args.repeat).values(), strict=True):
        megabytes = src.stat().st_size / 1e6
        print(f"  {name:42s} {megabytes / min(runs):8.0f} / {megabytes / statistics.median(runs):6.0f}")


if __name__ == "__main__":
    main()
