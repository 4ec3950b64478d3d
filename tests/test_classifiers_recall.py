"""The recall loop on a generated pool whose code and math domains and prefixes are known."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

sys.path.insert(0, os.path.dirname(__file__))
from classifier_pool import pool_docs, write_pool, write_seed  # noqa: E402
from conftest import read_stage  # noqa: E402

from classifiers import (
    annotate,  # noqa: E402
    loop,  # noqa: E402
    sample,  # noqa: E402
)
from classifiers.annotate import AnnotationError  # noqa: E402
from pipeline import storage  # noqa: E402
from pipeline.recipe import parse_recipe  # noqa: E402
from pipeline.runner import RunError, Runner, stage_hash  # noqa: E402
from pipeline.stage import StageContext  # noqa: E402

HYPER = {"dim": 32, "bucket": 20000, "epoch": 40, "lr": 0.1, "min_count": 1, "word_ngrams": 2}


def recipe_dict(run_dir, seeds_dir, rounds=2, auto=True, **extra) -> dict:
    return {
        "name": "recall-test",
        "run_dir": str(run_dir),
        "seed": 7,
        "executor": "local",
        "workers": 1,
        "stages": [
            {"name": "pool", "kind": "web_ingest", "paths": [str(seeds_dir / "dummy.warc.gz")]},
            {
                "name": "recall",
                "kind": "recall",
                "input": "pool",
                "rounds": rounds,
                "auto_annotate": auto,
                "tokenizer": "whitespace",
                **HYPER,
                "targets": {
                    "code": {"seeds": [str(seeds_dir / "code.jsonl")]},
                    "math": {"seeds": [str(seeds_dir / "math_prefixes.txt")]},
                },
                **extra,
            },
        ],
    }


def prepare(tmp: Path, **kw):
    """A run dir whose `pool` stage is already complete (generated shards), plus seeds."""
    seeds = tmp / "seeds"
    seeds.mkdir(parents=True)
    (seeds / "dummy.warc.gz").write_bytes(b"")
    write_seed(seeds / "code.jsonl", "code", 30)
    (seeds / "math_prefixes.txt").write_text("# math seed: one wiki section\nhttps://mathwiki.org/wiki/algebra/\n")
    run = tmp / "run"
    data = recipe_dict(run, seeds, **kw)
    recipe = parse_recipe(data)
    pool_dir = run / "pool"
    pool_dir.mkdir(parents=True)
    write_pool(pool_dir / "part-00000.parquet", pool_docs())
    (pool_dir / "_SUCCESS").write_text(stage_hash(recipe, "pool") + "\n")
    return run, recipe, data


def loop_cfg(recipe) -> loop.LoopConfig:
    spec = recipe.stage("recall")
    ctx = StageContext(run_dir=recipe.run_dir, stage="recall", seed=recipe.seed, input_dirs=[storage.join(recipe.run_dir, "pool")])
    return spec.loop_config(ctx)


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory):
    # the planted code prefixes hold 30% "hard" pages that round 1 cannot recall
    run, recipe, _ = prepare(tmp_path_factory.mktemp("auto"), accept_threshold=0.6)
    Runner(recipe, progress=False).run(["recall"])
    return run, recipe


def report(run, k):
    return json.loads((run / "recall" / "rounds" / f"round_{k}" / "report.json").read_text())


def recalled(run, k, target):
    rows = pq.read_table(run / "recall" / "rounds" / f"round_{k}" / "recalled").to_pylist()
    return {r["id"] for r in rows if r["target"] == target}


def test_round1_finds_the_planted_domains_and_prefixes(auto_run):
    run, _ = auto_run
    r1 = report(run, 1)["targets"]
    assert set(r1["code"]["related_domains"]) == {"codebase.dev", "forum.net"}
    assert set(r1["math"]["related_domains"]) == {"mathwiki.org", "forum.net"}
    assert {"docs.codebase.dev/api/", "www.forum.net/code/"} <= set(r1["code"]["suggested_prefixes"])
    assert "www.forum.net/math/" in r1["math"]["suggested_prefixes"]
    for t in ("code", "math"):
        assert not any(p.startswith(("news.com", "travel.net", "www.forum.net/life")) for p in r1[t]["suggested_prefixes"])
    assert "hardcode.io" not in r1["code"]["related_domains"]
    # the prefix list selected the algebra section as math's seed
    seed = json.loads((run / "recall" / "rounds" / "round_1" / "seed.json").read_text())
    assert seed["math"]["from_prefixes"] == 20 and seed["math"]["size"] == 20
    assert seed["code"]["from_files"] == 30


def scores(run, k) -> dict[str, dict]:
    return {r["id"]: r for r in pq.read_table(run / "recall" / "_work" / f"round_{k}" / "scores").to_pylist()}


def test_auto_annotation_grows_a_clean_seed(auto_run):
    run, _ = auto_run
    rows = list(csv.DictReader(open(run / "recall" / "annotations" / "round_1.csv")))
    assert rows and all(r["label"] == r["suggested"] for r in rows)
    for r in rows:  # accepted by the share of pages recalled with confidence, reported per prefix
        assert r["suggested"] == ("yes" if float(r["confident_fraction"]) >= 0.6 else "no")
        assert int(r["confident"]) <= int(r["recalled"]) <= int(r["pages"])
    r1, r2 = report(run, 1)["targets"], report(run, 2)["targets"]
    kinds = {d.id: d.metadata["kind"] for d in pool_docs()}
    s1 = scores(run, 1)
    for t, kind in (("code", "code"), ("math", "math")):
        assert r2[t]["seed_size"] == r1[t]["seed_size"] + r2[t]["seed_grown"]
        seed2 = json.loads((run / "recall" / "rounds" / "round_2" / "seed.json").read_text())[t]
        grown = set(seed2["pool_ids"]) - set(json.loads((run / "recall" / "rounds" / "round_1" / "seed.json").read_text())[t]["pool_ids"])
        # what joins is held to the recall's standard: recalled by round 1 with confidence, under an accepted prefix
        assert all(s1[g][f"score.{t}"] >= 0.8 for g in grown)  # confident_score
        assert all(any(g.split("://")[1].startswith(p) for p in seed2["accepted_prefixes"]) for g in grown)
        assert {kinds[i] for i in seed2["pool_ids"]} == {kind}  # the seed stays clean
        proxy = r2[t]["seed_purity_proxy"]
        assert proxy["joining"] == len(grown) and proxy["previous_model"] == 1.0 and proxy["first_model"] == 1.0
        assert r2[t]["seed_growth_stopped"] is None
    assert r2["code"]["seed_grown"] > 0 and "docs.codebase.dev/api/" in r2["code"]["accepted_prefixes"]
    for t in ("code", "math"):
        assert not any(p.startswith(("news.com", "travel.net", "www.forum.net/life")) for p in r2[t]["accepted_prefixes"])


def test_negatives_come_from_domains_far_from_the_target(auto_run):
    run, recipe = auto_run
    cfg = loop_cfg(recipe)
    rd = run / "recall" / "rounds"
    s1, s2 = (json.loads((rd / f"round_{k}" / "seed.json").read_text()) for k in (1, 2))
    assert s1["math"]["near_domains"] == ["mathwiki.org"] and s1["code"]["near_domains"] == []  # the seed's domains
    assert {"codebase.dev", "forum.net"} <= set(s2["code"]["near_domains"])  # and then the related ones
    merged, s1, r1 = sample.merge(cfg, 2, lambda *a: 50), scores(run, 1), report(run, 1)["targets"]
    # a prefix is rejected when most of its pages score <= 0.2: the forum's prose, never the API reference
    # whose unrecalled pages are its "hard" code pages
    assert "www.forum.net/life/" in r1["code"]["rejected_prefixes"]
    assert not any(p.startswith("docs.codebase.dev") for p in r1["code"]["rejected_prefixes"])
    for t in ("code", "math"):
        near = [p for p in merged[t].negatives if ".".join(p["url"].split("/")[2].split(".")[-2:]) in s2[t]["near_domains"]]
        assert len(merged[t].negatives) == 50 and len(near) < 50
        # near pages only as hard negatives: confidently rejected, under a prefix the round rejected
        assert all(s1[p["id"]][f"score.{t}"] <= 0.2 for p in near)
        assert all(p["url"].split("://")[1].startswith(tuple(r1[t]["rejected_prefixes"])) for p in near)
    assert any("forum.net/life/" in p["url"] for p in merged["code"].negatives)
    # when the far pages run short, unrecalled pages of near domains fill up the negatives
    merged = sample.merge(cfg, 2, lambda *a: 1000)
    assert any("forum.net" in p["url"] for p in merged["code"].negatives)


def test_growth_stops_when_the_purity_proxy_drops(auto_run, tmp_path):
    import shutil

    run, recipe = auto_run
    cfg = loop_cfg(recipe)
    cfg.stage_dir = str(tmp_path / "recall")
    shutil.copytree(run / "recall", tmp_path / "recall")
    rd = tmp_path / "recall" / "rounds"
    seed1 = json.loads((rd / "round_1" / "seed.json").read_text())
    seed2 = json.loads((rd / "round_2" / "seed.json").read_text())
    grown = sorted(set(seed2["code"]["pool_ids"]) - set(seed1["code"]["pool_ids"]))
    assert grown and seed2["code"]["grown_from"] == {"round": 1, "prefixes": seed2["code"]["accepted_prefixes"], "rule": "confident"}

    def growth(k):
        sample.write_sample(cfg, k, 0, 1)
        return sample.merge(cfg, k, lambda *a: 10)["code"]

    assert growth(2).growth.stopped is None and growth(2).growth.joining == len(grown)
    # as if round 1's pages had not joined in round 2: they would join in round 3, where the first
    # round's model (cutoff raised) recalls none of them
    (rd / "round_2" / "seed.json").write_text(json.dumps({**seed2, "code": {**seed2["code"], "grown_from": None}}))
    cut1 = json.loads((rd / "round_1" / "cutoffs.json").read_text())
    (rd / "round_1" / "cutoffs.json").write_text(json.dumps({**cut1, "code": 1.5}))
    m = growth(3)
    assert m.growth.joining == 0 and m.growth.proxy == {"joining": len(grown), "previous_model": 1.0, "first_model": 0.0}
    assert m.growth.stopped == (f"round 3: 0.00 of the {len(grown)} pages that would join are recalled by the first round's model "
                                f"(min_seed_agreement 0.8); the seed stops growing")
    assert not set(grown) & {p["id"] for p in m.positives}
    # once stopped, later rounds add nothing
    (rd / "round_2" / "seed.json").write_text(json.dumps({**seed2, "code": {**seed2["code"], "grown_from": None, "growth_stopped": m.growth.stopped}}))
    (rd / "round_1" / "cutoffs.json").write_text(json.dumps(cut1))
    assert growth(3).growth.joining == 0


def test_round_metrics_match_the_files(auto_run):
    run, _ = auto_run
    sd = run / "recall"
    for k in (1, 2):
        rep = report(run, k)
        scores = pq.read_table(sd / "_work" / f"round_{k}" / "scores").to_pylist()
        annotations = list(csv.DictReader(open(sd / "annotations" / f"round_{k}.csv")))
        for t, v in rep["targets"].items():
            ids = recalled(run, k, t)
            assert v["pages_recalled"] == len(ids) == sum(r[f"score.{t}"] >= v["cutoff"] for r in scores)
            assert v["tokens_recalled"] == sum(r["tokens"] for r in scores if r["id"] in ids)
            assert v["pages_scored"] == len(scores) == 291
            assert v["candidate_prefixes"] == sum(r["target"] == t for r in annotations)
            meta = json.loads((sd / "rounds" / f"round_{k}" / f"model_{t}" / "model.json").read_text())
            assert meta["round"] == k and meta["tokenizer"] == "whitespace"
            assert meta["data"]["positives"]["count"] == v["seed_size"]
            assert v["heldout"] == {m: meta["metrics"]["heldout"][m] for m in ("precision", "recall", "f1", "auc")}
            if k == 2:
                prev = recalled(run, 1, t)
                assert v["overlap_with_previous"] == round(len(ids & prev) / len(ids), 6)
    # the stage's output: every page, scored by the last round's models; the books balance
    docs = read_stage(run, "recall")
    assert len(docs) == 291 and all(set(d.metadata["scores"]) == {"code", "math"} for d in docs)
    last = {d.id for d in docs if d.metadata["scores"]["code"] >= report(run, 2)["targets"]["code"]["cutoff"]}
    assert last == recalled(run, 2, "code")
    stats = json.loads((sd / "_stats.json").read_text())
    assert stats["balanced"] and stats["in"]["docs"] == 291


def test_status_and_report_sections(auto_run, capsys):
    from classifiers.cli import cmd_recall_status
    from classifiers.stage import Recall

    run, _ = auto_run
    (run / "recipe.json").write_text(json.dumps({"stages": [{"name": "recall", "kind": "recall"}]}))
    assert cmd_recall_status(type("A", (), {"run_dir": str(run)})) == 0
    out = capsys.readouterr().out
    assert "round" in out and "round_2.csv" in out and len([ln for ln in out.splitlines() if " code " in ln]) == 2
    sections = Recall.report_sections(str(run / "recall"), {})
    assert sections and "data:image/png;base64," in sections[0][1]


# ---- manual annotation: bad CSVs, then continuing ----------------------------------------------


def _cli(*argv) -> int:
    from pipeline.cli import main

    return main(list(argv))


def _rewrite(path: Path, change) -> None:
    rows = list(csv.DictReader(open(path)))
    fields = list(rows[0])
    change(rows)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def test_manual_annotation_errors_then_continue(tmp_path, capsys):
    run, recipe, data = prepare(tmp_path, rounds=1, auto=False)
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(data))
    assert _cli("recall", "run", str(recipe_path), "--rounds", "1", "--quiet") == 0
    ann = run / "recall" / "annotations" / "round_1.csv"
    rows = list(csv.DictReader(open(ann)))
    assert rows and all(r["label"] == "" for r in rows)
    cfg = loop_cfg(recipe)

    with pytest.raises(AnnotationError, match=r"round_1\.csv: \d+ row\(s\) have no label"):
        annotate.read_annotations(cfg, 1)
    # the CLI says the same in one line (the recall stage fails) and trains nothing
    capsys.readouterr()
    assert _cli("recall", "run", str(recipe_path), "--rounds", "2", "--quiet") == 1
    err = capsys.readouterr().err
    assert "have no label" in err and not (run / "recall" / "rounds" / "round_2" / "model_code").exists()

    def bad_label(rs):
        for r in rs:
            r["label"] = r["suggested"]
        rs[0]["label"] = "maybe"

    _rewrite(ann, bad_label)
    with pytest.raises(AnnotationError, match=r"round_1\.csv: line 2: label must be yes or no, got 'maybe'"):
        annotate.read_annotations(cfg, 1)

    def unknown_prefix(rs):
        rs[0]["label"] = "yes"
        rs[1]["prefix"] = "nowhere.example/"

    _rewrite(ann, unknown_prefix)
    with pytest.raises(AnnotationError, match=r"line 3: unknown prefix 'nowhere.example/' for target '\w+' \(not a candidate of round 1\)"):
        annotate.read_annotations(cfg, 1)

    def good(rs):
        rs[1]["prefix"] = rows[1]["prefix"]
        for r in rs:
            r["label"] = "yes" if r["prefix"].startswith(("docs.codebase.dev", "www.forum.net/code", "www.forum.net/math", "mathwiki")) else "no"

    _rewrite(ann, good)
    model1 = run / "recall" / "rounds" / "round_1" / "model_code" / "model.bin"
    before = model1.stat().st_mtime_ns
    assert _cli("recall", "run", str(recipe_path), "--rounds", "2", "--quiet") == 0
    assert model1.stat().st_mtime_ns == before  # round 1 was kept, not redone
    seed2 = json.loads((run / "recall" / "rounds" / "round_2" / "seed.json").read_text())
    assert "docs.codebase.dev/api/" in seed2["code"]["accepted_prefixes"] and seed2["code"]["grown"] > 0
    # manual mode keeps DeepSeekMath's rule: the user vouched for the prefix, so the pages round 1
    # missed under it join, and round 2 finds a domain of such pages that no seed page came from
    assert not set(seed2["code"]["pool_ids"]) & recalled(run, 1, "code")
    new = recalled(run, 2, "code") - recalled(run, 1, "code")
    assert any(i.startswith("https://hardcode.io/") for i in new)
    assert "hardcode.io" in report(run, 2)["targets"]["code"]["new_domains"]


def test_empty_seed_is_refused_before_training(tmp_path):
    run, recipe, data = prepare(tmp_path, rounds=1)
    (tmp_path / "seeds" / "math_prefixes.txt").write_text("https://nothing-here.example/\n")
    with pytest.raises(RunError, match=r"target 'math': the seed is empty .*refusing to train"):
        Runner(recipe, progress=False).run(["recall"])
    assert not (run / "recall" / "rounds" / "round_1" / "model_code").exists()


def test_output_recalled_keeps_only_recalled_pages(tmp_path):
    run, recipe, _ = prepare(tmp_path, rounds=1, output="recalled")
    Runner(recipe, progress=False).run(["recall"])
    cut = report(run, 1)["targets"]
    docs = read_stage(run, "recall")
    ids = {d.id for d in docs}
    assert ids == recalled(run, 1, "code") | recalled(run, 1, "math")
    assert all(any(d.metadata["scores"][t] >= cut[t]["cutoff"] for t in cut) for d in docs)
    stats = json.loads((run / "recall" / "_stats.json").read_text())
    assert stats["balanced"] and stats["dropped"]["not_recalled"]["docs"] == 291 - len(docs)


def test_a_model_that_learned_nothing_stops_the_loop(tmp_path):
    run, recipe, data = prepare(tmp_path, rounds=1, min_auc=0.9)
    # "code" seed pages drawn like the pool itself: nothing tells them apart from the negatives
    rng_pages = pool_docs(seed=5)[::9]
    with open(tmp_path / "seeds" / "code.jsonl", "w") as f:
        f.writelines(json.dumps({"id": f"s{i}", "text": d.text}) + "\n" for i, d in enumerate(rng_pages))
    with pytest.raises(RunError) as e:
        Runner(recipe, progress=False).run(["recall"])
    msg = str(e.value)
    assert "\n" not in msg and "target 'code' round 1: held-out " in msg and "is below min_" in msg
    assert not (run / "recall" / "_work" / "round_1" / "scores").exists()  # the pool was not scored


def test_missing_seed_file_is_one_line_naming_its_key(tmp_path, capsys):
    _, _, data = prepare(tmp_path, rounds=1)
    data["stages"].append({"name": "after", "kind": "concat", "input": "recall"})
    (tmp_path / "seeds" / "code.jsonl").unlink()
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    assert _cli("run", str(path), "--quiet") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stages.recall.targets.code.seeds[0]" in err[0] and "code.jsonl" in err[0]
