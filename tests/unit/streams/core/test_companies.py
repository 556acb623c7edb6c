"""Company linking over the real index universe and finmon's aliases (no fakes: the automaton and
the pytickersymbols data are what the worker uses)."""

from pathlib import Path

import pytest

from streams.core.companies import Company, Linker, WatchlistError, linker_for, merge, read_watchlist, subjects


@pytest.fixture(scope="module")
def linker() -> Linker:
    return linker_for()


def found(linker: Linker, title: str, body: str = "") -> list[tuple[str, str]]:
    return [(e.ticker, e.role) for e in linker.link(title, body)]


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Costco upgraded to Buy at Deutsche Bank", [("COST", "subject"), ("DBK.DE", "analyst")]),
        ("General Motors is cut at Deutsche Bank ahead of earnings report", [("GM", "subject"), ("DBK.DE", "analyst")]),
        ("Citi gives big boost to Deere PT", [("C", "analyst"), ("DE", "subject")]),
        ("AMD's Navi shows strong adoption - BofA", [("AMD", "subject"), ("BAC", "analyst")]),
        ("Deutsche Bank shares fall after downgrade at Citi", [("DBK.DE", "subject"), ("C", "analyst")]),
        ("Moody's warns on Harley-Davidson", [("MCO", "analyst"), ("HOG", "subject")]),
        ("Tesla recalls 120,000 vehicles over faulty seat belts", [("TSLA", "subject")]),
        ("Cemex cut at Credit Suisse, J.P. Morgan on weak outlook", [("JPM", "analyst")]),
        ("Wells slashes PT on Hexcel", [("WFC", "analyst")]),
        ("Goldman Sachs cuts 3,000 jobs", [("GS", "subject")]),
        ("JPMorgan cut to underperform at Citi", [("JPM", "subject"), ("C", "analyst")]),
    ],
)
def test_subjects_and_the_houses_quoted(linker: Linker, title: str, expected: list[tuple[str, str]]) -> None:
    assert found(linker, title) == expected


@pytest.mark.parametrize(
    "title",
    [
        "Harrison Ford stars in a new thriller",  # a surname
        "Stocks hit their target as the Fed pauses",  # a common word, lower case
        "Mind the gap between two-year and ten-year yields",
        "Visa applications rise at the border",  # a common word without a company cue
        "apple pie prices climb",
    ],
)
def test_common_words_and_names_are_not_companies(linker: Linker, title: str) -> None:
    assert found(linker, title) == []


def test_a_common_word_name_counts_with_a_company_cue_or_its_cashtag(linker: Linker) -> None:
    assert found(linker, "Target shares slump after weak guidance") == [("TGT", "subject")]
    assert found(linker, "Why Apple Stock Is Rising Today") == [("AAPL", "subject")]
    assert [(e.ticker, e.role) for e in linker.link("Visa steady ahead of the Fed", given=["V"])] == [("V", "subject")]


def test_the_longest_name_wins(linker: Linker) -> None:
    assert found(linker, "Apple Hospitality REIT raises its dividend") == [("APLE", "subject")]


def test_an_acronym_must_match_its_case(linker: Linker) -> None:
    assert found(linker, "GM loses a bull") == [("GM", "subject")]
    assert found(linker, "gm everyone, markets open soon") == []


def test_body_entities_are_mentions_unless_the_title_names_nobody(linker: Linker) -> None:
    entities = linker.link("Tesla recalls cars", "Rivals Ford and Toyota face the same supplier issue.")
    assert subjects(entities) == ["TSLA"]
    assert {e.ticker: e.role for e in entities}["7203.T"] == "mention"
    lead = linker.link("Automakers recall cars", "Toyota recalls 2,000 vehicles. Nissan said it was not affected.")
    assert [(e.ticker, e.role, e.part) for e in lead] == [("7203.T", "subject", "body"), ("7201.T", "mention", "body")]


def test_an_entity_records_where_it_was_found(linker: Linker) -> None:
    [entity] = linker.link("Shares of Nvidia climb")
    assert entity.as_dict() == {
        "ticker": "NVDA",
        "name": "Nvidia",
        "role": "subject",
        "part": "title",
        "span": [10, 16],
        "text": "Nvidia",
    }


def test_a_watchlist_adds_companies_and_takes_their_aliases(tmp_path: Path) -> None:
    path = tmp_path / "desk.csv"
    path.write_text("ticker,name,aliases\nACME,Acme Widgets Inc.,Acme|Widgets Co\n$tsla,Tesla,Musk's carmaker\n")
    companies = read_watchlist(path)
    assert companies[0] == Company(
        "ACME", "Acme Widgets Inc.", ("Acme Widgets Inc.", "Acme Widgets", "Acme", "Widgets Co"), source="watchlist"
    )
    linker = linker_for(path)
    assert found(linker, "Acme shares soar") == [("ACME", "subject")]
    assert found(linker, "Musk's carmaker cuts prices") == [("TSLA", "subject")]


def test_a_later_layer_takes_an_alias_from_an_earlier_ticker() -> None:
    merged = merge([Company("OLD", "Old Co", ("Acme",))], [Company("NEW", "Acme", ("Acme",))])
    assert {c.ticker: c.aliases for c in merged} == {"OLD": (), "NEW": ("Acme",)}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("symbol,company\nX,Y\n", "needs 'ticker' and 'name' columns"),
        ("ticker,name\nACME,\n", "desk.csv:2: a watchlist row needs a ticker and a name"),
    ],
)
def test_a_bad_watchlist_is_named_in_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "desk.csv"
    path.write_text(content)
    with pytest.raises(WatchlistError, match=message):
        read_watchlist(path)
    with pytest.raises(WatchlistError, match="cannot read"):
        read_watchlist(tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("贵州茅台一季度净利润同比增长15%", [("600519.SH", "subject")]),
        ("今日腾讯股价大跌，阿里巴巴跟跌", [("0700.HK", "subject"), ("9988.HK", "subject")]),
        ("中国银行发布年报", [("601988.SH", "subject")]),
        ("招商银行业绩超预期", [("600036.SH", "subject")]),
        ("京东发布财报，小米汽车交付创新高", [("9618.HK", "subject"), ("1810.HK", "subject")]),
        ("Tencent peer 腾讯控股 in focus", [("0700.HK", "subject")]),
    ],
)
def test_chinese_short_names_link_without_spaces_around_them(
    linker: Linker, title: str, expected: list[tuple[str, str]]
) -> None:
    assert found(linker, title) == expected


@pytest.mark.parametrize(
    "title", ["中国银行业协会发布报告", "北京东城区房价上涨", "伊利诺伊州财政紧张", "美国航空公司削减航班"]
)
def test_a_chinese_name_inside_another_word_is_not_a_company(linker: Linker, title: str) -> None:
    assert found(linker, title) == []


def test_a_chinese_body_names_mentions_after_its_first_sentence(linker: Linker) -> None:
    body = "贵州茅台发布公告。五粮液同日公布业绩。"
    assert found(linker, "", body) == [("600519.SH", "subject"), ("000858.SZ", "mention")]
