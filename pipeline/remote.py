"""Remote reads that survive transient faults: whole files as resumable streams, and byte ranges.

A transient fault (connection reset or timeout, a stream cut short, HTTP 403/429/5xx, an S3
throttle) is retried with exponential backoff, honouring `Retry-After`; a whole-file stream goes
on from the last byte it delivered (a `Range:` request, or a seek on object stores). When the
retries run out `TransientError` is raised and the task fails, so a re-run resumes it: a fault is
never turned into a drop. A file that does not exist raises `FileNotFoundError` (the caller
counts it). HTTP(S) goes through requests; every other remote protocol through `pipeline.storage`.
"""

from __future__ import annotations

import email.utils
import io
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline import storage

RETRY_STATUS = {403, 408, 425, 429, 500, 502, 503, 504}


class TransientError(Exception):
    """A read that still failed after every retry; `reason` names the last fault."""

    def __init__(self, reason: str, detail: str, retry_after: float | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.retry_after = reason, retry_after


@dataclass
class Retry:
    """How hard to try: `retries` more attempts after the first, backoff doubling from `backoff_s`."""

    retries: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 60.0
    timeout_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep  # tests pass a recorder

    def call(self, attempt: Callable[[], bytes | object]):
        """`attempt()` until it does not raise `TransientError`; re-raises the last one."""
        for n in range(self.retries + 1):
            try:
                return attempt()
            except TransientError as e:
                if n == self.retries:
                    raise
                wait = self.backoff_s * 2**n
                if e.retry_after is not None:
                    wait = max(wait, e.retry_after)
                self.sleep(min(wait, self.max_backoff_s))
        raise AssertionError("unreachable")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    when = email.utils.parsedate_to_datetime(value)
    return max(0.0, when.timestamp() - time.time()) if when else None


def _is_http(path: str) -> bool:
    return path.startswith(("http://", "https://"))


class _Http:
    """One requests session per reader; statuses and connection faults mapped to the taxonomy above."""

    def __init__(self, timeout_s: float):
        import requests

        self.requests = requests
        self.session = requests.Session()
        self.timeout_s = timeout_s

    def get(self, url: str, start: int, end: int | None = None, stream: bool = False):
        rng = f"bytes={start}-{'' if end is None else end - 1}"
        headers = {"Range": rng} if start or end is not None else {}
        try:
            r = self.session.get(url, headers=headers, timeout=self.timeout_s, stream=stream)
        except self.requests.Timeout as e:
            raise TransientError("fetch_timeout", f"{url}: {e}") from None
        except self.requests.RequestException as e:
            raise TransientError("fetch_connection", f"{url}: {e}") from None
        if r.status_code in RETRY_STATUS:
            r.close()
            raise TransientError(f"fetch_http_{r.status_code}", f"{url}: HTTP {r.status_code}",
                                 _retry_after(r.headers.get("Retry-After")))
        if r.status_code == 404 or r.status_code == 410:
            r.close()
            raise FileNotFoundError(f"{url}: HTTP {r.status_code}")
        if r.status_code not in (200, 206):
            r.close()
            raise OSError(f"{url}: HTTP {r.status_code}")
        return r


def _storage_fault(path: str, e: Exception) -> Exception:
    """Object-store faults are transient unless the object is missing or access is refused."""
    if isinstance(e, (FileNotFoundError, PermissionError)):
        return e
    return TransientError("fetch_error", f"{path}: {type(e).__name__}: {e}")


class RangeReader:
    """`read(path, offset, length)`: exactly `length` bytes, retried; a short read is a fault."""

    def __init__(self, retry: Retry | None = None):
        self.retry = retry or Retry()
        self._http: _Http | None = None

    def read(self, path: str, offset: int, length: int) -> bytes:
        def attempt() -> bytes:
            data = self._get(path, offset, length)
            if len(data) != length:
                raise TransientError("fetch_short_read", f"{path} @{offset}: got {len(data)} of {length} bytes")
            return data

        return self.retry.call(attempt)

    def _get(self, path: str, offset: int, length: int) -> bytes:
        if _is_http(path):
            self._http = self._http or _Http(self.retry.timeout_s)
            r = self._http.get(path, offset, offset + length)
            try:
                body = r.content
            except self._http.requests.RequestException as e:
                raise TransientError("fetch_connection", f"{path}: {e}") from None
            return body[offset : offset + length] if r.status_code == 200 else body
        fs, p = storage.fs_and_path(path)
        try:
            return fs.cat_file(p, start=offset, end=offset + length)
        except Exception as e:  # noqa: BLE001 - classified below
            raise _storage_fault(path, e) from None


class ResumableStream(io.RawIOBase):
    """A whole remote file read front to back; a fault mid-stream reopens it at the last good byte."""

    def __init__(self, path: str, retry: Retry | None = None, chunk: int = 1 << 20):
        super().__init__()
        self.path, self.retry, self.chunk = path, retry or Retry(), chunk
        self.pos = 0
        self._body = None
        self._http = _Http(self.retry.timeout_s) if _is_http(path) else None

    def readable(self) -> bool:
        return True

    def _open(self):
        if self._http is not None:
            r = self._http.get(self.path, self.pos, stream=True)
            if self.pos and r.status_code == 200:  # the server ignored Range: skip what we have
                skip = self.pos
                while skip:
                    got = r.raw.read(min(skip, self.chunk))
                    if not got:
                        raise TransientError("fetch_short_read", f"{self.path}: ended before byte {self.pos}")
                    skip -= len(got)
            return r.raw
        fs, p = storage.fs_and_path(self.path)
        try:
            f = fs.open(p, "rb")
            f.seek(self.pos)
            return f
        except Exception as e:  # noqa: BLE001 - classified below
            raise _storage_fault(self.path, e) from None

    def _read_some(self, n: int) -> bytes:
        if self._body is None:
            self._body = self._open()
        try:
            return self._body.read(n)
        except Exception as e:  # noqa: BLE001 - a cut stream: reopen at self.pos
            self._drop_body()
            fault = _storage_fault(self.path, e)
            if isinstance(fault, TransientError):
                fault = TransientError("fetch_stream_cut", f"{self.path} @{self.pos}: {type(e).__name__}: {e}")
            raise fault from None

    def _drop_body(self) -> None:
        if self._body is not None:
            try:
                self._body.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self._body = None

    def readinto(self, buf) -> int:
        data = self.retry.call(lambda: self._read_some(len(buf)))
        buf[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def close(self) -> None:
        self._drop_body()
        super().close()


def open_stream(path: str, retry: Retry | None = None):
    """A whole file (local, http(s), s3, ...) for sequential reading, resumable when remote."""
    if not storage.is_remote(path):
        return open(path.removeprefix("file://"), "rb")
    return io.BufferedReader(ResumableStream(path, retry), buffer_size=1 << 20)
