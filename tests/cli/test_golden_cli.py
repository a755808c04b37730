"""The kernel's golden vectors through the command line: ``softgso segment`` with the case's
virtio_net_hdr (``--vnet-hdr``) and tc actions (``--action``), then ``softgso diff`` against the
kernel's own capture. Arguments come from input_meta.json as tests/vectors/kernel/README.md says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import run_cli

CASES_DIR = Path(__file__).resolve().parents[1] / "vectors" / "kernel" / "cases"
CASES = sorted(p.parent for p in CASES_DIR.glob("*/input_meta.json"))

_MPLS = re.compile(r"mpls push protocol mpls_(uc|mc) label (\d+) tc (\d+) ttl (\d+)")
_VLAN = re.compile(r"vlan push(?: protocol (802\.1ad|802\.1q))? id (\d+) priority (\d+)", re.IGNORECASE)


def cli_arguments(case: Path) -> list[str]:
    """The segment options that stand for this case's socket, tc filter and device."""
    meta = json.loads((case / "input_meta.json").read_text())
    args: list[str] = []
    tx_device = str(meta.get("tx_device") or "")
    if "." in tx_device:  # sent through a VLAN device stacked on veth0
        proto = "8021ad" if any("802.1ad" in c for c in meta.get("pre_commands") or []) else "8021q"
        args += ["--action", f"push-vlan:{tx_device.split('.')[1]}:0:{proto}"]
    for chunk in filter(None, (c.strip() for c in str(meta.get("tc_action") or "").split("action"))):
        if m := _MPLS.fullmatch(chunk):
            args += ["--action", f"push-mpls:{m[2]}:{m[3]}:{m[4]}:{m[1]}"]
        elif m := _VLAN.fullmatch(chunk):
            args += ["--action", f"push-vlan:{m[2]}:{m[3]}:{'8021ad' if m[1] == '802.1ad' else '8021q'}"]
        else:
            raise AssertionError(f"unexpected tc action {chunk!r}")
    if "virtio_net_hdr_bytes_le" in meta:
        args += ["--vnet-hdr", meta["virtio_net_hdr_bytes_le"]]
    else:  # USO: the kernel's UDP socket built the skb (CHECKSUM_PARTIAL, gso_size from UDP_SEGMENT)
        fields = meta["virtio_net_hdr_equivalent"]
        args += ["--gso-size", str(fields["gso_size"]), "--gso-type", "udp_l4", "--input-csum", "partial"]
    ethtool = str(meta.get("ethtool_veth0") or meta.get("ethtool_veth0_runB"))
    device = "tso" if ethtool.startswith("tx on tso on") else "csum" if ethtool.startswith("tx on") else "no-offload"
    args += ["--device", device, "--mtu", str(meta.get("veth_mtu") or 1500)]
    for segment in json.loads((case / "meta.json").read_text()).get("segments") or []:
        if isinstance(segment, dict) and segment.get("frag6"):
            args += ["--ipv6-frag-id", "0x" + str(segment["frag6"]).replace(" ", "")[-8:]]
            break
    return args


def kernel_refused(case: Path) -> bool:
    return bool(json.loads((case / "meta.json").read_text()).get("sendto_error"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_segment_then_diff_matches_the_kernel(case: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    result = run_cli("segment", case / "input.pcap", out, *cli_arguments(case), "--strict", "-q")
    if kernel_refused(case):
        # refused: reported with its frame (numbered from 1), passed through unchanged, exit 1 under --strict
        assert result.exit_code == 1, result.stderr
        assert ("softgso: refused by the kernel's checks: 1 record passed through unchanged (first: frame 1: "
                in result.stderr)
        assert run_cli("diff", out, case / "input.pcap").exit_code == 0
        return
    assert result.exit_code == 0, result.stderr
    compared = run_cli("diff", out, case / "kernel_out.pcap")
    assert compared.exit_code == 0, compared.stdout
    assert "identical" in compared.stdout


def test_verify_refuses_a_folder_that_holds_no_case(tmp_path: Path) -> None:
    """A folder with no case in it (a typo, the wrong level) is a usage error naming it, alone or among
    folders that do hold cases: it would otherwise add nothing to the count and say nothing."""
    (tmp_path / "empty").mkdir()
    for folders in ([tmp_path / "empty"], [CASES[0], tmp_path / "empty"]):
        result = run_cli("verify", *folders)
        assert result.exit_code == 2 and f"{tmp_path / 'empty'}: no kernel cases there" in result.stderr
    result = run_cli("verify", CASES[0])
    assert result.exit_code == 0 and result.stdout == "1 of 1 kernel cases reproduced byte for byte\n"
