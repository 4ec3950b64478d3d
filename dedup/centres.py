"""`clusters: centres`: split each connected component so that every removed document is a near-duplicate
of the document kept in its place.

Connected components join chains: release 1 ~ 2 ~ ... ~ 10 of a file is one cluster although release
1 and 10 share little, so the kept document can stand for members it barely resembles. Here each
component's members are taken in keep order; a member joins the first centre it reaches `threshold`
with (exact Jaccard of shingle sets), else it becomes a centre itself. Each centre is kept and its
members removed, so removed-vs-kept precision is 1 by construction, and centres are pairwise below the
threshold (none would be removed for another). The checks cost members x centres per component.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dedup import keep as keeping
from dedup.big_buckets import jaccard


def split(members: pa.Table, keep: list[str], shingles, threshold: float) -> pa.Table:
    """`members` (with `cluster`) relabelled by centre ref; members left alone at their centre are dropped.
    `shingles`: the members' shingle sets (`dedup.sets.Sets`)."""
    if not len(members):
        return members
    ranked, _ = keeping.rank_members(members, "cluster", keep)
    refs = ranked.column("ref").to_numpy()
    sets = shingles.views(refs)
    comp = ranked.column("cluster").to_numpy()
    centre = np.empty(len(refs), dtype=np.uint64)
    starts = np.flatnonzero(np.concatenate([[True], comp[1:] != comp[:-1]]))
    for s, e in zip(starts, np.append(starts[1:], len(refs))):
        centres: list[int] = []  # positions in `ranked`
        for i in range(s, e):
            hit = next((c for c in centres if jaccard(sets[i], sets[c]) >= threshold), None)
            if hit is None:
                centres.append(i)
                hit = i
            centre[i] = refs[hit]
    uniq, n = np.unique(centre, return_counts=True)
    counts = dict(zip(uniq.tolist(), n.tolist()))
    alone = np.array([counts[c] == 1 for c in centre.tolist()], dtype=bool)
    out = ranked.set_column(ranked.schema.get_field_index("cluster"), "cluster", pa.array(centre, pa.uint64()))
    return out.filter(pa.array(~alone))
