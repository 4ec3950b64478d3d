"""The datatrove steps of the dedup phases. Only `ApplyDecisions` (the last phase) counts documents in.

Near dedup: `Signatures` -> `Buckets` -> (`Verify`) -> `Components` -> `ApplyDecisions`.
Exact dedup: `ExactKeys` -> `ExactGroups` -> `Summary` -> `ApplyDecisions`.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline

from dedup import big_buckets
from dedup import keep as keeping
from dedup import work
from dedup.keys import text_key, url_key
from dedup.minhash import MinHasher, band_keys
from dedup.shingles import shingle_hashes, shingle_set
from pipeline import documents, storage
from pipeline.steps import Step

BAND_SCHEMA = pa.schema([("key", pa.uint64()), ("ref", pa.uint64())])
KEY_SCHEMA = pa.schema(
    [("hi", pa.uint64()), ("lo", pa.uint64()), ("ref", pa.uint64()), ("id", pa.string()), ("length", pa.int64()), ("stars", pa.float64())]
)
ALL_PAIRS_UP_TO = 8  # with verification, buckets this small give all their pairs; larger ones go to big_buckets
BIG_BUCKET_DOCS = 20_000  # Verify loads the shingle sets of about this many big-bucket members at a time


class _Phase(Step):
    """A step that reads its own inputs and writes intermediate files; it yields no documents."""

    def __init__(self, input_dirs: list[str], work_dir: str):
        super().__init__()
        self.input = work.ShardInput(input_dirs)
        self.work_dir = work_dir

    def path(self, *parts: str) -> str:
        return storage.join(self.work_dir, *parts)


def _meta(row: dict) -> dict:
    return json.loads(row.get("metadata") or "{}")


class Signatures(_Phase):
    """Per input shard: MinHash signatures, LSH band keys split into `partitions` files, member info."""

    name = "minhash signatures"

    def __init__(self, input_dirs, work_dir, *, ngram, tokenizer, num_perm, seed, bands, rows, partitions, stars_field):
        super().__init__(input_dirs, work_dir)
        self.ngram, self.tokenizer = ngram, tokenizer
        self.num_perm, self.seed, self.bands, self.rows = num_perm, seed, bands, rows
        self.partitions, self.stars_field = partitions, stars_field

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        hasher = MinHasher(self.num_perm, self.seed)
        for shard, path in self.input.mine(rank, world_size):
            parts: list[list[pa.Table]] = [[] for _ in range(self.partitions)]
            members: list[pa.Table] = []
            row0 = 0
            for batch in self.input.batches(path, ["id", "text", "metadata"]):
                with self.track_time():
                    cols = batch.to_pydict()
                    texts = cols["text"]
                    refs = work.make_ref(shard, np.arange(row0, row0 + len(texts)))
                    row0 += len(texts)
                    sh = [shingle_hashes(t or "", self.ngram, self.tokenizer) for t in texts]
                    has = np.fromiter((len(s) > 0 for s in sh), dtype=bool, count=len(sh))
                    self.stat_update("no_tokens", value=int((~has).sum()))
                    sigs = hasher.signatures([s for s, h in zip(sh, has) if h])
                    keys = band_keys(sigs, self.bands, self.rows)
                    flat_keys = keys.reshape(-1)
                    flat_refs = np.repeat(refs[has], self.bands)
                    which = (flat_keys % np.uint64(self.partitions)).astype(np.int64)
                    for q in range(self.partitions):
                        sel = which == q
                        if sel.any():
                            parts[q].append(pa.table({"key": flat_keys[sel], "ref": flat_refs[sel]}, schema=BAND_SCHEMA))
                    members.append(
                        pa.table(
                            {
                                "ref": refs,
                                "id": cols["id"],
                                "length": [len(t or "") for t in texts],
                                "stars": [keeping.doc_stars(json.loads(m or "{}"), self.stars_field) for m in cols["metadata"]],
                            },
                            schema=keeping.MEMBER_SCHEMA,
                        )
                    )
                    self.stat_update("signatures", value=int(has.sum()))
            for q in range(self.partitions):
                tbl = pa.concat_tables(parts[q]) if parts[q] else BAND_SCHEMA.empty_table()
                work.write_table(self.path("bands", work.shard_name(shard, q)), tbl)
            tbl = pa.concat_tables(members) if members else keeping.MEMBER_SCHEMA.empty_table()
            work.write_table(self.path("members", work.shard_name(shard)), tbl)


def _groups(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, size) of each run of equal values in a sorted array."""
    if not len(sorted_keys):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    starts = np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
    sizes = np.diff(np.append(starts, len(sorted_keys)))
    return starts, sizes


