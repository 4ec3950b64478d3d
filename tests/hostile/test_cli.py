"""Commands given hostile input: a FIFO to `langs tag`, a missing repo list and a missing repository
to `github clone`, broken JSON lines to `dedup`. One line for a user error, a reason for a bad item."""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_github_clone import daemon  # noqa: F401 - the git daemon fixture

from pipeline.github.clone import CloneOptions, clone_repo
from pipeline.github.search import write_repo_list

from .corpus import books, cli, dropped, one_line, recipe


def test_langs_tag_skips_a_fifo_instead_of_hanging(tmp_path):
    (tmp_path / "a.py").write_text("import os\n")
    os.mkfifo(tmp_path / "b.py")
    p = cli("langs", "tag", "--jsonl", tmp_path, timeout=60)
    assert p.returncode == 0 and "Traceback" not in p.stderr
    assert [json.loads(line)["path"] for line in p.stdout.splitlines()] == [str(tmp_path / "a.py")]
    assert p.stderr.strip() == f"codecurate langs tag: {tmp_path / 'b.py'}: skipped, not a regular file"
    p = cli("langs", "tag", tmp_path / "b.py", timeout=60)  # named directly
    assert p.returncode == 0 and p.stdout == "" and "not a regular file" in p.stderr


@pytest.mark.parametrize("what", ["missing", "not parquet", "no clone_url"])
def test_github_clone_with_a_bad_repo_list_is_one_line(tmp_path, what):
    path = tmp_path / "list.parquet"
    if what == "not parquet":
        path.write_text("full_name,clone_url\no/r,git://x/r.git\n")
    elif what == "no clone_url":
        pq.write_table(pa.table({"full_name": ["o/r"]}), path)
    line = one_line(cli("github", "clone", path, "--dest", tmp_path / "clones"), 2)
    assert line.startswith(f"codecurate github clone: {path}: ")
    assert not (tmp_path / "clones").exists()


@pytest.fixture
def http_404(tmp_path):
    """An HTTP server where every repository is missing (git's smart and dumb HTTP both get 404)."""
    (tmp_path / "www").mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_a_repository_that_does_not_exist_is_not_found_and_not_retried(daemon, http_404, tmp_path):  # noqa: F811
    sleeps = []
    opts = CloneOptions(timeout_s=30, retries=3, backoff_s=1)
    for url in (f"{daemon[0]}/nope.git", f"{http_404}/nope.git", f"file://{tmp_path}/nope.git", str(tmp_path / "nope.git")):
        r = clone_repo("o/nope", url, str(tmp_path / "c" / "nope"), opts, sleep=sleeps.append)
        assert (r.ok, r.reason, r.attempts) == (False, "not_found", 1), (url, r)
    assert sleeps == []


def test_github_clone_reports_a_missing_repository(daemon, tmp_path):  # noqa: F811
    url, _ = daemon
    write_repo_list([{"full_name": "o/gone", "clone_url": f"{url}/gone.git", "default_branch": "main"}],
                    str(tmp_path / "list.parquet"))
    p = cli("github", "clone", tmp_path / "list.parquet", "--dest", tmp_path / "clones", "--retries", "3")
    assert p.returncode == 0 and "Traceback" not in p.stderr and "failed o/gone: not_found" in p.stderr
    (res,) = pq.read_table(tmp_path / "clones" / "_clone_results.parquet").to_pylist()
    assert res["reason"] == "not_found" and res["attempts"] == 1


def test_dedup_counts_broken_and_non_utf8_lines(tmp_path):
    good = [json.dumps({"id": str(i), "text": f"document number {i}"}).encode() for i in range(3)]
    bad = [b'{"id": "x", "text": "cut', b'{"id": "y", "text": "caf\xe9"}', b"42", json.dumps({"id": "z"}).encode()]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(good + bad) + b"\n")
    p = cli("dedup", "exact", tmp_path / "in.jsonl", "--output", tmp_path / "out", "--quiet", timeout=300)
    assert p.returncode == 0, p.stderr
    st = books(tmp_path / "out", "input")
    assert dropped(st) == {"bad_json": 2, "not_utf8": 1, "no_text": 1} and st["kept"]["docs"] == 3


def test_a_stage_with_an_unreadable_repo_list_is_one_line(tmp_path):
    (tmp_path / "list.parquet").write_text("not parquet\n")
    rec = recipe(tmp_path / "r.yaml", tmp_path / "run", [{"name": "f", "kind": "github_files", "clone_dir": str(tmp_path / "c"),
                                                         "repo_list": str(tmp_path / "list.parquet")}])
    line = one_line(cli("run", rec, "--quiet"), 1)
    assert "stages.f.repo_list: " in line and "not a readable repo list" in line
