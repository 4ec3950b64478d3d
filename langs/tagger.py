"""`tag(path, content)`: one of DeepSeek-Coder-V2's 338 language names for a file, never raising.

Reads at most the first 50 KiB (as Linguist does), runs the cascade on the file name and text,
maps Linguist's answer to a DeepSeek name (see `langs.names` for the many-to-one rule) and
flags the files Linguist leaves out of its statistics with a `reason`. Binary and empty files
get no language; vendored, documentation, generated and undecodable (non-UTF-8, read as
latin-1) files keep their language so a caller can choose what to drop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from langs import cascade, exclusions, names
from langs.linguist import index

CONSIDER_BYTES = 50 * 1024
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tag:
    language: str | None  # DeepSeek name, None outside the 338
    linguist: str | None
    kind: str | None  # programming | data | markup | prose
    strategy: str  # the cascade step that decided, "pygments", "excluded", "none" or "error"
    confidence: float
    reason: str | None = None  # why Linguist would leave this file out, if it would


def _kind(language: str | None, linguist: str | None) -> str | None:
    if language is not None:
        return names.table()[language]["kind"]
    lang = index().languages.get(linguist) if linguist else None
    return lang.kind if lang else None


def _tag(path: str | None, content: bytes, content_only: bool, decoded: str | None) -> Tag:
    if decoded is not None and len(content) > CONSIDER_BYTES:  # the text of the first 50 KiB, where easy
        decoded = decoded[:CONSIDER_BYTES] if decoded.isascii() else None
    text, reason = exclusions.decode(bytes(content[:CONSIDER_BYTES]), decoded)
    if reason in ("empty", "binary"):
        return Tag(None, None, None, "excluded", 1.0, reason)
    path = path.replace("\\", "/") if path else None
    base = None if content_only or not path else path[path.rfind("/") + 1 :]  # posixpath.basename, inlined
    if path and not content_only and reason is None:
        reason = exclusions.reason(path, text)
    elif reason is None and exclusions.generated_text(None, text):
        reason = "generated"
    linguist, strategy, conf = cascade.detect(base, text)
    language = names.deepseek_name(linguist, base, text)
    if language is None and base and (linguist is None or not names.claimed(base)):
        glob = names.glob_name(base)
        if glob:
            language, strategy, conf = glob, "pygments", 0.8
    return Tag(language, linguist, _kind(language, linguist), strategy, conf, reason)


def tag(path: str | None, content: bytes, content_only: bool = False, text: str | None = None) -> Tag:
    """Tag a file from its path (None or content_only: judge the text alone) and bytes; `text`, when the
    caller has it, is `content.decode("utf-8")` and saves decoding it again."""
    try:
        return _tag(path, content or b"", content_only, text)
    except Exception as e:  # a tagger bug must cost one file, not a whole stage
        log.exception("langs.tag failed on %r", path)
        return Tag(None, None, None, "error", 0.0, f"error: {type(e).__name__}")
