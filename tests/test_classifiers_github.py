"""The recall loop over GitHub files (`group_by: repo`): repositories are the domains, their
directories the prefixes. The pool comes from a real `github_files` stage over a generated
file-level dataset where some repos/directories hold planted "high-quality" code and others junk.
"""

from __future__ import annotations

import csv
import json
import os
import random
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

sys.path.insert(0, os.path.dirname(__file__))
from classifier_pool import _text, write_pool  # noqa: E402
from conftest import read_stage  # noqa: E402

from classifiers.pages import normalize_prefix, page_prefixes, under  # noqa: E402
from pipeline.recipe import parse_recipe  # noqa: E402
from pipeline.runner import Runner  # noqa: E402

HYPER = {"dim": 32, "bucket": 20000, "epoch": 40, "lr": 0.1, "min_count": 1, "word_ngrams": 2}

# (repo, path template, kinds cycled, files): "code" is high-quality code, "hard" code that reads
# like prose (the round-1 classifier misses it), "prose" junk
LAYOUT = [
    ("acme/numlib", "src/core/m{i}.py", ["code", "code", "hard"], 30),
    ("acme/numlib", "src/io/read{i}.py", ["code", "hard", "code", "code"], 16),
    ("acme/webkit", "lib/dom/w{i}.js", ["code", "code", "hard"], 24),
    ("acme/webkit", "fixtures/f{i}.txt", ["prose"], 30),
    ("deep/compilers", "passes/p{i}.py", ["hard"], 12),
    ("junk/dump", "data/rows{i}.txt", ["prose"], 40),
    ("misc/blog", "posts/2024/post{i}.txt", ["prose"], 40),
    ("misc/configs", "conf/c{i}.txt", ["prose"], 30),
]
POOL = sum(n for *_, n in LAYOUT)


def write_dataset(path) -> None:
    rng = random.Random(0)
    rows = [
        {"repo": repo, "path": tmpl.format(i=i), "content": _text(rng, kinds[i % len(kinds)])}
        for repo, tmpl, kinds, n in LAYOUT
        for i in range(n)
    ]
    pq.write_table(pa.Table.from_pylist(rows), str(path))


def write_seed(path, n: int = 30) -> None:
    """A hand-collected seed of high-quality code, as github_files-style documents (parquet)."""
    rng = random.Random(99)
    docs = [
        Document(text=_text(rng, "code"), id=f"seed/handpicked:s{i}.py",
                 metadata={"source": "github", "repo": "seed/handpicked", "path": f"s{i}.py", "lang": "Python"})
        for i in range(n)
    ]
    write_pool(path, docs)


@pytest.fixture(scope="module")
def github_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gh")
    write_dataset(tmp / "files.parquet")
    write_seed(tmp / "seed.parquet")
    (tmp / "seed_dirs.txt").write_text("# a directory known to be good\nacme/numlib/src/core/\n")
    recipe = parse_recipe({
        "name": "recall-github", "run_dir": str(tmp / "run"), "seed": 7, "executor": "local", "workers": 1,
        "stages": [
            {"name": "files", "kind": "github_files", "datasets": [str(tmp / "files.parquet")]},
            {"name": "recall", "kind": "recall", "input": "files", "group_by": "repo", "rounds": 2,
             "auto_annotate": True, "tokenizer": "whitespace", "accept_threshold": 0.6, **HYPER,
             "targets": {"code": {"seeds": [str(tmp / "seed.parquet"), str(tmp / "seed_dirs.txt")]}}},
        ],
    })
    Runner(recipe, progress=False).run()
    return tmp / "run"


def report(run, k):
    return json.loads((run / "recall" / "rounds" / f"round_{k}" / "report.json").read_text())["targets"]["code"]


def recalled(run, k):
    return {r["id"] for r in pq.read_table(run / "recall" / "rounds" / f"round_{k}" / "recalled").to_pylist()}


def seed(run, k):
    return json.loads((run / "recall" / "rounds" / f"round_{k}" / "seed.json").read_text())["code"]


