"""Helpers of the hostile-input tests: the books of a stage, and the CLI run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def books(run_dir, stage: str) -> dict:
    """A stage's `_stats.json`, after checking `in == kept + sum(dropped)`."""
    st = json.loads(Path(run_dir, stage, "_stats.json").read_text())
    assert st["in"]["docs"] == st["kept"]["docs"] + sum(d["docs"] for d in st["dropped"].values()), st
    assert st["balanced"]
    return st


def files(root: Path, contents: dict[str, str]) -> Path:
    """A directory `root` holding the named text files."""
    for name, text in contents.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def dropped(st: dict) -> dict[str, int]:
    return {k: v["docs"] for k, v in st["dropped"].items()}


def cli(*args: str, timeout: float = 120, cwd=None) -> subprocess.CompletedProcess:
    """`codecurate ARGS` in a fresh interpreter (so every line it prints to stderr is seen)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


def one_line(p: subprocess.CompletedProcess, rc: int | tuple[int, ...] = (1, 2)) -> str:
    """The single line a failed command printed on stderr (no traceback, no log noise)."""
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode in ((rc,) if isinstance(rc, int) else rc), (p.returncode, p.stderr)
    assert len(lines) == 1, p.stderr
    return lines[0]


def recipe(path: Path, run_dir: Path, stages: list[dict]) -> Path:
    """A recipe file for `codecurate run` on the local executor."""
    import yaml

    path.write_text(yaml.safe_dump({"name": "hostile", "run_dir": str(run_dir), "executor": "local", "workers": 1,
                                    "stages": stages}))
    return path
