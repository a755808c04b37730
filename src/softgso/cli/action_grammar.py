"""The ``--action`` grammar: text to the engine's actions (softgso.actions), nothing else.

Pure functions of text (no packet is touched here). One meaning, three spellings: softgso's own
(push-mpls:100:0:64:uc), tc's as ``tc filter ... action`` takes it (mpls push label 100 tc 0 ttl 64)
and Open vSwitch's where it means the same (pop_mpls:0x0800, dec_mpls_ttl, set_mpls_ttl:9,
strip_vlan; the ethertypes 0x8847/0x8848 and 0x8100/0x88a8 in the protocol fields). Each --action is
one step, and repeated steps apply in order as successive tc actions do (every push lands on top); a
label stack written as a list (push-mpls:100/200) is read top first, the way tcpdump and ``softgso
inspect`` print a stack, and is pushed bottom first (:func:`parse_action` returns one PushMpls per
label). Kernel vectors name their tc actions in tc's spelling, so softgso.check.golden reads them here too.
"""

from __future__ import annotations

from collections.abc import Callable

from ..actions import (
    TUNNEL_SOURCE_PORT,
    Action,
    DecTtl,
    PopMpls,
    PopVlan,
    PushMpls,
    PushVlan,
    SetMpls,
    TunnelPop,
    TunnelPush,
    check_label_values,
)
from ..constants import ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, ETH_P_MPLS_MC, ETH_P_MPLS_UC
from ..errors import UsageError

ACTION_SYNTAX = {
    "push-mpls": "push-mpls:LABEL[/LABEL...][:TC[:TTL[:uc|mc]]] (a list is a stack, top first)",
    "pop-mpls": "pop-mpls[:ETHERTYPE] (default ipv4; ipv4, ipv6, mpls_uc, mpls_mc or a number)",
    "set-mpls": "set-mpls:[LABEL]:[TC]:[TTL] (empty keeps the field)",
    "dec-ttl": "dec-ttl",
    "push-vlan": "push-vlan:VID[:PCP[:8021q|8021ad]]",
    "pop-vlan": "pop-vlan",
    "push-vxlan": "push-vxlan:src=IP,dst=IP,vni=N[,sport=N][,dport=4789][,csum=on|off][,smac=MAC][,dmac=MAC]"
                  "[,ttl=N][,tos=N][,df=on|off]",
    "push-geneve": "push-geneve:src=IP,dst=IP,vni=N[,options=HEX][, and push-vxlan's others; dport 6081]",
    "push-gre": "push-gre:src=IP,dst=IP[,key=N][,csum=on|off][,inner=ip|eth][,smac=MAC][,dmac=MAC][,ttl=N]"
                "[,tos=N][,df=on|off] (push-gretap: inner=eth)",
    "pop-vxlan": "pop-vxlan[:dport=N]",
    "pop-geneve": "pop-geneve[:dport=N]",
    "pop-gre": "pop-gre",
}
TC_ACTION_SYNTAX = (
    "mpls push [protocol mpls_uc|mpls_mc] label L [tc T] [ttl N] (ttl default 255, as act_mpls)",
    "mpls pop protocol ipv4|ipv6|mpls_uc|mpls_mc|ETHERTYPE",
    "mpls modify [label L] [tc T] [ttl N]",
    "mpls dec_ttl",
    "vlan push [protocol 802.1Q|802.1ad] [priority P] id V",
    "vlan pop",
)
OVS_ACTION_SYNTAX = ("pop_mpls:ETHERTYPE", "set_mpls_label:L", "set_mpls_tc:T", "set_mpls_ttl:N", "dec_mpls_ttl",
                     "strip_vlan", "pop_vlan")

# the ethertype of a pushed label and of a pushed tag, each spelling to its value
MPLS_ETHERTYPES = {"uc": ETH_P_MPLS_UC, "mc": ETH_P_MPLS_MC, "mpls_uc": ETH_P_MPLS_UC, "mpls_mc": ETH_P_MPLS_MC,
                   "0x8847": ETH_P_MPLS_UC, "0x8848": ETH_P_MPLS_MC}