def test_repo_prefixes():
    page = {"repo": "acme/numlib", "path": "src/core/linalg/dense/m.py", "url": "https://github.com/acme/numlib"}
    assert page_prefixes(page, "repo") == [
        (0, "acme/numlib/"), (1, "acme/numlib/src/"), (2, "acme/numlib/src/core/"), (3, "acme/numlib/src/core/linalg/"),
    ]
    assert page_prefixes({"repo": "numlib", "path": "m.py"}, "repo") == [(0, "numlib/")]
    assert page_prefixes({"path": "m.py"}, "repo") == []
    assert normalize_prefix(" /Acme/NumLib/src/ ", "repo") == "Acme/NumLib/src/"  # repo names keep their case
    assert under(page, ["acme/numlib/src/"], "repo") and not under(page, ["acme/numlib/src/"])  # url mode: github.com/...
    assert not under({"repo": "acme/numlib2", "path": "a.py"}, ["acme/numlib/"], "repo")


def test_round1_finds_the_planted_repos(github_run):
    r1 = report(github_run, 1)
    assert {"acme/numlib", "acme/webkit"} <= set(r1["related_domains"])
    assert {"acme/numlib/src/core/", "acme/numlib/src/io/", "acme/webkit/lib/dom/"} <= set(r1["suggested_prefixes"])
    assert not any(p.startswith(("junk/", "misc/", "acme/webkit/fixtures/")) for p in r1["suggested_prefixes"])
    assert "acme/webkit/" not in r1["suggested_prefixes"]  # a related repo, but mostly junk: only lib/ is suggested
    # prose-like code: round 1 recalls few of these files, none with confidence, so no prefix there is suggested
    assert r1["domains"]["deep/compilers"]["recalled"] < 6 and not any(p.startswith("deep/") for p in r1["suggested_prefixes"])
    s1 = seed(github_run, 1)
    assert s1["from_files"] == 30 and s1["from_prefixes"] == 30 and s1["size"] == 60
    rows = list(csv.DictReader((github_run / "recall" / "annotations" / "round_1.csv").read_text().splitlines()))
    assert {"acme/numlib", "acme/webkit"} <= {r["domain"] for r in rows}
    core = next(r for r in rows if r["prefix"] == "acme/numlib/src/core/")
    assert core["depth"] == "2" and core["pages"] == "30" and "src/core/m" in core["sample_titles"]


def test_auto_annotation_grows_the_seed_with_confident_files(github_run):
    r1, r2, s2 = report(github_run, 1), report(github_run, 2), seed(github_run, 2)
    assert {"acme/numlib/src/io/", "acme/webkit/lib/dom/"} <= set(s2["accepted_prefixes"])
    grown = set(s2["pool_ids"]) - set(seed(github_run, 1)["pool_ids"])
    # what joins was recalled by round 1 (with confidence), under an accepted directory; junk stays out
    assert len(grown) == r2["seed_grown"] > 0 and grown <= recalled(github_run, 1)
    assert any(g.startswith("acme/webkit:") for g in grown) and not any(g.startswith("acme/webkit:fixtures/") for g in grown)
    assert all(under({"repo": g.split(":")[0], "path": g.split(":")[1]}, s2["accepted_prefixes"], "repo") for g in grown)
    assert r2["seed_size"] == r1["seed_size"] + r2["seed_grown"]
    assert r2["seed_purity_proxy"] == {"joining": len(grown), "previous_model": 1.0, "first_model": 1.0}
    assert not any(i.startswith(("junk/", "misc/")) for i in recalled(github_run, 2))


def test_output_and_books(github_run):
    docs = read_stage(github_run, "recall")
    assert len(docs) == POOL and all("code" in d.metadata["scores"] and d.metadata["repo"] for d in docs)
    cut = report(github_run, 2)["cutoff"]
    assert {d.id for d in docs if d.metadata["scores"]["code"] >= cut} == recalled(github_run, 2)
    stats = json.loads((github_run / "recall" / "_stats.json").read_text())
    assert stats["balanced"] and stats["in"]["docs"] == POOL
    for k in (1, 2):
        assert report(github_run, k)["pages_scored"] == POOL
