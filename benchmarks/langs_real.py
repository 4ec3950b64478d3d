"""The language tagger on real package trees, labelled by GitHub Linguist itself (issue 19).

    .venv/bin/python benchmarks/langs_real.py [--set eval|train] [--cache DIR] [fetch] [label] [score]

Two sets of pinned packages, none in both: `eval` (the default, cache /work/cache/langs) is scored;
`train` (cache /work/cache/langs-train) is what `python -m langs.train` adds to Linguist's samples.

fetch: downloads the pinned packages below (Debian source packages through a private apt
source list under the cache, PyPI sdists with `pip download --no-binary NAME`, npm tarballs
with `npm pack`) and extracts up to `--per-package` text files of each, taken round-robin over
its extensions in a fixed hash order (so a package's rare file kinds are in the set, not only
its 300 .c files), into CACHE/files/<source>/<package>/<path in the package>.
label: installs Debian's `ruby-github-linguist` (7.22) if `github-linguist` is missing and
runs one Ruby process that loads Linguist once and labels every file: `Linguist.detect` on
a FileBlob with its path relative to the package root (the truth), its vendored / generated /
documentation flags, and (eval only) Linguist's own content-only answer (a nameless blob: modeline, shebang,
XML; otherwise its classifier over all languages) -> CACHE/labels.jsonl.
score: one whole-process `codecurate langs tag --jsonl` call over the package folders with
names and one `--content-only`, each timed with start-up, next to a bare read of the same files
in a fresh process; agreement with Linguist's label per language, for the ambiguous-extension
subset, and content only. Nothing here is committed; the cache lives outside the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import time
from collections import Counter, defaultdict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[0] = REPO

from benchmarks.langs_packages import SETS, packages  # noqa: E402
from langs.train import DEFAULT_REAL  # noqa: E402

MAX_BYTES = 512 * 1024  # larger files are left out of the set
DEB_SOURCES = "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main\n"


def _run(cmd: list[str], cwd: str | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _apt_options(cache: str) -> list[str]:
    """A private deb-src list and state under the cache: the machine's apt set-up is left alone."""
    apt = os.path.join(cache, "apt")
    for d in ("lists/partial", "cache/archives/partial"):
        os.makedirs(os.path.join(apt, d), exist_ok=True)
    with open(os.path.join(apt, "sources.list"), "w") as f:
        f.write(DEB_SOURCES)
    return ["-o", f"Dir::Etc::SourceList={apt}/sources.list", "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::State::Lists={apt}/lists", "-o", f"Dir::Cache={apt}/cache"]


def download(cache: str, source: str, name: str, version: str, apt: list[str]) -> list[str]:
    """The package's archives under CACHE/downloads (downloaded once)."""
    d = os.path.join(cache, "downloads", source, name.replace("/", "+"))
    done = os.path.join(d, ".done")
    if not os.path.exists(done):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        if source == "deb":
            r = _run(["apt-get", *apt, "source", "--download-only", f"{name}={version}"], cwd=d)
        elif source == "debbin":  # the system's (binary) lists; the .deb's file tree as data.tar
            r = _run(["apt-get", "download", f"{name}={version}"], cwd=d)
            for deb in (f for f in os.listdir(d) if f.endswith(".deb")) if r.returncode == 0 else ():
                with open(os.path.join(d, "data.tar.x"), "wb") as out:
                    r = subprocess.run(["dpkg-deb", "--fsys-tarfile", os.path.join(d, deb)], stdout=out, stderr=subprocess.PIPE, text=True)
        elif source == "pypi":
            r = _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", name, "-q", "-d", d, f"{name}=={version}"])
        else:
            r = _run(["npm", "pack", "--silent", "--pack-destination", d, f"{name}@{version}"])
        if r.returncode != 0:
            raise RuntimeError((r.stderr or r.stdout).strip().splitlines()[-1] if (r.stderr or r.stdout).strip() else f"exit {r.returncode}")
        open(done, "w").close()
    return sorted(os.path.join(d, f) for f in os.listdir(d) if ".tar." in f or f.endswith(".tgz"))


def _order_key(path: str) -> str:
    return hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()


