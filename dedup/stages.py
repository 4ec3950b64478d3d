"""Stage kinds `dedup_exact`, `dedup_near` and `dedup_url`: multi-phase, any number of tasks.

Every phase splits its work by task rank over input shards or key partitions, and documents
are addressed by their input position, so the clusters and the kept set are the same for
any task or worker count, on Ray or locally. Besides the kept documents a stage writes
`clusters.parquet` (id, cluster_id, kept; documents in clusters of two or more; cluster_id
is the kept document's id) and `dedup_stats.json` (clusters, size histogram, duplicate rate).

Levels: `file` (GitHub files) and `repo` (the repository documents of `github_repo_docs`) shingle
code tokens; `page` (web text) shingles case-folded words; `url` keys exact dedup on the URL.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from dedup import steps
from dedup.keep import DEFAULT_KEEP, KEEP_RULES
from dedup.keys import NORMALISATIONS
from dedup.minhash import lsh_params
from pipeline.recipe import Fraction
from pipeline.stage import Phase, StageContext, StageSpec

KeepRule = Literal[KEEP_RULES]  # type: ignore[valid-type]


class _Dedup(StageSpec):
    keep: list[KeepRule] = Field(default_factory=lambda: list(DEFAULT_KEEP), min_length=1)
    stars_field: str = "stars"

    @classmethod
    def report_sections(cls, stage_dir: str, stats: dict) -> list[tuple[str, str]]:
        from dedup.report import sections

        return sections(stage_dir)


class DedupExact(_Dedup):
    """Exact dedup by xxh3-128 of the text (optionally whitespace/case-normalised), or by normalised URL."""

    level: Literal["file", "repo", "page", "url"] = "file"
    normalise: list[Literal[NORMALISATIONS]] = []  # type: ignore[valid-type]

    def phases(self, ctx: StageContext) -> list[Phase]:
        t = self.tasks or self.default_tasks(ctx)
        w = ctx.work_dir()
        common = dict(input_dirs=ctx.input_dirs, work_dir=w)
        reason = "duplicate_url" if self.level == "url" else "exact_duplicate"
        return [
            Phase("keys", [steps.ExactKeys(**common, level=self.level, normalise=self.normalise, partitions=t, stars_field=self.stars_field)], t),
            Phase("groups", [steps.ExactGroups(**common, keep=self.keep)], t),
            Phase("summary", [steps.Summary(**common, stage_dir=ctx.stage_dir, partitions=t)], 1),
            Phase("apply", [steps.ApplyDecisions(**common, reason=reason), ctx.writer()], t),
        ]


class DedupUrl(DedupExact):
    """Exact dedup of web pages by normalised URL (lower-cased host, no fragment or default port)."""

    level: Literal["url"] = "url"


class DedupNear(_Dedup):
    """MinHash LSH near-dedup: signatures, band buckets, optional exact-Jaccard check, components.

    `bands` x `rows` default to 14 x 8 of 112 permutations (datatrove/FineWeb); set both to
    null to derive them from `threshold` with datasketch's optimal-parameter method. With `verify`,
    no pair of documents that share a bucket and reach `threshold` is lost (`dedup/big_buckets.py`;
    short of a bucket that spends its bounded checks, counted as `big_bucket_unchecked_members`).
    """

    level: Literal["file", "repo", "page"] = "file"
    tokenizer: Literal["code", "words"] | None = None  # default: code for file/repo, words for page
    ngram: int = Field(default=5, ge=1)
    num_perm: int = Field(default=112, ge=1, le=1024)
    bands: int | None = Field(default=14, ge=1)
    rows: int | None = Field(default=8, ge=1)
    threshold: Fraction = 0.7
    verify: bool = True
    minhash_seed: int = 1

    @model_validator(mode="after")
    def _check_bands(self):
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither (to derive them from threshold)")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self

    def lsh(self) -> tuple[int, int]:
        if self.bands is not None:
            return self.bands, self.rows
        return lsh_params(self.threshold, self.num_perm)

    def phases(self, ctx: StageContext) -> list[Phase]:
        t = self.tasks or self.default_tasks(ctx)
        w = ctx.work_dir()
        common = dict(input_dirs=ctx.input_dirs, work_dir=w)
        tok = self.tokenizer or ("words" if self.level == "page" else "code")
        bands, rows = self.lsh()
        sig = steps.Signatures(
            **common, ngram=self.ngram, tokenizer=tok, num_perm=self.num_perm, seed=self.minhash_seed,
            bands=bands, rows=rows, partitions=t, stars_field=self.stars_field,
        )
        out = [Phase("signatures", [sig], t), Phase("buckets", [steps.Buckets(**common, all_pairs=self.verify)], t)]
        if self.verify:
            out.append(Phase("verify", [steps.Verify(**common, threshold=self.threshold, ngram=self.ngram, tokenizer=tok)], t))
        out += [
            Phase("clusters", [steps.Components(**common, stage_dir=ctx.stage_dir, verified=self.verify, keep=self.keep)], 1),
            Phase("apply", [steps.ApplyDecisions(**common, reason="near_duplicate"), ctx.writer()], t),
        ]
        return out
