"""Tokenized shards: tokens read back equal direct encoding, shuffle, manifest, empty input."""

from __future__ import annotations

import filecmp
import os

import pytest
from conftest import read_stage
from test_mix import docs_kind  # noqa: F401  (fixture)

import tokenizer as tk
from pipeline import storage
from pipeline.mixing.megatron import IndexedDataset
from pipeline.mixing.shards import encode_documents


def _docs(n):
    """Documents as a mix stage leaves them: each with its category (fim and the manifest read it, never re-derive it)."""
    out = []
    for i in range(n):
        if i % 3:
            out.append({"id": f"c{i}", "text": f"def f{i}(x):\n    return x * {i}  # é\n", "metadata": {"source": "github", "category": "code"}})
        else:
            out.append({"id": f"w{i}", "text": f"Page {i}: the weather is nice, 漢字 <｜fim▁hole｜> text.",
                        "metadata": {"source": "web", "category": "natural_language"}})
    return out


STAGES = [
    {"name": "fim", "kind": "fim", "input": "src", "rate": 0.5},
    {"name": "shards", "kind": "tokenize_shards", "input": "fim", "shards": 2},
]


def test_tokens_match_direct_encoding_and_manifest(tmp_path, run_recipe, docs_kind):  # noqa: F811
    src = docs_kind(tmp_path / "docs.jsonl", _docs(60))
    stages = [{"name": "src", "kind": "test_docs", "path": src, "tasks": 3}] + STAGES
    run = run_recipe(stages, workers=1, seed=5)
    sdir = os.path.join(run, "shards")
    stats = storage.read_json(f"{sdir}/_stats.json")
    assert stats["balanced"] and stats["in"]["docs"] == 60 and stats["kept"]["docs"] == 60
    tok = tk.load()
    docs = read_stage(run, "shards")
    assert len(docs) == 60 and sorted(d.id for d in docs) == sorted(d["id"] for d in _docs(60))
    assert [d.id for d in docs] != [d["id"] for d in _docs(60)]  # globally shuffled
    read_back = []
    for k in range(2):
        ds = IndexedDataset(f"{sdir}/tokens-{k:05d}")
        read_back += [ds[i].tolist() for i in range(len(ds))]
    direct = encode_documents(tok, docs, add_bos=False)
    assert read_back == direct
    assert all(ids[-1] == tk.EOS_ID for ids in read_back)
    fim_docs = [ids for d, ids in zip(docs, read_back) if "fim" in d.metadata]
    assert fim_docs and all(ids[0] == tk.FIM_BEGIN for ids in fim_docs)
    assert all(tk.FIM_HOLE not in ids for d, ids in zip(docs, read_back) if "fim" not in d.metadata)

    m = storage.read_json(f"{sdir}/manifest.json")
    assert m["documents"] == 60 and m["tokens"] == sum(map(len, read_back))
    assert m["by_category"]["code"]["documents"] == 40 and m["by_source"]["web"]["documents"] == 20
    assert set(m["by_category_source"]) == {"code/github", "natural_language/web"}
    assert abs(sum(m["ratios"].values()) - 1) < 1e-9
    assert m["tokenizer"]["hash"] == tok.hash and len(m["recipe_hash"]) == 64
    assert m["fim"]["eligible"] == 40 and m["fim"]["applied"] == len(fim_docs) and m["fim"]["rate_target"] == 0.5
    # documents are routed to shards by a seeded hash of their id: the sizes only add up
    assert sum(s["documents"] for s in m["shards"]) == 60 and all(s["documents"] for s in m["shards"])

    import datasets

    files = sorted(f"{sdir}/{s['text']}" for s in m["shards"])
    loaded = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf"))
    assert loaded.num_rows == 60 and loaded[0]["id"] == docs[0].id


@pytest.mark.slow
def test_same_bytes_with_any_worker_count(tmp_path, run_recipe, docs_kind):  # noqa: F811
    src = docs_kind(tmp_path / "docs.jsonl", _docs(30))
    stages = [{"name": "src", "kind": "test_docs", "path": src, "tasks": 3}] + STAGES
    one = run_recipe(stages, workers=1, seed=5, run_dir=tmp_path / "one")
    two = run_recipe(stages, workers=2, seed=5, run_dir=tmp_path / "two")
    # two tokenize tasks over the three input shards: other work files, the same shards
    three = run_recipe(stages[:-1] + [dict(stages[-1], tasks=2)], workers=2, seed=5, run_dir=tmp_path / "three")
    for name in ("tokens-00000.bin", "tokens-00000.idx", "tokens-00001.bin", "part-00001.parquet", "manifest.json"):
        assert filecmp.cmp(f"{one}/shards/{name}", f"{two}/shards/{name}", shallow=False), name
        if name != "manifest.json":  # which holds the recipe's hash
            assert filecmp.cmp(f"{one}/shards/{name}", f"{three}/shards/{name}", shallow=False), name


