"""Decode HTML payloads: valid UTF-8 first, then the declared charset (HTTP, then `<meta>`), then detection.

Bytes that are valid UTF-8 are UTF-8 whatever the page declares (a page declared latin-1 that is
UTF-8 would become mojibake); only a declared UTF-16/32 that decodes is believed over them. Bytes
with at least as many valid multi-byte UTF-8 sequences as invalid bytes are UTF-8 with damage or two
encodings mixed: kept with replacement characters when the damage is at most `max_bad_utf8` of the
characters, else refused as `mojibake` (any one codec turns part of such a page into mojibake).
Other bytes go to the declared charsets, strictly, then to the detected encoding (resiliparse) and
cp1252; undeclared pages fall back to a replacing decode. Whatever decodes is refused as
`binary_content` when over `max_binary` of its characters are control characters or U+FFFD (binary
bytes served as text decode to those in any codec). A declared charset that no codec knows
falls back to UTF-8 only: guessing a single-byte codec there turns the page into mojibake, so it is
skipped as undecodable.
"""

from __future__ import annotations

import codecs
import re

from resiliparse.parse.encoding import bytes_to_str, detect_encoding

_META = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.I)
# control characters other than whitespace (C0 and DEL as bytes, C1 as their UTF-8): what binary decodes to
_C0 = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])
_C1 = re.compile(b"\xc2[\x80-\x9f]")


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
    return utf8_binary_fraction(text.encode("utf-8", "surrogatepass"), len(text)) if text else 0.0


def utf8_binary_fraction(b: bytes, nchars: int) -> float:
    """`binary_fraction` of the text whose UTF-8 is `b`, counted with C-speed byte operations (a regex
    over the text cost a third of the extraction's time)."""
    n = len(b) - len(b.translate(None, _C0)) + b.count("\ufffd".encode())
    if not b.isascii():
        n += len(_C1.findall(b))
    return n / nchars if nchars else 0.0


def decode_html(body: bytes, http_charset: str | None, max_bad_utf8: float = 0.01,
                max_binary: float = 0.1) -> tuple[str, str]:
    """(text, charset used). Raises `Undecodable` (with its reason) when no candidate fits the bytes."""
    declared = [c for c in (http_charset, meta_charset(body)) if c]
    known = [e for e in map(_known, declared) if e]
    if known and known[0].startswith(("utf-16", "utf-32")):
        try:
            return _keep(_strict(body, known[0]), known[0], max_binary)
        except UnicodeDecodeError:
            known = known[1:]
    try:
        text = _strict(body, "utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if utf8_binary_fraction(body, len(text)) > max_binary:
            raise Undecodable("control characters in UTF-8", "binary_content")
        return text, (known[0] if known and body.isascii() else "utf-8")
    lossy = body.decode("utf-8", "replace")
    bad = lossy.count("\ufffd")
    good = len(lossy) - len(lossy.encode("ascii", "ignore")) - bad  # characters of valid multi-byte sequences
    if good and good >= bad:  # mostly UTF-8, whatever is declared: UTF-8 with damage, or two encodings mixed
        if bad <= max_bad_utf8 * len(lossy):
            return _keep(lossy, "utf-8", max_binary)
        raise Undecodable(f"{bad} invalid UTF-8 bytes among {good} UTF-8 characters", "mojibake")
    for enc in dict.fromkeys(known):
        if enc != "utf-8":
            try:
                return _keep(_strict(body, enc), enc, max_binary)
            except UnicodeDecodeError:
                pass
    if declared and not known:
        raise Undecodable(f"unknown charset {declared[0]!r} and not UTF-8", _why(body, good, max_binary))
    enc = _known(detect_encoding(body))
    for guess in dict.fromkeys((enc, "cp1252")):  # cp1252: the web's usual legacy charset, where detection fails
        if guess and guess != "utf-8":
            try:
                return _keep(_strict(body, guess), guess, max_binary)
            except UnicodeDecodeError:
                pass
    if not declared:
        enc = enc or "utf-8"
        return _keep(bytes_to_str(body, enc, errors="replace", fallback_encodings=["utf-8", "cp1252"]), enc, max_binary)
    raise Undecodable(f"declared charset {declared[0]!r} does not decode the page", _why(body, good, max_binary))


def _keep(text: str, enc: str, max_binary: float) -> tuple[str, str]:
    """A decoded page, unless it is binary bytes that a single-byte codec or a replacing decode turned into text."""
    if binary_fraction(text) > max_binary:
        raise Undecodable(f"control characters or U+FFFD in {enc}", "binary_content")
    return text, enc


def _why(body: bytes, good: int, max_binary: float) -> str:
    """Why no codec fits: binary bytes (control bytes, C0 or C1, as binary has and text in no ASCII-based
    charset has); else some UTF-8 among other bytes, two encodings; else a charset that is not the page's."""
    if binary_fraction(body.decode("latin-1")) > max_binary:
        return "binary_content"
    return "mojibake" if good else "undecodable_charset"


def _strict(body: bytes, enc: str) -> str:
    text = body.decode(enc)
    return text[1:] if text.startswith("\ufeff") else text
