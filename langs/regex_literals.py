"""Literal text that every match of a regexp must contain or end with, read off the parse tree that
`re` itself compiles from (`re._parser`, stable within Python 3.11).

A C-speed `in` or `str.endswith` test on these strings rejects most texts and paths before the
regexp engine, which tries every position, runs at all: the cascade's heuristics and Linguist's
path rules use them as exact prefilters (a text without any of the strings cannot match).
"""

from __future__ import annotations

import re
from re import _constants as c
from re import _parser


def _parse(pattern: str, flags: int) -> tuple[list, int]:
    parsed = _parser.parse(pattern, flags)
    return parsed.data, parsed.state.flags


def _needles(items: list, flags: int) -> frozenset[str] | None:
    best: frozenset[str] | None = None

    def keep(cand: frozenset[str] | None) -> None:
        nonlocal best
        if cand and "" not in cand and (best is None or _score(cand) > _score(best)):
            best = cand

    run = ""
    for op, av in items:
        if op is c.LITERAL and not flags & re.I:
            run += chr(av)
            continue
        keep(frozenset([run]) if run else None)
        run = ""
        if op is c.SUBPATTERN and not av[1] & re.I:
            keep(_needles(av[3].data, flags))
        elif op is c.BRANCH:
            alts = [_needles(b.data, flags) for b in av[1]]
            keep(None if None in alts else frozenset().union(*alts))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT) and av[0] >= 1:
            keep(_needles(av[2].data, flags))
        elif op is c.ASSERT:  # what a lookaround must see is in the text too
            keep(_needles(av[1].data, flags))
    keep(frozenset([run]) if run else None)
    return best


def _score(needles: frozenset[str]) -> tuple[int, int]:
    """The shortest string decides how rare a hit is; then fewer strings are better."""
    return min(map(len, needles)), -len(needles)


