"""``finmon ingest`` against real publishers on loopback, through Apache Kafka to news.scored.

Every feed form and failure of ``tests/feeds.py`` at once: the good sources' stories reach news.scored
once each, with their text decoded and their times in UTC; each bad source is named in a log line
and a metric while the others go on. Then replicas: restarts, a second replica and a SIGKILL mid-stream,
and no story is on the news topic twice.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import urllib.request
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.feeds import (
    NOW,
    Item,
    Publishers,
    Route,
    ago,
    api_body,
    article_page,
    atom,
    gzip_bomb,
    rdf,
    rfc822,
    rss,
)
from tests.integration.conftest import Pipeline, stop, wait_for
from tests.kafka import free_port

GOOD = ["wire", "exchange", "regulator", "gbk", "gb2312", "big5", "api", "sitemap", "sparse", "limited"]
BAD = ["malformed", "hang", "trickle", "gone", "missing", "error", "loop", "bomb", "huge"]
TOKEN = "s3cret-token-never-logged"


def ingest_env(pipeline: Pipeline, sources: Path, port: int, **more: str) -> dict[str, str]:
    return {
        "FINMON_INGEST__SOURCES": str(sources),
        "FINMON_INGEST__WEB_PORT": str(port),
        "FINMON_INGEST__USER_AGENT": "finmon-ingest/test (desk@example.com)",
        "FINMON_INGEST__TIMEOUT": "3",
        "FINMON_INGEST__CONNECT_TIMEOUT": "2",
        "FINMON_INGEST__HOST_INTERVAL": "0.05",
        "FINMON_INGEST__BACKOFF_BASE": "1",
        "FINMON_INGEST__BACKOFF_MAX": "4",
        "FINMON_INGEST__GONE_AFTER": "2",
        "FINMON_INGEST__MAX_BYTES": "5000000",
        "FINMON_INGEST__MAX_DECOMPRESSED_BYTES": "5000000",
        **more,
    }


def start_ingest(pipeline: Pipeline, env: dict[str, str], log: str) -> Any:
    pipeline.extra_env.update(env)
    return pipeline.start("ingest", log)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        return str(response.read().decode())


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series on a /metrics page (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


WIRE = [
    Item("<![CDATA[Acme <b>beats</b> estimates & raises guidance]]>", "/markets/acme.html", "wire-1", rfc822(ago(30))),
    Item(
        "Oil major AT&amp;amp;T-style &#8220;quotes&#8221; cut dividend", "markets/oil.html", "wire-2",
        rfc822(ago(20), "GMT"),
    ),
    Item("Fed holds rates steady", "/fed", None, rfc822(ago(10), "EST"), "The Fed held rates."),  # its page: 404
    Item("Bank posts record quarter", "/markets/bank.html", "wire-4", None, "A summary only."),
]  # fmt: skip


def publish(pubs: Publishers) -> list[dict[str, Any]]:
    """Serve every form; the sources file's entries."""
    p = pubs.serve
    p("wire", "/feeds/markets.xml", Route(rss(WIRE).encode(), etag=True))
    for path, title in (("/markets/acme.html", "Acme beats estimates"), ("/feeds/markets/oil.html", "Oil")):
        text = f"{title} as reported by the wire.\n" + "Shares rose in early trading after the results. " * 8
        p("wire", path, Route(article_page(title, text, ago(30)), content_type="text/html; charset=utf-8"))
    p("wire", "/markets/bank.html", Route(status=503, headers={"Retry-After": "1"}))  # the feed's text goes
    atom_items = [
        Item(
            "Trading halt in &lt;b&gt;XYZ&lt;/b&gt; shares", "halts/xyz", "urn:exchange:1", ago(5).isoformat(), "Halted"
        ),
        Item("New listing: Example Corp IPO priced", "listings/ex", "urn:exchange:2", "2026-12-01T09:30:00+01:00"),
    ]
    p("exchange", "/notices.atom", Route(atom(atom_items).encode(), content_type="application/atom+xml"))
    rdf_items = [
        Item(
            "Regulator fines broker for market abuse",
            "https://regulator.example/n/1",
            None,
            "2026-12-02T08:00:00.000Z",
            "Fine",
        )
    ]
    p("regulator", "/rss", Route(rdf(rdf_items).encode(), content_type="application/rdf+xml"))
    gbk_items = [Item("央行宣布降准0.5个百分点，释放长期资金约一万亿元", "/a/1.shtml", "gbk-1", "2026-12-06 10:00:00")]
    p("gbk", "/rss.xml", Route(rss(gbk_items, encoding=None).encode("gbk"), content_type="text/xml"))
    gb2312_items = [Item("朱镕基基金会：股市大幅下跌，投资者恐慌", "/b/1.html", "gb-1", rfc822(ago(3), "CST"))]
    p("gb2312", "/rss.xml", Route(rss(gb2312_items, encoding="gb2312").encode("gbk"), content_type="application/xml"))
    big5_items = [Item("臺灣股市大漲，外資買超創新高", "/c/1.html", "big5-1", rfc822(ago(4), "+0800"))]
    p("big5", "/rss.xml", Route(rss(big5_items, encoding=None).encode("big5"), content_type="text/xml; charset=big5"))
    api_items = [
        {"uuid": "api-1", "headline": "Chipmaker warns of weak demand", "summary": "Shares fell 8%.",
         "link": "/story/1", "published": int(ago(2).timestamp() * 1000)},
        {"uuid": "api-2", "headline": "", "summary": "", "link": "/story/2"},  # nothing to read: invalid
    ]  # fmt: skip
    p("api", "/v2/news", Route(api_body(api_items), content_type="application/json", behaviour="auth", token=TOKEN))
    sitemap = (
        '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
        f"<url><loc>/news/1.html</loc><news:news><news:publication_date>{ago(7).isoformat()}</news:publication_date>"
        "<news:title>Insurer sees profit jump on lower claims</news:title></news:news></url>"
        "<url><loc>/news/2.html</loc></url><url><loc>/private/3.html</loc></url></urlset>"
    )
    p("sitemap", "/sitemap.xml", Route(sitemap.encode(), content_type="application/xml"))
    p("sitemap", "/robots.txt", Route(b"User-agent: *\nDisallow: /private/\n", content_type="text/plain"))
    text = "保险公司净利润同比增长三成，综合成本率下降。\n" + "分析师认为理赔减少推动了业绩改善。" * 6
    p("sitemap", "/news/1.html", Route(article_page("保险公司利润大增", text, ago(7)), content_type="text/html"))
    text2 = (
        "The retailer closed forty stores after weak holiday sales.\n" + "Analysts expect further cuts next year. " * 8
    )
    p(
        "sitemap",
        "/news/2.html",
        Route(article_page("Retailer closes stores", text2, ago(6), "gbk"), content_type="text/html"),
    )
    p("sitemap", "/private/3.html", Route(article_page("Private", "never read", ago(6)), content_type="text/html"))
    sparse = [Item("", None, None, None, "Only a summary: no title, no link, no time."), Item("", None, None, None, "")]
    p("sparse", "/feed", Route(rss(sparse).encode()))
    p(
        "limited",
        "/feed",
        Route(  # a 429 with Retry-After: 3 first, polled every 2 s
            rss([Item("Miner cuts output", "/m", "lim-1", rfc822(ago(1)))]).encode(),
            behaviour="limited",
            headers={"Retry-After": "3"},
        ),
    )
    p("malformed", "/feed", Route(b"<?xml version='1.0'?><rss><channel><item><title>broken & <unclosed"))
    p("hang", "/feed", Route(behaviour="hang"))
    p("trickle", "/feed", Route(rss([Item("slow", "/s", "s", None)]).encode(), behaviour="trickle"))
    p("gone", "/feed", Route(status=410))
    p("error", "/feed", Route(status=500))
    p("loop", "/feed", Route(behaviour="loop"))
    p("bomb", "/feed", Route(gzip_bomb(), headers={"Content-Encoding": "gzip"}, behaviour="bomb"))
    p("huge", "/feed", Route(behaviour="huge"))
    sources = [
        {"name": "wire", "kind": "rss", "url": pubs.url("wire", "/feeds/markets.xml"), "lang": "en",
         "fetch_article": True},
        {"name": "exchange", "kind": "atom", "url": pubs.url("exchange", "/notices.atom")},
        {"name": "regulator", "kind": "rdf", "url": pubs.url("regulator", "/rss")},
        {"name": "gbk", "kind": "rss", "url": pubs.url("gbk", "/rss.xml"), "timezone": "Asia/Shanghai"},
        {"name": "gb2312", "kind": "rss", "url": pubs.url("gb2312", "/rss.xml"), "timezone": "Asia/Shanghai"},
        {"name": "big5", "kind": "rss", "url": pubs.url("big5", "/rss.xml"), "lang": "zh-TW"},
        {"name": "api", "kind": "json", "url": pubs.url("api", "/v2/news"), "items": "data.articles",
         "headers": {"Authorization": "Bearer ${WIRE_TOKEN}"},
         "fields": {"id": "uuid", "title": "headline", "body": "summary", "url": "link", "published_at": "published"}},
        {"name": "sitemap", "kind": "sitemap", "url": pubs.url("sitemap", "/sitemap.xml")},
        {"name": "sparse", "kind": "rss", "url": pubs.url("sparse", "/feed")},
        {"name": "limited", "kind": "rss", "url": pubs.url("limited", "/feed")},
        *({"name": name, "kind": "rss", "url": pubs.url(name, "/feed")} for name in BAD),
    ]  # fmt: skip
    sources[BAD.index("missing") + len(GOOD)]["url"] = pubs.url("missing", "/no-such-feed")
    return sources


