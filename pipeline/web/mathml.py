"""MathML to LaTeX, for pages that ship presentation MathML without a TeX annotation.

Covers the presentation elements that carry meaning (tokens, rows, scripts, fractions, roots,
under/over, fences, tables); a TeX `<annotation>` wins where present. Works on resiliparse nodes.
"""

from __future__ import annotations

SYMBOLS = {
    "α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "δ": r"\delta", "ε": r"\epsilon", "ϵ": r"\epsilon",
    "ζ": r"\zeta", "η": r"\eta", "θ": r"\theta", "ϑ": r"\vartheta", "ι": r"\iota", "κ": r"\kappa",
    "λ": r"\lambda", "μ": r"\mu", "ν": r"\nu", "ξ": r"\xi", "π": r"\pi", "ρ": r"\rho", "σ": r"\sigma",
    "τ": r"\tau", "υ": r"\upsilon", "φ": r"\phi", "ϕ": r"\phi", "χ": r"\chi", "ψ": r"\psi", "ω": r"\omega",
    "Γ": r"\Gamma", "Δ": r"\Delta", "Θ": r"\Theta", "Λ": r"\Lambda", "Ξ": r"\Xi", "Π": r"\Pi",
    "Σ": r"\Sigma", "Υ": r"\Upsilon", "Φ": r"\Phi", "Ψ": r"\Psi", "Ω": r"\Omega",
    "∑": r"\sum", "∏": r"\prod", "∫": r"\int", "∬": r"\iint", "∮": r"\oint", "∞": r"\infty",
    "∂": r"\partial", "∇": r"\nabla", "±": r"\pm", "∓": r"\mp", "×": r"\times", "÷": r"\div",
    "⋅": r"\cdot", "·": r"\cdot", "∘": r"\circ", "≤": r"\leq", "≥": r"\geq", "≠": r"\neq",
    "≈": r"\approx", "≡": r"\equiv", "∼": r"\sim", "≅": r"\cong", "∝": r"\propto", "→": r"\to",
    "←": r"\leftarrow", "↔": r"\leftrightarrow", "⇒": r"\Rightarrow", "⇐": r"\Leftarrow",
    "⇔": r"\Leftrightarrow", "↦": r"\mapsto", "∈": r"\in", "∉": r"\notin", "∋": r"\ni",
    "⊂": r"\subset", "⊆": r"\subseteq", "⊃": r"\supset", "⊇": r"\supseteq", "∪": r"\cup",
    "∩": r"\cap", "∅": r"\emptyset", "∀": r"\forall", "∃": r"\exists", "¬": r"\neg", "∧": r"\wedge",
    "∨": r"\vee", "⊕": r"\oplus", "⊗": r"\otimes", "…": r"\ldots", "⋯": r"\cdots", "⋮": r"\vdots",
    "⋱": r"\ddots", "ℝ": r"\mathbb{R}", "ℕ": r"\mathbb{N}", "ℤ": r"\mathbb{Z}", "ℚ": r"\mathbb{Q}",
    "ℂ": r"\mathbb{C}", "ℓ": r"\ell", "ℏ": r"\hbar", "′": "'", "″": "''", "−": "-", "∗": "*",
    "⟨": r"\langle", "⟩": r"\rangle", "‖": r"\|", "⌊": r"\lfloor", "⌋": r"\rfloor", "⌈": r"\lceil",
    "⌉": r"\rceil", "\u2061": "", "\u2062": "", "\u2063": "", "\u2064": "",
}
ACCENTS = {"^": r"\hat", "ˆ": r"\hat", "¯": r"\bar", "‾": r"\overline", "~": r"\tilde", "˜": r"\tilde",
           "→": r"\vec", "⃗": r"\vec", "˙": r"\dot", "¨": r"\ddot", "⏞": r"\overbrace", "⏟": r"\underbrace"}
BIG = {r"\sum", r"\prod", r"\int", r"\lim", r"\max", r"\min", r"\bigcup", r"\bigcap"}


def _sym(text: str) -> str:
    out = []
    for ch in text:
        s = SYMBOLS.get(ch, ch)
        out.append(s + " " if s.startswith("\\") and s[-1].isalpha() else s)
    return "".join(out)


