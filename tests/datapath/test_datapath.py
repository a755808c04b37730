"""The live datapath: real kernel TCP in two namespaces across the software MPLS hop.

Needs root and /dev/net/tun (skipped otherwise). Expected values come from the run itself (hashes
computed by the endpoints on both sides), from the link's MTU, and from Scapy decoding the capture.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from softgso.datapath.run import DatapathOptions, run_datapath

from .helpers import leftovers, root_test, start_datapath

MIB = 1 << 20
BENIGN_DROPS = {"not addressed to the LER (no FEC)"}  # IPv6 MLD/RS multicast from the kernels


def only_benign_drops(datapath_stats: dict) -> bool:
    return all(set(datapath_stats[d]["drops"]) <= BENIGN_DROPS for d in ("west_to_east", "east_to_west"))


@pytest.mark.parametrize("mode", ["sw-gso", "hw-gso", "no-gso"])
@root_test
def test_50mb_each_way_arrive_intact_in_every_mode(mode: str) -> None:
    from softgso.datapath.selftest import run_mode

    options = DatapathOptions(bytes=50 * MIB, modes=(mode,), ipv6=False, udp=False, timeout=90)
    result = run_mode(options, mode, f"{os.getpid()}t{mode[0]}")
    tcp = result["tcp4"]
    assert tcp.get("error") is None
    assert tcp["west_to_east"] == {**tcp["west_to_east"], "bytes": 50 * MIB, "verified": True}
    assert tcp["east_to_west"] == {**tcp["east_to_west"], "bytes": 50 * MIB, "verified": True}
    forward = tcp["datapath"]["west_to_east"]
    assert only_benign_drops(tcp["datapath"])
    if mode == "no-gso":
        # the west kernel segmented before the datapath: nothing GSO reaches it
        assert forward["rx_gso_packets"] == 0
    elif mode == "sw-gso":
        # super-packets in, segmented once labelled: several link frames per super-packet
        assert forward["rx_gso_packets"] > 0 and forward["segments_per_gso_packet"] > 1
    else:
        # the link carries each labelled super-packet whole
        assert forward["rx_gso_packets"] > 0 and forward["segments_per_gso_packet"] == 1
        assert forward["link_frames"] == forward["rx_packets"]


@root_test
def test_ipv6_and_udp_cross_the_hop() -> None:
    from softgso.datapath.selftest import run_mode, uso_available

    udp = uso_available(DatapathOptions())
    options = DatapathOptions(bytes=8 * MIB, modes=("sw-gso",), ipv6=True, udp=udp, timeout=60)
    result = run_mode(options, "sw-gso", f"{os.getpid()}t6")
    assert result["tcp6"]["verified"], result["tcp6"]
    if udp:
        # every datagram that arrived is intact; loss is reported, not failed on
        assert result["udp4"]["verified"] and result["udp4"]["corrupt"] == 0, result["udp4"]
        assert result["udp4"]["datapath"]["west_to_east"]["rx_gso_packets"] > 0


@root_test
def test_capture_frames_fit_the_link_mtu_and_carry_the_pushed_labels(tmp_path: Path) -> None:
    from scapy.contrib.mpls import MPLS
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import rdpcap

    from softgso.datapath.selftest import run_mode

    capture = tmp_path / "link.pcap"
    labels, back = (100, 2000), (101, 2001)
    options = DatapathOptions(bytes=4 * MIB, labels=labels, return_labels=back, modes=("sw-gso",), ipv6=False,
                              udp=False, capture=str(capture), timeout=60)
    result = run_mode(options, "sw-gso", f"{os.getpid()}tc")
    assert result["tcp4"]["verified"]
    link_mtu = 1500 + 4 * len(labels)
    frames = rdpcap(result["capture"])
    # read from the link itself (a packet socket on LER1's end), nothing lost on the way
    stats = result["tcp4"]["datapath"]
    assert stats["capture"] == {"frames": len(frames), "dropped": 0}
    assert len(frames) == sum(stats[d]["link_sent"] for d in ("west_to_east", "east_to_west"))
    stacks = set()
    full_size = 0
    for frame in frames:
        ether = Ether(bytes(frame))
        assert ether.type == 0x8847
        assert len(bytes(frame)) - 14 <= link_mtu
        full_size += len(bytes(frame)) - 14 == link_mtu
        stack = []
        layer = ether.payload
        while isinstance(layer, MPLS):
            stack.append((layer.label, layer.s, layer.ttl))
            layer = layer.payload
        stacks.add(tuple(stack))
        inner = IP(bytes(layer)) if not isinstance(layer, IP) else layer
        assert inner.version == 4 and TCP in inner
    assert stacks == {((100, 0, 64), (2000, 1, 64)), ((101, 0, 64), (2001, 1, 64))}
    # the software segments of the labelled super-packets fill the link MTU exactly
    assert full_size > 1000


@pytest.mark.parametrize("user", [None, "nobody"])
@root_test
def test_sigterm_tears_down_namespaces_and_taps(tmp_path: Path, user: str | None) -> None:
    running = start_datapath("--duration", "60", "--capture", str(tmp_path / "x.pcap"),
                             *(("--user", user) if user else ()))
    status, _, err = running.stop(signal.SIGTERM)
    assert status == 143, err
    assert leftovers(running.pid) == ([], [])


@root_test
def test_duration_run_reports_json_stats_and_cleans_up(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_datapath(DatapathOptions(duration=0.5, live=False, json=True)) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["mode"] == "sw-gso" and stats["link_mtu"] == 1504
    assert set(stats) >= {"west_to_east", "east_to_west", "netns"}


@root_test
def test_teardown_leaves_no_namespace_or_device() -> None:
    assert leftovers() == ([], [])


def test_not_root_is_refused_with_a_clear_message(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert run_datapath(DatapathOptions(duration=0.1, live=False)) == 2
    assert "needs root" in capsys.readouterr().err


@pytest.mark.parametrize("labels", [(100,), (100, 2000)])
@root_test
def test_the_link_is_a_veth_whose_mtu_leaves_room_for_the_labels_and_the_kernel_enforces_it(
        labels: tuple[int, ...]) -> None:
    from softgso.datapath.link import VethLink
    from softgso.datapath.run import Datapath
    from softgso.packet import Packet

    options = DatapathOptions(labels=labels)
    with options.topology(f"{os.getpid()}m{len(labels)}", "sw-gso") as topology:
        shown = json.loads(subprocess.run(["ip", "-n", topology.link_netns[0], "-j", "link", "show",
                                           topology.link_ends[0]], capture_output=True, text=True,
                                          check=True).stdout)[0]
        assert (shown["mtu"], shown["link_type"], shown["address"]) == (1500 + 4 * len(labels), "ether",
                                                                        "02:5e:00:00:0a:01")
        datapath = Datapath(topology, options.link_device("sw-gso"), options.labels, options.back_labels)
        link = datapath.link
        assert isinstance(link, VethLink)
        stats = datapath.west_to_east
        header = bytes.fromhex("025e00000a02" "025e00000a01" "8847")
        for size in (1500 + 4 * len(labels), 1501 + 4 * len(labels)):
            link.send([Packet(bytearray(header + bytes(size)))], datapath.ler2, stats, gso=False)
        link.flush()
        # the frame one byte over the link MTU is the kernel's to refuse, not ours
        assert stats.link_sent == 1
        assert stats.drops == {"too big for the link MTU (EMSGSIZE)": 1}
        datapath.close()
    assert leftovers() == ([], [])


@root_test
def test_selftest_reports_the_kernel_ceiling_cpu_and_system_calls_beside_the_modes() -> None:
    from softgso.datapath.selftest import run_selftest

    result = run_selftest(DatapathOptions(bytes=2 * MIB, modes=("sw-gso", "no-gso"), udp=False, timeout=60))
    assert result["verified"]
    for key in ("sw_gso_gbps", "nogso_gbps", "kernel_gbps", "sw_gso_gbps_ipv6", "kernel_gbps_ipv6"):
        assert result[key] > 0, key
    assert result["kernel_link"]["tcp4"]["verified"] and result["kernel_link"]["tcp6"]["verified"]
    for mode in ("sw-gso", "no-gso"):
        cost = result["modes"][mode]["cost"]
        assert cost["bytes"] == 8 * MIB
        assert cost["datapath_cpu_s_per_gb"] > 0 and cost["ler_syscalls_per_mb"] > 0
        stats = result["modes"][mode]["tcp4"]["datapath"]
        assert stats["link"].startswith("veth ") and stats["gro"] is True
        forward = stats["west_to_east"]
        # every frame the sender put on the link reached the far edge, and GRO saw each of them
        assert forward["link_sent"] == forward["link_received"] == forward["gro"]["frames_in"]
    sw, nogso = (result["modes"][m]["cost"]["ler_syscalls_per_mb"] for m in ("sw-gso", "no-gso"))
    # a super-packet is one TAP read where no-gso pays one per frame
    assert sw < nogso
    assert set(result["targets"]["ipv4"]) == {"sw_over_nogso", "sw_over_nogso_met", "sw_over_kernel",
                                              "sw_over_kernel_met"}
