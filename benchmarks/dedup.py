"""MinHash near-dedup on real source files: ours vs datatrove, datasketch and rensa, on the same corpus.

    .venv/bin/python -m benchmarks.dedup --files 50000

The corpus is the `.py` files of the installed site-packages plus several releases of a few
packages (`pip download`ed into the work dir, for real near-duplicates), as parquet shards.
Parameters are the same for everyone: 5-grams, 112 permutations in 14 bands x 8 rows. Printed:
signature docs/s and MB/s on one core (ours, datatrove `MinhashDedupSignature`, datasketch
`MinHash.update_batch`, rensa `RMinHash`), end-to-end wall and CPU time and peak RSS of ours vs
datatrove's 4-stage MinHash (local executor, one worker, same tasks), how far the kept sets agree,
and recall/precision of our clusters against exact Jaccard for a sample of files (brute force).
`--parts` picks what runs: datatrove's end-to-end leg (~25 min at 50k files) saves its result in
the work dir, and a later run without it reuses that result and says so.
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
import sysconfig
import tarfile
import tempfile
import threading
import time
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq

DOWNLOADS = [
    "requests==2.25.1", "requests==2.28.2", "requests==2.31.0",
    "click==7.1.2", "click==8.0.4", "click==8.1.7",
    "attrs==21.4.0", "attrs==22.2.0", "attrs==23.1.0",
    "jinja2==2.11.3", "jinja2==3.0.3", "jinja2==3.1.2",
    # larger packages, several releases each: ~31k .py files, most with a near-duplicate in the next release
    *(f"django=={v}" for v in ("2.1.15", "2.2.28", "3.0.14", "3.1.14", "3.2.25", "4.0.10", "4.1.13", "4.2.16", "5.0.9", "5.1.2")),
    *(f"sympy=={v}" for v in ("1.8", "1.9", "1.10.1", "1.11.1", "1.12", "1.13.3")),
    *(f"pandas=={v}" for v in ("1.5.3", "2.0.3", "2.1.4", "2.2.3")),
    *(f"scipy=={v}" for v in ("1.9.3", "1.10.1", "1.11.4", "1.13.1")),
    *(f"numpy=={v}" for v in ("1.26.4", "2.0.2", "2.1.3")),
    *(f"pip=={v}" for v in ("20.3.4", "21.3.1", "22.3.1", "23.3.2", "24.2")),
    *(f"setuptools=={v}" for v in ("58.5.3", "62.6.0", "65.5.1", "68.2.2", "70.3.0", "75.1.0")),
]
MAX_BYTES = 200_000
PARTS = {"sigs", "datatrove", "ours", "brute"}


def _download(specs: list[str], dest: str) -> list[str]:
    os.makedirs(dest, exist_ok=True)
    for spec in specs:
        name = spec.split("==")[0].lower()
        ver = spec.split("==")[1]
        if glob.glob(os.path.join(dest, f"{name}-{ver}*")) or glob.glob(os.path.join(dest, f"{name.capitalize()}-{ver}*")):
            continue
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", dest, spec],
                           capture_output=True, text=True)
        if r.returncode:
            print(f"  (could not download {spec}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode})")
    return sorted(glob.glob(os.path.join(dest, "*.whl")) + glob.glob(os.path.join(dest, "*.tar.gz")))


def _archive_files(path: str):
    stem = os.path.basename(path)
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as z:
            for n in sorted(z.namelist()):
                if n.endswith(".py"):
                    yield f"{stem}/{n}", z.read(n)
    else:
        with tarfile.open(path) as t:
            for m in sorted(t.getmembers(), key=lambda m: m.name):
                if m.isfile() and m.name.endswith(".py"):
                    yield f"{stem}/{m.name}", t.extractfile(m).read()


def _site_files():
    root = sysconfig.get_paths()["purelib"]
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(".py"):
                p = os.path.join(dirpath, f)
                with open(p, "rb") as fh:
                    yield os.path.relpath(p, root), fh.read()


def build_corpus(work: str, n_files: int, shards: int) -> str:
    from pipeline import documents

    out = os.path.join(work, "run", "corpus")
    if os.path.exists(os.path.join(out, "part-00000.parquet")):
        return out
    archives = _download(DOWNLOADS, os.path.join(work, "downloads"))
    rows = []
    for src in [_archive_files(a) for a in archives] + [_site_files()]:
        for path, data in src:
            if len(rows) >= n_files:
                break
            if not 100 <= len(data) <= MAX_BYTES:
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            rows.append({"id": path, "text": text, "source": "github", "path": path, "metadata": "{}"})
    os.makedirs(out, exist_ok=True)
    for s in range(shards):
        part = rows[s::shards]
        t = pa.Table.from_pylist([{k: r.get(k) for k in documents.SCHEMA.names} for r in part], schema=documents.SCHEMA)
        pq.write_table(t, os.path.join(out, f"part-{s:05d}.parquet"), compression="zstd")
    return out


def load_docs(corpus: str) -> list[tuple[str, str]]:
    docs = []
    for f in sorted(glob.glob(os.path.join(corpus, "part-*.parquet"))):
        t = pq.read_table(f, columns=["id", "text"])
        docs += list(zip(t.column("id").to_pylist(), t.column("text").to_pylist()))
    return docs


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 10 ms)."""

    def __enter__(self):
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._watch, daemon=True)
        self._t.start()
        return self

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _watch(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())


