"""Fill-in-the-middle (FIM), in one place: sentinels, the transform, its inverse and the token ids.

DeepSeek-Coder trains with PSM at rate 0.5. A document is cut into prefix / middle / suffix at two
random points and rewritten

    PSM: <｜fim▁begin｜> prefix <｜fim▁hole｜> suffix <｜fim▁end｜> middle
    SPM: <｜fim▁begin｜><｜fim▁hole｜> suffix <｜fim▁end｜> prefix middle

`LAYOUT` is the one definition of both orders: `fim_text` writes it, `pieces` reads it back (from
the piece lengths in `metadata["fim"]`), `restore` gives the original text, `encode` puts the
sentinel ids between separately encoded pieces (the shards) and `prompt_ids` builds a PSM prompt
without its middle (the FIM metric). The `fim` stage (`pipeline/mixing/fim.py`) applies `apply`.
"""

from __future__ import annotations

import hashlib
import random
import re

FIM_HOLE_TOKEN = "<｜fim▁hole｜>"
FIM_BEGIN_TOKEN = "<｜fim▁begin｜>"
FIM_END_TOKEN = "<｜fim▁end｜>"
SENTINELS = (FIM_HOLE_TOKEN, FIM_BEGIN_TOKEN, FIM_END_TOKEN)
# their ids in the DeepSeek tokenizer (DeepSeek-Coder-V2's own), added after BOS/EOS
FIM_HOLE, FIM_BEGIN, FIM_END = 100002, 100003, 100004

# the order of sentinels and pieces in a FIM document, per mode
LAYOUT = {
    "psm": (FIM_BEGIN_TOKEN, "prefix", FIM_HOLE_TOKEN, "suffix", FIM_END_TOKEN, "middle"),
    "spm": (FIM_BEGIN_TOKEN, FIM_HOLE_TOKEN, "suffix", FIM_END_TOKEN, "prefix", "middle"),
}

_NEWLINE = re.compile("\n")


def doc_rng(seed: int, doc_id: str) -> random.Random:
    """The random source of one document: fixed by the seed and the id, not by how work is split."""
    h = hashlib.blake2b(f"{seed}\x00{doc_id}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(h, "little"))


def split_points(text: str, rng: random.Random, unit: str) -> tuple[int, int]:
    """Two cut positions 0 <= a <= b <= len(text), uniform over characters or line starts."""
    if unit == "line":
        starts = [0] + [m.end() for m in _NEWLINE.finditer(text) if m.end() < len(text)] + [len(text)]
        a, b = sorted(rng.choice(starts) for _ in range(2))
    else:
        a, b = sorted(rng.randint(0, len(text)) for _ in range(2))
    return a, b


def fim_text(prefix: str, middle: str, suffix: str, mode: str) -> str:
    parts = {"prefix": prefix, "middle": middle, "suffix": suffix}
    return "".join(parts.get(p, p) for p in LAYOUT[mode])


def apply(text: str, rng: random.Random, mode: str, unit: str) -> tuple[str, dict]:
    """The FIM form of `text` and its `metadata["fim"]` record (mode and piece lengths in characters)."""
    a, b = split_points(text, rng, unit)
    pre, mid, suf = text[:a], text[a:b], text[b:]
    return fim_text(pre, mid, suf, mode), {"mode": mode, "unit": unit, "prefix": len(pre), "middle": len(mid), "suffix": len(suf)}


def pieces(text: str, meta: dict) -> list[tuple[str, str]]:
    """A FIM text as [(kind, text)] in order, kind 'sentinel' or a piece name (prefix/middle/suffix)."""
    out, o = [], 0
    for p in LAYOUT[meta["mode"]]:
        if p in SENTINELS:
            out.append(("sentinel", p))
            o += len(p)
        else:
            out.append((p, text[o:o + meta[p]]))
            o += meta[p]
    return out


def restore(text: str, meta: dict | None) -> str:
    """The original text of a FIM text (or the text itself when `meta` is None)."""
    if meta is None:
        return text
    parts = dict(pieces(text, meta))
    return parts["prefix"] + parts["middle"] + parts["suffix"]


def encode(tok, items: list[tuple[str, dict | None]], head: list[int]) -> list[list[int]]:
    """Token ids of (text, fim metadata or None) items: `head` + ids + EOS, FIM pieces encoded
    separately with the sentinel ids between them; one encode_batch call for all."""
    segs: list[str] = []
    layouts: list[int | list[int]] = []
    for text, meta in items:
        if meta is None:
            layouts.append(len(segs))
            segs.append(text)
            continue
        lay = []
        for kind, piece in pieces(text, meta):
            if kind == "sentinel":
                lay.append(-1 - tok.hf.token_to_id(piece))
            else:
                lay.append(len(segs))
                segs.append(piece)
        layouts.append(lay)
    enc = tok.encode_batch(segs) if segs else []
    out = []
    for lay in layouts:
        if isinstance(lay, int):
            out.append(head + enc[lay] + [tok.eos_id])
            continue
        ids = list(head)
        for v in lay:
            ids.extend([-1 - v] if v < 0 else enc[v])
        out.append(ids + [tok.eos_id])
    return out


def prompt_ids(tok, prefix: str, suffix: str, budget: int) -> list[int]:
    """A PSM prompt up to the middle, with at most `budget` tokens of prefix (its end) and of suffix."""
    ids = {"prefix": tok.encode(prefix)[-budget:], "suffix": tok.encode(suffix)[:budget]}
    layout = LAYOUT["psm"]
    return [i for p in layout[:layout.index("middle")]
            for i in (ids[p] if p in ids else [tok.hf.token_to_id(p)])]
