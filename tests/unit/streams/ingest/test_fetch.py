"""The polite client against a real HTTP server on loopback (tests/feeds.py): conditional GET, Retry-After,
per-host pacing, robots.txt, redirects, deadlines and the caps on what it reads."""

from __future__ import annotations

import asyncio
import gzip
import random
import time
from collections.abc import Iterator

import pytest

from alerts.webhook import retry_after
from streams.ingest.fetch import Client, Decoder, FetchError, backoff
from streams.settings import IngestSettings
from tests.feeds import Publishers, Route, gzip_bomb

SETTINGS = IngestSettings(
    timeout=1.5,
    host_interval=0.3,
    max_bytes=200_000,
    max_decompressed_bytes=300_000,
    max_redirects=3,
    user_agent="ua-test/1",
)


@pytest.fixture(scope="module")
def pubs() -> Iterator[Publishers]:
    with Publishers(["site", "other", "robots"]) as running:
        yield running


def fetch(*calls: tuple[str, dict[str, object]], settings: IngestSettings = SETTINGS) -> list[object]:
    """Run GETs in order on one client; each result is a Response or the FetchError raised."""

    async def run() -> list[object]:
        client = Client(settings, rng=random.Random(1))
        await client.start()
        results: list[object] = []
        try:
            for url, options in calls:
                remember = bool(options.pop("remember", False))
                try:
                    response = await client.get(url, **options)  # type: ignore[arg-type]
                    results.append(response)
                    if remember:  # as the ingester does once a poll's stories are delivered
                        client.remember(url, response)
                except FetchError as exc:
                    results.append(exc)
        finally:
            await client.close()
        return results

    return asyncio.run(run())


def test_a_get_is_conditional_once_the_last_answer_was_delivered(pubs: Publishers) -> None:
    url = pubs.serve("site", "/etag.xml", Route(b"<rss/>", etag=True))
    first, again, delivered, second = fetch((url, {}), (url, {"remember": True}), (url, {}), (url, {}))
    assert first.body == b"<rss/>" and not first.not_modified  # type: ignore[union-attr]
    assert again.body == b"<rss/>"  # type: ignore[union-attr]  # the first was not delivered: read whole again
    assert delivered.not_modified and second.not_modified  # type: ignore[union-attr]
    hits = pubs.hits("site", "/etag.xml")
    assert "If-None-Match" not in hits[0]["headers"] and "If-None-Match" not in hits[1]["headers"]
    assert hits[2]["headers"]["If-None-Match"]
    assert all(h["headers"]["User-Agent"] == "ua-test/1" for h in hits)


def test_requests_to_one_host_are_paced_and_a_retry_after_is_honoured(pubs: Publishers) -> None:
    a = pubs.serve("site", "/a", Route(b"a"))
    b = pubs.serve("site", "/b", Route(b"b"))
    fetch((a, {}), (b, {}))
    assert pubs.hits("site", "/b")[0]["at"] - pubs.hits("site", "/a")[0]["at"] >= 0.29
    limited = pubs.serve("other", "/limited", Route(b"ok", behaviour="limited", headers={"Retry-After": "1"}))
    first, second = fetch((limited, {}), (limited, {}))
    assert isinstance(first, FetchError) and first.reason == "http_429" and first.retry_after == 1
    assert second.body == b"ok"  # type: ignore[union-attr]
    hits = pubs.hits("other", "/limited")
    assert hits[1]["at"] - hits[0]["at"] >= 0.99


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (Route(behaviour="hang"), "timeout"),
        (Route(b"x" * 100, behaviour="trickle"), "timeout"),
        (Route(behaviour="loop"), "redirects"),
        (Route(gzip_bomb(50_000_000), headers={"Content-Encoding": "gzip"}, behaviour="bomb"), "too_large"),
        (Route(b"x" * 300_000), "too_large"),  # Content-Length over the cap: not read at all
        (Route(b"x" * 300_000, behaviour="bomb"), "too_large"),  # no Content-Length: stops at the cap
        (Route(status=410), "http_410"),
        (Route(b"not gzip", headers={"Content-Encoding": "gzip"}), "bad_encoding"),
    ],
)
def test_each_failure_is_a_fetch_error_with_its_reason(pubs: Publishers, route: Route, reason: str) -> None:
    url = pubs.serve("other", f"/fail-{reason}-{route.behaviour}", route)
    started = time.monotonic()
    (result,) = fetch((url, {}))
    assert isinstance(result, FetchError) and result.reason == reason, result
    assert time.monotonic() - started < 5


