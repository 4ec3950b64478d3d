"""Intermediate files of the dedup phases: where they live and how they are written.

A document is addressed by `ref = shard_index << 32 | row` (its position among the stage's
input shards), which does not depend on the number of tasks, so clusters do not either.
Every file is written under a temporary name and renamed, so a killed task leaves nothing
half-written and its re-run rewrites the same bytes.
"""

from __future__ import annotations

import posixpath

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import storage

EDGE_SCHEMA = pa.schema([("a", pa.uint64()), ("b", pa.uint64())])
DECISION_SCHEMA = pa.schema([("row", pa.uint32()), ("kept", pa.bool_()), ("cluster_id", pa.string())])
CLUSTER_SCHEMA = pa.schema([("id", pa.string()), ("cluster_id", pa.string()), ("kept", pa.bool_())])


def make_ref(shard: int, rows: np.ndarray) -> np.ndarray:
    return (np.uint64(shard) << np.uint64(32)) | rows.astype(np.uint64)


def ref_shard(refs: np.ndarray) -> np.ndarray:
    return (refs >> np.uint64(32)).astype(np.int64)


def ref_row(refs: np.ndarray) -> np.ndarray:
    return (refs & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def write_table(path: str, table: pa.Table) -> None:
    fs, p = storage.fs_and_path(path)
    fs.makedirs(posixpath.dirname(p), exist_ok=True)
    with fs.open(p + ".tmp", "wb") as f:
        pq.write_table(table, f, compression="zstd")
    fs.mv(p + ".tmp", p)


def read_tables(paths: list[str], schema: pa.Schema) -> pa.Table:
    tables = []
    for path in paths:
        with storage.open_file(path, "rb") as f:
            tables.append(pq.read_table(f))
    return pa.concat_tables(tables).cast(schema) if tables else schema.empty_table()


def glob(directory: str, pattern: str) -> list[str]:
    fs, p = storage.fs_and_path(directory)
    found = sorted(fs.glob(posixpath.join(p, pattern)))
    return [storage.with_protocol(directory, f) for f in found]


def shard_name(shard: int, part: int = 0) -> str:
    return f"s{shard:05d}-p{part:05d}.parquet"


class ShardInput:
    """The stage's input shards, addressed by their index across the whole stage."""

    def __init__(self, input_dirs: list[str]):
        self.input_dirs = list(input_dirs)

    @property
    def files(self) -> list[str]:
        return storage.list_shards(self.input_dirs)

    def mine(self, rank: int, world_size: int) -> list[tuple[int, str]]:
        return list(enumerate(self.files))[rank::world_size]

    def batches(self, path: str, columns: list[str], batch_size: int = 1024):
        with storage.open_file(path, "rb") as f:
            yield from pq.ParquetFile(f).iter_batches(batch_size=batch_size, columns=columns)

    def rows(self, shard: int, rows: np.ndarray, columns: list[str]) -> pa.Table:
        """Selected rows of one shard, in the order given."""
        with storage.open_file(self.files[shard], "rb") as f:
            return pq.read_table(f, columns=columns).take(pa.array(rows.astype(np.int64)))
