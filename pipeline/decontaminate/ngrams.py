"""The n-gram unit of decontamination, hashed with numpy.

A text is lower-cased and split into word tokens, maximal runs of Unicode word characters
(regex `\\w+`). Tokens are found and hashed over the text's characters with no Python work per
token (3x a bare `\\w+` findall; see `token_hashes`); each n-gram is hashed to 64 bits (a
polynomial over its token hashes, the length mixed in).
"""

from __future__ import annotations

import functools
import re

import numpy as np

NGRAM = 10
MIN_SHORT = 3
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The n-gram unit, as a list (the definition; `token_hashes` computes the same tokens' hashes)."""
    return _WORD.findall(text.lower())


_BASE = 0x100000001B3  # odd, so invertible modulo 2**64
_POW: list[np.ndarray] = [np.ones(1, dtype=np.uint64)] * 2  # _BASE**j and its inverse's, j < len, grown on demand


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    if len(_POW[0]) < n:
        size = max(n, 2 * len(_POW[0]), 1 << 16)
        with np.errstate(over="ignore"):
            for k, base in enumerate((_BASE, pow(_BASE, -1, 1 << 64))):
                arr = np.full(size, base, dtype=np.uint64)
                arr[0] = 1
                _POW[k] = np.cumprod(arr, dtype=np.uint64)
    return _POW[0][:n], _POW[1][:n]


def _fmix(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser: every output bit depends on every input bit."""
    with np.errstate(over="ignore"):
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xC4CEB9FE1A85EC53)
        h ^= h >> np.uint64(33)
    return h


_LATIN1_WORD = np.array([_WORD.fullmatch(chr(i)) is not None for i in range(256)])


@functools.cache
def _unicode_word() -> np.ndarray:
    """Whether `\w` matches each code point (one regexp pass over all of them, on first non-Latin-1 text)."""
    table = np.zeros(0x110000, dtype=bool)
    for m in _WORD.finditer("".join(map(chr, range(0x110000)))):
        table[m.start() : m.end()] = True
    return table


def token_hashes(text: str) -> np.ndarray:
    """64-bit hashes of the tokens of `words(text)`, in order, computed over the lower-cased text's code
    points with numpy: a token's hash is the polynomial sum of its characters (prefix sums over the whole
    text, each token's difference scaled back to its start), then mixed."""
    low = text.lower()
    try:
        codes = np.frombuffer(low.encode("latin-1"), dtype=np.uint8)
        table = _LATIN1_WORD
    except UnicodeEncodeError:
        codes = np.frombuffer(low.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        table = _unicode_word()
    is_word = np.zeros(len(codes) + 2, dtype=bool)
    is_word[1:-1] = table[codes]
    edges = np.flatnonzero(is_word[1:] != is_word[:-1])  # a token's start, then its end, alternately
    if not len(edges):
        return np.zeros(0, dtype=np.uint64)
    starts, ends = edges[0::2], edges[1::2]
    with np.errstate(over="ignore"):
        prefix = prefix_hashes(codes)
        h = (prefix[ends] - prefix[starts]) * _powers(len(codes) + 1)[1][starts]
        h += (ends - starts).astype(np.uint64)  # the length too
    return _fmix(h)


def prefix_hashes(values: np.ndarray) -> np.ndarray:
    """prefix[i] = sum of values[j] * _BASE**j for j < i (modulo 2**64)."""
    prefix = np.zeros(len(values) + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.cumsum(values * _powers(len(values))[0], dtype=np.uint64, out=prefix[1:])
    return prefix


def _mix_length(n) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.asarray(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)


def window_hashes(prefix: np.ndarray, starts: np.ndarray, lengths) -> np.ndarray:
    """Hashes of the token windows at `starts` of each length (those that fit): a window's part of the
    prefix sums (`prefix_hashes` of the token hashes), scaled back to its start, its length mixed in."""
    lens = np.atleast_1d(np.asarray(lengths, dtype=np.int64))
    n_tokens = len(prefix) - 1
    end = starts + lens[:, None]
    fits = end <= n_tokens
    with np.errstate(over="ignore"):
        h = (prefix[np.minimum(end, n_tokens)] - prefix[starts]) * _powers(n_tokens + 1)[1][starts] ^ _mix_length(lens)[:, None]
    return h[fits]


def ngram_hashes(th: np.ndarray, n: int) -> np.ndarray:
    """64-bit hashes of every n-gram of a token-hash array (len - n + 1 of them)."""
    return window_hashes(prefix_hashes(th), np.arange(max(len(th) - n + 1, 0)), n)
