"""The last step of the cascade: TF-ICF nearest-centroid classification, as Linguist 8+ does.

Each training sample becomes a vector of log-scaled counts of tokens, token bigrams and layout
(each line's first and last token, indentation and the shape of its start and end; the case
style of words: +3.6 points content-only in k-fold), weighted by inverse class frequency
(features found in few languages weigh more), L2-normalised; a language's centroid is the
normalised mean of its samples. A file's score for a language is its cosine similarity with the
centroid plus `NEAREST_WEIGHT` times that with the language's closest sample (languages with one or
two samples have weak centroids: the nearest sample at full weight adds ~3 points content-only in
k-fold, at a quarter ~0.4 more, and at a quarter it favours the languages of few samples less on
real files). With a file name, only the candidate languages' rows are scored; content only, all. The model is a
compact derived file, `data/classifier.npz`, rebuilt by `python -m langs.train` from Linguist's
samples; each sample keeps only its `SAMPLE_FEATURES` heaviest features to stay small.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
import os
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from langs.linguist import DATA, disk_cached

CONSIDER_BYTES = 50 * 1024
MODEL_PATH = os.path.join(DATA, "classifier.npz")
SAMPLE_FEATURES = 256
# Between the few candidates a file name leaves, the first 8 KiB decide as well as 50 (the same answers in
# 10-fold on Linguist's samples, with names and on ambiguous extensions) at half the cost on real files.
CANDIDATE_CHARS = 8 * 1024
NEAREST_WEIGHT = 0.25  # chosen by 10-fold on Linguist's samples (1: 76.87%, 0.5: 77.14%, 0.25: 77.25% content only)

# Tokens as Linguist's tokenizer sees them, roughly: shebang interpreter, SGML tags and
# attributes, words (with sigils), and runs of punctuation. A string becomes its quote mark and a
# number one token; long hex runs (hashes, checksums) all become one token.
_TOKEN = re.compile(
    r"""(?P<shebang>\A\#!.*)
    | (?P<string>"(?:[^"\\\n]|\\.){0,200}"|'(?:[^'\\\n]|\\.){0,200}')
    | (?P<hex>\b[0-9A-Fa-f]{16,}\b)
    | (?P<number>\b(?:0[xX][0-9A-Fa-f]+|\d+(?:\.\d+)?)\b)
    | (?P<tag></?[A-Za-z][\w:.-]*)
    | (?P<word>[@$%]?[A-Za-z_][\w]*[:=]?)
    | (?P<punct>[^\w\s"']{1,3})
    """,
    re.X,
)
_INTERP = re.compile(r"#!\s*\S*/(?:env\s+(?:-\S+\s+)*)?([^\s/]+)|#!\s*(\S+)")
# a line's shape: words -> "a", numbers -> "0", blank runs -> " ", punctuation kept ("a = a(0);")
_SHAPE_STEPS = (
    (re.compile(r"[A-Za-z_]\w*"), "a"),
    (re.compile(r"\d+(?:\.\d+)?"), "0"),
    (re.compile(r"[^\S\n]+"), " "),
)
SHAPE_CHARS = 6
_CAMEL = re.compile(r"[a-z][A-Z]")


# the same tokens without names: `findall` hands back strings, which `_classify` reads once per distinct token
_FLAT = re.compile(re.sub(r"\(\?P<\w+>", "(?:", _TOKEN.pattern.split("|", 1)[1]), re.X)
_HEX = re.compile(r"[0-9A-Fa-f]{16,}")
_TOKENS_AND_BREAKS = re.compile(r"[^\S\n]*(\n|" + _FLAT.pattern + ")", re.X)
_INDENT = re.compile(r"^([^\S\n]+)(?=\S)", re.M)  # the leading blanks of each line that is not blank


def _classify(raw: str) -> tuple[str, str | None]:
    """A token as `_TOKEN` matched it -> (its feature, its case style if it is a word). Which
    alternative matched follows from the text: a quote starts a string, 16+ hex digits are the hex
    alternative (tried before number and word), a digit starts a number, a letter or "_" a word."""
    c = raw[0]
    if c == '"' or c == "'":
        return "STR" + c, None
    if len(raw) >= 16 and _HEX.fullmatch(raw):
        return "HEX", None
    if c.isdigit():
        return "NUM", None
    return raw, (_case_style(raw) if c.isalpha() or c == "_" else None)


_LICENCE = re.compile(r"copyright|licen[cs]e|warranty|free software|permission is hereby granted|all rights reserved", re.I)
_MARKER = re.compile(r"[^\w\n]*")  # a line's comment marker ("## ", " * ", "// "), if any
_PROSE = re.compile(r"[\w ,.;:()<>@/'\"+!?&*#=-]*")  # what a line of licence prose holds
LICENCE_LINES = 100


def _prose(line: str) -> int | None:
    """Where the prose of a line starts, after its comment marker, if the rest is prose (4+ words)."""
    start = _MARKER.match(line).end()
    rest = line[start:]
    if 15 <= len(rest) <= 300 and rest.count(" ") >= 3 and _PROSE.fullmatch(rest):
        return start
    return None


def without_licence(text: str) -> str:
    """The text with the prose of its licence header cut out, the lines' comment markers kept. Real files
    open with the same GPL/MIT/Apache paragraphs whatever their language (Linguist's samples rarely do), and
    those words pull a file towards the languages whose samples carry them (an Octave file to C)."""
    if not _LICENCE.search(text, 0, 8192):
        return text
    lines = text.split("\n", LICENCE_LINES)
    end = min(len(lines), LICENCE_LINES)
    start = 0
    for i in range(end + 1):
        if i == end or not lines[i].strip():  # the end of a paragraph
            if i > start and any(_LICENCE.search(line) for line in lines[start:i]):
                for j in range(start, i):
                    cut = _prose(lines[j])
                    if cut is not None:
                        lines[j] = lines[j][:cut]
            start = i + 1
    return "\n".join(lines)


def features(text: str) -> Counter:
    """Token and adjacent-token-pair counts, plus layout: per non-blank line its first and last
    token ("LF:", "LL:"), indentation ("IND\\t", "IND<spaces, up to 8>") and the shape of its first
    and last `SHAPE_CHARS` characters ("LS:", "LE:"); per word its case style ("SHAPE:").
    Tokens (no token spans lines) and line breaks come from one `findall` over the text whose matches
    skip the blanks before them (tokenising twice as fast as the engine failing at each blank, one call
    per line), and each distinct token is classified once: 3x faster than a Python step per match."""
    text = without_licence(text[:CONSIDER_BYTES])
    shebang, start = None, 0
    if text.startswith("#!"):  # a shebang is the whole first line
        shebang, start = _token(_TOKEN.match(text)), (text.find("\n") + 1) or len(text)
    found = _TOKENS_AND_BREAKS.findall(text, start)
    info = {r: _classify(r) for r in set(found)}
    breaks = [i for i, r in enumerate(found) if r == "\n"]
    edges = [-1, *breaks, len(found)]  # each line's tokens lie between two of these
    layout = []
    for a, b in zip(edges, edges[1:]):
        if b - a > 1:
            layout += ("LF:" + info[found[a + 1]][0], "LL:" + info[found[b - 1]][0])
    raws = [r for r in found if r != "\n"] if breaks else found
    toks = [info[r][0] for r in raws]
    layout += [s for s in (info[r][1] for r in raws) if s]
    if shebang is not None:
        toks.insert(0, shebang)
        layout += ["LF:" + shebang, "LL:" + shebang]
    shapes = text
    for rx, sub in _SHAPE_STEPS:
        shapes = rx.sub(sub, shapes)
    stripped = [s for s in map(str.strip, shapes.split("\n")) if s]
    layout += ["LS:" + s[:SHAPE_CHARS] for s in stripped]
    layout += ["LE:" + s[-SHAPE_CHARS:] for s in stripped]
    layout += ["IND\t" if "\t" in i else f"IND{min(len(i), 8)}" for i in _INDENT.findall(text)]
    return Counter(toks + [a + " " + b for a, b in zip(toks, toks[1:])] + layout)


def _case_style(word: str) -> str:
    if word.isupper():
        return "SHAPE:AA"
    if "_" in word:
        return "SHAPE:a_a"
    if _CAMEL.search(word):
        return "SHAPE:aA" if word[0].islower() else "SHAPE:AaA"
    return "SHAPE:Aa" if word[0].isupper() else "SHAPE:a"


def _token(m: re.Match) -> str | None:
    kind = m.lastgroup
    if kind == "string":
        return "STR" + m.group(kind)[0]
    if kind == "number":
        return "NUM"
    if kind == "hex":
        return "HEX"
    if kind == "shebang":
        i = _INTERP.match(m.group(kind))
        return "SHEBANG#!" + re.sub(r"[\d.]+$", "", i.group(1) or i.group(2)) if i else None
    return m.group(kind) if kind else None


class Sparse:
    """Rows (classes or samples) x features, stored by feature (CSR over features) for fast scoring."""

    def __init__(self, indptr: np.ndarray, rows: np.ndarray, weight: np.ndarray):
        self.indptr, self.rows, self.weight = indptr, rows, weight

    @classmethod
    def from_rows(cls, n_features: int, rows: list[dict[int, float]]) -> Sparse:
        by_feature: list[list[tuple[int, float]]] = [[] for _ in range(n_features)]
        for r, vec in enumerate(rows):
            for f, x in vec.items():
                by_feature[f].append((r, x))
        indptr = np.zeros(n_features + 1, dtype=np.int64)
        np.cumsum([len(b) for b in by_feature], out=indptr[1:])
        flat = [e for b in by_feature for e in b]
        return cls(indptr, np.asarray([r for r, _ in flat], dtype=np.int64), np.asarray([x for _, x in flat], dtype=np.float32))

    def dot(self, ids: np.ndarray, w: np.ndarray, n_rows: int) -> np.ndarray:
        starts, ends = self.indptr[ids], self.indptr[ids + 1]
        lens = ends - starts
        total = int(lens.sum())
        if total == 0:
            return np.zeros(n_rows)
        offs = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(total)
        return np.bincount(self.rows[offs], weights=self.weight[offs] * np.repeat(w, lens), minlength=n_rows)


@dataclass
class Model:
    classes: list[str]
    vocab: dict[str, int]
    icf: np.ndarray  # per feature
    centroids: Sparse
    samples: Sparse
    sample_class: np.ndarray  # class of each sample row

    def vector(self, counts: Counter) -> tuple[np.ndarray, np.ndarray]:
        ids = np.fromiter(map(self.vocab.get, counts, itertools.repeat(-1)), dtype=np.int64, count=len(counts))
        known = ids >= 0
        ids = ids[known]
        w = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float32, count=len(counts))[known])) * self.icf[ids]
        n = float(np.sqrt((w * w).sum()))
        return ids, (w / n if n else w)

    def scores(self, text: str) -> np.ndarray:
        """Per class: cosine with the centroid + `NEAREST_WEIGHT` x cosine with the nearest sample."""
        ids, w = self.vector(features(text))
        n = len(self.classes)
        if len(ids) == 0:
            return np.zeros(n)
        out = self.centroids.dot(ids, w, n)
        order, firsts, present = self._by_class
        out[present] += NEAREST_WEIGHT * np.maximum.reduceat(self.samples.dot(ids, w, len(self.sample_class))[order], firsts)
        return out

    def class_scores(self, text: str, classes: list[int]) -> list[float]:
        """`scores` of a few classes only (the candidates a file name leaves): their own rows are read, not
        every row that shares a feature with the text (0.42 vs 0.94 ms a file on the real files that need it)."""
        ids, w = self.vector(features(text))
        dense = self._dense
        dense[ids] = w
        try:
            out = []
            for c in classes:
                cols, weight, s_cols, s_weight, s_starts = self._rows(c)
                near = np.add.reduceat(dense[s_cols] * s_weight, s_starts).max() if len(s_starts) else 0.0
                out.append(float(dense[cols] @ weight + NEAREST_WEIGHT * near))
            return out
        finally:
            dense[ids] = 0.0

    @functools.cached_property
    def _dense(self) -> np.ndarray:
        return np.zeros(len(self.vocab), dtype=np.float32)

    @functools.cached_property
    def _entry_features(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per stored entry: its feature (centroids, samples) and its sample's class: the by-row view of the
        by-feature matrices, built once when a file first needs `class_scores`."""
        feature_of = [np.repeat(np.arange(len(m.indptr) - 1), np.diff(m.indptr)) for m in (self.centroids, self.samples)]
        return feature_of[0], feature_of[1], self.sample_class[self.samples.rows]

    @functools.cached_property
    def _row_cache(self) -> dict[int, tuple[np.ndarray, ...]]:
        return {}

    def _rows(self, c: int) -> tuple[np.ndarray, ...]:
        """Class `c`'s centroid (features, weights) and its samples' entries grouped by sample (features,
        weights, where each sample starts); kept per class."""
        if c in self._row_cache:
            return self._row_cache[c]
        cen_feature, sample_feature, entry_class = self._entry_features
        at = np.flatnonzero(self.centroids.rows == c)
        mine = np.flatnonzero(entry_class == c)
        mine = mine[np.argsort(self.samples.rows[mine], kind="stable")]
        starts = np.flatnonzero(np.diff(self.samples.rows[mine], prepend=-1))
        rows = cen_feature[at], self.centroids.weight[at], sample_feature[mine], self.samples.weight[mine], starts
        self._row_cache[c] = rows
        return rows

    @functools.cached_property
    def _by_class(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample rows grouped by class, each group's first position, and the classes that have rows."""
        order = np.argsort(self.sample_class, kind="stable")
        present, firsts = np.unique(self.sample_class[order], return_index=True)
        return order, firsts, present

    def classify(self, text: str, candidates: list[str] | None = None) -> list[tuple[str, float]]:
        """(language, score), best first, over `candidates` (None: every class, top 5)."""
        if candidates is None:
            s = self.scores(text)
            order = np.argsort(-s, kind="stable")[:5]
            return [(self.classes[i], float(s[i])) for i in order]
        index = self._class_index
        known = [index[c] for c in candidates if c in index]
        found = dict(zip(known, self.class_scores(text[:CANDIDATE_CHARS], known))) if known else {}
        ranked = [(c, found[index[c]] if c in index else 0.0) for c in candidates]
        return sorted(ranked, key=lambda x: -x[1])

    @functools.cached_property
    def _class_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}


def train(samples: list[tuple[str, str]], min_samples_per_feature: int = 2) -> Model:
    """Build a model from (language, text) pairs. Features seen in fewer samples are dropped (keeps it small)."""
    return train_features([(lang, features(text)) for lang, text in samples], min_samples_per_feature)


def train_features(docs: list[tuple[str, Counter]], min_samples_per_feature: int = 2) -> Model:
    """`train` on (language, `features(text)`) pairs, for callers that train many times (k-fold)."""
    classes = sorted({lang for lang, _ in docs})
    ci = {c: i for i, c in enumerate(classes)}
    sample_df: Counter = Counter()
    class_sets: dict[str, set[int]] = {}
    for lang, cnt in docs:
        sample_df.update(cnt.keys())
        for t in cnt:
            class_sets.setdefault(t, set()).add(ci[lang])
    vocab_list = sorted(t for t, n in sample_df.items() if n >= min_samples_per_feature)
    vocab = {t: i for i, t in enumerate(vocab_list)}
    C = len(classes)
    icf = np.array([math.log((C + 1) / (len(class_sets[t]) + 1)) + 1.0 for t in vocab_list], dtype=np.float32)
    sums: list[dict[int, float]] = [dict() for _ in classes]
    sample_rows: list[dict[int, float]] = []
    sample_class: list[int] = []
    for lang, cnt in docs:
        ids = [vocab[t] for t in cnt if t in vocab]
        if not ids:
            continue
        w = np.array([(1.0 + math.log(cnt[vocab_list[i]])) * icf[i] for i in ids])
        w /= np.sqrt((w * w).sum())
        acc = sums[ci[lang]]
        for i, x in zip(ids, w):
            acc[i] = acc.get(i, 0.0) + float(x)
        keep = np.argsort(-w, kind="stable")[:SAMPLE_FEATURES]
        sample_rows.append({ids[k]: float(w[k]) for k in keep})
        sample_class.append(ci[lang])
    cents = []
    for acc in sums:
        norm = math.sqrt(sum(x * x for x in acc.values())) or 1.0
        cents.append({i: x / norm for i, x in acc.items()})
    return Model(
        classes,
        vocab,
        icf,
        Sparse.from_rows(len(vocab_list), cents),
        Sparse.from_rows(len(vocab_list), sample_rows),
        np.asarray(sample_class, dtype=np.int64),
    )


def save(model: Model, path: str = MODEL_PATH) -> None:
    vocab = sorted(model.vocab, key=model.vocab.get)
    parts = {}
    for name, m in (("centroids", model.centroids), ("samples", model.samples)):
        parts[name + "_indptr"] = m.indptr.astype(np.int32)
        parts[name + "_rows"] = m.rows.astype(np.uint16)
        parts[name + "_weight"] = m.weight.astype(np.float16)
    np.savez_compressed(
        path,
        classes=np.frombuffer("\n".join(model.classes).encode(), dtype=np.uint8),
        vocab=np.frombuffer("\n".join(vocab).encode(), dtype=np.uint8),
        icf=model.icf.astype(np.float16),
        sample_class=model.sample_class.astype(np.uint16),
        **parts,
    )


def _decode(raw: bytes) -> dict:
    """The model file's arrays as (dtype, bytes) and its vocabulary as a dict: what `load` needs, in a form
    `marshal` reads back in half the time of decompressing and indexing the file."""
    z = np.load(io.BytesIO(raw))
    vocab = z["vocab"].tobytes().decode().split("\n")
    return {"vocab": dict(zip(vocab, range(len(vocab)))),
            "arrays": {k: (z[k].dtype.str, z[k].tobytes()) for k in z.files if k != "vocab"}}


def load(path: str = MODEL_PATH) -> Model:
    with open(path, "rb") as f:
        raw = f.read()
    parts = disk_cached("classifier", raw, lambda: _decode(raw))
    arrays = {k: np.frombuffer(b, dtype=dt) for k, (dt, b) in parts["arrays"].items()}

    def sparse(name: str) -> Sparse:
        return Sparse(arrays[name + "_indptr"].astype(np.int64), arrays[name + "_rows"].astype(np.int64),
                      arrays[name + "_weight"].astype(np.float32))

    return Model(
        classes=arrays["classes"].tobytes().decode().split("\n"),
        vocab=parts["vocab"],
        icf=arrays["icf"].astype(np.float32),
        centroids=sparse("centroids"),
        samples=sparse("samples"),
        sample_class=arrays["sample_class"].astype(np.int64),
    )


@functools.cache
def model() -> Model:
    """The committed model, loaded once per process."""
    return load()
