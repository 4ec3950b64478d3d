"""A keyed shuffle between two phases: bring every document with the same key into one task.

`RouteByKey` (phase 1, one task per input shard) writes its shard's rows ordered by the partition of
their key, one parquet file per task whose row groups are partition runs, plus a small index of which
row groups hold which partition. `PartitionReader` (phase 2, one task per partition) reads only its
own row groups from every routed file, in file order. Files: two per routing task, whatever the number
of partitions; memory: one input shard, then one partition. Rows keep their input order within a
partition (files in shard order, rows in file order), so the result is the same for any worker count.
"""

from __future__ import annotations

import zlib

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline

from pipeline import documents, storage
from pipeline.io import iter_documents
from pipeline.steps import Step

GROUP_ROWS = 1 << 16  # rows per routed row group (a partition's run takes ceil(rows / GROUP_ROWS) groups)


def partition_of(key: str, parts: int) -> int:
    """Stable over runs and machines (unlike `hash`)."""
    return zlib.crc32(key.encode("utf-8")) % parts


def _paths(route_dir: str, rank: int) -> tuple[str, str]:
    return storage.join(route_dir, f"part-{rank:05d}.parquet"), storage.join(route_dir, f"part-{rank:05d}.json")


class RouteByKey(Step):
    """Phase 1: task i routes input shard i by `key` (a promoted column such as `repo`). No accounting:
    documents only move; the partition reader counts them in."""

    name = "route by key"

    def __init__(self, shards: list[str], route_dir: str, parts: int, key: str = "repo"):
        super().__init__()
        self.shards, self.route_dir, self.parts, self.key = list(shards), route_dir, parts, key

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        tables = []
        for path in self.shards[rank::world_size]:
            tables.append(storage.read_parquet(path))
        table = pa.concat_tables(tables) if tables else documents.SCHEMA.empty_table()
        part = [partition_of(str(k or ""), self.parts) for k in table.column(self.key).to_pylist()]
        order = sorted(range(len(part)), key=lambda i: (part[i], i))
        table = table.take(pa.array(order, pa.int64()))
        parts = [part[i] for i in order]
        index: dict[str, list[int]] = {}  # partition -> [first, end) of its row groups
        out, idx = _paths(self.route_dir, rank)
        with storage.atomic_open(out, "wb") as f, pq.ParquetWriter(f, table.schema, compression="zstd") as w:
            start = group = 0
            while start < len(parts):
                end = start
                while end < len(parts) and parts[end] == parts[start]:
                    end += 1
                w.write_table(table.slice(start, end - start), row_group_size=GROUP_ROWS)
                n = -(-(end - start) // GROUP_ROWS)
                index[str(parts[start])] = [group, group + n]
                start, group = end, group + n
        storage.write_json(idx, index)
        return
        yield


class PartitionReader(Step):
    """Phase 2: task p reads partition p's row groups from each of the `n_files` routed files, in order."""

    name = "partition reader"

    def __init__(self, route_dir: str, n_files: int):
        super().__init__()
        self.route_dir, self.n_files = route_dir, n_files

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for i in range(self.n_files):
            path, idx = _paths(self.route_dir, i)
            groups = storage.read_json(idx, {}).get(str(rank))
            if groups is None:
                continue
            for doc in iter_documents(path, row_groups=list(range(*groups))):
                self.count_in(doc)
                yield doc
