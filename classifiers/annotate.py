"""Annotations and seed growth of the recall loop: the round's CSV of candidate prefixes, read back
with its labels, and the pages that join each target's seed in the next round."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from classifiers.pages import under
from pipeline import storage

if TYPE_CHECKING:
    from classifiers.loop import LoopConfig

CSV_COLUMNS = [
    "target", "domain", "prefix", "depth", "pages", "recalled", "recalled_fraction", "confident", "confident_fraction",
    "sample_titles", "suggested", "label",
]
LABELS = ("yes", "no")


class AnnotationError(ValueError):
    """An annotation file cannot be used; the message is one line naming the file and row."""


def read_annotations(cfg: LoopConfig, k: int) -> dict[str, list[str]]:
    """Accepted prefixes per target from `annotations/round_k.csv`, validated against the round's candidates."""
    path = cfg.annotations(k)
    if not storage.exists(path):
        raise AnnotationError(f"{path}: missing; round {k} wrote it, restore it or run with --fresh")
    cands = storage.read_json(storage.join(cfg.round_dir(k), "candidates.json"), {})
    known = {(c["target"], c["prefix"]): c for c in cands.get("rows", [])}
    with storage.open_file(path, "r", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("target", "prefix", "label") if c not in (reader.fieldnames or [])]
        if missing:
            raise AnnotationError(f"{path}: missing column(s) {', '.join(missing)} (expected {', '.join(CSV_COLUMNS)})")
        accepted: dict[str, list[str]] = {t: [] for t in cfg.names}
        unlabeled = 0
        for n, row in enumerate(reader, start=2):
            t, prefix = (row.get("target") or "").strip(), (row.get("prefix") or "").strip()
            label = (row.get("label") or "").strip().lower()
            if t not in cfg.targets:
                raise AnnotationError(f"{path}: line {n}: unknown target {t!r} (expected one of: {', '.join(cfg.names)})")
            if (t, prefix) not in known:
                raise AnnotationError(f"{path}: line {n}: unknown prefix {prefix!r} for target {t!r} (not a candidate of round {k})")
            if not label:
                if cfg.auto_annotate:
                    label = known[(t, prefix)]["suggested"]
                else:
                    unlabeled += 1
                    continue
            if label not in LABELS:
                raise AnnotationError(f"{path}: line {n}: label must be yes or no, got {row.get('label')!r}")
            if label == "yes":
                accepted[t].append(prefix)
    if unlabeled:
        raise AnnotationError(
            f"{path}: {unlabeled} row(s) have no label; fill the label column with yes or no "
            f"(or use --auto-annotate) and run again"
        )
    return {t: sorted(set(v)) for t, v in accepted.items()}


def read_scores(cfg: LoopConfig, k: int) -> pa.Table:
    files = storage.list_shards([cfg.scores_dir(k)])
    tables = []
    for p in files:
        tables.append(storage.read_parquet(p))
    return pa.concat_tables(tables) if tables else pa.table({})


@dataclass
class Growth:
    """What round k's annotations add to a target's seed in round k+1."""

    ids: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    proxy: dict | None = None
    stopped: str | None = None


def _share(ids: list[str], scores: dict[str, float], cut: float) -> float | None:
    return round(sum(1 for i in ids if scores.get(i, 0.0) >= cut) / len(ids), 6) if ids else None


def grow_seed(cfg: LoopConfig, k: int) -> dict[str, Growth]:
    """The pages joining each target's seed from round k's accepted prefixes, with seed-purity proxies.

    Auto mode holds them to the recall's own standard, with confidence: pages under an accepted
    prefix that round k scored at least `confident_score` (and above its cutoff), never every page
    under a host. Manual mode keeps DeepSeekMath's rule: the user vouched for the prefix, so its
    pages that round k did not recall join. Proxies: the share of joining pages that round k's
    model and the first round's model (trained on the seed files alone) recall. In auto mode, when
    the first-round agreement falls below `min_seed_agreement`, the seed stops growing from then on.
    """
    accepted = read_annotations(cfg, k)
    cut = storage.read_json(storage.join(cfg.round_dir(k), "cutoffs.json"), {})
    cut1 = storage.read_json(storage.join(cfg.round_dir(1), "cutoffs.json"), {})
    seed = storage.read_json(storage.join(cfg.round_dir(k), "seed.json"), {})
    rows = read_scores(cfg, k).to_pylist()
    first = rows if k == 1 else read_scores(cfg, 1).to_pylist()
    out: dict[str, Growth] = {}
    for t in cfg.names:
        pre, key = accepted[t], f"score.{t}"
        g = out[t] = Growth(accepted=pre, stopped=seed.get(t, {}).get("growth_stopped"))
        if g.stopped or not pre:
            continue
        have = set(seed.get(t, {}).get("pool_ids", []))
        if cfg.auto_annotate:
            bar = max(cut[t], cfg.confident_score)
            new = [r["id"] for r in rows if r[key] >= bar and r["id"] not in have and under(r, pre, cfg.group_by)]
        else:
            new = [r["id"] for r in rows if r[key] < cut[t] and r["id"] not in have and under(r, pre, cfg.group_by)]
        new.sort()
        g.proxy = {
            "joining": len(new),
            "previous_model": _share(new, {r["id"]: r[key] for r in rows}, cut[t]),
            "first_model": _share(new, {r["id"]: r[key] for r in first}, cut1[t]),
        }
        agree = g.proxy["first_model"]
        if cfg.auto_annotate and agree is not None and agree < cfg.min_seed_agreement:
            g.stopped = (
                f"round {k + 1}: {agree:.2f} of the {len(new)} pages that would join are recalled by the first round's model "
                f"(min_seed_agreement {cfg.min_seed_agreement}); the seed stops growing"
            )
        else:
            g.ids = new
    return out
