"""`codecurate ablate`: train K seeds per corpus with identical config and token budget, score every model on
evaluation sets no compared corpus contributed (bits per byte per domain, `trainer.evalsets`) and on the
benchmarks asked for, and print mean ± std per corpus with each difference against the first corpus
(`trainer.ablate_report`), as in DeepSeek-Coder-V2's Table 1.

A corpus is a run directory (its shards stage is found through `manifest.json`), a shards directory, or
stage directories of plain parquet documents (comma-separated); those are tokenised here with the training
config's tokenizer, each document followed by EOS as the shards stage does.

Every path (corpora, `--out`) may be any `pipeline.storage` path; files that libraries must write locally
(token shards, the loss plot) are made in node-local scratch and uploaded.
"""

from __future__ import annotations

import csv
import json
import os
import time

from pipeline import storage
from trainer.data import find_shards


def _stamp(path: str) -> tuple[int, int | float | str]:
    """(size, modification stamp) of a file on any filesystem: local mtime, else the object's ETag/date."""
    fs, p = storage.fs_and_path(path)
    info = fs.info(p)
    if not storage.is_remote(path):
        return info["size"], info["mtime"]
    return info["size"], str(info.get("ETag") or info.get("LastModified") or info.get("mtime") or "")


def tokenise_parquet(stage_dirs: list[str], out_dir: str, tokenizer_name: str) -> str:
    """Write `out_dir/tokens-00000.bin/.idx`, its parquet twin and a manifest; reused when already complete.
    A corpus no mix stage has seen gets its category here, once (`category.decide` with the mix's defaults),
    as the metadata column the evaluation reads."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline import documents
    from pipeline.mixing import category
    from pipeline.mixing.megatron import IndexedDatasetWriter
    from tokenizer import load as load_tokenizer

    manifest = storage.join(out_dir, "manifest.json")
    files = storage.list_shards(stage_dirs)
    if not files:
        raise FileNotFoundError(f"no parquet documents in {', '.join(stage_dirs)}")
    inputs = [[f, *_stamp(f)] for f in files]
    if (storage.read_json(manifest) or {}).get("inputs") == inputs:
        return out_dir
    tok = load_tokenizer(tokenizer_name)
    rows, n_tokens = [], 0
    with storage.scratch() as tmp:
        with IndexedDatasetWriter(os.path.join(tmp, "tokens-00000")) as w:
            for f in files:
                batch = storage.read_parquet(f).to_pylist()
                for row, ids in zip(batch, tok.encode_batch([r["text"] or "" for r in batch])):
                    if not ids:
                        continue
                    w.add_document(ids + [tok.eos_id])
                    doc = documents.from_row(row)
                    doc.metadata["category"] = category.decide(doc.metadata)
                    rows.append(documents.to_row(doc))
                    n_tokens += len(ids) + 1
        for ext in (".bin", ".idx"):
            storage.upload(os.path.join(tmp, "tokens-00000" + ext), storage.join(out_dir, "tokens-00000" + ext))
    with storage.atomic_open(storage.join(out_dir, "part-00000.parquet"), "wb") as f:
        pq.write_table(pa.Table.from_pylist(rows, schema=documents.SCHEMA), f, compression="zstd")
    storage.write_text(manifest, json.dumps(
        {"format": "codecurate-shards/1", "documents": len(rows), "tokens": n_tokens, "inputs": inputs,
         "shards": [{"text": "part-00000.parquet", "tokens_prefix": "tokens-00000", "documents": len(rows), "tokens": n_tokens}],
         "tokenizer": {"name": tok.name, "hash": tok.hash, "eos_id": tok.eos_id, "add_bos": False, "add_eos": True}}, indent=1))
    return out_dir


def resolve_corpus(name: str, spec: str, work_dir: str, tokenizer_name: str) -> str:
    """A path `find_shards` accepts: the corpus itself when it has token shards, else its tokenised parquet."""
    paths = [p for p in spec.split(",") if p]
    if len(paths) == 1:
        try:
            find_shards(paths[0])
            return paths[0]
        except FileNotFoundError:
            pass
    missing = [p for p in paths if not storage.exists(p)]
    if missing:
        raise FileNotFoundError(f"corpus {name}: {', '.join(missing)} does not exist")
    return tokenise_parquet(paths, storage.join(work_dir, "tokens", name), tokenizer_name)


def corpus_signature(path: str) -> str:
    """Changes whenever the corpus's token shards do, so a stale ablation run is retrained, not resumed."""
    import hashlib

    h = hashlib.sha256()
    for prefix in find_shards(path):
        for ext in (".idx", ".bin"):
            if storage.is_remote(prefix):
                size, stamp = _stamp(prefix + ext)
                h.update(f"{prefix}{ext}:{size}:{stamp}\n".encode())
            else:
                st = os.stat(prefix + ext)
                h.update(f"{os.path.abspath(prefix)}{ext}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _fresh_if_changed(out_dir: str, signature: str) -> None:
    marker = storage.join(out_dir, "corpus.sha256")
    if storage.exists(marker) and storage.read_bytes(marker).decode("utf-8").strip() != signature:
        for name in ("ckpt.pt", "log.csv", "tb"):
            storage.rm(storage.join(out_dir, name))
    storage.write_text(marker, signature + "\n")


def _read_log(out_dir: str) -> list[dict]:
    with storage.open_file(storage.join(out_dir, "log.csv"), "r", newline="") as f:
        return list(csv.DictReader(f))


def _final_loss(res: dict, out_dir: str) -> float | None:
    """The last training loss, as log.csv rounds it: from this call, or from log.csv when the run was already
    complete (re-scoring)."""
    if res.get("loss") is not None:
        return round(res["loss"], 6)
    rows = _read_log(out_dir)
    return float(rows[-1]["loss"]) if rows else None


def _plot(runs: dict[str, str], path: str) -> None:
    """`ablate_report.plot_losses` (local files only) run on scratch copies of the logs; the PNG uploaded."""
    from trainer.ablate_report import plot_losses

    with storage.scratch() as tmp:
        local = {}
        for i, (name, out_dir) in enumerate(runs.items()):
            local[name] = os.path.join(tmp, str(i))
            os.makedirs(local[name])
            storage.download(storage.join(out_dir, "log.csv"), os.path.join(local[name], "log.csv"))
        plot_losses(local, os.path.join(tmp, "plot.png"))
        storage.upload(os.path.join(tmp, "plot.png"), path)


def ablate(corpora: list[tuple[str, str]], train_config: str, out_dir: str, tokens: int | None = None,
           heldout: str | None = None, humaneval_limit: int | None = None, skip_humaneval: bool = False,
           mbpp_path: str | None = None, humaneval_x_path: str | None = None, fim_samples: int = 50,
           max_new_tokens: int = 256, heldout_fraction: float | None = None, heldout_tokens: int | None = None,
           quiet: bool = False, seeds: int = 1, gsm8k_path: str | None = None, math_path: str | None = None,
           reference_text: str | None = None, eval_docs: int | None = None, eval_bytes: int | None = None) -> dict:
    """Trains `seeds` models per corpus (seeds config seed, +1, ...: init and data order) and scores each on the
    independent evaluation sets (`trainer.evalsets`), the benchmarks asked for and the held-out documents of one
    corpus (`heldout`, default the first; an extra column, never the headline). Returns {corpus: summary} (see
    `trainer.ablate_report.summarise`); prints the tables (always) and, unless `quiet`, training progress. A run
    directory that already holds the finished checkpoint of the same corpus is scored again without retraining."""
    from tokenizer import load as load_tokenizer
    from trainer.ablate_report import compare, summarise, tables
    from trainer.config import load_config
    from trainer.eval import heldout_docs, score_model
    from trainer.evalsets import load_sets, score_sets
    from trainer.train import load_model, train

    names = [n for n, _ in corpora]
    if len(set(names)) != len(names):
        raise ValueError(f"corpus names must be unique: {', '.join(names)}")
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    common = {} if heldout_fraction is None else {"train.heldout_fraction": heldout_fraction}
    base = load_config(train_config, common)
    say = (lambda *a: None) if quiet else print
    sets = load_sets(mbpp_path, humaneval_x_path, gsm8k_path, math_path, reference_text, humaneval=not skip_humaneval,
                     limit=eval_docs, max_bytes=eval_bytes)
    eval_sets = [s.describe() for s in sets]
    for d in eval_sets:
        print(f"evaluation set {d['name']} ({d['domain']}): {d['documents']} documents, {d['bytes']:,} bytes scored, from {d['source']}")
    notes = [] if any(s.domain == "natural_language" for s in sets) else [
        "no natural-language evaluation set (--reference-text none): natural-language bits per byte not measured"]
    data = {n: resolve_corpus(n, spec, out_dir, base.train.tokenizer) for n, spec in corpora}
    ref = heldout or names[0]
    if ref not in data:
        raise ValueError(f"--heldout {ref!r} is not one of the corpora ({', '.join(names)})")
    docs = heldout_docs(data[ref], base.train.heldout_fraction, base.model.bos_token_id, base.model.eos_token_id)
    if heldout_tokens and docs:  # the same cut for every model: each document's first tokens
        per_doc = max(base.train.seq_len + 1, heldout_tokens // len(docs))
        docs = [d | {"tokens": d["tokens"][:per_doc]} for d in docs]
    say(f"held-out documents (extra column, not independent): {len(docs)} of corpus {ref} "
        f"(hash bucket {base.train.heldout_fraction:.1%}, excluded from every run)")
    summaries, runs = {}, {}
    for name in names:
        per_seed = []
        for k in range(seeds):
            seed = base.train.seed + k
            run_dir = storage.join(out_dir, name, f"seed-{seed}")
            overrides = common | {"train.data": [data[name]], "train.out_dir": run_dir, "train.seed": seed}
            if tokens:
                overrides |= {"train.max_tokens": tokens, "train.max_steps": None}
            cfg = load_config(train_config, overrides)
            _fresh_if_changed(run_dir, corpus_signature(data[name]))
            say(f"== training on corpus {name} ({data[name]}), seed {seed}")
            t0 = time.time()
            res = train(cfg, quiet=quiet)
            runs[f"{name} seed {seed}"] = run_dir
            model, cfg = load_model(run_dir)
            tok = load_tokenizer(cfg.train.tokenizer)
            r = {"seed": seed, "out_dir": run_dir, "tokens": res["step"] * cfg.train.global_batch_tokens(1),
                 "final_train_loss": _final_loss(res, run_dir), "train_seconds": round(time.time() - t0, 1)}
            r |= score_sets(model, tok, sets, cfg.train.seq_len)
            r |= score_model(model, tok, docs, cfg.train.seq_len, humaneval_limit, skip_humaneval, mbpp_path,
                             humaneval_x_path, fim_samples, max_new_tokens)
            per_seed.append(r)
        summaries[name] = summarise(per_seed)
    md = tables(summaries, ref if docs else None)
    plot = storage.join(out_dir, "loss_curves.png")
    _plot(runs, plot)
    first = summaries[names[0]]
    storage.write_text(storage.join(out_dir, "ablation.json"), json.dumps(
        {"corpora": dict(corpora), "train_config": train_config, "seeds": [base.train.seed + k for k in range(seeds)],
         "eval_sets": eval_sets, "notes": notes,
         "heldout": {"corpus": ref, "documents": len(docs), "independent": False},
         "results": summaries, "against_first": {n: compare(first, s) for n, s in summaries.items() if n != names[0]}},
        indent=1, default=str))
    storage.write_text(storage.join(out_dir, "ablation.md"), md + "\n" + "".join(f"\nnote: {n}" for n in notes) + "\n")
    print(md)
    for n in notes:
        print(f"note: {n}")
    print(f"loss curves: {plot}")
    return summaries


def demo_ablation(run_dir: str, tokens: int = 16_384, seeds: int = 1, raw: tuple[str, ...] | None = None,
                  benchmarks: str | None = None, eval_docs: int = 16) -> dict:
    """The demo's ablation: the recipe's final stage against the same inputs before filters and dedup (`raw`
    stages, default the ingest stages), tiny config, `seeds` seeds of a few thousand tokens each, a small
    HumanEval slice, and MBPP/GSM8K/MATH from the `benchmarks` directory where their files are there."""
    recipe = storage.read_json(storage.join(run_dir, "recipe.json"))
    stages = recipe["stages"]
    curated = storage.join(run_dir, stages[-1]["name"])
    raw_names = raw or tuple(s["name"] for s in stages if not s.get("input"))
    config = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "train", "tiny.yaml")
    files = {"mbpp_path": "mbpp/mbpp.jsonl", "gsm8k_path": "gsm8k/test.json", "math_path": "math/test.json"}
    found = {k: os.path.join(benchmarks, f) for k, f in files.items() if benchmarks and os.path.isfile(os.path.join(benchmarks, f))}
    print(f"\nablation: curated ({stages[-1]['name']}) vs raw ({', '.join(raw_names)}), {tokens:,} tokens each, "
          f"{seeds} seed{'s' if seeds > 1 else ''}")
    if benchmarks and len(found) < len(files):
        print(f"note: {', '.join(files[k] for k in files if k not in found)} not under {benchmarks}: not scored")
    return ablate([("curated", curated), ("raw", ",".join(storage.join(run_dir, n) for n in raw_names))], config,
                  storage.join(run_dir, "ablation"), tokens=tokens, humaneval_limit=4, max_new_tokens=32, fim_samples=8,
                  heldout_fraction=0.1, heldout_tokens=8192, quiet=True, seeds=seeds, eval_docs=eval_docs,
                  eval_bytes=1024, **found)
