"""`codecurate tokenizer train INPUT... --output DIR`: a byte-level BPE trained on a recipe's output, run by the
runner (config hash, resume, stats) with DIR as the run directory: the `train_tokenizer` stage over a `files` stage.

DIR owns the run: other settings (or inputs) redo the stages they change, the same ones are skipped.
"""

from __future__ import annotations

import sys

_NOT_FLAGS = ("name", "kind", "input", "tasks")  # the recipe's wiring; one task always


def cmd_train(args) -> int:
    from tokenizers import Tokenizer

    from pipeline import storage
    from pipeline.builtin import TABLE_SUFFIXES, Files
    from pipeline.flags import FlagError, from_flags
    from pipeline.recipe import Recipe
    from pipeline.runner import Runner
    from tokenizer.stage import TrainTokenizer

    try:
        storage.input_files(args.inputs, TABLE_SUFFIXES, "tokenizer train input")
        spec = from_flags(TrainTokenizer, args, _NOT_FLAGS, name="tokenizer", kind="train_tokenizer", input="input")
    except (FlagError, storage.StorageError) as e:
        print(f"codecurate: {e}", file=sys.stderr)
        return 2
    stages = [Files(name="input", kind="files", path=args.inputs), spec]
    recipe = Recipe(name="tokenizer", run_dir=args.output, seed=0, executor=args.executor or "local",
                    workers=args.workers or 1, stages=stages)
    runner = Runner(recipe, address=args.address, progress=not args.quiet, owns_run_dir=True)
    runner.run(["input"])
    if not storage.read_json(storage.join(args.output, "input", "_stats.json"), {})["kept"]["docs"]:
        print(f"codecurate: no documents in {', '.join(args.inputs)}", file=sys.stderr)
        return 2
    runner.run()
    path = storage.join(args.output, "tokenizer", "tokenizer.json")
    size = Tokenizer.from_str(storage.read_bytes(path).decode()).get_vocab_size()
    print(f"tokenizer: {path} ({size} tokens)")
    return 0


def register(sub) -> None:
    from pipeline.commands import add_run_options
    from pipeline.flags import add_flags
    from tokenizer.stage import TrainTokenizer

    p = sub.add_parser("tokenizer", help="tokenizer tools")
    tsub = p.add_subparsers(dest="tokenizer_command", required=True, metavar="COMMAND")
    t = tsub.add_parser("train", help="train a byte-level BPE (HF tokenizers) on stage outputs")
    t.add_argument("inputs", nargs="+", help="documents: a parquet or jsonl file, a stage directory (e.g. RUN_DIR/shards), "
                                             "a glob or an fsspec URL")
    t.add_argument("--output", required=True, help="run directory: DIR/tokenizer/ holds tokenizer.json and its configs")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    add_flags(t, TrainTokenizer, exclude=_NOT_FLAGS)
    add_run_options(t)
    t.set_defaults(func=cmd_train)
