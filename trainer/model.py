"""DeepSeek-V2 (arXiv:2405.04434) in one file: Multi-head Latent Attention and DeepSeekMoE.

Configuration fields use the names of DeepSeek-V2's `config.json`, and parameter names match Hugging Face
`DeepseekV2ForCausalLM`, so `trainer.convert` is a renaming-free copy both ways.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelConfig:
    vocab_size: int = 102400
    hidden_size: int = 1024
    intermediate_size: int = 2816  # the dense FFN of the first `first_k_dense_replace` layers
    moe_intermediate_size: int = 352  # one expert's FFN width
    num_hidden_layers: int = 16
    num_attention_heads: int = 16
    max_position_embeddings: int = 4096
    rms_norm_eps: float = 1e-6
    initializer_range: float = 0.02
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    bos_token_id: int = 100000
    eos_token_id: int = 100001
    # Multi-head Latent Attention (section 2.1)
    q_lora_rank: int | None = None  # None: queries are not compressed (V2-Lite)
    kv_lora_rank: int = 256  # d_c, the joint KV latent
    qk_nope_head_dim: int = 64  # d_h of the content part
    qk_rope_head_dim: int = 32  # d_h^R of the decoupled RoPE part (one key shared by all heads)
    v_head_dim: int = 64
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None  # {"type": "yarn", "factor", "original_max_position_embeddings",
    #                                      "beta_fast", "beta_slow", "mscale", "mscale_all_dim"}
    # DeepSeekMoE (section 2.2)
    first_k_dense_replace: int = 1
    moe_layer_freq: int = 1
    n_shared_experts: int = 2
    n_routed_experts: int = 64
    num_experts_per_tok: int = 6
    scoring_func: str = "softmax"
    topk_method: str = "greedy"  # or "group_limited_greedy" (device-limited routing, n_group/topk_group)
    n_group: int | None = None
    topk_group: int | None = None
    routed_scaling_factor: float = 1.0
    norm_topk_prob: bool = False
    aux_loss_alpha: float = 0.001  # alpha_1, the expert-level balance loss
    seq_aux: bool = True  # the balance loss is computed per sequence, then averaged
    ep_size: int = 1  # devices the routed experts are spread over (device-level balance loss groups)
    device_aux_loss_alpha: float = 0.0  # alpha_2, the device-level balance loss; 0 turns it off
    moe_impl: str = "auto"  # "grouped_mm", "bmm", "loop" or "auto" (grouped_mm on sm90+ GPUs in bf16, else bmm)

    def __post_init__(self):
        if self.scoring_func != "softmax":
            raise ValueError(f"scoring_func {self.scoring_func!r}: DeepSeek-V2 routes with softmax only")
        if self.n_routed_experts % max(self.ep_size, 1):
            raise ValueError("n_routed_experts must be a multiple of ep_size")
        dims = ("hidden_size", "intermediate_size", "moe_intermediate_size", "kv_lora_rank", "q_lora_rank",
                "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "vocab_size")
        odd = [f"{d}={getattr(self, d)}" for d in dims if getattr(self, d) is not None and getattr(self, d) % 16]
        if odd:  # grouped GEMMs and tensor cores want 16-aligned shapes
            raise ValueError(f"dimensions must be multiples of 16: {', '.join(odd)}")

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    def is_moe_layer(self, i: int) -> bool:
        return self.n_routed_experts > 0 and i >= self.first_k_dense_replace and i % self.moe_layer_freq == 0


def param_counts(model: "DeepseekV2ForCausalLM") -> tuple[int, int]:
    """(total, active per token): active counts the shared experts and `num_experts_per_tok` routed ones."""
    cfg = model.config
    total = sum(p.numel() for p in model.parameters())
    inactive = 0
    for layer in model.model.layers:
        if isinstance(layer.mlp, MoE):
            per_expert = layer.mlp.experts.gate_up_proj[0].numel() + layer.mlp.experts.down_proj[0].numel()
            inactive += per_expert * (cfg.n_routed_experts - cfg.num_experts_per_tok)
    return total, total - inactive


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


class MLP(nn.Module):
    """SwiGLU FFN: the dense layers and the shared experts (n_shared experts fused into one wider FFN)."""

    def __init__(self, hidden: int, inner: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, inner, bias=False)
        self.up_proj = nn.Linear(hidden, inner, bias=False)
        self.down_proj = nn.Linear(inner, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Router(nn.Module):
    """Softmax affinities s_{i,t} = Softmax(u_t^T e_i); the top-k experts get gate g_{i,t} = s_{i,t}."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.weight = nn.Parameter(torch.empty(cfg.n_routed_experts, cfg.hidden_size))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [T, d] -> (scores [T, E] fp32, top-k weights [T, k], top-k expert ids [T, k])."""
        cfg = self.cfg
        scores = F.linear(x.float(), self.weight.float()).softmax(dim=-1)
        routed = scores
        if cfg.topk_method == "group_limited_greedy":  # pick topk_group device groups first, then experts in them
            groups = scores.view(scores.shape[0], cfg.n_group, -1)
            keep = torch.topk(groups.amax(-1), cfg.topk_group, dim=-1).indices
            mask = torch.zeros_like(groups[..., 0]).scatter_(1, keep, 1.0).bool()
            routed = groups.masked_fill(~mask.unsqueeze(-1), 0.0).view_as(scores)
        elif cfg.topk_method != "greedy":
            raise ValueError(f"unknown topk_method {cfg.topk_method!r}")
        weights, experts = torch.topk(routed, cfg.num_experts_per_tok, dim=-1, sorted=False)
        if cfg.norm_topk_prob and cfg.num_experts_per_tok > 1:
            weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
        return scores, weights * cfg.routed_scaling_factor, experts