def test_empty_input_gives_valid_empty_shard(tmp_path, run_recipe, docs_kind):  # noqa: F811
    src = docs_kind(tmp_path / "docs.jsonl", [])
    run = run_recipe([{"name": "src", "kind": "test_docs", "path": src},
                      {"name": "shards", "kind": "tokenize_shards", "input": "src"}])
    ds = IndexedDataset(f"{run}/shards/tokens-00000")
    assert len(ds) == 0 and ds.doc_idx.tolist() == [0]
    m = storage.read_json(f"{run}/shards/manifest.json")
    assert m["documents"] == 0 and m["tokens"] == 0 and m["shards"][0]["documents"] == 0
    assert read_stage(run, "shards") == []


@pytest.mark.slow
def test_full_chain_manifest_has_mix_and_decontamination(tmp_path, run_recipe, docs_kind):  # noqa: F811
    docs = _docs(90) + [{"id": "leak", "text": "Homework: natalia sold 72 clips", "metadata": {"source": "web"}}]
    src = docs_kind(tmp_path / "docs.jsonl", docs)
    bench = tmp_path / "gsm8k.jsonl"
    bench.write_text('{"question": "How many clips did Natalia sell?", "answer": "Natalia sold 72 clips"}\n')
    run = run_recipe([
        {"name": "src", "kind": "test_docs", "path": src, "tasks": 2},
        {"name": "decon", "kind": "decontaminate", "input": "src", "benchmarks": [{"name": "gsm8k", "path": str(bench)}]},
        {"name": "mix", "kind": "mix", "input": "decon", "ratios": {"code": 0.6, "natural_language": 0.4}},
    ] + [dict(STAGES[0], input="mix"), STAGES[1]], workers=1)
    m = storage.read_json(f"{run}/shards/manifest.json")
    assert m["decontamination"]["removed"] == 1 and m["decontamination"]["by_benchmark"] == {"gsm8k": 1}
    # the mixer's counts include EOS; only FIM (code here) changes a document's tokens afterwards
    assert m["by_category"]["natural_language"]["tokens"] == m["mix"]["categories"]["natural_language"]["tokens"]
    assert m["ratios_target"] == {"code": 0.6, "natural_language": 0.4}
    assert m["documents"] == m["mix"]["docs"]


@pytest.mark.slow
def test_s3_run_dir_gives_the_same_bytes(tmp_path, run_recipe, docs_kind, monkeypatch, s3):  # noqa: F811
    """mix, FIM and shards with run_dir on a moto S3 server write what a local run_dir gets; trainers read it."""
    from trainer.data import find_shards, text_of

    src = docs_kind(tmp_path / "docs.jsonl", _docs(45))
    stages = [{"name": "src", "kind": "test_docs", "path": src, "tasks": 3},
              {"name": "mix", "kind": "mix", "input": "src", "ratios": {"code": 0.5, "natural_language": 0.5}}] + [
        dict(STAGES[0], input="mix"), STAGES[1]]
    local = run_recipe(stages, workers=1, seed=5, run_dir=tmp_path / "local")
    s3["client"].create_bucket(Bucket="runs")
    monkeypatch.chdir(tmp_path)
    with storage.configured(s3["options"]):
        remote = run_recipe(stages, workers=1, seed=5, run_dir="s3://runs/r")  # in this process, with the options
        names = ["mix/mix.json", "mix/part-00000.parquet", "mix/part-00002.parquet", "fim/part-00001.parquet",
                 "shards/manifest.json"] + [f"shards/{f}-00001.{e}" for f, e in (("tokens", "bin"), ("tokens", "idx"), ("part", "parquet"))]
        for name in names:
            assert storage.read_bytes(f"{remote}/{name}") == storage.read_bytes(f"{local}/{name}"), name
        assert not os.path.exists(tmp_path / "s3:")  # nothing written beside the run
        prefixes = find_shards(remote)
        assert prefixes == [f"{remote}/shards/tokens-{k:05d}" for k in range(2)]
        assert text_of(prefixes[1]) == f"{remote}/shards/part-00001.parquet"
        ds = IndexedDataset(prefixes[1])
        assert [x.tolist() for x in ds] == [x.tolist() for x in IndexedDataset(f"{local}/shards/tokens-00001")]
        ds.close()
