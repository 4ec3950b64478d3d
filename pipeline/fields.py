"""Field types that stage kinds share (validated when a recipe loads); light, so commands can build flags from specs."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field


def check_input_path(p: str) -> str:
    if "://" in p:  # remote paths are checked when read; a validator must not hang on a network
        return p
    if any(c in p for c in "*?["):
        if not glob.glob(p, recursive=True):
            raise ValueError(f"no file matches {p!r}")
    elif not Path(p).exists():
        raise ValueError(f"input path does not exist: {p!r}")
    return p


InputPath = Annotated[str, AfterValidator(check_input_path)]
"""A path that must exist (local paths and globs are checked at load; remote ones when read)."""

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


def _check_ratios(r: dict[str, float]) -> dict[str, float]:
    if not r:
        raise ValueError("at least one ratio is required")
    bad = {k: v for k, v in r.items() if not 0.0 <= v <= 1.0}
    if bad:
        raise ValueError(f"ratios must lie in [0, 1], got {bad}")
    total = sum(r.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"ratios must sum to 1, got {total:g} ({r})")
    return r


Ratios = Annotated[dict[str, float], AfterValidator(_check_ratios)]
"""Named ratios in [0, 1] that sum to 1 (e.g. a code/math/natural-language mix)."""
