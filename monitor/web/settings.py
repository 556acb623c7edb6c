"""The web section of finmon's settings: the dashboard service (``finmon dashboard``)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class WebSettings(BaseModel):
    """The dashboard and its API, its own process beside the workers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(True, description="Whether `finmon demo` starts the dashboard.")
    host: str = Field(
        "127.0.0.1", description="Bind address of the dashboard; beyond loopback only with authentication configured."
    )
    port: int = Field(6067, ge=0, le=65535, description="Port of the dashboard service (/dashboard, /api, /health).")
    token: SecretStr | None = Field(
        None,
        description="A shared viewing token: /dashboard and /api accept it (bearer header, cookie or ?token=) "
        "for reading; reviews need an analyst (tokens_file or the proxy header).",
    )
    tokens_file: Path | None = Field(
        None,
        description="Analysts and the hashes of their tokens, one `name:hash` a line (`finmon analysts add NAME`); "
        "re-read when it changes.",
    )
    proxy_user_header: str | None = Field(
        None,
        description="Header an authenticating proxy (oauth2-proxy and the like) names the analyst in, "
        "e.g. X-Forwarded-User; believed only from trusted_proxies.",
    )
    trusted_proxies: list[Network] = Field(
        default_factory=list, description="Addresses (CIDR) of the proxies whose user header is believed."
    )
    origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) besides the dashboard's own that may post reviews, "
        "e.g. its public URL behind a proxy that rewrites Host.",
    )
    behind_tls_proxy: bool = Field(
        False, description="The page reaches analysts over HTTPS through a proxy: the login cookie is Secure."
    )
    tls_certfile: Path | None = Field(None, description="Serve HTTPS with this PEM certificate (chain).")
    tls_keyfile: Path | None = Field(None, description="The private key of tls_certfile (PEM).")
    history_windows: int = Field(60, ge=2, le=1440, description="Windows per chart (tumbling window length each).")
    feed_per_second: int = Field(10, ge=1, le=1000, description="Headlines kept for the live feed per second.")
    push_interval: float = Field(1.0, gt=0, description="Seconds between updates pushed to each open page.")
    max_tickers: int = Field(500, ge=1, description="Tickers whose trend the dashboard keeps.")
    max_reviews: int = Field(
        50_000, ge=100, description="Reviewed documents whose latest review the board keeps (older ones still count)."
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            return [ipaddress.ip_network(str(v), strict=False) for v in value]
        return value

    @field_validator("origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if "://" not in origin or origin.rstrip("/").count("/") > 2:
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
        return [origin.rstrip("/").lower() for origin in value]

    @model_validator(mode="after")
    def _consistent(self) -> WebSettings:
        if self.proxy_user_header and not self.trusted_proxies:
            raise ValueError("proxy_user_header needs trusted_proxies: the addresses of the proxies to believe")
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("tls_certfile and tls_keyfile go together")
        return self

    @property
    def authenticated(self) -> bool:
        """Whether anything but the loopback interface may be trusted to ask: some way to log in is set."""
        return bool(self.token or self.tokens_file or self.proxy_user_header)

    @property
    def tls(self) -> bool:
        return self.tls_certfile is not None
