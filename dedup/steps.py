"""The datatrove steps of near dedup's first phases: `Signatures` -> `Buckets` -> (`Verify`).

Then `graph` finds the connected components and `decide` picks the kept document of each and
applies the decisions. Every phase after `Signatures` works partition by partition
(`work.PartReader` / `work.PartWriter`), so a task holds one partition's data at a time.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from datatrove.data import DocumentsPipeline

from dedup import big_buckets, graph, work
from dedup import keep as keeping
from dedup.minhash import MinHasher, band_keys
from dedup.phase import WorkStep
from dedup.sets import SetIndex, SetWriter
from dedup.shingles import shingle_set

BAND_SCHEMA = pa.schema([("key", pa.uint64()), ("ref", pa.uint64())])
ALL_PAIRS_UP_TO = 8  # with verification, buckets this small give all their pairs; larger ones go to big_buckets
BIG_BUCKET_DOCS = 5_000  # Verify resolves about this many big-bucket members at a time (their sets, up to 64 checks each)
VERIFY_BATCH_BYTES = 1 << 20  # candidate pairs (16 B each) whose shingle sets Verify holds at once
SAME_TEXT_BYTES = 32 << 20  # recent texts, shingle sets and band keys `Signatures` keeps to skip repeated texts
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
        recent = _SameText(SAME_TEXT_BYTES)
        with work.PartWriter(work.task_file(self.path("bands"), rank), BAND_SCHEMA) as bands, \
                work.PartWriter(work.task_file(self.path("members"), rank), keeping.MEMBER_SCHEMA) as members, \
                SetWriter(sets_path if self.sets else None) as sets:
            for shard, row0, cols in self.input.batches(rank, ["id", "text", "metadata"]):
                with self.track_time():
                    texts = [t or "" for t in cols["text"]]
                    refs = work.make_ref(shard, np.arange(row0, row0 + len(texts)))
                    docs += len(texts)
                    sh, rows = self._hash(texts, hasher, recent)
                    has = np.fromiter((len(s) > 0 for s in sh), dtype=bool, count=len(sh))
                    self.stat_update("no_tokens", value=int((~has).sum()))
                    keys = np.concatenate([r for r in rows if r is not None]) if has.any() else np.empty(0, np.uint64)
                    bands.add(pa.table({"key": keys, "ref": np.repeat(refs[has], self.bands)}, schema=BAND_SCHEMA),
                              work.hashed(keys, p))
                    band_rows += len(keys)
                    members.add(pa.table({"ref": refs, "id": cols["id"], "length": [len(t or "") for t in texts],
                                          "stars": stars_of(cols["metadata"], self.stars_field)}, schema=keeping.MEMBER_SCHEMA),
                                work.spread(refs, p))
                    sets.add(refs[has], [s for s, h in zip(sh, has) if h])
                    self.stat_update("signatures", value=int(has.sum()))
        work.write_count(self.path("counts"), rank, docs=docs, band_rows=band_rows)

    def _hash(self, texts: list[str], hasher: MinHasher, recent: _SameText) -> tuple[list[np.ndarray], list]:
        """Each text's distinct shingles (the same signature, fewer rows to hash, and Verify's set) and its band
        keys (None without shingles); a text seen recently, or earlier in the batch, is not hashed again."""
        found = [recent.get(t) for t in texts]
        todo: dict[str, list[int]] = {}
        for i, f in enumerate(found):
            if f is None:
                todo.setdefault(texts[i], []).append(i)
        new = [shingle_set(t, self.ngram, self.tokenizer) for t in todo]
        full = [s for s in new if len(s)]
        keys = iter(band_keys(hasher.signatures(full), self.bands, self.rows) if full else ())
        for (text, where), s in zip(todo.items(), new):
            f = found[where[0]] = (s, next(keys).copy() if len(s) else None)  # a copy: a row would keep the batch's array
            recent.put(text, f)
            for i in where[1:]:
                found[i] = f
        return [f[0] for f in found], [f[1] for f in found]


ENTRY_BYTES = 400  # a kept text beyond its bytes: str header 49, tuple 56, two array headers 2 x 112, dict slot (sys.getsizeof)


class _SameText:
    """Shingle sets and band keys of recent texts, by text (exact: dict keys compare the strings), about
    `max_bytes` of them, oldest out first. Versioned code repeats files verbatim from release to release: on
    the benchmark's real releases 37% of the files (16% of the bytes), about one release apart."""

    def __init__(self, max_bytes: int):
        self.items: dict[str, tuple] = {}
        self.bytes, self.max_bytes = 0, max_bytes

    def get(self, text: str):
        return self.items.get(text)

    def put(self, text: str, item: tuple) -> None:
        if text in self.items or not len(item[0]):
            return
        self.items[text] = item
        self.bytes += self._size(text, item)
        while self.bytes > self.max_bytes:
            old = next(iter(self.items))
            self.bytes -= self._size(old, self.items.pop(old))

    @staticmethod
    def _size(text: str, item: tuple) -> int:
        return len(text) + ENTRY_BYTES + item[0].nbytes + item[1].nbytes


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
        starts, sizes = work.runs(key)
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
                        work.hashed(key[member_big], self.partitions))  # the band partition
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
            rows = 0
            for q, t in self.parts("big", BAND_SCHEMA).partitions(work.mine(self.partitions, rank, world_size)):
                held.append(t)
                rows += len(t)
                if rows >= BIG_BUCKET_DOCS or q + world_size >= self.partitions:
                    with self.track_time():
                        e = self._big_buckets(pa.concat_tables(held), index)
                        held, rows = [], 0
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
        starts, sizes = work.runs(key)
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
