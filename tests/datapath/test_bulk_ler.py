"""The LER's bulk path (softgso.datapath.bulk) changes nothing a frame, a counter or a capture shows.

The reference is the same LER with ``engine="scalar"``: the same TAP reads go through a hop whose
LERs learn plans (compiled or numpy) and through one whose LERs never do, and everything either
hop produces is compared: the frames on the link (its capture), the frames written to each
TAP (virtio header included) and the counters of both directions. The frames cover the shapes a
kernel hands a TAP with offloads (TCP/IPv4 and TCP/IPv6 super-packets of many sizes, with
timestamps, ECN and the per-packet fields varied within a shape; UDP with USO), the ones it does
not (no NEEDS_CSUM, a checksum field that is not the seed) and the ones that are dropped.
"""

from __future__ import annotations

import functools
import random
import socket
import struct
from collections.abc import Callable, Iterator

import pytest

from softgso.bulk import compiled_primitive
from softgso.datapath import bulk
from softgso.datapath.bulk import BulkIngress, accelerate, check_engine
from softgso.datapath.ler import LabelEdgeRouter
from softgso.datapath.run import Datapath, DatapathOptions
from softgso.datapath.tap import Tap, tap_profile
from softgso.datapath.topology import Topology
from softgso.errors import UsageError
from softgso.features import PROFILES, DeviceProfile
from softgso.features import NetdevFeature as F
from softgso.job import PacketResult
from softgso.packet import Packet

from .test_forwarding import (
    ALL_OFFLOADS,
    EAST_GW,
    EAST_MAC,
    HW_LINK,
    SW_LINK,
    WEST_GW,
    WEST_MAC,
    Hop,
    build_hop,
    mac,
    ones_sum,
)
from .test_survival import SocketHop

# the bulk engines that can run here: compiled only where softgso.bulk._segment is built
ENGINES = [*(["compiled"] if compiled_primitive.available() else []), "numpy"]
NEEDS_CSUM = 1
GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, GSO_ECN = 1, 4, 5, 0x80
TCP_ACK, TCP_PSH, TCP_FIN, TCP_URG, TCP_CWR = 0x10, 0x08, 0x01, 0x20, 0x80
# the link MTU is the TAP's 1500 plus one label; with timestamps the MSS is 1448 (IPv4) / 1428 (IPv6)
MSS4, MSS6 = 1448, 1428
# a link whose mpls_features checksum but do not segment: the segments cross it CHECKSUM_PARTIAL
CSUM_LINK = PROFILES["nic-mpls-tso"].with_overrides(mpls_features=F.SG | F.HW_CSUM, mtu=1504,
                                                    name="csum-no-mpls-gso@mtu1504")


