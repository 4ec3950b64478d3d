"""The one storage layer: every path in codecurate (local, s3://, https://, gs://, ...) goes through here.

- Listings are never cached: on object stores a cached listing misses what other nodes wrote.
- Writes are atomic: local files are written under a temporary name and renamed; object-store
  objects appear only when their upload completes, so they are written in place.
- Globs are expanded on every filesystem, in sorted order; a pattern that matches nothing is an error.
- Code that needs a real local file (memory maps, fastText, git) works in `scratch()`, a node-local
  directory (`CODECURATE_SCRATCH`, default the system temp dir), and `upload()`s the result.
- Credentials: `configure({"s3": {...}})` sets fsspec's per-protocol defaults in this process and in
  `FSSPEC_<PROTOCOL>` environment variables, which fsspec reads at import in every worker process.
  They never travel inside pipeline steps, so they never reach `recipe.json` or executor logs.
"""

from __future__ import annotations

import contextlib
import glob as _glob
import json
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import fsspec
import fsspec.config
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

SHARD_GLOB = "part-*.parquet"
SCRATCH_ENV = "CODECURATE_SCRATCH"
GLOB_CHARS = "*?["


class StorageError(Exception):
    """A path cannot be used (no match, missing credentials, unreachable); one line for the user."""


def protocol(path: str) -> str:
    return path.split("://", 1)[0] if "://" in path else "file"


def is_remote(path: str) -> bool:
    return protocol(path) not in ("file", "local")


def fs_and_path(path: str, **options: Any):
    """(filesystem, path inside it). Listing caches are off (see the module docstring)."""
    return url_to_fs(path, use_listings_cache=False, **options)


def configure(options: dict[str, dict[str, Any]] | None) -> dict[str, str]:
    """Per-protocol defaults (endpoint, credentials) for every filesystem this process opens.

    Returns the environment variables that carry them to worker processes."""
    env = {}
    for proto, opts in (options or {}).items():
        fsspec.config.conf.setdefault(proto, {}).update(opts)
        env[f"FSSPEC_{proto.upper()}"] = json.dumps(fsspec.config.conf[proto])
    os.environ.update(env)
    if env:
        fsspec.AbstractFileSystem.clear_instance_cache()
    return env


@contextlib.contextmanager
def configured(options: dict[str, dict[str, Any]] | None) -> Iterator[dict[str, str]]:
    """`configure(options)` for the length of a run, then the process's settings as they were."""
    conf = {k: dict(v) for k, v in fsspec.config.conf.items()}
    names = [f"FSSPEC_{p.upper()}" for p in (options or {})]
    env_before = {n: os.environ.get(n) for n in names}
    try:
        yield configure(options)
    finally:
        if options:
            fsspec.config.conf.clear()
            fsspec.config.conf.update(conf)
            for n, v in env_before.items():
                if v is None:
                    os.environ.pop(n, None)
                else:
                    os.environ[n] = v
            fsspec.AbstractFileSystem.clear_instance_cache()


def join(base: str, *parts: str) -> str:
    if "://" in base:
        return posixpath.join(base, *parts)
    return os.path.join(base, *parts)


def with_protocol(orig: str, found: str) -> str:
    """fsspec returns protocol-less paths; put `orig`'s protocol back so other code can open them."""
    if "://" not in orig:
        return found
    proto = orig.split("://", 1)[0]
    return found if found.startswith(proto + "://") else f"{proto}://{found}"


def exists(path: str) -> bool:
    fs, p = fs_and_path(path)
    return fs.exists(p)


def isdir(path: str) -> bool:
    fs, p = fs_and_path(path)
    return fs.isdir(p)


def has_glob(path: str) -> bool:
    return any(c in path.split("://", 1)[-1] for c in GLOB_CHARS)


def glob(pattern: str) -> list[str]:
    """Sorted matches of a glob (`**` recursive) on any filesystem, with the protocol kept; local
    matches stay relative when the pattern is (paths are recorded in document metadata)."""
    if not is_remote(pattern):
        return sorted(_glob.glob(pattern.removeprefix("file://"), recursive=True))
    fs, p = fs_and_path(pattern)
    return [with_protocol(pattern, f) for f in sorted(fs.glob(p))]


def expand(paths: list[str], what: str = "path") -> list[str]:
    """Globs expanded (sorted) on every filesystem; plain paths kept in order.

    Raises `StorageError` naming the first pattern that matches nothing."""
    out: list[str] = []
    for path in paths:
        if has_glob(path):
            found = glob(path)
            if not found:
                raise StorageError(f"no {what} matches {path!r}")
            out += found
        else:
            out.append(path)
    return out


def find(path: str, suffixes: tuple[str, ...] = ()) -> list[str]:
    """Every file under a directory (sorted, protocol kept), optionally only those ending in `suffixes`."""
    fs, p = fs_and_path(path)
    return [with_protocol(path, f) for f in sorted(fs.find(p)) if not suffixes or f.endswith(suffixes)]


