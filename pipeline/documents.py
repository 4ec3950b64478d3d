"""The on-disk document schema shared by every stage.

Every stage writes the same parquet schema so that any stage can read any other's output:
`id`, `text`, a few promoted metadata columns that users query directly, and `metadata`,
a JSON object (sorted keys) holding every other metadata key. Keeping the schema fixed
means shards of one stage never disagree on types, and readers restore the full
`Document.metadata` dict.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from datatrove.data import Document

PROMOTED = ("source", "repo", "path", "url", "domain", "lang")

SCHEMA = pa.schema(
    [("id", pa.string()), ("text", pa.string())]
    + [(k, pa.string()) for k in PROMOTED]
    + [("metadata", pa.string())]
)


def _json_default(o: Any):
    # numpy scalars and arrays, sets, bytes: the types steps tend to leave in metadata
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if isinstance(o, bytes):
        return o.decode("utf-8", "replace")
    raise TypeError(f"metadata value of type {type(o).__name__} is not JSON-serialisable")


def dumps(obj: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, so equal metadata gives equal bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def to_row(doc: Document) -> dict[str, Any]:
    meta = dict(doc.metadata)
    row: dict[str, Any] = {"id": str(doc.id), "text": doc.text}
    for k in PROMOTED:
        v = meta.pop(k, None)
        row[k] = None if v is None else str(v)
    row["metadata"] = dumps(meta)
    return row


def from_row(row: dict[str, Any]) -> Document:
    meta = json.loads(row.get("metadata") or "{}")
    for k in PROMOTED:
        if row.get(k) is not None:
            meta[k] = row[k]
    return Document(text=row["text"] or "", id=row["id"], metadata=meta)


def text_bytes(doc: Document) -> int:
    text = doc.text
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
