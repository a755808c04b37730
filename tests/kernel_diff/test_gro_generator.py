"""The GRO oracle's random cases, without a VM: every change kind is drawn, and the frames hold what the
change says (checked with Scapy, an independent decoder), so that a GRO rule is what the kernel judges."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools.kernel_oracle import gro_cases  # noqa: E402

scapy_layers = pytest.importorskip("scapy.layers.l2")
from scapy.layers.inet import IP, TCP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.utils import checksum  # noqa: E402

SEED, COUNT = 11, 150


def _changes(case: gro_cases.GroCase) -> list[str]:
    return case.note.split("changes per flow: ")[1].split(", ")


def _checksums_verify(frame: bytes) -> tuple[bool, bool]:
    """(IPv4 header checksum verifies or IPv6, TCP checksum verifies) as Scapy recomputes them."""
    packet = scapy_layers.Ether(frame)
    layer = IP if IP in packet else IPv6
    ip = packet[layer]
    tcp = packet[TCP]
    ip_ok = True
    if layer is IP:
        ip_ok = checksum(bytes(ip)[: ip.ihl * 4]) == 0  # a header with its checksum sums to 0xFFFF
    original = tcp.chksum
    tcp_bytes = bytes(ip)[: (ip.len if layer is IP else 40 + ip.plen)]
    recomputed = (IP if layer is IP else IPv6)(tcp_bytes)
    del recomputed[TCP].chksum
    return ip_ok, original == (IP if layer is IP else IPv6)(bytes(recomputed))[TCP].chksum


def test_a_longer_plan_keeps_the_cases_of_a_shorter_one() -> None:
    short = gro_cases.random_cases(SEED, 10)
    assert [c.bursts for c in short] == [c.bursts for c in gro_cases.random_cases(SEED, 10)]
    assert [c.bursts for c in short] != [c.bursts for c in gro_cases.random_cases(SEED + 1, 10)]


def test_every_change_kind_is_drawn() -> None:
    drawn = Counter(kind for case in gro_cases.random_cases(SEED, COUNT) for kind in _changes(case))
    assert set(gro_cases.MORE_CHANGES) <= set(drawn), drawn
    assert {"window", "psh", "ttl", "gap", "short", "none"} <= set(drawn)


def test_checksums_verify_except_where_the_change_breaks_them() -> None:
    """A changed field is re-summed (else GRO would bail on the checksum, not judge the field); only bad_csum
    leaves a TCP checksum wrong, bad_ip_csum an IPv4 header checksum, and only trailer bytes behind the packet."""
    bad_tcp = trailers = bad_ip = 0
    for case in gro_cases.random_cases(SEED, COUNT):
        changes = _changes(case)
        for burst in case.bursts:
            for frame in burst:
                packet = scapy_layers.Ether(frame)
                ip = packet[IP] if IP in packet else packet[IPv6]
                ip_len = ip.len if IP in packet else 40 + ip.plen
                behind = len(bytes(ip)) - ip_len
                ip_ok, tcp_ok = _checksums_verify(frame)
                if not ip_ok:
                    assert "bad_ip_csum" in changes, case.name
                    bad_ip += 1
                    continue
                if behind:
                    assert "trailer" in changes, case.name
                    trailers += 1
                elif not tcp_ok:
                    assert "bad_csum" in changes, case.name
                    bad_tcp += 1
    assert bad_tcp and trailers and bad_ip


def test_fixed_id_gives_one_ipv4_id_to_every_segment_of_a_flow() -> None:
    for case in gro_cases.random_cases(SEED, COUNT):
        if "fixed_id" not in _changes(case):
            continue
        ids: dict[tuple[int, int], list[int]] = {}  # a flow: its burst and source port
        for number, burst in enumerate(case.bursts):
            for frame in burst:
                packet = scapy_layers.Ether(frame)
                if IP in packet:
                    ids.setdefault((number, packet[TCP].sport), []).append(packet[IP].id)
        assert any(len(values) > 1 and len(set(values)) == 1 for values in ids.values()), case.name
        return
    pytest.fail("no fixed_id case drawn")


def test_a_diff_run_compares_only_its_own_cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`--diff` records into a folder named by kernel and seed, emptied first: a case left there by an earlier
    run (or kept in a shared folder by the other generation) is not compared and counted again."""
    monkeypatch.chdir(tmp_path)
    stale = tmp_path / "out" / "kernel-diff" / "gro-6.12-seed7" / "6.12" / "random_s6_000"
    stale.mkdir(parents=True)
    (stale / "meta.json").write_text("{}")
    other = tmp_path / "out" / "kernel-diff" / "gro" / "6.1" / "random_s7_000"
    other.mkdir(parents=True)
    (other / "meta.json").write_text("{}")
    compared: list[str] = []

    def fake_record(out: Path, kernel: str | None, only: str | None, cases: list[gro_cases.GroCase] | None) -> int:
        assert cases is not None
        for case in cases:
            (out / "6.12" / case.name).mkdir(parents=True)
            (out / "6.12" / case.name / "meta.json").write_text("{}")
        return len(cases)

    def fake_compare(folder: Path) -> str | None:
        compared.append(folder.name)
        return None

    monkeypatch.setattr(gro_cases, "record", fake_record)
    monkeypatch.setattr(gro_cases, "compare", fake_compare)
    assert gro_cases.main(["--diff", "--random", "2", "--seed", "7", "--kernel", "6.12"]) == 0
    assert compared == ["random_s7_000", "random_s7_001"]
    assert "2 of 2 cases agree" in capsys.readouterr().out


