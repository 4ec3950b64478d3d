"""Files Linguist leaves out of language statistics, each with a reason.

binary, empty and undecodable come from the bytes; vendored and documentation from the path
(vendor.yml, documentation.yml); generated from the path and the first lines (lock files,
minified JS/CSS, protobuf and other "do not edit" output), after Linguist's generated.rb.
"""

from __future__ import annotations

import functools
import re

from langs import regex_literals
from langs.linguist import disk_cached, load_yaml

BINARY_SCAN = 8000  # Linguist (and git) look for a NUL byte in the first 8000 bytes


def decode(head: bytes, decoded: str | None = None) -> tuple[str, str | None]:
    """(text, reason): reason is "empty", "binary" or "undecodable" (then text is a latin-1 reading).
    `decoded` is `head.decode("utf-8")` when the caller already has it."""
    if not head or head.isspace():
        return "", "empty"
    for bom, enc in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            try:
                return head[len(bom) :].decode(enc, "strict"), None
            except UnicodeDecodeError:
                break  # a BOM that lies: judge the bytes as they are
    if head.find(b"\x00", 0, BINARY_SCAN) >= 0:
        return "", "binary"
    if decoded is not None:
        return decoded, None
    try:
        return head.decode("utf-8"), None
    except UnicodeDecodeError as e:
        # a multi-byte character cut by the read limit is fine
        if e.start >= len(head) - 3 and e.reason == "unexpected end of data":
            return head[: e.start].decode("utf-8"), None
        return head.decode("latin-1"), "undecodable"


class PathRules:
    """Linguist's path regexps, each tried only where it can match (`langs.regex_literals`):

    - a rule whose matches end with "/" sees only the directory part: one answer per directory, cached;
    - a rule anchored at the end after fixed text (`.min.(js|css)$`) is tried only on paths that end so;
    - any other rule only when the path holds a string every match contains (the directory's part cached).

    One alternation of the ~170 regexps costs ~0.4 ms a path in Python's `re`; this costs ~2 us. Given
    labelled groups of patterns, one pass answers for all groups (`first`).
    """

    def __init__(self, patterns: list[str] | dict[str, list[str]]):
        groups = patterns if isinstance(patterns, dict) else {"match": patterns}
        bits = {label: 1 << i for i, label in enumerate(groups)}
        self.labels = list(groups)
        self.rules = [(re.compile(p.replace(r"\z", r"\Z")), bits[label]) for label, ps in groups.items() for p in ps]
        self.dir_rules: list[tuple[frozenset[str] | None, re.Pattern, int]] = []
        self.by_ending: dict[str, list[tuple[tuple[str, ...], re.Pattern, int]]] = {}  # last 2 characters -> rules
        self.anywhere: list[tuple[frozenset[str], re.Pattern, int]] = []
        self.always: list[tuple[re.Pattern, int]] = []
        for (rx, bit), (ends, lits, slash) in zip(self.rules, _analysis(tuple(rx.pattern for rx, _ in self.rules))):
            if slash:
                self.dir_rules.append((lits, rx, bit))
            elif ends is not None and min(map(len, ends)) >= 2:
                for key in sorted({e[-2:] for e in ends}):
                    self.by_ending.setdefault(key, []).append((tuple(sorted(ends)), rx, bit))
            elif lits is not None and all(n.endswith("/") or "/" not in n for n in lits):  # none spans a name's "/"
                self.anywhere.append((lits, rx, bit))
            else:
                self.always.append((rx, bit))
        in_names = sorted({n for lits, _, _ in self.anywhere for n in lits if "/" not in n})
        # one regexp scan of a file name says whether any string is in it at all: most names hold none
        self.in_name = re.compile("|".join(map(re.escape, in_names))) if in_names else None
        # Strings are found through their first characters: a directory's or name's own pairs of characters
        # pick the few strings worth an `in` test, and each string found picks the rules that need it.
        needles = {n for lits, _, _ in self.dir_rules + self.anywhere for n in lits or ()}
        self.key_len = min(map(len, needles), default=1)
        self.by_key: dict[str, list[str]] = {}
        for n in sorted(needles):
            self.by_key.setdefault(n[: self.key_len], []).append(n)
        self.dir_rules_of, self.anywhere_of = _rules_by_needle(self.dir_rules), _rules_by_needle(self.anywhere)
        self.unfiltered_dir_rules = frozenset(i for i, (lits, _, _) in enumerate(self.dir_rules) if lits is None)
        self._directory = functools.lru_cache(maxsize=1 << 16)(self._directory_answer)

    def _present(self, text: str) -> set[str]:
        """The rules' strings that occur in `text`."""
        k = self.key_len
        keys = self.by_key.keys() & {text[i : i + k] for i in range(len(text) - k + 1)}
        return {n for key in keys for n in self.by_key[key] if n in text}

    def _directory_answer(self, directory: str) -> tuple[int, frozenset[int]]:
        """(the groups whose directory rules match, the `anywhere` rules whose strings occur) for a
        directory part "a/b/"."""
        present = self._present(directory)
        found = 0
        for i in self.unfiltered_dir_rules.union(*(self.dir_rules_of.get(n, ()) for n in present)):
            _, rx, bit = self.dir_rules[i]
            if not found & bit and rx.search(directory):
                found |= bit
        return found, frozenset().union(*(self.anywhere_of.get(n, ()) for n in present))

    def _found(self, path: str) -> int:
        """The bits of the groups with a rule that matches `path`."""
        if path.endswith("\n"):  # `$` matches before it too: no shortcut
            return functools.reduce(int.__or__, (bit for rx, bit in self.rules if rx.search(path)), 0)
        cut = path.rfind("/") + 1
        found, todo = self._directory(path[:cut])
        if self.in_name is not None and self.in_name.search(path, cut):  # no string spans the last "/"
            todo = todo.union(*(self.anywhere_of.get(n, ()) for n in self._present(path[cut:])))
        for i in todo:
            _, rx, bit = self.anywhere[i]
            if not found & bit and rx.search(path):
                found |= bit
        for ends, rx, bit in self.by_ending.get(path[-2:], ()):
            if not found & bit and path.endswith(ends) and rx.search(path):
                found |= bit
        for rx, bit in self.always:
            if not found & bit and rx.search(path):
                found |= bit
        return found

    def first(self, path: str) -> str | None:
        """The first group, in the order given, with a rule that matches `path`."""
        found = self._found(path)
        return self.labels[(found & -found).bit_length() - 1] if found else None


