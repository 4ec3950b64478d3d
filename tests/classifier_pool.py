"""A generated pool for the recall-loop tests, with known code and math domains and prefixes.

- `docs.codebase.dev/api/`: code pages, 70% "easy" (code syntax) and 30% "hard" (code talk in prose);
- `www.forum.net/code/` easy+hard code, `www.forum.net/math/` math, `www.forum.net/life/` prose;
- `mathwiki.org/wiki/algebra/`: math (LaTeX); `/wiki/analysis/` and `www.forum.net/math/`: LaTeX
  math and "hard" math (math talk in prose);
- `hardcode.io/posts/`: hard code pages only (the round-1 classifier misses them);
- `news.com/local/`, `travel.net/guides/`: prose.
"""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document

from pipeline import documents

PROSE = "the city council met on tuesday to discuss a new budget for parks while travellers enjoy quiet streets markets harvest museum festival bridge weekend valley library families music".split()
CODE = "def return import class self for in range if else while print lambda yield try except None True False == != += ( ) [ ] { } : ; -> async await".split()
HARD_CODE = "compiler debugger refactor variable runtime stacktrace segfault linker bytecode garbage-collector mutex deadlock".split()
HARD_MATH = "corollary eigenvalue manifold topology polynomial prime integer homomorphism isomorphism compact".split()
MATH = r"\frac{a}{b} \sum_{k=1}^{n} \int_0^1 x^2 \sqrt{2} \alpha \beta theorem lemma proof $$ \le \ge = + \cdot \pi".split()


def _text(rng: random.Random, kind: str, n: int = 60) -> str:
    if kind == "code":
        words = [rng.choice(CODE) if rng.random() < 0.7 else f"var_{rng.randrange(50)}" for _ in range(n)]
    elif kind == "hard":
        words = [rng.choice(HARD_CODE) if rng.random() < 0.5 else rng.choice(PROSE) for _ in range(n)]
    elif kind == "hardmath":
        words = [rng.choice(HARD_MATH) if rng.random() < 0.5 else rng.choice(PROSE) for _ in range(n)]
    elif kind == "math":
        words = [rng.choice(MATH) if rng.random() < 0.7 else str(rng.randrange(100)) for _ in range(n)]
    else:
        words = [rng.choice(PROSE) for _ in range(n)]
    lines = [" ".join(words[i : i + 12]) for i in range(0, n, 12)]
    return "\n".join(lines)


LAYOUT = [  # (url template, kinds cycled, pages)
    ("https://docs.codebase.dev/api/{i}.html", ["code", "code", "hard", "code", "code", "hard", "code", "code", "code", "hard"], 40),
    ("https://www.forum.net/code/{i}", ["code", "code", "hard"], 24),
    ("https://www.forum.net/math/{i}", ["math", "math", "math", "hardmath"], 24),
    ("https://www.forum.net/life/{i}", ["prose"], 30),
    ("https://mathwiki.org/wiki/algebra/{i}", ["math"], 20),
    ("https://mathwiki.org/wiki/analysis/{i}", ["math", "math", "hardmath"], 21),
    ("https://hardcode.io/posts/{i}", ["hard"], 12),
    ("https://news.com/local/{i}", ["prose"], 60),
    ("https://travel.net/guides/{i}", ["prose"], 60),
]


def pool_docs(seed: int = 0) -> list[Document]:
    rng = random.Random(seed)
    docs = []
    for tmpl, kinds, n in LAYOUT:
        for i in range(n):
            kind = kinds[i % len(kinds)]
            url = tmpl.format(i=i)
            host = url.split("/")[2]
            domain = ".".join(host.split(".")[-2:])
            docs.append(Document(text=_text(rng, kind), id=url, metadata={"url": url, "domain": domain, "kind": kind, "title": f"{kind} {i}"}))
    return docs


def write_pool(path, docs: list[Document]) -> None:
    pq.write_table(pa.Table.from_pylist([documents.to_row(d) for d in docs], schema=documents.SCHEMA), str(path), compression="zstd")


def write_seed(path, kind: str, n: int, seed: int = 99) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"seed-{kind}-{i}", "text": _text(rng, kind)}) + "\n")
