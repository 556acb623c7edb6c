"""Event-time windows of sentiment counts per (scope, key), counting each document id once.

State lives in two mappings supplied by the caller (plain dicts in tests and batch rescoring,
changelogged faust tables in the worker): ``buckets`` holds counts per bucket of ``bucket``
seconds, ``seen`` the document ids already counted. A tumbling or hopping window is the sum of
its buckets, so each document writes one bucket per scope whatever the number of windows.
Windows close on the clock (``close``), never on the arrival of a later event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alerts.records import Headline
from models.text import dedup_key
from streams.core.records import Bucket, Counts, Trend, TrendEvent, iso
from streams.settings import WindowSettings

SEP = "\x1f"
SENTIMENTS = ("negative", "neutral", "positive")
WORST = 5
TOP_TICKERS = 5
MAX_TICKERS_KEPT = 20


def scope_keys(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The windows a scored record counts in: its topic, and each of its tickers."""
    return [("topic", str(record["topic"]))] + [("ticker", t) for t in record.get("tickers", [])]


def trend_events(record: dict[str, Any]) -> list[TrendEvent]:
    """The event a scored record makes in each window scope it counts in."""
    fields = {k: record[k] for k in ("id", "published_at", "sentiment", "score")}
    extra = {"title": record.get("title", ""), "tickers": tuple(record.get("tickers", []))}
    return [TrendEvent(scope=scope, key=key, **fields, **extra) for scope, key in scope_keys(record)]


def story_key(title: str) -> str:
    """Reposts and syndicated copies share this key: same title up to links, case and punctuation."""
    normalized = dedup_key(title)
    return hashlib.sha1(normalized.encode()).hexdigest()[:16] if normalized else ""


