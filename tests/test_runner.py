"""The runner on the local executor: accounting, resume, determinism and failures."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import Boom, read_stage

from pipeline import documents
from pipeline.io import ShardWriter
from pipeline.recipe import parse_recipe
from pipeline.runner import RunError, Runner
from pipeline.steps import Accounted, Step, Tally


@pytest.fixture
def repos(tmp_path):
    base = tmp_path / "repos"
    for r in range(5):
        d = base / f"repo{r}"
        (d / "pkg").mkdir(parents=True)
        for i in range(4):
            (d / "pkg" / f"m{i}.py").write_text(f"def f{i}():\n    return {r * 10 + i}  # repo {r}\n" * (i + 1))
        (d / "tiny.txt").write_text("x")
        (d / "blob.bin").write_bytes(b"\x00\x01\x02")
        (d / "latin.txt").write_bytes(b"caf\xe9\n")
    return base


def stages(repos, min_chars=30):
    return [
        {"name": "ingest", "kind": "github_files", "paths": [str(repos)]},
        {"name": "filter", "kind": "basic_filter", "input": "ingest", "min_chars": min_chars},
        {"name": "out", "kind": "concat", "input": ["filter"]},
    ]


def stats(run_dir, stage):
    return json.loads(Path(run_dir, stage, "_stats.json").read_text())


def shard_bytes(run_dir) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(Path(run_dir).glob("*/part-*.parquet"))}


def test_books_balance_with_reasons(run_recipe, repos):
    run_dir = run_recipe(stages(repos))
    ingest = stats(run_dir, "ingest")
    assert ingest["in"]["docs"] == 5 * 7
    assert ingest["dropped"]["binary"]["docs"] == 5
    assert ingest["dropped"]["undecodable"]["docs"] == 5
    assert ingest["kept"]["docs"] == 25 and ingest["balanced"]
    filt = stats(run_dir, "filter")
    assert filt["in"]["docs"] == 25 and filt["dropped"]["too_short"]["docs"] == 5 and filt["balanced"]
    assert len(read_stage(run_dir, "out")) == 20
    assert stats(run_dir, "out")["tasks"] == 5  # one task per input shard


def test_schema_and_metadata_roundtrip(run_recipe, repos):
    run_dir = run_recipe(stages(repos))
    t = pq.read_table(Path(run_dir, "out", "part-00000.parquet"))
    assert t.schema.equals(documents.SCHEMA)
    doc = read_stage(run_dir, "out")[0]
    assert doc.metadata["source"] == "github" and doc.metadata["repo"] == "repo0"
    assert doc.id == f"repo0:{doc.metadata['path']}" and doc.metadata["size"] > 0


def test_output_independent_of_worker_count(run_recipe, repos, tmp_path):
    a = run_recipe(stages(repos), workers=1, run_dir=tmp_path / "a")
    b = run_recipe(stages(repos), workers=4, run_dir=tmp_path / "b")
    assert shard_bytes(a) == shard_bytes(b) and shard_bytes(a)


def test_rerun_skips_completed_and_resumes_tasks(run_recipe, repos, tmp_path):
    run_dir = run_recipe(stages(repos))
    before = shard_bytes(run_dir)
    # forget one task of `filter` and the stage marker: only that task runs again
    Path(run_dir, "filter", "_SUCCESS").unlink()
    Path(run_dir, "filter", "_logs", "main", "completions", "00002").unlink()
    Path(run_dir, "filter", "part-00002.parquet").unlink()
    log = Path(run_dir, "filter", "_logs", "main", "logs", "task_00001.log")
    mtime = log.stat().st_mtime_ns
    run_recipe(stages(repos), run_dir=run_dir)
    assert shard_bytes(run_dir) == before
    assert log.stat().st_mtime_ns == mtime  # task 1 was not run again
    assert stats(run_dir, "filter")["in"]["docs"] == 25  # books still cover every task


def test_changed_config_is_refused(run_recipe, repos):
    run_dir = run_recipe(stages(repos))
    with pytest.raises(RunError, match="different config; run with --fresh filter"):
        run_recipe(stages(repos, min_chars=31), run_dir=run_dir)


def test_stages_option_needs_completed_inputs(run_recipe, repos):
    with pytest.raises(RunError, match="needs 'ingest', which has not completed"):
        run_recipe(stages(repos), only=["filter"])


def test_failing_task_gives_one_line_error(tmp_path, repos):
    recipe = parse_recipe({"name": "t", "run_dir": str(tmp_path / "run"), "executor": "local", "stages": stages(repos)[:2]})
    spec = recipe.stage("filter")
    object.__setattr__(spec, "build", lambda ctx: [Boom()])
    with pytest.raises(RunError) as e:
        Runner(recipe, workers=1, progress=False).run()
    msg = str(e.value)
    assert "stage 'filter' failed: ValueError: bad document" in msg and "\n" not in msg


def test_accounted_wraps_foreign_filters(tmp_path):
    from datatrove.data import Document
    from datatrove.pipeline.filters import LambdaFilter

    docs = [Document(text="x" * i, id=str(i)) for i in range(10)]
    step = Accounted(LambdaFilter(lambda d: len(d.text) % 2 == 0), reason="odd")
    out = list(step.run(iter(docs)))
    assert [d.id for d in out] == ["0", "2", "4", "6", "8"]
    assert step.stats["acct/dropped/odd"].total == 5


def test_tally_books_what_per_document_updates_would():
    """The batched books of hot loops: the same counts, byte totals, means and variances, and times, as
    one `count_in`/`drop`/`time_stats.update` a document."""
    sizes, times = [5, 0, 17, 3, 3, 40], [0.5, 0.25, 1.0, 0.125, 0.75, 2.0]
    class Books(Step):
        def run(self, data, rank=0, world_size=1):
            yield from data

    one, batched = Books(), Books()
    books = Tally(batched)
    for n, t in zip(sizes, times):
        one.count_in(nbytes=n)
        books.count_in(n)
        if n % 2:
            one.drop(None, "odd", nbytes=n)
            books.drop("odd", n)
        one.stats.time_stats.update(t)
        books.time(t)
        if n == 17:
            books.flush()  # merged in two batches
    books.flush()
    for key in ("acct/in", "acct/in_bytes", "acct/dropped/odd", "acct/dropped_bytes/odd"):
        a, b = one.stats[key], batched.stats[key]
        assert (a.total, a.n, a.min, a.max) == (b.total, b.n, b.min, b.max), key
        assert a.mean == pytest.approx(b.mean) and a.variance == pytest.approx(b.variance), key
    a, b = one.stats.time_stats, batched.stats.time_stats
    assert (a.total, a.n, a.min, a.max, a.n_tasks, a.global_mean) == (b.total, b.n, b.min, b.max, 1, b.global_mean)
    assert a.mean == pytest.approx(b.mean) and a.variance == pytest.approx(b.variance)


def test_empty_input_writes_valid_empty_shard(tmp_path):
    w = ShardWriter(str(tmp_path))
    assert list(w.run(iter([]))) == []
    t = pq.read_table(tmp_path / "part-00000.parquet")
    assert t.num_rows == 0 and t.schema.equals(documents.SCHEMA)


def test_fresh_reruns_stage_and_everything_downstream(run_recipe, repos):
    run_dir = run_recipe(stages(repos))
    recipe = parse_recipe({"name": "t", "run_dir": run_dir, "executor": "local", "stages": stages(repos, min_chars=1000)})
    with pytest.raises(RunError, match="'filter'"):
        Runner(recipe, progress=False).run()
    runner = Runner(recipe, workers=2, progress=False)
    runner.fresh(["filter"])
    assert not Path(run_dir, "out").exists() and Path(run_dir, "ingest", "_SUCCESS").exists()
    result = runner.run()
    assert result.ran == ["filter", "out"] and result.skipped == ["ingest"]
    assert read_stage(run_dir, "out") == []
