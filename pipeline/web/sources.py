"""What a web ingest reads: WARC/WET files (paths, globs, a crawl's path list) or record byte
ranges selected from the columnar URL index.
"""

from __future__ import annotations

import gzip
import posixpath
import re
from dataclasses import dataclass

from pipeline import storage

CRAWL_RE = re.compile(r"CC-MAIN-\d{4}-\d{2}")
INDEX_COLUMNS = ["url", "url_host_registered_domain", "warc_filename", "warc_record_offset", "warc_record_length"]


@dataclass(frozen=True, order=True)
class Item:
    """A whole file (`length` None) or one record's byte range in it."""

    path: str
    offset: int = 0
    length: int | None = None


def crawl_of(path: str, default: str | None = None) -> str | None:
    m = CRAWL_RE.search(path)
    return m.group(0) if m else default


def resolve(base_url: str | None, rel: str) -> str:
    """`rel` under the mirror `base_url` (an https URL, s3://bucket/ or a local directory)."""
    if not base_url or "://" in rel or rel.startswith("/"):
        return rel
    return posixpath.join(base_url, rel) if "://" in base_url else storage.join(base_url, rel)


def crawl_files(base_url: str, crawl: str, kind: str, start: int, stop: int | None) -> list[str]:
    """Files `start:stop` of a crawl's `warc.paths.gz` / `wet.paths.gz`, resolved under `base_url`."""
    listing = resolve(base_url, f"crawl-data/{crawl}/{kind}.paths.gz")
    lines = gzip.decompress(storage.read_bytes(listing)).decode("utf-8").splitlines()
    return [resolve(base_url, line.strip()) for line in lines[start:stop] if line.strip()]


def select_from_index(
    index: str,
    base_url: str | None,
    domains: list[str],
    url_prefixes: list[str],
    limit: int | None,
) -> list[tuple[Item, str | None]]:
    """Record ranges whose registered domain or URL prefix matches, sorted by file and offset.

    The index is parquet (CommonCrawl's cc-index-table columns) read with pyarrow through
    fsspec, so a local copy, S3 or an HTTP mirror all work; filters are pushed down to pyarrow.
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    fs, p = storage.fs_and_path(index)
    if storage.has_glob(index):
        files = sorted(fs.glob(p))
    elif fs.isdir(p):
        files = sorted(f for f in fs.find(p) if f.endswith(".parquet"))
    else:
        files = [p]
    if not files:
        raise ValueError(f"no parquet files in URL index {index!r}")
    data = ds.dataset(files, filesystem=fs, format="parquet", partitioning="hive")
    cond = None
    if domains:
        cond = pc.field("url_host_registered_domain").isin(domains)
    for prefix in url_prefixes:
        c = pc.starts_with(pc.field("url"), prefix)
        cond = c if cond is None else cond | c
    cols = INDEX_COLUMNS + (["crawl"] if "crawl" in data.schema.names else [])
    rows = data.to_table(columns=cols, filter=cond).to_pylist()
    out = {}
    for r in rows:
        item = Item(resolve(base_url, r["warc_filename"]), int(r["warc_record_offset"]), int(r["warc_record_length"]))
        out[item] = r.get("crawl") or crawl_of(r["warc_filename"])
    chosen = sorted(out.items())
    return chosen[:limit] if limit else chosen
