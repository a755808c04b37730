"""Tunnel vectors, host side: the designed cases, the injected frames, and the recorded vectors.

Every vector comes from the kernel's own tunnel devices (spec tunnels-gso.md section 12): the
super-packet is what the tunnel driver built (captured through a tc mirror of the underlay
egress to a dummy device), the output is what veth0's software GSO sent. Nothing here runs
softgso code; the frames injected are built with the standard library.

    .venv/bin/python -m tools.kernel_oracle.tunnel_cases --out tests/vectors/kernel/tunnels

Each case folder: ``input.pcap`` (the super-packet), ``kernel_out.pcap`` (the segments, in the order
veth1 received them), ``meta.json`` (the tunnel device, veth0's ethtool settings, the softgso device
profile that models them, the super-packet's gso_size and inner gso type, the kernel, the
``--tunnel-port`` softgso needs for FOU/GUE, and for a control case what it shows instead of a
super-packet cut by veth0: ``segmented before encapsulation`` or ``passed whole``). The ``fixedid_*``
cases (:class:`GroForwardCase`) make the super-packet from a GRO aggregate forwarded into the tunnel,
the route on which the kernel sets SKB_GSO_TCP_FIXEDID; their meta.json adds the gso_type the
net_dev_start_xmit trace showed (``skb_gso_type``, ``gro_forward``).

    .venv/bin/python -m tools.kernel_oracle.tunnel_cases --kernel 6.12 --only fou,gue,gpe,control --out DIR
    .venv/bin/python -m tools.kernel_oracle.tunnel_cases --kernel 6.1 --only fixedid

MPLS with a tunnel outside the BPF route (spec 7.3, 7.4; :func:`mpls_tunnel_cases`): labels pushed above
tnl0 (tc ``mpls push`` on its egress, or an ``encap mpls`` route out of it with a local TCP socket
sending), and ``mpls push`` on veth0's egress of a tunnel packet; the labels-on-a-tunnel-super-packet
state of an ``encap mpls`` underlay route, one case per boot:

    .venv/bin/python -m tools.kernel_oracle.tunnel_cases --kernel 6.12 --only mplspush_,mplsroute_
    .venv/bin/python -m tools.kernel_oracle.tunnel_cases --kernel 6.12 --underlay-route mplsroute_underlay_gre4_control__tx_off
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .cases import ipv6_extension_header
from .vm import KernelVM

V4_LOCAL, V4_REMOTE = "192.0.2.1", "192.0.2.2"
V6_LOCAL, V6_REMOTE = "2001:db8::1", "2001:db8::2"
INNER_V4 = (bytes([10, 1, 0, 1]), bytes([10, 1, 0, 2]))
INNER_V6 = (bytes.fromhex("fd000000000000000000000000000001"), bytes.fromhex("fd000000000000000000000000000002"))
INNER_ETH = bytes.fromhex("0200000000aa0200000000bb")
ETHTOOL = {"tx_off": ("tx off", "no-offload"), "tso_off": ("tx on tso off", "csum"),
           "uso_off": ("tx on tso off tx-udp-segmentation off", "csum"),
           "tunnel_on": ("tx on tso on", "tso")}  # veth's defaults: every tunnel segmentation feature on
VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
VIRTIO_GSO_TCPV4, VIRTIO_GSO_UDP, VIRTIO_GSO_TCPV6, VIRTIO_GSO_ECN = 1, 3, 4, 0x80
FOU_PORT, GUE_PORT, GPE_PORT = 5555, 5556, 4790
# what a control case shows instead of one super-packet cut by veth0 (tests/vectors/test_tunnel_vectors.py)
CONTROL_SEGMENTED_FIRST = "segmented before encapsulation"  # tnl0 never builds a super-packet
CONTROL_PASSED_WHOLE = "passed whole"  # veth0 has the tunnel's segmentation feature: the super-packet leaves whole
CONTROL_MPLS_FIRST = "MPLS GSO before encapsulation"  # spec 7.3: labels pushed above tnl0, cut there, each encapsulated
CONTROL_REFUSED = "refused"  # spec 7.4: the kernel drops it, nothing leaves veth0
CONTROL_PUSHED = "labels pushed"  # spec 7.4's refusal does not apply: the packet is no longer encapsulated
CONTROL_LABELS_ABOVE = "labels above a tunnel super-packet"  # spec 7.4's last row: what veth0 does with that state


@dataclass
class TunnelCase:
    """One designed case: the tunnel device, the inner packet, veth0's settings."""

    name: str
    device: str  # the `ip link add tnl0 type ...` arguments after "type"
    outer_v6: bool
    l2: bool  # the tunnel carries Ethernet frames (vxlan, geneve, gretap, ip6gretap)
    inner_v6: bool
    ethtool: str  # a key of ETHTOOL
    gso_size: int = 1000
    segments: int = 3
    remainder: int = 300  # payload bytes of the last segment (0: an exact multiple)
    flags: int = 0x18  # ACK|PSH
    ecn: bool = False
    df: bool = True
    ip_id: int = 0x1234
    timestamps: bool = True
    extra_setup: list[str] = field(default_factory=list)
    note: str = ""
    uso: bool = False  # sent by a UDP socket with UDP_SEGMENT over tnl0 (inner IPv4 USO) instead
    bpf: dict[str, int] | None = None  # MPLS encapsulation by tc BPF on veth0 (OUTER_V6, USE_GRE, LABELS); no tnl0
    ufo: bool = False  # the inner packet is one UDP datagram with the virtio header's UFO type (GSO_UDP)
    control: str = ""  # a CONTROL_* outcome: no super-packet for veth0 to cut (the name then says "control")
    tunnel_ports: tuple[str, ...] = ()  # softgso's --tunnel-port for a UDP encapsulation without a known port
    tx_device: str = "tnl0"  # where the packet socket sends (tnl1: a tunnel routed through tnl0, set up by extra_setup)
    tcp_send: dict[str, object] | None = None  # a local TCP socket (TCP_REPAIR, no peer) sends instead: src, dst, port,
    # mss_clamp, payload_len (the MPLS-and-tunnel routes of spec 7.3: the stack routes it)
    also_capture: tuple[str, ...] = ()  # more devices whose outgoing frames are recorded (dum1: what tnl0's egress saw)
    after: tuple[str, ...] = ()  # commands whose output is recorded once the frames are in (tc -s, counters, dmesg)
    no_gso: bool = False  # one packet, no GSO type in the virtio header (payload = remainder)
    inner_ext_headers: tuple[str, ...] = ()  # inner IPv6 extension headers, cases.ipv6_extension_header's kinds
    inner_ip_options: str = ""  # inner IPv4 options (hex, a multiple of 4 bytes)
    tcp_options: str | None = None  # inner TCP options (hex, a multiple of 4 bytes); None: timestamps or none
    complete_csum: bool = False  # with no_gso: the inner checksum complete, virtio flags 0 (else NEEDS_CSUM and the seed)

    @property
    def payload_len(self) -> int:
        """Inner L4 payload bytes."""
        return self.gso_size * self.segments + self.remainder

    def inner_packet(self) -> bytes:
        """The inner IP packet: TCP with the CHECKSUM_PARTIAL seed in its checksum field."""
        payload_len = self.gso_size * self.segments + self.remainder
        payload = bytes((i * 7 + 3) & 0xFF for i in range(payload_len))
        options = self._tcp_options()
        doff = (20 + len(options)) // 4
        proto, check_at = (17, 6) if self.ufo else (6, 16)
        if self.ufo:
            l4 = struct.pack("!HHHH", 40000, 5001, 8 + payload_len, 0)
        else:
            l4 = struct.pack("!HHIIBBHHH", 40000, 5001, 0x10000000, 0x20000000, doff << 4, self.flags, 502, 0, 0)
            l4 += options
        l4_len = len(l4) + payload_len
        if self.inner_v6:
            src, dst = INNER_V6
            ext, next_header = b"", proto
            for kind in reversed(self.inner_ext_headers):
                number, data = ipv6_extension_header(kind, next_header)
                ext, next_header = data + ext, number
            ip = struct.pack("!IHBB", 0x60012345, len(ext) + l4_len, next_header, 64) + src + dst + ext
            pseudo = src + dst + struct.pack("!IxxxB", l4_len, proto)
        else:
            src, dst = INNER_V4
            ip_options = bytes.fromhex(self.inner_ip_options)
            ip = struct.pack("!BBHHHBBH", 0x45 + len(ip_options) // 4, 0x02 if self.ecn else 0,
                             20 + len(ip_options) + l4_len, self.ip_id, 0x4000 if self.df else 0, 64, proto, 0) \
                + src + dst + ip_options
            ip = ip[:10] + struct.pack("!H", _fold_complement(_ones(ip))) + ip[12:]
            pseudo = src + dst + struct.pack("!BBH", 0, proto, l4_len)
        seed = _fold(_ones(pseudo))
        if self.complete_csum:  # the whole checksum, as a stack that did not offload it
            seed = _fold_complement(_ones(pseudo + l4 + payload))
        l4 = l4[:check_at] + struct.pack("!H", seed) + l4[check_at + 2 :]
        return ip + l4 + payload

    def _tcp_options(self) -> bytes:
        if self.tcp_options is not None:
            return bytes.fromhex(self.tcp_options)
        return (b"\x01\x01\x08\x0a" + struct.pack("!II", 0x01020304, 0x0A0B0C0D)) if self.timestamps else b""

    def _inner_l3_len(self) -> int:
        if self.inner_v6:
            return 40 + sum(len(ipv6_extension_header(kind, 0)[1]) for kind in self.inner_ext_headers)
        return 20 + len(bytes.fromhex(self.inner_ip_options))

    def frame(self) -> bytes:
        """What the packet socket on tnl0 sends: an Ethernet frame (L2 tunnels) or the IP packet."""
        packet = self.inner_packet()
        if self.l2:
            return INNER_ETH + struct.pack("!H", 0x86DD if self.inner_v6 else 0x0800) + packet
        return packet

    def vnet(self) -> dict[str, int]:
        """The virtio_net_hdr: NEEDS_CSUM at the inner TCP header, the inner TCP gso type."""
        l2 = 14 if self.l2 else 0
        l3 = self._inner_l3_len()
        if self.ufo:
            return {"flags": VIRTIO_NET_HDR_F_NEEDS_CSUM, "gso_type": VIRTIO_GSO_UDP, "hdr_len": l2 + l3 + 8,
                    "gso_size": self.gso_size, "csum_start": l2 + l3, "csum_offset": 6}
        doff = 20 + len(self._tcp_options())
        if self.no_gso:
            return {"flags": 0 if self.complete_csum else VIRTIO_NET_HDR_F_NEEDS_CSUM, "gso_type": 0, "hdr_len": 0,
                    "gso_size": 0, "csum_start": 0 if self.complete_csum else l2 + l3,
                    "csum_offset": 0 if self.complete_csum else 16}
        gso_type = (VIRTIO_GSO_TCPV6 if self.inner_v6 else VIRTIO_GSO_TCPV4) | (VIRTIO_GSO_ECN if self.ecn else 0)
        return {"flags": VIRTIO_NET_HDR_F_NEEDS_CSUM, "gso_type": gso_type, "hdr_len": l2 + l3 + doff,
                "gso_size": self.gso_size, "csum_start": l2 + l3, "csum_offset": 16}

    def keeps(self, frame: bytes) -> bool:
        """A captured frame that belongs to the case (link noise does not)."""
        return is_case_frame(frame, self)

    def extra_meta(self, result: dict) -> dict[str, object]:
        """What meta.json says beyond the common keys (:class:`GroForwardCase` adds the GRO route)."""
        return {}

    def guest_form(self) -> dict[str, object]:
        """The request the guest runs."""
        ethtool = ETHTOOL[self.ethtool][0]
        setup = [
            "ip link del tnl1 2>/dev/null; ip link del tnl0 2>/dev/null; ip link del veth0 2>/dev/null; "
            "ip link del dum0 2>/dev/null; true",
            "ip link add veth0 type veth peer name veth1",
            "sysctl -qw net.ipv6.conf.veth1.disable_ipv6=1",
            f"sysctl -qw net.ipv6.conf.veth0.disable_ipv6={0 if self.outer_v6 else 1}",
            "ip link set veth0 mtu 1500 up; ip link set veth1 mtu 1500 up",
            f"ethtool -K veth1 gro off; ethtool -K veth0 {ethtool}",
            f"ip addr add {V4_LOCAL}/24 dev veth0",
            f"ip neigh replace {V4_REMOTE} lladdr 02:00:00:00:00:02 dev veth0 nud permanent",
        ]
        if self.outer_v6:
            setup += [f"ip -6 addr add {V6_LOCAL}/64 dev veth0 nodad",
                      f"ip -6 neigh replace {V6_REMOTE} lladdr 02:00:00:00:00:02 dev veth0 nud permanent"]
        setup += [
            "ip link add dum0 type dummy; sysctl -qw net.ipv6.conf.dum0.disable_ipv6=1; ip link set dum0 up",
            "tc qdisc add dev veth0 clsact",
        ]
        if self.bpf is not None:
            # the encapsulation runs first (pref 1, returns TC_ACT_UNSPEC), the mirror sees its result
            setup.append(f"tc filter add dev veth0 egress pref 1 bpf da obj {bpf_object(self.bpf)} sec tc")
        setup.append("tc filter add dev veth0 egress pref 2 matchall action mirred egress mirror dev dum0")
        if self.bpf is None:
            setup += [f"ip link add tnl0 type {self.device}", "sysctl -qw net.ipv6.conf.tnl0.disable_ipv6=1",
                      *self.extra_setup, "ip link set tnl0 up"]
        udp_send = None
        if self.uso and self.inner_v6:
            # IPv6 on tnl0 for the sender; its link-up multicast listener reports go before the capture
            setup += ["sysctl -qw net.ipv6.conf.tnl0.disable_ipv6=0", "ip -6 addr add fd01::1/64 dev tnl0 nodad",
                      "ip -6 neigh replace fd01::2 lladdr 02:00:00:00:00:aa dev tnl0 nud permanent" if self.l2 else
                      "true", "sleep 2.5"]
            udp_send = {"dst": "fd01::2", "port": 5001, "gso_size": self.gso_size, "payload_len": self.payload_len}
        elif self.uso:
            setup += ["ip addr add 10.1.0.1/24 dev tnl0",
                      "ip neigh replace 10.1.0.2 lladdr 02:00:00:00:00:aa dev tnl0 nud permanent" if self.l2 else
                      "true"]
            udp_send = {"dst": "10.1.0.2", "port": 5001, "gso_size": self.gso_size, "payload_len": self.payload_len}
        teardown = ["ip link del tnl1 2>/dev/null; ip link del tnl0; ip link del veth0; ip link del dum0"]
        if self.also_capture:
            teardown.append("; ".join(f"ip link del {device} 2>/dev/null" for device in self.also_capture) + "; true")
        return {"name": self.name, "setup": setup, "udp_send": udp_send, "teardown": teardown,
                "tcp_send": self.tcp_send, "also_capture": list(self.also_capture), "after": list(self.after),
                "tx_device": "veth0" if self.bpf is not None else self.tx_device, "sll_protocol": 0x86DD if self.inner_v6 else 0x0800,
                "frame": self.frame().hex(), "vnet": self.vnet()}