# ---- signatures ---------------------------------------------------------------------------------

STR_TOKEN = re.compile(r"[\w]+|[^\w\s]+")


def sig_ours(texts):
    from dedup.minhash import MinHasher, band_keys
    from dedup.shingles import shingle_hashes

    h = MinHasher(112, 1)
    for i in range(0, len(texts), 1024):
        band_keys(h.signatures([shingle_hashes(t, 5, "code") for t in texts[i : i + 1024]]), 14, 8)


def sig_datasketch(texts):
    from datasketch import MinHash

    from dedup.shingles import shingle_bytes

    for t in texts:
        m = MinHash(num_perm=112, seed=1)
        m.update_batch(shingle_bytes(t, 5, "code"))


def sig_rensa(texts):
    from rensa import RMinHash

    for t in texts:
        toks = STR_TOKEN.findall(t)
        m = RMinHash(num_perm=112, seed=1)
        m.update([" ".join(toks[i : i + 5]) for i in range(max(1, len(toks) - 4))])
        m.digest()


def datatrove_xxhash_compat() -> None:
    """datatrove 0.10.1 hashes `str` shingles with xxhash, which xxhash >= 4 refuses: encode them first."""
    import xxhash

    import datatrove.utils.hashes.xxhash as dx

    dx.xxhash32 = lambda d: xxhash.xxh32_intdigest(d.encode() if isinstance(d, str) else d)
    dx.xxhash64 = lambda d: xxhash.xxh64_intdigest(d.encode() if isinstance(d, str) else d)


def sig_datatrove(texts, work):
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

    out = os.path.join(work, "dt_sig_only")
    shutil.rmtree(out, ignore_errors=True)
    step = MinhashDedupSignature(output_folder=out, config=MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8))
    gen = step.run((Document(text=t, id=str(i)) for i, t in enumerate(texts)), rank=0, world_size=1)
    for _ in gen or ():
        pass


# ---- end to end ---------------------------------------------------------------------------------


def e2e_ours(work: str, tasks: int, verify: bool) -> list[str]:
    from dedup.stages import DedupNear
    from dedup.table_input import TableInput
    from pipeline import storage
    from pipeline.executors import quiet_console
    from pipeline.recipe import Recipe
    from pipeline.runner import Runner

    name = "ours_verify" if verify else "ours"
    run_dir = os.path.join(work, "run")
    shutil.rmtree(os.path.join(run_dir, name), ignore_errors=True)
    spec = DedupNear(name=name, kind="dedup_near", input="corpus", tasks=tasks, verify=verify)
    source = TableInput(name="corpus", kind="table_input", path=os.path.join(run_dir, "corpus"))  # already written
    recipe = Recipe(name="bench", run_dir=run_dir, seed=0, executor="local", workers=1, stages=[source, spec])
    quiet_console()
    Runner(recipe, progress=False).run_stage(spec)
    kept = []
    for f in storage.list_shards([os.path.join(run_dir, name)]):
        kept += pq.read_table(f, columns=["id"]).column("id").to_pylist()
    clustered = set(pq.read_table(os.path.join(run_dir, name, "clusters.parquet"), columns=["id"]).column("id").to_pylist())
    return kept, clustered


