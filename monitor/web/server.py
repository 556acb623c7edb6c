"""The dashboard's routes on the worker's web server: the page, its live updates, feedback.

/dashboard            the page (static HTML, CSS and JS committed beside this module; no build step)
/api/snapshot         the board as JSON (filters: topic, ticker, sentiment)
/api/events           the same, pushed as server-sent events every ``push_interval`` seconds
/api/feedback (POST)  an analyst's review of a document, produced to the feedback topic
With a token set, all of them answer 401 unless the request carries it (bearer header, the
cookie the page sets, or ``?token=`` on the first visit). /metrics and /health stay open.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from pathlib import Path
from typing import Any

import faust
from aiohttp import web as aioweb
from faust.web import View

from monitor.settings import Settings
from monitor.web.board import Board
from monitor.web.feedback import FeedbackError, feedback_record
from monitor.web.tap import tap

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
COOKIE = "finmon_token"


class Gate:
    """The optional access token, compared in constant time."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def presented(self, request: Any) -> str | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return str(header[7:])
        return request.cookies.get(COOKIE) or request.query.get("token")

    def allows(self, request: Any) -> bool:
        if self.token is None:
            return True
        given = self.presented(request) or ""
        return hmac.compare_digest(given.encode(), self.token.encode())


def filters(request: Any) -> dict[str, str | None]:
    return {name: (request.query.get(name) or None) for name in ("topic", "ticker", "sentiment")}


def mount(app: faust.App, settings: Settings, model: dict[str, str]) -> Board:
    """Add the dashboard to a worker app; the board is fed by a task reading the topics."""
    web = settings.web
    board = Board(
        f"{settings.windows.tumbling_seconds}s",
        web.history_windows,
        feed_per_second=web.feed_per_second,
        max_tickers=web.max_tickers,
    )
    board.model = dict(model)
    gate = Gate(web.token.get_secret_value() if web.token else None)
    feedback = app.topic(settings.topics.feedback, key_serializer="raw", value_serializer="raw")
    stopping = asyncio.Event()
    assets = {name: (STATIC / name).read_bytes() for name in ASSETS}
    page_html = (STATIC / "index.html").read_bytes()

    def refuse(view: View) -> Any:
        return view.json({"error": "unauthorized: this finmon needs its access token"}, status=401)

    @app.page("/dashboard")
    class Dashboard(View):
        async def get(self, request: Any) -> Any:
            if not gate.allows(request):
                return self.text("401: this finmon dashboard needs its access token (?token=...)\n", status=401)
            response = aioweb.Response(body=page_html, content_type="text/html", charset="utf-8")
            if gate.token is not None and request.query.get("token"):
                response.set_cookie(COOKIE, gate.token, httponly=True, samesite="Strict", path="/")
            return response

    @app.page("/dashboard/{asset}")
    class Asset(View):
        async def get(self, request: Any, asset: str) -> Any:
            if not gate.allows(request):
                return refuse(self)
            if asset not in assets:
                return self.json({"error": "not found"}, status=404)
            return aioweb.Response(body=assets[asset], content_type=ASSETS[asset], charset="utf-8")

    @app.page("/api/snapshot")
    class Snapshot(View):
        async def get(self, request: Any) -> Any:
            return self.json(board.snapshot(**filters(request))) if gate.allows(request) else refuse(self)

    @app.page("/api/events")
    class Events(View):
        async def get(self, request: Any) -> Any:
            if not gate.allows(request):
                return refuse(self)
            response = aioweb.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            )
            await response.prepare(request)
            chosen = filters(request)
            try:
                while not stopping.is_set():
                    data = json.dumps(board.snapshot(**chosen), separators=(",", ":"))
                    await response.write(f"event: snapshot\ndata: {data}\n\n".encode())
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), timeout=web.push_interval)
            except (ConnectionResetError, RuntimeError):
                pass  # the page went away
            return response

    @app.page("/api/feedback")
    class Feedback(View):
        async def post(self, request: Any) -> Any:
            if not gate.allows(request):
                return refuse(self)
            try:
                record = feedback_record(await request.json())
            except (FeedbackError, ValueError) as exc:
                return self.json({"error": str(exc)}, status=400)
            sent = await feedback.send(key=str(record["id"]).encode(), value=json.dumps(record).encode())
            await sent
            board.add_feedback(record)
            return self.json(record, status=202)

    @app.task
    async def feed_board() -> None:
        await tap(settings.kafka, settings.topics, board, stopping)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_streams(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        stopping.set()

    return board
