"""Reading repositories from directories, archives (with attacks) and file-level datasets."""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import read_stage

from pipeline import storage
from pipeline.github import license as licenses
from pipeline.github.sources import (
    Unread,
    dataset_pieces,
    dataset_rows,
    list_archive,
    list_directory,
    read_file,
    safe_member_name,
)

MIT = """MIT License

Copyright (c) 2020 Someone

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without restriction.
The above copyright notice and this permission notice shall be included in all copies.
"""
APACHE = "                                 Apache License\n                           Version 2.0, January 2004\n"
BSD3 = ("Redistribution and use in source and binary forms, with or without modification, are permitted... "
        "Neither the name of the copyright holder nor the names of its contributors may be used")
CODE = "def add(a, b):\n    return a + b\n"


def stats(run_dir, stage):
    return json.loads(Path(run_dir, stage, "_stats.json").read_text())


@pytest.mark.parametrize("text,spdx", [(MIT, "MIT"), (APACHE, "Apache-2.0"), (BSD3, "BSD-3-Clause"),
                                       ("GNU GENERAL PUBLIC LICENSE\nVersion 3, 29 June 2007", "GPL-3.0"),
                                       ("GNU LESSER GENERAL PUBLIC LICENSE Version 2.1", "LGPL-2.1"),
                                       ("all rights reserved", None)])
def test_spdx_from_license_text(text, spdx):
    assert licenses.spdx_from_text(text) == spdx


def test_license_file_only_at_the_root():
    assert licenses.detect({"LICENSE.md": MIT.encode(), "a.py": b"x"}) == "MIT"
    assert licenses.detect({"vendor/LICENSE": MIT.encode()}) is None
    assert licenses.detect({"COPYING": APACHE.encode(), "LICENSE": b"custom terms"}) == "Apache-2.0"


@pytest.mark.parametrize("name,ok", [("a/b.py", "a/b.py"), ("./a//b.py", "a/b.py"), ("../evil.py", None),
                                     ("a/../../evil.py", None), ("/etc/passwd", None), ("C:/x.py", None),
                                     ("a\\..\\..\\x.py", None)])
def test_safe_member_name(name, ok):
    assert safe_member_name(name) == ok


def make_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("proj-main/LICENSE", MIT)
        zf.writestr("proj-main/src/app.py", CODE)
        zf.writestr("proj-main/../../evil.py", CODE)  # zip-slip
        zf.writestr("/abs/evil.py", CODE)
        link = zipfile.ZipInfo("proj-main/link.py")
        link.external_attr = 0o120777 << 16  # a symlink member pointing outside
        zf.writestr(link, "/etc/passwd")
    return path


def make_tar(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        def add(name, data=b"", **kw):
            info = tarfile.TarInfo(name)
            for k, v in kw.items():
                setattr(info, k, v)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))

        add("proj/LICENSE", APACHE.encode())
        add("proj/lib/util.py", CODE.encode())
        add("proj/../escape.py", CODE.encode())
        add("/tmp/abs.py", CODE.encode())
        add("proj/sym.py", type=tarfile.SYMTYPE, linkname="../../etc/passwd")
        add("proj/hard.py", type=tarfile.LNKTYPE, linkname="/etc/passwd")
        add("proj/fifo", type=tarfile.FIFOTYPE)
    return path


def test_zip_attacks_are_refused(tmp_path):
    listing = list_archive(str(make_zip(tmp_path / "proj.zip")))
    got = {e.path: e.skip for e in listing.entries}
    assert got["LICENSE"] is None and got["src/app.py"] is None  # GitHub's top folder stripped
    assert got["proj-main/../../evil.py"] == "unsafe_path" and got["/abs/evil.py"] == "unsafe_path"
    assert got["link.py"] == "symlink"
    assert listing.name == "proj"


def test_tar_attacks_are_refused(tmp_path):
    listing = list_archive(str(make_tar(tmp_path / "proj.tar.gz")))
    got = {e.path: e.skip for e in listing.entries}
    assert got == {"LICENSE": None, "lib/util.py": None, "proj/../escape.py": "unsafe_path", "/tmp/abs.py": "unsafe_path",
                   "sym.py": "symlink", "hard.py": "symlink", "fifo": "special"}


