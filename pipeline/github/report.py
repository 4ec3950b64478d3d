"""Report sections of the GitHub stages: syntax error ratios and repo-level document sizes."""

from __future__ import annotations

import json

from pipeline import storage
from pipeline.io import iter_rows

SAMPLE = 50_000  # documents read per stage for the charts


def metadata_sample(stage_dir: str, limit: int = SAMPLE) -> list[dict]:
    out: list[dict] = []
    for path in storage.list_shards([stage_dir]):
        for row in iter_rows(path, columns=["metadata"], batch_size=4096):
            out.append(json.loads(row["metadata"] or "{}"))
            if len(out) >= limit:
                return out
    return out


def histogram(values: list[float], title: str, xlabel: str, bins: int = 30, log: bool = False) -> str:
    import matplotlib.pyplot as plt

    from pipeline.report import figure_html

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(values, bins=bins, log=log, color="#4c72b0")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("documents")
    return figure_html(fig)


def syntax_section(stage_dir: str) -> list[tuple[str, str]]:
    ratios = [m["syntax_error_ratio"] for m in metadata_sample(stage_dir) if "syntax_error_ratio" in m]
    if not ratios:
        return []
    clean = sum(r == 0 for r in ratios)
    html = histogram(ratios, "tree-sitter parse-error ratio of kept files", "error bytes / file bytes", log=True)
    return [("Syntax signal", f"<p>{len(ratios):,} files with a grammar; {clean:,} parse without errors.</p>{html}")]


def repo_docs_section(stage_dir: str) -> list[tuple[str, str]]:
    docs = [m for m in metadata_sample(stage_dir) if "n_files" in m]
    if not docs:
        return []
    files = [m["n_files"] for m in docs]
    linked = sum(1 for m in docs if m.get("dependencies"))
    html = histogram(files, "files per repo-level document", "files", log=True)
    return [("Repo-level documents", f"<p>{len(files):,} documents, {sum(files):,} files; {linked:,} with resolved "
                                     f"dependencies.</p>{html}")]
