"""The command line: thin frontends over the engine (no protocol logic here).

Exit status (every command): 0 success; 1 differences found (``diff``) or packets refused under
``--strict``; 2 usage error (bad option, unknown profile, label 3...); 3 input or output file
error (unreadable, truncated, disk full); 130 interrupted (Ctrl-C); 141 standard output's reader
went away (``| head``: no message, as cat ends); 143 terminated (SIGTERM). An interrupted run
leaves no output and no temporary file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from ..errors import CaptureError, UsageError
from .runner import (
    COMMAND_ERRORS,
    EXIT_BROKEN_PIPE,
    EXIT_IO,
    EXIT_REFUSED,
    SegmentRequest,
    error_status,
    json_dumps,
    reader_gone,
    rich_console,
    run_action,
    run_segment,
    segment_options_from,
    sigterm_unwinds,
)

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


class SoftGSOCommand(click.Command):
    """A command whose SoftGSOError becomes a clear message and the documented exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        with sigterm_unwinds():
            try:
                return super().invoke(ctx)
            except COMMAND_ERRORS as error:
                message, status = error_status(error)
                if status == EXIT_BROKEN_PIPE:
                    reader_gone()  # quietly, as cat ends when its reader does
                else:
                    click.echo(message, err=True)
                ctx.exit(status)


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


def _output_format_option(function: Callable[..., None]) -> Callable[..., None]:
    """-F, as editcap and tshark have it: OUT's capture format (default: IN's)."""
    return click.option("-F", "--output-format", "output_format", type=click.Choice(["pcap", "pcapng"]),
                        help="OUT's format (as editcap -F): pcap or pcapng; default: IN's. pcap holds one "
                        "link type: a pcapng IN whose interfaces differ is refused.")(function)


# --- segment -------------------------------------------------------------------------------------


@main.command(cls=SoftGSOCommand, context_settings=CONTEXT)
@click.argument("in_path", metavar="IN", type=click.Path(path_type=Path, allow_dash=True))
@click.argument("out_path", metavar="OUT", type=click.Path(path_type=Path, allow_dash=True))
@click.option("--gso-size", type=click.IntRange(1, 65535), help="Payload bytes per segment (default: derived from --mtu).")
@click.option("--gso-type", type=click.Choice(["auto", "tcpv4", "tcpv6", "udp", "udp_l4"]), default="auto",
              show_default=True, help="SKB_GSO type; auto infers it from the headers (UDP: udp_l4, i.e. USO).")
@click.option("--udp-gso", type=click.Choice(["off", "udp_l4", "udp"]), default="off", show_default=True,
              help="UDP datagrams over the MTU are GSO super-packets of this type: udp_l4 (USO, UDP_SEGMENT) or "
              "udp (UFO); off: a capture does not say so, they pass through unchanged and are reported.")
@click.option("--tunnel-port", "tunnel_ports", multiple=True, metavar="KIND:PORT",
              help="Also treat UDP to PORT as a tunnel of KIND (vxlan, vxlan-gpe, geneve, mpls-in-udp, fou, gue), "
              "besides the standard ports (4789, 8472, 4790, 6081, 6635); FOU and GUE have none (repeatable).")
@click.option("--tunnel-under-labels", is_flag=True,
              help="Beyond the kernel: segment a tunnel found under an MPLS label stack (Linux drops it; "
              "by default it is passed through and reported), the labels and outer headers on every segment.")
@click.option("--tcp-ecn", is_flag=True, help="Set SKB_GSO_TCP_ECN (CWR stays on the first segment only).")
@click.option("--input-csum", type=click.Choice(["auto", "partial", "complete"]), default="auto", show_default=True,
              help="What the L4 checksum field holds: a CHECKSUM_PARTIAL seed, a full checksum, or detect.")
@click.option("--vnet-hdr", metavar="HEX", help="GSO metadata as a raw 10-byte little-endian virtio_net_hdr, "
              "checked with virtio_net_hdr_to_skb's rules (replaces --gso-size/--gso-type/--tcp-ecn/--input-csum).")
@click.option("--action", "actions", multiple=True, metavar="ACTION",
              help="Apply before transmit, in order, as successive tc actions (repeatable; each push lands on "
              "top): push-mpls:LABEL[/LABEL...]:TC:TTL:uc|mc (a list is one stack, top first), "
              "push-vlan:VID:PCP:8021q|8021ad, pop-mpls:ETHERTYPE, set-mpls:LABEL:TC:TTL, dec-ttl, pop-vlan. "
              "tc's words as one string also: 'mpls push label L tc T ttl N' (TTL 255 when left out, as tc), "
              "'mpls pop protocol ipv4', 'mpls modify label L', 'mpls dec_ttl', 'vlan push id V priority P "
              "protocol 802.1Q|802.1ad', 'vlan pop'; and Open vSwitch's names: pop_mpls:0x0800, "
              "set_mpls_label:L, set_mpls_tc:T, set_mpls_ttl:N, dec_mpls_ttl, strip_vlan, with 0x8847/0x8848 "
              "and 0x8100/0x88a8 for uc/mc and 8021q/8021ad. Tunnels, KEY=VALUE comma-separated: "
              "push-vxlan:src=IP,dst=IP,vni=N[,csum=on|off,sport=N,dport=N,smac=MAC,dmac=MAC,ttl=N], "
              "push-geneve:... (options=HEX), push-gre:src=IP,dst=IP[,key=N,csum=on,inner=eth] (push-gretap), "
              "pop-vxlan, pop-geneve, pop-gre (tc tunnel_key's src_ip/dst_ip/id/dst_port/nocsum and OVS's "
              "tun_id/remote_ip/local_ip too): a pushed super-packet is segmented as tunnel GSO.")
@click.option("--device", default="no-offload", show_default=True,
              help="Egress device profile (see `softgso profiles`) or a .json/.toml file.")
@click.option("--mtu", type=click.IntRange(68, 65535),
              help="Override the profile's MTU (also the basis of the derived gso_size).")
@click.option("--output-csum", type=click.Choice(["complete", "partial"]),
              help="Override the profile: complete checksums (the wire) or partial (as a NIC-offload tap shows).")
@click.option("--ip-id", type=click.Choice(["increment", "fixed", "fixed-outer", "fixed-both"]), default="increment",
              show_default=True, help="IPv4 ID per segment: increment (kernel default) or fixed (SKB_GSO_TCP_FIXEDID; "
              "needs DF up to 6.17): the inner (or only) header's; with --kernel mainline also fixed-outer (a "
              "tunnel's outer header: 6.18's SKB_GSO_TCP_FIXEDID) and fixed-both.")
@click.option("--ipv6-frag-id", type=str, default="0", help="IPv6 fragment identification for UFO (the kernel "
              "picks one at random).")
@click.option("--kernel", type=click.Choice(["6.1", "6.12", "mainline"]), default="6.1", show_default=True,
              help="Kernel generation whose rules apply (the virtio header, tc actions, GSO).")
@click.option("--strict", is_flag=True, help="Exit with status 1 if any record is reported (refused by the kernel's "
              "checks, or not segmented and passed through).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout (stderr with OUT -).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no summary table.")
@click.option("--engine", type=click.Choice(["auto", "compiled", "numpy", "scalar"]), default="auto",
              show_default=True,
              help="How classic pcap and pcapng files are streamed; every engine writes the same bytes. "
              "compiled: runs of same-shape super-packets in bulk in C (softgso.bulk._segment, built at install "
              "where a C compiler exists); numpy: the same in numpy; auto: compiled where built, else numpy; "
              "scalar: the reference path, one packet at a time.")
@click.option("--jobs", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Processes for one capture: cut into N parts at record boundaries, output in order, "
              "identical to one job (classic pcap, or a pcapng's first section; anything else runs as one job). "
              "Pays on CPU-bound captures (records that go one by one) with a core free per part; not on "
              "what the bulk stream takes (super-packets it segments, short frames it copies through), which "
              "one job writes at about cp's speed. So the first 2 MiB of records are tried in bulk first: when "
              "the bulk stream takes two thirds of their bytes or more, one job does the whole capture.")
