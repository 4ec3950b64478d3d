"""The data mixer: a target token budget split over categories and sources, seeded.

Category of a document (first rule that applies):
1. `metadata["category"]` when it is already set;
2. the recall classifiers' scores (`recall` stage, classifiers/) `metadata["scores"] =
   {"code": p, "math": p}`: the best label whose score is at least `recall_threshold`;
3. the stage's `categories` map from `source` (default: github -> code, web -> natural_language);
4. otherwise natural_language.

Tokens are counted with the stage's tokenizer, plus one for the EOS the shards append.
The budget `target_tokens` (default: the largest one the scarcest category fills without
repetition) is split by `ratios` (default code 0.60 / math 0.10 / natural_language 0.30). Inside
a category, sources share their category's budget by `source_weights` (sources without a weight
count 1.0), or, with no weights given in the category, in proportion to their size. Each source
is taken whole as many times as its budget allows (epochs), then the remainder is sampled
without replacement in a seeded random order, stopping at the document that lands nearest the
budget. Epochs and exact achieved counts go to `<stage>/mix.json`.

Phases: `count` (tokens per document, one task per input shard), `plan` (one task, writes the
copies of every document), `main` (emits each document as many times as planned). Up-sampled
copies enter the books as extra input (`acct/in`), so a stage that repeats documents still
balances: in = kept + dropped.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from pydantic import Field

from pipeline import documents, storage
from pipeline.recipe import Fraction, Ratios
from pipeline.stage import Phase, StageContext, StageSpec
from pipeline.steps import Step

CATEGORIES = ("code", "math", "natural_language")
DEFAULT_RATIOS = {"code": 0.6, "math": 0.1, "natural_language": 0.3}
DEFAULT_SOURCE_CATEGORIES = {"github": "code", "web": "natural_language"}


def categorize(meta: dict, source_categories: dict[str, str] | None = None, recall_threshold: float = 0.5) -> str:
    cat = meta.get("category")
    if isinstance(cat, str) and cat:
        return cat
    recall = meta.get("scores")
    if isinstance(recall, dict) and recall:
        label, score = max(recall.items(), key=lambda kv: (kv[1], kv[0]))
        if label in CATEGORIES and score >= recall_threshold:
            return label
    src = meta.get("source")
    mapping = DEFAULT_SOURCE_CATEGORIES if source_categories is None else source_categories
    return mapping.get(src, "natural_language")


def _iter_rows(path: str, columns: list[str] | None = None):
    with storage.open_file(path, "rb") as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=1024, columns=columns):
            yield from batch.to_pylist()


class CountTokens(Step):
    """Counts each document's tokens; writes (row, source, category, tokens) for the planner."""

    name = "mix count"

    def __init__(self, input_files: list[str], out_dir: str, tokenizer: str, source_categories, recall_threshold: float):
        super().__init__()
        self.input_files, self.out_dir, self.tokenizer = input_files, out_dir, tokenizer
        self.source_categories, self.recall_threshold = source_categories, recall_threshold

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        import tokenizer as tk

        tok = tk.load(self.tokenizer)
        sources, cats, tokens = [], [], []
        for path in self.input_files[rank::world_size]:
            batch: list[str] = []
            for row in _iter_rows(path):
                doc = documents.from_row(row)
                sources.append(str(doc.metadata.get("source")))
                cats.append(categorize(doc.metadata, self.source_categories, self.recall_threshold))
                batch.append(doc.text)
                if len(batch) >= 256:
                    tokens += [len(x) + 1 for x in tok.encode_batch(batch)]
                    batch = []
            if batch:
                tokens += [len(x) + 1 for x in tok.encode_batch(batch)]
        table = pa.table({"source": pa.array(sources, pa.string()), "category": pa.array(cats, pa.string()),
                          "tokens": pa.array(tokens, pa.int64())})
        os.makedirs(self.out_dir, exist_ok=True)
        final = os.path.join(self.out_dir, f"part-{rank:05d}.parquet")
        pq.write_table(table, final + ".tmp")
        os.replace(final + ".tmp", final)
        return
        yield  # a generator, like every step


