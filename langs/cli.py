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


def cmd_tag(args) -> int:
    import json

    from langs import tag
    from langs.tagger import CONSIDER_BYTES
    from pipeline.inputs import NotRegularFile, check_regular

    rc = 0
    rows: list[str] = []  # written 256 at a time: one write per row costs more than tagging it (PYTHONUNBUFFERED)
    for full, rel, regular in _files(args.paths):
        try:
            if not regular:
                check_regular(full)  # a FIFO would block `open` for ever; devices and sockets are no files either
            with open(full, "rb", buffering=0) as f:
                data = f.read(CONSIDER_BYTES)
        except NotRegularFile:
            print(f"codecurate langs tag: {full}: skipped, not a regular file", file=sys.stderr)
            continue
        except OSError as e:
            print(f"codecurate langs tag: {full}: {e.strerror or e}", file=sys.stderr)
            rc = 1
            continue
        t = tag(rel, data, content_only=args.content_only)
        row = {"path": full, "language": t.language, "linguist": t.linguist, "kind": t.kind, "strategy": t.strategy, "confidence": t.confidence}
        if t.reason:
            row["reason"] = t.reason
        rows.append(json.dumps(row, ensure_ascii=False, indent=None if args.jsonl else 2) + "\n")
        if len(rows) >= 256:
            sys.stdout.write("".join(rows))
            rows.clear()
    sys.stdout.write("".join(rows))
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
    t.set_defaults(func=cmd_tag)
    n = lsub.add_parser("nl", help="natural language of a text file (- for stdin), with fastText lid.176")
    n.add_argument("file")
    n.set_defaults(func=cmd_nl)
