"""The base of every dedup phase step: the stage's input cut into pieces, and its work directory."""

from __future__ import annotations

import pyarrow as pa

from dedup import work
from dedup.shards import ShardInput
from pipeline import storage
from pipeline.steps import Step


class WorkStep(Step):
    """A step that reads its own inputs and writes intermediate files; it yields no documents.

    `tasks` is the stage's task count, which cuts the input into pieces (`shards.ShardInput`);
    `partitions` splits keyed data, independently of it.
    """

    def __init__(self, input_dirs: list[str], work_dir: str, *, tasks: int, partitions: int, source=None):
        super().__init__()
        self.input = ShardInput(input_dirs, tasks, source)
        self.work_dir, self.partitions = work_dir, partitions

    def path(self, *parts: str) -> str:
        return storage.join(self.work_dir, *parts)

    def parts(self, name: str, schema: pa.Schema) -> work.PartReader:
        return work.PartReader(work.glob(self.path(name), "t*.parquet"), schema)
