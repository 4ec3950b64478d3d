"""Tokenized, globally shuffled shards that trainers read, with a manifest.

Output of a `tokenize_shards` stage, `<run_dir>/<stage>/`:

    part-NNNNN.parquet          the documents (fixed schema; `datasets.load_dataset("parquet")` reads them),
                                with `metadata["tokens"]`
    tokens-NNNNN.bin / .idx     the same documents' token ids, same order, Megatron MMIDIDX
                                (see `pipeline.mixing.megatron`)
    manifest.json               documents and tokens per source and category, ratios, tokenizer
                                and recipe hashes, FIM rate, decontamination counts, the mix

Every document becomes `[BOS]? tokens EOS`. A FIM document (`metadata["fim"]`, from the `fim`
stage) is encoded piece by piece with the sentinel ids between the pieces; any other text is
encoded with special-token strings treated as text.

Phases: a two-pass shuffle. `tokenize` (one task per input shard) encodes each document and
routes it to output shard `k` by a seeded hash of its id, writing one work file per task with a row
group per output shard (`dedup.work`: files O(tasks), not tasks x shards); `shuffle` (`shards` tasks)
reads shard `k`'s row groups of every work file (one footer in memory at a time), orders them
by a second seeded key (ties, i.e. equal ids, by the row's own hash) and writes the parquet shard
and its `.bin/.idx` (built in node-local scratch, then uploaded) with its part of the manifest;
`manifest` merges those parts. No task sees more than its own documents, and the bytes do not
depend on the number of tasks or workers.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter, defaultdict
from itertools import islice

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datatrove.data import DocumentsPipeline
from pydantic import Field

from dedup.work import PartReader, PartWriter, glob, task_file
from pipeline import documents, storage
from pipeline.io import ShardWriter
from pipeline.mixing import category
from pipeline.mixing.megatron import IndexedDatasetWriter
from pipeline.registry import kind_class
from pipeline.stage import Phase, StageContext, StageSpec
from pipeline.steps import Step
from tokenizer import fim


def _batches(it, n: int):
    it = iter(it)
    while batch := list(islice(it, n)):
        yield batch


def encode_documents(tok, docs, add_bos: bool) -> list[list[int]]:
    """Token ids of each document, FIM pieces encoded separately, EOS appended; one encode_batch call."""
    return fim.encode(tok, [(d.text, d.metadata.get("fim")) for d in docs], [tok.bos_id] if add_bos else [])


ROUTE_SCHEMA = pa.schema([("key", pa.uint64()), ("tie", pa.uint64()), ("row", pa.large_string()), ("ids", pa.large_binary()),
                          ("source", pa.string()), ("category", pa.string()), ("tokens", pa.int64()), ("fim", pa.string())])


def _hash64(data: bytes, digest_size: int = 8) -> bytes:
    return hashlib.blake2b(data, digest_size=digest_size).digest()


def route(seed: int, doc_id: str, n_out: int) -> tuple[int, int]:
    """(output shard, order key inside it) of a document: two halves of one seeded hash of its id."""
    h = _hash64(f"{seed}\x00{doc_id}".encode("utf-8", "surrogatepass"), 16)
    return int.from_bytes(h[:8], "little") % n_out, int.from_bytes(h[8:], "little")


class Tokenize(Step):
    """Encodes one input shard and routes each document to its output shard's work file."""

    name = "tokenize"

    def __init__(self, work_dir: str, tokenizer: str, add_bos: bool, n_out: int, seed: int, batch_size: int = 512):
        super().__init__()
        self.work_dir, self.tokenizer, self.add_bos, self.batch_size = work_dir, tokenizer, add_bos, batch_size
        self.n_out, self.seed = n_out, seed

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        import tokenizer as tk

        tok = tk.load(self.tokenizer)
        out = PartWriter(task_file(self.work_dir, rank), ROUTE_SCHEMA)
        for batch in _batches(data or (), self.batch_size):
            docs = []
            for d in batch:
                if d.text:
                    docs.append(d)
                else:
                    self.drop(d, "empty")
            with self.track_time("batch"):
                encoded = encode_documents(tok, docs, self.add_bos)
            p: dict[str, list] = {f: [] for f in ROUTE_SCHEMA.names}
            dests = []
            for d, ids in zip(docs, encoded):
                d.metadata["tokens"] = len(ids)
                row = documents.dumps(documents.to_row(d))
                dest, key = route(self.seed, d.id, self.n_out)
                dests.append(dest)
                p["key"].append(key)
                p["tie"].append(int.from_bytes(_hash64(row.encode("utf-8", "surrogatepass")), "little"))
                p["row"].append(row)
                p["ids"].append(np.asarray(ids, np.uint32).tobytes())
                p["source"].append(str(d.metadata.get("source")))
                p["category"].append(category.of(d.metadata))
                p["tokens"].append(len(ids))
                p["fim"].append(d.metadata["fim"]["mode"] if "fim" in d.metadata else None)
            out.add(pa.table(p, schema=ROUTE_SCHEMA), np.array(dests, np.int64))
            self.stat_update("tokens", value=sum(map(len, encoded)))
        out.close()
        return
        yield


