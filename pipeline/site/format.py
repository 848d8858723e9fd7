"""How values reach the site's Markdown: numbers formatted in Python, and every other value escaped.

The templates write Markdown that Python-Markdown turns into HTML, so a value from results/ (which anyone can
edit in a pull request) could smuggle in HTML (``<img onerror=...>``), a link (``[x](javascript:...)``), an
attribute list (``{ onclick=... }``) or a table break (``|``). The Jinja environment therefore autoescapes,
and its ``finalize`` hook escapes more than HTML: every character Markdown or its extensions give meaning to
inside a line becomes a numeric character reference, which Markdown passes through and the browser shows
as the character itself. Newlines become spaces, so a value never starts a block of its own.

What is trusted is marked so explicitly (``Markup``): numbers formatted here, chart specs (pipeline.site.build
``embed``, serialised by ``script_json`` so that no string can end or comment out their script), and code
blocks, whose content Markdown itself escapes (``code_block``).
"""

import json
import math

import numpy as np
from markupsafe import Markup, escape

# HTML's specials (and so raw HTML and autolinks) are escaped by markupsafe; these are Markdown's: links and
# images, code spans, table cells, attribute lists and backslash escapes. Emphasis markers (* and _) are left
# as they are: harmless, and _ is part of model ids, which appear in link targets.
_MARKDOWN_SPECIALS = {ord(c): f"&#{ord(c)};" for c in "[]()`|{}\\"}


def text(value) -> Markup:
    """Any value as inert text in Markdown (and HTML)."""
    if isinstance(value, Markup):
        return value
    flat = " ".join(str(value).splitlines())
    return Markup(str(escape(flat)).translate(_MARKDOWN_SPECIALS))


def finalize(value):
    """Jinja's finalize hook: strings become inert text, everything else is left to autoescape."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return text(value)
    return value


# Inside <script>, HTML ends or comments out the element at "</script", "<!--" and friends whatever JSON thinks;
# JSON's own \u escapes of these characters mean the same value to JSON.parse and nothing to the HTML parser.
_SCRIPT_SAFE = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def script_json(value) -> str:
    """``value`` as JSON that can sit inside a <script> element whatever its strings hold: no ``<``, ``>`` or
    ``&`` (so no string can end the element or open a comment) and no line separators (which older JavaScript
    parsers take for line ends)."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False, ensure_ascii=False)
    return text.translate(_SCRIPT_SAFE)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value, decimals: int = 4) -> Markup:
    """A table cell: fixed decimals, empty for a missing value (so numeric sorting still works)."""
    if _missing(value):
        return Markup("")
    if isinstance(value, (int, np.integer)) and decimals == 0:
        return Markup(str(int(value)))
    return Markup(f"{float(value):.{decimals}f}")


def signed(value, decimals: int = 4) -> Markup:
    """A difference, with its sign always shown."""
    if _missing(value):
        return Markup("")
    return Markup(f"{float(value):+.{decimals}f}")


def plural(count, noun: str, many: str | None = None) -> Markup:
    """A count with its noun, as text: "1 pair", "2 pairs" (``many``: an irregular plural)."""
    count = int(count)
    return Markup(f"{count} ") + text(noun if count == 1 else (many or f"{noun}s"))


def interval(low, high, decimals: int = 4) -> Markup:
    if _missing(low) or _missing(high):
        return Markup("")
    return Markup(f"[{float(low):.{decimals}f}, {float(high):.{decimals}f}]")


def code_block(content: str, language: str = "") -> Markup:
    """A fenced code block: Markdown escapes what is inside, and the fence is longer than any run of
    backticks in the content, so nothing inside can close it."""
    content = str(content)
    longest = max((len(run) for run in content.split("\n") for run in _backtick_runs(run)), default=0)
    fence = "`" * max(3, longest + 1)
    return Markup(f"{fence}{language}\n{content}\n{fence}")


def _backtick_runs(line: str) -> list[str]:
    runs, current = [], ""
    for character in line:
        if character == "`":
            current += "`"
        elif current:
            runs.append(current)
            current = ""
    return [*runs, current] if current else runs
