"""The frames of the kernel's GRO selftest, built as its sender builds them.

A port of the construction rules of tools/testing/selftests/net/lib/gro.c (current upstream, read in
torvalds/linux): create_packet, fill_*layer, its own checksum helpers (host-order 16-bit sums on a
little-endian machine), the option writers with the C structs' layout (struct tcp_option_ts has 2
padding bytes before tsval; struct ip_timestamp is 40 bytes), and the static buffers the sender reuses
between packets. Nothing here uses softgso's code: this is the selftest's side of the comparison.

Each case gives the frames in order, split where the sender sleeps (a NAPI poll ends there), and the
receiver's expectation: the TCP payload length of each packet it reads before the FIN.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

ETH_HLEN = 14
ETH_ZLEN = 60
DPORT, SPORT = 8000, 1500
PAYLOAD_LEN = 100
NUM_PACKETS = 4
START_SEQ = START_ACK = 100
ASSUMED_MTU = 4096
IP_MAXPACKET = 65535
MIN_EXTHDR_SIZE = 8
TCPOLEN_TSTAMP_APPA = 12
TCPOLEN_TIMESTAMP = 10
TCPOLEN_WINDOW = 3
TCPOLEN_MAXSEG = 4
TCPOPT_NOP, TCPOPT_WINDOW, TCPOPT_TIMESTAMP = 1, 3, 8
IPOPT_TS = 68
SIZEOF_IP_TIMESTAMP = 40  # glibc struct ip_timestamp: 4 bytes + uint32_t data[9]
CAPACITY_PAYLOAD_LEN = 200
SMAC = bytes.fromhex("aa0000000002")
DMAC = bytes.fromhex("aa0000000001")
ADDR4_SRC, ADDR4_DST = "192.168.1.200", "192.168.1.100"
ADDR6_SRC, ADDR6_DST = "fdaa::2", "fdaa::1"


def checksum_nofold(data: bytes | bytearray, total: int = 0) -> int:
    """The selftest's checksum_nofold: little-endian u16 words, a trailing byte as a (signed) char."""
    for i in range(0, len(data) - 1, 2):
        total += data[i] | data[i + 1] << 8
    if len(data) & 1:
        last = data[-1]
        total += last - 256 if last >= 128 else last
    return total & 0xFFFFFFFF


def checksum_fold(data: bytes | bytearray, total: int = 0) -> int:
    """checksum_fold: the complement of the folded sum, as the u16 the sender stores (host order)."""
    total = checksum_nofold(data, total)
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def put16_host(buf: bytearray, offset: int, value: int) -> None:
    buf[offset : offset + 2] = struct.pack("<H", value)


@dataclass
class Case:
    name: str
    polls: list[list[bytes]]  # the frames, split where the sender sleeps
    expected: list[int]  # payload lengths the receiver must read before the FIN

    @property
    def batch(self) -> int:
        """--batch that ends a poll where the sender sleeps (every group but the last has this size)."""
        sizes = {len(poll) for poll in self.polls[:-1]}
        assert len(sizes) <= 1, self.name
        return sizes.pop() if sizes else 64


