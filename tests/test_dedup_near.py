"""dedup near: datasketch-identical signatures and LSH parameters, planted near-duplicates against brute force,
identical clusters for any task count, partition count, executor and after a resume, and `clusters: centres`."""

from __future__ import annotations

import itertools
import json
import os

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH
from dedup_corpus import jaccard_pairs, odd_first_bucket, planted_corpus, read_clusters, read_kept_ids, run_dedup, write_jsonl_shards
from pydantic import ValidationError

from dedup.minhash import MinHasher, band_keys, lsh_params
from dedup.shingles import shingle_bytes, shingle_hash, shingle_hashes, tokens
from dedup.stages import DedupNear

TEXTS = [
    "def add(a, b):\n    return a + b  # sum\n",
    "for (int i = 0; i < n; ++i) { total += x[i]; }",
    "naïve café — 中文字符 x->y != z",
    "one",
    "",
    "   \n\t ",
    "x = 1\n" * 300,
]


def test_repeated_texts_reuse_their_shingles_and_keys():
    """`Signatures` hashes a text seen recently (or earlier in the batch) once: the same sets and band keys as
    hashing every text, also when the cache is too small to keep anything."""
    from dedup import steps
    from dedup.shingles import shingle_set

    step = steps.Signatures([], "/nonexistent", tasks=1, partitions=4, ngram=5, tokenizer="code", num_perm=112, seed=1,
                            bands=14, rows=8, stars_field="stars", sets=True)
    hasher = MinHasher(112, 1)
    batches = [TEXTS + TEXTS[:3], TEXTS[2:] + TEXTS[:2]]
    for max_bytes in (1 << 20, 0):
        recent = steps._SameText(max_bytes)
        for texts in batches:
            sets, keys = step._hash(texts, hasher, recent)
            for t, s, k in zip(texts, sets, keys):
                want = shingle_set(t, 5, "code")
                np.testing.assert_array_equal(s, want)
                if len(want):
                    np.testing.assert_array_equal(k, band_keys(hasher.signatures([want]), 14, 8)[0])
                else:
                    assert k is None
        assert (len(recent.items) > 0) == (max_bytes > 0) and recent.bytes <= max_bytes


@pytest.mark.parametrize("num_perm,seed", [(112, 1), (256, 42)])
def test_signatures_equal_datasketch_minhash(num_perm, seed):
    ours = MinHasher(num_perm, seed).signatures([shingle_hashes(t, 5) for t in TEXTS])
    for text, sig in zip(TEXTS, ours):
        ref = MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash)
        ref.update_batch(shingle_bytes(text, 5))
        assert ref.hashvalues.dtype == sig.dtype
        np.testing.assert_array_equal(ref.hashvalues, sig)


def test_code_tokens_keep_identifiers_and_operators():
    assert tokens("foo_bar1 += baz->qux;") == [b"foo_bar1", b"+=", b"baz", b"->", b"qux", b";"]
    assert tokens("Hello, World 中文", "words") == [b"hello", b"world", "中".encode(), "文".encode()]
    # a document shorter than n tokens is one shingle
    assert shingle_bytes("a + b", 5) == [b"a + b"]


def test_lsh_params_follow_datasketch():
    for threshold, num_perm in [(0.7, 112), (0.7, 256), (0.85, 128)]:
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        assert lsh_params(threshold, num_perm) == (lsh.b, lsh.r)
    spec = DedupNear(name="d", kind="dedup_near", input="x", bands=None, rows=None, num_perm=256)
    assert spec.lsh() == (MinHashLSH(threshold=0.7, num_perm=256).b, MinHashLSH(threshold=0.7, num_perm=256).r)
    with pytest.raises(ValidationError, match="set both bands and rows"):
        DedupNear(name="d", kind="dedup_near", input="x", bands=10, rows=None)
    with pytest.raises(ValidationError, match="exceeds num_perm"):
        DedupNear(name="d", kind="dedup_near", input="x", bands=20, rows=8)
    sigs = MinHasher(112).signatures([shingle_hashes(t) for t in TEXTS[:2]] * 2)
    keys = band_keys(sigs, 14, 8)
    assert keys.shape == (4, 14) and (keys[:2] == keys[2:]).all() and (keys[0] != keys[1]).all()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    rows = planted_corpus()
    d = write_jsonl_shards(rows, tmp_path_factory.mktemp("planted") / "in")
    return rows, d, jaccard_pairs(rows)


