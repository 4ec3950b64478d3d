"""Decode HTML payloads: valid UTF-8 first, then the declared charset (HTTP, then `<meta>`), then detection.

Bytes that are valid UTF-8 are UTF-8 whatever the page declares (a page declared latin-1 that is
UTF-8 would become mojibake); only a declared UTF-16/32 that decodes is believed over them. Bytes
with at least as many valid multi-byte UTF-8 sequences as invalid bytes are UTF-8 with damage or two
encodings mixed: kept with replacement characters when the damage is at most `max_bad_utf8` of the
characters, else refused as `mojibake` (any one codec turns part of such a page into mojibake).
Other bytes go to the declared charsets, strictly, then to the detected encoding (resiliparse) and
cp1252. Undeclared pages fall back to a replacing decode, which `binary_fraction` then judges (the
caller drops pages over `max_binary` as `binary_content`). A declared charset that no codec knows
falls back to UTF-8 only: guessing a single-byte codec there turns the page into mojibake, so it is
skipped as undecodable.
"""

from __future__ import annotations

import codecs
import re

from resiliparse.parse.encoding import bytes_to_str, detect_encoding

_META = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.I)
# control characters other than whitespace (C0, DEL, C1) and U+FFFD: what binary bytes decode to
_NOT_TEXT = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]")


class Undecodable(ValueError):
    """The page is dropped; `reason` is `undecodable_charset`, `mojibake` or `binary_content`."""

    def __init__(self, message: str, reason: str = "undecodable_charset"):
        super().__init__(message)
        self.reason = reason


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


def binary_fraction(text: str) -> float:
    """The share of characters that are control characters (not whitespace) or U+FFFD."""
    return len(_NOT_TEXT.findall(text)) / len(text) if text else 0.0


def decode_html(body: bytes, http_charset: str | None, max_bad_utf8: float = 0.01,
                max_binary: float = 0.1) -> tuple[str, str]:
    """(text, charset used). Raises `Undecodable` (with its reason) when no candidate fits the bytes."""
    declared = [c for c in (http_charset, meta_charset(body)) if c]
    known = [e for e in map(_known, declared) if e]
    if known and known[0].startswith(("utf-16", "utf-32")):
        try:
            return _strict(body, known[0]), known[0]
        except UnicodeDecodeError:
            known = known[1:]
    try:
        text = _strict(body, "utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return text, (known[0] if known and body.isascii() else "utf-8")
    lossy = body.decode("utf-8", "replace")
    bad = lossy.count("\ufffd")
    good = len(lossy) - len(lossy.encode("ascii", "ignore")) - bad  # characters of valid multi-byte sequences
    if good and good >= bad:  # mostly UTF-8, whatever is declared: UTF-8 with damage, or two encodings mixed
        if bad <= max_bad_utf8 * len(lossy):
            return lossy, "utf-8"
        raise Undecodable(f"{bad} invalid UTF-8 bytes among {good} UTF-8 characters", "mojibake")
    for enc in dict.fromkeys(known):
        if enc != "utf-8":
            try:
                return _strict(body, enc), enc
            except UnicodeDecodeError:
                pass
    if declared and not known:
        raise Undecodable(f"unknown charset {declared[0]!r} and not UTF-8", _why(lossy, max_binary))
    enc = _known(detect_encoding(body))
    for guess in dict.fromkeys((enc, "cp1252")):  # cp1252: the web's usual legacy charset, where detection fails
        if guess and guess != "utf-8":
            try:
                return _strict(body, guess), guess
            except UnicodeDecodeError:
                pass
    if not declared:
        enc = enc or "utf-8"
        return bytes_to_str(body, enc, errors="replace", fallback_encodings=["utf-8", "cp1252"]), enc
    raise Undecodable(f"declared charset {declared[0]!r} does not decode the page", _why(lossy, max_binary))


def _why(lossy: str, max_binary: float) -> str:
    return "binary_content" if binary_fraction(lossy) > max_binary else "undecodable_charset"


def _strict(body: bytes, enc: str) -> str:
    text = body.decode(enc)
    return text[1:] if text.startswith("\ufeff") else text
