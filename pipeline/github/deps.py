"""File dependencies inside a repository, and DeepSeek-Coder's dependency order.

Imports, includes, `using`, `require`, `use` are read with tree-sitter queries for Python,
JavaScript/TypeScript, Java, C/C++, C#, Go, Rust, PHP and Ruby, and with a regular expression
for other languages. An import is resolved to a file of the same repository by matching path
suffixes (`a.b.c` -> `a/b/c.py`, `"./x"` -> `x.js` next to the importer, `<foo/bar.h>`), and
the files are ordered so that dependencies come first; where a cycle remains, the file with
the fewest unplaced dependencies goes next (DeepSeek-Coder's Algorithm 1), ties by path.
"""

from __future__ import annotations

import heapq
import posixpath
import re
from functools import cache

from pipeline.github.syntax import parse, parser_for

_REQUIRE = '((call_expression function: (identifier) @_fn arguments: (arguments (string) @dep)) (#eq? @_fn "require"))'
_QUERIES = {
    "python": """
        (import_statement name: (dotted_name) @dep)
        (import_statement name: (aliased_import name: (dotted_name) @dep))
        (import_from_statement) @from
    """,
    "javascript": f"(import_statement source: (string) @rel) (export_statement source: (string) @rel) {_REQUIRE.replace('@dep', '@rel')}",
    "typescript": "(import_statement source: (string) @rel) (export_statement source: (string) @rel)",
    "tsx": "(import_statement source: (string) @rel) (export_statement source: (string) @rel)",
    "java": "(import_declaration (scoped_identifier) @dep) (import_declaration (identifier) @dep)",
    "c": "(preproc_include path: (string_literal) @rel) (preproc_include path: (system_lib_string) @dep)",
    "cpp": "(preproc_include path: (string_literal) @rel) (preproc_include path: (system_lib_string) @dep)",
    "csharp": "(using_directive (qualified_name) @dep) (using_directive (identifier) @dep)",
    "go": "(import_spec path: (interpreted_string_literal) @dir)",
    "rust": "(use_declaration argument: (_) @dep) (mod_item name: (identifier) @mod)",
    "php": """
        (namespace_use_clause (qualified_name) @dep)
        (require_expression (_) @rel) (require_once_expression (_) @rel)
        (include_expression (_) @rel) (include_once_expression (_) @rel)
    """,
    "ruby": """
        ((call method: (identifier) @_fn arguments: (argument_list (string (string_content) @dep))) (#eq? @_fn "require"))
        ((call method: (identifier) @_fn arguments: (argument_list (string (string_content) @rel))) (#eq? @_fn "require_relative"))
    """,
}
_TS_NAME = {"python": "python", "javascript": "javascript", "typescript": "typescript", "tsx": "tsx", "java": "java",
            "c": "c", "c++": "cpp", "c#": "csharp", "go": "go", "rust": "rust", "php": "php", "ruby": "ruby"}
_DOTTED = {"python", "java", "csharp", "kotlin", "scala"}
_FALLBACK = re.compile(
    r"""^\s*(?:\#\s*include|import|from|require(?:_relative)?|using|use|load|source|\\input|\\include)\s*[(]?\s*["'<]?([\w./:\\@-]+)""",
    re.M,
)
_INDEX_STEMS = ("__init__", "index", "mod")


@cache
def _query(ts_name: str):
    from tree_sitter import Query

    return Query(parser_for(ts_name).language, _QUERIES[ts_name])


def _text(node) -> str:
    return node.text.decode("utf-8", "replace")


def _python_from(node) -> list[tuple[str, str]]:
    mod = node.child_by_field_name("module_name")
    m = _text(mod) if mod is not None else ""
    kind = "pyrel" if m.startswith(".") else "dep"
    names = [_text(n) for n in node.children_by_field_name("name")]
    names = [n.split(" as ")[0].strip() for n in names]
    out = [(kind, m)] if m.strip(".") else []
    joiner = "" if m.endswith(".") else "."
    return out + [(kind, m + joiner + n) for n in names]


def imports(lang: str | None, text: str) -> list[tuple[str, str]]:
    """(kind, target) pairs: kind is dep (module name), rel (path relative to the file),
    pyrel (Python relative import), dir (a package directory, Go) or mod (Rust `mod x;`)."""
    ts_name = _TS_NAME.get((lang or "").lower())
    if ts_name is None:
        return [("dep", m) for m in _FALLBACK.findall(text)]
    from tree_sitter import QueryCursor

    tree = parse(ts_name, text.encode("utf-8", "surrogatepass"))
    out: list[tuple[str, str]] = []
    for _, caps in QueryCursor(_query(ts_name)).matches(tree.root_node):
        for kind, nodes in caps.items():
            if kind.startswith("_"):
                continue
            for n in nodes:
                if kind == "from":
                    out += _python_from(n)
                else:
                    out.append((kind, _text(n).strip("\"'<>`()")))
    return out


