"""Weights both ways between `trainer.model` and Hugging Face `DeepseekV2ForCausalLM`.

Parameter names already match the transformers 5.x layout, so converting is a config translation plus a
state-dict copy. DeepSeek's released checkpoints store routed experts one by one
(`mlp.experts.7.gate_proj.weight`); `fuse_expert_weights` stacks them into the 3-D tensors used here.
"""

from __future__ import annotations

import re

import torch

from trainer.model import DeepseekV2ForCausalLM, ModelConfig

_SHARED_FIELDS = (
    "vocab_size hidden_size intermediate_size moe_intermediate_size num_hidden_layers num_attention_heads "
    "max_position_embeddings rms_norm_eps initializer_range tie_word_embeddings attention_bias bos_token_id "
    "eos_token_id q_lora_rank kv_lora_rank qk_nope_head_dim qk_rope_head_dim v_head_dim first_k_dense_replace "
    "n_shared_experts n_routed_experts num_experts_per_tok topk_method n_group topk_group routed_scaling_factor "
    "norm_topk_prob"
).split()


def to_hf_config(cfg: ModelConfig):
    from transformers import DeepseekV2Config

    if cfg.moe_layer_freq != 1:
        raise ValueError("transformers' DeepseekV2 has no moe_layer_freq; only moe_layer_freq 1 converts")
    rope = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    if cfg.rope_scaling:
        rope = {k: v for k, v in cfg.rope_scaling.items() if k != "type"} | {"rope_type": "yarn", "rope_theta": cfg.rope_theta}
    kw = {k: getattr(cfg, k) for k in _SHARED_FIELDS}
    return DeepseekV2Config(**kw, num_key_value_heads=cfg.num_attention_heads, rope_parameters=rope, hidden_act="silu")


def from_hf_config(hf) -> ModelConfig:
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
    """Write a directory `transformers.AutoModelForCausalLM.from_pretrained` loads."""
    to_hf(model).save_pretrained(out_dir)
