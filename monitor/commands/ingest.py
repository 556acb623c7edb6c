"""``finmon ingest``: feeds, article pages and news APIs into the news topic (one or more replicas)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from monitor.cli import existing_file
from monitor.errors import UsageError
from monitor.settings import Settings


def sources_path(args: argparse.Namespace, settings: Settings) -> Path:
    path = args.sources or settings.ingest.sources
    if path is None:
        raise UsageError("no sources file: give --sources FILE or set FINMON_INGEST__SOURCES")
    if not Path(path).is_file():
        raise UsageError(f"{path}: no such sources file (FINMON_INGEST__SOURCES)")
    return Path(path)


def ingest(args: argparse.Namespace, settings: Settings) -> int:
    try:
        import feedparser  # noqa: F401
        import trafilatura  # noqa: F401

        from streams.ingest.sources import load_sources
    except ImportError as exc:
        missing = f"finmon ingest needs the ingest extra ({exc.name} is missing): pip install 'finmon[ingest]'"
        raise UsageError(missing) from None

    sources = load_sources(sources_path(args, settings))
    if args.check:
        for source in sources:
            where = source.url or f"{len(source.urls)} pages"
            pages = ", article pages" if source.reads_pages else ""
            print(f"{source.name}: {source.kind} {where} every {source.interval:g} s{pages}")
        print(f"finmon ingest: {len(sources)} sources, all valid")
        return 0
    from monitor.commands.stream import require_broker
    from monitor.stopping import StopDeadline

    require_broker(settings)
    prepare(settings)
    deadline = StopDeadline("ingest")
    failure = asyncio.run(serve(settings, sources, deadline))
    if failure:
        print(f"finmon ingest: stopped by itself: {failure}", file=sys.stderr, flush=True)
        return 1
    return 0


def prepare(settings: Settings) -> None:
    """The news topic and the compacted state topic, created when missing."""
    from streams.cluster.topics import ensure_topics
    from streams.ingest.service import state_topic_config

    state = {settings.topics.ingest_state: state_topic_config(settings.ingest)}
    created = ensure_topics(settings.kafka, settings.topics, state, pipeline=False)
    if created:
        print(f"finmon: created topics {', '.join(created)}", flush=True)


async def serve(settings: Settings, sources: list[Any], deadline: Any) -> str | None:
    """Run the ingester and its web endpoint until a signal, or until it stops itself (the reason)."""
    from aiohttp import web
    from prometheus_client import CollectorRegistry
    from prometheus_client.aiohttp import make_aiohttp_handler

    from streams.ingest.service import Ingester
    from streams.worker.metrics import IngestMetrics

    metrics = IngestMetrics(CollectorRegistry())
    ingester = Ingester(
        settings.kafka,
        settings.topics,
        settings.ingest,
        sources,
        metrics,
        group=f"{settings.stream.app_id}-ingest",
        max_text_chars=settings.stream.max_text_chars,
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        deadline.arm()
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)

    async def health(request: web.Request) -> web.Response:
        body = {"status": "ready" if ingester.ready else "starting", "sources": sorted(ingester.loops)}
        return web.json_response(body, status=200 if ingester.ready else 503)

    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler(metrics.registry))
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = settings.ingest.web_host, settings.ingest.web_port
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise UsageError(f"cannot serve on {host}:{port} ({exc.strerror}): set FINMON_INGEST__WEB_PORT") from exc
    print(
        f"finmon ingest: {len(sources)} sources into {settings.topics.news}; metrics http://{host}:{port}/metrics",
        flush=True,
    )
    try:
        await ingester.run(stopping)
    finally:
        await runner.cleanup()
    print("finmon ingest: stopped", flush=True)
    return ingester.failure


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ingest", help="poll feeds, news APIs, sitemaps and pages into the news topic")
    p.add_argument("--sources", type=existing_file, help="the sources file (default: FINMON_INGEST__SOURCES)")
    p.add_argument("--check", action="store_true", help="check the sources file, print what it polls, and exit")
    p.set_defaults(handler=ingest)


REGISTER = [register]
