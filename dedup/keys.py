"""Keys for exact dedup: xxh3-128 of (optionally normalised) text, or of a normalised URL."""

from __future__ import annotations

import re

import xxhash

from pipeline.web import urls

NORMALISATIONS = ("whitespace", "case")
_WS = re.compile(r"\s+")


def normalise_text(text: str, normalise: list[str] | tuple[str, ...] = ()) -> str:
    """`whitespace`: runs of whitespace become one space, ends stripped; `case`: case-folded."""
    if "whitespace" in normalise:
        text = _WS.sub(" ", text).strip()
    if "case" in normalise:
        text = text.casefold()
    return text


def text_key(text: str, normalise: list[str] | tuple[str, ...] = ()) -> tuple[int, int]:
    """xxh3-128 of the UTF-8 bytes, as (high, low) 64-bit halves."""
    d = xxhash.xxh3_128_intdigest(normalise_text(text, normalise).encode("utf-8", "surrogatepass"))
    return d >> 64, d & ((1 << 64) - 1)


def url_key(url: str | None) -> tuple[int, int] | None:
    """xxh3-128 of `pipeline.web.urls.dedup_key(url)`: the one URL normalisation of codecurate."""
    if not url:
        return None
    d = xxhash.xxh3_128_intdigest(urls.dedup_key(url).encode("utf-8", "surrogatepass"))
    return d >> 64, d & ((1 << 64) - 1)
