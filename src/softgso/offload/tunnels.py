"""Tunnels: how a packet says it carries another one (the kernel's udp_tunnel and IP-in-IP offloads).

The kernel knows a UDP tunnel by the socket it was sent through (a VXLAN or Geneve device sets
SKB_GSO_UDP_TUNNEL on what it builds); a capture has only the destination port, so the ports the
encapsulations are assigned (and Linux's own VXLAN default, 8472, used by flannel and Cilium) stand
for that socket, plus any the user adds. IP-in-IP and GRE are known by their IP protocol, as
inet_offloads dispatches them (ipip_gso_segment, sit_gso_segment, gre_gso_segment).

:func:`parse_tunnel` reads a captured frame the way the sending host's tunnel driver built it:
outer L2/L3, the tunnel header, the inner MAC (Ethernet, MPLS labels or none) and the inner packet,
with the metadata ``iptunnel_handle_offloads`` and the driver would have set (inner offsets,
``inner_protocol``, the tunnel's SKB_GSO_* bits from the outer checksum state). What Linux never
builds as a tunnel super-packet (GTP-U, GRE with sequence numbers, ERSPAN, nested tunnels) or what
a capture cannot tell with certainty (remote checksum offload) comes back with a reason instead.
"""

from __future__ import annotations

from ..constants import (
    ETH_HLEN,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_MPLS_UC,
    ETH_P_TEB,
    IPPROTO_DSTOPTS,
    IPPROTO_HOPOPTS,
    IPPROTO_ROUTING,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV4_MIN_HLEN,
    IPV6_HLEN,
    MPLS_HLEN,
    VLAN_HLEN,
    eth_p_mpls,
    eth_type_vlan,
)
from ..features import GsoType
from ..valueclass import FrozenValueClass, init_fields

# IANA-assigned UDP ports of the encapsulations, and Linux's VXLAN default (IFLA_VXLAN_PORT unset)
UDP_TUNNEL_PORTS: dict[int, str] = {
    4789: "VXLAN",
    8472: "VXLAN",
    4790: "VXLAN-GPE",
    6081: "Geneve",
    6635: "MPLS-in-UDP",
}

IPPROTO_IPIP = 4
IPPROTO_IPV6_IN_IP = 41
IPPROTO_GRE = 47
IP_TUNNEL_PROTOCOLS: dict[int, str] = {
    IPPROTO_IPIP: "IP-in-IP",
    IPPROTO_IPV6_IN_IP: "IPv6-in-IP",
    IPPROTO_GRE: "GRE",
}

# FOU and GUE (net/ipv4/fou_core.c) have no assigned port: a capture's are named with --tunnel-port
TUNNEL_KINDS = ("VXLAN", "VXLAN-GPE", "Geneve", "MPLS-in-UDP", "FOU", "GUE")


def tunnel_of(ip_proto: int, dport: int | None, extra_ports: dict[int, str] | None = None) -> str | None:
    """The tunnel a packet of IP protocol ``ip_proto`` (UDP: to ``dport``) carries, or None."""
    if ip_proto == IPPROTO_UDP and dport is not None:
        if extra_ports and dport in extra_ports:
            return extra_ports[dport]
        return UDP_TUNNEL_PORTS.get(dport)
    return IP_TUNNEL_PROTOCOLS.get(ip_proto)


def parse_tunnel_port(text: str) -> tuple[int, str]:
    """``KIND:PORT`` of ``--tunnel-port`` (KIND one of TUNNEL_KINDS, any case) as (port, kind)."""
    kind, sep, port = text.rpartition(":")
    names = {name.lower(): name for name in TUNNEL_KINDS}
    if not sep or kind.lower() not in names or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"--tunnel-port {text!r}: expected KIND:PORT with KIND one of "
                         f"{', '.join(TUNNEL_KINDS)} and PORT 1..65535 (e.g. vxlan:8999)")
    return int(port), names[kind.lower()]