def vnet_header(flags: int, gso_type: int, hdr_len: int, gso_size: int, csum_start: int, csum_offset: int) -> bytes:
    return struct.pack("<BBHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)


def tcp_super_packet(rng: random.Random, payload_len: int, *, ipv6: bool = False, gso_size: int | None = None,
                     flags: int | None = None, needs_csum: bool = True, seed: bool = True, ecn: bool = False,
                     to_east: bool = True, flow: int = 0, ip_id: int | None = None,
                     seq: int | None = None) -> bytes:
    """A TAP read: vnet header + TCP super-packet with timestamps; seq, ack, window, IDs, options at random."""
    dst, src = (WEST_GW, WEST_MAC) if to_east else (EAST_GW, EAST_MAC)
    ether = mac(dst) + mac(src) + struct.pack("!H", 0x86DD if ipv6 else 0x0800)
    tcp_len = 32 + payload_len
    if flags is None:
        flags = rng.choice((TCP_ACK, TCP_ACK | TCP_PSH, TCP_ACK | TCP_PSH | TCP_FIN, TCP_ACK | TCP_URG))
        if ecn and rng.random() < 0.5:
            flags |= TCP_CWR
    if ipv6:
        source, dest = bytes.fromhex("fd00c8010000000000000000000000") + bytes([1 + flow]), \
            bytes.fromhex("fd00c8020000000000000000000000") + bytes([1])
        ip = struct.pack("!IHBB", 0x60000000 | flow, tcp_len, 6, 64) + source + dest
        pseudo = source + dest + struct.pack("!IxxxB", tcp_len, 6)
    else:
        source, dest = bytes([10, 200, 1, 1 + flow]), bytes([10, 200, 2, 1])
        ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + tcp_len, rng.randrange(1 << 16) if ip_id is None else ip_id,
                         0x4000, 64, 6, 0) + source + dest
        ip = ip[:10] + struct.pack("!H", ~ones_sum(ip) & 0xFFFF) + ip[12:]
        pseudo = source + dest + struct.pack("!BBH", 0, 6, tcp_len)
    # seq and ack anywhere, wrap-around included; the kernel's seed (or anything) in the checksum field
    check = ones_sum(pseudo) if seed else rng.randrange(1 << 16)
    tcp = struct.pack("!HHIIBBHHH", 40000 + flow, 5201, rng.randrange(1 << 32) if seq is None else seq,
                      rng.randrange(1 << 32), 8 << 4,
                      flags, rng.randrange(1 << 16), check, rng.randrange(1 << 16) if flags & TCP_URG else 0)
    tcp += b"\x01\x01\x08\x0a" + struct.pack("!II", rng.randrange(1 << 32), rng.randrange(1 << 32))
    frame = ether + ip + tcp + rng.randbytes(payload_len)
    l4 = len(ether) + len(ip)
    gso_type = (GSO_TCPV6 if ipv6 else GSO_TCPV4) | (GSO_ECN if ecn else 0)
    size = gso_size if gso_size is not None else (MSS6 if ipv6 else MSS4)
    header = vnet_header(NEEDS_CSUM if needs_csum else 0, gso_type, l4 + 32, size, l4, 16)
    return header + frame


def udp_super_packet(rng: random.Random, payload_len: int, gso_size: int = 1400, seed: bool = True) -> bytes:
    """A TAP read: vnet header + UDP super-packet (USO, UDP_L4)."""
    ether = mac(WEST_GW) + mac(WEST_MAC) + b"\x08\x00"
    udp_len = 8 + payload_len
    source, dest = bytes([10, 200, 1, 1]), bytes([10, 200, 2, 1])
    ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + udp_len, rng.randrange(1 << 16), 0x4000, 64, 17, 0) + source + dest
    check = ones_sum(source + dest + struct.pack("!BBH", 0, 17, udp_len)) if seed else rng.randrange(1 << 16)
    udp = struct.pack("!HHHH", 41000, 5201, udp_len, check)
    return vnet_header(NEEDS_CSUM, GSO_UDP_L4, 42, gso_size, 34, 6) + ether + ip + udp + rng.randbytes(payload_len)


def plain_frame(rng: random.Random, *, needs_csum: bool, to_east: bool = True) -> bytes:
    """A TAP read that is not GSO: an ACK, its checksum left to us (NEEDS_CSUM) or complete."""
    read = tcp_super_packet(rng, rng.choice((0, 0, 1, 100)), to_east=to_east, flags=TCP_ACK)
    header = vnet_header(NEEDS_CSUM, 0, 0, 0, 34, 16) if needs_csum else bytes(10)
    return header + read[10:]