BPF_SOURCE = Path(__file__).parent / "bpf" / "mpls_encap.c"
BPF_BUILD = Path("out/kernel-oracle-tunnels/bpf")


def bpf_object(variant: dict[str, int]) -> Path:
    """The compiled tc object of one variant (built by :func:`build_bpf`), as an absolute path."""
    name = "mpls_encap_" + "_".join(f"{key.lower()}{value}" for key, value in sorted(variant.items())) + ".o"
    return (BPF_BUILD / name).resolve()


def build_bpf(variants: list[dict[str, int]]) -> None:
    """clang -target bpf for every variant (Debian: clang, llvm, libbpf-dev, installed when missing)."""
    if not variants:
        return
    from .install import BPF_PACKAGES, install_tools

    install_tools(BPF_PACKAGES)
    BPF_BUILD.mkdir(parents=True, exist_ok=True)
    for variant in variants:
        defines = [f"-D{key}={value}" for key, value in variant.items()]
        subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", *defines, "-c",
                        str(BPF_SOURCE), "-o", str(bpf_object(variant))], check=True)


def _ones(data: bytes) -> int:
    if len(data) & 1:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    return total


def _fold(total: int) -> int:
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _fold_complement(total: int) -> int:
    return ~_fold(total) & 0xFFFF


def tcp_shapes() -> list[dict]:
    """The tunnel devices and inner packets of the designed TCP cases (TunnelCase keyword arguments)."""
    v4 = f"local {V4_LOCAL} remote {V4_REMOTE}"
    v6 = f"local {V6_LOCAL} remote {V6_REMOTE}"
    geneve_opts = ["tc qdisc add dev tnl0 clsact",
                   f"tc filter add dev tnl0 egress matchall action tunnel_key set src_ip {V4_LOCAL} dst_ip {V4_REMOTE} "
                   "id 42 dst_port 6081 geneve_opts 0102:80:00880022,0103:01:0000000100000002 csum"]
    shapes: list[dict] = [
        dict(name="vxlan4_nocsum_in4", device=f"vxlan id 42 {v4} dstport 4789 noudpcsum", outer_v6=False, l2=True,
             inner_v6=False),
        dict(name="vxlan4_udpcsum_in4_idwrap", device=f"vxlan id 42 {v4} dstport 4789 udpcsum", outer_v6=False,
             l2=True, inner_v6=False, ip_id=0xFFFE, segments=4),
        dict(name="vxlan4_udpcsum_in6", device=f"vxlan id 42 {v4} dstport 4789 udpcsum", outer_v6=False, l2=True,
             inner_v6=True, gso_size=1200, remainder=0),
        dict(name="vxlan4_nocsum_in6_ecn_cwr", device=f"vxlan id 7 {v4} dstport 8472 noudpcsum", outer_v6=False,
             l2=True, inner_v6=True, ecn=True, flags=0x98, gso_size=800),
        dict(name="vxlan6_csum_in4_fin", device=f"vxlan id 42 {v6} dstport 4789", outer_v6=True, l2=True,
             inner_v6=False, flags=0x19),
        dict(name="vxlan6_zerocsum_in6", device=f"vxlan id 42 {v6} dstport 4789 udp6zerocsumtx", outer_v6=True,
             l2=True, inner_v6=True, gso_size=600, segments=2, timestamps=False),
        dict(name="geneve4_nocsum_in4", device=f"geneve id 42 remote {V4_REMOTE}", outer_v6=False, l2=True,
             inner_v6=False, df=False),
        dict(name="geneve4_udpcsum_in6", device=f"geneve id 42 remote {V4_REMOTE} udpcsum", outer_v6=False, l2=True,
             inner_v6=True),
        dict(name="geneve6_csum_in4", device=f"geneve id 42 remote {V6_REMOTE}", outer_v6=True, l2=True,
             inner_v6=False, gso_size=900),
        dict(name="geneve4_options_csum_in4", device="geneve external", outer_v6=False, l2=True, inner_v6=False,
             extra_setup=geneve_opts, note="collect_md geneve, tunnel_key with two Geneve options"),
        dict(name="gretap4_in4", device=f"gretap {v4}", outer_v6=False, l2=True, inner_v6=False),
        dict(name="gretap4_key_csum_in6", device=f"gretap {v4} key 7 csum", outer_v6=False, l2=True, inner_v6=True),
        dict(name="gretap4_csum_in4_idwrap", device=f"gretap {v4} csum", outer_v6=False, l2=True, inner_v6=False,
             ip_id=0xFFFF, segments=4, remainder=0),
        dict(name="gre4_in4", device=f"gre {v4}", outer_v6=False, l2=False, inner_v6=False),
        dict(name="gre4_key_csum_in6", device=f"gre {v4} key 1234 csum", outer_v6=False, l2=False, inner_v6=True),
        dict(name="gre4_key_in4_fin", device=f"gre {v4} key 99", outer_v6=False, l2=False, inner_v6=False,
             flags=0x11, df=False),
        dict(name="ip6gre_encaplimit_in4", device=f"ip6gre {v6}", outer_v6=True, l2=False, inner_v6=False),
        dict(name="ip6gre_noencap_csum_in6", device=f"ip6gre {v6} encaplimit none csum", outer_v6=True, l2=False,
             inner_v6=True),
        dict(name="ip6gretap_csum_in4", device=f"ip6gretap {v6} csum", outer_v6=True, l2=True, inner_v6=False,
             gso_size=1100),
        dict(name="ipip_in4_dfclear_idwrap", device=f"ipip {v4}", outer_v6=False, l2=False, inner_v6=False,
             df=False, ip_id=0xFFFE),
        dict(name="sit_in6", device=f"sit {v4}", outer_v6=False, l2=False, inner_v6=True),
        dict(name="ip6tnl_4in6_encaplimit", device=f"ip6tnl mode ipip6 {v6}", outer_v6=True, l2=False,
             inner_v6=False),
        dict(name="ip6tnl_6in6_noencap", device=f"ip6tnl mode ip6ip6 {v6} encaplimit none", outer_v6=True,
             l2=False, inner_v6=True, ecn=True, flags=0x98),
    ]
    return shapes + encap_shapes()


