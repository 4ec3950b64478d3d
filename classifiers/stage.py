"""The `recall` stage kind: the iterative fastText recall loop over the pages of its input stages."""

from __future__ import annotations

from dataclasses import asdict
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from classifiers.loop import LoopConfig
from classifiers.steps import PoolReader, RoundTask, ScoreFileWriter, ScorePages
from classifiers.tokens import TOKENIZERS
from pipeline import storage
from pipeline.recipe import Fraction, InputPath
from pipeline.stage import Phase, StageContext, StageSpec


class RecallTarget(BaseModel):
    """What one classifier looks for (e.g. code or math pages)."""

    model_config = ConfigDict(extra="forbid")

    seeds: list[InputPath] = []
    seed_prefixes: list[str] = []
    threshold: Fraction = 0.5
    token_budget: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _some_seed(self):
        if not self.seeds and not self.seed_prefixes:
            raise ValueError("a target needs seeds (parquet/jsonl pages, .txt URL- or repo-prefix lists) or seed_prefixes")
        return self


class Recall(StageSpec):
    """Train fastText on seeds, recall pages from the pool, find related domains and URL prefixes,
    grow the seed from the (user- or auto-) accepted prefixes, and repeat for `rounds` rounds.

    The output is the input pages with `metadata["scores"][target]` from the last round's models
    (`output: recalled` keeps only pages some target recalls). `group_by: repo` runs the loop over
    GitHub files: each repository counts as a domain and its directories (`owner/name/src/`) as prefixes.
    """

    targets: dict[str, RecallTarget] = Field(min_length=1)
    rounds: int = Field(default=2, ge=1, le=50)
    auto_annotate: bool = False
    tokenizer: Literal[TOKENIZERS] = "deepseek"  # type: ignore[valid-type]
    # fastText (see README "recall"): lr/epoch unset = chosen on a validation split of the seed;
    # DeepSeekMath used dim 256, lr 0.1, word_ngrams 3, min_count 3, epoch 3, bucket 2M (~2 GiB a model)
    dim: int = Field(default=64, ge=1)
    lr: float | None = Field(default=None, gt=0)
    word_ngrams: int = Field(default=2, ge=1)
    min_count: int = Field(default=1, ge=1)
    epoch: int | None = Field(default=None, ge=1)
    bucket: int = Field(default=200_000, ge=1)
    window: int = Field(default=256, ge=8)
    windows_per_page: int = Field(default=8, ge=1)
    negatives_per_positive: float = Field(default=1.0, gt=0)
    min_negatives: int = Field(default=300, ge=1)
    max_negative_share: Fraction = Field(default=0.25, gt=0)
    max_negatives: int = Field(default=500_000, ge=1)
    max_positives: int = Field(default=500_000, ge=1)
    partitions: int = Field(default=64, ge=1, le=1 << 20)
    heldout: Fraction = Field(default=0.2, gt=0, lt=1)
    min_auc: Fraction = 0.7
    min_recall: Fraction = 0.5
    domain_threshold: Fraction = 0.1
    accept_threshold: Fraction = 0.7
    confident_score: Fraction = 0.8
    min_seed_agreement: Fraction = 0.8
    prefix_depth: int = Field(default=3, ge=1, le=3)
    min_prefix_pages: int = Field(default=5, ge=1)
    output: Literal["all", "recalled"] = "all"
    group_by: Literal["url", "repo"] = "url"

    @model_validator(mode="after")
    def _target_names(self):
        bad = [t for t in self.targets if not t.replace("_", "").isalnum()]
        if bad:
            raise ValueError(f"target names must be letters, digits or _, got {bad}")
        return self

    def loop_config(self, ctx: StageContext) -> LoopConfig:
        return LoopConfig(
            stage_dir=ctx.stage_dir,
            pool_dirs=list(ctx.input_dirs),
            targets={t: v.model_dump() for t, v in self.targets.items()},
            tokenizer=self.tokenizer,
            hyper={"dim": self.dim, "lr": self.lr, "word_ngrams": self.word_ngrams, "min_count": self.min_count,
                   "epoch": self.epoch, "bucket": self.bucket, "seed": ctx.stage_seed, "window": self.window,
                   "windows_per_page": self.windows_per_page},
            seed=ctx.stage_seed,
            negatives_per_positive=self.negatives_per_positive,
            min_negatives=self.min_negatives,
            max_negative_share=self.max_negative_share,
            max_negatives=self.max_negatives,
            max_positives=self.max_positives,
            partitions=self.partitions,
            heldout=self.heldout,
            min_auc=self.min_auc,
            min_recall=self.min_recall,
            domain_threshold=self.domain_threshold,
            accept_threshold=self.accept_threshold,
            confident_score=self.confident_score,
            min_seed_agreement=self.min_seed_agreement,
            prefix_depth=self.prefix_depth,
            min_prefix_pages=self.min_prefix_pages,
            auto_annotate=self.auto_annotate,
            group_by=self.group_by,
        )

    def phases(self, ctx: StageContext) -> list[Phase]:
        cfg = self.loop_config(ctx)
        args = asdict(cfg)
        tasks = self.tasks or self.default_tasks(ctx)
        out: list[Phase] = []
        for k in range(1, self.rounds + 1):
            models = {t: cfg.model_dir(k, t) for t in cfg.names}
            budgets = {t: v.token_budget for t, v in self.targets.items() if v.token_budget is not None}
            out += [
                Phase(f"round{k}_sample", [RoundTask("sample", args, k)], tasks),
                Phase(f"round{k}_train", [RoundTask("train", args, k)], 1),
                Phase(f"round{k}_score", [PoolReader(ctx.input_dirs), ScorePages(models), ScoreFileWriter(cfg.scores_dir(k), cfg.names, budgets, cfg.top_dir(k))], tasks),
                Phase(f"round{k}_cutoffs", [RoundTask("cutoffs", args, k)], 1),
                Phase(f"round{k}_route", [RoundTask("route", args, k)], tasks),
                Phase(f"round{k}_group", [RoundTask("group", args, k)], min(tasks, cfg.partitions)),
                Phase(f"round{k}_analyze", [RoundTask("analyze", args, k)], 1),
            ]
        last = self.rounds
        final = ScorePages(
            {t: cfg.model_dir(last, t) for t in cfg.names},
            keep=self.output,
            cutoffs=storage.join(cfg.round_dir(last), "cutoffs.json"),
        )
        # named for the round count, so continuing the loop with more rounds rewrites the output
        out.append(Phase(f"output_after_round{last}", [ctx.reader(), final, ctx.writer()], tasks))
        return out

    @classmethod
    def report_sections(cls, stage_dir: str, stats: dict) -> list[tuple[str, str]]:
        from classifiers.report import report_sections

        return report_sections(stage_dir)
