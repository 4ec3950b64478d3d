"""Per-task memory of the global phases as the corpus grows 8x (issue 15).

    nice -n 10 python -m benchmarks.scale --docs 200000,1600000 --shard-docs 10000 --work /tmp/scale

The recipe github_files -> dedup_near -> mix -> tokenize_shards on synthetic code files (a few hundred
bytes each, 1 in 8 a near copy of an earlier one, so dedup has clusters to find) in dataset shards of
`--shard-docs` documents, local executor, one worker: every task runs in this process, one after
another, with the same work per task at every size. Before each task the process returns freed memory
(gc, pyarrow's pool, malloc_trim) and resets its peak RSS (`/proc/self/clear_refs`); after it, the
task's peak (`VmHWM`) is recorded. Per phase: tasks, the largest task peak ("peak"; the process holds
the driver too, ~200 MiB of imports and state), the largest rise over the RSS at the task's start
("+task"), wall time, and the files the phase added to its stage directory; then each phase's peak at
the largest size over the smallest (the goal: within 1.25x while the data grows 8x). Each size runs in a
process of its own, one after the other; sizes can also run as separate commands at once (`--docs 200000`
and `--docs 1600000`), then `--compare --docs 200000,1600000`.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import defaultdict

WORDS = [f"{a}{b}" for a in ("get", "set", "load", "parse", "make", "read", "send", "find") for b in
         ("value", "item", "node", "user", "path", "data", "index", "buffer", "config", "token", "file", "row")]


def make_doc(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(1, 3)):
        f, a, b = rng.choice(WORDS), rng.choice(WORDS), rng.choice(WORDS)
        lines.append(f"def {f}_{rng.randrange(10**6)}({a}, {b}):\n    return {a} + {b} * {rng.randrange(1000)}\n")
    return "".join(lines)


def near_copy(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    lines[i] = lines[i] + f"  # {rng.randrange(1000)}"
    return "\n".join(lines)


def make_corpus(directory: str, docs: int, shard_docs: int, seed: int = 0) -> int:
    """Dataset shards of `shard_docs` rows each (one row group); returns the text bytes written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    done = os.path.join(directory, "_DONE")
    if os.path.exists(done):
        with open(done) as f:
            return int(f.read())
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    rng = random.Random(seed)
    recent: list[str] = []
    total = 0
    for s in range(0, docs, shard_docs):
        texts, paths, repos = [], [], []
        for i in range(s, min(docs, s + shard_docs)):
            text = near_copy(rng, rng.choice(recent)) if recent and rng.random() < 0.125 else make_doc(rng)
            recent = (recent + [text])[-64:]
            texts.append(text)
            paths.append(f"src/m{i}.py")
            repos.append(f"org/r{i // 50}")
            total += len(text)
        pq.write_table(pa.table({"content": texts, "path": paths, "repo": repos}),
                       os.path.join(directory, f"shard-{s // shard_docs:05d}.parquet"), row_group_size=shard_docs)
    with open(done, "w") as f:
        f.write(str(total))
    return total


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def _files(stage_dir: str) -> int:
    return sum(len(files) for root, _, files in os.walk(stage_dir) if "_logs" not in root.split(os.sep))


def measure(records: str) -> None:
    """Wraps every local task (release freed memory, reset the peak, record the task's peak RSS) and every
    phase (wall time, files it added to its stage directory, logs aside)."""
    import pyarrow as pa

    from pipeline import executors

    libc = ctypes.CDLL("libc.so.6")
    run, phase = executors._Retrying._run_for_rank, executors.LocalExecutor.run

    def measured_phase(self):
        self.start_method = "fork"  # with workers > 1, pool processes inherit the wrapper below
        logs = str(self.logging_dir.path)
        stage_dir = logs.split("/_logs/")[0]
        before, t0 = _files(stage_dir), time.perf_counter()
        phase(self)
        with open(records, "a") as f:
            f.write(json.dumps({"phase": logs, "wall": time.perf_counter() - t0, "files": _files(stage_dir) - before}) + "\n")

    def measured(self, rank, local_rank=0, **kw):
        gc.collect()
        pa.default_memory_pool().release_unused()
        libc.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        start, t0 = _status("VmRSS"), time.perf_counter()
        try:
            return run(self, rank, local_rank, **kw)
        finally:
            with open(records, "a") as f:
                f.write(json.dumps({"phase": str(self.logging_dir.path), "rank": rank, "start": start,
                                    "peak": _status("VmHWM"), "s": time.perf_counter() - t0}) + "\n")

    executors._Retrying._run_for_rank = measured
    executors.LocalExecutor.run = measured_phase


def recipe_for(run_dir: str, corpus: str, shards: int, tokens: int, workers: int) -> dict:
    return {"name": "scale", "run_dir": run_dir, "executor": "local", "workers": workers, "seed": 1, "stages": [
        {"name": "ingest", "kind": "github_files", "datasets": [os.path.join(corpus, "*.parquet")], "tasks": shards},
        {"name": "dedup", "kind": "dedup_near", "input": "ingest"},
        # a budget below what the corpus holds, so the mix samples (one category: code)
        {"name": "mix", "kind": "mix", "input": "dedup", "ratios": {"code": 1.0}, "target_tokens": tokens},
        {"name": "shards", "kind": "tokenize_shards", "input": "mix"},
    ]}


