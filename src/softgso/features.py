"""Netdev feature flags, GSO type flags and device profiles (Linux 6.1 values).

The kernel's invariant ``NETIF_F_<x> == SKB_GSO_<x> << NETIF_F_GSO_SHIFT`` holds here too, which
is what makes :func:`net_gso_ok` a shift and a mask.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

from .errors import UsageError
from .valueclass import FrozenValueClass, init_fields


class GsoType(IntFlag):
    """SKB_GSO_* (include/linux/skbuff.h, Linux 6.1)."""

    NONE = 0
    TCPV4 = 1 << 0
    DODGY = 1 << 1
    TCP_ECN = 1 << 2
    TCP_FIXEDID = 1 << 3
    TCPV6 = 1 << 4
    FCOE = 1 << 5
    GRE = 1 << 6
    GRE_CSUM = 1 << 7
    IPXIP4 = 1 << 8
    IPXIP6 = 1 << 9
    UDP_TUNNEL = 1 << 10
    UDP_TUNNEL_CSUM = 1 << 11
    PARTIAL = 1 << 12
    TUNNEL_REMCSUM = 1 << 13
    SCTP = 1 << 14
    ESP = 1 << 15
    UDP = 1 << 16
    UDP_L4 = 1 << 17
    FRAGLIST = 1 << 18
    # mainline (from 6.18, 3271f19bf7b9 "net: gso: restore ids of outer ip headers correctly"): bit 3
    # becomes a feature alias only, and fixed IDs are asked for per header level
    TCP_FIXEDID_OUTER = 1 << 30  # mainline's SKB_GSO_TCP_FIXEDID: the outer (or only) IPv4 header
    TCP_FIXEDID_INNER = 1 << 31  # SKB_GSO_TCP_FIXEDID_INNER: the IPv4 header of an encapsulated level


# either mainline bit maps onto NETIF_F_TSO_MANGLEID (net_gso_ok: gso_type |= __SKB_GSO_TCP_FIXEDID)
GSO_FIXEDID_SPLIT = GsoType.TCP_FIXEDID_OUTER | GsoType.TCP_FIXEDID_INNER


NETIF_F_GSO_SHIFT = 16
NETIF_F_GSO_LAST_BIT = NETIF_F_GSO_SHIFT + 18  # GSO_FRAGLIST in 6.1


class NetdevFeature(IntFlag):
    """NETIF_F_* (include/linux/netdev_features.h, Linux 6.1)."""

    NONE = 0
    SG = 1 << 0
    IP_CSUM = 1 << 1
    HW_CSUM = 1 << 3
    IPV6_CSUM = 1 << 4
    HIGHDMA = 1 << 5
    FRAGLIST = 1 << 6
    HW_VLAN_CTAG_TX = 1 << 7
    HW_VLAN_CTAG_RX = 1 << 8
    HW_VLAN_CTAG_FILTER = 1 << 9
    VLAN_CHALLENGED = 1 << 10
    GSO = 1 << 11
    LLTX = 1 << 12
    NETNS_LOCAL = 1 << 13
    GRO = 1 << 14
    LRO = 1 << 15
    TSO = 1 << 16
    GSO_ROBUST = 1 << 17
    TSO_ECN = 1 << 18
    TSO_MANGLEID = 1 << 19
    TSO6 = 1 << 20
    FSO = 1 << 21
    GSO_GRE = 1 << 22
    GSO_GRE_CSUM = 1 << 23
    GSO_IPXIP4 = 1 << 24
    GSO_IPXIP6 = 1 << 25
    GSO_UDP_TUNNEL = 1 << 26
    GSO_UDP_TUNNEL_CSUM = 1 << 27
    GSO_PARTIAL = 1 << 28
    GSO_TUNNEL_REMCSUM = 1 << 29
    GSO_SCTP = 1 << 30
    GSO_ESP = 1 << 31
    GSO_UDP = 1 << 32
    GSO_UDP_L4 = 1 << 33
    GSO_FRAGLIST = 1 << 34
    FCOE_CRC = 1 << 35
    SCTP_CRC = 1 << 36
    FCOE_MTU = 1 << 37
    NTUPLE = 1 << 38
    RXHASH = 1 << 39
    RXCSUM = 1 << 40
    NOCACHE_COPY = 1 << 41
    LOOPBACK = 1 << 42
    RXFCS = 1 << 43
    RXALL = 1 << 44
    HW_VLAN_STAG_TX = 1 << 45
    HW_VLAN_STAG_RX = 1 << 46
    HW_VLAN_STAG_FILTER = 1 << 47


F = NetdevFeature
NETIF_F_CSUM_MASK = F.IP_CSUM | F.IPV6_CSUM | F.HW_CSUM
NETIF_F_ALL_TSO = F.TSO | F.TSO6 | F.TSO_ECN | F.TSO_MANGLEID
NETIF_F_GSO_SOFTWARE = NETIF_F_ALL_TSO | F.GSO_SCTP | F.GSO_UDP_L4 | F.GSO_FRAGLIST
NETIF_F_GSO_ENCAP_ALL = (
    F.GSO_GRE | F.GSO_GRE_CSUM | F.GSO_IPXIP4 | F.GSO_IPXIP6 | F.GSO_UDP_TUNNEL | F.GSO_UDP_TUNNEL_CSUM
)
NETIF_F_GSO_MASK = NetdevFeature(((1 << (NETIF_F_GSO_LAST_BIT + 1)) - 1) & ~((1 << NETIF_F_GSO_SHIFT) - 1))
NETIF_F_VLAN_TX = F.HW_VLAN_CTAG_TX | F.HW_VLAN_STAG_TX


class IpSummed(IntEnum):
    """skb->ip_summed."""

    NONE = 0
    UNNECESSARY = 1
    COMPLETE = 2
    PARTIAL = 3


_GSO_FIXEDID_SPLIT = int(GSO_FIXEDID_SPLIT)


def net_gso_ok(features: int, gso_type: int) -> bool:
    """Every bit of gso_type must be offered as a feature (the kernel's net_gso_ok)."""
    gso_type = int(gso_type)
    if gso_type & _GSO_FIXEDID_SPLIT:  # mainline: both fixed-ID bits ask for TSO_MANGLEID alone
        gso_type = (gso_type & ~_GSO_FIXEDID_SPLIT) | int(GsoType.TCP_FIXEDID)
    wanted = gso_type << NETIF_F_GSO_SHIFT
    return (int(features) & wanted) == wanted


def netdev_intersect_features(f1: NetdevFeature, f2: NetdevFeature) -> NetdevFeature:
    """HW_CSUM on one side stands for IP_CSUM|IPV6_CSUM (the kernel's netdev_intersect_features)."""
    return NetdevFeature(intersect_feature_bits(int(f1), int(f2)))


_HW_CSUM = int(F.HW_CSUM)
_IP_CSUM_OR_IPV6_CSUM = int(F.IP_CSUM | F.IPV6_CSUM)


def intersect_feature_bits(f1: int, f2: int) -> int:
    """:func:`netdev_intersect_features` on plain ints (IntFlag arithmetic is slow per packet)."""
    if (f1 ^ f2) & _HW_CSUM:
        if f1 & _HW_CSUM:
            f1 |= _IP_CSUM_OR_IPV6_CSUM
        else:
            f2 |= _IP_CSUM_OR_IPV6_CSUM
    return f1 & f2


def parse_features(text: str | int | list[str]) -> NetdevFeature:
    """Features from an int, a list of names, or names joined by '|' (with or without NETIF_F_)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if not 0 <= text < 1 << 64:
            raise UsageError(f"netdev features {text} out of range 0..2^64-1")
        return NetdevFeature(text)
    if isinstance(text, list) and all(isinstance(n, str) for n in text):
        names = text
    elif isinstance(text, str):
        names = text.replace(",", "|").split("|")
    else:
        raise UsageError(f"netdev features must be a number, a list of names or 'A|B' names, not {text!r}")
    masks = {
        "CSUM_MASK": NETIF_F_CSUM_MASK,
        "ALL_TSO": NETIF_F_ALL_TSO,
        "GSO_SOFTWARE": NETIF_F_GSO_SOFTWARE,
        "GSO_ENCAP_ALL": NETIF_F_GSO_ENCAP_ALL,
        "VLAN_TX": NETIF_F_VLAN_TX,
    }
    value = NetdevFeature.NONE
    for raw in names:
        name = raw.strip().upper().removeprefix("NETIF_F_")
        if not name:
            continue
        if name in masks:
            value |= masks[name]
        elif name in NetdevFeature.__members__:
            value |= NetdevFeature[name]
        else:
            raise UsageError(f"unknown netdev feature {raw.strip()!r}")
    return value


def feature_names(features: NetdevFeature) -> list[str]:
    """The NETIF_F_* names of the bits set, lowest bit first."""
    return [m.name for m in NetdevFeature if m.value and (features & m) == m and m.name]


class DeviceProfile(FrozenValueClass):
    """What the egress device can do, as net_device keeps it."""

    name: str
    features: NetdevFeature
    mpls_features: NetdevFeature
    vlan_features: NetdevFeature
    hw_enc_features: NetdevFeature
    gso_partial_features: NetdevFeature
    mtu: int
    gso_max_size: int
    gso_max_segs: int
    description: str  # not compared (COMPARE_EXCLUDED)
    # ndo_features_check: "" (dflt_features_check: vlan_features_check), "passthru" (passthru_features_check,
    # veth's: no check at all) or "vxlan-port" (a driver that offloads only VXLAN to its configured UDP port,
    # as be2net's be_features_check does)
    features_check: str
    vxlan_port: int
    COMPARE_EXCLUDED = frozenset({"description"})

    def __init__(self, name: str, features: NetdevFeature, mpls_features: NetdevFeature,
                 vlan_features: NetdevFeature, hw_enc_features: NetdevFeature = NetdevFeature.NONE,
                 gso_partial_features: NetdevFeature = NetdevFeature.NONE, mtu: int = 1500,
                 gso_max_size: int = 65536, gso_max_segs: int = 65535, description: str = "",
                 features_check: str = "", vxlan_port: int = 4789) -> None:
        init_fields(self, locals())

    def with_overrides(self, **changes: object) -> DeviceProfile:
        """A copy with some fields replaced (e.g. mtu from --mtu)."""
        return self.replace(**changes)


# veth (drivers/net/veth.c): the device the kernel vectors were captured on.
_VETH_FEATURES = (
    F.SG | F.FRAGLIST | F.HW_CSUM | F.RXCSUM | F.SCTP_CRC | F.HIGHDMA | NETIF_F_GSO_SOFTWARE | NETIF_F_GSO_ENCAP_ALL
)
_VETH_ALWAYS = F.LLTX | F.GSO | F.HW_VLAN_CTAG_TX | F.HW_VLAN_STAG_TX
_VETH_MPLS = F.HW_CSUM | NETIF_F_GSO_SOFTWARE
_NO_CSUM_OR_TSO = ~(NETIF_F_CSUM_MASK | NETIF_F_ALL_TSO | F.GSO_UDP_L4 | F.SCTP_CRC)

_NIC_PLAIN = (
    F.SG | F.IP_CSUM | F.IPV6_CSUM | F.HIGHDMA | F.TSO | F.TSO6 | F.TSO_ECN | F.RXCSUM | F.GSO | F.GRO
    | F.HW_VLAN_CTAG_TX | F.HW_VLAN_CTAG_RX
)

PROFILES: dict[str, DeviceProfile] = {
    p.name: p
    for p in (
        DeviceProfile(
            "no-offload",
            features=(_VETH_FEATURES | _VETH_ALWAYS) & _NO_CSUM_OR_TSO,
            mpls_features=_VETH_MPLS,
            vlan_features=_VETH_FEATURES,
            hw_enc_features=_VETH_FEATURES,
            features_check="passthru",
            description="no checksum offload, no TSO (ethtool tx off tso off): software GSO, full checksums",
        ),
        DeviceProfile(
            "csum",
            features=(_VETH_FEATURES | _VETH_ALWAYS) & ~(NETIF_F_ALL_TSO | F.GSO_UDP_L4),
            mpls_features=_VETH_MPLS,
            vlan_features=_VETH_FEATURES,
            hw_enc_features=_VETH_FEATURES,
            features_check="passthru",
            description="checksum offload, no TSO (tx on tso off): software GSO, L4 checksums left partial",
        ),
        DeviceProfile(
            "tso",
            features=_VETH_FEATURES | _VETH_ALWAYS,
            mpls_features=_VETH_MPLS,
            vlan_features=_VETH_FEATURES,
            hw_enc_features=_VETH_FEATURES,
            features_check="passthru",
            description="checksum offload and TSO/USO, also under MPLS (veth defaults): GSO packets leave whole",
        ),
        DeviceProfile(
            "nic-tso-no-mpls-gso",
            features=_NIC_PLAIN,
            mpls_features=NetdevFeature.NONE,
            vlan_features=F.SG | F.IP_CSUM | F.IPV6_CSUM | F.TSO | F.TSO6 | F.HIGHDMA,
            description="the usual NIC: TSO and IP checksum offload, empty mpls_features (MPLS is segmented in software)",
        ),
        DeviceProfile(
            "nic-mpls-tso",
            # MPLS checksum offload needs HW_CSUM (can_checksum_protocol); the kernel drops IP_CSUM beside it
            features=(_NIC_PLAIN & ~(F.IP_CSUM | F.IPV6_CSUM)) | F.HW_CSUM,
            mpls_features=F.SG | F.HW_CSUM | F.TSO | F.TSO6,
            vlan_features=F.SG | F.IP_CSUM | F.IPV6_CSUM | F.TSO | F.TSO6 | F.HIGHDMA,
            description="a NIC whose driver fills mpls_features with TSO and HW_CSUM: MPLS GSO in hardware",
        ),
        DeviceProfile(
            "nic-vxlan-tso",
            # be2net with VXLAN offloads on (be_enable_vxlan_offloads): TSO inside VXLAN to its port
            # only; be_features_check strips checksum and GSO from every other UDP tunnel (Geneve)
            features=_NIC_PLAIN | F.GSO_UDP_TUNNEL,
            mpls_features=NetdevFeature.NONE,
            vlan_features=F.SG | F.IP_CSUM | F.IPV6_CSUM | F.TSO | F.TSO6 | F.HIGHDMA,
            hw_enc_features=F.SG | F.IP_CSUM | F.IPV6_CSUM | F.TSO | F.TSO6 | F.GSO_UDP_TUNNEL,
            features_check="vxlan-port",
            description="a NIC with VXLAN TSO (port 4789, no outer UDP checksum) but not Geneve or GRE "
                        "(be2net): other tunnels are segmented in software",
        ),
    )
}
DEFAULT_PROFILE = "no-offload"


def profile_from_mapping(fields: object, source: str, name: str) -> DeviceProfile:
    """A DeviceProfile from a profile file's decoded table: ``base`` (a profile name, default no-offload),
    ``name`` (default ``name``) and any DeviceProfile field, checked as the kernel bounds a net_device.
    ``source`` names the table in the UsageError that refuses it."""
    if not isinstance(fields, dict):
        raise UsageError(f"device profile {source}: expected a table of DeviceProfile fields, got {type(fields).__name__}")
    raw = dict(fields)
    base_name = raw.pop("base", DEFAULT_PROFILE)
    if not isinstance(base_name, str) or base_name not in PROFILES:
        raise UsageError(f"device profile {source}: base {base_name!r} is not one of {', '.join(PROFILES)}")
    base = PROFILES[base_name]
    changes: dict[str, object] = {"name": str(raw.pop("name", name))}
    for key, value in raw.items():
        if key in ("features", "mpls_features", "vlan_features", "hw_enc_features", "gso_partial_features"):
            changes[key] = parse_features(value)
        elif key in _PROFILE_LIMITS:
            low, high = _PROFILE_LIMITS[key]
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise UsageError(f"device profile {source}: {key} must be an integer in {low}..{high}, not {value!r}")
            changes[key] = value
        elif key == "description":
            changes[key] = str(value)
        elif key == "features_check":
            if value not in FEATURES_CHECKS:
                raise UsageError(f"device profile {source}: features_check must be one of "
                                 f"{', '.join(repr(c) for c in FEATURES_CHECKS)}, not {value!r}")
            changes[key] = value
        else:
            raise UsageError(f"device profile {source}: unknown key {key!r}")
    return base.with_overrides(**changes)


# ndo_features_check kinds (DeviceProfile.features_check): dflt_features_check, veth's passthru, be2net's
FEATURES_CHECKS = ("", "passthru", "vxlan-port")
# what the kernel lets a net_device have (dev_validate_mtu for Ethernet; netif_set_tso_max_size;
# GSO_MAX_SEGS), the ranges a profile file may set
_PROFILE_LIMITS = {"mtu": (68, 65535), "gso_max_size": (1, 524280), "gso_max_segs": (1, 65535)}


__all__ = [
    "DEFAULT_PROFILE",
    "NETIF_F_ALL_TSO",
    "NETIF_F_CSUM_MASK",
    "NETIF_F_GSO_ENCAP_ALL",
    "NETIF_F_GSO_LAST_BIT",
    "NETIF_F_GSO_MASK",
    "NETIF_F_GSO_SHIFT",
    "NETIF_F_GSO_SOFTWARE",
    "NETIF_F_VLAN_TX",
    "PROFILES",
    "DeviceProfile",
    "GsoType",
    "IpSummed",
    "NetdevFeature",
    "feature_names",
    "intersect_feature_bits",
    "net_gso_ok",
    "netdev_intersect_features",
    "parse_features",
    "profile_from_mapping",
]
