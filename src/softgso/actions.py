"""MPLS and VLAN actions with the kernel's skb contract (skb_mpls_push & co. in net/core/skbuff.c,
as tc act_mpls / act_vlan and Open vSwitch call them).

``push_mpls`` records ``inner_protocol`` and ``inner_network_header`` on the first push only, puts
the label after the link-layer header (``mac_len`` bytes), rewrites the Ethernet type and sets
``protocol``; later pushes only grow the stack. ``push_vlan`` keeps the outermost tag out of band,
as skb_vlan_push does, moving a tag already there into the bytes first.

The ``--action`` grammar (:func:`parse_action`: softgso's, tc's and Open vSwitch's spellings, label
lists top first) is a separate section of pure functions of text, kept apart from the packet code.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .checksum import csum_fold, ipv4_header_checksum, ones_sum, pseudo_header_sum
from .constants import (
    CSUM_MANGLED_0,
    ETH_HLEN,
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_MPLS_MC,
    ETH_P_MPLS_UC,
    ETH_P_TEB,
    IPPROTO_UDP,
    IPV4_MIN_HLEN,
    IPV6_HLEN,
    MPLS_HLEN,
    MPLS_LABEL_IMPLNULL,
    MPLS_LABEL_MAX,
    MPLS_LS_LABEL_SHIFT,
    MPLS_LS_S_SHIFT,
    MPLS_LS_TC_SHIFT,
    VLAN_HLEN,
    eth_p_mpls,
    eth_type_vlan,
)
from .errors import ActionError, SoftGSOError, UsageError
from .features import GsoType, IpSummed
from .packet import ENCAP_TYPE_ETHER, Packet
from .virtio import kernel_of


@dataclass(frozen=True)
class LabelStackEntry:
    """One MPLS label stack entry (RFC 3032)."""

    label: int
    tc: int = 0
    bos: bool = True
    ttl: int = 64

    def encode(self) -> int:
        """The 32-bit word."""
        return (self.label << MPLS_LS_LABEL_SHIFT) | (self.tc << MPLS_LS_TC_SHIFT) | (int(self.bos) << MPLS_LS_S_SHIFT) | self.ttl

    @classmethod
    def decode(cls, word: int) -> LabelStackEntry:
        """From the 32-bit word."""
        return cls(word >> MPLS_LS_LABEL_SHIFT, (word >> MPLS_LS_TC_SHIFT) & 7, bool((word >> MPLS_LS_S_SHIFT) & 1), word & 0xFF)


def check_label_values(label: int, tc: int, ttl: int) -> None:
    """Refuse what tc refuses when a label is pushed (label 3, out-of-range fields)."""
    if label == MPLS_LABEL_IMPLNULL:
        raise UsageError("label 3 (implicit null) is signalled, never pushed: tc refuses it")
    if not 0 <= label <= MPLS_LABEL_MAX:
        raise UsageError(f"MPLS label {label} out of range 0..{MPLS_LABEL_MAX}")
    if not 0 <= tc <= 7:
        raise UsageError(f"MPLS TC {tc} out of range 0..7")
    if not 0 <= ttl <= 255:
        raise UsageError(f"MPLS TTL {ttl} out of range 0..255")


def skb_mpls_push(skb: Packet, lse: int, mpls_proto: int, mac_len: int, ethernet: bool) -> None:
    """Insert one label stack entry after ``mac_len`` bytes (skb_mpls_push)."""
    if not eth_p_mpls(mpls_proto):
        raise ActionError(f"ethertype {mpls_proto:#06x} is not MPLS", where="skb_mpls_push")
    if skb.encapsulation:
        raise ActionError("packet is tunnel-encapsulated: MPLS and tunnel GSO cannot mix", where="skb_mpls_push")
    network = skb.mac_header + mac_len
    if network > len(skb.data):
        # the kernel's skb always holds its MAC header here (eth_type_trans pulled it); ours may not
        raise ActionError(f"the {len(skb.data)}-byte packet ends inside its {mac_len}-byte link-layer header",
                          where="skb_mpls_push")
    if not skb.inner_protocol:
        skb.inner_network_header = network
        skb.inner_protocol = skb.protocol
    skb.insert(network, struct.pack("!I", lse))
    skb.network_header = network
    skb.reset_mac_len()
    if ethernet and mac_len >= ETH_HLEN:
        struct.pack_into("!H", skb.data, skb.mac_header + 12, mpls_proto)
    skb.protocol = mpls_proto


def push_mpls(skb: Packet, label: int, tc: int = 0, ttl: int = 64, ethertype: int = ETH_P_MPLS_UC) -> None:
    """tc act_mpls push / OVS push_mpls: S bit set only on the first label of a stack."""
    check_label_values(label, tc, ttl)
    bos = not eth_p_mpls(skb.protocol)
    lse = LabelStackEntry(label, tc, bos, ttl).encode()
    mac_len = (skb.network_header or 0) - skb.mac_header
    skb_mpls_push(skb, lse, ethertype, mac_len, ethernet=True)


def pop_mpls(skb: Packet, next_proto: int) -> None:
    """Remove the top label (skb_mpls_pop); a packet that is not MPLS is left alone."""
    if not eth_p_mpls(skb.protocol):
        return
    mac_len = (skb.network_header or 0) - skb.mac_header
    top = skb.mac_header + mac_len
    if top + MPLS_HLEN > len(skb.data):
        raise ActionError("packet ends inside the top label", where="skb_mpls_pop")
    skb.remove(top, MPLS_HLEN)
    skb.network_header = top
    skb.reset_mac_len()
    if mac_len >= ETH_HLEN:
        type_at = top - 2
        if eth_p_mpls(int.from_bytes(skb.data[type_at : type_at + 2], "big")):
            struct.pack_into("!H", skb.data, type_at, next_proto)
    skb.protocol = next_proto


def _top_lse_offset(skb: Packet, where: str) -> int:
    if not eth_p_mpls(skb.protocol):
        raise ActionError(f"protocol {skb.protocol:#06x} is not MPLS", where=where)
    top = skb.network_header or 0
    if top + MPLS_HLEN > len(skb.data):
        raise ActionError("packet ends inside the top label", where=where)
    return top


def set_mpls(
    skb: Packet, *, label: int | None = None, tc: int | None = None, ttl: int | None = None, bos: bool | None = None
) -> None:
    """Rewrite fields of the top label (OVS set_mpls through skb_mpls_update_lse)."""
    top = _top_lse_offset(skb, "skb_mpls_update_lse")
    old = LabelStackEntry.decode(int.from_bytes(skb.data[top : top + 4], "big"))
    new = LabelStackEntry(
        old.label if label is None else label,
        old.tc if tc is None else tc,
        old.bos if bos is None else bos,
        old.ttl if ttl is None else ttl,
    )
    check_label_values(new.label, new.tc, new.ttl)
    struct.pack_into("!I", skb.data, top, new.encode())


def dec_ttl(skb: Packet) -> None:
    """Decrement the top label's TTL; refuse when it would reach 0 (skb_mpls_dec_ttl)."""
    top = _top_lse_offset(skb, "skb_mpls_dec_ttl")
    word = int.from_bytes(skb.data[top : top + 4], "big")
    ttl = word & 0xFF
    if ttl <= 1:
        raise ActionError(f"MPLS TTL {ttl} would reach 0", where="skb_mpls_dec_ttl")
    struct.pack_into("!I", skb.data, top, (word & ~0xFF) | (ttl - 1))


