"""Repo-level documents: a repository's files concatenated in dependency order.

Each file is preceded by a comment holding its path, in the file's own comment syntax
(`# a/b.py`, `// src/x.rs`, `<!-- index.html -->`), as DeepSeek-Coder does. The order and the
dependency edges are recorded in metadata. Accounting: the files of one group come in; one
document goes out; the others are dropped as `merged_into_repo` (so `in == kept + dropped`).
"""

from __future__ import annotations

from collections import defaultdict

from datatrove.data import Document, DocumentsPipeline

from pipeline.github.deps import dependency_graph, dependency_order
from pipeline.steps import Step

_LINE = {
    "#": ("python", "ruby", "shell", "perl", "r", "yaml", "toml", "makefile", "cmake", "dockerfile", "julia", "elixir",
          "nim", "powershell", "tcl", "coffeescript", "crystal", "gdscript", "starlark", "ini", "text", "awk"),
    "--": ("sql", "lua", "haskell", "ada", "elm", "vhdl", "purescript", "agda", "plsql"),
    "%": ("tex", "matlab", "erlang", "prolog", "bibtex"),
    ";": ("common lisp", "emacs lisp", "clojure", "scheme", "racket", "assembly", "fennel"),
    "!": ("fortran",),
    "'": ("visual basic", "vba"),
    "REM": ("batchfile",),
}
_BLOCK = {("<!--", "-->"): ("html", "xml", "xslt", "markdown", "vue", "svelte", "svg"),
          ("/*", "*/"): ("css", "scss", "less", "json"),
          ("(*", "*)"): ("ocaml", "f#", "pascal", "mathematica", "standard ml")}
COMMENT: dict[str, tuple[str, str]] = {}
for _p, _langs in _LINE.items():
    COMMENT.update({lang: (_p, "") for lang in _langs})
for _pair, _langs in _BLOCK.items():
    COMMENT.update({lang: _pair for lang in _langs})


def path_comment(path: str, lang: str | None) -> str:
    """`// path` unless the language comments otherwise."""
    start, end = COMMENT.get((lang or "").lower(), ("//", ""))
    return f"{start} {path} {end}".rstrip() if end else f"{start} {path}"


def build_document(repo: str, group: str | None, docs: list[Document]) -> Document:
    by_path = {d.metadata.get("path", d.id): d for d in docs}
    graph = dependency_graph({p: (d.metadata.get("lang"), d.text) for p, d in by_path.items()})
    order = dependency_order(graph)
    parts = []
    for p in order:
        d = by_path[p]
        body = d.text if d.text.endswith("\n") else d.text + "\n"
        parts.append(path_comment(p, d.metadata.get("lang")) + "\n" + body)
    first = by_path[order[0]].metadata
    langs = sorted({d.metadata["lang"] for d in docs if d.metadata.get("lang")})
    meta = {
        "source": first.get("source"),
        "repo": repo,
        "lang": group if group is not None else (langs[0] if len(langs) == 1 else None),
        "languages": langs,
        "files": order,
        "n_files": len(order),
        "dependencies": {p: sorted(graph[p]) for p in order if graph[p]},
    }
    for key in ("commit", "license", "stars", "url"):
        if first.get(key) is not None:
            meta[key] = first[key]
    doc_id = f"{repo}" if group is None else f"{repo}#{group}"
    return Document(text="".join(parts), id=doc_id, metadata={k: v for k, v in meta.items() if v is not None})


class RepoDocuments(Step):
    """Groups a task's files by repository (and language, with `group_by=language`) into one
    document each, written in (repo, group) order."""

    name = "repo-level documents"

    def __init__(self, group_by: str = "repo", min_files: int = 1):
        super().__init__()
        self.group_by, self.min_files = group_by, min_files

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        groups: dict[tuple[str, str], list[Document]] = defaultdict(list)
        for doc in data or ():
            group = (doc.metadata.get("lang") or "unknown") if self.group_by == "language" else ""
            groups[(str(doc.metadata.get("repo", "")), group)].append(doc)
        for (repo, group), docs in sorted(groups.items()):
            if len(docs) < self.min_files:
                for d in docs:
                    self.drop(d, "too_few_files")
                continue
            with self.track_time():
                out = build_document(repo, group if self.group_by == "language" else None, docs)
            for d in docs[1:]:
                self.drop(d, "merged_into_repo")
            self.stat_update("repo_docs")
            yield out
