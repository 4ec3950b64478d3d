"""`codecurate train CONFIG`: nanoGPT-style pretraining of the DeepSeek-V2-style MoE on token shards.

AdamW (0.9, 0.95, wd 0.1 on matrices only), linear warmup then cosine to 10% of the peak (DeepSeek-Coder-V2)
or DeepSeekMath's step schedule, gradient clipping, bf16 autocast on GPU, DDP or FSDP2 under torchrun.
Checkpoints hold model, optimizer and step; batches are a function of the step, so a resumed run continues
with exactly the losses of an uninterrupted one. Logs go to `OUT/log.csv` and TensorBoard (`OUT/tb`).
`OUT` may be any `pipeline.storage` path (s3://...): files are written whole and atomically (log.csv is
rewritten, not appended; TensorBoard writes in node-local scratch and is uploaded at each checkpoint).
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from contextlib import ExitStack, nullcontext

import torch

from pipeline import storage
from trainer.config import Config, TrainConfig
from trainer.model import DeepseekV2ForCausalLM, param_counts

LOG_FIELDS = ["step", "tokens", "loss", "aux_loss", "lr", "grad_norm", "tokens_per_s", "expert_load_max", "expert_load_cv", "mfu"]
# bf16 dense peak per GPU, for MFU
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}


def lr_at(step: int, total: int, t: TrainConfig) -> float:
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    if t.schedule == "step":
        frac = step / total
        return t.lr * (1.0 if frac < 0.8 else 0.316 if frac < 0.9 else 0.1)
    if t.schedule != "cosine":
        raise ValueError(f"unknown schedule {t.schedule!r} (cosine or step)")
    progress = min(1.0, (step - t.warmup_steps) / max(1, total - t.warmup_steps))
    floor = t.lr * t.min_lr_ratio
    return floor + (t.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def flops_per_token(model: DeepseekV2ForCausalLM, seq_len: int) -> float:
    """6 x active matmul parameters (embedding lookups excluded) + causal attention scores and values."""
    cfg = model.config
    _, active = param_counts(model)
    active -= model.model.embed_tokens.weight.numel()
    attn = cfg.num_hidden_layers * cfg.num_attention_heads * seq_len * (cfg.qk_nope_head_dim + cfg.qk_rope_head_dim + cfg.v_head_dim)
    return 6 * active + 6 * attn  # causal: half of the 12 * L * h * T * d of full attention


def make_optimizer(model: torch.nn.Module, t: TrainConfig) -> torch.optim.AdamW:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "norm" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "norm" not in n)]
    groups = [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # fused: one kernel over all parameters, on CPU too (~8x the per-tensor loop on a 13M-parameter model)
    return torch.optim.AdamW(groups, lr=t.lr, betas=(t.beta1, t.beta2), fused=True)


class Dist:
    """torchrun environment (or a single process)."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            self.device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: torch.nn.Module, how: str) -> torch.nn.Module:
        if self.world == 1:
            return model
        if how == "fsdp":
            from torch.distributed.fsdp import fully_shard

            for layer in model.model.layers:
                fully_shard(layer)
            return fully_shard(model)
        if how != "ddp":
            raise ValueError(f"unknown parallel mode {how!r} (ddp or fsdp)")
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.local_rank] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)


def _state(model, optimizer):
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    return get_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def save_checkpoint(path: str, cfg: Config, model, optimizer, step: int, dist: Dist) -> None:
    model_sd, optim_sd = _state(model, optimizer)
    if dist.main:  # atomic: a kill mid-save leaves the previous checkpoint intact
        with storage.atomic_open(path, "wb") as f:
            torch.save({"config": cfg.to_dict(), "step": step, "model": model_sd, "optimizer": optim_sd}, f)
    if dist.world > 1:
        torch.distributed.barrier()


def load_checkpoint(path: str, model, optimizer) -> int:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    ck = read_checkpoint(path)
    set_state_dict(model, optimizer, model_state_dict=ck["model"], optim_state_dict=ck["optimizer"],
                   options=StateDictOptions(full_state_dict=True))
    return int(ck["step"])


