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


def test_story_keys_keep_the_letters_of_every_script() -> None:
    from models.text import dedup_key

    titles = [
        "Сбербанк упал на 5%",
        "Газпром вырос на 5%",
        "Η Εθνική Τράπεζα έπεσε 5%",
        "Η Πειραιώς ανέβηκε 5%",
        "أرامكو تراجعت 5%",
        "سابك ارتفعت 5%",
        "रिलायंस के शेयर 5% गिरे",
        "टाटा मोटर्स के शेयर 5% चढ़े",
        "贵州茅台股价大跌5%",
        "腾讯控股股价大涨5%",
    ]
    keys = [dedup_key(t) for t in titles]
    assert len(set(keys)) == len(titles), "stories in other scripts no longer collide on their digits"
    assert all(dedup_key(f"{t}!! https://t.co/x") == k for t, k in zip(titles, keys, strict=True))
    assert dedup_key("रिलायंस के शेयर 5% गिरे") == "रिलायंस के शेयर 5 गिरे"  # vowel signs are kept


@pytest.mark.parametrize(
    ("title", "key"),
    [
        ("S&amp;P 500 falls 2% https://t.co/a", "s p 500 falls 2"),
        ("@_JoshSchafer: $AAPL's 'record' quarter", "joshschafer $aapl s record quarter"),
        ("Fed ➡️ holds rates ▶️", "fed holds rates"),
        ("snake_case_word", "snake case word"),
    ],
)
def test_an_english_story_key_is_what_it_always_was(title: str, key: str) -> None:
    from models.text import dedup_key

    assert dedup_key(title) == key
