"""The built-in dashboard in a real headless Chromium (Debian's), against a worker on Apache Kafka."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from tests.conftest import REPO
from tests.integration.conftest import Pipeline, good_documents, make_alert, stop
from tests.tiny_model import build_tiny_model

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is part of the [dev] extra")
pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "var" / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE = "<script>window.pwned = 1</script><img src=x onerror=window.pwned=2> bad oil w3"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: the test setup (tests/install-system-packages.sh) installs it")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def in_thread(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Kafka helpers use asyncio.run, which cannot nest in Playwright's own loop: give them a thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args, **kwargs).result()


def produce_to(url: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=url)
        await producer.start()
        try:
            for key, value in messages:
                await producer.send(topic, value, key=key)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(send())


def news(docs: list[dict[str, Any]]) -> list[tuple[bytes | None, bytes]]:
    return [(d["id"].encode(), json.dumps(d).encode()) for d in docs]


def http_status(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@contextmanager
def live_page(pipeline: Pipeline, browser: Any) -> Iterator[Any]:
    """A worker, the dashboard service, and a page of it that is live; all stopped afterwards."""
    worker = pipeline.start_worker()
    dashboard = None
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    try:
        pipeline.wait_ready(worker)
        dashboard = pipeline.start_dashboard()
        page.goto(f"http://127.0.0.1:{pipeline.dashboard_port}/dashboard")
        page.wait_for_selector("#status[data-state='live']", timeout=30_000)
        yield page
    finally:
        page.close()
        stop(worker)
        if dashboard is not None:
            stop(dashboard)


def test_the_dashboard_updates_live_filters_and_takes_corrections(pipeline: Pipeline, browser: Any) -> None:
    pipeline.extra_env.update({"FINMON_WEB__FEED_PER_SECOND": "200", "FINMON_WEB__PUSH_INTERVAL": "0.5"})
    with live_page(pipeline, browser) as page:
        base = f"http://127.0.0.1:{pipeline.dashboard_port}"
        assert http_status(f"http://127.0.0.1:{pipeline.web_port}/dashboard") == 404  # workers serve no page
        assert http_status(f"{base}/favicon.ico") == 200
        docs = good_documents(45)
        docs[3]["title"] = HOSTILE
        in_thread(pipeline.produce, news(docs))
        alert = make_alert(
            "a1",
            scope="topic",
            key="Energy / Oil",
            model_version="tiny-1",
            headlines=[{"id": "doc-1", "title": "bad oil w1 <b>bold?</b>", "score": -0.97}],
        )
        on_ticker = make_alert(
            "a2", scope="ticker", key="ACME", headlines=[{"id": "doc-7", "title": "bad ACME w7", "score": -0.9}]
        )
        alerts = [(b"a1", json.dumps(alert).encode()), (b"a2", json.dumps(on_ticker).encode())]
        in_thread(produce_to, pipeline.url, pipeline.topics["alerts"], alerts)

        page.wait_for_selector(".card svg.spark-chart path.spark", state="attached", timeout=60_000)
        page.wait_for_function("document.querySelectorAll('#feed li').length >= 40", timeout=60_000)
        assert page.locator(".card").count() >= 4
        assert page.locator("#model").inner_text() == "model tiny-1"
        assert page.locator(".alert.firing .key", has_text="topic").inner_text() == "topic Energy / Oil"
        assert page.locator(".alert li .title", has_text="oil").inner_text() == "bad oil w1 <b>bold?</b>"
        assert page.locator("#feed .title", has_text="<script>window.pwned").count() == 1
        assert page.evaluate("window.pwned") is None

        loaded_at = page.evaluate("window.finmonLoadedAt")
        late = good_documents(1, start=500)
        late[0]["title"] = "good dividend w9 arrives later"
        in_thread(pipeline.produce, news(late))
        page.wait_for_selector("#feed li[data-id='doc-500']", timeout=30_000)
        assert page.evaluate("window.finmonLoadedAt") == loaded_at, "the page reloaded"

        page.select_option("#f-topic", "Energy / Oil")
        page.wait_for_function(
            "[...document.querySelectorAll('.card')].every(c => c.dataset.topic === 'Energy / Oil')"
            " && document.querySelectorAll('.card').length === 1",
            timeout=15_000,
        )
        page.wait_for_function(
            "[...document.querySelectorAll('#feed li')].every(li => li.dataset.topic === 'Energy / Oil')",
            timeout=15_000,
        )
        page.select_option("#f-topic", "Currencies")  # no story has this topic
        page.wait_for_selector("#grid .empty", timeout=15_000)
        assert page.locator("#grid .empty").inner_text().startswith("no matches")
        assert page.locator(".card").count() == 0
        assert page.locator("#feed-note").inner_text() == "no matches for these filters"
        page.click("#f-clear")
        page.fill("#f-ticker", "ACME")
        page.dispatch_event("#f-ticker", "change")
        page.wait_for_selector("#ticker-view:not([hidden]) svg path.spark", state="attached", timeout=15_000)
        assert page.locator("#ticker-title").inner_text().startswith("ACME: negative share")
        page.click("#f-clear")
        page.wait_for_function("document.querySelectorAll('.card').length >= 4", timeout=15_000)

        page.fill("#analyst", "dana")
        page.dispatch_event("#analyst", "change")
        target = page.locator("#feed li[data-id='doc-500']")
        target.locator("button.correct").click()
        target.locator("select[name=sentiment]").select_option("negative")
        target.locator("select[name=topic]").select_option("Earnings")
        target.locator("button[type=submit]").click()
        page.wait_for_selector("#feed li[data-id='doc-500'] .reviewed", timeout=15_000)
        page.locator("#feed li", has_text="good fed").first.locator("button.confirm").click()
        under_ticker = page.locator(".alert", has_text="ticker ACME")
        under_ticker.locator("li button.confirm").click()  # a headline under a ticker alert: no model topic
        page.wait_for_selector(".alert li .reviewed", timeout=15_000)
        page.wait_for_function("document.querySelectorAll('#agreement td').length >= 5", timeout=15_000)

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=False)

        reviews = in_thread(pipeline.consume, "feedback", lambda r: len(r) >= 3, timeout=30)
        correction = next(r for r in reviews if r["id"] == "doc-500")
        assert correction["verdict"] == "corrected" and correction["analyst"] == "dana"
        assert (correction["model_sentiment"], correction["sentiment"]) == ("positive", "negative")
        assert (correction["model_topic"], correction["topic"]) == ("Dividend", "Earnings")
        assert correction["text"] == "good dividend w9 arrives later" and correction["model_version"] == "tiny-1"
        assert any(r["verdict"] == "confirmed" for r in reviews)
        assert http_status(f"{base}/api/feedback", b'{"id": "x"}', {"Content-Type": "application/json"}) == 400


def test_the_token_protects_the_page_and_the_api(pipeline: Pipeline, browser: Any) -> None:
    pipeline.extra_env["FINMON_WEB__TOKEN"] = "desk-s3cret-token"
    worker = pipeline.start_worker()
    dashboard = None
    context = browser.new_context()
    try:
        pipeline.wait_ready(worker)
        dashboard = pipeline.start_dashboard()
        base = f"http://127.0.0.1:{pipeline.dashboard_port}"
        assert http_status(f"{base}/dashboard") == 401
        assert http_status(f"{base}/dashboard/app.js") == 401
        assert http_status(f"{base}/api/snapshot") == 401
        assert http_status(f"{base}/api/events") == 401
        assert http_status(f"{base}/api/feedback", b"{}", {"Content-Type": "application/json"}) == 401
        assert http_status(f"{base}/api/snapshot?token=wrong") == 401
        assert http_status(f"{base}/api/snapshot", headers={"Authorization": "Bearer desk-s3cret-token"}) == 200
        assert http_status(f"{base}/health") == 200
        assert "desk-s3cret-token" not in pipeline.metrics()

        page = context.new_page()
        assert page.goto(f"{base}/dashboard").status == 401
        assert page.goto(f"{base}/dashboard?token=desk-s3cret-token").status == 200
        page.wait_for_selector("#status[data-state='live']", timeout=30_000)  # the event stream got the cookie
        assert "token" not in page.url  # kept out of the address bar, history and bookmarks
        in_thread(pipeline.produce, news(good_documents(10)))
        page.wait_for_selector("#feed li", timeout=60_000)
    finally:
        context.close()
        stop(worker)
        if dashboard is not None:
            stop(dashboard)
    for log in ("worker.log", "dashboard.log"):
        assert "desk-s3cret-token" not in (pipeline.folder / log).read_text()


def test_chinese_headlines_render_in_a_cjk_font(pipeline: Pipeline, browser: Any, tmp_path: Path) -> None:
    """Chinese stories, routed to a second (tiny) model, reach the page with their A-share and Hong
    Kong tickers, and their characters are drawn as glyphs, not as the boxes of a missing font."""
    multilingual = build_tiny_model(tmp_path / "multilingual", version="tiny-zh")
    pipeline.extra_env.update(
        {
            "FINMON_MODEL__MULTILINGUAL_PATH": str(multilingual),
            "FINMON_WEB__FEED_PER_SECOND": "200",
            "FINMON_WEB__PUSH_INTERVAL": "0.5",
        }
    )
    with live_page(pipeline, browser) as page:
        now = datetime.now(UTC).isoformat()
        titles = [f"good 贵州茅台 季度利润创新高 dividend {i}" for i in range(6)]
        titles += [f"bad 腾讯控股(00700)股价大跌 oil {i}" for i in range(6)] + ["good fed w1 in English"]
        docs = [{"id": f"zh-{i}", "published_at": now, "title": t, "source": "财经快讯"} for i, t in enumerate(titles)]
        in_thread(pipeline.produce, news(docs))
        page.wait_for_function("document.querySelectorAll('#feed li').length >= 13", timeout=60_000)

        chinese = page.locator("#feed li", has_text="贵州茅台").first
        assert chinese.get_attribute("data-lang") == "zh"
        assert chinese.locator(".chip").inner_text() == "600519.SH"
        assert page.locator("#feed li", has_text="腾讯控股").first.locator(".chip").inner_text() == "0700.HK"
        assert page.locator("#feed li", has_text="in English").get_attribute("data-lang") == "en"
        # a font without the characters draws every one as the same box: real glyphs differ
        drawn = page.evaluate(
            """(chars) => chars.map((ch) => {
                const canvas = document.createElement("canvas");
                canvas.width = canvas.height = 40;
                const ctx = canvas.getContext("2d");
                ctx.font = "32px " + getComputedStyle(document.body).fontFamily;
                ctx.fillText(ch, 2, 34);
                return Array.from(ctx.getImageData(0, 0, 40, 40).data).join(",");
            })""",
            ["贵", "州", "茅", "台"],
        )
        assert len(set(drawn)) == 4, "the page draws Chinese characters as boxes: is fonts-noto-cjk installed?"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-zh.png"), full_page=False)
        scored = in_thread(pipeline.consume, "scored", lambda r: len(r) >= 13, timeout=30)
    by_title = {r["title"]: r for r in scored}
    assert {r["model_version"] for t, r in by_title.items() if "English" not in t} == {"tiny-zh"}
    assert by_title["good fed w1 in English"]["model_version"] == "tiny-1"
    assert {r["lang"] for r in scored} == {"zh", "en"}