GTP_U_PORT = 2152
GRE_FLAG_CSUM, GRE_FLAG_ROUTING, GRE_FLAG_KEY, GRE_FLAG_SEQ = 0x8000, 0x4000, 0x2000, 0x1000
GRE_VERSION_MASK = 0x0007
ETH_P_ERSPAN, ETH_P_ERSPAN2 = 0x88BE, 0x22EB
VXLAN_HLEN = 8
VXLAN_RCO_BIT = 0x20  # VXLAN_HF_RCO (BIT(21) of the big-endian flags word): the second byte
GENEVE_HLEN = 8
# VXLAN-GPE next protocol -> inner ethertype (RFC draft-ietf-nvo3-vxlan-gpe)
_GPE_NEXT = {1: ETH_P_IP, 2: ETH_P_IPV6, 3: ETH_P_TEB}
GUE_HLEN = 4  # struct guehdr (include/net/gue.h): version:2 control:1 hlen:5, proto_ctype, flags
GUE_FLAG_PRIV = 0x0001  # the private flags word follows the header
GUE_PFLAG_REMCSUM = 0x80000000  # remote checksum offload, in the private flags word


class TunnelLayout(FrozenValueClass):
    """Where a captured tunnel frame's headers are (frame offsets) and what the driver set for them."""

    kind: str
    outer_network: int
    outer_version: int
    outer_l4: int  # the outer UDP or GRE header; for IP-in-IP the inner IP header
    inner_mac: int  # first byte after the tunnel header (inner Ethernet, a label, or the inner IP)
    inner_network: int
    inner_version: int
    inner_l4_proto: int
    inner_transport: int
    inner_l4_hdr_len: int
    inner_protocol: int  # ETHER type: 0x6558 for an inner Ethernet frame, else the inner L3 ethertype
    tunnel_bits: GsoType
    ip_end: int  # where the outer IP packet ends (a trailer behind it is no packet)
    gre_csum: bool
    # FOU/GUE carrying IP-in-IP: the IP protocol skb_set_inner_ipproto recorded (inner_protocol_type
    # ENCAP_TYPE_IPPROTO, 4 or 41); 0 for every other tunnel (ENCAP_TYPE_ETHER, inner_protocol)
    inner_ipproto: int

    def __init__(self, kind: str, outer_network: int, outer_version: int, outer_l4: int, inner_mac: int,
                 inner_network: int, inner_version: int, inner_l4_proto: int, inner_transport: int,
                 inner_l4_hdr_len: int, inner_protocol: int, tunnel_bits: GsoType, ip_end: int,
                 gre_csum: bool = False, inner_ipproto: int = 0) -> None:
        init_fields(self, locals())

    @property
    def payload(self) -> int:
        """Offset of the inner L4 payload."""
        return self.inner_transport + self.inner_l4_hdr_len


class TunnelNotSegmented(Exception):
    """A recognised tunnel frame softgso does not segment: (kind, detail) for the report."""

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        super().__init__(detail)


def _ip_header(frame: bytes, at: int, end: int) -> tuple[int, int, int, int] | None:
    """(version, header length incl. extension headers, protocol, end of the IP packet) at ``at``."""
    if at >= end:
        return None
    version = frame[at] >> 4
    if version == 4:
        if at + IPV4_MIN_HLEN > end:
            return None
        ihl = (frame[at] & 0x0F) * 4
        if ihl < IPV4_MIN_HLEN or at + ihl > end or int.from_bytes(frame[at + 6 : at + 8], "big") & 0x3FFF:
            return None  # short, or a fragment
        total = int.from_bytes(frame[at + 2 : at + 4], "big")
        ip_end = at + total if total else end  # 0: BIG TCP, the packet ends with the frame
        return (4, ihl, frame[at + 9], min(ip_end, end)) if total == 0 or total >= ihl else None
    if version == 6:
        if at + IPV6_HLEN > end:
            return None
        proto, offset = frame[at + 6], at + IPV6_HLEN
        while proto in (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS):
            if offset + 8 > end:
                return None
            proto, offset = frame[offset], offset + (frame[offset + 1] + 1) * 8
        if offset > end:
            return None
        payload = int.from_bytes(frame[at + 4 : at + 6], "big")
        ip_end = at + IPV6_HLEN + payload if payload else end
        return 6, offset - at, proto, min(ip_end, end)
    return None


