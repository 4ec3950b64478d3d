"""Write small WARC files (fastwarc only reads): sample data for the demo, tests and benchmarks."""

from __future__ import annotations

import gzip
import uuid


def http_response(body: bytes, content_type: str = "text/html; charset=utf-8", status: str = "200 OK") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def warc_record(
    url: str,
    block: bytes,
    record_type: str = "response",
    date: str = "2024-02-20T10:00:00Z",
    content_type: str = "application/http; msgtype=response",
    length: int | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """One uncompressed WARC record; `length` overrides the true Content-Length (to test liars)."""
    rid = uuid.uuid5(uuid.NAMESPACE_URL, f"{record_type}:{url}:{date}")
    head = (
        f"WARC/1.0\r\nWARC-Type: {record_type}\r\nWARC-Record-ID: <urn:uuid:{rid}>\r\nWARC-Date: {date}\r\n"
        f"WARC-Target-URI: {url}\r\nContent-Type: {content_type}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        + f"Content-Length: {len(block) if length is None else length}\r\n\r\n"
    )
    return head.encode() + block + b"\r\n\r\n"


def response_record(url: str, html: bytes | str, content_type: str = "text/html; charset=utf-8", **kw) -> bytes:
    """A 200 response record holding `html`; keyword arguments go to `warc_record`."""
    body = html.encode() if isinstance(html, str) else html
    return warc_record(url, http_response(body, content_type), **kw)


def gzip_member(record: bytes) -> bytes:
    """One record as its own gzip member, as CommonCrawl stores them (mtime 0: same bytes every time)."""
    return gzip.compress(record, mtime=0)


def write_warc(path: str, records: list[bytes]) -> list[tuple[int, int]]:
    """Write records as per-record gzip members; returns each member's (offset, length)."""
    spans, pos = [], 0
    with open(path, "wb") as f:
        for r in records:
            m = gzip_member(r)
            f.write(m)
            spans.append((pos, len(m)))
            pos += len(m)
    return spans
