"""Repository discovery through the GitHub REST search API (`GET /search/repositories`).

The search API returns at most 1,000 results per query, so a query whose `total_count` is
larger is split into two halves of its `created:` date range until each half fits; a single
day that still has more is split by time of day (`created:2020-01-01T00:00:00+00:00..…`),
down to one second. Rate limits
are honoured: a 403/429 with `Retry-After` waits that long; `X-RateLimit-Remaining: 0` waits
until `X-RateLimit-Reset`; waits longer than `max_wait_s` stop with a clear error instead.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pyarrow as pa
import requests
from loguru import logger

from pipeline import storage

SEARCH_CAP = 1000

REPO_SCHEMA = pa.schema([
    ("full_name", pa.string()), ("clone_url", pa.string()), ("html_url", pa.string()),
    ("stars", pa.int64()), ("license", pa.string()), ("default_branch", pa.string()),
    ("size_kb", pa.int64()), ("created_at", pa.string()), ("pushed_at", pa.string()),
    ("language", pa.string()), ("fork", pa.bool_()), ("archived", pa.bool_()),
])


class SearchError(Exception):
    """Discovery cannot go on (bad query, auth, a rate-limit wait beyond the allowed maximum)."""


@dataclass(frozen=True)
class Query:
    created_after: dt.date
    created_before: dt.date  # inclusive bounds, as GitHub's `created:A..B`
    min_stars: int | None = None
    language: str | None = None
    pushed_after: dt.date | None = None
    within: tuple[dt.datetime, dt.datetime] | None = None  # a part of one day (UTC, inclusive), once days are too big

    def _created(self) -> str:
        if self.within is None:
            return f"{self.created_after.isoformat()}..{self.created_before.isoformat()}"
        a, b = (t.strftime("%Y-%m-%dT%H:%M:%S+00:00") for t in self.within)
        return f"{a}..{b}"

    def q(self) -> str:
        parts = [f"created:{self._created()}"]
        if self.min_stars is not None:
            parts.append(f"stars:>={self.min_stars}")
        if self.language:
            parts.append(f'language:"{self.language}"' if " " in self.language else f"language:{self.language}")
        if self.pushed_after:
            parts.append(f"pushed:>={self.pushed_after.isoformat()}")
        return " ".join(parts)

    def splittable(self) -> bool:
        if self.within is None:
            return True  # a range of days halves; a single day splits into times of day
        return self.within[0] < self.within[1]

    def halves(self) -> tuple[Query, Query]:
        span = (self.created_before - self.created_after).days
        if self.within is None and span > 0:
            mid = self.created_after + dt.timedelta(days=span // 2)
            return (replace(self, created_before=mid),
                    replace(self, created_after=mid + dt.timedelta(days=1)))
        start, end = self.within or (dt.datetime.combine(self.created_after, dt.time.min),
                                     dt.datetime.combine(self.created_after, dt.time(23, 59, 59)))
        mid = start + dt.timedelta(seconds=(end - start).total_seconds() // 2)
        return replace(self, within=(start, mid)), replace(self, within=(mid + dt.timedelta(seconds=1), end))


class SearchClient:
    def __init__(
        self,
        api_url: str = "https://api.github.com",
        token: str | None = None,
        per_page: int = 100,
        max_wait_s: float = 3600.0,
        max_retries: int = 5,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
    ):
        self.api_url = api_url.rstrip("/")
        self.per_page = per_page
        self.max_wait_s, self.max_retries, self.timeout_s = max_wait_s, max_retries, timeout_s
        self.sleep, self.now = sleep, now
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
                                     "User-Agent": "codecurate"})
        token = token if token is not None else os.environ.get("GITHUB_TOKEN")
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.requests = 0
        self.waited_s = 0.0

    def _wait(self, seconds: float, why: str) -> None:
        seconds = max(0.0, seconds)
        if seconds > self.max_wait_s:
            raise SearchError(f"{why}: the wait of {seconds:.0f}s exceeds max_wait_s={self.max_wait_s:g}")
        logger.info(f"github search: {why}; waiting {seconds:.0f}s")
        self.waited_s += seconds
        self.sleep(seconds)

    def _until_reset(self, r: requests.Response) -> float:
        reset = r.headers.get("X-RateLimit-Reset")
        return (float(reset) - self.now() + 1) if reset else 60.0

    def get(self, path: str, params: dict) -> dict:
        """One API call, waiting out rate limits and retrying server errors."""
        for attempt in range(self.max_retries + 1):
            try:
                r = self.session.get(self.api_url + path, params=params, timeout=self.timeout_s)
            except requests.RequestException as e:
                if attempt == self.max_retries:
                    raise SearchError(f"cannot reach {self.api_url}: {type(e).__name__}: {e}") from None
                self._wait(2 ** attempt, f"connection error ({type(e).__name__})")
                continue
            self.requests += 1
            remaining = r.headers.get("X-RateLimit-Remaining")
            if r.status_code == 200:
                if remaining == "0":  # this answer is fine; the next request would be refused
                    self._wait(self._until_reset(r), "primary rate limit used up")
                return r.json()
            if r.status_code in (403, 429) and (r.headers.get("Retry-After") or remaining == "0"):
                if r.headers.get("Retry-After"):
                    self._wait(float(r.headers["Retry-After"]), f"secondary rate limit ({r.status_code})")
                else:
                    self._wait(self._until_reset(r), f"primary rate limit ({r.status_code})")
                continue
            if r.status_code >= 500:
                self._wait(2 ** attempt, f"server error {r.status_code}")
                continue
            msg = r.json().get("message", "") if r.headers.get("content-type", "").startswith("application/json") else r.text[:200]
            raise SearchError(f"GitHub search failed: HTTP {r.status_code}: {msg}")
        raise SearchError(f"GitHub search failed after {self.max_retries + 1} attempts")

    def search(self, query: Query) -> Iterator[dict]:
        """Every repository matching `query`, splitting date ranges past the 1,000-result cap."""
        todo = [query]
        while todo:
            qy = todo.pop(0)
            page1 = self.get("/search/repositories", {"q": qy.q(), "sort": "stars", "order": "desc",
                                                      "per_page": self.per_page, "page": 1})
            total = page1.get("total_count", 0)
            if total > SEARCH_CAP and qy.splittable():
                todo[:0] = list(qy.halves())
                continue
            if total > SEARCH_CAP:
                logger.warning(f"github search: {total} results within one second ({qy.q()}); only {SEARCH_CAP} are reachable")
            yield from page1.get("items", [])
            pages = min(-(-min(total, SEARCH_CAP) // self.per_page), SEARCH_CAP // self.per_page)
            for page in range(2, pages + 1):
                data = self.get("/search/repositories", {"q": qy.q(), "sort": "stars", "order": "desc",
                                                         "per_page": self.per_page, "page": page})
                items = data.get("items", [])
                if not items:
                    break
                yield from items


def repo_row(item: dict) -> dict:
    lic = (item.get("license") or {}).get("spdx_id")
    return {
        "full_name": item["full_name"],
        "clone_url": item.get("clone_url") or f"https://github.com/{item['full_name']}.git",
        "html_url": item.get("html_url"),
        "stars": item.get("stargazers_count"),
        "license": None if lic in (None, "NOASSERTION") else lic,
        "default_branch": item.get("default_branch"),
        "size_kb": item.get("size"),
        "created_at": item.get("created_at"),
        "pushed_at": item.get("pushed_at"),
        "language": item.get("language"),
        "fork": item.get("fork"),
        "archived": item.get("archived"),
    }


def discover(client: SearchClient, query: Query) -> list[dict]:
    """Unique repositories (by full name), sorted by name so that the list is reproducible."""
    rows = {}
    for item in client.search(query):
        rows.setdefault(item["full_name"], repo_row(item))
    return [rows[k] for k in sorted(rows)]


def write_repo_list(rows: list[dict], path: str) -> None:
    storage.write_parquet(path, pa.Table.from_pylist(rows, schema=REPO_SCHEMA))


class RepoListError(ValueError):
    """A repo list that is missing, unreadable or lacks `full_name`/`clone_url`: one line for the user."""


def read_repo_list(path: str) -> list[dict]:
    """The rows of a repo list (parquet, as `write_repo_list` writes it). Raises `RepoListError`."""
    try:
        table = storage.read_parquet(path)
    except FileNotFoundError:
        raise RepoListError(f"{path}: repo list not found") from None
    except (OSError, pa.ArrowException) as e:
        raise RepoListError(f"{path}: not a readable repo list (parquet): {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    missing = [c for c in ("full_name", "clone_url") if c not in table.column_names]
    if missing:
        raise RepoListError(f"{path}: repo list lacks column(s) {missing} (has {table.column_names})")
    return table.to_pylist()
