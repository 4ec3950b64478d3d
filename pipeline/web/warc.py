"""WARC/WET records from byte streams, one gzip member at a time, with every failure named.

fastwarc alone stops at the first corrupt member or lying `Content-Length` and silently skips
records whose header it cannot parse, losing everything after them. So gzip members are split
here (resynchronising on the next gzip magic after a corrupt member), each record's
framing is checked against its `Content-Length`, and fastwarc parses the record itself (WARC and
HTTP headers). Each bad member or record becomes one `Skip` with a reason. Inflating uses
ISA-L (`isal`), about twice as fast as zlib, which keeps this within reach of fastwarc alone.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from fastwarc.warc import ArchiveIterator, WarcRecordType
from isal import isal_zlib

GZIP_MAGIC = b"\x1f\x8b\x08"
_CHUNK = 1 << 20
_CLEN = re.compile(rb"^content-length:[ \t]*(\d+)[ \t\r]*$", re.I | re.M)
_WANTED = (WarcRecordType.response, WarcRecordType.conversion)


@dataclass
class Record:
    """A response (WARC) or conversion (WET) record: headers parsed, payload not decoded."""

    url: str | None
    record_id: str | None
    date: str | None
    kind: str  # "response" or "conversion"
    status: int | None
    content_type: str
    http_charset: str | None
    payload: bytes
    offset: int  # of the gzip member (or record) in its file


@dataclass
class Skip:
    """A record (or member) that could not be read; `nbytes` is what it held, if known."""

    reason: str
    offset: int
    nbytes: int = 0


def gzip_members(stream, max_bytes: int) -> Iterator[tuple[int, bytes | None, str | None, int]]:
    """(offset, data, reason, compressed size) per gzip member of `stream`.

    `data` is None when the member is corrupt (`corrupt_gzip`), cut off (`truncated_gzip`) or
    inflates past `max_bytes` (`too_large`); the walk continues with the next member.
    """
    buf = bytearray()
    base = 0  # file offset of buf[0]
    eof = False

    def fill() -> bool:
        nonlocal eof
        if eof:
            return False
        b = stream.read(_CHUNK)
        if not b:
            eof = True
            return False
        buf.extend(b)
        return True

    while buf or fill():
        if len(buf) < 3 and fill():
            continue
        if bytes(buf[:3]) != GZIP_MAGIC:
            yield base, None, "corrupt_gzip", 0
            skipped = _resync(buf, fill)
            base += skipped
            continue
        d = isal_zlib.decompressobj(31)
        parts: list[bytes] = []
        size = 0
        pos = 0
        reason = None
        while not d.eof:
            if pos >= len(buf) and not fill():
                reason = "truncated_gzip"
                break
            chunk = bytes(buf[pos : pos + (1 << 16)])
            pos += len(chunk)
            try:
                while chunk and not d.eof:
                    out = d.decompress(chunk, _CHUNK)
                    chunk = d.unconsumed_tail
                    size += len(out)
                    if size > max_bytes:
                        reason = "too_large"
                        parts = []
                    elif reason is None:
                        parts.append(out)
            except isal_zlib.error:
                reason = "corrupt_gzip"
                break
        if reason in ("corrupt_gzip", "truncated_gzip"):
            yield base, None, reason, len(buf) if reason == "truncated_gzip" else pos
            if reason == "truncated_gzip":
                return
            del buf[:1]
            base += 1 + _resync(buf, fill)
            continue
        end = pos - len(d.unused_data)
        yield base, (None if reason else b"".join(parts)), reason, end
        del buf[:end]
        base += end


def _resync(buf: bytearray, fill) -> int:
    """Drop bytes from the front of `buf` up to the next gzip magic; returns how many."""
    dropped = 0
    while True:
        i = buf.find(GZIP_MAGIC)
        if i >= 0:
            del buf[:i]
            return dropped + i
        keep = min(len(buf), 2)
        dropped += len(buf) - keep
        del buf[: len(buf) - keep]
        if not fill():
            dropped += len(buf)
            buf.clear()
            return dropped


def plain_records(stream, max_bytes: int) -> Iterator[tuple[int, bytes | None, str | None, int]]:
    """(position, record bytes, reason, size) per record of an uncompressed WARC stream.

    A record is its header block, `Content-Length` bytes and a `CRLF CRLF` trailer. A header
    that cannot be read is `malformed_header`, a length that does not land on the trailer is
    `length_mismatch` (both resume at the next line starting `WARC/`), a record over
    `max_bytes` is `too_large` (read past, never held) and one cut off by the end of the stream
    is `truncated_record`.
    """
    buf = bytearray()
    base = 0
    eof = False

    def fill() -> bool:
        nonlocal eof
        b = b"" if eof else stream.read(_CHUNK)
        if not b:
            eof = True
            return False
        buf.extend(b)
        return True

    def resync(start: int) -> int:
        """Drop bytes up to the next record start after `start`; returns how many."""
        nonlocal base
        dropped = 0
        while True:
            i = buf.find(b"\r\nWARC/", start)
            if i >= 0:
                del buf[: i + 2]
                base += i + 2
                return dropped + i + 2
            cut = max(start, len(buf) - 8)
            dropped += cut
            base += cut
            del buf[:cut]
            start = 0
            if not fill():
                dropped += len(buf)
                base += len(buf)
                buf.clear()
                return dropped

    while True:
        while (len(buf) < 2 and fill()) or buf[:2] == b"\r\n":
            if buf[:2] == b"\r\n":
                del buf[:2]
                base += 2
        if not buf:
            return
        hdr_end = buf.find(b"\r\n\r\n")
        while hdr_end < 0 and len(buf) < (1 << 16) and fill():
            hdr_end = buf.find(b"\r\n\r\n")
        m = _CLEN.search(buf, 0, hdr_end + 2) if hdr_end >= 0 and buf.startswith(b"WARC/") else None
        if m is None:
            at = base
            yield at, None, "malformed_header", resync(1)
            continue
        end = hdr_end + 4 + int(m.group(1))
        if end + 4 > max_bytes:
            at, need = base, end + 4
            while len(buf) < need:
                need -= len(buf)
                base += len(buf)
                buf.clear()
                if not fill():
                    break
            n = min(need, len(buf))
            del buf[:n]
            base += n
            yield at, None, "too_large", end + 4
            continue
        while len(buf) < end + 4 and fill():
            pass
        if len(buf) < end + 4:
            yield base, None, "truncated_record", len(buf)
            base += len(buf)
            buf.clear()
            return
        if buf[end : end + 4] != b"\r\n\r\n":
            at = base
            yield at, None, "length_mismatch", resync(hdr_end)
            continue
        yield base, bytes(buf[: end + 4]), None, end + 4
        del buf[: end + 4]
        base += end + 4


def parse_record(raw: bytes, offset: int) -> Record | Skip | None:
    """One framed record parsed by fastwarc; None for record types that are not documents."""
    found = []
    for r in ArchiveIterator(io.BytesIO(raw), record_types=WarcRecordType.any_type, parse_http=True, stream_detect=False):
        if r.record_type in (WarcRecordType.unknown, WarcRecordType.no_type):
            break
        found.append(_record(r, offset) if r.record_type in _WANTED else None)
    if len(found) != 1:
        return Skip("malformed_header", offset, len(raw))
    if isinstance(found[0], Record) and found[0].status is None and found[0].kind == "response":
        return Skip("malformed_http", offset, len(raw))
    return found[0]


def _record(r, offset: int) -> Record:
    h = r.headers
    if r.record_type == WarcRecordType.response:
        http = r.http_headers if r.is_http else None
        status = http.status_code if http is not None else None
        ctype = (r.http_content_type or "").lower()
        charset = r.http_charset
    else:
        status, ctype, charset = None, (h.get("Content-Type") or "text/plain").split(";")[0].strip().lower(), "utf-8"
    return Record(
        url=h.get("WARC-Target-URI"),
        record_id=h.get("WARC-Record-ID"),
        date=h.get("WARC-Date"),
        kind="response" if r.record_type == WarcRecordType.response else "conversion",
        status=status,
        content_type=ctype,
        http_charset=charset,
        payload=r.reader.read(),
        offset=offset,
    )


def _one_record(data: bytes) -> bool:
    """Whether `data` is exactly one well-framed record (header, Content-Length bytes, trailer)."""
    hdr_end = data.find(b"\r\n\r\n")
    if hdr_end < 0 or not data.startswith(b"WARC/"):
        return False
    m = _CLEN.search(data, 0, hdr_end + 2)
    return m is not None and hdr_end + 8 + int(m.group(1)) == len(data) and data.endswith(b"\r\n\r\n")


def read_records(stream, offset: int, max_bytes: int) -> Iterator[Record | Skip]:
    """Records and skips of uncompressed WARC data (one gzip member, or a whole plain file)."""
    for pos, raw, reason, size in plain_records(stream, max_bytes):
        if raw is None:
            yield Skip(reason, offset + pos, size)
            continue
        rec = parse_record(raw, offset + pos)
        if rec is not None:
            yield rec


def iter_stream(stream, max_bytes: int) -> Iterator[Record | Skip]:
    """Every document record of a WARC/WET stream (per-record gzip or uncompressed)."""
    head = stream.read(3)
    rest = io.BufferedReader(_Prepend(head, stream)) if head else stream
    if head == GZIP_MAGIC:
        for off, data, reason, csize in gzip_members(rest, max_bytes):
            if data is None:
                yield Skip(reason, off, csize)
            else:
                if _one_record(data):  # the usual layout: parse in place, no copies
                    rec = parse_record(data, off)
                    if rec is not None:
                        yield rec
                    continue
                # records keep their member's offset: that is where a range fetch starts
                for rec in read_records(io.BytesIO(data), 0, max_bytes):
                    rec.offset = off
                    if isinstance(rec, Skip) and rec.reason == "truncated_record":
                        rec.reason = "length_mismatch"  # the member is whole (CRC checked): the length lied
                    yield rec
    elif head:
        yield from read_records(rest, 0, max_bytes)


def iter_blob(blob: bytes, offset: int, max_bytes: int) -> Iterator[Record | Skip]:
    """Records of one fetched byte range (a gzip member in CommonCrawl's layout)."""
    for rec in iter_stream(io.BytesIO(blob), max_bytes):
        rec.offset += offset
        yield rec


class _Prepend(io.RawIOBase):
    """A stream with some already-read bytes put back in front."""

    def __init__(self, head: bytes, stream):
        self.head = head
        self.stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self.head:
            n = min(len(b), len(self.head))
            b[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.stream.read(len(b))
        b[: len(data)] = data
        return len(data)
