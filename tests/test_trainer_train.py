"""Training: packing from .bin/.idx shards, the LR schedules, exact resume, and the CLI."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import yaml

from pipeline.mixing.megatron import IndexedDatasetWriter
from trainer.config import Config, TrainConfig, load_config
from trainer.data import PackedCorpus, doc_hash, find_shards, is_heldout
from trainer.train import lr_at, train

MODEL = dict(vocab_size=512, hidden_size=32, intermediate_size=64, moe_intermediate_size=16, num_hidden_layers=2,
             num_attention_heads=2, kv_lora_rank=16, qk_nope_head_dim=16, qk_rope_head_dim=16, v_head_dim=16,
             n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1,
             bos_token_id=0, eos_token_id=1)


@pytest.fixture
def shards(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "shards"
    for k in range(2):
        with IndexedDatasetWriter(str(d / f"tokens-{k:05d}")) as w:
            for _ in range(30):
                w.add_document(list(rng.integers(2, 512, rng.integers(5, 60))) + [1])
    return str(d)


def config_file(tmp_path, shards, **train) -> str:
    t = dict(data=[shards], seq_len=16, batch_size=2, max_steps=6, warmup_steps=2, lr=1e-2, log_every=1,
             ckpt_every=100, heldout_fraction=0.1) | train
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"model": MODEL, "train": t}))
    return str(path)


def losses(out_dir) -> list[str]:
    with open(f"{out_dir}/log.csv") as f:
        return [r["loss"] for r in csv.DictReader(f)]


def test_packing_windows_and_heldout(shards):
    prefixes = find_shards(shards)
    assert [p.rsplit("/", 1)[1] for p in prefixes] == ["tokens-00000", "tokens-00001"]
    c = PackedCorpus(prefixes, 0, 1, heldout_fraction=0.2, seed=3)
    assert c.heldout_docs > 0 and len(c.refs) + c.heldout_docs == 60
    from pipeline.mixing.megatron import IndexedDataset

    kept = {tuple(IndexedDataset(prefixes[d])[i]) for d, i in c.refs}
    for p in prefixes:
        for doc in IndexedDataset(p):
            assert (tuple(doc) in kept) != is_heldout(doc_hash(doc, 0, 1), 0.2)
    stream = c.window(0, c.total_tokens)
    assert stream.size == c.total_tokens and (stream == 1).sum() == len(c.refs)  # one EOS per document
    b = c.batch(5, 3, 16)
    assert b.shape == (3, 17)
    assert np.array_equal(b[1], c.window(6 * 17, 17))
    assert np.array_equal(c.batch(5, 3, 16), PackedCorpus(prefixes, 0, 1, 0.2, seed=3).batch(5, 3, 16))
    nxt = c.window(c.total_tokens, 50)  # second epoch: a different order of the same documents
    assert nxt.size == 50


def test_lr_schedules():
    t = TrainConfig(lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, 100, t) == pytest.approx(0.1) and lr_at(9, 100, t) == pytest.approx(1.0)
    assert lr_at(10, 100, t) == pytest.approx(1.0) and lr_at(100, 100, t) == pytest.approx(0.1)
    assert lr_at(55, 100, t) == pytest.approx(0.55)
    s = TrainConfig(lr=1.0, warmup_steps=0, schedule="step")
    assert [lr_at(i, 100, s) for i in (0, 79, 80, 89, 90, 99)] == [1.0, 1.0, 0.316, 0.316, 0.1, 0.1]


def test_resume_is_exact(tmp_path, shards):
    cfg_path = config_file(tmp_path, shards)
    full = load_config(cfg_path, {"train.out_dir": str(tmp_path / "full")})
    train(full, quiet=True)
    part = load_config(cfg_path, {"train.out_dir": str(tmp_path / "part")})
    train(part, stop_at=3, quiet=True)  # as if killed after the step-3 checkpoint
    assert len(losses(tmp_path / "part")) == 3
    train(part, quiet=True)
    assert losses(tmp_path / "part") == losses(tmp_path / "full")
    a = torch.load(tmp_path / "full" / "ckpt.pt", weights_only=False)
    b = torch.load(tmp_path / "part" / "ckpt.pt", weights_only=False)
    assert a["step"] == b["step"] == 6
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert (tmp_path / "full" / "tb").is_dir()


def test_cli_train_logs_and_reports_params(tmp_path, shards, capsys):
    from pipeline.cli import main

    cfg_path = config_file(tmp_path, shards, max_steps=2)
    assert main(["train", cfg_path, "--out", str(tmp_path / "o"), "--set", "train.grad_accum=2"]) == 0
    out = capsys.readouterr().out
    assert "M total parameters" in out and "M active per token" in out
    with open(tmp_path / "o" / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["1", "2"]
    assert rows[1]["tokens"] == str(2 * 2 * 2 * 16)
    assert float(rows[0]["expert_load_max"]) >= 1.0 and float(rows[0]["tokens_per_s"]) > 0 and rows[0]["mfu"] == ""
    assert float(rows[1]["loss"]) < 7.0 and float(rows[0]["aux_loss"]) > 0


def test_bad_config_is_a_clear_error(tmp_path, shards, capsys):
    from pipeline.cli import main

    cfg_path = config_file(tmp_path, shards)
    assert main(["train", cfg_path, "--set", "train.bogus=1"]) == 2
    assert "unknown train config keys: bogus" in capsys.readouterr().err
    assert main(["train", cfg_path, "--data", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 2
    assert "no .bin/.idx token shards" in capsys.readouterr().err


def test_shipped_configs_parse_and_moe_1b_is_about_1b():
    from trainer.model import DeepseekV2ForCausalLM, param_counts

    tiny = load_config("configs/train/tiny.yaml")
    assert isinstance(tiny, Config) and tiny.model.vocab_size == 102400
    big = load_config("configs/train/moe-1b.yaml").model
    with torch.device("meta"):
        total, active = param_counts(DeepseekV2ForCausalLM(big))
    assert 0.9e9 < total < 1.3e9 and active < total / 2


@pytest.mark.slow
@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_torchrun_two_ranks_match_one_process(tmp_path, shards, parallel):
    """2 CPU ranks (gloo) of batch 2 see the same global batches as 1 process of batch 4: same losses."""
    import os
    import subprocess
    import sys

    cfg_path = config_file(tmp_path, shards, max_steps=3, batch_size=2, parallel=parallel)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "pipeline.cli",
           "train", cfg_path, "--out", str(tmp_path / "multi")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    single = load_config(cfg_path, {"train.out_dir": str(tmp_path / "single"), "train.batch_size": 4})
    train(single, quiet=True)
    multi, one = losses(tmp_path / "multi"), losses(tmp_path / "single")
    assert len(multi) == len(one) == 3
    assert all(abs(float(a) - float(b)) < 1e-4 for a, b in zip(multi, one))