def e2e_datatrove(work: str, corpus: str, tasks: int) -> list[str]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter

    from pipeline.executors import quiet_console

    quiet_console()
    base = os.path.join(work, "dt")
    shutil.rmtree(base, ignore_errors=True)
    cfg = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)

    def reader():
        return ParquetReader(corpus, glob_pattern="part-*.parquet", text_key="text", id_key="id")

    stages = [
        ([reader(), MinhashDedupSignature(output_folder=f"{base}/sigs", config=cfg)], tasks),
        ([MinhashDedupBuckets(input_folder=f"{base}/sigs", output_folder=f"{base}/buckets", config=cfg)], cfg.num_buckets),
        ([MinhashDedupCluster(input_folder=f"{base}/buckets", output_folder=f"{base}/remove_ids", config=cfg, save_cluster_id=True)], 1),
        ([reader(), MinhashDedupFilter(input_folder=f"{base}/remove_ids", load_cluster_ids=True,
                                       exclusion_writer=ParquetWriter(f"{base}/removed")), ParquetWriter(f"{base}/out")], tasks),
    ]
    for i, (pipe, n) in enumerate(stages):
        LocalPipelineExecutor(pipe, tasks=n, workers=1, logging_dir=f"{base}/logs/{i}", skip_completed=False).run()
    kept, clustered = [], set()
    for sub in ("out", "removed"):
        for f in sorted(glob.glob(f"{base}/{sub}/*.parquet")):
            t = pq.read_table(f, columns=["id", "metadata"]).to_pylist()
            if sub == "out":
                kept += [r["id"] for r in t]
            clustered |= {r["id"] for r in t if (r["metadata"] or {}).get("minhash_cluster_id", -1) != -1}
    return kept, clustered


def scale(work: str, n_docs: int, shards: int, tasks: int) -> None:
    """Memory of the cross-shard phases (buckets, clusters) for `n_docs` synthetic signatures, 5% duplicates."""
    import numpy as np

    from dedup import keep as keeping
    from dedup import steps, work as wk
    from pipeline import documents

    base = os.path.join(work, f"scale-{n_docs}")
    shutil.rmtree(base, ignore_errors=True)
    inp, wdir = os.path.join(base, "input"), os.path.join(base, "_work")
    os.makedirs(inp)
    rng = np.random.default_rng(0)
    per = n_docs // shards
    t0 = time.perf_counter()
    for s in range(shards):
        pq.write_table(documents.SCHEMA.empty_table(), os.path.join(inp, f"part-{s:05d}.parquet"))
        refs = wk.make_ref(s, np.arange(per))
        keys = rng.integers(0, 2**63, size=(per, 14), dtype=np.uint64)
        dup = rng.random(per) < 0.05
        keys[dup] = keys[rng.integers(0, per, size=int(dup.sum()))]  # a near-duplicate shares its bands
        flat, fref = keys.reshape(-1), np.repeat(refs, 14)
        part = (flat % np.uint64(tasks)).astype(np.int64)
        for q in range(tasks):
            wk.write_table(os.path.join(wdir, "bands", wk.shard_name(s, q)),
                           pa.table({"key": flat[part == q], "ref": fref[part == q]}, schema=steps.BAND_SCHEMA))
        wk.write_table(os.path.join(wdir, "members", wk.shard_name(s)), pa.table(
            {"ref": refs, "id": [f"doc-{s}-{i}" for i in range(per)], "length": np.full(per, 1000), "stars": np.zeros(per)},
            schema=keeping.MEMBER_SCHEMA))
    print(f"scale: {per * shards} synthetic documents in {shards} shards, {tasks} partitions (written in {time.perf_counter() - t0:.0f}s)")
    for label, step, ranks in [
        ("buckets (one partition task)", steps.Buckets([inp], wdir, all_pairs=False), range(tasks)),
        ("clusters (one task)", steps.Components([inp], wdir, stage_dir=base, verified=False, keep=keeping.DEFAULT_KEEP), [0]),
    ]:
        peak, t0 = 0, time.perf_counter()
        for r in ranks:
            with PeakRSS() as mem:
                for _ in step.run(None, r, len(ranks)) or ():
                    pass
            peak = max(peak, mem.peak - mem.base)
        print(f"  {label:30s} {time.perf_counter() - t0:7.1f} s for all, peak RSS growth {peak / 2**20:7.0f} MiB")
    stats = json.load(open(os.path.join(base, "dedup_stats.json")))
    print(f"  {stats['clusters']} clusters, {stats['duplicates_removed']} duplicates")


