"""Syntax signal: the share of a file's bytes that tree-sitter cannot parse.

For every language with a grammar in tree-sitter-language-pack, `error_ratio` is the number
of bytes covered by ERROR nodes (plus one per MISSING node) over the file's size; files in
languages without a grammar get None.
"""

from __future__ import annotations

from functools import cache

# DeepSeek / Linguist names whose tree-sitter-language-pack name is not just the lower-cased name
_GRAMMAR = {
    "c++": "cpp", "c#": "csharp", "objective-c": "objc", "shell": "bash", "emacs lisp": "elisp",
    "common lisp": "commonlisp", "f#": "fsharp", "makefile": "make", "tex": "latex", "vim script": "vim",
    "vim snippet": "vim", "protocol buffer": "proto", "restructuredtext": "rst", "dockerfile": "dockerfile",
    "cuda": "cuda", "batchfile": None, "text": None, "visual basic": None, "assembly": "asm",
    "jupyter notebook": None, "tsx": "tsx", "systemverilog": "verilog", "powershell": "powershell",
}


@cache
def parser_for(lang: str | None):
    """A tree-sitter parser for a language name, or None without a grammar."""
    if not lang:
        return None
    from tree_sitter_language_pack import get_parser

    key = lang.lower()
    name = _GRAMMAR.get(key, key.replace(" ", "_"))
    if name is None:
        return None
    try:
        return get_parser(name)
    except (LookupError, ValueError, KeyError):
        return None


def error_bytes(root) -> int:
    """Bytes under ERROR nodes plus one per MISSING node, visiting only subtrees that hold errors."""
    total = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error:
            total += node.end_byte - node.start_byte
        elif node.is_missing:
            total += 1
        elif node.has_error:
            stack.extend(node.children)
    return total


def parse(lang: str | None, data: bytes):
    p = parser_for(lang)
    return None if p is None else p.parse(data)


def error_ratio(lang: str | None, data: bytes) -> float | None:
    tree = parse(lang, data)
    if tree is None or not data:
        return None
    return min(1.0, error_bytes(tree.root_node) / len(data))
