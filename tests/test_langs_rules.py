"""The tagger's parts: Linguist's heuristics (Ruby regexps translated, prefilters that change no answer) and
path rules, the content classifier (features, scores, retraining) and the caches of all three."""

from __future__ import annotations

import os

import pytest
from conftest import LANGS_SHARED


def test_class_scores_are_the_scores_of_those_classes():
    from langs import classifier

    m = classifier.model()
    text = "#import <Foundation/Foundation.h>\n@interface A : NSObject\n- (void)run;\n@end\n"
    full = m.scores(text)
    some = [m.classes.index(c) for c in ("C", "Objective-C", "C++", "Limbo")]
    assert m.class_scores(text, some) == pytest.approx([full[i] for i in some], abs=1e-5)
    assert m.classify(text, ["C", "Objective-C", "Not A Language"])[0][0] == "Objective-C"
    assert m.classify(text, ["C", "Not A Language"])[-1] == ("Not A Language", 0.0)


def test_path_rules_answer_the_same_from_their_cache(tmp_path, monkeypatch):
    from langs import exclusions

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    paths = ["node_modules/x.js", "docs/a.md", "a/b.min.js", "src/a.c", "vendor/x/y.rb", "b/docs/x.c"]
    groups = {"vendored": exclusions.load_yaml("vendor.yml"), "documentation": exclusions.load_yaml("documentation.yml")}
    built = exclusions.PathRules(groups)
    assert any(p.name.startswith("path-rules-") for p in (tmp_path / "codecurate").iterdir())
    cached = exclusions.PathRules(groups)
    expected = ["vendored", "documentation", "vendored", None, "vendored", None]
    assert [built.first(p) for p in paths] == [cached.first(p) for p in paths] == expected


def test_ruby_regexps_are_translated():
    from langs.heuristics import disambiguations, translate

    assert translate(r"^(?i)[^m]*mov\s+") == r"^(?i:[^m]*mov\s+)"
    assert translate(r"(?-m)^\s*using\s+x;\s*$") == r"^\s*using\s+x;\s*$"
    assert translate(r"\A\z") == r"\A\Z"
    assert translate(r"(?<v>a|b)(?:;\g<v>)*") == r"(?P<v>a|b)(?:;(?:a|b))*"
    assert len(disambiguations()) > 150  # every pattern of heuristics.yml compiles