@click.option("--dask-scheduler", metavar="ADDRESS",
              help="Segment many captures (IN a directory or a glob, OUT a directory) on a dask.distributed "
              "cluster, one task per capture.")
@_output_format_option
def segment(in_path: Path, out_path: Path, gso_size: int | None, gso_type: str, tcp_ecn: bool, input_csum: str,
            vnet_hdr: str | None, actions: tuple[str, ...], device: str, mtu: int | None, output_csum: str | None,
            ip_id: str, ipv6_frag_id: str, kernel: str, strict: bool, as_json: bool, quiet: bool,
            engine: str, jobs: int, dask_scheduler: str | None, udp_gso: str = "off",
            tunnel_ports: tuple[str, ...] = (), output_format: str | None = None,
            tunnel_under_labels: bool = False) -> None:
    """Segment every super-packet of IN exactly as Linux software GSO would; write OUT.

    A TCP packet is a super-packet when its IP packet is longer than the device MTU (or its payload
    than --gso-size), or when --vnet-hdr says so; a UDP datagram only with GSO metadata (--udp-gso,
    --gso-type udp_l4|udp, --vnet-hdr). Other packets pass through byte-identical (a partial
    checksum is completed as the device would). Every record lands in one summary row. What is
    passed through over the MTU (tunnels, UDP without GSO metadata, other protocols, snapped records,
    lengths the frame contradicts) and what the kernel would refuse is reported (a line per reason,
    frames numbered from 1 as tshark numbers them; exit 1 under --strict). OUT is written in IN's
    format unless -F says otherwise.

    OUT a regular file or a new name is written atomically: to a temporary file beside it, renamed
    onto it at the end (through a symbolic link: the link's target, where it is; the link stays).
    A character device, a FIFO or a socket is written straight through as it is, not atomically (an
    error leaves the capture cut short there), and the summary says so. A directory or a block
    device as OUT is refused.

    IN may be a FIFO or - (standard input), and gzip- or zstd-compressed (told by its magic, as
    tshark tells it): it is then read as a stream, front to back, by the scalar engine (--engine
    and --jobs then make no difference). OUT - writes the capture to standard output as it goes:
    not atomic, and the summary goes to standard error; a reader that stops early (| head) ends
    the run quietly with status 141, as cat's. OUT is written uncompressed: a file named .gz or
    .zst is refused (OUT - | gzip > out.pcap.gz writes one).

    Many captures: IN a directory (its .pcap, .pcapng and .cap files, compressed or not) or a
    quoted glob, OUT a directory (made if missing) that receives one output per capture under the
    same file name (without .gz or .zst; with -F, its format's suffix); --dask-scheduler spreads
    them over a cluster. An OUT named like a capture file (.pcap, .pcapng,
    .cap, .gz, .zst) is refused there: give a directory as OUT.

    \b
    Examples:
      softgso segment tso_capture.pcap wire.pcap
      softgso segment tso_capture.pcap.gz wire.pcapng -F pcapng
      softgso segment tso_capture.pcap - | tshark -r - -c 2
      softgso segment captures/ segmented/
      softgso segment 'captures/*.pcapng' segmented/ --json
      softgso segment in.pcap out.pcap --action push-mpls:100:0:64:uc --device nic-tso-no-mpls-gso
      softgso segment in.pcap out.pcap --vnet-hdr 01013600a80522001000 --action push-mpls:100:0:64:uc
    """
    # the parameters above are SegmentRequest's fields, name for name
    run_segment(SegmentRequest(**click.get_current_context().params))

# --- bench ---------------------------------------------------------------------------------------

BENCH_TARGET_SIZE = 512 << 20  # the targets are set on a 512 MiB capture


@main.command(cls=SoftGSOCommand, context_settings=CONTEXT)
@click.option("--size", default="32M", show_default=True,
              help="Capture size for segment vs cp (e.g. 512M for the issue's measurement).")
@click.option("--mix", type=click.Choice(["issue", "tcp4", "tcp6", "mpls", "vlan", "uso", "all", "vxlan", "geneve",
                                          "gre", "ipip", "fou"]), default="issue",
              show_default=True, help="Super-packet mix: issue = TCP/IPv4, TCP/IPv6, MPLS 1 and 3 labels; vxlan, "
                                      "geneve, gre, ipip = TCP/IPv4 and TCP/IPv6 inside those tunnels; fou = "
                                      "the same inside FOU and GUE (ports 5555 and 5556, given as --tunnel-port).")
