"""Recipe stage kinds of the GitHub crawl: `github_files`, `github_filter`, `github_repo_docs`."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline import storage
from pipeline.fields import Fraction, InputPath
from pipeline.github.clone import CloneOptions
from pipeline.github.rules import Thresholds
from pipeline.stage import Phase, StageContext, StageSpec


class DatasetColumns(BaseModel):
    """Column names of a file-level dataset (The Stack: content, max_stars_repo_path, ...)."""

    model_config = ConfigDict(extra="forbid")
    content: str = "content"
    path: str = "path"
    repo: str = "repo"
    stars: str | None = None
    license: str | None = None


class GithubFiles(StageSpec):
    """One document per file of local repositories (`paths`), archives, clones of a discovered
    repo list, and file-level datasets; exclusions and oversized files dropped with reasons."""

    needs_input = False
    paths: list[InputPath] = []
    layout: Literal["repo", "parent"] = "parent"
    archives: list[InputPath] = []
    datasets: list[InputPath] = []
    dataset_columns: DatasetColumns = DatasetColumns()
    repo_list: InputPath | None = None
    clone_dir: str | None = None
    clone: CloneOptions = CloneOptions()
    max_bytes: int = Field(default=1_000_000, ge=1)
    unknown_language: Literal["keep", "drop"] = "keep"  # files outside DeepSeek-Coder's language list
    source: str = "github"

    @model_validator(mode="after")
    def _some_source(self):
        if not (self.paths or self.archives or self.datasets or self.repo_list):
            raise ValueError("give at least one of paths, archives, datasets, repo_list")
        if self.repo_list and not self.clone_dir:
            raise ValueError("repo_list needs clone_dir (where clones are kept)")
        return self

    def units(self):
        from pipeline.github.reader import Unit
        from pipeline.github.search import RepoListError, read_repo_list

        units: list[Unit] = []
        for p in self.paths:
            if self.layout == "repo":
                units.append(Unit("dir", p.rstrip("/")))
            elif storage.is_remote(p):
                units += [Unit("dir", storage.join(p, d)) for d in storage.ls(p) if storage.isdir(storage.join(p, d))]
            else:
                units += [Unit("dir", os.path.join(p, d)) for d in sorted(os.listdir(p)) if os.path.isdir(os.path.join(p, d))]
        units += [Unit("archive", a) for a in storage.expand(self.archives, "archive")]
        if self.repo_list:
            try:
                rows = read_repo_list(self.repo_list)
            except RepoListError as e:
                from pipeline.runner import RunError

                raise RunError(f"stages.{self.name}.repo_list: {e}") from None
            for r in rows:
                units.append(Unit("clone", r["full_name"], r["clone_url"], r.get("default_branch"), r.get("stars"),
                                  r.get("license"), r.get("size_kb")))
        return units

    def default_tasks(self, ctx: StageContext) -> int:
        from pipeline.github.sources import dataset_pieces

        return max(1, min(64, max(len(self.units()), len(dataset_pieces(storage.expand(self.datasets, "dataset file"))))))

    def build(self, ctx: StageContext):
        from pipeline.github.reader import RepoFileReader
        from pipeline.github.sources import column_problem, dataset_pieces
        from pipeline.runner import RunError

        datasets = storage.expand(self.datasets, "dataset file")
        wanted = sorted({col for col in self.dataset_columns.model_dump().values() if col})
        for path in datasets:  # a file without a named column is a mistake in the recipe or the data: one line
            if why := column_problem(path, wanted):
                raise RunError(f"stages.{self.name}.datasets: {why}")
        return [RepoFileReader(self.units(), dataset_pieces(datasets), self.dataset_columns.model_dump(), self.max_bytes,
                               self.source, self.clone_dir, self.clone, self.unknown_language == "keep")]


class GithubFilter(StageSpec, Thresholds):
    """DeepSeek-Coder's file filters (the thresholds, `rules.Thresholds`, are the paper's) and the syntax signal."""

    model_config = ConfigDict(extra="forbid", frozen=False)
    syntax_signal: bool = True
    max_syntax_error_ratio: Fraction | None = None

    def build(self, ctx: StageContext):
        from pipeline.github.filters import DeepSeekCoderFilter

        t = Thresholds(**self.model_dump(include=set(Thresholds.model_fields)))
        return [DeepSeekCoderFilter(t, self.syntax_signal, self.max_syntax_error_ratio)]

    @classmethod
    def report_sections(cls, stage_dir: str, stats: dict) -> list[tuple[str, str]]:
        from pipeline.github.report import syntax_section

        return syntax_section(stage_dir)


class GithubRepoDocs(StageSpec):
    """One document per repository (or per repository and language), files in dependency order.

    A repository's files may sit in several input shards (a dataset is read by row groups), so the stage
    shuffles first: `route` writes each input shard's rows ordered by the partition of their repository
    (one file and one index per task), then partition task p reads its rows from every routed file and
    builds the documents. `tasks` is the number of partitions (default: one per input shard)."""

    group_by: Literal["repo", "language"] = "repo"
    min_files: int = Field(default=1, ge=1)

    def phases(self, ctx: StageContext) -> list[Phase]:
        from pipeline.github.repo_docs import RepoDocuments
        from pipeline.shuffle import PartitionReader, RouteByKey

        shards = ctx.input_files
        parts = self.tasks or max(1, len(shards))
        route = ctx.work_dir("route")
        return [Phase("route", [RouteByKey(shards, route, parts, "repo")], max(1, len(shards))),
                Phase("main", [PartitionReader(route, max(1, len(shards))), RepoDocuments(self.group_by, self.min_files),
                               ctx.writer()], parts)]

    @classmethod
    def report_sections(cls, stage_dir: str, stats: dict) -> list[tuple[str, str]]:
        from pipeline.github.report import repo_docs_section

        return repo_docs_section(stage_dir)
