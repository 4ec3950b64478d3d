"""The model against Hugging Face transformers' DeepseekV2ForCausalLM, the balance loss and the routing."""

from __future__ import annotations

import pytest
import torch

from trainer.convert import from_hf, fuse_expert_weights, to_hf
from trainer.model import DeepseekV2ForCausalLM, ModelConfig, param_counts
from trainer.moe import RoutedExperts, Router, balance_losses

YARN = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32, "beta_fast": 32, "beta_slow": 1,
        "mscale": 0.707, "mscale_all_dim": 0.707}


def tiny(**kw) -> ModelConfig:
    base = dict(vocab_size=256, hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=3,
                num_attention_heads=4, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=16, v_head_dim=32,
                n_routed_experts=8, num_experts_per_tok=2, n_shared_experts=2, first_k_dense_replace=1,
                max_position_embeddings=128, bos_token_id=0, eos_token_id=1)
    return ModelConfig(**(base | kw))


@pytest.mark.parametrize("extra", [
    {},
    {"q_lora_rank": 32, "rope_scaling": YARN},
    {"routed_scaling_factor": 2.5, "topk_method": "group_limited_greedy", "n_group": 4, "topk_group": 2},
    {"first_k_dense_replace": 0, "n_shared_experts": 1, "num_experts_per_tok": 3},
], ids=["lite", "q_lora+yarn", "group_limited", "all_moe"])
def test_logits_match_transformers(extra):
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    ours = DeepseekV2ForCausalLM(tiny(**extra)).eval()
    hf = to_hf(ours)
    ids = torch.randint(0, 256, (2, 48))  # longer than YaRN's original 32 positions
    with torch.no_grad():
        a, b = ours(ids).logits, hf(ids).logits
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    back = from_hf(hf)
    assert back.config == ours.config
    for (k, v), (k2, v2) in zip(ours.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


def test_saved_checkpoint_loads_in_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    from trainer.convert import save_hf

    torch.manual_seed(1)
    ours = DeepseekV2ForCausalLM(tiny()).eval()
    save_hf(ours, str(tmp_path / "hf"))
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()
    ids = torch.randint(0, 256, (1, 20))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, hf(ids).logits, atol=1e-4, rtol=0)


def test_per_expert_checkpoint_layout_is_fused():
    torch.manual_seed(2)
    m = DeepseekV2ForCausalLM(tiny())
    sd = m.state_dict()
    split = {}
    for k, v in sd.items():
        if k.endswith("experts.gate_up_proj"):
            pre = k[: -len("gate_up_proj")]
            for e in range(v.shape[0]):
                g, u = v[e].chunk(2)
                split[f"{pre}{e}.gate_proj.weight"], split[f"{pre}{e}.up_proj.weight"] = g, u
        elif k.endswith("experts.down_proj"):
            pre = k[: -len("down_proj")]
            for e in range(v.shape[0]):
                split[f"{pre}{e}.down_proj.weight"] = v[e]
        else:
            split[k] = v
    fused = fuse_expert_weights(split)
    assert fused.keys() == sd.keys()
    assert all(torch.equal(fused[k], sd[k]) for k in sd)


def test_balance_loss_matches_hand_computation():
    cfg = tiny(n_routed_experts=4, num_experts_per_tok=2, aux_loss_alpha=0.1, ep_size=2, device_aux_loss_alpha=0.05)
    torch.manual_seed(3)
    b, t, n, k = 2, 3, 4, 2
    scores = torch.randn(b * t, n).softmax(-1)
    experts = torch.tensor([[0, 1], [0, 2], [0, 1], [3, 2], [3, 1], [2, 3]])
    expected = 0.0
    dev = 0.0
    for s in range(b):
        rows = range(s * t, (s + 1) * t)
        f = [n / (k * t) * sum(int(e in experts[r].tolist()) for r in rows) for e in range(n)]
        p = [sum(float(scores[r, e]) for r in rows) / t for e in range(n)]
        expected += 0.1 * sum(fi * pi for fi, pi in zip(f, p)) / b
        # two devices holding experts {0,1} and {2,3}: f' = mean of f, P' = sum of P
        dev += 0.05 * sum((f[2 * d] + f[2 * d + 1]) / 2 * (p[2 * d] + p[2 * d + 1]) for d in range(2)) / b
    got = balance_losses(cfg, scores, experts, b)
    assert abs(float(got) - (expected + dev)) < 1e-6
    # sequence 0 routes 0,1,0,2,0,1: f_0 = 4/(2*3)*3 = 2
    assert abs(expected) > 0 and abs(dev) > 0


def test_uniform_routing_gives_alpha():
    """Perfect balance (f_i = 1, P_i = 1/N) gives exactly alpha, the loss's minimum scale."""
    cfg = tiny(n_routed_experts=4, num_experts_per_tok=2, aux_loss_alpha=0.3)
    scores = torch.full((4, 4), 0.25)
    experts = torch.tensor([[0, 1], [2, 3], [0, 2], [1, 3]])
    assert abs(float(balance_losses(cfg, scores, experts, 1)) - 0.3) < 1e-6


