"""Core subcommands: run, status, report, demo."""

from __future__ import annotations


def _vars(pairs: list[str], run_dir: str | None = None) -> dict[str, str]:
    """`--var KEY=VALUE` pairs, and `--run-dir`, which moves `${run_dir}` everywhere in the recipe too."""
    out = {"run_dir": run_dir} if run_dir else {}
    for p in pairs or []:
        k, sep, v = p.partition("=")
        if not sep:
            raise SystemExit(f"codecurate: --var expects KEY=VALUE, got {p!r}")
        out[k] = v
    return out


def cmd_run(args) -> int:
    from pipeline.recipe import load_recipe
    from pipeline.runner import RunError, Runner

    recipe = load_recipe(args.recipe, _vars(args.var, args.run_dir))
    runner = Runner(recipe, executor=args.executor, address=args.address, workers=args.workers, progress=not args.quiet)
    try:
        if args.fresh:
            runner.fresh(args.fresh.split(","))
    except KeyError as e:
        raise RunError(f"--fresh: unknown stage {e}") from None
    result = runner.run(args.stages.split(",") if args.stages else None)
    print(f"run complete: {result.run_dir} (ran: {', '.join(result.ran) or 'none'}; already done: {', '.join(result.skipped) or 'none'})")
    for w in result.warnings:
        print(f"warning: {w}")
    return 0


def cmd_status(args) -> int:
    from pipeline.status import print_status

    return print_status(args.run_dir)


def cmd_report(args) -> int:
    from pipeline.report import write_report

    path = write_report(args.run_dir, args.output)
    print(f"report: {path}")
    return 0


def cmd_demo(args) -> int:
    from pipeline.demo import run_demo

    return run_demo(run_dir=args.run_dir, executor=args.executor, workers=args.workers, real=args.real,
                    tokens=args.tokens, seeds=args.seeds, variables=_vars(args.var))


def add_run_options(p) -> None:
    p.add_argument("--executor", choices=["ray", "local"], help="ray (default in recipes) or local")
    p.add_argument("--address", help="HOST:PORT of an existing Ray cluster")
    p.add_argument("--workers", type=int, help="tasks run at once (outputs do not depend on it)")


def register(sub) -> None:
    p = sub.add_parser("run", help="run a recipe")
    p.add_argument("recipe")
    add_run_options(p)
    p.add_argument("--stages", help="comma-separated stage names to run (their inputs must be complete)")
    p.add_argument("--run-dir", help="override the recipe's run_dir")
    p.add_argument("--var", action="append", help="KEY=VALUE for ${KEY} in the recipe (repeatable)")
    p.add_argument("--fresh", help="comma-separated stages to delete and run again")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="per-stage progress of a run directory")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("report", help="write report.html for a run directory")
    p.add_argument("run_dir")
    p.add_argument("--output", help="where to write (default RUN_DIR/report.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="build sample data and run configs/demo.yaml end to end")
    p.add_argument("--run-dir", help="default runs/demo (--real: runs/real)")
    p.add_argument("--real", action="store_true",
                   help="configs/real.yaml on the installed packages' sources and docs, then a 2-seed ablation (make ablation)")
    p.add_argument("--tokens", type=int, help="training tokens per model (default 16,384)")
    p.add_argument("--seeds", type=int, help="seeds per corpus (default 1; --real: 2)")
    p.add_argument("--var", action="append", help="KEY=VALUE for ${KEY} in the recipe, e.g. benchmarks=DIR (repeatable)")
    add_run_options(p)
    p.set_defaults(func=cmd_demo)