def _group(s: str) -> str:
    s = s.strip()
    return s if len(s) == 1 or (s[0] == "\\" and s[1:].isalpha()) else "{" + s + "}"


def _children(node) -> list:
    return [c for c in node.child_nodes if c.type == 1]  # elements only


def tex_annotation(node) -> str | None:
    for a in node.get_elements_by_tag_name("annotation"):
        if (a.getattr("encoding") or "").lower() in ("application/x-tex", "tex", "latex", "text/x-tex"):
            return a.text.strip()
    return None


def math_to_latex(node) -> str:
    """LaTeX for a `<math>` element: its TeX annotation if it has one, else converted."""
    tex = tex_annotation(node)
    return tex if tex is not None else " ".join(to_latex(node).split())


def to_latex(node) -> str:
    """LaTeX for a MathML element (commands keep a trailing space so `\\alpha x` stays two tokens)."""
    tag = node.tag.lower().split(":")[-1]
    kids = _children(node)
    if tag in ("mi", "mn", "mtext", "ms"):
        t = node.text.strip()
        if tag == "mtext":
            return r"\text{" + t + "}" if t else ""
        if tag == "mi" and len(t) > 1 and t.isalpha() and t.isascii():
            return "\\" + t + " " if t in ("sin", "cos", "tan", "log", "ln", "exp", "lim", "max", "min", "det") else r"\mathrm{" + t + "}"
        return _sym(t)
    if tag == "mo":
        t = node.text.strip()
        return _sym(t)
    if tag == "mspace":
        return " "
    if tag == "semantics":
        tex = tex_annotation(node)
        if tex is not None:
            return tex
        return to_latex(kids[0]) if kids else ""
    if tag in ("annotation", "annotation-xml", "none", "mprescripts"):
        return ""
    if tag == "mfrac":
        if len(kids) == 2:
            return r"\frac{" + to_latex(kids[0]) + "}{" + to_latex(kids[1]) + "}"
    elif tag == "msqrt":
        return r"\sqrt{" + "".join(to_latex(k) for k in kids) + "}"
    elif tag == "mroot":
        if len(kids) == 2:
            return r"\sqrt[" + to_latex(kids[1]) + "]{" + to_latex(kids[0]) + "}"
    elif tag in ("msup", "msub"):
        if len(kids) == 2:
            op = "^" if tag == "msup" else "_"
            return _group(to_latex(kids[0])) + op + _group(to_latex(kids[1]))
    elif tag == "msubsup":
        if len(kids) == 3:
            return _group(to_latex(kids[0])) + "_" + _group(to_latex(kids[1])) + "^" + _group(to_latex(kids[2]))
    elif tag in ("mover", "munder"):
        if len(kids) == 2:
            base, script = to_latex(kids[0]), kids[1]
            acc = ACCENTS.get(script.text.strip()) if script.tag.lower() == "mo" else None
            if acc and tag == "mover":
                return acc + "{" + base + "}"
            if base.strip() in BIG:
                return base.strip() + ("^" if tag == "mover" else "_") + _group(to_latex(script))
            cmd = r"\overset" if tag == "mover" else r"\underset"
            return cmd + "{" + to_latex(script) + "}{" + base + "}"
    elif tag == "munderover":
        if len(kids) == 3:
            return _group(to_latex(kids[0])) + "_" + _group(to_latex(kids[1])) + "^" + _group(to_latex(kids[2]))
    elif tag == "mfenced":
        open_, close = node.getattr("open") or "(", node.getattr("close") if node.hasattr("close") else ")"
        sep = node.getattr("separators") or ","
        inner = (sep[0] if sep else "").join(to_latex(k) for k in kids)
        return r"\left" + (_sym(open_) or ".") + " " + inner + r" \right" + (_sym(close) or ".")
    elif tag == "mtable":
        rows = [" & ".join(to_latex(c) for c in _children(r)) for r in kids]
        return r"\begin{matrix}" + r" \\ ".join(rows) + r"\end{matrix}"
    elif tag == "mmultiscripts":
        return "".join(to_latex(k) for k in kids)
    return "".join(to_latex(k) for k in kids)