@dataclass(frozen=True)
class WindowSpec:
    """A tumbling (step == size) or hopping window, in seconds."""

    name: str
    size: int
    step: int

    def starts_containing(self, moment: float) -> list[int]:
        """Start times of the windows of this spec that contain ``moment``."""
        first = self.trailing_start(moment)
        return list(range(first, first + self.size, self.step))

    def trailing_start(self, moment: float) -> int:
        """Start of the window of this spec that contains ``moment`` and ends first."""
        return int(moment // self.step) * self.step - self.size + self.step


def window_specs(windows: WindowSettings) -> list[WindowSpec]:
    return [
        WindowSpec(f"{windows.tumbling_seconds}s", windows.tumbling_seconds, windows.tumbling_seconds),
        WindowSpec(f"{windows.hopping_seconds}s", windows.hopping_seconds, windows.hopping_step_seconds),
    ]


@dataclass(frozen=True)
class Outcome:
    counted: bool
    reason: str  # counted | duplicate | late | future


def bucket_key(scope: str, key: str, start: int) -> str:
    return f"{scope}{SEP}{key}{SEP}{start}"


def seen_key(scope: str, key: str, name: str, kind: str = "id") -> str:
    """A seen marker's key: document ids and story keys in namespaces of their own, so no id can pose as a story."""
    return f"{scope}{SEP}{key}{SEP}{kind}{SEP}{name}"


def _mark(start: int, source: tuple[int, int] | None) -> Any:
    """A seen marker: the bucket start, and the event that counted it when known."""
    return [start, source[0], source[1]] if source is not None else start


def _marked_start(marker: Any) -> int:
    return int(marker[0]) if isinstance(marker, list) else int(marker)


def _same_event(marker: Any, source: tuple[int, int] | None) -> bool:
    return source is not None and isinstance(marker, list) and (int(marker[1]), int(marker[2])) == source


def split_key(stored: str) -> tuple[str, str, str]:
    scope, key, last = stored.split(SEP, 2)
    return scope, key, last


def counted_in(previous: Bucket, event: TrendEvent, novel: bool) -> Bucket:
    """``previous`` with one more document; a negative novel one may join the bucket's worst headlines."""
    counts = {name: getattr(previous, name) for name in SENTIMENTS}
    counts[event.sentiment] += 1
    unique = previous.unique.model_dump()
    worst, names = previous.worst, previous.tickers
    if novel:
        unique[event.sentiment] += 1
    if event.sentiment == "negative" and novel:
        worst = tuple(sorted([*worst, (round(event.score, 6), event.id, event.title[:300])])[:WORST])
        names = dict(names)
        for ticker in event.tickers:
            beside = not (event.scope == "ticker" and ticker == event.key)
            if beside and (ticker in names or len(names) < MAX_TICKERS_KEPT):
                names[ticker] = names.get(ticker, 0) + 1
    return previous.model_copy(
        update={**counts, "score_sum": previous.score_sum + event.score, "unique": Counts(**unique),
                "worst": worst, "tickers": names}
    )  # fmt: skip


class TrendWindows:
    """Counts per bucket, windows as sums of buckets, dedup by id, lateness and closing by clock."""

    def __init__(
        self,
        buckets: MutableMapping[str, Any],
        seen: MutableMapping[str, Any],
        specs: list[WindowSpec],
        grace: int,
        max_future: int = 300,
        model_version: str | None = None,
        silent_windows: int = 0,
    ) -> None:
        self.model_version = model_version  # carried by every trend record, as rescored ones carry theirs
        self.silent_windows = silent_windows
        self.bucket = min(spec.step for spec in specs)
        for spec in specs:
            if spec.size % spec.step or spec.step % self.bucket:
                raise ValueError(f"window {spec.name}: size must be a multiple of step, step of {self.bucket}s")
        self.buckets = buckets
        self.seen = seen
        self.specs = specs
        self.grace = grace
        self.max_future = max_future
        self.retention = max(spec.size for spec in specs) + grace
        self.finalized: dict[tuple[str, str, str], int] = {}
        self.dirty: set[tuple[str, str, str, int]] = set()

    def add(self, event: TrendEvent, event_time: float, now: float, source: tuple[int, int] | None = None) -> Outcome:
        """Count one scored document; a duplicate id, a late or a far-future event is not counted.

        A repost of a story already counted for this key within the retention (same normalized
        title) is counted in the raw counts but not in the unique counts that detection uses.

        ``source`` is the (partition, offset) of the event that carries the document. The bucket
        records the last offset it applied per partition in the same write as its counts, and
        the id's marker records its event: so when a crash keeps one of the two writes and loses
        the other, the re-delivered event is neither counted twice nor lost.
        """
        start = int(event_time // self.bucket) * self.bucket
        if start + self.bucket + self.grace <= now:
            return Outcome(False, "late")
        if event_time > now + self.max_future:
            return Outcome(False, "future")
        scope, key = event.scope, event.key
        stored = bucket_key(scope, key, start)
        found = self.buckets.get(stored)
        previous = Bucket.model_validate(found) if found else Bucket()
        if source is not None and previous.applied.get(str(source[0]), -1) >= source[1]:
            return Outcome(False, "duplicate")  # this very event was applied before a crash
        marker = seen_key(scope, key, event.id)
        if marker in self.seen and not _same_event(self.seen[marker], source):
            return Outcome(False, "duplicate")
        self.seen[marker] = _mark(start, source)
        story = story_key(event.title)
        novel = True
        if story:
            story_marker = seen_key(scope, key, story, kind="story")
            novel = story_marker not in self.seen or _same_event(self.seen[story_marker], source)
            if story_marker not in self.seen or novel:
                self.seen[story_marker] = _mark(start, source)
        counted = counted_in(previous, event, novel)
        if source is not None:
            counted = counted.model_copy(update={"applied": {**counted.applied, str(source[0]): source[1]}})
        self.buckets[stored] = counted.model_dump(mode="json")
        for spec in self.specs:
            for window_start in spec.starts_containing(event_time):
                self.dirty.add((scope, key, spec.name, window_start))
        return Outcome(True, "counted")

    def result(self, scope: str, key: str, spec: WindowSpec, start: int, final: bool) -> Trend:
        """The ``sentiment.trends`` record of one window."""
        counts, unique = dict.fromkeys(SENTIMENTS, 0), dict.fromkeys(SENTIMENTS, 0)
        score_sum = 0.0
        worst: list[tuple[float, str, str]] = []
        tickers: dict[str, int] = {}
        for bucket_start in range(start, start + spec.size, self.bucket):
            found = self.buckets.get(bucket_key(scope, key, bucket_start))
            if not found:
                continue
            bucket = Bucket.model_validate(found)
            for name in SENTIMENTS:
                counts[name] += getattr(bucket, name)
                unique[name] += getattr(bucket.unique, name)
            score_sum += bucket.score_sum
            worst.extend(bucket.worst)
            for ticker, n in bucket.tickers.items():
                tickers[ticker] = tickers.get(ticker, 0) + n
        total, unique_total = sum(counts.values()), sum(unique.values())
        headlines = [Headline(id=i, title=t, score=sc) for sc, i, t in sorted(worst)[:WORST]]
        top = [name for name, _ in sorted(tickers.items(), key=lambda item: (-item[1], item[0]))[:TOP_TICKERS]]
        return Trend(
            scope=scope,
            key=key,
            window=spec.name,
            window_start=iso(datetime.fromtimestamp(start, UTC)),
            window_end=iso(datetime.fromtimestamp(start + spec.size, UTC)),
            counts=Counts(**counts),
            total=total,
            negative_share=round(counts["negative"] / total, 6) if total else 0.0,
            mean_score=round(score_sum / total, 6) if total else 0.0,
            unique_counts=Counts(**unique),
            unique_total=unique_total,
            unique_negative_share=round(unique["negative"] / unique_total, 6) if unique_total else 0.0,
            headlines=tuple(headlines),
            top_tickers=tuple(top),
            final=final,
            model_version=self.model_version,
        )

    def updates(self, now: float) -> list[Trend]:
        """Current values of changed open windows that have reached the clock's trailing window.

        An event changes every hopping window that contains it (15 of a 15-minute window hopping
        by the minute); publishing all of them on every change would multiply the trend stream
        for values nobody reads. A changed window is published once it is the trailing window of
        its spec (the one containing the clock that ends first) or an older one still open for
        late events; a younger one waits, changed, until it becomes the trailing one. Every
        window still gets its final record at its close.
        """
        specs = {spec.name: spec for spec in self.specs}
        out = []
        waiting = set()
        for changed in sorted(self.dirty):
            scope, key, name, start = changed
            spec = specs[name]
            if start + spec.size + self.grace <= now:
                continue  # closed: its final record carries it
            if start > spec.trailing_start(now):
                waiting.add(changed)
                continue
            out.append(self.result(scope, key, spec, start, final=False))
        self.dirty = waiting
        return out

    def _bucket_starts(self) -> dict[tuple[str, str], list[int]]:
        found: dict[tuple[str, str], list[int]] = {}
        for stored in list(self.buckets.keys()):
            scope, key, start = split_key(stored)
            found.setdefault((scope, key), []).append(int(start))
        return found

    def close(self, now: float) -> list[Trend]:
        """Final records of every window whose end plus grace has passed, each once per process: the
        windows with stories, then ``silent_windows`` empty ones after a key's last story (so a key that
        goes quiet reads zero, and an alert on it can resolve, instead of its last window standing)."""
        out = []
        for (scope, key), starts in sorted(self._bucket_starts().items()):
            for spec in self.specs:
                done = self.finalized.get((scope, key, spec.name), -1)
                counted = {w for b in starts for w in spec.starts_containing(b)}
                last = max(counted)
                silent = range(last + spec.step, last + spec.step * (self.silent_windows + 1), spec.step)
                closable = sorted(w for w in counted.union(silent) if w > done and w + spec.size + self.grace <= now)
                for window_start in closable:
                    out.append(self.result(scope, key, spec, window_start, final=True))
                if closable:
                    self.finalized[(scope, key, spec.name)] = closable[-1]
        return out

    def expired(self, now: float) -> Iterator[tuple[MutableMapping[str, Any], str]]:
        """(mapping, key) pairs whose every window has closed: safe to delete."""
        horizon = now - self.retention - self.bucket
        for stored in list(self.buckets.keys()):
            if int(split_key(stored)[2]) < horizon:
                yield self.buckets, stored
        for stored in list(self.seen.keys()):
            if _marked_start(self.seen[stored]) < horizon:
                yield self.seen, stored


def replay(
    records: Iterable[dict[str, Any]],
    specs: list[WindowSpec],
    grace: int,
    max_future: int,
    close_every: int = 10_000,
    model_version: str | None = None,
) -> Iterator[Trend]:
    """Final trend records of scored records read back from storage, as the worker would count them.

    Records are replayed in event-time order with the clock at each event's time, so nothing is
    late; windows close as the replay passes them and their state is dropped, so memory holds
    only the light (time, record) list and the open windows.
    """
    ordered = sorted(
        ((datetime.fromisoformat(r["published_at"]).timestamp(), r) for r in records),
        key=lambda pair: (pair[0], str(pair[1]["id"])),
    )
    state = TrendWindows({}, {}, specs, grace, max_future, model_version)
    for number, (moment, record) in enumerate(ordered, start=1):
        for event in trend_events(record):
            state.add(event, moment, moment)
        if number % close_every == 0:
            yield from state.close(moment)
            for mapping, stored in list(state.expired(moment)):
                mapping.pop(stored, None)
    state.dirty.clear()
    yield from state.close(float("inf"))
