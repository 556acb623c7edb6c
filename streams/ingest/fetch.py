"""A polite HTTP client for ``finmon ingest``.

Per host: one request at a time, at least ``host_interval`` apart; a 429/503's ``Retry-After`` and
consecutive failures (exponential backoff with jitter) push the host's next request back. Per URL:
conditional GET (ETag, Last-Modified). Per request: a total deadline (a server that hangs or trickles
ends there), bounded redirects, a cap on the bytes read off the wire and another on the bytes once
gzip/deflate is undone (a gzip bomb stops there, having cost its compressed size). Article pages and
page lists are fetched only where robots.txt lets finmon's User-Agent in.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import urllib.robotparser
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import aiohttp

from alerts.webhook import retry_after
from streams.settings import IngestSettings

log = logging.getLogger(__name__)
CHUNK = 65_536
ROBOTS_TTL = 3600.0
ROBOTS_RETRY = 300.0


class FetchError(Exception):
    """A request that gave nothing to parse; ``reason`` is a short code for logs and metrics."""

    def __init__(self, reason: str, detail: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class Response:
    url: str  # after redirects
    status: int
    content_type: str
    body: bytes
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass
class Host:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_at: float = 0.0
    failures: int = 0


@dataclass
class Robots:
    parser: urllib.robotparser.RobotFileParser | None  # None: robots.txt could not be read; ask again later
    until: float


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def backoff(failures: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: between half and all of ``base * 2**(failures - 1)``, at most ``cap``."""
    if failures <= 0:
        return 0.0
    return min(cap, base * 2 ** min(failures - 1, 30)) * rng.uniform(0.5, 1.0)


