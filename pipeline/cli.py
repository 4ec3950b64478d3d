"""The `codecurate` command line. Each package adds its subcommands through `register(sub)`."""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that add subcommands: each has `register(subparsers)`; handlers import lazily.
COMMAND_MODULES = [
    "pipeline.commands",
    "langs.cli",
    "classifiers.cli",
    "pipeline.github.cli",
    "pipeline.web.cli",
    "pipeline.decontaminate.cli",
    "tokenizer.cli",
    "trainer.cli",
    "dedup.cli",
]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; given the command asked for, modules are registered only until one has added it (some build
    their flags from their stage classes: datatrove, pydantic, ~0.5 s that `codecurate langs tag` need not pay)."""
    parser = argparse.ArgumentParser(prog="codecurate", description="Build LLM pretraining data the DeepSeek-Coder-V2 way.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(sub)
        if command is not None and command in sub.choices:
            break
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(next((a for a in argv if not a.startswith("-")), None))
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except Exception as e:
        # the recipe and runner modules are imported only by commands that raise their errors (a start-up
        # cost of ~1 s that `langs tag` and other small commands do not pay)
        recipe, runner = sys.modules.get("pipeline.recipe"), sys.modules.get("pipeline.runner")
        if recipe is not None and isinstance(e, recipe.RecipeError):  # an invalid recipe: one line per problem
            for line in e.problems:
                print(line, file=sys.stderr)
            return 2
        if runner is not None and isinstance(e, runner.RunError):  # a stage failed: one line; running again resumes
            print(f"codecurate: {e}", file=sys.stderr)
            return 1
        raise
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
