"""Options of `softgso datapath` and the TAP offload mapping (no root needed)."""

from __future__ import annotations

import pytest

from softgso.datapath.run import DatapathOptions, parse_labels, parse_size
from softgso.datapath.tap import TUN_F_CSUM, TUN_F_TSO, TUN_F_TSO4, TUN_F_USO, tap_profile
from softgso.errors import UsageError
from softgso.features import NetdevFeature as F


def test_labels_are_listed_top_of_stack_first() -> None:
    assert parse_labels("100, 200") == (100, 200)
    with pytest.raises(UsageError):
        parse_labels("x")


def test_sizes_take_binary_suffixes() -> None:
    assert parse_size("64M") == 64 << 20
    assert parse_size("1G") == 1 << 30
    assert parse_size("1500") == 1500
    with pytest.raises(UsageError):
        parse_size("-1M")


def test_reserved_labels_are_refused() -> None:
    with pytest.raises(UsageError, match="reserved"):
        DatapathOptions(labels=(3,)).validate()


def test_return_stack_defaults_to_each_label_plus_one() -> None:
    assert DatapathOptions(labels=(100, 2000)).back_labels == (101, 2001)


def test_link_mtu_leaves_room_for_the_label_stack() -> None:
    options = DatapathOptions(labels=(100, 200, 300), mtu=1500)
    assert options.link_device("sw-gso").mtu == 1512
    assert not options.link_device("sw-gso").mpls_features & F.TSO
    assert options.link_device("hw-gso").mpls_features & F.TSO


def test_no_gso_mode_turns_the_tap_offloads_off() -> None:
    assert DatapathOptions.tap_offloads("no-gso") == 0
    assert DatapathOptions.tap_offloads("sw-gso") & TUN_F_TSO4


def test_tap_offloads_map_to_netdev_features_as_tun_set_offload_does() -> None:
    assert tap_profile("t", 0, 1500).features & (F.HW_CSUM | F.TSO | F.TSO6 | F.GSO_UDP_L4) == 0
    assert tap_profile("t", TUN_F_CSUM, 1500).features & F.HW_CSUM
    full = tap_profile("t", TUN_F_TSO | TUN_F_USO, 1500).features
    assert full & (F.TSO | F.TSO6 | F.GSO_UDP_L4) == F.TSO | F.TSO6 | F.GSO_UDP_L4
    # TSO bits without TUN_F_CSUM are meaningless to tun
    assert not tap_profile("t", TUN_F_TSO4, 1500).features & F.TSO
