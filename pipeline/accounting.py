"""Turn datatrove's per-task stats files into a stage's books: in, kept, dropped per reason."""

from __future__ import annotations

import json
import posixpath
from collections import defaultdict
from typing import Any

from pipeline import storage
from pipeline.steps import ACCT


def _total(v: Any) -> float:
    if isinstance(v, dict):
        return v.get("total", 0)
    return v or 0


def task_stats(logging_dir: str) -> list[list[dict]]:
    """Every finished task's stats (a list of per-step dicts) under one phase's logging dir."""
    fs, p = storage.fs_and_path(logging_dir)
    out = []
    for f in sorted(fs.glob(posixpath.join(p, "stats", "*.json"))):
        with fs.open(f, "r") as fh:
            out.append(json.load(fh))
    return out


def merge(all_tasks: list[list[dict]]) -> dict:
    """Sum accounting keys over tasks and steps, and keep per-step totals for the report."""
    books = {"in": {"docs": 0, "bytes": 0}, "kept": {"docs": 0, "bytes": 0}, "dropped": {}}
    steps: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    dropped: dict[str, dict[str, int]] = defaultdict(lambda: {"docs": 0, "bytes": 0})
    for task in all_tasks:
        for step in task:
            name = step.get("name", "?")
            steps[name]["time_s"] += _total(step.get("time_stats", {}))
            for key, val in (step.get("stats") or {}).items():
                t = _total(val)
                steps[name][key] += t
                if not key.startswith(ACCT):
                    continue
                k = key[len(ACCT):]
                if k == "in":
                    books["in"]["docs"] += int(t)
                elif k == "in_bytes":
                    books["in"]["bytes"] += int(t)
                elif k == "kept":
                    books["kept"]["docs"] += int(t)
                elif k == "kept_bytes":
                    books["kept"]["bytes"] += int(t)
                elif k.startswith("dropped/"):
                    dropped[k[len("dropped/"):]]["docs"] += int(t)
                elif k.startswith("dropped_bytes/"):
                    dropped[k[len("dropped_bytes/"):]]["bytes"] += int(t)
    books["dropped"] = {r: dropped[r] for r in sorted(dropped)}
    books["balanced"] = books["in"]["docs"] == books["kept"]["docs"] + sum(d["docs"] for d in dropped.values())
    books["steps"] = {n: {k: v for k, v in sorted(s.items())} for n, s in steps.items()}
    return books