def parse_tunnel(frame: bytes, extra_ports: dict[int, str] | None = None,
                 through_labels: bool = False, *, any_inner: bool = False) -> TunnelLayout | None:
    """The tunnel layout of an Ethernet frame, None when it carries no tunnel softgso knows.

    Raises :class:`TunnelNotSegmented` for a tunnel it recognises but does not segment. A tunnel
    super-packet under a label stack is one Linux drops (spec 7.4, last row; kernel vectors
    ``mplsroute_underlay_*``: an encap mpls route on the underlay labels it, mpls_xmit points
    inner_protocol and the inner network header at the outer IP header while the skb stays
    encapsulated, and the device's GSO fails); ``through_labels`` (beyond the kernel) lays it out
    anyway, the labels then being part of the outer L2 header.
    ``any_inner`` (readers that only take a tunnel off, never segment it: pop-vxlan & co.) lays out
    a tunnel whatever it carries, a nested tunnel included: when the inner packet is not TCP/UDP
    over IP, ``inner_l4_proto`` is -1 and the inner offsets stop where the reading did.
    """
    length = len(frame)
    if length < ETH_HLEN:
        return None
    offset = 12
    ethertype = int.from_bytes(frame[12:14], "big")
    while eth_type_vlan(ethertype) and offset + 6 <= length:
        offset += VLAN_HLEN
        ethertype = int.from_bytes(frame[offset : offset + 2], "big")
    network = offset + 2
    labelled = eth_p_mpls(ethertype)
    if labelled:
        while network + MPLS_HLEN <= length:
            network += MPLS_HLEN
            if frame[network - 2] & 0x01:
                break
        version = frame[network] >> 4 if network < length else 0
        ethertype = ETH_P_IP if version == 4 else ETH_P_IPV6 if version == 6 else 0
    if ethertype not in (ETH_P_IP, ETH_P_IPV6):
        return None
    layout = _outer(frame, network, length, extra_ports, any_inner)
    if layout is not None and labelled and not through_labels:
        raise TunnelNotSegmented("tunnel inside a label stack: Linux drops it",
                                 f"a {layout.kind} super-packet under an MPLS label stack: Linux cannot segment it "
                                 "(MPLS GSO and tunnel GSO share one inner_protocol) and the device drops it, "
                                 "sending nothing (6.1, 6.12); beyond the kernel, the tunnel-in-labels option "
                                 "segments it")
    return layout


def _outer(frame: bytes, network: int, length: int, extra_ports: dict[int, str] | None,
           any_inner: bool = False) -> TunnelLayout | None:
    outer = _ip_header(frame, network, length)
    if outer is None:
        return None
    version, l3_len, proto, ip_end = outer
    l4 = network + l3_len
    if proto == IPPROTO_UDP:
        if l4 + 8 > ip_end:
            return None
        dport = int.from_bytes(frame[l4 + 2 : l4 + 4], "big")
        if dport == GTP_U_PORT:
            raise TunnelNotSegmented("GTP-U: no tunnel GSO in Linux", "a GTP-U super-packet: Linux has no GTP GSO")
        kind = (extra_ports or {}).get(dport) or UDP_TUNNEL_PORTS.get(dport)
        if kind is None:
            return None
        csum = frame[l4 + 6 : l4 + 8] != b"\0\0"
        bits = GsoType.UDP_TUNNEL_CSUM if csum else GsoType.UDP_TUNNEL
        return _udp_tunnel(frame, kind, network, version, l4, ip_end, bits, any_inner)
    if proto == IPPROTO_GRE:
        return _gre(frame, network, version, l4, ip_end, any_inner)
    if proto in (IPPROTO_IPIP, IPPROTO_IPV6_IN_IP):
        names = {(4, 4): "IPIP", (4, 41): "SIT", (6, 4): "4in6", (6, 41): "ip6ip6"}
        bits = GsoType.IPXIP4 if version == 4 else GsoType.IPXIP6
        want = 4 if proto == IPPROTO_IPIP else 6
        if l4 >= ip_end or frame[l4] >> 4 != want:
            return None
        return _inner(frame, names[(version, proto)], network, version, l4, l4, l4, 0, ip_end, bits, any_inner)
    return None


