"""A labelled pool of real HTML documentation pages for the recall-loop benchmark (`benchmarks/recall_real.py`).

    .venv/bin/python -m benchmarks.recall_pool [--cache /work/cache/recall]

Pages come from Debian documentation packages (`apt-get download`, `dpkg-deb -x` under the cache,
never the repository). Each package is served under the host of its upstream site, so the pool
has one registered domain per project (debian.org holds several manuals).

Labelling rule (per target, by package and section, never by the page's content):
- code = 1 for sections that reference or teach programming (a language, a library's API, SQL,
  git's command line);
- math = 1 for sections whose subject is mathematics (special functions, statistics,
  integration, linear algebra, optimisation, symbolic algebra, number theory);
- 0 for prose manuals, handbooks, release notes and help pages, including "prose sections on
  code domains" (release notes, licences) and prose manuals whose chapters show shell commands;
- None (not counted for that target) where the rule does not decide: for code, the mathematics
  libraries' docs (SymPy, mpmath, SciPy, CVXOPT: API pages of formulas with doctest examples) and
  Maxima's manual (a CAS command language without code markup) are both mathematics and
  programming; they count for math only. `recall_real.py` also reports code counting them as code.

Seeds: `SEED_PAGES` pages from two domains per target (code: Python's library reference and
PostgreSQL's SQL commands; math: SymPy and mpmath), extracted with the `web_extract` stage's
extractor and written as jsonl; they are left out of the pool.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

SEED_PAGES = 15  # per seed domain: 30 pages per target


@dataclass(frozen=True)
class Section:
    package: str
    root: str  # directory inside the package
    url: str  # the URL that `root` maps to
    include: tuple[str, ...]  # fnmatch patterns on the path under root
    code: int | None
    math: int | None
    cap: int = 400  # pages taken (a fixed hash order picks which)
    seed: str | None = None  # "code" or "math": this section provides that target's seed pages


D = "/usr/share/doc/"
SECTIONS = [
    # programming: seed domains of the code target
    Section("python3.11-doc", D + "python3.11/html", "https://docs.python.org/3.11/", ("library/*",), 1, 0, 200, "code"),
    Section("python3.11-doc", D + "python3.11/html", "https://docs.python.org/3.11/",
            ("tutorial/*", "reference/*", "howto/*", "c-api/*", "extending/*"), 1, 0, 80),
    Section("python3.11-doc", D + "python3.11/html", "https://docs.python.org/3.11/",
            ("about.html", "bugs.html", "copyright.html", "license.html", "whatsnew/changelog.html"), 0, 0),
    Section("postgresql-doc-15", D + "postgresql-doc-15/html", "https://www.postgresql.org/docs/15/", ("sql-*",), 1, 0, 120, "code"),
    Section("postgresql-doc-15", D + "postgresql-doc-15/html", "https://www.postgresql.org/docs/15/",
            ("plpgsql*", "libpq*", "ecpg*", "spi*", "xfunc*", "plpython*", "queries*", "tutorial-*", "functions-*"), 1, 0, 120),
    Section("postgresql-doc-15", D + "postgresql-doc-15/html", "https://www.postgresql.org/docs/15/", ("release-*",), 0, 0),
    # programming: domains no code seed comes from
    Section("python-django-doc", D + "python-django-doc/html", "https://docs.djangoproject.com/en/3.2/",
            ("ref/*", "topics/*", "howto/*", "intro/*"), 1, 0, 150),
    Section("python-django-doc", D + "python-django-doc/html", "https://docs.djangoproject.com/en/3.2/", ("releases/*",), 0, 0, 150),
    Section("r-doc-html", D + "r-doc-html/manual", "https://cran.r-project.org/doc/manuals/r-release/", ("*.html",), 1, 0),
    Section("git-doc", D + "git-doc", "https://git-scm.com/docs/", ("git-*.html",), 1, 0, 80),
    # mathematics (with formulas): seed domains of the math target
    Section("python-sympy-doc", D + "python-sympy-doc/html", "https://docs.sympy.org/latest/",
            ("modules/*", "tutorials/*", "tutorial/*"), None, 1, 200, "math"),
    Section("python-mpmath-doc", D + "python-mpmath-doc/html", "https://mpmath.org/doc/current/", ("*.html",), None, 1, 400, "math"),
    # mathematics: domains no math seed comes from
    Section("python-scipy-doc", D + "python-scipy-doc/html", "https://docs.scipy.org/doc/scipy/",
            tuple(f"reference/generated/scipy.{m}.*" for m in ("special", "stats", "integrate", "optimize", "linalg")) + ("tutorial/*",), None, 1, 250),
    Section("python-cvxopt-doc", D + "python-cvxopt-doc/html", "https://cvxopt.org/userguide/", ("*.html",), None, 1),
    Section("maxima-doc", D + "maxima-doc/html", "https://maxima.sourceforge.io/docs/manual/", ("maxima_*.html",), None, 1, 200),
    # prose manuals and help
    Section("debian-handbook", D + "debian-handbook/html/en-US", "https://debian-handbook.info/browse/en-US/stable/", ("*.html",), 0, 0),
    Section("debian-reference-en", "/usr/share/debian-reference", "https://www.debian.org/doc/manuals/debian-reference/", ("*.en.html",), 0, 0),
    Section("debian-policy", D + "debian-policy", "https://www.debian.org/doc/debian-policy/", ("policy.html/*",), 0, 0),
    Section("developers-reference", "/usr/share/developers-reference", "https://www.debian.org/doc/manuals/developers-reference/", ("*.html",), 0, 0),
    Section("maint-guide", D + "maint-guide/html", "https://www.debian.org/doc/manuals/maint-guide/", ("*.en.html",), 0, 0),
    Section("debian-faq", D + "debian/FAQ", "https://www.debian.org/doc/manuals/debian-faq/", ("*.html",), 0, 0),
    Section("harden-doc", D + "harden-doc/html/en-US", "https://www.debian.org/doc/manuals/securing-debian-manual/", ("*.html",), 0, 0),
    Section("aptitude-doc-en", D + "aptitude/html/en", "https://www.debian.org/doc/manuals/aptitude/", ("*.html",), 0, 0),
    Section("installation-guide-amd64", D + "installation-guide-amd64/en", "https://www.debian.org/releases/stable/amd64/", ("*.html",), 0, 0, 150),
    Section("libreoffice-help-en-us", "/usr/share/libreoffice/help/en-US/text", "https://help.libreoffice.org/latest/en-US/text/",
            ("shared/guide/*", "swriter/guide/*", "shared/01/*", "simpress/guide/*"), 0, 0, 350),
    Section("gimp-help-en", "/usr/share/gimp/2.0/help/en", "https://docs.gimp.org/2.10/en/", ("*.html",), 0, 0, 350),
]
MATH_LIBS = ("python-sympy-doc", "python-mpmath-doc", "python-scipy-doc", "python-cvxopt-doc")
SKIP = ("genindex*", "search.html", "py-modindex.html", "*/_sources/*", "_static/*", "_modules/*", "*index.html")
MIN_HTML_BYTES = 1500
MAX_HTML_BYTES = 250_000  # the extractor's time grows faster than linearly beyond (R-exts: 1 MB, minutes)


def _order(url: str) -> bytes:
    return hashlib.sha256(f"pool:{url}".encode()).digest()


def fetch(cache: Path) -> Path:
    """Download (once) and unpack every package under `cache/root/<package>`."""
    debs, root = cache / "debs", cache / "root"
    debs.mkdir(parents=True, exist_ok=True)
    for pkg in sorted({s.package for s in SECTIONS}):
        dest = root / pkg
        if dest.exists():
            continue
        if not list(debs.glob(f"{pkg}_*.deb")):
            subprocess.run(["apt-get", "download", pkg], cwd=debs, check=True, capture_output=True)
        deb = sorted(debs.glob(f"{pkg}_*.deb"))[-1]
        tmp = root / f".{pkg}.tmp"
        subprocess.run(["rm", "-rf", str(tmp)], check=True)
        tmp.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
        tmp.rename(dest)
    return root


def _pages(root: Path, s: Section) -> list[tuple[str, Path]]:
    base = root / s.package / s.root.lstrip("/")
    found = []
    for dirpath, _, files in os.walk(base):
        for name in files:
            p = Path(dirpath) / name
            rel = p.relative_to(base).as_posix()
            if not name.endswith(".html") or any(fnmatch.fnmatch(rel, x) for x in SKIP):
                continue
            if any(fnmatch.fnmatch(rel, x) for x in s.include) and MIN_HTML_BYTES <= p.stat().st_size <= MAX_HTML_BYTES:
                found.append((s.url + rel, p))
    found.sort(key=lambda up: _order(up[0]))
    return found[: s.cap]


def build(cache: Path, warc_files: int = 4) -> dict:
    """Write `cache/pool/`: web/*.warc.gz (the pool), labels.jsonl, seeds/{code,math}.jsonl; returns a summary."""
    from pipeline.sample import write_warcs
    from pipeline.web.extract import extract

    root = fetch(cache)
    out = cache / "pool"
    done = out / "summary.json"
    if done.exists():
        return json.loads(done.read_text())
    pages, labels, seeds, seen = [], [], {"code": [], "math": []}, set()
    per_section = []
    for s in SECTIONS:
        chosen = [(u, p) for u, p in _pages(root, s) if u not in seen]
        seen.update(u for u, _ in chosen)
        n_seed = 0
        for url, path in chosen:
            html = path.read_bytes()
            if s.seed and n_seed < SEED_PAGES:
                text = extract(html.decode("utf-8", "replace")).text
                if len(text) >= 200:
                    seeds[s.seed].append({"id": url, "url": url, "text": text})
                    n_seed += 1
                    continue
            pages.append((url, "text/html; charset=utf-8", html))
            labels.append({"url": url, "package": s.package, "code": s.code, "math": s.math,
                           "code_with_math_libs": 1 if s.package in MATH_LIBS else s.code})
        per_section.append({"package": s.package, "include": list(s.include), "pages": len(chosen) - n_seed, "seed": n_seed,
                            "code": s.code, "math": s.math})
    order = sorted(range(len(pages)), key=lambda i: _order(pages[i][0]))  # mix domains across the WARC files
    write_warcs(out / "web", [pages[i] for i in order], files=warc_files)
    with open(out / "labels.jsonl", "w") as f:
        for lab in labels:
            f.write(json.dumps(lab) + "\n")
    (out / "seeds").mkdir(exist_ok=True)
    for t, rows in seeds.items():
        with open(out / "seeds" / f"{t}.jsonl", "w") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    summary = {"pages": len(pages), "sections": per_section, "seeds": {t: len(v) for t, v in seeds.items()}}
    done.write_text(json.dumps(summary, indent=1))
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default="/work/cache/recall")
    args = ap.parse_args()
    s = build(Path(args.cache))
    for row in s["sections"]:
        print(f"{row['package']:<26} {','.join(row['include'])[:60]:<60} pages {row['pages']:4d} seed {row['seed']:2d} code {row['code']} math {row['math']}")
    print(f"pool: {s['pages']} pages; seeds: {s['seeds']}")


if __name__ == "__main__":
    main()
