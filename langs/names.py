"""DeepSeek-Coder-V2's 338 language names and how Linguist's names map onto them.

`data/deepseek_to_linguist.tsv` (the label set) maps 302 names to a Linguist language; 36 have
no Linguist counterpart and are found by the filename globs of their Pygments lexer.

Many-to-one rule. Where several DeepSeek names share one Linguist language, the file's name
decides, deterministically, and the first name listed in `SPLITS` is the default:

    Linguist      DeepSeek name chosen
    Assembly      NASM for .nasm/.nas, else Assembly
    C++           Arduino for .ino, else C++
    COBOL         COBOLFree for .cbl (Pygments' free-format glob), else COBOL
    Dockerfile    Docker for *.docker (Pygments), else Dockerfile
    Fortran       Fortran Fixed Form for .f/.for/.f77 (Pygments' fixed-form globs), else Fortran
    HTML+ERB      RHTML for .rhtml, else HTML ERB
    JavaScript    JSX for .jsx, JavaScript MozPreproc for *.js.in, else JavaScript
    MATLAB        Octave when the text uses Octave-only syntax (see `OCTAVE`), else MATLAB
    Pug           Jade for .jade, else Pug
    R             Rd for .rd, RConsole for .rout, S for .ssc (S-PLUS), else R
    Zeek          Bro for .bro, else Zeek
    xBase         FoxPro for .prg (Pygments' FoxPro glob), else XBase
    MQL4, MQL5    MQL (DeepSeek's one name for both)

A Linguist language outside the table falls back to its Linguist `group` when that group is a
DeepSeek name (Fortran Free Form -> Fortran, TSX -> TypeScript, Roff Manpage -> Groff). Only
when neither maps is the file outside the 338; then the Pygments-only globs get a say, unless
a Linguist language of the 338 also claims the extension: `.k` (Linguist: KCL or KFramework) is
K, but a `.m` file that Linguist calls Mercury stays outside rather than becoming Mason.
"""

from __future__ import annotations

import csv
import fnmatch
import functools
import os
import re

from langs.linguist import DATA, extnames, index

# Kinds of the 36 names Linguist lacks (their globs come from their Pygments lexers).
PYGMENTS_KIND = {
    "AMD GPU": "programming", "ANSYS Parametric Design Language": "programming", "AmbientTalk": "programming",
    "BC": "programming", "BNF": "data", "CADL": "data", "CapDL": "data", "DASM16": "programming",
    "DeviceTree": "data", "ELPi": "programming", "Execline": "programming", "Felix": "programming",
    "FreeFem": "programming", "GSQL": "programming", "Inform 6 Template": "programming", "JAGS": "programming",
    "K": "programming", "Kconfig": "data", "Lighttpd Configuration File": "data", "Mason": "markup",
    "Maxima": "programming", "Mizar": "programming", "Mosel": "programming", "NuSMV": "programming",
    "OMG Interface Definition Language": "data", "PEG": "data", "QVTO": "programming", "Ride": "programming",
    "SARL": "programming", "ShExC": "data", "Silver": "programming", "Terminfo": "data",
    "Treetop": "programming", "TypoScript": "data", "USD": "data", "Xtlang": "programming",
}
# Globs beyond Pygments': Mizar has no lexer; the rest are split names whose files Linguist does not know.
EXTRA_GLOBS = {
    "Mizar": ("*.miz",),
    "JavaScript MozPreproc": ("*.js.in",),
    "RConsole": ("*.Rout",),
    "S": ("*.ssc",),
    "Docker": ("*.docker",),
}

