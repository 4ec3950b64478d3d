"""Web ingest units: WARC reading with bad input, charsets, extraction of math and code, URLs."""

from __future__ import annotations

import gzip
import io

import pytest

from pipeline.web import charset, urls, warc
from pipeline.web.extract import extract
from pipeline.web.writer import gzip_member, http_response, response_record, warc_record


def pages(n: int) -> list[bytes]:
    return [response_record(f"https://site.org/{i}", f"<html><body><p>page {i}</p></body></html>") for i in range(n)]


def read(members: list[bytes], max_bytes: int = 1 << 20) -> list:
    out = []
    for r in warc.iter_stream(io.BytesIO(b"".join(members)), max_bytes):
        out.append(("skip", r.reason) if isinstance(r, warc.Skip) else r.url)
    return out


def test_reads_every_response_record_with_http_headers():
    recs = pages(3) + [warc_record("https://site.org/req", b"GET / HTTP/1.1\r\n\r\n", record_type="request")]
    got = list(warc.iter_stream(io.BytesIO(b"".join(gzip_member(r) for r in recs)), 1 << 20))
    assert [r.url for r in got] == ["https://site.org/0", "https://site.org/1", "https://site.org/2"]
    assert got[1].status == 200 and got[1].content_type == "text/html" and got[1].http_charset == "utf-8"
    assert got[1].payload == b"<html><body><p>page 1</p></body></html>"
    # uncompressed files and whole-file gzip read the same
    assert [r.url for r in warc.iter_stream(io.BytesIO(b"".join(recs)), 1 << 20)] == [r.url for r in got]
    assert [r.url for r in warc.iter_stream(io.BytesIO(gzip.compress(b"".join(recs))), 1 << 20)] == [r.url for r in got]


