"""What the detector reads (closed-window statistics) and writes (alert records)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyState:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def alert_id(scope: str, key: str, window_start: str) -> str:
    """Deterministic from scope, key and the window the spike started in: the dedup key."""
    return hashlib.sha256(f"{scope}|{key}|{window_start}".encode()).hexdigest()[:20]