class Shuffle(Step):
    """Output shard `rank`: its routed documents in seeded key order, as parquet (the writer after this
    step) and `.bin/.idx` (written in scratch, uploaded), plus its part of the manifest."""

    name = "shuffle"

    def __init__(self, work_dir: str, out_dir: str, parts_dir: str):
        super().__init__()
        self.work_dir, self.out_dir, self.parts_dir = work_dir, out_dir, parts_dir

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        table = PartReader(glob(self.work_dir, "t*.parquet"), ROUTE_SCHEMA).read(rank)
        table = table.take(np.lexsort((table.column("tie").to_numpy(), table.column("key").to_numpy())))
        name = f"tokens-{rank:05d}"
        with storage.scratch() as tmp:
            with IndexedDatasetWriter(os.path.join(tmp, name)) as w:
                for batch in table.select(["ids", "row"]).to_batches(1024):
                    for ids, row in zip(batch.column("ids").to_pylist(), batch.column("row").to_pylist()):
                        w.add_document(np.frombuffer(ids, np.uint32))
                        yield documents.from_row(json.loads(row))
            for ext in (".bin", ".idx"):
                storage.upload(os.path.join(tmp, name + ext), storage.join(self.out_dir, name + ext))
        groups: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])  # documents, tokens
        for c, s, t in zip(*(table.column(k).to_pylist() for k in ("category", "source", "tokens"))):
            groups[c, s][0] += 1
            groups[c, s][1] += t
        modes = Counter(table.column("fim").to_pylist())
        storage.write_json(storage.join(self.parts_dir, f"part-{rank:05d}.json"), {
            "shard": {"text": f"part-{rank:05d}.parquet", "tokens_prefix": name, "documents": table.num_rows,
                      "tokens": int(pc.sum(table.column("tokens")).as_py() or 0)},
            "groups": [[c, s, *v] for (c, s), v in sorted(groups.items())],
            "fim": {"psm": modes["psm"], "spm": modes["spm"]}})


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


def _group(rows: list[list], key) -> dict:
    out: dict[str, dict] = {}
    for c, s, docs, tokens in rows:
        e = out.setdefault(key(c, s), {"documents": 0, "tokens": 0})
        e["documents"] += docs
        e["tokens"] += tokens
    return dict(sorted(out.items()))


def recipe_digest(recipe: dict, run_dir: str) -> str:
    """sha256 of what decides the data: seed and stages, with the run directory written as ${run_dir}
    (so the same recipe run elsewhere, on any executor or worker count, has the same hash)."""
    text = documents.dumps({"seed": recipe.get("seed"), "stages": recipe.get("stages", [])})
    return hashlib.sha256(text.replace(run_dir.rstrip("/"), "${run_dir}").encode()).hexdigest()


