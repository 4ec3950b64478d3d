"""`codecurate web extract INPUT… --output DIR`: WARC/WET files to text parquet, the recipe way.

It runs the same two stages a recipe would (`web_ingest` then `web_extract`) with OUTPUT as the
run directory, so it resumes after a kill and writes `DIR/extract/part-NNNNN.parquet`.
"""

from __future__ import annotations


def cmd_extract(args) -> int:
    from pipeline import storage
    from pipeline.recipe import parse_recipe
    from pipeline.runner import Runner

    ingest = {"name": "ingest", "kind": "web_ingest", "paths": args.inputs}
    if args.max_record_mb is not None:  # else the stage kind's default
        ingest["max_record_bytes"] = args.max_record_mb << 20
    if args.s3_endpoint:
        ingest["storage_options"] = {"s3": {"endpoint_url": args.s3_endpoint}}
    extract = {"name": "extract", "kind": "web_extract", "input": "ingest", "main_content": not args.keep_boilerplate, "dedup_urls": not args.keep_duplicates}
    recipe = {"name": "web-extract", "run_dir": args.output, "executor": args.executor, "workers": args.workers, "stages": [ingest, extract]}
    Runner(parse_recipe(recipe, "codecurate web extract"), progress=not args.quiet, owns_run_dir=True).run()
    ing = storage.read_json(storage.join(args.output, "ingest", "_stats.json"), {})
    ext = storage.read_json(storage.join(args.output, "extract", "_stats.json"), {})
    dropped: dict[str, int] = {}
    for st in (ing, ext):
        for reason, d in st.get("dropped", {}).items():
            dropped[reason] = dropped.get(reason, 0) + d["docs"]
    why = ", ".join(f"{r} {n}" for r, n in sorted(dropped.items())) or "none"
    out = storage.join(args.output, "extract")
    print(f"wrote {ext.get('kept', {}).get('docs', 0)} documents to {out}/part-*.parquet "
          f"(records: {ing.get('in', {}).get('docs', 0)}; dropped: {why})")
    return 0


def register(sub) -> None:
    web = sub.add_parser("web", help="CommonCrawl WARC/WET ingest and text extraction")
    wsub = web.add_subparsers(dest="web_command", required=True, metavar="WEB_COMMAND")
    p = wsub.add_parser("extract", help="extract text (math and code kept) from WARC/WET files, globs or URLs")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="WARC/WET path, glob, http(s):// or s3:// URL")
    p.add_argument("--output", required=True, help="output directory (the run directory; resumable)")
    p.add_argument("--executor", choices=["ray", "local"], default="local")
    p.add_argument("--workers", type=int, default=2, help="tasks run at once (outputs do not depend on it)")
    p.add_argument("--max-record-mb", type=int, help="skip records larger than this (default: web_ingest's max_record_bytes, 16 MiB)")
    p.add_argument("--s3-endpoint", help="S3 endpoint URL for s3:// inputs (a mirror or a local server)")
    p.add_argument("--keep-boilerplate", action="store_true", help="extract the whole page, not only main content")
    p.add_argument("--keep-duplicates", action="store_true", help="keep repeated URLs")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_extract)
