"""fastText classifiers as versioned artefacts: `model.bin` plus `model.json`.

`model.json` records what is needed to trust and reproduce a model: the hashes and counts
of its training data, the hyper-parameters, the tokenizer, held-out metrics and the round.
Training uses `thread=1` and a fixed `seed`, which makes fastText deterministic: the same data
and seed give the same model and metrics. More threads train faster but make the result
depend on thread scheduling (fastText's Hogwild SGD), so metrics are then not reproducible.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass

from pipeline import storage

from classifiers.metrics import evaluate
from classifiers.tokens import get_tokenizer

POS, NEG = "__label__yes", "__label__no"


class TrainError(ValueError):
    """Training cannot start (empty seed, too little data); one line for the user."""


@dataclass
class Hyper:
    """DeepSeekMath's defaults (dim 256, lr 0.1, wordNgrams 3, minCount 3, epoch 3); bucket is fastText's."""

    dim: int = 256
    lr: float = 0.1
    word_ngrams: int = 3
    min_count: int = 3
    epoch: int = 3
    bucket: int = 2_000_000
    seed: int = 0
    thread: int = 1

    def fasttext_args(self) -> dict:
        return {
            "dim": self.dim,
            "lr": self.lr,
            "wordNgrams": self.word_ngrams,
            "minCount": self.min_count,
            "epoch": self.epoch,
            "bucket": self.bucket,
            "seed": self.seed % 2**31,  # fastText takes a signed 32-bit seed
            "thread": self.thread,
            "loss": "softmax",
            "verbose": 0,
        }


_FIT = """
import json, sys
import fasttext
a = json.loads(sys.argv[1])
fasttext.train_supervised(input=a.pop("input"), **a["args"]).save_model(a["output"])
"""


def _fit(data: str, output: str, args: dict) -> None:
    """Train in a fresh process: fasttext 0.9.2 can hit NaN when a process trains a second time
    (state left by the first run), and a fresh process makes each training start from the same state."""
    spec = json.dumps({"input": data, "output": output, "args": args})
    r = subprocess.run([sys.executable, "-c", _FIT, spec], capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise TrainError(f"fastText training failed: {tail}")


def _heldout(doc_id: str, seed: int, fraction: float) -> bool:
    h = hashlib.sha256(f"{seed}:{doc_id}".encode()).digest()
    return int.from_bytes(h[:8], "little") / 2**64 < fraction


def _order_key(doc_id: str, seed: int) -> bytes:
    return hashlib.sha256(f"order:{seed}:{doc_id}".encode()).digest()


def _hash(pages: list[dict]) -> str:
    h = hashlib.sha256()
    for p in sorted(pages, key=lambda p: p["id"]):
        h.update(p["id"].encode())
        h.update(b"\0")
        h.update(p["text"].encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def train(
    positives: list[dict],
    negatives: list[dict],
    output_dir: str,
    tokenizer: str = "deepseek",
    hyper: Hyper | None = None,
    heldout: float = 0.1,
    threshold: float = 0.5,
    target: str = "yes",
    round: int | None = None,
    extra: dict | None = None,
) -> dict:
    """Train on pages (`id`, `text`), hold out a hash-chosen `heldout` share, write the artefacts; returns model.json."""
    import fasttext

    hyper = hyper or Hyper()
    if not positives:
        raise TrainError(f"no positive pages for {target!r}: the seed is empty, refusing to train")
    if not negatives:
        raise TrainError(f"no negative pages for {target!r}: refusing to train")
    tok = get_tokenizer(tokenizer)
    rows = [(p, 1) for p in positives] + [(p, 0) for p in negatives]
    rows.sort(key=lambda r: _order_key(r[0]["id"] + ("+" if r[1] else "-"), hyper.seed))
    train_rows = [r for r in rows if not _heldout(r[0]["id"], hyper.seed, heldout)]
    test_rows = [r for r in rows if _heldout(r[0]["id"], hyper.seed, heldout)]
    if not any(y for _, y in train_rows) or all(y for _, y in train_rows):
        raise TrainError(f"training split for {target!r} lacks positives or negatives ({len(train_rows)} pages)")
    fs, out = storage.fs_and_path(output_dir)
    fs.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "train.txt")
        with open(data, "w", encoding="utf-8") as f:
            for p, y in train_rows:
                f.write(f"{POS if y else NEG} {tok(p['text'])}\n")
        local_bin = os.path.join(tmp, "model.bin")
        _fit(data, local_bin, hyper.fasttext_args())
        model = fasttext.load_model(local_bin)
        fs.put(local_bin, posixpath.join(out, "model.bin"))
    clf = Classifier(model, tokenizer)
    scores = [clf.score(p["text"]) for p, _ in test_rows]
    metrics = evaluate([y for _, y in test_rows], scores, threshold)
    meta = {
        "format": 1,
        "target": target,
        "round": round,
        "tokenizer": tokenizer,
        "hyper_parameters": asdict(hyper),
        "deterministic": hyper.thread == 1,
        "heldout_fraction": heldout,
        "data": {
            "positives": {"count": len(positives), "sha256": _hash(positives)},
            "negatives": {"count": len(negatives), "sha256": _hash(negatives)},
            "train": len(train_rows),
            "heldout": len(test_rows),
        },
        "metrics": {"heldout": metrics},
        **(extra or {}),
    }
    storage.write_json(storage.join(output_dir, "model.json"), meta)
    return meta


class Classifier:
    """A loaded model: `score(text)` is the probability of the positive label."""

    def __init__(self, model, tokenizer: str, meta: dict | None = None):
        self.model = model
        self.tokenizer_name = tokenizer
        self.tokenize = get_tokenizer(tokenizer)
        self.meta = meta or {}

    @classmethod
    def load(cls, model_dir: str) -> "Classifier":
        import fasttext

        meta = storage.read_json(storage.join(model_dir, "model.json"))
        if meta is None:
            raise FileNotFoundError(f"{model_dir}: no model.json (not a model directory)")
        fs, p = storage.fs_and_path(storage.join(model_dir, "model.bin"))
        if "://" in model_dir:  # fastText loads from a local file only
            tmp = tempfile.mkdtemp()
            fs.get(p, os.path.join(tmp, "model.bin"))
            p = os.path.join(tmp, "model.bin")
        return cls(fasttext.load_model(p), meta["tokenizer"], meta)

    def score_tokens(self, tokens: str) -> float:
        labels, probs = self.model.predict(tokens, k=1)
        p = float(min(1.0, probs[0]))
        return p if labels[0] == POS else 1.0 - p

    def score(self, text: str) -> float:
        return self.score_tokens(self.tokenize(text))
