"""GitHub ingest benchmark: files/s on one core for read + tag + DeepSeek-Coder filter over a
real tree (the installed site-packages), side by side with a bare `os.walk` + read loop over
the same files (the I/O limit). Target: >= 0.5x the bare loop.

    .venv/bin/python benchmarks/github.py [--tree DIR] [--max-files 20000] [--rounds 7] [--syntax]

The tree's top-level directories are taken in name order until `--max-files` files; each is
read as one repository. The bare loop runs once first to warm the page cache and the tagger is
warmed up once (its set-up is once per process); then bare and ours run in this process on the
same files, interleaved for `--rounds` rounds, the tagger's per-directory and per-suffix caches
emptied before each of ours. Rates are per CPU second of this process (user + system,
`time.process_time`), which load from other processes on a shared machine moves less than wall
time; the headline ratio is the median of the rounds' ratios, with the medians of each side's
CPU and wall times beside it. `--syntax` adds the tree-sitter error ratio."""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import sysconfig
import time

# the repo root instead of this folder, whose module names (tokenize.py) would shadow the stdlib
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from langs import cascade, exclusions, heuristics, tag  # noqa: E402
from langs.names import glob_name  # noqa: E402
from pipeline.github import reader as reader_mod  # noqa: E402
from pipeline.github.filters import DeepSeekCoderFilter  # noqa: E402
from pipeline.github.reader import RepoFileReader, Unit  # noqa: E402

EXT = {".py": "Python", ".pyi": "Python", ".c": "C", ".h": "C", ".cpp": "C++", ".js": "JavaScript", ".json": "JSON",
       ".yaml": "YAML", ".yml": "YAML", ".html": "HTML", ".css": "CSS", ".xml": "XML", ".md": "Markdown"}


class ExtTag:
    """The cheapest possible tagger (extension lookup), to show what `langs.tag` costs."""

    def __init__(self, path: str, content: bytes, text: str | None = None):
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


def forget_tagger_caches() -> None:
    """Each round tags as a fresh process would: per-directory and per-suffix answers forgotten (the
    rules themselves are compiled again here, outside the timed part, as set-up once per process)."""
    exclusions.path_rules.cache_clear()
    exclusions.path_rules()
    for cache in (cascade._extension_languages, heuristics._rules_for, glob_name):
        cache.cache_clear()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, *args):
    """(result, CPU seconds of this process: user + system, wall seconds)."""
    c, w = time.process_time(), time.perf_counter()
    out = fn(*args)
    return out, time.process_time() - c, time.perf_counter() - w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", default=sysconfig.get_paths()["purelib"])
    ap.add_argument("--max-files", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=7, help="interleaved bare/ours rounds; medians are reported")
    ap.add_argument("--syntax", action="store_true", help="also compute the tree-sitter syntax error ratio")
    args = ap.parse_args()

    dirs, n = pick_dirs(args.tree, args.max_files)
    print(f"tree: {args.tree} ({len(dirs)} top-level dirs, {n} files); tagger: langs.tag")
    bare(dirs)  # warm the page cache
    for warm in ("warm.py", "warm.h", "README.md"):  # the tagger's one-time set-up is not per-file work
        tag(warm, b"int x;\n")
    label = "read+tag+filter" + ("+syntax" if args.syntax else "")
    bare_cpu, bare_wall, our_cpu, our_wall, ratios = [], [], [], [], []
    for r in range(args.rounds):  # interleaved, so that load from other processes hits both alike
        (bf, bb), c, w = timed(bare, dirs)
        bare_cpu.append(c), bare_wall.append(w)
        forget_tagger_caches()
        (of, kept, drops), c, w = timed(ours, dirs, args.syntax)
        our_cpu.append(c), our_wall.append(w)
        ratios.append((of / our_cpu[-1]) / (bf / bare_cpu[-1]))
        print(f"round {r + 1}: bare {bf / bare_cpu[-1]:,.0f} files/CPU-s, {label} {of / our_cpu[-1]:,.0f} files/CPU-s, "
              f"ratio {ratios[-1]:.2f}x")
    tb, to = statistics.median(bare_cpu), statistics.median(our_cpu)
    print(f"bare os.walk+read : {bf} files, {bb / 1e6:.1f} MB, {tb:.2f} CPU-s = {bf / tb:,.0f} files/s/core "
          f"(wall {statistics.median(bare_wall):.2f}s)  (peak RSS {rss_mb():.0f} MB)")
    print(f"{label:18s}: {of} files ({kept} kept), {to:.2f} CPU-s = {of / to:,.0f} files/s/core "
          f"(wall {statistics.median(our_wall):.2f}s)  (peak RSS {rss_mb():.0f} MB)")
    print(f"ratio ours/bare   : {statistics.median(ratios):.2f}x (median of the rounds' CPU-time ratios, range "
          f"{min(ratios):.2f}-{max(ratios):.2f}); {(of / to) / (bf / tb):.2f}x from the median CPU times, "
          f"{statistics.median(bare_wall) / statistics.median(our_wall):.2f}x from the median wall times  (target >= 0.5x)")
    print("drops: " + ", ".join(f"{k}={v}" for k, v in sorted(drops.items(), key=lambda kv: -kv[1])))
    # the same pipeline with the extension fallback instead of langs.tag: what the tagger costs
    reader_mod.tag = ExtTag
    forget_tagger_caches()
    (ff, fkept, _), tf, _ = timed(ours, dirs, args.syntax)
    print(f"same, ext. tagger : {ff} files ({fkept} kept), {tf:.2f} CPU-s = {ff / tf:,.0f} files/s/core; "
          f"ratio {(ff / tf) / (bf / tb):.2f}x  (peak RSS {rss_mb():.0f} MB)")


if __name__ == "__main__":
    main()