BAD = {
    "truncated gzip member (mid-file)": (lambda m: m[:len(m) // 2], "corrupt_gzip"),
    "garbage between members": (lambda m: b"not gzip at all" + m, None),
    "record length lies (too long)": (
        lambda m: gzip_member(warc_record("https://site.org/x", http_response(b"<p>x</p>"), length=900)), "length_mismatch"),
    "record length lies (too short)": (
        lambda m: gzip_member(warc_record("https://site.org/x", http_response(b"<p>x</p>"), length=10)), "length_mismatch"),
    "malformed WARC header": (lambda m: gzip_member(b"WARC/1.0\r\nno colon here\r\nContent-Length: 2\r\n\r\nhi\r\n\r\n"), "malformed_header"),
    "not a WARC record": (lambda m: gzip_member(b"<html>hello</html>\r\n\r\n"), "malformed_header"),
    "malformed HTTP header": (lambda m: gzip_member(warc_record("https://site.org/x", b"HTTP/9 ???\r\n")), "malformed_http"),
    "50 MB page": (lambda m: gzip_member(response_record("https://site.org/big", b"<p>" + b"a" * (50 << 20))), "too_large"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_record_is_one_counted_skip_and_no_other_record_is_lost(case):
    damage, reason = BAD[case]
    members = [gzip_member(r) for r in pages(5)]
    members[2] = damage(members[2])
    got = read(members, max_bytes=16 << 20)
    good = [u for u in got if isinstance(u, str)]
    expected = [f"https://site.org/{i}" for i in range(5) if i != 2 or reason is None]
    assert good == expected
    skips = [s for s in got if not isinstance(s, str)]
    assert skips == [("skip", reason or "corrupt_gzip")]


PLAIN_BAD = {
    "record length lies (too long)": (warc_record("https://site.org/x", http_response(b"<p>x</p>"), length=400), "length_mismatch"),
    "record length lies (too short)": (warc_record("https://site.org/x", http_response(b"<p>x</p>"), length=10), "length_mismatch"),
    "malformed WARC header": (b"WARC/1.0\r\nno colon here\r\nContent-Length: 2\r\n\r\nhi\r\n\r\n", "malformed_header"),
    "garbage": (b"random bytes\r\nthat are not WARC\r\n\r\n", "malformed_header"),
    "50 MB page": (response_record("https://site.org/big", b"<p>" + b"a" * (50 << 20)), "too_large"),
}


@pytest.mark.parametrize("case", sorted(PLAIN_BAD))
def test_uncompressed_files_stream_past_bad_records_too(case):
    bad, reason = PLAIN_BAD[case]
    recs = pages(5)
    recs[2] = bad
    got = read(recs, max_bytes=16 << 20)
    assert [u for u in got if isinstance(u, str)] == [f"https://site.org/{i}" for i in (0, 1, 3, 4)]
    assert [s for s in got if not isinstance(s, str)] == [("skip", reason)]
    cut = read(pages(3)[:2] + [pages(3)[2][:-30]])
    assert cut == ["https://site.org/0", "https://site.org/1", ("skip", "truncated_record")]


def test_a_file_cut_off_inside_its_last_member():
    members = [gzip_member(r) for r in pages(4)]
    members[3] = members[3][:30]
    assert read(members) == ["https://site.org/0", "https://site.org/1", "https://site.org/2", ("skip", "truncated_gzip")]


def test_charsets_declared_detected_and_undecodable():
    assert charset.decode_html("café".encode("latin-1"), "iso-8859-1") == ("café", "iso8859-1")
    body = '<meta charset="windows-1251"><p>Привет мир</p>'.encode("cp1251")
    assert charset.decode_html(body, None) == ('<meta charset="windows-1251"><p>Привет мир</p>', "cp1251")
    text, enc = charset.decode_html("naïve résumé".encode(), None)
    assert text == "naïve résumé" and enc == "utf-8"
    # declared UTF-8 but really cp1252: falls back to the detected encoding
    assert charset.decode_html("€ sign and façade".encode("cp1252"), "utf-8")[0] == "€ sign and façade"
    with pytest.raises(charset.Undecodable):
        charset.decode_html(b"\xff\xfe\x81 bytes \xe9\xe8", "x-no-such-charset")


MATH_PAGE = r"""<html><body><nav><a href="/">Home</a> <a href="/about">About</a></nav><article>
<h1>Notes on series</h1>
<p>Euler showed <script type="math/tex">\sum_{n=1}^\infty \frac{1}{n^2} = \frac{\pi^2}{6}</script> in 1734.</p>
<script type="math/tex; mode=display">e^{i\pi} + 1 = 0</script>
<p>Inline \(a^2 + b^2 = c^2\), display \[\int_0^1 x\,dx = \tfrac12\], dollars $x_{n+1} = x_n - f(x_n)/f'(x_n)$ and $$\det(A - \lambda I) = 0$$ stay.</p>
<p>KaTeX: <span class="katex"><span class="katex-mathml"><math><semantics><mrow><mi>k</mi></mrow>
<annotation encoding="application/x-tex">\binom{n}{k} = \frac{n!}{k!(n-k)!}</annotation></semantics></math></span>
<span class="katex-html" aria-hidden="true">(n k)=n!k!(n−k)!</span></span> is the binomial.</p>
<p>MathML: <math><msup><mi>x</mi><mn>2</mn></msup><mo>+</mo><mfrac><mn>1</mn><mi>y</mi></mfrac><mo>≤</mo><msqrt><mi>α</mi></msqrt></math> holds.</p>
<p>Wikipedia: <span class="mwe-math-element"><span class="mwe-math-mathml-inline mwe-math-mathml-a11y" style="display: none;">
<math><semantics><mi>E</mi><annotation encoding="application/x-tex">{\displaystyle E=mc^{2}}</annotation></semantics></math></span>
<img src="/m.svg" class="mwe-math-fallback-image-inline" alt="{\displaystyle E=mc^{2}}"></span> and an image <img src="f.png" alt="\nabla \cdot \mathbf{B} = 0">.</p>
<p>These identities are among the most celebrated results in analysis and appear in every textbook on the subject.</p>
</article><footer>© 2024 Example. All rights reserved. Privacy policy.</footer></body></html>"""


def test_math_in_every_notation_survives_verbatim():
    out = extract(MATH_PAGE)
    for tex in [
        r"$\sum_{n=1}^\infty \frac{1}{n^2} = \frac{\pi^2}{6}$",
        r"$$e^{i\pi} + 1 = 0$$",
        r"\(a^2 + b^2 = c^2\)",
        r"\[\int_0^1 x\,dx = \tfrac12\]",
        r"$x_{n+1} = x_n - f(x_n)/f'(x_n)$",
        r"$$\det(A - \lambda I) = 0$$",
        r"$\binom{n}{k} = \frac{n!}{k!(n-k)!}$",
        r"$x^2+\frac{1}{y}\leq \sqrt{\alpha }$",
        r"${\displaystyle E=mc^{2}}$",
        r"$\nabla \cdot \mathbf{B} = 0$",
    ]:
        assert tex in out.text, tex
    assert "(n k)=n!" not in out.text  # KaTeX's rendered copy is not duplicated
    assert "Home" not in out.text and "rights reserved" not in out.text  # boilerplate gone
    assert out.stats["math_kept"] == 6 and out.stats["math_mathjax"] == 2


CODE_PAGE = """<html><body><div class="sidebar"><ul><li><a href="/a">Archive</a></li></ul></div><main>
<h1>Walking a tree</h1><p>Use <code>os.walk</code> to visit every directory of a tree, as below.</p>
<div class="highlight"><pre><code class="language-python"><span class="k">def</span> walk(root):
    for dirpath, dirs, files in os.walk(root):
        if files:
\t\tyield dirpath  # tabs kept
</code></pre></div>
<p>And in C, with line breaks as tags:</p>
<pre>int main(void) {<br>    return 0;<br>}</pre>
<p>That is all there is to it; the generator yields each directory that holds files.</p>
</main></body></html>"""


def test_code_blocks_keep_newlines_and_indentation_as_fenced_markdown():
    text = extract(CODE_PAGE).text
    assert "```python\ndef walk(root):\n    for dirpath, dirs, files in os.walk(root):\n        if files:\n\t\tyield dirpath  # tabs kept\n```" in text
    assert "```\nint main(void) {\n    return 0;\n}\n```" in text
    assert "Use `os.walk` to visit" in text
    assert "Archive" not in text


def test_url_normalisation_and_dedup_keys():
    assert urls.normalize("HTTPS://Example.COM:443/a%7Eb/?utm_source=x&q=1#top") == "https://example.com/a~b/?q=1"
    assert urls.normalize("http://example.com") == "http://example.com/"
    assert urls.dedup_key("http://www.example.com/p?fbclid=1") == urls.dedup_key("https://example.com/p")
    assert urls.dedup_key("https://example.com/p?a=1") != urls.dedup_key("https://example.com/p?a=2")
    with pytest.raises(ValueError):
        urls.normalize("mailto:someone@example.com")
    assert urls.registered_domain("https://forums.news.bbc.co.uk/x") == "bbc.co.uk"
    assert urls.registered_domain(None) is None


def test_mathml_without_annotation_is_converted_to_latex():
    html = """<html><body><article><p>A long enough paragraph about a formula that we are going to write down.</p><p>
    <math display="block"><mrow><munderover><mo>∑</mo><mrow><mi>i</mi><mo>=</mo><mn>1</mn></mrow><mi>n</mi></munderover>
    <mi>α</mi><mi>x</mi><mo>≠</mo><mroot><mi>y</mi><mn>3</mn></mroot><mo>,</mo><mover><mi>v</mi><mo>→</mo></mover>
    </mrow></math></p></article></body></html>"""
    assert r"$$\sum_{i=1}^n\alpha x\neq \sqrt[3]{y},\vec{v}$$" in extract(html).text


def test_wet_conversion_records_pass_through_as_text(tmp_path):
    from pipeline.remote import Retry
    from pipeline.web.sources import Item
    from pipeline.web.steps import ExtractText, WarcRecordReader

    text = "Plain text of a page.\nSecond line with $x^2$."
    wet = warc_record("https://site.org/t", text.encode(), record_type="conversion", content_type="text/plain")
    recs = list(warc.iter_stream(io.BytesIO(gzip_member(wet)), 1 << 20))
    assert recs[0].kind == "conversion" and recs[0].content_type == "text/plain" and recs[0].payload == text.encode()
    path = tmp_path / "x.warc.wet.gz"
    path.write_bytes(gzip_member(wet))
    docs = list(ExtractText().run(WarcRecordReader([Item(str(path))], {}, 1 << 20, Retry()).run()))
    assert [d.text for d in docs] == [text]
    assert docs[0].metadata["format"] == "text" and docs[0].metadata["url"] == "https://site.org/t"


def test_web_ingest_recipe_errors_name_the_problem():
    from pipeline.recipe import RecipeError, parse_recipe

    def problems(stage: dict) -> list[str]:
        with pytest.raises(RecipeError) as e:
            parse_recipe({"name": "t", "run_dir": "/tmp/x", "stages": [{"name": "w", "kind": "web_ingest", **stage}]})
        return e.value.problems

    assert "give exactly one of paths, crawl, index (got none)" in problems({})[0]
    assert "(got crawl, index)" in problems({"crawl": "CC-MAIN-2024-10", "index": "s3://x/idx", "domains": ["a.org"]})[0]
    assert "index needs domains or url_prefixes" in problems({"index": "s3://x/idx"})[0]
    assert "stages.w.crawl" in problems({"crawl": "2024-10"})[0]
