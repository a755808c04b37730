"""The compiled GRO (softgso/gro/_coalesce.c) against the scalar engine, which the kernel vectors prove
(test_gro_vectors.py also runs the compiled GRO on them): on every poll it takes, the same packets in the
same order, the same bytes, gso_size, gso_type, segment count, reason, held or passed, checksum state.
Streams are TCP segments of a few interleaved flows with the changes every flush rule looks at (TTL,
TOS, DF, IDs, window, ACK, options, PSH, sequence gaps, short and empty segments, bad checksums)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softgso.gro import GroDevice, GroPacket, coalesce_poll
from softgso.gro.coalesce import compiled_params
from strategies import tcp_frame

pytestmark = pytest.mark.skipif(compiled_params(GroDevice(), 64) is None,
                                reason="the compiled GRO (softgso.gro._coalesce) is not built: no C compiler")

CHANGES = ("none", "ttl", "tos", "df", "id_jump", "id_fixed", "window", "ack", "options", "psh", "gap", "short",
           "empty", "bad_checksum", "mac")


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[bytes], GroDevice]:
    """Frames of 1-10 interleaved flows (more than 8 make the table evict), each mostly in order."""
    kernel = draw(st.sampled_from(("6.1", "6.12", "mainline")))
    limit = draw(st.sampled_from((65536, 65536, 9000, 3000)))
    device = GroDevice(kernel=kernel, gro_max_size=limit, gro_ipv4_max_size=limit)
    flows = draw(st.integers(1, 10))
    state = []
    for _ in range(flows):
        v6 = draw(st.booleans())
        mss = draw(st.sampled_from((100, 536, 1448, 1460)))
        timestamps = draw(st.booleans())
        options = b"\x01\x01\x08\x0a" + bytes(8) if timestamps else b""
        state.append({"v6": v6, "mss": mss, "seq": draw(st.integers(0, 2**32 - 1)), "id": draw(st.integers(0, 65535)),
                      "options": options, "fixed": draw(st.booleans())})
    frames = []
    for _ in range(draw(st.integers(1, 64))):
        flow = draw(st.integers(0, flows - 1))
        s = state[flow]
        change = draw(st.sampled_from(CHANGES)) if draw(st.integers(0, 4)) == 0 else "none"
        size = {"short": s["mss"] // 2, "empty": 0}.get(change, s["mss"])
        payload = bytes((s["seq"] + i) & 0xFF for i in range(size))
        seq = s["seq"] + (1000 if change == "gap" else 0)
        frames.append(tcp_frame(
            s["v6"], flow, seq, s["id"] + (77 if change == "id_jump" else 0), payload,
            ttl=63 if change == "ttl" else 64, tos=4 if change == "tos" else 0, df=change != "df",
            window=1024 if change == "window" else 512, ack=2 if change == "ack" else 1,
            options=(s["options"][:-1] + b"\x05") if change == "options" and s["options"] else s["options"],
            flags=0x18 if change == "psh" else 0x10, bad_checksum=change == "bad_checksum",
            mac=1 if change == "mac" else 0))
        s["seq"] = seq + size
        if not (s["fixed"] or change == "id_fixed"):
            s["id"] += 1
    return frames, device


def fields(packets: list[GroPacket]) -> list[tuple]:
    return [(p.data, p.meta, p.segs, p.gso_size, p.gso_type, p.gso_flags, p.family, p.reason, p.held, p.ip_summed)
            for p in packets]


@settings(max_examples=400, deadline=None)
@given(streams())
def test_compiled_gro_equals_the_scalar_engine(stream: tuple[list[bytes], GroDevice]) -> None:
    frames, device = stream
    scalar = coalesce_poll(frames, device, engine="scalar")
    try:
        compiled = coalesce_poll(frames, device, engine="compiled")
    except ValueError:  # a bad checksum: the scalar engine's poll (it names the frame)
        assert any(p.reason == "bad TCP checksum" for p in scalar)
        return
    assert fields(compiled) == fields(scalar)


def test_compiled_gro_takes_a_clean_stream_and_merges() -> None:
    """Not vacuous: two flows of 20 segments each, in order, become one aggregate each in the compiled GRO."""
    frames = []
    for k in range(20):
        for flow in (0, 1):
            frames.append(tcp_frame(flow == 1, flow, 1000 + 1448 * k, 7 + k, bytes([k]) * 1448))
    packets = coalesce_poll(frames, GroDevice(), engine="compiled")
    assert [(p.segs, p.family, p.gso_size, p.reason) for p in packets] == [
        (20, "tcpv4", 1448, "poll end"), (20, "tcpv6", 1448, "poll end")]
    assert fields(packets) == fields(coalesce_poll(frames, GroDevice(), engine="scalar"))


def test_compiled_gro_hands_other_shapes_back() -> None:
    """A bad TCP checksum, a VLAN tag, a FIN: the poll is the scalar engine's (auto gives its result)."""
    good = tcp_frame(False, 0, 1, 1, b"x" * 100)
    bad = tcp_frame(False, 0, 101, 2, b"y" * 100, bad_checksum=True)
    tagged = good[:12] + b"\x81\x00\x00\x05" + good[12:]
    fin = tcp_frame(False, 0, 101, 2, b"y" * 100, flags=0x11)
    for frames in ([good, bad], [good, tagged], [good, fin]):
        with pytest.raises(ValueError):
            coalesce_poll(frames, GroDevice(), engine="compiled")
        assert fields(coalesce_poll(frames, GroDevice())) == fields(coalesce_poll(frames, GroDevice(), engine="scalar"))