def balance_losses(cfg: ModelConfig, scores: torch.Tensor, experts: torch.Tensor, batch: int) -> torch.Tensor:
    """Expert-level (eq. 12-14) and device-level (eq. 15-17) balance losses, per sequence then averaged.

    f_i = N / (K T) * #tokens routed to i,  P_i = mean_t s_{i,t},  L_Exp = alpha_1 * sum_i f_i P_i.
    Device groups: f'_d = mean of f_i over the group, P'_d = sum of P_i, L_Dev = alpha_2 * sum_d f'_d P'_d.
    """
    n, k = cfg.n_routed_experts, cfg.num_experts_per_tok
    if not cfg.seq_aux:  # one "sequence" spanning the whole batch
        batch = 1
    scores = scores.view(batch, -1, n)
    t = scores.shape[1]
    counts = torch.zeros(batch, n, device=scores.device, dtype=scores.dtype)
    counts.scatter_add_(1, experts.view(batch, -1), torch.ones(batch, t * k, device=scores.device, dtype=scores.dtype))
    f = counts * (n / (k * t))
    p = scores.mean(dim=1)
    loss = cfg.aux_loss_alpha * (f * p).sum(-1).mean()
    if cfg.device_aux_loss_alpha:
        d = cfg.ep_size
        f_dev = f.view(batch, d, -1).mean(-1)
        p_dev = p.view(batch, d, -1).sum(-1)
        loss = loss + cfg.device_aux_loss_alpha * (f_dev * p_dev).sum(-1).mean()
    return loss