def tap_reads(seed: int) -> list[tuple[str, bytes]]:
    """(LER, TAP read) pairs: shapes repeating with fresh per-packet fields, interleaved with everything else."""
    rng = random.Random(seed)
    v4_sizes = (MSS4 + 1, 2 * MSS4, 3000, 10 * MSS4 + 7, 44 * MSS4, 65535 - 20 - 32)
    v6_sizes = (MSS6 + 1, 5 * MSS6, 20000, 45 * MSS6 + 3)
    makers: list[Callable[[], tuple[str, bytes]]] = [
        lambda: ("LER1", tcp_super_packet(rng, rng.choice(v4_sizes))),
        lambda: ("LER1", tcp_super_packet(rng, rng.choice(v4_sizes), flow=1)),
        # the IPv4 ID and the sequence number wrap within the super-packet
        lambda: ("LER1", tcp_super_packet(rng, rng.choice(v4_sizes), ip_id=0xFFFE, seq=(1 << 32) - 2000)),
        lambda: ("LER1", tcp_super_packet(rng, rng.choice(v6_sizes), ipv6=True)),
        lambda: ("LER1", tcp_super_packet(rng, rng.choice(v4_sizes), ecn=True)),
        lambda: ("LER1", tcp_super_packet(rng, rng.choice(v6_sizes), ipv6=True, ecn=True, flow=2)),
        # the checksum field holds no seed: each packet's own field is where its checksum starts
        lambda: ("LER1", tcp_super_packet(rng, rng.choice(v4_sizes), seed=False)),
        lambda: ("LER1", tcp_super_packet(rng, rng.choice(v6_sizes), ipv6=True, seed=False)),
        # no NEEDS_CSUM: the kernel dissects for the L4 header (the scalar path's)
        lambda: ("LER1", tcp_super_packet(rng, rng.choice(v4_sizes), needs_csum=False, seed=False)),
        lambda: ("LER1", tcp_super_packet(rng, rng.choice((8, 100, 537, 1000)), gso_size=rng.choice((8, 100, 537)))),
        lambda: ("LER1", udp_super_packet(rng, rng.choice((1401, 2800, 30000)))),
        lambda: ("LER1", udp_super_packet(rng, rng.choice((1401, 2800)), seed=False)),
        # segments too big for the link: dropped as mpls_pkt_too_big
        lambda: ("LER1", tcp_super_packet(rng, 3000, gso_size=1460)),
        # super-packets the other way, and ACKs both ways
        lambda: ("LER2", tcp_super_packet(rng, rng.choice(v4_sizes), to_east=False)),
        lambda: ("LER1", plain_frame(rng, needs_csum=True)),
        lambda: ("LER1", plain_frame(rng, needs_csum=False)),
        lambda: ("LER2", plain_frame(rng, needs_csum=True, to_east=False)),
    ]
    reads = [rng.choice(makers)() for _ in range(260)]
    # refused by virtio_net_hdr_to_skb: gso_size 0; hdr_len past the packet; csum_start not the TCP header
    refused = bytearray(tcp_super_packet(rng, 5000))
    struct.pack_into("<H", refused, 4, 0)
    too_long = bytearray(tcp_super_packet(rng, 5000))
    struct.pack_into("<H", too_long, 2, 60000)
    elsewhere = bytearray(tcp_super_packet(rng, 5000))
    struct.pack_into("<H", elsewhere, 6, 38)
    for position, read in ((5, refused), (50, too_long), (100, elsewhere), (150, elsewhere), (151, refused)):
        reads.insert(position, ("LER1", bytes(read)))
    return reads


def set_engine(hop: Hop, engine: str) -> None:
    """Both LERs of the hop segment with ``engine`` (connected again, given the bulk paths anew)."""
    for ler in (hop.ler1, hop.ler2):
        assert ler.link is not None and ler.peer is not None
        ler.connect(ler.link, ler.peer, ler.ingress_stats)
        accelerate(ler, engine)


def run_reads(hop: Hop, reads: list[tuple[str, bytes]]) -> dict[str, object]:
    """Everything the hop produces for the reads, in order: link frames, TAP writes, counters."""
    routers = {"LER1": hop.ler1, "LER2": hop.ler2}
    east, west = [], []
    for name, read in reads:
        routers[name].receive_from_tap(read)
        # drained after each read: a socketpair queue is not a TAP's
        east += hop.received(hop.east_kernel)
        west += hop.received(hop.west_kernel)
    return {"link": list(hop.captured), "east_tap": east, "west_tap": west,
            "west_to_east": hop.west_to_east.as_dict(), "east_to_west": hop.east_to_west.as_dict()}


def bulk_paths(hop: Hop) -> list[BulkIngress]:
    paths = [ler.bulk for ler in (hop.ler1, hop.ler2)]
    assert all(path is not None for path in paths)
    return [path for path in paths if path is not None]


@pytest.fixture
def make_hop() -> Iterator[Callable[..., Hop]]:
    """test_forwarding's hop: the LERs on the link, socketpairs for TAPs, the link captured."""
    sockets: list[socket.socket] = []
    yield functools.partial(build_hop, sockets)
    for sock in sockets:
        sock.close()


