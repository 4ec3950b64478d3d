"""The datatrove steps of near dedup's first phases: `Signatures` -> `Buckets` -> (`Verify`).

Then `graph` finds the connected components and `decide` picks the kept document of each and
applies the decisions. Every phase after `Signatures` works partition by partition
(`work.PartReader` / `work.PartWriter`), so a task holds one partition's data at a time.
"""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline

from dedup import big_buckets, graph, work
from dedup import keep as keeping
from dedup.minhash import MinHasher, band_keys
from dedup.phase import WorkStep
from dedup.shingles import shingle_set
from pipeline import storage

BAND_SCHEMA = pa.schema([("key", pa.uint64()), ("ref", pa.uint64())])
SET_SCHEMA = pa.schema([("ref", pa.uint64()), ("shingles", pa.list_(pa.uint32()))])
ALL_PAIRS_UP_TO = 8  # with verification, buckets this small give all their pairs; larger ones go to big_buckets
BIG_BUCKET_DOCS = 5_000  # Verify resolves about this many big-bucket members at a time (their sets, up to 64 checks each)
SET_ROWS = 256  # documents per row group of the shingle-set files: what Verify reads to get one set
CACHE_BYTES = 8 << 20  # shingle-set row groups a SetIndex keeps read (callers fetch a batch's sets in one pass)
VERIFY_BATCH_BYTES = 1 << 20  # candidate pairs (16 B each) whose shingle sets Verify holds at once
EDGE_BLOCK = 8  # Verify's partition of an edge is that of its first document's 2^8-row block: fewer set reads


def stars_of(metadata: list[str | None], field: str) -> list[float]:
    return [keeping.doc_stars(json.loads(m or "{}"), field) for m in metadata]


class Signatures(WorkStep):
    """Per task's rows: MinHash band keys by key partition, member info by ref partition, and
    (with verification) each document's shingle set in ref order, for `Verify` to read back."""

    name = "minhash signatures"

    def __init__(self, input_dirs, work_dir, *, tasks, partitions, source=None, ngram, tokenizer, num_perm, seed, bands,
                 rows, stars_field, sets: bool):
        super().__init__(input_dirs, work_dir, tasks=tasks, partitions=partitions, source=source)
        self.ngram, self.tokenizer = ngram, tokenizer
        self.num_perm, self.seed, self.bands, self.rows = num_perm, seed, bands, rows
        self.stars_field, self.sets = stars_field, sets

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        hasher = MinHasher(self.num_perm, self.seed)
        p = self.partitions
        docs = band_rows = 0
        sets_path = work.task_file(self.path("sets"), rank)
        with work.PartWriter(work.task_file(self.path("bands"), rank), BAND_SCHEMA) as bands, \
                work.PartWriter(work.task_file(self.path("members"), rank), keeping.MEMBER_SCHEMA) as members, \
                _SetWriter(sets_path if self.sets else None) as sets:
            for shard, row0, cols in self.input.batches(rank, ["id", "text", "metadata"]):
                with self.track_time():
                    texts = cols["text"]
                    refs = work.make_ref(shard, np.arange(row0, row0 + len(texts)))
                    docs += len(texts)
                    # distinct shingles: the same signature, fewer rows to hash, and Verify's sets
                    sh = [shingle_set(t or "", self.ngram, self.tokenizer) for t in texts]
                    has = np.fromiter((len(s) > 0 for s in sh), dtype=bool, count=len(sh))
                    self.stat_update("no_tokens", value=int((~has).sum()))
                    keys = band_keys(hasher.signatures([s for s, h in zip(sh, has) if h]), self.bands, self.rows).reshape(-1)
                    bands.add(pa.table({"key": keys, "ref": np.repeat(refs[has], self.bands)}, schema=BAND_SCHEMA),
                              (keys % np.uint64(p)).astype(np.int64))
                    band_rows += len(keys)
                    members.add(pa.table({"ref": refs, "id": cols["id"], "length": [len(t or "") for t in texts],
                                          "stars": stars_of(cols["metadata"], self.stars_field)}, schema=keeping.MEMBER_SCHEMA),
                                work.spread(refs, p))
                    sets.add(refs[has], [s for s, h in zip(sh, has) if h])
                    self.stat_update("signatures", value=int(has.sum()))
        work.write_count(self.path("counts"), rank, docs=docs, band_rows=band_rows)