def test_a_gzipped_body_is_decompressed_within_the_caps(pubs: Publishers) -> None:
    url = pubs.serve(
        "other",
        "/gz",
        Route(gzip.compress(b"<rss>" + b"y" * 250_000 + b"</rss>"), headers={"Content-Encoding": "gzip"}),
    )
    (result,) = fetch((url, {}))
    assert result.body.startswith(b"<rss>y") and len(result.body) == 250_011  # type: ignore[union-attr]


def test_robots_txt_keeps_finmon_off_disallowed_pages(pubs: Publishers) -> None:
    pubs.serve("robots", "/robots.txt", Route(b"User-agent: ua-test\nDisallow: /private/\n", content_type="text/plain"))
    open_page = pubs.serve("robots", "/public/1", Route(b"<html>ok</html>"))
    closed = pubs.serve("robots", "/private/1", Route(b"<html>no</html>"))
    allowed, refused, unchecked = fetch((open_page, {"robots": True}), (closed, {"robots": True}), (closed, {}))
    assert allowed.body == b"<html>ok</html>"  # type: ignore[union-attr]
    assert unchecked.body == b"<html>no</html>"  # type: ignore[union-attr]  # robots.txt is for pages only
    assert isinstance(refused, FetchError) and refused.reason == "robots"
    assert len(pubs.hits("robots", "/private/1")) == 1  # only the call that did not ask robots.txt
    assert len(pubs.hits("robots", "/robots.txt")) == 1  # read once, kept


def test_retry_after_backoff_and_decoder_arithmetic() -> None:
    assert retry_after(" 120", now=0) == 120
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 60) == 60
    assert retry_after("Wed, 21 Oct 2015 07:28:00 -0000", now=1445412480 - 60) == 60  # no zone: UTC
    assert retry_after("soon", now=0) is None and retry_after(None, now=0) is None
    assert retry_after("inf", now=0) is None and retry_after("-5", now=0) is None
    rng = random.Random(3)
    waits = [backoff(n, 30, 3600, rng) for n in range(1, 10)]
    assert all(0.5 * min(3600, 30 * 2 ** (n - 1)) <= w <= min(3600, 30 * 2 ** (n - 1)) for n, w in enumerate(waits, 1))
    assert backoff(0, 30, 3600, rng) == 0 and max(waits) <= 3600
    decoder = Decoder("gzip", 1000)
    decoder.feed(gzip.compress(b"z" * 1000))
    assert decoder.body() == b"z" * 1000
    with pytest.raises(FetchError, match="once decompressed"):
        Decoder("gzip", 999).feed(gzip.compress(b"z" * 1000))
    with pytest.raises(FetchError, match="unsupported Content-Encoding"):
        Decoder("br", 10)


def test_a_redirect_to_another_origin_carries_no_credentials(pubs: Publishers) -> None:
    target = pubs.serve("other", "/landing", Route(b"landed"))
    pubs.serve("site", "/moved-here", Route(b"here"))
    away = pubs.serve("site", "/moved-away", Route(behaviour="redirect", headers={"Location": target}))
    near = pubs.serve("site", "/moved-near", Route(behaviour="redirect", headers={"Location": "/moved-here"}))
    secret = {"X-Api-Key": "k3y"}
    landed, here = fetch((away, {"headers": dict(secret)}), (near, {"headers": dict(secret)}))
    assert landed.body == b"landed" and here.body == b"here"  # type: ignore[union-attr]
    assert pubs.hits("site", "/moved-away")[0]["headers"]["X-Api-Key"] == "k3y"
    assert "X-Api-Key" not in pubs.hits("other", "/landing")[-1]["headers"]  # another host: dropped
    assert pubs.hits("site", "/moved-here")[-1]["headers"]["X-Api-Key"] == "k3y"  # the same origin: kept
