"""Kernel vectors: read a captured case and replay it through softgso.

A case folder holds ``input.pcap`` (the super-packet), ``input_meta.json`` (its virtio_net_hdr or
the equivalent fields, the tc actions, the device's ethtool settings), ``kernel_out.pcap`` (what
the kernel transmitted) and ``meta.json`` (the kernel's decode, and ``sendto_error`` when it
refused). :func:`run_case` builds the same packet and device for softgso and transmits it.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..actions import Action, apply_action
from ..cli.action_grammar import parse_action, parse_tc_action
from ..constants import (
    ETH_HLEN,
    IPPROTO_DSTOPTS,
    IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS,
    IPPROTO_ROUTING,
    IPV6_HLEN,
)
from ..errors import SoftGSOError, UsageError
from ..features import (
    NETIF_F_ALL_TSO,
    NETIF_F_GSO_SOFTWARE,
    PROFILES,
    DeviceProfile,
    GsoType,
    IpSummed,
    NetdevFeature,
    netdev_intersect_features,
)
from ..packet import Packet
from ..virtio import VirtioNetHdr, kernel_generation_of_release, packet_socket_skb
from ..xmit import transmit, validate_xmit

# the vectors installed with the package (softgso verify --builtin): some of tests/vectors/kernel/cases
BUILTIN_VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "kernel"


def case_folders(paths: list[Path]) -> list[Path]:
    """Every case folder (one holding input_meta.json) at or under ``paths``, sorted."""
    return sorted({p.parent for d in paths for p in Path(d).rglob("input_meta.json")})


def read_pcap_frames(path: Path) -> list[bytes]:
    """The frames of a small classic pcap (the vectors' own format; test data, not user input)."""
    raw = path.read_bytes()
    if len(raw) < 24:
        return []
    magic = raw[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    frames, offset = [], 24
    while offset + 16 <= len(raw):
        _, _, caplen, _ = struct.unpack_from(order + "IIII", raw, offset)
        offset += 16
        frames.append(raw[offset : offset + caplen])
        offset += caplen
    return frames


@dataclass
class KernelCase:
    """One kernel vector, decoded."""

    name: str
    path: Path
    frame: bytes
    input_meta: dict[str, object]
    meta: dict[str, object]
    kernel_frames: list[bytes]
    actions: list[Action] = field(default_factory=list)
    device: DeviceProfile = PROFILES["no-offload"]
    kernel: str = "6.1"  # the generation the case was recorded on (meta.json's kernel_release)
    through_vlan_device: bool = False  # sent on a VLAN device: actions[0] is its tag, the rest are tc's

    @property
    def refused(self) -> bool:
        """The kernel refused the packet (sendto failed, nothing transmitted)."""
        return bool(self.meta.get("sendto_error"))

    @property
    def uses_virtio_header(self) -> bool:
        """The super-packet came with a raw virtio_net_hdr (not built by a kernel socket)."""
        return "virtio_net_hdr_bytes_le" in self.input_meta


@dataclass
class CaseResult:
    """What softgso transmitted for a case, or why it refused."""

    frames: list[bytes]
    packets: list[Packet]
    error: SoftGSOError | None = None


# `ethtool -K` names (and the groups `tx`, `tso`) for the features veth lets a user change
_ETHTOOL_FEATURES = {
    "tx": NetdevFeature.HW_CSUM | NetdevFeature.SCTP_CRC,  # tx-checksum-*: veth has the generic one
    "tx-checksum-ip-generic": NetdevFeature.HW_CSUM,
    "tx-checksum-sctp": NetdevFeature.SCTP_CRC,
    "sg": NetdevFeature.SG,
    "tx-scatter-gather": NetdevFeature.SG,
    "tx-scatter-gather-fraglist": NetdevFeature.FRAGLIST,
    "tso": NETIF_F_ALL_TSO,  # tx-tcp*-segmentation
    "tx-tcp-segmentation": NetdevFeature.TSO,
    "tx-tcp-ecn-segmentation": NetdevFeature.TSO_ECN,
    "tx-tcp-mangleid-segmentation": NetdevFeature.TSO_MANGLEID,
    "tx-tcp6-segmentation": NetdevFeature.TSO6,
    "tx-udp-segmentation": NetdevFeature.GSO_UDP_L4,
    "gso": NetdevFeature.GSO,
    "txvlan": NetdevFeature.HW_VLAN_CTAG_TX,
    "tx-vlan-hw-insert": NetdevFeature.HW_VLAN_CTAG_TX,
    "tx-vlan-stag-hw-insert": NetdevFeature.HW_VLAN_STAG_TX,
}


def netdev_fix_features(features: NetdevFeature) -> NetdevFeature:
    """The dependencies netdev_fix_features (net/core/dev.c) enforces among the features softgso models."""
    if features & NETIF_F_ALL_TSO and not features & NetdevFeature.SG:
        features &= ~NETIF_F_ALL_TSO  # TSO requires SG
    if features & NetdevFeature.TSO and not features & (NetdevFeature.HW_CSUM | NetdevFeature.IP_CSUM):
        features &= ~(NetdevFeature.TSO | NetdevFeature.TSO_ECN)
    if features & NetdevFeature.TSO6 and not features & (NetdevFeature.HW_CSUM | NetdevFeature.IPV6_CSUM):
        features &= ~(NetdevFeature.TSO6 | NetdevFeature.TSO_ECN)
    if features & NetdevFeature.TSO_MANGLEID and not features & NetdevFeature.TSO:
        features &= ~NetdevFeature.TSO_MANGLEID  # IPv4 ID mangling requires IPv4 TSO
    if features & NETIF_F_ALL_TSO == NetdevFeature.TSO_ECN:
        features &= ~NetdevFeature.TSO_ECN  # TSO ECN requires TSO
    return features


def device_from_ethtool(settings: str) -> DeviceProfile:
    """The profile an ``ethtool -K veth0 ...`` line gives veth: its default features (the ``tso``
    profile), each name of the line turned on or off in order (a group, ``tx`` or ``tso``, as ethtool
    expands it: ``tso`` is tx-tcp*-segmentation and leaves tx-udp-segmentation alone, kernel probe
    g_uso_tso_group_off), then netdev_fix_features' dependencies."""
    base = PROFILES["tso"]
    features = base.features
    tokens = settings.split()
    for name, value in zip(tokens[0::2], tokens[1::2], strict=False):
        bits = _ETHTOOL_FEATURES.get(name, NetdevFeature.NONE)
        features = features | bits if value == "on" else features & ~bits
    return base.with_overrides(name=f"veth[{settings}]", features=netdev_fix_features(features))


def actions_from_tc(tc_action: str) -> list[Action]:
    """The softgso actions for a tc filter's action list, in order (each one in tc's own spelling, as
    ``--action`` takes it)."""
    return [parse_tc_action(chunk) for chunk in filter(None, (c.strip() for c in tc_action.split("action")))]


def recorded_generation(meta: dict[str, object]) -> str:
    """The kernel generation a vector was recorded on: ``kernel_release``, else the first word of ``kernel``."""
    release = str(meta.get("kernel_release") or str(meta.get("kernel") or "").split(" ")[0])
    if not release:
        raise UsageError("the vector's meta.json names no kernel (kernel_release / kernel)")
    return kernel_generation_of_release(release)


def load_case(path: str | Path) -> KernelCase:
    """Read a case folder."""
    folder = Path(path)
    input_meta = json.loads((folder / "input_meta.json").read_text())
    meta = json.loads((folder / "meta.json").read_text())
    frames = read_pcap_frames(folder / "input.pcap")
    kernel_frames = read_pcap_frames(folder / "kernel_out.pcap") if (folder / "kernel_out.pcap").exists() else []
    actions: list[Action] = []
    tx_device = str(input_meta.get("tx_device") or "")
    through_vlan_device = "." in tx_device
    if through_vlan_device:
        proto = "8021q"
        for command in list(input_meta.get("pre_commands") or []):
            if "802.1ad" in str(command):
                proto = "8021ad"
        actions += parse_action(f"push-vlan:{tx_device.split('.')[1]}:0:{proto}")
    actions += actions_from_tc(str(input_meta.get("tc_action") or ""))
    ethtool = str(input_meta.get("ethtool_veth0") or input_meta.get("ethtool_veth0_runB") or "tx off tso off")
    device = device_from_ethtool(ethtool)
    if input_meta.get("veth_mtu"):
        device = device.with_overrides(mtu=int(input_meta["veth_mtu"]))
    return KernelCase(folder.name, folder, frames[0] if frames else b"", input_meta, meta, kernel_frames,
                      actions, device, recorded_generation(meta), through_vlan_device)


def ipv6_frag_id_of(case: KernelCase) -> int:
    """The IPv6 fragment identification the kernel picked, read from its output."""
    for seg in list(case.meta.get("segments") or []):  # type: ignore[call-overload]
        frag6 = seg.get("frag6") if isinstance(seg, dict) else None
        if frag6:
            text = str(frag6.get("raw") if isinstance(frag6, dict) else frag6).replace(" ", "")
            if isinstance(frag6, dict) and "id" in frag6:
                return int(str(frag6["id"]), 0)
            return int(text[-8:], 16)
    # the capture's decoder stops at the first label with the S bit; a label pushed after a pop to IP
    # carries S with more labels below (tcf_mpls_act sets it from skb->protocol), so look in the bytes
    for frame in case.kernel_frames[:1]:
        found = _fragment_id_in(frame)
        if found is not None:
            return found
    return 0


def _fragment_id_in(frame: bytes) -> int | None:
    """The identification of the first IPv6 Fragment header found behind Ethernet, VLAN tags and labels."""
    for network in range(ETH_HLEN, min(len(frame) - IPV6_HLEN, ETH_HLEN + 4 * 16) + 1, 4):
        if frame[network] >> 4 != 6 or int.from_bytes(frame[network + 4 : network + 6], "big") != \
                len(frame) - network - IPV6_HLEN:
            continue  # not an IPv6 header whose payload length fits the frame
        next_header, at = frame[network + 6], network + IPV6_HLEN
        while next_header in (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS) and at + 8 <= len(frame):
            next_header, at = frame[at], at + (frame[at + 1] + 1) * 8
        if next_header == IPPROTO_FRAGMENT and at + 8 <= len(frame):
            return int.from_bytes(frame[at + 4 : at + 8], "big")
    return None


def build_packet(case: KernelCase) -> Packet:
    """The packet as the kernel had it before the tc actions."""
    sll = case.input_meta.get("sll_protocol")
    frame_type = int.from_bytes(case.frame[12:14], "big") if len(case.frame) >= 14 else 0
    protocol = int(str(sll), 16) if sll is not None else frame_type
    if case.uses_virtio_header:
        hdr = VirtioNetHdr.unpack(bytes.fromhex(str(case.input_meta["virtio_net_hdr_bytes_le"])))
        skb = packet_socket_skb(case.frame, hdr, protocol, kernel=case.kernel, vlan_device=case.through_vlan_device)
    else:
        fields = case.input_meta["virtio_net_hdr_equivalent"]
        assert isinstance(fields, dict)
        skb = Packet.from_ethernet(case.frame, protocol)
        skb.gso_size = int(fields["gso_size"])
        skb.gso_type = GsoType.UDP_L4 if int(fields["gso_type"]) == 5 else GsoType(int(fields["gso_type"]))
        skb.ip_summed = IpSummed.PARTIAL
        skb.csum_start = int(fields["csum_start"])
        skb.csum_offset = int(fields["csum_offset"])
        skb.transport_header = skb.csum_start
    skb.ip6_frag_id = ipv6_frag_id_of(case)
    return skb


# vlan_dev_init's hw_features (drivers/net/vlan/vlan_dev.c; the FCoE bits are not modelled), which a VLAN
# device also wants; GSO and GRO are NETIF_F_SOFT_FEATURES
_VLAN_DEV_HW_FEATURES = (NetdevFeature.HW_CSUM | NetdevFeature.SG | NetdevFeature.FRAGLIST | NETIF_F_GSO_SOFTWARE
                         | NetdevFeature.HIGHDMA | NetdevFeature.SCTP_CRC)
_VLAN_DEV_KEPT = NetdevFeature.GSO | NetdevFeature.GRO | NETIF_F_GSO_SOFTWARE


def vlan_device_profile(lower: DeviceProfile) -> DeviceProfile:
    """The VLAN device on ``lower`` as the packet meets it before its tag (vlan_dev_fix_features, then
    netdev_fix_features): its wanted features cut to the lower device's vlan_features and features (an IP
    checksum there counts as HW_CSUM), GSO_SOFTWARE kept whatever the lower device has, then the
    dependencies: no checksum or no SG, no TSO. Legacy UFO is never among them (NETIF_F_GSO_UDP: tun only)."""
    lower_features = netdev_intersect_features(lower.vlan_features | NetdevFeature.RXCSUM, lower.features)
    if lower_features & (NetdevFeature.IP_CSUM | NetdevFeature.IPV6_CSUM):
        lower_features |= NetdevFeature.HW_CSUM
    features = netdev_intersect_features(_VLAN_DEV_HW_FEATURES, lower_features) | _VLAN_DEV_KEPT
    # vlan_netdev_ops has no ndo_features_check: dflt_features_check (vlan_features_check) applies
    return lower.with_overrides(name=f"vlan[{lower.name}]", features=netdev_fix_features(features), features_check="")


def run_case(case: KernelCase, device: DeviceProfile | None = None) -> CaseResult:
    """Replay a case: build the packet, apply the actions, transmit on the case's device."""
    device = device or case.device
    try:
        skb = build_packet(case)
        if case.through_vlan_device:
            # the VLAN device transmits first, with its own features (vlan_device_profile): it segments
            # in software whatever it cannot take whole (under `tx off` or `sg off` every TCP super-packet,
            # legacy UFO always: vectors s3520_076, s3520_084; one of at least its gso_max_size, veth0's
            # default 65536), then vlan_dev_hard_start_xmit tags each packet and veth0's tc actions run on
            # it (6.12 vector g_vlandev_csum_mpls_vlan: with `tx on` a TCP super-packet reaches veth0's tc
            # whole)
            packets = []
            for packet in validate_xmit(skb, vlan_device_profile(device)):
                for action in case.actions:
                    apply_action(packet, action)
                packets += transmit(packet, device)
        else:
            for action in case.actions:
                apply_action(skb, action)
            packets = transmit(skb, device)
    except SoftGSOError as error:
        return CaseResult([], [], error)
    return CaseResult([bytes(p.data) for p in packets], packets)