class RoutedExperts(nn.Module):
    """All routed experts as two 3-D weights, run as grouped (or padded batched) GEMMs over tokens sorted by expert."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        e, d, i = cfg.n_routed_experts, cfg.hidden_size, cfg.moe_intermediate_size
        self.gate_up_proj = nn.Parameter(torch.empty(e, 2 * i, d))
        self.down_proj = nn.Parameter(torch.empty(e, d, i))

    def _impl(self, x: torch.Tensor) -> str:
        impl = self.cfg.moe_impl
        if impl == "grouped_mm" and not hasattr(torch, "_grouped_mm"):
            impl = "bmm"
        if impl != "auto":
            return impl
        if hasattr(torch, "_grouped_mm") and x.is_cuda and x.dtype == torch.bfloat16 and torch.cuda.get_device_capability(x.device) >= (9, 0):
            return "grouped_mm"
        return "bmm"  # two padded batched GEMMs instead of 2E small ones

    @staticmethod
    def _padded_bmm(xs, counts, starts, w1, w2):
        """Tokens of expert e in row block e of a [E, max_count, d] buffer, zero-padded; two bmm calls."""
        e = counts.numel()
        cap = int(counts.max())
        expert_of = torch.repeat_interleave(torch.arange(e, device=xs.device), counts)
        slot = torch.arange(xs.shape[0], device=xs.device) - starts[expert_of]
        buf = xs.new_zeros(e, cap, xs.shape[1])
        buf[expert_of, slot] = xs
        g, u = torch.bmm(buf, w1.transpose(1, 2)).chunk(2, dim=-1)
        return torch.bmm(F.silu(g) * u, w2.transpose(1, 2))[expert_of, slot]

    def forward(self, x: torch.Tensor, weights: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
        """x [T, d]; weights, experts [T, k] -> sum_i g_{i,t} FFN_i(u_t), shape [T, d]."""
        t, k = experts.shape
        flat = experts.reshape(-1)
        order = torch.argsort(flat, stable=True)  # permute: the T*k (token, slot) pairs grouped by expert
        counts = torch.bincount(flat, minlength=self.cfg.n_routed_experts)
        xs = x[order // k]
        if torch.is_autocast_enabled(x.device.type):
            xs = xs.to(torch.get_autocast_dtype(x.device.type))
        gate_up, down = self.gate_up_proj.to(xs.dtype), self.down_proj.to(xs.dtype)
        impl = self._impl(xs)
        if impl == "grouped_mm":
            offs = torch.cumsum(counts, 0, dtype=torch.int32)
            h = torch._grouped_mm(xs, gate_up.transpose(1, 2), offs=offs)
            g, u = h.chunk(2, dim=-1)
            ys = torch._grouped_mm((F.silu(g) * u).contiguous(), down.transpose(1, 2), offs=offs)
        elif impl == "bmm":
            ys = self._padded_bmm(xs, counts, torch.cumsum(counts, 0) - counts, gate_up, down)
        else:  # one GEMM per expert (a loop over experts, never over tokens)
            outs = []
            for e, chunk in enumerate(xs.split(counts.tolist())):
                g, u = F.linear(chunk, gate_up[e]).chunk(2, dim=-1)
                outs.append(F.linear(F.silu(g) * u, down[e]))
            ys = torch.cat(outs)
        ys = ys * weights.reshape(-1)[order, None].to(ys.dtype)
        unpermuted = torch.empty_like(ys)
        unpermuted[order] = ys  # back to (token, slot) order, then sum the k slots of each token
        return unpermuted.view(t, k, -1).sum(1).to(x.dtype)


class MoE(nn.Module):
    """h_t = u_t + sum shared FFN(u_t) + sum_i g_{i,t} FFN_i(u_t) (the residual is added by the block)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.gate = Router(cfg)
        self.experts = RoutedExperts(cfg)
        self.shared_experts = MLP(cfg.hidden_size, cfg.moe_intermediate_size * cfg.n_shared_experts) if cfg.n_shared_experts else None
        self.last_load: torch.Tensor | None = None  # tokens per expert in the last forward, for logging

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, d = x.shape
        flat = x.reshape(-1, d)
        scores, weights, experts = self.gate(flat)
        self.last_load = torch.bincount(experts.reshape(-1).detach(), minlength=self.cfg.n_routed_experts)
        out = self.experts(flat, weights, experts).view(b, t, d)
        if self.shared_experts is not None:
            out = out + self.shared_experts(x)
        aux = balance_losses(self.cfg, scores, experts, b) if self.training else out.new_zeros(())
        return out, aux


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig, index: int):
        super().__init__()
        self.index = index
        self.self_attn = MultiHeadLatentAttention(cfg)
        self.mlp = MoE(cfg) if cfg.is_moe_layer(index) else MLP(cfg.hidden_size, cfg.intermediate_size)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x, rotation, cache: LatentCache | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = x + self.self_attn(self.input_layernorm(x), rotation, cache, self.index)
        h = self.post_attention_layernorm(x)
        if isinstance(self.mlp, MoE):
            out, aux = self.mlp(h)
        else:
            out, aux = self.mlp(h), x.new_zeros(())
        return x + out, aux


class Backbone(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg, i) for i in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        inv_freq, self.attention_factor = rope_frequencies(cfg)
        self.register_buffer("inv_freq", inv_freq, persistent=False)


_CHUNK_ELEMS = 1 << 26  # fp32 logits per chunk of rows (256 MB): few chunks, so the [V, d] gradient is summed rarely
_PIECE_ELEMS = 1 << 22  # logits per GEMM call on CPU (16 MB): its output is reused heap memory, never fresh pages
_scratch: dict[torch.device, torch.Tensor] = {}


def _logits_buffer(numel: int, device: torch.device) -> torch.Tensor:
    """A float32 buffer kept between training steps on CPU, where a fresh 100 MB array page-faults on every step
    (the CUDA caching allocator already reuses its blocks)."""
    if device.type != "cpu":
        return torch.empty(numel, device=device)
    buf = _scratch.get(device)
    if buf is None or buf.numel() < numel:
        buf = _scratch[device] = torch.empty(numel, device=device)
    return buf[:numel]


