"""Who is asking the dashboard: analysts by token, a trusted proxy's user header, or a viewer.

The tokens file keeps one analyst a line, ``name:pbkdf2_sha256$iterations$salt$hash`` (base64),
as ``htpasswd`` keeps passwords: the tokens themselves are shown once, when made, and never stored.
A token presented is checked against every line once; the answer is then remembered under a keyed
digest of the token (never the token), until the file changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError
from monitor.web.settings import WebSettings

SCHEME = "pbkdf2_sha256"
# tokens are 256 random bits made here: one round of HMAC-SHA256 under a salt keeps a leaked file useless,
# and checking a wrong token against every analyst costs microseconds, not a stall of the event loop
ITERATIONS = 1
NAME = re.compile(r"^[\w.@+-]{1,100}$")
COOKIE = "finmon_token"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", token.encode(), salt, iterations)
    encode = base64.b64encode
    return f"{SCHEME}${iterations}${encode(salt).decode()}${encode(digest).decode()}"


def _matches(token: str, stored: str) -> bool:
    scheme, iterations, salt, digest = stored.split("$")
    if scheme != SCHEME:
        return False
    given = hashlib.pbkdf2_hmac("sha256", token.encode(), base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(given, base64.b64decode(digest))


def read_tokens_file(path: Path) -> dict[str, str]:
    """Analyst names and their token hashes; one line says what is wrong with the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the analysts' tokens file {str(path)!r} ({exc.strerror})") from exc
    hashes: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, stored = line.strip().partition(":")
        parts = stored.split("$")
        if not NAME.match(name) or len(parts) != 4 or parts[0] != SCHEME or not parts[1].isdigit():
            raise ConfigError(f"{path}:{number}: expected `name:{SCHEME}$...` (made by `finmon analysts add NAME`)")
        hashes[name] = stored
    return hashes


def write_analyst(path: Path, name: str, token: str) -> None:
    """Add ``name`` (or replace its token), written atomically, readable by its owner only."""
    if not NAME.match(name):
        raise ConfigError(f"analyst names are 1-100 letters, digits or ._@+-, not {name!r}")
    hashes = read_tokens_file(path) if path.exists() else {}
    hashes[name] = hash_token(token)
    save_tokens(path, hashes)


def save_tokens(path: Path, hashes: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("".join(f"{name}:{stored}\n" for name, stored in sorted(hashes.items())))
    os.replace(partial, path)


@dataclass(frozen=True)
class Identity:
    """Who a request comes from: ``analyst`` is None for a viewer (shared token, or loopback without logins)."""

    analyst: str | None
    via: str  # token | proxy | viewer | loopback


class Analysts:
    """The tokens file, re-read when it changes; a token's answer is remembered under a keyed digest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key = secrets.token_bytes(32)
        self._stamp: tuple[int, int] | None = None
        self._hashes: dict[str, str] = {}
        self._known: dict[bytes, str | None] = {}
        self.reload()

    def reload(self) -> None:
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the analysts' tokens file {str(self.path)!r} ({exc.strerror}): "
                "add one with `finmon analysts add NAME`"
            ) from exc
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._hashes, self._stamp, self._known = read_tokens_file(self.path), stamp, {}

    def name_of(self, token: str) -> str | None:
        try:
            self.reload()
        except ConfigError:
            return None  # the file went away or broke: nobody is let in until it is mended
        digest = hmac.digest(self._key, token.encode(), "sha256")
        if digest in self._known:
            return self._known[digest]
        found = next((name for name, stored in self._hashes.items() if _matches(token, stored)), None)
        if len(self._known) > 10_000:  # wrong tokens tried by the thousand: forget, do not grow
            self._known.clear()
        self._known[digest] = found
        return found


class Access:
    """The dashboard's rules: reading needs any login (or loopback with none configured); writing needs an analyst."""

    def __init__(self, web: WebSettings) -> None:
        self.web = web
        self.token = web.token.get_secret_value() if web.token else None
        self.analysts = Analysts(web.tokens_file) if web.tokens_file else None
        self.header = web.proxy_user_header
        self.proxies = list(web.trusted_proxies)

    @staticmethod
    def presented(request: Any) -> str | None:
        """The bearer header, else a login link's token (it beats an older cookie), else the cookie."""
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return str(header[7:]).strip()
        return request.query.get("token") or request.cookies.get(COOKIE)

    def from_proxy(self, request: Any) -> bool:
        try:
            address = ipaddress.ip_address(request.remote or "")
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    def identify(self, request: Any) -> Identity | None:
        if self.header and self.from_proxy(request):
            user = request.headers.get(self.header, "").strip()
            if user:
                return Identity(user[:100], "proxy")
        token = self.presented(request)
        if token:
            if self.analysts is not None and (name := self.analysts.name_of(token)) is not None:
                return Identity(name, "token")
            if self.token is not None and hmac.compare_digest(token.encode(), self.token.encode()):
                return Identity(None, "viewer")
        if not self.web.authenticated and is_loopback(_hostname(request.host)):
            # `finmon dashboard` refuses to serve beyond loopback like this; a Host of another name is a
            # page of some other site rebinding its name to this address
            return Identity(None, "loopback")
        return None


def _hostname(host: str) -> str:
    """The name of a Host header, without its port ([::1]:6067 -> ::1)."""
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact(text: str) -> str:
    """A request line as logged: the value of any token parameter replaced."""
    return re.sub(r"(?i)([?&]token=)[^&\s\"]*", r"\1***", text)
