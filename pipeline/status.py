"""`codecurate status RUN_DIR`: per stage, tasks done/total, docs in/kept, elapsed time.

Works while a run is in progress (from datatrove's per-task completion markers and stats) and
after it (from `_stats.json`)."""

from __future__ import annotations

import contextlib
import posixpath
import time

from rich.console import Console
from rich.table import Table

from pipeline import accounting, storage


def stage_names(run_dir: str) -> list[str]:
    recipe = storage.read_json(storage.join(run_dir, "recipe.json"))
    if recipe is None:
        raise FileNotFoundError(f"{run_dir} is not a codecurate run directory (no recipe.json)")
    return [s["name"] for s in recipe.get("stages", []) if isinstance(s, dict) and "name" in s]


def stage_status(run_dir: str, name: str) -> dict:
    sdir = storage.join(run_dir, name)
    fs, p = storage.fs_and_path(sdir)
    stats = storage.read_json(storage.join(sdir, "_stats.json"))
    done_marker = fs.exists(posixpath.join(p, "_SUCCESS"))
    phases = sorted(fs.ls(posixpath.join(p, "_logs"), detail=False)) if fs.exists(posixpath.join(p, "_logs")) else []
    done = total = 0
    partial = []
    started = None
    for ph in (storage.with_protocol(sdir, x) for x in phases):
        ex = storage.read_json(storage.join(ph, "executor.json"), {})
        total += int(ex.get("tasks") or ex.get("world_size") or 0)
        done += len(storage.ls(storage.join(ph, "completions")))
        partial += accounting.task_stats(ph)
        with contextlib.suppress(OSError, NotImplementedError, ValueError):
            t = storage.fs_and_path(ph)[0].modified(storage.fs_and_path(storage.join(ph, "executor.json"))[1]).timestamp()
            started = min(started or t, t)
    if stats:
        books, elapsed = stats, stats.get("elapsed_s")
    else:
        books = accounting.merge(partial)
        elapsed = time.time() - started if started else None
    state = "done" if done_marker else ("running" if phases else "pending")
    return {
        "stage": name,
        "state": state,
        "tasks_done": done,
        "tasks_total": total,
        "in": books["in"]["docs"],
        "kept": books["kept"]["docs"],
        "dropped": sum(d["docs"] for d in books["dropped"].values()),
        "elapsed_s": elapsed,
    }


def print_status(run_dir: str) -> int:
    try:
        names = stage_names(run_dir)
    except FileNotFoundError as e:
        print(f"codecurate: {e}")
        return 2
    table = Table(title=f"run {run_dir}")
    for col in ("stage", "state", "tasks", "docs in", "kept", "dropped", "elapsed"):
        table.add_column(col, justify="left" if col in ("stage", "state") else "right")
    for n in names:
        s = stage_status(run_dir, n)
        el = f"{s['elapsed_s']:.1f}s" if s["elapsed_s"] is not None else "-"
        table.add_row(n, s["state"], f"{s['tasks_done']}/{s['tasks_total']}", f"{s['in']:,}", f"{s['kept']:,}", f"{s['dropped']:,}", el)
    Console(width=120).print(table)
    return 0