@click.option("--repeat", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Runs of each measurement; the fastest counts.")
@click.option("--no-peers", is_flag=True, help="Skip tcprewrite and Scapy.")
@click.option("--format", "capture_format", type=click.Choice(["pcap", "pcapng"]), default="pcap", show_default=True,
              help="The main capture's format (segment vs cp; pcapng, SLL2, raw IP and flows taking turns packet by packet have rows of their own).")
@click.option("--only", type=click.Choice(["segment", "coalesce", "checkers", "command", "jobs"]),
              help="One measurement: segment (vs cp, the engine vs memcpy, passthrough, the peers), coalesce (vs cp), "
                   "checkers (inspect and diff vs segment, pcapng), command (the whole segment command vs cp "
                   "alone, e.g. for a tunnel mix), or jobs (segment --jobs 1, 2, 3 on CPU-bound and bulk inputs, "
                   "a model for 4 and 8 cores from each part timed alone, and the appending of parts; "
                   "--format pcapng recommended; not part of a full run).")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write a PNG of the ratios against their targets.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def bench(size: str, mix: str, repeat: int, no_peers: bool, plot_path: Path | None, as_json: bool,
          capture_format: str = "pcap", only: str | None = None) -> None:
    """Measure softgso against cp, memcpy, tcprewrite and a naive Scapy segmenter, side by side.

    Inputs are generated (64 KB super-packets with full checksums, on tmpfs); ratios from the same
    run are the result, absolute numbers are noise on a shared machine. The default is quick
    (well under a minute); --size 512M is the issue's measurement.

    \b
    Examples:
      softgso bench
      softgso bench --size 512M --json --plot bench.png
    """
    from .bench import parse_size, plot, run

    try:
        size_bytes = parse_size(size)
    except ValueError:
        raise UsageError(f"--size {size!r} is not a size (e.g. 64M, 1G)") from None
    if plot_path is not None:
        from .plot import check_plot_path

        check_plot_path(plot_path)  # refused before the measurements, not after them
    say = (lambda text: None) if as_json else (lambda text: click.echo(f"bench: {text}", err=True))
    report = run(size_bytes, repeat=repeat, mix=mix, peers=not no_peers, progress=say, only=only,
                 capture_format=capture_format)
    if plot_path is not None:
        note = plot(report, plot_path)
        report["plot"] = str(plot_path)
        if note:
            report["plot_written"] = note
    if as_json:
        click.echo(json_dumps(report, indent=2))
        return
    table_rows = [
        ("segment Gbit/s in", "softgso_gbit_s", ""),
        ("segment Mpps out", "softgso_mpps_out", ""),
        ("cp Gbit/s", "cp_gbit_s", ""),
        ("segment / cp", "softgso_over_cp", ">= 0.75"),
        ("segment CPU s / cp CPU s", "softgso_cpu_over_cp", "<= 1.5"),
        ("segment / cp, pcapng", "pcapng_over_cp", ">= 0.75"),
        ("  CPU s / cp CPU s", "pcapng_cpu_over_cp", "<= 1.5"),
        ("segment / cp, SLL2", "sll2_over_cp", ">= 0.75"),
        ("segment / cp, raw IP", "raw_over_cp", ">= 0.75"),
        ("segment / cp, flows interleaved", "interleaved_over_cp", ""),
        ("  CPU s / cp CPU s", "interleaved_cpu_over_cp", ""),
        ("segment / cp, a sending host's capture", "host_over_cp", ""),
        ("  CPU s / cp CPU s", "host_cpu_over_cp", ""),
        ("segment --engine numpy / cp", "numpy_stream_over_cp", ""),
        ("engine / memcpy", "engine_over_memcpy", ">= 0.25"),
        ("vs tcprewrite", "softgso_over_tcprewrite", ">= 10"),
        ("vs naive Scapy", "softgso_over_scapy", ">= 300"),
        ("coalesce Gbit/s in", "coalesce_gbit_s", ""),
        ("coalesce / cp", "coalesce_over_cp", ">= 0.75"),
        ("coalesce CPU s / cp's", "coalesce_cpu_over_cp", ""),
        ("passthrough packets/s", "passthrough_packets_per_s", ">= 1e6"),
        ("  without start-up", "passthrough_packets_per_s_excluding_startup", ""),
        ("start-up s (a plain run's imports)", "startup_seconds", ""),
        ("start-up s: segment of an empty capture", "startup_empty_seconds", ""),
        ("start-up s: segment of one packet", "startup_one_packet_seconds", "reported"),
        ("segment peak RSS MiB", "softgso_max_rss_mib", "bounded"),
        ("inspect / segment (time), pcapng", "inspect_over_segment", "<= 1.5"),
        ("  CPU s / segment CPU s", "inspect_cpu_over_segment", ""),
        ("diff IN OUT / segment (time), pcapng", "diff_over_segment", "<= 3"),
        ("  CPU s / segment CPU s", "diff_cpu_over_segment", ""),
        # bench --only jobs: (row, key) per input, then what the value is
        *((f"{text}: {row}", f"jobs_{name}_{key}_seconds", "model: each part timed alone" if "model" in key else "")
          for name, text in (("datagrams", "UDP datagrams (CPU-bound)"), ("super_packets", "super-packets (bulk)"))
          for row, key in (("cp s", "cp"), *((f"segment --jobs {n} s", f"jobs{n}") for n in (1, 2, 3)),
                           *((f"segment, {n} parts forced, s", f"parts{n}") for n in (2, 3)),
                           *((f"segment, {n} cores, s", f"model{n}") for n in (1, 2, 4, 8)),
                           *((f"inspect --jobs {n} s", f"inspect{n}") for n in (1, 2, 3)),
                           *((f"inspect, {n} cores, s", f"inspect_model{n}") for n in (1, 2, 4, 8)))),
    ]
    from rich.markup import escape
    from rich.table import Table

    # the targets are the issue's, for 512 MiB: on a smaller capture every softgso run is mostly
    # start-up (70-100 ms), which the ratios then measure
    caption = (None if size_bytes >= BENCH_TARGET_SIZE else
               f"The targets are for --size 512M: at {size_bytes >> 20} MiB, start-up is much of every softgso run.")
    table = Table(title=f"softgso bench ({size_bytes >> 20} MiB, mix {mix}, {capture_format})", header_style="bold",
                  caption=caption)
    for column in ("measure", "value", "target at 512 MiB"):
        table.add_column(column)
    # a peer that is not installed has no ratio: its row says why (the message in its JSON key)
    left_out = {"softgso_over_tcprewrite": report.get("tcprewrite"), "softgso_over_scapy": report.get("scapy")}
    for name, key, target in table_rows:
        value = report.get(key, left_out.get(key))
        if value is not None:
            # escaped: a message's brackets ('softgso[bench]') are text, not rich markup
            table.add_row(name, f"{value:,.3f}" if isinstance(value, float) else escape(str(value)), target)
    rich_console().print(table)


# --- actions as commands of their own ------------------------------------------------------------


def _action_command(in_path: Path, out_path: Path, spec: str, quiet: bool, strict: bool) -> None:
    """Run an action command (softgso.cli.runner.run_action) with the --json and -F that _io_arguments took."""
    as_json, output_format = click.get_current_context().meta.get(_ACTION_OUTPUT, (False, None))
    run_action(in_path, out_path, spec, quiet, strict, as_json, output_format)


_DASH_HELP = """
    IN may be a FIFO or - (standard input), read as a stream, gzip- or zstd-compressed or not. OUT
    is in IN's format unless -F says otherwise. OUT - is written to standard output as records come,
    not atomically (an error leaves the capture cut short there), and the summary then goes to
    standard error; a character device, a FIFO or a socket is written straight through too.
    Otherwise OUT is written atomically (through a symbolic link: its target, where it is). Every
    record counts as changed, unchanged or refused; what is refused or is no packet passes through
    unchanged and is reported.
"""


# where _io_arguments leaves an action command's --json and -F for _action_command (click's context)
_ACTION_OUTPUT = "softgso.action_output"


def _io_arguments(function: Callable[..., None]) -> Callable[..., None]:
    """IN, OUT and the options every action command shares. --json and -F are taken here and handed
    to _action_command through click's context: the commands' own signatures name only their action."""
    command = function

    def with_output(*args: Any, as_json: bool, output_format: str | None, **kwargs: Any) -> None:
        click.get_current_context().meta[_ACTION_OUTPUT] = (as_json, output_format)
        command(*args, **kwargs)

    with_output.__name__, with_output.__doc__ = command.__name__, command.__doc__
    with_output.__click_params__ = getattr(command, "__click_params__", [])  # type: ignore[attr-defined]
    function = _output_format_option(with_output)
    function = click.option("--json", "as_json", is_flag=True,
                            help="Print the summary as JSON on stdout (stderr with OUT -).")(function)
    function = click.option("--strict", is_flag=True,
                            help="Exit with status 1 if any record is reported (refused or passed through).")(function)
    function = click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")(function)
    function = click.argument("out_path", metavar="OUT",
                              type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))(function)
    # what IN and OUT may be, in every action command's --help, before its examples
    summary, _, examples = (function.__doc__ or "").partition("\n\n    \b\n")
    function.__doc__ = f"{summary}\n{_DASH_HELP}\n    \b\n{examples}" if examples else summary + _DASH_HELP
    return click.argument("in_path", metavar="IN",
                          type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))(function)


@main.command("push-mpls", cls=SoftGSOCommand, context_settings=CONTEXT)
@_io_arguments
@click.option("--label", "--labels", "labels", multiple=True, required=True, metavar="L[,L...]",
              help="Label to push; several (repeated, or a list) make a stack, written top first as tcpdump and "
              "`softgso inspect` print it: --label 100 --label 200 = --labels 100,200 = 100 on top, 200 at the "
              "bottom (S bit). Label 3 (implicit null) is refused.")
@click.option("--tc", "tcs", multiple=True, metavar="T[,T...]",
              help="Traffic class: one for every label, or one per label in the order of the labels.  [default: 0]")
@click.option("--ttl", "ttls", multiple=True, metavar="N[,N...]",
              help="TTL: one for every label, or one per label in the order of the labels.  [default: 64]")
@click.option("--ethertype", default=None, metavar="ETHERTYPE",
              help="Ethertype of the labelled packet: uc or mc (softgso's), mpls_uc or mpls_mc (tc's protocol), "
              "0x8847 or 0x8848 (Open vSwitch's push_mpls:ETHERTYPE).  [default: uc]")
