"""fastText page classifiers and the iterative recall loop (DeepSeekMath-style) for code and math pages.

- `tokens`: DeepSeek-V2 BPE (or whitespace) input for fastText;
- `model`: training to versioned artefacts (`model.bin` + `model.json`), loading, scoring;
- `metrics`: precision, recall, F1, AUC and the threshold curve;
- `pages`: seed files, prefix lists, URL or repo prefixes and registered domains;
- `steps`, `loop`, `stage`: the `recall` stage kind (train -> recall -> domains -> annotate -> grow);
- `report`, `cli`, `demo`: per-round reports, the command line, the demo's generated seed.
"""
