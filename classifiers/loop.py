"""The recall loop's rounds (DeepSeekMath, sec. 2.1), as functions the stage's one-task phases call.

Round k: `train_round` builds seed_k (round 1: the seed files and the pool pages under the
seed prefixes; later rounds: seed_{k-1} plus pool pages grown from the labels of
`annotations/round_{k-1}.csv`), samples negatives from the pool and trains one fastText model
per target. The stage then scores the pool (a distributed phase), and `analyze_round` decides
what is recalled, which domains are related (recalled share above `domain_threshold`), which
URL prefixes inside them are candidates, writes `annotations/round_k.csv` and the round report.
With `group_by="repo"` the same loop runs over GitHub files: a repository is the "domain" and
its directories (`owner/name/src/`) are the prefixes.

Files under the stage directory:

    rounds/config.json                 the loop's settings (a changed setting needs --fresh)
    rounds/round_k/seed.json           seed sizes, pool ids in the seed, grown pages, accepted prefixes
    rounds/round_k/model_<target>/     model.bin + model.json
    rounds/round_k/recalled.parquet    (target, id, score) of every recalled page
    rounds/round_k/cutoffs.json        target -> the score a page needs to be recalled
    rounds/round_k/report.json         the round's numbers (see `analyze_round`)
    annotations/round_k.csv            candidate prefixes; users edit the `label` column (yes/no)
    _work/round_k/scores/part-*.parquet  every page's scores
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import io
import math
import posixpath
from collections import defaultdict

import pyarrow as pa
import pyarrow.parquet as pq

from classifiers.annotate import CSV_COLUMNS, Growth, grow_seed, read_scores
from classifiers.model import TrainError, train
from classifiers.pages import normalize_prefix, page_domain, page_prefixes, read_pages, read_prefix_list, under
from classifiers.settings import Hyper, LoopKeys, TargetConfig
from pipeline import documents, storage


class LoopConfig(LoopKeys):
    """The loop's keys plus where it runs: what each round's task receives."""

    stage_dir: str
    pool_dirs: list[str]
    targets: dict[str, dict]
    hyper: dict = {}
    seed: int = 0

    def target(self, name: str) -> TargetConfig:
        return TargetConfig(**self.targets[name])

    @property
    def names(self) -> list[str]:
        return sorted(self.targets)

    def round_dir(self, k: int) -> str:
        return storage.join(self.stage_dir, "rounds", f"round_{k}")

    def scores_dir(self, k: int) -> str:
        return storage.join(self.stage_dir, "_work", f"round_{k}", "scores")

    def annotations(self, k: int) -> str:
        return storage.join(self.stage_dir, "annotations", f"round_{k}.csv")

    def model_dir(self, k: int, target: str) -> str:
        return storage.join(self.round_dir(k), f"model_{target}")

    def fingerprint(self) -> dict:
        """The settings a continued loop must keep (rounds and annotation mode may change)."""
        return self.model_dump(exclude={"stage_dir", "pool_dirs", "auto_annotate"})


def _h(seed: int, doc_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"neg:{seed}:{doc_id}".encode()).digest()[:8], "little")


# ---- round k: seed and training ------------------------------------------------------------


def _check_config(cfg: LoopConfig) -> None:
    path = storage.join(cfg.stage_dir, "rounds", "config.json")
    saved = storage.read_json(path)
    now = documents.dumps(cfg.fingerprint())
    if saved is None:
        storage.write_json(path, cfg.fingerprint())
    elif documents.dumps(saved) != now:
        raise TrainError(
            f"{path}: the loop's settings changed since its first round; run with --fresh <stage> (or a new run_dir) to start over"
        )


def train_round(cfg: LoopConfig, k: int) -> dict:
    """Build seed_k for every target, refuse empty seeds, train the models, check them on their
    held-out pages; returns seed.json."""
    from pipeline.io import ShardReader

    _check_config(cfg)
    prev = storage.read_json(storage.join(cfg.round_dir(k - 1), "seed.json"), {}) if k > 1 else {}
    growth = grow_seed(cfg, k - 1) if k > 1 else {t: Growth() for t in cfg.names}
    # pages the previous round recalled are not sampled as negatives (they are likely positives)
    not_negative = recalled_ids(cfg.round_dir(k - 1)) if k > 1 else {}
    file_pages: dict[str, list[dict]] = {}
    prefixes: dict[str, list[str]] = {}
    pool_ids: dict[str, set[str]] = {}
    joined: dict[str, int] = {}  # grown pages not already in the seed (e.g. under a seed prefix)
    for t in cfg.names:
        tc = cfg.target(t)
        file_pages[t], prefixes[t] = [], [normalize_prefix(p, cfg.group_by) for p in tc.seed_prefixes]
        for s in tc.seeds:
            if s.endswith(".txt"):
                prefixes[t] += read_prefix_list(s, cfg.group_by)
            else:
                file_pages[t] += list(read_pages(s))
        before = set(prev.get(t, {}).get("pool_ids", []))
        pool_ids[t] = before | set(growth[t].ids)
        joined[t] = len(pool_ids[t]) - len(before)

    positives: dict[str, list[dict]] = {t: [] for t in cfg.names}
    from_prefixes: dict[str, int] = defaultdict(int)
    heaps: dict[str, list] = {t: [] for t in cfg.names}
    reader = ShardReader(cfg.pool_dirs)
    n_pool = 0
    for path in reader.files_for(0, 1):
        for row in storage.read_parquet(path, columns=["id", "text", "url", "repo", "path"]).to_pylist():
            n_pool += 1
            page = {**row, "text": row["text"] or ""}
            h = None
            for t in cfg.names:
                if page["id"] in pool_ids[t]:
                    positives[t].append(page)
                elif prefixes[t] and under(page, prefixes[t], cfg.group_by):
                    positives[t].append(page)
                    pool_ids[t].add(page["id"])
                    from_prefixes[t] += 1
                elif page["id"] not in not_negative.get(t, ()):
                    h = _h(cfg.seed, page["id"]) if h is None else h
                    item = (-h, page["id"], page)
                    if len(heaps[t]) < cfg.max_negatives:
                        heapq.heappush(heaps[t], item)
                    elif item > heaps[t][0]:
                        heapq.heapreplace(heaps[t], item)

    for t in cfg.names:  # refuse empty seeds before any training starts
        if not file_pages[t] and not positives[t]:
            raise TrainError(
                f"target {t!r}: the seed is empty (no pages in {cfg.target(t).seeds or 'no seed files'}, "
                f"none of the pool under {prefixes[t] or 'no prefixes'}); refusing to train"
            )
    seed_info: dict[str, dict] = {}
    hyper = Hyper(**cfg.hyper)
    for t in cfg.names:
        pos = file_pages[t] + positives[t]
        cands = sorted(heaps[t], key=lambda it: (-it[0], it[1]))
        # never most of a small pool: there the targets' own pages would be most negatives
        want = min(max(cfg.min_negatives, round(cfg.negatives_per_positive * len(pos))), max(1, int(cfg.max_negative_share * n_pool)))
        neg = [it[2] for it in cands[: min(len(cands), want)]]
        seed_info[t] = {
            "size": len(pos),
            "from_files": len(file_pages[t]),
            "from_prefixes": from_prefixes[t],
            "grown": joined[t],
            "accepted_prefixes": growth[t].accepted,
            "purity_proxy": growth[t].proxy,
            "growth_stopped": growth[t].stopped or prev.get(t, {}).get("growth_stopped"),
            "negatives": len(neg),
            "pool_ids": sorted(pool_ids[t]),
        }
        meta = train(
            pos, neg, cfg.model_dir(k, t), tokenizer=cfg.tokenizer, hyper=hyper, heldout=cfg.heldout,
            threshold=cfg.target(t).threshold, target=t, round=k, clean_negatives=True,
        )
        check_model(cfg, t, k, meta)
    storage.write_json(storage.join(cfg.round_dir(k), "seed.json"), seed_info)
    return seed_info


def check_model(cfg: LoopConfig, target: str, k: int, meta: dict) -> None:
    """Stop the loop (one line) when a round's model does poorly on its held-out seed pages,
    instead of scoring the pool with a model that learned nothing."""
    m = meta["metrics"]["heldout"]
    n, npos = m["n"], m["positives"]
    for key, floor in (("auc", cfg.min_auc), ("recall", cfg.min_recall)):
        got = m[key]
        if got is not None and got < floor:
            raise TrainError(
                f"target {target!r} round {k}: held-out {key} {got:.3f} is below min_{key} {floor} "
                f"({npos} seed and {n - npos} negative pages held out, {meta['data']['positives']['count']} seed pages); "
                f"add seed pages, or check that they are {target} pages"
            )

# ---- round k: analysis ---------------------------------------------------------------------


def _cutoff(scores: list[float], tokens: list[int], tc: TargetConfig) -> float:
    """The lowest score recalled: just above the threshold (a page must score above it; a page the
    model knows nothing about scores exactly 0.5), or with a token budget the lowest score among
    the top pages that fit in it."""
    if tc.token_budget is None:
        return math.nextafter(tc.threshold, math.inf)
    used, cut = 0, float("inf")
    for s, n in sorted(zip(scores, tokens), key=lambda x: -x[0]):
        if used + n > tc.token_budget:
            break
        used += n
        cut = s
    return cut


def analyze_round(cfg: LoopConfig, k: int) -> dict:
    """Recall, domains, prefix candidates, the annotation CSV and the round report of round k."""
    table = read_scores(cfg, k)
    rows = table.to_pylist()
    rows.sort(key=lambda r: r["id"])
    seed_info = storage.read_json(storage.join(cfg.round_dir(k), "seed.json"), {})
    prev_report = storage.read_json(storage.join(cfg.round_dir(k - 1), "report.json"), {}) if k > 1 else {}
    prev_recalled = recalled_ids(cfg.round_dir(k - 1)) if k > 1 else {}
    rule = {"confident_score": cfg.confident_score, "accept_threshold": cfg.accept_threshold, "min_prefix_pages": cfg.min_prefix_pages}
    cutoffs, recalled_rows, csv_rows, report = {}, [], [], {"round": k, "annotation_rule": rule, "targets": {}}
    for t in cfg.names:
        tc = cfg.target(t)
        key = f"score.{t}"
        cut = cutoffs[t] = _cutoff([r[key] for r in rows], [r["tokens"] for r in rows], tc)
        rec = [r for r in rows if r[key] >= cut]
        rec_ids = {r["id"] for r in rec}
        sure = max(cut, cfg.confident_score)
        recalled_rows += [{"target": t, "id": r["id"], "score": r[key]} for r in rec]
        per_domain: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in rows:
            d = per_domain[page_domain(r, cfg.group_by)]
            d[0] += 1
            d[1] += r["id"] in rec_ids
        domains = {d: {"pages": n, "recalled": m, "fraction": round(m / n, 6)} for d, (n, m) in sorted(per_domain.items()) if d}
        related = sorted(d for d, v in domains.items() if v["fraction"] > cfg.domain_threshold)
        prefixes: dict[str, dict] = {}
        for r in rows:
            dom = page_domain(r, cfg.group_by)
            if dom not in related:
                continue
            for depth, p in page_prefixes(r, cfg.group_by, cfg.prefix_depth):
                e = prefixes.setdefault(p, {"domain": dom, "depth": depth, "pages": 0, "recalled": 0, "confident": 0, "titles": []})
                e["pages"] += 1
                e["confident"] += r[key] >= sure
                if r["id"] in rec_ids:
                    e["recalled"] += 1
                    if len(e["titles"]) < 3 and r["title"]:
                        e["titles"].append(r["title"])
        suggested_yes = []
        for p, e in sorted(prefixes.items(), key=lambda x: (x[1]["domain"], x[0])):
            if e["pages"] < cfg.min_prefix_pages:
                continue
            frac, conf = e["recalled"] / e["pages"], e["confident"] / e["pages"]
            sug = "yes" if conf >= cfg.accept_threshold else "no"
            if sug == "yes":
                suggested_yes.append(p)
            csv_rows.append({
                "target": t, "domain": e["domain"], "prefix": p, "depth": e["depth"], "pages": e["pages"],
                "recalled": e["recalled"], "recalled_fraction": f"{frac:.4f}",
                "confident": e["confident"], "confident_fraction": f"{conf:.4f}", "sample_titles": " | ".join(e["titles"]),
                "suggested": sug, "label": sug if cfg.auto_annotate else "",
            })
        prev_t = prev_report.get("targets", {}).get(t, {})
        prev_ids = prev_recalled.get(t)
        meta = storage.read_json(storage.join(cfg.model_dir(k, t), "model.json"), {})
        held = meta.get("metrics", {}).get("heldout", {})
        si = seed_info.get(t, {})
        report["targets"][t] = {
            "seed_size": si.get("size", 0),
            "seed_grown": si.get("grown", 0),
            "accepted_prefixes": si.get("accepted_prefixes", []),
            "seed_purity_proxy": si.get("purity_proxy"),
            "seed_growth_stopped": si.get("growth_stopped"),
            "negatives": si.get("negatives", 0),
            "pages_scored": len(rows),
            "pages_recalled": len(rec),
            "tokens_recalled": sum(r["tokens"] for r in rec),
            "cutoff": cut,
            "related_domains": related,
            "new_domains": sorted(set(related) - set(prev_t.get("related_domains", []))),
            "candidate_prefixes": sum(1 for c in csv_rows if c["target"] == t),
            "suggested_prefixes": suggested_yes,
            "new_prefixes": sorted(set(suggested_yes) - set(prev_t.get("suggested_prefixes", []))),
            "overlap_with_previous": (round(len(rec_ids & prev_ids) / len(rec_ids), 6) if rec_ids else None) if prev_ids is not None else None,
            "heldout": {m: held.get(m) for m in ("precision", "recall", "f1", "auc")},
            "domains": domains,
        }
    rd = cfg.round_dir(k)
    storage.write_json(storage.join(rd, "cutoffs.json"), cutoffs)
    rows = [{"target": c["target"], "prefix": c["prefix"], "suggested": c["suggested"]} for c in csv_rows]
    storage.write_json(storage.join(rd, "candidates.json"), {"rows": rows})
    _write_recalled(storage.join(rd, "recalled.parquet"), recalled_rows)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(csv_rows)
    fs, p = storage.fs_and_path(cfg.annotations(k))
    fs.makedirs(posixpath.dirname(p), exist_ok=True)
    with fs.open(p, "w", encoding="utf-8") as f:
        f.write(buf.getvalue())
    storage.write_json(storage.join(rd, "report.json"), report)
    return report


def _write_recalled(path: str, rows: list[dict]) -> None:
    schema = pa.schema([("target", pa.string()), ("id", pa.string()), ("score", pa.float64())])
    fs, p = storage.fs_and_path(path)
    fs.makedirs(posixpath.dirname(p), exist_ok=True)
    with fs.open(p, "wb") as f:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), f, compression="zstd")


def recalled_ids(round_dir: str) -> dict[str, set[str]]:
    """target -> ids recalled in a round, from its `recalled.parquet`."""
    path = storage.join(round_dir, "recalled.parquet")
    if not storage.exists(path):
        return {}
    rows = storage.read_parquet(path).to_pylist()
    out: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        out[r["target"]].add(r["id"])
    return dict(out)
