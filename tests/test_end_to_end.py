"""End to end: the demo recipe on both executors, a 2-node Ray cluster, and kill-and-resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.demo import DEMO_RECIPE, REPO_ROOT, _demo_seed
from pipeline.recipe import load_recipe, parse_recipe
from pipeline.runner import RunError, Runner
from pipeline.sample import build_sample

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "pipeline.cli"]


def shard_bytes(run_dir) -> dict[str, bytes]:
    """Every stage output file except logs and stats (which hold timings)."""
    out = {}
    for p in sorted(Path(run_dir).rglob("*")):
        rel = p.relative_to(run_dir)
        if p.is_file() and rel.parts[0] not in ("_sample", "ablation") and not any(x.startswith("_") or x.startswith(".") for x in rel.parts[1:]):
            if p.suffix in (".parquet", ".bin", ".idx") or p.name in ("clusters.parquet", "manifest.json"):
                out[str(rel)] = p.read_bytes()
    return out


def assert_books_balance(run_dir, names):
    for n in names:
        s = json.loads(Path(run_dir, n, "_stats.json").read_text())
        dropped = sum(d["docs"] for d in s["dropped"].values())
        assert s["in"]["docs"] == s["kept"]["docs"] + dropped, f"stage {n}: {s['in']} != {s['kept']} + {dropped}"


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    """The demo recipe on the local executor (1 worker), and `codecurate demo` on Ray (2 workers).

    Both run from their own working directory with the same relative run_dir, so that paths
    recorded in metadata (e.g. the WARC file of a page) are the same strings in both runs.
    """
    base = tmp_path_factory.mktemp("demo")
    shared = REPO_ROOT.parent / "shared"
    if shared.is_dir():  # the recipe's ${benchmarks} is ../shared/data/benchmarks
        (base / "shared").symlink_to(shared)
    runs = {}
    local = base / "local"
    build_sample(local / "runs" / "demo" / "_sample", _demo_seed())
    cmd = CLI + ["run", str(DEMO_RECIPE), "--executor", "local", "--workers", "1", "--var", "run_dir=runs/demo", "--quiet"]
    r = subprocess.run(cmd, cwd=local, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    runs["local"] = (local / "runs" / "demo", load_recipe(DEMO_RECIPE, {"run_dir": str(local / "runs" / "demo")}))
    ray = base / "ray"
    ray.mkdir()
    r = subprocess.run(CLI + ["demo", "--run-dir", "runs/demo"], cwd=ray, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    runs["ray_stdout"] = r.stdout
    runs["ray"] = (ray / "runs" / "demo", load_recipe(DEMO_RECIPE, {"run_dir": str(ray / "runs" / "demo")}))
    return runs


def test_demo_prints_outputs_and_report(demo_runs):
    out = demo_runs["ray_stdout"]
    ray_dir = demo_runs["ray"][0]
    assert "outputs: " in out and "report:  " in out
    assert Path(ray_dir, "report.html").is_file()
    assert Path(ray_dir, "ablation", "ablation.md").is_file() and "held-out loss" in out


def test_demo_books_balance_every_stage(demo_runs):
    for key in ("local", "ray"):
        run_dir, recipe = demo_runs[key]
        assert_books_balance(run_dir, [s.name for s in recipe.stages])


def test_demo_identical_on_ray_and_local(demo_runs):
    a, b = shard_bytes(demo_runs["local"][0]), shard_bytes(demo_runs["ray"][0])
    assert a and a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_status_and_report_cli(demo_runs):
    run_dir, recipe = demo_runs["ray"]
    r = subprocess.run(CLI + ["status", str(run_dir)], capture_output=True, text=True)
    assert r.returncode == 0
    for s in recipe.stages:
        assert s.name in r.stdout
    assert "done" in r.stdout and "pending" not in r.stdout
    out = run_dir / "r.html"
    r = subprocess.run(CLI + ["report", str(run_dir), "--output", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    assert "Funnel" in html and "data:image/png;base64," in html
    for s in recipe.stages:
        assert f"<td>{s.name}</td>" in html


def small_stages(repos):
    return [
        {"name": "ingest", "kind": "github_files", "paths": [str(repos)]},
        {"name": "filter", "kind": "basic_filter", "input": "ingest", "min_chars": 30},
    ]


def make_repos(base: Path, n: int) -> Path:
    for r in range(n):
        d = base / f"repo{r:02d}"
        d.mkdir(parents=True)
        for i in range(3):
            (d / f"m{i}.py").write_text(f"def f{i}():\n    return {r * 10 + i}\n" * (i + 2))
    return base


def test_two_node_ray_cluster_matches_local(tmp_path):
    from ray.cluster_utils import Cluster

    repos = make_repos(tmp_path / "repos", 6)
    local = tmp_path / "local"
    Runner(parse_recipe({"name": "t", "run_dir": str(local), "executor": "local", "stages": small_stages(repos)}), progress=False).run()
    dist = tmp_path / "dist"
    rp = tmp_path / "dist.yaml"
    rp.write_text(json.dumps({"name": "t", "run_dir": str(dist), "stages": small_stages(repos)}))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        cluster.wait_for_nodes()
        assert len(cluster.list_all_nodes()) == 2
        r = subprocess.run(
            CLI + ["run", str(rp), "--executor", "ray", "--address", cluster.address, "--workers", "2", "--quiet"],
            capture_output=True, text=True, timeout=300,
        )
    finally:
        cluster.shutdown()
    assert r.returncode == 0, r.stderr[-2000:]
    assert shard_bytes(local) == shard_bytes(dist) and shard_bytes(local)


def test_sigkill_mid_stage_then_resume_is_byte_identical(tmp_path):
    repos = make_repos(tmp_path / "repos", 24)
    recipe = {"name": "t", "run_dir": "", "executor": "local", "workers": 1, "stages": small_stages(repos)}

    def write_recipe(run_dir: Path) -> Path:
        p = tmp_path / f"{run_dir.name}.json.yaml"
        p.write_text(json.dumps({**recipe, "run_dir": str(run_dir)}))
        return p

    clean = tmp_path / "clean"
    assert subprocess.run(CLI + ["run", str(write_recipe(clean)), "--quiet"], capture_output=True).returncode == 0

    killed = tmp_path / "killed"
    rp = write_recipe(killed)
    proc = subprocess.Popen(CLI + ["run", str(rp), "--quiet"], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    completions = killed / "ingest" / "_logs" / "main" / "completions"
    deadline = time.time() + 120
    while time.time() < deadline:
        n = len(list(completions.iterdir())) if completions.is_dir() else 0
        if n >= 3:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    done_before = len(list(completions.iterdir()))
    assert 3 <= done_before < 24, "the kill must land mid-stage"
    assert not (killed / "ingest" / "_SUCCESS").exists()

    r = subprocess.run(CLI + ["run", str(rp), "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert shard_bytes(killed) == shard_bytes(clean)
    assert not list(killed.rglob("*.tmp"))



def test_failing_task_on_ray_names_the_error(tmp_path):
    import conftest
    import ray.cloudpickle
    from conftest import Boom

    ray.cloudpickle.register_pickle_by_value(conftest)  # Boom must travel to the workers
    repos = make_repos(tmp_path / "repos", 1)
    recipe = parse_recipe({"name": "t", "run_dir": str(tmp_path / "run"), "executor": "ray", "stages": small_stages(repos)})
    object.__setattr__(recipe.stage("filter"), "build", lambda ctx: [Boom()])
    with pytest.raises(RunError) as e:
        Runner(recipe, workers=1, progress=False).run()
    msg = str(e.value)
    assert "stage 'filter' phase 'main': only 0/1 tasks completed: ValueError: bad document" in msg, msg
    assert "\n" not in msg
