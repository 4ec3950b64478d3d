"""GitHub ingest benchmark: files/s on one core for read + tag + DeepSeek-Coder filter over a
real tree (the installed site-packages), side by side with a bare `os.walk` + read loop over
the same files (the I/O limit). Target: >= 0.5x the bare loop.

    .venv/bin/python benchmarks/github.py [--tree DIR] [--max-files 20000] [--syntax]

The tree's top-level directories are taken in name order until `--max-files` files; each is
read as one repository. The bare loop runs once first to warm the page cache, then each
contender runs in this process on the same files (after one warm-up call of the tagger, whose set-up is once per process).
`--syntax` adds the tree-sitter error ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import sysconfig
import time

# the repo root instead of this folder, whose module names (tokenize.py) would shadow the stdlib
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from langs import tag  # noqa: E402

from pipeline.github import reader as reader_mod  # noqa: E402
from pipeline.github.filters import DeepSeekCoderFilter  # noqa: E402
from pipeline.github.reader import RepoFileReader, Unit  # noqa: E402

EXT = {".py": "Python", ".pyi": "Python", ".c": "C", ".h": "C", ".cpp": "C++", ".js": "JavaScript", ".json": "JSON",
       ".yaml": "YAML", ".yml": "YAML", ".html": "HTML", ".css": "CSS", ".xml": "XML", ".md": "Markdown"}


class ExtTag:
    """The cheapest possible tagger (extension lookup), to show what `langs.tag` costs."""

    def __init__(self, path: str, content: bytes):
        self.language = self.linguist = EXT.get(os.path.splitext(path)[1])
        self.kind, self.reason = None, None


def pick_dirs(tree: str, max_files: int) -> tuple[list[str], int]:
    dirs, n = [], 0
    for d in sorted(os.listdir(tree)):
        full = os.path.join(tree, d)
        if not os.path.isdir(full) or os.path.islink(full):
            continue
        count = sum(len(f) for _, _, f in os.walk(full))
        if n and n + count > max_files:
            continue
        dirs.append(full)
        n += count
        if n >= max_files:
            break
    return dirs, n


def bare(dirs: list[str]) -> tuple[int, int]:
    files = nbytes = 0
    for d in dirs:
        for root, _, names in os.walk(d):
            for fn in names:
                p = os.path.join(root, fn)
                if os.path.islink(p):
                    continue
                with open(p, "rb") as f:
                    nbytes += len(f.read())
                files += 1
    return files, nbytes


def ours(dirs: list[str], syntax: bool) -> tuple[int, int, dict]:
    reader = RepoFileReader([Unit("dir", d) for d in dirs])
    filt = DeepSeekCoderFilter(syntax_signal=syntax)
    kept = sum(1 for _ in filt.run(reader.run(None, 0, 1)))
    files = int(reader.stats["acct/in"].total)
    drops = {k.split("/", 2)[2]: int(v.total) for k, v in list(reader.stats.stats.items()) + list(filt.stats.stats.items())
             if k.startswith("acct/dropped/")}
    return files, kept, drops


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", default=sysconfig.get_paths()["purelib"])
    ap.add_argument("--max-files", type=int, default=20000)
    ap.add_argument("--syntax", action="store_true", help="also compute the tree-sitter syntax error ratio")
    args = ap.parse_args()

    dirs, n = pick_dirs(args.tree, args.max_files)
    print(f"tree: {args.tree} ({len(dirs)} top-level dirs, {n} files); tagger: langs.tag")
    bare(dirs)  # warm the page cache
    for warm in ("warm.py", "warm.h", "README.md"):  # the tagger's one-time set-up is not per-file work
        tag(warm, b"int x;\n")
    t = time.perf_counter()
    bf, bb = bare(dirs)
    tb = time.perf_counter() - t
    print(f"bare os.walk+read : {bf} files, {bb / 1e6:.1f} MB in {tb:.2f}s = {bf / tb:,.0f} files/s/core  (peak RSS {rss_mb():.0f} MB)")
    t = time.perf_counter()
    of, kept, drops = ours(dirs, args.syntax)
    to = time.perf_counter() - t
    label = "read+tag+filter" + ("+syntax" if args.syntax else "")
    print(f"{label:18s}: {of} files ({kept} kept) in {to:.2f}s = {of / to:,.0f} files/s/core  (peak RSS {rss_mb():.0f} MB)")
    print(f"ratio ours/bare   : {(of / to) / (bf / tb):.2f}x  (target >= 0.5x)")
    print("drops: " + ", ".join(f"{k}={v}" for k, v in sorted(drops.items(), key=lambda kv: -kv[1])))
    # the same pipeline with the extension fallback instead of langs.tag: what the tagger costs
    reader_mod.tag = ExtTag
    t = time.perf_counter()
    ff, fkept, _ = ours(dirs, args.syntax)
    tf = time.perf_counter() - t
    print(f"same, ext. tagger : {ff} files ({fkept} kept) in {tf:.2f}s = {ff / tf:,.0f} files/s/core; "
          f"ratio {(ff / tf) / (bf / tb):.2f}x  (peak RSS {rss_mb():.0f} MB)")


if __name__ == "__main__":
    main()
