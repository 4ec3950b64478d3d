"""Keys for exact dedup: xxh3-128 of (optionally normalised) text, or a normalised URL."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import xxhash

NORMALISATIONS = ("whitespace", "case")
_WS = re.compile(r"\s+")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


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


def normalise_url(url: str) -> str:
    """Scheme and host lower-cased, default port and fragment dropped, empty path as `/`."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port is not None and str(parts.port) != _DEFAULT_PORTS.get(scheme) else None
    netloc = host + (f":{port}" if port else "")
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def url_key(url: str | None) -> tuple[int, int] | None:
    if not url:
        return None
    try:
        norm = normalise_url(url)
    except ValueError:  # e.g. a port that is not a number: fall back to the raw string
        norm = url.strip()
    d = xxhash.xxh3_128_intdigest(norm.encode("utf-8", "surrogatepass"))
    return d >> 64, d & ((1 << 64) - 1)
