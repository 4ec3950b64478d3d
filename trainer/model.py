"""DeepSeek-V2 (arXiv:2405.04434): the configuration, decoder layers and the causal-LM head.

The attention (Multi-head Latent Attention) is in `trainer.attention`, DeepSeekMoE in `trainer.moe`.

Configuration fields use the names of DeepSeek-V2's `config.json`, and parameter names match Hugging Face
`DeepseekV2ForCausalLM`, so `trainer.convert` is a renaming-free copy both ways.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn

from trainer.attention import LatentCache, MultiHeadLatentAttention, RMSNorm, rope_frequencies
from trainer.moe import MLP, MoE


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
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    def is_moe_layer(self, i: int) -> bool:
        return self.n_routed_experts > 0 and i >= self.first_k_dense_replace and i % self.moe_layer_freq == 0


def param_counts(model: DeepseekV2ForCausalLM) -> tuple[int, int]:
    """(total, active per token): active counts the shared experts and `num_experts_per_tok` routed ones."""
    cfg = model.config
    total = sum(p.numel() for p in model.parameters())
    inactive = 0
    for layer in model.model.layers:
        if isinstance(layer.mlp, MoE):
            per_expert = layer.mlp.experts.gate_up_proj[0].numel() + layer.mlp.experts.down_proj[0].numel()
            inactive += per_expert * (cfg.n_routed_experts - cfg.num_experts_per_tok)
    return total, total - inactive


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