def run_size(work: str, docs: int, shard_docs: int, workers: int = 1, resume: bool = False) -> dict:
    from pipeline.recipe import parse_recipe
    from pipeline.runner import Runner

    corpus = os.path.join(work, f"corpus-{docs}-{shard_docs}")
    nbytes = make_corpus(corpus, docs, shard_docs)
    run_dir = os.path.join(work, f"run-{docs}-{shard_docs}")
    records = os.path.join(work, f"tasks-{docs}-{shard_docs}.jsonl")
    if not resume:  # a resumed run skips the tasks it completed; their records stay
        shutil.rmtree(run_dir, ignore_errors=True)
        if os.path.exists(records):
            os.remove(records)
    measure(records)
    shards = -(-docs // shard_docs)
    recipe = parse_recipe(recipe_for(run_dir, corpus, shards, int(nbytes / 4 * 0.8), workers))
    t0 = time.perf_counter()
    Runner(recipe, progress=False).run()
    wall = time.perf_counter() - t0
    phases: dict[str, dict] = defaultdict(lambda: {"tasks": 0, "peak": 0, "growth": 0})
    with open(records) as f:
        for r in map(json.loads, f):
            p = phases[os.path.relpath(r["phase"], run_dir).replace("/_logs/", "/")]
            if "wall" in r:
                p.update(wall=p.get("wall", 0) + r["wall"], files=p.get("files", 0) + r["files"])
            else:
                p["tasks"] += 1
                p["peak"] = max(p["peak"], r["peak"])
                p["growth"] = max(p["growth"], r["peak"] - r["start"])
    with open(os.path.join(run_dir, "dedup", "_stats.json")) as f:
        kept = json.load(f)["kept"]["docs"]
    result = {"docs": docs, "bytes": nbytes, "wall": wall, "phases": dict(phases), "dedup_kept": kept, "shards": shards}
    with open(os.path.join(work, f"result-{docs}-{shard_docs}.json"), "w") as f:
        json.dump(result, f)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", default="200000,1600000")
    ap.add_argument("--shard-docs", type=int, default=10_000)
    ap.add_argument("--work", default="/tmp/scale")
    ap.add_argument("--workers", type=int, default=1, help="tasks at once (forked processes when > 1; per-task peaks either way)")
    ap.add_argument("--resume", action="store_true", help="keep the run directory: completed tasks are skipped")
    ap.add_argument("--compare", action="store_true", help="run nothing: compare the saved results of --docs")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    sizes = [int(x) for x in a.docs.split(",")]
    if len(sizes) > 1 and not a.compare:
        # each size in a fresh process: a driver that ran the smaller size first carries its imports and heap
        # (+70 MiB here) into every task of the larger one, which forks from it
        for n in sizes:
            subprocess.run([sys.executable, "-m", "benchmarks.scale", "--docs", str(n), "--shard-docs", str(a.shard_docs),
                            "--work", a.work, "--workers", str(a.workers), *(["--resume"] if a.resume else [])], check=True)
        a.compare = True
        print("\n" + "=" * 40)
    results = []
    for n in sizes:
        if a.compare:
            with open(os.path.join(a.work, f"result-{n}-{a.shard_docs}.json")) as f:
                r = json.load(f)
        else:
            r = run_size(a.work, n, a.shard_docs, a.workers, a.resume)
        results.append(r)
        print(f"\n{n:,} documents ({r['bytes'] / 2**20:.0f} MiB of text) in {r['shards']} shards: {r['wall']:.0f} s wall, "
              f"dedup kept {r['dedup_kept']:,}")
        print(f"{'phase':28s} {'tasks':>6s} {'peak MiB':>9s} {'+task MiB':>9s} {'wall s':>8s} {'files':>6s}")
        for k, p in r["phases"].items():
            print(f"{k:28s} {p['tasks']:6d} {p['peak'] / 2**20:9.0f} {p['growth'] / 2**20:9.0f} {p.get('wall', 0):8.1f} "
                  f"{p.get('files', 0):6d}")
    if len(results) > 1:
        lo, hi = results[0], results[-1]
        print(f"\n{hi['docs']:,} / {lo['docs']:,} documents: per-task peak RSS ratio by phase (goal <= 1.25)")
        worst = 0.0
        for k, p in hi["phases"].items():
            base = lo["phases"].get(k)
            if base:
                ratio = p["peak"] / base["peak"]
                worst = max(worst, ratio)
                print(f"{k:28s} {ratio:5.2f}  wall x{p.get('wall', 0) / max(base.get('wall', 0), 1e-9):5.1f}")
        print(f"largest ratio {worst:.2f}; whole run wall x{hi['wall'] / lo['wall']:.1f}")


if __name__ == "__main__":
    main()
