"""Wire formats shared by the host and the guest: checksums, pcap files, frame decoding.

Standard library only, and deliberately independent of softgso: this module also runs inside the
VM (under the host's system python3, chrooted), and the oracle must not borrow any code from the
implementation it judges.
"""

from __future__ import annotations

import struct
from pathlib import Path

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ETH_P_MPLS_UC = 0x8847
ETH_P_MPLS_MC = 0x8848
VLAN_TPIDS = (ETH_P_8021Q, ETH_P_8021AD)
MPLS_ETHERTYPES = (ETH_P_MPLS_UC, ETH_P_MPLS_MC)

IPPROTO_HOPOPTS = 0
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_DSTOPTS = 60
# IPv6 extension headers whose length field counts 8-octet units after the first 8 octets
IPV6_EXTENSION_HEADERS = (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS)

IPV4_MF = 0x2000
IPV4_FRAG_OFFSET_MASK = 0x1FFF

PCAP_MAGIC_US = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
PCAP_TIMESTAMP_SECONDS = 1700000000  # the golden set's synthetic timestamp (usec = frame index)


def ones_complement_sum(data: bytes) -> int:
    """The folded 16-bit ones'-complement sum of ``data`` (odd length padded with a zero byte)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def internet_checksum(data: bytes) -> int:
    """RFC 1071 checksum: the complement of the ones'-complement sum."""
    return ~ones_complement_sum(data) & 0xFFFF


def pseudo_header(is_ipv6: bool, src: bytes, dst: bytes, proto: int, l4_len: int) -> bytes:
    """The TCP/UDP pseudo-header of RFC 793 / RFC 8200 section 8.1."""
    if is_ipv6:
        return src + dst + struct.pack("!I3xB", l4_len, proto)
    return src + dst + struct.pack("!xBH", proto, l4_len)


def write_pcap(path: str | Path, frames: list[bytes]) -> None:
    """Classic little-endian pcap, LINKTYPE_ETHERNET, timestamps (1700000000, index) like the golden set."""
    chunks = [struct.pack("<IHHiIII", PCAP_MAGIC_US, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET)]
    for index, frame in enumerate(frames):
        chunks.append(struct.pack("<IIII", PCAP_TIMESTAMP_SECONDS, index, len(frame), len(frame)))
        chunks.append(frame)
    Path(path).write_bytes(b"".join(chunks))


