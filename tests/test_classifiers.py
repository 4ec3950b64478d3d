"""fastText classifiers: BPE input, versioned artefacts, determinism, CLI train/eval, metrics, seeds."""

from __future__ import annotations

import argparse
import json
import random

import pytest

from classifiers.metrics import auc, evaluate
from classifiers.model import Classifier, TrainError, train, windows
from classifiers.pages import SeedError, page_prefixes, read_pages
from classifiers.settings import DEEPSEEKMATH, Hyper
from classifiers.tokens import DeepSeekBPE, get_tokenizer

SMALL = Hyper(dim=16, bucket=5000, epoch=20, min_count=1, word_ngrams=2)


def _cli(*argv) -> int:
    from classifiers.cli import register

    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="command", required=True))
    a = p.parse_args([str(x) for x in argv])
    return a.func(a)


def test_cli_module_is_registered():
    from pipeline import cli, registry

    assert "classifiers.cli" in cli.COMMAND_MODULES and registry.KINDS["recall"] == "classifiers.stage:Recall"


MIXED = [
    "def f(x):\n    return x + 1  # add\r\n\tprint(f(41))",
    "今天的天气非常好，我们一起去公园散步。数学 x^2 + y^2 = z^2，对吗？",
    "Numbers 1234567 and 3.14159, emails a.b@c.org, URLs https://x.y/z?q=1&r=2",
    "  leading and trailing spaces   \n\n  double  spaces \u00a0nbsp über café naïve Ελληνικά русский 한국어 日本語です",
    "emoji 😀🎉 and symbols ∑∫√ ≤≥ «quotes» “curly” — dash… …",
    "",
    "\n",
    "x" * 300 + " " + "ab12cd34 " * 20,
]


def test_fast_bpe_matches_the_tokenizer_exactly():
    bpe = DeepSeekBPE()
    rng = random.Random(0)
    texts = list(MIXED)
    for _ in range(50):  # random mixes of the pieces above
        texts.append("".join(rng.choice(MIXED)[rng.randrange(20):][: rng.randrange(1, 60)] for _ in range(8)))
    for t in texts:
        assert bpe(t) == bpe.reference(t), t
    assert "\n" not in bpe(MIXED[0])  # one line per page for fastText