def _analysis(patterns: tuple[str, ...]) -> list:
    """Per pattern: its match endings, needles and whether its matches end with "/" (`regex_literals`),
    kept on disk (`disk_cached`): parsing ~230 regexps is ~0.03 s, a tenth of a short `langs tag` run."""
    analyse = regex_literals.endings, regex_literals.needles, regex_literals.ends_with_slash
    return disk_cached("path-rules", "\n".join(patterns).encode(), lambda: [tuple(f(p) for f in analyse) for p in patterns])


def _rules_by_needle(rules: list[tuple[frozenset[str] | None, re.Pattern, int]]) -> dict[str, tuple[int, ...]]:
    """Each string -> the indices of the rules that name it."""
    out: dict[str, list[int]] = {}
    for i, (lits, _, _) in enumerate(rules):
        for n in lits or ():
            out.setdefault(n, []).append(i)
    return {n: tuple(ids) for n, ids in out.items()}


# Generated files by name (after Linguist's generated.rb).
_GENERATED_NAMES = [
    r"package-lock\.json", r"npm-shrinkwrap\.json", r"yarn\.lock", r"pnpm-lock\.yaml", r"bun\.lockb?", r"composer\.lock",
    r"Gemfile\.lock", r"Cargo\.lock", r"poetry\.lock", r"Pipfile\.lock", r"pdm\.lock", r"uv\.lock", r"go\.sum", r"flake\.lock",
    r"Podfile\.lock", r"Package\.resolved", r"mix\.lock", r"deno\.lock", r"pubspec\.lock", r"gradle/wrapper/.*",
    r"\.pnp\.c?js", r"\.pnp\.loader\.mjs", r"__generated__/.*", r"gen/.*\.java",
    r".*\.(?:min|pack)\.(?:js|css)", r".*\.map", r".*\.pb\.(?:go|cc|h)", r".*_pb2(?:_grpc)?\.pyi?", r".*\.pb\.swift",
    r".*_pb\.(?:js|rb|d\.ts)", r".*_grpc_pb\.js", r".*\.designer\.(?:cs|vb)", r".*\.g\.(?:cs|dart|i\.cs)",
    r".*\.freezed\.dart", r".*\.xcworkspacedata", r".*\.xcuserstate", r".*\.nib", r".*\.pbxproj", r".*\.meta",
    r".*_generated\.go", r"zz_generated\..*\.go", r".*\.pb\.gw\.go", r".*\.sqlx\.json",
]


