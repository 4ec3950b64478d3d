"""Test helpers for dedup: a corpus with planted near-duplicates, running dedup stages on it, reading their output."""

from __future__ import annotations

import json
import os
import random

import pyarrow.parquet as pq

from dedup.shingles import shingle_bytes
from pipeline import registry, storage
from pipeline.builtin import Files
from pipeline.recipe import Recipe
from pipeline.runner import Runner

WORDS = [f"{p}{i}" for p in ("foo", "bar_", "x", "get", "n") for i in range(120)] + ["=", "(", ")", "+=", "->", "{", "}", ";", "==", "[", "]"]


def _doc(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(WORDS) for _ in range(n)]


def _render(toks: list[str]) -> str:
    return "".join(t + ("\n" if i % 12 == 11 else " ") for i, t in enumerate(toks))


def planted_corpus(seed: int = 7, bases: int = 120, noise: int = 120) -> list[dict]:
    """Base documents, each with one variant at a spread of mutation rates, plus unrelated documents."""
    rng = random.Random(seed)
    rows = []
    for i in range(bases):
        base = _doc(rng, rng.randint(150, 400))
        rate = 0.002 + 0.05 * (i / bases)
        var = [rng.choice(WORDS) if rng.random() < rate else t for t in base]
        stars = rng.randint(0, 50)
        rows.append({"id": f"b{i:04d}", "text": _render(base), "stars": stars})
        rows.append({"id": f"v{i:04d}", "text": _render(var), "stars": stars + (1 if i % 3 == 0 else 0)})
    for i in range(noise):
        rows.append({"id": f"n{i:04d}", "text": _render(_doc(rng, rng.randint(50, 300))), "stars": 0})
    rng.shuffle(rows)
    return rows


def odd_first_bucket(n: int = 12, seed: int = 5) -> list[str]:
    """An unrelated document, then n - 1 versions of one base, each a small edit of the one before:
    a chain whose neighbours are near-duplicates while its ends are not."""
    rng = random.Random(seed)
    texts = [_render(_doc(rng, 300))]
    cur = _doc(rng, 300)
    for _ in range(n - 1):
        texts.append(_render(cur))
        cur = [rng.choice(WORDS) if rng.random() < 0.015 else t for t in cur]
    return texts


def write_jsonl_shards(rows: list[dict], directory, shards: int = 4) -> str:
    os.makedirs(directory, exist_ok=True)
    for s in range(shards):
        with open(os.path.join(directory, f"in-{s}.jsonl"), "w") as f:
            for r in rows[s::shards]:
                f.write(json.dumps(r) + "\n")
    return str(directory)


def jaccard_pairs(rows: list[dict], ngram: int = 5) -> dict[tuple[str, str], float]:
    """Brute force: exact Jaccard of shingle sets for every pair that shares a shingle."""
    sets = {r["id"]: set(shingle_bytes(r["text"], ngram)) for r in rows}
    ids = sorted(sets)
    out = {}
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            inter = len(sets[a] & sets[b])
            if inter:
                out[(a, b)] = inter / len(sets[a] | sets[b])
    return out


def run_dedup(run_dir, input_path: str, kind: str, executor: str = "local", workers: int = 2, **opts) -> Runner:
    spec = registry.kind_class(kind).model_validate({"name": "dedup", "kind": kind, "input": "input", **opts})
    recipe = Recipe(
        name="t", run_dir=str(run_dir), seed=0, executor=executor, workers=workers,
        stages=[Files(name="input", kind="files", path=input_path), spec],
    )
    runner = Runner(recipe, progress=False)
    runner.run()
    return runner


def read_clusters(run_dir) -> dict[str, tuple[str, bool]]:
    """A dedup run's `clusters.parquet` as {id: (cluster_id, kept)}."""
    t = pq.read_table(os.path.join(run_dir, "dedup", "clusters.parquet")).to_pylist()
    return {r["id"]: (r["cluster_id"], r["kept"]) for r in t}


def read_kept_ids(run_dir) -> list[str]:
    """The ids of the documents a dedup run kept, in shard order."""
    out = []
    for f in storage.list_shards([os.path.join(run_dir, "dedup")]):
        out += pq.read_table(f, columns=["id"]).column("id").to_pylist()
    return out


def run_graph(common: dict, stage_dir: str) -> int:
    """The phases after `Verify` (or `Buckets`), in process, one task each: rounds until the stars
    converge, labels, decisions, summary. Returns the number of component rounds."""
    from dedup import decide, graph, keep

    k = 1
    while True:
        graph.StarRound(**common, round=k).run(None, 0, 1)
        if graph.converged(common["work_dir"], k):
            break
        k += 1
    graph.Label(**common, round=k).run(None, 0, 1)
    decide.Decide(**common, keep=keep.DEFAULT_KEEP).run(None, 0, 1)
    list(decide.Summary(**common, stage_dir=stage_dir).run(None, 0, 1))
    return k