class _SetWriter:
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
            starts, sizes = groups(slot)
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


def groups(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, size) of each run of equal values in a sorted array."""
    if not len(sorted_keys):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    starts = np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
    sizes = np.diff(np.append(starts, len(sorted_keys)))
    return starts, sizes


def unique_edges(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 2) uint64 edges with a < b, sorted and without repeats."""
    if not len(a):
        return np.empty((0, 2), dtype=np.uint64)
    e = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)
    e = e[e[:, 0] != e[:, 1]]
    return np.unique(e, axis=0)


class Buckets(WorkStep):
    """Band-key partitions `rank::world_size`: documents sharing a bucket become candidate pairs.

    Without verification each bucket of n documents gives a star from its first document (n - 1
    edges, enough for the clusters), written straight as the components' input. With it, a
    dissimilar first document must not hide the similar ones: buckets of up to ALL_PAIRS_UP_TO
    documents give all their pairs (by their first document's block, for `Verify`), larger ones
    are written whole (`big/`) for `Verify` to resolve with `big_buckets`.
    """

    name = "lsh buckets"

    def __init__(self, input_dirs, work_dir, *, tasks, partitions, source=None, all_pairs: bool):
        super().__init__(input_dirs, work_dir, tasks=tasks, partitions=partitions, source=source)
        self.all_pairs = all_pairs

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        reader = self.parts("bands", BAND_SCHEMA)
        out = work.task_file(self.path("edges" if self.all_pairs else graph.round_dir(0)), rank)
        n = 0
        with work.PartWriter(out, work.EDGE_SCHEMA) as edges, work.PartWriter(work.task_file(self.path("big"), rank), BAND_SCHEMA) as big:
            for _, t in reader.partitions(work.mine(self.partitions, rank, world_size)):
                with self.track_time():
                    e = self._partition(t, big)
                    n += len(e)
                    if self.all_pairs:
                        edges.add(pa.table({"a": e[:, 0], "b": e[:, 1]}, schema=work.EDGE_SCHEMA),
                                  work.spread(e[:, 0] >> np.uint64(EDGE_BLOCK), self.partitions))
                    else:
                        graph.add_both_ways(edges, e, self.partitions)
        self.stat_update("candidate_pairs", value=n)
        work.write_count(self.path("edge_counts"), rank, edges=n, big_rows=big.written)

    def _partition(self, t: pa.Table, big: work.PartWriter) -> np.ndarray:
        key, ref = t.column("key").to_numpy(), t.column("ref").to_numpy()
        order = np.lexsort((ref, key))
        key, ref = key[order], ref[order]
        starts, sizes = groups(key)
        self.stat_update("buckets_with_duplicates", value=int((sizes > 1).sum()))
        first = np.repeat(ref[starts], sizes)  # star edges: every member after the first, paired with the first
        star = np.ones(len(ref), dtype=bool)
        star[starts] = False
        a, b = [first[star]], [ref[star]]
        if self.all_pairs:
            is_big = sizes > ALL_PAIRS_UP_TO
            member_big = np.repeat(is_big, sizes)
            star &= ~member_big
            a, b = [first[star]], [ref[star]]
            self.stat_update("big_buckets", value=int(is_big.sum()))
            if is_big.any():
                big.add(pa.table({"key": key[member_big], "ref": ref[member_big]}, schema=BAND_SCHEMA),
                        (key[member_big] % np.uint64(self.partitions)).astype(np.int64))  # the band partition
            small = (sizes > 2) & ~is_big
            for s, n in zip(starts[small], sizes[small]):
                i, j = np.triu_indices(n, 1)
                keep = i > 0  # pairs with the first member are already in the star
                a.append(ref[s + i[keep]])
                b.append(ref[s + j[keep]])
        return unique_edges(np.concatenate(a), np.concatenate(b))


