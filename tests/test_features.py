"""Netdev feature flags, GSO type flags and device profiles (spec §2, §4.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from softgso.errors import UsageError
from softgso.features import GsoType, NetdevFeature, net_gso_ok
from softgso.io.profile import load_profile


def test_feature_bits_mirror_gso_bits() -> None:
    assert NetdevFeature.TSO == GsoType.TCPV4 << 16 and NetdevFeature.GSO_UDP_L4 == GsoType.UDP_L4 << 16
    assert net_gso_ok(NetdevFeature.TSO | NetdevFeature.GSO_ROBUST, GsoType.TCPV4 | GsoType.DODGY)
    assert not net_gso_ok(NetdevFeature.TSO, GsoType.TCPV4 | GsoType.DODGY)


# spec 2.1: include/linux/skbuff.h's SKB_GSO_* values, copied from the table
SKB_GSO = {"TCPV4": 0x00001, "DODGY": 0x00002, "TCP_ECN": 0x00004, "TCP_FIXEDID": 0x00008, "TCPV6": 0x00010,
           "FCOE": 0x00020, "GRE": 0x00040, "GRE_CSUM": 0x00080, "IPXIP4": 0x00100, "IPXIP6": 0x00200,
           "UDP_TUNNEL": 0x00400, "UDP_TUNNEL_CSUM": 0x00800, "PARTIAL": 0x01000, "TUNNEL_REMCSUM": 0x02000,
           "SCTP": 0x04000, "ESP": 0x08000, "UDP": 0x10000, "UDP_L4": 0x20000, "FRAGLIST": 0x40000}
# spec 2.2: the non-GSO netdev feature bits and the GSO bit each SKB_GSO_* bit maps to
NETIF_F_BITS = {"SG": 0, "IP_CSUM": 1, "HW_CSUM": 3, "IPV6_CSUM": 4, "HIGHDMA": 5, "FRAGLIST": 6,
                "HW_VLAN_CTAG_TX": 7, "VLAN_CHALLENGED": 10, "GSO": 11, "GRO": 14, "LRO": 15}
NETIF_F_GSO_OF = {"TSO": "TCPV4", "GSO_ROBUST": "DODGY", "TSO_ECN": "TCP_ECN", "TSO_MANGLEID": "TCP_FIXEDID",
                  "TSO6": "TCPV6", "FSO": "FCOE", "GSO_GRE": "GRE", "GSO_GRE_CSUM": "GRE_CSUM",
                  "GSO_IPXIP4": "IPXIP4", "GSO_IPXIP6": "IPXIP6", "GSO_UDP_TUNNEL": "UDP_TUNNEL",
                  "GSO_UDP_TUNNEL_CSUM": "UDP_TUNNEL_CSUM", "GSO_PARTIAL": "PARTIAL",
                  "GSO_TUNNEL_REMCSUM": "TUNNEL_REMCSUM", "GSO_SCTP": "SCTP", "GSO_ESP": "ESP", "GSO_UDP": "UDP",
                  "GSO_UDP_L4": "UDP_L4", "GSO_FRAGLIST": "FRAGLIST"}


@pytest.mark.parametrize("name", sorted(SKB_GSO))
def test_gso_type_bits_are_the_kernels(name: str) -> None:
    assert GsoType[name] == SKB_GSO[name]


@pytest.mark.parametrize("name", sorted(NETIF_F_BITS))
def test_netdev_feature_bits_are_the_kernels(name: str) -> None:
    assert NetdevFeature[name] == 1 << NETIF_F_BITS[name]


@pytest.mark.parametrize("name", sorted(NETIF_F_GSO_OF))
def test_every_gso_feature_is_its_gso_type_shifted_by_16(name: str) -> None:
    assert NetdevFeature[name] == SKB_GSO[NETIF_F_GSO_OF[name]] << 16


# --- device profile files: a broken one is a usage error, never a crash (the fuzz pass found these) -----


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ("null", ".json", "expected a table"),  # was: AttributeError
        ("[]", ".json", "expected a table"),  # was: TypeError
        ('{"base": "nope"}', ".json", "base 'nope'"),  # was: KeyError
        ('{"base": ["tso"]}', ".json", "base"),  # was: TypeError (unhashable)
        ('{"mtu": "big"}', ".json", "mtu must be an integer"),  # was: ValueError from int()
        ('{"mtu": null}', ".json", "mtu must be an integer"),  # was: TypeError from int()
        ('{"mtu": 1e9}', ".json", "mtu must be an integer"),  # was: accepted as 1000000000
        ('{"mtu": -1}', ".json", "mtu must be an integer in 68..65535"),  # was: accepted
        ('{"features": 1.5}', ".json", "netdev features must be"),  # was: AttributeError
        ('{"features": {"TSO": 1}}', ".json", "netdev features must be"),  # was: AttributeError
        ('{"features": [1, 2]}', ".json", "netdev features must be"),  # was: AttributeError
        ('{"features": -1}', ".json", "out of range"),  # was: accepted as all bits
        ("features = 1.5", ".toml", "netdev features must be"),
        ("= broken", ".toml", "cannot read device profile"),
    ],
)
def test_a_broken_device_profile_file_is_a_usage_error(tmp_path: Path, text: str, suffix: str, message: str) -> None:
    path = tmp_path / f"profile{suffix}"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_profile(str(path))


def test_a_valid_device_profile_file_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "jumbo.json"
    path.write_text('{"base": "tso", "mtu": 9000, "features": "SG|HW_CSUM|TSO", "gso_max_segs": "64"}')
    profile = load_profile(str(path))
    assert (profile.name, profile.mtu, profile.gso_max_segs) == ("jumbo", 9000, 64)


def test_a_profile_file_names_its_features_check(tmp_path: Path) -> None:
    # the veth profiles run passthru_features_check; a NIC's file based on one asks for dflt_features_check
    path = tmp_path / "nic.json"
    path.write_text('{"base": "tso", "name": "my-nic", "features_check": ""}')
    assert load_profile(str(path)).features_check == ""
    path.write_text('{"base": "tso", "features_check": "magic"}')
    with pytest.raises(UsageError, match="features_check"):
        load_profile(str(path))
