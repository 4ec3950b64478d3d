"""Input of `codecurate dedup`: documents from parquet or JSON-lines files with any column names."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from loguru import logger

from pipeline.inputs import jsonl_rows
from pipeline.stage import StageContext, StageSpec
from pipeline.steps import Step

SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json", ".ndjson")

def table_files(path: str) -> list[str]:
    """`path` itself, or the parquet/jsonl files under the directory `path`, sorted."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"input not found: {path}")
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        found += [os.path.join(root, f) for f in sorted(files) if f.endswith(SUFFIXES)]
    if not found:
        raise FileNotFoundError(f"no parquet or jsonl files under {path}")
    return found

class TableReader(Step):
    """One document per row; the text and id come from the named fields, other fields become metadata."""

    name = "table reader"

    def __init__(self, files: list[str], text_field: str, id_field: str):
        super().__init__()
        self.files, self.text_field, self.id_field = files, text_field, id_field

    def _rows(self, path: str):
        if path.endswith(".parquet"):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
                yield from batch.to_pylist()
            return
        for row, why, nbytes in jsonl_rows(path):
            yield row if row is not None else {"__bad__": why, "__bytes__": nbytes}

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for path in self.files[rank::world_size]:
            stem = os.path.basename(path)
            n = 0
            try:
                for n, row in enumerate(self._rows(path)):
                    text = row.get(self.text_field)
                    if not isinstance(text, str):
                        nbytes = row["__bytes__"] if "__bad__" in row else len(str(row).encode())
                        self.count_in(nbytes=nbytes)
                        self.drop(None, row.get("__bad__", "no_text"), nbytes=nbytes)
                        continue
                    meta = {k: v for k, v in row.items() if k not in (self.text_field, self.id_field)}
                    doc_id = row.get(self.id_field)
                    doc = Document(text=text, id=str(doc_id) if doc_id is not None else f"{stem}:{n}", metadata=meta)
                    self.count_in(doc)
                    yield doc
            except (OSError, EOFError, ValueError, UnicodeDecodeError) as e:
                # a truncated or corrupt file: what was read stands, the rest is one counted skip
                logger.warning(f"{path}: unreadable after row {n}: {type(e).__name__}: {e}")
                self.count_in(nbytes=0)
                self.drop(None, "unreadable_file")

class TableInput(StageSpec):
    """Parquet or JSON-lines files (a file or a directory) as documents."""

    needs_input = False
    path: str
    text_field: str = "text"
    id_field: str = "id"

    def default_tasks(self, ctx: StageContext) -> int:
        return len(table_files(self.path))

    def build(self, ctx: StageContext):
        return [TableReader(table_files(self.path), self.text_field, self.id_field)]

