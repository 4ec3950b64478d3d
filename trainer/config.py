"""Training configs: one YAML file with a `model:` section (DeepSeek-V2 `config.json` names) and `train:`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import yaml

from trainer.model import ModelConfig


@dataclass
class TrainConfig:
    data: list[str] = field(default_factory=list)  # shard prefixes, shard dirs or run dirs
    out_dir: str = "runs/train"
    seed: int = 0
    seq_len: int = 1024
    batch_size: int = 8  # sequences per rank per micro-step
    grad_accum: int = 1
    max_steps: int | None = None  # or derived from max_tokens
    max_tokens: int | None = None
    lr: float = 4.2e-4  # peak
    min_lr_ratio: float = 0.1
    warmup_steps: int = 2000
    schedule: str = "cosine"  # "cosine" (Coder-V2) or "step" (DeepSeekMath: x0.316 at 80%, x0.1 at 90%)
    beta1: float = 0.9
    beta2: float = 0.95
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    heldout_fraction: float = 0.02
    log_every: int = 10
    ckpt_every: int = 200
    parallel: str = "ddp"  # with torchrun: "ddp" or "fsdp" (FSDP2 fully_shard)
    compile: bool = False
    tokenizer: str = "deepseek"  # for evaluation text; BOS/EOS ids come from the model config
    peak_flops: float | None = None  # per GPU, for MFU; None: looked up from the device name

    def global_batch_tokens(self, world: int) -> int:
        return self.batch_size * self.grad_accum * world * self.seq_len

    def total_steps(self, world: int = 1) -> int:
        if self.max_steps:
            return self.max_steps
        if self.max_tokens:
            return max(1, -(-self.max_tokens // self.global_batch_tokens(world)))
        raise ValueError("train config needs max_steps or max_tokens")


@dataclass
class Config:
    model: ModelConfig
    train: TrainConfig

    def to_dict(self) -> dict:
        return {"model": self.model.to_dict(), "train": asdict(self.train)}

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        extra = sorted(set(d) - {"model", "train"})
        if extra:
            raise ValueError(f"unknown config sections: {', '.join(extra)} (expected model, train)")
        t = d.get("train") or {}
        known = {f.name for f in fields(TrainConfig)}
        bad = sorted(set(t) - known)
        if bad:
            raise ValueError(f"unknown train config keys: {', '.join(bad)}")
        return cls(model=ModelConfig.from_dict(d.get("model") or {}), train=TrainConfig(**t))


def load_config(path: str, overrides: dict | None = None) -> Config:
    from pipeline import storage

    d = yaml.safe_load(storage.read_bytes(path).decode("utf-8")) or {}
    for key, value in (overrides or {}).items():  # "train.max_tokens": 1000
        section, _, name = key.partition(".")
        d.setdefault(section, {})[name] = value
    return Config.from_dict(d)
