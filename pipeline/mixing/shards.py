"""Tokenized, globally shuffled shards that trainers read, with a manifest.

Output of a `tokenize_shards` stage, `<run_dir>/<stage>/`:

    part-NNNNN.parquet          the documents (fixed schema; `datasets.load_dataset("parquet")` reads them),
                                with `metadata["tokens"]`
    tokens-NNNNN.bin / .idx     the same documents' token ids, same order, Megatron MMIDIDX
                                (see `tokenizer.indexed_dataset`)
    manifest.json               documents and tokens per source and category, ratios, tokenizer
                                and recipe hashes, FIM rate, decontamination counts, the mix

Every document becomes `[BOS]? tokens EOS`. A FIM document (`metadata["fim"]`, from the `fim`
stage) is encoded piece by piece with the sentinel ids between the pieces; any other text is
encoded with special-token strings treated as text.

Phases: `tokenize` (one task per input shard, into `_work/`), `shuffle` (`shards` tasks: a
seeded permutation of all documents, output shard k takes the k-th slice), `manifest`.
Memory-mapped work files make the shuffle's random access cheap. Work and output paths are
local (the `.bin` files are memory-mapped).
"""

from __future__ import annotations

import hashlib
import json
import os
from itertools import islice

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline
from pydantic import Field

from pipeline import documents, storage
from pipeline.mixing import fim
from pipeline.mixing.mix import categorize
from pipeline.stage import Phase, StageContext, StageSpec
from pipeline.steps import Step
from tokenizer.indexed_dataset import IndexedDataset, IndexedDatasetWriter


def _batches(it, n: int):
    it = iter(it)
    while batch := list(islice(it, n)):
        yield batch


def encode_documents(tok, docs, add_bos: bool) -> list[list[int]]:
    """Token ids of each document, FIM pieces encoded separately, EOS appended; one encode_batch call."""
    segs: list[str] = []
    layouts = []
    for d in docs:
        if "fim" in d.metadata:
            lay = []
            for kind, text in fim.pieces(d):
                if kind == "sentinel":
                    lay.append(-1 - tok.hf.token_to_id(text))
                else:
                    lay.append(len(segs))
                    segs.append(text)
            layouts.append(lay)
        else:
            layouts.append(len(segs))
            segs.append(d.text)
    enc = tok.encode_batch(segs) if segs else []
    head = [tok.bos_id] if add_bos else []
    out = []
    for lay in layouts:
        if isinstance(lay, int):
            out.append(head + enc[lay] + [tok.eos_id])
            continue
        ids = list(head)
        for v in lay:
            if v < 0:
                ids.append(-1 - v)
            else:
                ids += enc[v]
        ids.append(tok.eos_id)
        out.append(ids)
    return out


class Tokenize(Step):
    """Encodes one input shard into work files: token ids, document rows, and per-document stats."""

    name = "tokenize"

    def __init__(self, work_dir: str, tokenizer: str, add_bos: bool, batch_size: int = 512):
        super().__init__()
        self.work_dir, self.tokenizer, self.add_bos, self.batch_size = work_dir, tokenizer, add_bos, batch_size

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        import tokenizer as tk

        tok = tk.load(self.tokenizer)
        prefix = os.path.join(self.work_dir, f"part-{rank:05d}")
        meta: dict[str, list] = {"source": [], "category": [], "tokens": [], "fim": []}
        with IndexedDatasetWriter(prefix + ".tokens") as tw, IndexedDatasetWriter(prefix + ".rows", np.uint8) as rw:
            for batch in _batches(data or (), self.batch_size):
                docs = []
                for d in batch:
                    if d.text:
                        docs.append(d)
                    else:
                        self.drop(d, "empty")
                with self.track_time("batch"):
                    encoded = encode_documents(tok, docs, self.add_bos)
                for d, ids in zip(docs, encoded):
                    tw.add_document(ids)
                    d.metadata["tokens"] = len(ids)
                    rw.add_document(np.frombuffer(documents.dumps(documents.to_row(d)).encode("utf-8", "surrogatepass"), np.uint8))
                    meta["source"].append(str(d.metadata.get("source")))
                    meta["category"].append(categorize(d.metadata))
                    meta["tokens"].append(len(ids))
                    meta["fim"].append(d.metadata["fim"]["mode"] if "fim" in d.metadata else None)
                self.stat_update("tokens", value=sum(map(len, encoded)))
        table = pa.table({"source": pa.array(meta["source"], pa.string()), "category": pa.array(meta["category"], pa.string()),
                          "tokens": pa.array(meta["tokens"], pa.int64()), "fim": pa.array(meta["fim"], pa.string())})
        pq.write_table(table, prefix + ".meta.parquet.tmp")
        os.replace(prefix + ".meta.parquet.tmp", prefix + ".meta.parquet")
        return
        yield


