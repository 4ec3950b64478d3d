"""MinHash signatures for whole batches of documents, identical to datasketch's `MinHash`.

datasketch (>= 2.0, default scheme "affine32") pre-mixes each 32-bit input hash with the
MurmurHash3 32-bit finaliser and applies the permutations `a * h + b mod 2^32`, with `a`, `b`
drawn from `RandomState(seed)`. We take the permutations from datasketch itself and apply the
same arithmetic to all shingles of a batch at once in uint32, then reduce to per-document
minima with `minimum.reduceat`. LSH band keys are xxh3-64 digests of each band's rows.
"""

from __future__ import annotations

import numpy as np
import xxhash

EMPTY = np.uint32(0xFFFFFFFF)
_F1 = np.uint32(0x85EBCA6B)
_F2 = np.uint32(0xC2B2AE35)
CHUNK_ROWS = 4096  # shingles per permutation block: keeps the (rows, num_perm) block in cache


def fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h *= _F1
    h ^= h >> np.uint32(13)
    h *= _F2
    h ^= h >> np.uint32(16)
    return h


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising false positives + false negatives at `threshold` (datasketch's method)."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, num_perm, 0.5, 0.5)


class MinHasher:
    """Signatures of `num_perm` uint32 values, equal to `datasketch.MinHash(num_perm, seed)`'s."""

    def __init__(self, num_perm: int = 112, seed: int = 1):
        from datasketch import MinHash

        ref = MinHash(num_perm=num_perm, seed=seed, scheme="affine32")
        self.num_perm, self.seed = num_perm, seed
        self.a = np.ascontiguousarray(ref.permutations[0], dtype=np.uint32)
        self.b = np.ascontiguousarray(ref.permutations[1], dtype=np.uint32)

    def signatures(self, shingles: list[np.ndarray]) -> np.ndarray:
        """(len(shingles), num_perm) uint32: one row per document's 32-bit shingle hashes.

        A document without shingles gets the empty signature (all 0xFFFFFFFF), as in datasketch.
        """
        out = np.full((len(shingles), self.num_perm), EMPTY, dtype=np.uint32)
        sizes = np.fromiter((len(s) for s in shingles), dtype=np.int64, count=len(shingles))
        nonempty = np.flatnonzero(sizes)
        if not len(nonempty):
            return out
        h = fmix32(np.concatenate([shingles[i] for i in nonempty]).astype(np.uint32, copy=False))
        ends = np.cumsum(sizes[nonempty])
        starts = ends - sizes[nonempty]
        # walk the concatenated shingles in blocks; a document may span several blocks
        lo = 0
        while lo < len(h):
            hi = min(len(h), lo + CHUNK_ROWS)
            block = np.multiply.outer(h[lo:hi], self.a)
            block += self.b
            first = np.searchsorted(ends, lo, side="right")
            last = np.searchsorted(starts, hi, side="left")
            docs = np.arange(first, last)
            cuts = np.maximum(starts[docs], lo) - lo
            mins = np.minimum.reduceat(block, cuts, axis=0)
            rows = nonempty[docs]
            out[rows] = np.minimum(out[rows], mins)
            lo = hi
        return out


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n_docs, bands) uint64 bucket keys; band index is part of the key."""
    n = len(sigs)
    keys = np.empty((n, bands), dtype=np.uint64)
    h = xxhash.xxh3_64_intdigest
    for j in range(bands):
        block = np.ascontiguousarray(sigs[:, j * rows : (j + 1) * rows])
        seed = j
        keys[:, j] = np.fromiter((h(block[i].tobytes(), seed) for i in range(n)), dtype=np.uint64, count=n)
    return keys
