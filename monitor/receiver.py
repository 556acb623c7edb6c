"""A local webhook receiver for the demo: collects the alerts finmon delivers and shows them."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from aiohttp import web


class AlertInbox:
    """Keeps the most recent alerts received over HTTP (finmon's native JSON format)."""

    def __init__(self, keep: int = 6) -> None:
        self.alerts: deque[dict[str, Any]] = deque(maxlen=keep)
        self.received = 0
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        try:
            alert = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400, text="expected a JSON alert")
        self.received += 1
        self.alerts.appendleft(alert)
        return web.Response(status=200)

    async def start(self, host: str, port: int) -> str:
        app = web.Application()
        app.router.add_post("/alerts", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port).start()
        return f"http://{host}:{port}/alerts"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def render(self) -> list[str]:
        if not self.alerts:
            return [
                "alerts received: none yet (a negative surge on $TSLA starts 100 s in; alerts follow "
                "when its one-minute window closes)"
            ]
        lines = [f"alerts received: {self.received}"]
        for alert in self.alerts:
            lines.append(
                f"  {alert['status'].upper():<8} {alert['scope']} {alert['key']}: "
                f"{alert['observed_negative_share']:.0%} negative vs baseline {alert['baseline_negative_share']:.0%} "
                f"({alert.get('count', 0)} stories, window {str(alert['window']['start'])[11:16]})"
            )
            if alert["status"] == "firing":
                lines += [f"      {float(h['score']):+.2f}  {h['title'][:90]}" for h in alert.get("headlines", [])[:3]]
        return lines
