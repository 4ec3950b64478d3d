"""Training throughput on CPU: `trainer.model` vs transformers' DeepseekV2ForCausalLM, same config, weights, batch.

    .venv/bin/python -m benchmarks.trainer [--config configs/train/tiny.yaml] [--steps 10] [--batch 8] [--seq 128]
        [--vocab-size 4096] [--threads N]

Each side runs the trainer's step (forward, backward, gradient clipping, and the optimizer of
`trainer.train.make_optimizer`, built the same way for both) on the same random token batches, steps interleaved
(one each, in turn, after warm-up) so a shared machine's load hits both alike; prints tokens/s (wall clock), CPU
seconds per step (less sensitive to other processes' load), the ratios, and each side's peak RSS growth over its
first step (VmHWM, reset before each).
"""

from __future__ import annotations

import argparse
import os
import time

import torch


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS now, VmHWM its peak), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_memory(step_fn, batch) -> float:
    """Peak RSS growth (MB) over one step, VmHWM reset first."""
    _reset_peak()
    base = _status_mb("VmRSS")
    step_fn(batch)
    return _status_mb("VmHWM") - base


def interleaved(fns, batches) -> list[tuple[float, float]]:
    """(tokens/s, CPU seconds per step) of each step function, alternating A, B, A, B... so both see the same
    machine load."""
    wall, cpu = [0.0] * len(fns), [0.0] * len(fns)
    for b in batches:
        for i, fn in enumerate(fns):
            t0, c0 = time.perf_counter(), time.process_time()
            fn(b)
            wall[i] += time.perf_counter() - t0
            cpu[i] += time.process_time() - c0
    tokens = sum(b[:, :-1].numel() for b in batches)
    return [(tokens / w, c / len(batches)) for w, c in zip(wall, cpu)]


def main() -> None:
    from trainer.config import load_config
    from trainer.convert import to_hf
    from trainer.model import DeepseekV2ForCausalLM, param_counts
    from trainer.train import make_optimizer

    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/train/tiny.yaml")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--seq", type=int)
    ap.add_argument("--vocab-size", type=int, help="override the config's vocabulary (to time the transformer body alone)")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, {"model.vocab_size": args.vocab_size} if args.vocab_size else None)
    batch, seq = args.batch or cfg.train.batch_size, args.seq or cfg.train.seq_len
    torch.manual_seed(0)
    ours = DeepseekV2ForCausalLM(cfg.model)
    hf = to_hf(ours)
    hf.train()
    ours.train()
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, cfg.model.vocab_size, (batch, seq + 1), generator=gen) for _ in range(args.steps + args.warmup)]
    total, active = param_counts(ours)
    print(f"config {args.config}: {total / 1e6:.2f}M params ({active / 1e6:.2f}M active), batch {batch} x {seq}, "
          f"{torch.get_num_threads()} threads (OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset: libgomp spins')}), "
          f"torch {torch.__version__}, "
          f"HF attention {hf.config._attn_implementation}, HF experts {getattr(hf.config, '_experts_implementation', 'eager')}")

    opt_ours, opt_hf = make_optimizer(ours, cfg.train), make_optimizer(hf, cfg.train)
    print(f"optimizer (both): AdamW fused={opt_ours.defaults['fused']}, gradient clipping at {cfg.train.grad_clip}")

    def step_ours(b):
        out = ours(b[:, :-1], labels=b[:, 1:])
        (out.loss + out.aux_loss).backward()
        torch.nn.utils.clip_grad_norm_(ours.parameters(), cfg.train.grad_clip)
        opt_ours.step()
        opt_ours.zero_grad(set_to_none=True)

    def step_hf(b):
        out = hf(input_ids=b[:, :-1], labels=b[:, :-1])  # transformers shifts labels itself
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), cfg.train.grad_clip)
        opt_hf.step()
        opt_hf.zero_grad(set_to_none=True)

    mem_hf = peak_memory(step_hf, batches[0])
    mem_ours = peak_memory(step_ours, batches[0])
    for b in batches[1 : args.warmup]:
        step_hf(b)
        step_ours(b)
    (tps_hf, cpu_hf), (tps_ours, cpu_ours) = interleaved([step_hf, step_ours], batches[args.warmup :])
    print(f"transformers DeepseekV2: {tps_hf:10,.0f} tokens/s  {cpu_hf:6.3f} CPU s/step   peak RSS +{mem_hf:,.0f} MB")
    print(f"codecurate trainer:      {tps_ours:10,.0f} tokens/s  {cpu_ours:6.3f} CPU s/step   peak RSS +{mem_ours:,.0f} MB")
    print(f"speed-up: {tps_ours / tps_hf:.2f}x (wall clock), {cpu_hf / cpu_ours:.2f}x (CPU time)")


if __name__ == "__main__":
    main()
