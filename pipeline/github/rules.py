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

import re
from dataclasses import dataclass

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
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def line_stats(text: str) -> tuple[float, int]:
    """(average, maximum) line length over `str.splitlines()`, line breaks excluded."""
    lengths = list(map(len, text.splitlines())) or [0]
    return sum(lengths) / len(lengths), max(lengths)


def alpha_fraction(text: str) -> float:
    """Share of letters (`str.isalpha`); ASCII letters are counted in C through `bytes.translate`."""
    if not text:
        return 0.0
    raw = text.encode("ascii", "ignore")
    letters = len(raw) - len(raw.translate(None, _ASCII_LETTERS))
    if len(raw) < len(text):  # only the non-ASCII characters go through str.isalpha one by one
        letters += sum(map(str.isalpha, "".join(_NON_ASCII.findall(text))))
    return letters / len(text)


def visible_text(html: str) -> str:
    return extract_plain_text(html, main_content=False)


def _is(lang: str | None, *names: str) -> bool:
    return lang is not None and lang.lower() in names


def check(text: str, lang: str | None, t: Thresholds = Thresholds()) -> str | None:
    """The first rule that drops the file, or None to keep it. `lang` is the DeepSeek/Linguist name."""
    avg, longest = line_stats(text)
    if avg > t.max_avg_line_length:
        return "avg_line_length"
    if longest > t.max_line_length:
        return "max_line_length"
    if alpha_fraction(text) < t.min_alpha_fraction:
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
