import pytest

from models.text import language_of, script_language


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tesla shares fall after deliveries miss", "en"),
        ("贵州茅台一季度净利润同比增长15%", "zh"),
        ("苹果(AAPL)发布新款iPhone，股价上涨", "zh"),  # Latin tickers and names inside Chinese
        ("Analysts quote 腾讯 once in an English story about Tencent's results", "en"),
        ("トヨタ自動車が決算を発表", "ja"),
        ("삼성전자 실적 발표", "ko"),
        ("Газпром снизил прогноз", "und"),
        ("12345 %%%", "und"),
    ],
)
def test_the_script_names_the_language(text: str, expected: str) -> None:
    assert script_language(text) == expected


def test_the_lang_field_wins_over_the_script_and_keeps_its_primary_subtag() -> None:
    assert language_of("zh-Hans", "An English title") == "zh"
    assert language_of("EN_us", "贵州茅台") == "en"
    assert language_of(None, "贵州茅台") == "zh"
    assert language_of("  ", "Tesla") == "en"
