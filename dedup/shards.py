"""The input of a dedup stage: its shards, cut into one piece of rows per task.

With at least as many shards as tasks, task r takes whole shards `[r*F//T, (r+1)*F//T)`, knowing
only the file list. With fewer (one large file), the rows are cut into pieces of about equal
uncompressed bytes (the row groups' sizes in the footers) and a task reads only the row groups of
its range, so one big parquet file keeps every worker equally busy. Either way a document's ref
stays `shard << 32 | row`, so clusters do not depend on the cut.

Besides the stage's own shards (codecurate's document schema), the CLI reads parquet files in
place with any column names (`text_field`, `id_field`; the other columns become metadata).
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datatrove.data import Document
from pydantic import BaseModel, ConfigDict

from dedup import work
from pipeline import documents, storage


@dataclass(frozen=True)
class Piece:
    shard: int
    lo: int  # first row
    hi: int | None  # one past the last row; None: to the end


class Source(BaseModel):
    """Parquet files read in place, with the names of their text and id columns."""

    model_config = ConfigDict(extra="forbid")

    files: list[str]
    text_field: str = "text"
    id_field: str = "id"


class ShardInput:
    def __init__(self, input_dirs: list[str], tasks: int, source: Source | None = None):
        self.input_dirs, self.tasks, self.source = list(input_dirs), tasks, source

    @cached_property
    def files(self) -> list[str]:
        return list(self.source.files) if self.source else storage.list_shards(self.input_dirs)

    def _groups(self, path: str) -> tuple[np.ndarray, np.ndarray]:
        """(rows, uncompressed bytes) of each row group of a file."""
        with storage.open_file(path, "rb") as f:
            md = pq.ParquetFile(f).metadata
        groups = [md.row_group(g) for g in range(md.num_row_groups)]
        return np.array([g.num_rows for g in groups], np.int64), np.array([g.total_byte_size for g in groups], np.float64)

    @cached_property
    def pieces(self) -> list[list[Piece]]:
        """The pieces of every task, in ref order."""
        nf, t = len(self.files), self.tasks
        if nf >= t:
            return [[Piece(s, 0, None) for s in range(r * nf // t, (r + 1) * nf // t)] for r in range(t)]
        # cut by uncompressed bytes (the work of a task), at row resolution: a row group's bytes spread over its rows
        rows, sizes, first = [], [], [0]
        for path in self.files:
            group_rows, group_bytes = self._groups(path)
            rows.append(group_rows)
            sizes.append(group_bytes)
            first.append(first[-1] + int(group_rows.sum()))
        row_at = np.concatenate([[0], np.cumsum(np.concatenate(rows))])
        byte_at = np.concatenate([[0.0], np.cumsum(np.maximum(np.concatenate(sizes), 1.0))])
        cut = np.round(np.interp(byte_at[-1] * np.arange(t + 1) / t, byte_at, row_at)).astype(np.int64)
        cut[-1] = row_at[-1]
        starts = np.array(first)
        out: list[list[Piece]] = []
        for r in range(t):
            lo, hi = cut[r], cut[r + 1]
            mine = []
            for s in range(nf):
                a, b = max(lo, starts[s]), min(hi, starts[s + 1])
                if a < b:
                    mine.append(Piece(s, int(a - starts[s]), int(b - starts[s])))
            out.append(mine)
        return out

    @cached_property
    def _routing(self) -> tuple[np.ndarray, np.ndarray]:
        starts, tasks = [], []
        for r, pieces in enumerate(self.pieces):
            for p in pieces:
                starts.append(int(work.make_ref(p.shard, np.array([p.lo]))[0]))
                tasks.append(r)
        order = np.argsort(starts, kind="stable")
        return np.array(starts, dtype=np.uint64)[order], np.array(tasks, dtype=np.int64)[order]

    def task_of(self, refs: np.ndarray) -> np.ndarray:
        """The task whose pieces hold each ref (where the decision about it is applied)."""
        starts, tasks = self._routing
        return tasks[np.searchsorted(starts, refs, side="right") - 1]

    def batches(self, rank: int, columns: list[str], batch_size: int = 1024):
        """(shard, first row, {column: values}) for task `rank`'s rows; columns among id, text, url, metadata."""
        for piece in self.pieces[rank]:
            for row0, batch in self._read(piece, self._physical(columns), batch_size):
                yield piece.shard, row0, self._logical(piece.shard, row0, batch, columns)

    def documents(self, rank: int, skip: np.ndarray | None = None):
        """(Document or None, its text's UTF-8 bytes) for task `rank`'s rows, in order; the rows whose ref is in
        `skip` (sorted) are not built (None): only their size is read, from the Arrow column."""
        for piece in self.pieces[rank]:
            for row0, batch in self._read(piece, None, 1024):
                sizes = self._text_bytes(batch)
                built = np.ones(len(batch), bool)
                if skip is not None and len(skip):
                    built = ~np.isin(work.make_ref(piece.shard, np.arange(row0, row0 + len(batch))), skip, assume_unique=True)
                rows = iter(batch.filter(pa.array(built)).to_pylist())
                for i, (b, n) in enumerate(zip(built.tolist(), sizes.tolist())):
                    yield (self._document(piece.shard, row0 + i, next(rows)) if b else None), n

    def _text_bytes(self, batch) -> np.ndarray:
        """What `documents.text_bytes` gives each row's Document (no text or a non-string column: 0)."""
        name = self.source.text_field if self.source else "text"
        col = batch.column(name) if name in batch.schema.names else None
        if col is None or not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            return np.zeros(len(batch), np.int64)
        return pc.binary_length(col).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)

    def _read(self, piece: Piece, columns, batch_size: int):
        with storage.open_file(self.files[piece.shard], "rb") as f:
            pf = pq.ParquetFile(f)
            md = pf.metadata
            row, groups, first = 0, [], None
            for g in range(md.num_row_groups):
                n = md.row_group(g).num_rows
                if row + n > piece.lo and (piece.hi is None or row < piece.hi):
                    groups.append(g)
                    first = row if first is None else first
                row += n
            if not groups:
                return
            pos = first
            for batch in pf.iter_batches(batch_size=batch_size, row_groups=groups, columns=columns):
                a = max(piece.lo - pos, 0)
                b = len(batch) if piece.hi is None else min(len(batch), piece.hi - pos)
                if a < b:
                    yield pos + a, batch.slice(a, b - a)
                pos += len(batch)

    # the CLI's tables: map their columns onto the document schema's names

    def _physical(self, columns: list[str]) -> list[str] | None:
        if not self.source:
            return columns
        if "metadata" in columns:
            return None
        return [c for c in (self.source.text_field, self.source.id_field, "url") if c in self._schema_names]

    @cached_property
    def _schema_names(self) -> list[str]:
        with storage.open_file(self.files[0], "rb") as f:
            return pq.ParquetFile(f).schema_arrow.names

    def _logical(self, shard: int, row0: int, batch, columns: list[str]) -> dict[str, list]:
        """The requested columns under the document schema's names, column by column."""
        if not self.source:
            return batch.select(columns).to_pydict()
        names, n = batch.schema.names, len(batch)
        text_f, id_f = self.source.text_field, self.source.id_field
        out: dict[str, list] = {}
        if "text" in columns:
            out["text"] = [t if isinstance(t, str) else "" for t in batch.column(text_f).to_pylist()] if text_f in names else [""] * n
        if "id" in columns:
            stem = posixpath.basename(self.files[shard])
            ids = batch.column(id_f).to_pylist() if id_f in names else [None] * n
            out["id"] = [str(x) if x is not None else f"{stem}:{row0 + i}" for i, x in enumerate(ids)]
        if "url" in columns:
            out["url"] = batch.column("url").to_pylist() if "url" in names else [None] * n
        if "metadata" in columns:
            rest = [c for c in names if c not in (text_f, id_f)]
            rows = batch.select(rest).to_pylist() if rest else [{}] * n
            out["metadata"] = [json.dumps(r, default=str) for r in rows]
        return out

    def _document(self, shard: int, row: int, r: dict) -> Document:
        if not self.source:
            return documents.from_row(r)
        text = r.get(self.source.text_field)
        doc_id = r.get(self.source.id_field)
        meta = {k: v for k, v in r.items() if k not in (self.source.text_field, self.source.id_field)}
        stem = posixpath.basename(self.files[shard])
        return Document(text=text if isinstance(text, str) else "", id=str(doc_id) if doc_id is not None else f"{stem}:{row}", metadata=meta)
