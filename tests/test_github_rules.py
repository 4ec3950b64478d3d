"""DeepSeek-Coder's file rules at their boundaries, the syntax signal, and the filter stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import read_stage

from pipeline.github import rules, syntax
from pipeline.github.rules import Thresholds, check

WORD = "abcdefghij"


def lines_of(lengths: list[int]) -> str:
    return "\n".join((WORD * (n // 10 + 1))[:n] for n in lengths) + "\n"


def test_average_line_length_boundary():
    assert check(lines_of([100] * 100), "Python") is None
    text = lines_of([100] * 99 + [101])  # average 100.01
    assert rules.line_stats(text, 1000) == (pytest.approx(100.01), False)
    assert check(text, "Python") == "avg_line_length"


@pytest.mark.parametrize("size", [40, 5000])  # short texts use str/bytes methods, long ones numpy
@pytest.mark.parametrize("piece", ["ab\n", "ab\r\n", "a\rb\n", "ab\x0c\n", "a\u2028b\n", "\u00e9t\u00e9 \u4e2d\n", "12 _\n"])
def test_line_and_letter_counts_follow_the_str_definitions(piece, size):
    text = (piece * (size // len(piece) + 1))[:size] + "tail"
    lengths = [len(line) for line in text.splitlines()]
    assert rules.line_stats(text, 3) == (sum(lengths) / len(lengths), max(lengths) > 3)
    assert rules.alpha_fraction(text) == sum(c.isalpha() for c in text) / len(text)


def test_counts_match_the_str_definitions_on_random_text():
    """Mixed scripts, lone surrogates and every kind of line break, around the numpy threshold and the
    distinct-character shortcut."""
    import random

    rng = random.Random(7)
    alphabet = list("ab Z9_\t") + ["\n"] * 4 + ["\r", "\r\n", "\x0c", "\x85", "\u2028", "\u00e9", "\u00b2", "\u4e2d", "\ud800",
                                                 "\U0001d400", "\u0663"]
    for n in (1, 30, 300, 3000, 4100, 9000):
        plain = 11  # the first `plain` are ASCII with "\n" as the only break
        for weights in ((1,) * plain + (0,) * (len(alphabet) - plain), (1,) * len(alphabet)):
            text = "".join(rng.choices(alphabet, weights=weights, k=n))
            lengths = [len(line) for line in text.splitlines()] or [0]
            assert rules.line_stats(text, 40) == (pytest.approx(sum(lengths) / len(lengths)), max(lengths) > 40), (n, weights)
            assert rules.alpha_fraction(text) == sum(c.isalpha() for c in text) / len(text), (n, weights)


def test_maximum_line_length_boundary():
    assert check(lines_of([1000] + [10] * 20), "Python") is None
    assert check(lines_of([1001] + [10] * 20), "Python") == "max_line_length"


@pytest.mark.parametrize("at", [0, 7, 250, 499, 500, 3001])
@pytest.mark.parametrize("longest", [1000, 1001, 1999])
def test_maximum_line_length_in_long_texts(at, longest):
    """Long texts skip the line walk where every aligned block of 500 characters holds a break: a line
    just over the limit must still be found wherever it starts."""
    text = "\n" * at + lines_of([longest] + [10] * 600) + "x" * 3  # the long line starts at `at`
    lengths = [len(line) for line in text.splitlines()]
    assert len(text) > rules._NUMPY_FROM and max(lengths) == longest
    assert rules.line_stats(text, 1000) == (sum(lengths) / len(lengths), longest > 1000)


def test_alphabetic_fraction_boundary():
    assert check("a" * 25 + "1" * 75, "Python") is None  # exactly 25%
    assert check("a" * 24 + "1" * 76, "Python") == "low_alpha"


def test_xml_declaration_within_first_100_chars_except_xslt():
    body = "<root>" + "hello world " * 10 + "</root>\n"
    early = "\n" * 86 + '<?xml version="1.0"?>' + body  # the marker starts at 86, ends at 100
    assert check(early, "XML") == "xml"
    assert check(early, "XSLT") is None
    late = "\n" * 87 + '<?xml version="1.0"?>' + body  # no longer complete within 100 characters
    assert check(late, "XML") is None


def html(visible: str, pad: int) -> str:
    """A page with `pad` lines of CSS (invisible) and `visible` as paragraph text, short lines only."""
    style = "p{color:red}\n" * pad
    return f"<html>\n<head>\n<style>\n{style}</style>\n</head>\n<body>\n<p>\n{visible}\n</p>\n</body>\n</html>\n"


def test_html_visible_text_share():
    words = "word\n" * 40  # 199 visible characters once whitespace collapses
    assert len(rules.visible_text(html(words, 0))) == 199
    n = 0  # add invisible CSS until the visible share falls under 20%
    while len(rules.visible_text(html(words, n))) >= 0.2 * len(html(words, n)):
        n += 1
    assert check(html(words, n - 1), "HTML") is None
    assert check(html(words, n), "HTML") == "html_visible_text"
    assert check(html(words, n), "Python") is None  # only HTML is judged by its visible text


def test_html_visible_text_minimum_100_chars():
    at_100 = "ab\n" * 32 + "abcd"  # 32 * "ab " + "abcd" = 100 visible characters
    at_99 = "ab\n" * 32 + "abc"
    assert len(rules.visible_text(html(at_100, 0))) == 100 and len(rules.visible_text(html(at_99, 0))) == 99
    assert check(html(at_100, 0), "HTML") is None
    assert check(html(at_99, 0), "HTML") == "html_visible_text"


@pytest.mark.parametrize("lang", ["JSON", "YAML"])
def test_json_and_yaml_size_window(lang):
    def doc(n: int) -> str:  # exactly n characters of short lines
        return ('"abcdefgh": 1,\n' * (n // 15 + 1))[:n] if lang == "JSON" else ("abcdefgh: ij\n" * (n // 13 + 1))[:n]

    assert check(doc(49), lang) == "json_yaml_size"
    assert check(doc(50), lang) is None
    assert check(doc(5000), lang) is None
    assert check(doc(5001), lang) == "json_yaml_size"
    assert check(doc(5001), "Python") is None  # other languages have no size window


def test_thresholds_come_from_the_caller():
    text = lines_of([60] * 10)
    assert check(text, "Python", Thresholds(max_avg_line_length=50)) == "avg_line_length"


def test_syntax_error_ratio():
    assert syntax.error_ratio("Python", b"x = 1\n") == 0.0
    bad = syntax.error_ratio("Python", b"def f(:\n    pass\nx = 1\n")
    assert 0 < bad < 1
    assert syntax.error_ratio("C++", b"int main() { return 0; }\n") == 0.0
    assert syntax.error_ratio("Go", b"package main\nfunc main() {\n") > 0  # a MISSING brace
    assert syntax.error_ratio("NoSuchLanguage", b"x") is None


def test_filter_stage_counts_each_rule_and_records_syntax(run_recipe, tmp_path):
    repo = tmp_path / "repos" / "r"
    repo.mkdir(parents=True)
    files = {
        "ok.py": "def f(x):\n    return x + 1\n",
        "broken.py": "def f(:\n    return (\n",
        "wide.py": lines_of([101] * 5),
        "long.py": lines_of([1001] + [10] * 20),
        "digits.py": "1234567890\n" * 20,
        "data.xml": '<?xml version="1.0"?>\n<a>hello there</a>\n',
        "tiny.json": '{"abc": "defgh"}\n',
    }
    for name, text in files.items():
        (repo / name).write_text(text)
    stages = [
        {"name": "files", "kind": "github_files", "paths": [str(repo)], "layout": "repo"},
        {"name": "filter", "kind": "github_filter", "input": "files", "max_syntax_error_ratio": 0.5},
        {"name": "loose", "kind": "github_filter", "input": "files", "max_avg_line_length": 200, "max_line_length": 2000},
    ]
    run_dir = run_recipe(stages)
    st = json.loads(Path(run_dir, "filter", "_stats.json").read_text())
    assert st["balanced"] and st["in"]["docs"] == 7
    dropped = {k: v["docs"] for k, v in st["dropped"].items()}
    assert dropped == {"avg_line_length": 1, "max_line_length": 1, "low_alpha": 1, "xml": 1, "json_yaml_size": 1,
                       "syntax_errors": 1}
    kept = read_stage(run_dir, "filter")
    assert [d.metadata["path"] for d in kept] == ["ok.py"] and kept[0].metadata["syntax_error_ratio"] == 0.0
    loose = json.loads(Path(run_dir, "loose", "_stats.json").read_text())
    assert "avg_line_length" not in loose["dropped"] and "max_line_length" not in loose["dropped"]
    assert {d.metadata["path"] for d in read_stage(run_dir, "loose")} == {"ok.py", "broken.py", "wide.py", "long.py"}
    from pipeline.github.stages import GithubFilter

    ((title, html),) = GithubFilter.report_sections(str(Path(run_dir, "loose")), loose)
    assert title == "Syntax signal" and "4 files with a grammar; 3 parse without errors" in html
