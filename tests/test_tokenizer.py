"""Tokenizer: DeepSeek-V2 ids and sentinels, round trips, the MMIDIDX format (training: test_tokenizer_train.py)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

import tokenizer as tk
from pipeline.mixing.megatron import IndexedDataset, IndexedDatasetWriter

TEXTS = [
    "def add(a, b):\n    return a + b\n",
    "  leading spaces and trailing\t\n\r\n",
    "Unicode: é漢字 🙂 Ωμέγα — “quotes” \u00a0nbsp",
    "",
    "<｜fim▁begin｜> literal sentinels <｜end▁of▁sentence｜> stay text",
    "x" * 5000,
]


def test_deepseek_ids_and_sentinels():
    tok = tk.load()
    assert (tok.bos_id, tok.eos_id) == (100000, 100001)
    assert (tk.FIM_HOLE, tk.FIM_BEGIN, tk.FIM_END) == (100002, 100003, 100004)
    assert (tok.fim_hole_id, tok.fim_begin_id, tok.fim_end_id) == (tk.FIM_HOLE, tk.FIM_BEGIN, tk.FIM_END)
    assert tok.vocab_size == 102_400 and max(tk.FIM_HOLE, tk.FIM_BEGIN, tk.FIM_END) < tok.vocab_size
    assert tok.decode([tk.FIM_BEGIN, tk.FIM_HOLE, tk.FIM_END, tok.eos_id]) == (
        tk.FIM_BEGIN_TOKEN + tk.FIM_HOLE_TOKEN + tk.FIM_END_TOKEN + tk.EOS)
    assert len(tok.hash) == 64


def test_round_trip_and_batch_equals_single():
    tok = tk.load()
    for t in TEXTS:
        ids = tok.encode(t)
        assert all(i < 100000 for i in ids)  # special strings in text are text
        assert tok.decode(ids) == t
    assert tok.encode_batch(TEXTS) == [tok.encode(t) for t in TEXTS]


def test_indexed_dataset_round_trip_and_megatron_layout(tmp_path):
    docs = [np.array([1, 2, 3]), [], [100004, 7], list(range(1000))]
    with IndexedDatasetWriter(str(tmp_path / "d")) as w:
        for d in docs:
            w.add_document(d)
    ds = IndexedDataset(str(tmp_path / "d"))
    assert len(ds) == 4 and ds.sizes.tolist() == [3, 0, 2, 1000] and ds.doc_idx.tolist() == [0, 1, 2, 3, 4]
    assert [ds[i].tolist() for i in range(4)] == [list(d) for d in [[1, 2, 3], [], [100004, 7], range(1000)]]
    assert ds[2].dtype == np.uint32
    # read the index the way Megatron-LM's _IndexReader does
    raw = (tmp_path / "d.idx").read_bytes()
    assert raw[:9] == b"MMIDIDX\x00\x00"
    version, code, n, d = struct.unpack("<QBQQ", raw[9:34])
    assert (version, code, n, d) == (1, 4, 4, 5)
    sizes = np.frombuffer(raw, np.int32, n, 34)
    pointers = np.frombuffer(raw, np.int64, n, 34 + 4 * n)
    assert pointers.tolist() == [0, 12, 12, 20]
    bin_ = np.fromfile(tmp_path / "d.bin", dtype=np.int32)  # Megatron's dtype for code 4
    assert bin_[pointers[2] // 4: pointers[2] // 4 + sizes[2]].tolist() == [100004, 7]
    with pytest.raises(IndexError):
        ds[4]


def test_empty_indexed_dataset_and_interrupted_writer(tmp_path):
    with IndexedDatasetWriter(str(tmp_path / "e")):
        pass
    e = IndexedDataset(str(tmp_path / "e"))
    assert len(e) == 0 and e.doc_idx.tolist() == [0] and e.num_tokens == 0
    with pytest.raises(RuntimeError):
        with IndexedDatasetWriter(str(tmp_path / "x")) as w:
            w.add_document([1])
            raise RuntimeError("killed")
    assert not (tmp_path / "x.idx").exists() and not (tmp_path / "x.bin").exists()
    (tmp_path / "bad.idx").write_bytes(b"nope")
    (tmp_path / "bad.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="not a Megatron MMIDIDX index"):
        IndexedDataset(str(tmp_path / "bad"))


@pytest.mark.slow
def test_round_trip_on_every_document_of_the_demo_corpus(tmp_path):
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    from pipeline.sample import build_sample

    sample = build_sample(tmp_path / "sample", seed=1234)
    tok = tk.load()
    texts = []
    for p in sorted((sample / "repos").rglob("*")):
        if p.is_file() and ".git" not in p.parts:
            try:
                texts.append(p.read_text(encoding="utf-8"))
            except UnicodeDecodeError:
                continue  # binary fixtures: the ingest stages drop them too
    for warc in sorted((sample / "web").glob("*.warc.gz")):
        with open(warc, "rb") as f:
            for rec in ArchiveIterator(f, record_types=WarcRecordType.response):
                texts.append(rec.reader.read().decode("utf-8", "replace"))
    assert len(texts) > 100
    bad = [t[:80] for t in texts if tok.decode(tok.encode(t)) != t]
    assert not bad
