"""``softgso inspect --plot``: the frame-size distribution before and after segmentation (matplotlib).

Every figure softgso writes (this one, ``bench --plot``'s) goes through :func:`save_figure`, which
writes it by the rule of every output (softgso.io.outfile.output_target): atomically onto a regular
file or a new name, straight through onto a device, a FIFO or a socket, never over a directory or
a block device.
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..io.outfile import names_stdout, output_target, write_file

MATPLOTLIB_MISSING = "--plot needs matplotlib: pip install 'softgso[plot]'"


def _image_format(path: str) -> str:
    """The format savefig writes ``path`` in: its suffix's, PNG for a name without one."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise UsageError(MATPLOTLIB_MISSING) from None
    suffix = os.path.splitext(os.path.basename(path))[1][1:].lower()
    if not suffix:
        return "png"
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix not in formats:
        raise UsageError(f"cannot write {path}: .{suffix} is not an image format matplotlib writes "
                         f"({', '.join(sorted(formats))})")
    return suffix


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (figures to files, no display); without matplotlib a
    UsageError that names the extra."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError(MATPLOTLIB_MISSING) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_plot_path(path: str | os.PathLike[str]) -> None:
    """Refuse a plot's path that no figure could be written to (a directory, a block device, ``-``, an
    unknown format, no matplotlib) before the work that draws the figure."""
    text = os.fspath(path)
    if text == "-":
        raise UsageError("a plot needs a file name: standard output carries the report")
    _image_format(text)
    target = output_target(text)
    if target.shares_stdout() or names_stdout(text):  # /dev/stdout: the terminal, pipe or file stdout is
        raise UsageError(f"cannot write a plot to {text}: standard output carries the report; give a file name")
    if target.atomic and not os.path.isdir(os.path.dirname(target.location)):
        raise target.error(FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT)))


def save_figure(figure: Any, path: str | os.PathLike[str], **options: Any) -> str | None:
    """``figure.savefig`` onto ``path`` by the rule of every output (softgso.io.outfile.write_file), in
    the format its suffix names (PNG without one); the summary's note when it was written straight
    through (None when atomically)."""
    text = os.fspath(path)
    check_plot_path(text)
    image_format = _image_format(text)
    target = write_file(text, lambda handle: figure.savefig(handle, format=image_format, **options))
    return target.note()


def plot_size_distribution(sizes_in: Counter[int], sizes_out: Counter[int], mtu: int, path: Path,
                           title: str = "") -> str | None:
    """Write a PNG with two histograms (frames in the capture, frames segment would write) to ``path``;
    the note of :func:`save_figure` (None when written atomically)."""
    plt = pyplot()
    import matplotlib.ticker
    import numpy as np

    largest = max([*sizes_in, *sizes_out, mtu + 14, 128])
    bins = np.unique(np.geomspace(40, largest * 1.05, 60).astype(int))
    figure, axes = plt.subplots(2, 1, sharex=True, figsize=(9, 6), constrained_layout=True)
    panels = (("in the capture", sizes_in, "tab:red"), ("after softgso segment", sizes_out, "tab:blue"))
    for axis, (label, sizes, colour) in zip(axes, panels, strict=True):
        values = np.fromiter(sizes.keys(), dtype=float, count=len(sizes))
        weights = np.fromiter(sizes.values(), dtype=float, count=len(sizes))
        total = int(weights.sum())
        axis.hist(values, bins=bins, weights=weights, color=colour, edgecolor="black", linewidth=0.4)
        axis.axvline(mtu + 14, color="black", linestyle="--", linewidth=1)
        axis.text(mtu + 14, 1.0, f" MTU {mtu} + Ethernet header", transform=axis.get_xaxis_transform(),
                  va="top", ha="left", fontsize=8)
        over = sum(n for size, n in sizes.items() if size > mtu + 14)
        axis.set_title(f"{label}: {total:,} frames, {over:,} longer than MTU + 14", fontsize=10)
        axis.set_ylabel("frames")
        axis.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axis.set_xscale("log")
        axis.grid(True, which="major", alpha=0.3)
    axes[-1].set_xlabel("frame length (bytes, log scale)")
    axes[-1].xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{int(x):,}"))
    if title:
        figure.suptitle(title, fontsize=11)
    try:
        return save_figure(figure, path, dpi=110)
    finally:
        plt.close(figure)
