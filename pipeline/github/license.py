"""SPDX licence id of a repository, from the text of its LICENSE file (common licences only)."""

from __future__ import annotations

import re

LICENSE_NAMES = re.compile(r"^(LICEN[CS]E|COPYING|UNLICENSE)([.-][A-Za-z0-9]+)?(\.(md|txt|rst))?$", re.I)

# (spdx id, phrases that must all appear), most specific first; matched on lower-cased,
# whitespace-collapsed text.
_RULES: list[tuple[str, tuple[str, ...]]] = [
    ("AGPL-3.0", ("gnu affero general public license", "version 3")),
    ("LGPL-3.0", ("gnu lesser general public license", "version 3")),
    ("LGPL-2.1", ("gnu lesser general public license", "version 2.1")),
    ("GPL-3.0", ("gnu general public license", "version 3")),
    ("GPL-2.0", ("gnu general public license", "version 2")),
    ("Apache-2.0", ("apache license", "version 2.0")),
    ("MPL-2.0", ("mozilla public license", "2.0")),
    ("EPL-2.0", ("eclipse public license", "2.0")),
    ("EPL-1.0", ("eclipse public license",)),
    ("BSL-1.0", ("boost software license",)),
    ("Unlicense", ("this is free and unencumbered software released into the public domain",)),
    ("CC0-1.0", ("cc0 1.0 universal",)),
    ("WTFPL", ("do what the fuck you want to",)),
    ("Zlib", ("this software is provided 'as-is'", "altered source versions must be plainly marked")),
    ("MIT", ("permission is hereby granted, free of charge", "the above copyright notice")),
    ("ISC", ("permission to use, copy, modify, and/or distribute this software for any purpose",)),
    ("BSD-3-Clause", ("redistribution and use in source and binary forms", "neither the name")),
    ("BSD-2-Clause", ("redistribution and use in source and binary forms",)),
]


def spdx_from_text(text: str) -> str | None:
    t = " ".join(text.lower().split())
    for spdx, phrases in _RULES:
        if all(p in t for p in phrases):
            return spdx
    return None


def is_license_file(rel_path: str) -> bool:
    return "/" not in rel_path and bool(LICENSE_NAMES.match(rel_path))


def detect(files: dict[str, bytes]) -> str | None:
    """SPDX id from the first root-level licence file (by name) that matches a known licence."""
    for rel in sorted(p for p in files if is_license_file(p)):
        spdx = spdx_from_text(files[rel].decode("utf-8", "replace"))
        if spdx:
            return spdx
    return None
