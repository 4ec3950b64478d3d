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
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import storage

EDGE_SCHEMA = pa.schema([("a", pa.uint64()), ("b", pa.uint64())])
DROP_SCHEMA = pa.schema([("ref", pa.uint64())])
CLUSTER_SCHEMA = pa.schema([("id", pa.string()), ("cluster_id", pa.string()), ("kept", pa.bool_())])
_PARTS = b"codecurate.partitions"
_MAX_GROUP = 1 << 20  # rows per row group (pyarrow's cap)
FLUSH_BYTES = 4 << 20  # a writer's buffer (its flush holds twice that: the rows and them sorted by partition)
BATCH_BYTES = 4 << 20  # a reader holds the partitions of about this many bytes (uncompressed) at a time
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


def hashed(keys: np.ndarray, partitions: int) -> np.ndarray:
    """The partition of each uint64 value that is a hash already (band keys, content hashes)."""
    return (keys % np.uint64(partitions)).astype(np.int64)


def runs(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, size) of each run of equal values in a sorted array."""
    if not len(sorted_keys):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    starts = np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
    sizes = np.diff(np.append(starts, len(sorted_keys)))
    return starts, sizes


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

    Rows are buffered up to `flush_bytes`, then written sorted by partition, one row group per
    partition present; the partition -> row groups map goes into the footer at `close`. So a task
    that handles many partitions holds one buffer of fixed size, not its whole output.
    """

    def __init__(self, path: str, schema: pa.Schema, flush_bytes: int = FLUSH_BYTES, compression: str = "zstd"):
        self.path, self.schema, self.flush_bytes, self.compression = path, schema, flush_bytes, compression
        self._tables: list[pa.Table] = []
        self._parts: list[np.ndarray] = []
        self._rows, self._bytes, self._groups, self._next = 0, 0, {}, 0
        self.written = 0  # rows added so far
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
            self.written += len(table)
            self._bytes += self._tables[-1].nbytes + 8 * len(table)
            if self._bytes >= self.flush_bytes:
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
        self._tables, self._parts, self._rows, self._bytes = [], [], 0, 0

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
    """Reads partitions from the task files of a phase, file by file, one footer in memory at a time.

    Keeping every file's footer would cost tasks x partitions row-group entries in every reader (quadratic
    at scale); instead the footers are read once to size the partitions asked for, then once per batch of
    partitions holding about `batch_bytes`, whose slices are read in one call per file."""

    def __init__(self, paths: list[str], schema: pa.Schema, batch_bytes: int = BATCH_BYTES):
        self.paths, self.schema, self.batch_bytes = paths, schema, batch_bytes

    def _footers(self):
        for path in self.paths:
            with storage.open_file(path, "rb") as f:
                pf = pq.ParquetFile(f)
                yield pf, json.loads((pf.metadata.metadata or {}).get(_PARTS, b"{}"))

    def partitions(self, qs) -> Iterator[tuple[int, pa.Table]]:
        """(q, rows of partition q) for each q of `qs`, in order."""
        for batch in self.batches(qs):
            while batch:  # popped: a partition's rows are freed once the caller moves on
                yield batch.pop(0)

    def batches(self, qs) -> Iterator[list[tuple[int, pa.Table]]]:
        """The partitions of `qs` in order, as lists of about `batch_bytes` (one partition may exceed it)."""
        qs = list(qs)
        if len(qs) < 2:
            yield self._batch(qs)
            return
        size = dict.fromkeys(qs, 0)
        for pf, groups in self._footers():
            for q in qs:
                size[q] += sum(pf.metadata.row_group(g).total_byte_size for g in groups.get(str(q), ()))
        batch, held = [], 0
        for q in qs:
            if batch and held + size[q] > self.batch_bytes:
                yield self._batch(batch)
                batch, held = [], 0
            batch.append(q)
            held += size[q]
        yield self._batch(batch)

    def _batch(self, qs: list[int]) -> list[tuple[int, pa.Table]]:
        pieces: dict[int, list[pa.Table]] = {q: [] for q in qs}
        for pf, groups in self._footers() if qs else ():
            owner = sorted((g, q) for q in qs for g in groups.get(str(q), ()))
            if not owner:
                continue
            t = pf.read_row_groups([g for g, _ in owner]).replace_schema_metadata(None)
            at = 0
            for g, q in owner:
                n = pf.metadata.row_group(g).num_rows
                pieces[q].append(t.slice(at, n))
                at += n
        return [(q, pa.concat_tables(parts).cast(self.schema) if parts else self.schema.empty_table())
                for q, parts in pieces.items()]

    def read(self, q: int) -> pa.Table:
        return self._batch([q])[0][1]


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