def read_checkpoint(checkpoint: str) -> dict:
    """A checkpoint's contents (`OUT/ckpt.pt` or its directory, any storage path), on the CPU."""
    if storage.isdir(checkpoint):
        checkpoint = storage.join(checkpoint, "ckpt.pt")
    with storage.local_copy(checkpoint) as local:  # remote: one whole download, not many range reads
        return torch.load(local, map_location="cpu", weights_only=False)


def load_model(checkpoint: str, device: str | torch.device = "cpu") -> tuple[DeepseekV2ForCausalLM, Config]:
    """The model of a training checkpoint (`OUT/ckpt.pt` or its directory), in eval mode."""
    return model_of(read_checkpoint(checkpoint), device)


def model_of(ck: dict, device: str | torch.device = "cpu") -> tuple[DeepseekV2ForCausalLM, Config]:
    cfg = Config.from_dict(ck["config"])
    model = DeepseekV2ForCausalLM(cfg.model)
    model.load_state_dict(ck["model"])
    return model.to(device).eval(), cfg


def _load_stats(model: DeepseekV2ForCausalLM) -> tuple[float, float]:
    """Expert load balance over MoE layers: mean of max/mean tokens per expert, and of the coefficient of variation."""
    loads = [m.last_load.float() for m in model.moe_layers() if m.last_load is not None]
    if not loads:
        return float("nan"), float("nan")
    mx = sum(float(x.max() / x.mean()) for x in loads) / len(loads)
    cv = sum(float(x.std(unbiased=False) / x.mean()) for x in loads) / len(loads)
    return mx, cv


class Logger:
    """`OUT/log.csv` (kept in memory, rewritten whole at each log step: object stores cannot append) and
    TensorBoard events (`OUT/tb`; for a remote OUT written in scratch and uploaded by `sync`)."""

    def __init__(self, out_dir: str, resume_step: int, enabled: bool):
        self.enabled = enabled
        self.path = storage.join(out_dir, "log.csv")
        self.tb_dir = storage.join(out_dir, "tb")
        self.tb = self.local_tb = None
        self.scratch = ExitStack()
        self.rows: list[dict] = []
        if not enabled:
            return
        if resume_step and storage.exists(self.path):  # drop rows written after the checkpoint we resume from
            with storage.open_file(self.path, "r", newline="") as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        self._write_csv()
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("tensorboard is not installed: logging to log.csv only")
            return
        tb = self.tb_dir
        if storage.is_remote(out_dir):
            tb = self.local_tb = self.scratch.enter_context(storage.scratch("codecurate-tb-"))
            for f in storage.glob(storage.join(self.tb_dir, "*")) if resume_step else []:
                storage.download(f, os.path.join(tb, f.rsplit("/", 1)[-1]))
        self.tb = SummaryWriter(tb, purge_step=resume_step + 1 if resume_step else None)

    def _write_csv(self) -> None:
        buf = io.StringIO(newline="")
        w = csv.DictWriter(buf, LOG_FIELDS)
        w.writeheader()
        w.writerows(self.rows)
        storage.write_text(self.path, buf.getvalue())

    def log(self, row: dict) -> None:
        if not self.enabled:
            return
        self.rows.append(row)
        self._write_csv()
        if self.tb:
            for k, v in row.items():
                if k != "step" and v is not None and not (isinstance(v, float) and math.isnan(v)):
                    self.tb.add_scalar(f"train/{k}", v, row["step"])

    def sync(self) -> None:
        """Upload the scratch TensorBoard files of a remote OUT (a no-op for a local one)."""
        if not self.local_tb:
            return
        self.tb.flush()
        for name in sorted(os.listdir(self.local_tb)):
            storage.upload(os.path.join(self.local_tb, name), storage.join(self.tb_dir, name))

    def close(self) -> None:
        if self.tb:
            self.sync()
            self.tb.close()
        self.scratch.close()