class Verify(WorkStep):
    """Keep only candidate pairs whose exact Jaccard similarity of shingle sets reaches the threshold.

    Edge partitions `rank::world_size`: each reads its candidate pairs and only the row groups of
    the shingle-set files that hold their documents (`SetIndex`), never whole input shards. Task
    `rank` also resolves the big buckets of its partitions (`big_buckets`), BIG_BUCKET_DOCS members at a
    time. Verified edges go to the components' input.
    """

    name = "verify pairs"

    def __init__(self, input_dirs, work_dir, *, tasks, partitions, source=None, threshold):
        super().__init__(input_dirs, work_dir, tasks=tasks, partitions=partitions, source=source)
        self.threshold = threshold

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        index = SetIndex(work.glob(self.path("sets"), "t*.parquet"))
        reader = self.parts("edges", work.EDGE_SCHEMA)
        reader.batch_bytes = VERIFY_BATCH_BYTES
        kept = 0
        with work.PartWriter(work.task_file(self.path(graph.round_dir(0)), rank), work.EDGE_SCHEMA) as out:
            for batch in reader.batches(work.mine(self.partitions, rank, world_size)):
                if not batch:
                    continue
                with self.track_time():
                    # the sets of a batch of partitions in one pass: an edge's second document may be in any
                    # set row group, so reading per partition would read most groups once per partition
                    edges = [unique_edges(t.column("a").to_numpy(), t.column("b").to_numpy()) for _, t in batch]
                    batch.clear()  # only the edges are needed; the next batch is read while this list is bound
                    kept += self._verify(edges, index, out)
            held: list[pa.Table] = []  # big buckets of several partitions: their members' sets are read together
            for q, t in self.parts("big", BAND_SCHEMA).partitions(work.mine(self.partitions, rank, world_size)):
                held.append(t)
                if sum(map(len, held)) >= BIG_BUCKET_DOCS or q + world_size >= self.partitions:
                    with self.track_time():
                        e = self._big_buckets(pa.concat_tables(held), index)
                        held.clear()
                        kept += len(e)
                        graph.add_both_ways(out, e, self.partitions)
        self.stat_update("set_row_groups_read", value=index.groups_read)
        work.write_count(self.path("verified_counts"), rank, edges=kept)

    def _verify(self, edges: list[np.ndarray], index: SetIndex, out: work.PartWriter) -> int:
        """The pairs of a batch at the threshold, written out; their sets are freed on return."""
        sets = index.get(np.unique(np.concatenate([e.reshape(-1) for e in edges])))
        kept = 0
        for e in edges:
            pairs = zip(sets.views(e[:, 0]), sets.views(e[:, 1]))
            ok = np.fromiter((big_buckets.jaccard(x, y) >= self.threshold for x, y in pairs), dtype=bool, count=len(e))
            self.stat_update("verified_pairs", value=int(ok.sum()))
            self.stat_update("rejected_pairs", value=int((~ok).sum()))
            kept += int(ok.sum())
            graph.add_both_ways(out, e[ok], self.partitions)
        return kept

    def _big_buckets(self, t: pa.Table, index: SetIndex) -> np.ndarray:
        key, ref = t.column("key").to_numpy(), t.column("ref").to_numpy()
        order = np.lexsort((ref, key))  # a bucket's members in ref order, whichever task wrote them
        key, ref = key[order], ref[order]
        starts, sizes = groups(key)
        edges: list[tuple[int, int]] = []
        first = 0
        while first < len(starts):  # a chunk of whole buckets, about BIG_BUCKET_DOCS members
            last = first + 1
            while last < len(starts) and starts[last] + sizes[last] - starts[first] <= BIG_BUCKET_DOCS:
                last += 1
            lo, hi = starts[first], starts[last - 1] + sizes[last - 1]
            similarity = big_buckets.Similarity(index.get(np.unique(ref[lo:hi])).mapping())
            for s, n in zip(starts[first:last], sizes[first:last]):
                found, unchecked = big_buckets.resolve(ref[s : s + n].tolist(), similarity, self.threshold)
                edges += found
                self.stat_update("big_bucket_unchecked_members", value=unchecked)
            self.stat_update("big_bucket_checks", value=len(similarity.known))
            first = last
        found = unique_edges(*np.array(edges, dtype=np.uint64).reshape(-1, 2).T)
        self.stat_update("big_bucket_edges", value=len(found))
        return found