class Sender:
    """gro_sender for one run: ``-4`` or ``-6``; static buffers start zeroed, as in a fresh process."""

    def __init__(self, ipv6: bool, ipip: bool = False) -> None:
        self.ipv6 = ipv6
        # main(): --ipip puts an outer IPv4 header (protocol IPIP) before the IPv4 one
        self.tcp_offset = ETH_HLEN + (40 if ipv6 or ipip else 20)
        # total_hdr_len = MAX_HDR_LEN (74) for IPv6, tcp_offset + 20 for IPv4 and IPIP
        self.total_hdr_len = ETH_HLEN + 40 + 20 if ipv6 else self.tcp_offset + 20
        self.statics: dict[str, bytearray] = {}

    def static(self, name: str, size: int) -> bytearray:
        """A C static buffer: zeroed once, then reused as it is left."""
        if name not in self.statics:
            self.statics[name] = bytearray(size)
        return self.statics[name]

    # -- the packet builders ----------------------------------------------------------------------

    def tcp_checksum(self, buf: bytearray, tcp_at: int, payload_len: int) -> int:
        if self.ipv6:
            pseudo = (ipaddress.IPv6Address(ADDR6_SRC).packed + ipaddress.IPv6Address(ADDR6_DST).packed
                      + struct.pack("!HH", 6, 20 + payload_len))
        else:
            pseudo = (ipaddress.IPv4Address(ADDR4_SRC).packed + ipaddress.IPv4Address(ADDR4_DST).packed
                      + struct.pack("!HH", 6, 20 + payload_len))
        return checksum_fold(buf[tcp_at : tcp_at + 20 + payload_len], checksum_nofold(pseudo))

    def fill_networklayer(self, buf: bytearray, at: int, payload_len: int, protocol: int) -> None:
        if self.ipv6:
            buf[at : at + 40] = bytes(40)
            buf[at] = 0x60
            struct.pack_into("!H", buf, at + 4, 20 + payload_len)
            buf[at + 6] = protocol
            buf[at + 7] = 8
            buf[at + 8 : at + 24] = ipaddress.IPv6Address(ADDR6_SRC).packed
            buf[at + 24 : at + 40] = ipaddress.IPv6Address(ADDR6_DST).packed
        else:
            buf[at : at + 20] = bytes(20)
            buf[at] = 0x45
            buf[at + 8] = 8
            buf[at + 9] = protocol
            struct.pack_into("!H", buf, at + 2, 20 + payload_len + 20)
            struct.pack_into("!H", buf, at + 6, 0x4000)  # DF = 1, MF = 0
            buf[at + 12 : at + 16] = ipaddress.IPv4Address(ADDR4_SRC).packed
            buf[at + 16 : at + 20] = ipaddress.IPv4Address(ADDR4_DST).packed
            put16_host(buf, at + 10, checksum_fold(buf[at : at + 20]))

    def fill_transportlayer(self, buf: bytearray, at: int, seq_offset: int, ack_offset: int, payload_len: int,
                            fin: int) -> None:
        buf[at : at + 20] = bytes(20)
        struct.pack_into("!HHII", buf, at, SPORT, DPORT, START_SEQ + seq_offset, START_ACK + ack_offset)
        buf[at + 12] = 5 << 4  # doff
        buf[at + 13] = 0x10 | (0x01 if fin else 0)  # ACK, FIN
        struct.pack_into("!H", buf, at + 14, 65535)  # TCP_MAXWIN
        put16_host(buf, at + 16, self.tcp_checksum(buf, at, payload_len))

    def create_packet(self, buf: bytearray, seq_offset: int, ack_offset: int, payload_len: int, fin: int) -> None:
        buf[0 : self.total_hdr_len] = bytes(self.total_hdr_len)
        buf[self.total_hdr_len : self.total_hdr_len + payload_len] = b"a" * payload_len
        self.fill_transportlayer(buf, self.tcp_offset, seq_offset, ack_offset, payload_len, fin)
        inner_ip_off = self.tcp_offset - (40 if self.ipv6 else 20)
        self.fill_networklayer(buf, inner_ip_off, payload_len, 6)
        if inner_ip_off > ETH_HLEN:
            self.fill_networklayer(buf, ETH_HLEN, payload_len + 20, 4)  # IPPROTO_IPIP
        buf[0:6] = DMAC
        buf[6:12] = SMAC
        buf[12:14] = struct.pack("!H", 0x86DD if self.ipv6 else 0x0800)

    def set_tcp_check(self, buf: bytearray, payload_len: int) -> None:
        put16_host(buf, self.tcp_offset + 16, 0)
        put16_host(buf, self.tcp_offset + 16, self.tcp_checksum(buf, self.tcp_offset, payload_len))

    def packet(self, seq_offset: int, payload_len: int, ack_offset: int = 0, fin: int = 0) -> bytes:
        buf = bytearray(self.total_hdr_len + payload_len)
        self.create_packet(buf, seq_offset, ack_offset, payload_len, fin)
        return bytes(buf)

    def fin(self) -> bytes:
        return self.packet(PAYLOAD_LEN * 2, 0, fin=1)

    # -- the sub-tests --------------------------------------------------------------------------------

    def send_flags(self, psh: int, syn: int, rst: int, urg: int, cwr: int) -> list[bytes]:
        payload_len = PAYLOAD_LEN * (1 if (psh or cwr) else 0)
        pkt_size = self.total_hdr_len + payload_len
        flag = [NUM_PACKETS // 2, NUM_PACKETS // 2 - 1]
        flag_buf = [bytearray(self.total_hdr_len + PAYLOAD_LEN) for _ in range(2)]
        for i in range(2):
            if flag[i] > 0:
                self.create_packet(flag_buf[i], flag[i] * payload_len, 0, payload_len, 0)
                byte = flag_buf[i][self.tcp_offset + 13]
                byte = (byte & ~0x08) | (0x08 if psh else 0)
                byte = (byte & ~0x02) | (0x02 if syn else 0)
                byte = (byte & ~0x04) | (0x04 if rst else 0)
                byte = (byte & ~0x20) | (0x20 if urg else 0)
                byte = (byte | 0x80) if cwr else (byte & ~0x80)
                flag_buf[i][self.tcp_offset + 13] = byte
                self.set_tcp_check(flag_buf[i], payload_len)
        frames = []
        for i in range(NUM_PACKETS + 1):
            if i == flag[0]:
                frames.append(bytes(flag_buf[0][:pkt_size]))
            elif i == flag[1] and cwr:
                frames.append(bytes(flag_buf[1][:pkt_size]))
            else:
                frames.append(self.packet(i * PAYLOAD_LEN, PAYLOAD_LEN))
        return frames

    def recompute_packet(self, buf: bytearray, no_ext: bytes, extlen: int) -> None:
        hdr = self.total_hdr_len
        buf[0:hdr] = no_ext[0:hdr]
        buf[hdr + extlen : hdr + extlen + PAYLOAD_LEN] = no_ext[hdr : hdr + PAYLOAD_LEN]
        tcp = self.tcp_offset
        buf[tcp + 12] = ((buf[tcp + 12] >> 4) + extlen // 4) << 4 | (buf[tcp + 12] & 0x0F)
        self.set_tcp_check(buf, PAYLOAD_LEN + extlen)
        if self.ipv6:
            off = ETH_HLEN
            while off < tcp:
                struct.pack_into("!H", buf, off + 4, struct.unpack_from("!H", buf, off + 4)[0] + extlen)
                off += 40
        else:
            off = ETH_HLEN
            while off < tcp:
                struct.pack_into("!H", buf, off + 2, struct.unpack_from("!H", buf, off + 2)[0] + extlen)
                put16_host(buf, off + 10, 0)
                put16_host(buf, off + 10, checksum_fold(buf[off : off + 20]))
                off += 20

    @staticmethod
    def tcp_write_options(buf: bytearray, at: int, kind: int, ts: int) -> None:
        if kind == TCPOPT_NOP:
            buf[at] = TCPOPT_NOP
        elif kind == TCPOPT_WINDOW:
            buf[at : at + 3] = bytes([TCPOPT_WINDOW, TCPOLEN_WINDOW, 0])  # struct of 3 u8
        elif kind == TCPOPT_TIMESTAMP:
            # struct tcp_option_ts {u8 kind; u8 len; u32 tsval; u32 tsecr;}: 12 bytes, tsval at +4
            buf[at : at + 12] = bytes(12)
            buf[at] = TCPOPT_TIMESTAMP
            buf[at + 1] = TCPOLEN_TIMESTAMP
            buf[at + 4 : at + 8] = struct.pack("<I", ts)  # opt_ts->tsval = ts (host order)

    def add_standard_tcp_options(self, buf: bytearray, no_ext: bytes, ts: int, order: int) -> None:
        hdr = self.total_hdr_len
        if order == 0:
            self.tcp_write_options(buf, hdr, TCPOPT_NOP, 0)
            self.tcp_write_options(buf, hdr + 1, TCPOPT_NOP, 0)
            self.tcp_write_options(buf, hdr + 2, TCPOPT_TIMESTAMP, ts)
        elif order == 1:
            self.tcp_write_options(buf, hdr, TCPOPT_NOP, 0)
            self.tcp_write_options(buf, hdr + 1, TCPOPT_TIMESTAMP, ts)
            self.tcp_write_options(buf, hdr + 1 + TCPOLEN_TIMESTAMP, TCPOPT_NOP, 0)
        else:
            self.tcp_write_options(buf, hdr, TCPOPT_TIMESTAMP, ts)
            self.tcp_write_options(buf, hdr + TCPOLEN_TIMESTAMP + 1, TCPOPT_NOP, 0)
            self.tcp_write_options(buf, hdr + TCPOLEN_TIMESTAMP + 2, TCPOPT_NOP, 0)
        self.recompute_packet(buf, no_ext, TCPOLEN_TSTAMP_APPA)

    def send_changed_ts(self) -> list[bytes]:
        size = self.total_hdr_len + PAYLOAD_LEN
        buf = self.static("ts_buf", 74 + PAYLOAD_LEN)
        extpkt = self.static("ts_extpkt", 74 + PAYLOAD_LEN + TCPOLEN_TSTAMP_APPA)
        frames = []
        for seq, ts, order in ((0, 0, 0), (1, 0, 0), (2, 100, 0), (3, 100, 1), (4, 100, 2)):
            self.create_packet(buf, PAYLOAD_LEN * seq, 0, PAYLOAD_LEN, 0)
            self.add_standard_tcp_options(extpkt, bytes(buf), ts, order)
            frames.append(bytes(extpkt[: size + TCPOLEN_TSTAMP_APPA]))
        return frames

    def send_diff_opt(self) -> list[bytes]:
        size = self.total_hdr_len + PAYLOAD_LEN
        buf = self.static("opt_buf", 74 + PAYLOAD_LEN)
        extpkt1 = self.static("opt_ext1", 74 + PAYLOAD_LEN + TCPOLEN_TSTAMP_APPA)
        extpkt2 = self.static("opt_ext2", 74 + PAYLOAD_LEN + TCPOLEN_MAXSEG)
        frames = []
        for seq in (0, 1):
            self.create_packet(buf, PAYLOAD_LEN * seq, 0, PAYLOAD_LEN, 0)
            self.add_standard_tcp_options(extpkt1, bytes(buf), 0, 0)
            frames.append(bytes(extpkt1[: size + TCPOLEN_TSTAMP_APPA]))
        self.create_packet(buf, PAYLOAD_LEN * 2, 0, PAYLOAD_LEN, 0)
        max_hdr_len = 74  # the sender writes these options at MAX_HDR_LEN, whatever the family
        self.tcp_write_options(extpkt2, max_hdr_len, TCPOPT_NOP, 0)
        self.tcp_write_options(extpkt2, max_hdr_len + 1, TCPOPT_WINDOW, 0)
        self.recompute_packet(extpkt2, bytes(buf), TCPOLEN_WINDOW + 1)
        frames.append(bytes(extpkt2[: size + TCPOLEN_MAXSEG]))
        return frames

    def send_ip_options(self) -> list[bytes]:
        optlen = SIZEOF_IP_TIMESTAMP
        buf = bytearray(self.total_hdr_len + PAYLOAD_LEN)
        optpkt = self.static("ipopt", 74 + PAYLOAD_LEN + optlen)
        frames = [self.packet(0, PAYLOAD_LEN)]
        self.create_packet(buf, PAYLOAD_LEN, 0, PAYLOAD_LEN, 0)
        tcp = self.tcp_offset
        optpkt[tcp] = IPOPT_TS
        optpkt[tcp + 1] = optlen
        optpkt[tcp + 2] = 5
        optpkt[tcp + 3] &= 0xF0  # ipt_flg (the low nibble on little-endian) = IPOPT_TS_TSONLY = 0
        optpkt[0:tcp] = buf[0:tcp]
        optpkt[tcp + optlen : tcp + optlen + 20 + PAYLOAD_LEN] = buf[tcp : tcp + 20 + PAYLOAD_LEN]
        ip = ETH_HLEN
        optpkt[ip] = (optpkt[ip] & 0xF0) | (5 + optlen // 4)
        struct.pack_into("!H", optpkt, ip + 2, struct.unpack_from("!H", optpkt, ip + 2)[0] + optlen)
        put16_host(optpkt, ip + 10, 0)
        put16_host(optpkt, ip + 10, checksum_fold(optpkt[ip : ip + 20 + optlen]))
        frames.append(bytes(optpkt[: self.total_hdr_len + PAYLOAD_LEN + optlen]))
        frames.append(self.packet(PAYLOAD_LEN * 2, PAYLOAD_LEN))
        return frames

    def send_fragment4(self) -> list[bytes]:
        pkt_size = self.total_hdr_len + PAYLOAD_LEN
        buf = bytearray(IP_MAXPACKET)
        self.create_packet(buf, 0, 0, PAYLOAD_LEN, 0)
        first = bytes(buf[:pkt_size])
        hdr = self.total_hdr_len
        buf[hdr : hdr + PAYLOAD_LEN * 2] = b"a" * (PAYLOAD_LEN * 2)
        self.fill_transportlayer(buf, self.tcp_offset, PAYLOAD_LEN, 0, PAYLOAD_LEN * 2, 0)
        self.fill_networklayer(buf, ETH_HLEN, PAYLOAD_LEN, 6)
        buf[0:6], buf[6:12], buf[12:14] = DMAC, SMAC, b"\x08\x00"
        struct.pack_into("!H", buf, ETH_HLEN + 6, 0x6000)  # DF = 1, MF = 1
        put16_host(buf, ETH_HLEN + 10, 0)
        put16_host(buf, ETH_HLEN + 10, checksum_fold(buf[ETH_HLEN : ETH_HLEN + 20]))
        return [first, bytes(buf[:pkt_size])]

    def send_flush_id_case(self, case: str) -> list[bytes]:
        bufs = [bytearray(self.total_hdr_len + PAYLOAD_LEN) for _ in range(3)]
        for i, buf in enumerate(bufs):
            self.create_packet(buf, PAYLOAD_LEN * i, 0, PAYLOAD_LEN, 0)
        ids = {"df1_inc": (1, [8, 9]), "df1_fixed": (1, [8, 8]), "df0_inc": (0, [8, 9]), "df0_fixed": (0, [8, 8]),
               "df1_inc_fixed": (1, [8, 9, 9]), "df1_fixed_inc": (1, [8, 8, 9])}[case]
        df, id_values = ids
        frames = []
        for buf, ip_id in zip(bufs, id_values, strict=False):
            frag = struct.unpack_from("!H", buf, ETH_HLEN + 6)[0]
            struct.pack_into("!H", buf, ETH_HLEN + 6, (frag | 0x4000) if df else (frag & ~0x4000))
            struct.pack_into("!H", buf, ETH_HLEN + 4, ip_id)
            put16_host(buf, ETH_HLEN + 10, 0)
            put16_host(buf, ETH_HLEN + 10, checksum_fold(buf[ETH_HLEN : ETH_HLEN + 20]))
            frames.append(bytes(buf))
        return frames

    def send_changed_ip(self, what: str) -> list[bytes]:
        frames = [self.packet(0, PAYLOAD_LEN)]
        buf = bytearray(self.packet(PAYLOAD_LEN, PAYLOAD_LEN))
        ip = ETH_HLEN
        if what == "ttl":
            buf[ip + 8] = 7
        elif what == "tos":
            if self.ipv6:
                buf[ip] = (buf[ip] & 0xF0) | 0xF  # ip6h->priority = 0xf (the low nibble on little-endian)
            else:
                buf[ip + 1] = 1
        elif what == "ecn":
            buf[ip + 1] ^= 0x20 if self.ipv6 else 0x02
        if not self.ipv6:
            put16_host(buf, ip + 10, 0)
            put16_host(buf, ip + 10, checksum_fold(buf[ip : ip + 20]))
        frames.append(bytes(buf))
        return frames

    def add_ipv6_exthdr(self, buf: bytes, optpkt: bytearray, exthdr_type: int, ext_payload: bytes) -> None:
        tcp = self.tcp_offset
        optpkt[tcp] = 6  # exthdr->nexthdr = IPPROTO_TCP
        optpkt[tcp + 1] = 0  # hdrlen
        optpkt[tcp + 2 : tcp + MIN_EXTHDR_SIZE] = ext_payload[: MIN_EXTHDR_SIZE - 2]
        optpkt[0:tcp] = buf[0:tcp]
        optpkt[tcp + MIN_EXTHDR_SIZE : tcp + MIN_EXTHDR_SIZE + 20 + PAYLOAD_LEN] = buf[tcp : tcp + 20 + PAYLOAD_LEN]
        optpkt[ETH_HLEN + 6] = exthdr_type
        struct.pack_into("!H", optpkt, ETH_HLEN + 4, struct.unpack_from("!H", optpkt, ETH_HLEN + 4)[0] + MIN_EXTHDR_SIZE)

    def send_ipv6_exthdr(self, ext1: bytes, ext2: bytes) -> list[bytes]:
        optpkt = self.static("exthdr", 74 + PAYLOAD_LEN + MIN_EXTHDR_SIZE)
        frames = []
        for seq, ext in ((0, ext1), (1, ext2)):
            self.add_ipv6_exthdr(self.packet(PAYLOAD_LEN * seq, PAYLOAD_LEN), optpkt, 60, ext)  # IPPROTO_DSTOPTS
            frames.append(bytes(optpkt[: self.total_hdr_len + PAYLOAD_LEN + MIN_EXTHDR_SIZE]))
        return frames

    def send_fragment6(self) -> tuple[list[bytes], list[bytes]]:
        first = [self.packet(PAYLOAD_LEN * i, PAYLOAD_LEN) for i in range(2)]
        buf = bytearray(self.packet(PAYLOAD_LEN * 2, PAYLOAD_LEN))
        extlen = 8
        tcp = self.tcp_offset
        extpkt = bytearray(self.total_hdr_len + PAYLOAD_LEN + extlen)
        buf[ETH_HLEN + 6] = 44  # IPPROTO_FRAGMENT
        struct.pack_into("!H", buf, ETH_HLEN + 4, struct.unpack_from("!H", buf, ETH_HLEN + 4)[0] + extlen)
        extpkt[tcp] = 6  # frag->ip6f_nxt = IPPROTO_TCP, the rest zero
        extpkt[0:tcp] = buf[0:tcp]
        extpkt[tcp + extlen : tcp + extlen + 20 + PAYLOAD_LEN] = buf[tcp : tcp + 20 + PAYLOAD_LEN]
        second = [bytes(extpkt), self.packet(PAYLOAD_LEN * 3, PAYLOAD_LEN)]
        return first, second

    def max_payload(self) -> int:
        return IP_MAXPACKET - (self.total_hdr_len - ETH_HLEN)

    def calc_mss(self) -> int:
        return ASSUMED_MTU - (self.total_hdr_len - ETH_HLEN)

    def send_large(self, remainder: int) -> list[bytes]:
        mss = self.calc_mss()
        num_pkt = self.max_payload() // mss
        frames = [self.packet(i * mss, mss) for i in range(num_pkt)]
        frames.append(self.packet(num_pkt * mss, remainder))
        frames.append(self.packet((num_pkt + 1) * mss, remainder))
        return frames

    def send_capacity(self, num_flows: int = 4) -> list[bytes]:
        frames = []
        for psh, index in ((0, 0), (1, 1)):
            for flow in range(num_flows):
                buf = bytearray(self.packet(index * CAPACITY_PAYLOAD_LEN, CAPACITY_PAYLOAD_LEN))
                hdr = self.total_hdr_len
                buf[hdr : hdr + CAPACITY_PAYLOAD_LEN] = bytes([ord("a") + flow]) * CAPACITY_PAYLOAD_LEN
                struct.pack_into("!H", buf, self.tcp_offset, SPORT + flow)
                buf[self.tcp_offset + 13] = (buf[self.tcp_offset + 13] & ~0x08) | (0x08 if psh else 0)
                self.set_tcp_check(buf, CAPACITY_PAYLOAD_LEN)
                frames.append(bytes(buf))
        return frames


def build_case(name: str, ipv6: bool, ipip: bool = False) -> Case:
    """The frames and the receiver's expectation of one sub-test (gro_sender / gro_receiver)."""
    s = Sender(ipv6, ipip)
    P = PAYLOAD_LEN
    fin = s.fin()
    if name in ("data_same", "data_lrg_sml", "data_lrg_1byte", "data_sml_lrg"):
        first, second = {"data_same": (P, P), "data_lrg_sml": (P, P // 2), "data_lrg_1byte": (P, 1),
                         "data_sml_lrg": (P // 2, P)}[name]
        frames = [s.packet(0, first), s.packet(first, second)]
        expected = {"data_same": [2 * P], "data_lrg_sml": [P + P // 2], "data_lrg_1byte": [P + 1],
                    "data_sml_lrg": [P // 2, P]}[name]
        return Case(name, [frames + [fin]], expected)
    if name == "data_burst":
        return Case(name, [[s.packet(0, P), s.packet(P, P)], [s.packet(2 * P, P), s.packet(3 * P, P), fin]],
                    [2 * P, 2 * P])
    if name == "ack":
        ack = s.packet(0, 0)
        return Case(name, [[ack, ack, s.packet(0, 0, ack_offset=1), fin]], [0, 0, 0])
    if name.startswith("flags_"):
        flag = name[len("flags_"):]
        frames = s.send_flags(*(int(flag == f) for f in ("psh", "syn", "rst", "urg", "cwr")))
        expected = {"psh": [3 * P, 2 * P], "syn": [2 * P, 0, 2 * P], "rst": [2 * P, 0, 2 * P],
                    "urg": [2 * P, 0, 2 * P], "cwr": [P, 2 * P, 2 * P]}[flag]
        return Case(name, [frames + [fin]], expected)
    if name == "tcp_csum":
        bad = bytearray(s.packet(P, P))
        check = struct.unpack_from("<H", bad, s.tcp_offset + 16)[0]
        put16_host(bad, s.tcp_offset + 16, (check - 1) & 0xFFFF)  # tcph->check - 1 (host order)
        return Case(name, [[s.packet(0, P), bytes(bad)], [fin]], [P, P])
    if name == "tcp_seq":
        changed = bytearray(s.packet(P, P))
        struct.pack_into("!I", changed, s.tcp_offset + 4, struct.unpack_from("!I", changed, s.tcp_offset + 4)[0] + 1)
        s.set_tcp_check(changed, P)
        return Case(name, [[s.packet(0, P), bytes(changed)], [fin]], [P, P])
    if name == "tcp_ts":
        return Case(name, [s.send_changed_ts(), [fin]], [2 * P, P, P, P])
    if name == "tcp_opt":
        return Case(name, [s.send_diff_opt(), [fin]], [2 * P, P])
    if name in ("ip_ecn", "ip_tos", "ip_ttl"):
        return Case(name, [s.send_changed_ip(name[3:]) + [fin]], [P, P])
    if name == "ip_opt":
        return Case(name, [s.send_ip_options(), [fin]], [P, P, P])
    if name == "ip_frag4":
        return Case(name, [s.send_fragment4(), [fin]], [P, P])
    if name.startswith("ip_id_"):
        case = name[len("ip_id_"):]
        expected = [2 * P, P] if case in ("df1_inc_fixed", "df1_fixed_inc") else [2 * P]
        return Case(name, [s.send_flush_id_case(case), [fin]], expected)
    if name == "ip_frag6":
        first, second = s.send_fragment6()
        return Case(name, [first, second, [fin]], [2 * P, P, P])
    if name == "ip_v6ext_same":
        return Case(name, [s.send_ipv6_exthdr(bytes(6), bytes(6)), [fin]], [2 * P])
    if name == "ip_v6ext_diff":
        return Case(name, [s.send_ipv6_exthdr(bytes(6), b"\x11" * 6), [fin]], [P, P])
    if name in ("large_max", "large_rem"):
        remainder = s.max_payload() % s.calc_mss()
        if name == "large_max":
            return Case(name, [s.send_large(remainder) + [fin]], [s.max_payload(), remainder])
        return Case(name, [s.send_large(remainder + 1) + [fin]],
                    [s.max_payload() - remainder, remainder + 1, remainder + 1])
    if name == "single":
        return Case(name, [[s.packet(0, P), fin]], [P])
    if name == "capacity":
        return Case(name, [s.send_capacity(), [fin]], [2 * CAPACITY_PAYLOAD_LEN] * 4)
    raise KeyError(name)


def received_payloads(frames: list[bytes], ipv6: bool, ipip: bool = False) -> list[int]:
    """check_recv_pkts: the payload length of each packet read until the first FIN."""
    tcp_offset = ETH_HLEN + (40 if ipv6 or ipip else 20)
    total_hdr_len = ETH_HLEN + 40 + 20 if ipv6 else tcp_offset + 20
    lengths = []
    for frame in frames:
        ip_ext_len = 0
        version = frame[ETH_HLEN] >> 4
        if version == 4:
            ip_ext_len = ((frame[ETH_HLEN] & 0x0F) - 5) * 4
        elif version == 6 and frame[ETH_HLEN + 6] != 6:
            ip_ext_len = MIN_EXTHDR_SIZE
        tcp = tcp_offset + ip_ext_len
        if frame[tcp + 13] & 0x01:
            break
        tcp_ext_len = ((frame[tcp + 12] >> 4) - 5) * 4
        data_len = len(frame) - total_hdr_len - tcp_ext_len - ip_ext_len
        if len(frame) == ETH_ZLEN and version == 4:
            data_len = struct.unpack_from("!H", frame, ETH_HLEN + 2)[0] - 40
        lengths.append(data_len)
    return lengths


CASES_BOTH = ["data_same", "data_lrg_sml", "data_lrg_1byte", "data_sml_lrg", "data_burst", "ack", "flags_psh",
              "flags_syn", "flags_rst", "flags_urg", "flags_cwr", "tcp_csum", "tcp_seq", "tcp_ts", "tcp_opt",
              "ip_ecn", "ip_tos", "large_max", "large_rem", "single", "capacity"]
CASES_V4 = ["ip_ttl", "ip_opt", "ip_frag4", "ip_id_df1_inc", "ip_id_df1_fixed", "ip_id_df0_inc", "ip_id_df0_fixed",
            "ip_id_df1_inc_fixed", "ip_id_df1_fixed_inc"]
CASES_V6 = ["ip_frag6", "ip_v6ext_same", "ip_v6ext_diff"]
