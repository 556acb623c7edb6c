"""The dashboard service (``finmon dashboard``): the page, its live updates, analyst feedback.

It is its own process, outside the workers' consumer group: one or more behind a load balancer
read the topics (trends, alerts and feedback, and a sample of the scored feed) while the workers
serve only /metrics and /health.

/dashboard            the page (static HTML, CSS and JS committed beside this module; no build step)
/api/snapshot         the board as JSON (filters: topic, ticker, sentiment)
/api/events           the same, pushed as server-sent events every ``push_interval`` seconds
/api/whoami           who the page is signed in as, and whether it may review
/api/feedback (POST)  an analyst's review of a document, produced to the feedback topic
Reading needs a login (an analyst's token, the shared viewing token, or a trusted proxy's user
header) unless none is configured, which ``finmon dashboard`` allows on loopback only. Reviews
always need an analyst, a JSON body and a request from the dashboard's own origin. /health stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from aiohttp import web as aioweb
from aiohttp.abc import AbstractAccessLogger
from aiokafka import AIOKafkaProducer

from monitor.settings import Settings
from monitor.stopping import StopDeadline
from monitor.web.access import COOKIE, Access, redact
from monitor.web.board import Board
from monitor.web.feedback import FeedbackError, feedback_record
from monitor.web.tap import tap
from streams.cluster.closing import close_all
from streams.cluster.topics import client_options

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
STOP_SECONDS = 5.0  # what closing the producer may take on the way out
SEND_SECONDS = 10.0  # how long a review waits for the cluster before the page hears it was not saved
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}


def filters(request: aioweb.Request) -> dict[str, str | None]:
    return {name: (request.query.get(name) or None) for name in ("topic", "ticker", "sentiment")}


def unauthorized() -> aioweb.Response:
    return aioweb.json_response({"error": "unauthorized: sign in with your analyst token"}, status=401)


def refused(status: int, reason: str) -> aioweb.Response:
    return aioweb.json_response({"error": reason}, status=status)


class AccessLog(AbstractAccessLogger):
    """aiohttp's access log, with any ``?token=`` replaced: a login link never lands in a log."""

    def log(self, request: aioweb.BaseRequest, response: aioweb.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %.3fs', request.remote, request.method, redact(request.path_qs), response.status, time
        )


