"""Web ingest over real protocols on 127.0.0.1: local files, an HTTP server that honours Range,
moto's S3 server, a parquet URL index and a crawl's path list all give the same documents."""

from __future__ import annotations

import gzip
import http.server
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import read_stage

from pipeline.cli import main as cli_main
from pipeline.recipe import parse_recipe
from pipeline.remote import RangeReader, Retry, TransientError
from pipeline.runner import RunError, Runner
from pipeline.web.writer import gzip_member, response_record

C1, C2 = "CC-MAIN-2024-10", "CC-MAIN-2024-18"
MATH = r"<p>The identity <script type='math/tex'>e^{i\pi}+1=0</script> links five constants, as every student learns.</p>"
CODE = "<pre><code class='language-python'>def f(x):\n    return x * 2\n</code></pre>"


def page(title: str, extra: str = "") -> str:
    body = f"<p>{title} is a page with enough prose for the main content heuristics to keep it around.</p>"
    return f"<html><head><title>{title}</title></head><body><nav><a href='/'>Home</a></nav><article><h1>{title}</h1>{body}{extra}</article></body></html>"


def build_mirror(root: Path) -> dict:
    """A CommonCrawl-shaped tree: two crawls, path lists, WARCs and a parquet URL index."""
    files = {
        f"crawl-data/{C1}/segments/1/warc/a.warc.gz": [
            response_record("https://site.org/math", page("Math", MATH)),
            response_record("https://blog.example.com/code", page("Code", CODE)),
            response_record("https://site.org/logo.png", b"\x89PNG\r\n", content_type="image/png"),
        ],
        f"crawl-data/{C1}/segments/1/warc/b.warc.gz": [
            response_record("https://blog.example.com/post/1", page("Post one")),
            response_record("https://other.net/x", page("Other")),
            response_record("https://site.org/latin", "<p>caf\xe9</p>".encode("latin-1"), content_type="text/html; charset=x-unknown"),
        ],
        f"crawl-data/{C2}/segments/2/warc/c.warc.gz": [
            response_record("http://www.site.org/math", page("Math", MATH), date="2024-05-01T00:00:00Z"),  # same page again
            response_record("https://site.org/new", page("New in May"), date="2024-05-01T00:00:00Z"),
        ],
    }
    index_rows = []
    for rel, recs in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        off = 0
        with open(path, "wb") as f:
            for r in recs:
                m = gzip_member(r)
                f.write(m)
                url = r.split(b"WARC-Target-URI: ")[1].split(b"\r\n")[0].decode()
                host = url.split("/")[2].removeprefix("www.")
                dom = host.split(".", host.count(".") - 1)[-1]
                index_rows.append({"url": url, "url_host_registered_domain": dom, "warc_filename": rel,
                                   "warc_record_offset": off, "warc_record_length": len(m), "crawl": rel.split("/")[1]})
                off += len(m)
    for crawl in (C1, C2):
        listing = "\n".join(sorted(k for k in files if crawl in k)) + "\n"
        (root / "crawl-data" / crawl / "warc.paths.gz").write_bytes(gzip.compress(listing.encode(), mtime=0))
    idx = root / "index"
    for crawl in (C1, C2):
        rows = [{k: v for k, v in r.items() if k != "crawl"} for r in index_rows if r["crawl"] == crawl]
        (idx / f"crawl={crawl}").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), idx / f"crawl={crawl}" / "part-0.parquet")
    return {"files": sorted(files), "index": index_rows}


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with `Range:` support, plus faults by path prefix: /fail/ (503 always),
    /flaky/ (503 on the first request of each path), /slow/ (answers after 2 s), /short/ (half a range)."""

    seen: set = set()

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = self.path.lstrip("/")
        fault, _, rest = path.partition("/")
        if fault in ("fail", "flaky", "slow", "short"):
            if fault == "fail" or (fault == "flaky" and self.path not in self.seen):
                self.seen.add(self.path)
                self.send_error(503)
                return
            if fault == "slow":
                time.sleep(2)
            path = rest
        full = Path(self.directory) / path
        if not full.is_file():
            self.send_error(404)
            return
        data = full.read_bytes()
        rng = self.headers.get("Range")
        if rng:
            a, b = rng.split("=")[1].split("-")
            data = data[int(a) : int(b) + 1]
            if fault == "short":
                data = data[: len(data) // 2]
            self.send_response(206)
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    info = build_mirror(root)
    handler = lambda *a, **kw: RangeHandler(*a, directory=str(root), **kw)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    from moto.server import ThreadedMotoServer

    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()
    host, port = s3.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in creds}
    os.environ.update(creds)
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="commoncrawl")
    for f in root.rglob("*"):
        if f.is_file():
            client.upload_file(str(f), "commoncrawl", str(f.relative_to(root)))
    info.update(root=root, http=f"http://127.0.0.1:{httpd.server_address[1]}/", s3_options={"s3": {"endpoint_url": endpoint}})
    yield info
    httpd.shutdown()
    s3.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def run(run_recipe, tmp_path, name: str, ingest: dict, workers: int = 1, extract: dict | None = None) -> str:
    stages = [{"name": "web_ingest", "kind": "web_ingest", **ingest},
              {"name": "web_extract", "kind": "web_extract", "input": "web_ingest", **(extract or {})}]
    return run_recipe(stages, workers=workers, run_dir=tmp_path / name)


def summary(run_dir: str, stage: str = "web_extract") -> list[tuple]:
    return [(d.id, d.metadata["url"], d.metadata["domain"], d.metadata["crawl"], d.text) for d in read_stage(run_dir, stage)]


def stats(run_dir: str, stage: str) -> dict:
    return json.loads((Path(run_dir) / stage / "_stats.json").read_text())


def test_files_http_and_s3_give_the_same_documents(mirror, run_recipe, tmp_path):
    rels = mirror["files"][:2]
    local = run(run_recipe, tmp_path, "local", {"paths": [str(mirror["root"] / "crawl-data" / C1 / "segments/*/warc/*.warc.gz")]})
    over_http = run(run_recipe, tmp_path, "http", {"paths": [mirror["http"] + r for r in rels]})
    over_s3 = run(run_recipe, tmp_path, "s3", {"paths": [f"s3://commoncrawl/{r}" for r in rels], "storage_options": mirror["s3_options"]})
    docs = summary(local)
    assert docs == summary(over_http) == summary(over_s3)
    assert [d[1] for d in docs] == ["https://site.org/math", "https://blog.example.com/code", "https://blog.example.com/post/1", "https://other.net/x"]
    assert [d[2] for d in docs] == ["site.org", "example.com", "example.com", "other.net"]
    assert {d[3] for d in docs} == {C1}
    assert r"$e^{i\pi}+1=0$" in docs[0][4] and "```python\ndef f(x):\n    return x * 2\n```" in docs[1][4]
    ing = stats(local, "web_ingest")
    assert ing["balanced"] and ing["in"]["docs"] == 6
    assert {r: d["docs"] for r, d in ing["dropped"].items()} == {"not_html": 1, "undecodable_charset": 1}
    meta = read_stage(local, "web_extract")[0].metadata
    assert meta["fetch_date"] == "2024-02-20T10:00:00Z" and meta["content_type"] == "text/html" and meta["charset"] == "utf-8"
    assert meta["extract"]["math_kept"] == 1 and meta["extract"]["chars"] == len(docs[0][4])


def test_url_index_selects_records_and_fetches_their_ranges(mirror, run_recipe, tmp_path):
    sel = {"index": str(mirror["root"] / "index"), "domains": ["example.com"], "url_prefixes": ["https://site.org/m"]}
    local = run(run_recipe, tmp_path, "local", {**sel, "base_url": str(mirror["root"])})
    over_http = run(run_recipe, tmp_path, "http", {**sel, "base_url": mirror["http"]})
    over_s3 = run(run_recipe, tmp_path, "s3", {**sel, "base_url": "s3://commoncrawl/", "storage_options": mirror["s3_options"]})
    docs = summary(local)
    assert docs == summary(over_http) == summary(over_s3)
    assert [d[1] for d in docs] == ["https://site.org/math", "https://blog.example.com/code", "https://blog.example.com/post/1"]
    full = {d[0]: d for d in summary(run(run_recipe, tmp_path, "full", {"paths": [str(mirror["root"] / f) for f in mirror["files"][:2]]}))}
    assert all(full[d[0]] == d for d in docs)  # a ranged record reads exactly as from its whole file
    assert stats(local, "web_ingest")["in"]["docs"] == 3


def test_crawl_path_list_takes_a_slice_of_files(mirror, run_recipe, tmp_path):
    out = run(run_recipe, tmp_path, "crawl", {"crawl": C1, "base_url": mirror["http"], "first_file": 1, "num_files": 1})
    assert [d[1] for d in summary(out)] == ["https://blog.example.com/post/1", "https://other.net/x"]
    assert {d[3] for d in summary(out)} == {C1}


@pytest.mark.slow  # a process pool for workers=2
def test_same_url_across_crawls_is_kept_once_for_any_worker_count(mirror, run_recipe, tmp_path):
    paths = [str(mirror["root"] / f) for f in mirror["files"]]
    one = run(run_recipe, tmp_path, "w1", {"paths": paths}, workers=1)
    two = run(run_recipe, tmp_path, "w2", {"paths": paths}, workers=2)
    urls = [d[1] for d in summary(one)]
    assert urls.count("https://site.org/math") == 1 and "http://www.site.org/math" not in urls
    assert "https://site.org/new" in urls
    ext = stats(one, "web_extract")
    assert ext["balanced"] and ext["dropped"]["duplicate_url"]["docs"] == 1
    for shard in sorted((Path(one) / "web_extract").glob("part-*.parquet")):
        assert shard.read_bytes() == (Path(two) / "web_extract" / shard.name).read_bytes()


def test_a_range_fault_that_outlasts_its_retries_fails_the_task_not_the_books(mirror, tmp_path):
    """A fault is never a drop: when retries run out the task fails (one line), nothing of it is
    written, and a run after the fault is gone completes."""
    rows = [r for r in mirror["index"] if r["crawl"] == C1]
    bad = dict(rows[0], warc_filename="fail/" + rows[0]["warc_filename"], url="https://broken.org/a", url_host_registered_domain="broken.org")
    idx = tmp_path / "idx.parquet"
    pq.write_table(pa.Table.from_pylist([{k: v for k, v in r.items() if k != "crawl"} for r in rows + [bad]]), idx)
    ingest = {"name": "web_ingest", "kind": "web_ingest", "index": str(idx), "domains": ["broken.org", "example.com"],
              "base_url": mirror["http"], "retries": 2, "backoff": 0.01}
    run_dir = tmp_path / "faulty"
    recipe = parse_recipe({"name": "t", "run_dir": str(run_dir), "executor": "local", "retries": 1, "stages": [ingest]})
    with pytest.raises(RunError) as e:
        Runner(recipe, workers=1, progress=False).run()
    assert "fetch_http_503" in str(e.value) and "\n" not in str(e.value)
    assert not list((run_dir / "web_ingest").glob("part-*.parquet"))
    assert not (run_dir / "web_ingest" / "_SUCCESS").exists()
    pq.write_table(pa.Table.from_pylist([{k: v for k, v in r.items() if k != "crawl"} for r in rows]), idx)
    Runner(parse_recipe({"name": "t", "run_dir": str(run_dir), "executor": "local", "stages": [ingest]}),
           workers=1, progress=False).run()
    ing = stats(str(run_dir), "web_ingest")
    assert ing["balanced"] and ing["dropped"] == {} and ing["in"]["docs"] == 2


def test_an_unreachable_file_is_counted_and_the_others_read(mirror, run_recipe, tmp_path):
    out = run(run_recipe, tmp_path, "missing", {"paths": [mirror["http"] + "no/such.warc.gz", mirror["http"] + mirror["files"][1]]})
    ing = stats(out, "web_ingest")
    assert ing["balanced"] and ing["dropped"]["unreadable_file"]["docs"] == 1
    assert [d[1] for d in summary(out)] == ["https://blog.example.com/post/1", "https://other.net/x"]


def test_range_reads_retry_with_backoff_then_name_the_failure(mirror):
    rel = mirror["files"][0]
    size = (mirror["root"] / rel).stat().st_size
    waits = []
    f = RangeReader(Retry(retries=3, backoff_s=0.1, timeout_s=0.5, sleep=waits.append))
    whole = (mirror["root"] / rel).read_bytes()
    assert f.read(mirror["http"] + "flaky/" + rel, 10, 100) == whole[10:110]
    assert waits == [0.1]
    for fault, reason in [("fail", "fetch_http_503"), ("slow", "fetch_timeout"), ("short", "fetch_short_read")]:
        waits.clear()
        with pytest.raises(TransientError) as e:
            f.read(mirror["http"] + f"{fault}/" + rel, 0, size)
        assert e.value.reason == reason
        assert waits == [0.1, 0.2, 0.4]
    with pytest.raises(FileNotFoundError):
        f.read(mirror["http"] + "no/such.warc.gz", 0, 10)


def test_cli_extracts_warc_globs_to_parquet(mirror, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for f in mirror["files"][:2]:
        shutil.copy(mirror["root"] / f, src / Path(f).name)
    broken = (src / "a.warc.gz").read_bytes()
    (src / "z-truncated.warc.gz").write_bytes(broken[: len(broken) - 40])
    out = tmp_path / "out"
    assert cli_main(["web", "extract", str(src / "*.warc.gz"), "--output", str(out), "--workers", "1", "--quiet"]) == 0
    msg = capsys.readouterr().out
    assert "wrote 4 documents" in msg and "truncated_gzip 1" in msg and "duplicate_url 2" in msg
    table = pq.read_table(sorted((out / "extract").glob("part-*.parquet"))[0])
    assert {"id", "text", "url", "domain", "metadata"} <= set(table.column_names)
    assert cli_main(["report", str(out)]) == 0
    assert "pages with math" in (out / "report.html").read_text()
    assert cli_main(["web", "extract", str(tmp_path / "missing*.warc.gz"), "--output", str(out / "x")]) == 2
    assert "no file matches" in capsys.readouterr().err