MPLS_ETHERTYPE_FORMS = "uc or mc (softgso), mpls_uc or mpls_mc (tc), 0x8847 or 0x8848 (the ethertype, as OVS writes it)"
VLAN_PROTOCOLS = {"8021q": ETH_P_8021Q, "8021ad": ETH_P_8021AD, "802.1q": ETH_P_8021Q, "802.1ad": ETH_P_8021AD,
                  "0x8100": ETH_P_8021Q, "0x88a8": ETH_P_8021AD}
VLAN_PROTOCOL_FORMS = ("8021q or 8021ad (softgso), 802.1Q or 802.1ad (tc), 0x8100 or 0x88a8 (the ethertype, as OVS "
                       "writes it)")
# what a popped label leaves (pop-mpls, tc's `mpls pop protocol`, OVS's pop_mpls)
NEXT_PROTOCOLS = {"ipv4": ETH_P_IP, "ip": ETH_P_IP, "ipv6": ETH_P_IPV6, "mpls": ETH_P_MPLS_UC,
                  "mpls_uc": ETH_P_MPLS_UC, "mpls_mc": ETH_P_MPLS_MC}
# Open vSwitch's names for our actions, where they mean the same
OVS_NAMES = {"push_mpls": "push-mpls", "pop_mpls": "pop-mpls", "set_mpls": "set-mpls", "dec_mpls_ttl": "dec-ttl",
             "push_vlan": "push-vlan", "pop_vlan": "pop-vlan", "strip_vlan": "pop-vlan"}
OVS_SET_MPLS_FIELD = {"set_mpls_label": 0, "set_mpls_tc": 1, "set_mpls_ttl": 2}
TC_CONTROLS = ("pipe", "reclassify", "drop", "continue", "pass", "ok", "shot", "trap", "goto", "jump")
# act_mpls: a push without ttl gets net.mpls.default_ttl, else ACT_MPLS_TTL_DEFAULT
TC_MPLS_TTL_DEFAULT = 255
LIST_SEPARATORS = "/,"
TUNNEL_ACTION_KINDS = frozenset({"push-vxlan", "push-geneve", "push-gre", "pop-vxlan", "pop-geneve", "pop-gre"})


def accepted_forms() -> str:
    """Every spelling parse_action takes, for error messages and --help."""
    return (f"softgso's: {', '.join(ACTION_SYNTAX.values())}; tc's (one string): {'; '.join(TC_ACTION_SYNTAX)}; "
            f"Open vSwitch's: {', '.join(OVS_ACTION_SYNTAX)}")


def mpls_ethertype(text: str) -> int | None:
    """The ethertype of a pushed label from any of its spellings (None when it is none of them)."""
    return MPLS_ETHERTYPES.get(text.strip().lower())


def vlan_protocol(text: str) -> int | None:
    """The TPID of a pushed tag from any of its spellings (None when it is none of them)."""
    return VLAN_PROTOCOLS.get(text.strip().lower())


def split_list(text: str) -> list[str]:
    """``100/200`` or ``100,200`` -> ["100", "200"] (a label stack, and per-label TC and TTL)."""
    for separator in LIST_SEPARATORS[1:]:
        text = text.replace(separator, LIST_SEPARATORS[0])
    return [item.strip() for item in text.split(LIST_SEPARATORS[0])]


def label_stack_spec(labels: tuple[str, ...] | list[str], tcs: tuple[str, ...] | list[str] = (),
                     ttls: tuple[str, ...] | list[str] = (), ethertype: str = "uc") -> str:
    """The push-mpls action string for a label stack given as list-style options, top first.

    ``labels``, ``tcs`` and ``ttls`` are option values, each one value or a list (``100,200``); TC
    and TTL are one value for every label or one per label (default 0 and 64). The string is checked
    (parse_action) before it is returned: a wrong count or value is a UsageError.
    """
    stack = [item for value in labels for item in split_list(value)]
    if not stack:
        raise UsageError("push-mpls needs at least one label")
    columns = []
    for values, what, default in ((tcs, "TC", "0"), (ttls, "TTL", "64")):
        items = [item for value in values for item in split_list(value)] or [default]
        if len(items) not in (1, len(stack)):
            raise UsageError(f"{len(items)} {what} values for {_labels(len(stack))}: give one {what} for every label, "
                             "or one per label in the order of the labels (top first)")
        columns.append("/".join(items))
    if mpls_ethertype(ethertype) is None:
        raise UsageError(f"MPLS ethertype {ethertype!r}: give {MPLS_ETHERTYPE_FORMS}")
    spec = f"push-mpls:{'/'.join(stack)}:{columns[0]}:{columns[1]}:{ethertype}"
    parse_action(spec)
    return spec


