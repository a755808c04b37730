"""MPLS and VLAN actions with the kernel's skb contract (skb_mpls_push & co. in net/core/skbuff.c,
as tc act_mpls / act_vlan and Open vSwitch call them).

``push_mpls`` records ``inner_protocol`` and ``inner_network_header`` on the first push only, puts
the label after the link-layer header (``mac_len`` bytes), rewrites the Ethernet type and sets
``protocol``; later pushes only grow the stack. ``push_vlan`` keeps the outermost tag out of band,
as skb_vlan_push does, moving a tag already there into the bytes first.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .constants import (
    ETH_HLEN,
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_MPLS_UC,
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
from .errors import ActionError, UsageError
from .packet import Packet


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
        skb.mac_len += VLAN_HLEN
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


VLAN_PROTOCOLS = {"8021q": ETH_P_8021Q, "802.1q": ETH_P_8021Q, "8021ad": ETH_P_8021AD, "802.1ad": ETH_P_8021AD}


# --- the --action pipeline -----------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One parsed ``--action`` step; calling it applies it to a packet."""

    text: str
    kind: str
    args: tuple[int | None, ...]

    def __call__(self, skb: Packet) -> None:
        if self.kind == "push-mpls":
            label, tc, ttl, ethertype = self.args
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


ACTION_SYNTAX = {
    "push-mpls": "push-mpls:LABEL[:TC[:TTL[:uc|mc]]]",
    "pop-mpls": "pop-mpls[:ETHERTYPE] (default 0x0800; ipv4, ipv6 or a number)",
    "set-mpls": "set-mpls:[LABEL]:[TC]:[TTL] (empty keeps the field)",
    "dec-ttl": "dec-ttl",
    "push-vlan": "push-vlan:VID[:PCP[:8021q|8021ad]]",
    "pop-vlan": "pop-vlan",
}


def _number(text: str, what: str, spec: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise UsageError(f"action {spec!r}: {what} {text!r} is not a number") from None


def parse_action(spec: str) -> Action:
    """Parse one ``--action`` string (see :data:`ACTION_SYNTAX`)."""
    from .constants import ETH_P_IP, ETH_P_IPV6, ETH_P_MPLS_MC

    kind, _, rest = spec.strip().partition(":")
    kind = kind.lower()
    fields = rest.split(":") if rest else []
    if kind not in ACTION_SYNTAX:
        raise UsageError(f"unknown action {spec!r}; actions: {', '.join(ACTION_SYNTAX.values())}")
    try:
        if kind == "push-mpls":
            if not 1 <= len(fields) <= 4:
                raise UsageError(f"action {spec!r}: expected {ACTION_SYNTAX[kind]}")
            label = _number(fields[0], "label", spec)
            tc = _number(fields[1], "TC", spec) if len(fields) > 1 and fields[1] else 0
            ttl = _number(fields[2], "TTL", spec) if len(fields) > 2 and fields[2] else 64
            cast = fields[3].lower() if len(fields) > 3 else "uc"
            if cast not in ("uc", "mc"):
                raise UsageError(f"action {spec!r}: last field must be uc or mc")
            check_label_values(label, tc, ttl)
            return Action(spec, kind, (label, tc, ttl, ETH_P_MPLS_UC if cast == "uc" else ETH_P_MPLS_MC))
        if kind == "pop-mpls":
            names = {"ipv4": ETH_P_IP, "ip": ETH_P_IP, "ipv6": ETH_P_IPV6, "mpls": ETH_P_MPLS_UC, "mpls_uc": ETH_P_MPLS_UC,
                     "mpls_mc": ETH_P_MPLS_MC}
            value = fields[0].lower() if fields else "ipv4"
            ethertype = names[value] if value in names else _number(value, "ethertype", spec)
            return Action(spec, kind, (ethertype,))
        if kind == "set-mpls":
            values = [(_number(f, "field", spec) if f not in ("", "-") else None) for f in fields] + [None] * 3
            return Action(spec, kind, tuple(values[:3]))
        if kind == "push-vlan":
            if not 1 <= len(fields) <= 3:
                raise UsageError(f"action {spec!r}: expected {ACTION_SYNTAX[kind]}")
            vid = _number(fields[0], "VLAN id", spec)
            pcp = _number(fields[1], "priority", spec) if len(fields) > 1 and fields[1] else 0
            proto_name = fields[2].lower() if len(fields) > 2 else "8021q"
            if proto_name not in VLAN_PROTOCOLS:
                raise UsageError(f"action {spec!r}: VLAN protocol must be 8021q or 8021ad")
            if not 0 <= vid <= 4095 or not 0 <= pcp <= 7:
                raise UsageError(f"action {spec!r}: VLAN id 0..4095 and priority 0..7")
            return Action(spec, kind, (vid, pcp, VLAN_PROTOCOLS[proto_name]))
        if fields:
            raise UsageError(f"action {spec!r} takes no arguments")
        return Action(spec, kind, ())
    except UsageError:
        raise
