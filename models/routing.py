"""Each document to the model that reads its language: the main (English) model, the Chinese one
for Chinese, or the multilingual one for every other language, by the document's ``lang`` field or,
without one, its script."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from models.runtime import Classifier, Prediction, Timings, check_texts
from models.settings import ModelSettings
from models.text import language_of, script_language

MAIN_LANGUAGES = frozenset({"en"})
CHINESE = "zh"


@dataclass
class Router:
    """The main model and, when there are, the multilingual and the Chinese models, behind one ``predict``."""

    main: Classifier
    multilingual: Classifier | None = None
    chinese: Classifier | None = None

    @classmethod
    def from_settings(cls, settings: ModelSettings, **changes: Any) -> Router:
        """The models the settings name; ``changes`` that are not None replace some settings (a
        command's ``--model`` replaces the main model, ``--device`` applies to every model)."""
        main = Classifier.from_settings(settings, **changes)
        device = changes.get("device")
        others = [
            None if path is None else Classifier.from_settings(settings, path=path, device=device)
            for path in (settings.multilingual_path, settings.chinese_path)
        ]
        return cls(main, *others)

    @property
    def batch_size(self) -> int:
        return self.main.batch_size

    @property
    def version(self) -> str:
        """The models' versions, the main one first (what trends computed from their scores name)."""
        return "+".join(dict.fromkeys(c.version for c in self.classifiers))

    @property
    def classifiers(self) -> list[Classifier]:
        return [self.main] + [c for c in (self.multilingual, self.chinese) if c is not None]

    def describe(self) -> dict[str, str]:
        return self.main.describe() | {"version": self.version}

    def route(self, lang: str | None, text: str) -> tuple[str, Classifier]:
        """The document's language and the model that reads it."""
        language = language_of(lang, text)
        if language in MAIN_LANGUAGES:
            return language, self.main
        if language == CHINESE and self.chinese is not None and script_language(text) == CHINESE:
            return language, self.chinese  # a zh-tagged text in Latin letters is not what it learned
        return language, self.multilingual or self.main

    def predict(
        self, texts: Sequence[object], timings: Timings | None = None, langs: Sequence[str | None] | None = None
    ) -> list[Prediction]:
        """One prediction per text, in input order, each from the model its language routes to."""
        valid = check_texts(texts)
        langs = list(langs) if langs is not None else [None] * len(valid)
        groups: dict[int, list[int]] = {}
        chosen = [self.route(lang, text)[1] for lang, text in zip(langs, valid, strict=True)]
        for i, classifier in enumerate(chosen):
            groups.setdefault(id(classifier), []).append(i)
        results: list[Prediction | None] = [None] * len(valid)
        for indices in groups.values():
            classifier = chosen[indices[0]]
            for i, prediction in zip(indices, classifier.predict([valid[i] for i in indices], timings), strict=True):
                results[i] = prediction
        return [r for r in results if r is not None]
