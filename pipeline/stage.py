"""What a stage kind is: a pydantic model of its recipe keys that builds datatrove steps.

A recipe stage names a `kind`; the kind's class (see `pipeline.registry`) validates the
stage's keys (unknown keys are errors) and turns them into one or more phases. Each phase is
a list of `PipelineStep`s that an executor runs over `tasks` tasks. A plain stage has one
phase: the runner reads the upstream shards, runs `build()`'s steps, and writes
`part-NNNNN.parquet`, one shard per task, so downstream stages get one input file per task.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from datatrove.pipeline.base import PipelineStep
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline import storage


@dataclass
class Phase:
    """One executor run inside a stage. Phases run in order; each has its own completion markers."""

    name: str
    steps: list[PipelineStep]
    tasks: int


@dataclass
class StageContext:
    run_dir: str
    stage: str
    seed: int
    input_dirs: list[str] = field(default_factory=list)
    recipe_dir: str = "."
    max_shard_bytes: int | None = None

    @property
    def stage_dir(self) -> str:
        return storage.join(self.run_dir, self.stage)

    def work_dir(self, *parts: str) -> str:
        """Scratch space for intermediate phases (kept for resume, under `<stage>/_work/`)."""
        return storage.join(self.stage_dir, "_work", *parts)

    @property
    def input_files(self) -> list[str]:
        return storage.list_shards(self.input_dirs)

    @property
    def stage_seed(self) -> int:
        """A seed that differs per stage but is fixed by the recipe seed and stage name."""
        h = hashlib.sha256(f"{self.seed}:{self.stage}".encode()).digest()
        return int.from_bytes(h[:4], "little")

    def reader(self, **kw: Any) -> PipelineStep:
        from pipeline.io import ShardReader

        return ShardReader(self.input_dirs, **kw)

    def split_reader(self, tasks: int, **kw: Any) -> PipelineStep:
        """A reader for `tasks` tasks: whole shards when there are at least as many shards as tasks,
        else row-group ranges, so one large input shard still spreads over every task."""
        from pipeline.io import ShardReader, split_row_groups

        files = self.input_files
        if tasks <= len(files):
            return ShardReader(self.input_dirs, **kw)
        return ShardReader(self.input_dirs, ranges=split_row_groups(files, tasks), **kw)

    def writer(self, output_dir: str | None = None) -> PipelineStep:
        from pipeline.io import ShardWriter

        return ShardWriter(output_dir or self.stage_dir, max_bytes=self.max_shard_bytes)


PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class StageSpec(BaseModel):
    """Keys every stage has. Subclasses add their own, with defaults and constraints."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str
    input: str | list[str] | None = None
    tasks: int | None = Field(default=None, ge=1)

    # whether the stage needs upstream input (False for ingest stages)
    needs_input: ClassVar[bool] = True

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        """A stage name is a directory under run_dir: `..` or `a/b` would put it (and `--fresh`) elsewhere."""
        if not PLAIN_NAME.fullmatch(v):
            raise ValueError(f"a stage name is a plain name (letters, digits, _ . -, not starting with '.'), got {v!r}")
        return v

    @property
    def inputs(self) -> list[str]:
        if self.input is None:
            return []
        return [self.input] if isinstance(self.input, str) else list(self.input)

    def build(self, ctx: StageContext) -> list[PipelineStep]:
        """The steps between the reader and the writer (or the source steps of an ingest stage)."""
        return []

    def default_tasks(self, ctx: StageContext) -> int:
        return max(1, len(ctx.input_files)) if self.inputs else 1

    def phases(self, ctx: StageContext) -> list[Phase]:
        tasks = self.tasks or self.default_tasks(ctx)
        head = [ctx.split_reader(tasks)] if self.inputs else []
        return [Phase("main", head + self.build(ctx) + [ctx.writer()], tasks)]

    def provenance(self, stage_dir: str, stats: dict) -> dict:
        """What this stage tells the manifest of shards built downstream ({key: value}), from its own files:
        the shards never read another kind's private stats. Sections of several stages are merged (numbers
        added, lists joined, mappings merged key by key). Nothing by default."""
        return {}

    @classmethod
    def report_sections(cls, stage_dir: str, stats: dict) -> list[tuple[str, str]]:
        """Extra (title, html) sections for `codecurate report`; figures as embedded PNGs."""
        return []

    @classmethod
    def warnings(cls, stage_dir: str) -> list[str]:
        """One-line warnings read from the stage's outputs once it completed. The runner (the driver, not
        a task) puts them in `_stats.json` and on the console, so they reach the user on any executor."""
        return []
