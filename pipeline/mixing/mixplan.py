"""The mixer's arithmetic: pure functions of the merged per-task partial sums (the stage is in mix.py).

Every document has a key `u` in [0, 1) from a seeded hash of its id and a size class
`ceil(log2(tokens))`. A count task sums tokens per (category, source, size class, key bucket);
the planner sees only these sums, merged, never a row per document. Per source it fixes

- `full`: whole epochs, `goal // available`; the `remainder` of the goal is drawn once more:
- `split_above`: documents larger than their share, 1/64 of the remainder (rounded down to a
  power of two, a size-class boundary), are split: each gives a window of `tau` of its tokens,
  cut at file or paragraph boundaries (`pipeline.mixing.split`);
- `tau`: a smaller document is taken once more when `u < tau`. It solves
  `tokens of small documents with u < tau + tau * tokens of split documents = remainder`,
  exactly at bucket edges and linearly inside a bucket.

A document's copies are then a function of the plan, its size and its key alone (`decide`), so
the sample does not depend on how documents are spread over tasks or workers. The error is at
most about one small document or one piece per source, so ratios land within a fraction of a point
on any corpus that has the tokens.
"""

from __future__ import annotations

import hashlib

import numpy as np

BUCKETS = 1024  # key buckets of the histogram
SIZE_CLASSES = 64  # size class c holds documents of (2**(c-1), 2**c] tokens
SPLIT_DIVISOR = 64  # a document above remainder / 64 is split


def doc_keys(seed: int, doc_id: str) -> tuple[float, float]:
    """Two independent uniform keys in [0, 1) from a seeded hash of a document's id: the sampling key
    `u` and, for a split document, the rounding key of its window's end."""
    h = hashlib.blake2b(f"{seed}\x00{doc_id}".encode("utf-8", "surrogatepass"), digest_size=16).digest()
    return int.from_bytes(h[:8], "little") / 2.0**64, int.from_bytes(h[8:], "little") / 2.0**64


def size_class(tokens: int) -> int:
    return max(0, int(tokens) - 1).bit_length()


def bucket(u: float) -> int:
    return min(int(u * BUCKETS), BUCKETS - 1)


def solve_tau(hist: np.ndarray, split_class: int | None, remainder: float) -> float:
    """The key threshold that draws `remainder` tokens from a source's (size class x bucket) histogram."""
    if remainder <= 0:
        return 0.0
    small = hist if split_class is None else hist[: split_class + 1]
    spread = 0 if split_class is None else int(hist[split_class + 1:].sum())
    edges = np.concatenate([[0], np.cumsum(small.sum(axis=0))]) + np.arange(BUCKETS + 1) / BUCKETS * spread
    if remainder >= edges[-1]:
        return 1.0
    b = int(np.searchsorted(edges, remainder, side="right")) - 1  # edges[b] <= remainder < edges[b+1]
    width = edges[b + 1] - edges[b]
    return float(b + ((remainder - edges[b]) / width if width > 0 else 0.0)) / BUCKETS


