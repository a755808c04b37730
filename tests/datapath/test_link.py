"""The veth link's two sides without root: VethLink queues the LER's link frames and sends them in a batch,
FarEdge takes a batch, pops the labels, coalesces (GRO) and writes to the TAP. Socketpairs stand in for
the link's packet sockets and the TAPs; frames are built and checked with Scapy, and the pop is held
to the LER's own scalar receive.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import struct
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from softgso.datapath import batchio
from softgso.datapath.bulk import accelerate
from softgso.datapath.ler import DirectionStats, MplsLink
from softgso.datapath.link import FarEdge, VethLink, transport_offset
from softgso.datapath.tap import READ_SIZE
from softgso.gro.coalesce import compiled_gro
from softgso.packet import Packet

from .test_forwarding import (
    EAST_GW,
    EAST_MAC,
    LINK1,
    LINK2,
    MSS,
    PAYLOAD,
    SW_LINK,
    WEST_GW,
    WEST_MAC,
    Hop,
    checksums_verify,
    ones_sum,
    tso_frame,
)
from .test_forwarding import make_hop as make_hop  # noqa: F401 - the fixture

NEEDS_CSUM, DATA_VALID = 1, 2
GSO_TCPV4, GSO_TCPV6 = 1, 4


@dataclass
class VethHop:
    hop: Hop
    link: VethLink
    east_edge: FarEdge
    west_edge: FarEdge
    sockets: list[socket.socket]

    def cross(self) -> None:
        """Flush what LER1/LER2 queued and let both far edges take it."""
        self.link.flush()
        self.east_edge.receive(self.hop.west_to_east)
        self.west_edge.receive(self.hop.east_to_west)


@pytest.fixture
def veth_hop(make_hop: Callable[..., Hop]) -> Iterator[Callable[..., VethHop]]:
    sockets: list[socket.socket] = []

    def build(gro: bool = True, labels: tuple[int, ...] = (100,), engine: str = "auto") -> VethHop:
        hop = make_hop(SW_LINK, labels=labels)
        ler1_end, ler2_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        for end in (ler1_end, ler2_end):
            end.setblocking(False)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
            sockets.append(end)
        link = VethLink(SW_LINK, {"LER2": ler1_end, "LER1": ler2_end})
        hop.ler1.connect(link, hop.ler2, hop.west_to_east)
        hop.ler2.connect(link, hop.ler1, hop.east_to_west)
        for ler in (hop.ler1, hop.ler2):
            accelerate(ler, engine)
        return VethHop(hop, link, FarEdge(hop.ler2, ler2_end, SW_LINK.mtu, gro=gro),
                       FarEdge(hop.ler1, ler1_end, SW_LINK.mtu, gro=gro), [ler1_end, ler2_end])

    yield build
    for sock in sockets:
        sock.close()


def test_the_link_frames_of_a_super_packet_leave_in_one_batch(veth_hop: Callable[..., VethHop]) -> None:
    hop = veth_hop()
    hop.hop.ler1.receive_from_tap(tso_frame())
    assert len(hop.link.queues["LER2"]) == 14
    hop.link.flush()
    stats = hop.hop.west_to_east
    assert stats.link_sent == 14 and stats.syscalls["sendmmsg" if "sendmmsg" in stats.syscalls else "send"] >= 1
    assert len(hop.link.queues["LER2"]) == 0 and hop.link.queued("LER2") == []


def test_the_bulk_path_puts_the_scalar_paths_bytes_on_the_link(veth_hop: Callable[..., VethHop]) -> None:
    queued = {}
    for engine in ("scalar", "auto"):
        hop = veth_hop(engine=engine)
        for length in (3000, 5000, 3000, 5000, 3000):
            hop.hop.ler1.receive_from_tap(tso_frame(payload=PAYLOAD[:length]))
        assert (hop.hop.ler1.bulk is not None and hop.hop.ler1.bulk.planned > 0) == (engine == "auto")
        queued[engine] = hop.link.queued("LER2")
        stats = hop.hop.west_to_east
        queued[engine + " counters"] = (stats.link_frames, stats.link_bytes, stats.rx_gso_link_frames)
    # 3000 bytes are 3 segments of the MSS, 5000 bytes 4
    assert len(queued["scalar"]) == 3 * 3 + 2 * 4
    assert queued["scalar"] == queued["auto"]
    assert queued["scalar counters"] == queued["auto counters"]


def test_with_gro_the_segments_reach_east_as_one_write_with_a_tso_vnet_header(
        veth_hop: Callable[..., VethHop]) -> None:
    hop = veth_hop(gro=True)
    hop.hop.ler1.receive_from_tap(tso_frame())
    hop.cross()
    [(header, frame)] = hop.hop.received(hop.hop.east_kernel)
    flags, gso_type, _, gso_size, csum_start, csum_offset = struct.unpack("<BBHHHH", header)
    # as a TAP is handed a TSO packet: the checksum pending from the TCP header on (virtio spec 5.1.6.2)
    assert (flags, gso_type, gso_size, csum_start, csum_offset) == (NEEDS_CSUM, GSO_TCPV4, MSS, 34, 16)
    packet = Ether(frame)
    assert (packet.dst, packet.src, packet.type) == (EAST_MAC, EAST_GW, 0x0800)
    assert (packet[IP].id, packet[IP].len, packet[TCP].seq, str(packet[TCP].flags)) == (7, 40 + len(PAYLOAD), 1000,
                                                                                          "PA")
    assert bytes(packet[TCP].payload) == PAYLOAD
    # the TCP checksum field holds the pseudo-header seed of the whole packet, the IP checksum is complete
    seed = ones_sum(bytes([10, 200, 1, 1, 10, 200, 2, 1]) + struct.pack("!HH", 6, 20 + len(PAYLOAD)))
    assert packet[TCP].chksum == seed
    ip = packet[IP]
    stored = ip.chksum
    del ip.chksum
    assert IP(bytes(ip)).chksum == stored
    gro = hop.hop.west_to_east.as_dict()["gro"]
    assert gro == {"frames_in": 14, "packets_out": 1, "frames_per_packet": 14.0}


def test_without_gro_each_segment_is_one_write_with_complete_checksums(veth_hop: Callable[..., VethHop]) -> None:
    hop = veth_hop(gro=False)
    hop.hop.ler1.receive_from_tap(tso_frame())
    hop.cross()
    received = hop.hop.received(hop.hop.east_kernel)
    assert len(received) == 14
    assert all(header == bytes(10) and checksums_verify(frame) for header, frame in received)
    assert b"".join(bytes(Ether(frame)[TCP].payload) for _, frame in received) == PAYLOAD
    assert hop.hop.west_to_east.syscalls["write"] == 14
    assert "gro" not in hop.hop.west_to_east.as_dict()


def labelled(inner: bytes, stack: list[tuple[int, int]], ttl: int = 64) -> bytes:
    """An Ethernet frame from the link: LER1's MACs, the stack (label, bottom-of-stack bit) over ``inner``."""
    # the label stack entries packed by hand (RFC 3032), whatever Scapy's layer bindings are at the time
    entries = b"".join(struct.pack("!I", label << 12 | bottom << 8 | ttl) for label, bottom in stack)
    return bytes(Ether(dst=LINK2, src=LINK1, type=0x8847)) + entries + inner


