"""A real cluster: the demo recipe on a 3-node Ray cluster with its run_dir on S3 (moto on 127.0.0.1),
started from a read-only working directory, byte-identical to a local run; secrets never stored;
a Ray worker killed mid-task is retried with the same output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.demo import DEMO_RECIPE, REPO_ROOT, _demo_seed
from pipeline.sample import build_sample

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "pipeline.cli"]
SECRET = "s3cr3t-Value-That-Must-Not-Leak"
OUTPUTS = (".parquet", ".bin", ".idx")


def demo_recipe(sample: Path, run_dir: str, endpoint: str | None = None) -> dict:
    """configs/demo.yaml reading the sample from one local path (so metadata paths match) into `run_dir`."""
    r = yaml.safe_load(DEMO_RECIPE.read_text().replace("${run_dir}/_sample", str(sample)))
    r["run_dir"] = run_dir
    shared = REPO_ROOT.parent / "shared" / "data" / "benchmarks"
    r["vars"]["benchmarks"] = str(shared)
    if endpoint:
        r["storage_options"] = {"s3": {"endpoint_url": endpoint, "key": "AKIATEST", "secret": SECRET}}
    return r


def s3_outputs(client, prefix: str) -> dict[str, bytes]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket="runs", Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"][len(prefix):]] = client.get_object(Bucket="runs", Key=o["Key"])["Body"].read()
    return out


def is_output(rel: str) -> bool:
    parts = rel.split("/")
    return rel.endswith(OUTPUTS) and parts[0] != "ablation" and not any(p.startswith("_") for p in parts[1:])


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory, s3):
    from ray.cluster_utils import Cluster

    endpoint, client = s3["endpoint"], s3["client"]
    client.create_bucket(Bucket="runs")
    base = tmp_path_factory.mktemp("cluster")
    sample = base / "sample"
    build_sample(sample, _demo_seed())

    local = base / "local"
    (base / "local.yaml").write_text(yaml.safe_dump(demo_recipe(sample, str(local))))
    r = subprocess.run(CLI + ["run", str(base / "local.yaml"), "--executor", "local", "--workers", "1", "--quiet"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]

    (base / "s3.yaml").write_text(yaml.safe_dump(demo_recipe(sample, "s3://runs/demo", endpoint)))
    readonly = base / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FSSPEC_"))}  # credentials: the recipe only
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 150 << 20})
    for _ in range(2):
        cluster.add_node(num_cpus=1, object_store_memory=150 << 20)
    try:
        cluster.wait_for_nodes()
        r = subprocess.run(CLI + ["run", str(base / "s3.yaml"), "--executor", "ray", "--address", cluster.address,
                                  "--workers", "3", "--quiet"], cwd=readonly, env=env, capture_output=True, text=True, timeout=1200)
    finally:
        cluster.shutdown()
    assert r.returncode == 0, r.stderr[-3000:]
    local_files = {str(p.relative_to(local)): p.read_bytes() for p in local.rglob("*") if p.is_file()}
    return {"local": local_files, "s3": s3_outputs(client, "demo/"), "console": r.stdout + r.stderr,
            "readonly": sorted(os.listdir(readonly))}


def test_demo_on_a_3_node_cluster_over_s3_matches_a_local_run(cluster_run):
    a = {k: v for k, v in cluster_run["local"].items() if is_output(k)}
    b = {k: v for k, v in cluster_run["s3"].items() if is_output(k)}
    assert any(k.endswith(".bin") for k in a) and any(k.endswith(".idx") for k in a)
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []
    for stage in {k.split("/")[0] for k in a}:
        assert f"{stage}/_SUCCESS" in cluster_run["s3"] and f"{stage}/_stats.json" in cluster_run["s3"]


def test_nothing_is_written_outside_run_dir(cluster_run):
    assert cluster_run["readonly"] == []


def test_no_secret_reaches_the_run_dir_or_the_console(cluster_run):
    leaks = [k for k, v in cluster_run["s3"].items() if SECRET.encode() in v]
    assert leaks == []
    assert SECRET not in cluster_run["console"]
    recipe = json.loads(cluster_run["s3"]["recipe.json"])
    assert recipe["storage_options"]["s3"]["secret"] == "***"


def test_a_killed_ray_worker_is_retried_with_the_same_output(tmp_path):
    import conftest
    import ray.cloudpickle
    from conftest import KillOnce, read_stage

    from pipeline.recipe import parse_recipe
    from pipeline.runner import Runner

    ray.cloudpickle.register_pickle_by_value(conftest)  # the step must travel to the workers
    repos = tmp_path / "repos"
    for r in range(3):
        (repos / f"r{r}").mkdir(parents=True)
        (repos / f"r{r}" / "m.py").write_text(f"def f():\n    return {r}\n" * 5)

    def recipe(run_dir):
        return parse_recipe({"name": "t", "run_dir": str(run_dir), "executor": "ray", "stages": [
            {"name": "ingest", "kind": "github_files", "paths": [str(repos)]},
            {"name": "filter", "kind": "basic_filter", "input": "ingest", "min_chars": 5}]})

    Runner(recipe(tmp_path / "clean"), workers=2, progress=False).run()
    killed = recipe(tmp_path / "killed")
    marker = tmp_path / "killed-once"
    object.__setattr__(killed.stage("filter"), "build", lambda ctx: [KillOnce(str(marker))])
    Runner(killed, workers=2, progress=False).run()
    assert marker.exists(), "the worker was not killed"
    assert [d.text for d in read_stage(tmp_path / "killed", "filter")] == [d.text for d in read_stage(tmp_path / "clean", "filter")]


def test_a_node_that_runs_other_code_is_named_in_one_line(monkeypatch):
    import ray

    from pipeline import executors

    ray.init(num_cpus=1, include_dashboard=False, configure_logging=False)
    try:
        executors.check_cluster_versions()  # the same code everywhere: no complaint
        monkeypatch.setattr(executors, "code_version", lambda: "0.0.0+driver")  # the driver now differs
        with pytest.raises(executors.ClusterError) as e:
            executors.check_cluster_versions()
    finally:
        ray.shutdown()
    msg = str(e.value)
    assert msg.startswith("Ray node ") and "this driver 0.0.0+driver: install the same version on every node" in msg
    assert "\n" not in msg