@pytest.fixture(scope="module")
def near4(planted, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("near4")
    run_dedup(run_dir, planted[1], "dedup_near", workers=1, tasks=4)
    return str(run_dir)


def test_near_dedup_recall_and_precision_against_brute_force(planted, near4):
    rows, _, truth = planted
    clusters = read_clusters(near4)
    same = lambda a, b: a in clusters and b in clusters and clusters[a][0] == clusters[b][0]  # noqa: E731
    should = [p for p, j in truth.items() if j >= 0.75]
    assert len(should) > 50 and min(truth[p] for p in truth if p[0][1:] == p[1][1:]) < 0.6  # the spread is real
    recall = sum(same(*p) for p in should) / len(should)
    predicted = [(a, b) for a in clusters for b in clusters if a < b and same(a, b)]
    precision = sum(truth.get(p, 0.0) >= 0.7 for p in predicted) / len(predicted)
    assert recall >= 0.95, recall
    assert precision >= 0.99, precision
    # one kept per cluster, by most stars, then longest, then smallest id
    by_id = {r["id"]: r for r in rows}
    for cid in {c for c, _ in clusters.values()}:
        members = sorted((m for m in clusters if clusters[m][0] == cid), key=lambda m: (-by_id[m]["stars"], -len(by_id[m]["text"]), m))
        assert [m for m in members if clusters[m][1]] == [members[0]] == [cid]
    kept = read_kept_ids(near4)
    assert sorted(kept) == sorted(i for i in by_id if i not in clusters or clusters[i][1])
    stats = json.load(open(os.path.join(near4, "dedup", "_stats.json")))
    assert stats["balanced"] and stats["in"]["docs"] == len(rows)
    assert stats["dropped"]["near_duplicate"]["docs"] == len(rows) - len(kept)
    dstats = json.load(open(os.path.join(near4, "dedup", "dedup_stats.json")))
    assert dstats["docs"] == len(rows) and dstats["duplicates_removed"] == len(rows) - len(kept)
    assert sum(int(k) * v for k, v in dstats["size_histogram"].items()) == len(clusters)


def test_clusters_identical_for_one_and_four_tasks(planted, near4, tmp_path):
    run_dedup(tmp_path / "one", planted[1], "dedup_near", workers=1, tasks=1)
    assert read_clusters(str(tmp_path / "one")) == read_clusters(near4)
    assert sorted(read_kept_ids(str(tmp_path / "one"))) == sorted(read_kept_ids(near4))


def test_resume_after_kill_between_phases_gives_identical_output(planted, near4, tmp_path):
    from pipeline.builtin import Files
    from pipeline.executors import make_executor
    from pipeline.recipe import Recipe
    from pipeline.runner import Runner
    from pipeline.stage import StageContext

    run_dir = str(tmp_path / "resumed")
    spec = DedupNear(name="dedup", kind="dedup_near", input="input", tasks=4)
    recipe = Recipe(
        name="t", run_dir=run_dir, seed=0, executor="local", workers=1,
        stages=[Files(name="input", kind="files", path=planted[1]), spec],
    )
    runner = Runner(recipe, progress=False)
    runner.run(["input"])
    # the "killed" run: signatures and buckets complete, then one bucket task lost its marker
    ctx = StageContext(run_dir=run_dir, stage="dedup", seed=0, input_dirs=[os.path.join(run_dir, "input")])
    for phase in itertools.islice(spec.phases(ctx), 2):  # each phase runs before the next is planned
        make_executor("local", phase.steps, phase.tasks, 1, os.path.join(run_dir, "dedup", "_logs", phase.name)).run()
    os.remove(os.path.join(run_dir, "dedup", "_logs", "signatures", "completions", "00002"))
    runner.run()
    for name in ["clusters.parquet"] + [f"part-{i:05d}.parquet" for i in range(4)]:
        with open(os.path.join(run_dir, "dedup", name), "rb") as a, open(os.path.join(near4, "dedup", name), "rb") as b:
            assert a.read() == b.read(), name
    assert json.load(open(os.path.join(run_dir, "dedup", "_stats.json")))["balanced"]


@pytest.mark.slow
def test_ray_gives_the_same_clusters_as_local(planted, near4, tmp_path):
    run_dedup(tmp_path / "ray", planted[1], "dedup_near", executor="ray", workers=2, tasks=4)
    assert read_clusters(str(tmp_path / "ray")) == read_clusters(near4)
    for i in range(4):
        name = f"part-{i:05d}.parquet"
        assert open(tmp_path / "ray" / "dedup" / name, "rb").read() == open(os.path.join(near4, "dedup", name), "rb").read()


def test_partitions_are_independent_of_tasks(planted, near4, tmp_path):
    """Any (tasks, partitions) gives the clusters and kept set of the default run (4 tasks, 256 partitions)."""
    for tasks, partitions in [(3, 1), (2, 7), (5, 64)]:
        run_dir = tmp_path / f"t{tasks}p{partitions}"
        run_dedup(run_dir, planted[1], "dedup_near", workers=1, tasks=tasks, partitions=partitions)
        assert read_clusters(str(run_dir)) == read_clusters(near4), (tasks, partitions)
        assert sorted(read_kept_ids(str(run_dir))) == sorted(read_kept_ids(near4))


def _work_files(run_dir) -> dict[str, int]:
    root = os.path.join(run_dir, "dedup", "_work")
    return {os.path.relpath(d, root): len(files) for d, _, files in os.walk(root) if files}


def test_intermediate_files_grow_with_tasks_not_with_partitions(planted, tmp_path):
    """Each phase writes one file (plus a count) per task, however many partitions: O(tasks + partitions)."""
    counts = {}
    for partitions in (2, 64):
        run_dir = tmp_path / f"p{partitions}"
        run_dedup(run_dir, planted[1], "dedup_near", workers=1, tasks=3, partitions=partitions)
        counts[partitions] = _work_files(run_dir)
        assert all(n <= 3 for n in counts[partitions].values()), counts[partitions]
    assert counts[2] == counts[64] and "signatures" not in counts[2]
    assert {"bands", "members", "sets", "edges", "cc/r000", "labelled", "decisions", "clusters"} <= set(counts[2])
    exact = tmp_path / "exact"
    run_dedup(exact, planted[1], "dedup_exact", workers=1, tasks=3, partitions=64)
    assert all(n <= 3 for n in _work_files(exact).values())


def test_centres_split_chains_so_every_removed_document_resembles_its_kept_one(tmp_path):
    """A chain of versions (neighbours similar, ends not) is one component; `clusters: centres` splits it
    so that each removed document reaches the threshold with the document kept in its place."""
    rows = [{"id": f"c{i:02d}", "text": t} for i, t in enumerate(odd_first_bucket(16, seed=9)[1:])]
    rows += planted_corpus(seed=4, bases=10, noise=5)
    truth = jaccard_pairs(rows)
    d = write_jsonl_shards(rows, tmp_path / "in", shards=2)
    run_dedup(tmp_path / "comp", d, "dedup_near", workers=1, tasks=2, partitions=3, clusters="components")
    run_dedup(tmp_path / "cent", d, "dedup_near", workers=1, tasks=2, partitions=3)  # centres: the default
    comp, cent = read_clusters(str(tmp_path / "comp")), read_clusters(str(tmp_path / "cent"))
    unlike = [i for i in comp if not comp[i][1] and truth.get(tuple(sorted((i, comp[i][0]))), 0) < 0.7]
    assert unlike and all(i.startswith("c") for i in unlike)  # components: chain members removed for an unlike kept one
    assert len({cent[i][0] for i in cent if i.startswith("c")}) > len({comp[i][0] for i in comp if i.startswith("c")})
    for i, (cid, kept) in cent.items():
        assert kept == (i == cid)
        if not kept:
            assert truth[tuple(sorted((i, cid)))] >= 0.7, (i, cid)
            assert comp[i][0] == comp[cid][0]  # a split of the components, never a merge
    assert sorted(read_kept_ids(str(tmp_path / "cent"))) == sorted(r["id"] for r in rows if r["id"] not in cent or cent[r["id"]][1])
    with pytest.raises(ValidationError, match="needs verify"):
        DedupNear(name="d", kind="dedup_near", input="x", clusters="centres", verify=False)
    assert DedupNear(name="d", kind="dedup_near", input="x").clusters == "centres"
    assert DedupNear(name="d", kind="dedup_near", input="x", level="repo").clusters == "centres"
    assert DedupNear(name="d", kind="dedup_near", input="x", verify=False).clusters == "components"
    assert DedupNear(name="d", kind="dedup_near", input="x", level="page").clusters == "components"
