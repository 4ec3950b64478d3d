r"""Linguist's heuristics.yml, translated from Ruby regexps to Python `re` (with re.M).

Ruby's `^`/`$` always match at line breaks, hence re.M everywhere. The translation handles what
heuristics.yml uses: `(?-m)` (Ruby's m is dotall; off is our default), flag groups in mid-pattern
(Python wants them leading, so `X(?i)Y` becomes `X(?i:Y)`), `\z`, `\Z`, `\h`, named groups,
`\g<name>` calls and the one class intersection `[\s&&[^\r\n]]`.
A pattern list is Ruby's `Regexp.union`, i.e. any of them matches.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from langs.linguist import extnames, load_yaml
from langs.regex_literals import after_line_break, needles

CONSIDER_BYTES = 50 * 1024


def _group_end(p: str, start: int) -> int:
    """Index of the ')' that closes the group enclosing position `start` (or len(p))."""
    depth, i, in_class = 0, start, False
    while i < len(p):
        c = p[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if p[i + 1 : i + 2] == "]":
                i += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return len(p)


def translate(p: str) -> str:
    """One Ruby regexp (as heuristics.yml writes it) -> Python syntax."""
    p = p.replace("(?-m)", "").replace(r"[\s&&[^\r\n]]", r"[^\S\r\n]")  # Ruby class intersection
    p = p.replace(r"\Z", r"(?=\n?\Z)").replace(r"\z", r"\Z").replace(r"\h", "[0-9A-Fa-f]")
    p = re.sub(r"\(\?<([A-Za-z_]\w*)>", r"(?P<\1>", p)
    p = re.sub(r"\\k<([A-Za-z_]\w*)>", r"(?P=\1)", p)
    # Ruby subexpression calls `\g<name>`: inline the named group's body (none recurse)
    for name in re.findall(r"\\g<(\w+)>", p):
        head = p.index(f"(?P<{name}>") + len(name) + 5
        p = p.replace(f"\\g<{name}>", "(?:" + p[head : _group_end(p, head)] + ")")
    # mid-pattern inline flags scope to the end of their group in Ruby
    while True:
        m = re.search(r"(?<!^)(?<!\\)\(\?([imx]+)\)", p)
        if not m:
            break
        end = _group_end(p, m.end())
        p = p[: m.start()] + f"(?{m.group(1)}:" + p[m.end() : end] + ")" + p[end:]
    return p


class Prefiltered:
    """A compiled regexp that runs only when the text holds one of the strings every match contains:
    a few C-speed `in` tests instead of the regexp engine trying each position of 50 KiB."""

    __slots__ = ("line_rx", "needles", "rx")

    def __init__(self, pattern: str, flags: int):
        self.rx = re.compile(pattern, flags)
        self.needles = needles(pattern, flags)
        self.line_rx = after_line_break(pattern, flags)  # `^`-anchored: tried only after line breaks

    def search(self, text: str) -> re.Match | None:
        """A match if there is one (for a `^`-anchored pattern, its span may start at the line break before)."""
        if self.needles is not None:
            for n in self.needles:
                if n in text:
                    break
            else:
                return None
        if self.line_rx is not None:
            return self.rx.match(text) or self.line_rx.search(text)
        return self.rx.search(text)


def compile_pattern(spec: str | list[str]) -> list[Prefiltered]:
    return [Prefiltered(translate(p), re.M) for p in ([spec] if isinstance(spec, str) else spec)]


@dataclass
class Rule:
    languages: tuple[str, ...]
    positive: list[list[Prefiltered]]  # every entry must match (an `and` block), each entry any-of
    negative: list[list[Prefiltered]]  # no entry may match

    def matches(self, text: str) -> bool:
        for alts in self.positive:
            if not any(r.search(text) for r in alts):
                return False
        for alts in self.negative:
            if any(r.search(text) for r in alts):
                return False
        return True


def _rule(raw: dict, named: dict[str, list[Prefiltered]]) -> Rule:
    pos: list[list[Prefiltered]] = []
    neg: list[list[Prefiltered]] = []
    for part in raw.get("and", []) + [raw]:
        if "pattern" in part:
            pos.append(compile_pattern(part["pattern"]))
        if "named_pattern" in part:
            pos.append(named[part["named_pattern"]])
        if "negative_pattern" in part:
            neg.append(compile_pattern(part["negative_pattern"]))
    lang = raw.get("language")
    langs = tuple(lang) if isinstance(lang, list) else ((lang,) if lang else ())
    return Rule(langs, pos, neg)


@functools.cache
def _blocks() -> tuple[dict, dict[str, int]]:
    """heuristics.yml, and extension (lower case) -> its block; the first block naming an extension wins."""
    data = load_yaml("heuristics.yml")
    first: dict[str, int] = {}
    for i, block in enumerate(data["disambiguations"]):
        for ext in block["extensions"]:
            first.setdefault(ext.lower(), i)
    return data, first


@functools.cache
def _named(name: str) -> list[Prefiltered]:
    return compile_pattern(_blocks()[0]["named_patterns"][name])


class _Named(dict):
    def __missing__(self, name: str) -> list[Prefiltered]:
        return _named(name)


@functools.cache
def _block_rules(i: int) -> list[Rule]:
    return [_rule(r, _Named()) for r in _blocks()[0]["disambiguations"][i]["rules"]]


def rules_for(ext: str) -> list[Rule] | None:
    """An extension's rules (lower case, ".h"), in file order, or None. Each block compiles on first use:
    a process that meets a few extensions does not pay for compiling ~700 regexps (~0.3 s)."""
    i = _blocks()[1].get(ext)
    return None if i is None else _block_rules(i)


def disambiguations() -> dict[str, list[Rule]]:
    """Every extension's rules, all compiled."""
    return {ext: rules_for(ext) for ext in _blocks()[1]}


def heuristic_languages(basename: str, text: str) -> tuple[str, ...] | None:
    """Languages the first matching rule names, () when a block applies but no rule matches,
    None when no block covers this file name."""
    dot = basename.find(".")
    rules = _rules_for(basename[dot:].lower()) if dot >= 0 else None
    if rules is None:
        return None
    head = text[:CONSIDER_BYTES]
    for r in rules:
        if r.matches(head):
            return r.languages
    return ()


@functools.lru_cache(maxsize=1 << 12)
def _rules_for(suffix: str) -> list[Rule] | None:
    """The rules of the longest extension of a name's dotted suffix that has a block, if any."""
    for ext in extnames(suffix):
        rules = rules_for(ext)
        if rules is not None:
            return rules
    return None
