"""The recall loop's rounds (DeepSeekMath, sec. 2.1): the one-task phases' functions.

Round k: the sample phase (`classifiers.sample`, one task per pool slice) picks seed_k's pool
pages (round 1: those under the seed prefixes; later rounds: seed_{k-1} plus the pages joining
from the labels of `annotations/round_{k-1}.csv`) and negatives; `train_round` merges them with
the seed files and trains one fastText model per target. The stage then scores the pool, the
cutoffs/route/group phases (`classifiers.stats`) count recalled pages per domain and URL prefix,
and `analyze_round` writes the candidate prefixes to `annotations/round_k.csv` and the report.
With `group_by="repo"` the same loop runs over GitHub files: a repository is the "domain" and
its directories (`owner/name/src/`) are the prefixes.

Files under the stage directory:

    rounds/config.json                 the loop's settings (a changed setting needs --fresh)
    rounds/round_k/seed.json           seed sizes, pool ids in the seed, grown pages, accepted prefixes
    rounds/round_k/model_<target>/     model.bin + model.json
    rounds/round_k/recalled/part-*.parquet  (target, id, score) of every recalled page
    rounds/round_k/cutoffs.json        target -> the score a page needs to be recalled
    rounds/round_k/report.json         the round's numbers (see `analyze_round`)
    annotations/round_k.csv            candidate prefixes; users edit the `label` column (yes/no)
    _work/round_k/scores/part-*.parquet  every page's scores 
    _work/round_k/top/part-*.parquet     with a token budget: each score task's best pages that fit in it
    _work/round_k/{sample,stats,groups}/ the sample, route and group phases' task files
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from collections import defaultdict

from classifiers import sample, stats
from classifiers.annotate import CSV_COLUMNS
from classifiers.model import TrainError, train
from classifiers.pages import page_prefixes, read_pages
from classifiers.settings import Hyper, LoopKeys, TargetConfig
from dedup import work
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

    def work_dir(self, k: int) -> str:
        return storage.join(self.stage_dir, "_work", f"round_{k}")

    def scores_dir(self, k: int) -> str:
        return storage.join(self.work_dir(k), "scores")

    def top_dir(self, k: int) -> str:
        return storage.join(self.work_dir(k), "top")

    def annotations(self, k: int) -> str:
        return storage.join(self.stage_dir, "annotations", f"round_{k}.csv")

    def model_dir(self, k: int, target: str) -> str:
        return storage.join(self.round_dir(k), f"model_{target}")

    def fingerprint(self) -> dict:
        """The settings a continued loop must keep (rounds and annotation mode may change)."""
        return self.model_dump(exclude={"stage_dir", "pool_dirs", "auto_annotate"})


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


def _want(cfg: LoopConfig, positives: int, pool: int) -> int:
    """Negatives per target: `negatives_per_positive` of the seed, at least `min_negatives`, and never most
    of a small pool (there the targets' own pages would be most negatives)."""
    return min(max(cfg.min_negatives, round(cfg.negatives_per_positive * positives)), max(1, int(cfg.max_negative_share * pool)))


def train_round(cfg: LoopConfig, k: int) -> dict:
    """Merge the sample phase's pages into seed_k and negatives for every target, refuse empty seeds,
    train the models, check them on their held-out pages; returns seed.json."""
    _check_config(cfg)
    file_pages = {t: [p for s in cfg.target(t).seeds if not s.endswith(".txt") for p in read_pages(s)] for t in cfg.names}
    merged = sample.merge(cfg, k, lambda t, n_pos, pool: _want(cfg, len(file_pages[t]) + n_pos, pool))
    for t in cfg.names:  # refuse empty seeds before any training starts
        if not file_pages[t] and not merged[t].positives:
            raise TrainError(
                f"target {t!r}: the seed is empty (no pages in {cfg.target(t).seeds or 'no seed files'}, "
                f"none of the pool under {sample.seed_prefixes(cfg, t) or 'no prefixes'}); refusing to train"
            )
    seed_info: dict[str, dict] = {}
    hyper = Hyper(**cfg.hyper)
    for t in cfg.names:
        m, g = merged[t], merged[t].growth
        seed_info[t] = {
            "size": len(file_pages[t]) + m.counts["seed"] + g.joining,
            "from_files": len(file_pages[t]),
            "from_prefixes": m.counts["from_prefixes"],
            "grown": g.joining,
            "accepted_prefixes": g.accepted,
            "grown_from": {"round": k - 1, "prefixes": g.accepted, "rule": g.rule} if g.joining else None,
            "purity_proxy": g.proxy,
            "growth_stopped": g.stopped,
            "negatives": len(m.negatives),
            "near_domains": m.near,
            "pool_ids": sorted(p["id"] for p in m.positives),
        }
        near = set(m.near)

        def far_section(page: dict, near=near) -> str | None:
            """A far negative's deepest URL prefix; hard negatives (near domains) were judged by prefix already."""
            if sample._domain(page, cfg.group_by) in near:
                return None
            prefixes = page_prefixes(page, cfg.group_by, cfg.prefix_depth)
            return prefixes[-1][1] if prefixes else None

        meta = train(
            file_pages[t] + m.positives, m.negatives, cfg.model_dir(k, t), tokenizer=cfg.tokenizer, hyper=hyper,
            heldout=cfg.heldout, threshold=cfg.target(t).threshold, target=t, round=k, clean_negatives=True,
            section_of=far_section,
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


def analyze_round(cfg: LoopConfig, k: int) -> dict:
    """Prefix candidates, the annotation CSV and the round report of round k, from the group phase's output."""
    domains, cands, counts = stats.grouped(cfg, k)
    cutoffs = storage.read_json(storage.join(cfg.round_dir(k), "cutoffs.json"))
    seed_info = storage.read_json(storage.join(cfg.round_dir(k), "seed.json"), {})
    prev_report = storage.read_json(storage.join(cfg.round_dir(k - 1), "report.json"), {}) if k > 1 else {}
    rule = {"confident_score": cfg.confident_score, "accept_threshold": cfg.accept_threshold, "min_prefix_pages": cfg.min_prefix_pages}
    csv_rows, report = [], {"round": k, "annotation_rule": rule, "targets": {}}
    for t in cfg.names:
        doms = domains.get(t, {})
        related = sorted(d for d, v in doms.items() if v["fraction"] > cfg.domain_threshold)
        suggested_yes, rejected = [], []
        for e in (c for c in cands if c["target"] == t):
            frac, conf = e["recalled"] / e["pages"], e["confident"] / e["pages"]
            sug = "yes" if conf >= cfg.accept_threshold else "no"
            if sug == "yes":
                suggested_yes.append(e["prefix"])
            if e["rejected"] / e["pages"] >= cfg.accept_threshold:
                rejected.append(e["prefix"])
            csv_rows.append({
                "target": t, "domain": e["domain"], "prefix": e["prefix"], "depth": e["depth"], "pages": e["pages"],
                "recalled": e["recalled"], "recalled_fraction": f"{frac:.4f}",
                "confident": e["confident"], "confident_fraction": f"{conf:.4f}", "sample_titles": " | ".join(json.loads(e["titles"])),
                "suggested": sug, "label": sug if cfg.auto_annotate else "",
            })
        prev_t = prev_report.get("targets", {}).get(t, {})
        c = counts["targets"][t]
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
            "pages_scored": counts["pages"],
            "pages_recalled": c["recalled"],
            "tokens_recalled": c["tokens"],
            "cutoff": cutoffs[t],
            "related_domains": related,
            "new_domains": sorted(set(related) - set(prev_t.get("related_domains", []))),
            "candidate_prefixes": sum(1 for r in csv_rows if r["target"] == t),
            "suggested_prefixes": suggested_yes,
            "new_prefixes": sorted(set(suggested_yes) - set(prev_t.get("suggested_prefixes", []))),
            "rejected_prefixes": rejected,
            "overlap_with_previous": (round(c["overlap"] / c["recalled"], 6) if c["recalled"] else None) if k > 1 else None,
            "heldout": {m: held.get(m) for m in ("precision", "recall", "f1", "auc")},
            "domains": doms,
        }
    rd = cfg.round_dir(k)
    rows = [{"target": c["target"], "prefix": c["prefix"], "suggested": c["suggested"]} for c in csv_rows]
    storage.write_json(storage.join(rd, "candidates.json"), {"rows": rows})
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


def recalled_ids(round_dir: str) -> dict[str, set[str]]:
    """target -> ids recalled in a round, from its `recalled/` parts."""
    out: dict[str, set[str]] = defaultdict(set)
    for path in work.glob(storage.join(round_dir, "recalled"), "part-*.parquet"):
        for r in storage.read_parquet(path).to_pylist():
            out[r["target"]].add(r["id"])
    return dict(out)
