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
