"""The `train_tokenizer` stage kind: a byte-level BPE (`tokenizer.train`) trained on every document of its inputs.

A BPE is one model, learned from pair counts over the whole corpus, so the stage runs one task that reads
all its input shards (in shard order, so the same documents give the same bytes) and writes `tokenizer.json`
and its configs into the stage directory instead of shards. `codecurate tokenizer train` runs it on its own.
"""

from __future__ import annotations

from typing import Literal

from datatrove.data import DocumentsPipeline
from pydantic import Field

from pipeline.stage import Phase, StageContext, StageSpec
from pipeline.steps import Step
from tokenizer import SPECIAL_TOKENS, fim


class TrainBPE(Step):
    """Trains the BPE on the texts of every document it reads and saves it; yields no documents."""

    name = "train BPE"

    def __init__(self, vocab_size: int, min_frequency: int, output_dir: str):
        super().__init__()
        self.vocab_size, self.min_frequency, self.output_dir = vocab_size, min_frequency, output_dir

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from tokenizer.train import save, train_bpe

        seen = 0

        def texts():
            nonlocal seen
            for doc in data or ():
                seen += 1
                self.count_kept(doc)  # kept in the model: every document read is trained on
                yield fim.restore(doc.text, doc.metadata.get("fim"))

        tok = train_bpe(texts(), self.vocab_size, self.min_frequency)
        if not seen:
            raise ValueError("no documents to train on")
        save(tok, self.output_dir)
        yield from ()


class TrainTokenizer(StageSpec):
    """Train a byte-level BPE with DeepSeek-V2's splits and codecurate's special tokens; one task (one model)."""

    vocab_size: int = Field(default=100_000, ge=len(SPECIAL_TOKENS) + 256,
                            description="total vocabulary, special tokens and the 256 bytes included")
    min_frequency: int = Field(default=2, ge=1, description="minimum pair count for a merge")
    tasks: Literal[1] | None = None  # a BPE is one model

    def phases(self, ctx: StageContext) -> list[Phase]:
        return [Phase("main", [ctx.reader(), TrainBPE(self.vocab_size, self.min_frequency, ctx.stage_dir)], 1)]