@pytest.fixture
def socket_hop() -> Iterator[Callable[[], SocketHop]]:
    """test_survival's hop: the whole Datapath and its forwarding loop over socketpairs."""
    sockets: list[socket.socket] = []
    yield lambda: SocketHop(sockets)
    for sock in sockets:
        sock.close()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def same_as_scalar(make_hop: Callable[..., Hop], engine: str, link: DeviceProfile, labels: tuple[int, ...],
                   reads: list[tuple[str, bytes]]) -> tuple[Hop, dict[str, object]]:
    """The same TAP reads through a scalar hop and a planned one: link capture, TAP writes and counters equal.

    Returns the planned hop (to check its plans were used) and the scalar run's results.
    """
    mtu = link.mtu + 4 * (len(labels) - 1)
    scalar = make_hop(link.with_overrides(mtu=mtu), labels=labels)
    set_engine(scalar, "scalar")
    planned = make_hop(link.with_overrides(mtu=mtu), labels=labels)
    set_engine(planned, engine)
    expected = run_reads(scalar, reads)
    got = run_reads(planned, reads)
    for key in ("link", "east_tap", "west_tap", "west_to_east", "east_to_west"):
        assert got[key] == expected[key], f"{key} differs from the scalar path"
    return planned, expected


@pytest.mark.parametrize("link", [SW_LINK, CSUM_LINK], ids=["link-csum-in-software", "link-csum-partial"])
@pytest.mark.parametrize("labels", [(100,), (100, 2000, 3000)], ids=["one-label", "three-labels"])
def test_the_bulk_path_sends_what_the_scalar_path_sends(make_hop: Callable[..., Hop], engine: str, link: DeviceProfile,
                                                        labels: tuple[int, ...]) -> None:
    reads = tap_reads(seed=len(labels) * 10 + (link is CSUM_LINK))
    planned, expected = same_as_scalar(make_hop, engine, link, labels, reads)
    # not vacuous: most super-packets took the bulk path, and some shapes were left to the scalar one
    ler1, ler2 = bulk_paths(planned)
    assert ler1.planned > 100 and ler2.planned > 5
    assert ler1.learnt < ler1.planned
    assert expected["west_to_east"]["drops"]  # type: ignore[index]


def test_shapes_without_a_plan_stay_on_the_scalar_path(make_hop: Callable[..., Hop], engine: str) -> None:
    hop = make_hop(SW_LINK)
    set_engine(hop, engine)
    rng = random.Random(7)
    path = bulk_paths(hop)[0]
    refused = bytearray(tcp_super_packet(rng, 5000))
    struct.pack_into("<H", refused, 4, 0)  # gso_size 0
    for read in (bytes(refused),
                 tcp_super_packet(rng, 3000, gso_size=1460),  # too big for the link
                 tcp_super_packet(rng, 1000)):  # not more than one segment: no GSO after all
        hop.ler1.receive_from_tap(read)
        hop.ler1.receive_from_tap(read)
        hop.received(hop.east_kernel)
    assert path.planned == 0
    assert sum(hop.west_to_east.drops.values()) == 4
    for needs_csum in (True, False):
        hop.ler1.receive_from_tap(tcp_super_packet(rng, 5000, needs_csum=needs_csum, seed=needs_csum))
        hop.ler1.receive_from_tap(tcp_super_packet(rng, 5000, needs_csum=needs_csum, seed=needs_csum))
    assert (path.learnt, path.planned) == (2, 4)


def test_a_link_that_carries_gso_packets_whole_gets_no_plans(make_hop: Callable[..., Hop], engine: str) -> None:
    hop = make_hop(HW_LINK)
    set_engine(hop, engine)
    rng = random.Random(11)
    for _ in range(3):
        hop.ler1.receive_from_tap(tcp_super_packet(rng, 5000))
    assert bulk_paths(hop)[0].planned == 0
    assert len(hop.captured) == 3


def test_a_shape_is_learnt_once_per_virtio_header(make_hop: Callable[..., Hop], engine: str) -> None:
    hop = make_hop(SW_LINK)
    set_engine(hop, engine)
    rng = random.Random(8)
    path = bulk_paths(hop)[0]
    for _ in range(5):
        hop.ler1.receive_from_tap(tcp_super_packet(rng, 9000))
        # the same frame shape under another gso_size: another header, another plan
        hop.ler1.receive_from_tap(tcp_super_packet(rng, 9000, gso_size=1000))
        hop.received(hop.east_kernel)
    assert (path.learnt, path.planned) == (2, 10)