def signature_rates(docs, total_mb: float, sig_mb: float, work: str) -> None:
    """CPU-time rates on one core over an evenly spread sample of about `sig_mb` MB."""
    step = max(1, int(total_mb / sig_mb))
    sample = [t for _, t in docs[::step]]
    mb = sum(len(t.encode("utf-8", "surrogatepass")) for t in sample) / 1e6
    print(f"\nsignatures, one core, {len(sample)} files / {mb:.1f} MB, 5-grams, 14x8:")
    rates = {}
    for name, fn in [("ours", sig_ours), ("datatrove MinhashDedupSignature", lambda t: sig_datatrove(t, work)),
                     ("datasketch update_batch", sig_datasketch), ("rensa RMinHash", sig_rensa)]:
        fn(sample[:10])  # warm-up: imports, permutation tables, spaCy
        t0 = time.process_time()
        fn(sample)
        dt = time.process_time() - t0
        rates[name] = mb / dt
        print(f"  {name:34s} {len(sample) / dt:9.0f} docs/s  {mb / dt:7.2f} MB/s/core")
    print(f"  ours / datatrove: {rates['ours'] / rates['datatrove MinhashDedupSignature']:.1f}x, "
          f"ours / rensa: {rates['ours'] / rates['rensa RMinHash']:.2f}x")


