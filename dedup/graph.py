"""Connected components of the duplicate-pair graph, partition by partition: alternating large-star
and small-star rounds (Kiveris et al., "Connected Components in MapReduce and Beyond", 2014).

Edges are stored both ways, `(u, v)` in the partition of `u`, so a partition holds the whole
neighbourhood of each of its nodes. A large-star round links every neighbour larger than u to
the smallest node of u's neighbourhood; a small-star round links u and its smaller neighbours
to the smallest of them. Both keep the components, and alternating them reaches a forest of
stars, each centred on its component's smallest ref, in O(log^2 n) rounds. A round's task
writes one edge file (by partition) and a flag saying whether its input was already all
stars; the stage adds rounds until a round's input was stars everywhere (then its output equals
its input). A task holds one partition's edges at a time: O(edges / partitions).
`Label` then gives each member its star's centre as cluster label, by the centre's partition.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from datatrove.data import DocumentsPipeline

from dedup import keep as keeping
from dedup import work
from dedup.phase import WorkStep
from pipeline import storage

MAX_ROUNDS = 200
LABELLED_SCHEMA = keeping.MEMBER_SCHEMA.append(pa.field("cluster", pa.uint64()))


def round_dir(k: int) -> str:
    return f"cc/r{k:03d}"


def add_both_ways(writer: work.PartWriter, e: np.ndarray, partitions: int) -> None:
    """Undirected edges (n, 2) as (a, b) in a's partition and (b, a) in b's."""
    if len(e):
        a = np.concatenate([e[:, 0], e[:, 1]])
        b = np.concatenate([e[:, 1], e[:, 0]])
        writer.add(pa.table({"a": a, "b": b}, schema=work.EDGE_SCHEMA), work.spread(a, partitions))


def neighbourhoods(t: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(u, v) sorted without repeats, and each node's group (start, size) in them."""
    u, v = t.column("a").to_numpy(), t.column("b").to_numpy()
    o = np.lexsort((v, u))
    u, v = u[o], v[o]
    if len(u):
        new = np.concatenate([[True], (u[1:] != u[:-1]) | (v[1:] != v[:-1])])
        u, v = u[new], v[new]
    starts = np.flatnonzero(np.concatenate([[True], u[1:] != u[:-1]])) if len(u) else np.empty(0, np.int64)
    sizes = np.diff(np.append(starts, len(u)))
    return u, v, starts, sizes


def is_stars(u, v, starts, sizes) -> bool:
    """Every node is a centre (all neighbours larger) or a leaf (one neighbour, smaller)."""
    vmin = v[starts]
    return bool(np.all((vmin > u[starts]) | ((sizes == 1) & (vmin < u[starts]))))


def large_star(u, v, starts, sizes) -> np.ndarray:
    m = np.repeat(np.minimum(u[starts], v[starts]), sizes)
    larger = v > u
    return np.stack([v[larger], m[larger]], axis=1)


def small_star(u, v, starts, sizes) -> np.ndarray:
    m_node = np.minimum(u[starts], v[starts])
    m = np.repeat(m_node, sizes)
    smaller = (v < u) & (v != m)
    has_smaller = v[starts] < u[starts]
    return np.concatenate([np.stack([v[smaller], m[smaller]], axis=1),
                           np.stack([u[starts][has_smaller], m_node[has_smaller]], axis=1)])


class StarRound(WorkStep):
    """Round k over partitions `rank::world_size`: large-star when k is odd, small-star when even."""

    name = "components round"

    def __init__(self, input_dirs, work_dir, *, tasks, partitions, source=None, round: int):
        super().__init__(input_dirs, work_dir, tasks=tasks, partitions=partitions, source=source)
        self.round = round

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        k = self.round
        reader = self.parts(round_dir(k - 1), work.EDGE_SCHEMA)
        stars, n = True, 0
        with work.PartWriter(work.task_file(self.path(round_dir(k)), rank), work.EDGE_SCHEMA) as out:
            for _, t in reader.partitions(work.mine(self.partitions, rank, world_size)):
                with self.track_time():
                    hood = neighbourhoods(t)
                    if not len(hood[0]):
                        continue
                    stars &= is_stars(*hood)
                    e = (large_star if k % 2 else small_star)(*hood)
                    n += len(e)
                    add_both_ways(out, e, self.partitions)
        self.stat_update("edges_out", value=n)
        work.write_count(self.path(round_dir(k) + "-flags"), rank, not_stars=int(not stars), edges=n)


def converged(work_dir: str, k: int) -> bool:
    """Whether round k's input was all stars (so its output is final)."""
    return work.read_counts(storage.join(work_dir, round_dir(k) + "-flags")).get("not_stars", 1) == 0


class Label(WorkStep):
    """Members of the final stars (round `round`), each with its centre, by the centre's partition."""

    name = "cluster labels"

    def __init__(self, input_dirs, work_dir, *, tasks, partitions, source=None, round: int):
        super().__init__(input_dirs, work_dir, tasks=tasks, partitions=partitions, source=source)
        self.round = round

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        edges = self.parts(round_dir(self.round), work.EDGE_SCHEMA)
        members = self.parts("members", keeping.MEMBER_SCHEMA)
        with work.PartWriter(work.task_file(self.path("labelled"), rank), LABELLED_SCHEMA) as out:
            mine = work.mine(self.partitions, rank, world_size)
            for (_, t), (_, m) in zip(edges.partitions(mine), members.partitions(mine)):
                with self.track_time():
                    u, v, starts, _ = neighbourhoods(t)
                    if not len(u):
                        continue
                    nodes, centre = u[starts], np.minimum(u[starts], v[starts])
                    refs = m.column("ref").to_numpy()
                    pos = np.clip(np.searchsorted(nodes, refs), 0, len(nodes) - 1)
                    hit = nodes[pos] == refs
                    c = centre[pos[hit]]
                    out.add(m.filter(pa.array(hit)).append_column("cluster", pa.array(c, pa.uint64())),
                            work.spread(c, self.partitions))