def choose(members: list[str], limit: int) -> list[str]:
    """Up to `limit` paths, round-robin over extensions (the whole name where there is none), each
    extension's paths in a fixed hash order."""
    by_ext: dict[str, list[str]] = defaultdict(list)
    for p in sorted(members, key=_order_key):
        base = p.rsplit("/", 1)[-1]
        by_ext[base[base.rfind("."):].lower() if "." in base[1:] else base].append(p)
    queues = [by_ext[e] for e in sorted(by_ext, key=_order_key)]
    out: list[str] = []
    i = 0
    while len(out) < limit and any(queues):
        q = queues[i % len(queues)]
        if q:
            out.append(q.pop(0))
        i += 1
    return out


def _inner(name: str, strip: bool) -> str | None:
    """A tar member's path inside the package: the top folder dropped where `strip` (Debian's `debian/` kept)."""
    parts = (name[2:] if name.startswith("./") else name).split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    if parts[0] == "debian" or not strip:
        return "/".join(parts)
    return "/".join(parts[1:]) if len(parts) > 1 else None


def extract(archives: list[str], dest: str, limit: int, strip: bool = True) -> int:
    """Write up to `limit` text files (no NUL in the first 8000 bytes, not empty) of the archives to `dest`."""
    found: dict[str, tuple[str, tarfile.TarInfo]] = {}
    for a in archives:
        if a.endswith(".asc"):
            continue
        with tarfile.open(a) as tf:
            for m in tf.getmembers():
                inner = _inner(m.name, strip)
                if m.isfile() and 0 < m.size <= MAX_BYTES and inner and "/.git/" not in "/" + inner:
                    found.setdefault(inner, (a, m))
    picked = choose(list(found), limit * 3)
    rank = {p: i for i, p in enumerate(picked)}
    data: dict[str, bytes] = {}
    for a in archives:  # read in archive order: one pass through each compressed stream
        want = sorted((found[p][1].offset, p) for p in picked if found[p][0] == a)
        if not want:
            continue
        with tarfile.open(a) as tf:
            for _, p in want:
                f = tf.extractfile(found[p][1])
                blob = f.read() if f else b""
                if blob.strip() and b"\x00" not in blob[:8000]:
                    data[p] = blob
    kept = sorted(data, key=rank.get)[:limit]
    for p in kept:
        full = os.path.join(dest, p)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data[p])
    return len(kept)


def fetch(cache: str, limit: int, which: str) -> None:
    apt = _apt_options(cache)
    lists = os.path.join(cache, "apt", "lists")
    if not any(f.endswith("_Sources") for f in os.listdir(lists)):
        r = _run(["apt-get", *apt, "update"])
        if r.returncode != 0:
            sys.exit(f"apt-get update failed: {r.stderr.strip()[-300:]}")
    total = 0
    for source, name, version in packages(which):
        dest = os.path.join(cache, "files", source, name.replace("/", "+"))
        if os.path.exists(dest + ".done"):
            total += sum(len(fs) for _, _, fs in os.walk(dest))
            continue
        try:
            archives = download(cache, source, name, version, apt)
            shutil.rmtree(dest, ignore_errors=True)
            n = extract(archives, dest, limit, strip=source != "debbin")
        except (RuntimeError, tarfile.TarError, OSError, subprocess.TimeoutExpired) as e:
            print(f"  {source} {name}={version}: skipped ({e})", file=sys.stderr)
            continue
        open(dest + ".done", "w").close()
        total += n
        print(f"  {source:4} {name:36} {n:4} files", file=sys.stderr)
    print(f"fetch: {total} files under {cache}/files", file=sys.stderr)


RUBY = r"""
require 'linguist'
require 'json'
classifier = Linguist::Classifier.new(Linguist::Samples.cache)
names = Linguist::Samples.cache['languages'].keys
STDOUT.sync = false
STDIN.each_line do |line|
  root, rel = line.chomp.split("\t", 2)
  blob = Linguist::FileBlob.new(File.join(root, rel), root)
  row = {root: root, path: rel, linguist: nil}
  unless blob.binary? || blob.empty?
    lang = Linguist.detect(blob)
    row[:linguist] = lang && lang.name
    row[:vendored] = blob.vendored?
    row[:documentation] = blob.documentation?
    row[:generated] = blob.generated?
    if ARGV[0] == "content-only"
      data = blob.data
      co = Linguist.detect(Linguist::Blob.new("", data))
      if co
        row[:content_only] = co.name
      else
        best = classifier.classify(data[0...Linguist::Classifier::CLASSIFIER_CONSIDER_BYTES], names).first
        row[:content_only] = best && best[0]
      end
    end
  end
  puts JSON.generate(row)
end
"""


