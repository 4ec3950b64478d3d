"""dedup's graph work: big LSH buckets resolved without losing a similar pair, and distributed connected
components equal to scipy's."""

from __future__ import annotations

import itertools
import os
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from dedup_corpus import jaccard_pairs, odd_first_bucket, run_graph


def test_big_bucket_resolution_matches_brute_force_components():
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from dedup.big_buckets import Similarity, jaccard, resolve

    def partition(n, edges):
        a, b = zip(*edges) if edges else ((), ())
        labels = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)[1]
        return sorted(sorted(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels))

    rng = random.Random(1)
    for _ in range(60):
        n, t = rng.randint(9, 30), rng.choice([0.5, 0.7, 0.8])
        bases = [rng.sample(range(300), rng.randint(20, 60)) for _ in range(rng.randint(1, 5))]
        sets = {}
        for i in range(n):  # members drawn from a few bases, each edited a random amount
            b = list(rng.choice(bases))
            for _ in range(rng.randint(0, len(b) // 3)):
                b[rng.randrange(len(b))] = rng.randrange(300)
            sets[i] = np.unique(np.array(b, dtype=np.uint64))
        edges, unchecked = resolve(list(range(n)), Similarity(sets), t)
        assert unchecked == 0 and all(jaccard(sets[a], sets[b]) >= t for a, b in edges)
        truth = [(a, b) for a, b in itertools.combinations(range(n), 2) if jaccard(sets[a], sets[b]) >= t]
        assert partition(n, edges) == partition(n, truth)
    # the work bound: members of a bucket of mutually dissimilar documents that ran out of checks are counted
    sets = {i: np.arange(i * 10, i * 10 + 10, dtype=np.uint64) for i in range(12)}
    assert resolve(list(range(12)), Similarity(sets), 0.7, budget=4) == ([], 12 - 5)


def test_big_bucket_with_an_odd_first_member_loses_no_similar_pair(tmp_path):
    """Every document in one LSH bucket larger than ALL_PAIRS_UP_TO, the first unlike all the others:
    a star from it verifies nothing, yet every pair at Jaccard >= 0.7 must end in one cluster."""
    from dedup import steps, work
    from pipeline import documents

    rows = [{"id": f"d{i:02d}", "text": t, "metadata": "{}"} for i, t in enumerate(odd_first_bucket(12))]
    similar = [p for p, j in jaccard_pairs(rows).items() if j >= 0.7]
    assert len(rows) > steps.ALL_PAIRS_UP_TO and not any("d00" in p for p in similar)
    assert ("d01", "d11") not in similar and len(similar) < 55  # a chain, not all pairwise similar
    inp = tmp_path / "in"
    inp.mkdir()
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in documents.SCHEMA.names} for r in rows], schema=documents.SCHEMA),
                   inp / "part-00000.parquet")
    wdir = str(tmp_path / "work")
    common = dict(input_dirs=[str(inp)], work_dir=wdir, tasks=1, partitions=3)
    steps.Signatures(**common, ngram=5, tokenizer="code", num_perm=112, seed=1, bands=14, rows=8, stars_field="stars", sets=True).run()
    refs = work.make_ref(0, np.arange(len(rows)))  # then every document in one bucket
    work.write_parts(os.path.join(wdir, "bands", "t00000.parquet"),
                     pa.table({"key": np.full(len(rows), 42, np.uint64), "ref": refs}, schema=steps.BAND_SCHEMA), np.zeros(len(rows)))
    phases = [steps.Buckets(**common, all_pairs=True), steps.Verify(**common, threshold=0.7)]
    for step in phases:
        step.run(None, 0, 1)
    rounds = run_graph(common, str(tmp_path))
    assert rounds >= 2
    clusters = {r["id"]: r["cluster_id"] for r in pq.read_table(tmp_path / "clusters.parquet").to_pylist()}
    assert set(clusters) == {r["id"] for r in rows[1:]} and len(set(clusters.values())) == 1
    assert phases[0].stats["big_buckets"].total == 1 and phases[1].stats["big_bucket_unchecked_members"].total == 0
    assert phases[1].stats["big_bucket_checks"].total < 55  # fewer than all pairs of the 11 similar ones


def test_distributed_components_equal_brute_force(tmp_path):
    """Star rounds over partitions and several tasks find scipy's components, each labelled by its
    smallest node, on random graphs with long chains (many rounds) and big stars."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from dedup import graph, work
    from dedup.steps import unique_edges

    rng = np.random.default_rng(3)
    for trial in range(6):
        n = int(rng.integers(50, 400))
        nodes = rng.choice(np.arange(1, 10**6, dtype=np.uint64), size=n, replace=False)
        e = [rng.integers(0, n, size=(int(rng.integers(0, n)), 2))]
        chain = rng.permutation(n)[: n // 2]  # a path through half the nodes, in random order
        e.append(np.stack([chain[:-1], chain[1:]], axis=1))
        e.append(np.stack([np.full(n // 5, chain[0]), rng.integers(0, n, n // 5)], axis=1))
        idx = np.concatenate(e)
        edges = unique_edges(nodes[idx[:, 0]], nodes[idx[:, 1]])
        wdir = str(tmp_path / f"g{trial}")
        partitions, tasks = int(rng.integers(1, 9)), int(rng.integers(1, 4))
        with work.PartWriter(work.task_file(os.path.join(wdir, graph.round_dir(0)), 0), work.EDGE_SCHEMA) as w:
            graph.add_both_ways(w, edges, partitions)
        common = dict(input_dirs=[], work_dir=wdir, tasks=1, partitions=partitions)
        k = 1
        while True:
            for rank in range(tasks):
                graph.StarRound(**common, round=k).run(None, rank, tasks)
            if graph.converged(wdir, k):
                break
            k += 1
        found = {}
        for q in range(partitions):
            u, v, starts, _ = graph.neighbourhoods(work.PartReader(work.glob(os.path.join(wdir, graph.round_dir(k)), "t*.parquet"),
                                                                   work.EDGE_SCHEMA).read(q))
            found.update(zip(u[starts].tolist(), np.minimum(u[starts], v[starts]).tolist()))
        sorted_nodes = np.unique(edges.reshape(-1))
        inv = np.searchsorted(sorted_nodes, edges)
        m = len(sorted_nodes)
        labels = connected_components(coo_matrix((np.ones(len(inv)), (inv[:, 0], inv[:, 1])), shape=(m, m)), directed=False)[1]
        smallest = {c: sorted_nodes[labels == c].min() for c in np.unique(labels)}
        assert found == {int(x): int(smallest[c]) for x, c in zip(sorted_nodes, labels)}, trial
        assert k < 40
