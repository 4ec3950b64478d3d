"""The ingest step: one document per file, from directories, archives, clones and datasets.

Every file is counted in; every file that does not become a document is dropped with its
reason (symlink, unsafe_path, special, too_large, unreadable, undecodable, lfs_pointer, bad_row,
and the tagger's exclusions: empty, binary, vendored, generated, documentation, ...). A repository
that cannot be fetched or opened counts as one item dropped as `clone_<why>` or `archive_corrupt`;
one that is a link (`symlink`) is not followed out of the corpus.
Work is split by task rank over repositories (dataset rows by a hash of their repo), so all
files of a repository land in the same output shard, which repo-level documents rely on.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from datatrove.data import Document, DocumentsPipeline
from loguru import logger

from langs import tag
from pipeline import storage
from pipeline.github import license as licenses
from pipeline.github.clone import CloneOptions, clone_repo
from pipeline.github.sources import (
    BINARY_SCAN,
    ArchiveError,
    Entry,
    RepoListing,
    Unread,
    dataset_rows,
    list_archive,
    list_directory,
)
from pipeline.inputs import NotRegularFile, check_regular
from pipeline.remote import open_stream
from pipeline.steps import Step, Tally


def _size(path: str) -> int:
    fs, p = storage.fs_and_path(path)
    return fs.size(p)


LFS_VERSIONS = (b"version https://git-lfs.github.com/spec/", b"version https://hawser.github.com/spec/")


def is_lfs_pointer(data: bytes) -> bool:
    """A git-lfs pointer (the stand-in git keeps for a large file): under 1 KiB, `version`, `oid` and
    `size` lines. It says nothing about the file, so it is no document."""
    if len(data) >= 1024 or not data.startswith(LFS_VERSIONS):
        return False
    lines = data.split(b"\n")
    return any(x.startswith(b"oid sha256:") for x in lines) and any(x.startswith(b"size ") for x in lines)


def _row_ok(row: dict, data) -> bool:
    """A dataset row has bytes or text, a path and a repo as strings, and stars and license (if any) of their types."""
    stars, lic = row.get("stars"), row.get("license")
    return (isinstance(data, bytes) and isinstance(row.get("path"), str) and isinstance(row.get("repo"), str)
            and (stars is None or (isinstance(stars, (int, float)) and not isinstance(stars, bool)))
            and (lic is None or isinstance(lic, str) or (isinstance(lic, list) and all(isinstance(x, str) for x in lic))))


@dataclass(frozen=True)
class Unit:
    """One repository to read: a local directory, an archive, or a row of a repo list to clone."""

    kind: str  # dir | archive | clone
    ref: str  # path, or full name for clones
    url: str | None = None
    branch: str | None = None
    stars: int | None = None
    license: str | None = None
    size_kb: int | None = None


class RepoFileReader(Step):
    """Source step: task `rank` reads units `rank::world_size` and the dataset rows of its repos."""

    name = "github file reader"

    def __init__(
        self,
        units: list[Unit],
        datasets: list[str] = (),
        columns: dict[str, str | None] | None = None,
        max_bytes: int = 1_000_000,
        source: str = "github",
        clone_dir: str | None = None,
        clone_options: CloneOptions | None = None,
        keep_unknown_language: bool = True,
    ):
        super().__init__()
        self.keep_unknown_language = keep_unknown_language
        self.units, self.datasets = list(units), list(datasets)
        self.columns = columns or {"content": "content", "path": "path", "repo": "repo"}
        self.max_bytes, self.source = max_bytes, source
        self.clone_dir, self.clone_options = clone_dir, clone_options or CloneOptions()

    # ---- one file --------------------------------------------------------------------------

    def _document(self, repo: str, path: str, data: bytes, meta: dict, books: Tally) -> Document | None:
        """Tag (`langs.tag`) and decode one file's bytes; a document, or None after dropping it with a reason.
        `meta` holds the repository's known (not None) fields."""
        size = len(data)
        if not data:
            books.drop("empty", 0)
            return None
        if data.find(b"\x00", 0, BINARY_SCAN) >= 0:  # Linguist's binary test, before the (costlier) tagger
            books.drop("binary", size)
            return None
        if is_lfs_pointer(data):
            books.drop("lfs_pointer", size)
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        t = tag(path, data, text=text)
        if t.reason:  # Linguist's exclusions: vendored, generated, documentation, ...
            books.drop(t.reason, size)
            return None
        if t.language is None and not self.keep_unknown_language:
            books.drop("unknown_language", size)
            return None
        if text is None:
            books.drop("undecodable", size)
            return None
        md = {"source": self.source, "repo": repo, "path": path, "size": size}
        if t.language is not None:
            md["lang"] = t.language
        if t.linguist is not None:
            md["linguist"] = t.linguist
        if t.kind is not None:
            md["lang_kind"] = t.kind
        md.update(meta)
        return Document(text=text, id=f"{repo}:{path}", metadata=md)

    def _entry(self, repo: str, e: Entry, meta: dict, books: Tally) -> Document | None:
        if e.skip or (e.size is not None and e.size > self.max_bytes):
            books.count_in(e.size)
            books.drop(e.skip or "too_large", e.size)
            return None
        try:
            data = e.load(self.max_bytes)
        except Unread as skipped:
            books.count_in(skipped.size)
            books.drop(skipped.reason, skipped.size)
            return None
        except Exception as ex:  # a truncated member, a file that vanished: skip it, keep going
            logger.warning(f"{repo}: cannot read {e.path}: {type(ex).__name__}: {ex}")
            books.count_in(e.size or 0)
            books.drop("unreadable", e.size or 0)
            return None
        books.count_in(len(data) if e.size is None else e.size)
        return self._document(repo, e.path, data, meta, books)

    # ---- one repository ---------------------------------------------------------------------

    def _license(self, listing: RepoListing) -> str | None:
        texts = {}
        for e in listing.entries:
            if not e.skip and (e.size or 0) <= self.max_bytes and licenses.is_license_file(e.path):
                try:
                    texts[e.path] = e.load(self.max_bytes)
                except Exception:  # reported when the file itself is read
                    continue
        return licenses.detect(texts)

    def _repo(self, listing: RepoListing) -> Iterator[Document]:
        meta = dict(listing.extra)
        meta["commit"] = listing.commit
        meta["license"] = self._license(listing) or meta.get("license")
        meta = {k: v for k, v in meta.items() if v is not None}
        self.stat_update("repos")
        books = Tally(self)
        try:
            for e in listing.entries:
                doc = self._entry(listing.name, e, meta, books)
                if doc is not None:
                    yield doc
        finally:
            books.flush()

    def _fail_repo(self, name: str, reason: str, detail: str, nbytes: int = 0) -> None:
        logger.warning(f"{name}: skipped ({reason}): {detail}")
        self.count_in(nbytes=nbytes)
        self.drop(None, reason, nbytes=nbytes)

    def _clone(self, u: Unit):
        dest = os.path.join(self.clone_dir, u.ref.replace("/", "__"))
        cap = self.clone_options.max_bytes
        if cap is not None and u.size_kb is not None and u.size_kb * 1024 > cap:
            return None, f"listed size {u.size_kb} KiB > cap {cap} bytes"
        return clone_repo(u.ref, u.url, dest, self.clone_options, u.branch), ""

    def _units(self, units: list[Unit]) -> Iterator[Document]:
        clones = [u for u in units if u.kind == "clone"]
        with ThreadPoolExecutor(max_workers=self.clone_options.workers) as pool:
            fetched = iter(pool.map(self._clone, clones))  # bounded concurrency, results in order
            for u in units:
                extra = {"stars": u.stars, "license": u.license}
                if u.kind != "clone" and "://" not in u.ref and os.path.islink(u.ref.rstrip("/")):
                    self._fail_repo(u.ref, "symlink", "a linked repository or archive is not followed out of the corpus")
                    continue
                if u.kind == "archive" and "://" not in u.ref and not os.path.isfile(u.ref):
                    self._fail_repo(u.ref, "special", "not a regular file")
                    continue
                if u.kind in ("dir", "archive") and storage.is_remote(u.ref):
                    yield from (self._remote_dir if u.kind == "dir" else self._remote_archive)(u, extra)
                    continue
                if u.kind == "dir":
                    listing = list_directory(u.ref)
                elif u.kind == "archive":
                    try:
                        listing = list_archive(u.ref)
                    except ArchiveError as e:
                        self._fail_repo(u.ref, "archive_corrupt", str(e), _size(u.ref))
                        continue
                else:
                    result, why = next(fetched)
                    if result is None:
                        self._fail_repo(u.ref, "clone_too_large", why)
                        continue
                    if not result.ok:
                        self.stat_update("clone/failed")
                        self._fail_repo(u.ref, f"clone_{result.reason}", result.detail)
                        continue
                    self.stat_update("clone/ok")
                    listing = list_directory(result.dest, name=u.ref)
                    extra["url"] = u.url
                listing.extra = {**extra, **listing.extra}
                yield from self._repo(listing)

    def _remote_dir(self, u: Unit, extra: dict) -> Iterator[Document]:
        """A repository directory on an object store, copied to node-local scratch and read there."""
        name = u.ref.rstrip("/").rsplit("/", 1)[-1]
        with storage.scratch() as tmp:
            fs, p = storage.fs_and_path(u.ref)
            local = os.path.join(tmp, name)
            fs.get(p.rstrip("/") + "/", local, recursive=True)
            listing = list_directory(local, name=name)
            listing.extra = {**extra, **listing.extra}
            yield from self._repo(listing)

    def _remote_archive(self, u: Unit, extra: dict) -> Iterator[Document]:
        """A remote archive, downloaded whole to node-local scratch through a retrying, resuming stream
        (so a network fault fails the task instead of reading as a corrupt archive), then read there."""
        name = u.ref.rstrip("/").rsplit("/", 1)[-1]
        with storage.scratch() as tmp:
            local = os.path.join(tmp, name)
            try:
                with open_stream(u.ref) as src, open(local, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)
            except FileNotFoundError as e:
                self._fail_repo(u.ref, "not_found", str(e))
                return
            try:
                listing = list_archive(local)
            except ArchiveError as e:
                self._fail_repo(u.ref, "archive_corrupt", str(e), os.path.getsize(local))
                return
            listing.extra = {**extra, **listing.extra}
            yield from self._repo(listing)

    def _dataset(self, rank: int, world_size: int) -> Iterator[Document]:
        for piece in self.datasets[rank::world_size]:
            path = piece[0]
            books = Tally(self)
            try:
                check_regular(path)
            except NotRegularFile as e:
                self._fail_repo(path, "special", str(e))
                continue
            try:
                for row in dataset_rows(piece, self.columns, on_bad=books.bad):
                    content = row.get("content")
                    data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
                    size = len(data) if isinstance(data, bytes) else 0
                    books.count_in(size)
                    if not _row_ok(row, data):
                        books.drop("bad_row", size)
                        continue
                    if size > self.max_bytes:
                        books.drop("too_large", size)
                        continue
                    meta = {"stars": row.get("stars"), "license": row.get("license"), "dataset": os.path.basename(path)}
                    meta = {k: v for k, v in meta.items() if v is not None}
                    doc = self._document(row["repo"], row["path"], data, meta, books)
                    if doc is not None:
                        yield doc
            finally:
                books.flush()

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        if self.clone_dir:
            os.makedirs(self.clone_dir, exist_ok=True)
        yield from self._units(self.units[rank::world_size])
        yield from self._dataset(rank, world_size)