def push_vlan(skb: Packet, vid: int, pcp: int = 0, vlan_proto: int = ETH_P_8021Q) -> None:
    """tc vlan push (skb_vlan_push): a tag already out of band moves into the bytes first."""
    if not 0 <= vid <= 4095:
        raise UsageError(f"VLAN id {vid} out of range 0..4095")
    if not 0 <= pcp <= 7:
        raise UsageError(f"VLAN priority {pcp} out of range 0..7")
    if not eth_type_vlan(vlan_proto):
        raise UsageError(f"VLAN protocol {vlan_proto:#06x} is neither 802.1Q nor 802.1ad")
    if skb.vlan_tag_present:
        skb.vlan_push_inside()
        if kernel_of(skb) == "6.1":
            skb.mac_len += VLAN_HLEN
        else:
            # since v6.12 ("tc: adjust network header after 2nd vlan push"): the network header moves
            # back onto the tag just put in the bytes, mac_len is left alone; an MPLS GSO skb then
            # restores its segments mac_len bytes before the top label, VLAN_HLEN bytes too late
            # (docs/kernel-notes.md; vectors 6.12/cases/ipv4_tcp_qinq_mpls*)
            assert skb.network_header is not None
            skb.network_header -= VLAN_HLEN
    skb.vlan_tci = (pcp << 13) | vid
    skb.vlan_proto = vlan_proto


def pop_vlan(skb: Packet) -> None:
    """tc vlan pop (skb_vlan_pop): drop the out-of-band tag, pulling an in-band one out of band."""
    if skb.vlan_tag_present:
        skb.vlan_tci = None
        skb.vlan_proto = 0
    elif eth_type_vlan(skb.protocol) and len(skb.data) >= 18:
        _pop_in_band_tag(skb)
        return
    else:
        return
    if eth_type_vlan(skb.protocol) and len(skb.data) >= 18:
        # the next in-band tag becomes the accelerated one, as skb_vlan_pop does
        tci = int.from_bytes(skb.data[14:16], "big")
        proto = skb.protocol
        _pop_in_band_tag(skb)
        skb.vlan_tci = tci
        skb.vlan_proto = proto


def _pop_in_band_tag(skb: Packet) -> None:
    """Remove the first in-band tag (__skb_vlan_pop); protocol becomes the encapsulated type."""
    inner = int.from_bytes(skb.data[16:18], "big")
    skb.remove(12, VLAN_HLEN)
    if skb.network_header is not None and skb.network_header < ETH_HLEN:
        skb.network_header = ETH_HLEN
    if skb.mac_len >= ETH_HLEN + VLAN_HLEN:
        skb.mac_len -= VLAN_HLEN
    skb.protocol = inner


# --- tunnels: push and pop VXLAN, Geneve and GRE as the kernel's tunnel drivers do ---------------

VXLAN_PORT = 4789
GENEVE_PORT = 6081
IPPROTO_GRE = 47
VXLAN_FLAG_VNI = 0x08  # VXLAN_HF_VNI: the I flag, "the VNI is valid"
GRE_FLAG_CSUM, GRE_FLAG_KEY = 0x8000, 0x2000
IPV4_FLAG_DF = 0x4000
# the kernel picks the outer UDP source port from the flow hash (udp_flow_src_port); a capture has
# no hash, so one fixed port from the ephemeral range stands for it unless the user gives one
TUNNEL_SOURCE_PORT = 49152
# what each push-* kind builds: its parse_tunnel kinds (which a pop-* of the same name removes)
TUNNEL_LAYOUT_KINDS = {"vxlan": ("VXLAN",), "geneve": ("Geneve",),
                       "gre": ("GRE", "ip6gre", "gretap", "ip6gretap", "MPLS-in-GRE")}
TUNNEL_ACTION_KINDS = frozenset({"push-vxlan", "push-geneve", "push-gre", "pop-vxlan", "pop-geneve", "pop-gre"})


@dataclass(frozen=True)
class TunnelPush:
    """One encapsulation as a tunnel device builds it: VXLAN (vxlan_xmit_one), Geneve (geneve_xmit_skb),
    GRE carrying the L3 packet (ipgre_xmit) or the whole Ethernet frame (gretap, gre_tap_xmit)."""

    kind: str  # "vxlan", "geneve" or "gre"
    src: bytes  # outer source address, 4 or 16 bytes
    dst: bytes
    vni: int | None = None  # VXLAN/Geneve VNI; the GRE key (None: no K bit)
    csum: bool | None = None  # None: the driver's default (UDP over IPv6: on, as udp6zerocsumtx unset; else off)
    sport: int = TUNNEL_SOURCE_PORT
    dport: int | None = None  # None: 4789 (VXLAN), 6081 (Geneve)
    src_mac: bytes | None = None  # None: the frame's own addresses become the outer ones
    dst_mac: bytes | None = None
    ttl: int = 64
    tos: int = 0
    df: bool = False  # VXLAN and Geneve "df unset", the drivers' default
    options: bytes = b""  # Geneve options (TLVs, a multiple of 4 bytes)
    ethernet: bool = True  # GRE: gretap (the Ethernet frame inside) or ipgre (the L3 packet inside)

    @property
    def udp(self) -> bool:
        """A UDP tunnel (VXLAN, Geneve), not GRE."""
        return self.kind != "gre"

    @property
    def ipv6(self) -> bool:
        """The outer header is IPv6."""
        return len(self.src) == 16

    @property
    def checksum(self) -> bool:
        """The outer UDP checksum or the GRE C bit is on."""
        return self.csum if self.csum is not None else (self.udp and self.ipv6)

    @property
    def port(self) -> int:
        """The outer UDP destination port."""
        return self.dport if self.dport is not None else GENEVE_PORT if self.kind == "geneve" else VXLAN_PORT

    @property
    def carries_ethernet(self) -> bool:
        """The whole Ethernet frame goes inside (inner_protocol ETH_P_TEB)."""
        return self.udp or self.ethernet

    def __call__(self, skb: Packet) -> None:
        push_tunnel(skb, self)


