"""The one frozen Settings object; the only module that reads the environment.

Every field comes from ``FINMON_<SECTION>__<FIELD>`` (for example ``FINMON_MODEL__DEVICE=cuda``)
or from a ``.env`` file; ``finmon config show`` prints the effective values with secrets masked.
"""

from __future__ import annotations

import json
import os
import typing
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from alerts.settings import AlertSettings, masked_url
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
    except SettingsError as exc:  # a list or object setting whose value is not JSON
        raise ConfigError(f'invalid setting {not_json(str(exc))}: give JSON, for example ["a", "b"]') from exc


def not_json(message: str) -> str:
    """The FINMON_ variable that pydantic-settings failed to read as JSON (it names only the section)."""
    section = message.split('"')[1] if '"' in message else ""
    prefix = f"FINMON_{section.upper()}__"
    for name, value in sorted(os.environ.items()):
        if name.upper().startswith(prefix):
            try:
                json.loads(value)
            except ValueError:
                if not _is_plain(section, name[len(prefix) :].lower()):
                    return f"{name}={value!r}"
    return prefix + "*"


def _is_plain(section: str, name: str) -> bool:
    model = Settings.model_fields[section].annotation if section in Settings.model_fields else None
    fields = getattr(model, "model_fields", {})
    annotation = fields[name].annotation if name in fields else str
    return typing.get_origin(annotation) not in (list, tuple, dict, set) and not hasattr(annotation, "model_fields")


def render(settings: Settings) -> str:
    """The effective settings as JSON, secrets masked."""
    shown = settings.model_dump(mode="json")
    shown["alerts"].update(settings.alerts.detector().model_dump(mode="json"))  # what the preset makes of unset ones
    for target in shown["alerts"]["targets"]:
        target["url"] = masked_url(target["url"])
    return json.dumps(shown, indent=2, sort_keys=True)