def roots(cache: str) -> list[str]:
    base = os.path.join(cache, "files")
    return sorted(os.path.join(base, s, p) for s in sorted(os.listdir(base)) if os.path.isdir(os.path.join(base, s))
                  for p in os.listdir(os.path.join(base, s)) if os.path.isdir(os.path.join(base, s, p)))


def walk(root: str) -> list[str]:
    """Files under a package folder as `codecurate langs tag` walks them (sorted, `.git` skipped)."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x != ".git")
        out += [os.path.relpath(os.path.join(d, f), root) for f in sorted(files)]
    return out


def label(cache: str, content_only: bool) -> None:
    """Linguist's answer for every file (and its content-only answer, for the scored set); `language` is that
    answer under this tagger's name for it (`renames`), what `python -m langs.train --real` reads."""
    if not shutil.which("github-linguist"):
        r = _run(["apt-get", "install", "-y", "-q", "ruby-github-linguist"], timeout=1200)
        if r.returncode != 0:
            sys.exit("cannot install ruby-github-linguist: " + r.stderr.strip()[-300:])
    script = os.path.join(cache, "label.rb")
    with open(script, "w") as f:
        f.write(RUBY)
    todo = "".join(f"{r}\t{p}\n" for r in roots(cache) for p in walk(r))
    t = time.time()
    out = os.path.join(cache, "labels.jsonl")
    with open(out + ".tmp", "w") as f:
        r = subprocess.run(["ruby", "-Eutf-8", script, "content-only" if content_only else "names"], input=todo.encode(),
                           stdout=f, stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit("labelling failed: " + r.stderr.decode(errors="replace")[-500:])
    renamed = renames()
    with open(out + ".tmp") as f, open(out, "w") as g:
        for line in f:
            row = json.loads(line)
            row["language"] = renamed.get(row["linguist"], row["linguist"])
            g.write(json.dumps(row) + "\n")
    os.remove(out + ".tmp")
    print(f"label: {todo.count(chr(10))} files in {time.time() - t:.0f} s -> {out}", file=sys.stderr)


def load_labels(cache: str) -> list[dict]:
    with open(os.path.join(cache, "labels.jsonl")) as f:
        return [json.loads(line) for line in f]


BARE = """
import os, sys
n = b = 0
for root in sys.argv[1:]:
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x != ".git")
        for fn in sorted(files):
            with open(os.path.join(d, fn), "rb") as f:
                b += len(f.read(50 * 1024)); n += 1
print(n, b)
"""


def timed(cmd: list[str], repeat: int) -> tuple[float, float, str]:
    """Median wall seconds and median CPU seconds (user + system) of `repeat` runs of a whole process,
    and its last stdout. On a shared machine the CPU time is the steadier figure."""
    walls, cpus, out = [], [], ""
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": REPO})
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if r.returncode != 0:
            sys.exit(f"{' '.join(cmd[:4])} ...: {r.stderr[-500:]}")
        out = r.stdout
    return sorted(walls)[len(walls) // 2], sorted(cpus)[len(cpus) // 2], out


def renames() -> dict[str, str]:
    """Linguist 7.22's language names -> this tagger's (9.x) names for the same `language_id`
    ("Vim Script" -> "Vim script", "Coq" -> "Rocq Prover"): a rename is not a disagreement."""
    from langs.linguist import load_yaml

    by_id = {v.get("language_id"): k for k, v in load_yaml("languages.yml").items()}
    r = _run(["ruby", "-rlinguist", "-rjson", "-e", "puts JSON.generate(Linguist::Language.all.map{|l| [l.name, l.language_id]})"])
    return {old: by_id[i] for old, i in json.loads(r.stdout) if by_id.get(i, old) != old}


def score(cache: str, repeat: int, show: int) -> None:
    from benchmarks.langs import ambiguous

    renamed = renames()
    labels = [r for r in load_labels(cache) if r["linguist"]]
    for r in labels:
        r["linguist"] = renamed.get(r["linguist"], r["linguist"])
        r["content_only"] = renamed.get(r.get("content_only"), r.get("content_only"))
    dirs = roots(cache)
    n_files = sum(len(walk(r)) for r in dirs)
    cli = [os.path.join(os.path.dirname(sys.executable), "codecurate"), "langs", "tag", "--jsonl"]
    bare = timed([sys.executable, "-c", BARE, *dirs], repeat)
    named = timed(cli + dirs, repeat)
    content = timed(cli + ["--content-only"] + dirs, repeat)
    named_out, co_out = named[2], content[2]
    ours = {}
    for mode, out in (("names", named_out), ("content", co_out)):
        for line in out.splitlines():
            row = json.loads(line)
            ours[mode, row["path"]] = row["linguist"]
    hit, total, per_lang, confusions = Counter(), Counter(), defaultdict(Counter), {m: Counter() for m in ("names", "content", "linguist-content")}
    for r in labels:
        full, truth = os.path.join(r["root"], r["path"]), r["linguist"]
        amb = ambiguous(os.path.basename(r["path"]))
        for mode, got in (("names", ours.get(("names", full))), ("content", ours.get(("content", full))),
                          ("linguist-content", r.get("content_only"))):
            ok = got == truth
            for key in [mode] + ([mode + "/ambiguous"] if amb else []):
                total[key] += 1
                hit[key] += ok
            per_lang[truth][mode] += ok
            if not ok:
                confusions[mode][f"{truth} -> {got}"] += 1
        per_lang[truth]["n"] += 1
    pct = lambda k: f"{hit[k]}/{total[k]} = {100 * hit[k] / max(total[k], 1):.2f}%"  # noqa: E731
    print(f"{len(labels)} files with a Linguist language (of {n_files} text files), {len(per_lang)} languages, {len(dirs)} packages")
    print(f"  with file names        {pct('names')}")
    print(f"  ambiguous extensions   {pct('names/ambiguous')}")
    print(f"  content only           {pct('content')}   (ambiguous-extension files: {pct('content/ambiguous')})")
    print(f"  Linguist 7.22's own content-only answer (nameless blob, then its classifier): {pct('linguist-content')}")
    for mode in ("names", "content"):
        print(f"  most frequent {mode} confusions (label -> ours): " + ", ".join(f"{k} x{v}" for k, v in confusions[mode].most_common(show)))
    print("\nper language (files, with names %, content only %), most files first:")
    rows = sorted(per_lang.items(), key=lambda kv: (-kv[1]["n"], kv[0]))
    print("  " + "; ".join(f"{lang} {c['n']} {100 * c['names'] / c['n']:.0f}/{100 * c['content'] / c['n']:.0f}" for lang, c in rows))
    print(f"  (7.22 names read as this tagger's: {', '.join(f'{a} -> {b}' for a, b in sorted(renamed.items()) if a in per_lang or b in per_lang)})")
    print(f"\nspeed, one whole process each (start-up included), median of {repeat}, {n_files} files:")
    print(f"  {'':46} {'wall s':>7} {'files/s':>8} {'CPU s':>7} {'files/CPU-s':>11}")
    for what, (wall, cpu, _) in (("bare read (python walk + read 50 KiB)", bare), ("codecurate langs tag --jsonl", named),
                                 ("codecurate langs tag --jsonl --content-only", content)):
        print(f"  {what:46} {wall:7.2f} {n_files / wall:8.0f} {cpu:7.2f} {n_files / cpu:11.0f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("steps", nargs="*", metavar="fetch|label|score", help="default: all three, in order (train: fetch, label)")
    p.add_argument("--set", choices=sorted(SETS), default="eval", help="eval: the scored packages; train: the classifier's")
    p.add_argument("--cache", help="default: /work/cache/langs (eval), where `langs.train` reads (train); or $LANGS_REAL_CACHE")
    p.add_argument("--per-package", type=int, default=40)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--show", type=int, default=15)
    args = p.parse_args(argv)
    bad = set(args.steps) - {"fetch", "label", "score"}
    if bad:
        p.error(f"unknown step(s): {', '.join(sorted(bad))}")
    if args.set == "train" and "score" in args.steps:
        p.error("score is for --set eval: the training set is scored by the model it trains")
    cache = args.cache or os.environ.get("LANGS_REAL_CACHE") or {"eval": "/work/cache/langs", "train": os.path.dirname(DEFAULT_REAL)}[args.set]
    os.makedirs(cache, exist_ok=True)
    for step in args.steps or (["fetch", "label", "score"] if args.set == "eval" else ["fetch", "label"]):
        if step == "fetch":
            fetch(cache, args.per_package, args.set)
        elif step == "label":
            label(cache, content_only=args.set == "eval")
        else:
            score(cache, args.repeat, args.show)
    return 0


if __name__ == "__main__":
    sys.exit(main())
