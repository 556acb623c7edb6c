"""Event-time windows of sentiment counts per (scope, key), counting each document id once.

State is plain maps in memory: counts per bucket of ``bucket`` seconds, and seen markers (document
ids and story keys already counted). A tumbling or hopping window is the sum of its buckets, so a
document changes one bucket per scope whatever the number of windows. Windows close on the clock
(``close``), never on the arrival of a later event.

The worker keeps one ``TrendWindows`` per partition of its trend-events topic and writes what
changed once per checkpoint (``checkpoint``): each changed bucket once, with the last input offset
it covers, the new seen markers in a few chunks, and deletions of what expired. A restarted worker
reads them back (``restore``); an event replayed after a crash is recognised by the offsets the
state carries, so it counts once. Closing and expiry look only at what is due (heaps by time),
never at the whole state.
"""

from __future__ import annotations

import hashlib
import heapq
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from alerts.records import Headline
from models.text import dedup_key
from streams.core.records import Counts, Trend, TrendEvent, iso
from streams.settings import WindowSettings

SEP = "\x1f"
SENTIMENTS = ("negative", "neutral", "positive")
_INDEX = {name: i for i, name in enumerate(SENTIMENTS)}
WORST = 5
TOP_TICKERS = 5
MAX_TICKERS_KEPT = 20
MARKERS_PER_CHUNK = 2_000  # seen markers per changelog record

Marker = tuple[str, str, str, str]  # scope, key, kind (id | story), name
Source = tuple[int, int]  # (offset of the packed trend-events message, index of the event in it)


