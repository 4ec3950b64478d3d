"""Base classes for codecurate's datatrove steps, with document accounting built in.

Every stage must account for every input document: `in == kept + sum(dropped[reason])`.
Steps record this through three calls that write datatrove stats under the `acct/` prefix;
the runner sums them over all steps and tasks of a stage into `_stats.json`.

- `count_in(doc)`: a document entered the stage (readers and source steps);
- `drop(doc, reason)`: a document left the stage, with a reason (filters, failed reads);
- `count_kept(doc)`: a document was written (the shard writer).

`Accounted` wraps a third-party step (e.g. a datatrove filter) and attributes every document
it swallows to one reason, so foreign steps keep the books balanced too.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.stats import MetricStats, TimingStats

from pipeline.documents import text_bytes

ACCT = "acct/"


class Step(PipelineStep):
    """A datatrove step with accounting helpers. Subclasses implement `run`."""

    type = "codecurate"

    def count_in(self, doc: Document | None = None, nbytes: int | None = None) -> None:
        self.stat_update(ACCT + "in")
        self.stat_update(ACCT + "in_bytes", value=nbytes if nbytes is not None else text_bytes(doc), unit="doc")

    def count_kept(self, doc: Document) -> None:
        self.stat_update(ACCT + "kept")
        self.stat_update(ACCT + "kept_bytes", value=text_bytes(doc), unit="doc")

    def drop(self, doc: Document | None, reason: str, nbytes: int | None = None) -> None:
        """Record that `doc` leaves the stage. `nbytes` stands in when there is no text (unreadable input)."""
        self.stat_update(ACCT + "dropped/" + reason)
        n = nbytes if nbytes is not None else (text_bytes(doc) if doc is not None else 0)
        self.stat_update(ACCT + "dropped_bytes/" + reason, value=n, unit="doc")


class Tally:
    """The books of a hot loop in plain lists, merged into a step's stats by `flush()`: one
    `stat_update` costs microseconds, as much as a cheap per-file check. Counts and totals come
    out as from `Step.count_in`/`drop`; byte means and variances as datatrove merges tasks."""

    def __init__(self, step: Step):
        self.step = step
        self.sizes: dict[str, list[int]] = defaultdict(list)  # "in" or "dropped/<reason>" -> byte sizes
        self.seconds: list[float] = []  # per-document times, merged into the step's time stats

    def time(self, seconds: float) -> None:
        self.seconds.append(seconds)

    def count_in(self, nbytes: int) -> None:
        self.sizes["in"].append(nbytes)

    def drop(self, reason: str, nbytes: int) -> None:
        self.sizes["dropped/" + reason].append(nbytes)

    def bad(self, reason: str, nbytes: int) -> None:
        """An input that is no item at all (a broken line): counted in and dropped."""
        self.count_in(nbytes)
        self.drop(reason, nbytes)

    def flush(self) -> None:
        stats = self.step.stats
        for key, sizes in self.sizes.items():
            n, total = len(sizes), sum(sizes)
            sq = n * sum(x * x for x in sizes) - total * total  # n^2 * variance, exact in integers
            bytes_key = key.replace("/", "_bytes/", 1) if "/" in key else key + "_bytes"
            stats[ACCT + key] += MetricStats(total=n, n=n, mean=1.0, min=1, max=1)
            stats[ACCT + bytes_key] += MetricStats(total=total, n=n, mean=total / n, min=min(sizes), max=max(sizes),
                                                   _running_variance=sq / n)
        self.sizes.clear()
        if self.seconds:
            s, n = self.seconds, len(self.seconds)
            mean = sum(s) / n
            batch = TimingStats(total=sum(s), n=n, mean=mean, min=min(s), max=max(s),
                                _running_variance=sum((x - mean) * (x - mean) for x in s))
            # MetricStats' merge: TimingStats' own would count each batch as one more task
            stats.time_stats = MetricStats.__add__(stats.time_stats, batch)
            s.clear()


class Accounted(Step):
    """Run a foreign step and count the documents it removes as dropped for `reason`."""

    def __init__(self, step: PipelineStep, reason: str | None = None):
        super().__init__()
        self.step = step
        self.reason = reason or type(step).__name__
        self.name = f"accounted({self.reason})"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        # Filters stream in order, so any document read before the one that comes out, and
        # not itself come out, was dropped by the wrapped step.
        pending: deque[Document] = deque()

        def tap(docs):
            for d in docs:
                pending.append(d)
                yield d

        for out in self.step.run(tap(data), rank, world_size):
            while pending and pending[0] is not out:
                self.drop(pending.popleft(), self.reason)
            if pending:
                pending.popleft()
            yield out
        for d in pending:
            self.drop(d, self.reason)
        # keep the wrapped step's own stats visible in stats.json
        for k, v in self.step.stats.stats.items():
            self.stats.stats[f"{self.reason}/{k}"] = v


class Filter(Step):
    """A filter: subclasses implement `reason(doc) -> str | None` (None keeps the document)."""

    def reason(self, doc: Document) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """Drops and each document's time (what `track_time()` records) are tallied (`Tally`) and merged
        into the stats every 1,000 documents: on cheap rules a `stat_update` costs as much as the rule."""
        books, clock = Tally(self), time.perf_counter
        try:
            for n, doc in enumerate(data, 1):
                start = clock()
                why = self.reason(doc)
                books.time(clock() - start)
                if why is None:
                    yield doc
                else:
                    books.drop(why, text_bytes(doc))
                if n % 1000 == 0:
                    books.flush()
        finally:
            books.flush()
