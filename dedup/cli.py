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
    from pydantic import ValidationError

    from dedup.table_input import TableInput, table_files
    from pipeline import registry, storage
    from pipeline.recipe import Recipe
    from pipeline.runner import Runner, RunError

    workers = args.workers or os.cpu_count() or 1
    try:
        files = [os.path.abspath(f) for f in table_files(args.input)]
        in_place = all(f.endswith(".parquet") for f in files)
        if in_place:
            opts["source"] = {"files": files, "text_field": args.text_field, "id_field": args.id_field}
        else:
            opts["input"] = "input"
        opts.setdefault("tasks", max(len(files), workers))
        spec = registry.kind_class(kind).model_validate({"name": "dedup", "kind": kind, **opts})
    except FileNotFoundError as e:
        print(f"codecurate dedup: {e}", file=sys.stderr)
        return 2
    except ValidationError as e:
        for err in e.errors():
            print(f"codecurate dedup: {'.'.join(map(str, err['loc'])) or 'options'}: {err['msg']}", file=sys.stderr)
        return 2
    stages = [spec]
    if not in_place:
        stages.insert(0, TableInput(name="input", kind="table_input", path=args.input, text_field=args.text_field, id_field=args.id_field))
    recipe = Recipe(
        name=f"dedup-{args.mode}", run_dir=args.output, seed=0, executor=args.executor or "local", workers=workers, stages=stages,
    )
    try:
        Runner(recipe, address=args.address, progress=not args.quiet).run()
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
    opts = {"level": args.level, "normalise": args.normalise or []}
    if args.tasks:
        opts["tasks"] = args.tasks
    return _run(args, "dedup_exact", opts)


def cmd_near(args) -> int:
    opts = {
        "level": args.level, "threshold": args.threshold, "ngram": args.ngram, "num_perm": args.num_perm,
        "verify": not args.no_verify,
    }
    if args.clusters:
        opts["clusters"] = args.clusters
    if args.bands or args.rows:
        opts |= {"bands": args.bands, "rows": args.rows}
    elif args.num_perm != 112:
        opts |= {"bands": None, "rows": None}  # derive from the threshold
    if args.tasks:
        opts["tasks"] = args.tasks
    return _run(args, "dedup_near", opts)


def _common(p) -> None:
    from pipeline.commands import add_run_options

    p.add_argument("input", help="a parquet or jsonl file, or a directory of them")
    p.add_argument("--output", required=True, help="output directory (kept documents, clusters.parquet)")
    p.add_argument("--text-field", default="text", help="column holding the text (default: text)")
    p.add_argument("--id-field", default="id", help="column holding the document id (default: id; row number if absent)")
    p.add_argument("--tasks", type=int, help="tasks per phase (default: one per input file, at least one per CPU core)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_run_options(p)


def register(sub) -> None:
    p = sub.add_parser("dedup", help="remove exact or near-duplicate documents")
    modes = p.add_subparsers(dest="mode", required=True, metavar="MODE")

    e = modes.add_parser("exact", help="exact duplicates by xxh3-128 of the text, or by URL")
    _common(e)
    e.add_argument("--level", choices=["file", "repo", "page", "url"], default="file")
    e.add_argument("--normalise", action="append", choices=["whitespace", "case"], help="normalise before hashing (repeatable)")
    e.set_defaults(func=cmd_exact)

    n = modes.add_parser("near", help="near duplicates by MinHash LSH")
    _common(n)
    n.add_argument("--level", choices=["file", "repo", "page"], default="file", help="file/repo: code tokens; page: words")
    n.add_argument("--threshold", type=float, default=0.7, help="Jaccard similarity of duplicates (default 0.7)")
    n.add_argument("--ngram", type=int, default=5, help="tokens per shingle (default 5)")
    n.add_argument("--num-perm", type=int, default=112, help="permutations (default 112 = 14 bands x 8 rows)")
    n.add_argument("--bands", type=int, help="LSH bands (with --rows; default: 14x8 for 112, else from the threshold)")
    n.add_argument("--rows", type=int, help="rows per band")
    n.add_argument("--no-verify", action="store_true", help="skip the exact-Jaccard check of candidate pairs")
    n.add_argument("--clusters", choices=["components", "centres"],
                   help="centres (default for file/repo with verification): every removed document reaches the threshold "
                        "with its kept one; components: whole connected components (default for page or --no-verify)")
    n.set_defaults(func=cmd_near)
