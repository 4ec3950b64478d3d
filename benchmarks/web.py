"""Web extraction benchmark: quality on the article-extraction-benchmark, speed against datatrove.

    .venv/bin/python benchmarks/web.py [--repeat 3] [--read-repeat 10]

1. Quality: F1 of body-text tokens on ../shared/data/web/article-extraction-benchmark (181 pages
   with ground truth) as that benchmark's evaluate.py defines it: 4-token shingles of `\\w+`
   tokens, TP/FP/FN normalised per page, summed, then precision/recall/F1. Ours, plain
   resiliparse (main content) and trafilatura side by side.
2. Speed: pages per CPU-second (pages/s/core; CPU time, so other load on a shared machine does
   not count) for the benchmark pages written into one WARC (`--repeat` times), ours
   (WarcRecordReader + ExtractText) against datatrove's WarcReader + Trafilatura chain, both run
   from this process on the same file (datatrove extracts in a sandbox child process, whose CPU
   time is included); wall-clock rate, ratio and peak RSS of each.
3. WARC read throughput: our reader (gzip members split, framing checked, fastwarc parsing)
   against fastwarc's ArchiveIterator alone reading every payload.

Needs the `bench` extra (trafilatura, warcio, and datatrove's WarcReader needs faust-cchardet and
python-magic).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path, where its siblings' names (e.g.
# benchmarks/tokenize.py) would shadow standard modules; the repository root goes there instead.
ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "web" / "article-extraction-benchmark"

_TOKEN = re.compile(r"\w+", re.UNICODE | re.MULTILINE | re.IGNORECASE | re.DOTALL)


def shingles(text: str, n: int = 4) -> Counter:
    toks = _TOKEN.findall(text or "")
    return Counter(tuple(toks[i : i + n]) for i in range(max(1, len(toks) - n + 1)) if toks[i : i + n])


def tp_fp_fn(true: str, pred: str) -> tuple[float, float, float]:
    """The benchmark's string_shingle_matching: counts normalised so every page weighs the same."""
    t, p = shingles(true), shingles(pred)
    tp = fp = fn = 0
    for k in set(t) | set(p):
        a, b = t.get(k, 0), p.get(k, 0)
        tp += min(a, b)
        fp += max(0, b - a)
        fn += max(0, a - b)
    s = tp + fp + fn
    return (tp / s, fp / s, fn / s) if s else (0.0, 0.0, 0.0)


