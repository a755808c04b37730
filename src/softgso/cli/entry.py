"""The ``softgso`` command's entry point: a plain ``segment`` runs at once, anything else goes to click.

Interpreter start-up and imports take about 0.1 s, the time ``cp`` needs for a few hundred MB,
and click with the command declarations is a third of it. So a command line that is plainly
``softgso segment [OPTIONS] IN OUT`` (IN a regular file, OUT a file, every option one of
segment's own with a value it accepts) is parsed here, against a table of segment's options, and
run by :func:`softgso.cli.runner.run_segment` (a SegmentRequest) without importing click; OUT's temporary file is made
first and its space reserved in the background while the engine loads (softgso.io.outfile), when OUT
is written atomically at all (a regular file or a new name, through a symbolic link its target's
folder): nothing is made beside a device, a FIFO or a socket, and the writer refuses a block device.
Anything else (another command, --help, --jobs, ``-``, an unknown option, a value click would
refuse) goes to click, which parses it and reports errors as always. The tests hold the table to
the ``segment`` command's own declaration, and this parser to click's on generated command lines.
"""

from __future__ import annotations

import os
import stat
import sys

TYPE_CHECKING = False  # typing costs start-up milliseconds; mypy reads this as typing's
if TYPE_CHECKING:
    from typing import Any, NoReturn

# segment's options: name -> (parameter, kind, accepted values). kind: "flag"; "str"; "multiple"
# (a str, repeatable); "int" with an inclusive (low, high) range, None for no bounds; "choice".
# Options absent here (--jobs, --dask-scheduler, --help) leave the command line to click.
SEGMENT_OPTIONS: dict[str, tuple[str, str, Any]] = {
    "--gso-size": ("gso_size", "int", (1, 65535)),
    "--gso-type": ("gso_type", "choice", ("auto", "tcpv4", "tcpv6", "udp", "udp_l4")),
    "--tcp-ecn": ("tcp_ecn", "flag", None),
    "--input-csum": ("input_csum", "choice", ("auto", "partial", "complete")),
    "--vnet-hdr": ("vnet_hdr", "str", None),
    "--action": ("actions", "multiple", None),
    "--device": ("device", "str", None),
    "--mtu": ("mtu", "int", (68, 65535)),
    "--output-csum": ("output_csum", "choice", ("complete", "partial")),
    "--ip-id": ("ip_id", "choice", ("increment", "fixed", "fixed-outer", "fixed-both")),
    "--ipv6-frag-id": ("ipv6_frag_id", "str", None),
    "--kernel": ("kernel", "choice", ("6.1", "6.12", "mainline")),
    "--strict": ("strict", "flag", None),
    "--json": ("as_json", "flag", None),
    "-q": ("quiet", "flag", None),
    "--quiet": ("quiet", "flag", None),
    "--engine": ("engine", "choice", ("auto", "compiled", "numpy", "scalar")),
    "--udp-gso": ("udp_gso", "choice", ("off", "udp_l4", "udp")),
    "--tunnel-port": ("tunnel_ports", "multiple", None),
    "--tunnel-under-labels": ("tunnel_under_labels", "flag", None),
    "-F": ("output_format", "choice", ("pcap", "pcapng")),
    "--output-format": ("output_format", "choice", ("pcap", "pcapng")),
}
# segment's defaults, as its click declaration has them (and softgso.cli.runner.SegmentRequest's, which
# this module does not import before the head start)
SEGMENT_DEFAULTS: dict[str, Any] = {
    "gso_size": None, "gso_type": "auto", "tcp_ecn": False, "input_csum": "auto", "vnet_hdr": None, "actions": (),
    "device": "no-offload", "mtu": None, "output_csum": None, "ip_id": "increment", "ipv6_frag_id": "0",
    "kernel": "6.1", "strict": False, "as_json": False, "quiet": False, "engine": "auto", "jobs": 1,
    "dask_scheduler": None, "udp_gso": "off", "tunnel_ports": (), "tunnel_under_labels": False, "output_format": None,
}
# what the output of a re-segmented capture may need beyond IN's size, reserved up front: 64 KB
# super-packets at a 1500-byte MTU grow by 7-12% (headers and record headers per segment)
RESERVE_FACTOR = 1.25


def _value(kind: str, accepted: Any, text: str) -> tuple[bool, Any]:
    """(True, the value) when click would accept ``text`` for an option of this kind, else (False, None)."""
    if kind == "int":
        try:
            number = int(text)
        except ValueError:
            return False, None
        if accepted is not None and not accepted[0] <= number <= accepted[1]:
            return False, None
        return True, number
    if kind == "choice":
        return (True, text) if text in accepted else (False, None)
    return True, text


