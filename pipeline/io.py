"""Reading and writing stage shards: zstd parquet with the fixed schema of `pipeline.documents`."""

from __future__ import annotations

import posixpath

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline

from pipeline import documents, storage
from pipeline.steps import Step


class ShardReader(Step):
    """Reads the shards of upstream stages; task `rank` takes files `rank::world_size`.

    With as many tasks as input shards (the default), task i reads exactly shard i, so outputs
    line up one to one and do not depend on the number of workers.
    """

    name = "shard reader"

    def __init__(self, input_dirs: list[str], batch_size: int = 1024, columns: list[str] | None = None):
        super().__init__()
        self.input_dirs = list(input_dirs)
        self.batch_size = batch_size
        self.columns = columns

    def files_for(self, rank: int, world_size: int) -> list[str]:
        return storage.list_shards(self.input_dirs)[rank::world_size]

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        for path in self.files_for(rank, world_size):
            with storage.open_file(path, "rb") as f:
                pf = pq.ParquetFile(f)
                for batch in pf.iter_batches(batch_size=self.batch_size, columns=self.columns):
                    for row in batch.to_pylist():
                        doc = documents.from_row(row)
                        self.count_in(doc)
                        yield doc


class ShardWriter(Step):
    """Writes one `part-{rank:05d}.parquet` per task, empty or not, atomically.

    The file is written under a temporary name and renamed when complete, so a task killed
    mid-write leaves no partial shard; its re-run rewrites the same bytes.
    """

    name = "shard writer"

    def __init__(self, output_dir: str, rows_per_group: int = 2048, compression_level: int = 3):
        super().__init__()
        self.output_dir = output_dir
        self.rows_per_group = rows_per_group
        self.compression_level = compression_level

    def path_for(self, rank: int) -> str:
        return storage.join(self.output_dir, f"part-{rank:05d}.parquet")

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        final = self.path_for(rank)
        fs, p = storage.fs_and_path(final)
        fs.makedirs(posixpath.dirname(p), exist_ok=True)
        tmp = p + ".tmp"
        rows: list[dict] = []
        with fs.open(tmp, "wb") as f:
            with pq.ParquetWriter(
                f,
                documents.SCHEMA,
                compression="zstd",
                compression_level=self.compression_level,
                write_statistics=False,
            ) as w:
                for doc in data or ():
                    rows.append(documents.to_row(doc))
                    self.count_kept(doc)
                    if len(rows) >= self.rows_per_group:
                        w.write_table(pa.Table.from_pylist(rows, schema=documents.SCHEMA))
                        rows = []
                    yield doc
                if rows:
                    w.write_table(pa.Table.from_pylist(rows, schema=documents.SCHEMA))
        fs.mv(tmp, p)
