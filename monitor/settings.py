"""The one frozen Settings object; the only module that reads the environment.

Every field comes from ``FINMON_<SECTION>__<FIELD>`` (for example ``FINMON_MODEL__DEVICE=cuda``)
or from a ``.env`` file; ``finmon config show`` prints the effective values with secrets masked.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerts.settings import AlertSettings
from models.settings import ModelSettings
from monitor.web.settings import WebSettings
from streams.settings import KafkaSettings, StreamSettings, TopicSettings, WindowSettings


class ConfigError(Exception):
    """The configuration cannot be used: finmon refuses to start and says why in one line."""


class Settings(BaseSettings):
    """finmon's configuration, composed of each package's own section."""

    model_config = SettingsConfigDict(
        env_prefix="FINMON_", env_nested_delimiter="__", env_file=".env", extra="ignore", frozen=True
    )

    model: ModelSettings = ModelSettings()
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    stream: StreamSettings = StreamSettings()
    windows: WindowSettings = WindowSettings()
    alerts: AlertSettings = AlertSettings()
    web: WebSettings = WebSettings()


def load_settings(**overrides: Any) -> Settings:
    """Read the environment once; a bad value becomes a one-line ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "__".join(str(part) for part in first["loc"]).upper()
        raise ConfigError(f"invalid setting FINMON_{where}: {first['msg']}") from exc


def render(settings: Settings) -> str:
    """The effective settings as JSON, secrets masked."""
    return json.dumps(settings.model_dump(mode="json"), indent=2, sort_keys=True)
