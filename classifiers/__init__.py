"""fastText page classifiers and the iterative recall loop (DeepSeekMath-style) for code and math pages.

- `settings`: the loop's and fastText's keys, declared once (the stage and `classifiers train` derive from them);
- `tokens`: DeepSeek-V2 BPE (or whitespace) input for fastText;
- `model`: training to versioned artefacts (`model.bin` + `model.json`), loading, scoring;
- `metrics`: precision, recall, F1, AUC and the threshold curve;
- `pages`: seed files, prefix lists, URL or repo prefixes (URLs and domains from `pipeline.web.urls`);
- `steps`, `loop`, `stage`: the `recall` stage kind (train -> recall -> domains -> annotate -> grow);
- `report`, `cli`, `demo`: per-round reports, the command line, the demo's generated seed.
"""
