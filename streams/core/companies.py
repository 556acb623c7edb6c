"""Company linking: names and aliases in a story's title and body become tickers, each with its role.

The universe is the constituents of 20 major indices (``pytickersymbols``), plus finmon's own list of
common aliases (``aliases.csv``: "Google", "Citi", "J.P. Morgan"), plus a desk's watchlist, each later
one overriding the one before. One Aho-Corasick automaton over every lower-cased alias finds all
candidates in one pass; precision comes from the checks after it:

- whole words only, and the longest name wins ("Apple Hospitality" is not Apple);
- a name starts with a capital (or digit) as written; an acronym ("GM", "BMW") must match its case;
- a name that is also a common word (Target, Gap, Visa, Ford, Shell) counts only with a company cue
  beside it ("Target shares", "Target Corp", "at Target's"), or when its cashtag or ticker is given,
  and never straight after another capitalised word ("Harrison Ford");
- a bank or rating agency quoted as the source ("... at Deutsche Bank", "Citi upgrades ...",
  "... - BofA") gets the role ``analyst``.

Roles: ``subject`` (what trends and alerts count: in the title, or the body's first sentence when the
title names nobody), ``analyst`` (the house quoted), ``mention`` (elsewhere in the body).
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import ahocorasick

from streams.errors import StreamError

ROLES = ("subject", "analyst", "mention")
MAX_ENTITIES = 16
# Linking reads at most this much of a title and of a body, and the checks around a name look at
# most CONTEXT characters either side of it: the cost is linear in what is read, and bounded.
LINK_TITLE_CHARS = 1_000
LINK_BODY_CHARS = 3_000
CONTEXT = 120
MAX_CANDIDATES = 64  # names looked at per title or body
_LEGAL = re.compile(
    r"(?:,?\s+(?:inc\.?|incorporated|corporation|corp\.?|company|co\.?|plc|ag|se|n\.v\.|nv|s\.a\.|sa|s\.p\.a\.|"
    r"spa|ltd\.?|limited|holdings?|group|reit|llc|l\.?p\.|class [a-c]|asa|ab|oyj|a/s|kgaa|& co\.?))+$",
    re.IGNORECASE,
)
# Single-word names that are also everyday words: they need a cue (see the module's docstring).


def _words(paragraph: str) -> frozenset[str]:
    return frozenset(paragraph.split())


COMMON_WORDS = _words(
    """admiral apple arm ball berkeley block booking box brady cactus city compass continental dana deluxe
    diploma disco douglas dover employers everest evolution ford fox gap gates harmonic hawkins hayward
    hilltop hub indus integer interface investor knowles lindsay match meta news next noble norma now
    orange partners phoenix pool progressive rational recruit rogers rollins screen shift sabre sage sharp
    shell southern stride target universal verve visa waters weir wells
    albany align american beacon bread california catalyst charter cincinnati citizens constellation
    crescent customers digital dominion duke edison element expand extreme first fulton gibraltar golden
    healthcare heritage huntington imperial insight jacobs liberty lincoln matthews merchants mercury
    merlin minerals northern oxford patrick penguin penn powell principal protagonist redwood regions
    republic rush stellar trinity triumph tyler werner williams zebra devon general national united"""
)
# Never names on their own: quarters and words that a legal form or a descriptor leaves behind.
NEVER = _words("the q1 q2 q3 q4 h1 h2 fy inc corp co group holdings u.s. us u.k. uk")
# Tickers that are also everyday upper-case words or abbreviations: not linked as bare symbols.
TICKER_STOP = _words(
    """IT ON ALL NOW CAT ARE BIG KEY LOW HAS CAR PM AM EU US UK OR AN SO GO BE DO ME MY OK TV AI CEO CFO COO
    IPO ETF GDP EPS FY PT IP PR HR EV AT BY TO IN IS OF UP NEW OUT ONE NEXT TECH PLAY FAST SEE WELL LOVE
    REAL SAVE TRUE FUN HOPE LIFE CASH GOLD FUND BEST GOOD ANY CAN HE IRS SEC FDA FED ECB OPEC USA ESG CPI
    PPI ATH YTD QE API EBIT DOW ROE ROI RSI NAV AUM IMF WHO EPA FTC DOJ NYSE PE ED ES ARM BOX HUB NOV
    DEC JAN MAR APR JUN JUL AUG SEP OCT FIVE SIX TEN WAY LUV HOG CHAT SNOW COLD HOT"""
)
_CUES_AFTER = re.compile(
    r"^(?:'s?\b|’s?\b|\s+(?:shares?|stock|stocks|inc\b|corp\b|corporation|co\b|plc|ceo|cfo|chief|board|"
    r"earnings|revenue|sales|profit|results|quarter|q[1-4]|guidance|outlook|dividend|buyback|accounting|"
    r"upgraded|downgraded|cut to|raised to|rallies|slumps|jumps|falls|rises|surges|plunges|tumbles|sinks|"
    r"soars|beats|misses|reports|posts|cuts|raises|issues|unveils|launches|names|declares|recalls|hires|"
    r"appoints|sues|settles|files|signs|wins|loses|fined|agrees|to buy|to acquire|to present|to cut|to raise|"
    r"said|says|announces|forecasts|expects|plans|moves into|iphone|stake))",
    re.IGNORECASE,
)
_CUES_BEFORE = re.compile(
    r"(?:\b(?:upgrades?|downgrades?|shares of|stake in|probe into|investigation into|sues|initiates|"
    r"reiterates|acquire|acquires|buy|buys|rival|on)|\$[A-Z]{1,5})\s+$",
    re.IGNORECASE,
)
# A bank or agency named as the source of a view, not as the story's subject.
RESEARCH_HOUSES = _words(
    "GS MS JPM BAC C WFC DBK.DE UBSG.SW BARC.L HSBA.L BNP.PA GLE.PA RJF PIPR JEF MCO SPGI EVR SF SCHW "
    "CS BMO RY TD KEY ACA.PA ISP.MI UCG.MI SAN.MC BBVA.MC CBK.DE NDA-FI.HE INGA.AS"
)
_SOURCE_BEFORE = re.compile(
    r"(?:\b(?:at|by|from|per|via|says|said|according to|hat tip|h/t)|[-–—(]|"
    r"\b(?:at|by|from)\s+[A-Z][\w.&'’ -]{1,40}(?:,|\band|&))\s*$",  # "at Credit Suisse, J.P. Morgan"
    re.IGNORECASE,
)
_ANALYST_AFTER = re.compile(
    r"^(?:'s?|’s?)?\s*(?:analysts?|strategists?|economists?|research|upgrades|downgrades|initiates|starts|"
    r"resumes|reiterates|raises|lifts|boosts|bumps|ups|hikes|cuts|trims|slashes|lowers|sees|says|expects|"
    r"gives|hits|reels|warns|goes|turns|likes|picks|names|calls|moves|keeps|maintains|is (?:bullish|bearish)|"
    r"predicts|forecasts|loses (?:confidence|faith)|upgrade|downgrade|note|(?:is )?(?:bullish|bearish|"
    r"constructive|cautious|positive|negative) on)\b",
    re.IGNORECASE,
)
# What makes "X cuts ..." a house's view rather than news about X ("Goldman cuts 3,000 jobs").
_RATING = re.compile(
    r"\b(?:PT|price target|targets?|ratings?|buy|sell|hold|outperform|underperform|overweight|underweight|"
    r"equal[- ]weight|neutral|market perform|coverage|upside|downside|estimates?|bull|bear|top pick|forecast|"
    r"upgrade|downgrade|constructive|cautious|bullish|bearish)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|[。！？]")


class WatchlistError(StreamError):
    """A watchlist file cannot be read: say which file and line, in one line."""


@dataclass(frozen=True)
class Company:
    ticker: str
    name: str
    aliases: tuple[str, ...] = ()
    indices: tuple[str, ...] = ()
    source: str = "universe"


@dataclass(frozen=True)
class Entity:
    """One company found in a story: which, where and in what role."""

    ticker: str
    name: str
    role: str
    part: str  # "title" or "body"
    start: int
    end: int
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "ticker": self.ticker,
            "name": self.name,
            "role": self.role,
            "part": self.part,
            "span": [self.start, self.end],
            "text": self.text,
        }


_DESCRIPTOR = re.compile(
    r"\s+(?:technologies|technology|industries|international|systems|worldwide|enterprises|brands|companies|"
    r"financial|therapeutics|pharmaceuticals|semiconductors?|entertainment|resources|realty|properties|"
    r"communications|works|bancorp|bancshares|networks|solutions|services|holdings?|group|trust)$",
    re.IGNORECASE,
)


def aliases_of(name: str) -> list[str]:
    """The name as written, without its legal form ("Tesla, Inc." -> "Tesla") and without a trailing
    descriptor ("Agilent Technologies" -> "Agilent"); never a bare quarter or legal word."""
    bare = _LEGAL.sub("", name).strip(" ,")
    short = _DESCRIPTOR.sub("", bare).strip(" ,")
    return [a for a in dict.fromkeys([name, bare, short]) if a and a.lower() not in NEVER]


def universe() -> list[Company]:
    """Constituents of the major indices that ``pytickersymbols`` maintains, with their indices."""
    from pytickersymbols import PyTickerSymbols

    source = PyTickerSymbols()
    member: dict[str, list[str]] = {}
    for index in source.get_all_indices():
        for stock in source.get_stocks_by_index(index):
            member.setdefault(stock["name"], []).append(index)
    found: dict[str, Company] = {}
    for stock in source.get_all_stocks():
        ticker = stock.get("symbol")
        if ticker and ticker not in found:
            name = stock["name"]
            found[ticker] = Company(ticker, name, tuple(aliases_of(name)), tuple(sorted(set(member.get(name, [])))))
    return list(found.values())


def read_watchlist(path: Path, source: str = "watchlist") -> list[Company]:
    """A CSV with ``ticker`` and ``name`` columns and an optional ``aliases`` column (``|``-separated)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
            columns = set(rows[0]) if rows else set()
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise WatchlistError(f"{path}: cannot read the watchlist: {exc}") from exc
    if rows and not {"ticker", "name"} <= columns:
        raise WatchlistError(f"{path}: a watchlist needs 'ticker' and 'name' columns (has {sorted(columns)})")
    companies = []
    for number, row in enumerate(rows, start=2):
        ticker, name = (row.get("ticker") or "").strip().lstrip("$").upper(), (row.get("name") or "").strip()
        if not ticker or not name:
            raise WatchlistError(f"{path}:{number}: a watchlist row needs a ticker and a name")
        extra = [a.strip() for a in (row.get("aliases") or "").split("|") if a.strip()]
        companies.append(Company(ticker, name, tuple(dict.fromkeys([*aliases_of(name), *extra])), source=source))
    return companies