def train(cfg: Config, stop_at: int | None = None, quiet: bool = False) -> dict:
    """Train (resuming from OUT/ckpt.pt if present); `stop_at` ends early after that step, as a kill would."""
    from trainer.data import PackedCorpus, find_shards

    t = cfg.train
    dist = Dist()
    torch.manual_seed(t.seed)
    prefixes = [p for d in t.data for p in find_shards(d)]
    corpus = PackedCorpus(prefixes, cfg.model.bos_token_id, cfg.model.eos_token_id, t.heldout_fraction, seed=t.seed)
    model = DeepseekV2ForCausalLM(cfg.model).to(dist.device)
    total, active = param_counts(model)
    steps = t.total_steps(dist.world)
    say = (lambda *a: None) if quiet or not dist.main else print
    say(f"model: {total / 1e6:.2f}M total parameters, {active / 1e6:.2f}M active per token")
    say(f"data: {len(corpus.refs)} documents, {corpus.total_tokens} tokens ({corpus.heldout_docs} documents held out); "
        f"{steps} steps x {t.global_batch_tokens(dist.world)} tokens")
    fpt = flops_per_token(model, t.seq_len)
    peak = t.peak_flops
    if peak is None and dist.device.type == "cuda":
        name = torch.cuda.get_device_name(dist.device)
        peak = next((v for k, v in PEAK_FLOPS.items() if k in name), None)
    wrapped = dist.wrap(model, t.parallel)
    if t.compile:
        wrapped = torch.compile(wrapped)
    optimizer = make_optimizer(wrapped, t)
    ckpt = storage.join(t.out_dir, "ckpt.pt")
    step = load_checkpoint(ckpt, wrapped, optimizer) if storage.exists(ckpt) else 0
    if step:
        say(f"resumed from {ckpt} at step {step}")
    logger = Logger(t.out_dir, step, dist.main)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if dist.device.type == "cuda" else nullcontext()
    last = min(steps, stop_at) if stop_at else steps
    wrapped.train()
    tick, window_tokens = time.perf_counter(), 0
    result = {"steps": steps, "loss": None}
    try:  # the logger's scratch (remote OUT) is removed even when training fails
        while step < last:
            lr = lr_at(step, steps, t)
            for g in optimizer.param_groups:
                g["lr"] = lr
            loss_sum = aux_sum = 0.0
            for micro in range(t.grad_accum):
                first = ((step * t.grad_accum + micro) * dist.world + dist.rank) * t.batch_size
                batch = torch.from_numpy(corpus.batch(first, t.batch_size, t.seq_len)).to(dist.device)
                sync = micro == t.grad_accum - 1 or dist.world == 1 or t.parallel != "ddp"
                with (nullcontext() if sync else wrapped.no_sync()), autocast:
                    out = wrapped(batch[:, :-1], labels=batch[:, 1:])
                    loss = (out.loss + out.aux_loss) / t.grad_accum
                loss.backward()
                loss_sum += out.loss.item() / t.grad_accum
                aux_sum += out.aux_loss.item() / t.grad_accum
            grad_norm = torch.nn.utils.clip_grad_norm_(wrapped.parameters(), t.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            window_tokens += t.global_batch_tokens(dist.world)
            if dist.world > 1:
                stats = torch.tensor([loss_sum, aux_sum], device=dist.device)
                torch.distributed.all_reduce(stats, op=torch.distributed.ReduceOp.AVG)
                loss_sum, aux_sum = stats.tolist()
            result["loss"] = loss_sum
            if step % t.log_every == 0 or step == last:
                if dist.device.type == "cuda":
                    torch.cuda.synchronize()
                elapsed = time.perf_counter() - tick
                tps = window_tokens / elapsed
                load_max, load_cv = _load_stats(model)
                mfu = tps / dist.world * fpt / peak if peak else None
                logger.log({"step": step, "tokens": step * t.global_batch_tokens(dist.world), "loss": round(loss_sum, 6),
                            "aux_loss": round(aux_sum, 6), "lr": lr, "grad_norm": round(float(grad_norm), 6),
                            "tokens_per_s": round(tps, 1), "expert_load_max": round(load_max, 4),
                            "expert_load_cv": round(load_cv, 4), "mfu": None if mfu is None else round(mfu, 4)})
                say(f"step {step}/{steps} loss {loss_sum:.4f} aux {aux_sum:.4f} lr {lr:.2e} {tps:,.0f} tok/s"
                    + (f" mfu {mfu:.1%}" if mfu is not None else ""))
                tick, window_tokens = time.perf_counter(), 0
            if step % t.ckpt_every == 0 or step == last:
                save_checkpoint(ckpt, cfg, wrapped, optimizer, step, dist)
                logger.sync()
    finally:
        logger.close()
    result["step"] = step
    return result
