"""Tables that fit the terminal without cutting a word or a number.

Rich shrinks a table that is too wide by folding cells anywhere, which splits
``ACCELERATORS`` into ``ACCELERAT``/``ORS`` and prices into ``$ 19.4…``. Here
the layout is decided first, from the cells themselves:

1. every column gets its natural width (its longest cell or header);
2. if the table is too wide, prose columns (``Col.prose``: a cause, a list)
   give up width down to their longest *word*, so a wrapped cell breaks only
   at spaces;
3. if it is still too wide, low-value columns are dropped, in the fixed order
   of their ``Col.drop`` rank (lowest first), until step 2 fits;
4. with all of those gone, every column that may wrap (``Col.wrap``) does.

A cell of a column that may not wrap (numbers, prices, identifiers) is never
broken. If even the narrowest layout is wider than the terminal, the table is
printed at that width (the terminal wraps the lines; nothing is cut).

The width is the console's: the terminal's on a TTY, else ``COLUMNS`` when it
is set, else :data:`PIPED_WIDTH` (see :func:`console_width`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

#: The width of piped output when ``COLUMNS`` is not set: wide, so that CI logs
#: and files get whole rows; a table only takes the width its cells need.
PIPED_WIDTH = 240


@dataclass(frozen=True)
class Col:
    """One column. ``wrap``: a cell may break at its spaces (never inside a word).
    ``prose``: long text (a cause, a list) that wraps before any column is dropped.
    ``drop``: when the table is too wide, columns are dropped lowest rank first;
    None keeps the column whatever the width."""

    header: str
    justify: str = "left"
    wrap: bool = False
    drop: int | None = None
    prose: bool = False


def console_width(file: TextIO | None = None) -> int:
    """The width tables are fitted to: ``COLUMNS`` when set (a TTY or not),
    else the terminal's, else :data:`PIPED_WIDTH` for piped output."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    out = file or sys.stdout
    try:
        if out.isatty():
            return os.get_terminal_size(out.fileno()).columns
    except (AttributeError, OSError, ValueError):
        pass
    return PIPED_WIDTH


def console(file: TextIO | None = None, *, width: int | None = None, soft_wrap: bool = False):
    """A Rich console on ``file`` (stdout by default) at :func:`console_width`."""
    from rich.console import Console

    out = file or sys.stdout
    return Console(file=out, highlight=False, soft_wrap=soft_wrap, width=width or console_width(out))


#: Continuation lines of a wrapped line start here, so each attempt stays one block.
WRAP_INDENT = "    "


