"""Discovery against a local HTTP server that answers GitHub's search endpoint the way GitHub
does (recorded response shape, pagination, the 1,000-result cap, rate-limit headers)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pyarrow.parquet as pq
import pytest

from pipeline.github.search import Query, SearchClient, SearchError, discover

# One item as GitHub returns it (fields trimmed to those the pipeline reads, plus a few it ignores).
RECORDED_ITEM = {
    "id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": "Hello-World", "full_name": "octocat/Hello-World",
    "owner": {"login": "octocat", "id": 1, "type": "User"}, "private": False,
    "html_url": "https://github.com/octocat/Hello-World", "fork": False,
    "created_at": "2011-01-26T19:01:12Z", "updated_at": "2011-01-26T19:14:43Z", "pushed_at": "2011-01-26T19:06:43Z",
    "clone_url": "https://github.com/octocat/Hello-World.git", "size": 108, "stargazers_count": 80,
    "language": "Python", "archived": False, "default_branch": "master", "score": 1.0,
    "license": {"key": "mit", "name": "MIT License", "spdx_id": "MIT", "url": "https://api.github.com/licenses/mit"},
}


def fake_repos(n: int, start: dt.date, days: int) -> list[dict]:
    """`n` repositories created over `days` days (at noon), or within the day `start` when `days` is 0."""
    out = []
    for i in range(n):
        if days:
            created = dt.datetime.combine(start + dt.timedelta(days=i * days // n), dt.time(12))
        else:
            created = dt.datetime.combine(start, dt.time()) + dt.timedelta(seconds=i * 86400 // n)
        item = json.loads(json.dumps(RECORDED_ITEM))
        item.update(id=i, name=f"r{i:05d}", full_name=f"u{i % 7}/r{i:05d}", stargazers_count=1000 - i % 1000,
                    created_at=created.strftime("%Y-%m-%dT%H:%M:%SZ"), clone_url=f"https://github.com/u{i % 7}/r{i:05d}.git")
        if i % 5 == 0:
            item["license"] = None
        out.append(item)
    return out


class FakeGitHub:
    """Serves /search/repositories over `repos`; `script` is a list of canned error answers served first."""

    def __init__(self, repos: list[dict]):
        self.repos = repos
        self.script: list[tuple[int, dict]] = []
        self.ok_headers: dict[str, str] = {}
        self.log: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                u = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(u.query).items()}
                outer.log.append({"path": u.path, **params, "auth": self.headers.get("Authorization")})
                if outer.script:
                    status, headers = outer.script.pop(0)
                    return self.reply(status, {"message": "You have exceeded a secondary rate limit."}, headers)
                if u.path != "/search/repositories":
                    return self.reply(404, {"message": "Not Found"})
                page, per = int(params.get("page", 1)), int(params.get("per_page", 30))
                if page * per > 1000:
                    return self.reply(422, {"message": "Only the first 1000 search results are available"})
                hits = outer.match(params["q"])
                body = {"total_count": len(hits), "incomplete_results": False, "items": hits[(page - 1) * per: page * per]}
                self.reply(200, body, outer.ok_headers)

            def reply(self, status, body, headers=None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def match(self, q: str) -> list[dict]:
        terms = dict(t.split(":", 1) for t in q.split())
        lo, hi = terms["created"].split("..")
        if "T" in lo:  # a time-of-day range, as `2020-01-01T00:00:00+00:00`: compare to the second
            lo, hi = lo[:19], hi[:19]
            out = [r for r in self.repos if lo <= r["created_at"][:19] <= hi]
        else:
            out = [r for r in self.repos if lo <= r["created_at"][:10] <= hi]
        if "stars" in terms:
            out = [r for r in out if r["stargazers_count"] >= int(terms["stars"].lstrip(">="))]
        return sorted(out, key=lambda r: (-r["stargazers_count"], r["id"]))


@pytest.fixture
def github():
    gh = FakeGitHub(fake_repos(250, dt.date(2020, 1, 1), 300))
    yield gh
    gh.server.shutdown()
    gh.server.server_close()


class Clock:
    def __init__(self):
        self.t = 1_700_000_000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


def client(gh, clock, **kw) -> SearchClient:
    return SearchClient(api_url=gh.url, token="tok", sleep=clock.sleep, now=clock.now, **kw)


Q = Query(dt.date(2020, 1, 1), dt.date(2020, 12, 31))


def test_pagination_and_repo_list_fields(github):
    rows = discover(client(github, Clock(), per_page=100), Q)
    assert len(rows) == 250 and [r["full_name"] for r in rows] == sorted(r["full_name"] for r in rows)
    pages = [int(e["page"]) for e in github.log]
    assert pages == [1, 2, 3]
    assert github.log[0]["q"] == "created:2020-01-01..2020-12-31" and github.log[0]["auth"] == "Bearer tok"
    r = next(r for r in rows if r["full_name"] == "u1/r00001")
    assert r == {"full_name": "u1/r00001", "clone_url": "https://github.com/u1/r00001.git",
                 "html_url": "https://github.com/octocat/Hello-World", "stars": 999, "license": "MIT",
                 "default_branch": "master", "size_kb": 108, "created_at": "2020-01-02T12:00:00Z",
                 "pushed_at": "2011-01-26T19:06:43Z", "language": "Python", "fork": False, "archived": False}
    assert next(r for r in rows if r["full_name"] == "u0/r00000")["license"] is None


def test_query_terms():
    q = Query(dt.date(2015, 1, 1), dt.date(2023, 11, 30), min_stars=5, language="Jupyter Notebook",
              pushed_after=dt.date(2022, 1, 1))
    assert q.q() == 'created:2015-01-01..2023-11-30 stars:>=5 language:"Jupyter Notebook" pushed:>=2022-01-01'


def test_splits_date_ranges_past_the_1000_result_cap():
    gh = FakeGitHub(fake_repos(2600, dt.date(2020, 1, 1), 365))
    try:
        rows = discover(client(gh, Clock(), per_page=100), Q)
    finally:
        gh.server.shutdown()
        gh.server.server_close()
    assert len(rows) == 2600 and len({r["full_name"] for r in rows}) == 2600
    assert max(int(e["page"]) for e in gh.log) <= 10  # never asks for results past the cap
    ranges = {e["q"] for e in gh.log}
    assert "created:2020-01-01..2020-07-01" in ranges  # the first halving of the year


def test_a_single_day_past_the_cap_splits_by_time_of_day():
    gh = FakeGitHub(fake_repos(2300, dt.date(2020, 3, 1), 0))
    try:
        rows = discover(client(gh, Clock(), per_page=100), Query(dt.date(2020, 2, 28), dt.date(2020, 3, 3)))
    finally:
        gh.server.shutdown()
        gh.server.server_close()
    assert len(rows) == 2300
    ranges = [e["q"] for e in gh.log if e["page"] == "1"]
    assert "created:2020-03-01T00:00:00+00:00..2020-03-01T11:59:59+00:00" in ranges
    assert "created:2020-03-01T12:00:00+00:00..2020-03-01T23:59:59+00:00" in ranges
    assert max(int(e["page"]) for e in gh.log) <= 10


def test_halves_of_a_day_cover_it_to_the_second():
    day = Query(dt.date(2021, 5, 4), dt.date(2021, 5, 4), min_stars=3)
    a, b = day.halves()
    assert a.q() == "created:2021-05-04T00:00:00+00:00..2021-05-04T11:59:59+00:00 stars:>=3"
    assert b.q() == "created:2021-05-04T12:00:00+00:00..2021-05-04T23:59:59+00:00 stars:>=3"
    one = Query(dt.date(2021, 5, 4), dt.date(2021, 5, 4), within=(dt.datetime(2021, 5, 4, 1, 2, 3),) * 2)
    assert not one.splittable()


def test_secondary_limit_retry_after_and_reset_headers(github):
    clock = Clock()
    github.script = [(403, {"Retry-After": "7"}),
                     (429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(clock.t) + 120)})]
    github.ok_headers = {"X-RateLimit-Remaining": "1"}
    c = client(github, clock, per_page=100)
    rows = discover(c, Q)
    assert len(rows) == 250
    assert clock.sleeps == [7.0, 114.0]  # Retry-After, then until the reset (120s from the start, +1s)
    assert c.waited_s == 121.0 and c.requests == 5


def test_primary_limit_used_up_waits_before_the_next_call(github):
    clock = Clock()
    github.ok_headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(clock.t) + 30)}
    rows = discover(client(github, clock, per_page=100), Q)
    assert len(rows) == 250 and clock.sleeps[0] == 31.0


def test_waits_beyond_the_maximum_stop_with_a_clear_error(github):
    github.script = [(403, {"Retry-After": "7200"})]
    with pytest.raises(SearchError, match=r"secondary rate limit \(403\): the wait of 7200s exceeds max_wait_s=600"):
        discover(client(github, Clock(), max_wait_s=600), Q)


def test_other_errors_are_reported(github):
    github.script = [(401, {})]
    with pytest.raises(SearchError, match="HTTP 401: You have exceeded"):
        discover(client(github, Clock()), Q)


def test_cli_discover_writes_the_repo_list(github, tmp_path, monkeypatch, capsys):
    from pipeline.cli import main

    monkeypatch.setenv("GITHUB_TOKEN", "from-env")
    out = tmp_path / "repos.parquet"
    rc = main(["github", "discover", "--api-url", github.url, "--created-after", "2020-01-01", "--created-before",
               "2020-06-30", "--min-stars", "900", "--language", "Python", "-o", str(out)])
    assert rc == 0
    t = pq.read_table(out)
    assert t.column_names[:6] == ["full_name", "clone_url", "html_url", "stars", "license", "default_branch"]
    assert t.num_rows > 0 and min(t.column("stars").to_pylist()) >= 900
    assert github.log[0]["auth"] == "Bearer from-env"
    assert github.log[0]["q"] == "created:2020-01-01..2020-06-30 stars:>=900 language:Python"
    assert f"{t.num_rows} repositories -> {out}" in capsys.readouterr().out
    assert main(["github", "discover", "--api-url", "http://127.0.0.1:9", "--created-before", "2020-01-01",
                 "-o", str(tmp_path / "x.parquet"), "--max-wait", "0"]) == 1
