"""Byte-range reads of WARC records over HTTP(S) (`Range:`), S3 (ranged GET) or any fsspec path.

Transient failures (HTTP 5xx and 429, timeouts, connection resets, short reads) are retried with
exponential backoff; what still fails is raised as `FetchError` with a reason the caller counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline import storage


class FetchError(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class _Retry(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@dataclass
class RangeFetcher:
    """`fetch(path, offset, length)` with retries. HTTP goes through requests; the rest through fsspec."""

    retries: int = 4
    backoff: float = 0.5
    timeout: float = 30.0
    storage_options: dict = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep  # tests pass a recorder

    def __post_init__(self):
        self._session = None
        self._fs: dict[str, object] = {}

    def fetch(self, path: str, offset: int, length: int) -> bytes:
        last = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                data = self._get(path, offset, length)
            except _Retry as e:
                last = e
                continue
            if len(data) == length:
                return data
            last = _Retry("fetch_short_read", f"{path} @{offset}: got {len(data)} of {length} bytes")
        raise FetchError(last.reason, str(last))

    def _get(self, path: str, offset: int, length: int) -> bytes:
        if path.startswith(("http://", "https://")):
            return self._http(path, offset, length)
        return self._fsspec(path, offset, length)

    def _http(self, url: str, offset: int, length: int) -> bytes:
        import requests

        if self._session is None:
            self._session = requests.Session()
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        try:
            r = self._session.get(url, headers=headers, timeout=self.timeout)
        except requests.Timeout as e:
            raise _Retry("fetch_timeout", f"{url}: {e}") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
            raise _Retry("fetch_connection", f"{url}: {e}") from None
        if r.status_code >= 500 or r.status_code == 429:
            raise _Retry(f"fetch_http_{r.status_code // 100}xx", f"{url}: HTTP {r.status_code}")
        if r.status_code == 206:
            return r.content
        if r.status_code == 200:  # server ignored Range: take the slice
            return r.content[offset : offset + length]
        raise FetchError(f"fetch_http_{r.status_code}", f"{url}: HTTP {r.status_code}")

    def _fsspec(self, path: str, offset: int, length: int) -> bytes:
        proto = path.split("://", 1)[0] if "://" in path else "file"
        if proto not in self._fs:
            import fsspec

            self._fs[proto] = fsspec.filesystem(proto, **self.storage_options.get(proto, {}))
        fs = self._fs[proto]
        p = path.split("://", 1)[1] if "://" in path else path
        try:
            return fs.cat_file(p, start=offset, end=offset + length)
        except FileNotFoundError as e:
            raise FetchError("fetch_not_found", f"{path}: {e}") from None
        except (TimeoutError, OSError) as e:
            raise _Retry("fetch_error", f"{path}: {e}") from None


def open_stream(path: str, storage_options: dict | None = None):
    """A whole file (local, http(s), s3 ...) for sequential reading."""
    proto = path.split("://", 1)[0] if "://" in path else "file"
    return storage.open_file(path, "rb", **(storage_options or {}).get(proto, {}))
