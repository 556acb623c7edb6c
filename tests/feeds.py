"""Publishers for ingest tests: real HTTP servers on loopback serving feeds in the forms the standards
define (RSS 2.0, Atom 1.0, RSS 1.0/RDF, sitemaps, a JSON news API, article pages), with the quirks real
publishers have (undeclared GBK, a GB2312 declaration over GBK text, Big5 in the HTTP header only,
CDATA and double-escaped entities in titles, relative links, every time-zone form and none), and the
failures desks meet (malformed XML, a hang, a trickle, 404, 410, 500, a redirect loop, a gzip bomb,
a 50 MB feed, a 429 with Retry-After). Every publisher is a host of its own (its own port), as a
failing host must not slow the others down.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import hashlib
import json
import threading
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from tests.kafka import free_port

NOW = datetime.now(UTC).replace(microsecond=0)
HOST = web.AppKey("host", str)  # which publisher a loopback server plays


def rfc822(moment: datetime, zone: str = "+0000") -> str:
    if zone == "GMT":
        return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)
    return moment.strftime("%a, %d %b %Y %H:%M:%S ") + zone


@dataclass
class Item:
    """One story as a publisher lists it; ``when`` is the publisher's own text of its time."""

    title: str
    link: str | None
    guid: str | None
    when: str | None
    summary: str = ""


def rss(items: list[Item], channel_link: str = "https://wire.example/", encoding: str | None = "utf-8") -> str:
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>\n' if encoding else ""
    parts = []
    for item in items:
        inner = []
        if item.title:
            inner.append(f"<title>{item.title}</title>")
        if item.link:
            inner.append(f"<link>{item.link}</link>")
        if item.guid:
            inner.append(f'<guid isPermaLink="false">{item.guid}</guid>')
        if item.when:
            inner.append(f"<pubDate>{item.when}</pubDate>")
        if item.summary:
            inner.append(f"<description>{item.summary}</description>")
        parts.append("<item>" + "".join(inner) + "</item>")
    return (
        f'{declaration}<rss version="2.0"><channel><title>Wire</title><link>{channel_link}</link>'
        f"<description>Markets</description>{''.join(parts)}</channel></rss>"
    )


def atom(items: list[Item]) -> str:
    entries = "".join(
        f'<entry><title type="html">{i.title}</title><link rel="alternate" href="{i.link}"/>'
        f"<id>{i.guid}</id><updated>{i.when}</updated><summary>{i.summary}</summary></entry>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
        'xml:base="https://exchange.example/notices/"><title>Exchange notices</title>'
        f"<id>urn:exchange:notices</id><updated>{NOW.isoformat()}</updated>{entries}</feed>"
    )


def rdf(items: list[Item]) -> str:
    seq = "".join(f'<rdf:li rdf:resource="{i.link}"/>' for i in items)
    entries = "".join(
        f'<item rdf:about="{i.link}"><title>{i.title}</title><link>{i.link}</link>'
        f"<description>{i.summary}</description><dc:date>{i.when}</dc:date></item>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<channel rdf:about="https://regulator.example/rss"><title>Regulator</title>'
        f"<link>https://regulator.example/</link><description>Notices</description><items><rdf:Seq>{seq}</rdf:Seq>"
        f"</items></channel>{entries}</rdf:RDF>"
    )


def article_page(title: str, text: str, published: datetime, charset: str = "utf-8") -> bytes:
    paragraphs = "".join(f"<p>{sentence}</p>" for sentence in text.split("\n"))
    page = (
        f'<!DOCTYPE html><html><head><meta charset="{charset}"><title>{title} | Wire</title>'
        f'<meta property="article:published_time" content="{published.isoformat()}"></head>'
        f"<body><nav><a href='/'>Home</a> <a href='/markets'>Markets</a></nav><article><h1>{title}</h1>"
        f"{paragraphs}</article><footer>Copyright Wire. All rights reserved.</footer></body></html>"
    )
    return page.encode(charset)


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/rss+xml"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: bool = False  # answer If-None-Match with 304
    behaviour: str = ""  # hang, trickle, loop, redirect (to headers["Location"]), huge, bomb, limited, auth
    token: str = ""


