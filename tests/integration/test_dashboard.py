"""The built-in dashboard in a real headless Chromium (Debian's), against a worker on Apache Kafka."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import sys
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
from tests.integration.conftest import Pipeline, good_documents, make_alert, stop, wait_for
from tests.tiny_model import build_tiny_model
from tests.tls import make_authority, make_certificate

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


def add_analyst(pipeline: Pipeline, name: str) -> str:
    """``finmon analysts add NAME`` into the pipeline's tokens file; the token it shows once."""
    path = pipeline.folder / "analysts"
    pipeline.extra_env["FINMON_WEB__TOKENS_FILE"] = str(path)
    command = [sys.executable, "-m", "monitor.cli", "analysts", "add", name, "--file", str(path)]
    made = subprocess.run(command, env=pipeline.env(), capture_output=True, text=True, timeout=60, check=True)
    token = made.stdout.splitlines()[1]
    assert token not in path.read_text()
    return token


@contextmanager
def live_page(pipeline: Pipeline, browser: Any, token: str | None = None) -> Iterator[Any]:
    """A worker, the dashboard service, and a page of it that is live (signed in with ``token``); all
    stopped afterwards."""
    worker = pipeline.start_worker()
    dashboard = None
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    try:
        pipeline.wait_ready(worker)
        dashboard = pipeline.start_dashboard()
        login = f"?token={token}" if token else ""
        page.goto(f"http://127.0.0.1:{pipeline.dashboard_port}/dashboard{login}")
        page.wait_for_selector("#status[data-state='live']", timeout=30_000)
        yield page
    finally:
        page.close()
        stop(worker)
        if dashboard is not None:
            stop(dashboard)


def test_the_dashboard_updates_live_filters_and_takes_corrections(pipeline: Pipeline, browser: Any) -> None:
    pipeline.extra_env.update({"FINMON_WEB__FEED_PER_SECOND": "200", "FINMON_WEB__PUSH_INTERVAL": "0.5"})
    token = add_analyst(pipeline, "dana")
    with live_page(pipeline, browser, token) as page:
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

        assert page.locator("#who").inner_text() == "analyst dana"  # named by the login, not by a text box
        target = page.locator("#feed li[data-id='doc-500']")
        target.locator("button.correct").click()
        target.locator("select[name=sentiment]").select_option("negative")
        target.locator("select[name=topic]").select_option("Earnings")
        target.locator("button[type=submit]").click()
        page.wait_for_selector("#feed li[data-id='doc-500'] .reviewed", timeout=15_000)
        assert page.locator("#feed li[data-id='doc-500'] .reviewed").inner_text() == "corrected · dana"
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
        signed = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        assert http_status(f"{base}/api/feedback", b'{"id": "x"}', signed) == 400


def answer(url: str, data: bytes | None = None, headers: dict[str, str] | None = None, **kw: Any) -> tuple[int, Any]:
    """Status and headers of a request (``kw`` to urlopen, e.g. an SSL context), with the JSON body if any."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5, **kw) as response:
            return int(response.status), response.headers
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read() or b"null") if "json" in exc.headers.get(
            "Content-Type", ""
        ) else None


def review_of(doc_id: str, analyst: str = "mallory") -> bytes:
    """A review as the page sends it; the ``analyst`` field is the page's word only."""
    fields = {"id": doc_id, "text": "t", "model_topic": "Macro", "model_sentiment": "neutral", "topic": "Macro"}
    return json.dumps({**fields, "sentiment": "negative", "analyst": analyst}).encode()


def scored_news(count: int) -> list[tuple[bytes, bytes]]:
    """Scored records as the workers write them, straight to the scored topic: the page needs no worker."""
    now = datetime.now(UTC).isoformat()
    fields = {"topic": "Macro", "sentiment": "neutral", "score": 0.1, "tickers": [], "model_version": "tiny-1"}
    return [
        (f"s{i}".encode(), json.dumps({"id": f"s{i}", "published_at": now, "title": f"fed w{i}", **fields}).encode())
        for i in range(count)
    ]


def show_scored_news(pipeline: Pipeline, page: Any, doc_id: str) -> None:
    """Write scored news until ``doc_id`` is in the page's feed: the dashboard reads the scored topic
    from its end, from the moment it has found the topic's partitions."""
    for _ in range(12):
        in_thread(produce_to, pipeline.url, pipeline.topics["scored"], scored_news(5))
        try:
            page.wait_for_selector(f"#feed li[data-id='{doc_id}'] button.confirm", timeout=5_000)
            return
        except playwright_api.TimeoutError:
            continue
    raise AssertionError(f"{doc_id} never reached the page")


