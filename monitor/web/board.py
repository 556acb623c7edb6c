"""What the dashboard shows, kept small whatever the stream's rate.

The board is fed every record of ``news.scored``, ``sentiment.trends``, ``alerts`` and
``feedback``, and keeps only aggregates: a series of closed and open windows per topic and per
ticker, a sampled feed of the latest headlines, the alerts, throughput, and how often analysts
agreed with the model. ``snapshot`` is what the page receives, filtered, once a second.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from alerts.records import Alert
from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
from streams.core.records import Trend

SENTIMENTS = ("negative", "neutral", "positive")
REVIEW_FIELDS = ("model_topic", "topic", "model_sentiment", "sentiment", "verdict", "analyst")
FEED_FIELDS = ("id", "published_at", "title", "lang", "topic", "sentiment", "score", "tickers", "model_version")


class Board:
    """Aggregates for the dashboard; every ``add_*`` takes a decoded record and never raises on odd ones."""

    def __init__(
        self,
        window: str,
        history: int = 60,
        feed_size: int = 300,
        feed_per_second: int = 10,
        max_tickers: int = 500,
        max_reviews: int = 50_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window = window
        self.history = history
        self.feed_per_second = feed_per_second
        self.max_tickers = max_tickers
        self.max_reviews = max_reviews
        self.clock = clock
        self.feed: deque[dict[str, Any]] = deque(maxlen=feed_size)
        self.series: dict[tuple[str, str], OrderedDict[str, dict[str, Any]]] = {}
        self.alerts: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.reviews: dict[str, dict[str, dict[str, int]]] = {"topic": {}, "sentiment": {}}
        self.reviewed: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.per_second: deque[list[float]] = deque(maxlen=120)
        self.scored_total = 0
        self.versions: dict[str, int] = {}
        self.model: dict[str, str] = {}
        self._sampled_second = 0
        self._sampled = 0

    def add_scored(self, raw: bytes) -> None:
        """Count every scored document; decode and keep only a sample for the feed."""
        now = self.clock()
        second = int(now)
        if self.per_second and self.per_second[-1][0] == second:
            self.per_second[-1][1] += 1
        else:
            self.per_second.append([second, 1])
        self.scored_total += 1
        if second != self._sampled_second:
            self._sampled_second, self._sampled = second, 0
        if self._sampled >= self.feed_per_second:
            return
        try:
            record = json.loads(raw)
            item = {name: record.get(name) for name in FEED_FIELDS}
            item["score"] = float(item["score"])
        except (ValueError, TypeError, AttributeError):
            return
        self._sampled += 1
        self.feed.append(item)
        version = str(item.get("model_version"))
        self.versions[version] = self.versions.get(version, 0) + 1
        self.model["version"] = version  # the model that scored the latest document

    def add_trend(self, record: Trend) -> None:
        if record.window != self.window or record.scope not in ("topic", "ticker"):
            return
        key = (record.scope, record.key)
        series = self.series.get(key)
        if series is None:
            if key[0] == "ticker" and sum(1 for s, _ in self.series if s == "ticker") >= self.max_tickers:
                self._evict_ticker()
            series = self.series[key] = OrderedDict()
        series[record.window_start] = {
            "start": record.window_start,
            "counts": record.counts.model_dump(),
            "total": record.total,
            "negative_share": record.negative_share,
            "mean_score": record.mean_score,
            "final": record.final,
            "headlines": [h.model_dump() for h in record.headlines[:3]],
        }
        for stale in sorted(series)[: max(0, len(series) - self.history)]:
            del series[stale]

    def _evict_ticker(self) -> None:
        quietest = min(
            (key for key in self.series if key[0] == "ticker"),
            key=lambda k: max(self.series[k]) if self.series[k] else "",
        )
        del self.series[quietest]

    def add_alert(self, record: Alert) -> None:
        self.alerts.pop(record.alert_id, None)
        self.alerts[record.alert_id] = {**record.model_dump(mode="json"), "seen_at": self.clock()}
        while len(self.alerts) > 200:
            self.alerts.popitem(last=False)

    def add_feedback(self, record: dict[str, Any]) -> None:
        """Agreement per model label: the latest review of a document replaces an earlier one. The
        latest ``max_reviews`` documents' reviews are kept; older ones still count, and are no longer
        replaced by a later review of theirs."""
        doc_id = str(record.get("id"))
        previous = self.reviewed.pop(doc_id, None)
        if previous:
            self._count(previous, -1)
        self._count(record, +1)
        self.reviewed[doc_id] = {name: record.get(name) for name in REVIEW_FIELDS}
        while len(self.reviewed) > self.max_reviews:
            self.reviewed.popitem(last=False)

    def _count(self, record: dict[str, Any], sign: int) -> None:
        for head in ("topic", "sentiment"):
            if record.get(f"model_{head}") is None:
                continue
            label = str(record.get(f"model_{head}"))
            row = self.reviews[head].setdefault(label, {"reviewed": 0, "agreed": 0})
            row["reviewed"] += sign
            row["agreed"] += sign * int(record.get(head) == record.get(f"model_{head}"))

    def throughput(self, seconds: int = 10) -> float:
        now = int(self.clock())
        recent = sum(n for second, n in self.per_second if now - seconds <= second < now)
        return recent / seconds

    def snapshot(
        self, topic: str | None = None, ticker: str | None = None, sentiment: str | None = None
    ) -> dict[str, Any]:
        """The page's view: filters narrow the topics, the feed and the alerts."""
        topics = [
            {"key": key, "points": list(points.values())}
            for (scope, key), points in sorted(self.series.items())
            if scope == "topic" and (topic is None or key == topic)
        ]
        feed = [
            item
            for item in reversed(self.feed)
            if (topic is None or item["topic"] == topic)
            and (ticker is None or ticker in (item.get("tickers") or []))
            and (sentiment is None or item["sentiment"] == sentiment)
        ][:60]
        alerts = [
            a
            for a in reversed(self.alerts.values())
            if (topic is None or (a.get("scope"), a.get("key")) == ("topic", topic))
            and (ticker is None or (a.get("scope"), a.get("key")) == ("ticker", ticker))
        ]
        shown = {item["id"] for item in feed} | {h.get("id") for a in alerts[:30] for h in a.get("headlines") or []}
        reviews = {
            doc: {"verdict": review.get("verdict"), "analyst": review.get("analyst")}
            for doc in shown
            if (review := self.reviewed.get(str(doc))) is not None
        }
        return {
            "window": self.window,
            "model": {**self.model, "versions_seen": dict(self.versions)},
            "throughput": round(self.throughput(), 2),
            "scored_total": self.scored_total,
            "topics": topics,
            "ticker": self.ticker_view(ticker) if ticker else None,
            "tickers": self.busiest_tickers(),
            "feed": feed,
            "alerts": {"firing": [a for a in alerts if a.get("status") == "firing"], "recent": alerts[:30]},
            "reviews": reviews,
            "agreement": {head: self._rates(rows) for head, rows in self.reviews.items()},
            "filters": {"topic": topic, "ticker": ticker, "sentiment": sentiment},
            "labels": {"topics": list(TOPIC_LABELS), "sentiments": list(SENTIMENT_LABELS)},
        }

    def ticker_view(self, ticker: str) -> dict[str, Any]:
        return {"key": ticker, "points": list(self.series.get(("ticker", ticker), {}).values())}

    def busiest_tickers(self, count: int = 30) -> list[str]:
        volume = {
            key: sum(p["total"] for p in points.values())
            for (scope, key), points in self.series.items()
            if scope == "ticker"
        }
        return [key for key, _ in sorted(volume.items(), key=lambda kv: (-kv[1], kv[0]))[:count]]

    @staticmethod
    def _rates(rows: dict[str, dict[str, int]]) -> dict[str, dict[str, Any]]:
        return {
            label: {**row, "rate": round(row["agreed"] / row["reviewed"], 4) if row["reviewed"] else None}
            for label, row in sorted(rows.items())
            if row["reviewed"] > 0
        }
