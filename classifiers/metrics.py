"""Binary-classifier metrics on held-out scores: precision, recall, F1, ROC AUC, threshold curve."""

from __future__ import annotations

import numpy as np


def auc(labels: list[int], scores: list[float]) -> float | None:
    """ROC AUC by the rank-sum statistic (ties count half); None when one class is missing."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    npos, nneg = int(y.sum()), int((~y).sum())
    if npos == 0 or nneg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=float)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def at_threshold(labels: list[int], scores: list[float], threshold: float) -> dict:
    y = np.asarray(labels, dtype=bool)
    p = np.asarray(scores, dtype=float) >= threshold
    tp, fp, fn = int((p & y).sum()), int((p & ~y).sum()), int((~p & y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 6), "recall": round(recall, 6), "f1": round(f1, 6), "tp": tp, "fp": fp, "fn": fn}


def evaluate(labels: list[int], scores: list[float], threshold: float) -> dict:
    """Metrics at `threshold` plus AUC and counts, rounded so equal runs give equal JSON."""
    a = auc(labels, scores)
    return {
        **at_threshold(labels, scores, threshold),
        "auc": None if a is None else round(a, 6),
        "threshold": threshold,
        "n": len(labels),
        "positives": int(sum(1 for v in labels if v)),
    }


def threshold_curve_png(labels: list[int], scores: list[float], path: str, title: str = "") -> str:
    """Precision, recall and F1 against the threshold, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = np.linspace(0, 1, 101)
    rows = [at_threshold(labels, scores, float(t)) for t in ts]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("precision", "recall", "f1"):
        ax.plot(ts, [r[key] for r in rows], label=key)
    ax.set_xlabel("threshold")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
