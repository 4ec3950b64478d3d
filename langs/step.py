"""Datatrove steps that tag documents, and the `tag_languages` stage kind.

Tagging adds metadata and never drops a document: a file Linguist would exclude keeps flowing
with `lang_exclusion` set, and the stage that owns the data decides whether to drop it.
"""

from __future__ import annotations

from collections import Counter

from datatrove.data import DocumentsPipeline
from pydantic import Field

from pipeline.stage import StageContext, StageSpec
from pipeline.steps import Step


class TagLanguage(Step):
    """Sets metadata lang (DeepSeek name), linguist, lang_kind, lang_strategy, lang_confidence
    and, for files Linguist leaves out, lang_exclusion, from metadata["path"] and the text."""

    name = "tag language"

    def __init__(self, content_only: bool = False):
        super().__init__()
        self.content_only = content_only

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from langs import tag
        from langs.tagger import CONSIDER_BYTES

        for doc in data:
            with self.track_time():
                # the tagger reads 50 KiB at most, and as many characters are at least as many bytes
                head = doc.text[:CONSIDER_BYTES].encode("utf-8", "surrogatepass")
                t = tag(doc.metadata.get("path"), head, self.content_only)
                doc.metadata.update(
                    lang=t.language,
                    linguist=t.linguist,
                    lang_kind=t.kind,
                    lang_strategy=t.strategy,
                    lang_confidence=t.confidence,
                )
                if t.reason:
                    doc.metadata["lang_exclusion"] = t.reason
                    self.stat_update("exclusion/" + t.reason)
                self.stat_update("lang/" + (t.language or "none"))
            yield doc


class TagNaturalLanguage(Step):
    """Sets metadata nl_lang (ISO 639 code, None for text without words) and nl_score (lid.176)."""

    name = "tag natural language"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from langs import detect_language

        for doc in data:
            with self.track_time():
                code, score = detect_language(doc.text)
                doc.metadata["nl_lang"] = code
                doc.metadata["nl_score"] = score
                self.stat_update("nl/" + (code or "none"))
            yield doc


class TagLanguages(StageSpec):
    """Tag each document's programming language (from its path and text) and/or natural language."""

    programming: bool = True
    natural: bool = False
    content_only: bool = Field(default=False, description="ignore file names (classify the text alone)")

    def build(self, ctx: StageContext):
        steps: list[Step] = []
        if self.programming:
            steps.append(TagLanguage(self.content_only))
        if self.natural:
            steps.append(TagNaturalLanguage())
        return steps

    @classmethod
    def report_sections(cls, stage_dir: str, stats: dict) -> list[tuple[str, str]]:
        """The most frequent tags (documents per language, exclusion reason, natural language)."""
        counts: Counter = Counter()
        for step in (stats.get("steps") or {}).values():
            for key, val in step.items():
                if key.startswith(("lang/", "exclusion/", "nl/")):
                    counts[key] += int(val)
        if not counts:
            return []
        from pipeline.report import table_html

        return [("Language tags", table_html(["tag", "documents"], [[k, f"{v:,}"] for k, v in counts.most_common(40)]))]
