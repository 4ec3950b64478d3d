"""Fill-in-the-middle (FIM) transformation, as DeepSeek-Coder trained it: PSM at rate 0.5.

A selected document is cut into prefix / middle / suffix at two random points and rewritten

    PSM: <｜fim▁begin｜> prefix <｜fim▁hole｜> suffix <｜fim▁end｜> middle
    SPM: <｜fim▁begin｜><｜fim▁hole｜> suffix <｜fim▁end｜> prefix middle

(the tokenized shards append EOS to every document). The cut is per character (default) or at
line boundaries. `metadata["fim"]` records the mode and the piece lengths in characters, so the
shards stage encodes the pieces separately and puts in the sentinel ids, and `restore()` gets the
original back exactly. Which documents are transformed depends only on the stage seed and the
document id, never on how work is split into tasks.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Literal

from datatrove.data import Document, DocumentsPipeline
from pydantic import Field

from pipeline.recipe import Fraction
from pipeline.mixing.mix import categorize
from pipeline.stage import StageContext, StageSpec
from pipeline.steps import Step
from tokenizer import FIM_BEGIN_TOKEN, FIM_END_TOKEN, FIM_HOLE_TOKEN


_NEWLINE = re.compile("\n")


def doc_rng(seed: int, doc_id: str) -> random.Random:
    h = hashlib.blake2b(f"{seed}\x00{doc_id}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(h, "little"))


def split_points(text: str, rng: random.Random, unit: str) -> tuple[int, int]:
    """Two cut positions 0 <= a <= b <= len(text), uniform over characters or line starts."""
    if unit == "line":
        starts = [0] + [m.end() for m in _NEWLINE.finditer(text) if m.end() < len(text)] + [len(text)]
        a, b = sorted(rng.choice(starts) for _ in range(2))
    else:
        a, b = sorted(rng.randint(0, len(text)) for _ in range(2))
    return a, b


def fim_text(prefix: str, middle: str, suffix: str, mode: str) -> str:
    if mode == "psm":
        return FIM_BEGIN_TOKEN + prefix + FIM_HOLE_TOKEN + suffix + FIM_END_TOKEN + middle
    return FIM_BEGIN_TOKEN + FIM_HOLE_TOKEN + suffix + FIM_END_TOKEN + prefix + middle


def pieces(doc: Document) -> list[tuple[str, str]]:
    """A FIM document as [(kind, text)] where kind is 'sentinel' or 'text', in order."""
    f = doc.metadata["fim"]
    p, m, s = f["prefix"], f["middle"], f["suffix"]
    t = doc.text
    if f["mode"] == "psm":
        o = len(FIM_BEGIN_TOKEN)
        pre = t[o:o + p]
        o += p + len(FIM_HOLE_TOKEN)
        suf = t[o:o + s]
        o += s + len(FIM_END_TOKEN)
        return [("sentinel", FIM_BEGIN_TOKEN), ("text", pre), ("sentinel", FIM_HOLE_TOKEN), ("text", suf),
                ("sentinel", FIM_END_TOKEN), ("text", t[o:o + m])]
    o = len(FIM_BEGIN_TOKEN) + len(FIM_HOLE_TOKEN)
    suf = t[o:o + s]
    o += s + len(FIM_END_TOKEN)
    return [("sentinel", FIM_BEGIN_TOKEN), ("sentinel", FIM_HOLE_TOKEN), ("text", suf),
            ("sentinel", FIM_END_TOKEN), ("text", t[o:o + p]), ("text", t[o + p:o + p + m])]


def restore(doc: Document) -> str:
    """The original text of a FIM document (or the text itself if it is not one)."""
    if "fim" not in doc.metadata:
        return doc.text
    parts = [t for k, t in pieces(doc) if k == "text"]
    if doc.metadata["fim"]["mode"] == "psm":
        pre, suf, mid = parts
    else:
        suf, pre, mid = parts
    return pre + mid + suf


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
        return self.categories is None or categorize(doc.metadata) in self.categories

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            if not self.eligible(doc):
                yield doc
                continue
            self.stat_update("fim/eligible")
            rng = doc_rng(self.seed, str(doc.id))
            if rng.random() >= self.rate:
                yield doc
                continue
            mode = self.mode if self.mode != "mix" else ("spm" if rng.random() < self.spm_rate else "psm")
            a, b = split_points(doc.text, rng, self.unit)
            pre, mid, suf = doc.text[:a], doc.text[a:b], doc.text[b:]
            doc.text = fim_text(pre, mid, suf, mode)
            doc.metadata["fim"] = {"mode": mode, "unit": self.unit, "prefix": len(pre), "middle": len(mid), "suffix": len(suf)}
            self.stat_update("fim/applied")
            self.stat_update(f"fim/{mode}")
            yield doc


class Fim(StageSpec):
    """FIM per document before packing; `categories: null` applies it to every document."""

    rate: Fraction = 0.5
    mode: Literal["psm", "spm", "mix"] = "psm"
    spm_rate: Fraction = Field(default=0.5, description="share of SPM among FIM documents when mode is mix")
    unit: Literal["char", "line"] = "char"
    categories: list[str] | None = ["code"]  # by metadata["category"], else the mixer's rule

    def build(self, ctx: StageContext):
        return [FimTransform(self.rate, self.mode, self.spm_rate, self.unit, self.categories, ctx.stage_seed)]

    @classmethod
    def report_sections(cls, stage_dir: str, stats: dict) -> list[tuple[str, str]]:
        s = fim_step_stats(stats)
        elig, applied = s.get("fim/eligible", 0), s.get("fim/applied", 0)
        rate = applied / elig if elig else 0.0
        return [("FIM", f"<p>{int(applied)} of {int(elig)} eligible documents transformed: achieved rate {rate:.4f} "
                        f"(PSM {int(s.get('fim/psm', 0))}, SPM {int(s.get('fim/spm', 0))}).</p>")]