def input_files(paths: list[str], suffixes: tuple[str, ...], what: str = "input") -> list[str]:
    """The files a command is given, in the same forms everywhere: a file, a directory (a stage's
    `part-*.parquet` shards when it has them, else its files ending in `suffixes`, recursively, without
    names starting with `.` or `_`), a glob, or an fsspec URL of any of these. Raises `StorageError`
    naming an input that gives no file."""
    out: list[str] = []
    for path in paths:
        if has_glob(path):
            found = glob(path)
        elif isdir(path):
            root = path.split("://", 1)[-1].rstrip("/")
            found = list_shards([path]) or [f for f in find(path, suffixes)
                                            if not any(part.startswith((".", "_")) for part in f.split("://", 1)[-1].removeprefix(root).split("/"))]
        else:
            found = [path] if exists(path) else []
        if not found:
            raise StorageError(f"{what} not found: {path} (no such file, or no {' / '.join(suffixes)} files in it)")
        out += found
    return out


def ls(path: str) -> list[str]:
    """Names (not paths) directly under a directory; [] when it does not exist."""
    fs, p = fs_and_path(path)
    try:
        entries = fs.ls(p, detail=False)
    except FileNotFoundError:
        return []
    return sorted(posixpath.basename(e.rstrip("/")) for e in entries)


def list_shards(dirs: list[str]) -> list[str]:
    """The parquet shards of the given stage directories, in recipe order then name order."""
    out: list[str] = []
    for d in dirs:
        out += glob(join(d, SHARD_GLOB))
    return out


def open_file(path: str, mode: str = "rb", **kw):
    return fsspec.open(path, mode, **kw)


def read_bytes(path: str) -> bytes:
    fs, p = fs_and_path(path)
    return fs.cat_file(p)


def read_json(path: str, default: Any = None) -> Any:
    fs, p = fs_and_path(path)
    try:
        with fs.open(p, "r") as f:
            return json.load(f)
    except FileNotFoundError:
        return default


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "wb") -> Iterator[Any]:
    """A file that appears at `path` complete or not at all (nothing on an exception)."""
    fs, p = fs_and_path(path)
    local = isinstance(fs, LocalFileSystem)
    parent = posixpath.dirname(p)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    target = p + ".tmp" if local else p
    try:
        with fs.open(target, mode) as f:
            yield f
    except BaseException:
        if local:
            with contextlib.suppress(OSError):
                os.remove(target)
        raise
    if local:
        os.replace(target, p)


def write_bytes(path: str, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True))


def read_parquet(path: str, **kw: Any):
    """A whole parquet file as a table (`pyarrow.parquet.read_table` options). Decoded in this thread by default:
    pyarrow 26, decoding a Python file object on its thread pool, aborts about one process in ten at exit
    ("terminate called without an active exception"), after the work is done; tasks run in parallel anyway."""
    import pyarrow.parquet as pq

    with open_file(path, "rb") as f:
        return pq.read_table(f, **{"use_threads": False, **kw})


def write_parquet(path: str, table, **kw: Any) -> None:
    """A parquet file written atomically (`pyarrow.parquet.write_table` options; zstd unless told)."""
    import pyarrow.parquet as pq

    with atomic_open(path, "wb") as f:
        pq.write_table(table, f, **{"compression": "zstd", **kw})


def rm(path: str) -> None:
    """Remove a file or a directory tree; nothing when it does not exist."""
    fs, p = fs_and_path(path)
    with contextlib.suppress(FileNotFoundError):
        if fs.exists(p):
            fs.rm(p, recursive=True)


def scratch_root() -> str:
    return os.environ.get(SCRATCH_ENV) or tempfile.gettempdir()


@contextlib.contextmanager
def scratch(prefix: str = "codecurate-") -> Iterator[str]:
    """A node-local temporary directory for libraries that need real files; removed afterwards."""
    root = scratch_root()
    os.makedirs(root, exist_ok=True)
    d = tempfile.mkdtemp(prefix=prefix, dir=root)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def upload(local_path: str, path: str) -> None:
    """Copy a local file to `path` (any filesystem) atomically."""
    with open(local_path, "rb") as src, atomic_open(path, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 22)


def download(path: str, local_path: str) -> str:
    """Copy `path` (any filesystem) to a local file; returns `local_path`."""
    with open_file(path, "rb") as src, open(local_path, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 22)
    return local_path


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
    """A local path holding `path`'s bytes: the file itself when local, else a scratch copy."""
    if not is_remote(path):
        yield path.removeprefix("file://")
        return
    with scratch() as d:
        yield download(path, os.path.join(d, posixpath.basename(path.rstrip("/")) or "file"))


def describe(e: BaseException) -> str:
    """One line for a storage failure, naming the likely cause (credentials, endpoint, path)."""
    if isinstance(e, StorageError):
        return str(e)
    name = type(e).__name__
    text = (str(e).strip().splitlines() or [""])[0]
    low = f"{name} {text}".lower()
    if "nocredentials" in low or "unable to locate credentials" in low or "partialcredentials" in low:
        return "no credentials (set storage_options.<protocol> key/secret in the recipe, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
    if "invalidaccesskeyid" in low or "signaturedoesnotmatch" in low or "accessdenied" in low or "forbidden" in low:
        return f"access denied ({text[:160]})"
    if "endpointconnectionerror" in low or "connect" in low and ("refused" in low or "timeout" in low or "error" in low):
        return f"cannot reach the storage endpoint ({text[:200]})"
    if isinstance(e, FileNotFoundError):
        return f"no such file or bucket ({text[:200]})"
    if isinstance(e, PermissionError):
        return f"permission denied ({text[:200]})"
    return f"{name}: {text[:200]}"
