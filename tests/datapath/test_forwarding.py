"""The forwarding plane of the datapath without root: the LERs joined by the in-process MPLS link,
with socketpairs standing in for the TAP descriptors. Frames are built and checked with Scapy.
"""

from __future__ import annotations

import functools
import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import ARP, Ether

from softgso.datapath.bulk import accelerate
from softgso.datapath.ler import DirectionStats, LabelEdgeRouter, MplsLink
from softgso.datapath.tap import TUN_F_TSO, TUN_F_USO, Tap, tap_profile
from softgso.features import PROFILES, DeviceProfile

WEST_MAC, WEST_GW = "02:5e:00:00:01:01", "02:5e:00:00:01:fe"
EAST_MAC, EAST_GW = "02:5e:00:00:02:01", "02:5e:00:00:02:fe"
LINK1, LINK2 = "02:5e:00:00:0a:01", "02:5e:00:00:0a:02"
MSS = 1460  # the MSS of a 1500-byte MTU without TCP options
PAYLOAD = bytes(range(256)) * 78 + b"tail"  # 19972 bytes: 13 full segments of 1460 and a short one
SW_LINK = PROFILES["nic-tso-no-mpls-gso"].with_overrides(mtu=1504)
HW_LINK = PROFILES["tso"].with_overrides(mtu=1504)
ALL_OFFLOADS = TUN_F_TSO | TUN_F_USO


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def ones_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