@dataclass(frozen=True)
class TunnelPop:
    """Take off one tunnel of a kind (vxlan_rcv, geneve_rx, gre_rcv): the inner frame, or for GRE
    carrying an L3 packet, the frame's L2 header with the GRE protocol as its ethertype."""

    kind: str  # "vxlan", "geneve" or "gre"
    dport: int | None = None  # a UDP tunnel on another port than the IANA one

    def __call__(self, skb: Packet) -> None:
        pop_tunnel(skb, self)


def _iptunnel_handle_offloads(skb: Packet, bits: GsoType) -> None:
    """iptunnel_handle_offloads: the inner headers recorded on the first encapsulation, the tunnel's
    GSO bits on a GSO packet; a packet neither GSO nor CHECKSUM_PARTIAL carries no encapsulation."""
    if not skb.encapsulation:
        skb.reset_inner_headers()
        skb.encapsulation = True
    if skb.is_gso:
        skb.gso_type |= bits
    elif skb.ip_summed != IpSummed.PARTIAL:
        skb.ip_summed = IpSummed.NONE
        skb.encapsulation = False


def _lco_sum(skb: Packet, l4: int) -> int:
    """lco_csum: the outer L4 bytes up to the inner checksum start, plus the complement of the inner seed
    (local checksum offload: the sum the packet will have once the device fills the inner checksum)."""
    at = skb.csum_start + skb.csum_offset
    seed = int.from_bytes(skb.data[at : at + 2], "big")
    return ones_sum(bytes(skb.data[l4 : skb.csum_start]), ~seed & 0xFFFF)


def _outer_sum(skb: Packet, l4: int) -> int:
    """The sum a non-GSO packet's outer checksum covers: all of it, or (CHECKSUM_PARTIAL inside) lco_csum."""
    if skb.ip_summed == IpSummed.PARTIAL and skb.csum_start > l4:
        return _lco_sum(skb, l4)
    return ones_sum(bytes(skb.data[l4:]))


def push_tunnel(skb: Packet, tunnel: TunnelPush) -> None:
    """Encapsulate ``skb`` as the tunnel driver does: iptunnel_handle_offloads, the tunnel header,
    udp_tunnel_xmit_skb + udp_set_csum (VXLAN, Geneve) or gre_build_header (GRE), the outer IP header
    (iptunnel_xmit, ip6tunnel_xmit) with its checksum as ip_local_out writes it."""
    if tunnel.carries_ethernet:
        skb.vlan_push_inside()  # vlan_hwaccel_push_inside: the inner frame carries its tag
        at = skb.mac_header
        inner_protocol = ETH_P_TEB
    else:
        if eth_type_vlan(skb.protocol):
            # no errno: the kernel never gets there (a route hands an ipgre device IP or MPLS packets only)
            raise SoftGSOError("GRE carrying the L3 packet of a frame with an in-band VLAN tag: push it with "
                               "gretap (the Ethernet frame inside)", where="ipgre_xmit")
        if skb.protocol not in (ETH_P_IP, ETH_P_IPV6) and not eth_p_mpls(skb.protocol):
            raise SoftGSOError(f"GRE carrying the L3 packet takes what a route sends (IPv4, IPv6, MPLS), not "
                               f"ethertype {skb.protocol:#06x}: gretap carries the Ethernet frame", where="ipgre_xmit")
        at = skb.network_header if skb.network_header is not None else ETH_HLEN
        inner_protocol = skb.protocol
    if at > len(skb.data):
        raise ActionError(f"the {len(skb.data)}-byte packet ends inside its link-layer header", where="ip_tunnel_xmit")
    if tunnel.udp:
        bits = GsoType.UDP_TUNNEL_CSUM if tunnel.checksum else GsoType.UDP_TUNNEL
    else:
        bits = GsoType.GRE_CSUM if tunnel.checksum else GsoType.GRE
    if not skb.encapsulation:
        # the inner headers are the packet as it is now (mac_header: the inner MAC, or for ipgre the L3)
        mac_header = skb.mac_header
        skb.mac_header = at
        _iptunnel_handle_offloads(skb, bits)
        skb.mac_header = mac_header
    else:
        _iptunnel_handle_offloads(skb, bits)
    skb.inner_protocol = inner_protocol  # skb_set_inner_protocol
    skb.inner_protocol_type = ENCAP_TYPE_ETHER

    tunnel_header = _tunnel_header(tunnel, inner_protocol)
    outer_ip_len = IPV6_HLEN if tunnel.ipv6 else IPV4_MIN_HLEN
    l4_len = len(tunnel_header) + len(skb.data) - at
    outer_l2 = b""
    if tunnel.carries_ethernet:
        dst_mac = tunnel.dst_mac or bytes(skb.data[0:6])
        src_mac = tunnel.src_mac or bytes(skb.data[6:12])
        outer_l2 = dst_mac + src_mac + (ETH_P_IPV6 if tunnel.ipv6 else ETH_P_IP).to_bytes(2, "big")
    headers = outer_l2 + _outer_ip_header(tunnel, l4_len) + tunnel_header
    inner_start = at + len(headers)
    moved = {name: getattr(skb, name) for name in ("inner_mac_header", "inner_network_header", "inner_transport_header")}
    skb.insert(at, headers)
    if skb.encapsulation and not moved["inner_mac_header"]:
        # _shift_offsets never moves an inner offset of 0 (unset): the inner MAC header was at 0
        skb.inner_mac_header = inner_start
    network = at + len(outer_l2)
    l4 = network + outer_ip_len
    if not tunnel.carries_ethernet and skb.mac_len >= ETH_HLEN:
        struct.pack_into("!H", skb.data, at - 2, ETH_P_IPV6 if tunnel.ipv6 else ETH_P_IP)
        if tunnel.dst_mac:
            skb.data[skb.mac_header : skb.mac_header + 6] = tunnel.dst_mac
        if tunnel.src_mac:
            skb.data[skb.mac_header + 6 : skb.mac_header + 12] = tunnel.src_mac
    skb.network_header = network
    skb.transport_header = l4
    skb.protocol = ETH_P_IPV6 if tunnel.ipv6 else ETH_P_IP
    skb.reset_mac_len()
    _outer_checksums(skb, tunnel, network, l4)