def end_to_end(docs, corpus: str, work: str, tasks: int, parts: set[str]) -> None:
    """Wall and CPU time, peak RSS and kept sets; datatrove's leg is saved, and reused when not re-run."""
    print(f"\nend to end, {len(docs)} files, local executor, 1 worker, {tasks} tasks:")
    recorded = os.path.join(work, "datatrove_e2e.json")
    legs = [("ours (no verification)", lambda: e2e_ours(work, tasks, False)),
            ("ours (exact-Jaccard verification)", lambda: e2e_ours(work, tasks, True))] if "ours" in parts else []
    if "datatrove" in parts:
        legs.insert(0, ("datatrove 4-stage", lambda: e2e_datatrove(work, corpus, tasks)))
    results = {}
    for name, fn in legs:
        with PeakRSS() as mem:
            t0, c0 = time.perf_counter(), time.process_time()
            kept, clustered = fn()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        results[name] = dict(kept=sorted(kept), clustered=sorted(clustered), wall=wall, cpu=cpu, peak=mem.peak, base=mem.base,
                             files=len(docs), when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        _print_leg(name, results[name])
    if "datatrove" in parts:
        with open(recorded, "w") as f:
            json.dump(results["datatrove 4-stage"], f)
    elif os.path.exists(recorded):
        with open(recorded) as f:
            results["datatrove 4-stage"] = json.load(f)
        if results["datatrove 4-stage"]["files"] != len(docs):
            raise SystemExit(f"{recorded} is for another corpus ({results['datatrove 4-stage']['files']} files): re-run its leg")
        _print_leg(f"datatrove 4-stage (recorded {results['datatrove 4-stage']['when']}, not re-run)", results["datatrove 4-stage"])
    if "datatrove 4-stage" not in results or "ours" not in parts:
        return
    dt = results["datatrove 4-stage"]
    dt_kept, dt_clustered = set(dt["kept"]), set(dt["clustered"])
    print("  agreement with datatrove (its kept member of a cluster is not chosen by stars/length/id, so")
    print("  the documents in duplicate clusters are the fair comparison):")
    for name in ("ours (no verification)", "ours (exact-Jaccard verification)"):
        r = results[name]
        kept, clustered = set(r["kept"]), set(r["clustered"])
        both = len(clustered & dt_clustered) / max(1, len(clustered | dt_clustered))
        print(f"  {name}: {dt['wall'] / r['wall']:.1f}x faster (wall), {dt['cpu'] / r['cpu']:.1f}x (CPU); docs in duplicate "
              f"clusters: ours {len(clustered)}, datatrove {len(dt_clustered)}, Jaccard {both:.3f}; "
              f"kept sets Jaccard {len(kept & dt_kept) / len(kept | dt_kept):.4f}")


def _print_leg(name: str, r: dict) -> None:
    print(f"  {name:34s} {r['wall']:8.1f} s wall {r['cpu']:8.1f} s CPU  peak RSS {r['peak'] / 2**20:7.0f} MiB "
          f"(+{(r['peak'] - r['base']) / 2**20:.0f})  kept {len(r['kept'])}, removed {r['files'] - len(r['kept'])}")


def brute_force(docs, work: str, sample: int, threshold: float = 0.7) -> None:
    """Recall and precision of our clusters against exact Jaccard, as in the tests, for an evenly spread
    sample of documents against every document of the corpus (a sparse shingle-incidence product)."""
    import numpy as np
    from scipy.sparse import csr_matrix

    from dedup.shingles import shingle_set

    t0 = time.process_time()
    sets = [shingle_set(t or "") for _, t in docs]
    sizes = np.array([len(x) for x in sets], dtype=np.int64)
    vocab, cols = np.unique(np.concatenate(sets), return_inverse=True)
    del sets
    inc = csr_matrix((np.ones(len(cols), dtype=np.int32), cols.astype(np.int32), np.concatenate([[0], np.cumsum(sizes)])),
                     shape=(len(docs), len(vocab)))
    del cols
    by_doc = inc.T.tocsr()
    rows = np.arange(0, len(docs), max(1, len(docs) // sample))[:sample]
    print(f"\nbrute force: exact Jaccard of {len(rows)} evenly spread files against all {len(docs)} "
          f"({len(vocab)} distinct shingles):")
    index = {doc_id: i for i, (doc_id, _) in enumerate(docs)}
    for name in ("ours", "ours_verify"):
        t = pq.read_table(os.path.join(work, "run", name, "clusters.parquet"), columns=["id", "cluster_id"]).to_pylist()
        cluster = np.full(len(docs), -1, dtype=np.int64)
        label = {}
        for r in t:
            cluster[index[r["id"]]] = label.setdefault(r["cluster_id"], len(label))
        should = found = joined = right = 0
        below = []  # Jaccard of the pairs in one cluster under the threshold (chains: a~b~c, a !~ c)
        for lo in range(0, len(rows), 100):
            chunk = rows[lo : lo + 100]
            inter = (inc[chunk] @ by_doc).tocoo()
            a, b = chunk[inter.row], inter.col
            keep = a != b
            a, b, n = a[keep], b[keep], inter.data[keep]
            jac = n / (sizes[a] + sizes[b] - n)
            same = (cluster[a] >= 0) & (cluster[a] == cluster[b])
            should += int((jac >= threshold + 0.05).sum())
            found += int((same & (jac >= threshold + 0.05)).sum())
            members = cluster[chunk] >= 0  # pairs in one cluster that share no shingle have Jaccard 0
            joined += int(sum(int((cluster == c).sum()) - 1 for c in cluster[chunk][members]))
            right += int((same & (jac >= threshold)).sum())
            below.append(jac[same & (jac < threshold)])
        print(f"  {name:12s} recall {found / max(1, should):.4f} ({found}/{should} pairs at Jaccard >= {threshold + 0.05:.2f}), "
              f"precision {right / max(1, joined):.4f} ({right}/{joined} pairs in one cluster at Jaccard >= {threshold})")
        below = np.concatenate(below)
        below = np.concatenate([below, np.zeros(joined - right - len(below))])  # those sharing no shingle
        if len(below):
            print(f"  {'':12s} the other {len(below)}: median Jaccard {np.median(below):.2f}, {np.mean(below >= 0.5):.0%} at >= 0.5")
    print(f"  ({time.process_time() - t0:.0f} CPU s)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=50_000, help="source files in the corpus")
    ap.add_argument("--sig-mb", type=float, default=8.0, help="MB of the corpus for the signature rates")
    ap.add_argument("--tasks", type=int, default=4, help="tasks per phase, for both pipelines")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "codecurate-bench-dedup"))
    ap.add_argument("--parts", default="sigs,datatrove,ours,brute",
                    help="comma list of sigs, datatrove, ours, brute; without datatrove, its recorded end-to-end result is reused")
    ap.add_argument("--brute-sample", type=int, default=1000, help="files checked against all others by brute force")
    ap.add_argument("--scale", type=int, help="only measure the memory of buckets+clusters for this many synthetic docs")
    args = ap.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    if args.scale:
        scale(args.work, args.scale, shards=16, tasks=args.tasks)
        return 0
    datatrove_xxhash_compat()
    parts = set(args.parts.split(","))
    if parts - PARTS:
        ap.error(f"unknown --parts: {', '.join(sorted(parts - PARTS))}")

    corpus = build_corpus(args.work, args.files, args.tasks)
    docs = load_docs(corpus)
    total_mb = sum(len(t.encode("utf-8", "surrogatepass")) for _, t in docs) / 1e6
    print(f"corpus: {len(docs)} files, {total_mb:.1f} MB ({corpus}); load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    if "sigs" in parts:
        signature_rates(docs, total_mb, args.sig_mb, args.work)
    if parts & {"datatrove", "ours"}:
        end_to_end(docs, corpus, args.work, args.tasks, parts)
    if "brute" in parts:
        brute_force(docs, args.work, args.brute_sample)
    return 0


if __name__ == "__main__":
    sys.exit(main())
