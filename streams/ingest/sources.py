"""The sources file of ``finmon ingest``: YAML or TOML, checked whole before anything is polled.

```yaml
defaults: {interval: 300}
sources:
  - {name: sec-press, kind: rss, url: "https://www.sec.gov/news/pressreleases.rss", lang: en}
  - name: wire-api
    kind: json
    url: "https://api.example.com/v2/news?category=business"
    headers: {Authorization: "Bearer ${WIRE_API_TOKEN}"}   # taken from the environment, never logged
    items: data.articles                                   # dotted path to the list of stories
    fields: {id: uuid, title: headline, body: summary, url: link, published_at: published}
```

A mistake is one line naming the file, the line and the field.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from streams.errors import StreamError

Kind = Literal["rss", "atom", "rdf", "json", "sitemap", "pages"]
FEED_KINDS = ("rss", "atom", "rdf")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class SourcesError(StreamError):
    """The sources file cannot be used: one line naming file:line and what is wrong."""


class FieldMap(BaseModel):
    """Where a JSON news API keeps each part of a story: dotted paths inside one item."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str | None = None
    title: str | None = None
    body: str | None = None
    url: str | None = None
    published_at: str | None = None
    lang: str | None = None

    @model_validator(mode="after")
    def some_text(self) -> FieldMap:
        if not self.title and not self.body:
            raise ValueError("map at least one of title and body")
        return self


class Source(BaseModel):
    """One thing to poll."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    kind: Kind
    url: str | None = None
    urls: tuple[str, ...] = ()
    interval: float = Field(300.0, ge=1.0)
    lang: str | None = Field(None, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]+)*$")
    timezone: str = "UTC"
    fetch_article: bool = False
    items: str = ""
    fields: FieldMap | None = None
    headers: dict[str, str] = {}

    @field_validator("url")
    @classmethod
    def web_address(cls, value: str | None) -> str | None:
        if value is not None:
            check_url(value)
        return value

    @field_validator("urls")
    @classmethod
    def web_addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            check_url(url)
        return value

    @field_validator("timezone")
    @classmethod
    def known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (give an IANA name such as Asia/Shanghai)") from None
        return value

    @field_validator("headers")
    @classmethod
    def variables_set(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            for variable in _VARIABLE.findall(text):
                if not os.environ.get(variable):
                    raise ValueError(f"header {name} needs the environment variable {variable}, which is not set")
        return value

    @model_validator(mode="after")
    def complete(self) -> Source:
        if self.kind == "pages":
            if not self.urls:
                raise ValueError("a pages source lists its pages in urls")
        elif not self.url:
            raise ValueError(f"a {self.kind} source needs url")
        if self.kind == "json" and self.fields is None:
            raise ValueError("a json source needs fields: where its items keep title, body, url, published_at")
        if self.kind != "json" and (self.fields is not None or self.items):
            raise ValueError("items and fields are for json sources only")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def reads_pages(self) -> bool:
        """Whether the stories' text comes from their pages (sitemaps and page lists carry none)."""
        return self.fetch_article or self.kind in ("sitemap", "pages")

    def resolved_headers(self) -> dict[str, str]:
        """The headers with ${VARIABLE}s from the environment: secrets; never log them."""
        return {
            name: _VARIABLE.sub(lambda m: os.environ.get(m.group(1), ""), text) for name, text in self.headers.items()
        }


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) address")


class SourcesFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    defaults: dict[str, Any] = {}
    sources: list[Source] = Field(min_length=1)


def load_sources(path: Path) -> list[Source]:
    """Every source of the file, or a SourcesError naming file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourcesError(f"{path}: cannot read the sources file ({getattr(exc, 'strerror', None) or exc})") from exc
    toml = path.suffix.lower() == ".toml"
    locate = _toml_lines(text) if toml else None
    try:
        raw = tomllib.loads(text) if toml else yaml.safe_load(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise SourcesError(f"{path}:{found.group(1) if found else 1}: not TOML: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SourcesError(
            f"{path}:{mark.line + 1 if mark is not None else 1}: not YAML: {getattr(exc, 'problem', None) or exc}"
        ) from None
    if not isinstance(raw, dict):
        raise SourcesError(f"{path}:1: the file holds a list of sources under `sources`")
    defaults = raw.get("defaults") or {}
    if isinstance(defaults, dict) and isinstance(raw.get("sources"), list):
        raw = {**raw, "sources": [{**defaults, **s} if isinstance(s, dict) else s for s in raw["sources"]]}
    try:
        parsed = SourcesFile.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        at = locate(loc) if locate else _yaml_line(text, loc)
        where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
        message = error["msg"].removeprefix("Value error, ")
        raise SourcesError(f"{path}:{at}: {where or 'file'}: {message}") from None
    names = [s.name for s in parsed.sources]
    for index, name in enumerate(names):
        if name in names[:index]:
            at = locate(("sources", index, "name")) if locate else _yaml_line(text, ("sources", index, "name"))
            raise SourcesError(f"{path}:{at}: sources[{index}].name: {name!r} names two sources")
    return parsed.sources


def _yaml_line(text: str, loc: tuple[Any, ...]) -> int:
    """The line of the deepest node on ``loc`` in a YAML text (1-based)."""
    node: Any = yaml.compose(text)
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = [(k, v) for k, v in node.value if k.value == part]
            if not found:
                return line
            key, node = found[0]
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _toml_lines(text: str) -> Any:
    """A function from a field's path to its line in a TOML sources file: ``[[sources]]`` tables (or
    an inline array), then the key inside the table."""
    lines = text.splitlines()
    tables = [i for i, line in enumerate(lines) if line.strip().startswith("[[sources]]")]

    def locate(loc: tuple[Any, ...]) -> int:
        if len(loc) < 2 or loc[0] != "sources" or not isinstance(loc[1], int) or loc[1] >= len(tables):
            found = [i for i, line in enumerate(lines) if loc and line.strip().startswith(str(loc[0]))]
            return found[0] + 1 if found else 1
        start = tables[loc[1]]
        end = next((i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("[")), len(lines))
        if len(loc) >= 3:
            key = re.compile(rf"^\s*{re.escape(str(loc[2]))}\s*[=.]")
            for i in range(start + 1, end):
                if key.match(lines[i]):
                    return i + 1
        return start + 1

    return locate
