"""The command line: thin frontends over the engine (no protocol logic here).

Exit status (every command): 0 success; 1 differences found (``diff``) or packets refused under
``--strict``; 2 usage error (bad option, unknown profile, label 3...); 3 input or output file
error (unreadable, truncated, unknown link type under --strict, disk full).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from .errors import CaptureError, UsageError

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


class SoftGSOCommand(click.Command):
    """A command whose SoftGSOError becomes a clear message and the documented exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as error:
            click.echo(f"softgso: error: {error}", err=True)
            ctx.exit(EXIT_USAGE)
        except CaptureError as error:
            click.echo(f"softgso: error: {error}", err=True)
            ctx.exit(EXIT_IO)
        except OSError as error:
            click.echo(f"softgso: error: {error.strerror or error}: {error.filename or ''}", err=True)
            ctx.exit(EXIT_IO)


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="softgso")
def main() -> None:
    """softgso: Linux software GSO in userspace, byte for byte, MPLS included.

    \b
    Examples:
      softgso segment tso_capture.pcap wire.pcap
      softgso segment in.pcap out.pcap --action push-mpls:100:0:64:uc --device nic-tso-no-mpls-gso
      softgso inspect capture.pcapng --json
      softgso diff ours.pcap kernel.pcap
    """


# --- shared option plumbing ----------------------------------------------------------------------


def _device(name: str, mtu: int | None, output_csum: str | None) -> Any:
    from .features import NETIF_F_CSUM_MASK, NetdevFeature, load_profile

    device = load_profile(name)
    changes: dict[str, Any] = {}
    if mtu is not None:
        if not 68 <= mtu <= 65535:
            raise UsageError(f"--mtu {mtu} out of range 68..65535")
        changes["mtu"] = mtu
    if output_csum == "partial":
        changes["features"] = device.features | NetdevFeature.HW_CSUM
        changes["mpls_features"] = device.mpls_features | NetdevFeature.HW_CSUM
        changes["vlan_features"] = device.vlan_features | NetdevFeature.HW_CSUM
    elif output_csum == "complete":
        changes["features"] = device.features & ~NETIF_F_CSUM_MASK
        changes["mpls_features"] = device.mpls_features & ~NETIF_F_CSUM_MASK
    return device.with_overrides(**changes) if changes else device


def _progress(enabled: bool, total: int) -> Any:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    if not enabled:
        return None
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), transient=True, console=_console(stderr=True),
    ), total


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def _stream(
    in_path: Path, out_path: Path, quiet: bool, per_frame: Callable[[int, bytes], tuple[list[bytes], str | None]],
    description: str,
) -> tuple[dict[str, int], list[tuple[int, str]], float]:
    """Read IN record by record, write what ``per_frame`` returns to OUT atomically.

    Records that are not Ethernet (after cooked-header conversion) or cannot be read as such are
    copied through unchanged and reported. Returns counters, reports and elapsed seconds.
    """
    from .io import UnknownLinkTypeError, from_ethernet, open_capture, open_writer, to_ethernet

    counts = {"in": 0, "out": 0, "bytes_in": 0, "bytes_out": 0}
    reports: list[tuple[int, str]] = []
    started = time.perf_counter()
    with open_capture(in_path) as reader, open_writer(out_path, like=reader) as writer:
        progress_info = _progress(_show_progress(quiet), int(getattr(reader, "file_size", 0) or 0))
        progress = progress_info[0] if progress_info else None
        task = progress.add_task(description, total=progress_info[1]) if progress else None
        if progress:
            progress.start()
        try:
            for record in reader:
                counts["in"] += 1
                counts["bytes_in"] += len(record.data)
                try:
                    view = to_ethernet(record)
                except UnknownLinkTypeError as error:
                    reports.append((record.index, f"{error.reason}: passed through"))
                    view = None
                else:
                    if view is None:
                        reports.append((record.index, f"link type {record.linktype} record is not Ethernet: "
                                                      "passed through"))
                if view is None:
                    writer.write(record)
                    counts["out"] += 1
                    counts["bytes_out"] += len(record.data)
                    continue
                frame = bytes(view.frame)
                if record.orig_len > len(record.data):
                    reports.append((record.index, f"snapped record ({len(record.data)} of {record.orig_len} bytes): "
                                                  "passed through"))
                    writer.write(record)
                    counts["out"] += 1
                    counts["bytes_out"] += len(record.data)
                    continue
                frames, reason = per_frame(record.index, frame)
                if reason:
                    reports.append((record.index, reason))
                for out in frames:
                    data = from_ethernet(out, record)
                    writer.write(record, data)
                    counts["out"] += 1
                    counts["bytes_out"] += len(data)
                if progress and task is not None:
                    progress.update(task, completed=int(getattr(reader, "bytes_read", 0) or 0))
        finally:
            if progress:
                progress.stop()
    return counts, reports, time.perf_counter() - started


