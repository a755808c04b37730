"""Ones'-complement arithmetic, exactly as the kernel's csum helpers compute it.

Sums are kept as integers in [0, 0xFFFF]; the kernel's 32-bit intermediate forms (``__wsum``)
fold to the same 16-bit value, and every place where the kernel can tell 0 from 0xFFFF is
handled by the helper that mirrors it. A sum of bytes uses big-endian 16-bit words: the kernel's
host-order sums are the byte-swap of these, which folds to the same wire bytes.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs start-up milliseconds; mypy reads this name as typing's
if TYPE_CHECKING:
    from typing import Any


def ones_sum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """Ones'-complement sum of ``data`` as big-endian 16-bit words (odd length padded with zero).

    Uses 65536 == 1 (mod 0xFFFF): the big number formed by the bytes is congruent to the sum of its
    16-bit words. The result is 0 only when every word and ``initial`` are zero, as in the kernel.
    A long buffer is summed by softgso._checksum where it is built (the same sum: a big number's
    remainder costs a quarter of a millisecond on 64 KB).
    """
    if _COMPILED is not None and len(data) >= _COMPILED_MIN:
        # chunk_sums: the words' sum folded to [1, 0xFFFF], 0 only for all-zero bytes
        value = _COMPILED.chunk_sums(data, len(data))[0] + initial
        return 0 if value == 0 else (value % 0xFFFF) or 0xFFFF
    if len(data) & 1:
        data = bytes(data) + b"\0"
    value = int.from_bytes(data, "big") + initial
    if value == 0:
        return 0
    folded = value % 0xFFFF
    return folded or 0xFFFF


# from this length on, ones_sum asks softgso._checksum (below, the call costs more than the big number)
_COMPILED_MIN = 512
# below this many chunks, numpy's fixed cost (~20 us) exceeds the per-chunk sums it saves (~4 us each)
_CHUNK_SUMS_NUMPY_MIN = 4


def ones_sums_of_chunks(data: bytes | bytearray | memoryview, size: int) -> list[int]:
    """:func:`ones_sum` of each ``size``-byte chunk of ``data`` (the last may be shorter), in one pass.

    With an even ``size`` every chunk starts on a word boundary of ``data``, so one array of
    big-endian words summed per chunk (np.add.reduceat) gives each chunk's sum; an odd ``size``
    starts every other chunk mid-word (its sum would be byte-swapped), so those are summed one by one.
    """
    length = len(data)
    if _COMPILED is not None and size > 0:
        result: list[int] = _COMPILED.chunk_sums(data, size)
        return result
    if size & 1 or length < _CHUNK_SUMS_NUMPY_MIN * size:
        return [ones_sum(data[start : start + size]) for start in range(0, length, size)]
    import numpy as np

    # a zero pad byte makes the last chunk what ones_sum pads an odd-length chunk to
    padded = bytes(data) + b"\0" if length & 1 else data
    words = np.frombuffer(padded, dtype=">u2").astype(np.uint64)
    sums = np.add.reduceat(words, np.arange(0, words.size, size // 2))
    folded = sums % 0xFFFF
    # as ones_sum: 0 only for an all-zero chunk, 0xFFFF for any other multiple of 0xFFFF
    folded[(folded == 0) & (sums != 0)] = 0xFFFF
    sums_list: list[int] = folded.tolist()
    return sums_list


def _compiled_sums() -> Any:
    """softgso._checksum (chunk_sums: the same integers without numpy), or None where it is not built
    or SOFTGSO_NO_C is set (as softgso.bulk.native loads the fast path's extensions)."""
    if os.environ.get("SOFTGSO_NO_C"):
        return None
    try:
        from . import _checksum
    except ImportError:
        return None
    return _checksum


_COMPILED: Any = _compiled_sums()


def csum_add(a: int, b: int) -> int:
    """Ones'-complement addition of two 16-bit sums (csum_add followed by a fold)."""
    value = a + b
    if value == 0:
        return 0
    return (value % 0xFFFF) or 0xFFFF


def csum16_add(a: int, b: int) -> int:
    """The kernel's csum16_add on 16-bit values: end-around carry, 0 only for 0 + 0."""
    value = (a + b) & 0xFFFF
    return (value + (1 if value < b else 0)) & 0xFFFF


def csum16_sub(a: int, b: int) -> int:
    """The kernel's csum16_sub: add the complement."""
    return csum16_add(a, ~b & 0xFFFF)


def csum_fold(total: int) -> int:
    """The kernel's csum_fold: the complement of the folded sum (0 when the sum is 0xFFFF)."""
    return ~total & 0xFFFF


def pseudo_header_sum(src: bytes, dst: bytes, proto: int, l4_len: int) -> int:
    """Sum of the IPv4/IPv6 pseudo-header (addresses, protocol, L4 length), not complemented."""
    return ones_sum(bytes(src) + bytes(dst), proto + (l4_len >> 16) + (l4_len & 0xFFFF))


def ipv4_header_checksum(header: bytes | bytearray | memoryview) -> int:
    """The IPv4 header checksum to store, computed with the checksum field taken as zero."""
    head = bytearray(header)
    head[10:12] = b"\0\0"
    return csum_fold(ones_sum(head))