def scope_keys(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The windows a scored record counts in: its topic, and each of its tickers."""
    return [("topic", str(record["topic"]))] + [("ticker", t) for t in dict.fromkeys(record.get("tickers", []))]


def trend_events(record: dict[str, Any], published: float | None = None) -> list[TrendEvent]:
    """The event a scored record makes in each window scope it counts in (``published``: its
    published_at in seconds, when the caller has it already)."""
    moment = datetime.fromisoformat(record["published_at"]).timestamp() if published is None else published
    title, tickers = str(record.get("title", "")), tuple(record.get("tickers", []))
    doc_id, sentiment, score = str(record["id"]), str(record["sentiment"]), float(record["score"])
    return [
        TrendEvent(scope, key, doc_id, moment, sentiment, score, title, tickers) for scope, key in scope_keys(record)
    ]


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


@dataclass(slots=True)
class Bucket:
    """What one bucket of one key holds. ``applied``: the last trend-events offset whose events are
    all in it as written to the changelog; ``latest``: the last one applied in memory."""

    counts: list[int] = field(default_factory=lambda: [0, 0, 0])
    unique: list[int] = field(default_factory=lambda: [0, 0, 0])
    score_sum: float = 0.0
    worst: list[tuple[float, str, str]] = field(default_factory=list)  # (score, id, title), most negative first
    tickers: dict[str, int] = field(default_factory=dict)  # named beside the key in its negative stories
    applied: int = -1
    latest: int = -1

    def add(self, event: TrendEvent, novel: bool) -> None:
        """One more document; a negative novel one may join the bucket's worst headlines."""
        index = _INDEX[event.sentiment]
        self.counts[index] += 1
        self.score_sum += event.score
        if not novel:
            return
        self.unique[index] += 1
        if event.sentiment == "negative":
            self.worst = sorted([*self.worst, (round(event.score, 6), event.id, event.title[:300])])[:WORST]
            for ticker in event.tickers:
                beside = not (event.scope == "ticker" and ticker == event.key)
                if beside and (ticker in self.tickers or len(self.tickers) < MAX_TICKERS_KEPT):
                    self.tickers[ticker] = self.tickers.get(ticker, 0) + 1

    def encode(self) -> bytes:
        self.applied = max(self.applied, self.latest)
        return orjson.dumps([self.counts, self.unique, self.score_sum, self.worst, self.tickers, self.applied])

    @classmethod
    def decode(cls, raw: bytes) -> Bucket:
        counts, unique, score_sum, worst, tickers, applied = orjson.loads(raw)
        return cls(list(counts), list(unique), float(score_sum), [tuple(w) for w in worst], dict(tickers), applied)


@dataclass(slots=True)
class _Key:
    """One key's bucket starts (sorted), its latest story's bucket, what was finalized, when it is next due."""

    starts: list[int] = field(default_factory=list)
    last: int = 0
    finalized: dict[str, int] = field(default_factory=dict)
    due: float | None = None


def _same_event(marked: tuple[int, int, int], source: Source | None) -> bool:
    return source is not None and (marked[1], marked[2]) == source


class TrendWindows:
    """Counts per bucket, windows as sums of buckets, dedup by id, lateness and closing by clock."""

    def __init__(
        self,
        specs: list[WindowSpec],
        grace: int,
        max_future: int = 300,
        model_version: str | None = None,
        silent_windows: int = 0,
        changelog: bool = False,
    ) -> None:
        self.model_version = model_version  # carried by every trend record, as rescored ones carry theirs
        self.silent_windows = silent_windows
        self.bucket = min(spec.step for spec in specs)
        for spec in specs:
            if spec.size % spec.step or spec.step % self.bucket:
                raise ValueError(f"window {spec.name}: size must be a multiple of step, step of {self.bucket}s")
        self.specs, self.grace, self.max_future = specs, grace, max_future
        self.retention = max(spec.size for spec in specs) + grace
        self.changelog = changelog  # keep what changed for ``checkpoint``
        self.buckets: dict[tuple[str, str, int], Bucket] = {}
        self.seen: dict[Marker, tuple[int, int, int]] = {}  # marker -> (bucket start, offset, index)
        self.keys: dict[tuple[str, str], _Key] = {}
        self.dirty: set[tuple[str, str, str, int]] = set()
        self._starts: set[int] = set()
        self._start_heap: list[int] = []
        self._by_start: dict[int, set[tuple[str, str]]] = {}
        self._marks_by_start: dict[int, list[Marker]] = {}
        self._chunks_by_start: dict[int, list[bytes]] = {}
        self._due: list[tuple[float, str, str]] = []
        self._changed: set[tuple[str, str, int]] = set()
        self._new_marks: dict[int, list[tuple[Marker, tuple[int, int, int]]]] = {}
        self._removed: list[bytes] = []

    def size(self) -> int:
        """Entries of state held: buckets, seen markers and keys."""
        return len(self.buckets) + len(self.seen) + len(self.keys)

    def add(self, event: TrendEvent, now: float, source: Source | None = None) -> Outcome:
        """Count one scored document; a duplicate id, a late or a far-future event is not counted.

        A repost of a story already counted for this key within the retention (same normalized
        title) is counted in the raw counts but not in the unique counts that detection uses.
        ``source``: (offset, index) of the event in the trend-events partition, so that an event
        replayed after a crash is recognised: by its bucket's offset, or by its markers.
        """
        start = int(event.published // self.bucket) * self.bucket
        if start + self.bucket + self.grace <= now:
            return Outcome(False, "late")
        if event.published > now + self.max_future:
            return Outcome(False, "future")
        scope, key = event.scope, event.key
        bucket = self.buckets.get((scope, key, start))
        marker = (scope, key, "id", event.id)
        if source is not None and bucket is not None and bucket.applied >= source[0]:
            if marker not in self.seen:  # the count was written before a crash, its marker was not
                self._mark(marker, start, source)
            return Outcome(False, "duplicate")
        marked = self.seen.get(marker)
        if marked is not None and not _same_event(marked, source):
            return Outcome(False, "duplicate")
        if marked is None:
            self._mark(marker, start, source)
        story, novel = story_key(event.title), True
        if story:
            story_marker = (scope, key, "story", story)
            found = self.seen.get(story_marker)
            novel = found is None or _same_event(found, source)
            if found is None:
                self._mark(story_marker, start, source)
        if bucket is None:
            bucket = self.buckets[(scope, key, start)] = Bucket()
            self._hold(scope, key, start)
        bucket.add(event, novel)
        if source is not None:
            bucket.latest = max(bucket.latest, source[0])
        if self.changelog:
            self._changed.add((scope, key, start))
        for spec in self.specs:
            for window_start in spec.starts_containing(event.published):
                self.dirty.add((scope, key, spec.name, window_start))
        self._schedule(scope, key, self._next_due(self.keys[(scope, key)], [start]))
        return Outcome(True, "counted")

    def _mark(self, marker: Marker, start: int, source: Source | None) -> None:
        value = (start, *(source or (-1, -1)))
        self.seen[marker] = value  # type: ignore[assignment]
        self._marks_by_start.setdefault(start, []).append(marker)
        self._note_start(start)
        if self.changelog:
            self._new_marks.setdefault(start, []).append((marker, value))  # type: ignore[arg-type]

    def _note_start(self, start: int) -> None:
        if start not in self._starts:
            self._starts.add(start)
            heapq.heappush(self._start_heap, start)

    def _hold(self, scope: str, key: str, start: int) -> None:
        """Index a new bucket: by its start (for expiry) and under its key (for closing)."""
        state = self.keys.get((scope, key))
        if state is None:
            state = self.keys[(scope, key)] = _Key(last=start)
        if not state.starts or start > state.starts[-1]:
            state.starts.append(start)
        else:
            state.starts.insert(next(i for i, s in enumerate(state.starts) if s > start), start)
        state.last = max(state.last, start)
        self._by_start.setdefault(start, set()).add((scope, key))
        self._note_start(start)

    def _windows(self, state: _Key, spec: WindowSpec, starts: Iterable[int]) -> set[int]:
        return {w for b in starts for w in spec.starts_containing(b)}

    def _silent(self, state: _Key, spec: WindowSpec) -> range:
        last = max(spec.starts_containing(state.last))
        return range(last + spec.step, last + spec.step * (self.silent_windows + 1), spec.step)

    def _next_due(self, state: _Key, starts: Iterable[int], silent: bool = False) -> float | None:
        """When the first window of these buckets (and the key's silent ones) not yet final closes."""
        due = None
        for spec in self.specs:
            done = state.finalized.get(spec.name, -1)
            windows = self._windows(state, spec, starts) | (set(self._silent(state, spec)) if silent else set())
            pending = [w for w in windows if w > done]
            if pending:
                end = min(pending) + spec.size + self.grace
                due = end if due is None else min(due, end)
        return due

    def _schedule(self, scope: str, key: str, due: float | None) -> None:
        state = self.keys[(scope, key)]
        if due is not None and (state.due is None or due < state.due):
            state.due = due
            heapq.heappush(self._due, (due, scope, key))

    def result(self, scope: str, key: str, spec: WindowSpec, start: int, final: bool) -> Trend:
        """The ``sentiment.trends`` record of one window."""
        counts, unique = [0, 0, 0], [0, 0, 0]
        score_sum = 0.0
        worst: list[tuple[float, str, str]] = []
        tickers: dict[str, int] = {}
        for bucket_start in range(start, start + spec.size, self.bucket):
            bucket = self.buckets.get((scope, key, bucket_start))
            if bucket is None:
                continue
            for i in range(3):
                counts[i] += bucket.counts[i]
                unique[i] += bucket.unique[i]
            score_sum += bucket.score_sum
            worst.extend(bucket.worst)
            for ticker, n in bucket.tickers.items():
                tickers[ticker] = tickers.get(ticker, 0) + n
        total, unique_total = sum(counts), sum(unique)
        headlines = [Headline(id=i, title=t, score=sc) for sc, i, t in sorted(worst)[:WORST]]
        top = [name for name, _ in sorted(tickers.items(), key=lambda item: (-item[1], item[0]))[:TOP_TICKERS]]
        return Trend(
            scope=scope,
            key=key,
            window=spec.name,
            window_start=iso(datetime.fromtimestamp(start, UTC)),
            window_end=iso(datetime.fromtimestamp(start + spec.size, UTC)),
            counts=Counts(**dict(zip(SENTIMENTS, counts, strict=True))),
            total=total,
            negative_share=round(counts[0] / total, 6) if total else 0.0,
            mean_score=round(score_sum / total, 6) if total else 0.0,
            unique_counts=Counts(**dict(zip(SENTIMENTS, unique, strict=True))),
            unique_total=unique_total,
            unique_negative_share=round(unique[0] / unique_total, 6) if unique_total else 0.0,
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

    def close(self, now: float) -> list[Trend]:
        """Final records of every window whose end plus grace has passed, each once per process: the
        windows with stories, then ``silent_windows`` empty ones after a key's last story (so a key that
        goes quiet reads zero, and an alert on it can resolve, instead of its last window standing).
        Only keys with a window due are looked at."""
        out: list[Trend] = []
        while self._due and self._due[0][0] <= now:
            due, scope, key = heapq.heappop(self._due)
            state = self.keys.get((scope, key))
            if state is None or state.due != due:
                continue  # superseded by an earlier due time, or the key is gone
            state.due = None
            for spec in self.specs:
                done = state.finalized.get(spec.name, -1)
                windows = self._windows(state, spec, state.starts) | set(self._silent(state, spec))
                closable = sorted(w for w in windows if w > done and w + spec.size + self.grace <= now)
                out.extend(self.result(scope, key, spec, w, final=True) for w in closable)
                if closable:
                    state.finalized[spec.name] = closable[-1]
            following = self._next_due(state, state.starts, silent=True)
            if following is None and not state.starts:
                del self.keys[(scope, key)]
            else:
                self._schedule(scope, key, following)
        return out

    def expire(self, now: float) -> None:
        """Drop buckets and markers whose every window has closed (and their keys once nothing is left)."""
        horizon = now - self.retention - self.bucket
        while self._start_heap and self._start_heap[0] < horizon:
            start = heapq.heappop(self._start_heap)
            self._starts.discard(start)
            for scope, key in self._by_start.pop(start, ()):
                self.buckets.pop((scope, key, start), None)
                self._changed.discard((scope, key, start))
                if self.changelog:
                    self._removed.append(bucket_name(scope, key, start))
                state = self.keys.get((scope, key))
                if state is not None:
                    state.starts.remove(start)
                    if not state.starts and state.due is None:
                        del self.keys[(scope, key)]
            for marker in self._marks_by_start.pop(start, ()):
                self.seen.pop(marker, None)
            self._new_marks.pop(start, None)
            self._removed.extend(self._chunks_by_start.pop(start, ()))

    def checkpoint(self) -> list[tuple[bytes, bytes | None]]:
        """What changed since the last checkpoint, as changelog records (key, value; None deletes):
        each changed bucket once, the new markers in chunks, deletions of what expired."""
        writes: list[tuple[bytes, bytes | None]] = [
            (bucket_name(*changed), self.buckets[changed].encode()) for changed in sorted(self._changed)
        ]
        for start, marks in sorted(self._new_marks.items()):
            for first in range(0, len(marks), MARKERS_PER_CHUNK):
                name = f"m{SEP}{start}{SEP}{uuid.uuid4().hex[:16]}".encode()
                chunk = [[*marker, *value[1:]] for marker, value in marks[first : first + MARKERS_PER_CHUNK]]
                self._chunks_by_start.setdefault(start, []).append(name)
                writes.append((name, orjson.dumps(chunk)))
        writes += [(name, None) for name in self._removed]
        self._changed, self._new_marks, self._removed = set(), {}, []
        return writes

    def restore(self, records: Iterable[tuple[bytes, bytes | None]]) -> None:
        """State from changelog records read in order (a deletion undoes what came before it)."""
        buckets: dict[tuple[str, str, int], bytes] = {}
        chunks: dict[bytes, bytes] = {}
        for name, value in records:
            kind = name[:1]
            if kind == b"b":
                scope, key, begins = name[2:].decode().split(SEP)
                if value is None:
                    buckets.pop((scope, key, int(begins)), None)
                else:
                    buckets[(scope, key, int(begins))] = value
            elif kind == b"m" and value is None:
                chunks.pop(name, None)
            elif kind == b"m" and value is not None:
                chunks[name] = value
        for (scope, key, start), raw in buckets.items():
            self.buckets[(scope, key, start)] = Bucket.decode(raw)
            self._hold(scope, key, start)
        for name, raw in chunks.items():
            first = int(name[2:].decode().split(SEP)[0])
            self._chunks_by_start.setdefault(first, []).append(name)
            for scope, key, kind_name, marked, offset, index in orjson.loads(raw):
                self.seen[(scope, key, kind_name, marked)] = (first, int(offset), int(index))
                self._marks_by_start.setdefault(first, []).append((scope, key, kind_name, marked))
                self._note_start(first)
        for (scope, key), state in self.keys.items():
            self._schedule(scope, key, self._next_due(state, state.starts, silent=True))


def bucket_name(scope: str, key: str, start: int) -> bytes:
    """A bucket's changelog key."""
    return f"b{SEP}{scope}{SEP}{key}{SEP}{start}".encode()


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
    state = TrendWindows(specs, grace, max_future, model_version)
    for number, (moment, record) in enumerate(ordered, start=1):
        for event in trend_events(record, moment):
            state.add(event, moment)
        if number % close_every == 0:
            yield from state.close(moment)
            state.expire(moment)
    state.dirty.clear()
    yield from state.close(float("inf"))
