"""Round k's training pages, sampled per task (bounded, by seeded hash) and merged (issue 15).

Sample phase, one task per pool slice (the same slices the score phases use, so task r's scores of
earlier rounds are `_work/round_j/scores/part-r.parquet`): for each target the task decides, for its
own pages only, which belong to the seed (under a seed prefix, or grown in an earlier round by that
round's recorded rule), which would join from round k-1's accepted prefixes, and which may serve
as negatives (neither, not recalled by round k-1, and far from the target: see `near_domains`).
It keeps the `max_positives` seed pages, joining pages and `max_negatives` negatives with the
smallest hashes, and counts the rest.

Train task: the smallest hashes over all task files are the smallest hashes of the pool, so the
merged sample is the same for any task count; the summed counts give the seed's size and the
purity proxies that decide whether the joining pages join.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from classifiers.annotate import read_annotations
from classifiers.pages import (
    normalize_prefix,
    page_domain,
    read_pages,
    read_prefix_list,
    under,
)
from classifiers.stats import score_part
from dedup import work
from pipeline import storage
from pipeline.io import ShardReader
from pipeline.web import urls

if TYPE_CHECKING:
    from classifiers.loop import LoopConfig

ROLES = ("seed", "joining", "negative", "near")
SCHEMA = pa.schema([
    ("target", pa.string()), ("role", pa.string()), ("h", pa.uint64()), ("id", pa.string()), ("url", pa.string()),
    ("repo", pa.string()), ("path", pa.string()), ("text", pa.string()),
])
COUNTS = ("pool", "seed", "from_prefixes", "joining", "agree_previous", "agree_first")


def page_hash(seed: int, role: str, doc_id: str) -> int:
    salt = "neg" if role == "negative" else "pos"
    return int.from_bytes(hashlib.sha256(f"{salt}:{seed}:{doc_id}".encode()).digest()[:8], "little")


def seed_prefixes(cfg: LoopConfig, t: str) -> list[str]:
    tc = cfg.target(t)
    out = [normalize_prefix(p, cfg.group_by) for p in tc.seed_prefixes]
    for s in tc.seeds:
        if s.endswith(".txt"):
            out += read_prefix_list(s, cfg.group_by)
    return out


def joins(rule: str, score: float, cut: float, confident: float) -> bool:
    """Auto mode holds joining pages to the recall's standard with confidence; manual mode keeps
    DeepSeekMath's rule (the user vouched for the prefix: its pages the round did not recall join)."""
    return score >= max(cut, confident) if rule == "confident" else score < cut


class _Bottom:
    """The `size` items with the smallest (hash, id), streamed."""

    def __init__(self, size: int):
        self.size, self.heap = size, []

    def add(self, h: int, doc_id: str, row: dict) -> None:
        item = (-h, doc_id, row)
        if len(self.heap) < self.size:
            heapq.heappush(self.heap, item)
        elif item[:2] > self.heap[0][:2]:
            heapq.heapreplace(self.heap, item)

    def rows(self) -> list[dict]:
        return [it[2] for it in sorted(self.heap, key=lambda it: (-it[0], it[1]))]


def near_domains(cfg: LoopConfig, k: int) -> dict[str, list[str]]:
    """target -> the domains near it: those of its seed (files and prefixes) and, from round 2 on,
    those round k-1 found related. Their pages that no round recalled are often missed positives, so
    negatives come from other domains and, as hard negatives, from near pages that round k-1 scored
    at most 1 - `confident_score` under a prefix it (or an earlier round) rejected (`rejected_prefixes`);
    other near pages only fill up when those run short."""
    if k > 1:
        prev = storage.read_json(storage.join(cfg.round_dir(k - 1), "seed.json"), {})
        report = storage.read_json(storage.join(cfg.round_dir(k - 1), "report.json"), {}).get("targets", {})
        return {t: sorted(set(prev.get(t, {}).get("near_domains", [])) | set(report.get(t, {}).get("related_domains", [])))
                for t in cfg.names}
    out = {}
    for t in cfg.names:
        doms = {_prefix_domain(p, cfg.group_by) for p in seed_prefixes(cfg, t)}
        for s in cfg.target(t).seeds:
            if not s.endswith(".txt"):
                doms |= {_domain(p, cfg.group_by) for p in read_pages(s)}
        out[t] = sorted(d for d in doms if d)
    return out


def _prefix_domain(prefix: str, group_by: str) -> str:
    if group_by == "repo":
        return "/".join(prefix.strip("/").split("/")[:2])
    return urls.registered_domain("http://" + prefix) or ""