def _seed_for(seed: int, name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little")


def plan_mix(counts: list[pa.Table], ratios: dict[str, float], target_tokens: int | None,
             source_weights: dict[str, float], seed: int) -> tuple[list[np.ndarray], dict]:
    """Copies per document (one array per shard) and the mix summary. Pure function of its inputs."""
    shard_of = np.concatenate([np.full(t.num_rows, i, np.int64) for i, t in enumerate(counts)] or [np.zeros(0, np.int64)])
    row_of = np.concatenate([np.arange(t.num_rows, dtype=np.int64) for t in counts] or [np.zeros(0, np.int64)])
    tokens = np.concatenate([t.column("tokens").to_numpy() for t in counts] or [np.zeros(0, np.int64)]).astype(np.int64)
    sources = np.array([x for t in counts for x in t.column("source").to_pylist()], dtype=object)
    cats = np.array([x for t in counts for x in t.column("category").to_pylist()], dtype=object)
    copies = np.zeros(len(tokens), np.int64)

    avail_cat = {c: int(tokens[cats == c].sum()) for c in ratios}
    present = {c: a for c, a in avail_cat.items() if a > 0 and ratios[c] > 0}
    missing = sorted(c for c, r in ratios.items() if r > 0 and avail_cat.get(c, 0) == 0)
    if target_tokens is None:
        target_tokens = int(min((a / ratios[c] for c, a in present.items()), default=0))
    summary = {"target_tokens": target_tokens, "ratios_target": dict(ratios), "missing_categories": missing,
               "categories": {}, "ignored_categories": sorted(set(cats.tolist()) - set(ratios))}

    for cat in sorted(ratios):
        budget = target_tokens * ratios[cat]
        in_cat = cats == cat
        srcs = sorted(set(sources[in_cat].tolist()))
        avail = {s: int(tokens[in_cat & (sources == s)].sum()) for s in srcs}
        weighted = any(s in source_weights for s in srcs)
        w = {s: (source_weights.get(s, 1.0) if weighted else avail[s]) for s in srcs}
        wsum = sum(w.values())
        per_source = {}
        for s in srcs:
            idx = np.flatnonzero(in_cat & (sources == s))
            t = tokens[idx]
            goal = budget * w[s] / wsum if wsum > 0 else 0.0
            full = int(goal // avail[s]) if avail[s] > 0 else 0
            copies[idx] += full
            rest = goal - full * avail[s]
            order = np.random.default_rng(_seed_for(seed, f"{cat}/{s}")).permutation(len(idx))
            cum = np.cumsum(t[order])
            k = int(np.searchsorted(cum, rest, side="right"))  # cum[k-1] <= rest < cum[k]
            if k < len(cum) and cum[k] - rest < rest - (cum[k - 1] if k else 0):
                k += 1
            copies[idx[order[:k]]] += 1
            got = int((t * copies[idx]).sum())
            per_source[s] = {
                "weight": source_weights.get(s, 1.0) if weighted else None,
                "available_docs": int(len(idx)),
                "available_tokens": avail[s],
                "target_tokens": round(goal, 1),
                "docs": int(copies[idx].sum()),
                "unique_docs": int((copies[idx] > 0).sum()),
                "tokens": got,
                "epochs": round(got / avail[s], 6) if avail[s] else 0.0,
            }
        got_cat = int((tokens * copies)[in_cat].sum())
        summary["categories"][cat] = {"target_tokens": round(budget, 1), "available_tokens": avail_cat.get(cat, 0),
                                      "tokens": got_cat, "docs": int(copies[in_cat].sum()), "sources": per_source}
    total = sum(c["tokens"] for c in summary["categories"].values())
    summary["tokens"] = total
    summary["docs"] = int(copies.sum())
    summary["ratios_achieved"] = {c: (v["tokens"] / total if total else 0.0) for c, v in summary["categories"].items()}
    per_shard = [copies[shard_of == i][np.argsort(row_of[shard_of == i])] for i in range(len(counts))]
    return per_shard, summary


class PlanMix(Step):
    name = "mix plan"

    def __init__(self, counts_dir: str, n_shards: int, plan_dir: str, summary_path: str, ratios, target_tokens,
                 source_weights, seed: int):
        super().__init__()
        self.counts_dir, self.n_shards, self.plan_dir, self.summary_path = counts_dir, n_shards, plan_dir, summary_path
        self.ratios, self.target_tokens, self.source_weights, self.seed = ratios, target_tokens, source_weights, seed

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        counts = [pq.read_table(os.path.join(self.counts_dir, f"part-{i:05d}.parquet")) for i in range(self.n_shards)]
        per_shard, summary = plan_mix(counts, self.ratios, self.target_tokens, self.source_weights, self.seed)
        os.makedirs(self.plan_dir, exist_ok=True)
        for i, c in enumerate(per_shard):
            np.save(os.path.join(self.plan_dir, f"copies-{i:05d}.npy"), c)
        storage.write_json(self.summary_path, summary)
        return
        yield


class Sample(Step):
    """Emits each document as often as the plan says; unselected ones are dropped `not_sampled`."""

    name = "mix sample"

    def __init__(self, plan_dir: str, source_categories, recall_threshold: float):
        super().__init__()
        self.plan_dir, self.source_categories, self.recall_threshold = plan_dir, source_categories, recall_threshold

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        path = os.path.join(self.plan_dir, f"copies-{rank:05d}.npy")
        copies = np.load(path) if os.path.exists(path) else np.zeros(0, np.int64)
        for i, doc in enumerate(data):
            n = int(copies[i])
            if n == 0:
                self.drop(doc, "not_sampled")
                continue
            doc.metadata["category"] = categorize(doc.metadata, self.source_categories, self.recall_threshold)
            yield doc
            for epoch in range(1, n):
                extra = Document(text=doc.text, id=f"{doc.id}#{epoch}", metadata={**doc.metadata, "epoch": epoch})
                self.count_in(extra)
                self.stat_update("mix/upsampled_copies")
                yield extra


class Mix(StageSpec):
    """Token-budgeted category/source mix with seeded sampling and up-sampling."""

    target_tokens: int | None = Field(default=None, ge=0)
    ratios: Ratios = Field(default_factory=lambda: dict(DEFAULT_RATIOS))
    source_weights: dict[str, float] = {}
    categories: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SOURCE_CATEGORIES))
    recall_threshold: Fraction = 0.5
    tokenizer: str = "deepseek"

    def phases(self, ctx: StageContext) -> list[Phase]:
        files = ctx.input_files
        n = max(1, len(files))
        counts, plan = ctx.work_dir("counts"), ctx.work_dir("plan")
        summary = storage.join(ctx.stage_dir, "mix.json")
        return [
            Phase("count", [CountTokens(files, counts, self.tokenizer, self.categories, self.recall_threshold)], n),
            Phase("plan", [PlanMix(counts, n, plan, summary, self.ratios, self.target_tokens, self.source_weights,
                                   ctx.stage_seed)], 1),
            Phase("main", [ctx.reader(), Sample(plan, self.categories, self.recall_threshold), ctx.writer()], n),
        ]

    @classmethod
    def report_sections(cls, stage_dir: str, stats: dict) -> list[tuple[str, str]]:
        summary = storage.read_json(storage.join(stage_dir, "mix.json"))
        if not summary:
            return []
        return [("Mix", mix_chart_html(summary))]


def mix_chart_html(summary: dict) -> str:
    """Target vs achieved token share per category (bar chart) and the per-source table."""
    import matplotlib.pyplot as plt

    from pipeline.report import figure_html, table_html

    cats = sorted(summary["ratios_target"])
    x = np.arange(len(cats))
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(x - 0.2, [summary["ratios_target"][c] for c in cats], 0.4, label="target")
    ax.bar(x + 0.2, [summary["ratios_achieved"].get(c, 0) for c in cats], 0.4, label="achieved")
    ax.set_xticks(x, cats)
    ax.set_ylabel("share of tokens")
    ax.legend()
    fig.tight_layout()
    rows = [[s, c, v["docs"], v["tokens"], f"{v['epochs']:.3f}"]
            for c, cv in sorted(summary["categories"].items()) for s, v in sorted(cv["sources"].items())]
    return (f"<p>{summary['tokens']} tokens in {summary['docs']} documents (target {summary['target_tokens']}).</p>"
            + figure_html(fig) + table_html(["source", "category", "docs", "tokens", "epochs"], rows))