@click.option("--multicast", is_flag=True, help="Ethertype 0x8848 instead of 0x8847 (--ethertype mc).")
def push_mpls_command(in_path: Path, out_path: Path, quiet: bool, strict: bool, labels: tuple[str, ...],
                      tcs: tuple[str, ...], ttls: tuple[str, ...], ethertype: str | None, multicast: bool) -> None:
    """Push MPLS labels on every packet (skb_mpls_push: S bit on the first label of a stack only).

    Several labels are one stack, listed top first (the order a stack is read in); the same stack as
    --action push-mpls:100/200. Repeated --action push-mpls:L steps of `segment` are successive
    pushes instead, as successive tc actions: each lands on top, so the last one is the top.

    \b
    Examples:
      softgso push-mpls in.pcap labelled.pcap --label 100 --tc 0 --ttl 64
      softgso push-mpls in.pcap stacked.pcap --labels 100,200 --ttl 64,33    # 100 on top, TTL 64; 200 TTL 33
    """
    from ..constants import ETH_P_MPLS_MC
    from .action_grammar import label_stack_spec, mpls_ethertype

    if multicast and ethertype is not None and mpls_ethertype(ethertype) != ETH_P_MPLS_MC:
        raise UsageError(f"--multicast and --ethertype {ethertype} disagree: give one of them")
    spec = label_stack_spec(labels, tcs, ttls, ethertype or ("mc" if multicast else "uc"))
    _action_command(in_path, out_path, spec, quiet, strict)


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
    Examples:
      softgso dec-ttl labelled.pcap hop.pcap
      softgso dec-ttl labelled.pcap.gz hop.pcapng -F pcapng --json
    """
    _action_command(in_path, out_path, "dec-ttl", quiet, strict)


@main.command("push-vlan", cls=SoftGSOCommand, context_settings=CONTEXT)
@_io_arguments
@click.option("--vid", type=click.IntRange(0, 4094), required=True,
              help="VLAN id (4095 is reserved: tc refuses to push it).")
@click.option("--pcp", type=click.IntRange(0, 7), default=0, show_default=True)
@click.option("--proto", "--protocol", "proto", type=click.Choice(["8021q", "8021ad", "802.1Q", "802.1ad", "0x8100",
              "0x88a8"], case_sensitive=False), default="8021q", show_default=True,
              help="Tag protocol: 8021q or 8021ad (softgso's), 802.1Q or 802.1ad (tc's vlan push protocol), 0x8100 "
              "or 0x88a8 (the ethertype, as Open vSwitch writes it).")
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


# --- tunnels as commands: push-vxlan / push-geneve / push-gre and their pops -----------------------


def _tunnel_push_options(function: Callable[..., None]) -> Callable[..., None]:
    """The outer headers every push-* tunnel command takes (softgso.actions.TunnelPush)."""
    for decorator in reversed((
        click.option("--src", "--local", "src", required=True, metavar="IP",
                     help="Outer source address, IPv4 or IPv6 (ip link's local)."),
        click.option("--dst", "--remote", "dst", required=True, metavar="IP",
                     help="Outer destination address, the same family (ip link's remote)."),
        click.option("--csum/--no-csum", default=None,
                     help="Outer checksum (UDP checksum; GRE: the C bit). [default: the driver's: on for UDP "
                     "over IPv6, off otherwise]"),
        click.option("--src-mac", metavar="MAC", help="Outer Ethernet source.  [default: the frame's own]"),
        click.option("--dst-mac", metavar="MAC", help="Outer Ethernet destination.  [default: the frame's own]"),
        click.option("--ttl", type=click.IntRange(1, 255), default=64, show_default=True, help="Outer TTL / hop limit."),
        click.option("--tos", type=click.IntRange(0, 255), default=0, show_default=True,
                     help="Outer TOS / traffic class."),
        click.option("--df", is_flag=True, help="Set the outer IPv4 DF bit (the drivers' default: df unset)."),
    )):
        function = decorator(function)
    return function


def _tunnel_spec(kind: str, pairs: dict[str, object]) -> str:
    """The --action string of a tunnel command (parsed, so a bad value is a usage error here)."""
    from .action_grammar import parse_action

    items = []
    for key, value in pairs.items():
        if value is None or value is False:
            if key == "csum" and value is False:
                items.append("csum=off")
            continue
        items.append(f"{key}=on" if value is True else f"{key}={value}")
    spec = f"{kind}:{','.join(items)}" if items else kind
    parse_action(spec)
    return spec


def _outer_pairs(src: str, dst: str, csum: bool | None, src_mac: str | None, dst_mac: str | None, ttl: int,
                 tos: int, df: bool) -> dict[str, object]:
    return {"src": src, "dst": dst, "csum": csum, "smac": src_mac, "dmac": dst_mac,
            "ttl": ttl if ttl != 64 else None, "tos": tos or None, "df": df}


@main.command("push-vxlan", cls=SoftGSOCommand, context_settings=CONTEXT)
@_io_arguments
@_tunnel_push_options
@click.option("--vni", type=click.IntRange(0, 0xFFFFFF), required=True, help="VXLAN network identifier.")
@click.option("--sport", type=click.IntRange(0, 65535), help="Outer UDP source port (the kernel hashes the flow "
              "into one).  [default: 49152]")
@click.option("--dport", type=click.IntRange(1, 65535), default=4789, show_default=True,
              help="Outer UDP destination port (Linux's own default is 8472).")
def push_vxlan_command(in_path: Path, out_path: Path, quiet: bool, strict: bool, src: str, dst: str,
                       csum: bool | None, src_mac: str | None, dst_mac: str | None, ttl: int, tos: int, df: bool,
                       vni: int, sport: int | None, dport: int) -> None:
    """Put every frame in VXLAN as a vxlan device does (vxlan_xmit_one, udp_tunnel_xmit_skb).

    The whole Ethernet frame goes inside (a tag out of band pushed into it); outer Ethernet, IPv4 or
    IPv6, UDP and VXLAN headers go in front, the outer checksums filled as the wire carries them.
    `softgso segment` then segments a super-packet so wrapped as tunnel GSO (the same as --action).

    \b
    Examples:
      softgso push-vxlan in.pcap vxlan.pcap --src 192.0.2.1 --dst 192.0.2.2 --vni 42
      softgso push-vxlan in.pcap vxlan6.pcap --src 2001:db8::1 --dst 2001:db8::2 --vni 42 --no-csum
    """
    pairs = {"vni": vni} | _outer_pairs(src, dst, csum, src_mac, dst_mac, ttl, tos, df)
    pairs |= {"sport": sport, "dport": dport if dport != 4789 else None}
    _action_command(in_path, out_path, _tunnel_spec("push-vxlan", pairs), quiet, strict)


@main.command("push-geneve", cls=SoftGSOCommand, context_settings=CONTEXT)
@_io_arguments
@_tunnel_push_options
@click.option("--vni", type=click.IntRange(0, 0xFFFFFF), required=True, help="Geneve virtual network identifier.")
@click.option("--options", "geneve_options", metavar="HEX",
              help="Geneve options as they go on the wire (TLVs, a multiple of 4 bytes, at most 252).")
@click.option("--sport", type=click.IntRange(0, 65535), help="Outer UDP source port.  [default: 49152]")
@click.option("--dport", type=click.IntRange(1, 65535), default=6081, show_default=True,
              help="Outer UDP destination port.")
def push_geneve_command(in_path: Path, out_path: Path, quiet: bool, strict: bool, src: str, dst: str,
                        csum: bool | None, src_mac: str | None, dst_mac: str | None, ttl: int, tos: int, df: bool,
                        vni: int, geneve_options: str | None, sport: int | None, dport: int) -> None:
    """Put every frame in Geneve as a geneve device does (geneve_xmit_skb, udp_tunnel_xmit_skb).

    \b
    Examples:
      softgso push-geneve in.pcap geneve.pcap --src 192.0.2.1 --dst 192.0.2.2 --vni 7 --csum
      softgso push-geneve in.pcap geneve.pcap --src 192.0.2.1 --dst 192.0.2.2 --vni 7 --options 0101020100000001
    """
    pairs = {"vni": vni} | _outer_pairs(src, dst, csum, src_mac, dst_mac, ttl, tos, df)
    pairs |= {"options": geneve_options, "sport": sport, "dport": dport if dport != 6081 else None}
    _action_command(in_path, out_path, _tunnel_spec("push-geneve", pairs), quiet, strict)


@main.command("push-gre", cls=SoftGSOCommand, context_settings=CONTEXT)
@_io_arguments
@_tunnel_push_options
@click.option("--key", type=click.IntRange(0, 0xFFFFFFFF), help="GRE key (the K bit); none by default.")
@click.option("--ethernet", is_flag=True, help="gretap: the whole Ethernet frame inside (protocol 0x6558); "
              "without it, GRE carries the L3 packet (ipgre) and the frame's L2 header stays outside.")
def push_gre_command(in_path: Path, out_path: Path, quiet: bool, strict: bool, src: str, dst: str,
                     csum: bool | None, src_mac: str | None, dst_mac: str | None, ttl: int, tos: int, df: bool,
                     key: int | None, ethernet: bool) -> None:
    """Put every frame in GRE as a gre or gretap device does (ipgre_xmit, gre_tap_xmit, gre_build_header).

    \b
    Examples:
      softgso push-gre in.pcap gre.pcap --src 192.0.2.1 --dst 192.0.2.2 --key 7 --csum
      softgso push-gre in.pcap gretap.pcap --src 192.0.2.1 --dst 192.0.2.2 --ethernet
    """
    pairs = {"key": key} | _outer_pairs(src, dst, csum, src_mac, dst_mac, ttl, tos, df)
    pairs |= {"inner": "eth" if ethernet else None}
    _action_command(in_path, out_path, _tunnel_spec("push-gre", pairs), quiet, strict)


def _pop_tunnel(kind: str, in_path: Path, out_path: Path, quiet: bool, strict: bool, dport: int | None) -> None:
    _action_command(in_path, out_path, _tunnel_spec(kind, {"dport": dport}), quiet, strict)


@main.command("pop-vxlan", cls=SoftGSOCommand, context_settings=CONTEXT)
@_io_arguments
@click.option("--dport", type=click.IntRange(1, 65535), help="VXLAN on this UDP port.  [default: 4789 and 8472]")
def pop_vxlan_command(in_path: Path, out_path: Path, quiet: bool, strict: bool, dport: int | None) -> None:
    """Take the VXLAN tunnel off every VXLAN frame (the inner frame is what remains); others pass unchanged.

    \b
    Example:
      softgso pop-vxlan vxlan.pcap plain.pcap
    """
    _pop_tunnel("pop-vxlan", in_path, out_path, quiet, strict, dport)


@main.command("pop-geneve", cls=SoftGSOCommand, context_settings=CONTEXT)
@_io_arguments
@click.option("--dport", type=click.IntRange(1, 65535), help="Geneve on this UDP port.  [default: 6081]")
def pop_geneve_command(in_path: Path, out_path: Path, quiet: bool, strict: bool, dport: int | None) -> None:
    """Take the Geneve tunnel off every Geneve frame; others pass unchanged.

    \b
    Example:
      softgso pop-geneve geneve.pcap plain.pcap
    """
    _pop_tunnel("pop-geneve", in_path, out_path, quiet, strict, dport)


@main.command("pop-gre", cls=SoftGSOCommand, context_settings=CONTEXT)
@_io_arguments
def pop_gre_command(in_path: Path, out_path: Path, quiet: bool, strict: bool) -> None:
    """Take the GRE tunnel off every GRE or gretap frame (GRE carrying L3: the frame's L2 header
    gets the GRE protocol as its ethertype); others pass unchanged.

    \b
    Example:
      softgso pop-gre gre.pcap plain.pcap
    """
    _pop_tunnel("pop-gre", in_path, out_path, quiet, strict, None)


# --- profiles and verify -------------------------------------------------------------------------


@main.command(cls=SoftGSOCommand, context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True)
def profiles(as_json: bool) -> None:
    """List the device profiles (features, mpls_features, MTU).

    \b
    Example:
      softgso profiles --json
    """
    from ..features import PROFILES, feature_names

    rows = {
        name: {"description": p.description, "mtu": p.mtu, "features": feature_names(p.features),
               "mpls_features": feature_names(p.mpls_features), "vlan_features": feature_names(p.vlan_features)}
        for name, p in PROFILES.items()
    }
    if as_json:
        click.echo(json_dumps(rows, indent=2))
        return
    for name, profile in PROFILES.items():
        click.echo(f"{name}: {profile.description}")
        mpls = " ".join(feature_names(profile.mpls_features)) or "(none)"
        click.echo(f"    mtu {profile.mtu}; mpls_features: {mpls}")


@main.command(cls=SoftGSOCommand, context_settings=CONTEXT)
@click.argument("case_dirs", metavar="[CASES]...", nargs=-1,
                type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--builtin", is_flag=True, help="Replay the kernel vectors installed with softgso.")
@click.option("--json", "as_json", is_flag=True)
def verify(case_dirs: tuple[Path, ...], builtin: bool, as_json: bool) -> None:
    """Replay kernel vectors (input.pcap + input_meta.json + kernel_out.pcap) and compare, byte for byte.

    Each of CASES is one case or a folder of cases; --builtin adds the cases installed with softgso
    (some of a source checkout's tests/vectors/kernel, which `softgso verify tests/vectors/kernel`
    replays whole there). Exit status 1 if any case disagrees.

    \b
    Examples:
      softgso verify --builtin
      softgso verify --builtin --json
    """
    from ..check.golden import BUILTIN_VECTORS, case_folders, load_case, run_case

    if not case_dirs and not builtin:
        raise UsageError("give folders of kernel cases, or --builtin for those installed with softgso")
    for given in case_dirs:  # a folder holding no case would add nothing, and say nothing of it
        if not case_folders([given]):
            raise UsageError(f"{given}: no kernel cases there (folders holding input_meta.json, input.pcap and "
                             "kernel_out.pcap)")
    folders = case_folders([*case_dirs, *([BUILTIN_VECTORS] if builtin else [])])
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
        click.echo(json_dumps({"cases": len(results), "disagreements": disagreements}, indent=2))
    else:
        for row in disagreements:
            click.echo(f"DISAGREE {row['case']}: softgso {row['segments']} segments / "
                       f"{row['softgso_error']}, kernel {row['kernel_segments']} segments", err=True)
        click.echo(f"{len(results) - len(disagreements)} of {len(results)} kernel cases reproduced byte for byte")
    if disagreements or not results:
        sys.exit(EXIT_REFUSED)


# --- inspect and diff ----------------------------------------------------------------------------


def _with_progress(reader: Any, quiet: bool, description: str) -> Iterator[Any]:
    """The reader's records, with segment's progress bar on stderr when it is a terminal (drawn once
    the work has run for half a second: short runs never draw one)."""
    from .runner import progress_bar

    with progress_bar(quiet, int(getattr(reader, "file_size", 0) or 0), description) as bar:
        for count, record in enumerate(reader):
            yield record
            if count % 64 == 0:
                bar(int(getattr(reader, "bytes_read", 0) or 0))


def _segment_like_options(function: Callable[..., None]) -> Callable[..., None]:
    """The options of ``segment`` that decide what it would write (for ``inspect``)."""
    options = [
        click.option("--tunnel-port", "tunnel_ports", multiple=True, metavar="KIND:PORT", help="As for segment."),
        click.option("--udp-gso", type=click.Choice(["off", "udp_l4", "udp"]), default="off", show_default=True,
                     help="As for segment."),
        click.option("--kernel", type=click.Choice(["6.1", "6.12", "mainline"]), default="6.1", show_default=True,
                     help="As for segment."),
        click.option("--ipv6-frag-id", type=str, default="0", help="As for segment."),
        click.option("--ip-id", type=click.Choice(["increment", "fixed", "fixed-outer", "fixed-both"]),
                     default="increment", show_default=True,
                     help="As for segment."),
        click.option("--output-csum", type=click.Choice(["complete", "partial"]), help="As for segment."),
        click.option("--mtu", type=click.IntRange(68, 65535),
                     help="Override the profile's MTU (what 'over MTU' is measured against)."),
        click.option("--device", default="no-offload", show_default=True,
                     help="Egress device profile (see `softgso profiles`) or a .json/.toml file."),
        click.option("--action", "actions", multiple=True, metavar="ACTION",
                     help="As for segment: applied before the predicted transmit (repeatable)."),
        click.option("--vnet-hdr", metavar="HEX", help="As for segment: GSO metadata as a raw virtio_net_hdr."),
        click.option("--input-csum", type=click.Choice(["auto", "partial", "complete"]), default="auto",
                     show_default=True, help="As for segment."),
        click.option("--tcp-ecn", is_flag=True, help="As for segment."),
        click.option("--gso-type", type=click.Choice(["auto", "tcpv4", "tcpv6", "udp", "udp_l4"]), default="auto",
                     show_default=True, help="As for segment."),
        click.option("--gso-size", type=click.IntRange(1, 65535), help="As for segment (default: from the MTU)."),
    ]
    for option in options:
        function = option(function)
    return function


@main.command(cls=SoftGSOCommand, context_settings=CONTEXT)
@click.argument("in_path", metavar="IN", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@_segment_like_options
@click.option("--top", type=click.IntRange(0, 10000), default=10, show_default=True,
              help="Flows to list, and tunnels (each kind, outer flow, VNI or key, inner flow).")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write a PNG of the frame-size distribution before and after segmentation.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--engine", type=click.Choice(["auto", "scalar"]), default="auto", show_default=True,
              help="How IN is read and what segment would write worked out; both give the same report. auto: a "
              "file read by the bulk reader, the short frames segment leaves untouched counted a chunk at a "
              "time, a super-packet of a shape seen before from its shape's plan (the one segment's bulk stream "
              "uses, where the compiled modules are built), and coalesce's preview counted by the compiled GRO "
              "without building its packets; scalar: every record read by the general reader and through the "
              "engine, every preview packet built.")
@click.option("--jobs", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Processes for one capture (--engine auto): cut into N parts as segment --jobs cuts it (each cut "
              "after a multiple of 64 records, coalesce's poll), their counts added up in order: the same report "
              "as one job. Pays with a core free per part, most on records counted one by one; anything the "
              "bulk reader does not take to its end is inspected in one job.")
def inspect(in_path: Path, gso_size: int | None, gso_type: str, tcp_ecn: bool, input_csum: str,
            vnet_hdr: str | None, actions: tuple[str, ...], device: str, mtu: int | None, output_csum: str | None,
            ip_id: str, ipv6_frag_id: str, kernel: str, top: int, plot_path: Path | None, as_json: bool,
            quiet: bool, udp_gso: str = "off", tunnel_ports: tuple[str, ...] = (), engine: str = "auto",
            jobs: int = 1) -> None:
    """Report what IN holds and what `softgso segment` (same options) would make of it.

    Packets, super-packets over the MTU, label stacks and VLAN tags seen, flows, tunnels (kind,
    outer flow, VNI or GRE key, inner flow), checksum states
    (complete, CHECKSUM_PARTIAL seed, invalid, zero), IPv4 tot_len 0 or not matching the frame,
    IPv6 jumbograms, non-IP packets, and the segments `segment` would write, per outcome.
    IN may be a FIFO or - (standard input), gzip- or zstd-compressed or not.

    \b
    Examples:
      softgso inspect capture.pcap
      softgso inspect capture.pcapng --device nic-tso-no-mpls-gso --action push-mpls:100:0:64:uc
      softgso inspect capture.pcap --json --plot sizes.png
    """
    from ..io import open_capture
    from .inspect import CaptureInspector

    options = segment_options_from(device, mtu, output_csum, gso_size, gso_type, tcp_ecn, input_csum, vnet_hdr,
                                    actions, ip_id, ipv6_frag_id, kernel, tunnel_ports, udp_gso)
    if plot_path is not None:
        from .plot import check_plot_path

        check_plot_path(plot_path)  # a directory, a block device, an unknown format: refused before the work
    if engine == "auto" and jobs > 1:
        from .inspect_jobs import inspect_in_parts

        done = inspect_in_parts(in_path, options, kernel, top, jobs, quiet)
        if done is not None:
            _inspect_report(in_path, options, plot_path, as_json, *done)
            return
    inspector = CaptureInspector(options, top=top)
    if engine == "auto":
        from ..bulk import compiled_primitive

        if compiled_primitive.available():
            from .inspect import SegmentPlanner

            inspector.planner = SegmentPlanner(options)
    from ..gro import CoalescePreview, GroDevice

    # what `coalesce` (defaults) would do; scalar: each poll's packets built and counted one by one
    gro_preview = CoalescePreview(GroDevice(kernel=kernel), counting=engine == "auto")
    read_error: CaptureError | None = None
    # auto: the bulk reader where it takes the file (short frames segment leaves untouched counted a
    # run at a time), the general reader from where it stops; scalar: the general reader, record by record
    from .inspect_batch import inspect_bulk_reader

    frames, tunnel_ports_all = (None, ()) if engine != "auto" else inspect_bulk_reader(in_path, options, inspector)
    skip: int | None = 0
    if frames is not None:
        from .inspect_batch import BatchReader
        from .runner import progress_bar

        with progress_bar(quiet, frames.file_size, "inspect") as bar:
            batches = BatchReader(inspector, gro_preview, frames, tunnel_ports_all)
            try:
                batches.run(bar)
                skip = None if batches.frames.walked_to_end else batches.frames.next_index
            finally:
                batches.frames.close()
    if skip is not None:
        from .inspect_batch import add_record

        with open_capture(in_path) as reader:
            try:
                for record in _with_progress(reader, quiet, "inspect"):
                    if record.index >= skip:
                        add_record(inspector, gro_preview, record)
            except CaptureError as error:
                read_error = error
    _inspect_report(in_path, options, plot_path, as_json, inspector, gro_preview.as_dict(), read_error)


def _inspect_report(in_path: Path, options: Any, plot_path: Path | None, as_json: bool, inspector: Any,
                    preview: dict[str, Any], read_error: CaptureError | None = None) -> None:
    """inspect's report of ``inspector`` and coalesce's ``preview``: JSON or tables, the plot, the exit status."""
    report = inspector.as_dict()
    report["coalesce"] = preview
    report["file"] = str(in_path)
    # a broken file as every command's JSON has it (frame from 1), read_error its text alone
    report["input_errors"] = []
    if read_error is not None:
        report["read_error"] = str(read_error)
        index = getattr(read_error, "index", None)
        report["input_errors"] = [{"frame": (inspector.packets if index is None else index) + 1,
                                   "reason": f"input broken, reading stopped: {read_error}"}]
    if plot_path is not None:
        from .plot import plot_size_distribution

        note = plot_size_distribution(inspector.sizes_in, inspector.sizes_out, inspector.mtu, plot_path,
                                      title=f"{in_path.name}: frame sizes (device {options.device.name})")
        report["plot"] = str(plot_path)
        if note:
            report["plot_written"] = note
    if as_json:
        click.echo(json_dumps(report, indent=2))
    else:
        _inspect_tables(report)
    if read_error is not None:
        click.echo(f"softgso: error: {read_error} (report covers the {inspector.packets} packets before it)",
                   err=True)
        sys.exit(EXIT_IO)


def _counts_text(counts: Any) -> str:
    return ", ".join(f"{name}: {count}" for name, count in counts.items() if count) or "-"


def _flow_text(flow: dict[str, Any] | None) -> str:
    """``TCP 10.0.0.1:40000 > 10.0.0.2:5201`` (addresses only for other protocols)."""
    if flow is None:
        return "not TCP/UDP over IP"

    def end(address: str, port: int) -> str:
        if flow["protocol"] not in ("TCP", "UDP"):
            return address
        return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"

    return f"{flow['protocol']} {end(flow['src'], flow['sport'])} > {end(flow['dst'], flow['dport'])}"


def _tunnel_table(console: Any, report: dict[str, Any]) -> None:
    """inspect's tunnels section, two lines a tunnel: kind, VNI or key, outer flow; inner flow and counts."""
    from rich.markup import escape

    console.print(f"[bold]tunnels[/bold] ({len(report['tunnels'])} of {report['tunnels_total']}, "
                  f"{report['tunnel_packets']:,} packets)", soft_wrap=True)
    for tunnel in report["tunnels"]:
        identifier = (f" VNI {tunnel['vni']}" if tunnel["vni"] is not None
                      else f" key {tunnel['key']}" if tunnel["key"] is not None else "")
        console.print(escape(f" {tunnel['kind']}{identifier}: outer {_flow_text(tunnel['outer'])}"), soft_wrap=True)
        console.print(escape(f"   inner {_flow_text(tunnel['inner'])}: {tunnel['packets']:,} packets, "
                             f"{tunnel['bytes']:,} bytes, {tunnel['super_packets']:,} super-packets"), soft_wrap=True)


