"""A round's domain and URL-prefix statistics as a partitioned group-by (issue 15: no task holds every page).

Three phases after a round's scoring, none of which reads every page's row in one task:

- cutoffs (one task): the score a page needs, per target. With a token budget, from the per-task
  top lists that `ScoreFileWriter` writes (each a task's best pages that fit in the budget, which
  hold the global best that fit: a page that fits the budget fits it among its own task's pages);
- route (one task per score file): the task's pages counted per (target, domain) and (target,
  prefix) - pages, recalled, confident, the first titles - written partitioned by domain with
  `dedup.work.PartWriter`; its recalled ids (`rounds/round_k/recalled/`) and counts;
- group (a fixed number of `partitions`): sums a partition's rows and applies the rules that need a
  whole domain (related domains, candidate prefixes), so the analysis merges O(domains + candidates).
"""

from __future__ import annotations

import json
import math
import zlib
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from classifiers.pages import page_domain, page_prefixes
from dedup import work
from pipeline import storage

if TYPE_CHECKING:
    from classifiers.loop import LoopConfig

STAT_SCHEMA = pa.schema([
    ("target", pa.string()), ("domain", pa.string()), ("prefix", pa.string()), ("depth", pa.int64()),
    ("pages", pa.int64()), ("recalled", pa.int64()), ("confident", pa.int64()), ("rejected", pa.int64()), ("titles", pa.string()),
])  # prefix "" and depth -1: the domain's own row; rejected: pages scoring at most 1 - confident_score;
# titles: JSON [[id, title], ...], the first recalled ids
RECALLED_SCHEMA = pa.schema([("target", pa.string()), ("id", pa.string()), ("score", pa.float64())])
TOP_SCHEMA = pa.schema([("target", pa.string()), ("id", pa.string()), ("score", pa.float64()), ("tokens", pa.int64())])
TITLES = 3


def _part(target: str, domain: str, partitions: int) -> int:
    return zlib.crc32(f"{target}\0{domain}".encode()) % partitions


def top_within_budget(ids: list[str], scores: list[float], tokens: list[int], budget: int) -> list[int]:
    """Indices of the best pages (by score, then id) whose tokens add up to at most `budget`."""
    used, out = 0, []
    for i in sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i])):
        if used + tokens[i] > budget:
            break
        used += tokens[i]
        out.append(i)
    return out


def read_table(path: str) -> pa.Table | None:
    if not storage.exists(path):
        return None
    return storage.read_parquet(path)


def score_part(cfg: LoopConfig, k: int, rank: int) -> pa.Table | None:
    """Round k's scores of the pages task `rank` scored (its pool files: the same for every phase of the stage)."""
    return read_table(storage.join(cfg.scores_dir(k), f"part-{rank:05d}.parquet"))


def compute_cutoffs(cfg: LoopConfig, k: int) -> dict[str, float]:
    """target -> the lowest score recalled: just above the threshold (a page must score above it; a page
    the model knows nothing about scores exactly 0.5), or with a token budget the lowest score among the
    top pages that fit in it (merged from the score tasks' top lists)."""
    cut: dict[str, float] = {}
    rows = [r for p in work.glob(cfg.top_dir(k), "part-*.parquet") for r in read_table(p).to_pylist()]
    for t in cfg.names:
        tc = cfg.target(t)
        if tc.token_budget is None:
            cut[t] = math.nextafter(tc.threshold, math.inf)
            continue
        mine = [r for r in rows if r["target"] == t]
        best = top_within_budget([r["id"] for r in mine], [r["score"] for r in mine], [r["tokens"] for r in mine], tc.token_budget)
        cut[t] = min((mine[i]["score"] for i in best), default=float("inf"))
    storage.write_json(storage.join(cfg.round_dir(k), "cutoffs.json"), cut)
    return cut