def test_headers_variant_draws_every_header_kind_with_verifying_checksums() -> None:
    """The opt-in headers variant: IPv4 options, IPv6 extension headers, TCP option lists and 802.1ad tags,
    Scapy sees them, every checksum verifies, and some flows have one segment whose header differs."""
    drawn = gro_cases.header_cases(SEED, 40)
    assert [c.bursts for c in drawn[:10]] == [c.bursts for c in gro_cases.header_cases(SEED, 10)]
    notes = " ".join(c.note for c in drawn)
    assert all(kind in notes for kind in gro_cases.HEADER_KINDS) and "differs" in notes
    seen = Counter()
    for case in drawn:
        for frame in (f for burst in case.bursts for f in burst):
            packet = scapy_layers.Ether(frame)
            seen["ip_options"] += IP in packet and packet[IP].ihl > 5
            seen["ext_headers"] += IPv6 in packet and packet[IPv6].nh in (0, 60)
            seen["tcp_options"] += packet[TCP].dataofs > 5
            seen["stag"] += packet.type == 0x88A8
            assert _checksums_verify(frame) == (True, True), case.name
    assert all(seen[kind] for kind in ("ip_options", "ext_headers", "tcp_options", "stag")), seen


# -- real captures' frames as cases ------------------------------------------------------------------
def test_a_capture_becomes_bursts_of_its_injectable_frames(tmp_path: Path) -> None:
    """Each injectable record becomes one frame addressed to the receiver, in bursts of one NAPI poll (64);
    a record that cannot go on a veth as it was captured is counted by its reason, never changed."""
    sys.path.insert(0, str(REPO / "tests" / "io"))
    from capture_helpers import png_epb, png_idb, png_shb, tcp_frames

    frames = tcp_frames(70, payload_step=3)
    oversize = frames[1][:14] + bytes(9001)
    raw_ip = frames[2][14:]
    blocks = [png_shb("<"), png_idb("<", 1), png_idb("<", 1, fcslen=4), png_idb("<", 9), png_idb("<", 101)]
    blocks += [png_epb("<", 0, i, frame) for i, frame in enumerate(frames[:3])]
    blocks += [png_epb("<", 0, 3, frames[3][:40], orig_len=len(frames[3])),  # cut by the snap length
               png_epb("<", 1, 4, frames[4] + bytes(4)),  # ends in an FCS
               png_epb("<", 2, 5, b"\xff\x03\x00\x21" + raw_ip),  # PPP
               png_epb("<", 0, 6, oversize),
               png_epb("<", 3, 7, raw_ip)]
    blocks += [png_epb("<", 0, 8 + i, frame) for i, frame in enumerate(frames[5:])]
    path = tmp_path / "mixed.pcapng"
    path.write_bytes(b"".join(blocks))

    cases, skipped = gro_cases.capture_cases([path])
    receiver = bytes.fromhex(gro_cases.DST_MAC.replace(":", ""))
    assert skipped == {"cut by the snap length": 1, "ends in an FCS": 1, "link type with no Ethernet form": 1,
                       "over the veths' MTU": 1}
    (case,) = cases
    injected = [frame for burst in case.bursts for frame in burst]
    assert [len(burst) for burst in case.bursts] == [64, 5]
    assert injected[:3] == [receiver + frame[6:] for frame in frames[:3]]
    # raw IP gets an Ethernet header (zero source, IPv4's ethertype) as softgso reads it
    assert injected[3] == receiver + bytes(6) + b"\x08\x00" + raw_ip
    assert injected[4:] == [receiver + frame[6:] for frame in frames[5:]]

    cases, _ = gro_cases.capture_cases([path], max_frames=10)
    assert [len(burst) for burst in cases[0].bursts] == [10]
    twice, _ = gro_cases.capture_cases([path, path], max_frames=10)
    assert [case.name for case in twice] == ["capture_mixed", "capture_mixed__2"]
