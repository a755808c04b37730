"""The skb-like packet model: the frame bytes plus what the kernel keeps beside them.

Offsets are counted from the first byte of the frame (the outermost MAC header, which is where
the kernel's data pointer stands at transmit). ``None`` stands for the kernel's "unset" header
offset (0xFFFF) and 0 for an inner offset that was never set.

Tunnels use the fields the kernel keeps for them: ``encapsulation``, the three inner header
offsets, ``inner_protocol`` with its ``inner_protocol_type`` (ENCAP_TYPE_ETHER: an ethertype, the
TEB 0x6558 for an inner Ethernet frame; ENCAP_TYPE_IPPROTO: ``inner_ipproto``, an IP protocol, for
FOU/GUE carrying IP-in-IP), and the two flags a tunnel handler sets while segmenting
(``encap_hdr_csum``: the outer header has a checksum GSO computes; ``remcsum_offload``).
"""

from __future__ import annotations

from .constants import ETH_HLEN
from .features import GsoType, IpSummed
from .valueclass import FieldsClass

# skb->inner_protocol_type (include/linux/skbuff.h)
ENCAP_TYPE_ETHER = 0
ENCAP_TYPE_IPPROTO = 1


class Packet(FieldsClass):
    """One packet as an skb sees it."""

    __slots__ = (
        "data", "protocol", "inner_protocol", "mac_header", "network_header", "transport_header",
        "inner_mac_header", "inner_network_header", "inner_transport_header", "mac_len", "vlan_tci",
        "vlan_proto", "gso_size", "gso_type", "gso_segs", "ip_summed", "csum_start", "csum_offset",
        "encapsulation", "ip6_frag_id", "extras", "inner_protocol_type", "inner_ipproto", "encap_hdr_csum",
        "remcsum_offload",
    )

    data: bytearray
    protocol: int
    inner_protocol: int
    mac_header: int
    network_header: int | None
    transport_header: int | None
    inner_mac_header: int
    inner_network_header: int
    inner_transport_header: int
    mac_len: int
    vlan_tci: int | None
    vlan_proto: int
    gso_size: int
    gso_type: GsoType
    gso_segs: int
    ip_summed: IpSummed
    csum_start: int
    csum_offset: int
    encapsulation: bool
    ip6_frag_id: int
    extras: dict[str, object]
    inner_protocol_type: int
    inner_ipproto: int
    encap_hdr_csum: bool
    remcsum_offload: bool

    def __init__(self, data: bytearray, protocol: int = 0, inner_protocol: int = 0, mac_header: int = 0,
                 network_header: int | None = None, transport_header: int | None = None,
                 inner_mac_header: int = 0, inner_network_header: int = 0, inner_transport_header: int = 0,
                 mac_len: int = 0, vlan_tci: int | None = None, vlan_proto: int = 0, gso_size: int = 0,
                 gso_type: GsoType = GsoType.NONE, gso_segs: int = 0, ip_summed: IpSummed = IpSummed.NONE,
                 csum_start: int = 0, csum_offset: int = 0, encapsulation: bool = False, ip6_frag_id: int = 0,
                 extras: dict[str, object] | None = None, inner_protocol_type: int = ENCAP_TYPE_ETHER,
                 inner_ipproto: int = 0, encap_hdr_csum: bool = False, remcsum_offload: bool = False) -> None:
        self.data = data
        self.protocol = protocol
        self.inner_protocol = inner_protocol
        self.mac_header = mac_header
        self.network_header = network_header
        self.transport_header = transport_header
        self.inner_mac_header = inner_mac_header
        self.inner_network_header = inner_network_header
        self.inner_transport_header = inner_transport_header
        self.mac_len = mac_len
        self.vlan_tci = vlan_tci
        self.vlan_proto = vlan_proto
        self.gso_size = gso_size
        self.gso_type = gso_type
        self.gso_segs = gso_segs
        self.ip_summed = ip_summed
        self.csum_start = csum_start
        self.csum_offset = csum_offset
        self.encapsulation = encapsulation
        self.ip6_frag_id = ip6_frag_id
        self.extras = {} if extras is None else extras
        self.inner_protocol_type = inner_protocol_type
        self.inner_ipproto = inner_ipproto
        self.encap_hdr_csum = encap_hdr_csum
        self.remcsum_offload = remcsum_offload

    @classmethod
    def from_ethernet(cls, frame: bytes | bytearray | memoryview, protocol: int | None = None) -> Packet:
        """A frame as a packet socket or TAP hands it to the stack: MAC header at 0, L3 at 14."""
        data = bytearray(frame)
        if protocol is None:
            protocol = int.from_bytes(data[12:14], "big") if len(data) >= ETH_HLEN else 0
        return cls(data=data, protocol=protocol, mac_header=0, network_header=ETH_HLEN, mac_len=ETH_HLEN)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def is_gso(self) -> bool:
        """skb_is_gso: gso_size is set."""
        return self.gso_size != 0

    @property
    def vlan_tag_present(self) -> bool:
        """An out-of-band (accelerated) VLAN tag is set."""
        return self.vlan_tci is not None

    def clone(self, data: bytearray | None = None) -> Packet:
        """A copy with its own metadata and its own bytes (``data`` if given, else a copy of ours)."""
        # every field spelled out: copy.copy costs ~20 us a call, and GSO clones once per segment
        return Packet(
            bytearray(self.data) if data is None else data,
            self.protocol,
            self.inner_protocol,
            self.mac_header,
            self.network_header,
            self.transport_header,
            self.inner_mac_header,
            self.inner_network_header,
            self.inner_transport_header,
            self.mac_len,
            self.vlan_tci,
            self.vlan_proto,
            self.gso_size,
            self.gso_type,
            self.gso_segs,
            self.ip_summed,
            self.csum_start,
            self.csum_offset,
            self.encapsulation,
            self.ip6_frag_id,
            dict(self.extras),
            self.inner_protocol_type,
            self.inner_ipproto,
            self.encap_hdr_csum,
            self.remcsum_offload,
        )

    def reset_inner_headers(self) -> None:
        """skb_reset_inner_headers: the inner offsets become this level's mac/network/transport."""
        self.inner_mac_header = self.mac_header
        self.inner_network_header = self.network_header or 0
        self.inner_transport_header = self.transport_header or 0

    def reset_mac_len(self) -> None:
        """skb_reset_mac_len: mac_len = network_header - mac_header."""
        self.mac_len = (self.network_header or 0) - self.mac_header

    def insert(self, offset: int, chunk: bytes) -> None:
        """Insert bytes at ``offset``; every header offset at or past it moves with the bytes."""
        self.data[offset:offset] = chunk
        self._shift_offsets(offset, len(chunk))

    def remove(self, offset: int, length: int) -> None:
        """Remove ``length`` bytes at ``offset``; header offsets past them move back."""
        del self.data[offset : offset + length]
        self._shift_offsets(offset + length, -length)

    def _shift_offsets(self, at: int, delta: int) -> None:
        # an unset network/transport header is None; an unset inner one is 0 (never moved)
        if self.network_header is not None and self.network_header >= at:
            self.network_header += delta
        if self.transport_header is not None and self.transport_header >= at:
            self.transport_header += delta
        if self.inner_mac_header and self.inner_mac_header >= at:
            self.inner_mac_header += delta
        if self.inner_network_header and self.inner_network_header >= at:
            self.inner_network_header += delta
        if self.inner_transport_header and self.inner_transport_header >= at:
            self.inner_transport_header += delta
        if self.ip_summed == IpSummed.PARTIAL and self.csum_start >= at:
            self.csum_start += delta

    def vlan_push_inside(self) -> None:
        """Put the out-of-band tag into the bytes after the MAC addresses (__vlan_hwaccel_push_inside)."""
        if self.vlan_tci is None:
            return
        tag = self.vlan_proto.to_bytes(2, "big") + self.vlan_tci.to_bytes(2, "big")
        self.insert(2 * 6, tag)
        self.protocol = self.vlan_proto
        self.vlan_tci = None
        self.vlan_proto = 0


KERNEL_KEY = "kernel"  # Packet.extras: the generation whose rules the packet's later steps follow


def kernel_of(skb: Packet) -> str:
    """The kernel generation a packet was built under (virtio_net_hdr_to_skb and a capture's
    packet_from_capture record it; default 6.1)."""
    return str(skb.extras.get(KERNEL_KEY, "6.1"))


__all__ = ["ENCAP_TYPE_ETHER", "ENCAP_TYPE_IPPROTO", "KERNEL_KEY", "Packet", "kernel_of"]
