"""HTML to Markdown-like text that keeps math as LaTeX and code blocks verbatim.

resiliparse does the parsing, boilerplate removal (main content) and text layout. Before it
runs, math and code elements are swapped in the DOM for unique placeholder words, because the
text extractor drops `<script>`s (MathJax source), collapses whitespace (code indentation) and
ignores `<annotation>`s; afterwards each placeholder is replaced with its LaTeX (`$…$`,
`$$…$$`) or a fenced code block. Placeholders that main-content removal took out stay out, so
math and code inside navigation or sidebars go with them.

Handled: MathJax `<script type="math/tex[; mode=display]">` (text delimiters `\\(…\\)`,
`\\[…\\]`, `$…$`, `$$…$$` are text already and pass through), KaTeX's TeX `<annotation>`,
MathML (its TeX annotation, else converted), Wikipedia's math images and any `<img>` whose
alt text is LaTeX, `<pre>` blocks (fenced, with a language when the markup names one) and
inline `<code>` (backticks).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

from pipeline.web.mathml import math_to_latex, tex_annotation

_LANG = re.compile(r"(?:^|\s)(?:language|lang|highlight-source|brush:?)-?\s*([A-Za-z0-9_+#-]+)")
_LATEX_ALT = re.compile(r"\\[A-Za-z]+|[\^_]\{|\{\\displaystyle")
_RENDERED = ".MathJax_Preview, .MathJax, .MathJax_Display, .MathJax_SVG, .MathJax_SVG_Display, mjx-assistive-mml, .katex-html"
_BLANKS = re.compile(r"\n{3,}")


@dataclass
class Extracted:
    text: str
    stats: dict = field(default_factory=dict)


class _Swaps:
    """Placeholder words and what each stands for."""

    def __init__(self, tree: HTMLTree):
        self.tree = tree
        self.nonce = "zq" + secrets.token_hex(4)
        self.items: dict[str, str] = {}
        self.counts: dict[str, int] = {}

    def token(self, replacement: str, kind: str) -> str:
        tok = f"{self.nonce}x{len(self.items)}x"
        self.items[tok] = replacement
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return tok

    def inline(self, node, replacement: str, kind: str) -> None:
        parent = node.parent
        if parent is not None:
            # found again by the nonce, not by word boundaries, so no spaces are added around it
            parent.replace_child(self.tree.create_text_node(self.token(replacement, kind)), node)

    def block(self, node, replacement: str, kind: str) -> None:
        parent = node.parent
        if parent is not None:
            p = self.tree.create_element("p")
            p.append_child(self.tree.create_text_node(self.token(replacement, kind)))
            parent.replace_child(p, node)


def _math(tex: str, display: bool) -> str:
    tex = tex.strip()
    return f"$${tex}$$" if display else f"${tex}$"


def _code_lang(node) -> str:
    for n in (node, node.first_element_child, node.parent):
        if n is None or n.type != 1:
            continue
        m = _LANG.search(n.class_name or "")
        if m:
            return m.group(1).lower()
    return ""


def _code_text(tree: HTMLTree, node) -> str:
    for br in list(node.get_elements_by_tag_name("br")):
        br.parent.replace_child(tree.create_text_node("\n"), br)
    for gutter in list(node.query_selector_all(".lineno, .line-numbers-rows, .gutter")):
        gutter.parent.remove_child(gutter)
    lines = node.text.replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(line.rstrip() for line in lines)


# One selector, so the DOM is walked once (in C) and only matching elements become Python
# objects; matches come in document order, outer before inner, and an element whose ancestor
# was already swapped out is skipped.
_SELECTOR = ", ".join(
    [
        ".mwe-math-element",
        ".katex",
        _RENDERED,
        'script[type^="math/tex"]',
        "math",
        'img[alt*="\\\\"]',
        'img[alt*="{"]',
        'img[alt*="^"]',
        'img[class*="tex"]',
        'img[class*="math"]',
        "pre",
        "code",
    ]
)


def _attached(node) -> bool:
    while node is not None:
        if node.type == 9:  # the document
            return True
        node = node.parent
    return False


def _classes(node) -> str:
    return node.class_name or ""


def _wikipedia_math(el, sw: _Swaps) -> None:
    tex = None
    for m in el.get_elements_by_tag_name("math"):
        tex = tex_annotation(m)
    if tex is None:
        img = el.query_selector("img")
        tex = img.getattr("alt") if img is not None else None
    if tex:
        display = el.query_selector(".mwe-math-mathml-display, .mwe-math-fallback-image-display") is not None
        sw.inline(el, _math(tex, display), "math_wikipedia")


def _swap(tree: HTMLTree, sw: _Swaps) -> None:
    for el in tree.document.query_selector_all(_SELECTOR):
        if not _attached(el):
            continue
        tag = el.tag.lower()
        cls = _classes(el)
        if "mwe-math-element" in cls:
            _wikipedia_math(el, sw)
        elif tag != "math" and "katex" in cls.split():
            tex = tex_annotation(el)
            if tex is not None:
                display = el.parent is not None and "katex-display" in _classes(el.parent)
                sw.inline(el, _math(tex, display), "math_katex")
        elif tag == "script":
            sw.inline(el, _math(el.text, "mode=display" in (el.getattr("type") or "").lower()), "math_mathjax")
        elif el.matches(_RENDERED):
            el.parent.remove_child(el)
        elif tag == "math" or tag.endswith(":math"):
            display = (el.getattr("display") or "").lower() == "block" or (el.getattr("mode") or "") == "display"
            sw.inline(el, _math(math_to_latex(el), display), "math_mathml")
        elif tag == "img":
            alt = (el.getattr("alt") or "").strip()
            low = cls.lower()
            if alt and ("tex" in low or "math" in low or _LATEX_ALT.search(alt)):
                sw.inline(el, _math(alt, "display" in low), "math_img")
        elif tag == "pre":
            code = _code_text(tree, el)
            if code:
                sw.block(el, f"```{_code_lang(el)}\n{code}\n```", "code_blocks")
        elif tag == "code":
            text = el.text.strip()
            if "\n" in text:
                sw.block(el, f"```{_code_lang(el)}\n{_code_text(tree, el)}\n```", "code_blocks")
            elif text:
                fence = "``" if "`" in text else "`"
                sw.inline(el, f"{fence}{text}{fence}", "code_inline")


def extract(html: str, main_content: bool = True) -> Extracted:
    """Markdown-like text of `html`, and counts of what was found and kept."""
    tree = HTMLTree.parse(html)
    if tree.body is None:
        return Extracted("", {"math_kept": 0, "code_kept": 0})
    sw = _Swaps(tree)
    _swap(tree, sw)
    text = extract_plain_text(
        tree,
        preserve_formatting=True,
        main_content=main_content,
        alt_texts=False,
        links=False,
        form_fields=False,
        noscript=False,
        list_bullets=True,
        comments=False,  # comment threads and post bylines are boilerplate for pretraining text
        post_meta=False,
    )
    kept = {"math": 0, "code": 0}

    def put(m: re.Match) -> str:
        rep = sw.items.get(m.group(0))
        if rep is None:
            return m.group(0)
        if rep.startswith("```"):
            kept["code"] += 1
            return "\n" + rep + "\n"
        kept["math" if rep.startswith("$") else "code"] += 1
        return rep

    if sw.items:
        text = re.sub(re.escape(sw.nonce) + r"x\d+x", put, text)
        text = re.sub(r"[ \t]*(\n```[^\n]*\n)", r"\1", text)
    text = _BLANKS.sub("\n\n", text).strip()
    stats = dict(sw.counts)
    stats["math_kept"] = kept["math"]
    stats["code_kept"] = kept["code"]
    return Extracted(text, stats)
