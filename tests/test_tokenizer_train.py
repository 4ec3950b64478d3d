"""Training a BPE: the `train_tokenizer` stage and `codecurate tokenizer train`, run by the runner (config hash,
resume, stats) on a file, a directory of shards or a glob; the same documents give the same bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tokenizer as tk
from pipeline import documents
from tokenizer import fim

TEXTS = [
    "def add(a, b):\n    return a + b\n",
    "Unicode: é漢字 🙂 Ωμέγα — “quotes” \u00a0nbsp",
    "<｜fim▁begin｜> literal sentinels <｜end▁of▁sentence｜> stay text",
]


def _corpus(tmp_path, shards: int = 1):
    """300 small code documents in `shards` stage shards, every tenth in FIM form; their original texts in order."""
    stage = tmp_path / "stage"
    stage.mkdir()
    rows, texts = [], []
    for i in range(300):
        text = f"def function_{i}(value):\n    return value * {i} + len('données {i}')\n# the quick brown fox {i}\n"
        texts.append(text)
        meta = {"source": "github"}
        if i % 10 == 0:
            text, meta["fim"] = fim.apply(text, fim.doc_rng(0, str(i)), "psm", "char")
        rows.append(documents.to_row(documents.Document(text=text, id=str(i), metadata=meta)))
    per = -(-len(rows) // shards)
    for s in range(shards):
        pq.write_table(pa.Table.from_pylist(rows[s * per:(s + 1) * per], schema=documents.SCHEMA), stage / f"part-{s:05d}.parquet")
    return stage, texts


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "tokenizer", "train", *args, "--quiet"], capture_output=True, text=True)


def test_tokenizer_train_cli_output_loads_in_transformers(tmp_path):
    from transformers import PreTrainedTokenizerFast

    stage, texts = _corpus(tmp_path)
    out = tmp_path / "tok"
    r = _train(str(stage), "--output", str(out), "--vocab-size", "600")
    assert r.returncode == 0, r.stderr
    path = out / "tokenizer" / "tokenizer.json"
    ours = tk.load(str(path))
    assert r.stdout == f"tokenizer: {path} ({ours.hf.get_vocab_size()} tokens)\n"
    assert 261 < ours.hf.get_vocab_size() <= 600  # 5 special + 256 bytes + merges (the corpus is small)
    assert [ours.hf.token_to_id(t) for t in tk.SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    hf = PreTrainedTokenizerFast(tokenizer_file=str(path))
    for t in texts[:50] + TEXTS:
        assert ours.decode(ours.encode(t)) == t
        assert hf.encode(t, add_special_tokens=False) == ours.encode(t) or tk.FIM_BEGIN_TOKEN in t
    pretrained = PreTrainedTokenizerFast.from_pretrained(str(out / "tokenizer"))
    assert pretrained.eos_token == tk.EOS and pretrained.convert_tokens_to_ids(tk.FIM_HOLE_TOKEN) == 2
    # a trained merge: frequent words become single tokens
    assert len(ours.encode(" return")) == 1
    # the runner's books: every document read was trained on
    books = json.loads((out / "tokenizer" / "_stats.json").read_text())
    assert (books["in"]["docs"], books["kept"]["docs"], books["balanced"], books["tasks"]) == (300, 300, True, 1)


def test_the_stage_writes_what_train_bpe_writes_over_the_original_texts_in_shard_order(tmp_path):
    from tokenizer.train import save, train_bpe

    stage, texts = _corpus(tmp_path, shards=3)
    r = _train(str(stage), "--output", str(tmp_path / "run"), "--vocab-size", "500", "--min-frequency", "3")
    assert r.returncode == 0, r.stderr
    save(train_bpe(texts, 500, 3), str(tmp_path / "direct"))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (tmp_path / "run" / "tokenizer" / name).read_bytes() == (tmp_path / "direct" / name).read_bytes(), name


def test_tokenizer_inputs_take_a_file_a_directory_a_glob_or_several(tmp_path):
    stage, _ = _corpus(tmp_path, shards=2)
    given = {"dir": [str(stage)], "glob": [str(tmp_path / "st*" / "part-*.parquet")],
             "files": [str(stage / "part-00000.parquet"), str(stage / "part-00001.parquet")]}
    outs = {}
    for form, inputs in given.items():
        r = _train(*inputs, "--output", str(tmp_path / form), "--vocab-size", "400")
        assert r.returncode == 0, (form, r.stderr)
        outs[form] = (tmp_path / form / "tokenizer" / "tokenizer.json").read_bytes()
    assert outs["dir"] == outs["glob"] == outs["files"]
    one = _train(str(stage / "part-00001.parquet"), "--output", str(tmp_path / "one"), "--vocab-size", "400")
    assert one.returncode == 0 and json.loads((tmp_path / "one" / "tokenizer" / "_stats.json").read_text())["in"]["docs"] == 150


def test_same_settings_resume_and_other_settings_redo(tmp_path):
    stage, _ = _corpus(tmp_path)
    out = tmp_path / "run"
    path = out / "tokenizer" / "tokenizer.json"
    assert _train(str(stage), "--output", str(out), "--vocab-size", "280").returncode == 0
    first = path.read_bytes()
    os.utime(path, (0, 0))
    same = _train(str(stage), "--output", str(out), "--vocab-size", "280")
    assert same.returncode == 0 and "(280 tokens)" in same.stdout, same.stderr
    assert path.stat().st_mtime == 0  # skipped: the stage's _SUCCESS holds the same config hash
    other = _train(str(stage), "--output", str(out), "--vocab-size", "300")
    assert other.returncode == 0 and "(300 tokens)" in other.stdout, other.stderr  # redone: never the old output
    assert path.read_bytes() != first and tk.load(str(path)).hf.get_vocab_size() == 300


def test_tokenizer_train_cli_reports_missing_input_empty_input_and_bad_flags(tmp_path):
    r = _train(str(tmp_path), "--output", str(tmp_path / "o"))
    assert r.returncode == 2 and f"tokenizer train input not found: {tmp_path}" in r.stderr
    assert "Traceback" not in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    pq.write_table(pa.Table.from_pylist([], schema=documents.SCHEMA), empty / "part-00000.parquet")
    r = _train(str(empty), "--output", str(tmp_path / "o"))
    assert (r.returncode, r.stderr) == (2, f"codecurate: no documents in {empty}\n")
    r = _train(str(empty), "--output", str(tmp_path / "o"), "--vocab-size", "100")
    assert (r.returncode, r.stderr) == (2, "codecurate: --vocab-size: Input should be greater than or equal to 261\n")


def test_train_tokenizer_is_a_recipe_stage_kind(tmp_path):
    from pipeline.recipe import RecipeError, parse_recipe
    from pipeline.runner import Runner

    stage, _ = _corpus(tmp_path)
    recipe = {"name": "t", "run_dir": str(tmp_path / "run"), "executor": "local", "stages": [
        {"name": "docs", "kind": "files", "path": str(stage)},
        {"name": "bpe", "kind": "train_tokenizer", "input": "docs", "vocab_size": 300}]}
    Runner(parse_recipe(recipe), progress=False).run()
    assert tk.load(str(tmp_path / "run" / "bpe")).hf.get_vocab_size() == 300
    with pytest.raises(RecipeError) as e:
        parse_recipe({**recipe, "stages": [recipe["stages"][0], {**recipe["stages"][1], "tasks": 2, "min_frequency": 0}]})
    assert len(e.value.problems) == 2 and any("min_frequency" in p for p in e.value.problems), e.value.problems