class Buckets(_Phase):
    """Partition `rank` of the band keys: documents sharing a bucket become candidate pairs.

    Without verification each bucket of n documents gives a star from its first document (n - 1
    edges, enough for the clusters). With it, a dissimilar first document must not hide the
    similar ones: buckets of up to ALL_PAIRS_UP_TO documents give all their pairs, larger ones
    are written whole (`big/`) for `Verify` to resolve with `big_buckets`.
    Edges are written split by the shard of their first document, for `Verify`.
    """

    name = "lsh buckets"

    def __init__(self, input_dirs, work_dir, *, all_pairs: bool):
        super().__init__(input_dirs, work_dir)
        self.all_pairs = all_pairs

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.track_time():
            t = work.read_tables(work.glob(self.path("bands"), f"s*-p{rank:05d}.parquet"), BAND_SCHEMA)
            key = t.column("key").to_numpy()
            ref = t.column("ref").to_numpy()
            order = np.lexsort((ref, key))
            key, ref = key[order], ref[order]
            starts, sizes = _groups(key)
            multi = sizes > 1
            self.stat_update("buckets_with_duplicates", value=int(multi.sum()))
            # star edges: every member after the first, paired with the first
            first = np.repeat(ref[starts], sizes)
            star = np.ones(len(ref), dtype=bool)
            star[starts] = False
            if self.all_pairs:
                big = np.repeat(sizes > ALL_PAIRS_UP_TO, sizes)
                star &= ~big
                self.stat_update("big_buckets", value=int((sizes > ALL_PAIRS_UP_TO).sum()))
                work.write_table(self.path("big", f"p{rank:05d}.parquet"),
                                 pa.table({"key": key[big], "ref": ref[big]}, schema=BAND_SCHEMA))
            a, b = [first[star]], [ref[star]]
            if self.all_pairs:
                for s, n in zip(starts[(sizes > 2) & (sizes <= ALL_PAIRS_UP_TO)], sizes[(sizes > 2) & (sizes <= ALL_PAIRS_UP_TO)]):
                    i, j = np.triu_indices(n, 1)
                    keep = i > 0  # pairs with the first member are already in the star
                    a.append(ref[s + i[keep]])
                    b.append(ref[s + j[keep]])
            edges = _unique_edges(np.concatenate(a), np.concatenate(b))
            self.stat_update("candidate_pairs", value=len(edges))
            shards = work.ref_shard(edges[:, 0]) if len(edges) else np.empty(0, np.int64)
            for shard in np.unique(shards):
                sel = edges[shards == shard]
                work.write_table(
                    self.path("edges", work.shard_name(int(shard), rank)),
                    pa.table({"a": sel[:, 0], "b": sel[:, 1]}, schema=work.EDGE_SCHEMA),
                )


