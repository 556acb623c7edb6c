"""A local webhook receiver for the demo: collects the alerts finmon delivers and shows them."""

from __future__ import annotations

from collections import deque

from aiohttp import web
from pydantic import ValidationError

from alerts.formats import explain
from alerts.records import Alert


class AlertInbox:
    """Keeps the most recent alerts received over HTTP (finmon's native JSON format)."""

    def __init__(self, keep: int = 6) -> None:
        self.alerts: deque[Alert] = deque(maxlen=keep)
        self.received = 0
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        try:
            alert = Alert.decode(await request.read())
        except ValidationError as exc:
            return web.Response(status=400, text=f"expected a finmon alert: {exc.error_count()} field errors")
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
                "when its window closes)"
            ]
        lines = [f"alerts received: {self.received}"]
        for alert in self.alerts:
            lines.append(
                f"  {alert.status.upper():<8} {alert.scope} {alert.key}: {explain(alert)}, "
                f"window {alert.window.start[11:16]}"
            )
            if alert.status == "firing":
                lines += [f"      {h.score:+.2f}  {h.title[:90]}" for h in alert.headlines[:3]]
        return lines
