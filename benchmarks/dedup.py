"""Near-dedup end to end on real versioned source code: `codecurate dedup near FILE` against
datatrove's 4-stage MinHash and a plain single-process datasketch MinHashLSH script.

    nice -n 10 .venv/bin/python -m benchmarks.dedup --work /tmp/dd_bench

The corpus is consecutive releases of PyPI packages (wheels, `pip download`) and npm packages
(tarballs, `npm pack`), cached in `--cache` (never in the repository): one document per source
file (.py, .js, .ts, ...; 100 B - 1 MB, UTF-8). Ours reads it as ONE parquet file (the CLI cuts
it by row groups over one task per core, with exact-Jaccard verification on); datatrove reads
the same rows as one shard per core of about equal bytes (its best case: it splits work by file); datasketch runs in
one process. Same parameters for everyone: 5-gram shingles, 112 permutations as 14 bands x 8
rows, threshold 0.7. Each leg is a subprocess, run in turn; printed: wall and CPU seconds, peak
RSS of the leg's process tree, documents removed, the ratios, and recall/precision of each leg's
clusters against exact Jaccard for an evenly spread sample of files (brute force).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PYPI = [f"django=={v}" for v in ("3.2.25", "4.0.10", "4.1.13", "4.2.16", "5.0.9", "5.1.2")] + [
    "sympy==1.11.1", "sympy==1.12", "sympy==1.13.3", "pandas==2.0.3", "pandas==2.1.4", "pandas==2.2.3", "setuptools==65.5.1",
    "setuptools==68.2.2", "setuptools==70.3.0", "setuptools==75.1.0", "pip==22.3.1", "pip==23.3.2", "pip==24.2",
    "requests==2.28.2", "requests==2.31.0", "flask==2.3.3", "flask==3.0.3",
]
NPM = [
    "lodash@4.17.15", "lodash@4.17.21", "rxjs@7.5.7", "rxjs@7.8.1", "moment@2.29.4", "moment@2.30.1", "eslint@8.50.0",
    "eslint@8.57.0", "webpack@5.88.2", "webpack@5.94.0", "date-fns@2.29.3", "date-fns@2.30.0", "vue@3.3.4", "vue@3.4.38",
    "express@4.18.2", "express@4.19.2", "react-dom@18.2.0", "react-dom@18.3.1", "typescript@5.4.5", "typescript@5.5.4",
]
EXTS = (".py", ".pyi", ".js", ".mjs", ".cjs", ".ts", ".mts", ".cts", ".tsx", ".jsx", ".vue", ".html", ".css")
MIN_BYTES, MAX_BYTES = 100, 1_000_000
NGRAM, NUM_PERM, BANDS, ROWS, THRESHOLD = 5, 112, 14, 8, 0.7


def download(cache: str) -> list[str]:
    """The archives, in package then release order (downloaded once into the cache)."""
    py, js = os.path.join(cache, "pypi"), os.path.join(cache, "npm")
    os.makedirs(py, exist_ok=True)
    os.makedirs(js, exist_ok=True)
    out = []
    for spec in PYPI:
        name, ver = spec.split("==")
        found = glob.glob(os.path.join(py, f"{name}-{ver}-*.whl")) + glob.glob(os.path.join(py, f"{name.capitalize()}-{ver}-*.whl"))
        if not found:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.11",
                            "--platform", "manylinux2014_x86_64", "-q", "-d", py, spec], check=True, capture_output=True)
            found = glob.glob(os.path.join(py, f"{name}-{ver}-*.whl")) + glob.glob(os.path.join(py, f"{name.capitalize()}-{ver}-*.whl"))
        out += sorted(found)
    for spec in NPM:
        name, ver = spec.rsplit("@", 1)
        path = os.path.join(js, f"{name}-{ver}.tgz")
        if not os.path.exists(path):
            subprocess.run(["npm", "pack", "-q", spec], cwd=js, check=True, capture_output=True)
        out.append(path)
    return out


def _members(path: str):
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as z:
            for n in sorted(z.namelist()):
                if n.endswith(EXTS):
                    yield n, z.read(n)
    else:
        with tarfile.open(path) as t:
            for m in sorted(t.getmembers(), key=lambda m: m.name):
                if m.isfile() and m.name.endswith(EXTS) and MIN_BYTES <= m.size <= MAX_BYTES:
                    yield m.name, t.extractfile(m).read()


def build_corpus(cache: str, work: str, shards: int) -> tuple[str, str]:
    """One parquet file (512 rows per row group) and the same rows as `shards` files of about equal bytes (for
    datatrove, which splits work by file; shards of equal row counts differ 3x in bytes on this corpus)."""
    one, split = os.path.join(work, "corpus.parquet"), os.path.join(work, "shards")
    os.makedirs(work, exist_ok=True)
    if os.path.exists(one) and len(glob.glob(os.path.join(split, "*.parquet"))) == shards:
        return one, split
    ids, texts = [], []
    for archive in download(cache):
        stem = os.path.basename(archive)
        for name, data in _members(archive):
            if MIN_BYTES <= len(data) <= MAX_BYTES:
                try:
                    texts.append(data.decode("utf-8"))
                except UnicodeDecodeError:
                    continue
                ids.append(f"{stem}/{name}")
    table = pa.table({"id": ids, "text": texts})
    pq.write_table(table, one, row_group_size=512, compression="zstd")
    shutil.rmtree(split, ignore_errors=True)
    os.makedirs(split)
    ends = np.cumsum([len(t) for t in texts])  # shards of about equal text bytes: datatrove's best split
    cut = [0, *np.searchsorted(ends, ends[-1] * np.arange(1, shards) / shards).tolist(), len(ids)]
    for s in range(shards):
        lo, hi = cut[s], cut[s + 1]
        pq.write_table(table.slice(lo, hi - lo), os.path.join(split, f"part-{s:05d}.parquet"), compression="zstd")
    return one, split


# ---- the legs (each runs in its own process: `--leg NAME`) ---------------------------------------


def leg_ours(work: str, one: str, split: str, workers: int, clusters: str | None = None) -> None:
    """The CLI's defaults (`clusters: centres`), or `--clusters components`."""
    from pipeline.cli import main as cli_main

    name = f"ours_{clusters}" if clusters else "ours"
    out = os.path.join(work, name)
    shutil.rmtree(out, ignore_errors=True)
    rc = cli_main(["dedup", "near", one, "--output", out, "--quiet", "--workers", str(workers), "--threshold", str(THRESHOLD),
                   *(["--clusters", clusters] if clusters else [])])
    if rc:
        raise SystemExit(rc)
    shutil.copy(os.path.join(out, "dedup", "clusters.parquet"), os.path.join(work, f"clusters-{name}.parquet"))


