"""Routing with two real (tiny) model folders: the second reads ``good`` as negative, so which
model scored a text shows in its answer as well as in its version."""

from pathlib import Path

import pytest

from models.routing import Router
from models.runtime import Classifier
from models.settings import ModelSettings
from tests.tiny_model import build_tiny_model


@pytest.fixture(scope="module")
def router(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Router:
    other = build_tiny_model(
        tmp_path_factory.mktemp("multilingual"),
        version="tiny-multilingual",
        sentiment_words={"good": "negative", "bad": "positive", "flat": "neutral"},
    )
    return Router(Classifier.load(tiny_model, device="cpu"), Classifier.load(other, device="cpu"))


def test_each_text_goes_to_the_model_of_its_language_in_input_order(router: Router) -> None:
    texts = ["good dividend", "good 贵州茅台 dividend", "bad oil", "bad 腾讯控股"]
    predictions = router.predict(texts)
    assert [p.model_version for p in predictions] == ["tiny-1", "tiny-multilingual", "tiny-1", "tiny-multilingual"]
    assert [p.sentiment for p in predictions] == ["positive", "negative", "negative", "positive"]


def test_the_lang_field_decides_before_the_script(router: Router) -> None:
    predictions = router.predict(["good dividend", "good 贵州茅台"], langs=["zh-CN", "en"])
    assert [p.model_version for p in predictions] == ["tiny-multilingual", "tiny-1"]


def test_every_language_but_english_goes_to_the_multilingual_model(router: Router) -> None:
    assert router.route("de", "good")[0:1] == ("de",)
    assert router.route("de", "good")[1] is router.multilingual
    assert router.route(None, "good news")[1] is router.main


def test_without_a_multilingual_model_the_main_one_reads_everything(tiny_model: Path) -> None:
    alone = Router(Classifier.load(tiny_model, device="cpu"))
    assert [p.model_version for p in alone.predict(["good 贵州茅台", "bad"])] == ["tiny-1", "tiny-1"]
    assert alone.version == "tiny-1"


def test_settings_name_both_folders_and_an_empty_setting_drops_the_second(tiny_model: Path) -> None:
    settings = ModelSettings(path=tiny_model, multilingual_path=tiny_model, chinese_path=None, device="cpu")
    both = Router.from_settings(settings)
    assert both.multilingual is not None and both.chinese is None and both.version == "tiny-1"  # each version once
    assert ModelSettings.model_validate({"multilingual_path": ""}).multilingual_path is None
    assert ModelSettings.model_validate({"chinese_path": "none"}).chinese_path is None


def test_chinese_goes_to_the_chinese_model_and_other_languages_to_the_multilingual_one(
    router: Router, tmp_path_factory: pytest.TempPathFactory
) -> None:
    chinese = build_tiny_model(
        tmp_path_factory.mktemp("chinese"),
        version="tiny-chinese",
        sentiment_words={"good": "neutral", "bad": "neutral", "flat": "positive"},
    )
    three = Router(router.main, router.multilingual, Classifier.load(chinese, device="cpu"))
    texts = ["good 贵州茅台", "good news", "good 腾讯控股", "good"]
    predictions = three.predict(texts, langs=[None, None, "zh-Hans", "de"])
    assert [p.model_version for p in predictions] == ["tiny-chinese", "tiny-1", "tiny-chinese", "tiny-multilingual"]
    assert three.version == "tiny-1+tiny-multilingual+tiny-chinese"
    # a text tagged Chinese but written in Latin letters is not what the Chinese model learned
    assert three.route("zh", "good news from Shanghai")[1] is three.multilingual
    without = Router(router.main, None, three.chinese)  # no multilingual model: other languages read in English
    assert [without.route(lang, "good 腾讯")[1].version for lang in ("zh", "de", "en")] == [
        "tiny-chinese",
        "tiny-1",
        "tiny-1",
    ]
