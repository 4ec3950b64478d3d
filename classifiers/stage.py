"""The `recall` stage kind: the iterative fastText recall loop over the pages of its input stages."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from classifiers.loop import LoopConfig
from classifiers.settings import FastTextKeys, LoopKeys, TargetConfig
from classifiers.steps import PoolReader, RoundTask, ScoreFileWriter, ScorePages
from pipeline import storage
from pipeline.fields import InputPath
from pipeline.stage import Phase, StageContext, StageSpec


class RecallTarget(TargetConfig):
    """What one classifier looks for (e.g. code or math pages); seeds are checked when the recipe loads."""

    seeds: list[InputPath] = []

    @model_validator(mode="after")
    def _some_seed(self):
        if not self.seeds and not self.seed_prefixes:
            raise ValueError("a target needs seeds (parquet/jsonl pages, .txt URL- or repo-prefix lists) or seed_prefixes")
        return self


class Recall(StageSpec, LoopKeys, FastTextKeys):
    """Train fastText on seeds, recall pages from the pool, find related domains and URL prefixes,
    grow the seed from the (user- or auto-) accepted prefixes, and repeat for `rounds` rounds.

    The output is the input pages with `metadata["scores"][target]` from the last round's models
    (`output: recalled` keeps only pages some target recalls). `group_by: repo` runs the loop over
    GitHub files: each repository counts as a domain and its directories (`owner/name/src/`) as prefixes.
    """

    # besides the loop's keys (`LoopKeys`) and fastText's (`FastTextKeys`, see README "recall"): lr/epoch
    # unset = chosen on a validation split of the seed; DeepSeekMath used dim 256, lr 0.1, word_ngrams 3,
    # min_count 3, epoch 3, bucket 2M (~2 GiB a model)
    targets: dict[str, RecallTarget] = Field(min_length=1)
    rounds: int = Field(default=2, ge=1, le=50)
    output: Literal["all", "recalled"] = "all"

    @model_validator(mode="after")
    def _target_names(self):
        bad = [t for t in self.targets if not t.replace("_", "").isalnum()]
        if bad:
            raise ValueError(f"target names must be letters, digits or _, got {bad}")
        return self

    def loop_config(self, ctx: StageContext) -> LoopConfig:
        return LoopConfig(
            **self.model_dump(include=set(LoopKeys.model_fields)),
            stage_dir=ctx.stage_dir,
            pool_dirs=list(ctx.input_dirs),
            targets={t: v.model_dump() for t, v in self.targets.items()},
            hyper={**self.model_dump(include=set(FastTextKeys.model_fields)), "seed": ctx.stage_seed},
            seed=ctx.stage_seed,
        )

    def phases(self, ctx: StageContext) -> list[Phase]:
        cfg = self.loop_config(ctx)
        args = cfg.model_dump()
        tasks = self.tasks or self.default_tasks(ctx)
        out: list[Phase] = []
        for k in range(1, self.rounds + 1):
            models = {t: cfg.model_dir(k, t) for t in cfg.names}
            budgets = {t: v.token_budget for t, v in self.targets.items() if v.token_budget is not None}
            out += [
                Phase(f"round{k}_sample", [RoundTask("sample", args, k)], tasks),
                Phase(f"round{k}_train", [RoundTask("train", args, k)], 1),
                Phase(f"round{k}_score", [PoolReader(ctx.input_dirs), ScorePages(models, count_tokens=True),
                                          ScoreFileWriter(cfg.scores_dir(k), cfg.names, budgets, cfg.top_dir(k))], tasks),
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
