"""Shingles: regex tokens joined into n-grams, hashed to 32 bits with numpy, one hash per token.

Hashing every n-gram string in Python (what datatrove and `datasketch.update_batch` do) is
the slow part of MinHash. Here a token's hash is a polynomial of its bytes (mod 2^64, then
MurmurHash3's fmix64), computed for all tokens of a document at once from prefix sums, and an
n-gram's hash is a polynomial of its tokens' hashes, mixed and cut to 32 bits. The `code`
tokens themselves are found in numpy too, as runs of one byte class. `shingle_hash` computes
the same value for one shingle (its tokens joined by a space), so a datasketch
`MinHash(hashfunc=shingle_hash)` fed `shingle_bytes(text)` agrees bit for bit with ours.

Tokenisers:
- `code`: identifiers and numbers are one token each, a run of operator characters
  (`==`, `->`, `();`) is one token; non-ASCII letters count as identifier characters (UTF-8
  bytes >= 0x80). `CODE_TOKEN` is its definition; `code_spans` finds the same tokens in numpy.
- `words`: case-folded words for prose; each CJK character is its own word.
"""

from __future__ import annotations

import re

import numpy as np

CODE_TOKEN = re.compile(rb"[\w\x80-\xff]+|[^\w\s\x80-\xff]+")
WORD_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]|\w+")

TOKENIZERS = ("code", "words")

_MUL = np.uint64(0x9E3779B97F4A7C15)  # polynomial base (odd, so every position matters)
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_MASK64 = (1 << 64) - 1


def tokens(text: str, tokenizer: str = "code") -> list[bytes]:
    """The document's tokens as UTF-8 bytes."""
    if tokenizer == "code":
        return CODE_TOKEN.findall(text.encode("utf-8", "surrogatepass"))
    if tokenizer == "words":
        return [w.encode("utf-8", "surrogatepass") for w in WORD_TOKEN.findall(text.lower())]
    raise ValueError(f"unknown tokenizer {tokenizer!r} (expected one of: {', '.join(TOKENIZERS)})")


def _fmix64(h: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(33))
        h *= _M1
        h ^= h >> np.uint64(33)
        h *= _M2
        h ^= h >> np.uint64(33)
    return h


def _mix(h: np.ndarray) -> np.ndarray:
    """fmix64 (MurmurHash3's finaliser), then the high 32 bits."""
    return (_fmix64(h) >> np.uint64(32)).astype(np.uint32)


# byte classes of the `code` tokeniser: 0 whitespace (bytes regex \s), 1 identifier (\w or >= 0x80), 2 operator
_CLASS = np.full(256, 2, dtype=np.int8)
_CLASS[[9, 10, 11, 12, 13, 32]] = 0
_CLASS[[b for b in range(256) if b >= 0x80 or chr(b).isascii() and (chr(b).isalnum() or b == 0x5F)]] = 1
_POW = np.ones(1, dtype=np.uint64)  # _MUL^i
_INV = np.ones(1, dtype=np.uint64)  # _MUL^-i (mod 2^64; _MUL is odd)


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    global _POW, _INV
    if len(_POW) < n:
        size = max(n, 2 * len(_POW))
        with np.errstate(over="ignore"):
            one = np.ones(1, dtype=np.uint64)
            _POW = np.cumprod(np.concatenate([one, np.full(size - 1, _MUL, dtype=np.uint64)]), dtype=np.uint64)
            _INV = np.cumprod(np.concatenate([one, np.full(size - 1, pow(int(_MUL), -1, 1 << 64), dtype=np.uint64)]), dtype=np.uint64)
    return _POW, _INV


def code_spans(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) byte offsets of the `code` tokens: maximal runs of identifier or operator bytes."""
    c = _CLASS[np.frombuffer(data, dtype=np.uint8)]
    if not len(c):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    cut = np.flatnonzero(c[1:] != c[:-1]) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [len(c)]])
    keep = c[starts] != 0
    return starts[keep], ends[keep]


def _token_hashes(data: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """fmix64 of sum((byte + 1) * _MUL^(end - 1 - i)) over each token's bytes (mod 2^64)."""
    b = np.frombuffer(data, dtype=np.uint8).astype(np.uint64) + np.uint64(1)
    pw, inv = _powers(len(b) + 1)
    with np.errstate(over="ignore"):
        prefix = np.concatenate([np.zeros(1, dtype=np.uint64), np.cumsum(b * inv[: len(b)], dtype=np.uint64)])
        return _fmix64(pw[ends - 1] * (prefix[ends] - prefix[starts]))


def token_hash(tok: bytes) -> int:
    """One token's hash, as `_token_hashes` computes it in bulk."""
    acc = 0
    for x in tok:
        acc = (acc * int(_MUL) + x + 1) & _MASK64
    return int(_fmix64(np.array([acc], dtype=np.uint64))[0])


def _ngrams(t: np.ndarray, ngram: int) -> np.ndarray:
    """The 32-bit hashes of the n-grams of token hashes `t` (one shingle of all tokens when shorter)."""
    if not len(t):
        return np.empty(0, dtype=np.uint32)
    n = min(ngram, len(t))
    m = len(t) - n + 1
    acc = t[:m].copy()
    with np.errstate(over="ignore"):
        for i in range(1, n):
            acc *= _MUL
            acc += t[i : i + m]
    return _mix(acc)


def hash_tokens(toks: list[bytes], ngram: int) -> np.ndarray:
    """The 32-bit hashes of the document's n-grams; empty for a document without tokens."""
    if not toks:
        return np.empty(0, dtype=np.uint32)
    ends = np.cumsum([len(x) for x in toks])
    return _ngrams(_token_hashes(b"".join(toks), ends - [len(x) for x in toks], ends), ngram)


def shingle_hashes(text: str, ngram: int = 5, tokenizer: str = "code") -> np.ndarray:
    if tokenizer == "code":
        data = text.encode("utf-8", "surrogatepass")
        starts, ends = code_spans(data)
        return _ngrams(_token_hashes(data, starts, ends), ngram) if len(starts) else np.empty(0, dtype=np.uint32)
    return hash_tokens(tokens(text, tokenizer), ngram)


def shingle_set(text: str, ngram: int = 5, tokenizer: str = "code") -> np.ndarray:
    """The sorted distinct shingle hashes, for exact Jaccard (a sort beats `np.unique`'s hashing here)."""
    h = np.sort(shingle_hashes(text, ngram, tokenizer))
    return h[np.concatenate(([True], h[1:] != h[:-1]))] if len(h) else h


def shingle_bytes(text: str, ngram: int = 5, tokenizer: str = "code") -> list[bytes]:
    """The shingles themselves (tokens joined by a space), for reference implementations."""
    toks = tokens(text, tokenizer)
    if not toks:
        return []
    n = min(ngram, len(toks))
    return [b" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)]


def shingle_hash(shingle: bytes) -> int:
    """The 32-bit hash of one shingle from `shingle_bytes`: what `shingle_hashes` computes in bulk."""
    acc = 0
    for tok in shingle.split(b" "):
        acc = (acc * int(_MUL) + token_hash(tok)) & _MASK64
    return int(_mix(np.array([acc], dtype=np.uint64))[0])
