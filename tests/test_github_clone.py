"""Cloning over the git protocol from a `git daemon` on 127.0.0.1: success, missing repo,
timeout, size cap, no hooks, no submodules, and the ingest stage over a repo list."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import read_stage

from pipeline.github.clone import CloneOptions, clone_command, clone_repo
from pipeline.github.search import write_repo_list

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x", "GIT_CONFIG_NOSYSTEM": "1"}


def git(*args, cwd=None):
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def publish(work: Path, base: Path, name: str) -> None:
    git("init", "-q", "--bare", str(base / f"{name}.git"))
    git("push", "-q", str(base / f"{name}.git"), "HEAD:refs/heads/main", cwd=work)
    git("symbolic-ref", "HEAD", "refs/heads/main", cwd=base / f"{name}.git")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """`git daemon` serving bare repos `proj` (with a submodule) and `lib`; yields (url_base, head of proj)."""
    root = tmp_path_factory.mktemp("gitd")
    base = root / "srv"
    base.mkdir()
    port = free_port()
    proc = subprocess.Popen(["git", "daemon", "--export-all", f"--base-path={base}", "--listen=127.0.0.1",
                             f"--port={port}", "--reuseaddr", str(base)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # `git daemon` execs `git-daemon`, which forks per client: kill the group
    try:
        wait_port(port)
        url = f"git://127.0.0.1:{port}"
        lib = root / "lib"
        lib.mkdir()
        (lib / "lib.py").write_text("X = 1\n")
        git("init", "-q", "-b", "main", cwd=lib)
        git("add", ".", cwd=lib)
        git("commit", "-q", "-m", "lib", cwd=lib)
        publish(lib, base, "lib")
        work = root / "proj"
        (work / "pkg").mkdir(parents=True)
        (work / "pkg" / "core.py").write_text("def core():\n    return 1\n")
        (work / "main.py").write_text("from pkg.core import core\n\nprint(core())\n")
        (work / "LICENSE").write_text("Permission is hereby granted, free of charge, to any person ... "
                                      "The above copyright notice and this permission notice shall be included")
        git("init", "-q", "-b", "main", cwd=work)
        git("-c", "protocol.allow=always", "submodule", "add", "-q", f"{url}/lib.git", "vendored_lib", cwd=work)
        git("add", ".", cwd=work)
        git("commit", "-q", "-m", "proj", cwd=work)
        publish(work, base, "proj")
        yield url, git("rev-parse", "HEAD", cwd=work)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.wait()


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers: a hung remote."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns, stop = [], threading.Event()

    def loop():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield f"git://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join()
    for c in conns:
        c.close()
    srv.close()


FAST = CloneOptions(timeout_s=30, retries=1, backoff_s=0)


def test_command_is_shallow_and_safe():
    cmd = clone_command("git://h/r.git", "/d", CloneOptions(blob_limit="1m"), "dev")
    assert cmd[:3] == ["git", "-c", "core.hooksPath=/dev/null"]
    for flag in ("--depth", "--no-recurse-submodules", "--single-branch", "--filter=blob:limit=1m"):
        assert flag in cmd
    assert cmd[cmd.index("--depth") + 1] == "1" and cmd[cmd.index("--branch") + 1] == "dev"


def test_clone_without_hooks_or_submodules(daemon, tmp_path, monkeypatch):
    url, head = daemon
    # a template whose post-checkout hook would leave a marker if hooks ran
    hooks = tmp_path / "tpl" / "hooks"
    hooks.mkdir(parents=True)
    marker = tmp_path / "hook-ran"
    (hooks / "post-checkout").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (hooks / "post-checkout").chmod(0o755)
    monkeypatch.setenv("GIT_TEMPLATE_DIR", str(tmp_path / "tpl"))
    r = clone_repo("o/proj", f"{url}/proj.git", str(tmp_path / "c" / "proj"), FAST)
    assert r.ok and r.commit == head and r.attempts == 1 and r.size_bytes > 0
    assert (tmp_path / "c" / "proj" / "main.py").exists()
    assert not marker.exists()
    assert list((tmp_path / "c" / "proj" / "vendored_lib").iterdir()) == []  # submodule not fetched
    assert git("rev-list", "--count", "HEAD", cwd=tmp_path / "c" / "proj") == "1"  # depth 1
    again = clone_repo("o/proj", f"{url}/proj.git", str(tmp_path / "c" / "proj"), FAST)
    assert again.ok and again.attempts == 0  # a complete clone is reused


def test_missing_repo_fails_without_retry(daemon, tmp_path):
    url, _ = daemon
    r = clone_repo("o/nope", f"{url}/nope.git", str(tmp_path / "nope"), FAST)
    assert not r.ok and r.reason == "not_found" and r.attempts == 1
    assert not (tmp_path / "nope").exists() and not (tmp_path / "nope.partial").exists()


def test_hung_remote_times_out_and_retries(silent_server, tmp_path):
    sleeps = []
    opts = CloneOptions(timeout_s=1, retries=1, backoff_s=0.25)
    t0 = time.time()
    r = clone_repo("o/hang", f"{silent_server}/hang.git", str(tmp_path / "hang"), opts, sleep=sleeps.append)
    assert not r.ok and r.reason == "timeout" and r.attempts == 2 and sleeps == [0.25]
    assert time.time() - t0 < 10 and not (tmp_path / "hang").exists()


def test_size_cap(daemon, tmp_path):
    url, _ = daemon
    r = clone_repo("o/proj", f"{url}/proj.git", str(tmp_path / "big"), CloneOptions(max_bytes=10, retries=0))
    assert not r.ok and r.reason == "too_large" and not (tmp_path / "big").exists()


def test_stage_clones_a_repo_list_and_records_failures(daemon, silent_server, run_recipe, tmp_path):
    url, head = daemon
    rows = [
        {"full_name": "o/proj", "clone_url": f"{url}/proj.git", "stars": 42, "license": None, "default_branch": "main", "size_kb": 1},
        {"full_name": "o/missing", "clone_url": f"{url}/missing.git", "stars": 1, "default_branch": "main", "size_kb": 1},
        {"full_name": "o/hang", "clone_url": f"{silent_server}/hang.git", "stars": 1, "default_branch": "main", "size_kb": 1},
        {"full_name": "o/huge", "clone_url": f"{url}/huge.git", "stars": 1, "default_branch": "main", "size_kb": 10**9},
    ]
    write_repo_list(rows, str(tmp_path / "repos.parquet"))
    stage = {"name": "files", "kind": "github_files", "repo_list": str(tmp_path / "repos.parquet"),
             "clone_dir": str(tmp_path / "clones"), "clone": {"timeout_s": 2, "retries": 0, "max_bytes": 10**8}}
    run_dir = run_recipe([stage, {"name": "repos", "kind": "github_repo_docs", "input": "files"}])
    st = json.loads(Path(run_dir, "files", "_stats.json").read_text())
    assert st["balanced"]
    dropped = {k: v["docs"] for k, v in st["dropped"].items()}
    assert dropped["clone_not_found"] == 1 and dropped["clone_timeout"] == 1 and dropped["clone_too_large"] == 1
    docs = {d.metadata["path"]: d for d in read_stage(run_dir, "files")}
    assert set(docs) >= {"main.py", "pkg/core.py"}
    m = docs["main.py"].metadata
    assert m["repo"] == "o/proj" and m["commit"] == head and m["stars"] == 42 and m["license"] == "MIT"
    (repo_doc,) = [d for d in read_stage(run_dir, "repos") if d.metadata["repo"] == "o/proj"]
    files = repo_doc.metadata["files"]
    assert files.index("pkg/core.py") < files.index("main.py")
    assert "# pkg/core.py\ndef core():" in repo_doc.text


def test_cli_clone_writes_results_with_reasons(daemon, tmp_path, capsys):
    from pipeline.cli import main

    url, head = daemon
    write_repo_list([{"full_name": "o/proj", "clone_url": f"{url}/proj.git", "default_branch": "main"},
                     {"full_name": "o/gone", "clone_url": f"{url}/gone.git", "default_branch": "main"}],
                    str(tmp_path / "list.parquet"))
    assert main(["github", "clone", str(tmp_path / "list.parquet"), "--dest", str(tmp_path / "c"), "--retries", "0"]) == 0
    import pyarrow.parquet as pq

    rows = {r["repo"]: r for r in pq.read_table(tmp_path / "c" / "_clone_results.parquet").to_pylist()}
    assert rows["o/proj"]["ok"] and rows["o/proj"]["commit"] == head
    assert not rows["o/gone"]["ok"] and rows["o/gone"]["reason"] == "not_found"
    assert (tmp_path / "c" / "o__proj" / "main.py").exists()
    out = capsys.readouterr()
    assert "cloned 1/2" in out.out and "failed o/gone: not_found" in out.err
