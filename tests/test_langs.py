"""The language tagger: label set, cascade, exclusions, natural-language ID, step and CLI."""

from __future__ import annotations

import json
import os
import random

import pytest

from langs import Tag, detect_language, names, tag
from langs.linguist import index
from langs.tagger import CONSIDER_BYTES

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "langs")


def _inputs_for(ds: str):
    """(path, content) pairs that name the language the way real files do, then a modeline as a last resort."""
    row = names.table()[ds]
    for g in row["globs"]:
        yield g.replace("*", "x"), b"x\n"
    ling = row["linguist"]
    if ling is None:
        return
    lang = index().languages[ling]
    for split in names.SPLITS.get(ling, []):
        if split[0] == ds:
            for e in split[1]:
                yield "x" + e, b"x\n"
    for fn in lang.filenames:
        yield fn, b"x\n"
    for e in lang.extensions:
        yield "x" + e, b"x\n"
    for i in lang.interpreters:
        yield "script", f"#!/usr/bin/env {i}\n".encode()
    yield "x", f"# -*- mode: {ling.lower().replace(' ', '-')} -*-\n".encode()


def test_label_set_matches_shared_list():
    if not os.path.isdir(SHARED):
        pytest.skip("../shared/data/langs is absent")
    with open(os.path.join(SHARED, "deepseek_coder_v2_langs.txt"), encoding="utf-8") as f:
        assert names.names() == [line.rstrip("\n") for line in f if line.strip()]
    assert len(names.names()) == 338
    assert sum(1 for r in names.table().values() if r["linguist"] is None) == 36


def test_every_one_of_the_338_names_is_reachable():
    unreached = []
    by_name_alone = 0
    for ds in names.names():
        for path, content in _inputs_for(ds):
            if tag(path, content).language == ds:
                by_name_alone += b"-*-" not in content
                break
        else:
            unreached.append(ds)
    assert unreached == []
    assert by_name_alone >= 320  # almost all by a real file name, not a modeline


@pytest.mark.parametrize(
    "path,content,language,linguist",
    [
        ("a.h", b"#import <Foundation/Foundation.h>\n@interface A : NSObject\n@end\n", "Objective-C", "Objective-C"),
        ("a.h", b"#include <vector>\nnamespace x { class A { std::vector<int> v; }; }\n", "C++", "C++"),
        ("a.h", b"#include <stdio.h>\nint f(void);\n", "C", "C"),
        ("a.m", b"#import \"A.h\"\n@implementation A\n- (void)f {}\n@end\n", "Objective-C", "Objective-C"),
        ("a.m", b"function y = f(x)\n  % square\n  y = x.^2;\nend\n", "MATLAB", "MATLAB"),
        ("a.m", b"function y = f(x)\n  # square\n  y = x.^2;\nendfunction\n", "Octave", "MATLAB"),
        ("a.pl", b"#!/usr/bin/perl\nuse strict;\nmy $x = 1;\n", "Perl", "Perl"),
        ("a.pl", b":- module(a, [f/1]).\nf(X) :- g(X).\n", None, "Prolog"),
        ("a.m", b":- module x.\n:- interface.\n:- pred main(io::di, io::uo) is det.\n", None, "Mercury"),  # not Mason's *.m
        ("a.ts", b"import { x } from './x';\nexport const y: number = 1;\n", "TypeScript", "TypeScript"),
        ("a.ts", b'<?xml version="1.0"?>\n<!DOCTYPE TS>\n<TS version="2.1"><context></context></TS>\n', "XML", "XML"),
        ("a.inc", b"<?php\necho 'x';\n", "PHP", "PHP"),
        ("a.cls", b"\\NeedsTeXFormat{LaTeX2e}\n\\ProvidesClass{x}\n", "TeX", "TeX"),
        ("a.md", b"# Title\n\nSome *text*.\n", None, "Markdown"),  # prose: not one of the 338
        ("a.rs", b"fn main() { println!(\"x\"); }\n", "Rust", "Rust"),
        ("a.jsx", b"const A = () => <div/>;\n", "JSX", "JavaScript"),
        ("a.js", b"const a = 1;\n", "JavaScript", "JavaScript"),
        ("man.Rd", b"\\name{f}\n\\alias{f}\n\\title{F}\n", "Rd", "R"),
        ("a.R", b"f <- function(x) x + 1\n", "R", "R"),
        ("a.bro", b"event bro_init() { print \"x\"; }\n", "Bro", "Zeek"),
        ("a.zeek", b"event zeek_init() { print \"x\"; }\n", "Zeek", "Zeek"),
        ("a.ino", b"void setup() {}\nvoid loop() {}\n", "Arduino", "C++"),
        ("a.jade", b"html\n  body\n", "Jade", "Pug"),
        ("a.f90", b"program x\nend program x\n", "Fortran", "Fortran Free Form"),
        ("a.f", b"      PROGRAM X\n      END\n", "Fortran Fixed Form", "Fortran"),
        ("Dockerfile", b"FROM debian\n", "Dockerfile", "Dockerfile"),
        ("Makefile", b"all:\n\techo\n", "Makefile", "Makefile"),
        ("a.tsx", b"export const A = () => <div/>;\n", "TypeScript", "TSX"),
        ("Kconfig", b"config FOO\n\tbool \"foo\"\n", "Kconfig", None),
        ("bin/tool", b"#!/usr/bin/env python3.11\nprint(1)\n", "Python", "Python"),
        ("a.txt", b"# vim: set ft=ruby:\nputs 1\n", "Ruby", "Ruby"),
    ],
)
def test_classic_ambiguities_resolve_as_linguist_does(path, content, language, linguist):
    t = tag(path, content)
    assert (t.language, t.linguist) == (language, linguist), t
    assert t.reason is None
    assert 0.0 < t.confidence <= 1.0


