"""Linguist's detection cascade: modeline, filename, shebang, extension, XML, manpage, heuristics,
classifier. Each strategy gets the candidates so far; one answer ends the cascade, several
narrow the candidates for the next strategy, none leaves them as they were (Linguist's
`Language.detect`). With no file name only the modeline and shebang apply, and the classifier
then chooses among all languages it knows (XML too: it tells XML from the XML-based formats
better than the `<?xml` header does, +1 point in k-fold); where its best languages share an
extension, that extension's heuristics may decide (`by_shared_extension`).
"""

from __future__ import annotations

import functools
import re

from langs import heuristics
from langs.linguist import extnames, index

# Confidence of a single answer from each strategy (the classifier computes its own).
CONFIDENCE = {"modeline": 1.0, "filename": 1.0, "shebang": 0.97, "extension": 0.95, "xml": 0.9, "manpage": 0.9, "heuristics": 0.9}

_EMACS = re.compile(
    r"""-\*-
    (?: [ \t]*(?=[^:;\s]+[ \t]*-\*-)
      | (?:.*?[ \t;]|(?<=-\*-))[ \t]*mode[ \t]*:[ \t]* )
    ([^:;\s]+)
    (?=[ \t;]|(?<![-*])-\*-)
    .*?-\*-""",
    re.X | re.I,
)
_VIM = re.compile(
    r"""(?:(?:^|[ \t])(?:vi|Vi(?=m))(?:m[<=>]?[0-9]+|m)?|[ \t]ex)
    (?=:(?=[ \t]*set?[ \t][^\r\n:]+:)|:(?![ \t]*set?[ \t]))
    (?:(?:[ \t]*:[ \t]*|[ \t])\w*(?:[ \t]*=(?:[^\\\s]|\\.)*)?)*
    [ \t:](?:filetype|ft|syntax)[ \t]*=
    (\w+)
    (?=$|\s|:)""",
    re.X | re.M,
)
_EXEC_HACK = re.compile(r"exec (\w+)[\s'\"]+\$0[\s'\"]+\$@")


def modeline(text: str) -> str | None:
    """The Emacs or Vim mode named in the first or last 5 lines (Linguist's SEARCH_SCOPE)."""
    head = "\n".join(text[:4096].split("\n", 5)[:5])
    tail = "\n".join(text[-4096:].rsplit("\n", 5)[-5:])
    for chunk in (head, tail):
        m = None
        if "-*-" in chunk:
            m = _EMACS.search(chunk)
        if m is None and ("vi" in chunk or "Vi" in chunk or "ex:" in chunk) and ("ft" in chunk or "filetype" in chunk or "syntax" in chunk):
            m = _VIM.search(chunk)
        if m:
            return index().by_alias.get(m.group(1).lower())
    return None


def interpreter(text: str) -> str | None:
    """The interpreter a `#!` line names: `#!/usr/bin/env python3.11` -> "python3"."""
    if not text.startswith("#!"):
        return None
    first = text.split("\n", 1)[0]
    m = re.match(r"#!\s*(\S+)", first)
    if not m:
        return None
    rest = first[m.end() :]
    script = m.group(1).rsplit("/", 1)[-1]
    if script == "env":
        rest = re.sub(r"^\s+(?:(?:-[i0uCSv]*|--\S+)\s+|[A-Za-z_]+=\S+\s+)*", "", rest)
        parts = rest.split()
        if not parts:
            return None
        script = parts[0]
    script = re.sub(r"\.\d+$", "", script)
    if script == "sh":
        for line in text.split("\n", 5)[:5]:
            m = _EXEC_HACK.search(line)
            if m:
                script = m.group(1)
                break
    return script.rsplit("/", 1)[-1]


def _narrow(found: list[str], cands: list[str]) -> list[str]:
    return [c for c in cands if c in found] if cands else found


def by_modeline(name, text, cands):
    lang = modeline(text)
    return _narrow([lang], cands) if lang else []


def by_filename(name, text, cands):
    return _narrow(index().by_filename.get(name, []), cands) if name else []


