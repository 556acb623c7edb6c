"""Ticker tagging: cashtags in the text (``$AAPL``, ``$BRK.B``) plus the tickers the input gave."""

from __future__ import annotations

import re
from collections.abc import Iterable

CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,5}(?:\.[A-Za-z]{1,2})?)(?![\w])")
GIVEN = re.compile(r"^[A-Z0-9]{1,10}(?:[.\-:][A-Z0-9]{1,4})?$")
MAX_TICKERS = 16


def normalize(ticker: str) -> str | None:
    """Upper-case, strip a leading ``$``; None when it does not look like a ticker symbol."""
    symbol = ticker.strip().lstrip("$").upper()
    return symbol if GIVEN.match(symbol) else None


def tag(text: str, given: Iterable[str] = ()) -> list[str]:
    """Given tickers first, then cashtags in order of appearance; unique, at most MAX_TICKERS."""
    found: list[str] = []
    for candidate in [*given, *(match.group(1) for match in CASHTAG.finditer(text))]:
        symbol = normalize(candidate)
        if symbol and symbol not in found:
            found.append(symbol)
    return found[:MAX_TICKERS]
