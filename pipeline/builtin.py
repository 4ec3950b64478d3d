"""The stage kinds that ship with the core: `basic_filter` (size, lines, letters) and `concat`."""

from __future__ import annotations

from datatrove.data import Document
from pydantic import Field

from pipeline.recipe import Fraction
from pipeline.stage import StageContext, StageSpec
from pipeline.steps import Filter


class LengthAlphaFilter(Filter):
    """Drops documents by size, longest line and share of alphabetic characters."""

    name = "basic filter"

    def __init__(self, min_chars: int, max_chars: int, max_line_length: int, min_alpha_fraction: float):
        super().__init__()
        self.min_chars, self.max_chars = min_chars, max_chars
        self.max_line_length, self.min_alpha_fraction = max_line_length, min_alpha_fraction

    def reason(self, doc: Document) -> str | None:
        n = len(doc.text)
        if n < self.min_chars:
            return "too_short"
        if n > self.max_chars:
            return "too_long"
        if max(map(len, doc.text.splitlines() or [""])) > self.max_line_length:
            return "long_line"
        if sum(c.isalpha() for c in doc.text) < self.min_alpha_fraction * n:
            return "low_alpha"
        return None


class BasicFilter(StageSpec):
    """Size, line-length and alphabetic-share filter."""

    min_chars: int = Field(default=1, ge=0)
    max_chars: int = Field(default=1_000_000, ge=1)
    max_line_length: int = Field(default=100_000, ge=1)
    min_alpha_fraction: Fraction = 0.0

    def build(self, ctx: StageContext):
        return [LengthAlphaFilter(self.min_chars, self.max_chars, self.max_line_length, self.min_alpha_fraction)]


class Concat(StageSpec):
    """Reads every input stage's shards and writes them again as one stage (one shard per input shard)."""
