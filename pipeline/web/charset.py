"""Decode HTML payloads: declared charset (HTTP, then `<meta>`), else detection (resiliparse).

A declared charset that does not fit the bytes falls back to UTF-8, then to the detected encoding,
each strictly. A declared charset that no codec knows falls back to UTF-8 only: guessing a
single-byte codec there turns the page into mojibake, so it is skipped as undecodable.
"""

from __future__ import annotations

import codecs
import re

from resiliparse.parse.encoding import bytes_to_str, detect_encoding

_META = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.I)


class Undecodable(ValueError):
    pass


def _known(label: str | None) -> str | None:
    if not label:
        return None
    try:
        return codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None


def meta_charset(body: bytes) -> str | None:
    m = _META.search(body, 0, 4096)
    return m.group(1).decode("ascii", "replace") if m else None


def decode_html(body: bytes, http_charset: str | None) -> tuple[str, str]:
    """(text, charset used). Raises `Undecodable` when no candidate decodes the bytes."""
    declared = [c for c in (http_charset, meta_charset(body)) if c]
    if not declared:
        enc = _known(detect_encoding(body)) or "utf-8"
        return bytes_to_str(body, enc, errors="replace", fallback_encodings=["utf-8", "cp1252"]), enc
    tried: list[str] = []
    known = [e for e in map(_known, declared) if e]
    fallbacks = ["utf-8"] + ([_known(detect_encoding(body))] if known else [])
    for enc in known + fallbacks:
        if enc and enc not in tried:
            tried.append(enc)
            try:
                return _strict(body, enc), enc
            except UnicodeDecodeError:
                pass
    raise Undecodable(f"declared charset {declared[0]!r} does not decode the page")


def _strict(body: bytes, enc: str) -> str:
    text = body.decode(enc)
    return text[1:] if text.startswith("\ufeff") else text
