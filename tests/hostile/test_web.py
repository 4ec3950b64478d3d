"""Web pages that are not text: binary bytes served as HTML, wrong declared charsets, two encodings
in one page. Each is re-decoded or dropped with its reason; the thresholds are recipe keys."""

from __future__ import annotations

import os
import random

import pytest
from conftest import read_stage

from pipeline.web import charset
from pipeline.web.writer import response_record, write_warc

from .corpus import books, dropped

PROSE = "Le café de la gare est fermé le dimanche; la crème brûlée y est très appréciée. " * 20
BINARY = random.Random(16).randbytes(3000)


def html(body: str) -> str:
    return f"<html><head><title>t</title></head><body><p>{body}</p></body></html>"


def utf8_then_latin1() -> bytes:
    """Half a page in UTF-8, half in latin-1: two encodings that no one codec decodes."""
    return html(PROSE).encode("utf-8") + html(PROSE).encode("latin-1")


PAGES = {
    "plain": (html(PROSE).encode(), "text/html; charset=utf-8", "kept"),
    "binary, no charset": (BINARY, "text/html", "binary_content"),
    "binary, declared latin-1": (BINARY, "text/html; charset=iso-8859-1", "binary_content"),
    "binary, declared utf-8": (BINARY, "text/html; charset=utf-8", "binary_content"),
    "NUL-filled page": (b"<html>" + b"\x00\x01\x02\x03" * 500 + b"</html>", "text/html", "binary_content"),
    "utf-8 declared latin-1": (html(PROSE).encode("utf-8"), "text/html; charset=iso-8859-1", "kept"),
    "latin-1 declared utf-8": (html(PROSE).encode("latin-1"), "text/html; charset=utf-8", "kept"),
    "utf-8 and latin-1 mixed, declared utf-8": (utf8_then_latin1(), "text/html; charset=utf-8", "mojibake"),
    "utf-8 and latin-1 mixed, declared latin-1": (utf8_then_latin1(), "text/html; charset=latin-1", "mojibake"),
    "utf-8 with one stray byte": (html(PROSE).encode() + b"\xff", "text/html; charset=utf-8", "kept"),
}


def warc(tmp_path, names):
    path = tmp_path / "pages.warc.gz"
    write_warc(str(path), [response_record(f"https://site.org/{i}", PAGES[n][0], PAGES[n][1]) for i, n in enumerate(names)])
    return path


def test_every_page_is_kept_readable_or_dropped_with_its_reason(run_recipe, tmp_path):
    names = sorted(PAGES)
    run_dir = run_recipe([{"name": "w", "kind": "web_ingest", "paths": [str(warc(tmp_path, names))]}])
    st = books(run_dir, "w")
    want: dict[str, int] = {}
    for n in names:
        if PAGES[n][2] != "kept":
            want[PAGES[n][2]] = want.get(PAGES[n][2], 0) + 1
    assert dropped(st) == want
    kept = {d.metadata["url"]: d for d in read_stage(run_dir, "w")}
    assert len(kept) == sum(1 for n in names if PAGES[n][2] == "kept")
    for i, n in enumerate(names):
        if PAGES[n][2] == "kept":
            text = kept[f"https://site.org/{i}"].text
            assert "crème brûlée" in text and "Ã" not in text  # decoded right, no mojibake
            assert text.count("\ufffd") <= 1


def test_thresholds_are_recipe_keys(run_recipe, tmp_path):
    names = ["binary, declared latin-1", "utf-8 and latin-1 mixed, declared utf-8"]
    stage = {"name": "w", "kind": "web_ingest", "paths": [str(warc(tmp_path, names))],
             "max_binary_fraction": 1.0, "max_bad_utf8_fraction": 1.0}
    st = books(run_recipe([stage]), "w")
    assert st["kept"]["docs"] == 2 and not st["dropped"]


@pytest.mark.parametrize("body, declared, want", [
    ("naïve".encode(), "iso-8859-1", ("naïve", "utf-8")),
    (b"plain ascii", "iso-8859-1", ("plain ascii", "iso8859-1")),
    ("café".encode("latin-1"), "iso-8859-1", ("café", "iso8859-1")),
    ("façade".encode("cp1252"), "utf-8", ("façade", "cp1252")),
    ("naïve".encode("utf-16"), "utf-16", ("naïve", "utf-16")),
])
def test_decode_prefers_valid_utf8_over_a_wrong_declaration(body, declared, want):
    assert charset.decode_html(body, declared) == want


def test_binary_fraction():
    assert charset.binary_fraction("") == 0.0
    assert charset.binary_fraction("ab\n\t") == 0.0
    assert charset.binary_fraction("a\x00\ufffd\x85") == 0.75


def test_a_warc_that_is_a_fifo_is_skipped(run_recipe, tmp_path):
    warc(tmp_path, ["plain"])
    os.mkfifo(tmp_path / "stuck.warc.gz")
    st = books(run_recipe([{"name": "w", "kind": "web_ingest", "paths": [str(tmp_path / "*.warc.gz")]}]), "w")
    assert dropped(st) == {"unreadable_file": 1} and st["kept"]["docs"] == 1
