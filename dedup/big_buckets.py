"""Verified edges for LSH buckets too big to check all their pairs, losing no pair at Jaccard >= threshold.

A star from a bucket's first member misses the similar pairs among the others when the first
one is the odd one out; all pairs cost n^2/2 checks. Instead the members are taken in order and
joined to groups. Every group is connected by verified edges and has a representative and a
radius (the largest Jaccard distance, 1 - J, of a member to it). Jaccard distance is a metric,
so a member x at distance d from a representative is farther than 1 - threshold from every
member y with d - dist(y, rep) > 1 - threshold: such members, and whole groups whose radius
rules them all out, are skipped unchecked. Otherwise x is checked against the representative,
then against the members not ruled out, until one verified edge joins x to the group (one is
enough: the group is connected). A member joined to no group starts one; groups x joins are
merged. So every pair of the bucket at Jaccard >= threshold ends up in one connected component,
which is all the clusters need, and a bucket of near-duplicates costs about n checks.

Bound: at most `budget` checks per member, so at most n x budget per bucket. Only a bucket with
more mutually dissimilar groups than that (its members share `rows` equal minhashes, which
dissimilar documents rarely do) can leave pairs unchecked; such members are counted.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

CHECKS_PER_MEMBER = 64
_SLACK = 1e-9  # rounding of the distances never rules out a pair that the check would pass


def jaccard(x: np.ndarray, y: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted arrays of unique shingle hashes: the shorter one's hashes looked up
    in the longer (a binary search each, in C; `np.intersect1d` sorts both again)."""
    if len(x) > len(y):
        x, y = y, x
    if len(x) == len(y) and np.array_equal(x, y):
        return 1.0 if len(x) else 0.0
    if not len(x):
        return 0.0
    inter = int(np.count_nonzero(y.take(y.searchsorted(x), mode="clip") == x))
    return inter / (len(x) + len(y) - inter)


class Similarity:
    """Jaccard similarity of documents by ref, each pair computed once (near-duplicates share many buckets).

    A pair is remembered under one int (`a << 64 | b`): about half the bytes of a tuple of two ints."""

    def __init__(self, sets):
        self.sets = sets
        self.known: dict[int, float] = {}

    def __call__(self, a: int, b: int) -> float:
        pair = a << 64 | b if a < b else b << 64 | a
        s = self.known.get(pair)
        if s is None:
            s = self.known[pair] = jaccard(self.sets[a], self.sets[b])
        return s


class _Group:
    __slots__ = ("rep", "radius", "members", "parent")

    def __init__(self, rep: int, index: int):
        self.rep, self.radius, self.members, self.parent = rep, 0.0, [], index


def resolve(refs: list[int], similarity: Callable[[int, int], float], threshold: float,
            budget: int = CHECKS_PER_MEMBER) -> tuple[list[tuple[int, int]], int]:
    """Verified edges (a, b) that join every pair of `refs` at similarity >= threshold into one component.

    Returns the edges and the number of members whose check budget ran out.
    """
    far = 1.0 - threshold + _SLACK
    groups: list[_Group] = []

    def root(i: int) -> int:
        while groups[i].parent != i:
            groups[i].parent = groups[groups[i].parent].parent
            i = groups[i].parent
        return i

    edges: list[tuple[int, int]] = []
    over = 0
    for x in refs:
        joined: list[tuple[int, float]] = []  # (group, distance of x to its representative)
        done: set[int] = set()
        checks, short = 0, False
        for gi, g in enumerate(groups):
            if root(gi) in done:
                continue
            if checks >= budget:
                short = True
                break
            s = similarity(x, g.rep)
            checks += 1
            d = 1.0 - s
            hit = g.rep if s >= threshold else None
            if hit is None and d - g.radius <= far:
                for y, dy in g.members:
                    if d - dy > far:
                        continue
                    if checks >= budget:
                        short = True
                        break
                    checks += 1
                    if similarity(x, y) >= threshold:
                        hit = y
                        break
            if hit is not None:
                edges.append((hit, x))
                joined.append((gi, d))
                done.add(root(gi))
        over += short
        if not joined:
            groups.append(_Group(x, len(groups)))
            continue
        first, d = joined[0]
        groups[first].members.append((x, d))
        groups[first].radius = max(groups[first].radius, d)
        for gi, _ in joined[1:]:
            groups[root(gi)].parent = root(first)
    return edges, over
