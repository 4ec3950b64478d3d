"""Layering: the pipeline core imports no feature package (features reach the core by name, through the
registry and the command list), read from the source with ast, lazy imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pipeline
from pipeline.cli import COMMAND_MODULES
from pipeline.registry import KINDS

ROOT = Path(pipeline.__file__).parent
CORE = ["accounting", "builtin", "cli", "commands", "documents", "executors", "fields", "flags", "inputs", "io", "recipe",
        "registry", "remote", "report", "runner", "shuffle", "stage", "status", "steps", "storage"]
DEMO = ("demo", "sample", "sample_real")  # the demo and its sample data use every feature
FEATURES = ("pipeline.github", "pipeline.web", "pipeline.mixing", "pipeline.decontaminate",
            "classifiers", "dedup", "langs", "tokenizer", "trainer")


def imported_modules(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_core_modules_import_no_feature_package():
    assert sorted(CORE) == sorted(p.stem for p in ROOT.glob("*.py") if p.stem not in ("__init__", *DEMO)), \
        "a new top-level pipeline module: add it to CORE (or to the demo modules) here and in pipeline/__init__.py"
    bad = {m: sorted(i for i in imported_modules(ROOT / f"{m}.py") if i.startswith(FEATURES) and
                     any(i == f or i.startswith(f + ".") for f in FEATURES)) for m in CORE}
    assert {m: i for m, i in bad.items() if i} == {}


def test_features_are_named_not_imported_by_the_core():
    # the registry and the command list name feature modules as strings; each one exists
    for target in [*KINDS.values(), *COMMAND_MODULES]:
        module = target.partition(":")[0]
        path = ROOT.parent / (module.replace(".", "/") + ".py")
        assert path.is_file() or (path.with_suffix("") / "__init__.py").is_file(), target