def _tunnel_header(tunnel: TunnelPush, inner_protocol: int) -> bytes:
    """The UDP header and the VXLAN or Geneve header (lengths and checksum filled later), or the GRE header."""
    vni = tunnel.vni or 0
    if tunnel.kind == "vxlan":
        header = bytes((VXLAN_FLAG_VNI, 0, 0, 0)) + struct.pack("!I", vni << 8)
    elif tunnel.kind == "geneve":
        # version 0, options length in 4-byte words, O and C clear, the inner protocol, VNI
        header = bytes((len(tunnel.options) // 4, 0)) + struct.pack("!HI", ETH_P_TEB, vni << 8) + tunnel.options
    else:
        flags = (GRE_FLAG_CSUM if tunnel.checksum else 0) | (GRE_FLAG_KEY if tunnel.vni is not None else 0)
        header = struct.pack("!HH", flags, inner_protocol)
        if tunnel.checksum:
            header += bytes(4)  # checksum and reserved1, written once the header is in place
        if tunnel.vni is not None:
            header += struct.pack("!I", tunnel.vni)
        return header
    return struct.pack("!HHHH", tunnel.sport, tunnel.port, 0, 0) + header


def _outer_ip_header(tunnel: TunnelPush, l4_len: int) -> bytes:
    """The outer IPv4 or IPv6 header (iptunnel_xmit / ip6tunnel_xmit); a length over 65535 is 0, as BIG TCP."""
    proto = IPPROTO_UDP if tunnel.udp else IPPROTO_GRE
    if tunnel.ipv6:
        payload = l4_len if l4_len <= 0xFFFF else 0
        return struct.pack("!IHBB", (6 << 28) | (tunnel.tos << 20), payload, proto, tunnel.ttl) + tunnel.src + tunnel.dst
    total = IPV4_MIN_HLEN + l4_len
    header = struct.pack("!BBHHHBBH", 0x45, tunnel.tos, total if total <= 0xFFFF else 0, 0,
                         IPV4_FLAG_DF if tunnel.df else 0, tunnel.ttl, proto, 0) + tunnel.src + tunnel.dst
    return header[:10] + struct.pack("!H", ipv4_header_checksum(header)) + header[12:]


def _outer_checksums(skb: Packet, tunnel: TunnelPush, network: int, l4: int) -> None:
    """The outer UDP length and checksum (udp_tunnel_xmit_skb, udp_set_csum) or the GRE checksum
    (gre_build_header: left to GSO on a GSO packet)."""
    data = skb.data
    length = len(data) - l4
    if not tunnel.udp:
        if tunnel.checksum and not skb.is_gso:
            struct.pack_into("!H", data, l4 + 4, csum_fold(_outer_sum(skb, l4)))
        return
    struct.pack_into("!H", data, l4 + 4, length if length <= 0xFFFF else 0)
    if not tunnel.checksum:
        return  # nocheck: 0
    pseudo = pseudo_header_sum(tunnel.src, tunnel.dst, IPPROTO_UDP, length)
    if skb.is_gso:
        check = pseudo  # the seed __skb_udp_tunnel_segment derives every segment's checksum from
    else:
        check = csum_fold(ones_sum(b"", pseudo + _outer_sum(skb, l4))) or CSUM_MANGLED_0
    struct.pack_into("!H", data, l4 + 6, check)


def pop_tunnel(skb: Packet, pop: TunnelPop) -> None:
    """Remove one tunnel of ``pop.kind`` (found by softgso.offload.tunnels.parse_tunnel, whatever it
    carries); a packet that carries no such tunnel is left alone."""
    from .offload.tunnels import TunnelNotSegmented, parse_tunnel

    names = {"vxlan": "VXLAN", "geneve": "Geneve"}
    ports = {pop.dport: names[pop.kind]} if pop.dport is not None and pop.kind in names else None
    try:
        layout = parse_tunnel(bytes(skb.data), ports, any_inner=True)
    except TunnelNotSegmented:
        return
    if layout is None or layout.kind not in TUNNEL_LAYOUT_KINDS[pop.kind]:
        return
    if pop.dport is not None and pop.kind in names:
        if int.from_bytes(skb.data[layout.outer_l4 + 2 : layout.outer_l4 + 4], "big") != pop.dport:
            return
    ethernet = layout.kind in ("VXLAN", "Geneve", "gretap", "ip6gretap")
    if ethernet:
        start, length = skb.mac_header, layout.inner_mac - skb.mac_header
    else:
        start, length = layout.outer_network, layout.inner_mac - layout.outer_network
        protocol = int.from_bytes(skb.data[layout.outer_l4 + 2 : layout.outer_l4 + 4], "big")
    skb.remove(start, length)
    if skb.ip_summed == IpSummed.PARTIAL and skb.csum_start < start:
        skb.ip_summed = IpSummed.NONE
    skb.encapsulation = False
    skb.inner_mac_header = skb.inner_network_header = skb.inner_transport_header = 0
    skb.inner_protocol = 0
    skb.gso_type &= ~(GsoType.UDP_TUNNEL | GsoType.UDP_TUNNEL_CSUM | GsoType.GRE | GsoType.GRE_CSUM)
    skb.transport_header = layout.inner_transport - length if layout.inner_l4_proto >= 0 else None
    if ethernet:
        # the underlay's tag is gone with the outer frame; the inner frame is what the tunnel device receives
        skb.vlan_tci, skb.vlan_proto = None, 0
        skb.protocol = int.from_bytes(skb.data[skb.mac_header + 12 : skb.mac_header + 14], "big")
        skb.network_header = skb.mac_header + ETH_HLEN
    else:
        if layout.outer_network - skb.mac_header >= ETH_HLEN:
            struct.pack_into("!H", skb.data, layout.outer_network - 2, protocol)
        skb.protocol = protocol
        skb.network_header = layout.outer_network
    skb.reset_mac_len()


# --- the --action pipeline -----------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One parsed ``--action`` step; calling it applies it to a packet."""

    text: str
    kind: str
    args: tuple[int | None, ...]
    tunnel: TunnelPush | TunnelPop | None = None  # push-vxlan/-geneve/-gre and their pops

    def __call__(self, skb: Packet) -> None:
        if self.kind == "push-mpls":
            # (label, tc, ttl) per label, top of the stack first, then the ethertype: the bottom label
            # goes first, since each push lands on top (skb_mpls_push)
            *entries, ethertype = self.args
            for at in range(len(entries) - 3, -1, -3):
                label, tc, ttl = entries[at : at + 3]
                push_mpls(skb, label or 0, tc or 0, 64 if ttl is None else ttl, ethertype or ETH_P_MPLS_UC)
        elif self.kind == "pop-mpls":
            pop_mpls(skb, self.args[0] or 0)
        elif self.kind == "set-mpls":
            label, tc, ttl = self.args
            set_mpls(skb, label=label, tc=tc, ttl=ttl)
        elif self.kind == "dec-ttl":
            dec_ttl(skb)
        elif self.kind == "push-vlan":
            vid, pcp, proto = self.args
            push_vlan(skb, vid or 0, pcp or 0, proto or ETH_P_8021Q)
        elif self.kind == "pop-vlan":
            pop_vlan(skb)
        elif self.tunnel is not None:
            self.tunnel(skb)


# --- the --action grammar: text -> Action ----------------------------------------------------------
#
# Pure functions of text (no packet is touched here), so that the grammar can live apart from the
# engine. One meaning, three spellings: softgso's own (push-mpls:100:0:64:uc), tc's as `tc filter
# ... action` takes it (mpls push label 100 tc 0 ttl 64) and Open vSwitch's where it means the same
# (pop_mpls:0x0800, dec_mpls_ttl, set_mpls_ttl:9, strip_vlan; the ethertypes 0x8847/0x8848 and
# 0x8100/0x88a8 in the protocol fields). Each --action is one step, and repeated steps apply in
# order as successive tc actions do (every push lands on top); a label stack written as a list
# (push-mpls:100/200) is read top first, the way tcpdump and `softgso inspect` print a stack.

ACTION_SYNTAX = {
    "push-mpls": "push-mpls:LABEL[/LABEL...][:TC[:TTL[:uc|mc]]] (a list is a stack, top first)",
    "pop-mpls": "pop-mpls[:ETHERTYPE] (default ipv4; ipv4, ipv6, mpls_uc, mpls_mc or a number)",
    "set-mpls": "set-mpls:[LABEL]:[TC]:[TTL] (empty keeps the field)",
    "dec-ttl": "dec-ttl",
    "push-vlan": "push-vlan:VID[:PCP[:8021q|8021ad]]",
    "pop-vlan": "pop-vlan",
    "push-vxlan": "push-vxlan:src=IP,dst=IP,vni=N[,sport=N][,dport=4789][,csum=on|off][,smac=MAC][,dmac=MAC]"
                  "[,ttl=N][,tos=N][,df=on|off]",
    "push-geneve": "push-geneve:src=IP,dst=IP,vni=N[,options=HEX][, and push-vxlan's others; dport 6081]",
    "push-gre": "push-gre:src=IP,dst=IP[,key=N][,csum=on|off][,inner=ip|eth][,smac=MAC][,dmac=MAC][,ttl=N]"
                "[,tos=N][,df=on|off] (push-gretap: inner=eth)",
    "pop-vxlan": "pop-vxlan[:dport=N]",
    "pop-geneve": "pop-geneve[:dport=N]",
    "pop-gre": "pop-gre",
}
TC_ACTION_SYNTAX = (
    "mpls push [protocol mpls_uc|mpls_mc] label L [tc T] [ttl N] (ttl default 255, as act_mpls)",
    "mpls pop protocol ipv4|ipv6|mpls_uc|mpls_mc|ETHERTYPE",
    "mpls modify [label L] [tc T] [ttl N]",
    "mpls dec_ttl",
    "vlan push [protocol 802.1Q|802.1ad] [priority P] id V",
    "vlan pop",
)
OVS_ACTION_SYNTAX = ("pop_mpls:ETHERTYPE", "set_mpls_label:L", "set_mpls_tc:T", "set_mpls_ttl:N", "dec_mpls_ttl",
                     "strip_vlan", "pop_vlan")

# the ethertype of a pushed label and of a pushed tag, each spelling to its value
MPLS_ETHERTYPES = {"uc": ETH_P_MPLS_UC, "mc": ETH_P_MPLS_MC, "mpls_uc": ETH_P_MPLS_UC, "mpls_mc": ETH_P_MPLS_MC,
                   "0x8847": ETH_P_MPLS_UC, "0x8848": ETH_P_MPLS_MC}
MPLS_ETHERTYPE_FORMS = "uc or mc (softgso), mpls_uc or mpls_mc (tc), 0x8847 or 0x8848 (the ethertype, as OVS writes it)"
VLAN_PROTOCOLS = {"8021q": ETH_P_8021Q, "8021ad": ETH_P_8021AD, "802.1q": ETH_P_8021Q, "802.1ad": ETH_P_8021AD,
                  "0x8100": ETH_P_8021Q, "0x88a8": ETH_P_8021AD}
VLAN_PROTOCOL_FORMS = ("8021q or 8021ad (softgso), 802.1Q or 802.1ad (tc), 0x8100 or 0x88a8 (the ethertype, as OVS "
                       "writes it)")
# what a popped label leaves (pop-mpls, tc's `mpls pop protocol`, OVS's pop_mpls)
NEXT_PROTOCOLS = {"ipv4": ETH_P_IP, "ip": ETH_P_IP, "ipv6": ETH_P_IPV6, "mpls": ETH_P_MPLS_UC,
                  "mpls_uc": ETH_P_MPLS_UC, "mpls_mc": ETH_P_MPLS_MC}
# Open vSwitch's names for our actions, where they mean the same
OVS_NAMES = {"push_mpls": "push-mpls", "pop_mpls": "pop-mpls", "set_mpls": "set-mpls", "dec_mpls_ttl": "dec-ttl",
             "push_vlan": "push-vlan", "pop_vlan": "pop-vlan", "strip_vlan": "pop-vlan"}
OVS_SET_MPLS_FIELD = {"set_mpls_label": 0, "set_mpls_tc": 1, "set_mpls_ttl": 2}
TC_CONTROLS = ("pipe", "reclassify", "drop", "continue", "pass", "ok", "shot", "trap", "goto", "jump")
# act_mpls: a push without ttl gets net.mpls.default_ttl, else ACT_MPLS_TTL_DEFAULT
TC_MPLS_TTL_DEFAULT = 255
LIST_SEPARATORS = "/,"


def accepted_forms() -> str:
    """Every spelling parse_action takes, for error messages and --help."""
    return (f"softgso's: {', '.join(ACTION_SYNTAX.values())}; tc's (one string): {'; '.join(TC_ACTION_SYNTAX)}; "
            f"Open vSwitch's: {', '.join(OVS_ACTION_SYNTAX)}")


def mpls_ethertype(text: str) -> int | None:
    """The ethertype of a pushed label from any of its spellings (None when it is none of them)."""
    return MPLS_ETHERTYPES.get(text.strip().lower())


def vlan_protocol(text: str) -> int | None:
    """The TPID of a pushed tag from any of its spellings (None when it is none of them)."""
    return VLAN_PROTOCOLS.get(text.strip().lower())


def split_list(text: str) -> list[str]:
    """``100/200`` or ``100,200`` -> ["100", "200"] (a label stack, and per-label TC and TTL)."""
    for separator in LIST_SEPARATORS[1:]:
        text = text.replace(separator, LIST_SEPARATORS[0])
    return [item.strip() for item in text.split(LIST_SEPARATORS[0])]


def label_stack_spec(labels: tuple[str, ...] | list[str], tcs: tuple[str, ...] | list[str] = (),
                     ttls: tuple[str, ...] | list[str] = (), ethertype: str = "uc") -> str:
    """The push-mpls action string for a label stack given as list-style options, top first.

    ``labels``, ``tcs`` and ``ttls`` are option values, each one value or a list (``100,200``); TC
    and TTL are one value for every label or one per label (default 0 and 64). The string is checked
    (parse_action) before it is returned: a wrong count or value is a UsageError.
    """
    stack = [item for value in labels for item in split_list(value)]
    if not stack:
        raise UsageError("push-mpls needs at least one label")
    columns = []
    for values, what, default in ((tcs, "TC", "0"), (ttls, "TTL", "64")):
        items = [item for value in values for item in split_list(value)] or [default]
        if len(items) not in (1, len(stack)):
            raise UsageError(f"{len(items)} {what} values for {_labels(len(stack))}: give one {what} for every label, "
                             "or one per label in the order of the labels (top first)")
        columns.append("/".join(items))
    if mpls_ethertype(ethertype) is None:
        raise UsageError(f"MPLS ethertype {ethertype!r}: give {MPLS_ETHERTYPE_FORMS}")
    spec = f"push-mpls:{'/'.join(stack)}:{columns[0]}:{columns[1]}:{ethertype}"
    parse_action(spec)
    return spec


def _labels(count: int) -> str:
    return f"{count} label" + ("" if count == 1 else "s")


def _number(text: str, what: str, spec: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise UsageError(f"action {spec!r}: {what} {text!r} is not a number") from None


def _numbers(text: str, what: str, spec: str) -> list[int]:
    return [_number(item, what, spec) for item in split_list(text)]


def _per_label(values: list[int], count: int, what: str, spec: str) -> list[int]:
    """One value for every label, or one per label."""
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise UsageError(f"action {spec!r}: {len(values)} {what} values for {_labels(count)}: give one {what} for "
                         "every label, or one per label (top first)")
    return values


def parse_action(spec: str) -> Action:
    """Parse one ``--action`` string, in softgso's, tc's or Open vSwitch's spelling (:func:`accepted_forms`)."""
    words = spec.split()
    if len(words) > 1 and words[0].lower() in ("mpls", "vlan", "action"):
        return parse_tc_action(spec)
    kind, _, rest = spec.strip().partition(":")
    kind = kind.lower()
    fields = rest.split(":") if rest else []
    if kind in OVS_SET_MPLS_FIELD:
        if len(fields) != 1 or not fields[0]:
            raise UsageError(f"action {spec!r}: expected {kind}:VALUE")
        values: list[int | None] = [None, None, None]
        values[OVS_SET_MPLS_FIELD[kind]] = _number(fields[0], kind.rpartition("_")[2], spec)
        return _set_mpls(spec, values)
    if kind == "dec_ttl":
        raise UsageError(f"action {spec!r}: dec_ttl is Open vSwitch's IP TTL decrement; the MPLS one is dec-ttl "
                         "(softgso), dec_mpls_ttl (Open vSwitch) or 'mpls dec_ttl' (tc)")
    kind = OVS_NAMES.get(kind, kind)
    if kind in TUNNEL_ACTION_KINDS or kind == "push-gretap":
        return parse_tunnel_action(spec)
    if kind not in ACTION_SYNTAX:
        raise UsageError(f"unknown action {spec!r}; accepted: {accepted_forms()}")
    if kind == "push-mpls":
        return _push_mpls(spec, fields)
    if kind == "pop-mpls":
        return Action(spec, kind, (_next_protocol(fields[0] if fields else "ipv4", spec),))
    if kind == "set-mpls":
        return _set_mpls(spec, [(_number(f, "field", spec) if f not in ("", "-") else None) for f in fields])
    if kind == "push-vlan":
        return _push_vlan(spec, fields)
    if fields:
        raise UsageError(f"action {spec!r} takes no arguments")
    return Action(spec, kind, ())


def _push_mpls(spec: str, fields: list[str]) -> Action:
    if not 1 <= len(fields) <= 4:
        raise UsageError(f"action {spec!r}: expected {ACTION_SYNTAX['push-mpls']}")
    if len(fields) == 1 and fields[0].strip().lower() in ("0x8847", "0x8848"):
        # OVS's push_mpls:ETHERTYPE reads as label 34887 or 34888 here: never push that silently
        raise UsageError(f"action {spec!r} reads as Open vSwitch's push_mpls:ETHERTYPE, which takes its label "
                         "from a later set_mpls_label; softgso needs the label: push-mpls:LABEL[:TC[:TTL[:0x8847|"
                         "0x8848]]] (label 34887 or 34888 itself: write it in decimal)")
    labels = _numbers(fields[0], "label", spec)
    tcs = _per_label(_numbers(fields[1], "TC", spec) if len(fields) > 1 and fields[1] else [0], len(labels), "TC", spec)
    ttls = _per_label(_numbers(fields[2], "TTL", spec) if len(fields) > 2 and fields[2] else [64], len(labels), "TTL",
                      spec)
    ethertype = mpls_ethertype(fields[3]) if len(fields) > 3 else ETH_P_MPLS_UC
    if ethertype is None:
        raise UsageError(f"action {spec!r}: the last field is the MPLS ethertype: {MPLS_ETHERTYPE_FORMS}")
    entries: list[int | None] = []
    for label, tc, ttl in zip(labels, tcs, ttls, strict=True):
        check_label_values(label, tc, ttl)
        entries += [label, tc, ttl]
    return Action(spec, "push-mpls", (*entries, ethertype))


def _next_protocol(text: str, spec: str) -> int:
    value = text.strip().lower()
    return NEXT_PROTOCOLS[value] if value in NEXT_PROTOCOLS else _number(value, "ethertype", spec)


def _set_mpls(spec: str, values: list[int | None]) -> Action:
    return Action(spec, "set-mpls", tuple((values + [None] * 3)[:3]))


def _push_vlan(spec: str, fields: list[str]) -> Action:
    if not 1 <= len(fields) <= 3:
        raise UsageError(f"action {spec!r}: expected {ACTION_SYNTAX['push-vlan']}")
    if len(fields) == 1 and fields[0].strip().lower() in ("0x8100", "0x88a8"):
        raise UsageError(f"action {spec!r} reads as Open vSwitch's push_vlan:ETHERTYPE, which takes no VLAN id; "
                         "give it: push-vlan:VID[:PCP[:0x8100|0x88a8]]")
    vid = _number(fields[0], "VLAN id", spec)
    pcp = _number(fields[1], "priority", spec) if len(fields) > 1 and fields[1] else 0
    proto = vlan_protocol(fields[2]) if len(fields) > 2 else ETH_P_8021Q
    if proto is None:
        raise UsageError(f"action {spec!r}: VLAN protocol must be {VLAN_PROTOCOL_FORMS}")
    if not 0 <= vid <= 4095 or not 0 <= pcp <= 7:
        raise UsageError(f"action {spec!r}: VLAN id 0..4095 and priority 0..7")
    return Action(spec, "push-vlan", (vid, pcp, proto))


def _c_number(text: str, what: str, spec: str) -> int:
    """A number as tc reads it (strtoul with base 0: 0x hex, a leading 0 octal)."""
    if len(text) > 1 and text[0] == "0" and text.isdigit():
        try:
            return int(text, 8)
        except ValueError:
            pass
    try:
        return int(text, 0)
    except ValueError:
        raise _tc_error(spec, f"{what} {text!r} is not a number") from None


def _tc_error(spec: str, problem: str) -> UsageError:
    return UsageError(f"tc action {spec!r}: {problem}; tc's forms: {'; '.join(TC_ACTION_SYNTAX)}")


def parse_tc_action(spec: str) -> Action:
    """One tc action as ``tc filter ... action`` takes it (``mpls push label 100 tc 0 ttl 64``), with
    act_mpls's and act_vlan's defaults and refusals (tcf_mpls_init, tcf_vlan_init)."""
    words = spec.split()
    if words and words[0].lower() == "action":
        words = words[1:]
    if len(words) > 2 and words[-1].lower() in TC_CONTROLS:
        control = words.pop().lower()
        if control != "pipe":
            raise _tc_error(spec, f"control {control!r} decides a packet's fate, not its bytes: softgso runs every "
                            "action in turn (pipe, tc's default)")
    if len(words) < 2:
        raise _tc_error(spec, "expected a module (mpls or vlan) and a command")
    module, command, rest = words[0].lower(), words[1].lower(), words[2:]
    if len(rest) % 2:
        raise _tc_error(spec, f"{rest[-1]!r} needs a value")
    params: dict[str, str] = {}
    for key, value in zip(rest[::2], rest[1::2], strict=True):
        key = key.lower()
        if key in params:
            raise _tc_error(spec, f"{key} given twice")
        params[key] = value

    def only(*allowed: str) -> None:
        extra = [key for key in params if key not in allowed]
        if extra:
            raise _tc_error(spec, f"{extra[0]} cannot be used with {module} {command}")

    def number(key: str, what: str, low: int, high: int) -> int | None:
        if key not in params:
            return None
        value = _c_number(params[key], what, spec)
        if not low <= value <= high:
            raise _tc_error(spec, f"{what} {value} out of range {low}..{high}")
        return value

    if module == "mpls":
        if command == "push":
            if "bos" in params:
                raise _tc_error(spec, "bos is not supported: the S bit is set as skb_mpls_push sets it")
            only("protocol", "label", "tc", "ttl")
            label = number("label", "label", 0, 0xFFFFF)
            if label is None:
                raise _tc_error(spec, "label is required for MPLS push")
            ethertype = mpls_ethertype(params.get("protocol", "mpls_uc"))
            if ethertype is None:
                raise _tc_error(spec, f"protocol must be an MPLS type for MPLS push: {MPLS_ETHERTYPE_FORMS}")
            tc = number("tc", "tc", 0, 7)
            ttl = number("ttl", "ttl", 1, 255)  # TCA_MPLS_TTL's policy: at least 1
            check_label_values(label, tc or 0, TC_MPLS_TTL_DEFAULT if ttl is None else ttl)
            return Action(spec, "push-mpls", (label, tc or 0, TC_MPLS_TTL_DEFAULT if ttl is None else ttl, ethertype))
        if command == "pop":
            only("protocol")
            if "protocol" not in params:
                raise _tc_error(spec, "protocol must be set for MPLS pop")
            return Action(spec, "pop-mpls", (_next_protocol(params["protocol"], spec),))
        if command == "modify":
            only("label", "tc", "ttl")
            label = number("label", "label", 0, 0xFFFFF)
            return Action(spec, "set-mpls", (label, number("tc", "tc", 0, 7), number("ttl", "ttl", 1, 255)))
        if command == "dec_ttl":
            only()
            return Action(spec, "dec-ttl", ())
        if command == "mac_push":
            raise _tc_error(spec, "mac_push (a label before the Ethernet header) is not supported")
    elif module == "vlan":
        if command == "push":
            only("protocol", "priority", "id")
            vid = number("id", "VLAN id", 0, 4095)
            if vid is None:
                raise _tc_error(spec, "id is required for vlan push")
            proto = vlan_protocol(params.get("protocol", "802.1Q"))
            if proto is None:
                raise _tc_error(spec, f"VLAN protocol must be {VLAN_PROTOCOL_FORMS}")
            return Action(spec, "push-vlan", (vid, number("priority", "priority", 0, 7) or 0, proto))
        if command == "pop":
            only()
            return Action(spec, "pop-vlan", ())
        if command in ("modify", "pop_eth", "push_eth"):
            raise _tc_error(spec, f"vlan {command} is not supported")
    raise _tc_error(spec, f"unknown action {module} {command}")


# --- the tunnel actions' grammar: push-vxlan:src=10.0.0.1,dst=10.0.0.2,vni=42 ----------------------
#
# KEY=VALUE pairs, comma-separated (IPv6 addresses and MACs hold colons). The keys take softgso's
# names and tc tunnel_key's (src_ip, dst_ip, id, dst_port, nocsum) and Open vSwitch's (tun_id,
# remote_ip, local_ip), which mean the same.

TUNNEL_KEYS = {"src": "src", "src_ip": "src", "local": "src", "local_ip": "src",
               "dst": "dst", "dst_ip": "dst", "remote": "dst", "remote_ip": "dst",
               "vni": "vni", "id": "vni", "tun_id": "vni", "key": "vni",
               "sport": "sport", "src_port": "sport", "dport": "dport", "dst_port": "dport",
               "csum": "csum", "smac": "smac", "src_mac": "smac", "dmac": "dmac", "dst_mac": "dmac",
               "ttl": "ttl", "tos": "tos", "df": "df", "options": "options", "opts": "options", "inner": "inner"}
_SWITCH = {"on": True, "yes": True, "1": True, "true": True, "off": False, "no": False, "0": False, "false": False}


def _tunnel_pairs(spec: str, rest: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in (part.strip() for part in rest.split(",") if part.strip()):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep and key in ("csum", "nocsum"):  # tc tunnel_key's words
            key, value = "csum", "on" if key == "csum" else "off"
        if key not in TUNNEL_KEYS or (not sep and key != "csum"):
            raise UsageError(f"action {spec!r}: {item!r} is not KEY=VALUE with KEY one of "
                             f"{', '.join(sorted(set(TUNNEL_KEYS.values())))} (or tc's/Open vSwitch's names)")
        name = TUNNEL_KEYS[key]
        if name in pairs:
            raise UsageError(f"action {spec!r}: {name} given twice")
        pairs[name] = value.strip()
    return pairs


def _address(text: str, what: str, spec: str) -> bytes:
    import ipaddress

    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        raise UsageError(f"action {spec!r}: {what} {text!r} is not an IPv4 or IPv6 address") from None


def _mac(text: str, what: str, spec: str) -> bytes:
    digits = text.replace(":", "").replace("-", "")
    try:
        value = bytes.fromhex(digits)
    except ValueError:
        value = b""
    if len(value) != 6:
        raise UsageError(f"action {spec!r}: {what} {text!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    return value


def _bounded(pairs: dict[str, str], key: str, low: int, high: int, spec: str) -> int | None:
    if key not in pairs:
        return None
    value = _number(pairs[key], key, spec)
    if not low <= value <= high:
        raise UsageError(f"action {spec!r}: {key} {value} out of range {low}..{high}")
    return value


def _switch(pairs: dict[str, str], key: str, spec: str) -> bool | None:
    if key not in pairs:
        return None
    value = _SWITCH.get(pairs[key].lower())
    if value is None:
        raise UsageError(f"action {spec!r}: {key} takes on or off, not {pairs[key]!r}")
    return value


def parse_tunnel_action(spec: str) -> Action:
    """push-vxlan / push-geneve / push-gre (push-gretap) and pop-vxlan / pop-geneve / pop-gre."""
    kind, _, rest = spec.strip().partition(":")
    kind = kind.lower()
    pairs = _tunnel_pairs(spec, rest)
    tunnel = kind.split("-", 1)[1]
    if kind.startswith("pop-"):
        allowed = {"dport"} if tunnel != "gre" else set()
        extra = sorted(set(pairs) - allowed)
        if extra:
            raise UsageError(f"action {spec!r}: {kind} takes {'dport=N only' if allowed else 'no arguments'}")
        return Action(spec, kind, (), TunnelPop(tunnel, _bounded(pairs, "dport", 1, 65535, spec)))
    if kind == "push-gretap":
        if pairs.setdefault("inner", "eth") != "eth":
            raise UsageError(f"action {spec!r}: push-gretap carries the Ethernet frame (inner=eth)")
        kind, tunnel = "push-gre", "gre"
    missing = [key for key in ("src", "dst") if key not in pairs]
    if tunnel != "gre" and "vni" not in pairs:
        missing.append("vni")
    if missing:
        raise UsageError(f"action {spec!r}: {', '.join(missing)} required; expected {ACTION_SYNTAX[kind]}")
    src, dst = _address(pairs["src"], "src", spec), _address(pairs["dst"], "dst", spec)
    if len(src) != len(dst):
        raise UsageError(f"action {spec!r}: src and dst must both be IPv4 or both IPv6")
    not_here = {"gre": ("sport", "dport", "options"), "vxlan": ("options", "inner"), "geneve": ("inner",)}[tunnel]
    for key in not_here:
        if key in pairs:
            raise UsageError(f"action {spec!r}: {key} does not apply to {kind}")
    options = b""
    if "options" in pairs:
        try:
            options = bytes.fromhex(pairs["options"])
        except ValueError:
            raise UsageError(f"action {spec!r}: options {pairs['options']!r} is not hexadecimal") from None
        if len(options) % 4 or len(options) > 252:
            raise UsageError(f"action {spec!r}: Geneve options are 4-byte words, at most 252 bytes")
    inner = pairs.get("inner", "ip").lower()
    if inner not in ("ip", "eth"):
        raise UsageError(f"action {spec!r}: inner is ip (GRE, the L3 packet) or eth (gretap, the Ethernet frame)")
    push = TunnelPush(
        tunnel, src, dst,
        vni=_bounded(pairs, "vni", 0, 0xFFFFFFFF if tunnel == "gre" else 0xFFFFFF, spec),
        csum=_switch(pairs, "csum", spec),
        sport=_bounded(pairs, "sport", 0, 65535, spec) or TUNNEL_SOURCE_PORT,
        dport=_bounded(pairs, "dport", 1, 65535, spec),
        src_mac=_mac(pairs["smac"], "smac", spec) if "smac" in pairs else None,
        dst_mac=_mac(pairs["dmac"], "dmac", spec) if "dmac" in pairs else None,
        ttl=_bounded(pairs, "ttl", 1, 255, spec) or 64,
        tos=_bounded(pairs, "tos", 0, 255, spec) or 0,
        df=bool(_switch(pairs, "df", spec)),
        options=options,
        ethernet=inner == "eth",
    )
    return Action(spec, kind, (), push)


def tunnel_ports(actions: tuple[Action, ...] | list[Action]) -> tuple[tuple[int, str], ...]:
    """The UDP ports pushed tunnels use, as (port, kind) for softgso.offload.tunnels.parse_tunnel."""
    names = {"vxlan": "VXLAN", "geneve": "Geneve"}
    return tuple((action.tunnel.port, names[action.tunnel.kind]) for action in actions
                 if isinstance(action.tunnel, TunnelPush) and action.tunnel.udp)