def builtin_aliases() -> list[Company]:
    """finmon's own names: nicknames of index constituents, and the short names of the largest
    Shanghai, Shenzhen and Hong Kong listings (贵州茅台 600519.SH, 腾讯控股 0700.HK)."""
    companies = []
    for name, source in (("aliases.csv", "finmon aliases"), ("companies_cn.csv", "finmon A-share/HK names")):
        with resources.as_file(resources.files("streams.core") / name) as path:
            companies += read_watchlist(path, source=source)
    return companies


_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Chinese is written without spaces, so a Chinese name counts wherever it appears, except where the
# characters around it make another word: 中国银行业 (the banking industry), 北京东 (east Beijing),
# 伊利诺伊 (Illinois), 美国航空 (American Airlines) ...
# (银行业绩 is a bank's results, 银行业务 its business: those are the bank)
_HAN_NOT_BEFORE = {"银行": re.compile("业(?![绩务])"), "中行": re.compile("业(?![绩务])"), "伊利": re.compile("诺")}
_HAN_NOT_AFTER = {"京东": "北", "国航": "美"}


def _han_word(text: str, start: int, end: int, alias: str) -> bool:
    before = text[start - 1 : start] if start else ""
    if any(alias.endswith(tail) and word.match(text, end) for tail, word in _HAN_NOT_BEFORE.items()):
        return False
    return not any(alias.startswith(head) and before == char for head, char in _HAN_NOT_AFTER.items())


