"""skb_segment (spec §6.1): one segment per gso_size bytes of payload, in bounded work and memory.

The resource bounds SECURITY.md states: a 64 KB super-packet with gso_size 1 is cut into one
segment per payload byte (the kernel's answer), in memory linear in the number of segments.
"""

from __future__ import annotations

import pkgutil
import tracemalloc
from pathlib import Path

import softgso
from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.features import PROFILES, GsoType, IpSummed
from softgso.gso import module_names
from softgso.packet import Packet
from softgso.xmit import transmit


def _tcp_super_packet(payload_len: int, gso_size: int) -> Packet:
    frame = build_frame(SuperPacketSpec(payload=bytes((i * 7) & 0xFF for i in range(payload_len))))
    skb = Packet.from_ethernet(frame)
    skb.ip_summed, skb.csum_start, skb.csum_offset, skb.transport_header = IpSummed.PARTIAL, 34, 16, 34
    skb.gso_size, skb.gso_type = gso_size, GsoType.TCPV4
    return skb


def test_64k_super_packet_with_gso_size_1_gives_one_segment_per_payload_byte() -> None:
    payload_len = 65535 - 20 - 20  # the largest IPv4 TCP super-packet
    segments = transmit(_tcp_super_packet(payload_len, 1), PROFILES["no-offload"])
    assert len(segments) == payload_len
    assert {len(seg.data) for seg in segments} == {14 + 20 + 20 + 1}
    assert bytes(seg.data[-1] for seg in segments) == bytes((i * 7) & 0xFF for i in range(payload_len))


def test_segmenting_memory_is_linear_in_the_number_of_segments() -> None:
    payload_len = 8000
    skb = _tcp_super_packet(payload_len, 1)
    tracemalloc.start()
    try:
        segments = transmit(skb, PROFILES["no-offload"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(segments) == payload_len
    # measured ~620 bytes per 55-byte segment (bytes + the skb-like object); 2 KiB each is the bound
    assert peak < 2048 * len(segments), f"{peak} bytes for {len(segments)} segments"


def test_the_offload_table_finds_the_modules_pkgutil_finds(tmp_path: Path) -> None:
    # load_offloads lists softgso.offload's modules without pkgutil: the same names, for every kind of entry
    (tmp_path / "plain.py").write_text("")
    (tmp_path / "compiled.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    (tmp_path / "bytecode.pyc").write_bytes(b"")
    (tmp_path / "package").mkdir()
    (tmp_path / "package" / "__init__.py").write_text("")
    (tmp_path / "folder").mkdir()
    (tmp_path / "not.a.module.py").write_text("")
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "__init__.py").write_text("")
    for folders in ([str(tmp_path)], softgso.__path__, [*softgso.__path__, str(tmp_path)]):
        assert module_names(folders) == [module.name for module in pkgutil.iter_modules(folders)]
    from softgso import offload

    assert "tcp" in module_names(offload.__path__)