def _pages(prefix: str, kind: str, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    vocab = {
        "code": "def return import class self for in range if else print lambda None == ( ) [ ] { } :".split(),
        "prose": "the city council met to discuss a new budget for parks and quiet streets markets".split(),
    }[kind]
    return [{"id": f"{prefix}{i}", "text": " ".join(rng.choice(vocab) for _ in range(40))} for i in range(n)]


def test_model_artefacts_and_determinism(tmp_path):
    pos, neg = _pages("p", "code", 60, 1), _pages("n", "prose", 60, 2)
    a = train(pos, neg, str(tmp_path / "a"), tokenizer="deepseek", hyper=SMALL, target="code", round=3)
    b = train(pos, neg, str(tmp_path / "b"), tokenizer="deepseek", hyper=SMALL, target="code", round=3)
    assert (tmp_path / "a" / "model.bin").read_bytes() == (tmp_path / "b" / "model.bin").read_bytes()
    assert a == b
    meta = json.loads((tmp_path / "a" / "model.json").read_text())
    assert meta["round"] == 3 and meta["tokenizer"] == "deepseek" and meta["deterministic"] is True
    assert meta["hyper_parameters"]["dim"] == 16 and meta["hyper_parameters"]["thread"] == 1
    assert meta["data"]["positives"]["count"] == 60 and len(meta["data"]["positives"]["sha256"]) == 64
    assert meta["data"]["train"] + meta["data"]["heldout"] == 120
    assert meta["metrics"]["heldout"]["auc"] == 1.0
    c = Classifier.load(str(tmp_path / "a"))
    assert c.score("def f ( x ) : return x") > 0.5 > c.score("the council met in the city")
    # other data -> other hash
    other = train(pos[:-1], neg, str(tmp_path / "c"), hyper=SMALL, tokenizer="whitespace")
    assert other["data"]["positives"]["sha256"] != meta["data"]["positives"]["sha256"]


def test_defaults_fit_small_seeds_and_deepseekmath_stays_available():
    h = Hyper()
    assert (h.dim, h.lr, h.epoch, h.bucket, h.thread) == (64, None, None, 200_000, 1)  # lr/epoch: validation split
    assert len(h.grid()) == 6 and Hyper(lr=0.5).grid() == [(0.5, 5), (0.5, 20)] and Hyper(lr=0.1, epoch=3).grid() == [(0.1, 3)]
    d = Hyper(**DEEPSEEKMATH)
    assert (d.dim, d.lr, d.word_ngrams, d.min_count, d.epoch, d.bucket) == (256, 0.1, 3, 3, 3, 2_000_000)


def test_windows_bound_examples():
    toks = [str(i) for i in range(1000)]
    ws = windows(toks, 100, 4)
    assert len(ws) == 4 and all(len(w.split()) == 100 for w in ws)
    assert ws[0].split()[0] == "0" and ws[-1].split()[-1] == "999"  # spread over the whole page
    assert windows(toks[:50], 100, 4) == [" ".join(toks[:50])] and windows([], 100, 4) == []


def test_a_fasttext_that_cannot_train_is_its_own_line_not_divergence(tmp_path, monkeypatch):
    from classifiers import model

    monkeypatch.setattr(model, "_FIT", "import fasttext; fasttext.train_supervised_missing()")  # a prediction-only build
    with pytest.raises(TrainError, match="fastText training failed: AttributeError") as e:
        train(_pages("p", "code", 12, 0), _pages("n", "prose", 12, 1), str(tmp_path / "m"))
    assert "diverged" not in str(e.value)


def test_empty_seed_refused(tmp_path):
    with pytest.raises(TrainError, match="the seed is empty, refusing to train"):
        train([], _pages("n", "prose", 5, 0), str(tmp_path / "m"))
    assert not (tmp_path / "m").exists()
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "neg.jsonl").write_text("".join(json.dumps(p) + "\n" for p in _pages("n", "prose", 5, 0)))
    assert _cli("classifiers", "train", "--positives", tmp_path / "empty.jsonl", "--negatives", tmp_path / "neg.jsonl", "--output", tmp_path / "m") == 2
    assert not (tmp_path / "m").exists()


