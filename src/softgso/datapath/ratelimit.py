"""Rate-limited warnings, bounded the way the kernel bounds its own (lib/ratelimit.c, net_ratelimit()).

At most ``burst`` messages get through per ``interval`` seconds; the others are counted by key, and
one line reports them once the interval is over: "suppressed 4990 similar messages in the last
1.0 s (runt frame from the TAP: 2000, ...)". A flood of bad frames thus costs at most ``burst`` + 1
lines per interval, whatever its rate, and no count is lost: ``flush()`` reports the rest.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

# keys named in a "suppressed" line; the rest are summed into "... N more"
SUMMARY_KEYS = 5


class RateLimitedLog:
    """Call it with a message (and a key that groups similar messages); ``emit`` gets what passes."""

    def __init__(self, emit: Callable[[str], object], *, interval: float = 1.0, burst: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.emit = emit
        self.interval = interval
        self.burst = burst
        self.clock = clock
        self.lines = 0  # lines emitted, "suppressed" lines included
        self.suppressed = 0  # messages held back, over the whole life
        self._begin: float | None = None  # start of the current interval
        self._printed = 0
        self._missed: Counter[str] = Counter()

    def __call__(self, message: str, key: str | None = None) -> bool:
        """Emit ``message`` unless this interval's burst is used up; True when it was emitted."""
        now = self.clock()
        if self._begin is None or now - self._begin >= self.interval:
            self._report(now)
            self._begin = now
            self._printed = 0
        if self._printed < self.burst:
            self._printed += 1
            self._line(message)
            return True
        self._missed[message if key is None else key] += 1
        self.suppressed += 1
        return False

    def tick(self) -> None:
        """Report the suppressed messages of an interval that is over (call it now and then from a loop)."""
        if self._missed and self._begin is not None and self.clock() - self._begin >= self.interval:
            self._report(self.clock())

    def flush(self) -> None:
        """Report whatever is suppressed so far (at the end of a run)."""
        if self._missed:
            self._report(self.clock())

    def _report(self, now: float) -> None:
        if not self._missed:
            return
        total = sum(self._missed.values())
        common = self._missed.most_common(SUMMARY_KEYS)
        parts = [f"{key}: {count}" for key, count in common]
        if len(self._missed) > SUMMARY_KEYS:
            parts.append(f"... {total - sum(count for _, count in common)} more")
        since = now - self._begin if self._begin is not None else 0.0
        plural = "" if total == 1 else "s"
        self._line(f"suppressed {total} similar message{plural} in the last {since:.1f} s ({', '.join(parts)})")
        self._missed.clear()

    def _line(self, text: str) -> None:
        self.lines += 1
        self.emit(text)
