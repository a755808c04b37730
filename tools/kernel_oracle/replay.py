"""Replay recorded vectors on another kernel generation, and compare the two kernels' outputs.

Every case folder of ``tests/vectors/kernel`` (the golden copies included) holds the injected frame
(``input.pcap``) and what the kernel was given (``input_meta.json``: the virtio_net_hdr bytes, the tc
actions, the ethtool settings, the MTU, the sll_protocol, the VLAN device). :func:`guest_case_of`
turns that back into the guest's case form, so the very same injection runs on the other kernel.

The golden set's two socket-made cases (``ipv4_udp_uso_socket*``: USO through a UDP socket with
UDP_SEGMENT, because 6.1's virtio header has no UDP_L4) are injected on 6.12 through the virtio
header they record as ``virtio_net_hdr_equivalent`` (gso_type 5, which 6.12 accepts), on the device
settings of their segmenting run (``ethtool_veth0_runB``). On 6.1 they cannot be replayed: that is
why they were made with a socket.

Two kernels agree on a case when both refuse it, or when they send the same frames in the same order
with the IPv6 fragment identification masked: ipv6_proxy_select_ident draws it at random on every
boot (the engine takes it from the vector, as the kernel drew it).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from . import wire
from .cases import DEFAULT_ETHTOOL_VETH1

ETH_HLEN = 14


@dataclass
class GenerationVerdict:
    """How two kernels' records of the same injection compare."""

    name: str
    agree: bool
    detail: str


def vector_folders(root: Path) -> list[Path]:
    """Every case folder under ``root`` (a folder with ``input_meta.json``), sorted."""
    return sorted(p.parent for p in root.rglob("input_meta.json"))


def guest_case_of(folder: Path, generation: str) -> dict | None:
    """The guest's form of a recorded case, or None when ``generation`` cannot express its injection."""
    input_meta = json.loads((folder / "input_meta.json").read_text())
    meta = json.loads((folder / "meta.json").read_text())
    frames = wire.read_pcap(folder / "input.pcap")
    if not frames:
        return None
    note = ""
    if "virtio_net_hdr_bytes_le" in input_meta:
        raw = bytes.fromhex(input_meta["virtio_net_hdr_bytes_le"])
        ethtool = input_meta.get("ethtool_veth0") or "tx off tso off gso on txvlan on"
        sll = input_meta.get("sll_protocol") or hex(int.from_bytes(frames[0][12:14], "big"))
    elif "virtio_net_hdr_equivalent" in input_meta and generation != "6.1":
        fields = input_meta["virtio_net_hdr_equivalent"]
        raw = struct.pack("<BBHHHH", fields["flags"], fields["gso_type"], fields["hdr_len"], fields["gso_size"],
                          fields["csum_start"], fields["csum_offset"])
        ethtool = input_meta["ethtool_veth0_runB"]
        sll = hex(int.from_bytes(frames[0][12:14], "big"))
        note = ("made with a UDP_SEGMENT socket on 6.1 (no virtio UDP_L4 there); injected here through the"
                " virtio_net_hdr it records as virtio_net_hdr_equivalent, on its run-B device settings")
    else:
        return None
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = struct.unpack("<BBHHHH", raw[:10])
    extra: dict[str, object] = {key: meta[key] for key in ("category", "random_params", "negative") if key in meta}
    extra["replay_of_kernel"] = meta.get("kernel")
    if note:
        extra["replay_note"] = note
    case: dict = {
        "name": folder.name,
        "frame_hex": frames[0].hex(),
        "virtio_net_hdr": {"flags": flags, "gso_type": gso_type, "hdr_len": hdr_len, "gso_size": gso_size,
                           "csum_start": csum_start, "csum_offset": csum_offset},
        "tc_action": input_meta.get("tc_action") or "",
        "ethtool_veth0": ethtool,
        "ethtool_veth1": input_meta.get("ethtool_veth1") or DEFAULT_ETHTOOL_VETH1,
        "veth_mtu": int(input_meta.get("veth_mtu") or 1500),
        "sll_protocol": sll,
        "description": str(meta.get("description") or meta.get("category") or ""),
        "extra_meta": extra,
    }
    tx_device = str(input_meta.get("tx_device") or "")
    if "." in tx_device:
        protocol = "802.1ad" if any("802.1ad" in str(c) for c in input_meta.get("pre_commands") or []) else "802.1Q"
        case["tx_vlan"] = {"id": int(tx_device.split(".")[1]), "protocol": protocol}
    return case


def mask_random_fields(frame: bytes) -> bytes:
    """The frame with every IPv6 fragment identification zeroed (walking VLAN tags, labels, extension headers)."""
    data = bytearray(frame)
    offset, ethertype = 12, int.from_bytes(frame[12:14], "big")
    offset += 2
    while ethertype in wire.VLAN_TPIDS and offset + 4 <= len(data):
        ethertype, offset = int.from_bytes(data[offset + 2:offset + 4], "big"), offset + 4
    if ethertype in wire.MPLS_ETHERTYPES:
        while offset + 4 <= len(data):
            bottom = data[offset + 2] & 1
            offset += 4
            if bottom:
                break
        ethertype = wire.ETH_P_IPV6 if offset < len(data) and data[offset] >> 4 == 6 else wire.ETH_P_IP
    if ethertype != wire.ETH_P_IPV6 or offset + 40 > len(data):
        return bytes(data)
    next_header, offset = data[offset + 6], offset + 40
    while offset + 8 <= len(data):
        if next_header == wire.IPPROTO_FRAGMENT:
            data[offset + 4:offset + 8] = b"\0\0\0\0"
            break
        if next_header not in wire.IPV6_EXTENSION_HEADERS:
            break
        next_header, offset = data[offset], offset + (data[offset + 1] + 1) * 8
    return bytes(data)


def compare_generations(before: Path, after: Path) -> GenerationVerdict:
    """Whether two recordings of the same injection (two kernels) agree, fragment IDs as the kernel drew them."""
    name = after.name
    old_meta = json.loads((before / "meta.json").read_text())
    new_meta = json.loads((after / "meta.json").read_text())
    if new_meta.get("tc_error") or old_meta.get("tc_error"):
        return GenerationVerdict(name, True, "tc refused the actions (no test)")
    old = wire.read_pcap(before / "kernel_out.pcap") if (before / "kernel_out.pcap").exists() else []
    new = wire.read_pcap(after / "kernel_out.pcap") if (after / "kernel_out.pcap").exists() else []
    old_refused = bool(old_meta.get("sendto_error")) or not old
    new_refused = bool(new_meta.get("sendto_error")) or not new
    if old_refused and new_refused:
        return GenerationVerdict(name, True, f"both refused ({old_meta.get('sendto_error')} / {new_meta.get('sendto_error')})")
    if old_refused != new_refused:
        return GenerationVerdict(name, False, f"refused: before {old_meta.get('sendto_error') or 'nothing sent'}"
                                 if old_refused else f"refused now: {new_meta.get('sendto_error') or 'nothing sent'}"
                                 f" (before: {len(old)} frame(s))")
    if len(old) != len(new):
        return GenerationVerdict(name, False, f"{len(old)} frame(s) before, {len(new)} now")
    for index, (a, b) in enumerate(zip(old, new, strict=True)):
        if mask_random_fields(a) != mask_random_fields(b):
            at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            return GenerationVerdict(name, False, f"frame {index} differs at byte {at} ({len(a)} B before, {len(b)} B now)")
    return GenerationVerdict(name, True, f"same {len(new)} frame(s)")
