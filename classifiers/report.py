"""Round reports across rounds: a status table for the terminal and charts for `codecurate report`."""

from __future__ import annotations

import html
import os
import re

from pipeline import storage

METRICS = ("precision", "recall", "auc")


def round_reports(stage_dir: str) -> list[dict]:
    """Every finished round's report.json, in round order."""
    fs, p = storage.fs_and_path(storage.join(stage_dir, "rounds"))
    if not fs.exists(p):
        return []
    found = []
    for d in fs.ls(p, detail=False):
        m = re.fullmatch(r"round_(\d+)", os.path.basename(d.rstrip("/")))
        if m:
            rep = storage.read_json(storage.join(stage_dir, "rounds", f"round_{m.group(1)}", "report.json"))
            if rep is not None:
                found.append(rep)
    return sorted(found, key=lambda r: r["round"])


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _agree(v: dict) -> str:
    """The seed-purity proxy: the share of the round's new seed pages the first round's model recalls ("stop" once growth stopped)."""
    if v.get("seed_growth_stopped"):
        return "stop"
    return _fmt((v.get("seed_purity_proxy") or {}).get("first_model"))


def status_table(stage_dir: str) -> list[str]:
    """One line per round and target: seed, its purity proxy, recall, tokens, new domains/prefixes, overlap, held-out metrics."""
    reps = round_reports(stage_dir)
    if not reps:
        return ["no finished rounds"]
    head = ["round", "target", "seed", "grown", "agree", "recalled", "tokens", "domains", "new_dom", "new_pref", "overlap", *METRICS]
    rows = [head]
    for rep in reps:
        for t, v in sorted(rep["targets"].items()):
            rows.append([
                str(rep["round"]), t, str(v["seed_size"]), str(v["seed_grown"]), _agree(v), str(v["pages_recalled"]),
                str(v["tokens_recalled"]), str(len(v["related_domains"])), str(len(v["new_domains"])),
                str(len(v["new_prefixes"])), _fmt(v["overlap_with_previous"]), *[_fmt(v["heldout"].get(m)) for m in METRICS],
            ])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]


def charts_html(reps: list[dict]) -> str:
    """Seed size, pages recalled, overlap and held-out metrics against the round, per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = sorted({t for r in reps for t in r["targets"]})
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.5))
    for t in targets:
        xs = [r["round"] for r in reps if t in r["targets"]]
        vs = [r["targets"][t] for r in reps if t in r["targets"]]
        axes[0].plot(xs, [v["seed_size"] for v in vs], marker="o", label=t)
        axes[1].plot(xs, [v["pages_recalled"] for v in vs], marker="o", label=t)
        axes[2].plot(xs, [v["overlap_with_previous"] if v["overlap_with_previous"] is not None else float("nan") for v in vs], marker="o", label=t)
        for m, style in zip(METRICS, ("-", "--", ":")):
            axes[3].plot(xs, [v["heldout"].get(m) if v["heldout"].get(m) is not None else float("nan") for v in vs], style, marker="o", label=f"{t} {m}")
    for ax, title in zip(axes, ("seed size", "pages recalled", "overlap with previous round", "held-out metrics")):
        ax.set_title(title)
        ax.set_xlabel("round")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    from pipeline.report import figure_html

    return figure_html(fig)


def report_sections(stage_dir: str) -> list[tuple[str, str]]:
    reps = round_reports(stage_dir)
    if not reps:
        return []
    table = html.escape("\n".join(status_table(stage_dir)))
    return [("Recall loop", charts_html(reps) + f"<pre>{table}</pre>")]
