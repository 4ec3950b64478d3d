"""Exact keys, the kept document of every cluster, the stage's summary, and applying the decisions.

Exact dedup: `ExactKeys` -> `ExactGroups` -> `Apply` (with `Summary`). Near dedup ends with
`Decide` -> `Apply`. A partition's decisions are written by the input task that will apply them
(`ShardInput.task_of`), its clusters by partition, so `clusters.parquet` is the same for any
task count, and its cluster sizes as a histogram.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline

from dedup import graph, work
from dedup import keep as keeping
from dedup.keys import text_key, url_key
from dedup.phase import WorkStep
from pipeline import storage
from pipeline.steps import Tally

CENTRES_BATCH_BYTES = 4 << 20  # cluster members (~50 B each) whose shingle sets `clusters: centres` holds at once
KEY_SCHEMA = pa.schema(
    [("hi", pa.uint64()), ("lo", pa.uint64()), ("ref", pa.uint64()), ("id", pa.string()), ("length", pa.int64()), ("stars", pa.float64())]
)


class Decider:
    """One task's decisions: per partition, rank each cluster's members, keep the first."""

    def __init__(self, step: WorkStep, rank: int, keep: list[str]):
        self.step, self.keep, self.sizes = step, keep, Counter()
        self.drops = work.PartWriter(work.task_file(step.path("decisions"), rank), work.DROP_SCHEMA)
        self.clusters = work.PartWriter(work.task_file(step.path("clusters"), rank), work.CLUSTER_SCHEMA)
        self.rank = rank

    def __enter__(self):
        return self

    def add(self, q: int, members: pa.Table, group: str = "cluster") -> None:
        if not len(members):
            return
        ranked, kept = keeping.rank_members(members, group, self.keep)
        starts = np.flatnonzero(np.concatenate([[True], np.diff(ranked.column(group).to_numpy()) != 0]))
        sizes = np.diff(np.append(starts, len(ranked)))
        ids = ranked.column("id").combine_chunks()
        cluster_id = pc.take(ids, pa.array(np.repeat(starts, sizes)))
        self.clusters.add(pa.table({"id": ids, "cluster_id": cluster_id, "kept": kept}, schema=work.CLUSTER_SCHEMA),
                          np.full(len(ranked), q, np.int64))
        dropped = ranked.column("ref").to_numpy()[~kept.to_numpy(zero_copy_only=False)]
        self.drops.add(pa.table({"ref": dropped}, schema=work.DROP_SCHEMA), self.step.input.task_of(dropped))
        self.sizes.update(sizes.tolist())

    def __exit__(self, exc_type, *exc):
        self.drops.__exit__(exc_type, *exc)
        self.clusters.__exit__(exc_type, *exc)
        if exc_type is None:
            storage.write_json(work.task_file(self.step.path("sizes"), self.rank, "json"), {str(k): v for k, v in sorted(self.sizes.items())})


class ExactKeys(WorkStep):
    """Per task's rows: the content (or URL) key of each document, by key partition."""

    name = "exact keys"

    def __init__(self, input_dirs, work_dir, *, tasks, partitions, source=None, level, normalise, stars_field, keep):
        super().__init__(input_dirs, work_dir, tasks=tasks, partitions=partitions, source=source)
        self.level, self.normalise, self.stars_field = level, list(normalise), stars_field
        self.need_text = level != "url" or bool({"longest", "shortest"} & set(keep))

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from dedup.steps import stars_of

        docs = 0
        cols = ["id", "metadata"] + (["url"] if self.level == "url" else []) + (["text"] if self.need_text else [])
        with work.PartWriter(work.task_file(self.path("keys"), rank), KEY_SCHEMA) as out:
            for shard, row0, c in self.input.batches(rank, cols):
                with self.track_time():
                    n = len(c["id"])
                    docs += n
                    texts = c.get("text") or [""] * n
                    keys = [url_key(u) for u in c["url"]] if self.level == "url" else [text_key(t or "", self.normalise) for t in texts]
                    has = np.fromiter((k is not None for k in keys), dtype=bool, count=n)
                    self.stat_update("no_url", value=int((~has).sum()))
                    idx = np.flatnonzero(has)
                    lo = np.array([keys[i][1] for i in idx], dtype=np.uint64)
                    t = pa.table({
                        "hi": np.array([keys[i][0] for i in idx], dtype=np.uint64), "lo": lo,
                        "ref": work.make_ref(shard, row0 + idx), "id": [c["id"][i] for i in idx],
                        "length": [len(texts[i] or "") for i in idx],
                        "stars": stars_of([c["metadata"][i] for i in idx], self.stars_field),
                    }, schema=KEY_SCHEMA)
                    out.add(t, work.hashed(lo, self.partitions))
        self.stat_update("docs", value=docs)
        work.write_count(self.path("counts"), rank, docs=docs)


