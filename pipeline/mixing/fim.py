"""The `fim` stage: fill-in-the-middle per document before packing (the format: `tokenizer/fim.py`).

Which documents are transformed depends only on the stage seed and the document id, never on
how work is split into tasks; `metadata["fim"]` records the mode and piece lengths, so the shards
stage puts in the sentinel ids and the original text can be restored exactly.
"""

from __future__ import annotations

from typing import Literal

from datatrove.data import Document, DocumentsPipeline
from pydantic import Field

from pipeline.fields import Fraction
from pipeline.mixing import category
from pipeline.stage import StageContext, StageSpec
from pipeline.steps import Step
from tokenizer import fim


def fim_step_stats(stats: dict) -> dict:
    """The FIM step's counters in a stage's `_stats.json` (steps are keyed "<type>: <name>")."""
    for name, s in stats.get("steps", {}).items():
        if name.split(": ")[-1] == FimTransform.name:
            return s
    return {}


class FimTransform(Step):
    """Rewrites a seeded random share of eligible documents into PSM or SPM form."""

    name = "fim"

    def __init__(self, rate: float, mode: str, spm_rate: float, unit: str, categories: list[str] | None, seed: int):
        super().__init__()
        self.rate, self.mode, self.spm_rate, self.unit = rate, mode, spm_rate, unit
        self.categories = set(categories) if categories is not None else None
        self.seed = seed

    def eligible(self, doc: Document) -> bool:
        if "fim" in doc.metadata:
            return False
        return self.categories is None or category.of(doc.metadata) in self.categories

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            if not self.eligible(doc):
                yield doc
                continue
            self.stat_update("fim/eligible")
            rng = fim.doc_rng(self.seed, str(doc.id))
            if rng.random() >= self.rate:
                yield doc
                continue
            mode = self.mode if self.mode != "mix" else ("spm" if rng.random() < self.spm_rate else "psm")
            doc.text, doc.metadata["fim"] = fim.apply(doc.text, rng, mode, self.unit)
            self.stat_update("fim/applied")
            self.stat_update(f"fim/{mode}")
            yield doc


class Fim(StageSpec):
    """FIM per document before packing; `categories: null` applies it to every document."""

    rate: Fraction = 0.5
    mode: Literal["psm", "spm", "mix"] = "psm"
    spm_rate: Fraction = Field(default=0.5, description="share of SPM among FIM documents when mode is mix")
    unit: Literal["char", "line"] = "char"
    categories: list[str] | None = ["code"]  # by metadata["category"] (written by mix); null: every document

    def build(self, ctx: StageContext):
        return [FimTransform(self.rate, self.mode, self.spm_rate, self.unit, self.categories, ctx.stage_seed)]

    def provenance(self, stage_dir: str, stats: dict) -> dict:
        s = fim_step_stats(stats)
        elig, applied = int(s.get("fim/eligible", 0)), int(s.get("fim/applied", 0))
        return {"fim": {"stage": self.name, "rate_target": self.rate, "mode": self.mode, "eligible": elig, "applied": applied,
                        "rate": applied / elig if elig else 0.0}}

    @classmethod
    def report_sections(cls, stage_dir: str, stats: dict) -> list[tuple[str, str]]:
        s = fim_step_stats(stats)
        elig, applied = s.get("fim/eligible", 0), s.get("fim/applied", 0)
        rate = applied / elig if elig else 0.0
        return [("FIM", f"<p>{int(applied)} of {int(elig)} eligible documents transformed: achieved rate {rate:.4f} "
                        f"(PSM {int(s.get('fim/psm', 0))}, SPM {int(s.get('fim/spm', 0))}).</p>")]