# Linguist language -> [(DeepSeek name, lower-case extensions)]; the last entry, with no extensions, is the default.
SPLITS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "Assembly": [("NASM", (".nasm", ".nas")), ("Assembly", ())],
    "C++": [("Arduino", (".ino",)), ("C++", ())],
    "COBOL": [("COBOLFree", (".cbl",)), ("COBOL", ())],
    "Dockerfile": [("Docker", (".docker",)), ("Dockerfile", ())],
    "Fortran": [("Fortran Fixed Form", (".f", ".for", ".f77")), ("Fortran", ())],
    "HTML+ERB": [("RHTML", (".rhtml",)), ("HTML ERB", ())],
    "JavaScript": [("JSX", (".jsx",)), ("JavaScript MozPreproc", (".js.in",)), ("JavaScript", ())],
    "Pug": [("Jade", (".jade",)), ("Pug", ())],
    "R": [("Rd", (".rd",)), ("RConsole", (".rout",)), ("S", (".ssc",)), ("R", ())],
    "Zeek": [("Bro", (".bro",)), ("Zeek", ())],
    "xBase": [("FoxPro", (".prg",)), ("XBase", ())],
    "MQL4": [("MQL", ())],
    "MQL5": [("MQL", ())],
}
# Octave-only syntax: end-keywords, `#`/`%{` comments with `#`, `!=`, printf/disp with double quotes, ++/+=.
OCTAVE = re.compile(r"^\s*(?:end(?:function|if|for|while|switch|_try_catch|_unwind_protect)\b|#(?!#)|1;\s*$)|\b(?:printf|puts|fdisp)\s*\(", re.M)


@functools.cache
def table() -> dict[str, dict]:
    """DeepSeek name -> {"linguist": str | None, "kind": str, "globs": tuple}."""
    from pygments.lexers._mapping import LEXERS  # a plain table; imports no lexer

    by_lexer = {v[1]: v[3] for v in LEXERS.values()}
    langs = index().languages
    out: dict[str, dict] = {}
    with open(os.path.join(DATA, "deepseek_to_linguist.tsv"), encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            ds, ling = row["deepseek_name"], row["linguist_name"] or None
            out[ds] = {
                "linguist": ling,
                "kind": langs[ling].kind if ling else PYGMENTS_KIND[ds],
                "globs": () if ling else tuple(by_lexer.get(row["pygments_lexer_name"], ())),
            }
    for ds, globs in EXTRA_GLOBS.items():
        out[ds]["globs"] += globs
    return out


def names() -> list[str]:
    return list(table())


@functools.cache
def _direct() -> dict[str, str]:
    """Linguist name -> DeepSeek name, for Linguist names that one DeepSeek name claims."""
    d: dict[str, str] = {}
    for ds, row in table().items():
        if row["linguist"] and row["linguist"] not in SPLITS and row["linguist"] != "MATLAB":
            d[row["linguist"]] = ds
    return d


@functools.cache
def _glob_rules() -> tuple[re.Pattern, list[str]]:
    """Pygments-only globs (case-sensitive, as Pygments matches them) as one regexp of numbered
    alternatives, tried in order, and the DeepSeek name of each."""
    parts, langs = [], []
    for ds, row in table().items():
        if row["linguist"] is None or ds in EXTRA_GLOBS:
            for g in row["globs"]:
                parts.append(f"({fnmatch.translate(g)})")
                langs.append(ds)
    return re.compile("|".join(parts)), langs


@functools.lru_cache(maxsize=1 << 12)
def glob_name(basename: str) -> str | None:
    """The DeepSeek name whose Pygments-only glob matches this file name, if any (~60 globs in one
    regexp: names a repository repeats, such as README or Makefile, are tried once)."""
    rx, langs = _glob_rules()
    m = rx.match(basename)
    return langs[m.lastindex - 1] if m else None


def claimed(basename: str) -> bool:
    """Whether a Linguist language that maps into the 338 claims this file name or extension."""
    idx = index()
    langs = list(idx.by_filename.get(basename, []))
    for e in extnames(basename):
        if e in idx.by_extension:
            langs += idx.by_extension[e]
            break
    return any(deepseek_name(lang, basename) for lang in langs)


def deepseek_name(linguist: str | None, basename: str | None, text: str = "") -> str | None:
    """Map a Linguist language to a DeepSeek name with the documented many-to-one rule."""
    if linguist is None:
        return None
    if linguist == "MATLAB":
        return "Octave" if OCTAVE.search(text) else "MATLAB"
    split = SPLITS.get(linguist)
    if split:
        low = (basename or "").lower()
        for ds, exts in split:
            if not exts or any(low.endswith(e) for e in exts):
                return ds
    ds = _direct().get(linguist)
    if ds is None:
        group = index().languages[linguist].group if linguist in index().languages else None
        if group and group != linguist:
            ds = _direct().get(group) or (deepseek_name(group, basename, text) if group in SPLITS else None)
    return ds
