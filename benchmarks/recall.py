"""Recall-loop scoring throughput and BPE-vs-whitespace quality, in one process.

    .venv/bin/python -m benchmarks.recall [--docs 4000] [--quality-docs 4000]

Throughput (docs per CPU-second on one core, one process, the same ~2.7 KB pages, the same model file):
- raw `model.predict` on text already tokenised with the DeepSeek-V2 BPE (the limit);
- ours: the `recall` stage's `ScorePages` step (BPE tokenisation + predict + metadata), measured
  with a cold piece cache (first pass) and warm (second pass over other pages of the same corpus);
- datatrove's `FastTextClassifierFilter` (annotating, no filtering), which feeds the raw text
  (newlines replaced, no tokenisation);
- the HF tokenizer's own `encode` + predict (what ours replaces).
Target: ours >= 0.5x raw predict, counting tokenisation.

Quality: a generated labelled set of English and Chinese pages (math/code-talk vs prose; the
Chinese pages have no spaces, as Chinese text does), trained with DeepSeekMath's
hyper-parameters on BPE input and on whitespace input; held-out precision/recall/F1/AUC, overall
and on the Chinese pages alone.
"""

from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

from datatrove.data import Document  # noqa: E402

EN_TOPIC = "function integral derivative matrix theorem proof equation compile variable return loop array prime lemma vector".split()
EN_PROSE = ("the a of and to in is was for on that with as by at from city council weather park market travel music family "
            "weekend holiday museum river village festival dinner friends school library history garden street train").split()
ZH_TOPIC = "函数 导数 积分 方程 定理 证明 矩阵 概率 几何 代数 求解 极限 集合 向量 素数 变量 编译 数组 循环 算法".split()
ZH_PROSE = "天气 公园 城市 旅游 历史 文化 音乐 朋友 餐厅 火车 周末 家庭 电影 节日 学校 图书馆 河流 村庄 花园 街道".split()
ZH_FILL = "我们 今天 非常 一起 这个 可以 因为 所以 已经 还是 他们 什么 时候 地方".split()


def zipf_words(rng: random.Random, n_vocab: int = 30000) -> list[str]:
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    return ["".join(rng.choice(letters[: 8 + i % 18]) for _ in range(2 + i % 9)) for i in range(n_vocab)]


def web_page(rng: random.Random, vocab: list[str], weights: list[float], chars: int = 2700) -> str:
    """English-like text with Zipf-distributed words, some code lines and a little Chinese."""
    out, n = [], 0
    while n < chars:
        r = rng.random()
        if r < 0.1:
            line = f"    result = {rng.choice(vocab)}({rng.randrange(100)}, key='{rng.choice(vocab)}')  # {rng.choice(vocab)}"
        elif r < 0.15:
            line = "".join(rng.choice(ZH_PROSE + ZH_FILL) for _ in range(12)) + "。"
        else:
            line = " ".join(rng.choices(vocab, weights, k=14)).capitalize() + "."
        out.append(line)
        n += len(line) + 1
    return "\n".join(out)


def peak() -> str:
    _, py = tracemalloc.get_traced_memory()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return f"py-peak {py / 2**20:.1f} MiB, process max RSS {rss:.0f} MiB"


def cpu_rate(fn, n: int) -> float:
    """docs per CPU-second of this process (one core; fairer than wall time on a shared machine)."""
    t0 = time.process_time()
    fn()
    return n / (time.process_time() - t0)


def compare(methods: list[tuple[str, object, int]], repeats: int) -> None:
    """Each method `repeats` times, interleaved; the best rate of each and its ratio to the first.
    Python peak memory comes from one more pass each under tracemalloc (which slows Python
    allocations a lot, so it is kept out of the timed passes)."""
    best = {label: 0.0 for label, _, _ in methods}
    for _ in range(repeats):
        for label, fn, n in methods:
            best[label] = max(best[label], cpu_rate(fn, n))
    peaks = {}
    tracemalloc.start()
    for label, fn, _ in methods:
        tracemalloc.reset_peak()
        fn()
        peaks[label] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    base = best[methods[0][0]]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for label, _, _ in methods:
        print(f"{label:<50} {best[label]:8.0f} docs/s/core  {best[label] / base:5.2f}x raw   python peak {peaks[label] / 2**20:6.1f} MiB")
    print(f"process max RSS {rss:.0f} MiB (fastText's model matrices are C++ memory, outside the Python peak)")


