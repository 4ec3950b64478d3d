"""Intermediate files of the dedup phases: document refs, input pieces, and partitioned files.

A document is addressed by `ref = shard_index << 32 | row` (its position among the stage's
input shards), which does not depend on the number of tasks, so clusters do not either.

Keyed data (band keys, content keys, edges, members) is split into a fixed number of
`partitions`, independent of the task count. A task writes ONE file per phase, sorted by
partition, with one row group (or a few) per partition and the partition -> row-group map in the
file's metadata, so a partition's reader opens only its slices: a phase writes O(tasks) files,
never one per (task, partition). Every file is written under a temporary name and renamed, so a
killed task leaves nothing half-written and its re-run rewrites the same bytes.
"""

from __future__ import annotations

import contextlib
import json
import posixpath

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import storage

EDGE_SCHEMA = pa.schema([("a", pa.uint64()), ("b", pa.uint64())])
DROP_SCHEMA = pa.schema([("ref", pa.uint64())])
CLUSTER_SCHEMA = pa.schema([("id", pa.string()), ("cluster_id", pa.string()), ("kept", pa.bool_())])
_PARTS = b"codecurate.partitions"
_MAX_GROUP = 1 << 20  # rows per row group (pyarrow's cap)
_M1 = np.uint64(0xFF51AFD7ED558CCD)


def make_ref(shard: int, rows: np.ndarray) -> np.ndarray:
    return (np.uint64(shard) << np.uint64(32)) | rows.astype(np.uint64)


def ref_shard(refs: np.ndarray) -> np.ndarray:
    return (refs >> np.uint64(32)).astype(np.int64)


def ref_row(refs: np.ndarray) -> np.ndarray:
    return (refs & np.uint64(0xFFFFFFFF)).astype(np.int64)


def spread(values: np.ndarray, partitions: int) -> np.ndarray:
    """The partition of each uint64 value that is not a hash already (refs): a multiplicative mix."""
    with np.errstate(over="ignore"):
        h = values.astype(np.uint64) * _M1
    return ((h >> np.uint64(29)) % np.uint64(partitions)).astype(np.int64)


def write_table(path: str, table: pa.Table, compression: str = "zstd", **kw) -> None:
    storage.write_parquet(path, table, compression=compression, **kw)


def read_tables(paths: list[str], schema: pa.Schema) -> pa.Table:
    tables = []
    for path in paths:
        tables.append(storage.read_parquet(path))
    return pa.concat_tables(tables).cast(schema) if tables else schema.empty_table()


def glob(directory: str, pattern: str) -> list[str]:
    fs, p = storage.fs_and_path(directory)
    found = sorted(fs.glob(posixpath.join(p, pattern)))
    return [storage.with_protocol(directory, f) for f in found]


def task_file(directory: str, rank: int, suffix: str = "parquet") -> str:
    return storage.join(directory, f"t{rank:05d}.{suffix}")


class PartWriter:
    """One task's output of a phase: rows streamed in, written grouped by partition.

    Rows are buffered up to `flush_rows`, then written sorted by partition, one row group per
    partition present; the partition -> row groups map goes into the footer at `close`. So a task
    that handles many partitions holds one buffer, not its whole output.
    """

    def __init__(self, path: str, schema: pa.Schema, flush_rows: int = 4 << 20, compression: str = "zstd"):
        self.path, self.schema, self.flush_rows, self.compression = path, schema, flush_rows, compression
        self._tables: list[pa.Table] = []
        self._parts: list[np.ndarray] = []
        self._rows, self._groups, self._next = 0, {}, 0
        self._file = self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        elif self._file is not None:
            self._writer.close()
            self._file.close()

    def add(self, table: pa.Table, part: np.ndarray) -> None:
        if len(table):
            self._tables.append(table.cast(self.schema))
            self._parts.append(np.asarray(part, dtype=np.int64))
            self._rows += len(table)
            if self._rows >= self.flush_rows:
                self._flush()

    def _open(self) -> None:
        if self._writer is None:
            self._files = contextlib.ExitStack()
            self._file = self._files.enter_context(storage.atomic_open(self.path, "wb"))
            self._writer = pq.ParquetWriter(self._file, self.schema, compression=self.compression)

    def _flush(self) -> None:
        if not self._rows:
            return
        self._open()
        t = pa.concat_tables(self._tables)
        p = np.concatenate(self._parts)
        order = np.argsort(p, kind="stable")
        t, p = t.take(pa.array(order)), p[order]
        qs, starts = np.unique(p, return_index=True)
        ends = np.append(starts[1:], len(p))
        for q, s, e in zip(qs.tolist(), starts.tolist(), ends.tolist()):
            for lo in range(s, e, _MAX_GROUP):
                piece = t.slice(lo, min(e, lo + _MAX_GROUP) - lo)
                self._writer.write_table(piece, row_group_size=len(piece))
                self._groups.setdefault(str(q), []).append(self._next)
                self._next += 1
        self._tables, self._parts, self._rows = [], [], 0

    def close(self) -> None:
        self._flush()
        self._open()
        self._writer.add_key_value_metadata({_PARTS: json.dumps(self._groups)})
        self._writer.close()
        self._files.close()


def write_parts(path: str, table: pa.Table, part: np.ndarray) -> None:
    with PartWriter(path, table.schema) as w:
        w.add(table, part)


class PartReader:
    """Reads partition slices from the task files of a phase; each file's footer is read once."""

    def __init__(self, paths: list[str], schema: pa.Schema):
        self.paths, self.schema = paths, schema
        self._meta: list[tuple[pq.FileMetaData, dict[str, list[int]]] | None] = [None] * len(paths)

    def _info(self, i: int):
        if self._meta[i] is None:
            with storage.open_file(self.paths[i], "rb") as f:
                md = pq.ParquetFile(f).metadata
            raw = (md.metadata or {}).get(_PARTS, b"{}")
            self._meta[i] = (md, json.loads(raw))
        return self._meta[i]

    def read(self, q: int) -> pa.Table:
        tables = []
        for i, path in enumerate(self.paths):
            md, groups = self._info(i)
            rgs = groups.get(str(q))
            if rgs:
                with storage.open_file(path, "rb") as f:
                    tables.append(pq.ParquetFile(f, metadata=md).read_row_groups(rgs))
        if not tables:
            return self.schema.empty_table()
        return pa.concat_tables([t.replace_schema_metadata(None) for t in tables]).cast(self.schema)


def mine(partitions: int, rank: int, world_size: int) -> range:
    """The partitions task `rank` handles."""
    return range(rank, partitions, world_size)


def write_count(directory: str, rank: int, **counts: int) -> None:
    storage.write_json(task_file(directory, rank, "json"), counts)


def read_counts(directory: str) -> dict[str, int]:
    total: dict[str, int] = {}
    for path in glob(directory, "t*.json"):
        for k, v in storage.read_json(path).items():
            total[k] = total.get(k, 0) + v
    return total
