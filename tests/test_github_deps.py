"""Dependency parsing per language, DeepSeek-Coder's order on a repo with a cycle, and
repo-level documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import read_stage

from pipeline.github.deps import Resolver, components, dependency_graph, dependency_order, imports
from pipeline.github.repo_docs import path_comment


@pytest.mark.parametrize("lang,src,expected", [
    ("Python", "import os, a.b as c\nfrom x.y import z, w as q\nfrom . import u\nfrom ..p import r\n",
     {("dep", "os"), ("dep", "a.b"), ("dep", "x.y"), ("dep", "x.y.z"), ("dep", "x.y.w"), ("pyrel", ".u"),
      ("pyrel", "..p"), ("pyrel", "..p.r")}),
    ("JavaScript", 'import a from "./a";\nconst b = require("../b");\nexport * from "./c";\nfoo("x");\n',
     {("rel", "./a"), ("rel", "../b"), ("rel", "./c")}),
    ("TypeScript", 'import { a } from "./a";\nexport { b } from "./b";\n', {("rel", "./a"), ("rel", "./b")}),
    ("Java", "import com.x.Foo;\nimport java.util.List;\nclass A {}\n", {("dep", "com.x.Foo"), ("dep", "java.util.List")}),
    ("C", '#include "foo/bar.h"\n#include <stdio.h>\n', {("rel", "foo/bar.h"), ("dep", "stdio.h")}),
    ("C++", '#include "util.hpp"\nint main() {}\n', {("rel", "util.hpp")}),
    ("C#", "using System.IO;\nusing Foo;\nclass A {}\n", {("dep", "System.IO"), ("dep", "Foo")}),
    ("Go", 'package main\nimport (\n\t"fmt"\n\t"example.com/m/pkg"\n)\n', {("dir", "fmt"), ("dir", "example.com/m/pkg")}),
    ("Rust", "use crate::a::b::C;\nuse std::io;\nmod util;\nfn main() {}\n",
     {("dep", "crate::a::b::C"), ("dep", "std::io"), ("mod", "util")}),
    ("PHP", '<?php\nuse App\\Models\\User;\nrequire_once "lib/x.php";\ninclude "y.php";\n',
     {("dep", "App\\Models\\User"), ("rel", "lib/x.php"), ("rel", "y.php")}),
    ("Ruby", 'require "json"\nrequire_relative "lib/z"\nputs 1\n', {("dep", "json"), ("rel", "lib/z")}),
    ("Lua", 'local m = require "foo.bar"\nrequire("baz")\n', {("dep", "baz")}),  # regex fallback: line starts only
    ("Perl", "use strict;\nuse My::Module;\n", {("dep", "strict"), ("dep", "My::Module")}),
])
def test_imports_per_language(lang, src, expected):
    assert set(imports(lang, src)) == expected


def test_resolution_by_language():
    files = {
        "src/app/main.py": ("Python", "from app.models import User\nfrom .util import helper\nimport os\n"),
        "src/app/models.py": ("Python", "X = 1\n"),
        "src/app/util.py": ("Python", "Y = 1\n"),
        "web/index.js": ("JavaScript", 'import x from "./lib/x";\nimport y from "../shared";\n'),
        "web/lib/x.js": ("JavaScript", "export default 1;\n"),
        "shared/index.js": ("JavaScript", "export default 2;\n"),
        "c/main.c": ("C", '#include "inc/defs.h"\n#include <stdio.h>\n'),
        "c/inc/defs.h": ("C", "#define X 1\n"),
        "go/cmd/main.go": ("Go", 'package main\nimport "example.com/proj/go/store"\n'),
        "go/store/a.go": ("Go", "package store\n"),
        "go/store/b.go": ("Go", "package store\n"),
        "java/com/acme/App.java": ("Java", "import com.acme.util.Strings;\nclass App {}\n"),
        "java/com/acme/util/Strings.java": ("Java", "class Strings {}\n"),
        "rs/src/main.rs": ("Rust", "mod parser;\nuse crate::parser::parse;\n"),
        "rs/src/parser.rs": ("Rust", "pub fn parse() {}\n"),
    }
    g = dependency_graph(files)
    assert g["src/app/main.py"] == {"src/app/models.py", "src/app/util.py"}
    assert g["web/index.js"] == {"web/lib/x.js", "shared/index.js"}
    assert g["c/main.c"] == {"c/inc/defs.h"}
    assert g["go/cmd/main.go"] == {"go/store/a.go", "go/store/b.go"}
    assert g["java/com/acme/App.java"] == {"java/com/acme/util/Strings.java"}
    assert g["rs/src/main.rs"] == {"rs/src/parser.rs"}
    assert g["src/app/models.py"] == set()


def test_ambiguous_module_resolves_to_the_closest_file():
    r = Resolver(["a/utils.py", "b/utils.py", "b/main.py"])
    assert r.resolve("b/main.py", "dep", "utils", "Python") == ["b/utils.py"]


def test_order_on_a_repo_with_a_cycle():
    # base <- a -> b -> c -> a (a cycle), app -> a; lone.py stands alone
    graph = {
        "base.py": set(),
        "a.py": {"base.py", "b.py"},
        "b.py": {"c.py"},
        "c.py": {"a.py"},
        "app.py": {"a.py"},
        "lone.py": set(),
    }
    assert components(graph) == [["a.py", "app.py", "b.py", "base.py", "c.py"], ["lone.py"]]
    # base first (no deps); then every remaining file has one unplaced dependency: the cycle is
    # broken at the smallest path among those (a.py), then c (its dependency a is placed), b, app
    assert dependency_order(graph) == ["base.py", "a.py", "app.py", "c.py", "b.py", "lone.py"]


def test_order_is_topological_without_cycles():
    graph = {"d.py": {"c.py"}, "c.py": {"b.py", "a.py"}, "b.py": {"a.py"}, "a.py": set()}
    assert dependency_order(graph) == ["a.py", "b.py", "c.py", "d.py"]


@pytest.mark.parametrize("path,lang,comment", [
    ("a/b.py", "Python", "# a/b.py"), ("x.rs", "Rust", "// x.rs"), ("i.html", "HTML", "<!-- i.html -->"),
    ("q.sql", "SQL", "-- q.sql"), ("s.css", "CSS", "/* s.css */"), ("m.erl", "Erlang", "% m.erl"),
    ("unknown.x", None, "// unknown.x"),
])
def test_path_comment_in_the_files_own_syntax(path, lang, comment):
    assert path_comment(path, lang) == comment


def test_repo_documents_stage(run_recipe, tmp_path):
    repos = tmp_path / "repos"
    r1 = repos / "calc"
    (r1 / "calc").mkdir(parents=True)
    (r1 / "calc" / "ops.py").write_text("def add(a, b):\n    return a + b\n")
    (r1 / "calc" / "cli.py").write_text("from calc.ops import add\n\nprint(add(1, 2))\n")
    (r1 / "web").mkdir()
    (r1 / "web" / "main.js").write_text('import { f } from "./lib.js";\nconsole.log(f());\n')
    (r1 / "web" / "lib.js").write_text("export function f() {\n  return 42;\n}\n")
    r2 = repos / "solo"
    r2.mkdir()
    (r2 / "only.go").write_text("package main\n\nfunc main() {}\n")
    stages = [
        {"name": "files", "kind": "github_files", "paths": [str(repos)]},
        {"name": "repos", "kind": "github_repo_docs", "input": "files"},
        {"name": "by_lang", "kind": "github_repo_docs", "input": "files", "group_by": "language"},
    ]
    run_dir = run_recipe(stages)
    st = json.loads(Path(run_dir, "repos", "_stats.json").read_text())
    assert st["balanced"] and st["in"]["docs"] == 5 and st["kept"]["docs"] == 2
    assert st["dropped"]["merged_into_repo"]["docs"] == 3
    docs = {d.id: d for d in read_stage(run_dir, "repos")}
    calc = docs["calc"]
    assert calc.metadata["files"] == ["calc/ops.py", "calc/cli.py", "web/lib.js", "web/main.js"]
    assert calc.metadata["dependencies"] == {"calc/cli.py": ["calc/ops.py"], "web/main.js": ["web/lib.js"]}
    assert calc.text.startswith("# calc/ops.py\ndef add(a, b):\n")
    assert "\n// web/lib.js\nexport function f()" in calc.text
    assert docs["solo"].text == "// only.go\npackage main\n\nfunc main() {}\n"
    by_lang = {d.id: d for d in read_stage(run_dir, "by_lang")}
    assert set(by_lang) == {"calc#Python", "calc#JavaScript", "solo#Go"}
    assert by_lang["calc#JavaScript"].metadata["files"] == ["web/lib.js", "web/main.js"]
    assert json.loads(Path(run_dir, "by_lang", "_stats.json").read_text())["balanced"]
    from pipeline.github.stages import GithubRepoDocs

    ((title, html),) = GithubRepoDocs.report_sections(str(Path(run_dir, "repos")), st)
    assert title == "Repo-level documents" and "2 documents, 5 files; 1 with resolved dependencies" in html
    assert "data:image/png;base64," in html
