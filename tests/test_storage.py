"""The storage layer and the runner's fault handling: remote globs and repository directories on S3,
one-line errors for credentials, endpoints and empty globs, task retries and timeouts, row-group
splitting, size-capped shards and independent stages side by side — all with the same bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import read_stage

from pipeline import storage
from pipeline.recipe import parse_recipe
from pipeline.runner import RunError, Runner
from pipeline.steps import Step

CLI = [sys.executable, "-m", "pipeline.cli"]


def make_repos(base: Path, n: int = 4, files: int = 3) -> Path:
    for r in range(n):
        d = base / f"repo{r}"
        d.mkdir(parents=True)
        for i in range(files):
            (d / f"m{i}.py").write_text(f"def f{i}():\n    return {r * 10 + i}\n" * (i + 3))
    return base


def run(stages: list[dict], run_dir: Path, workers: int = 1, **head) -> str:
    recipe = parse_recipe({"name": "t", "run_dir": str(run_dir), "executor": "local", "stages": stages, **head})
    Runner(recipe, workers=workers, progress=False).run()
    return str(run_dir)


def texts(run_dir, stage: str) -> list[str]:
    return [d.text for d in read_stage(run_dir, stage)]


def upload_tree(client, root: Path, prefix: str) -> None:
    for f in sorted(root.rglob("*")):
        if f.is_file():
            client.put_object(Bucket="data", Key=f"{prefix}/{f.relative_to(root)}", Body=f.read_bytes())


def test_repository_dirs_and_globs_on_s3_read_like_local_ones(s3, tmp_path):
    repos = make_repos(tmp_path / "repos")
    upload_tree(s3["client"], repos, "repos")
    local = run([{"name": "f", "kind": "github_files", "paths": [str(repos)]}], tmp_path / "local")
    remote = run([{"name": "f", "kind": "github_files", "paths": ["s3://data/repos"]}], "s3://data/runs/remote",
                 storage_options=s3["options"])
    with storage.configured(s3["options"]):  # a run leaves the process's storage settings as they were
        a, b = read_stage(local, "f"), read_stage(remote, "f")
    assert [(d.id, d.text) for d in a] == [(d.id, d.text) for d in b] and len(a) == 12


def test_a_remote_glob_that_matches_nothing_is_one_line(s3, tmp_path):
    with pytest.raises(RunError) as e:
        run([{"name": "w", "kind": "web_ingest", "paths": ["s3://data/crawl/*.warc.gz"]}], tmp_path / "r",
            storage_options=s3["options"])
    assert str(e.value) == "stage 'w': no WARC/WET file matches 's3://data/crawl/*.warc.gz'"


def test_missing_credentials_and_an_unreachable_endpoint_are_one_line(s3, tmp_path):
    repos = make_repos(tmp_path / "repos", 1)
    cases = {"no credentials": {"endpoint_url": s3["endpoint"]},
             "cannot reach the storage endpoint": {"endpoint_url": "http://127.0.0.1:9", "key": "k", "secret": "s",
                                                   "config_kwargs": {"retries": {"max_attempts": 1}}}}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ACCESS", "AWS_SECRET", "AWS_SESSION", "FSSPEC_"))}
    for why, opts in cases.items():
        rp = tmp_path / "r.yaml"
        rp.write_text(yaml.safe_dump({"name": "t", "run_dir": "s3://data/x", "executor": "local", "storage_options": {"s3": opts},
                                      "stages": [{"name": "f", "kind": "github_files", "paths": [str(repos)]}]}))
        r = subprocess.run(CLI + ["run", str(rp), "--quiet"], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 1, r.stderr
        assert r.stderr.count("\n") == 1 and why in r.stderr and "Traceback" not in r.stderr, r.stderr


class FailOnce(Step):
    """Raises on the first document of the first attempt of each task (a marker file per rank)."""

    name = "fail once"

    def __init__(self, marker_dir: str):
        super().__init__()
        self.marker_dir = marker_dir

    def run(self, data, rank=0, world_size=1):
        marker = os.path.join(self.marker_dir, f"failed-{rank}")
        for doc in data:
            if not os.path.exists(marker):
                open(marker, "w").close()
                raise ConnectionError("a transient fault")
            yield doc


class Sleep(Step):
    name = "sleep"

    def run(self, data, rank=0, world_size=1):
        import time

        for doc in data:
            time.sleep(30)
            yield doc


def test_a_failed_task_is_retried_and_the_books_count_it_once(tmp_path):
    repos = make_repos(tmp_path / "repos")
    stages = [{"name": "f", "kind": "github_files", "paths": [str(repos)]},
              {"name": "g", "kind": "basic_filter", "input": "f", "min_chars": 1}]
    clean = run(stages, tmp_path / "clean")
    recipe = parse_recipe({"name": "t", "run_dir": str(tmp_path / "flaky"), "executor": "local", "stages": stages})
    object.__setattr__(recipe.stage("g"), "build", lambda ctx: [FailOnce(str(tmp_path))])
    Runner(recipe, workers=1, progress=False).run()
    assert texts(tmp_path / "flaky", "g") == texts(clean, "g")
    stats = storage.read_json(str(tmp_path / "flaky" / "g" / "_stats.json"))
    assert stats["in"]["docs"] == stats["kept"]["docs"] == 12
    assert len(list(tmp_path.glob("failed-*"))) == 4


def test_a_task_past_its_timeout_fails_the_run_in_one_line(tmp_path):
    repos = make_repos(tmp_path / "repos", 1)
    recipe = parse_recipe({"name": "t", "run_dir": str(tmp_path / "run"), "executor": "local", "retries": 0,
                           "task_timeout_s": 1, "stages": [{"name": "f", "kind": "github_files", "paths": [str(repos)]},
                                                           {"name": "g", "kind": "basic_filter", "input": "f"}]})
    object.__setattr__(recipe.stage("g"), "build", lambda ctx: [Sleep()])
    with pytest.raises(RunError) as e:
        Runner(recipe, workers=1, progress=False).run()
    assert "TaskTimeout" in str(e.value) and "task_timeout_s=1" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "run" / "g" / "_SUCCESS").exists()


def test_more_tasks_than_shards_split_row_groups_and_keep_order(tmp_path):
    repos = make_repos(tmp_path / "repos", 40, 20)
    stages = [{"name": "f", "kind": "github_files", "paths": [str(repos)], "tasks": 1},
              {"name": "g", "kind": "basic_filter", "input": "f", "min_chars": 1}]
    one = run(stages, tmp_path / "one")
    many = run([stages[0], {**stages[1], "tasks": 5}], tmp_path / "many", workers=2)
    assert texts(one, "g") == texts(many, "g") and len(texts(one, "g")) == 800
    assert len(list((tmp_path / "many" / "g").glob("part-*.parquet"))) == 5
    # a shard of 8 row groups over 5 tasks: contiguous ranges, every task some rows, nothing twice
    from pipeline.io import ShardReader, split_row_groups

    src = sorted((tmp_path / "one" / "f").glob("part-*.parquet"))[0]
    small = tmp_path / "small.parquet"
    pq.write_table(pq.read_table(src), small, row_group_size=100)
    ranges = split_row_groups([str(small)], 5)
    per_task = [[d.id for d in ShardReader([], ranges=ranges).run(None, r, 5)] for r in range(5)]
    assert all(per_task) and sum(per_task, []) == pq.read_table(src).column("id").to_pylist()


def test_output_shards_are_capped_by_size_and_read_back_whole(tmp_path):
    repos = make_repos(tmp_path / "repos", 40, 40)
    stages = [{"name": "f", "kind": "github_files", "paths": [str(repos)], "tasks": 1},
              {"name": "g", "kind": "basic_filter", "input": "f", "min_chars": 1}]
    big = run(stages, tmp_path / "big")
    small = run(stages, tmp_path / "small", max_shard_bytes=65536)
    parts = sorted(p.name for p in (tmp_path / "small" / "f").glob("part-*.parquet"))
    assert parts[0] == "part-00000.parquet" and parts[1] == "part-00000_001.parquet" and len(parts) > 1
    assert texts(big, "g") == texts(small, "g")


def test_independent_stages_side_by_side_give_the_same_bytes(tmp_path):
    a, b = make_repos(tmp_path / "a", 3), make_repos(tmp_path / "b", 5)
    stages = [{"name": "fa", "kind": "github_files", "paths": [str(a)]},
              {"name": "fb", "kind": "github_files", "paths": [str(b)]},
              {"name": "ga", "kind": "basic_filter", "input": "fa", "min_chars": 1},
              {"name": "gb", "kind": "basic_filter", "input": "fb", "min_chars": 1},
              {"name": "all", "kind": "concat", "input": ["ga", "gb"]}]
    one = run(stages, tmp_path / "serial")
    two = run(stages, tmp_path / "parallel", workers=2, parallel_stages=3)
    files = sorted(p.relative_to(one) for p in Path(one).rglob("part-*.parquet"))
    assert files == sorted(p.relative_to(two) for p in Path(two).rglob("part-*.parquet"))
    assert all((Path(one) / f).read_bytes() == (Path(two) / f).read_bytes() for f in files)