def test_reading_needs_a_login_and_reviews_need_an_analyst_on_the_page_itself(pipeline: Pipeline, browser: Any) -> None:
    dana = add_analyst(pipeline, "dana")
    pipeline.extra_env.update({"FINMON_WEB__TOKEN": "desk-viewing-token", "FINMON_WEB__PUSH_INTERVAL": "0.5"})
    dashboard = pipeline.start_dashboard(verbose=True)
    viewer, analyst = browser.new_context(), browser.new_context()
    base = f"http://127.0.0.1:{pipeline.dashboard_port}"
    as_viewer = {"Authorization": "Bearer desk-viewing-token"}
    as_dana = {"Authorization": f"Bearer {dana}", "Content-Type": "application/json"}
    try:
        for path in ("/dashboard", "/dashboard/app.js", "/api/snapshot", "/api/events", "/api/whoami"):
            assert http_status(f"{base}{path}") == 401, path
        assert http_status(f"{base}/api/snapshot?token=wrong") == 401
        assert http_status(f"{base}/api/snapshot", headers=as_viewer) == 200
        assert http_status(f"{base}/api/snapshot", headers=as_dana) == 200
        assert http_status(f"{base}/health") == 200

        feedback = f"{base}/api/feedback"
        assert answer(feedback, review_of("d1"), {"Content-Type": "application/json"})[0] == 401
        status, body = answer(feedback, review_of("d1"), {**as_viewer, "Content-Type": "application/json"})
        assert status == 403 and body["error"].startswith("reviews need an analyst")
        assert answer(feedback, review_of("d1"), {**as_dana, "Content-Type": "text/plain"})[0] == 415
        status, body = answer(feedback, review_of("d1"), {**as_dana, "Origin": "http://evil.example"})
        assert status == 403 and "origin http://evil.example is not this dashboard's" in body["error"]
        assert answer(feedback, review_of("d1"), {**as_dana, "Sec-Fetch-Site": "cross-site"})[0] == 403
        assert answer(feedback, review_of("d1"), {**as_dana, "Origin": base})[0] == 202

        page = viewer.new_page()
        assert page.goto(f"{base}/dashboard?token=desk-viewing-token").status == 200
        page.wait_for_selector("#status[data-state='live']", timeout=30_000)  # the event stream got the cookie
        assert "token" not in page.url  # kept out of the address bar, history and bookmarks
        assert page.locator("#who").inner_text().startswith("read only")
        show_scored_news(pipeline, page, "s3")
        page.locator("#feed li[data-id='s3'] button.confirm").click()
        refusal = page.locator("#feed li[data-id='s3'] .actions .error")
        refusal.wait_for(timeout=15_000)
        why = "not saved: reviews need an analyst: sign in with your own token (finmon analysts add NAME)"
        assert refusal.inner_text() == why
        # the board is redrawn with every push: the refusal stays on the row drawn next
        page.evaluate("document.querySelector(\"#feed li[data-id='s3']\").dataset.drawn = 'before'")
        page.wait_for_selector("#feed li[data-id='s3']:not([data-drawn])", timeout=15_000)
        assert refusal.inner_text() == why

        signed = analyst.new_page()
        signed.goto(f"{base}/dashboard?token={dana}")
        signed.wait_for_selector("#feed li[data-id='s3'] button.confirm", timeout=60_000)
        signed.locator("#feed li[data-id='s3'] button.confirm").click()
        signed.wait_for_selector("#feed li[data-id='s3'] .reviewed", timeout=15_000)
        assert signed.locator("#feed li[data-id='s3'] .reviewed").inner_text() == "confirmed · dana"
        # everybody's page names who reviewed what
        page.wait_for_selector("#feed li[data-id='s3'] .reviewed", timeout=15_000)
        assert page.locator("#feed li[data-id='s3'] .reviewed").inner_text() == "confirmed · dana"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-read-only.png"), full_page=False)
        reviews = in_thread(pipeline.consume, "feedback", lambda r: len(r) >= 2, timeout=30)
    finally:
        viewer.close()
        analyst.close()
        stop(dashboard)
    assert sorted((r["id"], r["analyst"]) for r in reviews) == [("d1", "dana"), ("s3", "dana")]
    log = (pipeline.folder / "dashboard.log").read_text()
    assert '"GET /dashboard?token=***" 200' in log, log[-3000:]
    for secret in ("desk-viewing-token", dana):
        assert secret not in log


