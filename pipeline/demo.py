"""`codecurate demo` (what `make demo` runs): build the sample input, run configs/demo.yaml end to end,
write the report, and print where everything is."""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_RECIPE = REPO_ROOT / "configs" / "demo.yaml"


def run_demo(run_dir: str = "runs/demo", executor: str | None = None, workers: int | None = None) -> int:
    from pipeline.recipe import RecipeError, load_recipe
    from pipeline.report import write_report
    from pipeline.runner import Runner, RunError
    from pipeline.sample import build_sample

    t0 = time.time()
    try:
        build_sample(Path(run_dir) / "_sample", seed=_demo_seed())
        recipe = load_recipe(DEMO_RECIPE, {"run_dir": run_dir})
        result = Runner(recipe, executor=executor, workers=workers).run()
    except RecipeError as e:
        for line in e.problems:
            print(line, file=sys.stderr)
        return 2
    except RunError as e:
        print(f"codecurate: {e}", file=sys.stderr)
        return 1
    report = write_report(result.run_dir)
    final = recipe.order()[-1].name
    print(f"\ndemo finished in {time.time() - t0:.0f}s")
    print(f"outputs: {Path(result.run_dir, final).resolve()}")
    print(f"report:  {Path(report).resolve()}")
    print(f"status:  codecurate status {result.run_dir}")
    return 0


def _demo_seed() -> int:
    """The demo recipe's seed, read before the sample exists (its input paths cannot validate yet)."""
    import yaml

    with open(DEMO_RECIPE, encoding="utf-8") as f:
        return int(yaml.safe_load(f).get("seed", 0))