class Shuffle(Step):
    """Output shard `rank`: the rank-th slice of one seeded permutation of every document."""

    name = "shuffle"

    def __init__(self, work_dir: str, n_parts: int, out_dir: str, seed: int):
        super().__init__()
        self.work_dir, self.n_parts, self.out_dir, self.seed = work_dir, n_parts, out_dir, seed

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        prefixes = [os.path.join(self.work_dir, f"part-{i:05d}") for i in range(self.n_parts)]
        toks = [IndexedDataset(p + ".tokens") for p in prefixes]
        rows = [IndexedDataset(p + ".rows") for p in prefixes]
        ends = np.cumsum([len(t) for t in toks])
        total = int(ends[-1]) if len(ends) else 0
        perm = np.random.default_rng(self.seed).permutation(total)
        sel = perm[rank * total // world_size:(rank + 1) * total // world_size]
        part = np.searchsorted(ends, sel, side="right")
        local = sel - np.concatenate([[0], ends])[part]
        with IndexedDatasetWriter(os.path.join(self.out_dir, f"tokens-{rank:05d}")) as w:
            for p, i in zip(part.tolist(), local.tolist()):
                w.add_document(toks[p][i])
                yield documents.from_row(json.loads(rows[p][i].tobytes().decode("utf-8", "surrogatepass")))


def _upstream(recipe: dict, stage: str) -> list[dict]:
    by_name = {s["name"]: s for s in recipe.get("stages", [])}
    seen, todo, out = set(), [stage], []
    while todo:
        s = by_name.get(todo.pop())
        if s is None:
            continue
        inputs = s.get("input") or []
        for i in [inputs] if isinstance(inputs, str) else inputs:
            if i not in seen:
                seen.add(i)
                todo.append(i)
                if i in by_name:
                    out.append(by_name[i])
    return out


def _group(meta: pa.Table, keys: list[str]) -> dict:
    out: dict[str, dict] = {}
    cols = [meta.column(k).to_pylist() for k in keys]
    for vals, t in zip(zip(*cols), meta.column("tokens").to_pylist()):
        e = out.setdefault("/".join(vals), {"documents": 0, "tokens": 0})
        e["documents"] += 1
        e["tokens"] += t
    return dict(sorted(out.items()))


def recipe_digest(recipe: dict, run_dir: str) -> str:
    """sha256 of what decides the data: seed and stages, with the run directory written as ${run_dir}
    (so the same recipe run elsewhere, on any executor or worker count, has the same hash)."""
    text = documents.dumps({"seed": recipe.get("seed"), "stages": recipe.get("stages", [])})
    return hashlib.sha256(text.replace(run_dir.rstrip("/"), "${run_dir}").encode()).hexdigest()


def build_manifest(run_dir: str, stage: str, work_dir: str, n_parts: int, out_dir: str, n_shards: int,
                   tokenizer_name: str, add_bos: bool, seed: int) -> dict:
    import tokenizer as tk

    tok = tk.load(tokenizer_name)
    metas = [pq.read_table(os.path.join(work_dir, f"part-{i:05d}.meta.parquet")) for i in range(n_parts)]
    meta = pa.concat_tables(metas) if metas else pa.table({k: pa.array([], pa.string()) for k in ("source", "category", "fim")} | {"tokens": pa.array([], pa.int64())})
    total_tokens = int(sum(meta.column("tokens").to_pylist()))
    by_cat = _group(meta, ["category"])
    for v in by_cat.values():
        v["ratio"] = v["tokens"] / total_tokens if total_tokens else 0.0
    shards = []
    for k in range(n_shards):
        ds = IndexedDataset(os.path.join(out_dir, f"tokens-{k:05d}"))
        shards.append({"text": f"part-{k:05d}.parquet", "tokens_prefix": f"tokens-{k:05d}", "documents": len(ds), "tokens": ds.num_tokens})
    recipe = storage.read_json(storage.join(run_dir, "recipe.json"), {}) or {}
    recipe_hash = recipe_digest(recipe, run_dir)
    fim_modes = meta.column("fim").to_pylist()
    manifest = {
        "format": "codecurate-shards/1",
        "documents": meta.num_rows,
        "tokens": total_tokens,
        "by_category": by_cat,
        "by_source": _group(meta, ["source"]),
        "by_category_source": _group(meta, ["category", "source"]),
        "ratios": {c: v["ratio"] for c, v in by_cat.items()},
        "shards": shards,
        "shuffle_seed": seed,
        "recipe_hash": recipe_hash,
        "tokenizer": {"name": tok.name, "hash": tok.hash, "vocab_size": tok.vocab_size, "bos_id": tok.bos_id,
                      "eos_id": tok.eos_id, "fim_begin_id": tok.fim_begin_id, "fim_hole_id": tok.fim_hole_id,
                      "fim_end_id": tok.fim_end_id, "add_bos": add_bos, "add_eos": True, "dtype": "uint32 (MMIDIDX code 4)"},
        "fim": {"documents": sum(m is not None for m in fim_modes), "psm": fim_modes.count("psm"), "spm": fim_modes.count("spm")},
        "decontamination": None,
        "mix": None,
    }
    for up in _upstream(recipe, stage):
        sdir = storage.join(run_dir, up["name"])
        stats = storage.read_json(storage.join(sdir, "_stats.json"), {}) or {}
        if up.get("kind") == "decontaminate":
            hits = {r.split("/", 1)[1]: d["docs"] for r, d in stats.get("dropped", {}).items() if r.startswith("contaminated/")}
            prev = manifest["decontamination"] or {"stages": [], "documents_in": 0, "removed": 0, "by_benchmark": {}}
            prev["stages"].append(up["name"])
            prev["documents_in"] += stats.get("in", {}).get("docs", 0)
            prev["removed"] += sum(hits.values())
            for b, n in hits.items():
                prev["by_benchmark"][b] = prev["by_benchmark"].get(b, 0) + n
            manifest["decontamination"] = prev
        elif up.get("kind") == "mix":
            manifest["mix"] = storage.read_json(storage.join(sdir, "mix.json"))
        elif up.get("kind") == "fim":
            s = fim.fim_step_stats(stats)
            elig, applied = int(s.get("fim/eligible", 0)), int(s.get("fim/applied", 0))
            manifest["fim"].update({"stage": up["name"], "rate_target": up.get("rate", 0.5), "mode": up.get("mode", "psm"),
                                    "eligible": elig, "applied": applied, "rate": applied / elig if elig else 0.0})
    if manifest["mix"]:
        manifest["ratios_target"] = manifest["mix"].get("ratios_target")
    return manifest


class WriteManifest(Step):
    name = "manifest"

    def __init__(self, **kw):
        super().__init__()
        self.kw = kw

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        m = build_manifest(**self.kw)
        storage.write_json(os.path.join(self.kw["out_dir"], "manifest.json"), m)
        return
        yield


class TokenizeShards(StageSpec):
    """Tokenize, globally shuffle (seeded) and write `.bin/.idx` + parquet shards and `manifest.json`."""

    tokenizer: str = "deepseek"
    shards: int | None = Field(default=None, ge=1, description="output shards (default: one per input shard)")
    add_bos: bool = False
    batch_size: int = Field(default=512, ge=1)

    def phases(self, ctx: StageContext) -> list[Phase]:
        n = max(1, len(ctx.input_files))
        k = self.shards or n
        work = ctx.work_dir("tok")
        return [
            Phase("tokenize", [ctx.reader(), Tokenize(work, self.tokenizer, self.add_bos, self.batch_size)], self.tasks or n),
            Phase("shuffle", [Shuffle(work, self.tasks or n, ctx.stage_dir, ctx.stage_seed), ctx.writer()], k),
            Phase("manifest", [WriteManifest(run_dir=ctx.run_dir, stage=ctx.stage, work_dir=work, n_parts=self.tasks or n,
                                             out_dir=ctx.stage_dir, n_shards=k, tokenizer_name=self.tokenizer,
                                             add_bos=self.add_bos, seed=ctx.stage_seed)], 1),
        ]

    @classmethod
    def report_sections(cls, stage_dir: str, stats: dict) -> list[tuple[str, str]]:
        m = storage.read_json(storage.join(stage_dir, "manifest.json"))
        if not m:
            return []
        from pipeline.report import table_html

        rows = [[c, v["documents"], v["tokens"], f"{v['ratio']:.4f}"] for c, v in m["by_category"].items()]
        html = (f"<p>{m['documents']} documents, {m['tokens']} tokens in {len(m['shards'])} shards; "
                f"tokenizer {m['tokenizer']['name']} ({m['tokenizer']['hash'][:12]}).</p>"
                + table_html(["category", "documents", "tokens", "ratio"], rows))
        return [("Tokenized shards", html)]
