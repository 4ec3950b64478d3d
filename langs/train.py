"""Retrain the classifier: `python -m langs.train [SAMPLES_DIR] [--real LABELS.jsonl]`.

SAMPLES_DIR (default `../shared/data/langs/linguist-samples` beside the repository) holds one
folder per Linguist language, with files named by extension and a `filenames/` folder for
files known by their whole name. Linguist's samples are a few files of each of ~760 languages;
real repositories are mostly a few dozen, so the classifier also learns from real package files
labelled by Linguist (`--real`, default `/work/cache/langs-train/labels.jsonl`, as built by
`benchmarks/langs_real.py --set train fetch label`: other packages than the scored ones).
Only the derived model is committed, never the samples or the package files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from langs import classifier
from langs.features import CONSIDER_BYTES
from langs.linguist import load_yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SAMPLES = os.path.join(REPO, "..", "shared", "data", "langs", "linguist-samples")
DEFAULT_REAL = "/work/cache/langs-train/labels.jsonl"


def read_samples(root: str) -> list[tuple[str, str, str]]:
    """(language, file name, text) for every sample, sorted, so training is deterministic."""
    fs_names = {v.get("fs_name", k): k for k, v in load_yaml("languages.yml").items()}  # "Fstar" -> "F*"
    out = []
    for folder in sorted(os.listdir(root)):
        lang = fs_names.get(folder, folder)
        base = os.path.join(root, folder)
        if not os.path.isdir(base):
            continue
        for sub in ("", "filenames"):
            d = os.path.join(base, sub)
            if not os.path.isdir(d):
                continue
            for fn in sorted(os.listdir(d)):
                full = os.path.join(d, fn)
                if os.path.isfile(full):
                    with open(full, "rb") as f:
                        out.append((lang, fn, f.read()[:CONSIDER_BYTES].decode("utf-8", "replace")))
    return out


def read_real(labels: str) -> list[tuple[str, str, str]]:
    """(language, path, text) of every labelled real file (rows of `root`, `path`, `language`), in file order."""
    out = []
    with open(labels) as f:
        for line in f:
            row = json.loads(line)
            if row.get("language"):
                path = os.path.join(row["root"], row["path"])
                with open(path, "rb") as g:
                    out.append((row["language"], path, g.read(CONSIDER_BYTES).decode("utf-8", "replace")))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m langs.train", description=__doc__.splitlines()[0])
    p.add_argument("samples", nargs="?", default=DEFAULT_SAMPLES)
    p.add_argument("--real", default=DEFAULT_REAL, help="labelled real files (JSON lines); 'none' for the samples alone")
    p.add_argument("--output", default=classifier.MODEL_PATH)
    args = p.parse_args(argv)
    if not os.path.isdir(args.samples):
        print(f"langs.train: no samples directory at {args.samples}", file=sys.stderr)
        return 2
    if args.real != "none" and not os.path.exists(args.real):
        print(f"langs.train: no labelled real files at {args.real} (--real): build them with"
              " `benchmarks/langs_real.py --set train fetch label`, or pass --real none", file=sys.stderr)
        return 2
    samples = read_samples(args.samples)
    real = read_real(args.real) if args.real != "none" else []
    model = classifier.train([(lang, text) for lang, _, text in samples], [(lang, text) for lang, _, text in real])
    classifier.save(model, args.output)
    size = os.path.getsize(args.output)
    print(f"{len(samples)} samples + {len(real)} real files, {len(model.classes)} languages, {len(model.vocab)} features"
          f" -> {args.output} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
