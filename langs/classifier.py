"""The last step of the cascade: TF-ICF nearest-centroid classification, as Linguist 8+ does.

Each training sample becomes a vector of log-scaled counts of tokens, token bigrams and layout
(each line's first and last token, indentation and the shape of its start and end; the case
style of words: +3.6 points content-only in k-fold), weighted by inverse class frequency
(features found in few languages weigh more), L2-normalised; a language's centroid is the
normalised mean of its samples and of real files of it. A file's score for a language is its cosine
similarity with the centroid plus `NEAREST_WEIGHT` times that with the language's closest sample
(languages with one or two samples have weak centroids: the nearest sample adds ~3 points content-only
in k-fold). With a file name, only the candidate languages' rows are scored; content only, all (one sparse
product over the centroids and samples together, the most common features as dense rows). The model is a
compact derived file, `data/classifier.npz`, rebuilt by `python -m langs.train` from Linguist's
samples and real package files labelled by Linguist (they join the centroids only, see `train_features`);
each sample keeps only its `SAMPLE_FEATURES` heaviest features and each centroid its `CENTROID_FEATURES`.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from langs.features import Vectorizer, bigram_table, features
from langs.linguist import DATA, disk_cached

MODEL_PATH = os.path.join(DATA, "classifier.npz")
SAMPLE_FEATURES = 256
CENTROID_FEATURES = 5000  # a centroid's heaviest features; the common languages' centroids, built from hundreds of
# real files, have 100K+ (real files content-only: 79.75% with all, 79.58% with 5,000, 79.30% with 2,000; 9.2 -> 6.4 MB)
# Between the few candidates a file name leaves, the first 8 KiB decide as well as 50 (the same answers in
# 10-fold on Linguist's samples, with names and on ambiguous extensions) at half the cost on real files.
CANDIDATE_CHARS = 8 * 1024
# Content only, the first 12 KiB: the same 10-fold agreement on the samples as 50 KiB (77.25%; 8 KiB 77.11, 4 KiB
# 76.69) and 64.31% on the real package files (50 KiB 64.51, 8 KiB 64.00), for about half the text of real files.
CONTENT_CHARS = 12 * 1024
HEAVY_ROWS = 200  # features in this many centroid and sample rows or more are scored as dense rows
# Chosen by 10-fold on Linguist's samples, the real files in every fold's centroids (content only: 0.25 77.22%, 0.5 77.79%,
# 0.75 77.82%, 1 77.85%); the flat top's low end, as real files of other packages prefer (0.5 79.75%, 1 77.23%).
NEAREST_WEIGHT = 0.5


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


def merged(n_classes: int, centroids: Sparse, samples: Sparse, sample_class: np.ndarray) -> Sparse:
    """Centroid rows 0..C-1, then the sample rows ordered by class (stable), by feature as `Sparse`."""
    rank = np.empty(len(sample_class), dtype=np.int64)
    rank[np.argsort(sample_class, kind="stable")] = np.arange(len(sample_class))
    features = len(centroids.indptr) - 1
    feature = np.concatenate([np.repeat(np.arange(features), np.diff(m.indptr)) for m in (centroids, samples)])
    order = np.argsort(feature, kind="stable")
    indptr = np.zeros(features + 1, dtype=np.int64)
    np.cumsum(np.bincount(feature, minlength=features), out=indptr[1:])
    rows = np.concatenate([centroids.rows, n_classes + rank[samples.rows]])[order]
    return Sparse(indptr, rows, np.concatenate([centroids.weight, samples.weight])[order])


@dataclass
class Model:
    classes: list[str]
    vocab: dict[str, int]
    icf: np.ndarray  # per feature
    centroids: Sparse
    samples: Sparse
    sample_class: np.ndarray  # class of each sample row
    pairs: tuple | None = field(default=None, repr=False)  # `bigram_table(vocab)`, where it was kept on disk
    both: Sparse | None = field(default=None, repr=False)  # `merged(...)`, where it was kept on disk

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The text's known features (ids) and their weights: log-scaled counts x ICF, L2-normalised."""
        ids, counts = self._vectorizer(text)
        w = (1.0 + np.log(counts.astype(np.float32))) * self.icf[ids]
        n = float(np.sqrt((w * w).sum()))
        return ids, (w / n if n else w)

    @functools.cached_property
    def _vectorizer(self) -> Vectorizer:
        return Vectorizer(self.vocab, self.pairs)

    def scores(self, text: str) -> np.ndarray:
        """Per class: cosine with the centroid + `NEAREST_WEIGHT` x cosine with the nearest sample."""
        ids, w = self.vector(text)
        n = len(self.classes)
        if len(ids) == 0:
            return np.zeros(n)
        light, slot, heavy, firsts, present = self._scoring
        scores = light.dot(ids, w, n + len(self.sample_class))
        at = slot[ids]
        dense = at >= 0
        if dense.any():
            scores += np.einsum("i,ij->j", w[dense], heavy[at[dense]])  # no BLAS: its threads spin between calls
        out = scores[:n]
        out[present] += NEAREST_WEIGHT * np.maximum.reduceat(scores[n:], firsts)
        return out

    def class_scores(self, text: str, classes: list[int]) -> list[float]:
        """`scores` of a few classes only (the candidates a file name leaves): their own rows are read, not
        every row that shares a feature with the text (0.42 vs 0.94 ms a file on the real files that need it)."""
        ids, w = self.vector(text)
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
    def _scoring(self) -> tuple[Sparse, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The centroids and samples as one matrix (`merged`), one sparse product scoring both: the features
        in `HEAVY_ROWS` rows or more (~470, 14% of the entries, half of those a file meets) as dense rows
        (`slot`: a feature's row there, -1 if sparse), the others sparse; where each class's samples start,
        and the classes that have samples."""
        both = self.both or merged(len(self.classes), self.centroids, self.samples, self.sample_class)
        per = np.diff(both.indptr)
        heavy = np.flatnonzero(per >= HEAVY_ROWS)
        dense = np.zeros((len(heavy), len(self.classes) + len(self.sample_class)), dtype=np.float32)
        for k, f in enumerate(heavy):
            dense[k, both.rows[both.indptr[f] : both.indptr[f + 1]]] = both.weight[both.indptr[f] : both.indptr[f + 1]]
        slot = np.full(len(per), -1, dtype=np.int64)
        slot[heavy] = np.arange(len(heavy))
        per[heavy] = 0
        light = np.repeat(slot < 0, np.diff(both.indptr))
        indptr = np.zeros(len(per) + 1, dtype=np.int64)
        np.cumsum(per, out=indptr[1:])
        present, firsts = np.unique(np.sort(self.sample_class), return_index=True)
        return Sparse(indptr, both.rows[light], both.weight[light]), slot, dense, firsts, present

    def classify(self, text: str, candidates: list[str] | None = None) -> list[tuple[str, float]]:
        """(language, score), best first, over `candidates` (None: every class, top 5)."""
        if candidates is None:
            s = self.scores(text[:CONTENT_CHARS])
            best = np.flatnonzero(s >= np.partition(s, len(s) - 5)[len(s) - 5]) if len(s) > 5 else np.arange(len(s))
            order = best[np.argsort(-s[best], kind="stable")][:5]  # as a stable argsort of all, 5x faster
            return [(self.classes[i], float(s[i])) for i in order]
        index = self._class_index
        known = [index[c] for c in candidates if c in index]
        found = dict(zip(known, self.class_scores(text[:CANDIDATE_CHARS], known))) if known else {}
        ranked = [(c, found[index[c]] if c in index else 0.0) for c in candidates]
        return sorted(ranked, key=lambda x: -x[1])

    @functools.cached_property
    def _class_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}


def train(samples: list[tuple[str, str]], real: list[tuple[str, str]] = (), min_samples_per_feature: int = 2) -> Model:
    """Build a model from (language, text) pairs of Linguist's samples and of labelled real files."""
    return train_features([(lang, features(text)) for lang, text in samples], [(lang, features(text)) for lang, text in real],
                          min_samples_per_feature)


def train_features(docs: list[tuple[str, Counter]], real: list[tuple[str, Counter]] = (), min_samples_per_feature: int = 2) -> Model:
    """`train` on (language, `features(text)`) pairs, for callers that train many times (k-fold).

    Real files join their language's centroid (it then reflects what files of that language look like in
    repositories, and the number of them: +15 points content-only on other packages' files) but are not kept
    as samples: as nearest samples they drew Linguist's samples of rare languages to common ones. Features
    seen in fewer than `min_samples_per_feature` files are dropped, as are those no centroid or sample keeps."""
    everything = [*docs, *real]
    classes = sorted({lang for lang, _ in everything})
    ci = {c: i for i, c in enumerate(classes)}
    sample_df: Counter = Counter()
    class_sets: dict[str, set[int]] = {}
    for lang, cnt in everything:
        sample_df.update(cnt.keys())
        for t in cnt:
            class_sets.setdefault(t, set()).add(ci[lang])
    seen = sorted(t for t, n in sample_df.items() if n >= min_samples_per_feature)
    index = {t: i for i, t in enumerate(seen)}
    C = len(classes)
    icf = np.array([math.log((C + 1) / (len(class_sets[t]) + 1)) + 1.0 for t in seen], dtype=np.float32)
    sums: list[dict[int, float]] = [dict() for _ in classes]
    sample_rows: list[dict[int, float]] = []
    sample_class: list[int] = []
    for k, (lang, cnt) in enumerate(everything):
        ids = [index[t] for t in cnt if t in index]
        if not ids:
            continue
        w = np.array([(1.0 + math.log(cnt[seen[i]])) * icf[i] for i in ids])
        w /= np.sqrt((w * w).sum())
        acc = sums[ci[lang]]
        for i, x in zip(ids, w):
            acc[i] = acc.get(i, 0.0) + float(x)
        if k < len(docs):
            keep = np.argsort(-w, kind="stable")[:SAMPLE_FEATURES]
            sample_rows.append({ids[j]: float(w[j]) for j in keep})
            sample_class.append(ci[lang])
    cents = []
    for acc in sums:
        norm = math.sqrt(sum(x * x for x in acc.values())) or 1.0
        heaviest = sorted(acc.items(), key=lambda kv: (-kv[1], kv[0]))[:CENTROID_FEATURES]
        cents.append({i: x / norm for i, x in heaviest})
    used = _kept_features(seen, index, [*cents, *sample_rows])
    new = {old: j for j, old in enumerate(used)}
    cents, sample_rows = ([{new[i]: x for i, x in row.items()} for row in rows] for rows in (cents, sample_rows))
    return Model(
        classes,
        {seen[i]: j for j, i in enumerate(used)},
        icf[used],
        Sparse.from_rows(len(used), cents),
        Sparse.from_rows(len(used), sample_rows),
        np.asarray(sample_class, dtype=np.int64),
    )


def _kept_features(seen: list[str], index: dict[str, int], rows: list[dict[int, float]]) -> list[int]:
    """The features some row keeps, sorted. One no row keeps scores nothing: dropping it changes a text's norm, never
    the ranking of its classes. The two tokens of a kept bigram stay (`Vectorizer` finds a bigram by their ids)."""
    used = {i for row in rows for i in row}
    for i in list(used):
        t, j = seen[i], seen[i].find(" ")
        while j > 0:
            a, b = index.get(t[:j]), index.get(t[j + 1 :])
            if a is not None and b is not None:
                used.update((a, b))
            j = t.find(" ", j + 1)
    return sorted(used)


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
    vocab = dict(zip(z["vocab"].tobytes().decode().split("\n"), itertools.count()))
    keys, ids = bigram_table(vocab)
    arrays = {k: z[k] for k in z.files if k != "vocab"}
    parts = [Sparse(*(arrays[f"{name}_{a}"] for a in ("indptr", "rows", "weight"))) for name in ("centroids", "samples")]
    both = merged(len(bytes(arrays["classes"]).split(b"\n")), *parts, arrays["sample_class"])
    arrays.update(both_indptr=both.indptr.astype(np.int32), both_rows=both.rows.astype(np.uint16), both_weight=both.weight)
    return {"vocab": vocab, "pairs": (np.asarray(keys, np.int64).tobytes(), np.asarray(ids, np.int64).tobytes()),
            "arrays": {k: (a.dtype.str, a.tobytes()) for k, a in arrays.items()}}


def load(path: str = MODEL_PATH) -> Model:
    with open(path, "rb") as f:
        raw = f.read()
    parts = disk_cached("classifier-v2", raw, lambda: _decode(raw))
    arrays = {k: np.frombuffer(b, dtype=dt) for k, (dt, b) in parts["arrays"].items()}

    def sparse(name: str) -> Sparse:  # as stored (int32, uint16, float16): converting would cost 0.1 s a start
        return Sparse(arrays[name + "_indptr"], arrays[name + "_rows"], arrays[name + "_weight"])

    return Model(
        classes=arrays["classes"].tobytes().decode().split("\n"),
        vocab=parts["vocab"],
        icf=arrays["icf"].astype(np.float32),
        centroids=sparse("centroids"),
        samples=sparse("samples"),
        sample_class=arrays["sample_class"].astype(np.int64),
        pairs=tuple(np.frombuffer(b, dtype=np.int64) for b in parts["pairs"]),
        both=sparse("both"),
    )


@functools.cache
def model() -> Model:
    """The committed model, loaded once per process."""
    return load()
