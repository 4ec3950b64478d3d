"""dedup: datasketch-identical signatures, planted near-duplicates against brute force, exact/URL dedup,
identical clusters for any task count, executor and after a resume, the CLI and the report."""

from __future__ import annotations

import itertools
import json
import os
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasketch import MinHash, MinHashLSH
from dedup_corpus import jaccard_pairs, odd_first_bucket, planted_corpus, run_dedup, run_graph, write_jsonl_shards
from pydantic import ValidationError

from dedup.minhash import MinHasher, band_keys, lsh_params
from dedup.shingles import shingle_bytes, shingle_hash, shingle_hashes, tokens
from dedup.stages import DedupNear
from pipeline import storage
from pipeline.cli import main as cli_main

TEXTS = [
    "def add(a, b):\n    return a + b  # sum\n",
    "for (int i = 0; i < n; ++i) { total += x[i]; }",
    "naïve café — 中文字符 x->y != z",
    "one",
    "",
    "   \n\t ",
    "x = 1\n" * 300,
]


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


def _clusters(run_dir) -> dict[str, tuple[str, bool]]:
    t = pq.read_table(os.path.join(run_dir, "dedup", "clusters.parquet")).to_pylist()
    return {r["id"]: (r["cluster_id"], r["kept"]) for r in t}


def _kept_ids(run_dir) -> list[str]:
    out = []
    for f in storage.list_shards([os.path.join(run_dir, "dedup")]):
        out += pq.read_table(f, columns=["id"]).column("id").to_pylist()
    return out


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
    clusters = _clusters(near4)
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
    kept = _kept_ids(near4)
    assert sorted(kept) == sorted(i for i in by_id if i not in clusters or clusters[i][1])
    stats = json.load(open(os.path.join(near4, "dedup", "_stats.json")))
    assert stats["balanced"] and stats["in"]["docs"] == len(rows)
    assert stats["dropped"]["near_duplicate"]["docs"] == len(rows) - len(kept)
    dstats = json.load(open(os.path.join(near4, "dedup", "dedup_stats.json")))
    assert dstats["docs"] == len(rows) and dstats["duplicates_removed"] == len(rows) - len(kept)
    assert sum(int(k) * v for k, v in dstats["size_histogram"].items()) == len(clusters)


def test_clusters_identical_for_one_and_four_tasks(planted, near4, tmp_path):
    run_dedup(tmp_path / "one", planted[1], "dedup_near", workers=1, tasks=1)
    assert _clusters(str(tmp_path / "one")) == _clusters(near4)
    assert sorted(_kept_ids(str(tmp_path / "one"))) == sorted(_kept_ids(near4))


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
    assert _clusters(str(tmp_path / "ray")) == _clusters(near4)
    for i in range(4):
        name = f"part-{i:05d}.parquet"
        assert open(tmp_path / "ray" / "dedup" / name, "rb").read() == open(os.path.join(near4, "dedup", name), "rb").read()


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


def _write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def test_exact_dedup_with_normalisation_and_keep_rule(tmp_path):
    rows = [
        {"id": "a", "text": "print('hi')\n", "stars": 3},
        {"id": "b", "text": "print('hi')\n", "stars": 9},
        {"id": "c", "text": "PRINT('hi')   \n\n", "stars": 1},
        {"id": "d", "text": "something else", "stars": 0},
        {"id": "e", "text": "print('hi')\n", "stars": 9},
    ]
    _write_jsonl(tmp_path / "in.jsonl", rows)
    with open(tmp_path / "in.jsonl", "a") as f:
        f.write("{not json\n")
    plain = tmp_path / "plain"
    run_dedup(plain, str(tmp_path / "in.jsonl"), "dedup_exact", workers=1)
    assert _clusters(str(plain)) == {"a": ("b", False), "b": ("b", True), "e": ("b", False)}
    assert sorted(_kept_ids(str(plain))) == ["b", "c", "d"]
    norm = tmp_path / "norm"
    run_dedup(norm, str(tmp_path / "in.jsonl"), "dedup_exact", workers=1, normalise=["whitespace", "case"], keep=["fewest_stars", "smallest_id"])
    assert sorted(_kept_ids(str(norm))) == ["c", "d"]
    input_stats = json.load(open(norm / "input" / "_stats.json"))
    assert input_stats["dropped"]["bad_json"]["docs"] == 1 and input_stats["balanced"]
    stats = json.load(open(norm / "dedup" / "_stats.json"))
    assert stats["balanced"] and stats["dropped"]["exact_duplicate"]["docs"] == 3


