"""Hostile input on real data: what the binary, mojibake and git-lfs checks drop from real files.

    .venv/bin/python benchmarks/hostile.py --tree DIR [--pages DIR] [--repos DIR] [--archives GLOB] [--every 20]

1. Web: every `--every`-th file under `--tree` (an unpacked set of Debian doc packages: HTML, PNG,
   gzip, PDF, text, ...) and every page under `--pages` (the article-extraction benchmark's
   `.html.gz`) is served as `text/html` with no charset, the way a misconfigured server sends
   binary files, in one WARC; `WarcRecordReader` reads it, and the drops are counted by reason and
   by file suffix. HTML pages must come through; everything else must not.
2. Charsets: the real UTF-8 pages of `--pages` served declared latin-1 (must decode to the same
   text), and re-encoded half in latin-1 declared UTF-8 (two encodings: must be `mojibake`).
3. GitHub: `RepoFileReader` over each top directory of `--repos` as a repository, and over
   `--archives` (wheels, sdists): drops by reason (`lfs_pointer` among them).

Prints the tables; the time of the web pass is printed against the same reader with the checks
turned off (`max_binary_fraction=1`, `max_bad_utf8_fraction=1`), which is what the checks cost.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]


def suffix(path: str) -> str:
    name = os.path.basename(path).lower()
    return "html" if ".htm" in name else (name.rsplit(".", 1)[-1] if "." in name else "(none)")


def sample(tree: str, every: int) -> list[str]:
    files = sorted(str(p) for p in Path(tree).rglob("*") if p.is_file() and not p.is_symlink())
    return files[::every]


def web(files: list[str]) -> None:
    from pipeline.steps import ACCT
    from pipeline.web.sources import Item
    from pipeline.web.steps import WarcRecordReader
    from pipeline.web.writer import response_record, write_warc

    bodies = []
    for f in files:
        data = Path(f).read_bytes()
        bodies.append(gzip.decompress(data) if f.endswith(".html.gz") else data)
    with tempfile.TemporaryDirectory() as d:
        warc = os.path.join(d, "pages.warc.gz")
        write_warc(warc, [response_record(f"https://x.org/{i}", b, "text/html") for i, b in enumerate(bodies)])
        kept = None
        for label, kw in [("checks on", {}), ("checks off", {"max_binary_fraction": 1.0, "max_bad_utf8_fraction": 1.0})]:
            reader = WarcRecordReader([Item(warc)], {}, 64 << 20, {}, {}, **kw)
            t0 = time.process_time()
            got = {int(doc.metadata["url"].rsplit("/", 1)[1]) for doc in reader.run()}
            kept = got if kept is None else kept
            cpu = time.process_time() - t0
            reasons = {k[len(ACCT + "dropped/"):]: int(v.total) for k, v in reader.stats.stats.items()
                       if k.startswith(ACCT + "dropped/")}
            print(f"web, {label}: {len(files)} files, {len(got)} kept, dropped {reasons}, {cpu:.2f} CPU-s")
        by = Counter((suffix(f), i in kept) for i, f in enumerate(files))
        print("  suffix: kept / dropped (checks on)")
        for s in sorted({s for s, _ in by}, key=lambda s: -(by[(s, True)] + by[(s, False)])):
            print(f"  {s:>8}: {by[(s, True)]:6d} / {by[(s, False)]:6d}")


def charsets(pages: list[str]) -> None:
    """Real pages served with a wrong charset: UTF-8 declared latin-1, and UTF-8 with a latin-1 half."""
    from pipeline.web.charset import Undecodable, decode_html

    got: Counter = Counter()
    for f in pages:
        body = gzip.decompress(Path(f).read_bytes()) if f.endswith(".gz") else Path(f).read_bytes()
        truth, enc = decode_html(body, None)
        if enc != "utf-8" or truth.isascii():
            got["skipped (not UTF-8 with non-ASCII)"] += 1
            continue
        got["declared latin-1: " + ("right text" if decode_html(body, "iso-8859-1")[0] == truth else "WRONG")] += 1
        got["latin-1 read as declared (main's order): mojibake"] += body.decode("latin-1") != truth
        half = truth[: len(truth) // 2].encode("utf-8") + truth[len(truth) // 2:].encode("latin-1", "replace")
        try:
            text, _ = decode_html(half, "utf-8")
            got["half UTF-8, half latin-1: kept, <=1% U+FFFD"] += text.count("\ufffd") <= 0.01 * len(text)
        except Undecodable as e:
            got[f"half UTF-8, half latin-1: {e.reason}"] += 1
    print(f"charsets over {len(pages)} real pages: {dict(sorted(got.items()))}")
    cost(pages)


def cost(pages: list[str], repeat: int = 7) -> None:
    """CPU time of `decode_html` (checks included) against the bare `bytes.decode` with the charset it
    picks, and against extraction, over the same pages: median of `repeat` runs."""
    import statistics

    from pipeline.web.charset import decode_html
    from pipeline.web.extract import extract

    bodies = [gzip.decompress(Path(f).read_bytes()) if f.endswith(".gz") else Path(f).read_bytes() for f in pages]
    picked = [decode_html(b, None) for b in bodies]
    runs: dict[str, list[float]] = {"decode_html": [], "bytes.decode": [], "extract": []}
    for _ in range(repeat):
        for name, fn in [("decode_html", lambda: [decode_html(b, None) for b in bodies]),
                         ("bytes.decode", lambda: [b.decode(e, "replace") for b, (_, e) in zip(bodies, picked)]),
                         ("extract", lambda: [extract(t) for t, _ in picked])]:
            t0 = time.process_time()
            fn()
            runs[name].append(time.process_time() - t0)
    med = {k: statistics.median(v) * 1000 for k, v in runs.items()}
    print(f"cost over {len(bodies)} pages (ms CPU, median of {repeat}): " + ", ".join(f"{k} {v:.1f}" for k, v in med.items())
          + f"; decode_html / bytes.decode {med['decode_html'] / med['bytes.decode']:.2f}x,"
          f" (decode_html - bytes.decode) / extract {(med['decode_html'] - med['bytes.decode']) / med['extract']:.1%}")


def github(tree: str | None, archives: list[str]) -> None:
    from pipeline.github.reader import RepoFileReader, Unit
    from pipeline.steps import ACCT

    units = [Unit("dir", str(p)) for p in sorted(Path(tree).iterdir()) if p.is_dir()] if tree else []
    units += [Unit("archive", a) for a in archives]
    reader = RepoFileReader(units)
    t0 = time.time()
    kept = sum(1 for _ in reader.run())
    st = {k[len(ACCT):]: int(v.total) for k, v in reader.stats.stats.items() if k.startswith(ACCT) and "bytes" not in k}
    dropped = {k.split("/", 1)[1]: v for k, v in sorted(st.items()) if k.startswith("dropped/")}
    print(f"github: {len(units)} repositories, {st.get('in', 0)} files in, {kept} kept, {time.time() - t0:.0f}s")
    print(f"  dropped: {dropped}")
    print(f"  balanced: {st.get('in', 0) == kept + sum(dropped.values())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", required=True, help="a directory of real files (e.g. unpacked Debian doc packages)")
    ap.add_argument("--pages", help="a directory of real web pages (.html or .html.gz)")
    ap.add_argument("--repos", help="a directory whose subdirectories are read as repositories")
    ap.add_argument("--archives", help="glob of .zip/.tar.gz archives read as repositories")
    ap.add_argument("--every", type=int, default=20, help="web: take every N-th file of the tree")
    a = ap.parse_args()
    files = sample(a.tree, a.every) + (sorted(glob.glob(os.path.join(a.pages, "*.htm*"))) if a.pages else [])
    web(files)
    if a.pages:
        charsets(sorted(glob.glob(os.path.join(a.pages, "*.htm*"))))
    if a.repos or a.archives:
        github(a.repos, sorted(glob.glob(a.archives)) if a.archives else [])


if __name__ == "__main__":
    main()