def _udp_tunnel(frame: bytes, kind: str, network: int, version: int, udp: int, ip_end: int,
                bits: GsoType, any_inner: bool = False) -> TunnelLayout | None:
    header = udp + 8
    if kind == "VXLAN":
        if header + VXLAN_HLEN > ip_end:
            return None
        if frame[header + 1] & VXLAN_RCO_BIT:
            raise TunnelNotSegmented("remote checksum offload: not supported",
                                     "a VXLAN super-packet with remote checksum offload (RCO): not supported")
        inner_mac = header + VXLAN_HLEN
        return _inner(frame, kind, network, version, udp, inner_mac, inner_mac + ETH_HLEN, ETH_P_TEB, ip_end, bits,
                      any_inner)
    if kind == "VXLAN-GPE":
        if header + VXLAN_HLEN > ip_end:
            return None
        inner_type = _GPE_NEXT.get(frame[header + 3])
        if inner_type is None:
            raise TunnelNotSegmented("VXLAN-GPE payload not IP or Ethernet: not segmented",
                                     f"a VXLAN-GPE super-packet carrying next protocol {frame[header + 3]}")
        inner_mac = header + VXLAN_HLEN
        nh = inner_mac + (ETH_HLEN if inner_type == ETH_P_TEB else 0)
        return _inner(frame, kind, network, version, udp, inner_mac, nh, inner_type, ip_end, bits, any_inner)
    if kind == "Geneve":
        if header + GENEVE_HLEN > ip_end or frame[header] >> 6 != 0:
            return None
        inner_mac = header + GENEVE_HLEN + (frame[header] & 0x3F) * 4
        inner_type = int.from_bytes(frame[header + 2 : header + 4], "big")
        if inner_type not in (ETH_P_TEB, ETH_P_IP, ETH_P_IPV6):
            raise TunnelNotSegmented("Geneve payload not IP or Ethernet: not segmented",
                                     f"a Geneve super-packet carrying protocol {inner_type:#06x}")
        nh = inner_mac + (ETH_HLEN if inner_type == ETH_P_TEB else 0)
        return _inner(frame, kind, network, version, udp, inner_mac, nh, inner_type, ip_end, bits, any_inner)
    if kind == "MPLS-in-UDP":
        return _labels(frame, kind, network, version, udp, header, ip_end, bits, any_inner)
    if kind in ("FOU", "GUE"):
        return _fou(frame, kind, network, version, udp, header, ip_end, bits, any_inner)
    return None


def _fou(frame: bytes, kind: str, network: int, version: int, udp: int, header: int, ip_end: int, bits: GsoType,
         any_inner: bool = False) -> TunnelLayout | None:
    """FOU/GUE as an ipip, sit, ip6tnl, gre or ip6gre device with ``encap fou|gue`` builds it (spec 2.5.5):
    the carried tunnel set its own GSO bit and inner fields first (IPXIP4/IPXIP6 and inner_ipproto,
    or GRE and inner_protocol), then fou_build_header added UDP_TUNNEL(_CSUM); the inner offsets
    stay on the carried packet, so the UDP handler's tunnel header spans UDP, GUE and GRE."""
    at = header
    if kind == "GUE":
        if header + GUE_HLEN > ip_end:
            return None
        if frame[header] & 0xE0:
            return None  # version 1 (direct IP) or a control message: __gue_build_header sends neither
        at = header + GUE_HLEN + (frame[header] & 0x1F) * 4
        carried = frame[header + 1]
        flags = int.from_bytes(frame[header + 2 : header + 4], "big")
        private = header + GUE_HLEN  # the private flags word, first of the optional fields
        if flags & GUE_FLAG_PRIV and at >= private + 4 and private + 4 <= ip_end and \
                int.from_bytes(frame[private : private + 4], "big") & GUE_PFLAG_REMCSUM:
            raise TunnelNotSegmented("remote checksum offload: not supported",
                                     "a GUE super-packet with remote checksum offload: not supported")
    else:
        if at >= ip_end:
            return None
        nibble = frame[at] >> 4  # FOU has no header: the port's one protocol, told from the packet itself
        carried = IPPROTO_IPIP if nibble == 4 else IPPROTO_IPV6_IN_IP if nibble == 6 else IPPROTO_GRE
    if at > ip_end:
        return None
    if carried == IPPROTO_GRE:
        layout = _gre(frame, network, version, at, ip_end, any_inner, encap=kind)
        return None if layout is None else layout.replace(kind=kind, outer_l4=udp, tunnel_bits=bits | layout.tunnel_bits)
    if carried not in (IPPROTO_IPIP, IPPROTO_IPV6_IN_IP) or at >= ip_end or \
            frame[at] >> 4 != (4 if carried == IPPROTO_IPIP else 6):
        return None
    inner_type = ETH_P_IP if carried == IPPROTO_IPIP else ETH_P_IPV6
    bits |= GsoType.IPXIP4 if version == 4 else GsoType.IPXIP6
    layout = _inner(frame, kind, network, version, udp, at, at, inner_type, ip_end, bits, any_inner)
    return None if layout is None else layout.replace(inner_ipproto=carried)