class Dashboard:
    """The routes of one dashboard process, over a board that ``tap`` keeps fed."""

    def __init__(self, settings: Settings) -> None:
        web = settings.web
        self.settings, self.web = settings, web
        self.board = Board(
            f"{settings.windows.tumbling_seconds}s", web.history_windows, feed_per_second=web.feed_per_second,
            max_tickers=web.max_tickers, max_reviews=web.max_reviews,
        )  # fmt: skip
        self.access = Access(web)
        self.assets = {name: (STATIC / name).read_bytes() for name in ASSETS}
        self.page_html = (STATIC / "index.html").read_bytes()
        self.stopping = asyncio.Event()
        self.producer: AIOKafkaProducer | None = None

    async def page(self, request: aioweb.Request) -> aioweb.StreamResponse:
        who = self.access.identify(request)
        if who is None:
            return aioweb.Response(text="401: sign in to this dashboard with your token (?token=...)\n", status=401)
        response = aioweb.Response(body=self.page_html, content_type="text/html", charset="utf-8")
        token = request.query.get("token")
        if token and who.via in ("token", "viewer"):
            secure = request.secure or self.web.behind_tls_proxy
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/", secure=secure)
        return response

    async def asset(self, request: aioweb.Request) -> aioweb.StreamResponse:
        name = request.match_info["asset"]
        if self.access.identify(request) is None:
            return unauthorized()
        if name not in self.assets:
            return aioweb.json_response({"error": "not found"}, status=404)
        return aioweb.Response(body=self.assets[name], content_type=ASSETS[name], charset="utf-8")

    async def icon(self, request: aioweb.Request) -> aioweb.StreamResponse:
        return aioweb.Response(body=ICON, content_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    async def health(self, request: aioweb.Request) -> aioweb.StreamResponse:
        return aioweb.json_response({"status": "ready", "scored_seen": self.board.scored_total})

    async def snapshot(self, request: aioweb.Request) -> aioweb.StreamResponse:
        if self.access.identify(request) is None:
            return unauthorized()
        return aioweb.json_response(self.board.snapshot(**filters(request)))

    async def events(self, request: aioweb.Request) -> aioweb.StreamResponse:
        if self.access.identify(request) is None:
            return unauthorized()
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        response = aioweb.StreamResponse(headers=headers)
        await response.prepare(request)
        chosen = filters(request)
        try:
            while not self.stopping.is_set():
                data = json.dumps(self.board.snapshot(**chosen), separators=(",", ":"))
                await response.write(f"event: snapshot\ndata: {data}\n\n".encode())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=self.web.push_interval)
        except (ConnectionResetError, RuntimeError):
            pass  # the page went away
        return response

    async def whoami(self, request: aioweb.Request) -> aioweb.StreamResponse:
        who = self.access.identify(request)
        if who is None:
            return unauthorized()
        return aioweb.json_response({"analyst": who.analyst, "via": who.via, "can_review": who.analyst is not None})

    def cross_site(self, request: aioweb.Request) -> str | None:
        """Why a write does not come from the dashboard's own page, or None when it does (or from no browser)."""
        site = request.headers.get("Sec-Fetch-Site")
        if site not in (None, "same-origin", "none"):
            return f"refused: a {site} request may not write reviews"
        origin = request.headers.get("Origin")
        if origin is None:
            return None  # not a browser's cross-origin request (browsers send Origin on every POST)
        own = {f"{request.scheme}://{request.host}".lower(), *self.web.origins}
        if self.web.behind_tls_proxy:
            own.add(f"https://{request.host}".lower())
        return None if origin.lower() in own else f"refused: origin {origin} is not this dashboard's"

    async def feedback(self, request: aioweb.Request) -> aioweb.StreamResponse:
        who = self.access.identify(request)
        if who is None:
            return unauthorized()
        reason = self.cross_site(request)
        if reason:
            return refused(403, reason)
        if who.analyst is None:
            return refused(403, "reviews need an analyst: sign in with your own token (finmon analysts add NAME)")
        if request.content_type != "application/json":
            return refused(415, "reviews are JSON: Content-Type: application/json")
        try:
            record = feedback_record(await request.json(), analyst=who.analyst)
        except (FeedbackError, ValueError) as exc:
            return aioweb.json_response({"error": str(exc)}, status=400)
        assert self.producer is not None
        try:
            async with asyncio.timeout(SEND_SECONDS):
                await self.producer.send_and_wait(
                    self.settings.topics.feedback, record.encode(), key=record.id.encode()
                )
        except Exception as exc:  # the cluster away or refusing: the page says the review was not saved
            log.warning("a review was not saved: %s: %s", type(exc).__name__, exc)
            return refused(503, f"the cluster did not take the review ({type(exc).__name__}); try again")
        self.board.add_feedback(record.as_dict())
        return aioweb.json_response(record.as_dict(), status=202)

    async def run(self, app: aioweb.Application) -> Any:
        """aiohttp's cleanup context: the producer and the board's feed live as long as the server."""
        options = client_options(self.settings.kafka)
        self.producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=False)  # type: ignore[arg-type]
        await self.producer.start()
        feeding = asyncio.create_task(tap(self.settings.kafka, self.settings.topics, self.board, self.stopping))
        yield
        self.stopping.set()
        feeding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeding
        await close_all([self.producer], STOP_SECONDS, "dashboard")  # reviews it held were answered as not saved


def create_dashboard(settings: Settings) -> aioweb.Application:
    dashboard = Dashboard(settings)
    app = aioweb.Application()
    deadline = StopDeadline("dashboard")

    async def arm(app: aioweb.Application) -> None:
        deadline.arm()

    app.on_shutdown.append(arm)
    app.router.add_get("/dashboard", dashboard.page)
    app.router.add_get("/dashboard/{asset}", dashboard.asset)
    app.router.add_get("/favicon.ico", dashboard.icon)
    app.router.add_get("/health", dashboard.health)
    app.router.add_get("/api/snapshot", dashboard.snapshot)
    app.router.add_get("/api/events", dashboard.events)
    app.router.add_get("/api/whoami", dashboard.whoami)
    app.router.add_post("/api/feedback", dashboard.feedback)
    app.cleanup_ctx.append(dashboard.run)
    app["dashboard"] = dashboard
    return app


ICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
    b'fill="#14213d"/><path d="M2 11 6 7l3 3 5-6" stroke="#fca311" stroke-width="2" fill="none"/></svg>'
)
