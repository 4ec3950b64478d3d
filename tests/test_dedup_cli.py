"""`codecurate dedup`: parquet read in place with custom fields, cut by row groups over tasks, resumed, its
report section, and errors in one line."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
from dedup_corpus import planted_corpus, read_clusters, read_kept_ids

from pipeline import storage
from pipeline.cli import main as cli_main


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
    ids = set(read_kept_ids(str(out)))
    assert len(ids) == len(rows) - stats["duplicates_removed"] and ids <= {r["id"] for r in rows}
    # the input is read in place: the output holds the kept documents, clusters and stats (and the run's logs)
    assert sorted(os.listdir(out)) == ["dedup", "recipe.json"]
    assert sorted(os.listdir(out / "dedup")) == ["_SUCCESS", "_logs", "_stats.json", "clusters.parquet", "dedup_stats.json",
                                                 "part-00000.parquet"]
    # one file cut by row groups over 3 tasks: the same clusters, the kept documents in 3 shards
    split = tmp_path / "split"
    assert cli_main([*argv[:4], str(split), *argv[5:], "--tasks", "3"]) == 0
    assert read_clusters(str(split)) == read_clusters(str(out)) and len(storage.list_shards([str(split / "dedup")])) == 3
    assert sorted(read_kept_ids(str(split))) == sorted(ids)
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