def _domain(page: dict, group_by: str) -> str:
    """A page's domain as the score files hold it (its `domain`, else its URL's registered domain)."""
    return page_domain({**page, "domain": page.get("domain") or urls.registered_domain(page.get("url")) or ""}, group_by)


def rejected_prefixes(cfg: LoopConfig, k: int) -> dict[str, dict[int, list[str]]]:
    """target -> round j < k -> the candidate prefixes of round j where at least `accept_threshold` of
    the pages score at most 1 - `confident_score`: the mirror of accepting a prefix. Only under them
    are near pages that round j rejected with confidence hard negatives: where a prefix's pages are
    only partly rejected (an API reference the seed's model half recalls), its rejected pages are
    mostly the target's pages that model misses, not sections of another kind. What a round
    rejected stays rejected, as what joined the seed stays in it: a later model, trained on the
    grown seed, need not reject the same prefix as clearly."""
    out: dict[str, dict[int, list[str]]] = {t: {} for t in cfg.names}
    for j in range(1, k):
        report = storage.read_json(storage.join(cfg.round_dir(j), "report.json"), {}).get("targets", {})
        for t in cfg.names:
            if report.get(t, {}).get("rejected_prefixes"):
                out[t][j] = report[t]["rejected_prefixes"]
    return out


def history(cfg: LoopConfig, k: int) -> dict[str, list[dict]]:
    """target -> the growth steps that built seed_{k-1}: [{round j, prefixes, rule}] as recorded in seed.json."""
    out: dict[str, list[dict]] = {t: [] for t in cfg.names}
    for j in range(2, k):
        seed = storage.read_json(storage.join(cfg.round_dir(j), "seed.json"), {})
        for t in cfg.names:
            g = seed.get(t, {}).get("grown_from")
            if g:
                out[t].append(g)
    return out


def write_sample(cfg: LoopConfig, k: int, rank: int, world_size: int) -> None:
    """Task `rank` of round k's sample phase (see the module docstring)."""
    steps = history(cfg, k)
    prefixes = {t: seed_prefixes(cfg, t) for t in cfg.names}
    near = {t: set(v) for t, v in near_domains(cfg, k).items()}
    cut = {j: storage.read_json(storage.join(cfg.round_dir(j), "cutoffs.json"), {}) for j in range(1, k)}
    scores = {}
    for j in range(1, k):
        table = score_part(cfg, j, rank)
        scores[j] = {} if table is None else {r["id"]: r for r in table.to_pylist()}
    grow: dict[str, list[str]] = {t: [] for t in cfg.names}
    rejected = rejected_prefixes(cfg, k)
    if k > 1:
        accepted = read_annotations(cfg, k - 1)
        prev = storage.read_json(storage.join(cfg.round_dir(k - 1), "seed.json"), {})
        grow = {t: [] if prev.get(t, {}).get("growth_stopped") else accepted[t] for t in cfg.names}
    rule = "confident" if cfg.auto_annotate else "unrecalled"
    keep = {(t, r): _Bottom(cfg.max_negatives if r in ("negative", "near") else cfg.max_positives) for t in cfg.names for r in ROLES}
    n: dict[str, dict[str, int]] = {t: dict.fromkeys(COUNTS, 0) for t in cfg.names}
    reader = ShardReader(cfg.pool_dirs)
    for path in reader.files_for(rank, world_size):
        pages = storage.read_parquet(path, columns=["id", "text", "url", "repo", "path"]).to_pylist()
        for page in pages:
            page["text"] = page["text"] or ""
            s = {j: scores[j].get(page["id"]) for j in scores}
            if any(v is None for v in s.values()):
                raise ValueError(f"{path}: page {page['id']!r} has no score in an earlier round; run with --fresh <stage>")
            dom = _domain(s[k - 1] if k > 1 else page, cfg.group_by)
            for t in cfg.names:
                key, c = f"score.{t}", n[t]
                c["pool"] += 1
                role = "negative"
                if prefixes[t] and under(page, prefixes[t], cfg.group_by):
                    role = "seed"
                    c["from_prefixes"] += 1
                elif any(under(page, g["prefixes"], cfg.group_by) and joins(g["rule"], s[g["round"]][key], cut[g["round"]][t], cfg.confident_score)
                         for g in steps[t]):
                    role = "seed"
                elif grow[t] and under(page, grow[t], cfg.group_by) and joins(rule, s[k - 1][key], cut[k - 1][t], cfg.confident_score):
                    role = "joining"
                    c["agree_previous"] += s[k - 1][key] >= cut[k - 1][t]
                    c["agree_first"] += s[1][key] >= cut[1][t]
                elif k > 1 and s[k - 1][key] >= cut[k - 1][t]:
                    continue  # recalled by the previous round: likely a positive, never a negative
                elif dom in near[t] and not any(s[j][key] <= 1 - cfg.confident_score and under(page, ps, cfg.group_by)
                                                for j, ps in rejected[t].items()):
                    role = "near"  # a near page is a (hard) negative only when a round rejected it and its prefix with confidence
                if role in ("seed", "joining"):
                    c[role] += 1
                keep[(t, role)].add(page_hash(cfg.seed, role, page["id"]), page["id"], {"target": t, "role": role, **page})
    rows = [{**r, "h": page_hash(cfg.seed, r["role"], r["id"])} for key in sorted(keep) for r in keep[key].rows()]
    d = storage.join(cfg.work_dir(k), "sample")
    work.write_table(work.task_file(d, rank), pa.Table.from_pylist(rows, schema=SCHEMA))
    storage.write_json(work.task_file(d, rank, "json"), {"targets": n, "growth": grow, "rule": rule, "near": {t: sorted(v) for t, v in near.items()}})


