"""A small boxed table in the look of rich's default table, drawn without importing rich.

``softgso segment`` ends with a summary table. Importing rich to draw it costs about 35 ms, a
tenth of a 512 MB run's whole time, spent after the work is done; this draws the same table (rich's
heavy-head box, a centred title, bold headers and an italic title on a terminal) from plain
strings. The tests hold its output to rich's own for the same table.

A title wider than the table is printed whole on its own line (rich would wrap it, breaking an
output path in two); cells are never wrapped or cut, and text is printed as it is (rich would read
"[b]" as markup and ":a:" as an emoji code in an output path). A stream whose encoding has no box-drawing
characters gets rich's ASCII box.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs start-up milliseconds; mypy reads this as typing's
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import IO

BOLD, ITALIC, RESET = "\x1b[1m", "\x1b[3m", "\x1b[0m"
# a box as rich spells one, four characters (left, line, join, right) for each of: the top rule,
# the header row, the rule under it, a body row, the bottom rule
HEAVY_HEAD = ("┏━┳┓", "┃ ┃┃", "┡━╇┩", "│ ││", "└─┴┘")
ASCII = ("+--+", "| ||", "|-+|", "| ||", "+--+")


def _cell(text: str, width: int, justify: str) -> str:
    return text.rjust(width) if justify == "right" else text.ljust(width)


def render_table(title: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]],
                 styled: bool = False, box: Sequence[str] = HEAVY_HEAD) -> str:
    """The table as text, one line per row with a final newline. ``columns`` are (header, justify)
    pairs, justify "left" or "right"; ``styled`` adds the terminal's italic title and bold headers."""
    top, head, head_rule, body, bottom = box
    widths = [max([len(header)] + [len(row[i]) for row in rows]) for i, (header, _) in enumerate(columns)]
    table_width = sum(widths) + 3 * len(widths) + 1

    def rule(glyphs: str) -> str:
        return glyphs[0] + glyphs[2].join(glyphs[1] * (w + 2) for w in widths) + glyphs[3]

    def row_line(cells: Sequence[str], glyphs: str, bold: bool) -> str:
        parts = []
        for (_, justify), text, width in zip(columns, cells, widths, strict=True):
            padded = f" {_cell(text, width, justify)} "
            parts.append(f"{BOLD}{padded}{RESET}" if bold else padded)
        return glyphs[0] + glyphs[2].join(parts) + glyphs[3]

    if len(title) <= table_width:
        left = (table_width - len(title)) // 2
        title_line = " " * left + title + " " * (table_width - len(title) - left)
    else:
        title_line = title
    lines = [f"{ITALIC}{title_line}{RESET}" if styled else title_line,
             rule(top),
             row_line([header for header, _ in columns], head, styled),
             rule(head_rule)]
    lines += [row_line(row, body, False) for row in rows]
    lines.append(rule(bottom))
    return "\n".join(lines) + "\n"


def wants_style(stream: IO[str]) -> bool:
    """Styles only for a terminal, and not where NO_COLOR (no-color.org) is set or TERM is dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def print_table(title: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]],
                stream: IO[str]) -> None:
    """Write the table to ``stream``, styled when it is a terminal (see :func:`wants_style`), in
    ASCII where the stream's encoding has no box-drawing characters."""
    try:
        "".join(HEAVY_HEAD).encode(getattr(stream, "encoding", None) or "utf-8")
        box = HEAVY_HEAD
    except (UnicodeEncodeError, LookupError):
        box = ASCII
    stream.write(render_table(title, columns, rows, styled=wants_style(stream), box=box))
    stream.flush()


__all__ = ["ASCII", "HEAVY_HEAD", "print_table", "render_table", "wants_style"]
