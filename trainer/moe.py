"""DeepSeekMoE: shared experts plus top-k routed experts (one fused grouped GEMM), the router and
its balance losses; `MLP` is also the dense FFN of the first layers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from trainer.model import ModelConfig


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
