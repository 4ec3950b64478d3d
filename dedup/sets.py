"""Shingle sets on disk, for `Verify` and `clusters: centres`: each document's sorted distinct shingle hashes,
written by `Signatures` in ref order (`SetWriter`) and read back a row group at a time (`SetIndex`), packed
in memory (`Sets`)."""

from __future__ import annotations

import contextlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dedup import work
from pipeline import storage

SET_SCHEMA = pa.schema([("ref", pa.uint64()), ("shingles", pa.list_(pa.uint32()))])
SET_ROWS = 256  # documents per row group of the shingle-set files: what Verify reads to get one set
CACHE_BYTES = 8 << 20  # shingle-set row groups a SetIndex keeps read (callers fetch a batch's sets in one pass)


class SetWriter:
    """Each document's shingle set (sorted distinct hashes), in ref order, SET_ROWS documents per row group,
    streamed batch by batch (nothing when `path` is None)."""

    def __init__(self, path: str | None):
        self.path = path
        if path:
            self.files = contextlib.ExitStack()
            self.file = self.files.enter_context(storage.atomic_open(path, "wb"))
            self.writer = pq.ParquetWriter(self.file, SET_SCHEMA, compression="lz4", use_dictionary=False)

    def __enter__(self):
        return self

    def add(self, refs: np.ndarray, shingles: list[np.ndarray]) -> None:
        if not self.path or not len(refs):
            return
        offsets = np.concatenate([[0], np.cumsum([len(s) for s in shingles])]).astype(np.int32)
        values = pa.array(np.concatenate(shingles), pa.uint32())
        t = pa.table({"ref": pa.array(refs, pa.uint64()), "shingles": pa.ListArray.from_arrays(pa.array(offsets), values)},
                     schema=SET_SCHEMA)
        self.writer.write_table(t, row_group_size=SET_ROWS)

    def __exit__(self, exc_type, *exc):
        if self.path:
            self.writer.close()
            self.files.__exit__(exc_type, *exc)  # the file appears only when complete


class Sets:
    """Shingle sets by ref, packed: sorted refs, and offsets into the concatenation of a few arrays of hashes
    (`chunks`, e.g. one per row group read), so a set costs its hashes and 16 bytes, not a numpy object and a
    dict entry (~250 bytes, more than a small file's set), and joining the sets of many row groups copies
    no hashes."""

    def __init__(self, refs: np.ndarray, offsets: np.ndarray, chunks: list[np.ndarray]):
        self.refs, self.offsets, self.chunks = refs, offsets, chunks
        self.starts = np.cumsum([0] + [len(c) for c in chunks])

    def __len__(self) -> int:
        return len(self.refs)

    def views(self, refs: np.ndarray) -> list[np.ndarray]:
        """The sets of `refs` (any order), as views: located in one vectorised pass, then one slice each."""
        i = np.searchsorted(self.refs, refs)
        found = i < len(self.refs)
        found[found] = self.refs[i[found]] == refs[found]
        if not found.all():
            raise KeyError(int(refs[np.argmin(found)]))
        lo, hi = self.offsets[i], self.offsets[i + 1]
        c = np.searchsorted(self.starts, lo, side="right") - 1  # sets are not empty: never a chunk's end
        base = self.starts[c]
        chunks = self.chunks
        return [chunks[k][a:b] for k, a, b in zip(c.tolist(), (lo - base).tolist(), (hi - base).tolist())]

    def mapping(self) -> dict[int, np.ndarray]:
        """Every set by ref (for a few thousand sets: a dict entry costs ~250 bytes)."""
        return dict(zip(self.refs.tolist(), self.views(self.refs)))

    def take(self, pos: np.ndarray) -> Sets:
        """The sets at positions `pos` (increasing) of one chunk's sets (a row group's), copied."""
        (values,) = self.chunks
        lens = self.offsets[pos + 1] - self.offsets[pos]
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        idx = np.repeat(self.offsets[pos] - offsets[:-1], lens) + np.arange(offsets[-1])
        return Sets(self.refs[pos], offsets, [values[idx]])


def concat_sets(parts: list[Sets]) -> Sets:
    if not parts:
        return Sets(np.empty(0, np.uint64), np.zeros(1, np.int64), [])
    lens = np.concatenate([np.diff(p.offsets) for p in parts])
    return Sets(np.concatenate([p.refs for p in parts]), np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
                [c for p in parts for c in p.chunks])


class SetIndex:
    """Shingle sets by ref, reading only the row groups (SET_ROWS documents) that hold the refs asked for.

    It keeps each row group's first ref and place (24 bytes per SET_ROWS documents), not the files'
    parsed footers (~0.5 KB per row group): a group's file footer is read again when the group is.
    Row groups hold increasing, disjoint ranges of refs (tasks cut the input in ref order)."""

    def __init__(self, paths: list[str]):
        lo, where = [], []
        self.paths = paths
        for i, path in enumerate(paths):
            with storage.open_file(path, "rb") as f:
                md = pq.ParquetFile(f).metadata
            for g in range(md.num_row_groups):
                st = md.row_group(g).column(0).statistics
                if st is not None and st.has_min_max:
                    lo.append(st.min)
                    where.append((i, g))
        order = np.argsort(np.array(lo, dtype=np.uint64), kind="stable")
        self.lo = np.array(lo, dtype=np.uint64)[order]
        self.where = np.array(where, dtype=np.int64).reshape(-1, 2)[order]
        self.cache: dict[tuple[int, int], Sets] = {}
        self.cached_bytes = 0
        self.groups_read = 0

    def get(self, refs: np.ndarray) -> Sets:
        """The sets of `refs` (sorted, distinct) that exist, copied: a view would keep its whole row group's
        buffer alive after the cache lets it go."""
        parts = []
        if len(refs):
            slot = np.searchsorted(self.lo, refs, side="right") - 1
            starts, sizes = work.runs(slot)
            for s, n in zip(starts.tolist(), sizes.tolist()):
                group = self._group(*map(int, self.where[int(slot[s])]))
                want = refs[s : s + n]
                pos = np.minimum(np.searchsorted(group.refs, want), len(group) - 1)
                parts.append(group.take(pos[group.refs[pos] == want]))
        return concat_sets(parts)

    def _group(self, i: int, g: int) -> Sets:
        if (i, g) not in self.cache:
            if self.cached_bytes > CACHE_BYTES:
                self.cache.clear()
                self.cached_bytes = 0
            with storage.open_file(self.paths[i], "rb") as f:
                t = pq.ParquetFile(f).read_row_group(g)
            self.groups_read += 1
            lst = t.column("shingles").combine_chunks()
            group = Sets(t.column("ref").to_numpy(), lst.offsets.to_numpy().astype(np.int64),
                         [lst.values.to_numpy(zero_copy_only=False)])
            self.cache[(i, g)] = group
            self.cached_bytes += group.chunks[0].nbytes + 16 * len(group)
        return self.cache[(i, g)]
