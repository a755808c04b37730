"""``softgso inspect --jobs N``: a capture's parts inspected in parallel, their counts added up in order.

The file is cut as ``segment --jobs`` cuts it (softgso.bulk.stream.split_points: classic pcap of a
link type the bulk stream takes, or a pcapng's first section), each cut after a multiple of 64
records: coalesce's preview ends a poll (and flushes GRO) every 64 records (NAPI_POLL_WEIGHT), so
no poll spans two parts. This process inspects the first part while forked processes inspect the
others, each through the bulk reader (softgso.cli.inspect_batch.BatchReader) up to its end; the
parts' inspectors are merged in order (CaptureInspector.merge: counters add up, their keys in the
order one pass inserts them, the first reports kept) and their previews added up. A part the bulk
reader cannot take to its end (a record the general reader must read) makes the whole file one
job's. The progress bar adds up the bytes each part has read.
"""

from __future__ import annotations

import copy
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..job import SegmentOptions
    from .inspect import CaptureInspector

PartResult = tuple["CaptureInspector", dict[str, Any], bool]
# the preview's counts that add up across parts (the rest: its settings, the same in every part)
PREVIEW_SUMS = ("frames_in", "packets_out", "coalesced", "frames_merged", "polls")
PREVIEW_COUNTERS = ("flushes", "passed")


def inspect_part(in_path: str, options: SegmentOptions, kernel: str, top: int, span: tuple[int, int | None, int],
                 number: int = 0, progress: Callable[[int], None] | None = None) -> PartResult:
    """One part (the ``number``-th, ``span``: from offset, to offset or None, first record index) as
    ``inspect`` reads a whole file with the bulk reader: (its inspector, without the plans and shapes
    it learnt; coalesce's preview of it; whether the bulk reader took it to its end). Its bytes read so
    far go to softgso.bulk.stream.part_progress[number] when there is one, then to ``progress()``."""
    from ..bulk import compiled_primitive, stream
    from ..gro import CoalescePreview, GroDevice
    from .inspect import CaptureInspector, SegmentPlanner
    from .inspect_batch import BatchReader, inspect_bulk_reader

    inspector = CaptureInspector(options, top=top)
    if compiled_primitive.available():  # as inspect --engine auto sets it up
        inspector.planner = SegmentPlanner(options)
    preview = CoalescePreview(GroDevice(kernel=kernel), counting=True)
    frames, ports = inspect_bulk_reader(Path(in_path), options, inspector, span)
    if frames is None:
        return inspector, {}, False
    shared = stream.part_progress

    def read_so_far(position: int) -> None:
        if shared is not None and number < len(shared):
            shared[number] = position - span[0]
        if progress is not None:
            progress(position)

    batches = BatchReader(inspector, preview, frames, ports)
    try:
        batches.run(read_so_far)
        finished = batches.frames.walked_to_end
    finally:
        batches.frames.close()
    inspector.planner, inspector.shapes = None, {}  # (compiled plans: not for another process)
    return inspector, preview.as_dict(), finished


def merge_previews(previews: list[dict[str, Any]]) -> dict[str, Any]:
    """Coalesce's previews of consecutive parts (each ending on a poll's end) as one of the whole."""
    merged = dict(previews[0])
    counters = {name: Counter(merged[name]) for name in PREVIEW_COUNTERS}
    for preview in previews[1:]:
        for name in PREVIEW_SUMS:
            merged[name] += preview[name]
        for name, counter in counters.items():
            counter.update(preview[name])
    for name, counter in counters.items():
        merged[name] = dict(sorted(counter.items()))
    return merged


def inspect_in_parts(in_path: Path, options: SegmentOptions, kernel: str, top: int, jobs: int,
                     quiet: bool) -> tuple[CaptureInspector, dict[str, Any]] | None:
    """(the merged inspector, coalesce's preview) of ``jobs`` parts of ``in_path``; None when one job
    must inspect it (a file the cut does not take, too few records for two parts, a part the bulk
    reader cannot take to its end)."""
    from ..bulk.stream import part_spans, pcap_header, pcapng_header
    from ..gro.dev import NAPI_POLL_WEIGHT
    from .runner import run_in_parts

    found = pcap_header(in_path)
    blocks = pcapng_header(in_path) if found is None else None
    spans = part_spans(in_path, jobs, found[0] if found is not None else None, blocks, align=NAPI_POLL_WEIGHT)
    if spans is None or len(spans) < 2:
        return None
    # the pool's feeding thread pickles ``options`` while this process inspects its part: a copy here
    own = copy.deepcopy(options)
    results = run_in_parts(len(spans), lambda number: (
        inspect_part, str(in_path), options, kernel, top, spans[number], number),
        lambda tell: inspect_part(str(in_path), own, kernel, top, spans[0], 0, tell), quiet,
        os.path.getsize(in_path), "inspect")
    if not all(finished for *_, finished in results):
        return None
    inspector = results[0][0]
    for other, *_ in results[1:]:
        inspector.merge(other)
    return inspector, merge_previews([preview for _, preview, _ in results])


__all__ = ["inspect_in_parts", "inspect_part", "merge_previews"]
