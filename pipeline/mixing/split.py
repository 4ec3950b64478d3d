"""Cutting a document larger than its share into pieces, so the mixer can take a window of it.

Repository documents (`github_repo_docs`: files in dependency order, each after its path in a
comment, paths listed in `metadata["files"]`) are cut at file boundaries; other documents, and any
piece still above the limit, at paragraph ends (blank lines), then at line ends. Pieces join back
to the exact text, so a window of consecutive pieces is a substring of the document and keeps its
files in dependency order.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from datatrove.data import Document

from pipeline.github.repo_docs import COMMENT

_STARTS = "|".join(map(re.escape, sorted({s for s, _ in COMMENT.values()} | {"//"}, key=len, reverse=True)))
_ENDS = "|".join(map(re.escape, sorted({e for _, e in COMMENT.values() if e})))
_FINER = (re.compile(r"\n[ \t]*\n\s*"), re.compile(r"\n"))  # paragraph ends, then line ends

Span = tuple[int, int, "int | None"]  # [start, end) in the text, index in metadata["files"]


def file_starts(text: str, files: list[str]) -> list[int] | None:
    """Offset of each file's path comment, in order; None when one is missing (not a repo document)."""
    starts, pos = [], 0
    for path in files:
        m = re.compile(rf"^(?:{_STARTS}) {re.escape(path)}(?: (?:{_ENDS}))?$", re.M).search(text, pos)
        if m is None or (not starts and m.start() != 0):
            return None
        starts.append(m.start())
        pos = m.end()
    return starts


def _cut(text: str, a: int, b: int, f, pattern: re.Pattern) -> list[Span]:
    ends = [m.end() for m in pattern.finditer(text, a, b) if m.end() < b] + [b]
    return [(s, e, f) for s, e in zip([a] + ends[:-1], ends)]


def pieces(doc: Document, count: Callable[[list[str]], list[int]], limit: int) -> tuple[list[Span], list[int], list[bool]]:
    """(spans, tokens of each, whether each may start a window): file spans for a repository document
    (a window starts at a file), paragraphs otherwise; any span above `limit` tokens is cut finer.
    `count` gives the tokens of a batch of texts."""
    text, files = doc.text, doc.metadata.get("files")
    starts = file_starts(text, files) if isinstance(files, list) and files else None
    if starts:
        spans = [(a, b, f) for f, (a, b) in enumerate(zip(starts, starts[1:] + [len(text)]))]
    else:
        spans = _cut(text, 0, len(text), None, _FINER[0])
    tokens = count([text[a:b] for a, b, _ in spans])
    for pattern in _FINER:
        if all(t <= limit for t in tokens):
            break
        finer: list[Span] = []
        for (a, b, f), t in zip(spans, tokens):
            finer += [(a, b, f)] if t <= limit else _cut(text, a, b, f, pattern)
        if len(finer) == len(spans):
            continue
        known = {(a, b): t for (a, b, _), t in zip(spans, tokens)}
        fresh = [(a, b) for a, b, _ in finer if (a, b) not in known]
        known.update(zip(fresh, count([text[a:b] for a, b in fresh])))
        spans, tokens = finer, [known[a, b] for a, b, _ in finer]
    file_starts_at = set(starts or ())
    return spans, tokens, [not starts or a in file_starts_at for a, _, _ in spans]


def window_document(doc: Document, spans: list[Span], i: int, j: int) -> Document:
    """Pieces [i, j) of `doc` as a document of their own; a repository keeps the files it covers."""
    meta = dict(doc.metadata)
    meta["split"] = {"of": doc.id, "pieces": [i, j], "total_pieces": len(spans),
                     "chars": [spans[i][0], spans[j - 1][1]]}
    covered = sorted({f for _, _, f in spans[i:j] if f is not None})
    if covered:
        files = [meta["files"][f] for f in covered]
        meta["files"], meta["n_files"] = files, len(files)
        if isinstance(meta.get("dependencies"), dict):
            keep = set(files)
            meta["dependencies"] = {p: [d for d in ds if d in keep] for p, ds in meta["dependencies"].items() if p in keep}
            meta["dependencies"] = {p: ds for p, ds in meta["dependencies"].items() if ds}
    return Document(text=doc.text[spans[i][0]:spans[j - 1][1]], id=f"{doc.id}#split{i}-{j}", metadata=meta)
