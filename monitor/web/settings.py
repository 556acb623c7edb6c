"""The web section of finmon's settings: the dashboard service (``finmon dashboard``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class WebSettings(BaseModel):
    """The dashboard and its API, its own process beside the workers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(True, description="Whether `finmon demo` starts the dashboard.")
    host: str = Field("127.0.0.1", description="Bind address of the dashboard service.")
    port: int = Field(6067, ge=0, le=65535, description="Port of the dashboard service (/dashboard, /api, /health).")
    token: SecretStr | None = Field(
        None, description="When set, /dashboard and /api need it (bearer header, cookie or ?token=); else 401."
    )
    history_windows: int = Field(60, ge=2, le=1440, description="Windows per chart (tumbling window length each).")
    feed_per_second: int = Field(10, ge=1, le=1000, description="Headlines kept for the live feed per second.")
    push_interval: float = Field(1.0, gt=0, description="Seconds between updates pushed to each open page.")
    max_tickers: int = Field(500, ge=1, description="Tickers whose trend the dashboard keeps.")