class Decoder:
    """Undoes gzip or deflate, stopping once more than ``limit`` bytes would come out."""

    def __init__(self, encoding: str, limit: int) -> None:
        encoding = encoding.strip().lower()
        self.limit = limit
        self.size = 0
        self.parts: list[bytes] = []
        if encoding in ("", "identity"):
            self.inflate = None
        elif encoding in ("gzip", "x-gzip"):
            self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self.inflate = zlib.decompressobj(32 + zlib.MAX_WBITS)  # a zlib or gzip header, as servers send
        else:
            raise FetchError("bad_encoding", f"unsupported Content-Encoding {encoding!r}")

    def feed(self, chunk: bytes) -> None:
        if self.inflate is None:
            self._keep(chunk)
            return
        try:
            while chunk:
                out = self.inflate.decompress(chunk, self.limit - self.size + 1)
                self._keep(out)
                chunk = self.inflate.unconsumed_tail
        except zlib.error as exc:
            raise FetchError("bad_encoding", f"cannot decompress the body: {exc}") from None

    def _keep(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise FetchError("too_large", f"more than {self.limit:,} bytes once decompressed")
        self.parts.append(data)

    def body(self) -> bytes:
        if self.inflate is not None:
            try:
                self._keep(self.inflate.flush())
            except zlib.error as exc:
                raise FetchError("bad_encoding", f"cannot decompress the body: {exc}") from None
        return b"".join(self.parts)


class Client:
    """One per ingester; ``start`` inside the event loop, ``close`` at the end."""

    def __init__(
        self,
        settings: IngestSettings,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        self.hosts: dict[str, Host] = {}
        self.validators: dict[str, tuple[str | None, str | None]] = {}  # url -> (ETag, Last-Modified)
        self.robots: dict[str, Robots] = {}
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            auto_decompress=False,
            headers={"User-Agent": self.settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=aiohttp.ClientTimeout(connect=self.settings.connect_timeout),  # the whole: asyncio.timeout
            connector=aiohttp.TCPConnector(limit=256, limit_per_host=2, ttl_dns_cache=300),
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def host_wait(self, url: str) -> float:
        """Seconds until the host of ``url`` may be asked again (its backoff or Retry-After)."""
        host = self.hosts.get(urlsplit(url).netloc.lower())
        return max(0.0, host.next_at - self.clock()) if host else 0.0

    async def get(
        self, url: str, headers: dict[str, str] | None = None, conditional: bool = True, robots: bool = False
    ) -> Response:
        """GET ``url`` politely; a 304 comes back as a Response whose ``not_modified`` is true."""
        if robots and self.settings.robots and not await self.allowed(url):
            raise FetchError("robots", f"robots.txt does not let {self.settings.user_agent.split('/')[0]} fetch {url}")
        return await self._get(url, headers or {}, conditional)

    async def _get(self, url: str, headers: dict[str, str], conditional: bool) -> Response:
        assert self.session is not None, "Client.start() first"
        key = urlsplit(url).netloc.lower()
        host = self.hosts.setdefault(key, Host())
        async with host.lock:  # one request at a time per host, host_interval apart
            wait = host.next_at - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            sent = dict(headers)
            etag, modified = self.validators.get(url, (None, None)) if conditional else (None, None)
            if etag:
                sent["If-None-Match"] = etag
            if modified:
                sent["If-Modified-Since"] = modified
            try:
                response = await self._request(url, sent)
            except FetchError as exc:
                host.failures += 1
                pause = backoff(host.failures, self.settings.backoff_base, self.settings.backoff_max, self.rng)
                if exc.retry_after is not None:  # the host said when: that, not a guess
                    pause = min(self.settings.backoff_max, exc.retry_after)
                if exc.reason in ("http_404", "http_410", "robots", "too_large", "bad_encoding"):
                    pause = 0.0  # the host answered; this one address is the trouble
                    host.failures = 0
                host.next_at = self.clock() + max(self.settings.host_interval, pause)
                raise
            host.failures = 0
            host.next_at = self.clock() + self.settings.host_interval
        return response

    def remember(self, url: str, response: Response) -> None:
        """Keep a response's ETag and Last-Modified for the next conditional GET of ``url``: only once
        what it held was delivered, so that a 304 never stands for stories that were not sent."""
        if response.status == 200 and (response.etag or response.last_modified):
            self.validators[url] = (response.etag, response.last_modified)

    async def _request(self, url: str, headers: dict[str, str]) -> Response:
        """One GET, redirects followed here (at most max_redirects): the caller's headers (credentials,
        validators) go only to the origin they were meant for, never on to another scheme or host."""
        assert self.session is not None
        current, hops = url, 0
        try:
            async with asyncio.timeout(self.settings.timeout):
                while True:
                    sent = headers if origin(current) == origin(url) else {}
                    async with self.session.get(current, headers=sent, allow_redirects=False) as response:
                        location = response.headers.get("Location")
                        if response.status in (301, 302, 303, 307, 308) and location:
                            hops += 1
                            if hops > self.settings.max_redirects:
                                raise FetchError("redirects", f"more than {self.settings.max_redirects} redirects")
                            current = urljoin(current, location)
                            continue
                        return await self._read(response)
        except TimeoutError:
            raise FetchError("timeout", f"no whole answer within {self.settings.timeout:g} s") from None
        except (aiohttp.InvalidURL, ValueError) as exc:
            raise FetchError("bad_url", f"cannot follow {exc}") from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
            raise FetchError("protocol", f"{type(exc).__name__}: {exc}") from None
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise FetchError("connection", f"{type(exc).__name__}: {exc}") from None

    async def _read(self, response: aiohttp.ClientResponse) -> Response:
        if response.status == 304:
            return Response(str(response.url), 304, "", b"")
        if response.status >= 400:
            raise FetchError(
                f"http_{response.status}",
                f"HTTP {response.status} {response.reason or ''}".strip(),
                status=response.status,
                retry_after=retry_after(response.headers.get("Retry-After"), time.time())
                if response.status in (429, 503)
                else None,
            )
        length = response.content_length
        if length is not None and length > self.settings.max_bytes:
            raise FetchError("too_large", f"Content-Length {length:,} is over {self.settings.max_bytes:,}")
        decoder = Decoder(response.headers.get("Content-Encoding", ""), self.settings.max_decompressed_bytes)
        read = 0
        async for chunk in response.content.iter_chunked(CHUNK):
            read += len(chunk)
            if read > self.settings.max_bytes:
                raise FetchError("too_large", f"more than {self.settings.max_bytes:,} bytes")
            decoder.feed(chunk)
        return Response(
            str(response.url),
            response.status,
            response.headers.get("Content-Type", ""),
            decoder.body(),
            response.headers.get("ETag"),
            response.headers.get("Last-Modified"),
        )

    async def allowed(self, url: str) -> bool:
        """Whether robots.txt lets finmon fetch ``url`` (read once an hour per host)."""
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc.lower()}"
        now = self.clock()
        entry = self.robots.get(key)
        if entry is None or entry.until <= now:
            entry = self.robots[key] = await self._read_robots(key)
        if entry.parser is None:
            raise FetchError("robots_unavailable", f"{key}/robots.txt could not be read; trying later")
        return entry.parser.can_fetch(self.settings.user_agent, url)

    async def _read_robots(self, origin: str) -> Robots:
        parser = urllib.robotparser.RobotFileParser(f"{origin}/robots.txt")
        try:
            response = await self._get(f"{origin}/robots.txt", {}, conditional=False)
        except FetchError as exc:
            if exc.status in (401, 403):
                parser.disallow_all = True  # type: ignore[attr-defined]  # as urllib.robotparser reads it
            elif exc.status is not None and 400 <= exc.status < 500:
                parser.allow_all = True  # type: ignore[attr-defined]
            else:
                log.info("%s/robots.txt: %s; its pages wait", origin, exc.detail)
                return Robots(None, self.clock() + ROBOTS_RETRY)
            return Robots(parser, self.clock() + ROBOTS_TTL)
        parser.parse(response.body.decode("utf-8", errors="replace").splitlines())
        parser.modified()
        return Robots(parser, self.clock() + ROBOTS_TTL)
