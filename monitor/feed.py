"""``finmon feed``: a realistic synthetic stream of financial headlines, or a replayed file.

The synthetic generator is plain code (seeded, clock injected); the loop sends at a fixed rate.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from streams.core.scoring import Message
from streams.settings import KafkaSettings

COMPANIES = [
    ("Apple", "AAPL"),
    ("Microsoft", "MSFT"),
    ("Tesla", "TSLA"),
    ("Nvidia", "NVDA"),
    ("Amazon", "AMZN"),
    ("JPMorgan", "JPM"),
    ("Exxon Mobil", "XOM"),
    ("Pfizer", "PFE"),
    ("Boeing", "BA"),
    ("Netflix", "NFLX"),
    ("Nike", "NKE"),
    ("Chevron", "CVX"),
    ("Intel", "INTC"),
    ("Walmart", "WMT"),
    ("Ford", "F"),
]
SOURCES = ["Newswire", "MarketDesk", "FinWire", "Street Journal", "Global Markets Daily"]

# {c} a company, named as wires name it: finmon's linker turns the name into its ticker, so the feed
# sends no tickers; {bank} a bank quoted as the analyst (linked, but not counted as the subject);
# {t} a cashtag. A template without {c} or {t} is about no company; such stories carry a region {r}
# and a second number {m}, so that they repeat as rarely as company stories do (the detector counts a
# repeated title once, so a template with few variants would read as reposts).
TEMPLATES: dict[str, dict[str, list[str]]] = {
    "negative": {
        "Earnings": [
            "{c} cuts full-year outlook by {n}% after weak quarter",
            "{c} issues profit warning, shares slump {n}%",
            "{c} misses earnings estimates as margins shrink {n} basis points",
        ],
        "Analyst Update": [
            "{bank} downgrades {c} to sell, sees {n}% downside on slowing demand",
            "{c} cut to underperform at {bank}, price target lowered {n}%",
        ],
        "Stock Movement": ["{c} shares tumble {n}% after guidance cut", "${t} sinks {n}% in heavy selling"],
        "Legal / Regulation": [
            "Regulators open probe into {c} accounting, {n} units named",
            "{c} fined ${n}m over data breach affecting {m}m users",
        ],
        "Energy / Oil": [
            "Oil slides {n}.{m}% in {r} trading as demand fears mount",
            "Crude drops {n}% on surprise {m}m-barrel build",
        ],
        "Macro": [
            "{r} inflation unexpectedly accelerates to {n}.{m}%, stocks fall",
            "{r} factory output contracts {n}.{m}% for third month",
        ],
    },
    "neutral": {
        "Company / Product News": [
            "{c} to present at investor conference on day {n} of {m}",
            "{c} unveils {n} new products for {m} markets",
        ],
        "Personnel Change": ["{c} names new chief financial officer after {n} years, effective in {m} days"],
        "Fed / Central Banks": [
            "Fed officials meet in {n} days to discuss rates, {m} economists polled",
            "ECB keeps rates unchanged for {n}th meeting, {m} analysts expected it",
        ],
        "Markets": [
            "{r} stocks open mixed ahead of jobs data, {n} of {m} sectors up",
            "Treasury yields steady before ${n}bn auction of {m}-year notes",
        ],
        "Dividend": ["{c} declares regular quarterly dividend of {n} cents, payable in {m} days"],
        "Legal / Regulation": ["{r} regulators publish {n} pages of new disclosure rules for {m} sectors"],
        "Energy / Oil": ["Oil steady near ${n}.{m} a barrel ahead of OPEC meeting"],
        "Macro": ["{r} economists expect {n} basis points of growth, {m} polled"],
    },
    "positive": {
        "Earnings": [
            "{c} beats estimates by {n} cents and raises full-year guidance",
            "{c} posts record quarterly profit, up {n}%",
        ],
        "Dividend": ["{c} raises dividend {n}% and expands buyback by ${m}bn"],
        "Analyst Update": ["{bank} upgrades {c} to buy, sees {n}% upside"],
        "Stock Movement": ["{c} shares jump {n}% on strong demand", "${t} rallies {n}% to record high"],
        "M&A / Investments": ["{c} agrees to acquire rival in ${n}bn deal at {m}% premium"],
        "IPO": ["{r} chipmaker IPO soars {n}% in trading debut, raising ${m}m"],
        "Energy / Oil": ["Oil rallies {n}.{m}% as OPEC+ extends output cuts"],
        "Macro": ["{r} factory output grows {n}.{m}% in strongest month this year"],
        "Legal / Regulation": ["{c} wins appeal, ${n}m fine overturned after {m} months"],
    },
}
REGIONS = ["US", "Euro zone", "UK", "Japan", "China", "German", "French", "Canadian", "Australian", "Indian"]
BANKS = ["Goldman Sachs", "Morgan Stanley", "Barclays", "UBS", "Citi", "Jefferies"]
MIX = {"negative": 0.25, "neutral": 0.45, "positive": 0.30}

# Chinese stories about Shanghai, Shenzhen and Hong Kong listings, named by their short names (and
# sometimes their bare code, as Chinese wires write it: 贵州茅台(600519)); linked to their tickers.
COMPANIES_ZH = [
    ("贵州茅台", "600519.SH"),
    ("腾讯控股", "0700.HK"),
    ("阿里巴巴", "9988.HK"),
    ("宁德时代", "300750.SZ"),
    ("比亚迪", "002594.SZ"),
    ("中国平安", "601318.SH"),
    ("招商银行", "600036.SH"),
    ("小米集团", "1810.HK"),
    ("美团", "3690.HK"),
    ("五粮液", "000858.SZ"),
    ("中芯国际", "688981.SH"),
    ("京东集团", "9618.HK"),
]
SOURCES_ZH = ["财经快讯", "证券时报网", "市场观察", "港股通讯", "金融日报"]
TEMPLATES_ZH: dict[str, dict[str, list[str]]] = {
    "negative": {
        "Earnings": [
            "{c}下调全年业绩预期{n}%，季度利润不及预期",
            "{c}发布业绩预警，股价下跌{n}%",
            "{c}({code})一季度净利润同比下滑{n}%，毛利率下降{m}个基点",
        ],
        "Analyst Update": ["{bank}将{c}评级下调至卖出，目标价下调{n}%"],
        "Stock Movement": ["{c}股价暴跌{n}%，创年内新低", "{c}盘中跌超{n}%，成交额放大至{m}亿元"],
        "Legal / Regulation": [
            "监管部门对{c}立案调查，涉及{n}项违规",
            "{c}因数据泄露被罚{n}亿元，影响{m}万用户",
        ],
        "Energy / Oil": ["国际油价下跌{n}.{m}%，{r}需求担忧加剧"],
        "Macro": ["{r}通胀意外升至{n}.{m}%，股市下跌", "{r}工业产出下降{n}.{m}%，连续第三个月收缩"],
    },
    "neutral": {
        "Company / Product News": ["{c}将于{n}日出席投资者大会，{m}家机构参加", "{c}发布{n}款新产品，覆盖{m}个市场"],
        "Personnel Change": ["{c}任命新任首席财务官，{m}天后生效"],
        "Fed / Central Banks": ["央行将于{n}日后召开会议讨论利率，{m}位经济学家参与调查"],
        "Markets": ["{r}股市开盘涨跌不一，{m}个板块中{n}个上涨"],
        "Dividend": ["{c}宣布每股派息{n}分，{m}天后派发"],
        "Macro": ["{r}经济学家预计经济增长{n}个基点，共{m}人参与调查"],
    },
    "positive": {
        "Earnings": ["{c}业绩超预期{n}%，上调全年指引", "{c}季度利润创历史新高，同比增长{n}%"],
        "Dividend": ["{c}提高股息{n}%，并扩大回购{m}亿元"],
        "Analyst Update": ["{bank}将{c}评级上调至买入，看涨{n}%"],
        "Stock Movement": ["{c}股价大涨{n}%，需求强劲", "{c}({code})连续{n}日上涨，创历史新高"],
        "M&A / Investments": ["{c}以{n}亿元收购同行，溢价{m}%"],
        "IPO": ["{r}芯片企业IPO首日大涨{n}%，募资{m}亿元"],
        "Macro": ["{r}工业产出增长{n}.{m}%，创年内最强"],
        "Legal / Regulation": ["{c}二审胜诉，{n}亿元罚款被撤销"],
    },
}
REGIONS_ZH = ["美国", "欧元区", "英国", "日本", "中国", "德国", "法国", "香港", "韩国", "印度"]
BANKS_ZH = ["高盛", "摩根士丹利", "瑞银", "中金公司", "花旗"]
LANGUAGES = ("en", "zh", "mixed")
MIXED_ZH_SHARE = 0.3


@dataclass(frozen=True)
class Language:
    """One language's wording of the synthetic stream."""

    code: str
    companies: list[tuple[str, str]]
    templates: dict[str, dict[str, list[str]]]
    sources: list[str]
    regions: list[str]
    banks: list[str]


