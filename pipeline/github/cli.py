"""`codecurate github discover` (search API -> repo list parquet) and `codecurate github clone`."""

from __future__ import annotations

import datetime as dt
import sys


def _date(s: str) -> dt.date:
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        raise SystemExit(f"codecurate github: expected a date YYYY-MM-DD, got {s!r}") from None


def cmd_discover(args) -> int:
    from pipeline.github.search import Query, SearchClient, SearchError, discover, write_repo_list

    query = Query(_date(args.created_after), _date(args.created_before), args.min_stars, args.language,
                  _date(args.pushed_after) if args.pushed_after else None)
    client = SearchClient(api_url=args.api_url, per_page=args.per_page, max_wait_s=args.max_wait)
    try:
        rows = discover(client, query)
    except SearchError as e:
        print(f"codecurate github discover: {e}", file=sys.stderr)
        return 1
    write_repo_list(rows, args.output)
    print(f"{len(rows)} repositories -> {args.output} ({client.requests} requests, waited {client.waited_s:.0f}s for rate limits)")
    return 0


def cmd_clone(args) -> int:
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.flags import FlagError, from_flags
    from pipeline.github.clone import CloneOptions, clone_many
    from pipeline.github.search import RepoListError, read_repo_list

    try:
        opts = from_flags(CloneOptions, args)
        rows = read_repo_list(args.repo_list)
    except (FlagError, RepoListError) as e:
        print(f"codecurate github clone: {e}", file=sys.stderr)
        return 2
    jobs = [(r["full_name"], r["clone_url"], os.path.join(args.dest, r["full_name"].replace("/", "__")),
             r.get("default_branch")) for r in rows]
    results = clone_many(jobs, opts)
    out = os.path.join(args.dest, "_clone_results.parquet")
    pq.write_table(pa.Table.from_pylist([r.to_dict() for r in results]), out, compression="zstd")
    failed = [r for r in results if not r.ok]
    print(f"cloned {len(results) - len(failed)}/{len(results)} into {args.dest}; results: {out}")
    for r in failed:
        print(f"  failed {r.repo}: {r.reason}: {r.detail}", file=sys.stderr)
    return 0


def register(sub) -> None:
    from pipeline.flags import add_flags
    from pipeline.github.clone import CloneOptions

    gh = sub.add_parser("github", help="discover and fetch GitHub repositories")
    gsub = gh.add_subparsers(dest="github_command", required=True, metavar="COMMAND")

    p = gsub.add_parser("discover", help="search repositories (GitHub REST search API; token from GITHUB_TOKEN)")
    p.add_argument("--created-before", required=True, help="YYYY-MM-DD, inclusive (the crawl cut-off)")
    p.add_argument("--created-after", default="2008-01-01", help="YYYY-MM-DD, inclusive (default 2008-01-01)")
    p.add_argument("--min-stars", type=int, help="only repositories with at least this many stars")
    p.add_argument("--language", help="GitHub language name, e.g. Python")
    p.add_argument("--pushed-after", help="YYYY-MM-DD: only repositories pushed since")
    p.add_argument("--api-url", default="https://api.github.com", help="API base URL (GitHub Enterprise, tests)")
    p.add_argument("--per-page", type=int, default=100, choices=range(1, 101), metavar="1..100")
    p.add_argument("--max-wait", type=float, default=3600.0, help="longest rate-limit wait in seconds before giving up")
    p.add_argument("--output", "-o", required=True, help="repo list to write (parquet; any fsspec path)")
    p.set_defaults(func=cmd_discover)

    p = gsub.add_parser("clone", help="shallow-clone every repository of a repo list")
    p.add_argument("repo_list", help="parquet written by `github discover`")
    p.add_argument("--dest", required=True, help="directory for the clones (owner__name)")
    add_flags(p, CloneOptions)  # the `clone` key of github_files: one declaration
    p.set_defaults(func=cmd_clone)
