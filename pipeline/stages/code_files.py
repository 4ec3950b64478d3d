"""Source stage of the core: one document per file of local repositories."""

from __future__ import annotations

import os
import subprocess
from typing import Literal

from datatrove.data import Document, DocumentsPipeline
from pydantic import Field

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