def test_url_dedup_normalises_urls(tmp_path):
    rows = [
        {"id": "1", "text": "long page text", "url": "HTTP://Example.com:80/a#top"},
        {"id": "2", "text": "short", "url": "http://example.com/a"},
        {"id": "3", "text": "other", "url": "http://example.com/b"},
        {"id": "4", "text": "no url"},
    ]
    _write_jsonl(tmp_path / "web.jsonl", rows)
    run_dedup(tmp_path / "run", str(tmp_path / "web.jsonl"), "dedup_url", workers=1)
    assert _clusters(str(tmp_path / "run")) == {"1": ("1", True), "2": ("1", False)}
    stats = json.load(open(tmp_path / "run" / "dedup" / "_stats.json"))
    assert stats["balanced"] and stats["dropped"] == {"duplicate_url": {"docs": 1, "bytes": 5}}


def test_cli_near_on_parquet_with_custom_fields(tmp_path, capsys):
    from dedup.report import sections

    rows = planted_corpus(seed=3, bases=20, noise=10)
    pq.write_table(pa.table({"content": [r["text"] for r in rows], "name": [r["id"] for r in rows]}), tmp_path / "docs.parquet",
                   row_group_size=16)
    out = tmp_path / "out"
    argv = ["dedup", "near", str(tmp_path / "docs.parquet"), "--output", str(out), "--text-field", "content",
            "--id-field", "name", "--threshold", "0.8", "--quiet", "--workers", "1"]
    assert cli_main(argv) == 0
    msg = capsys.readouterr().out
    stats = json.load(open(out / "dedup" / "dedup_stats.json"))
    assert f"{len(rows)} documents, {stats['clusters']} duplicate clusters" in msg and stats["clusters"] >= 10
    ids = set(_kept_ids(str(out)))
    assert len(ids) == len(rows) - stats["duplicates_removed"] and ids <= {r["id"] for r in rows}
    # the input is read in place: the output holds the kept documents, clusters and stats (and the run's logs)
    assert sorted(os.listdir(out)) == ["dedup", "recipe.json"]
    assert sorted(os.listdir(out / "dedup")) == ["_SUCCESS", "_logs", "_stats.json", "clusters.parquet", "dedup_stats.json",
                                                 "part-00000.parquet"]
    # one file cut by row groups over 3 tasks: the same clusters, the kept documents in 3 shards
    split = tmp_path / "split"
    assert cli_main([*argv[:4], str(split), *argv[5:], "--tasks", "3"]) == 0
    assert _clusters(str(split)) == _clusters(str(out)) and len(storage.list_shards([str(split / "dedup")])) == 3
    assert sorted(_kept_ids(str(split))) == sorted(ids)
    capsys.readouterr()
    assert cli_main(argv) == 0  # a second run resumes (nothing to do) and says the same
    assert msg == capsys.readouterr().out
    (title, html), = sections(str(out / "dedup"))
    assert title == "Duplicate clusters" and "data:image/png;base64," in html and "duplicate rate" in html


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli_main(["dedup", "exact", str(tmp_path / "missing"), "--output", str(tmp_path / "o")]) == 2
    assert "input not found" in capsys.readouterr().err
    (tmp_path / "x.jsonl").write_text('{"text": "a"}\n')
    assert cli_main(["dedup", "near", str(tmp_path / "x.jsonl"), "--output", str(tmp_path / "o"), "--bands", "9"]) == 2
    assert "set both bands and rows" in capsys.readouterr().err


def test_partitions_are_independent_of_tasks(planted, near4, tmp_path):
    """Any (tasks, partitions) gives the clusters and kept set of the default run (4 tasks, 256 partitions)."""
    for tasks, partitions in [(3, 1), (2, 7), (5, 64)]:
        run_dir = tmp_path / f"t{tasks}p{partitions}"
        run_dedup(run_dir, planted[1], "dedup_near", workers=1, tasks=tasks, partitions=partitions)
        assert _clusters(str(run_dir)) == _clusters(near4), (tasks, partitions)
        assert sorted(_kept_ids(str(run_dir))) == sorted(_kept_ids(near4))


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


FOUR_SPELLINGS = [
    "http://example.com/docs/page?id=3",
    "HTTPS://www.Example.COM:443/docs/page?id=3#intro",
    "https://example.com/docs/page?utm_source=feed&id=3",
    "http://EXAMPLE.com:80/docs/%70age?id=3",
]