def scalar_receive(edge: FarEdge, frame: bytes) -> tuple[bytes | None, dict[str, int]]:
    """The LER's scalar receive of a link frame: its one TAP write's frame (or None) and the drops it counted."""
    stats = DirectionStats("reference")
    pkt = MplsLink.deliver(Packet(bytearray(frame), protocol=int.from_bytes(frame[12:14], "big"),
                                  network_header=14, mac_len=14))
    if not edge.ler.pop_for_tap(pkt, stats):
        return None, dict(stats.drops)
    writes = edge.ler.tap_writes(pkt, stats)
    assert [header for header, _ in writes] == [bytes(10)]
    return bytes(writes[0][1]), dict(stats.drops)


IPV4_TCP = bytes(IP(src="10.200.1.1", dst="10.200.2.1") / TCP(sport=1, dport=2, flags="A") / (b"x" * 30))
IPV6_TCP = bytes(IPv6(src="fd00:5e:1::1", dst="fd00:5e:2::1") / TCP(sport=1, dport=2) / (b"y" * 30))
LINK_FRAMES = {
    "ipv4 one label": labelled(IPV4_TCP, [(100, 1)]),
    "ipv6 one label": labelled(IPV6_TCP, [(100, 1)]),
    "another ttl": labelled(IPV4_TCP, [(100, 1)], ttl=3),
    "unexpected label": labelled(IPV4_TCP, [(999, 1)]),
    "stack deeper than expected": labelled(IPV4_TCP, [(100, 0), (200, 1)]),
    "not ip under the label": labelled(b"\x00" * 40, [(100, 1)]),
    "not mpls": bytes(Ether(dst=LINK2, src=LINK1) / IP()),
    "runt": labelled(b"", [(100, 1)]),
}


