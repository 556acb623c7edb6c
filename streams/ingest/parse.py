"""What a fetched body holds, as stories: feeds (RSS 2.0, Atom 1.0, RSS 1.0/RDF through feedparser),
JSON news APIs (by a field map), sitemaps, and article pages (trafilatura).

Feeds come in every encoding desks meet: the HTTP charset, the XML declaration, a byte-order mark, or
none at all (GB2312/GBK and Big5 feeds often declare nothing, or the wrong thing). The body is decoded
here, by the first of those that decodes it cleanly, then by detection, and handed to feedparser as
UTF-8 with its declaration rewritten.
"""

from __future__ import annotations

import codecs
import email.utils
import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from streams.ingest.sources import Source

SUPERSETS = {  # what publishers declare -> the codec that reads what they actually send
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "gb_2312-80": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "cp950": "big5hkscs",
    "iso-8859-1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
}
SINGLE_BYTE = {"cp1252", "latin_1", "iso8859-15", "iso8859-2"}
_DECLARATION = re.compile(rb"^(\s*<\?xml[^>]*?encoding\s*=\s*[\"'])([A-Za-z0-9._-]+)([\"'])", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|ref|cmpid)$", re.IGNORECASE)


class ParseError(Exception):
    """A body that holds no stories finmon can read; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Story:
    """One item as found: its own id (guid) when it has one, its link, its text, its time."""

    guid: str | None
    url: str | None
    title: str
    body: str
    published: datetime | None  # UTC; None when the item gives no readable time
    lang: str | None = None


@dataclass(frozen=True)
class Listing:
    """A sitemap's pages (with what the sitemap says of each) and its child sitemaps."""

    pages: list[Story]
    sitemaps: list[str]


def charset_of(content_type: str) -> str | None:
    match = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else None


