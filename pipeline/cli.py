"""The `codecurate` command line. Each package adds its subcommands through `register(sub)`."""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that add subcommands: each has `register(subparsers)`; handlers import lazily.
COMMAND_MODULES = [
    "pipeline.commands",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codecurate", description="Build LLM pretraining data the DeepSeek-Coder-V2 way.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