def encap_shapes() -> list[dict]:
    """FOU and GUE (an ipip/sit/gre/gretap/ip6tnl/ip6gre device with ``encap fou|gue``: UDP_TUNNEL over the
    carried tunnel's own bits, spec 2.5.5) and VXLAN-GPE (an L3 VXLAN in metadata mode, a tc tunnel_key
    naming the remote); the FOU and GUE ports have no IANA number, so softgso is told them."""
    v4 = f"local {V4_LOCAL} remote {V4_REMOTE}"
    v6 = f"local {V6_LOCAL} remote {V6_REMOTE}"
    fou, gue = f"encap fou encap-sport auto encap-dport {FOU_PORT}", f"encap gue encap-sport auto encap-dport {GUE_PORT}"
    ports = {"tunnel_ports": (f"fou:{FOU_PORT}", f"gue:{GUE_PORT}")}

    def gpe_key(remote: tuple[str, str], csum: str) -> list[str]:
        return ["tc qdisc add dev tnl0 clsact",
                f"tc filter add dev tnl0 egress matchall action tunnel_key set src_ip {remote[0]} dst_ip {remote[1]} "
                f"id 42 dst_port {GPE_PORT} {csum}"]

    return [
        dict(name="fou_ipip_in4", device=f"ipip {v4} {fou} noencap-csum", outer_v6=False, l2=False, inner_v6=False,
             **ports),
        dict(name="fou_ipip_csum_in4_idwrap", device=f"ipip {v4} {fou} encap-csum", outer_v6=False, l2=False,
             inner_v6=False, ip_id=0xFFFE, segments=4, **ports),
        dict(name="fou_sit_csum_in6", device=f"sit {v4} {fou} encap-csum", outer_v6=False, l2=False, inner_v6=True,
             **ports),
        dict(name="fou_gre_in4", device=f"gre {v4} {fou} noencap-csum", outer_v6=False, l2=False, inner_v6=False,
             **ports),
        dict(name="fou_gre_key_csum_in6", device=f"gre {v4} key 77 {fou} encap-csum", outer_v6=False, l2=False,
             inner_v6=True, **ports),
        dict(name="fou_gretap_csum_in4", device=f"gretap {v4} {fou} encap-csum", outer_v6=False, l2=True,
             inner_v6=False, gso_size=1100, **ports),
        dict(name="gue_ipip_csum_in4_dfclear", device=f"ipip {v4} {gue} encap-csum", outer_v6=False, l2=False,
             inner_v6=False, df=False, **ports),
        dict(name="gue_sit_in6", device=f"sit {v4} {gue} noencap-csum", outer_v6=False, l2=False, inner_v6=True,
             **ports),
        dict(name="gue_gre_key_csum_in4_fin", device=f"gre {v4} key 5 {gue} encap-csum", outer_v6=False, l2=False,
             inner_v6=False, flags=0x11, **ports),
        dict(name="gue_gretap_in6", device=f"gretap {v4} {gue} noencap-csum", outer_v6=False, l2=True,
             inner_v6=True, **ports),
        dict(name="fou6_ip6tnl_4in6_noencap_csum", device=f"ip6tnl mode ipip6 {v6} encaplimit none {fou} encap-csum",
             outer_v6=True, l2=False, inner_v6=False, **ports),
        dict(name="fou6_ip6tnl_6in6_encaplimit_csum", device=f"ip6tnl mode ip6ip6 {v6} {fou} encap-csum",
             outer_v6=True, l2=False, inner_v6=True, **ports),
        dict(name="gue6_ip6gre_noencap_csum_in4", device=f"ip6gre {v6} encaplimit none {gue} encap-csum",
             outer_v6=True, l2=False, inner_v6=False, **ports),
        dict(name="gpe4_csum_in4", device=f"vxlan gpe external dstport {GPE_PORT}", outer_v6=False, l2=False,
             inner_v6=False, extra_setup=gpe_key((V4_LOCAL, V4_REMOTE), "csum"),
             note="VXLAN-GPE (metadata mode), tunnel_key with the UDP checksum"),
        dict(name="gpe4_nocsum_in6", device=f"vxlan gpe external dstport {GPE_PORT}", outer_v6=False, l2=False,
             inner_v6=True, extra_setup=gpe_key((V4_LOCAL, V4_REMOTE), "nocsum"),
             note="VXLAN-GPE (metadata mode), tunnel_key without the UDP checksum"),
        dict(name="gpe6_csum_in4", device=f"vxlan gpe external dstport {GPE_PORT}", outer_v6=True, l2=False,
             inner_v6=False, extra_setup=gpe_key((V6_LOCAL, V6_REMOTE), "csum"),
             note="VXLAN-GPE over IPv6 (metadata mode)"),
    ]


def option_shapes() -> list[dict]:
    """Geneve options over an outer IPv6 header."""
    geneve6_opts = ["tc qdisc add dev tnl0 clsact",
                    f"tc filter add dev tnl0 egress matchall action tunnel_key set src_ip {V6_LOCAL} dst_ip "
                    f"{V6_REMOTE} id 43 dst_port 6081 geneve_opts 0102:80:00880022,0103:01:0000000100000002 csum"]
    return [
        dict(name="geneve6_options_csum_in6", device="geneve external", outer_v6=True, l2=True, inner_v6=True,
             extra_setup=geneve6_opts, note="collect_md geneve over IPv6, tunnel_key with two Geneve options"),
    ]


def control_cases() -> list[TunnelCase]:
    """What the kernel does instead of cutting a tunnel super-packet on veth0 (spec 3.9, 6.2): devices that
    withhold GSO, so tnl0 segments before it encapsulates, inner UFO, and a veth0 that takes the
    super-packet whole."""
    v4 = f"local {V4_LOCAL} remote {V4_REMOTE}"
    fou = f"encap fou encap-sport auto encap-dport {FOU_PORT}"
    first, whole = CONTROL_SEGMENTED_FIRST, CONTROL_PASSED_WHOLE
    common = dict(outer_v6=False, inner_v6=False, ethtool="tx_off", control=first)
    return [
        TunnelCase(name="fou_gre_ocsum_control__tx_off", device=f"gre {v4} csum {fou} encap-csum", l2=False,
                   tunnel_ports=(f"fou:{FOU_PORT}",), note="GRE checksum under FOU: the device withholds GSO",
                   **common),  # type: ignore[arg-type]
        TunnelCase(name="erspan_control__tx_off", device=f"erspan {v4} seq key 10 erspan_ver 1 erspan 123", l2=True,
                   note="ERSPAN: the device never has GSO", **common),  # type: ignore[arg-type]
        TunnelCase(name="vxlan4_tnl0_tso_off_control__tx_off", device=f"vxlan id 42 {v4} dstport 4789 udpcsum",
                   l2=True, extra_setup=["ethtool -K tnl0 tso off"], note="tso off on the tunnel device",
                   **common),  # type: ignore[arg-type]
        TunnelCase(name="ufo_vxlan4_control__tx_off", device=f"vxlan id 42 {v4} dstport 4789 udpcsum", l2=True,
                   ufo=True, note="inner UFO (virtio GSO_UDP): no tunnel device has UFO", **common),  # type: ignore[arg-type]
        TunnelCase(name="ufo_ipip_control__tx_off", device=f"ipip {v4}", l2=False, ufo=True,
                   note="inner UFO (virtio GSO_UDP) over ipip", **common),  # type: ignore[arg-type]
        TunnelCase(name="vxlan4_udpcsum_passed_whole_control__tunnel_on", device=f"vxlan id 42 {v4} dstport 4789 "
                   "udpcsum", outer_v6=False, l2=True, inner_v6=False, ethtool="tunnel_on", control=whole,
                   note="veth0 has tx-udp_tnl-csum-segmentation: the super-packet leaves whole"),
        TunnelCase(name="gre4_key_passed_whole_control__tunnel_on", device=f"gre {v4} key 3", outer_v6=False,
                   l2=False, inner_v6=True, ethtool="tunnel_on", control=whole,
                   note="veth0 has tx-gre-segmentation: the super-packet leaves whole"),
        TunnelCase(name="fou_ipip_passed_whole_control__tunnel_on", device=f"ipip {v4} {fou} encap-csum",
                   outer_v6=False, l2=False, inner_v6=False, ethtool="tunnel_on", control=whole,
                   tunnel_ports=(f"fou:{FOU_PORT}",), note="veth0 has the UDP tunnel and IPXIP4 features"),
        TunnelCase(name="vxlan4_rco_control__tx_off", device=f"vxlan id 42 {v4} dstport 4789 noudpcsum remcsumtx",
                   l2=True, note="VXLAN remote checksum offload (remcsumtx): each packet carries the RCO bit",
                   **common),  # type: ignore[arg-type]
        TunnelCase(name="vxlan4_rco_udpcsum_in6_control__tx_off", device=f"vxlan id 42 {v4} dstport 4789 udpcsum "
                   "remcsumtx", l2=True, outer_v6=False, inner_v6=True, ethtool="tx_off", control=first,
                   note="VXLAN remote checksum offload with udpcsum, inner IPv6"),
        TunnelCase(name="gre_over_vxlan_nested_control__tx_off", device=f"vxlan id 42 {v4} dstport 4789 udpcsum",
                   l2=False, tx_device="tnl1", extra_setup=[
                       "ip addr add 10.9.0.1/24 dev tnl0", "ip link set tnl0 up",
                       "ip neigh replace 10.9.0.2 lladdr 02:00:00:00:00:cc dev tnl0 nud permanent",
                       "ip link add tnl1 type gre local 10.9.0.1 remote 10.9.0.2",
                       "sysctl -qw net.ipv6.conf.tnl1.disable_ipv6=1", "ip link set tnl1 up"],
                   note="a gre device routed through a vxlan device: nested tunnel GSO is never kept (spec 3.9)",
                   **common),  # type: ignore[arg-type]
    ]


