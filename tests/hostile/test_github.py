"""The GitHub ingest against a hostile corpus: links out of it, special files, git-lfs pointers,
and datasets with bad rows. Every case is a counted drop, and the books balance."""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import tarfile
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import read_stage

from .corpus import books, cli, dropped, files, one_line, recipe

CODE = "def add(a, b):\n    return a + b\n"
LFS = ("version https://git-lfs.github.com/spec/v1\n"
       "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")


@pytest.fixture
def outside(tmp_path):
    """Files outside the corpus that a link may point at."""
    return files(tmp_path / "outside", {"secret.py": "TOKEN = 'do not ingest'\n"})


def ids(run_dir, stage="f"):
    return {d.id for d in read_stage(run_dir, stage)}


def test_a_linked_repository_directory_is_not_followed(run_recipe, tmp_path, outside):
    corpus = tmp_path / "corpus"
    (corpus / "good").mkdir(parents=True)
    (corpus / "good" / "a.py").write_text(CODE)
    os.symlink(outside, corpus / "evil")  # layout parent: every subdirectory is a repository
    run_dir = run_recipe([{"name": "f", "kind": "github_files", "paths": [str(corpus)]}])
    st = books(run_dir, "f")
    assert dropped(st) == {"symlink": 1} and st["kept"]["docs"] == 1
    assert ids(run_dir) == {"good:a.py"}


def test_a_linked_repository_given_as_a_repo_is_not_followed(run_recipe, tmp_path, outside):
    os.symlink(outside, tmp_path / "repo")
    run_dir = run_recipe([{"name": "f", "kind": "github_files", "paths": [str(tmp_path / "repo")], "layout": "repo"}])
    st = books(run_dir, "f")
    assert dropped(st) == {"symlink": 1} and st["kept"]["docs"] == 0


def test_links_and_special_files_inside_a_repository(run_recipe, tmp_path, outside):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text(CODE)
    os.symlink(outside / "secret.py", repo / "link.py")
    os.symlink(outside, repo / "linked_dir")
    os.mkfifo(repo / "pipe.py")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(repo / "sock.py"))
        run_dir = run_recipe([{"name": "f", "kind": "github_files", "paths": [str(repo)], "layout": "repo"}])
    st = books(run_dir, "f")
    assert dropped(st) == {"symlink": 2, "special": 2} and ids(run_dir) == {"repo:a.py"}


def make_tar(path, members):
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)


