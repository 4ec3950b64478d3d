"""A document's category (code, math, natural_language): decided once, by the `mix` stage, which writes it
as `metadata["category"]`; every later reader (the fim stage, the shards' manifest, the trainer's
evaluation) reads that column with `of`, never re-deriving it with other settings.

The decision (`decide`, first rule that applies):
1. `metadata["category"]` when it is already set;
2. the recall classifiers' scores (`recall` stage, classifiers/) `metadata["scores"] =
   {"code": p, "math": p}`: the best label whose score is at least `recall_threshold`;
3. the stage's `categories` map from `source` (default: github -> code, web -> natural_language);
4. otherwise natural_language.
"""

from __future__ import annotations

CATEGORIES = ("code", "math", "natural_language")
DEFAULT_SOURCE_CATEGORIES = {"github": "code", "web": "natural_language"}
UNMIXED = "unmixed"  # what `of` reads for a document no mix stage has seen


def decide(meta: dict, source_categories: dict[str, str] | None = None, recall_threshold: float = 0.5) -> str:
    cat = meta.get("category")
    if isinstance(cat, str) and cat:
        return cat
    recall = meta.get("scores")
    if isinstance(recall, dict) and recall:
        label, score = max(recall.items(), key=lambda kv: (kv[1], kv[0]))
        if label in CATEGORIES and score >= recall_threshold:
            return label
    src = meta.get("source")
    mapping = DEFAULT_SOURCE_CATEGORIES if source_categories is None else source_categories
    return mapping.get(src, "natural_language")


def of(meta: dict) -> str:
    """The category the mix stage wrote, or `UNMIXED`."""
    cat = meta.get("category")
    return cat if isinstance(cat, str) and cat else UNMIXED
