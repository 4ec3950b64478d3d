"""Source stages of the core: files from local repositories, and text from WARC files.

The GitHub and CommonCrawl issues build full crawlers on top; these are the plain readers
the demo starts from.
"""

from __future__ import annotations

import glob
import os
import subprocess
from typing import Literal

from datatrove.data import Document, DocumentsPipeline
from pydantic import Field

from pipeline import storage
from pipeline.recipe import InputPath
from pipeline.stage import StageContext, StageSpec
from pipeline.steps import Step


def list_repos(paths: list[str], layout: str) -> list[str]:
    """Repository roots: the paths themselves, or (layout=parent) their subdirectories."""
    repos: list[str] = []
    for p in paths:
        if layout == "repo":
            repos.append(p.rstrip("/"))
        else:
            repos += sorted(os.path.join(p, d) for d in os.listdir(p) if os.path.isdir(os.path.join(p, d)))
    return repos


def git_head(repo: str) -> str | None:
    if not os.path.isdir(os.path.join(repo, ".git")):
        return None
    r = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True)
    return r.stdout.strip() or None if r.returncode == 0 else None


def decode_source(data: bytes) -> tuple[str | None, str | None]:
    """(text, None) for readable source, or (None, reason) for empty, binary or undecodable bytes."""
    if not data:
        return None, "empty"
    if b"\x00" in data[:8000]:
        return None, "binary"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "undecodable"


class RepoFileReader(Step):
    """One document per file of each repository, in path order; task `rank` takes repos `rank::world_size`."""

    name = "repo file reader"

    def __init__(self, repos: list[str], max_bytes: int, source: str = "github"):
        super().__init__()
        self.repos, self.max_bytes, self.source = repos, max_bytes, source

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for repo in self.repos[rank::world_size]:
            name = os.path.basename(repo.rstrip("/"))
            commit = git_head(repo)
            for root, dirs, files in os.walk(repo):
                dirs[:] = sorted(d for d in dirs if d != ".git")
                for fn in sorted(files):
                    full = os.path.join(root, fn)
                    rel = os.path.relpath(full, repo)
                    if os.path.islink(full):
                        self.count_in(nbytes=0)
                        self.drop(None, "symlink")
                        continue
                    size = os.path.getsize(full)
                    self.count_in(nbytes=size)
                    if size > self.max_bytes:
                        self.drop(None, "too_large", nbytes=size)
                        continue
                    with open(full, "rb") as f:
                        raw = f.read()
                    text, why = decode_source(raw)
                    if why:
                        self.drop(None, why, nbytes=size)
                        continue
                    meta = {"source": self.source, "repo": name, "path": rel, "size": size}
                    if commit:
                        meta["commit"] = commit
                    yield Document(text=text, id=f"{name}:{rel}", metadata=meta)


class CodeFiles(StageSpec):
    """Read every file of local repositories (one document per file)."""

    needs_input = False
    paths: list[InputPath] = Field(min_length=1)
    layout: Literal["repo", "parent"] = "parent"
    max_bytes: int = Field(default=1_000_000, ge=1)

    def default_tasks(self, ctx: StageContext) -> int:
        return max(1, min(64, len(list_repos(self.paths, self.layout))))

    def build(self, ctx: StageContext):
        return [RepoFileReader(list_repos(self.paths, self.layout), self.max_bytes)]


def expand_inputs(paths: list[str]) -> list[str]:
    """Local globs expanded and sorted; URLs and plain paths kept as given."""
    out: list[str] = []
    for p in paths:
        if "://" not in p and any(c in p for c in "*?["):
            out += sorted(glob.glob(p, recursive=True))
        else:
            out.append(p)
    return out


class WarcTextReader(Step):
    """HTML response records of WARC files, as main-content plain text (resiliparse)."""

    name = "warc text reader"

    def __init__(self, files: list[str]):
        super().__init__()
        self.files = files

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from fastwarc.warc import ArchiveIterator, WarcRecordType
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.encoding import bytes_to_str, detect_encoding

        for path in self.files[rank::world_size]:
            with storage.open_file(path, "rb") as f:
                for rec in ArchiveIterator(f, record_types=WarcRecordType.response, parse_http=True):
                    url = rec.headers.get("WARC-Target-URI")
                    body = rec.reader.read()
                    self.count_in(nbytes=len(body))
                    ctype = (rec.http_headers.get("Content-Type") or "") if rec.http_headers else ""
                    if "html" not in ctype.lower():
                        self.drop(None, "not_html", nbytes=len(body))
                        continue
                    text = extract_plain_text(bytes_to_str(body, detect_encoding(body)), main_content=True)
                    if not text.strip():
                        self.drop(None, "empty_text", nbytes=len(body))
                        continue
                    yield Document(
                        text=text,
                        id=rec.headers.get("WARC-Record-ID") or f"{path}:{rec.stream_pos}",
                        metadata={"source": "web", "url": url, "date": rec.headers.get("WARC-Date")},
                    )


class WarcText(StageSpec):
    """Read WARC files (local paths, globs or URLs) into plain-text web documents."""

    needs_input = False
    paths: list[InputPath] = Field(min_length=1)

    def default_tasks(self, ctx: StageContext) -> int:
        return max(1, len(expand_inputs(self.paths)))

    def build(self, ctx: StageContext):
        return [WarcTextReader(expand_inputs(self.paths))]
