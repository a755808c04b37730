"""softgso.bulk.chunks' mapped input and softgso.bulk._segment's SIGBUS guard under it.

A file mapped and then cut short by another process raises SIGBUS on the first touch of a page past
its new end. The guard answers such a touch inside a registered mapping with a page of zeros and
counts it; :class:`MappedInput` reports the stream's reads as untrustworthy from then on. Touches
outside every guarded mapping must end the process exactly as they would without the guard.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from softgso.bulk import compiled_primitive
from softgso.bulk.chunks import MappedInput

SEGMENT = compiled_primitive._SEGMENT
pytestmark = pytest.mark.skipif(SEGMENT is None or not hasattr(SEGMENT, "guard_add"),
                                reason="softgso.bulk._segment (with its guard) not built")
PAGE = os.sysconf("SC_PAGE_SIZE")


def test_a_page_cut_away_under_a_guarded_window_reads_as_zeros_and_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "in.bin"
    path.write_bytes(bytes(range(256)) * (64 * PAGE // 256))
    fd = os.open(path, os.O_RDONLY)
    try:
        mapped = MappedInput(fd, 64 * PAGE, 16 * PAGE, SEGMENT)
        view = mapped.view(PAGE, 8 * PAGE)
        assert view is not None and bytes(view[:4]) == bytes(range(4))
        assert not mapped.changed(9 * PAGE)
        faults = SEGMENT.guard_faults()
        os.truncate(path, 3 * PAGE + 100)
        # the page the new end lies in keeps its bytes before the end (the rest reads as zeros, no
        # SIGBUS): only the file's size tells
        assert bytes(view[2 * PAGE + 96 : 2 * PAGE + 104]) == bytes(range(96, 100)) + bytes(4)
        assert SEGMENT.guard_faults() == faults
        assert mapped.changed(9 * PAGE) and not mapped.changed(3 * PAGE)
        # past it: SIGBUS, answered by a page of zeros, counted
        assert bytes(view[5 * PAGE : 5 * PAGE + 16]) == bytes(16)
        assert SEGMENT.guard_faults() == faults + 1
        assert mapped.changed(PAGE)  # (whatever was read since, it may have been a zero)
        # a window past the new end is not mapped at all
        assert mapped.view(40 * PAGE, PAGE) is None
        del view
    finally:
        mapped.release(every=True)
        os.close(fd)


def test_windows_are_unmapped_once_nothing_points_into_them(tmp_path: Path) -> None:
    path = tmp_path / "in.bin"
    path.write_bytes(os.urandom(40 * PAGE))
    whole = path.read_bytes()
    fd = os.open(path, os.O_RDONLY)
    mapped = MappedInput(fd, 40 * PAGE, 8 * PAGE, SEGMENT)
    try:
        first = mapped.view(100, 6 * PAGE)
        assert first is not None and bytes(first) == whole[100 : 100 + 6 * PAGE]
        second = mapped.view(7 * PAGE + 5, 6 * PAGE)  # past the first window: a new one from its page
        assert second is not None and bytes(second) == whole[7 * PAGE + 5 : 13 * PAGE + 5]
        assert len(mapped._windows) == 2  # the first one still pointed into
        del first
        third = mapped.view(7 * PAGE + 9, PAGE)  # in the newest window: the old one goes now
        assert third is not None and len(mapped._windows) == 1
        last = mapped.view(36 * PAGE, 4 * PAGE)  # up to the end of the file, not past it
        assert last is not None and bytes(last) == whole[36 * PAGE :]
        del second, third, last
    finally:
        mapped.release(every=True)
        os.close(fd)
    assert mapped._windows == []


def _run(code: str) -> subprocess.CompletedProcess[str]:
    source = Path(compiled_primitive.__file__).parents[2]
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(source)}, check=False)


PROLOGUE = """
    import mmap, os, sys
    from softgso.bulk.compiled_primitive import _SEGMENT as SEGMENT
    path = {path!r}
    def mapping(name):
        with open(name, "wb") as handle:
            handle.write(b"x" * (1 << 16))
        fd = os.open(name, os.O_RDONLY)
        return mmap.mmap(fd, 1 << 16, prot=mmap.PROT_READ), name