def test_ingest_archives_counts_every_member_and_nothing_is_written_outside(run_recipe, tmp_path):
    arch = tmp_path / "arch"
    arch.mkdir()
    make_zip(arch / "proj.zip")
    make_tar(arch / "other.tar.gz")
    (arch / "broken.tar.gz").write_bytes((arch / "other.tar.gz").read_bytes()[:40])  # truncated
    run_dir = run_recipe([{"name": "files", "kind": "github_files", "archives": [str(arch / "*")]}])
    st = stats(run_dir, "files")
    assert st["balanced"]
    dropped = {k: v["docs"] for k, v in st["dropped"].items()}
    assert dropped["unsafe_path"] == 4 and dropped["symlink"] == 3 and dropped["special"] == 1
    assert dropped["archive_corrupt"] == 1
    docs = {(d.metadata["repo"], d.metadata["path"]): d for d in read_stage(run_dir, "files")}
    assert docs[("proj", "src/app.py")].metadata["license"] == "MIT"
    assert docs[("other", "lib/util.py")].metadata["license"] == "Apache-2.0"
    assert docs[("other", "lib/util.py")].metadata["lang"] == "Python"
    assert not (tmp_path / "evil.py").exists() and not Path("/tmp/abs.py").exists()


def test_local_directory_symlinks_sizes_and_exclusions(run_recipe, tmp_path):
    repo = tmp_path / "repos" / "demo"
    (repo / "src").mkdir(parents=True)
    (repo / "LICENSE").write_text(MIT)
    (repo / "src" / "main.py").write_text(CODE)
    (repo / "src" / "big.py").write_text(CODE * 100)
    (repo / "src" / "blob.bin").write_bytes(b"\x00\x01" * 100)
    (repo / "src" / "empty.py").write_text("")
    (repo / "src" / "latin1.py").write_bytes(b"x = 'caf\xe9'\n")
    (repo / "node_modules" / "dep").mkdir(parents=True)
    (repo / "node_modules" / "dep" / "index.js").write_text("module.exports = 1;\n")
    os.symlink("/etc/passwd", repo / "src" / "passwd.py")
    os.symlink(str(tmp_path), repo / "linked_dir")
    run_dir = run_recipe([{"name": "files", "kind": "github_files", "paths": [str(tmp_path / "repos")],
                           "max_bytes": 1000}])
    st = stats(run_dir, "files")
    dropped = {k: v["docs"] for k, v in st["dropped"].items()}
    assert st["balanced"] and st["in"]["docs"] == 9
    assert dropped["symlink"] == 2 and dropped["too_large"] == 1 and dropped["binary"] == 1
    assert dropped["empty"] == 1 and dropped["undecodable"] == 1 and dropped["vendored"] == 1
    docs = {d.metadata["path"]: d for d in read_stage(run_dir, "files")}
    main = docs["src/main.py"]
    assert main.id == "demo:src/main.py" and main.text == CODE
    assert main.metadata["license"] == "MIT" and main.metadata["size"] == len(CODE) and main.metadata["lang"] == "Python"