def test_the_tables_are_bounded_and_learnt_again(make_hop: Callable[..., Hop], engine: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "MAX_SHAPES", 3)
    rng = random.Random(9)
    reads = [("LER1", tcp_super_packet(rng, rng.choice((3000, 4000, 5000, 6000, 7000)))) for _ in range(40)]
    scalar = make_hop(SW_LINK)
    set_engine(scalar, "scalar")
    planned = make_hop(SW_LINK)
    set_engine(planned, engine)
    assert run_reads(planned, reads) == run_reads(scalar, reads)
    path = bulk_paths(planned)[0]
    assert path.planned == 40 and path.learnt > 5  # forgotten and learnt again
    assert sum(len(table.shapes) for table in path._headers.values()) <= 3


def test_the_forwarding_loop_gives_the_same_frames_with_either_engine(socket_hop: Callable[[], SocketHop]) -> None:
    rng = random.Random(10)
    sizes = [rng.choice((3000, 6000)) for _ in range(8)]
    reads = [tcp_super_packet(rng, size) for size in sizes] + [plain_frame(rng, needs_csum=True)]
    results = []
    for engine in ("scalar", "auto"):
        hop = socket_hop()
        for ler in (hop.datapath.ler1, hop.datapath.ler2):
            assert ler.link is not None and ler.peer is not None
            ler.connect(ler.link, ler.peer, ler.ingress_stats)
            accelerate(ler, engine)
        hop.flood(reads)
        stats = hop.datapath.stats()
        # the system calls the loop made depend on timing (a read that finds nothing), not on the engine
        directions = [{key: value for key, value in stats[d].items() if key != "syscalls"}
                      for d in ("west_to_east", "east_to_west")]
        results.append((hop.east_frames(), *directions))
        assert (hop.datapath.ler1.bulk is None) == (engine == "scalar")
    assert results[0] == results[1]
    assert len(results[0][0]) == sum(-(-size // MSS4) for size in sizes) + 1


def test_engines_are_checked_before_anything_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    for engine in ("auto", "numpy", "scalar"):
        check_engine(engine)
        DatapathOptions(engine=engine).validate()
    with pytest.raises(UsageError, match="unknown datapath engine"):
        DatapathOptions(engine="fast").validate()
    monkeypatch.setattr(bulk, "available", lambda: False)
    with pytest.raises(UsageError, match="softgso.bulk._segment is not built"):
        DatapathOptions(engine="compiled").validate()
    DatapathOptions(engine="auto").validate()  # falls back to numpy


@pytest.mark.parametrize("engine", ["numpy", "auto", "scalar"])
def test_the_datapath_hands_its_engine_to_both_lers(engine: str) -> None:
    topology = Topology("t", ALL_OFFLOADS)  # never entered: no namespace, no device
    topology.west_tap, topology.east_tap = Tap("w", -1, 10, ALL_OFFLOADS), Tap("e", -1, 10, ALL_OFFLOADS)
    datapath = Datapath(topology, SW_LINK, (100,), (101,), engine=engine)
    assert datapath.engine == engine
    for ler in (datapath.ler1, datapath.ler2):
        assert (ler.bulk is None) == (engine == "scalar")
        if ler.bulk is not None:
            assert ler.bulk.compiled == (engine == "auto" and compiled_primitive.available())


def test_a_ler_without_a_link_has_no_bulk_path() -> None:
    ler = LabelEdgeRouter("LER", Tap("t", -1, 10, 0), push_labels=(100,), pop_labels=(101,), own_mac=bytes(6),
                          tap_peer_mac=bytes(6), link_mac=bytes(6), link_peer_mac=bytes(6),
                          tap_profile=tap_profile("t", 0, 1500))
    assert ler.bulk is None and ler.bulk_egress is None


# -- frames that are not GSO: whole-frame plans, both ways ------------------------------------------

DATA_VALID = 2
ETH_HLEN = 14


def one_frame_read(rng: random.Random, payload_len: int, *, ipv6: bool = False, needs_csum: bool = True,
                   data_valid: bool = False, to_east: bool = True, flow: int = 0) -> bytes:
    """A TAP read that is not GSO: a TCP frame (an ACK when ``payload_len`` is 0), seq/ack/window/payload at random."""
    read = tcp_super_packet(rng, payload_len, ipv6=ipv6, to_east=to_east, flow=flow, seed=needs_csum,
                            flags=TCP_ACK if not payload_len else TCP_ACK | TCP_PSH)
    l4 = ETH_HLEN + (40 if ipv6 else 20)
    flags = (NEEDS_CSUM if needs_csum else 0) | (DATA_VALID if data_valid else 0)
    header = vnet_header(flags, 0, 0, 0, l4, 16) if flags else bytes(10)
    return header + read[10:]


def one_frame_udp_read(rng: random.Random, payload_len: int) -> bytes:
    """A TAP read that is not GSO: a UDP datagram, its checksum left to us."""
    return vnet_header(NEEDS_CSUM, 0, 0, 0, 34, 6) + udp_super_packet(rng, payload_len)[10:]


def one_frame_reads(seed: int) -> list[tuple[str, bytes]]:
    """(LER, TAP read) pairs of frames that are not GSO, shapes repeating, with the ones the scalar path refuses."""
    rng = random.Random(seed)
    sizes = (0, 0, 0, 1, 100, 1000, MSS4)
    makers: list[Callable[[], tuple[str, bytes]]] = [
        lambda: ("LER1", one_frame_read(rng, 0)),
        lambda: ("LER1", one_frame_read(rng, 0, needs_csum=False)),
        lambda: ("LER2", one_frame_read(rng, 0, to_east=False)),
        lambda: ("LER2", one_frame_read(rng, 0, to_east=False, needs_csum=False)),
        lambda: ("LER1", one_frame_read(rng, rng.choice(sizes), flow=1)),
        lambda: ("LER1", one_frame_read(rng, rng.choice((0, 1, 100, MSS6)), ipv6=True)),
        lambda: ("LER2", one_frame_read(rng, 0, ipv6=True, needs_csum=False, to_east=False)),
        lambda: ("LER1", one_frame_read(rng, rng.choice(sizes), data_valid=True, needs_csum=False)),
        lambda: ("LER1", one_frame_read(rng, 0, data_valid=True)),
        lambda: ("LER1", one_frame_udp_read(rng, rng.choice((0, 1, 31, 1400)))),
        # super-packets in between: their frames cross the peer's receive path too
        lambda: ("LER1", tcp_super_packet(rng, rng.choice((3000, 10 * MSS4 + 7)))),
    ]
    reads = [rng.choice(makers)() for _ in range(300)]
    # refused: csum_start past the frame; csum_offset past it; too big for the link; a runt; no FEC
    past = bytearray(one_frame_read(rng, 0))
    struct.pack_into("<H", past, 6, 2000)
    offset_past = bytearray(one_frame_read(rng, 0))
    struct.pack_into("<H", offset_past, 8, 60)
    too_big = one_frame_read(rng, 3000)
    runt = one_frame_read(rng, 0)[:20]
    arp = bytearray(one_frame_read(rng, 0))
    arp[22:24] = b"\x08\x06"
    for position, read in ((3, past), (40, offset_past), (41, offset_past), (90, too_big), (91, too_big),
                           (120, runt), (121, arp), (200, past)):
        reads.insert(position, ("LER1", bytes(read)))
    return reads


@pytest.mark.parametrize("link", [SW_LINK, CSUM_LINK], ids=["link-csum-in-software", "link-csum-partial"])
@pytest.mark.parametrize("labels", [(100,), (100, 2000, 3000)], ids=["one-label", "three-labels"])
def test_whole_frame_plans_send_what_the_scalar_path_sends(make_hop: Callable[..., Hop], engine: str,
                                                           link: DeviceProfile, labels: tuple[int, ...]) -> None:
    reads = one_frame_reads(seed=len(labels) * 10 + (link is CSUM_LINK))
    planned, expected = same_as_scalar(make_hop, engine, link, labels, reads)
    # not vacuous: most frames took plans both ways, the refused ones were counted by the scalar path
    ler1, ler2 = bulk_paths(planned)
    assert ler1.one_frame_planned > 150 and ler2.one_frame_planned > 20
    assert ler1.one_frame_learnt < ler1.one_frame_planned / 2
    egress = planned.ler2.bulk_egress
    assert egress is not None and egress.planned > 200
    drops = expected["west_to_east"]["drops"]  # type: ignore[index]
    assert sum(drops.values()) == 8  # type: ignore[attr-defined]


def test_the_peer_refuses_what_the_scalar_receive_refuses(make_hop: Callable[..., Hop], engine: str) -> None:
    rng = random.Random(12)
    good = one_frame_read(rng, 0)
    results = []
    for mode in ("scalar", engine):
        hop = make_hop(SW_LINK)
        set_engine(hop, mode)
        assert hop.ler1.link is not None
        link_frame = bytearray(BulkIngress(hop.ler1, hop.ler1.link, compiled=False).link_result(good).frames[0])
        wrong_label = bytearray(link_frame)
        wrong_label[14] ^= 0x10
        not_ip = bytearray(link_frame)
        not_ip[18] = 0x25
        no_bottom = bytearray(link_frame)
        no_bottom[16] &= 0xFE
        for data in (link_frame, wrong_label, not_ip, no_bottom, link_frame[:17]) * 2:
            hop.ler1.link.send([Packet(bytearray(data))], hop.ler2, hop.west_to_east, gso=False)
        results.append((hop.received(hop.east_kernel), hop.west_to_east.as_dict()))
        if hop.ler2.bulk_egress is not None:
            assert hop.ler2.bulk_egress.planned == 2 and hop.ler2.bulk_egress.learnt == 1
    assert results[0] == results[1]
    assert sum(results[0][1]["drops"].values()) == 8  # type: ignore[attr-defined]


def test_a_whole_frame_plan_that_ignores_a_field_that_matters_is_refused(make_hop: Callable[..., Hop], engine: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # a link_result that, unlike the real one, changes the frame when the seq is not the first one it saw
    real = BulkIngress.link_result
    seen: list[int] = []
    seq_at = 10 + ETH_HLEN + 20 + 4

    def seq_dependent(self: BulkIngress, buf: bytes) -> PacketResult:
        result = real(self, buf)
        seen.append(buf[seq_at])
        if buf[seq_at] != seen[0] and result.packets:
            result.frames[0] = result.frames[0][:-1] + bytes([result.frames[0][-1] ^ 1])
        return result

    monkeypatch.setattr(BulkIngress, "link_result", seq_dependent)
    hop = make_hop(SW_LINK)
    set_engine(hop, engine)
    rng = random.Random(13)
    for _ in range(3):
        hop.ler1.receive_from_tap(one_frame_read(rng, 0))
    path = bulk_paths(hop)[0]
    assert (path.one_frame_learnt, path.one_frame_planned) == (0, 0)
    assert len(hop.captured) == 3


def test_a_perturbed_read_changes_every_byte_the_key_leaves_out() -> None:
    read = one_frame_read(random.Random(14), 100)
    found = bulk.one_frame_key(read, 10)
    assert found is not None
    key, end = found
    other = bulk.perturbed(read, 10, end)
    changed = {at for at in range(len(read)) if read[at] != other[at]}
    net = 10 + ETH_HLEN
    assert changed == {*range(net + 4, net + 6), *range(net + 10, net + 12), *range(end, len(read))}
    assert bulk.one_frame_key(other, 10) == (key, end)


def test_whole_frame_plans_are_bounded(make_hop: Callable[..., Hop], engine: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "MAX_SHAPES", 3)
    rng = random.Random(15)
    reads = [("LER1", one_frame_read(rng, rng.choice((0, 1, 2, 3, 4, 5)))) for _ in range(40)]
    scalar = make_hop(SW_LINK)
    set_engine(scalar, "scalar")
    planned = make_hop(SW_LINK)
    set_engine(planned, engine)
    assert run_reads(planned, reads) == run_reads(scalar, reads)
    path = bulk_paths(planned)[0]
    assert path.one_frame_planned == 40 and path.one_frame_learnt > 5
    assert len(path._one_frame) <= 3
    assert planned.ler2.bulk_egress is not None and len(planned.ler2.bulk_egress._plans) <= 3