TOKEN = re.compile(r"\w+|[^\w\s]+")


def leg_datasketch(work: str, one: str, split: str, workers: int) -> None:
    """What a plain script does: datasketch MinHash (sha1 of each shingle) into MinHashLSH, query, union-find."""
    from datasketch import MinHash, MinHashLSH

    t = pq.read_table(one, columns=["id", "text"])
    ids, texts = t.column("id").to_pylist(), t.column("text").to_pylist()
    lsh = MinHashLSH(num_perm=NUM_PERM, params=(BANDS, ROWS))
    sigs = []
    for i, text in enumerate(texts):
        toks = TOKEN.findall(text)
        shingles = {" ".join(toks[j : j + NGRAM]).encode() for j in range(max(1, len(toks) - NGRAM + 1))}
        m = MinHash(num_perm=NUM_PERM, seed=1)
        m.update_batch(list(shingles))
        lsh.insert(i, m)
        sigs.append(m)
    parent = list(range(len(ids)))

    def root(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, m in enumerate(sigs):
        for j in lsh.query(m):
            a, b = root(i), root(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    roots = [root(i) for i in range(len(ids))]
    sizes: dict[int, int] = {}
    for r in roots:
        sizes[r] = sizes.get(r, 0) + 1
    rows = [(ids[i], ids[r]) for i, r in enumerate(roots) if sizes[r] > 1]
    pq.write_table(pa.table({"id": [a for a, _ in rows], "cluster_id": [b for _, b in rows], "kept": [a == b for a, b in rows]}),
                   os.path.join(work, "clusters-datasketch.parquet"))


def leg_datatrove(work: str, one: str, split: str, workers: int) -> None:
    import datatrove.utils.hashes.xxhash as dx
    import xxhash
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter

    # datatrove 0.10.1 hands `str` to xxhash, which xxhash >= 4 refuses: encode first
    dx.xxhash32 = lambda d: xxhash.xxh32_intdigest(d.encode() if isinstance(d, str) else d)
    dx.xxhash64 = lambda d: xxhash.xxh64_intdigest(d.encode() if isinstance(d, str) else d)
    base = os.path.join(work, "dt")
    shutil.rmtree(base, ignore_errors=True)
    cfg = MinhashConfig(n_grams=NGRAM, num_buckets=BANDS, hashes_per_bucket=ROWS)
    tasks = len(glob.glob(os.path.join(split, "*.parquet")))

    def reader():
        return ParquetReader(split, glob_pattern="part-*.parquet", text_key="text", id_key="id")

    stages = [
        ([reader(), MinhashDedupSignature(output_folder=f"{base}/sigs", config=cfg)], tasks),
        ([MinhashDedupBuckets(input_folder=f"{base}/sigs", output_folder=f"{base}/buckets", config=cfg)], cfg.num_buckets),
        ([MinhashDedupCluster(input_folder=f"{base}/buckets", output_folder=f"{base}/remove_ids", config=cfg, save_cluster_id=True)], 1),
        ([reader(), MinhashDedupFilter(input_folder=f"{base}/remove_ids", load_cluster_ids=True,
                                       exclusion_writer=ParquetWriter(f"{base}/removed")), ParquetWriter(f"{base}/out")], tasks),
    ]
    for i, (pipe, n) in enumerate(stages):
        LocalPipelineExecutor(pipe, tasks=n, workers=min(workers, n), logging_dir=f"{base}/logs/{i}", skip_completed=False).run()
    rows = []
    for sub in ("out", "removed"):
        for f in sorted(glob.glob(f"{base}/{sub}/*.parquet")):
            for r in pq.read_table(f, columns=["id", "metadata"]).to_pylist():
                c = (r["metadata"] or {}).get("minhash_cluster_id", -1)
                if c != -1:
                    rows.append((r["id"], str(c), sub == "out"))
    pq.write_table(pa.table({"id": [a for a, _, _ in rows], "cluster_id": [b for _, b, _ in rows], "kept": [k for _, _, k in rows]}),
                   os.path.join(work, "clusters-datatrove.parquet"))


LEGS = {"ours": leg_ours, "ours_components": lambda *a: leg_ours(*a, clusters="components"), "datasketch": leg_datasketch,
        "datatrove": leg_datatrove}


def _group_sample(pgid: int, cpu: dict[int, int]) -> int:
    """RSS of the process group now; each member's CPU ticks so far go into `cpu` (pool workers are
    not always reaped by their parent, so the children's rusage would miss them)."""
    total = 0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # field 5 of stat: process group
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # field 24: resident pages
                pid = int(stat.split("/")[2])
                cpu[pid] = max(cpu.get(pid, 0), int(fields[11]) + int(fields[12]))  # fields 14, 15: utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total


def run_leg(name: str, args) -> dict:
    """Runs a leg in its own process group: wall time, CPU and peak RSS of the group (sampled every 50 ms)."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "benchmarks.dedup", "--leg", name, "--work", args.work, "--cache", args.cache, "--workers", str(args.workers)]
    proc = subprocess.Popen(cmd, start_new_session=True)
    peak, cpu, stop = [0], {}, threading.Event()

    def watch():
        while not stop.wait(0.05):
            peak[0] = max(peak[0], _group_sample(proc.pid, cpu))

    w = threading.Thread(target=watch, daemon=True)
    w.start()
    rc = proc.wait()
    stop.set()
    w.join()
    wall = time.perf_counter() - t0
    if rc:
        raise SystemExit(f"leg {name} failed with exit code {rc}")
    cpu_s = sum(cpu.values()) / os.sysconf("SC_CLK_TCK")
    clusters = pq.read_table(os.path.join(args.work, f"clusters-{name}.parquet"))
    removed = len(clusters) - sum(clusters.column("kept").to_pylist())
    r = {"leg": name, "wall": wall, "cpu": cpu_s, "peak_mib": peak[0] / 2**20, "removed": removed, "load": os.getloadavg()[0]}
    print(f"  {name:11s} {wall:8.1f} s wall {cpu_s:8.1f} s CPU  peak RSS {r['peak_mib']:7.0f} MiB  removed {removed}"
          f"  (load {r['load']:.1f})", flush=True)
    return r


def brute_force(one: str, work: str, legs: list[str], sample: int) -> dict:
    """Recall (pairs at Jaccard >= threshold + 0.05 in one cluster, or not both kept) and precision (pairs in
    one cluster at Jaccard >= threshold) of each leg's clusters, for `sample` evenly spread files against
    every file; and, over every removed file, the share at Jaccard >= threshold with its cluster's kept one."""
    import numpy as np
    from scipy.sparse import csr_matrix

    from dedup.shingles import shingle_set

    t = pq.read_table(one, columns=["id", "text"])
    ids = t.column("id").to_pylist()
    sets = [shingle_set(x or "", NGRAM) for x in t.column("text").to_pylist()]
    del t
    sizes = np.array([len(x) for x in sets], dtype=np.int64)
    vocab, cols = np.unique(np.concatenate(sets), return_inverse=True)
    del sets
    inc = csr_matrix((np.ones(len(cols), dtype=np.int32), cols.astype(np.int32), np.concatenate([[0], np.cumsum(sizes)])),
                     shape=(len(ids), len(vocab)))
    by_doc = inc.T.tocsr()
    rows = np.arange(0, len(ids), max(1, len(ids) // sample))[:sample]
    index = {d: i for i, d in enumerate(ids)}
    print(f"\nbrute force: exact Jaccard (our code 5-gram shingles) of {len(rows)} evenly spread files against all {len(ids)}:")
    out = {}
    for name in legs:
        cl = pq.read_table(os.path.join(work, f"clusters-{name}.parquet"), columns=["id", "cluster_id", "kept"]).to_pylist()
        cluster = np.full(len(ids), -1, dtype=np.int64)
        kept = np.ones(len(ids), dtype=bool)
        label: dict[str, int] = {}
        for r in cl:
            cluster[index[r["id"]]] = label.setdefault(r["cluster_id"], len(label))
            kept[index[r["id"]]] = r["kept"]
        counts = np.bincount(cluster[cluster >= 0], minlength=len(label))
        centre = {c: i for i, c in enumerate(cluster) if c >= 0 and kept[i]}
        removed = np.array([i for i in range(len(ids)) if not kept[i] and cluster[i] in centre], dtype=np.int64)
        pair = np.array([centre[cluster[i]] for i in removed], dtype=np.int64)
        inter = np.asarray(inc[removed].multiply(inc[pair]).sum(axis=1)).ravel() if len(removed) else np.zeros(0)
        vs_kept = float(np.mean(inter / (sizes[removed] + sizes[pair] - inter) >= THRESHOLD)) if len(removed) else 1.0
        should = found = joined = right = both_kept = 0
        for lo in range(0, len(rows), 100):
            chunk = rows[lo : lo + 100]
            inter = (inc[chunk] @ by_doc).tocoo()
            a, b, n = chunk[inter.row], inter.col, inter.data
            keep = a != b
            a, b, n = a[keep], b[keep], n[keep]
            jac = n / (sizes[a] + sizes[b] - n)
            same = (cluster[a] >= 0) & (cluster[a] == cluster[b])
            should += int((jac >= THRESHOLD + 0.05).sum())
            found += int((same & (jac >= THRESHOLD + 0.05)).sum())
            both_kept += int((kept[a] & kept[b] & (jac >= THRESHOLD + 0.05)).sum())
            mine = cluster[chunk][cluster[chunk] >= 0]
            joined += int((counts[mine] - 1).sum())  # pairs in one cluster; those sharing no shingle have Jaccard 0
            right += int((same & (jac >= THRESHOLD)).sum())
        out[name] = {"recall": found / max(1, should), "precision": right / max(1, joined),
                     "recall_not_both_kept": 1 - both_kept / max(1, should), "removed_vs_kept_precision": vs_kept}
        print(f"  {name:12s} pairs at J >= {THRESHOLD + 0.05:.2f}: {found}/{should} in one cluster (recall {out[name]['recall']:.4f}), "
              f"not both kept {1 - both_kept / max(1, should):.4f}; pairs in one cluster at J >= {THRESHOLD}: {right}/{joined} "
              f"(precision {out[name]['precision']:.4f}); removed files at J >= {THRESHOLD} with their kept one: "
              f"{vs_kept:.4f} of {len(removed)}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/codecurate-bench-dedup")
    ap.add_argument("--cache", default="/work/cache/dedup", help="downloaded wheels and npm tarballs (outside the repository)")
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="processes for ours and datatrove (datasketch: 1)")
    ap.add_argument("--legs", default="ours,datasketch,datatrove,ours", help="legs, in the order run (repeats allowed)")
    ap.add_argument("--brute-sample", type=int, default=1000)
    ap.add_argument("--leg", choices=sorted(LEGS), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    one, split = build_corpus(args.cache, args.work, args.workers)
    if args.leg:
        LEGS[args.leg](args.work, one, split, args.workers)
        return 0
    md = pq.ParquetFile(one).metadata
    mb = sum(len(x.encode()) for x in pq.read_table(one, columns=["text"]).column("text").to_pylist()) / 1e6
    print(f"corpus: {md.num_rows} files, {mb:.1f} MB of text, {md.num_row_groups} row groups ({len(PYPI)} wheels, "
          f"{len(NPM)} npm tarballs); {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}\n\nend to end, in turn:", flush=True)
    results: dict[str, list[dict]] = {}
    for name in args.legs.split(","):
        results.setdefault(name, []).append(run_leg(name, args))
    for key in ("wall", "cpu"):
        med = {n: float(np.median([r[key] for r in rs])) for n, rs in results.items()}
        for other in ("datatrove", "datasketch"):
            if "ours" in med and other in med:
                print(f"  ours / {other}: {med[other] / med['ours']:.1f}x {key} (median of each leg's runs)")
    quality = brute_force(one, args.work, list(results), args.brute_sample)
    with open(os.path.join(args.work, "results.json"), "w") as f:
        json.dump({"runs": results, "quality": quality}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
