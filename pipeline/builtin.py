"""The stage kinds that ship with the core: `basic_filter` (size, lines, letters), `concat`, and `files`
(documents from files outside the run: what the stand-alone commands read)."""

from __future__ import annotations

import posixpath

from datatrove.data import Document, DocumentsPipeline
from loguru import logger
from pydantic import Field

from pipeline import documents, storage
from pipeline.fields import Fraction
from pipeline.inputs import jsonl_rows
from pipeline.io import iter_rows
from pipeline.stage import StageContext, StageSpec
from pipeline.steps import Filter, Step

TABLE_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json", ".ndjson")


class LengthAlphaFilter(Filter):
    """Drops documents by size, longest line and share of alphabetic characters."""

    name = "basic filter"

    def __init__(self, min_chars: int, max_chars: int, max_line_length: int, min_alpha_fraction: float):
        super().__init__()
        self.min_chars, self.max_chars = min_chars, max_chars
        self.max_line_length, self.min_alpha_fraction = max_line_length, min_alpha_fraction

    def reason(self, doc: Document) -> str | None:
        n = len(doc.text)
        if n < self.min_chars:
            return "too_short"
        if n > self.max_chars:
            return "too_long"
        if max(map(len, doc.text.splitlines() or [""])) > self.max_line_length:
            return "long_line"
        if sum(c.isalpha() for c in doc.text) < self.min_alpha_fraction * n:
            return "low_alpha"
        return None


class BasicFilter(StageSpec):
    """Size, line-length and alphabetic-share filter."""

    min_chars: int = Field(default=1, ge=0)
    max_chars: int = Field(default=1_000_000, ge=1)
    max_line_length: int = Field(default=100_000, ge=1)
    min_alpha_fraction: Fraction = 0.0

    def build(self, ctx: StageContext):
        return [LengthAlphaFilter(self.min_chars, self.max_chars, self.max_line_length, self.min_alpha_fraction)]


class Concat(StageSpec):
    """Reads every input stage's shards and writes them again as one stage (one shard per input shard)."""


class FileReader(Step):
    """One document per row of parquet or JSON-lines files. Codecurate shards (a stage's output) keep their
    metadata; other tables take the text and id from the named fields, the other fields becoming metadata."""

    name = "file reader"

    def __init__(self, files: list[str], text_field: str = "text", id_field: str = "id"):
        super().__init__()
        self.files, self.text_field, self.id_field = files, text_field, id_field

    def _rows(self, path: str):
        if path.endswith(".parquet"):
            yield from iter_rows(path)
            return
        for row, why, nbytes in jsonl_rows(path):
            yield row if row is not None else {"__bad__": why, "__bytes__": nbytes}

    def _document(self, row: dict, stem: str, n: int) -> Document:
        if (self.text_field, self.id_field) == ("text", "id") and isinstance(row.get("metadata"), str) and set(row) <= set(documents.SCHEMA.names):
            return documents.from_row(row)
        meta = {k: v for k, v in row.items() if k not in (self.text_field, self.id_field)}
        doc_id = row.get(self.id_field)
        return Document(text=row[self.text_field], id=str(doc_id) if doc_id is not None else f"{stem}:{n}", metadata=meta)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for path in self.files[rank::world_size]:
            stem = posixpath.basename(path)
            n = 0
            try:
                for n, row in enumerate(self._rows(path)):
                    if not isinstance(row.get(self.text_field), str):
                        nbytes = row["__bytes__"] if "__bad__" in row else len(str(row).encode())
                        self.count_in(nbytes=nbytes)
                        self.drop(None, row.get("__bad__", "no_text"), nbytes=nbytes)
                        continue
                    doc = self._document(row, stem, n)
                    self.count_in(doc)
                    yield doc
            except (OSError, EOFError, ValueError, UnicodeDecodeError) as e:
                # a truncated or corrupt file: what was read stands, the rest is one counted skip
                logger.warning(f"{path}: unreadable after row {n}: {type(e).__name__}: {e}")
                self.count_in(nbytes=0)
                self.drop(None, "unreadable_file")


class Files(StageSpec):
    """Parquet or JSON-lines files as documents: a file, a directory, a glob or an fsspec URL (`storage.input_files`),
    or a list of them (read in that order)."""

    needs_input = False
    path: str | list[str]
    text_field: str = "text"
    id_field: str = "id"

    def files(self) -> list[str]:
        return storage.input_files([self.path] if isinstance(self.path, str) else self.path, TABLE_SUFFIXES)

    def default_tasks(self, ctx: StageContext) -> int:
        return len(self.files())

    def build(self, ctx: StageContext):
        return [FileReader(self.files(), self.text_field, self.id_field)]
