"""The language tagger: label set, cascade, exclusions, natural-language ID, content-only tagging, bounded reads."""

from __future__ import annotations

import os
import random

import pytest
from conftest import LANGS_SHARED

from langs import Tag, detect_language, names, tag
from langs.linguist import index
from langs.tagger import CONSIDER_BYTES


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
    if not os.path.isdir(LANGS_SHARED):
        pytest.skip("../shared/data/langs is absent")
    with open(os.path.join(LANGS_SHARED, "deepseek_coder_v2_langs.txt"), encoding="utf-8") as f:
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


def test_content_only_heuristics_decide_between_languages_sharing_an_extension():
    from langs.cascade import by_shared_extension

    objc = "#import <Foundation/Foundation.h>\n@interface A : NSObject\n@end\n"
    assert by_shared_extension(objc, ["C", "Objective-C", "C++"]) == "Objective-C"  # .h's rule decides
    assert by_shared_extension(objc, ["C", "C++", "Python"]) == "C"  # the rule's language is not a candidate
    assert by_shared_extension(objc, ["C", "Python", "Ruby"]) == "C"  # no shared extension: the classifier's choice
    assert by_shared_extension("int main(void) { return 0; }\n", ["C++", "C"]) == "C++"  # only rules with patterns vote
