"""Report section of the dedup stages: cluster counts, duplicate rate and the cluster-size histogram."""

from __future__ import annotations

from pipeline import storage

FIELDS = ("docs", "clusters", "docs_in_clusters", "duplicates_removed", "duplicate_rate", "largest_cluster", "pairs")


def sections(stage_dir: str) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt

    from pipeline.report import figure_html, table_html

    stats = storage.read_json(storage.join(stage_dir, "dedup_stats.json"))
    if not stats:
        return []
    body = table_html(["", "value"], [[k.replace("_", " "), stats[k]] for k in FIELDS if k in stats])
    hist = stats.get("size_histogram") or {}
    if hist:
        sizes = sorted(int(k) for k in hist)
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.bar(range(len(sizes)), [hist[str(s)] for s in sizes], color="#3b6ea8")
        step = max(1, len(sizes) // 12)
        ax.set_xticks(range(0, len(sizes), step), [str(s) for s in sizes[::step]])
        ax.set_xlabel("cluster size (documents)")
        ax.set_ylabel("clusters")
        ax.set_yscale("log")
        ax.set_title("Duplicate clusters by size")
        body += figure_html(fig)
    return [("Duplicate clusters", body)]