def wrap_line(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` cells, broken between words (a word
    longer than a line is the only thing ever split), continuations indented."""
    import textwrap

    if _cell_len(text) <= width or width <= len(WRAP_INDENT) + 8:
        return [text]
    return textwrap.wrap(text, width=width, subsequent_indent=WRAP_INDENT, break_on_hyphens=False,
                         break_long_words=True) or [text]


def _cell_len(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def _longest_word(text: str) -> int:
    return max((_cell_len(w) for line in text.splitlines() for w in line.split()), default=0)


def _longest_line(text: str) -> int:
    return max((_cell_len(line) for line in text.splitlines()), default=0)


#: Between two columns: one space of padding each side, collapsed (Rich's collapse_padding).
GAP = 2


@dataclass(frozen=True)
class Layout:
    """Which columns are shown (indexes into the table's columns) and how wide each is."""

    shown: tuple[int, ...]
    widths: tuple[int, ...]

    @property
    def width(self) -> int:
        return sum(self.widths) + GAP * max(0, len(self.widths) - 1)


def layout(cols: Sequence[Col], rows: Sequence[Sequence[str]], width: int) -> Layout:
    """The layout of ``cols`` for ``rows`` at ``width`` (see the module docstring).

    In order of preference: everything on one line per cell; prose columns
    (``Col.prose``) wrapped at their spaces; then low-value columns dropped
    (``Col.drop``, lowest first) until that fits; then, with all of those gone,
    every wrapping column wrapped. Pure: cells are plain text (no markup)."""
    natural, minimum = [], []
    for i, c in enumerate(cols):
        cells = [str(r[i]) for r in rows]
        nat = max([_longest_line(c.header)] + [_longest_line(x) for x in cells])
        # Headers may break at their spaces; cells only in wrapping columns.
        low = max([_longest_word(c.header)] + [(_longest_word(x) if c.wrap else _longest_line(x)) for x in cells])
        natural.append(nat)
        minimum.append(min(low, nat))

    def fit(shown: list[int], shrink: set[int]) -> Layout | None:
        """Natural widths, but the ``shrink`` columns may give up width down to their minimum."""
        fixed = sum(natural[i] for i in shown if i not in shrink)
        least = fixed + sum(minimum[i] for i in shown if i in shrink) + GAP * max(0, len(shown) - 1)
        if least > width:
            return None
        widths = {i: natural[i] if i not in shrink else minimum[i] for i in shown}
        spare = width - least
        wants = {i: natural[i] - minimum[i] for i in shown if i in shrink and natural[i] > minimum[i]}
        total = sum(wants.values())
        if total:
            for i, want in wants.items():
                widths[i] += min(want, spare * want // total)
            left = spare - sum(widths[i] - minimum[i] for i in wants)
            for i in sorted(wants, key=lambda j: -wants[j]):  # rounding leftovers, widest wish first
                extra = min(left, natural[i] - widths[i])
                widths[i] += extra
                left -= extra
        return Layout(tuple(shown), tuple(widths[i] for i in shown))

    shown = list(range(len(cols)))
    prose = {i for i, c in enumerate(cols) if c.prose and c.wrap}
    droppable = [i for _, i in sorted((c.drop, i) for i, c in enumerate(cols) if c.drop is not None)]
    for k in range(len(droppable) + 1):
        kept = [i for i in shown if i not in droppable[:k]]
        found = fit(kept, prose)
        if found is not None:
            return found
    kept = [i for i in shown if i not in droppable]
    found = fit(kept, {i for i in kept if cols[i].wrap})
    if found is not None:
        return found
    return Layout(tuple(kept), tuple(minimum[i] if cols[i].wrap else natural[i] for i in kept))


def build(cols: Sequence[Col], rows: Sequence[Sequence[str]], width: int, *, title: str | None = None,
          styles: Sequence[str | None] | None = None, markup: bool = False) -> tuple[Any, Layout]:
    """The Rich table for ``rows`` fitted to ``width``, and its layout.

    Cells are plain text unless ``markup``; ``styles`` gives a style per row."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    lay = layout(cols, [[_strip(x) if markup else str(x) for x in r] for r in rows], width)
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True, title=title,
              title_justify="left")
    for i, w in zip(lay.shown, lay.widths):
        c = cols[i]
        # The header may break at its spaces even where the cells may not.
        header = Text(c.header, no_wrap=False, justify=c.justify)  # type: ignore[arg-type]
        t.add_column(header, justify=c.justify, width=w, no_wrap=not c.wrap, overflow="fold")  # type: ignore[arg-type]
    for n, r in enumerate(rows):
        cells = [str(r[i]) if markup else escape(str(r[i])) for i in lay.shown]
        t.add_row(*cells, style=styles[n] if styles else None)
    return t, lay


def _strip(text: str) -> str:
    from rich.text import Text

    return Text.from_markup(str(text)).plain


def print_table(con: Any, cols: Sequence[Col], rows: Sequence[Sequence[str]], *, title: str | None = None,
                styles: Sequence[str | None] | None = None, markup: bool = False) -> Layout:
    """Print the fitted table on the Rich console ``con``; returns the layout used."""
    t, lay = build(cols, rows, con.width, title=title, styles=styles, markup=markup)
    if lay.width <= con.width:
        con.print(t)
    else:  # even the narrowest layout is wider: let the terminal wrap rather than cut
        from rich.console import Console

        Console(file=con.file, width=lay.width, highlight=False, force_terminal=con.is_terminal,
                color_system=con.color_system or None, no_color=con.no_color).print(t)
    return lay