def test_tag_fields_and_strategies():
    t = tag("src/app.py", b"import os\n")
    assert t == Tag("Python", "Python", "programming", "extension", 0.95, None)
    assert tag("run", b"#!/bin/bash\necho hi\n").strategy == "shebang"
    assert tag("x.k", b"x").strategy == "pygments"  # Linguist: KCL or KFramework, outside the 338
    assert tag("README.md", b"# x\n").kind == "prose" or tag("README.md", b"# x\n").kind == "markup"
    for line in (b"# vim: set ft=ruby:", b"# vim: set filetype=ruby:", b"# -*- mode: ruby -*-"):
        t = tag("build", b"puts 1\n" + line + b"\n")
        assert (t.language, t.linguist, t.kind, t.strategy) == ("Ruby", "Ruby", "programming", "modeline"), line


@pytest.mark.parametrize(
    "path,content,reason",
    [
        ("a.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("a.c", b"", "empty"),
        ("a.c", b"  \n\t\n", "empty"),
        ("a.c", b"int x = 0; /* caf\xe9 */\n", "undecodable"),
        ("node_modules/left-pad/index.js", b"module.exports = 1;\n", "vendored"),
        ("vendor/lib/a.c", b"int x;\n", "vendored"),
        ("docs/conf.py", b"project = 'x'\n", "documentation"),
        ("package-lock.json", b'{"lockfileVersion": 3}\n', "generated"),
        ("api/foo.pb.go", b"package api\n", "generated"),
        ("x_pb2.py", b"# Generated by the protocol buffer compiler.  DO NOT EDIT!\n", "generated"),
        ("gen/x.go", b"// Code generated by stringer; DO NOT EDIT.\n\npackage x\n", "generated"),
        ("src/x.pb.cc", b"// Generated by the protocol buffer compiler.  DO NOT EDIT!\n", "generated"),
        ("static/app.js", b"function a(){return 1}" * 500, "generated"),
    ],
)
def test_exclusions_give_a_reason(path, content, reason):
    t = tag(path, content)
    assert t.reason == reason
    if reason in ("binary", "empty"):
        assert t.language is None and t.strategy == "excluded"


def test_excluded_source_keeps_its_language():
    assert tag("vendor/lib/a.c", b"int x;\n").language == "C"
    assert tag("a.c", b"int x = 0; /* caf\xe9 */\n").language == "C"


def test_never_raises_on_any_bytes():
    rng = random.Random(7)
    paths = [None, "", "x", "a.h", "a.m", "a.pl", "a.ts", "../../etc/passwd", "C:\\x\\y.cs", ".bashrc", "a." * 50]
    for i in range(300):
        n = rng.choice([0, 1, 3, 100, 5000])
        data = bytes(rng.getrandbits(8) for _ in range(n))
        if i % 3 == 0:
            data = data.replace(b"\x00", b" ")
        t = tag(rng.choice(paths), data)
        assert isinstance(t, Tag) and t.strategy != "error"
    assert tag("a.c", None).reason == "empty"  # type: ignore[arg-type]


class _Probe:
    """Bytes-like that records how far the tagger looks."""

    def __init__(self, data: bytes):
        self.data, self.furthest = data, 0

    def __len__(self):
        return len(self.data)

    def __getitem__(self, k):
        stop = k.stop if isinstance(k, slice) else k + 1
        self.furthest = max(self.furthest, len(self.data) if stop is None else stop)
        return self.data[k]


def test_a_50_mb_file_is_read_only_to_50_kib(tmp_path):
    big = (b"#include <stdio.h>\nint main(void) { return 0; }\n" * 1_100_000)[: 50 * 1024 * 1024]
    probe = _Probe(big)
    t = tag("big.c", probe)  # type: ignore[arg-type]
    assert t.language == "C"
    assert probe.furthest <= CONSIDER_BYTES == 50 * 1024
    assert tag(None, probe).linguist is not None  # type: ignore[arg-type]
    assert probe.furthest <= CONSIDER_BYTES


def test_cut_multibyte_character_at_the_limit_is_not_undecodable():
    text = ("é" * (CONSIDER_BYTES // 2 + 10)).encode()  # the limit falls inside a 2-byte character?
    text = b"x" + text
    assert tag("a.txt", text).reason is None


def test_content_only_ignores_the_name():
    import langs.step

    with open(langs.step.__file__, "rb") as f:
        py_src = f.read()
    assert tag("notes.txt", py_src).linguist == "Text"
    blind = tag("notes.txt", py_src, content_only=True)
    assert (blind.language, blind.strategy) == ("Python", "classifier")
    assert blind == tag(None, py_src)


def test_detect_language():
    code, score = detect_language("La pipeline lit les fichiers et écrit des fragments compressés sur le disque.")
    assert code == "fr" and 0.5 < score <= 1.0
    assert detect_language("Die Daten werden gelesen, gefiltert und wieder geschrieben.")[0] == "de"
    assert detect_language("   \n\t ") == (None, 0.0)


def test_cli_tag_jsonl_and_content_only(tmp_path, capsys):
    from pipeline.cli import main

    (tmp_path / "a.py").write_text("import os\nprint(os.getcwd())\n")
    (tmp_path / "b.bin").write_bytes(b"\x00\x01")
    assert main(["langs", "tag", "--jsonl", str(tmp_path / "a.py"), str(tmp_path / "b.bin")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["language"] for r in rows] == ["Python", None]
    assert set(rows[0]) == {"path", "language", "linguist", "kind", "strategy", "confidence"}
    assert rows[1]["reason"] == "binary"
    assert main(["langs", "tag", "--jsonl", "--content-only", str(tmp_path / "a.py")]) == 0
    assert json.loads(capsys.readouterr().out)["strategy"] == "classifier"
    assert main(["langs", "tag", str(tmp_path / "missing.c")]) == 1
    assert "missing.c" in capsys.readouterr().err


def test_cli_walks_directories_as_os_walk_does(tmp_path, capsys):
    """Files of a directory by name, then its subdirectories; `.git` and links to directories skipped;
    a FIFO is one line on stderr; paths are judged relative to the directory given."""
    from pipeline.cli import main

    (tmp_path / "z.py").write_text("print(1)\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "m.c").write_text("int main(void) { return 0; }\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "x.c").write_text("int x;\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / "a-link").symlink_to(tmp_path / "b", target_is_directory=True)
    os.mkfifo(tmp_path / "pipe")
    assert main(["langs", "tag", "--jsonl", str(tmp_path) + "/"]) == 0
    out = capsys.readouterr()
    rows = [json.loads(line) for line in out.out.splitlines()]
    assert [r["path"] for r in rows] == [str(tmp_path) + "/" + p for p in ("z.py", "b/m.c", "docs/x.c")]
    assert [r.get("reason") for r in rows] == [None, None, "documentation"]  # judged as "docs/x.c", not by tmp_path
    assert "pipe: skipped, not a regular file" in out.err


def test_langs_tag_starts_without_the_other_packages(tmp_path):
    """`codecurate langs tag` registers only the command modules up to its own: no datatrove, pydantic or fsspec
    (the other packages' flags are built from their stage classes), and no numpy where no file needs the classifier."""
    import subprocess
    import sys

    (tmp_path / "a.py").write_text("print(1)\n")
    code = ("import sys; from pipeline.cli import main; rc = main(['langs', 'tag', '--jsonl', sys.argv[1]]); "
            "print(rc, sorted(m for m in ('datatrove', 'pydantic', 'fsspec', 'numpy', 'dedup.stages') if m in sys.modules))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.py")], capture_output=True, text=True, check=True,
                         cwd=root, env={**os.environ, "PYTHONPATH": root}).stdout
    assert out.splitlines()[-1] == "0 []"


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


def _upstream(run_dir, recipe, stage, docs):
    """Write `docs` as a completed upstream stage, so the test exercises only tag_languages."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline import documents, storage
    from pipeline.runner import stage_hash

    d = os.path.join(run_dir, stage)
    os.makedirs(d, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([documents.to_row(x) for x in docs], schema=documents.SCHEMA), os.path.join(d, "part-00000.parquet"), compression="zstd")
    storage.write_json(os.path.join(d, "_stats.json"), {"balanced": True})
    with open(os.path.join(d, "_SUCCESS"), "w") as f:
        f.write(stage_hash(recipe, stage) + "\n")


def test_tag_languages_stage(tmp_path):
    import pyarrow.parquet as pq
    from datatrove.data import Document

    from pipeline import documents
    from pipeline.recipe import parse_recipe
    from pipeline.runner import Runner

    run_dir = str(tmp_path / "run")
    recipe = parse_recipe(
        {
            "name": "t",
            "run_dir": run_dir,
            "executor": "local",
            "stages": [
                {"name": "src", "kind": "github_files", "paths": [str(tmp_path)]},
                {"name": "tag", "kind": "tag_languages", "input": "src", "natural": True},
            ],
        }
    )
    docs = [
        Document(text="import os\n", id="1", metadata={"path": "a/b.py"}),
        Document(text="Ceci est un document rédigé en français, sans code.", id="2", metadata={"path": "docs/notes.txt"}),
        Document(text="#!/bin/sh\necho hi\n", id="3", metadata={}),
    ]
    _upstream(run_dir, recipe, "src", docs)
    Runner(recipe, workers=1, progress=False).run(["tag"])
    rows = pq.read_table(os.path.join(run_dir, "tag", "part-00000.parquet")).to_pylist()
    out = {d.id: d.metadata for d in map(documents.from_row, rows)}
    assert [r["lang"] for r in rows] == ["Python", None, "Shell"]  # the promoted column
    assert out["1"]["lang"] == "Python" and out["1"]["linguist"] == "Python" and out["1"]["lang_kind"] == "programming"
    assert out["1"]["lang_strategy"] == "extension" and out["1"]["lang_confidence"] == 0.95
    assert "lang_exclusion" not in out["1"]
    assert out["2"]["lang_exclusion"] == "documentation" and out["2"]["nl_lang"] == "fr"
    assert out["3"]["lang"] == "Shell" and out["3"]["lang_strategy"] == "shebang"
    with open(os.path.join(run_dir, "tag", "_stats.json")) as f:
        stats = json.load(f)
    assert stats["balanced"] and stats["in"]["docs"] == stats["kept"]["docs"] == 3
    from langs.step import TagLanguages

    [(title, body)] = TagLanguages.report_sections(os.path.join(run_dir, "tag"), stats)
    assert "lang/Python" in body and "exclusion/documentation" in body and "nl/fr" in body


def test_ruby_regexps_are_translated():
    from langs.heuristics import disambiguations, translate

    assert translate(r"^(?i)[^m]*mov\s+") == r"^(?i:[^m]*mov\s+)"
    assert translate(r"(?-m)^\s*using\s+x;\s*$") == r"^\s*using\s+x;\s*$"
    assert translate(r"\A\z") == r"\A\Z"
    assert translate(r"(?<v>a|b)(?:;\g<v>)*") == r"(?P<v>a|b)(?:;(?:a|b))*"
    assert len(disambiguations()) > 150  # every pattern of heuristics.yml compiles


def test_retrain_script_builds_a_working_model(tmp_path):
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
    out = tmp_path / "m.npz"
    assert train.main([str(tmp_path / "s"), "--output", str(out)]) == 0
    model = classifier.load(str(out))
    assert model.classes == ["C", "Python", "Ruby"]
    assert model.classify("def h(y):\n    return y\n")[0][0] == "Python"
    assert model.classify("int h(int y) { return y; }", ["C", "Ruby"])[0][0] == "C"
    assert train.main([str(tmp_path / "missing")]) == 2


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

    root = os.path.join(SHARED, "linguist-samples")
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
    from langs.classifier import features

    f = features("int x = 10;\n\tif (y) {\n")
    assert f["LF:int"] == f["LF:if"] == 1 and f["LL:;"] == f["LL:{"] == 1  # first and last token per line
    assert f["NUM"] == 1 and f["int x"] == 1  # numbers are one token; bigrams as before
    assert f["LS:a a = "] == f["LE:a = 0;"] == 1 and f["LS:a (a) "] == f["LE: (a) {"] == 1  # shapes, SHAPE_CHARS wide
    assert f["IND\t"] == 1 and f["SHAPE:a"] == 4 and "SHAPE:AA" not in f  # words only, not NUM
    assert features('s = "a b"\n')["STR\""] == 1


def test_content_only_heuristics_decide_between_languages_sharing_an_extension():
    from langs.cascade import by_shared_extension

    objc = "#import <Foundation/Foundation.h>\n@interface A : NSObject\n@end\n"
    assert by_shared_extension(objc, ["C", "Objective-C", "C++"]) == "Objective-C"  # .h's rule decides
    assert by_shared_extension(objc, ["C", "C++", "Python"]) == "C"  # the rule's language is not a candidate
    assert by_shared_extension(objc, ["C", "Python", "Ruby"]) == "C"  # no shared extension: the classifier's choice
    assert by_shared_extension("int main(void) { return 0; }\n", ["C++", "C"]) == "C++"  # only rules with patterns vote


def test_licence_header_prose_is_cut_for_the_classifier():
    from langs.classifier import features, without_licence

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
    from langs.classifier import features

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
