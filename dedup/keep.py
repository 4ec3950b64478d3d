"""Which document of a duplicate cluster survives: a deterministic order over stars, length and id."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

KEEP_RULES = ("most_stars", "fewest_stars", "longest", "shortest", "smallest_id", "largest_id", "first")
DEFAULT_KEEP = ["most_stars", "longest", "smallest_id"]

_SORT = {
    "most_stars": ("stars", "descending"),
    "fewest_stars": ("stars", "ascending"),
    "longest": ("length", "descending"),
    "shortest": ("length", "ascending"),
    "smallest_id": ("id", "ascending"),
    "largest_id": ("id", "descending"),
    "first": ("ref", "ascending"),  # first in shard order (web_extract's URL dedup)
}

MEMBER_SCHEMA = pa.schema([("ref", pa.uint64()), ("id", pa.string()), ("length", pa.int64()), ("stars", pa.float64())])


def doc_stars(meta: dict, field: str) -> float:
    v = meta.get(field)
    try:
        return float(v) if v is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def rank_members(members: pa.Table, group: str, keep: list[str]) -> tuple[pa.Table, pa.Array]:
    """Sort members by group, then by the keep rule (ties end on the position ref, so the order is total).

    Returns the sorted table and a boolean array: True for the first (kept) member of each group.
    """
    keys = [(group, "ascending")] + [_SORT[k] for k in keep] + [("ref", "ascending")]
    t = members.take(pc.sort_indices(members, sort_keys=keys))
    g = t.column(group).combine_chunks()
    if len(g) == 0:
        return t, pa.array([], pa.bool_())
    first = pc.not_equal(g.slice(1), g.slice(0, len(g) - 1))
    return t, pa.concat_arrays([pa.array([True]), first])
