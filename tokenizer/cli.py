"""`codecurate tokenizer train INPUT... --output DIR`: a byte-level BPE trained on a recipe's output."""

from __future__ import annotations

import sys


def cmd_train(args) -> int:
    from tokenizer.train import iter_texts, save, train_bpe

    try:
        texts = iter_texts(args.inputs)
        first = next(texts, None)
        if first is None:
            raise ValueError(f"no documents in {', '.join(args.inputs)}")
        tok = train_bpe((t for part in ([first], texts) for t in part), args.vocab_size, args.min_frequency)
    except ValueError as e:
        print(f"codecurate: {e}", file=sys.stderr)
        return 2
    path = save(tok, args.output)
    print(f"tokenizer: {path} ({tok.get_vocab_size()} tokens)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("tokenizer", help="tokenizer tools")
    tsub = p.add_subparsers(dest="tokenizer_command", required=True, metavar="COMMAND")
    t = tsub.add_parser("train", help="train a byte-level BPE (HF tokenizers) on stage outputs")
    t.add_argument("inputs", nargs="+", help="parquet documents: a file, a stage directory (e.g. RUN_DIR/shards), a glob or an fsspec URL")
    t.add_argument("--output", required=True, help="directory for tokenizer.json and its configs")
    t.add_argument("--vocab-size", type=int, default=100_000, help="total vocabulary, special tokens included")
    t.add_argument("--min-frequency", type=int, default=2, help="minimum pair count for a merge")
    t.set_defaults(func=cmd_train)