def finmon_dashboard(pipeline: Pipeline, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "monitor.cli", "dashboard"]
    return subprocess.run(command, env={**pipeline.env(), **env}, capture_output=True, text=True, timeout=60)


def test_beyond_loopback_only_with_logins_and_the_cookie_is_secure_over_tls(pipeline: Pipeline, tmp_path: Path) -> None:
    refused = finmon_dashboard(pipeline, FINMON_WEB__HOST="0.0.0.0")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "serves 0.0.0.0 beyond loopback only with logins: set FINMON_WEB__TOKENS_FILE" in refused.stderr
    missing = finmon_dashboard(pipeline, FINMON_WEB__HOST="0.0.0.0", FINMON_WEB__TOKENS_FILE=str(tmp_path / "none"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    assert "cannot read the analysts' tokens file" in missing.stderr

    dana = add_analyst(pipeline, "dana")
    authority = make_authority(tmp_path / "ca")
    bundle = make_certificate(authority, tmp_path / "certs", "dashboard", ["127.0.0.1"])
    pipeline.extra_env.update({"FINMON_WEB__TLS_CERTFILE": str(bundle), "FINMON_WEB__TLS_KEYFILE": str(bundle)})
    log = (pipeline.folder / "dashboard.log").open("ab")
    command = [sys.executable, "-m", "monitor.cli", "dashboard"]
    served = subprocess.Popen(command, env=pipeline.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    trusted = ssl.create_default_context(cafile=str(authority.cert))
    base = f"https://127.0.0.1:{pipeline.dashboard_port}"
    try:

        def healthy() -> bool:
            assert served.poll() is None, (pipeline.folder / "dashboard.log").read_text()
            try:
                return answer(f"{base}/health", context=trusted)[0] == 200
            except OSError:
                return False

        wait_for(healthy, "the dashboard answered over HTTPS", 60)
        status, headers = answer(f"{base}/dashboard?token={dana}", context=trusted)
        cookie = headers["Set-Cookie"]
        assert status == 200 and "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    finally:
        stop(served)
    for name in ("FINMON_WEB__TLS_CERTFILE", "FINMON_WEB__TLS_KEYFILE"):
        del pipeline.extra_env[name]

    pipeline.extra_env["FINMON_WEB__BEHIND_TLS_PROXY"] = "true"  # plain HTTP to the proxy, HTTPS to the analyst
    dashboard = pipeline.start_dashboard()
    try:
        status, headers = answer(f"http://127.0.0.1:{pipeline.dashboard_port}/dashboard?token={dana}")
        assert status == 200 and "Secure" in headers["Set-Cookie"]
    finally:
        stop(dashboard)


def test_a_trusted_proxy_names_the_analyst_and_nobody_else_can(pipeline: Pipeline) -> None:
    pipeline.extra_env["FINMON_WEB__PROXY_USER_HEADER"] = "X-Forwarded-User"
    review = f"http://127.0.0.1:{pipeline.dashboard_port}/api/feedback"
    by_kim = {"X-Forwarded-User": "kim", "Content-Type": "application/json"}
    for proxies, expected in (('["127.0.0.1/32"]', 202), ('["10.9.0.0/16"]', 401)):
        pipeline.extra_env["FINMON_WEB__TRUSTED_PROXIES"] = proxies
        dashboard = pipeline.start_dashboard()
        try:
            assert answer(review, review_of(f"p{expected}"), by_kim)[0] == expected, proxies
        finally:
            stop(dashboard)
    reviews = in_thread(pipeline.consume, "feedback", lambda r: len(r) >= 1, timeout=30)
    assert [(r["id"], r["analyst"]) for r in reviews] == [("p202", "kim")]


def test_chinese_headlines_render_in_a_cjk_font(pipeline: Pipeline, browser: Any, tmp_path: Path) -> None:
    """Chinese stories, routed to a second (tiny) model, reach the page with their A-share and Hong
    Kong tickers, and their characters are drawn as glyphs, not as the boxes of a missing font."""
    multilingual = build_tiny_model(tmp_path / "multilingual", version="tiny-zh")
    pipeline.extra_env.update(
        {
            "FINMON_MODEL__MULTILINGUAL_PATH": str(multilingual),
            "FINMON_MODEL__CHINESE_PATH": str(multilingual),
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