def by_shebang(name, text, cands):
    interp = interpreter(text)
    return _narrow(index().by_interpreter.get(interp, []), cands) if interp else []


def by_extension(name, text, cands):
    if not name:
        return []
    dot = name.find(".")
    langs = _extension_languages(name[dot:].lower()) if dot >= 0 else ()
    if langs is None:  # a generic extension (.in, .tpl, ...): no answer from it
        return cands
    return _narrow(list(langs), cands) if langs else []


@functools.lru_cache(maxsize=1 << 12)
def _extension_languages(suffix: str) -> tuple[str, ...] | None:
    """Languages of the longest known extension of a name's dotted suffix ("x.tar.gz" -> ".tar.gz");
    None where an extension is generic. One answer per suffix, so the lookups run once per suffix."""
    exts = extnames(suffix)
    if any(e in index().generic_extensions for e in exts):
        return None
    for e in exts:
        langs = index().by_extension.get(e)
        if langs:
            return tuple(langs)
    return ()


def by_xml(name, text, cands):
    if cands or not name:  # content-only: the classifier tells XML from the XML-based formats
        return cands
    return ["XML"] if "<?xml version=" in "\n".join(text.split("\n", 2)[:2]) else []


_MANPAGE = re.compile(r"\.(?:[1-9](?![0-9])[a-z_0-9]*|0p|n|man|mdoc)(?:\.in)?$", re.I)


def by_manpage(name, text, cands):
    if name and _MANPAGE.search(name):
        return _narrow(["Roff Manpage", "Roff"], cands)
    return []


def by_heuristics(name, text, cands):
    if not name:
        return []
    return list(heuristics.heuristic_languages(name, text) or ())


STRATEGIES = [
    ("modeline", by_modeline),
    ("filename", by_filename),
    ("shebang", by_shebang),
    ("extension", by_extension),
    ("xml", by_xml),
    ("manpage", by_manpage),
    ("heuristics", by_heuristics),
]


def by_shared_extension(text: str, ranked: list[str], top: int = 3) -> str:
    """Content only: when the classifier's best few languages share an extension that has
    heuristics (C, C++ and Objective-C for `.h`), the rule of that extension whose patterns match
    the text decides between them, as with a file name (+0.4 points content-only in k-fold)."""
    best, langs, head = ranked[:top], index().languages, text[: heuristics.CONSIDER_BYTES]
    exts = [{e.lower() for e in langs[lang].extensions} if lang in langs else set() for lang in best]
    votes = set()
    for e in sorted(exts[0].intersection(set().union(*exts[1:]))):
        rule = next((r for r in heuristics.rules_for(e) or () if r.positive and r.matches(head)), None)
        if rule is not None and len(rule.languages) == 1 and rule.languages[0] in best:
            votes.add(rule.languages[0])
    return votes.pop() if len(votes) == 1 else best[0]


def detect(name: str | None, text: str, model=None) -> tuple[str | None, str, float]:
    """(Linguist language or None, deciding strategy, confidence) for a file name (None: content only)."""
    cands: list[str] = []
    for strategy, fn in STRATEGIES:
        found = fn(name, text, cands)
        if len(found) == 1:
            return found[0], strategy, CONFIDENCE[strategy]
        if found:
            cands = found
    if name and not cands:
        return None, "none", 0.0
    if model is None:
        from langs import classifier  # numpy and the model load only where a file needs them

        model = classifier.model()
    ranked = model.classify(text, cands or None)
    if not ranked or ranked[0][1] <= 0.0:
        # nothing to tell the candidates apart: Linguist keeps the first
        return (cands[0], "classifier", 1.0 / len(cands)) if cands else (None, "none", 0.0)
    if not cands:  # content only, over all classes
        decided = by_shared_extension(text, [lang for lang, _ in ranked])
        if decided != ranked[0][0]:
            return decided, "heuristics", CONFIDENCE["heuristics"]
    # confidence: the winner's share of the two best scores (0.5 is a tie)
    top = ranked[0][1]
    second = max(ranked[1][1], 0.0) if len(ranked) > 1 else 0.0
    return ranked[0][0], "classifier", round(top / (top + second), 4)
