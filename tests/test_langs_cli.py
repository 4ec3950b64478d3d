"""`codecurate langs tag` (JSON lines, content only, directory walks, a light start) and the `tag_languages` stage."""

from __future__ import annotations

import json
import os


def test_cli_tag_jsonl_and_content_only(tmp_path, capsys):
    from pipeline.cli import main

    (tmp_path / "a.py").write_text("import os\nprint(os.getcwd())\n")
    (tmp_path / "b.bin").write_bytes(b"\x00\x01")
    assert main(["langs", "tag", "--jsonl", str(tmp_path / "a.py"), str(tmp_path / "b.bin")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["language"] for r in rows] == ["Python", None]
    assert set(rows[0]) == {"path", "language", "linguist", "kind", "strategy", "confidence"}
    assert rows[1]["reason"] == "binary"
    assert main(["langs", "tag", "--jsonl", "--content-only", str(tmp_path / "a.py")]) == 0
    assert json.loads(capsys.readouterr().out)["strategy"] == "classifier"
    assert main(["langs", "tag", str(tmp_path / "missing.c")]) == 1
    assert "missing.c" in capsys.readouterr().err


def test_cli_walks_directories_as_os_walk_does(tmp_path, capsys):
    """Files of a directory by name, then its subdirectories; `.git` and links to directories skipped;
    a FIFO is one line on stderr; paths are judged relative to the directory given."""
    from pipeline.cli import main

    (tmp_path / "z.py").write_text("print(1)\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "m.c").write_text("int main(void) { return 0; }\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "x.c").write_text("int x;\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / "a-link").symlink_to(tmp_path / "b", target_is_directory=True)
    os.mkfifo(tmp_path / "pipe")
    assert main(["langs", "tag", "--jsonl", str(tmp_path) + "/"]) == 0
    out = capsys.readouterr()
    rows = [json.loads(line) for line in out.out.splitlines()]
    assert [r["path"] for r in rows] == [str(tmp_path) + "/" + p for p in ("z.py", "b/m.c", "docs/x.c")]
    assert [r.get("reason") for r in rows] == [None, None, "documentation"]  # judged as "docs/x.c", not by tmp_path
    assert "pipe: skipped, not a regular file" in out.err


def test_cli_tags_many_files_in_a_pool_in_walk_order(tmp_path, capsys, monkeypatch):
    """Past PARALLEL_FROM files, chunks go to forked workers: the same rows in the same order as one process,
    with names and content only; an unreadable file is still a line on stderr and exit status 1."""
    import langs.cli
    from pipeline.cli import main

    monkeypatch.setattr(langs.cli, "PARALLEL_FROM", 10)
    monkeypatch.setattr(langs.cli, "CHUNK_FILES", 4)
    bodies = ["import os\nprint(os.sep)\n", "#include <stdio.h>\nint main(void) { return 0; }\n", "# Title\n\nSome *text*.\n",
              "fn main() { println!(\"hi\"); }\n", "SELECT a, b FROM t WHERE a > 1;\n"]
    for i in range(30):
        (tmp_path / f"d{i % 3}").mkdir(exist_ok=True)
        (tmp_path / f"d{i % 3}" / f"f{i:02d}{('.py', '.c', '.md', '.rs', '.sql')[i % 5]}").write_text(bodies[i % 5])
    (tmp_path / "d1" / "locked.py").write_text("x = 1\n")
    (tmp_path / "d1" / "locked.py").chmod(0)
    named = None
    for flags in ([], ["--content-only"]):
        outs = []
        for jobs in ("1", "3"):
            rc = main(["langs", "tag", "--jsonl", "--jobs", jobs, *flags, str(tmp_path)])
            outs.append((rc, capsys.readouterr()))
        (rc1, one), (rc3, pooled) = outs
        assert pooled.out == one.out and len(one.out.splitlines()) >= 30
        if os.geteuid() != 0:  # root reads a mode-0 file anyway
            assert rc1 == rc3 == 1 and "locked.py" in pooled.err
        named = named or one.out
    languages = [json.loads(line)["language"] for line in named.splitlines()]
    assert {"Python", "C", "Rust", "SQL"} <= set(languages)


def test_langs_tag_starts_without_the_other_packages(tmp_path):
    """`codecurate langs tag` registers only the command modules up to its own: no datatrove, pydantic or fsspec
    (the other packages' flags are built from their stage classes), and no numpy where no file needs the classifier."""
    import subprocess
    import sys

    (tmp_path / "a.py").write_text("print(1)\n")
    code = ("import sys; from pipeline.cli import main; rc = main(['langs', 'tag', '--jsonl', sys.argv[1]]); "
            "print(rc, sorted(m for m in ('datatrove', 'pydantic', 'fsspec', 'numpy', 'dedup.stages') if m in sys.modules))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.py")], capture_output=True, text=True, check=True,
                         cwd=root, env={**os.environ, "PYTHONPATH": root}).stdout
    assert out.splitlines()[-1] == "0 []"


