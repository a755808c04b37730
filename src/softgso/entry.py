"""The ``softgso`` command's entry point: a head start for ``segment``, then the click CLI.

Interpreter start-up and imports take about 0.1 s, the time ``cp`` needs for a few hundred MB.
When the command line is plainly ``softgso segment [OPTIONS] IN OUT`` with IN a regular file,
OUT's temporary file is made first and its space reserved in the background while click and the
engine load (softgso.outfile). This reading of the arguments is only a guess at what click will
parse: anything it does not recognise (another command, --jobs, --help, ``-``, an unknown option)
means no head start, and a guess click disagrees with costs an unused temporary file, removed at
exit. The tests hold this table to the ``segment`` command's own options.
"""

from __future__ import annotations

import os
import stat
import sys

# segment's options that take a value, and its flags; any other option: no head start
SEGMENT_VALUE_OPTIONS = frozenset({
    "--gso-size", "--gso-type", "--input-csum", "--vnet-hdr", "--action", "--device", "--mtu", "--output-csum",
    "--ip-id", "--ipv6-frag-id", "--kernel", "--engine",
})
SEGMENT_FLAGS = frozenset({"--tcp-ecn", "--strict", "--json", "-q", "--quiet"})
# what the output of a re-segmented capture may need beyond IN's size, reserved up front: 64 KB
# super-packets at a 1500-byte MTU grow by 7-12% (headers and record headers per segment)
RESERVE_FACTOR = 1.25


def segment_paths(args: list[str]) -> tuple[str, str] | None:
    """(IN, OUT) when ``args`` (the command line after the program name) is a plain ``segment`` run."""
    if not args or args[0] != "segment":
        return None
    positional: list[str] = []
    words = iter(args[1:])
    for word in words:
        if word.startswith("-") and word != "-":
            name = word.split("=", 1)[0] if word.startswith("--") else word
            if name in SEGMENT_FLAGS and name == word:
                continue
            if name in SEGMENT_VALUE_OPTIONS:
                if name == word and next(words, None) is None:
                    return None
                continue
            return None  # --jobs, --help, --, an unknown or clustered option
        positional.append(word)
    if len(positional) != 2 or "-" in positional:
        return None
    return positional[0], positional[1]


def head_start(args: list[str]) -> None:
    """Reserve OUT's space while the rest loads, when ``args`` is a plain ``segment`` of a regular file."""
    paths = segment_paths(args)
    if paths is None:
        return
    in_path, out_path = paths
    try:
        found = os.stat(in_path)
        size = found.st_size if stat.S_ISREG(found.st_mode) else -1
        directory = os.path.dirname(os.path.abspath(out_path))
        space = os.statvfs(directory)
    except (OSError, ValueError):
        return
    if size <= 0 or os.path.isdir(out_path):
        return
    # never more than half the free space: the reservation must not be what fills the file system
    length = min(int(size * RESERVE_FACTOR), space.f_bavail * space.f_frsize // 2)
    from .outfile import reserve

    reserve(out_path, length)


def main() -> None:
    """``softgso``: the head start (if any), then the click command line."""
    head_start(sys.argv[1:])
    from .cli import main as cli_main

    cli_main()


__all__ = ["RESERVE_FACTOR", "SEGMENT_FLAGS", "SEGMENT_VALUE_OPTIONS", "head_start", "main", "segment_paths"]
