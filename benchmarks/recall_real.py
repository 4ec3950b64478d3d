"""The recall loop on real documentation pages: per target and round, precision/recall/F1 against labels.

    .venv/bin/python -m benchmarks.recall_real [--cache /work/cache/recall] [--run DIR] [--rounds 3] [--set lr=1.0 ...]

The pool (`benchmarks/recall_pool.py`: Debian documentation packages, labelled by package and
section) is served as WARC files and goes through the realistic path: `web_ingest ->
web_extract -> recall` (targets code and math, 30 seed pages each from two domains,
`auto_annotate: true`). For every round the script reads the round's score files and cutoffs
and reports, per target: precision, recall and F1 of the recalled pages against the labels
(pages whose label is None for a target are not counted), the target domains found beyond the
seed domains (a domain is found when the round recalls at least half of its target pages), the
seed's size and its true purity (share of the seed's pool pages that carry the target's label;
seed files count as pure), next to the loop's own purity proxy. Round 1 is the seeds-only model.
A keyword heuristic on the same extracted text is the baseline: code = a fenced code block,
math = a LaTeX span (`$…$`, `\\(…\\)`, `\\[…\\]`).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import yaml

TARGETS = ("code", "math")
# (target, label key): code is also scored counting the mathematics libraries' API pages as code
EVAL = (("code", "code"), ("code", "code_with_math_libs"), ("math", "math"))
FENCE = re.compile(r"^```", re.M)
LATEX = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$|\\\(.+?\\\)|\\\[.+?\\\]", re.S)


def heuristic(target: str, text: str) -> bool:
    return bool(FENCE.search(text)) if target == "code" else bool(LATEX.search(text))


def prf(pred: set, gold: set, universe: set) -> dict:
    tp = len(pred & gold & universe)
    p_n, g_n = len(pred & universe), len(gold & universe)
    p = tp / p_n if p_n else 0.0
    r = tp / g_n if g_n else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def recipe(run_dir: Path, pool: Path, rounds: int, keys: dict) -> dict:
    return {
        "name": "recall-real", "run_dir": str(run_dir), "seed": 1, "executor": "local", "workers": 2,
        "stages": [
            {"name": "web_ingest", "kind": "web_ingest", "paths": [str(pool / "web" / "*.warc.gz")]},
            {"name": "web_extract", "kind": "web_extract", "input": "web_ingest"},
            {"name": "recall", "kind": "recall", "input": "web_extract", "rounds": rounds, "auto_annotate": True,
             "targets": {t: {"seeds": [str(pool / "seeds" / f"{t}.jsonl")]} for t in TARGETS}, **keys},
        ],
    }


def domain_of(url: str) -> str:
    from pipeline.web.urls import registered_domain

    return registered_domain(url) or ""


def evaluate(run_dir: Path, pool: Path, rounds: int) -> list[dict]:
    labels = {r["url"]: r for r in map(json.loads, open(pool / "labels.jsonl"))}
    seed_urls = {t: [json.loads(ln)["url"] for ln in open(pool / "seeds" / f"{t}.jsonl")] for t in TARGETS}
    seed_domains = {t: {domain_of(u) for u in seed_urls[t]} for t in TARGETS}
    texts, url_of = {}, {}
    for f in sorted((run_dir / "web_extract").glob("*.parquet")):
        for r in pq.read_table(f, columns=["id", "url", "text"]).to_pylist():
            texts[r["url"]], url_of[r["id"]] = r["text"], r["url"]
    rows = []
    for t, key in EVAL:
        universe = {u for u in texts if u in labels and labels[u][key] is not None}
        gold = {u for u in universe if labels[u][key] == 1}
        by_dom = defaultdict(set)
        for u in gold:
            by_dom[domain_of(u)].add(u)
        beyond = {d for d in by_dom if d not in seed_domains[t]}
        h = prf({u for u in universe if heuristic(t, texts[u])}, gold, universe)
        rows.append({"target": key, "round": "keyword", **h, "found": "", "seed": "", "purity": "", "proxy": ""})
        for k in range(1, rounds + 1):
            rd = run_dir / "recall" / "rounds" / f"round_{k}"
            rep = json.loads((rd / "report.json").read_text())["targets"][t]
            seed = json.loads((rd / "seed.json").read_text())[t]
            cut = json.loads((rd / "cutoffs.json").read_text())[t]
            scores = pq.read_table(run_dir / "recall" / "_work" / f"round_{k}" / "scores").to_pylist()
            pred = {r["url"] for r in scores if r[f"score.{t}"] >= cut}
            m = prf(pred, gold, universe)
            found = sum(1 for d in beyond if len(pred & by_dom[d]) >= len(by_dom[d]) / 2)
            pure = sum(1 for i in seed["pool_ids"] if labels[url_of[i]][key] == 1) + seed["from_files"]
            rows.append({
                "target": key, "round": k, **m, "found": f"{found}/{len(beyond)}", "seed": seed["size"],
                "purity": pure / max(1, seed["size"]), "proxy": rep.get("seed_purity_proxy"),
                "heldout": rep["heldout"], "stopped_growing": rep.get("seed_growth_stopped"),
            })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default="/work/cache/recall")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--run", help="the run directory (default: CACHE/run); its web_ingest/web_extract are reused when present")
    ap.add_argument("--set", nargs="*", default=[], help="recall-stage keys, key=YAML value")
    ap.add_argument("--evaluate-only", action="store_true", help="report on the run already on disk")
    args = ap.parse_args()
    from benchmarks.recall_pool import build
    from pipeline.recipe import parse_recipe
    from pipeline.runner import Runner

    cache = Path(args.cache)
    build(cache)
    pool = cache / "pool"
    keys = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    run_dir = Path(args.run) if args.run else cache / "run"
    r = parse_recipe(recipe(run_dir, pool, args.rounds, keys))
    if not args.evaluate_only:
        runner = Runner(r, progress=False)
        runner.fresh(["recall"])  # the recall stage always runs again; ingest and extract are kept
        t0 = time.perf_counter()
        runner.run()
        print(f"keys: {keys or 'defaults'}; {args.rounds} rounds; wall {time.perf_counter() - t0:.0f}s (ingest/extract cached after the first run)")
    print(f"{'target':<19} {'round':<8} {'P':>6} {'R':>6} {'F1':>6}  {'found':>6} {'seed':>5} {'purity':>6}  proxy / held-out")
    for row in evaluate(run_dir, pool, args.rounds):
        seed = row["seed"]
        pur = f"{row['purity']:.2f}" if row["purity"] != "" else ""
        extra = "" if row["round"] == "keyword" else f"{row['proxy']} / {row['heldout']}"
        print(f"{row['target']:<19} {str(row['round']):<8} {row['precision']:6.3f} {row['recall']:6.3f} {row['f1']:6.3f}  "
              f"{row['found']:>6} {seed!s:>5} {pur:>6}  {extra}")


if __name__ == "__main__":
    main()