def _upstream(run_dir, recipe, stage, docs):
    """Write `docs` as a completed upstream stage, so the test exercises only tag_languages."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline import documents, storage
    from pipeline.runner import stage_hash

    d = os.path.join(run_dir, stage)
    os.makedirs(d, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([documents.to_row(x) for x in docs], schema=documents.SCHEMA), os.path.join(d, "part-00000.parquet"), compression="zstd")
    storage.write_json(os.path.join(d, "_stats.json"), {"balanced": True})
    with open(os.path.join(d, "_SUCCESS"), "w") as f:
        f.write(stage_hash(recipe, stage) + "\n")


def test_tag_languages_stage(tmp_path):
    import pyarrow.parquet as pq
    from datatrove.data import Document

    from pipeline import documents
    from pipeline.recipe import parse_recipe
    from pipeline.runner import Runner

    run_dir = str(tmp_path / "run")
    recipe = parse_recipe(
        {
            "name": "t",
            "run_dir": run_dir,
            "executor": "local",
            "stages": [
                {"name": "src", "kind": "github_files", "paths": [str(tmp_path)]},
                {"name": "tag", "kind": "tag_languages", "input": "src", "natural": True},
            ],
        }
    )
    docs = [
        Document(text="import os\n", id="1", metadata={"path": "a/b.py"}),
        Document(text="Ceci est un document rédigé en français, sans code.", id="2", metadata={"path": "docs/notes.txt"}),
        Document(text="#!/bin/sh\necho hi\n", id="3", metadata={}),
    ]
    _upstream(run_dir, recipe, "src", docs)
    Runner(recipe, workers=1, progress=False).run(["tag"])
    rows = pq.read_table(os.path.join(run_dir, "tag", "part-00000.parquet")).to_pylist()
    out = {d.id: d.metadata for d in map(documents.from_row, rows)}
    assert [r["lang"] for r in rows] == ["Python", None, "Shell"]  # the promoted column
    assert out["1"]["lang"] == "Python" and out["1"]["linguist"] == "Python" and out["1"]["lang_kind"] == "programming"
    assert out["1"]["lang_strategy"] == "extension" and out["1"]["lang_confidence"] == 0.95
    assert "lang_exclusion" not in out["1"]
    assert out["2"]["lang_exclusion"] == "documentation" and out["2"]["nl_lang"] == "fr"
    assert out["3"]["lang"] == "Shell" and out["3"]["lang_strategy"] == "shebang"
    with open(os.path.join(run_dir, "tag", "_stats.json")) as f:
        stats = json.load(f)
    assert stats["balanced"] and stats["in"]["docs"] == stats["kept"]["docs"] == 3
    from langs.step import TagLanguages

    [(title, body)] = TagLanguages.report_sections(os.path.join(run_dir, "tag"), stats)
    assert "lang/Python" in body and "exclusion/documentation" in body and "nl/fr" in body
