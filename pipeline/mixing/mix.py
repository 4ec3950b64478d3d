"""The data mixer: a target token budget split over categories and sources, seeded.

Each document's category is decided here, once (`category.decide`), and written as
`metadata["category"]`, which later stages read.

Tokens are counted with the stage's tokenizer, plus one for the EOS the shards append.
The budget `target_tokens` (default: the largest one the scarcest category fills without
repetition) is split by `ratios` (default code 0.60 / math 0.10 / natural_language 0.30). Inside
a category, sources share their category's budget by `source_weights` (sources without a weight
count 1.0), or, with no weights given in the category, in proportion to their size. Each source
is taken whole as many times as its budget allows (epochs); the rest is drawn by a seeded key per
document, and documents larger than their share give a window of themselves, cut at file or
paragraph boundaries (see `mixplan` and `split`). A ratio missed by more than `tolerance` (a
category with no documents, or pieces too coarse) is one warning line, with target vs achieved
in `<stage>/mix.json` and the report; `strict: true` makes it an error.

Phases: `count` (one task per input shard: tokens per document for `main`, and partial sums per
category, source, size class and key bucket), `plan` (one task: merges the partial sums, writes
`_work/plan.json`), `main` (each task decides its documents' copies from the plan and their keys),
`summary` (one task: merges the tasks' achieved counts into `mix.json`). No task holds more than
its own shard and the fixed-size sums. Up-sampled copies and windows cut from a document that is
also taken whole enter the books as extra input (`acct/in`), so in = kept + dropped.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa
from datatrove.data import Document, DocumentsPipeline
from loguru import logger
from pydantic import Field

from pipeline import storage
from pipeline.fields import Fraction, Ratios
from pipeline.io import iter_documents
from pipeline.mixing import category, mixplan
from pipeline.mixing.split import pieces, window_document
from pipeline.stage import Phase, StageContext, StageSpec
from pipeline.steps import Step

DEFAULT_RATIOS = {"code": 0.6, "math": 0.1, "natural_language": 0.3}


def _token_counter(tok):
    return lambda texts: [len(x) for x in tok.encode_batch(texts)] if texts else []


class CountTokens(Step):
    """Tokens of each document of the task's shards (for `main`), and their sums per category, source,
    size class and key bucket (for `plan`)."""

    name = "mix count"

    def __init__(self, input_files: list[str], out_dir: str, tokenizer: str, source_categories, recall_threshold: float,
                 seed: int):
        super().__init__()
        self.input_files, self.out_dir, self.tokenizer = input_files, out_dir, tokenizer
        self.source_categories, self.recall_threshold, self.seed = source_categories, recall_threshold, seed

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        import tokenizer as tk

        count = _token_counter(tk.load(self.tokenizer))
        tokens: list[int] = []
        sums: Counter = Counter()  # (category, source, size class, bucket) -> tokens
        docs: Counter = Counter()  # same key -> documents

        def flush(batch: list[Document]) -> None:
            for doc, n in zip(batch, count([d.text for d in batch])):
                cat = category.decide(doc.metadata, self.source_categories, self.recall_threshold)
                key = (cat, str(doc.metadata.get("source")), mixplan.size_class(n + 1),
                       mixplan.bucket(mixplan.doc_keys(self.seed, doc.id)[0]))
                sums[key] += n + 1
                docs[key] += 1
                tokens.append(n + 1)

        for path in self.input_files[rank::world_size]:
            batch: list[Document] = []
            for doc in iter_documents(path):
                batch.append(doc)
                if len(batch) >= 256:
                    flush(batch)
                    batch = []
            flush(batch)
        storage.write_parquet(storage.join(self.out_dir, f"tokens-{rank:05d}.parquet"), pa.table({"tokens": pa.array(tokens, pa.int64())}))
        keys = sorted(sums)
        storage.write_parquet(storage.join(self.out_dir, f"sums-{rank:05d}.parquet"), pa.table({
            "category": pa.array([k[0] for k in keys], pa.string()), "source": pa.array([k[1] for k in keys], pa.string()),
            "size_class": pa.array([k[2] for k in keys], pa.int16()), "bucket": pa.array([k[3] for k in keys], pa.int16()),
            "tokens": pa.array([sums[k] for k in keys], pa.int64()), "docs": pa.array([docs[k] for k in keys], pa.int64())}))
        return
        yield  # a generator, like every step


def merge_sums(paths: list[str]) -> tuple[dict, dict]:
    """The count tasks' partial sums, added up: (category, source) -> (size class x bucket) tokens, and docs."""
    hists: dict = defaultdict(lambda: np.zeros((mixplan.SIZE_CLASSES, mixplan.BUCKETS), np.int64))
    docs: dict = defaultdict(int)
    for path in paths:
        t = storage.read_parquet(path).combine_chunks()
        if not t.num_rows:
            continue
        cat, src = (t.column(c).chunk(0).dictionary_encode() for c in ("category", "source"))
        group = cat.indices.to_numpy() * len(src.dictionary) + src.indices.to_numpy()
        k, b, n, d = (t.column(c).to_numpy() for c in ("size_class", "bucket", "tokens", "docs"))
        for g in np.unique(group):
            rows = group == g
            key = (cat.dictionary[g // len(src.dictionary)].as_py(), src.dictionary[g % len(src.dictionary)].as_py())
            np.add.at(hists[key], (k[rows], b[rows]), n[rows])
            docs[key] += int(d[rows].sum())
    return dict(hists), dict(docs)


class MixError(Exception):
    """A mix ratio cannot be reached and the stage is `strict`."""


class PlanMix(Step):
    name = "mix plan"

    def __init__(self, counts_dir: str, n_tasks: int, plan_path: str, ratios, target_tokens, source_weights,
                 strict: bool):
        super().__init__()
        self.counts_dir, self.n_tasks, self.plan_path = counts_dir, n_tasks, plan_path
        self.ratios, self.target_tokens, self.source_weights, self.strict = ratios, target_tokens, source_weights, strict

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        hists, docs = merge_sums([storage.join(self.counts_dir, f"sums-{i:05d}.parquet") for i in range(self.n_tasks)])
        planned = mixplan.plan(hists, docs, self.ratios, self.target_tokens, self.source_weights)
        if self.strict and planned["missing_categories"]:
            raise MixError(f"mix ratios not reached: no documents of {', '.join(planned['missing_categories'])} (strict)")
        storage.write_json(self.plan_path, planned)
        return
        yield


class Sample(Step):
    """Emits each document as often as the plan and its key say, or a window of it; the rest are
    dropped `not_sampled`. Writes the task's achieved counts per (category, source)."""

    name = "mix sample"

    def __init__(self, plan_path: str, counts_dir: str, achieved_dir: str, tokenizer: str, source_categories,
                 recall_threshold: float, seed: int):
        super().__init__()
        self.plan_path, self.counts_dir, self.achieved_dir, self.tokenizer = plan_path, counts_dir, achieved_dir, tokenizer
        self.source_categories, self.recall_threshold, self.seed = source_categories, recall_threshold, seed

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        import tokenizer as tk

        count = _token_counter(tk.load(self.tokenizer))
        planned = storage.read_json(self.plan_path)["categories"]
        tokens = storage.read_parquet(storage.join(self.counts_dir, f"tokens-{rank:05d}.parquet")).column("tokens").to_pylist()
        got: dict = defaultdict(Counter)
        read = 0
        for i, doc in enumerate(data):
            read += 1
            cat = category.decide(doc.metadata, self.source_categories, self.recall_threshold)
            src = str(doc.metadata.get("source"))
            entry = planned.get(cat, {}).get("sources", {}).get(src)
            u, v = mixplan.doc_keys(self.seed, doc.id)
            whole, share = mixplan.decide(entry, tokens[i], u) if entry else (0, 0.0)
            out = []
            if whole:
                doc.metadata["category"] = cat
                out = [doc] + [Document(text=doc.text, id=f"{doc.id}#{e}", metadata={**doc.metadata, "epoch": e})
                               for e in range(1, whole)]
                got[cat, src]["tokens"] += whole * tokens[i]
            if share > 0:
                spans, piece_tokens, starts = pieces(doc, count, entry["split_above"])
                a, b = mixplan.window(piece_tokens, share, u, v, starts)
                if b > a:
                    part = window_document(doc, spans, a, b)
                    part.metadata["category"] = cat
                    n = count([part.text])[0] + 1
                    got[cat, src].update({"tokens": n, "split_docs": 1, "split_tokens": n})
                    out.append(part)
            if not out:
                self.drop(doc, "not_sampled")
                continue
            got[cat, src].update({"docs": len(out), "unique_docs": 1})
            for k, d in enumerate(out):
                if k:
                    self.count_in(d)
                    self.stat_update("mix/upsampled_copies" if "split" not in d.metadata else "mix/extra_windows")
                if "split" in d.metadata:
                    self.stat_update("mix/split_windows")
                yield d
        if read != len(tokens):
            raise RuntimeError(f"mix task {rank}: {len(tokens)} documents counted, {read} read")
        rows = [{"category": c, "source": s, **v} for (c, s), v in sorted(got.items())]
        storage.write_json(storage.join(self.achieved_dir, f"part-{rank:05d}.json"), rows)


class Summarize(Step):
    """Merges the tasks' achieved counts into `mix.json`; a missed ratio is one warning line (an error when strict)."""

    name = "mix summary"

    def __init__(self, plan_path: str, achieved_dir: str, n_tasks: int, summary_path: str, tolerance: float, strict: bool):
        super().__init__()
        self.plan_path, self.achieved_dir, self.n_tasks, self.summary_path = plan_path, achieved_dir, n_tasks, summary_path
        self.tolerance, self.strict = tolerance, strict

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        achieved: dict = defaultdict(Counter)
        for i in range(self.n_tasks):
            for row in storage.read_json(storage.join(self.achieved_dir, f"part-{i:05d}.json")):
                achieved[row.pop("category"), row.pop("source")].update(row)
        summary = mixplan.summarize(storage.read_json(self.plan_path), achieved, self.tolerance)
        summary["strict"] = self.strict
        storage.write_json(self.summary_path, summary)  # target vs achieved, also when the stage then fails
        if summary["warning"] and self.strict:
            raise MixError(summary["warning"] + " (strict)")
        if summary["warning"]:  # the task log; the runner shows it from `warnings` below
            logger.info(summary["warning"])
        return
        yield


class Mix(StageSpec):
    """Token-budgeted category/source mix: seeded keys, up-sampling, windows of documents larger than their share."""

    target_tokens: int | None = Field(default=None, ge=0)
    ratios: Ratios = Field(default_factory=lambda: dict(DEFAULT_RATIOS))
    source_weights: dict[str, float] = {}
    categories: dict[str, str] = Field(default_factory=lambda: dict(category.DEFAULT_SOURCE_CATEGORIES))
    recall_threshold: Fraction = 0.5
    tokenizer: str = "deepseek"
    tolerance: Fraction = Field(default=0.01, description="how far (share of tokens) an achieved ratio may miss its target")
    strict: bool = Field(default=False, description="a missed ratio fails the stage instead of a warning")

    def phases(self, ctx: StageContext) -> list[Phase]:
        files = ctx.input_files
        n = max(1, len(files))
        counts, achieved = ctx.work_dir("counts"), ctx.work_dir("achieved")
        plan_path = ctx.work_dir("plan.json")
        summary = storage.join(ctx.stage_dir, "mix.json")
        seed = ctx.stage_seed
        return [
            Phase("count", [CountTokens(files, counts, self.tokenizer, self.categories, self.recall_threshold, seed)], n),
            Phase("plan", [PlanMix(counts, n, plan_path, self.ratios, self.target_tokens, self.source_weights,
                                   self.strict)], 1),
            Phase("main", [ctx.reader(), Sample(plan_path, counts, achieved, self.tokenizer, self.categories,
                                                self.recall_threshold, seed), ctx.writer()], n),
            Phase("summary", [Summarize(plan_path, achieved, n, summary, self.tolerance, self.strict)], 1),
        ]

    def provenance(self, stage_dir: str, stats: dict) -> dict:
        return {"mix": storage.read_json(storage.join(stage_dir, "mix.json"))}

    @classmethod
    def report_sections(cls, stage_dir: str, stats: dict) -> list[tuple[str, str]]:
        summary = storage.read_json(storage.join(stage_dir, "mix.json"))
        if not summary:
            return []
        return [("Mix", mix_chart_html(summary))]

    @classmethod
    def warnings(cls, stage_dir: str) -> list[str]:
        summary = storage.read_json(storage.join(stage_dir, "mix.json")) or {}
        return [summary["warning"]] if summary.get("warning") else []


def mix_line(summary: dict) -> str:
    """Each category's target and achieved share of the mixed tokens, on one line."""
    cats = ", ".join(f"{c} {want:.1%} -> {summary['ratios_achieved'].get(c, 0.0):.1%}"
                     for c, want in sorted(summary["ratios_target"].items()))
    return f"{summary['tokens']:,} tokens, target -> achieved: {cats}"


def mix_chart_html(summary: dict) -> str:
    """Target vs achieved token share per category (bar chart and table), the warning if any, and the per-source table."""
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
    cat_rows = [[c, f"{summary['ratios_target'][c]:.1%}", f"{summary['ratios_achieved'].get(c, 0):.1%}",
                 round(cv["target_tokens"]), cv["tokens"], cv["available_tokens"]] for c, cv in sorted(summary["categories"].items())]
    rows = [[s, c, v["docs"], v["split_docs"], v["tokens"], f"{v['epochs']:.3f}"]
            for c, cv in sorted(summary["categories"].items()) for s, v in sorted(cv["sources"].items())]
    warning = f"<p><b>Warning:</b> {html.escape(summary['warning'])}</p>" if summary.get("warning") else ""
    return (f"<p>{summary['tokens']} tokens in {summary['docs']} documents (target {summary['target_tokens']}).</p>"
            + warning + figure_html(fig)
            + table_html(["category", "target", "achieved", "target tokens", "tokens", "available tokens"], cat_rows)
            + table_html(["source", "category", "docs", "split docs", "tokens", "epochs"], rows))