def test_cli_train_and_eval(tmp_path, capsys):
    pos, neg = _pages("p", "code", 60, 1), _pages("n", "prose", 60, 2)
    (tmp_path / "pos.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pos))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(neg), tmp_path / "neg.parquet")
    rc = _cli("classifiers", "train", "--positives", tmp_path / "pos.jsonl", "--negatives", tmp_path / "neg.parquet",
              "--output", tmp_path / "model", "--tokenizer", "whitespace", "--dim", 16, "--bucket", 5000, "--epoch", 20, "--min-count", 1)
    assert rc == 0, capsys.readouterr().err
    assert "held-out: precision" in capsys.readouterr().out
    labelled = [{"text": p["text"], "label": "yes"} for p in _pages("q", "code", 20, 5)]
    labelled += [{"text": p["text"], "label": 0} for p in _pages("r", "prose", 20, 6)]
    (tmp_path / "eval.jsonl").write_text("".join(json.dumps(p) + "\n" for p in labelled))
    assert _cli("classifiers", "eval", tmp_path / "model", "--data", tmp_path / "eval.jsonl") == 0
    out = capsys.readouterr().out
    assert "precision 1.0000 recall 1.0000 f1 1.0000 auc 1.0000" in out
    assert (tmp_path / "model" / "threshold_curve.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "bad.jsonl").write_text(json.dumps({"text": "x", "label": "maybe"}) + "\n")
    assert _cli("classifiers", "eval", tmp_path / "model", "--data", tmp_path / "bad.jsonl") == 2
    assert "label must be 1/0 or yes/no, got 'maybe'" in capsys.readouterr().err


def test_metrics():
    assert auc([1, 1, 0, 0], [0.9, 0.8, 0.1, 0.2]) == 1.0
    assert auc([1, 0], [0.5, 0.5]) == 0.5
    assert auc([1, 1], [0.1, 0.2]) is None
    m = evaluate([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1], 0.5)
    assert (m["precision"], m["recall"], m["f1"], m["auc"]) == (0.5, 0.5, 0.5, 0.75)


def test_seed_files_errors(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{not json\n')
    with pytest.raises(SeedError, match=r"bad.jsonl: line 2: invalid JSON"):
        list(read_pages(str(tmp_path / "bad.jsonl")))
    with pytest.raises(SeedError, match="no such file"):
        list(read_pages(str(tmp_path / "missing.jsonl")))
    (tmp_path / "x.csv").write_text("a\n")
    with pytest.raises(SeedError, match="expected a .parquet or .jsonl file"):
        list(read_pages(str(tmp_path / "x.csv")))


def test_url_prefixes():
    assert page_prefixes({"url": "https://Blog.Example.org/code/py/a/b/page.html?x=1"}) == [
        (0, "blog.example.org/"), (1, "blog.example.org/code/"), (2, "blog.example.org/code/py/"), (3, "blog.example.org/code/py/a/"),
    ]
    assert page_prefixes({"url": "https://h.org/page"}) == [(0, "h.org/")]


def test_unknown_tokenizer():
    with pytest.raises(ValueError, match="unknown tokenizer 'bpe'"):
        get_tokenizer("bpe")


def test_token_budget_cutoff_merges_per_task_tops():
    from classifiers.stats import top_within_budget

    ids, scores, tokens = ["a", "b", "c", "d"], [0.9, 0.8, 0.7, 0.6], [100, 100, 100, 100]
    assert top_within_budget(ids, scores, tokens, 250) == [0, 1]  # the top two pages fit
    assert top_within_budget(ids, scores, tokens, 50) == []  # nothing fits
    # the best pages within the budget over all tasks are the best within it among each task's own best
    rng = random.Random(3)
    ids = [f"p{i:03d}" for i in range(200)]
    scores = [round(rng.random(), 2) for _ in ids]  # ties are broken by id
    tokens = [rng.randint(1, 50) for _ in ids]
    best = {ids[i] for i in top_within_budget(ids, scores, tokens, 900)}
    tops = []
    for r in range(7):
        mine = list(range(r, 200, 7))
        tops += [mine[j] for j in top_within_budget([ids[i] for i in mine], [scores[i] for i in mine], [tokens[i] for i in mine], 900)]
    merged = top_within_budget([ids[i] for i in tops], [scores[i] for i in tops], [tokens[i] for i in tops], 900)
    assert {ids[tops[j]] for j in merged} == best


def test_spies_find_the_targets_own_pages_among_the_negatives(tmp_path):
    from classifiers.model import _clean, _Data

    # a pool sample as negatives: a third of it is the target's own kind of page
    pos, neg = _pages("p", "code", 40, 1), _pages("n", "prose", 60, 2) + _pages("c", "code", 30, 3)
    rows = [(p, 1) for p in pos] + [(p, 0) for p in neg]
    data = _Data(rows, get_tokenizer("whitespace"), SMALL)
    dropped = _clean(data, rows, str(tmp_path), SMALL.fasttext_args(0.3, 20), 0.5)
    doubtful = {r[0]["id"] for r in rows if id(r) in dropped}
    assert sum(d.startswith("c") for d in doubtful) >= 27 and not any(d.startswith("n") for d in doubtful)


def test_a_section_whose_negatives_look_like_positives_goes_whole(tmp_path):
    from classifiers.model import _clean, _Data

    # mixed/: prose pages and some of the target's pages; news/: prose only
    pos = _pages("p", "code", 40, 1)
    neg = _pages("n", "prose", 60, 2) + _pages("m", "prose", 30, 4) + _pages("c", "code", 10, 3)
    rows = [(p, 1) for p in pos] + [(p, 0) for p in neg]
    data = _Data(rows, get_tokenizer("whitespace"), SMALL)
    section = {"n": "news/", "m": "mixed/", "c": "mixed/"}

    def dropped(section_of):
        out = _clean(data, rows, str(tmp_path), SMALL.fasttext_args(0.3, 20), 0.5, section_of)
        return {r[0]["id"][0] for r in rows if id(r) in out}, sum(id(r) in out for r in rows)

    # mixed/'s negatives are likely positives far more often than the sample's: all of them go
    assert dropped(lambda p: section[p["id"][0]]) == ({"m", "c"}, 40)
    kinds, n = dropped(lambda p: None)  # no section judged: only the pages that look like positives
    assert "c" in kinds and "n" not in kinds and n < 20
