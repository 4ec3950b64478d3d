"""DeepSeek-Coder's file filters (inherited from StarCoder), each a named rule with its threshold.

| rule                      | drop reason       | default                                |
|---------------------------|-------------------|----------------------------------------|
| average line length       | avg_line_length   | drop if > 100                          |
| maximum line length       | max_line_length   | drop if > 1000                         |
| alphabetic characters     | low_alpha         | drop if < 25% of characters            |
| `<?xml version=` early    | xml               | drop if in the first 100 chars, not XSLT |
| HTML visible text         | html_visible_text | keep if >= 20% of the file and >= 100 chars |
| JSON / YAML size          | json_yaml_size    | keep only 50..5000 characters          |

`check` tries them cheapest first (size and XML declaration, then line and letter counts, then HTML),
so a file that several rules drop is counted under the cheapest.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from resiliparse.extract.html2text import extract_plain_text

from pipeline.fields import Fraction


class Thresholds(BaseModel):
    """The rules' thresholds (the paper's defaults): the keys of the `github_filter` stage kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_avg_line_length: float = Field(default=100.0, gt=0)
    max_line_length: int = Field(default=1000, ge=1)
    min_alpha_fraction: Fraction = 0.25
    xml_prefix_chars: int = Field(default=100, ge=0)
    html_min_visible_fraction: Fraction = 0.20
    html_min_visible_chars: int = Field(default=100, ge=0)
    json_yaml_min_chars: int = Field(default=50, ge=0)
    json_yaml_max_chars: int = Field(default=5000, ge=0)


DEFAULT = Thresholds()


_ASCII_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123))
_ASCII = bytes(range(128))
_NUMPY_FROM = 4096  # below this many bytes, `bytes` methods beat numpy's per-call cost


def utf8(text: str) -> bytes:
    """The text's UTF-8 bytes, which the counts below read at C speed: an ASCII character is itself
    there, and a line break or ASCII letter never occurs inside another character's bytes."""
    return text.encode("utf-8", "surrogatepass")


def _newline_only(text: str, raw: bytes) -> str | None:
    """The text with "\n" as its only line break ("\r\n" folded into it), or None when it holds another
    break of `str.splitlines()`."""
    if (b"\x0b" in raw or b"\x0c" in raw or b"\x1c" in raw or b"\x1d" in raw or b"\x1e" in raw
            or len(raw) != len(text) and ("\x85" in text or "\u2028" in text or "\u2029" in text)):
        return None
    if b"\r" not in raw:
        return text
    return text.replace("\r\n", "\n") if raw.count(b"\r") == raw.count(b"\r\n") else None


def _has_line_over(text: str, limit: int) -> bool:
    """Whether a "\n"-separated line is longer than `limit`: one `rfind` per window of `limit` characters."""
    start, n = 0, len(text)
    while n - start > limit:
        cut = text.rfind("\n", start, start + limit + 1)
        if cut < 0:
            return True
        start = cut + 1
    return False


def line_stats(text: str, limit: int, raw: bytes | None = None) -> tuple[float, bool]:
    """(average line length, whether a line is longer than `limit`) over `str.splitlines()`, breaks
    excluded. `raw` is `utf8(text)` where the caller has it."""
    raw = utf8(text) if raw is None else raw
    flat = _newline_only(text, raw)
    if flat is None:
        lengths = list(map(len, text.splitlines())) or [0]
        return sum(lengths) / len(lengths), max(lengths) > limit
    too_long = None
    if flat is text and len(raw) >= _NUMPY_FROM:
        is_break = np.frombuffer(raw, np.uint8) == 10
        breaks = int(np.count_nonzero(is_break))
        # a line over `limit` characters (so bytes) covers a whole aligned block of this many bytes: none
        # can where every block has a break
        block = (limit + 1) // 2
        whole = len(raw) // block * block if block else 0
        if whole and is_break[:whole].reshape(-1, block).any(axis=1).all():
            too_long = False
    else:
        breaks = raw.count(b"\n")  # folding "\r\n" keeps every "\n"
    lines = breaks + (flat[-1:] not in ("\n", ""))  # text after the last break is one more line
    if too_long is None:
        too_long = _has_line_over(flat, limit)
    return ((len(flat) - breaks) / lines if lines else 0.0), too_long


def _letters(chars: str) -> int:
    """How many of `chars` are letters, asking `str.isalpha` once per distinct character."""
    if len(chars) <= 256:
        return sum(chars.count(c) for c in set(chars) if c.isalpha())
    codes, counts = np.unique(np.frombuffer(chars.encode("utf-32-le", "surrogatepass"), np.uint32), return_counts=True)
    return sum(n for c, n in zip(codes.tolist(), counts.tolist()) if chr(c).isalpha())


def alpha_fraction(text: str, raw: bytes | None = None) -> float:
    """Share of letters (`str.isalpha`): ASCII letters counted in C, the other characters decoded from
    their bytes alone. `raw` is `utf8(text)` where the caller has it."""
    if not text:
        return 0.0
    raw = utf8(text) if raw is None else raw
    if len(raw) >= _NUMPY_FROM:
        codes = np.frombuffer(raw, np.uint8)
        letters = int(np.count_nonzero((codes | 32) - np.uint8(97) < 26))  # A-Z, a-z
    else:
        letters = len(raw) - len(raw.translate(None, _ASCII_LETTERS))
    if len(raw) != len(text):
        letters += _letters(raw.translate(None, _ASCII).decode("utf-8", "surrogatepass"))
    return letters / len(text)


def visible_text(html: str) -> str:
    return extract_plain_text(html, main_content=False)


def check(text: str, lang: str | None, t: Thresholds = DEFAULT) -> str | None:
    """The first rule, cheapest first (see above), that drops the file, or None to keep it. `lang` is the
    DeepSeek/Linguist name."""
    lang = lang.lower() if lang else ""
    if lang in ("json", "yaml") and not t.json_yaml_min_chars <= len(text) <= t.json_yaml_max_chars:
        return "json_yaml_size"
    if "<?xml version=" in text[: t.xml_prefix_chars] and lang != "xslt":
        return "xml"
    raw = utf8(text)
    avg, too_long = line_stats(text, t.max_line_length, raw)
    if avg > t.max_avg_line_length:
        return "avg_line_length"
    if too_long:
        return "max_line_length"
    if alpha_fraction(text, raw) < t.min_alpha_fraction:
        return "low_alpha"
    if lang == "html":
        vis = len(visible_text(text))
        if vis < t.html_min_visible_chars or vis < t.html_min_visible_fraction * len(text):
            return "html_visible_text"
    return None
