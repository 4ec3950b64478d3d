"""`codecurate convert`: a checkpoint to a transformers directory and back, logits equal within 1e-4 both ways."""

from __future__ import annotations

import json

import pytest
import torch

from pipeline.cli import main
from trainer.config import Config, TrainConfig
from trainer.model import DeepseekV2ForCausalLM, ModelConfig
from trainer.train import load_model

transformers = pytest.importorskip("transformers")

MODEL = dict(vocab_size=256, hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=3,
             num_attention_heads=4, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=16, v_head_dim=32,
             n_routed_experts=8, num_experts_per_tok=2, n_shared_experts=2, first_k_dense_replace=1,
             max_position_embeddings=128, bos_token_id=0, eos_token_id=1, aux_loss_alpha=0.003, moe_impl="loop")


def write_checkpoint(path, **model_kw) -> DeepseekV2ForCausalLM:
    """A checkpoint as `codecurate train` writes it (config, step, model, optimizer)."""
    torch.manual_seed(0)
    cfg = Config(model=ModelConfig(**(MODEL | model_kw)), train=TrainConfig(seq_len=64, seed=7, tokenizer="deepseek"))
    model = DeepseekV2ForCausalLM(cfg.model).eval()
    path.mkdir(parents=True, exist_ok=True)
    torch.save({"config": cfg.to_dict(), "step": 12, "model": model.state_dict(), "optimizer": {}}, path / "ckpt.pt")
    return model


def max_diff(a, b, ids) -> float:
    with torch.no_grad():
        return float((a(ids).logits - b(ids).logits).abs().max())


def test_round_trip_keeps_logits_and_config(tmp_path, capsys):
    ours = write_checkpoint(tmp_path / "run")
    assert main(["convert", str(tmp_path / "run"), str(tmp_path / "hf")]) == 0
    assert "wrote transformers directory" in capsys.readouterr().out
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()  # no remote code
    assert type(hf) is transformers.DeepseekV2ForCausalLM
    ids = torch.randint(0, 256, (2, 40))
    assert max_diff(ours, hf, ids) < 1e-4

    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "back")]) == 0
    back, cfg = load_model(str(tmp_path / "back"))
    assert max_diff(back, hf, ids) < 1e-4 and max_diff(back, ours, ids) == 0.0
    original = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)
    restored = torch.load(tmp_path / "back" / "ckpt.pt", weights_only=False)
    assert restored["config"] == original["config"] and restored["step"] == 12  # training-only keys kept
    assert cfg.model.aux_loss_alpha == 0.003 and cfg.train.seed == 7


def test_plain_transformers_directory_converts(tmp_path):
    """A directory transformers wrote itself (no codecurate.json): model keys from config.json, train defaults."""
    torch.manual_seed(3)
    from trainer.convert import to_hf_config

    hf = transformers.DeepseekV2ForCausalLM(to_hf_config(ModelConfig(**MODEL))).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.normal_(0, 0.05)
    hf.save_pretrained(str(tmp_path / "hf"))
    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "model.pt")]) == 0
    back, cfg = load_model(str(tmp_path / "model.pt"))
    assert max_diff(back, hf, torch.randint(0, 256, (1, 30))) < 1e-4
    assert cfg.train == TrainConfig()


def test_unrepresentable_option_is_refused_in_one_line(tmp_path, capsys):
    write_checkpoint(tmp_path / "run", norm_topk_prob=True)
    assert main(["convert", str(tmp_path / "run"), str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "norm_topk_prob: true cannot be converted" in err and "Traceback" not in err
    assert not (tmp_path / "hf").exists()
    # the other way: a transformers config that says norm_topk_prob is refused too
    hf_cfg = tmp_path / "hf2"
    hf_cfg.mkdir()
    from trainer.convert import to_hf_config

    d = to_hf_config(ModelConfig(**MODEL)).to_dict() | {"norm_topk_prob": True}
    (hf_cfg / "config.json").write_text(json.dumps(d))
    assert main(["convert", str(hf_cfg), str(tmp_path / "x.pt")]) == 2
    assert "norm_topk_prob" in capsys.readouterr().err


def test_bad_paths_and_overwrites_are_one_line_errors(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "missing"), str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["convert", str(tmp_path / "empty"), str(tmp_path / "o")]) == 2
    assert "neither a checkpoint" in capsys.readouterr().err
    write_checkpoint(tmp_path / "run")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "keep.txt").write_text("x")
    assert main(["convert", str(tmp_path / "run"), str(tmp_path / "hf")]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "run"), str(tmp_path / "hf"), "--force"]) == 0