def merge(*layers: Iterable[Company]) -> list[Company]:
    """Later layers override earlier ones: a ticker's name and index membership are kept, its aliases
    extended, and an alias a later layer gives to one ticker is taken from every other ticker."""
    by_ticker: dict[str, Company] = {}
    owner: dict[str, str] = {}  # lower-cased alias -> the ticker that has it now
    for layer in layers:
        for company in layer:
            old = by_ticker.get(company.ticker)
            if old is not None:
                aliases = tuple(dict.fromkeys([*company.aliases, *old.aliases]))
                company = Company(company.ticker, company.name, aliases, old.indices, company.source)
            for alias in {a.lower() for a in company.aliases}:
                previous = owner.get(alias)
                if previous is not None and previous != company.ticker:
                    other = by_ticker[previous]
                    kept = tuple(a for a in other.aliases if a.lower() != alias)
                    by_ticker[previous] = dataclasses.replace(other, aliases=kept)
                owner[alias] = company.ticker
            by_ticker[company.ticker] = company
    return list(by_ticker.values())


@dataclass(frozen=True)
class _Candidate:
    start: int
    end: int  # exclusive
    alias: str
    company: Company


def _fold(text: str) -> str:
    """Lower case with every character kept at its place (so spans stay right)."""
    low = text.lower()
    return low if len(low) == len(text) else "".join(c if len(c := ch.lower()) == 1 else ch for ch in text)


