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
import math
import os
import posixpath
import subprocess
import sys
import tempfile

from classifiers.metrics import evaluate
from classifiers.settings import Hyper
from classifiers.tokens import get_tokenizer
from pipeline import storage

POS, NEG = "__label__yes", "__label__no"


class TrainError(ValueError):
    """Training cannot start (empty seed, too little data); one line for the user."""


class Diverged(TrainError):
    """fastText hit NaN: at a high lr on some small sets. A candidate setting that fails, not a broken install."""


_FIT = """
import json, sys
import fasttext
a = json.loads(sys.argv[1])
fasttext.train_supervised(input=a.pop("input"), **a["args"]).save_model(a["output"])
"""


# fastText 0.9.2 initialises only `thread`/10 of the input matrix (`uniformThread`'s block is a tenth of it) and
# relied on std::vector zeroing the rest; the fasttext-numpy2-wheel build allocates it with posix_memalign, so at
# thread=1 nine tenths start as whatever the heap held: NaN or a different model, depending on the process's
# history and environment (valgrind: "uninitialised value ... created by createRandomMatrix"). glibc fills every
# allocation with 0xff ^ this byte, i.e. zeros: upstream's semantics, the same model in any environment.
_ZERO_FILLED_ALLOCATIONS = {"MALLOC_PERTURB_": "255"}


def _fit(data: str, output: str, args: dict) -> None:
    """Train in a fresh process whose allocations start zeroed (see above): each training starts from the same
    state whatever ran before it."""
    spec = json.dumps({"input": data, "output": output, "args": args})
    r = subprocess.run([sys.executable, "-c", _FIT, spec], capture_output=True, text=True, env=os.environ | _ZERO_FILLED_ALLOCATIONS)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise (Diverged if "Encountered NaN" in tail else TrainError)(f"fastText training failed: {tail}")


def _frac(doc_id: str, salt: str) -> float:
    h = hashlib.sha256(f"{salt}:{doc_id}".encode()).digest()
    return int.from_bytes(h[:8], "little") / 2**64


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