def _merge(a, b):
    """Two stages' manifest sections as one: numbers added, lists joined, mappings merged key by key."""
    if a is None:
        return b
    if isinstance(a, dict) and isinstance(b, dict):
        return {**a, **{k: _merge(a.get(k), v) for k, v in b.items()}}
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return a + b
    return b


def build_manifest(run_dir: str, stage: str, parts_dir: str, n_shards: int, tokenizer_name: str, add_bos: bool,
                   seed: int) -> dict:
    import tokenizer as tk

    tok = tk.load(tokenizer_name)
    parts = [storage.read_json(storage.join(parts_dir, f"part-{k:05d}.json")) for k in range(n_shards)]
    rows = [r for p in parts for r in p["groups"]]
    total_tokens = sum(r[3] for r in rows)
    by_cat = _group(rows, lambda c, s: c)
    for v in by_cat.values():
        v["ratio"] = v["tokens"] / total_tokens if total_tokens else 0.0
    psm, spm = sum(p["fim"]["psm"] for p in parts), sum(p["fim"]["spm"] for p in parts)
    recipe = storage.read_json(storage.join(run_dir, "recipe.json"), {}) or {}
    recipe_hash = recipe_digest(recipe, run_dir)
    manifest = {
        "format": "codecurate-shards/1",
        "documents": sum(r[2] for r in rows),
        "tokens": total_tokens,
        "by_category": by_cat,
        "by_source": _group(rows, lambda c, s: s),
        "by_category_source": _group(rows, lambda c, s: f"{c}/{s}"),
        "ratios": {c: v["ratio"] for c, v in by_cat.items()},
        "shards": [p["shard"] for p in parts],
        "shuffle_seed": seed,
        "recipe_hash": recipe_hash,
        "tokenizer": {"name": tok.name, "hash": tok.hash, "vocab_size": tok.vocab_size, "bos_id": tok.bos_id,
                      "eos_id": tok.eos_id, "fim_begin_id": tok.fim_begin_id, "fim_hole_id": tok.fim_hole_id,
                      "fim_end_id": tok.fim_end_id, "add_bos": add_bos, "add_eos": True, "dtype": "uint32 (MMIDIDX code 4)"},
        "fim": {"documents": psm + spm, "psm": psm, "spm": spm},
        "decontamination": None,
        "mix": None,
    }
    for up in _upstream(recipe, stage):
        spec = kind_class(up["kind"]).model_construct(**up)  # as the recipe ran it; defaults filled in
        sdir = storage.join(run_dir, up["name"])
        section = spec.provenance(sdir, storage.read_json(storage.join(sdir, "_stats.json"), {}) or {})
        for key, value in section.items():
            manifest[key] = _merge(manifest.get(key), value)
    if manifest["mix"]:
        manifest["ratios_target"] = manifest["mix"].get("ratios_target")
    return manifest


class WriteManifest(Step):
    name = "manifest"

    def __init__(self, path: str, **kw):
        super().__init__()
        self.path, self.kw = path, kw

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        storage.write_json(self.path, build_manifest(**self.kw))
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
        work, parts = ctx.work_dir("route"), ctx.work_dir("manifest")
        return [
            Phase("tokenize", [ctx.reader(), Tokenize(work, self.tokenizer, self.add_bos, k, ctx.stage_seed, self.batch_size)],
                  self.tasks or n),
            # one parquet per token shard (no size cap: `shards` sets the size), as the manifest lists them
            Phase("shuffle", [Shuffle(work, ctx.stage_dir, parts), ShardWriter(ctx.stage_dir)], k),
            Phase("manifest", [WriteManifest(storage.join(ctx.stage_dir, "manifest.json"), run_dir=ctx.run_dir,
                                             stage=ctx.stage, parts_dir=parts, n_shards=k, tokenizer_name=self.tokenizer,
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