class Publishers:
    """Routes served on several loopback ports (one per host name given), each request recorded."""

    def __init__(self, hosts: list[str]) -> None:
        self.ports = {host: free_port() for host in hosts}
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self._runners: list[web.AppRunner] = []

    def url(self, host: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[host]}{path}"

    def serve(self, host: str, path: str, route: Route) -> str:
        self.routes[(host, path)] = route
        return self.url(host, path)

    def hits(self, host: str, path: str) -> list[dict[str, Any]]:
        return self.requests[(host, path)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        host = request.app[HOST]
        self.requests[(host, request.path)].append({"headers": dict(request.headers), "at": time.monotonic()})
        route = self.routes.get((host, request.path))
        if route is None:
            return web.Response(status=404, text="no such page")
        if route.behaviour == "hang":
            await asyncio.sleep(3600)
        if route.behaviour == "loop":
            raise web.HTTPFound(request.path)
        if route.behaviour == "redirect":
            raise web.HTTPFound(route.headers["Location"])
        if route.behaviour == "limited" and len(self.requests[(host, request.path)]) == 1:
            return web.Response(status=429, headers={"Retry-After": route.headers.get("Retry-After", "2")})
        if route.behaviour == "auth" and request.headers.get("Authorization") != f"Bearer {route.token}":
            return web.Response(status=401, text="token needed")
        tag = '"' + hashlib.sha1(route.body).hexdigest()[:16] + '"'
        if route.etag and request.headers.get("If-None-Match") == tag:
            return web.Response(status=304, headers={"ETag": tag})
        headers = {"Content-Type": route.content_type, **route.headers}
        if route.etag:
            headers["ETag"] = tag
        if route.behaviour in ("trickle", "huge", "bomb"):
            return await self.stream(request, route, headers)
        return web.Response(status=route.status, body=route.body, headers=headers)

    async def stream(self, request: web.Request, route: Route, headers: dict[str, str]) -> web.StreamResponse:
        response = web.StreamResponse(status=route.status, headers=headers)
        await response.prepare(request)
        try:
            if route.behaviour == "trickle":
                for byte in route.body:
                    await response.write(bytes([byte]))
                    await asyncio.sleep(0.5)
            elif route.behaviour == "huge":  # 50 MB of well-formed items, no Content-Length
                await response.write(b'<?xml version="1.0"?><rss version="2.0"><channel><title>Huge</title>')
                item = b"<item><title>" + b"x" * 1000 + b"</title><link>http://h/a</link></item>"
                for _ in range(50_000_000 // len(item)):
                    await response.write(item)
                await response.write(b"</channel></rss>")
            else:
                await response.write(route.body)
            await response.write_eof()
        except ConnectionError:  # the client gave up: what these routes are for
            pass
        return response

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        for host, port in self.ports.items():
            app = web.Application()
            app[HOST] = host
            app.router.add_route("GET", "/{tail:.*}", self.handle)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)  # a hanging route ends
            self.loop.run_until_complete(runner.setup())
            self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
            self._runners.append(runner)
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> Publishers:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            for runner in self._runners:
                await runner.cleanup()
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(close(), self.loop)
        self.thread.join(10)


def gzip_bomb(decompressed: int = 200_000_000) -> bytes:
    """``decompressed`` zero bytes gzipped: a few hundred kB on the wire."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * 1_000_000
    parts = [compressor.compress(chunk) for _ in range(decompressed // len(chunk))]
    return b"".join(parts) + compressor.flush()


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data)


def api_body(stories: list[dict[str, Any]]) -> bytes:
    return json.dumps({"status": "ok", "data": {"articles": stories}}).encode()


def ago(minutes: int) -> datetime:
    return NOW - timedelta(minutes=minutes)