def _unique_edges(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 2) uint64 edges with a < b, sorted and without repeats."""
    if not len(a):
        return np.empty((0, 2), dtype=np.uint64)
    e = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)
    e = e[e[:, 0] != e[:, 1]]
    return np.unique(e, axis=0)


class Verify(_Phase):
    """Keep only candidate pairs whose exact Jaccard similarity of shingle sets reaches the threshold.

    Task `rank` checks the pairs whose first document lies in its shards; the other side's
    texts are read one input shard at a time, so memory stays bounded by a shard. It also
    resolves its share of the big buckets (see `big_buckets`), BIG_BUCKET_DOCS members at a time.
    """

    name = "verify pairs"

    def __init__(self, input_dirs, work_dir, *, threshold, ngram, tokenizer):
        super().__init__(input_dirs, work_dir)
        self.threshold, self.ngram, self.tokenizer = threshold, ngram, tokenizer

    def _sets(self, refs: np.ndarray, known: dict[int, np.ndarray] | None = None) -> dict[int, np.ndarray]:
        """Shingle sets by ref (those not `known` already), reading each input shard of the refs once."""
        known = known or {}
        out = {int(r): known[int(r)] for r in refs if int(r) in known}
        refs = np.array([r for r in refs if int(r) not in out], dtype=np.uint64)
        shard_of = work.ref_shard(refs)
        for shard in np.unique(shard_of):
            sel = refs[shard_of == shard]
            texts = self.input.rows(int(shard), work.ref_row(sel), ["text"]).column("text").to_pylist()
            out.update({int(r): shingle_set(t or "", self.ngram, self.tokenizer) for r, t in zip(sel, texts)})
        return out

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for shard, _ in self.input.mine(rank, world_size):
            with self.track_time():
                t = work.read_tables(work.glob(self.path("edges"), f"s{shard:05d}-p*.parquet"), work.EDGE_SCHEMA)
                edges = _unique_edges(t.column("a").to_numpy(), t.column("b").to_numpy())
                keep = np.zeros(len(edges), dtype=bool)
                if len(edges):
                    left = self._sets(np.unique(edges[:, 0]))
                    other = work.ref_shard(edges[:, 1])
                    for s in np.unique(other):
                        idx = np.flatnonzero(other == s)
                        right = self._sets(np.unique(edges[idx, 1]), known=left if s == shard else None)
                        for k in idx:
                            keep[k] = big_buckets.jaccard(left[int(edges[k, 0])], right[int(edges[k, 1])]) >= self.threshold
                self.stat_update("verified_pairs", value=int(keep.sum()))
                self.stat_update("rejected_pairs", value=int((~keep).sum()))
                self._write(work.shard_name(shard), edges[keep])
        for path in work.glob(self.path("big"), "p*.parquet")[rank::world_size]:
            with self.track_time():
                self._big_buckets(path)

    def _big_buckets(self, path: str) -> None:
        t = work.read_tables([path], BAND_SCHEMA)
        key, ref = t.column("key").to_numpy(), t.column("ref").to_numpy()
        starts, sizes = _groups(key)
        edges: list[tuple[int, int]] = []
        first = 0
        while first < len(starts):  # a chunk of whole buckets, about BIG_BUCKET_DOCS members
            last = first + 1
            while last < len(starts) and starts[last] + sizes[last] - starts[first] <= BIG_BUCKET_DOCS:
                last += 1
            lo, hi = starts[first], starts[last - 1] + sizes[last - 1]
            similarity = big_buckets.Similarity(self._sets(np.unique(ref[lo:hi])))
            for s, n in zip(starts[first:last], sizes[first:last]):
                found, unchecked = big_buckets.resolve(ref[s : s + n].tolist(), similarity, self.threshold)
                edges += found
                self.stat_update("big_bucket_unchecked_members", value=unchecked)
            self.stat_update("big_bucket_checks", value=len(similarity.known))
            first = last
        found = _unique_edges(*np.array(edges, dtype=np.uint64).reshape(-1, 2).T)
        self.stat_update("big_bucket_edges", value=len(found))
        self._write("big-" + path.rsplit("/", 1)[-1], found)

    def _write(self, name: str, edges: np.ndarray) -> None:
        work.write_table(self.path("verified", name), pa.table({"a": edges[:, 0], "b": edges[:, 1]}, schema=work.EDGE_SCHEMA))


def _summary(stage_dir: str, docs: int, sizes: list[int], **extra) -> dict:
    hist = Counter(sizes)
    dups = sum(sizes) - len(sizes)
    stats = {
        "docs": docs,
        "clusters": len(sizes),
        "docs_in_clusters": sum(sizes),
        "duplicates_removed": dups,
        "duplicate_rate": round(dups / docs, 6) if docs else 0.0,
        "largest_cluster": max(sizes, default=0),
        "size_histogram": {str(k): hist[k] for k in sorted(hist)},
        **extra,
    }
    storage.write_json(storage.join(stage_dir, "dedup_stats.json"), stats)
    return stats


def _decide(members: pa.Table, group: str, keep: list[str], shards: int, part: int, decisions_dir: str) -> tuple[pa.Table, list[int]]:
    """Pick the kept member of every group; write per-shard decisions. Returns clusters table and sizes."""
    ranked, kept = keeping.rank_members(members, group, keep)
    g = ranked.column(group).to_numpy()
    starts, sizes = _groups(g)
    ids = ranked.column("id").combine_chunks()
    cluster_id = pc.take(ids, pa.array(np.repeat(starts, sizes)))
    refs = ranked.column("ref").to_numpy()
    shard_of = work.ref_shard(refs)
    for shard in range(shards):
        sel = np.flatnonzero(shard_of == shard)
        tbl = pa.table(
            {"row": work.ref_row(refs[sel]), "kept": pc.take(kept, pa.array(sel)), "cluster_id": pc.take(cluster_id, pa.array(sel))},
            schema=work.DECISION_SCHEMA,
        )
        work.write_table(storage.join(decisions_dir, work.shard_name(shard, part)), tbl)
    clusters = pa.table({"id": ids, "cluster_id": cluster_id, "kept": kept}, schema=work.CLUSTER_SCHEMA)
    return clusters, sizes.tolist()


class Components(_Phase):
    """Connected components of the (verified) pair graph over all partitions; one kept per cluster.

    Memory holds the edges and the documents that have one, not the corpus.
    """

    name = "clusters"

    def __init__(self, input_dirs, work_dir, *, stage_dir, verified: bool, keep: list[str]):
        super().__init__(input_dirs, work_dir)
        self.stage_dir, self.verified, self.keep = stage_dir, verified, keep

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        with self.track_time():
            src = "verified" if self.verified else "edges"
            t = work.read_tables(work.glob(self.path(src), "*.parquet"), work.EDGE_SCHEMA)
            edges = _unique_edges(t.column("a").to_numpy(), t.column("b").to_numpy())
            nodes, inv = np.unique(edges.reshape(-1), return_inverse=True)
            inv = inv.reshape(-1, 2)
            n = len(nodes)
            labels = np.empty(0, dtype=np.int64)
            if n:
                graph = coo_matrix((np.ones(len(edges), dtype=np.int8), (inv[:, 0], inv[:, 1])), shape=(n, n))
                labels = connected_components(graph, directed=False)[1]
            # label each component by its smallest ref, so labels do not depend on anything else
            comp_min = np.full(labels.max() + 1 if n else 0, np.iinfo(np.uint64).max, dtype=np.uint64)
            np.minimum.at(comp_min, labels, nodes)
            members, docs = [], 0
            shards = len(self.input.files)
            for shard in range(shards):
                m = work.read_tables([self.path("members", work.shard_name(shard))], keeping.MEMBER_SCHEMA)
                docs += len(m)
                mask = np.isin(m.column("ref").to_numpy(), nodes)
                members.append(m.filter(pa.array(mask)))
            members = pa.concat_tables(members) if members else keeping.MEMBER_SCHEMA.empty_table()
            refs = members.column("ref").to_numpy()
            members = members.append_column("cluster", pa.array(comp_min[labels[np.searchsorted(nodes, refs)]], pa.uint64()))
            clusters, sizes = _decide(members, "cluster", self.keep, shards, 0, self.path("decisions"))
            work.write_table(storage.join(self.stage_dir, "clusters.parquet"), clusters)
            _summary(self.stage_dir, docs, sizes, pairs=len(edges))


class ExactKeys(_Phase):
    """Per input shard: the content (or URL) key of each document, split into `partitions` files."""

    name = "exact keys"

    def __init__(self, input_dirs, work_dir, *, level, normalise, partitions, stars_field):
        super().__init__(input_dirs, work_dir)
        self.level, self.normalise = level, list(normalise)
        self.partitions, self.stars_field = partitions, stars_field

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for shard, path in self.input.mine(rank, world_size):
            rows: dict[str, list] = {k: [] for k in KEY_SCHEMA.names}
            row = 0
            for batch in self.input.batches(path, ["id", "text", "url", "metadata"]):
                with self.track_time():
                    for r in batch.to_pylist():
                        key = url_key(r["url"]) if self.level == "url" else text_key(r["text"] or "", self.normalise)
                        if key is None:
                            self.stat_update("no_url")
                        else:
                            rows["hi"].append(key[0])
                            rows["lo"].append(key[1])
                            rows["ref"].append((shard << 32) | row)
                            rows["id"].append(r["id"])
                            rows["length"].append(len(r["text"] or ""))
                            rows["stars"].append(keeping.doc_stars(_meta(r), self.stars_field))
                        row += 1
            t = pa.table(rows, schema=KEY_SCHEMA)
            part = (t.column("lo").to_numpy() % np.uint64(self.partitions)).astype(np.int64)
            for q in range(self.partitions):
                work.write_table(self.path("keys", work.shard_name(shard, q)), t.filter(pa.array(part == q)))
            self.stat_update("docs", value=row)


class ExactGroups(_Phase):
    """Partition `rank` of the keys: documents with equal keys form a cluster; one is kept."""

    name = "exact groups"

    def __init__(self, input_dirs, work_dir, *, keep):
        super().__init__(input_dirs, work_dir)
        self.keep = keep

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.track_time():
            t = work.read_tables(work.glob(self.path("keys"), f"s*-p{rank:05d}.parquet"), KEY_SCHEMA)
            # the smallest ref with each key labels its group; singletons are no cluster
            by_key = t.group_by(["hi", "lo"]).aggregate([("ref", "min"), ("ref", "count")])
            multi = by_key.filter(pc.greater(by_key.column("ref_count"), 1))
            joined = t.join(multi, ["hi", "lo"], join_type="inner")
            members = joined.select(["ref", "id", "length", "stars"]).append_column("cluster", joined.column("ref_min"))
            clusters, sizes = _decide(members, "cluster", self.keep, len(self.input.files), rank, self.path("decisions"))
            work.write_table(self.path("clusters", f"p{rank:05d}.parquet"), clusters)
            storage.write_json(self.path("summary", f"p{rank:05d}.json"), {"sizes": sizes})


class Summary(_Phase):
    """One task: gathers the partitions' clusters into `clusters.parquet` and `dedup_stats.json`."""

    name = "dedup summary"

    def __init__(self, input_dirs, work_dir, *, stage_dir, partitions):
        super().__init__(input_dirs, work_dir)
        self.stage_dir, self.partitions = stage_dir, partitions

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.track_time():
            parts = [self.path("clusters", f"p{q:05d}.parquet") for q in range(self.partitions)]
            work.write_table(storage.join(self.stage_dir, "clusters.parquet"), work.read_tables(parts, work.CLUSTER_SCHEMA))
            sizes: list[int] = []
            for q in range(self.partitions):
                sizes += storage.read_json(self.path("summary", f"p{q:05d}.json"))["sizes"]
            docs = 0
            for path in self.input.files:
                with storage.open_file(path, "rb") as f:
                    docs += pq.ParquetFile(f).metadata.num_rows
            _summary(self.stage_dir, docs, sizes)


class ApplyDecisions(_Phase):
    """Reads the input shards (counting every document in) and drops the non-kept cluster members."""

    name = "drop duplicates"

    def __init__(self, input_dirs, work_dir, *, reason: str):
        super().__init__(input_dirs, work_dir)
        self.reason = reason

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for shard, path in self.input.mine(rank, world_size):
            d = work.read_tables(work.glob(self.path("decisions"), f"s{shard:05d}-p*.parquet"), work.DECISION_SCHEMA)
            drop = set(d.filter(pc.invert(d.column("kept"))).column("row").to_pylist())
            row = 0
            for batch in self.input.batches(path, None):
                for r in batch.to_pylist():
                    doc = documents.from_row(r)
                    self.count_in(doc)
                    if row in drop:
                        self.drop(doc, self.reason)
                    else:
                        yield doc
                    row += 1
