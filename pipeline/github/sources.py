"""Where repository files come from: local directories, .tar.gz/.zip archives, file-level datasets.

Archives and datasets are opened through fsspec (local, s3://, https://). A directory or archive
is listed as `Entry`s (path, size, how to read it, or why it must be skipped) without extracting anything: archive members are read in memory, and members whose
names escape the archive root (absolute, `..`) or that are links or devices are refused with a
reason. Datasets (parquet or jsonl with content/path/repo columns, The Stack's layout) are
streamed with pyarrow, and each row goes to the task that owns its repo.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter

import pyarrow as pa
import pyarrow.dataset as pads

from pipeline import storage
from pipeline.inputs import NotRegularFile, check_regular, jsonl_rows

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")


@dataclass(slots=True)
class Entry:
    path: str
    size: int | None  # None: known once read (directory listings skip a `stat` per file)
    read: Callable[[int], bytes] | None = None  # an archive member's read(limit)
    skip: str | None = None  # why the entry cannot be read (symlink, unsafe_path, special)
    file: str | None = None  # a local file's path, for `read_file` (a closure per file cost a third of a read)

    def load(self, limit: int) -> bytes:
        """The bytes, or `Unread` past `limit`."""
        return read_file(self.file, limit) if self.file is not None else self.read(limit)


class Unread(Exception):
    """A file left unread past what decides its drop: `reason` is "too_large" (over the reader's limit) or
    "binary" (a NUL in the first 8000 bytes, Linguist's and git's test); `size` is its full size."""

    def __init__(self, reason: str, size: int):
        super().__init__(reason, size)
        self.reason, self.size = reason, size

    def __str__(self) -> str:
        return f"{self.reason}: {self.size} bytes"


BINARY_SCAN = 8000


@dataclass
class RepoListing:
    name: str
    entries: list[Entry]
    commit: str | None = None
    extra: dict = field(default_factory=dict)  # metadata known from elsewhere (stars, license, url)


def safe_member_name(name: str) -> str | None:
    """The normalised relative path of an archive member, or None when it would escape the root."""
    n = name.replace("\\", "/")
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        return None
    parts = [p for p in n.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _strip_common_root(entries: list[Entry]) -> list[Entry]:
    """GitHub archives wrap everything in `repo-branch/`; drop a single shared top directory."""
    tops = {e.path.split("/", 1)[0] for e in entries}
    if len(tops) == 1 and all("/" in e.path for e in entries):
        for e in entries:
            e.path = e.path.split("/", 1)[1]
    return entries


def archive_repo_name(path: str) -> str:
    base = os.path.basename(path)
    for suf in ARCHIVE_SUFFIXES:
        if base.endswith(suf):
            return base[: -len(suf)]
    return base


def git_head(repo: str) -> str | None:
    if not os.path.exists(os.path.join(repo, ".git")):
        return None
    r = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True)
    return (r.stdout.strip() or None) if r.returncode == 0 else None


def read_file(path: str, limit: int) -> bytes:
    """A regular file, whole, through `os.read`; `Unread` when it holds more than `limit` bytes or its
    first `BINARY_SCAN` bytes show it binary (the caller drops it either way, so the rest is not read).

    Those bytes are read first, and they are most files whole: a regular file's read returns fewer bytes
    than asked only at its end (Linux's page-cache reads are not cut short by signals), so one read
    shows it. A longer file's size comes from `fstat`, and it is read in one call that asks a byte
    more. Nothing is asked of the file system beforehand: a listing costs one `getdents` a directory,
    and a small file three system calls, which matters when a repository has thousands."""
    fd = os.open(path, os.O_RDONLY)
    try:
        head = os.read(fd, BINARY_SCAN)
        if head.find(b"\x00") >= 0:
            size = os.fstat(fd).st_size
            raise Unread("too_large" if size > limit else "binary", size)
        if len(head) < BINARY_SCAN:
            if len(head) > limit:
                raise Unread("too_large", len(head))
            return head
        size = os.fstat(fd).st_size
        if size > limit:
            raise Unread("too_large", size)
        chunks, n = [head], len(head)
        while n <= limit:  # the file may have grown since `fstat`
            ask = min(max(size - n, 1 << 16) + 1, limit + 1 - n)
            chunk = os.read(fd, ask)
            chunks.append(chunk)
            n += len(chunk)
            if len(chunk) < ask:
                break
        if n > limit:
            raise Unread("too_large", os.fstat(fd).st_size)
        return b"".join(chunks)
    finally:
        os.close(fd)


def list_directory(root: str, name: str | None = None) -> RepoListing:
    """Every file under `root` (not `.git`), without following links; sorted by path."""
    entries: list[Entry] = []
    root = root.rstrip("/")
    todo = [("", root)]
    while todo:
        rel_dir, full_dir = todo.pop()
        with os.scandir(full_dir) as it:
            for de in it:
                if de.is_file(follow_symlinks=False):  # the usual case first: one test
                    entries.append(Entry(rel_dir + de.name, None, None, None, de.path))
                elif de.is_symlink():
                    entries.append(Entry(rel_dir + de.name, 0, skip="symlink"))
                elif de.is_dir():
                    if de.name != ".git":
                        todo.append((rel_dir + de.name + "/", de.path))
                else:
                    entries.append(Entry(rel_dir + de.name, 0, skip="special"))
    entries.sort(key=attrgetter("path"))
    return RepoListing(name or os.path.basename(root), entries, git_head(root))


def _zip_entries(path: str) -> list[Entry]:
    zf = zipfile.ZipFile(storage.open_file(path, "rb").open())
    out: list[Entry] = []
    for info in zf.infolist():
        if info.is_dir():
            continue
        rel = safe_member_name(info.filename)
        mode = info.external_attr >> 16
        if rel is None:
            out.append(Entry(info.filename, 0, skip="unsafe_path"))
        elif stat.S_ISLNK(mode):
            out.append(Entry(rel, 0, skip="symlink"))
        elif stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # a FIFO or device by its Unix mode (0: no mode recorded)
            out.append(Entry(rel, 0, skip="special"))
        else:
            out.append(Entry(rel, info.file_size, lambda limit, info=info: zf.read(info)))
    return out


def _tar_entries(path: str) -> list[Entry]:
    tf = tarfile.open(fileobj=storage.open_file(path, "rb").open(), mode="r:*")
    out: list[Entry] = []
    for m in tf.getmembers():
        if m.isdir():
            continue
        rel = safe_member_name(m.name)
        if rel is None:
            out.append(Entry(m.name, 0, skip="unsafe_path"))
        elif m.issym() or m.islnk():
            out.append(Entry(rel, 0, skip="symlink"))
        elif not m.isfile():
            out.append(Entry(rel, 0, skip="special"))
        else:
            out.append(Entry(rel, m.size, lambda limit, m=m: tf.extractfile(m).read()))
    return out


def list_archive(path: str) -> RepoListing:
    """A .zip or .tar.gz archive as one repository. Raises `ArchiveError` when unreadable."""
    try:
        entries = _zip_entries(path) if path.endswith(".zip") else _tar_entries(path)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error) as e:
        raise ArchiveError(f"{type(e).__name__}: {e}") from e
    ok = [e for e in entries if e.skip != "unsafe_path"]
    _strip_common_root(ok)
    entries.sort(key=lambda e: e.path)
    return RepoListing(archive_repo_name(path), entries)


class ArchiveError(Exception):
    """An archive that cannot be opened or read (corrupt, truncated)."""


# ---- file-level datasets ---------------------------------------------------------------------


JSONL_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")


def column_problem(path: str, columns: list[str]) -> str | None:
    """One line naming a parquet dataset's missing columns (or why it cannot be opened), else None.
    JSON lines have no schema: a row without a column is dropped as `bad_row` when read."""
    try:
        check_regular(path)
    except NotRegularFile:  # skipped as `special` when read
        return None
    if path.endswith(JSONL_SUFFIXES):
        return None
    fs, p = storage.fs_and_path(path)
    try:
        names = pads.dataset(p, format="parquet", filesystem=fs).schema.names
    except (pa.ArrowInvalid, OSError) as e:
        return f"{path}: not a readable parquet dataset: {str(e).splitlines()[0]}"
    missing = [c for c in columns if c not in names]
    return f"{path}: missing column(s) {missing} (has {names})" if missing else None


Piece = tuple[str, int | None, int | None]  # (dataset file, first row group, end row group); None: the whole file


def dataset_pieces(paths: list[str]) -> list[Piece]:
    """Parquet datasets cut into one piece per row group (footers only are read), so one large file spreads
    over every task; any other file (jsonl, not a regular file) is one piece."""
    import pyarrow.parquet as pq

    pieces: list[Piece] = []
    for path in paths:
        regular = True
        try:
            check_regular(path)
        except NotRegularFile:
            regular = False
        if not regular or path.endswith(JSONL_SUFFIXES):
            pieces.append((path, None, None))
            continue
        try:
            with storage.open_file(path, "rb") as f:
                groups = pq.ParquetFile(f).metadata.num_row_groups
        except (OSError, pa.ArrowException):  # not parquet: the stage's column check says so in one line
            groups = 0
        pieces += [(path, i, i + 1) for i in range(groups)] or [(path, None, None)]
    return pieces


def dataset_rows(piece: Piece, columns: dict[str, str | None], on_bad: Callable[[str, int], None] | None = None) -> Iterator[dict]:
    """Rows of one dataset piece as dicts keyed by role (content, path, repo, stars, license). A JSON line
    that is no row goes to `on_bad(reason, nbytes)`."""
    import pyarrow.parquet as pq

    path, first, end = piece
    wanted = {role: col for role, col in columns.items() if col}
    if path.endswith(JSONL_SUFFIXES):
        for row, why, nbytes in jsonl_rows(path):
            if row is None:
                if on_bad is not None:
                    on_bad(why, nbytes)
                continue
            yield {role: row.get(col) for role, col in wanted.items()}
        return
    with storage.open_file(path, "rb") as f:
        groups = None if first is None else list(range(first, end))
        for batch in pq.ParquetFile(f).iter_batches(batch_size=1024, columns=sorted(set(wanted.values())), row_groups=groups):
            cols = {role: batch.column(col).to_pylist() for role, col in wanted.items()}
            for i in range(batch.num_rows):
                yield {role: vals[i] for role, vals in cols.items()}