GRO_SENDER_MAC, GRO_RECEIVER_MAC = "0200000000a0", "0200000000b0"
SKB_GSO_TCP_FIXEDID = 1 << 3  # 6.1-6.17 (include/linux/skbuff.h)
GRO_FLUSH_TIMEOUT_NS = 10_000_000
TRACE = "/sys/kernel/tracing"


@dataclass
class GroForwardCase(TunnelCase):
    """A tunnel super-packet made of a GRO aggregate being forwarded: the only route on which 6.1 and
    6.12 build one with SKB_GSO_TCP_FIXEDID (neither local TCP nor the virtio header sets it).

    The inner TCP segments are injected on vethA (TSO off, so its peer runs NAPI); vethB receives them
    with GRO on and one poll per burst (gro_flush_timeout, napi_defer_hard_irqs, a leading frame GRO
    passes straight up, as gro_guest.py does); inet_gro_receive / tcp_gro_receive merge them and
    tcp4_gro_complete marks the aggregate SKB_GSO_TCP_FIXEDID when every segment has DF and one ID
    (``fixed_ids``), or leaves it incrementing when the IDs count up. ip_forward routes it into tnl0,
    whose driver adds its tunnel bits; veth0 segments it in software as for the other cases. The
    net_dev_start_xmit trace on tnl0 (the aggregate) and dum0 (the encapsulated super-packet) records
    the gso_type the kernel gave it."""

    fixed_ids: bool = True

    def wire_segments(self) -> list[bytes]:
        """The segments a sender put on the wire: full checksums, consecutive sequence numbers, the
        case's flags on the last (ACK before it), one IPv4 ID or IDs counting up."""
        options = (b"\x01\x01\x08\x0a" + struct.pack("!II", 0x01020304, 0x0A0B0C0D)) if self.timestamps else b""
        doff = (20 + len(options)) // 4
        sizes = [self.gso_size] * self.segments + ([self.remainder] if self.remainder else [])
        frames, offset = [], 0
        for index, size in enumerate(sizes):
            payload = bytes((i * 7 + 3) & 0xFF for i in range(offset, offset + size))
            flags = self.flags if index == len(sizes) - 1 else self.flags & ~0x09  # FIN/PSH on the last only
            tcp = struct.pack("!HHIIBBHHH", 40000, 5001, (0x10000000 + offset) & 0xFFFFFFFF, 0x20000000, doff << 4,
                              flags, 502, 0, 0) + options + payload
            if self.inner_v6:
                src, dst = INNER_V6
                pseudo = src + dst + struct.pack("!IxxxB", len(tcp), 6)
                ip = struct.pack("!IHBB", 0x60012345, len(tcp), 6, 64) + src + dst
            else:
                src, dst = INNER_V4
                pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
                ip_id = (self.ip_id + (0 if self.fixed_ids else index)) & 0xFFFF
                ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(tcp), ip_id, 0x4000 if self.df else 0, 64, 6, 0)
                ip = ip + src + dst
                ip = ip[:10] + struct.pack("!H", _fold_complement(_ones(ip))) + ip[12:]
            tcp = tcp[:16] + struct.pack("!H", _fold_complement(_ones(pseudo + tcp))) + tcp[18:]
            ethertype = 0x86DD if self.inner_v6 else 0x0800
            frames.append(bytes.fromhex(GRO_RECEIVER_MAC + GRO_SENDER_MAC) + struct.pack("!H", ethertype) + ip + tcp)
            offset += size
        return frames

    def keeps(self, frame: bytes) -> bool:
        # the forwarded flow only: with IPv6 on tnl0 its link-up reports travel the tunnel too
        return is_case_frame(frame, self) and struct.pack("!HH", 40000, 5001) in frame

    def guest_form(self) -> dict[str, object]:
        form = super().guest_form()
        inner = "fd00::2/128" if self.inner_v6 else "10.1.0.2/32"
        family = "-6 " if self.inner_v6 else ""
        setup = [
            "ip link del vethA 2>/dev/null; true",
            "ip link add vethA type veth peer name vethB",
            f"ip link set vethB address {':'.join(GRO_RECEIVER_MAC[i:i + 2] for i in range(0, 12, 2))}",
            "sysctl -qw net.ipv6.conf.vethA.disable_ipv6=1",
            f"sysctl -qw net.ipv6.conf.vethB.disable_ipv6={0 if self.inner_v6 else 1}",
            "ethtool -K vethA tso off; ethtool -K vethB gro on",
            f"echo {GRO_FLUSH_TIMEOUT_NS} > /sys/class/net/vethB/gro_flush_timeout",
            "echo 1 > /sys/class/net/vethB/napi_defer_hard_irqs",
            "ip link set vethA up; ip link set vethB up",
            "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.vethB.rp_filter=0",
        ]
        if self.inner_v6:
            setup += ["sysctl -qw net.ipv6.conf.all.forwarding=1", "sysctl -qw net.ipv6.conf.tnl0.disable_ipv6=0"]
        setup.append(f"ip {family}route replace {inner} dev tnl0")
        if self.l2:
            setup.append(f"ip {family}neigh replace {inner.split('/')[0]} lladdr 02:00:00:00:00:aa dev tnl0 "
                         "nud permanent")
        setup += [f"mountpoint -q {TRACE} || mount -t tracefs nodev {TRACE}",
                  f"echo 0 > {TRACE}/tracing_on; echo > {TRACE}/trace",
                  f"echo 1 > {TRACE}/events/net/net_dev_start_xmit/enable; echo 1 > {TRACE}/tracing_on"]
        form["setup"] = [*form["setup"], *setup]  # type: ignore[list-item]
        form["teardown"] = [f"echo 0 > {TRACE}/events/net/net_dev_start_xmit/enable",
                            "sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0",
                            "ip link del vethA", *form["teardown"]]  # type: ignore[misc]
        form["gro_burst"] = {"device": "vethA", "frames": [f.hex() for f in self.wire_segments()]}
        form["trace_devices"] = ["tnl0", "dum0"]
        return form

    def extra_meta(self, result: dict) -> dict[str, object]:
        trace = result.get("trace", [])
        aggregate, encapsulated = (_traced_gso(trace, device) for device in ("tnl0", "dum0"))
        return {"vnet_hdr": None, "inner_gso_type": VIRTIO_GSO_TCPV6 if self.inner_v6 else VIRTIO_GSO_TCPV4,
                "injected_on": f"{len(self.wire_segments())} TCP segments on vethA (AF_PACKET), GRO on vethB "
                               f"({'one IPv4 ID' if self.fixed_ids else 'IPv4 IDs counting up'}"
                               f"{', DF' if self.df else ''}), ip_forward into tnl0",
                "gro_forward": {"fixed_ids": self.fixed_ids, "wire_segments": len(self.wire_segments()),
                                "aggregate_gso": aggregate, "super_gso": encapsulated},
                "skb_gso_type": None if encapsulated is None else encapsulated["gso_type"],
                "trace": trace}


def _traced_gso(trace: list[str], device: str) -> dict[str, int] | None:
    """gso_type/gso_size/len of the GSO skb net_dev_start_xmit saw on ``device`` (None: none was)."""
    for line in trace:
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if fields.get("dev") == device and int(fields.get("gso_size", "0")):
            return {"gso_type": int(fields["gso_type"], 16), "gso_size": int(fields["gso_size"]),
                    "len": int(fields["len"])}
    return None


