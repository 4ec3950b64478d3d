"""Executor overhead and how one large input spreads over workers (issue 14).

    python -m benchmarks.cluster overhead --tasks 1000 --workers 2
    python -m benchmarks.cluster spread --mb 1024 --tasks 1,2,4,8 --workers 2

`overhead`: one phase of N tasks that do nothing, on the Ray executor and on the local executor, in
one run: seconds per task (wall / N) and the Ray/local ratio. `spread`: one parquet shard of about
`--mb` MB of text documents, read by a `basic_filter` stage with `tasks: T` (row-group ranges, see
`pipeline.io.split_row_groups`): wall time and speed-up against one task, peak RSS per task.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import tempfile
import time

from pipeline.steps import Step


class Nothing(Step):
    name = "nothing"

    def run(self, data=None, rank=0, world_size=1):
        return
        yield


def overhead(tasks: int, workers: int) -> None:
    from pipeline.executors import make_executor, quiet_console, start_ray

    quiet_console()
    started = start_ray(None)
    try:
        for kind in ("ray", "local"):
            with tempfile.TemporaryDirectory() as d:
                ex = make_executor(kind, [Nothing()], tasks, workers, os.path.join(d, "logs"))
                t0 = time.perf_counter()
                ex.run()
                wall = time.perf_counter() - t0
                done = len(os.listdir(os.path.join(d, "logs", "completions")))
            print(f"{kind:5s}: {tasks} tasks ({done} completed), {workers} workers: {wall:.1f} s wall, "
                  f"{wall / tasks * 1000:.0f} ms/task, {wall / tasks * workers * 1000:.0f} ms/task/worker")
    finally:
        if started:
            import ray

            ray.shutdown()


def make_shard(path: str, mb: int, seed: int = 0) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline import documents

    rng = random.Random(seed)
    words = [f"w{i}" for i in range(5000)]
    schema, rows, written, n = documents.SCHEMA, [], 0, 0
    with pq.ParquetWriter(path, schema, compression="zstd") as w:
        while written < mb << 20:
            text = " ".join(rng.choices(words, k=rng.randint(100, 900)))
            rows.append({"id": f"d{n}", "text": text, "source": "bench", "repo": None, "path": None, "url": None,
                         "domain": None, "lang": None, "metadata": "{}"})
            written += len(text)
            n += 1
            if len(rows) == 4096:
                w.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows = []
        if rows:
            w.write_table(pa.Table.from_pylist(rows, schema=schema))
    return n


def spread(mb: int, task_counts: list[int], workers: int, executor: str) -> None:
    from pipeline.executors import quiet_console, start_ray
    from pipeline.recipe import parse_recipe
    from pipeline.runner import Runner

    quiet_console()
    started = executor == "ray" and start_ray(None)
    base = tempfile.mkdtemp(prefix="spread-")
    try:
        src = os.path.join(base, "in", "part-00000.parquet")
        os.makedirs(os.path.dirname(src))
        n = make_shard(src, mb)
        size = os.path.getsize(src) / 2**20
        print(f"input: one shard, {n:,} documents, {mb} MB of text, {size:.0f} MB on disk; executor {executor}, {workers} workers")
        first = None
        for t in task_counts:
            run_dir = os.path.join(base, f"run{t}")
            os.makedirs(run_dir)
            shutil.copytree(os.path.join(base, "in"), os.path.join(run_dir, "src"))
            recipe = parse_recipe({"name": "b", "run_dir": run_dir, "executor": executor, "workers": workers, "stages": [
                {"name": "src", "kind": "github_files", "paths": [base]},  # stands in: its shard is copied above
                {"name": "filter", "kind": "basic_filter", "input": "src", "tasks": t, "min_chars": 10}]})
            t0 = time.perf_counter()
            Runner(recipe, progress=False).run_stage(recipe.stage("filter"))
            wall = time.perf_counter() - t0
            first = first or wall
            stats = json.load(open(os.path.join(run_dir, "filter", "_stats.json")))
            print(f"tasks {t:3d}: {wall:6.1f} s wall, x{first / wall:.2f} vs 1 task, kept {stats['kept']['docs']:,} "
                  f"of {stats['in']['docs']:,}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if started:
            import ray

            ray.shutdown()
    print(f"peak RSS of this process (driver and local tasks): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--tasks", type=int, default=1000)
    o.add_argument("--workers", type=int, default=2)
    s = sub.add_parser("spread")
    s.add_argument("--mb", type=int, default=1024)
    s.add_argument("--tasks", default="1,2,4,8")
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--executor", default="ray", choices=["ray", "local"])
    a = ap.parse_args()
    if a.what == "overhead":
        overhead(a.tasks, a.workers)
    else:
        spread(a.mb, [int(x) for x in a.tasks.split(",")], a.workers, a.executor)


if __name__ == "__main__":
    main()
