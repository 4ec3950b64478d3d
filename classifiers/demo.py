"""A small generated seed for the demo's recall loop: code and math pages, written as jsonl."""

from __future__ import annotations

import json
import random
from pathlib import Path

_FUNCS = ["parse", "load", "render", "fetch", "merge", "split", "encode", "visit", "resolve", "build"]
_NOUNS = ["config", "token", "node", "buffer", "request", "template", "record", "path", "cache", "items"]
_MATH_LEADS = [
    r"Let \(f(x) = {a}x^2 + {b}x\). Then \(f'(x) = {c}x + {b}\).",
    r"For all integers $n \ge {a}$ we prove by induction that $\sum_{{k=1}}^{{n}} k = \frac{{n(n+1)}}{{2}}$.",
    r"The limit $\lim_{{x \to 0}} \frac{{\sin {a}x}}{{x}} = {a}$ follows from the squeeze theorem.",
    r"Solve the equation $x^2 - {c}x + {d} = 0$; the roots are $x = \frac{{{c} \pm \sqrt{{{c}^2 - 4 \cdot {d}}}}}{{2}}$.",
    r"By the Cauchy–Schwarz inequality, $|\langle u, v\rangle| \le \|u\| \|v\|$ for vectors in $\mathbb{{R}}^{a}$.",
    r"$$\int_0^{a} x^{b}\,dx = \frac{{{a}^{{{b}+1}}}}{{{b}+1}}.$$",
    r"Theorem. Every bounded monotone sequence converges. Proof. Let $a_n \le {a}$ be increasing; $\sup a_n$ is the limit. ∎",
    r"The matrix $A = \begin{{pmatrix}} {a} & {b} \\ {c} & {d} \end{{pmatrix}}$ has determinant ${a}\cdot{d} - {b}\cdot{c}$.",
]


def _code_page(rng: random.Random, i: int) -> dict:
    f, n = rng.choice(_FUNCS), rng.choice(_NOUNS)
    body = (
        f"How to {f} a {n} in Python\n"
        f"The following example shows how the function is used in practice.\n"
        f"import json\nfrom pathlib import Path\n\n"
        f"def {f}_{n}({n}, strict=False):\n"
        f"    \"\"\"{f.title()} the {n} and return the result.\"\"\"\n"
        f"    if {n} is None:\n        raise ValueError(\"no {n}\")\n"
        f"    result = [x for x in {n} if x]\n"
        f"    for key, value in sorted(result.items()):\n        print(key, value)\n"
        f"    return result\n\n"
        f"print({f}_{n}([{rng.randint(1, 9)}, {rng.randint(1, 9)}]))\n"
        f"Run it with Python 3.11 or newer."
    )
    return {"id": f"seed-code-{i:03d}", "url": f"https://seed.invalid/code/{i}", "text": body}


def _math_page(rng: random.Random, i: int) -> dict:
    vals = {k: rng.randint(2, 9) for k in "abcd"}
    lines = [lead.format(**vals) for lead in rng.sample(_MATH_LEADS, 4)]
    body = (
        f"Lecture notes {i}\n\n" + "\n\n".join(lines)
        + f"\n\nIn display form: $$\\alpha_{vals['a']} + \\beta = \\gamma^{vals['b']}$$"
        + "\n\nProof. This follows directly from the definitions above. ∎"
    )
    return {"id": f"seed-math-{i:03d}", "url": f"https://seed.invalid/math/{i}", "text": body}


def write_demo_seeds(sample_dir: str | Path, n: int = 40, seed: int = 0) -> dict[str, Path]:
    """Write `<sample_dir>/seeds/{code,math}.jsonl` (n pages each; the demo's sample_dir is
    `${run_dir}/_sample`); returns target -> path."""
    out = Path(sample_dir) / "seeds"
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    made = {}
    for target, make in (("code", _code_page), ("math", _math_page)):
        path = out / f"{target}.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for i in range(n):
                f.write(json.dumps(make(rng, i), ensure_ascii=False, sort_keys=True) + "\n")
        made[target] = path
    return made
