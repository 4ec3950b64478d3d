"""`codecurate train`, `codecurate eval`, `codecurate ablate` and `codecurate convert`."""

from __future__ import annotations

import json
import sys


def _pairs(values: list[str], what: str) -> list[tuple[str, str]]:
    out = []
    for v in values or []:
        k, sep, path = v.partition("=")
        if not sep or not k or not path:
            raise SystemExit(f"codecurate: {what} expects NAME=PATH, got {v!r}")
        out.append((k, path))
    return out


def _overrides(values: list[str]) -> dict:
    import yaml

    return {k: yaml.safe_load(v) for k, v in _pairs(values, "--set")}


def cmd_train(args) -> int:
    from trainer.config import load_config
    from trainer.train import train

    try:
        cfg = load_config(args.config, _overrides(args.set))
        if args.data:
            cfg.train.data = args.data
        if args.out:
            cfg.train.out_dir = args.out
        if not cfg.train.data:
            raise ValueError("no training data: give --data or train.data in the config")
        train(cfg)
    except (ValueError, FileNotFoundError) as e:
        print(f"codecurate: {e}", file=sys.stderr)
        return 2
    return 0


def _sandbox(args) -> None:
    """Refuse (one line) before any work when generated code would run unisolated without --unsafe-exec."""
    from trainer import sandbox

    sandbox.allow_unsafe_exec(args.unsafe_exec)
    if (not args.no_humaneval or args.mbpp or args.humaneval_x) and (reason := sandbox.require()):
        print(f"codecurate: running generated code WITHOUT a sandbox ({reason})", file=sys.stderr)


def cmd_eval(args) -> int:
    from trainer.eval import evaluate

    try:
        _sandbox(args)
        res = evaluate(args.checkpoint, heldout=args.heldout, humaneval_limit=args.limit, skip_humaneval=args.no_humaneval,
                       mbpp_path=args.mbpp, humaneval_x_path=args.humaneval_x, fim_samples=args.fim,
                       max_new_tokens=args.max_new_tokens)
        res |= _score_eval_sets(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"codecurate: {e}", file=sys.stderr)
        return 2
    text = json.dumps(res, indent=1, default=str)
    if args.output:
        from pipeline import storage

        storage.write_text(args.output, text + "\n")
    print(text)
    return 0


def cmd_ablate(args) -> int:
    from trainer.ablate import ablate

    try:
        _sandbox(args)
        ablate(_pairs(args.corpus, "--corpus"), args.train, args.out, tokens=args.tokens, heldout=args.heldout,
               humaneval_limit=args.limit, skip_humaneval=args.no_humaneval, mbpp_path=args.mbpp,
               humaneval_x_path=args.humaneval_x, fim_samples=args.fim, max_new_tokens=args.max_new_tokens,
               heldout_tokens=args.heldout_tokens, seeds=args.seeds, **_eval_set_kwargs(args))
    except (ValueError, FileNotFoundError) as e:
        print(f"codecurate: {e}", file=sys.stderr)
        return 2
    return 0


def _bench_options(p) -> None:
    p.add_argument("--limit", type=int, help="first N HumanEval/MBPP problems only")
    p.add_argument("--no-humaneval", action="store_true", help="skip HumanEval")
    p.add_argument("--mbpp", help="MBPP JSONL file (text, test_list)")
    p.add_argument("--humaneval-x", help="HumanEval-X / MultiPL-E JSONL file, or a directory of them (one per language)")
    p.add_argument("--fim", type=int, default=50, help="FIM exact-match samples from held-out code (0: skip)")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--unsafe-exec", action="store_true",
                   help="where the kernel allows no sandbox, run generated code anyway, unisolated")


