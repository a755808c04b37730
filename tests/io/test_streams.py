"""Inputs that cannot seek (a FIFO, a pipe on standard input) and standard output as OUT.

Rule: ``open_capture`` reads any input front to back without seeking, so a FIFO or ``-`` gives the very
records the same bytes give as a regular file, even handed over a few bytes at a time; ``-`` as the
writer's path streams the capture to standard output (not atomic: no temporary file).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from capture_helpers import png_epb, png_idb, png_isb, png_shb, tcp_frames

from softgso.io import RecordError, open_capture, open_writer

FRAMES = tcp_frames(5, payload_step=3000)  # up to 12 KB: records straddle the pipe's reads
TIMEOUT = 60


def pcap_bytes(order: str) -> bytes:
    import struct

    head = struct.pack(order + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    return head + b"".join(struct.pack(order + "IIII", 1_700_000_000 + i, i, len(f), len(f)) + f
                           for i, f in enumerate(FRAMES))


def pcapng_bytes(order: str) -> bytes:
    blocks = [png_shb(order, comment="streamed"), png_idb(order, 1, name="eth0")]
    blocks += [png_epb(order, 0, i * 1000, f) for i, f in enumerate(FRAMES)]
    return b"".join([*blocks[:3], png_isb(order, 0), *blocks[3:]])


CAPTURES = {"pcap-le": pcap_bytes("<"), "pcap-be": pcap_bytes(">"), "pcapng-le": pcapng_bytes("<"),
            "pcapng-be": pcapng_bytes(">")}


@contextmanager
def fifo_fed(folder: Path, data: bytes, dribble: bool = True) -> Iterator[Path]:
    """A FIFO that a thread writes ``data`` into (the first bytes one at a time) once a reader opens it."""
    fifo = folder / "capture.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        try:
            with open(fifo, "wb", buffering=0) as pipe:
                head = 30 if dribble else 0
                for i in range(head):
                    pipe.write(data[i : i + 1])
                    time.sleep(0.001)
                pipe.write(data[head:])
        except BrokenPipeError:
            pass  # the reader stopped early: what it read is the test's business

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield fifo
    finally:
        thread.join(TIMEOUT)
        if thread.is_alive():
            # nobody opened the FIFO: open its read end so that the writer wakes up and ends
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
            thread.join(TIMEOUT)


def records_of(source: Path | str) -> tuple[list[tuple[int, bytes, int, int]], dict]:
    with open_capture(source) as reader:
        records = [(r.timestamp_ns, bytes(r.data), r.orig_len, r.interface_id) for r in reader]
        shape = {"format": reader.format, "byte_order": reader.byte_order, "linktypes": reader.linktypes,
                 "comment": reader.comment}
    return records, shape


@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize("name", list(CAPTURES))
def test_a_fifo_reads_like_the_same_bytes_in_a_regular_file(tmp_path: Path, name: str) -> None:
    regular = tmp_path / "capture"
    regular.write_bytes(CAPTURES[name])
    expected = records_of(regular)
    assert len(expected[0]) == len(FRAMES)
    with fifo_fed(tmp_path, CAPTURES[name]) as fifo:
        assert records_of(fifo) == expected


@pytest.mark.timeout(TIMEOUT)
def test_a_fifo_cut_short_names_the_record_like_a_file(tmp_path: Path) -> None:
    data = CAPTURES["pcap-le"][:-100]
    regular = tmp_path / "cut.pcap"
    regular.write_bytes(data)
    with pytest.raises(RecordError) as from_file, open_capture(regular) as reader:
        list(reader)
    with fifo_fed(tmp_path, data) as fifo, pytest.raises(RecordError) as from_fifo, open_capture(fifo) as reader:
        list(reader)
    assert (from_fifo.value.index, from_fifo.value.offset) == (from_file.value.index, from_file.value.offset) == (
        4, len(data) - 16 - len(FRAMES[4]) + 100)


@pytest.mark.timeout(TIMEOUT)
def test_a_fifo_has_no_size(tmp_path: Path) -> None:
    with fifo_fed(tmp_path, CAPTURES["pcap-le"], dribble=False) as fifo, open_capture(fifo) as reader:
        assert reader.file_size == 0
        assert sum(1 for _ in reader) == len(FRAMES)
        assert reader.bytes_read == len(CAPTURES["pcap-le"])


@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize("name", list(CAPTURES))
def test_dash_is_standard_input(tmp_path: Path, name: str) -> None:
    regular = tmp_path / "capture"
    regular.write_bytes(CAPTURES[name])
    child = ("import hashlib, sys\nfrom softgso.io import open_capture\n"
             "with open_capture('-') as reader:\n"
             "    print(reader.path, reader.format, [hashlib.sha1(bytes(r.data)).hexdigest() for r in reader])\n")
    done = subprocess.run([sys.executable, "-c", child], input=CAPTURES[name], capture_output=True, timeout=TIMEOUT,
                          check=True)
    import hashlib

    fmt = "pcapng" if name.startswith("pcapng") else "pcap"
    assert done.stdout.decode().split(" ", 2) == ["<stdin>", fmt, f"{[hashlib.sha1(f).hexdigest() for f in FRAMES]}\n"]


@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize("name", list(CAPTURES))
def test_dash_writer_streams_to_standard_output(tmp_path: Path, name: str) -> None:
    source = tmp_path / "capture"
    source.write_bytes(CAPTURES[name])
    copy = tmp_path / "copy"
    with open_capture(source) as reader, open_writer(copy, like=reader) as writer:
        for record in reader:
            writer.write(record)
    child = ("import sys\nfrom softgso.io import open_capture, open_writer\n"
             "with open_capture(sys.argv[1]) as reader, open_writer('-', like=reader) as writer:\n"
             "    assert writer.path == '<stdout>' and writer.streaming\n"
             "    for record in reader:\n"
             "        writer.write(record)\n")
    done = subprocess.run([sys.executable, "-c", child, str(source)], capture_output=True, timeout=TIMEOUT, check=True,
                          cwd=tmp_path)
    assert done.stdout == copy.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["capture", "copy"], "no temporary file, no file named -"
