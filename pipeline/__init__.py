"""codecurate's pipeline: a small core that runs recipes, and the features that plug into it.

The core (imports no feature package; `tests/test_layering.py` checks it):
- `recipe`: the recipe model; `fields`: field types stage kinds share; `stage`: `StageSpec` (a kind's keys, the
  only place they are declared) and `Phase`; `registry`: kind name -> `module:Class`, imported lazily;
  `builtin`: the `basic_filter`, `concat` and `files` kinds;
- `runner`: stages in dependency order, config hashes, resume; `executors`: Ray and local executors
  (retries, timeouts, datatrove's task logs); `status`, `report`: watching a run;
- `steps`: `Step`, `Filter`, `Accounted` (every input counted); `accounting`: the books of a stage;
- `storage`: the one storage layer (fsspec: paths, listings, globs, atomic writes); `remote`:
  retried, resumable reads; `io`: shard reader and writer; `documents`: the shard row schema;
  `inputs`: a command's inputs (a file, a directory of shards, a glob, a URL); `shuffle`: keyed
  shuffles between phases;
- `cli`: the `codecurate` command, with `commands` (run, status, report, demo) and each package's
  `register`; `flags`: command-line flags generated from a stage's spec.

Features (each a package with its stage kinds and commands):
- `github/`: GitHub discovery, clones, repository files, DeepSeek-Coder's filters, repo documents;
- `web/`: CommonCrawl WARC/WET ingest, HTML extraction, the URL module (`web.urls`);
- `decontaminate/`: benchmark decontamination;
- `mixing/`: mix by category and tokens, the FIM stage, tokenized shards and Megatron files.
Elsewhere: `langs` (languages), `classifiers` (recall loop), `dedup`, `tokenizer` (`tokenizer.fim`, the FIM format;
`tokenizer.stage`, the `train_tokenizer` kind), `trainer`. The demo (`demo`, `sample`, `sample_real`) uses them all.
"""
