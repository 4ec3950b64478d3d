"""`codecurate langs tag [--jsonl] [--content-only] PATH...`: one JSON object per file.

Directories are walked (sorted, `.git` skipped). Unreadable paths are reported on stderr and
make the exit status 1; FIFOs, devices and sockets are skipped with a line on stderr; the other
files are still tagged.
"""

from __future__ import annotations

import sys


def _walk(top: str, prefix: int):
    """(path, path relative to the walked root, known to be a regular file) under `top`, as `os.walk` orders
    them (a directory's files by name, then its subdirectories; links to directories not followed), from
    one `scandir` per directory: its entry types spare a `stat` per file."""
    import os

    with os.scandir(top) as it:
        entries = sorted(it, key=lambda e: e.name)
    subdirs = []
    for e in entries:
        if e.is_dir():
            if e.name != ".git" and not e.is_symlink():
                subdirs.append(e.path)
        else:
            yield e.path, e.path[prefix:], e.is_file()
    for d in subdirs:
        yield from _walk(d, prefix)


def _files(paths: list[str]):
    import os

    for p in paths:
        if os.path.isdir(p):
            top = p.rstrip("/") or "/"
            yield from _walk(top, len(top) + (not top.endswith("/")))
        else:
            yield p, p, False


CHUNK_FILES = 64  # files a worker tags per job; output keeps the walk's order
PARALLEL_FROM = 512  # fewer files are tagged in this process: a pool's start-up would cost more than it saves


def _tag_files(job: tuple[list[tuple[str, str, bool]], bool, bool]) -> tuple[str, list[str], int]:
    """Tag a chunk of files: (their JSON rows, lines for stderr, exit status)."""
    import json

    from langs import tag
    from langs.tagger import CONSIDER_BYTES
    from pipeline.inputs import NotRegularFile, check_regular

    files, content_only, jsonl = job
    rows, errors, rc = [], [], 0
    for full, rel, regular in files:
        try:
            if not regular:
                check_regular(full)  # a FIFO would block `open` for ever; devices and sockets are no files either
            with open(full, "rb", buffering=0) as f:
                data = f.read(CONSIDER_BYTES)
        except NotRegularFile:
            errors.append(f"codecurate langs tag: {full}: skipped, not a regular file")
            continue
        except OSError as e:
            errors.append(f"codecurate langs tag: {full}: {e.strerror or e}")
            rc = 1
            continue
        t = tag(rel, data, content_only=content_only)
        row = {"path": full, "language": t.language, "linguist": t.linguist, "kind": t.kind, "strategy": t.strategy, "confidence": t.confidence}
        if t.reason:
            row["reason"] = t.reason
        rows.append(json.dumps(row, ensure_ascii=False, indent=None if jsonl else 2) + "\n")
    return "".join(rows), errors, rc


def cmd_tag(args) -> int:
    """Chunks of files are tagged by a pool of `--jobs` forked processes when there are many (rows come out
    in the walk's order either way), else here; rows are written a chunk at a time (this machine sets
    PYTHONUNBUFFERED: one write per row cost more than tagging it)."""
    import os

    files = list(_files(args.paths))
    jobs = [(files[i : i + CHUNK_FILES], args.content_only, args.jsonl) for i in range(0, len(files), CHUNK_FILES)]
    workers = min(args.jobs or os.cpu_count() or 1, len(jobs))
    pool = None
    if workers > 1 and len(files) >= PARALLEL_FROM:
        import multiprocessing

        from langs.linguist import index

        index()  # Linguist's data parsed once, before the fork, and shared
        if args.content_only:  # every file needs the classifier: its model and scoring tables too
            from langs import classifier

            classifier.model().classify("int x;")
        pool = multiprocessing.get_context("fork").Pool(workers)
    rc = 0
    try:
        for rows, errors, status in (pool.imap(_tag_files, jobs) if pool else map(_tag_files, jobs)):
            sys.stdout.write(rows)
            for line in errors:
                print(line, file=sys.stderr)
            rc |= status
    finally:
        if pool:
            pool.close()
            pool.join()
    return rc


def cmd_nl(args) -> int:
    import json

    from langs import detect_language

    text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8", errors="replace").read()
    code, score = detect_language(text)
    print(json.dumps({"path": args.file, "nl_lang": code, "nl_score": score}))
    return 0


def register(sub) -> None:
    p = sub.add_parser("langs", help="programming- and natural-language identification")
    lsub = p.add_subparsers(dest="langs_command", required=True, metavar="COMMAND")
    t = lsub.add_parser("tag", help="tag files with DeepSeek-Coder-V2's language names (one JSON object per file)")
    t.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    t.add_argument("--jsonl", action="store_true", help="one compact JSON object per line (default: indented)")
    t.add_argument("--content-only", action="store_true", help="ignore file names; classify by content")
    t.add_argument("--jobs", type=int, metavar="N", help=f"processes tagging files (default: one per CPU core, from {PARALLEL_FROM} files)")
    t.set_defaults(func=cmd_tag)
    n = lsub.add_parser("nl", help="natural language of a text file (- for stdin), with fastText lid.176")
    n.add_argument("file")
    n.set_defaults(func=cmd_nl)
