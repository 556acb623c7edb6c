"""Text as the model sees it, and the key under which near-duplicate stories collide."""

from __future__ import annotations

import html
import re
import unicodedata

_URL = re.compile(r"https?://\S+|www\.\S+")
# Combining marks (the vowel signs of Devanagari, Arabic harakat, accents written apart), but not the
# variation selectors that follow emoji.
_MARKS = "".join(
    chr(c) for c in range(0x300, 0x10000) if unicodedata.category(chr(c))[0] == "M" and not 0xFE00 <= c <= 0xFE0F
)
# What survives in a story key: the letters, digits and marks of every script, and "$"; an ASCII text's
# key is what it always was (letters, digits and "$" lower-cased).
_NON_WORD = re.compile(rf"(?:[^\w${re.escape(_MARKS)}]|_)+")


def clean_text(text: str) -> str:
    """The text a model sees, in training and in serving alike (``models.tokenize`` is the one caller):
    HTML entities decoded once, whitespace collapsed."""
    return " ".join(html.unescape(text).split())


def dedup_key(text: str) -> str:
    """Key under which reposts that differ only by links, case or punctuation collide."""
    stripped = _URL.sub(" ", html.unescape(text).lower())
    return _NON_WORD.sub(" ", stripped).strip()


_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LETTER = re.compile(r"[^\W\d_]")
_LATIN = re.compile(r"[A-Za-z]")
# Share of a text's letters that must be of one script for the script to name its language: a
# Chinese story keeps Latin tickers and names ("苹果(AAPL)发布iPhone"), an English one a quoted name.
SCRIPT_SHARE = 0.2
SCRIPT_CHARS = 2_000  # the script of a story's first characters is its script


def script_language(text: str) -> str:
    """The language a text's script shows: ``zh`` (Han), ``ja`` (kana), ``ko`` (hangul), ``en`` when
    Latin letters dominate, ``und`` for other scripts (or no letters)."""
    text = text[:SCRIPT_CHARS]
    letters = len(_LETTER.findall(text))
    if not letters:
        return "und"
    if len(_KANA.findall(text)) >= SCRIPT_SHARE * letters:
        return "ja"
    if len(_HANGUL.findall(text)) >= SCRIPT_SHARE * letters:
        return "ko"
    if len(_HAN.findall(text)) >= SCRIPT_SHARE * letters:
        return "zh"
    return "en" if len(_LATIN.findall(text)) >= (1 - SCRIPT_SHARE) * letters else "und"


def language_of(lang: str | None, text: str) -> str:
    """A document's language: its ``lang`` field's primary subtag (``zh-Hans`` -> ``zh``), or its
    script's when the field is absent."""
    if lang and lang.strip():
        return lang.strip().lower().replace("_", "-").split("-")[0]
    return script_language(text)
