"""The filter step: DeepSeek-Coder's rules, then the tree-sitter syntax signal."""

from __future__ import annotations

from datatrove.data import Document

from pipeline.github import rules, syntax
from pipeline.steps import Filter


class DeepSeekCoderFilter(Filter):
    """Drops files by DeepSeek-Coder's rules (reason = rule name); records `syntax_error_ratio`
    for files with a grammar and, with `max_syntax_error_ratio`, drops those above it."""

    name = "deepseek-coder filter"

    def __init__(self, thresholds: rules.Thresholds = rules.DEFAULT, syntax_signal: bool = True,
                 max_syntax_error_ratio: float | None = None):
        super().__init__()
        self.thresholds = thresholds
        self.syntax_signal = syntax_signal
        self.max_syntax_error_ratio = max_syntax_error_ratio

    def reason(self, doc: Document) -> str | None:
        lang = doc.metadata.get("lang") or doc.metadata.get("linguist")
        why = rules.check(doc.text, lang, self.thresholds)
        if why or not self.syntax_signal:
            return why
        ratio = syntax.error_ratio(lang, doc.text.encode("utf-8", "surrogatepass"))
        if ratio is None:
            return None
        doc.metadata["syntax_error_ratio"] = round(ratio, 6)
        if self.max_syntax_error_ratio is not None and ratio > self.max_syntax_error_ratio:
            return "syntax_errors"
        return None