def _inspect_tables(report: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = rich_console()
    console.print(f"[bold]softgso inspect {escape(report['file'])}[/bold]")
    table = Table(show_header=False, box=None, padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    duration = f" over {report['duration_s']:.3f} s" if report["duration_s"] else ""

    def row(name: str, value: str) -> None:
        table.add_row(escape(name), escape(value))

    row("records", f"{report['records']:,} ({report['bytes']:,} bytes{duration})")
    row("largest frame", f"{report['largest_frame']:,} bytes")
    row(f"over MTU {report['mtu']}", f"{report['super_packets_over_mtu']:,} super-packets")
    row("label stacks", _counts_text(report["label_stacks"]))
    row("VLAN tags", _counts_text(report["vlan_tags"]))
    row("IPv4 hdr checksums", _counts_text(report["ipv4_header_checksums"]))
    row("TCP/UDP checksums", _counts_text(report["l4_checksums"]))
    lengths = {"IPv4 tot_len 0": report["ipv4_tot_len_zero"],
               "IPv4 tot_len != frame": report["ipv4_tot_len_mismatch"],
               "IPv6 jumbo": report["ipv6_jumbograms"], "IPv6 plen 0": report["ipv6_payload_len_zero"],
               "padded": report["ethernet_padding"], "fragments": report["ip_fragments"]}
    row("IP lengths", _counts_text(lengths))
    row("other IP protocols", _counts_text(report["other_ip_protocols"]))
    row("non-IP", _counts_text({**report["non_ip"], **report["not_ethernet"]}))
    if report["undecodable"]:
        row("undecodable", str(report["undecodable"]))
    seg = report["segment"]
    row("segment would write", f"{seg['records_out']:,} records ({seg['bytes_out']:,} bytes) on device "
        f"{report['device']}")
    row("  per input record", _counts_text(seg["outcomes"]))
    row("  over MTU, not segmented", f"{seg['over_mtu_not_segmented']:,}")
    if "coalesce" in report:
        gro = report["coalesce"]
        row("coalesce would write", f"{gro['packets_out']:,} packets, {gro['coalesced']:,} coalesced from "
            f"{gro['frames_merged']:,} frames (GRO of kernel {gro['kernel']}, polls of {gro['batch']})")
    if report.get("plot"):
        row("plot", report["plot"] + (f" ({report['plot_written']})" if report.get("plot_written") else ""))
    console.print(table)
    if report["flows_top"]:
        flows = Table(title=f"top flows ({len(report['flows_top'])} of {report['flows_total']})",
                      title_justify="left", header_style="bold", box=None, padding=(0, 1))
        for name, justify in (("protocol", "left"), ("source", "left"), ("destination", "left"),
                              ("packets", "right"), ("bytes", "right")):
            flows.add_column(name, justify=justify)  # type: ignore[arg-type]
        for flow in report["flows_top"]:
            def end(address: str, port: int, proto: str = flow["protocol"]) -> str:
                if proto not in ("TCP", "UDP"):
                    return address
                return escape(f"[{address}]:{port}" if ":" in address else f"{address}:{port}")
            flows.add_row(flow["protocol"], end(flow["src"], flow["sport"]), end(flow["dst"], flow["dport"]),
                          f"{flow['packets']:,}", f"{flow['bytes']:,}")
        console.print(flows)
    if report.get("tunnels"):
        _tunnel_table(console, report)
    for item in report["reports"]:
        click.echo(f"softgso: frame {item['frame']}: {item['reason']}", err=True)
    if report["reports_total"] > len(report["reports"]):
        click.echo(f"softgso: ... and {report['reports_total'] - len(report['reports'])} more reports", err=True)


@main.command(cls=SoftGSOCommand, context_settings=CONTEXT)
@click.argument("in_path", metavar="IN", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.argument("out_path", metavar="OUT", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("--batch", type=click.IntRange(1, 1 << 20), default=64, show_default=True,
              help="Frames per NAPI poll: GRO flushes everything it holds after every N frames (64: the NAPI weight).")
@click.option("--gro-max-size", type=click.IntRange(1, 524280), default=65536, show_default=True,
              help="The device's gro_max_size (and gro_ipv4_max_size): above 65536 is BIG TCP "
              "(IPv6 only on 6.1, IPv4 too from 6.3).")
@click.option("--kernel", type=click.Choice(["6.1", "6.12", "mainline"]), default="6.1", show_default=True,
              help="Kernel generation whose GRO rules apply, as segment's --kernel (CWR, fixed IP IDs without DF, "
              "IPv4 BIG TCP); the current kernel GRO selftest expects mainline's.")
@click.option("--mpls", is_flag=True, help="Beyond the kernel (which has no MPLS GRO): coalesce labelled "
              "frames under identical label stacks by the inner rules.")
@click.option("--udp-gro-forwarding", is_flag=True,
              help="The device has rx-udp-gro-forwarding on: forwarded UDP coalesces (off, as in the kernel).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout (stderr with OUT -).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no summary.")
@click.option("--strict", is_flag=True, help="Exit with status 1 if a frame could not be read by GRO "
              "(truncated, bad checksum, not Ethernet).")
@click.option("--engine", type=click.Choice(["auto", "scalar"]), default="auto", show_default=True,
              help="How a classic pcap of Ethernet is read; both write the same bytes. auto: in bulk, each poll of "
              "the common shape (IPv4/IPv6 TCP, checksums valid; ARP, UDP and the like passed up) through the compiled GRO "
              "(softgso.gro._coalesce, built at install where a C compiler exists), every other poll through the "
              "scalar engine; scalar: every record through the scalar engine.")
@_output_format_option
def coalesce(in_path: Path, out_path: Path, batch: int, gro_max_size: int, kernel: str, mpls: bool,
             udp_gro_forwarding: bool, as_json: bool, quiet: bool, strict: bool,
             output_format: str | None = None, engine: str = "auto") -> None:
    """Coalesce received frames as Linux GRO does: OUT holds what the receiving host's stack (and its
    tcpdump) sees, one record per packet, in order, each with its first segment's timestamp.

    IN is frames as a NIC receives them (no flow hash: every frame hashes to 0, as frames injected on a
    veth do). OUT is in IN's format unless -F says otherwise; pcapng OUT carries each coalesced packet's GSO metadata as a comment
    "gso_size=N gso_type=tcpv4|tcpv6|udp_l4[,ecn|,accecn][,ipxip4|,ipxip6|,gre][,fixedid][,fixedid_inner] segs=K". Checksums are verified as for a
    device without receive checksum offload: a frame with a bad one is passed up unchanged.

    \b
    Examples:
      softgso coalesce wire.pcap stack.pcapng -F pcapng
      softgso coalesce wire.pcap stack.pcap --batch 8 --kernel 6.1 --json
    """
    from .coalesce import run_coalesce

    run_coalesce(in_path, out_path, batch=batch, gro_max_size=gro_max_size, kernel=kernel, mpls=mpls,
                 as_json=as_json, quiet=quiet, strict=strict, udp_gro_forwarding=udp_gro_forwarding,
                 output_format=output_format, engine=engine)


@main.command(cls=SoftGSOCommand, context_settings=CONTEXT)
@click.argument("a_path", metavar="A", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.argument("b_path", metavar="B", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("--pair-by", "--mode", "pair_by", type=click.Choice(["auto", "position", "flow"]), default="auto",
              show_default=True,
              help="How frames of A meet frames of B. position: frame N with frame N. flow: each frame of A with "
              "what it became in B, by flow and TCP sequence or UDP datagram (segmented into frames N..M, "
              "unchanged, checksum completed, changed, merged, missing). auto: position when A and B have as "
              "many frames, else flow.")
@click.option("--map", "map_path", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Write every frame of A's fate and its frames of B as JSON to FILE (atomically, as every "
              "output).")
@click.option("--max", "max_shown", type=click.IntRange(0, None), default=10, show_default=True,
              help="Frames to describe (by flow: those that differ, else the first ones).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No output and no progress bar: the exit status says it all.")
@click.option("--tunnel-port", "tunnel_ports", multiple=True, metavar="KIND:PORT",
              help="Also read UDP to PORT as a tunnel of KIND, as for segment (FOU and GUE have no port of their "
              "own) (repeatable).")
@click.option("--engine", type=click.Choice(["auto", "scalar"]), default="auto", show_default=True,
              help="How A and B are read; both give the same report. auto: a pcap or pcapng file of Ethernet "
              "frames a chunk at a time by the bulk reader, the segments of a TCP frame of A that are plainly "
              "its segments (payload intact, nothing else to say) taken as a run in compiled code "
              "(softgso.bulk._records), every other frame by the per-frame code; scalar: record by record.")
def diff(a_path: Path, b_path: Path, max_shown: int, as_json: bool, quiet: bool, pair_by: str = "auto",
         map_path: Path | None = None, tunnel_ports: tuple[str, ...] = (), engine: str = "auto") -> None:
    """Compare two captures field by field: A before and B after (segment IN OUT), or ours and the kernel's.

    Frames are numbered from 1 everywhere (messages, --json, --map), as tshark numbers them. They are
    compared after Linux cooked and raw-IP headers become Ethernet; record timestamps are not
    compared. By position, exit status 0 means the same frames byte for byte. By flow, 0 means B is
    what A becomes: every frame of A is segmented with its payload intact (only lengths, IDs,
    sequence numbers, checksums and the flags segmentation moves differ), unchanged, or changed only
    in checksums that verify in B (or hold the seed a device with checksum offload fills them from);
    and every frame of B comes from one of them. 1 is any other difference; 3 an unreadable input. Either of A and B may be a FIFO or - (standard input). A
    progress bar appears on a terminal once the work has run for half a second.

    \b
    Examples:
      softgso diff ours.pcap kernel_out.pcap
      softgso diff in.pcap segmented.pcap                 # by flow: what became of each frame of IN
      softgso diff in.pcap segmented.pcap --map map.json --json
      softgso diff ours.pcap kernel_out.pcap --max 3 --pair-by position
    """
    from .diff import run_diff

    run_diff(a_path, b_path, max_shown, as_json, quiet, pair_by, map_path, tunnel_ports, engine)



@main.command(cls=SoftGSOCommand, context_settings=CONTEXT)
@click.option("--mode", type=click.Choice(["sw-gso", "hw-gso", "no-gso"]), default="sw-gso", show_default=True,
              help="sw-gso: the link (a veth pair) has no MPLS GSO, LER1 segments after the push; hw-gso: a NIC "
                   "with MPLS TSO, the GSO packet crosses whole (in-process: no kernel device here carries MPLS "
                   "super-packets); no-gso: TAP offloads off, the west kernel segments (baseline).")
@click.option("--labels", default="100", show_default=True, metavar="L[,L...]",
              help="Label stack LER1 pushes towards east, top first.")
@click.option("--return-labels", default=None, metavar="L[,L...]",
              help="Label stack LER2 pushes towards west (default: each --labels value + 1).")
@click.option("--link-profile", default=None, metavar="NAME|FILE",
              help="Device profile of the MPLS link (default: nic-tso-no-mpls-gso, or tso for hw-gso).")
@click.option("--link-mtu", type=int, default=None, help="MTU of the MPLS link (default: --mtu + 4 per label).")
@click.option("--mtu", type=click.IntRange(576, 9000), default=1500, show_default=True,
              help="MTU of the west and east TAPs.")
@click.option("--vnet-hdr-len", type=click.Choice(["10", "12"]), default="10", show_default=True,
              help="virtio_net_hdr size on the TAPs (TUNSETVNETHDRSZ).")
@click.option("--gro-flush-timeout", type=click.IntRange(0, 10_000_000), default=0, show_default=True, metavar="NS",
              help="Experimental: TAPs in NAPI mode with receive GRO held NS nanoseconds (0: off).")
@click.option("--gro", type=click.Choice(["on", "off"]), default="on", show_default=True,
              help="GRO at the receiving LER: the link frames of each batch coalesce into super-packets, one "
                   "TAP write each (off: one write per frame).")
@click.option("--capture", type=click.Path(dir_okay=False), default=None, metavar="FILE.pcap",
              help="Write what crosses the MPLS link, read from the link (with --selftest: FILE-<mode>.pcap per mode).")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: Ctrl-C).")
@click.option("--selftest", is_flag=True,
              help="Verified bulk transfers (TCP/IPv4 both ways, TCP/IPv6, UDP with USO) in every mode.")
@click.option("--modes", default="sw-gso,hw-gso,no-gso", show_default=True, help="With --selftest: modes to run.")
@click.option("--bytes", "size", default="64M", show_default=True,
              help="With --selftest: bytes per TCP transfer and direction (UDP sends a quarter).")
@click.option("--no-ipv6", is_flag=True, help="With --selftest: skip the IPv6 transfer.")
@click.option("--no-udp", is_flag=True, help="With --selftest: skip the UDP transfer.")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="With --selftest: seconds per transfer.")
@click.option("--json", "as_json", is_flag=True, help="Statistics (or the self-test result) as JSON on exit.")
@click.option("--no-live", is_flag=True, help="No live statistics table.")
@click.option("--user", default=None, metavar="NAME|UID",
              help="Once the namespaces and TAPs exist, forward as this unprivileged user (a child process "
                   "with no groups and no capabilities); the root process only waits and tears down.")
@click.option("--engine", type=click.Choice(["auto", "compiled", "numpy", "scalar"]), default="auto",
              show_default=True,
              help="How the LERs segment super-packets from the TAPs; every engine puts the same frames on the "
              "link. compiled/numpy: shapes learnt from the scalar path, then segmented in bulk; auto: compiled "
              "where built, else numpy; scalar: every packet through the reference engine.")
def datapath(mode: str, labels: str, return_labels: str | None, link_profile: str | None, link_mtu: int | None,
             mtu: int, vnet_hdr_len: str, gro_flush_timeout: int, gro: str, capture: str | None,
             duration: float | None,
             selftest: bool, modes: str, size: str, no_ipv6: bool, no_udp: bool, timeout: float, as_json: bool,
             no_live: bool, user: str | None, engine: str) -> None:
    """Live datapath: kernel TCP across a software MPLS hop between two network namespaces (root).

    netns west --TAP--> LER1 (push labels) --veth--> LER2 (pop, GRO) --TAP--> netns east, and back.
    Namespaces, TAPs, addresses and routes are made by the command and removed on exit (Ctrl-C,
    SIGTERM, error). Malformed frames are counted and dropped, with at most a few warning lines a
    second. A TAP or namespace deleted underneath ends the run (status 1) after the teardown.
    Exit status: 0 ok; 1 self-test not verified or a runtime error (a TAP went away); 2 usage error
    (an unknown --user) or not root; 130 Ctrl-C during setup or --selftest, 143 SIGTERM.

    \b
    Examples:
      sudo softgso datapath                                # forward until Ctrl-C
      sudo softgso datapath --mode hw-gso --labels 100,200 --capture link.pcap
      sudo softgso datapath --user nobody                  # forward unprivileged after the setup
      sudo softgso datapath --selftest                     # sw-gso / hw-gso / no-gso goodput side by side
      sudo softgso datapath --selftest --bytes 256M --json
    """
    import importlib.util

    if importlib.util.find_spec("pyroute2") is None:
        # an optional extra: say which to install (exit 2), never a ModuleNotFoundError traceback
        raise UsageError("softgso datapath needs pyroute2 (netlink for the namespaces and TAPs): "
                         "pip install 'softgso[datapath]'")
    from ..datapath import run_datapath
    from ..datapath.run import DatapathOptions, parse_labels, parse_size

    options = DatapathOptions(
        mode=mode, labels=parse_labels(labels),
        return_labels=parse_labels(return_labels) if return_labels else None,
        link_profile=link_profile, link_mtu=link_mtu, mtu=mtu, vnet_hdr_len=int(vnet_hdr_len),
        gro_flush_timeout_ns=gro_flush_timeout, gro=gro == "on", capture=capture, json=as_json, live=not no_live,
        duration=duration, selftest=selftest,
        modes=tuple(m.strip() for m in modes.split(",") if m.strip()),
        bytes=parse_size(size), ipv6=not no_ipv6, udp=not no_udp, timeout=timeout, user=user, engine=engine,
    )
    sys.exit(run_datapath(options))


if __name__ == "__main__":
    main()