@pytest.mark.parametrize("name", sorted(LINK_FRAMES))
def test_the_far_edge_pops_as_the_ler_does(veth_hop: Callable[..., VethHop], name: str) -> None:
    edge = veth_hop().east_edge
    frame = LINK_FRAMES[name]
    expected, expected_drops = scalar_receive(edge, frame)
    fast = edge.pop(frame)
    if fast is not None:
        assert fast == expected
    else:
        stats = DirectionStats("fast")
        assert edge.pop_slowly(frame, stats) == expected
        assert dict(stats.drops) == expected_drops
    # the frames the fast pop takes are exactly the ones the LER forwards
    assert (fast is not None) == (expected is not None)


def test_a_two_label_stack_is_popped_whole(veth_hop: Callable[..., VethHop]) -> None:
    edge = veth_hop(labels=(100, 2000)).east_edge
    frame = labelled(IPV6_TCP, [(100, 0), (2000, 1)])
    assert edge.pop(frame) == scalar_receive(edge, frame)[0] == bytes.fromhex(
        EAST_MAC.replace(":", "") + EAST_GW.replace(":", "")) + b"\x86\xdd" + IPV6_TCP


def test_a_frame_gro_does_not_hold_crosses_with_the_header_its_checksum_state_calls_for(
        veth_hop: Callable[..., VethHop]) -> None:
    hop = veth_hop(gro=True)
    hop.hop.ler1.receive_from_tap(tso_frame(payload=PAYLOAD[:100]))
    hop.cross()
    [(header, frame)] = hop.hop.received(hop.hop.east_kernel)
    # one segment alone: GRO checked its TCP checksum (DATA_VALID) and hands it up as it came
    assert header == bytes([DATA_VALID]) + bytes(9) and checksums_verify(frame)
    assert bytes(Ether(frame)[TCP].payload) == PAYLOAD[:100]


def test_transport_offset_walks_ipv6_extension_headers() -> None:
    from scapy.layers.inet6 import IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop

    assert transport_offset(bytes(Ether() / IP(options=b"\x01" * 4) / TCP())) == 14 + 24
    assert transport_offset(bytes(Ether() / IPv6() / TCP())) == 54
    assert transport_offset(bytes(Ether() / IPv6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / TCP())) == 54 + 16


