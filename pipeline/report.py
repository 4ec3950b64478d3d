"""`codecurate report RUN_DIR`: a self-contained report.html (figures as embedded PNGs).

Sections: the funnel (docs kept per stage), a per-stage table with drop reasons, the language
distribution of stages whose documents carry `lang`, and whatever each stage kind adds through
`StageSpec.report_sections`.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from pipeline import registry, storage  # noqa: E402
from pipeline.status import stage_names  # noqa: E402


def figure_html(fig) -> str:
    """Render a matplotlib figure as an inline <img> and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="chart" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def table_html(header: list[str], rows: list[list]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _funnel(stats: list[dict]) -> str:
    names = [s["stage"] for s in stats]
    kept = [s["kept"]["docs"] for s in stats]
    din = [s["in"]["docs"] for s in stats]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
    y = range(len(names))[::-1]
    ax.barh(list(y), din, color="#d0d7e1", label="in")
    ax.barh(list(y), kept, color="#3b6ea8", label="kept")
    ax.set_yticks(list(y), names)
    ax.set_xlabel("documents")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    ax.set_title("Documents in and kept per stage")
    return figure_html(fig)


def _stage_table(stats: list[dict]) -> str:
    rows = []
    for s in stats:
        drops = ", ".join(f"{r}: {d['docs']:,}" for r, d in s["dropped"].items()) or "-"
        rows.append(
            [
                s["stage"],
                s.get("kind", ""),
                s.get("tasks", ""),
                f"{s['in']['docs']:,}",
                f"{s['kept']['docs']:,}",
                drops,
                f"{s['in']['bytes']:,}",
                f"{s['kept']['bytes']:,}",
                f"{s.get('elapsed_s', 0):.1f}s",
                "yes" if s.get("balanced") else "NO",
            ]
        )
    return table_html(
        ["stage", "kind", "tasks", "docs in", "kept", "dropped (reason: docs)", "bytes in", "bytes kept", "elapsed", "balanced"],
        rows,
    )


def language_distribution(stage_dir: str) -> tuple[Counter, Counter]:
    """Files and text bytes per `lang` over a stage's shards (reads only those two columns)."""
    files, nbytes = Counter(), Counter()
    for f in storage.list_shards([stage_dir]):
        t = storage.read_parquet(f, columns=["lang", "text"])
        langs = t.column("lang").to_pylist()
        sizes = pc.binary_length(pc.cast(t.column("text"), "binary")).to_pylist()
        for lang, size in zip(langs, sizes):
            if lang is not None:
                files[lang] += 1
                nbytes[lang] += size or 0
    return files, nbytes


def _languages(name: str, stage_dir: str) -> str:
    files, nbytes = language_distribution(stage_dir)
    if not files:
        return ""
    top = [lang for lang, _ in nbytes.most_common(25)]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(top) + 1.2))
    ax.barh(top[::-1], [nbytes[lang] for lang in top[::-1]], color="#5a9e6f")
    ax.set_xlabel("bytes")
    ax.set_title(f"{name}: bytes per language (top {len(top)})")
    rows = [[lang, f"{files[lang]:,}", f"{nbytes[lang]:,}"] for lang, _ in nbytes.most_common()]
    return (
        f"<h3>{html.escape(name)}: language distribution ({len(files)} languages)</h3>"
        + figure_html(fig)
        + f"<details><summary>all languages</summary>{table_html(['language', 'files', 'bytes'], rows)}</details>"
    )


def _ablation(run_dir: str) -> list[str]:
    """The data ablation written by `codecurate ablate` / the demo under `<run_dir>/ablation/`."""
    table, curves = storage.join(run_dir, "ablation", "ablation.md"), storage.join(run_dir, "ablation", "loss_curves.png")
    if not storage.exists(table):
        return []
    with storage.open_file(table, "r", encoding="utf-8") as f:
        out = ["<h2>Data ablation</h2>", f"<pre>{html.escape(f.read())}</pre>"]
    if storage.exists(curves):
        with storage.open_file(curves, "rb") as f:
            out.append(f'<img alt="loss curves" src="data:image/png;base64,{base64.b64encode(f.read()).decode()}">')
    return out


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
img{max-width:100%}h2{border-bottom:1px solid #ddd}"""


def write_report(run_dir: str, output: str | None = None) -> str:
    names = stage_names(run_dir)
    stats = [s for s in (storage.read_json(storage.join(run_dir, n, "_stats.json")) for n in names) if s]
    parts = [f"<h1>codecurate run: {html.escape(run_dir)}</h1>"]
    if stats:
        parts += ["<h2>Funnel</h2>", _funnel(stats), "<h2>Stages</h2>", _stage_table(stats)]
        warned = [f"<li><b>{html.escape(s['stage'])}</b>: {html.escape(w)}</li>" for s in stats for w in s.get("warnings", [])]
        if warned:
            parts += ["<h2>Warnings</h2>", f"<ul>{''.join(warned)}</ul>"]
    else:
        parts.append("<p>No stage has completed yet.</p>")
    # languages as ingested (source stages) and as they end up (the last stage)
    shown = [s for s in stats if s.get("kind") in registry.KINDS and not registry.kind_class(s["kind"]).needs_input]
    shown += [s for s in stats[-1:] if s not in shown]
    lang_parts = [_languages(s["stage"], storage.join(run_dir, s["stage"])) for s in shown]
    if any(lang_parts):
        parts += ["<h2>Languages</h2>", *lang_parts]
    for s in stats:
        kind = s.get("kind")
        if kind in registry.KINDS:
            for title, body in registry.kind_class(kind).report_sections(storage.join(run_dir, s["stage"]), s):
                parts += [f"<h2>{html.escape(s['stage'])}: {html.escape(title)}</h2>", body]
    parts += _ablation(run_dir)
    doc = f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>codecurate report</title><style>{CSS}</style></head><body>{''.join(parts)}</body></html>"
    out = output or storage.join(run_dir, "report.html")
    with storage.open_file(out, "w", encoding="utf-8") as f:
        f.write(doc)
    return out