def _mm_t(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b.T. fp32 on CPU goes through oneDNN's inner product (fp32 throughout, as torch.mm): it has AVX-512
    kernels for any x86 vendor, about twice MKL's sgemm on AMD for these thin (K = hidden) shapes."""
    if a.dtype == b.dtype == torch.float32 and a.device.type == "cpu" and torch.backends.mkldnn.is_available() \
            and torch.backends.mkldnn.enabled:
        return torch.ops.mkldnn._linear_pointwise(a.contiguous(), b, None, "none", [], "")
    return a @ b.t()


class LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of `h @ W.T` without materialising the [tokens, vocab] logits: rows are processed in
    chunks and the gradients computed on the way (same FLOPs, a fraction of the memory traffic, which is
    what a 102,400-entry vocabulary costs on a small model).

    Per chunk: logits into a reused buffer, softmax in place, then grad_h = P @ W and grad_W^T += h'^T P, where
    h' = h / n (zero on ignored rows) folds the mean into the small operand; the one-hot part of
    (P - Y) is subtracted from the [rows, d] results, never from P.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor):
        t, vocab = h.shape[0], weight.shape[0]
        valid = labels != -100
        n = valid.sum().clamp(min=1)
        scale = valid.float() / n  # d loss / d logits = (softmax - onehot) * scale, row by row
        target = labels.clamp(min=0)
        h_scaled_t = (h * scale[:, None].to(h.dtype)).t()
        rows = -(-t // -(-t * vocab // _CHUNK_ELEMS))  # equal chunks of at most ~_CHUNK_ELEMS logits
        piece = max(1, _PIECE_ELEMS // rows) if h.device.type == "cpu" else vocab
        buf = _logits_buffer(rows * vocab, h.device)
        grad_h = torch.empty_like(h)
        grad_w_t = None
        loss = torch.zeros((), device=h.device, dtype=torch.float32)
        for s in range(0, t, rows):
            hc, yc, vc = h[s : s + rows], target[s : s + rows], valid[s : s + rows]
            probs = buf[: hc.shape[0] * vocab].view(hc.shape[0], vocab)
            for o in range(0, vocab, piece):
                probs[:, o : o + piece] = _mm_t(hc, weight[o : o + piece])
            torch.softmax(probs, dim=-1, out=probs)
            p_target = probs.gather(1, yc[:, None]).squeeze(1)
            nll = -p_target.log()
            lost = vc & (p_target < torch.finfo(torch.float32).tiny)  # underflowed (> 87 nats): recompute exactly
            if lost.any():
                z = (hc[lost] @ weight.t()).float()
                nll[lost] = torch.logsumexp(z, -1) - z.gather(1, yc[lost, None]).squeeze(1)
            loss += nll.where(vc, 0).sum()
            p = probs.to(h.dtype)
            grad_h[s : s + rows] = (_mm_t(p, weight.t()) - weight[yc]) * scale[s : s + rows, None].to(h.dtype)
            part = _mm_t(h_scaled_t[:, s : s + rows], p.t()).float()
            grad_w_t = part if grad_w_t is None else grad_w_t.add_(part)
        grad_w_t.index_add_(1, target, h_scaled_t.float(), alpha=-1)
        ctx.save_for_backward(grad_h, grad_w_t.t().contiguous().to(weight.dtype))
        return loss / n

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w = ctx.saved_tensors
        return grad_h * grad_out, grad_w * grad_out, None


@dataclass
class Output:
    logits: torch.Tensor | None  # None in training mode with labels (see LinearCrossEntropy)
    loss: torch.Tensor | None = None  # language-model loss (mean over targets)
    aux_loss: torch.Tensor | None = None  # sum of the balance losses over MoE layers
    extra: dict = field(default_factory=dict)


class DeepseekV2ForCausalLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.model = Backbone(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        std = self.config.initializer_range
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, std)

    def moe_layers(self) -> list[MoE]:
        return [layer.mlp for layer in self.model.layers if isinstance(layer.mlp, MoE)]

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None, last_only: bool = False,
                cache: LatentCache | None = None) -> Output:
        """Logits for every position, or only the last one (`last_only`, for generation). With a `cache`, the
        input continues the cached tokens (positions cache.length..), and is added to the cache."""
        b, t = input_ids.shape
        past = cache.length if cache is not None else 0
        pos = torch.arange(past, past + t, device=input_ids.device, dtype=torch.float32)
        freqs = torch.outer(pos, self.model.inv_freq.float())
        rotation = torch.polar(torch.full_like(freqs, self.model.attention_factor), freqs)
        x = self.model.embed_tokens(input_ids)
        aux = x.new_zeros((), dtype=torch.float32)
        for layer in self.model.layers:
            x, layer_aux = layer(x, rotation, cache)
            aux = aux + layer_aux
        if cache is not None:
            cache.length += t
        x = self.model.norm(x[:, -1:] if last_only else x)
        if labels is not None and self.training:  # training needs the loss only: never build the logits
            loss = LinearCrossEntropy.apply(x.reshape(-1, x.shape[-1]), self.lm_head.weight, labels.reshape(-1))
            return Output(logits=None, loss=loss, aux_loss=aux)
        logits = self.lm_head(x)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        return Output(logits=logits, loss=loss, aux_loss=aux)
