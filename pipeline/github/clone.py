"""Shallow, hook-free clones of remote repositories, with a timeout, a size cap and retries.

`git clone --depth 1` runs with prompts off (`GIT_TERMINAL_PROMPT=0`), hooks off
(`core.hooksPath=/dev/null`), no submodules and no LFS smudge, into a temporary directory that
is renamed into place only when the clone is complete and within the size cap, so a killed run
never leaves a half clone that a re-run would trust. A failure is returned with its reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field

RETRYABLE = {"timeout", "network", "git_error"}


@dataclass
class CloneResult:
    repo: str
    url: str
    dest: str
    ok: bool
    reason: str | None = None
    detail: str = ""
    attempts: int = 0
    commit: str | None = None
    size_bytes: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class CloneOptions(BaseModel):
    """How repositories are cloned: the `clone` key of `github_files` and the flags of `codecurate github clone`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    timeout_s: float = Field(default=600.0, gt=0, description="seconds per clone attempt")
    max_bytes: int | None = Field(default=2_000_000_000, ge=1, description="size cap of a checkout in bytes")
    blob_limit: str | None = Field(default=None, pattern=r"^[0-9]+[kmg]?$", description="git --filter=blob:limit=SIZE, e.g. 1m")
    retries: int = Field(default=2, ge=0, description="attempts after a failed one (timeouts, network, git errors)")
    backoff_s: float = Field(default=2.0, ge=0, description="first retry delay in seconds (doubles)")
    workers: int = Field(default=4, ge=1, description="clones at once")


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GIT_TERMINAL_PROMPT="0", GIT_LFS_SKIP_SMUDGE="1", GIT_ASKPASS="/bin/false", SSH_ASKPASS="/bin/false")
    return env


def clone_command(url: str, dest: str, opts: CloneOptions, branch: str | None = None) -> list[str]:
    cmd = ["git", "-c", "core.hooksPath=/dev/null", "-c", "submodule.recurse=false", "-c", "protocol.ext.allow=never",
           "clone", "--depth", "1", "--single-branch", "--no-recurse-submodules", "--quiet"]
    if branch:
        cmd += ["--branch", branch]
    if opts.blob_limit:
        cmd += [f"--filter=blob:limit={opts.blob_limit}"]
    return cmd + ["--", url, dest]


def classify(stderr: str) -> str:
    s = stderr.lower()
    if any(k in s for k in ("not found", "does not exist", "not exported", "does not appear to be a git repository")):
        return "not_found"
    if any(k in s for k in ("could not read username", "authentication failed", "terminal prompts disabled")):
        return "auth_required"
    if any(k in s for k in ("could not resolve", "connection refused", "unable to connect", "connection reset",
                            "connection timed out", "network is unreachable", "early eof", "the remote end hung up")):
        return "network"
    return "git_error"


def tree_size(path: str) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != ".git"]
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def _run_git(cmd: list[str], timeout_s: float) -> tuple[int | None, str]:
    """(returncode, stderr); returncode None on timeout. The whole process group is killed."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=git_env(),
                         stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _, err = p.communicate(timeout=timeout_s)
        return p.returncode, err.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return None, ""


def _attempt(url: str, dest: str, opts: CloneOptions, branch: str | None) -> tuple[str | None, str]:
    tmp = dest + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    rc, err = _run_git(clone_command(url, tmp, opts, branch), opts.timeout_s)
    if rc is None:
        shutil.rmtree(tmp, ignore_errors=True)
        return "timeout", f"no answer within {opts.timeout_s:g}s"
    if rc != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        return classify(err), err.strip().splitlines()[-1] if err.strip() else f"git exited {rc}"
    size = tree_size(tmp)
    if opts.max_bytes is not None and size > opts.max_bytes:
        shutil.rmtree(tmp, ignore_errors=True)
        return "too_large", f"{size} bytes > cap {opts.max_bytes}"
    os.replace(tmp, dest)
    return None, ""


def clone_repo(repo: str, url: str, dest: str, opts: CloneOptions | None = None, branch: str | None = None,
               sleep=time.sleep) -> CloneResult:
    """Clone `url` into `dest` (reused if a complete clone is there), retrying transient failures."""
    from pipeline.github.sources import git_head

    opts = opts or CloneOptions()
    if os.path.isdir(dest):
        return CloneResult(repo, url, dest, True, commit=git_head(dest), size_bytes=tree_size(dest))
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    reason, detail, attempt = None, "", 0
    for attempt in range(1, opts.retries + 2):
        reason, detail = _attempt(url, dest, opts, branch)
        if reason is None:
            return CloneResult(repo, url, dest, True, attempts=attempt, commit=git_head(dest), size_bytes=tree_size(dest))
        if reason not in RETRYABLE or attempt > opts.retries:
            break
        sleep(opts.backoff_s * 2 ** (attempt - 1))
    logger.warning(f"clone failed: {repo} ({url}): {reason}: {detail}")
    return CloneResult(repo, url, dest, False, reason, detail, attempt)


def clone_many(jobs: list[tuple[str, str, str, str | None]], opts: CloneOptions | None = None) -> list[CloneResult]:
    """Clone (repo, url, dest, branch) jobs, at most `opts.workers` at once; results in job order."""
    opts = opts or CloneOptions()
    with ThreadPoolExecutor(max_workers=opts.workers) as pool:
        return list(pool.map(lambda j: clone_repo(j[0], j[1], j[2], opts, j[3]), jobs))