def route(cfg: LoopConfig, k: int, rank: int) -> None:
    table = score_part(cfg, k, rank)
    rows = [] if table is None else sorted(table.to_pylist(), key=lambda r: r["id"])
    prev = score_part(cfg, k - 1, rank) if k > 1 else None
    prev_rows = {} if prev is None else {r["id"]: r for r in prev.to_pylist()}
    cut = storage.read_json(storage.join(cfg.round_dir(k), "cutoffs.json"))
    cut_prev = storage.read_json(storage.join(cfg.round_dir(k - 1), "cutoffs.json"), {}) if k > 1 else {}
    acc: dict[tuple, list] = {}
    recalled: list[dict] = []
    counts: dict = {"pages": len(rows), "targets": {}}
    for t in cfg.names:
        key, sure, unsure = f"score.{t}", max(cut[t], cfg.confident_score), 1 - cfg.confident_score
        n_rec = tokens = overlap = 0
        for r in rows:
            hit = r[key] >= cut[t]
            if hit:
                recalled.append({"target": t, "id": r["id"], "score": r[key]})
                n_rec, tokens = n_rec + 1, tokens + r["tokens"]
                p = prev_rows.get(r["id"])
                overlap += p is not None and p[key] >= cut_prev.get(t, math.inf)
            dom = page_domain(r, cfg.group_by)
            if not dom:
                continue
            for depth, prefix in [(-1, "")] + page_prefixes(r, cfg.group_by, cfg.prefix_depth):
                e = acc.setdefault((t, dom, prefix), [depth, 0, 0, 0, 0, []])
                e[1] += 1
                e[2] += hit
                e[3] += r[key] >= sure
                e[4] += r[key] <= unsure
                if hit and len(e[5]) < TITLES and r["title"]:
                    e[5].append([r["id"], r["title"]])
        counts["targets"][t] = {"recalled": n_rec, "tokens": tokens, "overlap": overlap}
    keys = sorted(acc)
    stats = pa.table({
        "target": [k_[0] for k_ in keys], "domain": [k_[1] for k_ in keys], "prefix": [k_[2] for k_ in keys],
        "depth": [acc[k_][0] for k_ in keys], "pages": [acc[k_][1] for k_ in keys], "recalled": [acc[k_][2] for k_ in keys],
        "confident": [acc[k_][3] for k_ in keys], "rejected": [acc[k_][4] for k_ in keys],
        "titles": [json.dumps(acc[k_][5]) for k_ in keys],
    }, schema=STAT_SCHEMA)
    parts = np.array([_part(k_[0], k_[1], cfg.partitions) for k_ in keys], dtype=np.int64)
    work.write_parts(work.task_file(storage.join(cfg.work_dir(k), "stats"), rank), stats, parts)
    work.write_table(storage.join(cfg.round_dir(k), "recalled", f"part-{rank:05d}.parquet"),
                     pa.Table.from_pylist(recalled, schema=RECALLED_SCHEMA))
    storage.write_json(work.task_file(storage.join(cfg.work_dir(k), "stats"), rank, "json"), counts)


def _sum(table: pa.Table) -> dict[tuple, dict]:
    out: dict[tuple, dict] = {}
    for r in table.to_pylist():
        e = out.setdefault((r["target"], r["domain"], r["prefix"]),
                           {"depth": r["depth"], "pages": 0, "recalled": 0, "confident": 0, "rejected": 0, "titles": []})
        for c in ("pages", "recalled", "confident", "rejected"):
            e[c] += r[c]
        e["titles"] = sorted(e["titles"] + json.loads(r["titles"]))[:TITLES]
    return out


def group(cfg: LoopConfig, k: int, rank: int, world_size: int) -> None:
    """Each partition's domains: related or not; the candidate prefixes of the related ones."""
    d = storage.join(cfg.work_dir(k), "stats")
    reader = work.PartReader(work.glob(d, "t*.parquet"), STAT_SCHEMA)
    out: list[dict] = []
    for q in work.mine(cfg.partitions, rank, world_size):
        sums = _sum(reader.read(q))
        related = {(t, dom) for (t, dom, p), e in sums.items() if not p and e["recalled"] / e["pages"] > cfg.domain_threshold}
        for (t, dom, p), e in sorted(sums.items()):
            if not p:
                out.append({"target": t, "domain": dom, "prefix": "", **e, "titles": "[]"})
            elif (t, dom) in related and e["pages"] >= cfg.min_prefix_pages:
                out.append({"target": t, "domain": dom, "prefix": p, **e, "titles": json.dumps([x[1] for x in e["titles"]])})
    work.write_table(work.task_file(storage.join(cfg.work_dir(k), "groups"), rank), pa.Table.from_pylist(out, schema=STAT_SCHEMA))


def grouped(cfg: LoopConfig, k: int) -> tuple[dict, list[dict], dict]:
    """The group phase's output: (target -> domain -> counts, candidate prefix rows, summed route counts)."""
    domains: dict[str, dict] = defaultdict(dict)
    cands: list[dict] = []
    for path in work.glob(storage.join(cfg.work_dir(k), "groups"), "t*.parquet"):
        for r in read_table(path).to_pylist():
            if r["prefix"]:
                cands.append(r)
            else:
                domains[r["target"]][r["domain"]] = {"pages": r["pages"], "recalled": r["recalled"], "fraction": round(r["recalled"] / r["pages"], 6)}
    counts: dict = {"pages": 0, "targets": {t: {"recalled": 0, "tokens": 0, "overlap": 0} for t in cfg.names}}
    for path in work.glob(storage.join(cfg.work_dir(k), "stats"), "t*.json"):
        c = storage.read_json(path)
        counts["pages"] += c["pages"]
        for t, v in c["targets"].items():
            for key in v:
                counts["targets"][t][key] += v[key]
    cands.sort(key=lambda r: (r["target"], r["domain"], r["prefix"]))
    return {t: dict(sorted(v.items())) for t, v in domains.items()}, cands, counts