def gro_forward_cases() -> list[TunnelCase]:
    """GRO then forwarding into a tunnel (GroForwardCase): the inner TCP with SKB_GSO_TCP_FIXEDID on each
    tunnel kind and outer family, with the UDP checksum on and off; the same route with IDs counting
    up (no FIXEDID); inner IPv6 (no ID at all)."""
    v4 = f"local {V4_LOCAL} remote {V4_REMOTE}"
    v6 = f"local {V6_LOCAL} remote {V6_REMOTE}"
    shapes: list[dict] = [
        dict(name="vxlan4_udpcsum_in4", device=f"vxlan id 42 {v4} dstport 4789 udpcsum", outer_v6=False, l2=True,
             inner_v6=False),
        dict(name="vxlan4_nocsum_in4_idwrap", device=f"vxlan id 42 {v4} dstport 4789 noudpcsum", outer_v6=False,
             l2=True, inner_v6=False, ip_id=0xFFFF),
        dict(name="vxlan4_udpcsum_in4_incrementing", device=f"vxlan id 42 {v4} dstport 4789 udpcsum",
             outer_v6=False, l2=True, inner_v6=False, fixed_ids=False, ip_id=0xFFFE),
        dict(name="vxlan6_csum_in4", device=f"vxlan id 42 {v6} dstport 4789", outer_v6=True, l2=True,
             inner_v6=False),
        dict(name="geneve4_nocsum_in4", device=f"geneve id 42 remote {V4_REMOTE}", outer_v6=False, l2=True,
             inner_v6=False),
        dict(name="gre4_key_csum_in4", device=f"gre {v4} key 1234 csum", outer_v6=False, l2=False, inner_v6=False),
        dict(name="gretap4_in4", device=f"gretap {v4}", outer_v6=False, l2=True, inner_v6=False, flags=0x19),
        dict(name="gretap4_in4_incrementing", device=f"gretap {v4}", outer_v6=False, l2=True, inner_v6=False,
             fixed_ids=False),
        dict(name="ip6gre_in4", device=f"ip6gre {v6}", outer_v6=True, l2=False, inner_v6=False),
        dict(name="ipip_in4", device=f"ipip {v4}", outer_v6=False, l2=False, inner_v6=False),
        dict(name="ipip_in4_incrementing", device=f"ipip {v4}", outer_v6=False, l2=False, inner_v6=False,
             fixed_ids=False),
        dict(name="ip6tnl_4in6", device=f"ip6tnl mode ipip6 {v6}", outer_v6=True, l2=False, inner_v6=False),
        dict(name="vxlan4_udpcsum_in6", device=f"vxlan id 42 {v4} dstport 4789 udpcsum", outer_v6=False, l2=True,
             inner_v6=True),
        dict(name="sit_in6", device=f"sit {v4}", outer_v6=False, l2=False, inner_v6=True),
    ]
    cases: list[TunnelCase] = []
    for shape in shapes:
        for ethtool in ("tx_off", "tso_off") if shape["name"] in ("vxlan4_udpcsum_in4", "ipip_in4") else ("tx_off",):
            cases.append(GroForwardCase(**{"segments": 3, "remainder": 400, **shape,
                                           "name": f"fixedid_{shape['name']}__{ethtool}", "ethtool": ethtool,
                                           "note": "GRO aggregate forwarded into the tunnel"}))
    return cases




MPLS_AFTER = ("tc -s filter show dev tnl0 egress", "tc -s filter show dev veth0 egress", "ip -s link show tnl0",
              "ip -s link show veth0", "dmesg -c")


def mpls_tunnel_cases() -> list[TunnelCase]:
    """MPLS with a tunnel device on the routes Linux keeps apart (spec 7.3, 7.4), as controls.

    7.3: labels pushed on a packet whose next device is the tunnel (tc ``mpls push`` on tnl0's egress
    for a super-packet injected on tnl0; an ``encap mpls`` route out of tnl0 for a local TCP socket):
    tnl0 does software MPLS GSO and encapsulates each segment, so veth0 never sees a tunnel
    super-packet. dum1, a mirror of tnl0's egress after the push, holds the MPLS super-packet.
    7.4: tc ``mpls push`` on veth0's egress for a tunnel super-packet (skb_mpls_push refuses an
    encapsulated skb). The underlay-route case (labels on top of a tunnel super-packet) is in
    :func:`mpls_underlay_route_cases`, one per boot."""
    v4 = f"local {V4_LOCAL} remote {V4_REMOTE}"
    mirror_dum1 = ["ip link del dum1 2>/dev/null; ip link add dum1 type dummy", "sysctl -qw net.ipv6.conf.dum1.disable_ipv6=1",
                   "ip link set dum1 up", "tc qdisc add dev tnl0 clsact"]
    common = dict(outer_v6=False, ethtool="tx_off", control=CONTROL_MPLS_FIRST, also_capture=("dum1",),
                  after=MPLS_AFTER)

    def pushed(*labels: int) -> list[str]:
        actions = " ".join(f"action mpls push label {label} ttl 64 pipe" for label in labels)
        return [*mirror_dum1, f"tc filter add dev tnl0 egress pref 1 matchall {actions} "
                              "action mirred ingress mirror dev dum1"]

    def routed(labels: str, l2: bool) -> list[str]:
        return [*mirror_dum1, "tc filter add dev tnl0 egress pref 1 matchall action mirred ingress mirror dev dum1",
                "ip link set tnl0 up", "ip addr add 10.1.0.1/24 dev tnl0",
                "ip neigh replace 10.1.0.2 lladdr 02:00:00:00:00:aa dev tnl0 nud permanent" if l2 else "true",
                f"ip route add 10.2.0.2/32 encap mpls {labels} via 10.1.0.2 dev tnl0"]

    def tcp(mss_clamp: int, payload_len: int, v6: bool = False) -> dict[str, object]:
        return {"src": "fd01::1" if v6 else "10.1.0.1", "dst": "fd02::2" if v6 else "10.2.0.2", "port": 5001,
                "mss_clamp": mss_clamp, "payload_len": payload_len}

    def routed6(labels: str) -> list[str]:
        # IPv6 on tnl0 for the sender; no router solicitations, and its listener reports go before the capture
        return [*mirror_dum1, "tc filter add dev tnl0 egress pref 1 matchall action mirred ingress mirror dev dum1",
                "ip link set tnl0 up", "sysctl -qw net.ipv6.conf.tnl0.router_solicitations=0",
                "sysctl -qw net.ipv6.conf.tnl0.disable_ipv6=0", "ip -6 addr add fd01::1/64 dev tnl0 nodad",
                "ip -6 neigh replace fd01::2 lladdr 02:00:00:00:00:aa dev tnl0 nud permanent",
                f"ip -6 route add fd02::2/128 encap mpls {labels} via fd01::2 dev tnl0", "sleep 2.5"]

    push_note = "tc mpls push on tnl0's egress: MPLS GSO at tnl0 (mpls_features), then each segment encapsulated"
    route_note = ("an encap mpls route out of tnl0, a local TCP socket (TCP_REPAIR) sending: MPLS GSO at tnl0, "
                  "then each segment encapsulated")
    cases = [
        TunnelCase(name="mplspush_gre4_control__tx_off", device=f"gre {v4}", l2=False, inner_v6=False,
                   extra_setup=pushed(100), note=push_note, **common),  # type: ignore[arg-type]
        TunnelCase(name="mplspush_gretap4_2labels_control__tx_off", device=f"gretap {v4} key 7", l2=True,
                   inner_v6=False, extra_setup=pushed(100, 200), note=push_note, **common),  # type: ignore[arg-type]
        TunnelCase(name="mplspush_vxlan4_udpcsum_in6_control__tx_off", device=f"vxlan id 42 {v4} dstport 4789 udpcsum",
                   l2=True, inner_v6=True, gso_size=1200, extra_setup=pushed(100), note=push_note,
                   **common),  # type: ignore[arg-type]
        TunnelCase(name="mplspush_ip6gre_in4_control__tx_off", device=f"ip6gre local {V6_LOCAL} remote {V6_REMOTE}",
                   l2=False, inner_v6=False, extra_setup=pushed(100), note=push_note + " (over IPv6)",
                   **{**common, "outer_v6": True}),  # type: ignore[arg-type]
        TunnelCase(name="mplspush_ipip_mplsip_control__tx_off", device=f"ipip mode mplsip {v4}", l2=False,
                   inner_v6=False, extra_setup=pushed(100), note=push_note + " (ipip mode mplsip: IP protocol 137)",
                   **common),  # type: ignore[arg-type]
        TunnelCase(name="mplsroute_gre4_control__tx_off", device=f"gre {v4}", l2=False, inner_v6=False,
                   extra_setup=routed("100", False), tcp_send=tcp(32767, 4000), note=route_note + " (the route's MSS)",
                   **common),  # type: ignore[arg-type]
        TunnelCase(name="mplsroute_gretap4_2labels_control__tx_off", device=f"gretap {v4} csum", l2=True,
                   inner_v6=False, extra_setup=routed("100/200", True), tcp_send=tcp(32767, 4000),
                   note=route_note + " (the route's MSS)", **common),  # type: ignore[arg-type]
        TunnelCase(name="mplsroute_gretap4_in6_control__tx_off", device=f"gretap {v4}", l2=True, inner_v6=True,
                   extra_setup=routed6("100"), tcp_send=tcp(32767, 4000, v6=True),
                   note=route_note + " (an IPv6 route and socket, the route's MSS)", **common),  # type: ignore[arg-type]
        TunnelCase(name="mplsroute_vxlan4_udpcsum_control__tx_off", device=f"vxlan id 42 {v4} dstport 4789 udpcsum",
                   l2=True, inner_v6=False, extra_setup=routed("100", True), tcp_send=tcp(1000, 3300),
                   note=route_note, **common),  # type: ignore[arg-type]
        TunnelCase(name="mplsroute_ipip_mplsip_control__tx_off", device=f"ipip mode mplsip {v4}", l2=False,
                   inner_v6=False, extra_setup=routed("100", False), tcp_send=tcp(1000, 3300),
                   note=route_note + " (ipip mode mplsip)", **common),  # type: ignore[arg-type]
    ]
    # 7.4: a tunnel super-packet, then tc mpls push on the underlay's egress (after the mirror to dum0)
    refused = dict(outer_v6=False, ethtool="tx_off", control=CONTROL_REFUSED, after=MPLS_AFTER,
                   note="tc mpls push on veth0's egress of a tunnel super-packet: skb_mpls_push refuses an "
                        "encapsulated skb")
    underlay_push = ["tc filter del dev veth0 egress pref 2",
                     "tc filter add dev veth0 egress pref 2 matchall action mirred egress mirror dev dum0 pipe "
                     "action mpls push label 300 ttl 64"]
    cases += [
        TunnelCase(name="mplspush_underlay_vxlan4_refused_control__tx_off", device=f"vxlan id 42 {v4} dstport 4789 "
                   "udpcsum", l2=True, inner_v6=False, extra_setup=underlay_push, **refused),  # type: ignore[arg-type]
        TunnelCase(name="mplspush_underlay_gre4_refused_control__tx_off", device=f"gre {v4} key 9", l2=False,
                   inner_v6=False, extra_setup=underlay_push, **refused),  # type: ignore[arg-type]
        # one packet, no GSO: iptunnel_handle_offloads keeps skb->encapsulation only while the inner
        # checksum is left to the device (CHECKSUM_PARTIAL)
        TunnelCase(name="mplspush_underlay_vxlan4_single_partial_refused_control__tx_off", device=f"vxlan id 42 {v4} "
                   "dstport 4789 udpcsum", l2=True, inner_v6=False, extra_setup=underlay_push, no_gso=True,
                   segments=0, remainder=500, **{**refused, "note": "one packet, inner checksum left to the device "
                   "(NEEDS_CSUM), then tc mpls push on veth0's egress"}),  # type: ignore[arg-type]
        TunnelCase(name="mplspush_underlay_vxlan4_single_complete_control__tx_off", device=f"vxlan id 42 {v4} "
                   "dstport 4789 udpcsum", l2=True, inner_v6=False, extra_setup=underlay_push, no_gso=True,
                   complete_csum=True, segments=0, remainder=500,
                   **{**refused, "control": CONTROL_PUSHED, "note": "one packet, inner checksum complete (virtio "
                      "flags 0), then tc mpls push on veth0's egress"}),  # type: ignore[arg-type]
        TunnelCase(name="mplspush_underlay_gre4_single_partial_refused_control__tx_off", device=f"gre {v4} key 9",
                   l2=False, inner_v6=False, extra_setup=underlay_push, no_gso=True, segments=0, remainder=500,
                   **{**refused, "note": "one packet, inner checksum left to the device (NEEDS_CSUM), then tc mpls "
                      "push on veth0's egress"}),  # type: ignore[arg-type]
        TunnelCase(name="mplspush_underlay_gre4_single_complete_control__tx_off", device=f"gre {v4} key 9", l2=False,
                   inner_v6=False, extra_setup=underlay_push, no_gso=True, complete_csum=True, segments=0,
                   remainder=500, **{**refused, "control": CONTROL_PUSHED, "note": "one packet, inner checksum "
                                     "complete (virtio flags 0), then tc mpls push on veth0's egress"}),  # type: ignore[arg-type]
    ]
    return cases


