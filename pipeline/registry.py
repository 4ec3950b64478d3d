"""Stage kinds by name. Each entry is `module:Class`, imported only when a recipe uses it.

To add a kind: write a `StageSpec` subclass in your package and add one line here.
"""

from __future__ import annotations

import importlib

from pipeline.stage import StageSpec

KINDS: dict[str, str] = {
    "code_files": "pipeline.stages.code_files:CodeFiles",
    "warc_text": "pipeline.stages.warc_text:WarcText",
    "basic_filter": "pipeline.stages.filters:BasicFilter",
    "concat": "pipeline.stages.concat:Concat",
}


def kind_class(kind: str) -> type[StageSpec]:
    target = KINDS[kind]
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)