def test_an_aggregate_longer_than_the_hdr_len_field_gets_the_header_length_there(
        veth_hop: Callable[..., VethHop]) -> None:
    hop = veth_hop(gro=True)
    mss, count = 1284, 51  # 40 + 51 * 1284 = 65,524 bytes of IP: under GRO's 64 KB, over 65,535 with Ethernet
    payload = bytes(range(256)) * (mss * count // 256 + 1)
    segments = [IP(src="10.200.1.1", dst="10.200.2.1", flags="DF", id=index)
                / TCP(sport=40000, dport=5201, seq=1000 + index * mss, ack=1, flags="A", window=512)
                / payload[index * mss : (index + 1) * mss] for index in range(count)]
    frames = [labelled(bytes(segment), [(100, 1)]) for segment in segments]
    hop.east_edge.forward(frames, hop.hop.west_to_east)
    [(header, frame)] = hop.hop.received(hop.hop.east_kernel)
    assert len(frame) == 14 + 40 + mss * count > 0xFFFF
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = struct.unpack("<BBHHHH", header)
    # the headers only (Ethernet, IPv4, TCP), as the kernel's skb_headlen of a GRO packet built of frags
    assert (flags, gso_type, hdr_len, gso_size, csum_start, csum_offset) == (NEEDS_CSUM, GSO_TCPV4, 54, mss, 34, 16)
    assert bytes(Ether(frame)[TCP].payload) == payload[: mss * count]
    assert dict(hop.hop.west_to_east.drops) == {}


def test_the_forwarding_loop_over_a_link_of_socketpairs_survives_a_far_edge_that_raises(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from softgso.datapath.run import Datapath
    from softgso.datapath.tap import Tap
    from softgso.datapath.topology import Topology

    from .test_forwarding import ALL_OFFLOADS

    sockets: list[socket.socket] = []
    try:
        topology = Topology("t", ALL_OFFLOADS, link_mtu=SW_LINK.mtu)  # never entered: no namespace, no device
        ends = []
        for _ in range(3):
            pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            for end in pair:
                end.setblocking(False)
                end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
            sockets.extend(pair)
            ends.append(pair)
        (west_dp, west_kernel), (east_dp, east_kernel), link = ends
        topology.west_tap = Tap("w", west_dp.fileno(), 10, ALL_OFFLOADS)
        topology.east_tap = Tap("e", east_dp.fileno(), 10, ALL_OFFLOADS)
        topology.link_sockets = link
        datapath = Datapath(topology, SW_LINK, (100,), (101,))
        east_edge = next(edge for edge, stats in datapath.far_edges.values() if stats is datapath.west_to_east)
        # the batch's way on: in C (forward_area) where the extension is built, else forward
        name = "forward_area" if east_edge.area is not None else "forward"
        forward = getattr(east_edge, name)
        calls = []

        def buggy(*args: object) -> None:
            calls.append(args)
            if len(calls) == 1:
                raise IndexError("a bug")
            forward(*args)

        monkeypatch.setattr(east_edge, name, buggy)
        west_kernel.send(tso_frame())
        received: list[bytes] = []

        def done() -> bool:
            if len(calls) == 1:
                west_kernel.send(tso_frame())  # the next super-packet, once the first batch was lost
                calls.append(())
            try:
                received.append(east_kernel.recv(1 << 17))
            except BlockingIOError:
                pass
            return bool(received)

        timer = threading.Timer(10, lambda: received.append(b""))
        timer.start()
        datapath.run(done, check_every=0.01)
        timer.cancel()
        stats = datapath.west_to_east.as_dict()
        # the lost batch (the first super-packet's 14 link frames) is counted frame by frame
        assert stats["drops"] == {"internal error (IndexError)": 14}
        assert "IndexError('a bug')" in stats["drop_examples"]["internal error (IndexError)"]
        # the loop went on: the second super-packet crossed the link and reached east, coalesced again
        [write] = received
        assert bytes(Ether(write[10:])[TCP].payload) == PAYLOAD
        assert stats["link_sent"] == stats["link_received"] == 28 and stats["tx_frames"] == 1
    finally:
        for sock in sockets:
            sock.close()


def test_random_frames_from_the_link_are_each_popped_or_counted_and_never_stop_the_far_edge(
        veth_hop: Callable[..., VethHop]) -> None:
    import random

    rng = random.Random(19)
    hop = veth_hop(gro=True)
    good = labelled(IPV4_TCP, [(100, 1)])
    frames = []
    for _ in range(3000):
        kind = rng.randrange(4)
        if kind == 0:  # anything at all
            frames.append(rng.randbytes(rng.randrange(0, 200)))
        elif kind == 1:  # the expected stack over random bytes (an IP version nibble or not)
            frames.append(good[:18] + rng.randbytes(rng.randrange(0, 120)))
        elif kind == 2:  # a good frame with one byte changed anywhere
            frame = bytearray(good)
            frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
            frames.append(bytes(frame))
        else:  # a good frame cut short
            frames.append(good[: rng.randrange(len(good))])
    stats = hop.hop.west_to_east
    for start in range(0, len(frames), 256):
        hop.east_edge.forward(frames[start : start + 256], stats)
    assert not any(reason.startswith("internal error") for reason in stats.drops), stats.drops
    # every frame is popped into GRO or counted as a drop at the pop; every packet GRO hands up is written
    popped = stats.gro_frames_in
    pop_drops = sum(stats.drops.values())
    assert popped + pop_drops == len(frames)
    assert stats.tx_frames == stats.gro_packets_out == len(hop.hop.received(hop.hop.east_kernel))
    assert popped > 500 and pop_drops > 500


# -- the far edge's batch in C (batchio.recv_pop, gro.coalesce_poll_area, batchio.write_packets) -----

needs_compiled_far_edge = pytest.mark.skipif(
    batchio.recv_pop is None or compiled_gro is None,
    reason="softgso.datapath._batchio or softgso.gro._coalesce not built (or SOFTGSO_NO_C set): no far edge in C")


def flow_segments(rng: random.Random, count: int, v6: bool, port: int) -> list[bytes]:
    """IP packets of one TCP flow: full segments, now and then a PSH, a short one, a gap or a pure ACK."""
    ip = (IPv6(src="fd00:5e:1::1", dst="fd00:5e:2::1") if v6
          else IP(src="10.200.1.1", dst="10.200.2.1", flags="DF"))
    packets, seq = [], 1000
    for index in range(count):
        size = rng.choice((MSS, MSS, MSS, MSS, 0, rng.randrange(1, MSS)))
        flags = "PA" if rng.random() < 0.05 else "A"
        if not v6:
            ip.id = index
        packets.append(bytes(ip / TCP(sport=port, dport=5201, seq=seq, ack=7, flags=flags, window=500)
                             / rng.randbytes(size)))
        seq += size + (MSS if rng.random() < 0.02 else 0)
    return packets


def mixed_link_frames(seed: int, count: int) -> list[bytes]:
    """Link frames as the far edge may meet them: flows interleaved, and now and then a frame it must refuse."""
    rng = random.Random(seed)
    flows = [iter(flow_segments(rng, count, v6, 40000 + n)) for n, v6 in enumerate((False, True, False))]
    good = labelled(IPV4_TCP, [(100, 1)])
    frames = []
    while len(frames) < count:
        kind = rng.randrange(40)
        if kind == 0:
            frames.append(rng.randbytes(rng.randrange(0, 120)))
        elif kind == 1:
            broken = bytearray(good)
            broken[rng.randrange(len(broken))] ^= 1 << rng.randrange(8)
            frames.append(bytes(broken))
        elif kind == 2:
            frames.append(labelled(IPV4_TCP, [(100, 1)], ttl=rng.randrange(256))[: rng.randrange(10, 40)])
        else:
            frames.append(labelled(next(rng.choice(flows)), [(100, 1)], ttl=rng.randrange(1, 256)))
    return frames


def far_edge_result(hop: VethHop, frames: list[bytes], batch: int) -> tuple[list[tuple[bytes, bytes]], dict]:
    """Every TAP write and the direction's counters when ``frames`` reach the east far edge ``batch`` at a time."""
    sender = hop.sockets[0]  # LER1's end: what it sends, the east far edge receives
    writes = []
    for start in range(0, len(frames), batch):
        for frame in frames[start : start + batch]:
            sender.send(frame)
        hop.east_edge.receive(hop.hop.west_to_east)
        writes += hop.hop.received(hop.hop.east_kernel)
    return writes, hop.hop.west_to_east.as_dict()


@needs_compiled_far_edge
@pytest.mark.parametrize("name", sorted(LINK_FRAMES))
def test_recv_pop_pops_as_the_ler_does(veth_hop: Callable[..., VethHop], name: str) -> None:
    hop = veth_hop()
    edge = hop.east_edge
    frame = LINK_FRAMES[name]
    hop.sockets[0].send(frame)
    count, refused, truncated, calls = batchio.recv_pop(edge.sock.fileno(), edge.area, edge.meta, 4,
                                                        edge.frame_size, *edge.pop_args)
    assert (count, truncated, calls) == (1, 0, 1)
    at, length, popped = edge.meta[:3]
    expected, _ = scalar_receive(edge, frame)
    # the frames popped in C are exactly the ones the LER forwards, with its bytes; the others go to its pop
    assert (refused == 0) == bool(popped) == (expected is not None)
    if popped:
        assert bytes(edge.area[at : at + length]) == expected
    else:
        assert bytes(edge.area[at : at + length]) == frame


@needs_compiled_far_edge
@pytest.mark.parametrize(("gro", "seed", "batch"), [(True, 1, 256), (True, 2, 64), (True, 3, 7), (False, 4, 256)])
def test_the_far_edge_in_c_writes_what_the_python_far_edge_writes(
        veth_hop: Callable[..., VethHop], gro: bool, seed: int, batch: int) -> None:
    frames = mixed_link_frames(seed, 1500)
    compiled = veth_hop(gro=gro)
    reference = veth_hop(gro=gro)
    reference.east_edge.area = None  # the Python far edge: pop per frame, coalesce_poll, vnet_header, write_each
    ours, our_stats = far_edge_result(compiled, frames, batch)
    theirs, their_stats = far_edge_result(reference, frames, batch)
    assert ours == theirs
    assert our_stats == their_stats
    # the run exercised what it is about: aggregates, single frames, refusals counted
    if gro:
        assert sum(header[1] != 0 for header, _ in ours) > 10
    assert sum(their_stats["drops"].values()) > 20


@needs_compiled_far_edge
def test_an_aggregate_over_the_hdr_len_field_gets_the_header_length_there_in_c(
        veth_hop: Callable[..., VethHop]) -> None:
    hop = veth_hop(gro=True)
    mss, count = 1284, 51
    payload = bytes(range(256)) * (mss * count // 256 + 1)
    frames = [labelled(bytes(IP(src="10.200.1.1", dst="10.200.2.1", flags="DF", id=index)
                             / TCP(sport=40000, dport=5201, seq=1000 + index * mss, ack=1, flags="A", window=512)
                             / payload[index * mss : (index + 1) * mss]), [(100, 1)]) for index in range(count)]
    [(header, frame)], stats = far_edge_result(hop, frames, 256)
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = struct.unpack("<BBHHHH", header)
    assert (flags, gso_type, hdr_len, gso_size, csum_start, csum_offset) == (NEEDS_CSUM, GSO_TCPV4, 54, mss, 34, 16)
    assert bytes(Ether(frame)[TCP].payload) == payload[: mss * count]
    assert stats["drops"] == {} and stats["gro"]["frames_in"] == count


@needs_compiled_far_edge
def test_write_packets_stops_at_a_failed_write_and_names_the_error() -> None:
    import os

    reader, writer = os.pipe()
    os.close(reader)
    area = bytes(100)
    meta = array("q", [0, 60, 1, 0, 0, 0] * 2)
    import signal

    previous = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        assert batchio.write_packets(writer, area, meta, 0, 2, 10, True, 1, 16, 0) == (0, errno.EPIPE, 0)
    finally:
        signal.signal(signal.SIGPIPE, previous)
        os.close(writer)
    with pytest.raises(ValueError, match="not inside the area"):
        batchio.write_packets(1, bytes(10), meta, 0, 2, 10, True, 1, 16, 0)


# -- the near side's batch in C (batchio.FrameQueue: read_push, segments written in place) --------------

needs_frame_queue = pytest.mark.skipif(
    batchio.FrameQueue is None, reason="softgso.datapath._batchio not built (or SOFTGSO_NO_C set): no FrameQueue")


def tap_reads(seed: int, count: int) -> list[bytes]:
    """TAP reads as LER1 may meet them (vnet header + frame): mostly plain IPv4/IPv6 frames for it, and now and
    then one for someone else, another ethertype, one over the link MTU, a runt, a checksum or GSO to do."""
    rng = random.Random(seed)
    gateway, host = WEST_GW, WEST_MAC  # LER1's MAC on the west TAP, and the west host's
    reads = []
    for index in range(count):
        kind = rng.randrange(30)
        size = rng.choice((0, 1, 100, MSS, MSS, MSS, 1500 - 40))
        if kind < 20:
            ip = (IPv6(src="fd00:5e:1::1", dst="fd00:5e:2::1") if kind % 2
                  else IP(src="10.200.1.1", dst="10.200.2.1", id=index))
            size = min(size, 1500 - (40 if kind % 2 else 20) - 20)
            reads.append(bytes(10) + bytes(Ether(dst=gateway, src=host) / ip / TCP(sport=1, dport=2, seq=index)
                                           / rng.randbytes(size)))
        elif kind == 20:
            reads.append(bytes(10) + bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=host) / IP() / TCP()))
        elif kind == 21:
            reads.append(bytes(10) + bytes(Ether(dst=gateway, src=host, type=0x0806) / rng.randbytes(28)))
        elif kind == 22:  # one byte over the link MTU once labelled
            reads.append(bytes(10) + bytes(Ether(dst=gateway, src=host) / IP(src="10.200.1.1", dst="10.200.2.1")
                                           / TCP() / rng.randbytes(1501 - 40)))
        elif kind == 23:
            reads.append(rng.randbytes(rng.randrange(0, 30)))
        elif kind == 24:  # a header that is not all zero
            header = bytearray(10)
            header[rng.randrange(10)] = 1 << rng.randrange(8)
            reads.append(bytes(header) + bytes(Ether(dst=gateway, src=host) / IP(src="10.200.1.1", dst="10.200.2.1")
                                               / TCP() / b"x"))
        elif kind == 25:
            reads.append(tso_frame(payload=rng.randbytes(rng.randrange(100, 20000))))
        else:  # a plain frame with a random byte changed after the headers' MAC and ethertype
            frame = bytearray(bytes(10) + bytes(Ether(dst=gateway, src=host) / IP(src="10.200.1.1", dst="10.200.2.1")
                                                / TCP() / rng.randbytes(200)))
            frame[rng.randrange(24, len(frame))] ^= 0xFF
            reads.append(bytes(frame))
    return reads


def pushed_result(hop: VethHop, reads: list[bytes], compiled: bool) -> tuple[list[bytes], dict]:
    """LER1's link frames (in order) and the direction's counters when ``reads`` come from its TAP, taken by
    push_reads (``compiled``) or read by read one at a time and received by the scalar engine."""
    ler = hop.hop.ler1
    os.set_blocking(ler.tap.fd, False)  # as a TAP the datapath opens
    hop.hop.west_kernel.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    frames = []
    for start in range(0, len(reads), 40):
        for buf in reads[start : start + 40]:
            hop.hop.west_kernel.send(buf)
        if compiled:
            hop.link.push_reads(ler, 1000, ler.receive_from_tap)
        else:
            for _ in reads[start : start + 40]:
                ler.receive_from_tap(os.read(ler.tap.fd, READ_SIZE))
        frames += hop.link.queued("LER2")
        hop.link.flush()
        while True:  # what reached the far end of the link, read away
            try:
                hop.sockets[1].recv(1 << 17, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
    stats = hop.hop.west_to_east.as_dict()
    assert not any(reason.startswith("link send failed") for reason in stats["drops"])
    stats.pop("syscalls")
    stats.pop("link_sent", None)
    return frames, stats


@needs_frame_queue
@pytest.mark.parametrize("seed", [1, 2])
def test_read_push_puts_the_scalar_engines_frames_on_the_link(veth_hop: Callable[..., VethHop], seed: int) -> None:
    reads = tap_reads(seed, 600)
    ours, our_stats = pushed_result(veth_hop(), reads, compiled=True)
    theirs, their_stats = pushed_result(veth_hop(engine="scalar"), reads, compiled=False)
    assert ours == theirs
    assert our_stats == their_stats
    assert their_stats["rx_gso_packets"] > 5 and sum(their_stats["drops"].values()) > 20


@needs_frame_queue
def test_a_full_queue_is_sent_on_the_way_and_nothing_is_reordered(veth_hop: Callable[..., VethHop]) -> None:
    reads = tap_reads(3, 300)
    hop = veth_hop()
    # room for two reads and a few frames: read_push and the segments find it full again and again
    hop.link.queues["LER2"] = batchio.FrameQueue(2 * READ_SIZE + 4000, 40)
    os.set_blocking(hop.hop.ler1.tap.fd, False)
    hop.hop.west_kernel.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    arrived = []
    for start in range(0, len(reads), 40):
        for buf in reads[start : start + 40]:
            hop.hop.west_kernel.send(buf)
        hop.link.push_reads(hop.hop.ler1, 1000, hop.hop.ler1.receive_from_tap)
        hop.link.flush()
        while True:
            try:
                arrived.append(hop.sockets[1].recv(1 << 17, socket.MSG_DONTWAIT))
            except BlockingIOError:
                break
    expected, _ = pushed_result(veth_hop(engine="scalar"), reads, compiled=False)
    assert arrived == expected
    assert hop.hop.west_to_east.link_sent == len(expected)


@needs_frame_queue
def test_frame_queue_refuses_what_does_not_fit() -> None:
    queue = batchio.FrameQueue(100, 3)
    assert queue.append(b"a" * 60) and not queue.append(b"b" * 41) and queue.append(b"c" * 40)
    assert len(queue) == 2 and queue.room == 0 and queue.frame(1) == b"c" * 40
    with pytest.raises(ValueError):
        queue.add_segments(0, 10, 10, 1)  # not at the tail
    queue.clear()
    assert (len(queue), queue.tail, queue.room) == (0, 0, 100)
    memoryview(queue)[:30] = b"x" * 30
    queue.add_segments(0, 12, 6, 3)
    assert [queue.frame(i) for i in range(3)] == [b"x" * 12, b"x" * 12, b"x" * 6]
    with pytest.raises(ValueError):
        queue.add_segments(30, 40, 40, 2)  # past the area
    with pytest.raises(IndexError):
        queue.frame(3)
