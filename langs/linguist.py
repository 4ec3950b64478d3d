"""GitHub Linguist's language data (languages.yml and friends under `langs/data/linguist/`, MIT).

Loaded once per process, on first use, into plain dicts the cascade looks up: extension,
filename, interpreter and alias indexes. Keys are lower-cased the way Linguist matches them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import marshal
import os
from dataclasses import dataclass

DATA = os.path.join(os.path.dirname(__file__), "data")
LINGUIST = os.path.join(DATA, "linguist")


def _cache_dir() -> str:
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "codecurate")


def disk_cached(name: str, source: bytes, build):
    """`build()`, kept as `marshal` data in the user's cache directory under `name` and a hash of `source`
    (the bytes it is derived from) and read from there after: parsing languages.yml (0.1-0.4 s) or decoding
    the classifier (0.16 s) would be most of a short `langs tag` run. Best effort: an unwritable or damaged
    cache only costs the build."""
    cached = os.path.join(_cache_dir(), f"{name}-{hashlib.sha1(source).hexdigest()[:16]}.marshal")
    try:
        with open(cached, "rb") as f:
            return marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        pass
    data = build()
    tmp = f"{cached}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        with open(tmp, "wb") as f:
            marshal.dump(data, f)
        os.replace(tmp, cached)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.remove(tmp)
    return data


def load_yaml(name: str):
    """A data file, parsed (through `disk_cached`)."""
    with open(os.path.join(LINGUIST, name), "rb") as f:
        raw = f.read()

    def parse():
        import yaml

        return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))

    return disk_cached(f"linguist-{name}", raw, parse)


@dataclass(frozen=True)
class Language:
    name: str
    kind: str  # programming | data | markup | prose
    group: str | None
    extensions: tuple[str, ...]
    filenames: tuple[str, ...]
    interpreters: tuple[str, ...]


@dataclass
class Index:
    languages: dict[str, Language]
    by_extension: dict[str, list[str]]  # ".h" -> ["C", "C++", "Objective-C"]
    by_filename: dict[str, list[str]]  # exact basename
    by_interpreter: dict[str, list[str]]
    by_alias: dict[str, str]  # lower-cased alias or name -> name
    generic_extensions: frozenset[str]


def extnames(basename: str) -> list[str]:
    """All dotted suffixes, longest first: "a.tar.gz" -> [".tar.gz", ".gz"] (as Linguist's FileBlob)."""
    parts = basename.lower().split(".")[1:]
    return ["." + ".".join(parts[i:]) for i in range(len(parts))]


@functools.cache
def index() -> Index:
    raw = load_yaml("languages.yml")
    langs: dict[str, Language] = {}
    by_ext: dict[str, list[str]] = {}
    by_fn: dict[str, list[str]] = {}
    by_int: dict[str, list[str]] = {}
    by_alias: dict[str, str] = {}
    for name, v in raw.items():
        lang = Language(
            name=name,
            kind=v.get("type", "programming"),
            group=v.get("group"),
            extensions=tuple(v.get("extensions", ())),
            filenames=tuple(v.get("filenames", ())),
            interpreters=tuple(v.get("interpreters", ())),
        )
        langs[name] = lang
        for e in lang.extensions:
            by_ext.setdefault(e.lower(), []).append(name)
        for f in lang.filenames:
            by_fn.setdefault(f, []).append(name)
        for i in lang.interpreters:
            by_int.setdefault(i, []).append(name)
        # Linguist's default alias is the lower-cased name with spaces as dashes
        for a in [name.lower(), name.lower().replace(" ", "-"), *v.get("aliases", ())]:
            by_alias.setdefault(a.lower(), name)
    generic = frozenset(e.lower() for e in load_yaml("generic.yml")["extensions"])
    return Index(langs, by_ext, by_fn, by_int, by_alias, generic)

