"""The alerts section of finmon's settings: detector parameters and sensitivity presets."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import urllib.parse
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model, model_validator

Sensitivity = Literal["low", "medium", "high"]


class DetectorSettings(BaseModel):
    """When a window's negative news counts as a spike, and when the spike is over."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_count: int = Field(10, ge=1, description="Fewest (unique) documents in a window to judge it.")
    alpha: float = Field(
        0.001, gt=0, lt=1, description="One-sided test level per key and window (a desk watches many keys at once)."
    )
    min_lift: float = Field(1.5, ge=1, description="Negative share must be at least this times the baseline.")
    volume_factor: float = Field(3.0, ge=1, description="Negative count this times its baseline fires too.")
    exit_lift: float = Field(1.2, ge=1, description="Share below baseline x exit_lift counts as calm.")
    exit_alpha: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="A window whose share is no longer above the baseline at this level counts as calm too "
        "(a key whose usual share is high calms down without falling below baseline x exit_lift).",
    )
    exit_windows: int = Field(2, ge=1, description="Calm windows in a row that resolve an alert.")
    cooldown_seconds: int = Field(600, ge=0, description="After resolving, the key cannot fire for this long.")
    baseline_weight: float = Field(0.1, gt=0, le=1, description="Weight of a new window in the baseline (EWMA).")
    prior_share: float = Field(0.25, gt=0, lt=1, description="Baseline negative share of a key with no history.")
    prior_count: float = Field(2.0, ge=0, description="Baseline negative count per window of a new key.")
    prior_documents: float = Field(
        10.0, ge=0, description="The prior counts as this many stories while a new key warms up."
    )
    warmup_windows: int = Field(3, ge=0, description="Windows a new key only learns from before it can fire.")
    firing_learning: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Share of the baseline weight still learned while firing (a lasting new level "
        "eventually resolves instead of firing forever).",
    )


PRESETS: dict[str, dict[str, float | int]] = {
    "low": {"min_count": 20, "alpha": 0.0001, "min_lift": 2.0, "volume_factor": 4.0},
    "medium": {},
    "high": {"min_count": 5, "alpha": 0.01, "min_lift": 1.3, "volume_factor": 2.0},
}


def preset(sensitivity: Sensitivity, **overrides: float | int) -> DetectorSettings:
    """Parameters of a sensitivity preset; any parameter can still be set on its own."""
    return DetectorSettings(**{**PRESETS[sensitivity], **overrides})  # type: ignore[arg-type]


class TargetSettings(BaseModel):
    """One webhook receiver of alerts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    format: Literal["json", "alertmanager", "slack"] = "json"
    secret: SecretStr | None = Field(None, description="HMAC-SHA256 key; the signature header is sent when set.")
    timeout: float = Field(5.0, gt=0)
    name: str = Field("", description="Label in metrics and logs; unset: the URL's scheme and host.")

    @property
    def label(self) -> str:
        return self.name or masked_url(self.url)

    @property
    def key(self) -> str:
        """What names the target's delivery state: its name, or a digest of its URL (which may hold a token)."""
        if self.name:
            return re.sub(r"[^A-Za-z0-9._-]", "-", self.name)
        return hashlib.sha256(self.url.encode()).hexdigest()[:12]


def masked_url(url: str) -> str:
    """Scheme and host only: a webhook's path often is its secret (Slack, Teams)."""
    parts = urllib.parse.urlsplit(url)
    hidden = parts.path not in ("", "/") or parts.query
    return f"{parts.scheme}://{parts.hostname or ''}{'/**********' if hidden else ''}"


def _overrides() -> Any:
    """DetectorSettings' fields again, each optional: set, it replaces the preset's value."""
    fields: dict[str, Any] = {}
    for name, info in DetectorSettings.model_fields.items():
        limits = {
            f.name: getattr(m, f.name)
            for m in info.metadata
            if dataclasses.is_dataclass(m)
            for f in dataclasses.fields(m)
        }
        fields[name] = (Optional[info.annotation], Field(None, description=info.description, **limits))  # noqa: UP045
    return create_model("DetectorOverrides", __config__=ConfigDict(frozen=True, extra="forbid"), **fields)


class AlertSettings(_overrides()):  # type: ignore[misc]
    """Spike detection and alert delivery. Detector parameters left unset come from the preset."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    sensitivity: Sensitivity = "medium"
    targets: tuple[TargetSettings, ...] = Field(
        (), description='Webhook receivers as JSON, e.g. [{"url": "https://hooks.example/x", "format": "slack"}].'
    )
    max_attempts: int = Field(6, ge=1, description="Delivery attempts before an alert goes to alerts.dlq.")
    base_delay: float = Field(0.5, gt=0, description="First retry delay (seconds), doubled each attempt.")
    max_delay: float = Field(60.0, gt=0)
    concurrency: int = Field(
        8, ge=1, le=256, description="Requests in flight per target (alerts of one key still go one after another)."
    )
    max_pending: int = Field(
        1000, ge=1, description="Alerts read and not yet delivered or dead-lettered, per target, before reading waits."
    )
    replay_seconds: int = Field(
        3600, ge=0, description="A target delivered to for the first time gets the alerts of this many seconds back."
    )

    @model_validator(mode="after")
    def _distinct_targets(self) -> AlertSettings:
        keys = [t.key for t in self.targets]
        shared = sorted({k for k in keys if keys.count(k) > 1})
        if shared:
            raise ValueError(f"webhook targets would share delivery state ({', '.join(shared)}): name each one apart")
        return self

    def detector(self) -> DetectorSettings:
        overrides = {
            name: getattr(self, name) for name in DetectorSettings.model_fields if getattr(self, name, None) is not None
        }
        return preset(self.sensitivity, **overrides)
