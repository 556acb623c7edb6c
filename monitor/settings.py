"""The one frozen Settings object; the only module that reads the environment.

Every field comes from ``FINMON_<SECTION>__<FIELD>`` (for example ``FINMON_MODEL__DEVICE=cuda``)
or from a ``.env`` file; ``finmon config show`` prints the effective values with secrets masked.
"""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from alerts.settings import AlertSettings, masked_url
from models.settings import ModelSettings
from monitor.errors import ConfigError
from monitor.web.settings import WebSettings
from streams.settings import IngestSettings, KafkaSettings, StreamSettings, TopicSettings, WindowSettings


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
    ingest: IngestSettings = IngestSettings()


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


def env_file(values: dict[str, str]) -> str:
    """Every setting as FINMON_ lines with its description and default, ``values`` put in their place.

    Unset optional settings are commented out; ``finmon config env`` prints it, and the compose
    example is this text with compose's own values (``make env-example``).
    """
    lines = [
        "# Every finmon setting, with its description. Values are the defaults, except the ones marked",
        "# (deployment), which this deployment needs. Copy to .env and change what you need.",
        "# Nested sections use a double underscore: FINMON_<SECTION>__<FIELD>. Secrets are never logged.",
    ]
    for section, field in Settings.model_fields.items():
        model: Any = field.annotation
        lines += ["", f"# --- {section}: {(model.__doc__ or '').strip().splitlines()[0]}"]
        for name, sub in model.model_fields.items():
            variable = f"FINMON_{section.upper()}__{name.upper()}"
            if sub.description:
                lines.append(f"# {sub.description}")
            default = sub.get_default(call_default_factory=True)
            if variable in values:
                lines += [f"# (deployment; the default is {default})", f"{variable}={values[variable]}"]
                continue
            if isinstance(default, Path) and default.is_absolute():  # inside the installed package
                lines += ["# (unset: the one shipped with finmon)", f"# {variable}="]
                continue
            shown = json.dumps(default) if isinstance(default, (list, tuple, dict)) else default
            shown = str(shown).lower() if isinstance(default, bool) else shown
            lines.append(f"# {variable}=" if default is None else f"{variable}={shown}")
    return "\n".join(lines) + "\n"
