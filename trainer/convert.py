"""Weights both ways between `trainer.model` and Hugging Face `DeepseekV2ForCausalLM` (`codecurate convert`).

Parameter names already match the transformers 5.x layout, so converting is a config translation plus a
state-dict copy. DeepSeek's released checkpoints store routed experts one by one
(`mlp.experts.7.gate_proj.weight`); `fuse_expert_weights` stacks them into the 3-D tensors used here.
A setting the installed transformers would compute differently is refused, never silently dropped; the
settings transformers has no place for (training-only: balance losses, expert kernels; the `train:` section)
travel in `codecurate.json` beside the weights, so a round trip gives back the same checkpoint config.
Either side may be any `pipeline.storage` path: transformers reads and writes a node-local scratch directory,
copied from / uploaded to the real one.
"""

from __future__ import annotations

import inspect
import json
import os
import re

import torch

from pipeline import storage
from trainer.model import DeepseekV2ForCausalLM, ModelConfig

_SHARED_FIELDS = (
    "vocab_size hidden_size intermediate_size moe_intermediate_size num_hidden_layers num_attention_heads "
    "max_position_embeddings rms_norm_eps initializer_range tie_word_embeddings attention_bias bos_token_id "
    "eos_token_id q_lora_rank kv_lora_rank qk_nope_head_dim qk_rope_head_dim v_head_dim first_k_dense_replace "
    "n_shared_experts n_routed_experts num_experts_per_tok topk_method n_group topk_group routed_scaling_factor "
    "norm_topk_prob"
).split()


SIDECAR = "codecurate.json"


def _transformers_ignores(option: str) -> bool:
    """True when the installed transformers' DeepseekV2 modelling code never reads `option` (5.x: norm_topk_prob)."""
    from transformers.models.deepseek_v2 import modeling_deepseek_v2

    return option not in inspect.getsource(modeling_deepseek_v2)


def check_representable(cfg: ModelConfig) -> None:
    """Raise ValueError naming the first setting that transformers' DeepseekV2 would compute differently."""
    import transformers

    if cfg.moe_layer_freq != 1:
        raise ValueError("moe_layer_freq: transformers' DeepseekV2 has no moe_layer_freq; only moe_layer_freq 1 converts")
    if cfg.n_routed_experts < 1:
        raise ValueError("n_routed_experts: transformers' DeepseekV2 needs routed experts (got 0)")
    if cfg.norm_topk_prob and cfg.num_experts_per_tok > 1 and _transformers_ignores("norm_topk_prob"):
        raise ValueError(f"norm_topk_prob: true cannot be converted: transformers {transformers.__version__}'s DeepseekV2 "
                         "ignores it (never renormalises the top-k routing weights), so its logits would differ")


def to_hf_config(cfg: ModelConfig):
    from transformers import DeepseekV2Config

    check_representable(cfg)
    rope = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    if cfg.rope_scaling:
        rope = {k: v for k, v in cfg.rope_scaling.items() if k != "type"} | {"rope_type": "yarn", "rope_theta": cfg.rope_theta}
    kw = {k: getattr(cfg, k) for k in _SHARED_FIELDS}
    return DeepseekV2Config(**kw, num_key_value_heads=cfg.num_attention_heads, rope_parameters=rope, hidden_act="silu")


def from_hf_config(hf) -> ModelConfig:
    if getattr(hf, "model_type", "deepseek_v2") != "deepseek_v2":
        raise ValueError(f"model_type {hf.model_type!r}: only deepseek_v2 converts")
    if getattr(hf, "hidden_act", "silu") != "silu" or getattr(hf, "mlp_bias", False):
        raise ValueError("hidden_act/mlp_bias: only SiLU feed-forward layers without biases convert")
    kw = {k: getattr(hf, k) for k in _SHARED_FIELDS if hasattr(hf, k)}
    rope = dict(getattr(hf, "rope_parameters", None) or {})
    kw["rope_theta"] = rope.pop("rope_theta", getattr(hf, "rope_theta", 10000.0))
    kind = rope.pop("rope_type", rope.pop("type", "default"))
    if kind == "yarn":
        kw["rope_scaling"] = {"type": "yarn", **rope}
    elif kind != "default":
        raise ValueError(f"rope type {kind!r} is not supported (default or yarn)")
    return ModelConfig(**kw)