def read_pcap(path: str | Path) -> list[bytes]:
    """The frames of a classic pcap file (either byte order)."""
    data = Path(path).read_bytes()
    if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        order = "<"
    elif data[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    frames, offset = [], 24
    while offset + 16 <= len(data):
        caplen = struct.unpack_from(order + "IIII", data, offset)[2]
        frames.append(data[offset + 16 : offset + 16 + caplen])
        offset += 16 + caplen
    return frames


def l2_layout(frame: bytes) -> tuple[int, int]:
    """(ethertype after any in-band VLAN tags, offset of the L3 header)."""
    offset = 12
    ethertype = struct.unpack_from("!H", frame, offset)[0]
    while ethertype in VLAN_TPIDS:
        offset += 4
        ethertype = struct.unpack_from("!H", frame, offset)[0]
    return ethertype, offset + 2


def ipv6_upper_layer(frame: bytes, l3: int) -> tuple[int, int, int | None]:
    """Walk the IPv6 extension headers: (upper-layer protocol, its offset, offset of a fragment header)."""
    proto = frame[l3 + 6]
    offset = l3 + 40
    fragment_offset = None
    while True:
        if proto in IPV6_EXTENSION_HEADERS:
            next_proto, hdr_units = frame[offset], frame[offset + 1]
            offset, proto = offset + 8 + 8 * hdr_units, next_proto
        elif proto == IPPROTO_FRAGMENT:
            fragment_offset = offset
            proto, offset = frame[offset], offset + 8
        else:
            return proto, offset, fragment_offset


def l4_offsets(frame: bytes) -> dict[str, int]:
    """Offsets of a plain (unlabelled) super-packet: ethertype, l3, l4, l4_proto, hdr_end (after TCP/UDP)."""
    ethertype, l3 = l2_layout(frame)
    layout = {"ethertype": ethertype, "l3": l3}
    if ethertype == ETH_P_IP:
        layout["l4"], layout["l4_proto"] = l3 + (frame[l3] & 0x0F) * 4, frame[l3 + 9]
    elif ethertype == ETH_P_IPV6:
        layout["l4_proto"], layout["l4"], _ = ipv6_upper_layer(frame, l3)
    else:
        return layout
    if layout["l4_proto"] == IPPROTO_TCP:
        layout["hdr_end"] = layout["l4"] + (frame[layout["l4"] + 12] >> 4) * 4
    elif layout["l4_proto"] == IPPROTO_UDP:
        layout["hdr_end"] = layout["l4"] + 8
    return layout


def l4_seed_kind(frame: bytes) -> str:
    """What the input's L4 checksum field holds: 'pseudo' (the partial seed), 'full' (valid) or the value."""
    try:
        layout = l4_offsets(frame)
        l3, l4, proto = layout["l3"], layout["l4"], layout["l4_proto"]
        if layout["ethertype"] == ETH_P_IP:
            end = l3 + struct.unpack_from("!H", frame, l3 + 2)[0]
            pseudo = pseudo_header(False, frame[l3 + 12 : l3 + 16], frame[l3 + 16 : l3 + 20], proto, end - l4)
        else:
            end = l3 + 40 + struct.unpack_from("!H", frame, l3 + 4)[0]
            pseudo = pseudo_header(True, frame[l3 + 8 : l3 + 24], frame[l3 + 24 : l3 + 40], proto, end - l4)
        check_at = l4 + (16 if proto == IPPROTO_TCP else 6)
        value = struct.unpack_from("!H", frame, check_at)[0]
        if value == ones_complement_sum(pseudo):
            return "pseudo"
        if ones_complement_sum(pseudo + frame[l4:end]) == 0xFFFF:
            return "full"
        return str(value)
    except (KeyError, IndexError, struct.error):
        return "unknown"


def decode_frame(frame: bytes) -> dict[str, object]:
    """The golden set's per-frame decode: L2 tags, MPLS stack, IP and TCP/UDP fields, checksum validity."""
    out: dict[str, object] = {"len": len(frame), "eth_dst": frame[0:6].hex(), "eth_src": frame[6:12].hex()}
    if len(frame) < 14:
        return out
    offset = 12
    ethertype = struct.unpack_from("!H", frame, offset)[0]
    tags = []
    while ethertype in VLAN_TPIDS and offset + 6 <= len(frame):
        tags.append(hex(struct.unpack_from("!H", frame, offset + 2)[0]))
        offset += 4
        ethertype = struct.unpack_from("!H", frame, offset)[0]
    if tags:
        out["vlan_tci"] = tags
    out["ethertype"] = hex(ethertype)
    offset += 2
    try:
        if ethertype in MPLS_ETHERTYPES:
            stack = []
            while True:
                lse = struct.unpack_from("!I", frame, offset)[0]
                offset += 4
                stack.append({"label": lse >> 12, "tc": (lse >> 9) & 7, "s": (lse >> 8) & 1, "ttl": lse & 0xFF})
                if lse & 0x100:
                    break
            out["mpls"] = stack
            version = frame[offset] >> 4
            ethertype = ETH_P_IP if version == 4 else ETH_P_IPV6 if version == 6 else 0
        _decode_l3(frame, offset, ethertype, out)
    except (IndexError, struct.error):
        out["truncated"] = True
    return out


def _decode_l3(frame: bytes, l3: int, ethertype: int, out: dict[str, object]) -> None:
    """Add the IPv4/IPv6 and TCP/UDP fields of the packet at ``l3`` to ``out``."""
    fragment = False
    if ethertype == ETH_P_IP:
        ihl = (frame[l3] & 0x0F) * 4
        header = frame[l3 : l3 + ihl]
        tot_len, ip_id, frag_off, ttl, proto = struct.unpack_from("!HHHBB", header, 2)
        out.update(ip_tot_len=tot_len, ip_id=hex(ip_id), ip_frag=hex(frag_off), ip_ttl=ttl,
                   ip_csum_ok=ones_complement_sum(header) == 0xFFFF)
        fragment = bool(frag_off & (IPV4_MF | IPV4_FRAG_OFFSET_MASK))
        if fragment:
            out["ip_fragment"] = True
        l4, end = l3 + ihl, l3 + tot_len
        pseudo_src, pseudo_dst, is_ipv6 = header[12:16], header[16:20], False
    elif ethertype == ETH_P_IPV6:
        payload_len = struct.unpack_from("!H", frame, l3 + 4)[0]
        out.update(ip6_plen=payload_len, ip6_nexthdr=frame[l3 + 6])
        proto, l4, fragment_at = ipv6_upper_layer(frame, l3)
        if fragment_at is not None:
            out["frag6"] = frame[fragment_at : fragment_at + 8].hex()
            fragment = True
        end = l3 + 40 + payload_len
        pseudo_src, pseudo_dst, is_ipv6 = frame[l3 + 8 : l3 + 24], frame[l3 + 24 : l3 + 40], True
    else:
        return
    if fragment:
        return
    segment = frame[l4:end]
    pseudo = pseudo_header(is_ipv6, pseudo_src, pseudo_dst, proto, len(segment))
    if proto == IPPROTO_TCP:
        seq, _ack, data_offset, flags = struct.unpack_from("!IIBB", segment, 4)
        header_len = (data_offset >> 4) * 4
        out.update(tcp_seq=seq, tcp_flags=hex(flags), tcp_hlen=header_len, tcp_paylen=len(segment) - header_len,
                   l4_csum=hex(struct.unpack_from("!H", segment, 16)[0]),
                   l4_csum_ok=ones_complement_sum(pseudo + segment) == 0xFFFF)
    elif proto == IPPROTO_UDP:
        out.update(udp_len=struct.unpack_from("!H", segment, 4)[0],
                   l4_csum=hex(struct.unpack_from("!H", segment, 6)[0]),
                   l4_csum_ok=ones_complement_sum(pseudo + segment) == 0xFFFF)
