"""What `codecurate ablate` reports: every metric of every seed, mean and spread per corpus, differences against
the first corpus, and the tables (mean ± std) and loss curves that show them."""

from __future__ import annotations

import csv
import math
import os

import numpy as np

from trainer.evalsets import DOMAINS

# headline columns: (metric, label, shown as a percentage)
HEADLINE = [(f"bpb/{d}", f"{d.replace('_', ' ')} bpb", False) for d in DOMAINS] + [
    ("humaneval/pass@1", "HumanEval", True), ("mbpp/pass@1", "MBPP", True), ("fim/exact_match", "FIM EM", True)]


def metrics(r: dict) -> dict[str, float]:
    """One seed's results as flat {metric: value}: bits per byte per domain (`bpb/code`) and per evaluation set
    (`bpb/set/gsm8k`), pass@1 and FIM exact match, held-out loss overall and per category, final training loss."""
    m = {"final_train_loss": r.get("final_train_loss")}
    m |= {f"bpb/{d}": v for d, v in (r.get("bpb") or {}).items()}
    m |= {f"bpb/set/{n}": v["bpb"] for n, v in (r.get("eval_sets") or {}).items()}
    for bench in ("humaneval", "mbpp"):
        if r.get(bench):
            m[f"{bench}/pass@1"] = r[bench]["pass@1"]
    for lang, v in (r.get("humaneval_x") or {}).items():
        if lang != "skipped":
            m[f"humaneval_x/{lang}/pass@1"] = v["pass@1"]
    if r.get("fim"):
        m["fim/exact_match"] = r["fim"]["exact_match"]
    ho = r.get("heldout") or {}
    if ho.get("overall"):
        m["heldout/loss"] = ho["overall"]["loss"]
        m |= {f"heldout/{c}/loss": v["loss"] for c, v in (ho.get("by_category") or {}).items()}
    return {k: float(v) for k, v in m.items() if v is not None}


def _finite(xs: list[float]) -> list[float]:
    return [x for x in xs if not math.isnan(x)]


def summarise(seed_results: list[dict]) -> dict:
    """{"seeds": [...], "mean": {metric: x}, "std": {metric: sample std, None with one seed}}."""
    per = [metrics(r) for r in seed_results]
    keys = sorted({k for m in per for k in m})
    mean, std = {}, {}
    for k in keys:
        xs = _finite([m[k] for m in per if k in m])
        mean[k] = float(np.mean(xs)) if xs else None
        std[k] = float(np.std(xs, ddof=1)) if len(xs) > 1 else None
    return {"seeds": seed_results, "mean": mean, "std": std}


def compare(base: dict, other: dict) -> dict:
    """other − base per metric, the combined spread sqrt(std_a² + std_b²), and whether |difference| exceeds twice
    it (None when either side has a single seed, so its spread is unknown)."""
    out = {}
    for k, b in other["mean"].items():
        a = base["mean"].get(k)
        if a is None or b is None:
            continue
        sa, sb = base["std"].get(k), other["std"].get(k)
        spread = math.hypot(sa, sb) if sa is not None and sb is not None else None
        out[k] = {"difference": b - a, "spread": spread,
                  "exceeds_2x_spread": None if spread is None else bool(abs(b - a) > 2 * spread)}
    return out


def _cell(summary: dict, key: str, pct: bool) -> str:
    mean, std = summary["mean"].get(key), summary["std"].get(key)
    if mean is None:
        return "-"
    scale, unit, digits = (100, "%", 1) if pct else (1, "", 3)
    s = f"{scale * mean:.{digits}f}"
    return s + (f" ± {scale * std:.{digits}f}" if std is not None else "") + unit


def _diff_cell(c: dict | None, pct: bool) -> str:
    if c is None:
        return "-"
    scale, unit, digits = (100, "%", 1) if pct else (1, "", 3)
    s = f"{scale * c['difference']:+.{digits}f}{unit}"
    flag = {True: "> 2σ", False: "≤ 2σ", None: "1 seed"}[c["exceeds_2x_spread"]]
    return f"{s} ({flag})"


def _md(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def tables(summaries: dict[str, dict], heldout_corpus: str | None) -> str:
    """Markdown: the headline table (independent sets by domain, pass@1, held-out loss as a labelled extra), bits
    per byte per evaluation set, and each corpus's differences against the first."""
    shown = {k for s in summaries.values() for k, v in s["mean"].items() if v is not None}
    cols = [c for c in HEADLINE if c[0] in shown]
    if "heldout/loss" in shown:
        cols.append(("heldout/loss", f"held-out loss ({heldout_corpus}'s documents; not independent)", False))
    sets = sorted(k for k in shown if k.startswith("bpb/set/"))
    first_name, first = next(iter(summaries.items()))
    seeds = {n: len(s["seeds"]) for n, s in summaries.items()}
    rows = [[n, str(seeds[n]), f"{s['seeds'][0]['tokens']:,}", *[_cell(s, k, p) for k, _, p in cols]] for n, s in summaries.items()]
    out = ["bits per byte (bpb, lower is better) on evaluation sets that no compared corpus contributed; mean ± std over seeds", ""]
    out += _md(["corpus", "seeds", "tokens", *[label for _, label, _ in cols]], rows)
    if sets:
        out += ["", "bits per byte by evaluation set", ""]
        out += _md(["corpus", *[k[len("bpb/set/"):] for k in sets]], [[n, *[_cell(s, k, False) for k in sets]] for n, s in summaries.items()])
    if len(summaries) > 1:
        diff_cols = cols + [(k, k[len("bpb/set/"):], False) for k in sets]
        out += ["", f"difference against {first_name} (> 2σ: larger than twice the combined seed spread sqrt(std_a² + std_b²))", ""]
        rows = []
        for n, s in list(summaries.items())[1:]:
            c = compare(first, s)
            rows.append([f"{n} − {first_name}", *[_diff_cell(c.get(k), p) for k, _, p in diff_cols]])
        out += _md(["", *[label for _, label, _ in diff_cols]], rows)
    return "\n".join(out)


def plot_losses(runs: dict[str, str], path: str) -> None:
    """Training loss against tokens, one curve per (corpus, seed) run directory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, out_dir in runs.items():
        with open(os.path.join(out_dir, "log.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        ax.plot([int(r["tokens"]) for r in rows], [float(r["loss"]) for r in rows], label=name)
    ax.set_xlabel("training tokens")
    ax.set_ylabel("training loss")
    ax.set_title("codecurate ablate: loss curves")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