def fuse_expert_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stack per-expert `experts.{e}.{gate,up,down}_proj.weight` into `experts.gate_up_proj` / `experts.down_proj`."""
    pat = re.compile(r"^(.*\.mlp\.experts)\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$")
    groups: dict[str, dict[tuple[int, str], torch.Tensor]] = {}
    out = {}
    for k, v in state.items():
        m = pat.match(k)
        if m:
            groups.setdefault(m[1], {})[(int(m[2]), m[3])] = v
        else:
            out[k] = v
    for prefix, parts in groups.items():
        n = 1 + max(e for e, _ in parts)
        out[f"{prefix}.gate_up_proj"] = torch.stack([torch.cat([parts[(e, "gate_proj")], parts[(e, "up_proj")]]) for e in range(n)])
        out[f"{prefix}.down_proj"] = torch.stack([parts[(e, "down_proj")] for e in range(n)])
    return out


def to_hf(model: DeepseekV2ForCausalLM):
    """A transformers `DeepseekV2ForCausalLM` holding the same weights (fp32, eval mode)."""
    from transformers import DeepseekV2ForCausalLM as HF

    hf = HF(to_hf_config(model.config))
    missing, unexpected = hf.load_state_dict(model.state_dict(), strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and model.config.tie_word_embeddings)]
    if missing or unexpected:
        raise ValueError(f"weight layout mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return hf.eval()


def from_hf(hf) -> DeepseekV2ForCausalLM:
    model = DeepseekV2ForCausalLM(from_hf_config(hf.config))
    model.load_state_dict(fuse_expert_weights(dict(hf.state_dict())), strict=True)
    return model


def save_hf(model: DeepseekV2ForCausalLM, out_dir: str) -> None:
    """Write a directory `transformers.AutoModelForCausalLM.from_pretrained` loads (any storage path)."""
    with storage.scratch() as tmp:
        to_hf(model).save_pretrained(tmp)
        for name in sorted(os.listdir(tmp)):
            storage.upload(os.path.join(tmp, name), storage.join(out_dir, name))


def _is_checkpoint(path: str) -> bool:
    return path.endswith(".pt") or storage.exists(storage.join(path, "ckpt.pt"))


def _free(path: str, force: bool) -> None:
    if storage.exists(path) and not force and (not storage.isdir(path) or storage.ls(path)):
        raise FileExistsError(f"{path} exists (--force overwrites it)")


def checkpoint_to_hf(source: str, out_dir: str) -> str:
    """A training checkpoint as a transformers directory, plus `codecurate.json` (its full config and step)."""
    from trainer.train import model_of, read_checkpoint

    ck = read_checkpoint(source)
    model, cfg = model_of(ck)
    check_representable(cfg.model)
    save_hf(model, out_dir)
    step = ck.get("step", 0)
    storage.write_text(storage.join(out_dir, SIDECAR), json.dumps({"config": cfg.to_dict(), "step": step}, indent=1))
    return f"wrote transformers directory {out_dir} (DeepseekV2ForCausalLM, step {step})"


def hf_to_checkpoint(source: str, out: str) -> str:
    """A transformers DeepseekV2 directory as a checkpoint `codecurate eval`/`ablate` and this command load: the
    training config from `codecurate.json` when the directory has one, else defaults; weights only, no optimizer."""
    from dataclasses import fields

    from transformers import AutoConfig, AutoModelForCausalLM

    from trainer.config import Config

    with storage.scratch() as tmp:
        local = tmp if storage.is_remote(source) else source
        if storage.is_remote(source):
            for f in storage.find(source):
                storage.download(f, os.path.join(tmp, f.rsplit("/", 1)[-1]))
        hf_config = AutoConfig.from_pretrained(local)
        model_cfg = from_hf_config(hf_config)  # refuses other architectures before any weights load
        check_representable(model_cfg)
        hf = AutoModelForCausalLM.from_pretrained(local, dtype=torch.float32).eval()
    saved = storage.read_json(storage.join(source, SIDECAR), {"config": {}, "step": 0})
    derived = set(_SHARED_FIELDS) | {"rope_theta", "rope_scaling"}
    extra = {f.name: saved["config"]["model"][f.name] for f in fields(ModelConfig)
             if f.name not in derived and f.name in (saved["config"].get("model") or {})}
    model = from_hf(hf)
    cfg = Config.from_dict({"model": model_cfg.to_dict() | extra, "train": saved["config"].get("train") or {}})
    path = out if out.endswith(".pt") else storage.join(out, "ckpt.pt")
    with storage.atomic_open(path, "wb") as f:
        torch.save({"config": cfg.to_dict(), "step": saved.get("step", 0), "model": model.state_dict()}, f)
    return f"wrote checkpoint {path} (step {saved.get('step', 0)}, weights only)"


def convert(source: str, output: str, force: bool = False) -> str:
    """`codecurate convert`: the direction follows the source (a checkpoint, or a directory with config.json)."""
    if not storage.exists(source):
        raise FileNotFoundError(f"{source} does not exist")
    if _is_checkpoint(source):
        _free(output, force)
        return checkpoint_to_hf(source, output)
    if storage.exists(storage.join(source, "config.json")):
        _free(output if output.endswith(".pt") else storage.join(output, "ckpt.pt"), force)
        return hf_to_checkpoint(source, output)
    raise ValueError(f"{source}: neither a checkpoint (ckpt.pt) nor a transformers directory (config.json)")