def parse_segment(args: list[str]) -> dict[str, Any] | None:
    """SegmentRequest's fields when ``args`` (after the program name) is a plain ``segment``
    command line, with IN and OUT as given, strings (their files are not looked at); None otherwise."""
    if not args or args[0] != "segment":
        return None
    params = dict(SEGMENT_DEFAULTS)
    repeated: dict[str, list[str]] = {"actions": [], "tunnel_ports": []}
    positional: list[str] = []
    words = iter(args[1:])
    for word in words:
        if not word.startswith("-") or word == "-":
            positional.append(word)
            continue
        name, equals, attached = word.partition("=") if word.startswith("--") else (word, "", "")
        found = SEGMENT_OPTIONS.get(name)
        if found is None:
            return None  # --jobs, --help, --, an unknown or clustered option
        parameter, kind, accepted = found
        if kind == "flag":
            if equals:
                return None
            params[parameter] = True
            continue
        text = attached if equals else next(words, None)
        if text is None:
            return None
        ok, value = _value(kind, accepted, text)
        if not ok:
            return None
        if kind == "multiple":
            repeated[parameter].append(value)
        else:
            params[parameter] = value
    if len(positional) != 2 or "-" in positional:
        return None
    params.update({parameter: tuple(values) for parameter, values in repeated.items()})
    # as given: main() gives them pathlib's normal form (as click's Paths have it) after the head start
    params["in_path"], params["out_path"] = positional
    return params


def path_text(text: str) -> str:
    """``str(pathlib.PurePosixPath(text))``, the text of the Path click makes of IN or OUT, without
    importing pathlib (milliseconds of start-up, with urllib.parse and ipaddress): empty and ``.``
    parts dropped, a leading ``//`` kept as two slashes (three or more are one), ``.`` for nothing."""
    stripped = text.lstrip("/")
    root = "" if stripped == text else "//" if len(text) - len(stripped) == 2 else "/"
    return root + "/".join(part for part in stripped.split("/") if part and part != ".") or "."


# coalesce's options that take a value; every other option of it is a flag (the tests hold both sets to
# the command's declaration): enough to find IN and OUT for its head start
COALESCE_VALUE_OPTIONS = frozenset({"--batch", "--gro-max-size", "--kernel", "--engine", "-F", "--output-format"})
COALESCE_FLAGS = frozenset({"--mpls", "--udp-gro-forwarding", "--json", "-q", "--quiet", "--strict"})


def coalesce_paths(args: list[str]) -> tuple[str, str] | None:
    """IN and OUT of a ``coalesce`` command line, for its head start only (click then parses the whole
    line as always); None when it is not one or anything is unclear (--help, an unknown option)."""
    if not args or args[0] != "coalesce":
        return None
    positional: list[str] = []
    words = iter(args[1:])
    for word in words:
        if not word.startswith("-") or word == "-":
            positional.append(word)
        elif word in COALESCE_VALUE_OPTIONS:
            next(words, None)
        elif word.partition("=")[0] not in COALESCE_VALUE_OPTIONS | COALESCE_FLAGS:
            return None
    if len(positional) != 2 or "-" in positional:
        return None
    return positional[0], positional[1]


def head_start(in_path: str, out_path: str, factor: float = RESERVE_FACTOR) -> bool:
    """Reserve OUT's space (IN's size times ``factor``) while the rest loads. True when the plain run may
    go ahead (IN a regular file, OUT not a directory), even if the reservation itself is declined
    (softgso.io.outfile.reserve makes nothing unless OUT is a regular file or a new name); False leaves
    it to click."""
    try:
        found = os.stat(in_path)
        directory = os.path.dirname(os.path.abspath(out_path))
        space = os.statvfs(directory)
    except (OSError, ValueError):
        return False
    if not stat.S_ISREG(found.st_mode) or found.st_size <= 0 or os.path.isdir(out_path):
        return False
    # never more than half the free space: the reservation must not be what fills the file system
    length = min(int(found.st_size * factor), space.f_bavail * space.f_frsize // 2)
    from ..io.outfile import reserve

    reserve(out_path, length)
    return True


def exit_now(status: int) -> NoReturn:
    """End the process with ``status`` without the interpreter's teardown, which frees every module
    and object one by one (10-15 ms after a plain run, for nothing). Exit handlers run and the
    standard streams are flushed first; if a stream cannot be flushed, the normal exit takes over
    (and reports it as Python does)."""
    import atexit

    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_handlers is None:
        raise SystemExit(status)
    run_handlers()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        raise SystemExit(status) from None
    os._exit(status)


def main() -> None:
    """``softgso``: a plain segment run straight away, anything else through the click command line."""
    params = parse_segment(sys.argv[1:])
    if params is not None and head_start(params["in_path"], params["out_path"]):
        from .runner import SegmentRequest, run_guarded, run_segment

        # the text click's Paths have: every message and the JSON summary name IN and OUT as click gives them
        params["in_path"], params["out_path"] = path_text(params["in_path"]), path_text(params["out_path"])
        request = SegmentRequest(**params)
        try:
            run_guarded(lambda: run_segment(request))
        except SystemExit as stop:
            if not isinstance(stop.code, int):
                raise
            exit_now(stop.code)
        exit_now(0)
    paths = coalesce_paths(sys.argv[1:])
    if paths is not None:
        # coalesce's OUT is at most IN's size (headers go, records merge): its space reserved while click and
        # the GRO load, the writer claims it (click still parses and runs the command)
        head_start(*paths, factor=1.0)
    from .commands import main as cli_main

    cli_main()


__all__ = ["COALESCE_FLAGS", "COALESCE_VALUE_OPTIONS", "RESERVE_FACTOR", "SEGMENT_DEFAULTS", "SEGMENT_OPTIONS",
           "coalesce_paths", "exit_now", "head_start", "main", "parse_segment", "path_text"]
