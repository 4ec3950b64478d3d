"""DeepSeek-V2's Multi-head Latent Attention: low-rank compressed keys/values, decoupled YaRN RoPE,
and the latent cache that generation reuses."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from trainer.model import ModelConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


# ---------------------------------------------------------------- rotary position embedding, with YaRN


def yarn_mscale(scale: float, mscale: float = 1.0) -> float:
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def rope_frequencies(cfg: ModelConfig) -> tuple[torch.Tensor, float]:
    """Inverse frequencies of the decoupled RoPE dims, and the YaRN magnitude factor for cos/sin."""
    dim, base = cfg.qk_rope_head_dim, cfg.rope_theta
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    rs = cfg.rope_scaling
    if not rs:
        return inv_freq, 1.0
    kind = rs.get("type", rs.get("rope_type"))
    if kind == "default":
        return inv_freq, 1.0
    if kind != "yarn":
        raise ValueError(f"rope_scaling type {kind!r} is not supported (only yarn)")
    factor = rs["factor"]
    orig = rs.get("original_max_position_embeddings", cfg.max_position_embeddings)
    beta_fast, beta_slow = rs.get("beta_fast") or 32, rs.get("beta_slow") or 1

    def correction_dim(rotations: float) -> float:
        return dim * math.log(orig / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low = max(math.floor(correction_dim(beta_fast)), 0)
    high = min(math.ceil(correction_dim(beta_slow)), dim - 1)
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / ((high - low) or 0.001), 0, 1)
    extrapolate = 1 - ramp  # high-frequency dims keep their frequency, low-frequency ones are interpolated
    inv_freq = inv_freq / factor * (1 - extrapolate) + inv_freq * extrapolate
    mscale, mscale_all = rs.get("mscale"), rs.get("mscale_all_dim")
    if mscale and mscale_all:
        attention_factor = yarn_mscale(factor, mscale) / yarn_mscale(factor, mscale_all)
    else:
        attention_factor = yarn_mscale(factor)
    return inv_freq, attention_factor


def apply_rope(x: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs (x[2i], x[2i+1]), the layout of DeepSeek's released weights: as complex numbers,
    x[2i] + i x[2i+1] times `rotation` [t, dim/2] = attention_factor * e^{i theta} (one kernel, not ten)."""
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))
    return torch.view_as_real(pairs * rotation).flatten(-2).type_as(x)


# ---------------------------------------------------------------- Multi-head Latent Attention


class MultiHeadLatentAttention(nn.Module):
    """Keys and values come from one low-rank latent c_KV (the only thing a KV cache would keep) plus a single
    RoPE key shared across heads; queries are optionally low-rank too."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        h, d = cfg.num_attention_heads, cfg.hidden_size
        self.qk_head_dim = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim
        if cfg.q_lora_rank is None:
            self.q_proj = nn.Linear(d, h * self.qk_head_dim, bias=False)
        else:
            self.q_a_proj = nn.Linear(d, cfg.q_lora_rank, bias=cfg.attention_bias)  # W^DQ
            self.q_a_layernorm = RMSNorm(cfg.q_lora_rank)
            self.q_b_proj = nn.Linear(cfg.q_lora_rank, h * self.qk_head_dim, bias=False)  # W^UQ and W^QR
        # W^DKV and W^KR in one matmul: the latent c_KV and the shared rope key k^R
        self.kv_a_proj_with_mqa = nn.Linear(d, cfg.kv_lora_rank + cfg.qk_rope_head_dim, bias=cfg.attention_bias)
        self.kv_a_layernorm = RMSNorm(cfg.kv_lora_rank)
        # W^UK and W^UV: up-project the latent to per-head keys and values
        self.kv_b_proj = nn.Linear(cfg.kv_lora_rank, h * (cfg.qk_nope_head_dim + cfg.v_head_dim), bias=False)
        self.o_proj = nn.Linear(h * cfg.v_head_dim, d, bias=cfg.attention_bias)
        self.scale = self.qk_head_dim**-0.5
        rs = cfg.rope_scaling or {}
        if rs.get("mscale_all_dim"):
            self.scale *= yarn_mscale(rs["factor"], rs["mscale_all_dim"]) ** 2

    def forward(self, x: torch.Tensor, rotation: torch.Tensor, cache: LatentCache | None = None,
                index: int = 0) -> torch.Tensor:
        """x [b, t, d] at positions cache.length.. (0 without a cache); `cache` gets this layer's new latents."""
        cfg = self.cfg
        b, t, _ = x.shape
        q = self.q_proj(x) if cfg.q_lora_rank is None else self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        q = q.view(b, t, -1, self.qk_head_dim).transpose(1, 2)
        q_nope, q_rope = q.split([cfg.qk_nope_head_dim, cfg.qk_rope_head_dim], dim=-1)

        c_kv, k_rope = self.kv_a_proj_with_mqa(x).split([cfg.kv_lora_rank, cfg.qk_rope_head_dim], dim=-1)
        c_kv, k_rope = self.kv_a_layernorm(c_kv), apply_rope(k_rope.unsqueeze(1), rotation)
        past = 0
        if cache is not None:
            past = cache.length
            c_kv, k_rope = cache.extend(index, c_kv, k_rope)
        kv = self.kv_b_proj(c_kv).view(b, past + t, -1, cfg.qk_nope_head_dim + cfg.v_head_dim)
        k_nope, v = kv.transpose(1, 2).split([cfg.qk_nope_head_dim, cfg.v_head_dim], dim=-1)

        q = torch.cat((q_nope, apply_rope(q_rope, rotation)), dim=-1)
        k = torch.cat((k_nope, k_rope.expand(-1, k_nope.shape[1], -1, -1)), dim=-1)
        if past == 0:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        else:  # query i sits at position past + i and sees keys 0..past + i
            mask = torch.arange(past + t, device=x.device) <= torch.arange(past, past + t, device=x.device)[:, None]
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))


class LatentCache:
    """MLA's inference cache: per layer only the normalised KV latent c_KV and the rotated shared RoPE key k^R,
    kv_lora_rank + qk_rope_head_dim numbers per token (instead of 2 x heads x head_dim); each step up-projects
    them to keys and values again."""

    def __init__(self):
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.length = 0  # tokens cached; the next input starts at this position

    def extend(self, index: int, latent: torch.Tensor, rope_key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append a layer's latents [b, t, r] and rope keys [b, 1, t, r'] to its cache; return all of them."""
        if index == len(self.layers):
            self.layers.append((latent, rope_key))
        else:
            old_latent, old_key = self.layers[index]
            self.layers[index] = (torch.cat((old_latent, latent), 1), torch.cat((old_key, rope_key), 2))
        return self.layers[index]


# ---------------------------------------------------------------- DeepSeekMoE
