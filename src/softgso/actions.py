"""MPLS and VLAN actions with the kernel's skb contract (skb_mpls_push & co. in net/core/skbuff.c,
as tc act_mpls / act_vlan and Open vSwitch call them).

``push_mpls`` records ``inner_protocol`` and ``inner_network_header`` on the first push only, puts
the label after the link-layer header (``mac_len`` bytes), rewrites the Ethernet type and sets
``protocol``; later pushes only grow the stack. ``push_vlan`` keeps the outermost tag out of band,
as skb_vlan_push does, moving a tag already there into the bytes first.

Each action is also a small frozen value (:class:`PushMpls`, :class:`PopMpls`, :class:`SetMpls`,
:class:`DecTtl`, :class:`PushVlan`, :class:`PopVlan`, :class:`TunnelPush`, :class:`TunnelPop`) that
:func:`apply_action` applies to a packet. Their text (``--action push-mpls:100:0:64:uc``, tc's and
Open vSwitch's spellings) is the command line's: softgso.cli.action_grammar.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .checksum import csum_fold, ipv4_header_checksum, ones_sum, pseudo_header_sum
from .constants import (
    CSUM_MANGLED_0,
    ETH_HLEN,
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
from .gso import vlan_get_protocol
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
    # tcf_mpls_act: S unless skb_protocol(skb, true) is MPLS, i.e. vlan_get_protocol: with a VLAN protocol
    # (a tag moved into the bytes by a second tc vlan push) the type behind the in-band tags, read from
    # mac_len - 4 on; so a push after a pop that did nothing there (skb_mpls_pop reads skb->protocol
    # alone) still sees the labels (vector 6.12/generated/s50_023_uso_mix)
    bos = not eth_p_mpls(vlan_get_protocol(skb, skb.protocol)[0])
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
    if not eth_p_mpls(next_proto):
        # Not MPLS any more: the next skb_mpls_push records the inner packet afresh, at the network header
        # and as next_proto, whatever lies there (labels left below, a header of the other family), and
        # mpls_gso_segment then cuts that. No line of skb_mpls_pop/tcf_mpls_act read here says so; 6.1 and
        # 6.12 both do it (vectors generated/s3312_*_label_ops: pop to IP with labels left, or to the other
        # family, then push: validate_xmit_skb drops the packet, ENOMEM)
        skb.inner_protocol = 0


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
# what each tunnel kind pushes: its parse_tunnel kinds (which a pop of the same kind removes)
TUNNEL_LAYOUT_KINDS = {"vxlan": ("VXLAN",), "geneve": ("Geneve",),
                       "gre": ("GRE", "ip6gre", "gretap", "ip6gretap", "MPLS-in-GRE")}


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


@dataclass(frozen=True)
class TunnelPop:
    """Take off one tunnel of a kind (vxlan_rcv, geneve_rx, gre_rcv): the inner frame, or for GRE
    carrying an L3 packet, the frame's L2 header with the GRE protocol as its ethertype."""

    kind: str  # "vxlan", "geneve" or "gre"
    dport: int | None = None  # a UDP tunnel on another port than the IANA one


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


# --- the actions as values, and the one function that applies them ------------------------------


@dataclass(frozen=True)
class PushMpls:
    """Push one label on top of the stack (tc mpls push, OVS push_mpls)."""

    label: int
    tc: int = 0
    ttl: int = 64
    multicast: bool = False  # ethertype 0x8848 (ETH_P_MPLS_MC) instead of 0x8847

    @property
    def ethertype(self) -> int:
        """The labelled packet's ethertype."""
        return ETH_P_MPLS_MC if self.multicast else ETH_P_MPLS_UC


@dataclass(frozen=True)
class PopMpls:
    """Pop the top label (tc mpls pop, OVS pop_mpls); ``ethertype`` is what the packet carries below it."""

    ethertype: int = ETH_P_IP


@dataclass(frozen=True)
class SetMpls:
    """Rewrite fields of the top label (tc mpls modify, OVS set_mpls); None keeps a field."""

    label: int | None = None
    tc: int | None = None
    ttl: int | None = None


@dataclass(frozen=True)
class DecTtl:
    """Decrement the top label's TTL (tc mpls dec_ttl, OVS dec_mpls_ttl)."""


@dataclass(frozen=True)
class PushVlan:
    """Push a tag as the outermost one (tc vlan push, OVS push_vlan)."""

    vid: int
    pcp: int = 0
    protocol: int = ETH_P_8021Q  # the TPID: 802.1Q or 802.1ad


@dataclass(frozen=True)
class PopVlan:
    """Pop the outermost tag (tc vlan pop, OVS pop_vlan / strip_vlan)."""


Action = PushMpls | PopMpls | SetMpls | DecTtl | PushVlan | PopVlan | TunnelPush | TunnelPop


def apply_action(skb: Packet, action: Action) -> None:
    """Apply one action to ``skb`` as tc's act_mpls / act_vlan or a tunnel device would."""
    match action:
        case PushMpls():
            push_mpls(skb, action.label, action.tc, action.ttl, action.ethertype)
        case PopMpls():
            pop_mpls(skb, action.ethertype)
        case SetMpls():
            set_mpls(skb, label=action.label, tc=action.tc, ttl=action.ttl)
        case DecTtl():
            dec_ttl(skb)
        case PushVlan():
            push_vlan(skb, action.vid, action.pcp, action.protocol)
        case PopVlan():
            pop_vlan(skb)
        case TunnelPush():
            push_tunnel(skb, action)
        case TunnelPop():
            pop_tunnel(skb, action)
        case _:
            raise TypeError(f"{action!r} is not an action")


def tunnel_ports(actions: tuple[Action, ...] | list[Action]) -> tuple[tuple[int, str], ...]:
    """The UDP ports pushed tunnels use, as (port, kind) for softgso.offload.tunnels.parse_tunnel."""
    names = {"vxlan": "VXLAN", "geneve": "Geneve"}
    return tuple((action.port, names[action.kind]) for action in actions
                 if isinstance(action, TunnelPush) and action.udp)


__all__ = [
    "GENEVE_PORT",
    "TUNNEL_SOURCE_PORT",
    "VXLAN_PORT",
    "Action",
    "DecTtl",
    "LabelStackEntry",
    "PopMpls",
    "PopVlan",
    "PushMpls",
    "PushVlan",
    "SetMpls",
    "TunnelPop",
    "TunnelPush",
    "apply_action",
    "check_label_values",
    "dec_ttl",
    "pop_mpls",
    "pop_tunnel",
    "pop_vlan",
    "push_mpls",
    "push_tunnel",
    "push_vlan",
    "set_mpls",
    "skb_mpls_push",
    "tunnel_ports",
]