def test_retrain_script_builds_a_working_model(tmp_path, capsys):
    """From Linguist's samples and labelled real files (`--real`, rows as `benchmarks/langs_real.py label` writes)."""
    import json

    from langs import classifier, train

    samples = {
        "Python": {"a.py": "def f(x):\n    return x\n", "b.py": "import os\nclass A:\n    def g(self):\n        pass\n"},
        "Ruby": {"a.rb": "def f(x)\n  x\nend\n", "b.rb": "require 'x'\nclass A\n  def g\n  end\nend\n"},
        "C": {"a.c": "#include <x.h>\nint f(int x) { return x; }\n", "b.c": "static int g(void) { return 0; }\n"},
    }
    for lang, files in samples.items():
        (tmp_path / "s" / lang).mkdir(parents=True)
        for fn, text in files.items():
            (tmp_path / "s" / lang / fn).write_text(text)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "main.go").write_text("package main\n\nfunc main() {\n\tfmt.Println(x)\n}\n")
    (pkg / "util.go").write_text("package util\n\nfunc Add(a, b int) int {\n\treturn a + b\n}\n")
    (pkg / "data.bin").write_bytes(b"\0\1")
    rows = [{"root": str(pkg), "path": p, "linguist": lang, "language": lang}
            for p, lang in (("main.go", "Go"), ("util.go", "Go"), ("data.bin", None))]
    (tmp_path / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "m.npz"
    assert train.main([str(tmp_path / "s"), "--real", str(tmp_path / "labels.jsonl"), "--output", str(out)]) == 0
    assert "6 samples + 2 real files, 4 languages" in capsys.readouterr().out
    model = classifier.load(str(out))
    assert model.classes == ["C", "Go", "Python", "Ruby"]
    assert model.classify("def h(y):\n    return y\n")[0][0] == "Python"
    assert model.classify("package x\n\nfunc Sub(a, b int) int {\n\treturn a - b\n}\n")[0][0] == "Go"
    assert model.classify("int h(int y) { return y; }", ["C", "Ruby"])[0][0] == "C"
    assert train.main([str(tmp_path / "s"), "--real", "none", "--output", str(out)]) == 0
    assert classifier.load(str(out)).classes == ["C", "Python", "Ruby"]
    assert train.main([str(tmp_path / "missing")]) == 2
    assert train.main([str(tmp_path / "s"), "--real", str(tmp_path / "nope.jsonl")]) == 2
    assert "no labelled real files at " + str(tmp_path / "nope.jsonl") + " (--real)" in capsys.readouterr().err


def test_path_prefilter_matches_exactly_what_the_regexps_match():
    import re

    from langs import exclusions
    from langs.linguist import load_yaml

    paths = [
        "node_modules/a.js", "src/jquery-1.2.min.js", "a/b/Godeps/_workspace/x.go", "dotnet-install.sh", "x/knockout-3.4.2.js",
        "types/a.d.ts", "docs/x.md", "Docs/x", "doc/x", "man/x.1", "a/man/x.1", "examples/a.py", "src/examples/a.py",
        "README", "readme.txt", "LICENSE-MIT", "CHANGELOG.md", "cache/x", "a/cache/x", "dist/x.js", "a/vendor/b.c", "vendors/x",
        "src/main.c", "pipeline/stages/filters.py", "Samples/x", "demo/x", "demos/x", "third_party/x", "a/.yarn/sdks/x",
        "bootstrap.min.css", "font-awesome.css", "config.guess", "configure", "configure.ac", "gradlew", "a/gradlew.bat",
    ]
    for name in ("vendor.yml", "documentation.yml"):
        pats = load_yaml(name)
        plain = re.compile("|".join(f"(?:{p})" for p in pats))
        rules = exclusions.PathRules(pats)
        assert [rules.first(p) is not None for p in paths] == [bool(plain.search(p)) for p in paths]


def test_line_break_search_finds_what_the_pattern_finds():
    """`after_line_break`: a "\n" prefix plus, where every match starts with one of a few characters, a
    lookahead for them; zero-width items, optional and empty-matching parts and local case folding
    leave the lookahead out or widen it, never narrow it."""
    import re

    from langs.regex_literals import after_line_break

    cases = {  # pattern -> the lookahead expected, then texts
        r"^\s*#\s*import": r"\n(?=[\s\#])",
        r"^(?!\.)(?:\.?(?:25[0-5]|1\d\d|[1-9]?\d)\b){4}": r"\n(?=[\.211-9\d])",
        r"^(?:abc)?$": None,  # may match an empty line
        r"^x*y": r"\n(?=[xy])",
        r"^(?i:end)\b": None,  # folded only inside: an unfolded class would miss "END"
        r"^[^#]+=": None,  # a negated class
        r"^(?:foo|\w+:)": r"\n(?=[f\w])",
    }
    texts = ["", "a\n  # import x\n", "x\n#import y", "1.2.3.4\n", "q\n10.0.0.1 host\n", "\n\n", "a\nabc\n", "a\nEND\n",
             "a\nxxxy", "a\ny", "a\n# k=v", "a\nk=v", "a\nfoo", "a\nbar:"]
    for pattern, ahead in cases.items():
        line = after_line_break(pattern, re.M)
        assert line.pattern.startswith(ahead or r"\n(?:"), pattern
        rx = re.compile(pattern, re.M)
        for t in texts:
            assert bool(rx.match(t) or line.search(t)) == bool(rx.search(t)), (pattern, t)
    assert after_line_break(r"(?i)^end", re.M).search("a\nEnd")  # folded everywhere: the class is folded too
    assert after_line_break(r"x^", re.M) is None and after_line_break(r"^x", 0) is None


def test_heuristics_prefilters_change_no_answer_on_linguist_samples():
    """Every heuristics regexp with a prefilter (strings, line breaks, first characters) finds a match in
    exactly the samples where the plain regexp does, over the samples its extension has."""
    from langs import heuristics

    root = os.path.join(LANGS_SHARED, "linguist-samples")
    if not os.path.isdir(root):
        pytest.skip("../shared/data/langs/linguist-samples is absent")
    by_ext: dict[str, list[str]] = {}
    for lang in os.listdir(root):
        for dirpath, _, files in os.walk(os.path.join(root, lang)):
            for fn in files:
                dot = fn.find(".")
                if dot >= 0:
                    with open(os.path.join(dirpath, fn), "rb") as f:
                        by_ext.setdefault(fn[dot:].lower(), []).append(f.read(heuristics.CONSIDER_BYTES).decode("utf-8", "replace"))
    checked = 0
    for ext, rules in heuristics.disambiguations().items():
        for rule in rules:
            for p in (p for alts in rule.positive + rule.negative for p in alts):
                for text in by_ext.get(ext, ()):
                    assert bool(p.search(text)) == bool(p.rx.search(text)), (ext, p.rx.pattern)
                    checked += 1
    assert checked > 5000


def test_classifier_features_include_line_layout():
    from langs.features import features

    f = features("int x = 10;\n\tif (y) {\n")
    assert f["LF:int"] == f["LF:if"] == 1 and f["LL:;"] == f["LL:{"] == 1  # first and last token per line
    assert f["NUM"] == 1 and f["int x"] == 1  # numbers are one token; bigrams as before
    assert f["LS:a a = "] == f["LE:a = 0;"] == 1 and f["LS:a (a) "] == f["LE: (a) {"] == 1  # shapes, SHAPE_CHARS wide
    assert f["IND\t"] == 1 and f["SHAPE:a"] == 4 and "SHAPE:AA" not in f  # words only, not NUM
    assert features('s = "a b"\n')["STR\""] == 1


def test_licence_header_prose_is_cut_for_the_classifier():
    from langs.features import features, without_licence

    gpl = ("## Copyright (C) 2001 Someone <someone@example.org>\n##\n"
           "## This program is free software: you can redistribute it and/or modify\n"
           "## it under the terms of the GNU General Public License as published by\n\n")
    code = "function y = dct2 (x, m, n)\n  if (nargin < 1 || nargin > 3)\n    print_usage;\n  endif\n"
    assert without_licence(gpl + code) == "## \n##\n## \n## \n\n" + code  # markers and code kept
    c_file = "/*\n * Licensed under the MIT license.\n */\n#include <stdio.h>\nint main(void) { return 0; }\n"
    assert without_licence(c_file) == "/*\n * \n */\n#include <stdio.h>\nint main(void) { return 0; }\n"
    assert without_licence(code) is code  # no licence words: nothing to do
    assert "License" not in features(gpl + code) and "print_usage" in features(gpl + code)


def test_classifier_tokens_by_kind():
    from langs.features import features

    f = features('#!/usr/bin/env python3\nx = "a b" + 0x1F + deadbeefdeadbeef0 <a href> fooBar\n')
    for feat in ("SHEBANG#!python", "STR\"", "NUM", "HEX", "<a", "href", "SHAPE:aA", "LF:x", "LL:fooBar", "SHEBANG#!python x"):
        assert f[feat] >= 1, feat
    assert "deadbeefdeadbeef0" not in f and "a b" not in f


def test_linguist_yaml_parse_is_cached(tmp_path, monkeypatch):
    from langs import linguist

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = linguist.load_yaml("generic.yml")
    cached = list((tmp_path / "codecurate").iterdir())
    assert len(cached) == 1 and linguist.load_yaml("generic.yml") == first
    cached[0].write_bytes(b"not marshal")  # a damaged cache entry is parsed again
    assert linguist.load_yaml("generic.yml") == first


def test_classifier_loads_the_same_from_its_cache(tmp_path, monkeypatch):
    from langs import classifier

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first, again = classifier.load(), classifier.load()  # the second reads the marshal cache
    assert any(p.name.startswith("classifier-") for p in (tmp_path / "codecurate").iterdir())
    text = "#include <stdio.h>\nint main(void) { printf(\"hi\\n\"); return 0; }\n"
    assert first.classify(text) == again.classify(text) and first.classes == again.classes


def test_vectorizer_counts_what_features_counts():
    """The classifier's fast path (ids and counts from numpy) against the feature strings it is trained on,
    and its token pattern against `_TOKEN`'s grammar, on every 8th of Linguist's samples."""
    import itertools
    import re

    import numpy as np

    from langs import classifier
    from langs.features import _TOKEN, _TOKENS_AND_BREAKS, Vectorizer, features, without_licence
    from langs.train import read_samples

    root = os.path.join(LANGS_SHARED, "linguist-samples")
    if not os.path.isdir(root):
        pytest.skip("../shared/data/langs/linguist-samples is absent")
    grammar = re.compile(r"[^\S\n]*(\n|" + re.sub(r"\(\?P<\w+>", "(?:", _TOKEN.pattern.split("|", 1)[1]) + ")", re.X)
    model = classifier.model()
    texts = [text for _, _, text in read_samples(root)[::8]]
    texts += ['#!/usr/bin/env python3\nx = "a b" + 0x1F + deadbeefdeadbeef0 <a href> fooBar\n', "#!\n", "#!/bin/sh", ""]
    forgetful = Vectorizer(model.vocab)
    forgetful.KEEP_TOKENS = 30_000  # more than a text holds (50 KiB), forgotten every ~100 texts
    forgetful._forget()
    for text in texts:
        cut = without_licence(text)
        assert _TOKENS_AND_BREAKS.findall(cut) == grammar.findall(cut)
        counts = features(text)
        ids = np.fromiter(map(model.vocab.get, counts, itertools.repeat(-1)), dtype=np.int64, count=len(counts))
        n = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
        order = np.argsort(ids)
        known = ids[order] >= 0
        for vectorize in (model._vectorizer, forgetful):
            got_ids, got_n = vectorize(text)
            assert np.array_equal(got_ids, ids[order][known]) and np.array_equal(got_n, n[order][known])
