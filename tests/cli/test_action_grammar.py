"""The --action grammar: every spelling of one meaning reads as the same engine actions, and a bad
spelling is a UsageError (the messages themselves are held by tests/cli/test_push_mpls_grammar.py)."""

from __future__ import annotations

import pytest
from conftest import run_cli

from softgso.actions import DecTtl, PopMpls, PopVlan, PushMpls, PushVlan, SetMpls, TunnelPop, TunnelPush
from softgso.cli.action_grammar import ACTION_SYNTAX, accepted_forms, parse_action, parse_tc_action
from softgso.constants import ETH_P_8021AD, ETH_P_IPV6, ETH_P_MPLS_UC
from softgso.errors import UsageError

SRC, DST = bytes([192, 0, 2, 10]), bytes([192, 0, 2, 20])


@pytest.mark.parametrize("spellings, actions", [
    (["push-mpls:100:0:64:mc", "push_mpls:100:0:64:0x8848", "mpls push protocol mpls_mc label 100 tc 0 ttl 64",
      "action mpls push protocol mpls_mc label 100 ttl 64 pipe"], (PushMpls(100, 0, 64, multicast=True),)),
    (["pop-mpls:ipv6", "pop_mpls:0x86dd", "mpls pop protocol ipv6"], (PopMpls(ETH_P_IPV6),)),
    (["pop-mpls", "pop-mpls:ipv4", "pop_mpls:0x0800"], (PopMpls(),)),
    (["set-mpls::3:", "set-mpls:-:3:-", "set_mpls_tc:3", "mpls modify tc 3"], (SetMpls(tc=3),)),
    (["dec-ttl", "dec_mpls_ttl", "mpls dec_ttl"], (DecTtl(),)),
    (["push-vlan:5:1:8021ad", "push_vlan:5:1:0x88a8", "vlan push protocol 802.1ad priority 1 id 5"],
     (PushVlan(5, 1, ETH_P_8021AD),)),
    (["pop-vlan", "pop_vlan", "strip_vlan", "vlan pop"], (PopVlan(),)),
    (["push-gretap:src=192.0.2.10,dst=192.0.2.20,key=7", "push-gre:src_ip=192.0.2.10,remote_ip=192.0.2.20,id=7,"
      "inner=eth"], (TunnelPush("gre", SRC, DST, vni=7, ethernet=True),)),
    (["pop-vxlan:dport=8472", "POP-VXLAN:dst_port=8472"], (TunnelPop("vxlan", 8472),)),
])
def test_every_spelling_of_one_meaning_is_the_same_actions(spellings: list[str], actions: tuple[object, ...]) -> None:
    for spelling in spellings:
        assert parse_action(spelling) == actions, spelling


def test_a_label_list_is_a_stack_written_top_first_and_pushed_bottom_first() -> None:
    assert parse_action("push-mpls:100/200:1/2:64/3") == (PushMpls(200, 2, 3), PushMpls(100, 1, 64))
    assert parse_action("push-mpls:100,200:5") == (PushMpls(200, 5, 64), PushMpls(100, 5, 64))


def test_a_tc_push_without_ttl_gets_act_mpls_default() -> None:
    assert parse_tc_action("mpls push label 100") == PushMpls(100, 0, 255)
    assert PushMpls(100).ethertype == ETH_P_MPLS_UC


def test_every_softgso_action_name_is_read() -> None:
    examples = {"push-mpls": "push-mpls:100", "set-mpls": "set-mpls:1", "push-vlan": "push-vlan:5",
                "push-vxlan": "push-vxlan:src=192.0.2.10,dst=192.0.2.20,vni=1",
                "push-geneve": "push-geneve:src=192.0.2.10,dst=192.0.2.20,vni=1",
                "push-gre": "push-gre:src=192.0.2.10,dst=192.0.2.20"}
    for kind in ACTION_SYNTAX:
        assert len(parse_action(examples.get(kind, kind))) == 1, kind


def test_label_3_is_refused_when_read() -> None:
    with pytest.raises(UsageError, match="implicit null"):
        parse_action("push-mpls:3:0:64:uc")


@pytest.mark.parametrize("spec", ["push-mpls", "push-mpls:x", "push-vlan:5000", "frobnicate", "dec-ttl:3",
                                  "push-mpls:1:8", "push-mpls:1:0:64:bc", "pop-vlan:1", "set_mpls_ttl",
                                  "dec_ttl", "push-gretap:src=192.0.2.10,dst=192.0.2.20,inner=ip"])
def test_bad_action_strings_are_usage_errors(spec: str) -> None:
    with pytest.raises(UsageError):
        parse_action(spec)


def test_an_unknown_action_names_every_accepted_form() -> None:
    with pytest.raises(UsageError) as refused:
        parse_action("frobnicate:1")
    assert str(refused.value) == f"unknown action 'frobnicate:1'; accepted: {accepted_forms()}"


@pytest.mark.parametrize("spelling", ["push-vlan:4095", "push-vlan:4095:0:8021ad", "push-vlan:4095:0:0x8100",
                                      "vlan push id 4095", "vlan push protocol 802.1ad id 4095 priority 1"])
def test_vlan_id_4095_is_refused_in_every_spelling_as_tc_refuses_it(spelling: str) -> None:
    """act_vlan's init refuses a push of VLAN_VID_MASK (4095, reserved) with -ERANGE: tc never pushes it."""
    with pytest.raises(UsageError, match="VLAN id 4095 is reserved"):
        parse_action(spelling)
    assert parse_action(spelling.replace("4095", "4094"))[0] == PushVlan(
        4094, 1 if "priority 1" in spelling else 0, ETH_P_8021AD if "ad" in spelling else 0x8100)


def test_push_vlan_command_refuses_vid_4095() -> None:
    result = run_cli("push-vlan", "in.pcap", "out.pcap", "--vid", "4095")
    assert result.exit_code == 2 and "4095 is not in the range 0<=x<=4094" in result.stderr