def _gre(frame: bytes, network: int, version: int, gre: int, ip_end: int, any_inner: bool = False,
         encap: str = "") -> TunnelLayout | None:
    """A GRE header at ``gre`` (``encap``: the FOU/GUE it travels in, whose device rules differ)."""
    if gre + 4 > ip_end:
        return None
    flags = int.from_bytes(frame[gre : gre + 2], "big")
    protocol = int.from_bytes(frame[gre + 2 : gre + 4], "big")
    if flags & GRE_VERSION_MASK or flags & GRE_FLAG_ROUTING:
        return None  # PPTP's enhanced GRE, source routes: no GRE offload in Linux
    if protocol in (ETH_P_ERSPAN, ETH_P_ERSPAN2):
        raise TunnelNotSegmented("ERSPAN: no tunnel GSO in Linux", "an ERSPAN super-packet: Linux never builds one")
    if flags & GRE_FLAG_SEQ:
        raise TunnelNotSegmented("GRE with sequence numbers: no tunnel GSO in Linux",
                                 "a GRE super-packet with sequence numbers: Linux never builds one (the device "
                                 "withholds GSO, so every packet gets its own number)")
    hlen = 4 + 4 * sum(1 for bit in (GRE_FLAG_CSUM, GRE_FLAG_KEY) if flags & bit)
    inner = gre + hlen
    csum = bool(flags & GRE_FLAG_CSUM)
    if csum and encap:
        # __gre_tunnel_init: no GSO_SOFTWARE with output checksums under FOU/GUE (two checksums to update)
        raise TunnelNotSegmented(f"GRE checksum inside {encap}: no tunnel GSO in Linux",
                                 f"a GRE-in-{encap} super-packet with a GRE checksum: Linux never builds one (the "
                                 "device withholds GSO, so every packet gets its own checksums)")
    bits = GsoType.GRE_CSUM if csum else GsoType.GRE
    if protocol == ETH_P_TEB:
        kind = "gretap" if version == 4 else "ip6gretap"
        layout = _inner(frame, kind, network, version, gre, inner, inner + ETH_HLEN, ETH_P_TEB, ip_end, bits,
                        any_inner)
    elif protocol in (ETH_P_IP, ETH_P_IPV6):
        kind = "GRE" if version == 4 else "ip6gre"
        layout = _inner(frame, kind, network, version, gre, inner, inner, protocol, ip_end, bits, any_inner)
    elif protocol == ETH_P_MPLS_UC:
        layout = _labels(frame, "MPLS-in-GRE", network, version, gre, inner, ip_end, bits, any_inner)
    else:
        return None
    return None if layout is None else _with_gre_csum(layout, csum)


def _with_gre_csum(layout: TunnelLayout, csum: bool) -> TunnelLayout:
    return layout.replace(gre_csum=csum)


def _labels(frame: bytes, kind: str, network: int, version: int, l4: int, first_label: int, ip_end: int,
            bits: GsoType, any_inner: bool = False) -> TunnelLayout | None:
    """A label stack the BPF route declares as the inner MAC header; the inner protocol is the IP below it."""
    at = first_label
    while True:
        if at + MPLS_HLEN > ip_end:
            return None
        at += MPLS_HLEN
        if frame[at - 2] & 0x01:
            break
    if at >= ip_end or frame[at] >> 4 not in (4, 6):
        return None
    inner_type = ETH_P_IP if frame[at] >> 4 == 4 else ETH_P_IPV6
    return _inner(frame, kind, network, version, l4, first_label, at, inner_type, ip_end, bits, any_inner)


