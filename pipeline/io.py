"""Reading and writing stage shards (zstd parquet with the fixed schema of `pipeline.documents`): the one
place rows and documents are read from a shard."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline

from pipeline import documents, storage
from pipeline.steps import Step

GROUP_BYTES = 64 << 20  # a row group holds at most this much text (before compression): the unit of splitting
Range = tuple[str, int, int]  # (shard path, first row group, end row group)


def split_row_groups(files: list[str], tasks: int) -> list[list[Range]]:
    """Cut the row groups of `files` (in order) into `tasks` contiguous runs of about equal row counts,
    so one large shard is read by many tasks. Reads only the files' footers."""
    groups: list[tuple[str, int, int]] = []  # (path, row group, rows)
    for path in files:
        with storage.open_file(path, "rb") as f:
            meta = pq.ParquetFile(f).metadata
        groups += [(path, i, meta.row_group(i).num_rows) for i in range(meta.num_row_groups)]
    total = sum(g[2] for g in groups)
    out: list[list[Range]] = [[] for _ in range(tasks)]
    seen = 0
    for path, i, rows in groups:
        task = min(tasks - 1, seen * tasks // total) if total else 0
        seen += rows
        runs = out[task]
        if runs and runs[-1][0] == path and runs[-1][2] == i:
            runs[-1] = (path, runs[-1][1], i + 1)
        else:
            runs.append((path, i, i + 1))
    return out


def iter_rows(path: str, columns: list[str] | None = None, row_groups: list[int] | None = None,
              batch_size: int = 1024) -> Iterator[dict]:
    """The rows of one parquet file on any filesystem (some columns, some row groups), a batch at a time."""
    with storage.open_file(path, "rb") as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size, columns=columns, row_groups=row_groups):
            yield from batch.to_pylist()


def iter_documents(path: str, **kw) -> Iterator[Document]:
    """The documents of one shard (see `iter_rows` for the options)."""
    for row in iter_rows(path, **kw):
        yield documents.from_row(row)


class ShardReader(Step):
    """Reads the shards of upstream stages; task `rank` takes files `rank::world_size`, or, given
    `ranges` (see `split_row_groups`), its own row-group ranges.

    With as many tasks as input shards (the default), task i reads exactly shard i, so outputs
    line up one to one and do not depend on the number of workers.
    """

    name = "shard reader"

    def __init__(self, input_dirs: list[str], batch_size: int = 1024, columns: list[str] | None = None,
                 ranges: list[list[Range]] | None = None):
        super().__init__()
        self.input_dirs = list(input_dirs)
        self.batch_size = batch_size
        self.columns = columns
        self.ranges = ranges

    def files_for(self, rank: int, world_size: int) -> list[str]:
        return storage.list_shards(self.input_dirs)[rank::world_size]

    def ranges_for(self, rank: int, world_size: int) -> list[tuple[str, int | None, int | None]]:
        if self.ranges is not None:
            return list(self.ranges[rank])
        return [(f, None, None) for f in self.files_for(rank, world_size)]

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        for path, first, end in self.ranges_for(rank, world_size):
            groups = None if first is None else list(range(first, end))
            for doc in iter_documents(path, columns=self.columns, row_groups=groups, batch_size=self.batch_size):
                self.count_in(doc)
                yield doc


class ShardWriter(Step):
    """Writes `part-{rank:05d}.parquet` per task, empty or not, atomically (`storage.atomic_open`),
    so a task killed mid-write leaves no partial shard and its re-run rewrites the same bytes.

    A shard that reaches `max_bytes` is closed and the task goes on in `part-{rank:05d}_{k:03d}.parquet`
    (names sort after the first shard and before the next task's), so shards stay a bounded size.
    """

    name = "shard writer"

    def __init__(self, output_dir: str, rows_per_group: int = 2048, compression_level: int = 3,
                 max_bytes: int | None = None):
        super().__init__()
        self.output_dir = output_dir
        self.rows_per_group = rows_per_group
        self.compression_level = compression_level
        self.max_bytes = max_bytes

    def path_for(self, rank: int, part: int = 0) -> str:
        name = f"part-{rank:05d}.parquet" if part == 0 else f"part-{rank:05d}_{part:03d}.parquet"
        return storage.join(self.output_dir, name)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        docs = iter(data or ())
        part, more = 0, True
        while more:
            more = yield from self._write_one(docs, self.path_for(rank, part))
            part += 1

    def _write_one(self, docs, path: str):
        """Writes documents until the input ends (returns False) or the file is full (returns True)."""
        rows: list[dict] = []
        buffered = 0
        group_bytes = min(GROUP_BYTES, self.max_bytes // 4) if self.max_bytes else GROUP_BYTES
        with storage.atomic_open(path, "wb") as f, pq.ParquetWriter(
            f, documents.SCHEMA, compression="zstd", compression_level=self.compression_level, write_statistics=False
        ) as w:
            for doc in docs:
                rows.append(documents.to_row(doc))
                buffered += len(doc.text)
                self.count_kept(doc)
                yield doc
                if len(rows) >= self.rows_per_group or buffered >= group_bytes:
                    w.write_table(pa.Table.from_pylist(rows, schema=documents.SCHEMA))
                    rows, buffered = [], 0
                    if self.max_bytes and f.tell() >= self.max_bytes:
                        return True
            if rows:
                w.write_table(pa.Table.from_pylist(rows, schema=documents.SCHEMA))
        return False
