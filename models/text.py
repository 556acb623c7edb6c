"""Text as the model sees it, and the key under which near-duplicate stories collide."""

from __future__ import annotations

import html
import re

_URL = re.compile(r"https?://\S+|www\.\S+")
# Letters and digits that survive: ASCII ones, and CJK ideographs, kana and hangul, so that a Chinese,
# Japanese or Korean title keeps its words (accented Latin letters drop out as they always have).
_NON_WORD = re.compile(r"[^0-9a-z$\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


def clean_text(text: str) -> str:
    """The text a model sees: HTML entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(text).split())


def dedup_key(text: str) -> str:
    """Key under which reposts that differ only by links, case or punctuation collide."""
    stripped = _URL.sub(" ", html.unescape(text).lower())
    return _NON_WORD.sub(" ", stripped).strip()
