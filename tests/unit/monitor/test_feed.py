import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.feed import COMPANIES, COMPANIES_ZH, FeedOptions, SyntheticNews, replay
from streams.core.companies import linker_for, subjects
from streams.core.decode import decode
from streams.core.records import NewsDocument
from streams.core.tickers import tag
from streams.core.windows import story_key


class Clock:
    """A fake clock: the feed's time is injected so surges can be tested without waiting."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_synthetic_documents_are_valid_news_and_reproducible() -> None:
    first = [SyntheticNews(FeedOptions(seed=3), Clock()).next() for _ in range(1)]
    again = [SyntheticNews(FeedOptions(seed=3), Clock()).next() for _ in range(1)]
    assert first == again
    generator = SyntheticNews(FeedOptions(seed=3), Clock())
    docs = [generator.next() for _ in range(200)]
    decoded = [decode(json.dumps(d).encode()) for d in docs]
    assert all(isinstance(d, NewsDocument) for d in decoded)
    assert len({d["id"] for d in docs}) == 200
    assert all("{" not in str(d["title"]) for d in docs)


def test_a_surge_makes_most_items_negative_about_the_key_only_during_the_surge() -> None:
    clock = Clock()
    generator = SyntheticNews(FeedOptions(seed=5, surge_key="TSLA", surge_at=10, surge_seconds=20), clock)
    before = [generator.next() for _ in range(100)]
    clock.now += timedelta(seconds=15)
    during = [generator.next() for _ in range(100)]
    clock.now += timedelta(seconds=30)
    after = [generator.next() for _ in range(100)]

    def tsla_share(docs: list[dict[str, object]]) -> float:
        return Counter(about(d) == ["TSLA"] for d in docs)[True] / len(docs)

    assert tsla_share(during) > 0.6
    assert tsla_share(before) < 0.2 and tsla_share(after) < 0.2


def about(doc: dict[str, object]) -> list[str]:
    """The tickers the pipeline counts for a synthetic document: cashtags and linked subjects."""
    title = str(doc["title"])
    return list(dict.fromkeys([*tag(title), *subjects(linker_for().link(title))]))


def test_a_headline_is_tagged_only_with_the_company_it_is_about() -> None:
    generator = SyntheticNews(FeedOptions(seed=11), Clock())
    docs = [generator.next() for _ in range(400)]
    assert all("tickers" not in d for d in docs)  # the names in the headlines are what links them
    for doc in docs:
        named = [t for name, t in COMPANIES if name in str(doc["title"]) or f"${t}" in str(doc["title"])]
        assert about(doc) == named, doc["title"]
    assert sum(bool(about(d)) for d in docs) > 200
    assert any("IPO" in str(d["title"]) and not about(d) for d in docs)


def test_replay_keeps_ids_and_fills_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    path.write_text("id,text\na1,Acme beats\n,Globex misses\n")
    sent = list(replay(path))
    docs = [json.loads(value) for _, value in sent]
    assert [d["id"] for d in docs] == ["a1", "news-3"]  # numbered by the line it came from
    assert [key for key, _ in sent] == [b"a1", b"news-3"]
    assert docs[1]["title"] == "Globex misses"
    assert all(isinstance(decode(value), NewsDocument) for _, value in sent)


def test_replay_reads_a_tickers_column_as_rescoring_does(tmp_path: Path) -> None:
    path = tmp_path / "extra.csv"
    path.write_text('id,title,tickers\na1,Tesla and Nike fall,"TSLA, NKE"\na2,Quiet day,\n')
    decoded = [decode(value) for _, value in replay(path)]
    assert all(isinstance(d, NewsDocument) for d in decoded)
    assert [d.tickers for d in decoded if isinstance(d, NewsDocument)] == [("TSLA", "NKE"), ()]


def test_replay_sends_a_bad_row_as_it_is_so_the_worker_dead_letters_it(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text('{"id": "a1", "title": "Fine"}\n{not json\n[1, 2]\n')
    sent = list(replay(path))
    assert [value for _, value in sent[1:]] == [b"{not json", b"[1, 2]"]
    assert [type(decode(value)).__name__ for _, value in sent] == ["NewsDocument", "DeadLetter", "DeadLetter"]


def test_stories_rarely_repeat_within_the_longest_window() -> None:
    """The detector counts a repeated title once: a feed whose templates ran out of variants would
    read as reposts, and the unique negative share of a topic would drift (the demo's Legal topic did)."""
    generator = SyntheticNews(FeedOptions(seed=7), Clock())
    docs = [generator.next() for _ in range(18_000)]  # 15 minutes at the demo's 20 a second
    keys = Counter(story_key(str(d["title"])) for d in docs)
    assert sum(n - 1 for n in keys.values()) / len(docs) < 0.05


def test_a_chinese_stream_names_a_shares_and_hong_kong_listings_the_pipeline_links() -> None:
    generator = SyntheticNews(FeedOptions(seed=11, lang="zh"), Clock())
    docs = [generator.next() for _ in range(400)]
    assert {d["lang"] for d in docs} == {"zh"}
    assert all(isinstance(decode(json.dumps(d, ensure_ascii=False).encode()), NewsDocument) for d in docs)
    for doc in docs:
        named = [t for name, t in COMPANIES_ZH if name in str(doc["title"])]
        assert about(doc) == named, doc["title"]
    assert sum(bool(about(d)) for d in docs) > 200
    keys = Counter(story_key(str(d["title"])) for d in docs)
    assert sum(n - 1 for n in keys.values()) / len(docs) < 0.05  # Chinese titles keep their words in the key


def test_a_mixed_stream_is_about_a_third_chinese() -> None:
    generator = SyntheticNews(FeedOptions(seed=2, lang="mixed"), Clock())
    langs = Counter(generator.next()["lang"] for _ in range(2000))
    assert 0.25 < langs["zh"] / 2000 < 0.35 and langs["en"] + langs["zh"] == 2000


def test_a_surge_on_a_chinese_ticker_is_written_in_chinese() -> None:
    clock = Clock()
    generator = SyntheticNews(FeedOptions(seed=5, lang="mixed", surge_key="600519.SH", surge_at=0), clock)
    docs = [generator.next() for _ in range(200)]
    surged = [d for d in docs if about(d) == ["600519.SH"]]
    assert len(surged) > 120 and all(d["lang"] == "zh" for d in surged)