@dataclass
class Linker:
    """Finds companies in stories; build it once (the automaton) and share it."""

    companies: Sequence[Company]
    _automaton: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        automaton = ahocorasick.Automaton()
        table: dict[str, list[tuple[str, Company]]] = {}
        for company in self.companies:
            symbol = company.ticker if re.fullmatch(r"[A-Z]{2,5}", company.ticker) else None
            bare = [symbol] if symbol and symbol not in TICKER_STOP else []  # "GE finds a new CFO", "(BMY)"
            for alias in dict.fromkeys([*company.aliases, *bare]):
                if len(alias) >= 2 and alias.lower() not in NEVER:
                    table.setdefault(_fold(alias), []).append((alias, company))
        for key, entries in table.items():
            automaton.add_word(key, entries)
        if table:
            automaton.make_automaton()
        self._automaton = automaton if table else None

    def link(self, title: str, body: str = "", given: Iterable[str] = ()) -> list[Entity]:
        """Every company the title and body name, in order, each ticker once (its strongest role).
        ``given``: the tickers already known for the story (the input's and its cashtags, as
        ``streams.core.tickers.tag`` finds them), which let an everyday-word name count without a cue."""
        known = {t.upper() for t in given}
        title, body = title[:LINK_TITLE_CHARS], body[:LINK_BODY_CHARS]
        entities = list(self._entities(title, "title", known))
        titled = any(e.role == "subject" for e in entities)
        first = _SENTENCE_END.search(body)
        lead = first.end() if first else len(body)
        for entity in self._entities(body, "body", known):
            if entity.role == "subject" and (titled or entity.start >= lead):
                entity = dataclasses.replace(entity, role="mention")
            entities.append(entity)
        return _strongest(entities)[:MAX_ENTITIES]

    def _entities(self, text: str, where: str, known: set[str]) -> Iterator[Entity]:
        if not text or self._automaton is None:
            return
        candidates = _longest(itertools.islice(self._candidates(text), MAX_CANDIDATES * 4))[:MAX_CANDIDATES]
        title_case = _TitleCase(text)
        for candidate in candidates:
            company, surface = candidate.company, text[candidate.start : candidate.end]
            if not self._plausible(text, candidate, surface, company.ticker in known, title_case):
                continue
            role = "analyst" if _quoted(text, candidate, len(candidates) > 1) else "subject"
            yield Entity(company.ticker, company.name, role, where, candidate.start, candidate.end, surface)

    def _candidates(self, text: str) -> Iterator[_Candidate]:
        for last, entries in self._automaton.iter(_fold(text)):
            for alias, company in entries:
                start, end = last - len(alias) + 1, last + 1
                before = text[start - 1] if start > 0 else " "
                after = text[end] if end < len(text) else " "
                if _HAN.match(alias):
                    if _han_word(text, start, end, alias):
                        yield _Candidate(start, end, alias, company)
                elif not (before.isalnum() or before in "_$") and not (after.isalnum() or after == "_"):
                    yield _Candidate(start, end, alias, company)

    @staticmethod
    def _plausible(text: str, candidate: _Candidate, surface: str, cashtagged: bool, title_case: _TitleCase) -> bool:
        alias = candidate.alias
        if alias.isupper() and len(alias) <= 5:  # an acronym: its case exactly
            if surface != alias or text.isupper():
                return False
        elif not (surface[0].isupper() or surface[0].isdigit() or surface == alias):
            return False  # a name starts with a capital unless written as the company writes it (eBay)
        if alias.lower() not in COMMON_WORDS or cashtagged:
            return True
        before, after = _around(text, candidate)
        previous = _PREVIOUS_WORD.search(before)
        word = previous.group(1) if previous else ""
        if word[:1].isupper() and not _SENTENCE_END.search(word + " ") and not title_case():
            return False  # "Harrison Ford", "Tokyo Target"
        if candidate.company.ticker in RESEARCH_HOUSES and (
            _SOURCE_BEFORE.search(before) or _ANALYST_AFTER.match(after)
        ):
            return True  # "cut at Wells", "Wells slashes its target"
        return bool(_CUES_AFTER.match(after) or _CUES_BEFORE.search(before))