def mpls_underlay_route_cases() -> list[TunnelCase]:
    """Spec 7.4's last row: an ``encap mpls`` route to the tunnel's remote, so the tunnel super-packet
    gets labels on top (mpls_xmit resets inner_protocol and inner_network_header to the outer IP
    header, ``encapsulation`` stays 1). Unverified in the spec; recorded one case per boot
    (``--underlay-route NAME``), the console kept, since the guest may not survive it."""
    v4 = f"local {V4_LOCAL} remote {V4_REMOTE}"
    # the labelled super-packet is caught by a mirror to dum1's ingress (dum0's egress would cut it)
    route = ["ip link del dum1 2>/dev/null; ip link add dum1 type dummy", "sysctl -qw net.ipv6.conf.dum1.disable_ipv6=1",
             "ip link set dum1 up", "tc filter del dev veth0 egress pref 2",
             "tc filter add dev veth0 egress pref 2 matchall action mirred egress mirror dev dum0 pipe "
             "action mirred ingress mirror dev dum1",
             "ip neigh replace 192.0.2.254 lladdr 02:00:00:00:00:fe dev veth0 nud permanent",
             f"ip route add {V4_REMOTE}/32 encap mpls 200 via 192.0.2.254 dev veth0"]
    common = dict(outer_v6=False, inner_v6=False, ethtool="tx_off", control=CONTROL_LABELS_ABOVE,
                  extra_setup=route, after=MPLS_AFTER, also_capture=("dum1",),
                  note="an encap mpls route to the tunnel's remote: labels on top of a tunnel super-packet")
    return [
        TunnelCase(name="mplsroute_underlay_vxlan4_control__tx_off", device=f"vxlan id 42 {v4} dstport 4789 udpcsum",
                   l2=True, **common),  # type: ignore[arg-type]
        TunnelCase(name="mplsroute_underlay_gre4_control__tx_off", device=f"gre {v4}", l2=False,
                   **common),  # type: ignore[arg-type]
    ]


def designed_cases() -> list[TunnelCase]:
    """The designed matrix: every kind, outer IPv4/IPv6, outer checksum on/off, options, inner
    IPv4/IPv6, TCP flags and ECN, IDs at the wrap and DF clear, both software-GSO checksum modes."""
    v4 = f"local {V4_LOCAL} remote {V4_REMOTE}"
    v6 = f"local {V6_LOCAL} remote {V6_REMOTE}"
    shapes = tcp_shapes()
    cases = []
    for ethtool in ("tx_off", "tso_off"):
        for shape in shapes + option_shapes():
            name = f"{shape['name']}__{ethtool}"
            cases.append(TunnelCase(**{**shape, "name": name, "ethtool": ethtool}))
    # inner USO (a UDP socket with UDP_SEGMENT, AF_INET or AF_INET6) through the tunnel devices: the
    # super-packet is UDP_L4 | tunnel bits
    uso_shapes = [
        dict(name="uso_vxlan4_udpcsum", device=f"vxlan id 42 {v4} dstport 4789 udpcsum", outer_v6=False, l2=True),
        dict(name="uso_vxlan4_nocsum", device=f"vxlan id 42 {v4} dstport 4789 noudpcsum", outer_v6=False, l2=True),
        dict(name="uso_geneve6_csum", device=f"geneve id 42 remote {V6_REMOTE}", outer_v6=True, l2=True),
        dict(name="uso_gretap4_csum", device=f"gretap {v4} csum", outer_v6=False, l2=True),
        dict(name="uso_gre4_key", device=f"gre {v4} key 5", outer_v6=False, l2=False),
        dict(name="uso_ipip", device=f"ipip {v4}", outer_v6=False, l2=False),
        dict(name="uso6_vxlan6_csum", device=f"vxlan id 42 {v6} dstport 4789", outer_v6=True, l2=True),
        dict(name="uso6_gretap4_csum", device=f"gretap {v4} csum", outer_v6=False, l2=True),
        dict(name="uso6_gre4", device=f"gre {v4}", outer_v6=False, l2=False),
        dict(name="uso6_sit", device=f"sit {v4}", outer_v6=False, l2=False),
        dict(name="uso6_ip6tnl_6in6", device=f"ip6tnl mode ip6ip6 {v6} encaplimit none", outer_v6=True, l2=False),
    ]
    for ethtool in ("tx_off", "uso_off"):  # tx-udp-segmentation stays on with tso off: USO would leave whole
        for shape in uso_shapes:
            inner_v6 = str(shape["name"]).startswith("uso6_")
            cases.append(TunnelCase(**{**shape, "name": f"{shape['name']}__{ethtool}", "ethtool": ethtool,
                                       "inner_v6": inner_v6, "uso": True,
                                       "note": "AF_INET6 UDP socket with UDP_SEGMENT" if inner_v6 else
                                               "UDP socket with UDP_SEGMENT"}))
    # MPLS in UDP and in GRE as a tc BPF program builds them (spec 7.2): the one route on which Linux
    # segments MPLS inside a tunnel; the labels are the inner MAC header
    for ethtool in ("tx_off", "tso_off"):
        for v6 in (0, 1):
            for gre in (0, 1):
                for labels in (1, 3):
                    kind = "mpls_in_gre" if gre else "mpls_in_udp"
                    cases.append(TunnelCase(
                        name=f"bpf_{kind}{6 if v6 else 4}_{labels}label{'s' if labels > 1 else ''}__{ethtool}",
                        device="(none: tc bpf on veth0)", outer_v6=bool(v6), l2=True, inner_v6=bool(v6),
                        ethtool=ethtool, gso_size=1300 if not v6 else 1200, ip_id=0xFFFD if labels == 3 else 0x1234,
                        bpf={"OUTER_V6": v6, "USE_GRE": gre, "LABELS": labels},
                        note="bpf_skb_adjust_room(FIXED_GSO | ENCAP_L3 | ENCAP_L4_UDP/GRE | ENCAP_L2(4n))"))
    # negative control: a GRE device with output sequence numbers never builds a super-packet (spec 3.9)
    cases.append(TunnelCase(name="gre4_oseq_control__tx_off", device=f"gre {v4} oseq", outer_v6=False, l2=False,
                            inner_v6=False, ethtool="tx_off", control=CONTROL_SEGMENTED_FIRST,
                            note="negative control: no tunnel GSO expected"))
    return cases + control_cases() + mpls_tunnel_cases() + gro_forward_cases()


FLAG_CHOICES = (0x10, 0x18, 0x11, 0x19, 0x90, 0x98, 0x30, 0x38)  # ACK, PSH, FIN, CWR, URG combinations


INNER_HEADER_KINDS = ("hop:0", "hop:1", "dst:0", "dst:2", "rt:1", "rt:2", "hao:2")


