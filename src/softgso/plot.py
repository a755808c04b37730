"""``softgso inspect --plot``: the frame-size distribution before and after segmentation (matplotlib)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .errors import UsageError


def plot_size_distribution(sizes_in: Counter[int], sizes_out: Counter[int], mtu: int, path: Path,
                           title: str = "") -> None:
    """Write a PNG with two histograms (frames in the capture, frames segment would write) to ``path``."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'softgso[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
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
    figure.savefig(path, dpi=110)
    plt.close(figure)