"""


def _killed_by_touching(tmp_path: Path, setup: str, touched: str) -> str:
    """Run ``setup`` (after PROLOGUE), then read ``touched``: the process must end by SIGBUS right
    there; its stderr."""
    result = _run(PROLOGUE.format(path=str(tmp_path)) + setup + f"""
    print("touching", flush=True)
    {touched}
    print("survived", flush=True)
    """)
    assert result.returncode == -signal.SIGBUS
    assert "touching" in result.stdout and "survived" not in result.stdout
    return result.stderr


@pytest.mark.parametrize("faulthandler", [True, False])
def test_a_sigbus_outside_the_guarded_mappings_ends_the_process_as_without_a_guard(
        tmp_path: Path, faulthandler: bool) -> None:
    """A cut page of a mapping not guarded, while another one is: the handler there was before the
    guard gets the fault (faulthandler's reports it), or the default action ends the process."""
    stderr = _killed_by_touching(tmp_path, f"""
    if {faulthandler}:
        import faulthandler
        faulthandler.enable()
    guarded, guarded_name = mapping(path + "/a")
    other, other_name = mapping(path + "/b")
    slot = SEGMENT.guard_add(guarded)
    os.truncate(guarded_name, 100)
    assert guarded[1 << 15] == 0  # the guarded one: zeros
    os.truncate(other_name, 100)
    """, "other[1 << 15]")
    assert ("Bus error" in stderr) == faulthandler  # faulthandler's report


def test_the_guard_is_gone_with_its_last_slot(tmp_path: Path) -> None:
    """Once every slot is freed the handler before the guard is back: a cut page of a mapping that
    was guarded then ends the process."""
    _killed_by_touching(tmp_path, """
    guarded, guarded_name = mapping(path + "/a")
    first, second = SEGMENT.guard_add(guarded), SEGMENT.guard_add(guarded)
    os.truncate(guarded_name, 100)
    assert guarded[1 << 14] == 0
    SEGMENT.guard_remove(first)
    assert guarded[1 << 15] == 0  # one slot still guards it
    SEGMENT.guard_remove(second)
    """, "guarded[(1 << 15) + 8192]")


def test_guard_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="empty"):
        SEGMENT.guard_add(b"")
    with pytest.raises(ValueError, match="not a slot"):
        SEGMENT.guard_remove(99)
    with pytest.raises(ValueError, match="not a slot"):
        SEGMENT.guard_remove(-1)
    slots = []
    buffer = bytearray(16)
    with pytest.raises(RuntimeError, match="every slot"):
        for _ in range(64):
            slots.append(SEGMENT.guard_add(buffer))
    for slot in slots:
        SEGMENT.guard_remove(slot)
    with pytest.raises(ValueError, match="not a slot"):
        SEGMENT.guard_remove(slots[0])


def test_no_core_free_when_the_load_reaches_the_cores_plus_the_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    """no_core_free: the 1-minute load average against the CPUs this process may use (two here) plus
    BUSY_MARGIN; a system without a load average counts as one with cores to spare."""
    from softgso.bulk import chunks

    monkeypatch.setattr(chunks.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    for load, expected in ((0.0, False), (2.0, False), (2 + chunks.BUSY_MARGIN - 0.01, False),
                           (2 + chunks.BUSY_MARGIN, True), (7.5, True)):
        monkeypatch.setattr(chunks.os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert chunks.no_core_free() is expected, load

    def no_load_average() -> tuple[float, float, float]:
        raise OSError("no load average")

    monkeypatch.setattr(chunks.os, "getloadavg", no_load_average)
    assert chunks.no_core_free() is False
