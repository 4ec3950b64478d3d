"""Stage kinds `web_ingest` (WARC/WET records to decoded documents) and `web_extract` (text)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, PrivateAttr, model_validator

from pipeline import storage
from pipeline.fields import Fraction, InputPath
from pipeline.stage import Phase, StageContext, StageSpec
from pipeline.web import sources


class WebIngest(StageSpec):
    """Read CommonCrawl-style WARC/WET data from exactly one of three sources.

    - `paths`: local files, globs or URLs (http(s)://, s3://);
    - `crawl`: files `first_file`.. of the crawl's `warc.paths.gz` / `wet.paths.gz`;
    - `index`: the columnar URL index (parquet), filtered by `domains` / `url_prefixes`, whose
      records are fetched by byte range.

    `base_url` is where crawl paths and index file names resolve (https mirror, s3://bucket/ or a
    local copy); `storage_options` holds fsspec options per protocol (e.g. `s3: {endpoint_url: ...}`).
    """

    needs_input = False

    paths: list[InputPath] = []
    crawl: str | None = Field(default=None, pattern=r"^CC-MAIN-\d{4}-\d{2}$")
    crawl_files: Literal["warc", "wet"] = "warc"
    first_file: int = Field(default=0, ge=0)
    num_files: int | None = Field(default=None, ge=1)
    index: str | None = None
    domains: list[str] = []
    url_prefixes: list[str] = []
    max_records: int | None = Field(default=None, ge=1)
    base_url: str = "https://data.commoncrawl.org/"
    storage_options: dict[str, dict] = {}
    max_record_bytes: int = Field(default=16 << 20, ge=1024)
    retries: int = Field(default=4, ge=0)
    backoff: float = Field(default=0.5, ge=0)
    timeout: float = Field(default=30.0, gt=0)
    ranges_per_task: int = Field(default=1000, ge=1)
    max_binary_fraction: Fraction = 0.1  # pages with more control characters or U+FFFD: `binary_content`
    max_bad_utf8_fraction: Fraction = 0.01  # mostly-UTF-8 pages with more invalid bytes: `mojibake`

    _plan: tuple | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in ("paths", "crawl", "index") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of paths, crawl, index (got {', '.join(given) or 'none'})")
        if self.index and not (self.domains or self.url_prefixes):
            raise ValueError("index needs domains or url_prefixes to select records")
        if (self.domains or self.url_prefixes) and not self.index:
            raise ValueError("domains and url_prefixes select from an index; set index")
        return self

    def plan(self) -> tuple[list[sources.Item], dict[str, str | None]]:
        """The items to read, in a fixed order, and the crawl of each file where known."""
        if self._plan is None:
            if self.paths:
                files = storage.expand(self.paths, "WARC/WET file")
                self._plan = ([sources.Item(p) for p in files], {})
            elif self.crawl:
                stop = self.first_file + self.num_files if self.num_files else None
                files = sources.crawl_files(self.base_url, self.crawl, self.crawl_files, self.first_file, stop)
                self._plan = ([sources.Item(p) for p in files], {p: self.crawl for p in files})
            else:
                hits = sources.select_from_index(
                    self.index, self.base_url, self.domains, self.url_prefixes, self.max_records
                )
                self._plan = ([i for i, _ in hits], {i.path: c for i, c in hits})
        return self._plan

    def default_tasks(self, ctx: StageContext) -> int:
        items, _ = self.plan()
        if self.index:
            return max(1, math.ceil(len(items) / self.ranges_per_task))
        return max(1, len(items))

    def build(self, ctx: StageContext):
        from pipeline.web.steps import WarcRecordReader

        items, crawls = self.plan()
        from pipeline.remote import Retry

        retry = Retry(retries=self.retries, backoff_s=self.backoff, timeout_s=self.timeout)
        return [WarcRecordReader(items, crawls, self.max_record_bytes, retry, self.max_binary_fraction,
                                 self.max_bad_utf8_fraction)]


class WebExtract(StageSpec):
    """HTML documents of a `web_ingest` stage to Markdown-like text keeping math and code.

    With `dedup_urls`, only the first document of each normalised URL (`urls.dedup_key`) in shard
    order is kept, so the same page from several crawls or files appears once. It is the keyed
    exact dedup of `dedup_url` (`dedup.decide`): URL keys by partition (`partitions`), groups,
    then the drops applied while extracting; no task reads the URLs of other shards.
    """

    main_content: bool = True
    dedup_urls: bool = True
    partitions: int = Field(default=256, ge=1, le=1 << 20)

    def phases(self, ctx: StageContext) -> list[Phase]:
        from dedup.decide import ApplyDecisions, ExactGroups, ExactKeys
        from pipeline.web.steps import ExtractText

        tasks = self.tasks or self.default_tasks(ctx)
        if not self.dedup_urls:
            return [Phase("main", [ctx.reader(), ExtractText(self.main_content), ctx.writer()], tasks)]
        common = dict(input_dirs=ctx.input_dirs, work_dir=ctx.work_dir(), tasks=tasks, partitions=self.partitions)
        keys = ExactKeys(**common, level="url", normalise=[], stars_field="stars", keep=["first"])
        return [
            Phase("url keys", [keys], tasks),
            Phase("url groups", [ExactGroups(**common, keep=["first"])], tasks),
            Phase("main", [ApplyDecisions(**common, reason="duplicate_url"), ExtractText(self.main_content), ctx.writer()], tasks),
        ]

    @classmethod
    def report_sections(cls, stage_dir: str, stats: dict) -> list[tuple[str, str]]:
        """How many kept pages carry math and code, and how many formulas and code spans."""
        import matplotlib.pyplot as plt

        from pipeline.report import figure_html, table_html
        from pipeline.web.steps import ExtractText

        step = next((v for k, v in stats.get("steps", {}).items() if k.endswith(ExtractText.name)), {})
        kept = stats.get("kept", {}).get("docs", 0)
        rows = [
            ["pages kept", kept, ""],
            ["pages with math", int(step.get("pages_with_math", 0)), f"{int(step.get('math_kept', 0))} formulas"],
            ["pages with code", int(step.get("pages_with_code", 0)), f"{int(step.get('code_kept', 0))} blocks and spans"],
        ]
        fig, ax = plt.subplots(figsize=(5, 1.8))
        ax.barh([r[0] for r in rows][::-1], [r[1] for r in rows][::-1], color=["#6a9", "#69c", "#999"])
        ax.set_xlabel("pages")
        return [("Math and code kept by extraction", figure_html(fig) + table_html(["", "pages", "items"], rows))]