def _print_reports(reports: list[tuple[int, str]], limit: int = 20) -> None:
    for index, reason in reports[:limit]:
        click.echo(f"softgso: packet {index}: {reason}", err=True)
    if len(reports) > limit:
        click.echo(f"softgso: ... and {len(reports) - limit} more reports", err=True)


# --- segment -------------------------------------------------------------------------------------


@main.command(cls=SoftGSOCommand, context_settings=CONTEXT)
@click.argument("in_path", metavar="IN", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("out_path", metavar="OUT", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--gso-size", type=click.IntRange(1, 65535), help="Payload bytes per segment (default: derived from --mtu).")
@click.option("--gso-type", type=click.Choice(["auto", "tcpv4", "tcpv6", "udp", "udp_l4"]), default="auto",
              show_default=True, help="SKB_GSO type; auto infers it from the headers (UDP: udp_l4, i.e. USO).")
@click.option("--tcp-ecn", is_flag=True, help="Set SKB_GSO_TCP_ECN (CWR stays on the first segment only).")
@click.option("--input-csum", type=click.Choice(["auto", "partial", "complete"]), default="auto", show_default=True,
              help="What the L4 checksum field holds: a CHECKSUM_PARTIAL seed, a full checksum, or detect.")
@click.option("--vnet-hdr", metavar="HEX", help="GSO metadata as a raw 10-byte little-endian virtio_net_hdr, "
              "checked with virtio_net_hdr_to_skb's rules (replaces --gso-size/--gso-type/--tcp-ecn/--input-csum).")
@click.option("--action", "actions", multiple=True, metavar="ACTION",
              help="Apply before transmit, in order (repeatable): push-mpls:LABEL:TC:TTL:uc|mc, "
              "push-vlan:VID:PCP:8021q|8021ad, pop-mpls:ETHERTYPE, set-mpls:LABEL:TC:TTL, dec-ttl, pop-vlan.")
@click.option("--device", default="no-offload", show_default=True,
              help="Egress device profile (see `softgso profiles`) or a .json/.toml file.")
@click.option("--mtu", type=int, help="Override the profile's MTU (also the basis of the derived gso_size).")
@click.option("--output-csum", type=click.Choice(["complete", "partial"]),
              help="Override the profile: complete checksums (the wire) or partial (as a NIC-offload tap shows).")
@click.option("--ip-id", type=click.Choice(["increment", "fixed"]), default="increment", show_default=True,
              help="IPv4 ID per segment: increment (kernel default) or fixed (SKB_GSO_TCP_FIXEDID; needs DF).")
@click.option("--ipv6-frag-id", type=str, default="0", help="IPv6 fragment identification for UFO (the kernel "
              "picks one at random).")
@click.option("--kernel", type=click.Choice(["6.1", "mainline"]), default="6.1", show_default=True,
              help="Kernel generation whose virtio rules apply.")
@click.option("--strict", is_flag=True, help="Exit with status 1 if any packet is refused.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no summary table.")
def segment(in_path: Path, out_path: Path, gso_size: int | None, gso_type: str, tcp_ecn: bool, input_csum: str,
            vnet_hdr: str | None, actions: tuple[str, ...], device: str, mtu: int | None, output_csum: str | None,
            ip_id: str, ipv6_frag_id: str, kernel: str, strict: bool, as_json: bool, quiet: bool) -> None:
    """Segment every super-packet of IN exactly as Linux software GSO would; write OUT.

    A packet is a super-packet when it is longer than the device MTU (or than --gso-size), or when
    --vnet-hdr says so. Other packets pass through byte-identical (a partial checksum is completed
    as the device would). A packet the kernel would refuse is reported with its index and reason
    and passed through unchanged. OUT is written atomically, in IN's format.

    \b
    Examples:
      softgso segment tso_capture.pcap wire.pcap
      softgso segment in.pcap out.pcap --action push-mpls:100:0:64:uc --device nic-tso-no-mpls-gso
      softgso segment in.pcap out.pcap --vnet-hdr 01013600a80522001000 --action push-mpls:100:0:64:uc
    """
    from .actions import parse_action
    from .job import Outcome, SegmentOptions, Summary, process_frame
    from .virtio import VirtioNetHdr

    if vnet_hdr and (gso_size or gso_type != "auto" or tcp_ecn or input_csum != "auto"):
        raise UsageError("--vnet-hdr replaces --gso-size, --gso-type, --tcp-ecn and --input-csum: give one or the other")
    try:
        frag_id = int(ipv6_frag_id, 0)
    except ValueError:
        raise UsageError(f"--ipv6-frag-id {ipv6_frag_id!r} is not a number") from None
    options = SegmentOptions(
        device=_device(device, mtu, output_csum),
        gso_size=gso_size,
        gso_type=gso_type,
        tcp_ecn=tcp_ecn,
        input_csum=input_csum,
        vnet_hdr=VirtioNetHdr.from_hex(vnet_hdr) if vnet_hdr else None,
        actions=tuple(parse_action(a) for a in actions),
        ipv6_frag_id=frag_id,
        fixed_id=ip_id == "fixed",
        kernel=kernel,
    )
    summary = Summary()

    def per_frame(index: int, frame: bytes) -> tuple[list[bytes], str | None]:
        result = process_frame(frame, options)
        summary.add(index, len(frame), result)
        if result.outcome == Outcome.REFUSED:
            return result.frames, f"refused, passed through unchanged: {result.error}"
        return result.frames, None

    counts, reports, elapsed = _stream(in_path, out_path, quiet, per_frame, "segment")
    refused = summary.outcomes.get("refused", 0)
    other_reports = [r for r in reports if "refused" not in r[1]]
    if as_json:
        payload = summary.as_dict()
        payload.update({"records_in": counts["in"], "records_out": counts["out"], "seconds": round(elapsed, 6),
                        "passed_through_unreadable": [{"index": i, "reason": r} for i, r in other_reports],
                        "device": options.device.name, "output": str(out_path)})
        click.echo(json.dumps(payload, indent=2))
    else:
        _print_reports(reports)
        if not quiet:
            _segment_table(summary, counts, elapsed, str(out_path))
    if strict and (refused or other_reports):
        sys.exit(EXIT_REFUSED)


def _segment_table(summary: Any, counts: dict[str, int], elapsed: float, out: str) -> None:
    from rich.table import Table

    table = Table(title=f"softgso segment -> {out}", show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("packets", justify="right")
    table.add_column("bytes", justify="right")
    table.add_row("in", str(counts["in"]), f"{counts['bytes_in']:,}")
    table.add_row("out", str(counts["out"]), f"{counts['bytes_out']:,}")
    for name in ("segmented", "whole", "passed", "untouched", "refused"):
        table.add_row(f"  {name}", str(summary.outcomes.get(name, 0)), "")
    for name, count in sorted(summary.input_checksums.items()):
        table.add_row(f"  input L4 checksum {name}", str(count), "")
    if summary.partial_out:
        table.add_row("  output checksums left partial", str(summary.partial_out), "")
    rate = counts["bytes_in"] * 8 / elapsed / 1e9 if elapsed > 0 else 0.0
    table.add_row("throughput", f"{elapsed:.3f} s", f"{rate:.2f} Gbit/s")
    _console().print(table)


# --- actions as commands of their own ------------------------------------------------------------


def _action_command(in_path: Path, out_path: Path, spec: str, quiet: bool, strict: bool) -> None:
    from .actions import parse_action
    from .job import apply_actions

    action = parse_action(spec)
    refused: list[int] = []

    def per_frame(index: int, frame: bytes) -> tuple[list[bytes], str | None]:
        out, error = apply_actions(frame, (action,))
        if error is not None:
            refused.append(index)
            return [frame], f"{spec} refused, passed through unchanged: {error}"
        return [out], None

    counts, reports, elapsed = _stream(in_path, out_path, quiet, per_frame, spec.split(":")[0])
    _print_reports(reports)
    if not quiet:
        click.echo(f"{spec}: {counts['in']} packets in, {counts['out']} out, {len(refused)} refused "
                   f"({elapsed:.3f} s) -> {out_path}", err=True)
    if strict and reports:
        sys.exit(EXIT_REFUSED)


def _io_arguments(function: Callable[..., None]) -> Callable[..., None]:
    function = click.option("--strict", is_flag=True, help="Exit with status 1 if any packet is refused.")(function)
    function = click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")(function)
    function = click.argument("out_path", metavar="OUT", type=click.Path(path_type=Path, dir_okay=False))(function)
    return click.argument("in_path", metavar="IN", type=click.Path(path_type=Path, dir_okay=False))(function)


@main.command("push-mpls", cls=SoftGSOCommand, context_settings=CONTEXT)
@_io_arguments
@click.option("--label", type=click.IntRange(0, 0xFFFFF), required=True, help="Label (3, implicit null, is refused).")
@click.option("--tc", type=click.IntRange(0, 7), default=0, show_default=True)
@click.option("--ttl", type=click.IntRange(0, 255), default=64, show_default=True)
@click.option("--multicast", is_flag=True, help="Ethertype 0x8848 instead of 0x8847.")
def push_mpls_command(in_path: Path, out_path: Path, quiet: bool, strict: bool, label: int, tc: int, ttl: int,
                      multicast: bool) -> None:
    """Push one MPLS label on every packet (skb_mpls_push: S bit on the first label of a stack only).

    \b
    Example:
      softgso push-mpls in.pcap labelled.pcap --label 100 --tc 0 --ttl 64
    """
    _action_command(in_path, out_path, f"push-mpls:{label}:{tc}:{ttl}:{'mc' if multicast else 'uc'}", quiet, strict)


@main.command("pop-mpls", cls=SoftGSOCommand, context_settings=CONTEXT)
@_io_arguments
@click.option("--ethertype", default="ipv4", show_default=True, help="Next protocol: ipv4, ipv6, mpls_uc or a number.")
def pop_mpls_command(in_path: Path, out_path: Path, quiet: bool, strict: bool, ethertype: str) -> None:
    """Pop the top MPLS label of every MPLS packet (skb_mpls_pop); others pass unchanged.

    \b
    Example:
      softgso pop-mpls labelled.pcap plain.pcap --ethertype ipv4
    """
    _action_command(in_path, out_path, f"pop-mpls:{ethertype}", quiet, strict)


@main.command("set-mpls", cls=SoftGSOCommand, context_settings=CONTEXT)
@_io_arguments
@click.option("--label", type=click.IntRange(0, 0xFFFFF))
@click.option("--tc", type=click.IntRange(0, 7))
@click.option("--ttl", type=click.IntRange(0, 255))
def set_mpls_command(in_path: Path, out_path: Path, quiet: bool, strict: bool, label: int | None, tc: int | None,
                     ttl: int | None) -> None:
    """Rewrite fields of the top label (OVS set_mpls); fields not given are kept.

    \b
    Example:
      softgso set-mpls labelled.pcap relabelled.pcap --label 200 --ttl 63
    """
    def text(value: int | None) -> str:
        return "" if value is None else str(value)

    _action_command(in_path, out_path, f"set-mpls:{text(label)}:{text(tc)}:{text(ttl)}", quiet, strict)


@main.command("dec-ttl", cls=SoftGSOCommand, context_settings=CONTEXT)
@_io_arguments
def dec_ttl_command(in_path: Path, out_path: Path, quiet: bool, strict: bool) -> None:
    """Decrement the top label's TTL (skb_mpls_dec_ttl); TTL 1 is refused (the kernel drops it).

    \b
    Example:
      softgso dec-ttl labelled.pcap hop.pcap
    """
    _action_command(in_path, out_path, "dec-ttl", quiet, strict)


@main.command("push-vlan", cls=SoftGSOCommand, context_settings=CONTEXT)
@_io_arguments
@click.option("--vid", type=click.IntRange(0, 4095), required=True)
@click.option("--pcp", type=click.IntRange(0, 7), default=0, show_default=True)
@click.option("--proto", type=click.Choice(["8021q", "8021ad"]), default="8021q", show_default=True)
def push_vlan_command(in_path: Path, out_path: Path, quiet: bool, strict: bool, vid: int, pcp: int, proto: str) -> None:
    """Push a VLAN tag as the outermost tag (tc vlan push).

    \b
    Example:
      softgso push-vlan in.pcap tagged.pcap --vid 42 --pcp 5
    """
    _action_command(in_path, out_path, f"push-vlan:{vid}:{pcp}:{proto}", quiet, strict)


@main.command("pop-vlan", cls=SoftGSOCommand, context_settings=CONTEXT)
@_io_arguments
def pop_vlan_command(in_path: Path, out_path: Path, quiet: bool, strict: bool) -> None:
    """Pop the outermost VLAN tag (tc vlan pop); untagged packets pass unchanged.

    \b
    Example:
      softgso pop-vlan tagged.pcap untagged.pcap
    """
    _action_command(in_path, out_path, "pop-vlan", quiet, strict)


# --- profiles and verify -------------------------------------------------------------------------


@main.command(cls=SoftGSOCommand, context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True)
def profiles(as_json: bool) -> None:
    """List the device profiles (features, mpls_features, MTU).

    \b
    Example:
      softgso profiles --json
    """
    from .features import PROFILES, feature_names

    rows = {
        name: {"description": p.description, "mtu": p.mtu, "features": feature_names(p.features),
               "mpls_features": feature_names(p.mpls_features), "vlan_features": feature_names(p.vlan_features)}
        for name, p in PROFILES.items()
    }
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for name, profile in PROFILES.items():
        click.echo(f"{name}: {profile.description}")
        mpls = " ".join(feature_names(profile.mpls_features)) or "(none)"
        click.echo(f"    mtu {profile.mtu}; mpls_features: {mpls}")


@main.command(cls=SoftGSOCommand, context_settings=CONTEXT)
@click.argument("case_dirs", nargs=-1, required=True, type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True)
def verify(case_dirs: tuple[Path, ...], as_json: bool) -> None:
    """Replay kernel vectors (input.pcap + input_meta.json + kernel_out.pcap) and compare, byte for byte.

    Each CASE_DIR is one case or a folder of cases. Exit status 1 if any case disagrees.

    \b
    Example:
      softgso verify tests/vectors/kernel
    """
    from .golden import load_case, run_case

    folders = sorted({p.parent for d in case_dirs for p in Path(d).rglob("input_meta.json")})
    results = []
    for folder in folders:
        case = load_case(folder)
        result = run_case(case)
        if case.refused:
            agree = result.error is not None
        else:
            agree = result.error is None and result.frames == case.kernel_frames
        results.append({"case": str(folder), "agree": agree, "kernel_refused": case.refused,
                        "softgso_error": str(result.error) if result.error else None,
                        "segments": len(result.frames), "kernel_segments": len(case.kernel_frames)})
    disagreements = [r for r in results if not r["agree"]]
    if as_json:
        click.echo(json.dumps({"cases": len(results), "disagreements": disagreements}, indent=2))
    else:
        for row in disagreements:
            click.echo(f"DISAGREE {row['case']}: softgso {row['segments']} segments / "
                       f"{row['softgso_error']}, kernel {row['kernel_segments']} segments", err=True)
        click.echo(f"{len(results) - len(disagreements)} of {len(results)} kernel cases reproduced byte for byte")
    if disagreements or not results:
        sys.exit(EXIT_REFUSED)


def iter_frames_of(path: Path) -> Iterator[tuple[int, bytes]]:
    """(index, Ethernet frame) for every Ethernet record of a capture (helper for inspect/diff)."""
    from .io import UnknownLinkTypeError, open_capture, to_ethernet

    with open_capture(path) as reader:
        for record in reader:
            try:
                view = to_ethernet(record)
            except UnknownLinkTypeError:
                continue
            if view is not None:
                yield record.index, bytes(view.frame)


if __name__ == "__main__":
    main()
