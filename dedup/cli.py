"""`codecurate dedup exact|near INPUT --output DIR`: the dedup stages on parquet or jsonl files.

Parquet input is read in place, cut by row groups into one piece per task (default: as many
tasks as CPU cores, so one large file keeps every core busy); JSON-lines input is first read
into `DIR/input/`. The kept documents go to `DIR/dedup/part-*.parquet`, with
`DIR/dedup/clusters.parquet` and `DIR/dedup/dedup_stats.json` beside them; the intermediate
files are removed once the stage has completed. Running the same command again resumes.
"""

from __future__ import annotations

import os
import sys


def _run(args, kind: str, opts: dict) -> int:
    from pipeline import registry, storage
    from pipeline.builtin import TABLE_SUFFIXES, Files
    from pipeline.flags import FlagError, from_flags
    from pipeline.recipe import Recipe
    from pipeline.runner import RunError, Runner

    workers = args.workers or os.cpu_count() or 1
    try:
        files = [f if "://" in f else os.path.abspath(f) for f in storage.input_files([args.input], TABLE_SUFFIXES)]
        in_place = all(f.endswith(".parquet") for f in files)
        if in_place:
            opts["source"] = {"files": files, "text_field": args.text_field, "id_field": args.id_field}
        else:
            opts["input"] = "input"
        # the stage kind's own keys: flags generated from its spec, validated by it (`pipeline.flags`)
        spec = from_flags(registry.kind_class(kind), args, _NOT_FLAGS, name="dedup", kind=kind, tasks=args.tasks or max(len(files), workers), **opts)
    except (storage.StorageError, FlagError) as e:
        print(f"codecurate dedup: {e}", file=sys.stderr)
        return 2
    stages = [spec]
    if not in_place:
        stages.insert(0, Files(name="input", kind="files", path=args.input, text_field=args.text_field, id_field=args.id_field))
    recipe = Recipe(
        name=f"dedup-{args.mode}", run_dir=args.output, seed=0, executor=args.executor or "local", workers=workers, stages=stages,
    )
    try:
        Runner(recipe, address=args.address, progress=not args.quiet, owns_run_dir=True).run()
    except RunError as e:
        print(f"codecurate: {e}", file=sys.stderr)
        return 1
    out = storage.join(args.output, "dedup")
    fs, scratch = storage.fs_and_path(storage.join(out, "_work"))
    if fs.exists(scratch):
        fs.rm(scratch, recursive=True)
    stats = storage.read_json(storage.join(out, "dedup_stats.json"), {})
    print(
        f"{stats.get('docs', 0)} documents, {stats.get('clusters', 0)} duplicate clusters, "
        f"{stats.get('duplicates_removed', 0)} removed ({100 * stats.get('duplicate_rate', 0):.2f}%); "
        f"kept documents in {out}, clusters in {storage.join(out, 'clusters.parquet')}"
    )
    return 0


def cmd_exact(args) -> int:
    return _run(args, "dedup_exact", {"normalise": args.normalise or []})


def cmd_near(args) -> int:
    opts = {}
    if (args.bands is None) != (args.rows is None):
        opts = {"bands": args.bands, "rows": args.rows}  # one without the other: the spec says what is wrong
    elif args.num_perm is not None and args.bands is None:
        opts = {"bands": None, "rows": None}  # derive them from the threshold
    return _run(args, "dedup_near", opts)


def _common(p) -> None:
    from pipeline.commands import add_run_options

    p.add_argument("input", help="a parquet or jsonl file, a directory or glob of them, or an fsspec URL")
    p.add_argument("--output", required=True, help="output directory (kept documents, clusters.parquet)")
    p.add_argument("--text-field", default="text", help="column holding the text (default: text)")
    p.add_argument("--id-field", default="id", help="column holding the document id (default: id; row number if absent)")
    p.add_argument("--tasks", type=int, help="tasks per phase (default: one per input file, at least one per CPU core)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_run_options(p)


_NOT_FLAGS = ("name", "kind", "input", "tasks")  # the recipe's wiring; --tasks has its own default here


def register(sub) -> None:
    from dedup.stages import DedupExact, DedupNear
    from pipeline.flags import add_flags

    p = sub.add_parser("dedup", help="remove exact or near-duplicate documents")
    modes = p.add_subparsers(dest="mode", required=True, metavar="MODE")

    e = modes.add_parser("exact", help="exact duplicates by xxh3-128 of the text, or by URL")
    _common(e)
    add_flags(e, DedupExact, exclude=_NOT_FLAGS)
    e.add_argument("--normalise", action="append", choices=["whitespace", "case"], help="normalise before hashing (repeatable)")
    e.set_defaults(func=cmd_exact)

    n = modes.add_parser("near", help="near duplicates by MinHash LSH")
    _common(n)
    add_flags(n, DedupNear, exclude=_NOT_FLAGS)  # --bands/--rows: both, or neither (then 14x8, or from the threshold)
    n.set_defaults(func=cmd_near)