@functools.cache
def path_rules() -> PathRules:
    """Linguist's vendor.yml, documentation.yml and generated file names, in the order a file is reported."""
    return PathRules({"vendored": load_yaml("vendor.yml"), "documentation": load_yaml("documentation.yml"),
                      "generated": [rf"(?:^|/)(?:{name})$" for name in _GENERATED_NAMES]})


# Markers generators write near the top ("Code generated ... DO NOT EDIT." is Go's convention).
_MARKERS = [  # each starts at most 27 characters before "generated" or at "do not edit"
    r"Code generated .{0,200}DO NOT EDIT", r"Generated by the protocol buffer compiler", r"@generated\b",
    r"This file (?:was|is) (?:automatically|auto-)generated",
    r"Generated by (?:CoffeeScript|Haxe|PEG\.js|jison|the Apache Thrift|Cython|SWIG|Bison|Flex|Sphinx|javadoc|Doxygen)",
    r"DO NOT EDIT(?: THIS FILE)?[!.]?\s*(?:$|\*/|-->)",
]
_MARKER_LINE = r"^\s*(?://|#|/\*|\*|<!--)\s*(?:Automatically |Auto-?)?generated (?:by|from|file)\b"
_GENERATED_TEXT = re.compile("|".join(_MARKERS[:5] + [_MARKER_LINE] + _MARKERS[5:]), re.I | re.M)
# The same markers tried only from 40 characters before each "generated" / "do not edit": re.I rules out
# the regexp engine's fast scan, so a search of a 2 KiB head costs ~100 us, this a few.
_NEAR_MARKER = re.compile(r"(?s:.{0,40}?)(?:" + "|".join(_MARKERS) + ")", re.I | re.M)
_MARKER_LINE_RX = re.compile(_MARKER_LINE, re.I | re.M)
_MARKER_AFTER_BREAK = regex_literals.after_line_break(_MARKER_LINE, re.I | re.M)  # the same, C-speed to each line


def _has_marker(head: str, low: str) -> bool:
    """`_GENERATED_TEXT.search(head)`; `low` is `head.lower()`, where an ASCII head's words sit where they sit in it."""
    if not head.isascii():
        return _GENERATED_TEXT.search(head) is not None
    for word in ("generated", "do not edit"):
        at = low.find(word)
        while at >= 0:
            if _NEAR_MARKER.match(head, max(0, at - 40)):
                return True
            at = low.find(word, at + 1)
    return _MARKER_LINE_RX.match(head) is not None or _MARKER_AFTER_BREAK.search(head) is not None


_MINIFIABLE = re.compile(r"\.(?:js|mjs|cjs|css)$", re.I)


def generated_text(path: str | None, text: str) -> bool:
    """A generator's marker near the top, or minified JS/CSS."""
    head = text[:2000]
    low = head.lower()
    if ("generated" in low or "do not edit" in low) and _has_marker(head, low):
        return True
    if path and _MINIFIABLE.search(path):
        # minified: average line length over 110 (Linguist's rule)
        lines = text.count("\n") + 1
        return len(text) / lines > 110
    return False


def reason(path: str, text: str) -> str | None:
    """vendored, documentation or generated (the path rules, on the path without a leading "/", then the
    text's markers), in the order Linguist reports them; None for a file it keeps."""
    return path_rules().first(path.lstrip("/")) or ("generated" if generated_text(path, text) else None)