def codec(name: str | None) -> str | None:
    """The Python codec for a declared charset (supersets for the usual Chinese ones), or None."""
    if not name:
        return None
    name = name.strip().lower()
    name = SUPERSETS.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode(body: bytes, content_type: str = "", declared: bytes | None = None) -> tuple[str, str]:
    """The text of ``body`` and the codec that read it: a BOM, the document's own declaration, the HTTP
    charset, UTF-8, a declared single-byte charset (it reads any bytes, so it comes after UTF-8: servers
    default to ISO-8859-1 over UTF-8 feeds), then detection (charset_normalizer); never fails."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            return body.decode(name, errors="replace"), name
    named = [codec(declared.decode("ascii") if declared else None), codec(charset_of(content_type))]
    candidates = [c for c in named if c and c not in SINGLE_BYTE] + ["utf-8"] + [c for c in named if c in SINGLE_BYTE]
    for candidate in candidates:
        try:
            return body.decode(candidate), candidate
        except UnicodeDecodeError:
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(body).best()
    detected = codec(best.encoding if best else None) or "utf-8"
    return body.decode(detected, errors="replace"), detected


def xml_text(body: bytes, content_type: str) -> bytes:
    """An XML body as UTF-8 whose declaration says so."""
    declared = _DECLARATION.match(body)
    text, _ = decode(body, content_type, declared.group(2) if declared else None)
    data = text.encode("utf-8")
    return _DECLARATION.sub(rb"\1utf-8\3", data, count=1)


BLOCK = {"p", "br", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th", "blockquote", "hr", "ul", "ol"}
HTML_TAGS = {
    *[
        "a",
        "abbr",
        "b",
        "bdi",
        "bdo",
        "big",
        "body",
        "center",
        "cite",
        "code",
        "del",
        "dfn",
        "em",
        "font",
        "head",
        "html",
        "i",
        "img",
        "ins",
        "kbd",
        "mark",
        "nobr",
        "q",
        "s",
        "samp",
    ],
    *[
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "time",
        "tt",
        "u",
        "var",
        "wbr",
        "figure",
        "figcaption",
        "caption",
    ],
    *[
        "section",
        "article",
        "header",
        "footer",
        "nav",
        "aside",
        "main",
        "picture",
        "source",
        "video",
        "audio",
        "iframe",
        "meta",
        "link",
        "title",
    ],
    "script",
    "style",
}


class _Text(HTMLParser):
    """The text of an HTML fragment: tags dropped, entities resolved, scripts and styles skipped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in BLOCK:
            self.parts.append(" ")
        elif tag not in HTML_TAGS:  # not markup: a Reuters-style <GOOGL.O>, a <note>; text, kept
            self.handle_data(self.get_starttag_text() or "")

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.skip:
            self.skip -= 1
        elif tag not in HTML_TAGS and tag not in BLOCK:
            self.handle_data(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def plain(text: str | None) -> str:
    """Markup and entities out, whitespace folded: titles arrive with both (CDATA, &amp;amp;, <b>)."""
    if not text:
        return ""
    if "<" in text or "&" in text:
        parser = _Text()
        parser.feed(text)
        parser.close()
        text = "".join(parser.parts)
        if re.search(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", text, re.IGNORECASE):  # escaped twice by the publisher
            text = html.unescape(text)
    return _SPACE.sub(" ", text).strip()


def parse_time(value: Any, zone: ZoneInfo) -> datetime | None:
    """A time in any form feeds and APIs use (RFC 822 with or without a zone, ISO 8601, epoch seconds
    or milliseconds), in UTC; a time without a zone is read in ``zone``. None when unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 10**11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit() and len(text) >= 9:  # epoch seconds or milliseconds, as a string
        return parse_time(int(text), zone)
    moment: datetime | None = None
    try:
        moment = datetime.fromisoformat(text.replace(" UTC", "Z").replace("z", "Z"))
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)  # a zone-less RFC 822 time comes back naive
        except (TypeError, ValueError, IndexError):
            moment = _loose(text)
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC if re.search(r"-0000\s*$", text) else zone)  # RFC 5322: -0000 is UTC
    elif text.upper().endswith(" CST") and str(zone).startswith("Asia/"):  # China Standard Time, not US Central
        moment = moment.replace(tzinfo=zone)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _loose(text: str) -> datetime | None:
    """The forms that are neither RFC 822 nor ISO 8601 but common on Chinese portals."""
    match = re.match(r"^(\d{4})[年/.-](\d{1,2})[月/.-](\d{1,2})日?(?:\s*(\d{1,2}):(\d{2})(?::(\d{2}))?)?$", text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


def canonical(url: str) -> str:
    """A link as an id: scheme and host lower-cased, default port, fragment and tracking parameters out."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port is None or (parts.scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING.match(k)])
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", query, ""))


def feed_stories(body: bytes, content_type: str, url: str, source: Source) -> tuple[list[Story], int]:
    """The items of an RSS 2.0, Atom 1.0 or RSS 1.0 feed, and how many items had no title nor text."""
    import feedparser

    data = xml_text(body, content_type)
    parsed = feedparser.parse(
        data, response_headers={"content-type": "application/xml; charset=utf-8", "content-location": url}
    )
    if not parsed.entries:
        if parsed.get("bozo"):
            raise ParseError("malformed", f"not a readable feed: {parsed.get('bozo_exception')}")
        if not parsed.get("version"):
            raise ParseError("not_a_feed", "the body is not RSS, Atom or RDF")
    feed_lang = parsed.feed.get("language") if parsed.get("feed") else None
    stories, invalid = [], 0
    for entry in parsed.entries:
        try:
            story = _feed_story(entry, url, source, feed_lang)
        except (ValueError, TypeError, AttributeError):  # a link urljoin cannot read, a date out of range
            story = None
        if story is None:
            invalid += 1
        else:
            stories.append(story)
    if parsed.get("bozo") and not stories:
        raise ParseError("malformed", f"no readable item in a broken feed: {parsed.get('bozo_exception')}")
    return stories, invalid


def _feed_story(entry: Any, url: str, source: Source, feed_lang: str | None) -> Story | None:
    """One feed item as a story, or None when it has nothing to read."""
    title = plain(entry.get("title"))
    content = entry.get("content") or []
    body_html = content[0].get("value") if content else entry.get("summary") or entry.get("description")
    text = plain(body_html)
    if text == title:
        text = ""
    link = entry.get("link") or next((li.get("href") for li in entry.get("links", []) if li.get("href")), None)
    if not title and not text:
        return None
    when = entry.get("published") or entry.get("updated") or entry.get("created") or entry.get("dc_date")
    published = parse_time(when, source.zone) if when else None
    if published is None and when:
        parsed_time = entry.get("published_parsed") or entry.get("updated_parsed")
        published = datetime(*parsed_time[:6]).replace(tzinfo=UTC) if parsed_time else None
    link = urljoin(url, link.strip()) if link else None
    if link:
        canonical(link)  # a link no id can be made of (a port that is not a number) makes the item invalid
    return Story(
        guid=(entry.get("id") or "").strip() or None,
        url=link,
        title=title,
        body=text,
        published=published,
        lang=entry.get("language") or feed_lang,
    )


def dig(item: Any, path: str | None) -> Any:
    """The value at a dotted path (``data.items``, ``authors.0.name``), or None."""
    if not path:
        return item
    for part in path.split("."):
        if isinstance(item, dict):
            item = item.get(part)
        elif isinstance(item, list) and part.isdigit() and int(part) < len(item):
            item = item[int(part)]
        else:
            return None
    return item


def json_stories(body: bytes, url: str, source: Source, content_type: str = "") -> tuple[list[Story], int]:
    """The items of a JSON news API, by the source's field map."""
    assert source.fields is not None
    try:
        document = json.loads(decode(body, content_type)[0])
    except ValueError as exc:
        raise ParseError("malformed", f"not JSON: {exc}") from None
    items = dig(document, source.items)
    if not isinstance(items, list):
        raise ParseError("malformed", f"no list at {source.items or 'the top level'}")
    fields = source.fields
    stories, invalid = [], 0
    for item in items:
        try:
            story = _json_story(item, url, source, fields)
        except (ValueError, TypeError):
            story = None
        if story is None:
            invalid += 1
        else:
            stories.append(story)
    return stories, invalid


def _json_story(item: Any, url: str, source: Source, fields: Any) -> Story | None:
    title = plain(_text(dig(item, fields.title))) if fields.title else ""
    text = plain(_text(dig(item, fields.body))) if fields.body else ""
    if not isinstance(item, dict) or (not title and not text):
        return None
    link = _text(dig(item, fields.url)) if fields.url else ""
    link = urljoin(url, link) if link else ""
    if link:
        canonical(link)
    guid = _text(dig(item, fields.id)) if fields.id else ""
    return Story(
        guid=guid or None,
        url=link or None,
        title=title,
        body=text,
        published=parse_time(dig(item, fields.published_at), source.zone) if fields.published_at else None,
        lang=_text(dig(item, fields.lang)) or None if fields.lang else None,
    )


def _text(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> Iterator[ET.Element]:
    return (child for child in element if _local(child.tag) == name)


def _child_text(element: ET.Element, *path: str) -> str:
    for name in path:
        found = next(_children(element, name), None)
        if found is None:
            return ""
        element = found
    return (element.text or "").strip()


def sitemap_pages(body: bytes, url: str, source: Source, content_type: str = "") -> Listing:
    """A sitemap's pages (with a Google News sitemap's title, time and language) or a sitemap index's children."""
    try:
        root = ET.fromstring(xml_text(body, content_type))
    except ET.ParseError as exc:
        raise ParseError("malformed", f"not a readable sitemap: {exc}") from None
    if _local(root.tag) == "sitemapindex":
        return Listing([], [urljoin(url, loc) for s in _children(root, "sitemap") if (loc := _child_text(s, "loc"))])
    if _local(root.tag) != "urlset":
        raise ParseError("not_a_feed", f"a sitemap is a urlset or a sitemapindex, not {_local(root.tag)}")
    pages = []
    for entry in _children(root, "url"):
        loc = _child_text(entry, "loc")
        try:
            loc = urljoin(url, loc) if loc else ""
            canonical(loc)
        except ValueError:  # a location no id can be made of
            continue
        if not loc:
            continue
        when = _child_text(entry, "news", "publication_date") or _child_text(entry, "lastmod")
        pages.append(
            Story(
                guid=None,
                url=loc,
                title=plain(_child_text(entry, "news", "title")),
                body="",
                published=parse_time(when, source.zone),
                lang=_child_text(entry, "news", "publication", "language") or None,
            )
        )
    return Listing(pages, [])


@dataclass(frozen=True)
class Article:
    title: str
    text: str
    published: datetime | None


def article(body: bytes, content_type: str, url: str, zone: ZoneInfo) -> Article | None:
    """An article page's title, main text and time (trafilatura), or None when it holds no article."""
    import trafilatura

    meta = _META_CHARSET.search(body[:4096])
    text, _ = decode(body, content_type, meta.group(1) if meta else None)
    document = trafilatura.bare_extraction(
        text,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        date_extraction_params={"extensive_search": True, "original_date": True, "outputformat": "%Y-%m-%dT%H:%M:%S%z"},
    )
    if document is None or isinstance(document, dict) or not (document.text or "").strip():
        return None
    return Article(
        title=plain(document.title),
        text=_SPACE.sub(" ", document.text or "").strip(),
        published=_page_time(document.date, zone),
    )


def _page_time(value: str | None, zone: ZoneInfo) -> datetime | None:
    """A page's time as htmldate gives it (with its offset when the page has one); midnight without
    an offset is a date alone, not a publication time: None, and the fetch time stands in."""
    if not value or value.endswith("T00:00:00"):
        return None
    return parse_time(value, zone)
