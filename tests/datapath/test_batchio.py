"""softgso.datapath.batchio: the compiled functions (sendmmsg, recvmmsg, read and write loops) and the
pure-Python ones give the same results, on socketpairs and pipes standing in for the link and the TAPs.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest

from softgso.datapath import batchio

try:
    from softgso.datapath import _batchio as compiled
except ImportError:  # no C compiler when softgso was built
    compiled = None

PYTHON = SimpleNamespace(send_batch=batchio.py_send_batch, recv_batch=batchio.py_recv_batch,
                         read_batch=batchio.py_read_batch, write_each=batchio.py_write_each)
IMPLEMENTATIONS = [pytest.param(PYTHON, id="python"),
                   pytest.param(compiled, id="compiled", marks=pytest.mark.skipif(
                       compiled is None, reason="softgso.datapath._batchio not built (no C compiler)"))]
FRAMES = [bytes([index]) * (60 + index * 37) for index in range(40)]


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ends = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for end in ends:
        end.setblocking(False)
        end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    yield ends
    for end in ends:
        end.close()


@pytest.mark.parametrize("io", IMPLEMENTATIONS)
def test_a_batch_sent_arrives_whole_and_in_order(io: SimpleNamespace, pair: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = pair
    sent, calls, failure = io.send_batch(sender.fileno(), FRAMES)
    assert (sent, failure) == (len(FRAMES), 0)
    # one sendmmsg for the batch when compiled, a send per frame otherwise
    assert calls == (1 if io is compiled else len(FRAMES))
    frames, truncated, _ = io.recv_batch(receiver.fileno(), 1024, 4096)
    assert (frames, truncated) == (FRAMES, 0)
    assert io.recv_batch(receiver.fileno(), 1024, 4096)[:2] == ([], 0)


@pytest.mark.parametrize("io", IMPLEMENTATIONS)
def test_recv_batch_takes_at_most_max_frames_and_drops_longer_ones_counted(
        io: SimpleNamespace, pair: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = pair
    io.send_batch(sender.fileno(), [b"a" * 100, b"b" * 5000, b"c" * 100, b"d" * 100])
    assert io.recv_batch(receiver.fileno(), 3, 1000)[:2] == ([b"a" * 100, b"c" * 100], 1)
    assert io.recv_batch(receiver.fileno(), 3, 1000)[:2] == ([b"d" * 100], 0)


@pytest.mark.parametrize("io", IMPLEMENTATIONS)
def test_recv_batch_refuses_sizes_out_of_range(io: SimpleNamespace, pair: tuple[socket.socket, socket.socket]) -> None:
    for args in ((0, 100), (2000, 100), (10, 0)):
        with pytest.raises(ValueError):
            io.recv_batch(pair[1].fileno(), *args)


@pytest.mark.parametrize("io", IMPLEMENTATIONS)
def test_read_batch_reads_until_empty_or_the_budget(io: SimpleNamespace,
                                                    pair: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = pair
    for frame in FRAMES[:10]:
        sender.send(frame)
    frames, calls = io.read_batch(receiver.fileno(), 4, 65536)
    assert (frames, calls) == (FRAMES[:4], 4)
    frames, calls = io.read_batch(receiver.fileno(), 64, 65536)
    # the read that found nothing is a system call too
    assert (frames, calls) == (FRAMES[4:10], 7)


@pytest.mark.parametrize("io", IMPLEMENTATIONS)
def test_read_batch_raises_an_error_met_before_any_frame(io: SimpleNamespace) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        with pytest.raises(OSError) as raised:
            io.read_batch(write_end, 4, 1024)
        assert raised.value.errno == errno.EBADF
    finally:
        os.close(write_end)


@pytest.mark.parametrize("io", IMPLEMENTATIONS)
def test_write_each_writes_one_frame_per_call_and_stops_at_a_failure(
        io: SimpleNamespace, pair: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = pair
    assert io.write_each(sender.fileno(), FRAMES[:5]) == (5, 0)
    assert [receiver.recv(4096) for _ in range(5)] == FRAMES[:5]
    read_end, write_end = os.pipe()
    try:
        assert io.write_each(read_end, FRAMES[:3]) == (0, errno.EBADF)
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.parametrize("io", IMPLEMENTATIONS)
def test_send_batch_reports_how_far_it_got_when_the_socket_is_full(
        io: SimpleNamespace, pair: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = pair
    big = [bytes(60000)] * 200
    sent, _, failure = io.send_batch(sender.fileno(), big)
    assert 0 < sent < len(big) and failure == errno.EAGAIN
    received = 0
    while frames := io.recv_batch(receiver.fileno(), 1024, 65536)[0]:
        received += len(frames)
    assert received == sent


def test_the_module_uses_the_compiled_functions_where_built() -> None:
    expected: Callable[..., object] = compiled.send_batch if compiled is not None and not os.environ.get(
        "SOFTGSO_NO_C") else batchio.py_send_batch
    assert batchio.send_batch is expected
    assert batchio.COMPILED == (expected is not batchio.py_send_batch)