@pytest.mark.parametrize("impl", ["loop", "bmm", "grouped_mm"])
@pytest.mark.parametrize("norm", [False, True])
def test_routing_reaches_k_experts_and_unpermutes(impl, norm):
    if impl == "grouped_mm" and not hasattr(torch, "_grouped_mm"):
        pytest.skip("torch has no _grouped_mm")
    cfg = tiny(n_routed_experts=8, num_experts_per_tok=3, moe_impl=impl, norm_topk_prob=norm, routed_scaling_factor=1.5)
    torch.manual_seed(4)
    router, experts = Router(cfg), RoutedExperts(cfg)
    for p in (router.weight, experts.gate_up_proj, experts.down_proj):
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(37, cfg.hidden_size)
    scores, weights, idx = router(x)
    assert idx.shape == (37, 3)
    assert all(len(set(row.tolist())) == 3 for row in idx)  # k distinct experts per token
    assert torch.bincount(idx.flatten(), minlength=8).sum() == 37 * 3
    if norm:
        torch.testing.assert_close(weights.sum(-1), torch.full((37,), 1.5))
    out = experts(x, weights, idx)
    # reference: token by token, expert by expert
    ref = torch.zeros_like(x)
    for tkn in range(x.shape[0]):
        for slot in range(3):
            e = int(idx[tkn, slot])
            g, u = (experts.gate_up_proj[e] @ x[tkn]).chunk(2)
            ref[tkn] += weights[tkn, slot] * (experts.down_proj[e] @ (torch.nn.functional.silu(g) * u))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_param_counts_total_and_active():
    m = DeepseekV2ForCausalLM(tiny())
    total, active = param_counts(m)
    per_expert = 3 * 64 * 32
    assert total == sum(p.numel() for p in m.parameters())
    assert total - active == 2 * per_expert * (8 - 2)  # two MoE layers, 6 idle experts each


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown model config keys: hidden"):
        ModelConfig.from_dict({"hidden": 3})


def test_fused_loss_matches_plain_cross_entropy():
    """Training mode computes the loss without logits; loss and gradients equal the plain computation."""
    torch.manual_seed(5)
    m = DeepseekV2ForCausalLM(tiny())
    ids = torch.randint(0, 256, (2, 33))
    labels = ids[:, 1:].clone()
    labels[0, :5] = -100
    m.train()
    fused = m(ids[:, :-1], labels=labels)
    assert fused.logits is None
    fused.loss.backward()
    g_fused = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad()
    logits = m(ids[:, :-1]).logits  # training mode without labels: the plain path
    plain = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), labels.reshape(-1), ignore_index=-100)
    plain.backward()
    torch.testing.assert_close(fused.loss, plain, atol=1e-6, rtol=1e-5)
    for n, p in m.named_parameters():
        torch.testing.assert_close(g_fused[n], p.grad, atol=1e-6, rtol=1e-4, msg=n)


@pytest.mark.parametrize("onednn", [True, False], ids=["onednn", "torch_mm"])
def test_fused_loss_chunks_pieces_and_underflow(monkeypatch, onednn):
    """Several row chunks and vocabulary pieces, ignored rows, and a target whose probability underflows fp32
    (loss > 87 nats, recomputed exactly) give the float64 reference loss and gradients, on both GEMM paths."""
    from trainer import model as M

    monkeypatch.setattr(M, "_CHUNK_ELEMS", 8000)  # 100 rows x 256 -> 4 chunks of 25 rows
    monkeypatch.setattr(M, "_PIECE_ELEMS", 1000)  # 40 logits columns per GEMM: 7 pieces, the last one partial
    torch.manual_seed(6)
    h, w = torch.randn(100, 32), torch.randn(256, 32) * 0.3
    labels = torch.randint(0, 256, (100,))
    labels[:7] = -100
    h[50] = w[3] * 40  # token 3 dominates row 50 by ~100 nats; its target is the least likely token
    labels[50] = int((w @ h[50]).argmin())
    hd, wd = h.double().requires_grad_(), w.double().requires_grad_()
    rows = torch.nn.functional.cross_entropy(hd @ wd.t(), labels, ignore_index=-100, reduction="none")
    assert rows[50] > 90
    rows.sum().div((labels != -100).sum()).backward()
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", onednn)
    hg, wg = h.clone().requires_grad_(), w.clone().requires_grad_()
    loss = M.LinearCrossEntropy.apply(hg, wg, labels)
    (2 * loss).backward()
    torch.testing.assert_close(loss.double(), rows.sum() / 93, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(hg.grad.double(), 2 * hd.grad, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(wg.grad.double(), 2 * wd.grad, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("extra", [{}, {"q_lora_rank": 32, "rope_scaling": YARN}], ids=["lite", "q_lora+yarn"])
def test_latent_cache_matches_full_recompute(extra):
    """Prefill, a multi-token chunk and single tokens through MLA's latent cache give the logits of one full
    forward; greedy generation with the cache equals generation without it, also once the window slides."""
    from trainer.attention import LatentCache
    from trainer.eval import generate

    torch.manual_seed(7)
    m = DeepseekV2ForCausalLM(tiny(**extra)).eval()
    ids = torch.randint(0, 256, (2, 40))
    cache = LatentCache()
    with torch.no_grad():
        full = m(ids).logits
        parts = [m(ids[:, :17], cache=cache).logits, m(ids[:, 17:30], cache=cache).logits]
        parts += [m(ids[:, i : i + 1], cache=cache).logits for i in range(30, 40)]
    assert cache.length == 40
    assert [t.shape for t in cache.layers[0]] == [(2, 40, 32), (2, 1, 40, 16)]  # the latent and the rope key only
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)
    prompt = ids[0, :12].tolist()
    for context in (64, 20):  # 12 + 30 tokens: fits, or slides after 8 new tokens
        assert generate(m, prompt, 30, context) == generate(m, prompt, 30, context, use_cache=False)
