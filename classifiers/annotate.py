"""Annotations of the recall loop: the round's CSV of candidate prefixes, read back with its labels
(`classifiers.sample` decides which pages under the accepted prefixes join the seed)."""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING

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
