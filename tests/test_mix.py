"""Mixer: ratios by tokens, per-source weights, up-sampling with epochs, determinism."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from datatrove.data import Document

from pipeline import registry, storage
from pipeline.mixing.mix import categorize
from pipeline.stage import StageSpec
from pipeline.steps import Step
from conftest import read_stage


class JsonlDocs(Step):
    """Test source: one document per line of a jsonl file ({"id", "text", "metadata"}), lines rank::world_size."""

    name = "jsonl docs"

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        with open(self.path) as f:
            lines = f.read().splitlines()
        for line in lines[rank::world_size]:
            r = json.loads(line)
            doc = Document(text=r["text"], id=r["id"], metadata=r.get("metadata", {}))
            self.count_in(doc)
            yield doc


class DocsSource(StageSpec):
    needs_input = False
    path: str

    def build(self, ctx):
        return [JsonlDocs(self.path)]


@pytest.fixture
def docs_kind(monkeypatch):
    """Registers the `test_docs` source kind; returns `write(path, docs)` for its input file."""
    monkeypatch.setitem(registry.KINDS, "test_docs", f"{__name__}:DocsSource")

    def write(path, docs):
        with open(path, "w") as f:
            for d in docs:
                f.write(json.dumps(d) + "\n")
        return str(path)

    return write


def _counts(rows):
    return pa.table({"source": [r[0] for r in rows], "category": [r[1] for r in rows], "tokens": [r[2] for r in rows]})


def test_categorize_rules():
    assert categorize({"category": "math", "source": "github"}) == "math"
    assert categorize({"source": "web", "scores": {"code": 0.2, "math": 0.9}}) == "math"
    assert categorize({"source": "web", "scores": {"code": 0.2, "math": 0.3}}) == "natural_language"
    assert categorize({"source": "github"}) == "code"
    assert categorize({"source": "issues"}, {"issues": "code"}) == "code"
    assert categorize({}) == "natural_language"


def test_ratios_within_half_percent_on_a_large_corpus():
    import random

    rnd = random.Random(0)
    rows = [("github", "code", rnd.randint(50, 400)) for _ in range(6000)]
    rows += [("web", "natural_language", rnd.randint(50, 400)) for _ in range(4000)]
    rows += [("mathweb", "math", rnd.randint(50, 400)) for _ in range(1500)]
    shards = [_counts(rows[i::3]) for i in range(3)]
    copies, summary = plan_mix(shards, {"code": 0.6, "math": 0.1, "natural_language": 0.3}, 600_000, {}, seed=1)
    assert summary["tokens"] == sum(c["tokens"] for c in summary["categories"].values())
    for cat, want in {"code": 0.6, "math": 0.1, "natural_language": 0.3}.items():
        assert abs(summary["ratios_achieved"][cat] - want) < 0.005, (cat, summary["ratios_achieved"])
    assert abs(summary["tokens"] - 600_000) / 600_000 < 0.005
    # the manifest's counts are the plan's counts
    got = sum(int((shard.column("tokens").to_numpy() * c).sum()) for shard, c in zip(shards, copies))
    assert got == summary["tokens"]
    # same seed, same plan; another seed, another sample
    again, _ = plan_mix(shards, {"code": 0.6, "math": 0.1, "natural_language": 0.3}, 600_000, {}, seed=1)
    other, _ = plan_mix(shards, {"code": 0.6, "math": 0.1, "natural_language": 0.3}, 600_000, {}, seed=2)
    assert all((a == b).all() for a, b in zip(copies, again))
    assert any((a != b).any() for a, b in zip(copies, other))


def test_short_source_is_upsampled_with_epochs_reported():
    rows = [("github", "code", 100)] * 100 + [("issues", "code", 100)] * 10 + [("web", "natural_language", 100)] * 100
    copies, s = plan_mix([_counts(rows)], {"code": 0.5, "natural_language": 0.5}, 20_000, {"github": 1, "issues": 1}, 0)
    code = s["categories"]["code"]["sources"]
    assert code["issues"]["tokens"] == 5000 and code["issues"]["epochs"] == 5.0  # 1,000 tokens taken 5 times
    assert code["github"]["tokens"] == 5000 and code["github"]["epochs"] == 0.5  # without replacement
    assert code["github"]["unique_docs"] == 50
    assert s["categories"]["natural_language"]["sources"]["web"]["epochs"] == 1.0
    assert copies[0][100:110].tolist() == [5] * 10


def test_default_budget_needs_no_repetition_and_reports_missing_categories():
    rows = [("github", "code", 10)] * 60 + [("web", "natural_language", 10)] * 100
    _, s = plan_mix([_counts(rows)], {"code": 0.6, "math": 0.1, "natural_language": 0.3}, None, {}, 0)
    assert s["target_tokens"] == 1000  # code (600 tokens) is the scarcest: 600 / 0.6
    assert s["missing_categories"] == ["math"]
    assert max(v["epochs"] for c in s["categories"].values() for v in c["sources"].values()) <= 1.0


def _mix_run(tmp_path, run_recipe, docs_kind):
    docs = [{"id": f"g{i}", "text": "def f(x):\n    return x + %d\n" % i, "metadata": {"source": "github"}} for i in range(40)]
    docs += [{"id": f"w{i}", "text": "The weather today is fine number %d." % i, "metadata": {"source": "web"}} for i in range(4)]
    src = docs_kind(tmp_path / "docs.jsonl", docs)
    stages = [
        {"name": "src", "kind": "test_docs", "path": src, "tasks": 3},
        {"name": "mix", "kind": "mix", "input": "src", "ratios": {"code": 0.5, "natural_language": 0.5}, "target_tokens": 800},
    ]
    run = run_recipe(stages, workers=1, seed=7)
    stats = storage.read_json(f"{run}/mix/_stats.json")
    assert stats["balanced"]
    summary = storage.read_json(f"{run}/mix/mix.json")
    web = summary["categories"]["natural_language"]["sources"]["web"]
    assert web["epochs"] > 1  # 4 short pages fill half the budget only by repetition
    out = read_stage(run, "mix")
    assert len(out) == summary["docs"]
    assert {d.metadata["category"] for d in out} == {"code", "natural_language"}
    assert sum(d.id.startswith("w") for d in out) == web["docs"]
    return stages, out


def test_mix_stage_end_to_end(tmp_path, run_recipe, docs_kind):
    _mix_run(tmp_path, run_recipe, docs_kind)


@pytest.mark.slow
def test_mix_stage_same_output_with_two_workers(tmp_path, run_recipe, docs_kind):
    stages, out = _mix_run(tmp_path, run_recipe, docs_kind)
    run2 = run_recipe(stages, workers=2, seed=7, run_dir=tmp_path / "again")
    assert [(d.id, d.text) for d in read_stage(run2, "mix")] == [(d.id, d.text) for d in out]
