"""Built-in sample input for the demo and the tests: small git repositories assembled from
source files already on this machine, and WARC files of generated web pages.

The web pages come from planted domains so that later stages have something to find:
code pages on `devdocs.example.com`, `stackcode.example.net` and `blog.example.org/code/`,
math pages (LaTeX in MathJax, KaTeX and `$…$` forms) on `mathforum.example.org` and
`blog.example.org/math/`, and prose on `news.example.com`, `travel.example.net` and
`blog.example.org/life/`. Everything is generated from a seed, so the same seed gives the same bytes.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from classifiers.demo import write_demo_seeds
from pipeline.web.writer import response_record, write_warc

GIT_ENV = {
    "GIT_AUTHOR_NAME": "codecurate",
    "GIT_AUTHOR_EMAIL": "demo@codecurate.invalid",
    "GIT_COMMITTER_NAME": "codecurate",
    "GIT_COMMITTER_EMAIL": "demo@codecurate.invalid",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}

MAX_FILES_PER_REPO = 40
MAX_FILE_BYTES = 200_000


def _site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def _pick(src: Path, patterns: tuple[str, ...]) -> list[Path]:
    files = sorted(p for pat in patterns for p in src.rglob(pat) if p.is_file() and "__pycache__" not in p.parts)
    files = [p for p in dict.fromkeys(files) if p.stat().st_size <= MAX_FILE_BYTES]
    return files[:MAX_FILES_PER_REPO]


def _licence_for(pkg_dir: Path) -> Path | None:
    for dist in sorted(pkg_dir.parent.glob(f"{pkg_dir.name}-*.dist-info")):
        for lic in sorted(dist.rglob("LICENSE*")) + sorted(dist.rglob("LICENCE*")):
            return lic
    return None


def _git_commit(repo: Path) -> None:
    env = {**os.environ, **GIT_ENV}
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "sample"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)


def _mutate(text: str, rng: random.Random) -> str:
    """A light edit of every 7th line: what a fork changes, so near-dedup has something to find."""
    lines = text.splitlines(keepends=True)
    for i in range(0, len(lines), 7):
        if lines[i].strip():
            lines[i] = lines[i].rstrip("\n") + f"  # fork {rng.randrange(1000)}\n"
    return "".join(lines)


def build_repos(out: Path, seed: int = 0) -> list[Path]:
    """A few git repositories under `out`, one per source tree, plus a fork and some bad files."""
    rng = random.Random(seed)
    sp = _site_packages()
    trees = {
        "idna": (sp / "idna", ("*.py",)),
        "markupsafe": (sp / "markupsafe", ("*.py", "*.c", "*.pyi")),
        "jinja2": (sp / "jinja2", ("*.py",)),
        "mpl-web": (sp / "matplotlib" / "backends" / "web_backend", ("*.js", "*.css", "*.html", "*.json")),
        "yaml": (sp / "yaml", ("*.py",)),
    }
    repos = []
    for name, (src, patterns) in trees.items():
        if not src.is_dir():
            continue
        repo = out / name
        repo.mkdir(parents=True, exist_ok=True)
        for f in _pick(src, patterns):
            dest = repo / f.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
        lic = _licence_for(src)
        if lic:
            shutil.copyfile(lic, repo / "LICENSE")
        repos.append(repo)
    jinja = out / "jinja2"
    if jinja.is_dir():  # a fork with small edits: real near-duplicates
        fork = out / "jinja2-fork"
        for f in sorted(p for p in jinja.rglob("*") if p.is_file()):
            dest = fork / f.relative_to(jinja)
            dest.parent.mkdir(parents=True, exist_ok=True)
            text = f.read_text("utf-8")
            dest.write_text(_mutate(text, rng) if f.suffix == ".py" else text, "utf-8")
        repos.append(fork)
    bad = out / "idna" if (out / "idna").is_dir() else repos[0]
    (bad / "assets").mkdir(exist_ok=True)
    (bad / "assets" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (bad / "legacy_latin1.txt").write_bytes("caf\xe9 cr\xe8me br\xfbl\xe9e\n".encode("latin-1"))
    (bad / "dist").mkdir(exist_ok=True)
    (bad / "dist" / "app.min.js").write_text("var a=1;" * 400 + "\n", "utf-8")
    (bad / "empty.py").write_text("", "utf-8")
    for repo in sorted(repos):
        _git_commit(repo)
    return sorted(repos)


# ---- web pages --------------------------------------------------------------------------

PROSE = [
    "The city council met on Tuesday to discuss the new budget for public parks.",
    "Travellers who arrive early can enjoy the quiet streets before the markets open.",
    "Local farmers reported a strong harvest despite the dry summer.",
    "The museum's new wing opens next month with an exhibition of modern photography.",
    "Residents were asked to share their views on the proposed bus routes.",
    "A short walk from the station, the old harbour is lined with small cafés.",
    "The festival drew visitors from across the region for three days of music.",
    "Officials said the bridge repairs would be finished before the winter.",
    "Many families spend their weekends hiking the trails above the valley.",
    "The library extended its opening hours during the exam season.",
]
PROSE_ZH = [
    "今天的天气非常好，我们一起去公园散步。",
    "这座城市的历史可以追溯到一千多年前。",
    "很多游客在节日期间来到这里参观古老的寺庙。",
    "市政府宣布将在明年修建新的地铁线路。",
]
MATH = [
    (r"Let \(f(x) = x^2 + 3x + 2\). Then \(f'(x) = 2x + 3\) and the roots satisfy", r"$$x = \frac{-3 \pm \sqrt{9 - 8}}{2}.$$"),
    (r"For every prime \(p\), Fermat's little theorem states", r"\[a^{p} \equiv a \pmod{p}.\]"),
    (r"The integral of a Gaussian is", r"$$\int_{-\infty}^{\infty} e^{-x^2}\,dx = \sqrt{\pi}.$$"),
    (r"By the Cauchy–Schwarz inequality, for vectors $u$ and $v$,", r"$$|\langle u, v\rangle| \le \|u\|\,\|v\|.$$"),
    (r"The sum of the first $n$ integers is", r"\[\sum_{k=1}^{n} k = \frac{n(n+1)}{2}.\]"),
    (r"Euler's identity relates five constants:", r"$$e^{i\pi} + 1 = 0.$$"),
]
NAV = '<nav><a href="/">Home</a> | <a href="/about">About</a> | <a href="/contact">Contact</a></nav>'
FOOTER = "<footer>© 2024 Example Media. All rights reserved. Privacy · Terms · Cookies</footer>"


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title></head>'
        f"<body>{NAV}<main><article><h1>{_esc(title)}</h1>{body}</article></main>{FOOTER}</body></html>"
    )


def _prose(rng: random.Random, n: int, zh: bool = False) -> str:
    pool = PROSE_ZH if zh else PROSE
    return "".join(f"<p>{' '.join(rng.choice(pool) for _ in range(3))}</p>" for _ in range(n))


def _code_page(rng: random.Random, snippets: list[str], title: str) -> str:
    code = rng.choice(snippets)
    intro = "<p>The following example shows how the function is used in practice, with comments on each step.</p>"
    return _page(title, intro + f'<pre><code class="language-python">{_esc(code)}</code></pre>' + "<p>Run it with Python 3.11 or newer.</p>")


def _math_page(rng: random.Random, title: str) -> str:
    parts = []
    for lead, formula in rng.sample(MATH, 3):
        parts.append(f"<p>{_esc(lead)}</p><p>{_esc(formula)}</p>")
    parts.append('<p>In MathJax form: <script type="math/tex">\\alpha + \\beta = \\gamma</script></p>')
    parts.append(
        '<p><span class="katex"><math><semantics><mrow><mi>E</mi><mo>=</mo><mi>m</mi><msup><mi>c</mi><mn>2</mn></msup></mrow>'
        '<annotation encoding="application/x-tex">E = mc^2</annotation></semantics></math></span></p>'
    )
    return _page(title, "".join(parts) + "<p>Proof. This follows directly from the definitions above. ∎</p>")


def _snippets(repo_dir: Path | None) -> list[str]:
    out = []
    if repo_dir and repo_dir.is_dir():
        for f in sorted(repo_dir.rglob("*.py"))[:30]:
            lines = f.read_text("utf-8", "replace").splitlines()
            for i in range(0, max(1, len(lines) - 12), 40):
                chunk = "\n".join(lines[i : i + 12]).strip()
                if len(chunk) > 80:
                    out.append(chunk)
    return out or ["def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n    return a + b\n\nprint(add(2, 3))"]


def generate_pages(seed: int = 0, n: int = 240, code_source: Path | None = None) -> list[tuple[str, str, bytes]]:
    """(url, content type, body) triples for the planted domains."""
    rng = random.Random(seed)
    snippets = _snippets(code_source)
    kinds = [
        ("https://devdocs.example.com/python/{}", "code"),
        ("https://stackcode.example.net/questions/{}", "code"),
        ("https://blog.example.org/code/{}", "code"),
        ("https://mathforum.example.org/topic/{}", "math"),
        ("https://blog.example.org/math/{}", "math"),
        ("https://news.example.com/local/{}", "prose"),
        ("https://travel.example.net/guides/{}", "prose"),
        ("https://blog.example.org/life/{}", "prose"),
        ("https://news.example.com/zh/{}", "prose_zh"),
    ]
    pages = []
    for i in range(n):
        url_t, kind = kinds[i % len(kinds)]
        url = url_t.format(f"page-{i:04d}")
        title = f"{kind.split('_')[0].title()} article {i}"
        if kind == "code":
            html = _code_page(rng, snippets, title)
        elif kind == "math":
            html = _math_page(rng, title)
        else:
            html = _page(title, _prose(rng, rng.randint(3, 6), zh=kind == "prose_zh"))
        pages.append((url, "text/html; charset=utf-8", html.encode("utf-8")))
    pages.append(("https://news.example.com/local/page-0005", "text/html; charset=utf-8", pages[5][2]))  # re-crawled URL
    pages.append(("https://files.example.com/report.pdf", "application/pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"))
    return pages


def write_warcs(out: Path, pages: list[tuple[str, str, bytes]], files: int = 2) -> list[Path]:
    """Pages dealt round-robin into `files` WARC files (one gzip member per record)."""
    out.mkdir(parents=True, exist_ok=True)
    seen: dict[str, int] = {}
    records: list[list[bytes]] = [[] for _ in range(files)]
    for i, (url, ctype, body) in enumerate(pages):
        seen[url] = seen.get(url, 0) + 1  # a re-crawled URL gets a later fetch date
        date = f"2024-0{seen[url]}-01T00:00:00Z"
        records[i % files].append(response_record(url, body, content_type=ctype, date=date))
    paths = []
    for k in range(files):
        p = out / f"sample-{k:02d}.warc.gz"
        write_warc(str(p), records[k])
        paths.append(p)
    return paths


def build_once(out: str | Path, make) -> Path:
    """`make(out)` unless `out/.complete` says an earlier build finished; what a killed build left is removed."""
    out = Path(out)
    done = out / ".complete"
    if done.exists():
        return out
    if out.exists():
        shutil.rmtree(out)
    make(out)
    done.write_text(sys.version.split()[0] + "\n")
    return out


def build_sample(out: str | Path, seed: int = 0) -> Path:
    """Build (once) the demo's sample input under `out`: `repos/` and `web/`."""

    def make(out: Path) -> None:
        repos = build_repos(out / "repos", seed)
        write_warcs(out / "web", generate_pages(seed, code_source=next((r for r in repos if r.name == "jinja2"), None)))
        write_demo_seeds(out, seed=seed)

    return build_once(out, make)