def draw_inner_headers(case: TunnelCase, rng: random.Random) -> TunnelCase:
    """The ``headers`` variant (drawn only when asked for): the inner packet gets 1-3 IPv6 extension headers
    (hop-by-hop first when drawn, destination options, routing, a Home Address option), or IPv4 options, and
    a random TCP option list; gso_size shrinks so that every segment still fits veth0's MTU."""
    from .generate import draw_ip_options, draw_tcp_options

    extra = 0
    if case.inner_v6:
        chain = [rng.choice(INNER_HEADER_KINDS[1:]) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.4:
            chain.insert(0, "hop:0")
        case.inner_ext_headers = tuple(chain[:3])
        extra = case._inner_l3_len() - 40
    elif rng.random() < 0.8:
        case.inner_ip_options = draw_ip_options(rng)
        extra = len(bytes.fromhex(case.inner_ip_options))
    if not case.ufo and rng.random() < 0.7:
        case.tcp_options = draw_tcp_options(rng)
    extra += 40  # the longest TCP option list, against the 12 bytes of timestamps the base room assumes
    case.gso_size = max(64, min(case.gso_size, 1500 - 70 - (40 if case.inner_v6 else 20) - 32 - extra))
    case.remainder = min(case.remainder, case.gso_size - 1)
    if case.segments == 1 and case.remainder == 0:
        case.remainder = 1
    case.name = case.name.replace("random_", "hdrs_", 1)
    return case


def random_cases(seed: int, count: int, variant: str = "") -> list[TunnelCase]:
    """``count`` cases drawn from ``seed``: a designed device (or a BPF MPLS variant) with a random
    inner packet (family, gso_size, segment count, last-segment size, flags, ECN, DF, ID, options)
    and a random software-GSO checksum mode; about one in five takes the GRO route
    (:func:`gro_forward_variant`). Case i depends only on (seed, i). The ``headers`` variant (opt-in, so
    no plan of a seed moves) draws device cases only and gives each inner packet the headers of
    :func:`draw_inner_headers`."""
    shapes = tcp_shapes()
    cases = []
    for index in range(count):
        rng = random.Random(f"{seed}/{index}")
        if rng.random() < 0.2 and variant != "headers":
            v6, gre, labels = rng.randint(0, 1), rng.randint(0, 1), rng.randint(1, 3)
            shape = dict(name=f"bpf_{'gre' if gre else 'udp'}{6 if v6 else 4}_{labels}", device="(none: tc bpf)",
                         outer_v6=bool(v6), l2=True, inner_v6=bool(v6),
                         bpf={"OUTER_V6": v6, "USE_GRE": gre, "LABELS": labels})
        else:
            shape = dict(rng.choice(shapes))
            if not {"sit", "ip6tnl", "ipip"} & set(shape["name"].split("_")):  # these carry one family
                shape["inner_v6"] = rng.random() < 0.5
            for key in ("gso_size", "segments", "remainder", "flags", "ecn", "df", "ip_id", "timestamps"):
                shape.pop(key, None)
        # room for the biggest tunnel overhead (ip6gretap with dst-opt and csum: 70) plus inner headers
        inner_room = 1500 - 70 - (40 if shape["inner_v6"] else 20) - 32 - 12
        gso_size = rng.choice([rng.randint(100, inner_room), inner_room, rng.randint(500, 1000)])
        flags = rng.choice(FLAG_CHOICES)
        case = TunnelCase(**{**shape,
                             "name": f"random_s{seed}_{index:03d}_{shape['name'].split('_in')[0]}_in"
                                     f"{6 if shape['inner_v6'] else 4}",
                             "ethtool": rng.choice(("tx_off", "tso_off")),
                             "gso_size": gso_size, "segments": rng.randint(1, 6),
                             "remainder": rng.choice([0, 1, rng.randint(1, gso_size - 1)]),
                             "flags": flags, "ecn": bool(flags & 0x80) or rng.random() < 0.2,
                             "df": rng.random() < 0.7, "ip_id": rng.choice([rng.randint(0, 0xFFFF), 0xFFFF, 0xFFFE]),
                             "timestamps": rng.random() < 0.6,
                             "note": f"random case {index} of seed {seed}"})
        if case.segments == 1 and case.remainder == 0:
            case.remainder = 1  # at least two segments: a payload of one gso_size is no GSO packet
        if variant == "headers":
            cases.append(draw_inner_headers(case, random.Random(f"{seed}/{index}/headers")))
            continue
        cases.append(gro_forward_variant(case, random.Random(f"{seed}/{index}/gro")))
    return cases


def gro_forward_variant(case: TunnelCase, rng: random.Random) -> TunnelCase:
    """About one drawn device case in five takes the GRO route instead (:class:`GroForwardCase`), decided
    by a stream of its own so that every other parameter stays as drawn: the same segments arrive on
    vethB, with one IPv4 ID (and DF: GRO sets FIXEDID) or IDs counting up (DF as drawn), without the
    flags GRO will not merge (URG, ECE, CWR), and small enough for the tunnel's MTU when forwarded."""
    if case.bpf is not None or rng.random() >= 0.2:
        return case
    fixed_ids = rng.random() < 0.6
    gso_size = min(case.gso_size, 1200 - (20 if case.inner_v6 else 0))
    fields = {f.name: getattr(case, f.name) for f in dataclasses.fields(TunnelCase)}
    return GroForwardCase(**{**fields, "name": f"{case.name}_gro{'fixed' if fixed_ids else 'inc'}",
                             "gso_size": gso_size, "remainder": case.remainder % gso_size or (0 if case.segments > 1
                                                                                             else 1),
                             "flags": case.flags & ~0xE0, "ecn": False, "df": case.df or fixed_ids,
                             "fixed_ids": fixed_ids, "note": case.note + ", GRO aggregate forwarded into the tunnel"})


def expected_remote(case: TunnelCase) -> bytes:
    """The outer destination address every frame of the case carries (link noise carries others)."""
    if case.bpf is not None:
        return INNER_V6[1] if case.inner_v6 else INNER_V4[1]
    return bytes.fromhex("20010db8000000000000000000000002") if case.outer_v6 else bytes([192, 0, 2, 2])


def is_case_frame(frame: bytes, case: TunnelCase) -> bool:
    """An outer IPv4/IPv6 frame to the case's remote (MLD, neighbour discovery and the like are not)."""
    ethertype = int.from_bytes(frame[12:14], "big")
    if ethertype in (0x8847, 0x8848):  # labels on top (spec 7.4's underlay route): the IP header under them
        at = 14
        while at + 4 <= len(frame) and not frame[at + 2] & 0x01:
            at += 4
        frame = frame[:12] + (b"\x08\x00" if at + 4 < len(frame) and frame[at + 4] >> 4 == 4 else b"\x86\xdd") + \
            frame[at + 4 :]
        ethertype = int.from_bytes(frame[12:14], "big")
    if ethertype == 0x0800 and len(frame) >= 34:
        return frame[30:34] == expected_remote(case)
    if ethertype == 0x86DD and len(frame) >= 54:
        return frame[38:54] == expected_remote(case)
    return False


LINKTYPE_LINUX_SLL = 113


def write_pcap(path: Path, frames: list[bytes], linktype: int = 1) -> None:
    """A little-endian pcap, Ethernet (or ``linktype``), synthetic timestamps (1700000000 + index)."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        for index, frame in enumerate(frames):
            out.write(struct.pack("<IIII", 1700000000 + index, 0, len(frame), len(frame)))
            out.write(frame)


def _add_mpls_results(folder: Path, case: TunnelCase, result: dict, meta: dict) -> None:
    """What the MPLS-and-tunnel cases record besides input and output: the frames dum1 saw (tnl0's egress
    after the labels were pushed: ``before_tunnel.pcap``, Ethernet for an Ethernet tunnel device, Linux
    cooked (SLL) with AF_PACKET's fields for an L3 one, whose packets have no Ethernet header), the TCP
    sender's MSS, the commands of ``after``."""
    if case.also_capture:
        cooked = [f for f in result.get("also", {}).get("dum1", []) if len(f["data"]) > 2 * (14 + 20)]  # no link noise
        before = [bytes.fromhex(f["data"]) for f in cooked]
        if case.control == CONTROL_LABELS_ABOVE:  # veth0's egress: the labelled tunnel super-packet is the input
            write_pcap(folder / "input.pcap", before)
            meta["super_packets"] = len(before)
            meta["capture"] = ("input: AF_PACKET on dum1 (incoming), fed by a tc matchall mirred ingress mirror of "
                               "veth0's egress (dum0, an egress mirror, cuts an MPLS super-packet before its capture "
                               "sees it); output: AF_PACKET on veth1 (rx), GRO off")
            return _add_mpls_meta(case, result, meta)
        if case.l2:
            write_pcap(folder / "before_tunnel.pcap", before)
        else:  # an L3 device's packet has no Ethernet header: a cooked capture, AF_PACKET's own fields
            write_pcap(folder / "before_tunnel.pcap", [
                struct.pack("!HHH", f["pkttype"], f["hatype"], len(f["addr"]) // 2) +
                bytes.fromhex(f["addr"]).ljust(8, b"\0")[:8] + struct.pack("!H", f["protocol"]) +
                bytes.fromhex(f["data"]) for f in cooked], LINKTYPE_LINUX_SLL)
        meta["before_tunnel"] = ("dum1: AF_PACKET (incoming), fed by a tc matchall mirred ingress mirror of tnl0's "
                                 "egress, after the labels were pushed (a dummy's egress would cut an MPLS "
                                 "super-packet: its mpls_features have no GSO)")
    _add_mpls_meta(case, result, meta)


def _add_mpls_meta(case: TunnelCase, result: dict, meta: dict) -> None:
    if case.tcp_send is not None:
        meta["tcp_send"] = case.tcp_send
        meta["tcp_mss"] = result.get("tcp_mss")
        meta["injected_on"] = "a local TCP socket (TCP_REPAIR: established without a peer), routed over tnl0"
        meta["vnet_hdr"] = None
    if case.after:
        meta["after"] = result.get("after", {})


class TunnelVM(KernelVM):
    guest_module = "kernel_oracle.tunnel_guest"
    guest_files = ("__init__.py", "guest_batches.py", "tunnel_guest.py")


def record(out_dir: Path, kernel: str | None, only: str | None, random_seed: int | None = None,
           random_count: int = 0, underlay_route: str | None = None, variant: str = "") -> int:
    """Boot the kernel, run every case (designed, or ``random_count`` drawn from ``random_seed``, or
    the one underlay-route case named), write the vectors; the number written."""
    drawn = designed_cases() if random_seed is None else random_cases(random_seed, random_count, variant)
    if underlay_route is not None:
        drawn = [c for c in mpls_underlay_route_cases() if c.name == underlay_route]
        if not drawn:
            raise SystemExit(f"no underlay-route case {underlay_route!r}: "
                             f"{', '.join(c.name for c in mpls_underlay_route_cases())}")
        return record_disposable(out_dir, kernel, drawn[0])
    wanted = None if only is None else only.split(",")
    cases = [c for c in drawn if wanted is None or any(part in c.name for part in wanted)]

    build_bpf([dict(v) for v in {tuple(sorted(c.bpf.items())) for c in cases if c.bpf is not None}])
    scratch = out_dir.parent / f".{out_dir.name}.scratch"
    with TunnelVM(kernel=kernel, console_log=Path("out/kernel-oracle-tunnels/console.log")) as vm:
        vm.run_batch([c.guest_form() for c in cases], scratch)
        results = json.loads((scratch / "results" / "results.json").read_text())
        written = write_results(out_dir, vm, cases, results)
    shutil.rmtree(scratch, ignore_errors=True)
    return written


def record_disposable(out_dir: Path, kernel: str | None, case: TunnelCase) -> int:
    """One case in its own boot, for a state the kernel may not survive: the console is kept beside the
    vector (``console.log``); when the guest dies or hangs, meta.json says so and no frames are written."""
    from .vm import OracleError

    console = Path("out/kernel-oracle-tunnels") / f"console-{case.name}.log"
    scratch = out_dir.parent / f".{out_dir.name}.scratch"
    folder = out_dir / case.name
    vm = TunnelVM(kernel=kernel, console_log=console)
    vm.boot()
    try:
        vm.run_batch([case.guest_form()], scratch)
        results = json.loads((scratch / "results" / "results.json").read_text())
        written = write_results(out_dir, vm, [case], results)
        failure = None
    except OracleError as exc:
        failure, written = str(exc), 0
    finally:
        vm.close()
    shutil.rmtree(scratch, ignore_errors=True)
    if failure is not None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        meta = {"kernel": vm.kernel, "kernel_release": vm.kernel_release_guest, "control": case.control,
                "tunnel_device": f"ip link add tnl0 type {case.device}", "extra_setup": case.extra_setup,
                "note": case.note, "guest_failure": failure}
        (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        written = 1
    shutil.copyfile(console, folder / "console.log")
    print(f"{case.name}: {failure or 'guest survived'} (console: {folder / 'console.log'})")
    return written


def write_results(out_dir: Path, vm: KernelVM, cases: list[TunnelCase], results: list[dict]) -> int:
    """Each case's folder from the guest's results; the number written."""
    written = 0
    for case, result in zip(cases, results, strict=True):
        supers = [bytes.fromhex(h) for h in result["supers"]]
        segments = [bytes.fromhex(h) for h in result["segments"]]
        supers = [f for f in supers if case.keeps(f)]
        segments = [f for f in segments if case.keeps(f)]
        folder = out_dir / case.name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        write_pcap(folder / "input.pcap", supers)
        write_pcap(folder / "kernel_out.pcap", segments)
        meta = {
            "kernel": vm.kernel, "kernel_release": vm.kernel_release_guest,
            "tunnel_device": f"ip link add tnl0 type {case.device}" if case.bpf is None else
                             f"tc egress bpf on veth0: tools/kernel_oracle/bpf/mpls_encap.c {case.bpf}",
            "extra_setup": case.extra_setup,
            "ethtool_veth0": ETHTOOL[case.ethtool][0], "softgso_profile": ETHTOOL[case.ethtool][1],
            "gso_size": case.gso_size,
            "inner_gso_type": "udp_l4" if case.uso else "ufo" if case.ufo else case.vnet()["gso_type"],
            "vnet_hdr": None if case.uso else case.vnet(),
            "injected_on": "a UDP socket with UDP_SEGMENT, routed over tnl0" if case.uso else
                           "tnl0 (AF_PACKET SOCK_RAW, PACKET_VNET_HDR)", "sendto_error": result["sendto_error"],
            "veth0_tx_dropped": result["veth0_tx_dropped"], "super_packets": len(supers),
            "segments": len(segments), "note": case.note, "guest_log": result["log"],
            "control": case.control or None, "softgso_tunnel_ports": list(case.tunnel_ports),
            "ethtool_k_veth0": result["ethtool_veth0"],
            "capture": "input: AF_PACKET on dum0 (outgoing), fed by tc matchall mirred egress mirror of veth0; "
                       "output: AF_PACKET on veth1 (rx), GRO off",
        }
        _add_mpls_results(folder, case, result, meta)
        meta.update(case.extra_meta(result))
        (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        print(f"{case.name}: {len(supers)} super-packet(s), {len(segments)} segment(s)"
              f"{' ERROR ' + result['sendto_error'] if result['sendto_error'] else ''}"
              f"{' LOG ' + '; '.join(result['log']) if result['log'] else ''}")
        written += 1
    return written


def compare(folder: Path) -> str | None:
    """softgso against one recorded case, as tests/vectors/test_tunnel_vectors.py replays it: None when they
    agree byte for byte, else what differs. The case's super-packet goes in as a capture, with the
    case's gso_size, the profile modelling veth0, for inner USO --udp-gso udp_l4, for FOU/GUE the
    device's --tunnel-port, for a GRO aggregate the FIXEDID bit of the gso_type the kernel traced
    (--fixed-id); nothing else."""
    from softgso.check.golden import read_pcap_frames
    from softgso.features import PROFILES
    from softgso.job import Outcome, SegmentOptions, process_frame
    from softgso.offload.tunnels import parse_tunnel_port
    from softgso.virtio import kernel_generation_of_release

    meta = json.loads((folder / "meta.json").read_text())
    inputs = read_pcap_frames(folder / "input.pcap")
    expected = read_pcap_frames(folder / "kernel_out.pcap")
    if "control" in folder.name or len(inputs) != 1 or len(expected) < 2:
        return None if len(inputs) == len(expected) else f"{len(inputs)} super-packets, {len(expected)} frames out"
    udp_gso = "udp_l4" if meta.get("inner_gso_type") == "udp_l4" else "off"
    ports = tuple(parse_tunnel_port(text) for text in meta.get("softgso_tunnel_ports", []))
    options = SegmentOptions(device=PROFILES[meta["softgso_profile"]], gso_size=meta["gso_size"], udp_gso=udp_gso,
                             kernel=kernel_generation_of_release(meta["kernel_release"]), tunnel_ports=ports,
                             fixed_id=bool((meta.get("skb_gso_type") or 0) & SKB_GSO_TCP_FIXEDID))
    result = process_frame(inputs[0], options)
    if result.outcome != Outcome.SEGMENTED:
        return f"softgso did not segment it: {result.outcome.value} {result.reason}"
    if result.frames != expected:
        differing = [i for i, (a, b) in enumerate(zip(result.frames, expected, strict=False)) if a != b]
        return f"{len(result.frames)} segments against the kernel's {len(expected)}; differing: {differing[:5]}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.kernel_oracle.tunnel_cases")
    parser.add_argument("--out", type=Path, default=Path("tests/vectors/kernel/tunnels"))
    parser.add_argument("--kernel", default=None, help="6.1 (default), 6.12, or a release")
    parser.add_argument("--only", default=None, help="only the cases whose name contains this (or one of these, "
                                                     "comma-separated)")
    parser.add_argument("--random", type=int, default=0, metavar="N", help="N random cases instead of the designed")
    parser.add_argument("--underlay-route", default=None, metavar="NAME",
                        help="instead: the one spec 7.4 underlay-route case NAME, in a boot of its own")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--variant", choices=("", "headers"), default="",
                        help="with --random: 'headers' gives the inner packets IPv6 extension headers or IPv4 options "
                             "and random TCP options (opt-in: the plain plan of a seed never moves)")
    parser.add_argument("--diff", action="store_true",
                        help="the differential run: record into out/kernel-diff/tunnels-<kernel>-seed<SEED>/ and "
                             "compare softgso with every case (exit 1 on a disagreement; the case folder is kept)")
    args = parser.parse_args(argv)
    out = args.out
    if args.diff:
        out = Path("out/kernel-diff") / f"tunnels-{args.kernel or '6.1'}-seed{args.seed}{args.variant and '-' + args.variant}"
        shutil.rmtree(out, ignore_errors=True)
    count = record(out, args.kernel, args.only, args.seed if args.random else None, args.random, args.underlay_route,
                   args.variant)
    print(f"{count} cases written to {out}")
    if not args.diff:
        return 0
    disagreements = 0
    for folder in sorted(p.parent for p in out.rglob("meta.json")):
        problem = compare(folder)
        print(f"{'DISAGREE' if problem else 'agree'} {folder.name}" + (f": {problem}" if problem else ""))
        disagreements += problem is not None
    print(f"{count - disagreements} of {count} agree")
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