def _inner(frame: bytes, kind: str, network: int, version: int, l4: int, inner_mac: int, inner_network: int,
           inner_protocol: int, ip_end: int, bits: GsoType, any_inner: bool = False) -> TunnelLayout | None:
    """The inner IP and L4 headers behind the tunnel; None when they are not TCP/UDP over IP
    (``any_inner``: the tunnel's layout all the same, inner_l4_proto -1)."""
    if inner_mac > ip_end:
        return None
    if any_inner:
        found = _inner(frame, kind, network, version, l4, inner_mac, inner_network, inner_protocol, ip_end, bits) \
            if not _carries_tunnel(frame, inner_protocol, inner_network, ip_end) else None
        return found or TunnelLayout(kind, network, version, l4, inner_mac, min(inner_network, ip_end), 0, -1,
                                     min(inner_network, ip_end), 0, inner_protocol, bits, ip_end)
    if inner_protocol == ETH_P_TEB:
        if inner_network > ip_end:
            return None
        ethertype = int.from_bytes(frame[inner_network - 2 : inner_network], "big")
        while eth_type_vlan(ethertype) and inner_network + VLAN_HLEN <= ip_end:
            ethertype = int.from_bytes(frame[inner_network + 2 : inner_network + 4], "big")
            inner_network += VLAN_HLEN
        if ethertype not in (ETH_P_IP, ETH_P_IPV6):
            return None
    inner = _ip_header(frame, inner_network, ip_end)
    if inner is None:
        return None
    inner_version, inner_l3_len, proto, _ = inner
    transport = inner_network + inner_l3_len
    if proto in (IPPROTO_UDP, IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6_IN_IP) and _nested(frame, proto, transport,
                                                                                       ip_end):
        raise TunnelNotSegmented("nested tunnel: no tunnel GSO in Linux",
                                 f"a {kind} super-packet carrying another tunnel: Linux segments the inner tunnel "
                                 "before the outer one encapsulates it")
    if proto == IPPROTO_TCP:
        if transport + 20 > ip_end:
            return None
        l4_hdr_len = (frame[transport + 12] >> 4) * 4
        if l4_hdr_len < 20 or transport + l4_hdr_len > ip_end:
            return None
    elif proto == IPPROTO_UDP:
        if transport + 8 > ip_end:
            return None
        l4_hdr_len = 8
    else:
        return None
    return TunnelLayout(kind, network, version, l4, inner_mac, inner_network, inner_version, proto, transport,
                        l4_hdr_len, inner_protocol, bits, ip_end)


def _carries_tunnel(frame: bytes, inner_protocol: int, inner_network: int, ip_end: int) -> bool:
    """The inner packet is itself a tunnel (what _inner refuses as nested), told without raising."""
    try:
        _inner(frame, "", 0, 0, 0, 0, inner_network, inner_protocol, ip_end, GsoType(0))
    except TunnelNotSegmented:
        return True
    return False


def tunnel_id(frame: bytes, layout: TunnelLayout) -> tuple[str, int] | None:
    """The tunnel's identifier as its header carries it: ("VNI", n) for VXLAN, VXLAN-GPE and Geneve,
    ("key", n) for GRE with the K bit (inside FOU/GUE too); None for a tunnel without one (IP-in-IP,
    GRE without key)."""
    header = layout.outer_l4 + 8  # behind the outer UDP header
    if layout.kind in ("VXLAN", "VXLAN-GPE", "Geneve"):
        return "VNI", int.from_bytes(frame[header + 4 : header + 7], "big")
    gre = layout.outer_l4 if layout.kind in ("GRE", "ip6gre", "gretap", "ip6gretap", "MPLS-in-GRE") else None
    if layout.kind in ("FOU", "GUE") and not layout.inner_ipproto:
        gre = header + (GUE_HLEN + (frame[header] & 0x1F) * 4 if layout.kind == "GUE" else 0)
    if gre is not None:
        flags = int.from_bytes(frame[gre : gre + 2], "big")
        if flags & GRE_FLAG_KEY:
            at = gre + 4 + (4 if flags & GRE_FLAG_CSUM else 0)
            return "key", int.from_bytes(frame[at : at + 4], "big")
    return None


def _nested(frame: bytes, proto: int, transport: int, ip_end: int) -> bool:
    if proto != IPPROTO_UDP:
        return True
    if transport + 4 > ip_end:
        return False
    dport = int.from_bytes(frame[transport + 2 : transport + 4], "big")
    return dport in UDP_TUNNEL_PORTS or dport == GTP_U_PORT


__all__ = ["IP_TUNNEL_PROTOCOLS", "TUNNEL_KINDS", "UDP_TUNNEL_PORTS", "TunnelLayout", "TunnelNotSegmented",
           "parse_tunnel", "parse_tunnel_port", "tunnel_id", "tunnel_of"]