def prf(pages: dict, truth: dict, fn) -> dict:
    tot = [0.0, 0.0, 0.0]
    for key, html in pages.items():
        for i, v in enumerate(tp_fp_fn(truth[key]["articleBody"], fn(html))):
            tot[i] += v
    p = tot[0] / (tot[0] + tot[1])
    r = tot[0] / (tot[0] + tot[2])
    return {"f1": 2 * p * r / (p + r), "precision": p, "recall": r}


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 5 ms); reported
    as growth over the RSS at the start, since both chains share one process."""

    def __enter__(self):
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._watch, daemon=True)
        self._t.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())


def load_pages() -> tuple[dict, dict]:
    truth = json.loads((DATA / "ground-truth.json").read_text())
    pages = {k: gzip.decompress((DATA / "html" / f"{k}.html.gz").read_bytes()).decode("utf-8", "replace") for k in truth}
    return pages, truth


def write_bench_warc(path: Path, pages: dict, truth: dict, repeat: int) -> int:
    from pipeline.web.writer import response_record, write_warc

    recs = [
        response_record(f"{truth[k]['url']}#{i}", html, headers={"WARC-Identified-Payload-Type": "text/html"})
        for i in range(repeat)
        for k, html in pages.items()
    ]
    write_warc(str(path), recs)
    return len(recs)


def run_ours(warc: Path) -> int:
    from pipeline.web.sources import Item
    from pipeline.web.steps import ExtractText, WarcRecordReader

    reader = WarcRecordReader([Item(str(warc))], {}, 16 << 20, {}, {})
    return sum(1 for _ in ExtractText().run(reader.run()))


def run_datatrove(warc: Path) -> int:
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import WarcReader

    reader = WarcReader(str(warc.parent), glob_pattern=warc.name)
    return sum(1 for _ in Trafilatura().run(reader.run()))


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (datatrove extracts in a child)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def timed(fn, *a):
    with PeakRSS() as mem:
        t, c = time.perf_counter(), _cpu()
        n = fn(*a)
        dt, dc = time.perf_counter() - t, _cpu() - c
    return n, dt, dc, mem.peak - mem.start


def read_ours(warc: Path) -> int:
    from pipeline.web.warc import Record, iter_stream

    with open(warc, "rb") as f:
        return sum(len(r.payload) for r in iter_stream(f, 16 << 20) if isinstance(r, Record))


def read_fastwarc(warc: Path) -> int:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    with open(warc, "rb") as f:
        return sum(len(r.reader.read()) for r in ArchiveIterator(f, record_types=WarcRecordType.response, parse_http=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="copies of the 181 pages in the speed WARC")
    ap.add_argument("--read-repeat", type=int, default=20, help="copies in the read-throughput WARC")
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"benchmark data not found: {DATA}")

    # import both chains' modules up front so neither timing pays for imports
    import datatrove.pipeline.extractors  # noqa: F401
    import datatrove.pipeline.readers  # noqa: F401
    import trafilatura
    from resiliparse.extract.html2text import extract_plain_text

    import pipeline.web.steps  # noqa: F401
    from pipeline.web.extract import extract
    from pipeline.web.urls import registered_domain

    registered_domain("https://example.com/")  # load tldextract's bundled suffix list
    pages, truth = load_pages()
    print(f"## Quality: article-extraction-benchmark ({len(pages)} pages), body-text shingle F1")
    print("| extractor | F1 | precision | recall |\n|---|---|---|---|")
    for name, fn in [
        ("codecurate (resiliparse + math/code)", lambda h: extract(h).text),
        ("resiliparse main_content", lambda h: extract_plain_text(h, main_content=True)),
        ("trafilatura", lambda h: trafilatura.extract(h) or ""),
    ]:
        m = prf(pages, truth, fn)
        print(f"| {name} | {m['f1']:.3f} | {m['precision']:.3f} | {m['recall']:.3f} |")

    with tempfile.TemporaryDirectory() as tmp:
        warc = Path(tmp) / "bench.warc.gz"
        n = write_bench_warc(warc, pages, truth, args.repeat)
        print(f"\n## Speed: {n} pages in one WARC ({warc.stat().st_size / 1e6:.1f} MB), one process")
        print("| pipeline | pages out | wall s | CPU s | pages/s/core (CPU) | pages/s (wall) | peak RSS growth MB |\n|---|---|---|---|---|---|---|")
        rates = []
        for name, fn in [("datatrove WarcReader + Trafilatura", run_datatrove), ("codecurate WarcRecordReader + ExtractText", run_ours)]:
            out, dt, dc, mem = timed(fn, warc)
            rates.append(n / dc)
            print(f"| {name} | {out} | {dt:.2f} | {dc:.2f} | {n / dc:.1f} | {n / dt:.1f} | {mem / 2**20:.0f} |")
        print(f"\nspeed ratio (ours / datatrove, pages/s/core): {rates[1] / rates[0]:.1f}x")

        big = Path(tmp) / "read.warc.gz"
        n = write_bench_warc(big, pages, truth, args.read_repeat)
        print(f"\n## WARC read throughput: {n} records ({big.stat().st_size / 1e6:.1f} MB gzip)")
        print("| reader | records/s/core | MB/s/core (uncompressed payload) | peak RSS growth MB |\n|---|---|---|---|")
        for name, fn in [("fastwarc ArchiveIterator alone", read_fastwarc), ("codecurate reader (members split, framing checked)", read_ours)]:
            fn(big)  # warm the page cache
            nbytes, dt, dc, mem = timed(fn, big)
            print(f"| {name} | {n / dc:.0f} | {nbytes / dc / 1e6:.0f} | {mem / 2**20:.0f} |")


if __name__ == "__main__":
    main()