def windows(tokens: list[str], size: int, most: int) -> list[str]:
    """Up to `most` windows of at most `size` tokens, spread evenly over the page."""
    if len(tokens) <= size:
        return [" ".join(tokens)] if tokens else []
    n = min(most, -(-len(tokens) // size))
    step = (len(tokens) - size) / max(1, n - 1)
    return [" ".join(tokens[round(i * step) : round(i * step) + size]) for i in range(n)]


def _split(rows: list, seed: int, heldout: float) -> tuple[list, list]:
    """Hash-chosen held-out rows; at least one positive and one negative are held out when there are 3+ of each."""
    test = [r for r in rows if _frac(r[0]["id"], str(seed)) < heldout]
    for y in (1, 0):
        same = [r for r in rows if r[1] == y]
        if heldout and len(same) >= 3 and not any(r[1] == y for r in test):
            test.append(min(same, key=lambda r: _frac(r[0]["id"], str(seed))))
    held = {id(r) for r in test}
    return [r for r in rows if id(r) not in held], test


class _Data:
    """Training lines (windows, the two classes interleaved and balanced) written to a file, and
    page-level scoring of a model."""

    def __init__(self, rows: list, tok, hyper: Hyper):
        self.tokens = {id(p): tok(p["text"]).split() for p, _ in rows}
        self.hyper = hyper

    def write(self, path: str, rows: list) -> int:
        h = self.hyper
        npos = sum(1 for _, y in rows if y)
        pos_windows = sum(len(windows(self.tokens[id(p)], h.window, h.windows_per_page)) for p, y in rows if y)
        per_neg = max(1, min(h.windows_per_page, round(pos_windows / max(1, len(rows) - npos))))
        by_class: dict[int, list[str]] = {0: [], 1: []}
        for p, y in rows:
            ws = windows(self.tokens[id(p)], h.window, h.windows_per_page if y else per_neg)
            by_class[y] += [f"{POS if y else NEG} {w}" for w in ws]
        few, many = sorted(by_class.values(), key=len)
        if few:  # the smaller class repeated up to the larger one's size: fastText has no class weights
            few = [few[i % len(few)] for i in range(len(many))]
        lines = [ln for pair in zip(few, many) for ln in pair]
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        return len(lines)

    def scores(self, model, rows: list) -> list[float]:
        clf = Classifier(model, "whitespace")
        return [clf.score_tokens(" ".join(self.tokens[id(p)])) for p, _ in rows]


def _pick(data: _Data, rows: list, tmp: str, hyper: Hyper, threshold: float) -> tuple[list[tuple[float, int]], list[dict]]:
    """(lr, epoch) pairs, best first by validation AUC (then F1, then the smaller lr and epoch) on a page split of `rows`."""
    import fasttext

    grid = hyper.grid()
    if len(grid) == 1:
        return grid, []
    fit, val = _split(rows, hyper.seed + 1, 0.25)
    path = os.path.join(tmp, "fit.txt")
    data.write(path, fit)
    tried = []
    for lr, ep in grid:
        out = os.path.join(tmp, "try.bin")
        try:
            _fit(path, out, hyper.fasttext_args(lr, ep))
        except Diverged:  # not a candidate; any other failure (e.g. a `fasttext` that cannot train) is the user's line
            tried.append({"lr": lr, "epoch": ep, "failed": True})
            continue
        m = evaluate([y for _, y in val], data.scores(fasttext.load_model(out), val), threshold)
        tried.append({"lr": lr, "epoch": ep, "auc": m["auc"], "f1": m["f1"]})
    ok = [t for t in tried if not t.get("failed")]
    if not ok:
        raise TrainError(f"fastText diverged for every lr/epoch tried ({grid}); set lr and epoch")
    ok.sort(key=lambda t: (t["auc"] or 0.0, t["f1"], -t["lr"], -t["epoch"]), reverse=True)
    return [(t["lr"], t["epoch"]) for t in ok], tried


SPY_QUANTILE = 0.15  # the share of spies a reliable negative may outscore (S-EM's noise level)
SECTION_ALPHA = 0.05  # significance of a section's excess of likely positives among its negatives


def _halves(rows: list) -> list[list]:
    return [[r for r in rows if _frac(r[0]["id"], "clean") < 0.5], [r for r in rows if _frac(r[0]["id"], "clean") >= 0.5]]


def _binomial_tail(n: int, k: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


def _clean(data: _Data, rows: list, tmp: str, args: dict, threshold: float, section_of=None) -> set[int]:
    """Training negatives that look like positives, by 2-fold cross-fitting with spies (Liu et al.'s
    S-EM): each half of the negatives is scored by a model trained on the other half and half of the
    positives; the other positives are the spies, pages known to be positive that the model has not
    seen. A negative that scores at least `threshold`, or as high as all but the lowest
    `SPY_QUANTILE` of the spies, is a likely positive: the pool's negatives hold the target's own
    pages, which pull a model's scores of positives below any fixed threshold.

    `section_of(page)` (None: not judged by section, e.g. a URL prefix): a section whose negatives are
    likely positives significantly more often than the sample's (one-sided binomial test at
    `SECTION_ALPHA`) holds the target's pages, so all its negatives go: the half-models score its
    other target pages low because they train on them as negatives."""
    import fasttext

    neg, pos = _halves([r for r in rows if not r[1]]), _halves([r for r in rows if r[1]])
    if not all(neg):
        return set()
    spying = all(len(h) >= 3 for h in pos)
    doubtful: set[int] = set()
    for a, b in ((0, 1), (1, 0)):
        path, out = os.path.join(tmp, "clean.txt"), os.path.join(tmp, "clean.bin")
        data.write(path, (pos[a] if spying else pos[0] + pos[1]) + neg[a])
        try:
            _fit(path, out, args)
        except Diverged:  # a diverged half-model cleans nothing
            continue
        model = fasttext.load_model(out)
        cut = threshold
        if spying:
            spies = sorted(data.scores(model, pos[b]))
            cut = min(cut, spies[int(SPY_QUANTILE * len(spies))])
        doubtful |= {id(r) for r, s in zip(neg[b], data.scores(model, neg[b])) if s >= cut}
    negs = neg[0] + neg[1]
    if section_of and doubtful:
        rate = len(doubtful) / len(negs)
        sections: dict[str, list[int]] = {}
        for r in negs:
            sec = section_of(r[0])
            if sec is not None:
                sections.setdefault(sec, []).append(id(r))
        for ids in sections.values():
            if _binomial_tail(len(ids), sum(i in doubtful for i in ids), rate) < SECTION_ALPHA:
                doubtful |= set(ids)
    return set() if len(doubtful) == len(negs) else doubtful


def train(
    positives: list[dict],
    negatives: list[dict],
    output_dir: str,
    tokenizer: str = "deepseek",
    hyper: Hyper | None = None,
    heldout: float = 0.2,
    threshold: float = 0.5,
    target: str = "yes",
    round: int | None = None,
    extra: dict | None = None,
    clean_negatives: bool = False,
    section_of=None,
) -> dict:
    """Train on pages (`id`, `text`) cut into windows, hold out a hash-chosen `heldout` share of pages,
    choose lr/epoch on a validation split when they are not given, write the artefacts; returns model.json.

    `clean_negatives`: negatives sampled from an unlabelled pool hold some positives; training
    negatives that look like positives (`_clean`) are dropped before the final model is trained.
    Held-out negatives are not cleaned, so held-out precision and AUC are lower bounds; `section_of`
    names a negative's section (URL prefix) so that sections of likely positives go whole (`_clean`)."""
    import fasttext

    hyper = hyper or Hyper()
    if not positives:
        raise TrainError(f"no positive pages for {target!r}: the seed is empty, refusing to train")
    if not negatives:
        raise TrainError(f"no negative pages for {target!r}: refusing to train")
    rows = [(p, 1) for p in positives] + [(p, 0) for p in negatives]
    rows.sort(key=lambda r: _order_key(r[0]["id"] + ("+" if r[1] else "-"), hyper.seed))
    train_rows, test_rows = _split(rows, hyper.seed, heldout)
    if not any(y for _, y in train_rows) or all(y for _, y in train_rows):
        raise TrainError(f"training split for {target!r} lacks positives or negatives ({len(train_rows)} pages)")
    data = _Data(rows, get_tokenizer(tokenizer), hyper)
    fs, out = storage.fs_and_path(output_dir)
    fs.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        ranked, tried = _pick(data, train_rows, tmp, hyper, threshold)
        path, local_bin = os.path.join(tmp, "train.txt"), os.path.join(tmp, "model.bin")
        for n, (lr, epoch) in enumerate(ranked):  # the next candidate when fastText diverges (NaN)
            args = hyper.fasttext_args(lr, epoch)
            dropped = _clean(data, train_rows, tmp, args, threshold, section_of) if clean_negatives else set()
            kept = [r for r in train_rows if id(r) not in dropped]
            n_lines = data.write(path, kept)
            try:
                _fit(path, local_bin, hyper.fasttext_args(lr, epoch))
                break
            except Diverged:
                if n == len(ranked) - 1:
                    raise
        train_rows = kept
        model = fasttext.load_model(local_bin)
        fs.put(local_bin, posixpath.join(out, "model.bin"))
    metrics = evaluate([y for _, y in test_rows], data.scores(model, test_rows), threshold)
    meta = {
        "format": 2,
        "target": target,
        "round": round,
        "tokenizer": tokenizer,
        "hyper_parameters": {**hyper.model_dump(), "lr": lr, "epoch": epoch},
        "selection": {"lr_given": hyper.lr, "epoch_given": hyper.epoch, "tried": tried},
        "deterministic": hyper.thread == 1,
        "heldout_fraction": heldout,
        "data": {
            "positives": {"count": len(positives), "sha256": _hash(positives)},
            "negatives": {"count": len(negatives), "sha256": _hash(negatives)},
            "train": len(train_rows),
            "train_windows": n_lines,
            "negatives_dropped": len(dropped),
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
    def load(cls, model_dir: str) -> Classifier:
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
