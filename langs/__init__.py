"""Programming-language tagging (DeepSeek-Coder-V2's 338 names, by Linguist's cascade) and
natural-language identification (fastText lid.176)."""

from langs.nl import detect_language
from langs.tagger import Tag, tag

__all__ = ["Tag", "tag", "detect_language"]