def needles(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """Strings one of which every match contains; None where the pattern guarantees none."""
    return _needles(*_parse(pattern, flags))


def _alternatives(op, av) -> list[str] | None:
    """The strings one parsed item can match, when it can only match a few fixed strings."""
    if op is c.LITERAL:
        return [chr(av)]
    if op is c.IN and all(o is c.LITERAL for o, _ in av):
        return [chr(v) for _, v in av]
    if op is c.SUBPATTERN and not av[1] and not av[2]:
        return _sequence(av[3].data)
    return None


def _sequence(items: list) -> list[str] | None:
    if len(items) == 1 and items[0][0] is c.BRANCH:
        out: list[str] = []
        for branch in items[0][1][1]:
            alts = _sequence(branch.data)
            if alts is None:
                return None
            out += alts
        return out
    out = [""]
    for op, av in items:
        alts = _alternatives(op, av)
        if alts is None:
            return None
        out = [o + a for o in out for a in alts]
    return out


def endings(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """Strings one of which every match ends with, for a pattern anchored at the end (`$`, `\\Z`) right
    after fixed text, e.g. `\\.(js|css)$`; None otherwise. `$` also matches before a final newline:
    the caller sends strings that end with one the slow way."""
    items, flags = _parse(pattern, flags)
    if flags & re.I or not items or items[-1] not in ((c.AT, c.AT_END), (c.AT, c.AT_END_STRING)):
        return None
    ends = [""]
    for op, av in reversed(items[:-1]):
        alts = _alternatives(op, av)
        if alts is None:
            break
        ends = [a + e for a in alts for e in ends]
    return frozenset(ends) if "" not in ends else None


def ends_with_slash(pattern: str) -> bool:
    """Whether every match ends with a literal "/" and nothing in the pattern looks past a match's
    end (no lookaround, no anchor but `^`): then a path's directory part alone decides."""
    items, _ = _parse(pattern, 0)
    return bool(items) and items[-1] == (c.LITERAL, ord("/")) and _looks_only_inside(items)


def _looks_only_inside(items: list) -> bool:
    for op, av in items:
        if op in (c.ASSERT, c.ASSERT_NOT, c.GROUPREF, c.GROUPREF_EXISTS):
            return False
        if op is c.AT and av not in (c.AT_BEGINNING, c.AT_BEGINNING_STRING):
            return False
        if op is c.SUBPATTERN and not _looks_only_inside(av[3].data):
            return False
        if op is c.BRANCH and not all(_looks_only_inside(b.data) for b in av[1]):
            return False
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT) and not _looks_only_inside(av[2].data):
            return False
    return True


_CLASSES = {c.CATEGORY_DIGIT: r"\d", c.CATEGORY_NOT_DIGIT: r"\D", c.CATEGORY_SPACE: r"\s", c.CATEGORY_NOT_SPACE: r"\S",
            c.CATEGORY_WORD: r"\w", c.CATEGORY_NOT_WORD: r"\W"}


def _first_of(op, av, flags: int) -> tuple[list[str] | None, bool]:
    """(character-class items, as regexp source, one of which starts every match of one parsed item, or
    None where any character may; whether the item can match no character)."""
    if op is c.LITERAL:
        return [re.escape(chr(av))], False
    if op is c.IN:
        out = []
        for o, v in av:
            if o is c.LITERAL:
                out.append(re.escape(chr(v)))
            elif o is c.RANGE:
                out.append(re.escape(chr(v[0])) + "-" + re.escape(chr(v[1])))
            elif o is c.CATEGORY and v in _CLASSES:
                out.append(_CLASSES[v])
            else:  # a negated class, a class of other kinds
                return None, False
        return out, False
    if op is c.SUBPATTERN:
        if av[1] & ~flags & re.I:  # case folded here only: the class, compiled with the outer flags, would not be
            return None, False
        return _first(av[3].data, flags)
    if op is c.ATOMIC_GROUP:
        return _first(av.data, flags)
    if op is c.BRANCH:
        firsts = [_first(b.data, flags) for b in av[1]]
        if any(f is None for f, _ in firsts):
            return None, False
        return [i for f, _ in firsts for i in f], any(n for _, n in firsts)
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
        first, empty = _first(av[2].data, flags)
        return first, empty or av[0] == 0
    if op in (c.AT, c.ASSERT, c.ASSERT_NOT):  # zero-width: skipping what they demand only widens the class
        return [], True
    return None, False


def _first(items: list, flags: int) -> tuple[list[str] | None, bool]:
    out: list[str] = []
    for op, av in items:
        first, empty = _first_of(op, av, flags)
        if first is None:
            return None, False
        out += first
        if not empty:
            return out, False
    return out, True


_GLOBAL_FLAGS = re.compile(r"(?:\(\?[aiLmsux]+\)\s*)+")


def after_line_break(pattern: str, flags: int = 0) -> re.Pattern | None:
    """For a pattern that starts with `^` under re.M (every match starts at the text's start or right
    after a "\\n"): the same pattern behind a literal "\\n", whose search skips from line break to line
    break at C speed where `^` makes the engine try every position; and where every match starts with
    one of a few characters, a lookahead for them, so that a line starting otherwise costs one test.
    A match of the pattern exists iff `pattern.match(text)` or this one's `search(text)` finds one.
    None for other patterns."""
    items, all_flags = _parse(pattern, flags)
    if not all_flags & re.M or not items or items[0] != (c.AT, c.AT_BEGINNING):
        return None
    lead = _GLOBAL_FLAGS.match(pattern)
    body = pattern[lead.end() :] if lead else pattern
    tail = "\n)" if all_flags & re.X else ")"  # a trailing comment in verbose mode must not swallow the ")"
    first, empty = _first(items, all_flags)
    ahead = f"(?=[{''.join(first)}])" if first and not empty else ""
    return re.compile(r"\n" + ahead + "(?:" + body + tail, all_flags)