class Resolver:
    """Maps import targets to files of one repository by path suffix."""

    def __init__(self, paths: list[str]):
        self.keys: dict[str, list[str]] = {}
        self.dirs: dict[str, list[str]] = {}
        for p in sorted(paths):
            stem, _ = posixpath.splitext(p)
            parts = stem.split("/")
            if parts[-1] in _INDEX_STEMS and len(parts) > 1:
                self._add(self.keys, parts[:-1], p)
            self._add(self.keys, parts, p)
            self._add(self.keys, p.split("/"), p)
            if len(parts) > 1:
                self._add(self.dirs, parts[:-1], p)

    @staticmethod
    def _add(index: dict, parts: list[str], path: str) -> None:
        for i in range(len(parts)):
            index.setdefault("/".join(parts[i:]), []).append(path)

    def _closest(self, importer: str, cands: list[str]) -> list[str]:
        base = posixpath.dirname(importer)

        def shared(c: str) -> int:
            return len(posixpath.commonpath([base, posixpath.dirname(c)])) if base else 0

        best = max(cands, key=lambda c: (shared(c), -len(c)))
        return [best]

    def resolve(self, importer: str, kind: str, target: str, lang: str | None) -> list[str]:
        if not target:
            return []
        here = posixpath.dirname(importer)
        if kind == "dir":  # a Go import path names a package directory; match its longest known suffix
            parts = target.strip("/").split("/")
            for i in range(len(parts)):
                found = [p for p in self.dirs.get("/".join(parts[i:]), []) if p != importer]
                if found:
                    return found
            return []
        if kind == "mod":
            return self._lookup(importer, [*(here.split("/") if here else []), target])
        if kind == "pyrel":
            dots = len(target) - len(target.lstrip("."))
            base = here.split("/") if here else []
            base = base[: len(base) - (dots - 1)] if dots > 1 else base
            return self._lookup(importer, base + [p for p in target.lstrip(".").split(".") if p])
        if kind == "rel" and (target.startswith(".") or lang and lang.lower() in ("c", "c++", "ruby", "php")):
            joined = posixpath.normpath(posixpath.join(here, target))
            if not joined.startswith(".."):
                found = self._lookup(importer, joined.split("/"), exact=True)
                if found:
                    return found
        t = target.replace("\\", "/").replace("::", "/")
        if (lang or "").lower() in ("python", "java", "c#", "kotlin", "scala"):
            t = t.replace(".", "/")
        parts = [p for p in t.split("/") if p and p not in (".", "crate", "self", "super", "{", "}", "*")]
        parts = [re.sub(r"[{}*;\s].*$", "", p) for p in parts]
        return self._lookup(importer, [p for p in parts if p])

    def _lookup(self, importer: str, parts: list[str], exact: bool = False) -> list[str]:
        for end in range(len(parts), 0, -1):
            key = "/".join(parts[:end])
            for k in (key, posixpath.splitext(key)[0]):
                cands = [c for c in self.keys.get(k, []) if c != importer]
                if cands:
                    return self._closest(importer, cands)
            if exact:
                break
        return []


def dependency_graph(files: dict[str, tuple[str | None, str]]) -> dict[str, set[str]]:
    """For each path, the set of paths of the same repository it depends on. `files`: path -> (lang, text)."""
    resolver = Resolver(list(files))
    graph: dict[str, set[str]] = {}
    for path, (lang, text) in files.items():
        found: set[str] = set()
        for kind, target in imports(lang, text):
            found.update(resolver.resolve(path, kind, target, lang))
        found.discard(path)
        graph[path] = found
    return graph


def components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Weakly connected groups of files, each sorted, in order of their first path."""
    parent = {n: n for n in graph}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for n, ds in graph.items():
        for d in ds:
            a, b = root(n), root(d)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[str, list[str]] = {}
    for n in sorted(graph):
        groups.setdefault(root(n), []).append(n)
    return sorted(groups.values())


def dependency_order(graph: dict[str, set[str]]) -> list[str]:
    """DeepSeek-Coder's Algorithm 1: per disconnected subgraph, repeatedly take the file with the
    fewest unplaced dependencies (zero unless a cycle remains), ties by path."""
    pending = {n: len(d) for n, d in graph.items()}
    users: dict[str, list[str]] = {n: [] for n in graph}
    for n, ds in graph.items():
        for d in ds:
            users[d].append(n)
    order: list[str] = []
    placed: set[str] = set()
    for group in components(graph):
        heap = [(pending[n], n) for n in group]
        heapq.heapify(heap)
        while heap:
            k, n = heapq.heappop(heap)
            if n in placed or pending[n] != k:
                continue
            placed.add(n)
            order.append(n)
            for u in users[n]:
                if u not in placed:
                    pending[u] -= 1
                    heapq.heappush(heap, (pending[u], u))
    return order
