"""Source stage of the core: plain text of the HTML pages in WARC files."""

from __future__ import annotations

import glob

from datatrove.data import Document, DocumentsPipeline
from pydantic import Field

from pipeline import storage
from pipeline.recipe import InputPath
from pipeline.stage import StageContext, StageSpec
from pipeline.steps import Step


def expand_inputs(paths: list[str]) -> list[str]:
    """Local globs expanded and sorted; URLs and plain paths kept as given."""
    out: list[str] = []
    for p in paths:
        if "://" not in p and any(c in p for c in "*?["):
            out += sorted(glob.glob(p, recursive=True))
        else:
            out.append(p)
    return out


class WarcTextReader(Step):
    """HTML response records of WARC files, as main-content plain text (resiliparse)."""

    name = "warc text reader"

    def __init__(self, files: list[str]):
        super().__init__()
        self.files = files

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from fastwarc.warc import ArchiveIterator, WarcRecordType
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.encoding import bytes_to_str, detect_encoding

        for path in self.files[rank::world_size]:
            with storage.open_file(path, "rb") as f:
                for rec in ArchiveIterator(f, record_types=WarcRecordType.response, parse_http=True):
                    url = rec.headers.get("WARC-Target-URI")
                    body = rec.reader.read()
                    self.count_in(nbytes=len(body))
                    ctype = (rec.http_headers.get("Content-Type") or "") if rec.http_headers else ""
                    if "html" not in ctype.lower():
                        self.drop(None, "not_html", nbytes=len(body))
                        continue
                    text = extract_plain_text(bytes_to_str(body, detect_encoding(body)), main_content=True)
                    if not text.strip():
                        self.drop(None, "empty_text", nbytes=len(body))
                        continue
                    yield Document(
                        text=text,
                        id=rec.headers.get("WARC-Record-ID") or f"{path}:{rec.stream_pos}",
                        metadata={"source": "web", "url": url, "date": rec.headers.get("WARC-Date")},
                    )


class WarcText(StageSpec):
    """Read WARC files (local paths, globs or URLs) into plain-text web documents."""

    needs_input = False
    paths: list[InputPath] = Field(min_length=1)

    def default_tasks(self, ctx: StageContext) -> int:
        return max(1, len(expand_inputs(self.paths)))

    def build(self, ctx: StageContext):
        return [WarcTextReader(expand_inputs(self.paths))]