@dataclass
class Hop:
    """LER1 and LER2 on a link; the kernels' ends of the 'TAPs' are socketpair ends."""

    ler1: LabelEdgeRouter
    ler2: LabelEdgeRouter
    west_kernel: socket.socket
    east_kernel: socket.socket
    captured: list[bytes]
    west_to_east: DirectionStats
    east_to_west: DirectionStats

    def received(self, sock: socket.socket) -> list[tuple[bytes, bytes]]:
        """(vnet header, frame) of everything the LERs wrote to one side."""
        frames = []
        while True:
            try:
                datagram = sock.recv(1 << 17, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return frames
            frames.append((datagram[:10], datagram[10:]))


def build_hop(sockets: list[socket.socket], link_profile: DeviceProfile = SW_LINK, west_offloads: int = ALL_OFFLOADS,
              east_offloads: int = ALL_OFFLOADS, labels: tuple[int, ...] = (100,)) -> Hop:
    """LER1 and LER2 on a link, their TAP descriptors replaced by socketpairs (kept in ``sockets``)."""
    taps = []
    for name, offloads in (("w", west_offloads), ("e", east_offloads)):
        datapath_end, kernel_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        datapath_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
        sockets.extend((datapath_end, kernel_end))
        taps.append((Tap(name, datapath_end.fileno(), 10, offloads), kernel_end))
    (west_tap, west_kernel), (east_tap, east_kernel) = taps
    back = tuple(label + 1 for label in labels)
    captured: list[bytes] = []
    link = MplsLink(link_profile, capture=lambda frame: captured.append(bytes(frame)))
    ler1 = LabelEdgeRouter("LER1", west_tap, push_labels=labels, pop_labels=back, own_mac=mac(WEST_GW),
                           tap_peer_mac=mac(WEST_MAC), link_mac=mac(LINK1), link_peer_mac=mac(LINK2),
                           tap_profile=tap_profile("w", west_offloads, 1500))
    ler2 = LabelEdgeRouter("LER2", east_tap, push_labels=back, pop_labels=labels, own_mac=mac(EAST_GW),
                           tap_peer_mac=mac(EAST_MAC), link_mac=mac(LINK2), link_peer_mac=mac(LINK1),
                           tap_profile=tap_profile("e", east_offloads, 1500))
    w2e, e2w = DirectionStats("west->east"), DirectionStats("east->west")
    ler1.connect(link, ler2, w2e)
    ler2.connect(link, ler1, e2w)
    for ler in (ler1, ler2):
        accelerate(ler, "auto")  # as the datapath does by default
    return Hop(ler1, ler2, west_kernel, east_kernel, captured, w2e, e2w)


@pytest.fixture
def make_hop() -> Iterator[Callable[..., Hop]]:
    sockets: list[socket.socket] = []
    yield functools.partial(build_hop, sockets)
    for sock in sockets:
        sock.close()


def tso_frame(payload: bytes = PAYLOAD, dst: str = WEST_GW, src: str = WEST_MAC) -> bytes:
    """A vnet header + TSO super-packet as a kernel hands it to a TAP with TUN_F_TSO4 (NEEDS_CSUM, seed in place)."""
    frame = bytearray(bytes(Ether(dst=dst, src=src) / IP(src="10.200.1.1", dst="10.200.2.1", flags="DF", id=7)
                            / TCP(sport=40000, dport=5201, seq=1000, ack=1, flags="PA", window=512) / payload))
    seed = ones_sum(bytes([10, 200, 1, 1, 10, 200, 2, 1]) + struct.pack("!HH", 6, 20 + len(payload)))
    struct.pack_into("!H", frame, 14 + 20 + 16, seed)
    header = struct.pack("<BBHHHH", 1, 1, 54, MSS, 34, 16)
    return header + bytes(frame)


def checksums_verify(frame: bytes) -> bool:
    """Scapy recomputes the IPv4 and TCP checksums and finds the ones in the frame."""
    packet = Ether(frame)
    ip, tcp = packet[IP], packet[TCP]
    stored = (ip.chksum, tcp.chksum)
    del ip.chksum
    del tcp.chksum
    again = Ether(bytes(packet))
    return stored == (again[IP].chksum, again[TCP].chksum)


def test_sw_gso_link_segments_the_labelled_super_packet_within_the_link_mtu(make_hop) -> None:
    hop = make_hop(SW_LINK)
    hop.ler1.receive_from_tap(tso_frame())
    assert len(hop.captured) == -(-len(PAYLOAD) // MSS) == 14
    for frame in hop.captured:
        ether = Ether(frame)
        assert (ether.dst, ether.src, ether.type) == (LINK2, LINK1, 0x8847)
        assert (ether[MPLS].label, ether[MPLS].s, ether[MPLS].ttl) == (100, 1, 64)
        assert len(frame) - 14 <= SW_LINK.mtu
    # a full segment plus the label fills the link MTU exactly (west MTU 1500 + 4 per label)
    assert len(hop.captured[0]) - 14 == SW_LINK.mtu
    assert hop.west_to_east.as_dict()["segments_per_gso_packet"] == 14


def test_sw_gso_segments_reach_east_unlabelled_with_complete_checksums(make_hop) -> None:
    hop = make_hop(SW_LINK)
    hop.ler1.receive_from_tap(tso_frame())
    received = hop.received(hop.east_kernel)
    assert len(received) == 14
    payload = b""
    for index, (header, frame) in enumerate(received):
        assert header == bytes(10)  # checksums complete: nothing left for the kernel to do
        ether = Ether(frame)
        assert (ether.dst, ether.src, ether.type) == (EAST_MAC, EAST_GW, 0x0800)
        assert ether[TCP].seq == 1000 + index * MSS
        assert checksums_verify(frame)
        payload += bytes(ether[TCP].payload)
    assert payload == PAYLOAD


def test_hw_gso_link_carries_the_super_packet_whole_and_east_gets_a_gso_vnet_header(make_hop) -> None:
    hop = make_hop(HW_LINK)
    hop.ler1.receive_from_tap(tso_frame())
    assert len(hop.captured) == 1
    assert Ether(hop.captured[0])[MPLS].label == 100
    [(header, frame)] = hop.received(hop.east_kernel)
    flags, gso_type, _hdr_len, gso_size, csum_start, csum_offset = struct.unpack("<BBHHHH", header)
    assert (flags, gso_type, gso_size, csum_start, csum_offset) == (1, 1, MSS, 34, 16)
    ether = Ether(frame)
    assert ether.type == 0x0800 and bytes(ether[TCP].payload) == PAYLOAD


def test_east_tap_without_offloads_gets_segments_after_the_pop(make_hop) -> None:
    hop = make_hop(HW_LINK, east_offloads=0)
    hop.ler1.receive_from_tap(tso_frame())
    assert len(hop.captured) == 1
    received = hop.received(hop.east_kernel)
    assert len(received) == 14
    assert all(header == bytes(10) and checksums_verify(frame) for header, frame in received)
    assert b"".join(bytes(Ether(frame)[TCP].payload) for _, frame in received) == PAYLOAD


def test_acks_cross_the_hop_labelled_the_other_way(make_hop) -> None:
    hop = make_hop(SW_LINK, labels=(100, 2000))
    ack = bytearray(bytes(Ether(dst=EAST_GW, src=EAST_MAC) / IP(src="10.200.2.1", dst="10.200.1.1")
                          / TCP(sport=5201, dport=40000, flags="A", seq=1, ack=21000)))
    # as the kernel hands it with TUN_F_CSUM: the pseudo-header seed in the checksum field
    seed = ones_sum(bytes([10, 200, 2, 1, 10, 200, 1, 1]) + struct.pack("!HH", 6, 20))
    struct.pack_into("!H", ack, 14 + 20 + 16, seed)
    hop.ler2.receive_from_tap(struct.pack("<BBHHHH", 1, 0, 0, 0, 34, 16) + bytes(ack))
    [link_frame] = hop.captured
    ether = Ether(link_frame)
    stack = [(layer.label, layer.s) for layer in (ether[MPLS], ether[MPLS].payload)]
    assert stack == [(101, 0), (2001, 1)]
    [(header, frame)] = hop.received(hop.west_kernel)
    assert Ether(frame).dst == WEST_MAC and checksums_verify(frame)


def test_nothing_is_dropped_silently(make_hop) -> None:
    hop = make_hop(SW_LINK)
    hop.ler1.receive_from_tap(bytes(10) + bytes(Ether(dst=WEST_GW, src=WEST_MAC) / ARP()))
    hop.ler1.receive_from_tap(bytes(10) + bytes(Ether(dst="33:33:00:00:00:16", src=WEST_MAC) / IP()))
    bad = bytearray(tso_frame())
    struct.pack_into("<H", bad, 4, 0)  # gso_size 0 with a GSO type
    hop.ler1.receive_from_tap(bytes(bad))
    drops = hop.west_to_east.drops
    assert drops["no FEC for ethertype 0x0806"] == 1
    assert drops["not addressed to the LER (no FEC)"] == 1
    assert drops["virtio_net_hdr_to_skb (-EINVAL)"] == 1
    assert hop.received(hop.east_kernel) == []


def test_an_unexpected_label_is_dropped_at_the_pop(make_hop) -> None:
    hop = make_hop(SW_LINK)
    hop.ler2.pop_labels = (999,)
    hop.ler1.receive_from_tap(tso_frame())
    assert hop.west_to_east.drops["unexpected label"] == 14
    assert hop.received(hop.east_kernel) == []


def test_a_link_mtu_without_room_for_the_labels_drops_instead_of_sending_oversized_frames(make_hop) -> None:
    hop = make_hop(SW_LINK.with_overrides(mtu=1500))
    hop.ler1.receive_from_tap(tso_frame())
    assert hop.west_to_east.drops["too big for the link MTU (mpls_pkt_too_big)"] == 1
    assert hop.captured == []
    # a segment that fits (1460 bytes less 4) crosses
    hop.ler1.receive_from_tap(tso_frame(payload=PAYLOAD[:MSS - 4]))
    assert len(hop.captured) == 1 and len(hop.captured[0]) - 14 == 1500