def test_read_file_stops_at_the_limit_and_at_a_binary_head(tmp_path):
    small, at_limit, over = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    small.write_text(CODE)
    at_limit.write_bytes(b"x" * 200_000)
    over.write_bytes(b"x" * 200_001)
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00" + b"\x01" * 99_999)
    assert read_file(str(small), 200_000) == CODE.encode() and read_file(str(at_limit), 200_000) == b"x" * 200_000
    with pytest.raises(Unread) as big:
        read_file(str(over), 200_000)
    assert (big.value.reason, big.value.size) == ("too_large", 200_001)
    with pytest.raises(Unread) as binary:  # decided by its first 8,000 bytes, the rest left unread
        read_file(str(blob), 200_000)
    assert (binary.value.reason, binary.value.size) == ("binary", 100_000)
    tiny, late = tmp_path / "tiny.bin", tmp_path / "late.txt"
    tiny.write_bytes(b"ab\x00")
    late.write_bytes(b"x" * 8_000 + b"\x00")  # a NUL past Linguist's window: read whole, judged as text
    with pytest.raises(Unread) as small_binary:
        read_file(str(tiny), 200_000)
    assert (small_binary.value.reason, small_binary.value.size) == ("binary", 3)
    assert read_file(str(late), 200_000) == b"x" * 8_000 + b"\x00"
    for n in (7_999, 8_000, 8_001, 8_000 + (1 << 16), 8_001 + (1 << 16), 150_000):  # around each read's size
        late.write_bytes(bytes(range(1, 201)) * (n // 200) + b"y" * (n % 200))
        assert read_file(str(late), 200_000) == late.read_bytes(), n
    with pytest.raises(Unread) as short_limit:  # a limit below the first read's size
        read_file(str(late), 100)
    assert (short_limit.value.reason, short_limit.value.size) == ("too_large", 150_000)
    late.write_bytes(b"z" * 5_000)
    with pytest.raises(Unread) as short_limit:
        read_file(str(late), 100)
    assert (short_limit.value.reason, short_limit.value.size) == ("too_large", 5_000)
    tiny.unlink(), late.unlink()
    with pytest.raises(Unread) as both:  # too large first, as when the size was known beforehand
        read_file(str(blob), 50_000)
    assert (both.value.reason, both.value.size) == ("too_large", 100_000)
    listing = list_directory(str(tmp_path))
    assert [(e.path, e.size) for e in listing.entries] == [("a.py", None), ("b.py", None), ("blob.bin", None),
                                                            ("c.py", None)]


def test_unread_files_keep_their_full_size_in_the_books(run_recipe, tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    (repo / "a.py").write_text(CODE)
    (repo / "blob.bin").write_bytes(b"\x00" * 100_000)
    (repo / "huge.py").write_text("x = 1\n" * 50_000)
    run_dir = run_recipe([{"name": "f", "kind": "github_files", "paths": [str(repo)], "layout": "repo",
                           "max_bytes": 200_000}])
    st = stats(run_dir, "f")
    assert st["balanced"] and st["in"] == {"docs": 3, "bytes": len(CODE) + 100_000 + 300_000}
    assert st["dropped"] == {"binary": {"docs": 1, "bytes": 100_000}, "too_large": {"docs": 1, "bytes": 300_000}}


def test_unknown_languages_can_be_dropped(run_recipe, tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    (repo / "a.py").write_text(CODE)
    (repo / "notes.zzz").write_text("some words here\n")
    run_dir = run_recipe([{"name": "f", "kind": "github_files", "paths": [str(repo)], "layout": "repo",
                           "unknown_language": "drop"}])
    assert [d.metadata["path"] for d in read_stage(run_dir, "f")] == ["a.py"]
    assert stats(run_dir, "f")["dropped"]["unknown_language"]["docs"] == 1


def stack_rows():
    return [
        {"content": CODE, "max_stars_repo_path": "a/x.py", "max_stars_repo_name": "o/alpha", "max_stars_count": 5,
         "max_stars_repo_licenses": ["MIT"]},
        {"content": "", "max_stars_repo_path": "a/empty.py", "max_stars_repo_name": "o/alpha", "max_stars_count": 5,
         "max_stars_repo_licenses": ["MIT"]},
        {"content": "x" * 5000, "max_stars_repo_path": "big.py", "max_stars_repo_name": "o/beta", "max_stars_count": 1,
         "max_stars_repo_licenses": []},
        {"content": "package main\n", "max_stars_repo_path": "m.go", "max_stars_repo_name": "o/beta", "max_stars_count": 1,
         "max_stars_repo_licenses": []},
    ]


COLUMNS = {"content": "content", "path": "max_stars_repo_path", "repo": "max_stars_repo_name",
           "stars": "max_stars_count", "license": "max_stars_repo_licenses"}


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_file_level_datasets(run_recipe, tmp_path, fmt):
    path = tmp_path / f"data.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(stack_rows()), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in stack_rows()))
    stages = [{"name": "f", "kind": "github_files", "datasets": [str(path)], "dataset_columns": COLUMNS,
               "max_bytes": 4000, "tasks": 3}]
    run_dir = run_recipe(stages)
    st = stats(run_dir, "f")
    assert st["balanced"] and st["in"]["docs"] == 4 and st["kept"]["docs"] == 2
    assert st["dropped"]["empty"]["docs"] == 1 and st["dropped"]["too_large"]["docs"] == 1
    docs = {d.id: d for d in read_stage(run_dir, "f")}
    assert docs["o/alpha:a/x.py"].metadata["stars"] == 5 and docs["o/alpha:a/x.py"].metadata["license"] == ["MIT"]
    assert docs["o/beta:m.go"].metadata["lang"] == "Go"


def test_a_dataset_spreads_by_row_group_and_repo_docs_gather_each_repository(run_recipe, tmp_path):
    """One parquet of 4 row groups is read by 4 tasks, each only its row group; a repository whose files
    land in several tasks still becomes one document (github_repo_docs shuffles by repository)."""
    rows = [{"content": f"def f{i}():\n    return {i}\n", "max_stars_repo_path": f"f{i:02d}.py", "max_stars_repo_name": f"o/r{i % 7}"}
            for i in range(60)]
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=16)
    columns = {role: COLUMNS[role] for role in ("content", "path", "repo")}
    pieces = dataset_pieces([str(path)])
    assert pieces == [(str(path), i, i + 1) for i in range(4)]
    assert [r["path"] for p in pieces for r in dataset_rows(p, columns)] == [f"f{i:02d}.py" for i in range(60)]
    stages = [{"name": "f", "kind": "github_files", "datasets": [str(path)], "dataset_columns": columns, "tasks": 4},
              {"name": "r", "kind": "github_repo_docs", "input": "f", "tasks": 3}]
    run_dir = run_recipe(stages, workers=2)
    per_task = [pq.read_metadata(p).num_rows for p in sorted((Path(run_dir) / "f").glob("part-*.parquet"))]
    assert per_task == [16, 16, 16, 12]
    docs = read_stage(run_dir, "r")
    assert sorted(d.metadata["repo"] for d in docs) == [f"o/r{k}" for k in range(7)]
    for d in docs:
        k = int(d.metadata["repo"][-1])
        assert sorted(d.metadata["files"]) == [f"f{i:02d}.py" for i in range(60) if i % 7 == k]
    assert stats(run_dir, "r")["balanced"]
    again = run_recipe(stages, workers=1, run_dir=tmp_path / "again")
    assert [d.text for d in read_stage(again, "r")] == [d.text for d in docs]


def test_dataset_missing_column_is_a_clear_error(run_recipe, tmp_path):
    from pipeline.runner import RunError

    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([{"text": "x"}]), path)
    with pytest.raises(RunError, match=r"missing column\(s\) \['content', 'path', 'repo'\]"):
        run_recipe([{"name": "f", "kind": "github_files", "datasets": [str(path)]}])


def test_a_source_is_required():
    from pipeline.recipe import RecipeError, parse_recipe

    with pytest.raises(RecipeError, match="give at least one of paths, archives, datasets, repo_list"):
        parse_recipe({"name": "t", "run_dir": "x", "stages": [{"name": "f", "kind": "github_files"}]})


@pytest.mark.slow
def test_archives_and_datasets_from_s3(run_recipe, tmp_path, s3):
    """The same readers over s3:// (moto's S3 server on 127.0.0.1)."""
    client = s3["client"]
    client.create_bucket(Bucket="code")
    client.put_object(Bucket="code", Key="arch/proj.zip", Body=make_zip(tmp_path / "proj.zip").read_bytes())
    pq.write_table(pa.Table.from_pylist(stack_rows()), tmp_path / "d.parquet")
    client.put_object(Bucket="code", Key="data/d.parquet", Body=(tmp_path / "d.parquet").read_bytes())
    with storage.configured(s3["options"]):
        run_dir = run_recipe([{"name": "f", "kind": "github_files", "archives": ["s3://code/arch/*.zip"],
                               "datasets": ["s3://code/data/d.parquet"], "dataset_columns": COLUMNS}],
                             workers=1)  # in this process: a pool started by an earlier test lacks the env
    st = stats(run_dir, "f")
    assert st["balanced"] and st["dropped"]["unsafe_path"]["docs"] == 2
    ids = {d.id for d in read_stage(run_dir, "f")}
    assert {"proj:src/app.py", "o/alpha:a/x.py", "o/beta:m.go"} <= ids
