"""Concatenate the outputs of several stages into one shard set."""

from __future__ import annotations

from pipeline.stage import StageSpec


class Concat(StageSpec):
    """Reads every input stage's shards and writes them again as one stage (one shard per input shard)."""
