"""The oracle's side INSIDE the VM: inject each super-packet, record what the kernel transmits.

Runs as ``python3 -m kernel_oracle.guest SHARE`` in the guest (the host's root file system, chrooted,
read-only; SHARE is the read-write 9p folder). Standard library only.

Protocol with the host (all through files in SHARE, so one boot serves many batches):
``ready.json`` is written once (kernel release and version); the host then drops
``requests/<n>.json`` (``{"out": DIR, "cases": [...]}`` or ``{"quit": true}``); the guest runs the
cases, writes one golden-format folder per case under ``SHARE/out/DIR/`` and answers with
``responses/<n>.json`` (one summary per case).

Per case (as the golden set was made): a veth pair veth0 <-> veth1 with the case's MTU and ethtool
settings, optionally a VLAN device on veth0, a clsact qdisc with one matchall egress filter holding
the tc actions (act_mpls / act_vlan), the frame sent on veth0 through AF_PACKET SOCK_RAW with
PACKET_VNET_HDR, and everything veth1 receives captured through AF_PACKET with PACKET_AUXDATA.
The pair is created afresh whenever the device settings change (see VethPair).
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
import traceback
from pathlib import Path

from . import wire

SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_STATISTICS = 6
PACKET_VNET_HDR = 15
SO_RCVBUFFORCE = 33
ETH_P_ALL = 0x0003
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40

CAPTURE_NOTE = ("AF_PACKET ETH_P_ALL on veth1 (rx), PACKET_AUXDATA; outer VLAN tag re-inserted from "
                "tp_vlan_tci/tp_vlan_tpid when TP_STATUS_VLAN_VALID")
# how long the capture waits after the last frame once veth1's rx counter is reached (or without it)
SETTLE_SECONDS = 0.05
MAX_WAIT_SECONDS = 3.0


def shell(command: str) -> str:
    """Run a shell command in the guest; its combined output (errors are the caller's to judge)."""
    done = subprocess.run(command, shell=True, capture_output=True, text=True)
    return done.stdout + done.stderr


class VethPair:
    """The veth0 <-> veth1 pair, recreated only when a case needs different device settings.

    Creating links and running ethtool are what a case costs under TCG (every exec is ~0.3 s), so
    consecutive cases with the same MTU, ethtool settings and VLAN device share one fresh pair; the
    tc filter is replaced for every case.
    """

    def __init__(self) -> None:
        self.settings: tuple | None = None
        self.tx_device = "veth0"
        self.pre_commands: list[str] = []
        self.has_filter = False

    def prepare(self, mtu: int, ethtool_veth0: str, ethtool_veth1: str, vlan: dict | None) -> None:
        """Make the pair match these settings (a new pair whenever they differ from the last case)."""
        settings = (mtu, ethtool_veth0, ethtool_veth1, json.dumps(vlan, sort_keys=True))
        if settings == self.settings:
            return
        self.tx_device, self.pre_commands = "veth0", []
        if vlan:
            self.tx_device = f"veth0.{vlan['id']}"
            protocol = "" if vlan["protocol"] == "802.1Q" else " protocol " + vlan["protocol"]
            self.pre_commands = [f"ip link add link veth0 name {self.tx_device} type vlan{protocol} id {vlan['id']}",
                                 f"ip link set {self.tx_device} up"]
        # ethtool before the VLAN device exists (as the golden set did): the VLAN device inherits features
        vlan_commands = "".join(command + "; " for command in self.pre_commands)
        shell("ip link del veth0 2>/dev/null;"
              f" ip link add veth0 mtu {mtu} address 02:00:00:00:00:01 type veth"
              f" peer name veth1 mtu {mtu} address 02:00:00:00:00:02;"
              f" ethtool -K veth0 {ethtool_veth0}; ethtool -K veth1 {ethtool_veth1};"
              f" ip link set veth0 up; ip link set veth1 up; {vlan_commands}"
              " tc qdisc add dev veth0 clsact")
        self.settings = settings
        self.has_filter = False

    def set_tc_actions(self, tc_action: str) -> str | None:
        """Replace veth0's egress filter with these actions; tc's complaint if it refused them."""
        # matchall cannot be changed in place (mall_change: -EEXIST), so: delete, then add
        commands = ["filter del dev veth0 egress"] if self.has_filter else []
        if tc_action:
            commands.append("filter add dev veth0 egress matchall " + tc_action)
        self.has_filter = False
        if not commands:
            return None
        done = subprocess.run(["tc", "-force", "-batch", "-"], input="\n".join(commands) + "\n",
                              capture_output=True, text=True)
        output = (done.stdout + done.stderr).strip()
        if done.returncode or output:
            if "Command failed -:1" in output and len(commands) == 2:
                raise RuntimeError("tc could not remove the previous filter: " + output)
            return output or f"tc exit status {done.returncode}"  # the frame leaves without these actions
        self.has_filter = bool(tc_action)
        return None


def rx_packets(device: str) -> int:
    """The device's receive counter (for veth: what its peer forwarded)."""
    return int(Path(f"/sys/class/net/{device}/statistics/rx_packets").read_text())


def tx_dropped(device: str) -> int:
    """The device's transmit drop counter: frames veth1 would not take (over MTU), and also the
    packets validate_xmit_skb dropped (the kernel's refusals)."""
    return int(Path(f"/sys/class/net/{device}/statistics/tx_dropped").read_text())


def receive_with_auxdata(sock: socket.socket) -> tuple[bytes, int, dict[str, object]]:
    """One captured frame as it was on the wire, its packet type, and the auxdata notes.

    veth1's receive path (skb_vlan_untag) moves the outer VLAN tag into skb metadata before
    AF_PACKET sees the frame; it is put back from tp_vlan_tci/tp_vlan_tpid, as libpcap does.
    """
    frame, ancillary, _flags, address = sock.recvmsg(262144, socket.CMSG_SPACE(64))
    notes: dict[str, object] = {}
    for level, kind, data in ancillary:
        if level != SOL_PACKET or kind != PACKET_AUXDATA:
            continue
        status, _len, _snaplen, _mac, _net, tci, tpid = struct.unpack("=IIIHHHH", data[:20])
        notes["tp_status"] = hex(status)
        if status & TP_STATUS_VLAN_VALID:
            tpid = tpid if status & TP_STATUS_VLAN_TPID_VALID else wire.ETH_P_8021Q
            notes["vlan_reinserted"] = {"tpid": hex(tpid), "tci": hex(tci)}
            frame = frame[:12] + struct.pack("!HH", tpid, tci) + frame[12:]
    return frame, address[2], notes


def capture_socket(device: str) -> socket.socket:
    """An AF_PACKET socket on ``device`` with auxdata and a receive buffer large enough for a burst."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((device, ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    while select.select([sock], [], [], 0.02)[0]:  # drop anything from the link coming up
        sock.recv(65536)
    sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)  # reading the statistics resets them
    return sock


def collect(sock: socket.socket, rx_before: int) -> tuple[list[bytes], list[dict[str, object]], int]:
    """Frames received on veth1 until its rx counter is matched and the link is quiet; plus drops."""
    frames: list[bytes] = []
    notes: list[dict[str, object]] = []
    deadline = time.monotonic() + MAX_WAIT_SECONDS
    while time.monotonic() < deadline:
        expected = rx_packets("veth1") - rx_before
        wait = SETTLE_SECONDS if len(frames) >= expected else 0.5
        if not select.select([sock], [], [], wait)[0]:
            if len(frames) >= expected:
                break
            continue
        frame, packet_type, note = receive_with_auxdata(sock)
        if packet_type == socket.PACKET_OUTGOING:
            continue
        frames.append(frame)
        notes.append(note)
    drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))[1]
    return frames, notes, drops


def vnet_header_bytes(vnet: dict[str, int]) -> bytes:
    """The 10-byte little-endian virtio_net_hdr (no num_buffers)."""
    return struct.pack("<BBHHHH", vnet["flags"], vnet["gso_type"], vnet["hdr_len"], vnet["gso_size"],
                       vnet["csum_start"], vnet["csum_offset"])


def run_case(case: dict, link: VethPair, kernel: str, kernel_release: str, out_root: Path) -> dict[str, object]:
    """Run one case and write its golden-format folder; returns the summary line for the host."""
    folder = out_root / case["name"]
    folder.mkdir(parents=True, exist_ok=True)
    frame = bytes.fromhex(case["frame_hex"])
    vnet = case["virtio_net_hdr"]
    mtu = int(case.get("veth_mtu", 1500))
    clock = [time.monotonic()]
    link.prepare(mtu, case["ethtool_veth0"], case["ethtool_veth1"], case.get("tx_vlan"))
    tx_device, pre_commands = link.tx_device, link.pre_commands
    tc_action = case["tc_action"]
    tc_error = link.set_tc_actions(tc_action)
    sll_protocol = int(case["sll_protocol"], 16)
    clock.append(time.monotonic())

    capture = capture_socket("veth1")
    rx_before = rx_packets("veth1")
    dropped_before = tx_dropped("veth0")
    sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sender.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    header = vnet_header_bytes(vnet)
    send_error = None
    try:
        sent = sender.sendto(header + frame, (tx_device, sll_protocol))
    except OSError as error:
        send_error, sent = repr(error), -1
    frames, notes, drops = collect(capture, rx_before)
    veth_drops = tx_dropped("veth0") - dropped_before
    sender.close()
    capture.close()
    clock.append(time.monotonic())

    wire.write_pcap(folder / "input.pcap", [frame])
    wire.write_pcap(folder / "kernel_out.pcap", frames)
    segments = [dict(wire.decode_frame(f), **note) for f, note in zip(frames, notes, strict=True)]
    input_meta = {
        "virtio_net_hdr": vnet, "virtio_net_hdr_bytes_le": header.hex(), "tc_action": tc_action,
        "sll_protocol": hex(sll_protocol), "ethtool_veth0": case["ethtool_veth0"],
        "ethtool_veth1": case["ethtool_veth1"], "veth_mtu": mtu, "tx_device": tx_device,
        "pre_commands": pre_commands, "input_analysis": wire.decode_frame(frame),
    }
    layout = wire.l4_offsets(frame)
    meta = {
        "case": case["name"], "kernel": kernel, "kernel_release": kernel_release,
        "gso_size": vnet["gso_size"], "gso_type": vnet["gso_type"],
        "paylen": len(frame) - layout.get("hdr_end", vnet["hdr_len"]),
        "tc_action": tc_action, "tc_error": tc_error, "description": case.get("description", ""),
        "sendto_result": sent, "sendto_error": send_error, "veth_mtu": mtu, "capture": CAPTURE_NOTE,
        "capture_drops": drops, "veth0_tx_dropped": veth_drops, "n_segments": len(frames), "segments": segments,
        "input_l4check_seed": wire.l4_seed_kind(frame),
    }
    meta.update(case.get("extra_meta", {}))
    (folder / "input_meta.json").write_text(json.dumps(input_meta, indent=1) + "\n")
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    clock.append(time.monotonic())
    setup, inject, write = (round(b - a, 3) for a, b in zip(clock, clock[1:], strict=False))
    return {"name": case["name"], "sendto_error": send_error, "tc_error": tc_error, "n_segments": len(frames),
            "capture_drops": drops, "veth0_tx_dropped": veth_drops,
            "seconds_setup": setup, "seconds_inject": inject, "seconds_write": write}


def device_settings_key(case: dict) -> str:
    """What decides whether two cases can share a veth pair."""
    return json.dumps([case.get("veth_mtu", 1500), case["ethtool_veth0"], case["ethtool_veth1"],
                       case.get("tx_vlan")], sort_keys=True)


def serve(share: Path) -> None:
    """Answer the host's requests until told to quit."""
    shell("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"
          " net.core.netdev_max_backlog=100000; ip link set lo up")
    uname = os.uname()
    kernel = uname.release + " " + uname.version
    requests, responses = share / "requests", share / "responses"
    responses.mkdir(exist_ok=True)
    ready = {"kernel": kernel, "kernel_release": uname.release}
    (share / "ready.json.tmp").write_text(json.dumps(ready))
    os.rename(share / "ready.json.tmp", share / "ready.json")
    number = 0
    link = VethPair()
    while True:
        request_path = requests / f"{number}.json"
        if not request_path.exists():
            time.sleep(0.05)
            continue
        request = json.loads(request_path.read_text())
        if request.get("quit"):
            return
        out_root = share / "out" / request["out"]
        summaries: dict[str, dict] = {}
        # cases with the same device settings run back to back, so they share one veth pair
        for case in sorted(request["cases"], key=device_settings_key):
            started = time.monotonic()
            try:
                summary = run_case(case, link, kernel, uname.release, out_root)
            except Exception as error:  # one broken case must not cost the batch
                traceback.print_exc()
                summary = {"name": case["name"], "guest_error": repr(error)}
            summary["seconds"] = round(time.monotonic() - started, 3)
            print(f"kernel-oracle case {summary['name']}: {summary['seconds']}s", flush=True)
            summaries[case["name"]] = summary
        ordered = [summaries[case["name"]] for case in request["cases"]]
        (responses / f"{number}.tmp").write_text(json.dumps(ordered))
        os.rename(responses / f"{number}.tmp", responses / f"{number}.json")
        number += 1


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