ENGLISH = Language("en", COMPANIES, TEMPLATES, SOURCES, REGIONS, BANKS)
CHINESE = Language("zh", COMPANIES_ZH, TEMPLATES_ZH, SOURCES_ZH, REGIONS_ZH, BANKS_ZH)


FEED_LINGER_MS = 100


@dataclass(frozen=True)
class FeedOptions:
    rate: float = 20.0
    count: int | None = None
    replay: Path | None = None
    seed: int = 7
    surge_key: str | None = None
    surge_at: float = 30.0
    surge_seconds: float = 60.0
    surge_share: float = 0.7
    lang: str = "en"  # en, zh, or mixed (MIXED_ZH_SHARE of the stories in Chinese)


class SyntheticNews:
    """Seeded generator of news documents; during a surge most items are negative about one key."""

    def __init__(self, options: FeedOptions, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.clock = clock
        self.started: float | None = None

    def in_surge(self, now: datetime) -> bool:
        if not self.options.surge_key:
            return False
        if self.started is None:
            self.started = now.timestamp()
        elapsed = now.timestamp() - self.started
        return self.options.surge_at <= elapsed < self.options.surge_at + self.options.surge_seconds

    def language(self, rng: random.Random) -> Language:
        if self.options.lang == "mixed":
            return CHINESE if rng.random() < MIXED_ZH_SHARE else ENGLISH
        return CHINESE if self.options.lang == "zh" else ENGLISH

    def next(self) -> dict[str, Any]:
        now = self.clock()
        rng = self.rng
        language = self.language(rng)
        company, ticker = rng.choice(language.companies)
        if self.in_surge(now) and rng.random() < self.options.surge_share:
            language, sentiment, topic, company, ticker = self._surge(rng, language, company, ticker)
        else:
            sentiment = rng.choices(list(MIX), weights=list(MIX.values()))[0]
            topic = rng.choice(list(language.templates[sentiment]))
        title = rng.choice(language.templates[sentiment][topic]).format(
            c=company,
            t=ticker,
            n=rng.randint(2, 99),
            bank=rng.choice(language.banks),
            r=rng.choice(language.regions),
            m=rng.randint(2, 99),
            code=ticker.split(".")[0],
        )
        return {
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "published_at": now.isoformat(),
            "source": rng.choice(language.sources),
            "title": title,
            "body": "",
            "lang": language.code,
        }

    def _surge(
        self, rng: random.Random, language: Language, company: str, ticker: str
    ) -> tuple[Language, str, str, str, str]:
        """A surge on a ticker writes about it in its own language; on a topic, in the stream's."""
        key = (self.options.surge_key or "").upper()
        for wording in (ENGLISH, CHINESE):
            by_ticker = {t: c for c, t in wording.companies}
            if key in by_ticker:
                topic = rng.choice(["Earnings", "Stock Movement", "Analyst Update", "Legal / Regulation"])
                return wording, "negative", topic, by_ticker[key], key
        topic = self.options.surge_key or ""
        topic = topic if topic in language.templates["negative"] else rng.choice(list(language.templates["negative"]))
        return language, "negative", topic, company, ticker


def replay(path: Path) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of each row of a CSV/JSONL file, read as rescoring reads it, completed as ``finmon
    score`` completes rows (an id and a current published_at when missing). A row that is not a JSON
    object is sent as it is: the worker dead-letters it with the reason, so nothing is dropped."""
    from monitor.scoring import completed
    from streams.batch.sources import read_file

    for item in read_file(path):
        done = completed(item, path.stem, datetime.now(UTC))
        if isinstance(done, Message) and done is not item:
            yield str(json.loads(done.value or b"")["id"]).encode(), done.value or b""
            continue
        raw = item.value if isinstance(item, Message) else item.original
        yield f"{path.stem}-{item.offset}".encode(), raw or b""


def run_feed(kafka: KafkaSettings, topic: str, options: FeedOptions, stop: threading.Event | None = None) -> int:
    """Send documents at ``options.rate`` per second until the count, the file or ``stop`` ends it."""
    from streams.cluster.topics import client_options

    # a feed needs no millisecond latency: lingering sends a few documents per batch, so requests stay few
    producer = KafkaProducer(**client_options(kafka), linger_ms=FEED_LINGER_MS, acks="all")
    sent = 0
    source = replay(options.replay) if options.replay else _endless(SyntheticNews(options))
    began = time.monotonic()
    try:
        for key, value in source:
            if (options.count is not None and sent >= options.count) or (stop is not None and stop.is_set()):
                break
            producer.send(topic, value, key=key)
            sent += 1
            delay = began + sent / options.rate - time.monotonic()
            if delay > 0:
                (stop or threading.Event()).wait(delay)  # wakes at once when the feed is stopped
        producer.flush()
    finally:
        producer.close()
    return sent


def _endless(generator: SyntheticNews) -> Iterator[tuple[bytes, bytes]]:
    while True:
        document = generator.next()
        yield str(document["id"]).encode(), json.dumps(document, ensure_ascii=False).encode()
