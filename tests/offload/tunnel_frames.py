"""Tunnel super-packets for the rule tests, built with Scapy (an independent encoder), and checks
that decode softgso's segments with Scapy (an independent decoder). Expected values never come
from softgso: a rule test states the spec's rule and asks Scapy whether the bytes obey it."""

from __future__ import annotations

from scapy.all import GRE, IP, TCP, UDP, Ether, IPv6, Raw, raw  # type: ignore[attr-defined]
from scapy.contrib.geneve import GENEVE  # noqa: F401 (binds UDP 6081)
from scapy.contrib.mpls import MPLS
from scapy.layers.vxlan import VXLAN

from softgso.checksum import pseudo_header_sum
from softgso.features import PROFILES, GsoType, IpSummed
from softgso.packet import Packet
from softgso.xmit import transmit

PAYLOAD = bytes((i * 13 + 5) & 0xFF for i in range(3300))
OUTER_ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def inner_tcp(v6: bool = False, ip_id: int = 0x4321, df: bool = True, flags: str = "PA", payload: bytes = PAYLOAD):
    """An inner IP/TCP packet (Scapy layers)."""
    tcp = TCP(sport=40000, dport=5001, seq=1000, ack=1, flags=flags, window=500) / Raw(payload)
    if v6:
        return IPv6(src="fd00::1", dst="fd00::2") / tcp
    return IP(src="10.1.0.1", dst="10.1.0.2", id=ip_id, flags="DF" if df else 0) / tcp


def vxlan(inner=None, *, v6: bool = False, outer_id: int = 0x1000, dport: int = 4789, udp_check: int = 0) -> bytes:
    """Ether / IP(v6) / UDP / VXLAN / Ether / inner (the UDP checksum field as given)."""
    outer = IPv6(src="2001:db8::1", dst="2001:db8::2") if v6 else IP(src="192.0.2.1", dst="192.0.2.2", id=outer_id)
    frame = OUTER_ETH / outer / UDP(sport=51234, dport=dport, chksum=udp_check) / VXLAN(vni=42) / \
        Ether(src="02:00:00:00:00:bb", dst="02:00:00:00:00:aa") / (inner if inner is not None else inner_tcp())
    return raw(frame)


def packet_for(frame: bytes, *, l4: int, inner_mac: int, inner_network: int, inner_transport: int,
               inner_protocol: int, gso_size: int, gso_type: GsoType, outer_csum_seed: bool = False,
               outer_v6: bool = False, inner_v6: bool = False, network: int = 14) -> Packet:
    """The skb a tunnel driver builds for ``frame`` (spec 2.5): inner seed, tunnel metadata, gso fields."""
    skb = Packet.from_ethernet(frame)
    data = skb.data
    skb.encapsulation = True
    skb.transport_header = l4
    skb.inner_mac_header, skb.inner_network_header, skb.inner_transport_header = inner_mac, inner_network, \
        inner_transport
    skb.inner_protocol = inner_protocol
    skb.gso_size, skb.gso_type = gso_size, gso_type
    skb.ip_summed, skb.csum_start, skb.csum_offset = IpSummed.PARTIAL, inner_transport, 16
    src, dst = _addresses(data, inner_network, inner_v6)
    data[inner_transport + 16 : inner_transport + 18] = pseudo_header_sum(src, dst, 6, len(data) - inner_transport) \
        .to_bytes(2, "big")
    if outer_csum_seed:
        src, dst = _addresses(data, network, outer_v6)
        data[l4 + 6 : l4 + 8] = pseudo_header_sum(src, dst, 17, len(data) - l4).to_bytes(2, "big")
    return skb


def _addresses(data: bytearray, network: int, v6: bool) -> tuple[bytes, bytes]:
    if v6:
        return bytes(data[network + 8 : network + 24]), bytes(data[network + 24 : network + 40])
    return bytes(data[network + 12 : network + 16]), bytes(data[network + 16 : network + 20])


def segment(skb: Packet, profile: str = "no-offload") -> list[bytes]:
    """What leaves the device profile for the skb."""
    return [bytes(p.data) for p in transmit(skb, PROFILES[profile])]


def checksums_verify(frame: bytes) -> bool:
    """Scapy recomputes every IP/TCP/UDP checksum of the frame; True when all stored ones match
    (a UDP checksum of 0 counts as "none")."""
    decoded = Ether(frame)
    layer = decoded
    while layer is not None and layer.name != "NoPayload":
        if isinstance(layer, (IP, TCP, UDP)) and not (isinstance(layer, UDP) and layer.chksum == 0):
            stored = layer.chksum
            fresh = layer.__class__(raw(layer))
            del fresh.chksum
            top = decoded.copy()
            target = top.getlayer(layer.__class__, nb=_index_of(decoded, layer))
            target.chksum = None
            rebuilt = Ether(raw(top)).getlayer(layer.__class__, nb=_index_of(decoded, layer))
            if rebuilt.chksum != stored:
                return False
        if isinstance(layer, GRE) and layer.chksum_present:
            gre_bytes = raw(layer)
            if _ones(gre_bytes) != 0xFFFF:
                return False
        layer = layer.payload
    return True


def _index_of(root, layer) -> int:
    count, node = 0, root
    while node is not None and node.name != "NoPayload":
        if node.__class__ is layer.__class__:
            count += 1
        if node is layer:
            return count
        node = node.payload
    raise ValueError("layer not found")


def _ones(data: bytes) -> int:
    if len(data) & 1:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


__all__ = ["GENEVE", "GRE", "IP", "IPv6", "MPLS", "TCP", "UDP", "VXLAN", "Ether", "Raw", "raw"]
