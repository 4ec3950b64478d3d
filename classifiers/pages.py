"""Pages for training and recall: seed files (parquet/jsonl), prefix lists, and where a page sits.

The loop groups pages in one of two ways (`group_by`): web pages by URL (the domain is the
registered domain, prefixes are `host/dir/.../`), GitHub files by repository (the domain is
the repo, prefixes are `repo/dir/.../`, e.g. `owner/name/src/`).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator

from pipeline import documents, storage
from pipeline.web import urls


class SeedError(ValueError):
    """A seed or labelled-data file cannot be used; the message is one line for the user."""


def _files(path: str) -> list[str]:
    try:
        return storage.input_files([path], (".parquet", ".jsonl"), "pages")
    except storage.StorageError as e:
        raise SeedError(str(e)) from None


def read_pages(path: str) -> Iterator[dict]:
    """Rows with at least `text` (and `id`, `url` when present) from parquet/jsonl files or a directory of them."""
    for f in _files(path):
        if f.endswith(".parquet"):
            table = storage.read_parquet(f)
            cols = set(table.column_names)
            if "text" not in cols:
                raise SeedError(f"{f}: no 'text' column (columns: {', '.join(sorted(cols))})")
            for i, row in enumerate(table.to_pylist()):
                if "metadata" in cols and set(documents.PROMOTED) <= cols:
                    row = {**json.loads(row.get("metadata") or "{}"), **{k: v for k, v in row.items() if v is not None}}
                yield _page(row, f, i)
        elif f.endswith(".jsonl"):
            with storage.open_file(f, "r", encoding="utf-8") as fh:
                for i, line in enumerate(fh):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise SeedError(f"{f}: line {i + 1}: invalid JSON ({e.msg})") from None
                    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                        raise SeedError(f"{f}: line {i + 1}: expected an object with a string 'text'")
                    yield _page(row, f, i)
        else:
            raise SeedError(f"{f}: expected a .parquet or .jsonl file")


def _page(row: dict, f: str, i: int) -> dict:
    if not isinstance(row.get("text"), str):
        raise SeedError(f"{f}: row {i + 1}: 'text' must be a string")
    out = dict(row)
    out["id"] = str(row.get("id") or f"{posixpath.basename(f)}:{i}")
    return out


def read_prefix_list(path: str, group_by: str = "url") -> list[str]:
    """One URL (or `repo/dir/`) prefix per line (blank lines and # comments skipped)."""
    with storage.open_file(path, "r", encoding="utf-8") as fh:
        lines = [ln.strip() for ln in fh]
    return [normalize_prefix(ln, group_by) for ln in lines if ln and not ln.startswith("#")]


def normalize_prefix(prefix: str, group_by: str = "url") -> str:
    """`https://Host/a/b` -> `host/a/b` (scheme dropped, host lower-cased), the form prefixes are compared in;
    repo prefixes (`owner/name/src/`) are kept as written, without a leading slash."""
    p = prefix.strip()
    if group_by == "repo":
        return p.lstrip("/")
    if "://" in p:
        p = p.split("://", 1)[1]
    host, sep, rest = p.partition("/")
    return host.lower() + sep + rest


def _root_and_path(page: dict, group_by: str) -> tuple[str, str]:
    if group_by == "repo":
        return (page.get("repo") or "").strip("/"), (page.get("path") or "").lstrip("/")
    host, _, path = urls.host_path(page.get("url")).partition("/")
    return host, path


def page_key(page: dict, group_by: str = "url") -> str:
    """Where a page sits, in the form prefixes match against: `host/path` of its URL, or `repo/path` of a file."""
    if group_by == "repo":
        root, path = _root_and_path(page, group_by)
        return f"{root}/{path}" if root else ""
    return urls.host_path(page.get("url"))


def page_domain(page: dict, group_by: str = "url") -> str:
    """The unit the >threshold domain rule counts: the page's registered domain, or a file's repository."""
    return (page.get("repo") or "").strip("/") if group_by == "repo" else page.get("domain") or ""


def page_prefixes(page: dict, group_by: str = "url", max_depth: int = 3) -> list[tuple[int, str]]:
    """(depth, prefix) pairs: depth 0 is `host/` (or `repo/`), depth d adds the page's first d directories.

    The last path segment is the page itself, so `h/a/b/page.html` gives h/, h/a/, h/a/b/.
    """
    root, path = _root_and_path(page, group_by)
    if not root:
        return []
    dirs = [d for d in path.split("/")[:-1] if d]
    out = [(0, root + "/")]
    for d in range(1, min(max_depth, len(dirs)) + 1):
        out.append((d, root + "/" + "/".join(dirs[:d]) + "/"))
    return out


def under(page: dict, prefixes: list[str], group_by: str = "url") -> bool:
    key = page_key(page, group_by)
    return bool(key) and any(key.startswith(p) for p in prefixes)