_PREVIOUS_WORD = re.compile(r"(\S+)\s+$")
_WORD = re.compile(r"[A-Za-z][\w'’-]*")


def _around(text: str, candidate: _Candidate) -> tuple[str, str]:
    """At most CONTEXT characters before and after a candidate: what the checks read."""
    return text[max(0, candidate.start - CONTEXT) : candidate.start], text[candidate.end : candidate.end + CONTEXT]


class _TitleCase:
    """Whether a text is written in title case, found once per text and only when asked."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.found: bool | None = None

    def __call__(self) -> bool:
        if self.found is None:
            words = [w for w in _WORD.findall(self.text) if len(w) > 3]
            self.found = len(words) >= 3 and sum(w[0].isupper() for w in words) >= 0.6 * len(words)
        return self.found


def _quoted(text: str, candidate: _Candidate, others: bool) -> bool:
    """A research house as the source: "at/by/- X", or "X upgrades ..." about a rating or another company."""
    if candidate.company.ticker not in RESEARCH_HOUSES:
        return False
    before, after = _around(text, candidate)
    if _SOURCE_BEFORE.search(before):
        return True
    return bool(_ANALYST_AFTER.match(after) and (others or _RATING.search(after)))


def _longest(candidates: Iterable[_Candidate]) -> list[_Candidate]:
    chosen: list[_Candidate] = []
    for candidate in sorted(candidates, key=lambda c: (c.start, -(c.end - c.start))):
        if not chosen or candidate.start >= chosen[-1].end:
            chosen.append(candidate)
    return chosen


def _strongest(entities: list[Entity]) -> list[Entity]:
    """Each ticker once: its first entity in the strongest role it has."""
    best: dict[str, Entity] = {}
    for entity in entities:
        kept = best.get(entity.ticker)
        if kept is None or ROLES.index(entity.role) < ROLES.index(kept.role):
            best[entity.ticker] = entity
    return sorted(best.values(), key=lambda e: (e.part != "title", e.start))


def subjects(entities: Iterable[Entity]) -> list[str]:
    return [e.ticker for e in entities if e.role == "subject"]


@lru_cache(maxsize=4)
def linker_for(watchlist: Path | None = None, use_universe: bool = True) -> Linker:
    """The linker for these settings, built once per process."""
    layers: list[list[Company]] = [universe()] if use_universe else []
    layers.append(builtin_aliases())
    if watchlist is not None:
        layers.append(read_watchlist(watchlist))
    return Linker(merge(*layers))