def tinfo(name, data=b"", kind=tarfile.REGTYPE, linkname=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.linkname = kind, len(data) if kind == tarfile.REGTYPE else 0, linkname
    return ti, data if kind == tarfile.REGTYPE else None


def test_archives_linked_roots_fifos_and_devices(run_recipe, tmp_path, outside):
    arch = tmp_path / "arch"
    arch.mkdir()
    make_tar(arch / "proj.tar.gz", [
        tinfo("proj-main/a.py", CODE.encode()),
        tinfo("proj-main", kind=tarfile.SYMTYPE, linkname=str(outside)),  # a linked archive root
        tinfo("proj-main/pipe", kind=tarfile.FIFOTYPE),
        tinfo("proj-main/tty", kind=tarfile.CHRTYPE),
    ])
    with zipfile.ZipFile(arch / "z.zip", "w") as zf:
        zf.writestr("z/ok.py", CODE)
        fifo = zipfile.ZipInfo("z/fifo")
        fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
        zf.writestr(fifo, b"")
    os.symlink(tmp_path / "elsewhere.zip", arch / "linked.zip")  # an archive that is a link
    with zipfile.ZipFile(tmp_path / "elsewhere.zip", "w") as zf:
        zf.writestr("x/stolen.py", CODE)
    os.mkfifo(arch / "fifo.tar.gz")  # an archive that is a FIFO: reading it would block for ever
    run_dir = run_recipe([{"name": "f", "kind": "github_files", "archives": [str(arch / "*")]}])
    st = books(run_dir, "f")
    assert dropped(st) == {"symlink": 2, "special": 4}
    assert ids(run_dir) == {"proj:proj-main/a.py", "z:ok.py"}  # read from the archive, not through the link


def test_git_lfs_pointers_are_not_documents(run_recipe, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "model.py").write_text(LFS)  # a pointer under a source name: the tagger would call it Python
    (repo / "data.csv").write_text(LFS)
    (repo / "notes.md").write_text("version https://git-lfs.github.com/spec/v1 is the pointer format.\n")  # text about it
    (repo / "a.py").write_text(CODE)
    run_dir = run_recipe([{"name": "f", "kind": "github_files", "paths": [str(repo)], "layout": "repo"},
                          {"name": "g", "kind": "github_filter", "input": "f"}])
    st = books(run_dir, "f")
    assert dropped(st).get("lfs_pointer") == 2
    assert "repo:model.py" not in ids(run_dir) and "repo:a.py" in ids(run_dir)
    books(run_dir, "g")


def rows():
    return [
        {"content": CODE, "path": "a.py", "repo": "o/r", "stars": 3},
        {"content": LFS, "path": "big.bin.py", "repo": "o/r", "stars": 3},
    ]


def test_dataset_jsonl_broken_line_non_utf8_and_mistyped_rows(run_recipe, tmp_path):
    good = [json.dumps(r).encode() for r in rows()]
    lines = good + [
        b'{"content": "x = 1\\n", "path": "b.py", "repo": "o/r"',  # cut off
        b'{"content": "caf\xe9 = 1\\n", "path": "c.py", "repo": "o/r"}',  # latin-1 byte: not UTF-8
        b'[1, 2, 3]',  # JSON, but no row
        json.dumps({"content": 42, "path": "d.py", "repo": "o/r"}).encode(),  # mistyped content
        json.dumps({"content": CODE, "path": "e.py"}).encode(),  # no repo
        json.dumps({"content": CODE, "path": ["f.py"], "repo": "o/r"}).encode(),  # mistyped path
        json.dumps({"content": CODE, "path": "g.py", "repo": "o/r", "stars": "many"}).encode(),  # mistyped stars
        b"",
        json.dumps({"content": CODE, "path": "h.py", "repo": "o/s"}).encode(),
    ]
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    run_dir = run_recipe([{"name": "f", "kind": "github_files", "datasets": [str(path)],
                           "dataset_columns": {"stars": "stars"}, "tasks": 3}])
    st = books(run_dir, "f")
    assert dropped(st) == {"bad_json": 2, "not_utf8": 1, "bad_row": 4, "lfs_pointer": 1}
    assert ids(run_dir) == {"o/r:a.py", "o/s:h.py"}


def test_dataset_parquet_with_mistyped_columns_drops_rows(run_recipe, tmp_path):
    t = pa.table({"content": pa.array([1, 2], pa.int64()), "path": ["a.py", "b.py"], "repo": ["o/r", "o/r"]})
    pq.write_table(t, tmp_path / "ints.parquet")
    t = pa.table({"content": [CODE, None, CODE], "path": ["a.py", "b.py", None], "repo": ["o/r", "o/r", "o/r"]})
    pq.write_table(t, tmp_path / "nulls.parquet")
    run_dir = run_recipe([{"name": "f", "kind": "github_files", "datasets": [str(tmp_path / "*.parquet")]}])
    st = books(run_dir, "f")
    assert dropped(st) == {"bad_row": 4} and ids(run_dir) == {"o/r:a.py"}


def test_a_dataset_without_a_required_column_is_one_line(tmp_path):
    pq.write_table(pa.table({"text": ["x"], "path": ["a.py"]}), tmp_path / "d.parquet")
    rec = recipe(tmp_path / "r.yaml", tmp_path / "run", [{"name": "f", "kind": "github_files",
                                                         "datasets": [str(tmp_path / "d.parquet")]}])
    line = one_line(cli("run", rec, "--quiet"), 1)
    assert "d.parquet" in line and "['content', 'repo']" in line and "stages.f.datasets" in line


def test_a_dataset_that_is_not_parquet_is_one_line(tmp_path):
    (tmp_path / "d.parquet").write_bytes(b"PAR1 this is not a parquet file")
    rec = recipe(tmp_path / "r.yaml", tmp_path / "run", [{"name": "f", "kind": "github_files",
                                                         "datasets": [str(tmp_path / "d.parquet")]}])
    line = one_line(cli("run", rec, "--quiet"), 1)
    assert "d.parquet: not a readable parquet dataset" in line


def test_a_dataset_fifo_is_skipped(run_recipe, tmp_path):
    os.mkfifo(tmp_path / "d.jsonl")
    (tmp_path / "e.jsonl").write_text(json.dumps(rows()[0]) + "\n")
    run_dir = run_recipe([{"name": "f", "kind": "github_files", "datasets": [str(tmp_path / "*.jsonl")]}])
    st = books(run_dir, "f")
    assert dropped(st) == {"special": 1} and st["kept"]["docs"] == 1
