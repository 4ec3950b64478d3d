"""Mixer: ratios by tokens, per-source weights, up-sampling with epochs, determinism."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from conftest import read_stage
from datatrove.data import Document

from pipeline import registry, storage
from pipeline.github.repo_docs import build_document
from pipeline.mixing import mixplan, split
from pipeline.stage import StageSpec
from pipeline.steps import Step


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


def _plan_and_take(rows, ratios, target, weights=None, seed=1, tasks=1):
    """rows: (id, category, source, tokens); the plan from the partial sums of `tasks` count tasks, and the
    tokens taken from each document as the main phase decides them (a split one as pieces of one token)."""
    sums = []
    for t in range(tasks):
        hists, docs = {}, Counter()
        for i, c, s, n in rows[t::tasks]:
            h = hists.setdefault((c, s), np.zeros((mixplan.SIZE_CLASSES, mixplan.BUCKETS), np.int64))
            h[mixplan.size_class(n), mixplan.bucket(mixplan.doc_keys(seed, i)[0])] += n
            docs[c, s] += 1
        sums.append((hists, docs))
    hists = {k: sum(h[k] for h, _ in sums if k in h) for k in {k for h, _ in sums for k in h}}
    docs = sum((d for _, d in sums), Counter())
    planned = mixplan.plan(hists, docs, ratios, target, weights or {})
    taken = {}
    for i, c, s, n in rows:
        u, v = mixplan.doc_keys(seed, i)
        whole, share = mixplan.decide(planned["categories"][c]["sources"][s], n, u)
        a, b = mixplan.window([1] * n, share, u, v) if share else (0, 0)
        taken[i] = whole * n + b - a
    return planned, taken


def _tokens_by(rows, taken, index):
    out = Counter()
    for r in rows:
        out[r[index]] += taken[r[0]]
    return out


def test_ratios_within_half_percent_on_a_large_corpus():
    import random

    rnd = random.Random(0)
    rows = [(f"g{i}", "code", "github", rnd.randint(50, 400)) for i in range(6000)]
    rows += [(f"w{i}", "natural_language", "web", rnd.randint(50, 400)) for i in range(4000)]
    rows += [(f"m{i}", "math", "mathweb", rnd.randint(50, 400)) for i in range(1500)]
    ratios = {"code": 0.6, "math": 0.1, "natural_language": 0.3}
    planned, copies = _plan_and_take(rows, ratios, 600_000, tasks=3)
    got = _tokens_by(rows, copies, 1)
    total = sum(got.values())
    for cat, want in ratios.items():
        assert abs(got[cat] / total - want) < 0.005, (cat, got)
    assert abs(total - 600_000) / 600_000 < 0.005
    # the plan is a function of the summed partial counts: any number of count tasks gives the same one
    assert _plan_and_take(rows, ratios, 600_000, tasks=1) == (planned, copies)
    assert _plan_and_take(rows, ratios, 600_000, tasks=7)[0] == planned
    other = _plan_and_take(rows, ratios, 600_000, seed=2)[1]
    assert other != copies


def test_partial_sums_merge_to_the_same_totals_for_any_task_count(tmp_path):
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline import documents
    from pipeline.mixing.mix import CountTokens, merge_sums

    docs, files = _corpus(random.Random(4), repos=1, math_pages=20), []
    for k, part in enumerate(docs[i::3] for i in range(3)):
        rows = [documents.to_row(Document(text=d["text"], id=d["id"], metadata=d["metadata"])) for d in part]
        files.append(str(tmp_path / f"part-{k:05d}.parquet"))
        pq.write_table(pa.Table.from_pylist(rows, schema=documents.SCHEMA), files[-1])
    merged = []
    for tasks in (1, 3):
        out = str(tmp_path / f"counts{tasks}")
        for rank in range(tasks):
            list(CountTokens(files, out, "deepseek", None, 0.5, seed=9).run(None, rank, tasks))
        merged.append(merge_sums([f"{out}/sums-{r:05d}.parquet" for r in range(tasks)]))
    (h1, d1), (h3, d3) = merged
    assert d1 == d3 and d1[("math", "web")] == 20 and d1[("code", "github")] == 1
    assert h1.keys() == h3.keys() and all((h1[k] == h3[k]).all() for k in h1)


def test_short_source_is_upsampled_with_epochs():
    rows = [(f"g{i}", "code", "github", 100) for i in range(1000)] + [(f"i{i}", "code", "issues", 100) for i in range(10)]
    rows += [(f"w{i}", "natural_language", "web", 100) for i in range(1000)]
    planned, copies = _plan_and_take(rows, {"code": 0.5, "natural_language": 0.5}, 200_000, {"github": 1, "issues": 1})
    code = planned["categories"]["code"]["sources"]
    assert code["issues"]["full"] == 50 and code["issues"]["tau"] == 0  # 1,000 tokens taken exactly 50 times
    assert all(copies[f"i{i}"] == 50 * 100 for i in range(10))
    got = _tokens_by(rows, copies, 2)
    assert abs(got["github"] - 50_000) <= 1_000  # half of github, without replacement
    assert set(copies[f"g{i}"] for i in range(1000)) == {0, 100}  # whole documents or none
    assert got["web"] == 100_000 and code["github"]["full"] == 0


def test_default_budget_needs_no_repetition_and_reports_missing_categories():
    rows = [(f"g{i}", "code", "github", 10) for i in range(60)] + [(f"w{i}", "natural_language", "web", 10) for i in range(100)]
    planned, copies = _plan_and_take(rows, {"code": 0.6, "math": 0.1, "natural_language": 0.3}, None)
    assert planned["target_tokens"] == 1000  # code (600 tokens) is the scarcest: 600 / 0.6
    assert planned["missing_categories"] == ["math"]
    assert all(copies[f"g{i}"] == 10 for i in range(60))  # all the code, once
    assert abs(sum(copies[f"w{i}"] for i in range(100)) - 300) <= 10 and max(copies.values()) == 10


def test_window_length_is_exact_in_expectation_and_starts_where_allowed():
    import random

    rnd = random.Random(3)
    pieces = [rnd.randint(1, 300) for _ in range(40)]
    starts = [k % 5 == 0 for k in range(40)]
    total, n = 0, 20_000
    for _ in range(n):
        i, j = mixplan.window(pieces, 0.3, rnd.random(), rnd.random(), starts)
        assert starts[i] and i <= j
        total += sum(pieces[i:j])
    assert abs(total / n - 0.3 * sum(pieces)) / (0.3 * sum(pieces)) < 0.01


def _repo(name: str, n_files: int, funcs: int, rnd) -> Document:
    """A repository document whose dependency order (mod_N first) is the reverse of path order."""
    files = []
    for k in range(n_files):
        mod = f"mod_{n_files - k:03d}"
        head = f"from mod_{n_files - k + 1:03d} import f0\n\n" if k else ""
        body = "\n".join(f"def f{j}(x):\n    y = x * {rnd.randint(0, 999)}\n    return y + {j}\n" for j in range(funcs))
        files.append(Document(text=head + body, id=f"{name}:{mod}.py",
                              metadata={"path": f"{mod}.py", "lang": "Python", "source": "github", "repo": name}))
    return build_document(name, None, files)


def test_split_keeps_file_order_and_text():
    import random

    import tokenizer as tk

    tok = tk.load()
    doc = _repo("o/r", 12, 6, random.Random(0))
    assert doc.metadata["files"] == [f"mod_{k:03d}.py" for k in range(12, 0, -1)]
    count = lambda texts: [len(x) for x in tok.encode_batch(texts)]  # noqa: E731
    spans, tokens, starts = split.pieces(doc, count, limit=60)  # every file is larger: paragraphs, then lines
    assert "".join(doc.text[a:b] for a, b, _ in spans) == doc.text and max(tokens) <= 60
    assert [f for _, _, f in spans] == sorted(f for _, _, f in spans)  # pieces follow the files' order
    assert sum(starts) == 12 and all(doc.text[a:].startswith("# mod_") for (a, _, _), s in zip(spans, starts) if s)
    i, j = mixplan.window(tokens, 0.4, 0.5, 0.5, starts)
    part = split.window_document(doc, spans, i, j)
    assert part.text.startswith("# mod_") and part.text in doc.text
    files = part.metadata["files"]
    first = doc.metadata["files"].index(files[0])
    assert files == doc.metadata["files"][first:first + len(files)]  # a run of files, in dependency order
    assert part.metadata["split"]["of"] == "o/r" and part.id.startswith("o/r#split")
    assert all(set(ds) <= set(files) for ds in part.metadata.get("dependencies", {}).values())
    # a document that is not a repository is cut at paragraphs
    prose = Document(text="One para.\n\nTwo para here.\n\nThree.", id="p", metadata={})
    spans, _, starts = split.pieces(prose, count, limit=1000)
    assert [prose.text[a:b] for a, b, _ in spans] == ["One para.\n\n", "Two para here.\n\n", "Three."] and all(starts)


def _corpus(rnd, repos: int = 3, math_pages: int = 100):
    docs = []
    for r in range(repos):  # each ~40k tokens: larger than the whole code budget
        d = _repo(f"org/repo{r}", 60, 30, rnd)
        docs.append({"id": d.id, "text": d.text, "metadata": d.metadata})
    for i in range(300):
        words = " ".join(rnd.choice(["river", "stone", "market", "window", "garden", "letter"]) for _ in range(rnd.randint(20, 60)))
        docs.append({"id": f"w{i}", "text": f"Page {i}. {words}.\n\nAnother paragraph about {words[:40]}.", "metadata": {"source": "web"}})
    for i in range(math_pages):
        docs.append({"id": f"m{i}", "text": f"Let $x_{i} = {rnd.randint(2, 99)}^2 + {i}$, so $x_{i} > {i}$ holds for every n.",
                     "metadata": {"source": "web", "category": "math"}})
    rnd.shuffle(docs)
    return docs


def test_oversized_repo_documents_are_split_and_ratios_within_one_point(tmp_path, run_recipe, docs_kind):
    import random

    docs = _corpus(random.Random(1))
    src = docs_kind(tmp_path / "docs.jsonl", docs)
    run = run_recipe([{"name": "src", "kind": "test_docs", "path": src, "tasks": 2},
                      {"name": "mix", "kind": "mix", "input": "src"}], workers=1, seed=3)
    summary = storage.read_json(f"{run}/mix/mix.json")
    github = summary["categories"]["code"]["sources"]["github"]
    assert github["available_docs"] == 3 and github["available_tokens"] / 3 > summary["categories"]["code"]["target_tokens"]
    for cat, want in {"code": 0.6, "math": 0.1, "natural_language": 0.3}.items():
        assert abs(summary["ratios_achieved"][cat] - want) < 0.01, summary["ratios_achieved"]
    assert summary["warning"] is None and github["split_docs"] >= 1
    originals = {d["id"]: d for d in docs}
    windows = [d for d in read_stage(run, "mix") if d.metadata.get("repo")]
    assert windows and all("split" in d.metadata for d in windows)
    for d in windows:
        whole = originals[d.metadata["split"]["of"]]
        assert d.text in whole["text"] and d.text.startswith("# mod_")
        first = whole["metadata"]["files"].index(d.metadata["files"][0])
        assert d.metadata["files"] == whole["metadata"]["files"][first:first + len(d.metadata["files"])]
    assert storage.read_json(f"{run}/mix/_stats.json")["balanced"]


def test_unreachable_ratio_reaches_stats_report_and_run_summary(tmp_path, docs_kind, capsys):
    """The warning is read by the runner (the driver), so it reaches the user whatever executor ran the tasks."""
    import random

    import yaml

    from pipeline.cli import main
    from pipeline.report import write_report

    src = docs_kind(tmp_path / "docs.jsonl", _corpus(random.Random(2), repos=1, math_pages=0))
    run = str(tmp_path / "run")
    recipe = {"name": "t", "run_dir": run, "executor": "local", "workers": 1, "stages": [
        {"name": "src", "kind": "test_docs", "path": src}, {"name": "mix", "kind": "mix", "input": "src", "target_tokens": 20_000}]}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["run", str(tmp_path / "r.yaml"), "--quiet"]) == 0
    line = storage.read_json(f"{run}/mix/mix.json")["warning"]
    assert line.startswith("mix ratios not reached")
    assert storage.read_json(f"{run}/mix/_stats.json")["warnings"] == [line]
    assert storage.read_json(f"{run}/src/_stats.json")["warnings"] == []
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == f"warning: mix: {line}"
    assert main(["run", str(tmp_path / "r.yaml"), "--quiet"]) == 0  # already done: the summary still says it
    assert capsys.readouterr().out.splitlines()[-1] == f"warning: mix: {line}"
    html = storage.read_bytes(write_report(run)).decode()
    assert "<h2>Warnings</h2>" in html and "<b>mix</b>: mix ratios not reached" in html


def test_unreachable_ratio_warns_and_strict_fails(tmp_path, run_recipe, docs_kind):
    import random

    from pipeline.mixing.mix import Mix
    from pipeline.runner import RunError

    src = docs_kind(tmp_path / "docs.jsonl", _corpus(random.Random(2), repos=1, math_pages=0))
    stages = [{"name": "src", "kind": "test_docs", "path": src},
              {"name": "mix", "kind": "mix", "input": "src", "target_tokens": 20_000}]
    run = run_recipe(stages, workers=1)
    summary = storage.read_json(f"{run}/mix/mix.json")
    assert summary["warning"] == ("mix ratios not reached (target -> achieved): code 60.0% -> 67.0%; "
                                  "math 10.0% -> 0.0% (no documents); natural_language 30.0% -> 33.0%")
    assert summary["ratios_target"]["math"] == 0.1 and summary["ratios_achieved"]["math"] == 0.0
    assert summary["categories"]["math"]["target_tokens"] == 2000 and summary["categories"]["math"]["tokens"] == 0
    html = Mix.report_sections(f"{run}/mix", {})[0][1]
    assert "math 10.0% -&gt; 0.0%" in html and "<td>10.0%</td><td>0.0%</td>" in html
    stages[1]["strict"] = True
    with pytest.raises(RunError) as e:
        run_recipe(stages, workers=1, run_dir=tmp_path / "strict")
    assert "\n" not in str(e.value) and "no documents of math (strict)" in str(e.value)


def _mix_run(tmp_path, run_recipe, docs_kind):
    docs = [{"id": f"g{i}", "text": f"def f(x):\n    return x + {i}\n", "metadata": {"source": "github"}} for i in range(40)]
    docs += [{"id": f"w{i}", "text": f"The weather today is fine number {i}.", "metadata": {"source": "web"}} for i in range(4)]
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
