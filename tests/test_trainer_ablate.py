"""`codecurate ablate` end to end on tiny corpora: a run dir with a shards stage vs raw parquet stage dirs."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from datatrove.data import Document

from pipeline import documents
from pipeline.cli import main
from trainer.ablate import tokenise_parquet

TINY = os.path.join(os.path.dirname(__file__), "..", "configs", "train", "tiny.yaml")


def write_stage(stage_dir, docs: list[Document]) -> None:
    os.makedirs(stage_dir, exist_ok=True)
    table = pa.Table.from_pylist([documents.to_row(d) for d in docs], schema=documents.SCHEMA)
    pq.write_table(table, os.path.join(stage_dir, "part-00000.parquet"))


def code_doc(i: int) -> Document:
    body = "\n".join(f"    total += x * {j} + {i}" for j in range(i % 5 + 2))
    text = f"def f{i}(x):\n    total = 0\n{body}\n    return total\n\n\nprint(f{i}(3))\n"
    return Document(text=text, id=f"c{i}", metadata={"source": "github", "lang": "python", "path": f"f{i}.py"})


def web_doc(i: int) -> Document:
    return Document(text=f"Page {i}. The quick brown fox jumps over {i} lazy dogs. " * 3, id=f"w{i}", metadata={"source": "web", "lang": "en"})


@pytest.fixture
def tiny_config(tmp_path):
    with open(TINY) as f:
        cfg = yaml.safe_load(f)
    cfg["train"].update(seq_len=64, batch_size=4, heldout_fraction=0.25, log_every=1, ckpt_every=100)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_ablate_end_to_end(tmp_path, tiny_config, capsys):
    # corpus A: a run dir whose shards stage (manifest.json + tokens-*.bin/.idx + parquet twin) is found via recipe.json
    run = tmp_path / "run"
    write_stage(run / "filtered", [code_doc(i) for i in range(40)] + [web_doc(i) for i in range(20)])
    tokenise_parquet([str(run / "filtered")], str(run / "shards"), "deepseek")
    (run / "recipe.json").write_text(json.dumps({"stages": [{"name": "filtered"}, {"name": "shards", "input": "filtered"}]}))
    # corpus B: raw parquet from two ingest stages, tokenised by ablate itself
    write_stage(tmp_path / "raw_code", [code_doc(i) for i in range(40)] + [Document(text="x" * 300, id="junk", metadata={"source": "github"})])
    write_stage(tmp_path / "raw_web", [web_doc(i) for i in range(30)])
    out = tmp_path / "abl"
    rc = main(["ablate", "--corpus", f"curated={run}", "--corpus", f"raw={tmp_path / 'raw_code'},{tmp_path / 'raw_web'}",
               "--train", tiny_config, "--tokens", "512", "--out", str(out), "--limit", "2", "--max-new-tokens", "4", "--fim", "3"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| corpus | tokens | held-out loss |" in printed and "| curated | 512 |" in printed and "| raw | 512 |" in printed
    res = json.loads((out / "ablation.json").read_text())["results"]
    for name in ("curated", "raw"):
        r = res[name]
        assert r["tokens"] == 512
        assert r["humaneval"]["problems"] == 2 and 0.0 <= r["humaneval"]["pass@1"] <= 1.0
        ho = r["heldout"]
        assert ho["overall"]["docs"] > 0 and ho["overall"]["loss"] > 0
        assert set(ho["by_category"]) <= {"code", "natural_language"} and "python" in ho["by_language"]
        assert (out / name / "ckpt.pt").exists() and (out / name / "log.csv").exists()
    # both models are scored on the same held-out documents
    assert res["curated"]["heldout"]["overall"]["tokens"] == res["raw"]["heldout"]["overall"]["tokens"]
    assert (out / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"

    # `codecurate eval` on one of the checkpoints, with an MBPP file
    mbpp = tmp_path / "mbpp.jsonl"
    mbpp.write_text(json.dumps({"text": "Add one.", "test_list": ["assert add_one(1) == 2"]}) + "\n")
    rc = main(["eval", str(out / "curated"), "--heldout", str(run), "--no-humaneval", "--mbpp", str(mbpp),
               "--max-new-tokens", "2", "--fim", "2", "--output", str(tmp_path / "eval.json")])
    assert rc == 0
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert ev["heldout"]["overall"] == res["curated"]["heldout"]["overall"]
    assert ev["mbpp"] == {"pass@1": 0.0, "problems": 1} and ev["fim"]["samples"] == 2


def test_ablate_rejects_missing_corpus(tmp_path, tiny_config, capsys):
    rc = main(["ablate", "--corpus", f"a={tmp_path / 'nope'}", "--train", tiny_config, "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err
