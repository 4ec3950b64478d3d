"""Benchmark decontamination with DeepSeek-Coder's rule.

N-gram unit and normalisation: a text is lower-cased and split into word tokens, maximal runs
of Unicode word characters (regex `\\w+`); punctuation and whitespace only separate tokens.
So `def add(a, b):` and `DEF  add (a,b) :` are both `def add a b`.

Rule:
- a document is dropped when it shares any 10-gram (10 consecutive word tokens) with a
  benchmark string;
- a benchmark string of 3 to 9 tokens drops a document that contains its whole token sequence
  (an exact substring match on normalised tokens); strings under 3 tokens are ignored.

Tokens are found and hashed with numpy over the text's characters, with no Python work per
token (3x a bare `\w+` findall; see `token_hashes`). Each n-gram is hashed to 64 bits (a polynomial
over its token hashes, the length mixed in) and looked up in a bitmap of every benchmark n-gram;
the few that pass are looked up in one sorted array: the cost per document does not grow with the
number of benchmark items. The first matching item
is recorded per removed document (`<stage>/decontam/removed-NNNNN.jsonl`), the drop reason is
`contaminated/<benchmark>` (so `_stats.json` counts hits per benchmark).
"""


from __future__ import annotations

import json

from datatrove.data import DocumentsPipeline
from loguru import logger
from pydantic import Field

from pipeline import storage
from pipeline.decontaminate.benchmarks import BenchmarkIndex, BenchmarkSpec
from pipeline.stage import StageContext, StageSpec
from pipeline.steps import Step


class Decontaminate(Step):
    """Drops contaminated documents and logs which benchmark item each one matched."""

    name = "decontaminate"

    def __init__(self, benchmarks: list[BenchmarkSpec], log_dir: str):
        super().__init__()
        self.benchmarks = benchmarks
        self.log_dir = log_dir

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        index = BenchmarkIndex(self.benchmarks)
        self.stat_update("decontam/benchmark_items", value=len(index.items) if rank == 0 else 0)
        for name in index.skipped:
            logger.warning(f"benchmark {name}: optional file absent, skipped")
            self.stat_update(f"decontam/skipped_benchmark/{name}", value=1 if rank == 0 else 0)
        with storage.atomic_open(storage.join(self.log_dir, f"removed-{rank:05d}.jsonl"), "w") as log:
            for doc in data:
                with self.track_time():
                    item = index.match(doc.text)
                if item is None:
                    yield doc
                    continue
                log.write(json.dumps({"id": doc.id, "source": doc.metadata.get("source"), "benchmark": item.benchmark,
                                      "item": item.item, "field": item.field}, ensure_ascii=False) + "\n")
                self.drop(doc, f"contaminated/{item.benchmark}")


class DecontaminateStage(StageSpec):
    """Drop documents that overlap benchmark test data (10-grams; exact match for 3-9 token strings)."""

    benchmarks: list[BenchmarkSpec] = Field(min_length=1)

    def build(self, ctx: StageContext):
        return [Decontaminate(self.benchmarks, storage.join(ctx.stage_dir, "decontam"))]

    def provenance(self, stage_dir: str, stats: dict) -> dict:
        hits = removed_by_benchmark(stats)
        return {"decontamination": {"stages": [self.name], "documents_in": stats.get("in", {}).get("docs", 0),
                                    "removed": sum(hits.values()), "by_benchmark": hits}}

    @classmethod
    def report_sections(cls, stage_dir: str, stats: dict) -> list[tuple[str, str]]:
        from pipeline.report import table_html

        return [("Decontamination", table_html(["benchmark", "documents removed"], sorted(removed_by_benchmark(stats).items())))]


def removed_by_benchmark(stats: dict) -> dict[str, int]:
    """Documents removed per benchmark, from a decontamination stage's books (drop reason `contaminated/B`)."""
    return {r.split("/", 1)[1]: d["docs"] for r, d in stats.get("dropped", {}).items() if r.startswith("contaminated/")}


def read_removed(stage_dir: str) -> list[dict]:
    """Every removed-document record of a decontamination stage, in task order."""
    fs, p = storage.fs_and_path(storage.join(stage_dir, "decontam"))
    out = []
    for f in sorted(fs.glob(p.rstrip("/") + "/removed-*.jsonl")):
        with fs.open(f, "r") as fh:
            out += [json.loads(line) for line in fh if line.strip()]
    return out
