"""The recall loop's settings, declared once: the `recall` stage kind derives from these models, the loop
runs on them, and `codecurate classifiers train` builds its flags from them (a light module: commands
import it when they start)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from classifiers.tokens import TOKENIZERS
from pipeline.fields import Fraction

# DeepSeekMath's settings: (vocabulary + bucket) x dim float32 input matrix, ~2 GiB per model at
# bucket 2M and dim 256 (the model file is as large; training holds it in memory).
DEEPSEEKMATH = {"dim": 256, "lr": 0.1, "word_ngrams": 3, "min_count": 3, "epoch": 3, "bucket": 2_000_000}
LR_GRID = (0.1, 0.3, 1.0)
EPOCH_GRID = (5, 20)


class FastTextKeys(BaseModel):
    """fastText settings for seeds of a few dozen real pages; `lr`/`epoch` None = chosen on a validation split.
    The keys of the `recall` stage kind and the flags of `codecurate classifiers train`.

    Pages are cut into windows of at most `window` tokens (up to `windows_per_page` of them, spread
    over the page), so a long page gives several bounded examples instead of one that fastText
    averages into nothing. The input matrix is (vocabulary + bucket) x dim float32: 200K x 64 is
    ~50 MiB; DeepSeekMath's 2M x 256 (`DEEPSEEKMATH`) is ~2 GiB per model, in memory and on disk.
    """

    model_config = ConfigDict(extra="forbid")
    dim: int = Field(default=64, ge=1)
    lr: float | None = Field(default=None, gt=0, description="learning rate (default: chosen on a validation split)")
    word_ngrams: int = Field(default=2, ge=1)
    min_count: int = Field(default=1, ge=1)
    epoch: int | None = Field(default=None, ge=1, description="epochs (default: chosen on a validation split)")
    bucket: int = Field(default=200_000, ge=1)
    window: int = Field(default=256, ge=8, description="tokens per training window")
    windows_per_page: int = Field(default=8, ge=1)


class Hyper(FastTextKeys):
    """The fastText keys plus the seed and threads of one training."""

    seed: int = 0
    thread: int = Field(default=1, ge=1, description="fastText threads: 1 is deterministic, more are not")

    def fasttext_args(self, lr: float, epoch: int) -> dict:
        return {
            "dim": self.dim,
            "lr": lr,
            "wordNgrams": self.word_ngrams,
            "minCount": self.min_count,
            "epoch": epoch,
            "bucket": self.bucket,
            "seed": self.seed % 2**31,  # fastText takes a signed 32-bit seed
            "thread": self.thread,
            "loss": "softmax",
            "verbose": 0,
        }

    def grid(self) -> list[tuple[float, int]]:
        return [(lr, ep) for lr in ((self.lr,) if self.lr else LR_GRID) for ep in ((self.epoch,) if self.epoch else EPOCH_GRID)]


class TargetConfig(BaseModel):
    """What one classifier looks for; the stage's `targets.NAME` (`classifiers.stage.RecallTarget`) derives from it."""

    model_config = ConfigDict(extra="forbid")
    seeds: list[str] = []
    seed_prefixes: list[str] = []
    threshold: Fraction = 0.5
    token_budget: int | None = Field(default=None, ge=1)


class LoopKeys(BaseModel):
    """The loop's settings: keys of the `recall` stage kind (which derives from this), declared once."""

    model_config = ConfigDict(extra="forbid")
    tokenizer: Literal[TOKENIZERS] = "deepseek"  # type: ignore[valid-type]
    negatives_per_positive: float = Field(default=1.0, gt=0)
    min_negatives: int = Field(default=300, ge=1)
    max_negative_share: Fraction = Field(default=0.25, gt=0)
    max_negatives: int = Field(default=500_000, ge=1)
    max_positives: int = Field(default=500_000, ge=1, description="seed pages sampled from the pool per round (smallest seeded hashes)")
    partitions: int = Field(default=64, ge=1, le=1 << 20, description="partitions of the domain/prefix group-by")
    heldout: Fraction = Field(default=0.2, gt=0, lt=1)
    min_auc: Fraction = 0.7
    min_recall: Fraction = 0.5
    domain_threshold: Fraction = 0.1
    accept_threshold: Fraction = 0.7
    confident_score: Fraction = 0.8
    min_seed_agreement: Fraction = 0.8
    prefix_depth: int = Field(default=3, ge=1, le=3)
    min_prefix_pages: int = Field(default=5, ge=1)
    auto_annotate: bool = False
    group_by: Literal["url", "repo"] = "url"
