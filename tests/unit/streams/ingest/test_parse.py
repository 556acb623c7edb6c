"""What a fetched body holds: times in every form, every encoding, the feed forms, ids and records."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from streams.ingest.parse import (
    ParseError,
    Story,
    decode,
    feed_stories,
    json_stories,
    parse_time,
    plain,
    sitemap_pages,
)
from streams.ingest.service import news_record, story_id
from streams.ingest.sources import FieldMap, Source
from tests.feeds import Item, atom, rdf, rss

SHANGHAI = ZoneInfo("Asia/Shanghai")
FEED = Source(name="wire", kind="rss", url="https://wire.example/feeds/markets.xml")


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("Mon, 07 Dec 2026 10:00:00 GMT", UTC, "2026-12-07T10:00:00"),
        ("Mon, 07 Dec 2026 10:00:00 +0800", UTC, "2026-12-07T02:00:00"),
        ("Mon, 07 Dec 2026 10:00:00 EST", UTC, "2026-12-07T15:00:00"),
        ("Mon, 07 Dec 2026 10:00:00", SHANGHAI, "2026-12-07T02:00:00"),  # no zone: the source's
        ("Mon, 07 Dec 2026 10:00:00 -0000", SHANGHAI, "2026-12-07T10:00:00"),  # RFC 5322: UTC
        ("Mon, 07 Dec 2026 10:00:00 CST", SHANGHAI, "2026-12-07T02:00:00"),  # China Standard Time
        ("Mon, 07 Dec 2026 10:00:00 CST", UTC, "2026-12-07T16:00:00"),  # US Central elsewhere
        ("7 Dec 2026 10:00 +0100", UTC, "2026-12-07T09:00:00"),
        ("2026-12-07T10:00:00Z", SHANGHAI, "2026-12-07T10:00:00"),
        ("2026-12-07T10:00:00.250+05:30", UTC, "2026-12-07T04:30:00.250000"),
        ("2026-12-07 10:00:00", SHANGHAI, "2026-12-07T02:00:00"),
        ("2026年12月07日 10:00", SHANGHAI, "2026-12-07T02:00:00"),
        ("2026/12/07", SHANGHAI, "2026-12-06T16:00:00"),
        (1796637600, UTC, "2026-12-07T10:00:00"),
        (1796637600000, UTC, "2026-12-07T10:00:00"),
        ("1796637600", UTC, "2026-12-07T10:00:00"),
    ],
)
def test_every_time_form_becomes_utc(text: object, zone: ZoneInfo, expected: str) -> None:
    moment = parse_time(text, zone)
    assert moment is not None and moment.tzinfo is not None
    assert moment.astimezone(UTC).replace(tzinfo=None).isoformat() == expected


@pytest.mark.parametrize("text", ["", "yesterday", "Mon, 99 Foo 2026", None, [], "2026-13-45"])
def test_an_unreadable_time_is_none(text: object) -> None:
    assert parse_time(text, UTC) is None


def test_bodies_decode_by_header_declaration_or_detection() -> None:
    title = "央行宣布降准0.5个百分点，释放长期资金约一万亿元。朱镕基基金会表示欢迎。"
    assert decode(title.encode("gbk"))[0] == title  # nothing declared: detected
    assert decode(title.encode("gbk"), "text/xml; charset=utf-8")[0] == title  # a wrong header: detected
    assert decode(title.encode("gbk"), declared=b"gb2312")[0] == title  # GB2312 declared, GBK sent
    big5 = "臺灣股市大漲，外資買超創新高"
    assert decode(big5.encode("big5"), "application/rss+xml; charset=big5")[0] == big5
    feed = rss(
        [Item("臺灣股市大漲，外資買超創新高", "/c/1", None, None), Item("鴻海第三季營收創新高", "/c/2", None, None)],
        encoding=None,
    )
    assert decode(feed.encode("big5"))[0] == feed  # a whole Big5 feed, nothing declared: detected
    assert decode("Café".encode("cp1252"), "text/html; charset=iso-8859-1")[0] == "Café"
    assert decode("Société €".encode(), "text/xml; charset=ISO-8859-1")[0] == "Société €"  # a server's default
    assert decode(b"\xef\xbb\xbfplain")[0] == "plain"


def test_titles_lose_markup_cdata_and_double_escaping() -> None:
    assert plain("<b>Acme</b> beats &amp; raises") == "Acme beats & raises"
    assert plain("AT&amp;amp;T &#8220;cuts&#8221;") == "AT&T \u201ccuts\u201d"
    assert plain("  two\n  lines ") == "two lines"
    assert plain("<p>one</p><script>alert(1)</script><p>two</p>") == "one two"
    assert (
        plain("Alphabet <GOOGL.O> beats; <b>Tencent</b> <0700.HK> up")
        == "Alphabet <GOOGL.O> beats; Tencent <0700.HK> up"
    )


def test_the_three_feed_forms_give_their_stories_with_links_resolved() -> None:
    items = [
        Item("<![CDATA[Acme <b>beats</b> & raises]]>", "/markets/acme", "g-1", "Mon, 07 Dec 2026 10:00:00 GMT"),
        Item("Relative to the feed", "oil.html", None, None, "&lt;p&gt;Summary&lt;/p&gt;"),
        Item("", None, None, None, ""),  # nothing to read
        Item("A link no id can be made of", "http://a.example:port/x", None, None),
    ]
    stories, invalid = feed_stories(rss(items).encode(), "application/rss+xml", FEED.url or "", FEED)
    assert invalid == 2
    assert [(s.title, s.url, s.guid, s.body) for s in stories] == [
        ("Acme beats & raises", "https://wire.example/markets/acme", "g-1", ""),
        ("Relative to the feed", "https://wire.example/feeds/oil.html", None, "Summary"),
    ]
    assert stories[0].published == datetime(2026, 12, 7, 10, tzinfo=UTC) and stories[1].published is None
    entries = [Item("Halt in &lt;b&gt;XYZ&lt;/b&gt;", "halts/xyz", "urn:x:1", "2026-12-01T09:30:00+01:00")]
    stories, _ = feed_stories(atom(entries).encode(), "application/atom+xml", "https://exchange.example/a", FEED)
    assert [(s.title, s.url, s.guid) for s in stories] == [
        ("Halt in XYZ", "https://exchange.example/notices/halts/xyz", "urn:x:1")  # against xml:base
    ]
    assert stories[0].published == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    stories, _ = feed_stories(
        rdf([Item("Fine", "https://r.example/1", None, "2026-12-02T08:00:00Z", "x")]).encode(),
        "",
        "https://r.example/",
        FEED,
    )
    assert [(s.title, s.url, s.published) for s in stories] == [
        ("Fine", "https://r.example/1", datetime(2026, 12, 2, 8, tzinfo=UTC))
    ]


def test_a_broken_body_is_malformed_and_a_page_is_not_a_feed() -> None:
    with pytest.raises(ParseError) as caught:
        feed_stories(b"<?xml version='1.0'?><rss><channel><item><title>broken & <unclosed", "", "https://a/", FEED)
    assert caught.value.reason == "malformed"
    with pytest.raises(ParseError):
        feed_stories(b"<html><body><p>Just a page</p></body></html>", "text/html", "https://a/", FEED)


def test_a_json_api_by_its_field_map() -> None:
    source = Source(
        name="api",
        kind="json",
        url="https://api.example/v2/news",
        items="data.articles",
        fields=FieldMap(id="uuid", title="headline", body="summary", url="links.0", published_at="published"),
    )
    body = (
        b'{"data": {"articles": [{"uuid": "a1", "headline": "Chipmaker warns", "summary": "Shares fell.",'
        b' "links": ["/s/1"], "published": 1796637600000}, {"uuid": "a2"}, "not an object"]}}'
    )
    stories, invalid = json_stories(body, source.url or "", source)
    assert invalid == 2
    assert stories == [
        Story("a1", "https://api.example/s/1", "Chipmaker warns", "Shares fell.", datetime(2026, 12, 7, 10, tzinfo=UTC))
    ]
    with pytest.raises(ParseError, match="no list at data.articles"):
        json_stories(b'{"data": {}}', "https://api.example/", source)


def test_a_sitemap_lists_pages_and_an_index_lists_sitemaps() -> None:
    source = Source(name="portal", kind="sitemap", url="https://portal.example/sitemap.xml")
    urlset = (
        b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        b'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><url><loc>/n/1</loc><news:news>'
        b"<news:publication><news:language>zh</news:language></news:publication>"
        b"<news:publication_date>2026-12-07T10:00:00+08:00</news:publication_date><news:title>T</news:title>"
        b"</news:news></url><url><loc>https://portal.example/n/2</loc><lastmod>2026-12-06</lastmod></url></urlset>"
    )
    listing = sitemap_pages(urlset, source.url or "", source)
    assert [(p.url, p.title, p.lang, p.published) for p in listing.pages] == [
        ("https://portal.example/n/1", "T", "zh", datetime(2026, 12, 7, 2, tzinfo=UTC)),
        ("https://portal.example/n/2", "", None, datetime(2026, 12, 6, tzinfo=UTC)),
    ]
    index = b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>/s1.xml</loc></sitemap></sitemapindex>'
    assert sitemap_pages(index, source.url or "", source).sitemaps == ["https://portal.example/s1.xml"]


def test_an_id_is_stable_and_made_of_guid_then_link_then_text() -> None:
    base = Story(None, "https://Wire.Example:443/a?id=7&utm_source=rss#top", "Title", "", None)
    same_link = Story(None, "https://wire.example/a?id=7", "Another title", "", None)
    assert story_id(FEED, base) == story_id(FEED, same_link)  # tracking, fragment, case and port do not count
    other = Source(name="other", kind="rss", url="https://other.example/rss")
    assert story_id(FEED, base) == story_id(other, base)  # one link, one story, whichever feed carries it
    guided = Story("g-1", "https://wire.example/a?id=7", "Title", "", None)
    assert story_id(FEED, guided) != story_id(other, guided)  # a guid is its feed's own
    bare = Story(None, None, "", "Only a summary", None)
    assert story_id(FEED, bare) == story_id(FEED, Story(None, None, "", "Only a summary", None))
    assert story_id(FEED, bare) != story_id(other, bare)


def test_a_record_says_where_its_time_came_from_and_stays_within_the_text_limit() -> None:
    fetched = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
    story = Story(None, "https://wire.example/a", "央行宣布降准", "长" * 500, None)
    record = news_record(FEED, story, "id-1", fetched, max_chars=100, url=FEED.url or "")
    assert record["published_at"] == "2026-12-07T10:00:00.000Z" and record["published_at_from"] == "fetched"
    assert len(record["title"]) + len(record["body"]) == 100 and record["truncated"] is True
    assert record["lang"] == "zh" and record["id"] == "id-1" and record["source"] == "wire"
    dated = Story("g", None, "Acme beats", "", datetime(2026, 12, 7, 9, tzinfo=UTC))
    record = news_record(FEED, dated, "id-2", fetched, max_chars=100, url=FEED.url or "")
    assert record["published_at"] == "2026-12-07T09:00:00.000Z" and record["published_at_from"] == "item"
    assert "truncated" not in record and "url" not in record and record["lang"] == "en"


def test_a_sources_credentials_go_to_its_own_hosts_only() -> None:
    from streams.ingest.service import _same_host

    sitemap = Source(name="portal", kind="sitemap", url="https://portal.example/sitemap.xml", headers={"A": "b"})
    secret = {"Authorization": "Bearer s"}
    assert _same_host(sitemap, "https://portal.example/n/1", secret) == secret
    assert _same_host(sitemap, "https://elsewhere.example/n/1", secret) is None
    pages = Source(name="ir", kind="pages", urls=("https://ir.example/1", "https://news.example/2"))
    assert _same_host(pages, "https://news.example/2", secret) == secret
    assert _same_host(pages, "https://news.example/2", {}) is None