def everything(pipeline: Pipeline, topic: str) -> list[dict[str, Any]]:
    """Every committed record of a topic, read to its end offsets (not only until a condition holds)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=pipeline.url, group_id=None, enable_auto_commit=False, isolation_level="read_committed"
    )
    try:
        name = pipeline.topics[topic]
        partitions = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < end for tp, end in ends.items()) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(json.loads(m.value) for m in batch)
        assert all(consumer.position(tp) >= end for tp, end in ends.items()), "could not read the topic to its end"
        return records
    finally:
        consumer.close()


def write_sources(folder: Path, sources: list[dict[str, Any]], interval: float) -> Path:
    path = folder / "sources.yaml"
    lines = [f"defaults: {{interval: {interval}}}", "sources:"]
    lines += [f"  - {json.dumps(source, ensure_ascii=False)}" for source in sources]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


EXPECTED = {  # (source, title) -> what the record must hold
    ("wire", "Acme beats estimates & raises guidance"): {"lang": "en", "body_has": "Shares rose in early trading"},
    ("wire", "Oil major AT&T-style \u201cquotes\u201d cut dividend"): {"url_end": "/feeds/markets/oil.html"},
    ("wire", "Fed holds rates steady"): {"body": "The Fed held rates.", "url_end": "/fed"},
    ("wire", "Bank posts record quarter"): {"body": "A summary only.", "published_at_from": "fetched"},
    ("exchange", "Trading halt in XYZ shares"): {"url_end": "/notices/halts/xyz"},
    ("exchange", "New listing: Example Corp IPO priced"): {"published_at": "2026-12-01T08:30:00.000Z"},
    ("regulator", "Regulator fines broker for market abuse"): {"published_at": "2026-12-02T08:00:00.000Z"},
    ("gbk", "央行宣布降准0.5个百分点，释放长期资金约一万亿元"): {
        "published_at": "2026-12-06T02:00:00.000Z",
        "lang": "zh",
    },
    ("gb2312", "朱镕基基金会：股市大幅下跌，投资者恐慌"): {"lang": "zh"},
    ("big5", "臺灣股市大漲，外資買超創新高"): {"lang": "zh-TW"},
    ("api", "Chipmaker warns of weak demand"): {"body": "Shares fell 8%.", "url_end": "/story/1"},
    ("sitemap", "Insurer sees profit jump on lower claims"): {"body_has": "分析师认为理赔减少"},
    ("sitemap", "Retailer closes stores"): {"body_has": "closed forty stores"},
    ("sparse", ""): {"body": "Only a summary: no title, no link, no time.", "published_at_from": "fetched"},
    ("limited", "Miner cuts output"): {},
}


def check(record: dict[str, Any], expected: dict[str, str]) -> None:
    for key, value in expected.items():
        if key == "body_has":
            assert value in record["body"], record
        elif key == "url_end":
            assert record["url"].endswith(value), record
        else:
            assert record[key] == value, record


def test_every_feed_form_reaches_news_scored_once_and_bad_sources_never_stop_the_others(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Publishers(GOOD + BAD) as pubs:
        sources = publish(pubs)
        path = write_sources(tmp_path, sources, interval=2)
        port = free_port()
        worker = pipeline.start_worker()
        ingest = start_ingest(pipeline, {**ingest_env(pipeline, path, port), "WIRE_TOKEN": TOKEN}, "ingest.log")
        try:
            pipeline.wait_ready(worker)
            wait_for(
                lambda: ready(port), "the ingester did not become ready:\n" + (tmp_path / "ingest.log").read_text()
            )

            def scored_all(records: list[dict[str, Any]]) -> bool:
                return {(r["source"], r["title"]) for r in records} >= set(EXPECTED)

            scored = pipeline.consume("scored", scored_all, timeout=120)
            by_title = {(r["source"], r["title"]): r for r in scored}
            assert set(EXPECTED) <= set(by_title), sorted(set(EXPECTED) - set(by_title))
            assert not {s for s, _ in by_title} & set(BAD)
            sent = {(r["source"], r["title"]): r for r in pipeline.consume("news", lambda rs: len(rs) >= len(scored))}
            for key, expected in EXPECTED.items():
                check(sent[key], expected)
                assert by_title[key]["id"] == sent[key]["id"]
                assert by_title[key]["sentiment"] in ("negative", "neutral", "positive")
                assert datetime.fromisoformat(sent[key]["published_at"]).utcoffset() == timedelta(0)

            # the bad sources: each named in a log line and a metric, the good ones polled all along
            def failures_seen() -> bool:
                page = scrape(port)
                return all(
                    [
                        sample(page, "finmon_ingest_failures_total", source="malformed", reason="malformed") >= 1,
                        sample(page, "finmon_ingest_failures_total", source="hang", reason="timeout") >= 1,
                        sample(page, "finmon_ingest_failures_total", source="trickle", reason="timeout") >= 1,
                        sample(page, "finmon_ingest_source_gone", source="gone") == 1,
                        sample(page, "finmon_ingest_source_gone", source="missing") == 1,
                        sample(page, "finmon_ingest_failures_total", source="error", reason="http_500") >= 2,
                        sample(page, "finmon_ingest_failures_total", source="loop", reason="redirects") >= 1,
                        sample(page, "finmon_ingest_failures_total", source="bomb", reason="too_large") >= 1,
                        sample(page, "finmon_ingest_failures_total", source="huge", reason="too_large") >= 1,
                        sample(page, "finmon_ingest_pages_total", source="sitemap", outcome="robots") >= 1,
                        sample(page, "finmon_ingest_polls_total", source="wire", outcome="not_modified") >= 1,
                    ]
                )

            try:
                wait_for(failures_seen, "not every failure was counted", timeout=90)
            except AssertionError:
                raise AssertionError("not every failure was counted:\n" + scrape(port)) from None

            # a story published later arrives on the next poll; the ones before are not sent again
            later = Item("Acme raises dividend after record year", "/markets/later.html", "wire-5", rfc822(NOW))
            pubs.routes[("wire", "/feeds/markets.xml")] = Route(rss([later, *WIRE]).encode(), etag=True)
            pipeline.consume("news", lambda rs: any(r["title"].startswith("Acme raises") for r in rs))
            records = everything(pipeline, "news")
            ids = Counter(r["id"] for r in records)
            assert [i for i, n in ids.items() if n > 1] == []
            assert sum(1 for r in records if r["title"].startswith("Acme raises")) == 1
            page = scrape(port)
            assert sample(page, "finmon_ingest_items_new_total", source="wire") == 5
            assert sample(page, "finmon_ingest_items_duplicate_total", source="exchange") >= 2
            assert sample(page, "finmon_ingest_items_invalid_total", source="sparse") >= 1
            assert sample(page, "finmon_ingest_items_invalid_total", source="api") >= 1
            assert sample(page, "finmon_ingest_source_gone", source="error") == 0
        finally:
            stop(ingest)
            stop(worker)
        log = (tmp_path / "ingest.log").read_text()
        for name in ("malformed", "hang", "trickle", "error", "loop", "bomb", "huge"):
            assert re.search(rf"source {name}: \w+ \(", log), f"no log line names {name}:\n{log[-3000:]}"
        assert re.search(r"source gone: gone \(HTTP 410", log) and re.search(r"source missing: gone \(HTTP 404", log)
        assert TOKEN not in log
        assert ingest.returncode == 0, log[-2000:]

    # politeness, as the publishers saw it
    wire = pubs.hits("wire", "/feeds/markets.xml")
    assert all(h["headers"]["User-Agent"] == "finmon-ingest/test (desk@example.com)" for h in wire)
    assert any("If-None-Match" in h["headers"] for h in wire[1:])
    limited = pubs.hits("limited", "/feed")
    assert len(limited) >= 2 and limited[1]["at"] - limited[0]["at"] >= 2.9  # its Retry-After: 3, not the 2 s interval
    assert pubs.hits("sitemap", "/private/3.html") == []
    assert len(pubs.hits("gone", "/feed")) == 2  # gone after 2 answers: asked no more
    assert all(h["headers"].get("Authorization") == f"Bearer {TOKEN}" for h in pubs.hits("api", "/v2/news"))


class GrowingFeed:
    """Publishers whose feeds gain a story every ``every`` seconds, from a thread, until stopped."""

    def __init__(self, pubs: Publishers, names: list[str], every: float = 0.1) -> None:
        self.pubs, self.names, self.every = pubs, names, every
        self.items: dict[str, list[Item]] = {name: [] for name in names}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        for name in names:
            pubs.serve(name, "/feed", Route(rss([]).encode()))

    def _run(self) -> None:
        n = 0
        while not self.stopped.is_set():
            name = self.names[n % len(self.names)]
            self.items[name].append(Item(f"{name} story {n}: shares move", f"/s/{n}", f"{name}-{n}", rfc822(NOW)))
            self.pubs.routes[(name, "/feed")] = Route(rss(self.items[name]).encode())
            n += 1
            time.sleep(self.every)

    def published(self) -> int:
        return sum(len(items) for items in self.items.values())

    def __enter__(self) -> GrowingFeed:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(5)


def test_restarts_a_second_replica_and_a_kill_mid_stream_never_send_a_story_twice(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    names = ["pub0", "pub1", "pub2", "pub3", "pub6", "pub9"]  # crc32 % 3: 2, 1, 2, 2, 0, 1: every partition
    pipeline.extra_env["FINMON_TOPICS__PARTITIONS"] = "3"  # the state topic's partitions: up to 3 replicas share
    with Publishers(names) as pubs, GrowingFeed(pubs, names) as feed:
        sources = [{"name": name, "kind": "rss", "url": pubs.url(name, "/feed")} for name in names]
        path = write_sources(tmp_path, sources, interval=1)
        ports = [free_port(), free_port()]
        envs = [ingest_env(pipeline, path, port) for port in ports]
        a = start_ingest(pipeline, envs[0], "a.log")
        b = None
        try:
            wait_for(lambda: ready(ports[0]), "replica a did not become ready")
            wait_for(
                lambda: sample(scrape(ports[0]), "finmon_ingest_items_new_total", source="pub0") > 0, "nothing sent"
            )
            b = start_ingest(pipeline, envs[1], "b.log")
            owned = "finmon_ingest_sources_owned"
            wait_for(lambda: ready(ports[1]) and sample(scrape(ports[1]), owned) > 0, "replica b took no source")
            wait_for(
                lambda: sample(scrape(ports[0]), owned) + sample(scrape(ports[1]), owned) == len(names),
                "the replicas do not share the sources between them",
            )
            stop(a)  # SIGTERM: its sources go to b
            assert a.returncode == 0, (tmp_path / "a.log").read_text()[-2000:]
            wait_for(lambda: sample(scrape(ports[1]), owned) == len(names), "b did not take a's sources")
            a = start_ingest(pipeline, envs[0], "a.log")
            wait_for(lambda: ready(ports[0]) and sample(scrape(ports[0]), owned) > 0, "a did not come back")
            stop(b, signal.SIGKILL)  # mid-poll, maybe mid-transaction: a takes b's sources after its session ends
            wait_for(lambda: sample(scrape(ports[0]), owned) == len(names), "a did not take b's sources", timeout=60)
        finally:
            feed.stopped.set()
            feed.thread.join(5)
            published = feed.published()
            pipeline.consume("news", lambda rs: len(rs) >= published, timeout=60)
            records = everything(pipeline, "news")  # to the end: a duplicate after the last story counts too
            stop(a)
            if b is not None:
                stop(b)
    ids = Counter(r["id"] for r in records)
    titles = Counter(r["title"] for r in records)
    print(f"replicas: {published} stories published, {len(records)} records on news, {len(ids)} distinct ids")
    assert [i for i, n in ids.items() if n > 1] == [], "a story was sent twice"
    assert [t for t, n in titles.items() if n > 1] == []
    assert len(records) == published, f"{len(records)} on news of {published} published"


def test_a_bad_sources_file_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "sources.yaml"
    path.write_text(
        "sources:\n  - name: ok\n    kind: rss\n    url: https://a.example/feed\n  - name: bad\n    kind: rss\n    url: ftp://x\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "ingest", "--sources", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert f"{path}:7: sources[1].url:" in result.stderr


def test_prometheus_raises_the_silent_and_gone_source_rules_on_a_live_ingester(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """The deploy/ rules, as shipped (``for`` set to 0 s), on a real Prometheus scraping a real ingester."""
    import yaml

    from tests.integration.test_observability import prometheus_config, query, start_prometheus

    with Publishers(["ok", "down", "gone"]) as pubs:
        pubs.serve("ok", "/feed", Route(rss([Item("Steady news", "/1", "ok-1", rfc822(NOW))]).encode()))
        pubs.serve("down", "/feed", Route(status=500))
        pubs.serve("gone", "/feed", Route(status=410))
        path = write_sources(
            tmp_path, [{"name": n, "kind": "rss", "url": pubs.url(n, "/feed")} for n in ("ok", "down", "gone")], 1
        )
        port, prom_port = free_port(), free_port()
        config = prometheus_config(tmp_path)
        del config["alerting"]
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        jobs["finmon-ingest"]["static_configs"][0]["targets"] = [f"127.0.0.1:{port}"]
        config["scrape_configs"] = [jobs["finmon-ingest"]]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        ingest = start_ingest(pipeline, ingest_env(pipeline, path, port), "ingest.log")
        prometheus = start_prometheus(tmp_path, prom_port)
        try:
            prometheus.wait("/-/ready")
            wait_for(lambda: ready(port), "the ingester did not become ready")

            def firing() -> set[tuple[str, str]]:
                result = query(prometheus, 'ALERTS{alertstate="firing"}')["data"]["result"]
                return {(r["metric"]["alertname"], r["metric"].get("source", "")) for r in result}

            wait_for(
                lambda: {("FinmonIngestSourceSilent", "down"), ("FinmonIngestSourceGone", "gone")} <= firing(),
                "Prometheus did not raise the ingest rules",
                timeout=60,
            )
            assert ("FinmonIngestSourceSilent", "ok") not in firing()
            assert ("FinmonIngestSourceGone", "down") not in firing()
            assert ("FinmonIngestDown", "") not in firing()
        finally:
            prometheus.stop()
            stop(ingest)


def test_a_replica_that_hung_is_fenced_and_sends_nothing_twice(pipeline: Pipeline, tmp_path: Path) -> None:
    """SIGSTOP the replica that polls everything, mid-stream, past its session: the standby takes the
    partition and fences it. SIGCONT: whatever it had in flight is aborted, never read, and it stops
    polling (it gives the partition up, or exits 1 saying it was fenced)."""
    names = ["pub0", "pub1", "pub2"]
    owned = "finmon_ingest_sources_owned"

    def holds(port: int) -> float:
        return sample(scrape(port), owned) if ready(port) else -1.0

    with Publishers(names) as pubs, GrowingFeed(pubs, names, every=0.05) as feed:
        path = write_sources(tmp_path, [{"name": n, "kind": "rss", "url": pubs.url(n, "/feed")} for n in names], 1)
        ports = [free_port(), free_port()]
        replicas = [
            start_ingest(pipeline, ingest_env(pipeline, path, port), f"{i}.log") for i, port in enumerate(ports)
        ]
        try:  # one state partition: one replica polls everything, the other stands by
            wait_for(lambda: sorted(holds(port) for port in ports) == [0, 3], "one replica polls, one stands by")
            hung = 0 if holds(ports[0]) == 3 else 1
            standby = 1 - hung
            os.killpg(replicas[hung].pid, signal.SIGSTOP)
            wait_for(lambda: holds(ports[standby]) == 3, "the standby took over", 60)
            os.killpg(replicas[hung].pid, signal.SIGCONT)
            wait_for(
                lambda: replicas[hung].poll() is not None or holds(ports[hung]) == 0,
                "the hung replica went on polling after it was fenced",
                60,
            )
        finally:
            feed.stopped.set()
            feed.thread.join(5)
            published = feed.published()
            pipeline.consume("news", lambda rs: len(rs) >= published, timeout=60)
            records = everything(pipeline, "news")
            for replica in replicas:
                stop(replica)
    ids = Counter(r["id"] for r in records)
    assert [i for i, n in ids.items() if n > 1] == [], "a story was sent twice"
    assert len(ids) == published
    log = (tmp_path / f"{hung}.log").read_text()
    if replicas[hung].returncode == 1:
        assert "fenced" in log or "cannot" in log, log[-2000:]
    print(f"fenced: {published} published, {len(records)} on news; the hung replica exited {replicas[hung].returncode}")
