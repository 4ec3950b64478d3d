"""dedup exact and by URL: normalisation and keep rules, one URL normalisation for both URL dedups
(`dedup_url` and `web_extract`'s)."""

from __future__ import annotations

import json

from dedup_corpus import read_clusters, read_kept_ids, run_dedup, write_jsonl_shards


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
    assert read_clusters(str(plain)) == {"a": ("b", False), "b": ("b", True), "e": ("b", False)}
    assert sorted(read_kept_ids(str(plain))) == ["b", "c", "d"]
    norm = tmp_path / "norm"
    run_dedup(norm, str(tmp_path / "in.jsonl"), "dedup_exact", workers=1, normalise=["whitespace", "case"], keep=["fewest_stars", "smallest_id"])
    assert sorted(read_kept_ids(str(norm))) == ["c", "d"]
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
    assert read_clusters(str(tmp_path / "run")) == {"1": ("1", True), "2": ("1", False)}
    stats = json.load(open(tmp_path / "run" / "dedup" / "_stats.json"))
    assert stats["balanced"] and stats["dropped"] == {"duplicate_url": {"docs": 1, "bytes": 5}}


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
        assert sorted(read_kept_ids(str(run_dir))) == expected
        stats = json.load(open(run_dir / "dedup" / "_stats.json"))
        assert stats["balanced"] and stats["dropped"]["duplicate_url"]["docs"] == len(rows) - len(expected)
    run_dedup(tmp_path / "url", d, "dedup_url", workers=1, keep=["first"])
    assert sorted(read_kept_ids(str(tmp_path / "url"))) == expected
