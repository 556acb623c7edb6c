import pytest

from streams.core.tickers import MAX_TICKERS, tag


def test_cashtags_and_given_tickers_are_merged_unique_upper_case() -> None:
    assert tag("$AAPL and $msft rally; $AAPL again, $BRK.B too", ["tsla", "AAPL"]) == ["TSLA", "AAPL", "MSFT", "BRK.B"]


def test_prices_and_words_are_not_tickers() -> None:
    assert tag("Costs $5 million, up 10$ from US$3bn; email a$b.com") == []
    assert tag("price$AAPL") == []


def test_invalid_given_tickers_are_dropped_and_the_list_is_bounded() -> None:
    assert tag("", ["", "not a ticker", "$nvda"]) == ["NVDA"]
    many = " ".join(f"$A{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(40))
    assert len(tag(many)) == MAX_TICKERS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("贵州茅台(600519)一季度净利润增长", ["600519.SH"]),
        ("Kweichow Moutai 600519.SS rises; Ping An Bank 000001.sz flat", ["600519.SH", "000001.SZ"]),
        ("sh600519 涨停，SZ300750 跟涨", ["600519.SH", "300750.SZ"]),
        ("科创板688981今日大涨", ["688981.SH"]),
        ("腾讯控股（00700）股价大跌", ["0700.HK"]),
        ("Tencent 700.HK and Alibaba 9988.hk slide", ["0700.HK", "9988.HK"]),
        ("美团-W(03690)盘中跌5%", ["3690.HK"]),
    ],
)
def test_shanghai_shenzhen_and_hong_kong_codes_become_one_form(text: str, expected: list[str]) -> None:
    assert tag(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "公司回购600000股",  # an amount of shares
        "2024年净利润300750万元",  # an amount of money
        "上证指数收报3000点，成交额6000亿元",
        "Buyback of 600519 shares announced",  # a number in English text is a number
        "Order 00700 shipped",
        "版本号600519.5发布",  # a decimal
    ],
)
def test_numbers_that_are_not_codes_are_left_alone(text: str) -> None:
    assert tag(text) == []


def test_given_codes_take_the_same_form_as_found_ones() -> None:
    assert tag("", ["sh600519", "600519", "00700", "0700.HK", "$AAPL"]) == ["600519.SH", "0700.HK", "AAPL"]
