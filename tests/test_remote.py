"""Transient faults are retried, never turned into drops: a flaky HTTP server on 127.0.0.1 cuts
streams mid-file, answers 403 + Retry-After and 500 once. Every record arrives, or the task fails."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import pytest
from conftest import read_stage

from pipeline.recipe import parse_recipe
from pipeline.remote import ResumableStream, Retry, TransientError
from pipeline.runner import RunError, Runner
from pipeline.web.writer import gzip_member, response_record


def warc(path: Path, n: int, tag: str) -> Path:
    page = "<html><body><article><h1>{t}</h1><p>{t} has enough prose to be kept by the extractor, twice over.</p></article></body></html>"
    with open(path, "wb") as f:
        for i in range(n):
            f.write(gzip_member(response_record(f"https://{tag}.org/{i}", page.format(t=f"{tag} page {i}"))))
    return path


class FlakyHandler(http.server.BaseHTTPRequestHandler):
    """/cut/F: the first answer stops halfway; /403/F: 403 + Retry-After: 1 once; /500/F: 500 once;
    /dead/F: every answer stops halfway. Later answers honour `Range:`. `log` records each request."""

    root: Path
    log: list = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        fault, _, name = self.path.lstrip("/").partition("/")
        first = not any(p == self.path for p, _, _ in self.log)
        self.log.append((self.path, self.headers.get("Range"), time.monotonic()))
        if fault == "403" and first:
            self.send_response(403)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fault == "500" and first:
            self.send_error(500)
            return
        data = (self.root / name).read_bytes()
        start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if fault == "dead" or (fault == "cut" and first):
            body = body[: len(body) // 2]
            self.close_connection = True
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def flaky(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    for name, n in (("a", 30), ("b", 20), ("c", 25)):
        warc(root / f"{name}.warc.gz", n, name)
    handler = type("H", (FlakyHandler,), {"root": root, "log": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, handler.log
    httpd.shutdown()


def ingest(paths: list[str], run_dir: Path):
    recipe = parse_recipe({"name": "t", "run_dir": str(run_dir), "executor": "local", "retries": 0,
                           "stages": [{"name": "web", "kind": "web_ingest", "paths": paths, "backoff": 0.05}]})
    Runner(recipe, workers=1, progress=False).run()
    return [d.metadata["url"] for d in read_stage(run_dir, "web")]


def test_cut_streams_403_and_500_lose_no_record(flaky, tmp_path):
    base, root, log = flaky
    local = ingest([str(root / f"{n}.warc.gz") for n in "abc"], tmp_path / "local")
    assert len(local) == 75
    remote = ingest([f"{base}/cut/a.warc.gz", f"{base}/403/b.warc.gz", f"{base}/500/c.warc.gz"], tmp_path / "remote")
    assert remote == local
    cut = [r for p, r, _ in log if p == "/cut/a.warc.gz"]
    assert cut[0] is None and cut[1].startswith("bytes=") and int(cut[1][6:-1]) > 0  # resumed where it stopped
    t403 = [t for p, _, t in log if p == "/403/b.warc.gz"]
    assert len(t403) == 2 and t403[1] - t403[0] >= 1.0  # Retry-After honoured


def test_a_stream_that_keeps_failing_fails_the_task_with_nothing_written(flaky, tmp_path):
    base, root, _ = flaky
    with pytest.raises(RunError) as e:
        ingest([f"{base}/dead/a.warc.gz", f"{base}/cut/b.warc.gz"], tmp_path / "run")
    msg = str(e.value)
    assert "fetch_stream_cut" in msg and "\n" not in msg
    assert not list((tmp_path / "run" / "web").glob("part-*.parquet"))
    assert not (tmp_path / "run" / "web" / "_SUCCESS").exists()


def test_resumable_stream_reads_whole_file_across_cuts(flaky):
    base, root, _ = flaky
    waits = []
    with ResumableStream(f"{base}/cut/a.warc.gz", Retry(retries=2, backoff_s=0.01, sleep=waits.append)) as f:
        assert f.read() == (root / "a.warc.gz").read_bytes()
    assert len(waits) == 1
    with pytest.raises(TransientError) as e, ResumableStream(f"{base}/dead/c.warc.gz", Retry(retries=2, sleep=waits.append)) as f:
        f.read()
    assert e.value.reason == "fetch_stream_cut"


def test_an_archive_cut_mid_download_is_read_whole_not_counted_corrupt(flaky, tmp_path):
    import zipfile

    base, root, log = flaky
    with zipfile.ZipFile(root / "proj.zip", "w") as z:
        for i in range(40):
            z.writestr(f"proj/src/m{i}.py", f"def f{i}():\n    return {i}\n" * 20)

    def files(paths, run_dir):
        recipe = parse_recipe({"name": "t", "run_dir": str(run_dir), "executor": "local", "retries": 0,
                               "stages": [{"name": "g", "kind": "github_files", "archives": paths}]})
        Runner(recipe, workers=1, progress=False).run()
        return [(d.id, d.text) for d in read_stage(run_dir, "g")]

    local = files([str(root / "proj.zip")], tmp_path / "local")
    assert len(local) == 40
    assert files([f"{base}/cut/proj.zip"], tmp_path / "remote") == local
    assert [r for p, r, _ in log if p == "/cut/proj.zip"][1].startswith("bytes=")
