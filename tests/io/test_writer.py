"""The writer: atomic replacement of OUT, unjoined parts, and a reader whose chunks never leak."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest
from capture_helpers import png_epb, png_idb, png_shb, scapy_decode, tcp_frames
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

import softgso.io.source as source_module
import softgso.io.writer as writer_module
from softgso.errors import CaptureError
from softgso.io import open_capture, open_writer


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_exception_inside_writer_leaves_no_output_and_no_temp_file(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    with pytest.raises(RuntimeError), open_writer(out) as writer:
        writer.write_record(1, [b"x" * 60])
        assert leftovers(tmp_path)  # the temporary file exists while writing
        raise RuntimeError("caller gives up")
    assert not out.exists() and leftovers(tmp_path) == []


def test_failed_run_leaves_existing_output_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    out.write_bytes(b"previous result")
    with pytest.raises(RuntimeError), open_writer(out) as writer:
        writer.write_record(1, [b"x" * 60])
        raise RuntimeError
    assert out.read_bytes() == b"previous result" and leftovers(tmp_path) == []


@pytest.mark.parametrize("where", ["while writing", "at close"])
def test_a_full_file_system_is_an_error_naming_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    where: str) -> None:
    """ENOSPC (or a quota, or a file size limit) is said with OUT's name, as a folder that refuses the
    file is: "No space left on device" alone names no file, and IN and OUT may be on different file
    systems. OUT is left as it was, with no temporary file."""
    out = tmp_path / "out.pcap"
    out.write_bytes(b"previous result")
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def no_room(*_args: object) -> int:
        raise full

    with pytest.raises(CaptureError) as caught, open_writer(out) as writer:
        writer.write_record(1, [b"x" * 60])
        if where == "while writing":
            raise full  # as a writing thread or the compiled stream hands it on
        monkeypatch.setattr(writer_module.os, "writev", no_room)
    assert str(caught.value) == f"cannot write {out}: {os.strerror(errno.ENOSPC)}"
    assert caught.value.__cause__ is full
    assert out.read_bytes() == b"previous result" and leftovers(tmp_path) == []


def test_an_error_of_reading_passes_through_the_writer_as_it_is(tmp_path: Path) -> None:
    with pytest.raises(OSError) as caught, open_writer(tmp_path / "out.pcap"):
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    assert not isinstance(caught.value, CaptureError) and caught.value.errno == errno.EIO


def test_abort_discards_and_close_commits(tmp_path: Path) -> None:
    aborted, committed = tmp_path / "a.pcap", tmp_path / "c.pcap"
    writer = open_writer(aborted)
    writer.write_record(0, [b"y" * 60])
    writer.abort()
    writer = open_writer(committed)
    writer.write_record(0, [b"y" * 60])
    assert not committed.exists()
    writer.close()
    assert not aborted.exists() and committed.exists() and leftovers(tmp_path) == []
    assert os.stat(committed).st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_parts_are_written_as_one_record_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "FLUSH_BYTES", 1000)  # many flushes, short batches
    out = tmp_path / "parts.pcap"
    frames = tcp_frames(50, payload_step=13) * 50  # 2500 records, more iovecs than IOV_MAX
    with open_writer(out, nanosecond=True) as writer:
        for i, frame in enumerate(frames):
            view = memoryview(frame)
            writer.write_record(10**18 + i, [frame[:14], view[14:34], bytearray(view[34:])], orig_len=len(frame) + i % 2)
    decoded = scapy_decode(out)
    assert [d.data for d in decoded] == frames
    assert [d.timestamp_ns for d in decoded] == [10**18 + i for i in range(len(frames))]
    assert [d.orig_len for d in decoded] == [len(f) + i % 2 for i, f in enumerate(frames)]


def test_pcap_output_refuses_a_second_link_type(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="one link type"), open_writer(tmp_path / "o.pcap", linktype=1) as writer:
        writer.write_record(0, [b"z" * 40], linktype=113)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("chunk_size", [64, 1000, 4096])
def test_records_straddling_chunks_and_kept_views_read_back_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_size: int
) -> None:
    rng = random.Random(chunk_size)
    frames = [bytes(Ether(src="02:00:00:00:00:01") / rng.randbytes(rng.choice([1, 30, 500, 3000, 9000])))
              for _ in range(120)]
    source, copy = tmp_path / "in.pcap", tmp_path / "out.pcap"
    wrpcap(str(source), [Ether(f) for f in frames])
    monkeypatch.setattr(source_module, "CHUNK_SIZE", chunk_size)
    with open_capture(source) as reader:
        records = list(reader)  # every view kept past the reader's later refills
    assert [bytes(r.data) for r in records] == frames
    with open_capture(source) as reader, open_writer(copy, like=reader) as writer:
        for record in reader:
            writer.write(record)
    assert copy.read_bytes() == source.read_bytes()


@pytest.mark.parametrize("chunk_size", [64, 1000, 4096])
def test_pcapng_blocks_straddling_chunks_read_back_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_size: int
) -> None:
    rng = random.Random(chunk_size)
    frames = [rng.randbytes(rng.choice([14, 31, 500, 3001, 9000])) for _ in range(120)]
    content = png_shb("<", "c") + png_idb("<", 1) + b"".join(
        png_epb("<", 0, i, frame, comment="odd" if i % 2 else None) for i, frame in enumerate(frames)
    )
    source, copy = tmp_path / "in.pcapng", tmp_path / "out.pcapng"
    source.write_bytes(content)
    monkeypatch.setattr(source_module, "CHUNK_SIZE", chunk_size)
    with open_capture(source) as reader:
        records = list(reader)
    assert [bytes(r.data) for r in records] == frames
    assert [r.comment for r in records] == ["odd" if i % 2 else None for i in range(len(frames))]
    with open_capture(source) as reader, open_writer(copy, like=reader) as writer:
        for record in reader:
            writer.write(record)
    assert copy.read_bytes() == content


def test_write_replaces_data_and_keeps_record_metadata(tmp_path: Path) -> None:
    source, out = tmp_path / "in.pcap", tmp_path / "out.pcap"
    frames = tcp_frames(3)
    wrpcap(str(source), [Ether(f) for f in frames])
    with open_capture(source) as reader, open_writer(out, like=reader) as writer:
        for record in reader:
            writer.write(record, bytes(record.data[:60]))
            writer.write(record, bytes(record.data[60:]) + b"tail")
    decoded, original = scapy_decode(out), scapy_decode(source)
    assert [d.data for d in decoded] == [p for f in frames for p in (f[:60], f[60:] + b"tail")]
    assert [d.timestamp_ns for d in decoded] == [o.timestamp_ns for o in original for _ in range(2)]


# --- what OUT is decides how it is written (softgso.io.outfile.output_target) ------------------------


def test_a_regular_file_or_a_new_name_is_written_atomically(tmp_path: Path) -> None:
    existing, new = tmp_path / "existing.pcap", tmp_path / "new.pcap"
    existing.write_bytes(b"previous result")
    for out, kind in ((existing, "regular file"), (new, "new file")):
        writer = open_writer(out)
        assert (writer.atomic, writer.kind, writer.note()) == (True, kind, None)
        writer.write_record(0, [b"z" * 60])
        assert leftovers(tmp_path)  # the temporary file beside OUT, as always
        writer.close()
        assert len(out.read_bytes()) == 24 + 16 + 60
    assert leftovers(tmp_path) == []


def test_a_fifo_is_written_straight_through_and_says_so(tmp_path: Path) -> None:
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    writer = open_writer(fifo)
    assert (writer.atomic, writer.kind) == (False, "FIFO")
    assert writer.note() == "written straight through (not atomic): OUT is a FIFO"
    assert leftovers(tmp_path) == []  # nothing beside a FIFO
    writer.write_record(0, [b"f" * 60])
    writer.close()
    reader.join(timeout=30)
    assert len(received[0]) == 24 + 16 + 60 and os.path.exists(fifo) and not os.path.isfile(fifo)


def test_a_link_is_resolved_and_its_target_replaced_where_it_is(tmp_path: Path) -> None:
    (tmp_path / "there").mkdir()
    target, link = tmp_path / "there" / "out.pcap", tmp_path / "link.pcap"
    target.write_bytes(b"previous result")
    link.symlink_to(target)
    writer = open_writer(link)
    assert (writer.atomic, writer.kind) == (True, "link to regular file")
    writer.write_record(0, [b"l" * 60])
    assert leftovers(tmp_path / "there") and leftovers(tmp_path) == []  # beside the target
    writer.close()
    assert link.is_symlink() and len(target.read_bytes()) == 24 + 16 + 60


def test_a_directory_out_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    from softgso.errors import UsageError

    with pytest.raises(UsageError, match="is a directory"):
        open_writer(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_cannot_be_made_is_reported_by_the_user_s_path(tmp_path: Path) -> None:
    out = tmp_path / "nodir" / "out.pcap"
    with pytest.raises(CaptureError) as raised:
        open_writer(out)
    message = str(raised.value)
    assert message == f"cannot write {out}: No such file or directory (folder {out.parent} does not exist)"
