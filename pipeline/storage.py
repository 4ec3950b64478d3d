"""fsspec helpers: every path in codecurate (local, s3://, https://) goes through here."""

from __future__ import annotations

import json
import posixpath
from typing import Any

import fsspec
from fsspec.core import url_to_fs

SHARD_GLOB = "part-*.parquet"


def fs_and_path(path: str):
    return url_to_fs(path)


def join(base: str, *parts: str) -> str:
    if "://" in base:
        return posixpath.join(base, *parts)
    import os

    return os.path.join(base, *parts)


def exists(path: str) -> bool:
    fs, p = fs_and_path(path)
    return fs.exists(p)


def list_shards(dirs: list[str]) -> list[str]:
    """The parquet shards of the given stage directories, in recipe order then name order."""
    out: list[str] = []
    for d in dirs:
        fs, p = fs_and_path(d)
        files = sorted(fs.glob(posixpath.join(p, SHARD_GLOB)))
        out += [with_protocol(d, f) for f in files]
    return out


def with_protocol(orig: str, found: str) -> str:
    """fsspec returns protocol-less paths; put `orig`'s protocol back so other code can open them."""
    if "://" not in orig:
        return found
    proto = orig.split("://", 1)[0]
    return f"{proto}://{found}" if not found.startswith(proto) else found


def read_json(path: str, default: Any = None) -> Any:
    fs, p = fs_and_path(path)
    if not fs.exists(p):
        return default
    with fs.open(p, "r") as f:
        return json.load(f)


def write_json(path: str, obj: Any) -> None:
    """Write JSON atomically where the filesystem allows (local: write then rename)."""
    fs, p = fs_and_path(path)
    fs.makedirs(posixpath.dirname(p) or ".", exist_ok=True)
    tmp = p + ".tmp"
    with fs.open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
    fs.mv(tmp, p)


def open_file(path: str, mode: str = "rb", **kw):
    return fsspec.open(path, mode, **kw)
