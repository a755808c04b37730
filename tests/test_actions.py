"""MPLS and VLAN actions keep the kernel's skb contract (spec §3.3, §10)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from softgso.actions import (
    Action,
    DecTtl,
    PopMpls,
    PopVlan,
    PushMpls,
    PushVlan,
    SetMpls,
    apply_action,
    dec_ttl,
    pop_mpls,
    pop_vlan,
    push_mpls,
    push_vlan,
    set_mpls,
)
from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.constants import ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_MPLS_MC, ETH_P_MPLS_UC
from softgso.errors import ActionError, UsageError
from softgso.packet import KERNEL_KEY, Packet
from softgso.prepare import packet_from_capture

FRAME = build_frame(SuperPacketSpec(payload=bytes(100)))


def test_push_mpls_matches_the_spec_example() -> None:
    skb = Packet.from_ethernet(FRAME)
    push_mpls(skb, 100, 0, 64)
    assert bytes(skb.data[12:18]) == bytes.fromhex("8847") + bytes.fromhex("00064140")
    assert bytes(skb.data[18:]) == FRAME[14:]
    assert (skb.protocol, skb.inner_protocol) == (ETH_P_MPLS_UC, ETH_P_IP)
    assert (skb.mac_header, skb.network_header, skb.mac_len, skb.inner_network_header) == (0, 14, 14, 18)


def test_second_push_leaves_inner_headers_and_clears_s_bit() -> None:
    skb = Packet.from_ethernet(FRAME)
    push_mpls(skb, 100, 0, 64)
    push_mpls(skb, 200, 5, 33, ETH_P_MPLS_MC)
    top, bottom = int.from_bytes(skb.data[14:18], "big"), int.from_bytes(skb.data[18:22], "big")
    assert (top >> 12, (top >> 9) & 7, (top >> 8) & 1, top & 0xFF) == (200, 5, 0, 33)
    assert (bottom >> 12, (bottom >> 8) & 1) == (100, 1)
    assert skb.inner_network_header == 22 and skb.inner_protocol == ETH_P_IP
    assert skb.protocol == ETH_P_MPLS_MC and bytes(skb.data[12:14]) == b"\x88\x48"


def test_label_3_cannot_be_pushed() -> None:
    with pytest.raises(UsageError, match="implicit null"):
        push_mpls(Packet.from_ethernet(FRAME), 3)
    with pytest.raises(UsageError, match="implicit null"):
        apply_action(Packet.from_ethernet(FRAME), PushMpls(3))


def test_pop_restores_the_ethertype_and_bytes() -> None:
    skb = Packet.from_ethernet(FRAME)
    push_mpls(skb, 100, 0, 64)
    pop_mpls(skb, ETH_P_IP)
    assert bytes(skb.data) == FRAME and skb.protocol == ETH_P_IP


def test_pop_on_a_non_mpls_packet_is_a_no_op() -> None:
    skb = Packet.from_ethernet(FRAME)
    pop_mpls(skb, ETH_P_IP)
    assert bytes(skb.data) == FRAME


def test_set_mpls_and_dec_ttl_touch_only_the_top_label() -> None:
    skb = Packet.from_ethernet(FRAME)
    push_mpls(skb, 100, 0, 2)
    set_mpls(skb, label=4000)
    dec_ttl(skb)
    word = int.from_bytes(skb.data[14:18], "big")
    assert (word >> 12, word & 0xFF, (word >> 8) & 1) == (4000, 1, 1)
    with pytest.raises(ActionError, match="reach 0"):
        dec_ttl(skb)


def test_dec_ttl_on_a_non_mpls_packet_is_refused() -> None:
    with pytest.raises(ActionError, match="not MPLS"):
        dec_ttl(Packet.from_ethernet(FRAME))


def test_push_vlan_keeps_the_tag_out_of_band_and_moves_an_older_one_in() -> None:
    skb = Packet.from_ethernet(FRAME)
    push_vlan(skb, 42, 5)
    assert skb.vlan_tci == (5 << 13) | 42 and bytes(skb.data) == FRAME
    push_vlan(skb, 1000, 3, ETH_P_8021AD)
    assert bytes(skb.data[12:16]) == bytes.fromhex("8100") + ((5 << 13) | 42).to_bytes(2, "big")
    assert (skb.vlan_proto, skb.protocol, skb.mac_len) == (ETH_P_8021AD, ETH_P_8021Q, 18)


def test_push_then_pop_vlan_round_trips() -> None:
    skb = Packet.from_ethernet(FRAME)
    push_vlan(skb, 42, 5)
    push_vlan(skb, 7, 1)
    pop_vlan(skb)
    pop_vlan(skb)
    assert bytes(skb.data) == FRAME and not skb.vlan_tag_present


def _applied(action: Action) -> Packet:
    skb = Packet.from_ethernet(FRAME)
    push_mpls(skb, 100, 1, 9)
    apply_action(skb, action)
    return skb


def _called(function: Callable[[Packet], None]) -> Packet:
    skb = Packet.from_ethernet(FRAME)
    push_mpls(skb, 100, 1, 9)
    function(skb)
    return skb


@pytest.mark.parametrize("action, function", [
    (PushMpls(200, 5, 33), lambda skb: push_mpls(skb, 200, 5, 33)),
    (PushMpls(200, multicast=True), lambda skb: push_mpls(skb, 200, 0, 64, ETH_P_MPLS_MC)),
    (PopMpls(ETH_P_IP), lambda skb: pop_mpls(skb, ETH_P_IP)),
    (SetMpls(ttl=7), lambda skb: set_mpls(skb, ttl=7)),
    (SetMpls(label=300, tc=2), lambda skb: set_mpls(skb, label=300, tc=2)),
    (DecTtl(), dec_ttl),
    (PushVlan(42, 5, ETH_P_8021AD), lambda skb: push_vlan(skb, 42, 5, ETH_P_8021AD)),
    (PopVlan(), pop_vlan),
])
def test_an_action_value_does_what_its_kernel_function_does(action: Action, function: Callable[[Packet], None]) -> None:
    applied, called = _applied(action), _called(function)
    assert bytes(applied.data) == bytes(called.data)
    assert (applied.protocol, applied.vlan_tci, applied.vlan_proto, applied.network_header) == (
        called.protocol, called.vlan_tci, called.vlan_proto, called.network_header)


def test_push_mpls_defaults_are_tc_and_ovs_defaults() -> None:
    assert PushMpls(100) == PushMpls(100, 0, 64, False) and PushMpls(100).ethertype == ETH_P_MPLS_UC
    assert PushMpls(100, multicast=True).ethertype == ETH_P_MPLS_MC
    assert PushVlan(5).protocol == ETH_P_8021Q


def test_actions_are_frozen_values() -> None:
    with pytest.raises(AttributeError):
        PushMpls(100).label = 200  # type: ignore[misc]
    assert {PopVlan(), PopVlan(), DecTtl()} == {PopVlan(), DecTtl()}


# --- runt records: an ActionError naming the kernel check, never a crash (the fuzz pass found these) ------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 4, 13])
def test_push_mpls_on_a_frame_shorter_than_its_link_header_is_an_action_error(length: int) -> None:
    skb = packet_from_capture(bytes(length), None)  # a runt Ethernet record (was: struct.error)
    with pytest.raises(ActionError, match="ends inside its 14-byte link-layer header"):
        push_mpls(skb, 100)


def test_push_mpls_action_on_a_runt_record_is_refused_not_crashed() -> None:
    from softgso.job import apply_actions

    frame, error = apply_actions(b"\x00\x06A@", (PushMpls(100),))
    assert frame == b"\x00\x06A@" and isinstance(error, ActionError)
    assert "skb_mpls_push" in str(error)


@pytest.mark.parametrize("kernel", ["6.1", "6.12"])
def test_push_behind_a_tag_moved_into_the_bytes_reads_the_protocol_behind_the_tags(kernel: str) -> None:
    # tcf_mpls_act sets S unless skb_protocol(skb, true) is MPLS: a second tc vlan push made the protocol
    # the tag's, the labels lie behind it (kernel vectors x_mpls_2vlan_mpls, s50_023_uso_mix: S clear)
    skb = Packet.from_ethernet(FRAME)
    skb.extras[KERNEL_KEY] = kernel
    push_mpls(skb, 100, 0, 64)
    push_vlan(skb, 42, 5)
    push_vlan(skb, 1000, 3, ETH_P_8021AD)
    assert skb.protocol == ETH_P_8021Q
    push_mpls(skb, 300, 2, 7)
    top = skb.network_header or 0
    word = int.from_bytes(skb.data[top : top + 4], "big")
    assert (word >> 12, (word >> 8) & 1) == (300, 0)


def test_first_push_behind_two_tags_sets_the_s_bit() -> None:
    skb = Packet.from_ethernet(FRAME)
    push_vlan(skb, 42, 5)
    push_vlan(skb, 1000, 3, ETH_P_8021AD)
    push_mpls(skb, 100, 0, 64)
    top = skb.network_header or 0
    assert (int.from_bytes(skb.data[top : top + 4], "big") >> 8) & 1 == 1
