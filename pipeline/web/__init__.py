"""CommonCrawl ingest and HTML extraction that keeps math and code.

Sources (`sources`) name WARC/WET files or byte ranges of records; `fetch` reads ranges over
HTTP(S), S3 or any fsspec path with retries; `warc` splits gzip members and parses records with
fastwarc; `charset` decodes payloads; `extract` turns HTML into Markdown-like text on top of
resiliparse; `urls` normalises URLs for exact dedup. `stages` wires them into the `web_ingest`
and `web_extract` stage kinds.
"""
