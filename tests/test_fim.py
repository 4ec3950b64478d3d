"""FIM: the sentinel format, the achieved rate, exact reconstruction, and shard encoding."""

from __future__ import annotations

import random

import pytest
from datatrove.data import Document

import tokenizer as tk
from pipeline.mixing.fim import FimTransform
from pipeline.mixing.shards import encode_documents
from tokenizer import fim

B, H, E = tk.FIM_BEGIN_TOKEN, tk.FIM_HOLE_TOKEN, tk.FIM_END_TOKEN


def _docs(n: int, seed: int = 0) -> list[Document]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        lines = [f"    x{j} = {rnd.randint(0, 99)}  # é漢 {B if j == 2 else ''}" for j in range(rnd.randint(0, 6))]
        out.append(Document(text="def f():\n" + "\n".join(lines) + ("\n" if i % 2 else ""), id=f"d{i}", metadata={"category": "code"}))
    return out


def _run(docs, **kw):
    args = {"rate": 0.5, "mode": "psm", "spm_rate": 0.5, "unit": "char", "categories": ["code"], "seed": 3} | kw
    step = FimTransform(**args)
    originals = {d.id: d.text for d in docs}
    out = list(step.run(iter(docs)))
    return out, originals, step


def test_psm_format_and_rate_at_10k_documents():
    out, originals, step = _run(_docs(10_000))
    transformed = [d for d in out if "fim" in d.metadata]
    rate = len(transformed) / len(out)
    assert abs(rate - 0.5) <= 0.02
    assert step.stats["fim/applied"].total == len(transformed) and step.stats["fim/eligible"].total == 10_000
    for d in transformed:
        f = d.metadata["fim"]
        assert d.text.startswith(B)
        o = originals[d.id]
        a, b = f["prefix"], f["prefix"] + f["middle"]
        assert d.text == B + o[:a] + H + o[b:] + E + o[a:b]
        assert fim.restore(d.text, d.metadata.get("fim")) == o


@pytest.mark.parametrize("mode,unit", [("spm", "char"), ("mix", "line"), ("psm", "line")])
def test_other_modes_reconstruct_exactly(mode, unit):
    out, originals, step = _run(_docs(2000, seed=1), mode=mode, unit=unit)
    modes = {d.metadata["fim"]["mode"] for d in out if "fim" in d.metadata}
    assert modes == ({"psm", "spm"} if mode == "mix" else {mode})
    for d in out:
        assert fim.restore(d.text, d.metadata.get("fim")) == originals[d.id]
        if "fim" not in d.metadata:
            continue
        f = d.metadata["fim"]
        o = originals[d.id]
        a, b = f["prefix"], f["prefix"] + f["middle"]
        if f["mode"] == "spm":
            assert d.text == B + H + o[b:] + E + o[:a] + o[a:b]
        if unit == "line":  # cuts fall at line starts (or the end of the text)
            assert all(p == 0 or p == len(o) or o[p - 1] == "\n" for p in (a, b))


def test_only_configured_categories_and_independent_of_order():
    docs = _docs(200) + [Document(text="Plain English prose here.", id=f"n{i}", metadata={"category": "natural_language"}) for i in range(50)]
    out, _, _ = _run(docs)
    assert not any("fim" in d.metadata for d in out if d.id.startswith("n"))
    shuffled = _docs(200)
    random.Random(5).shuffle(shuffled)
    again, _, _ = _run(shuffled)
    assert {d.id: d.text for d in again} == {d.id: d.text for d in out if d.id.startswith("d")}


def test_fim_documents_encode_with_sentinel_ids_then_eos():
    tok = tk.load()
    out, originals, _ = _run(_docs(50), rate=1.0)
    for d, ids in zip(out, encode_documents(tok, out, add_bos=False)):
        f = d.metadata["fim"]
        o = originals[d.id]
        a, b = f["prefix"], f["prefix"] + f["middle"]
        want = [tk.FIM_BEGIN] + tok.encode(o[:a]) + [tk.FIM_HOLE] + tok.encode(o[b:]) + [tk.FIM_END] + tok.encode(o[a:b]) + [tk.EOS_ID]
        assert ids == want
        assert tok.decode(ids[:-1]) == d.text
    # a sentinel string inside an ordinary document stays text
    plain = Document(text=f"a {B} b", id="p", metadata={})
    ids = encode_documents(tok, [plain], add_bos=True)[0]
    assert ids[0] == tk.BOS_ID and ids[-1] == tk.EOS_ID and tk.FIM_BEGIN not in ids