def _labels(count: int) -> str:
    return f"{count} label" + ("" if count == 1 else "s")


def _number(text: str, what: str, spec: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise UsageError(f"action {spec!r}: {what} {text!r} is not a number") from None


def _numbers(text: str, what: str, spec: str) -> list[int]:
    return [_number(item, what, spec) for item in split_list(text)]


def _per_label(values: list[int], count: int, what: str, spec: str) -> list[int]:
    """One value for every label, or one per label."""
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise UsageError(f"action {spec!r}: {len(values)} {what} values for {_labels(count)}: give one {what} for "
                         "every label, or one per label (top first)")
    return values


def parse_action(spec: str) -> tuple[Action, ...]:
    """The actions one ``--action`` string means, in softgso's, tc's or Open vSwitch's spelling
    (:func:`accepted_forms`): one action, or for a label stack one push per label, bottom first."""
    words = spec.split()
    if len(words) > 1 and words[0].lower() in ("mpls", "vlan", "action"):
        return (parse_tc_action(spec),)
    kind, _, rest = spec.strip().partition(":")
    kind = kind.lower()
    parse = _PARSERS.get(OVS_NAMES.get(kind, kind))
    if parse is None:
        raise UsageError(f"unknown action {spec!r}; accepted: {accepted_forms()}")
    return parse(spec, rest.split(":") if rest else [])


def _push_mpls(spec: str, fields: list[str]) -> tuple[Action, ...]:
    if not 1 <= len(fields) <= 4:
        raise UsageError(f"action {spec!r}: expected {ACTION_SYNTAX['push-mpls']}")
    if len(fields) == 1 and fields[0].strip().lower() in ("0x8847", "0x8848"):
        # OVS's push_mpls:ETHERTYPE reads as label 34887 or 34888 here: never push that silently
        raise UsageError(f"action {spec!r} reads as Open vSwitch's push_mpls:ETHERTYPE, which takes its label "
                         "from a later set_mpls_label; softgso needs the label: push-mpls:LABEL[:TC[:TTL[:0x8847|"
                         "0x8848]]] (label 34887 or 34888 itself: write it in decimal)")
    labels = _numbers(fields[0], "label", spec)
    tcs = _per_label(_numbers(fields[1], "TC", spec) if len(fields) > 1 and fields[1] else [0], len(labels), "TC", spec)
    ttls = _per_label(_numbers(fields[2], "TTL", spec) if len(fields) > 2 and fields[2] else [64], len(labels), "TTL",
                      spec)
    ethertype = mpls_ethertype(fields[3]) if len(fields) > 3 else ETH_P_MPLS_UC
    if ethertype is None:
        raise UsageError(f"action {spec!r}: the last field is the MPLS ethertype: {MPLS_ETHERTYPE_FORMS}")
    stack = []  # top first, as written
    for label, tc, ttl in zip(labels, tcs, ttls, strict=True):
        check_label_values(label, tc, ttl)
        stack.append(PushMpls(label, tc, ttl, multicast=ethertype == ETH_P_MPLS_MC))
    return tuple(reversed(stack))  # each push lands on top (skb_mpls_push): the bottom label goes first


def _pop_mpls(spec: str, fields: list[str]) -> tuple[Action, ...]:
    return (PopMpls(_next_protocol(fields[0] if fields else "ipv4", spec)),)


def _next_protocol(text: str, spec: str) -> int:
    value = text.strip().lower()
    return NEXT_PROTOCOLS[value] if value in NEXT_PROTOCOLS else _number(value, "ethertype", spec)


def _set_mpls(spec: str, fields: list[str]) -> tuple[Action, ...]:
    values = [(_number(f, "field", spec) if f not in ("", "-") else None) for f in fields]
    return (SetMpls(*(values + [None] * 3)[:3]),)


def _ovs_set_mpls_field(spec: str, fields: list[str]) -> tuple[Action, ...]:
    """set_mpls_label:L, set_mpls_tc:T, set_mpls_ttl:N: one field of the top label."""
    kind = spec.strip().partition(":")[0].lower()
    if len(fields) != 1 or not fields[0]:
        raise UsageError(f"action {spec!r}: expected {kind}:VALUE")
    values: list[int | None] = [None, None, None]
    values[OVS_SET_MPLS_FIELD[kind]] = _number(fields[0], kind.rpartition("_")[2], spec)
    return (SetMpls(*values),)


def _ovs_ip_dec_ttl(spec: str, fields: list[str]) -> tuple[Action, ...]:
    raise UsageError(f"action {spec!r}: dec_ttl is Open vSwitch's IP TTL decrement; the MPLS one is dec-ttl "
                     "(softgso), dec_mpls_ttl (Open vSwitch) or 'mpls dec_ttl' (tc)")


# VLAN_VID_MASK: tcf_vlan_init refuses a push of it (push_vid >= VLAN_VID_MASK), so tc never writes one
VLAN_VID_RESERVED = 4095
VLAN_VID_REFUSED = "VLAN id 4095 is reserved, and tc refuses to push it (act_vlan: -ERANGE); ids are 0..4094"


def _push_vlan(spec: str, fields: list[str]) -> tuple[Action, ...]:
    if not 1 <= len(fields) <= 3:
        raise UsageError(f"action {spec!r}: expected {ACTION_SYNTAX['push-vlan']}")
    if len(fields) == 1 and fields[0].strip().lower() in ("0x8100", "0x88a8"):
        raise UsageError(f"action {spec!r} reads as Open vSwitch's push_vlan:ETHERTYPE, which takes no VLAN id; "
                         "give it: push-vlan:VID[:PCP[:0x8100|0x88a8]]")
    vid = _number(fields[0], "VLAN id", spec)
    pcp = _number(fields[1], "priority", spec) if len(fields) > 1 and fields[1] else 0
    proto = vlan_protocol(fields[2]) if len(fields) > 2 else ETH_P_8021Q
    if proto is None:
        raise UsageError(f"action {spec!r}: VLAN protocol must be {VLAN_PROTOCOL_FORMS}")
    if vid == VLAN_VID_RESERVED:
        raise UsageError(f"action {spec!r}: {VLAN_VID_REFUSED}")
    if not 0 <= vid <= 4094 or not 0 <= pcp <= 7:
        raise UsageError(f"action {spec!r}: VLAN id 0..4094 and priority 0..7")
    return (PushVlan(vid, pcp, proto),)


def _no_arguments(action: Action) -> Callable[[str, list[str]], tuple[Action, ...]]:
    def parse(spec: str, fields: list[str]) -> tuple[Action, ...]:
        if fields:
            raise UsageError(f"action {spec!r} takes no arguments")
        return (action,)

    return parse


def _tunnel(spec: str, fields: list[str]) -> tuple[Action, ...]:
    return (parse_tunnel_action(spec),)  # KEY=VALUE pairs, whose values may hold colons: read from the text


# each action name (softgso's, or Open vSwitch's through OVS_NAMES) and the reader of its fields
_PARSERS: dict[str, Callable[[str, list[str]], tuple[Action, ...]]] = {
    "push-mpls": _push_mpls,
    "pop-mpls": _pop_mpls,
    "set-mpls": _set_mpls,
    "dec-ttl": _no_arguments(DecTtl()),
    "push-vlan": _push_vlan,
    "pop-vlan": _no_arguments(PopVlan()),
    **dict.fromkeys(OVS_SET_MPLS_FIELD, _ovs_set_mpls_field),
    "dec_ttl": _ovs_ip_dec_ttl,
    **dict.fromkeys(sorted(TUNNEL_ACTION_KINDS | {"push-gretap"}), _tunnel),
}


def _c_number(text: str, what: str, spec: str) -> int:
    """A number as tc reads it (strtoul with base 0: 0x hex, a leading 0 octal)."""
    if len(text) > 1 and text[0] == "0" and text.isdigit():
        try:
            return int(text, 8)
        except ValueError:
            pass
    try:
        return int(text, 0)
    except ValueError:
        raise _tc_error(spec, f"{what} {text!r} is not a number") from None


def _tc_error(spec: str, problem: str) -> UsageError:
    return UsageError(f"tc action {spec!r}: {problem}; tc's forms: {'; '.join(TC_ACTION_SYNTAX)}")


def parse_tc_action(spec: str) -> Action:
    """One tc action as ``tc filter ... action`` takes it (``mpls push label 100 tc 0 ttl 64``), with
    act_mpls's and act_vlan's defaults and refusals (tcf_mpls_init, tcf_vlan_init)."""
    words = spec.split()
    if words and words[0].lower() == "action":
        words = words[1:]
    if len(words) > 2 and words[-1].lower() in TC_CONTROLS:
        control = words.pop().lower()
        if control != "pipe":
            raise _tc_error(spec, f"control {control!r} decides a packet's fate, not its bytes: softgso runs every "
                            "action in turn (pipe, tc's default)")
    if len(words) < 2:
        raise _tc_error(spec, "expected a module (mpls or vlan) and a command")
    module, command, rest = words[0].lower(), words[1].lower(), words[2:]
    if len(rest) % 2:
        raise _tc_error(spec, f"{rest[-1]!r} needs a value")
    params: dict[str, str] = {}
    for key, value in zip(rest[::2], rest[1::2], strict=True):
        key = key.lower()
        if key in params:
            raise _tc_error(spec, f"{key} given twice")
        params[key] = value

    def only(*allowed: str) -> None:
        extra = [key for key in params if key not in allowed]
        if extra:
            raise _tc_error(spec, f"{extra[0]} cannot be used with {module} {command}")

    def number(key: str, what: str, low: int, high: int) -> int | None:
        if key not in params:
            return None
        value = _c_number(params[key], what, spec)
        if not low <= value <= high:
            raise _tc_error(spec, f"{what} {value} out of range {low}..{high}")
        return value

    if module == "mpls":
        if command == "push":
            if "bos" in params:
                raise _tc_error(spec, "bos is not supported: the S bit is set as skb_mpls_push sets it")
            only("protocol", "label", "tc", "ttl")
            label = number("label", "label", 0, 0xFFFFF)
            if label is None:
                raise _tc_error(spec, "label is required for MPLS push")
            ethertype = mpls_ethertype(params.get("protocol", "mpls_uc"))
            if ethertype is None:
                raise _tc_error(spec, f"protocol must be an MPLS type for MPLS push: {MPLS_ETHERTYPE_FORMS}")
            tc = number("tc", "tc", 0, 7)
            ttl = number("ttl", "ttl", 1, 255)  # TCA_MPLS_TTL's policy: at least 1
            ttl = TC_MPLS_TTL_DEFAULT if ttl is None else ttl
            check_label_values(label, tc or 0, ttl)
            return PushMpls(label, tc or 0, ttl, multicast=ethertype == ETH_P_MPLS_MC)
        if command == "pop":
            only("protocol")
            if "protocol" not in params:
                raise _tc_error(spec, "protocol must be set for MPLS pop")
            return PopMpls(_next_protocol(params["protocol"], spec))
        if command == "modify":
            only("label", "tc", "ttl")
            label = number("label", "label", 0, 0xFFFFF)
            return SetMpls(label, number("tc", "tc", 0, 7), number("ttl", "ttl", 1, 255))
        if command == "dec_ttl":
            only()
            return DecTtl()
        if command == "mac_push":
            raise _tc_error(spec, "mac_push (a label before the Ethernet header) is not supported")
    elif module == "vlan":
        if command == "push":
            only("protocol", "priority", "id")
            vid = number("id", "VLAN id", 0, 4095)
            if vid is None:
                raise _tc_error(spec, "id is required for vlan push")
            if vid == VLAN_VID_RESERVED:
                raise _tc_error(spec, VLAN_VID_REFUSED)
            proto = vlan_protocol(params.get("protocol", "802.1Q"))
            if proto is None:
                raise _tc_error(spec, f"VLAN protocol must be {VLAN_PROTOCOL_FORMS}")
            return PushVlan(vid, number("priority", "priority", 0, 7) or 0, proto)
        if command == "pop":
            only()
            return PopVlan()
        if command in ("modify", "pop_eth", "push_eth"):
            raise _tc_error(spec, f"vlan {command} is not supported")
    raise _tc_error(spec, f"unknown action {module} {command}")


# --- the tunnel actions' grammar: push-vxlan:src=10.0.0.1,dst=10.0.0.2,vni=42 ----------------------
#
# KEY=VALUE pairs, comma-separated (IPv6 addresses and MACs hold colons). The keys take softgso's
# names and tc tunnel_key's (src_ip, dst_ip, id, dst_port, nocsum) and Open vSwitch's (tun_id,
# remote_ip, local_ip), which mean the same.

TUNNEL_KEYS = {"src": "src", "src_ip": "src", "local": "src", "local_ip": "src",
               "dst": "dst", "dst_ip": "dst", "remote": "dst", "remote_ip": "dst",
               "vni": "vni", "id": "vni", "tun_id": "vni", "key": "vni",
               "sport": "sport", "src_port": "sport", "dport": "dport", "dst_port": "dport",
               "csum": "csum", "smac": "smac", "src_mac": "smac", "dmac": "dmac", "dst_mac": "dmac",
               "ttl": "ttl", "tos": "tos", "df": "df", "options": "options", "opts": "options", "inner": "inner"}
_SWITCH = {"on": True, "yes": True, "1": True, "true": True, "off": False, "no": False, "0": False, "false": False}


def _tunnel_pairs(spec: str, rest: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in (part.strip() for part in rest.split(",") if part.strip()):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep and key in ("csum", "nocsum"):  # tc tunnel_key's words
            key, value = "csum", "on" if key == "csum" else "off"
        if key not in TUNNEL_KEYS or (not sep and key != "csum"):
            raise UsageError(f"action {spec!r}: {item!r} is not KEY=VALUE with KEY one of "
                             f"{', '.join(sorted(set(TUNNEL_KEYS.values())))} (or tc's/Open vSwitch's names)")
        name = TUNNEL_KEYS[key]
        if name in pairs:
            raise UsageError(f"action {spec!r}: {name} given twice")
        pairs[name] = value.strip()
    return pairs


def _address(text: str, what: str, spec: str) -> bytes:
    import ipaddress

    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        raise UsageError(f"action {spec!r}: {what} {text!r} is not an IPv4 or IPv6 address") from None


def _mac(text: str, what: str, spec: str) -> bytes:
    digits = text.replace(":", "").replace("-", "")
    try:
        value = bytes.fromhex(digits)
    except ValueError:
        value = b""
    if len(value) != 6:
        raise UsageError(f"action {spec!r}: {what} {text!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    return value


def _bounded(pairs: dict[str, str], key: str, low: int, high: int, spec: str) -> int | None:
    if key not in pairs:
        return None
    value = _number(pairs[key], key, spec)
    if not low <= value <= high:
        raise UsageError(f"action {spec!r}: {key} {value} out of range {low}..{high}")
    return value


def _switch(pairs: dict[str, str], key: str, spec: str) -> bool | None:
    if key not in pairs:
        return None
    value = _SWITCH.get(pairs[key].lower())
    if value is None:
        raise UsageError(f"action {spec!r}: {key} takes on or off, not {pairs[key]!r}")
    return value


def parse_tunnel_action(spec: str) -> TunnelPush | TunnelPop:
    """push-vxlan / push-geneve / push-gre (push-gretap) and pop-vxlan / pop-geneve / pop-gre."""
    kind, _, rest = spec.strip().partition(":")
    kind = kind.lower()
    pairs = _tunnel_pairs(spec, rest)
    tunnel = kind.split("-", 1)[1]
    if kind.startswith("pop-"):
        allowed = {"dport"} if tunnel != "gre" else set()
        extra = sorted(set(pairs) - allowed)
        if extra:
            raise UsageError(f"action {spec!r}: {kind} takes {'dport=N only' if allowed else 'no arguments'}")
        return TunnelPop(tunnel, _bounded(pairs, "dport", 1, 65535, spec))
    if kind == "push-gretap":
        if pairs.setdefault("inner", "eth") != "eth":
            raise UsageError(f"action {spec!r}: push-gretap carries the Ethernet frame (inner=eth)")
        kind, tunnel = "push-gre", "gre"
    missing = [key for key in ("src", "dst") if key not in pairs]
    if tunnel != "gre" and "vni" not in pairs:
        missing.append("vni")
    if missing:
        raise UsageError(f"action {spec!r}: {', '.join(missing)} required; expected {ACTION_SYNTAX[kind]}")
    src, dst = _address(pairs["src"], "src", spec), _address(pairs["dst"], "dst", spec)
    if len(src) != len(dst):
        raise UsageError(f"action {spec!r}: src and dst must both be IPv4 or both IPv6")
    not_here = {"gre": ("sport", "dport", "options"), "vxlan": ("options", "inner"), "geneve": ("inner",)}[tunnel]
    for key in not_here:
        if key in pairs:
            raise UsageError(f"action {spec!r}: {key} does not apply to {kind}")
    options = b""
    if "options" in pairs:
        try:
            options = bytes.fromhex(pairs["options"])
        except ValueError:
            raise UsageError(f"action {spec!r}: options {pairs['options']!r} is not hexadecimal") from None
        if len(options) % 4 or len(options) > 252:
            raise UsageError(f"action {spec!r}: Geneve options are 4-byte words, at most 252 bytes")
    inner = pairs.get("inner", "ip").lower()
    if inner not in ("ip", "eth"):
        raise UsageError(f"action {spec!r}: inner is ip (GRE, the L3 packet) or eth (gretap, the Ethernet frame)")
    return TunnelPush(
        tunnel, src, dst,
        vni=_bounded(pairs, "vni", 0, 0xFFFFFFFF if tunnel == "gre" else 0xFFFFFF, spec),
        csum=_switch(pairs, "csum", spec),
        sport=_bounded(pairs, "sport", 0, 65535, spec) or TUNNEL_SOURCE_PORT,
        dport=_bounded(pairs, "dport", 1, 65535, spec),
        src_mac=_mac(pairs["smac"], "smac", spec) if "smac" in pairs else None,
        dst_mac=_mac(pairs["dmac"], "dmac", spec) if "dmac" in pairs else None,
        ttl=_bounded(pairs, "ttl", 1, 255, spec) or 64,
        tos=_bounded(pairs, "tos", 0, 255, spec) or 0,
        df=bool(_switch(pairs, "df", spec)),
        options=options,
        ethernet=inner == "eth",
    )


__all__ = [
    "ACTION_SYNTAX",
    "MPLS_ETHERTYPES",
    "MPLS_ETHERTYPE_FORMS",
    "NEXT_PROTOCOLS",
    "OVS_ACTION_SYNTAX",
    "OVS_NAMES",
    "TC_ACTION_SYNTAX",
    "TUNNEL_ACTION_KINDS",
    "TUNNEL_KEYS",
    "VLAN_PROTOCOLS",
    "VLAN_PROTOCOL_FORMS",
    "accepted_forms",
    "label_stack_spec",
    "mpls_ethertype",
    "parse_action",
    "parse_tc_action",
    "parse_tunnel_action",
    "split_list",
    "vlan_protocol",
]