class ExactGroups(WorkStep):
    """Key partitions `rank::world_size`: documents with equal keys form a cluster; one is kept."""

    name = "exact groups"

    def __init__(self, input_dirs, work_dir, *, tasks, partitions, source=None, keep):
        super().__init__(input_dirs, work_dir, tasks=tasks, partitions=partitions, source=source)
        self.keep = keep

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        reader = self.parts("keys", KEY_SCHEMA)
        with Decider(self, rank, self.keep) as decider:
            for q, t in reader.partitions(work.mine(self.partitions, rank, world_size)):
                with self.track_time():
                    # the smallest ref with each key labels its group; singletons are no cluster
                    by_key = t.group_by(["hi", "lo"]).aggregate([("ref", "min"), ("ref", "count")])
                    multi = by_key.filter(pc.greater(by_key.column("ref_count"), 1))
                    joined = t.join(multi, ["hi", "lo"], join_type="inner")
                    decider.add(q, joined.select(["ref", "id", "length", "stars"]).append_column("cluster", joined.column("ref_min")))


class Decide(WorkStep):
    """Near dedup: the labelled members of partitions `rank::world_size`; one kept per cluster.

    With `centres`, components are split first (`dedup.centres`), reading the members' shingle sets."""

    name = "clusters"

    def __init__(self, input_dirs, work_dir, *, tasks, partitions, source=None, keep, centres: bool = False, threshold: float = 0.7):
        super().__init__(input_dirs, work_dir, tasks=tasks, partitions=partitions, source=source)
        self.keep, self.centres, self.threshold = keep, centres, threshold

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from dedup import centres
        from dedup.sets import SetIndex

        reader = self.parts("labelled", graph.LABELLED_SCHEMA)
        sets = None
        if self.centres:
            sets = SetIndex(work.glob(self.path("sets"), "t*.parquet"))
            reader.batch_bytes = CENTRES_BATCH_BYTES
        with Decider(self, rank, self.keep) as decider:
            for batch in reader.batches(work.mine(self.partitions, rank, world_size)):
                if not batch:
                    continue
                with self.track_time():
                    # the sets of a whole batch in one pass: each row group of the set files is read once per
                    # batch, not once per partition (members of a partition are spread over every set file)
                    shingles = sets.get(np.unique(np.concatenate([m.column("ref").to_numpy() for _, m in batch]))) if sets else None
                    while batch:  # popped: the next batch is read while this list is bound
                        q, members = batch.pop(0)
                        decider.add(q, centres.split(members, self.keep, shingles, self.threshold) if sets else members)


class Summary(WorkStep):
    """Task 0 of the last phase: `clusters.parquet` (partition by partition, streamed) and
    `dedup_stats.json` from the per-task counts; other tasks and the documents pass through."""

    name = "dedup summary"

    def __init__(self, input_dirs, work_dir, *, tasks, partitions, source=None, stage_dir):
        super().__init__(input_dirs, work_dir, tasks=tasks, partitions=partitions, source=source)
        self.stage_dir = stage_dir

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if rank == 0:
            with self.track_time():
                self._write()
        yield from data or ()

    def _write(self) -> None:
        reader = self.parts("clusters", work.CLUSTER_SCHEMA)
        with storage.atomic_open(storage.join(self.stage_dir, "clusters.parquet")) as f:
            with pq.ParquetWriter(f, work.CLUSTER_SCHEMA, compression="zstd") as w:
                for _, t in reader.partitions(range(self.partitions)):
                    if len(t):
                        w.write_table(t)
        hist: Counter = Counter()
        for path in work.glob(self.path("sizes"), "t*.json"):
            hist.update({int(k): v for k, v in storage.read_json(path).items()})
        docs = work.read_counts(self.path("counts")).get("docs", 0)
        pairs = work.read_counts(self.path("verified_counts") if work.glob(self.path("verified_counts"), "t*.json")
                                 else self.path("edge_counts")).get("edges")
        summary(self.stage_dir, docs, hist, **({"pairs": pairs} if pairs is not None else {}))


def summary(stage_dir: str, docs: int, hist: Counter, **extra) -> dict:
    clusters = sum(hist.values())
    in_clusters = sum(k * v for k, v in hist.items())
    dups = in_clusters - clusters
    stats = {
        "docs": docs,
        "clusters": clusters,
        "docs_in_clusters": in_clusters,
        "duplicates_removed": dups,
        "duplicate_rate": round(dups / docs, 6) if docs else 0.0,
        "largest_cluster": max(hist, default=0),
        "size_histogram": {str(k): hist[k] for k in sorted(hist)},
        **extra,
    }
    storage.write_json(storage.join(stage_dir, "dedup_stats.json"), stats)
    return stats


class ApplyDecisions(WorkStep):
    """Reads task `rank`'s rows (counting every document in) and drops the non-kept cluster members."""

    name = "drop duplicates"

    def __init__(self, input_dirs, work_dir, *, tasks, partitions, source=None, reason: str):
        super().__init__(input_dirs, work_dir, tasks=tasks, partitions=partitions, source=source)
        self.reason = reason

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        yield from data or ()
        drops = np.unique(self.parts("decisions", work.DROP_SCHEMA).read(rank).column("ref").to_numpy())
        tally = Tally(self)  # the books in lists: a dropped document is never built, only its size read
        for doc, nbytes in self.input.documents(rank, skip=drops):
            tally.count_in(nbytes)
            if doc is None:
                tally.drop(self.reason, nbytes)
            else:
                yield doc
        tally.flush()
