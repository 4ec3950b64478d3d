"""The datatrove steps of the web stages: read records, extract text (URL dedup: `dedup.decide`)."""

from __future__ import annotations

import logging

from datatrove.data import Document, DocumentsPipeline

from pipeline.inputs import NotRegularFile, check_regular
from pipeline.remote import RangeReader, Retry, open_stream
from pipeline.steps import Step
from pipeline.web import sources, urls
from pipeline.web.charset import Undecodable, decode_html, utf8_binary_fraction
from pipeline.web.warc import Record, Skip

log = logging.getLogger(__name__)
HTML_TYPES = ("text/html", "application/xhtml+xml")


class WarcRecordReader(Step):
    """HTML response records (WARC) and text conversion records (WET) as documents of decoded text.

    Task `rank` takes items `rank::world_size`. Whole files are streamed; index hits are fetched
    by byte range. Every record that is not a document for a known reason is counted dropped.
    """

    name = "warc record reader"

    def __init__(self, items: list[sources.Item], crawls: dict[str, str | None], max_record_bytes: int, retry: Retry,
                 max_binary_fraction: float = 0.1, max_bad_utf8_fraction: float = 0.01):
        super().__init__()
        self.max_binary_fraction, self.max_bad_utf8_fraction = max_binary_fraction, max_bad_utf8_fraction
        self.items = items
        self.crawls = crawls
        self.max_record_bytes = max_record_bytes
        self.retry = retry

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from pipeline.web import warc

        ranges = RangeReader(self.retry)
        for item in self.items[rank::world_size]:
            crawl = self.crawls.get(item.path) or sources.crawl_of(item.path)
            try:
                if item.length is None:
                    check_regular(item.path)  # a FIFO would block for ever
                    with open_stream(item.path, self.retry) as f:
                        for rec in warc.iter_stream(f, self.max_record_bytes):
                            yield from self._emit(rec, item.path, crawl)
                    continue
                blob = ranges.read(item.path, item.offset, item.length)
            except (FileNotFoundError, NotRegularFile) as e:  # bad input; a fault that outlasts its retries fails the task
                log.warning("missing: %s", e)
                self.count_in(nbytes=item.length or 0)
                self.drop(None, "unreadable_file", nbytes=item.length or 0)
                continue
            for rec in warc.iter_blob(blob, item.offset, self.max_record_bytes):
                yield from self._emit(rec, item.path, crawl)

    def _emit(self, rec: Record | Skip, path: str, crawl: str | None):
        if isinstance(rec, Skip):
            log.warning("%s @%d: skipped record (%s)", path, rec.offset, rec.reason)
            self.count_in(nbytes=rec.nbytes)
            self.drop(None, rec.reason, nbytes=rec.nbytes)
            return
        n = len(rec.payload)
        self.count_in(nbytes=n)
        if rec.kind == "response" and rec.status != 200:
            self.drop(None, f"http_{(rec.status or 0) // 100}xx", nbytes=n)
            return
        if rec.kind == "conversion":
            fmt, charset = "text", "utf-8"
            try:
                text = rec.payload.decode("utf-8")
            except UnicodeDecodeError:
                self.drop(None, "undecodable_charset", nbytes=n)
                return
            if utf8_binary_fraction(rec.payload, len(text)) > self.max_binary_fraction:
                self.drop(None, "binary_content", nbytes=n)
                return
        else:
            fmt = "html"
            if not (rec.content_type.startswith(HTML_TYPES) or (not rec.content_type and b"<html" in rec.payload[:2048].lower())):
                self.drop(None, "not_html", nbytes=n)
                return
            try:
                text, charset = decode_html(rec.payload, rec.http_charset, self.max_bad_utf8_fraction, self.max_binary_fraction)
            except Undecodable as e:
                self.drop(None, e.reason, nbytes=n)
                return
        yield Document(
            text=text,
            id=(rec.record_id or f"{path}@{rec.offset}").strip("<>"),
            metadata={
                "source": "web",
                "url": rec.url,
                "domain": urls.registered_domain(rec.url),
                "crawl": crawl,
                "fetch_date": rec.date,
                "content_type": rec.content_type or None,
                "charset": charset,
                "format": fmt,
                "warc_file": path,
                "warc_offset": rec.offset,
            },
        )


class ExtractText(Step):
    """HTML documents to Markdown-like text (math and code kept); text documents pass through."""

    name = "extract text"

    def __init__(self, main_content: bool = True):
        super().__init__()
        self.main_content = main_content

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from pipeline.web.extract import extract

        for doc in data:
            if doc.metadata.get("format", "html") == "html":
                with self.track_time():
                    try:
                        out = extract(doc.text, main_content=self.main_content)
                    except Exception as e:  # resiliparse parser errors on hostile markup
                        log.warning("extraction failed for %s: %s", doc.metadata.get("url"), e)
                        self.drop(doc, "extract_error")
                        continue
                if out.stats["math_kept"]:
                    self.stat_update("pages_with_math")
                    self.stat_update("math_kept", value=out.stats["math_kept"])
                if out.stats["code_kept"]:
                    self.stat_update("pages_with_code")
                    self.stat_update("code_kept", value=out.stats["code_kept"])
                out.stats["html_chars"] = len(doc.text)
                doc.text = out.text
                doc.metadata["format"] = "markdown"
                doc.metadata["extract"] = out.stats | {"chars": len(out.text)}
            if not doc.text.strip():
                self.drop(doc, "empty_text")
                continue
            yield doc
