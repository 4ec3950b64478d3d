"""Language tagger benchmark: k-fold agreement with Linguist's labels, and files/s.

    .venv/bin/python benchmarks/langs.py [--folds 10] [--tree DIR] [--files 20000]

Accuracy: Linguist's samples are split into k sample-disjoint folds (a sample is held out with
all its byte-identical copies); for each fold the classifier is retrained on the others (and, as the
committed model, on the real package files of `--real`) and the held-out files are tagged (a) with
their file names through the whole cascade, (b) content only, over all classes. The ambiguous-extension subset is the samples whose extension several Linguist
languages claim (.h, .m, .pl, .ts, .inc, ...). Agreement is on the Linguist name.

Speed, on one core, same files, one process: a bare read of each file (the limit),
`langs.tag` (read + tag), and `pygments.lexers.guess_lexer_for_filename` (read + guess),
with the ratio and peak RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import sysconfig
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from langs import cascade, classifier  # noqa: E402
from langs.linguist import extnames, index  # noqa: E402
from langs.train import DEFAULT_REAL, DEFAULT_SAMPLES, read_real, read_samples  # noqa: E402


def folds_of(samples, k: int) -> list[int]:
    """Fold of each sample by a hash of its content, so identical copies share a fold."""
    return [int(hashlib.sha256(text.encode()).hexdigest(), 16) % k for _, _, text in samples]


def ambiguous(name: str) -> bool:
    for e in extnames(name):
        langs = index().by_extension.get(e)
        if langs:
            return len(langs) > 1
    return False


def kfold(samples_dir: str, k: int, real: str = "none") -> dict:
    """Each fold's model learns from the other folds and, as `python -m langs.train` does, from every real file."""
    samples = read_samples(samples_dir)
    fold = folds_of(samples, k)
    feats = [classifier.features(text) for _, _, text in samples]
    extra = [(lang, classifier.features(text)) for lang, _, text in (read_real(real) if real != "none" else [])]
    hit = Counter()
    total = Counter()
    misses = Counter()
    confusions = Counter()
    for f in range(k):
        model = classifier.train_features([(lang, x) for (lang, _, _), x, g in zip(samples, feats, fold) if g != f], extra)
        for (lang, name, text), g in zip(samples, fold):
            if g != f:
                continue
            with_name = cascade.detect(name, text, model)[0]
            content = cascade.detect(None, text, model)[0]
            total["names"] += 1
            total["content"] += 1
            hit["names"] += with_name == lang
            hit["content"] += content == lang
            if with_name != lang:
                misses[(lang, with_name, name)] += 1
            if content != lang:
                confusions[(lang, content)] += 1
            if ambiguous(name):
                total["ambiguous"] += 1
                hit["ambiguous"] += with_name == lang
    return {"samples": len(samples), "hit": hit, "total": total, "misses": misses, "confusions": confusions}


def tree_files(root: str, limit: int) -> list[str]:
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for fn in sorted(files):
            p = os.path.join(d, fn)
            if os.path.isfile(p) and not os.path.islink(p):
                out.append(p)
                if len(out) >= limit:
                    return out
    return out


def speed(root: str, limit: int, pygments_limit: int) -> None:
    from pygments.lexers import guess_lexer_for_filename
    from pygments.util import ClassNotFound

    from langs import tag

    files = tree_files(root, limit)
    if not files:
        raise SystemExit(f"no files under {root}")
    rel = [os.path.relpath(p, root) for p in files]

    def bare(paths):
        for p in paths:
            with open(p, "rb") as fh:
                fh.read(50 * 1024)

    def ours(paths, rels):
        langs = Counter()
        for p, r in zip(paths, rels):
            with open(p, "rb") as fh:
                langs[tag(r, fh.read(50 * 1024)).language] += 1
        return langs

    def pyg(paths):
        for p in paths:
            with open(p, "rb") as fh:
                data = fh.read(50 * 1024).decode("utf-8", "replace")
            try:
                guess_lexer_for_filename(os.path.basename(p), data)
            except ClassNotFound:
                pass

    tag("warm.py", b"import os\n")  # load Linguist data and the model outside the timing
    bare(files)  # warm the page cache
    # CPU seconds of this one-threaded process: files/s per core, robust to other load on the machine
    rows, results = [], {}
    for label, fn, n in (
        ("bare read", lambda: bare(files), len(files)),
        ("langs.tag (read + tag)", lambda: ours(files, rel), len(files)),
        ("pygments guess_lexer_for_filename", lambda: pyg(files[:pygments_limit]), min(len(files), pygments_limit)),
        ("langs.tag on those same files", lambda: ours(files[:pygments_limit], rel[:pygments_limit]), min(len(files), pygments_limit)),
    ):
        c, w = time.process_time(), time.perf_counter()
        results[label] = fn()
        rows.append((label, n, time.process_time() - c, time.perf_counter() - w))
    langs = results["langs.tag (read + tag)"]
    binary = sum(1 for p, r in zip(files, rel) if tag(r, open(p, "rb").read(8000)).reason == "binary")
    ours_rate = rows[1][1] / rows[1][2]
    print(f"\nspeed on {root} ({len(files)} files, one process, one thread):")
    for name, n, cpu, wall in rows:
        rate = n / cpu
        print(f"  {name:36s} {n:7d} files {cpu:7.2f} CPU s ({wall:6.2f} wall) {rate:9.0f} files/CPU-s   langs.tag/this = {ours_rate / rate:.2f}x")
    print(f"  ({binary} of the {len(files)} files are binary; langs.tag on the {pygments_limit} files vs pygments: "
          f"{rows[3][1] / rows[3][2] / (rows[2][1] / rows[2][2]):.1f}x)")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print("  top languages:", ", ".join(f"{k}={v}" for k, v in langs.most_common(8)))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--samples", default=DEFAULT_SAMPLES)
    ap.add_argument("--real", default=DEFAULT_REAL, help="the real files the model also learns from ('none': samples only)")
    ap.add_argument("--tree", default=sysconfig.get_paths()["purelib"], help="default: this interpreter's site-packages")
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--pygments-files", type=int, default=2000)
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args()
    if not args.skip_accuracy:
        t = time.perf_counter()
        r = kfold(args.samples, args.folds, args.real)
        print(f"{args.folds}-fold sample-disjoint agreement with Linguist's labels ({r['samples']} samples, {time.perf_counter() - t:.0f} s):")
        for key, label, goal in (("names", "with file names", 0.97), ("content", "content only", 0.75), ("ambiguous", "ambiguous extensions", 0.94)):
            acc = r["hit"][key] / max(1, r["total"][key])
            print(f"  {label:22s} {r['hit'][key]:5d}/{r['total'][key]:<5d} = {acc:.2%}  (goal {goal:.0%})")
        print("  most frequent misses with names (label -> ours, file):")
        for (lang, got, name), n in r["misses"].most_common(15):
            print(f"    {lang} -> {got} ({name}) x{n}")
        print("  most frequent content-only confusions (label -> ours):")
        print("    " + ", ".join(f"{a} -> {b} x{n}" for (a, b), n in r["confusions"].most_common(20)))
    if not args.skip_speed:
        speed(args.tree, args.files, args.pygments_files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
