"""Stage kinds `dedup_exact`, `dedup_near` and `dedup_url`: multi-phase, any number of tasks.

Input phases cut the stage's rows into one piece per task (`shards`); keyed phases work on a
fixed number of `partitions` (a recipe key, default 256), whatever the task count, and every
phase writes one file per task (`work`). Documents are addressed by their input position, so
the clusters and the kept set are the same for any task, partition or worker count, on Ray or
locally. Near dedup: signatures -> buckets -> (verify) -> components rounds (`graph`) -> labels
-> clusters -> apply; exact: keys -> groups -> apply (`decide`). Besides the kept documents a stage writes
`clusters.parquet` (id, cluster_id, kept; documents in clusters of two or more; cluster_id
is the kept document's id) and `dedup_stats.json` (clusters, size histogram, duplicate rate).

Levels: `file` (GitHub files) and `repo` (the repository documents of `github_repo_docs`) shingle
code tokens; `page` (web text) shingles case-folded words; `url` keys exact dedup on the URL.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from dedup import decide, graph, steps, work
from dedup.keep import DEFAULT_KEEP, KEEP_RULES
from dedup.keys import NORMALISATIONS
from dedup.minhash import lsh_params
from dedup.shards import Source
from pipeline.fields import Fraction
from pipeline.stage import Phase, StageContext, StageSpec

KeepRule = Literal[KEEP_RULES]  # type: ignore[valid-type]
# the phases after `signatures` run as many tasks as their data needs (up to `tasks`), each a second or more
# of work: a local pool's task costs ~0.5 s to start (measured on real versioned code, benchmarks/RESULTS.md)
BAND_ROWS_PER_TASK = 250_000  # ~5 us a band row
VERIFY_CHECKS_PER_TASK = 100_000  # candidate pairs and big-bucket members: ~20 us a Jaccard check
EDGES_PER_TASK = 4_000_000


def sized(tasks: int, amount: int, per_task: int) -> int:
    return max(1, min(tasks, math.ceil(amount / per_task)))


class _Dedup(StageSpec):
    keep: list[KeepRule] = Field(default_factory=lambda: list(DEFAULT_KEEP), min_length=1)
    stars_field: str = "stars"
    partitions: int = Field(default=256, ge=1, le=1 << 20)

    source: Source | None = None  # set by `codecurate dedup`: parquet files read in place instead of `input`

    def default_tasks(self, ctx: StageContext) -> int:
        return len(self.source.files) if self.source else super().default_tasks(ctx)

    def common(self, ctx: StageContext) -> tuple[int, dict]:
        t = self.tasks or self.default_tasks(ctx)
        return t, dict(input_dirs=ctx.input_dirs, work_dir=ctx.work_dir(), tasks=t, partitions=self.partitions, source=self.source)

    def last_phase(self, ctx: StageContext, t: int, common: dict, reason: str) -> Phase:
        return Phase("apply", [decide.Summary(**common, stage_dir=ctx.stage_dir), decide.ApplyDecisions(**common, reason=reason),
                               ctx.writer()], t)

    @classmethod
    def report_sections(cls, stage_dir: str, stats: dict) -> list[tuple[str, str]]:
        from dedup.report import sections

        return sections(stage_dir)


class DedupExact(_Dedup):
    """Exact dedup by xxh3-128 of the text (optionally whitespace/case-normalised), or by normalised URL."""

    level: Literal["file", "repo", "page", "url"] = "file"
    normalise: list[Literal[NORMALISATIONS]] = []  # type: ignore[valid-type]

    def phases(self, ctx: StageContext):
        t, common = self.common(ctx)
        reason = "duplicate_url" if self.level == "url" else "exact_duplicate"
        yield Phase("keys", [decide.ExactKeys(**common, level=self.level, normalise=self.normalise, stars_field=self.stars_field,
                                              keep=self.keep)], t)
        yield Phase("groups", [decide.ExactGroups(**common, keep=self.keep)], t)
        yield self.last_phase(ctx, t, common, reason)


class DedupUrl(DedupExact):
    """Exact dedup of web pages by normalised URL (`pipeline.web.urls.dedup_key`)."""

    level: Literal["url"] = "url"


class DedupNear(_Dedup):
    """MinHash LSH near-dedup: signatures, band buckets, optional exact-Jaccard check, components.

    `bands` x `rows` default to 14 x 8 of 112 permutations (datatrove/FineWeb); set both to
    null to derive them from `threshold` with datasketch's optimal-parameter method. With `verify`,
    no pair of documents that share a bucket and reach `threshold` is lost (`dedup/big_buckets.py`;
    short of a bucket that spends its bounded checks, counted as `big_bucket_unchecked_members`).
    `clusters`: `centres` (the default for code, `file`/`repo` with `verify`: each connected component
    of the verified pairs split so that every removed document reaches `threshold` with its kept one; on
    versioned code components chain releases, precision against exact Jaccard ~0.67, centres ~1.0) or
    `components` (whole components: the default for `page`, as in FineWeb, and without `verify`, which
    centres need).
    """

    level: Literal["file", "repo", "page"] = Field(default="file", description="file/repo: code tokens; page: words")
    tokenizer: Literal["code", "words"] | None = None  # default: code for file/repo, words for page
    ngram: int = Field(default=5, ge=1, description="tokens per shingle")
    num_perm: int = Field(default=112, ge=1, le=1024, description="MinHash permutations")
    bands: int | None = Field(default=14, ge=1, description="LSH bands (with rows; both unset with another num_perm: from the threshold)")
    rows: int | None = Field(default=8, ge=1, description="rows per LSH band")
    threshold: Fraction = Field(default=0.7, description="Jaccard similarity of duplicates")
    verify: bool = Field(default=True, description="check candidate pairs' exact Jaccard")
    clusters: Literal["components", "centres"] | None = Field(
        default=None, description="centres (default for file/repo with verify): every removed document reaches the threshold "
                                  "with its kept one; components: whole connected components (default for page or without verify)")
    minhash_seed: int = 1

    @model_validator(mode="after")
    def _check_bands(self):
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither (to derive them from threshold)")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        if self.clusters == "centres" and not self.verify:
            raise ValueError("clusters: centres needs verify: true (it reads the verified shingle sets)")
        if self.clusters is None:
            self.clusters = "centres" if self.verify and self.level != "page" else "components"
        return self

    def lsh(self) -> tuple[int, int]:
        if self.bands is not None:
            return self.bands, self.rows
        return lsh_params(self.threshold, self.num_perm)

    def phases(self, ctx: StageContext):
        """Generated one at a time: the graph phases' task counts and rounds depend on what came before."""
        t, common = self.common(ctx)
        w = ctx.work_dir()
        tok = self.tokenizer or ("words" if self.level == "page" else "code")
        bands, rows = self.lsh()
        yield Phase("signatures", [steps.Signatures(
            **common, ngram=self.ngram, tokenizer=tok, num_perm=self.num_perm, seed=self.minhash_seed,
            bands=bands, rows=rows, stars_field=self.stars_field, sets=self.verify,
        )], t)
        band_rows = work.read_counts(ctx.work_dir("counts")).get("band_rows", 0)
        yield Phase("buckets", [steps.Buckets(**common, all_pairs=self.verify)], sized(t, band_rows, BAND_ROWS_PER_TASK))
        counts = work.read_counts(ctx.work_dir("edge_counts"))
        edges = counts.get("edges", 0)
        if self.verify:
            checks = edges + counts.get("big_rows", 0)
            yield Phase("verify", [steps.Verify(**common, threshold=self.threshold)], sized(t, checks, VERIFY_CHECKS_PER_TASK))
            edges = work.read_counts(ctx.work_dir("verified_counts")).get("edges", 0)
        g = sized(t, 2 * edges, EDGES_PER_TASK)
        k = 1
        while True:
            yield Phase(f"components-{k}", [graph.StarRound(**common, round=k)], g)
            if graph.converged(w, k):
                break
            k += 1
            if k > graph.MAX_ROUNDS:
                raise RuntimeError(f"connected components did not converge in {graph.MAX_ROUNDS} rounds")
        yield Phase("labels", [graph.Label(**common, round=k)], g)
        yield Phase("clusters", [decide.Decide(**common, keep=self.keep, centres=self.clusters == "centres", threshold=self.threshold)], g)
        yield self.last_phase(ctx, t, common, "near_duplicate")