def test_one_url_normalisation_for_both_url_dedups():
    from dedup.keys import url_key
    from pipeline.web import urls

    assert len({urls.dedup_key(u) for u in FOUR_SPELLINGS}) == 1
    assert len({url_key(u) for u in FOUR_SPELLINGS}) == 1
    assert url_key("http://example.com/docs/other") != url_key(FOUR_SPELLINGS[0])


def test_web_extract_url_dedup_keeps_the_first_in_shard_order(tmp_path):
    """Four spellings of one page and repeats of others over four shards: web_extract keeps the first
    of each URL in shard order, for 1 or 3 tasks, like dedup_url with keep: [first]."""
    from pipeline.builtin import Files
    from pipeline.recipe import Recipe
    from pipeline.runner import Runner
    from pipeline.web import urls
    from pipeline.web.stages import WebExtract

    rows = []
    for i in range(24):
        url = FOUR_SPELLINGS[i % 4] if i % 3 == 0 else f"https://site{i % 5}.org/p"
        rows.append({"id": f"d{i:02d}", "text": f"page {i}", "url": url, "format": "markdown"})
    d = write_jsonl_shards(rows, tmp_path / "in")
    order = [r for s in range(4) for r in rows[s::4]]  # shard order
    first = {}
    for r in order:
        first.setdefault(urls.dedup_key(r["url"]), r["id"])
    expected = sorted(first.values())
    for tasks in (1, 3):
        run_dir = tmp_path / f"web{tasks}"
        spec = WebExtract(name="dedup", kind="web_extract", input="input", tasks=tasks, partitions=5)
        Runner(Recipe(name="t", run_dir=str(run_dir), seed=0, executor="local", workers=1,
                      stages=[Files(name="input", kind="files", path=d), spec]), progress=False).run()
        assert sorted(_kept_ids(str(run_dir))) == expected
        stats = json.load(open(run_dir / "dedup" / "_stats.json"))
        assert stats["balanced"] and stats["dropped"]["duplicate_url"]["docs"] == len(rows) - len(expected)
    run_dedup(tmp_path / "url", d, "dedup_url", workers=1, keep=["first"])
    assert sorted(_kept_ids(str(tmp_path / "url"))) == expected


def test_centres_split_chains_so_every_removed_document_resembles_its_kept_one(tmp_path):
    """A chain of versions (neighbours similar, ends not) is one component; `clusters: centres` splits it
    so that each removed document reaches the threshold with the document kept in its place."""
    rows = [{"id": f"c{i:02d}", "text": t} for i, t in enumerate(odd_first_bucket(16, seed=9)[1:])]
    rows += planted_corpus(seed=4, bases=10, noise=5)
    truth = jaccard_pairs(rows)
    d = write_jsonl_shards(rows, tmp_path / "in", shards=2)
    run_dedup(tmp_path / "comp", d, "dedup_near", workers=1, tasks=2, partitions=3, clusters="components")
    run_dedup(tmp_path / "cent", d, "dedup_near", workers=1, tasks=2, partitions=3)  # centres: the default
    comp, cent = _clusters(str(tmp_path / "comp")), _clusters(str(tmp_path / "cent"))
    unlike = [i for i in comp if not comp[i][1] and truth.get(tuple(sorted((i, comp[i][0]))), 0) < 0.7]
    assert unlike and all(i.startswith("c") for i in unlike)  # components: chain members removed for an unlike kept one
    assert len({cent[i][0] for i in cent if i.startswith("c")}) > len({comp[i][0] for i in comp if i.startswith("c")})
    for i, (cid, kept) in cent.items():
        assert kept == (i == cid)
        if not kept:
            assert truth[tuple(sorted((i, cid)))] >= 0.7, (i, cid)
            assert comp[i][0] == comp[cid][0]  # a split of the components, never a merge
    assert sorted(_kept_ids(str(tmp_path / "cent"))) == sorted(r["id"] for r in rows if r["id"] not in cent or cent[r["id"]][1])
    with pytest.raises(ValidationError, match="needs verify"):
        DedupNear(name="d", kind="dedup_near", input="x", clusters="centres", verify=False)
    assert DedupNear(name="d", kind="dedup_near", input="x").clusters == "centres"
    assert DedupNear(name="d", kind="dedup_near", input="x", level="repo").clusters == "centres"
    assert DedupNear(name="d", kind="dedup_near", input="x", verify=False).clusters == "components"
    assert DedupNear(name="d", kind="dedup_near", input="x", level="page").clusters == "components"
