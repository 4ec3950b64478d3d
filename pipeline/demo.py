"""`codecurate demo` (what `make demo` runs): build the sample input, run configs/demo.yaml end to end,
write the report, and print where everything is."""

from __future__ import annotations

import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_RECIPE = REPO_ROOT / "configs" / "demo.yaml"


def run_demo(run_dir: str = "runs/demo", executor: str | None = None, workers: int | None = None) -> int:
    from pipeline import storage
    from pipeline.mixing.mix import mix_line
    from pipeline.recipe import load_recipe
    from pipeline.report import write_report
    from pipeline.runner import Runner
    from pipeline.sample import build_sample
    from trainer.ablate import demo_ablation

    t0 = time.time()
    build_sample(Path(run_dir) / "_sample", seed=_demo_seed())
    recipe = load_recipe(DEMO_RECIPE, {"run_dir": run_dir})
    result = Runner(recipe, executor=executor, workers=workers).run()
    demo_ablation(result.run_dir)  # tiny model ablation: the curated mix vs the raw ingest output
    report = write_report(result.run_dir)
    final = recipe.order()[-1].name
    print(f"\ndemo finished in {time.time() - t0:.0f}s")
    print(f"outputs:  {Path(result.run_dir, final).resolve()}")
    for spec in recipe.stages:
        summary = storage.read_json(storage.join(result.run_dir, spec.name, "mix.json")) if spec.kind == "mix" else None
        if summary:
            print(f"mix:      {mix_line(summary)}")
            if summary.get("warning"):
                print(f"warning:  {summary['warning']}")
    print(f"ablation: {Path(result.run_dir, 'ablation', 'ablation.md').resolve()}")
    print(f"report:   {Path(report).resolve()}")
    print(f"status:   codecurate status {result.run_dir}")
    return 0


def _demo_seed() -> int:
    """The demo recipe's seed, read before the sample exists (its input paths cannot validate yet)."""
    import yaml

    with open(DEMO_RECIPE, encoding="utf-8") as f:
        return int(yaml.safe_load(f).get("seed", 0))
