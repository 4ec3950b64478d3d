"""DeepSeek-Coder's file filters (inherited from StarCoder), each a named rule with its threshold.

| rule                      | drop reason       | default                                |
|---------------------------|-------------------|----------------------------------------|
| average line length       | avg_line_length   | drop if > 100                          |
| maximum line length       | max_line_length   | drop if > 1000                         |
| alphabetic characters     | low_alpha         | drop if < 25% of characters            |
| `<?xml version=` early    | xml               | drop if in the first 100 chars, not XSLT |
| HTML visible text         | html_visible_text | keep if >= 20% of the file and >= 100 chars |
| JSON / YAML size          | json_yaml_size    | keep only 50..5000 characters          |
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from resiliparse.extract.html2text import extract_plain_text


@dataclass(frozen=True)
class Thresholds:
    max_avg_line_length: float = 100.0
    max_line_length: int = 1000
    min_alpha_fraction: float = 0.25
    xml_prefix_chars: int = 100
    html_min_visible_fraction: float = 0.20
    html_min_visible_chars: int = 100
    json_yaml_min_chars: int = 50
    json_yaml_max_chars: int = 5000


_ASCII_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123))
_NUMPY_FROM = 4096  # below this many ASCII characters, `bytes`/`str` methods beat numpy's per-call cost


def _codes(text: str) -> np.ndarray | None:
    """The characters as integers, one per character (bytes for ASCII, else UTF-32), for C-speed
    counting; None for short ASCII text, which `str` and `bytes` methods count faster."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), np.uint8) if len(text) >= _NUMPY_FROM else None
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)


def _has_other_breaks(text: str) -> bool:
    """Whether the text holds a line break of `str.splitlines()` other than "\n" and "\r"."""
    return ("\x0b" in text or "\x0c" in text or "\x1c" in text or "\x1d" in text or "\x1e" in text
            or not text.isascii() and ("\x85" in text or "\u2028" in text or "\u2029" in text))


def _newline_only(text: str) -> str | None:
    """The text with "\n" as its only line break ("\r\n" folded into it), or None when it has others."""
    if _has_other_breaks(text):
        return None
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n") if text.count("\r") == text.count("\r\n") else None


def _has_line_over(text: str, limit: int) -> bool:
    """Whether a "\n"-separated line is longer than `limit`: one `rfind` per window of `limit` characters."""
    start, n = 0, len(text)
    while n - start > limit:
        cut = text.rfind("\n", start, start + limit + 1)
        if cut < 0:
            return True
        start = cut + 1
    return False


def line_stats(text: str, limit: int, codes: np.ndarray | None = None) -> tuple[float, bool]:
    """(average line length, whether a line is longer than `limit`) over `str.splitlines()`, breaks excluded."""
    flat = _newline_only(text)
    if flat is None:
        lengths = list(map(len, text.splitlines())) or [0]
        return sum(lengths) / len(lengths), max(lengths) > limit
    too_long = None
    if flat is text and codes is not None:
        is_break = codes == 10
        breaks = int(np.count_nonzero(is_break))
        # a line over `limit` covers a whole aligned block of this size: none can where every block has a break
        block = (limit + 1) // 2
        whole = len(codes) // block * block if block else 0
        if whole and is_break[:whole].reshape(-1, block).any(axis=1).all():
            too_long = False
    else:
        breaks = flat.count("\n")
    lines = breaks + (flat[-1:] not in ("\n", ""))  # text after the last break is one more line
    if too_long is None:
        too_long = _has_line_over(flat, limit)
    return ((len(flat) - breaks) / lines if lines else 0.0), too_long


def alpha_fraction(text: str, codes: np.ndarray | None = None) -> float:
    """Share of letters (`str.isalpha`): ASCII letters counted in C, other characters once per distinct one."""
    if not text:
        return 0.0
    codes = _codes(text) if codes is None else codes
    if codes is None:
        raw = text.encode("ascii")
        return (len(raw) - len(raw.translate(None, _ASCII_LETTERS))) / len(text)
    letters = np.count_nonzero((codes | 32) - codes.dtype.type(97) < 26)  # A-Z, a-z
    if codes.dtype != np.uint8:
        chars, counts = np.unique(codes[codes > 127], return_counts=True)
        letters += sum(n for c, n in zip(chars.tolist(), counts.tolist()) if chr(c).isalpha())
    return int(letters) / len(text)


def visible_text(html: str) -> str:
    return extract_plain_text(html, main_content=False)


def _is(lang: str | None, *names: str) -> bool:
    return lang is not None and lang.lower() in names


def check(text: str, lang: str | None, t: Thresholds = Thresholds()) -> str | None:
    """The first rule that drops the file, or None to keep it. `lang` is the DeepSeek/Linguist name."""
    codes = _codes(text)
    avg, too_long = line_stats(text, t.max_line_length, codes)
    if avg > t.max_avg_line_length:
        return "avg_line_length"
    if too_long:
        return "max_line_length"
    if alpha_fraction(text, codes) < t.min_alpha_fraction:
        return "low_alpha"
    if "<?xml version=" in text[: t.xml_prefix_chars] and not _is(lang, "xslt"):
        return "xml"
    if _is(lang, "html"):
        vis = len(visible_text(text))
        if vis < t.html_min_visible_chars or vis < t.html_min_visible_fraction * len(text):
            return "html_visible_text"
    if _is(lang, "json", "yaml") and not t.json_yaml_min_chars <= len(text) <= t.json_yaml_max_chars:
        return "json_yaml_size"
    return None
