"""datatrove steps of the recall loop: score pages, write per-round score files, train, analyse."""

from __future__ import annotations

from functools import lru_cache

import pyarrow as pa
from datatrove.data import DocumentsPipeline

from classifiers.stats import TOP_SCHEMA, top_within_budget
from pipeline import documents, storage
from pipeline.io import ShardReader
from pipeline.steps import Step
from pipeline.web import urls


class PoolReader(ShardReader):
    """Reads the pool for an internal pass of the loop; those reads are not the stage's input, so they are not counted."""

    name = "pool reader"

    def count_in(self, doc=None, nbytes=None) -> None:
        pass


def page_title(doc) -> str:
    """A page's title (a GitHub file's path), or its first non-empty line, cut to 80 characters."""
    title = doc.metadata.get("title") or doc.metadata.get("path")
    if not title:
        title = next((ln.strip() for ln in doc.text.splitlines() if ln.strip()), "")
    return str(title)[:80]


def _load(model_dir: str):
    """A model loaded once per process (tasks run one after another in a worker share it);
    keyed by its model.json too, so a retrained model in the same place is loaded again."""
    return _load_cached(model_dir, documents.dumps(storage.read_json(storage.join(model_dir, "model.json"))))


@lru_cache(maxsize=4)
def _load_cached(model_dir: str, meta: str):
    from classifiers.model import Classifier

    return Classifier.load(model_dir)


class ScorePages(Step):
    """Adds `metadata["scores"][target]`, the probability from each target's fastText model.

    Each model's tokenizer runs once per page (models sharing a tokenizer share it);
    With `count_tokens` (the scoring phases), `metadata["recall_tokens"]` holds the page's token count under
    the first model's tokenizer, for the score files (`metadata["tokens"]` is the shards' count of LM tokens).
    With `keep="recalled"`, pages that no target recalls leave the stage as `not_recalled`;
    the cutoffs are read when the task starts (`cutoffs` file: target -> minimum score).
    """

    name = "fastText scorer"

    def __init__(self, models: dict[str, str], keep: str = "all", cutoffs: str | None = None, count_tokens: bool = False):
        super().__init__()
        self.models, self.keep, self.cutoffs, self.count_tokens = dict(models), keep, cutoffs, count_tokens

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        clfs = {t: _load(d) for t, d in sorted(self.models.items())}
        cut = storage.read_json(self.cutoffs, {}) if self.cutoffs else {}
        first = next(iter(clfs.values())).tokenizer_name
        for doc in data:
            with self.track_time():
                toks: dict[str, str] = {}
                scores = dict(doc.metadata.get("scores") or {})
                for t, c in clfs.items():
                    if c.tokenizer_name not in toks:
                        toks[c.tokenizer_name] = c.tokenize(doc.text)
                    scores[t] = round(c.score_tokens(toks[c.tokenizer_name]), 6)
                doc.metadata["scores"] = scores
                if self.count_tokens:
                    doc.metadata["recall_tokens"] = toks[first].count(" ") + 1 if toks[first] else 0
            if self.keep == "recalled" and not any(scores[t] >= cut.get(t, 0.5) for t in clfs):
                self.drop(doc, "not_recalled")
                continue
            self.stat_update("scored")
            yield doc


SCORE_SCHEMA_BASE = [
    ("id", pa.string()), ("url", pa.string()), ("domain", pa.string()), ("repo", pa.string()), ("path", pa.string()),
    ("title", pa.string()), ("tokens", pa.int64()),
]


class ScoreFileWriter(Step):
    """Writes one compact `part-{rank:05d}.parquet` of (id, url, domain, repo, path, title, tokens, score.<target>...) per task,
    and for targets with a token budget `top_dir/part-{rank:05d}.parquet`: the task's best pages that fit in it."""

    name = "score file writer"

    def __init__(self, output_dir: str, targets: list[str], budgets: dict[str, int] | None = None, top_dir: str | None = None):
        super().__init__()
        self.output_dir, self.targets, self.budgets, self.top_dir = output_dir, sorted(targets), dict(budgets or {}), top_dir

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        schema = pa.schema(SCORE_SCHEMA_BASE + [(f"score.{t}", pa.float64()) for t in self.targets])
        cols: dict[str, list] = {f.name: [] for f in schema}
        for doc in data:
            url = doc.metadata.get("url")
            cols["id"].append(str(doc.id))
            cols["url"].append(url)
            cols["domain"].append(doc.metadata.get("domain") or urls.registered_domain(url) or "")
            cols["repo"].append(doc.metadata.get("repo"))
            cols["path"].append(doc.metadata.get("path"))
            cols["title"].append(page_title(doc))
            cols["tokens"].append(int(doc.metadata.get("recall_tokens", 0)))
            for t in self.targets:
                cols[f"score.{t}"].append(float(doc.metadata["scores"][t]))
            yield doc
        top = []
        for t, budget in sorted(self.budgets.items()):
            s = cols[f"score.{t}"]
            top += [{"target": t, "id": cols["id"][i], "score": s[i], "tokens": cols["tokens"][i]}
                    for i in top_within_budget(cols["id"], s, cols["tokens"], budget)]
        if self.budgets:
            storage.write_parquet(storage.join(self.top_dir, f"part-{rank:05d}.parquet"), pa.Table.from_pylist(top, schema=TOP_SCHEMA))
        storage.write_parquet(storage.join(self.output_dir, f"part-{rank:05d}.parquet"), pa.Table.from_pydict(cols, schema=schema))


class RoundTask(Step):
    """A task of one of a round's loop phases: sample, train, cutoffs, route, group or analyze."""

    def __init__(self, what: str, loop_args: dict, round: int):
        super().__init__()
        self.what, self.loop_args, self.round = what, loop_args, round
        self.name = f"round {round} {what}"

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from classifiers import loop, sample, stats

        cfg, k = loop.LoopConfig(**self.loop_args), self.round
        calls = {
            "sample": lambda: sample.write_sample(cfg, k, rank, world_size),
            "train": lambda: loop.train_round(cfg, k),
            "cutoffs": lambda: stats.compute_cutoffs(cfg, k),
            "route": lambda: stats.route(cfg, k, rank),
            "group": lambda: stats.group(cfg, k, rank, world_size),
            "analyze": lambda: loop.analyze_round(cfg, k),
        }
        with self.track_time():
            calls[self.what]()
        yield from ()
