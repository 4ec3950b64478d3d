"""Training data: token shards (`.bin/.idx`, Megatron MMIDIDX) packed into fixed-length sequences.

Every document is followed by EOS (unless it already ends with one) and documents are concatenated in a
seeded per-epoch order; sequence i is the window [i*(L+1), (i+1)*(L+1)) of that stream. A batch is a pure
function of (seed, step), so resuming from a checkpoint replays exactly the batches an uninterrupted run sees,
whatever the number of ranks.

A fixed slice of documents is held out by content hash (`is_heldout`): training never sees it, and evaluation
picks the same documents from text by tokenising and hashing them the same way, so every corpus of an ablation
is scored on one shared held-out set.
"""

from __future__ import annotations

import os
import posixpath

import numpy as np
import xxhash

from pipeline import storage

HELDOUT_BUCKETS = 10_000


def doc_hash(tokens, bos_id: int, eos_id: int) -> int:
    """Hash of a document's tokens without a leading BOS or trailing EOS (writers differ on those)."""
    arr = np.asarray(tokens, dtype=np.uint32)
    if arr.size and arr[0] == bos_id:
        arr = arr[1:]
    if arr.size and arr[-1] == eos_id:
        arr = arr[:-1]
    return xxhash.xxh64_intdigest(arr.tobytes())


def is_heldout(h: int, fraction: float) -> bool:
    return h % HELDOUT_BUCKETS < round(fraction * HELDOUT_BUCKETS)


def find_shards(path: str) -> list[str]:
    """Path prefixes of the `.bin/.idx` datasets under `path` (any fsspec path; remote ones are read through
    node-local scratch copies, see `IndexedDataset`).

    `path` may be a prefix itself, a directory holding `*.idx`, or a run directory: then the last stage in
    `recipe.json` order whose directory has a `manifest.json` (the shards stage) is used.
    """
    path = path.rstrip("/")
    if storage.exists(path + ".idx"):
        return [path]
    shards = (storage.read_json(storage.join(path, "manifest.json")) or {}).get("shards")
    if shards:
        return [storage.join(path, s["tokens_prefix"]) for s in shards]
    if storage.isdir(path):
        names = [s["name"] for s in (storage.read_json(storage.join(path, "recipe.json")) or {}).get("stages", [])]
        for name in reversed(names):
            if storage.exists(storage.join(path, name, "manifest.json")):
                return find_shards(storage.join(path, name))
        found = [p[: -len(".idx")] for p in storage.glob(storage.join(path, "**", "*.idx"))]
        if found:
            return found
    raise FileNotFoundError(f"no .bin/.idx token shards at {path}")


class PackedCorpus:
    """The training documents of some shards as one EOS-separated token stream, cut into windows."""

    def __init__(self, prefixes: list[str], bos_id: int, eos_id: int, heldout_fraction: float = 0.0, seed: int = 0):
        from pipeline.mixing.megatron import IndexedDataset

        self.datasets = [IndexedDataset(p) for p in prefixes]
        self.seed, self.eos_id = seed, eos_id
        refs, lengths = [], []
        self.heldout_docs = 0
        for d, ds in enumerate(self.datasets):
            for i in range(len(ds)):
                toks = ds[i]
                if toks.size == 0:
                    continue
                if heldout_fraction and is_heldout(doc_hash(toks, bos_id, eos_id), heldout_fraction):
                    self.heldout_docs += 1
                    continue
                refs.append((d, i))
                lengths.append(int(toks.size) + int(toks[-1] != eos_id))
        if not refs:
            raise ValueError(f"no training documents in {', '.join(prefixes)}")
        self.refs = np.asarray(refs, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.total_tokens = int(self.lengths.sum())
        self._epoch, self._order, self._ends = -1, None, None

    def _use_epoch(self, epoch: int) -> None:
        if epoch != self._epoch:
            self._order = np.random.default_rng([self.seed, epoch]).permutation(len(self.refs))
            self._ends = np.cumsum(self.lengths[self._order])
            self._epoch = epoch

    def _doc(self, k: int) -> np.ndarray:
        d, i = self.refs[k]
        toks = self.datasets[d][int(i)]
        if toks[-1] != self.eos_id:
            toks = np.append(toks, np.uint32(self.eos_id))
        return toks

    def window(self, start: int, n: int) -> np.ndarray:
        """Tokens [start, start+n) of the endless stream (epochs follow each other, each in its own order)."""
        out = np.empty(n, dtype=np.int64)
        filled = 0
        while filled < n:
            epoch, pos = divmod(start + filled, self.total_tokens)
            self._use_epoch(epoch)
            j = int(np.searchsorted(self._ends, pos, side="right"))
            doc_start = int(self._ends[j] - self.lengths[self._order[j]])
            toks = self._doc(int(self._order[j]))[pos - doc_start :]
            take = min(n - filled, toks.size)
            out[filled : filled + take] = toks[:take]
            filled += take
        return out

    def batch(self, first_sequence: int, batch_size: int, seq_len: int) -> np.ndarray:
        """[batch_size, seq_len+1] token windows for sequences first_sequence, first_sequence+1, ..."""
        w = seq_len + 1
        return np.stack([self.window((first_sequence + j) * w, w) for j in range(batch_size)])


def text_of(prefix: str) -> str | None:
    """The parquet file holding the same documents as token shard `prefix`, in the same order (shards manifest)."""
    folder, name = posixpath.split(prefix) if "://" in prefix else os.path.split(prefix)
    for s in (storage.read_json(storage.join(folder, "manifest.json")) or {}).get("shards") or []:
        if s.get("tokens_prefix") == name and s.get("text"):
            return storage.join(folder, s["text"])
    return None
