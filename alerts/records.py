"""What the detector reads (closed-window statistics) and writes (alert records)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class WindowStats:
    """A closed window of one key: counts (unique where novelty applies) and its most negative items."""

    scope: str
    key: str
    window_start: str
    window_end: str
    negative: int
    total: int
    headlines: tuple[dict[str, Any], ...] = ()
    tickers: tuple[str, ...] = ()
    model_version: str | None = None
    end_seconds: float = 0.0

    @property
    def share(self) -> float:
        return self.negative / self.total if self.total else 0.0


@dataclass
class KeyState:
    """What the detector remembers of one key between windows."""

    baseline_share: float
    baseline_negative: float
    windows: int = 0
    firing: dict[str, Any] | None = None
    calm: int = 0
    cooldown_until: float = -1.0
    last_window: str = ""
    seen_negative: int = 0  # unique negative stories and all unique stories of the warm-up windows
    seen_total: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyState:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def alert_id(scope: str, key: str, window_start: str) -> str:
    """Deterministic from scope, key and the window the spike started in: the dedup key."""
    return hashlib.sha256(f"{scope}|{key}|{window_start}".encode()).hexdigest()[:20]


class Record(BaseModel):
    """A record on a topic: typed fields, one JSON encoding (``encode``) and decoding (``decode``).

    Unknown fields are ignored on reading, so a newer writer does not break an older reader.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> Any:
        return cls.model_validate_json(raw)


class Headline(Record):
    id: str
    title: str = ""
    score: float = 0.0


class AlertWindow(Record):
    start: str
    end: str


class Alert(Record):
    """An ``alerts`` record: a key's spike firing, or its end (``resolved``, with ``started_at``)."""

    schema_version: int = 1
    alert_id: str
    status: Literal["firing", "resolved"]
    scope: str
    key: str
    window: AlertWindow
    observed_negative_share: float
    baseline_negative_share: float
    count: int
    severity: str = "warning"
    reason: str | None = None
    lift: float = 0.0
    negative_count: int = 0
    baseline_negative_count: float | None = None  # the key's usual negative stories per window
    p_value: float = 1.0
    headlines: tuple[Headline, ...] = ()
    tickers: tuple[str, ...] = ()
    model_version: str | None = None
    started_at: str | None = None


class DeliveryFailure(Record):
    target: str
    outcome: str
    detail: str = ""
    attempts: int = 0


class AlertDeadLetter(Record):
    """An ``alerts.dlq`` record: an alert some target never took, and why for each of them."""

    alert: Alert
    failures: tuple[DeliveryFailure, ...]
