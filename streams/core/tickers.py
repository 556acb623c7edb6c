"""Ticker tagging: the tickers the input gave, cashtags (``$AAPL``, ``$BRK.B``), and the stock codes of
Shanghai, Shenzhen and Hong Kong (``600519.SH``, ``sh600519``, ``000001.SZ``, ``0700.HK``; bare
``600519`` and ``00700`` in Chinese documents), each code in one form: ``600519.SH``,
``000001.SZ``, ``0700.HK``."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

from models.text import script_language

CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,5}(?:\.[A-Za-z]{1,2})?)(?![\w])")
GIVEN = re.compile(r"^[A-Z0-9]{1,10}(?:[.\-:][A-Z0-9]{1,4})?$")
MAX_TICKERS = 16
TAG_CHARS = 4_000  # cashtags and codes are read in a story's first characters: bounded work per story

# A-share codes by board: Shanghai 600/601/603/605 main, 688/689 STAR; Shenzhen 000-003 main, 300/301 ChiNext.
_A_SHARE = r"(?:60[0135]\d{3}|68[89]\d{3}|00[0-3]\d{3}|30[01]\d{3})"
_NOT_ASCII_WORD = r"(?![A-Za-z0-9_])"
A_SUFFIXED = re.compile(rf"(?<![A-Za-z0-9_.])({_A_SHARE})\.(SH|SS|SZ){_NOT_ASCII_WORD}", re.IGNORECASE)
A_PREFIXED = re.compile(rf"(?<![A-Za-z0-9_])(SH|SZ)({_A_SHARE})(?!\d)", re.IGNORECASE)
HK_SUFFIXED = re.compile(rf"(?<![A-Za-z0-9_.])(\d{{1,5}})\.HK{_NOT_ASCII_WORD}", re.IGNORECASE)
# In Chinese text, bare codes: six digits of a board, or five with a leading zero (Hong Kong), not
# part of a longer number, a decimal, a date or an amount ("600000股", "00700元").
_UNIT = "%％元股万亿手点年月日号倍只家个"
A_BARE = re.compile(rf"(?<![\d.,])({_A_SHARE})(?![\d.,{_UNIT}])")
HK_BARE = re.compile(rf"(?<![\d.,])(0\d{{4}})(?![\d.,{_UNIT}])")


def a_share(code: str, exchange: str | None = None) -> str:
    """``600519`` -> ``600519.SH``; the exchange follows the board when not given (SS is SH)."""
    exchange = (exchange or ("SH" if code[0] == "6" else "SZ")).upper()
    return f"{code}.{'SH' if exchange == 'SS' else exchange}"


def hong_kong(code: str) -> str:
    """``00700``, ``700`` -> ``0700.HK`` (four digits, as the exchange quotes them)."""
    return f"{int(code):04d}.HK"


def exchange_code(symbol: str) -> str | None:
    """The one form of an A-share or Hong Kong code written any of the accepted ways, else None."""
    text = symbol.strip()
    for pattern, form in (
        (A_SUFFIXED, lambda m: a_share(m.group(1), m.group(2))),
        (A_PREFIXED, lambda m: a_share(m.group(2), m.group(1))),
        (HK_SUFFIXED, lambda m: hong_kong(m.group(1))),
    ):
        match = pattern.fullmatch(text)
        if match:
            return form(match)
    if re.fullmatch(_A_SHARE, text):
        return a_share(text)
    if re.fullmatch(r"0\d{4}", text):
        return hong_kong(text)
    return None


def normalize(ticker: str) -> str | None:
    """Upper-case, strip a leading ``$``, one form for exchange codes; None when it does not look
    like a ticker symbol."""
    code = exchange_code(ticker)
    if code:
        return code
    symbol = ticker.strip().lstrip("$").upper()
    return symbol if GIVEN.match(symbol) else None


def exchange_codes(text: str, language: str | None = None) -> list[str]:
    """A-share and Hong Kong codes in ``text``, in order of appearance (bare ones only in Chinese text;
    ``language``: the text's, when the caller knows it already)."""
    found: list[tuple[int, str]] = []
    taken: set[int] = set()  # characters already part of a code: linear in the text, whatever it holds

    def add(start: int, end: int, code: str) -> None:
        span = range(start, end)
        if not any(i in taken for i in span):
            taken.update(span)
            found.append((start, code))

    for m in A_SUFFIXED.finditer(text):
        add(m.start(), m.end(), a_share(m.group(1), m.group(2)))
    for m in A_PREFIXED.finditer(text):
        add(m.start(), m.end(), a_share(m.group(2), m.group(1)))
    for m in HK_SUFFIXED.finditer(text):
        add(m.start(), m.end(), hong_kong(m.group(1)))
    if (language or script_language(text)) == "zh":
        for m in A_BARE.finditer(text):
            add(m.start(), m.end(), a_share(m.group(1)))
        for m in HK_BARE.finditer(text):
            add(m.start(), m.end(), hong_kong(m.group(1)))
    return [code for _, code in sorted(found)]


def tag(text: str, given: Iterable[str] = (), language: str | None = None) -> list[str]:
    """Given tickers first, then cashtags and exchange codes in order of appearance; unique, at most
    MAX_TICKERS. ``language``: the text's, when known (bare exchange codes count in Chinese only)."""
    found: dict[str, None] = {}
    text = text[:TAG_CHARS]
    cashtags = (match.group(1) for match in CASHTAG.finditer(text))
    for candidate in itertools.chain(given, cashtags, exchange_codes(text, language)):
        symbol = normalize(candidate)
        if symbol:
            found[symbol] = None
            if len(found) == MAX_TICKERS:
                break
    return list(found)