def _eval_set_options(p) -> None:
    g = p.add_argument_group("independent evaluation sets (bits per byte of reference answers; trainer/evalsets.py)")
    g.add_argument("--gsm8k", help="GSM8K JSON/JSONL file (question, answer)")
    g.add_argument("--math", help="MATH JSON/JSONL file (problem, solution)")
    g.add_argument("--reference-text", help="natural-language reference: .txt/.md file or directory, or JSONL with text; "
                   "'none' for no natural-language set (default: the Python language reference, pydoc_data.topics)")
    g.add_argument("--eval-docs", type=int, default=200, help="documents per set, evenly spaced (0: all; default 200)")
    g.add_argument("--eval-bytes", type=int, default=4096, help="bytes scored per answer at most (0: all; default 4096)")


def _eval_set_kwargs(args) -> dict:
    """HumanEval (unless --no-humaneval), MBPP and HumanEval-X solutions come from the pass@1 options' files."""
    return {"gsm8k_path": args.gsm8k, "math_path": args.math, "reference_text": args.reference_text,
            "eval_docs": args.eval_docs or None, "eval_bytes": args.eval_bytes or None}


def _score_eval_sets(args) -> dict:
    from tokenizer import load as load_tokenizer
    from trainer.evalsets import load_sets, score_sets
    from trainer.train import load_model

    kw = _eval_set_kwargs(args)
    sets = load_sets(args.mbpp, args.humaneval_x, kw["gsm8k_path"], kw["math_path"], kw["reference_text"],
                     humaneval=not args.no_humaneval, limit=kw["eval_docs"], max_bytes=kw["eval_bytes"])
    model, cfg = load_model(args.checkpoint)
    return {"eval_set_sources": [s.describe() for s in sets]} | score_sets(model, load_tokenizer(cfg.train.tokenizer), sets, cfg.train.seq_len)


def cmd_convert(args) -> int:
    from trainer.convert import convert

    try:
        print(convert(args.source, args.output, force=args.force))
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"codecurate: {e}", file=sys.stderr)
        return 2
    return 0


def register(sub) -> None:
    p = sub.add_parser("train", help="train the DeepSeek-V2-style MoE on token shards")
    p.add_argument("config", help="YAML with model: and train: sections (configs/train/*.yaml)")
    p.add_argument("--data", action="append", help="shards dir, run dir or .bin/.idx prefix (repeatable)")
    p.add_argument("--out", help="output directory (checkpoint, log.csv, tb/); resumes when it holds ckpt.pt")
    p.add_argument("--set", action="append", help="SECTION.KEY=VALUE override, e.g. train.max_tokens=1000000")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="held-out loss, HumanEval/MBPP/HumanEval-X pass@1 and FIM of a checkpoint")
    p.add_argument("checkpoint", help="ckpt.pt or the training output directory")
    p.add_argument("--heldout", action="append", help="shards/run dir for held-out documents (default: the training data)")
    p.add_argument("--output", help="also write the JSON results here")
    _bench_options(p)
    _eval_set_options(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("ablate", help="train and evaluate one model per corpus, same budget and seed")
    p.add_argument("--corpus", action="append", required=True, help="NAME=RUN_DIR (or shards dir, or parquet stage dirs joined by commas)")
    p.add_argument("--train", required=True, help="training config, e.g. configs/train/tiny.yaml")
    p.add_argument("--tokens", type=int, help="training tokens per corpus (default: the config's budget)")
    p.add_argument("--out", default="runs/ablation", help="output directory")
    p.add_argument("--heldout", help="corpus whose held-out documents form the extra, not independent, column (default: the first)")
    p.add_argument("--heldout-tokens", type=int, help="cap on held-out tokens scored (each document's first tokens)")
    p.add_argument("--seeds", type=int, default=1, help="models per corpus; seed k changes init and data order (default 1)")
    _bench_options(p)
    _eval_set_options(p)
    p.set_defaults(func=cmd_ablate)

    p = sub.add_parser("convert", help="training checkpoint -> transformers directory, or transformers directory -> checkpoint")
    p.add_argument("source", help="ckpt.pt (or its training directory), or a directory with config.json + safetensors")
    p.add_argument("output", help="the transformers directory to write, or the checkpoint (a .pt file or a directory)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=cmd_convert)
