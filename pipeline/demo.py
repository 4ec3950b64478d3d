"""`codecurate demo` (what `make demo` runs): build the sample input, run configs/demo.yaml end to end,
write the report, and print where everything is. `--real` (what `make ablation` runs) does the same with
configs/real.yaml on real files of the installed packages (`pipeline.sample_real`) and a 2-seed ablation."""

from __future__ import annotations

import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_RECIPE = REPO_ROOT / "configs" / "demo.yaml"
REAL_RECIPE = REPO_ROOT / "configs" / "real.yaml"
REAL_RAW_STAGES = ("code_ingest", "web_extract")  # the same inputs, neither filtered nor deduplicated


def run_demo(run_dir: str | None = None, executor: str | None = None, workers: int | None = None, real: bool = False,
             tokens: int | None = None, seeds: int | None = None, variables: dict[str, str] | None = None) -> int:
    from pipeline import storage
    from pipeline.mixing.mix import mix_line
    from pipeline.recipe import load_recipe
    from pipeline.report import write_report
    from pipeline.runner import Runner
    from trainer.ablate import demo_ablation

    t0 = time.time()
    path = REAL_RECIPE if real else DEMO_RECIPE
    run_dir = run_dir or ("runs/real" if real else "runs/demo")
    if real:
        from pipeline.sample_real import build_real_sample

        build_real_sample(Path(run_dir) / "_sample")
    else:
        from pipeline.sample import build_sample

        build_sample(Path(run_dir) / "_sample", seed=int(_recipe_head(path).get("seed", 0)))
    recipe = load_recipe(path, {**(variables or {}), "run_dir": run_dir})
    result = Runner(recipe, executor=executor, workers=workers).run()
    pipeline_s = time.time() - t0
    if real:  # curated vs the same inputs untouched, 2 seeds, every evaluation set whose file is here
        demo_ablation(result.run_dir, tokens=tokens or 16_384, seeds=seeds or 2, raw=REAL_RAW_STAGES,
                      benchmarks={**_recipe_head(path).get("vars", {}), **(variables or {})}.get("benchmarks"), eval_docs=32)
    else:  # tiny model ablation: the curated mix vs the raw ingest output
        demo_ablation(result.run_dir, tokens=tokens or 16_384, seeds=seeds or 1)
    report = write_report(result.run_dir)
    final = recipe.order()[-1].name
    print(f"\n{recipe.name} finished in {time.time() - t0:.0f}s (pipeline {pipeline_s:.0f}s)")
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


def _recipe_head(path: Path) -> dict:
    """A recipe's YAML as written (seed, vars), read before the sample exists (its input paths cannot validate yet)."""
    import yaml

    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _demo_seed() -> int:
    return int(_recipe_head(DEMO_RECIPE).get("seed", 0))