@dataclass
class Growth:
    """What round k-1's annotations add to a target's seed in round k."""

    joining: int = 0
    accepted: list[str] = field(default_factory=list)
    proxy: dict | None = None
    stopped: str | None = None
    rule: str = "confident"


@dataclass
class Merged:
    counts: dict
    growth: Growth
    positives: list[dict]
    negatives: list[dict]
    near: list[str]


def _share(m: int, n: int) -> float | None:
    return round(m / n, 6) if n else None


def merge(cfg: LoopConfig, k: int, want_negatives) -> dict[str, Merged]:
    """target -> the round's pool positives and negatives (smallest hashes over every task's sample) and counts.

    `want_negatives(target, pool positives, pool pages)` says how many negatives a target trains on."""
    d = storage.join(cfg.work_dir(k), "sample")
    counts = {t: dict.fromkeys(COUNTS, 0) for t in cfg.names}
    grow, rule, near = {t: [] for t in cfg.names}, "confident", {t: [] for t in cfg.names}
    for path in work.glob(d, "t*.json"):
        part = storage.read_json(path)
        grow, rule, near = part["growth"], part["rule"], part["near"]
        for t in cfg.names:
            for key in COUNTS:
                counts[t][key] += part["targets"][t][key]
    prev = storage.read_json(storage.join(cfg.round_dir(k - 1), "seed.json"), {}) if k > 1 else {}
    out: dict[str, Merged] = {}
    for t in cfg.names:
        c = counts[t]
        g = Growth(accepted=sorted(grow[t]), stopped=prev.get(t, {}).get("growth_stopped"), rule=rule)
        if grow[t]:
            g.proxy = {"joining": c["joining"], "previous_model": _share(c["agree_previous"], c["joining"]),
                       "first_model": _share(c["agree_first"], c["joining"])}
            agree = g.proxy["first_model"]
            if rule == "confident" and agree is not None and agree < cfg.min_seed_agreement:
                g.stopped = (
                    f"round {k}: {agree:.2f} of the {c['joining']} pages that would join are recalled by the first round's model "
                    f"(min_seed_agreement {cfg.min_seed_agreement}); the seed stops growing"
                )
            else:
                g.joining = c["joining"]
        out[t] = Merged(c, g, [], [], near[t])
    roles = {t: ("seed", "joining") if out[t].growth.joining else ("seed",) for t in cfg.names}
    pos = {t: _Bottom(cfg.max_positives) for t in cfg.names}
    want = {t: max(1, want_negatives(t, min(cfg.max_positives, counts[t]["seed"] + out[t].growth.joining), counts[t]["pool"]))
            for t in cfg.names}
    neg = {(t, r): _Bottom(want[t]) for t in cfg.names for r in ("negative", "near")}
    for path in work.glob(d, "t*.parquet"):
        with storage.open_file(path, "rb") as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=4096):
                for r in batch.to_pylist():
                    t = r["target"]
                    if r["role"] in ("negative", "near"):
                        neg[(t, r["role"])].add(r["h"], r["id"], r)
                    elif r["role"] in roles[t]:
                        pos[t].add(r["h"], r["id"], r)
    for t in cfg.names:
        far = neg[(t, "negative")].rows()
        out[t].positives, out[t].negatives = pos[t].rows(), far + neg[(t, "near")].rows()[: want[t] - len(far)]
    return out

