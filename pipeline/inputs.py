"""Input files from strangers: only regular files are opened, and JSON lines are read a line at a time.

A FIFO, device or socket among the inputs is skipped (opening a FIFO blocks for ever). A broken
JSON line is one counted drop, not a failed file: `github_files` datasets and `codecurate dedup`
inputs both read JSON lines through here. A line that is not UTF-8 is `not_utf8`; one that is not
a JSON object is `bad_json`; blank lines are no rows.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator


class NotRegularFile(OSError):
    """A local path that is a FIFO, device or socket: opening it could block for ever."""


def check_regular(path: str) -> None:
    """Raise `NotRegularFile` for a local path that is not a regular file (links are followed, as `open` does)."""
    if "://" not in path or path.startswith("file://"):
        local = path.removeprefix("file://")
        if os.path.exists(local) and not stat.S_ISREG(os.stat(local).st_mode):
            raise NotRegularFile(f"{path}: not a regular file")


def jsonl_rows(path: str) -> Iterator[tuple[dict | None, str | None, int]]:
    """(row, None, nbytes) for each JSON object, (None, reason, nbytes) for each bad line; `.gz` is read
    decompressed. `nbytes` is the line's length in bytes."""
    # imported here, not at the top: `langs tag` needs only `check_regular`, and fsspec costs it ~0.07 s
    from pipeline import storage

    check_regular(path)
    with storage.open_file(path, "rb", compression="infer") as f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield None, "not_utf8", len(raw)
                continue
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if isinstance(row, dict):
                yield row, None, len(raw)
            else:
                yield None, "bad_json", len(raw)
