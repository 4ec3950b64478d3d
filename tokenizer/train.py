"""Train a byte-level BPE on a recipe's output with HF tokenizers.

The new tokenizer keeps DeepSeek-V2's normaliser, pre-tokenizer splits and byte-level decoder,
so it cuts text the same way and round-trips any string; only the merges are learned. The
special tokens are BOS, EOS and the three FIM sentinels (ids 0-4). FIM documents are trained on
in their original order (`tokenizer.fim.restore`), so sentinels are never merged into text.
The result is a `tokenizer.json` that `transformers.PreTrainedTokenizerFast` loads, next to the
`tokenizer_config.json` / `special_tokens_map.json` that `from_pretrained(DIR)` reads.
`tokenizer.stage` runs this as the `train_tokenizer` stage kind (and `codecurate tokenizer train`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from tokenizer import BOS, EOS, FIM_BEGIN_TOKEN, FIM_END_TOKEN, FIM_HOLE_TOKEN, SPECIAL_TOKENS, deepseek_json_path


def train_bpe(texts: Iterable[str], vocab_size: int = 100_000, min_frequency: int = 2):
    from tokenizers import Tokenizer, pre_tokenizers, trainers

    spec = json.loads(deepseek_json_path().read_text(encoding="utf-8"))
    spec["added_tokens"] = []
    spec["post_processor"] = None
    spec["model"] = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                     "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": {}, "merges": []}
    tok = Tokenizer.from_str(json.dumps(spec))
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def save(tok, output_dir: str) -> str:
    """tokenizer.json and the two configs, each written atomically (`pipeline.storage`, so any fsspec URL);
    the path of tokenizer.json."""
    from pipeline import storage

    path = storage.join(output_dir, "tokenizer.json")
    storage.write_text(path, tok.to_str(pretty=True))  # the bytes `Tokenizer.save` writes
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": EOS,
               "additional_special_tokens": [FIM_BEGIN_TOKEN, FIM_HOLE_TOKEN, FIM_END_TOKEN]}
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": False, "add_eos_token": False,
              "clean_up_tokenization_spaces": False, **special}
    for name, obj in (("special_tokens_map.json", special), ("tokenizer_config.json", config)):
        storage.write_text(storage.join(output_dir, name), json.dumps(obj, indent=2, ensure_ascii=False))
    return path