def throughput(args) -> None:
    from datatrove.pipeline.filters import FastTextClassifierFilter

    from classifiers.model import train
    from classifiers.settings import DEEPSEEKMATH, Hyper
    from classifiers.steps import ScorePages, _load
    from classifiers.tokens import get_tokenizer

    rng = random.Random(0)
    vocab = zipf_words(rng)
    weights = [1 / (i + 1) for i in range(len(vocab))]
    docs = [web_page(rng, vocab, weights) for _ in range(2 * args.docs)]
    print(f"corpus: {len(docs)} generated pages, mean {sum(map(len, docs)) / len(docs):.0f} chars")
    tmp = tempfile.mkdtemp(prefix="recall-bench-")
    labelled = [{"id": str(i), "text": d} for i, d in enumerate(docs[:1000])]
    hyper = Hyper(**{**DEEPSEEKMATH, "bucket": args.bucket})  # DeepSeekMath's dim/lr/ngrams/minCount/epoch
    t0 = time.perf_counter()
    train(labelled[::2], labelled[1::2], tmp, tokenizer="deepseek", hyper=hyper)
    print(f"model: dim {hyper.dim}, wordNgrams {hyper.word_ngrams}, bucket {hyper.bucket}; trained in {time.perf_counter() - t0:.1f}s")
    model = _load(tmp).model  # the very model object ScorePages uses (loaded once per process)
    cold, warm = docs[: args.docs], docs[args.docs :]
    bpe = get_tokenizer("deepseek")
    bpe.cache.clear()
    # once, first: ours with an empty piece cache, on pages the other runs never see
    cold_rate = cpu_rate(lambda: sum(1 for _ in ScorePages({"code": tmp}).run((Document(text=t, id=str(i)) for i, t in enumerate(cold)), 0, 1)), len(cold))
    pre = [bpe(t) for t in warm]

    def raw():
        for t in pre:
            model.predict(t, k=1)

    def ours(texts):
        step = ScorePages({"code": tmp})
        return lambda: sum(1 for _ in step.run((Document(text=t, id=str(i)) for i, t in enumerate(texts)), 0, 1))

    def hf():
        tok = bpe.tok
        for t in warm:
            model.predict(" ".join(tok.encode(t, add_special_tokens=False).tokens), k=1)

    dt = FastTextClassifierFilter(os.path.join(tmp, "model.bin"), keep_labels=("yes", 0.5), newline_replacement=" ")

    def dt_filter():
        for i, t in enumerate(warm):
            dt.filter(Document(text=t, id=str(i)))

    compare(
        [
            ("raw model.predict on pre-tokenised text", raw, len(pre)),
            ("ours ScorePages (BPE, warm piece cache)", ours(warm), len(warm)),
            ("datatrove FastTextClassifierFilter (raw text)", dt_filter, len(warm)),
            ("HF Tokenizer.encode + predict", hf, len(warm)),
            ("  (ours' BPE alone, no predict)", lambda: [bpe(t) for t in warm], len(warm)),
            ("  (ours' BPE + predict, no step)", lambda: [model.predict(bpe(t), k=1) for t in warm], len(warm)),
        ],
        args.repeats,
    )
    print(f"ours ScorePages with a cold piece cache (first pass, other pages): {cold_rate:.0f} docs/s/core")
    print(f"BPE piece cache after both passes: {len(bpe.cache)} pieces; ScorePages and raw share one loaded model")
    from datatrove.io import cached_asset_path_or_download

    copy = cached_asset_path_or_download(os.path.join(tmp, "model.bin"), namespace="filters", subfolder="fasttext")
    for leftover in (copy, f"{copy}.completed", f"{copy}.lock"):  # datatrove copied the model into its asset cache
        if leftover and os.path.exists(leftover):
            os.remove(leftover)
    shutil.rmtree(tmp)


def zh_sentence(rng: random.Random, words: list[str]) -> str:
    return "".join(rng.choice(words) if rng.random() < 0.35 else rng.choice(ZH_FILL) for _ in range(10)) + rng.choice("，。")


def quality_set(n: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    pages = []
    for i in range(n):
        y = i % 2
        zh = (i // 2) % 2 == 1
        if zh:
            text = "".join(zh_sentence(rng, ZH_TOPIC if y else ZH_PROSE) for _ in range(6))
        else:
            words = [rng.choice(EN_TOPIC) if (y and rng.random() < 0.3) else rng.choice(EN_PROSE) for _ in range(60)]
            text = " ".join(words)
        pages.append({"id": f"q{i}", "text": text, "y": y, "zh": zh})
    return pages


def quality(args) -> None:
    from classifiers.metrics import evaluate
    from classifiers.model import Classifier, train
    from classifiers.settings import DEEPSEEKMATH, Hyper

    pages = quality_set(args.quality_docs)
    test = [p for i, p in enumerate(pages) if i % 5 == 0]
    trn = [p for i, p in enumerate(pages) if i % 5 != 0]
    print(f"\nquality: {len(trn)} training / {len(test)} test pages, half Chinese, half positive; DeepSeekMath hyper-parameters")
    for tok in ("deepseek", "whitespace"):
        with tempfile.TemporaryDirectory() as d:
            train([p for p in trn if p["y"]], [p for p in trn if not p["y"]], d, tokenizer=tok,
                  hyper=Hyper(**{**DEEPSEEKMATH, "bucket": args.bucket}), heldout=0.0)
            clf = Classifier.load(d)
            for name, subset in (("all", test), ("chinese", [p for p in test if p["zh"]]), ("english", [p for p in test if not p["zh"]])):
                m = evaluate([p["y"] for p in subset], [clf.score(p["text"]) for p in subset], 0.5)
                print(f"  {tok:<10} {name:<8} precision {m['precision']:.3f} recall {m['recall']:.3f} f1 {m['f1']:.3f} auc {m['auc']:.3f}  (n={m['n']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=4000, help="pages per throughput pass")
    ap.add_argument("--quality-docs", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved timing rounds; the best of each is shown")
    ap.add_argument("--bucket", type=int, default=200_000, help="fastText hash buckets (2M is fastText's default; 200K keeps the model at ~200 MB)")
    args = ap.parse_args()
    throughput(args)
    if args.quality_docs:
        quality(args)


if __name__ == "__main__":
    main()