def plan(hists: dict[tuple[str, str], np.ndarray], docs: dict[tuple[str, str], int], ratios: dict[str, float],
         target_tokens: int | None, source_weights: dict[str, float]) -> dict:
    """Per (category, source): epochs, split limit and key threshold, with the targets they aim at."""
    avail = {k: int(h.sum()) for k, h in hists.items()}
    avail_cat = {c: sum(a for (cat, _), a in avail.items() if cat == c) for c in ratios}
    present = {c: a for c, a in avail_cat.items() if a > 0 and ratios[c] > 0}
    if target_tokens is None:  # the largest budget the scarcest category fills without repetition
        target_tokens = int(min((a / ratios[c] for c, a in present.items()), default=0))
    out = {"target_tokens": target_tokens, "ratios_target": dict(ratios),
           "missing_categories": sorted(c for c, r in ratios.items() if r > 0 and avail_cat[c] == 0),
           "ignored_categories": sorted({c for c, _ in hists} - set(ratios)), "categories": {}}
    for cat in sorted(ratios):
        budget = target_tokens * ratios[cat]
        srcs = sorted(s for c, s in hists if c == cat)
        weighted = any(s in source_weights for s in srcs)
        w = {s: (source_weights.get(s, 1.0) if weighted else avail[cat, s]) for s in srcs}
        wsum = sum(w.values())
        sources = {}
        for s in srcs:
            a = avail[cat, s]
            goal = budget * w[s] / wsum if wsum > 0 and a > 0 else 0.0
            full = int(goal // a) if a > 0 else 0
            rest = goal - full * a
            limit = 2 ** max(0, int(np.floor(np.log2(max(rest / SPLIT_DIVISOR, 1.0))))) if rest > 0 else None
            split_class = None if limit is None else size_class(limit)
            sources[s] = {"weight": source_weights.get(s, 1.0) if weighted else None, "available_docs": docs[cat, s],
                          "available_tokens": a, "target_tokens": round(goal, 1), "full": full,
                          "split_above": limit, "tau": solve_tau(hists[cat, s], split_class, rest)}
        out["categories"][cat] = {"target_tokens": round(budget, 1), "available_tokens": avail_cat[cat],
                                  "available_docs": sum(docs[cat, s] for s in srcs), "sources": sources}
    return out


def decide(entry: dict, tokens: int, u: float) -> tuple[int, float]:
    """(whole copies, share of a window to cut) for a document of a source planned as `entry`."""
    if entry["split_above"] is not None and tokens > entry["split_above"]:
        return entry["full"], entry["tau"]
    return entry["full"] + int(u < entry["tau"]), 0.0


def window(piece_tokens: list[int], share: float, u: float, v: float, starts: list[bool] | None = None) -> tuple[int, int]:
    """Pieces [i, j) holding `share` of the tokens in expectation. The window starts at the last piece
    that may start one (`starts`, e.g. a file's first piece; default any) at or before
    `u * (tokens - width)`; the piece its end falls in is taken with probability equal to the part of
    it the window covers (decided by `v`), so the expected length is exact whatever the pieces."""
    bounds = np.concatenate([[0], np.cumsum(piece_tokens, dtype=np.float64)])
    width = share * bounds[-1]
    first = u * (bounds[-1] - width)
    i = max(k for k in range(len(piece_tokens)) if (starts is None or starts[k] or k == 0) and bounds[k] <= first)
    end = bounds[i] + width
    k = min(int(np.searchsorted(bounds, end, side="right")) - 1, len(piece_tokens))  # bounds[k] <= end
    if k < len(piece_tokens) and v < (end - bounds[k]) / (bounds[k + 1] - bounds[k]):
        k += 1
    return i, max(i, k)


def summarize(planned: dict, achieved: dict[tuple[str, str], dict], tolerance: float) -> dict:
    """`mix.json`: the plan's targets beside the achieved counts, and one warning line when a ratio is missed."""
    out = {k: v for k, v in planned.items() if k != "categories"} | {"categories": {}, "tolerance": tolerance}
    for cat, cv in planned["categories"].items():
        sources = {}
        for s, sv in cv["sources"].items():
            got = achieved.get((cat, s), {})
            a = sv["available_tokens"]
            sources[s] = {k: sv[k] for k in ("weight", "available_docs", "available_tokens", "target_tokens",
                                             "split_above")} | {
                "docs": got.get("docs", 0), "unique_docs": got.get("unique_docs", 0), "tokens": got.get("tokens", 0),
                "split_docs": got.get("split_docs", 0), "split_tokens": got.get("split_tokens", 0),
                "epochs": round(got.get("tokens", 0) / a, 6) if a else 0.0}
        out["categories"][cat] = {k: cv[k] for k in ("target_tokens", "available_tokens", "available_docs")} | {
            "tokens": sum(v["tokens"] for v in sources.values()), "docs": sum(v["docs"] for v in sources.values()),
            "sources": sources}
    total = sum(c["tokens"] for c in out["categories"].values())
    out["tokens"] = total
    out["docs"] = sum(c["docs"] for c in out["categories"].values())
    out["ratios_achieved"] = {c: (v["tokens"] / total if total else 0.0) for c, v in out["categories"].items()}
    missed = []
    for cat, want in sorted(planned["ratios_target"].items()):
        got = out["ratios_achieved"].get(cat, 0.0)
        if abs(got - want) > tolerance:
            why = " (no documents)" if cat in planned["missing_categories"] else "" if planned["missing_categories"] \
                else " (documents too coarse)"
            missed.append(f"{cat} {want:.1%} -> {got:.1%}{why}")
    out["warning"] = f"mix ratios not reached (target -> achieved): {'; '.join(missed)}" if missed else None
    return out
