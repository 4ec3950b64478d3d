"""Stage kinds by name. Each entry is `module:Class`, imported only when a recipe uses it.

To add a kind: write a `StageSpec` subclass in your package and add one line here.
"""

from __future__ import annotations

import importlib

from pipeline.stage import StageSpec

KINDS: dict[str, str] = {
    # core
    "basic_filter": "pipeline.builtin:BasicFilter",
    "concat": "pipeline.builtin:Concat",
    "files": "pipeline.builtin:Files",
    # GitHub crawl (pipeline/github)
    "github_files": "pipeline.github.stages:GithubFiles",
    "github_filter": "pipeline.github.stages:GithubFilter",
    "github_repo_docs": "pipeline.github.stages:GithubRepoDocs",
    # CommonCrawl (pipeline/web)
    "web_ingest": "pipeline.web.stages:WebIngest",
    "web_extract": "pipeline.web.stages:WebExtract",
    # languages (langs/)
    "tag_languages": "langs.step:TagLanguages",
    # recall loop (classifiers/)
    "recall": "classifiers.stage:Recall",
    # dedup (dedup/)
    "dedup_exact": "dedup.stages:DedupExact",
    "dedup_near": "dedup.stages:DedupNear",
    "dedup_url": "dedup.stages:DedupUrl",
    # decontamination (pipeline/decontaminate)
    "decontaminate": "pipeline.decontaminate.stage:DecontaminateStage",
    # mix, FIM, shards (pipeline/mixing)
    "mix": "pipeline.mixing.mix:Mix",
    "fim": "pipeline.mixing.fim:Fim",
    "tokenize_shards": "pipeline.mixing.shards:TokenizeShards",
    # a BPE trained on the run's documents (tokenizer/)
    "train_tokenizer": "tokenizer.stage:TrainTokenizer",
}


def kind_class(kind: str) -> type[StageSpec]:
    target = KINDS[kind]
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)
